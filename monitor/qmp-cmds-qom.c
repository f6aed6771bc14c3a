/*
 * What a management tool's capability probe asks before it runs a guest,
 * answered from the tables of what tern really has: query-machines (hw/i386/machine.h), qom-list-types, device-list-properties
 * and qom-list-properties (the QOM types declared where they are
 * implemented, hw/core/qom.h), query-cpu-definitions (the CPU model types),
 * query-command-line-options (softmmu's option groups), query-iothreads
 * (tern has no iothread objects), and qom-list over the machine's QOM tree
 * as QEMU lays it out (/machine/peripheral/ID, the vCPUs under
 * /machine/unattached).
 */
#include <stdio.h>
#include <string.h>

#include "hw/core/qom.h"
#include "hw/i386/machine.h"
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-qom.h"
#include "softmmu/cmdline.h"
#include "tern/error.h"

#define CPU_TYPE_SUFFIX "-x86_64-cpu"

/* --- query-machines -------------------------------------------------------------- */

static json_object *machine_info(const MachineTypeInfo *mt)
{
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "name", mt->name);
    if (mt->is_default) {
        tern_json_add_bool(o, "is-default", true);
    }
    tern_json_add_int(o, "cpu-max", mt->cpu_max);
    tern_json_add_bool(o, "hotpluggable-cpus", false);
    tern_json_add_bool(o, "numa-mem-supported", false);
    tern_json_add_bool(o, "deprecated", false);
    if (mt->default_cpu_type) {
        tern_json_add_str(o, "default-cpu-type", mt->default_cpu_type);
    }
    if (mt->default_ram_id) {
        tern_json_add_str(o, "default-ram-id", mt->default_ram_id);
    }
    return o;
}

static json_object *cmd_query_machines(const QmpCall *call, const void *args,
                                       GError **errp)
{
    json_object *list = json_object_new_array();

    for (const MachineTypeInfo *mt = machine_types; mt->name; mt++) {
        json_object_array_add(list, machine_info(mt));
    }
    return list;
}

/* --- qom-list-types -------------------------------------------------------------- */

typedef struct ListTypesArgs {
    bool has_implements;
    char *implements;
    bool has_abstract;
    bool abstract;
} ListTypesArgs;

QMP_OBJECT_TYPE(list_types_args, "qom-list-types-arg", ListTypesArgs,
    QMP_OPTIONAL(ListTypesArgs, implements, "implements", qmp_type_str, .s = NULL),
    QMP_OPTIONAL(ListTypesArgs, abstract, "abstract", qmp_type_bool, .b = false));

static json_object *cmd_qom_list_types(const QmpCall *call, const void *args,
                                       GError **errp)
{
    const ListTypesArgs *a = args;
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < qom_type_count(); i++) {
        const QomType *t = qom_type_at(i);
        json_object *o;

        if ((t->abstract && !a->abstract) ||
            (a->implements && !qom_type_is_a(t, a->implements))) {
            continue;
        }
        o = json_object_new_object();
        tern_json_add_str(o, "name", t->name);
        if (t->abstract) {
            tern_json_add_bool(o, "abstract", true);
        }
        if (t->parent) {
            tern_json_add_str(o, "parent", t->parent);
        }
        json_object_array_add(list, o);
    }
    return list;
}

/* --- device-list-properties, qom-list-properties ------------------------------- */

typedef struct TypenameArgs {
    char *typename_;
} TypenameArgs;

QMP_OBJECT_TYPE(typename_args, "device-list-properties-arg", TypenameArgs,
    QMP_MEMBER(TypenameArgs, typename_, "typename", qmp_type_str));
QMP_OBJECT_TYPE(qom_typename_args, "qom-list-properties-arg", TypenameArgs,
    QMP_MEMBER(TypenameArgs, typename_, "typename", qmp_type_str));

static void add_props(json_object *list, const QomType *t, bool below_device)
{
    /* Every object has "type"; device-list-properties leaves out what the
     * object and device families add (QEMU lists a device's own only). */
    for (; t; t = t->parent ? qom_type_find(t->parent) : NULL) {
        if (below_device && !strcmp(t->name, "device")) {
            return;
        }
        for (const QomProp *p = t->props; p && p->name; p++) {
            json_object *o = json_object_new_object();

            tern_json_add_str(o, "name", p->name);
            tern_json_add_str(o, "type", p->type);
            if (p->description) {
                tern_json_add_str(o, "description", p->description);
            }
            json_object_array_add(list, o);
        }
    }
}

