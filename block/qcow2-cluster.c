/*
 * qcow2 cluster mapping: guest offset -> L1 entry -> L2 table -> host
 * cluster. Reads follow the map; writes allocate clusters, and copy on write
 * when a cluster or an L2 table is shared with a snapshot (COPIED flag clear,
 * refcount > 1). Also discard/zeroing, the L1 table's growth and the guest
 * address space past the virtual disk that holds VM state.
 *
 * Order on allocation: refcount raised (cache), data written, L2 entry set in
 * the cache; the L2 cache then depends on the refcount cache, so the count
 * is durable before the entry (qcow2-cache.c), and on a sync where the
 * cluster holds copied data. A new or copied L2 table and its refcount are
 * durable before the L1 entry that points at it. Clusters an entry lets go
 * are freed in a batch later (qcow2_free_clusters_later).
 *
 * Compressed clusters (qcow2-compress.c) are read by inflating them; a write
 * into one copies its inflated contents into a fresh normal cluster and then
 * drops the compressed data's references, as QEMU does.
 */
#include "block/qcow2.h"
#include "block/block-int.h"

static uint32_t l1_index_of(BDRVQcow2State *s, uint64_t off)
{
    return (uint32_t)(off >> (s->cluster_bits + s->l2_bits));
}

static uint32_t l2_index_of(BDRVQcow2State *s, uint64_t off)
{
    return (uint32_t)((off >> s->cluster_bits) & (s->l2_size - 1));
}

/* Sub-vector of iov covering [off, off+len); out has room for iovcnt. */
static int iov_slice(const struct iovec *iov, int iovcnt, size_t off,
                     size_t len, struct iovec *out)
{
    int n = 0;
    for (int i = 0; i < iovcnt && len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t take = MIN(iov[i].iov_len - off, len);
        out[n].iov_base = (uint8_t *)iov[i].iov_base + off;
        out[n].iov_len = take;
        n++;
        len -= take;
        off = 0;
    }
    return n;
}

static void iov_memset(const struct iovec *iov, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) {
        memset(iov[i].iov_base, 0, iov[i].iov_len);
    }
}

static void buf_to_iov(const uint8_t *buf, const struct iovec *iov,
                       int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) {
        memcpy(iov[i].iov_base, buf, iov[i].iov_len);
        buf += iov[i].iov_len;
    }
}

static void iov_to_buf(const struct iovec *iov, int iovcnt, uint8_t *buf)
{
    for (int i = 0; i < iovcnt; i++) {
        memcpy(buf, iov[i].iov_base, iov[i].iov_len);
        buf += iov[i].iov_len;
    }
}

/* The L2 entry for a guest offset; 0 if no L2 table covers it. */
static bool get_l2_entry(BlockNode *bs, uint64_t off, uint64_t *entry,
                         GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t l1i = l1_index_of(s, off);

    *entry = 0;
    if (l1i >= s->l1_size) {
        return true;
    }
    uint64_t l2_off = s->l1_table[l1i] & QCOW2_L1E_OFFSET_MASK;
    if (!l2_off) {
        return true;
    }
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, errp);
    if (!l2) {
        return false;
    }
    *entry = GUINT64_FROM_BE(l2[l2_index_of(s, off)]);
    qcow2_cache_put(s->l2_table_cache, l2);
    return true;
}

/* Host cluster offset of a standard (not compressed) data entry, checked;
 * 0 if it reads as zeroes. */
static bool entry_host_offset(BlockNode *bs, uint64_t e, uint64_t *host,
                              GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    *host = 0;
    if ((e & QCOW2_OFLAG_ZERO) && s->qcow_version < 3) {
        qcow2_signal_corruption(bs, errp, "Zero cluster flag in a version 2 "
                                "image (L2 entry %#" PRIx64 ")", e);
        return false;
    }
    if (e & QCOW2_OFLAG_ZERO) {
        return true;
    }
    uint64_t off = e & QCOW2_L2E_OFFSET_MASK;
    if (off && (qcow2_offset_into_cluster(s, off) || off == 0)) {
        qcow2_signal_corruption(bs, errp, "Data cluster offset %#" PRIx64
                                " is not cluster aligned", off);
        return false;
    }
    *host = off;
    return true;
}

