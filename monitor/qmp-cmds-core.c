/*
 * The protocol-level QMP commands, which need nothing outside the monitor:
 * qmp_capabilities (per-session negotiation), query-version, and
 * query-commands and query-qmp-schema (generated from the registry).
 */
#include <string.h>

#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

/* --- qmp_capabilities ----------------------------------------------------------- */

static const char *const qmp_capability_values[] = { "oob", NULL };
static const QmpType qmp_capability_type = {
    .name = "QMPCapability", .kind = QMP_KIND_ENUM, .size = sizeof(int),
    .values = qmp_capability_values,
};
static const QmpType qmp_capability_list = {
    .name = "[QMPCapability]", .kind = QMP_KIND_ARRAY, .size = sizeof(QmpList),
    .element = &qmp_capability_type,
};

typedef struct CapabilitiesArgs {
    bool has_enable;
    QmpList enable;             /* of int (QMPCapability) */
} CapabilitiesArgs;

QMP_OBJECT_TYPE(capabilities_args, "qmp_capabilities-arg", CapabilitiesArgs,
    QMP_OPTIONAL(CapabilitiesArgs, enable, "enable", qmp_capability_list));

static json_object *cmd_qmp_capabilities(const QmpCall *call, const void *args,
                                         GError **errp)
{
    const CapabilitiesArgs *a = args;
    QmpSession *s = call->session;

    if (!s) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "qmp_capabilities needs a QMP session");
        return NULL;
    }
    if (s->negotiated) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        return NULL;
    }
    /* "oob" is the only capability, so any entry enables it. */
    s->oob = a->enable.len > 0;
    s->negotiated = true;
    return qmp_return_empty();
}

/* --- query-version ---------------------------------------------------------------- */

static json_object *cmd_query_version(const QmpCall *call, const void *args,
                                      GError **errp)
{
    return qmp_version_info();
}

QMP_SHAPE(version_triple_type, "VersionTriple",
    QMP_OUT("major", qmp_type_int), QMP_OUT("minor", qmp_type_int),
    QMP_OUT("micro", qmp_type_int));
QMP_SHAPE(version_info_type, "VersionInfo",
    QMP_OUT("qemu", version_triple_type), QMP_OUT("package", qmp_type_str));

/* --- query-commands ------------------------------------------------------------- */

static json_object *cmd_query_commands(const QmpCall *call, const void *args,
                                       GError **errp)
{
    size_t n;
    g_autofree const char **names = qmp_registry_names(call->registry, &n);
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();

        tern_json_add_str(o, "name", names[i]);
        json_object_array_add(list, o);
    }
    return list;
}

QMP_SHAPE(command_info_type, "CommandInfo",
    QMP_OUT("name", qmp_type_str));
static const QmpType command_info_list = {
    .name = "[CommandInfo]", .kind = QMP_KIND_ARRAY, .element = &command_info_type,
};

/* --- query-qmp-schema ----------------------------------------------------------- */

static json_object *cmd_query_qmp_schema(const QmpCall *call, const void *args,
                                         GError **errp)
{
    return qmp_schema(call->registry);
}

static const QmpCommandDef core_commands[] = {
    QMP_COMMAND("qmp_capabilities", cmd_qmp_capabilities, &capabilities_args, NULL),
    QMP_COMMAND("query-version", cmd_query_version, NULL, &version_info_type),
    QMP_COMMAND("query-commands", cmd_query_commands, NULL, &command_info_list),
    QMP_COMMAND("query-qmp-schema", cmd_query_qmp_schema, NULL,
                &qmp_schema_info_list),
    { .name = "transaction", .func = qmp_cmd_transaction,
      .args_of = qmp_registry_transaction_args },
};

void qmp_register_core_commands(QmpRegistry *r)
{
    qmp_register_commands(r, core_commands, ARRAY_SIZE(core_commands), NULL);
}
