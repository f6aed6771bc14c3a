/* Unit tests for migration's hand-over of a shared image (bdrv_inactivate /
 * bdrv_activate, BDRV_O_INACTIVE): two opens in one process conflict over
 * OFD locks just as two processes do, so one test plays source and
 * destination. The destination's inactive open takes no write lock and
 * refuses I/O; activation waits for the source to let go, then rereads
 * metadata the source changed; an inactive node closes without writing;
 * the source can take its image back; bitmaps survive the hand-over. */
#include <string.h>

#include <glib/gstdio.h>

#include "block/block.h"
#include "block/dirty-bitmap.h"

#define SIZE (16 * MiB)

static char *make_image(void)
{
    g_autofree char *dir = g_dir_make_tmp("tern-inactive-XXXXXX", NULL);
    char *path = g_build_filename(dir, "disk.qcow2", NULL);
    GError *err = NULL;

    g_assert_true(bdrv_create("qcow2", path, SIZE, NULL, &err));
    g_assert_no_error(err);
    return path;
}

static void drop_image(char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);

    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
}

static void fill(BlockNode *bs, uint64_t off, uint8_t byte, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);
    GError *err = NULL;

    memset(buf, byte, len);
    g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
    g_assert_no_error(err);
}

static void expect(BlockNode *bs, uint64_t off, uint8_t byte, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);
    GError *err = NULL;

    g_assert_true(bdrv_pread(bs, off, buf, len, &err));
    g_assert_no_error(err);
    for (size_t i = 0; i < len; i++) {
        g_assert_cmpuint(buf[i], ==, byte);
    }
}

static void assert_clean(const char *path)
{
    BlockNode *bs = bdrv_open(path, "qcow2", 0, NULL);
    BlockCheckResult res = { 0 };

    g_assert_nonnull(bs);
    g_assert_true(bdrv_check(bs, 0, &res, NULL));
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
    bdrv_close(bs);
}

static char *file_sha256(const char *path)
{
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
}

