/*
 * Snapshots across a VM's drives (include/block/snapshot-all.h): which
 * drives take part and the per-disk steps of savevm, loadvm and delvm, in
 * QEMU 7.2's order and with its messages. The VM-level sequence (stopping
 * the VM, the state stream, cleanup) is migration/snapshot.c's.
 */
#include <string.h>

#include "block/snapshot-all.h"
#include "tern/error.h"

struct SnapshotDisks {
    const BlockBackendList *blks;
    GPtrArray *nodes;           /* of BlockNode * */
    bool named;                 /* chosen by 'devices', not by default */
};

/* What the default set holds (QEMU: bdrv_all_snapshots_includes_bs). */
static bool included_by_default(BlockNode *bs)
{
    return bs && !bdrv_is_read_only(bs);
}

static bool can_snapshot(BlockNode *bs)
{
    return !bdrv_is_read_only(bs) && !bdrv_is_inactive(bs) &&
           bs->drv->snapshot_create;
}

static bool add_named(SnapshotDisks *d, const char *const *devices,
                      GError **errp)
{
    if (!devices[0]) {
        return tern_invalid(errp, "At least one device is required for "
                            "snapshot");
    }
    for (const char *const *n = devices; *n; n++) {
        BlockNode *bs = blk_list_find_node(d->blks, *n);

        if (!bs) {
            return tern_invalid(errp, "No block device node '%s'", *n);
        }
        g_ptr_array_add(d->nodes, bs);
    }
    return true;
}

SnapshotDisks *snapshot_disks_new(const BlockBackendList *l,
                                  const char *const *devices, GError **errp)
{
    SnapshotDisks *d = g_new0(SnapshotDisks, 1);

    d->blks = l;
    d->nodes = g_ptr_array_new();
    d->named = devices != NULL;
    if (devices && !add_named(d, devices, errp)) {
        snapshot_disks_free(d);
        return NULL;
    }
    for (size_t i = 0; !devices && i < blk_list_count(l); i++) {
        BlockNode *bs = blk_root(blk_list_get(l, i));

        if (included_by_default(bs)) {
            g_ptr_array_add(d->nodes, bs);
        }
    }
    return d;
}

void snapshot_disks_free(SnapshotDisks *d)
{
    if (d) {
        g_ptr_array_unref(d->nodes);
        g_free(d);
    }
}

size_t snapshot_disks_count(const SnapshotDisks *d)
{
    return d->nodes->len;
}

BlockNode *snapshot_disks_get(const SnapshotDisks *d, size_t i)
{
    return g_ptr_array_index(d->nodes, i);
}

const char *snapshot_disks_name(const SnapshotDisks *d, BlockNode *bs)
{
    return blk_list_node_name(d->blks, bs);
}

bool snapshot_disks_check(const SnapshotDisks *d, GError **errp)
{
    for (size_t i = 0; i < snapshot_disks_count(d); i++) {
        BlockNode *bs = snapshot_disks_get(d, i);

        if (bdrv_is_inactive(bs) && !bdrv_is_read_only(bs)) {
            return tern_invalid(errp, "Device '%s' is inactive: a migration "
                                "handed it over", snapshot_disks_name(d, bs));
        }
        if (!can_snapshot(bs)) {
            return tern_invalid(errp, "Device '%s' is writable but does not "
                                "support snapshots",
                                snapshot_disks_name(d, bs));
        }
    }
    return true;
}

BlockNode *snapshot_disks_vmstate_node(const SnapshotDisks *d,
                                       const char *vmstate, GError **errp)
{
    for (size_t i = 0; i < snapshot_disks_count(d); i++) {
        BlockNode *bs = snapshot_disks_get(d, i);

        if (vmstate && strcmp(vmstate, bdrv_get_node_name(bs))) {
            continue;
        }
        if (can_snapshot(bs)) {
            return bs;
        }
        if (vmstate) {
            tern_invalid(errp, "vmstate block device '%s' does not support "
                         "snapshots", vmstate);
            return NULL;
        }
    }
    if (vmstate) {
        tern_invalid(errp, "vmstate block device '%s' does not exist",
                     vmstate);
    } else {
        tern_invalid(errp, "no block device can store vmstate for snapshot");
    }
    return NULL;
}

bool snapshot_disks_find(BlockNode *bs, const char *name,
                         BlockSnapshotInfo **out, GError **errp)
{
    g_autoptr(GPtrArray) list = bdrv_snapshot_list(bs, errp);

    for (guint i = 0; list && i < list->len; i++) {
        BlockSnapshotInfo *sn = list->pdata[i];

        if (!strcmp(sn->name, name)) {
            *out = g_ptr_array_steal_index(list, i);
            return true;
        }
    }
    return false;
}

