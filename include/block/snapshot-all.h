/*
 * The drives a VM snapshot covers, and what is done on all of them at once
 * (QEMU's bdrv_all_* rules, with QEMU 7.2's messages). A snapshot of the VM
 * is one internal snapshot of the same name on every such drive; one of
 * them, the vmstate node, also holds the VM state.
 *
 * Which drives: 'devices' (QMP's snapshot-save/-load/-delete) names nodes
 * by node-name, every one of them must be able to take snapshots; NULL
 * (HMP's savevm/loadvm/delvm, -loadvm) means every drive that is inserted
 * and writable, read-only ones being left out. Snapshots are found by name
 * (tag), never by id, as QEMU 7.2's VM snapshots are.
 */
#ifndef BLOCK_SNAPSHOT_ALL_H
#define BLOCK_SNAPSHOT_ALL_H

#include "block/block-backend.h"

typedef struct SnapshotDisks SnapshotDisks;

/* The set for 'devices' (NULL-terminated, or NULL: every writable drive).
 * Fails for an empty 'devices' or a name that is no node. */
SnapshotDisks *snapshot_disks_new(const BlockBackendList *l,
                                  const char *const *devices, GError **errp);
void snapshot_disks_free(SnapshotDisks *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapshotDisks, snapshot_disks_free)

size_t snapshot_disks_count(const SnapshotDisks *d);
BlockNode *snapshot_disks_get(const SnapshotDisks *d, size_t i);
/* The name messages use for bs: its drive id, else its node-name. */
const char *snapshot_disks_name(const SnapshotDisks *d, BlockNode *bs);

/* Every disk of the set can take internal snapshots (writable qcow2);
 * the message names the first that cannot. */
bool snapshot_disks_check(const SnapshotDisks *d, GError **errp);
/* Where the VM state goes: node 'vmstate' (which must be in the set and
 * able to snapshot), or NULL: the first disk that can. */
BlockNode *snapshot_disks_vmstate_node(const SnapshotDisks *d,
                                       const char *vmstate, GError **errp);
/* 1 if every disk has a snapshot called 'name', 0 if one lacks it, -1 on
 * error. */
int snapshot_disks_have(const SnapshotDisks *d, const char *name,
                        GError **errp);
/* The snapshot 'name' of bs (by name); false without an error if none. */
bool snapshot_disks_find(BlockNode *bs, const char *name,
                         BlockSnapshotInfo **out, GError **errp);
/* Deletes 'name' wherever it exists; a disk without it is fine. */
bool snapshot_disks_delete(const SnapshotDisks *d, const char *name,
                           GError **errp);
/* Reverts every disk to its snapshot 'name'. */
bool snapshot_disks_goto(const SnapshotDisks *d, const char *name,
                         GError **errp);
/* Whether every disk could be reverted (no dirty bitmaps), asked before
 * anything changes; QEMU finds out disk by disk while reverting. */
bool snapshot_disks_can_goto(const SnapshotDisks *d, const char *name,
                             GError **errp);
/* Creates sn (its name, date, clock) on every disk: vm_state_size on
 * 'vm_bs', 0 on the others. On failure the disks done so far keep theirs:
 * the caller deletes the name everywhere. */
bool snapshot_disks_create(const SnapshotDisks *d, const BlockSnapshotInfo *sn,
                           BlockNode *vm_bs, uint64_t vm_state_size,
                           GError **errp);

/* Every disk's data and metadata on stable storage. */
bool snapshot_disks_flush(const SnapshotDisks *d, GError **errp);

#endif
