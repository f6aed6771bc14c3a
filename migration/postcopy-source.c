/*
 * The source's postcopy, on the migration job's thread, in seed 004's and
 * QEMU 7.2's order.
 *
 * Switchover: status postcopy-active, the VM stops, the disks are handed
 * over, iterable state that cannot follow in postcopy ends (END sections:
 * RAM too when only the dirty bitmaps follow), with RAM postcopy RAM syncs
 * a last time and discards on the destination every page still dirty
 * (nothing else depends on RAM following), PING 2, then one PACKAGED blob
 * holding LISTEN, the device state, PING 3 and RUN; PING 4 (QEMU sends the
 * pings with RAM postcopy only). From the moment that blob is out the
 * destination may run the guest, so the source never resumes it again.
 *
 * Streaming, within max-postcopy-bandwidth: RAM keeps iterating (requested
 * pages first, see ram-postcopy.c; they never wait for the next window)
 * until nothing is dirty, then the dirty bitmaps' bits, then END + EOF, EOS
 * on the preempt channel, and the destination's SHUT. When a channel
 * breaks (or migrate-pause cuts it) during RAM postcopy the job goes
 * postcopy-paused, closes everything and waits for migrate's resume to
 * hand it new channels: postcopy-recover, RECV_BITMAP (RAM rebuilds its
 * dirty bitmap from what the destination has), every live section's
 * resume_prepare (the bitmaps start over), POSTCOPY_RESUME, RESUME_ACK,
 * postcopy-active again, and streaming goes on from there. Without RAM
 * postcopy nothing recovers (the seed's rule): the migration fails.
 */
#include "migration-job-int.h"
#include "ram-int.h"
#include "tern/thread.h"

/* ---- the switchover ---- */

static bool send_package(MigrationJob *job, GError **errp)
{
    QEMUFile *pkg = qemu_file_new_mem_output();
    const GByteArray *data;
    bool ok;

    savevm_send_postcopy_listen(pkg);
    ok = savevm_save_devices(job->sv, pkg, errp);
    if (job->params.postcopy_ram) {
        savevm_send_ping(pkg, 3);
    }
    savevm_send_postcopy_run(pkg);
    data = qemu_file_mem_output_data(pkg);
    ok = ok && savevm_send_packaged(job->f, data->data, data->len, errp);
    qemu_fclose(pkg, NULL);
    return ok && qemu_file_check(job->f, errp);
}

bool postcopy_switchover(MigrationJob *job, GError **errp)
{
    gint64 stop_start;

    job_set_status(job, MIGRATION_STATUS_POSTCOPY_ACTIVE);
    /* With a preempt channel the background stream on this thread gives
     * way to the return-path thread that sends requested pages. */
    if (job->params.postcopy_preempt) {
        tern_thread_yield_priority(TERN_BACKGROUND_NICE);
    }
    if (job->hooks.stop_vm && !job->hooks.stop_vm(job->hooks.opaque, errp)) {
        return false;
    }
    job_vm_stopped(job, true);
    stop_start = g_get_monotonic_time();
    qemu_file_set_rate_limit(job->f, 0);
    if ((job->hooks.inactivate_disks &&
         !job->hooks.inactivate_disks(job->hooks.opaque, errp)) ||
        !savevm_save_complete_precopy(job->sv, job->f, true, true, errp) ||
        (job->params.postcopy_ram &&
         !ram_migration_postcopy_start(job->ram, job->f, errp))) {
        return false;
    }
    g_mutex_lock(&job->lock);
    job->stats.dirty_log_done = true;
    g_mutex_unlock(&job->lock);
    if (job->params.postcopy_ram) {
        savevm_send_ping(job->f, 2);
    }
    if (!send_package(job, errp)) {
        return false;
    }
    g_mutex_lock(&job->lock);
    job->stats.postcopy = true;
    job->stats.downtime_ms = (g_get_monotonic_time() - stop_start) / 1000;
    g_mutex_unlock(&job->lock);
    if (job->params.postcopy_ram) {
        savevm_send_ping(job->f, 4);
    }
    return qemu_file_check(job->f, errp);
}

/* ---- streaming ---- */

static uint64_t ram_remaining(MigrationJob *job)
{
    return job->ram ? ram_migration_stats(job->ram).remaining : 0;
}

/* Pages the destination waits for, queued for this thread. */
static bool requests_waiting(MigrationJob *job)
{
    return job->params.postcopy_ram && !job->urgent &&
           g_atomic_int_get(&job->ram->nr_requests);
}

