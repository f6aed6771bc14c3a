/*
 * Block-node backend of QEMUFile (include/migration/qemu-file-block.h): each
 * flushed piece goes to bdrv_save_vmstate at a growing offset; reads come
 * from bdrv_load_vmstate up to the size the snapshot recorded.
 */
#include "migration/qemu-file-block.h"

typedef struct VmstateChannel {
    BlockNode *bs;
    uint64_t pos;
    uint64_t size;          /* input only */
} VmstateChannel;

static ssize_t vmstate_read(void *opaque, uint8_t *buf, size_t len,
                            GError **errp)
{
    VmstateChannel *c = opaque;
    size_t n = MIN(len, c->size - c->pos);

    if (n && !bdrv_load_vmstate(c->bs, c->pos, buf, n, errp)) {
        return -1;
    }
    c->pos += n;
    return n;
}

static bool vmstate_writev(void *opaque, const struct iovec *iov, int iovcnt,
                           GError **errp)
{
    VmstateChannel *c = opaque;

    for (int i = 0; i < iovcnt; i++) {
        if (!bdrv_save_vmstate(c->bs, c->pos, iov[i].iov_base,
                               iov[i].iov_len, errp)) {
            return false;
        }
        c->pos += iov[i].iov_len;
    }
    return true;
}

static bool vmstate_close(void *opaque, GError **errp)
{
    g_free(opaque);
    return true;
}

static const QEMUFileOps vmstate_input_ops = {
    .read = vmstate_read,
    .close = vmstate_close,
};

static const QEMUFileOps vmstate_output_ops = {
    .writev = vmstate_writev,
    .close = vmstate_close,
};

QEMUFile *qemu_file_new_vmstate_output(BlockNode *bs)
{
    VmstateChannel *c = g_new0(VmstateChannel, 1);

    c->bs = bs;
    return qemu_file_new(&vmstate_output_ops, c, true);
}

QEMUFile *qemu_file_new_vmstate_input(BlockNode *bs, uint64_t size)
{
    VmstateChannel *c = g_new0(VmstateChannel, 1);

    c->bs = bs;
    c->size = size;
    return qemu_file_new(&vmstate_input_ops, c, false);
}
