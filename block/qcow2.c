/*
 * The qcow2 driver: probing, creating, opening (header, feature bits and
 * header extensions validated against hostile input), rewriting the header
 * with unknown extensions preserved, closing, and the BlockDriver ops table.
 * Cluster mapping, refcounts, the cache and snapshots live in their own
 * qcow2-*.c files; the on-disk layout is described in qcow2.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "block/qcow2.h"
#include "block/block-int.h"

bool qcow2_file_pread(BlockNode *bs, uint64_t offset, void *buf, size_t len,
                      GError **errp)
{
    return bdrv_file_pread(bs->file, offset, buf, len, errp);
}

bool qcow2_file_pwrite(BlockNode *bs, uint32_t own, uint64_t offset,
                       const void *buf, size_t len, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    s->unsynced = true;
    return qcow2_pre_write_check(bs, own, offset, len, errp) &&
           bdrv_file_pwrite(bs->file, offset, buf, len, errp);
}

bool qcow2_data_pwritev(BlockNode *bs, uint64_t offset,
                        const struct iovec *iov, int iovcnt, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    s->unsynced = true;
    return bdrv_file_pwritev(bs->file, offset, iov, iovcnt, errp);
}

bool qcow2_sync(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->unsynced) {
        return true;
    }
    if (!bdrv_flush(bs->file, errp)) {
        return false;
    }
    s->unsynced = false;
    s->sync_count++;
    return true;
}

bool qcow2_header_pwrite(BlockNode *bs, uint64_t offset, const void *buf,
                         size_t len, GError **errp)
{
    return qcow2_flush_all(bs, errp) &&
           qcow2_file_pwrite(bs, QCOW2_OL_MAIN_HEADER, offset, buf, len,
                             errp) &&
           qcow2_sync(bs, errp);
}

bool qcow2_file_pwrite_durable(BlockNode *bs, uint32_t own, uint64_t offset,
                               const void *buf, size_t len, GError **errp)
{
    return qcow2_pre_write_check(bs, own, offset, len, errp) &&
           bdrv_file_pwrite_durable(bs->file, offset, buf, len, errp);
}

uint64_t qcow2_file_length(BlockNode *bs)
{
    return bdrv_file_length(bs->file);
}

bool qcow2_check_usable(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (s->unusable) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "qcow2: '%s' was found "
                    "corrupt and is not used any further", bs->filename);
        return false;
    }
    return true;
}

/* As QEMU: on a writable node, a corruption is fatal (the image is marked
 * corrupt and the node does no more I/O); read-only, only the request
 * fails. */
void qcow2_signal_corruption(BlockNode *bs, GError **errp, const char *fmt, ...)
{
    BDRVQcow2State *s = bs->opaque;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    if (!bs->read_only) {
        s->unusable = true;
    }
    if (!bs->read_only && s->qcow_version >= 3 &&
        !(s->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        uint64_t be;
        s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        be = GUINT64_TO_BE(s->incompatible_features);
        if (!bdrv_file_pwrite(bs->file, 72, &be, 8, NULL)) {
            tern_warn("qcow2: could not mark '%s' corrupt", bs->filename);
        }
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "qcow2: Marking image "
                    "as corrupt: %s; further corruption events will be "
                    "suppressed", msg);
        return;
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "qcow2: Image is corrupt: %s",
                msg);
}

void qcow2_set_autoclear(BlockNode *bs, uint64_t bit, bool on)
{
    BDRVQcow2State *s = bs->opaque;
    if (on) {
        s->autoclear_features |= bit;
    } else {
        s->autoclear_features &= ~bit;
    }
}

