/*
 * The human monitor subset reachable through QMP's human-monitor-command:
 * "info status", "info block", "stop", "cont", "quit", "system_reset",
 * "system_powerdown". Each maps onto a registered QMP command.
 */
#ifndef MONITOR_HMP_H
#define MONITOR_HMP_H

#include "monitor/qmp-registry.h"

/* Registers human-monitor-command. */
void hmp_register_command(QmpRegistry *r);

/* Runs one HMP command line and returns its output (never NULL). */
char *hmp_run(QmpRegistry *r, const char *line);

#endif
