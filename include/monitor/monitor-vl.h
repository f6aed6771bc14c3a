/*
 * The monitor's place in tern's process lifecycle (softmmu/vl.c): build the
 * Monitor from -qmp / -chardev / -mon, attach the machine and block commands
 * and the run-state events, start listening; and tear it all down after the
 * main loop, flushing last replies and events (quit's reply, SHUTDOWN).
 */
#ifndef MONITOR_MONITOR_VL_H
#define MONITOR_MONITOR_VL_H

#include "hw/i386/machine.h"
#include "monitor/monitor.h"

typedef struct MigrationState MigrationState;

typedef struct MonitorVl MonitorVl;

/*
 * Returns NULL with *errp set on a bad option or socket. Without any monitor
 * option it still returns a MonitorVl (with no sockets), so callers need no
 * special case. Call after machine_new() and runstate_init(), before the
 * main loop runs (wait=on blocks here until a client connects). The block
 * commands see the machine's drives (its block backend list).
 */
MonitorVl *monitor_vl_init(VmConfig *cfg, Machine *machine, GError **errp);
/* Call after the main loop returns and before runstate_cleanup(). */
void monitor_vl_cleanup(MonitorVl *mv);

Monitor *monitor_vl_monitor(MonitorVl *mv);
/* The process's migration state, which cont asks to take inactive drives
 * back (until then cont activates nothing), and whose snapshots the
 * snapshot commands act on. ms must outlive the main loop. */
void monitor_vl_set_migration(MonitorVl *mv, MigrationState *ms);

#endif
