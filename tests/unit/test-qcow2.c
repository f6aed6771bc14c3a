/*
 * Unit tests for qcow2-lite through the public block API: create/open for
 * v2 and v3 and cluster sizes 512 B .. 2 MiB, data round trips, copy on
 * write with snapshots, snapshot metadata, the vmstate area, refcount-table
 * growth, discard/zeroes, header extensions preserved, the dirty bit, and
 * hostile images crafted byte by byte (each must fail with a clear error,
 * never crash). Every image is checked with bdrv_check() at the end.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"
#include "test-block-util.h"

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static char *make_image(const char *name, uint64_t size, uint32_t cs,
                        const char *compat)
{
    GError *err = NULL;
    char *path = tmp_path(name);
    BlockCreateOpts o = { .cluster_size = cs, .compat = compat };
    g_assert_true(bdrv_create("qcow2", path, size, &o, &err));
    g_assert_no_error(err);
    return path;
}

static void expect(BlockNode *bs, uint64_t off, uint64_t len, int pat)
{
    GError *err = NULL;
    g_autofree uint8_t *buf = g_malloc(len);
    g_assert_true(bdrv_pread(bs, off, buf, len, &err));
    g_assert_no_error(err);
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i] != pat) {
            g_error("offset %" PRIu64 ": %#x, expected %#x", off + i, buf[i],
                    pat);
        }
    }
}

static void assert_clean(BlockNode *bs)
{
    BlockCheckResult res;
    GError *err = NULL;
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
}

static void check_file_clean(const char *path)
{
    BlockNode *bs = must_open(path, 0);
    assert_clean(bs);
    bdrv_close(bs);
}

/* ---- byte patching for hostile images ---- */

static void expect_open_fails(const char *path, int flags, const char *what)
{
    GError *err = NULL;
    BlockNode *bs = bdrv_open(path, "qcow2", flags, &err);
    g_assert_null(bs);
    g_assert_nonnull(err);
    if (!strstr(err->message, what)) {
        g_error("error '%s' does not mention '%s'", err->message, what);
    }
    g_error_free(err);
}

/* ---- tests ---- */

static void test_roundtrip(gconstpointer data)
{
    const char *spec = data;     /* "<cluster size>/<compat>" */
    g_auto(GStrv) parts = g_strsplit(spec, "/", 2);
    uint32_t cs = (uint32_t)g_ascii_strtoull(parts[0], NULL, 10);
    g_autofree char *name = g_strdup_printf("rt-%u-%s.qcow2", cs, parts[1]);
    g_autofree char *path = make_image(name, 64 * MiB, cs, parts[1]);

    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    g_assert_cmpuint(bdrv_getlength(bs), ==, 64 * MiB);
    expect(bs, 0, 1 * MiB, 0);
    fill(bs, 0, 3 * MiB + 123, 0xab);          /* unaligned end */
    fill(bs, 10 * MiB + 7, 5000, 0x11);        /* straddles clusters */
    fill(bs, 64 * MiB - 512, 512, 0x22);       /* last sector */
    expect(bs, 0, 3 * MiB + 123, 0xab);
    expect(bs, 3 * MiB + 123, 1000, 0);
    assert_clean(bs);
    bdrv_close(bs);

    bs = must_open(path, 0);
    expect(bs, 10 * MiB + 7, 5000, 0x11);
    expect(bs, 10 * MiB, 7, 0);
    expect(bs, 64 * MiB - 512, 512, 0x22);
    g_autoptr(BlockImageInfo) info = NULL;
    g_assert_true(bdrv_get_info(bs, &info, NULL));
    g_assert_cmpuint(info->cluster_size, ==, cs);
    g_assert_cmpstr(info->compat, ==, parts[1]);
    g_assert_cmpint(info->refcount_bits, ==, 16);
    assert_clean(bs);
    bdrv_close(bs);
}

static void test_bounds_and_readonly(void)
{
    g_autofree char *path = make_image("bounds.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    uint8_t buf[512] = { 0 };
    BlockNode *bs = must_open(path, 0);

    g_assert_false(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));
    g_assert_true(strstr(err->message, "read-only") != NULL);
    g_clear_error(&err);
    g_assert_false(bdrv_pread(bs, 1 * MiB - 100, buf, sizeof(buf), &err));
    g_assert_true(strstr(err->message, "past the end") != NULL);
    g_clear_error(&err);
    bdrv_close(bs);
}

/* The open flags of this process's descriptor for 'path', or -1. */
static int fd_flags_of(const char *path)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *link = g_strdup_printf("/proc/self/fd/%s", n);
        g_autofree char *target = g_file_read_link(link, NULL);
        g_autofree char *info = g_strdup_printf("/proc/self/fdinfo/%s", n);
        g_autofree char *text = NULL;
        if (target && !strcmp(target, path) &&
            g_file_get_contents(info, &text, NULL, NULL)) {
            const char *f = strstr(text, "flags:");
            return f ? (int)g_ascii_strtoull(f + 6, NULL, 8) : -1;
        }
    }
    return -1;
}

