/*
 * Private to the outgoing migration job's files: the MigrationJob object
 * shared by the job thread's precopy loop (migration-job.c), the postcopy
 * switchover, streaming and recovery (postcopy-source.c) and the
 * return-path thread (return-path-source.c).
 */
#ifndef MIGRATION_MIGRATION_JOB_INT_H
#define MIGRATION_MIGRATION_JOB_INT_H

#include "migration/migration-job.h"

struct MigrationJob {
    SaveVM *sv;
    RamMigration *ram;
    MigrationParams params;
    MigrationHooks hooks;
    GThread *thread;
    int cancel;                     /* atomic */
    int start_postcopy;             /* atomic: migrate-start-postcopy */
    int switchover_acked;           /* atomic: SWITCHOVER_ACK came */
    GError *error;                  /* the thread's outcome */

    /* The return path: a thread per connection reads it. */
    QEMUFile *rp;
    GThread *rp_thread;

    GMutex lock;                    /* stats, the fields below, f */
    GCond cond;                     /* return-path events, resume */
    MigrationStats stats;
    GArray *statuses;               /* MigrationStatusChange, untaken */
    QEMUFile *f;                    /* main channel (NULL while paused) */
    QEMUFile *urgent;               /* preempt channel, or NULL */
    GError *rp_error;               /* why the return path stopped */
    bool rp_fatal;                  /* a protocol error: never pause */
    bool rp_done, rp_shut;          /* thread over; SHUT 0 seen */
    bool bitmap_loaded, resume_acked;   /* recovery handshake */
    QEMUFile *resume_f, *resume_urgent; /* from migration_job_resume */
    bool pause_requested;           /* migrate-pause */

    /* thread-private */
    gint64 start_us;
    bool vm_stopped;                /* for the switchover */
    bool stopped_for_postcopy;
    uint64_t ram_at_stop;           /* RAM's bytes when it stopped */
    gint64 window_start_us;
    uint64_t window_start_bytes;
    double bytes_per_ms;            /* measured bandwidth */
    uint64_t last_fit;              /* exact pending when it last fitted */
    unsigned fit_rounds;            /* rounds run although it fitted */
    bool finish_round;              /* send the dirty set before deciding */

    /* thread-private: auto-converge's current period */
    gint64 period_start_us;
    uint64_t period_start_bytes;
    uint64_t period_start_dirtied;  /* RAM's dirtied_pages then */
    uint64_t period_syncs;          /* RAM's dirty_sync_count then */
    unsigned dirty_high;            /* periods in a row over the trigger */
    unsigned throttle;              /* percentage in force */
};

void job_set_status(MigrationJob *job, MigrationStatus s);
/* The VM has stopped for the switchover: RAM's bytes from here on are the
 * downtime's, or postcopy's. */
void job_vm_stopped(MigrationJob *job, bool postcopy);
void job_set_status_locked(MigrationJob *job, MigrationStatus s);
MigrationStatus migration_job_status(MigrationJob *job);
/* Refresh the counters QMP shows; pending is RAM's dirty bytes. */
void job_publish(MigrationJob *job, uint64_t pending);
bool job_cancelled(MigrationJob *job, GError **errp);
/* The error text QMP shows in error-desc (failed, cancelled, paused). */
void job_set_error_desc(MigrationJob *job, const char *msg);

/* The bandwidth windows (100 ms): start one with a limit of 'bandwidth'
 * bytes per second (0: none), close it when it is over, and how long the
 * current one still runs. */
void job_start_window(MigrationJob *job, uint64_t bandwidth);
void job_roll_window(MigrationJob *job);
uint64_t job_window_left_us(const MigrationJob *job);

/* postcopy-source.c */
bool postcopy_switchover(MigrationJob *job, GError **errp);
bool postcopy_stream(MigrationJob *job, GError **errp);

/* return-path-source.c: start reading job->rp (after OPEN_RETURN_PATH),
 * stop (shut down and join), a failure the job must act on now, and the
 * end of the migration (SHUT). */
void job_rp_start(MigrationJob *job);
void job_rp_stop(MigrationJob *job);
bool job_rp_failed(MigrationJob *job, bool *fatal, GError **errp);
bool job_rp_wait_shut(MigrationJob *job, GError **errp);
/* The job failed with *errp: if the destination said why (SHUT with an
 * error, a protocol violation), that replaces it. Waits a moment for the
 * return path to read what is still in flight. */
void job_rp_explain(MigrationJob *job, GError **errp);
/* Wait until *flag (under job->lock) or the return path ends. */
bool job_rp_wait_for(MigrationJob *job, bool *flag, GError **errp);

#endif
