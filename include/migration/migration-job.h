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

/* QEMU's MigrationStatus values that tern's migrations go through; the end
 * states come last. */
typedef enum {
    MIGRATION_STATUS_NONE,
    MIGRATION_STATUS_SETUP,
    MIGRATION_STATUS_ACTIVE,
    MIGRATION_STATUS_DEVICE,        /* VM stopped, completing */
    MIGRATION_STATUS_POSTCOPY_ACTIVE,
    MIGRATION_STATUS_POSTCOPY_PAUSED,   /* channel lost, waiting to recover */
    MIGRATION_STATUS_POSTCOPY_RECOVER,  /* reconnected, resynchronising */
    MIGRATION_STATUS_COMPLETED,
    MIGRATION_STATUS_FAILED,
    MIGRATION_STATUS_CANCELLING,
    MIGRATION_STATUS_CANCELLED,
    MIGRATION_STATUS__MAX
} MigrationStatus;

/* "none", "setup", "active", "postcopy-active", ... as QMP says it. */
const char *migration_status_name(MigrationStatus s);

typedef struct MigrationParams {
    uint64_t max_bandwidth;         /* bytes per second, 0 = unlimited */
    uint64_t downtime_limit_ms;     /* 0 = QEMU's default, 300 ms */
    /* Auto-converge (QEMU's capability and parameters): once per period of
     * at least a second of dirty syncs, if the guest dirtied more than
     * throttle_trigger_threshold % of the bytes sent in that period, twice,
     * the vCPUs are throttled: cpu_throttle_initial % first, then raised
     * by cpu_throttle_increment (or, with tailslow, by what the excess
     * suggests, at most the increment), up to max_cpu_throttle. */
    bool auto_converge;
    unsigned throttle_trigger_threshold;    /* 1..100 */
    unsigned cpu_throttle_initial;          /* 1..99 */
    unsigned cpu_throttle_increment;        /* 1..99 */
    unsigned max_cpu_throttle;              /* 1..99 */
    bool cpu_throttle_tailslow;
    /* Capabilities that change the stream: return-path opens one (the
     * destination's SHUT decides the outcome); postcopy-ram advises
     * postcopy and allows migration_job_start_postcopy (it implies the
     * return path); postcopy-preempt sends requested pages on the job's
     * 'urgent' channel; switchover-ack waits for the destination's ack
     * before stopping the VM. */
    bool return_path;
    bool postcopy_ram;
    bool postcopy_preempt;
    bool switchover_ack;
    /* Capability dirty-bitmaps: the bitmaps may follow in postcopy. With
     * it, and without postcopy_ram, the source advises postcopy with no
     * payload and migration_job_start_postcopy switches once RAM fits the
     * downtime and the bitmaps do not (QEMU's rule); the bitmaps then
     * stream while the destination runs. */
    bool postcopy_bitmaps;
    /* QEMU's max-postcopy-bandwidth: bytes per second after the
     * switchover, 0 = unlimited. */
    uint64_t max_postcopy_bandwidth;
    /* QEMU's parameter multifd-channels (used with capability multifd,
     * which the VMM sets up on RAM before the job starts). */
    unsigned multifd_channels;
} MigrationParams;

/* QEMU 7.2's defaults for the throttle parameters above. */
#define MIGRATION_THROTTLE_TRIGGER_DEFAULT  50
#define MIGRATION_THROTTLE_INITIAL_DEFAULT  20
#define MIGRATION_THROTTLE_INCREMENT_DEFAULT 10
#define MIGRATION_THROTTLE_MAX_DEFAULT      99

/* The next throttle percentage when a period dirtied 'dirty' bytes against
 * a threshold of 'threshold' bytes (the trigger share of what was sent),
 * given the current percentage 'now' (0 = not throttling). */
unsigned migration_throttle_next(const MigrationParams *p, unsigned now,
                                 uint64_t dirty, uint64_t threshold);

typedef struct MigrationHooks {
    /* Stop the guest for the final copy (runstate finish-migrate). */
    bool (*stop_vm)(void *opaque, GError **errp);
    /* On the migration thread when done: 'err' NULL on success (the source
     * goes postmigrate); else the VM must resume if stop_vm ran. */
    void (*finished)(void *opaque, const GError *err);
    /* On the migration thread: throttle the vCPUs by 'pct' % of their time
     * (0: stop throttling). May be NULL; the job calls it with 0 before
     * 'finished' whenever it throttled. */
    void (*throttle)(void *opaque, unsigned pct);
    /* On the migration thread, VM stopped, after the device state and
     * before EOF: hand the disks over (flush, drop write locks). May be
     * NULL. A failure fails the migration; 'finished' must then take the
     * disks back. */
    bool (*inactivate_disks)(void *opaque, GError **errp);
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
    unsigned cpu_throttle_percentage;   /* auto-converge, 0 = none */
    uint64_t postcopy_requests;     /* pages the destination asked for */
    uint64_t multifd_bytes;         /* of 'transferred', on multifd */
    /* RAM's bytes while the guest ran, while it was stopped for the
     * switchover, and after postcopy began (QEMU's precopy-bytes,
     * downtime-bytes, postcopy-bytes; postcopy has no downtime bytes). */
    uint64_t precopy_bytes, downtime_bytes, postcopy_bytes;
    uint64_t zero_copy_copied;      /* syncs zero-copy-send had to copy */
    bool dirty_log_done;            /* postcopy: no dirty sync any more */
    bool postcopy;                  /* the destination may run the guest:
                                     * the source must never resume it */
    char error_desc[256];           /* why it failed, was cancelled, paused */
} MigrationStats;

typedef struct MigrationJob MigrationJob;

/* Start migrating 'sv' into 'f' and, with postcopy-preempt, the second
 * channel 'urgent' (else NULL); the job owns and closes both. 'ram' may be
 * NULL without postcopy; it feeds the statistics. */
MigrationJob *migration_job_start(SaveVM *sv, QEMUFile *f, QEMUFile *urgent,
                                  RamMigration *ram,
                                  const MigrationParams *params,
                                  const MigrationHooks *hooks);
/* Ask the job to stop; it ends cancelled at its next iteration. */
void migration_job_cancel(MigrationJob *job);
void migration_job_get_stats(MigrationJob *job, MigrationStats *out);
/* A status the job went through, with the dirty syncs RAM had made by then
 * (MIGRATION events and MIGRATION_PASS events interleave in that order). */
typedef struct MigrationStatusChange {
    MigrationStatus status;
    uint64_t syncs;
} MigrationStatusChange;

/* Move the status changes since the last call into 'out' (of
 * MigrationStatusChange), oldest first. */
void migration_job_take_statuses(MigrationJob *job, GArray *out);

/* migrate-start-postcopy: switch at the next step (harmless once done). */
bool migration_job_start_postcopy(MigrationJob *job, GError **errp);
/* Whether the job has switched to postcopy (any thread). */
bool migration_job_in_postcopy(MigrationJob *job);
/* migrate-pause: cut the channels of an active postcopy on purpose. */
bool migration_job_pause(MigrationJob *job, GError **errp);
/* migrate with resume: new channels for a paused postcopy (owned by the
 * job from now on, closed on failure). */
bool migration_job_resume(MigrationJob *job, QEMUFile *f, QEMUFile *urgent,
                          GError **errp);
/* Wait for the thread; false with the failure if it did not complete. */
bool migration_job_wait(MigrationJob *job, GError **errp);
void migration_job_free(MigrationJob *job);

#endif