/* Pages the destination waits for go at once, whatever the window's
 * budget (QEMU's rule): RAM's iteration serves them first, then sends one
 * background page at most, as the budget is spent. */
static bool serve_requests(MigrationJob *job, GError **errp)
{
    uint64_t budget = qemu_file_get_rate_limit(job->f);
    uint64_t used = qemu_file_tell(job->f) - job->window_start_bytes;

    qemu_file_set_rate_limit(job->f, used + 1);
    if (savevm_save_iterate(job->sv, job->f, true, errp) < 0) {
        return false;
    }
    qemu_file_set_rate_limit(job->f, budget);
    return true;
}

/* max-postcopy-bandwidth: the window's budget is spent; wait for its end. */
static bool wait_window(MigrationJob *job, GError **errp)
{
    while (job_window_left_us(job) && !g_atomic_int_get(&job->cancel)) {
        if (requests_waiting(job) && !serve_requests(job, errp)) {
            return false;
        }
        g_usleep(MIN(job_window_left_us(job), 1000));
    }
    return true;
}

/* Everything after the package, on the current channels; false with the
 * reason when anything fails (the caller decides: pause or fail). */
static bool stream_rest(MigrationJob *job, GError **errp)
{
    bool fatal;

    job_start_window(job, job->params.max_postcopy_bandwidth);
    for (;;) {
        int ret;

        if (job_cancelled(job, errp) || job_rp_failed(job, &fatal, errp)) {
            return false;
        }
        job_publish(job, ram_remaining(job));
        job_roll_window(job);
        if (qemu_file_rate_limit_exceeded(job->f) &&
            !qemu_file_get_error(job->f)) {
            if (!wait_window(job, errp)) {
                return false;
            }
            continue;
        }
        ret = savevm_save_iterate(job->sv, job->f, true, errp);
        if (ret < 0) {
            return false;
        }
        if (ret == 1) {
            break;
        }
    }
    if (!savevm_save_complete_postcopy(job->sv, job->f, errp)) {
        return false;
    }
    if (job->urgent) {
        ram_migration_end_urgent(job->ram, job->urgent);
        if (!qemu_file_check(job->urgent, errp)) {
            return false;
        }
    }
    job_publish(job, 0);
    /* Bitmaps alone need no return path (QEMU opens none for them). */
    return !job->rp || job_rp_wait_shut(job, errp);
}

/* A broken connection pauses a RAM postcopy; cancelling (quit) or a
 * destination that broke the protocol fails, and so does any break when
 * only the dirty bitmaps follow (the destination does not recover those,
 * as the seed: it runs on without them). A failure of the return path
 * says more than the EPIPE the main channel got from its shutdown. */
static bool may_pause(MigrationJob *job, GError **cause)
{
    GError *rp_err = NULL;
    bool fatal = false;

    if (job_rp_failed(job, &fatal, &rp_err)) {
        g_clear_error(cause);
        *cause = rp_err;
    }
    if (!job->params.postcopy_ram && *cause) {
        g_prefix_error(cause, "postcopy of the dirty bitmaps failed: ");
    }
    return !fatal && !g_atomic_int_get(&job->cancel) &&
           job->params.postcopy_ram;
}

static void close_channels(MigrationJob *job)
{
    QEMUFile *f, *urgent;

    g_mutex_lock(&job->lock);
    f = job->f;
    urgent = job->urgent;
    if (f) {
        qemu_file_shutdown_channel(f);      /* ends the return path too */
    }
    g_mutex_unlock(&job->lock);
    /* The multifd channels go too; a resume brings new ones. */
    ram_migration_multifd_shutdown(job->ram);
    job_rp_stop(job);
    g_mutex_lock(&job->lock);
    job->f = job->urgent = NULL;
    g_mutex_unlock(&job->lock);
    qemu_fclose(f, NULL);
    qemu_fclose(urgent, NULL);
}

/* postcopy-paused until migration_job_resume hands over new channels;
 * false (cancelled) if the VMM quits first. */
