/*
 * The VMM's migration state (include/migration/migration.h): the SaveVM of
 * the running machine, the one outgoing job or incoming stream (with their
 * postcopy commands: start, pause, resume, recover), and what QMP reports
 * about them. The job and the incoming loader run on their own threads;
 * run-state changes happen on the main loop: the job's stop request and a
 * postcopy destination's RUN arrive as idle sources, and a short timer
 * watches both threads to emit events in order, stop dirty logging once a
 * postcopy source no longer needs it, finish (postmigrate, or resume after
 * a failure that left the guest here) and start the destination's guest.
 */
#include <string.h>
#include <unistd.h>

#include "hw/block/drive.h"
#include "hw/block/virtio-blk-pci.h"
#include "hw/i386/machine.h"
#include "migration/block-dirty-bitmap.h"
#include "migration/channel.h"
#include "migration/global-state.h"
#include "migration/incoming.h"
#include "migration/migration.h"
#include "migration/cpu-throttle.h"
#include "migration/return-path.h"
#include "migration/snapshot.h"
#include "accel/kvm/kvm-dirty-log.h"
#include "accel/kvm/kvm-vcpu.h"
#include "softmmu/runstate.h"
#include "tern/error.h"

#define POLL_MS                 5
#define DEFAULT_MAX_BANDWIDTH   (128 * MiB)   /* QEMU 7.2's default */
#define DEFAULT_DOWNTIME_MS     300

/* The VM's uuid in multifd's initial packets: -uuid's, or zeroes without
 * one, as QEMU sends and expects. */
static const uint8_t no_uuid[16];

typedef struct Incoming {
    MigrationListener *listener;
    GThread *thread;
    int done;                   /* atomic: the thread has finished */
    MigrationStatus status;     /* under ms->lock, until 'mig' exists */
    MigIncoming *mig;           /* under ms->lock: the accepted stream */
    GError *error;
    gint64 start_us;
    uint64_t total_ms;
    bool guest_started;         /* by a postcopy RUN */
    MigrationListener *recover_listener;    /* migrate-recover */
    GThread *recover_thread;
    unsigned nr_multifd;        /* the stream's multifd channels */
} Incoming;

struct MigrationState {
    Machine *machine;
    GMainContext *ctx;
    SaveVM *sv;
    RamMigration *ram;
    DirtyBitmapMigration *bitmaps;  /* capability dirty-bitmaps */
    VmSnapshot *snapshots;          /* savevm/loadvm on the same SaveVM */
    MigGlobalState gs;
    bool caps[MIG_CAP__MAX];
    MigrationParams params;
    const MigrationEventOps *ev;
    void *ev_opaque;
    GDestroyNotify ev_free;
    void (*incoming_failed)(void *opaque, int status);
    void *incoming_failed_opaque;

    /* outgoing */
    MigrationJob *job;
    KvmDirtyLog *dirty;
    CpuThrottle *throttle;      /* auto-converge, made on first use */
    MigrationStats last;        /* the finished (or failed-to-start) job */
    bool have_last;
    uint64_t last_dirty_rate;
    RunState state_before;      /* run state when the job stopped the VM */
    bool vm_stopped;            /* by the job */
    unsigned out_multifd;       /* the job's multifd channels */

    GMutex lock;                /* the fields below and Incoming.file */
    GCond cond;
    GSource *stop_src;          /* pending stop request from the job */
    bool stop_done, quitting;

    Incoming in;
    guint poll_id;
    MigrationStatus reported;   /* last MIGRATION event */
    uint64_t reported_pass;
};

static const char *const cap_names[MIG_CAP__MAX] = {
    [MIG_CAP_XBZRLE] = "xbzrle",
    [MIG_CAP_RDMA_PIN_ALL] = "rdma-pin-all",
    [MIG_CAP_AUTO_CONVERGE] = "auto-converge",
    [MIG_CAP_ZERO_BLOCKS] = "zero-blocks",
    [MIG_CAP_COMPRESS] = "compress",
    [MIG_CAP_EVENTS] = "events",
    [MIG_CAP_POSTCOPY_RAM] = "postcopy-ram",
    [MIG_CAP_X_COLO] = "x-colo",
    [MIG_CAP_RELEASE_RAM] = "release-ram",
    [MIG_CAP_BLOCK] = "block",
    [MIG_CAP_RETURN_PATH] = "return-path",
    [MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = "pause-before-switchover",
    [MIG_CAP_MULTIFD] = "multifd",
    [MIG_CAP_DIRTY_BITMAPS] = "dirty-bitmaps",
    [MIG_CAP_POSTCOPY_BLOCKTIME] = "postcopy-blocktime",
    [MIG_CAP_LATE_BLOCK_ACTIVATE] = "late-block-activate",
    [MIG_CAP_X_IGNORE_SHARED] = "x-ignore-shared",
    [MIG_CAP_VALIDATE_UUID] = "validate-uuid",
    [MIG_CAP_BACKGROUND_SNAPSHOT] = "background-snapshot",
    [MIG_CAP_ZERO_COPY_SEND] = "zero-copy-send",
    [MIG_CAP_POSTCOPY_PREEMPT] = "postcopy-preempt",
    [MIG_CAP_SWITCHOVER_ACK] = "switchover-ack",
};

/* What tern honours; migrate-set-capabilities refuses the rest. */
static const bool cap_implemented[MIG_CAP__MAX] = {
    [MIG_CAP_EVENTS] = true,
    [MIG_CAP_AUTO_CONVERGE] = true,
    [MIG_CAP_DIRTY_BITMAPS] = true,
    [MIG_CAP_ZERO_BLOCKS] = true,          /* only affects block migration */
    [MIG_CAP_POSTCOPY_BLOCKTIME] = true,
    [MIG_CAP_POSTCOPY_RAM] = true,
    [MIG_CAP_RETURN_PATH] = true,
    [MIG_CAP_POSTCOPY_PREEMPT] = true,
    [MIG_CAP_SWITCHOVER_ACK] = true,
    [MIG_CAP_MULTIFD] = true,
    [MIG_CAP_ZERO_COPY_SEND] = true,
    [MIG_CAP_LATE_BLOCK_ACTIVATE] = true,
    [MIG_CAP_VALIDATE_UUID] = true,
};

bool migration_capability_implemented(MigrationCapability c)
{
    return c < MIG_CAP__MAX && cap_implemented[c];
}

const char *migration_capability_name(MigrationCapability c)
{
    return c < MIG_CAP__MAX ? cap_names[c] : NULL;
}

int migration_capability_lookup(const char *name)
{
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        if (!strcmp(cap_names[i], name)) {
            return i;
        }
    }
    return -1;
}

