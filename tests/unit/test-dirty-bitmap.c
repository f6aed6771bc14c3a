/*
 * Unit tests for dirty bitmaps on a driverless BlockNode: creation rules,
 * write tracking, flags and refusals, merge, successors (as dirty-bitmap
 * migration uses them) and QEMU's serialization layout (golden bytes,
 * round trips at unaligned chunk boundaries, hostile part ranges).
 */
#include <string.h>

#include "block/dirty-bitmap.h"

static BlockNode *node_new(uint64_t size)
{
    BlockNode *bs = g_new0(BlockNode, 1);

    g_mutex_init(&bs->lock);
    bs->node_name = g_strdup("node0");
    bs->size = size;
    return bs;
}

static void node_free(BlockNode *bs)
{
    bdrv_release_all_dirty_bitmaps(bs);
    g_mutex_clear(&bs->lock);
    g_free(bs->node_name);
    g_free(bs);
}

static BdrvDirtyBitmap *must_create(BlockNode *bs, uint32_t gran,
                                    const char *name)
{
    GError *err = NULL;
    BdrvDirtyBitmap *b = bdrv_create_dirty_bitmap(bs, gran, name, &err);

    g_assert_no_error(err);
    g_assert_nonnull(b);
    return b;
}

/* Asserts that err is set, contains 'what', and clears it. */
static void expect_error(GError **err, const char *what)
{
    g_assert_nonnull(*err);
    if (!strstr((*err)->message, what)) {
        g_error("error '%s' lacks '%s'", (*err)->message, what);
    }
    g_clear_error(err);
}

static void test_create_rules(void)
{
    BlockNode *bs = node_new(1 * MiB);
    GError *err = NULL;
    g_autofree char *long_name = g_strnfill(1024, 'x');
    static const uint32_t bad[] = { 0, 256, 511, 513, 3 * 1024, 0xffffffffu };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(bdrv_create_dirty_bitmap(bs, bad[i], "b", &err));
        g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_INVALID));
        expect_error(&err, "Granularity");
    }
    must_create(bs, 512, "b");
    g_assert_null(bdrv_create_dirty_bitmap(bs, 4096, "b", &err));
    expect_error(&err, "Bitmap already exists: b");
    g_assert_null(bdrv_create_dirty_bitmap(bs, 4096, long_name, &err));
    expect_error(&err, "too long");
    long_name[1023] = 0;
    must_create(bs, 1u << 31, long_name);
    g_assert_true(bdrv_has_named_bitmaps(bs));
    g_assert_nonnull(bdrv_find_dirty_bitmap(bs, "b"));
    g_assert_null(bdrv_find_dirty_bitmap(bs, "c"));
    /* 2^53 bits (more than HBITMAP_MAX_BITS): refused with a hint. */
    bs->size = 1ULL << 62;
    g_assert_null(bdrv_create_dirty_bitmap(bs, 512, "huge", &err));
    expect_error(&err, "larger granularity");
    node_free(bs);
}

