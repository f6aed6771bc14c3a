/*
 * The block layer core: opening an image (protocol node for the host file,
 * then a probed or named format driver on top), the per-node mutex that makes
 * every bdrv_* call thread-safe, request bounds checks, the dirty-bitmap hook
 * on every write, and dispatch to the driver ops table.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block-int.h"
#include "block/dirty-bitmap.h"
#include "block/write-intent.h"

static const BlockDriver *const block_drivers[] = {
    &bdrv_file, &bdrv_raw, &bdrv_qcow2,
};

const BlockDriver *bdrv_find_format(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(block_drivers); i++) {
        if (!strcmp(block_drivers[i]->format_name, name)) {
            return block_drivers[i];
        }
    }
    return NULL;
}

/* As QEMU: the first sector, zero-padded; an empty file is raw. */
const char *bdrv_probe_format(const char *filename, GError **errp)
{
    uint8_t buf[BDRV_PROBE_BUF_SIZE] = { 0 };
    int fd = open(filename, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tern_set_error_errno(errp, errno, "Could not open '%s'", filename);
        return NULL;
    }
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    int err = errno;
    close(fd);
    if (n < 0) {
        tern_set_error_errno(errp, err, "Could not read '%s'", filename);
        return NULL;
    }
    return n ? bdrv_probe_buffer(buf, sizeof(buf), filename) : "raw";
}

static const BlockDriver *format_driver(const char *format, GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(format);

    if (drv && !drv->is_protocol) {
        return drv;
    }
    if (bdrv_format_is_known(format)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "Image format '%s' is not supported by tern (it opens "
                    "raw and qcow2); convert the image with 'qemu-img "
                    "convert -O qcow2'", format);
    } else {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Unknown driver '%s'", format);
    }
    return NULL;
}

/* QEMU's words; only read-write opens get them (writes are restricted). */
static void warn_probed_raw(const char *filename)
{
    tern_warn("Image format was not specified for '%s' and probing guessed "
              "raw.\n         Automatically detecting the format is dangerous "
              "for raw images, write operations on block 0 will be "
              "restricted.\n         Specify the 'raw' format explicitly to "
              "remove the restrictions.", filename);
}

static BlockNode *bdrv_new(const BlockDriver *drv, const char *filename,
                           int flags)
{
    static gint node_counter;
    BlockNode *bs = g_new0(BlockNode, 1);

    g_mutex_init(&bs->lock);
    bs->drv = drv;
    bs->opaque = g_malloc0(MAX(drv->state_size, 1));
    bs->filename = g_strdup(filename);
    bs->flags = flags;
    /* An inactive protocol node keeps its read-write fd for later. */
    bs->read_only = !(flags & BDRV_O_RDWR) ||
                    ((flags & BDRV_O_INACTIVE) && !drv->is_protocol);
    bs->inactive = flags & BDRV_O_INACTIVE;
    bs->reload_on_activate = bs->inactive;
    bs->node_name = g_strdup_printf("#block%03d",   /* QEMU's spelling */
                                    g_atomic_int_add(&node_counter, 1));
    return bs;
}

static void bdrv_free(BlockNode *bs)
{
    bdrv_write_intent_close(bs);
    g_mutex_clear(&bs->lock);
    g_free(bs->opaque);
    g_free(bs->filename);
    g_free(bs->node_name);
    g_free(bs);
}

BlockNode *bdrv_open_protocol(const char *filename, int flags, GError **errp)
{
    BlockNode *bs = bdrv_new(&bdrv_file, filename, flags);
    if (!bdrv_file.open(bs, filename, flags, errp)) {
        bdrv_free(bs);
        return NULL;
    }
    return bs;
}

BlockNode *bdrv_open_over(const char *format, BlockNode *file, int flags,
                          GError **errp)
{
    const BlockDriver *drv = format_driver(format, errp);

    if (!drv) {
        return NULL;
    }
    BlockNode *bs = bdrv_new(drv, file->filename, flags);
    bs->file = file;
    /* Inactive: read the metadata as a reader would, write nothing. */
    int drv_flags = flags & BDRV_O_INACTIVE ? flags & ~BDRV_O_RDWR : flags;
    if (!drv->open(bs, file->filename, drv_flags, errp)) {
        bdrv_free(bs);
        return NULL;
    }
    return bs;
}

