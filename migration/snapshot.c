/*
 * savevm / loadvm / delvm of the VM (include/migration/snapshot.h), in the
 * order of seed 004's save_snapshot / load_snapshot / delete_snapshot. The
 * per-drive steps and their messages are block/snapshot-all.c's; this file
 * owns the sequence around them: the checks, the run state, the stream into
 * and out of the VM state area, and the cleanup when a step fails.
 */
#include "block/snapshot-all.h"
#include "migration/qemu-file-block.h"
#include "migration/snapshot.h"
#include "softmmu/runstate.h"

struct VmSnapshot {
    SaveVM *sv;
    const BlockBackendList *drives;
    const VmSnapshotOps *ops;
    void *opaque;
    bool incomplete;            /* a load failed half-way */
};

VmSnapshot *vm_snapshot_new(SaveVM *sv, const BlockBackendList *drives,
                            const VmSnapshotOps *ops, void *opaque)
{
    static const VmSnapshotOps none;
    VmSnapshot *vs = g_new0(VmSnapshot, 1);

    vs->sv = sv;
    vs->drives = drives;
    vs->ops = ops ? ops : &none;
    vs->opaque = opaque;
    return vs;
}

void vm_snapshot_free(VmSnapshot *vs)
{
    g_free(vs);
}

/* The drives of the request, every one able to snapshot. */
static SnapshotDisks *disks(VmSnapshot *vs, const VmSnapshotArgs *a,
                            GError **errp)
{
    SnapshotDisks *d = snapshot_disks_new(vs->drives, a->devices, errp);

    if (d && !snapshot_disks_check(d, errp)) {
        g_clear_pointer(&d, snapshot_disks_free);
    }
    return d;
}

/* ---- save ---- */

/* A name in use: HMP replaces the old snapshot, QMP refuses. */
static bool free_name(SnapshotDisks *d, const char *name, bool overwrite,
                      GError **errp)
{
    int have;

    if (overwrite) {
        return snapshot_disks_delete(d, name, errp);
    }
    have = snapshot_disks_have(d, name, errp);
    if (have == 1) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "Snapshot '%s' "
                    "already exists in one or more devices", name);
    }
    return have == 0;
}

/* The whole VM state into vm_bs's VM state area; its size in *size. */
static bool write_state(VmSnapshot *vs, BlockNode *vm_bs, uint64_t *size,
                        GError **errp)
{
    QEMUFile *f = qemu_file_new_vmstate_output(vm_bs);
    bool ok = savevm_save_all(vs->sv, f, errp);

    *size = qemu_file_tell(f);
    ok = qemu_fclose(f, ok ? errp : NULL) && ok;
    if (!ok) {
        g_prefix_error(errp, "Error while writing VM state: ");
    }
    return ok;
}

/* With the VM stopped: the state, then the snapshot on every drive. */
static bool take(VmSnapshot *vs, SnapshotDisks *d, BlockNode *vm_bs,
                 const char *name, GDateTime *now, GError **errp)
{
    BlockSnapshotInfo sn = {
        .name = (char *)name,
        .date_sec = g_date_time_to_unix(now),
        .date_nsec = g_date_time_get_microsecond(now) * 1000,
        .vm_clock_nsec = vs->ops->vm_clock_ns ? vs->ops->vm_clock_ns(vs->opaque)
                                              : 0,
        .icount = -1,
    };
    uint64_t size;

    /* The state reaches the disk before a snapshot points at it, and the
     * snapshots before the command returns: as durable as QEMU's. */
    if (!write_state(vs, vm_bs, &size, errp) || !bdrv_flush(vm_bs, errp)) {
        return false;
    }
    if (!snapshot_disks_create(d, &sn, vm_bs, size, errp) ||
        !snapshot_disks_flush(d, errp)) {
        /* No drive may keep a snapshot the others lack. */
        snapshot_disks_delete(d, name, NULL);
        return false;
    }
    return true;
}

bool vm_snapshot_save(VmSnapshot *vs, const VmSnapshotArgs *a, GError **errp)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *name = a->name ? g_strdup(a->name)
                                    : g_date_time_format(now, "vm-%Y%m%d%H%M%S");
    g_autoptr(SnapshotDisks) d = NULL;
    BlockNode *vm_bs;
    bool running, ok;

    if (vs->ops->can_save && !vs->ops->can_save(vs->opaque, errp)) {
        return false;
    }
    d = disks(vs, a, errp);
    if (!d || (a->name && !free_name(d, name, a->overwrite, errp))) {
        return false;
    }
    vm_bs = snapshot_disks_vmstate_node(d, a->vmstate, errp);
    if (!vm_bs) {
        return false;
    }
    running = runstate_is_running(runstate_get());
    if (vs->ops->before_save) {
        vs->ops->before_save(vs->opaque);
    }
    /* Stopping completes or parks every device's requests. */
    if (running) {
        vm_stop(RUN_STATE_SAVE_VM);
    }
    ok = take(vs, d, vm_bs, name, now, errp);
    if (running) {
        vm_start();
    }
    return ok;
}

/* ---- load ---- */

/* vm_bs's snapshot 'name', which must hold VM state. */
static BlockSnapshotInfo *state_snapshot(BlockNode *vm_bs, const char *name,
                                         GError **errp)
{
    BlockSnapshotInfo *sn = NULL;

    if (!snapshot_disks_find(vm_bs, name, &sn, errp)) {
        if (errp && !*errp) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND, "Snapshot '%s' "
                        "does not exist in one or more devices", name);
        }
        return NULL;
    }
    if (!sn->vm_state_size) {
        /* (QEMU 7.2's wording, two spaces included.) */
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "This is a disk-only "
                    "snapshot. Revert to it  offline using qemu-img");
        block_snapshot_info_free(sn);
        return NULL;
    }
    return sn;
}

