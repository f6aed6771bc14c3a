/*
 * A protocol layer that fails on demand, for the host I/O error tests
 * (test-io-errors.c, test-virtio.c): test_fault_attach() puts it under an
 * open format node in place of its "file" driver; while test_fault_set()
 * holds an errno, every read, write, flush, discard and write-zeroes of the
 * file fails with that errno and a message that names no errno, so what
 * decides on the error can only be the code. Header-only; one fault at a
 * time per test binary (the I/O thread reads it too, hence the atomics).
 */
#ifndef TESTS_UNIT_TEST_BLOCK_FAULT_H
#define TESTS_UNIT_TEST_BLOCK_FAULT_H

#include "block/block-int.h"
#include "tern/error.h"

static int test_fault_errno;
static BlockDriver test_fault_driver;

static inline void test_fault_set(int errnum)
{
    g_atomic_int_set(&test_fault_errno, errnum);
}

static inline bool test_fault(const char *op, GError **errp)
{
    int errnum = g_atomic_int_get(&test_fault_errno);
    GError *err = NULL;

    if (!errnum) {
        return true;
    }
    tern_set_error_errno(&err, errnum, "injected %s fault", op);
    g_free(err->message);
    err->message = g_strdup_printf("injected %s fault", op);
    g_propagate_error(errp, err);
    return false;
}

static inline bool test_fault_preadv(BlockNode *bs, uint64_t offset,
                                     uint64_t bytes, const struct iovec *iov,
                                     int iovcnt, GError **errp)
{
    return test_fault("read", errp) &&
           bdrv_file.preadv(bs, offset, bytes, iov, iovcnt, errp);
}

static inline bool test_fault_pwritev(BlockNode *bs, uint64_t offset,
                                      uint64_t bytes, const struct iovec *iov,
                                      int iovcnt, GError **errp)
{
    return test_fault("write", errp) &&
           bdrv_file.pwritev(bs, offset, bytes, iov, iovcnt, errp);
}

static inline bool test_fault_flush(BlockNode *bs, GError **errp)
{
    return test_fault("flush", errp) && bdrv_file.flush(bs, errp);
}

static inline bool test_fault_discard(BlockNode *bs, uint64_t offset,
                                      uint64_t bytes, GError **errp)
{
    return test_fault("discard", errp) &&
           bdrv_file.discard(bs, offset, bytes, errp);
}

static inline bool test_fault_write_zeroes(BlockNode *bs, uint64_t offset,
                                           uint64_t bytes, bool unmap,
                                           GError **errp)
{
    return test_fault("write-zeroes", errp) &&
           bdrv_file.write_zeroes(bs, offset, bytes, unmap, errp);
}

/* bs: a format node opened on a host file. */
static inline void test_fault_attach(BlockNode *bs)
{
    test_fault_driver = bdrv_file;
    test_fault_driver.preadv = test_fault_preadv;
    test_fault_driver.pwritev = test_fault_pwritev;
    test_fault_driver.flush = test_fault_flush;
    test_fault_driver.discard = test_fault_discard;
    test_fault_driver.write_zeroes = test_fault_write_zeroes;
    g_assert_true(bs->file->drv == &bdrv_file);
    bs->file->drv = &test_fault_driver;
}

#endif
