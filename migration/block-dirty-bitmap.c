/*
 * Dirty-bitmap migration (include/migration/block-dirty-bitmap.h), following
 * QEMU's migration/block-dirty-bitmap.c on the wire:
 *   chunk  = flags (1 byte written; 1, 2 or 4 read), [u8 len, node name],
 *            [u8 len, bitmap name], body
 *   START  = be32 granularity, u8 flags (0x01 enabled, 0x02 persistent)
 *   BITS   = be64 start sector, be32 sectors, unless ZEROES: be64 size and
 *            the serialized bits, size rounded up to 32 bytes
 *   COMPLETE and EOS have no body; names are sent only when they change.
 * Source: START chunks at setup; the bits in chunks of 1 KiB either all at
 * completion, or, once the migration has switched to postcopy, in
 * rate-limited iterations while the destination runs; then COMPLETE. A
 * postcopy recovery sends every bitmap again (the destination ignores what
 * it completed already). Destination: every bitmap the load creates is busy
 * until it is complete and the guest has started; enabled ones record the
 * guest's writes in a successor that COMPLETE merges back. Every bitmap
 * operation runs with its node's lock held, as the block layer requires;
 * 'finish_lock' (taken first) guards the destination's list against
 * before_vm_start on the main loop.
 */
#include <string.h>

#include "migration/block-dirty-bitmap.h"
#include "migration/dirty-bitmap-wire.h"

#define DBM_CHUNK_BYTES  1024       /* bytes of serialized bits per chunk */
#define DBM_BUF_ALIGN    32         /* QEMU rounds buffers to 4 longs */
#define SECTOR_BITS      9

typedef struct SaveBitmap {
    BlockNode *bs;
    char node_name[256];        /* as sent: the drive's or the node's name */
    BdrvDirtyBitmap *bitmap;
    uint64_t total_sectors;
    uint64_t sectors_per_chunk;
    uint64_t cur_sector;
    uint8_t flags;
    bool bulk_completed;
} SaveBitmap;

/* A bitmap this load created. */
typedef struct LoadBitmap {
    BdrvDirtyBitmap *bitmap;
    char node_name[256];        /* as the stream named its node */
    bool enabled;               /* START's flag: records once the guest runs */
    bool migrated;              /* COMPLETE came */
} LoadBitmap;

struct DirtyBitmapMigration {
    DirtyBitmapNodes nodes;
    bool enabled;

    /* source */
    GPtrArray *save;                /* of SaveBitmap */
    bool bulk_completed;
    BlockNode *prev_bs;
    BdrvDirtyBitmap *prev_bitmap;

    /* destination: the names carry over between chunks and sections */
    uint32_t flags;
    char node_name[256];
    char bitmap_name[256];
    BlockNode *bs;
    BdrvDirtyBitmap *bitmap;
    GMutex finish_lock;             /* the three fields below */
    GSList *loaded;                 /* of LoadBitmap, newest first */
    bool vm_started;                /* before_vm_start ran */
    bool resumed;                   /* a postcopy recovery happened */
};

DirtyBitmapMigration *dirty_bitmap_migration_new(const DirtyBitmapNodes *nodes)
{
    DirtyBitmapMigration *dbm = g_new0(DirtyBitmapMigration, 1);

    dbm->nodes = *nodes;
    g_mutex_init(&dbm->finish_lock);
    return dbm;
}

static void save_cleanup(void *opaque);

void dirty_bitmap_migration_free(DirtyBitmapMigration *dbm)
{
    if (!dbm) {
        return;
    }
    save_cleanup(dbm);
    g_slist_free_full(dbm->loaded, g_free);
    g_mutex_clear(&dbm->finish_lock);
    g_free(dbm);
}

void dirty_bitmap_migration_set_enabled(DirtyBitmapMigration *dbm, bool on)
{
    dbm->enabled = on;
}

/* ---- source ---- */

static void put_flags(QEMUFile *f, uint32_t flags)
{
    /* QEMU writes one byte; all flags in use fit in it. */
    g_assert(!(flags & ~0x7fu));
    qemu_put_byte(f, flags);
}

