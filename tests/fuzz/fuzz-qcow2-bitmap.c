/*
 * Fuzz harness for persistent qcow2 bitmaps: a 64 MiB qcow2 template with two
 * stored bitmaps (made once, by tern, in a memfd) gets its bitmap metadata
 * overwritten by the input, optionally with a forced nb_bitmaps and
 * directory size; then it is opened read-only (load, walk, serialize) and,
 * if asked, read-write (mark in-use, modify, store on close) and reopened.
 * Nothing may crash, leak or hang; errors are expected.
 *
 * Input: byte 0 flags (1: nb_bitmaps = byte 1; 2: directory size = be16 at
 * bytes 2-3; 4: also open read-write); bytes 4.. overwrite, in order, the
 * directory, each bitmap table, and the first 2 KiB of each data cluster.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A stretch of the template the input overwrites. */
typedef struct Segment {
    uint64_t offset, len;
} Segment;

typedef struct Template {
    int fd;
    char *path;
    uint8_t *bytes;
    gsize len;
    size_t ext;               /* bitmaps extension payload offset */
    GArray *segments;         /* of Segment: directory, tables, data */
} Template;

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_be(uint8_t *p, int n, uint64_t v)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) {
        p[i] = v & 0xff;
    }
}

static void add_bitmap(BlockNode *bs, const char *name, uint32_t gran,
                       bool enabled)
{
    BdrvDirtyBitmap *bm;

    bdrv_lock(bs);
    bm = bdrv_create_dirty_bitmap(bs, gran, name, NULL);
    g_assert(bm && bdrv_dirty_bitmap_make_persistent(bm, true, NULL));
    if (!enabled) {
        bdrv_set_dirty_bitmap(bm, 3 * MiB, 5 * MiB);
        bdrv_disable_dirty_bitmap(bm);
    }
    bdrv_unlock(bs);
}

static void add_segment(Template *t, uint64_t offset, uint64_t len)
{
    Segment seg = { offset, MIN(len, t->len - MIN(offset, t->len)) };

    g_array_append_val(t->segments, seg);
}

/* Finds the extension, the directory, the tables and the data clusters. */
static void locate(Template *t)
{
    size_t pos = be(t->bytes + 100, 4);
    uint64_t dir, end;
    GArray *data = g_array_new(FALSE, FALSE, sizeof(Segment));

    while (pos + 8 <= t->len && be(t->bytes + pos, 4) != 0) {
        if (be(t->bytes + pos, 4) == 0x23852875) {
            t->ext = pos + 8;
        }
        pos += 8 + ALIGN_UP(be(t->bytes + pos + 4, 4), 8);
    }
    g_assert(t->ext);
    t->segments = g_array_new(FALSE, FALSE, sizeof(Segment));
    dir = be(t->bytes + t->ext + 16, 8);
    end = dir + be(t->bytes + t->ext + 8, 8);
    add_segment(t, dir, end - dir);
    for (uint64_t off = dir; off < end;) {
        uint64_t table = be(t->bytes + off, 8);
        uint64_t n = be(t->bytes + off + 8, 4);

        add_segment(t, table, n * 8);
        for (uint64_t i = 0; i < n; i++) {
            Segment d = { be(t->bytes + table + 8 * i, 8) & ~0x1ffULL, 2048 };

            if (d.offset) {
                g_array_append_val(data, d);
            }
        }
        off += ALIGN_UP(24 + be(t->bytes + off + 20, 4) +
                        be(t->bytes + off + 18, 2), 8);
    }
    for (guint i = 0; i < data->len; i++) {
        Segment *d = &g_array_index(data, Segment, i);

        add_segment(t, d->offset, d->len);
    }
    g_array_unref(data);
}

static Template *template_get(void)
{
    static Template *t;
    BlockNode *bs;

    if (t) {
        return t;
    }
    t = g_new0(Template, 1);
    t->fd = memfd_create("fuzz-qcow2-bitmap", 0);
    g_assert(t->fd >= 0);
    t->path = g_strdup_printf("/proc/self/fd/%d", t->fd);
    g_assert(bdrv_create("qcow2", t->path, 64 * MiB, NULL, NULL));
    bs = bdrv_open(t->path, "qcow2", BDRV_O_RDWR, NULL);
    g_assert(bs);
    add_bitmap(bs, "b1", 64 * KiB, true);
    add_bitmap(bs, "b2", 4 * KiB, false);
    for (int i = 0; i < 8; i++) {
        uint8_t buf[512] = { 0x5a };

        g_assert(bdrv_pwrite(bs, i * 7 * MiB, buf, sizeof(buf), NULL));
    }
    bdrv_close(bs);
    g_assert(g_file_get_contents(t->path, (char **)&t->bytes, &t->len, NULL));
    locate(t);
    return t;
}

static void write_image(Template *t, const uint8_t *data, size_t size)
{
    g_autofree uint8_t *img = g_memdup2(t->bytes, t->len);

    if (size >= 4) {
        if (data[0] & 1) {
            put_be(img + t->ext, 4, data[1]);
        }
        if (data[0] & 2) {
            put_be(img + t->ext + 8, 8, be(data + 2, 2));
        }
        data += 4;
        size -= 4;
        for (guint i = 0; i < t->segments->len && size; i++) {
            Segment *seg = &g_array_index(t->segments, Segment, i);
            size_t n = MIN(size, seg->len);

            memcpy(img + seg->offset, data, n);
            data += n;
            size -= n;
        }
    }
    g_assert(ftruncate(t->fd, 0) == 0);
    g_assert(pwrite(t->fd, img, t->len, 0) == (ssize_t)t->len);
}

/* Loads read-only and exercises every loaded bitmap. */
static void exercise_ro(Template *t)
{
    BlockNode *bs = bdrv_open(t->path, "qcow2", 0, NULL);
    g_autoptr(BlockImageInfo) info = NULL;

    if (!bs) {
        return;
    }
    bdrv_get_info(bs, &info, NULL);
    bdrv_lock(bs);
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *bm = l->data;
        uint64_t off = 0, s, c, size = bdrv_dirty_bitmap_size(bm);
        uint64_t part = MIN(size, bdrv_dirty_bitmap_serialization_align(bm));
        g_autofree uint8_t *buf =
            g_malloc0(bdrv_dirty_bitmap_serialization_size(bm, 0, part) + 8);

        for (int n = 0; n < 64 &&
             bdrv_dirty_bitmap_next_dirty_area(bm, off, size, &s, &c); n++) {
            off = s + c;
        }
        bdrv_get_dirty_count(bm);
        bdrv_dirty_bitmap_serialize_part(bm, buf, 0, part, NULL);
    }
    bdrv_unlock(bs);
    bdrv_close(bs);
}

/* Opens read-write (IN_USE rewrite), changes bitmaps, stores on close. */
static void exercise_rw(Template *t)
{
    BlockNode *bs = bdrv_open(t->path, "qcow2", BDRV_O_RDWR, NULL);
    uint8_t buf[512] = { 1 };

    if (!bs) {
        return;
    }
    bdrv_pwrite(bs, 9 * MiB, buf, sizeof(buf), NULL);
    bdrv_lock(bs);
    if (bdrv_find_dirty_bitmap(bs, "b2")) {
        bdrv_remove_dirty_bitmap(bs, "b2", NULL);
    }
    bdrv_unlock(bs);
    bdrv_close(bs);
    exercise_ro(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Template *t = template_get();

    write_image(t, data, size);
    exercise_ro(t);
    if (size >= 1 && (data[0] & 4)) {
        write_image(t, data, size);
        exercise_rw(t);
    }
    return 0;
}