/* Reads 'len' bytes at iov offset 'done': zeroes if host is 0. */
static bool read_run(BlockNode *bs, uint64_t host, uint64_t len,
                     const struct iovec *iov, int iovcnt, size_t done,
                     struct iovec *part, GError **errp)
{
    int n = iov_slice(iov, iovcnt, done, len, part);
    if (!host) {
        iov_memset(part, n);
        return true;
    }
    return bdrv_file_preadv(bs->file, host, part, n, errp);
}

/* Inflates the compressed cluster of entry e and copies the 'len' bytes at
 * 'in' into the iov at offset 'done'. */
static bool read_compressed_part(BlockNode *bs, uint64_t e, uint64_t in,
                                 uint64_t len, const struct iovec *iov,
                                 int iovcnt, size_t done, struct iovec *part,
                                 GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (!qcow2_read_compressed(bs, e, s->cluster_buf, errp)) {
        return false;
    }
    int n = iov_slice(iov, iovcnt, done, len, part);
    buf_to_iov(s->cluster_buf + in, part, n);
    return true;
}

/* Clusters that are contiguous on the host (or all zero) are read as one
 * run, so a large sequential read is one preadv. */
bool qcow2_preadv(BlockNode *bs, uint64_t offset, uint64_t bytes,
                  const struct iovec *iov, int iovcnt, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree struct iovec *part = g_new(struct iovec, iovcnt);
    size_t done = 0;
    uint64_t run_host = 0, run_len = 0;

    while (bytes) {
        uint64_t in = qcow2_offset_into_cluster(s, offset);
        uint64_t chunk = MIN(bytes, s->cluster_size - in);
        uint64_t e, host;
        if (!get_l2_entry(bs, offset, &e, errp)) {
            return false;
        }
        if (e & QCOW2_OFLAG_COMPRESSED) {
            if (run_len && !read_run(bs, run_host, run_len, iov, iovcnt, done,
                                     part, errp)) {
                return false;
            }
            done += run_len;
            run_len = 0;
            if (!read_compressed_part(bs, e, in, chunk, iov, iovcnt, done,
                                      part, errp)) {
                return false;
            }
            done += chunk;
            offset += chunk;
            bytes -= chunk;
            continue;
        }
        if (!entry_host_offset(bs, e, &host, errp)) {
            return false;
        }
        if (host) {
            host += in;
        }
        bool joins = run_len && ((!host && !run_host) ||
                                 (host && run_host &&
                                  host == run_host + run_len));
        if (run_len && !joins) {
            if (!read_run(bs, run_host, run_len, iov, iovcnt, done, part,
                          errp)) {
                return false;
            }
            done += run_len;
            run_len = 0;
        }
        if (!run_len) {
            run_host = host;
        }
        run_len += chunk;
        offset += chunk;
        bytes -= chunk;
    }
    return !run_len ||
           read_run(bs, run_host, run_len, iov, iovcnt, done, part, errp);
}

/* Host data whose references a write or discard drops must not be
 * metadata (hostile images): the drop would free a live table. */
static bool check_data_range(BlockNode *bs, uint64_t host, uint64_t len,
                             GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t kinds = qcow2_meta_kinds(bs, host, len);
    if ((len && host < s->cluster_size) || kinds) {
        qcow2_signal_corruption(bs, errp, "Data cluster %#" PRIx64
                                " overlaps qcow2 metadata (%s)", host,
                                kinds ? qcow2_meta_kind_name(kinds)
                                      : "qcow2_header");
        return false;
    }
    return true;
}

/* The host range a data entry holds references on (to drop when the entry
 * is replaced), checked against metadata; len 0 if none. */
static bool entry_ref_range(BlockNode *bs, uint64_t e, uint64_t *start,
                            uint64_t *len, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (e & QCOW2_OFLAG_COMPRESSED) {
        qcow2_compressed_ref_range(s, e, start, len);
    } else {
        *start = e & QCOW2_L2E_OFFSET_MASK;
        *len = *start ? s->cluster_size : 0;
    }
    return check_data_range(bs, *start, *len, errp);
}

static bool write_l1_entry(BlockNode *bs, uint32_t i, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t be = GUINT64_TO_BE(s->l1_table[i]);
    return qcow2_file_pwrite(bs, QCOW2_OL_ACTIVE_L1,
                             s->l1_table_offset + (uint64_t)i * 8, &be, 8,
                             errp);
}

