/*
 * qcow2 refcounts: the refcount table (in memory, host-endian) points at
 * refcount blocks (through the refcount-block cache, big-endian). This file
 * reads and changes refcounts, allocates clusters (growing refcount blocks and
 * the table itself when needed), and checks/repairs an image by recounting
 * every reference from the metadata.
 *
 * Allocation order keeps the image leak-only at a crash or power cut: a new
 * refcount block is durable before the table entry that points at it; a new
 * table and its blocks are durable before the header switches to them; a
 * raised count is durable before an L2 entry uses the cluster, a lowered
 * one only after the entries that let it go (cache dependencies, set in
 * qcow2_update_refcount). Clusters the write path lets go wait in a queue
 * (qcow2_free_clusters_later) so that one dependency sync serves a batch.
 */
#include <stdlib.h>

#include "block/qcow2.h"
#include "block/block-int.h"

static uint64_t refblock_get(BDRVQcow2State *s, const uint8_t *blk,
                             uint64_t i)
{
    switch (s->refcount_order) {
    case 4:
        return (uint64_t)blk[2 * i] << 8 | blk[2 * i + 1];
    case 5:
        return (uint64_t)blk[4 * i] << 24 | (uint64_t)blk[4 * i + 1] << 16 |
               (uint64_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
    case 6: {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) {
            v = v << 8 | blk[8 * i + b];
        }
        return v;
    }
    case 3:
        return blk[i];
    default: {   /* 1, 2 or 4 bits, lowest bits first within a byte */
        unsigned bits = 1u << s->refcount_order;
        uint64_t bit = i * bits;
        return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    }
}

/* Only 16-bit refcounts are ever written (open refuses others read-write). */
static void refblock_set(uint8_t *blk, uint64_t i, uint64_t v)
{
    blk[2 * i] = (uint8_t)(v >> 8);
    blk[2 * i + 1] = (uint8_t)v;
}

static uint64_t refblock_of(BDRVQcow2State *s, uint64_t cluster_index)
{
    uint64_t rt = cluster_index >> s->refcount_block_bits;
    return rt < s->refcount_table_size ? s->refcount_table[rt] : 0;
}

bool qcow2_refcount_init(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    size_t bytes = (size_t)s->refcount_table_size * 8;

    s->refcount_table = g_malloc(bytes);
    if (!qcow2_file_pread(bs, s->refcount_table_offset, s->refcount_table,
                          bytes, errp)) {
        return false;
    }
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t e = GUINT64_FROM_BE(s->refcount_table[i]);
        if (e & ~QCOW2_REFT_OFFSET_MASK) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "qcow2: refcount table entry %u has reserved bits "
                        "set (%#" PRIx64 ")", i, e);
            return false;
        }
        s->refcount_table[i] = e;
    }
    return true;
}

void qcow2_refcount_close(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;
    g_clear_pointer(&s->refcount_table, g_free);
}

bool qcow2_get_refcount(BlockNode *bs, uint64_t cluster_index,
                        uint64_t *refcount, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t blk_off = refblock_of(s, cluster_index);

    *refcount = 0;
    if (!blk_off) {
        return true;
    }
    uint8_t *blk = qcow2_cache_get(s->refcount_block_cache, blk_off, errp);
    if (!blk) {
        return false;
    }
    *refcount = refblock_get(s, blk, cluster_index &
                             (s->refcount_block_size - 1));
    qcow2_cache_put(s->refcount_block_cache, blk);
    return true;
}

/* Adds addend to one cluster's refcount; its refcount block must exist. */
static bool update_cluster_refcount(BlockNode *bs, uint64_t idx,
                                    int64_t addend, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t blk_off = refblock_of(s, idx);

    if (!blk_off) {
        qcow2_signal_corruption(bs, errp, "No refcount block for cluster %#"
                                PRIx64, idx << s->cluster_bits);
        return false;
    }
    uint8_t *blk = qcow2_cache_get(s->refcount_block_cache, blk_off, errp);
    if (!blk) {
        return false;
    }
    uint64_t i = idx & (s->refcount_block_size - 1);
    uint64_t old = refblock_get(s, blk, i);
    if ((addend < 0 && old < (uint64_t)-addend) ||
        (addend > 0 && old + (uint64_t)addend > s->refcount_max)) {
        qcow2_cache_put(s->refcount_block_cache, blk);
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "qcow2: refcount %s for cluster %#" PRIx64
                    " (refcount %" PRIu64 ", change %" PRId64 ")",
                    addend < 0 ? "underflow" : "overflow",
                    idx << s->cluster_bits, old, addend);
        return false;
    }
    uint64_t v = old + (uint64_t)addend;
    refblock_set(blk, i, v);
    qcow2_cache_mark_dirty(s->refcount_block_cache, blk);
    qcow2_cache_put(s->refcount_block_cache, blk);
    if (v == 0) {
        uint64_t off = idx << s->cluster_bits;
        qcow2_cache_discard(s->l2_table_cache, off);
        qcow2_cache_discard(s->refcount_block_cache, off);
        s->free_cluster_index = MIN(s->free_cluster_index, idx);
    }
    return true;
}

