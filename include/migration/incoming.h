/*
 * The destination of one migration stream, between the loader (loadvm.c)
 * and the VMM: it answers the stream's commands (SaveVMIncomingOps) as
 * seed 004 does — the return path with PONG, SHUT and switchover-ack, and
 * postcopy: ADVISE (page sizes, userfaultfd), RAM_DISCARD, LISTEN (the
 * pager starts, a listen thread takes the main channel and, with
 * postcopy-preempt, a thread reads the second channel), RUN (the VMM starts
 * the guest while RAM still streams in), RECV_BITMAP and RESUME. When the
 * channel breaks after RUN it goes postcopy-paused: the guest keeps running,
 * only threads touching missing pages wait, until migrate-recover hands it
 * new channels; a source that never comes back leaves it paused with the
 * reason. Statuses are logged in order for the VMM's MIGRATION events.
 *
 * Threads: the caller's loader thread (mig_incoming_run), the listen and
 * preempt threads, the pager's fault thread; the VMM's main loop calls the
 * rest.
 */
#ifndef MIGRATION_INCOMING_H
#define MIGRATION_INCOMING_H

#include "migration/migration-job.h"
#include "migration/ram.h"

typedef struct MigIncomingConfig {
    bool postcopy_ram;          /* capability postcopy-ram */
    bool preempt;               /* capability postcopy-preempt */
    bool switchover_ack;        /* capability switchover-ack */
    unsigned nr_vcpus;
} MigIncomingConfig;

typedef struct MigIncomingHooks {
    /* Loader thread, POSTCOPY_RUN: start the guest (disks, bitmaps, then
     * run unless -S) on the main loop; do not wait for it. */
    void (*run_guest)(void *opaque);
    /* Any thread: a status was logged. */
    void (*status_changed)(void *opaque);
    /* Fault thread: the vCPU index of Linux thread 'tid', or -1. */
    int (*vcpu_of_thread)(void *opaque, int64_t tid);
    void *opaque;
} MigIncomingHooks;

typedef struct MigIncomingInfo {
    MigrationStatus status;
    char error_desc[256];       /* why it failed or is paused */
    bool postcopy;              /* RAM postcopy ran: 'pager' is valid */
    UffdPagerStats pager;       /* g_free(pager.vcpu_blocktime_ms) */
} MigIncomingInfo;

typedef struct MigIncoming MigIncoming;

MigIncoming *mig_incoming_new(SaveVM *sv, RamMigration *ram,
                              const GuestMemory *mem,
                              const MigIncomingConfig *cfg,
                              const MigIncomingHooks *hooks);
/* After mig_incoming_run has returned (or was never called). */
void mig_incoming_free(MigIncoming *in);

/* Loader thread: load the stream from 'f' (and the preempt channel
 * 'urgent', or NULL), both owned from now on. Returns when it is over:
 * at EOF for precopy, when the listen thread is done for postcopy. SHUT
 * tells the source how it went. */
bool mig_incoming_run(MigIncoming *in, QEMUFile *f, QEMUFile *urgent,
                      GError **errp);

MigrationStatus mig_incoming_status(MigIncoming *in);
/* Move the statuses logged since the last call into 'out' (of
 * MigrationStatus), oldest first. */
void mig_incoming_take_statuses(MigIncoming *in, GArray *out);
void mig_incoming_get_info(MigIncoming *in, MigIncomingInfo *out);

/* migrate-pause: cut the channels of an active postcopy on purpose. */
bool mig_incoming_pause(MigIncoming *in, GError **errp);
/* migrate-recover, before listening: only while postcopy-paused and no
 * other recovery waits. mig_incoming_recover_abort undoes it (the listener
 * failed); mig_incoming_recover hands over the new channels. */
bool mig_incoming_recover_begin(MigIncoming *in, GError **errp);
void mig_incoming_recover_abort(MigIncoming *in);
bool mig_incoming_recover(MigIncoming *in, QEMUFile *f, QEMUFile *urgent,
                          GError **errp);
/* Teardown, any thread: every wait ends and the load fails. */
void mig_incoming_shutdown(MigIncoming *in);

#endif
