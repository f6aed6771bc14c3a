/*
 * The VMM's migration state: one per process, owned by the main program.
 * It builds the SaveVM of the running machine (RAM as "pc.ram", globalstate,
 * every device the machine registers), runs at most one outgoing precopy
 * migration (migration-job.h) with KVM dirty logging feeding RAM, or one
 * incoming stream (-incoming / migrate-incoming), and keeps what QMP reports:
 * QEMU's status names, capabilities and parameters. Run-state changes
 * (finish-migrate, postmigrate, inmigrate, resume on failure) are made on the
 * main-loop thread; everything else may be called from the main loop only,
 * unless noted.
 */
#ifndef MIGRATION_MIGRATION_H
#define MIGRATION_MIGRATION_H

#include "migration/migration-job.h"

typedef struct Machine Machine;

/* QEMU 7.2's MigrationCapability list, in its order, then switchover-ack
 * (seed 004's destination honours it). */
typedef enum {
    MIG_CAP_XBZRLE,
    MIG_CAP_RDMA_PIN_ALL,
    MIG_CAP_AUTO_CONVERGE,
    MIG_CAP_ZERO_BLOCKS,
    MIG_CAP_COMPRESS,
    MIG_CAP_EVENTS,
    MIG_CAP_POSTCOPY_RAM,
    MIG_CAP_X_COLO,
    MIG_CAP_RELEASE_RAM,
    MIG_CAP_BLOCK,
    MIG_CAP_RETURN_PATH,
    MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
    MIG_CAP_MULTIFD,
    MIG_CAP_DIRTY_BITMAPS,
    MIG_CAP_POSTCOPY_BLOCKTIME,
    MIG_CAP_LATE_BLOCK_ACTIVATE,
    MIG_CAP_X_IGNORE_SHARED,
    MIG_CAP_VALIDATE_UUID,
    MIG_CAP_BACKGROUND_SNAPSHOT,
    MIG_CAP_ZERO_COPY_SEND,
    MIG_CAP_POSTCOPY_PREEMPT,
    MIG_CAP_SWITCHOVER_ACK,         /* QEMU 8.1's, after 7.2's list */
    MIG_CAP__MAX
} MigrationCapability;

const char *migration_capability_name(MigrationCapability c);
/* Whether tern's migration can run capability c (the others are refused
 * when set, and not listed by query-migrate-capabilities). */
bool migration_capability_implemented(MigrationCapability c);
/* -1 if 'name' is not a capability. */
int migration_capability_lookup(const char *name);

/* What QMP's MIGRATION and MIGRATION_PASS events need (main loop thread). */
typedef struct MigrationEventOps {
    void (*status)(void *opaque, MigrationStatus s);
    void (*pass)(void *opaque, uint64_t pass);
} MigrationEventOps;

#define MIGRATION_MAX_VCPUS 256

/* query-migrate's view: the outgoing job's figures, or the incoming side's. */
typedef struct MigrationInfo {
    MigrationStats stats;
    bool incoming;              /* stats describe an incoming stream */
    bool has_ram;               /* ram.* figures are meaningful */
    uint64_t pages_per_second;  /* pages sent per second, whole job */
    uint64_t dirty_pages_rate;  /* pages the guest dirtied per second */
    /* Destination of a RAM postcopy: capability postcopy-blocktime's
     * figures (QEMU's), and tern's own fault -> page placed latency. */
    bool has_blocktime;
    uint64_t blocktime_ms;
    unsigned nr_vcpus;
    uint64_t vcpu_blocktime_ms[MIGRATION_MAX_VCPUS];
    bool has_fault_latency;
    uint64_t faults, page_requests, fault_latency_count;
    uint64_t fault_latency_ns[4];   /* p50, p90, p99, max */
} MigrationInfo;

typedef struct MigrationState MigrationState;

/* Registers RAM, the dirty bitmaps, globalstate and the machine's device
 * list (m->devices, in its order) with a new SaveVM. */
