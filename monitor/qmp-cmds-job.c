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
    json_object *data = json_object_new_object();

    tern_json_add_str(data, "status", job_status_name(job_status(job)));
    tern_json_add_str(data, "id", job_id(job));
    monitor_emit_event(qj->mon, "JOB_STATUS_CHANGE", data);
}

static json_object *job_info(const Job *job)
{
    json_object *o = json_object_new_object();
    uint64_t current, total;

    job_progress(job, &current, &total);
    tern_json_add_str(o, "id", job_id(job));
    tern_json_add_str(o, "type", job_type(job));
    tern_json_add_str(o, "status", job_status_name(job_status(job)));
    tern_json_add_uint(o, "current-progress", current);
    tern_json_add_uint(o, "total-progress", total);
    if (job_error(job)) {
        tern_json_add_str(o, "error", job_error(job));
    }
    return o;
}

static json_object *cmd_query_jobs(const QmpCall *call, const void *args,
                                   GError **errp)
{
    QmpJobs *qj = call->opaque;
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < job_list_count(qj->list); i++) {
        json_object_array_add(list, job_info(job_list_get(qj->list, i)));
    }
    return list;
}

typedef struct JobIdArgs {
    char *id;
} JobIdArgs;

/* A verb on job 'id'. tern's jobs have finished their work before another
 * command can arrive, so a verb accepted here has nothing left to act on. */
static json_object *verb(const QmpCall *call, const void *args, JobVerb v,
                         GError **errp)
{
    QmpJobs *qj = call->opaque;
    Job *job = job_find(qj->list, ((const JobIdArgs *)args)->id, errp);

    return job && job_verb(job, v, errp) ? qmp_return_empty() : NULL;
}

static json_object *cmd_job_cancel(const QmpCall *call, const void *args,
                                   GError **errp)
{
    return verb(call, args, JOB_VERB_CANCEL, errp);
}

static json_object *cmd_job_pause(const QmpCall *call, const void *args,
                                  GError **errp)
{
    return verb(call, args, JOB_VERB_PAUSE, errp);
}

static json_object *cmd_job_resume(const QmpCall *call, const void *args,
                                   GError **errp)
{
    return verb(call, args, JOB_VERB_RESUME, errp);
}

static json_object *cmd_job_complete(const QmpCall *call, const void *args,
                                     GError **errp)
{
    return verb(call, args, JOB_VERB_COMPLETE, errp);
}

static json_object *cmd_job_finalize(const QmpCall *call, const void *args,
                                     GError **errp)
{
    return verb(call, args, JOB_VERB_FINALIZE, errp);
}

static json_object *cmd_job_dismiss(const QmpCall *call, const void *args,
                                    GError **errp)
{
    QmpJobs *qj = call->opaque;

    return job_dismiss(qj->list, ((const JobIdArgs *)args)->id, errp)
           ? qmp_return_empty() : NULL;
}

/* --- types ---------------------------------------------------------------------- */

QMP_OBJECT_TYPE(job_id_args, "job-id-arg", JobIdArgs,
    QMP_MEMBER(JobIdArgs, id, "id", qmp_type_str));

static const char *status_values[JOB_STATUS__MAX + 1];
QMP_ENUM_TYPE(status_type, "JobStatus", status_values);
/* The job types tern runs. */
static const char *const type_values[] = {
    "snapshot-load", "snapshot-save", "snapshot-delete", NULL,
};
QMP_ENUM_TYPE(type_type, "JobType", type_values);
QMP_SHAPE(job_info_type, "JobInfo",
    QMP_OUT("id", qmp_type_str), QMP_OUT("type", type_type),
    QMP_OUT("status", status_type), QMP_OUT("current-progress", qmp_type_int),
    QMP_OUT("total-progress", qmp_type_int), QMP_OUT_OPT("error", qmp_type_str));
QMP_ARRAY_TYPE(job_info_list, job_info_type);
QMP_SHAPE(status_change_data, "JOB_STATUS_CHANGE-arg",
    QMP_OUT("id", qmp_type_str), QMP_OUT("status", status_type));

static const QmpCommandDef job_commands[] = {
    QMP_COMMAND("query-jobs", cmd_query_jobs, NULL, &job_info_list),
    QMP_COMMAND("job-cancel", cmd_job_cancel, &job_id_args, NULL),
    QMP_COMMAND("job-pause", cmd_job_pause, &job_id_args, NULL),
    QMP_COMMAND("job-resume", cmd_job_resume, &job_id_args, NULL),
    QMP_COMMAND("job-complete", cmd_job_complete, &job_id_args, NULL),
    QMP_COMMAND("job-finalize", cmd_job_finalize, &job_id_args, NULL),
    QMP_COMMAND("job-dismiss", cmd_job_dismiss, &job_id_args, NULL),
};

static const QmpEventDef job_events[] = {
    { .name = "JOB_STATUS_CHANGE", .data = &status_change_data },
};

QmpJobs *qmp_jobs_attach(Monitor *mon)
{
    QmpJobs *qj = g_new0(QmpJobs, 1);

    for (int i = 0; i < JOB_STATUS__MAX; i++) {
        status_values[i] = job_status_name(i);
    }
    qj->mon = mon;
    qj->list = job_list_new(status_changed, qj);
    qmp_register_commands(monitor_registry(mon), job_commands,
                          ARRAY_SIZE(job_commands), qj);
    qmp_register_events(monitor_registry(mon), job_events,
                        ARRAY_SIZE(job_events));
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
