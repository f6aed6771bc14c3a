/*
 * Persistent bitmaps in qcow2 through tern's own block layer: store and load
 * round trips, IN_USE while open read-write with BDRV_O_BITMAPS_IN_USE (as
 * QEMU does), kill -9 of such a writer leaving the bitmap inconsistent,
 * remove/merge without leaks, and hostile bitmap directories (bad offsets,
 * sizes, names, granularity, overlaps, table entries) failing open with a
 * clear error under ASan. Crash-safe bitmaps: test-write-intent.c.
 */
#include <string.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"
#include "block/qcow2.h"
#include "test-block-util.h"

#define DISK_SIZE BITMAP_TEST_DISK_SIZE

static void write_at(BlockNode *bs, uint64_t off, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);
    GError *err = NULL;

    memset(buf, 0xa5, len);
    g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
    g_assert_no_error(err);
}

static void assert_check(const char *path, int64_t leaks)
{
    BlockNode *bs = must_open(path, 0);
    BlockCheckResult res = { 0 };
    GError *err = NULL;

    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, leaks);
    g_assert_cmpint(res.check_errors, ==, 0);
    bdrv_close(bs);
}

static void assert_clean(const char *path)
{
    assert_check(path, 0);
}

/* The on-disk flags of bitmap 'name' as info reports them. */
static const BlockBitmapInfo *find_info(BlockImageInfo *info, const char *name)
{
    for (guint i = 0; info->bitmaps && i < info->bitmaps->len; i++) {
        const BlockBitmapInfo *bi = info->bitmaps->pdata[i];

        if (!strcmp(bi->name, name)) {
            return bi;
        }
    }
    return NULL;
}

static void test_roundtrip(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR);
    BdrvDirtyBitmap *b, *d;
    g_autoptr(BlockImageInfo) info = NULL;
    const BlockBitmapInfo *bi;

    b = add_persistent(bs, "b", 64 * KiB);
    d = add_persistent(bs, "d", 4 * KiB);
    bdrv_lock(bs);
    bdrv_disable_dirty_bitmap(d);
    bdrv_set_dirty_bitmap(d, 8 * KiB, 1);
    bdrv_unlock(bs);
    write_at(bs, 0, 512);
    write_at(bs, 3 * MiB - 1, 2);       /* straddles two chunks */
    write_at(bs, DISK_SIZE - 512, 512);  /* the partial last chunk */
    bdrv_close(bs);

    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    b = bdrv_find_dirty_bitmap(bs, "b");
    d = bdrv_find_dirty_bitmap(bs, "d");
    g_assert_nonnull(b);
    g_assert_nonnull(d);
    g_assert_true(bdrv_dirty_bitmap_get_persistence(b));
    g_assert_true(bdrv_dirty_bitmap_readonly(b));
    g_assert_false(bdrv_dirty_bitmap_inconsistent(b));
    g_assert_true(bdrv_dirty_bitmap_enabled(b));
    g_assert_false(bdrv_dirty_bitmap_enabled(d));
    g_assert_cmpuint(bdrv_dirty_bitmap_granularity(d), ==, 4096);
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 4 * 64 * KiB);
    g_assert_true(bdrv_dirty_bitmap_get(b, 0));
    g_assert_true(bdrv_dirty_bitmap_get(b, 3 * MiB - 1));
    g_assert_true(bdrv_dirty_bitmap_get(b, 3 * MiB));
    g_assert_true(bdrv_dirty_bitmap_get(b, DISK_SIZE - 1));
    g_assert_false(bdrv_dirty_bitmap_get(b, 64 * KiB));
    g_assert_cmpuint(bdrv_get_dirty_count(d), ==, 4096);
    g_assert_true(bdrv_dirty_bitmap_get(d, 8 * KiB));
    bdrv_unlock(bs);
    g_assert_true(bdrv_get_info(bs, &info, NULL));
    bi = find_info(info, "b");
    g_assert_nonnull(bi);
    g_assert_false(bi->in_use);
    g_assert_true(bi->auto_flag);
    g_assert_cmpuint(bi->granularity, ==, 65536);
    bi = find_info(info, "d");
    g_assert_nonnull(bi);
    g_assert_false(bi->auto_flag);
    bdrv_close(bs);
    assert_clean(f->path);
}

