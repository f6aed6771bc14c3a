/*
 * Unit tests for the qcow2 metadata-overlap check: an image with every kind
 * of metadata (active and snapshot L1/L2 tables, refcount table and block,
 * snapshot table, a persistent bitmap's directory, table and data) gets one
 * L2 entry pointed at each in turn. A guest write through it must fail with
 * QEMU's "Preventing invalid write on metadata (overlaps with ...)", leave
 * the target's bytes as they were, mark the image corrupt and make the node
 * refuse further I/O. Also: the COW path (the old cluster's reference is
 * not dropped when it is metadata), an L1 entry on a refcount block, a
 * refcount of 0 on a live table (the allocator hands it out), and the map
 * staying equal to a fresh one after the operations that change metadata,
 * crash-safe bitmaps' included (layout at open and whenever a bitmap
 * becomes persistent, intents, clear, merge, flags, removal, resize,
 * hand-over). Their in-place writes (bitmap words, flags) are checked as
 * every other metadata write is.
 */
#include <string.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"
#include "block/qcow2.h"
#include "test-block-util.h"

#define CS 4096u                   /* 512 L2 entries: 2 MiB per L2 table */
#define COPIED (1ULL << 63)

static char *tmpdir;

/* QEMU's open: bitmaps marked IN_USE in place, nothing moves (crash-safe
 * bitmaps are laid out anew at open, see the crash-safe cases). */
#define RW_IN_USE (BDRV_O_RDWR | BDRV_O_BITMAPS_IN_USE)

/* Offsets of the metadata in the template image. */
typedef struct Layout {
    uint64_t l1, l2a0, l2a1, reftable, refblock, sntable, snl1, snl2;
    uint64_t bmdir, bmtable, bmdata;
} Layout;

static char *template_path;
static Layout layout;

static uint32_t read_be32(const char *path, uint64_t off)
{
    return (uint32_t)(read_be64(path, off) >> 32);
}

static uint64_t find_bitmaps_ext(const char *path)
{
    uint64_t off = read_be32(path, 100);     /* header_length */
    for (int i = 0; i < 16; i++) {
        uint32_t type = read_be32(path, off), len = read_be32(path, off + 4);
        if (type == 0x23852875) {
            return off + 8;
        }
        g_assert_cmpuint(type, !=, 0);
        off += 8 + ALIGN_UP(len, 8);
    }
    g_assert_not_reached();
}

/* Data at guest 0 and 2 MiB (two L2 tables), a bitmap that saw it, a
 * snapshot, then a write at guest 0 that copies L2 table 0: the snapshot
 * keeps an L2 table of its own. */
static void make_template(void)
{
    GError *err = NULL;
    BlockCreateOpts o = { .cluster_size = CS };
    template_path = g_build_filename(tmpdir, "template.qcow2", NULL);
    g_assert_true(bdrv_create("qcow2", template_path, 4 * MiB, &o, &err));
    BlockNode *bs = must_open(template_path, BDRV_O_RDWR);
    bdrv_lock(bs);
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, 64 * KiB, "bm", &err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    bdrv_unlock(bs);
    fill(bs, 0, 64 * KiB, 0x11);
    fill(bs, 2 * MiB, 64 * KiB, 0x22);
    BlockSnapshotInfo sn = { .name = (char *)"snap", .icount = -1 };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    fill(bs, 0, CS, 0x33);
    bdrv_close(bs);

    const char *p = template_path;
    Layout *l = &layout;
    l->l1 = read_be64(p, 40);
    l->l2a0 = read_be64(p, l->l1) & QCOW2_L1E_OFFSET_MASK;
    l->l2a1 = read_be64(p, l->l1 + 8) & QCOW2_L1E_OFFSET_MASK;
    l->reftable = read_be64(p, 48);
    l->refblock = read_be64(p, l->reftable);
    l->sntable = read_be64(p, 64);
    l->snl1 = read_be64(p, l->sntable);
    l->snl2 = read_be64(p, l->snl1) & QCOW2_L1E_OFFSET_MASK;
    uint64_t ext = find_bitmaps_ext(p);
    l->bmdir = read_be64(p, ext + 16);
    l->bmtable = read_be64(p, l->bmdir);
    l->bmdata = read_be64(p, l->bmtable) & QCOW2_L2E_OFFSET_MASK;
    g_assert_cmpuint(l->snl2, !=, l->l2a0);        /* copied on write */
    g_assert_cmpuint(read_be64(p, l->snl1 + 8) & QCOW2_L1E_OFFSET_MASK, ==,
                     l->l2a1);                       /* still shared */
    g_assert_true(read_be64(p, l->l2a0) & COPIED);
    g_assert_cmpuint(l->bmdata, !=, 0);
}

