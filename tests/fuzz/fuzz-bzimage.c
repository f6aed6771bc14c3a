/*
 * Fuzzes the bzImage loader with hostile kernel images: the setup header is
 * parsed from the input and the kernel loaded into 4 MiB of guest RAM with a
 * small initrd and command line. Any input must end in success or a GError,
 * never a crash, an out-of-bounds write or a leak.
 */
#include <string.h>

#include "target/i386/bzimage.h"

#define FUZZ_RAM (4 * MiB)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t initrd[3000];
    GuestMemory mem = { .fd = -1, .nr_regions = 1 };
    X86BootState st;
    BzImageLayout layout;
    GError *err = NULL;

    mem.regions[0] = (GuestRegion){ .gpa = 0, .size = FUZZ_RAM,
                                    .hva = g_malloc0(FUZZ_RAM) };
    mem.ram_size = FUZZ_RAM;
    guest_mem_add_e820(&mem, 0, 0x9fc00, E820_RAM, NULL);
    guest_mem_add_e820(&mem, 0x100000, FUZZ_RAM - 0x100000, E820_RAM, NULL);
    if (!bzimage_load(&mem, data, size, initrd, sizeof(initrd),
                      "console=ttyS0", &st, &layout, &err)) {
        g_assert(err != NULL);
        g_error_free(err);
    } else {
        g_assert(layout.entry == layout.kernel_addr + 0x200);
        g_assert(layout.initrd_addr + layout.initrd_size <= FUZZ_RAM);
    }
    g_free(mem.regions[0].hva);
    return 0;
}
