/*
 * Dirty bitmaps of a BlockNode (include/block/dirty-bitmap.h): creation and
 * lookup on bs->dirty_bitmaps, the state flags QEMU gives them, write
 * tracking (bdrv_dirty_bitmaps_mark), merge, successors and QEMU's
 * serialization. Bits live in an HBitmap of DIV_ROUND_UP(size, granularity)
 * bits; persistence in an image is the format driver's job (qcow2-bitmap.c),
 * kept crash-safe by write-intent.c, which every change of a bitmap's bits
 * or enabled state outside the write path is reported to.
 */
#include <string.h>

#include "block/dirty-bitmap.h"
#include "block/write-intent.h"
#include "tern/hbitmap.h"

struct BdrvDirtyBitmap {
    BlockNode *bs;
    char *name;               /* NULL: anonymous (a successor) */
    uint32_t granularity;
    int gran_bits;
    uint64_t size;            /* bytes of the node covered */
    HBitmap *bits;
    bool enabled;
    bool persistent;
    bool busy;
    bool inconsistent;
    bool readonly;
    bool skip_store;
    BdrvDirtyBitmap *successor;
};

/* Direct field use keeps this file free of block.c for unit tests. */
static const char *node_name(const BlockNode *bs)
{
    return bs->node_name ? bs->node_name : "";
}

/* The format driver can act on the image: it has state (a reload at
 * activation may have failed and left none). */
static bool driver_usable(BlockNode *bs, GError **errp)
{
    if (bs->drv_closed) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "Node '%s' could not be "
                    "reopened earlier; it stays unusable", node_name(bs));
        return false;
    }
    return true;
}

static uint64_t bits_for(uint64_t size, int gran_bits)
{
    return (size >> gran_bits) + !!(size & ((1ULL << gran_bits) - 1));
}

static bool check_granularity(uint64_t granularity, GError **errp)
{
    if (granularity < BDRV_BITMAP_MIN_GRANULARITY ||
        granularity > BDRV_BITMAP_MAX_GRANULARITY ||
        (granularity & (granularity - 1))) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Granularity must be power of 2 and at least 512");
        return false;
    }
    return true;
}

/* A new enabled bitmap covering 'size' bytes of bs. */
static BdrvDirtyBitmap *dirty_bitmap_new(BlockNode *bs, uint32_t granularity,
                                         const char *name, uint64_t size,
                                         GError **errp)
{
    BdrvDirtyBitmap *bitmap;
    HBitmap *bits;
    int gran_bits;

    if (!check_granularity(granularity, errp)) {
        return NULL;
    }
    if (name && bdrv_find_dirty_bitmap(bs, name)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap already exists: %s", name);
        return NULL;
    }
    if (name && strlen(name) > BDRV_BITMAP_MAX_NAME_SIZE) {
        /* QEMU's words (more than 1023 bytes). */
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap name too long: %s", name);
        return NULL;
    }
    gran_bits = __builtin_ctz(granularity);
    bits = hbitmap_try_new(bits_for(size, gran_bits));
    if (!bits) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap of %" PRIu64 " bytes at granularity %" PRIu32
                    " is too large; use a larger granularity",
                    size, granularity);
        return NULL;
    }
    bitmap = g_new0(BdrvDirtyBitmap, 1);
    bitmap->bs = bs;
    bitmap->name = g_strdup(name);
    bitmap->granularity = granularity;
    bitmap->gran_bits = gran_bits;
    bitmap->size = size;
    bitmap->bits = bits;
    bitmap->enabled = true;
    bs->dirty_bitmaps = g_list_append(bs->dirty_bitmaps, bitmap);
    return bitmap;
}

BdrvDirtyBitmap *bdrv_create_dirty_bitmap(BlockNode *bs, uint32_t granularity,
                                          const char *name, GError **errp)
{
    return dirty_bitmap_new(bs, granularity, name, bs->size, errp);
}

