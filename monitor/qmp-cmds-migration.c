/*
 * The migration QMP commands and events (monitor/qmp-migration.h), with
 * QEMU 7.2's names, argument types and reply members. The work, and the
 * rules on values (which capabilities run, parameter ranges), are
 * migration/migration.c's; this file only describes and translates JSON.
 */
#include "migration/channel.h"
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-migration.h"

typedef struct QmpMigration {
    Monitor *mon;
    MigrationState *ms;
} QmpMigration;

static MigrationState *state(const QmpCall *call)
{
    return ((QmpMigration *)call->opaque)->ms;
}

/* --- migrate, migrate-incoming, migrate_cancel ------------------------------- */

typedef struct MigrateArgs {
    char *uri;
    bool has_blk, blk;
    bool has_inc, inc;
    bool has_detach, detach;
    bool has_resume, resume;
} MigrateArgs;

QMP_OBJECT_TYPE(migrate_args, "migrate-arg", MigrateArgs,
    QMP_MEMBER(MigrateArgs, uri, "uri", qmp_type_str),
    QMP_OPTIONAL(MigrateArgs, blk, "blk", qmp_type_bool),
    QMP_OPTIONAL(MigrateArgs, inc, "inc", qmp_type_bool),
    QMP_OPTIONAL(MigrateArgs, detach, "detach", qmp_type_bool),
    QMP_OPTIONAL(MigrateArgs, resume, "resume", qmp_type_bool));

/* "fd:NAME" names a descriptor given with getfd: the URI the channel gets
 * carries its number, and the channel owns it from then on. */
static char *resolve_fd_uri(const QmpCall *call, const char *uri, GError **errp)
{
    int fd;

    if (!g_str_has_prefix(uri, "fd:") || g_ascii_isdigit(uri[3])) {
        return g_strdup(uri);
    }
    fd = qmp_registry_take_fd(call->registry, uri + 3);
    if (fd < 0) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "File descriptor named '%s' has not been found", uri + 3);
        return NULL;
    }
    return g_strdup_printf("fd:%d", fd);
}

