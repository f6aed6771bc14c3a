/*
 * Stream sockets for the QMP server and the migration transports, with plain
 * POSIX calls (no GIO): listening and connecting on a unix path or a TCP
 * host:port. Descriptors are close-on-exec and blocking; callers that serve
 * them from the main loop make them non-blocking.
 */
#ifndef TERN_SOCKETS_H
#define TERN_SOCKETS_H

#include "tern/common.h"

/* Listening sockets (backlog SOMAXCONN). For unix, a stale socket file at
 * path (a socket, nothing else) is replaced. An empty host means any. */
int tern_listen_unix(const char *path, GError **errp);
int tern_listen_tcp(const char *host, const char *port, GError **errp);

int tern_connect_unix(const char *path, GError **errp);
int tern_connect_tcp(const char *host, const char *port, GError **errp);

/* "HOST:PORT" (HOST may be [v6] or empty) into new strings. */
bool tern_split_host_port(const char *s, char **host, char **port, GError **errp);

/* The numeric host and port a socket is bound to, as HOST:PORT with an IPv6
 * host in brackets. */
char *tern_socket_local_address(int fd, GError **errp);

#endif