/* Feature name table entries tern writes into v3 headers. */
static const struct { uint8_t type, bit; const char *name; } feature_names[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

static void put_ext(GByteArray *out, uint32_t type, const void *data,
                    uint32_t len)
{
    static const uint8_t zero[8];
    uint32_t hdr[2] = { GUINT32_TO_BE(type), GUINT32_TO_BE(len) };
    g_byte_array_append(out, (const guint8 *)hdr, sizeof(hdr));
    g_byte_array_append(out, data, len);
    g_byte_array_append(out, zero, ALIGN_UP(len, 8) - len);
}

static void pad_to(GByteArray *out, size_t len)
{
    size_t old = out->len;
    if (len > old) {
        g_byte_array_set_size(out, (guint)len);
        memset(out->data + old, 0, len - old);
    }
}

static void put_header(BDRVQcow2State *s, uint64_t size, GByteArray *out)
{
    Qcow2Header h = {
        .magic = GUINT32_TO_BE(QCOW2_MAGIC),
        .version = GUINT32_TO_BE((uint32_t)s->qcow_version),
        .cluster_bits = GUINT32_TO_BE((uint32_t)s->cluster_bits),
        .size = GUINT64_TO_BE(size),
        .l1_size = GUINT32_TO_BE(s->l1_size),
        .l1_table_offset = GUINT64_TO_BE(s->l1_table_offset),
        .refcount_table_offset = GUINT64_TO_BE(s->refcount_table_offset),
        .refcount_table_clusters = GUINT32_TO_BE(
            (uint32_t)((uint64_t)s->refcount_table_size * 8 >>
                       s->cluster_bits)),
        .nb_snapshots = GUINT32_TO_BE(s->nb_snapshots),
        .snapshots_offset = GUINT64_TO_BE(s->snapshots_offset),
        .incompatible_features = GUINT64_TO_BE(s->incompatible_features),
        .compatible_features = GUINT64_TO_BE(s->compatible_features),
        .autoclear_features = GUINT64_TO_BE(s->autoclear_features),
        .refcount_order = GUINT32_TO_BE((uint32_t)s->refcount_order),
        .header_length = GUINT32_TO_BE(s->header_length),
        .compression_type = s->compression_type,
    };
    size_t fixed = s->qcow_version >= 3 ? MIN(sizeof(h), s->header_length)
                                        : QCOW2_V2_HEADER_SIZE;
    g_byte_array_append(out, (const guint8 *)&h, (guint)fixed);
    pad_to(out, s->header_length);
}

/* Builds cluster 0: header, feature table (v3), bitmaps, unknown
 * extensions, end marker. */
/*
 * The feature-name table is optional. QEMU 7.2 writes it only with clusters
 * over 4 KiB (seen with qemu-img create and bitmap --add: 512 B .. 4 KiB
 * headers have none, 8 KiB and up have it); tern does the same, and also
 * drops it where it would not fit next to the other extensions.
 */
static bool build_header_exts(BDRVQcow2State *s, uint64_t size,
                              bool feature_table, GByteArray *out)
{
    g_byte_array_set_size(out, 0);
    put_header(s, size, out);
    if (feature_table) {
        uint8_t table[ARRAY_SIZE(feature_names)][48] = { { 0 } };
        for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
            table[i][0] = feature_names[i].type;
            table[i][1] = feature_names[i].bit;
            memcpy(&table[i][2], feature_names[i].name,
                   strlen(feature_names[i].name));
        }
        put_ext(out, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
    }
    if (s->nb_bitmaps) {
        Qcow2BitmapHeaderExt b = {
            .nb_bitmaps = GUINT32_TO_BE(s->nb_bitmaps),
            .bitmap_directory_size = GUINT64_TO_BE(s->bitmap_directory_size),
            .bitmap_directory_offset =
                GUINT64_TO_BE(s->bitmap_directory_offset),
        };
        put_ext(out, QCOW2_EXT_BITMAPS, &b, sizeof(b));
    }
    for (guint i = 0; s->unknown_exts && i < s->unknown_exts->len; i++) {
        Qcow2UnknownExt *e = s->unknown_exts->pdata[i];
        put_ext(out, e->type, e->data, e->len);
    }
    put_ext(out, QCOW2_EXT_END, NULL, 0);
    return out->len <= s->cluster_size;
}

static bool build_header(BDRVQcow2State *s, uint64_t size, GByteArray *out,
                         GError **errp)
{
    bool table = s->qcow_version >= 3 && s->cluster_size > 4096;
    if (!build_header_exts(s, size, table, out) &&
        (!table || !build_header_exts(s, size, false, out))) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                    "qcow2: header extensions do not fit in one cluster");
        return false;
    }
    pad_to(out, s->cluster_size);
    return true;
}

bool qcow2_update_header(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GByteArray) out = g_byte_array_new();

    return build_header(s, bs->size, out, errp) &&
           qcow2_header_pwrite(bs, 0, out->data, out->len, errp);
}

