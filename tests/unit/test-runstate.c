/*
 * Unit tests for the run state (softmmu/runstate.c): QEMU's state and cause
 * names, vm_stop/vm_start ordering against the vCPU hooks and listeners, and
 * requests posted from another thread reaching the main context.
 */
#include <string.h>

#include "softmmu/runstate.h"

typedef struct Log {
    GString *s;
    int exit_status;
    RunState stop_reason;
} Log;

static void pause_vcpus(void *opaque) { g_string_append(((Log *)opaque)->s, "pause;"); }
static void resume_vcpus(void *opaque) { g_string_append(((Log *)opaque)->s, "resume;"); }

static void on_shutdown(void *opaque, ShutdownCause c)
{
    g_string_append_printf(((Log *)opaque)->s, "shutdown:%s;", shutdown_cause_name(c));
}

static void on_reset(void *opaque, ShutdownCause c)
{
    g_string_append_printf(((Log *)opaque)->s, "reset:%s;", shutdown_cause_name(c));
}

static void on_exit_req(void *opaque, int status)
{
    ((Log *)opaque)->exit_status = status;
    g_string_append(((Log *)opaque)->s, "exit;");
}

static void on_stop(void *opaque, RunState r)
{
    ((Log *)opaque)->stop_reason = r;
    vm_stop(r);
}

static const VmControlOps ops = {
    .pause_vcpus = pause_vcpus, .resume_vcpus = resume_vcpus, .on_shutdown = on_shutdown,
    .on_reset = on_reset, .on_exit = on_exit_req, .on_stop = on_stop,
};

static void listener(void *opaque, bool running, RunState state)
{
    g_string_append_printf(((Log *)opaque)->s, "%s(%s);", running ? "RESUME" : "STOP",
                           runstate_name(state));
}

static void test_names(void)
{
    g_assert_cmpstr(runstate_name(RUN_STATE_PRELAUNCH), ==, "prelaunch");
    g_assert_cmpstr(runstate_name(RUN_STATE_FINISH_MIGRATE), ==, "finish-migrate");
    g_assert_cmpstr(runstate_name(RUN_STATE_INTERNAL_ERROR), ==, "internal-error");
    g_assert_cmpstr(runstate_name(RUN_STATE_GUEST_PANICKED), ==, "guest-panicked");
    g_assert_cmpstr(runstate_name(RUN_STATE__MAX), ==, "unknown");
    for (int i = 0; i < RUN_STATE__MAX; i++) {
        g_assert_nonnull(runstate_name(i));
        g_assert_cmpstr(runstate_name(i), !=, "unknown");
    }
    g_assert_cmpstr(shutdown_cause_name(SHUTDOWN_CAUSE_GUEST_SHUTDOWN), ==, "guest-shutdown");
    g_assert_cmpstr(shutdown_cause_name(SHUTDOWN_CAUSE_HOST_QMP_QUIT), ==, "host-qmp-quit");
}

static void test_stop_start_order(void)
{
    Log log = { .s = g_string_new(NULL) };

    runstate_init(&ops, &log, NULL);
    runstate_add_listener(listener, &log);
    g_assert_true(runstate_check(RUN_STATE_PRELAUNCH));
    vm_start();
    g_assert_true(runstate_is_running(runstate_get()));
    vm_start();                                  /* no second RESUME */
    vm_stop(RUN_STATE_PAUSED);
    vm_stop(RUN_STATE_FINISH_MIGRATE);           /* name only, no second STOP */
    g_assert_true(runstate_check(RUN_STATE_FINISH_MIGRATE));
    runstate_set(RUN_STATE_POSTMIGRATE);
    vm_start();
    g_assert_cmpstr(log.s->str, ==,
                    "RESUME(running);resume;pause;STOP(paused);RESUME(running);resume;");
    runstate_remove_listener(listener, &log);
    vm_stop(RUN_STATE_PAUSED);
    g_assert_true(g_str_has_suffix(log.s->str, "resume;pause;"));
    runstate_cleanup();
    g_string_free(log.s, true);
}

static gpointer post_requests(gpointer unused)
{
    vm_request_reset(SHUTDOWN_CAUSE_GUEST_RESET);
    vm_request_shutdown(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    return NULL;
}

static void drain(void)
{
    while (g_main_context_iteration(NULL, false)) {
    }
}

static void test_requests_from_thread(void)
{
    Log log = { .s = g_string_new(NULL), .stop_reason = RUN_STATE__MAX };
    GThread *t;

    runstate_init(&ops, &log, NULL);
    t = g_thread_new("req", post_requests, NULL);
    g_thread_join(t);
    drain();
    /* One pass handles both; shutdown wins over the reset it came with. */
    g_assert_cmpstr(log.s->str, ==, "shutdown:guest-shutdown;");
    g_string_truncate(log.s, 0);
    vm_request_reset(SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET);
    drain();
    g_assert_cmpstr(log.s->str, ==, "reset:host-qmp-system-reset;");
    g_string_truncate(log.s, 0);
    vm_start();
    vm_request_stop(RUN_STATE_IO_ERROR);
    drain();
    g_assert_cmpint(log.stop_reason, ==, RUN_STATE_IO_ERROR);
    g_assert_true(runstate_check(RUN_STATE_IO_ERROR));
    vm_request_exit(7);
    vm_request_exit(9);                          /* the first one wins */
    vm_request_shutdown(SHUTDOWN_CAUSE_HOST_SIGNAL);
    drain();
    g_assert_cmpint(log.exit_status, ==, 7);
    g_assert_true(g_str_has_suffix(log.s->str, "exit;"));
    g_assert_null(strstr(log.s->str, "shutdown"));
    runstate_cleanup();
    g_string_free(log.s, true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/runstate/names", test_names);
    g_test_add_func("/runstate/stop-start-order", test_stop_start_order);
    g_test_add_func("/runstate/requests-from-thread", test_requests_from_thread);
    return g_test_run();
}