bool qcow2_write_l1(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *be = g_new(uint64_t, MAX(s->l1_size, 1));
    for (uint32_t i = 0; i < s->l1_size; i++) {
        be[i] = GUINT64_TO_BE(s->l1_table[i]);
    }
    return qcow2_file_pwrite(bs, QCOW2_OL_ACTIVE_L1, s->l1_table_offset, be,
                             (size_t)s->l1_size * 8, errp);
}

bool qcow2_grow_l1_table(BlockNode *bs, uint64_t min_size, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (min_size <= s->l1_size) {
        return true;
    }
    if (min_size > QCOW2_MAX_L1_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "qcow2: L1 table would need %" PRIu64 " entries (max %"
                    PRIu64 ")", min_size, (uint64_t)QCOW2_MAX_L1_SIZE);
        return false;
    }
    uint64_t new_size = MIN(MAX(min_size, (uint64_t)s->l1_size * 3 / 2),
                            QCOW2_MAX_L1_SIZE);
    int64_t new_off = qcow2_alloc_clusters(bs, new_size * 8, errp);
    if (new_off < 0) {
        return false;
    }
    g_autofree uint64_t *be = g_new0(uint64_t, new_size);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        be[i] = GUINT64_TO_BE(s->l1_table[i]);
    }
    if (!qcow2_file_pwrite(bs, QCOW2_OL_ACTIVE_L1, (uint64_t)new_off, be,
                           new_size * 8, errp)) {
        return false;
    }
    struct TERN_PACKED { uint32_t size; uint64_t off; } hdr = {
        GUINT32_TO_BE((uint32_t)new_size), GUINT64_TO_BE((uint64_t)new_off),
    };
    if (!qcow2_header_pwrite(bs, 36, &hdr, sizeof(hdr), errp)) {
        return false;
    }
    uint64_t old_off = s->l1_table_offset, old_size = s->l1_size;
    qcow2_meta_remove(bs, QCOW2_OL_ACTIVE_L1, old_off, old_size * 8);
    qcow2_meta_add(bs, QCOW2_OL_ACTIVE_L1, (uint64_t)new_off, new_size * 8);
    s->l1_table = g_renew(uint64_t, s->l1_table, new_size);
    memset(s->l1_table + old_size, 0, (new_size - old_size) * 8);
    s->l1_size = (uint32_t)new_size;
    s->l1_table_offset = (uint64_t)new_off;
    qcow2_free_clusters(bs, old_off, old_size * 8);
    return true;
}

/* Returns the offset of a writable (unshared) L2 table for l1 index i,
 * allocating or copying one as needed. */
static bool l2_table_for_write(BlockNode *bs, uint32_t i, uint64_t *l2_off,
                               GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (!qcow2_grow_l1_table(bs, (uint64_t)i + 1, errp)) {
        return false;
    }
    uint64_t old = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
    /* Written in place or copied and freed: either way it must be an L2
     * table only, not also some other metadata. */
    if (old && !qcow2_pre_write_check(bs, QCOW2_OL_L2, old, s->cluster_size,
                                      errp)) {
        return false;
    }
    if (old && (s->l1_table[i] & QCOW2_OFLAG_COPIED)) {
        *l2_off = old;
        return true;
    }
    int64_t new_off = qcow2_alloc_clusters(bs, s->cluster_size, errp);
    if (new_off < 0 ||
        !qcow2_pre_write_check(bs, 0, (uint64_t)new_off, s->cluster_size,
                               errp)) {
        return false;
    }
    qcow2_meta_add(bs, QCOW2_OL_ACTIVE_L2, (uint64_t)new_off,
                   s->cluster_size);
    g_autofree uint8_t *copy = g_malloc0(s->cluster_size);
    if (old) {
        uint8_t *t = qcow2_cache_get(s->l2_table_cache, old, errp);
        if (!t) {
            return false;
        }
        memcpy(copy, t, s->cluster_size);
        qcow2_cache_put(s->l2_table_cache, t);
    }
    /* The new table goes to the disk directly and durably (not with the
     * other dirty tables, whose entries may wait for refcounts), its
     * refcount too, then the L1 entry points at it. */
    qcow2_cache_discard(s->l2_table_cache, (uint64_t)new_off);
    if (!qcow2_file_pwrite_durable(bs, QCOW2_OL_ACTIVE_L2, (uint64_t)new_off,
                                   copy, s->cluster_size, errp) ||
        !qcow2_cache_flush_durable(s->refcount_block_cache, errp)) {
        return false;
    }
    s->l1_table[i] = (uint64_t)new_off | QCOW2_OFLAG_COPIED;
    if (!write_l1_entry(bs, i, errp)) {
        return false;
    }
    if (old) {
        qcow2_meta_remove(bs, QCOW2_OL_ACTIVE_L2, old, s->cluster_size);
        qcow2_free_clusters_later(bs, old, s->cluster_size);
    }
    *l2_off = (uint64_t)new_off;
    return true;
}

