/*
 * QEMUFile core: buffering, big-endian encoding, the sticky error, counters,
 * rate limiting and peeking, independent of where the bytes go. Output keeps
 * a vector of pending pieces: small puts are copied into the internal buffer,
 * large zero-copy puts are referenced in place, and one writev sends them all.
 * Input refills the buffer from the backend, so peeks up to the buffer size
 * never consume. Backends live in qemu-file-fd.c and qemu-file-mem.c.
 */
#include <string.h>

#include "migration/qemu-file.h"

#define QEMU_FILE_MAX_IOV 64
/* Bulk files (qemu_file_new_bulk): a 1 MiB buffer and 1024 pieces. */
#define QEMU_FILE_BULK_BUF (1 * MiB)
#define QEMU_FILE_BULK_IOV 1024
/* Below this a zero-copy put is copied anyway: an iovec entry costs more. */
#define QEMU_FILE_COPY_THRESHOLD 512

struct QEMUFile {
    const QEMUFileOps *ops;
    void *opaque;
    bool output;

    uint8_t *buf;
    size_t buf_size;
    size_t buf_index;   /* output: bytes used; input: read position */
    size_t buf_len;     /* input: bytes valid in buf */
    struct iovec *iov;
    int iovcnt;
    int max_iov;

    uint64_t pos;
    uint64_t rate_limit;
    uint64_t rate_used;
    GError *error;
};

QEMUFile *qemu_file_new(const QEMUFileOps *ops, void *opaque, bool output)
{
    QEMUFile *f = g_new0(QEMUFile, 1);

    f->ops = ops;
    f->opaque = opaque;
    f->output = output;
    f->buf_size = QEMU_FILE_BUF_SIZE;
    f->buf = g_malloc(f->buf_size);
    f->max_iov = QEMU_FILE_MAX_IOV;
    f->iov = g_new(struct iovec, f->max_iov);
    return f;
}

QEMUFile *qemu_file_new_bulk(const QEMUFileOps *ops, void *opaque, bool output)
{
    QEMUFile *f = qemu_file_new(ops, opaque, output);

    f->buf_size = QEMU_FILE_BULK_BUF;
    f->buf = g_realloc(f->buf, f->buf_size);
    f->max_iov = QEMU_FILE_BULK_IOV;
    f->iov = g_renew(struct iovec, f->iov, f->max_iov);
    return f;
}

bool qemu_file_is_output(const QEMUFile *f)
{
    return f->output;
}

bool qemu_fclose(QEMUFile *f, GError **errp)
{
    GError *close_err = NULL;
    bool ok;

    if (!f) {
        return true;
    }
    if (f->output) {
        qemu_fflush(f);
    }
    ok = !f->ops->close || f->ops->close(f->opaque, &close_err);
    if (f->error) {
        g_propagate_error(errp, f->error);
        g_clear_error(&close_err);
        ok = false;
    } else if (!ok) {
        g_propagate_error(errp, close_err);
    }
    g_free(f->buf);
    g_free(f->iov);
    g_free(f);
    return ok;
}

void *qemu_file_backend(QEMUFile *f, const QEMUFileOps *ops)
{
    return f->ops == ops ? f->opaque : NULL;
}

QEMUFile *qemu_file_get_return_path(QEMUFile *f, GError **errp)
{
    if (!f->ops->get_return_path) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "this migration channel has no return path");
        return NULL;
    }
    return f->ops->get_return_path(f->opaque, !f->output, errp);
}

void qemu_file_shutdown_channel(QEMUFile *f)
{
    if (f->ops->shutdown) {
        f->ops->shutdown(f->opaque);
    }
}

void qemu_file_shutdown(QEMUFile *f)
{
    if (f->ops->shutdown) {
        f->ops->shutdown(f->opaque);
    }
    qemu_file_set_error_msg(f, "migration channel shut down");
}

const GError *qemu_file_get_error(const QEMUFile *f)
{
    return f->error;
}

void qemu_file_set_error(QEMUFile *f, GError *err)
{
    if (f->error) {
        g_error_free(err);
        return;
    }
    f->error = err;
}

void qemu_file_set_error_msg(QEMUFile *f, const char *fmt, ...)
{
    va_list ap;

    if (f->error) {
        return;
    }
    va_start(ap, fmt);
    f->error = g_error_new_valist(TERN_ERROR, TERN_ERR_INVALID, fmt, ap);
    va_end(ap);
}

