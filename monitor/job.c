/*
 * Jobs (include/monitor/job.h): QEMU 7.2's status transitions and verb
 * table, its id rules and messages, and the run of a job's work on the
 * main loop.
 */
#include <string.h>

#include "monitor/job.h"
#include "tern/error.h"

struct Job {
    JobList *list;
    char *id;
    const JobDriver *drv;
    void *opaque;
    JobStatus status;
    uint64_t current, total;
    char *error;
    guint run_source;               /* the pending run on the main loop */
};

struct JobList {
    GQueue jobs;                    /* of Job *, newest first */
    void (*changed)(void *opaque, const Job *job);
    void *opaque;
};

static const char *const status_names[JOB_STATUS__MAX] = {
    "undefined", "created", "running", "paused", "ready", "standby",
    "waiting", "pending", "aborting", "concluded", "null",
};

static const char *const verb_names[JOB_VERB__MAX] = {
    "cancel", "pause", "resume", "set-speed", "complete", "finalize",
    "dismiss",
};

/* QEMU's transition table: [from][to]. */
static const bool transitions[JOB_STATUS__MAX][JOB_STATUS__MAX] = {
    /*                       U  C  R  P  Y  S  W  D  X  E  N */
    [JOB_STATUS_UNDEFINED] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    [JOB_STATUS_CREATED]   = {0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1},
    [JOB_STATUS_RUNNING]   = {0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0},
    [JOB_STATUS_PAUSED]    = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
    [JOB_STATUS_READY]     = {0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0},
    [JOB_STATUS_STANDBY]   = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
    [JOB_STATUS_WAITING]   = {0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0},
    [JOB_STATUS_PENDING]   = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0},
    [JOB_STATUS_ABORTING]  = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0},
    [JOB_STATUS_CONCLUDED] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
};

/* QEMU's verb table: [verb][status]. */
static const bool verbs[JOB_VERB__MAX][JOB_STATUS__MAX] = {
    /*                      U  C  R  P  Y  S  W  D  X  E  N */
    [JOB_VERB_CANCEL]    = {0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    [JOB_VERB_PAUSE]     = {0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
    [JOB_VERB_RESUME]    = {0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
    [JOB_VERB_SET_SPEED] = {0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
    [JOB_VERB_COMPLETE]  = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
    [JOB_VERB_FINALIZE]  = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0},
    [JOB_VERB_DISMISS]   = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0},
};

const char *job_status_name(JobStatus s)
{
    return s < JOB_STATUS__MAX ? status_names[s] : "undefined";
}

const char *job_verb_name(JobVerb v)
{
    return v < JOB_VERB__MAX ? verb_names[v] : "unknown";
}

JobList *job_list_new(void (*changed)(void *opaque, const Job *job),
                      void *opaque)
{
    JobList *l = g_new0(JobList, 1);

    g_queue_init(&l->jobs);
    l->changed = changed;
    l->opaque = opaque;
    return l;
}

static void job_free(Job *job)
{
    if (job->run_source) {
        g_source_remove(job->run_source);
    }
    if (job->drv->free) {
        job->drv->free(job->opaque);
    }
    g_free(job->id);
    g_free(job->error);
    g_free(job);
}

void job_list_free(JobList *l)
{
    if (l) {
        g_queue_clear_full(&l->jobs, (GDestroyNotify)job_free);
        g_free(l);
    }
}

static void set_status(Job *job, JobStatus s)
{
    g_assert(transitions[job->status][s]);
    job->status = s;
    if (job->list->changed) {
        job->list->changed(job->list->opaque, job);
    }
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

Job *job_create(JobList *l, const char *id, const JobDriver *drv,
                void *opaque, GError **errp)
{
    Job *job = g_new0(Job, 1);

    job->list = l;
    job->drv = drv;
    job->opaque = opaque;
    if (!id_wellformed(id)) {
        tern_invalid(errp, "Invalid job ID '%s'", id);
    } else if (job_find(l, id, NULL)) {
        tern_invalid(errp, "Job ID '%s' already in use", id);
    } else {
        job->id = g_strdup(id);
        g_queue_push_head(&l->jobs, job);
        set_status(job, JOB_STATUS_CREATED);
        return job;
    }
    job_free(job);
    return NULL;
}

static gboolean job_finish(gpointer opaque)
{
    Job *job = opaque;

    job->run_source = 0;
    job->current = 1;
    if (!job->error) {
        set_status(job, JOB_STATUS_WAITING);
        set_status(job, JOB_STATUS_PENDING);
    } else {
        set_status(job, JOB_STATUS_ABORTING);
    }
    set_status(job, JOB_STATUS_CONCLUDED);
    return G_SOURCE_REMOVE;
}

void job_start(Job *job)
{
    GError *err = NULL;

    set_status(job, JOB_STATUS_RUNNING);
    job->total = 1;
    if (!job->drv->run(job->opaque, &err)) {
        job->error = g_strdup(err->message);
        g_error_free(err);
    }
    /* The job completes from the main loop once the command that started
     * it has replied: the reply falls between the work's own events and
     * waiting/pending/concluded, as QEMU 7.2 orders them. Before any
     * further command is read, so a query sent after the reply finds the
     * job concluded. */
    job->run_source = g_idle_add_full(G_PRIORITY_HIGH, job_finish, job, NULL);
}

Job *job_find(JobList *l, const char *id, GError **errp)
{
    for (GList *e = l->jobs.head; e; e = e->next) {
        Job *job = e->data;

        if (!strcmp(job->id, id)) {
            return job;
        }
    }
    tern_invalid(errp, "Job not found");
    return NULL;
}

bool job_verb(Job *job, JobVerb verb, GError **errp)
{
    if (!verbs[verb][job->status]) {
        return tern_invalid(errp, "Job '%s' in state '%s' cannot accept "
                            "command verb '%s'", job->id,
                            job_status_name(job->status), job_verb_name(verb));
    }
    return true;
}

bool job_dismiss(JobList *l, const char *id, GError **errp)
{
    Job *job = job_find(l, id, errp);

    if (!job || !job_verb(job, JOB_VERB_DISMISS, errp)) {
        return false;
    }
    set_status(job, JOB_STATUS_NULL);
    g_queue_remove(&l->jobs, job);
    job_free(job);
    return true;
}

size_t job_list_count(const JobList *l)
{
    return l->jobs.length;
}

Job *job_list_get(const JobList *l, size_t i)
{
    return g_queue_peek_nth((GQueue *)&l->jobs, (guint)i);
}

const char *job_id(const Job *job)
{
    return job->id;
}

const char *job_type(const Job *job)
{
    return job->drv->type;
}

JobStatus job_status(const Job *job)
{
    return job->status;
}

void job_progress(const Job *job, uint64_t *current, uint64_t *total)
{
    *current = job->current;
    *total = job->total;
}

const char *job_error(const Job *job)
{
    return job->error;
}
