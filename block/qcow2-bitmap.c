/*
 * Persistent dirty bitmaps in qcow2 (the hooks declared in block/qcow2.h):
 * loading them on open; while the image is open read-write, either laying
 * them out for write-intent updates (crash-safe, block/write-intent.c) or
 * marking them IN_USE as QEMU does; storing them on close, removing them,
 * and reporting them to check and info. Facts from QEMU's
 * docs/interop/qcow2.txt, "Bitmaps":
 *
 * Header extension 0x23852875 (24 bytes, big-endian):
 *    0 nb_bitmaps (<= 65535)   4 reserved (0)
 *    8 bitmap_directory_size (<= 64 MiB)   16 bitmap_directory_offset
 * valid only while autoclear feature bit 0 is set (qcow2.c drops it if not).
 *
 * Directory entry (big-endian, padded to 8 bytes):
 *    0 bitmap_table_offset (cluster aligned)   8 bitmap_table_size (entries)
 *   12 flags: 1 IN_USE, 2 AUTO, 4 EXTRA_DATA_COMPATIBLE; others reserved
 *   16 type (1 = dirty tracking)   17 granularity_bits   18 name_size
 *   20 extra_data_size   24 extra data, then the name (not NUL-terminated)
 *
 * Bitmap table entry (be64): bits 9..55 the data cluster's offset; if that is
 * 0, bit 0 says the cluster reads as all ones (1) or all zeroes (0). Data
 * clusters hold the bitmap in QEMU's serialized layout (LE 64-bit words).
 *
 * Crash safety: new tables, data and directory go to freshly allocated
 * clusters; the header points at them only after they and their refcounts
 * are durable (fdatasync), and old clusters are freed only after the header
 * is. A rewrite of the whole directory in place (IN_USE marking) runs with
 * the autoclear bit cleared, so a torn directory is ignored rather than
 * trusted; a crash-safe bitmap's flags are one aligned 4-byte write.
 *
 * Crash-safe layout ("armed"): every data cluster of the bitmap allocated,
 * all in one contiguous run (a span of words is one in-place write), flags
 * AUTO per the enabled state and never IN_USE. A span written in place
 * only ever gains bits before a write relies on it, so any mix of old and
 * new sectors is a valid bitmap; QEMU reads it as an ordinary one.
 *
 * Everything here runs with the node's lock held.
 */
#include <string.h>

#include "block/qcow2.h"
#include "block/block-int.h"
#include "block/dirty-bitmap.h"
#include "block/write-intent.h"

#define BME_FLAG_IN_USE         (1u << 0)
#define BME_FLAG_AUTO           (1u << 1)
#define BME_FLAG_EXTRA_COMPAT   (1u << 2)
#define BME_RESERVED_FLAGS      (~7u)
#define BME_TYPE_DIRTY_TRACKING 1
#define BME_MIN_GRAN_BITS       9
#define BME_MAX_GRAN_BITS       31
#define BME_MAX_NAME_SIZE       1023
#define BME_MAX_BITMAPS         65535
#define BME_MAX_DIR_SIZE        (64 * MiB)
#define BME_MAX_TABLE_SIZE      0x8000000u     /* entries */
#define BME_MAX_PHYS_SIZE       (512 * MiB)    /* table_size * cluster_size */
#define BME_ENTRY_FIXED         24
#define BME_TE_OFFSET_MASK      0x00fffffffffffe00ULL
#define BME_TE_RESERVED_MASK    0xff000000000001feULL
#define BME_TE_ALL_ONES         1ULL

/* One directory entry, host-endian. */
typedef struct Qcow2BitmapEntry {
    uint64_t table_offset;
    uint32_t table_size;
    uint32_t flags;
    uint8_t type;
    uint8_t gran_bits;
    char *name;
    uint32_t extra_size;
    uint8_t *extra;
    uint64_t armed_data;      /* not on disk: the contiguous data run of a
                               * crash-safe layout, 0 if not laid out so */
} Qcow2BitmapEntry;

/* s->bitmaps: the directory as it is on disk now. */
typedef struct Qcow2Bitmaps {
    GPtrArray *dir;           /* of Qcow2BitmapEntry * */
} Qcow2Bitmaps;

static void entry_free(gpointer p)
{
    Qcow2BitmapEntry *e = p;

    g_free(e->name);
    g_free(e->extra);
    g_free(e);
}

static Qcow2BitmapEntry *entry_copy(const Qcow2BitmapEntry *e)
{
    Qcow2BitmapEntry *c = g_memdup2(e, sizeof(*e));

    c->name = g_strdup(e->name);
    c->extra = g_memdup2(e->extra, e->extra_size);
    return c;
}

static BDRVQcow2State *qstate(BlockNode *bs)
{
    return bs->opaque;
}

static Qcow2Bitmaps *bstate(BlockNode *bs)
{
    BDRVQcow2State *s = qstate(bs);

    if (!s->bitmaps) {
        Qcow2Bitmaps *b = g_new0(Qcow2Bitmaps, 1);

        b->dir = g_ptr_array_new_with_free_func(entry_free);
        s->bitmaps = b;
    }
    return s->bitmaps;
}

/* What a bitmap cluster holds. */
typedef enum BitmapMeta {
    BITMAP_DIRECTORY,
    BITMAP_TABLE,
    BITMAP_DATA,
} BitmapMeta;

/* The overlap map's kind (qcow2-overlap.c) for each. */
static uint32_t meta_kind(BitmapMeta kind)
{
    static const uint32_t kinds[] = {
        [BITMAP_DIRECTORY] = QCOW2_OL_BITMAP_DIRECTORY,
        [BITMAP_TABLE] = QCOW2_OL_BITMAP_TABLE,
        [BITMAP_DATA] = QCOW2_OL_BITMAP_DATA,
    };

    return kinds[kind];
}

