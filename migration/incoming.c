/*
 * The destination of one migration stream (include/migration/incoming.h).
 *
 * Ownership: 'file' (main channel) and 'urgent' (preempt channel) belong to
 * this object; the listen thread swaps 'file' at a pause/recovery, the
 * preempt thread closes each 'urgent' it is done with. 'lock' guards them,
 * the status and its log, the error and the recovery flags; 'cond' wakes
 * the threads waiting for a recovery or for the preempt channel.
 */
#include <string.h>

#include "migration/incoming.h"
#include "migration/return-path.h"
#include "tern/thread.h"


struct MigIncoming {
    SaveVM *sv;
    RamMigration *ram;
    const GuestMemory *mem;
    MigIncomingConfig cfg;
    MigIncomingHooks hooks;
    MigRpIncoming rp;
    UffdPager *pager;               /* RAM postcopy advised */
    GThread *listen_thread, *urgent_thread;
    GError *listen_error;           /* the listen thread's outcome */

    GMutex lock;
    GCond cond;
    MigrationStatus status;
    GArray *log;                    /* statuses not yet taken */
    GError *error;                  /* why paused or failed */
    GError *urgent_error;           /* why the preempt channel broke */
    QEMUFile *file, *urgent;
    bool recovering;                /* migrate-recover is listening */
    bool pause_requested;           /* migrate-pause: say so */
    bool quitting;                  /* shutdown or the loader failed */
    bool bitmaps_lost;              /* postcopy of bitmaps alone broke */
};

MigIncoming *mig_incoming_new(SaveVM *sv, RamMigration *ram,
                              const GuestMemory *mem,
                              const MigIncomingConfig *cfg,
                              const MigIncomingHooks *hooks)
{
    MigIncoming *in = g_new0(MigIncoming, 1);

    in->sv = sv;
    in->ram = ram;
    in->mem = mem;
    in->cfg = *cfg;
    in->hooks = *hooks;
    mig_rp_incoming_init(&in->rp);
    g_mutex_init(&in->lock);
    g_cond_init(&in->cond);
    in->log = g_array_new(false, false, sizeof(MigrationStatus));
    return in;
}

void mig_incoming_free(MigIncoming *in)
{
    if (!in) {
        return;
    }
    g_assert(!in->listen_thread && !in->urgent_thread);
    ram_migration_set_pager(in->ram, NULL);
    uffd_pager_free(in->pager);
    mig_rp_incoming_clear(&in->rp);
    qemu_fclose(in->file, NULL);
    qemu_fclose(in->urgent, NULL);
    g_clear_error(&in->error);
    g_clear_error(&in->urgent_error);
    g_clear_error(&in->listen_error);
    g_array_free(in->log, true);
    g_cond_clear(&in->cond);
    g_mutex_clear(&in->lock);
    g_free(in);
}

/* ---- status ---- */

static void set_status_locked(MigIncoming *in, MigrationStatus s)
{
    in->status = s;
    g_array_append_val(in->log, s);
}

static void set_status(MigIncoming *in, MigrationStatus s)
{
    g_mutex_lock(&in->lock);
    set_status_locked(in, s);
    g_mutex_unlock(&in->lock);
    in->hooks.status_changed(in->hooks.opaque);
}

MigrationStatus mig_incoming_status(MigIncoming *in)
{
    MigrationStatus s;

    g_mutex_lock(&in->lock);
    s = in->status;
    g_mutex_unlock(&in->lock);
    return s;
}

void mig_incoming_take_statuses(MigIncoming *in, GArray *out)
{
    g_mutex_lock(&in->lock);
    g_array_append_vals(out, in->log->data, in->log->len);
    g_array_set_size(in->log, 0);
    g_mutex_unlock(&in->lock);
}

void mig_incoming_get_info(MigIncoming *in, MigIncomingInfo *out)
{
    UffdPager *pager;

    memset(out, 0, sizeof(*out));
    g_mutex_lock(&in->lock);
    out->status = in->status;
    if (in->error) {
        g_strlcpy(out->error_desc, in->error->message,
                  sizeof(out->error_desc));
    }
    pager = in->pager;
    g_mutex_unlock(&in->lock);
    if (pager && uffd_pager_started(pager)) {
        out->postcopy = true;
        uffd_pager_get_stats(pager, &out->pager);
    }
}

static void set_error(MigIncoming *in, const GError *err)
{
    g_mutex_lock(&in->lock);
    g_clear_error(&in->error);
    in->error = g_error_copy(err);
    g_mutex_unlock(&in->lock);
}

/* ---- the page source: the return path ---- */