static json_object *cmd_migrate(const QmpCall *call, const void *args,
                                GError **errp)
{
    const MigrateArgs *a = args;
    g_autofree char *uri = NULL;

    if (a->blk || a->inc) {
        /* QEMU would take block migration, then find a bad URI. */
        if (migration_channel_check_uri(a->uri, errp)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "block migration is not supported by tern (use a shared "
                        "image or drive-mirror)");
        }
        return NULL;
    }
    if (a->resume) {
        return migration_resume_outgoing(state(call), a->uri, errp)
               ? qmp_return_empty() : NULL;
    }
    uri = resolve_fd_uri(call, a->uri, errp);
    if (!uri || !migration_start_outgoing(state(call), uri, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

typedef struct IncomingArgs {
    char *uri;
} IncomingArgs;

QMP_OBJECT_TYPE(incoming_args, "migrate-incoming-arg", IncomingArgs,
    QMP_MEMBER(IncomingArgs, uri, "uri", qmp_type_str));

static json_object *cmd_migrate_incoming(const QmpCall *call, const void *args,
                                         GError **errp)
{
    const IncomingArgs *a = args;
    g_autofree char *uri = resolve_fd_uri(call, a->uri, errp);

    if (!uri || !migration_start_incoming(state(call), uri, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static json_object *cmd_migrate_cancel(const QmpCall *call, const void *args,
                                       GError **errp)
{
    return migration_cancel(state(call), errp) ? qmp_return_empty() : NULL;
}

/* --- postcopy: start, pause, recover --------------------------------------- */

static json_object *cmd_start_postcopy(const QmpCall *call, const void *args,
                                       GError **errp)
{
    return migration_start_postcopy(state(call), errp) ? qmp_return_empty()
                                                       : NULL;
}

static json_object *cmd_migrate_pause(const QmpCall *call, const void *args,
                                      GError **errp)
{
    return migration_pause(state(call), errp) ? qmp_return_empty() : NULL;
}

QMP_OBJECT_TYPE(recover_args, "migrate-recover-arg", IncomingArgs,
    QMP_MEMBER(IncomingArgs, uri, "uri", qmp_type_str));

static json_object *cmd_migrate_recover(const QmpCall *call, const void *args,
                                        GError **errp)
{
    const IncomingArgs *a = args;

    return migration_recover(state(call), a->uri, errp) ? qmp_return_empty()
                                                         : NULL;
}

/* --- query-migrate ----------------------------------------------------------- */

static json_object *ram_info(const MigrationInfo *info)
{
    const MigrationStats *s = &info->stats;
    json_object *ram = json_object_new_object();

    tern_json_add_uint(ram, "transferred", s->transferred);
    tern_json_add_uint(ram, "remaining", s->remaining);
    tern_json_add_uint(ram, "total", s->total);
    tern_json_add_uint(ram, "duplicate", s->duplicate);
    tern_json_add_uint(ram, "skipped", 0);
    tern_json_add_uint(ram, "normal", s->normal);
    tern_json_add_uint(ram, "normal-bytes", s->normal * 4096);
    tern_json_add_uint(ram, "dirty-pages-rate", info->dirty_pages_rate);
    json_object_object_add(ram, "mbps", json_object_new_double(s->mbps));
    tern_json_add_uint(ram, "dirty-sync-count", s->dirty_sync_count);
    tern_json_add_uint(ram, "postcopy-requests", s->postcopy_requests);
    tern_json_add_uint(ram, "page-size", 4096);
    tern_json_add_uint(ram, "multifd-bytes", s->multifd_bytes);
    tern_json_add_uint(ram, "pages-per-second", info->pages_per_second);
    tern_json_add_uint(ram, "precopy-bytes", s->precopy_bytes);
    tern_json_add_uint(ram, "downtime-bytes", s->downtime_bytes);
    tern_json_add_uint(ram, "postcopy-bytes", s->postcopy_bytes);
    tern_json_add_uint(ram, "dirty-sync-missed-zero-copy",
                       s->zero_copy_copied);
    return ram;
}

/* The outgoing side's timings. */
static void source_times(const MigrationStats *s, json_object *o)
{
    tern_json_add_uint(o, "total-time", s->total_time_ms);
    if (s->status >= MIGRATION_STATUS_ACTIVE) {
        tern_json_add_uint(o, "setup-time", s->setup_time_ms);
    }
    if (s->status == MIGRATION_STATUS_COMPLETED) {
        tern_json_add_uint(o, "downtime", s->downtime_ms);
    } else if (s->status == MIGRATION_STATUS_ACTIVE ||
               s->status == MIGRATION_STATUS_DEVICE) {
        tern_json_add_uint(o, "expected-downtime", s->expected_downtime_ms);
    }
    if (s->cpu_throttle_percentage) {
        tern_json_add_uint(o, "cpu-throttle-percentage", s->cpu_throttle_percentage);
    }
}

/* The destination of a RAM postcopy: QEMU's blocktime members (with the
 * capability) and tern's own fault -> page placed latency. */
static void postcopy_info(const MigrationInfo *info, json_object *o)
{
    static const char *const names[] = { "p50-ns", "p90-ns", "p99-ns",
                                         "max-ns" };
    json_object *lat;

    if (info->has_blocktime) {
        json_object *a = json_object_new_array();

        tern_json_add_uint(o, "postcopy-blocktime", info->blocktime_ms);
        for (unsigned i = 0; i < info->nr_vcpus; i++) {
            json_object_array_add(a, json_object_new_int64(
                                         info->vcpu_blocktime_ms[i]));
        }
        json_object_object_add(o, "postcopy-vcpu-blocktime", a);
    }
    if (!info->has_fault_latency) {
        return;
    }
    lat = json_object_new_object();
    tern_json_add_uint(lat, "faults", info->faults);
    tern_json_add_uint(lat, "requests", info->page_requests);
    tern_json_add_uint(lat, "count", info->fault_latency_count);
    for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
        tern_json_add_uint(lat, names[i], info->fault_latency_ns[i]);
    }
    json_object_object_add(o, "x-postcopy-fault-latency", lat);
}

static json_object *cmd_query_migrate(const QmpCall *call, const void *args,
                                      GError **errp)
{
    MigrationInfo info;
    const MigrationStats *s = &info.stats;
    json_object *o = json_object_new_object();

    migration_get_info(state(call), &info);
    if (s->status == MIGRATION_STATUS_NONE) {
        return o;       /* QEMU answers {} before any migration */
    }
    tern_json_add_str(o, "status", migration_status_name(s->status));
    if (!info.incoming) {
        source_times(s, o);
    }
    if (info.has_ram) {
        json_object_object_add(o, "ram", ram_info(&info));
    }
    postcopy_info(&info, o);
    if (s->error_desc[0] && (s->status == MIGRATION_STATUS_FAILED ||
                             s->status == MIGRATION_STATUS_CANCELLED ||
                             s->status == MIGRATION_STATUS_POSTCOPY_PAUSED)) {
        tern_json_add_str(o, "error-desc", s->error_desc);
    }
    return o;
}

/* --- capabilities -------------------------------------------------------------- */

/* Filled from migration's own names when the commands are registered. */
static const char *capability_values[MIG_CAP__MAX + 1];
QMP_ENUM_TYPE(capability_type, "MigrationCapability", capability_values);

typedef struct CapabilityStatus {
    int capability;             /* MigrationCapability */
    bool state;
} CapabilityStatus;

QMP_OBJECT_TYPE(capability_status_type, "MigrationCapabilityStatus",
                CapabilityStatus,
    QMP_MEMBER(CapabilityStatus, capability, "capability", capability_type),
    QMP_MEMBER(CapabilityStatus, state, "state", qmp_type_bool));
QMP_ARRAY_TYPE(capability_status_list, capability_status_type);

typedef struct SetCapsArgs {
    QmpList capabilities;       /* of CapabilityStatus */
} SetCapsArgs;

QMP_OBJECT_TYPE(set_caps_args, "migrate-set-capabilities-arg", SetCapsArgs,
    QMP_MEMBER(SetCapsArgs, capabilities, "capabilities", capability_status_list));

static json_object *cmd_set_caps(const QmpCall *call, const void *args,
                                 GError **errp)
{
    const SetCapsArgs *a = args;
    size_t n = a->capabilities.len;
    g_autofree MigrationCapability *caps = g_new0(MigrationCapability, n + 1);
    g_autofree bool *on = g_new0(bool, n + 1);

    for (size_t i = 0; i < n; i++) {
        const CapabilityStatus *c =
            &QMP_LIST_AT(&a->capabilities, CapabilityStatus, i);

        caps[i] = c->capability;
        on[i] = c->state;
    }
    if (!migration_set_capabilities(state(call), n, caps, on, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static json_object *cmd_query_caps(const QmpCall *call, const void *args,
                                   GError **errp)
{
    json_object *a = json_object_new_array();

    /* Only what tern's migration can run: a management tool sets what it
     * finds listed (libvirt does, for pause-before-switchover and others). */
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        json_object *e;

        if (!migration_capability_implemented(i)) {
            continue;
        }
        e = json_object_new_object();
        tern_json_add_str(e, "capability", migration_capability_name(i));
        tern_json_add_bool(e, "state", migration_capability(state(call), i));
        json_object_array_add(a, e);
    }
    return a;
}

/* --- parameters --------------------------------------------------------------- */

typedef struct SetParamsArgs {
    bool has_max_bandwidth;
    uint64_t max_bandwidth;
    bool has_downtime_limit;
    uint64_t downtime_limit;
    bool has_throttle_trigger_threshold;
    uint8_t throttle_trigger_threshold;
    bool has_cpu_throttle_initial;
    uint8_t cpu_throttle_initial;
    bool has_cpu_throttle_increment;
    uint8_t cpu_throttle_increment;
    bool has_cpu_throttle_tailslow;
    bool cpu_throttle_tailslow;
    bool has_max_cpu_throttle;
    uint8_t max_cpu_throttle;
    bool has_max_postcopy_bandwidth;
    uint64_t max_postcopy_bandwidth;
    bool has_multifd_channels;
    uint8_t multifd_channels;
} SetParamsArgs;

#define PARAM(field, jname, type) \
    QMP_OPTIONAL(SetParamsArgs, field, jname, type)

QMP_OBJECT_TYPE(set_params_args, "MigrateSetParameters", SetParamsArgs,
    PARAM(throttle_trigger_threshold, "throttle-trigger-threshold", qmp_type_uint8),
    PARAM(cpu_throttle_initial, "cpu-throttle-initial", qmp_type_uint8),
    PARAM(cpu_throttle_increment, "cpu-throttle-increment", qmp_type_uint8),
    PARAM(cpu_throttle_tailslow, "cpu-throttle-tailslow", qmp_type_bool),
    PARAM(max_bandwidth, "max-bandwidth", qmp_type_size),
    PARAM(downtime_limit, "downtime-limit", qmp_type_uint64),
    PARAM(max_postcopy_bandwidth, "max-postcopy-bandwidth", qmp_type_size),
    PARAM(multifd_channels, "multifd-channels", qmp_type_uint8),
    PARAM(max_cpu_throttle, "max-cpu-throttle", qmp_type_uint8));

/* The given members over the current values; migration checks the whole. */
#define TAKE(dst, a, field) \
    do { if ((a)->has_##field) { (dst) = (a)->field; } } while (0)

static json_object *cmd_set_params(const QmpCall *call, const void *args,
                                   GError **errp)
{
    const SetParamsArgs *a = args;
    MigrationParams p = migration_get_params(state(call));

    TAKE(p.max_bandwidth, a, max_bandwidth);
    TAKE(p.downtime_limit_ms, a, downtime_limit);
    TAKE(p.throttle_trigger_threshold, a, throttle_trigger_threshold);
    TAKE(p.cpu_throttle_initial, a, cpu_throttle_initial);
    TAKE(p.cpu_throttle_increment, a, cpu_throttle_increment);
    TAKE(p.cpu_throttle_tailslow, a, cpu_throttle_tailslow);
    TAKE(p.max_cpu_throttle, a, max_cpu_throttle);
    TAKE(p.max_postcopy_bandwidth, a, max_postcopy_bandwidth);
    TAKE(p.multifd_channels, a, multifd_channels);
    if (!migration_set_params(state(call), &p, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static json_object *cmd_query_params(const QmpCall *call, const void *args,
                                     GError **errp)
{
    MigrationParams p = migration_get_params(state(call));
    json_object *o = json_object_new_object();

    tern_json_add_uint(o, "max-bandwidth", p.max_bandwidth);
    tern_json_add_uint(o, "downtime-limit", p.downtime_limit_ms);
    tern_json_add_uint(o, "throttle-trigger-threshold", p.throttle_trigger_threshold);
    tern_json_add_uint(o, "cpu-throttle-initial", p.cpu_throttle_initial);
    tern_json_add_uint(o, "cpu-throttle-increment", p.cpu_throttle_increment);
    tern_json_add_bool(o, "cpu-throttle-tailslow", p.cpu_throttle_tailslow);
    tern_json_add_uint(o, "max-postcopy-bandwidth", p.max_postcopy_bandwidth);
    tern_json_add_uint(o, "multifd-channels", p.multifd_channels);
    tern_json_add_uint(o, "max-cpu-throttle", p.max_cpu_throttle);
    return o;
}

/* --- test aids ------------------------------------------------------------------ */

static json_object *cmd_ram_sha256(const QmpCall *call, const void *args,
                                   GError **errp)
{
    g_autofree char *hex = migration_ram_sha256(state(call));
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "sha256", hex);
    return o;
}

typedef struct RamLoadArgs {
    char *filename;
    uint64_t addr;
} RamLoadArgs;

QMP_OBJECT_TYPE(ram_load_args, "x-ram-load-arg", RamLoadArgs,
    QMP_MEMBER(RamLoadArgs, filename, "filename", qmp_type_str),
    QMP_MEMBER(RamLoadArgs, addr, "addr", qmp_type_uint64));

static json_object *cmd_ram_load(const QmpCall *call, const void *args,
                                 GError **errp)
{
    const RamLoadArgs *a = args;

    if (!migration_ram_load_file(state(call), a->filename, a->addr, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

/* --- events --------------------------------------------------------------------- */

static void on_status(void *opaque, MigrationStatus s)
{
    QmpMigration *qm = opaque;
    json_object *data = json_object_new_object();

    tern_json_add_str(data, "status", migration_status_name(s));
    monitor_emit_event(qm->mon, "MIGRATION", data);
}

static void on_pass(void *opaque, uint64_t pass)
{
    QmpMigration *qm = opaque;
    json_object *data = json_object_new_object();

    tern_json_add_uint(data, "pass", pass);
    monitor_emit_event(qm->mon, "MIGRATION_PASS", data);
}

static const MigrationEventOps event_ops = {
    .status = on_status,
    .pass = on_pass,
};

/* --- return and event shapes ----------------------------------------------------- */

static const char *status_values[MIGRATION_STATUS__MAX + 1];
QMP_ENUM_TYPE(status_type, "MigrationStatus", status_values);

QMP_SHAPE(ram_stats_type, "MigrationStats",
    QMP_OUT("transferred", qmp_type_int), QMP_OUT("remaining", qmp_type_int),
    QMP_OUT("total", qmp_type_int), QMP_OUT("duplicate", qmp_type_int),
    QMP_OUT("skipped", qmp_type_int), QMP_OUT("normal", qmp_type_int),
    QMP_OUT("normal-bytes", qmp_type_int), QMP_OUT("dirty-pages-rate", qmp_type_int),
    QMP_OUT("mbps", qmp_type_number), QMP_OUT("dirty-sync-count", qmp_type_int),
    QMP_OUT("postcopy-requests", qmp_type_int), QMP_OUT("page-size", qmp_type_int),
    QMP_OUT("multifd-bytes", qmp_type_int), QMP_OUT("pages-per-second", qmp_type_int),
    QMP_OUT("precopy-bytes", qmp_type_int),
    QMP_OUT("downtime-bytes", qmp_type_int),
    QMP_OUT("postcopy-bytes", qmp_type_int),
    QMP_OUT("dirty-sync-missed-zero-copy", qmp_type_int));
QMP_ARRAY_TYPE(uint32_list, qmp_type_uint32);
QMP_SHAPE(fault_latency_type, "x-postcopy-fault-latency",
    QMP_OUT("faults", qmp_type_int), QMP_OUT("requests", qmp_type_int),
    QMP_OUT("count", qmp_type_int), QMP_OUT("p50-ns", qmp_type_int),
    QMP_OUT("p90-ns", qmp_type_int), QMP_OUT("p99-ns", qmp_type_int),
    QMP_OUT("max-ns", qmp_type_int));
QMP_SHAPE(migration_info_type, "MigrationInfo",
    QMP_OUT_OPT("status", status_type), QMP_OUT_OPT("ram", ram_stats_type),
    QMP_OUT_OPT("total-time", qmp_type_int),
    QMP_OUT_OPT("expected-downtime", qmp_type_int),
    QMP_OUT_OPT("downtime", qmp_type_int), QMP_OUT_OPT("setup-time", qmp_type_int),
    QMP_OUT_OPT("cpu-throttle-percentage", qmp_type_int),
    QMP_OUT_OPT("error-desc", qmp_type_str),
    QMP_OUT_OPT("postcopy-blocktime", qmp_type_uint32),
    QMP_OUT_OPT("postcopy-vcpu-blocktime", uint32_list),
    QMP_OUT_OPT("x-postcopy-fault-latency", fault_latency_type));
QMP_SHAPE(parameters_type, "MigrationParameters",
    QMP_OUT_OPT("throttle-trigger-threshold", qmp_type_uint8),
    QMP_OUT_OPT("cpu-throttle-initial", qmp_type_uint8),
    QMP_OUT_OPT("cpu-throttle-increment", qmp_type_uint8),
    QMP_OUT_OPT("cpu-throttle-tailslow", qmp_type_bool),
    QMP_OUT_OPT("max-bandwidth", qmp_type_size),
    QMP_OUT_OPT("downtime-limit", qmp_type_uint64),
    QMP_OUT_OPT("max-postcopy-bandwidth", qmp_type_size),
    QMP_OUT_OPT("multifd-channels", qmp_type_uint8),
    QMP_OUT_OPT("max-cpu-throttle", qmp_type_uint8));
QMP_SHAPE(sha256_type, "x-ram-sha256-ret", QMP_OUT("sha256", qmp_type_str));
QMP_SHAPE(migration_data, "MIGRATION-arg", QMP_OUT("status", status_type));
QMP_SHAPE(pass_data, "MIGRATION_PASS-arg", QMP_OUT("pass", qmp_type_int));

static const QmpCommandDef migration_commands[] = {
    QMP_COMMAND("migrate", cmd_migrate, &migrate_args, NULL),
    QMP_COMMAND("migrate-incoming", cmd_migrate_incoming, &incoming_args, NULL),
    QMP_COMMAND("migrate_cancel", cmd_migrate_cancel, NULL, NULL),
    QMP_COMMAND("migrate-start-postcopy", cmd_start_postcopy, NULL, NULL),
    QMP_COMMAND("migrate-pause", cmd_migrate_pause, NULL, NULL),
    QMP_COMMAND("migrate-recover", cmd_migrate_recover, &recover_args, NULL),
    QMP_COMMAND("query-migrate", cmd_query_migrate, NULL, &migration_info_type),
    QMP_COMMAND("migrate-set-capabilities", cmd_set_caps, &set_caps_args, NULL),
    QMP_COMMAND("query-migrate-capabilities", cmd_query_caps, NULL,
                &capability_status_list),
    QMP_COMMAND("migrate-set-parameters", cmd_set_params, &set_params_args, NULL),
    QMP_COMMAND("query-migrate-parameters", cmd_query_params, NULL, &parameters_type),
    QMP_COMMAND("x-ram-sha256", cmd_ram_sha256, NULL, &sha256_type),
    QMP_COMMAND("x-ram-load", cmd_ram_load, &ram_load_args, NULL),
};

static const QmpEventDef migration_events[] = {
    { .name = "MIGRATION", .data = &migration_data },
    { .name = "MIGRATION_PASS", .data = &pass_data },
};

static void fill_enum_values(void)
{
    for (int i = 0; i < MIG_CAP__MAX; i++) {
        capability_values[i] = migration_capability_name(i);
    }
    for (int i = 0; i < MIGRATION_STATUS__MAX; i++) {
        status_values[i] = migration_status_name(i);
    }
}

void qmp_migration_attach(Monitor *mon, MigrationState *ms)
{
    QmpMigration *qm = g_new0(QmpMigration, 1);

    qm->mon = mon;
    qm->ms = ms;
    fill_enum_values();
    qmp_register_commands(monitor_registry(mon), migration_commands,
                          ARRAY_SIZE(migration_commands), qm);
    qmp_register_events(monitor_registry(mon), migration_events,
                        ARRAY_SIZE(migration_events));
    /* The registry has no destructor hook: the MigrationState frees qm. */
    migration_set_event_ops(ms, &event_ops, qm, g_free);
}
