/*
 * The "raw" format driver: guest bytes map one to one onto the file, so
 * every operation passes straight to the protocol child.
 */
#include "block/block-int.h"

static int raw_probe(const uint8_t *buf, size_t len)
{
    return 1;   /* anything is raw, as a last resort */
}

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

static bool raw_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                        const struct iovec *iov, int iovcnt, GError **errp)
{
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
                             GError **errp)
{
    return bdrv_write_zeroes(bs->file, offset, bytes, errp);
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
    .probe = raw_probe,
    .create = raw_create,
    .open = raw_open,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .truncate = raw_truncate,
};
