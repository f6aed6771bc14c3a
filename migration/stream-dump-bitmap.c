/*
 * The stream inspector's reader for the dirty-bitmap section (idstr
 * "dirty-bitmap", version 1), following QEMU's migration/block-dirty-bitmap.c.
 * A section holds chunks until one with EOS. Each chunk:
 *   flags: 1 byte; if its 0x80 bit is set, 2 bytes (be16); if the second
 *          byte's 0x80 bit is set too, 4 bytes (be32). Flags proper live in
 *          the low byte: EOS 0x01, ZEROES 0x02, BITMAP_NAME 0x04,
 *          DEVICE_NAME 0x08, START 0x10, COMPLETE 0x20, BITS 0x40
 *   [u8 len, node name]    if DEVICE_NAME, else the previous chunk's
 *   [u8 len, bitmap name]  if BITMAP_NAME, else the previous chunk's
 *   START:    be32 granularity (bytes), u8 flags (0x01 enabled,
 *             0x02 persistent, 0x04 ignored, 0xf8 reserved)
 *   BITS:     be64 start sector, be32 sector count,
 *             unless ZEROES: be64 size, then the bits as little-endian 64-bit
 *             words, bit i covering granularity bytes from the chunk start
 *   COMPLETE: nothing more
 */
#include <string.h>

#include "migration/dirty-bitmap-wire.h"
#include "stream-dump-int.h"

#define SECTOR_BITS 9
/* Ranges printed per bitmap before "..." */
#define DUMP_MAX_RANGES 32

static void bitmap_free(gpointer p)
{
    DumpBitmap *b = p;

    g_array_free(b->dirty, TRUE);
    g_free(b);
}

void dump_bitmaps_free(DumpBitmaps *b)
{
    if (b->list) {
        g_ptr_array_free(b->list, TRUE);
        b->list = NULL;
    }
}

static GPtrArray *bitmap_list(StreamDump *d)
{
    if (!d->bitmaps.list) {
        d->bitmaps.list = g_ptr_array_new_with_free_func(bitmap_free);
    }
    return d->bitmaps.list;
}

static DumpBitmap *find_bitmap(StreamDump *d, const char *node,
                               const char *name)
{
    GPtrArray *list = bitmap_list(d);

    for (guint i = 0; i < list->len; i++) {
        DumpBitmap *b = list->pdata[i];

        if (!strcmp(b->node, node) && !strcmp(b->name, name)) {
            return b;
        }
    }
    return NULL;
}

/* Decode the 1-, 2- or 4-byte flags; the marker bits are not flags. */
static bool read_flags(QEMUFile *f, uint32_t *flags, GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (!dbm_get_flags(f, flags, &err)) {
        return dump_fail(errp, f, "%s", err->message);
    }
    return true;
}

static bool read_names(StreamDump *d, QEMUFile *f, uint32_t flags,
                       GError **errp)
{
    DumpBitmaps *s = &d->bitmaps;

    if (flags & DBM_DEVICE_NAME) {
        qemu_get_counted_string(f, s->node);
        s->have_node = true;
    }
    if (flags & DBM_BITMAP_NAME) {
        qemu_get_counted_string(f, s->name);
        s->have_name = true;
    }
    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "dirty-bitmap: truncated names");
    }
    if (flags != DBM_EOS && flags != 0 && (!s->have_node || !s->have_name)) {
        return dump_fail(errp, f, "dirty-bitmap: chunk without a node or "
                         "bitmap name");
    }
    return true;
}

static bool read_start(StreamDump *d, QEMUFile *f, GError **errp)
{
    DumpBitmaps *s = &d->bitmaps;
    DumpBitmap *b;
    uint32_t gran = qemu_get_be32(f);
    uint8_t flags = qemu_get_byte(f);

    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "dirty-bitmap: truncated START");
    }
    if (find_bitmap(d, s->node, s->name)) {
        return dump_fail(errp, f, "dirty-bitmap: '%s' on '%s' started twice",
                         s->name, s->node);
    }
    if (gran < 512 || (gran & (gran - 1))) {
        return dump_fail(errp, f, "dirty-bitmap: '%s' has invalid granularity"
                         " %u", s->name, gran);
    }
    if (flags & DBM_START_RESERVED) {
        return dump_fail(errp, f, "dirty-bitmap: '%s' has unknown flags 0x%x",
                         s->name, flags);
    }
    b = g_new0(DumpBitmap, 1);
    g_strlcpy(b->node, s->node, sizeof(b->node));
    g_strlcpy(b->name, s->name, sizeof(b->name));
    b->granularity = gran;
    b->flags = flags;
    b->dirty = g_array_new(FALSE, FALSE, sizeof(uint64_t) * 2);
    g_ptr_array_add(bitmap_list(d), b);
    g_string_append_printf(d->out, "  dirty-bitmap: START node '%s' bitmap "
                           "'%s' granularity %u%s%s\n", b->node, b->name,
                           gran, (flags & DBM_START_ENABLED) ? " enabled" : "",
                           (flags & DBM_START_PERSISTENT) ? " persistent" : "");
    return true;
}

/* Add [start, start+len) to the bitmap's dirty list, merging neighbours. */
static void add_dirty(DumpBitmap *b, uint64_t start, uint64_t len)
{
    if (b->dirty->len) {
        uint64_t *last = &g_array_index(b->dirty, uint64_t, 2 * (b->dirty->len - 1));

        if (last[0] + last[1] == start) {
            last[1] += len;
            return;
        }
    }
    uint64_t r[2] = { start, len };
    g_array_append_val(b->dirty, r);
}

