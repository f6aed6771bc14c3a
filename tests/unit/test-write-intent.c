/*
 * Crash-safe persistent bitmaps (block/write-intent.c with qcow2's layout):
 * what a lock-free reader of the image file sees while a writer is open is
 * what kill -9 would leave, so most tests peek at it. Checked: the layout
 * (consistent, AUTO, no leaks), intents before writes with the chunk and
 * its adaptation, one sync per announced batch, clear/merge/set/enable/
 * disable/remove reaching the image, the exact store on close, resize,
 * inactivation leaving migrating bitmaps IN_USE, and a real kill -9.
 */
#include "block/dirty-bitmap.h"
#include "block/write-intent.h"
#include "test-block-util.h"

#define DISK_SIZE BITMAP_TEST_DISK_SIZE

/* An image with bitmaps "big" (64 KiB) and "small" (4 KiB), open rw,
 * discards reaching the image. */
static BlockNode *open_with_bitmaps(Fixture *f)
{
    BlockNode *bs = must_open(f->path, BDRV_O_RDWR | BDRV_O_UNMAP);

    add_persistent(bs, "big", 64 * KiB);
    add_persistent(bs, "small", 4 * KiB);
    return bs;
}

static BdrvDirtyBitmap *bitmap(BlockNode *bs, const char *name)
{
    BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, name);

    g_assert_nonnull(bm);
    return bm;
}

static uint64_t syncs(BlockNode *bs)
{
    BdrvWriteIntentStats st;

    bdrv_lock(bs);
    bdrv_write_intent_get_stats(bs, &st);
    bdrv_unlock(bs);
    return st.syncs;
}

/* The image as kill -9 would leave it: a lock-free read-only open. */
static BlockNode *peek(Fixture *f)
{
    return must_open(f->path, BDRV_O_NO_LOCK);
}

/* Dirty extents of bitmap 'name' in the image, as "off+len ..." text. */
static char *image_extents(Fixture *f, const char *name)
{
    BlockNode *p = peek(f);
    GString *out = g_string_new(NULL);
    BdrvDirtyBitmap *bm;
    uint64_t off = 0, s, c;

    bdrv_lock(p);
    bm = bitmap(p, name);
    g_assert_false(bdrv_dirty_bitmap_inconsistent(bm));
    while (bdrv_dirty_bitmap_next_dirty_area(bm, off, DISK_SIZE, &s, &c)) {
        g_string_append_printf(out, "%s%" PRIu64 "+%" PRIu64,
                               out->len ? " " : "", s, c);
        off = s + c;
    }
    bdrv_unlock(p);
    bdrv_close(p);
    return g_string_free(out, FALSE);
}

static void assert_extents(Fixture *f, const char *name, const char *want)
{
    g_autofree char *got = image_extents(f, name);

    g_assert_cmpstr(got, ==, want);
}

static const BlockBitmapInfo *find_info(BlockImageInfo *info, const char *name)
{
    for (guint i = 0; info->bitmaps && i < info->bitmaps->len; i++) {
        const BlockBitmapInfo *bi = info->bitmaps->pdata[i];

        if (!strcmp(bi->name, name)) {
            return bi;
        }
    }
    g_assert_not_reached();
}

/* The image's flags for 'name': 'i' in-use, 'a' auto. */
static char *image_flags(Fixture *f, const char *name)
{
    BlockNode *p = peek(f);
    g_autoptr(BlockImageInfo) info = NULL;
    const BlockBitmapInfo *bi;

    g_assert_true(bdrv_get_info(p, &info, NULL));
    bdrv_close(p);
    bi = find_info(info, name);
    return g_strdup_printf("%s%s", bi->in_use ? "i" : "", bi->auto_flag ? "a"
                                                                        : "");
}

static void assert_flags(Fixture *f, const char *name, const char *want)
{
    g_autofree char *got = image_flags(f, name);

    g_assert_cmpstr(got, ==, want);
}

/* check on the image file as it is: no corruption, 'leaks' leaked (-1:
 * any number, as guest writes in flight in qcow2's caches leave). */
static void assert_check(Fixture *f, int64_t leaks)
{
    BlockNode *p = peek(f);
    BlockCheckResult res = { 0 };

    g_assert_true(bdrv_check(p, BDRV_CHECK_REPORT, &res, NULL));
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
    if (leaks >= 0) {
        g_assert_cmpint(res.leaks, ==, leaks);
    }
    bdrv_close(p);
}