/* ---- the drives: their dirty bitmaps and images ---- */

static const BlockBackendList *drives(MigrationState *ms)
{
    return ms->machine->drives->backends;
}

static bool bitmap_vm_running(void *opaque)
{
    return runstate_is_running(runstate_get());
}

/* On the job's thread, which the job outlives. */
static bool bitmap_in_postcopy(void *opaque)
{
    MigrationState *ms = opaque;

    return ms->job && migration_job_in_postcopy(ms->job);
}

/* ---- the drives' images: handed over at the end, as QEMU does ---- */

/* Migration thread, VM stopped, after the device state: flush and let the
 * destination take the write locks. Bitmaps that travel in the stream
 * (capability dirty-bitmaps) are not stored; otherwise persistent ones are,
 * so the destination loads them from the image. */
static bool inactivate_drives(void *opaque, GError **errp)
{
    MigrationState *ms = opaque;
    bool store = !ms->caps[MIG_CAP_DIRTY_BITMAPS];

    for (size_t i = 0; i < blk_list_count(drives(ms)); i++) {
        BlockBackend *blk = blk_list_get(drives(ms), i);

        if (!bdrv_inactivate(blk_root(blk), store, errp)) {
            g_prefix_error(errp, "cannot hand drive '%s' over: ",
                           blk_name(blk));
            return false;
        }
    }
    return true;
}

/* Take every drive (back): the destination before its guest starts, the
 * source after a failed migration. No-op for active drives. */
static bool activate_drives(MigrationState *ms, GError **errp)
{
    for (size_t i = 0; i < blk_list_count(drives(ms)); i++) {
        BlockBackend *blk = blk_list_get(drives(ms), i);

        if (!bdrv_activate(blk_root(blk), errp)) {
            g_prefix_error(errp, "drive '%s': ", blk_name(blk));
            return false;
        }
    }
    return true;
}

static void register_bitmaps(MigrationState *ms)
{
    const DirtyBitmapNodes nodes = {
        .blks = drives(ms),
        .vm_running = bitmap_vm_running, .in_postcopy = bitmap_in_postcopy,
        .opaque = ms,
    };

    ms->bitmaps = dirty_bitmap_migration_new(&nodes);
    dirty_bitmap_migration_register(ms->bitmaps, ms->sv);
}

/* ---- snapshots: the same SaveVM into the drives' VM state areas ---- */

static bool snapshot_can_save(void *opaque, GError **errp)
{
    MigrationState *ms = opaque;

    if (migration_is_active(ms)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "There's a migration process in progress");
        return false;
    }
    return savevm_state_saveable(ms->sv, errp);
}

static void snapshot_before_save(void *opaque)
{
    MigrationState *ms = opaque;

    mig_global_state_set(&ms->gs, runstate_name(runstate_get()));
}

/* The guest's kvmclock: what its clock reads, which a load sets back. */
static uint64_t snapshot_vm_clock(void *opaque)
{
    MigrationState *ms = opaque;
    struct kvm_clock_data d;

    return kvm_get_clock(ms->machine->kvm, &d, NULL) ? d.clock : 0;
}

static bool snapshot_reset(void *opaque, GError **errp)
{
    MigrationState *ms = opaque;

    return machine_reset(ms->machine, errp);
}

static const VmSnapshotOps snapshot_ops = {
    .can_save = snapshot_can_save,
    .before_save = snapshot_before_save,
    .vm_clock_ns = snapshot_vm_clock,
    .reset = snapshot_reset,
};

/* Any reset of the machine ends what a failed load left behind. */
static void snapshot_reset_hook(void *opaque)
{
    vm_snapshot_machine_reset(opaque);
}

static void register_snapshots(MigrationState *ms)
{
    ms->snapshots = vm_snapshot_new(ms->sv, drives(ms), &snapshot_ops, ms);
    device_list_add_reset(ms->machine->devices, snapshot_reset_hook,
                          ms->snapshots);
}

VmSnapshot *migration_snapshots(MigrationState *ms)
{
    return ms->snapshots;
}

MigrationState *migration_state_new(Machine *m)
{
    MigrationState *ms = g_new0(MigrationState, 1);

    ms->machine = m;
    ms->ctx = m->ctx ? m->ctx : g_main_context_default();
    ms->params.max_bandwidth = DEFAULT_MAX_BANDWIDTH;
    ms->params.downtime_limit_ms = DEFAULT_DOWNTIME_MS;
    ms->params.throttle_trigger_threshold = MIGRATION_THROTTLE_TRIGGER_DEFAULT;
    ms->params.cpu_throttle_initial = MIGRATION_THROTTLE_INITIAL_DEFAULT;
    ms->params.cpu_throttle_increment = MIGRATION_THROTTLE_INCREMENT_DEFAULT;
    ms->params.max_cpu_throttle = MIGRATION_THROTTLE_MAX_DEFAULT;
    ms->params.multifd_channels = MULTIFD_CHANNELS_DEFAULT;
    g_mutex_init(&ms->lock);
    g_cond_init(&ms->cond);
    /* The stream names the machine type, as QEMU's does ("none" too). */
    ms->sv = savevm_new(m->cfg ? m->cfg->machine : "virt");
    if (m->cfg && m->cfg->has_uuid) {
        savevm_set_uuid(ms->sv, m->cfg->uuid);
    }
    ms->ram = ram_migration_new(&m->mem, "pc.ram");
    ram_migration_register(ms->ram, ms->sv);
    register_bitmaps(ms);
    mig_global_state_set(&ms->gs, runstate_name(runstate_get()));
    mig_global_state_register(ms->sv, &ms->gs);
    /* Every device that has state put it on the machine's list. */
    device_list_register_savevm(m->devices, ms->sv);
    register_snapshots(ms);
    return ms;
}

SaveVM *migration_savevm(MigrationState *ms)
{
    return ms->sv;
}

void migration_set_event_ops(MigrationState *ms, const MigrationEventOps *ops,
                             void *opaque, GDestroyNotify free_opaque)
{
    ms->ev = ops;
    ms->ev_opaque = opaque;
    ms->ev_free = free_opaque;
}

void migration_set_incoming_failed(MigrationState *ms,
                                   void (*fn)(void *opaque, int status),
                                   void *opaque)
{
    ms->incoming_failed = fn;
    ms->incoming_failed_opaque = opaque;
}

bool migration_is_active(const MigrationState *ms)
{
    return ms->job || ms->in.thread;
}

