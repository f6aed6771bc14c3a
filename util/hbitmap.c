/*
 * The hierarchical bitmap (include/tern/hbitmap.h). levels[0] holds the bits;
 * levels[l + 1] has one bit per word of levels[l], set iff that word is non-zero;
 * the top level is a single word. Every mutation keeps that invariant and the
 * set-bit count exact, so searches never see a stale summary. Clear-bit searches
 * scan level 0 directly: they are rare (end of a dirty run) and short.
 */
#include <string.h>

#include "tern/hbitmap.h"

#define HB_LEVELS_MAX 12    /* 64^12 > 2^64: enough for any nbits */

struct HBitmap {
    uint64_t nbits;
    uint64_t count;
    unsigned nlevels;
    uint64_t nwords[HB_LEVELS_MAX];   /* words in each level */
    uint64_t *levels[HB_LEVELS_MAX];
};

static inline uint64_t word_of(uint64_t bit)
{
    return bit >> 6;
}

/* Bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static inline uint64_t mask_bits(unsigned lo, unsigned hi)
{
    uint64_t m = hi == 64 ? ~0ULL : (1ULL << hi) - 1;

    return m & (~0ULL << lo);
}

/* Number of meaningful bits in a level: nbits for 0, else words below. */
static uint64_t level_bits(const HBitmap *hb, unsigned l)
{
    return l == 0 ? hb->nbits : hb->nwords[l - 1];
}

HBitmap *hbitmap_try_new(uint64_t nbits)
{
    HBitmap *hb;
    uint64_t bits = nbits;

    if (nbits > HBITMAP_MAX_BITS) {
        return NULL;
    }
    hb = g_new0(HBitmap, 1);
    hb->nbits = nbits;
    do {
        uint64_t words = MAX(DIV_ROUND_UP(bits, 64), 1);

        hb->nwords[hb->nlevels] = words;
        hb->levels[hb->nlevels] = g_try_new0(uint64_t, words);
        if (!hb->levels[hb->nlevels]) {
            hbitmap_free(hb);
            return NULL;
        }
        hb->nlevels++;
        bits = words;
    } while (bits > 1);
    return hb;
}

void hbitmap_free(HBitmap *hb)
{
    if (!hb) {
        return;
    }
    for (unsigned l = 0; l < hb->nlevels; l++) {
        g_free(hb->levels[l]);
    }
    g_free(hb);
}

uint64_t hbitmap_size(const HBitmap *hb)
{
    return hb->nbits;
}

uint64_t hbitmap_count(const HBitmap *hb)
{
    return hb->count;
}

uint64_t hbitmap_word_count(const HBitmap *hb)
{
    return DIV_ROUND_UP(hb->nbits, 64);
}

bool hbitmap_get(const HBitmap *hb, uint64_t bit)
{
    if (bit >= hb->nbits) {
        return false;
    }
    return hb->levels[0][word_of(bit)] >> (bit & 63) & 1;
}

/* Clamp [start, start + count) to the bitmap; false if empty. */
static bool clamp_range(const HBitmap *hb, uint64_t start, uint64_t *count)
{
    if (start >= hb->nbits || *count == 0) {
        return false;
    }
    *count = MIN(*count, hb->nbits - start);
    return true;
}

/*
 * Sets bits [lo, hi) of level l, returning how many were newly set. The
 * summary above then gets bits [lo/64, (hi-1)/64] set: each of those words
 * now holds a set bit.
 */
static uint64_t level_set(HBitmap *hb, unsigned l, uint64_t lo, uint64_t hi)
{
    uint64_t *w = hb->levels[l];
    uint64_t added = 0;

    for (uint64_t i = word_of(lo); i <= word_of(hi - 1); i++) {
        unsigned b0 = i == word_of(lo) ? lo & 63 : 0;
        unsigned b1 = i == word_of(hi - 1) ? ((hi - 1) & 63) + 1 : 64;
        uint64_t m = mask_bits(b0, b1);

        added += __builtin_popcountll(m & ~w[i]);
        w[i] |= m;
    }
    return added;
}