void bdrv_release_dirty_bitmap(BdrvDirtyBitmap *bitmap)
{
    if (bitmap->successor) {
        bdrv_release_dirty_bitmap(bitmap->successor);
    }
    bdrv_write_intent_forget(bitmap);
    bitmap->bs->dirty_bitmaps = g_list_remove(bitmap->bs->dirty_bitmaps,
                                              bitmap);
    hbitmap_free(bitmap->bits);
    g_free(bitmap->name);
    g_free(bitmap);
}

void bdrv_release_all_dirty_bitmaps(BlockNode *bs)
{
    /* Parents release their successors, so always take the list head. */
    while (bs->dirty_bitmaps) {
        BdrvDirtyBitmap *b = bs->dirty_bitmaps->data;

        bdrv_release_dirty_bitmap(b);
    }
}

BdrvDirtyBitmap *bdrv_find_dirty_bitmap(BlockNode *bs, const char *name)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *b = l->data;

        if (b->name && name && strcmp(b->name, name) == 0) {
            return b;
        }
    }
    return NULL;
}

BdrvDirtyBitmap *bdrv_dirty_bitmap_next(BlockNode *bs, BdrvDirtyBitmap *prev)
{
    GList *l = prev ? g_list_find(bs->dirty_bitmaps, prev) : NULL;

    l = prev ? (l ? l->next : NULL) : bs->dirty_bitmaps;
    return l ? l->data : NULL;
}

bool bdrv_has_named_bitmaps(BlockNode *bs)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        if (((BdrvDirtyBitmap *)l->data)->name) {
            return true;
        }
    }
    return false;
}

bool bdrv_remove_dirty_bitmap(BlockNode *bs, const char *name, GError **errp)
{
    BdrvDirtyBitmap *bitmap = bdrv_find_dirty_bitmap(bs, name);

    if (!bitmap) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "Dirty bitmap '%s' not found", name);
        return false;
    }
    if (!bdrv_dirty_bitmap_check(bitmap, BDRV_BITMAP_BUSY | BDRV_BITMAP_RO,
                                 errp)) {
        return false;
    }
    if (bitmap->persistent) {
        if (!driver_usable(bs, errp)) {
            return false;
        }
        if (!bs->drv || !bs->drv->remove_persistent_bitmap) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                        "Node '%s' cannot remove persistent bitmaps",
                        node_name(bs));
            return false;
        }
        if (!bs->drv->remove_persistent_bitmap(bs, name, errp)) {
            return false;
        }
    }
    bdrv_release_dirty_bitmap(bitmap);
    return true;
}

bool bdrv_dirty_bitmap_make_persistent(BdrvDirtyBitmap *bitmap, bool on,
                                       GError **errp)
{
    BlockNode *bs = bitmap->bs;

    if (on && !bitmap->persistent) {
        if (!bitmap->name) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "An anonymous bitmap cannot be persistent");
            return false;
        }
        if (!driver_usable(bs, errp)) {
            return false;
        }
        if (!bs->drv || !bs->drv->can_store_bitmap) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                        "Can't make bitmap '%s' persistent in '%s': the %s"
                        " format cannot store bitmaps", bitmap->name,
                        node_name(bs),
                        bs->drv ? bs->drv->format_name : "(none)");
            return false;
        }
        if (!bs->drv->can_store_bitmap(bs, bitmap->name, bitmap->granularity,
                                       errp)) {
            g_prefix_error(errp, "Can't make bitmap '%s' persistent in '%s': ",
                           bitmap->name, node_name(bs));
            return false;
        }
    }
    bitmap->persistent = on;
    /* Crash-safe from now on: in the image before the next write. */
    if (on && !bdrv_write_intent_arm(bs, errp)) {
        bitmap->persistent = false;
        return false;
    }
    return true;
}

BlockNode *bdrv_dirty_bitmap_node(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->bs;
}

const char *bdrv_dirty_bitmap_name(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->name;
}

uint32_t bdrv_dirty_bitmap_granularity(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->granularity;
}

uint64_t bdrv_dirty_bitmap_size(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->size;
}

bool bdrv_dirty_bitmap_enabled(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->enabled;
}

bool bdrv_dirty_bitmap_busy(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->busy;
}