/*
 * Every cluster the bitmap code takes for its directory, tables and data
 * while the image is open comes from here, and goes back through
 * bitmap_clusters_free(): the one place that knows which clusters are
 * bitmap metadata, and of which kind. They keep the overlap map true as
 * they go, so a guest write through a hostile L2 entry can never land on a
 * bitmap cluster, even between a store's allocations and the rebuild of
 * the map that ends it.
 */
static int64_t bitmap_clusters_alloc(BlockNode *bs, BitmapMeta kind,
                                     uint64_t size, GError **errp)
{
    int64_t off = qcow2_alloc_clusters(bs, size, errp);

    if (off > 0) {
        qcow2_meta_add(bs, meta_kind(kind), (uint64_t)off, size);
    }
    return off;
}

static void bitmap_clusters_free(BlockNode *bs, BitmapMeta kind,
                                 uint64_t offset, uint64_t size)
{
    qcow2_meta_remove(bs, meta_kind(kind), offset, size);
    qcow2_free_clusters(bs, offset, size);
}

static size_t entry_disk_size(const Qcow2BitmapEntry *e)
{
    return ALIGN_UP(BME_ENTRY_FIXED + (size_t)e->extra_size + strlen(e->name),
                    (size_t)8);
}

/* Entries the bitmap needs: one per cluster of serialized bits. */
static uint64_t table_entries_for(BDRVQcow2State *s, uint64_t disk_size,
                                  int gran_bits)
{
    uint64_t bits = DIV_ROUND_UP(disk_size, 1ULL << gran_bits);

    return DIV_ROUND_UP(bits, (uint64_t)s->cluster_size * 8);
}

/* ---- Parsing and validation ---- */

/* A byte range of metadata, for overlap checks; kind is a printf format
 * taking the bitmap name (or none for the image's own metadata). */
typedef struct MetaRange {
    uint64_t start, len;
    const char *kind;
    const char *name;         /* borrowed from the directory entry */
} MetaRange;

static void ranges_add(GArray *ranges, uint64_t start, uint64_t len,
                       const char *kind, const char *name)
{
    MetaRange r = { start, len, kind, name };

    if (len) {
        g_array_append_val(ranges, r);
    }
}

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const MetaRange *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

static char *range_describe(const MetaRange *r)
{
    g_autofree char *what = g_strdup_printf(r->kind, r->name);

    return g_strdup_printf("%s at 0x%" PRIx64, what, r->start);
}

/* Fails if any two ranges share a byte. Ranges are known not to wrap. */
static bool ranges_check_overlap(GArray *ranges, GError **errp)
{
    g_array_sort(ranges, range_cmp);
    for (guint i = 1; i < ranges->len; i++) {
        MetaRange *a = &g_array_index(ranges, MetaRange, i - 1);
        MetaRange *b = &g_array_index(ranges, MetaRange, i);

        if (a->start + a->len > b->start) {
            g_autofree char *da = range_describe(a);
            g_autofree char *db = range_describe(b);

            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "Corrupt bitmaps: %s overlaps %s", da, db);
            return false;
        }
    }
    return true;
}

/* The image's fixed metadata, which no bitmap structure may overlap. */
static GArray *fixed_metadata_ranges(BDRVQcow2State *s)
{
    GArray *r = g_array_new(FALSE, FALSE, sizeof(MetaRange));

    ranges_add(r, 0, s->cluster_size, "the image header", NULL);
    ranges_add(r, s->l1_table_offset, (uint64_t)s->l1_size * 8,
               "the L1 table", NULL);
    ranges_add(r, s->refcount_table_offset,
               (uint64_t)s->refcount_table_size * 8, "the refcount table",
               NULL);
    ranges_add(r, s->snapshots_offset, s->snapshots_size,
               "the snapshot table", NULL);
    return r;
}

/* offset/len must be cluster aligned (offset) and lie inside the file. */
static bool check_area(BlockNode *bs, uint64_t offset, uint64_t len,
                       const char *what, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t flen = qcow2_file_length(bs);

    if (qcow2_offset_into_cluster(s, offset)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmaps: %s at 0x%" PRIx64 " is not cluster"
                    " aligned", what, offset);
        return false;
    }
    if (offset == 0 || offset > flen || len > flen - offset) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmaps: %s at 0x%" PRIx64 " (+%" PRIu64
                    " bytes) lies outside the image file (%" PRIu64 " bytes)",
                    what, offset, len, flen);
        return false;
    }
    return true;
}

/* The entry's table: a size tern supports, inside the file, aligned. */
static bool check_table(BlockNode *bs, const Qcow2BitmapEntry *e,
                        GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    g_autofree char *what = g_strdup_printf("bitmap '%s' table", e->name);

    if (e->table_size > BME_MAX_TABLE_SIZE ||
        (uint64_t)e->table_size * s->cluster_size > BME_MAX_PHYS_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap '%s' has a table of %" PRIu32 " entries, more"
                    " than supported", e->name, e->table_size);
        return false;
    }
    if (e->table_size == 0) {
        return true;
    }
    return check_area(bs, e->table_offset, (uint64_t)e->table_size * 8, what,
                      errp);
}

static bool check_entry(BlockNode *bs, const Qcow2BitmapEntry *e,
                        GError **errp)
{
    BDRVQcow2State *s = qstate(bs);

    if (e->flags & BME_RESERVED_FLAGS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap '%s' has unknown flags 0x%" PRIx32, e->name,
                    e->flags & BME_RESERVED_FLAGS);
        return false;
    }
    if (e->type != BME_TYPE_DIRTY_TRACKING) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "Bitmap '%s' has unsupported type %u", e->name, e->type);
        return false;
    }
    if (e->gran_bits < BME_MIN_GRAN_BITS || e->gran_bits > BME_MAX_GRAN_BITS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "Bitmap '%s' has granularity 2^%u; supported are 2^%d"
                    " to 2^%d bytes", e->name, e->gran_bits,
                    BME_MIN_GRAN_BITS, BME_MAX_GRAN_BITS);
        return false;
    }
    if (!check_table(bs, e, errp)) {
        return false;
    }
    if (table_entries_for(s, bs->size, e->gran_bits) > e->table_size) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap '%s' table (%" PRIu32 " entries) does not cover"
                    " the %" PRIu64 "-byte disk", e->name, e->table_size,
                    bs->size);
        return false;
    }
    return true;
}

