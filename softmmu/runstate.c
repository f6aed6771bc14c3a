/*
 * The VM's run state (softmmu/runstate.h): QEMU's state names, vm_stop/vm_start
 * with their listeners, and requests (shutdown, reset, exit) that any thread
 * may post and the main loop carries out. One VM per process, so the state is
 * one process-wide struct; everything else lives in the machine.
 */
#include "softmmu/runstate.h"
#include "tern/error.h"

typedef struct Listener {
    RunStateListener fn;
    void *opaque;
} Listener;

typedef struct RunStateCtl {
    RunState state;
    GArray *listeners;                 /* of Listener */
    const VmControlOps *ops;
    void *opaque;
    const RunStateEventOps *event_ops;
    void *event_opaque;
    GMainContext *ctx;

    GMutex req_lock;                   /* requests come from any thread */
    bool req_scheduled;
    ShutdownCause req_shutdown;
    ShutdownCause req_reset;
    bool req_exit;
    int req_exit_status;
    RunState req_stop;                 /* RUN_STATE__MAX: none */
} RunStateCtl;

static RunStateCtl rs = { .state = RUN_STATE_PRELAUNCH, .req_stop = RUN_STATE__MAX };

static const char *const state_names[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_SHUTDOWN] = "shutdown",
    [RUN_STATE_INMIGRATE] = "inmigrate",
    [RUN_STATE_POSTMIGRATE] = "postmigrate",
    [RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [RUN_STATE_SAVE_VM] = "save-vm",
    [RUN_STATE_RESTORE_VM] = "restore-vm",
    [RUN_STATE_IO_ERROR] = "io-error",
    [RUN_STATE_INTERNAL_ERROR] = "internal-error",
    [RUN_STATE_GUEST_PANICKED] = "guest-panicked",
};

static const char *const cause_names[SHUTDOWN_CAUSE__MAX] = {
    [SHUTDOWN_CAUSE_NONE] = "none",
    [SHUTDOWN_CAUSE_HOST_ERROR] = "host-error",
    [SHUTDOWN_CAUSE_HOST_QMP_QUIT] = "host-qmp-quit",
    [SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET] = "host-qmp-system-reset",
    [SHUTDOWN_CAUSE_HOST_SIGNAL] = "host-signal",
    [SHUTDOWN_CAUSE_HOST_UI] = "host-ui",
    [SHUTDOWN_CAUSE_GUEST_SHUTDOWN] = "guest-shutdown",
    [SHUTDOWN_CAUSE_GUEST_RESET] = "guest-reset",
    [SHUTDOWN_CAUSE_GUEST_PANIC] = "guest-panic",
    [SHUTDOWN_CAUSE_SUBSYSTEM_RESET] = "subsystem-reset",
};

const char *runstate_name(RunState s)
{
    return s < RUN_STATE__MAX ? state_names[s] : "unknown";
}

const char *shutdown_cause_name(ShutdownCause c)
{
    return c < SHUTDOWN_CAUSE__MAX ? cause_names[c] : "unknown";
}

bool runstate_is_running(RunState s)
{
    return s == RUN_STATE_RUNNING;
}

RunState runstate_get(void)
{
    return rs.state;
}

bool runstate_check(RunState s)
{
    return rs.state == s;
}

void runstate_set(RunState s)
{
    rs.state = s;
}

static void notify(bool running)
{
    if (!rs.listeners) {
        return;
    }
    for (guint i = 0; i < rs.listeners->len; i++) {
        Listener *l = &g_array_index(rs.listeners, Listener, i);

        l->fn(l->opaque, running, rs.state);
    }
}

void vm_stop(RunState target)
{
    bool was_running = runstate_is_running(rs.state);

    if (was_running && rs.ops) {
        rs.ops->pause_vcpus(rs.opaque);
    }
    rs.state = target;
    if (was_running) {
        notify(false);
    }
}

void vm_start(void)
{
    if (runstate_is_running(rs.state)) {
        return;
    }
    rs.state = RUN_STATE_RUNNING;
    notify(true);
    if (rs.ops) {
        rs.ops->resume_vcpus(rs.opaque);
    }
}