static bool set_l2_entry(BlockNode *bs, uint64_t l2_off, uint64_t guest,
                         uint64_t e, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, errp);
    if (!l2) {
        return false;
    }
    l2[l2_index_of(s, guest)] = GUINT64_TO_BE(e);
    qcow2_cache_mark_dirty(s->l2_table_cache, l2);
    qcow2_cache_put(s->l2_table_cache, l2);
    return true;
}

/* One whole cluster of data from buf. */
static bool write_buf(BlockNode *bs, uint64_t host, uint8_t *buf,
                      GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    struct iovec iov = { .iov_base = buf, .iov_len = s->cluster_size };

    return qcow2_data_pwritev(bs, host, &iov, 1, errp);
}

/* A zero cluster that kept its host cluster (write-zeroes without unmap)
 * is written in place: zeroes around the data, then the ZERO flag goes. */
static bool write_zero_in_place(BlockNode *bs, uint64_t guest, uint64_t e,
                                uint64_t in, const struct iovec *part, int n,
                                GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t host = e & QCOW2_L2E_OFFSET_MASK, l2_off;

    if (qcow2_offset_into_cluster(s, host)) {
        qcow2_signal_corruption(bs, errp, "Data cluster offset %#" PRIx64
                                " is not cluster aligned", host);
        return false;
    }
    if (!qcow2_pre_write_check(bs, 0, host, s->cluster_size, errp)) {
        return false;
    }
    memset(s->cluster_buf, 0, s->cluster_size);
    iov_to_buf(part, n, s->cluster_buf + in);
    if (!write_buf(bs, host, s->cluster_buf, errp) ||
        !l2_table_for_write(bs, l1_index_of(s, guest), &l2_off, errp)) {
        return false;
    }
    /* The zeroes are durable before the entry stops saying "zero". */
    qcow2_cache_depends_on_sync(s->l2_table_cache);
    return set_l2_entry(bs, l2_off, guest, host | QCOW2_OFLAG_COPIED, errp);
}

/* Writes part (n vectors, chunk bytes at 'in' inside the cluster) of the
 * guest cluster at 'guest'. */
