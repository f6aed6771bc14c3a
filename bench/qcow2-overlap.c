/*
 * Cost of qcow2's metadata-overlap check on the write path, for
 * bench/block.py --overlap: the same node does the same writes with its
 * metadata map in place and with it set aside (the check then returns at
 * once), alternating, best of five rounds each. Writes go to an image in
 * the given directory (use a tmpfs: the disk would drown the difference).
 * Prints one JSON line per case: ns per write with and without the map,
 * and ns per one-cluster lookup in that map (a million random clusters).
 * Built by bench/block.py against the build tree's libternblock.a.
 *
 * usage: qcow2-overlap DIR
 */
#include <stdio.h>
#include <unistd.h>

#include "block/qcow2.h"

typedef struct Case {
    const char *name;
    uint32_t cluster_size;
    uint64_t disk;
    uint64_t len;             /* bytes per write */
    bool fresh;               /* into unallocated clusters (discarded first) */
} Case;

static const Case cases[] = {
    { "rewrite 4k, 64k clusters", 64 * KiB, 1 * GiB, 4 * KiB, false },
    { "rewrite 1M, 64k clusters", 64 * KiB, 1 * GiB, 1 * MiB, false },
    { "fresh 1M, 64k clusters", 64 * KiB, 1 * GiB, 1 * MiB, true },
    { "rewrite 4k, 512 B clusters", 512, 64 * MiB, 4 * KiB, false },
    { "rewrite 1M, 512 B clusters", 512, 64 * MiB, 1 * MiB, false },
    { "fresh 1M, 512 B clusters", 512, 64 * MiB, 1 * MiB, true },
};

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ns per write of 'n' writes of c->len at random aligned offsets. */
static double run_writes(BlockNode *bs, const Case *c, uint8_t *buf, int n)
{
    uint64_t slots = c->disk / c->len;
    gint64 t0;
    double total = 0;

    for (int i = 0; i < n; i++) {
        uint64_t off = next_rand() % slots * c->len;
        if (c->fresh) {
            g_assert_true(bdrv_discard(bs, off, c->len, NULL));
        }
        t0 = g_get_monotonic_time();
        g_assert_true(bdrv_pwrite(bs, off, buf, c->len, NULL));
        total += (double)(g_get_monotonic_time() - t0);
    }
    return total * 1000.0 / n;
}

static void run_case(const char *dir, const Case *c)
{
    g_autofree char *path = g_build_filename(dir, "overlap.qcow2", NULL);
    g_autofree uint8_t *buf = g_malloc(MAX(c->len, 1 * MiB));
    BlockCreateOpts o = { .cluster_size = c->cluster_size };
    int n = c->len >= MiB ? 200 : 5000;
    double with = 1e30, without = 1e30;

    memset(buf, 0x5a, MAX(c->len, 1 * MiB));
    g_assert_true(bdrv_create("qcow2", path, c->disk, &o, NULL));
    BlockNode *bs = bdrv_open(path, "qcow2", BDRV_O_RDWR | BDRV_O_UNMAP, NULL);
    g_assert_nonnull(bs);
    for (uint64_t off = 0; off < c->disk; off += MiB) {
        g_assert_true(bdrv_pwrite(bs, off, buf, MiB, NULL));
    }
    BDRVQcow2State *s = bs->opaque;
    guint entries = g_hash_table_size(s->meta);
    double lookup = 1e30;
    uint64_t clusters = c->disk / c->cluster_size, hits = 0;
    for (int round = 0; round < 5; round++) {
        gint64 t0 = g_get_monotonic_time();
        for (int i = 0; i < 1000000; i++) {
            uint64_t off = next_rand() % clusters * c->cluster_size;
            hits += qcow2_meta_kinds(bs, off, c->cluster_size) != 0;
        }
        lookup = MIN(lookup, (g_get_monotonic_time() - t0) / 1000.0);
    }
    for (int round = 0; round < 5; round++) {
        with = MIN(with, run_writes(bs, c, buf, n));
        GHashTable *map = g_steal_pointer(&s->meta);
        without = MIN(without, run_writes(bs, c, buf, n));
        s->meta = map;
    }
    /* The map stayed as it was while it was set aside: rebuild to be sure
     * the node's state is consistent before closing. */
    g_assert_true(qcow2_meta_rebuild(bs, NULL));
    bdrv_close(bs);
    unlink(path);
    printf("{\"case\": \"%s\", \"map_entries\": %u, \"ns_with\": %.0f, "
           "\"ns_without\": %.0f, \"overhead_pct\": %.1f, "
           "\"ns_per_lookup\": %.1f, \"hits\": %" PRIu64 "}\n", c->name,
           entries, with, without, (with - without) * 100.0 / without,
           lookup, hits);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        run_case(argv[1], &cases[i]);
    }
    return 0;
}