static bool refuse(GError **errp, const char *feature)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                "qcow2: unsupported feature: %s", feature);
    return false;
}

static bool check_incompat(BlockNode *bs, uint64_t bits, int flags,
                           GError **errp)
{
    if (bits & QCOW2_INCOMPAT_DATA_FILE) {
        return refuse(errp, "external data file");
    }
    if (bits & QCOW2_INCOMPAT_COMPRESSION) {
        return refuse(errp, "compression type other than zlib");
    }
    if (bits & QCOW2_INCOMPAT_EXTL2) {
        return refuse(errp, "extended L2 entries");
    }
    if (bits & ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "qcow2: unsupported IMAGE feature(s): incompatible bits "
                    "%#" PRIx64, bits & ~(uint64_t)0x1f);
        return false;
    }
    if ((bits & QCOW2_INCOMPAT_CORRUPT) && (flags & BDRV_O_RDWR) &&
        !(flags & BDRV_O_CHECK)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "qcow2: Image is corrupt; cannot be opened read/write");
        return false;
    }
    return true;
}

bool qcow2_check_disk_size(BDRVQcow2State *s, uint64_t size, GError **errp)
{
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    if (size > (1ULL << 62) ||
        DIV_ROUND_UP(size, per_l1) > QCOW2_MAX_L1_SIZE) {
        return tern_invalid(errp, "qcow2: Image size %" PRIu64
                            " is too large", size);
    }
    return true;
}

/* Parses and validates the fixed header into s. */
static bool parse_header(BlockNode *bs, const uint8_t *buf, int flags,
                         GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header h = { 0 };
    memcpy(&h, buf, sizeof(h));

    if (GUINT32_FROM_BE(h.magic) != QCOW2_MAGIC) {
        return tern_invalid(errp, "qcow2: Image is not in qcow2 format");
    }
    uint32_t version = GUINT32_FROM_BE(h.version);
    if (version != 2 && version != 3) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "qcow2: Unsupported qcow2 version %u", version);
        return false;
    }
    s->qcow_version = (int)version;
    /* On-disk integers are unsigned: range-check them before they become
     * the driver's ints (a "negative" order must not pass "> 6"). */
    uint32_t cluster_bits = GUINT32_FROM_BE(h.cluster_bits);
    if (cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return tern_invalid(errp, "qcow2: Unsupported cluster size: 2^%u",
                            cluster_bits);
    }
    s->cluster_bits = (int)cluster_bits;
    s->cluster_size = 1u << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1u << s->l2_bits;
    uint32_t refcount_order = 4;
    if (s->qcow_version == 2) {
        s->header_length = QCOW2_V2_HEADER_SIZE;
    } else {
        s->header_length = GUINT32_FROM_BE(h.header_length);
        s->incompatible_features = GUINT64_FROM_BE(h.incompatible_features);
        s->compatible_features = GUINT64_FROM_BE(h.compatible_features);
        s->autoclear_features = GUINT64_FROM_BE(h.autoclear_features);
        refcount_order = GUINT32_FROM_BE(h.refcount_order);
        if (s->header_length < QCOW2_V3_HEADER_SIZE ||
            s->header_length > s->cluster_size || s->header_length % 8) {
            return tern_invalid(errp, "qcow2: Invalid header length %u",
                                s->header_length);
        }
        if (s->header_length > 104) {
            s->compression_type = h.compression_type;
        }
    }
    if (!check_incompat(bs, s->incompatible_features, flags, errp)) {
        return false;
    }
    if (s->compression_type != 0) {
        return refuse(errp, "compression type other than zlib");
    }
    if (GUINT32_FROM_BE(h.crypt_method)) {
        return refuse(errp, "encryption");
    }
    s->backing_file_offset = GUINT64_FROM_BE(h.backing_file_offset);
    if (s->backing_file_offset) {
        return refuse(errp, "backing file");
    }
    if (refcount_order > 6) {
        return tern_invalid(errp, "qcow2: Refcount width 2^%u bits is "
                            "invalid", refcount_order);
    }
    s->refcount_order = (int)refcount_order;
    if (s->refcount_order != 4 && (flags & BDRV_O_RDWR)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "qcow2: refcount width of %d bits is supported read-only",
                    1 << s->refcount_order);
        return false;
    }
    s->refcount_block_bits = s->cluster_bits + 3 - s->refcount_order;
    s->refcount_block_size = 1u << s->refcount_block_bits;
    s->refcount_max = s->refcount_order == 6 ? UINT64_MAX
                      : (1ULL << (1 << s->refcount_order)) - 1;

    bs->size = GUINT64_FROM_BE(h.size);
    s->l1_size = GUINT32_FROM_BE(h.l1_size);
    s->l1_table_offset = GUINT64_FROM_BE(h.l1_table_offset);
    s->refcount_table_offset = GUINT64_FROM_BE(h.refcount_table_offset);
    uint32_t rt_clusters = GUINT32_FROM_BE(h.refcount_table_clusters);
    s->nb_snapshots = GUINT32_FROM_BE(h.nb_snapshots);
    s->snapshots_offset = GUINT64_FROM_BE(h.snapshots_offset);

    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    if (!qcow2_check_disk_size(s, bs->size, errp)) {
        return false;
    }
    s->l1_vm_state_index = (uint32_t)DIV_ROUND_UP(bs->size, per_l1);
    if (s->l1_size > QCOW2_MAX_L1_SIZE || s->l1_size < s->l1_vm_state_index) {
        return tern_invalid(errp, "qcow2: L1 table size %u is invalid",
                            s->l1_size);
    }
    if ((uint64_t)rt_clusters << s->cluster_bits >
        QCOW2_MAX_REFTABLE_SIZE * 8 || rt_clusters == 0) {
        return tern_invalid(errp, "qcow2: Refcount table size %u clusters is "
                            "invalid", rt_clusters);
    }
    s->refcount_table_size = (uint32_t)(((uint64_t)rt_clusters <<
                                         s->cluster_bits) / 8);
    return true;
}