static void test_in_use_while_open(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR), *peek;
    g_autoptr(BlockImageInfo) info = NULL;

    add_persistent(bs, "b", 64 * KiB);
    bdrv_close(bs);

    bs = must_open(f->path, BDRV_O_RDWR | BDRV_O_BITMAPS_IN_USE);
    write_at(bs, MiB, 4096);
    /* A second, lock-free reader sees IN_USE: the bitmap is inconsistent. */
    peek = must_open(f->path, BDRV_O_NO_LOCK);
    g_assert_true(bdrv_get_info(peek, &info, NULL));
    g_assert_true(find_info(info, "b")->in_use);
    bdrv_lock(peek);
    g_assert_true(bdrv_dirty_bitmap_inconsistent(
        bdrv_find_dirty_bitmap(peek, "b")));
    bdrv_unlock(peek);
    bdrv_close(peek);
    bdrv_close(bs);

    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    g_assert_false(bdrv_dirty_bitmap_inconsistent(
        bdrv_find_dirty_bitmap(bs, "b")));
    g_assert_true(bdrv_dirty_bitmap_get(bdrv_find_dirty_bitmap(bs, "b"), MiB));
    bdrv_unlock(bs);
    bdrv_close(bs);
    assert_clean(f->path);
}

static void test_kill9_leaves_in_use(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR);
    BdrvDirtyBitmap *bm;
    GError *err = NULL;

    add_persistent(bs, "b", 64 * KiB);
    bdrv_close(bs);
    kill9_writer(f->path, BDRV_O_RDWR | BDRV_O_BITMAPS_IN_USE, 0, true);

    bs = must_open(f->path, BDRV_O_RDWR);
    bdrv_lock(bs);
    bm = bdrv_find_dirty_bitmap(bs, "b");
    g_assert_nonnull(bm);
    g_assert_true(bdrv_dirty_bitmap_inconsistent(bm));
    g_assert_false(bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_DEFAULT, &err));
    g_assert_nonnull(strstr(err->message, "inconsistent"));
    g_clear_error(&err);
    /* An inconsistent bitmap can still be removed, as in QEMU. */
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "b", &err));
    g_assert_no_error(err);
    bdrv_unlock(bs);
    bdrv_close(bs);

    bs = must_open(f->path, 0);
    g_assert_false(bdrv_has_named_bitmaps(bs));
    bdrv_close(bs);
}

static void test_remove_merge_clear(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR);
    GError *err = NULL;

    add_persistent(bs, "a", 64 * KiB);
    add_persistent(bs, "b", 64 * KiB);
    add_persistent(bs, "c", 512);
    write_at(bs, 5 * MiB, 100);
    bdrv_close(bs);

    bs = must_open(f->path, BDRV_O_RDWR);
    bdrv_lock(bs);
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "b", &err));
    g_assert_no_error(err);
    bdrv_clear_dirty_bitmap(bdrv_find_dirty_bitmap(bs, "a"));
    bdrv_set_dirty_bitmap(bdrv_find_dirty_bitmap(bs, "c"), 7 * MiB, 1);
    g_assert_true(bdrv_merge_dirty_bitmap(bdrv_find_dirty_bitmap(bs, "a"),
                                          bdrv_find_dirty_bitmap(bs, "c"),
                                          &err));
    g_assert_no_error(err);
    bdrv_unlock(bs);
    bdrv_close(bs);
    assert_clean(f->path);

    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    g_assert_null(bdrv_find_dirty_bitmap(bs, "b"));
    g_assert_cmpuint(bdrv_get_dirty_count(bdrv_find_dirty_bitmap(bs, "a")),
                     ==, 2 * 64 * KiB);
    g_assert_true(bdrv_dirty_bitmap_get(bdrv_find_dirty_bitmap(bs, "a"),
                                        7 * MiB));
    bdrv_unlock(bs);
    bdrv_close(bs);

    /* Removing every bitmap drops the extension and stays leak-free. */
    bs = must_open(f->path, BDRV_O_RDWR);
    bdrv_lock(bs);
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "a", NULL));
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "c", NULL));
    bdrv_unlock(bs);
    bdrv_close(bs);
    assert_clean(f->path);
}

