/*
 * Which host clusters of a qcow2 image hold metadata, and the check every
 * write makes against them. A hostile image can point an L2 entry (or an
 * L1 entry, a refcount table entry, ...) at the image's own metadata; a
 * guest write through it would then overwrite an L2 table or a refcount
 * block. QEMU refuses such writes ("Preventing invalid write on metadata")
 * and marks the image corrupt; so does tern, for every kind QEMU knows
 * (its QCOW2_OL_* set: header, active and inactive L1 and L2 tables,
 * refcount table and blocks, snapshot table, bitmap directory) plus the
 * bitmaps' tables and data clusters.
 *
 * The map is a hash table from cluster index to a mask of kinds, kept for
 * writable nodes only. It is built from the metadata at open and after
 * rare whole-image changes (snapshot create/apply/delete, bitmap store,
 * repair); the write path's own metadata changes (new or copied L2 tables,
 * L1 growth, refcount blocks and table growth) update it in place. A guest
 * write looks up each cluster it touches: one hash lookup per cluster,
 * next to the L2 and refcount cache lookups the write makes anyway.
 */
#include "block/qcow2.h"
#include "block/block-int.h"

G_STATIC_ASSERT(sizeof(gpointer) >= sizeof(uint64_t));

/* QEMU's names (qcow2_check_metadata_overlap), so messages match. */
static const char *const kind_names[] = {
    "qcow2_header", "active L1 table", "active L2 table", "refcount table",
    "refcount block", "snapshot table", "inactive L1 table",
    "inactive L2 table", "bitmap directory", "bitmap table", "bitmap data",
};
G_STATIC_ASSERT(G_N_ELEMENTS(kind_names) == QCOW2_OL_NB_KINDS);

static GHashTable *map_new(void)
{
    return g_hash_table_new(g_direct_hash, g_direct_equal);
}

static void map_update(BDRVQcow2State *s, GHashTable *map, uint32_t kind,
                       uint64_t off, uint64_t len, bool add)
{
    if (!len || off + len < off) {
        return;
    }
    for (uint64_t c = off >> s->cluster_bits;
         c <= (off + len - 1) >> s->cluster_bits; c++) {
        gpointer key = GSIZE_TO_POINTER(c);
        uint32_t old = GPOINTER_TO_UINT(g_hash_table_lookup(map, key));
        uint32_t now = add ? old | kind : old & ~kind;
        if (now) {
            g_hash_table_insert(map, key, GUINT_TO_POINTER(now));
        } else if (old) {
            g_hash_table_remove(map, key);
        }
    }
}

void qcow2_meta_add(BlockNode *bs, uint32_t kind, uint64_t off, uint64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    if (s->meta) {
        map_update(s, s->meta, kind, off, len, true);
    }
}

void qcow2_meta_remove(BlockNode *bs, uint32_t kind, uint64_t off,
                       uint64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    if (s->meta) {
        map_update(s, s->meta, kind, off, len, false);
    }
}

/* The L2 tables an L1 table points at (entries as in memory). */
static void add_l2_tables(BDRVQcow2State *s, GHashTable *map, uint32_t kind,
                          const uint64_t *l1, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l2 = l1[i] & QCOW2_L1E_OFFSET_MASK;
        map_update(s, map, kind, l2, l2 ? s->cluster_size : 0, true);
    }
}

static bool add_snapshot(BlockNode *bs, GHashTable *map,
                         const Qcow2Snapshot *sn, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *l1 = g_new(uint64_t, MAX(sn->l1_size, 1));

    map_update(s, map, QCOW2_OL_INACTIVE_L1, sn->l1_table_offset,
               (uint64_t)sn->l1_size * 8, true);
    if (!qcow2_file_pread(bs, sn->l1_table_offset, l1,
                          (size_t)sn->l1_size * 8, errp)) {
        g_prefix_error(errp, "snapshot '%s': ", sn->id_str);
        return false;
    }
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        l1[i] = GUINT64_FROM_BE(l1[i]);
    }
    add_l2_tables(s, map, QCOW2_OL_INACTIVE_L2, l1, sn->l1_size);
    return true;
}

