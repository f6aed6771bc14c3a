/*
 * PVH direct boot of an ELF kernel (Xen's HVM start ABI, which Linux, the
 * guest kit and QEMU's microvm use): the ELF's PT_LOAD segments go to their
 * physical addresses, the XEN_ELFNOTE_PHYS32_ENTRY note gives the 32-bit entry
 * point, and an hvm_start_info block (version 1) describes the command line,
 * the modules (the initrd), the memory map and the ACPI RSDP.
 *
 * Low-memory layout written by the loader (below the EBDA, clear of the
 * bzImage loader's GDT/page tables): start_info, module list and memmap at
 * PVH_INFO_ADDR, the command line at PVH_CMDLINE_ADDR. The initrd goes as
 * high as it fits in low RAM, page aligned, above the kernel.
 */
#ifndef TARGET_I386_PVH_H
#define TARGET_I386_PVH_H

#include "hw/core/guest-memory.h"
#include "tern/common.h"

#define PVH_INFO_ADDR        UINT64_C(0x6000)
#define PVH_INFO_SIZE        UINT64_C(0x1000)
#define PVH_CMDLINE_ADDR     UINT64_C(0x20000)
#define PVH_CMDLINE_MAX      UINT64_C(0x10000)

#define XEN_HVM_START_MAGIC  0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* The ABI's structures (xen/include/public/arch-x86/hvm/start_info.h). */
typedef struct TERN_PACKED HvmStartInfo {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
} HvmStartInfo;

typedef struct TERN_PACKED HvmModlistEntry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
} HvmModlistEntry;

typedef struct TERN_PACKED HvmMemmapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
} HvmMemmapEntry;

typedef struct PvhBootInfo {
    uint32_t entry;          /* from the PHYS32_ENTRY note */
    uint32_t start_info;     /* EBX at entry */
    uint64_t kernel_low;     /* lowest and end of loaded segments */
    uint64_t kernel_end;
    uint64_t initrd_addr;    /* 0 without initrd */
} PvhBootInfo;

/* True if the image is an ELF file (PVH is then the only way to boot it). */
bool pvh_is_elf(const uint8_t *image, size_t len);

/* Loads the ELF and writes start_info; rsdp 0 if there are no ACPI tables.
 * Any malformed ELF, a missing note, or a segment or initrd that does not fit
 * in RAM is an error. */
bool pvh_load(GuestMemory *mem, const uint8_t *image, size_t len,
              const uint8_t *initrd, size_t initrd_len, const char *cmdline,
              uint64_t rsdp, PvhBootInfo *out, GError **errp);

#endif