/* ---- hostile directories ---- */

static uint64_t be_get(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void be_put(uint8_t *p, int n, uint64_t v)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

/* True if the image's header has the feature-name table extension. */
static bool has_feature_table(const char *path)
{
    g_autofree uint8_t *d = NULL;
    gsize len;
    size_t pos;

    g_assert_true(g_file_get_contents(path, (char **)&d, &len, NULL));
    pos = be_get(d + 100, 4);
    while (pos + 8 <= len && be_get(d + pos, 4) != 0) {
        if (be_get(d + pos, 4) == 0x6803f857) {
            return true;
        }
        pos += 8 + ALIGN_UP(be_get(d + pos + 4, 4), 8u);
    }
    return false;
}

/* With 512-byte clusters the bitmaps extension and the feature-name table do
 * not both fit the header cluster: as QEMU 7.2, the table is left out (and
 * for clusters up to 4 KiB always, as qemu-img does); bitmaps still store. */
static void test_small_clusters(Fixture *f, gconstpointer data)
{
    static const struct { uint32_t cs; bool table; } cases[] = {
        { 512, false }, { 4096, false }, { 8192, true }, { 65536, true },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        BlockCreateOpts o = { .cluster_size = cases[i].cs, .compat = "1.1" };
        GError *err = NULL;
        BlockNode *bs;
        BdrvDirtyBitmap *b;

        unlink(f->path);
        g_assert_true(bdrv_create("qcow2", f->path, DISK_SIZE, &o, &err));
        g_assert_no_error(err);
        g_assert_true(has_feature_table(f->path) == cases[i].table);
        bs = must_open(f->path, BDRV_O_RDWR);
        add_persistent(bs, "b", 512);
        add_persistent(bs, "c", 64 * KiB);
        write_at(bs, 5 * MiB, 1024);
        bdrv_close(bs);
        g_assert_true(has_feature_table(f->path) == cases[i].table);

        bs = must_open(f->path, 0);
        bdrv_lock(bs);
        b = bdrv_find_dirty_bitmap(bs, "b");
        g_assert_nonnull(b);
        g_assert_nonnull(bdrv_find_dirty_bitmap(bs, "c"));
        g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 1024);
        g_assert_true(bdrv_dirty_bitmap_get(b, 5 * MiB + 512));
        bdrv_unlock(bs);
        bdrv_close(bs);
        assert_clean(f->path);
    }
}

typedef struct Image {
    uint8_t *data;
    gsize len;
    size_t ext;             /* offset of the bitmaps extension's payload */
    uint64_t dir;           /* bitmap directory offset */
    uint64_t l1;            /* L1 table offset */
} Image;

static void image_load(const char *path, Image *img)
{
    size_t pos;

    g_assert_true(g_file_get_contents(path, (char **)&img->data, &img->len,
                                      NULL));
    img->l1 = be_get(img->data + 40, 8);
    pos = be_get(img->data + 100, 4);   /* header_length */
    img->ext = 0;
    while (pos + 8 <= img->len) {
        uint32_t type = be_get(img->data + pos, 4);
        uint32_t len = be_get(img->data + pos + 4, 4);

        if (type == 0) {
            break;
        }
        if (type == 0x23852875) {
            img->ext = pos + 8;
        }
        pos += 8 + ALIGN_UP(len, 8u);
    }
    g_assert_cmpuint(img->ext, !=, 0);
    img->dir = be_get(img->data + img->ext + 16, 8);
}

/* A fresh image with bitmaps "b1" and "b2" stored; returns its bytes. */
static void make_two_bitmaps(Fixture *f, Image *img)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR);

    add_persistent(bs, "b1", 64 * KiB);
    add_persistent(bs, "b2", 64 * KiB);
    write_at(bs, 0, 4096);
    bdrv_close(bs);
    image_load(f->path, img);
}

