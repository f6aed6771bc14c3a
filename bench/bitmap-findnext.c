/*
 * Find-next-dirty timing for bench/bitmap.py: a 1 TiB disk at 64 KiB
 * granularity (2^24 bits) with a few dirty chunks; prints one JSON line with
 * nanoseconds per next-set search from offset 0 (the whole bitmap is
 * skipped), per full walk of the dirty extents, and per set/reset of a chunk;
 * each the best of five rounds, as the host is shared.
 * Built by bench/bitmap.py against the build tree's libternutil.a.
 */
#include <stdio.h>

#include "tern/hbitmap.h"

#define NBITS (1ULL << 24)

static double now_ns(void)
{
    return g_get_monotonic_time() * 1000.0;
}

static volatile int64_t sink;

/* One round; stores ns per operation of each kind. */
static void round_once(HBitmap *hb, double *t_next, double *t_walk,
                       double *t_set)
{
    const int iters = 200000;
    double t0;
    uint64_t s, c;

    t0 = now_ns();
    for (int i = 0; i < iters; i++) {
        sink += hbitmap_next_set(hb, i & 7);
    }
    *t_next = (now_ns() - t0) / iters;

    t0 = now_ns();
    for (int i = 0; i < iters / 10; i++) {
        uint64_t pos = 0;

        while (hbitmap_next_set_area(hb, pos, NBITS, &s, &c)) {
            pos = s + c;
            sink += c;
        }
    }
    *t_walk = (now_ns() - t0) / (iters / 10);

    t0 = now_ns();
    for (int i = 0; i < iters; i++) {
        uint64_t bit = ((uint64_t)i * 2654435761u) % NBITS;

        hbitmap_set(hb, bit, 1);
        hbitmap_reset(hb, bit, 1);
    }
    *t_set = (now_ns() - t0) / iters;
}

int main(void)
{
    g_autoptr(HBitmap) hb = hbitmap_try_new(NBITS);
    double t_next = 1e9, t_walk = 1e9, t_set = 1e9;

    /* Almost empty: one bit near the end, and a few runs in between. */
    hbitmap_set(hb, NBITS - 3, 1);
    hbitmap_set(hb, NBITS / 2, 16);
    hbitmap_set(hb, NBITS / 3, 1);
    for (int r = 0; r < 5; r++) {
        double a, b, c;

        round_once(hb, &a, &b, &c);
        t_next = MIN(t_next, a);
        t_walk = MIN(t_walk, b);
        t_set = MIN(t_set, c);
    }
    printf("{\"bits\": %llu, \"next_set_ns\": %.1f, \"walk_ns\": %.1f,"
           " \"set_reset_ns\": %.1f, \"sink\": %lld}\n",
           (unsigned long long)NBITS, t_next, t_walk, t_set,
           (long long)(sink & 1));
    return 0;
}
