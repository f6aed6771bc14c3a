/*
 * Guest physical memory as the VMM sees it: a short list of RAM regions, each a
 * host mapping of part of one memfd (so userfaultfd, dirty logging and migration
 * can work on it), plus the e820 map that firmware tables and loaders report.
 * Loaders and table builders only need this header; unit tests build a
 * GuestMemory over ordinary heap buffers.
 */
#ifndef HW_CORE_GUEST_MEMORY_H
#define HW_CORE_GUEST_MEMORY_H

#include "tern/common.h"

#define GUEST_MEM_MAX_REGIONS 8
#define E820_MAX_ENTRIES      16

enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4 };

typedef struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} E820Entry;

typedef struct GuestRegion {
    uint64_t gpa;         /* guest-physical start */
    uint64_t size;        /* bytes, page aligned */
    uint8_t *hva;         /* host mapping */
    uint64_t fd_offset;   /* offset of this region in the RAM memfd */
} GuestRegion;

typedef struct GuestMemory {
    GuestRegion regions[GUEST_MEM_MAX_REGIONS];
    unsigned nr_regions;
    int fd;               /* the RAM memfd, -1 for heap-backed test memory */
    uint64_t ram_size;    /* total RAM bytes (-m) */
    E820Entry e820[E820_MAX_ENTRIES];
    unsigned nr_e820;
} GuestMemory;

/* Host pointer for [gpa, gpa+len) if it lies wholly inside one region, else NULL.
 * Guests control gpa and len: callers must treat NULL as a guest error. */
void *guest_mem_ptr(const GuestMemory *m, uint64_t gpa, uint64_t len);
bool guest_mem_write(const GuestMemory *m, uint64_t gpa, const void *buf,
                     uint64_t len, GError **errp);
bool guest_mem_read(const GuestMemory *m, uint64_t gpa, void *buf,
                    uint64_t len, GError **errp);
/* Zero [gpa, gpa+len); whole pages of memfd RAM become holes (freed, and
 * read back as zero) rather than being written. */
bool guest_mem_zero(const GuestMemory *m, uint64_t gpa, uint64_t len, GError **errp);
bool guest_mem_add_e820(GuestMemory *m, uint64_t addr, uint64_t size,
                        uint32_t type, GError **errp);

/*
 * Guest RAM for a VM (hw/core/guest-ram.c): one memfd of ram_size bytes, mapped
 * once MAP_SHARED, split into a region at 0 of up to low_limit bytes and, for
 * the rest, a region at 4 GiB (the PCI hole lies between). Fails if ram_size is
 * not page aligned or exceeds the host's physical memory. Leaves e820 to the
 * machine. guest_mem_free() releases what guest_mem_alloc() made.
 */
bool guest_mem_alloc(GuestMemory *m, uint64_t ram_size, uint64_t low_limit,
                     GError **errp);
/* The same over the file 'path' (QEMU's memory-backend-file mem-path): a
 * directory gets a new file of its own, removed at once; a file is used
 * (and created) as it is. */
bool guest_mem_alloc_file(GuestMemory *m, uint64_t ram_size, uint64_t low_limit,
                          const char *path, GError **errp);
void guest_mem_free(GuestMemory *m);

#endif