typedef struct Hostile {
    const char *what;       /* expected in the error message */
    void (*patch)(Image *img);
} Hostile;

/* Byte offsets inside the first directory entry. */
#define E0(img) ((img)->data + (img)->dir)

static void p_dir_unaligned(Image *i) { be_put(i->data + i->ext + 16, 8, i->dir + 8); }
static void p_dir_past_eof(Image *i) { be_put(i->data + i->ext + 16, 8, 1ULL << 40); }
static void p_dir_wraps(Image *i) { be_put(i->data + i->ext + 16, 8, 0xffffffffffff0000ULL); }
static void p_nb_huge(Image *i) { be_put(i->data + i->ext, 4, 70000); }
static void p_dir_size_huge(Image *i) { be_put(i->data + i->ext + 8, 8, 1ULL << 40); }
static void p_dir_size_short(Image *i) { be_put(i->data + i->ext + 8, 8, 30); }
static void p_dir_size_long(Image *i) { be_put(i->data + i->ext, 4, 1); }
static void p_name_zero(Image *i) { be_put(E0(i) + 18, 2, 0); }
static void p_name_huge(Image *i) { be_put(E0(i) + 18, 2, 0xffff); }
static void p_extra_huge(Image *i) { be_put(E0(i) + 20, 4, 0xfffffff0u); }
static void p_gran_small(Image *i) { E0(i)[17] = 8; }
static void p_gran_large(Image *i) { E0(i)[17] = 63; }
static void p_type(Image *i) { E0(i)[16] = 2; }
static void p_flags(Image *i) { be_put(E0(i) + 12, 4, 0x10); }
static void p_table_unaligned(Image *i) { be_put(E0(i), 8, be_get(E0(i), 8) + 512); }
static void p_table_on_l1(Image *i) { be_put(E0(i), 8, i->l1); }
static void p_table_on_header(Image *i) { be_put(E0(i), 8, 0); be_put(E0(i) + 8, 4, 1); }
static void p_table_on_dir(Image *i) { be_put(E0(i), 8, i->dir); }
static void p_table_too_small(Image *i) { be_put(E0(i) + 8, 4, 0); }
static void p_table_huge(Image *i) { be_put(E0(i) + 8, 4, 0x7fffffff); }
static void p_dup_name(Image *i)
{
    /* Both names are two bytes long; make the second equal the first. */
    uint8_t *e1 = E0(i) + ALIGN_UP(24 + 2, 8);

    e1[24 + 1] = '1';
}
static void p_name_nul(Image *i) { E0(i)[24 + 1] = 0; }

static void p_entry_reserved(Image *i)
{
    uint64_t table = be_get(E0(i), 8);

    be_put(i->data + table, 8, be_get(i->data + table, 8) | 2);
}

static void p_entry_past_eof(Image *i)
{
    be_put(i->data + be_get(E0(i), 8), 8, 1ULL << 45);
}

static void p_data_on_l1(Image *i)
{
    be_put(i->data + be_get(E0(i), 8), 8, i->l1);
}

static void p_data_shared(Image *i)
{
    /* b2's first data cluster becomes b1's too. */
    uint8_t *e1 = E0(i) + ALIGN_UP(24 + 2, 8);

    be_put(i->data + be_get(e1, 8), 8,
           be_get(i->data + be_get(E0(i), 8), 8));
}

static void p_entry_ones_and_offset(Image *i)
{
    uint64_t table = be_get(E0(i), 8);

    be_put(i->data + table, 8, be_get(i->data + table, 8) | 1);
}

/* Where the image's L2 table, guest data cluster and first refcount block
 * are (make_two_bitmaps wrote guest cluster 0). */
