/*
 * Fuzz target: guest writes into a hostile qcow2 image. The input is a
 * 32-byte script (16 operations of two bytes) followed by the image. The
 * image is opened read-write and the script runs: writes of a tagged
 * pattern, discards, zeroes, VM state writes, snapshot create/apply/delete.
 * After every operation the node's metadata map must equal one built from
 * the image afresh, and no byte range that holds metadata may contain the
 * tag (looked at before any cache writes back over it): a guest write never
 * lands on an L1/L2 table, refcount table or block, snapshot table or
 * bitmap directory/data. If the image had no corruption and every operation
 * succeeded, it must have none afterwards either.
 *
 * Script byte pairs (a, b): kind = a & 7 (0-3 write, 4 discard, 5 zeroes
 * (unmapping if b is odd),
 * 6 snapshot cycle, 7 VM state write), length = 512 << ((a >> 3) & 7) (at
 * most 64 KiB), offset = b/256 of the disk, 512-aligned. With bit 7 of a
 * set, a bitmap operation instead, b & 7 choosing it (bitmap_op below).
 * Bit 6 of the first byte opens the image as QEMU does (persistent bitmaps
 * IN_USE while open); otherwise its bitmaps are kept crash-safe, so writes
 * go through write intents: in-place updates of the bitmaps' data that the
 * map's checks cover too.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"
#include "block/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SCRIPT_LEN 32
static const uint8_t tag[16] = "\xfeTERN-GUEST-DAT";

/* abort(), not g_error(): libFuzzer saves the input on SIGABRT. */
static void fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static char *scratch_path(void)
{
    static char *path;
    if (!path) {
        path = g_strdup_printf("%s/tern-fuzz-qcow2-write-%d.img",
                               g_get_tmp_dir(), (int)getpid());
    }
    return path;
}

/* The n-th named bitmap of the node, or NULL. */
static BdrvDirtyBitmap *nth_bitmap(BlockNode *bs, unsigned n)
{
    BdrvDirtyBitmap *bm = NULL;

    do {
        bm = bdrv_dirty_bitmap_next(bs, bm);
    } while (bm && n--);
    return bm;
}

/*
 * b & 7: 0 add a persistent bitmap (granularity 512 << ((b >> 3) & 7)),
 * 1 clear, 2 disable then enable, 3 remove, 4 merge into another, 5 set a
 * range, 6 migration hand-over (stored exactly, then laid out again), 7
 * grow the disk by 1 MiB (bitmaps laid out again). Bitmap (b >> 3) & 3.
 */
static bool bitmap_op(BlockNode *bs, uint8_t b, GError **errp)
{
    uint64_t disk = bdrv_getlength(bs);
    BdrvDirtyBitmap *bm, *other;
    bool ok = true;

    switch (b & 7) {
    case 6:
        return bdrv_inactivate(bs, true, errp) && bdrv_activate(bs, errp);
    case 7:
        return bdrv_truncate(bs, disk + 1 * MiB, errp);
    }
    bdrv_lock(bs);
    bm = nth_bitmap(bs, (b >> 3) & 3);
    other = nth_bitmap(bs, ((b >> 3) + 1) & 3);
    if (b & 7 && (!bm || bdrv_dirty_bitmap_busy(bm) ||
                  bdrv_dirty_bitmap_readonly(bm) ||
                  bdrv_dirty_bitmap_inconsistent(bm))) {
        bdrv_unlock(bs);
        return true;                /* nothing to act on */
    }
    switch (b & 7) {
    case 0: {
        g_autofree char *name = g_strdup_printf("fz%u", b);
        if (bdrv_find_dirty_bitmap(bs, name)) {
            break;
        }
        bm = bdrv_create_dirty_bitmap(bs, 512u << ((b >> 3) & 7), name,
                                      errp);
        ok = bm && bdrv_dirty_bitmap_make_persistent(bm, true, errp);
        break;
    }
    case 1:
        bdrv_clear_dirty_bitmap(bm);
        break;
    case 2:
        bdrv_disable_dirty_bitmap(bm);
        bdrv_enable_dirty_bitmap(bm);
        break;
    case 3:
        ok = bdrv_remove_dirty_bitmap(bs, bdrv_dirty_bitmap_name(bm), errp);
        break;
    case 4:
        ok = !other || other == bm ||
             bdrv_merge_dirty_bitmap(other, bm, errp);
        break;
    case 5:
        bdrv_set_dirty_bitmap(bm, disk / 256 * b, MIN(64 * KiB, disk / 8));
        break;
    }
    bdrv_unlock(bs);
    return ok;
}