static bool wait_for_channels(MigrationJob *job, const GError *cause,
                              GError **errp)
{
    g_autofree char *why = NULL;
    bool ok;

    g_mutex_lock(&job->lock);
    why = g_strdup_printf("postcopy paused: %s", job->pause_requested ?
                          "by migrate-pause" : cause->message);
    job->pause_requested = false;
    g_mutex_unlock(&job->lock);
    close_channels(job);
    job_set_error_desc(job, why);
    tern_error_report("%s", why);
    job_set_status(job, MIGRATION_STATUS_POSTCOPY_PAUSED);
    g_mutex_lock(&job->lock);
    while (!job->resume_f && !g_atomic_int_get(&job->cancel)) {
        g_cond_wait(&job->cond, &job->lock);
    }
    ok = job->resume_f && !g_atomic_int_get(&job->cancel);
    if (ok) {
        job->f = g_steal_pointer(&job->resume_f);
        job->urgent = g_steal_pointer(&job->resume_urgent);
        job_set_status_locked(job, MIGRATION_STATUS_POSTCOPY_RECOVER);
    }
    g_mutex_unlock(&job->lock);
    if (!ok) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "migration cancelled");
    }
    return ok;
}

/* On the new channels: the destination's received bitmap, then RESUME. */
static bool handshake(MigrationJob *job, GError **errp)
{
    qemu_file_set_rate_limit(job->f, 0);
    job->rp = qemu_file_get_return_path(job->f, errp);
    if (!job->rp) {
        return false;
    }
    job_rp_start(job);
    savevm_send_recv_bitmap(job->f, ram_migration_block_name(job->ram));
    if (!qemu_file_check(job->f, errp) ||
        !job_rp_wait_for(job, &job->bitmap_loaded, errp)) {
        return false;
    }
    savevm_save_resume_prepare(job->sv);
    savevm_send_postcopy_resume(job->f);
    if (!qemu_file_check(job->f, errp) ||
        !job_rp_wait_for(job, &job->resume_acked, errp)) {
        return false;
    }
    job_set_status(job, MIGRATION_STATUS_POSTCOPY_ACTIVE);
    return true;
}

bool postcopy_stream(MigrationJob *job, GError **errp)
{
    GError *cause = NULL;

    while (!stream_rest(job, &cause)) {
        while (may_pause(job, &cause)) {
            if (!wait_for_channels(job, cause, errp)) {
                g_clear_error(&cause);
                return false;
            }
            g_clear_error(&cause);
            if (handshake(job, &cause)) {
                break;
            }
        }
        if (cause) {
            g_propagate_error(errp, cause);
            return false;
        }
    }
    return true;
}

/* ---- what QMP asks of a running job ---- */

bool migration_job_start_postcopy(MigrationJob *job, GError **errp)
{
    if (!job->params.postcopy_ram && !job->params.postcopy_bitmaps) {
        return tern_invalid(errp, "Enable postcopy with "
                            "migrate_set_capability before the start of "
                            "migration");
    }
    g_atomic_int_set(&job->start_postcopy, 1);
    return true;
}

bool migration_job_in_postcopy(MigrationJob *job)
{
    MigrationStatus s = migration_job_status(job);

    return s >= MIGRATION_STATUS_POSTCOPY_ACTIVE &&
           s <= MIGRATION_STATUS_POSTCOPY_RECOVER;
}

bool migration_job_pause(MigrationJob *job, GError **errp)
{
    bool ok;

    if (!job->params.postcopy_ram) {
        return tern_invalid(errp, "a postcopy of dirty bitmaps alone does "
                            "not recover: it cannot be paused");
    }
    g_mutex_lock(&job->lock);
    ok = job->stats.status == MIGRATION_STATUS_POSTCOPY_ACTIVE && job->f;
    if (ok) {
        job->pause_requested = true;
        qemu_file_shutdown_channel(job->f);
    }
    g_mutex_unlock(&job->lock);
    if (!ok) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "migrate-pause is currently only supported during "
                    "postcopy-active state");
    }
    return ok;
}

bool migration_job_resume(MigrationJob *job, QEMUFile *f, QEMUFile *urgent,
                          GError **errp)
{
    bool ok;

    g_mutex_lock(&job->lock);
    ok = job->stats.status == MIGRATION_STATUS_POSTCOPY_PAUSED &&
         !job->resume_f;
    if (ok) {
        job->resume_f = f;
        job->resume_urgent = urgent;
        g_cond_broadcast(&job->cond);
    }
    g_mutex_unlock(&job->lock);
    if (!ok) {
        qemu_fclose(f, NULL);
        qemu_fclose(urgent, NULL);
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Cannot resume if there is no paused migration");
    }
    return ok;
}