/* Parses one entry at buf[*pos]; advances *pos past its padding. */
static Qcow2BitmapEntry *parse_entry(const uint8_t *buf, size_t len,
                                     size_t *pos, GError **errp)
{
    const uint8_t *p = buf + *pos;
    Qcow2BitmapEntry *e;
    uint16_t name_size;
    size_t total;

    if (len - *pos < BME_ENTRY_FIXED) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmap directory: entry at byte %zu is"
                    " truncated", *pos);
        return NULL;
    }
    e = g_new0(Qcow2BitmapEntry, 1);
    e->table_offset = GUINT64_FROM_BE(*(const uint64_t *)(p + 0));
    e->table_size = GUINT32_FROM_BE(*(const uint32_t *)(p + 8));
    e->flags = GUINT32_FROM_BE(*(const uint32_t *)(p + 12));
    e->type = p[16];
    e->gran_bits = p[17];
    name_size = GUINT16_FROM_BE(*(const uint16_t *)(p + 18));
    e->extra_size = GUINT32_FROM_BE(*(const uint32_t *)(p + 20));
    total = ALIGN_UP(BME_ENTRY_FIXED + (uint64_t)e->extra_size + name_size,
                     (uint64_t)8);
    if (name_size == 0 || name_size > BME_MAX_NAME_SIZE ||
        total > len - *pos) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmap directory: entry at byte %zu has a bad"
                    " name size (%u) or extra data size (%" PRIu32 ")",
                    *pos, name_size, e->extra_size);
        g_free(e);
        return NULL;
    }
    e->extra = g_memdup2(p + BME_ENTRY_FIXED, e->extra_size);
    e->name = g_strndup((const char *)p + BME_ENTRY_FIXED + e->extra_size,
                        name_size);
    if (strlen(e->name) != name_size) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmap directory: a bitmap name contains a NUL"
                    " byte");
        entry_free(e);
        return NULL;
    }
    *pos += total;
    return e;
}

static bool check_extension(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);

    if (s->nb_bitmaps > BME_MAX_BITMAPS || s->bitmap_directory_size == 0 ||
        s->bitmap_directory_size > BME_MAX_DIR_SIZE ||
        s->bitmap_directory_size < (uint64_t)s->nb_bitmaps * BME_ENTRY_FIXED) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmaps extension: %" PRIu32 " bitmaps in a"
                    " %" PRIu64 "-byte directory", s->nb_bitmaps,
                    s->bitmap_directory_size);
        return false;
    }
    return check_area(bs, s->bitmap_directory_offset,
                      s->bitmap_directory_size, "the bitmap directory", errp);
}

/* Reads a bitmap table, host-endian, validating every entry. */
static uint64_t *read_table(BlockNode *bs, const Qcow2BitmapEntry *e,
                            GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t *t = g_new(uint64_t, MAX(e->table_size, 1u));
    uint64_t flen = qcow2_file_length(bs);

    if (e->table_size &&
        !qcow2_file_pread(bs, e->table_offset, t, e->table_size * 8ULL,
                          errp)) {
        g_free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < e->table_size; i++) {
        uint64_t v = GUINT64_FROM_BE(t[i]), off = v & BME_TE_OFFSET_MASK;

        t[i] = v;
        if ((v & BME_TE_RESERVED_MASK) || (off && (v & BME_TE_ALL_ONES)) ||
            qcow2_offset_into_cluster(s, off) ||
            (off && (off > flen || flen - off < s->cluster_size))) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "Corrupt bitmap '%s': table entry %" PRIu32
                        " (0x%016" PRIx64 ") is invalid", e->name, i, v);
            g_free(t);
            return NULL;
        }
    }
    return t;
}

/* Adds the data clusters a bitmap's table names (validating it). */
static bool add_data_ranges(BlockNode *bs, const Qcow2BitmapEntry *e,
                            GArray *ranges, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    g_autofree uint64_t *table = read_table(bs, e, errp);

    if (!table) {
        return false;
    }
    for (uint32_t i = 0; i < e->table_size; i++) {
        ranges_add(ranges, table[i] & BME_TE_OFFSET_MASK,
                   table[i] & BME_TE_OFFSET_MASK ? s->cluster_size : 0,
                   "bitmap '%s' data", e->name);
    }
    return true;
}

/*
 * Bitmap tables and data must not lie on an L2 table, a refcount block or
 * guest data either: storing would later drop the reference they share.
 * ranges holds the fixed metadata (name NULL) and the bitmaps' structures.
 */
static bool check_not_in_use_elsewhere(BlockNode *bs, GArray *ranges,
                                       GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    g_autoptr(GHashTable) clusters = g_hash_table_new(g_direct_hash,
                                                      g_direct_equal);
    Qcow2ClusterUser user;

    for (guint i = 0; i < ranges->len; i++) {
        MetaRange *r = &g_array_index(ranges, MetaRange, i);

        if (!r->name) {
            continue;
        }
        for (uint64_t c = r->start >> s->cluster_bits;
             c <= (r->start + r->len - 1) >> s->cluster_bits; c++) {
            g_hash_table_insert(clusters, GSIZE_TO_POINTER(c), r);
        }
    }
    qcow2_find_cluster_user(bs, clusters, &user);
    if (user.found) {
        g_autofree char *d = range_describe(user.value);

        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmaps: %s overlaps %s at 0x%" PRIx64, d,
                    user.what, user.offset);
        return false;
    }
    return true;
}

