/*
 * QMP request handling without a transport: parse one framed text, check the
 * request's shape and the session's negotiation state, decode the arguments
 * with the command's type table (qmp-types.c), run the handler, and shape the
 * reply exactly as QEMU 7.2 does (member names, error classes, wording).
 */
#include <string.h>
#include <unistd.h>

#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-framer.h"
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

json_object *qmp_error_reply(const GError *err, json_object *id)
{
    json_object *reply = json_object_new_object();
    json_object *e = json_object_new_object();

    if (id) {
        json_object_object_add(reply, "id", json_object_get(id));
    }
    tern_json_add_str(e, "class", qmp_error_class_name(err));
    tern_json_add_str(e, "desc", err->message);
    json_object_object_add(reply, "error", e);
    return reply;
}

static json_object *return_reply(json_object *ret, json_object *id)
{
    json_object *reply = json_object_new_object();

    json_object_object_add(reply, "return", ret);
    if (id) {
        json_object_object_add(reply, "id", json_object_get(id));
    }
    return reply;
}

json_object *qmp_version_info(void)
{
    json_object *v = json_object_new_object();
    json_object *q = json_object_new_object();

    tern_json_add_int(q, "micro", QMP_QEMU_MICRO);
    tern_json_add_int(q, "minor", QMP_QEMU_MINOR);
    tern_json_add_int(q, "major", QMP_QEMU_MAJOR);
    json_object_object_add(v, "qemu", q);
    tern_json_add_str(v, "package", "tern-" TERN_VERSION);
    return v;
}

json_object *qmp_greeting(void)
{
    json_object *qmp = json_object_new_object();
    json_object *top = json_object_new_object();
    json_object *caps = json_object_new_array();

    json_object_array_add(caps, json_object_new_string("oob"));
    json_object_object_add(qmp, "version", qmp_version_info());
    json_object_object_add(qmp, "capabilities", caps);
    json_object_object_add(top, "QMP", qmp);
    return top;
}

json_object *qmp_event_new(const char *name, json_object *data)
{
    json_object *ev = json_object_new_object();
    json_object *ts = json_object_new_object();
    gint64 now = g_get_real_time();

    tern_json_add_int(ts, "seconds", now / G_USEC_PER_SEC);
    tern_json_add_int(ts, "microseconds", now % G_USEC_PER_SEC);
    json_object_object_add(ev, "timestamp", ts);
    tern_json_add_str(ev, "event", name);
    if (data) {
        json_object_object_add(ev, "data", data);
    }
    return ev;
}

char *qmp_to_wire(json_object *msg, size_t *len)
{
    size_t n = 0;
    const char *text = json_object_to_json_string_length(msg, TERN_JSON_COMPACT, &n);
    char *line = g_malloc(n + 3);

    memcpy(line, text, n);
    memcpy(line + n, "\r\n", 3);
    *len = n + 2;
    return line;
}

/* --- requests ---------------------------------------------------------------- */

typedef struct Request {
    const char *command;
    bool oob;
    json_object *args;      /* NULL when absent */
    json_object *id;        /* NULL when absent */
} Request;

static bool request_member(Request *req, const char *name, json_object *n,
                           GError **errp)
{
    if (!strcmp(name, "execute") || !strcmp(name, "exec-oob")) {
        if (!json_object_is_type(n, json_type_string)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "QMP input member '%s' must be a string", name);
            return false;
        }
        return true;
    }
    if (!strcmp(name, "arguments")) {
        if (!json_object_is_type(n, json_type_object)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "QMP input member 'arguments' must be an object");
            return false;
        }
        req->args = n;
        return true;
    }
    if (!strcmp(name, "id")) {
        return true;
    }
    g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                "QMP input member '%s' is unexpected", name);
    return false;
}

/* The request's own shape, as QEMU's qmp_dispatch_check_obj checks it. */
static bool request_parse(json_object *obj, Request *req, GError **errp)
{
    json_object *exec = NULL, *oob = NULL;

    json_object_object_foreach(obj, key, val) {
        if (!request_member(req, key, val, errp)) {
            return false;
        }
    }
    json_object_object_get_ex(obj, "execute", &exec);
    json_object_object_get_ex(obj, "exec-oob", &oob);
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
    req->command = json_object_get_string(exec ? exec : oob);
    return true;
}

/* Before negotiation only qmp_capabilities runs (which, as in QEMU, decodes
 * its arguments before it says whether negotiation is already done). */
static bool negotiation_allows(QmpSession *s, const char *command, GError **errp)
{
    if (!s->negotiated && strcmp(command, "qmp_capabilities")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Expecting capabilities negotiation with 'qmp_capabilities'");
        return false;
    }
    return true;
}

/* Decodes the arguments into the command's C struct, then runs it. */
static json_object *run_command(QmpRegistry *r, QmpSession *s, const char *name,
                                json_object *args, GError **errp)
{
    void *opaque = NULL;
    const QmpCommandDef *def = qmp_registry_find(r, name, &opaque);
    g_autoptr(json_object) empty = NULL;
    QmpCall call = { .registry = r, .session = s, .opaque = opaque };
    const QmpType *type;
    json_object *ret;
    void *value;

    if (!def) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "The command %s has not been found", name);
        return NULL;
    }
    if (!args) {
        args = empty = json_object_new_object();
    }
    type = qmp_command_args(r, def);
    value = qmp_value_new(type);
    ret = qmp_decode(type, args, value, "", errp) ? def->func(&call, value, errp)
                                                  : NULL;
    qmp_value_free(type, value);
    return ret;
}

json_object *qmp_call(QmpRegistry *r, const char *name, json_object *args,
                      GError **errp)
{
    return run_command(r, NULL, name, args, errp);
}

static json_object *dispatch_object(QmpRegistry *r, QmpSession *s, json_object *obj)
{
    Request req = { 0 };
    g_autoptr(GError) err = NULL;
    json_object *ret;

    json_object_object_get_ex(obj, "id", &req.id);
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

json_object *qmp_dispatch(QmpRegistry *r, QmpSession *s, json_object *request)
{
    g_autoptr(GError) err = NULL;

    if (!json_object_is_type(request, json_type_object)) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                    "QMP input must be a JSON object");
        return qmp_error_reply(err, NULL);
    }
    return dispatch_object(r, s, request);
}

json_object *qmp_dispatch_text(QmpRegistry *r, QmpSession *s, const char *text,
                               size_t len)
{
    g_autoptr(GError) perr = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) root =
        tern_json_parse(text, len, QMP_FRAMER_MAX_DEPTH + 1, &perr);

    if (perr) {
        g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, %s",
                    perr->message);
        return qmp_error_reply(err, NULL);
    }
    return qmp_dispatch(r, s, root);
}

void qmp_session_set_passed_fds(QmpSession *s, const int *fds, unsigned n)
{
    for (unsigned i = 0; i < s->n_passed_fds; i++) {
        close(s->passed_fds[i]);
    }
    s->n_passed_fds = 0;
    for (unsigned i = 0; i < n; i++) {
        if (s->n_passed_fds < QMP_MAX_PASSED_FDS) {
            s->passed_fds[s->n_passed_fds++] = fds[i];
        } else {
            close(fds[i]);
        }
    }
}
