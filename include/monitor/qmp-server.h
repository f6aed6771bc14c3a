/*
 * The QMP server: listening sockets and client connections on a GLib main
 * context. Each client has its own session, framer and bounded output queue;
 * sockets are non-blocking, so a slow or vanished client costs at most its queue
 * and never blocks the main loop, vCPUs or I/O. Events go to every negotiated
 * client.
 */
#ifndef MONITOR_QMP_SERVER_H
#define MONITOR_QMP_SERVER_H

#include "monitor/qmp-registry.h"

/* A client whose unsent output exceeds this is disconnected. */
#define QMP_SERVER_MAX_OUTPUT   (4 * MiB)
/* All clients' unsent output together: past it, the client holding the most
 * is disconnected first (200 clients that never read cost at most this). */
#define QMP_SERVER_MAX_TOTAL_OUTPUT (16 * MiB)

typedef struct QmpServer QmpServer;

/* ctx NULL means the default main context. The registry must outlive it. */
QmpServer *qmp_server_new(QmpRegistry *r, GMainContext *ctx);
/* Sends what it can of pending output (waiting up to ~100 ms), closes clients
 * and listeners and removes the socket files it created. */
void qmp_server_free(QmpServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpServer, qmp_server_free)

/* Listens on a unix socket, replacing a stale socket file at path. */
bool qmp_server_listen_unix(QmpServer *s, const char *path, GError **errp);
/* Listens on host:port (TCP). */
bool qmp_server_listen_tcp(QmpServer *s, const char *host, const char *port,
                           GError **errp);
/* Listens on an inherited listening socket (-chardev socket,fd=N), which
 * it then owns. */
bool qmp_server_listen_fd(QmpServer *s, int fd, GError **errp);
/* For wait=on: iterates the context until some client has connected. */
void qmp_server_wait_for_client(QmpServer *s);

/*
 * Sends {"event": name, "data": data, "timestamp": ...} to every client that has
 * completed capabilities negotiation. Takes ownership of data (may be NULL).
 * Callable from any thread; from any but the one that created the server it
 * is queued, in order, and sent by the loop (never from the calling thread).
 */
void qmp_server_emit_event(QmpServer *s, const char *name, json_object *data);

unsigned qmp_server_client_count(const QmpServer *s);
/* Bytes queued for all clients and not yet sent. */
size_t qmp_server_pending_output(const QmpServer *s);
/* Tests: a smaller total than QMP_SERVER_MAX_TOTAL_OUTPUT. */
void qmp_server_set_max_total_output(QmpServer *s, size_t bytes);

#endif
