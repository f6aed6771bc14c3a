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

static json_object *cmd_query_status(const QmpCall *call, const void *args,
                                  GError **errp)
{
    json_object *o = json_object_new_object();
    RunState s = runstate_get();

    tern_json_add_str(o, "status", runstate_name(s));
    tern_json_add_bool(o, "singlestep", false);
    tern_json_add_bool(o, "running", runstate_is_running(s));
    return o;
}

static json_object *cmd_query_name(const QmpCall *call, const void *args, GError **errp)
{
    QmpMachine *m = call->opaque;
    const char *name = m->ops->name ? m->ops->name(m->opaque) : NULL;
    json_object *o = json_object_new_object();

    if (name) {
        tern_json_add_str(o, "name", name);
    }
    return o;
}

static json_object *cmd_query_kvm(const QmpCall *call, const void *args, GError **errp)
{
    json_object *o = json_object_new_object();

    /* tern runs only on KVM. */
    tern_json_add_bool(o, "enabled", true);
    tern_json_add_bool(o, "present", true);
    return o;
}

static json_object *cmd_query_target(const QmpCall *call, const void *args,
                                     GError **errp)
{
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "arch", "x86_64");
    return o;
}

static json_object *cpu_info(QmpMachine *m, unsigned i)
{
    json_object *o = json_object_new_object();
    json_object *props = json_object_new_object();
    g_autofree char *path = g_strdup_printf("/machine/unattached/device[%u]", i);
    int64_t tid = m->ops->cpu_thread_id ? m->ops->cpu_thread_id(m->opaque, i) : 0;
    unsigned cores = m->ops->cores_per_socket ? m->ops->cores_per_socket(m->opaque) : 1;

    /* vCPU i is core i % cores of socket i / cores, as -smp laid them out. */
    tern_json_add_int(o, "thread-id", tid);
    tern_json_add_int(props, "core-id", i % cores);
    tern_json_add_int(props, "thread-id", 0);
    tern_json_add_int(props, "socket-id", i / cores);
    json_object_object_add(o, "props", props);
    tern_json_add_str(o, "qom-path", path);
    tern_json_add_int(o, "cpu-index", i);
    tern_json_add_str(o, "target", "x86_64");
    return o;
}

static json_object *cmd_query_cpus_fast(const QmpCall *call, const void *args,
                                     GError **errp)
{
    QmpMachine *m = call->opaque;
    unsigned n = m->ops->cpu_count ? m->ops->cpu_count(m->opaque) : 0;
    json_object *list = json_object_new_array();

    for (unsigned i = 0; i < n; i++) {
        json_object_array_add(list, cpu_info(m, i));
    }
    return list;
}

static json_object *cmd_stop(const QmpCall *call, const void *args, GError **errp)
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

static json_object *cmd_cont(const QmpCall *call, const void *args, GError **errp)
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

static json_object *cmd_system_reset(const QmpCall *call, const void *args,
                                  GError **errp)
{
    vm_request_reset(SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET);
    return qmp_return_empty();
}

static json_object *cmd_system_powerdown(const QmpCall *call, const void *args,
                                      GError **errp)
{
    QmpMachine *m = call->opaque;

    monitor_emit_event(m->monitor, "POWERDOWN", NULL);
    if (m->ops->powerdown) {
        m->ops->powerdown(m->opaque);
    }
    return qmp_return_empty();
}

static void emit_shutdown(QmpMachine *m, ShutdownCause cause);