bool migration_activate_disks(MigrationState *ms, GError **errp)
{
    /* An outgoing job inactivates on its own thread and reactivates if it
     * fails; an incoming stream activates when it ends. */
    if (migration_is_active(ms)) {
        return true;
    }
    return activate_drives(ms, errp);
}

static MigIncoming *incoming_stream(MigrationState *ms);

/* The whole new set, as QEMU checks it. */
static bool check_caps(const bool *caps, GError **errp)
{
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        if (caps[i] && !cap_implemented[i]) {
            return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "capability '%s' is not "
                             "implemented by tern's migration yet", cap_names[i]);
        }
    }
    if (caps[MIG_CAP_POSTCOPY_PREEMPT] && !caps[MIG_CAP_POSTCOPY_RAM]) {
        return tern_invalid(errp, "Postcopy preempt requires postcopy-ram");
    }
    if (caps[MIG_CAP_SWITCHOVER_ACK] && !caps[MIG_CAP_RETURN_PATH]) {
        return tern_invalid(errp, "Capability 'switchover-ack' requires "
                            "capability 'return-path'");
    }
    if (caps[MIG_CAP_ZERO_COPY_SEND] && !caps[MIG_CAP_MULTIFD]) {
        return tern_invalid(errp, "Zero copy only available for "
                            "non-compressed non-TLS multifd migration");
    }
    return true;
}

bool migration_set_capabilities(MigrationState *ms, size_t n,
                                const MigrationCapability *caps,
                                const bool *on, GError **errp)
{
    bool next[MIG_CAP__MAX];

    /* A destination still waiting for its stream takes them (as QEMU's):
     * they are read when the stream arrives. */
    if (ms->job || (ms->in.thread && incoming_stream(ms))) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "There's a migration process in progress");
        return false;
    }
    memcpy(next, ms->caps, sizeof(next));
    for (size_t i = 0; i < n; i++) {
        next[caps[i]] = on[i];
    }
    if (!check_caps(next, errp)) {
        return false;
    }
    /* Only a destination needs userfaultfd: say so now, as QEMU does. */
    if (next[MIG_CAP_POSTCOPY_RAM] && !ms->caps[MIG_CAP_POSTCOPY_RAM] &&
        runstate_check(RUN_STATE_INMIGRATE) && !uffd_pager_supported(errp)) {
        return false;
    }
    memcpy(ms->caps, next, sizeof(next));
    savevm_set_send_uuid(ms->sv, ms->caps[MIG_CAP_VALIDATE_UUID]);
    return true;
}

bool migration_set_capability(MigrationState *ms, MigrationCapability c,
                              bool on, GError **errp)
{
    return migration_set_capabilities(ms, 1, &c, &on, errp);
}

bool migration_capability(const MigrationState *ms, MigrationCapability c)
{
    return ms->caps[c];
}

MigrationParams migration_get_params(const MigrationState *ms)
{
    return ms->params;
}

/* An auto-converge percentage in [min, max], in QEMU's words otherwise. */
static bool check_percent(unsigned v, const char *name, unsigned min,
                          unsigned max, GError **errp)
{
    if (v < min || v > max) {
        return tern_invalid(errp, "Parameter '%s' expects an integer in the range "
                            "of %u to %u", name, min, max);
    }
    return true;
}

/* QEMU's limit on downtime-limit, and its message's spelling of it. */
#define MAX_DOWNTIME_MS 2000000
#define MAX_DOWNTIME_TEXT "(2000 * 1000)"

/* QEMU 7.2's checks on the whole would-be set, in its order and words. */
static bool params_check(const MigrationParams *p, GError **errp)
{
    if (!check_percent(p->throttle_trigger_threshold, "throttle_trigger_threshold",
                       1, 100, errp) ||
        !check_percent(p->cpu_throttle_initial, "cpu_throttle_initial", 1, 99,
                       errp) ||
        !check_percent(p->cpu_throttle_increment, "cpu_throttle_increment", 1, 99,
                       errp)) {
        return false;
    }
    if (p->downtime_limit_ms > MAX_DOWNTIME_MS) {
        return tern_invalid(errp, "Parameter 'downtime_limit' expects an integer in "
                            "the range of 0 to " MAX_DOWNTIME_TEXT " ms");
    }
    if (p->multifd_channels < 1 || p->multifd_channels > MULTIFD_CHANNELS_MAX) {
        return tern_invalid(errp, "Parameter 'multifd_channels' expects a "
                            "value between 1 and 255");
    }
    if (p->max_cpu_throttle < p->cpu_throttle_initial || p->max_cpu_throttle > 99) {
        return tern_invalid(errp, "Parameter 'max_cpu_throttle' expects an integer in "
                            "the range of cpu_throttle_initial to 99");
    }
    return true;
}

bool migration_set_params(MigrationState *ms, const MigrationParams *p,
                          GError **errp)
{
    if (!params_check(p, errp)) {
        return false;
    }
    /* QEMU takes new parameters at any time; a running job keeps the ones
     * it started with (its windows are computed from them). */
    ms->params = *p;
    return true;
}

/* ---- events and the main-loop watch -------------------------------------- */

static void emit_status(MigrationState *ms, MigrationStatus s)
{
    if (s == ms->reported) {
        return;
    }
    ms->reported = s;
    if (ms->ev && ms->ev->status && ms->caps[MIG_CAP_EVENTS]) {
        ms->ev->status(ms->ev_opaque, s);
    }
}

static void emit_pass(MigrationState *ms, uint64_t pass)
{
    if (pass == ms->reported_pass) {
        return;
    }
    ms->reported_pass = pass;
    if (ms->ev && ms->ev->pass && ms->caps[MIG_CAP_EVENTS]) {
        ms->ev->pass(ms->ev_opaque, pass);
    }
}

/* Every dirty sync up to 'count' as a MIGRATION_PASS, in order. */
static void emit_passes(MigrationState *ms, uint64_t count)
{
    while (ms->reported_pass < count) {
        emit_pass(ms, ms->reported_pass + 1);
    }
}

/*
 * QEMU 7.2's order: setup, MIGRATION_PASS 1 (its first dirty sync belongs
 * to setup), active, a MIGRATION_PASS per later sync, the postcopy
 * statuses (a postcopy's last sync comes after postcopy-active), then the
 * end state (no "device": QEMU enters it only with pause-before-switchover).
 * The job logs every status with the syncs made by then, so nothing the
 * watch slept through is lost or reordered.
 */