static void test_mark_partial_last_chunk(void)
{
    const uint64_t gran = 64 * KiB, size = 10 * gran + 1000;
    BlockNode *bs = node_new(size);
    BdrvDirtyBitmap *on = must_create(bs, gran, "on");
    BdrvDirtyBitmap *off = must_create(bs, gran, "off");
    uint64_t s, c;

    bdrv_disable_dirty_bitmap(off);
    bdrv_dirty_bitmaps_mark(bs, size - 1, 1);
    bdrv_dirty_bitmaps_mark(bs, gran - 1, 2);      /* straddles two chunks */
    bdrv_dirty_bitmaps_mark(bs, size, 4096);       /* past the end: ignored */
    g_assert_cmpuint(bdrv_get_dirty_count(on), ==, 3 * gran);
    g_assert_cmpuint(bdrv_get_dirty_count(off), ==, 0);
    g_assert_true(bdrv_dirty_bitmap_get(on, 0));
    g_assert_true(bdrv_dirty_bitmap_get(on, gran));
    g_assert_false(bdrv_dirty_bitmap_get(on, 2 * gran));
    g_assert_true(bdrv_dirty_bitmap_get(on, 10 * gran + 999));
    g_assert_cmpint(bdrv_dirty_bitmap_next_dirty(on, 2 * gran), ==, 10 * gran);
    g_assert_cmpint(bdrv_dirty_bitmap_next_dirty(on, 100), ==, 100);
    g_assert_cmpint(bdrv_dirty_bitmap_next_zero(on, 0, size), ==, 2 * gran);
    g_assert_cmpint(bdrv_dirty_bitmap_next_zero(on, 10 * gran, size), ==, -1);
    g_assert_true(bdrv_dirty_bitmap_next_dirty_area(on, 0, size, &s, &c));
    g_assert_cmpuint(s, ==, 0);
    g_assert_cmpuint(c, ==, 2 * gran);
    g_assert_true(bdrv_dirty_bitmap_next_dirty_area(on, 2 * gran, size, &s,
                                                    &c));
    g_assert_cmpuint(s, ==, 10 * gran);
    g_assert_cmpuint(c, ==, 1000);  /* clipped to the node size */
    g_assert_false(bdrv_dirty_bitmap_next_dirty_area(on, size, size + 5, &s,
                                                     &c));
    bdrv_reset_dirty_bitmap(on, gran, gran);
    g_assert_cmpuint(bdrv_get_dirty_count(on), ==, 2 * gran);
    bdrv_clear_dirty_bitmap(on);
    g_assert_cmpint(bdrv_dirty_bitmap_next_dirty(on, 0), ==, -1);

    /* Growing keeps bits; shrinking drops the ones past the end. */
    bdrv_set_dirty_bitmap(on, 9 * gran, gran);
    g_assert_true(bdrv_dirty_bitmaps_truncate(bs, 20 * gran, NULL));
    g_assert_cmpuint(bdrv_dirty_bitmap_size(on), ==, 20 * gran);
    g_assert_cmpuint(bdrv_get_dirty_count(on), ==, gran);
    g_assert_true(bdrv_dirty_bitmaps_truncate(bs, 5 * gran, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(on), ==, 0);
    node_free(bs);
}

static void test_flags_and_checks(void)
{
    BlockNode *bs = node_new(1 * MiB);
    BdrvDirtyBitmap *b = must_create(bs, 4096, "b");
    GError *err = NULL;

    g_assert_true(bdrv_dirty_bitmap_check(b, BDRV_BITMAP_DEFAULT, NULL));
    bdrv_dirty_bitmap_set_busy(b, true);
    g_assert_false(bdrv_dirty_bitmap_check(b, BDRV_BITMAP_DEFAULT, &err));
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_BUSY));
    expect_error(&err, "in use by another operation");
    /* Busy bitmaps still track writes. */
    bdrv_dirty_bitmaps_mark(bs, 0, 1);
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 4096);
    g_assert_false(bdrv_remove_dirty_bitmap(bs, "b", &err));
    expect_error(&err, "in use");
    bdrv_dirty_bitmap_set_busy(b, false);

    bdrv_dirty_bitmap_set_readonly(b, true);
    g_assert_true(bdrv_dirty_bitmap_check(b, BDRV_BITMAP_ALLOW_RO, NULL));
    g_assert_false(bdrv_dirty_bitmap_check(b, BDRV_BITMAP_DEFAULT, &err));
    expect_error(&err, "readonly");
    bdrv_dirty_bitmap_set_readonly(b, false);

    bdrv_dirty_bitmap_set_inconsistent(b);
    g_assert_false(bdrv_dirty_bitmap_enabled(b));
    g_assert_false(bdrv_dirty_bitmap_check(b, BDRV_BITMAP_ALLOW_RO, &err));
    expect_error(&err, "inconsistent");

    /* Persistence: no driver can store it; skip_store hides it. */
    g_assert_false(bdrv_dirty_bitmap_make_persistent(b, true, &err));
    expect_error(&err, "cannot store bitmaps");
    bdrv_dirty_bitmap_set_persistence(b, true);
    g_assert_true(bdrv_dirty_bitmap_get_persistence(b));
    bdrv_dirty_bitmap_skip_store(b, true);
    g_assert_false(bdrv_dirty_bitmap_get_persistence(b));
    /* Removing a persistent bitmap needs the driver. */
    g_assert_false(bdrv_remove_dirty_bitmap(bs, "b", &err));
    expect_error(&err, "cannot remove persistent");
    bdrv_dirty_bitmap_set_persistence(b, false);
    g_assert_true(bdrv_remove_dirty_bitmap(bs, "b", NULL));
    g_assert_false(bdrv_remove_dirty_bitmap(bs, "b", &err));
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_NOT_FOUND));
    g_clear_error(&err);
    g_assert_null(bs->dirty_bitmaps);
    node_free(bs);
}

