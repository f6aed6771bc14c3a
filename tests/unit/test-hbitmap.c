/*
 * Unit tests for the hierarchical bitmap: edge sizes, summary consistency
 * against a plain bool array under random operations, little-endian word
 * layout, merge and resize.
 */
#include <string.h>

#include "tern/hbitmap.h"

/* Checks every observable against a naive model. */
static void check_against_model(const HBitmap *hb, const bool *model,
                                uint64_t n)
{
    uint64_t count = 0;

    for (uint64_t i = 0; i < n; i++) {
        g_assert_cmpint(hbitmap_get(hb, i), ==, model[i]);
        count += model[i];
    }
    g_assert_cmpuint(hbitmap_count(hb), ==, count);
    for (uint64_t start = 0; start <= n; start += 1 + start / 3) {
        int64_t want = -1, want_zero = -1;

        for (uint64_t i = start; i < n; i++) {
            if (model[i] && want < 0) {
                want = i;
            }
            if (!model[i] && want_zero < 0) {
                want_zero = i;
            }
        }
        g_assert_cmpint(hbitmap_next_set(hb, start), ==, want);
        g_assert_cmpint(hbitmap_next_zero(hb, start, UINT64_MAX), ==,
                        want_zero);
    }
}

static void test_sizes(void)
{
    static const uint64_t sizes[] = { 0, 1, 63, 64, 65, 4095, 4096, 4097,
                                      262145 };

    for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
        uint64_t n = sizes[s];
        g_autoptr(HBitmap) hb = hbitmap_try_new(n);

        g_assert_nonnull(hb);
        g_assert_cmpuint(hbitmap_size(hb), ==, n);
        g_assert_cmpint(hbitmap_next_set(hb, 0), ==, -1);
        hbitmap_set_all(hb);
        g_assert_cmpuint(hbitmap_count(hb), ==, n);
        g_assert_cmpint(hbitmap_next_zero(hb, 0, UINT64_MAX), ==, -1);
        if (n) {
            g_assert_true(hbitmap_get(hb, n - 1));
            g_assert_false(hbitmap_get(hb, n));
            g_assert_cmpint(hbitmap_next_set(hb, n - 1), ==, (int64_t)n - 1);
        }
        g_assert_cmpint(hbitmap_next_set(hb, n), ==, -1);
        /* Setting past the end is clamped, not an overflow. */
        hbitmap_set(hb, n, 100);
        hbitmap_set(hb, n ? n - 1 : 0, UINT64_MAX);
        g_assert_cmpuint(hbitmap_count(hb), ==, n);
        hbitmap_reset(hb, 0, UINT64_MAX);
        g_assert_cmpuint(hbitmap_count(hb), ==, 0);
        g_assert_cmpint(hbitmap_next_set(hb, 0), ==, -1);
    }
    g_assert_null(hbitmap_try_new(HBITMAP_MAX_BITS + 1));
}

static void test_random_vs_model(void)
{
    const uint64_t n = 70000;   /* three levels, partial last word */
    g_autoptr(HBitmap) hb = hbitmap_try_new(n);
    g_autofree bool *model = g_new0(bool, n);
    GRand *rand = g_rand_new_with_seed(1234);

    for (int iter = 0; iter < 400; iter++) {
        uint64_t start = g_rand_int_range(rand, 0, n);
        uint64_t len = g_rand_boolean(rand) ? g_rand_int_range(rand, 1, 200)
                                            : g_rand_int_range(rand, 1, 9000);
        bool set = g_rand_int_range(rand, 0, 3) != 0;

        if (set) {
            hbitmap_set(hb, start, len);
        } else {
            hbitmap_reset(hb, start, len);
        }
        for (uint64_t i = start; i < MIN(n, start + len); i++) {
            model[i] = set;
        }
        if (iter % 40 == 0) {
            check_against_model(hb, model, n);
        }
    }
    check_against_model(hb, model, n);
    g_rand_free(rand);
}

static void test_sparse_far_bits(void)
{
    const uint64_t n = 1ULL << 24;  /* 1 TiB at 64 KiB granularity */
    g_autoptr(HBitmap) hb = hbitmap_try_new(n);

    hbitmap_set(hb, 5, 1);
    hbitmap_set(hb, n - 1, 1);
    hbitmap_set(hb, 1ULL << 20, 3);
    g_assert_cmpint(hbitmap_next_set(hb, 0), ==, 5);
    g_assert_cmpint(hbitmap_next_set(hb, 6), ==, 1 << 20);
    g_assert_cmpint(hbitmap_next_set(hb, (1 << 20) + 3), ==, (int64_t)n - 1);
    hbitmap_reset(hb, n - 1, 1);
    g_assert_cmpint(hbitmap_next_set(hb, (1 << 20) + 3), ==, -1);
    g_assert_cmpuint(hbitmap_count(hb), ==, 4);
}

