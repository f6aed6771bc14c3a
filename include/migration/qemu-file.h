/*
 * QEMUFile: the buffered byte stream every migration producer and consumer
 * talks to. It owns buffering, big-endian encoding, a sticky error (the first
 * failure wins and every later operation becomes a no-op), byte counters, a
 * rate-limit budget and peeking. The bytes go to or come from a backend behind
 * QEMUFileOps: a file descriptor (socket, pipe, file), a memory buffer (tests,
 * the postcopy PACKAGED sub-stream), and later a block-device vmstate area.
 *
 * A QEMUFile is either an input or an output and is used by one thread at a
 * time; the return path of a duplex socket is a second QEMUFile.
 */
#ifndef MIGRATION_QEMU_FILE_H
#define MIGRATION_QEMU_FILE_H

#include <sys/uio.h>

#include "tern/error.h"

typedef struct QEMUFile QEMUFile;

typedef struct QEMUFileOps {
    /* Input: read up to 'len' bytes; 0 means end of stream, -1 sets errp. */
    ssize_t (*read)(void *opaque, uint8_t *buf, size_t len, GError **errp);
    /* Output: write every byte of the vector or fail. */
    bool (*writev)(void *opaque, const struct iovec *iov, int iovcnt,
                   GError **errp);
    /* Optional: the QEMUFile for the opposite direction of the same channel. */
    QEMUFile *(*get_return_path)(void *opaque, bool output, GError **errp);
    /* Optional: make blocked readers/writers on the channel fail now. */
    void (*shutdown)(void *opaque);
    /* Release the backend; may report a last error (e.g. close(2)). */
    bool (*close)(void *opaque, GError **errp);
} QEMUFileOps;

/* Size of the internal buffer (bulk files have more); also the most
 * qemu_peek_buffer can look at. */
#define QEMU_FILE_BUF_SIZE (32 * KiB)

QEMUFile *qemu_file_new(const QEMUFileOps *ops, void *opaque, bool output);
/* The same for backends that do best with few large calls (a qcow2 VM state
 * area): each read asks for up to 1 MiB, each write hands over up to 1024
 * pieces. Peeks are still limited to QEMU_FILE_BUF_SIZE. */
QEMUFile *qemu_file_new_bulk(const QEMUFileOps *ops, void *opaque, bool output);
/* Take ownership of 'fd' (closed by qemu_fclose). */
QEMUFile *qemu_file_new_fd_input(int fd);
QEMUFile *qemu_file_new_fd_output(int fd);
/* Runs after the descriptor is closed by qemu_fclose (e.g. to wait for an
 * exec: child); its failure becomes qemu_fclose's. */
typedef bool (*QEMUFileCloseHook)(void *opaque, GError **errp);
QEMUFile *qemu_file_new_fd(int fd, bool output, QEMUFileCloseHook on_close,
                           void *opaque);
/* Read the bytes of 'data' (a reference is taken). */
QEMUFile *qemu_file_new_mem_input(GBytes *data);
/* Collect output in memory; see qemu_file_mem_output_data. */
QEMUFile *qemu_file_new_mem_output(void);
/* Flush and return the bytes written so far to a memory output. */
const GByteArray *qemu_file_mem_output_data(QEMUFile *f);

/* Flush, release the backend and free 'f'. Returns false with the sticky
 * error (or the close error) if the stream failed at any point. NULL is ok. */
bool qemu_fclose(QEMUFile *f, GError **errp);
bool qemu_file_is_output(const QEMUFile *f);
/* For backends: their opaque if 'f' runs on 'ops', else NULL. */
void *qemu_file_backend(QEMUFile *f, const QEMUFileOps *ops);

/* A new QEMUFile for the other direction of the same channel (the return
 * path of a duplex socket), or NULL with errp if the backend has none. */
