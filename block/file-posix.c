/*
 * The "file" protocol driver: a regular file or block device on the host.
 * It owns the fd and the image locks; reads past EOF of a regular file see
 * zeroes, writes past it grow the file (format drivers rely on both). Discard
 * punches holes, write-zeroes uses fallocate where it can, flush is
 * fdatasync; bdrv_file_pwrite_durable makes one write durable on its own
 * (RWF_DSYNC), for crash-safe bitmaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "block/block-int.h"

typedef struct FileState {
    int fd;
    bool is_blockdev;
} FileState;

static int file_fd(BlockNode *bs)
{
    return ((FileState *)bs->opaque)->fd;
}

static bool file_open(BlockNode *bs, const char *filename, int flags,
                      GError **errp)
{
    FileState *s = bs->opaque;
    int oflags = O_CLOEXEC | ((flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY);
    struct stat st;

    if (flags & BDRV_O_NOCACHE) {
        oflags |= O_DIRECT;
    }
    s->fd = open(filename, oflags);
    if (s->fd < 0) {
        tern_set_error_errno(errp, errno, "Could not open '%s'", filename);
        return false;
    }
    if (fstat(s->fd, &st) < 0) {
        tern_set_error_errno(errp, errno, "Could not stat '%s'", filename);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s' is not a regular file or block device", filename);
        goto fail;
    }
    s->is_blockdev = S_ISBLK(st.st_mode);
    if (!bdrv_file_apply_locks(bs, flags, errp)) {
        goto fail;
    }
    bs->size = bdrv_file_length(bs);
    return true;
fail:
    close(s->fd);
    return false;
}

bool bdrv_file_apply_locks(BlockNode *file, int flags, GError **errp)
{
    uint32_t perm = BLK_PERM_CONSISTENT_READ;
    uint32_t shared = BLK_PERM_ALL;

    if (flags & BDRV_O_NO_LOCK) {
        return true;
    }
    /* Inactive (QEMU's BDRV_O_INACTIVE): the other owner may write. */
    if (flags & BDRV_O_INACTIVE) {
        return image_lock_apply(file_fd(file), file->filename, perm, shared,
                                errp);
    }
    if (flags & BDRV_O_RDWR) {
        perm |= BLK_PERM_WRITE;
    }
    if (!(flags & BDRV_O_SHARE_RW)) {
        shared &= ~BLK_PERM_WRITE;
    }
    return image_lock_apply(file_fd(file), file->filename, perm, shared, errp);
}

static void file_close(BlockNode *bs)
{
    close(file_fd(bs));   /* also drops the OFD locks */
}

uint64_t bdrv_file_length(BlockNode *file)
{
    FileState *s = file->opaque;
    if (s->is_blockdev) {
        uint64_t size = 0;
        return ioctl(s->fd, BLKGETSIZE64, &size) < 0 ? 0 : size;
    }
    struct stat st;
    return fstat(s->fd, &st) < 0 ? 0 : (uint64_t)st.st_size;
}

bool bdrv_file_stat(BlockNode *file, struct stat *st)
{
    return file->drv == &bdrv_file && fstat(file_fd(file), st) == 0;
}

/* One pass of preadv/pwritev over the whole vector, retrying short I/O. */
static bool file_rw(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                    int iovcnt, bool write, GError **errp)
{
    int fd = file_fd(bs);
    for (int i = 0; i < iovcnt; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            ssize_t n = write ? pwrite(fd, p, left, (off_t)offset)
                              : pread(fd, p, left, (off_t)offset);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                tern_set_error_errno(errp, errno, "Could not %s '%s' at %"
                                     PRIu64, write ? "write" : "read",
                                     bs->filename, offset);
                return false;
            }
            if (n == 0) {         /* EOF: the rest reads as zeroes */
                memset(p, 0, left);
                n = (ssize_t)left;
            }
            p += n;
            offset += (uint64_t)n;
            left -= (size_t)n;
        }
    }
    return true;
}

bool bdrv_file_preadv(BlockNode *file, uint64_t offset,
                      const struct iovec *iov, int iovcnt, GError **errp)
{
    return file->drv->preadv(file, offset, iov_total(iov, iovcnt), iov, iovcnt,
                             errp);
}

bool bdrv_file_pwritev(BlockNode *file, uint64_t offset,
                       const struct iovec *iov, int iovcnt, GError **errp)
{
    if (file->read_only) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Image '%s' is read-only", file->filename);
        return false;
    }
    return file->drv->pwritev(file, offset, iov_total(iov, iovcnt), iov, iovcnt,
                              errp);
}