#define L2E_MASK 0x00fffffffffffe00ULL
static uint64_t img_l2(Image *i) { return be_get(i->data + i->l1, 8) & L2E_MASK; }
static uint64_t img_guest(Image *i) { return be_get(i->data + img_l2(i), 8) & L2E_MASK; }
static uint64_t *img_te0(Image *i, uint64_t *v)
{
    *v = be_get(E0(i), 8);
    return v;
}
static void put_te0(Image *i, uint64_t off)
{
    uint64_t table;

    be_put(i->data + *img_te0(i, &table), 8, off);
}
static void p_table_on_l2(Image *i)
{
    /* L2 entry 0 without COPIED also reads as a valid bitmap table entry */
    be_put(i->data + img_l2(i), 8, img_guest(i));
    be_put(E0(i), 8, img_l2(i));
}
/* The first refcount block holds refcounts that are no valid table entries,
 * so the second refcount table entry is pointed at the bitmap's table or
 * data instead. */
static void p_table_on_refblock(Image *i)
{
    be_put(i->data + be_get(i->data + 48, 8) + 8, 8, be_get(E0(i), 8));
}
static void p_table_on_guest(Image *i)
{
    be_put(i->data + img_guest(i), 8, 0);   /* the guest wrote zeroes */
    be_put(E0(i), 8, img_guest(i));
}
static void p_data_on_l2(Image *i) { put_te0(i, img_l2(i)); }
static void p_data_on_refblock(Image *i)
{
    uint64_t table;

    be_put(i->data + be_get(i->data + 48, 8) + 8, 8,
           be_get(i->data + *img_te0(i, &table), 8) & L2E_MASK);
}
static void p_data_on_guest(Image *i) { put_te0(i, img_guest(i)); }

static const Hostile hostile_cases[] = {
    { "overlaps an L2 table", p_table_on_l2 },
    { "overlaps a refcount block", p_table_on_refblock },
    { "overlaps guest data", p_table_on_guest },
    { "overlaps an L2 table", p_data_on_l2 },
    { "overlaps a refcount block", p_data_on_refblock },
    { "overlaps guest data", p_data_on_guest },
    { "not cluster aligned", p_dir_unaligned },
    { "outside the image file", p_dir_past_eof },
    { "outside the image file", p_dir_wraps },
    { "Corrupt bitmaps extension", p_nb_huge },
    { "Corrupt bitmaps extension", p_dir_size_huge },
    { "Corrupt bitmaps extension", p_dir_size_short },
    { "entries use", p_dir_size_long },
    { "bad name size", p_name_zero },
    { "bad name size", p_name_huge },
    { "bad name size", p_extra_huge },
    { "granularity", p_gran_small },
    { "granularity", p_gran_large },
    { "unsupported type", p_type },
    { "unknown flags", p_flags },
    { "not cluster aligned", p_table_unaligned },
    { "overlaps", p_table_on_l1 },
    { "outside the image file", p_table_on_header },
    { "overlaps", p_table_on_dir },
    { "does not cover", p_table_too_small },
    { "more than supported", p_table_huge },
    { "two bitmaps are named", p_dup_name },
    { "NUL", p_name_nul },
    { "table entry 0", p_entry_reserved },
    { "table entry 0", p_entry_past_eof },
    { "table entry 0", p_entry_ones_and_offset },
    { "overlaps", p_data_on_l1 },
    { "bitmap 'b1' data at", p_data_shared },
};

static void test_hostile(Fixture *f, gconstpointer data)
{
    Image orig;

    make_two_bitmaps(f, &orig);
    for (size_t k = 0; k < G_N_ELEMENTS(hostile_cases); k++) {
        const Hostile *h = &hostile_cases[k];
        Image img = orig;
        GError *err = NULL;
        BlockNode *bs;

        img.data = g_memdup2(orig.data, orig.len);
        h->patch(&img);
        g_assert_true(g_file_set_contents(f->path, (char *)img.data, img.len,
                                          NULL));
        g_free(img.data);
        bs = bdrv_open(f->path, "qcow2", 0, &err);
        if (bs || !err || !strstr(err->message, h->what)) {
            g_error("hostile case %zu: expected an error with '%s', got %s",
                    k, h->what, err ? err->message : "success");
        }
        g_clear_error(&err);
    }
    g_free(orig.data);
}

