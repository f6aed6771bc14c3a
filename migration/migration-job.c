/*
 * The outgoing precopy migration thread (include/migration/migration-job.h).
 * Each loop first asks how much is pending (RAM syncs its dirty bitmap when
 * a round has been sent); if that fits in the downtime limit at the
 * bandwidth measured over the last 100 ms window, the VM is stopped and the
 * rest goes in one final burst. Otherwise, if postcopy was asked for, the
 * job switches over (postcopy-source.c), else one more iteration runs,
 * unless this window's byte budget (max_bandwidth / 10) is spent, in which
 * case the thread sleeps to the window's end. With auto-converge, each
 * dirty sync that closes a period of at least a second compares what the
 * guest dirtied with what was sent and raises the vCPU throttle as QEMU
 * does. With a return path (return-path-source.c) the destination's SHUT
 * decides the outcome. Statistics and statuses are published under a lock.
 */
#include <string.h>

#include "migration-job-int.h"

#define WINDOW_US               (100 * 1000)
#define DEFAULT_DOWNTIME_MS     300
#define THROTTLE_PERIOD_US      (1000 * 1000)

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
        [MIGRATION_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
        [MIGRATION_STATUS_POSTCOPY_PAUSED] = "postcopy-paused",
        [MIGRATION_STATUS_POSTCOPY_RECOVER] = "postcopy-recover",
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

void job_set_status_locked(MigrationJob *job, MigrationStatus s)
{
    /* A cancel request wins over progress, but not over the end states. */
    if (job->stats.status != s &&
        (job->stats.status != MIGRATION_STATUS_CANCELLING ||
         s >= MIGRATION_STATUS_COMPLETED)) {
        MigrationStatusChange c = {
            s, job->ram ? ram_migration_stats(job->ram).dirty_sync_count : 0,
        };

        job->stats.status = s;
        g_array_append_val(job->statuses, c);
    }
}

void job_set_status(MigrationJob *job, MigrationStatus s)
{
    g_mutex_lock(&job->lock);
    job_set_status_locked(job, s);
    g_mutex_unlock(&job->lock);
}

MigrationStatus migration_job_status(MigrationJob *job)
{
    MigrationStatus s;

    g_mutex_lock(&job->lock);
    s = job->stats.status;
    g_mutex_unlock(&job->lock);
    return s;
}

void job_set_error_desc(MigrationJob *job, const char *msg)
{
    g_mutex_lock(&job->lock);
    g_strlcpy(job->stats.error_desc, msg, sizeof(job->stats.error_desc));
    g_mutex_unlock(&job->lock);
}

void job_vm_stopped(MigrationJob *job, bool postcopy)
{
    job->vm_stopped = true;
    job->stopped_for_postcopy = postcopy;
    job->ram_at_stop = job->ram ? ram_migration_stats(job->ram).transferred
                                : 0;
}

/* QEMU's split of RAM's bytes: while the guest ran, while it was stopped
 * for the switchover, after postcopy began (lock held). */
static void publish_ram_phases(MigrationJob *job, uint64_t ram_bytes)
{
    uint64_t before = job->vm_stopped ? job->ram_at_stop : ram_bytes;

    job->stats.precopy_bytes = before;
    job->stats.downtime_bytes = job->stopped_for_postcopy ? 0
                                                          : ram_bytes - before;
    job->stats.postcopy_bytes = job->stopped_for_postcopy ? ram_bytes - before
                                                          : 0;
}

void job_publish(MigrationJob *job, uint64_t pending)
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
    job->stats.postcopy_requests = rs.postcopy_requests;
    job->stats.multifd_bytes = rs.multifd_bytes;
    job->stats.zero_copy_copied = rs.zero_copy_copied;
    publish_ram_phases(job, rs.transferred);
    job->stats.expected_downtime_ms = job->bytes_per_ms > 0 ?
        (uint64_t)(pending / job->bytes_per_ms) : 0;
    g_mutex_unlock(&job->lock);
}

/* Bytes per window at 'bandwidth' bytes per second (0: unlimited). */
static uint64_t window_budget(uint64_t bandwidth)
{
    return bandwidth / (1000 * 1000 / WINDOW_US);
}

void job_start_window(MigrationJob *job, uint64_t bandwidth)
{
    job->window_start_us = g_get_monotonic_time();
    job->window_start_bytes = qemu_file_tell(job->f);
    qemu_file_set_rate_limit(job->f, window_budget(bandwidth));
    qemu_file_reset_rate_limit(job->f);
}

/* Close the bandwidth window when it is over; measure what it carried. */
void job_roll_window(MigrationJob *job)
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

