/*
 * The process around the VM, as QEMU's -daemonize, -pidfile and -msg give
 * it to management tools: daemon_start() forks (with -daemonize) before
 * anything else starts a thread, the parent waiting until the child says the
 * VM is set up (daemon_ready) and exiting 0 then, or 1 if the child failed
 * first (whose messages reached the same stderr); the pid file is written
 * and locked by the process that runs the VM and removed when it exits.
 */
#ifndef SOFTMMU_DAEMON_H
#define SOFTMMU_DAEMON_H

#include "softmmu/vm-config.h"

typedef struct Daemon Daemon;

bool daemon_opt_pidfile(VmConfig *cfg, const char *name, const char *arg,
                        GError **errp);
bool daemon_opt_daemonize(VmConfig *cfg, const char *name, const char *arg,
                          GError **errp);
bool daemon_opt_msg(VmConfig *cfg, const char *name, const char *arg, GError **errp);

/* Forks if cfg asks for it (only the child returns), then writes the pid
 * file. NULL with errp set if either failed. */
Daemon *daemon_start(const VmConfig *cfg, GError **errp);
/* The VM is set up: a daemon leaves its session's files (stdio on
 * /dev/null, working directory /) and releases its waiting parent. */
void daemon_ready(Daemon *d);
/* Removes the pid file; NULL is fine. */
void daemon_free(Daemon *d);

#endif
