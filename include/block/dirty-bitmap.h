/*
 * Dirty bitmaps on a BlockNode, with QEMU's semantics: each bitmap tracks
 * which granularity-sized chunks of the node were written while it was
 * enabled. Bitmaps live on bs->dirty_bitmaps; named ones are user-visible,
 * anonymous ones are successors. Flags: persistent (stored in the image by the
 * format driver), busy (an operation such as migration owns it: users may not
 * modify it, but writes still mark it), inconsistent (found IN_USE on open:
 * contents unknown), readonly (image opened read-only), skip_store (migration
 * moved it elsewhere: do not store it here).
 *
 * Serialization is QEMU's: the bits as little-endian 64-bit words, bit i
 * covering bytes [i * granularity, (i + 1) * granularity); a part must start
 * at a multiple of bdrv_dirty_bitmap_serialization_align() bytes, and its
 * length must be a multiple of it too unless the part ends at the end.
 *
 * Locking: every function here must be called with the node's lock held
 * (bdrv_lock(bs) / bdrv_dirty_bitmap_lock()), as the block layer holds it
 * when it calls bdrv_dirty_bitmaps_mark() (declared in block/block.h).
 * Offsets and counts are in bytes of the node.
 */
#ifndef BLOCK_DIRTY_BITMAP_H
#define BLOCK_DIRTY_BITMAP_H

#include "block/block.h"

#define BDRV_BITMAP_MAX_NAME_SIZE   1023
#define BDRV_BITMAP_MIN_GRANULARITY 512
#define BDRV_BITMAP_MAX_GRANULARITY (1ULL << 31)

/* What bdrv_dirty_bitmap_check() refuses. */
typedef enum {
    BDRV_BITMAP_BUSY         = 1 << 0,
    BDRV_BITMAP_RO           = 1 << 1,
    BDRV_BITMAP_INCONSISTENT = 1 << 2,
} BdrvBitmapCheck;
#define BDRV_BITMAP_DEFAULT  (BDRV_BITMAP_BUSY | BDRV_BITMAP_RO | \
                              BDRV_BITMAP_INCONSISTENT)
#define BDRV_BITMAP_ALLOW_RO (BDRV_BITMAP_BUSY | BDRV_BITMAP_INCONSISTENT)

/*
 * Creates an enabled, empty bitmap covering bdrv_getlength(bs). name may be
 * NULL (anonymous). granularity: power of two, 512 B .. 2 GiB.
 */
BdrvDirtyBitmap *bdrv_create_dirty_bitmap(BlockNode *bs, uint32_t granularity,
                                          const char *name, GError **errp);
/* Frees the bitmap (and its successor, if any). */
void bdrv_release_dirty_bitmap(BdrvDirtyBitmap *bitmap);
/* Frees every bitmap of bs; for node close. */
void bdrv_release_all_dirty_bitmaps(BlockNode *bs);
BdrvDirtyBitmap *bdrv_find_dirty_bitmap(BlockNode *bs, const char *name);
bool bdrv_has_named_bitmaps(BlockNode *bs);
/* The node's bitmaps, oldest first: prev NULL gives the first, the last
 * gives NULL. With the node locked (bdrv_lock). */
BdrvDirtyBitmap *bdrv_dirty_bitmap_next(BlockNode *bs, BdrvDirtyBitmap *prev);
/*
 * QMP's block-dirty-bitmap-remove: refuses busy/readonly bitmaps, removes a
 * persistent one from the image through the driver, then releases it.
 */
bool bdrv_remove_dirty_bitmap(BlockNode *bs, const char *name, GError **errp);
/*
 * Makes a bitmap persistent (true) after asking the driver whether it can
 * store it (QMP's persistent=true), or not persistent (false).
 */
bool bdrv_dirty_bitmap_make_persistent(BdrvDirtyBitmap *bitmap, bool on,
                                       GError **errp);

