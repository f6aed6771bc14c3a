/*
 * The "file" protocol driver: a regular file or block device on the host.
 * It owns the fd and the image locks; reads past EOF of a regular file see
 * zeroes, writes past it grow the file (format drivers rely on both). Discard
 * punches holes, write-zeroes uses fallocate where it can, flush is
 * fdatasync; bdrv_file_pwrite_durable makes one write durable on its own
 * (RWF_DSYNC), for crash-safe bitmaps. With O_DIRECT (cache=none) offsets, lengths and buffers must be
 * aligned to the device's block size: a request that is not goes through an
 * aligned bounce buffer, read-modify-write at the edges, so format drivers
 * (qcow2's 8-byte table updates) need not care.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "block/block-int.h"

typedef struct FileState {
    int fd;
    bool is_blockdev;
    uint32_t align;           /* O_DIRECT: request alignment; 1 otherwise */
} FileState;

static int file_fd(BlockNode *bs)
{
    return ((FileState *)bs->opaque)->fd;
}

/* The smallest block O_DIRECT accepts: the logical sector size of a block
 * device; for a file, the first size a read at offset 0 does not refuse
 * (4096, which every Linux device takes, when nothing tells). */
static uint32_t direct_alignment(FileState *s)
{
    int sector = 0;
    void *buf = NULL;

    if (s->is_blockdev && ioctl(s->fd, BLKSSZGET, &sector) == 0 &&
        sector >= 512 && !(sector & (sector - 1))) {
        return (uint32_t)sector;
    }
    if (posix_memalign(&buf, 4096, 4096)) {
        return 4096;
    }
    uint32_t align = 4096;
    for (uint32_t a = 512; a < 4096; a *= 2) {
        if (pread(s->fd, buf, a, 0) > 0) {     /* 0 (empty): no answer */
            align = a;
            break;
        }
    }
    free(buf);
    return align;
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
    s->align = (flags & BDRV_O_NOCACHE) ? direct_alignment(s) : 1;
    if (!bdrv_file_apply_locks(bs, flags, errp)) {
        goto fail;
    }
    bs->size = bdrv_file_length(bs);
    return true;
fail:
    close(s->fd);
    return false;
}

/*
 * The permissions QEMU 7.2 holds on the file for the same use (observed
 * in /proc/locks): a reader needs consistent read, a writer write, a
 * resizer resize; the user (a device; tern-img shares like qemu-img and
 * qemu-io) forbids others' writes unless BDRV_O_SHARE_RW; a format with
 * metadata in the file also takes resize when writable and forbids others
 * to write or resize, whatever the user shares. An inactive node (incoming
 * migration) holds none, as in QEMU.
 */