int bdrv_file_flags_for(const char *format, int flags)
{
    const BlockDriver *drv = bdrv_find_format(format);

    return drv && drv->has_metadata ? flags | BDRV_O_STABLE_FILE : flags;
}

BlockNode *bdrv_open(const char *filename, const char *format, int flags,
                     GError **errp)
{
    bool probed = !format;

    if (probed) {
        format = bdrv_probe_format(filename, errp);
        if (!format) {
            return NULL;
        }
    }
    const BlockDriver *drv = format_driver(format, errp);
    if (!drv) {
        if (probed) {
            g_prefix_error(errp, "Could not open '%s': ", filename);
        }
        return NULL;
    }
    flags = bdrv_file_flags_for(format, flags);
    BlockNode *file = bdrv_open_protocol(filename, flags, errp);
    if (!file) {
        return NULL;
    }
    BlockNode *bs = bdrv_open_over(format, file, flags, errp);
    if (!bs) {
        bdrv_close(file);
        return NULL;
    }
    bs->probed = probed;
    if (probed && drv == &bdrv_raw && (flags & BDRV_O_RDWR)) {
        warn_probed_raw(filename);
    }
    return bs;
}

static void close_node(BlockNode *bs, bool with_file)
{
    if (!bs) {
        return;
    }
    g_mutex_lock(&bs->lock);
    if (bs->drv->close && !bs->drv_closed) {
        bs->drv->close(bs);     /* read_only while inactive: writes nothing */
    }
    bdrv_release_all_dirty_bitmaps(bs);
    g_mutex_unlock(&bs->lock);
    if (with_file) {
        bdrv_close(bs->file);
    }
    bdrv_free(bs);
}

void bdrv_close(BlockNode *bs)
{
    close_node(bs, true);
}

void bdrv_close_keep_file(BlockNode *bs)
{
    close_node(bs, false);
}

bool bdrv_create(const char *format, const char *filename, uint64_t size,
                 const BlockCreateOpts *opts, GError **errp)
{
    static const BlockCreateOpts defaults;
    const BlockDriver *drv = bdrv_find_format(format);

    if (!drv || !drv->create) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Format '%s' does not support image creation", format);
        return false;
    }
    return drv->create(filename, size, opts ? opts : &defaults, errp);
}

void bdrv_set_node_name(BlockNode *bs, const char *name)
{
    g_mutex_lock(&bs->lock);
    g_free(bs->node_name);
    bs->node_name = g_strdup(name);
    g_mutex_unlock(&bs->lock);
}

const char *bdrv_get_node_name(BlockNode *bs)
{
    return bs->node_name;
}

const char *bdrv_get_filename(BlockNode *bs)
{
    return bs->filename ? bs->filename : "";
}

int bdrv_get_flags(BlockNode *bs)
{
    return bs->flags;
}

const char *bdrv_get_format_name(BlockNode *bs)
{
    return bs->drv->format_name;
}

uint64_t bdrv_getlength(BlockNode *bs)
{
    g_mutex_lock(&bs->lock);
    uint64_t size = bs->size;
    g_mutex_unlock(&bs->lock);
    return size;
}

bool bdrv_is_read_only(BlockNode *bs)
{
    return bs->read_only;
}

void bdrv_lock(BlockNode *bs)
{
    g_mutex_lock(&bs->lock);
}

void bdrv_unlock(BlockNode *bs)
{
    g_mutex_unlock(&bs->lock);
}

static bool check_request(BlockNode *bs, uint64_t offset, uint64_t bytes,
                          bool write, GError **errp)
{
    if (bs->inactive) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Node '%s' is inactive (another process owns its image "
                    "until migration hands it over)", bs->node_name);
        return false;
    }
    if (write && bs->read_only) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Node '%s' is read-only", bs->node_name);
        return false;
    }
    if (offset > bs->size || bytes > bs->size - offset) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Request %" PRIu64 "+%" PRIu64 " is past the end of "
                    "node '%s' (%" PRIu64 " bytes)", offset, bytes,
                    bs->node_name, bs->size);
        return false;
    }
    return true;
}

uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
    uint64_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    return total;
}

static void mark_dirty(BlockNode *bs, uint64_t offset, uint64_t bytes)
{
    if (bs->dirty_bitmaps && bytes) {
        bdrv_dirty_bitmaps_mark(bs, offset, bytes);
    }
}

