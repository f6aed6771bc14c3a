/*
 * Loading a Linux bzImage with the 64-bit boot protocol (boot protocol >= 2.06,
 * XLF_KERNEL_64). bzimage_load() checks the setup header, copies the
 * protected-mode kernel to 1 MiB (or pref_address when the kernel is
 * relocatable and that fits), builds boot_params (the "zero page") with the
 * setup header, the e820 map from GuestMemory, the command line and the initrd
 * (as high as possible below min(initrd_addr_max, top of low RAM), page
 * aligned), and writes a GDT and identity page tables for the low 4 GiB.
 *
 * Machine (BSP only; APs stay in wait-for-SIPI):
 *   X86BootState st;
 *   if (!bzimage_load(mem, kernel, klen, initrd, ilen, cmdline, &st, errp)) ...
 *   sregs.cs = st.cs; ds/es/fs/gs/ss = st.ds ...; sregs.gdt = st.gdt;
 *   sregs.cr0/cr3/cr4/efer = st.cr0/...; regs.rip/rsi/rsp/rflags = st.*;
 * The low-memory layout below is fixed (all under the 0x9fc00 EBDA).
 */
#ifndef TARGET_I386_BZIMAGE_H
#define TARGET_I386_BZIMAGE_H

#include <linux/kvm.h>

#include "tern/common.h"
#include "hw/core/guest-memory.h"

#define BZ_GDT_ADDR          UINT64_C(0x500)
#define BZ_BOOT_PARAMS_ADDR  UINT64_C(0x7000)
#define BZ_PML4_ADDR         UINT64_C(0x9000)
#define BZ_PDPT_ADDR         UINT64_C(0xa000)
#define BZ_PD_ADDR           UINT64_C(0xb000)    /* 4 pages: 2 MiB pages up to 4 GiB */
#define BZ_CMDLINE_ADDR      UINT64_C(0x20000)
#define BZ_CMDLINE_MAX       UINT64_C(0x10000)
#define BZ_STACK_TOP         UINT64_C(0x8ff0)    /* unused by startup_64, but valid */
#define BZ_KERNEL_ADDR       UINT64_C(0x100000)

#define BZ_BOOT_CS           0x10         /* __BOOT_CS */
#define BZ_BOOT_DS           0x18         /* __BOOT_DS */

/* Setup header facts, at their boot_params/image offsets. */
#define BZ_HDR_SETUP_SECTS      0x1f1
#define BZ_HDR_VID_MODE         0x1fa
#define BZ_HDR_BOOT_FLAG        0x1fe
#define BZ_HDR_JUMP             0x200
#define BZ_HDR_MAGIC            0x202     /* "HdrS" */
#define BZ_HDR_VERSION          0x206
#define BZ_HDR_TYPE_OF_LOADER   0x210
#define BZ_HDR_LOADFLAGS        0x211
#define BZ_HDR_CODE32_START     0x214
#define BZ_HDR_RAMDISK_IMAGE    0x218
#define BZ_HDR_RAMDISK_SIZE     0x21c
#define BZ_HDR_HEAP_END_PTR     0x224
#define BZ_HDR_CMD_LINE_PTR     0x228
#define BZ_HDR_INITRD_ADDR_MAX  0x22c
#define BZ_HDR_KERNEL_ALIGNMENT 0x230
#define BZ_HDR_RELOCATABLE      0x234
#define BZ_HDR_XLOADFLAGS       0x236
#define BZ_HDR_CMDLINE_SIZE     0x238
#define BZ_HDR_PREF_ADDRESS     0x258
#define BZ_HDR_INIT_SIZE        0x260
#define BZ_BP_EXT_RAMDISK_IMAGE 0x0c0
#define BZ_BP_EXT_RAMDISK_SIZE  0x0c4
#define BZ_BP_EXT_CMD_LINE_PTR  0x0c8
#define BZ_BP_E820_ENTRIES      0x1e8
#define BZ_BP_E820_TABLE        0x2d0
#define BZ_BP_SIZE              0x1000

#define BZ_LOADED_HIGH          0x01
#define BZ_CAN_USE_HEAP         0x80
#define BZ_XLF_KERNEL_64        0x0001
#define BZ_XLF_CAN_BE_LOADED_ABOVE_4G 0x0002

/* What the vCPU needs at the 64-bit entry point (KVM's own types). */
typedef struct X86BootState {
    uint64_t rip, rsi, rsp, rflags;
    uint64_t cr0, cr3, cr4, efer;
    struct kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct kvm_dtable gdt, idt;
} X86BootState;

/* Facts read from the image (also filled on success, for logs and tests). */
typedef struct BzImageInfo {
    uint16_t version;            /* e.g. 0x020f */
    uint8_t setup_sects;
    uint8_t loadflags;
    uint16_t xloadflags;
    bool relocatable;
    uint32_t kernel_alignment;
    uint64_t pref_address;
    uint32_t init_size;
    uint32_t cmdline_size;
    uint32_t initrd_addr_max;
    uint64_t setup_size;         /* (setup_sects + 1) * 512 */
    uint64_t kernel_size;        /* protected-mode part */
} BzImageInfo;

typedef struct BzImageLayout {
    uint64_t kernel_addr;        /* where the protected-mode kernel went */
    uint64_t entry;              /* kernel_addr + 0x200: startup_64 */
    uint64_t boot_params;
    uint64_t cmdline;
    uint64_t initrd_addr;        /* 0 if none */
    uint64_t initrd_size;
} BzImageLayout;

/* Parses and checks the setup header only. */
bool bzimage_probe(const uint8_t *image, size_t len, BzImageInfo *info,
                   GError **errp);
/* initrd may be NULL; cmdline may be NULL (empty). layout may be NULL. */
bool bzimage_load(GuestMemory *mem, const uint8_t *image, size_t len,
                  const uint8_t *initrd, size_t initrd_len, const char *cmdline,
                  X86BootState *st, BzImageLayout *layout, GError **errp);
/* The flat long-mode state (used by bzimage_load; PVH can reuse the tables). */
bool x86_write_flat64_tables(GuestMemory *mem, X86BootState *st, GError **errp);

#endif
