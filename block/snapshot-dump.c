/*
 * Internal snapshots in QEMU's words (include/block/snapshot-dump.h): its
 * table columns, size notation and HMP's "info snapshots", which lists the
 * snapshots a loadvm could use (on every drive, by name) apart from those
 * only some drives hold.
 */
#include <stdio.h>
#include <string.h>

#include "block/snapshot-all.h"
#include "block/snapshot-dump.h"

char *block_size_to_str(uint64_t size)
{
    static const char *const prefix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi",
                                          "Ei" };
    unsigned i = 0;

    /* The next unit as soon as the number would reach 1000. */
    while (i + 1 < G_N_ELEMENTS(prefix) &&
           (double)size >= 1000.0 * (double)(1ULL << (10 * i))) {
        i++;
    }
    return g_strdup_printf("%0.3g %sB", (double)size / (double)(1ULL << (10 * i)),
                           prefix[i]);
}

void block_snapshot_dump_header(GString *out)
{
    g_string_append_printf(out, "%-10s%-17s%8s%20s%13s%11s", "ID", "TAG",
                           "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
}

void block_snapshot_dump(GString *out, const BlockSnapshotInfo *sn,
                         const char *id_str)
{
    g_autoptr(GDateTime) date = g_date_time_new_from_unix_local(sn->date_sec);
    g_autofree char *when = date ? g_date_time_format(date, "%Y-%m-%d %H:%M:%S")
                                 : g_strdup("");
    g_autofree char *size = block_size_to_str(sn->vm_state_size);
    uint64_t secs = sn->vm_clock_nsec / 1000000000;
    char clock[64], icount[32] = "";

    snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64
             ".%03" PRIu64, secs / 3600, secs / 60 % 60, secs % 60,
             sn->vm_clock_nsec / 1000000 % 1000);
    if (sn->icount != -1) {
        snprintf(icount, sizeof(icount), "%" PRId64, sn->icount);
    }
    g_string_append_printf(out, "%-9s %-16s %8s%20s%13s%11s",
                           id_str ? id_str : sn->id_str, sn->name, size, when,
                           clock, icount);
}

static void dump_lines(GString *out, const GPtrArray *list, const char *id_str)
{
    block_snapshot_dump_header(out);
    g_string_append_c(out, '\n');
    for (guint i = 0; i < list->len; i++) {
        block_snapshot_dump(out, list->pdata[i], id_str);
        g_string_append_c(out, '\n');
    }
}

void block_snapshot_table(GString *out, const GPtrArray *list)
{
    g_string_append(out, "Snapshot list:\n");
    dump_lines(out, list, NULL);
}

/* One drive's snapshots, for the partial lists. */
typedef struct DriveSnapshots {
    const char *name;           /* the drive id ("" for none), as QEMU */
    GPtrArray *list;            /* of BlockSnapshotInfo * */
} DriveSnapshots;

static void drop_name(GArray *drives, const char *name)
{
    for (guint i = 0; i < drives->len; i++) {
        GPtrArray *list = g_array_index(drives, DriveSnapshots, i).list;

        for (guint j = list->len; j-- > 0;) {
            if (!strcmp(((BlockSnapshotInfo *)list->pdata[j])->name, name)) {
                g_ptr_array_remove_index(list, j);
            }
        }
    }
}

/* Every writable drive that can snapshot, with its snapshots; false if
 * none of them has any. */
static bool collect(const BlockBackendList *l, GArray *drives)
{
    bool any = false;

    for (size_t i = 0; i < blk_list_count(l); i++) {
        BlockBackend *blk = blk_list_get(l, i);
        BlockNode *bs = blk_root(blk);
        DriveSnapshots ds = { blk_name(blk), NULL };

        if (!bs || bdrv_is_read_only(bs) || !bs->drv->snapshot_create ||
            !(ds.list = bdrv_snapshot_list(bs, NULL))) {
            continue;
        }
        any |= ds.list->len > 0;
        g_array_append_val(drives, ds);
    }
    return any;
}

static void free_drives(GArray *drives)
{
    for (guint i = 0; i < drives->len; i++) {
        g_ptr_array_unref(g_array_index(drives, DriveSnapshots, i).list);
    }
    g_array_unref(drives);
}

static void print_partial(GString *out, GArray *drives)
{
    for (guint i = 0; i < drives->len; i++) {
        DriveSnapshots *ds = &g_array_index(drives, DriveSnapshots, i);

        if (ds->list->len) {
            g_string_append_printf(out, "\nList of partial (non-loadable) "
                                   "snapshots on '%s':\n", ds->name);
            dump_lines(out, ds->list, NULL);
        }
    }
}

void block_snapshot_info_all(GString *out, const BlockBackendList *l)
{
    g_autoptr(SnapshotDisks) all = snapshot_disks_new(l, NULL, NULL);
    g_autoptr(GError) err = NULL;
    BlockNode *vm_bs = snapshot_disks_vmstate_node(all, NULL, &err);
    g_autoptr(GPtrArray) table = vm_bs ? bdrv_snapshot_list(vm_bs, &err) : NULL;
    g_autoptr(GPtrArray) loadable = g_ptr_array_new();
    GArray *drives = g_array_new(false, false, sizeof(DriveSnapshots));

    if (!table) {
        g_string_append_printf(out, "%s\n", err->message);
    } else if (!collect(l, drives)) {
        g_string_append(out, "There is no snapshot available.\n");
    } else {
        for (guint i = 0; i < table->len; i++) {
            BlockSnapshotInfo *sn = table->pdata[i];

            if (snapshot_disks_have(all, sn->name, NULL) == 1) {
                g_ptr_array_add(loadable, sn);
                drop_name(drives, sn->name);
            }
        }
        g_string_append(out, "List of snapshots present on all disks:\n");
        if (loadable->len) {
            dump_lines(out, loadable, "--");
        } else {
            g_string_append(out, "None\n");
        }
        print_partial(out, drives);
    }
    free_drives(drives);
}