/* Reads and validates the directory named by the header extension. */
static bool read_directory(BlockNode *bs, GPtrArray *dir, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    g_autofree uint8_t *buf = NULL;
    g_autoptr(GArray) ranges = NULL;
    size_t pos = 0;

    if (!check_extension(bs, errp)) {
        return false;
    }
    buf = g_malloc(s->bitmap_directory_size);
    if (!qcow2_file_pread(bs, s->bitmap_directory_offset, buf,
                          s->bitmap_directory_size, errp)) {
        return false;
    }
    ranges = fixed_metadata_ranges(s);
    ranges_add(ranges, s->bitmap_directory_offset, s->bitmap_directory_size,
               "the bitmap directory", NULL);
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        Qcow2BitmapEntry *e = parse_entry(buf, s->bitmap_directory_size, &pos,
                                          errp);

        if (!e) {
            return false;
        }
        g_ptr_array_add(dir, e);
        for (guint j = 0; j + 1 < dir->len; j++) {
            if (!strcmp(((Qcow2BitmapEntry *)dir->pdata[j])->name, e->name)) {
                g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                            "Corrupt bitmap directory: two bitmaps are"
                            " named '%s'", e->name);
                return false;
            }
        }
        if (!check_entry(bs, e, errp)) {
            return false;
        }
        ranges_add(ranges, e->table_offset, (uint64_t)e->table_size * 8,
                   "bitmap '%s' table", e->name);
    }
    if (pos != s->bitmap_directory_size) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Corrupt bitmap directory: %" PRIu64 " bytes, but its %"
                    PRIu32 " entries use %zu", s->bitmap_directory_size,
                    s->nb_bitmaps, pos);
        return false;
    }
    /* Tables first: a table lying on other metadata is named as such. */
    if (!ranges_check_overlap(ranges, errp)) {
        return false;
    }
    for (guint i = 0; i < dir->len; i++) {
        if (!add_data_ranges(bs, dir->pdata[i], ranges, errp)) {
            return false;
        }
    }
    return ranges_check_overlap(ranges, errp) &&
           check_not_in_use_elsewhere(bs, ranges, errp);
}

/* ---- Loading ---- */

static bool load_bitmap_data(BlockNode *bs, const Qcow2BitmapEntry *e,
                             BdrvDirtyBitmap *bm, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t size = bdrv_dirty_bitmap_size(bm);
    uint64_t cov = bdrv_dirty_bitmap_serialization_coverage(bm,
                                                            s->cluster_size);
    g_autofree uint64_t *table = NULL;
    g_autofree uint8_t *buf = g_malloc(s->cluster_size);

    table = read_table(bs, e, errp);
    if (!table) {
        return false;
    }
    for (uint64_t i = 0, off = 0; off < size; i++, off += cov) {
        uint64_t len = MIN(cov, size - off);
        uint64_t data = table[i] & BME_TE_OFFSET_MASK;
        bool ok;

        if (!data) {
            ok = (table[i] & BME_TE_ALL_ONES)
                 ? bdrv_dirty_bitmap_deserialize_ones(bm, off, len, errp)
                 : true;    /* a new bitmap is all zeroes already */
        } else {
            uint64_t n = bdrv_dirty_bitmap_serialization_size(bm, off, len);

            ok = qcow2_file_pread(bs, data, buf, n, errp) &&
                 bdrv_dirty_bitmap_deserialize_part(bm, buf, off, len, errp);
        }
        if (!ok) {
            return false;
        }
    }
    bdrv_dirty_bitmap_deserialize_finish(bm);
    return true;
}

/* Creates the in-memory bitmap for one entry and fills it. */
static bool load_one(BlockNode *bs, const Qcow2BitmapEntry *e,
                     GPtrArray *created, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    BdrvDirtyBitmap *bm;

    if (e->extra_size && !(e->flags & BME_FLAG_EXTRA_COMPAT)) {
        tern_warn("bitmap '%s' has extra data tern does not know; it is kept"
                  " in the image but not used", e->name);
        return true;
    }
    if ((e->flags & BME_FLAG_IN_USE) && bdrv_find_dirty_bitmap(bs, e->name)) {
        /* Migrated in before the image was loaded (shared storage): the
         * in-memory bitmap is the live one, the IN_USE entry its stale copy;
         * storing replaces the entry. */
        return true;
    }
    bm = bdrv_create_dirty_bitmap(bs, 1u << e->gran_bits, e->name, errp);
    if (!bm) {
        return false;
    }
    g_ptr_array_add(created, bm);
    bdrv_dirty_bitmap_set_persistence(bm, true);
    if (e->flags & BME_FLAG_IN_USE) {
        /* Not stored cleanly (a crash, or another process has it open). */
        bdrv_dirty_bitmap_set_inconsistent(bm);
    } else {
        if (table_entries_for(s, bs->size, e->gran_bits) != e->table_size) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "Corrupt bitmap '%s': table has %" PRIu32 " entries,"
                        " the disk size needs %" PRIu64, e->name,
                        e->table_size,
                        table_entries_for(s, bs->size, e->gran_bits));
            return false;
        }
        if (!load_bitmap_data(bs, e, bm, errp)) {
            return false;
        }
        if (!(e->flags & BME_FLAG_AUTO)) {
            bdrv_disable_dirty_bitmap(bm);
        }
    }
    bdrv_dirty_bitmap_set_readonly(bm, bs->read_only);
    return true;
}

bool qcow2_bitmaps_load(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    Qcow2Bitmaps *b = bstate(bs);
    g_autoptr(GPtrArray) created = NULL;

    g_ptr_array_set_size(b->dir, 0);
    if (s->nb_bitmaps == 0) {
        return true;
    }
    if (!read_directory(bs, b->dir, errp)) {
        g_ptr_array_set_size(b->dir, 0);
        return false;
    }
    created = g_ptr_array_new();
    for (guint i = 0; i < b->dir->len; i++) {
        Qcow2BitmapEntry *e = b->dir->pdata[i];

        if (!load_one(bs, e, created, errp)) {
            g_prefix_error(errp, "Could not load bitmap '%s': ", e->name);
            for (guint j = 0; j < created->len; j++) {
                bdrv_release_dirty_bitmap(created->pdata[j]);
            }
            g_ptr_array_set_size(b->dir, 0);
            return false;
        }
    }
    return true;
}