bool bdrv_dirty_bitmap_inconsistent(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->inconsistent;
}

bool bdrv_dirty_bitmap_readonly(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->readonly;
}

bool bdrv_dirty_bitmap_has_successor(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->successor != NULL;
}

bool bdrv_dirty_bitmap_get_persistence(const BdrvDirtyBitmap *bitmap)
{
    return bitmap->persistent && !bitmap->skip_store;
}

void bdrv_dirty_bitmap_set_persistence(BdrvDirtyBitmap *bitmap, bool on)
{
    bitmap->persistent = on;
}

void bdrv_dirty_bitmap_set_busy(BdrvDirtyBitmap *bitmap, bool busy)
{
    bitmap->busy = busy;
}

void bdrv_dirty_bitmap_set_readonly(BdrvDirtyBitmap *bitmap, bool ro)
{
    bitmap->readonly = ro;
}

void bdrv_dirty_bitmap_set_inconsistent(BdrvDirtyBitmap *bitmap)
{
    bitmap->inconsistent = true;
    bitmap->enabled = false;
}

void bdrv_dirty_bitmap_skip_store(BdrvDirtyBitmap *bitmap, bool skip)
{
    bitmap->skip_store = skip;
}

static void set_enabled(BdrvDirtyBitmap *bitmap, bool on)
{
    if (bitmap->enabled != on) {
        bitmap->enabled = on;
        bdrv_write_intent_flags_changed(bitmap);
    }
}

void bdrv_enable_dirty_bitmap(BdrvDirtyBitmap *bitmap)
{
    set_enabled(bitmap, true);
}

void bdrv_disable_dirty_bitmap(BdrvDirtyBitmap *bitmap)
{
    set_enabled(bitmap, false);
}

bool bdrv_dirty_bitmap_records_writes(const BdrvDirtyBitmap *bitmap)
{
    /* A successor's bits come back to its parent on reclaim. */
    return bitmap->enabled ||
           (bitmap->successor &&
            bdrv_dirty_bitmap_records_writes(bitmap->successor));
}

bool bdrv_dirty_bitmap_check(const BdrvDirtyBitmap *bitmap,
                             BdrvBitmapCheck flags, GError **errp)
{
    const char *name = bitmap->name ? bitmap->name : "(anonymous)";

    if ((flags & BDRV_BITMAP_BUSY) && bitmap->busy) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "Bitmap '%s' is currently in use by another operation"
                    " and cannot be used", name);
        return false;
    }
    if ((flags & BDRV_BITMAP_RO) && bitmap->readonly) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap '%s' is readonly and cannot be modified", name);
        return false;
    }
    if ((flags & BDRV_BITMAP_INCONSISTENT) && bitmap->inconsistent) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap '%s' is inconsistent and cannot be used;"
                    " try block-dirty-bitmap-remove to delete this bitmap"
                    " from disk", name);
        return false;
    }
    return true;
}

/* Bit range covering bytes [offset, offset + bytes), clamped to the size. */
static bool byte_range_to_bits(const BdrvDirtyBitmap *bitmap, uint64_t offset,
                               uint64_t bytes, uint64_t *first, uint64_t *n)
{
    uint64_t end;

    if (offset >= bitmap->size || bytes == 0) {
        return false;
    }
    end = bytes > bitmap->size - offset ? bitmap->size : offset + bytes;
    *first = offset >> bitmap->gran_bits;
    *n = bits_for(end, bitmap->gran_bits) - *first;
    return true;
}

static void set_bits(BdrvDirtyBitmap *bitmap, uint64_t offset, uint64_t bytes)
{
    uint64_t first, n;

    if (byte_range_to_bits(bitmap, offset, bytes, &first, &n)) {
        hbitmap_set(bitmap->bits, first, n);
    }
}

void bdrv_set_dirty_bitmap(BdrvDirtyBitmap *bitmap, uint64_t offset,
                           uint64_t bytes)
{
    set_bits(bitmap, offset, bytes);
    bdrv_write_intent_bits_set(bitmap, offset, bytes);
}

