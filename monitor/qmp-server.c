/*
 * QMP over stream sockets on a GLib main context: plain non-blocking sockets
 * watched by GLib fd sources. Per client: a framer, a session and an output
 * buffer. Input is read in chunks, framed, dispatched and answered in order;
 * output is written as the socket accepts it. A client is dropped when it
 * hangs up, errs, sends an oversized message (after its error reply is
 * flushed) or lets its output back up past QMP_SERVER_MAX_OUTPUT; when all
 * clients' unsent output together would pass QMP_SERVER_MAX_TOTAL_OUTPUT,
 * the client with the most is dropped first. When accept() runs out of
 * descriptors the listeners pause (one message) and retry with a back-off
 * and whenever a client goes. Dropped clients are freed from an idle
 * callback so that a client can be dropped from inside its own callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-framer.h"
#include "monitor/qmp-server.h"
#include "tern/error.h"
#include "tern/sockets.h"

#define READ_CHUNK  (64 * KiB)

/* accept() out of descriptors: first retry after this, doubling up to 1 s. */
#define ACCEPT_RETRY_MIN_MS  10
#define ACCEPT_RETRY_MAX_MS  1000

typedef struct QmpListener {
    QmpServer *server;
    int fd;
    GSource *src;           /* NULL while accepting is paused */
    char *unix_path;        /* unlinked on close; NULL for TCP */
} QmpListener;

typedef struct QmpClient {
    QmpServer *server;
    int fd;
    GSource *in_src;
    GSource *out_src;       /* only while output is pending */
    QmpFramer *framer;
    QmpSession session;
    GByteArray *out;
    size_t out_head;        /* bytes of out already sent */
    bool closing;           /* send what is queued, then drop */
    bool dead;
} QmpClient;

struct QmpServer {
    QmpRegistry *registry;
    GMainContext *ctx;
    GList *listeners;       /* QmpListener */
    GList *clients;         /* live QmpClient */
    GList *dead;            /* dropped, awaiting the reaper */
    GSource *reaper;
    GThread *home;          /* the thread that created it and runs the loop */
    size_t out_total;       /* unsent output of all live clients */
    size_t max_total;
    /* accept() found no descriptor: listeners paused until a retry works. */
    bool accept_paused;
    GSource *accept_retry;
    unsigned retry_ms;
    /* Events from other threads, delivered in order by the loop's thread. */
    GMutex events_lock;
    GQueue events;          /* PendingEvent */
    GSource *events_src;    /* attached while events is non-empty */
};

static void client_drop(QmpClient *c);
static void pending_event_free(gpointer opaque);
static void listeners_resume(QmpServer *s);

static GSource *fd_source(QmpServer *s, int fd, GIOCondition cond,
                          GUnixFDSourceFunc fn, void *opaque)
{
    GSource *src = g_unix_fd_source_new(fd, cond);

    g_source_set_callback(src, G_SOURCE_FUNC(fn), opaque, NULL);
    g_source_attach(src, s->ctx);
    return src;
}

