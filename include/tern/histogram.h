/*
 * A fixed-size log-linear histogram of 64-bit values (latencies in ns): 16
 * linear buckets per power of two, so a quantile read back is within 1/16
 * (6.25 %) of the true value, and the exact maximum. No allocation: safe to
 * embed in structs updated under a lock on hot paths.
 */
#ifndef TERN_HISTOGRAM_H
#define TERN_HISTOGRAM_H

#include "tern/common.h"

#define HISTOGRAM_SUB_BITS  4
#define HISTOGRAM_BUCKETS \
    ((64 - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS)

typedef struct Histogram {
    uint64_t count;
    uint64_t max;
    uint64_t buckets[HISTOGRAM_BUCKETS];
} Histogram;

void histogram_add(Histogram *h, uint64_t value);
/* The smallest bucket bound below which at least num/den of the values lie
 * (the exact maximum for the last bucket); 0 when empty. */
uint64_t histogram_quantile(const Histogram *h, uint64_t num, uint64_t den);

#endif