/* ---- Writing ---- */

static void entry_to_disk(const Qcow2BitmapEntry *e, uint8_t *p)
{
    size_t name_size = strlen(e->name);
    uint64_t t = GUINT64_TO_BE(e->table_offset);
    uint32_t ts = GUINT32_TO_BE(e->table_size);
    uint32_t fl = GUINT32_TO_BE(e->flags);
    uint16_t ns = GUINT16_TO_BE((uint16_t)name_size);
    uint32_t xs = GUINT32_TO_BE(e->extra_size);

    memset(p, 0, entry_disk_size(e));
    memcpy(p + 0, &t, 8);
    memcpy(p + 8, &ts, 4);
    memcpy(p + 12, &fl, 4);
    p[16] = e->type;
    p[17] = e->gran_bits;
    memcpy(p + 18, &ns, 2);
    memcpy(p + 20, &xs, 4);
    if (e->extra_size) {
        memcpy(p + BME_ENTRY_FIXED, e->extra, e->extra_size);
    }
    memcpy(p + BME_ENTRY_FIXED + e->extra_size, e->name, name_size);
}

static uint8_t *directory_to_disk(GPtrArray *dir, uint64_t *size)
{
    uint8_t *buf;
    size_t pos = 0;

    *size = 0;
    for (guint i = 0; i < dir->len; i++) {
        *size += entry_disk_size(dir->pdata[i]);
    }
    buf = g_malloc0(MAX(*size, 1));
    for (guint i = 0; i < dir->len; i++) {
        entry_to_disk(dir->pdata[i], buf + pos);
        pos += entry_disk_size(dir->pdata[i]);
    }
    return buf;
}

/* Frees a bitmap's data clusters and table; bad tables are leaked. (A
 * table need not cover the disk: it may be from before a resize.) */
static void free_bitmap_clusters(BlockNode *bs, const Qcow2BitmapEntry *e)
{
    BDRVQcow2State *s = qstate(bs);
    g_autoptr(GError) err = NULL;
    g_autofree uint64_t *table = NULL;

    if (e->table_size == 0 || !check_table(bs, e, &err) ||
        !(table = read_table(bs, e, &err))) {
        if (err) {
            tern_warn("leaking the clusters of bitmap '%s': %s", e->name,
                      err->message);
        }
        return;
    }
    for (uint32_t i = 0; i < e->table_size; i++) {
        if (table[i] & BME_TE_OFFSET_MASK) {
            bitmap_clusters_free(bs, BITMAP_DATA,
                                 table[i] & BME_TE_OFFSET_MASK,
                                 s->cluster_size);
        }
    }
    bitmap_clusters_free(bs, BITMAP_TABLE, e->table_offset,
                         e->table_size * 8ULL);
}

/*
 * Makes 'dir' the image's bitmap directory: writes it to new clusters, makes
 * it, the tables and data written before and their refcounts durable,
 * points the header at it, makes that durable, then frees the old one.
 */
static bool write_directory(BlockNode *bs, GPtrArray *dir, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t old_off = s->bitmap_directory_offset;
    uint64_t old_size = s->bitmap_directory_size;
    uint32_t old_nb = s->nb_bitmaps;
    uint64_t size;
    g_autofree uint8_t *buf = directory_to_disk(dir, &size);
    int64_t off = 0;

    if (dir->len > BME_MAX_BITMAPS || size > BME_MAX_DIR_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Too many bitmaps for one image");
        return false;
    }
    if (dir->len) {
        off = bitmap_clusters_alloc(bs, BITMAP_DIRECTORY, size, errp);
        if (off < 0 ||
            !qcow2_file_pwrite(bs, QCOW2_OL_BITMAP_DIRECTORY, off, buf, size,
                               errp)) {
            if (off > 0) {
                bitmap_clusters_free(bs, BITMAP_DIRECTORY, off, size);
            }
            return false;
        }
    }
    if (!qcow2_flush_all(bs, errp)) {
        return false;       /* leaked at worst */
    }
    s->nb_bitmaps = dir->len;
    s->bitmap_directory_offset = off;
    s->bitmap_directory_size = dir->len ? size : 0;
    qcow2_set_autoclear(bs, QCOW2_AUTOCLEAR_BITMAPS, dir->len != 0);
    if (!qcow2_update_header(bs, errp)) {
        /* The header may be either: leak the new directory, keep the old. */
        s->nb_bitmaps = old_nb;
        s->bitmap_directory_offset = old_off;
        s->bitmap_directory_size = old_size;
        qcow2_set_autoclear(bs, QCOW2_AUTOCLEAR_BITMAPS, old_nb != 0);
        return false;
    }
    if (old_nb && old_size) {
        bitmap_clusters_free(bs, BITMAP_DIRECTORY, old_off, old_size);
    }
    return true;
}

/* Rewrites the directory where it is (only flags changed, same size). */
static bool rewrite_directory_in_place(BlockNode *bs, GPtrArray *dir,
                                       GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t size;
    g_autofree uint8_t *buf = directory_to_disk(dir, &size);

    g_assert(size == s->bitmap_directory_size);
    qcow2_set_autoclear(bs, QCOW2_AUTOCLEAR_BITMAPS, false);
    if (!qcow2_update_header(bs, errp) ||
        !qcow2_file_pwrite(bs, QCOW2_OL_BITMAP_DIRECTORY,
                           s->bitmap_directory_offset, buf, size, errp) ||
        !qcow2_flush_caches(bs, errp)) {
        return false;
    }
    qcow2_set_autoclear(bs, QCOW2_AUTOCLEAR_BITMAPS, true);
    return qcow2_update_header(bs, errp);
}