bool qemu_file_check(const QEMUFile *f, GError **errp)
{
    if (!f->error) {
        return true;
    }
    g_propagate_error(errp, g_error_copy(f->error));   /* errno included */
    return false;
}

uint64_t qemu_file_tell(const QEMUFile *f)
{
    return f->pos;
}

void qemu_file_count_sent(QEMUFile *f, uint64_t bytes)
{
    g_assert(f->output);
    f->pos += bytes;
    f->rate_used += bytes;
}

void qemu_file_set_rate_limit(QEMUFile *f, uint64_t limit)
{
    f->rate_limit = limit;
}

uint64_t qemu_file_get_rate_limit(const QEMUFile *f)
{
    return f->rate_limit;
}

void qemu_file_reset_rate_limit(QEMUFile *f)
{
    f->rate_used = 0;
}

bool qemu_file_rate_limit_exceeded(const QEMUFile *f)
{
    /* A failed stream reports "exceeded" so producers stop producing. */
    if (f->error) {
        return true;
    }
    return f->rate_limit && f->rate_used >= f->rate_limit;
}

/* ---- output ---- */

void qemu_fflush(QEMUFile *f)
{
    GError *err = NULL;

    g_assert(f->output);
    if (f->iovcnt && !f->error &&
        !f->ops->writev(f->opaque, f->iov, f->iovcnt, &err)) {
        qemu_file_set_error(f, err);
    }
    f->iovcnt = 0;
    f->buf_index = 0;
}

static void add_to_iovec(QEMUFile *f, const uint8_t *base, size_t len)
{
    struct iovec *last = f->iovcnt ? &f->iov[f->iovcnt - 1] : NULL;

    if (last && (uint8_t *)last->iov_base + last->iov_len == base) {
        last->iov_len += len;
    } else {
        f->iov[f->iovcnt].iov_base = (void *)base;
        f->iov[f->iovcnt].iov_len = len;
        f->iovcnt++;
    }
    if (f->iovcnt == f->max_iov) {
        qemu_fflush(f);
    }
}

static void account_put(QEMUFile *f, size_t len)
{
    f->pos += len;
    f->rate_used += len;
}

void qemu_put_buffer(QEMUFile *f, const void *data, size_t len)
{
    const uint8_t *p = data;

    g_assert(f->output);
    if (f->error) {
        return;
    }
    account_put(f, len);
    while (len) {
        size_t n = MIN(len, f->buf_size - f->buf_index);
        uint8_t *dst = f->buf + f->buf_index;

        memcpy(dst, p, n);
        f->buf_index += n;
        add_to_iovec(f, dst, n);
        if (f->buf_index == f->buf_size) {
            qemu_fflush(f);
        }
        p += n;
        len -= n;
    }
}

void qemu_put_buffer_async(QEMUFile *f, const void *buf, size_t len)
{
    if (len < QEMU_FILE_COPY_THRESHOLD) {
        qemu_put_buffer(f, buf, len);
        return;
    }
    g_assert(f->output);
    if (f->error) {
        return;
    }
    account_put(f, len);
    add_to_iovec(f, buf, len);
}

void qemu_put_byte(QEMUFile *f, uint8_t v)
{
    qemu_put_buffer(f, &v, 1);
}

void qemu_put_be16(QEMUFile *f, uint16_t v)
{
    uint8_t b[2] = { v >> 8, v };

    qemu_put_buffer(f, b, sizeof(b));
}

void qemu_put_be32(QEMUFile *f, uint32_t v)
{
    uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };

    qemu_put_buffer(f, b, sizeof(b));
}

void qemu_put_be64(QEMUFile *f, uint64_t v)
{
    qemu_put_be32(f, v >> 32);
    qemu_put_be32(f, (uint32_t)v);
}

void qemu_put_counted_string(QEMUFile *f, const char *s)
{
    size_t len = strlen(s);

    g_assert(len <= 255);
    qemu_put_byte(f, len);
    qemu_put_buffer(f, s, len);
}

/* ---- input ---- */

static void set_truncated(QEMUFile *f)
{
    qemu_file_set_error_msg(f, "migration stream truncated at offset %" PRIu64,
                            f->pos);
}