static void send_header(DirtyBitmapMigration *dbm, QEMUFile *f,
                        SaveBitmap *sb, uint32_t flags)
{
    if (sb->bs != dbm->prev_bs) {
        dbm->prev_bs = sb->bs;
        flags |= DBM_DEVICE_NAME;
    }
    if (sb->bitmap != dbm->prev_bitmap) {
        dbm->prev_bitmap = sb->bitmap;
        flags |= DBM_BITMAP_NAME;
    }
    put_flags(f, flags);
    if (flags & DBM_DEVICE_NAME) {
        qemu_put_counted_string(f, sb->node_name);
    }
    if (flags & DBM_BITMAP_NAME) {
        qemu_put_counted_string(f, bdrv_dirty_bitmap_name(sb->bitmap));
    }
}

static bool buffer_is_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

static bool send_bits(DirtyBitmapMigration *dbm, QEMUFile *f, SaveBitmap *sb,
                      uint64_t start_sector, uint32_t nr_sectors,
                      GError **errp)
{
    uint64_t offset = start_sector << SECTOR_BITS;
    uint64_t bytes = (uint64_t)nr_sectors << SECTOR_BITS;
    uint64_t size, buf_size;
    g_autofree uint8_t *buf = NULL;
    uint32_t flags = DBM_BITS;
    bool ok;

    bdrv_lock(sb->bs);
    size = bdrv_dirty_bitmap_serialization_size(sb->bitmap, offset, bytes);
    buf_size = ALIGN_UP(size, DBM_BUF_ALIGN);
    buf = g_malloc0(buf_size);
    ok = bdrv_dirty_bitmap_serialize_part(sb->bitmap, buf, offset, bytes,
                                          errp);
    bdrv_unlock(sb->bs);
    if (!ok) {
        return false;
    }
    if (buffer_is_zero(buf, buf_size)) {
        flags |= DBM_ZEROES;
    }
    send_header(dbm, f, sb, flags);
    qemu_put_be64(f, start_sector);
    qemu_put_be32(f, nr_sectors);
    if (flags & DBM_ZEROES) {
        qemu_fflush(f);
    } else {
        qemu_put_be64(f, buf_size);
        qemu_put_buffer(f, buf, buf_size);
    }
    return true;
}

static bool bulk_send_chunk(DirtyBitmapMigration *dbm, QEMUFile *f,
                            SaveBitmap *sb, GError **errp)
{
    uint32_t nr = MIN(sb->total_sectors - sb->cur_sector,
                      sb->sectors_per_chunk);

    if (nr && !send_bits(dbm, f, sb, sb->cur_sector, nr, errp)) {
        return false;
    }
    sb->cur_sector += nr;
    sb->bulk_completed = sb->cur_sector >= sb->total_sectors;
    return true;
}

static bool bulk_phase(DirtyBitmapMigration *dbm, QEMUFile *f, bool limit,
                       GError **errp)
{
    for (guint i = 0; i < dbm->save->len; i++) {
        SaveBitmap *sb = dbm->save->pdata[i];

        while (!sb->bulk_completed) {
            if (!bulk_send_chunk(dbm, f, sb, errp)) {
                return false;
            }
            if (limit && qemu_file_rate_limit_exceeded(f)) {
                return true;
            }
        }
    }
    dbm->bulk_completed = true;
    return true;
}