void bdrv_reset_dirty_bitmap(BdrvDirtyBitmap *bitmap, uint64_t offset,
                             uint64_t bytes)
{
    uint64_t first, n;

    if (byte_range_to_bits(bitmap, offset, bytes, &first, &n)) {
        hbitmap_reset(bitmap->bits, first, n);
        bdrv_write_intent_bits_removed(bitmap);
    }
}

void bdrv_clear_dirty_bitmap(BdrvDirtyBitmap *bitmap)
{
    hbitmap_reset_all(bitmap->bits);
    bdrv_write_intent_bits_removed(bitmap);
}

void bdrv_dirty_bitmaps_mark(BlockNode *bs, uint64_t offset, uint64_t bytes)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *b = l->data;

        if (b->enabled) {
            set_bits(b, offset, bytes);     /* covered before the write */
        }
    }
}

bool bdrv_dirty_bitmap_get(const BdrvDirtyBitmap *bitmap, uint64_t offset)
{
    return hbitmap_get(bitmap->bits, offset >> bitmap->gran_bits);
}

uint64_t bdrv_get_dirty_count(const BdrvDirtyBitmap *bitmap)
{
    return hbitmap_count(bitmap->bits) << bitmap->gran_bits;
}

int64_t bdrv_dirty_bitmap_next_dirty(const BdrvDirtyBitmap *bitmap,
                                     uint64_t offset)
{
    int64_t bit = hbitmap_next_set(bitmap->bits, offset >> bitmap->gran_bits);

    if (bit < 0) {
        return -1;
    }
    return MAX((uint64_t)bit << bitmap->gran_bits, offset);
}

int64_t bdrv_dirty_bitmap_next_zero(const BdrvDirtyBitmap *bitmap,
                                    uint64_t offset, uint64_t bytes)
{
    uint64_t first, n;
    int64_t bit;

    if (!byte_range_to_bits(bitmap, offset, bytes, &first, &n)) {
        return -1;
    }
    bit = hbitmap_next_zero(bitmap->bits, first, n);
    if (bit < 0) {
        return -1;
    }
    return MAX((uint64_t)bit << bitmap->gran_bits, offset);
}

bool bdrv_dirty_bitmap_next_dirty_area(const BdrvDirtyBitmap *bitmap,
                                       uint64_t offset, uint64_t end,
                                       uint64_t *area_offset,
                                       uint64_t *area_bytes)
{
    uint64_t first, n, s, c, a_end;

    end = MIN(end, bitmap->size);
    if (offset >= end ||
        !byte_range_to_bits(bitmap, offset, end - offset, &first, &n) ||
        !hbitmap_next_set_area(bitmap->bits, first, first + n, &s, &c)) {
        return false;
    }
    *area_offset = MAX(s << bitmap->gran_bits, offset);
    a_end = MIN((s + c) << bitmap->gran_bits, end);
    *area_bytes = a_end - *area_offset;
    return true;
}

/* dest |= src when granularities differ: copy src's dirty extents. */
static void merge_extents(BdrvDirtyBitmap *dest, const BdrvDirtyBitmap *src)
{
    uint64_t off = 0, s, c;

    while (bdrv_dirty_bitmap_next_dirty_area(src, off, src->size, &s, &c)) {
        set_bits(dest, s, c);
        off = s + c;
    }
}

bool bdrv_merge_dirty_bitmap(BdrvDirtyBitmap *dest,
                             const BdrvDirtyBitmap *src, GError **errp)
{
    if (!bdrv_dirty_bitmap_check(dest, BDRV_BITMAP_DEFAULT, errp) ||
        !bdrv_dirty_bitmap_check(src, BDRV_BITMAP_ALLOW_RO, errp)) {
        return false;
    }
    if (dest->size != src->size) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmaps are incompatible and can't be merged: sizes"
                    " differ (%" PRIu64 " and %" PRIu64 " bytes)",
                    dest->size, src->size);
        return false;
    }
    if (dest == src) {
        return true;
    }
    if (dest->granularity == src->granularity) {
        hbitmap_merge(dest->bits, src->bits);
    } else {
        merge_extents(dest, src);
    }
    return bdrv_write_intent_bits_added(dest, errp);
}