/* Read more bytes into the buffer; returns the count, 0 at EOF or error. */
static size_t fill_buffer(QEMUFile *f)
{
    size_t unread = f->buf_len - f->buf_index;
    GError *err = NULL;
    ssize_t n;

    if (f->error) {
        return 0;
    }
    if (f->buf_index) {
        memmove(f->buf, f->buf + f->buf_index, unread);
        f->buf_index = 0;
        f->buf_len = unread;
    }
    if (f->buf_len == f->buf_size) {
        return 0;
    }
    n = f->ops->read(f->opaque, f->buf + f->buf_len,
                     f->buf_size - f->buf_len, &err);
    if (n < 0) {
        qemu_file_set_error(f, err);
        return 0;
    }
    f->buf_len += n;
    return n;
}

size_t qemu_peek_buffer(QEMUFile *f, const uint8_t **ptr, size_t size,
                        size_t offset)
{
    size_t avail;

    g_assert(!f->output);
    g_assert(offset + size <= QEMU_FILE_BUF_SIZE);
    while (f->buf_len - f->buf_index < offset + size) {
        if (!fill_buffer(f)) {
            break;
        }
    }
    avail = f->buf_len - f->buf_index;
    *ptr = f->buf + f->buf_index + offset;
    return avail <= offset ? 0 : MIN(size, avail - offset);
}

int qemu_peek_byte(QEMUFile *f, size_t offset)
{
    const uint8_t *p;

    if (f->error || qemu_peek_buffer(f, &p, 1, offset) < 1) {
        return -1;
    }
    return *p;
}

bool qemu_file_at_eof(QEMUFile *f)
{
    return qemu_peek_byte(f, 0) < 0 && !f->error;
}

void qemu_file_skip(QEMUFile *f, size_t len)
{
    const uint8_t *p;

    while (len && !f->error) {
        size_t chunk = MIN(len, QEMU_FILE_BUF_SIZE);
        size_t n = qemu_peek_buffer(f, &p, chunk, 0);

        if (!n) {
            set_truncated(f);
            return;
        }
        f->buf_index += n;
        f->pos += n;
        len -= n;
    }
}

/* Large reads with an empty buffer go straight into the caller's memory. */
static size_t read_direct(QEMUFile *f, uint8_t *dst, size_t len)
{
    GError *err = NULL;
    ssize_t n = f->ops->read(f->opaque, dst, len, &err);

    if (n < 0) {
        qemu_file_set_error(f, err);
        return 0;
    }
    return n;
}

size_t qemu_get_buffer(QEMUFile *f, void *buf, size_t len)
{
    uint8_t *dst = buf;
    size_t done = 0;

    g_assert(!f->output);
    while (done < len && !f->error) {
        size_t avail = f->buf_len - f->buf_index;
        size_t n;

        if (avail) {
            n = MIN(avail, len - done);
            memcpy(dst + done, f->buf + f->buf_index, n);
            f->buf_index += n;
        } else if (len - done >= f->buf_size) {
            n = read_direct(f, dst + done, len - done);
        } else {
            n = fill_buffer(f);
            if (n) {
                continue;
            }
        }
        if (!n) {
            set_truncated(f);
            break;
        }
        done += n;
        f->pos += n;
    }
    return done;
}

uint8_t qemu_get_byte(QEMUFile *f)
{
    uint8_t v = 0;

    return qemu_get_buffer(f, &v, 1) == 1 ? v : 0;
}

uint16_t qemu_get_be16(QEMUFile *f)
{
    uint8_t b[2] = { 0 };

    if (qemu_get_buffer(f, b, 2) != 2) {
        return 0;
    }
    return (uint16_t)(b[0] << 8 | b[1]);
}

uint32_t qemu_get_be32(QEMUFile *f)
{
    uint8_t b[4] = { 0 };

    if (qemu_get_buffer(f, b, 4) != 4) {
        return 0;
    }
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
           b[3];
}

uint64_t qemu_get_be64(QEMUFile *f)
{
    uint64_t hi = qemu_get_be32(f);

    return hi << 32 | qemu_get_be32(f);
}

size_t qemu_get_counted_string(QEMUFile *f, char buf[256])
{
    size_t len = qemu_get_byte(f);
    size_t n = qemu_get_buffer(f, buf, len);

    buf[n] = '\0';
    return f->error ? 0 : len;
}
