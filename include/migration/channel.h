/*
 * Migration transports, with QEMU's URI syntax, turned into QEMUFiles:
 *   unix:PATH        a unix stream socket
 *   tcp:HOST:PORT    TCP (HOST may be [v6]); the listener's PORT may be 0
 *   exec:CMD         /bin/sh -c CMD, the stream on its stdin (outgoing) or
 *                    stdout (incoming); closing waits for the command
 *   file:PATH        a plain file, truncated when written
 *   fd:N             descriptor N, which the channel then owns (the monitor
 *                    turns QMP's fd:NAME into fd:N, see getfd)
 * Sockets give a return path (qemu_file_get_return_path); exec and file
 * do not. Everything here blocks: the migration threads call it.
 */
#ifndef MIGRATION_CHANNEL_H
#define MIGRATION_CHANNEL_H

#include "migration/qemu-file.h"

/* Whether migrate can use 'uri' (its scheme is one of the above); QEMU's
 * message if not. */
bool migration_channel_check_uri(const char *uri, GError **errp);

/* The source side: connect / spawn / create, as an output QEMUFile. */
QEMUFile *migration_channel_connect(const char *uri, GError **errp);
/* One more connection to a unix: or tcp: URI, as a bare blocking socket
 * (multifd); -1 with errp, also for exec: and file:. */
int migration_channel_connect_socket(const char *uri, GError **errp);

typedef struct MigrationListener MigrationListener;

/* The destination side. Sockets are bound and listening on return, so a
 * source may connect at once; exec: and file: do their work in accept. */
MigrationListener *migration_listener_new(const char *uri, GError **errp);
/* The URI a source should use, with the bound port for tcp:...:0. */
const char *migration_listener_uri(const MigrationListener *l);
/* Wait for the one incoming stream, as an input QEMUFile. */
QEMUFile *migration_listener_accept(MigrationListener *l, GError **errp);
/* The next connection to a socket listener as a bare blocking socket
 * (multifd); -1 with errp, also for exec: and file:. */
int migration_listener_accept_socket(MigrationListener *l, GError **errp);
/* From another thread: make a blocked (or later) accept fail. NULL is ok. */
void migration_listener_cancel(MigrationListener *l);
void migration_listener_free(MigrationListener *l);

#endif