static bool check_table(BlockNode *bs, uint64_t off, uint64_t len,
                        const char *what, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (qcow2_offset_into_cluster(s, off) || (len && off == 0)) {
        return tern_invalid(errp, "qcow2: %s offset %#" PRIx64 " is invalid",
                            what, off);
    }
    if (off + len > qcow2_file_length(bs) || off + len < off) {
        return tern_invalid(errp, "qcow2: %s is past the end of the file",
                            what);
    }
    return true;
}

static bool check_layout(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_len = (uint64_t)s->l1_size * 8;
    uint64_t rt_len = (uint64_t)s->refcount_table_size * 8;
    uint64_t l1_end = s->l1_table_offset + l1_len;
    uint64_t rt_end = s->refcount_table_offset + rt_len;

    if (!check_table(bs, s->l1_table_offset, l1_len, "L1 table", errp) ||
        !check_table(bs, s->refcount_table_offset, rt_len,
                     "Refcount table", errp)) {
        return false;
    }
    if (l1_len && s->l1_table_offset < rt_end &&
        s->refcount_table_offset < l1_end) {
        return tern_invalid(errp, "qcow2: L1 table and refcount table overlap");
    }
    return true;
}

static bool parse_extensions(BlockNode *bs, const uint8_t *buf, int flags,
                             GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = s->header_length;

    while (off + 8 <= s->cluster_size) {
        uint32_t type = (uint32_t)buf[off] << 24 | buf[off + 1] << 16 |
                        buf[off + 2] << 8 | buf[off + 3];
        uint32_t len = (uint32_t)buf[off + 4] << 24 | buf[off + 5] << 16 |
                       buf[off + 6] << 8 | buf[off + 7];
        off += 8;
        if (type == QCOW2_EXT_END) {
            return true;
        }
        if (len > s->cluster_size - off) {
            return tern_invalid(errp, "qcow2: Header extension %#x too large",
                                type);
        }
        const uint8_t *data = buf + off;
        off += ALIGN_UP((uint64_t)len, 8);
        switch (type) {
        case QCOW2_EXT_FEATURE_TABLE:
            break;                      /* regenerated on write */
        case QCOW2_EXT_CRYPTO:
            return refuse(errp, "encryption");
        case QCOW2_EXT_DATA_FILE:
            return refuse(errp, "external data file");
        case QCOW2_EXT_BITMAPS: {
            Qcow2BitmapHeaderExt b;
            if (len != sizeof(b)) {
                return tern_invalid(errp, "qcow2: Bitmaps extension has length "
                                    "%u", len);
            }
            memcpy(&b, data, sizeof(b));
            s->nb_bitmaps = GUINT32_FROM_BE(b.nb_bitmaps);
            s->bitmap_directory_size = GUINT64_FROM_BE(b.bitmap_directory_size);
            s->bitmap_directory_offset =
                GUINT64_FROM_BE(b.bitmap_directory_offset);
            break;
        }
        default: {
            Qcow2UnknownExt *e = g_new0(Qcow2UnknownExt, 1);
            e->type = type;
            e->len = len;
            e->data = g_memdup2(data, len);
            g_ptr_array_add(s->unknown_exts, e);
            break;
        }
        }
    }
    return true;   /* no END marker within the cluster: tolerate, as QEMU */
}

