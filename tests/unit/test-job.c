/*
 * Jobs (monitor/job.c): the status sequence QEMU 7.2 reports for a job
 * that succeeds and one that fails, progress and error, its id rules,
 * the verb table's refusals with QEMU's wording, dismiss, and query order.
 */
#include <string.h>

#include "monitor/job.h"
#include "tern/error.h"

typedef struct Work {
    bool fail;
    bool *freed;
} Work;

static bool work_run(void *opaque, GError **errp)
{
    Work *w = opaque;

    if (w->fail) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "it broke");
        return false;
    }
    return true;
}

static void work_free(void *opaque)
{
    Work *w = opaque;

    *w->freed = true;
    g_free(w);
}

static const JobDriver driver = {
    .type = "snapshot-save", .run = work_run, .free = work_free,
};

static void log_change(void *opaque, const Job *job)
{
    g_string_append_printf(opaque, "%s:%s;", job_id(job),
                           job_status_name(job_status(job)));
}

static Work *work(bool fail, bool *freed)
{
    Work *w = g_new0(Work, 1);

    w->fail = fail;
    w->freed = freed;
    return w;
}

/* The job completes from the main loop, after job_start has returned. */
static void start_and_run(Job *job, GString *log, const char *started)
{
    job_start(job);
    if (log) {
        g_assert_cmpstr(log->str, ==, started);
    }
    while (g_main_context_iteration(NULL, false)) {
    }
}

static void test_sequences(void)
{
    g_autoptr(GString) log = g_string_new(NULL);
    JobList *l = job_list_new(log_change, log);
    bool freed1 = false, freed2 = false;
    uint64_t cur, total;
    Job *j1, *j2;
    GError *err = NULL;

    j1 = job_create(l, "j1", &driver, work(false, &freed1), &err);
    g_assert_no_error(err);
    start_and_run(j1, log, "j1:created;j1:running;");
    g_assert_cmpstr(log->str, ==, "j1:created;j1:running;j1:waiting;"
                    "j1:pending;j1:concluded;");
    job_progress(j1, &cur, &total);
    g_assert_cmpuint(cur, ==, 1);
    g_assert_cmpuint(total, ==, 1);
    g_assert_null(job_error(j1));
    g_assert_cmpstr(job_type(j1), ==, "snapshot-save");

    g_string_truncate(log, 0);
    j2 = job_create(l, "j2", &driver, work(true, &freed2), &err);
    start_and_run(j2, log, "j2:created;j2:running;");
    g_assert_cmpstr(log->str, ==, "j2:created;j2:running;j2:aborting;"
                    "j2:concluded;");
    g_assert_cmpstr(job_error(j2), ==, "it broke");

    /* Newest first, as query-jobs lists them. */
    g_assert_cmpuint(job_list_count(l), ==, 2);
    g_assert_true(job_list_get(l, 0) == j2);
    g_assert_true(job_list_get(l, 1) == j1);

    g_string_truncate(log, 0);
    g_assert_true(job_dismiss(l, "j1", &err));
    g_assert_cmpstr(log->str, ==, "j1:null;");
    g_assert_true(freed1);
    g_assert_false(job_dismiss(l, "j1", &err));
    g_assert_cmpstr(err->message, ==, "Job not found");
    g_clear_error(&err);
    g_assert_cmpuint(job_list_count(l), ==, 1);
    job_list_free(l);
    g_assert_true(freed2);
}

static void test_refusals(void)
{
    JobList *l = job_list_new(NULL, NULL);
    static const char *const bad[] = { "1bad", "", "a b", "-x", "a/b" };
    bool freed = false;
    Job *j;
    GError *err = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        freed = false;
        g_assert_null(job_create(l, bad[i], &driver, work(false, &freed),
                                 &err));
        g_autofree char *want = g_strdup_printf("Invalid job ID '%s'", bad[i]);
        g_assert_cmpstr(err->message, ==, want);
        g_assert_true(freed);
        g_clear_error(&err);
    }
    j = job_create(l, "ok.id_2-x", &driver, work(false, &freed), &err);
    g_assert_nonnull(j);
    g_assert_null(job_create(l, "ok.id_2-x", &driver, work(false, &freed),
                             &err));
    g_assert_cmpstr(err->message, ==, "Job ID 'ok.id_2-x' already in use");
    g_clear_error(&err);
    start_and_run(j, NULL, NULL);
    for (JobVerb v = 0; v < JOB_VERB__MAX; v++) {
        bool ok = job_verb(j, v, &err);

        g_assert_true(ok == (v == JOB_VERB_DISMISS));
        if (!ok) {
            g_autofree char *want = g_strdup_printf(
                "Job 'ok.id_2-x' in state 'concluded' cannot accept command "
                "verb '%s'", job_verb_name(v));
            g_assert_cmpstr(err->message, ==, want);
            g_clear_error(&err);
        }
    }
    g_assert_null(job_find(l, "nosuch", &err));
    g_assert_cmpstr(err->message, ==, "Job not found");
    g_clear_error(&err);
    job_list_free(l);
}

/* A job whose list goes before the main loop completed it (tern quits
 * right after the command): no status change after, nothing leaks. */
static void test_gone_before_run(void)
{
    g_autoptr(GString) log = g_string_new(NULL);
    JobList *l = job_list_new(log_change, log);
    bool freed = false;
    Job *j = job_create(l, "j", &driver, work(true, &freed), NULL);

    job_start(j);
    job_list_free(l);
    g_assert_true(freed);
    while (g_main_context_iteration(NULL, false)) {
    }
    g_assert_cmpstr(log->str, ==, "j:created;j:running;");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/job/sequences", test_sequences);
    g_test_add_func("/job/refusals", test_refusals);
    g_test_add_func("/job/gone-before-run", test_gone_before_run);
    return g_test_run();
}