static json_object *cmd_device_list_properties(const QmpCall *call, const void *args,
                                               GError **errp)
{
    const TypenameArgs *a = args;
    const QomType *t = qom_type_find(a->typename_);
    json_object *list;

    if (!t || !qom_type_is_a(t, "device")) {
        g_set_error(errp, QMP_ERROR, t ? QMP_ERROR_GENERIC : QMP_ERROR_DEVICE_NOT_FOUND,
                    t ? "'%s' is not a device type" : "Device '%s' not found",
                    a->typename_);
        return NULL;
    }
    if (t->abstract) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'typename' expects a non-abstract device type");
        return NULL;
    }
    list = json_object_new_array();
    add_props(list, t, true);
    return list;
}

static json_object *cmd_qom_list_properties(const QmpCall *call, const void *args,
                                            GError **errp)
{
    const TypenameArgs *a = args;
    const QomType *t = qom_type_find(a->typename_);
    json_object *list, *type;

    if (!t) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND,
                    "Class '%s' not found", a->typename_);
        return NULL;
    }
    list = json_object_new_array();
    type = json_object_new_object();
    tern_json_add_str(type, "name", "type");
    tern_json_add_str(type, "type", "string");
    json_object_array_add(list, type);
    add_props(list, t, false);
    return list;
}

/* --- query-cpu-definitions --------------------------------------------------- */

static json_object *cpu_definition(const QomType *t)
{
    json_object *o = json_object_new_object();
    g_autofree char *name = g_strndup(t->name,
                                      strlen(t->name) - strlen(CPU_TYPE_SUFFIX));

    tern_json_add_str(o, "name", name);
    tern_json_add_str(o, "typename", t->name);
    json_object_object_add(o, "unavailable-features", json_object_new_array());
    /* Both models follow the host: neither is static nor safe to migrate
     * to another kind of host. */
    tern_json_add_bool(o, "static", false);
    tern_json_add_bool(o, "migration-safe", false);
    tern_json_add_bool(o, "deprecated", false);
    return o;
}

static json_object *cmd_query_cpu_definitions(const QmpCall *call, const void *args,
                                              GError **errp)
{
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < qom_type_count(); i++) {
        const QomType *t = qom_type_at(i);

        if (!t->abstract && qom_type_is_a(t, "x86_64-cpu") &&
            g_str_has_suffix(t->name, CPU_TYPE_SUFFIX)) {
            json_object_array_add(list, cpu_definition(t));
        }
    }
    return list;
}

/* --- query-command-line-options --------------------------------------------------- */

typedef struct CmdlineOptionsArgs {
    bool has_option;
    char *option;
} CmdlineOptionsArgs;

QMP_OBJECT_TYPE(cmdline_options_args, "query-command-line-options-arg",
    CmdlineOptionsArgs,
    QMP_OPTIONAL(CmdlineOptionsArgs, option, "option", qmp_type_str, .s = NULL));

static json_object *option_info(const CmdlineGroup *g)
{
    json_object *o = json_object_new_object();
    json_object *params = json_object_new_array();

    for (const CmdlineParam *p = g->params; p->name; p++) {
        json_object *po = json_object_new_object();

        tern_json_add_str(po, "name", p->name);
        tern_json_add_str(po, "type", p->type);
        json_object_array_add(params, po);
    }
    json_object_object_add(o, "parameters", params);
    tern_json_add_str(o, "option", g->option);
    return o;
}

static json_object *cmd_query_command_line_options(const QmpCall *call,
                                                   const void *args, GError **errp)
{
    const CmdlineOptionsArgs *a = args;
    json_object *list = json_object_new_array();

    for (const CmdlineGroup *g = cmdline_groups; g->option; g++) {
        if (!a->option || !strcmp(a->option, g->option)) {
            json_object_array_add(list, option_info(g));
        }
    }
    if (a->option && !json_object_array_length(list)) {
        json_object_put(list);
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "invalid option name: %s",
                    a->option);
        return NULL;
    }
    return list;
}

/* --- qom-list ------------------------------------------------------------------------ */