static void emit_job_log(MigrationState *ms, GArray *log)
{
    for (guint i = 0; i < log->len; i++) {
        const MigrationStatusChange *c =
            &g_array_index(log, MigrationStatusChange, i);

        if (c->status == MIGRATION_STATUS_CANCELLED &&
            ms->reported != MIGRATION_STATUS_CANCELLING) {
            emit_status(ms, MIGRATION_STATUS_CANCELLING);
        }
        emit_passes(ms, c->status == MIGRATION_STATUS_ACTIVE ?
                        MIN(c->syncs, 1) : c->syncs);
        emit_status(ms, c->status);
    }
    g_array_set_size(log, 0);
}

static void emit_progress(MigrationState *ms, const MigrationStats *st)
{
    g_autoptr(GArray) log = g_array_new(false, false,
                                        sizeof(MigrationStatusChange));

    migration_job_take_statuses(ms->job, log);
    emit_job_log(ms, log);
    if (st->status >= MIGRATION_STATUS_ACTIVE) {
        emit_passes(ms, st->dirty_sync_count);
    }
}

/* A destination's statuses in order; setup and active even if the watch
 * slept through them (a failure right away is reported as it came). */
static void emit_incoming(MigrationState *ms, MigrationStatus s)
{
    if (s != MIGRATION_STATUS_FAILED && s != MIGRATION_STATUS_SETUP &&
        ms->reported < MIGRATION_STATUS_ACTIVE) {
        emit_status(ms, MIGRATION_STATUS_SETUP);
        emit_status(ms, MIGRATION_STATUS_ACTIVE);
    }
    emit_status(ms, s);
}

static void stop_dirty_log(MigrationState *ms)
{
    if (!ms->dirty) {
        return;
    }
    ram_migration_set_dirty_sync(ms->ram, NULL, NULL);
    ms->last_dirty_rate = kvm_dirty_log_rate(ms->dirty);
    virtio_blk_pci_set_dirty_log(ms->machine, NULL);
    kvm_dirty_log_stop(ms->dirty);
    ms->dirty = NULL;
}

/* After a failure the guest goes on here if it never left. */
static void source_takes_guest_back(MigrationState *ms,
                                    const MigrationStats *st)
{
    g_autoptr(GError) act_err = NULL;

    if (st->postcopy) {
        /* The destination has run it: this copy is stale for good. With
         * only the dirty bitmaps left, the guest is whole there. */
        tern_error_report("%s", ms->caps[MIG_CAP_POSTCOPY_RAM] ?
                          "postcopy migration failed: the guest's state is "
                          "split between source and destination" :
                          "postcopy of the dirty bitmaps failed: the guest "
                          "runs on the destination without the bitmaps that "
                          "were not complete");
        runstate_set(RUN_STATE_POSTMIGRATE);
        return;
    }
    /* The disks may have been handed over already: take them back. */
    if (!activate_drives(ms, &act_err)) {
        tern_warn("migration failed and the source cannot take its "
                  "disks back: %s", act_err->message);
    }
    /* The guest goes on where it was, as QEMU's source does. */
    if (runstate_is_running(ms->state_before)) {
        vm_start();
    } else {
        runstate_set(ms->state_before);
    }
}

static void finish_outgoing(MigrationState *ms, const MigrationStats *st)
{
    g_autoptr(GError) err = NULL;

    migration_job_wait(ms->job, &err);
    /* Before the destination ran, the bitmaps that were to travel are the
     * source's images' again. */
    if (st->status != MIGRATION_STATUS_COMPLETED && !st->postcopy) {
        dirty_bitmap_migration_source_failed(ms->bitmaps);
    }
    emit_progress(ms, st);
    migration_job_free(ms->job);
    ms->job = NULL;
    ram_migration_multifd_stop(ms->ram);
    stop_dirty_log(ms);
    ms->last = *st;
    ms->have_last = true;
    if (st->status == MIGRATION_STATUS_COMPLETED) {
        vm_stop(RUN_STATE_POSTMIGRATE);
    } else if (ms->vm_stopped) {
        source_takes_guest_back(ms, st);
    }
    ms->vm_stopped = false;
}

static void poll_outgoing(MigrationState *ms)
{
    MigrationStats st;

    migration_job_get_stats(ms->job, &st);
    if (st.status >= MIGRATION_STATUS_COMPLETED &&
        st.status != MIGRATION_STATUS_CANCELLING) {
        finish_outgoing(ms, &st);
        return;
    }
    /* Postcopy: the VM is stopped and RAM has had its last sync. */
    if (st.dirty_log_done) {
        stop_dirty_log(ms);
    }
    emit_progress(ms, &st);
}

/* 'autostart' (a postcopy RUN, as the seed's RUN handler): run unless -S;
 * otherwise also as the source's run state says. */
static void start_guest_after_load(MigrationState *ms, bool autostart)
{
    const char *sent = mig_global_state_received(&ms->gs);
    bool was_running = autostart || !sent || !strcmp(sent, "running");
    bool will_run = was_running && !ms->machine->cfg->start_paused;
    g_autoptr(GError) err = NULL;
    bool active;

    /* The source has let go of the images: take them, rereading what it
     * wrote. If that fails the guest must not run (QEMU stays paused).
     * With late-block-activate a guest that stays paused leaves them to cont
     * (libvirt keeps the source able to take over until then). */
    active = (ms->caps[MIG_CAP_LATE_BLOCK_ACTIVATE] && !will_run) ||
             activate_drives(ms, &err);
    if (!active) {
        tern_error_report("could not activate the disks after migration: %s",
                          err->message);
    }
    /* Loaded bitmaps that were enabled on the source start recording (the
     * seed's before-start step, taken whether or not the guest runs). */
    dirty_bitmap_migration_before_vm_start(ms->bitmaps);
    if (active && will_run) {
        vm_start();
    } else {
        runstate_set(RUN_STATE_PAUSED);
    }
}

static MigIncoming *incoming_stream(MigrationState *ms)
{
    MigIncoming *mig;

    g_mutex_lock(&ms->lock);
    mig = ms->in.mig;
    g_mutex_unlock(&ms->lock);
    return mig;
}

static MigrationStatus incoming_status(MigrationState *ms)
{
    MigIncoming *mig = incoming_stream(ms);
    MigrationStatus s;

    if (mig) {
        return mig_incoming_status(mig);
    }
    g_mutex_lock(&ms->lock);
    s = ms->in.status;
    g_mutex_unlock(&ms->lock);
    return s;
}

/* What the destination logged, in order, but a final "completed": QEMU
 * reports that after the guest started (RESUME). */
