/*
 * The machine-level QMP commands (query-status, query-name, query-kvm,
 * query-cpus-fast, stop, cont, system_reset, system_powerdown, quit) and the
 * run-state events (STOP, RESUME, SHUTDOWN, RESET, POWERDOWN). Run state goes
 * through softmmu/runstate.h; what only the machine knows comes through
 * QmpMachineOps, so this file does not depend on the machine's structs.
 */
#ifndef MONITOR_QMP_MACHINE_H
#define MONITOR_QMP_MACHINE_H

#include "monitor/monitor.h"

typedef struct QmpMachineOps {
    /* -name, or NULL. */
    const char *(*name)(void *opaque);
    unsigned (*cpu_count)(void *opaque);
    /* Cores per socket (-smp), for the vCPUs' socket-id and core-id. */
    unsigned (*cores_per_socket)(void *opaque);
    /* Host thread id of vCPU 'index' (for query-cpus-fast). */
    int64_t (*cpu_thread_id)(void *opaque, unsigned index);
    /* Presses the ACPI power button; NULL if the machine has none. */
    void (*powerdown)(void *opaque);
    /* Takes inactive drives back before cont starts the guest (QEMU's
     * cont activates every block node); false with *errp leaves the VM
     * stopped. NULL if the machine hands no drives over. */
    bool (*activate_disks)(void *opaque, GError **errp);
} QmpMachineOps;

typedef struct QmpMachine {
    const QmpMachineOps *ops;
    void *opaque;
    Monitor *monitor;       /* set by qmp_machine_attach */
    bool shutdown_sent;     /* quit sent SHUTDOWN ahead of its request */
} QmpMachine;

/*
 * Registers the commands and starts turning run-state changes into events.
 * m must stay valid until qmp_machine_detach().
 */
void qmp_machine_attach(QmpMachine *m, Monitor *mon);
void qmp_machine_detach(QmpMachine *m);

#endif
