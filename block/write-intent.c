/*
 * Crash-safe persistent bitmaps, write-intent style (include/block/
 * write-intent.h): for every tracked bitmap, 'ondisk' mirrors the bits the
 * image's copy holds (exactly what was last written there; every bit of it
 * that a write relies on was made durable first). A write whose granules
 * are clear in 'ondisk' first sets the aligned chunk around them in the
 * image with a durable write (RWF_DSYNC: only those bytes reach the disk,
 * not the guest data the file holds dirty), then goes ahead. The driver
 * keeps each tracked bitmap's data in one contiguous run of clusters, so a
 * span of words is one write. Bits leave the image only after the node's
 * data is durable (clear), so no write that may still be lost loses its bit.
 *
 * The node state hangs off bs->bitmap_opaque; everything runs with the
 * node's lock held.
 */
#include <string.h>

#include "block/write-intent.h"
#include "tern/hbitmap.h"

/* Chunk policy defaults (see docs/dirty-bitmaps.md for the measurements). */
#define CHUNK_MIN_DEFAULT   (1 * MiB)   /* the maximum is the whole disk */
/* Intent syncs may take 1/SYNC_SHARE of the time, with a burst of
 * SYNC_BURST_US (a token bucket): past that the chunk grows x4; a sync
 * after an idle spell long enough to refill the whole burst halves it. */
#define SYNC_SHARE          50
#define SYNC_BURST_US       50000
/* Spans of words closer than this are written (and synced) as one. */
#define MERGE_GAP_BYTES     (256 * KiB)
#define MAX_GROUP_BYTES     (1 * MiB)

typedef struct IntentBitmap {
    BdrvDirtyBitmap *bm;
    HBitmap *ondisk;          /* what the image's copy holds */
    int gran_bits;
} IntentBitmap;

typedef struct WriteIntent {
    GPtrArray *tracked;       /* of IntentBitmap * */
    uint64_t chunk, chunk_min, chunk_max;
    gint64 last_sync_end;     /* monotonic us */
    gint64 budget_us;         /* sync time the chunk policy still allows */
    unsigned sync_share;      /* SYNC_SHARE unless a test changed it */
    gint64 burst_us;          /* SYNC_BURST_US likewise */
    uint64_t syncs, ranges, sync_us;
} WriteIntent;

/* Bits [first, first + count) of one tracked bitmap to set in the image. */
typedef struct Pending {
    IntentBitmap *ib;
    uint64_t first, count;
} Pending;

static void intent_bitmap_free(gpointer p)
{
    IntentBitmap *ib = p;

    hbitmap_free(ib->ondisk);
    g_free(ib);
}

static uint64_t pow2_ceil(uint64_t v)
{
    return v <= 1 ? 1 : 1ULL << (64 - __builtin_clzll(v - 1));
}

static WriteIntent *wi_get(BlockNode *bs)
{
    WriteIntent *wi = bs->bitmap_opaque;

    if (!wi) {
        wi = g_new0(WriteIntent, 1);
        wi->tracked = g_ptr_array_new_with_free_func(intent_bitmap_free);
        wi->chunk_min = CHUNK_MIN_DEFAULT;
        wi->chunk_max = MAX(pow2_ceil(bs->size), CHUNK_MIN_DEFAULT);
        wi->chunk = wi->chunk_min;
        wi->sync_share = SYNC_SHARE;
        wi->burst_us = SYNC_BURST_US;
        bs->bitmap_opaque = wi;
    }
    return wi;
}

static IntentBitmap *find_tracked(WriteIntent *wi, const BdrvDirtyBitmap *bm,
                                  guint *index)
{
    for (guint i = 0; wi && i < wi->tracked->len; i++) {
        IntentBitmap *ib = wi->tracked->pdata[i];

        if (ib->bm == bm) {
            if (index) {
                *index = i;
            }
            return ib;
        }
    }
    return NULL;
}

static IntentBitmap *tracked_of(const BdrvDirtyBitmap *bm)
{
    return find_tracked(bdrv_dirty_bitmap_node(bm)->bitmap_opaque, bm, NULL);
}

bool bdrv_write_intent_enabled(BlockNode *bs)
{
    return !(bs->flags & BDRV_O_BITMAPS_IN_USE) && !bs->read_only &&
           !bs->inactive && bs->drv && bs->drv->bitmaps_arm;
}

bool bdrv_write_intent_tracking(BlockNode *bs)
{
    WriteIntent *wi = bs->bitmap_opaque;

    return wi && wi->tracked->len;
}