bool bdrv_file_apply_locks(BlockNode *file, int flags, GError **errp)
{
    uint32_t perm = BLK_PERM_CONSISTENT_READ;
    uint32_t shared = BLK_PERM_ALL;

    if (flags & BDRV_O_NO_LOCK) {
        return true;
    }
    if (flags & BDRV_O_INACTIVE) {
        return image_lock_apply(file_fd(file), file->filename, 0, shared,
                                errp);
    }
    if (flags & BDRV_O_RDWR) {
        perm |= BLK_PERM_WRITE;
    }
    if (flags & BDRV_O_RESIZE) {
        perm |= BLK_PERM_RESIZE;
    }
    if (!(flags & BDRV_O_SHARE_RW)) {
        shared &= ~BLK_PERM_WRITE;
    }
    if (flags & BDRV_O_STABLE_FILE) {
        perm |= (flags & BDRV_O_RDWR) ? BLK_PERM_RESIZE : 0;
        shared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
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

/* How file_rw moves data: a read, a write, or a write that is durable
 * when the call returns (RWF_DSYNC). */
typedef enum FileOp {
    FILE_READ,
    FILE_WRITE,
    FILE_WRITE_DSYNC,
} FileOp;

static ssize_t op_vector(int fd, const struct iovec *iov, int iovcnt,
                         uint64_t offset, FileOp op)
{
    iovcnt = MIN(iovcnt, IOV_MAX);
    if (op == FILE_READ) {
        return preadv(fd, iov, iovcnt, (off_t)offset);
    }
    return pwritev2(fd, iov, iovcnt, (off_t)offset,
                    op == FILE_WRITE_DSYNC ? RWF_DSYNC : 0);
}

/* One preadv/pwritev for the whole vector: the bytes it moved (0 if it
 * failed; the loop below then reports the error). */
static size_t rw_vector(int fd, uint64_t offset, const struct iovec *iov,
                        int iovcnt, FileOp op)
{
    ssize_t n;

    do {
        n = op_vector(fd, iov, iovcnt, offset, op);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? (size_t)n : 0;
}

static bool file_rw(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                    int iovcnt, FileOp op, GError **errp);

static bool is_aligned(const FileState *s, uint64_t offset,
                       const struct iovec *iov, int iovcnt)
{
    if (offset % s->align) {
        return false;
    }
    for (int i = 0; i < iovcnt; i++) {
        if ((uintptr_t)iov[i].iov_base % s->align ||
            iov[i].iov_len % s->align) {
            return false;
        }
    }
    return true;
}

static void copy_iov(const struct iovec *iov, int iovcnt, uint8_t *buf,
                     bool to_buf)
{
    for (int i = 0; i < iovcnt; i++) {
        if (to_buf) {
            memcpy(buf, iov[i].iov_base, iov[i].iov_len);
        } else {
            memcpy(iov[i].iov_base, buf, iov[i].iov_len);
        }
        buf += iov[i].iov_len;
    }
}

/* An O_DIRECT request that is not aligned: through an aligned buffer
 * covering whole blocks; a write reads the partial blocks at its edges
 * first, and a file grown by the padding is cut back to where the request
 * ended (a raw image's size must not change by 4 KiB). */
static bool file_rw_bounced(BlockNode *bs, uint64_t offset,
                            const struct iovec *iov, int iovcnt, FileOp op,
                            GError **errp)
{
    bool write = op != FILE_READ;
    FileState *s = bs->opaque;
    uint64_t len = 0;
    void *mem = NULL;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
    }
    uint64_t start = ALIGN_DOWN(offset, (uint64_t)s->align);
    uint64_t end = ALIGN_UP(offset + len, (uint64_t)s->align);
    uint64_t old_size = bdrv_file_length(bs);
    if (posix_memalign(&mem, s->align, end - start)) {
        tern_set_error_errno(errp, ENOMEM, "Could not %s '%s'",
                             write ? "write" : "read", bs->filename);
        return false;
    }
    uint8_t *buf = mem;
    struct iovec head = { buf, s->align };
    struct iovec tail = { buf + (end - start) - s->align, s->align };
    struct iovec all = { buf, end - start };
    bool head_read = write && offset != start;
    bool ok = (write ? ((!head_read ||
                         file_rw(bs, start, &head, 1, FILE_READ, errp)) &&
                        ((offset + len) % s->align == 0 ||
                         (head_read && end - start == s->align) ||
                         file_rw(bs, end - s->align, &tail, 1, FILE_READ,
                                 errp)))
                     : file_rw(bs, start, &all, 1, FILE_READ, errp));
    if (ok && write) {
        copy_iov(iov, iovcnt, buf + (offset - start), true);
        ok = file_rw(bs, start, &all, 1, op, errp);
        if (ok && !s->is_blockdev && end > MAX(old_size, offset + len) &&
            ftruncate(s->fd, (off_t)MAX(old_size, offset + len)) < 0) {
            tern_set_error_errno(errp, errno, "Could not resize '%s'",
                                 bs->filename);
            ok = false;
        }
    } else if (ok) {
        copy_iov(iov, iovcnt, buf + (offset - start), false);
    }
    free(mem);
    return ok;
}

/* The whole vector in one call; what a short transfer left (EOF, a signal,
 * more than IOV_MAX pieces) goes on piece by piece, retrying short I/O. */
static bool file_rw(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                    int iovcnt, FileOp op, GError **errp)
{
    FileState *s = bs->opaque;
    bool write = op != FILE_READ;

    if (s->align > 1 && !is_aligned(s, offset, iov, iovcnt)) {
        return file_rw_bounced(bs, offset, iov, iovcnt, op, errp);
    }
    int fd = file_fd(bs);
    size_t skip = rw_vector(fd, offset, iov, iovcnt, op);

    offset += skip;
    for (int i = 0; i < iovcnt; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        size_t done = MIN(skip, left);

        p += done;
        left -= done;
        skip -= done;
        while (left) {
            struct iovec piece = { .iov_base = p, .iov_len = left };
            ssize_t n = op_vector(fd, &piece, 1, offset, op);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                tern_set_error_errno(errp, errno, "Could not %s '%s' at %"
                                     PRIu64, write ? "write" : "read",
                                     bs->filename, offset);
                return false;
            }
            /* EOF: the rest reads as zeroes (O_DIRECT stops short inside
             * the last block, where it could not go on unaligned) */
            if (n == 0 || (!write && s->align > 1 && (size_t)n < left)) {
                memset(p + n, 0, left - (size_t)n);
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

bool bdrv_file_pwrite_durable(BlockNode *file, uint64_t offset,
                              const void *buf, size_t len, GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    g_autoptr(GError) err = NULL;
    int e;

    if (file->read_only) {
        return bdrv_file_pwrite(file, offset, buf, len, errp);   /* fails */
    }
    if (file_rw(file, offset, &iov, 1, FILE_WRITE_DSYNC, &err)) {
        return true;
    }
    e = tern_error_errno(err);
    if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
        /* No per-write sync here: write, then sync the whole file. */
        return bdrv_file_pwrite(file, offset, buf, len, errp) &&
               file_flush(file, errp);
    }
    g_propagate_error(errp, g_steal_pointer(&err));
    return false;
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
    return file_rw(bs, offset, iov, iovcnt, FILE_READ, errp);
}

static bool file_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                         const struct iovec *iov, int iovcnt, GError **errp)
{
    return file_rw(bs, offset, iov, iovcnt, FILE_WRITE, errp);
}

static void file_start_writeback(BlockNode *bs)
{
    /* Whole file; pages already on their way are skipped. */
    (void)sync_file_range(file_fd(bs), 0, 0, SYNC_FILE_RANGE_WRITE);
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

/* Unmap: a hole (reads as zeroes); otherwise zeroes that stay allocated. */
static bool file_write_zeroes(BlockNode *bs, uint64_t offset, uint64_t bytes,
                              bool unmap, GError **errp)
{
    FileState *s = bs->opaque;
    if (!s->is_blockdev &&
        ((unmap && fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             (off_t)offset, (off_t)bytes) == 0) ||
         fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                   (off_t)offset, (off_t)bytes) == 0)) {
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
    .start_writeback = file_start_writeback,
    .discard = file_discard,
    .write_zeroes = file_write_zeroes,
};
