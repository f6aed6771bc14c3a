/*
 * Unix and TCP stream sockets over POSIX calls (include/tern/sockets.h).
 * Names resolve with getaddrinfo; the first address that binds or connects
 * wins, and the error kept is the last one, with errno.
 */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tern/error.h"
#include "tern/sockets.h"

static bool unix_address(const char *path, struct sockaddr_un *sa, GError **errp)
{
    memset(sa, 0, sizeof(*sa));
    if (!*path || strlen(path) >= sizeof(sa->sun_path)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "socket path '%s' is empty or too long", path);
        return false;
    }
    sa->sun_family = AF_UNIX;
    strcpy(sa->sun_path, path);
    return true;
}

int tern_listen_unix(const char *path, GError **errp)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    if (!unix_address(path, &sa, errp)) {
        return -1;
    }
    /* Like QEMU, replace a socket left behind by an earlier run, nothing else. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        tern_set_error_errno(errp, errno, "listen on %s", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

int tern_connect_unix(const char *path, GError **errp)
{
    struct sockaddr_un sa;
    int fd;

    if (!unix_address(path, &sa, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        tern_set_error_errno(errp, errno, "connect to %s", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static struct addrinfo *resolve(const char *host, const char *port, bool passive,
                                GError **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = passive ? AI_PASSIVE : 0,
    };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);

    if (rc) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "address %s:%s: %s", host,
                    port, gai_strerror(rc));
        return NULL;
    }
    return res;
}

/* Binds and listens, or connects, to the first address that takes it. */
static int tcp_socket(const char *host, const char *port, bool listening,
                      GError **errp)
{
    struct addrinfo *res = resolve(host, port, listening, errp);
    int fd = -1, err = 0;

    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (listening) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        }
        if (listening ? bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
                        listen(fd, SOMAXCONN) < 0
                      : connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    if (res && fd < 0) {
        tern_set_error_errno(errp, err, "%s %s:%s", listening ? "listen on" :
                             "connect to", host, port);
    }
    if (res) {
        freeaddrinfo(res);
    }
    return fd;
}

int tern_listen_tcp(const char *host, const char *port, GError **errp)
{
    return tcp_socket(host, port, true, errp);
}

int tern_connect_tcp(const char *host, const char *port, GError **errp)
{
    return tcp_socket(host, port, false, errp);
}

bool tern_split_host_port(const char *s, char **host, char **port, GError **errp)
{
    const char *colon = strrchr(s, ':');

    if (!colon || !colon[1]) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s' is not HOST:PORT", s);
        return false;
    }
    if (s[0] == '[' && colon > s + 1 && colon[-1] == ']') {
        *host = g_strndup(s + 1, colon - s - 2);
    } else {
        *host = g_strndup(s, colon - s);
    }
    *port = g_strdup(colon + 1);
    return true;
}

char *tern_socket_local_address(int fd, GError **errp)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        tern_set_error_errno(errp, errno, "getsockname");
        return NULL;
    }
    if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "getnameinfo failed");
        return NULL;
    }
    return strchr(host, ':') ? g_strdup_printf("[%s]:%s", host, port)
                             : g_strdup_printf("%s:%s", host, port);
}
