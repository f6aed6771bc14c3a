/*
 * Migration transports (include/migration/channel.h): GIO sockets for unix:
 * and tcp:, a /bin/sh child for exec:, a plain file for file:. Each ends up
 * as a file descriptor owned by an fd QEMUFile, so buffering, errors and the
 * return path are the same whatever the transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>

#include "migration/channel.h"

struct MigrationListener {
    char *uri;                  /* as given, or with the bound tcp port */
    char *exec_cmd;             /* exec: */
    char *file_path;            /* file: */
    char *unix_path;            /* unix: removed again when freed */
    GSocketListener *sockets;   /* unix:, tcp: */
    GCancellable *cancel;       /* ends a blocked accept */
};

typedef enum { CHANNEL_UNIX, CHANNEL_TCP, CHANNEL_EXEC, CHANNEL_FILE } ChannelKind;

/* QEMU words an unknown scheme differently for migrate and -incoming. */
static bool parse_uri(const char *uri, bool output, ChannelKind *kind,
                      const char **rest, GError **errp)
{
    static const struct {
        const char *prefix;
        ChannelKind kind;
    } kinds[] = {
        { "unix:", CHANNEL_UNIX }, { "tcp:", CHANNEL_TCP },
        { "exec:", CHANNEL_EXEC }, { "file:", CHANNEL_FILE },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
        if (g_str_has_prefix(uri, kinds[i].prefix) &&
            uri[strlen(kinds[i].prefix)]) {
            *kind = kinds[i].kind;
            *rest = uri + strlen(kinds[i].prefix);
            return true;
        }
    }
    if (output) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Parameter 'uri' expects a valid migration protocol");
    } else {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "unknown migration protocol: %s", uri);
    }
    return false;
}

bool migration_channel_check_uri(const char *uri, GError **errp)
{
    ChannelKind kind;
    const char *rest;

    return parse_uri(uri, true, &kind, &rest, errp);
}

/* A GSocket's descriptor, duplicated so the QEMUFile owns its own. */
static QEMUFile *file_from_socket(GSocket *sock, bool output, GError **errp)
{
    int fd = dup(g_socket_get_fd(sock));

    if (fd < 0) {
        tern_set_error_errno(errp, errno, "dup of the migration socket");
        return NULL;
    }
    /* GSocket keeps its descriptors non-blocking; ours block. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return output ? qemu_file_new_fd_output(fd) : qemu_file_new_fd_input(fd);
}

static GSocketAddress *socket_address(ChannelKind kind, const char *where,
                                      GError **errp)
{
    g_autoptr(GSocketConnectable) conn = NULL;
    g_autoptr(GSocketAddressEnumerator) en = NULL;

    if (kind == CHANNEL_UNIX) {
        return g_unix_socket_address_new(where);
    }
    conn = g_network_address_parse(where, 0, errp);
    if (!conn) {
        return NULL;
    }
    en = g_socket_connectable_enumerate(conn);
    return g_socket_address_enumerator_next(en, NULL, errp);
}

/* ---- exec: ---- */

typedef struct ExecChild {
    GPid pid;
    char *cmd;
} ExecChild;

static bool exec_child_wait(void *opaque, GError **errp)
{
    ExecChild *c = opaque;
    int status = 0;
    bool ok;

    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
    }
    g_spawn_close_pid(c->pid);
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO,
                    "migration command '%s' failed (status 0x%x)", c->cmd,
                    status);
    }
    g_free(c->cmd);
    g_free(c);
    return ok;
}

static QEMUFile *exec_open(const char *cmd, bool output, GError **errp)
{
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    ExecChild *c = g_new0(ExecChild, 1);
    int fd = -1;

    if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                  G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                  &c->pid, output ? &fd : NULL,
                                  output ? NULL : &fd, NULL, errp)) {
        g_prefix_error(errp, "exec:%s: ", cmd);
        g_free(c);
        return NULL;
    }
    c->cmd = g_strdup(cmd);
    return qemu_file_new_fd(fd, output, exec_child_wait, c);
}

/* ---- file: ---- */

static QEMUFile *file_open(const char *path, bool output, GError **errp)
{
    int fd = output ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
                    : open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        tern_set_error_errno(errp, errno, "file:%s", path);
        return NULL;
    }
    return output ? qemu_file_new_fd_output(fd) : qemu_file_new_fd_input(fd);
}

