/*
 * Unit tests for guest RAM allocation (hw/core/guest-ram.c): one memfd split
 * around the PCI hole, regions that are slices of it (a write through the
 * region at 4 GiB shows up at its memfd offset), refused sizes, and zeroing
 * (whole pages become memfd holes, partial pages are written, nothing outside
 * the range changes).
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw/core/guest-memory.h"
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

/* Fill [0, 5 pages) with 0xaa, zero [start, start+len), check that
 * 'resident' bytes of the memfd are allocated (before reading anything back:
 * a read fault on a hole allocates the page again), then check every byte. */
static void check_zero(GuestMemory *m, uint64_t start, uint64_t len, uint64_t resident)
{
    uint8_t *p = guest_mem_ptr(m, 0, 5 * 4096);
    g_autoptr(GError) err = NULL;
    struct stat st;

    g_assert_cmpint(ftruncate(m->fd, 0), ==, 0);
    g_assert_cmpint(ftruncate(m->fd, m->ram_size), ==, 0);
    memset(p, 0xaa, 5 * 4096);
    g_assert_true(guest_mem_zero(m, start, len, &err));
    g_assert_no_error(err);
    g_assert_cmpint(fstat(m->fd, &st), ==, 0);
    g_assert_cmpuint((uint64_t)st.st_blocks * 512, ==, resident);
    for (uint64_t i = 0; i < 5 * 4096; i++) {
        if (p[i] != (i >= start && i < start + len ? 0 : 0xaa)) {
            g_error("byte %" PRIu64 " is 0x%x after zeroing 0x%" PRIx64 "+0x%" PRIx64,
                    i, p[i], start, len);
        }
    }
}

static void test_zero(void)
{
    g_autoptr(GError) err = NULL;
    GuestMemory m;

    g_assert_true(guest_mem_alloc(&m, 1 * MiB, 1 * MiB, &err));
    check_zero(&m, 100, 4 * 4096, 2 * 4096);        /* partial, 3 whole pages freed, partial */
    check_zero(&m, 4096, 2 * 4096, 3 * 4096);       /* page aligned: 2 pages freed */
    check_zero(&m, 10, 20, 5 * 4096);               /* inside one page: written */
    check_zero(&m, 4000, 200, 5 * 4096);            /* across one page boundary */
    check_zero(&m, 0, 0, 5 * 4096);
    g_assert_false(guest_mem_zero(&m, 1 * MiB - 8, 16, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    guest_mem_free(&m);
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
    g_test_add_func("/guest-ram/zero", test_zero);
    return g_test_run();
}