static bool write_cluster(BlockNode *bs, uint64_t guest, uint64_t in,
                          uint64_t chunk, const struct iovec *part, int n,
                          GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t e, host = 0, l2_off, old, old_len;
    bool compressed;

    if (!get_l2_entry(bs, guest, &e, errp)) {
        return false;
    }
    compressed = e & QCOW2_OFLAG_COMPRESSED;
    if (!compressed && !entry_host_offset(bs, e, &host, errp)) {
        return false;
    }
    if (!compressed && (e & QCOW2_OFLAG_ZERO) && (e & QCOW2_OFLAG_COPIED) &&
        (e & QCOW2_L2E_OFFSET_MASK)) {
        return write_zero_in_place(bs, guest, e, in, part, n, errp);
    }
    if (host && (e & QCOW2_OFLAG_COPIED)) {
        return qcow2_pre_write_check(bs, 0, host, s->cluster_size, errp) &&
               qcow2_data_pwritev(bs, host + in, part, n, errp);
    }
    /* New cluster: old contents (shared or compressed cluster) or zeroes,
     * plus the data. A compressed cluster is inflated before anything is
     * allocated, so bad data fails the write without leaking a cluster. */
    uint8_t *buf = s->cluster_buf;
    bool partial = chunk < s->cluster_size;
    if (!entry_ref_range(bs, e, &old, &old_len, errp) ||
        (compressed && partial &&
         !qcow2_read_compressed(bs, e, buf, errp))) {
        return false;
    }
    /* A hostile refcount table can hand out a metadata cluster. */
    int64_t new_off = qcow2_alloc_clusters(bs, s->cluster_size, errp);
    if (new_off < 0 ||
        !qcow2_pre_write_check(bs, 0, (uint64_t)new_off, s->cluster_size,
                               errp)) {
        return false;
    }
    if (!partial) {
        if (!qcow2_data_pwritev(bs, (uint64_t)new_off, part, n, errp)) {
            return false;
        }
    } else {
        if (host) {
            if (!bdrv_file_pread(bs->file, host, buf, s->cluster_size, errp)) {
                return false;
            }
        } else if (!compressed) {    /* (a compressed one is in buf) */
            memset(buf, 0, s->cluster_size);
        }
        iov_to_buf(part, n, buf + in);
        if (!write_buf(bs, (uint64_t)new_off, buf, errp)) {
            return false;
        }
    }
    if (!l2_table_for_write(bs, l1_index_of(s, guest), &l2_off, errp)) {
        return false;
    }
    if (partial && (host || compressed)) {
        /* The rest of the cluster, copied from the old one, is durable
         * before the entry points at it (else a cut could lose data the
         * guest had written and flushed long ago). (A fresh cluster is
         * covered by the dependency on the refcount cache.) */
        qcow2_cache_depends_on_sync(s->l2_table_cache);
    }
    if (!set_l2_entry(bs, l2_off, guest, (uint64_t)new_off | QCOW2_OFLAG_COPIED,
                      errp)) {
        return false;
    }
    if (old_len) {
        qcow2_free_clusters_later(bs, old, old_len);
    }
    return true;
}

/*
 * How many whole clusters from 'guest' on (at most max, within one L2 table)
 * have no data yet (unallocated or zero without a host cluster), so one
 * contiguous allocation and one write can serve them all.
 */
static bool count_fresh_clusters(BlockNode *bs, uint64_t guest, uint64_t max,
                                 uint64_t *count, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t l1i = l1_index_of(s, guest), first = l2_index_of(s, guest);
    *count = 0;
    max = MIN(max, s->l2_size - first);
    uint64_t l2_off = l1i < s->l1_size ?
                      s->l1_table[l1i] & QCOW2_L1E_OFFSET_MASK : 0;
    if (!l2_off) {
        *count = max;
        return true;
    }
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, errp);
    if (!l2) {
        return false;
    }
    while (*count < max) {
        uint64_t e = GUINT64_FROM_BE(l2[first + *count]);
        if (e & (QCOW2_L2E_OFFSET_MASK | QCOW2_OFLAG_COMPRESSED)) {
            break;
        }
        (*count)++;
    }
    qcow2_cache_put(s->l2_table_cache, l2);
    return true;
}

/* Writes 'count' whole fresh clusters at 'guest' from part/n in one go. */
static bool write_fresh_clusters(BlockNode *bs, uint64_t guest, uint64_t count,
                                 const struct iovec *part, int n,
                                 GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l2_off;
    int64_t host = qcow2_alloc_clusters(bs, count << s->cluster_bits, errp);
    if (host < 0 ||
        !qcow2_pre_write_check(bs, 0, (uint64_t)host, count << s->cluster_bits,
                               errp) ||
        !qcow2_data_pwritev(bs, (uint64_t)host, part, n, errp) ||
        !l2_table_for_write(bs, l1_index_of(s, guest), &l2_off, errp)) {
        return false;
    }
    uint64_t *l2 = qcow2_cache_get(s->l2_table_cache, l2_off, errp);
    if (!l2) {
        return false;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t h = (uint64_t)host + (i << s->cluster_bits);
        l2[l2_index_of(s, guest) + i] = GUINT64_TO_BE(h | QCOW2_OFLAG_COPIED);
    }
    qcow2_cache_mark_dirty(s->l2_table_cache, l2);
    qcow2_cache_put(s->l2_table_cache, l2);
    return true;
}