static void source_kill(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

/* --- output ------------------------------------------------------------------ */

static size_t client_pending(const QmpClient *c)
{
    return c->out->len - c->out_head;
}

/* Marks n bytes of c's queue as sent. */
static void client_sent(QmpClient *c, size_t n)
{
    c->out_head += n;
    c->server->out_total -= n;
    if (!client_pending(c)) {
        g_byte_array_set_size(c->out, 0);
        c->out_head = 0;
    }
}

static gboolean client_writable(int fd, GIOCondition cond, gpointer opaque);

static void client_flush(QmpClient *c)
{
    while (client_pending(c)) {
        ssize_t n = send(c->fd, c->out->data + c->out_head, client_pending(c),
                         MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n < 0) {
            client_drop(c);
            return;
        }
        client_sent(c, n);
    }
    if (!client_pending(c)) {
        if (c->closing) {
            client_drop(c);
        }
        return;
    }
    if (!c->out_src) {
        c->out_src = fd_source(c->server, c->fd, G_IO_OUT, client_writable, c);
    }
}

static gboolean client_writable(int fd, GIOCondition cond, gpointer opaque)
{
    QmpClient *c = opaque;

    g_source_unref(c->out_src);
    c->out_src = NULL;
    client_flush(c);
    return G_SOURCE_REMOVE;
}

/* The live client with the most unsent output. */
static QmpClient *server_worst_client(QmpServer *s)
{
    QmpClient *worst = NULL;

    for (GList *l = s->clients; l; l = l->next) {
        QmpClient *c = l->data;

        if (!worst || client_pending(c) > client_pending(worst)) {
            worst = c;
        }
    }
    return worst;
}

/*
 * Makes room for len more bytes from c: within c's own cap, and within the
 * server's total, dropping the clients that hold the most until it fits.
 * False if c itself is dropped.
 */
static bool make_room(QmpClient *c, size_t len)
{
    QmpServer *s = c->server;

    if (client_pending(c) + len > QMP_SERVER_MAX_OUTPUT) {
        tern_warn("QMP client is not reading its replies; disconnecting it");
        client_drop(c);
        return false;
    }
    while (s->out_total + len > s->max_total) {
        QmpClient *worst = server_worst_client(s);

        /* c counts with what it is about to queue; a tie drops c. */
        if (client_pending(worst) <= client_pending(c) + len) {
            worst = c;
        }
        tern_warn("QMP clients hold %zu bytes of unsent output; disconnecting "
                  "the one with the most", s->out_total);
        client_drop(worst);
        if (worst == c) {
            return false;
        }
    }
    return true;
}

/* Queues one message; a client that stopped reading may be dropped. */
static void client_send(QmpClient *c, json_object *msg)
{
    size_t len;
    g_autofree char *line = NULL;

    if (c->dead) {
        return;
    }
    line = qmp_to_wire(msg, &len);
    if (!make_room(c, len)) {
        return;
    }
    g_byte_array_append(c->out, (const guint8 *)line, len);
    c->server->out_total += len;
    if (!c->out_src) {
        client_flush(c);
    }
}

static void client_send_error(QmpClient *c, const char *desc)
{
    g_autoptr(GError) err = g_error_new_literal(QMP_ERROR, QMP_ERROR_GENERIC, desc);
    g_autoptr(json_object) reply = qmp_error_reply(err, NULL);

    client_send(c, reply);
}

/* --- input ------------------------------------------------------------------- */

static bool client_frame(QmpFrameKind kind, const char *text, size_t len,
                         void *opaque)
{
    QmpClient *c = opaque;

    switch (kind) {
    case QMP_FRAME_TEXT: {
        g_autoptr(json_object) reply =
            qmp_dispatch_text(c->server->registry, &c->session, text, len);

        client_send(c, reply);
        break;
    }
    case QMP_FRAME_TOO_DEEP:
        client_send_error(c, "JSON parse error, nesting too deep");
        break;
    case QMP_FRAME_TOO_BIG:
        /* Skipping an unbounded message would let it eat CPU: say why and go. */
        client_send_error(c, "JSON parse error, message too large");
        c->closing = true;
        break;
    }
    return !c->dead && !c->closing;
}

/* recv() that also takes the descriptors a unix-socket client passes
 * (SCM_RIGHTS), for getfd. */
static ssize_t client_recv(QmpClient *c, int fd, char *buf, size_t len)
{
    union {
        char space[CMSG_SPACE(sizeof(int) * QMP_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = control.space,
                          .msg_controllen = sizeof(control.space) };
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

    for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm;
         cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            unsigned nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int fds[QMP_MAX_PASSED_FDS];

            memcpy(fds, CMSG_DATA(cm), MIN(nfds, QMP_MAX_PASSED_FDS) * sizeof(int));
            qmp_session_set_passed_fds(&c->session, fds, MIN(nfds, QMP_MAX_PASSED_FDS));
        }
    }
    return n;
}

static gboolean client_readable(int fd, GIOCondition cond, gpointer opaque)
{
    QmpClient *c = opaque;
    char buf[READ_CHUNK];
    ssize_t n = client_recv(c, fd, buf, sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        client_drop(c);
        return G_SOURCE_REMOVE;
    }
    qmp_framer_feed(c->framer, buf, n, client_frame, c);
    if (c->dead) {
        return G_SOURCE_REMOVE;
    }
    if (c->closing) {
        /* Stop reading; drop once the error reply is out. */
        g_source_unref(c->in_src);
        c->in_src = NULL;
        if (!c->out_src) {
            client_flush(c);
        }
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* --- client lifetime --------------------------------------------------------- */

static void client_free(QmpClient *c)
{
    qmp_session_set_passed_fds(&c->session, NULL, 0);
    qmp_framer_free(c->framer);
    g_byte_array_unref(c->out);
    g_free(c);
}

static gboolean server_reap(gpointer opaque)
{
    QmpServer *s = opaque;
    size_t held = 0;

    for (GList *l = s->dead; l; l = l->next) {
        held += ((QmpClient *)l->data)->out->len;
    }
    g_list_free_full(s->dead, (GDestroyNotify)client_free);
    s->dead = NULL;
    /* Output buffers of clients that would not read are large and freed
     * together: hand the memory back rather than keep the burst's peak. */
    if (held >= QMP_SERVER_MAX_OUTPUT) {
        malloc_trim(0);
    }
    g_source_unref(s->reaper);
    s->reaper = NULL;
    return G_SOURCE_REMOVE;
}

static void client_drop(QmpClient *c)
{
    QmpServer *s = c->server;

    if (c->dead) {
        return;
    }
    c->dead = true;
    source_kill(&c->in_src);
    source_kill(&c->out_src);
    close(c->fd);
    s->out_total -= client_pending(c);
    s->clients = g_list_remove(s->clients, c);
    s->dead = g_list_prepend(s->dead, c);
    if (!s->reaper) {
        s->reaper = g_idle_source_new();
        g_source_set_callback(s->reaper, server_reap, s, NULL);
        g_source_attach(s->reaper, s->ctx);
    }
    /* A descriptor is free again. */
    if (s->accept_paused) {
        listeners_resume(s);
    }
}

static void client_new(QmpServer *s, int fd)
{
    QmpClient *c = g_new0(QmpClient, 1);
    g_autoptr(json_object) greeting = qmp_greeting();

    c->server = s;
    c->fd = fd;
    c->framer = qmp_framer_new(QMP_FRAMER_MAX_SIZE, QMP_FRAMER_MAX_DEPTH);
    c->out = g_byte_array_new();
    s->clients = g_list_prepend(s->clients, c);
    c->in_src = fd_source(s, fd, G_IO_IN | G_IO_HUP | G_IO_ERR, client_readable, c);
    client_send(c, greeting);
}

/* --- listeners --------------------------------------------------------------- */

static gboolean listener_ready(int fd, GIOCondition cond, gpointer opaque);

static void listeners_pause(QmpServer *s)
{
    for (GList *l = s->listeners; l; l = l->next) {
        QmpListener *li = l->data;

        source_kill(&li->src);
    }
}

static gboolean accept_retry(gpointer opaque)
{
    QmpServer *s = opaque;

    g_source_unref(s->accept_retry);
    s->accept_retry = NULL;
    listeners_resume(s);
    return G_SOURCE_REMOVE;
}

/*
 * Out of descriptors: stop watching the listeners (their pending connections
 * would wake the loop at once, forever) and look again later, sooner if a
 * client goes. Said once per shortage.
 */
static void accept_starved(QmpServer *s, int err)
{
    if (!s->accept_paused) {
        tern_warn("QMP accept failed: %s; not accepting clients until a "
                  "descriptor is free", g_strerror(err));
        s->accept_paused = true;
        s->retry_ms = ACCEPT_RETRY_MIN_MS;
    } else {
        s->retry_ms = MIN(s->retry_ms * 2, ACCEPT_RETRY_MAX_MS);
    }
    listeners_pause(s);
    if (!s->accept_retry) {
        s->accept_retry = g_timeout_source_new(s->retry_ms);
        g_source_set_callback(s->accept_retry, accept_retry, s, NULL);
        g_source_attach(s->accept_retry, s->ctx);
    }
}

static void listeners_resume(QmpServer *s)
{
    source_kill(&s->accept_retry);
    for (GList *l = s->listeners; l; l = l->next) {
        QmpListener *li = l->data;

        if (!li->src) {
            li->src = fd_source(s, li->fd, G_IO_IN, listener_ready, li);
        }
    }
}

static gboolean listener_ready(int fd, GIOCondition cond, gpointer opaque)
{
    QmpListener *l = opaque;
    QmpServer *s = l->server;

    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (cfd >= 0) {
            if (s->accept_paused) {
                s->accept_paused = false;
                tern_warn("QMP accepting clients again");
            }
            client_new(s, cfd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            accept_starved(s, errno);
            return G_SOURCE_CONTINUE;       /* its source is gone already */
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            tern_warn("QMP accept failed: %s", g_strerror(errno));
        }
        return G_SOURCE_CONTINUE;
    }
}

static bool listener_add(QmpServer *s, int fd, const char *unix_path)
{
    QmpListener *l = g_new0(QmpListener, 1);

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    l->server = s;
    l->fd = fd;
    l->unix_path = g_strdup(unix_path);
    if (!s->accept_paused) {
        l->src = fd_source(s, fd, G_IO_IN, listener_ready, l);
    }
    s->listeners = g_list_append(s->listeners, l);
    return true;
}

bool qmp_server_listen_unix(QmpServer *s, const char *path, GError **errp)
{
    int fd = tern_listen_unix(path, errp);

    if (fd < 0) {
        g_prefix_error(errp, "QMP socket %s: ", path);
        return false;
    }
    return listener_add(s, fd, path);
}

bool qmp_server_listen_tcp(QmpServer *s, const char *host, const char *port,
                           GError **errp)
{
    const char *h = *host ? host : "0.0.0.0";
    int fd = tern_listen_tcp(h, port, errp);

    if (fd < 0) {
        g_prefix_error(errp, "QMP socket %s:%s: ", h, port);
        return false;
    }
    return listener_add(s, fd, NULL);
}

bool qmp_server_listen_fd(QmpServer *s, int fd, GError **errp)
{
    int listening = 0;
    socklen_t len = sizeof(listening);

    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        return tern_invalid(errp, "QMP socket: fd %d is not a listening socket", fd);
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return listener_add(s, fd, NULL);
}

static void listener_free(QmpListener *l)
{
    source_kill(&l->src);
    close(l->fd);
    if (l->unix_path) {
        unlink(l->unix_path);
        g_free(l->unix_path);
    }
    g_free(l);
}

/* --- server ------------------------------------------------------------------ */

QmpServer *qmp_server_new(QmpRegistry *r, GMainContext *ctx)
{
    QmpServer *s = g_new0(QmpServer, 1);

    s->registry = r;
    s->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    s->home = g_thread_self();
    s->max_total = QMP_SERVER_MAX_TOTAL_OUTPUT;
    g_mutex_init(&s->events_lock);
    g_queue_init(&s->events);
    return s;
}

void qmp_server_set_max_total_output(QmpServer *s, size_t bytes)
{
    s->max_total = bytes;
}

size_t qmp_server_pending_output(const QmpServer *s)
{
    return s->out_total;
}

/* Last words (e.g. quit's reply and SHUTDOWN) should reach clients. */
static void server_final_flush(QmpServer *s)
{
    gint64 deadline = g_get_monotonic_time() + 100 * 1000;
    g_autoptr(GList) clients = g_list_copy(s->clients);   /* flushing may drop */

    for (GList *l = clients; l; l = l->next) {
        QmpClient *c = l->data;

        while (client_pending(c) && g_get_monotonic_time() < deadline) {
            struct pollfd p = { .fd = c->fd, .events = POLLOUT };
            gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;

            poll(&p, 1, (int)MAX(left_ms, 0));
            client_flush(c);
            if (c->dead) {
                break;
            }
        }
    }
}

void qmp_server_free(QmpServer *s)
{
    if (!s) {
        return;
    }
    server_final_flush(s);
    source_kill(&s->accept_retry);
    s->accept_paused = false;           /* dropping clients must not resume */
    g_list_free_full(s->listeners, (GDestroyNotify)listener_free);
    s->listeners = NULL;
    while (s->clients) {
        client_drop(s->clients->data);
    }
    source_kill(&s->reaper);
    g_list_free_full(s->dead, (GDestroyNotify)client_free);
    /* Events still queued by other threads have nobody to go to. */
    g_mutex_lock(&s->events_lock);
    source_kill(&s->events_src);
    g_queue_clear_full(&s->events, pending_event_free);
    g_mutex_unlock(&s->events_lock);
    g_mutex_clear(&s->events_lock);
    g_main_context_unref(s->ctx);
    g_free(s);
}

void qmp_server_wait_for_client(QmpServer *s)
{
    while (!s->clients) {
        g_main_context_iteration(s->ctx, TRUE);
    }
}

unsigned qmp_server_client_count(const QmpServer *s)
{
    return g_list_length(s->clients);
}

typedef struct PendingEvent {
    char *name;
    json_object *data;
} PendingEvent;

static void server_broadcast(QmpServer *s, const char *name, json_object *data)
{
    g_autoptr(json_object) ev = qmp_event_new(name, data);
    g_autoptr(GList) clients = g_list_copy(s->clients);

    /* client_send may drop clients: walk a copy. A client that has not
     * negotiated yet (its greeting may still be queued) gets nothing. */
    for (GList *l = clients; l; l = l->next) {
        QmpClient *c = l->data;

        if (c->session.negotiated) {
            client_send(c, ev);
        }
    }
}

static void pending_event_free(gpointer opaque)
{
    PendingEvent *pe = opaque;

    if (pe->data) {
        json_object_put(pe->data);
    }
    g_free(pe->name);
    g_free(pe);
}

static gboolean server_deliver_events(gpointer opaque)
{
    QmpServer *s = opaque;
    GQueue batch = G_QUEUE_INIT;
    PendingEvent *pe;

    g_mutex_lock(&s->events_lock);
    batch = s->events;
    g_queue_init(&s->events);
    g_source_unref(s->events_src);
    s->events_src = NULL;
    g_mutex_unlock(&s->events_lock);
    while ((pe = g_queue_pop_head(&batch))) {
        server_broadcast(s, pe->name, g_steal_pointer(&pe->data));
        pending_event_free(pe);
    }
    return G_SOURCE_REMOVE;
}

/*
 * Only the server's own thread touches clients. Another thread must not
 * broadcast itself, even where GLib would let it acquire the context
 * (g_main_context_invoke does that between loop iterations): it queues the
 * event and the loop delivers it, in emission order, to the clients that are
 * negotiated at that point. The own thread sends at once, also outside the
 * loop (start-up, teardown), unless another thread is iterating the context.
 */
void qmp_server_emit_event(QmpServer *s, const char *name, json_object *data)
{
    PendingEvent *pe;

    if (g_main_context_is_owner(s->ctx)) {
        server_broadcast(s, name, data);
        return;
    }
    if (g_thread_self() == s->home && g_main_context_acquire(s->ctx)) {
        server_broadcast(s, name, data);
        g_main_context_release(s->ctx);
        return;
    }
    pe = g_new0(PendingEvent, 1);
    pe->name = g_strdup(name);
    pe->data = data;
    g_mutex_lock(&s->events_lock);
    g_queue_push_tail(&s->events, pe);
    if (!s->events_src) {
        s->events_src = g_idle_source_new();
        g_source_set_priority(s->events_src, G_PRIORITY_DEFAULT);
        g_source_set_callback(s->events_src, server_deliver_events, s, NULL);
        g_source_attach(s->events_src, s->ctx);
    }
    g_mutex_unlock(&s->events_lock);
}