bool qcow2_update_refcount(BlockNode *bs, uint64_t offset, uint64_t length,
                           int64_t addend, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (!length) {
        return true;
    }
    /* A raised count reaches the disk before the L2 entries that use the
     * clusters; a lowered one after the L2 entries that let them go (and,
     * by the sync that comes with it, after pointers written directly: an
     * L1 entry, ...). */
    if (addend > 0 ? !qcow2_cache_set_dependency(s->l2_table_cache,
                                                 s->refcount_block_cache,
                                                 errp)
                   : !qcow2_cache_set_dependency(s->refcount_block_cache,
                                                 s->l2_table_cache, errp)) {
        return false;
    }
    uint64_t first = offset >> s->cluster_bits;
    uint64_t last = (offset + length - 1) >> s->cluster_bits;
    for (uint64_t idx = first; idx <= last; idx++) {
        if (!update_cluster_refcount(bs, idx, addend, errp)) {
            return false;
        }
    }
    return true;
}

/* Durable when it returns: a count in the block may be relied on at once
 * (a durable refcount write does not sync the file). */
static bool write_reftable_entry(BlockNode *bs, uint64_t rt, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t be = GUINT64_TO_BE(s->refcount_table[rt]);
    return qcow2_file_pwrite_durable(bs, QCOW2_OL_REFCOUNT_TABLE,
                                     s->refcount_table_offset + rt * 8, &be,
                                     8, errp);
}

/*
 * Grows the refcount table to at least min_entries. The new table and the
 * refcount blocks describing it go at the end of the file; the header
 * switches over only once they are on disk, then the old table is freed.
 */
static bool grow_refcount_table(BlockNode *bs, uint64_t min_entries,
                                GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t entries = MAX(min_entries, (uint64_t)s->refcount_table_size * 2);
    entries = ALIGN_UP(entries, per_cluster);
    if (entries > QCOW2_MAX_REFTABLE_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "qcow2: image too large, refcount table would need %"
                    PRIu64 " entries", entries);
        return false;
    }
    if (!qcow2_flush_caches(bs, errp)) {
        return false;
    }
    uint64_t tbl_clusters = entries / per_cluster;
    uint64_t start = qcow2_size_to_clusters(s, qcow2_file_length(bs));
    uint64_t nb_rb = 0, prev;
    do {                                  /* blocks needed to cover it all */
        prev = nb_rb;
        nb_rb = 0;
        uint64_t end = start + prev + tbl_clusters;
        for (uint64_t rt = start >> s->refcount_block_bits;
             rt <= (end - 1) >> s->refcount_block_bits; rt++) {
            nb_rb += rt >= s->refcount_table_size || !s->refcount_table[rt];
        }
    } while (nb_rb != prev);
    uint64_t end = start + nb_rb + tbl_clusters;

    g_autofree uint64_t *table = g_new0(uint64_t, entries);
    memcpy(table, s->refcount_table, (size_t)s->refcount_table_size * 8);
    g_autofree uint8_t *blk = g_malloc(s->cluster_size);
    uint64_t next_rb = start;
    for (uint64_t rt = start >> s->refcount_block_bits;
         rt <= (end - 1) >> s->refcount_block_bits; rt++) {
        uint64_t lo = MAX(start, rt << s->refcount_block_bits);
        uint64_t hi = MIN(end, (rt + 1) << s->refcount_block_bits);
        if (rt < s->refcount_table_size && s->refcount_table[rt]) {
            for (uint64_t c = lo; c < hi; c++) {
                if (!update_cluster_refcount(bs, c, 1, errp)) {
                    return false;
                }
            }
            continue;
        }
        memset(blk, 0, s->cluster_size);
        for (uint64_t c = lo; c < hi; c++) {
            refblock_set(blk, c & (s->refcount_block_size - 1), 1);
        }
        table[rt] = next_rb << s->cluster_bits;
        if (!qcow2_file_pwrite(bs, QCOW2_OL_REFCOUNT_BLOCK, table[rt], blk,
                               s->cluster_size, errp)) {
            return false;
        }
        qcow2_meta_add(bs, QCOW2_OL_REFCOUNT_BLOCK, table[rt],
                       s->cluster_size);
        next_rb++;
    }
    uint64_t tbl_off = (start + nb_rb) << s->cluster_bits;
    g_autofree uint64_t *be = g_new(uint64_t, entries);
    for (uint64_t i = 0; i < entries; i++) {
        be[i] = GUINT64_TO_BE(table[i]);
    }
    if (!qcow2_file_pwrite(bs, QCOW2_OL_REFCOUNT_TABLE, tbl_off, be,
                           entries * 8, errp)) {
        return false;
    }
    struct TERN_PACKED { uint64_t off; uint32_t clusters; } hdr = {
        GUINT64_TO_BE(tbl_off), GUINT32_TO_BE((uint32_t)tbl_clusters),
    };
    /* The blocks, the table and the counts they hold are durable before
     * the header points at them, the header before the old table goes. */
    if (!qcow2_header_pwrite(bs, 48, &hdr, sizeof(hdr), errp)) {
        return false;
    }
    uint64_t old_off = s->refcount_table_offset;
    uint64_t old_bytes = (uint64_t)s->refcount_table_size * 8;
    qcow2_meta_remove(bs, QCOW2_OL_REFCOUNT_TABLE, old_off, old_bytes);
    qcow2_meta_add(bs, QCOW2_OL_REFCOUNT_TABLE, tbl_off, entries * 8);
    g_free(s->refcount_table);
    s->refcount_table = g_steal_pointer(&table);
    s->refcount_table_offset = tbl_off;
    s->refcount_table_size = (uint32_t)entries;
    if (!qcow2_update_refcount(bs, old_off, old_bytes, -1, errp)) {
        return false;
    }
    return true;
}