bool bdrv_dirty_bitmaps_truncate(BlockNode *bs, uint64_t size, GError **errp)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *b = l->data;

        if (!hbitmap_resize(b->bits, bits_for(size, b->gran_bits))) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                        "Cannot resize bitmap '%s' to %" PRIu64 " bytes",
                        b->name ? b->name : "(anonymous)", size);
            return false;
        }
        b->size = size;
    }
    return true;
}

bool bdrv_dirty_bitmap_create_successor(BdrvDirtyBitmap *bitmap,
                                        GError **errp)
{
    BdrvDirtyBitmap *child;

    if (bitmap->busy) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "Cannot create a successor for a bitmap that is in use"
                    " by an operation");
        return false;
    }
    if (bitmap->successor) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Cannot create a successor for a bitmap that already"
                    " has one");
        return false;
    }
    child = dirty_bitmap_new(bitmap->bs, bitmap->granularity, NULL,
                             bitmap->size, errp);
    if (!child) {
        return false;
    }
    child->enabled = bitmap->enabled;
    bitmap->enabled = false;
    bitmap->successor = child;
    bitmap->busy = true;
    return true;
}

void bdrv_dirty_bitmap_enable_successor(BdrvDirtyBitmap *bitmap)
{
    if (bitmap->successor) {
        bitmap->successor->enabled = true;
    }
}

BdrvDirtyBitmap *bdrv_reclaim_dirty_bitmap(BdrvDirtyBitmap *parent,
                                           GError **errp)
{
    BdrvDirtyBitmap *successor = parent->successor;

    if (!successor) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Cannot reclaim a successor when none is present");
        return NULL;
    }
    /* Same size and granularity by construction: a plain OR. */
    hbitmap_merge(parent->bits, successor->bits);
    parent->enabled = successor->enabled;
    parent->busy = false;
    parent->successor = NULL;
    bdrv_release_dirty_bitmap(successor);
    /* The successor's writes were covered for the parent already. */
    return bdrv_write_intent_bits_added(parent, errp) ? parent : NULL;
}

BdrvDirtyBitmap *bdrv_dirty_bitmap_abdicate(BdrvDirtyBitmap *parent,
                                            GError **errp)
{
    BdrvDirtyBitmap *successor = parent->successor;

    if (!successor) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Cannot relinquish control if there's no successor"
                    " present");
        return NULL;
    }
    successor->name = g_steal_pointer(&parent->name);
    successor->persistent = parent->persistent;
    bdrv_write_intent_replace(parent, successor);
    parent->persistent = false;
    parent->busy = false;
    parent->successor = NULL;
    bdrv_release_dirty_bitmap(parent);
    return successor;
}

uint64_t bdrv_dirty_bitmap_serialization_align(const BdrvDirtyBitmap *bitmap)
{
    return 64ULL << bitmap->gran_bits;
}

uint64_t bdrv_dirty_bitmap_serialization_size(const BdrvDirtyBitmap *bitmap,
                                              uint64_t offset, uint64_t bytes)
{
    uint64_t first, last, end;

    /* Clamped to the bitmap, so a hostile range cannot ask for more. */
    end = bytes > bitmap->size - MIN(offset, bitmap->size)
          ? bitmap->size : offset + bytes;
    if (end <= offset) {
        return 0;
    }
    first = offset >> bitmap->gran_bits >> 6;
    last = (end - 1) >> bitmap->gran_bits >> 6;
    return (last - first + 1) * 8;
}

uint64_t bdrv_dirty_bitmap_serialization_coverage(const BdrvDirtyBitmap *bitmap,
                                                  uint64_t size)
{
    return (size * 8) << bitmap->gran_bits;
}

