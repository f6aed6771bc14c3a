/*
 * File-descriptor backend of QEMUFile: sockets, pipes and plain files. The
 * QEMUFile owns its descriptor. On a socket the return path is a dup of the
 * same descriptor wrapped as a QEMUFile of the other direction, so the two
 * directions of a duplex connection can be used from two threads.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration/qemu-file.h"

typedef struct FdChannel {
    int fd;
    bool is_socket;
    QEMUFileCloseHook on_close;     /* after close(fd), e.g. reap a child */
    void *on_close_opaque;
} FdChannel;

static ssize_t fd_read(void *opaque, uint8_t *buf, size_t len, GError **errp)
{
    FdChannel *c = opaque;
    ssize_t n;

    do {
        n = read(c->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        tern_set_error_errno(errp, errno, "migration channel read");
    }
    return n;
}

/* Write one chunk; sockets use MSG_NOSIGNAL so a vanished peer is an error
 * return, not a SIGPIPE. */
static ssize_t fd_write_once(FdChannel *c, struct iovec *iov, int iovcnt)
{
    if (c->is_socket) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };

        return sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    }
    return writev(c->fd, iov, iovcnt);
}

static bool fd_writev(void *opaque, const struct iovec *iov_in, int iovcnt,
                      GError **errp)
{
    FdChannel *c = opaque;
    g_autofree struct iovec *iov = g_memdup2(iov_in, sizeof(*iov) * iovcnt);
    struct iovec *cur = iov;

    while (iovcnt) {
        ssize_t n = fd_write_once(c, cur, iovcnt);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            tern_set_error_errno(errp, errno, "migration channel write");
            return false;
        }
        /* Skip what was written, possibly ending inside one entry. */
        while (iovcnt && (size_t)n >= cur->iov_len) {
            n -= cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt) {
            cur->iov_base = (uint8_t *)cur->iov_base + n;
            cur->iov_len -= n;
        }
    }
    return true;
}

static QEMUFile *fd_get_return_path(void *opaque, bool output, GError **errp)
{
    FdChannel *c = opaque;
    int fd;

    if (!c->is_socket) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "a return path needs a socket migration channel");
        return NULL;
    }
    fd = dup(c->fd);
    if (fd < 0) {
        tern_set_error_errno(errp, errno, "dup for the return path");
        return NULL;
    }
    return output ? qemu_file_new_fd_output(fd) : qemu_file_new_fd_input(fd);
}

static void fd_shutdown(void *opaque)
{
    FdChannel *c = opaque;

    if (c->is_socket) {
        shutdown(c->fd, SHUT_RDWR);
    }
}

static bool fd_close(void *opaque, GError **errp)
{
    FdChannel *c = opaque;
    int ret = close(c->fd);
    int err = errno;
    bool ok = true;

    if (ret < 0) {
        tern_set_error_errno(errp, err, "closing the migration channel");
        ok = false;
    }
    if (c->on_close && !c->on_close(c->on_close_opaque, ok ? errp : NULL)) {
        ok = false;
    }
    g_free(c);
    return ok;
}

static const QEMUFileOps fd_ops = {
    .read = fd_read,
    .writev = fd_writev,
    .get_return_path = fd_get_return_path,
    .shutdown = fd_shutdown,
    .close = fd_close,
};

QEMUFile *qemu_file_new_fd(int fd, bool output, QEMUFileCloseHook on_close,
                           void *opaque)
{
    FdChannel *c = g_new0(FdChannel, 1);
    struct stat st;

    c->fd = fd;
    c->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    c->on_close = on_close;
    c->on_close_opaque = opaque;
    return qemu_file_new(&fd_ops, c, output);
}

QEMUFile *qemu_file_new_fd_input(int fd)
{
    return qemu_file_new_fd(fd, false, NULL, NULL);
}

QEMUFile *qemu_file_new_fd_output(int fd)
{
    return qemu_file_new_fd(fd, true, NULL, NULL);
}
