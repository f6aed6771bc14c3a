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

/* 'devices' as a string vector, QEMU's message for a non-string. */
static GStrv devices_arg(JsonObject *args, GError **errp)
{
    JsonArray *list = json_object_get_array_member(args, "devices");
    guint n = json_array_get_length(list);
    GStrv v = g_new0(char *, n + 1);

    for (guint i = 0; i < n; i++) {
        JsonNode *e = json_array_get_element(list, i);

        if (!JSON_NODE_HOLDS_VALUE(e) ||
            json_node_get_value_type(e) != G_TYPE_STRING) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Invalid parameter "
                        "type for 'devices[%u]', expected: string", i);
            g_strfreev(v);
            return NULL;
        }
        v[i] = g_strdup(json_node_get_string(e));
    }
    return v;
}

static JsonNode *start_job(const QmpCall *call, JsonObject *args,
                           SnapshotOp op, GError **errp)
{
    QmpSnapshots *qs = call->opaque;
    GStrv devices = devices_arg(args, errp);
    SnapshotJob *sj;
    Job *job;

    if (!devices) {
        return NULL;
    }
    sj = g_new0(SnapshotJob, 1);
    sj->vs = qs->vs;
    sj->op = op;
    sj->tag = g_strdup(qmp_arg_str(args, "tag", ""));
    sj->vmstate = g_strdup(qmp_arg_str(args, "vmstate", NULL));
    sj->devices = devices;
    job = job_create(qs->jobs, qmp_arg_str(args, "job-id", ""),
                     &job_drivers[op], sj, errp);
    if (!job) {
        return NULL;
    }
    job_start(job);
    return qmp_return_empty();
}

static JsonNode *cmd_snapshot_save(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return start_job(call, args, SNAP_SAVE, errp);
}

static JsonNode *cmd_snapshot_load(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return start_job(call, args, SNAP_LOAD, errp);
}

static JsonNode *cmd_snapshot_delete(const QmpCall *call, JsonObject *args,
                                     GError **errp)
{
    return start_job(call, args, SNAP_DELETE, errp);
}

static const QmpArgSpec save_load_args[] = {
    { "job-id", QMP_ARG_STR, false },
    { "tag", QMP_ARG_STR, false },
    { "vmstate", QMP_ARG_STR, false },
    { "devices", QMP_ARG_ARRAY, false },
    { NULL },
};

static const QmpArgSpec delete_args[] = {
    { "job-id", QMP_ARG_STR, false },
    { "tag", QMP_ARG_STR, false },
    { "devices", QMP_ARG_ARRAY, false },
    { NULL },
};

static const QmpCommandDef snapshot_commands[] = {
    { "snapshot-save", cmd_snapshot_save, save_load_args, 0 },
    { "snapshot-load", cmd_snapshot_load, save_load_args, 0 },
    { "snapshot-delete", cmd_snapshot_delete, delete_args, 0 },
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
