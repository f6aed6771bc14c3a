/*
 * Chunk study for crash-safe bitmaps (bench/crash-safe-bitmaps.py): opens a
 * qcow2 image that holds a persistent bitmap "b", issues 4 KiB writes in one
 * pattern through the block layer and prints one JSON line: the time the
 * writes took, the intent syncs they needed and the time those took, how
 * many granules they dirtied and how many the image's copy has set (what a
 * crash would leave).
 *
 *   bitmap-intent IMAGE PATTERN CHUNK_MIN CHUNK_MAX WRITES SEED THINK_US
 *     PATTERN: random (uniform), hot (90 % in eight 8 MiB regions), seq
 *     CHUNK_MIN == CHUNK_MAX fixes the chunk; 0 0 is the adaptive default;
 *     CHUNK_MIN -1 opens with BDRV_O_BITMAPS_IN_USE (no intents: baseline).
 *     THINK_US: busy time after each write, as a guest at queue depth 1
 *     spends between requests (so syncs weigh as they do in a VM).
 *
 * Built by bench/crash-safe-bitmaps.py against the -O2 tree's libraries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/dirty-bitmap.h"
#include "block/write-intent.h"

static uint64_t next_offset(const char *pattern, GRand *r, uint64_t size,
                            uint64_t *seq, const uint64_t *hot)
{
    uint64_t blocks = size / 4096;

    if (!strcmp(pattern, "seq")) {
        return (*seq)++ % blocks * 4096;
    }
    if (!strcmp(pattern, "hot") && g_rand_int_range(r, 0, 10)) {
        uint64_t base = hot[g_rand_int_range(r, 0, 8)];

        return base + (uint64_t)g_rand_int_range(r, 0, 2048) * 4096;
    }
    return ((uint64_t)g_rand_int(r) * 65536 + g_rand_int_range(r, 0, 65536)) %
           blocks * 4096;
}

/* Granules the image's copy of "b" has set, as a lock-free reader sees. */
static uint64_t image_count(const char *path)
{
    BlockNode *p = bdrv_open(path, "qcow2", BDRV_O_NO_LOCK, NULL);
    uint64_t n;

    if (!p) {
        return 0;
    }
    bdrv_lock(p);
    n = bdrv_get_dirty_count(bdrv_find_dirty_bitmap(p, "b")) /
        bdrv_dirty_bitmap_granularity(bdrv_find_dirty_bitmap(p, "b"));
    bdrv_unlock(p);
    bdrv_close(p);
    return n;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GRand) r = NULL;
    BlockNode *bs;
    BdrvWriteIntentStats st;
    int64_t cmin, cmax, think;
    uint64_t writes, seq, size, hot[8], mem_count;
    uint8_t buf[4096];
    gint64 t0, t1;

    if (argc != 8) {
        fprintf(stderr, "usage: %s IMAGE PATTERN CHUNK_MIN CHUNK_MAX WRITES"
                " SEED THINK_US\n", argv[0]);
        return 2;
    }
    think = strtoll(argv[7], NULL, 0);
    cmin = strtoll(argv[3], NULL, 0);
    cmax = strtoll(argv[4], NULL, 0);
    writes = strtoull(argv[5], NULL, 0);
    r = g_rand_new_with_seed(strtoul(argv[6], NULL, 0));
    bs = bdrv_open(argv[1], "qcow2", BDRV_O_RDWR |
                   (cmin < 0 ? BDRV_O_BITMAPS_IN_USE : 0), &err);
    if (!bs) {
        fprintf(stderr, "%s\n", err->message);
        return 1;
    }
    if (cmin > 0 || cmax > 0) {
        bdrv_lock(bs);
        bdrv_write_intent_set_chunk(bs, cmin, cmax);
        bdrv_unlock(bs);
    }
    size = bdrv_getlength(bs);
    seq = g_rand_int_range(r, 0, 1 << 20);
    for (int i = 0; i < 8; i++) {
        hot[i] = (uint64_t)g_rand_int_range(r, 0, size / (8 << 20)) << 23;
    }
    memset(buf, 0xa5, sizeof(buf));
    t0 = g_get_monotonic_time();
    for (uint64_t i = 0; i < writes; i++) {
        if (!bdrv_pwrite(bs, next_offset(argv[2], r, size, &seq, hot), buf,
                         sizeof(buf), &err)) {
            fprintf(stderr, "%s\n", err->message);
            return 1;
        }
        for (gint64 until = g_get_monotonic_time() + think;
             g_get_monotonic_time() < until;) {
        }
    }
    t1 = g_get_monotonic_time();
    bdrv_lock(bs);
    bdrv_write_intent_get_stats(bs, &st);
    mem_count = bdrv_get_dirty_count(bdrv_find_dirty_bitmap(bs, "b")) /
                bdrv_dirty_bitmap_granularity(bdrv_find_dirty_bitmap(bs, "b"));
    bdrv_unlock(bs);
    printf("{\"seconds\": %.6f, \"syncs\": %" PRIu64 ", \"sync_seconds\": "
           "%.6f, \"chunk\": %" PRIu64 ", \"dirty\": %" PRIu64 ", \"image\": %"
           PRIu64 "}\n", (t1 - t0) / 1e6, st.syncs, st.sync_us / 1e6, st.chunk,
           mem_count,
           cmin < 0 ? mem_count : image_count(argv[1]));
    bdrv_close(bs);
    return 0;
}
