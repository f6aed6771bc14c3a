/*
 * The QMP face of jobs (monitor/job.h): query-jobs, job-cancel, job-pause,
 * job-resume, job-complete, job-finalize, job-dismiss, and the
 * JOB_STATUS_CHANGE event for every status a job moves to.
 */
#ifndef MONITOR_QMP_JOB_H
#define MONITOR_QMP_JOB_H

#include "monitor/job.h"
#include "monitor/monitor.h"

typedef struct QmpJobs QmpJobs;

/* Registers the commands on mon; jobs created on qmp_jobs_list() report
 * their statuses to mon's clients. Free after the monitor. */
QmpJobs *qmp_jobs_attach(Monitor *mon);
void qmp_jobs_free(QmpJobs *qj);
JobList *qmp_jobs_list(QmpJobs *qj);

#endif
