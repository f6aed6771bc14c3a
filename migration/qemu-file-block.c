/*
 * Block-node backend of QEMUFile (include/migration/qemu-file-block.h): the
 * VM state area of a qcow2 node as a stream. Output hands the node whole
 * clusters at cluster-aligned positions, straight from the QEMUFile's
 * vector (guest pages are not copied); only the tail that does not fill a
 * cluster yet waits in a cluster-sized buffer for the next write, so every
 * cluster is allocated and written once, in large sequential writes.
 * Input reads ahead in large chunks, from the active image's area or in
 * place from a snapshot's, up to the size the snapshot recorded.
 */
#include <limits.h>
#include <string.h>

#include "migration/qemu-file-block.h"

#define READ_AHEAD      (2 * MiB)
#define MAX_SEGMENTS    (IOV_MAX - 1)   /* plus the held tail */

typedef struct VmstateChannel {
    BlockNode *bs;
    char *snapshot_id;      /* input from a snapshot in place, or NULL */
    uint64_t pos;           /* bytes handed to / read from the node */
    uint64_t size;          /* input: the snapshot's vm_state_size */
    uint8_t *buf;           /* output: held tail; input: read-ahead */
    size_t buf_size;
    size_t buf_len;         /* bytes in buf */
    size_t buf_off;         /* input: bytes of buf already consumed */
} VmstateChannel;

/* ---- input ---- */

static bool load(VmstateChannel *c, uint8_t *dst, size_t len, GError **errp)
{
    if (c->snapshot_id) {
        return bdrv_snapshot_load_vmstate(c->bs, c->snapshot_id, c->pos, dst,
                                          len, errp);
    }
    return bdrv_load_vmstate(c->bs, c->pos, dst, len, errp);
}

static ssize_t vmstate_read(void *opaque, uint8_t *buf, size_t len,
                            GError **errp)
{
    VmstateChannel *c = opaque;
    size_t n;

    if (c->buf_off == c->buf_len) {
        size_t want = MIN(c->buf_size, c->size - c->pos);
        /* A read as large as the read-ahead gains nothing from a copy. */
        uint8_t *dst = len >= c->buf_size ? buf : c->buf;

        if (!want) {
            return 0;
        }
        if (!load(c, dst, want, errp)) {
            return -1;
        }
        c->pos += want;
        if (dst == buf) {
            return want;
        }
        c->buf_len = want;
        c->buf_off = 0;
    }
    n = MIN(len, c->buf_len - c->buf_off);
    memcpy(buf, c->buf + c->buf_off, n);
    c->buf_off += n;
    return n;
}

/* ---- output ---- */

/* Write the held tail and the first 'take' bytes of iov as one request. */
static bool write_through(VmstateChannel *c, const struct iovec *iov,
                          int iovcnt, size_t take, GError **errp)
{
    struct iovec vec[MAX_SEGMENTS + 1];
    size_t total = c->buf_len;
    int n = 0;

    if (c->buf_len) {
        vec[n++] = (struct iovec){ c->buf, c->buf_len };
    }
    for (int i = 0; i < iovcnt && take; i++) {
        size_t part = MIN(take, iov[i].iov_len);

        vec[n++] = (struct iovec){ iov[i].iov_base, part };
        take -= part;
        total += part;
    }
    if (!bdrv_save_vmstatev(c->bs, c->pos, vec, n, errp)) {
        return false;
    }
    c->pos += total;
    c->buf_len = 0;
    return true;
}

/* Keep the bytes of iov from 'skip' on (less than a cluster) for later. */
static void hold_tail(VmstateChannel *c, const struct iovec *iov, int iovcnt,
                      size_t skip)
{
    for (int i = 0; i < iovcnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        memcpy(c->buf + c->buf_len, (uint8_t *)iov[i].iov_base + skip,
               iov[i].iov_len - skip);
        c->buf_len += iov[i].iov_len - skip;
        skip = 0;
    }
}

static bool vmstate_writev(void *opaque, const struct iovec *iov, int iovcnt,
                           GError **errp)
{
    VmstateChannel *c = opaque;
    size_t total = 0, take;

    g_assert(iovcnt <= MAX_SEGMENTS);
    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    /* c->pos stays cluster aligned: write all whole clusters now. */
    take = ALIGN_DOWN(c->buf_len + total, c->buf_size);
    if (take) {
        take -= c->buf_len;
        if (!write_through(c, iov, iovcnt, take, errp)) {
            return false;
        }
    }
    hold_tail(c, iov, iovcnt, take);
    return true;
}

static bool vmstate_close(void *opaque, GError **errp)
{
    VmstateChannel *c = opaque;
    bool ok = true;

    if (c->buf_len && c->size == UINT64_MAX) {      /* output */
        ok = write_through(c, NULL, 0, 0, errp);
    }
    g_free(c->buf);
    g_free(c->snapshot_id);
    g_free(c);
    return ok;
}

static const QEMUFileOps vmstate_input_ops = {
    .read = vmstate_read,
    .close = vmstate_close,
};

static const QEMUFileOps vmstate_output_ops = {
    .writev = vmstate_writev,
    .close = vmstate_close,
};

static uint32_t cluster_size(BlockNode *bs)
{
    BlockImageInfo *info = NULL;
    uint32_t size = 0;

    if (bdrv_get_info(bs, &info, NULL)) {
        size = info->cluster_size;
    }
    block_image_info_free(info);
    return size ? size : 64 * KiB;
}

QEMUFile *qemu_file_new_vmstate_output(BlockNode *bs)
{
    VmstateChannel *c = g_new0(VmstateChannel, 1);

    c->bs = bs;
    c->size = UINT64_MAX;
    c->buf_size = cluster_size(bs);
    c->buf = g_malloc(c->buf_size);
    return qemu_file_new(&vmstate_output_ops, c, true);
}

static QEMUFile *new_input(BlockNode *bs, const char *snapshot_id,
                           uint64_t size)
{
    VmstateChannel *c = g_new0(VmstateChannel, 1);

    c->bs = bs;
    c->snapshot_id = g_strdup(snapshot_id);
    c->size = size;
    c->buf_size = READ_AHEAD;
    c->buf = g_malloc(c->buf_size);
    return qemu_file_new(&vmstate_input_ops, c, false);
}

QEMUFile *qemu_file_new_vmstate_input(BlockNode *bs, uint64_t size)
{
    return new_input(bs, NULL, size);
}

QEMUFile *qemu_file_new_snapshot_vmstate_input(BlockNode *bs,
                                               const char *snapshot_id,
                                               uint64_t size)
{
    return new_input(bs, snapshot_id, size);
}
