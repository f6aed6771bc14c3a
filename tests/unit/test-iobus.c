/*
 * Unit tests for the I/O bus (hw/core/iobus.c): dispatch with base-relative
 * offsets, overlap refusal, unclaimed accesses reading all ones, removal, and
 * accesses that straddle a range's end.
 */
#include "hw/core/iobus.h"
#include "tern/error.h"

typedef struct Dev {
    uint64_t last_off, last_val;
    unsigned last_size, writes;
    uint64_t read_val;
} Dev;

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    Dev *d = opaque;

    d->last_off = off;
    d->last_size = size;
    return d->read_val;
}

static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    Dev *d = opaque;

    d->last_off = off;
    d->last_val = val;
    d->last_size = size;
    d->writes++;
}

static const IoOps dev_ops = { .read = dev_read, .write = dev_write };

static void test_dispatch(void)
{
    IoBus *bus = iobus_new("test");
    Dev a = { .read_val = 0x55 }, b = { .read_val = 0x66 };
    uint64_t v;

    g_assert_true(iobus_register(bus, 0x3f8, 8, &dev_ops, &a, NULL));
    g_assert_true(iobus_register(bus, 0x100, 4, &dev_ops, &b, NULL));
    g_assert_true(iobus_write(bus, 0x3fb, 0x80, 1));
    g_assert_cmpuint(a.last_off, ==, 3);
    g_assert_cmpuint(a.last_val, ==, 0x80);
    g_assert_true(iobus_read(bus, 0x102, &v, 2));
    g_assert_cmpuint(v, ==, 0x66);
    g_assert_cmpuint(b.last_off, ==, 2);
    g_assert_cmpuint(b.last_size, ==, 2);
    iobus_free(bus);
}

static void test_overlap(void)
{
    IoBus *bus = iobus_new("test");
    Dev a = { 0 };
    g_autoptr(GError) err = NULL;

    g_assert_true(iobus_register(bus, 0x1000, 0x100, &dev_ops, &a, NULL));
    g_assert_false(iobus_register(bus, 0x10ff, 1, &dev_ops, &a, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_BUSY);
    g_clear_error(&err);
    g_assert_false(iobus_register(bus, 0xf00, 0x101, &dev_ops, &a, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_BUSY);
    g_clear_error(&err);
    g_assert_false(iobus_register(bus, 0, 0, &dev_ops, &a, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    g_assert_false(iobus_register(bus, UINT64_MAX, 2, &dev_ops, &a, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    /* Adjacent ranges are fine. */
    g_assert_true(iobus_register(bus, 0xf00, 0x100, &dev_ops, &a, NULL));
    g_assert_true(iobus_register(bus, 0x1100, 0x10, &dev_ops, &a, NULL));
    iobus_free(bus);
}

static void test_unclaimed(void)
{
    IoBus *bus = iobus_new("test");
    Dev a = { .read_val = 1 };
    uint64_t v = 0;

    g_assert_true(iobus_register(bus, 0x60, 1, &dev_ops, &a, NULL));
    g_assert_false(iobus_read(bus, 0x61, &v, 1));
    g_assert_cmphex(v, ==, 0xff);
    g_assert_false(iobus_read(bus, 0x61, &v, 4));
    g_assert_cmphex(v, ==, 0xffffffff);
    g_assert_false(iobus_read(bus, 0x1000, &v, 8));
    g_assert_cmphex(v, ==, UINT64_MAX);
    /* A 2-byte access at the last byte of a 1-byte range is not claimed. */
    g_assert_false(iobus_read(bus, 0x60, &v, 2));
    g_assert_false(iobus_write(bus, 0x5f, 0, 1));
    g_assert_cmpuint(a.writes, ==, 0);
    iobus_free(bus);
}

static void test_unregister(void)
{
    IoBus *bus = iobus_new("test");
    Dev a = { .read_val = 7 };
    uint64_t v;

    g_assert_true(iobus_register(bus, 0xcf8, 8, &dev_ops, &a, NULL));
    g_assert_false(iobus_unregister(bus, 0xcf9));
    g_assert_true(iobus_unregister(bus, 0xcf8));
    g_assert_false(iobus_read(bus, 0xcf8, &v, 4));
    g_assert_true(iobus_register(bus, 0xcf8, 8, &dev_ops, &a, NULL));
    g_assert_true(iobus_read(bus, 0xcfc, &v, 4));
    g_assert_cmpuint(v, ==, 7);
    iobus_free(bus);
}

static void test_many_ranges(void)
{
    IoBus *bus = iobus_new("test");
    Dev devs[64] = { 0 };
    uint64_t v;

    /* Registered out of order: lookup must still find each one. */
    for (unsigned i = 0; i < 64; i++) {
        unsigned j = (i * 37) % 64;

        devs[j].read_val = j;
        g_assert_true(iobus_register(bus, 0x10000 + j * 0x100, 0x10, &dev_ops,
                                     &devs[j], NULL));
    }
    for (unsigned j = 0; j < 64; j++) {
        g_assert_true(iobus_read(bus, 0x10000 + j * 0x100 + 0xf, &v, 1));
        g_assert_cmpuint(v, ==, j);
        g_assert_false(iobus_read(bus, 0x10000 + j * 0x100 + 0x10, &v, 1));
    }
    iobus_free(bus);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/iobus/dispatch", test_dispatch);
    g_test_add_func("/iobus/overlap", test_overlap);
    g_test_add_func("/iobus/unclaimed", test_unclaimed);
    g_test_add_func("/iobus/unregister", test_unregister);
    g_test_add_func("/iobus/many-ranges", test_many_ranges);
    return g_test_run();
}