static bool add_bitmap(DirtyBitmapMigration *dbm, BlockNode *bs,
                       const char *node, BdrvDirtyBitmap *bitmap,
                       GError **errp)
{
    SaveBitmap *sb;

    if (strlen(bdrv_dirty_bitmap_name(bitmap)) > 255) {
        return tern_invalid(errp, "Bitmap '%s' has a name too long to migrate",
                            bdrv_dirty_bitmap_name(bitmap));
    }
    if (!bdrv_dirty_bitmap_check(bitmap, BDRV_BITMAP_DEFAULT, errp)) {
        return false;
    }
    bdrv_dirty_bitmap_set_busy(bitmap, true);
    sb = g_new0(SaveBitmap, 1);
    sb->bs = bs;
    g_strlcpy(sb->node_name, node, sizeof(sb->node_name));
    sb->bitmap = bitmap;
    sb->total_sectors = DIV_ROUND_UP(bdrv_dirty_bitmap_size(bitmap),
                                     1 << SECTOR_BITS);
    sb->sectors_per_chunk = (uint64_t)DBM_CHUNK_BYTES * 8 *
        bdrv_dirty_bitmap_granularity(bitmap) >> SECTOR_BITS;
    sb->flags = (bdrv_dirty_bitmap_enabled(bitmap) ? DBM_START_ENABLED : 0) |
        (bdrv_dirty_bitmap_get_persistence(bitmap) ? DBM_START_PERSISTENT : 0);
    g_ptr_array_add(dbm->save, sb);
    return true;
}

static BdrvDirtyBitmap *first_named(BlockNode *bs)
{
    BdrvDirtyBitmap *bitmap = bdrv_dirty_bitmap_next(bs, NULL);

    while (bitmap && !bdrv_dirty_bitmap_name(bitmap)) {
        bitmap = bdrv_dirty_bitmap_next(bs, bitmap);
    }
    return bitmap;
}

/* The named bitmaps of one node, which must have a name the destination
 * can find (the seed's rules and words); the node lock is held. */
static bool add_node(DirtyBitmapMigration *dbm, BlockNode *bs, GError **errp)
{
    BdrvDirtyBitmap *bitmap = first_named(bs);
    const char *node = blk_list_node_name(dbm->nodes.blks, bs);

    if (!bitmap) {
        return true;
    }
    if (!node || !node[0]) {
        return tern_invalid(errp, "Bitmap '%s' in unnamed node can't be "
                            "migrated", bdrv_dirty_bitmap_name(bitmap));
    }
    if (node[0] == '#' || strlen(node) > 255) {
        return tern_invalid(errp, "Bitmap '%s' in a node with auto-generated "
                            "name '%s' can't be migrated",
                            bdrv_dirty_bitmap_name(bitmap), node);
    }
    for (; bitmap; bitmap = bdrv_dirty_bitmap_next(bs, bitmap)) {
        if (bdrv_dirty_bitmap_name(bitmap) &&
            !add_bitmap(dbm, bs, node, bitmap, errp)) {
            return false;
        }
    }
    return true;
}

/* Every node under the drives takes part (the seed's order: the drives'
 * roots, named after the drive, then the others by node-name). */
static bool collect_bitmaps(DirtyBitmapMigration *dbm, GError **errp)
{
    g_autoptr(GPtrArray) nodes = blk_list_all_nodes(dbm->nodes.blks);

    dbm->save = g_ptr_array_new_with_free_func(g_free);
    dbm->bulk_completed = false;
    dbm->prev_bs = NULL;
    dbm->prev_bitmap = NULL;
    for (guint i = 0; i < nodes->len; i++) {
        BlockNode *bs = nodes->pdata[i];
        bool ok;

        bdrv_lock(bs);
        ok = add_node(dbm, bs, errp);
        bdrv_unlock(bs);
        if (!ok) {
            return false;
        }
    }
    /* From here on the bitmaps live in the stream, not in their images,
     * whatever becomes of the migration (the seed never rolls this back). */
    for (guint i = 0; i < dbm->save->len; i++) {
        SaveBitmap *sb = dbm->save->pdata[i];

        bdrv_lock(sb->bs);
        bdrv_dirty_bitmap_skip_store(sb->bitmap, true);
        bdrv_unlock(sb->bs);
    }
    return true;
}

static bool save_setup(QEMUFile *f, void *opaque, GError **errp)
{
    DirtyBitmapMigration *dbm = opaque;

    if (!collect_bitmaps(dbm, errp)) {
        save_cleanup(dbm);
        return false;
    }
    for (guint i = 0; i < dbm->save->len; i++) {
        SaveBitmap *sb = dbm->save->pdata[i];

        send_header(dbm, f, sb, DBM_START);
        qemu_put_be32(f, bdrv_dirty_bitmap_granularity(sb->bitmap));
        qemu_put_byte(f, sb->flags);
    }
    put_flags(f, DBM_EOS);
    return true;
}