/* Finds n free clusters in a row from the allocation hint. */
static bool find_free_run(BlockNode *bs, uint64_t n, uint64_t *start,
                          GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t limit = QCOW2_L2E_OFFSET_MASK >> s->cluster_bits;
    uint64_t i = s->free_cluster_index, run = 0;

    while (run < n) {
        uint64_t rc;
        if (i + 1 >= limit) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                        "qcow2: no free cluster left in the image");
            return false;
        }
        if (!qcow2_get_refcount(bs, i, &rc, errp)) {
            return false;
        }
        if (rc) {
            if (run == 0 && i == s->free_cluster_index) {
                s->free_cluster_index = i + 1;
            }
            run = 0;
        } else {
            run++;
        }
        i++;
    }
    *start = i - n;
    return true;
}

/* Refcount-table indexes in [first, end) clusters that have no block yet;
 * *beyond is set if one lies past the end of the table. */
static uint64_t count_missing(BDRVQcow2State *s, uint64_t first, uint64_t end,
                              uint64_t *beyond)
{
    uint64_t n = 0;
    *beyond = 0;
    for (uint64_t rt = first >> s->refcount_block_bits;
         rt <= (end - 1) >> s->refcount_block_bits; rt++) {
        if (rt >= s->refcount_table_size) {
            *beyond = MAX(*beyond, rt + 1);
        }
        n += rt >= s->refcount_table_size || !s->refcount_table[rt];
    }
    return n;
}

/*
 * Creates the k missing refcount blocks for the clusters from 'start' on,
 * placing them at clusters start..start+k-1 (they describe themselves or
 * are counted in an existing block). Each block is durable before the
 * table entry pointing at it.
 */
static bool create_refblocks(BlockNode *bs, uint64_t start, uint64_t k,
                             uint64_t span_end, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *blk = g_malloc(s->cluster_size);
    g_autofree uint64_t *made = g_new0(uint64_t, k);
    uint64_t next = start, nmade = 0;

    for (uint64_t rt = start >> s->refcount_block_bits;
         rt <= (span_end - 1) >> s->refcount_block_bits; rt++) {
        if (!s->refcount_table[rt]) {
            made[nmade++] = rt;
            s->refcount_table[rt] = (next++) << s->cluster_bits;
        }
    }
    g_assert(nmade == k);
    /* Blocks in ranges that already had one are counted there. */
    for (uint64_t c = start; c < start + k; c++) {
        uint64_t rt = c >> s->refcount_block_bits;
        bool is_new = false;
        for (uint64_t i = 0; i < k; i++) {
            is_new |= made[i] == rt;
        }
        if (!is_new && !update_cluster_refcount(bs, c, 1, errp)) {
            return false;
        }
    }
    for (uint64_t i = 0; i < k; i++) {
        uint64_t lo = made[i] << s->refcount_block_bits;
        uint64_t hi = lo + s->refcount_block_size;
        memset(blk, 0, s->cluster_size);
        for (uint64_t c = MAX(lo, start); c < MIN(hi, start + k); c++) {
            refblock_set(blk, c - lo, 1);
        }
        uint64_t off = s->refcount_table[made[i]];
        qcow2_cache_discard(s->l2_table_cache, off);
        qcow2_cache_discard(s->refcount_block_cache, off);
        if (!qcow2_file_pwrite_durable(bs, QCOW2_OL_REFCOUNT_BLOCK, off, blk,
                                       s->cluster_size, errp)) {
            return false;
        }
        qcow2_meta_add(bs, QCOW2_OL_REFCOUNT_BLOCK, off, s->cluster_size);
    }
    /* The blocks and the counts of them are durable before the table
     * points at them (without pushing the guest's writes out too). */
    if (!qcow2_cache_flush_durable(s->refcount_block_cache, errp)) {
        return false;
    }
    for (uint64_t i = 0; i < k; i++) {
        if (!write_reftable_entry(bs, made[i], errp)) {
            return false;
        }
    }
    return true;
}

