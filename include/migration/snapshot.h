/*
 * Internal snapshots with VM state, as QEMU's savevm/loadvm make them: the
 * whole migration stream is written into the image's VM state area and the
 * snapshot records its size; loading reverts the image to the snapshot and
 * reads the stream back. One node holds the state (QEMU's "vmstate" node);
 * snapshotting the VM's other disks is the caller's (QMP's) business.
 */
#ifndef MIGRATION_SNAPSHOT_H
#define MIGRATION_SNAPSHOT_H

#include "block/block.h"
#include "migration/savevm.h"

/* Save the VM (stopped) as snapshot 'name' of 'bs', replacing one of the
 * same name, as HMP savevm does. vm_clock_ns: the guest clock to record. */
bool savevm_snapshot_save(SaveVM *sv, BlockNode *bs, const char *name,
                          uint64_t vm_clock_ns, GError **errp);
/* Revert 'bs' to snapshot 'name' (id or name) and load its VM state. */
bool savevm_snapshot_load(SaveVM *sv, BlockNode *bs, const char *name,
                          GError **errp);
/* The VM state of snapshot 'name' as bytes, for inspection; reverts 'bs'
 * to the snapshot, so use it on a copy of the image. */
GBytes *savevm_snapshot_read(BlockNode *bs, const char *name, GError **errp);

#endif
