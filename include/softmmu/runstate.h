/*
 * The VM's run state, as QMP's query-status reports it (softmmu/runstate.c);
 * the machine drives it, QMP, migration and snapshots use it.
 * Names are QEMU's RunState strings, so query-status answers match QEMU 7.2.
 * Transitions happen on the main-loop thread; listeners run there too.
 */
#ifndef SOFTMMU_RUNSTATE_H
#define SOFTMMU_RUNSTATE_H

#include "tern/common.h"

typedef enum {
    RUN_STATE_PRELAUNCH,      /* "prelaunch": -S, never run yet */
    RUN_STATE_RUNNING,        /* "running" */
    RUN_STATE_PAUSED,         /* "paused": stop, or -S after cont was never sent */
    RUN_STATE_SHUTDOWN,       /* "shutdown": guest powered off with -no-shutdown */
    RUN_STATE_INMIGRATE,      /* "inmigrate": waiting for an incoming stream */
    RUN_STATE_POSTMIGRATE,    /* "postmigrate": source after a completed migration */
    RUN_STATE_FINISH_MIGRATE, /* "finish-migrate": stop-and-copy in progress */
    RUN_STATE_SAVE_VM,        /* "save-vm" */
    RUN_STATE_RESTORE_VM,     /* "restore-vm" */
    RUN_STATE_IO_ERROR,       /* "io-error": werror/rerror=stop */
    RUN_STATE_INTERNAL_ERROR, /* "internal-error": KVM failed a vCPU */
    RUN_STATE_GUEST_PANICKED, /* "guest-panicked" */
    RUN_STATE__MAX
} RunState;

/* The reason a stop happened, reported by the STOP event's absence of data and
 * by query-status's 'status'; kept separate so postmigrate etc. stay exact. */

const char *runstate_name(RunState s);
bool runstate_is_running(RunState s);

/* Why the VM is shutting down or resetting; names are QEMU's ShutdownCause
 * strings (SHUTDOWN and RESET events carry them as 'reason'). */
typedef enum {
    SHUTDOWN_CAUSE_NONE,
    SHUTDOWN_CAUSE_HOST_ERROR,      /* "host-error" */
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,   /* "host-qmp-quit" */
    SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET, /* "host-qmp-system-reset" */
    SHUTDOWN_CAUSE_HOST_SIGNAL,     /* "host-signal" */
    SHUTDOWN_CAUSE_HOST_UI,         /* "host-ui" */
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,  /* "guest-shutdown" */
    SHUTDOWN_CAUSE_GUEST_RESET,     /* "guest-reset" */
    SHUTDOWN_CAUSE_GUEST_PANIC,     /* "guest-panic" */
    SHUTDOWN_CAUSE_SUBSYSTEM_RESET, /* "subsystem-reset" */
    SHUTDOWN_CAUSE__MAX
} ShutdownCause;

const char *shutdown_cause_name(ShutdownCause c);

/*
 * The current state and its transitions. vm_stop() pauses every vCPU (with
 * pending I/O completed) before the state changes and the listeners run;
 * vm_start() runs the listeners, then resumes the vCPUs. Both run on the
 * main-loop thread. Stopping a stopped VM only changes the state name
 * (e.g. paused -> finish-migrate), without a second STOP notification.
 */
RunState runstate_get(void);
bool runstate_check(RunState s);
/* Changes the name only (e.g. inmigrate -> paused); no vCPU effect. */
void runstate_set(RunState s);
void vm_stop(RunState target);
void vm_start(void);

/* running: true after vm_start (QMP's RESUME), false after vm_stop (STOP). */
typedef void (*RunStateListener)(void *opaque, bool running, RunState state);
void runstate_add_listener(RunStateListener fn, void *opaque);
void runstate_remove_listener(RunStateListener fn, void *opaque);

/* Events for the QMP layer (SHUTDOWN with guest/reason, RESET). */
typedef struct RunStateEventOps {
    void (*shutdown)(void *opaque, ShutdownCause cause);
    void (*reset)(void *opaque, ShutdownCause cause);
} RunStateEventOps;
void runstate_set_event_ops(const RunStateEventOps *ops, void *opaque);

/*
 * Requests from any thread (vCPUs, devices, QMP, signal handlers); the main
 * loop acts on them: shutdown ends the process (or stops in 'shutdown' state
 * with -no-shutdown), reset resets the machine (or ends with -no-reboot),
 * exit ends the process with that status (isa-debug-exit).
 */
void vm_request_shutdown(ShutdownCause cause);
void vm_request_reset(ShutdownCause cause);
void vm_request_exit(int status);
/* Stop the VM in state 'reason' (io-error, internal-error, guest-panicked). */
void vm_request_stop(RunState reason);

/* What the machine/main loop plugs in: how to pause and resume the vCPUs, and
 * how to act on requests (called on the main-loop thread). */
typedef struct VmControlOps {
    void (*pause_vcpus)(void *opaque);
    void (*resume_vcpus)(void *opaque);
    void (*on_shutdown)(void *opaque, ShutdownCause cause);
    void (*on_reset)(void *opaque, ShutdownCause cause);
    void (*on_exit)(void *opaque, int status);
    void (*on_stop)(void *opaque, RunState reason);
} VmControlOps;
void runstate_init(const VmControlOps *ops, void *opaque, GMainContext *ctx);
void runstate_cleanup(void);

#endif
