/*
 * QMP request handling without a transport: parse one framed text, check the
 * request's shape and the session's negotiation state, check arguments against
 * the registry's schema, run the handler, and shape the reply exactly as QEMU
 * 7.2 does (member names, error classes, error wording).
 */
#include <math.h>
#include <string.h>

#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

G_DEFINE_QUARK(qmp-error-quark, qmp_error)

static const char *const error_class_names[] = {
    [QMP_ERROR_GENERIC] = "GenericError",
    [QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
    [QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
    [QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

const char *qmp_error_class_name(const GError *err)
{
    if (err->domain == QMP_ERROR && err->code >= 0 &&
        err->code < (int)ARRAY_SIZE(error_class_names)) {
        return error_class_names[err->code];
    }
    if (err->domain == TERN_ERROR && err->code == TERN_ERR_NOT_FOUND) {
        return "DeviceNotFound";
    }
    if (err->domain == TERN_ERROR && err->code == TERN_ERR_CMD_NOT_FOUND) {
        return "CommandNotFound";
    }
    return "GenericError";
}

static JsonNode *object_node(JsonObject *obj)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(n, obj);
    return n;
}

JsonNode *qmp_error_reply(const GError *err, JsonNode *id)
{
    JsonObject *reply = json_object_new();
    JsonObject *e = json_object_new();

    if (id) {
        json_object_set_member(reply, "id", json_node_copy(id));
    }
    json_object_set_string_member(e, "class", qmp_error_class_name(err));
    json_object_set_string_member(e, "desc", err->message);
    json_object_set_object_member(reply, "error", e);
    return object_node(reply);
}

static JsonNode *return_reply(JsonNode *ret, JsonNode *id)
{
    JsonObject *reply = json_object_new();

    json_object_set_member(reply, "return", ret);
    if (id) {
        json_object_set_member(reply, "id", json_node_copy(id));
    }
    return object_node(reply);
}

JsonNode *qmp_version_info(void)
{
    JsonObject *v = json_object_new();
    JsonObject *q = json_object_new();

    json_object_set_int_member(q, "micro", QMP_QEMU_MICRO);
    json_object_set_int_member(q, "minor", QMP_QEMU_MINOR);
    json_object_set_int_member(q, "major", QMP_QEMU_MAJOR);
    json_object_set_object_member(v, "qemu", q);
    json_object_set_string_member(v, "package", "tern-" TERN_VERSION);
    return object_node(v);
}

JsonNode *qmp_greeting(void)
{
    JsonObject *qmp = json_object_new();
    JsonObject *top = json_object_new();
    JsonArray *caps = json_array_new();

    json_array_add_string_element(caps, "oob");
    json_object_set_member(qmp, "version", qmp_version_info());
    json_object_set_array_member(qmp, "capabilities", caps);
    json_object_set_object_member(top, "QMP", qmp);
    return object_node(top);
}

JsonNode *qmp_event_new(const char *name, JsonObject *data)
{
    JsonObject *ev = json_object_new();
    JsonObject *ts = json_object_new();
    gint64 now = g_get_real_time();

    json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);
    json_object_set_object_member(ev, "timestamp", ts);
    json_object_set_string_member(ev, "event", name);
    if (data) {
        json_object_set_object_member(ev, "data", data);
    }
    return object_node(ev);
}

char *qmp_to_wire(JsonNode *msg, size_t *len)
{
    g_autofree char *text = json_to_string(msg, FALSE);
    char *line = g_strconcat(text, "\r\n", NULL);

    *len = strlen(line);
    return line;
}

/* --- requests ---------------------------------------------------------------- */

typedef struct Request {
    const char *command;
    bool oob;
    JsonObject *args;       /* NULL when absent */
    JsonNode *id;           /* NULL when absent */
} Request;

static bool member_is_string(JsonNode *n)
{
    return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

static bool request_member(Request *req, const char *name, JsonNode *n,
                           GError **errp)
{
    if (!strcmp(name, "execute") || !strcmp(name, "exec-oob")) {
        if (!member_is_string(n)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "QMP input member '%s' must be a string", name);
            return false;
        }
        return true;
    }
    if (!strcmp(name, "arguments")) {
        if (!JSON_NODE_HOLDS_OBJECT(n)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "QMP input member 'arguments' must be an object");
            return false;
        }
        req->args = json_node_get_object(n);
        return true;
    }
    if (!strcmp(name, "id")) {
        return true;
    }
    g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                "QMP input member '%s' is unexpected", name);
    return false;
}

