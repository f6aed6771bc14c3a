/*
 * QMP 'transaction': several actions applied all-or-nothing. Every action's
 * syntax is checked before any runs (as QEMU's visitor parses the whole request
 * first); then prepare runs in order, and either every action commits or the
 * prepared ones abort in reverse order.
 */
#include <string.h>

#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

typedef struct Action {
    const QmpActionOps *ops;
    void *opaque;
    JsonObject *data;
    void *state;            /* from prepare; NULL until prepared */
    bool prepared;
} Action;

static const QmpArgSpec action_args[] = {
    { "type", QMP_ARG_STR, false },
    { "data", QMP_ARG_OBJECT, false },
    { NULL },
};

static bool action_parse(const QmpRegistry *r, JsonArray *list, guint i,
                         Action *a, GError **errp)
{
    JsonNode *n = json_array_get_element(list, i);
    g_autofree char *path = g_strdup_printf("actions[%u]", i);
    g_autofree char *data_path = NULL;
    JsonObject *obj;
    const char *type;

    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Invalid parameter type for '%s', expected: object", path);
        return false;
    }
    obj = json_node_get_object(n);
    if (!qmp_check_args(obj, action_args, path, errp)) {
        return false;
    }
    type = json_object_get_string_member(obj, "type");
    a->ops = qmp_registry_find_action(r, type, &a->opaque);
    if (!a->ops) {
        /* QEMU names the bare member here, without the path. */
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'type' does not accept value '%s'", type);
        return false;
    }
    a->data = json_object_get_object_member(obj, "data");
    data_path = g_strdup_printf("%s.data", path);
    return qmp_check_args(a->data, a->ops->args, data_path, errp);
}

static bool properties_check(JsonObject *args, Action *acts, guint n,
                             GError **errp)
{
    static const QmpArgSpec props_args[] = {
        { "completion-mode", QMP_ARG_STR, true },
        { NULL },
    };
    JsonObject *props;
    const char *mode;

    if (!qmp_arg_has(args, "properties")) {
        return true;
    }
    props = json_object_get_object_member(args, "properties");
    if (!qmp_check_args(props, props_args, "properties", errp)) {
        return false;
    }
    mode = qmp_arg_str(props, "completion-mode", "individual");
    if (strcmp(mode, "individual") && strcmp(mode, "grouped")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'completion-mode' does not accept value '%s'", mode);
        return false;
    }
    if (!strcmp(mode, "grouped") && n > 0) {
        /* Only job-starting actions honour grouped mode; tern has none yet. */
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Action '%s' does not support Transaction property "
                    "completion-mode = grouped", acts[0].ops->type);
        return false;
    }
    return true;
}

static bool actions_prepare(const QmpCall *call, Action *acts, guint n,
                            GError **errp)
{
    for (guint i = 0; i < n; i++) {
        QmpCall acall = *call;

        acall.opaque = acts[i].opaque;
        acts[i].state = acts[i].ops->prepare(&acall, acts[i].data, errp);
        if (!acts[i].state) {
            for (guint j = i; j-- > 0;) {
                if (acts[j].ops->abort) {
                    acts[j].ops->abort(acts[j].state);
                }
            }
            return false;
        }
        acts[i].prepared = true;
    }
    for (guint i = 0; i < n; i++) {
        if (acts[i].ops->commit) {
            acts[i].ops->commit(acts[i].state);
        }
    }
    return true;
}

JsonNode *qmp_cmd_transaction(const QmpCall *call, JsonObject *args, GError **errp)
{
    JsonArray *list = json_object_get_array_member(args, "actions");
    guint n = json_array_get_length(list);
    g_autofree Action *acts = g_new0(Action, n ? n : 1);
    bool ok = true;

    for (guint i = 0; i < n && ok; i++) {
        ok = action_parse(call->registry, list, i, &acts[i], errp);
    }
    ok = ok && properties_check(args, acts, n, errp);
    ok = ok && actions_prepare(call, acts, n, errp);
    for (guint i = 0; i < n; i++) {
        if (acts[i].prepared && acts[i].ops->clean) {
            acts[i].ops->clean(acts[i].state);
        }
    }
    return ok ? qmp_return_empty() : NULL;
}
