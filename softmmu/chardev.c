/*
 * Character backends (softmmu/chardev.h): stdio, an output file, a unix-socket
 * server with one client at a time, a pseudo-terminal, and null; from a
 * -serial spec or a -chardev option. Input from a readable fd is read
 * on the main loop into a small buffer and offered to the frontend; while the
 * frontend cannot take it all, the fd watch is removed so the loop does not spin.
 * Output is gathered into lines: a UART hands over one byte per guest exit, and
 * a system call (and a reader wake-up) per byte would cost more than the exit.
 * A line goes out at its newline; a partial line after OUT_FLUSH_MS at most.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

#include "softmmu/chardev.h"
#include "tern/error.h"
#include "tern/keyval.h"

#define OUT_BUF_MAX  4096
#define OUT_FLUSH_MS 2
#define PTY_POLL_MS  1000   /* a pty with no reader is looked at again after */

struct Chardev {
    GMainContext *ctx;
    GMutex out_lock;
    int out_fd;          /* -1: output dropped */
    int in_fd;           /* -1: no input */
    int listen_fd;       /* unix server, else -1 */
    char *sock_path;     /* unlinked on free */
    bool owns_out;       /* out_fd is ours to close */
    char *label;         /* the -chardev id, or NULL */
    char *filename;      /* as query-chardev names the backend */
    bool is_pty;
    GSource *pty_src;    /* pending look at a pty nobody had open */
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
static void pty_wait(Chardev *c);

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
        if (c->is_pty) {
            pty_wait(c);   /* EIO: nobody has the other end open */
        } else if (c->listen_fd >= 0) {
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

static gboolean pty_retry(gpointer opaque)
{
    Chardev *c = opaque;

    g_source_unref(c->pty_src);
    c->pty_src = NULL;
    watch_input(c);
    return G_SOURCE_REMOVE;
}

/* Until someone opens the terminal, reading its master fails at once: look
 * again later instead of spinning. */
static void pty_wait(Chardev *c)
{
    if (!c->pty_src) {
        c->pty_src = g_timeout_source_new(PTY_POLL_MS);
        g_source_set_callback(c->pty_src, pty_retry, c, NULL);
        g_source_attach(c->pty_src, c->ctx);
    }
}

/* A new pseudo-terminal in raw mode; the guest's side is the master. */
static bool open_pty(Chardev *c, GError **errp)
{
    struct termios tio;
    const char *name;
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0 || !(name = ptsname(fd))) {
        tern_set_error_errno(errp, errno, "cannot create a pseudo-terminal");
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(fd, TCSAFLUSH, &tio);
    }
    c->out_fd = c->in_fd = fd;
    c->owns_out = c->is_pty = true;
    c->filename = g_strdup_printf("pty:%s", name);
    return true;
}

static Chardev *chardev_alloc(GMainContext *ctx)
{
    Chardev *c = g_new0(Chardev, 1);

    c->ctx = ctx;
    c->out_fd = c->in_fd = c->listen_fd = -1;
    g_mutex_init(&c->out_lock);
    c->out_buf = g_byte_array_new();
    return c;
}

Chardev *chardev_new(const char *spec, GMainContext *ctx, GError **errp)
{
    Chardev *c = chardev_alloc(ctx);

    if (!strcmp(spec, "pty") ? !open_pty(c, errp) : !open_backend(c, spec, errp)) {
        chardev_free(c);
        return NULL;
    }
    if (!c->filename) {
        c->filename = g_strdup(spec);
    }
    return c;
}

/* -chardev file,path=P[,append=on]: written from the start or appended to. */
static bool open_file_opts(Chardev *c, KeyVal *kv, GError **errp)
{
    const char *path = keyval_get(kv, "path");
    bool append = false;

    if (!keyval_get_bool(kv, "append", &append, errp)) {
        return false;
    }
    if (!path) {
        return tern_invalid(errp, "chardev: file: no filename given");
    }
    c->out_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                     0666);
    if (c->out_fd < 0) {
        tern_set_error_errno(errp, errno, "Could not open '%s'", path);
        return false;
    }
    c->owns_out = true;
    c->filename = g_strdup("file");
    return true;
}

static bool open_opts(Chardev *c, KeyVal *kv, const char *backend, GError **errp)
{
    if (!strcmp(backend, "pty")) {
        return open_pty(c, errp);
    }
    if (!strcmp(backend, "file")) {
        return open_file_opts(c, kv, errp);
    }
    if (!strcmp(backend, "null") || !strcmp(backend, "stdio")) {
        c->filename = g_strdup(backend);
        return open_backend(c, backend, errp);
    }
    return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "chardev backend '%s' is not "
                     "supported for a serial port (tern has pty, file, null, stdio)",
                     backend);
}

Chardev *chardev_new_opts(const char *arg, GMainContext *ctx, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "backend", errp);
    const char *backend;
    Chardev *c;

    if (!kv) {
        return NULL;
    }
    backend = keyval_get(kv, "backend");
    c = chardev_alloc(ctx);
    c->label = g_strdup(keyval_get(kv, "id"));
    if (!backend || !open_opts(c, kv, backend, errp) ||
        !keyval_check_unused(kv, errp)) {
        chardev_free(c);
        return NULL;
    }
    if (c->is_pty) {
        /* QEMU says where the terminal is, on stdout; people read it in the
         * log. */
        printf("char device redirected to %s (label %s)\n", c->filename + 4,
               c->label ? c->label : "");
        fflush(stdout);
    }
    return c;
}

const char *chardev_find_option(GPtrArray *chardev_args, const char *id)
{
    for (guint i = 0; i < chardev_args->len; i++) {
        g_autoptr(KeyVal) kv = keyval_parse(chardev_args->pdata[i], "backend", NULL);
        const char *cid = kv ? keyval_get(kv, "id") : NULL;

        if (cid && !strcmp(cid, id)) {
            return chardev_args->pdata[i];
        }
    }
    return NULL;
}

const char *chardev_label(const Chardev *c)
{
    return c->label;
}

const char *chardev_filename(const Chardev *c)
{
    return c->filename;
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
    destroy_source(&c->pty_src);
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
    g_free(c->label);
    g_free(c->filename);
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
            break;   /* full socket or pty, gone peer: drop, never stall the vCPU */
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