static bool eligible(const BdrvDirtyBitmap *bm)
{
    return bdrv_dirty_bitmap_name(bm) &&
           bdrv_dirty_bitmap_get_persistence(bm) &&
           !bdrv_dirty_bitmap_inconsistent(bm) &&
           !bdrv_dirty_bitmap_readonly(bm);
}

/* A record whose 'ondisk' equals the bitmap's bits (what the driver just
 * wrote). */
static IntentBitmap *track_new(BdrvDirtyBitmap *bm, GError **errp)
{
    uint64_t size = bdrv_dirty_bitmap_size(bm);
    int gran_bits = __builtin_ctz(bdrv_dirty_bitmap_granularity(bm));
    uint64_t nbits = DIV_ROUND_UP(size, 1ULL << gran_bits);
    HBitmap *hb = hbitmap_try_new(nbits);
    g_autofree uint8_t *buf = NULL;
    IntentBitmap *ib;

    if (!hb) {
        tern_fail(errp, TERN_ERR_FAILED, "Out of memory tracking bitmap '%s'",
                  bdrv_dirty_bitmap_name(bm));
        return NULL;
    }
    buf = g_malloc0(MAX(hbitmap_word_count(hb), 1) * 8);
    if (!bdrv_dirty_bitmap_serialize_part(bm, buf, 0, size, errp)) {
        hbitmap_free(hb);
        return NULL;
    }
    hbitmap_load_words(hb, 0, hbitmap_word_count(hb), buf);
    ib = g_new0(IntentBitmap, 1);
    ib->bm = bm;
    ib->ondisk = hb;
    ib->gran_bits = gran_bits;
    return ib;
}

bool bdrv_write_intent_arm(BlockNode *bs, GError **errp)
{
    g_autoptr(GPtrArray) fresh = NULL;
    g_autoptr(GError) err = NULL;
    WriteIntent *wi;
    bool missing = false;

    if (!bdrv_write_intent_enabled(bs)) {
        return true;
    }
    wi = wi_get(bs);
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        missing |= eligible(bm) && !find_tracked(wi, bm, NULL);
    }
    if (!missing) {
        return true;
    }
    /* The driver lays out every eligible bitmap afresh from its own bits,
     * dropping pre-set ones: the data they covered must be durable first. */
    if ((wi->tracked->len && !bs->drv->flush(bs, errp)) ||
        !bs->drv->bitmaps_arm(bs, errp)) {
        return false;
    }
    fresh = g_ptr_array_new_with_free_func(intent_bitmap_free);
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        IntentBitmap *ib;

        if (!eligible(bm)) {
            continue;
        }
        ib = track_new(bm, &err);
        if (!ib) {
            /* Untracked, its copy would go stale: say so in the image. */
            tern_warn("bitmap '%s' is not crash-safe: %s",
                      bdrv_dirty_bitmap_name(bm), err->message);
            g_clear_error(&err);
            bs->drv->bitmap_set_flags(bs, bm, true, NULL);
            continue;
        }
        g_ptr_array_add(fresh, ib);
    }
    g_ptr_array_unref(wi->tracked);
    wi->tracked = g_steal_pointer(&fresh);
    return true;
}

void bdrv_write_intent_drop(BlockNode *bs)
{
    WriteIntent *wi = bs->bitmap_opaque;

    if (wi) {
        g_ptr_array_set_size(wi->tracked, 0);
    }
}

void bdrv_write_intent_close(BlockNode *bs)
{
    WriteIntent *wi = bs->bitmap_opaque;

    if (wi) {
        g_ptr_array_unref(wi->tracked);
        g_free(wi);
        bs->bitmap_opaque = NULL;
    }
}

void bdrv_write_intent_forget(BdrvDirtyBitmap *bm)
{
    WriteIntent *wi = bdrv_dirty_bitmap_node(bm)->bitmap_opaque;
    guint i;

    if (find_tracked(wi, bm, &i)) {
        g_ptr_array_remove_index(wi->tracked, i);
    }
}

void bdrv_write_intent_replace(BdrvDirtyBitmap *from, BdrvDirtyBitmap *to)
{
    IntentBitmap *ib = tracked_of(from);

    if (ib) {
        ib->bm = to;
    }
}

/* ---- Writing words ---- */

