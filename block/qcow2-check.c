/*
 * qcow2 consistency check and repair: recounts every reference from the
 * metadata (header, active and snapshot L1/L2 tables, snapshot table,
 * refcount table and blocks, bitmaps) into an in-memory array, compares it
 * with the stored refcounts and with the active tables' COPIED flags, and
 * optionally fixes what differs. Findings are printed like qemu-img's.
 */
#include <errno.h>
#include <stdio.h>

#include "block/qcow2.h"
#include "block/block-int.h"

/* Adds n references to every cluster in [offset, offset+size). */
static void ref_range_n(BlockNode *bs, Qcow2CheckRefs *refs, uint64_t offset,
                        uint64_t size, uint32_t n)
{
    BDRVQcow2State *s = bs->opaque;
    if (!size) {
        return;
    }
    uint64_t first = offset >> s->cluster_bits;
    uint64_t last = (offset + size - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        if (c >= refs->nb_clusters) {
            fprintf(stderr, "ERROR: cluster %" PRIu64 " (offset %#" PRIx64
                    ") is outside the image file\n", c, c << s->cluster_bits);
            refs->res->corruptions++;
            return;
        }
        refs->counts[c] = (uint32_t)MIN((uint64_t)refs->counts[c] + n,
                                        UINT32_MAX);
    }
}

void qcow2_check_ref_range(BlockNode *bs, Qcow2CheckRefs *refs,
                           uint64_t offset, uint64_t size)
{
    ref_range_n(bs, refs, offset, size, 1);
}

static bool check_aligned(BDRVQcow2State *s, Qcow2CheckRefs *refs,
                          uint64_t off, const char *what)
{
    if (qcow2_offset_into_cluster(s, off)) {
        fprintf(stderr, "ERROR: %s offset %#" PRIx64 " is not cluster "
                "aligned\n", what, off);
        refs->res->corruptions++;
        return false;
    }
    return true;
}

/* A compressed entry holds one reference on each cluster its sectors touch;
 * it never has COPIED set (refcounts of shared sectors may exceed one). */
static void check_compressed(BlockNode *bs, Qcow2CheckRefs *refs, uint64_t e,
                             bool active, uint32_t n)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start, len;
    if (e & QCOW2_OFLAG_COPIED) {
        fprintf(stderr, "ERROR: compressed cluster (L2 entry %#" PRIx64
                ") has the COPIED flag set\n", e);
        refs->res->corruptions++;
    }
    qcow2_compressed_ref_range(s, e, &start, &len);
    if (active) {             /* qemu-img counts each as fragmented too */
        refs->res->allocated_clusters++;
        refs->res->compressed_clusters++;
        refs->res->fragmented_clusters++;
    }
    ref_range_n(bs, refs, start, len, n);
}

static void check_l2(BlockNode *bs, Qcow2CheckRefs *refs, uint64_t l2_off,
                     bool active, uint32_t n)
{
    BDRVQcow2State *s = bs->opaque;
    GError *err = NULL;
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, &err);
    if (!l2) {
        fprintf(stderr, "ERROR: cannot read L2 table at %#" PRIx64 ": %s\n",
                l2_off, err->message);
        g_error_free(err);
        refs->res->check_errors++;
        return;
    }
    uint64_t next_contiguous = 0;   /* fragmentation: per table, as QEMU */
    for (uint32_t j = 0; j < s->l2_size; j++) {
        uint64_t e = GUINT64_FROM_BE(l2[j]);
        uint64_t data = e & QCOW2_L2E_OFFSET_MASK;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            check_compressed(bs, refs, e, active, n);
            continue;
        }
        if ((e & QCOW2_OFLAG_ZERO) && s->qcow_version < 3) {
            fprintf(stderr, "ERROR: zero flag in a version 2 image\n");
            refs->res->corruptions++;
        }
        if (!data || !check_aligned(s, refs, data, "data cluster")) {
            continue;
        }
        if (active) {          /* incl. zero clusters with a host cluster */
            refs->res->allocated_clusters++;
            if (next_contiguous && data != next_contiguous) {
                refs->res->fragmented_clusters++;
            }
            next_contiguous = data + s->cluster_size;
        }
        ref_range_n(bs, refs, data, s->cluster_size, n);
    }
    qcow2_cache_put(s->l2_table_cache, l2);
}

