/*
 * The "raw" format driver: guest bytes map one to one onto the file, so
 * every operation passes straight to the protocol child. One exception, as
 * in QEMU: when the format was probed rather than given, a write must not
 * make the first sector probe as another format (the next open would then
 * trust guest-written metadata: a qcow2 header pointing at host files, a
 * VMDK descriptor naming extents).
 */
#include <errno.h>
#include <stdlib.h>

#include "block/block-int.h"

static bool raw_open(BlockNode *bs, const char *filename, int flags,
                     GError **errp)
{
    bs->size = bdrv_file_length(bs->file);
    return true;
}

static bool raw_preadv(BlockNode *bs, uint64_t offset, uint64_t bytes,
                       const struct iovec *iov, int iovcnt, GError **errp)
{
    return bdrv_file_preadv(bs->file, offset, iov, iovcnt, errp);
}

/* The request is copied first, so the bytes probed are the bytes written
 * (a guest may change its buffers meanwhile). */
static bool write_first_sector(BlockNode *bs, uint64_t offset, uint64_t bytes,
                               const struct iovec *iov, int iovcnt,
                               GError **errp)
{
    uint8_t sector[BDRV_PROBE_BUF_SIZE];
    void *copy = NULL;
    uint8_t *p;
    bool ok = false;

    if (posix_memalign(&copy, 4096, MAX(bytes, 1))) {
        tern_set_error_errno(errp, ENOMEM, "Could not write '%s'",
                             bs->filename);
        return false;
    }
    p = copy;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    if (bdrv_file_pread(bs->file, 0, sector, sizeof(sector), errp)) {
        memcpy(sector + offset, copy,
               MIN(bytes, sizeof(sector) - offset));
        const char *fmt = bdrv_probe_buffer(sector, sizeof(sector), NULL);
        if (strcmp(fmt, "raw")) {
            tern_set_error_errno(errp, EPERM, "Refusing to write a %s header "
                                 "to the first sector of '%s' (its format "
                                 "was probed; give format=raw to allow it)",
                                 fmt, bs->filename);
        } else {
            struct iovec one = { .iov_base = copy, .iov_len = bytes };
            ok = bdrv_file_pwritev(bs->file, offset, &one, 1, errp);
        }
    }
    free(copy);
    return ok;
}

static bool raw_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                        const struct iovec *iov, int iovcnt, GError **errp)
{
    if (bs->probed && offset < BDRV_PROBE_BUF_SIZE) {
        return write_first_sector(bs, offset, bytes, iov, iovcnt, errp);
    }
    return bdrv_file_pwritev(bs->file, offset, iov, iovcnt, errp);
}

static bool raw_flush(BlockNode *bs, GError **errp)
{
    return bdrv_flush(bs->file, errp);
}

static bool raw_discard(BlockNode *bs, uint64_t offset, uint64_t bytes,
                        GError **errp)
{
    return bdrv_discard(bs->file, offset, bytes, errp);
}

static bool raw_write_zeroes(BlockNode *bs, uint64_t offset, uint64_t bytes,
                             bool unmap, GError **errp)
{
    return bdrv_write_zeroes(bs->file, offset, bytes, unmap, errp);
}

static bool raw_truncate(BlockNode *bs, uint64_t size, GError **errp)
{
    return bdrv_file_truncate(bs->file, size, errp);
}

static bool raw_create(const char *filename, uint64_t size,
                       const BlockCreateOpts *opts, GError **errp)
{
    return bdrv_file.create(filename, size, opts, errp);
}

const BlockDriver bdrv_raw = {
    .format_name = "raw",
    .create = raw_create,
    .open = raw_open,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .truncate = raw_truncate,
};
