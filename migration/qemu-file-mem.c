/*
 * Memory backend of QEMUFile: input from a GBytes (unit tests, fuzzing, the
 * postcopy PACKAGED sub-stream) and output into a GByteArray (tests and
 * packaging device state before it is sent as one PACKAGED blob).
 */
#include <string.h>

#include "migration/qemu-file.h"

typedef struct MemChannel {
    GBytes *in;
    size_t in_pos;
    GByteArray *out;
} MemChannel;

static ssize_t mem_read(void *opaque, uint8_t *buf, size_t len, GError **errp)
{
    MemChannel *c = opaque;
    gsize size;
    const uint8_t *data = g_bytes_get_data(c->in, &size);
    size_t n = MIN(len, size - c->in_pos);

    if (!n) {
        return 0;       /* also covers an empty GBytes with NULL data */
    }
    memcpy(buf, data + c->in_pos, n);
    c->in_pos += n;
    return n;
}

static bool mem_writev(void *opaque, const struct iovec *iov, int iovcnt,
                       GError **errp)
{
    MemChannel *c = opaque;

    for (int i = 0; i < iovcnt; i++) {
        g_byte_array_append(c->out, iov[i].iov_base, iov[i].iov_len);
    }
    return true;
}

static bool mem_close(void *opaque, GError **errp)
{
    MemChannel *c = opaque;

    if (c->in) {
        g_bytes_unref(c->in);
    }
    if (c->out) {
        g_byte_array_unref(c->out);
    }
    g_free(c);
    return true;
}

static const QEMUFileOps mem_input_ops = {
    .read = mem_read,
    .close = mem_close,
};

static const QEMUFileOps mem_output_ops = {
    .writev = mem_writev,
    .close = mem_close,
};

QEMUFile *qemu_file_new_mem_input(GBytes *data)
{
    MemChannel *c = g_new0(MemChannel, 1);

    c->in = g_bytes_ref(data);
    return qemu_file_new(&mem_input_ops, c, false);
}

QEMUFile *qemu_file_new_mem_output(void)
{
    MemChannel *c = g_new0(MemChannel, 1);

    c->out = g_byte_array_new();
    return qemu_file_new(&mem_output_ops, c, true);
}

const GByteArray *qemu_file_mem_output_data(QEMUFile *f)
{
    MemChannel *c = qemu_file_backend(f, &mem_output_ops);

    g_assert(c);
    qemu_fflush(f);
    return c->out;
}