/* False if the value holds a non-finite number, which JSON cannot write. */
static bool node_is_representable(JsonNode *n)
{
    if (JSON_NODE_HOLDS_VALUE(n)) {
        return json_node_get_value_type(n) != G_TYPE_DOUBLE ||
               isfinite(json_node_get_double(n));
    }
    if (JSON_NODE_HOLDS_ARRAY(n)) {
        JsonArray *a = json_node_get_array(n);

        for (guint i = 0; i < json_array_get_length(a); i++) {
            if (!node_is_representable(json_array_get_element(a, i))) {
                return false;
            }
        }
    } else if (JSON_NODE_HOLDS_OBJECT(n)) {
        g_autoptr(GList) values = json_object_get_values(json_node_get_object(n));

        for (GList *l = values; l; l = l->next) {
            if (!node_is_representable(l->data)) {
                return false;
            }
        }
    }
    return true;
}

/* The request's own shape, as QEMU's qmp_dispatch_check_obj checks it. */
static bool request_parse(JsonObject *obj, Request *req, GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(obj);
    JsonNode *exec = json_object_get_member(obj, "execute");
    JsonNode *oob = json_object_get_member(obj, "exec-oob");

    for (GList *l = members; l; l = l->next) {
        if (!request_member(req, l->data, json_object_get_member(obj, l->data),
                            errp)) {
            return false;
        }
    }
    if (exec && oob) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input member 'execute' clashes with 'exec-oob'");
        return false;
    }
    if (!exec && !oob) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input lacks member 'execute'");
        return false;
    }
    req->oob = oob != NULL;
    req->command = json_node_get_string(exec ? exec : oob);
    return true;
}

static bool negotiation_allows(QmpSession *s, const char *command, GError **errp)
{
    bool is_caps = !strcmp(command, "qmp_capabilities");

    if (!s->negotiated && !is_caps) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Expecting capabilities negotiation with 'qmp_capabilities'");
        return false;
    }
    if (s->negotiated && is_caps) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        return false;
    }
    return true;
}

static JsonNode *run_command(QmpRegistry *r, QmpSession *s, const char *name,
                             JsonObject *args, GError **errp)
{
    void *opaque = NULL;
    const QmpCommandDef *def = qmp_registry_find(r, name, &opaque);
    g_autoptr(JsonObject) empty = NULL;
    QmpCall call = { .registry = r, .session = s, .opaque = opaque };

    if (!def) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "The command %s has not been found", name);
        return NULL;
    }
    if (!args) {
        args = empty = json_object_new();
    }
    if (!qmp_check_args(args, def->args, NULL, errp)) {
        return NULL;
    }
    return def->func(&call, args, errp);
}

JsonNode *qmp_call(QmpRegistry *r, const char *name, JsonObject *args,
                   GError **errp)
{
    return run_command(r, NULL, name, args, errp);
}

static JsonNode *dispatch_object(QmpRegistry *r, QmpSession *s, JsonObject *obj)
{
    Request req = { 0 };
    g_autoptr(GError) err = NULL;
    JsonNode *ret;

    req.id = json_object_get_member(obj, "id");
    if (req.id && !node_is_representable(req.id)) {
        /* Echoing 1e999 would send "inf", which is not JSON (QEMU does). */
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input member 'id' holds a number out of range");
        return qmp_error_reply(err, NULL);
    }
    if (!request_parse(obj, &req, &err)) {
        return qmp_error_reply(err, req.id);
    }
    if (req.oob && !s->oob) {
        /* QEMU's wording: without the capability the member does not exist. */
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input member 'exec-oob' is unexpected");
        return qmp_error_reply(err, req.id);
    }
    if (req.oob) {
        /* No tern command is safe to run out of band yet. */
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                    "The command %s does not support OOB", req.command);
        return qmp_error_reply(err, req.id);
    }
    if (!negotiation_allows(s, req.command, &err)) {
        return qmp_error_reply(err, req.id);
    }
    ret = run_command(r, s, req.command, req.args, &err);
    if (!ret) {
        if (!err) {
            g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                        "The command %s failed without saying why", req.command);
        }
        return qmp_error_reply(err, req.id);
    }
    return return_reply(ret, req.id);
}

JsonNode *qmp_dispatch(QmpRegistry *r, QmpSession *s, JsonNode *request)
{
    g_autoptr(GError) err = NULL;

    if (!JSON_NODE_HOLDS_OBJECT(request)) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input must be a JSON object");
        return qmp_error_reply(err, NULL);
    }
    return dispatch_object(r, s, json_node_get_object(request));
}

JsonNode *qmp_dispatch_text(QmpRegistry *r, QmpSession *s, const char *text,
                            size_t len)
{
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    g_autoptr(GError) perr = NULL;
    g_autoptr(GError) err = NULL;
    JsonNode *root;

    if (len > G_MAXSSIZE || !json_parser_load_from_data(parser, text, len, &perr)) {
        const char *why = perr ? perr->message : "input too long";

        /* json-glib names its input "<data>"; the position is what helps. */
        if (g_str_has_prefix(why, "<data>:")) {
            why += strlen("<data>:");
        }
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, %s", why);
        return qmp_error_reply(err, NULL);
    }
    root = json_parser_get_root(parser);
    if (!root) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, empty input");
        return qmp_error_reply(err, NULL);
    }
    return qmp_dispatch(r, s, root);
}
