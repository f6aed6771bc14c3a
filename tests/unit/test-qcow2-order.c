/*
 * What qcow2's metadata ordering costs in syncs of the image file (the
 * order itself is tested by replaying power cuts: tests/functional/
 * test_qcow2_power_cut.py). A protocol layer that counts flushes sits
 * under the node. Allocating writes sync nothing, not even for a new L2
 * table (it and its refcount block are written with RWF_DSYNC before the
 * L1 entry points at it, so the guest's data is not pushed out with them);
 * a flush after allocations costs two syncs (refcounts, then the L2 tables
 * that use them); writes that copy a snapshot's clusters sync nothing
 * either, and their flush costs three (the freed clusters' counts drop
 * only after the L2 tables are durable); rewrites in place cost the one
 * sync of the flush.
 */
#include <string.h>

#include "block/block-int.h"
#include "test-block-util.h"

static BlockDriver counting_driver;
static unsigned syncs;

static bool counting_flush(BlockNode *bs, GError **errp)
{
    syncs++;
    return bdrv_file.flush(bs, errp);
}

static BlockNode *open_counted(const char *path)
{
    BlockNode *bs = must_open(path, BDRV_O_RDWR);

    counting_driver = bdrv_file;
    counting_driver.flush = counting_flush;
    g_assert_true(bs->file->drv == &bdrv_file);
    bs->file->drv = &counting_driver;
    return bs;
}

/* 4 KiB writes at 'n' cluster-spaced offsets from 'first' (64 KiB clusters:
 * each write is a partial cluster). */
static void write_spread(BlockNode *bs, uint64_t first, int n, int pat)
{
    for (int i = 0; i < n; i++) {
        fill(bs, first + (uint64_t)i * 64 * KiB + 4 * KiB, 4 * KiB, pat);
    }
}

static unsigned syncs_of_flush(BlockNode *bs)
{
    unsigned before = syncs;
    GError *err = NULL;

    g_assert_true(bdrv_flush(bs, &err));
    g_assert_no_error(err);
    return syncs - before;
}

static void test_sync_costs(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *path = scratch_qcow2("tern-qcow2-order-XXXXXX",
                                          64 * MiB, &dir);
    BlockNode *bs = open_counted(path);
    BlockSnapshotInfo sn = { .name = (char *)"s", .icount = -1 };
    GError *err = NULL;

    syncs = 0;
    write_spread(bs, 0, 1, 0x11);            /* the first L2 table */
    write_spread(bs, 1 * MiB, 64, 0x12);     /* allocating, same table */
    g_assert_cmpuint(syncs, ==, 0);
    g_assert_cmpuint(syncs_of_flush(bs), ==, 2);
    write_spread(bs, 1 * MiB, 64, 0x13);     /* in place */
    g_assert_cmpuint(syncs, ==, 2);
    g_assert_cmpuint(syncs_of_flush(bs), ==, 1);

    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    syncs = 0;
    write_spread(bs, 1 * MiB, 64, 0x14);     /* copy the shared clusters */
    g_assert_cmpuint(syncs, ==, 0);          /* (and the shared L2 table) */
    g_assert_cmpuint(syncs_of_flush(bs), ==, 3);
    bdrv_close(bs);
    assert_file_clean(path);
    rm_scratch_dir(g_steal_pointer(&dir));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-order/sync-costs", test_sync_costs);
    return g_test_run();
}
