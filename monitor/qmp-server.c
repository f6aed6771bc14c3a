/*
 * QMP over stream sockets on a GLib main context. Per client: a non-blocking
 * GSocket, a framer, a session and an output buffer. Input is read in chunks,
 * framed, dispatched and answered in order; output is written as the socket
 * accepts it. A client is dropped when it hangs up, errs, sends an oversized
 * message (after its error reply is flushed) or lets its output back up past
 * QMP_SERVER_MAX_OUTPUT. Dropped clients are freed from an idle callback so that
 * a client can be dropped from inside its own callbacks.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-framer.h"
#include "monitor/qmp-server.h"
#include "tern/error.h"

#define READ_CHUNK  (64 * KiB)

typedef struct QmpListener {
    QmpServer *server;
    GSocket *sock;
    GSource *src;
    char *unix_path;        /* unlinked on close; NULL for TCP */
} QmpListener;

typedef struct QmpClient {
    QmpServer *server;
    GSocket *sock;
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
    /* Events from other threads, delivered in order by the loop's thread. */
    GMutex events_lock;
    GQueue events;          /* PendingEvent */
    GSource *events_src;    /* attached while events is non-empty */
};

static void client_drop(QmpClient *c);
static void pending_event_free(gpointer opaque);

/* --- output ------------------------------------------------------------------ */

static size_t client_pending(const QmpClient *c)
{
    return c->out->len - c->out_head;
}

static gboolean client_writable(GSocket *sock, GIOCondition cond, gpointer opaque);

static void client_flush(QmpClient *c)
{
    while (client_pending(c)) {
        g_autoptr(GError) err = NULL;
        gssize n = g_socket_send(c->sock, (const char *)c->out->data + c->out_head,
                                 client_pending(c), NULL, &err);

        if (n < 0) {
            if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
                break;
            }
            client_drop(c);
            return;
        }
        c->out_head += n;
    }
    if (!client_pending(c)) {
        g_byte_array_set_size(c->out, 0);
        c->out_head = 0;
        if (c->closing) {
            client_drop(c);
        }
        return;
    }
    if (!c->out_src) {
        c->out_src = g_socket_create_source(c->sock, G_IO_OUT, NULL);
        g_source_set_callback(c->out_src, G_SOURCE_FUNC(client_writable), c, NULL);
        g_source_attach(c->out_src, c->server->ctx);
    }
}

static gboolean client_writable(GSocket *sock, GIOCondition cond, gpointer opaque)
{
    QmpClient *c = opaque;

    g_source_unref(c->out_src);
    c->out_src = NULL;
    client_flush(c);
    return G_SOURCE_REMOVE;
}

/* Queues one message; a client that stopped reading is dropped. */
static void client_send(QmpClient *c, json_object *msg)
{
    size_t len;
    g_autofree char *line = NULL;

    if (c->dead) {
        return;
    }
    line = qmp_to_wire(msg, &len);
    if (client_pending(c) + len > QMP_SERVER_MAX_OUTPUT) {
        tern_warn("QMP client is not reading its replies; disconnecting it");
        client_drop(c);
        return;
    }
    g_byte_array_append(c->out, (const guint8 *)line, len);
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

static gboolean client_readable(GSocket *sock, GIOCondition cond, gpointer opaque)
{
    QmpClient *c = opaque;
    g_autoptr(GError) err = NULL;
    char buf[READ_CHUNK];
    gssize n = g_socket_receive(sock, buf, sizeof(buf), NULL, &err);

    if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
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
        g_source_destroy(c->in_src);
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
    qmp_framer_free(c->framer);
    g_byte_array_unref(c->out);
    g_object_unref(c->sock);
    g_free(c);
}

static gboolean server_reap(gpointer opaque)
{
    QmpServer *s = opaque;

    g_list_free_full(s->dead, (GDestroyNotify)client_free);
    s->dead = NULL;
    g_source_unref(s->reaper);
    s->reaper = NULL;
    return G_SOURCE_REMOVE;
}

static void source_kill(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
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
    g_socket_close(c->sock, NULL);
    s->clients = g_list_remove(s->clients, c);
    s->dead = g_list_prepend(s->dead, c);
    if (!s->reaper) {
        s->reaper = g_idle_source_new();
        g_source_set_callback(s->reaper, server_reap, s, NULL);
        g_source_attach(s->reaper, s->ctx);
    }
}

static void client_new(QmpServer *s, GSocket *sock)
{
    QmpClient *c = g_new0(QmpClient, 1);
    g_autoptr(json_object) greeting = qmp_greeting();

    c->server = s;
    c->sock = sock;
    c->framer = qmp_framer_new(QMP_FRAMER_MAX_SIZE, QMP_FRAMER_MAX_DEPTH);
    c->out = g_byte_array_new();
    g_socket_set_blocking(sock, FALSE);
    s->clients = g_list_prepend(s->clients, c);
    c->in_src = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
    g_source_set_callback(c->in_src, G_SOURCE_FUNC(client_readable), c, NULL);
    g_source_attach(c->in_src, s->ctx);
    client_send(c, greeting);
}

/* --- listeners --------------------------------------------------------------- */

static gboolean listener_ready(GSocket *sock, GIOCondition cond, gpointer opaque)
{
    QmpListener *l = opaque;

    for (;;) {
        g_autoptr(GError) err = NULL;
        GSocket *client = g_socket_accept(sock, NULL, &err);

        if (!client) {
            if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
                tern_warn("QMP accept failed: %s", err->message);
            }
            return G_SOURCE_CONTINUE;
        }
        client_new(l->server, client);
    }
}