static void test_merge(void)
{
    BlockNode *bs = node_new(1 * MiB), *other = node_new(2 * MiB);
    BdrvDirtyBitmap *a = must_create(bs, 4096, "a");
    BdrvDirtyBitmap *b = must_create(bs, 4096, "b");
    BdrvDirtyBitmap *coarse = must_create(bs, 64 * KiB, "coarse");
    BdrvDirtyBitmap *big = must_create(other, 4096, "big");
    GError *err = NULL;

    bdrv_set_dirty_bitmap(a, 0, 4096);
    bdrv_set_dirty_bitmap(b, 8192, 4096);
    g_assert_true(bdrv_merge_dirty_bitmap(a, b, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(a), ==, 8192);
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 4096);

    /* Different granularities merge by extents, in both directions. */
    bdrv_set_dirty_bitmap(coarse, 512 * KiB, 1);
    g_assert_true(bdrv_merge_dirty_bitmap(a, coarse, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(a), ==, 8192 + 64 * KiB);
    g_assert_true(bdrv_merge_dirty_bitmap(coarse, b, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(coarse), ==, 2 * 64 * KiB);

    g_assert_false(bdrv_merge_dirty_bitmap(a, big, &err));
    expect_error(&err, "sizes differ");
    bdrv_dirty_bitmap_set_busy(a, true);
    g_assert_false(bdrv_merge_dirty_bitmap(a, b, &err));
    expect_error(&err, "in use");
    bdrv_dirty_bitmap_set_busy(a, false);
    bdrv_dirty_bitmap_set_readonly(b, true);
    g_assert_true(bdrv_merge_dirty_bitmap(a, b, NULL));   /* RO source ok */
    g_assert_false(bdrv_merge_dirty_bitmap(b, a, &err));  /* RO dest not */
    expect_error(&err, "readonly");
    node_free(bs);
    node_free(other);
}

static void test_successor_reclaim(void)
{
    BlockNode *bs = node_new(1 * MiB);
    BdrvDirtyBitmap *b = must_create(bs, 4096, "b");
    GError *err = NULL;

    g_assert_null(bdrv_reclaim_dirty_bitmap(b, &err));
    expect_error(&err, "none is present");
    bdrv_set_dirty_bitmap(b, 0, 4096);
    /* As the migration destination does: disable, then create. */
    bdrv_disable_dirty_bitmap(b);
    g_assert_true(bdrv_dirty_bitmap_create_successor(b, NULL));
    g_assert_true(bdrv_dirty_bitmap_busy(b));
    g_assert_true(bdrv_dirty_bitmap_has_successor(b));
    g_assert_cmpuint(g_list_length(bs->dirty_bitmaps), ==, 2);
    g_assert_false(bdrv_dirty_bitmap_create_successor(b, &err));
    expect_error(&err, "in use");
    /* Successor disabled: writes are not recorded anywhere. */
    bdrv_dirty_bitmaps_mark(bs, 4096, 1);
    bdrv_dirty_bitmap_enable_successor(b);
    bdrv_dirty_bitmaps_mark(bs, 8192, 1);
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 4096);
    g_assert_true(bdrv_reclaim_dirty_bitmap(b, NULL) == b);
    g_assert_false(bdrv_dirty_bitmap_busy(b));
    g_assert_true(bdrv_dirty_bitmap_enabled(b));   /* the successor's state */
    g_assert_false(bdrv_dirty_bitmap_has_successor(b));
    g_assert_cmpuint(g_list_length(bs->dirty_bitmaps), ==, 1);
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 8192);
    g_assert_true(bdrv_dirty_bitmap_get(b, 8192));
    g_assert_false(bdrv_dirty_bitmap_get(b, 4096));

    /* A busy bitmap (owned by migration) gets no successor. */
    bdrv_dirty_bitmap_set_busy(b, true);
    g_assert_false(bdrv_dirty_bitmap_create_successor(b, &err));
    expect_error(&err, "in use by an operation");
    node_free(bs);
}

static void test_successor_abdicate(void)
{
    BlockNode *bs = node_new(1 * MiB);
    BdrvDirtyBitmap *b = must_create(bs, 4096, "b"), *succ;
    GError *err = NULL;

    bdrv_dirty_bitmap_set_persistence(b, true);
    bdrv_set_dirty_bitmap(b, 0, 4096);
    g_assert_true(bdrv_dirty_bitmap_create_successor(b, NULL));
    g_assert_false(bdrv_dirty_bitmap_enabled(b));
    bdrv_dirty_bitmaps_mark(bs, 65536, 10);   /* successor inherited enabled */
    succ = bdrv_dirty_bitmap_abdicate(b, NULL);
    g_assert_nonnull(succ);
    g_assert_true(bdrv_find_dirty_bitmap(bs, "b") == succ);
    g_assert_true(bdrv_dirty_bitmap_get_persistence(succ));
    g_assert_false(bdrv_dirty_bitmap_busy(succ));
    g_assert_cmpuint(bdrv_get_dirty_count(succ), ==, 4096);
    g_assert_true(bdrv_dirty_bitmap_get(succ, 65536));
    g_assert_cmpuint(g_list_length(bs->dirty_bitmaps), ==, 1);
    g_assert_null(bdrv_dirty_bitmap_abdicate(succ, &err));
    expect_error(&err, "no successor");
    /* Releasing a parent releases its successor too. */
    g_assert_true(bdrv_dirty_bitmap_create_successor(succ, NULL));
    bdrv_release_dirty_bitmap(succ);
    g_assert_null(bs->dirty_bitmaps);
    node_free(bs);
}