/* The window's budget is spent: the rest of it. */
uint64_t job_window_left_us(const MigrationJob *job)
{
    return MAX(0, job->window_start_us + WINDOW_US - g_get_monotonic_time());
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

bool job_cancelled(MigrationJob *job, GError **errp)
{
    if (!g_atomic_int_get(&job->cancel)) {
        return false;
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "migration cancelled");
    return true;
}

/* What the link carries within the downtime limit. */
static double downtime_bytes(const MigrationJob *job)
{
    uint64_t downtime = job->params.downtime_limit_ms ?
                        job->params.downtime_limit_ms : DEFAULT_DOWNTIME_MS;

    return job->bytes_per_ms * downtime;
}

/* Whether what must precede the switchover fits in the downtime limit: the
 * cheap estimate first, and only if that fits, the exact figure (a
 * dirty-log sync). 'can' gets what may follow in postcopy (dirty bitmaps);
 * without a postcopy it goes in the final burst. */
static bool converged(MigrationJob *job, uint64_t *pending, uint64_t *can)
{
    uint64_t must = 0;
    double threshold = downtime_bytes(job);

    *can = 0;
    /* Without the destination's ack the VM may not stop (switchover-ack). */
    if (job->params.switchover_ack &&
        !g_atomic_int_get(&job->switchover_acked)) {
        savevm_save_pending(job->sv, pending, can);
        return false;
    }
    savevm_save_pending(job->sv, &must, can);
    *pending = must;
    if (*pending > threshold) {
        return false;
    }
    savevm_save_pending_exact(job->sv, &must, can);
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

/* What ends the precopy loop. */
enum { ITERATE_ERROR = -1, ITERATE_CONVERGED, ITERATE_POSTCOPY };

/* Postcopy was asked for and may begin (with switchover-ack only once
 * acked). */
static bool postcopy_asked(MigrationJob *job)
{
    return g_atomic_int_get(&job->start_postcopy) &&
           (!job->params.switchover_ack ||
            g_atomic_int_get(&job->switchover_acked));
}

/* RAM postcopy begins while the rest does not fit the downtime (as QEMU,
 * whose RAM then counts as postcopy-able). */
static bool postcopy_now(MigrationJob *job)
{
    return job->params.postcopy_ram && postcopy_asked(job);
}

/* What must precede the switchover fits: a postcopy still begins if what
 * may follow (the bitmaps' bits) does not fit (QEMU's rule, the seed's
 * pending estimate). */
static bool postcopy_after_converging(MigrationJob *job, uint64_t can)
{
    return postcopy_asked(job) && can && can >= downtime_bytes(job);
}

static bool precopy_failed(MigrationJob *job, GError **errp)
{
    bool fatal;

    return job_cancelled(job, errp) || job_rp_failed(job, &fatal, errp);
}

static int iterate_until_converged(MigrationJob *job, GError **errp)
{
    uint64_t pending, can;

    job_start_window(job, job->params.max_bandwidth);
    for (;;) {
        if (precopy_failed(job, errp)) {
            return ITERATE_ERROR;
        }
        job_roll_window(job);
        check_throttle(job);
        if (job->finish_round) {
            pending = 0;
            savevm_save_pending(job->sv, &pending, &can);
        } else if (converged(job, &pending, &can)) {
            job_publish(job, pending);
            return postcopy_after_converging(job, can) ? ITERATE_POSTCOPY
                                                       : ITERATE_CONVERGED;
        }
        job_publish(job, pending);
        if (postcopy_now(job)) {
            return ITERATE_POSTCOPY;
        }
        if (qemu_file_rate_limit_exceeded(job->f) &&
            !qemu_file_get_error(job->f)) {
            g_usleep(job_window_left_us(job));
            continue;
        }
        switch (savevm_save_iterate(job->sv, job->f, false, errp)) {
        case -1:
            return ITERATE_ERROR;
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
    job_vm_stopped(job, false);
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

/* Header, return path, postcopy advice, setup sections. */
static bool begin(MigrationJob *job, GError **errp)
{
    if (!savevm_save_header(job->sv, job->f, errp)) {
        return false;
    }
    if (job->params.return_path) {
        job->rp = qemu_file_get_return_path(job->f, errp);
        if (!job->rp) {
            g_prefix_error(errp, "return path: ");
            return false;
        }
        job_rp_start(job);
        savevm_send_open_return_path(job->f);
        savevm_send_ping(job->f, 1);        /* as QEMU, for traces */
    }
    if (job->params.postcopy_ram) {
        /* x86 guest RAM is 4 KiB pages on both ends: host page summary and
         * target page size. */
        ram_migration_set_postcopy(job->ram, true,
                                   job->params.postcopy_preempt);
        savevm_send_postcopy_advise(job->f, true, RAM_PAGE_SIZE,
                                    RAM_PAGE_SIZE);
    } else if (job->params.postcopy_bitmaps) {
        /* As QEMU: bitmaps alone advise with no payload, whether or not the
         * migration switches later. */
        savevm_send_postcopy_advise(job->f, false, 0, 0);
    }
    return savevm_save_setup(job->sv, job->f, errp);
}

static bool run(MigrationJob *job, GError **errp)
{
    bool ok;

    job_set_status(job, MIGRATION_STATUS_SETUP);
    ok = begin(job, errp);
    g_mutex_lock(&job->lock);
    job->stats.setup_time_ms = elapsed_ms(job);
    g_mutex_unlock(&job->lock);
    if (ok) {
        job_set_status(job, MIGRATION_STATUS_ACTIVE);
        switch (iterate_until_converged(job, errp)) {
        case ITERATE_CONVERGED:
            ok = !job_cancelled(job, errp) && complete(job, errp) &&
                 (!job->rp || job_rp_wait_shut(job, errp));
            break;
        case ITERATE_POSTCOPY:
            ok = postcopy_switchover(job, errp) && postcopy_stream(job, errp);
            break;
        default:
            ok = false;
        }
    }
    if (!ok) {
        job_rp_explain(job, errp);
        ram_migration_multifd_explain(job->ram, errp);
    }
    job_rp_stop(job);
    savevm_save_cleanup(job->sv);
    if (job->ram) {
        ram_migration_set_postcopy(job->ram, false, false);
    }
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

    job_publish(job, ok ? 0 : job->stats.remaining);
    if (!ok && was_cancelled) {
        /* The channel was shut down by the cancel: say why, not EPIPE. */
        g_clear_error(&job->error);
        g_set_error(&job->error, TERN_ERROR, TERN_ERR_FAILED,
                    "migration cancelled");
    }
    if (job->error) {
        job_set_error_desc(job, job->error->message);
    }
    job_set_status(job, ok ? MIGRATION_STATUS_COMPLETED :
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
    uint64_t transferred = job->f ? qemu_file_tell(job->f) : 0;
    QEMUFile *f, *urgent;

    /* From here a cancel can no longer shut the channel down. */
    g_mutex_lock(&job->lock);
    f = job->f;
    urgent = job->urgent;
    job->f = job->urgent = NULL;
    g_mutex_unlock(&job->lock);
    /* Closing flushes: a failure there fails the migration too. */
    ok = qemu_fclose(f, ok ? &job->error : NULL) && ok;
    qemu_fclose(urgent, NULL);
    g_mutex_lock(&job->lock);
    job->stats.transferred = transferred;
    job->stats.total_time_ms = elapsed_ms(job);
    g_mutex_unlock(&job->lock);
    finish(job, ok);
    return NULL;
}

MigrationJob *migration_job_start(SaveVM *sv, QEMUFile *f, QEMUFile *urgent,
                                  RamMigration *ram,
                                  const MigrationParams *params,
                                  const MigrationHooks *hooks)
{
    MigrationJob *job = g_new0(MigrationJob, 1);

    job->sv = sv;
    job->f = f;
    job->urgent = urgent;
    job->ram = ram;
    job->params = *params;
    if (hooks) {
        job->hooks = *hooks;
    }
    job->params.return_path |= job->params.postcopy_ram;
    g_mutex_init(&job->lock);
    g_cond_init(&job->cond);
    job->statuses = g_array_new(false, false, sizeof(MigrationStatusChange));
    job->start_us = g_get_monotonic_time();
    job->thread = g_thread_new("migration", job_thread, job);
    return job;
}

void migration_job_cancel(MigrationJob *job)
{
    g_atomic_int_set(&job->cancel, 1);
    g_mutex_lock(&job->lock);
    if (job->stats.status < MIGRATION_STATUS_COMPLETED) {
        job_set_status_locked(job, MIGRATION_STATUS_CANCELLING);
        /* A write blocked on a stalled peer would never see the flag. */
        if (job->f) {
            qemu_file_shutdown_channel(job->f);
        }
        g_cond_broadcast(&job->cond);       /* a paused postcopy waits */
    }
    g_mutex_unlock(&job->lock);
}

void migration_job_take_statuses(MigrationJob *job, GArray *out)
{
    g_mutex_lock(&job->lock);
    g_array_append_vals(out, job->statuses->data, job->statuses->len);
    g_array_set_size(job->statuses, 0);
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
    g_clear_error(&job->rp_error);
    g_array_free(job->statuses, true);
    g_cond_clear(&job->cond);
    g_mutex_clear(&job->lock);
    g_free(job);
}
