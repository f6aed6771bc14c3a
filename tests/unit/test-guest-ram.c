/*
 * Unit tests for guest RAM allocation (hw/core/guest-ram.c): one memfd split
 * around the PCI hole, regions that are slices of it (a write through the
 * region at 4 GiB shows up at its memfd offset), and refused sizes.
 */
#include <unistd.h>

#include "sysemu/guest-memory.h"
#include "tern/error.h"

static void test_split_around_hole(void)
{
    g_autoptr(GError) err = NULL;
    GuestMemory m;
    uint32_t v = 0xc0ffee, back = 0;

    g_assert_true(guest_mem_alloc(&m, 5 * GiB, 3 * GiB, &err));
    g_assert_no_error(err);
    g_assert_cmpint(m.fd, >=, 0);
    g_assert_cmpuint(m.ram_size, ==, 5 * GiB);
    g_assert_cmpuint(m.nr_regions, ==, 2);
    g_assert_cmphex(m.regions[0].gpa, ==, 0);
    g_assert_cmphex(m.regions[0].size, ==, 3 * GiB);
    g_assert_cmphex(m.regions[1].gpa, ==, 4 * GiB);
    g_assert_cmphex(m.regions[1].size, ==, 2 * GiB);
    g_assert_cmphex(m.regions[1].fd_offset, ==, 3 * GiB);
    /* The hole is not RAM. */
    g_assert_null(guest_mem_ptr(&m, 3 * GiB, 1));
    g_assert_null(guest_mem_ptr(&m, 3 * GiB - 4, 8));
    g_assert_true(guest_mem_write(&m, 4 * GiB + 4096, &v, sizeof(v), &err));
    g_assert_cmpint(pread(m.fd, &back, sizeof(back), 3 * GiB + 4096), ==, sizeof(back));
    g_assert_cmphex(back, ==, v);
    guest_mem_free(&m);
    g_assert_cmpint(m.fd, ==, -1);
}

static void test_small_is_one_region(void)
{
    GuestMemory m;

    g_assert_true(guest_mem_alloc(&m, 64 * MiB, 3 * GiB, NULL));
    g_assert_cmpuint(m.nr_regions, ==, 1);
    g_assert_cmphex(m.regions[0].size, ==, 64 * MiB);
    guest_mem_free(&m);
}

static void test_refused_sizes(void)
{
    static const uint64_t bad[] = { 0, 4095, 64 * MiB + 1, 1ULL << 50 };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        GuestMemory m;

        g_assert_false(guest_mem_alloc(&m, bad[i], 3 * GiB, &err));
        g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
        g_assert_cmpint(m.fd, ==, -1);
        guest_mem_free(&m);   /* safe after a failure */
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest-ram/split-around-hole", test_split_around_hole);
    g_test_add_func("/guest-ram/small-is-one-region", test_small_is_one_region);
    g_test_add_func("/guest-ram/refused-sizes", test_refused_sizes);
    return g_test_run();
}
