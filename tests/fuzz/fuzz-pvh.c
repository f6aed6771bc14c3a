/*
 * Fuzz the PVH ELF loader (target/i386/pvh.c) with hostile kernel images:
 * loading into 8 MiB of heap-backed guest RAM must succeed or fail with an
 * error, never read or write out of bounds. The first input byte picks an
 * initrd size so that module placement is exercised too.
 */
#include <string.h>

#include "target/i386/pvh.h"

#define RAM (8 * MiB)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t initrd[64 * 1024];
    g_autofree uint8_t *ram = g_malloc0(RAM);
    GuestMemory mem = { .fd = -1, .ram_size = RAM, .nr_regions = 1 };
    PvhBootInfo info;
    GError *err = NULL;
    size_t initrd_len;

    if (size < 1) {
        return 0;
    }
    initrd_len = (size_t)data[0] * 256;
    mem.regions[0] = (GuestRegion){ .gpa = 0, .size = RAM, .hva = ram };
    guest_mem_add_e820(&mem, 0, 0x9fc00, E820_RAM, NULL);
    guest_mem_add_e820(&mem, 0x100000, RAM - 0x100000, E820_RAM, NULL);
    if (!pvh_load(&mem, data + 1, size - 1, initrd, initrd_len, "console=ttyS0", 0,
                  &info, &err)) {
        g_assert(err && err->message[0]);
        g_error_free(err);
    } else {
        g_assert(info.kernel_end <= RAM);
    }
    return 0;
}