bool bdrv_file_pread(BlockNode *file, uint64_t offset, void *buf, size_t len,
                     GError **errp)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    return bdrv_file_preadv(file, offset, &iov, 1, errp);
}

bool bdrv_file_pwrite(BlockNode *file, uint64_t offset, const void *buf,
                      size_t len, GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return bdrv_file_pwritev(file, offset, &iov, 1, errp);
}

static bool file_flush(BlockNode *bs, GError **errp);

/* pwritev2 with RWF_DSYNC, whole buffer; -errno on failure. */
static int pwrite_dsync(int fd, const uint8_t *p, size_t left, uint64_t offset)
{
    while (left) {
        struct iovec iov = { .iov_base = (void *)p, .iov_len = left };
        ssize_t n = pwritev2(fd, &iov, 1, (off_t)offset, RWF_DSYNC);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        p += n;
        offset += (uint64_t)n;
        left -= (size_t)n;
    }
    return 0;
}

bool bdrv_file_pwrite_durable(BlockNode *file, uint64_t offset,
                              const void *buf, size_t len, GError **errp)
{
    int r;

    if (file->read_only) {
        return bdrv_file_pwrite(file, offset, buf, len, errp);   /* fails */
    }
    r = pwrite_dsync(file_fd(file), buf, len, offset);
    if (r == -EOPNOTSUPP || r == -ENOSYS || r == -EINVAL) {
        /* No per-write sync here: write, then sync the whole file. */
        return bdrv_file_pwrite(file, offset, buf, len, errp) &&
               file_flush(file, errp);
    }
    if (r < 0) {
        tern_set_error_errno(errp, -r, "Could not write '%s' at %" PRIu64,
                             file->filename, offset);
        return false;
    }
    return true;
}

bool bdrv_file_truncate(BlockNode *file, uint64_t size, GError **errp)
{
    if (ftruncate(file_fd(file), (off_t)size) < 0) {
        tern_set_error_errno(errp, errno, "Could not resize '%s'",
                             file->filename);
        return false;
    }
    file->size = size;
    return true;
}

static bool file_preadv(BlockNode *bs, uint64_t offset, uint64_t bytes,
                        const struct iovec *iov, int iovcnt, GError **errp)
{
    return file_rw(bs, offset, iov, iovcnt, false, errp);
}

static bool file_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                         const struct iovec *iov, int iovcnt, GError **errp)
{
    return file_rw(bs, offset, iov, iovcnt, true, errp);
}

static bool file_flush(BlockNode *bs, GError **errp)
{
    if (fdatasync(file_fd(bs)) < 0) {
        tern_set_error_errno(errp, errno, "Could not flush '%s'", bs->filename);
        return false;
    }
    return true;
}

static bool file_discard(BlockNode *bs, uint64_t offset, uint64_t bytes,
                         GError **errp)
{
    FileState *s = bs->opaque;
    if (s->is_blockdev) {
        uint64_t range[2] = { offset, bytes };
        /* Discard is advisory: a device that refuses it keeps its data. */
        (void)ioctl(s->fd, BLKDISCARD, range);
        return true;
    }
    /* Discard is a hint: a file system without hole punching keeps data. */
    if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)offset, (off_t)bytes) < 0 && errno != EOPNOTSUPP) {
        tern_set_error_errno(errp, errno, "Could not discard in '%s'",
                             bs->filename);
        return false;
    }
    return true;
}

static bool file_write_zeroes(BlockNode *bs, uint64_t offset, uint64_t bytes,
                              GError **errp)
{
    FileState *s = bs->opaque;
    if (!s->is_blockdev &&
        fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                  (off_t)offset, (off_t)bytes) == 0) {
        return true;
    }
    return bdrv_pwrite_zeroes_fallback(bs, offset, bytes, errp);
}

static bool file_create(const char *filename, uint64_t size,
                        const BlockCreateOpts *opts, GError **errp)
{
    int fd = open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tern_set_error_errno(errp, errno, "Could not create '%s'", filename);
        return false;
    }
    bool ok = ftruncate(fd, (off_t)size) == 0;
    if (!ok) {
        tern_set_error_errno(errp, errno, "Could not resize '%s'", filename);
    }
    close(fd);
    return ok;
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .is_protocol = true,
    .state_size = sizeof(FileState),
    .create = file_create,
    .open = file_open,
    .close = file_close,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .flush = file_flush,
    .discard = file_discard,
    .write_zeroes = file_write_zeroes,
};