static void emit_incoming_log(MigrationState *ms)
{
    g_autoptr(GArray) log = g_array_new(false, false, sizeof(MigrationStatus));
    MigIncoming *mig = incoming_stream(ms);

    if (!mig) {
        emit_incoming(ms, incoming_status(ms));
        return;
    }
    mig_incoming_take_statuses(mig, log);
    for (guint i = 0; i < log->len; i++) {
        MigrationStatus s = g_array_index(log, MigrationStatus, i);

        if (s != MIGRATION_STATUS_COMPLETED) {
            emit_incoming(ms, s);
        }
    }
}

static void finish_incoming(MigrationState *ms)
{
    Incoming *in = &ms->in;
    MigrationStatus s;

    g_thread_join(in->thread);
    in->thread = NULL;
    migration_listener_free(in->listener);
    in->listener = NULL;
    emit_incoming_log(ms);
    s = incoming_status(ms);
    if (s == MIGRATION_STATUS_COMPLETED) {
        /* QEMU's order: the guest starts (RESUME), then completed; a
         * postcopy RUN started it already. */
        if (!in->guest_started) {
            emit_incoming(ms, MIGRATION_STATUS_ACTIVE);
            start_guest_after_load(ms, false);
        }
        emit_status(ms, s);
        return;
    }
    emit_incoming(ms, s);
    tern_error_report("load of migration failed: %s",
                      in->error ? in->error->message : "unknown error");
    if (ms->incoming_failed) {
        ms->incoming_failed(ms->incoming_failed_opaque, 1);
    }
}

static gboolean poll_cb(gpointer opaque)
{
    MigrationState *ms = opaque;

    if (ms->job) {
        poll_outgoing(ms);
    }
    if (ms->in.thread) {
        if (g_atomic_int_get(&ms->in.done)) {
            finish_incoming(ms);
        } else {
            emit_incoming_log(ms);
        }
    }
    if (migration_is_active(ms)) {
        return G_SOURCE_CONTINUE;
    }
    ms->poll_id = 0;
    return G_SOURCE_REMOVE;
}

static void start_poll(MigrationState *ms)
{
    GSource *src;

    if (ms->poll_id) {
        return;
    }
    src = g_timeout_source_new(POLL_MS);
    g_source_set_callback(src, poll_cb, ms, NULL);
    ms->poll_id = g_source_attach(src, ms->ctx);
    g_source_unref(src);
}

/* ---- outgoing ------------------------------------------------------------- */

/* Main loop: the job asks for the VM to stop for its final burst. */
static gboolean stop_vm_main(gpointer opaque)
{
    MigrationState *ms = opaque;
    RunState now = runstate_get();

    /* What happened before the stop is reported before STOP. */
    poll_outgoing(ms);
    ms->state_before = now;
    mig_global_state_set(&ms->gs, runstate_name(now));
    vm_stop(RUN_STATE_FINISH_MIGRATE);
    ms->vm_stopped = true;
    g_mutex_lock(&ms->lock);
    g_source_unref(ms->stop_src);
    ms->stop_src = NULL;
    ms->stop_done = true;
    g_cond_broadcast(&ms->cond);
    g_mutex_unlock(&ms->lock);
    return G_SOURCE_REMOVE;
}

/* Migration thread: wait for the main loop to stop the VM. */
static bool job_stop_vm(void *opaque, GError **errp)
{
    MigrationState *ms = opaque;
    bool ok;

    g_mutex_lock(&ms->lock);
    ms->stop_done = false;
    if (!ms->quitting) {
        ms->stop_src = g_idle_source_new();
        g_source_set_priority(ms->stop_src, G_PRIORITY_HIGH);
        g_source_set_callback(ms->stop_src, stop_vm_main, ms, NULL);
        g_source_attach(ms->stop_src, ms->ctx);
    }
    while (!ms->stop_done && !ms->quitting) {
        g_cond_wait(&ms->cond, &ms->lock);
    }
    ok = ms->stop_done;
    g_mutex_unlock(&ms->lock);
    if (!ok) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                    "the VMM is shutting down");
    }
    return ok;
}

/* Migration thread: auto-converge's new throttle percentage. */
static void job_throttle(void *opaque, unsigned pct)
{
    MigrationState *ms = opaque;

    cpu_throttle_set(ms->throttle, pct);
}

static QEMUFile *connect_uri(void *uri, GError **errp)
{
    return migration_channel_connect(uri, errp);
}

static int connect_socket(void *uri, GError **errp)
{
    return migration_channel_connect_socket(uri, errp);
}

static QEMUFile *accept_on(void *listener, GError **errp)
{
    return migration_listener_accept(listener, errp);
}

static int accept_socket(void *listener, GError **errp)
{
    return migration_listener_accept_socket(listener, errp);
}

/* How one end makes its connections: the main stream and the preempt
 * channel as QEMUFiles, multifd channels as bare sockets. */
typedef struct ChannelOpener {
    QEMUFile *(*file)(void *where, GError **errp);
    int (*socket)(void *where, GError **errp);
} ChannelOpener;

static const ChannelOpener connecting = { connect_uri, connect_socket };
static const ChannelOpener accepting = { accept_on, accept_socket };

/* The connections of one migration in the order they are made: the main
 * stream, with postcopy-preempt a second connection to the same place
 * (QEMU 7.2 opens it right after the main one, at the start and at each
 * recovery; the destination tells them apart by order), then the multifd
 * channels (their initial packets say which is which). */
typedef struct Channels {
    QEMUFile *f, *urgent;
    int multifd[MULTIFD_CHANNELS_MAX];
    unsigned nr_multifd;
} Channels;

/* This end's multifd channels for a new migration. */
static unsigned multifd_channels(const MigrationState *ms)
{
    return ms->caps[MIG_CAP_MULTIFD] ? ms->params.multifd_channels : 0;
}

static void close_channels(Channels *ch)
{
    qemu_fclose(ch->f, NULL);
    qemu_fclose(ch->urgent, NULL);
    for (unsigned i = 0; i < ch->nr_multifd; i++) {
        close(ch->multifd[i]);
    }
    memset(ch, 0, sizeof(*ch));
}

/* 'nr_multifd' < 0: as many as the capabilities say once the main
 * stream is there (a destination takes them until then). */
