/*
 * Log-linear histogram (include/tern/histogram.h). Values below 16 have a
 * bucket each; above, the bucket is the power of two plus the next four bits
 * under the leading one.
 */
#include "tern/histogram.h"

static unsigned bucket_of(uint64_t v)
{
    unsigned e;

    if (v < (1u << HISTOGRAM_SUB_BITS)) {
        return v;
    }
    e = 63 - __builtin_clzll(v);
    return ((e - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS) |
           ((v >> (e - HISTOGRAM_SUB_BITS)) & ((1u << HISTOGRAM_SUB_BITS) - 1));
}

/* The largest value that falls in bucket 'b'. */
static uint64_t bucket_top(unsigned b)
{
    /* The leading one's position is (b >> SUB_BITS) + SUB_BITS - 1. */
    unsigned shift = (b >> HISTOGRAM_SUB_BITS) - 1;
    uint64_t sub = b & ((1u << HISTOGRAM_SUB_BITS) - 1);

    if (b < (1u << HISTOGRAM_SUB_BITS)) {
        return b;
    }
    return ((((uint64_t)1 << HISTOGRAM_SUB_BITS) | sub) << shift) +
           (((uint64_t)1 << shift) - 1);
}

void histogram_add(Histogram *h, uint64_t value)
{
    h->buckets[bucket_of(value)]++;
    h->count++;
    h->max = MAX(h->max, value);
}

uint64_t histogram_quantile(const Histogram *h, uint64_t num, uint64_t den)
{
    uint64_t want, seen = 0;

    if (!h->count || !den) {
        return 0;
    }
    want = MAX(1, DIV_ROUND_UP(h->count * MIN(num, den), den));
    for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= want) {
            return MIN(bucket_top(b), h->max);
        }
    }
    return h->max;
}
