/*
 * Unit tests for the log-linear histogram: exact small values, the 1/16
 * error bound against sorted samples, the maximum, an empty histogram.
 */
#include "tern/histogram.h"

static void test_small_exact(void)
{
    Histogram h = { 0 };

    for (uint64_t v = 0; v < 16; v++) {
        histogram_add(&h, v);
    }
    g_assert_cmpuint(h.count, ==, 16);
    g_assert_cmpuint(histogram_quantile(&h, 1, 2), ==, 7);
    g_assert_cmpuint(histogram_quantile(&h, 1, 1), ==, 15);
    g_assert_cmpuint(histogram_quantile(&h, 1, 16), ==, 0);
}

static int cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

static void test_error_bound(void)
{
    static const uint64_t qs[][2] = { { 1, 2 }, { 9, 10 }, { 99, 100 },
                                      { 999, 1000 } };
    g_autofree uint64_t *v = g_new(uint64_t, 10000);
    Histogram h = { 0 };
    GRand *r = g_rand_new_with_seed(7);

    for (unsigned i = 0; i < 10000; i++) {
        /* Spread over many powers of two, like fault latencies. */
        v[i] = (uint64_t)g_rand_int_range(r, 1, 1 << 20) <<
               g_rand_int_range(r, 0, 20);
        histogram_add(&h, v[i]);
    }
    qsort(v, 10000, sizeof(*v), cmp_u64);
    for (unsigned i = 0; i < G_N_ELEMENTS(qs); i++) {
        uint64_t exact = v[DIV_ROUND_UP(10000 * qs[i][0], qs[i][1]) - 1];
        uint64_t got = histogram_quantile(&h, qs[i][0], qs[i][1]);

        g_assert_cmpuint(got, >=, exact);
        g_assert_cmpuint(got, <=, exact + exact / 16 + 1);
    }
    g_assert_cmpuint(histogram_quantile(&h, 1, 1), ==, v[9999]);
    g_assert_cmpuint(h.max, ==, v[9999]);
    g_rand_free(r);
}

static void test_extremes(void)
{
    Histogram h = { 0 };

    g_assert_cmpuint(histogram_quantile(&h, 99, 100), ==, 0);
    histogram_add(&h, UINT64_MAX);
    histogram_add(&h, 1);
    g_assert_cmpuint(histogram_quantile(&h, 1, 2), ==, 1);
    g_assert_cmpuint(histogram_quantile(&h, 99, 100), ==, UINT64_MAX);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/histogram/small-exact", test_small_exact);
    g_test_add_func("/histogram/error-bound", test_error_bound);
    g_test_add_func("/histogram/extremes", test_extremes);
    return g_test_run();
}