bool qcow2_bitmaps_mark_in_use(BlockNode *bs, GError **errp)
{
    Qcow2Bitmaps *b = bstate(bs);
    bool changed = false;

    for (guint i = 0; i < b->dir->len; i++) {
        Qcow2BitmapEntry *e = b->dir->pdata[i];
        BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, e->name);

        if (bm && !bdrv_dirty_bitmap_inconsistent(bm) &&
            !(e->flags & BME_FLAG_IN_USE)) {
            e->flags |= BME_FLAG_IN_USE;
            changed = true;
        }
    }
    return !changed || rewrite_directory_in_place(bs, b->dir, errp);
}

bool qcow2_bitmaps_open_rw(BlockNode *bs, int flags, GError **errp)
{
    return (flags & BDRV_O_BITMAPS_IN_USE) ? qcow2_bitmaps_mark_in_use(bs, errp)
                                           : bdrv_write_intent_arm(bs, errp);
}

/* Serializes data cluster i of the bitmap into buf; *dirty says whether it
 * has any bit set. */
static bool bitmap_cluster(BlockNode *bs, BdrvDirtyBitmap *bm, uint32_t i,
                           uint8_t *buf, bool *dirty, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t size = bdrv_dirty_bitmap_size(bm);
    uint64_t cov = bdrv_dirty_bitmap_serialization_coverage(bm,
                                                            s->cluster_size);
    uint64_t start = i * cov, len = MIN(cov, size - start);

    memset(buf, 0, s->cluster_size);
    *dirty = bdrv_dirty_bitmap_next_dirty_area(bm, start, start + len,
                                               &(uint64_t){0},
                                               &(uint64_t){0});
    return !*dirty || bdrv_dirty_bitmap_serialize_part(bm, buf, start, len,
                                                       errp);
}

/*
 * Writes one bitmap's data clusters and fills table (be64 entries). Exact
 * layout: all-zero clusters stay unallocated. Armed: all n clusters in one
 * contiguous run, whose offset goes to e->armed_data.
 */
static bool store_data_clusters(BlockNode *bs, BdrvDirtyBitmap *bm,
                                Qcow2BitmapEntry *e, bool armed,
                                uint64_t *table, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint32_t n = e->table_size;
    g_autofree uint8_t *buf = g_malloc(s->cluster_size);
    int64_t run = 0;

    if (armed && n) {
        run = bitmap_clusters_alloc(bs, BITMAP_DATA,
                                    (uint64_t)n * s->cluster_size, errp);
        if (run < 0) {
            return false;
        }
        e->armed_data = run;
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t off = run + (int64_t)i * s->cluster_size;
        bool dirty;

        if (!bitmap_cluster(bs, bm, i, buf, &dirty, errp)) {
            return false;
        }
        if (!dirty && !armed) {
            table[i] = 0;
            continue;
        }
        if (!armed && (off = bitmap_clusters_alloc(bs, BITMAP_DATA,
                                                   s->cluster_size,
                                                   errp)) < 0) {
            return false;
        }
        table[i] = GUINT64_TO_BE((uint64_t)off);
        if (!qcow2_file_pwrite(bs, QCOW2_OL_BITMAP_DATA, off, buf,
                               s->cluster_size, errp)) {
            return false;
        }
    }
    return true;
}

/* Writes one bitmap's data clusters and table; fills e's table fields. */
static bool store_bitmap_data(BlockNode *bs, BdrvDirtyBitmap *bm,
                              Qcow2BitmapEntry *e, bool armed, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint32_t n = table_entries_for(s, bdrv_dirty_bitmap_size(bm),
                                   e->gran_bits);
    g_autofree uint64_t *table = g_new0(uint64_t, MAX(n, 1u));
    int64_t off;

    e->table_size = n;
    e->table_offset = 0;
    e->armed_data = 0;
    if (!store_data_clusters(bs, bm, e, armed, table, errp)) {
        goto fail;
    }
    if (n) {
        off = bitmap_clusters_alloc(bs, BITMAP_TABLE, n * 8ULL, errp);
        if (off < 0) {
            goto fail;
        }
        e->table_offset = off;
        if (!qcow2_file_pwrite(bs, QCOW2_OL_BITMAP_TABLE, off, table,
                               n * 8ULL, errp)) {
            goto fail;
        }
    }
    return true;

fail:
    /* Leaked rather than freed: the table may be half written. */
    e->table_offset = 0;
    e->table_size = 0;
    e->armed_data = 0;
    return false;
}

static bool wants_store(const BdrvDirtyBitmap *bm)
{
    return bdrv_dirty_bitmap_name(bm) &&
           bdrv_dirty_bitmap_get_persistence(bm) &&
           !bdrv_dirty_bitmap_inconsistent(bm) &&
           !bdrv_dirty_bitmap_readonly(bm);
}

static Qcow2BitmapEntry *find_entry(GPtrArray *dir, const char *name,
                                    guint *index)
{
    for (guint i = 0; i < dir->len; i++) {
        Qcow2BitmapEntry *e = dir->pdata[i];

        if (!strcmp(e->name, name)) {
            if (index) {
                *index = i;
            }
            return e;
        }
    }
    return NULL;
}

/*
 * The entry a bitmap that is not stored keeps: as on disk, except that one
 * laid out crash-safe becomes IN_USE, since nothing keeps it true any more
 * (its bitmap travels in a migration stream, as QEMU leaves such bitmaps,
 * or was dropped from memory).
 */
static Qcow2BitmapEntry *kept_entry(const Qcow2BitmapEntry *e)
{
    Qcow2BitmapEntry *c = entry_copy(e);

    if (e->armed_data) {
        c->flags |= BME_FLAG_IN_USE;
    }
    c->armed_data = 0;
    return c;
}