static char *copy_template(const char *name)
{
    g_autofree char *data = NULL;
    gsize len;
    char *path = g_build_filename(tmpdir, name, NULL);
    g_assert_true(g_file_get_contents(template_path, &data, &len, NULL));
    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    return path;
}

/* len bytes at off (the file may end inside them: zeroes) */
static uint8_t *read_file_at(const char *path, uint64_t off, size_t len)
{
    uint8_t *buf = g_malloc0(len);
    int fd = open(path, O_RDONLY);
    g_assert_cmpint(pread(fd, buf, len, (off_t)off), >, 0);
    close(fd);
    return buf;
}

typedef struct Target {
    const char *name;              /* QEMU's name of the kind */
    size_t field;                  /* offsetof(Layout, ...) */
    bool refused_at_open;          /* the bitmap loader sees the overlap */
} Target;

/* (The header cannot be named: offset 0 in an L2 entry is "unallocated".) */
static const Target targets[] = {
    { "active L1 table", offsetof(Layout, l1), false },
    { "active L2 table", offsetof(Layout, l2a1), false },
    { "refcount table", offsetof(Layout, reftable), false },
    { "refcount block", offsetof(Layout, refblock), false },
    { "snapshot table", offsetof(Layout, sntable), false },
    { "inactive L1 table", offsetof(Layout, snl1), false },
    { "inactive L2 table", offsetof(Layout, snl2), false },
    { "bitmap directory", offsetof(Layout, bmdir), false },
    { "bitmap table", offsetof(Layout, bmtable), true },
    { "bitmap data", offsetof(Layout, bmdata), true },
};

static uint64_t target_offset(const Target *t)
{
    return *(const uint64_t *)((const uint8_t *)&layout + t->field);
}

static void expect_error(GError *err, const char *what)
{
    g_assert_nonnull(err);
    if (!strstr(err->message, what)) {
        g_error("error '%s' does not mention '%s'", err->message, what);
    }
}

/* Guest cluster 0's L2 entry (COPIED) points at the target: the write is
 * refused, nothing of the target changes, the image is marked corrupt and
 * the node is done. */
static void test_write_onto(gconstpointer data)
{
    const Target *t = data;
    g_autofree char *name = g_strdup_printf("onto-%s.qcow2", t->name);
    g_autofree char *path = copy_template(name);
    uint64_t target = target_offset(t);
    GError *err = NULL;
    uint8_t buf[CS];

    patch_be64(path, layout.l2a0, target | COPIED);
    if (t->refused_at_open) {
        g_assert_null(bdrv_open(path, "qcow2", BDRV_O_RDWR, &err));
        expect_error(err, "overlaps guest data");
        g_clear_error(&err);
        return;
    }
    BlockNode *bs = must_open(path, RW_IN_USE);
    /* (after the open, which sets the bitmap's IN_USE flag) */
    g_autofree uint8_t *before = read_file_at(path, target, CS);
    memset(buf, 0x6a, sizeof(buf));
    g_assert_false(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));
    g_autofree char *msg = g_strdup_printf("Preventing invalid write on "
                                           "metadata (overlaps with %s)",
                                           t->name);
    expect_error(err, msg);
    expect_error(err, "Marking image as corrupt");
    g_clear_error(&err);
    g_assert_false(bdrv_pread(bs, CS, buf, sizeof(buf), &err));
    expect_error(err, "not used any further");
    g_clear_error(&err);
    bdrv_close(bs);

    g_autofree uint8_t *after = read_file_at(path, target, CS);
    g_assert_cmpmem(before, CS, after, CS);
    g_assert_cmpuint(read_be64(path, 72) & QCOW2_INCOMPAT_CORRUPT, !=, 0);
    g_assert_null(bdrv_open(path, "qcow2", BDRV_O_RDWR, &err));
    expect_error(err, "Image is corrupt; cannot be opened read/write");
    g_clear_error(&err);
}

/* Without COPIED the write copies: the old cluster's reference must not
 * be dropped when it is metadata. */
