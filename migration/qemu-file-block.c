/*
 * Block-node backend of QEMUFile (include/migration/qemu-file-block.h): the
 * VM state area of a qcow2 node as a stream, on a bulk QEMUFile (1 MiB
 * reads, writes of up to 1024 pieces). Output hands the node whole
 * clusters at cluster-aligned positions, straight from the QEMUFile's
 * vector (guest pages are not copied); only the tail that does not fill a
 * cluster yet waits in a cluster-sized buffer for the next write, so every
 * cluster is allocated and written once, in large sequential writes, and
 * the disk is told to start writing them out as the stream goes. Input
 * reads straight into the QEMUFile's buffer, from the active image's area
 * or in place from a snapshot's, up to the size the snapshot recorded.
 */
#include <limits.h>
#include <string.h>

#include "migration/qemu-file-block.h"

#define WRITEBACK_EVERY (16 * MiB)

typedef struct VmstateChannel {
    BlockNode *bs;
    char *snapshot_id;      /* input from a snapshot in place, or NULL */
    uint64_t pos;           /* bytes handed to / read from the node */
    uint64_t size;          /* input: the snapshot's vm_state_size */
    uint8_t *tail;          /* output: bytes short of a whole cluster */
    size_t tail_len;
    size_t cluster;
} VmstateChannel;

/* ---- input ---- */

/* The QEMUFile asks for up to its (bulk) buffer at a time: read straight
 * into it. */
static ssize_t vmstate_read(void *opaque, uint8_t *buf, size_t len,
                            GError **errp)
{
    VmstateChannel *c = opaque;
    size_t n = MIN(len, c->size - c->pos);
    bool ok;

    if (!n) {
        return 0;
    }
    ok = c->snapshot_id
         ? bdrv_snapshot_load_vmstate(c->bs, c->snapshot_id, c->pos, buf, n,
                                      errp)
         : bdrv_load_vmstate(c->bs, c->pos, buf, n, errp);
    if (!ok) {
        return -1;
    }
    c->pos += n;
    return n;
}

/* ---- output ---- */

/* Write the held tail and the first 'take' bytes of iov as one request. */
static bool write_through(VmstateChannel *c, const struct iovec *iov,
                          int iovcnt, size_t take, GError **errp)
{
    g_autofree struct iovec *vec = g_new(struct iovec, iovcnt + 1);
    size_t total = c->tail_len;
    int n = 0;

    if (c->tail_len) {
        vec[n++] = (struct iovec){ c->tail, c->tail_len };
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
    /* The disk writes while the stream is still being produced. */
    if ((c->pos + total) / WRITEBACK_EVERY != c->pos / WRITEBACK_EVERY) {
        bdrv_start_writeback(c->bs);
    }
    c->pos += total;
    c->tail_len = 0;
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
        memcpy(c->tail + c->tail_len, (uint8_t *)iov[i].iov_base + skip,
               iov[i].iov_len - skip);
        c->tail_len += iov[i].iov_len - skip;
        skip = 0;
    }
}

static bool vmstate_writev(void *opaque, const struct iovec *iov, int iovcnt,
                           GError **errp)
{
    VmstateChannel *c = opaque;
    size_t total = 0, take;

    for (int i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    /* c->pos stays cluster aligned: write all whole clusters now. */
    take = ALIGN_DOWN(c->tail_len + total, c->cluster);
    if (take) {
        take -= c->tail_len;
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
    bool ok = !c->tail_len || write_through(c, NULL, 0, 0, errp);

    g_free(c->tail);
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
    g_autoptr(BlockImageInfo) info = NULL;

    return bdrv_get_info(bs, &info, NULL) && info->cluster_size
           ? info->cluster_size : 64 * KiB;
}

QEMUFile *qemu_file_new_vmstate_output(BlockNode *bs)
{
    VmstateChannel *c = g_new0(VmstateChannel, 1);

    c->bs = bs;
    c->cluster = cluster_size(bs);
    c->tail = g_malloc(c->cluster);
    return qemu_file_new_bulk(&vmstate_output_ops, c, true);
}

static QEMUFile *new_input(BlockNode *bs, const char *snapshot_id,
                           uint64_t size)
{
    VmstateChannel *c = g_new0(VmstateChannel, 1);

    c->bs = bs;
    c->snapshot_id = g_strdup(snapshot_id);
    c->size = size;
    return qemu_file_new_bulk(&vmstate_input_ops, c, false);
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