typedef struct QomListArgs {
    char *path;
} QomListArgs;

QMP_OBJECT_TYPE(qom_list_args, "qom-list-arg", QomListArgs,
    QMP_MEMBER(QomListArgs, path, "path", qmp_type_str));

static void add_prop(json_object *list, const char *name, const char *type)
{
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "name", name);
    tern_json_add_str(o, "type", type);
    json_object_array_add(list, o);
}

static void add_child(json_object *list, const char *name, const char *type)
{
    g_autofree char *t = g_strdup_printf("child<%s>", type);

    add_prop(list, name, t);
}

/* "type" and the properties of QOM type 'name' and its parents. */
static json_object *object_props(const char *name)
{
    json_object *list = json_object_new_array();
    const QomType *t = qom_type_find(name);

    add_prop(list, "type", "string");
    for (; t; t = t->parent ? qom_type_find(t->parent) : NULL) {
        for (const QomProp *p = t->props; p && p->name; p++) {
            add_prop(list, p->name, p->type);
        }
    }
    return list;
}

/* The devices directly under 'dir' (a container path). */
static void add_device_children(Machine *m, const char *dir, json_object *list)
{
    const MachineQomDevice *d;
    size_t len = strlen(dir);

    for (size_t i = 0; (d = machine_qom_device(m, i)); i++) {
        if (!strncmp(d->path, dir, len) && d->path[len] == '/' &&
            !strchr(d->path + len + 1, '/')) {
            add_child(list, d->path + len + 1, d->type);
        }
    }
}

static json_object *list_container(Machine *m, const char *path)
{
    json_object *list = json_object_new_array();

    add_prop(list, "type", "string");
    if (!strcmp(path, "/machine/unattached")) {
        for (unsigned i = 0; i < m->nr_vcpus; i++) {
            g_autofree char *name = g_strdup_printf("device[%u]", i);

            add_child(list, name, "host-x86_64-cpu");
        }
    } else {
        add_device_children(m, path, list);
    }
    return list;
}

static json_object *list_path(Machine *m, const char *path)
{
    static const char *const containers[] = {
        "/machine/peripheral", "/machine/peripheral-anon", "/machine/unattached",
    };
    g_autofree char *machine_type = g_strdup_printf("%s-machine", m->cfg->machine);
    const MachineQomDevice *d;
    json_object *list;
    unsigned cpu;
    char tail;

    if (!strcmp(path, "/")) {
        list = json_object_new_array();
        add_prop(list, "type", "string");
        add_child(list, "machine", machine_type);
        return list;
    }
    if (!strcmp(path, "/machine")) {
        list = object_props(machine_type);
        for (size_t i = 0; i < ARRAY_SIZE(containers); i++) {
            add_child(list, containers[i] + strlen("/machine/"), "container");
        }
        return list;
    }
    for (size_t i = 0; i < ARRAY_SIZE(containers); i++) {
        if (!strcmp(path, containers[i])) {
            return list_container(m, path);
        }
    }
    if (sscanf(path, "/machine/unattached/device[%u%c", &cpu, &tail) == 2 &&
        tail == ']' && cpu < m->nr_vcpus && !path[strcspn(path, "]") + 1]) {
        return object_props("host-x86_64-cpu");
    }
    for (size_t i = 0; (d = machine_qom_device(m, i)); i++) {
        if (!strcmp(d->path, path)) {
            return object_props(d->type);
        }
    }
    return NULL;
}

static json_object *cmd_qom_list(const QmpCall *call, const void *args, GError **errp)
{
    const QomListArgs *a = args;
    json_object *list = list_path(call->opaque, a->path);

    if (!list) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND,
                    "Device '%s' not found", a->path);
    }
    return list;
}

/* --- query-iothreads -------------------------------------------------------------- */

static json_object *cmd_query_iothreads(const QmpCall *call, const void *args,
                                        GError **errp)
{
    /* Only -object iothread creates what QEMU lists here; tern has none
     * (each virtio-blk device's I/O thread is its own, not an object). */
    return json_object_new_array();
}

/* --- types ------------------------------------------------------------------------ */

