/*
 * Character backends (softmmu/chardev.h): stdio, an output file, a unix-socket
 * server with one client at a time, and null. Input from a readable fd is read
 * on the main loop into a small buffer and offered to the frontend; while the
 * frontend cannot take it all, the fd watch is removed so the loop does not spin.
 * Output is gathered into lines: a UART hands over one byte per guest exit, and
 * a system call (and a reader wake-up) per byte would cost more than the exit.
 * A line goes out at its newline; a partial line after OUT_FLUSH_MS at most.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

#include "softmmu/chardev.h"
#include "tern/error.h"
#include "tern/keyval.h"

#define OUT_BUF_MAX  4096
#define OUT_FLUSH_MS 2

struct Chardev {
    GMainContext *ctx;
    GMutex out_lock;
    int out_fd;          /* -1: output dropped */
    int in_fd;           /* -1: no input */
    int listen_fd;       /* unix server, else -1 */
    char *sock_path;     /* unlinked on free */
    bool owns_out;       /* out_fd is ours to close */
    GSource *in_src;
    GSource *listen_src;
    GByteArray *out_buf;   /* under out_lock */
    GSource *flush_src;    /* under out_lock: pending partial-line flush */
    GSource *resume_src;   /* under out_lock: pending chardev_accept_input */

    ChardevReceive receive;
    void *opaque;
    uint8_t pending[256];
    size_t pending_len, pending_off;
};

static void watch_input(Chardev *c);
static void flush_locked(Chardev *c);

static void deliver(Chardev *c)
{
    while (c->receive && c->pending_off < c->pending_len) {
        size_t n = c->receive(c->opaque, c->pending + c->pending_off,
                              c->pending_len - c->pending_off);
        if (!n) {
            return;
        }
        c->pending_off += n;
    }
    if (c->pending_off >= c->pending_len) {
        c->pending_off = c->pending_len = 0;
    }
}

static void drop_client(Chardev *c)
{
    g_mutex_lock(&c->out_lock);
    g_byte_array_set_size(c->out_buf, 0);
    if (c->out_fd >= 0) {
        close(c->out_fd);
    }
    c->out_fd = c->in_fd = -1;
    g_mutex_unlock(&c->out_lock);
}

static gboolean input_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *c = opaque;
    ssize_t n = read(fd, c->pending, sizeof(c->pending));

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {   /* EOF or error: stop reading; a socket waits for another */
        g_source_unref(c->in_src);
        c->in_src = NULL;
        if (c->listen_fd >= 0) {
            drop_client(c);
        } else {
            c->in_fd = -1;
        }
        return G_SOURCE_REMOVE;
    }
    c->pending_len = n;
    c->pending_off = 0;
    deliver(c);
    if (c->pending_len) {
        g_source_unref(c->in_src);
        c->in_src = NULL;
        return G_SOURCE_REMOVE;   /* re-added by chardev_accept_input */
    }
    return G_SOURCE_CONTINUE;
}

static void watch_input(Chardev *c)
{
    if (c->in_fd < 0 || c->in_src || !c->receive) {
        return;
    }
    c->in_src = g_unix_fd_source_new(c->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(c->in_src, G_SOURCE_FUNC(input_ready), c, NULL);
    g_source_attach(c->in_src, c->ctx);
}

static gboolean resume_input(gpointer opaque)
{
    Chardev *c = opaque;

    g_mutex_lock(&c->out_lock);
    g_source_unref(c->resume_src);
    c->resume_src = NULL;
    g_mutex_unlock(&c->out_lock);
    deliver(c);
    if (!c->pending_len) {
        watch_input(c);
    }
    return G_SOURCE_REMOVE;
}

void chardev_accept_input(Chardev *c)
{
    if (!c) {
        return;
    }
    /* Usually called on a vCPU thread: hand over to the main loop, once. */
    g_mutex_lock(&c->out_lock);
    if (c->in_fd >= 0 && !c->resume_src) {
        c->resume_src = g_idle_source_new();
        g_source_set_callback(c->resume_src, resume_input, c, NULL);
        g_source_attach(c->resume_src, c->ctx);
    }
    g_mutex_unlock(&c->out_lock);
}

static gboolean client_connect(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *c = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    if (c->out_fd >= 0) {   /* one client at a time, like QEMU */
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    g_mutex_lock(&c->out_lock);
    c->out_fd = c->in_fd = cfd;
    g_mutex_unlock(&c->out_lock);
    watch_input(c);
    return G_SOURCE_CONTINUE;
}

static bool open_unix_server(Chardev *c, const char *opts, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(opts, "path", errp);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    bool server = false, wait = true;
    const char *path;

    if (!kv || !keyval_get_bool(kv, "server", &server, errp) ||
        !keyval_get_bool(kv, "wait", &wait, errp)) {
        return false;
    }
    path = keyval_get(kv, "path");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!server || !path || strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "unix:%s: tern supports unix:PATH,server=on[,wait=off] with a "
                    "path shorter than %zu bytes", opts, sizeof(sa.sun_path));
        return false;
    }
    strcpy(sa.sun_path, path);
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(c->listen_fd, 1) < 0) {
        tern_set_error_errno(errp, errno, "cannot listen on %s", path);
        return false;
    }
    c->sock_path = g_strdup(path);
    if (wait) {
        tern_error_report("waiting for a connection on %s", path);
        c->out_fd = c->in_fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c->out_fd < 0) {
            tern_set_error_errno(errp, errno, "accept on %s", path);
            return false;
        }
        fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    }
    c->listen_src = g_unix_fd_source_new(c->listen_fd, G_IO_IN);
    g_source_set_callback(c->listen_src, G_SOURCE_FUNC(client_connect), c, NULL);
    g_source_attach(c->listen_src, c->ctx);
    return true;
}