/* e for bm, stored: a copy of its old entry or a new one. */
static Qcow2BitmapEntry *stored_entry(BlockNode *bs, BdrvDirtyBitmap *bm,
                                      const Qcow2BitmapEntry *old, bool armed,
                                      GError **errp)
{
    const char *name = bdrv_dirty_bitmap_name(bm);
    Qcow2BitmapEntry *e = old ? entry_copy(old)
                              : g_new0(Qcow2BitmapEntry, 1);

    if (!old) {
        e->name = g_strdup(name);
        e->type = BME_TYPE_DIRTY_TRACKING;
    }
    e->gran_bits = __builtin_ctz(bdrv_dirty_bitmap_granularity(bm));
    e->flags &= BME_FLAG_EXTRA_COMPAT;
    e->flags |= bdrv_dirty_bitmap_enabled(bm) ? BME_FLAG_AUTO : 0;
    if (!store_bitmap_data(bs, bm, e, armed, errp)) {
        g_prefix_error(errp, "Cannot store bitmap '%s': ", name);
        entry_free(e);
        return NULL;
    }
    return e;
}

/* Stores every storable bitmap, exactly or armed; then frees the old. */
static bool store_all(BlockNode *bs, bool armed, GError **errp)
{
    Qcow2Bitmaps *b = bstate(bs);
    g_autoptr(GPtrArray) dir = g_ptr_array_new_with_free_func(entry_free);
    g_autoptr(GPtrArray) replaced = g_ptr_array_new();

    /* Start from the directory as on disk; replace what memory has. */
    for (guint i = 0; i < b->dir->len; i++) {
        g_ptr_array_add(dir, kept_entry(b->dir->pdata[i]));
    }
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *bm = l->data;
        Qcow2BitmapEntry *old, *e;
        guint idx;

        if (!wants_store(bm)) {
            continue;
        }
        old = find_entry(b->dir, bdrv_dirty_bitmap_name(bm), &idx);
        e = stored_entry(bs, bm, old, armed, errp);
        if (!e) {
            return false;
        }
        if (old) {
            g_ptr_array_add(replaced, old);
            entry_free(dir->pdata[idx]);
            dir->pdata[idx] = e;
        } else {
            g_ptr_array_add(dir, e);
        }
    }
    if (!write_directory(bs, dir, errp)) {
        return false;
    }
    for (guint i = 0; i < replaced->len; i++) {
        free_bitmap_clusters(bs, replaced->pdata[i]);
    }
    g_ptr_array_unref(b->dir);
    b->dir = g_steal_pointer(&dir);
    /* The frees reach the file now: kill -9 later leaks nothing. */
    return qcow2_flush_caches(bs, errp);
}

bool qcow2_bitmaps_store(BlockNode *bs, GError **errp)
{
    if (!qcow2_meta_rebuild_after(bs, store_all(bs, false, errp), errp)) {
        return false;
    }
    bdrv_write_intent_drop(bs);     /* exact now: nothing to keep true */
    return true;
}

bool qcow2_bitmaps_arm(BlockNode *bs, GError **errp)
{
    return qcow2_meta_rebuild_after(bs, store_all(bs, true, errp), errp);
}

/* The entry laid out crash-safe for bm, and its byte position in the
 * directory. */
static Qcow2BitmapEntry *armed_entry(BlockNode *bs, BdrvDirtyBitmap *bm,
                                     uint64_t *pos, GError **errp)
{
    Qcow2Bitmaps *b = bstate(bs);
    const char *name = bdrv_dirty_bitmap_name(bm);

    *pos = 0;
    for (guint i = 0; name && i < b->dir->len; i++) {
        Qcow2BitmapEntry *e = b->dir->pdata[i];

        if (!strcmp(e->name, name)) {
            if (e->armed_data) {
                return e;
            }
            break;
        }
        *pos += entry_disk_size(e);
    }
    tern_invalid(errp, "Bitmap '%s' is not laid out for crash-safe updates",
                 name ? name : "");
    return NULL;
}

bool qcow2_bitmap_write_words(BlockNode *bs, BdrvDirtyBitmap *bm,
                              uint64_t first_word, uint64_t nwords,
                              const uint64_t *words, bool durable,
                              GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t pos, off;
    Qcow2BitmapEntry *e = armed_entry(bs, bm, &pos, errp);

    if (!e) {
        return false;
    }
    g_assert(first_word + nwords <=
             (uint64_t)e->table_size * s->cluster_size / 8);
    /* In place, inside the bitmap's own data run (BITMAP_DATA clusters). */
    off = e->armed_data + first_word * 8;
    return durable ? qcow2_file_pwrite_durable(bs, QCOW2_OL_BITMAP_DATA, off,
                                               words, nwords * 8, errp)
                   : qcow2_file_pwrite(bs, QCOW2_OL_BITMAP_DATA, off, words,
                                       nwords * 8, errp);
}

bool qcow2_bitmap_set_flags(BlockNode *bs, BdrvDirtyBitmap *bm, bool in_use,
                            GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    uint64_t pos;
    Qcow2BitmapEntry *e = armed_entry(bs, bm, &pos, errp);
    uint32_t flags, be;

    if (!e) {
        return false;
    }
    flags = (e->flags & BME_FLAG_EXTRA_COMPAT) |
            (bdrv_dirty_bitmap_enabled(bm) ? BME_FLAG_AUTO : 0) |
            (in_use ? BME_FLAG_IN_USE : 0);
    be = GUINT32_TO_BE(flags);
    /* Four aligned bytes of the directory (BITMAP_DIRECTORY clusters): a
     * torn write cannot split them. */
    if (!qcow2_file_pwrite_durable(bs, QCOW2_OL_BITMAP_DIRECTORY,
                                   s->bitmap_directory_offset + pos + 12,
                                   &be, 4, errp)) {
        return false;
    }
    e->flags = flags;
    return true;
}

static bool remove_bitmap(BlockNode *bs, const char *name, GError **errp)
{
    Qcow2Bitmaps *b = bstate(bs);
    g_autoptr(GPtrArray) dir = g_ptr_array_new_with_free_func(entry_free);
    Qcow2BitmapEntry *gone = NULL;

    for (guint i = 0; i < b->dir->len; i++) {
        Qcow2BitmapEntry *e = b->dir->pdata[i];

        if (!strcmp(e->name, name)) {
            gone = e;
        } else {
            g_ptr_array_add(dir, entry_copy(e));
        }
    }
    if (!gone) {
        return true;    /* persistent in memory only: nothing on disk yet */
    }
    if (!write_directory(bs, dir, errp)) {
        return false;
    }
    free_bitmap_clusters(bs, gone);
    g_ptr_array_unref(b->dir);
    b->dir = g_steal_pointer(&dir);
    return true;
}