void hbitmap_set(HBitmap *hb, uint64_t start, uint64_t count)
{
    uint64_t lo = start, hi;

    if (!clamp_range(hb, start, &count)) {
        return;
    }
    hi = start + count;
    hb->count += level_set(hb, 0, lo, hi);
    for (unsigned l = 1; l < hb->nlevels; l++) {
        hi = word_of(hi - 1) + 1;
        lo = word_of(lo);
        level_set(hb, l, lo, hi);
    }
}

/* Clears bits [lo, hi) of level 0, returning how many were set. */
static uint64_t level0_clear(HBitmap *hb, uint64_t lo, uint64_t hi)
{
    uint64_t *w = hb->levels[0];
    uint64_t removed = 0;

    for (uint64_t i = word_of(lo); i <= word_of(hi - 1); i++) {
        unsigned b0 = i == word_of(lo) ? lo & 63 : 0;
        unsigned b1 = i == word_of(hi - 1) ? ((hi - 1) & 63) + 1 : 64;
        uint64_t m = mask_bits(b0, b1);

        removed += __builtin_popcountll(m & w[i]);
        w[i] &= ~m;
    }
    return removed;
}

/* Words [lo, hi] of level l may have become zero: clear their summary bits. */
static void summary_clear_zero_words(HBitmap *hb, uint64_t lo, uint64_t hi)
{
    for (unsigned l = 0; l + 1 < hb->nlevels; l++) {
        uint64_t *w = hb->levels[l], *up = hb->levels[l + 1];

        for (uint64_t i = lo; i <= hi; i++) {
            if (!w[i]) {
                up[word_of(i)] &= ~(1ULL << (i & 63));
            }
        }
        lo = word_of(lo);
        hi = word_of(hi);
    }
}

void hbitmap_reset(HBitmap *hb, uint64_t start, uint64_t count)
{
    if (!clamp_range(hb, start, &count)) {
        return;
    }
    hb->count -= level0_clear(hb, start, start + count);
    summary_clear_zero_words(hb, word_of(start), word_of(start + count - 1));
}

void hbitmap_reset_all(HBitmap *hb)
{
    for (unsigned l = 0; l < hb->nlevels; l++) {
        memset(hb->levels[l], 0, hb->nwords[l] * sizeof(uint64_t));
    }
    hb->count = 0;
}

void hbitmap_set_all(HBitmap *hb)
{
    hbitmap_set(hb, 0, hb->nbits);
}

/* First set bit >= pos in level l, or -1; climbs the summary when needed. */
static int64_t level_next_set(const HBitmap *hb, unsigned l, uint64_t pos)
{
    uint64_t i, w;

    if (pos >= level_bits(hb, l)) {
        return -1;
    }
    i = word_of(pos);
    w = hb->levels[l][i] & (~0ULL << (pos & 63));
    if (!w) {
        int64_t up;

        if (l + 1 == hb->nlevels) {
            return -1;
        }
        up = level_next_set(hb, l + 1, i + 1);
        if (up < 0) {
            return -1;
        }
        i = up;
        w = hb->levels[l][i];   /* non-zero: its summary bit is set */
    }
    return (int64_t)((i << 6) + __builtin_ctzll(w));
}

int64_t hbitmap_next_set(const HBitmap *hb, uint64_t start)
{
    return level_next_set(hb, 0, start);
}

int64_t hbitmap_next_zero(const HBitmap *hb, uint64_t start, uint64_t count)
{
    uint64_t end;

    if (!clamp_range(hb, start, &count)) {
        return -1;
    }
    end = start + count;
    for (uint64_t i = word_of(start); i <= word_of(end - 1); i++) {
        uint64_t w = ~hb->levels[0][i];

        if (i == word_of(start)) {
            w &= ~0ULL << (start & 63);
        }
        if (w) {
            uint64_t bit = (i << 6) + __builtin_ctzll(w);

            return bit < end ? (int64_t)bit : -1;
        }
    }
    return -1;
}