/* One request done (lock held): started at 'start' (g_get_monotonic_time). */
static void account(BlockNode *bs, BlockAcctType type, uint64_t offset,
                    uint64_t bytes, bool ok, int64_t start)
{
    BlockAcctStats *st = &bs->stats;

    if (!ok) {
        st->failed_ops[type]++;
        return;
    }
    st->ops[type]++;
    st->bytes[type] += bytes;
    st->total_time_ns[type] += (g_get_monotonic_time() - start) * 1000;
    if (type == BLOCK_ACCT_WRITE && bytes) {
        st->wr_highest_offset = MAX(st->wr_highest_offset, offset + bytes);
    }
}

void bdrv_get_stats(BlockNode *bs, BlockAcctStats *out)
{
    g_mutex_lock(&bs->lock);
    *out = bs->stats;
    g_mutex_unlock(&bs->lock);
}

bool bdrv_preadv(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                 int iovcnt, GError **errp)
{
    uint64_t bytes = iov_total(iov, iovcnt);
    int64_t start = g_get_monotonic_time();
    g_mutex_lock(&bs->lock);
    bool ok = check_request(bs, offset, bytes, false, errp) &&
              (bytes == 0 || bs->drv->preadv(bs, offset, bytes, iov, iovcnt,
                                             errp));
    account(bs, BLOCK_ACCT_READ, offset, bytes, ok, start);
    g_mutex_unlock(&bs->lock);
    return ok;
}

/* Before a write is issued: crash-safe bitmaps record it in the image. */
static bool write_intent(BlockNode *bs, uint64_t offset, uint64_t bytes,
                         GError **errp)
{
    BdrvRange r = { offset, bytes };

    return !bs->bitmap_opaque || bdrv_write_intent_cover(bs, &r, 1, errp);
}

static bool write_begin(BlockNode *bs, uint64_t offset, uint64_t bytes,
                        GError **errp)
{
    return check_request(bs, offset, bytes, true, errp) &&
           write_intent(bs, offset, bytes, errp);
}

bool bdrv_pwritev(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                  int iovcnt, GError **errp)
{
    uint64_t bytes = iov_total(iov, iovcnt);
    int64_t start = g_get_monotonic_time();
    g_mutex_lock(&bs->lock);
    bool ok = write_begin(bs, offset, bytes, errp);
    if (ok && bytes) {
        ok = bs->drv->pwritev(bs, offset, bytes, iov, iovcnt, errp);
        /* Marked even when it failed, as QEMU does: part of it may have
         * reached the disk. */
        mark_dirty(bs, offset, bytes);
    }
    account(bs, BLOCK_ACCT_WRITE, offset, bytes, ok, start);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_pread(BlockNode *bs, uint64_t offset, void *buf, size_t bytes,
                GError **errp)
{
    struct iovec iov = { .iov_base = buf, .iov_len = bytes };
    return bdrv_preadv(bs, offset, &iov, 1, errp);
}

bool bdrv_pwrite(BlockNode *bs, uint64_t offset, const void *buf, size_t bytes,
                 GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = bytes };
    return bdrv_pwritev(bs, offset, &iov, 1, errp);
}

bool bdrv_flush(BlockNode *bs, GError **errp)
{
    int64_t start = g_get_monotonic_time();
    g_mutex_lock(&bs->lock);
    bool ok = bs->read_only || !bs->drv->flush || bs->drv->flush(bs, errp);
    account(bs, BLOCK_ACCT_FLUSH, 0, 0, ok, start);
    g_mutex_unlock(&bs->lock);
    return ok;
}

void bdrv_start_writeback(BlockNode *bs)
{
    while (bs->file) {
        bs = bs->file;
    }
    if (bs->drv->start_writeback) {
        bs->drv->start_writeback(bs);
    }
}

/* ---- migration's hand-over: inactivate / activate ---- */

bool bdrv_is_inactive(BlockNode *bs)
{
    g_mutex_lock(&bs->lock);
    bool inactive = bs->inactive;
    g_mutex_unlock(&bs->lock);
    return inactive;
}