bool bdrv_dirty_bitmap_check_part(const BdrvDirtyBitmap *bitmap,
                                  uint64_t offset, uint64_t bytes,
                                  GError **errp)
{
    uint64_t align = bdrv_dirty_bitmap_serialization_align(bitmap);
    /* Migration counts in 512-byte sectors: its last part may end anywhere
     * in the sector holding the bitmap's end. */
    uint64_t limit = ALIGN_UP(bitmap->size, 512);

    if (offset > limit || bytes > limit - offset) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap part [%" PRIu64 ", +%" PRIu64 ") is past the end"
                    " of bitmap '%s' (%" PRIu64 " bytes)", offset, bytes,
                    bitmap->name ? bitmap->name : "", bitmap->size);
        return false;
    }
    if (offset % align ||
        (bytes % align && offset + bytes < bitmap->size)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Bitmap part [%" PRIu64 ", +%" PRIu64 ") of bitmap '%s'"
                    " is not aligned to %" PRIu64 " bytes", offset, bytes,
                    bitmap->name ? bitmap->name : "", align);
        return false;
    }
    return true;
}

/* Level-0 word range of a checked, non-empty part. */
static void part_words(const BdrvDirtyBitmap *bitmap, uint64_t offset,
                       uint64_t bytes, uint64_t *first, uint64_t *n)
{
    *first = offset >> bitmap->gran_bits >> 6;
    *n = bdrv_dirty_bitmap_serialization_size(bitmap, offset, bytes) / 8;
}

bool bdrv_dirty_bitmap_serialize_part(const BdrvDirtyBitmap *bitmap,
                                      uint8_t *buf, uint64_t offset,
                                      uint64_t bytes, GError **errp)
{
    uint64_t first, n;

    if (!bdrv_dirty_bitmap_check_part(bitmap, offset, bytes, errp)) {
        return false;
    }
    if (bytes) {
        part_words(bitmap, offset, bytes, &first, &n);
        hbitmap_store_words(bitmap->bits, first, n, buf);
    }
    return true;
}

bool bdrv_dirty_bitmap_deserialize_part(BdrvDirtyBitmap *bitmap,
                                        const uint8_t *buf, uint64_t offset,
                                        uint64_t bytes, GError **errp)
{
    uint64_t first, n;

    if (!bdrv_dirty_bitmap_check_part(bitmap, offset, bytes, errp)) {
        return false;
    }
    if (bytes) {
        part_words(bitmap, offset, bytes, &first, &n);
        hbitmap_load_words(bitmap->bits, first, n, buf);
    }
    return true;
}

bool bdrv_dirty_bitmap_deserialize_zeroes(BdrvDirtyBitmap *bitmap,
                                          uint64_t offset, uint64_t bytes,
                                          GError **errp)
{
    if (!bdrv_dirty_bitmap_check_part(bitmap, offset, bytes, errp)) {
        return false;
    }
    bdrv_reset_dirty_bitmap(bitmap, offset, bytes);
    return true;
}

bool bdrv_dirty_bitmap_deserialize_ones(BdrvDirtyBitmap *bitmap,
                                        uint64_t offset, uint64_t bytes,
                                        GError **errp)
{
    if (!bdrv_dirty_bitmap_check_part(bitmap, offset, bytes, errp)) {
        return false;
    }
    set_bits(bitmap, offset, bytes);
    return true;
}

void bdrv_dirty_bitmap_deserialize_finish(BdrvDirtyBitmap *bitmap)
{
}

char *bdrv_dirty_bitmap_sha256(const BdrvDirtyBitmap *bitmap)
{
    uint64_t words = MAX(hbitmap_word_count(bitmap->bits), 1);
    g_autofree uint8_t *buf = g_malloc0(words * 8);

    /* QEMU hashes its lowest level as stored: one word even when empty. */
    hbitmap_store_words(bitmap->bits, 0, hbitmap_word_count(bitmap->bits),
                        buf);
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, words * 8);
}

void bdrv_dirty_bitmap_lock(BdrvDirtyBitmap *bitmap)
{
    g_mutex_lock(&bitmap->bs->lock);
}

void bdrv_dirty_bitmap_unlock(BdrvDirtyBitmap *bitmap)
{
    g_mutex_unlock(&bitmap->bs->lock);
}
