/*
 * Migration transports (include/migration/channel.h): plain sockets for
 * unix: and tcp: (tern/sockets.h), a /bin/sh child for exec: (g_spawn), a
 * plain file for file:, an inherited or passed descriptor for fd:. Each ends up as a blocking file descriptor owned by
 * an fd QEMUFile, so buffering, errors and the return path are the same
 * whatever the transport. A listener waits in poll() on its socket and an
 * eventfd, which migration_listener_cancel() signals from another thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migration/channel.h"
#include "tern/keyval.h"
#include "tern/sockets.h"

struct MigrationListener {
    char *uri;                  /* as given, or with the bound tcp port */
    char *exec_cmd;             /* exec: */
    char *file_path;            /* file: */
    int in_fd;                  /* fd: until accepted, else -1 */
    char *unix_path;            /* unix: removed again when freed */
    int fd;                     /* unix:, tcp: the listening socket; else -1 */
    int cancel_fd;              /* eventfd: ends a blocked accept */
};

typedef enum {
    CHANNEL_UNIX, CHANNEL_TCP, CHANNEL_EXEC, CHANNEL_FILE, CHANNEL_FD,
} ChannelKind;

/* QEMU words an unknown scheme differently for migrate and -incoming. */
static bool parse_uri(const char *uri, bool output, ChannelKind *kind,
                      const char **rest, GError **errp)
{
    static const struct {
        const char *prefix;
        ChannelKind kind;
    } kinds[] = {
        { "unix:", CHANNEL_UNIX }, { "tcp:", CHANNEL_TCP },
        { "exec:", CHANNEL_EXEC }, { "file:", CHANNEL_FILE }, { "fd:", CHANNEL_FD },
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

/* A unix: path or tcp: HOST:PORT as a listening or connected socket. */
static int channel_socket(ChannelKind kind, const char *where, bool listening,
                          GError **errp)
{
    g_autofree char *host = NULL, *port = NULL;

    if (kind == CHANNEL_UNIX) {
        return listening ? tern_listen_unix(where, errp)
                         : tern_connect_unix(where, errp);
    }
    if (!tern_split_host_port(where, &host, &port, errp)) {
        return -1;
    }
    return listening ? tern_listen_tcp(host, port, errp)
                     : tern_connect_tcp(host, port, errp);
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

/* ---- fd: ---- */

/* fd:N: an open descriptor this process was given, switched to blocking
 * mode (the migration threads block on it). */
static int fd_claim(const char *number, GError **errp)
{
    uint64_t n;
    int flags;

    if (!parse_u64(number, &n, NULL) || n > INT_MAX ||
        (flags = fcntl((int)n, F_GETFL)) < 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "fd:%s: not an open file descriptor", number);
        return -1;
    }
    fcntl((int)n, F_SETFL, flags & ~O_NONBLOCK);
    fcntl((int)n, F_SETFD, FD_CLOEXEC);
    return (int)n;
}

/* ---- source ---- */

static QEMUFile *socket_connect(ChannelKind kind, const char *where,
                                GError **errp)
{
    int fd = channel_socket(kind, where, false, errp);

    if (fd < 0) {
        g_prefix_error(errp, "migration connect to %s: ", where);
        return NULL;
    }
    return qemu_file_new_fd_output(fd);
}

int migration_channel_connect_socket(const char *uri, GError **errp)
{
    ChannelKind kind;
    const char *rest;
    int fd;

    if (!parse_uri(uri, true, &kind, &rest, errp)) {
        return -1;
    }
    if (kind != CHANNEL_UNIX && kind != CHANNEL_TCP) {
        tern_invalid(errp, "multifd needs a unix: or tcp: migration URI");
        return -1;
    }
    fd = channel_socket(kind, rest, false, errp);
    if (fd < 0) {
        g_prefix_error(errp, "migration connect to %s: ", rest);
    }
    return fd;
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
    case CHANNEL_FD: {
        int fd = fd_claim(rest, errp);

        return fd < 0 ? NULL : qemu_file_new_fd_output(fd);
    }
    default:
        return socket_connect(kind, rest, errp);
    }
}

/* ---- destination ---- */

static bool listen_socket(MigrationListener *l, ChannelKind kind,
                          const char *where, GError **errp)
{
    g_autofree char *bound = NULL;

    l->fd = channel_socket(kind, where, true, errp);
    if (l->fd < 0) {
        g_prefix_error(errp, "migration listen on %s: ", where);
        return false;
    }
    if (kind == CHANNEL_UNIX) {
        l->unix_path = g_strdup(where);
        return true;
    }
    /* The URI a source can use, with the port tcp:...:0 was given. */
    bound = tern_socket_local_address(l->fd, errp);
    if (!bound) {
        return false;
    }
    g_free(l->uri);
    l->uri = g_strdup_printf("tcp:%s", bound);
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
    l->fd = l->in_fd = -1;
    l->cancel_fd = eventfd(0, EFD_CLOEXEC);
    if (l->cancel_fd < 0) {
        tern_set_error_errno(errp, errno, "eventfd");
        migration_listener_free(l);
        return NULL;
    }
    if (kind == CHANNEL_EXEC) {
        l->exec_cmd = g_strdup(rest);
    } else if (kind == CHANNEL_FILE) {
        l->file_path = g_strdup(rest);
    } else if (kind == CHANNEL_FD) {
        l->in_fd = fd_claim(rest, errp);
        if (l->in_fd < 0) {
            migration_listener_free(l);
            return NULL;
        }
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

/* Waits for a connection or a cancel; the connection's blocking socket. */
static int accept_cancellable(MigrationListener *l, GError **errp)
{
    struct pollfd p[2] = {
        { .fd = l->fd, .events = POLLIN },
        { .fd = l->cancel_fd, .events = POLLIN },
    };

    for (;;) {
        int fd;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            tern_set_error_errno(errp, errno, "poll");
            return -1;
        }
        if (p[1].revents) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "cancelled");
            return -1;
        }
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0 || (errno != EINTR && errno != EAGAIN &&
                        errno != ECONNABORTED)) {
            if (fd < 0) {
                tern_set_error_errno(errp, errno, "accept");
            }
            return fd;
        }
    }
}