static bool open_channels(MigrationState *ms, const ChannelOpener *open,
                          void *where, int nr_multifd, Channels *ch,
                          GError **errp)
{
    memset(ch, 0, sizeof(*ch));
    ch->f = open->file(where, errp);
    if (!ch->f) {
        return false;
    }
    if (nr_multifd < 0) {
        nr_multifd = multifd_channels(ms);
    }
    if (ms->caps[MIG_CAP_POSTCOPY_PREEMPT]) {
        ch->urgent = open->file(where, errp);
        if (!ch->urgent) {
            g_prefix_error(errp, "postcopy preempt channel: ");
            close_channels(ch);
            return false;
        }
    }
    while (ch->nr_multifd < (unsigned)nr_multifd) {
        int fd = open->socket(where, errp);

        if (fd < 0) {
            g_prefix_error(errp, "multifd channel %u: ", ch->nr_multifd);
            close_channels(ch);
            return false;
        }
        ch->multifd[ch->nr_multifd++] = fd;
    }
    return true;
}

static void record_start_failure(MigrationState *ms, const GError *err)
{
    memset(&ms->last, 0, sizeof(ms->last));
    ms->last.status = MIGRATION_STATUS_FAILED;
    g_strlcpy(ms->last.error_desc, err->message, sizeof(ms->last.error_desc));
    ms->have_last = true;
    emit_status(ms, MIGRATION_STATUS_SETUP);
    emit_status(ms, MIGRATION_STATUS_FAILED);
}

static const uint8_t *vm_uuid(const MigrationState *ms)
{
    const VmConfig *cfg = ms->machine->cfg;

    return cfg && cfg->has_uuid ? cfg->uuid : no_uuid;
}

/* The source's channels, its multifd channels on RAM, dirty logging. */
static bool start_channels(MigrationState *ms, const char *uri, Channels *ch,
                           GError **errp)
{
    if (!open_channels(ms, &connecting, (void *)uri, -1, ch, errp)) {
        return false;
    }
    ms->out_multifd = ch->nr_multifd;
    if (ms->out_multifd &&
        !ram_migration_multifd_send_start(ms->ram, ch->multifd,
                                          ch->nr_multifd,
                                          ms->caps[MIG_CAP_ZERO_COPY_SEND],
                                          vm_uuid(ms), errp)) {
        ch->nr_multifd = 0;         /* closed already */
        ram_migration_multifd_stop(ms->ram);
        close_channels(ch);
        return false;
    }
    ms->dirty = kvm_dirty_log_start(ms->machine->kvm, &ms->machine->mem,
                                    errp);
    if (!ms->dirty) {
        ram_migration_multifd_stop(ms->ram);
        ch->nr_multifd = 0;
        close_channels(ch);
        return false;
    }
    return true;
}

bool migration_start_outgoing(MigrationState *ms, const char *uri,
                              GError **errp)
{
    const MigrationHooks hooks = {
        .stop_vm = job_stop_vm, .throttle = job_throttle,
        .inactivate_disks = inactivate_drives, .opaque = ms,
    };
    MigrationParams params = ms->params;
    GError *err = NULL;
    Channels ch;

    if (migration_is_active(ms)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "There's a migration process in progress");
        return false;
    }
    if (runstate_check(RUN_STATE_INMIGRATE)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Guest is waiting for an incoming migration");
        return false;
    }
    if (!savevm_state_saveable(ms->sv, errp) ||
        !check_caps(ms->caps, errp)) {
        return false;
    }
    ms->reported = MIGRATION_STATUS_NONE;
    ms->reported_pass = 0;
    if (!start_channels(ms, uri, &ch, &err)) {
        record_start_failure(ms, err);
        g_propagate_error(errp, err);
        return false;
    }
    ram_migration_set_dirty_sync(ms->ram, kvm_dirty_log_sync, ms->dirty);
    dirty_bitmap_migration_set_enabled(ms->bitmaps,
                                       ms->caps[MIG_CAP_DIRTY_BITMAPS]);
    /* The devices' own writes into guest RAM: KVM does not log them. */
    virtio_blk_pci_set_dirty_log(ms->machine, ms->dirty);
    ms->have_last = false;
    params.auto_converge = ms->caps[MIG_CAP_AUTO_CONVERGE];
    params.return_path = ms->caps[MIG_CAP_RETURN_PATH];
    params.postcopy_ram = ms->caps[MIG_CAP_POSTCOPY_RAM];
    params.postcopy_preempt = ms->caps[MIG_CAP_POSTCOPY_PREEMPT];
    params.switchover_ack = ms->caps[MIG_CAP_SWITCHOVER_ACK];
    params.postcopy_bitmaps = ms->caps[MIG_CAP_DIRTY_BITMAPS];
    if (!ms->throttle) {
        ms->throttle = cpu_throttle_new(ms->machine->vcpus,
                                        ms->machine->nr_vcpus);
    }
    emit_status(ms, MIGRATION_STATUS_SETUP);
    ms->job = migration_job_start(ms->sv, ch.f, ch.urgent, ms->ram, &params,
                                  &hooks);
    start_poll(ms);
    return true;
}

bool migration_cancel(MigrationState *ms, GError **errp)
{
    MigrationStats st;

    if (!ms->job) {
        return true;
    }
    migration_job_get_stats(ms->job, &st);
    if (st.status >= MIGRATION_STATUS_POSTCOPY_ACTIVE &&
        st.status < MIGRATION_STATUS_COMPLETED) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Postcopy migration cannot be cancelled: the guest's "
                    "state is on both sides (migrate-pause stops the "
                    "transfer)");
        return false;
    }
    migration_job_cancel(ms->job);
    /* A channel blocked on a stalled destination would not see it. */
    ram_migration_multifd_shutdown(ms->ram);
    return true;
}

bool migration_start_postcopy(MigrationState *ms, GError **errp)
{
    if (!ms->caps[MIG_CAP_POSTCOPY_RAM] && !ms->caps[MIG_CAP_DIRTY_BITMAPS]) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Enable postcopy with migrate_set_capability before the "
                    "start of migration");
        return false;
    }
    if (!ms->job && !ms->have_last) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Postcopy must be started after migration has been "
                    "started");
        return false;
    }
    if (!ms->job) {
        return true;    /* as QEMU: harmless once the migration is over */
    }
    return migration_job_start_postcopy(ms->job, errp);
}

bool migration_pause(MigrationState *ms, GError **errp)
{
    MigIncoming *mig = incoming_stream(ms);

    if (ms->job) {
        return migration_job_pause(ms->job, errp);
    }
    if (mig) {
        return mig_incoming_pause(mig, errp);
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                "migrate-pause is currently only supported during "
                "postcopy-active state");
    return false;
}