static void test_handover(void)
{
    char *path = make_image();
    BlockNode *src, *dst, *other;
    g_autofree char *before = NULL, *after = NULL;
    GError *err = NULL;
    uint8_t byte;

    src = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    fill(src, 0, 0x11, 64 * KiB);
    /* The destination opens alongside: no lock conflict, size known. */
    dst = bdrv_open(path, "qcow2", BDRV_O_RDWR | BDRV_O_INACTIVE, &err);
    g_assert_no_error(err);
    g_assert_true(bdrv_is_inactive(dst));
    g_assert_cmpuint(bdrv_getlength(dst), ==, SIZE);
    /* A third, active writer is still refused while the source writes. */
    other = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_null(other);
    g_assert_nonnull(strstr(err->message, "\"write\" lock"));
    g_clear_error(&err);
    /* No I/O on an inactive node. */
    g_assert_false(bdrv_pread(dst, 0, &byte, 1, &err));
    g_assert_nonnull(strstr(err->message, "inactive"));
    g_clear_error(&err);
    g_assert_false(bdrv_pwrite(dst, 0, &byte, 1, &err));
    g_clear_error(&err);
    /* Activation must wait for the source to let go. */
    g_assert_false(bdrv_activate(dst, &err));
    g_assert_nonnull(strstr(err->message, "\"write\" lock"));
    g_clear_error(&err);
    g_assert_true(bdrv_is_inactive(dst));
    /* The source goes on writing (new clusters: L2 and refcount changes
     * the destination has not seen), then hands over. */
    fill(src, 4 * MiB, 0x22, 128 * KiB);
    fill(src, 0, 0x33, 4 * KiB);
    g_assert_true(bdrv_inactivate(src, true, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_inactivate(src, true, &err));  /* idempotent */
    g_assert_false(bdrv_pwrite(src, 0, &byte, 1, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_activate(dst, &err));
    g_assert_no_error(err);
    g_assert_false(bdrv_is_inactive(dst));
    expect(dst, 0, 0x33, 4 * KiB);
    expect(dst, 4 * KiB, 0x11, 60 * KiB);
    expect(dst, 4 * MiB, 0x22, 128 * KiB);
    fill(dst, 8 * MiB, 0x44, 64 * KiB);
    /* Now the source could not take it back. */
    g_assert_false(bdrv_activate(src, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_flush(dst, &err));
    /* The inactive source closes without writing a byte. */
    before = file_sha256(path);
    bdrv_close(src);
    after = file_sha256(path);
    g_assert_cmpstr(before, ==, after);
    bdrv_close(dst);
    assert_clean(path);
    src = bdrv_open(path, "qcow2", 0, &err);
    g_assert_no_error(err);
    expect(src, 8 * MiB, 0x44, 64 * KiB);
    expect(src, 4 * MiB, 0x22, 128 * KiB);
    bdrv_close(src);
    drop_image(path);
}

/* A failed migration: the source takes its image back and goes on. */
static void test_source_reactivates(void)
{
    char *path = make_image();
    BlockNode *src, *dst;
    GError *err = NULL;

    src = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    dst = bdrv_open(path, "qcow2", BDRV_O_RDWR | BDRV_O_INACTIVE, &err);
    g_assert_no_error(err);
    fill(src, 0, 0x55, 64 * KiB);
    g_assert_true(bdrv_inactivate(src, false, &err));
    bdrv_close(dst);                    /* the destination died */
    g_assert_true(bdrv_activate(src, &err));
    g_assert_no_error(err);
    fill(src, 1 * MiB, 0x66, 64 * KiB);
    expect(src, 0, 0x55, 64 * KiB);
    bdrv_close(src);
    assert_clean(path);
    drop_image(path);
}

/* Persistent bitmaps stored at inactivation reach the destination; a
 * bitmap the destination got by migration wins over the image's copy. */
static void test_bitmaps_survive(void)
{
    char *path = make_image();
    BlockNode *src, *dst;
    BdrvDirtyBitmap *bm;
    GError *err = NULL;

    /* "old" is in the image before either side opens it. */
    src = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    bm = bdrv_create_dirty_bitmap(src, 64 * KiB, "old", &err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    bdrv_set_dirty_bitmap(bm, 0, 64 * KiB);
    bdrv_close(src);
    src = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    bdrv_set_dirty_bitmap(bdrv_find_dirty_bitmap(src, "old"), 2 * MiB,
                          64 * KiB);
    bm = bdrv_create_dirty_bitmap(src, 64 * KiB, "p", &err);
    g_assert_no_error(err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    bm = bdrv_create_dirty_bitmap(src, 64 * KiB, "m", &err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    fill(src, 0, 0x77, 128 * KiB);
    dst = bdrv_open(path, "qcow2", BDRV_O_RDWR | BDRV_O_INACTIVE, &err);
    g_assert_no_error(err);
    /* "m" as migration would deliver it: different bits. */
    bm = bdrv_create_dirty_bitmap(dst, 64 * KiB, "m", &err);
    g_assert_no_error(err);
    bdrv_set_dirty_bitmap(bm, 1 * MiB, 64 * KiB);
    g_assert_true(bdrv_inactivate(src, true, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_activate(dst, &err));
    g_assert_no_error(err);
    bm = bdrv_find_dirty_bitmap(dst, "p");
    g_assert_nonnull(bm);
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, 128 * KiB);
    bm = bdrv_find_dirty_bitmap(dst, "m");
    g_assert_nonnull(bm);
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, 64 * KiB);
    g_assert_true(bdrv_dirty_bitmap_get(bm, 1 * MiB));
    /* Loaded once, writable, with what the source had at the hand-over. */
    bm = bdrv_find_dirty_bitmap(dst, "old");
    g_assert_nonnull(bm);
    g_assert_false(bdrv_dirty_bitmap_readonly(bm));
    /* Recording: its own 64 KiB at 2 MiB plus the source's 128 KiB write. */
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, 192 * KiB);
    g_assert_cmpuint(g_list_length(dst->dirty_bitmaps), ==, 3);
    bdrv_close(src);
    bdrv_close(dst);
    assert_clean(path);
    drop_image(path);
}

/* Activation rereads the image; if that fails the node keeps no driver
 * state, and bitmap and snapshot calls that would reach the driver fail
 * cleanly instead of working on empty state (which leaked it, or read a
 * NULL L1 table). */
static void test_failed_reload(void)
{
    char *path = make_image();
    BlockNode *src;
    BdrvDirtyBitmap *bm;
    GError *err = NULL;
    FILE *f;

    src = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    bm = bdrv_create_dirty_bitmap(src, 64 * KiB, "kept", &err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    g_assert_true(bdrv_inactivate(src, true, &err));
    f = fopen(path, "r+b");                 /* the magic goes */
    g_assert_nonnull(f);
    g_assert_cmpint(fwrite("XXXX", 1, 4, f), ==, 4);
    fclose(f);
    g_assert_false(bdrv_activate(src, &err));
    g_clear_error(&err);
    bm = bdrv_create_dirty_bitmap(src, 64 * KiB, "new", &err);
    g_assert_no_error(err);
    g_assert_false(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    g_assert_nonnull(strstr(err->message, "stays unusable"));
    g_clear_error(&err);
    g_assert_false(bdrv_remove_dirty_bitmap(src, "kept", &err));
    g_assert_nonnull(strstr(err->message, "stays unusable"));
    g_clear_error(&err);
    BlockSnapshotInfo sn = { .name = (char *)"s", .icount = -1 };
    g_assert_false(bdrv_snapshot_create(src, &sn, &err));
    g_assert_nonnull(strstr(err->message, "inactive"));
    g_clear_error(&err);
    bdrv_close(src);
    drop_image(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/block-inactive/handover", test_handover);
    g_test_add_func("/block-inactive/source-reactivates",
                    test_source_reactivates);
    g_test_add_func("/block-inactive/bitmaps-survive", test_bitmaps_survive);
    g_test_add_func("/block-inactive/failed-reload", test_failed_reload);
    return g_test_run();
}
