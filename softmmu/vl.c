/*
 * tern's process lifecycle: parse the command line, build the machine, run the
 * GLib main loop on the main thread until the guest powers off, a debug-exit
 * write, a signal or an error ends it, then tear down and return the exit
 * status (0 poweroff/signal, the debug-exit code, 1 on errors).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <glib-unix.h>

#include "hw/block/drive.h"
#include "hw/i386/machine.h"
#include "migration/migration.h"
#include "migration/snapshot.h"
#include "monitor/qmp-migration.h"
#include "monitor/monitor-vl.h"
#include "softmmu/cmdline.h"
#include "softmmu/daemon.h"
#include "softmmu/runstate.h"
#include "softmmu/seccomp.h"
#include "softmmu/vl.h"
#include "tern/error.h"

typedef struct Vl {
    VmConfig *cfg;
    Daemon *daemon;
    Machine *machine;
    MonitorVl *monitor;
    MigrationState *migration;
    GMainLoop *loop;
    int exit_status;
} Vl;

static void quit(Vl *vl, int status)
{
    vl->exit_status = status;
    g_main_loop_quit(vl->loop);
}

static void pause_vcpus(void *opaque)
{
    machine_pause(((Vl *)opaque)->machine);
}

static void resume_vcpus(void *opaque)
{
    machine_resume(((Vl *)opaque)->machine);
}

static void on_shutdown(void *opaque, ShutdownCause cause)
{
    Vl *vl = opaque;
    bool by_guest = cause == SHUTDOWN_CAUSE_GUEST_SHUTDOWN ||
                    cause == SHUTDOWN_CAUSE_GUEST_PANIC;

    if (by_guest && vl->cfg->no_shutdown) {
        vm_stop(RUN_STATE_SHUTDOWN);
        return;
    }
    quit(vl, 0);
}

static void on_reset(void *opaque, ShutdownCause cause)
{
    Vl *vl = opaque;
    g_autoptr(GError) err = NULL;
    bool was_running = runstate_is_running(runstate_get());

    if (vl->cfg->no_reboot && cause != SHUTDOWN_CAUSE_SUBSYSTEM_RESET) {
        quit(vl, 0);   /* QEMU: with -no-reboot any system reset is a shutdown */
        return;
    }
    machine_pause(vl->machine);
    if (!machine_reset(vl->machine, &err)) {
        tern_error_report("reset failed: %s", err->message);
        quit(vl, 1);
        return;
    }
    if (was_running) {
        machine_resume(vl->machine);
    } else if (!runstate_check(RUN_STATE_INMIGRATE) &&
               !runstate_check(RUN_STATE_FINISH_MIGRATE)) {
        /* As QEMU: a reset VM that is not running has not run since. */
        runstate_set(RUN_STATE_PRELAUNCH);
    }
}

static void on_exit_request(void *opaque, int status)
{
    quit(opaque, status);
}

static void on_stop(void *opaque, RunState reason)
{
    Vl *vl = opaque;

    vm_stop(reason);
    /* Without a monitor nobody could inspect or continue the VM. */
    if (reason == RUN_STATE_INTERNAL_ERROR && !vm_config_last(vl->cfg, "qmp")) {
        tern_error_report("stopping: the guest cannot continue");
        quit(vl, 1);
    }
}

static const VmControlOps vl_ops = {
    .pause_vcpus = pause_vcpus,
    .resume_vcpus = resume_vcpus,
    .on_shutdown = on_shutdown,
    .on_reset = on_reset,
    .on_exit = on_exit_request,
    .on_stop = on_stop,
};

static gboolean on_signal(gpointer opaque)
{
    vm_request_shutdown(SHUTDOWN_CAUSE_HOST_SIGNAL);
    return G_SOURCE_CONTINUE;
}

/* Test hook (documented in docs/machine.md): with TERN_TEST_SIGUSR2_CONT=1,
 * SIGUSR2 does what QMP 'cont' does, so -S is testable without a monitor. */
static gboolean on_sigusr2(gpointer opaque)
{
    if (!runstate_is_running(runstate_get())) {
        vm_start();
    }
    return G_SOURCE_CONTINUE;
}

/* -incoming: the guest waits in inmigrate for a stream instead of starting. */
static bool start_incoming(Vl *vl, GError **errp)
{
    const char *uri = vm_config_last(vl->cfg, "incoming");

    runstate_set(RUN_STATE_INMIGRATE);
    return !strcmp(uri, "defer") ||
           migration_start_incoming(vl->migration, uri, errp);
}