/* As QEMU 7.2 (checked with QMP block-dirty-bitmap-add persistent=true, a
 * qemu-io "flush" and qemu-img info -U): with IN_USE marking, a flush does
 * not store bitmaps; only close (or store_bitmaps) does. */
static void test_flush_does_not_store(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR | BDRV_O_BITMAPS_IN_USE);
    BlockNode *peek;
    GError *err = NULL;

    add_persistent(bs, "b", 64 * KiB);
    write_at(bs, 0, 4096);
    g_assert_true(bdrv_flush(bs, &err));
    g_assert_no_error(err);
    peek = must_open(f->path, BDRV_O_NO_LOCK);
    bdrv_lock(peek);
    g_assert_null(bdrv_find_dirty_bitmap(peek, "b"));
    bdrv_unlock(peek);
    bdrv_close(peek);
    bdrv_close(bs);
    peek = must_open(f->path, 0);
    bdrv_lock(peek);
    g_assert_nonnull(bdrv_find_dirty_bitmap(peek, "b"));
    bdrv_unlock(peek);
    bdrv_close(peek);
}

/* A bitmap data cluster on an L2 table that only a snapshot uses. */
static void test_data_on_snapshot_l2(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR);
    BlockSnapshotInfo sn = { .name = (char *)"s" };
    GError *err = NULL;
    Image img;
    uint64_t sn_l1, sn_l2;

    write_at(bs, 0, 4096);
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    write_at(bs, 0, 4096);              /* the active L2 table is copied */
    add_persistent(bs, "b1", 64 * KiB);
    add_persistent(bs, "b2", 64 * KiB);
    write_at(bs, 0, 4096);
    bdrv_close(bs);
    image_load(f->path, &img);
    sn_l1 = be_get(img.data + be_get(img.data + 64, 8), 8);
    sn_l2 = be_get(img.data + sn_l1, 8) & L2E_MASK;
    g_assert_cmpuint(sn_l2, !=, img_l2(&img));
    put_te0(&img, sn_l2);
    g_assert_true(g_file_set_contents(f->path, (char *)img.data, img.len,
                                      NULL));
    g_free(img.data);
    bs = bdrv_open(f->path, "qcow2", 0, &err);
    g_assert_null(bs);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "overlaps an L2 table"));
    g_error_free(err);
}

/* Table entry 1 (no cluster, bit 0 set) reads as all ones: QEMU never
 * writes it, but the format allows it and tern must load it. */
static void test_all_ones_entry(Fixture *f, gconstpointer data)
{
    Image img;
    BlockNode *bs;
    BdrvDirtyBitmap *bm;
    uint64_t table;

    make_two_bitmaps(f, &img);
    table = be_get(E0(&img), 8);
    be_put(img.data + table, 8, 1);
    g_assert_true(g_file_set_contents(f->path, (char *)img.data, img.len,
                                      NULL));
    g_free(img.data);
    bs = must_open(f->path, BDRV_O_RDWR);
    bdrv_lock(bs);
    bm = bdrv_find_dirty_bitmap(bs, "b1");
    /* One 64 KiB cluster of bits covers 32 GiB: the whole 64 MiB disk. */
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, DISK_SIZE - 4096 + 65536);
    g_assert_true(bdrv_dirty_bitmap_get(bm, DISK_SIZE - 1));
    bdrv_reset_dirty_bitmap(bm, 0, 65536);
    bdrv_unlock(bs);
    bdrv_close(bs);     /* stores it as a real data cluster */
    /* The cluster the patched entry used to name is leaked; nothing else. */
    assert_check(f->path, 1);
    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    bm = bdrv_find_dirty_bitmap(bs, "b1");
    g_assert_false(bdrv_dirty_bitmap_get(bm, 0));
    g_assert_true(bdrv_dirty_bitmap_get(bm, 65536));
    bdrv_unlock(bs);
    bdrv_close(bs);
}

/* Unknown extra data without EXTRA_DATA_COMPATIBLE: the entry is kept as it
 * is, its bitmap is not used, and its name stays taken. */
