/*
 * One outgoing precopy migration, run on its own thread: header and setup,
 * iterations under a bandwidth limit in 100 ms windows, and the stop-and-copy
 * decision from the measured bandwidth and the downtime limit, as QEMU's
 * migration thread makes it. The machine supplies how to stop the VM and
 * learns the outcome through hooks; QMP reads the statistics (QEMU's
 * query-migrate fields) from any thread.
 */
#ifndef MIGRATION_MIGRATION_JOB_H
#define MIGRATION_MIGRATION_JOB_H

#include "migration/ram.h"
#include "migration/savevm.h"

/* QEMU's MigrationStatus values that a precopy source goes through. */
typedef enum {
    MIGRATION_STATUS_NONE,
    MIGRATION_STATUS_SETUP,
    MIGRATION_STATUS_ACTIVE,
    MIGRATION_STATUS_DEVICE,        /* VM stopped, completing */
    MIGRATION_STATUS_COMPLETED,
    MIGRATION_STATUS_FAILED,
    MIGRATION_STATUS_CANCELLING,
    MIGRATION_STATUS_CANCELLED,
} MigrationStatus;

/* "none", "setup", "active", "device", "completed", ... as QMP says it. */
const char *migration_status_name(MigrationStatus s);

typedef struct MigrationParams {
    uint64_t max_bandwidth;         /* bytes per second, 0 = unlimited */
    uint64_t downtime_limit_ms;     /* 0 = QEMU's default, 300 ms */
} MigrationParams;

typedef struct MigrationHooks {
    /* Stop the guest for the final copy (runstate finish-migrate). */
    bool (*stop_vm)(void *opaque, GError **errp);
    /* On the migration thread when done: 'err' NULL on success (the source
     * goes postmigrate); else the VM must resume if stop_vm ran. */
    void (*finished)(void *opaque, const GError *err);
    void *opaque;
} MigrationHooks;

typedef struct MigrationStats {
    MigrationStatus status;
    uint64_t total_time_ms;         /* so far, or to completion */
    uint64_t setup_time_ms;
    uint64_t downtime_ms;           /* VM stopped to stream done */
    uint64_t expected_downtime_ms;  /* pending / bandwidth */
    uint64_t transferred;           /* bytes written to the channel */
    uint64_t remaining;             /* RAM bytes still dirty */
    uint64_t total;                 /* RAM bytes */
    uint64_t duplicate;             /* zero pages */
    uint64_t normal;                /* full pages */
    uint64_t dirty_sync_count;
    double mbps;                    /* last window's bandwidth */
    char error_desc[256];           /* why it failed or was cancelled */
} MigrationStats;

typedef struct MigrationJob MigrationJob;

/* Start migrating 'sv' into 'f' (which the job owns and closes). 'ram' may
 * be NULL; it only feeds the statistics. */
MigrationJob *migration_job_start(SaveVM *sv, QEMUFile *f, RamMigration *ram,
                                  const MigrationParams *params,
                                  const MigrationHooks *hooks);
/* Ask the job to stop; it ends cancelled at its next iteration. */
void migration_job_cancel(MigrationJob *job);
void migration_job_get_stats(MigrationJob *job, MigrationStats *out);
/* Wait for the thread; false with the failure if it did not complete. */
bool migration_job_wait(MigrationJob *job, GError **errp);
void migration_job_free(MigrationJob *job);

#endif