static void scan_bits(DumpBitmap *b, const uint8_t *buf, uint64_t nbits,
                      uint64_t first_bit)
{
    for (uint64_t i = 0; i < nbits; i++) {
        /* Little-endian 64-bit words: bit i is bit i%8 of byte i/8. */
        if (buf[i / 8] & (1u << (i % 8))) {
            add_dirty(b, (first_bit + i) * b->granularity, b->granularity);
        }
    }
}

/* Bytes QEMU serializes for [first, first+count): whole 64-bit words. */
static uint64_t serialization_size(uint64_t first, uint64_t count,
                                   uint32_t gran)
{
    uint64_t last = first + count - 1;

    return 8 * ((last / gran / 64) - (first / gran / 64) + 1);
}

static bool read_bits(StreamDump *d, QEMUFile *f, DumpBitmap *b,
                      uint32_t flags, GError **errp)
{
    uint64_t sector = qemu_get_be64(f);
    uint32_t nr = qemu_get_be32(f);
    uint64_t first = sector << SECTOR_BITS, count = (uint64_t)nr << SECTOR_BITS;
    uint64_t needed, size;
    g_autofree uint8_t *buf = NULL;

    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "dirty-bitmap: truncated BITS");
    }
    if (sector >> (64 - SECTOR_BITS) || !nr || count > UINT64_MAX - first ||
        first % (64ull * b->granularity)) {
        return dump_fail(errp, f, "dirty-bitmap: '%s' BITS chunk at sector "
                         "%" PRIu64 " count %u is misaligned or out of "
                         "range", b->name, sector, nr);
    }
    b->chunks++;
    if (flags & DBM_ZEROES) {
        b->zero_chunks++;
        return true;
    }
    size = qemu_get_be64(f);
    needed = serialization_size(first, count, b->granularity);
    if (size < needed || size > ALIGN_UP(needed, 32)) {
        return dump_fail(errp, f, "dirty-bitmap: '%s' BITS size %" PRIu64
                         " does not match %u sectors at granularity %u",
                         b->name, size, nr, b->granularity);
    }
    /* The whole stream is in memory: refuse sizes it cannot hold before
     * allocating them. */
    if (size > d->size - qemu_file_tell(f)) {
        return dump_fail(errp, f, "dirty-bitmap: truncated BITS data");
    }
    buf = g_malloc(size);
    if (qemu_get_buffer(f, buf, size) != size) {
        return dump_fail(errp, f, "dirty-bitmap: truncated BITS data");
    }
    scan_bits(b, buf, DIV_ROUND_UP(count, b->granularity),
              first / b->granularity);
    if (d->opts->verbose) {
        g_string_append_printf(d->out, "  dirty-bitmap: BITS '%s' sector %"
                               PRIu64 " count %u size %" PRIu64 "\n",
                               b->name, sector, nr, size);
    }
    return true;
}

static bool read_chunk_body(StreamDump *d, QEMUFile *f, uint32_t flags,
                            GError **errp)
{
    uint32_t kind = flags & (DBM_START | DBM_COMPLETE | DBM_BITS);
    DumpBitmap *b;

    if (kind & (kind - 1) || ((flags & DBM_ZEROES) && kind != DBM_BITS)) {
        return dump_fail(errp, f, "dirty-bitmap: inconsistent chunk flags "
                         "0x%x", flags);
    }
    if (kind == DBM_START) {
        return read_start(d, f, errp);
    }
    if (!kind) {
        return true;
    }
    b = find_bitmap(d, d->bitmaps.node, d->bitmaps.name);
    if (!b) {
        return dump_fail(errp, f, "dirty-bitmap: '%s' on '%s' used before "
                         "START", d->bitmaps.name, d->bitmaps.node);
    }
    if (kind == DBM_COMPLETE) {
        b->completed = true;
        return true;
    }
    return read_bits(d, f, b, flags, errp);
}

bool dump_bitmap_section(StreamDump *d, QEMUFile *f, GError **errp)
{
    uint32_t flags = 0;   /* read_flags sets it on every path that returns true */

    do {
        if (!read_flags(f, &flags, errp) || !read_names(d, f, flags, errp) ||
            !read_chunk_body(d, f, flags, errp)) {
            return false;
        }
    } while (!(flags & DBM_EOS));
    return true;
}

void dump_bitmap_summary(StreamDump *d)
{
    GPtrArray *list = bitmap_list(d);

    for (guint i = 0; i < list->len; i++) {
        DumpBitmap *b = list->pdata[i];
        uint64_t dirty = 0;

        for (guint r = 0; r < b->dirty->len; r++) {
            dirty += g_array_index(b->dirty, uint64_t, 2 * r + 1);
        }
        g_string_append_printf(d->out, "bitmap: node '%s' name '%s' "
                               "granularity %u flags 0x%02x%s chunks %"
                               PRIu64 " (zero %" PRIu64 ") dirty bytes %"
                               PRIu64 "\n", b->node, b->name, b->granularity,
                               b->flags, b->completed ? " complete" : "",
                               b->chunks, b->zero_chunks, dirty);
        for (guint r = 0; r < b->dirty->len && r < DUMP_MAX_RANGES; r++) {
            g_string_append_printf(d->out, "  dirty: %" PRIu64 " +%" PRIu64
                                   "\n",
                                   g_array_index(b->dirty, uint64_t, 2 * r),
                                   g_array_index(b->dirty, uint64_t, 2 * r + 1));
        }
        if (b->dirty->len > DUMP_MAX_RANGES) {
            g_string_append_printf(d->out, "  dirty: ... %u more ranges\n",
                                   b->dirty->len - DUMP_MAX_RANGES);
        }
    }
}
