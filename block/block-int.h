/*
 * Declarations shared inside block/ only: the built-in drivers and helpers
 * the format drivers use to reach their protocol ("file") child.
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

#include <sys/stat.h>

#include "block/block.h"

/* Bytes probing looks at (QEMU's BLOCK_PROBE_BUF_SIZE). */
#define BDRV_PROBE_BUF_SIZE 512

extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_qcow2;


/* Bytes in an I/O vector. */
uint64_t iov_total(const struct iovec *iov, int iovcnt);

/*
 * Direct I/O on a protocol node, for format drivers: no bounds check, writes
 * past the end grow the file. Short reads past EOF return zeroes. They go
 * through the protocol driver's ops, as flush and discard do.
 */
bool bdrv_file_pread(BlockNode *file, uint64_t offset, void *buf, size_t len,
                     GError **errp);
bool bdrv_file_pwrite(BlockNode *file, uint64_t offset, const void *buf,
                      size_t len, GError **errp);
bool bdrv_file_preadv(BlockNode *file, uint64_t offset,
                      const struct iovec *iov, int iovcnt, GError **errp);
bool bdrv_file_pwritev(BlockNode *file, uint64_t offset,
                       const struct iovec *iov, int iovcnt, GError **errp);
/* Writes and makes just these bytes durable (RWF_DSYNC), not the rest of
 * the file's dirty data; falls back to write + fdatasync. */
bool bdrv_file_pwrite_durable(BlockNode *file, uint64_t offset,
                              const void *buf, size_t len, GError **errp);
bool bdrv_file_stat(BlockNode *file, struct stat *st);
uint64_t bdrv_file_length(BlockNode *file);
bool bdrv_file_truncate(BlockNode *file, uint64_t size, GError **errp);
/* (Re)takes the image locks 'flags' call for (BDRV_O_RDWR, _SHARE_RW,
 * _NO_LOCK, _INACTIVE); releases the ones they no longer need. */
bool bdrv_file_apply_locks(BlockNode *file, int flags, GError **errp);

/* Writes zeroes through bs->drv->pwritev in chunks (lock held). */
bool bdrv_pwrite_zeroes_fallback(BlockNode *bs, uint64_t offset,
                                 uint64_t bytes, GError **errp);

/*
 * QEMU-compatible image locks (image-lock.c) on an open fd: 'perm' is what
 * this opener uses, 'shared' what it lets others use (BLK_PERM_* bits).
 */
enum {
    BLK_PERM_CONSISTENT_READ = 1 << 0,
    BLK_PERM_WRITE           = 1 << 1,
    BLK_PERM_WRITE_UNCHANGED = 1 << 2,
    BLK_PERM_RESIZE          = 1 << 3,
    BLK_PERM_GRAPH_MOD       = 1 << 4,
    BLK_PERM_ALL             = (1 << 5) - 1,
};
bool image_lock_apply(int fd, const char *filename, uint32_t perm,
                      uint32_t shared, GError **errp);

#endif