/* -loadvm TAG: the VM starts from the snapshot (as HMP loadvm), or not at
 * all. */
static bool load_snapshot(Vl *vl, GError **errp)
{
    const VmSnapshotArgs args = { .name = vm_config_last(vl->cfg, "loadvm") };

    return !args.name ||
           vm_snapshot_load(migration_snapshots(vl->migration), &args, errp);
}

static int run(Vl *vl)
{
    g_autoptr(GError) err = NULL;
    guint sigs[3] = { 0 };

    /* A pipe whose reader went (an exec: migration, a pipe chardev) is a
     * write error to report, not the end of the VM, as in QEMU. */
    signal(SIGPIPE, SIG_IGN);
    vl->machine = machine_new(vl->cfg, NULL, &err);
    if (!vl->machine) {
        tern_error_report("%s", err->message);
        return 1;
    }
    vl->loop = g_main_loop_new(NULL, false);
    runstate_init(&vl_ops, vl, NULL);
    sigs[0] = g_unix_signal_add(SIGINT, on_signal, vl);
    sigs[1] = g_unix_signal_add(SIGTERM, on_signal, vl);
    if (g_strcmp0(g_getenv("TERN_TEST_SIGUSR2_CONT"), "1") == 0) {
        sigs[2] = g_unix_signal_add(SIGUSR2, on_sigusr2, vl);
    }
    vl->migration = migration_state_new(vl->machine);
    migration_set_incoming_failed(vl->migration, on_exit_request, vl);
    vl->monitor = monitor_vl_init(vl->cfg, vl->machine, &err);
    if (vl->monitor) {
        drive_set_attach_monitor(vl->machine->drives, monitor_vl_monitor(vl->monitor));
        qmp_migration_attach(monitor_vl_monitor(vl->monitor), vl->migration);
        monitor_vl_set_migration(vl->monitor, vl->migration);
    }
    if (!vl->monitor || !load_snapshot(vl, &err)) {
        tern_error_report("%s", err->message);
        vl->exit_status = 1;
        g_clear_pointer(&vl->monitor, monitor_vl_cleanup);
    } else if (vm_config_last(vl->cfg, "incoming")) {
        if (!start_incoming(vl, &err)) {
            tern_error_report("-incoming: %s", err->message);
            vl->exit_status = 1;
            g_clear_pointer(&vl->monitor, monitor_vl_cleanup);
        }
    } else if (!vl->cfg->start_paused) {
        vm_start();
    }
    if (vl->monitor) {
        daemon_ready(vl->daemon);
        g_main_loop_run(vl->loop);
    }
    drive_set_attach_monitor(vl->machine->drives, NULL);   /* before the monitor goes */
    migration_state_free(vl->migration);   /* its threads may still emit events */
    monitor_vl_cleanup(vl->monitor);

    for (unsigned i = 0; i < G_N_ELEMENTS(sigs); i++) {
        if (sigs[i]) {
            g_source_remove(sigs[i]);
        }
    }
    machine_free(vl->machine);
    runstate_cleanup();
    g_main_loop_unref(vl->loop);
    return vl->exit_status;
}

/* What happens before the machine exists, in QEMU's order: detach (the
 * only fork), pid file, locked memory, then the sandbox, which forbids
 * some of the calls before it. */
static bool setup_process(Vl *vl, GError **errp)
{
    vl->daemon = daemon_start(vl->cfg, errp);
    if (!vl->daemon) {
        return false;
    }
    if (vl->cfg->mem_lock && mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
        tern_set_error_errno(errp, errno, "locking memory failed");
        return false;
    }
    return seccomp_install(&vl->cfg->sandbox, errp);
}

int tern_main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    Vl vl = { 0 };
    int status = 0;

    g_set_prgname("tern");
    vl.cfg = vm_config_new();
    if (!cmdline_parse(vl.cfg, argc, argv, &err)) {
        tern_error_report("%s", err->message);
        vm_config_free(vl.cfg);
        return 1;
    }
    if (!vl.cfg->exit_now) {
        if (setup_process(&vl, &err)) {
            status = run(&vl);
        } else {
            tern_error_report("%s", err->message);
            status = 1;
        }
    }
    daemon_free(vl.daemon);
    vm_config_free(vl.cfg);
    return status;
}