/* Sets bits [first, first + count) in LE words that start at bit 'base'. */
static void words_set(uint64_t *le, uint64_t base, uint64_t first,
                      uint64_t count)
{
    for (uint64_t b = first; b < first + count;) {
        uint64_t w = (b - base) >> 6, bit = b & 63;
        uint64_t n = MIN(64 - bit, first + count - b);
        uint64_t mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << bit;

        le[w] = GUINT64_TO_LE(GUINT64_FROM_LE(le[w]) | mask);
        b += n;
    }
}

static gint pending_cmp(gconstpointer a, gconstpointer b)
{
    const Pending *x = a, *y = b;

    if (x->ib != y->ib) {
        return x->ib < y->ib ? -1 : 1;
    }
    return x->first < y->first ? -1 : x->first > y->first;
}

/*
 * Writes one group of pending ranges (same bitmap, sorted, close together)
 * as a single span of words holding 'ondisk' plus their bits; on success
 * 'ondisk' takes them.
 */
static bool write_group(BlockNode *bs, const Pending *p, guint n,
                        bool durable, GError **errp)
{
    IntentBitmap *ib = p[0].ib;
    uint64_t w0 = p[0].first >> 6, w1 = w0;
    g_autofree uint64_t *words = NULL;

    for (guint i = 0; i < n; i++) {
        w1 = MAX(w1, (p[i].first + p[i].count - 1) >> 6);
    }
    words = g_new(uint64_t, w1 - w0 + 1);
    hbitmap_store_words(ib->ondisk, w0, w1 - w0 + 1, (uint8_t *)words);
    for (guint i = 0; i < n; i++) {
        words_set(words, w0 << 6, p[i].first, p[i].count);
    }
    if (!bs->drv->bitmap_write_words(bs, ib->bm, w0, w1 - w0 + 1, words,
                                     durable, errp)) {
        return false;
    }
    for (guint i = 0; i < n; i++) {
        hbitmap_set(ib->ondisk, p[i].first, p[i].count);
    }
    return true;
}

/* Sets every pending range in the image: one write per group of nearby
 * ranges of one bitmap, a group spanning MAX_GROUP_BYTES at most. */
static bool persist(BlockNode *bs, GArray *pending, bool durable,
                    GError **errp)
{
    Pending *p = (Pending *)pending->data;
    guint start = 0;

    g_array_sort(pending, pending_cmp);
    for (guint i = 1; i <= pending->len; i++) {
        uint64_t first_word = p[start].first >> 6;
        uint64_t end_word = (p[i - 1].first + p[i - 1].count - 1) >> 6;

        if (i < pending->len && p[i].ib == p[start].ib &&
            (p[i].first >> 6) < end_word + MERGE_GAP_BYTES / 8 &&
            ((p[i].first + p[i].count - 1) >> 6) - first_word <
            MAX_GROUP_BYTES / 8) {
            continue;
        }
        if (!write_group(bs, p + start, i - start, durable, errp)) {
            return false;
        }
        start = i;
    }
    return true;
}

/* Bits of the bitmap a byte range touches, clipped to its size. */
static bool range_bits(const IntentBitmap *ib, const BdrvRange *r,
                       uint64_t *first, uint64_t *count)
{
    uint64_t nbits = hbitmap_size(ib->ondisk), last;

    if (!r->bytes || (r->offset >> ib->gran_bits) >= nbits) {
        return false;
    }
    *first = r->offset >> ib->gran_bits;
    last = MIN((r->offset + r->bytes - 1) >> ib->gran_bits, nbits - 1);
    *count = last - *first + 1;
    return true;
}

/* Chunk policy: grow while intent syncs take more than their share of the
 * time, shrink when they have become rare. */
static void adapt_chunk(WriteIntent *wi, gint64 start, gint64 end)
{
    gint64 refill = wi->last_sync_end ? (start - wi->last_sync_end) /
                                        wi->sync_share : wi->burst_us;

    wi->budget_us = MIN(wi->budget_us + refill, wi->burst_us) - (end - start);
    if (wi->burst_us && refill >= wi->burst_us) {
        wi->chunk = MAX(wi->chunk / 2, wi->chunk_min);  /* long idle */
    } else if (wi->budget_us < 0) {
        wi->chunk = MIN(wi->chunk * 4, wi->chunk_max);
    }
    wi->last_sync_end = end;
}

/* Bits [first, first + count) as pending ranges of MAX_GROUP_BYTES of words
 * at most, so that one write's buffer stays small. */