bool bdrv_inactivate(BlockNode *bs, bool store_bitmaps, GError **errp)
{
    BlockNode *file = bs->file ? bs->file : bs;
    bool ok = true;

    g_mutex_lock(&bs->lock);
    if (bs->inactive) {
        g_mutex_unlock(&bs->lock);
        return true;
    }
    if (!bs->read_only) {
        /* Crash-safe bitmaps always leave their layout: stored, or IN_USE
         * when they travel in the stream, as QEMU leaves them. */
        store_bitmaps |= bdrv_write_intent_tracking(bs);
        ok = (!store_bitmaps || !bs->drv->store_bitmaps ||
              bs->drv->store_bitmaps(bs, errp)) &&
             (!bs->drv->flush || bs->drv->flush(bs, errp));
    }
    ok = ok && bdrv_file_apply_locks(file, bs->flags | BDRV_O_INACTIVE, errp);
    if (ok) {
        bs->flags |= BDRV_O_INACTIVE;
        bs->inactive = file->inactive = true;
        bs->read_only = true;
        /* Whoever takes the image next may write it (a migration's
         * destination before a source's cont): reread it when it is back. */
        bs->reload_on_activate = true;
    }
    g_mutex_unlock(&bs->lock);
    return ok;
}

/* The image's copy of a bitmap gives way to the in-memory (migrated) one. */
static void merge_kept_bitmaps(BlockNode *bs, GList *kept)
{
    for (GList *l = kept; l; l = l->next) {
        const char *name = bdrv_dirty_bitmap_name(l->data);
        BdrvDirtyBitmap *loaded = name ? bdrv_find_dirty_bitmap(bs, name) :
                                         NULL;

        if (loaded) {
            bdrv_release_dirty_bitmap(loaded);
        }
    }
    bs->dirty_bitmaps = g_list_concat(bs->dirty_bitmaps, kept);
}

/* Drop the driver's state and read the image again (lock held). */
static bool reload_metadata(BlockNode *bs, int flags, GError **errp)
{
    GList *kept = bs->dirty_bitmaps;

    bs->dirty_bitmaps = NULL;
    bs->read_only = true;               /* the close must write nothing */
    bs->drv->close(bs);
    memset(bs->opaque, 0, bs->drv->state_size);
    bs->read_only = !(flags & BDRV_O_RDWR);
    if (!bs->drv->open(bs, bs->filename, flags, errp)) {
        bs->drv_closed = true;
        bs->read_only = true;           /* nothing may reach the driver */
        bs->dirty_bitmaps = kept;
        return false;
    }
    merge_kept_bitmaps(bs, kept);
    return true;
}

bool bdrv_activate(BlockNode *bs, GError **errp)
{
    BlockNode *file = bs->file ? bs->file : bs;
    int flags = bs->flags & ~BDRV_O_INACTIVE;
    bool ok;

    g_mutex_lock(&bs->lock);
    if (!bs->inactive) {
        g_mutex_unlock(&bs->lock);
        return true;
    }
    if (bs->drv_closed) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "Node '%s' could not be "
                    "reopened earlier; it stays unusable", bs->node_name);
        g_mutex_unlock(&bs->lock);
        return false;
    }
    ok = bdrv_file_apply_locks(file, flags, errp);
    if (ok) {
        file->size = bdrv_file_length(file);
        file->inactive = false;
        if (bs->reload_on_activate && bs != file && bs->drv->close) {
            ok = reload_metadata(bs, flags, errp);
        }
    }
    if (ok) {
        bs->flags = flags;
        bs->inactive = false;
        bs->read_only = !(flags & BDRV_O_RDWR);
        /* Migrated bitmaps replaced the image's: lay them out too. */
        ok = bdrv_write_intent_arm(bs, errp);
        if (!ok) {
            bs->flags |= BDRV_O_INACTIVE;
            bs->inactive = bs->read_only = true;
        }
        bs->reload_on_activate = !ok;
    }
    if (!ok) {
        /* Still not ours: give the write lock back. */
        bdrv_file_apply_locks(file, flags | BDRV_O_INACTIVE, NULL);
        file->inactive = true;
    }
    g_mutex_unlock(&bs->lock);
    return ok;
}

/* Discard and write-zeroes share the checks and the dirty-bitmap update.
 * Without BDRV_O_UNMAP a discard stops after the checks, as in QEMU (no
 * bitmap update either: nothing changed). */