static bool run_op(BlockNode *bs, uint8_t a, uint8_t b, uint8_t *buf)
{
    uint64_t disk = bdrv_getlength(bs);
    uint64_t len = MIN(512ULL << ((a >> 3) & 7), 64 * KiB);
    uint64_t off = disk / 256 * b / 512 * 512;
    GError *err = NULL;
    bool ok;

    len = MIN(len, disk - MIN(off, disk));
    if (a & 0x80) {
        ok = bitmap_op(bs, b, &err);
        g_clear_error(&err);
        return ok;
    }
    switch (a & 7) {
    case 4:
        ok = bdrv_discard(bs, off, len, &err);
        break;
    case 5:
        ok = bdrv_write_zeroes(bs, off, len, b & 1, &err);
        break;
    case 6: {
        BlockSnapshotInfo sn = { .name = (char *)"fz", .icount = -1 };
        ok = bdrv_snapshot_create(bs, &sn, &err) &&
             bdrv_pwrite(bs, off, buf, len, &err) &&
             bdrv_snapshot_apply(bs, "fz", &err) &&
             ((b & 1) || bdrv_snapshot_delete(bs, NULL, "fz", &err));
        break;
    }
    case 7:
        ok = bdrv_save_vmstate(bs, (uint64_t)b * 4096, buf, len, &err);
        break;
    default:
        ok = bdrv_pwrite(bs, off, buf, len, &err);
        break;
    }
    g_clear_error(&err);
    return ok;
}

/* Leaks do not count: refcounts past the end of the file are not looked
 * at (as in QEMU), so a "clean" image may show leaks once it grows. */
static bool check_clean(BlockNode *bs)
{
    BlockCheckResult res;
    return bdrv_check(bs, BDRV_CHECK_REPORT, &res, NULL) &&
           !res.corruptions && !res.check_errors;
}

/* The tag must be in none of the byte ranges that hold metadata. */
static void scan_range(int fd, uint64_t off, uint64_t len, const char *what)
{
    static uint8_t buf[64 * KiB];

    while (len) {
        ssize_t n = pread(fd, buf, MIN(len, sizeof(buf)), (off_t)off);
        if (n <= 0) {
            return;
        }
        if (memmem(buf, (size_t)n, tag, sizeof(tag))) {
            fail("guest data in %s at %#" PRIx64, what, off);
        }
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
}

/*
 * Right after an operation, before caches write anything back: the tables
 * that are whole clusters come from the node's map (itself checked against
 * a fresh build), the others are byte ranges from the driver state.
 */
static void scan_metadata(BlockNode *bs, int fd)
{
    BDRVQcow2State *s = bs->opaque;
    const uint32_t whole = QCOW2_OL_L2 | QCOW2_OL_REFCOUNT_BLOCK |
                           QCOW2_OL_BITMAP_DATA;
    GHashTableIter it;
    gpointer key, val;

    g_hash_table_iter_init(&it, s->meta);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        if (GPOINTER_TO_UINT(val) & whole) {
            scan_range(fd, GPOINTER_TO_SIZE(key) << s->cluster_bits,
                       s->cluster_size,
                       qcow2_meta_kind_name(GPOINTER_TO_UINT(val)));
        }
    }
    scan_range(fd, 0, s->header_length, "the header");
    scan_range(fd, s->l1_table_offset, (uint64_t)s->l1_size * 8,
               "the L1 table");
    scan_range(fd, s->refcount_table_offset,
               (uint64_t)s->refcount_table_size * 8, "the refcount table");
    scan_range(fd, s->snapshots_offset, s->snapshots_size,
               "the snapshot table");
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        scan_range(fd, s->snapshots[i].l1_table_offset,
                   (uint64_t)s->snapshots[i].l1_size * 8, "a snapshot L1");
    }
    if (s->nb_bitmaps) {            /* (validated by the bitmap loader) */
        scan_range(fd, s->bitmap_directory_offset, s->bitmap_directory_size,
                   "the bitmap directory");
    }
}

static void after_op(BlockNode *bs, int fd)
{
    BDRVQcow2State *s = bs->opaque;
    GError *err = NULL;

    bdrv_lock(bs);
    if (!s->unusable && s->meta) {
        if (!qcow2_meta_verify(bs, &err)) {
            fail("%s", err->message);
        }
        scan_metadata(bs, fd);
    }
    bdrv_unlock(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = scratch_path();
    static uint8_t buf[64 * KiB];

    if (size <= SCRIPT_LEN || size > 4 * MiB ||
        memmem(data, size, tag, sizeof(tag))) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = tag[i % sizeof(tag)];
    }
    if (!g_file_set_contents(path, (const char *)data + SCRIPT_LEN,
                             (gssize)(size - SCRIPT_LEN), NULL)) {
        abort();
    }
    int qemu_mode = (data[0] & 0x40) ? BDRV_O_BITMAPS_IN_USE : 0;
    BlockNode *bs = bdrv_open(path, "qcow2",
                              BDRV_O_RDWR | BDRV_O_NO_LOCK | BDRV_O_UNMAP |
                              qemu_mode, NULL);
    if (bs) {
        int fd = open(path, O_RDONLY);
        bool clean = check_clean(bs), all_ok = true;
        after_op(bs, fd);
        for (int i = 0; i < SCRIPT_LEN; i += 2) {
            all_ok &= run_op(bs, data[i], data[i + 1], buf);
            after_op(bs, fd);
        }
        bool usable = !((BDRVQcow2State *)bs->opaque)->unusable;
        if (clean && all_ok && usable && !check_clean(bs)) {
            fail("the writes corrupted an image that was not corrupt");
        }
        bdrv_close(bs);
        close(fd);
    }
    unlink(path);
    return 0;
}