/* cache=none: O_DIRECT for qcow2 too; its unaligned metadata updates (an
 * 8-byte L1 entry, a 12-byte header field) are bounced by the file layer. */
static void test_nocache(void)
{
    g_autofree char *path = make_image("nocache.qcow2", 1 * MiB, 512, NULL);
    GError *err = NULL;
    BlockNode *bs = open_nocache_or_skip(path);
    if (!bs) {
        return;
    }
    g_assert_cmpint(fd_flags_of(path) & O_DIRECT, ==, O_DIRECT);
    fill(bs, 1000, 3000, 0x42);
    fill(bs, 700 * KiB + 1, 5, 0x43);
    BlockSnapshotInfo sn = { .name = (char *)"s", .icount = -1 };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    fill(bs, 1000, 10, 0x44);
    expect(bs, 1000, 10, 0x44);
    expect(bs, 1010, 2990, 0x42);
    expect(bs, 700 * KiB + 1, 5, 0x43);
    g_assert_true(bdrv_flush(bs, NULL));
    assert_clean(bs);
    bdrv_close(bs);
    check_file_clean(path);
}

static void test_resize(void)
{
    g_autofree char *path = make_image("resize.qcow2", 1 * MiB, 512, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 1 * MiB, 0x31);
    g_assert_true(bdrv_save_vmstate(bs, 0, "stale", 5, &err)); /* past end */
    g_assert_true(bdrv_truncate(bs, 64 * MiB, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(bdrv_getlength(bs), ==, 64 * MiB);
    expect(bs, 0, 1 * MiB, 0x31);
    expect(bs, 1 * MiB, 63 * MiB, 0);             /* old vmstate is gone */
    fill(bs, 63 * MiB, 1 * MiB, 0x32);
    g_assert_false(bdrv_truncate(bs, 32 * MiB, &err));
    g_assert_nonnull(strstr(err->message, "shrinking"));
    g_clear_error(&err);
    assert_clean(bs);
    BlockSnapshotInfo sn = { .name = (char *)"s" };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_false(bdrv_truncate(bs, 128 * MiB, &err));
    g_assert_nonnull(strstr(err->message, "snapshots"));
    g_clear_error(&err);
    bdrv_close(bs);
    bs = must_open(path, 0);
    g_assert_cmpuint(bdrv_getlength(bs), ==, 64 * MiB);
    expect(bs, 63 * MiB, 1 * MiB, 0x32);
    g_assert_false(bdrv_truncate(bs, 128 * MiB, &err));   /* read-only */
    g_clear_error(&err);
    bdrv_close(bs);
}

static void test_snapshots(void)
{
    g_autofree char *path = make_image("snap.qcow2", 16 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);

    fill(bs, 0, 2 * MiB, 0x01);
    BlockSnapshotInfo sn = {
        .name = (char *)"first", .date_sec = 1700000000, .date_nsec = 5,
        .vm_clock_nsec = 3 * 1000000000ULL + 7, .icount = 42,
    };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    assert_clean(bs);
    fill(bs, 4096, 4096, 0x02);                /* COW inside a shared cluster */
    fill(bs, 1 * MiB, 1 * MiB, 0x03);          /* whole clusters */
    expect(bs, 0, 4096, 0x01);
    expect(bs, 4096, 4096, 0x02);
    expect(bs, 8192, 1 * MiB - 8192, 0x01);
    assert_clean(bs);

    sn.name = (char *)"second";
    sn.icount = -1;
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    g_autoptr(GPtrArray) list = bdrv_snapshot_list(bs, &err);
    g_assert_cmpuint(list->len, ==, 2);
    BlockSnapshotInfo *s0 = list->pdata[0], *s1 = list->pdata[1];
    g_assert_cmpstr(s0->id_str, ==, "1");
    g_assert_cmpstr(s0->name, ==, "first");
    g_assert_cmpuint(s0->date_sec, ==, 1700000000);
    g_assert_cmpuint(s0->vm_clock_nsec, ==, 3 * 1000000000ULL + 7);
    g_assert_cmpint(s0->icount, ==, 42);
    g_assert_cmpuint(s0->disk_size, ==, 16 * MiB);
    g_assert_cmpstr(s1->id_str, ==, "2");
    g_assert_cmpint(s1->icount, ==, -1);

    /* duplicate id refused */
    sn.id_str = (char *)"1";
    g_assert_false(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);

    /* Refused while a dirty bitmap exists (it would miss the revert),
     * with the data left alone; allowed once it is gone. */
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, 65536, NULL, &err);
    g_assert_no_error(err);
    g_assert_false(bdrv_snapshot_apply(bs, "first", &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_BUSY);
    g_assert_cmpstr(err->message, ==, "Device has active dirty bitmaps");
    g_clear_error(&err);
    expect(bs, 4096, 4096, 0x02);
    bdrv_release_dirty_bitmap(bm);
    g_assert_true(bdrv_snapshot_apply(bs, "first", &err));
    g_assert_no_error(err);
    expect(bs, 0, 2 * MiB, 0x01);
    assert_clean(bs);
    g_assert_true(bdrv_snapshot_apply(bs, "2", &err));  /* by id */
    expect(bs, 4096, 4096, 0x02);
    expect(bs, 1 * MiB, 1 * MiB, 0x03);
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "first", &err));
    g_assert_no_error(err);
    assert_clean(bs);
    g_assert_false(bdrv_snapshot_apply(bs, "first", &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_NOT_FOUND);
    g_clear_error(&err);
    fill(bs, 0, 1 * MiB, 0x04);      /* refcount back to 1: in place */
    g_assert_true(bdrv_snapshot_delete(bs, "2", NULL, &err));
    assert_clean(bs);
    bdrv_close(bs);

    bs = must_open(path, 0);
    expect(bs, 0, 1 * MiB, 0x04);
    expect(bs, 1 * MiB, 1 * MiB, 0x03);
    list = (g_ptr_array_unref(list), bdrv_snapshot_list(bs, &err));
    g_assert_cmpuint(list->len, ==, 0);
    bdrv_close(bs);
}

static void test_vmstate(void)
{
    g_autofree char *path = make_image("vm.qcow2", 8 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    const size_t len = 3 * MiB + 17;
    g_autofree uint8_t *state = g_malloc(len), *back = g_malloc(len);

    for (size_t i = 0; i < len; i++) {
        state[i] = (uint8_t)(i * 7 + 3);
    }
    fill(bs, 0, 8 * MiB, 0x5a);
    g_assert_true(bdrv_save_vmstate(bs, 0, state, len, &err));
    g_assert_no_error(err);
    expect(bs, 0, 8 * MiB, 0x5a);             /* disk untouched */
    BlockSnapshotInfo sn = { .name = (char *)"vm", .vm_state_size = len };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    assert_clean(bs);
    fill(bs, 0, 1 * MiB, 0x00);
    g_assert_true(bdrv_snapshot_apply(bs, "vm", &err));
    g_assert_true(bdrv_load_vmstate(bs, 0, back, len, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(state, len, back, len);
    assert_clean(bs);
    bdrv_close(bs);

    g_autofree char *raw = tmp_path("vm.raw");
    g_assert_true(bdrv_create("raw", raw, 1 * MiB, NULL, &err));
    bs = bdrv_open(raw, "raw", BDRV_O_RDWR, &err);
    g_assert_false(bdrv_save_vmstate(bs, 0, state, 16, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_NOT_SUPPORTED);
    g_clear_error(&err);
    bdrv_close(bs);
}

/* 512-byte clusters: one refcount table cluster covers only 8 MiB, so
 * filling 24 MiB makes the table grow twice; a 2 MiB L1 table at creation
 * exercises the same path. */
static void test_refcount_growth(void)
{
    g_autofree char *path = make_image("grow.qcow2", 4 * GiB, 512, NULL);
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    for (int i = 0; i < 24; i++) {
        fill(bs, (uint64_t)i * 100 * MiB, 1 * MiB, i + 1);
    }
    assert_clean(bs);
    bdrv_close(bs);
    bs = must_open(path, 0);
    for (int i = 0; i < 24; i++) {
        expect(bs, (uint64_t)i * 100 * MiB, 1 * MiB, i + 1);
    }
    assert_clean(bs);
    bdrv_close(bs);
}

static void test_discard_zeroes(void)
{
    g_autofree char *path = make_image("z.qcow2", 8 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR | BDRV_O_UNMAP);
    fill(bs, 0, 8 * MiB, 0x77);
    g_assert_true(bdrv_write_zeroes(bs, 1000, 300 * KiB, true, &err));
    g_assert_true(bdrv_discard(bs, 4 * MiB, 1 * MiB, &err));
    g_assert_no_error(err);
    expect(bs, 0, 1000, 0x77);
    expect(bs, 1000, 300 * KiB, 0);
    expect(bs, 1000 + 300 * KiB, 1000, 0x77);
    expect(bs, 4 * MiB, 1 * MiB, 0);
    assert_clean(bs);
    bdrv_close(bs);
}

static int64_t allocated_clusters(BlockNode *bs)
{
    BlockCheckResult res;
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, NULL));
    g_assert_cmpint(res.corruptions + res.leaks, ==, 0);
    return res.allocated_clusters;
}

/* Without BDRV_O_UNMAP (discard=ignore) a discard leaves the data and the
 * clusters, and write-zeroes keeps the clusters (v3: ZERO flag on the
 * allocated entry, written in place again later); with it both unmap. */
static void test_unmap_policy(void)
{
    g_autofree char *path = make_image("up.qcow2", 8 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 8 * MiB, 0x66);
    int64_t all = allocated_clusters(bs);
    g_assert_true(bdrv_discard(bs, 0, 1 * MiB, &err));
    expect(bs, 0, 1 * MiB, 0x66);
    g_assert_true(bdrv_write_zeroes(bs, 1 * MiB, 1 * MiB, true, &err));
    g_assert_no_error(err);
    expect(bs, 1 * MiB, 1 * MiB, 0);
    g_assert_cmpint(allocated_clusters(bs), ==, all);
    fill(bs, 1 * MiB + 100, 50, 0x67);        /* into a kept zero cluster */
    expect(bs, 1 * MiB, 100, 0);
    expect(bs, 1 * MiB + 100, 50, 0x67);
    expect(bs, 1 * MiB + 150, 64 * KiB - 150, 0);
    g_assert_cmpint(allocated_clusters(bs), ==, all);
    bdrv_close(bs);

    bs = must_open(path, BDRV_O_RDWR | BDRV_O_UNMAP);
    g_assert_true(bdrv_write_zeroes(bs, 2 * MiB, 1 * MiB, false, &err));
    g_assert_cmpint(allocated_clusters(bs), ==, all);
    g_assert_true(bdrv_write_zeroes(bs, 2 * MiB, 1 * MiB, true, &err));
    g_assert_true(bdrv_discard(bs, 4 * MiB, 1 * MiB, &err));
    g_assert_no_error(err);
    g_assert_cmpint(allocated_clusters(bs), ==, all - 2 * 16);
    expect(bs, 2 * MiB, 1 * MiB, 0);
    expect(bs, 4 * MiB, 1 * MiB, 0);
    assert_clean(bs);
    bdrv_close(bs);
}

static void test_unknown_extension_kept(void)
{
    g_autofree char *path = make_image("ext.qcow2", 1 * MiB, 0, NULL);
    /* v3 header is 112 bytes, then the feature table (8 + 8*48), then END */
    uint64_t end = 112 + 8 + 8 * 48;
    g_assert_cmpuint(read_be64(path, end), ==, 0);
    patch_be32(path, end, 0x12345678);
    patch_be32(path, end + 4, 5);
    patch(path, end + 8, "hello\0\0\0", 8);
    patch_be64(path, end + 16, 0);

    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 4096, 1);
    GError *err = NULL;
    BlockSnapshotInfo sn = { .name = (char *)"s" };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));  /* header rewrite */
    bdrv_close(bs);
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_nonnull(memmem(data, 4096, "\x12\x34\x56\x78\0\0\0\x05hello",
                            13));
    check_file_clean(path);
}