static void free_unknown_ext(gpointer p)
{
    Qcow2UnknownExt *e = p;
    g_free(e->data);
    g_free(e);
}

static bool read_l1_table(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    s->l1_table = g_new0(uint64_t, MAX(s->l1_size, 1));
    if (!qcow2_file_pread(bs, s->l1_table_offset, s->l1_table,
                          (size_t)s->l1_size * 8, errp)) {
        return false;
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        s->l1_table[i] = GUINT64_FROM_BE(s->l1_table[i]);
    }
    return true;
}

static void init_caches(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int l2_tables = (int)CLAMP(8 * MiB / s->cluster_size, 8, 1024);
    int rb_tables = (int)CLAMP(1 * MiB / s->cluster_size, 4, 256);
    /* An L2 table may be active and a snapshot's at once. */
    s->l2_table_cache = qcow2_cache_new(bs, l2_tables, QCOW2_OL_L2);
    s->refcount_block_cache = qcow2_cache_new(bs, rb_tables,
                                              QCOW2_OL_REFCOUNT_BLOCK);
    s->pending_frees = g_array_new(FALSE, FALSE, sizeof(Qcow2FreeRange));
    s->cluster_buf = g_malloc(s->cluster_size);
}

static void qcow2_free_state(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;
    qcow2_cache_free(s->l2_table_cache);
    qcow2_cache_free(s->refcount_block_cache);
    s->l2_table_cache = s->refcount_block_cache = NULL;
    qcow2_refcount_close(bs);
    qcow2_meta_free(s);
    qcow2_free_snapshots(s);
    g_clear_pointer(&s->l1_table, g_free);
    g_clear_pointer(&s->cluster_buf, g_free);
    g_clear_pointer(&s->pending_frees, g_array_unref);
    g_clear_pointer(&s->unknown_exts, g_ptr_array_unref);
}

/* Read-write open: repair a dirty image, drop autoclear bits we do not
 * maintain, and write the header back if anything changed. */
