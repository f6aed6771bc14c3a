/*
 * Background jobs as QMP shows them (QEMU's job.c): each has an id, a type
 * (QAPI's JobType: "snapshot-save", ...), a status that moves only along
 * QEMU 7.2's transition table and reports every move (JOB_STATUS_CHANGE),
 * progress, and the error it ended with. The verbs (job-cancel, job-pause,
 * job-resume, job-complete, job-finalize, job-dismiss) are allowed in the
 * statuses QEMU's verb table allows, with its messages.
 *
 * tern's jobs run their work on the main-loop thread in one piece, as
 * QEMU's snapshot jobs do (their work is one bottom half on the main
 * loop): created, running and the work when started; then, from the main
 * loop after the starting command has replied (QEMU 7.2's order), waiting,
 * pending, concluded on success, or aborting, concluded with the error. Jobs finalize themselves and wait for job-dismiss, which takes
 * them to null and away. No JSON here; monitor/qmp-cmds-job.c speaks QMP.
 */
#ifndef MONITOR_JOB_H
#define MONITOR_JOB_H

#include "tern/common.h"

typedef enum {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,
    JOB_STATUS_READY,
    JOB_STATUS_STANDBY,
    JOB_STATUS_WAITING,
    JOB_STATUS_PENDING,
    JOB_STATUS_ABORTING,
    JOB_STATUS_CONCLUDED,
    JOB_STATUS_NULL,
    JOB_STATUS__MAX
} JobStatus;

typedef enum {
    JOB_VERB_CANCEL,
    JOB_VERB_PAUSE,
    JOB_VERB_RESUME,
    JOB_VERB_SET_SPEED,
    JOB_VERB_COMPLETE,
    JOB_VERB_FINALIZE,
    JOB_VERB_DISMISS,
    JOB_VERB__MAX
} JobVerb;

const char *job_status_name(JobStatus s);
const char *job_verb_name(JobVerb v);

typedef struct Job Job;
typedef struct JobList JobList;

typedef struct JobDriver {
    const char *type;               /* QAPI JobType */
    /* The work; false with *errp fails the job. */
    bool (*run)(void *opaque, GError **errp);
    void (*free)(void *opaque);     /* may be NULL */
} JobDriver;

/* 'changed' (may be NULL) hears every status change, in order. */
JobList *job_list_new(void (*changed)(void *opaque, const Job *job),
                      void *opaque);
void job_list_free(JobList *l);

/* A new job in status created (QEMU's checks: a well-formed id, not in
 * use). The job owns 'opaque' (drv->free) from here on, also on failure. */
Job *job_create(JobList *l, const char *id, const JobDriver *drv,
                void *opaque, GError **errp);
/* Runs the work now; the main loop takes the job on to concluded (or
 * aborting, concluded) at its next turn. */
void job_start(Job *job);

/* "Job not found" if no job has that id. */
Job *job_find(JobList *l, const char *id, GError **errp);
/* The verbs: refused in statuses where QEMU refuses them. A cancel,
 * pause or resume accepted here has nothing to act on (the work runs in
 * one piece), as in QEMU. */
bool job_verb(Job *job, JobVerb verb, GError **errp);
/* job-dismiss: concluded -> null, and the job is gone. */
bool job_dismiss(JobList *l, const char *id, GError **errp);

/* query-jobs' order: newest first. */
size_t job_list_count(const JobList *l);
Job *job_list_get(const JobList *l, size_t i);

const char *job_id(const Job *job);
const char *job_type(const Job *job);
JobStatus job_status(const Job *job);
void job_progress(const Job *job, uint64_t *current, uint64_t *total);
/* The error a job ended with, or NULL. */
const char *job_error(const Job *job);

#endif