static void test_dirty_bit_repaired(void)
{
    g_autofree char *path = make_image("dirty.qcow2", 1 * MiB, 0, NULL);
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 64 * KiB, 1);
    bdrv_close(bs);
    /* leak a cluster: bump the header cluster's refcount to 2 */
    uint64_t rb = read_be64(path, 65536);          /* reftable[0] */
    uint16_t two = GUINT16_TO_BE(2);
    patch(path, rb, &two, 2);
    patch_be64(path, 72, 1);                       /* dirty bit */
    bs = must_open(path, BDRV_O_RDWR);             /* repairs on open */
    assert_clean(bs);
    g_autoptr(BlockImageInfo) info = NULL;
    g_assert_true(bdrv_get_info(bs, &info, NULL));
    g_assert_false(info->dirty_flag);
    expect(bs, 0, 64 * KiB, 1);
    bdrv_close(bs);
    g_assert_cmpuint(read_be64(path, 72), ==, 0);
}

static void test_check_finds_and_repairs_leak(void)
{
    g_autofree char *path = make_image("leak.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    uint64_t rb = read_be64(path, 65536);
    uint16_t one = GUINT16_TO_BE(1);
    patch(path, rb + 2 * 10, &one, 2);            /* cluster 10: unused */
    g_assert_cmpint(truncate(path, 11 * 65536), ==, 0);
    BlockNode *bs = must_open(path, BDRV_O_RDWR | BDRV_O_CHECK);
    BlockCheckResult res;
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_true(bdrv_check(bs, BDRV_FIX_LEAKS, &res, &err));
    g_assert_cmpint(res.leaks_fixed, ==, 1);
    assert_clean(bs);
    bdrv_close(bs);

    /* refcount too low: header cluster at 0 -> a corruption */
    uint16_t zero = 0;
    patch(path, rb, &zero, 2);
    bs = must_open(path, BDRV_O_RDWR | BDRV_O_CHECK);
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_cmpint(res.corruptions, ==, 1);
    g_assert_true(bdrv_check(bs, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS, &res,
                             &err));
    g_assert_cmpint(res.corruptions_fixed, ==, 1);
    assert_clean(bs);
    bdrv_close(bs);
}

static void test_refcount_overflow(void)
{
    g_autofree char *path = make_image("ovf.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 64 * KiB, 1);
    bdrv_close(bs);
    /* data cluster is cluster 5 (header, reftable, refblock, L1, L2) */
    uint64_t rb = read_be64(path, 65536);
    uint16_t max = GUINT16_TO_BE(0xffff);
    patch(path, rb + 2 * 5, &max, 2);
    bs = must_open(path, BDRV_O_RDWR);
    BlockSnapshotInfo sn = { .name = (char *)"s" };
    g_assert_false(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "overflow"));
    g_clear_error(&err);
    bdrv_close(bs);
}

typedef struct Hostile {
    const char *name;
    uint64_t off;
    int width;          /* 4 or 8 bytes, big-endian */
    uint64_t value;
    int flags;
    const char *error;
} Hostile;

static const Hostile hostile[] = {
    { "magic", 0, 4, 0x12345678, 0, "not in qcow2 format" },
    { "version", 4, 4, 4, 0, "Unsupported qcow2 version 4" },
    { "backing", 8, 8, 4096, 0, "backing file" },
    { "cluster-bits-big", 20, 4, 30, 0, "cluster size" },
    { "cluster-bits-small", 20, 4, 8, 0, "cluster size" },
    { "huge-size", 24, 8, 1ULL << 63, 0, "too large" },
    { "encryption", 32, 4, 1, 0, "encryption" },
    { "l1-size-huge", 36, 4, 0xffffffff, 0, "L1 table size" },
    { "l1-past-eof", 40, 8, 1ULL << 40, 0, "past the end" },
    { "l1-unaligned", 40, 8, 3 * 65536 + 8, 0, "invalid" },
    { "l1-on-reftable", 40, 8, 65536, 0, "overlap" },
    { "reftable-past-eof", 48, 8, 1ULL << 40, 0, "past the end" },
    { "reftable-zero-clusters", 56, 4, 0, 0, "Refcount table size" },
    { "reftable-huge", 56, 4, 0x10000000, 0, "Refcount table size" },
    { "snapshots-offset-zero", 60, 4, 1, 0, "snapshot table offset" },
    { "snapshots-many", 60, 4, 1000000, 0, "too many snapshots" },
    { "corrupt-rw", 72, 8, 2, BDRV_O_RDWR, "corrupt" },
    { "data-file", 72, 8, 4, 0, "external data file" },
    { "compression", 72, 8, 8, 0, "compression type" },
    { "extended-l2", 72, 8, 16, 0, "extended L2" },
    { "unknown-incompat", 72, 8, 1ULL << 40, 0, "unsupported IMAGE feature" },
    { "refcount-order", 96, 4, 7, 0, "Refcount width" },
    /* Fields are unsigned on disk: "negative" values must not pass the
     * range checks (read-only opens too). */
    { "refcount-order-negative", 96, 4, 0xffffff1e, 0, "2^4294967070" },
    { "cluster-bits-negative", 20, 4, 0x80000009, 0, "2^2147483657" },
    { "version-negative", 4, 4, 0xfffffffe, 0, "version 4294967294" },
    { "refcount-32-rw", 96, 4, 5, BDRV_O_RDWR, "read-only" },
    { "header-length", 100, 4, 50, 0, "header length" },
    { "ext-too-large", 112 + 4, 4, 0x100000, 0, "too large" },
};

static void test_hostile_header(gconstpointer data)
{
    const Hostile *h = data;
    g_autofree char *name = g_strdup_printf("hostile-%s.qcow2", h->name);
    g_autofree char *path = make_image(name, 1 * MiB, 0, NULL);
    if (h->width == 4) {
        patch_be32(path, h->off, (uint32_t)h->value);
    } else {
        patch_be64(path, h->off, h->value);
    }
    expect_open_fails(path, h->flags, h->error);
}

static void test_hostile_truncated(void)
{
    g_autofree char *path = make_image("trunc.qcow2", 1 * MiB, 0, NULL);
    g_assert_cmpint(truncate(path, 40), ==, 0);
    expect_open_fails(path, 0, "too short");
    g_autofree char *path2 = make_image("trunc2.qcow2", 1 * MiB, 0, NULL);
    g_assert_cmpint(truncate(path2, 65536 + 100), ==, 0);   /* no reftable */
    expect_open_fails(path2, 0, "past the end");
}

/* Bad L2 pointers: reads fail cleanly, writes never touch metadata. */
static void test_hostile_l2(void)
{
    g_autofree char *path = make_image("l2.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    uint8_t buf[4096];
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 4096, 1);
    bdrv_close(bs);
    uint64_t l1 = 3 * 65536, l2 = read_be64(path, l1) & ~(1ULL << 63);

    patch_be64(path, l1, (1ULL << 63) | (l2 + 512));        /* unaligned */
    bs = must_open(path, 0);
    g_assert_false(bdrv_pread(bs, 0, buf, sizeof(buf), &err));
    g_assert_nonnull(strstr(err->message, "corrupt"));
    g_clear_error(&err);
    bdrv_close(bs);

    patch_be64(path, l1, (1ULL << 63) | (1ULL << 40));      /* past EOF */
    bs = must_open(path, 0);
    g_assert_false(bdrv_pread(bs, 0, buf, sizeof(buf), &err));
    g_assert_nonnull(strstr(err->message, "past the end"));
    g_clear_error(&err);
    bdrv_close(bs);

    /* loop: the L1 table used as its own L2 table, COPIED set */
    patch_be64(path, l1, (1ULL << 63) | l1);
    bs = must_open(path, BDRV_O_RDWR);
    g_assert_false(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));
    g_assert_nonnull(strstr(err->message, "Preventing invalid write on "
                            "metadata (overlaps with active L1 table)"));
    g_clear_error(&err);
    bdrv_close(bs);
    g_assert_cmpuint(read_be64(path, l1), ==, (1ULL << 63) | l1);

    /* data entry unaligned */
    patch_be64(path, l1, (1ULL << 63) | l2);
    patch_be64(path, l2, (1ULL << 63) | (5 * 65536 + 512));
    bs = must_open(path, 0);
    g_assert_false(bdrv_pread(bs, 0, buf, sizeof(buf), &err));
    g_assert_nonnull(strstr(err->message, "aligned"));
    g_clear_error(&err);
    bdrv_close(bs);

    /* compressed descriptor over data that is no deflate stream (more in
     * test-qcow2-compress.c) */
    patch_be64(path, l2, (1ULL << 62) | (5 * 65536));
    bs = must_open(path, 0);
    g_assert_false(bdrv_pread(bs, 0, buf, sizeof(buf), &err));
    g_assert_nonnull(strstr(err->message, "compressed"));
    g_clear_error(&err);
    bdrv_close(bs);
}

