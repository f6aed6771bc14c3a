/*
 * Unit tests for the -sandbox filter (softmmu/seccomp.c): each case runs in
 * a child that installs the filter and then makes one call, and the parent
 * reads how the child ended: killed by SIGSYS where QEMU 7.2's filter kills,
 * a normal exit where the call is allowed. Children leave with _exit so that
 * nothing (a leak checker's own clone among them) runs after the call.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "softmmu/seccomp.h"

typedef void (*Action)(void);

/* How a child that installs 'sb' and runs 'action' ends: the signal that
 * killed it, or 0 after a normal exit. */
static int run_sandboxed(const VmSandbox *sb, Action action)
{
    int status;
    pid_t pid = fork();

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        GError *err = NULL;

        if (!seccomp_install(sb, &err)) {
            _exit(2);
        }
        action();
        _exit(0);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    if (WIFSIGNALED(status)) {
        return WTERMSIG(status);
    }
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    return 0;
}

static const VmSandbox spawn_deny = { .on = true, .deny_spawn = true };
static const VmSandbox spawn_allow = { .on = true };

static gpointer thread_body(gpointer data)
{
    return data;
}

static void start_thread(void)
{
    static int token;
    pthread_t t;
    void *ret = NULL;

    if (pthread_create(&t, NULL, thread_body, &token) ||
        pthread_join(t, &ret) || ret != &token) {
        _exit(3);
    }
}

static void do_fork(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        _exit(0);
    }
    if (pid > 0) {
        waitpid(pid, NULL, 0);
    }
}

static void do_unshare(void)
{
    unshare(0);
}

static void do_setns(void)
{
    setns(-1, 0);
}

/* A thread's flags plus one that makes a new namespace: refused by the
 * kernel too (a namespace cannot be a thread's), so an unfiltered call
 * creates nothing. */
static void clone_thread_flags(unsigned long extra)
{
    unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                          CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
                          CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | extra;

    if (syscall(SYS_clone, flags, NULL, NULL, NULL, NULL) == 0) {
        _exit(0);   /* never: the flags are invalid */
    }
}

static void clone_newuser(void)
{
    clone_thread_flags(CLONE_NEWUSER);
}

static void clone_newns(void)
{
    clone_thread_flags(CLONE_NEWNS);
}

static void clone3_falls_back(void)
{
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS) {
        _exit(4);
    }
}

static void test_threads_allowed(void)
{
    g_assert_cmpint(run_sandboxed(&spawn_deny, start_thread), ==, 0);
    g_assert_cmpint(run_sandboxed(&spawn_deny, clone3_falls_back), ==, 0);
}

static void test_spawn_denied(void)
{
    static const Action denied[] = {
        do_fork, do_unshare, do_setns, clone_newuser, clone_newns,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(denied); i++) {
        g_assert_cmpint(run_sandboxed(&spawn_deny, denied[i]), ==, SIGSYS);
        g_assert_cmpint(run_sandboxed(&spawn_allow, denied[i]), ==, 0);
    }
}

static void lower_priority(void)
{
    if (setpriority(PRIO_PROCESS, 0, 5) == 0 || errno != EPERM) {
        _exit(5);
    }
}

static void test_resourcecontrol(void)
{
    const VmSandbox deny = { .on = true, .deny_resources = true };

    g_assert_cmpint(run_sandboxed(&deny, lower_priority), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/seccomp/spawn/threads-allowed", test_threads_allowed);
    g_test_add_func("/seccomp/spawn/denied", test_spawn_denied);
    g_test_add_func("/seccomp/resourcecontrol/eperm", test_resourcecontrol);
    return g_test_run();
}