static int save_iterate(QEMUFile *f, void *opaque, GError **errp)
{
    DirtyBitmapMigration *dbm = opaque;
    bool postcopy = dbm->nodes.in_postcopy &&
                    dbm->nodes.in_postcopy(dbm->nodes.opaque);

    /* The bits travel while the destination already runs (postcopy), or
     * else all at completion; precopy iterations carry only EOS. */
    if (postcopy && !dbm->bulk_completed &&
        !bulk_phase(dbm, f, true, errp)) {
        return -1;
    }
    put_flags(f, DBM_EOS);
    return dbm->bulk_completed;
}

/* The bitmaps stay busy until the job's cleanup: a postcopy recovery may
 * need to send them again. */
static bool save_complete(QEMUFile *f, void *opaque, GError **errp)
{
    DirtyBitmapMigration *dbm = opaque;

    if (!dbm->bulk_completed && !bulk_phase(dbm, f, false, errp)) {
        return false;
    }
    for (guint i = 0; i < dbm->save->len; i++) {
        send_header(dbm, f, dbm->save->pdata[i], DBM_COMPLETE);
    }
    put_flags(f, DBM_EOS);
    return true;
}

/* The seed's estimate: bits left to send, all of them postcopy-able. */
static void save_pending(void *opaque, uint64_t *must_precopy,
                         uint64_t *can_postcopy)
{
    DirtyBitmapMigration *dbm = opaque;

    for (guint i = 0; dbm->save && i < dbm->save->len; i++) {
        SaveBitmap *sb = dbm->save->pdata[i];
        uint64_t left = sb->bulk_completed ? 0 :
                        sb->total_sectors - sb->cur_sector;

        *can_postcopy += DIV_ROUND_UP(left << SECTOR_BITS,
                                      bdrv_dirty_bitmap_granularity(sb->bitmap));
    }
}

/* A new channel after a postcopy cut: what was in flight may be lost, and
 * the destination's name state is unknown, so everything goes again. */
static void resume_prepare(void *opaque)
{
    DirtyBitmapMigration *dbm = opaque;

    dbm->bulk_completed = false;
    dbm->prev_bs = NULL;
    dbm->prev_bitmap = NULL;
    for (guint i = 0; dbm->save && i < dbm->save->len; i++) {
        SaveBitmap *sb = dbm->save->pdata[i];

        sb->cur_sector = 0;
        sb->bulk_completed = false;
    }
}

static void save_cleanup(void *opaque)
{
    DirtyBitmapMigration *dbm = opaque;

    for (guint i = 0; dbm->save && i < dbm->save->len; i++) {
        SaveBitmap *sb = dbm->save->pdata[i];

        bdrv_lock(sb->bs);
        bdrv_dirty_bitmap_set_busy(sb->bitmap, false);
        bdrv_unlock(sb->bs);
    }
    g_clear_pointer(&dbm->save, g_ptr_array_unref);
}

void dirty_bitmap_migration_source_failed(DirtyBitmapMigration *dbm)
{
    g_autoptr(GPtrArray) nodes = blk_list_all_nodes(dbm->nodes.blks);

    /* Only a migration sets skip_store, so every flag set is this one's. */
    for (guint i = 0; i < nodes->len; i++) {
        BlockNode *bs = nodes->pdata[i];
        BdrvDirtyBitmap *bm = NULL;

        bdrv_lock(bs);
        while ((bm = bdrv_dirty_bitmap_next(bs, bm))) {
            bdrv_dirty_bitmap_skip_store(bm, false);
        }
        bdrv_unlock(bs);
    }
}

static bool is_active(void *opaque)
{
    DirtyBitmapMigration *dbm = opaque;

    return dbm->enabled && (!dbm->save || dbm->save->len);
}

static bool is_active_iterate(void *opaque)
{
    DirtyBitmapMigration *dbm = opaque;

    return is_active(opaque) &&
           !(dbm->nodes.vm_running && dbm->nodes.vm_running(dbm->nodes.opaque));
}