QEMUFile *qemu_file_get_return_path(QEMUFile *f, GError **errp);
void qemu_file_shutdown(QEMUFile *f);
/* Only shut the channel down (shutdown(2) on a socket), from any thread:
 * a read or write blocked in another thread fails there and sets the
 * sticky error on its own thread. No-op for backends without shutdown. */
void qemu_file_shutdown_channel(QEMUFile *f);

/* Sticky error: NULL while the stream is healthy. */
const GError *qemu_file_get_error(const QEMUFile *f);
/* Record an error unless one is already set; takes ownership of 'err'. */
void qemu_file_set_error(QEMUFile *f, GError *err);
void qemu_file_set_error_msg(QEMUFile *f, const char *fmt, ...) TERN_PRINTF(2, 3);
/* Copy the sticky error into errp (with 'what: ' prepended); false if set. */
bool qemu_file_check(const QEMUFile *f, GError **errp);

/* Bytes put by the caller (output) or consumed by the caller (input). */
uint64_t qemu_file_tell(const QEMUFile *f);
/* Output: 'bytes' of this stream went out on another channel (multifd):
 * they count in the position and against the rate limit. */
void qemu_file_count_sent(QEMUFile *f, uint64_t bytes);

/* Rate limiting: 'limit' bytes per period (0 = unlimited). The migration
 * thread calls qemu_file_reset_rate_limit at each period start and stops
 * producing while qemu_file_rate_limit_exceeded is true. */
void qemu_file_set_rate_limit(QEMUFile *f, uint64_t limit);
uint64_t qemu_file_get_rate_limit(const QEMUFile *f);
void qemu_file_reset_rate_limit(QEMUFile *f);
bool qemu_file_rate_limit_exceeded(const QEMUFile *f);

/* Output. Nothing reaches the backend before a flush or a full buffer. */
void qemu_put_byte(QEMUFile *f, uint8_t v);
void qemu_put_be16(QEMUFile *f, uint16_t v);
void qemu_put_be32(QEMUFile *f, uint32_t v);
void qemu_put_be64(QEMUFile *f, uint64_t v);
void qemu_put_buffer(QEMUFile *f, const void *buf, size_t len);
/* Zero-copy: 'buf' is referenced, not copied, and must stay unchanged until
 * the next qemu_fflush (large guest pages go to writev without a memcpy). */
void qemu_put_buffer_async(QEMUFile *f, const void *buf, size_t len);
/* One length byte and the bytes of 's' (at most 255). */
void qemu_put_counted_string(QEMUFile *f, const char *s);
void qemu_fflush(QEMUFile *f);

/* Input. On error or end of stream they set the sticky error and return 0. */
uint8_t qemu_get_byte(QEMUFile *f);
uint16_t qemu_get_be16(QEMUFile *f);
uint32_t qemu_get_be32(QEMUFile *f);
uint64_t qemu_get_be64(QEMUFile *f);
/* Returns the number of bytes read; less than 'len' only on error. */
size_t qemu_get_buffer(QEMUFile *f, void *buf, size_t len);
/* Reads a counted string into buf[256] (NUL-terminated); returns its length,
 * 0 for an empty string or on error (check qemu_file_get_error). */
size_t qemu_get_counted_string(QEMUFile *f, char buf[256]);
/* Look ahead without consuming: make 'size' bytes at 'offset' from the read
 * position available at *ptr (valid until the next input call). Returns the
 * number available, less than 'size' only at end of stream or on error.
 * offset + size must not exceed QEMU_FILE_BUF_SIZE. */
size_t qemu_peek_buffer(QEMUFile *f, const uint8_t **ptr, size_t size,
                        size_t offset);
/* The byte at 'offset' ahead, or -1 at end of stream / on error. Never sets
 * the sticky error: peeking past the end is how loaders probe. */
int qemu_peek_byte(QEMUFile *f, size_t offset);
/* Consume 'len' bytes (which the caller normally peeked). */
void qemu_file_skip(QEMUFile *f, size_t len);
/* True when the input is exhausted exactly at the read position. */
bool qemu_file_at_eof(QEMUFile *f);

#endif
