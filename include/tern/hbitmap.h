/*
 * A hierarchical bitmap: a flat array of bits (level 0) plus summary levels in
 * which bit i says "word i of the level below is non-zero". Finding the next set
 * bit in an almost empty bitmap of 2^24 bits touches four words, so dirty
 * bitmaps of terabyte disks are cheap to walk. Level 0 words are the exact bits;
 * bits past the end are always kept zero. Not thread-safe: callers lock.
 */
#ifndef TERN_HBITMAP_H
#define TERN_HBITMAP_H

#include "tern/common.h"

typedef struct HBitmap HBitmap;

/* Largest bitmap hbitmap_try_new accepts (8 GiB of level-0 words). */
#define HBITMAP_MAX_BITS (1ULL << 36)

/* NULL if nbits > HBITMAP_MAX_BITS or the memory is not available. */
HBitmap *hbitmap_try_new(uint64_t nbits);
void hbitmap_free(HBitmap *hb);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HBitmap, hbitmap_free)

uint64_t hbitmap_size(const HBitmap *hb);   /* in bits */
uint64_t hbitmap_count(const HBitmap *hb);  /* set bits */
bool hbitmap_get(const HBitmap *hb, uint64_t bit);

/* Ranges are clamped to the bitmap's size. */
void hbitmap_set(HBitmap *hb, uint64_t start, uint64_t count);
void hbitmap_reset(HBitmap *hb, uint64_t start, uint64_t count);
void hbitmap_reset_all(HBitmap *hb);
void hbitmap_set_all(HBitmap *hb);

/* First set bit >= start, or -1. */
int64_t hbitmap_next_set(const HBitmap *hb, uint64_t start);
/* First clear bit in [start, start + count), or -1. */
int64_t hbitmap_next_zero(const HBitmap *hb, uint64_t start, uint64_t count);
/*
 * First run of set bits that starts in [start, end): stores its start and
 * length (clipped to end) and returns true; false when there is none.
 */
bool hbitmap_next_set_area(const HBitmap *hb, uint64_t start, uint64_t end,
                           uint64_t *area_start, uint64_t *area_count);

/* dst |= src; both must have the same size (asserted: callers check first). */
void hbitmap_merge(HBitmap *dst, const HBitmap *src);

/* Grow or shrink, keeping the bits that remain in range. False on ENOMEM. */
bool hbitmap_resize(HBitmap *hb, uint64_t nbits);

/*
 * Level-0 words [first, first + n) as little-endian 64-bit words, the layout
 * of QEMU's bitmap serialization and of qcow2 bitmap data clusters. The range
 * must lie within the bitmap's words (asserted).
 */
void hbitmap_store_words(const HBitmap *hb, uint64_t first, uint64_t n,
                         uint8_t *buf);
/* The reverse; bits past the bitmap's end are dropped. */
void hbitmap_load_words(HBitmap *hb, uint64_t first, uint64_t n,
                        const uint8_t *buf);
/* Number of level-0 words: DIV_ROUND_UP(size, 64). */
uint64_t hbitmap_word_count(const HBitmap *hb);

#endif