/*
 * Each L2 table is walked once, its data counted once per L1 entry that
 * points at it: a hostile L1 table pointing at one L2 table a million times
 * costs one walk, not a million.
 */
static void check_l1(BlockNode *bs, Qcow2CheckRefs *refs, const uint64_t *l1,
                     uint32_t l1_size, bool active)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash,
                                                       g_int64_equal, g_free,
                                                       NULL);
    g_autoptr(GArray) order = g_array_new(false, false, sizeof(uint64_t));
    g_autoptr(GArray) mult = g_array_new(false, true, sizeof(uint32_t));

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2_off || !check_aligned(s, refs, l2_off, "L2 table")) {
            continue;
        }
        qcow2_check_ref_range(bs, refs, l2_off, s->cluster_size);
        gpointer idx;
        if (g_hash_table_lookup_extended(seen, &l2_off, NULL, &idx)) {
            g_array_index(mult, uint32_t, GPOINTER_TO_UINT(idx))++;
            continue;
        }
        uint32_t one = 1;
        g_array_append_val(order, l2_off);
        g_array_append_val(mult, one);
        g_hash_table_insert(seen, g_memdup2(&l2_off, sizeof(l2_off)),
                            GUINT_TO_POINTER(order->len - 1));
    }
    for (guint i = 0; i < order->len; i++) {
        uint64_t l2_off = g_array_index(order, uint64_t, i);
        if (l2_off >> s->cluster_bits < refs->nb_clusters) {
            check_l2(bs, refs, l2_off, active, g_array_index(mult, uint32_t, i));
        }
    }
}

static void check_snapshot(BlockNode *bs, Qcow2CheckRefs *refs,
                           const Qcow2Snapshot *sn)
{
    GError *err = NULL;
    g_autofree uint64_t *l1 = g_new(uint64_t, MAX(sn->l1_size, 1));
    qcow2_check_ref_range(bs, refs, sn->l1_table_offset,
                          (uint64_t)sn->l1_size * 8);
    if (!qcow2_file_pread(bs, sn->l1_table_offset, l1,
                          (size_t)sn->l1_size * 8, &err)) {
        fprintf(stderr, "ERROR: snapshot '%s': %s\n", sn->id_str,
                err->message);
        g_error_free(err);
        refs->res->check_errors++;
        return;
    }
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        l1[i] = GUINT64_FROM_BE(l1[i]);
    }
    check_l1(bs, refs, l1, sn->l1_size, false);
}

static void collect_refs(BlockNode *bs, Qcow2CheckRefs *refs)
{
    BDRVQcow2State *s = bs->opaque;
    qcow2_check_ref_range(bs, refs, 0, s->cluster_size);
    qcow2_check_ref_range(bs, refs, s->l1_table_offset,
                          (uint64_t)s->l1_size * 8);
    check_l1(bs, refs, s->l1_table, s->l1_size, true);
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        check_snapshot(bs, refs, &s->snapshots[i]);
    }
    qcow2_check_ref_range(bs, refs, s->snapshots_offset, s->snapshots_size);
    qcow2_check_ref_range(bs, refs, s->refcount_table_offset,
                          (uint64_t)s->refcount_table_size * 8);
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t rb = s->refcount_table[i];
        if (rb && check_aligned(s, refs, rb, "refcount block")) {
            qcow2_check_ref_range(bs, refs, rb, s->cluster_size);
        }
    }
    qcow2_bitmaps_check(bs, refs);
}

