/*
 * The VM's run state, as QMP's query-status reports it. The machine issue
 * implements this (softmmu/runstate.c); QMP, migration and snapshots use it.
 * Names are QEMU's RunState strings, so query-status answers match QEMU 7.2.
 * Transitions happen on the main-loop thread; listeners run there too.
 */
#ifndef SYSEMU_RUNSTATE_H
#define SYSEMU_RUNSTATE_H

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

#endif