bool qcow2_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                   const struct iovec *iov, int iovcnt, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree struct iovec *part = g_new(struct iovec, iovcnt);
    size_t done = 0;

    while (bytes) {
        uint64_t in = qcow2_offset_into_cluster(s, offset);
        uint64_t chunk = MIN(bytes, s->cluster_size - in);
        uint64_t fresh = 0;
        if (!in && bytes >= 2 * (uint64_t)s->cluster_size &&
            !count_fresh_clusters(bs, offset, bytes >> s->cluster_bits,
                                  &fresh, errp)) {
            return false;
        }
        if (fresh > 1) {
            chunk = fresh << s->cluster_bits;
            int n = iov_slice(iov, iovcnt, done, chunk, part);
            if (!write_fresh_clusters(bs, offset, fresh, part, n, errp)) {
                return false;
            }
        } else {
            int n = iov_slice(iov, iovcnt, done, chunk, part);
            if (!write_cluster(bs, offset - in, in, chunk, part, n, errp)) {
                return false;
            }
        }
        offset += chunk;
        bytes -= chunk;
        done += chunk;
    }
    return true;
}

/* The L2 entry a whole cluster gets for 'mode' (see Qcow2DiscardMode). */
static uint64_t discarded_entry(BDRVQcow2State *s, uint64_t e,
                                Qcow2DiscardMode mode)
{
    uint64_t host = e & QCOW2_L2E_OFFSET_MASK;
    if (mode == QCOW2_DISCARD || s->qcow_version < 3) {
        return 0;
    }
    if (mode == QCOW2_ZERO_KEEP && host && !(e & QCOW2_OFLAG_COMPRESSED)) {
        return host | (e & QCOW2_OFLAG_COPIED) | QCOW2_OFLAG_ZERO;
    }
    return QCOW2_OFLAG_ZERO;
}

/* Gives one whole guest cluster its discarded entry and queues the host
 * range it no longer holds to be freed. */
static bool unmap_cluster(BlockNode *bs, uint64_t guest, Qcow2DiscardMode mode,
                          GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t e, l2_off;
    if (!get_l2_entry(bs, guest, &e, errp)) {
        return false;
    }
    uint64_t want = discarded_entry(s, e, mode);
    if (e == want || e == 0) {      /* (unallocated reads as zeroes) */
        return true;
    }
    Qcow2FreeRange old = { 0 };
    if (!(want & QCOW2_L2E_OFFSET_MASK) &&
        !entry_ref_range(bs, e, &old.offset, &old.len, errp)) {
        return false;
    }
    if (!l2_table_for_write(bs, l1_index_of(s, guest), &l2_off, errp) ||
        !set_l2_entry(bs, l2_off, guest, want, errp)) {
        return false;
    }
    if (old.len) {
        qcow2_free_clusters_later(bs, old.offset, old.len);
    }
    return true;
}

bool qcow2_cluster_discard(BlockNode *bs, uint64_t offset, uint64_t bytes,
                           Qcow2DiscardMode mode, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    bool make_zero = mode != QCOW2_DISCARD;
    uint64_t start = ALIGN_UP(offset, (uint64_t)s->cluster_size);
    uint64_t end = ALIGN_DOWN(offset + bytes, (uint64_t)s->cluster_size);

    if (start >= end) {          /* no whole cluster inside */
        start = end = offset + bytes;
    }
    if (make_zero) {             /* partial clusters at either end */
        uint64_t tail = MAX(end, start);
        if ((start > offset &&
             !bdrv_pwrite_zeroes_fallback(bs, offset, start - offset, errp)) ||
            (offset + bytes > tail &&
             !bdrv_pwrite_zeroes_fallback(bs, tail, offset + bytes - tail,
                                          errp))) {
            return false;
        }
    }
    bool ok = true;
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    for (uint64_t g = start; g < end && ok;) {
        uint32_t l1i = l1_index_of(s, g);
        if (l1i >= s->l1_size || !(s->l1_table[l1i] & QCOW2_L1E_OFFSET_MASK)) {
            g = ((uint64_t)l1i + 1) * per_l1;   /* nothing mapped here */
            continue;
        }
        ok = unmap_cluster(bs, g, mode, errp);
        g += s->cluster_size;
    }
    return ok;
}

bool qcow2_rw_vmspace(BlockNode *bs, uint64_t offset, void *buf, size_t len,
                      bool write, GError **errp)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    if (!len) {
        return true;
    }
    return write ? qcow2_pwritev(bs, offset, len, &iov, 1, errp)
                 : qcow2_preadv(bs, offset, len, &iov, 1, errp);
}