/* The stream's header, read where the snapshot keeps it: a stream of
 * another machine or no stream at all is refused while nothing changed. */
static bool check_header(VmSnapshot *vs, BlockNode *vm_bs,
                         const BlockSnapshotInfo *sn, GError **errp)
{
    QEMUFile *f = qemu_file_new_snapshot_vmstate_input(vm_bs, sn->id_str,
                                                       sn->vm_state_size);
    bool ok = savevm_load_header(vs->sv, f, errp);

    qemu_fclose(f, NULL);
    if (!ok) {
        g_prefix_error(errp, "Error while loading VM state: ");
    }
    return ok;
}

/* Past the checks: the drives, the machine and the state change. */
static bool revert(VmSnapshot *vs, SnapshotDisks *d, BlockNode *vm_bs,
                   const char *name, GError **errp)
{
    g_autoptr(BlockSnapshotInfo) sn = NULL;
    QEMUFile *f;
    bool ok;

    if (!snapshot_disks_goto(d, name, errp) ||
        (vs->ops->reset && !vs->ops->reset(vs->opaque, errp))) {
        return false;
    }
    /* Reverting brought the snapshot's VM state area back. */
    sn = state_snapshot(vm_bs, name, errp);
    if (!sn) {
        return false;
    }
    f = qemu_file_new_vmstate_input(vm_bs, sn->vm_state_size);
    ok = savevm_load(vs->sv, f, errp);
    qemu_fclose(f, NULL);
    if (!ok) {
        g_prefix_error(errp, "Error while loading VM state: ");
    }
    return ok;
}

static void append_note(GError **errp, const char *note)
{
    if (errp && *errp) {
        char *msg = g_strconcat((*errp)->message, note, NULL);

        g_free((*errp)->message);
        (*errp)->message = msg;
    }
}

static bool load(VmSnapshot *vs, const VmSnapshotArgs *a, GError **errp)
{
    g_autoptr(SnapshotDisks) d = disks(vs, a, errp);
    g_autoptr(BlockSnapshotInfo) sn = NULL;
    BlockNode *vm_bs;
    int have;

    if (!d || (have = snapshot_disks_have(d, a->name, errp)) < 0) {
        return false;
    }
    if (!have) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND, "Snapshot '%s' does "
                    "not exist in one or more devices", a->name);
        return false;
    }
    vm_bs = snapshot_disks_vmstate_node(d, a->vmstate, errp);
    if (!vm_bs || !(sn = state_snapshot(vm_bs, a->name, errp)) ||
        !check_header(vs, vm_bs, sn, errp) ||
        !snapshot_disks_can_goto(d, a->name, errp)) {
        return false;
    }
    if (!revert(vs, d, vm_bs, a->name, errp) ||
        !snapshot_disks_flush(d, errp)) {
        vs->incomplete = true;
        append_note(errp, " (the VM stays stopped: its state is incomplete "
                    "until a snapshot loads or the VM is reset)");
        return false;
    }
    vs->incomplete = false;
    return true;
}

bool vm_snapshot_load(VmSnapshot *vs, const VmSnapshotArgs *a, GError **errp)
{
    bool running = runstate_is_running(runstate_get());

    /* As QEMU's loadvm: stopped first, and left stopped if the load fails. */
    if (running) {
        vm_stop(RUN_STATE_RESTORE_VM);
    }
    if (!load(vs, a, errp)) {
        return false;
    }
    if (running) {
        vm_start();
    }
    return true;
}

bool vm_snapshot_can_run(const VmSnapshot *vs, GError **errp)
{
    if (vs->incomplete) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "The VM state is "
                    "incomplete after a failed loadvm: load a snapshot or "
                    "reset the VM first");
        return false;
    }
    return true;
}

void vm_snapshot_machine_reset(VmSnapshot *vs)
{
    vs->incomplete = false;
}

/* ---- delete, read ---- */

bool vm_snapshot_delete(VmSnapshot *vs, const VmSnapshotArgs *a,
                        GError **errp)
{
    g_autoptr(SnapshotDisks) d = disks(vs, a, errp);

    return d && snapshot_disks_delete(d, a->name, errp) &&
           snapshot_disks_flush(d, errp);
}

GBytes *vm_snapshot_read_state(BlockNode *bs, const char *name, GError **errp)
{
    g_autoptr(BlockSnapshotInfo) sn = NULL;
    g_autofree uint8_t *buf = NULL;
    QEMUFile *f;
    size_t n;

    if (!bdrv_snapshot_find(bs, name, &sn, errp)) {
        g_prefix_error(errp, "Snapshot '%s': ", name);
        return NULL;
    }
    if (sn->vm_state_size > G_MAXSIZE / 2) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "Snapshot '%s': VM "
                    "state of %" PRIu64 " bytes", name, sn->vm_state_size);
        return NULL;
    }
    buf = g_try_malloc(MAX(sn->vm_state_size, 1));
    if (!buf) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "Snapshot '%s': no "
                    "memory for %" PRIu64 " bytes", name, sn->vm_state_size);
        return NULL;
    }
    f = qemu_file_new_snapshot_vmstate_input(bs, sn->id_str,
                                             sn->vm_state_size);
    n = qemu_get_buffer(f, buf, sn->vm_state_size);
    if (!qemu_fclose(f, errp)) {
        return NULL;
    }
    return g_bytes_new_take(g_steal_pointer(&buf), n);
}