QEMUFile *migration_listener_accept(MigrationListener *l, GError **errp)
{
    int fd;

    if (l->exec_cmd) {
        return exec_open(l->exec_cmd, false, errp);
    }
    if (l->file_path) {
        return file_open(l->file_path, false, errp);
    }
    if (l->in_fd >= 0) {
        fd = l->in_fd;
        l->in_fd = -1;
        return qemu_file_new_fd_input(fd);
    }
    fd = accept_cancellable(l, errp);
    if (fd < 0) {
        g_prefix_error(errp, "migration accept: ");
        return NULL;
    }
    return qemu_file_new_fd_input(fd);
}

int migration_listener_accept_socket(MigrationListener *l, GError **errp)
{
    int fd;

    if (l->fd < 0) {
        tern_invalid(errp, "multifd needs a unix: or tcp: migration URI");
        return -1;
    }
    fd = accept_cancellable(l, errp);
    if (fd < 0) {
        g_prefix_error(errp, "migration accept: ");
    }
    return fd;
}

void migration_listener_cancel(MigrationListener *l)
{
    uint64_t one = 1;

    if (l && write(l->cancel_fd, &one, sizeof(one)) < 0) {
        tern_warn("cannot cancel the migration listener: %s", g_strerror(errno));
    }
}

void migration_listener_free(MigrationListener *l)
{
    if (!l) {
        return;
    }
    if (l->cancel_fd >= 0) {
        close(l->cancel_fd);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    if (l->in_fd >= 0) {
        close(l->in_fd);
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
