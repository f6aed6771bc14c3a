/*
 * The capability probe's QMP commands (monitor/qmp-cmds-qom.c): machine
 * types, QOM types and their properties, CPU models, command-line option
 * groups, iothreads, and the machine's QOM tree (qom-list).
 */
#ifndef MONITOR_QMP_QOM_H
#define MONITOR_QMP_QOM_H

#include "hw/i386/machine.h"
#include "monitor/qmp-registry.h"

/* m (its devices and vCPUs, for qom-list) must outlive the registry. */
void qmp_register_qom_commands(QmpRegistry *r, Machine *m);

#endif
