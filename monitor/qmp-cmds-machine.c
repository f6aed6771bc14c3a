/*
 * Machine-level QMP commands and run-state events, as QEMU 7.2 shapes them.
 * stop/cont go through vm_stop()/vm_start(); reset, powerdown and quit are
 * requests the main loop acts on. STOP and RESUME come from the run-state
 * listener, SHUTDOWN and RESET from the run-state event hooks, so a guest's
 * own reset or power-off produces the same events as the QMP commands.
 */
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-machine.h"
#include "softmmu/runstate.h"

static JsonNode *node_take_object(JsonObject *o)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(n, o);
    return n;
}

static JsonNode *cmd_query_status(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    JsonObject *o = json_object_new();
    RunState s = runstate_get();

    json_object_set_string_member(o, "status", runstate_name(s));
    json_object_set_boolean_member(o, "singlestep", false);
    json_object_set_boolean_member(o, "running", runstate_is_running(s));
    return node_take_object(o);
}

static JsonNode *cmd_query_name(const QmpCall *call, JsonObject *args, GError **errp)
{
    QmpMachine *m = call->opaque;
    const char *name = m->ops->name ? m->ops->name(m->opaque) : NULL;
    JsonObject *o = json_object_new();

    if (name) {
        json_object_set_string_member(o, "name", name);
    }
    return node_take_object(o);
}

static JsonNode *cmd_query_kvm(const QmpCall *call, JsonObject *args, GError **errp)
{
    JsonObject *o = json_object_new();

    /* tern runs only on KVM. */
    json_object_set_boolean_member(o, "enabled", true);
    json_object_set_boolean_member(o, "present", true);
    return node_take_object(o);
}

static JsonObject *cpu_info(QmpMachine *m, unsigned i)
{
    JsonObject *o = json_object_new();
    JsonObject *props = json_object_new();
    g_autofree char *path = g_strdup_printf("/machine/unattached/device[%u]", i);

    json_object_set_int_member(o, "thread-id",
                               m->ops->cpu_thread_id ? m->ops->cpu_thread_id(m->opaque, i)
                                                     : 0);
    json_object_set_int_member(props, "core-id", 0);
    json_object_set_int_member(props, "thread-id", 0);
    json_object_set_int_member(props, "socket-id", i);
    json_object_set_object_member(o, "props", props);
    json_object_set_string_member(o, "qom-path", path);
    json_object_set_int_member(o, "cpu-index", i);
    json_object_set_string_member(o, "target", "x86_64");
    return o;
}

static JsonNode *cmd_query_cpus_fast(const QmpCall *call, JsonObject *args,
                                     GError **errp)
{
    QmpMachine *m = call->opaque;
    unsigned n = m->ops->cpu_count ? m->ops->cpu_count(m->opaque) : 0;
    JsonArray *list = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    for (unsigned i = 0; i < n; i++) {
        json_array_add_object_element(list, cpu_info(m, i));
    }
    json_node_take_array(node, list);
    return node;
}

static JsonNode *cmd_stop(const QmpCall *call, JsonObject *args, GError **errp)
{
    if (runstate_is_running(runstate_get())) {
        vm_stop(RUN_STATE_PAUSED);
    }
    return qmp_return_empty();
}

/* QEMU refuses to resume these until the guest is reset. */
static bool needs_reset(RunState s)
{
    return s == RUN_STATE_INTERNAL_ERROR || s == RUN_STATE_SHUTDOWN ||
           s == RUN_STATE_GUEST_PANICKED;
}

static JsonNode *cmd_cont(const QmpCall *call, JsonObject *args, GError **errp)
{
    QmpMachine *m = call->opaque;
    RunState s = runstate_get();

    if (needs_reset(s)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Resetting the Virtual Machine is required");
        return NULL;
    }
    if (s == RUN_STATE_INMIGRATE) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Migration is not finished yet; the guest starts when it is");
        return NULL;
    }
    /* A postmigrate source, or a destination whose activation failed,
     * holds its drives inactive: the guest would get I/O errors. */
    if (m->ops->activate_disks && !m->ops->activate_disks(m->opaque, errp)) {
        return NULL;
    }
    if (!runstate_is_running(s)) {
        vm_start();
    }
    return qmp_return_empty();
}

static JsonNode *cmd_system_reset(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    vm_request_reset(SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET);
    return qmp_return_empty();
}

static JsonNode *cmd_system_powerdown(const QmpCall *call, JsonObject *args,
                                      GError **errp)
{
    QmpMachine *m = call->opaque;

    monitor_emit_event(m->monitor, "POWERDOWN", NULL);
    if (m->ops->powerdown) {
        m->ops->powerdown(m->opaque);
    }
    return qmp_return_empty();
}

static JsonNode *cmd_quit(const QmpCall *call, JsonObject *args, GError **errp)
{
    vm_request_shutdown(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    return qmp_return_empty();
}

/* --- events ------------------------------------------------------------------- */

static void on_runstate(void *opaque, bool running, RunState state)
{
    QmpMachine *m = opaque;

    monitor_emit_event(m->monitor, running ? "RESUME" : "STOP", NULL);
}

static JsonObject *cause_data(ShutdownCause cause)
{
    JsonObject *data = json_object_new();

    json_object_set_boolean_member(data, "guest",
                                   cause == SHUTDOWN_CAUSE_GUEST_SHUTDOWN ||
                                   cause == SHUTDOWN_CAUSE_GUEST_RESET ||
                                   cause == SHUTDOWN_CAUSE_GUEST_PANIC);
    json_object_set_string_member(data, "reason", shutdown_cause_name(cause));
    return data;
}

static void on_shutdown(void *opaque, ShutdownCause cause)
{
    QmpMachine *m = opaque;

    monitor_emit_event(m->monitor, "SHUTDOWN", cause_data(cause));
}

static void on_reset(void *opaque, ShutdownCause cause)
{
    QmpMachine *m = opaque;

    monitor_emit_event(m->monitor, "RESET", cause_data(cause));
}

static const RunStateEventOps event_ops = {
    .shutdown = on_shutdown,
    .reset = on_reset,
};

static const QmpCommandDef machine_commands[] = {
    { "query-status", cmd_query_status, NULL, 0 },
    { "query-name", cmd_query_name, NULL, 0 },
    { "query-kvm", cmd_query_kvm, NULL, 0 },
    { "query-cpus-fast", cmd_query_cpus_fast, NULL, 0 },
    { "stop", cmd_stop, NULL, 0 },
    { "cont", cmd_cont, NULL, 0 },
    { "system_reset", cmd_system_reset, NULL, 0 },
    { "system_powerdown", cmd_system_powerdown, NULL, 0 },
    { "quit", cmd_quit, NULL, 0 },
};

void qmp_machine_attach(QmpMachine *m, Monitor *mon)
{
    m->monitor = mon;
    qmp_register_commands(monitor_registry(mon), machine_commands,
                          ARRAY_SIZE(machine_commands), m);
    runstate_add_listener(on_runstate, m);
    runstate_set_event_ops(&event_ops, m);
}

void qmp_machine_detach(QmpMachine *m)
{
    runstate_remove_listener(on_runstate, m);
    runstate_set_event_ops(NULL, NULL);
}
