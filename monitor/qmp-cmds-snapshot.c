/*
 * Snapshot commands (include/monitor/qmp-snapshot.h): QMP's snapshot jobs
 * and HMP's savevm/loadvm/delvm/"info snapshots", translated onto
 * VmSnapshot with QEMU 7.2's argument rules. A QMP job never replaces a
 * snapshot (QEMU's "already exists"); HMP savevm does.
 */
#include "block/snapshot-dump.h"
#include "monitor/hmp.h"
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-snapshot.h"

struct QmpSnapshots {
    VmSnapshot *vs;
    const BlockBackendList *drives;
    JobList *jobs;
};

typedef enum { SNAP_SAVE, SNAP_LOAD, SNAP_DELETE } SnapshotOp;

/* One job's request, owned by the job. */
typedef struct SnapshotJob {
    VmSnapshot *vs;
    SnapshotOp op;
    char *tag;
    char *vmstate;
    GStrv devices;
} SnapshotJob;

static bool snapshot_job_run(void *opaque, GError **errp)
{
    SnapshotJob *sj = opaque;
    const VmSnapshotArgs a = {
        .name = sj->tag, .vmstate = sj->vmstate,
        .devices = (const char *const *)sj->devices,
    };

    switch (sj->op) {
    case SNAP_SAVE:
        return vm_snapshot_save(sj->vs, &a, errp);
    case SNAP_LOAD:
        return vm_snapshot_load(sj->vs, &a, errp);
    default:
        return vm_snapshot_delete(sj->vs, &a, errp);
    }
}

static void snapshot_job_free(void *opaque)
{
    SnapshotJob *sj = opaque;

    g_free(sj->tag);
    g_free(sj->vmstate);
    g_strfreev(sj->devices);
    g_free(sj);
}

static const JobDriver job_drivers[] = {
    [SNAP_SAVE] = { "snapshot-save", snapshot_job_run, snapshot_job_free },
    [SNAP_LOAD] = { "snapshot-load", snapshot_job_run, snapshot_job_free },
    [SNAP_DELETE] = { "snapshot-delete", snapshot_job_run, snapshot_job_free },
};

/* One request's arguments, as QMP decodes them. */
typedef struct SnapshotArgs {
    char *job_id;
    char *tag;
    char *vmstate;              /* snapshot-delete has none */
    QmpList devices;            /* of char * */
} SnapshotArgs;

static GStrv devices_vector(const QmpList *list)
{
    GStrv v = g_new0(char *, list->len + 1);

    for (size_t i = 0; i < list->len; i++) {
        v[i] = g_strdup(QMP_LIST_AT(list, char *, i));
    }
    return v;
}

static json_object *start_job(const QmpCall *call, const SnapshotArgs *a,
                              SnapshotOp op, GError **errp)
{
    QmpSnapshots *qs = call->opaque;
    SnapshotJob *sj = g_new0(SnapshotJob, 1);
    Job *job;

    sj->vs = qs->vs;
    sj->op = op;
    sj->tag = g_strdup(a->tag);
    sj->vmstate = g_strdup(a->vmstate);
    sj->devices = devices_vector(&a->devices);
    job = job_create(qs->jobs, a->job_id, &job_drivers[op], sj, errp);
    if (!job) {
        return NULL;
    }
    job_start(job);
    return qmp_return_empty();
}

static json_object *cmd_snapshot_save(const QmpCall *call, const void *args,
                                      GError **errp)
{
    return start_job(call, args, SNAP_SAVE, errp);
}

static json_object *cmd_snapshot_load(const QmpCall *call, const void *args,
                                      GError **errp)
{
    return start_job(call, args, SNAP_LOAD, errp);
}

static json_object *cmd_snapshot_delete(const QmpCall *call, const void *args,
                                        GError **errp)
{
    return start_job(call, args, SNAP_DELETE, errp);
}

QMP_ARRAY_TYPE(str_list, qmp_type_str);
QMP_OBJECT_TYPE(save_args, "snapshot-save-arg", SnapshotArgs,
    QMP_MEMBER(SnapshotArgs, job_id, "job-id", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, tag, "tag", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, vmstate, "vmstate", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, devices, "devices", str_list));
QMP_OBJECT_TYPE(load_args, "snapshot-load-arg", SnapshotArgs,
    QMP_MEMBER(SnapshotArgs, job_id, "job-id", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, tag, "tag", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, vmstate, "vmstate", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, devices, "devices", str_list));
QMP_OBJECT_TYPE(delete_args, "snapshot-delete-arg", SnapshotArgs,
    QMP_MEMBER(SnapshotArgs, job_id, "job-id", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, tag, "tag", qmp_type_str),
    QMP_MEMBER(SnapshotArgs, devices, "devices", str_list));

static const QmpCommandDef snapshot_commands[] = {
    QMP_COMMAND("snapshot-save", cmd_snapshot_save, &save_args, NULL),
    QMP_COMMAND("snapshot-load", cmd_snapshot_load, &load_args, NULL),
    QMP_COMMAND("snapshot-delete", cmd_snapshot_delete, &delete_args, NULL),
};

/* --- HMP ---------------------------------------------------------------------- */

static bool hmp_savevm(void *opaque, const char *tag, GString *out,
                       GError **errp)
{
    QmpSnapshots *qs = opaque;
    const VmSnapshotArgs a = { .name = tag, .overwrite = true };

    return vm_snapshot_save(qs->vs, &a, errp);
}

static bool hmp_loadvm(void *opaque, const char *tag, GString *out,
                       GError **errp)
{
    QmpSnapshots *qs = opaque;
    const VmSnapshotArgs a = { .name = tag };

    return vm_snapshot_load(qs->vs, &a, errp);
}

static bool hmp_delvm(void *opaque, const char *tag, GString *out,
                      GError **errp)
{
    QmpSnapshots *qs = opaque;
    const VmSnapshotArgs a = { .name = tag };

    return vm_snapshot_delete(qs->vs, &a, errp);
}

static bool hmp_info_snapshots(void *opaque, const char *unused, GString *out,
                               GError **errp)
{
    QmpSnapshots *qs = opaque;

    block_snapshot_info_all(out, qs->drives);
    return true;
}

QmpSnapshots *qmp_snapshot_attach(Monitor *mon, VmSnapshot *vs,
                                  const BlockBackendList *drives,
                                  JobList *jobs)
{
    QmpSnapshots *qs = g_new0(QmpSnapshots, 1);
    Hmp *hmp = monitor_hmp(mon);

    qs->vs = vs;
    qs->drives = drives;
    qs->jobs = jobs;
    qmp_register_commands(monitor_registry(mon), snapshot_commands,
                          ARRAY_SIZE(snapshot_commands), qs);
    hmp_add_command(hmp, "savevm", HMP_ARG_OPTIONAL_STR, hmp_savevm, qs);
    hmp_add_command(hmp, "loadvm", HMP_ARG_STR, hmp_loadvm, qs);
    hmp_add_command(hmp, "delvm", HMP_ARG_STR, hmp_delvm, qs);
    hmp_add_command(hmp, "info snapshots", HMP_ARG_NONE, hmp_info_snapshots,
                    qs);
    return qs;
}

void qmp_snapshot_free(QmpSnapshots *qs)
{
    g_free(qs);
}