static void test_layout_while_open(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    BdrvWriteIntentStats st;

    bdrv_lock(bs);
    bdrv_write_intent_get_stats(bs, &st);
    bdrv_unlock(bs);
    g_assert_cmpuint(st.bitmaps, ==, 2);
    assert_flags(f, "big", "a");
    assert_flags(f, "small", "a");
    assert_extents(f, "big", "");
    assert_check(f, 0);
    bdrv_close(bs);
    assert_extents(f, "small", "");
    assert_check(f, 0);
}

/* Before a write returns, its chunk is set in the image; writes inside a
 * covered chunk cost no sync. */
static void test_intent_before_write(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);

    bdrv_write_intent_set_chunk(bs, MiB, MiB);
    fill(bs, 5 * MiB + 12345, 100, 0x11);
    g_assert_cmpuint(syncs(bs), ==, 1);
    assert_extents(f, "big", "5242880+1048576");
    assert_extents(f, "small", "5242880+1048576");
    fill(bs, 5 * MiB, 4096, 0x12);
    fill(bs, 6 * MiB - 4096, 4096, 0x13);
    g_assert_cmpuint(syncs(bs), ==, 1);
    /* Straddling two chunks: both, one sync. */
    fill(bs, 8 * MiB - 512, 1024, 0x14);
    g_assert_cmpuint(syncs(bs), ==, 2);
    assert_extents(f, "big", "5242880+1048576 7340032+2097152");
    /* The partial last chunk. */
    fill(bs, DISK_SIZE - 512, 512, 0x15);
    assert_extents(f, "small", "5242880+1048576 7340032+2097152 "
                   "67108864+4096");
    assert_check(f, -1);
    /* Close stores the exact bits. */
    bdrv_close(bs);
    assert_extents(f, "big", "5242880+65536 6225920+65536 8323072+131072 "
                   "67108864+4096");
    assert_extents(f, "small", "5242880+4096 5255168+4096 6287360+4096 "
                   "8384512+8192 67108864+4096");
    assert_flags(f, "big", "a");
    assert_check(f, 0);
}

/* cache=none: the intents' small unaligned durable writes go through the
 * file layer's aligned bounce buffer, and the image holds them. */
static void test_intent_nocache(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_nocache_or_skip(f->path);

    if (!bs) {
        return;
    }
    add_persistent(bs, "big", 64 * KiB);
    add_persistent(bs, "small", 4 * KiB);
    bdrv_write_intent_set_chunk(bs, MiB, MiB);
    fill(bs, 5 * MiB + 12345, 100, 0x11);
    fill(bs, 9 * MiB, 4096, 0x12);
    g_assert_cmpuint(syncs(bs), ==, 2);
    assert_extents(f, "big", "5242880+1048576 9437184+1048576");
    assert_extents(f, "small", "5242880+1048576 9437184+1048576");
    assert_check(f, -1);
    bdrv_close(bs);
    assert_extents(f, "small", "5255168+4096 9437184+4096");
    assert_check(f, 0);
}

static void test_discard_and_zeroes_covered(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    GError *err = NULL;

    bdrv_write_intent_set_chunk(bs, 64 * KiB, 64 * KiB);
    g_assert_true(bdrv_discard(bs, 2 * MiB, 64 * KiB, &err));
    g_assert_true(bdrv_write_zeroes(bs, 3 * MiB, 4096, false, &err));
    g_assert_no_error(err);
    assert_extents(f, "big", "2097152+65536 3145728+65536");
    bdrv_close(bs);
}

/* A discard of a whole 8 GiB disk under a 512-byte bitmap (16 Mi bits):
 * written in pieces of bounded size, all set when it returns. */
static void test_huge_range(Fixture *f, gconstpointer data)
{
    g_autofree char *dir = NULL;
    g_autofree char *path = scratch_qcow2("tern-write-intent-big-XXXXXX",
                                          8 * GiB, &dir);
    BlockNode *bs = must_open(path, BDRV_O_RDWR | BDRV_O_UNMAP), *p;
    GError *err = NULL;

    add_persistent(bs, "fine", 512);
    g_assert_true(bdrv_discard(bs, 0, 8 * GiB, &err));
    g_assert_no_error(err);
    p = must_open(path, BDRV_O_NO_LOCK);
    bdrv_lock(p);
    g_assert_cmpuint(bdrv_get_dirty_count(bitmap(p, "fine")), ==, 8 * GiB);
    bdrv_unlock(p);
    bdrv_close(p);
    bdrv_close(bs);
    unlink(path);
    rmdir(dir);
}