static bool request_page(void *opaque, uint64_t offset)
{
    MigIncoming *in = opaque;

    /* As the seed's fault thread: nothing is asked while paused or
     * recovering (the source rebuilds its state from the received bitmap
     * first); POSTCOPY_RESUME asks again for everything awaited. */
    if (mig_incoming_status(in) != MIGRATION_STATUS_POSTCOPY_ACTIVE) {
        return false;
    }
    return mig_rp_incoming_req_page(&in->rp,
                                    ram_migration_block_name(in->ram),
                                    offset, RAM_PAGE_SIZE);
}

static int vcpu_of_thread(void *opaque, int64_t tid)
{
    MigIncoming *in = opaque;

    return in->hooks.vcpu_of_thread ?
           in->hooks.vcpu_of_thread(in->hooks.opaque, tid) : -1;
}

static const UffdPageSourceOps page_source_ops = {
    .request = request_page,
    .vcpu_of_thread = vcpu_of_thread,
};

/* ---- commands ---- */

static bool in_open_return_path(void *opaque, QEMUFile *f, GError **errp)
{
    MigIncoming *in = opaque;

    /* No device of ours needs to hold the switchover: acknowledge at once,
     * as the seed does when none is pending. */
    return mig_rp_incoming_open(&in->rp, f, errp) &&
           (!in->cfg.switchover_ack ||
            mig_rp_incoming_switchover_ack(&in->rp, errp));
}

static bool in_ping(void *opaque, uint32_t value, GError **errp)
{
    MigIncoming *in = opaque;

    return mig_rp_incoming_pong(&in->rp, value, errp);
}

static bool in_advise(void *opaque, bool ram, uint64_t host_pages,
                      uint64_t target_page_size, GError **errp)
{
    MigIncoming *in = opaque;
    UffdPager *pager;

    if (ram != in->cfg.postcopy_ram) {
        return tern_invalid(errp, "RAM postcopy is %s "
                            "but the source sent a %d-byte POSTCOPY_ADVISE",
                            ram ? "disabled" : "enabled", ram ? 16 : 0);
    }
    if (!ram) {
        return true;
    }
    if (!uffd_pager_supported(errp)) {
        return false;
    }
    if (host_pages != RAM_PAGE_SIZE || target_page_size != RAM_PAGE_SIZE) {
        return tern_invalid(errp, "Postcopy needs "
                            "matching %s page sizes (s=%" PRIx64 " d=%x)",
                            host_pages != RAM_PAGE_SIZE ? "RAM" : "target",
                            host_pages != RAM_PAGE_SIZE ? host_pages
                                                        : target_page_size,
                            RAM_PAGE_SIZE);
    }
    pager = uffd_pager_new(in->mem, in->cfg.nr_vcpus, &page_source_ops, in,
                           errp);
    g_mutex_lock(&in->lock);
    in->pager = pager;
    g_mutex_unlock(&in->lock);
    ram_migration_set_pager(in->ram, pager);
    return pager != NULL;
}

static bool in_discard(void *opaque, const char *block, uint64_t start,
                       uint64_t length, GError **errp)
{
    MigIncoming *in = opaque;

    return ram_migration_discard(in->ram, block, start, length, errp);
}

static gpointer listen_thread(gpointer opaque);
static gpointer urgent_thread(gpointer opaque);

static bool in_listen(void *opaque, QEMUFile *f, GError **errp)
{
    MigIncoming *in = opaque;

    g_assert(f == in->file);
    if (in->pager && !uffd_pager_start(in->pager, errp)) {
        return false;
    }
    if (in->pager && in->cfg.preempt) {
        if (!in->urgent) {
            return tern_invalid(errp, "postcopy-preempt is on but the "
                                "source opened no preempt channel");
        }
        in->urgent_thread = g_thread_new("postcopy/preempt", urgent_thread,
                                         in);
    }
    set_status(in, MIGRATION_STATUS_POSTCOPY_ACTIVE);
    in->listen_thread = g_thread_new("postcopy/listen", listen_thread, in);
    return true;
}

static bool in_run(void *opaque, GError **errp)
{
    MigIncoming *in = opaque;

    in->hooks.run_guest(in->hooks.opaque);
    return true;
}