/* Every L1 entry points at the same L2 table: refused read-write; a
 * read-only check walks the table once and reports the damage. */
static void test_hostile_shared_l2(void)
{
    g_autofree char *path = make_image("dupl2.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 4096, 1);
    bdrv_close(bs);
    uint64_t l1 = 3 * 65536, e = read_be64(path, l1);
    g_autofree uint64_t *table = g_new(uint64_t, 8192);
    for (int i = 0; i < 8192; i++) {
        table[i] = GUINT64_TO_BE(e);
    }
    patch(path, l1, table, 8192 * 8);
    patch_be32(path, 36, 8192);                       /* l1_size */
    expect_open_fails(path, BDRV_O_RDWR, "two L1 entries");
    g_autofree char *p2 = make_image("duprb.qcow2", 1 * MiB, 0, NULL);
    patch_be64(p2, 65536 + 8, read_be64(p2, 65536));  /* reftable[1] */
    expect_open_fails(p2, BDRV_O_RDWR, "two refcount table entries");
    bs = must_open(path, 0);
    BlockCheckResult res;
    gint64 t0 = g_get_monotonic_time();
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    g_assert_cmpint(res.corruptions, >, 0);
    expect(bs, 0, 4096, 1);
    bdrv_close(bs);
}

static void test_hostile_snapshot_table(void)
{
    g_autofree char *path = make_image("badsn.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    BlockSnapshotInfo sn = { .name = (char *)"s" };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    bdrv_close(bs);
    uint64_t table = read_be64(path, 64);

    patch_be32(path, table + 36, 100000);             /* extra_data_size */
    expect_open_fails(path, 0, "too much extra data");
    patch_be32(path, table + 36, 24);
    patch_be64(path, table, 1ULL << 40);               /* its L1 past EOF */
    expect_open_fails(path, 0, "past the end");
    patch_be64(path, table, 65536 * 3 + 8);            /* unaligned */
    expect_open_fails(path, 0, "aligned");
    patch_be64(path, 64, table + 8);                   /* table unaligned */
    expect_open_fails(path, 0, "snapshot table offset");
    patch_be64(path, 64, 1ULL << 40);                  /* table past EOF */
    expect_open_fails(path, 0, "past the end");
}

/* Offsets and sizes from the snapshot table near 2^64 must not wrap past
 * the range checks, nor reach the L1 index arithmetic. */
static void test_hostile_snapshot_ranges(void)
{
    g_autofree char *path = make_image("snwrap.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    uint8_t buf[4096];
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    BlockSnapshotInfo sn = { .name = (char *)"s", .vm_state_size = 4096 };
    g_assert_true(bdrv_save_vmstate(bs, 0, buf, sizeof(buf), &err));
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    bdrv_close(bs);
    uint64_t table = read_be64(path, 64);
    uint64_t l1 = read_be64(path, table);
    uint32_t l1_size = (uint32_t)(read_be64(path, table + 8) >> 32);

    /* L1 offset + size wraps to 0 */
    patch_be64(path, table, 0xffffffffffff0000ULL);
    patch_be32(path, table + 8, 0x2000);
    expect_open_fails(path, 0, "L1 table past the end");
    patch_be64(path, table, l1);
    patch_be32(path, table + 8, l1_size);

    /* snapshot table offset near 2^64 */
    patch_be64(path, 64, 0xffffffffffff0000ULL);
    expect_open_fails(path, 0, "past the end");
    patch_be64(path, 64, table);

    /* disk_size (extra data 8..15) too large: apply refuses before it
     * changes anything */
    patch_be64(path, table + 40 + 8, 0xfffffffffffffe00ULL);
    bs = must_open(path, BDRV_O_RDWR);
    fill(bs, 0, 4096, 0x61);
    g_assert_false(bdrv_snapshot_apply(bs, "s", &err));
    g_assert_nonnull(strstr(err->message, "too large"));
    g_clear_error(&err);
    g_assert_cmpuint(bdrv_getlength(bs), ==, 1 * MiB);
    expect(bs, 0, 4096, 0x61);

    /* a VM state position from a hostile vm_state_size: no wrap into the
     * guest disk */
    g_assert_false(bdrv_load_vmstate(bs, UINT64_MAX - 100, buf, sizeof(buf),
                                     &err));
    g_assert_nonnull(strstr(err->message, "beyond what the image can"));
    g_clear_error(&err);
    g_assert_false(bdrv_save_vmstate(bs, 1ULL << 62, buf, sizeof(buf), &err));
    g_clear_error(&err);
    assert_clean(bs);
    bdrv_close(bs);
}

/* The L1 tables of two snapshots on top of each other: every walk over
 * them (metadata map, check) would read the file many times over. */
static void test_hostile_snapshot_l1_overlap(void)
{
    g_autofree char *path = make_image("snl1ov.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    BlockSnapshotInfo sn = { .name = (char *)"s", .icount = -1 };
    fill(bs, 0, 4096, 1);
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    bdrv_close(bs);
    struct stat st;
    g_assert_cmpint(stat(path, &st), ==, 0);
    uint64_t e = read_be64(path, 64);
    for (int i = 0; i < 2; i++) {     /* both: most of the file */
        uint32_t extra = (uint32_t)read_be64(path, e + 32);
        uint64_t sizes = read_be64(path, e + 8);   /* l1_size, id, name */
        uint32_t id = (uint32_t)(sizes >> 16) & 0xffff, nm = sizes & 0xffff;
        patch_be64(path, e, 65536);
        patch_be32(path, e + 8, (uint32_t)((st.st_size - 65536) / 8));
        e = ALIGN_UP(e + 40 + extra + id + nm, 8);
    }
    expect_open_fails(path, 0, "L1 tables overlap");
}

static void test_locking(void)
{
    g_autofree char *path = make_image("lock.qcow2", 1 * MiB, 0, NULL);
    GError *err = NULL;
    BlockNode *rw = must_open(path, BDRV_O_RDWR);

    g_assert_null(bdrv_open(path, NULL, BDRV_O_RDWR, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_BUSY);
    g_assert_nonnull(strstr(err->message, "Failed to get \"write\" lock"));
    g_assert_nonnull(strstr(err->message, "Is another process using"));
    g_clear_error(&err);
    g_assert_null(bdrv_open(path, NULL, 0, &err));     /* read forbids write */
    g_assert_nonnull(strstr(err->message, "Failed to get shared \"write\""));
    g_clear_error(&err);
    BlockNode *ro = bdrv_open(path, NULL, BDRV_O_NO_LOCK, &err);  /* -U */
    g_assert_no_error(err);
    bdrv_close(ro);
    bdrv_close(rw);

    BlockNode *r1 = must_open(path, 0), *r2 = must_open(path, 0);
    g_assert_null(bdrv_open(path, NULL, BDRV_O_RDWR, &err));
    g_assert_nonnull(strstr(err->message, "Failed to get \"write\" lock"));
    g_clear_error(&err);
    bdrv_close(r1);
    bdrv_close(r2);
    rw = must_open(path, BDRV_O_RDWR);                 /* locks released */
    bdrv_close(rw);
}

typedef struct Writer {
    BlockNode *bs;
    int id;
} Writer;

static gpointer writer_thread(gpointer opaque)
{
    Writer *w = opaque;
    uint8_t buf[4096];
    memset(buf, w->id + 1, sizeof(buf));
    for (int i = 0; i < 256; i++) {
        uint64_t off = ((uint64_t)i * 4 + (uint64_t)w->id) * 64 * KiB;
        g_assert_true(bdrv_pwrite(w->bs, off, buf, sizeof(buf), NULL));
    }
    return NULL;
}

static void test_threads(void)
{
    g_autofree char *path = make_image("thr.qcow2", 64 * MiB, 0, NULL);
    BlockNode *bs = must_open(path, BDRV_O_RDWR);
    Writer w[4];
    GThread *t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (Writer){ bs, i };
        t[i] = g_thread_new("writer", writer_thread, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(t[i]);
    }
    for (int i = 0; i < 1024; i++) {
        expect(bs, (uint64_t)i * 64 * KiB, 4096, i % 4 + 1);
    }
    assert_clean(bs);
    bdrv_close(bs);
}

static void test_create_errors(void)
{
    g_autofree char *path = tmp_path("bad-create.qcow2");
    GError *err = NULL;
    BlockCreateOpts o = { .cluster_size = 1000 };
    g_assert_false(bdrv_create("qcow2", path, 1 * MiB, &o, &err));
    g_assert_nonnull(strstr(err->message, "Cluster size"));
    g_clear_error(&err);
    o = (BlockCreateOpts){ .compat = "2.0" };
    g_assert_false(bdrv_create("qcow2", path, 1 * MiB, &o, &err));
    g_assert_nonnull(strstr(err->message, "compatibility"));
    g_clear_error(&err);
    g_assert_false(bdrv_create("vmdk", path, 1 * MiB, NULL, &err));
    g_clear_error(&err);
}

/* Check counts references per cluster of the file. A hostile image can
 * point data far away so that a write leaves the file petabytes long
 * (sparse, on tmpfs): the check must then fail as QEMU's does (ENOMEM),
 * not abort on the allocation. */
static void test_check_huge_file(void)
{
    g_autofree char *path = NULL;
    g_autofree char *img = make_image("huge-file.qcow2", 1 * MiB, 512, NULL);
    g_autofree char *data = NULL;
    BlockCheckResult res;
    GError *err = NULL;
    BlockNode *bs;
    gsize len;

    if (!g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)) {
        g_test_skip("needs tmpfs for a 1 PiB sparse file");
        return;
    }
    path = g_strdup_printf("/dev/shm/test-qcow2-huge-%d.qcow2", (int)getpid());
    g_assert_true(g_file_get_contents(img, &data, &len, NULL));
    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    g_assert_cmpint(truncate(path, 1LL << 50), ==, 0);
    bs = must_open(path, 0);
    g_assert_false(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "Check failed: Cannot allocate memory"));
    g_error_free(err);
    bdrv_close(bs);
    unlink(path);
}

int main(int argc, char **argv)
{
    static const char *const specs[] = {
        "512/1.1", "512/0.10", "4096/1.1", "65536/1.1", "65536/0.10",
        "2097152/1.1", "2097152/0.10",
    };
    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("test-qcow2-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);
    for (size_t i = 0; i < G_N_ELEMENTS(specs); i++) {
        g_autofree char *name = g_strdup_printf("/qcow2/roundtrip/%s",
                                                specs[i]);
        g_test_add_data_func(name, specs[i], test_roundtrip);
    }
    g_test_add_func("/qcow2/bounds-readonly", test_bounds_and_readonly);
    g_test_add_func("/qcow2/snapshots", test_snapshots);
    g_test_add_func("/qcow2/nocache", test_nocache);
    g_test_add_func("/qcow2/resize", test_resize);
    g_test_add_func("/qcow2/vmstate", test_vmstate);
    g_test_add_func("/qcow2/refcount-growth", test_refcount_growth);
    g_test_add_func("/qcow2/discard-zeroes", test_discard_zeroes);
    g_test_add_func("/qcow2/unmap-policy", test_unmap_policy);
    g_test_add_func("/qcow2/unknown-extension", test_unknown_extension_kept);
    g_test_add_func("/qcow2/dirty-bit", test_dirty_bit_repaired);
    g_test_add_func("/qcow2/check-repair", test_check_finds_and_repairs_leak);
    g_test_add_func("/qcow2/refcount-overflow", test_refcount_overflow);
    g_test_add_func("/qcow2/locking", test_locking);
    g_test_add_func("/qcow2/threads", test_threads);
    g_test_add_func("/qcow2/create-errors", test_create_errors);
    g_test_add_func("/qcow2/hostile/truncated", test_hostile_truncated);
    g_test_add_func("/qcow2/hostile/l2", test_hostile_l2);
    g_test_add_func("/qcow2/hostile/shared-l2", test_hostile_shared_l2);
    g_test_add_func("/qcow2/hostile/snapshot-table",
                    test_hostile_snapshot_table);
    g_test_add_func("/qcow2/hostile/snapshot-ranges",
                    test_hostile_snapshot_ranges);
    g_test_add_func("/qcow2/hostile/snapshot-l1-overlap",
                    test_hostile_snapshot_l1_overlap);
    g_test_add_func("/qcow2/hostile/check-huge-file", test_check_huge_file);
    for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
        g_autofree char *name = g_strdup_printf("/qcow2/hostile/header/%s",
                                                hostile[i].name);
        g_test_add_data_func(name, &hostile[i], test_hostile_header);
    }
    int ret = g_test_run();
    rm_scratch_dir(tmpdir);
    return ret;
}
