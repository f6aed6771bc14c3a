/*
 * Crash-safe persistent dirty bitmaps, write-intent style (as md-raid's
 * bitmap): while a node is open read-write, the image's copy of every
 * persistent bitmap is kept a superset of the writes it must record, so a
 * crash or power cut leaves it consistent (never IN_USE) and safe to back
 * up from. Before a write is issued to a region whose bits are clear in the
 * image, those bits (pre-set over a larger chunk) are written and made
 * durable; later writes into the chunk cost a bit test. The format driver
 * lays the bitmaps out so that this is an in-place write (BlockDriver's
 * bitmaps_arm / bitmap_write_words / bitmap_set_flags); this file owns the
 * bookkeeping: which bits the image is known to hold, the chunk policy,
 * batching, and keeping clear/merge/enable/disable true on disk.
 *
 * The guarantee (see docs/dirty-bitmaps.md): at every instant, every
 * granule whose data in the image may differ from the bitmap's reference
 * state (when it was created or last cleared) has its bit set in the copy
 * the image holds durably, provided the host honours fdatasync/RWF_DSYNC.
 *
 * Locking: everything runs with the node's lock held, except
 * bdrv_write_intent_announce(), which takes it.
 */
#ifndef BLOCK_WRITE_INTENT_H
#define BLOCK_WRITE_INTENT_H

#include "block/dirty-bitmap.h"

/* A byte range of the node, for announcing writes. */
typedef struct BdrvRange {
    uint64_t offset;
    uint64_t bytes;
} BdrvRange;

/* Counters for tests and benchmarks. */
typedef struct BdrvWriteIntentStats {
    uint64_t syncs;           /* intent writes that waited for the disk */
    uint64_t sync_us;         /* time they took */
    uint64_t ranges;          /* chunk ranges pre-set by them */
    uint64_t chunk;           /* current chunk, bytes */
    uint64_t bitmaps;         /* bitmaps tracked */
} BdrvWriteIntentStats;

/* True if bs keeps its persistent bitmaps crash-safe (read-write, not
 * opened with BDRV_O_BITMAPS_IN_USE, and the format can). */
bool bdrv_write_intent_enabled(BlockNode *bs);
/*
 * Starts tracking every persistent, consistent, writable bitmap of bs that
 * is not tracked yet: the driver stores them all in the crash-safe layout
 * (data clusters allocated, IN_USE clear). No-op when not enabled.
 */
bool bdrv_write_intent_arm(BlockNode *bs, GError **errp);
/* Stops tracking (the driver stored the bitmaps in another layout). */
void bdrv_write_intent_drop(BlockNode *bs);
/* Frees the node's state (node freed). */
void bdrv_write_intent_close(BlockNode *bs);
bool bdrv_write_intent_tracking(BlockNode *bs);

/*
 * Before writes (write, write-zeroes, discard) to these ranges are issued:
 * makes their bits durable in the image, one sync for all of them.
 */
bool bdrv_write_intent_cover(BlockNode *bs, const BdrvRange *r, unsigned n,
                             GError **errp);
/* The same for a device that is about to issue a batch (takes the lock);
 * an optimisation only, since every write covers itself again. */
bool bdrv_write_intent_announce(BlockNode *bs, const BdrvRange *r,
                                unsigned n, GError **errp);

/* Bits set outside the write path (bdrv_set_dirty_bitmap): write them
 * durably (failures warn). */
void bdrv_write_intent_bits_set(BdrvDirtyBitmap *bm, uint64_t offset,
                                uint64_t bytes);
/* The bitmap's bits grew (merge, reclaim): write them durably. */
bool bdrv_write_intent_bits_added(BdrvDirtyBitmap *bm, GError **errp);
/* The bitmap's bits shrank (clear, reset): after the node's data is
 * durable, the image's copy drops them too. Failures only warn: the copy
 * stays a superset. */
void bdrv_write_intent_bits_removed(BdrvDirtyBitmap *bm);
/* Enabled state changed: the image's AUTO flag follows (failures warn). */
void bdrv_write_intent_flags_changed(BdrvDirtyBitmap *bm);
/* 'to' takes over 'from' (successor abdication); 'from' is forgotten. */
void bdrv_write_intent_replace(BdrvDirtyBitmap *from, BdrvDirtyBitmap *to);
/* The bitmap is being released. */
void bdrv_write_intent_forget(BdrvDirtyBitmap *bm);
/*
 * Before a resize: the tracked bitmaps are marked IN_USE in the image (their
 * table no longer fits the new size) and tracking stops; bdrv_write_intent_arm
 * afterwards lays them out again for the new size.
 */
bool bdrv_write_intent_suspend(BlockNode *bs, GError **errp);

/*
 * Chunk policy: a write to uncovered bits pre-sets the aligned chunk around
 * it. The chunk starts at 'min'; intent syncs may take 1/share of the time
 * with a burst of burst_us (a token bucket): each sync past that makes the
 * chunk 4 times larger, up to 'max'; a sync after an idle spell that
 * refilled the whole burst halves it.
 * min == max fixes it; 0 keeps the default for that bound. The budget
 * (default 1/50 and 50 ms) is for tests.
 */
void bdrv_write_intent_set_chunk(BlockNode *bs, uint64_t min, uint64_t max);
void bdrv_write_intent_set_sync_budget(BlockNode *bs, unsigned share,
                                       int64_t burst_us);
void bdrv_write_intent_get_stats(BlockNode *bs, BdrvWriteIntentStats *st);

#endif