int64_t qcow2_alloc_clusters(BlockNode *bs, uint64_t size, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = qcow2_size_to_clusters(s, size);
    uint64_t start, k = 0, beyond;

    for (;;) {
        if (!find_free_run(bs, n + k, &start, errp)) {
            return -1;
        }
        uint64_t need = count_missing(s, start, start + n + k, &beyond);
        if (beyond) {
            if (!grow_refcount_table(bs, beyond, errp)) {
                return -1;
            }
            k = 0;
            continue;
        }
        if (need > k) {        /* blocks go in front of the run: look again */
            k = need;
            continue;
        }
        if (need && !create_refblocks(bs, start, need, start + n + k, errp)) {
            return -1;
        }
        start += need;
        break;
    }
    if (!qcow2_update_refcount(bs, start << s->cluster_bits,
                               n << s->cluster_bits, 1, errp)) {
        return -1;
    }
    return (int64_t)(start << s->cluster_bits);
}

void qcow2_free_clusters(BlockNode *bs, uint64_t offset, uint64_t size)
{
    GError *err = NULL;

    /* (qcow2_update_refcount orders the drop after the pointers' removal) */
    if (!qcow2_update_refcount(bs, offset, size, -1, &err)) {
        tern_warn("qcow2: leaking clusters at %#" PRIx64 ": %s", offset,
                  err->message);
        g_error_free(err);
    }
}

/* Past this many queued ranges the queue is settled at once. */
#define MAX_PENDING_FREES 4096

void qcow2_free_clusters_later(BlockNode *bs, uint64_t offset, uint64_t size)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2FreeRange r = { offset, size };

    g_array_append_val(s->pending_frees, r);
    if (s->pending_frees->len >= MAX_PENDING_FREES) {
        qcow2_settle_frees(bs);
    }
}

void qcow2_settle_frees(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;

    for (guint i = 0; s->pending_frees && i < s->pending_frees->len; i++) {
        Qcow2FreeRange *r = &g_array_index(s->pending_frees, Qcow2FreeRange,
                                           i);
        qcow2_free_clusters(bs, r->offset, r->len);
    }
    if (s->pending_frees) {
        g_array_set_size(s->pending_frees, 0);
    }
}

/* Reads an L1 table from disk into host-endian entries. */
static uint64_t *read_l1(BlockNode *bs, uint64_t off, uint32_t size,
                         GError **errp)
{
    g_autofree uint64_t *l1 = g_new(uint64_t, MAX(size, 1));
    if (!qcow2_file_pread(bs, off, l1, (size_t)size * 8, errp)) {
        return NULL;
    }
    for (uint32_t i = 0; i < size; i++) {
        l1[i] = GUINT64_FROM_BE(l1[i]);
    }
    return g_steal_pointer(&l1);
}

static bool update_l2_refcounts(BlockNode *bs, uint64_t l2_off, int64_t addend,
                                GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, errp);
    if (!l2) {
        return false;
    }
    g_autofree uint64_t *copy = g_malloc(s->cluster_size);
    memcpy(copy, l2, s->cluster_size);
    qcow2_cache_put(s->l2_table_cache, l2);
    for (uint32_t j = 0; j < s->l2_size; j++) {
        uint64_t e = GUINT64_FROM_BE(copy[j]);
        uint64_t data = e & QCOW2_L2E_OFFSET_MASK, len = 1;
        if (e & QCOW2_OFLAG_COMPRESSED) {  /* one ref per cluster it spans */
            qcow2_compressed_ref_range(s, e, &data, &len);
        }
        if (data && !qcow2_update_refcount(bs, data, len, addend, errp)) {
            return false;
        }
    }
    return qcow2_update_refcount(bs, l2_off, 1, addend, errp);
}