static bool open_rw(BlockNode *bs, int flags, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    bool changed = false;

    if ((s->incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
        !(flags & BDRV_O_CHECK)) {
        BlockCheckResult res = { 0 };
        if (!qcow2_check(bs, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &res, errp)) {
            return false;
        }
        if (res.corruptions || res.check_errors) {
            return tern_invalid(errp, "qcow2: Image is dirty and could not be "
                                "repaired");
        }
        s->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
        changed = true;
    }
    if (s->autoclear_features & ~QCOW2_AUTOCLEAR_MASK) {
        s->autoclear_features &= QCOW2_AUTOCLEAR_MASK;
        changed = true;
    }
    return !changed || qcow2_update_header(bs, errp);
}

static bool qcow2_open(BlockNode *bs, const char *filename, int flags,
                       GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t flen = qcow2_file_length(bs);
    g_autofree uint8_t *buf = g_malloc0(1u << QCOW2_MAX_CLUSTER_BITS);

    s->unknown_exts = g_ptr_array_new_with_free_func(free_unknown_ext);
    if (flen < QCOW2_V2_HEADER_SIZE) {
        tern_invalid(errp, "qcow2: Image file '%s' is too short (%" PRIu64
                     " bytes)", filename, flen);
        goto fail;
    }
    if (!qcow2_file_pread(bs, 0, buf, MIN(flen, 1u << QCOW2_MAX_CLUSTER_BITS),
                          errp) ||
        !parse_header(bs, buf, flags, errp) ||
        !parse_extensions(bs, buf, flags, errp) ||
        !check_layout(bs, errp) || !read_l1_table(bs, errp) ||
        !qcow2_refcount_init(bs, errp)) {
        goto fail;
    }
    init_caches(bs);
    if (!qcow2_read_snapshots(bs, errp)) {
        goto fail;
    }
    if (!(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        s->nb_bitmaps = 0;   /* written by someone unaware of bitmaps */
        s->bitmap_directory_size = s->bitmap_directory_offset = 0;
    }
    if ((flags & BDRV_O_RDWR) &&
        qcow2_l1_has_duplicates(s->l1_table, s->l1_size)) {
        tern_invalid(errp, "qcow2: Image is corrupt: two L1 entries point at "
                     "one L2 table");
        goto fail;
    }
    /* Same for refcount blocks: the allocator's scan must stay bounded. */
    if ((flags & BDRV_O_RDWR) &&
        qcow2_l1_has_duplicates(s->refcount_table, s->refcount_table_size)) {
        tern_invalid(errp, "qcow2: Image is corrupt: two refcount table "
                     "entries point at one refcount block");
        goto fail;
    }
    /* Writes are checked against the metadata map from here on (the
     * repair of a dirty image included); it is built again once the
     * bitmaps' tables are known. */
    if ((flags & BDRV_O_RDWR) &&
        (!qcow2_meta_rebuild(bs, errp) || !open_rw(bs, flags, errp))) {
        goto fail;
    }
    /* Inactive (incoming migration): the bitmaps are loaded when the node
     * is activated, once the source has stored them or sent them. */
    if ((!(flags & BDRV_O_INACTIVE) && !qcow2_bitmaps_load(bs, errp)) ||
        ((flags & BDRV_O_RDWR) && (!qcow2_meta_rebuild(bs, errp) ||
                                   !qcow2_bitmaps_open_rw(bs, flags, errp)))) {
        qcow2_bitmaps_close(bs);
        goto fail;
    }
    return true;
fail:
    qcow2_free_state(bs);
    return false;
}

static void qcow2_close(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;
    GError *err = NULL;
    if (!bs->read_only && !s->unusable &&
        (!qcow2_bitmaps_store(bs, &err) || !qcow2_flush_all(bs, &err))) {
        tern_warn("qcow2: closing '%s': %s", bs->filename, err->message);
        g_clear_error(&err);
    }
    qcow2_bitmaps_close(bs);
    qcow2_free_state(bs);
}

static bool qcow2_op_preadv(BlockNode *bs, uint64_t offset, uint64_t bytes,
                            const struct iovec *iov, int iovcnt, GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_preadv(bs, offset, bytes, iov, iovcnt, errp);
}

static bool qcow2_op_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                             const struct iovec *iov, int iovcnt,
                             GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_pwritev(bs, offset, bytes, iov, iovcnt, errp);
}

static bool qcow2_flush(BlockNode *bs, GError **errp)
{
    return qcow2_check_usable(bs, errp) && qcow2_flush_all(bs, errp);
}

static bool qcow2_discard(BlockNode *bs, uint64_t offset, uint64_t bytes,
                          GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_cluster_discard(bs, offset, bytes, QCOW2_DISCARD, errp);
}

static bool qcow2_write_zeroes(BlockNode *bs, uint64_t offset, uint64_t bytes,
                               bool unmap, GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_cluster_discard(bs, offset, bytes,
                                 unmap ? QCOW2_ZERO_UNMAP : QCOW2_ZERO_KEEP,
                                 errp);
}

/* Growing only: the new space reads as zeroes because the L1 entries past
 * the old size are unused once any VM state there is discarded. */
static bool qcow2_truncate(BlockNode *bs, uint64_t size, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    uint64_t be = GUINT64_TO_BE(size);

    if (!qcow2_check_usable(bs, errp)) {
        return false;
    }
    if (size < bs->size) {
        return refuse(errp, "shrinking an image");
    }
    if (s->nb_snapshots) {
        return refuse(errp, "resizing an image with internal snapshots");
    }
    if (!qcow2_check_disk_size(s, size, errp)) {
        return false;
    }
    /* Stale VM state past the old end must not show up as disk data. */
    uint64_t vm_end = (uint64_t)s->l1_size * per_l1;
    if (vm_end > bs->size &&
        !qcow2_cluster_discard(bs, ALIGN_UP(bs->size, (uint64_t)s->cluster_size),
                               vm_end - ALIGN_UP(bs->size,
                                                 (uint64_t)s->cluster_size),
                               QCOW2_DISCARD, errp)) {
        return false;
    }
    if (!qcow2_grow_l1_table(bs, DIV_ROUND_UP(size, per_l1), errp) ||
        !qcow2_header_pwrite(bs, 24, &be, 8, errp)) {
        return false;
    }
    s->l1_vm_state_index = (uint32_t)DIV_ROUND_UP(size, per_l1);
    return true;
}

/* Repairs change refcounts (and may free clusters): map them afresh. */
static bool qcow2_check_op(BlockNode *bs, BlockCheckMode fix,
                           BlockCheckResult *res, GError **errp)
{
    bool ok = qcow2_check(bs, fix, res, errp);
    return fix ? qcow2_meta_rebuild_after(bs, ok, errp) : ok;
}

static bool qcow2_get_info(BlockNode *bs, BlockImageInfo *info, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    info->cluster_size = s->cluster_size;
    info->dirty_flag = !!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY);
    info->compat = g_strdup(s->qcow_version >= 3 ? "1.1" : "0.10");
    info->lazy_refcounts =
        !!(s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
    info->refcount_bits = 1 << s->refcount_order;
    info->corrupt = !!(s->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
    info->snapshots = qcow2_snapshot_list(bs);
    qcow2_bitmaps_info(bs, info);
    return true;
}

/* The VM state area ends where the largest L1 table would: a position
 * from a hostile snapshot entry (vm_state_size) must not wrap around into
 * the guest disk. */
static bool vmstate_range_ok(BDRVQcow2State *s, uint64_t pos, size_t len,
                             GError **errp)
{
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    uint64_t room = (uint64_t)QCOW2_MAX_L1_SIZE * per_l1 -
                    qcow2_vm_state_offset(s);
    if (pos > room || len > room - pos) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "qcow2: VM state "
                    "range %" PRIu64 "+%zu lies beyond what the image can "
                    "address", pos, len);
        return false;
    }
    return true;
}

