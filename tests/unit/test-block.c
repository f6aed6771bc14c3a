/*
 * Unit tests for the block layer core and the raw/file drivers: probing,
 * opening by name, bounds and read-only checks, scatter-gather I/O, discard
 * (hole punching) and write-zeroes, flush, node names, the dirty-bitmap
 * hook that every write, write-zeroes and discard goes through, and the
 * block backend list with QEMU's naming rules.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-block-util.h"
#include "block/block-backend.h"
#include "block/dirty-bitmap.h"

static char *tmpdir;

static char *make_raw(const char *name, uint64_t size)
{
    GError *err = NULL;
    char *path = g_build_filename(tmpdir, name, NULL);
    g_assert_true(bdrv_create("raw", path, size, NULL, &err));
    g_assert_no_error(err);
    return path;
}

static BlockNode *open_raw(const char *path, int flags)
{
    GError *err = NULL;
    BlockNode *bs = bdrv_open(path, NULL, flags, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "raw");
    return bs;
}

static void test_probe_and_names(void)
{
    g_autofree char *raw = make_raw("p.raw", 1 * MiB);
    g_autofree char *q = g_build_filename(tmpdir, "p.qcow2", NULL);
    GError *err = NULL;

    g_assert_true(bdrv_create("qcow2", q, 1 * MiB, NULL, &err));
    g_assert_cmpstr(bdrv_probe_format(raw, &err), ==, "raw");
    g_assert_cmpstr(bdrv_probe_format(q, &err), ==, "qcow2");
    g_assert_null(bdrv_probe_format("/nonexistent/x", &err));
    g_assert_nonnull(strstr(err->message, "Could not open"));
    g_clear_error(&err);
    g_assert_null(bdrv_open(raw, "vdi", 0, &err));
    g_assert_nonnull(strstr(err->message, "Unknown driver 'vdi'"));
    g_clear_error(&err);
    g_assert_null(bdrv_open(raw, "file", 0, &err));   /* protocol, not format */
    g_clear_error(&err);
    g_assert_null(bdrv_open(tmpdir, "raw", 0, &err));
    g_assert_nonnull(strstr(err->message, "not a regular file"));
    g_clear_error(&err);
    /* a qcow2 image forced to raw shows its header bytes */
    BlockNode *bs = bdrv_open(q, "raw", 0, &err);
    uint8_t magic[4];
    g_assert_true(bdrv_pread(bs, 0, magic, 4, &err));
    g_assert_cmpmem(magic, 4, "QFI\xfb", 4);
    g_assert_true(g_str_has_prefix(bdrv_get_node_name(bs), "#block"));
    bdrv_set_node_name(bs, "disk0");
    g_assert_cmpstr(bdrv_get_node_name(bs), ==, "disk0");
    bdrv_close(bs);
}