void runstate_add_listener(RunStateListener fn, void *opaque)
{
    Listener l = { fn, opaque };

    if (!rs.listeners) {
        rs.listeners = g_array_new(false, false, sizeof(Listener));
    }
    g_array_append_val(rs.listeners, l);
}

void runstate_remove_listener(RunStateListener fn, void *opaque)
{
    for (guint i = 0; rs.listeners && i < rs.listeners->len; i++) {
        Listener *l = &g_array_index(rs.listeners, Listener, i);

        if (l->fn == fn && l->opaque == opaque) {
            g_array_remove_index(rs.listeners, i);
            return;
        }
    }
}

void runstate_set_event_ops(const RunStateEventOps *ops, void *opaque)
{
    rs.event_ops = ops;
    rs.event_opaque = opaque;
}

/* ---- requests ---- */

static gboolean handle_requests(gpointer unused)
{
    ShutdownCause shutdown, reset;
    RunState stop;
    bool exit_req;
    int status;

    g_mutex_lock(&rs.req_lock);
    shutdown = rs.req_shutdown;
    reset = rs.req_reset;
    exit_req = rs.req_exit;
    status = rs.req_exit_status;
    stop = rs.req_stop;
    rs.req_stop = RUN_STATE__MAX;
    rs.req_shutdown = rs.req_reset = SHUTDOWN_CAUSE_NONE;
    rs.req_exit = false;
    rs.req_scheduled = false;
    g_mutex_unlock(&rs.req_lock);

    if (exit_req && rs.ops) {
        rs.ops->on_exit(rs.opaque, status);
        return G_SOURCE_REMOVE;
    }
    if (stop != RUN_STATE__MAX && rs.ops) {
        rs.ops->on_stop(rs.opaque, stop);
    }
    if (shutdown != SHUTDOWN_CAUSE_NONE) {
        if (rs.event_ops && rs.event_ops->shutdown) {
            rs.event_ops->shutdown(rs.event_opaque, shutdown);
        }
        if (rs.ops) {
            rs.ops->on_shutdown(rs.opaque, shutdown);
        }
    } else if (reset != SHUTDOWN_CAUSE_NONE) {
        if (rs.event_ops && rs.event_ops->reset) {
            rs.event_ops->reset(rs.event_opaque, reset);
        }
        if (rs.ops) {
            rs.ops->on_reset(rs.opaque, reset);
        }
    }
    return G_SOURCE_REMOVE;
}

/* Called with req_lock held. */
static void schedule(void)
{
    if (!rs.req_scheduled) {
        GSource *src = g_idle_source_new();

        rs.req_scheduled = true;
        g_source_set_callback(src, handle_requests, NULL, NULL);
        g_source_attach(src, rs.ctx);
        g_source_unref(src);
    }
}

void vm_request_shutdown(ShutdownCause cause)
{
    g_mutex_lock(&rs.req_lock);
    rs.req_shutdown = cause;
    schedule();
    g_mutex_unlock(&rs.req_lock);
}

void vm_request_reset(ShutdownCause cause)
{
    g_mutex_lock(&rs.req_lock);
    rs.req_reset = cause;
    schedule();
    g_mutex_unlock(&rs.req_lock);
}

void vm_request_exit(int status)
{
    g_mutex_lock(&rs.req_lock);
    if (!rs.req_exit) {   /* the first exit request wins */
        rs.req_exit = true;
        rs.req_exit_status = status;
    }
    schedule();
    g_mutex_unlock(&rs.req_lock);
}

void vm_request_stop(RunState reason)
{
    g_mutex_lock(&rs.req_lock);
    rs.req_stop = reason;
    schedule();
    g_mutex_unlock(&rs.req_lock);
}

void runstate_init(const VmControlOps *ops, void *opaque, GMainContext *ctx)
{
    rs.ops = ops;
    rs.opaque = opaque;
    rs.ctx = ctx;
    rs.state = RUN_STATE_PRELAUNCH;
}

void runstate_cleanup(void)
{
    if (rs.listeners) {
        g_array_unref(rs.listeners);
        rs.listeners = NULL;
    }
    rs.ops = NULL;
    rs.event_ops = NULL;
}