static bool qcow2_save_vmstatev(BlockNode *bs, uint64_t pos,
                                const struct iovec *iov, int iovcnt,
                                GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t len = 0;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    return qcow2_check_usable(bs, errp) && vmstate_range_ok(s, pos, len, errp) &&
           (!len || qcow2_pwritev(bs, qcow2_vm_state_offset(s) + pos, len, iov,
                                  iovcnt, errp));
}

static bool qcow2_load_vmstate(BlockNode *bs, uint64_t pos, void *buf,
                               size_t len, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    return qcow2_check_usable(bs, errp) && vmstate_range_ok(s, pos, len, errp) &&
           qcow2_rw_vmspace(bs, qcow2_vm_state_offset(s) + pos, buf, len,
                            false, errp);
}

/* Header, refcount table (cluster 1), refcount block (cluster 2) counting
 * clusters 0-3, an empty one-cluster L1 table (cluster 3). */
static bool write_empty_image(const char *filename, int version, uint32_t cs,
                              uint32_t l1_size, uint64_t size, GError **errp)
{
    BDRVQcow2State s = {
        .qcow_version = version, .cluster_bits = __builtin_ctz(cs),
        .cluster_size = cs, .refcount_order = 4,
        .header_length = version == 3 ? 112 : QCOW2_V2_HEADER_SIZE,
        .refcount_table_offset = cs, .refcount_table_size = cs / 8,
        .l1_table_offset = 3 * (uint64_t)cs, .l1_size = l1_size,
    };
    g_autoptr(GByteArray) out = g_byte_array_new();
    uint64_t rt0 = GUINT64_TO_BE(2 * (uint64_t)cs);
    uint8_t rb[8] = { 0, 1, 0, 1, 0, 1, 0, 1 };
    g_autofree uint8_t *zero = g_malloc0(cs);

    BlockNode *file = bdrv_open_protocol(filename, BDRV_O_RDWR, errp);
    if (!file) {
        return false;
    }
    bool ok = build_header(&s, size, out, errp) &&
              bdrv_file_pwrite(file, 0, out->data, out->len, errp) &&
              bdrv_file_pwrite(file, cs, zero, cs, errp) &&
              bdrv_file_pwrite(file, cs, &rt0, 8, errp) &&
              bdrv_file_pwrite(file, 2 * (uint64_t)cs, zero, cs, errp) &&
              bdrv_file_pwrite(file, 2 * (uint64_t)cs, rb, sizeof(rb), errp) &&
              bdrv_file_pwrite(file, 3 * (uint64_t)cs, zero, cs, errp);
    bdrv_close(file);
    return ok;
}