static bool has_postcopy(void *opaque)
{
    return true;
}

/* ---- destination ---- */

/* This load's record of dbm->bitmap; NULL for a bitmap it did not START.
 * With finish_lock held. */
static LoadBitmap *loaded_bitmap(DirtyBitmapMigration *dbm)
{
    for (GSList *l = dbm->loaded; l; l = l->next) {
        LoadBitmap *lb = l->data;

        if (lb->bitmap == dbm->bitmap) {
            return lb;
        }
    }
    return NULL;
}

static bool load_node_name(DirtyBitmapMigration *dbm, QEMUFile *f,
                           GError **errp)
{
    if (!qemu_get_counted_string(f, dbm->node_name)) {
        return tern_invalid(errp, "Unable to read node name string");
    }
    dbm->bs = blk_list_lookup_node(dbm->nodes.blks, dbm->node_name);
    if (!dbm->bs) {
        return tern_invalid(errp, "Cannot find device='%s' nor "
                            "node-name='%s'", dbm->node_name, dbm->node_name);
    }
    return true;
}

static bool load_bitmap_name(DirtyBitmapMigration *dbm, QEMUFile *f,
                             GError **errp)
{
    if (!qemu_get_counted_string(f, dbm->bitmap_name)) {
        return tern_invalid(errp, "Unable to read bitmap name string");
    }
    bdrv_lock(dbm->bs);
    dbm->bitmap = bdrv_find_dirty_bitmap(dbm->bs, dbm->bitmap_name);
    bdrv_unlock(dbm->bs);
    /* A bitmap may only be missing where it is started. */
    if (!dbm->bitmap && !(dbm->flags & DBM_START)) {
        return tern_invalid(errp, "Error: unknown dirty bitmap '%s' for block "
                            "device '%s'", dbm->bitmap_name, dbm->node_name);
    }
    return true;
}

static bool load_header(DirtyBitmapMigration *dbm, QEMUFile *f,
                        GError **errp)
{
    bool nothing;

    if (!dbm_get_flags(f, &dbm->flags, errp)) {
        return false;
    }
    nothing = dbm->flags == (dbm->flags & DBM_EOS);
    if (dbm->flags & DBM_DEVICE_NAME) {
        if (!load_node_name(dbm, f, errp)) {
            return false;
        }
    } else if (!dbm->bs && !nothing) {
        return tern_invalid(errp, "Error: block device name is not set");
    }
    if (dbm->flags & DBM_BITMAP_NAME) {
        return load_bitmap_name(dbm, f, errp);
    }
    if (!dbm->bitmap && !nothing) {
        /* The seed's words for a missing bitmap name too. */
        return tern_invalid(errp, "Error: block device name is not set");
    }
    return true;
}

/* With the node lock held. Every bitmap the load creates is disabled and
 * busy; an enabled one gets a successor, which records the guest's writes
 * from the moment the guest starts until the bitmap is complete. */
static bool start_bitmap(DirtyBitmapMigration *dbm, uint32_t granularity,
                         uint8_t flags, GError **errp)
{
    dbm->bitmap = bdrv_create_dirty_bitmap(dbm->bs, granularity,
                                           dbm->bitmap_name, errp);
    if (!dbm->bitmap) {
        return false;
    }
    if (flags & DBM_START_PERSISTENT) {
        bdrv_dirty_bitmap_set_persistence(dbm->bitmap, true);
    }
    bdrv_disable_dirty_bitmap(dbm->bitmap);
    if (!(flags & DBM_START_ENABLED)) {
        bdrv_dirty_bitmap_set_busy(dbm->bitmap, true);
        return true;
    }
    if (!bdrv_dirty_bitmap_create_successor(dbm->bitmap, errp)) {
        bdrv_release_dirty_bitmap(dbm->bitmap);
        dbm->bitmap = NULL;
        return false;
    }
    return true;
}