/* Compares stored and computed refcounts of one cluster; fixes if asked. */
static void compare_cluster(BlockNode *bs, Qcow2CheckRefs *refs, uint64_t c,
                            BlockCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    BlockCheckResult *res = refs->res;
    uint64_t stored, computed = c < refs->nb_clusters ? refs->counts[c] : 0;
    GError *err = NULL;

    if (!qcow2_get_refcount(bs, c, &stored, &err)) {
        fprintf(stderr, "ERROR: cannot read refcount of cluster %" PRIu64
                ": %s\n", c, err->message);
        g_error_free(err);
        res->check_errors++;
        return;
    }
    if (stored == computed) {
        return;
    }
    bool leak = stored > computed;
    bool fixit = leak ? (fix & BDRV_FIX_LEAKS) : (fix & BDRV_FIX_ERRORS);
    fprintf(stderr, "%s cluster %" PRIu64 " refcount=%" PRIu64
            " reference=%" PRIu64 "\n",
            fixit ? "Repairing" : leak ? "Leaked" : "ERROR", c, stored,
            computed);
    if (fixit && computed <= s->refcount_max &&
        qcow2_update_refcount(bs, c << s->cluster_bits, 1,
                              (int64_t)computed - (int64_t)stored, &err)) {
        leak ? res->leaks_fixed++ : res->corruptions_fixed++;
        return;
    }
    if (err) {
        fprintf(stderr, "ERROR: could not repair: %s\n", err->message);
        g_clear_error(&err);
    }
    leak ? res->leaks++ : res->corruptions++;
}

static void compare_all(BlockNode *bs, Qcow2CheckRefs *refs,
                        BlockCheckMode fix)
{
    for (uint64_t c = 0; c < refs->nb_clusters; c++) {
        compare_cluster(bs, refs, c, fix);
    }
    /* Like QEMU, refcounts of clusters past the end of the file are not
     * looked at: nothing can reference them. */
}

/* Counts active-table entries whose COPIED flag disagrees with refcount 1. */
static int64_t check_copied(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash,
                                                       g_int64_equal, g_free,
                                                       NULL);
    int64_t bad = 0;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2_off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK, rc;
        if (!l2_off || qcow2_offset_into_cluster(s, l2_off) ||
            !qcow2_get_refcount(bs, l2_off >> s->cluster_bits, &rc, NULL)) {
            continue;
        }
        bad += (rc == 1) != !!(s->l1_table[i] & QCOW2_OFLAG_COPIED);
        if (!g_hash_table_add(seen, g_memdup2(&l2_off, sizeof(l2_off)))) {
            continue;           /* its entries were looked at already */
        }
        uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, NULL);
        if (!l2) {
            continue;
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            uint64_t e = GUINT64_FROM_BE(l2[j]);
            uint64_t data = e & QCOW2_L2E_OFFSET_MASK;
            if (data && !(e & QCOW2_OFLAG_COMPRESSED) &&
                qcow2_get_refcount(bs, data >> s->cluster_bits, &rc, NULL)) {
                bad += (rc == 1) != !!(e & QCOW2_OFLAG_COPIED);
            }
        }
        qcow2_cache_put(s->l2_table_cache, l2);
    }
    return bad;
}

/* 1 GiB of counts: files of 128 GiB with 512-byte clusters, 16 TiB with
 * 64 KiB ones. */
#define QCOW2_CHECK_MAX_CLUSTERS (1ULL << 28)

bool qcow2_check(BlockNode *bs, BlockCheckMode fix, BlockCheckResult *res,
                 GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (!bs->read_only && !qcow2_flush_caches(bs, errp)) {
        return false;
    }
    Qcow2CheckRefs refs = {
        .nb_clusters = qcow2_size_to_clusters(s, qcow2_file_length(bs)),
        .res = res,
    };
    /* One count per cluster of the file, which a hostile image can make
     * petabytes long (sparse): fail as QEMU does when it cannot have them. */
    if (refs.nb_clusters > QCOW2_CHECK_MAX_CLUSTERS ||
        !(refs.counts = g_try_new0(uint32_t, MAX(refs.nb_clusters, 1)))) {
        res->check_errors++;
        tern_set_error_errno(errp, ENOMEM, "Check failed");
        return false;
    }
    collect_refs(bs, &refs);
    compare_all(bs, &refs, fix);

    int64_t bad_copied = check_copied(bs);
    if (bad_copied) {
        fprintf(stderr, "%s %" PRId64 " OFLAG_COPIED flags\n",
                (fix & BDRV_FIX_ERRORS) ? "Repairing" : "ERROR", bad_copied);
        if ((fix & BDRV_FIX_ERRORS) && qcow2_fix_copied_flags(bs, NULL)) {
            res->corruptions_fixed += bad_copied;
        } else {
            res->corruptions += bad_copied;
        }
    }
    for (uint64_t c = refs.nb_clusters; c > 0; c--) {
        if (refs.counts[c - 1]) {
            res->image_end_offset = (int64_t)(c << s->cluster_bits);
            break;
        }
    }
    res->total_clusters = (int64_t)qcow2_size_to_clusters(s, bs->size);
    g_free(refs.counts);
    if (fix && !qcow2_flush_caches(bs, errp)) {
        return false;
    }
    return true;
}