bool hbitmap_next_set_area(const HBitmap *hb, uint64_t start, uint64_t end,
                           uint64_t *area_start, uint64_t *area_count)
{
    int64_t first, zero;

    end = MIN(end, hb->nbits);
    if (start >= end) {
        return false;
    }
    first = hbitmap_next_set(hb, start);
    if (first < 0 || (uint64_t)first >= end) {
        return false;
    }
    zero = hbitmap_next_zero(hb, first, end - first);
    *area_start = first;
    *area_count = (zero < 0 ? end : (uint64_t)zero) - first;
    return true;
}

void hbitmap_merge(HBitmap *dst, const HBitmap *src)
{
    g_assert(dst->nbits == src->nbits);
    for (uint64_t i = 0; i < dst->nwords[0]; i++) {
        uint64_t add = src->levels[0][i] & ~dst->levels[0][i];

        dst->count += __builtin_popcountll(add);
        dst->levels[0][i] |= add;
    }
    /* A word of the union is non-zero iff it is in either: OR the summaries. */
    for (unsigned l = 1; l < dst->nlevels; l++) {
        for (uint64_t i = 0; i < dst->nwords[l]; i++) {
            dst->levels[l][i] |= src->levels[l][i];
        }
    }
}

/* Sets or clears summary bits above level-0 word i after it changed. */
static void summary_update_word(HBitmap *hb, uint64_t i, bool nonzero)
{
    for (unsigned l = 1; l < hb->nlevels; l++) {
        uint64_t *w = &hb->levels[l][word_of(i)];
        uint64_t bit = 1ULL << (i & 63);
        bool was_nonzero = *w != 0;

        *w = nonzero ? *w | bit : *w & ~bit;
        if (was_nonzero == (*w != 0)) {
            return;     /* the level above does not change */
        }
        i = word_of(i);
    }
}

static void word_store(HBitmap *hb, uint64_t i, uint64_t val)
{
    uint64_t old = hb->levels[0][i];

    if (i == hb->nwords[0] - 1 && (hb->nbits & 63)) {
        val &= mask_bits(0, hb->nbits & 63);
    }
    if (hb->nbits == 0) {
        val = 0;
    }
    hb->levels[0][i] = val;
    hb->count += __builtin_popcountll(val);
    hb->count -= __builtin_popcountll(old);
    if ((old != 0) != (val != 0)) {
        summary_update_word(hb, i, val != 0);
    }
}

bool hbitmap_resize(HBitmap *hb, uint64_t nbits)
{
    g_autoptr(HBitmap) nhb = hbitmap_try_new(nbits);
    uint64_t keep;
    HBitmap tmp;

    if (!nhb) {
        return false;
    }
    keep = MIN(hbitmap_word_count(hb), hbitmap_word_count(nhb));
    for (uint64_t i = 0; i < keep; i++) {
        word_store(nhb, i, hb->levels[0][i]);
    }
    tmp = *hb;
    *hb = *nhb;
    *nhb = tmp;
    return true;
}

void hbitmap_store_words(const HBitmap *hb, uint64_t first, uint64_t n,
                         uint8_t *buf)
{
    g_assert(first <= hbitmap_word_count(hb) &&
             n <= hbitmap_word_count(hb) - first);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t le = GUINT64_TO_LE(hb->levels[0][first + i]);

        memcpy(buf + i * 8, &le, 8);
    }
}

void hbitmap_load_words(HBitmap *hb, uint64_t first, uint64_t n,
                        const uint8_t *buf)
{
    g_assert(first <= hbitmap_word_count(hb) &&
             n <= hbitmap_word_count(hb) - first);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t le;

        memcpy(&le, buf + i * 8, 8);
        word_store(hb, first + i, GUINT64_FROM_LE(le));
    }
}