static bool in_resume(void *opaque, GError **errp)
{
    MigIncoming *in = opaque;

    g_mutex_lock(&in->lock);
    if (in->status != MIGRATION_STATUS_POSTCOPY_RECOVER) {
        g_mutex_unlock(&in->lock);
        /* As the seed: report it, but it does not fail the load. */
        tern_warn("POSTCOPY_RESUME outside postcopy recovery: ignored");
        return true;
    }
    set_status_locked(in, MIGRATION_STATUS_POSTCOPY_ACTIVE);
    g_mutex_unlock(&in->lock);
    in->hooks.status_changed(in->hooks.opaque);
    /* What follows may repeat what arrived before the cut. */
    savevm_load_resumed(in->sv);
    if (!mig_rp_incoming_resume_ack(&in->rp, MIG_RP_RESUME_ACK_VALUE, errp)) {
        return false;
    }
    /* Requests that were lost with the old channel, asked again. */
    uffd_pager_resend_requests(in->pager);
    return true;
}

static bool in_recv_bitmap(void *opaque, const char *block, GError **errp)
{
    MigIncoming *in = opaque;
    g_autofree uint8_t *words = NULL;
    size_t len;

    if (!in->pager || strcmp(block, ram_migration_block_name(in->ram))) {
        return tern_invalid(errp, in->pager ?
                            "RECV_BITMAP: block '%s' not found" :
                            "RECV_BITMAP for '%s' without RAM postcopy", block);
    }
    words = uffd_pager_received_words(in->pager, &len);
    return mig_rp_incoming_recv_bitmap(&in->rp, block, words, len,
                                       RAM_RECV_BITMAP_END, errp);
}

static const SaveVMIncomingOps incoming_ops = {
    .open_return_path = in_open_return_path,
    .ping = in_ping,
    .postcopy_advise = in_advise,
    .postcopy_ram_discard = in_discard,
    .postcopy_listen = in_listen,
    .postcopy_run = in_run,
    .postcopy_resume = in_resume,
    .recv_bitmap = in_recv_bitmap,
};

/* ---- pause and recovery ---- */

static bool can_pause(MigIncoming *in)
{
    bool quitting;

    g_mutex_lock(&in->lock);
    quitting = in->quitting;
    g_mutex_unlock(&in->lock);
    /* As the seed: only RAM postcopy with the guest running recovers. */
    return !quitting && in->pager &&
           savevm_postcopy_state(in->sv) == POSTCOPY_INCOMING_RUNNING;
}

/* Listen thread: drop the broken channels and wait for migrate-recover's
 * new ones. False if the VMM quits first. */
static bool pause_and_wait(MigIncoming *in, const GError *cause)
{
    QEMUFile *old;
    bool resumed;

    g_mutex_lock(&in->lock);
    g_clear_error(&in->error);
    in->error = g_error_new(TERN_ERROR, TERN_ERR_IO, "postcopy paused: %s",
                            in->pause_requested ? "by migrate-pause" :
                            in->urgent_error ? in->urgent_error->message :
                                               cause->message);
    in->pause_requested = false;
    g_clear_error(&in->urgent_error);
    in->recovering = false;
    old = in->file;
    in->file = NULL;
    if (in->urgent) {
        qemu_file_shutdown_channel(in->urgent);  /* its thread closes it */
    }
    /* Before the status says paused: a recovery may open the new one at
     * once. */
    mig_rp_incoming_drop(&in->rp);
    set_status_locked(in, MIGRATION_STATUS_POSTCOPY_PAUSED);
    tern_error_report("%s", in->error->message);
    g_mutex_unlock(&in->lock);
    in->hooks.status_changed(in->hooks.opaque);
    qemu_fclose(old, NULL);
    /* The multifd channels go too; the recovery brings new ones. */
    ram_migration_multifd_shutdown(in->ram);

    g_mutex_lock(&in->lock);
    while (!in->file && !in->quitting) {
        g_cond_wait(&in->cond, &in->lock);
    }
    resumed = in->file && !in->quitting;
    g_mutex_unlock(&in->lock);
    return resumed;
}

bool mig_incoming_pause(MigIncoming *in, GError **errp)
{
    bool ok;

    g_mutex_lock(&in->lock);
    ok = in->status == MIGRATION_STATUS_POSTCOPY_ACTIVE && in->file;
    if (ok) {
        in->pause_requested = true;
        qemu_file_shutdown_channel(in->file);
    }
    g_mutex_unlock(&in->lock);
    if (ok) {
        ram_migration_multifd_shutdown(in->ram);    /* a sync may wait */
    }
    if (!ok) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "migrate-pause is currently only supported during "
                    "postcopy-active state");
    }
    return ok;
}

bool mig_incoming_recover_begin(MigIncoming *in, GError **errp)
{
    bool paused, busy;

    g_mutex_lock(&in->lock);
    paused = in->status == MIGRATION_STATUS_POSTCOPY_PAUSED;
    busy = in->recovering;
    in->recovering = in->recovering || paused;
    g_mutex_unlock(&in->lock);
    if (!paused) {
        return tern_invalid(errp,
                            "Migrate recover can only be run when postcopy is "
                            "paused.");
    }
    if (busy) {
        return tern_fail(errp, TERN_ERR_BUSY,
                         "Migrate recovery is triggered already");
    }
    return true;
}