int snapshot_disks_have(const SnapshotDisks *d, const char *name,
                        GError **errp)
{
    for (size_t i = 0; i < snapshot_disks_count(d); i++) {
        BlockNode *bs = snapshot_disks_get(d, i);
        g_autoptr(BlockSnapshotInfo) sn = NULL;
        GError *err = NULL;

        if (snapshot_disks_find(bs, name, &sn, &err)) {
            continue;
        }
        if (err) {
            g_propagate_prefixed_error(errp, err, "Could not check snapshot "
                                       "'%s' on '%s': ", name,
                                       snapshot_disks_name(d, bs));
            return -1;
        }
        return 0;
    }
    return 1;
}

/* One disk's part of a step on all of them; false with *errp. */
typedef bool (*DiskStep)(BlockNode *bs, const char *name, const void *opaque,
                         GError **errp);

/* 'step' on every disk in order, stopping at the first failure, which is
 * reported as QEMU reports it: "Could not <what> snapshot 'x' on 'd': ". */
static bool on_every_disk(const SnapshotDisks *d, const char *name,
                          const char *what, DiskStep step, const void *opaque,
                          GError **errp)
{
    for (size_t i = 0; i < snapshot_disks_count(d); i++) {
        BlockNode *bs = snapshot_disks_get(d, i);
        GError *err = NULL;

        if (!step(bs, name, opaque, &err)) {
            g_propagate_prefixed_error(errp, err, "Could not %s snapshot '%s' "
                                       "on '%s': ", what, name,
                                       snapshot_disks_name(d, bs));
            return false;
        }
    }
    return true;
}

static bool delete_one(BlockNode *bs, const char *name, const void *unused,
                       GError **errp)
{
    g_autoptr(BlockSnapshotInfo) sn = NULL;

    if (!snapshot_disks_find(bs, name, &sn, errp)) {
        return !*errp;                  /* none here is fine */
    }
    return bdrv_snapshot_delete(bs, sn->id_str, sn->name, errp);
}

bool snapshot_disks_delete(const SnapshotDisks *d, const char *name,
                           GError **errp)
{
    return on_every_disk(d, name, "delete", delete_one, NULL, errp);
}

static bool goto_one(BlockNode *bs, const char *name, const void *unused,
                     GError **errp)
{
    g_autoptr(BlockSnapshotInfo) sn = NULL;

    if (!snapshot_disks_find(bs, name, &sn, errp)) {
        if (!*errp) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                        "Can't find snapshot '%s'", name);
        }
        return false;
    }
    return bdrv_snapshot_apply(bs, sn->id_str, errp);
}

bool snapshot_disks_goto(const SnapshotDisks *d, const char *name,
                         GError **errp)
{
    return on_every_disk(d, name, "load", goto_one, NULL, errp);
}

static bool can_goto_one(BlockNode *bs, const char *name, const void *unused,
                         GError **errp)
{
    return bdrv_snapshot_can_apply(bs, errp);
}

bool snapshot_disks_can_goto(const SnapshotDisks *d, const char *name,
                             GError **errp)
{
    return on_every_disk(d, name, "load", can_goto_one, NULL, errp);
}

typedef struct CreateArgs {
    const BlockSnapshotInfo *sn;
    BlockNode *vm_bs;
    uint64_t vm_state_size;
} CreateArgs;

static bool create_one(BlockNode *bs, const char *name, const void *opaque,
                       GError **errp)
{
    const CreateArgs *a = opaque;
    BlockSnapshotInfo one = *a->sn;

    one.id_str = NULL;              /* each image numbers its own */
    one.vm_state_size = bs == a->vm_bs ? a->vm_state_size : 0;
    one.disk_size = bdrv_getlength(bs);
    return bdrv_snapshot_create(bs, &one, errp);
}

bool snapshot_disks_create(const SnapshotDisks *d, const BlockSnapshotInfo *sn,
                           BlockNode *vm_bs, uint64_t vm_state_size,
                           GError **errp)
{
    const CreateArgs a = { sn, vm_bs, vm_state_size };

    return on_every_disk(d, sn->name, "create", create_one, &a, errp);
}

bool snapshot_disks_flush(const SnapshotDisks *d, GError **errp)
{
    for (size_t i = 0; i < snapshot_disks_count(d); i++) {
        BlockNode *bs = snapshot_disks_get(d, i);

        if (!bdrv_flush(bs, errp)) {
            g_prefix_error(errp, "Could not flush '%s': ",
                           snapshot_disks_name(d, bs));
            return false;
        }
    }
    return true;
}