static bool bdrv_zero_op(BlockNode *bs, uint64_t offset, uint64_t bytes,
                         bool discard, bool may_unmap, GError **errp)
{
    int64_t start = g_get_monotonic_time();
    bool unmap = may_unmap && (bs->flags & BDRV_O_UNMAP);

    g_mutex_lock(&bs->lock);
    bool ok = check_request(bs, offset, bytes, true, errp);
    if (ok && discard && !unmap) {
        account(bs, BLOCK_ACCT_UNMAP, offset, bytes, true, start);  /* asked, dropped */
        g_mutex_unlock(&bs->lock);
        return true;
    }
    ok = ok && write_intent(bs, offset, bytes, errp);
    if (ok && bytes) {
        if (discard) {
            ok = !bs->drv->discard || bs->drv->discard(bs, offset, bytes, errp);
        } else if (bs->drv->write_zeroes) {
            ok = bs->drv->write_zeroes(bs, offset, bytes, unmap, errp);
        } else {
            ok = bdrv_pwrite_zeroes_fallback(bs, offset, bytes, errp);
        }
        mark_dirty(bs, offset, bytes);
    }
    /* QEMU counts write-zeroes as writes, discards as unmaps. */
    account(bs, discard ? BLOCK_ACCT_UNMAP : BLOCK_ACCT_WRITE, offset, bytes, ok, start);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_pwrite_zeroes_fallback(BlockNode *bs, uint64_t offset,
                                 uint64_t bytes, GError **errp)
{
    const size_t chunk = 1 * MiB;
    g_autofree uint8_t *zero = g_malloc0(MIN(bytes, chunk));
    while (bytes) {
        struct iovec iov = { .iov_base = zero, .iov_len = MIN(bytes, chunk) };
        if (!bs->drv->pwritev(bs, offset, iov.iov_len, &iov, 1, errp)) {
            return false;
        }
        offset += iov.iov_len;
        bytes -= iov.iov_len;
    }
    return true;
}

bool bdrv_discard(BlockNode *bs, uint64_t offset, uint64_t bytes, GError **errp)
{
    return bdrv_zero_op(bs, offset, bytes, true, true, errp);
}

bool bdrv_write_zeroes(BlockNode *bs, uint64_t offset, uint64_t bytes,
                       bool may_unmap, GError **errp)
{
    return bdrv_zero_op(bs, offset, bytes, false, may_unmap, errp);
}

bool bdrv_truncate(BlockNode *bs, uint64_t size, GError **errp)
{
    if (!bs->drv->truncate) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "Image format '%s' does not support resizing",
                    bs->drv->format_name);
        return false;
    }
    g_mutex_lock(&bs->lock);
    bool ok = check_request(bs, 0, 0, true, errp) &&
              bdrv_write_intent_suspend(bs, errp) &&
              bs->drv->truncate(bs, size, errp);
    if (ok) {
        bs->size = size;
        ok = bdrv_dirty_bitmaps_truncate(bs, size, errp) &&
             bdrv_write_intent_arm(bs, errp);
    }
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_get_info(BlockNode *bs, BlockImageInfo **infop, GError **errp)
{
    BlockImageInfo *info = g_new0(BlockImageInfo, 1);
    struct stat st;

    g_mutex_lock(&bs->lock);
    info->format = bs->drv->format_name;
    info->filename = g_strdup(bs->filename);
    info->virtual_size = bs->size;
    if (bdrv_file_stat(bs->file ? bs->file : bs, &st)) {
        info->actual_size = (uint64_t)st.st_blocks * 512;
    }
    bool ok = !bs->drv->get_info || bs->drv->get_info(bs, info, errp);
    g_mutex_unlock(&bs->lock);
    if (!ok) {
        block_image_info_free(info);
        return false;
    }
    *infop = info;
    return true;
}

bool bdrv_check(BlockNode *bs, BlockCheckMode fix, BlockCheckResult *res,
                GError **errp)
{
    memset(res, 0, sizeof(*res));
    if (!bs->drv->check) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "This image format does not support checks");
        return false;
    }
    if (fix && bs->read_only) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Repair needs the image opened read-write");
        return false;
    }
    g_mutex_lock(&bs->lock);
    bool ok = bs->drv->check(bs, fix, res, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

static bool no_snapshots(BlockNode *bs, GError **errp)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                "Block format '%s' used by node '%s' does not support "
                "internal snapshots", bs->drv->format_name, bs->node_name);
    return false;
}

