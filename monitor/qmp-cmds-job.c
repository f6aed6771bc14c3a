/*
 * QMP's job commands and JOB_STATUS_CHANGE (include/monitor/qmp-job.h):
 * JSON in and out, the rules are monitor/job.c's.
 */
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-job.h"

struct QmpJobs {
    Monitor *mon;
    JobList *list;
};

static void status_changed(void *opaque, const Job *job)
{
    QmpJobs *qj = opaque;
    JsonObject *data = json_object_new();

    json_object_set_string_member(data, "status",
                                  job_status_name(job_status(job)));
    json_object_set_string_member(data, "id", job_id(job));
    monitor_emit_event(qj->mon, "JOB_STATUS_CHANGE", data);
}

static JsonNode *job_info(const Job *job)
{
    JsonObject *o = json_object_new();
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    uint64_t current, total;

    job_progress(job, &current, &total);
    json_object_set_string_member(o, "id", job_id(job));
    json_object_set_string_member(o, "type", job_type(job));
    json_object_set_string_member(o, "status", job_status_name(job_status(job)));
    json_object_set_int_member(o, "current-progress", (gint64)current);
    json_object_set_int_member(o, "total-progress", (gint64)total);
    if (job_error(job)) {
        json_object_set_string_member(o, "error", job_error(job));
    }
    json_node_take_object(n, o);
    return n;
}

static JsonNode *cmd_query_jobs(const QmpCall *call, JsonObject *args,
                                GError **errp)
{
    QmpJobs *qj = call->opaque;
    JsonArray *list = json_array_new();
    JsonNode *n = json_node_new(JSON_NODE_ARRAY);

    for (size_t i = 0; i < job_list_count(qj->list); i++) {
        json_array_add_element(list, job_info(job_list_get(qj->list, i)));
    }
    json_node_take_array(n, list);
    return n;
}

/* A verb on job 'id'. tern's jobs have finished their work before another
 * command can arrive, so a verb accepted here has nothing left to act on. */
static JsonNode *verb(const QmpCall *call, JsonObject *args, JobVerb v,
                      GError **errp)
{
    QmpJobs *qj = call->opaque;
    Job *job = job_find(qj->list, qmp_arg_str(args, "id", ""), errp);

    return job && job_verb(job, v, errp) ? qmp_return_empty() : NULL;
}

static JsonNode *cmd_job_cancel(const QmpCall *call, JsonObject *args,
                                GError **errp)
{
    return verb(call, args, JOB_VERB_CANCEL, errp);
}

static JsonNode *cmd_job_pause(const QmpCall *call, JsonObject *args,
                               GError **errp)
{
    return verb(call, args, JOB_VERB_PAUSE, errp);
}

static JsonNode *cmd_job_resume(const QmpCall *call, JsonObject *args,
                                GError **errp)
{
    return verb(call, args, JOB_VERB_RESUME, errp);
}

static JsonNode *cmd_job_complete(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    return verb(call, args, JOB_VERB_COMPLETE, errp);
}

static JsonNode *cmd_job_finalize(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    return verb(call, args, JOB_VERB_FINALIZE, errp);
}

static JsonNode *cmd_job_dismiss(const QmpCall *call, JsonObject *args,
                                 GError **errp)
{
    QmpJobs *qj = call->opaque;

    return job_dismiss(qj->list, qmp_arg_str(args, "id", ""), errp)
           ? qmp_return_empty() : NULL;
}

static const QmpArgSpec id_args[] = {
    { "id", QMP_ARG_STR, false },
    { NULL },
};

static const QmpCommandDef job_commands[] = {
    { "query-jobs", cmd_query_jobs, NULL, 0 },
    { "job-cancel", cmd_job_cancel, id_args, 0 },
    { "job-pause", cmd_job_pause, id_args, 0 },
    { "job-resume", cmd_job_resume, id_args, 0 },
    { "job-complete", cmd_job_complete, id_args, 0 },
    { "job-finalize", cmd_job_finalize, id_args, 0 },
    { "job-dismiss", cmd_job_dismiss, id_args, 0 },
};

QmpJobs *qmp_jobs_attach(Monitor *mon)
{
    QmpJobs *qj = g_new0(QmpJobs, 1);

    qj->mon = mon;
    qj->list = job_list_new(status_changed, qj);
    qmp_register_commands(monitor_registry(mon), job_commands,
                          ARRAY_SIZE(job_commands), qj);
    return qj;
}

void qmp_jobs_free(QmpJobs *qj)
{
    if (qj) {
        job_list_free(qj->list);
        g_free(qj);
    }
}

JobList *qmp_jobs_list(QmpJobs *qj)
{
    return qj->list;
}
