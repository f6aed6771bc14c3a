/*
 * The monitor's snapshot commands over a VmSnapshot
 * (include/migration/snapshot.h): the QMP jobs snapshot-save,
 * snapshot-load and snapshot-delete (job-id, tag, vmstate, devices), and
 * HMP's savevm [tag], loadvm tag, delvm tag and "info snapshots", which
 * libvirt sends through human-monitor-command.
 */
#ifndef MONITOR_QMP_SNAPSHOT_H
#define MONITOR_QMP_SNAPSHOT_H

#include "block/block-backend.h"
#include "migration/snapshot.h"
#include "monitor/job.h"
#include "monitor/monitor.h"

typedef struct QmpSnapshots QmpSnapshots;

/* vs, drives and jobs must outlive the monitor; free after it. */
QmpSnapshots *qmp_snapshot_attach(Monitor *mon, VmSnapshot *vs,
                                  const BlockBackendList *drives,
                                  JobList *jobs);
void qmp_snapshot_free(QmpSnapshots *qs);

#endif