MigrationState *migration_state_new(Machine *m);
/* That SaveVM: what snapshots save and load, and tests. */
SaveVM *migration_savevm(MigrationState *ms);
/* savevm/loadvm/delvm of this machine (include/migration/snapshot.h):
 * refused while a migration is in progress; a load resets the machine. */
typedef struct VmSnapshot VmSnapshot;
VmSnapshot *migration_snapshots(MigrationState *ms);
/* Cancels an outgoing job, stops an incoming wait, joins the threads. */
void migration_state_free(MigrationState *ms);
/* 'free_opaque' (may be NULL) runs on 'opaque' when 'ms' is freed. */
void migration_set_event_ops(MigrationState *ms, const MigrationEventOps *ops,
                             void *opaque, GDestroyNotify free_opaque);
/* Called with the exit status when an incoming stream fails (the process
 * must end, as QEMU's does). */
void migration_set_incoming_failed(MigrationState *ms,
                                   void (*fn)(void *opaque, int status),
                                   void *opaque);

/* Capabilities may change only while no migration runs, and only to what
 * tern implements; dependencies (postcopy-preempt needs postcopy-ram,
 * switchover-ack needs return-path) are checked on the set as a whole,
 * which is applied all or nothing. */
bool migration_set_capabilities(MigrationState *ms, size_t n,
                                const MigrationCapability *caps,
                                const bool *on, GError **errp);
bool migration_set_capability(MigrationState *ms, MigrationCapability c,
                              bool on, GError **errp);
bool migration_capability(const MigrationState *ms, MigrationCapability c);
MigrationParams migration_get_params(const MigrationState *ms);
/* Takes the whole new set after QEMU's checks (ranges, max-cpu-throttle not
 * below cpu-throttle-initial), refused in QEMU's words. */
bool migration_set_params(MigrationState *ms, const MigrationParams *p,
                          GError **errp);
/* True while an outgoing job or an incoming stream is in progress. */
bool migration_is_active(const MigrationState *ms);

/* QMP cont: take back every drive that is inactive (a postmigrate source,
 * a destination whose activation failed), as the destination does before
 * its guest runs. A no-op while a migration is in progress (it owns the
 * hand-over). False with *errp (e.g. another process holds the write lock)
 * if one cannot be taken: the guest must not run then. */
bool migration_activate_disks(MigrationState *ms, GError **errp);

/* QMP migrate: connect to 'uri' and start the precopy job. */
bool migration_start_outgoing(MigrationState *ms, const char *uri,
                              GError **errp);
/* QMP migrate_cancel: no-op when nothing runs; refused once postcopy has
 * begun (the destination may run the guest by then). */
bool migration_cancel(MigrationState *ms, GError **errp);
/* QMP migrate-start-postcopy: switch the running migration over. */
bool migration_start_postcopy(MigrationState *ms, GError **errp);
/* QMP migrate-pause, either side: cut an active postcopy's channels. */
bool migration_pause(MigrationState *ms, GError **errp);
/* QMP migrate with resume: reconnect a paused postcopy to 'uri'. */
bool migration_resume_outgoing(MigrationState *ms, const char *uri,
                               GError **errp);
/* QMP migrate-recover, destination: listen on 'uri' for the source of a
 * paused postcopy to come back. */
bool migration_recover(MigrationState *ms, const char *uri, GError **errp);
/* -incoming URI / migrate-incoming: listen now, load on a thread. The run
 * state must already be inmigrate. */
bool migration_start_incoming(MigrationState *ms, const char *uri,
                              GError **errp);
void migration_get_info(MigrationState *ms, MigrationInfo *out);

/* Test aid (QMP x-ram-sha256): SHA-256 of guest RAM in memfd order. */
char *migration_ram_sha256(MigrationState *ms);
/* Test and benchmark aid (QMP x-ram-load): copy a file into guest RAM at
 * 'gpa' (QEMU's -device loader,force-raw=on does the same for QEMU). */
bool migration_ram_load_file(MigrationState *ms, const char *path,
                             uint64_t gpa, GError **errp);

#endif