static json_object *cmd_quit(const QmpCall *call, const void *args, GError **errp)
{
    QmpMachine *m = call->opaque;

    /* QEMU's client reads SHUTDOWN before quit's reply: send it now, and
     * not again when the main loop acts on the request. */
    emit_shutdown(m, SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    m->shutdown_sent = true;
    vm_request_shutdown(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    return qmp_return_empty();
}

/* --- events ------------------------------------------------------------------- */

static void on_runstate(void *opaque, bool running, RunState state)
{
    QmpMachine *m = opaque;

    monitor_emit_event(m->monitor, running ? "RESUME" : "STOP", NULL);
}

static json_object *cause_data(ShutdownCause cause)
{
    json_object *data = json_object_new_object();
    bool guest = cause == SHUTDOWN_CAUSE_GUEST_SHUTDOWN ||
                 cause == SHUTDOWN_CAUSE_GUEST_RESET ||
                 cause == SHUTDOWN_CAUSE_GUEST_PANIC;

    tern_json_add_bool(data, "guest", guest);
    tern_json_add_str(data, "reason", shutdown_cause_name(cause));
    return data;
}

static void emit_shutdown(QmpMachine *m, ShutdownCause cause)
{
    monitor_emit_event(m->monitor, "SHUTDOWN", cause_data(cause));
}

static void on_shutdown(void *opaque, ShutdownCause cause)
{
    QmpMachine *m = opaque;

    if (m->shutdown_sent && cause == SHUTDOWN_CAUSE_HOST_QMP_QUIT) {
        return;
    }
    emit_shutdown(m, cause);
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

/* --- types ------------------------------------------------------------------- */

/* Filled from the owners' name tables when the commands are registered. */
static const char *runstate_values[RUN_STATE__MAX + 1];
static const char *shutdown_cause_values[SHUTDOWN_CAUSE__MAX + 1];
QMP_ENUM_TYPE(runstate_type, "RunState", runstate_values);
QMP_ENUM_TYPE(shutdown_cause_type, "ShutdownCause", shutdown_cause_values);
static const char *const target_values[] = { "x86_64", NULL };
QMP_ENUM_TYPE(target_type, "SysEmuTarget", target_values);

QMP_SHAPE(target_info, "TargetInfo", QMP_OUT("arch", target_type));
QMP_SHAPE(status_info, "StatusInfo",
    QMP_OUT("running", qmp_type_bool), QMP_OUT("singlestep", qmp_type_bool),
    QMP_OUT("status", runstate_type));
QMP_SHAPE(name_info, "NameInfo", QMP_OUT_OPT("name", qmp_type_str));
QMP_SHAPE(kvm_info, "KvmInfo",
    QMP_OUT("enabled", qmp_type_bool), QMP_OUT("present", qmp_type_bool));
QMP_SHAPE(cpu_props, "CpuInstanceProperties",
    QMP_OUT_OPT("socket-id", qmp_type_int), QMP_OUT_OPT("core-id", qmp_type_int),
    QMP_OUT_OPT("thread-id", qmp_type_int));
/* QEMU's is a union on 'target' with a variant for s390x only. */
static const QmpMember cpu_info_fast_members[] = {
    QMP_OUT("cpu-index", qmp_type_int), QMP_OUT("qom-path", qmp_type_str),
    QMP_OUT("thread-id", qmp_type_int), QMP_OUT_OPT("props", cpu_props),
    QMP_OUT("target", target_type), QMP_END,
};
static const QmpVariant no_variants[] = { { NULL } };
static const QmpType cpu_info_fast = {
    .name = "CpuInfoFast", .kind = QMP_KIND_OBJECT, .members = cpu_info_fast_members,
    .tag = "target", .variants = no_variants,
};
QMP_ARRAY_TYPE(cpu_info_fast_list, cpu_info_fast);
QMP_SHAPE(shutdown_data, "SHUTDOWN-arg",
    QMP_OUT("guest", qmp_type_bool), QMP_OUT("reason", shutdown_cause_type));
QMP_SHAPE(reset_data, "RESET-arg",
    QMP_OUT("guest", qmp_type_bool), QMP_OUT("reason", shutdown_cause_type));

static const QmpCommandDef machine_commands[] = {
    QMP_COMMAND("query-status", cmd_query_status, NULL, &status_info),
    QMP_COMMAND("query-name", cmd_query_name, NULL, &name_info),
    QMP_COMMAND("query-kvm", cmd_query_kvm, NULL, &kvm_info),
    QMP_COMMAND("query-target", cmd_query_target, NULL, &target_info),
    QMP_COMMAND("query-cpus-fast", cmd_query_cpus_fast, NULL, &cpu_info_fast_list),
    QMP_COMMAND("stop", cmd_stop, NULL, NULL),
    QMP_COMMAND("cont", cmd_cont, NULL, NULL),
    QMP_COMMAND("system_reset", cmd_system_reset, NULL, NULL),
    QMP_COMMAND("system_powerdown", cmd_system_powerdown, NULL, NULL),
    QMP_COMMAND("quit", cmd_quit, NULL, NULL),
};

static const QmpEventDef machine_events[] = {
    { .name = "STOP" }, { .name = "RESUME" }, { .name = "POWERDOWN" },
    { .name = "SHUTDOWN", .data = &shutdown_data },
    { .name = "RESET", .data = &reset_data },
};

static void fill_enum_values(void)
{
    for (int i = 0; i < RUN_STATE__MAX; i++) {
        runstate_values[i] = runstate_name(i);
    }
    for (int i = 0; i < SHUTDOWN_CAUSE__MAX; i++) {
        shutdown_cause_values[i] = shutdown_cause_name(i);
    }
}

void qmp_machine_attach(QmpMachine *m, Monitor *mon)
{
    m->monitor = mon;
    fill_enum_values();
    qmp_register_commands(monitor_registry(mon), machine_commands,
                          ARRAY_SIZE(machine_commands), m);
    qmp_register_events(monitor_registry(mon), machine_events,
                        ARRAY_SIZE(machine_events));
    runstate_add_listener(on_runstate, m);
    runstate_set_event_ops(&event_ops, m);
}

void qmp_machine_detach(QmpMachine *m)
{
    runstate_remove_listener(on_runstate, m);
    runstate_set_event_ops(NULL, NULL);
}