static void test_incompatible_extra_data(Fixture *f, gconstpointer data)
{
    Image img;
    BlockNode *bs;
    GError *err = NULL;
    uint8_t *e1;

    make_two_bitmaps(f, &img);
    /* b2's entry: 24 fixed bytes, 6 bytes of extra data, then "b2". */
    e1 = E0(&img) + 32;
    be_put(e1 + 20, 4, 6);
    memcpy(e1 + 24, "\x01\x02\x03\x04\x05\x06" "b2", 8);
    g_assert_true(g_file_set_contents(f->path, (char *)img.data, img.len,
                                      NULL));
    g_free(img.data);

    bs = must_open(f->path, BDRV_O_RDWR);
    bdrv_lock(bs);
    g_assert_nonnull(bdrv_find_dirty_bitmap(bs, "b1"));
    g_assert_null(bdrv_find_dirty_bitmap(bs, "b2"));
    g_assert_nonnull(bdrv_create_dirty_bitmap(bs, 65536, "b2", NULL));
    g_assert_false(bdrv_dirty_bitmap_make_persistent(
        bdrv_find_dirty_bitmap(bs, "b2"), true, &err));
    g_assert_nonnull(strstr(err->message, "already has a bitmap named 'b2'"));
    g_clear_error(&err);
    bdrv_unlock(bs);
    write_at(bs, 9 * MiB, 1);
    bdrv_close(bs);
    assert_clean(f->path);

    image_load(f->path, &img);
    e1 = E0(&img) + 32;
    g_assert_cmpuint(be_get(e1 + 20, 4), ==, 6);
    g_assert_cmpmem(e1 + 24, 8, "\x01\x02\x03\x04\x05\x06" "b2", 8);
    g_free(img.data);
}

/* Reloading while a bitmap of that name is live (as after migration with
 * shared storage): the IN_USE entry is its stale copy and is skipped. */
static void test_reload_keeps_live_bitmap(Fixture *f, gconstpointer data)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR);
    BdrvDirtyBitmap *live;
    GError *err = NULL;

    add_persistent(bs, "b", 64 * KiB);
    bdrv_close(bs);
    bs = must_open(f->path, BDRV_O_RDWR | BDRV_O_BITMAPS_IN_USE);   /* IN_USE */
    write_at(bs, 2 * MiB, 1);
    bdrv_lock(bs);
    live = bdrv_find_dirty_bitmap(bs, "b");
    g_assert_true(qcow2_bitmaps_load(bs, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_find_dirty_bitmap(bs, "b") == live);
    g_assert_cmpuint(g_list_length(bs->dirty_bitmaps), ==, 1);
    bdrv_unlock(bs);
    bdrv_close(bs);
    assert_clean(f->path);
    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    g_assert_true(bdrv_dirty_bitmap_get(bdrv_find_dirty_bitmap(bs, "b"),
                                        2 * MiB));
    bdrv_unlock(bs);
    bdrv_close(bs);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/qcow2-bitmap/roundtrip", test_roundtrip);
    ADD("/qcow2-bitmap/in-use-while-open", test_in_use_while_open);
    ADD("/qcow2-bitmap/kill9-leaves-in-use", test_kill9_leaves_in_use);
    ADD("/qcow2-bitmap/remove-merge-clear", test_remove_merge_clear);
    ADD("/qcow2-bitmap/hostile-directory", test_hostile);
    ADD("/qcow2-bitmap/all-ones-entry", test_all_ones_entry);
    ADD("/qcow2-bitmap/incompatible-extra-data", test_incompatible_extra_data);
    ADD("/qcow2-bitmap/reload-keeps-live-bitmap",
        test_reload_keeps_live_bitmap);
    ADD("/qcow2-bitmap/small-clusters", test_small_clusters);
    ADD("/qcow2-bitmap/data-on-snapshot-l2", test_data_on_snapshot_l2);
    ADD("/qcow2-bitmap/flush-does-not-store", test_flush_does_not_store);
#undef ADD
    return g_test_run();
}
