/*
 * Internal snapshots of a running VM, as QEMU 7.2's savevm / loadvm /
 * delvm make them (seed 004's save_snapshot, load_snapshot,
 * delete_snapshot): one qcow2 internal snapshot of the same name, date and
 * guest clock on every drive taking part (block/snapshot-all.h), one of
 * which also keeps the whole VM state - the migration stream of the SaveVM
 * - in its VM state area.
 *
 * Save: refused while a migration runs or the state cannot be saved; every
 * drive must take snapshots; a name in use is replaced (HMP) or refused
 * (QMP); the VM stops (its devices finish or park their requests), the
 * stream goes into the VM state area and is flushed, then the snapshot is
 * created on every drive (all are deleted again if one fails) and every
 * drive is flushed - durable when savevm returns, as QEMU's - and the VM
 * runs again if it ran. Load: the snapshot must exist on every drive and hold VM
 * state; the VM stops, the stream's header is checked where the snapshot
 * keeps it (a stream for another machine is refused before anything
 * changes), every drive is reverted, the machine reset, the state loaded,
 * and the VM runs again if it ran. A load that fails after the drives or
 * the machine changed leaves the VM stopped and marked incomplete: it must
 * not run until a load succeeds or the machine is reset.
 *
 * Everything runs on the main-loop thread and returns when done, as QEMU's
 * commands do.
 */
#ifndef MIGRATION_SNAPSHOT_H
#define MIGRATION_SNAPSHOT_H

#include "block/block-backend.h"
#include "migration/savevm.h"

/* What the VM around the snapshots provides; every callback may be NULL. */
typedef struct VmSnapshotOps {
    /* False with *errp if no snapshot may be taken now (a migration is in
     * progress...). Checked before anything else. */
    bool (*can_save)(void *opaque, GError **errp);
    /* Just before a save stops the VM: record the run state the stream
     * carries (globalstate). */
    void (*before_save)(void *opaque);
    /* The guest clock to record with a snapshot, in ns. */
    uint64_t (*vm_clock_ns)(void *opaque);
    /* Power-on state before a load (vCPUs paused; no RESET event). */
    bool (*reset)(void *opaque, GError **errp);
} VmSnapshotOps;

/* One request. */
typedef struct VmSnapshotArgs {
    const char *name;               /* the tag; a save without one is named
                                     * vm-%Y%m%d%H%M%S (local time) */
    const char *vmstate;            /* node-name of the drive for the VM
                                     * state; NULL: the first that can */
    const char *const *devices;     /* node-names (NULL-terminated); NULL:
                                     * every writable drive (HMP) */
    bool overwrite;                 /* save: replace a snapshot of the same
                                     * name (HMP) instead of refusing (QMP) */
} VmSnapshotArgs;

typedef struct VmSnapshot VmSnapshot;

/* sv and drives must outlive the VmSnapshot. */
VmSnapshot *vm_snapshot_new(SaveVM *sv, const BlockBackendList *drives,
                            const VmSnapshotOps *ops, void *opaque);
void vm_snapshot_free(VmSnapshot *vs);

bool vm_snapshot_save(VmSnapshot *vs, const VmSnapshotArgs *a, GError **errp);
bool vm_snapshot_load(VmSnapshot *vs, const VmSnapshotArgs *a, GError **errp);
bool vm_snapshot_delete(VmSnapshot *vs, const VmSnapshotArgs *a,
                        GError **errp);

/* False with *errp while the VM holds a half-loaded state (a load failed
 * after it had changed the drives or the machine): cont must refuse. */
bool vm_snapshot_can_run(const VmSnapshot *vs, GError **errp);
/* The machine was reset: whatever a failed load left is gone. */
void vm_snapshot_machine_reset(VmSnapshot *vs);

/* The VM state of snapshot 'name' of bs (by name, else by id) as bytes,
 * read where the snapshot keeps it: the image is not changed. */
GBytes *vm_snapshot_read_state(BlockNode *bs, const char *name,
                               GError **errp);

#endif