static void test_raw_io(void)
{
    g_autofree char *path = make_raw("io.raw", 1 * MiB);
    GError *err = NULL;
    BlockNode *bs = open_raw(path, BDRV_O_RDWR);
    uint8_t a[1000], b[3000], back[4000];

    g_assert_cmpuint(bdrv_getlength(bs), ==, 1 * MiB);
    memset(a, 0xa1, sizeof(a));
    memset(b, 0xb2, sizeof(b));
    struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
    g_assert_true(bdrv_pwritev(bs, 12345, iov, 2, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_pread(bs, 12345, back, sizeof(back), &err));
    g_assert_cmpmem(back, 1000, a, 1000);
    g_assert_cmpmem(back + 1000, 3000, b, 3000);
    g_assert_true(bdrv_flush(bs, &err));

    g_assert_false(bdrv_pread(bs, 1 * MiB - 10, back, 11, &err));
    g_assert_nonnull(strstr(err->message, "past the end"));
    g_clear_error(&err);
    g_assert_false(bdrv_pwrite(bs, UINT64_MAX - 5, a, 10, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_pread(bs, 1 * MiB, back, 0, &err));   /* empty at end */
    bdrv_close(bs);

    bs = open_raw(path, 0);
    g_assert_true(bdrv_is_read_only(bs));
    g_assert_false(bdrv_pwrite(bs, 0, a, 10, &err));
    g_assert_nonnull(strstr(err->message, "read-only"));
    g_clear_error(&err);
    g_assert_false(bdrv_discard(bs, 0, 4096, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_pread(bs, 12345, back, 1000, &err));
    g_assert_cmpmem(back, 1000, a, 1000);
    bdrv_close(bs);
}

static void test_raw_discard_zeroes(void)
{
    g_autofree char *path = make_raw("dz.raw", 4 * MiB);
    GError *err = NULL;
    BlockNode *bs = open_raw(path, BDRV_O_RDWR);
    g_autofree uint8_t *buf = g_malloc(4 * MiB);
    struct stat st;

    memset(buf, 0x5c, 4 * MiB);
    g_assert_true(bdrv_pwrite(bs, 0, buf, 4 * MiB, &err));
    g_assert_true(bdrv_flush(bs, &err));
    g_assert_cmpint(stat(path, &st), ==, 0);
    int64_t before = st.st_blocks;
    g_assert_true(bdrv_discard(bs, 1 * MiB, 2 * MiB, &err));
    g_assert_true(bdrv_write_zeroes(bs, 100, 200, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_pread(bs, 0, buf, 4 * MiB, &err));
    for (size_t i = 0; i < 4 * MiB; i++) {
        bool zero = (i >= 100 && i < 300) || (i >= 1 * MiB && i < 3 * MiB);
        if (buf[i] != (zero ? 0 : 0x5c)) {
            g_error("byte %zu is %#x", i, buf[i]);
        }
    }
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_blocks, <, before);       /* the hole is real */
    g_assert_cmpint(st.st_size, ==, 4 * MiB);
    bdrv_close(bs);
}

static void test_dirty_bitmap_hook(gconstpointer fmt)
{
    g_autofree char *path = g_build_filename(tmpdir, "hook.img", NULL);
    GError *err = NULL;
    g_assert_true(bdrv_create(fmt, path, 16 * MiB, NULL, &err));
    BlockNode *bs = bdrv_open(path, fmt, BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    uint8_t buf[100] = { 1 };

    bdrv_lock(bs);
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, 64 * KiB, "b", &err);
    bdrv_unlock(bs);
    g_assert_no_error(err);
    g_assert_true(bdrv_pwrite(bs, 70 * KiB, buf, sizeof(buf), &err));
    g_assert_true(bdrv_write_zeroes(bs, 1 * MiB, 64 * KiB, &err));
    g_assert_true(bdrv_discard(bs, 4 * MiB, 128 * KiB, &err));
    g_assert_false(bdrv_pwrite(bs, 16 * MiB, buf, 1, &err));  /* failed */
    g_clear_error(&err);
    bdrv_lock(bs);
    g_assert_true(bdrv_dirty_bitmap_get(bm, 64 * KiB));
    g_assert_false(bdrv_dirty_bitmap_get(bm, 0));
    g_assert_true(bdrv_dirty_bitmap_get(bm, 1 * MiB));
    g_assert_true(bdrv_dirty_bitmap_get(bm, 4 * MiB + 64 * KiB));
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, 4 * 64 * KiB);
    bdrv_disable_dirty_bitmap(bm);
    bdrv_unlock(bs);
    g_assert_true(bdrv_pwrite(bs, 8 * MiB, buf, sizeof(buf), &err));
    bdrv_lock(bs);
    g_assert_false(bdrv_dirty_bitmap_get(bm, 8 * MiB));
    bdrv_unlock(bs);
    bdrv_close(bs);                         /* releases the bitmap */
    unlink(path);
}

/* Drive ids name a drive's root node; node-names name any node below a
 * drive; an unnamed drive's root goes by its node-name. */
static void test_backend_list(void)
{
    g_autofree char *a = make_raw("a.raw", 1 * MiB);
    g_autofree char *b = make_raw("b.raw", 1 * MiB);
    BlockBackendList *l = blk_list_new();
    BlockNode *na = open_raw(a, BDRV_O_RDWR), *nb = open_raw(b, 0);
    BlockBackend *da = blk_new("drive0", na, &l), *db = blk_new(NULL, nb, NULL);
    BlockBackend *dup = blk_new("drive0", NULL, NULL);
    GError *err = NULL;

    bdrv_set_node_name(na, "fmt0");
    bdrv_set_node_name(nb, "fmt1");
    g_assert_cmpuint(blk_list_count(NULL), ==, 0);
    g_assert_true(blk_list_add(l, da, &err));
    g_assert_true(blk_list_add(l, db, &err));
    g_assert_false(blk_list_add(l, dup, &err));
    g_assert_cmpstr(err->message, ==, "duplicate id 'drive0'");
    g_clear_error(&err);
    g_assert_cmpuint(blk_list_count(l), ==, 2);
    g_assert_true(blk_list_get(l, 1) == db);
    g_assert_null(blk_list_get(l, 2));
    g_assert_true(blk_list_find(l, "drive0") == da);
    g_assert_true(blk_opaque(da) == &l);
    g_assert_null(blk_list_find(l, ""));

    g_assert_true(blk_list_lookup_node(l, "drive0") == na);
    g_assert_true(blk_list_lookup_node(l, "fmt0") == na);
    g_assert_true(blk_list_lookup_node(l, "fmt1") == nb);
    g_assert_true(blk_list_lookup_node(l, bdrv_get_node_name(nb->file)) ==
                  nb->file);
    g_assert_null(blk_list_lookup_node(l, "nosuch"));
    g_assert_cmpstr(blk_list_node_name(l, na), ==, "drive0");
    g_assert_cmpstr(blk_list_node_name(l, nb), ==, "fmt1");
    g_assert_cmpstr(blk_list_node_name(l, na->file), ==,
                    bdrv_get_node_name(na->file));

    g_assert_null(blk_dev(da));
    g_assert_true(blk_attach_dev(da, "virtio-blk-pci", &err));
    g_assert_false(blk_attach_dev(da, "other", &err));
    g_assert_cmpstr(err->message, ==,
                    "drive 'drive0' is already used by virtio-blk-pci");
    g_clear_error(&err);
    g_assert_cmpstr(blk_dev(da), ==, "virtio-blk-pci");

    blk_list_remove(l, da);
    g_assert_null(blk_list_find(l, "drive0"));
    g_assert_null(blk_list_lookup_node(l, "fmt0"));
    blk_list_free(l);
    blk_free(da);
    blk_free(db);
    blk_free(dup);
}

static void test_create_raw_errors(void)
{
    GError *err = NULL;
    g_assert_false(bdrv_create("raw", "/nonexistent/dir/x.raw", 1, NULL,
                               &err));
    g_assert_nonnull(strstr(err->message, "Could not create"));
    g_clear_error(&err);
    g_assert_false(bdrv_create("vpc", "/nonexistent/x", 1, NULL, &err));
    g_assert_nonnull(strstr(err->message, "does not support image creation"));
    g_clear_error(&err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("test-block-XXXXXX", NULL);
    g_test_add_func("/block/probe-and-names", test_probe_and_names);
    g_test_add_func("/block/raw/io", test_raw_io);
    g_test_add_func("/block/raw/discard-zeroes", test_raw_discard_zeroes);
    g_test_add_data_func("/block/dirty-hook/raw", "raw",
                         test_dirty_bitmap_hook);
    g_test_add_data_func("/block/dirty-hook/qcow2", "qcow2",
                         test_dirty_bitmap_hook);
    g_test_add_func("/block/create-errors", test_create_raw_errors);
    g_test_add_func("/block/backend-list", test_backend_list);
    int ret = g_test_run();
    rm_scratch_dir(tmpdir);
    return ret;
}