/* Writes announced together share one sync; then they cost none. */
static void test_announce_batch(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    BdrvRange r[8];
    GError *err = NULL;

    bdrv_write_intent_set_chunk(bs, 64 * KiB, 64 * KiB);
    for (int i = 0; i < 8; i++) {
        r[i] = (BdrvRange){ (uint64_t)i * 7 * MiB + 4096, 4096 };
    }
    g_assert_true(bdrv_write_intent_announce(bs, r, 8, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(syncs(bs), ==, 1);
    for (int i = 0; i < 8; i++) {
        fill(bs, r[i].offset, r[i].bytes, 0x20 + i);
    }
    g_assert_cmpuint(syncs(bs), ==, 1);
    bdrv_close(bs);
}

/* Syncs past their budget double the chunk; a full budget halves it. */
static void test_chunk_grows(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    BdrvWriteIntentStats st;

    bdrv_write_intent_set_chunk(bs, 64 * KiB, 16 * MiB);
    bdrv_lock(bs);
    bdrv_write_intent_set_sync_budget(bs, 1000000, 0);   /* none at all */
    bdrv_unlock(bs);
    for (int i = 0; i < 64; i++) {
        fill(bs, (uint64_t)i * MiB, 512, 0x30);
    }
    bdrv_lock(bs);
    bdrv_write_intent_get_stats(bs, &st);
    bdrv_unlock(bs);
    /* Writes 1 MiB apart: a sync each (chunks 64K, 256K, 1M, 4M around
     * them) until the chunk covers the next ones, then one per chunk. */
    g_assert_cmpuint(st.chunk, ==, 16 * MiB);
    g_assert_cmpuint(st.syncs, ==, 8);
    assert_extents(f, "big", "0+67108864");

    /* Every sync refills a whole (tiny) burst: the chunk halves back. */
    bdrv_lock(bs);
    bdrv_write_intent_set_sync_budget(bs, 1, 1);
    bdrv_clear_dirty_bitmap(bitmap(bs, "big"));
    bdrv_clear_dirty_bitmap(bitmap(bs, "small"));
    bdrv_unlock(bs);
    for (int i = 0; i < 12; i++) {
        fill(bs, (uint64_t)i * 4 * MiB, 512, 0x31);
    }
    bdrv_lock(bs);
    bdrv_write_intent_get_stats(bs, &st);
    bdrv_unlock(bs);
    g_assert_cmpuint(st.chunk, ==, 64 * KiB);
    bdrv_close(bs);
}

static void test_clear_merge_set(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    BdrvDirtyBitmap *other;
    GError *err = NULL;

    bdrv_write_intent_set_chunk(bs, MiB, MiB);
    fill(bs, 10 * MiB, 4096, 0x40);
    bdrv_lock(bs);
    bdrv_clear_dirty_bitmap(bitmap(bs, "big"));
    bdrv_unlock(bs);
    /* Cleared in the image too, pre-set chunk included. */
    assert_extents(f, "big", "");
    assert_extents(f, "small", "10485760+1048576");
    /* The next write into it needs its intent again. */
    fill(bs, 10 * MiB + 8192, 4096, 0x41);
    assert_extents(f, "big", "10485760+1048576");
    g_assert_cmpuint(syncs(bs), ==, 2);

    /* merge: the image has the merged bits when it returns. */
    other = add_persistent(bs, "other", 512);
    bdrv_lock(bs);
    bdrv_disable_dirty_bitmap(other);
    bdrv_set_dirty_bitmap(other, 40 * MiB, 512);
    g_assert_true(bdrv_merge_dirty_bitmap(bitmap(bs, "small"), other, &err));
    g_assert_no_error(err);
    bdrv_reset_dirty_bitmap(bitmap(bs, "small"), 10 * MiB, 4096);
    bdrv_unlock(bs);
    assert_extents(f, "other", "41943040+512");
    assert_extents(f, "small", "10493952+4096 41943040+4096");
    assert_check(f, -1);
    bdrv_close(bs);
    assert_extents(f, "small", "10493952+4096 41943040+4096");
    assert_check(f, 0);
}

static void test_enable_disable_remove(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    GError *err = NULL;

    bdrv_write_intent_set_chunk(bs, 64 * KiB, 64 * KiB);
    bdrv_lock(bs);
    bdrv_disable_dirty_bitmap(bitmap(bs, "big"));
    bdrv_unlock(bs);
    assert_flags(f, "big", "");
    fill(bs, 0, 4096, 0x50);
    assert_extents(f, "big", "");         /* disabled: no intent */
    assert_extents(f, "small", "0+65536");
    bdrv_lock(bs);
    bdrv_enable_dirty_bitmap(bitmap(bs, "big"));
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "small", &err));
    g_assert_no_error(err);
    bdrv_unlock(bs);
    assert_flags(f, "big", "a");
    fill(bs, 20 * MiB, 4096, 0x51);       /* "big" still tracked */
    assert_extents(f, "big", "20971520+65536");
    assert_check(f, -1);
    bdrv_close(bs);
    assert_check(f, 0);
}