static bool load_start(DirtyBitmapMigration *dbm, QEMUFile *f, GError **errp)
{
    uint32_t granularity = qemu_get_be32(f);
    uint8_t flags = qemu_get_byte(f);
    LoadBitmap *lb;
    bool ok;

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (dbm->bitmap) {
        return tern_invalid(errp, "Bitmap with the same name ('%s') already "
                            "exists on destination", dbm->bitmap_name);
    }
    if (flags & DBM_START_RESERVED) {
        return tern_invalid(errp, "Unknown flags in migrated dirty bitmap "
                            "header: %x", flags);
    }
    g_mutex_lock(&dbm->finish_lock);
    bdrv_lock(dbm->bs);
    ok = start_bitmap(dbm, granularity, flags, errp);
    bdrv_unlock(dbm->bs);
    if (ok) {
        lb = g_new0(LoadBitmap, 1);
        lb->bitmap = dbm->bitmap;
        g_strlcpy(lb->node_name, dbm->node_name, sizeof(lb->node_name));
        lb->enabled = flags & DBM_START_ENABLED;
        dbm->loaded = g_slist_prepend(dbm->loaded, lb);
    }
    g_mutex_unlock(&dbm->finish_lock);
    return ok;
}

/* BITS or COMPLETE for dbm->bitmap: whether to apply it (finish_lock
 * held). After a recovery the source sends again what this load may have
 * completed already; otherwise a bitmap is complete only once. */
static bool chunk_applies(DirtyBitmapMigration *dbm, LoadBitmap *lb,
                          bool *apply, GError **errp)
{
    if (!lb) {
        return tern_invalid(errp, "Error: unknown dirty bitmap '%s' for block "
                            "device '%s'", dbm->bitmap_name, dbm->node_name);
    }
    *apply = !lb->migrated;
    if (lb->migrated && !dbm->resumed && !(dbm->flags & DBM_COMPLETE)) {
        return tern_invalid(errp, "Error: dirty bitmap '%s' for block device "
                            "'%s' is complete already", dbm->bitmap_name,
                            dbm->node_name);
    }
    return true;
}

/* With both locks held: the successor's writes merged back (QEMU's
 * reclaim); before the guest starts the bitmap stays busy and disabled,
 * before_vm_start enables it. */
static bool complete_bitmap(DirtyBitmapMigration *dbm, LoadBitmap *lb,
                            GError **errp)
{
    bdrv_dirty_bitmap_deserialize_finish(lb->bitmap);
    if (bdrv_dirty_bitmap_has_successor(lb->bitmap) &&
        !bdrv_reclaim_dirty_bitmap(lb->bitmap, errp)) {
        return false;
    }
    lb->migrated = true;
    if (!dbm->vm_started) {
        bdrv_dirty_bitmap_set_busy(lb->bitmap, true);
        return true;
    }
    bdrv_dirty_bitmap_set_busy(lb->bitmap, false);
    if (lb->enabled) {
        bdrv_enable_dirty_bitmap(lb->bitmap);
    }
    return true;
}

static bool load_complete(DirtyBitmapMigration *dbm, GError **errp)
{
    LoadBitmap *lb;
    bool ok, apply = false;

    g_mutex_lock(&dbm->finish_lock);
    lb = loaded_bitmap(dbm);
    ok = chunk_applies(dbm, lb, &apply, errp);
    if (ok && apply) {
        bdrv_lock(dbm->bs);
        ok = complete_bitmap(dbm, lb, errp);
        bdrv_unlock(dbm->bs);
    }
    g_mutex_unlock(&dbm->finish_lock);
    return ok;
}

/* Only the bitmap's own bits are written: the guest's writes since it
 * started are in the successor. */
