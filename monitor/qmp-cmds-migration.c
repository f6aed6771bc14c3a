/*
 * The migration QMP commands and events (monitor/qmp-migration.h), with
 * QEMU 7.2's names, argument schemas and reply members. The work is done by
 * migration/migration.c; this file only translates JSON.
 */
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

static JsonNode *object_node(JsonObject *o)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(n, o);
    return n;
}

/* --- migrate, migrate-incoming, migrate_cancel ------------------------------- */

static const QmpArgSpec migrate_args[] = {
    { "uri", QMP_ARG_STR, false },
    { "blk", QMP_ARG_BOOL, true },
    { "inc", QMP_ARG_BOOL, true },
    { "detach", QMP_ARG_BOOL, true },
    { "resume", QMP_ARG_BOOL, true },
    { NULL }
};

static JsonNode *cmd_migrate(const QmpCall *call, JsonObject *args,
                             GError **errp)
{
    if (qmp_arg_bool(args, "blk", false) || qmp_arg_bool(args, "inc", false)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "block migration is not supported by tern (use a shared "
                    "image or drive-mirror)");
        return NULL;
    }
    if (qmp_arg_bool(args, "resume", false)) {
        return migration_resume_outgoing(state(call),
                                         qmp_arg_str(args, "uri", ""), errp)
               ? qmp_return_empty() : NULL;
    }
    if (!migration_start_outgoing(state(call), qmp_arg_str(args, "uri", ""),
                                  errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static const QmpArgSpec incoming_args[] = {
    { "uri", QMP_ARG_STR, false },
    { NULL }
};

static JsonNode *cmd_migrate_incoming(const QmpCall *call, JsonObject *args,
                                      GError **errp)
{
    if (!migration_start_incoming(state(call), qmp_arg_str(args, "uri", ""),
                                  errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static JsonNode *cmd_migrate_cancel(const QmpCall *call, JsonObject *args,
                                    GError **errp)
{
    return migration_cancel(state(call), errp) ? qmp_return_empty() : NULL;
}

/* --- postcopy: start, pause, recover ------------------------------------------ */

static JsonNode *cmd_start_postcopy(const QmpCall *call, JsonObject *args,
                                    GError **errp)
{
    return migration_start_postcopy(state(call), errp) ? qmp_return_empty()
                                                       : NULL;
}

static JsonNode *cmd_migrate_pause(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return migration_pause(state(call), errp) ? qmp_return_empty() : NULL;
}

static JsonNode *cmd_migrate_recover(const QmpCall *call, JsonObject *args,
                                     GError **errp)
{
    return migration_recover(state(call), qmp_arg_str(args, "uri", ""), errp)
           ? qmp_return_empty() : NULL;
}

/* --- query-migrate ----------------------------------------------------------- */

static JsonObject *ram_info(const MigrationInfo *info)
{
    const MigrationStats *s = &info->stats;
    JsonObject *ram = json_object_new();

    json_object_set_int_member(ram, "transferred", s->transferred);
    json_object_set_int_member(ram, "remaining", s->remaining);
    json_object_set_int_member(ram, "total", s->total);
    json_object_set_int_member(ram, "duplicate", s->duplicate);
    json_object_set_int_member(ram, "skipped", 0);
    json_object_set_int_member(ram, "normal", s->normal);
    json_object_set_int_member(ram, "normal-bytes", s->normal * 4096);
    json_object_set_int_member(ram, "dirty-pages-rate", info->dirty_pages_rate);
    json_object_set_double_member(ram, "mbps", s->mbps);
    json_object_set_int_member(ram, "dirty-sync-count", s->dirty_sync_count);
    json_object_set_int_member(ram, "postcopy-requests", s->postcopy_requests);
    json_object_set_int_member(ram, "page-size", 4096);
    json_object_set_int_member(ram, "multifd-bytes", 0);
    json_object_set_int_member(ram, "pages-per-second", info->pages_per_second);
    return ram;
}

/* The destination of a RAM postcopy: QEMU's blocktime members (with the
 * capability) and tern's own fault -> page placed latency. */
static void postcopy_info(const MigrationInfo *info, JsonObject *o)
{
    static const char *const names[] = { "p50-ns", "p90-ns", "p99-ns",
                                         "max-ns" };
    JsonObject *lat;

    if (info->has_blocktime) {
        JsonArray *a = json_array_new();

        json_object_set_int_member(o, "postcopy-blocktime",
                                   info->blocktime_ms);
        for (unsigned i = 0; i < info->nr_vcpus; i++) {
            json_array_add_int_element(a, info->vcpu_blocktime_ms[i]);
        }
        json_object_set_array_member(o, "postcopy-vcpu-blocktime", a);
    }
    if (!info->has_fault_latency) {
        return;
    }
    lat = json_object_new();
    json_object_set_int_member(lat, "faults", info->faults);
    json_object_set_int_member(lat, "requests", info->page_requests);
    json_object_set_int_member(lat, "count", info->fault_latency_count);
    for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
        json_object_set_int_member(lat, names[i], info->fault_latency_ns[i]);
    }
    json_object_set_object_member(o, "x-postcopy-fault-latency", lat);
}

static JsonNode *cmd_query_migrate(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    MigrationInfo info;
    const MigrationStats *s = &info.stats;
    JsonObject *o = json_object_new();
    bool done;

    migration_get_info(state(call), &info);
    if (s->status == MIGRATION_STATUS_NONE) {
        return object_node(o);      /* QEMU answers {} before any migration */
    }
    done = s->status == MIGRATION_STATUS_COMPLETED;
    json_object_set_string_member(o, "status", migration_status_name(s->status));
    if (!info.incoming) {
        json_object_set_int_member(o, "total-time", s->total_time_ms);
        if (s->status >= MIGRATION_STATUS_ACTIVE) {
            json_object_set_int_member(o, "setup-time", s->setup_time_ms);
        }
        if (done) {
            json_object_set_int_member(o, "downtime", s->downtime_ms);
        } else if (s->status == MIGRATION_STATUS_ACTIVE ||
                   s->status == MIGRATION_STATUS_DEVICE) {
            json_object_set_int_member(o, "expected-downtime",
                                       s->expected_downtime_ms);
        }
        if (s->cpu_throttle_percentage) {
            json_object_set_int_member(o, "cpu-throttle-percentage",
                                       s->cpu_throttle_percentage);
        }
    }
    if (info.has_ram) {
        json_object_set_object_member(o, "ram", ram_info(&info));
    }
    postcopy_info(&info, o);
    if (s->error_desc[0] && (s->status == MIGRATION_STATUS_FAILED ||
                             s->status == MIGRATION_STATUS_CANCELLED ||
                             s->status == MIGRATION_STATUS_POSTCOPY_PAUSED)) {
        json_object_set_string_member(o, "error-desc", s->error_desc);
    }
    return object_node(o);
}

/* --- capabilities -------------------------------------------------------------- */

static const QmpArgSpec set_caps_args[] = {
    { "capabilities", QMP_ARG_ARRAY, false },
    { NULL }
};

static const QmpArgSpec cap_entry_args[] = {
    { "capability", QMP_ARG_STR, false },
    { "state", QMP_ARG_BOOL, false },
    { NULL }
};

static JsonNode *cmd_set_caps(const QmpCall *call, JsonObject *args,
                              GError **errp)
{
    JsonArray *caps = json_object_get_array_member(args, "capabilities");
    guint n = json_array_get_length(caps);
    g_autofree int *which = g_new0(int, n + 1);
    g_autofree MigrationCapability *cap = g_new0(MigrationCapability, n + 1);
    g_autofree bool *on = g_new0(bool, n + 1);

    /* All entries are checked before any is applied, as QEMU does. */
    for (guint i = 0; i < n; i++) {
        JsonNode *e = json_array_get_element(caps, i);
        g_autofree char *path = g_strdup_printf("capabilities[%u]", i);
        const char *name;

        if (!JSON_NODE_HOLDS_OBJECT(e)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Invalid parameter type for '%s', expected: object",
                        path);
            return NULL;
        }
        if (!qmp_check_args(json_node_get_object(e), cap_entry_args, path,
                            errp)) {
            return NULL;
        }
        name = qmp_arg_str(json_node_get_object(e), "capability", "");
        which[i] = migration_capability_lookup(name);
        if (which[i] < 0) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter '%s.capability' does not accept value '%s'",
                        path, name);
            return NULL;
        }
    }
    for (guint i = 0; i < n; i++) {
        cap[i] = which[i];
        on[i] = qmp_arg_bool(json_array_get_object_element(caps, i), "state",
                             false);
    }
    if (!migration_set_capabilities(state(call), n, cap, on, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static JsonNode *cmd_query_caps(const QmpCall *call, JsonObject *args,
                                GError **errp)
{
    JsonArray *a = json_array_new();
    JsonNode *n = json_node_new(JSON_NODE_ARRAY);

    for (int i = 0; i < MIG_CAP__MAX; i++) {
        JsonObject *e = json_object_new();

        json_object_set_string_member(e, "capability",
                                      migration_capability_name(i));
        json_object_set_boolean_member(e, "state",
                                       migration_capability(state(call), i));
        json_array_add_object_element(a, e);
    }
    json_node_take_array(n, a);
    return n;
}

/* --- parameters --------------------------------------------------------------- */

static const QmpArgSpec set_params_args[] = {
    { "max-bandwidth", QMP_ARG_INT, true },
    { "downtime-limit", QMP_ARG_INT, true },
    { "throttle-trigger-threshold", QMP_ARG_INT, true },
    { "cpu-throttle-initial", QMP_ARG_INT, true },
    { "cpu-throttle-increment", QMP_ARG_INT, true },
    { "cpu-throttle-tailslow", QMP_ARG_BOOL, true },
    { "max-cpu-throttle", QMP_ARG_INT, true },
    { NULL }
};

/* An auto-converge percentage in [1, max], with QEMU's message otherwise
 * (QEMU names the parameter with underscores there). */
static bool throttle_param(JsonObject *args, const char *name, unsigned max,
                           unsigned *val, GError **errp)
{
    int64_t v = qmp_arg_int(args, name, *val);

    if (v < 1 || v > max) {
        g_autofree char *qname = g_strdelimit(g_strdup(name), "-", '_');

        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter '%s' expects an integer in the range of 1 to "
                    "%u", qname, max);
        return false;
    }
    *val = v;
    return true;
}

/* QEMU's limits: downtime-limit up to 2000 s, bandwidth up to SIZE_MAX. */
#define MAX_DOWNTIME_MS 2000000

static JsonNode *cmd_set_params(const QmpCall *call, JsonObject *args,
                                GError **errp)
{
    MigrationParams p = migration_get_params(state(call));
    int64_t bw = qmp_arg_int(args, "max-bandwidth", (int64_t)p.max_bandwidth);
    int64_t dt = qmp_arg_int(args, "downtime-limit",
                             (int64_t)p.downtime_limit_ms);

    if (bw < 0) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'max_bandwidth' expects an integer in the range "
                    "of 0 to %" PRIu64 " bytes/second", (uint64_t)INT64_MAX);
        return NULL;
    }
    if (dt < 0 || dt > MAX_DOWNTIME_MS) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'downtime_limit' expects an integer in the "
                    "range of 0 to %d milliseconds", MAX_DOWNTIME_MS);
        return NULL;
    }
    if (!throttle_param(args, "throttle-trigger-threshold", 100,
                        &p.throttle_trigger_threshold, errp) ||
        !throttle_param(args, "cpu-throttle-initial", 99,
                        &p.cpu_throttle_initial, errp) ||
        !throttle_param(args, "cpu-throttle-increment", 99,
                        &p.cpu_throttle_increment, errp) ||
        !throttle_param(args, "max-cpu-throttle", 99,
                        &p.max_cpu_throttle, errp)) {
        return NULL;
    }
    p.cpu_throttle_tailslow = qmp_arg_bool(args, "cpu-throttle-tailslow",
                                           p.cpu_throttle_tailslow);
    p.max_bandwidth = bw;
    p.downtime_limit_ms = dt;
    if (!migration_set_params(state(call), &p, errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

static JsonNode *cmd_query_params(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    MigrationParams p = migration_get_params(state(call));
    JsonObject *o = json_object_new();

    json_object_set_int_member(o, "max-bandwidth", p.max_bandwidth);
    json_object_set_int_member(o, "downtime-limit", p.downtime_limit_ms);
    json_object_set_int_member(o, "throttle-trigger-threshold",
                               p.throttle_trigger_threshold);
    json_object_set_int_member(o, "cpu-throttle-initial",
                               p.cpu_throttle_initial);
    json_object_set_int_member(o, "cpu-throttle-increment",
                               p.cpu_throttle_increment);
    json_object_set_boolean_member(o, "cpu-throttle-tailslow",
                                   p.cpu_throttle_tailslow);
    json_object_set_int_member(o, "max-cpu-throttle", p.max_cpu_throttle);
    return object_node(o);
}

/* --- test aid ------------------------------------------------------------------ */

static JsonNode *cmd_ram_sha256(const QmpCall *call, JsonObject *args,
                                GError **errp)
{
    g_autofree char *hex = migration_ram_sha256(state(call));
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "sha256", hex);
    return object_node(o);
}

static const QmpArgSpec ram_load_args[] = {
    { "filename", QMP_ARG_STR, false },
    { "addr", QMP_ARG_UINT64, false },
    { NULL }
};

static JsonNode *cmd_ram_load(const QmpCall *call, JsonObject *args,
                              GError **errp)
{
    if (!migration_ram_load_file(state(call), qmp_arg_str(args, "filename", ""),
                                 (uint64_t)qmp_arg_int(args, "addr", 0), errp)) {
        return NULL;
    }
    return qmp_return_empty();
}

/* --- events --------------------------------------------------------------------- */

static void on_status(void *opaque, MigrationStatus s)
{
    QmpMigration *qm = opaque;
    JsonObject *data = json_object_new();

    json_object_set_string_member(data, "status", migration_status_name(s));
    monitor_emit_event(qm->mon, "MIGRATION", data);
}

static void on_pass(void *opaque, uint64_t pass)
{
    QmpMigration *qm = opaque;
    JsonObject *data = json_object_new();

    json_object_set_int_member(data, "pass", pass);
    monitor_emit_event(qm->mon, "MIGRATION_PASS", data);
}

static const MigrationEventOps event_ops = {
    .status = on_status,
    .pass = on_pass,
};

static const QmpCommandDef migration_commands[] = {
    { "migrate", cmd_migrate, migrate_args, 0 },
    { "migrate-incoming", cmd_migrate_incoming, incoming_args, 0 },
    { "migrate_cancel", cmd_migrate_cancel, NULL, 0 },
    { "migrate-start-postcopy", cmd_start_postcopy, NULL, 0 },
    { "migrate-pause", cmd_migrate_pause, NULL, 0 },
    { "migrate-recover", cmd_migrate_recover, incoming_args, 0 },
    { "query-migrate", cmd_query_migrate, NULL, 0 },
    { "migrate-set-capabilities", cmd_set_caps, set_caps_args, 0 },
    { "query-migrate-capabilities", cmd_query_caps, NULL, 0 },
    { "migrate-set-parameters", cmd_set_params, set_params_args, 0 },
    { "query-migrate-parameters", cmd_query_params, NULL, 0 },
    { "x-ram-sha256", cmd_ram_sha256, NULL, 0 },
    { "x-ram-load", cmd_ram_load, ram_load_args, 0 },
};

void qmp_migration_attach(Monitor *mon, MigrationState *ms)
{
    QmpMigration *qm = g_new0(QmpMigration, 1);

    qm->mon = mon;
    qm->ms = ms;
    qmp_register_commands(monitor_registry(mon), migration_commands,
                          ARRAY_SIZE(migration_commands), qm);
    /* The registry has no destructor hook: the MigrationState frees qm. */
    migration_set_event_ops(ms, &event_ops, qm, g_free);
}