GHashTable *qcow2_meta_build(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GHashTable) map = map_new();

    map_update(s, map, QCOW2_OL_MAIN_HEADER, 0, s->cluster_size, true);
    map_update(s, map, QCOW2_OL_ACTIVE_L1, s->l1_table_offset,
               (uint64_t)s->l1_size * 8, true);
    add_l2_tables(s, map, QCOW2_OL_ACTIVE_L2, s->l1_table, s->l1_size);
    map_update(s, map, QCOW2_OL_REFCOUNT_TABLE, s->refcount_table_offset,
               (uint64_t)s->refcount_table_size * 8, true);
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t rb = s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK;
        map_update(s, map, QCOW2_OL_REFCOUNT_BLOCK, rb,
                   rb ? s->cluster_size : 0, true);
    }
    if (s->nb_snapshots) {
        map_update(s, map, QCOW2_OL_SNAPSHOT_TABLE, s->snapshots_offset,
                   s->snapshots_size, true);
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (!add_snapshot(bs, map, &s->snapshots[i], errp)) {
            return NULL;
        }
    }
    /* Not validated before the bitmaps are loaded: only what lies in the
     * file (a directory that does not fails the load). */
    uint64_t flen = qcow2_file_length(bs);
    if (s->nb_bitmaps && s->bitmap_directory_offset < flen) {
        map_update(s, map, QCOW2_OL_BITMAP_DIRECTORY,
                   s->bitmap_directory_offset,
                   MIN(s->bitmap_directory_size,
                       flen - s->bitmap_directory_offset), true);
    }
    qcow2_bitmaps_add_metadata(bs, map);
    return g_steal_pointer(&map);
}

void qcow2_meta_add_to(BlockNode *bs, GHashTable *map, uint32_t kind,
                       uint64_t off, uint64_t len)
{
    map_update(bs->opaque, map, kind, off, len, true);
}

bool qcow2_meta_rebuild(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    GHashTable *map;

    if (bs->read_only) {
        return true;            /* nothing is written: no map needed */
    }
    map = qcow2_meta_build(bs, errp);
    g_clear_pointer(&s->meta, g_hash_table_unref);
    if (!map) {
        /* Without a map writes cannot be checked: stop them. */
        s->unusable = true;
        g_prefix_error(errp, "qcow2: cannot map the image's metadata: ");
        return false;
    }
    s->meta = map;
    return true;
}

bool qcow2_meta_rebuild_after(BlockNode *bs, bool ok, GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (!qcow2_meta_rebuild(bs, ok ? errp : &err)) {
        return false;
    }
    return ok;
}

void qcow2_meta_free(BDRVQcow2State *s)
{
    g_clear_pointer(&s->meta, g_hash_table_unref);
}

bool qcow2_meta_verify(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GHashTable) fresh = NULL;

    if (!s->meta) {
        return true;
    }
    fresh = qcow2_meta_build(bs, NULL);
    if (!fresh) {
        return true;            /* unreadable now: nothing to compare */
    }
    GHashTable *maps[2] = { s->meta, fresh };
    for (int i = 0; i < 2; i++) {
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, maps[i]);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            uint32_t live = GPOINTER_TO_UINT(g_hash_table_lookup(s->meta, key));
            uint32_t disk = GPOINTER_TO_UINT(g_hash_table_lookup(fresh, key));
            if (live != disk) {
                g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                            "qcow2: cluster %" PRIu64 " holds metadata %#x "
                            "by the map, %#x by the image",
                            (uint64_t)GPOINTER_TO_SIZE(key), live, disk);
                return false;
            }
        }
    }
    return true;
}

uint32_t qcow2_meta_kinds(BlockNode *bs, uint64_t off, uint64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t hit = 0;

    if (!s->meta || !len) {
        return 0;
    }
    uint64_t last = off + len - 1 < off ? UINT64_MAX : off + len - 1;
    for (uint64_t c = off >> s->cluster_bits; c <= last >> s->cluster_bits;
         c++) {
        hit |= GPOINTER_TO_UINT(g_hash_table_lookup(s->meta,
                                                    GSIZE_TO_POINTER(c)));
    }
    return hit;
}

/* Of several kinds, the one QEMU's check reports: it tests them in this
 * order and stops at the first. */
const char *qcow2_meta_kind_name(uint32_t kinds)
{
    static const uint32_t order[] = {
        QCOW2_OL_MAIN_HEADER, QCOW2_OL_ACTIVE_L1, QCOW2_OL_REFCOUNT_TABLE,
        QCOW2_OL_SNAPSHOT_TABLE, QCOW2_OL_INACTIVE_L1, QCOW2_OL_ACTIVE_L2,
        QCOW2_OL_REFCOUNT_BLOCK, QCOW2_OL_INACTIVE_L2,
        QCOW2_OL_BITMAP_DIRECTORY, QCOW2_OL_BITMAP_TABLE, QCOW2_OL_BITMAP_DATA,
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(order) == QCOW2_OL_NB_KINDS);
    for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
        if (kinds & order[i]) {
            return kind_names[__builtin_ctz(order[i])];
        }
    }
    return "nothing";
}

bool qcow2_pre_write_check(BlockNode *bs, uint32_t ign, uint64_t off,
                           uint64_t len, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t hit;

    if (s->unusable) {
        return qcow2_check_usable(bs, errp);
    }
    hit = qcow2_meta_kinds(bs, off, len) & ~ign;
    if (!hit) {
        return true;
    }
    qcow2_signal_corruption(bs, errp, "Preventing invalid write on metadata "
                            "(overlaps with %s)", qcow2_meta_kind_name(hit));
    return false;
}
