/*
 * savevm/loadvm into a qcow2 image (include/migration/snapshot.h): the same
 * order as QEMU's save_snapshot/load_snapshot. Saving writes the stream
 * through a vmstate-area QEMUFile, then creates the snapshot with the
 * stream's size (the format then drops the area from the active image);
 * loading applies the snapshot first, which brings the area back.
 */
#include "block/block.h"
#include "migration/qemu-file-block.h"
#include "migration/snapshot.h"

static bool find_snapshot(BlockNode *bs, const char *name,
                          BlockSnapshotInfo **sn, GError **errp)
{
    if (!bdrv_snapshot_find(bs, name, sn, errp)) {
        if (errp && !*errp) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                        "Snapshot '%s' does not exist in device '%s'", name,
                        bdrv_get_node_name(bs));
        }
        return false;
    }
    return true;
}

static bool delete_existing(BlockNode *bs, const char *name, GError **errp)
{
    g_autoptr(BlockSnapshotInfo) old = NULL;

    if (!bdrv_snapshot_find(bs, name, &old, NULL)) {
        return true;
    }
    return bdrv_snapshot_delete(bs, old->id_str, old->name, errp);
}

bool savevm_snapshot_save(SaveVM *sv, BlockNode *bs, const char *name,
                          uint64_t vm_clock_ns, GError **errp)
{
    gint64 now = g_get_real_time();
    BlockSnapshotInfo sn = {
        .name = (char *)name,
        .date_sec = now / G_USEC_PER_SEC,
        .date_nsec = (now % G_USEC_PER_SEC) * 1000,
        .vm_clock_nsec = vm_clock_ns,
        .disk_size = bdrv_getlength(bs),
        .icount = -1,
    };
    QEMUFile *f;
    bool ok;

    if (!delete_existing(bs, name, errp)) {
        return false;
    }
    f = qemu_file_new_vmstate_output(bs);
    ok = savevm_save_all(sv, f, errp);
    sn.vm_state_size = qemu_file_tell(f);
    ok = qemu_fclose(f, ok ? errp : NULL) && ok;
    if (!ok) {
        g_prefix_error(errp, "Error while writing VM state: ");
        return false;
    }
    return bdrv_snapshot_create(bs, &sn, errp);
}

/* Apply the snapshot and open its VM state for reading. */
static QEMUFile *open_snapshot_state(BlockNode *bs, const char *name,
                                     GError **errp)
{
    g_autoptr(BlockSnapshotInfo) sn = NULL;

    if (!find_snapshot(bs, name, &sn, errp)) {
        return NULL;
    }
    if (!sn->vm_state_size) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "This is a disk-only snapshot. Revert to it offline "
                    "using qemu-img");
        return NULL;
    }
    if (!bdrv_snapshot_apply(bs, sn->id_str, errp)) {
        return NULL;
    }
    return qemu_file_new_vmstate_input(bs, sn->vm_state_size);
}

bool savevm_snapshot_load(SaveVM *sv, BlockNode *bs, const char *name,
                          GError **errp)
{
    QEMUFile *f = open_snapshot_state(bs, name, errp);
    bool ok;

    if (!f) {
        return false;
    }
    ok = savevm_load(sv, f, errp);
    qemu_fclose(f, NULL);
    if (!ok) {
        g_prefix_error(errp, "Error while loading VM state: ");
    }
    return ok;
}

GBytes *savevm_snapshot_read(BlockNode *bs, const char *name, GError **errp)
{
    QEMUFile *f = open_snapshot_state(bs, name, errp);
    g_autoptr(GByteArray) data = g_byte_array_new();
    uint8_t buf[64 * 1024];
    size_t n;

    if (!f) {
        return NULL;
    }
    while ((n = qemu_get_buffer(f, buf, sizeof(buf))) > 0) {
        g_byte_array_append(data, buf, n);
        if (n < sizeof(buf)) {
            break;
        }
    }
    /* The short read at the end marks the stream truncated: expected. */
    qemu_fclose(f, NULL);
    return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}