static bool load_bits_data(DirtyBitmapMigration *dbm, QEMUFile *f,
                           uint64_t offset, uint64_t bytes, bool apply,
                           GError **errp)
{
    uint64_t buf_size = qemu_get_be64(f);
    uint64_t needed;
    g_autofree uint8_t *buf = NULL;
    bool ok = true;

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    bdrv_lock(dbm->bs);
    needed = bdrv_dirty_bitmap_serialization_size(dbm->bitmap, offset, bytes);
    bdrv_unlock(dbm->bs);
    if (needed > buf_size || buf_size > ALIGN_UP(needed, DBM_BUF_ALIGN)) {
        return tern_invalid(errp, "Migrated bitmap granularity doesn't match "
                            "the destination bitmap '%s' granularity",
                            dbm->bitmap_name);
    }
    buf = g_malloc(buf_size);
    if (qemu_get_buffer(f, buf, buf_size) != buf_size) {
        qemu_file_check(f, errp);
        g_prefix_error(errp, "Failed to read bitmap bits: ");
        return false;
    }
    if (apply) {
        bdrv_lock(dbm->bs);
        ok = bdrv_dirty_bitmap_deserialize_part(dbm->bitmap, buf, offset,
                                                bytes, errp);
        bdrv_unlock(dbm->bs);
    }
    return ok;
}

/* The chunk's range must lie within the destination's bitmap: a node of
 * another size is refused here, before any data is read. */
static bool load_bits_range(DirtyBitmapMigration *dbm, uint64_t sector,
                            uint64_t offset, uint64_t bytes, GError **errp)
{
    bool ok;

    if (sector >> (64 - SECTOR_BITS)) {
        return tern_invalid(errp, "dirty-bitmap: chunk at sector %" PRIu64
                            " is out of range", sector);
    }
    bdrv_lock(dbm->bs);
    ok = bdrv_dirty_bitmap_check_part(dbm->bitmap, offset, bytes, errp);
    bdrv_unlock(dbm->bs);
    if (!ok) {
        g_prefix_error(errp, "Migrated bitmap '%s' does not match the size of "
                       "node '%s': ", dbm->bitmap_name, dbm->node_name);
    }
    return ok;
}

static bool load_bits(DirtyBitmapMigration *dbm, QEMUFile *f, GError **errp)
{
    uint64_t sector = qemu_get_be64(f);
    uint64_t bytes = (uint64_t)qemu_get_be32(f) << SECTOR_BITS;
    uint64_t offset = sector << SECTOR_BITS;
    bool ok, apply = false;

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    g_mutex_lock(&dbm->finish_lock);
    ok = chunk_applies(dbm, loaded_bitmap(dbm), &apply, errp);
    g_mutex_unlock(&dbm->finish_lock);
    if (!ok || !load_bits_range(dbm, sector, offset, bytes, errp)) {
        return false;
    }
    if (!(dbm->flags & DBM_ZEROES)) {
        return load_bits_data(dbm, f, offset, bytes, apply, errp);
    }
    if (apply) {
        bdrv_lock(dbm->bs);
        ok = bdrv_dirty_bitmap_deserialize_zeroes(dbm->bitmap, offset, bytes,
                                                  errp);
        bdrv_unlock(dbm->bs);
    }
    return ok;
}

static bool load_chunk(DirtyBitmapMigration *dbm, QEMUFile *f, GError **errp)
{
    if (!load_header(dbm, f, errp)) {
        return false;
    }
    if (dbm->flags & DBM_START) {
        return load_start(dbm, f, errp);
    }
    if (dbm->flags & DBM_COMPLETE) {
        return load_complete(dbm, errp);
    }
    if (dbm->flags & DBM_BITS) {
        return load_bits(dbm, f, errp);
    }
    return true;
}

static bool load_state(QEMUFile *f, void *opaque, int version_id,
                       GError **errp)
{
    DirtyBitmapMigration *dbm = opaque;

    if (version_id != 1) {
        return tern_invalid(errp, "dirty-bitmap: section version %d, expected "
                            "1", version_id);
    }
    do {
        if (!load_chunk(dbm, f, errp)) {
            return false;
        }
    } while (!(dbm->flags & DBM_EOS));
    return true;
}

static bool load_setup(QEMUFile *f, void *opaque, GError **errp)
{
    DirtyBitmapMigration *dbm = opaque;

    dbm->bs = NULL;
    dbm->bitmap = NULL;
    dbm->flags = 0;
    g_mutex_lock(&dbm->finish_lock);
    g_slist_free_full(g_steal_pointer(&dbm->loaded), g_free);
    dbm->vm_started = false;
    dbm->resumed = false;
    g_mutex_unlock(&dbm->finish_lock);
    return true;
}