static void test_set_area(void)
{
    g_autoptr(HBitmap) hb = hbitmap_try_new(1000);
    uint64_t s, c;

    hbitmap_set(hb, 10, 5);
    hbitmap_set(hb, 100, 200);
    g_assert_true(hbitmap_next_set_area(hb, 0, 1000, &s, &c));
    g_assert_cmpuint(s, ==, 10);
    g_assert_cmpuint(c, ==, 5);
    g_assert_true(hbitmap_next_set_area(hb, 15, 1000, &s, &c));
    g_assert_cmpuint(s, ==, 100);
    g_assert_cmpuint(c, ==, 200);
    g_assert_true(hbitmap_next_set_area(hb, 150, 160, &s, &c));
    g_assert_cmpuint(s, ==, 150);
    g_assert_cmpuint(c, ==, 10);
    g_assert_false(hbitmap_next_set_area(hb, 300, 1000, &s, &c));
    hbitmap_set(hb, 990, 100);
    g_assert_true(hbitmap_next_set_area(hb, 300, 5000, &s, &c));
    g_assert_cmpuint(s, ==, 990);
    g_assert_cmpuint(c, ==, 10);
}

static void test_words_le(void)
{
    g_autoptr(HBitmap) hb = hbitmap_try_new(130);
    uint8_t buf[24];
    static const uint8_t want[24] = {
        0x01, 0, 0, 0, 0, 0, 0, 0x80,   /* bits 0 and 63 */
        0, 0x01, 0, 0, 0, 0, 0, 0,      /* bit 72 */
        0x03, 0, 0, 0, 0, 0, 0, 0,      /* bits 128, 129: last partial word */
    };
    static const uint8_t hostile[8] = { 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff };

    hbitmap_set(hb, 0, 1);
    hbitmap_set(hb, 63, 1);
    hbitmap_set(hb, 72, 1);
    hbitmap_set(hb, 128, 2);
    g_assert_cmpuint(hbitmap_word_count(hb), ==, 3);
    hbitmap_store_words(hb, 0, 3, buf);
    g_assert_cmpmem(buf, 24, want, 24);

    hbitmap_reset_all(hb);
    hbitmap_load_words(hb, 0, 3, want);
    g_assert_cmpuint(hbitmap_count(hb), ==, 5);
    g_assert_true(hbitmap_get(hb, 72));
    g_assert_cmpint(hbitmap_next_set(hb, 73), ==, 128);

    /* Bits past the end in the last word are dropped, keeping count exact. */
    hbitmap_load_words(hb, 2, 1, hostile);
    g_assert_cmpuint(hbitmap_count(hb), ==, 5);
    hbitmap_load_words(hb, 1, 1, hostile);
    g_assert_cmpuint(hbitmap_count(hb), ==, 2 + 64 + 2);
    g_assert_cmpint(hbitmap_next_zero(hb, 1, 200), ==, 1);
    /* Loading zeroes clears the summary as well. */
    memset(buf, 0, sizeof(buf));
    hbitmap_load_words(hb, 0, 3, buf);
    g_assert_cmpuint(hbitmap_count(hb), ==, 0);
    g_assert_cmpint(hbitmap_next_set(hb, 0), ==, -1);
}

static void test_merge_resize(void)
{
    g_autoptr(HBitmap) a = hbitmap_try_new(5000);
    g_autoptr(HBitmap) b = hbitmap_try_new(5000);

    hbitmap_set(a, 10, 10);
    hbitmap_set(b, 15, 10);
    hbitmap_set(b, 4999, 1);
    hbitmap_merge(a, b);
    g_assert_cmpuint(hbitmap_count(a), ==, 16);
    g_assert_cmpint(hbitmap_next_set(a, 25), ==, 4999);
    g_assert_cmpuint(hbitmap_count(b), ==, 11);

    g_assert_true(hbitmap_resize(a, 100));
    g_assert_cmpuint(hbitmap_size(a), ==, 100);
    g_assert_cmpuint(hbitmap_count(a), ==, 15);
    g_assert_cmpint(hbitmap_next_set(a, 25), ==, -1);
    g_assert_true(hbitmap_resize(a, 1 << 20));
    g_assert_cmpuint(hbitmap_count(a), ==, 15);
    hbitmap_set(a, (1 << 20) - 1, 1);
    g_assert_cmpint(hbitmap_next_set(a, 25), ==, (1 << 20) - 1);
    g_assert_false(hbitmap_resize(a, HBITMAP_MAX_BITS + 1));
    g_assert_cmpuint(hbitmap_count(a), ==, 16);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hbitmap/sizes", test_sizes);
    g_test_add_func("/hbitmap/random-vs-model", test_random_vs_model);
    g_test_add_func("/hbitmap/sparse-far-bits", test_sparse_far_bits);
    g_test_add_func("/hbitmap/next-set-area", test_set_area);
    g_test_add_func("/hbitmap/words-le", test_words_le);
    g_test_add_func("/hbitmap/merge-resize", test_merge_resize);
    return g_test_run();
}