static void test_cow_from_metadata(void)
{
    g_autofree char *path = copy_template("cow.qcow2");
    GError *err = NULL;
    uint8_t buf[512] = { 0 };
    uint64_t rc_before = read_be64(path, layout.refblock);

    patch_be64(path, layout.l2a0, layout.refblock);
    BlockNode *bs = must_open(path, RW_IN_USE);
    g_assert_false(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));
    expect_error(err, "overlaps qcow2 metadata (refcount block)");
    g_clear_error(&err);
    bdrv_close(bs);
    g_assert_cmpuint(read_be64(path, layout.refblock), ==, rc_before);
}

/* An L1 entry naming a refcount block as an L2 table (COPIED): the L2
 * update would land in the refcount block. */
static void test_l1_onto_refblock(void)
{
    g_autofree char *path = copy_template("l1rb.qcow2");
    GError *err = NULL;
    uint8_t buf[512] = { 0 };

    patch_be64(path, layout.l1 + 8, layout.refblock | COPIED);
    g_autofree uint8_t *before = read_file_at(path, layout.refblock, CS);
    BlockNode *bs = must_open(path, RW_IN_USE);
    g_assert_false(bdrv_pwrite(bs, 2 * MiB + 3 * CS, buf, sizeof(buf),
                               &err));
    expect_error(err, "(overlaps with refcount block)");
    g_clear_error(&err);
    bdrv_close(bs);
    g_autofree uint8_t *after = read_file_at(path, layout.refblock, CS);
    g_assert_cmpmem(before, CS, after, CS);
}

/* A live L2 table whose refcount says "free": the allocator hands it out
 * for new data, and the write there must be refused. */
static void test_allocator_hands_out_metadata(void)
{
    g_autofree char *path = copy_template("alloc.qcow2");
    GError *err = NULL;
    uint64_t idx = layout.l2a1 / CS;
    uint16_t zero = 0;

    patch(path, layout.refblock + 2 * idx, &zero, 2);
    g_autofree uint8_t *before = read_file_at(path, layout.l2a1, CS);
    BlockNode *bs = must_open(path, RW_IN_USE);
    /* free clusters before idx would be taken first: fill them up */
    bool refused = false;
    for (uint64_t g = 64 * KiB; g < 2 * MiB && !refused; g += CS) {
        uint8_t buf[CS];
        memset(buf, 0x6a, sizeof(buf));
        if (!bdrv_pwrite(bs, g, buf, sizeof(buf), &err)) {
            expect_error(err, "Preventing invalid write on metadata");
            g_clear_error(&err);
            refused = true;
        }
    }
    g_assert_true(refused);
    bdrv_close(bs);
    g_autofree uint8_t *after = read_file_at(path, layout.l2a1, CS);
    g_assert_cmpmem(before, CS, after, CS);
}

static void verify_map(BlockNode *bs)
{
    GError *err = NULL;
    bdrv_lock(bs);
    g_assert_true(qcow2_meta_verify(bs, &err));
    bdrv_unlock(bs);
    g_assert_no_error(err);
}

/* Everything that moves metadata keeps the live map equal to one built
 * from the image; nothing legitimate trips the check. */
static void test_map_follows_metadata(void)
{
    GError *err = NULL;
    BlockCreateOpts o = { .cluster_size = 512 };
    g_autofree char *path = g_build_filename(tmpdir, "follow.qcow2", NULL);
    g_assert_true(bdrv_create("qcow2", path, 64 * MiB, &o, &err));
    BlockNode *bs = must_open(path, BDRV_O_RDWR | BDRV_O_UNMAP);
    verify_map(bs);
    for (int i = 0; i < 40; i++) {        /* L2 tables, refcount growth */
        fill(bs, (uint64_t)i * 1536 * KiB, 96 * KiB, i + 1);
    }
    verify_map(bs);
    BlockSnapshotInfo sn = { .name = (char *)"a", .icount = -1 };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    verify_map(bs);
    fill(bs, 0, 1 * MiB, 0x55);            /* copies L2 tables */
    g_assert_true(bdrv_save_vmstate(bs, 0, "vm", 2, &err));  /* L1 grows */
    verify_map(bs);
    sn.name = (char *)"b";
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_true(bdrv_discard(bs, 0, 4 * MiB, &err));
    g_assert_true(bdrv_snapshot_apply(bs, "a", &err));
    verify_map(bs);
    fill(bs, 8 * MiB, 2 * MiB, 0x66);
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "b", &err));
    verify_map(bs);
    bdrv_lock(bs);
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, 4 * KiB, "bm", &err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    bdrv_unlock(bs);
    fill(bs, 20 * MiB, 3 * MiB, 0x77);
    g_assert_true(bdrv_inactivate(bs, true, &err));    /* stores it */
    g_assert_true(bdrv_activate(bs, &err));
    g_assert_no_error(err);
    verify_map(bs);
    fill(bs, 30 * MiB, 3 * MiB, 0x78);
    g_assert_true(bdrv_truncate(bs, 128 * MiB, &err) || err);
    g_clear_error(&err);                   /* (refused with snapshots) */
    verify_map(bs);
    bdrv_close(bs);
    assert_file_clean(path);
    g_assert_cmpuint(read_be64(path, 72) & QCOW2_INCOMPAT_CORRUPT, ==, 0);
}