/* Writes a fresh image: header, one refcount table cluster, one refcount
 * block, an L1 table; then grows the L1 table through the driver if the
 * size needs more than the first cluster of it. */
static bool qcow2_create(const char *filename, uint64_t size,
                         const BlockCreateOpts *opts, GError **errp)
{
    uint32_t cs = opts->cluster_size ? opts->cluster_size : 64 * KiB;
    const char *compat = opts->compat ? opts->compat : "1.1";
    int version = !strcmp(compat, "1.1") || !strcmp(compat, "v3") ? 3
                : !strcmp(compat, "0.10") || !strcmp(compat, "v2") ? 2 : 0;

    if (!version) {
        return tern_invalid(errp, "qcow2: Invalid compatibility level: '%s'",
                            compat);
    }
    if (cs < 512 || cs > 2 * MiB || (cs & (cs - 1))) {
        return tern_invalid(errp, "qcow2: Cluster size must be a power of two "
                            "between 512 and 2048k");
    }
    uint64_t per_l1 = (uint64_t)cs * (cs / 8);
    if (size > (1ULL << 62) ||
        DIV_ROUND_UP(size, per_l1) > QCOW2_MAX_L1_SIZE) {
        return tern_invalid(errp, "qcow2: Image size %" PRIu64 " is too large "
                            "for cluster size %u", size, cs);
    }
    uint64_t l1_needed = DIV_ROUND_UP(size, per_l1);
    if (l1_needed <= cs / 8) {   /* the common case: as qemu-img lays it out */
        return bdrv_file.create(filename, 0, opts, errp) &&
               write_empty_image(filename, version, cs, (uint32_t)l1_needed,
                                 size, errp);
    }
    if (!bdrv_file.create(filename, 0, opts, errp) ||
        !write_empty_image(filename, version, cs, 1, 0, errp)) {
        return false;
    }
    /* A bigger L1 table is grown through the driver, which allocates the
     * refcount blocks it needs. */
    BlockNode *bs = bdrv_open(filename, "qcow2", BDRV_O_RDWR, errp);
    if (!bs) {
        return false;
    }
    BDRVQcow2State *s = bs->opaque;
    uint64_t be = GUINT64_TO_BE(size);
    bool ok = qcow2_grow_l1_table(bs, l1_needed, errp) &&
              qcow2_header_pwrite(bs, 24, &be, 8, errp);
    if (ok) {
        bs->size = size;
        s->l1_vm_state_index = (uint32_t)l1_needed;
    }
    bdrv_close(bs);
    return ok;
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .has_metadata = true,
    .state_size = sizeof(BDRVQcow2State),
    .create = qcow2_create,
    .open = qcow2_open,
    .close = qcow2_close,
    .preadv = qcow2_op_preadv,
    .pwritev = qcow2_op_pwritev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .truncate = qcow2_truncate,
    .get_info = qcow2_get_info,
    .check = qcow2_check_op,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
    .save_vmstatev = qcow2_save_vmstatev,
    .load_vmstate = qcow2_load_vmstate,
    .snapshot_load_vmstate = qcow2_snapshot_load_vmstate,
    .can_store_bitmap = qcow2_can_store_bitmap,
    .remove_persistent_bitmap = qcow2_remove_persistent_bitmap,
    .store_bitmaps = qcow2_bitmaps_store,
    .bitmaps_arm = qcow2_bitmaps_arm,
    .bitmap_write_words = qcow2_bitmap_write_words,
    .bitmap_set_flags = qcow2_bitmap_set_flags,
};