static bool open_backend(Chardev *c, const char *spec, GError **errp)
{
    if (!strcmp(spec, "stdio")) {
        c->out_fd = STDOUT_FILENO;
        c->in_fd = STDIN_FILENO;
        return true;
    }
    if (!strcmp(spec, "null")) {
        return true;
    }
    if (g_str_has_prefix(spec, "file:")) {
        c->out_fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (c->out_fd < 0) {
            tern_set_error_errno(errp, errno, "cannot open serial file '%s'", spec + 5);
            return false;
        }
        c->owns_out = true;
        return true;
    }
    if (g_str_has_prefix(spec, "unix:")) {
        c->owns_out = true;
        return open_unix_server(c, spec + 5, errp);
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                "unknown character backend '%s' (use stdio, file:PATH, "
                "unix:PATH,server=on,wait=off, null or none)", spec);
    return false;
}

Chardev *chardev_new(const char *spec, GMainContext *ctx, GError **errp)
{
    Chardev *c = g_new0(Chardev, 1);

    c->ctx = ctx;
    c->out_fd = c->in_fd = c->listen_fd = -1;
    g_mutex_init(&c->out_lock);
    c->out_buf = g_byte_array_new();
    if (!open_backend(c, spec, errp)) {
        chardev_free(c);
        return NULL;
    }
    return c;
}

static void destroy_source(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

void chardev_free(Chardev *c)
{
    if (!c) {
        return;
    }
    destroy_source(&c->in_src);
    destroy_source(&c->listen_src);
    g_mutex_lock(&c->out_lock);
    flush_locked(c);
    destroy_source(&c->flush_src);
    destroy_source(&c->resume_src);
    g_mutex_unlock(&c->out_lock);
    g_byte_array_unref(c->out_buf);
    if (c->owns_out && c->out_fd >= 0) {
        close(c->out_fd);
    }
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
    }
    if (c->sock_path) {
        unlink(c->sock_path);
        g_free(c->sock_path);
    }
    g_mutex_clear(&c->out_lock);
    g_free(c);
}

void chardev_set_frontend(Chardev *c, ChardevReceive receive, void *opaque)
{
    c->receive = receive;
    c->opaque = opaque;
    watch_input(c);
}

/* Called with out_lock held. */
static void flush_locked(Chardev *c)
{
    const uint8_t *p = c->out_buf->data;
    size_t len = c->out_buf->len;

    while (c->out_fd >= 0 && len) {
        /* A socket peer may be gone: EPIPE, never SIGPIPE. */
        ssize_t n = c->listen_fd >= 0 ? send(c->out_fd, p, len, MSG_NOSIGNAL)
                                      : write(c->out_fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;   /* full socket or gone peer: drop, never stall the vCPU */
        }
        p += n;
        len -= n;
    }
    g_byte_array_set_size(c->out_buf, 0);
}

static gboolean flush_timeout(gpointer opaque)
{
    Chardev *c = opaque;

    g_mutex_lock(&c->out_lock);
    flush_locked(c);
    g_source_unref(c->flush_src);
    c->flush_src = NULL;
    g_mutex_unlock(&c->out_lock);
    return G_SOURCE_REMOVE;
}

void chardev_write(Chardev *c, const uint8_t *buf, size_t len)
{
    if (!c) {
        return;
    }
    g_mutex_lock(&c->out_lock);
    if (c->out_fd >= 0) {
        g_byte_array_append(c->out_buf, buf, len);
        if (memchr(buf, '\n', len) || c->out_buf->len >= OUT_BUF_MAX) {
            flush_locked(c);
        } else if (!c->flush_src) {
            c->flush_src = g_timeout_source_new(OUT_FLUSH_MS);
            g_source_set_callback(c->flush_src, flush_timeout, c, NULL);
            g_source_attach(c->flush_src, c->ctx);
        }
    }
    g_mutex_unlock(&c->out_lock);
}