/* Where the image says bitmap 'index' (directory order) keeps its first
 * data cluster; *dir gets the directory's offset. */
static uint64_t bitmap_data_of(const char *path, unsigned index, uint64_t *dir)
{
    uint64_t e;

    *dir = read_be64(path, find_bitmaps_ext(path) + 16);
    e = *dir;
    for (unsigned i = 0; i < index; i++) {
        uint32_t extra = read_be32(path, e + 20);
        uint32_t name = read_be32(path, e + 16) & 0xffff;
        e += ALIGN_UP(24 + extra + name, 8);
    }
    return read_be64(path, read_be64(path, e)) & QCOW2_L2E_OFFSET_MASK;
}

static void assert_kind(BlockNode *bs, uint64_t off, uint32_t kind)
{
    bdrv_lock(bs);
    g_assert_cmphex(qcow2_meta_kinds(bs, off, 1), ==, kind);
    bdrv_unlock(bs);
}

/* Crash-safe bitmaps move their clusters at every layout; the map follows
 * each step, and the clusters their in-place writes go to are in it. */
static void test_map_follows_crash_safe(void)
{
    GError *err = NULL;
    BlockCreateOpts o = { .cluster_size = 512 };
    g_autofree char *path = g_build_filename(tmpdir, "cs.qcow2", NULL);
    uint64_t dir, data;

    g_assert_true(bdrv_create("qcow2", path, 64 * MiB, &o, &err));
    BlockNode *bs = must_open(path, BDRV_O_RDWR | BDRV_O_UNMAP);
    BdrvDirtyBitmap *a = add_persistent(bs, "a", 4 * KiB);
    verify_map(bs);
    BdrvDirtyBitmap *b = add_persistent(bs, "b", 64 * KiB);
    verify_map(bs);
    data = bitmap_data_of(path, 1, &dir);
    assert_kind(bs, dir, QCOW2_OL_BITMAP_DIRECTORY);
    assert_kind(bs, data, QCOW2_OL_BITMAP_DATA);
    for (int i = 0; i < 24; i++) {          /* intents, L2 tables, refcounts */
        fill(bs, (uint64_t)i * 2600 * KiB, 8 * KiB, i + 1);
    }
    g_assert_true(bdrv_discard(bs, 3 * MiB, 1 * MiB, &err));
    g_assert_true(bdrv_write_zeroes(bs, 9 * MiB, 64 * KiB, true, &err));
    verify_map(bs);
    bdrv_lock(bs);
    bdrv_clear_dirty_bitmap(a);             /* words rewritten in place */
    g_assert_true(bdrv_merge_dirty_bitmap(a, b, &err));
    bdrv_disable_dirty_bitmap(b);           /* flags in place */
    bdrv_enable_dirty_bitmap(b);
    bdrv_unlock(bs);
    g_assert_no_error(err);
    verify_map(bs);
    BlockSnapshotInfo sn = { .name = (char *)"s", .icount = -1 };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    fill(bs, 0, 64 * KiB, 0x70);
    verify_map(bs);
    add_persistent(bs, "c", 512);           /* every bitmap laid out anew */
    verify_map(bs);
    assert_kind(bs, dir, 0);                /* the old directory is free */
    bdrv_lock(bs);
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "a", &err));
    bdrv_unlock(bs);
    verify_map(bs);
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "s", &err));
    g_assert_true(bdrv_truncate(bs, 96 * MiB, &err));   /* laid out again */
    g_assert_no_error(err);
    fill(bs, 90 * MiB, 4 * KiB, 0x71);
    verify_map(bs);
    g_assert_true(bdrv_inactivate(bs, false, &err));     /* stored */
    g_assert_true(bdrv_activate(bs, &err));              /* and armed */
    g_assert_no_error(err);
    verify_map(bs);
    fill(bs, 95 * MiB, 4 * KiB, 0x72);
    verify_map(bs);
    bdrv_close(bs);
    assert_file_clean(path);
}