/* Resize: IN_USE in between, laid out again for the new size after. */
static void test_resize(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    GError *err = NULL;

    fill(bs, 0, 4096, 0x60);
    g_assert_true(bdrv_truncate(bs, 2 * DISK_SIZE, &err));
    g_assert_no_error(err);
    assert_flags(f, "big", "a");
    fill(bs, 2 * DISK_SIZE - 4096, 4096, 0x61);
    bdrv_close(bs);
    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    g_assert_true(bdrv_dirty_bitmap_get(bitmap(bs, "small"), 0));
    g_assert_true(bdrv_dirty_bitmap_get(bitmap(bs, "small"),
                                        2 * DISK_SIZE - 1));
    bdrv_unlock(bs);
    bdrv_close(bs);
    assert_check(f, 0);
}

/* Migration hands the image over: bitmaps travelling in the stream are
 * left IN_USE (as QEMU leaves them), the others are stored. */
static void test_inactivate(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);
    GError *err = NULL;

    bdrv_write_intent_set_chunk(bs, 64 * KiB, 64 * KiB);
    fill(bs, MiB, 4096, 0x70);
    bdrv_lock(bs);
    bdrv_dirty_bitmap_skip_store(bitmap(bs, "small"), true);
    bdrv_unlock(bs);
    g_assert_true(bdrv_inactivate(bs, false, &err));
    g_assert_no_error(err);
    assert_flags(f, "small", "ia");
    assert_flags(f, "big", "a");
    assert_extents(f, "big", "1048576+65536");
    /* The migration failed: the bitmap is the image's again. */
    bdrv_lock(bs);
    bdrv_dirty_bitmap_skip_store(bitmap(bs, "small"), false);
    bdrv_unlock(bs);
    g_assert_true(bdrv_activate(bs, &err));
    g_assert_no_error(err);
    /* Back: the live bitmaps are laid out again. */
    assert_flags(f, "small", "a");
    fill(bs, 30 * MiB, 4096, 0x71);
    assert_extents(f, "big", "1048576+65536 31457280+65536");
    bdrv_close(bs);
    assert_check(f, 0);
}

/* A real kill -9 of a writer: the bitmap is consistent and covers every
 * block written. */
static void test_kill9(Fixture *f, gconstpointer data)
{
    BlockNode *bs = open_with_bitmaps(f);

    bdrv_close(bs);
    kill9_writer(f->path, BDRV_O_RDWR, 8192, false);

    assert_flags(f, "big", "a");
    bs = must_open(f->path, 0);
    bdrv_lock(bs);
    for (int i = 0; i < 64; i++) {
        g_assert_true(bdrv_dirty_bitmap_get(bitmap(bs, "big"),
                                            (uint64_t)i * MiB + 8192));
        g_assert_true(bdrv_dirty_bitmap_get(bitmap(bs, "small"),
                                            (uint64_t)i * MiB + 8192));
    }
    bdrv_unlock(bs);
    bdrv_close(bs);
    {
        BlockNode *p = peek(f);
        BlockCheckResult res = { 0 };

        g_assert_true(bdrv_check(p, BDRV_CHECK_REPORT, &res, NULL));
        g_assert_cmpint(res.corruptions, ==, 0);
        g_assert_cmpint(res.check_errors, ==, 0);
        bdrv_close(p);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/write-intent/layout-while-open", test_layout_while_open);
    ADD("/write-intent/intent-before-write", test_intent_before_write);
    ADD("/write-intent/nocache", test_intent_nocache);
    ADD("/write-intent/discard-and-zeroes", test_discard_and_zeroes_covered);
    ADD("/write-intent/huge-range", test_huge_range);
    ADD("/write-intent/announce-batch", test_announce_batch);
    ADD("/write-intent/chunk-grows", test_chunk_grows);
    ADD("/write-intent/clear-merge-set", test_clear_merge_set);
    ADD("/write-intent/enable-disable-remove", test_enable_disable_remove);
    ADD("/write-intent/resize", test_resize);
    ADD("/write-intent/inactivate", test_inactivate);
    ADD("/write-intent/kill9", test_kill9);
    return g_test_run();
}