void mig_incoming_recover_abort(MigIncoming *in)
{
    g_mutex_lock(&in->lock);
    in->recovering = false;
    g_mutex_unlock(&in->lock);
}

bool mig_incoming_recover(MigIncoming *in, QEMUFile *f, QEMUFile *urgent,
                          GError **errp)
{
    bool ok;

    g_mutex_lock(&in->lock);
    /* A preempt channel still set is the broken one, which its thread is
     * about to close: replacing it is fine. */
    ok = in->status == MIGRATION_STATUS_POSTCOPY_PAUSED && !in->file &&
         !in->quitting && (!in->cfg.preempt || urgent);
    g_mutex_unlock(&in->lock);
    /* The return path of the new channel serves from now on. */
    if (!ok || !mig_rp_incoming_open(&in->rp, f, errp)) {
        if (!ok) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "the incoming migration cannot recover now");
        }
        qemu_fclose(f, NULL);
        qemu_fclose(urgent, NULL);
        mig_incoming_recover_abort(in);
        return false;
    }
    g_mutex_lock(&in->lock);
    in->file = f;
    in->urgent = urgent;
    in->recovering = false;
    set_status_locked(in, MIGRATION_STATUS_POSTCOPY_RECOVER);
    g_cond_broadcast(&in->cond);
    g_mutex_unlock(&in->lock);
    in->hooks.status_changed(in->hooks.opaque);
    return true;
}

/* ---- the listen and preempt threads ---- */

static QEMUFile *current_file(MigIncoming *in)
{
    QEMUFile *f;

    g_mutex_lock(&in->lock);
    f = in->quitting ? NULL : in->file;
    g_mutex_unlock(&in->lock);
    return f;
}

/* EOF after RUN: every page must be in; the guest runs on plain memory. */
static bool finish_postcopy(MigIncoming *in, GError **errp)
{
    if (in->urgent_thread) {
        g_thread_join(in->urgent_thread);   /* the source ends it with EOS */
        in->urgent_thread = NULL;
    }
    if (!in->pager) {
        return true;
    }
    ram_migration_set_pager(in->ram, NULL);
    return uffd_pager_finish(in->pager, errp);
}

/* The seed's rule: when only the dirty bitmaps follow, a failure after
 * RUN leaves the guest running here with everything else migrated; the
 * bitmaps that did not arrive whole are dropped (savevm_load_abandon). */
static bool lose_bitmaps(MigIncoming *in, const GError *err)
{
    bool quitting;

    g_mutex_lock(&in->lock);
    quitting = in->quitting;
    g_mutex_unlock(&in->lock);
    if (quitting || in->pager ||
        savevm_postcopy_state(in->sv) != POSTCOPY_INCOMING_RUNNING) {
        return false;
    }
    tern_error_report("loadvm failed during postcopy: %s. All states are "
                      "migrated except dirty bitmaps. Some dirty bitmaps may "
                      "be lost, and present migrated dirty bitmaps are "
                      "correctly migrated and valid.", err->message);
    in->bitmaps_lost = true;
    return true;
}

static gpointer listen_thread(gpointer opaque)
{
    MigIncoming *in = opaque;
    GError *err = NULL;
    QEMUFile *f;
    int ret = -1;

    /* With a preempt channel the background pages give way to the
     * preempt thread's requested ones. */
    if (in->urgent_thread) {
        tern_thread_yield_priority(TERN_BACKGROUND_NICE);
    }
    while ((f = current_file(in))) {
        ret = savevm_load_main(in->sv, f, &err);
        if (ret == 0) {
            break;
        }
        if (ret > 0) {
            g_clear_error(&err);
            g_set_error(&err, TERN_ERROR, TERN_ERR_INVALID,
                        "POSTCOPY_RUN arrived twice");
        }
        if (!can_pause(in) || !pause_and_wait(in, err)) {
            break;
        }
        g_clear_error(&err);
        ret = -1;
    }
    if (ret < 0 && err && lose_bitmaps(in, err)) {
        g_clear_error(&err);
        ret = 0;
    }
    if (ret == 0) {
        finish_postcopy(in, &err);
    } else if (!err) {
        g_set_error(&err, TERN_ERROR, TERN_ERR_FAILED,
                    "the VMM is shutting down");
    }
    if (err) {
        /* Whoever waits for a page (the loader thread in the package, the
         * vCPUs) must not wait forever: the load has failed. */
        uffd_pager_abandon(in->pager);
        in->listen_error = err;
    }
    return NULL;
}

