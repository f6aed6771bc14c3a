/*
 * The monitor as the rest of tern sees it: one command registry and one QMP
 * server, configured from the command line (-qmp, -chardev socket + -mon
 * mode=control), started once the machine exists, and the place events are
 * emitted. There is one Monitor per process; the machine owns it.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include "monitor/qmp-registry.h"

typedef struct Monitor Monitor;

/* A monitor with the protocol-level commands and human-monitor-command
 * registered; ctx NULL means the default main context. */
Monitor *monitor_new(GMainContext *ctx);
void monitor_free(Monitor *mon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Monitor, monitor_free)

/* Where subsystems add their commands and transaction actions... */
QmpRegistry *monitor_registry(Monitor *mon);
/* ...and their HMP commands without a QMP twin (monitor/hmp.h). */
typedef struct Hmp Hmp;
Hmp *monitor_hmp(Monitor *mon);

/*
 * Command-line options, checked as they are added:
 *   -qmp unix:PATH[,server=on|server][,wait=off|nowait]   (also tcp:HOST:PORT)
 *   -chardev socket,id=ID,path=PATH,server=on,wait=off    (or host=,port=,
 *                                                          or fd=N listening)
 *   -mon chardev=ID,mode=control[,pretty=on|off][,id=NAME]
 * -chardev options of other backends are left to the serial port.
 * Only listening sockets are supported; wait=on (QEMU's default for a server)
 * makes monitor_start() block until a client connects.
 */
bool monitor_add_qmp_option(Monitor *mon, const char *arg, GError **errp);
bool monitor_add_chardev_option(Monitor *mon, const char *arg, GError **errp);
bool monitor_add_mon_option(Monitor *mon, const char *arg, GError **errp);
/* True if a -chardev with this id was given (so the machine can tell a
 * monitor chardev from others). */
bool monitor_has_chardev(Monitor *mon, const char *id);

/* Appends query-chardev's ChardevInfo for each listening chardev. */
void monitor_add_chardev_info(Monitor *mon, json_object *list);

/* Opens the listening sockets; waits for a client where wait=on. */
bool monitor_start(Monitor *mon, GError **errp);

/* Sends an event to every negotiated QMP client; takes ownership of data
 * (may be NULL). Safe from any thread. */
void monitor_emit_event(Monitor *mon, const char *name, json_object *data);

#endif
