/*
 * The protocol-level QMP commands, which need nothing outside the monitor:
 * qmp_capabilities (per-session negotiation), query-version and
 * query-commands (generated from the registry).
 */
#include <string.h>

#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

static bool enable_oob(JsonArray *enable, QmpSession *s, GError **errp)
{
    for (guint i = 0; i < json_array_get_length(enable); i++) {
        JsonNode *n = json_array_get_element(enable, i);
        const char *cap = JSON_NODE_HOLDS_VALUE(n) &&
            json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n)
                                                         : NULL;

        if (!cap) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Invalid parameter type for 'enable[%u]', expected: string", i);
            return false;
        }
        if (strcmp(cap, "oob")) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter 'enable[%u]' does not accept value '%s'", i, cap);
            return false;
        }
    }
    s->oob = json_array_get_length(enable) > 0;
    return true;
}

static JsonNode *cmd_qmp_capabilities(const QmpCall *call, JsonObject *args,
                                      GError **errp)
{
    QmpSession *s = call->session;

    if (!s) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "qmp_capabilities needs a QMP session");
        return NULL;
    }
    if (qmp_arg_has(args, "enable") &&
        !enable_oob(json_object_get_array_member(args, "enable"), s, errp)) {
        return NULL;
    }
    s->negotiated = true;
    return qmp_return_empty();
}

static JsonNode *cmd_query_version(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return qmp_version_info();
}

static JsonNode *cmd_query_commands(const QmpCall *call, JsonObject *args,
                                    GError **errp)
{
    size_t n;
    g_autofree const char **names = qmp_registry_names(call->registry, &n);
    JsonArray *list = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    for (size_t i = 0; i < n; i++) {
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "name", names[i]);
        json_array_add_object_element(list, o);
    }
    json_node_take_array(node, list);
    return node;
}

static const QmpArgSpec capabilities_args[] = {
    { "enable", QMP_ARG_ARRAY, true },
    { NULL },
};

static const QmpArgSpec transaction_args[] = {
    { "actions", QMP_ARG_ARRAY, false },
    { "properties", QMP_ARG_OBJECT, true },
    { NULL },
};

static const QmpCommandDef core_commands[] = {
    { "qmp_capabilities", cmd_qmp_capabilities, capabilities_args,
      QMP_CMD_BEFORE_NEGOTIATION },
    { "query-version", cmd_query_version, NULL, 0 },
    { "query-commands", cmd_query_commands, NULL, 0 },
    { "transaction", qmp_cmd_transaction, transaction_args, 0 },
};

void qmp_register_core_commands(QmpRegistry *r)
{
    qmp_register_commands(r, core_commands, ARRAY_SIZE(core_commands), NULL);
}