bool qcow2_remove_persistent_bitmap(BlockNode *bs, const char *name,
                                    GError **errp)
{
    return qcow2_meta_rebuild_after(bs, remove_bitmap(bs, name, errp), errp);
}

bool qcow2_can_store_bitmap(BlockNode *bs, const char *name,
                            uint32_t granularity, GError **errp)
{
    BDRVQcow2State *s = qstate(bs);
    Qcow2Bitmaps *b = bstate(bs);
    int gran_bits = granularity ? __builtin_ctz(granularity) : 0;
    uint64_t n = 0;

    if (s->qcow_version < 3) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "Cannot store dirty bitmaps in qcow2 v2 files");
        return false;
    }
    if (gran_bits < BME_MIN_GRAN_BITS || gran_bits > BME_MAX_GRAN_BITS ||
        granularity != 1u << gran_bits) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Granularity of a persistent bitmap must be a power of"
                    " two between 512 B and 2 GiB");
        return false;
    }
    if (strlen(name) == 0 || strlen(name) > BME_MAX_NAME_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap name must be 1 to %d bytes", BME_MAX_NAME_SIZE);
        return false;
    }
    if (find_entry(b->dir, name, NULL)) {
        /* An entry tern keeps but did not load (unknown extra data). */
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "The image already has a bitmap named '%s'", name);
        return false;
    }
    if (table_entries_for(s, bs->size, gran_bits) * s->cluster_size >
        BME_MAX_PHYS_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Too much space will be occupied by the bitmap. Use"
                    " larger granularity");
        return false;
    }
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        const char *bn = bdrv_dirty_bitmap_name(l->data);

        n += bn && bdrv_dirty_bitmap_get_persistence(l->data) &&
             !find_entry(b->dir, bn, NULL);
    }
    if (b->dir->len + n >= BME_MAX_BITMAPS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Maximum number of persistent bitmaps is already"
                    " reached");
        return false;
    }
    return true;
}

void qcow2_bitmaps_close(BlockNode *bs)
{
    BDRVQcow2State *s = qstate(bs);
    Qcow2Bitmaps *b = s->bitmaps;

    /* bdrv_close() releases bitmaps too, but a failed open never gets
     * there: release the ones load created now. */
    bdrv_release_all_dirty_bitmaps(bs);
    if (b) {
        g_ptr_array_unref(b->dir);
        g_free(b);
        s->bitmaps = NULL;
    }
}

/* ---- check and info ---- */

void qcow2_bitmaps_check(BlockNode *bs, Qcow2CheckRefs *refs)
{
    BDRVQcow2State *s = qstate(bs);
    Qcow2Bitmaps *b = s->bitmaps;

    if (!b || !b->dir->len) {
        return;
    }
    qcow2_check_ref_range(bs, refs, s->bitmap_directory_offset,
                          s->bitmap_directory_size);
    for (guint i = 0; i < b->dir->len; i++) {
        const Qcow2BitmapEntry *e = b->dir->pdata[i];
        g_autoptr(GError) err = NULL;
        g_autofree uint64_t *table = NULL;

        if (e->table_size == 0) {
            continue;
        }
        qcow2_check_ref_range(bs, refs, e->table_offset, e->table_size * 8ULL);
        table = read_table(bs, e, &err);
        if (!table) {
            tern_warn("%s", err->message);
            refs->res->corruptions++;
            continue;
        }
        for (uint32_t j = 0; j < e->table_size; j++) {
            if (table[j] & BME_TE_OFFSET_MASK) {
                qcow2_check_ref_range(bs, refs, table[j] & BME_TE_OFFSET_MASK,
                                      s->cluster_size);
            }
        }
    }
}

void qcow2_bitmaps_add_metadata(BlockNode *bs, GHashTable *map)
{
    BDRVQcow2State *s = qstate(bs);
    Qcow2Bitmaps *b = s->bitmaps;

    for (guint i = 0; b && i < b->dir->len; i++) {
        const Qcow2BitmapEntry *e = b->dir->pdata[i];
        g_autoptr(GError) err = NULL;
        g_autofree uint64_t *table = NULL;

        if (e->table_size == 0) {
            continue;
        }
        qcow2_meta_add_to(bs, map, QCOW2_OL_BITMAP_TABLE, e->table_offset,
                          e->table_size * 8ULL);
        table = read_table(bs, e, &err);   /* bad ones failed the load */
        for (uint32_t j = 0; table && j < e->table_size; j++) {
            uint64_t off = table[j] & BME_TE_OFFSET_MASK;
            qcow2_meta_add_to(bs, map, QCOW2_OL_BITMAP_DATA, off,
                              off ? s->cluster_size : 0);
        }
    }
}

void qcow2_bitmaps_info(BlockNode *bs, BlockImageInfo *info)
{
    BDRVQcow2State *s = qstate(bs);
    Qcow2Bitmaps *b = s->bitmaps;

    if (!b || !b->dir->len) {
        return;     /* qemu-img info omits "bitmaps" when there are none */
    }
    info->bitmaps = g_ptr_array_new_with_free_func(
        (GDestroyNotify)block_bitmap_info_free);
    for (guint i = 0; i < b->dir->len; i++) {
        const Qcow2BitmapEntry *e = b->dir->pdata[i];
        BlockBitmapInfo *bi = g_new0(BlockBitmapInfo, 1);

        bi->name = g_strdup(e->name);
        bi->granularity = 1u << e->gran_bits;
        bi->in_use = e->flags & BME_FLAG_IN_USE;
        bi->auto_flag = e->flags & BME_FLAG_AUTO;
        g_ptr_array_add(info->bitmaps, bi);
    }
}