bool migration_resume_outgoing(MigrationState *ms, const char *uri,
                               GError **errp)
{
    MigrationStats st;
    Channels ch;

    if (!ms->job) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Cannot resume if there is no paused migration");
        return false;
    }
    migration_job_get_stats(ms->job, &st);
    if (st.status != MIGRATION_STATUS_POSTCOPY_PAUSED) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Cannot resume if there is no paused migration");
        return false;
    }
    if (!open_channels(ms, &connecting, (void *)uri, ms->out_multifd, &ch,
                       errp)) {
        return false;
    }
    /* The job waits: RAM's channels are replaced before it streams on. */
    ram_migration_multifd_restart(ms->ram, ch.multifd, ch.nr_multifd);
    return migration_job_resume(ms->job, ch.f, ch.urgent, errp);
}

/* ---- incoming ------------------------------------------------------------- */

static void set_in_status(MigrationState *ms, MigrationStatus s)
{
    g_mutex_lock(&ms->lock);
    ms->in.status = s;
    g_mutex_unlock(&ms->lock);
}

/* Main loop: a postcopy RUN starts the guest while RAM still streams. */
static gboolean run_guest_main(gpointer opaque)
{
    MigrationState *ms = opaque;

    ms->in.guest_started = true;
    start_guest_after_load(ms, true);
    return G_SOURCE_REMOVE;
}

static void in_run_guest(void *opaque)
{
    MigrationState *ms = opaque;
    GSource *src = g_idle_source_new();

    g_source_set_priority(src, G_PRIORITY_HIGH);
    g_source_set_callback(src, run_guest_main, ms, NULL);
    g_source_attach(src, ms->ctx);
    g_source_unref(src);
}

static void in_status_changed(void *opaque)
{
    MigrationState *ms = opaque;

    g_main_context_wakeup(ms->ctx);
}

/* Whether Linux thread 'tid' is one of this process's. */
static bool own_thread(int64_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%" PRId64, tid);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* Fault thread: blocktime is charged to the vCPU whose thread faulted.
 * When KVM fetches the page from a kernel worker (its asynchronous page
 * faults, which this host uses) the fault names the worker; a lone vCPU is
 * then the one waiting, several cannot be told apart. */
static int in_vcpu_of_thread(void *opaque, int64_t tid)
{
    MigrationState *ms = opaque;

    for (unsigned i = 0; i < ms->machine->nr_vcpus; i++) {
        if (vcpu_thread_id(ms->machine->vcpus[i]) == tid) {
            return i;
        }
    }
    return ms->machine->nr_vcpus == 1 && !own_thread(tid) ? 0 : -1;
}

static MigIncoming *new_incoming_stream(MigrationState *ms)
{
    const MigIncomingConfig cfg = {
        .postcopy_ram = ms->caps[MIG_CAP_POSTCOPY_RAM],
        .preempt = ms->caps[MIG_CAP_POSTCOPY_PREEMPT],
        .switchover_ack = ms->caps[MIG_CAP_SWITCHOVER_ACK],
        .nr_vcpus = ms->machine->nr_vcpus,
    };
    const MigIncomingHooks hooks = {
        .run_guest = in_run_guest, .status_changed = in_status_changed,
        .vcpu_of_thread = in_vcpu_of_thread, .opaque = ms,
    };

    return mig_incoming_new(ms->sv, ms->ram, &ms->machine->mem, &cfg, &hooks);
}

static gpointer incoming_thread(gpointer opaque)
{
    MigrationState *ms = opaque;
    Incoming *in = &ms->in;
    MigIncoming *mig = NULL;
    bool ok = false;
    Channels ch;

    if (open_channels(ms, &accepting, in->listener, -1, &ch, &in->error)) {
        in->nr_multifd = ch.nr_multifd;
        mig = new_incoming_stream(ms);
        if (ch.nr_multifd) {
            ram_migration_multifd_recv_start(ms->ram, ch.multifd,
                                             ch.nr_multifd, vm_uuid(ms));
        }
    }
    if (mig) {
        g_mutex_lock(&ms->lock);
        in->mig = mig;
        if (ms->quitting) {
            mig_incoming_shutdown(mig);
        }
        g_mutex_unlock(&ms->lock);
        ok = mig_incoming_run(mig, ch.f, ch.urgent, &in->error);
        ram_migration_multifd_stop(ms->ram);
    }
    in->total_ms = (g_get_monotonic_time() - in->start_us) / 1000;
    set_in_status(ms, ok ? MIGRATION_STATUS_COMPLETED : MIGRATION_STATUS_FAILED);
    g_atomic_int_set(&in->done, 1);
    g_main_context_wakeup(ms->ctx);
    return NULL;
}

/* migrate-recover: the source of a paused postcopy connects again. */
static gpointer recover_thread(gpointer opaque)
{
    MigrationState *ms = opaque;
    MigIncoming *mig = incoming_stream(ms);
    g_autoptr(GError) err = NULL;
    Channels ch;

    if (!open_channels(ms, &accepting, ms->in.recover_listener,
                       ms->in.nr_multifd, &ch, &err)) {
        tern_error_report("postcopy recovery failed: %s", err->message);
        mig_incoming_recover_abort(mig);
        return NULL;
    }
    /* The new channels before the listen thread reads on. */
    ram_migration_multifd_restart(ms->ram, ch.multifd, ch.nr_multifd);
    if (!mig_incoming_recover(mig, ch.f, ch.urgent, &err)) {
        tern_error_report("postcopy recovery failed: %s", err->message);
    }
    return NULL;
}

static void stop_recover_listener(Incoming *in)
{
    if (in->recover_thread) {
        migration_listener_cancel(in->recover_listener);
        g_thread_join(in->recover_thread);
        in->recover_thread = NULL;
    }
    migration_listener_free(in->recover_listener);
    in->recover_listener = NULL;
}

bool migration_recover(MigrationState *ms, const char *uri, GError **errp)
{
    MigIncoming *mig = incoming_stream(ms);
    Incoming *in = &ms->in;

    if (!mig) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Migrate recover can only be run when postcopy is "
                    "paused.");
        return false;
    }
    if (!mig_incoming_recover_begin(mig, errp)) {
        return false;
    }
    stop_recover_listener(in);      /* an earlier recovery's, done */
    in->recover_listener = migration_listener_new(uri, errp);
    if (!in->recover_listener) {
        mig_incoming_recover_abort(mig);
        return false;
    }
    in->recover_thread = g_thread_new("migration-recover", recover_thread,
                                      ms);
    return true;
}