bool bdrv_snapshot_create(BlockNode *bs, const BlockSnapshotInfo *sn,
                          GError **errp)
{
    if (!bs->drv->snapshot_create) {
        return no_snapshots(bs, errp);
    }
    if (bs->read_only) {
        return check_request(bs, 0, 0, true, errp);
    }
    g_mutex_lock(&bs->lock);
    bool ok = bs->drv->snapshot_create(bs, sn, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

GPtrArray *bdrv_snapshot_list(BlockNode *bs, GError **errp)
{
    if (!bs->drv->snapshot_list) {
        no_snapshots(bs, errp);
        return NULL;
    }
    g_mutex_lock(&bs->lock);
    GPtrArray *list = bs->drv->snapshot_list(bs);
    g_mutex_unlock(&bs->lock);
    return list;
}

bool bdrv_snapshot_find(BlockNode *bs, const char *id_or_name,
                        BlockSnapshotInfo **out, GError **errp)
{
    g_autoptr(GPtrArray) list = bdrv_snapshot_list(bs, errp);
    if (!list) {
        return false;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (guint i = 0; i < list->len; i++) {
            BlockSnapshotInfo *sn = list->pdata[i];
            if (!strcmp(pass ? sn->name : sn->id_str, id_or_name)) {
                *out = g_ptr_array_steal_index(list, i);
                return true;
            }
        }
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                "Snapshot '%s' not found", id_or_name);
    return false;
}

static bool can_apply_locked(BlockNode *bs, GError **errp)
{
    return !bs->dirty_bitmaps ||
           tern_fail(errp, TERN_ERR_BUSY, "Device has active dirty bitmaps");
}

bool bdrv_snapshot_can_apply(BlockNode *bs, GError **errp)
{
    g_mutex_lock(&bs->lock);
    bool ok = can_apply_locked(bs, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_snapshot_apply(BlockNode *bs, const char *id_or_name, GError **errp)
{
    if (!bs->drv->snapshot_apply) {
        return no_snapshots(bs, errp);
    }
    if (bs->read_only) {
        return check_request(bs, 0, 0, true, errp);
    }
    g_mutex_lock(&bs->lock);
    /* An incremental backup from a bitmap would miss what the revert
     * changed. */
    bool ok = can_apply_locked(bs, errp) &&
              bs->drv->snapshot_apply(bs, id_or_name, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_snapshot_delete(BlockNode *bs, const char *id, const char *name,
                          GError **errp)
{
    if (!bs->drv->snapshot_delete) {
        return no_snapshots(bs, errp);
    }
    if (bs->read_only) {
        return check_request(bs, 0, 0, true, errp);
    }
    g_mutex_lock(&bs->lock);
    bool ok = bs->drv->snapshot_delete(bs, id, name, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_save_vmstatev(BlockNode *bs, uint64_t pos, const struct iovec *iov,
                        int iovcnt, GError **errp)
{
    if (!bs->drv->save_vmstatev) {
        return no_snapshots(bs, errp);
    }
    if (bs->read_only) {
        return check_request(bs, 0, 0, true, errp);
    }
    g_mutex_lock(&bs->lock);
    bool ok = bs->drv->save_vmstatev(bs, pos, iov, iovcnt, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_save_vmstate(BlockNode *bs, uint64_t pos, const void *buf, size_t len,
                       GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return bdrv_save_vmstatev(bs, pos, &iov, 1, errp);
}

bool bdrv_load_vmstate(BlockNode *bs, uint64_t pos, void *buf, size_t len,
                       GError **errp)
{
    if (!bs->drv->load_vmstate) {
        return no_snapshots(bs, errp);
    }
    g_mutex_lock(&bs->lock);
    bool ok = bs->drv->load_vmstate(bs, pos, buf, len, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_snapshot_load_vmstate(BlockNode *bs, const char *id, uint64_t pos,
                                void *buf, size_t len, GError **errp)
{
    if (!bs->drv->snapshot_load_vmstate) {
        return no_snapshots(bs, errp);
    }
    g_mutex_lock(&bs->lock);
    bool ok = bs->drv->snapshot_load_vmstate(bs, id, pos, buf, len, errp);
    g_mutex_unlock(&bs->lock);
    return ok;
}

void block_snapshot_info_free(BlockSnapshotInfo *sn)
{
    if (sn) {
        g_free(sn->id_str);
        g_free(sn->name);
        g_free(sn);
    }
}

void block_bitmap_info_free(BlockBitmapInfo *bi)
{
    if (bi) {
        g_free(bi->name);
        g_free(bi);
    }
}

void block_image_info_free(BlockImageInfo *info)
{
    if (info) {
        g_free(info->filename);
        g_free(info->compat);
        if (info->snapshots) {
            g_ptr_array_unref(info->snapshots);
        }
        if (info->bitmaps) {
            g_ptr_array_unref(info->bitmaps);
        }
        g_free(info);
    }
}