/* ---- Who else uses a set of clusters (overlap search for bitmaps) ---- */

static bool user_in_range(BDRVQcow2State *s, GHashTable *clusters,
                          uint64_t off, uint64_t len, const char *what,
                          Qcow2ClusterUser *user)
{
    if (!len) {
        return false;
    }
    for (uint64_t c = off >> s->cluster_bits;
         c <= (off + len - 1) >> s->cluster_bits; c++) {
        gpointer v = g_hash_table_lookup(clusters, GSIZE_TO_POINTER(c));
        if (v) {
            user->found = true;
            user->offset = c << s->cluster_bits;
            user->what = what;
            user->value = v;
            return true;
        }
    }
    return false;
}

/* Tables that cannot be read are skipped: reads report those. */
static void users_in_l2(BlockNode *bs, uint64_t l2_off, GHashTable *clusters,
                        Qcow2ClusterUser *user)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, NULL);
    if (!l2) {
        return;
    }
    for (uint32_t j = 0; j < s->l2_size; j++) {
        uint64_t e = GUINT64_FROM_BE(l2[j]), off = e & QCOW2_L2E_OFFSET_MASK;
        uint64_t len = off ? s->cluster_size : 0;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            qcow2_compressed_ref_range(s, e, &off, &len);
        }
        if (user_in_range(s, clusters, off, len, "guest data", user)) {
            break;
        }
    }
    qcow2_cache_put(s->l2_table_cache, l2);
}

static void users_in_l1(BlockNode *bs, const uint64_t *l1, uint32_t l1_size,
                        GHashTable *seen, GHashTable *clusters,
                        Qcow2ClusterUser *user)
{
    BDRVQcow2State *s = bs->opaque;
    for (uint32_t i = 0; i < l1_size && !user->found; i++) {
        uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2_off || qcow2_offset_into_cluster(s, l2_off) ||
            user_in_range(s, clusters, l2_off, s->cluster_size,
                          "an L2 table", user) ||
            !g_hash_table_add(seen, GSIZE_TO_POINTER(l2_off))) {
            continue;
        }
        users_in_l2(bs, l2_off, clusters, user);
    }
}

void qcow2_find_cluster_user(BlockNode *bs, GHashTable *clusters,
                             Qcow2ClusterUser *user)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash,
                                                  g_direct_equal);
    *user = (Qcow2ClusterUser) { 0 };
    for (uint32_t i = 0; i < s->refcount_table_size && !user->found; i++) {
        uint64_t rb = s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK;
        user_in_range(s, clusters, rb, rb ? s->cluster_size : 0,
                      "a refcount block", user);
    }
    users_in_l1(bs, s->l1_table, s->l1_size, seen, clusters, user);
    for (uint32_t i = 0; i < s->nb_snapshots && !user->found; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        g_autofree uint64_t *l1 = g_new(uint64_t, MAX(sn->l1_size, 1));
        if (!qcow2_file_pread(bs, sn->l1_table_offset, l1,
                              (size_t)sn->l1_size * 8, NULL)) {
            continue;
        }
        for (uint32_t j = 0; j < sn->l1_size; j++) {
            l1[j] = GUINT64_FROM_BE(l1[j]);
        }
        users_in_l1(bs, l1, sn->l1_size, seen, clusters, user);
    }
}