static bool listener_add(QmpServer *s, GSocketAddress *addr, const char *unix_path,
                         GError **errp)
{
    g_autoptr(GSocket) sock = g_socket_new(g_socket_address_get_family(addr),
                                           G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_DEFAULT, errp);
    QmpListener *l;

    if (!sock) {
        return false;
    }
    /* GIO's default backlog (10) refuses bursts of clients with EAGAIN. */
    g_socket_set_listen_backlog(sock, SOMAXCONN);
    if (!g_socket_bind(sock, addr, TRUE, errp) || !g_socket_listen(sock, errp)) {
        return false;
    }
    g_socket_set_blocking(sock, FALSE);
    l = g_new0(QmpListener, 1);
    l->server = s;
    l->sock = g_steal_pointer(&sock);
    l->unix_path = g_strdup(unix_path);
    l->src = g_socket_create_source(l->sock, G_IO_IN, NULL);
    g_source_set_callback(l->src, G_SOURCE_FUNC(listener_ready), l, NULL);
    g_source_attach(l->src, s->ctx);
    s->listeners = g_list_append(s->listeners, l);
    return true;
}

bool qmp_server_listen_unix(QmpServer *s, const char *path, GError **errp)
{
    g_autoptr(GSocketAddress) addr = NULL;
    struct stat st;

    if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "QMP socket path '%s' is empty or too long", path);
        return false;
    }
    /* Like QEMU, replace a socket left behind by an earlier run, nothing else. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    addr = g_unix_socket_address_new(path);
    if (!listener_add(s, addr, path, errp)) {
        g_prefix_error(errp, "QMP socket %s: ", path);
        return false;
    }
    return true;
}

bool qmp_server_listen_tcp(QmpServer *s, const char *host, const char *port,
                           GError **errp)
{
    g_autofree char *spec = g_strdup_printf("%s:%s", *host ? host : "0.0.0.0", port);
    g_autoptr(GSocketConnectable) conn =
        g_network_address_parse(spec, 0, errp);
    g_autoptr(GSocketAddressEnumerator) en = NULL;
    g_autoptr(GSocketAddress) addr = NULL;

    if (!conn) {
        return false;
    }
    en = g_socket_connectable_enumerate(conn);
    addr = g_socket_address_enumerator_next(en, NULL, errp);
    if (!addr) {
        if (errp && !*errp) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "QMP address %s does not resolve", spec);
        }
        return false;
    }
    if (!listener_add(s, addr, NULL, errp)) {
        g_prefix_error(errp, "QMP socket %s: ", spec);
        return false;
    }
    return true;
}

static void listener_free(QmpListener *l)
{
    source_kill(&l->src);
    g_socket_close(l->sock, NULL);
    g_object_unref(l->sock);
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
    g_mutex_init(&s->events_lock);
    g_queue_init(&s->events);
    return s;
}

/* Last words (e.g. quit's reply and SHUTDOWN) should reach clients. */
static void server_final_flush(QmpServer *s)
{
    gint64 deadline = g_get_monotonic_time() + 100 * 1000;
    g_autoptr(GList) clients = g_list_copy(s->clients);   /* flushing may drop */

    for (GList *l = clients; l; l = l->next) {
        QmpClient *c = l->data;

        while (client_pending(c) && g_get_monotonic_time() < deadline) {
            /* Never negative: -1 would mean "wait forever". */
            gint64 left = MAX(deadline - g_get_monotonic_time(), 0);

            g_socket_condition_timed_wait(c->sock, G_IO_OUT, left, NULL, NULL);
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
    g_list_free_full(s->listeners, (GDestroyNotify)listener_free);
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