static void test_serialize_golden(void)
{
    /* 200 chunks of 512 B: four words, the last one partial. */
    BlockNode *bs = node_new(200 * 512);
    BdrvDirtyBitmap *b = must_create(bs, 512, "g");
    uint8_t buf[32];
    static const uint8_t want[32] = {
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,  /* bits 0, 63 */
        0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00,  /* bits 80..87 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* bit 199 */
    };

    bdrv_set_dirty_bitmap(b, 0, 1);
    bdrv_set_dirty_bitmap(b, 63 * 512 + 100, 1);
    bdrv_set_dirty_bitmap(b, 80 * 512, 8 * 512);
    bdrv_set_dirty_bitmap(b, 199 * 512 + 511, 1);
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_align(b), ==, 32768);
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_size(b, 0, 200 * 512),
                     ==, 32);
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_size(b, 32768,
                                                          200 * 512 - 32768),
                     ==, 24);
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_size(b, 0, 0), ==, 0);
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_coverage(b, 65536), ==,
                     65536ULL * 8 * 512);
    g_assert_true(bdrv_dirty_bitmap_serialize_part(b, buf, 0, 200 * 512,
                                                   NULL));
    g_assert_cmpmem(buf, 32, want, 32);
    g_assert_true(bdrv_dirty_bitmap_serialize_part(b, buf, 65536,
                                                   200 * 512 - 65536, NULL));
    g_assert_cmpmem(buf, 16, want + 16, 16);
    {
        g_autofree char *sha = bdrv_dirty_bitmap_sha256(b);
        g_autofree char *want_sha =
            g_compute_checksum_for_data(G_CHECKSUM_SHA256, want, 32);

        g_assert_cmpstr(sha, ==, want_sha);
    }
    node_free(bs);
}

static void test_sha256_empty(void)
{
    /* QEMU hashes one zero word for an empty bitmap. */
    BlockNode *bs = node_new(0);
    BdrvDirtyBitmap *b = must_create(bs, 512, "e");
    g_autofree char *sha = bdrv_dirty_bitmap_sha256(b);
    static const uint8_t zero[8];
    g_autofree char *want = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                                        zero, 8);

    g_assert_cmpstr(sha, ==, want);
    node_free(bs);
}

/* Round trip in QEMU-style chunks of 'chunk' bytes, in a scrambled order. */
static void roundtrip_chunks(uint64_t size, uint32_t gran, uint64_t chunk)
{
    BlockNode *bs = node_new(size);
    BdrvDirtyBitmap *src = must_create(bs, gran, "src");
    BdrvDirtyBitmap *dst = must_create(bs, gran, "dst");
    GRand *rand = g_rand_new_with_seed(size ^ gran);
    uint64_t nchunks = DIV_ROUND_UP(size, chunk);
    g_autofree uint64_t *order = g_new(uint64_t, nchunks);

    for (int i = 0; i < 300; i++) {
        bdrv_set_dirty_bitmap(src, g_rand_int_range(rand, 0, size),
                              g_rand_int_range(rand, 1, 3 * gran));
    }
    bdrv_set_dirty_bitmap(src, size - 1, 1);
    bdrv_set_dirty_bitmap(dst, 0, size);    /* overwritten by the parts */
    for (uint64_t k = 0; k < nchunks; k++) {
        uint64_t j = g_rand_int_range(rand, 0, k + 1);

        order[k] = order[j];
        order[j] = k;
    }
    for (uint64_t k = 0; k < nchunks; k++) {
        uint64_t off = order[k] * chunk, len = MIN(chunk, size - off);
        uint64_t need = bdrv_dirty_bitmap_serialization_size(src, off, len);
        g_autofree uint8_t *buf = g_malloc0(need);

        g_assert_cmpuint(need, ==, DIV_ROUND_UP(DIV_ROUND_UP(len, gran), 64) * 8);
        g_assert_true(bdrv_dirty_bitmap_serialize_part(src, buf, off, len,
                                                       NULL));
        g_assert_true(bdrv_dirty_bitmap_deserialize_part(dst, buf, off, len,
                                                         NULL));
    }
    bdrv_dirty_bitmap_deserialize_finish(dst);
    g_assert_cmpuint(bdrv_get_dirty_count(dst), ==, bdrv_get_dirty_count(src));
    for (uint64_t off = 0; off < size; off += gran) {
        g_assert_cmpint(bdrv_dirty_bitmap_get(dst, off), ==,
                        bdrv_dirty_bitmap_get(src, off));
    }
    g_rand_free(rand);
    node_free(bs);
}

