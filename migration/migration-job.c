/*
 * The outgoing precopy migration thread (include/migration/migration-job.h).
 * Each loop first asks how much is pending (RAM syncs its dirty bitmap when
 * a round has been sent); if that fits in the downtime limit at the
 * bandwidth measured over the last 100 ms window, the VM is stopped and the
 * rest goes in one final burst. Otherwise one more iteration runs, unless
 * this window's byte budget (max_bandwidth / 10) is spent, in which case the
 * thread sleeps to the window's end. With auto-converge, each dirty sync
 * that closes a period of at least a second compares what the guest dirtied
 * with what was sent and raises the vCPU throttle as QEMU does.
 * Statistics are published under a lock.
 */
#include <string.h>

#include "migration/migration-job.h"

#define WINDOW_US               (100 * 1000)
#define DEFAULT_DOWNTIME_MS     300
#define THROTTLE_PERIOD_US      (1000 * 1000)

struct MigrationJob {
    SaveVM *sv;
    QEMUFile *f;
    RamMigration *ram;
    MigrationParams params;
    MigrationHooks hooks;
    GThread *thread;
    int cancel;                     /* atomic */
    GError *error;                  /* the thread's outcome */

    GMutex lock;                    /* stats */
    MigrationStats stats;

    /* thread-private */
    gint64 start_us;
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

unsigned migration_throttle_next(const MigrationParams *p, unsigned now,
                                 uint64_t dirty, uint64_t threshold)
{
    unsigned max = MIN(p->max_cpu_throttle, 99);
    uint64_t cpu_now, cpu_ideal, inc;

    if (!now) {
        return MIN(p->cpu_throttle_initial, max);
    }
    if (!p->cpu_throttle_tailslow || !dirty) {
        return MIN(now + p->cpu_throttle_increment, max);
    }
    /* Tailslow: give the vCPUs the share of time that would have dirtied
     * just the threshold, but never raise by more than the increment. */
    cpu_now = 100 - now;
    cpu_ideal = (uint64_t)(cpu_now * ((double)threshold / dirty));
    inc = MIN(cpu_now - MIN(cpu_ideal, cpu_now), p->cpu_throttle_increment);
    return MIN(now + inc, max);
}

const char *migration_status_name(MigrationStatus s)
{
    static const char *const names[] = {
        [MIGRATION_STATUS_NONE] = "none",
        [MIGRATION_STATUS_SETUP] = "setup",
        [MIGRATION_STATUS_ACTIVE] = "active",
        [MIGRATION_STATUS_DEVICE] = "device",
        [MIGRATION_STATUS_COMPLETED] = "completed",
        [MIGRATION_STATUS_FAILED] = "failed",
        [MIGRATION_STATUS_CANCELLING] = "cancelling",
        [MIGRATION_STATUS_CANCELLED] = "cancelled",
    };

    return s < G_N_ELEMENTS(names) ? names[s] : "unknown";
}

static uint64_t elapsed_ms(const MigrationJob *job)
{
    return (g_get_monotonic_time() - job->start_us) / 1000;
}

static void set_status(MigrationJob *job, MigrationStatus s)
{
    g_mutex_lock(&job->lock);
    /* A cancel request wins over progress, but not over the end states. */
    if (job->stats.status != MIGRATION_STATUS_CANCELLING ||
        s >= MIGRATION_STATUS_COMPLETED) {
        job->stats.status = s;
    }
    g_mutex_unlock(&job->lock);
}

/* Refresh the counters QMP shows; pending is RAM's dirty bytes. */
static void publish(MigrationJob *job, uint64_t pending)
{
    RamMigrationStats rs = { 0 };

    if (job->ram) {
        rs = ram_migration_stats(job->ram);
    }
    g_mutex_lock(&job->lock);
    job->stats.total_time_ms = elapsed_ms(job);
    if (job->f) {
        job->stats.transferred = qemu_file_tell(job->f);
    }
    job->stats.remaining = pending;
    job->stats.total = rs.total;
    job->stats.duplicate = rs.duplicate;
    job->stats.normal = rs.normal;
    job->stats.dirty_sync_count = rs.dirty_sync_count;
    job->stats.mbps = job->bytes_per_ms * 1000 * 8 / 1e6;
    job->stats.expected_downtime_ms = job->bytes_per_ms > 0 ?
        (uint64_t)(pending / job->bytes_per_ms) : 0;
    g_mutex_unlock(&job->lock);
}

static uint64_t window_budget(const MigrationJob *job)
{
    return job->params.max_bandwidth / (1000 * 1000 / WINDOW_US);
}

/* Close the bandwidth window when it is over; measure what it carried. */
static void roll_window(MigrationJob *job)
{
    gint64 now = g_get_monotonic_time();
    uint64_t bytes = qemu_file_tell(job->f);

    if (now - job->window_start_us < WINDOW_US) {
        return;
    }
    job->bytes_per_ms = (double)(bytes - job->window_start_bytes) * 1000 /
                        (now - job->window_start_us);
    job->window_start_us = now;
    job->window_start_bytes = bytes;
    qemu_file_reset_rate_limit(job->f);
}

static void set_throttle(MigrationJob *job, unsigned pct)
{
    job->throttle = pct;
    if (job->hooks.throttle) {
        job->hooks.throttle(job->hooks.opaque, pct);
    }
    g_mutex_lock(&job->lock);
    job->stats.cpu_throttle_percentage = pct;
    g_mutex_unlock(&job->lock);
}

static void start_throttle_period(MigrationJob *job, const RamMigrationStats *rs)
{
    job->period_start_us = g_get_monotonic_time();
    job->period_start_bytes = qemu_file_tell(job->f);
    job->period_start_dirtied = rs->dirtied_pages;
    job->period_syncs = rs->dirty_sync_count;
}

/* After a dirty sync that ends a period of a second or more: QEMU's rule,
 * the guest outpaced the trigger share of the link twice -> throttle more. */
static void check_throttle(MigrationJob *job)
{
    RamMigrationStats rs;
    uint64_t sent, dirty, threshold;

    if (!job->params.auto_converge || !job->ram) {
        return;
    }
    rs = ram_migration_stats(job->ram);
    if (!job->period_start_us) {
        start_throttle_period(job, &rs);
        return;
    }
    if (rs.dirty_sync_count == job->period_syncs ||
        g_get_monotonic_time() - job->period_start_us < THROTTLE_PERIOD_US) {
        return;
    }
    sent = qemu_file_tell(job->f) - job->period_start_bytes;
    dirty = (rs.dirtied_pages - job->period_start_dirtied) * RAM_PAGE_SIZE;
    threshold = sent * job->params.throttle_trigger_threshold / 100;
    if (dirty > threshold && ++job->dirty_high >= 2) {
        job->dirty_high = 0;
        set_throttle(job, migration_throttle_next(&job->params, job->throttle,
                                                  dirty, threshold));
    }
    start_throttle_period(job, &rs);
}

static bool cancelled(MigrationJob *job, GError **errp)
{
    if (!g_atomic_int_get(&job->cancel)) {
        return false;
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "migration cancelled");
    return true;
}

/* Whether what is left fits in the downtime limit: the cheap estimate
 * first, and only if that fits, the exact figure (a dirty-log sync). */
static bool converged(MigrationJob *job, uint64_t *pending)
{
    uint64_t must = 0, can = 0;
    uint64_t downtime = job->params.downtime_limit_ms ?
                        job->params.downtime_limit_ms : DEFAULT_DOWNTIME_MS;
    double threshold = job->bytes_per_ms * downtime;

    /* Postcopy-capable state (dirty bitmaps) goes in the final burst
     * anyway, so only what must precede the switchover counts, as in QEMU. */
    savevm_save_pending(job->sv, &must, &can);
    *pending = must;
    if (*pending > threshold) {
        return false;
    }
    savevm_save_pending_exact(job->sv, &must, &can);
    *pending = must;
    if (*pending > threshold) {
        return false;
    }
    /* It fits, but if rounds still shrink the dirty set fast, one more
     * round costs little time and cuts the downtime (a guest dirtying at a
     * tenth of the bandwidth leaves a tenth behind per round). */
    if (*pending <= threshold / 16 || job->fit_rounds >= 3 ||
        (job->last_fit && *pending * 2 > job->last_fit)) {
        return true;
    }
    job->last_fit = *pending;
    job->fit_rounds++;
    job->finish_round = true;
    return false;
}

static bool iterate_until_converged(MigrationJob *job, GError **errp)
{
    uint64_t pending;

    job->window_start_us = g_get_monotonic_time();
    job->window_start_bytes = qemu_file_tell(job->f);
    qemu_file_set_rate_limit(job->f, window_budget(job));
    for (;;) {
        if (cancelled(job, errp)) {
            return false;
        }
        roll_window(job);
        check_throttle(job);
        if (job->finish_round) {
            uint64_t can = 0;

            pending = 0;
            savevm_save_pending(job->sv, &pending, &can);
        } else if (converged(job, &pending)) {
            publish(job, pending);
            return true;
        }
        publish(job, pending);
        if (qemu_file_rate_limit_exceeded(job->f) &&
            !qemu_file_get_error(job->f)) {
            g_usleep(MAX(0, job->window_start_us + WINDOW_US -
                            g_get_monotonic_time()));
            continue;
        }
        switch (savevm_save_iterate(job->sv, job->f, false, errp)) {
        case -1:
            return false;
        case 1:
            job->finish_round = false;      /* this round's pages are out */
            break;
        }
    }
}

static bool complete(MigrationJob *job, GError **errp)
{
    gint64 stop_start;
    bool ok;

    /* QEMU 7.2 stays "active" here ("device" only with
     * pause-before-switchover, which tern does not offer). */
    if (job->hooks.stop_vm && !job->hooks.stop_vm(job->hooks.opaque, errp)) {
        return false;
    }
    stop_start = g_get_monotonic_time();
    /* The final burst is not rate limited: the guest is waiting. */
    qemu_file_set_rate_limit(job->f, 0);
    ok = savevm_save_complete_precopy_then(job->sv, job->f,
                                           job->hooks.inactivate_disks,
                                           job->hooks.opaque, errp);
    g_mutex_lock(&job->lock);
    job->stats.downtime_ms = (g_get_monotonic_time() - stop_start) / 1000;
    g_mutex_unlock(&job->lock);
    return ok;
}

static bool run(MigrationJob *job, GError **errp)
{
    bool ok;

    set_status(job, MIGRATION_STATUS_SETUP);
    ok = savevm_save_header(job->sv, job->f, errp) &&
         savevm_save_setup(job->sv, job->f, errp);
    g_mutex_lock(&job->lock);
    job->stats.setup_time_ms = elapsed_ms(job);
    g_mutex_unlock(&job->lock);
    if (ok) {
        set_status(job, MIGRATION_STATUS_ACTIVE);
        ok = iterate_until_converged(job, errp) && !cancelled(job, errp) &&
             complete(job, errp);
    }
    savevm_save_cleanup(job->sv);
    /* Whatever the outcome, the guest runs at full speed again (on the
     * destination it never was throttled). */
    if (job->throttle) {
        set_throttle(job, 0);
    }
    return ok;
}

static void finish(MigrationJob *job, bool ok)
{
    bool was_cancelled = g_atomic_int_get(&job->cancel);

    publish(job, ok ? 0 : job->stats.remaining);
    if (!ok && was_cancelled) {
        /* The channel was shut down by the cancel: say why, not EPIPE. */
        g_clear_error(&job->error);
        g_set_error(&job->error, TERN_ERROR, TERN_ERR_FAILED,
                    "migration cancelled");
    }
    g_mutex_lock(&job->lock);
    if (job->error) {
        g_strlcpy(job->stats.error_desc, job->error->message,
                  sizeof(job->stats.error_desc));
    }
    g_mutex_unlock(&job->lock);
    set_status(job, ok ? MIGRATION_STATUS_COMPLETED :
                    was_cancelled ? MIGRATION_STATUS_CANCELLED :
                                    MIGRATION_STATUS_FAILED);
    if (job->hooks.finished) {
        job->hooks.finished(job->hooks.opaque, job->error);
    }
}

static gpointer job_thread(gpointer opaque)
{
    MigrationJob *job = opaque;
    bool ok = run(job, &job->error);
    uint64_t transferred = qemu_file_tell(job->f);
    QEMUFile *f;

    /* From here a cancel can no longer shut the channel down. */
    g_mutex_lock(&job->lock);
    f = job->f;
    job->f = NULL;
    g_mutex_unlock(&job->lock);
    /* Closing flushes: a failure there fails the migration too. */
    ok = qemu_fclose(f, ok ? &job->error : NULL) && ok;
    g_mutex_lock(&job->lock);
    job->stats.transferred = transferred;
    job->stats.total_time_ms = elapsed_ms(job);
    g_mutex_unlock(&job->lock);
    finish(job, ok);
    return NULL;
}

MigrationJob *migration_job_start(SaveVM *sv, QEMUFile *f, RamMigration *ram,
                                  const MigrationParams *params,
                                  const MigrationHooks *hooks)
{
    MigrationJob *job = g_new0(MigrationJob, 1);

    job->sv = sv;
    job->f = f;
    job->ram = ram;
    job->params = *params;
    if (hooks) {
        job->hooks = *hooks;
    }
    g_mutex_init(&job->lock);
    job->start_us = g_get_monotonic_time();
    job->thread = g_thread_new("migration", job_thread, job);
    return job;
}

void migration_job_cancel(MigrationJob *job)
{
    g_atomic_int_set(&job->cancel, 1);
    g_mutex_lock(&job->lock);
    if (job->stats.status < MIGRATION_STATUS_COMPLETED) {
        job->stats.status = MIGRATION_STATUS_CANCELLING;
        /* A write blocked on a stalled peer would never see the flag. */
        if (job->f) {
            qemu_file_shutdown_channel(job->f);
        }
    }
    g_mutex_unlock(&job->lock);
}

void migration_job_get_stats(MigrationJob *job, MigrationStats *out)
{
    g_mutex_lock(&job->lock);
    *out = job->stats;
    g_mutex_unlock(&job->lock);
}

bool migration_job_wait(MigrationJob *job, GError **errp)
{
    if (job->thread) {
        g_thread_join(job->thread);
        job->thread = NULL;
    }
    if (job->error) {
        g_propagate_error(errp, g_error_copy(job->error));
        return false;
    }
    return true;
}

void migration_job_free(MigrationJob *job)
{
    if (!job) {
        return;
    }
    migration_job_wait(job, NULL);
    g_clear_error(&job->error);
    g_mutex_clear(&job->lock);
    g_free(job);
}