static void add_pending(GArray *pending, IntentBitmap *ib, uint64_t first,
                        uint64_t count)
{
    for (uint64_t b = first; b < first + count;) {
        Pending p = { ib, b, MIN(first + count - b, MAX_GROUP_BYTES * 8) };

        g_array_append_val(pending, p);
        b += p.count;
    }
}

static void add_chunk(WriteIntent *wi, GArray *pending, IntentBitmap *ib,
                      uint64_t first, uint64_t count)
{
    uint64_t nbits = hbitmap_size(ib->ondisk);
    uint64_t cbits = MAX(wi->chunk >> ib->gran_bits, 1);
    uint64_t s = first & ~(cbits - 1);
    uint64_t e = MIN(ALIGN_UP(first + count, cbits), nbits);

    add_pending(pending, ib, s, e - s);
}

bool bdrv_write_intent_cover(BlockNode *bs, const BdrvRange *r, unsigned n,
                             GError **errp)
{
    WriteIntent *wi = bs->bitmap_opaque;
    g_autoptr(GArray) pending = NULL;
    gint64 start;
    bool ok;

    if (!wi || !wi->tracked->len) {
        return true;
    }
    for (guint i = 0; i < wi->tracked->len; i++) {
        IntentBitmap *ib = wi->tracked->pdata[i];
        uint64_t first, count;

        if (!bdrv_dirty_bitmap_records_writes(ib->bm)) {
            continue;
        }
        for (unsigned j = 0; j < n; j++) {
            if (!range_bits(ib, &r[j], &first, &count) ||
                hbitmap_next_zero(ib->ondisk, first, count) < 0) {
                continue;
            }
            if (!pending) {
                pending = g_array_new(FALSE, FALSE, sizeof(Pending));
            }
            add_chunk(wi, pending, ib, first, count);
        }
    }
    if (!pending) {
        return true;
    }
    start = g_get_monotonic_time();
    ok = persist(bs, pending, true, errp);
    if (ok) {
        gint64 end = g_get_monotonic_time();

        wi->syncs++;
        wi->ranges += pending->len;
        wi->sync_us += end - start;
        adapt_chunk(wi, start, end);
    } else {
        g_prefix_error(errp, "Cannot record the write in a persistent"
                       " bitmap: ");
    }
    return ok;
}

bool bdrv_write_intent_announce(BlockNode *bs, const BdrvRange *r,
                                unsigned n, GError **errp)
{
    bool ok;

    bdrv_lock(bs);
    ok = bs->inactive || bs->read_only || bdrv_write_intent_cover(bs, r, n,
                                                                  errp);
    bdrv_unlock(bs);
    return ok;
}

void bdrv_write_intent_bits_set(BdrvDirtyBitmap *bm, uint64_t offset,
                                uint64_t bytes)
{
    IntentBitmap *ib = tracked_of(bm);
    BdrvRange r = { offset, bytes };
    g_autoptr(GArray) pending = NULL;
    g_autoptr(GError) err = NULL;
    uint64_t first, count;

    if (!ib || !range_bits(ib, &r, &first, &count) ||
        hbitmap_next_zero(ib->ondisk, first, count) < 0) {
        return;
    }
    pending = g_array_new(FALSE, FALSE, sizeof(Pending));
    add_pending(pending, ib, first, count);
    if (!persist(bdrv_dirty_bitmap_node(bm), pending, true, &err)) {
        tern_warn("bitmap '%s': bits set in memory are not in the image: %s",
                  bdrv_dirty_bitmap_name(bm), err->message);
    }
}

bool bdrv_write_intent_bits_added(BdrvDirtyBitmap *bm, GError **errp)
{
    IntentBitmap *ib = tracked_of(bm);
    g_autoptr(GArray) pending = NULL;
    uint64_t off = 0, s, c, size = bdrv_dirty_bitmap_size(bm);

    if (!ib) {
        return true;
    }
    pending = g_array_new(FALSE, FALSE, sizeof(Pending));
    while (bdrv_dirty_bitmap_next_dirty_area(bm, off, size, &s, &c)) {
        BdrvRange r = { s, c };
        uint64_t first, count;

        if (range_bits(ib, &r, &first, &count) &&
            hbitmap_next_zero(ib->ondisk, first, count) >= 0) {
            add_pending(pending, ib, first, count);
        }
        off = s + c;
    }
    if (pending->len && !persist(bdrv_dirty_bitmap_node(bm), pending, true,
                                 errp)) {
        g_prefix_error(errp, "Cannot write bitmap '%s' to the image: ",
                       bdrv_dirty_bitmap_name(bm));
        return false;
    }
    return true;
}