static void test_serialize_roundtrip(void)
{
    /* Size not a multiple of the granularity nor of a word's coverage. */
    roundtrip_chunks(100000, 512, 32768);
    roundtrip_chunks(100000, 512, 65536);
    roundtrip_chunks(3 * MiB + 4096 + 17, 4096, 8192ULL * 4096);
    /* Migration's chunk: 1 KiB of bitmap = 8192 bits. */
    roundtrip_chunks(64 * MiB + 512, 512, 8192ULL * 512);
}

static void test_serialize_hostile_parts(void)
{
    BlockNode *bs = node_new(100000);
    BdrvDirtyBitmap *b = must_create(bs, 512, "h");
    uint8_t buf[64] = { 0 };
    GError *err = NULL;

    g_assert_false(bdrv_dirty_bitmap_deserialize_part(b, buf, 512, 32768,
                                                      &err));
    expect_error(&err, "not aligned");
    g_assert_false(bdrv_dirty_bitmap_deserialize_part(b, buf, 0, 1000, &err));
    expect_error(&err, "not aligned");
    /* Up to the end of the last 512-byte sector is the end (migration
     * counts sectors); one byte more is past it. */
    g_assert_false(bdrv_dirty_bitmap_deserialize_part(b, buf, 98304, 2049,
                                                      &err));
    expect_error(&err, "past the end");
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_size(b, 98304, 2048), ==,
                     8);
    g_assert_true(bdrv_dirty_bitmap_serialize_part(b, buf, 98304, 2048,
                                                   NULL));
    g_assert_true(bdrv_dirty_bitmap_deserialize_part(b, buf, 98304, 2048,
                                                     NULL));
    /* A hostile range never sizes more than the whole bitmap. */
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_size(b, 0, UINT64_MAX),
                     ==, 32);
    g_assert_cmpuint(bdrv_dirty_bitmap_serialization_size(b, 1ULL << 40, 8),
                     ==, 0);
    g_assert_false(bdrv_dirty_bitmap_deserialize_zeroes(b, UINT64_MAX - 5, 10,
                                                        &err));
    expect_error(&err, "past the end");
    g_assert_false(bdrv_dirty_bitmap_deserialize_ones(b, 32768, UINT64_MAX,
                                                      &err));
    expect_error(&err, "past the end");
    g_assert_false(bdrv_dirty_bitmap_serialize_part(b, buf, 131072, 0, &err));
    expect_error(&err, "past the end");

    /* The last part may be short; ones/zeroes fill exactly their range. */
    g_assert_true(bdrv_dirty_bitmap_deserialize_ones(b, 98304, 1696, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 4 * 512);
    g_assert_true(bdrv_dirty_bitmap_deserialize_ones(b, 0, 32768, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 68 * 512);
    g_assert_true(bdrv_dirty_bitmap_deserialize_zeroes(b, 0, 100000, NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 0);
    /* Set bits past the end in the last word are dropped. */
    memset(buf, 0xff, 8);
    g_assert_true(bdrv_dirty_bitmap_deserialize_part(b, buf, 98304, 1696,
                                                     NULL));
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==, 4 * 512);
    node_free(bs);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dirty-bitmap/create-rules", test_create_rules);
    g_test_add_func("/dirty-bitmap/mark-partial-last-chunk",
                    test_mark_partial_last_chunk);
    g_test_add_func("/dirty-bitmap/flags-and-checks", test_flags_and_checks);
    g_test_add_func("/dirty-bitmap/merge", test_merge);
    g_test_add_func("/dirty-bitmap/successor-reclaim", test_successor_reclaim);
    g_test_add_func("/dirty-bitmap/successor-abdicate",
                    test_successor_abdicate);
    g_test_add_func("/dirty-bitmap/serialize-golden", test_serialize_golden);
    g_test_add_func("/dirty-bitmap/sha256-empty", test_sha256_empty);
    g_test_add_func("/dirty-bitmap/serialize-roundtrip",
                    test_serialize_roundtrip);
    g_test_add_func("/dirty-bitmap/serialize-hostile-parts",
                    test_serialize_hostile_parts);
    return g_test_run();
}