/* The source reconnected: a chunk cut short on the old channel left the
 * names unknown, and what it sends again may be complete here already. */
static void load_resumed(void *opaque)
{
    DirtyBitmapMigration *dbm = opaque;

    dbm->bs = NULL;
    dbm->bitmap = NULL;
    g_mutex_lock(&dbm->finish_lock);
    dbm->resumed = true;
    g_mutex_unlock(&dbm->finish_lock);
}

/* With both locks held: a bitmap that did not arrive whole goes away
 * (what QEMU's cancel_incoming does), so that nothing half-migrated is
 * used or stored; the guest's writes recorded meanwhile go with it. */
static void drop_incomplete(LoadBitmap *lb)
{
    tern_warn("dirty bitmap '%s' of '%s' did not arrive completely from "
              "the migration source and is dropped",
              bdrv_dirty_bitmap_name(lb->bitmap), lb->node_name);
    bdrv_release_dirty_bitmap(lb->bitmap);      /* and its successor */
}

static void load_abandon(void *opaque)
{
    DirtyBitmapMigration *dbm = opaque;

    g_mutex_lock(&dbm->finish_lock);
    for (GSList *l = dbm->loaded; l; l = l->next) {
        LoadBitmap *lb = l->data;
        BlockNode *bs = bdrv_dirty_bitmap_node(lb->bitmap);

        bdrv_lock(bs);
        if (!lb->migrated) {
            drop_incomplete(lb);
        } else if (!dbm->vm_started) {
            bdrv_dirty_bitmap_set_busy(lb->bitmap, false);
        }
        bdrv_unlock(bs);
    }
    g_slist_free_full(g_steal_pointer(&dbm->loaded), g_free);
    dbm->bs = NULL;
    dbm->bitmap = NULL;
    g_mutex_unlock(&dbm->finish_lock);
}

/* The seed's before-start step: complete bitmaps that were enabled on the
 * source start recording; incomplete ones let their successor record. */
static void before_vm_start_one(LoadBitmap *lb)
{
    if (!lb->migrated) {
        if (lb->enabled) {
            bdrv_dirty_bitmap_enable_successor(lb->bitmap);
        }
        return;
    }
    bdrv_dirty_bitmap_set_busy(lb->bitmap, false);
    if (lb->enabled) {
        bdrv_enable_dirty_bitmap(lb->bitmap);
    }
}

void dirty_bitmap_migration_before_vm_start(DirtyBitmapMigration *dbm)
{
    g_mutex_lock(&dbm->finish_lock);
    if (!dbm->vm_started) {
        for (GSList *l = dbm->loaded; l; l = l->next) {
            LoadBitmap *lb = l->data;
            BlockNode *bs = bdrv_dirty_bitmap_node(lb->bitmap);

            bdrv_lock(bs);
            before_vm_start_one(lb);
            bdrv_unlock(bs);
        }
        dbm->vm_started = true;
    }
    g_mutex_unlock(&dbm->finish_lock);
}

static const SaveVMHandlers dirty_bitmap_handlers = {
    .save_setup = save_setup,
    .save_live_iterate = save_iterate,
    .save_live_complete_precopy = save_complete,
    .save_live_complete_postcopy = save_complete,
    .save_pending = save_pending,
    .save_cleanup = save_cleanup,
    .resume_prepare = resume_prepare,
    .is_active = is_active,
    .is_active_iterate = is_active_iterate,
    .has_postcopy = has_postcopy,
    .load_setup = load_setup,
    .load_state = load_state,
    .load_resumed = load_resumed,
    .load_abandon = load_abandon,
};

void dirty_bitmap_migration_register(DirtyBitmapMigration *dbm, SaveVM *sv)
{
    savevm_register_live(sv, "dirty-bitmap", 0, 1, &dirty_bitmap_handlers,
                         dbm);
}