/* ---- source ---- */

static QEMUFile *socket_connect(ChannelKind kind, const char *where,
                                GError **errp)
{
    g_autoptr(GSocketAddress) addr = socket_address(kind, where, errp);
    g_autoptr(GSocketClient) client = NULL;
    g_autoptr(GSocketConnection) conn = NULL;

    if (!addr) {
        return NULL;
    }
    client = g_socket_client_new();
    conn = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr), NULL,
                                   errp);
    if (!conn) {
        g_prefix_error(errp, "migration connect to %s: ", where);
        return NULL;
    }
    return file_from_socket(g_socket_connection_get_socket(conn), true, errp);
}

QEMUFile *migration_channel_connect(const char *uri, GError **errp)
{
    ChannelKind kind;
    const char *rest;

    if (!parse_uri(uri, true, &kind, &rest, errp)) {
        return NULL;
    }
    switch (kind) {
    case CHANNEL_EXEC:
        return exec_open(rest, true, errp);
    case CHANNEL_FILE:
        return file_open(rest, true, errp);
    default:
        return socket_connect(kind, rest, errp);
    }
}

/* ---- destination ---- */

static bool listen_socket(MigrationListener *l, ChannelKind kind,
                          const char *where, GError **errp)
{
    g_autoptr(GSocketAddress) addr = socket_address(kind, where, errp);
    g_autoptr(GSocketAddress) bound = NULL;

    if (!addr) {
        return false;
    }
    if (kind == CHANNEL_UNIX) {
        /* A stale socket file from an earlier run would block the bind. */
        unlink(where);
        l->unix_path = g_strdup(where);
    }
    l->sockets = g_socket_listener_new();
    if (!g_socket_listener_add_address(l->sockets, addr,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL,
                                       &bound, errp)) {
        g_prefix_error(errp, "migration listen on %s: ", where);
        return false;
    }
    if (kind == CHANNEL_TCP) {
        g_autofree char *host = g_inet_address_to_string(
            g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(bound)));
        guint16 port = g_inet_socket_address_get_port(
            G_INET_SOCKET_ADDRESS(bound));

        g_free(l->uri);
        l->uri = strchr(host, ':') ? g_strdup_printf("tcp:[%s]:%u", host, port)
                                   : g_strdup_printf("tcp:%s:%u", host, port);
    }
    return true;
}

MigrationListener *migration_listener_new(const char *uri, GError **errp)
{
    MigrationListener *l;
    ChannelKind kind;
    const char *rest;

    if (!parse_uri(uri, false, &kind, &rest, errp)) {
        return NULL;
    }
    l = g_new0(MigrationListener, 1);
    l->uri = g_strdup(uri);
    l->cancel = g_cancellable_new();
    if (kind == CHANNEL_EXEC) {
        l->exec_cmd = g_strdup(rest);
    } else if (kind == CHANNEL_FILE) {
        l->file_path = g_strdup(rest);
    } else if (!listen_socket(l, kind, rest, errp)) {
        migration_listener_free(l);
        return NULL;
    }
    return l;
}

const char *migration_listener_uri(const MigrationListener *l)
{
    return l->uri;
}

QEMUFile *migration_listener_accept(MigrationListener *l, GError **errp)
{
    g_autoptr(GSocket) sock = NULL;

    if (l->exec_cmd) {
        return exec_open(l->exec_cmd, false, errp);
    }
    if (l->file_path) {
        return file_open(l->file_path, false, errp);
    }
    sock = g_socket_listener_accept_socket(l->sockets, NULL, l->cancel, errp);
    if (!sock) {
        g_prefix_error(errp, "migration accept: ");
        return NULL;
    }
    return file_from_socket(sock, false, errp);
}

void migration_listener_cancel(MigrationListener *l)
{
    if (l) {
        g_cancellable_cancel(l->cancel);
    }
}

void migration_listener_free(MigrationListener *l)
{
    if (!l) {
        return;
    }
    g_clear_object(&l->cancel);
    if (l->sockets) {
        g_socket_listener_close(l->sockets);
        g_object_unref(l->sockets);
    }
    if (l->unix_path) {
        unlink(l->unix_path);
        g_free(l->unix_path);
    }
    g_free(l->uri);
    g_free(l->exec_cmd);
    g_free(l->file_path);
    g_free(l);
}