/* Attributes. */
BlockNode *bdrv_dirty_bitmap_node(const BdrvDirtyBitmap *bitmap);
const char *bdrv_dirty_bitmap_name(const BdrvDirtyBitmap *bitmap);
uint32_t bdrv_dirty_bitmap_granularity(const BdrvDirtyBitmap *bitmap);
uint64_t bdrv_dirty_bitmap_size(const BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_enabled(const BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_busy(const BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_inconsistent(const BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_readonly(const BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_has_successor(const BdrvDirtyBitmap *bitmap);
/* persistent && !skip_store, as QEMU reports it. */
bool bdrv_dirty_bitmap_get_persistence(const BdrvDirtyBitmap *bitmap);
void bdrv_dirty_bitmap_set_persistence(BdrvDirtyBitmap *bitmap, bool on);
void bdrv_dirty_bitmap_set_busy(BdrvDirtyBitmap *bitmap, bool busy);
void bdrv_dirty_bitmap_set_readonly(BdrvDirtyBitmap *bitmap, bool ro);
/* Inconsistent bitmaps are also disabled, like QEMU's. */
void bdrv_dirty_bitmap_set_inconsistent(BdrvDirtyBitmap *bitmap);
void bdrv_dirty_bitmap_skip_store(BdrvDirtyBitmap *bitmap, bool skip);
void bdrv_enable_dirty_bitmap(BdrvDirtyBitmap *bitmap);
void bdrv_disable_dirty_bitmap(BdrvDirtyBitmap *bitmap);
/* Enabled, or its successor records writes (which reclaim brings back). */
bool bdrv_dirty_bitmap_records_writes(const BdrvDirtyBitmap *bitmap);

/*
 * Fails with QEMU's message if the bitmap is in a state 'flags' refuses
 * (busy / readonly / inconsistent).
 */
bool bdrv_dirty_bitmap_check(const BdrvDirtyBitmap *bitmap,
                             BdrvBitmapCheck flags, GError **errp);

/*
 * Contents. Ranges are clamped to the bitmap's size. On a crash-safe
 * persistent bitmap (block/write-intent.h) set and merge write the new bits
 * to the image before they return (merge fails if they cannot); reset and
 * clear take them out of it once the node's data is durable.
 */
void bdrv_set_dirty_bitmap(BdrvDirtyBitmap *bitmap, uint64_t offset,
                           uint64_t bytes);
void bdrv_reset_dirty_bitmap(BdrvDirtyBitmap *bitmap, uint64_t offset,
                             uint64_t bytes);
void bdrv_clear_dirty_bitmap(BdrvDirtyBitmap *bitmap);
bool bdrv_dirty_bitmap_get(const BdrvDirtyBitmap *bitmap, uint64_t offset);
/* Dirty bytes: set bits times the granularity (QEMU's "count"). */
uint64_t bdrv_get_dirty_count(const BdrvDirtyBitmap *bitmap);
/* First dirty byte offset >= offset (granularity-aligned), or -1. */
int64_t bdrv_dirty_bitmap_next_dirty(const BdrvDirtyBitmap *bitmap,
                                     uint64_t offset);
/* First clean byte offset in [offset, offset + bytes), or -1. */
int64_t bdrv_dirty_bitmap_next_zero(const BdrvDirtyBitmap *bitmap,
                                    uint64_t offset, uint64_t bytes);
/*
 * The next dirty extent starting in [offset, end): its byte offset and
 * length, clipped to [offset, end) and the bitmap size. False if none.
 */
bool bdrv_dirty_bitmap_next_dirty_area(const BdrvDirtyBitmap *bitmap,
                                       uint64_t offset, uint64_t end,
                                       uint64_t *area_offset,
                                       uint64_t *area_bytes);
/*
 * dest |= src. dest must pass check(DEFAULT), src check(ALLOW_RO); sizes
 * must match; granularities may differ. src may belong to another node.
 */
bool bdrv_merge_dirty_bitmap(BdrvDirtyBitmap *dest,
                             const BdrvDirtyBitmap *src, GError **errp);
/* Follows a change of the node's size (bits past the new end are lost). */
bool bdrv_dirty_bitmaps_truncate(BlockNode *bs, uint64_t size, GError **errp);

/*
 * Successors (QEMU's semantics, as dirty-bitmap migration and backup use
 * them). create_successor: the bitmap becomes busy and disabled; a new
 * anonymous bitmap with the same granularity takes over its enabled state and
 * records new writes. reclaim: the successor's bits are merged back, the
 * bitmap takes the successor's enabled state and is no longer busy; returns
 * the bitmap. abdicate: the successor takes the bitmap's name and
 * persistence and replaces it (the bitmap's own bits are dropped); returns the
 * successor.
 */
bool bdrv_dirty_bitmap_create_successor(BdrvDirtyBitmap *bitmap,
                                        GError **errp);
void bdrv_dirty_bitmap_enable_successor(BdrvDirtyBitmap *bitmap);
BdrvDirtyBitmap *bdrv_reclaim_dirty_bitmap(BdrvDirtyBitmap *parent,
                                           GError **errp);
BdrvDirtyBitmap *bdrv_dirty_bitmap_abdicate(BdrvDirtyBitmap *parent,
                                            GError **errp);

/* Serialization (see the top of this file). */
uint64_t bdrv_dirty_bitmap_serialization_align(const BdrvDirtyBitmap *bitmap);
/* Bytes serialize_part writes for [offset, offset + bytes); 0 if empty. */
uint64_t bdrv_dirty_bitmap_serialization_size(const BdrvDirtyBitmap *bitmap,
                                              uint64_t offset, uint64_t bytes);
/* Bytes of the node one serialized buffer of 'size' bytes covers. */
uint64_t bdrv_dirty_bitmap_serialization_coverage(const BdrvDirtyBitmap *bitmap,
                                                  uint64_t size);
/* Validates a part's range against the alignment rules and the size. */
bool bdrv_dirty_bitmap_check_part(const BdrvDirtyBitmap *bitmap,
                                  uint64_t offset, uint64_t bytes,
                                  GError **errp);
bool bdrv_dirty_bitmap_serialize_part(const BdrvDirtyBitmap *bitmap,
                                      uint8_t *buf, uint64_t offset,
                                      uint64_t bytes, GError **errp);
/* buf holds serialization_size(offset, bytes) bytes. */
bool bdrv_dirty_bitmap_deserialize_part(BdrvDirtyBitmap *bitmap,
                                        const uint8_t *buf, uint64_t offset,
                                        uint64_t bytes, GError **errp);
bool bdrv_dirty_bitmap_deserialize_zeroes(BdrvDirtyBitmap *bitmap,
                                          uint64_t offset, uint64_t bytes,
                                          GError **errp);
bool bdrv_dirty_bitmap_deserialize_ones(BdrvDirtyBitmap *bitmap,
                                        uint64_t offset, uint64_t bytes,
                                        GError **errp);
/* Ends a series of deserialize calls (the summary is kept exact as they go,
 * so this only exists to mirror QEMU's sequence). */
void bdrv_dirty_bitmap_deserialize_finish(BdrvDirtyBitmap *bitmap);

/*
 * SHA-256 (lowercase hex, g_free it) of the whole bitmap as little-endian
 * 64-bit words, at least one word: QEMU's x-debug-block-dirty-bitmap-sha256.
 */
char *bdrv_dirty_bitmap_sha256(const BdrvDirtyBitmap *bitmap);

/* The node lock, for callers that hold a bitmap but not its node. */
void bdrv_dirty_bitmap_lock(BdrvDirtyBitmap *bitmap);
void bdrv_dirty_bitmap_unlock(BdrvDirtyBitmap *bitmap);

#endif