/* A crash-safe image with one bitmap, its data and directory offsets. */
static BlockNode *open_armed(const char *name, char **path, uint64_t *data,
                             uint64_t *dir, BdrvDirtyBitmap **bm)
{
    GError *err = NULL;
    BlockCreateOpts o = { .cluster_size = CS };

    *path = g_build_filename(tmpdir, name, NULL);
    g_assert_true(bdrv_create("qcow2", *path, 64 * MiB, &o, &err));
    BlockNode *bs = must_open(*path, BDRV_O_RDWR);
    *bm = add_persistent(bs, "bm", 64 * KiB);
    *data = bitmap_data_of(*path, 0, dir);
    return bs;
}

/* The words an intent sets are written in place, durably and past the
 * caches: the write is checked against the map like any metadata write.
 * (A map entry is planted: a sane image never lets another kind share the
 * bitmap's clusters.) */
static void test_intent_write_checked(void)
{
    g_autofree char *path = NULL;
    uint64_t data, dir;
    BdrvDirtyBitmap *bm;
    BlockNode *bs = open_armed("intent.qcow2", &path, &data, &dir, &bm);
    g_autofree uint8_t *before = read_file_at(path, data, CS);
    uint8_t buf[CS] = { 0 };
    GError *err = NULL;

    bdrv_lock(bs);
    qcow2_meta_add(bs, QCOW2_OL_ACTIVE_L2, data, CS);
    bdrv_unlock(bs);
    g_assert_false(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));
    expect_error(err, "Cannot record the write in a persistent bitmap");
    expect_error(err, "Preventing invalid write on metadata (overlaps with "
                 "active L2 table)");
    g_clear_error(&err);
    bdrv_close(bs);
    g_autofree uint8_t *after = read_file_at(path, data, CS);
    g_assert_cmpmem(before, CS, after, CS);
    g_assert_cmpuint(read_be64(path, 72) & QCOW2_INCOMPAT_CORRUPT, !=, 0);
}

/* The same for a bitmap's flags, rewritten in place in the directory. */
static void test_flags_write_checked(void)
{
    g_autofree char *path = NULL;
    uint64_t data, dir;
    BdrvDirtyBitmap *bm;
    BlockNode *bs = open_armed("flags.qcow2", &path, &data, &dir, &bm);
    g_autofree uint8_t *before = read_file_at(path, dir, 32);

    bdrv_lock(bs);
    qcow2_meta_add(bs, QCOW2_OL_REFCOUNT_BLOCK, dir, 32);
    bdrv_disable_dirty_bitmap(bm);          /* warns: flags not written */
    bdrv_unlock(bs);
    bdrv_close(bs);
    g_autofree uint8_t *after = read_file_at(path, dir, 32);
    g_assert_cmpmem(before, 32, after, 32);
    g_assert_cmpuint(read_be64(path, 72) & QCOW2_INCOMPAT_CORRUPT, !=, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("test-qcow2-overlap-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);
    make_template();
    for (size_t i = 0; i < G_N_ELEMENTS(targets); i++) {
        g_autofree char *name = g_strdup_printf("/qcow2-overlap/write-onto/%s",
                                                targets[i].name);
        g_strdelimit(name + strlen("/qcow2-overlap/write-onto/"), " ", '-');
        g_test_add_data_func(name, &targets[i], test_write_onto);
    }
    g_test_add_func("/qcow2-overlap/cow-from-metadata", test_cow_from_metadata);
    g_test_add_func("/qcow2-overlap/l1-onto-refblock", test_l1_onto_refblock);
    g_test_add_func("/qcow2-overlap/allocator-hands-out-metadata",
                    test_allocator_hands_out_metadata);
    g_test_add_func("/qcow2-overlap/map-follows-metadata",
                    test_map_follows_metadata);
    g_test_add_func("/qcow2-overlap/crash-safe/map-follows",
                    test_map_follows_crash_safe);
    g_test_add_func("/qcow2-overlap/crash-safe/intent-write-checked",
                    test_intent_write_checked);
    g_test_add_func("/qcow2-overlap/crash-safe/flags-write-checked",
                    test_flags_write_checked);
    int ret = g_test_run();
    g_free(template_path);
    rm_scratch_dir(tmpdir);
    return ret;
}