QMP_SHAPE(machine_info_type, "MachineInfo",
    QMP_OUT("name", qmp_type_str), QMP_OUT_OPT("alias", qmp_type_str),
    QMP_OUT_OPT("is-default", qmp_type_bool), QMP_OUT("cpu-max", qmp_type_int),
    QMP_OUT("hotpluggable-cpus", qmp_type_bool),
    QMP_OUT("numa-mem-supported", qmp_type_bool), QMP_OUT("deprecated", qmp_type_bool),
    QMP_OUT_OPT("default-cpu-type", qmp_type_str),
    QMP_OUT_OPT("default-ram-id", qmp_type_str));
QMP_ARRAY_TYPE(machine_info_list, machine_info_type);

QMP_SHAPE(type_info, "ObjectTypeInfo",
    QMP_OUT("name", qmp_type_str), QMP_OUT_OPT("abstract", qmp_type_bool),
    QMP_OUT_OPT("parent", qmp_type_str));
QMP_ARRAY_TYPE(type_info_list, type_info);

QMP_SHAPE(property_info, "ObjectPropertyInfo",
    QMP_OUT("name", qmp_type_str), QMP_OUT("type", qmp_type_str),
    QMP_OUT_OPT("description", qmp_type_str), QMP_OUT_OPT("default-value", qmp_type_any));
QMP_ARRAY_TYPE(property_info_list, property_info);

QMP_ARRAY_TYPE(str_list, qmp_type_str);
QMP_SHAPE(cpu_definition_info, "CpuDefinitionInfo",
    QMP_OUT("name", qmp_type_str), QMP_OUT_OPT("migration-safe", qmp_type_bool),
    QMP_OUT("static", qmp_type_bool),
    QMP_OUT_OPT("unavailable-features", str_list),
    QMP_OUT("typename", qmp_type_str), QMP_OUT_OPT("alias-of", qmp_type_str),
    QMP_OUT("deprecated", qmp_type_bool));
QMP_ARRAY_TYPE(cpu_definition_list, cpu_definition_info);

static const char *const param_type_values[] = { "string", "boolean", "number", "size",
                                                 NULL };
QMP_ENUM_TYPE(param_type, "CommandLineParameterType", param_type_values);
QMP_SHAPE(param_info, "CommandLineParameterInfo",
    QMP_OUT("name", qmp_type_str), QMP_OUT("type", param_type),
    QMP_OUT_OPT("help", qmp_type_str), QMP_OUT_OPT("default", qmp_type_str));
QMP_ARRAY_TYPE(param_info_list, param_info);
QMP_SHAPE(option_info_type, "CommandLineOptionInfo",
    QMP_OUT("option", qmp_type_str), QMP_OUT("parameters", param_info_list));
QMP_ARRAY_TYPE(option_info_list, option_info_type);

QMP_SHAPE(iothread_info, "IOThreadInfo",
    QMP_OUT("id", qmp_type_str), QMP_OUT("thread-id", qmp_type_int),
    QMP_OUT("poll-max-ns", qmp_type_int), QMP_OUT("poll-grow", qmp_type_int),
    QMP_OUT("poll-shrink", qmp_type_int), QMP_OUT("aio-max-batch", qmp_type_int));
QMP_ARRAY_TYPE(iothread_info_list, iothread_info);

static const QmpCommandDef qom_commands[] = {
    QMP_COMMAND("query-machines", cmd_query_machines, NULL, &machine_info_list),
    QMP_COMMAND("qom-list-types", cmd_qom_list_types, &list_types_args, &type_info_list),
    QMP_COMMAND("device-list-properties", cmd_device_list_properties, &typename_args,
                &property_info_list),
    QMP_COMMAND("qom-list-properties", cmd_qom_list_properties, &qom_typename_args,
                &property_info_list),
    QMP_COMMAND("query-cpu-definitions", cmd_query_cpu_definitions, NULL,
                &cpu_definition_list),
    QMP_COMMAND("query-command-line-options", cmd_query_command_line_options,
                &cmdline_options_args, &option_info_list),
    QMP_COMMAND("query-iothreads", cmd_query_iothreads, NULL, &iothread_info_list),
    QMP_COMMAND("qom-list", cmd_qom_list, &qom_list_args, &property_info_list),
};

void qmp_register_qom_commands(QmpRegistry *r, Machine *m)
{
    qmp_register_commands(r, qom_commands, ARRAY_SIZE(qom_commands), m);
}