/*
 * Rewrites the image's copy with the bitmap's own bits wherever 'ondisk'
 * has bits (non-durably: the copy only shrinks, and any mix of old and new
 * sectors is still a superset).
 */
static bool rewrite_from_bitmap(BlockNode *bs, IntentBitmap *ib,
                                GError **errp)
{
    uint64_t nwords = hbitmap_word_count(ib->ondisk), first, count;
    uint64_t per = MERGE_GAP_BYTES / 8, bit = 0;

    while (hbitmap_next_set_area(ib->ondisk, bit, hbitmap_size(ib->ondisk),
                                 &first, &count)) {
        uint64_t w0 = first >> 6, n = MIN(per, nwords - w0);
        uint64_t gb = (uint64_t)ib->gran_bits;
        uint64_t size = bdrv_dirty_bitmap_size(ib->bm);
        uint64_t boff = (w0 << 6) << gb;
        g_autofree uint64_t *words = g_new0(uint64_t, n);

        if (!bdrv_dirty_bitmap_serialize_part(ib->bm, (uint8_t *)words,
                                              boff, MIN((n << 6) << gb,
                                                        size - boff), errp) ||
            !bs->drv->bitmap_write_words(bs, ib->bm, w0, n, words, false,
                                         errp)) {
            return false;
        }
        hbitmap_load_words(ib->ondisk, w0, n, (uint8_t *)words);
        bit = (w0 + n) << 6;
    }
    return true;
}

void bdrv_write_intent_bits_removed(BdrvDirtyBitmap *bm)
{
    BlockNode *bs = bdrv_dirty_bitmap_node(bm);
    IntentBitmap *ib = tracked_of(bm);
    g_autoptr(GError) err = NULL;

    if (!ib) {
        return;
    }
    /* Writes the image's copy still covers may sit in caches: make them
     * durable before their bits leave it. */
    if (!bs->drv->flush(bs, &err) || !rewrite_from_bitmap(bs, ib, &err)) {
        tern_warn("bitmap '%s': the image keeps bits cleared in memory: %s",
                  bdrv_dirty_bitmap_name(bm), err->message);
    }
}

void bdrv_write_intent_flags_changed(BdrvDirtyBitmap *bm)
{
    BlockNode *bs = bdrv_dirty_bitmap_node(bm);
    g_autoptr(GError) err = NULL;

    if (tracked_of(bm) && !bs->drv->bitmap_set_flags(bs, bm, false, &err)) {
        tern_warn("bitmap '%s': could not update its flags in the image: %s",
                  bdrv_dirty_bitmap_name(bm), err->message);
    }
}

bool bdrv_write_intent_suspend(BlockNode *bs, GError **errp)
{
    WriteIntent *wi = bs->bitmap_opaque;

    for (guint i = 0; wi && i < wi->tracked->len; i++) {
        IntentBitmap *ib = wi->tracked->pdata[i];

        if (!bs->drv->bitmap_set_flags(bs, ib->bm, true, errp)) {
            return false;
        }
    }
    bdrv_write_intent_drop(bs);
    return true;
}

void bdrv_write_intent_set_chunk(BlockNode *bs, uint64_t min, uint64_t max)
{
    WriteIntent *wi = wi_get(bs);

    if (min) {
        wi->chunk_min = pow2_ceil(min);
    }
    if (max) {
        wi->chunk_max = pow2_ceil(max);
    }
    wi->chunk_max = MAX(wi->chunk_max, wi->chunk_min);
    wi->chunk = wi->chunk_min;
}

void bdrv_write_intent_set_sync_budget(BlockNode *bs, unsigned share,
                                       int64_t burst_us)
{
    WriteIntent *wi = wi_get(bs);

    wi->sync_share = MAX(share, 1u);
    wi->burst_us = burst_us;
    wi->budget_us = 0;
}

void bdrv_write_intent_get_stats(BlockNode *bs, BdrvWriteIntentStats *st)
{
    WriteIntent *wi = bs->bitmap_opaque;

    memset(st, 0, sizeof(*st));
    if (wi) {
        st->syncs = wi->syncs;
        st->sync_us = wi->sync_us;
        st->ranges = wi->ranges;
        st->chunk = wi->chunk;
        st->bitmaps = wi->tracked->len;
    }
}