bool qcow2_update_l1_refcounts(BlockNode *bs, uint64_t l1_offset,
                               uint32_t l1_size, int64_t addend,
                               GError **errp)
{
    g_autofree uint64_t *l1 = read_l1(bs, l1_offset, l1_size, errp);
    return l1 && qcow2_update_l1_array_refcounts(bs, l1, l1_size, addend,
                                                 errp);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The L2 offsets of an L1 table, sorted, zeroes dropped; *n gets the count. */
static uint64_t *sorted_l2_offsets(const uint64_t *l1, uint32_t l1_size,
                                   uint32_t *n)
{
    uint64_t *offs = g_new(uint64_t, MAX(l1_size, 1));
    *n = 0;
    for (uint32_t i = 0; i < l1_size; i++) {
        if (l1[i] & QCOW2_L1E_OFFSET_MASK) {
            offs[(*n)++] = l1[i] & QCOW2_L1E_OFFSET_MASK;
        }
    }
    qsort(offs, *n, sizeof(*offs), cmp_u64);
    return offs;
}

bool qcow2_l1_has_duplicates(const uint64_t *l1, uint32_t l1_size)
{
    uint32_t n;
    g_autofree uint64_t *offs = sorted_l2_offsets(l1, l1_size, &n);
    for (uint32_t i = 1; i < n; i++) {
        if (offs[i] == offs[i - 1]) {
            return true;
        }
    }
    return false;
}

/* Each distinct L2 table is walked once, with the addend multiplied by the
 * number of L1 entries pointing at it (bounded work on hostile tables). */
bool qcow2_update_l1_array_refcounts(BlockNode *bs, const uint64_t *l1,
                                     uint32_t l1_size, int64_t addend,
                                     GError **errp)
{
    uint32_t n;
    g_autofree uint64_t *offs = sorted_l2_offsets(l1, l1_size, &n);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j < n && offs[j] == offs[i]) {
            j++;
        }
        if (!update_l2_refcounts(bs, offs[i], addend * (int64_t)(j - i),
                                 errp)) {
            return false;
        }
        i = j;
    }
    return true;
}

static bool fix_l2_copied(BlockNode *bs, uint64_t l2_off, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, errp);
    if (!l2) {
        return false;
    }
    bool ok = true;
    for (uint32_t j = 0; j < s->l2_size && ok; j++) {
        uint64_t e = GUINT64_FROM_BE(l2[j]);
        uint64_t data = e & QCOW2_L2E_OFFSET_MASK, rc;
        if (!data || (e & QCOW2_OFLAG_COMPRESSED)) {
            continue;
        }
        ok = qcow2_get_refcount(bs, data >> s->cluster_bits, &rc, errp);
        uint64_t want = rc == 1 ? (e | QCOW2_OFLAG_COPIED)
                                : (e & ~QCOW2_OFLAG_COPIED);
        /* COPIED set on disk only once the count of 1 is there too */
        if (ok && (want & ~e & QCOW2_OFLAG_COPIED)) {
            ok = qcow2_cache_set_dependency(s->l2_table_cache,
                                            s->refcount_block_cache, errp);
        }
        if (ok && want != e) {
            l2[j] = GUINT64_TO_BE(want);
            qcow2_cache_mark_dirty(s->l2_table_cache, l2);
        }
    }
    qcow2_cache_put(s->l2_table_cache, l2);
    return ok;
}

bool qcow2_fix_copied_flags(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    bool l1_changed = false;

    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2_off = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK, rc;
        if (!l2_off) {
            continue;
        }
        if (!qcow2_get_refcount(bs, l2_off >> s->cluster_bits, &rc, errp)) {
            return false;
        }
        uint64_t want = rc == 1 ? l2_off | QCOW2_OFLAG_COPIED : l2_off;
        if (want != s->l1_table[i]) {
            s->l1_table[i] = want;
            l1_changed = true;
        }
        /* Entries of a shared table are fixed in place too: refcounts
         * are global, so the right flags are the same for every sharer. */
        if (!fix_l2_copied(bs, l2_off, errp)) {
            return false;
        }
    }
    /* (the counts are durable before an L1 entry gains COPIED) */
    if (!(l1_changed ? qcow2_flush_all(bs, errp)
                     : qcow2_flush_caches(bs, errp))) {
        return false;
    }
    return !l1_changed || qcow2_write_l1(bs, errp);
}