bool migration_start_incoming(MigrationState *ms, const char *uri,
                              GError **errp)
{
    Incoming *in = &ms->in;

    if (in->listener || in->status != MIGRATION_STATUS_NONE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "The incoming migration has already been started");
        return false;
    }
    if (!runstate_check(RUN_STATE_INMIGRATE)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'-incoming' was not specified on the command line");
        return false;
    }
    in->listener = migration_listener_new(uri, errp);
    if (!in->listener) {
        return false;
    }
    set_in_status(ms, MIGRATION_STATUS_SETUP);
    in->start_us = g_get_monotonic_time();
    /* As QEMU, before migrate-incoming's reply: libvirt waits for the
     * migration only once it has seen it start. */
    emit_status(ms, MIGRATION_STATUS_SETUP);
    in->thread = g_thread_new("migration-in", incoming_thread, ms);
    start_poll(ms);
    return true;
}

static void get_postcopy_info(MigrationState *ms, const UffdPagerStats *p,
                              MigrationInfo *out)
{
    out->has_blocktime = ms->caps[MIG_CAP_POSTCOPY_BLOCKTIME];
    out->blocktime_ms = p->blocktime_ms;
    out->nr_vcpus = MIN(p->nr_vcpus, MIGRATION_MAX_VCPUS);
    for (unsigned i = 0; i < out->nr_vcpus; i++) {
        out->vcpu_blocktime_ms[i] = p->vcpu_blocktime_ms[i];
    }
    out->has_fault_latency = true;
    out->faults = p->faults;
    out->page_requests = p->requests;
    out->fault_latency_count = p->latency.count;
    out->fault_latency_ns[0] = histogram_quantile(&p->latency, 50, 100);
    out->fault_latency_ns[1] = histogram_quantile(&p->latency, 90, 100);
    out->fault_latency_ns[2] = histogram_quantile(&p->latency, 99, 100);
    out->fault_latency_ns[3] = p->latency.max;
}

static void get_incoming_info(MigrationState *ms, MigrationInfo *out)
{
    MigIncoming *mig = incoming_stream(ms);
    MigIncomingInfo info;

    out->stats.status = incoming_status(ms);
    out->stats.total_time_ms = ms->in.total_ms;
    if (!mig) {
        return;
    }
    mig_incoming_get_info(mig, &info);
    g_strlcpy(out->stats.error_desc, info.error_desc,
              sizeof(out->stats.error_desc));
    if (info.postcopy) {
        get_postcopy_info(ms, &info.pager, out);
        g_free(info.pager.vcpu_blocktime_ms);
    }
}

void migration_get_info(MigrationState *ms, MigrationInfo *out)
{
    memset(out, 0, sizeof(*out));
    if (ms->job) {
        migration_job_get_stats(ms->job, &out->stats);
        if (out->stats.status == MIGRATION_STATUS_NONE) {
            out->stats.status = MIGRATION_STATUS_SETUP;  /* thread not up yet */
        }
        out->has_ram = out->stats.status >= MIGRATION_STATUS_ACTIVE;
        out->dirty_pages_rate = ms->dirty ? kvm_dirty_log_rate(ms->dirty) : 0;
    } else if (ms->have_last) {
        out->stats = ms->last;
        out->has_ram = ms->last.total != 0;
        out->dirty_pages_rate = ms->last_dirty_rate;
    } else if (incoming_status(ms) != MIGRATION_STATUS_NONE) {
        out->incoming = true;
        get_incoming_info(ms, out);
    }
    if (out->stats.total_time_ms) {
        out->pages_per_second = (out->stats.normal + out->stats.duplicate) *
                                1000 / out->stats.total_time_ms;
    }
}

char *migration_ram_sha256(MigrationState *ms)
{
    const GuestMemory *mem = &ms->machine->mem;
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);

    /* Regions are in memfd order: the hash is the RAM block's. */
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const GuestRegion *r = &mem->regions[i];

        for (uint64_t off = 0; off < r->size; off += 64 * MiB) {
            g_checksum_update(sum, r->hva + off, MIN(64 * MiB, r->size - off));
        }
    }
    return g_strdup(g_checksum_get_string(sum));
}

bool migration_ram_load_file(MigrationState *ms, const char *path,
                             uint64_t gpa, GError **errp)
{
    g_autoptr(GMappedFile) mf = g_mapped_file_new(path, false, errp);

    if (!mf) {
        return false;
    }
    size_t len = g_mapped_file_get_length(mf);

    /* guest_mem_write refuses ranges that cross a region or leave RAM. */
    if (!guest_mem_write(&ms->machine->mem, gpa,
                         g_mapped_file_get_contents(mf), len, errp)) {
        return false;
    }
    if (ms->dirty) {
        kvm_dirty_log_mark(ms->dirty, gpa, len);   /* KVM did not see it */
    }
    return true;
}

void migration_state_free(MigrationState *ms)
{
    if (!ms) {
        return;
    }
    if (ms->poll_id) {
        GSource *src = g_main_context_find_source_by_id(ms->ctx, ms->poll_id);

        if (src) {
            g_source_destroy(src);
        }
    }
    g_mutex_lock(&ms->lock);
    ms->quitting = true;
    if (ms->stop_src) {
        g_source_destroy(ms->stop_src);
        g_source_unref(ms->stop_src);
        ms->stop_src = NULL;
    }
    g_cond_broadcast(&ms->cond);
    if (ms->in.mig) {
        mig_incoming_shutdown(ms->in.mig);      /* the loader fails */
    }
    g_mutex_unlock(&ms->lock);
    if (ms->job) {
        migration_job_cancel(ms->job);
        ram_migration_multifd_shutdown(ms->ram);
        migration_job_free(ms->job);
        ram_migration_multifd_stop(ms->ram);
    }
    cpu_throttle_free(ms->throttle);
    stop_recover_listener(&ms->in);
    if (ms->in.thread) {
        migration_listener_cancel(ms->in.listener);
        g_thread_join(ms->in.thread);
    }
    migration_listener_free(ms->in.listener);
    mig_incoming_free(ms->in.mig);
    g_clear_error(&ms->in.error);
    if (ms->dirty) {
        virtio_blk_pci_set_dirty_log(ms->machine, NULL);
        kvm_dirty_log_stop(ms->dirty);
    }
    device_list_remove(ms->machine->devices, ms->snapshots);
    vm_snapshot_free(ms->snapshots);
    ram_migration_free(ms->ram);
    savevm_free(ms->sv);
    dirty_bitmap_migration_free(ms->bitmaps);
    if (ms->ev_free) {
        ms->ev_free(ms->ev_opaque);
    }
    g_cond_clear(&ms->cond);
    g_mutex_clear(&ms->lock);
    g_free(ms);
}