static QEMUFile *wait_urgent(MigIncoming *in)
{
    QEMUFile *f;

    g_mutex_lock(&in->lock);
    while (!in->urgent && !in->quitting) {
        g_cond_wait(&in->cond, &in->lock);
    }
    f = in->quitting ? NULL : in->urgent;
    g_mutex_unlock(&in->lock);
    return f;
}

/* Preempt channel: urgent pages until EOS; when it breaks, the main channel
 * is cut too so that the listen thread pauses, and a recovery brings a new
 * one. */
static gpointer urgent_thread(gpointer opaque)
{
    MigIncoming *in = opaque;
    QEMUFile *f;

    while ((f = wait_urgent(in))) {
        g_autoptr(GError) err = NULL;
        bool done = ram_migration_load_urgent(in->ram, f, &err);

        g_mutex_lock(&in->lock);
        /* A channel a recovery has replaced already says nothing about
         * the new main channel. */
        if (in->urgent == f) {
            in->urgent = NULL;
            if (!done && in->file) {
                g_prefix_error(&err, "preempt channel: ");
                g_clear_error(&in->urgent_error);
                in->urgent_error = g_steal_pointer(&err);
                qemu_file_shutdown_channel(in->file);
            }
        }
        g_mutex_unlock(&in->lock);
        qemu_fclose(f, NULL);
        if (done) {
            break;
        }
    }
    return NULL;
}

/* ---- the loader thread ---- */

static void stop_threads(MigIncoming *in)
{
    if (in->listen_thread) {
        g_thread_join(in->listen_thread);
        in->listen_thread = NULL;
    }
    if (in->urgent_thread) {
        mig_incoming_shutdown(in);
        g_thread_join(in->urgent_thread);
        in->urgent_thread = NULL;
    }
}

static bool load(MigIncoming *in, QEMUFile *f, GError **errp)
{
    bool ok = savevm_load(in->sv, f, errp);

    if (!in->listen_thread) {
        return ok;      /* precopy; savevm_load cleaned up */
    }
    if (!ok) {
        /* The package failed while the listen thread reads on. */
        mig_incoming_shutdown(in);
    }
    g_thread_join(in->listen_thread);
    in->listen_thread = NULL;
    savevm_load_cleanup(in->sv);
    if (ok && in->listen_error) {
        g_propagate_error(errp, g_steal_pointer(&in->listen_error));
        ok = false;
    }
    return ok;
}

bool mig_incoming_run(MigIncoming *in, QEMUFile *f, QEMUFile *urgent,
                      GError **errp)
{
    GError *err = NULL;
    QEMUFile *last, *last_urgent;
    bool ok;

    g_mutex_lock(&in->lock);
    in->file = f;
    in->urgent = urgent;
    g_mutex_unlock(&in->lock);
    set_status(in, MIGRATION_STATUS_ACTIVE);
    savevm_set_incoming_ops(in->sv, &incoming_ops, in);
    ok = load(in, f, &err);
    if (!ok) {
        ram_migration_multifd_explain(in->ram, &err);
    }
    stop_threads(in);
    if (!ok || in->bitmaps_lost) {
        savevm_load_abandon(in->sv);
    }
    mig_rp_incoming_shut(&in->rp, !ok);
    g_mutex_lock(&in->lock);
    last = in->file;
    last_urgent = in->urgent;
    in->file = in->urgent = NULL;
    g_mutex_unlock(&in->lock);
    qemu_fclose(last, NULL);
    qemu_fclose(last_urgent, NULL);
    if (!ok) {
        uffd_pager_abandon(in->pager);
        set_error(in, err);
        g_propagate_error(errp, err);
    }
    set_status(in, ok ? MIGRATION_STATUS_COMPLETED : MIGRATION_STATUS_FAILED);
    return ok;
}

void mig_incoming_shutdown(MigIncoming *in)
{
    UffdPager *pager;

    g_mutex_lock(&in->lock);
    in->quitting = true;
    if (in->file) {
        qemu_file_shutdown_channel(in->file);
    }
    if (in->urgent) {
        qemu_file_shutdown_channel(in->urgent);
    }
    g_cond_broadcast(&in->cond);
    pager = in->pager;
    g_mutex_unlock(&in->lock);
    /* A thread waiting for a page, or for the multifd channels' SYNC,
     * would never see the main channel close. */
    uffd_pager_abandon(pager);
    ram_migration_multifd_shutdown(in->ram);
}
