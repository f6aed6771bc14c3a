/*
 * The QMP dispatcher and registry without sockets: request-shape errors,
 * negotiation, argument checks with QEMU's wording, id echo, error classes,
 * query-commands generated from the registry, human-monitor-command, and
 * transaction all-or-nothing behaviour with fake actions.
 */
#include <string.h>

#include "monitor/hmp.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

typedef struct Fixture {
    QmpRegistry *reg;
    Hmp *hmp;
    QmpSession session;
    GString *log;           /* fake actions record what they did */
    int value;              /* state the fake actions change */
} Fixture;

/* --- fake commands -------------------------------------------------------- */

typedef struct EchoArgs {
    char *name;
    bool has_count;
    int64_t count;
    bool has_flag, flag;
    bool has_gran;
    uint32_t gran;
    bool has_size;
    uint64_t size;
    bool has_list;
    QmpList list;           /* of int */
    bool has_any;
    json_object *any;
} EchoArgs;

QMP_ARRAY_TYPE(int_list, qmp_type_int);
QMP_OBJECT_TYPE(echo_args, "echo-arg", EchoArgs,
    QMP_MEMBER(EchoArgs, name, "name", qmp_type_str),
    QMP_OPTIONAL(EchoArgs, count, "count", qmp_type_int, .i = 7),
    QMP_OPTIONAL(EchoArgs, flag, "flag", qmp_type_bool),
    QMP_OPTIONAL(EchoArgs, gran, "gran", qmp_type_uint32),
    QMP_OPTIONAL(EchoArgs, size, "size", qmp_type_uint64),
    QMP_OPTIONAL(EchoArgs, list, "list", int_list),
    QMP_OPTIONAL(EchoArgs, any, "any", qmp_type_any));

/* Writes back what was given, from the decoded struct. */
static json_object *cmd_echo(const QmpCall *call, const void *args, GError **errp)
{
    const EchoArgs *a = args;
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "name", a->name);
    if (a->has_count) {
        tern_json_add_int(o, "count", a->count);
    }
    if (a->has_size) {
        tern_json_add_uint(o, "size", a->size);
    }
    if (a->has_list) {
        tern_json_add_int(o, "list-len", a->list.len);
    }
    if (a->has_any) {
        json_object_object_add(o, "any", json_object_get(a->any));
    }
    return o;
}

/* The default of an absent optional member reaches the handler. */
static json_object *cmd_count(const QmpCall *call, const void *args, GError **errp)
{
    const EchoArgs *a = args;

    return json_object_new_int64(a->has_count ? -a->count : a->count);
}

static json_object *cmd_fail_notfound(const QmpCall *call, const void *args,
                                      GError **errp)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND, "Device 'x' not found");
    return NULL;
}

static json_object *cmd_fail_generic(const QmpCall *call, const void *args,
                                     GError **errp)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY, "busy");
    return NULL;
}

static json_object *cmd_status(const QmpCall *call, const void *args, GError **errp)
{
    Fixture *fx = call->opaque;
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "status", fx->value ? "running" : "prelaunch");
    tern_json_add_bool(o, "singlestep", false);
    tern_json_add_bool(o, "running", fx->value != 0);
    return o;
}

static json_object *cmd_stop(const QmpCall *call, const void *args, GError **errp)
{
    Fixture *fx = call->opaque;

    fx->value = 0;
    return qmp_return_empty();
}

static const QmpCommandDef fake_commands[] = {
    QMP_COMMAND("echo", cmd_echo, &echo_args, NULL),
    QMP_COMMAND("count", cmd_count, &echo_args, &qmp_type_int),
    QMP_COMMAND("fail-notfound", cmd_fail_notfound, NULL, NULL),
    QMP_COMMAND("fail-generic", cmd_fail_generic, NULL, NULL),
    QMP_COMMAND("query-status", cmd_status, NULL, NULL),
    QMP_COMMAND("stop", cmd_stop, NULL, NULL),
};

/* --- fake transaction actions: add 'n' to value, undoably ----------------- */

typedef struct AddArgs {
    bool has_n;
    int64_t n;
    bool has_fail, fail;
} AddArgs;

QMP_OBJECT_TYPE(add_args, "fake-add-arg", AddArgs,
    QMP_OPTIONAL(AddArgs, n, "n", qmp_type_int, .i = 1),
    QMP_OPTIONAL(AddArgs, fail, "fail", qmp_type_bool));

typedef struct AddState {
    Fixture *fx;
    int n;
} AddState;

static void *add_prepare(const QmpCall *call, const void *data, GError **errp)
{
    const AddArgs *a = data;
    Fixture *fx = call->opaque;
    AddState *st;

    if (a->fail) {
        g_string_append(fx->log, "fail;");
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "action refused");
        return NULL;
    }
    st = g_new0(AddState, 1);
    st->fx = fx;
    st->n = (int)a->n;
    fx->value += st->n;                 /* done now, undone by abort */
    g_string_append_printf(fx->log, "prepare%d;", st->n);
    return st;
}

static void add_commit(void *opaque)
{
    AddState *st = opaque;

    g_string_append_printf(st->fx->log, "commit%d;", st->n);
}

static void add_abort(void *opaque)
{
    AddState *st = opaque;

    st->fx->value -= st->n;
    g_string_append_printf(st->fx->log, "abort%d;", st->n);
}

static void add_clean(void *opaque)
{
    AddState *st = opaque;

    g_string_append_printf(st->fx->log, "clean%d;", st->n);
    g_free(st);
}

static const QmpActionOps add_action = {
    .type = "fake-add", .args = &add_args, .prepare = add_prepare,
    .commit = add_commit, .abort = add_abort, .clean = add_clean,
};

/* --- helpers ---------------------------------------------------------------- */

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    fx->reg = qmp_registry_new();
    fx->log = g_string_new(NULL);
    qmp_register_core_commands(fx->reg);
    fx->hmp = hmp_new(fx->reg);
    qmp_register_commands(fx->reg, fake_commands, ARRAY_SIZE(fake_commands), fx);
    qmp_register_action(fx->reg, &add_action, fx);
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    qmp_registry_free(fx->reg);
    hmp_free(fx->hmp);
    g_string_free(fx->log, TRUE);
}

/* Dispatches text and returns the reply as compact JSON text. */
static char *ask(Fixture *fx, const char *text)
{
    g_autoptr(json_object) reply = qmp_dispatch_text(fx->reg, &fx->session, text,
                                                     strlen(text));
    size_t len;
    char *wire = qmp_to_wire(reply, &len);

    g_assert_true(g_str_has_suffix(wire, "\r\n"));
    wire[len - 2] = '\0';
    return wire;
}

static void negotiate(Fixture *fx)
{
    g_autofree char *r = ask(fx, "{\"execute\": \"qmp_capabilities\"}");

    g_assert_cmpstr(r, ==, "{\"return\":{}}");
}

static void assert_reply(Fixture *fx, const char *req, const char *want)
{
    g_autofree char *r = ask(fx, req);

    g_assert_cmpstr(r, ==, want);
}

#define ERR(cls, desc) "{\"error\":{\"class\":\"" cls "\",\"desc\":\"" desc "\"}}"
#define ERR_ID(id, cls, desc) \
    "{\"id\":" id ",\"error\":{\"class\":\"" cls "\",\"desc\":\"" desc "\"}}"

/* --- tests ------------------------------------------------------------------ */

static void test_negotiation(Fixture *fx, gconstpointer d)
{
    assert_reply(fx, "{\"execute\": \"query-version\", \"id\": {\"a\": [1, 2]}}",
                 ERR_ID("{\"a\":[1,2]}", "CommandNotFound",
                        "Expecting capabilities negotiation with 'qmp_capabilities'"));
    assert_reply(fx, "{\"execute\": \"nope\"}",
                 ERR("CommandNotFound",
                     "Expecting capabilities negotiation with 'qmp_capabilities'"));
    assert_reply(fx, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
                 "{\"enable\": [\"foo\"]}}",
                 ERR("GenericError", "Parameter 'null' does not accept value 'foo'"));
    g_assert_false(fx->session.negotiated);
    assert_reply(fx, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
                 "{\"enable\": [\"oob\"]}, \"id\": 1}", "{\"return\":{},\"id\":1}");
    g_assert_true(fx->session.negotiated);
    g_assert_true(fx->session.oob);
    assert_reply(fx, "{\"execute\": \"qmp_capabilities\"}",
                 ERR("CommandNotFound",
                     "Capabilities negotiation is already complete, command ignored"));
}

static void test_request_shape(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    assert_reply(fx, "\"abc\"", ERR("GenericError", "QMP input must be a JSON object"));
    assert_reply(fx, "[1, 2]", ERR("GenericError", "QMP input must be a JSON object"));
    assert_reply(fx, "{}", ERR("GenericError", "QMP input lacks member 'execute'"));
    assert_reply(fx, "{\"execute\": 1}",
                 ERR("GenericError", "QMP input member 'execute' must be a string"));
    assert_reply(fx, "{\"execute\": \"echo\", \"foo\": 1, \"id\": \"x\"}",
                 ERR_ID("\"x\"", "GenericError", "QMP input member 'foo' is unexpected"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": []}",
                 ERR("GenericError", "QMP input member 'arguments' must be an object"));
    assert_reply(fx, "{\"execute\": \"echo\", \"exec-oob\": \"echo\"}",
                 ERR("GenericError", "QMP input member 'execute' clashes with 'exec-oob'"));
    assert_reply(fx, "{\"exec-oob\": \"echo\"}",
                 ERR("GenericError", "QMP input member 'exec-oob' is unexpected"));
    fx->session.oob = true;
    assert_reply(fx, "{\"exec-oob\": \"echo\"}",
                 ERR("GenericError", "The command echo does not support OOB"));
    assert_reply(fx, "{\"execute\": \"nope\", \"id\": 5}",
                 ERR_ID("5", "CommandNotFound", "The command nope has not been found"));
    /* A number that cannot be written back as JSON is refused as input. */
    assert_reply(fx, "{\"execute\": \"echo\", \"id\": [1, {\"x\": -1e999}]}",
                 ERR("GenericError", "JSON parse error, invalid number '-1e999'"));
    assert_reply(fx, "{\"execute\": \"query-version\", \"id\": 1.5e300}",
                 "{\"return\":{\"qemu\":{\"micro\":0,\"minor\":2,\"major\":7},"
                 "\"package\":\"tern-" TERN_VERSION "\"},\"id\":1.5000000000000001e+300}");
}

static void test_parse_errors(Fixture *fx, gconstpointer d)
{
    const char *bad[] = { "{\"execute\": foo}", "}", "]", "{\"a\": 1", "1 2",
                          "{\"a\" 1}", "\xc3\x28", "", "   ", "{\"a\": NaN}",
                          "{\"a\": 18446744073709551616}", "[\"\\x\"]" };

    negotiate(fx);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *r = ask(fx, bad[i]);

        g_assert_true(g_str_has_prefix(r, "{\"error\":{\"class\":\"GenericError\","
                                          "\"desc\":\"JSON parse error, "));
    }
}

static void test_arguments(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"n\", "
                 "\"count\": -3, \"any\": [null]}, \"id\": [true, null, 1.5]}",
                 "{\"return\":{\"name\":\"n\",\"count\":-3,\"any\":[null]},"
                 "\"id\":[true,null,1.5]}");
    assert_reply(fx, "{\"execute\": \"echo\"}",
                 ERR("GenericError", "Parameter 'name' is missing"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": 1}}",
                 ERR("GenericError", "Invalid parameter type for 'name', expected: string"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"flag\": 1}}",
                 ERR("GenericError", "Invalid parameter type for 'flag', expected: boolean"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"count\": 1.5}}",
                 ERR("GenericError", "Invalid parameter type for 'count', expected: integer"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"gran\": \"a\"}}",
                 ERR("GenericError", "Parameter 'gran' expects uint64"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"gran\": -1}}",
                 ERR("GenericError", "Parameter 'gran' expects uint32_t"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"gran\": 4294967296}}",
                 ERR("GenericError", "Parameter 'gran' expects uint32_t"));
    /* QEMU takes a negative uint64 modulo 2^64, and no float. */
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"size\": -1}}",
                 "{\"return\":{\"name\":\"a\",\"size\":18446744073709551615}}");
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"size\": 18446744073709551615}}",
                 "{\"return\":{\"name\":\"a\",\"size\":18446744073709551615}}");
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"size\": 1.0}}",
                 ERR("GenericError", "Parameter 'size' expects uint64"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"count\": 9223372036854775808}}",
                 ERR("GenericError", "Invalid parameter type for 'count', expected: integer"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"list\": [1, \"x\"]}}",
                 ERR("GenericError", "Invalid parameter type for 'list[1]', expected: integer"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\\u0000b\"}}",
                 ERR("GenericError", "Parameter 'name' expects a string without U+0000"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": null}}",
                 ERR("GenericError", "Invalid parameter type for 'name', expected: string"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"list\": [1, 2]}}", "{\"return\":{\"name\":\"a\",\"list-len\":2}}");
    /* Absent optional members get the table's default, present ones their value. */
    assert_reply(fx, "{\"execute\": \"count\", \"arguments\": {\"name\": \"a\"}}",
                 "{\"return\":7}");
    assert_reply(fx, "{\"execute\": \"count\", \"arguments\": {\"name\": \"a\", "
                 "\"count\": 3}}", "{\"return\":-3}");
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"list\": {}}}",
                 ERR("GenericError", "Invalid parameter type for 'list', expected: array"));
    assert_reply(fx, "{\"execute\": \"echo\", \"arguments\": {\"name\": \"a\", "
                 "\"zz\": 1}}",
                 ERR("GenericError", "Parameter 'zz' is unexpected"));
    assert_reply(fx, "{\"execute\": \"query-version\", \"arguments\": {\"x\": 1}}",
                 ERR("GenericError", "Parameter 'x' is unexpected"));
}

static void test_error_classes(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    assert_reply(fx, "{\"execute\": \"fail-notfound\", \"id\": 2}",
                 ERR_ID("2", "DeviceNotFound", "Device 'x' not found"));
    assert_reply(fx, "{\"execute\": \"fail-generic\"}", ERR("GenericError", "busy"));
}

static void test_query_commands(Fixture *fx, gconstpointer d)
{
    g_autofree char *r = NULL;

    negotiate(fx);
    r = ask(fx, "{\"execute\": \"query-commands\"}");
    g_assert_nonnull(strstr(r, "{\"name\":\"echo\"}"));
    g_assert_nonnull(strstr(r, "{\"name\":\"qmp_capabilities\"}"));
    g_assert_nonnull(strstr(r, "{\"name\":\"transaction\"}"));
    g_assert_nonnull(strstr(r, "{\"name\":\"human-monitor-command\"}"));
    g_assert_null(strstr(r, "fake-add"));
    assert_reply(fx, "{\"execute\": \"query-version\"}",
                 "{\"return\":{\"qemu\":{\"micro\":0,\"minor\":2,\"major\":7},"
                 "\"package\":\"tern-" TERN_VERSION "\"}}");
}

static void test_hmp(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    fx->value = 0;
    assert_reply(fx, "{\"execute\": \"human-monitor-command\", \"arguments\": "
                 "{\"command-line\": \"info  status\"}}",
                 "{\"return\":\"VM status: paused (prelaunch)\\r\\n\"}");
    fx->value = 1;
    assert_reply(fx, "{\"execute\": \"human-monitor-command\", \"arguments\": "
                 "{\"command-line\": \"info status\"}}",
                 "{\"return\":\"VM status: running\\r\\n\"}");
    assert_reply(fx, "{\"execute\": \"human-monitor-command\", \"arguments\": "
                 "{\"command-line\": \"stop\"}, \"id\": 7}", "{\"return\":\"\",\"id\":7}");
    g_assert_cmpint(fx->value, ==, 0);
    assert_reply(fx, "{\"execute\": \"human-monitor-command\", \"arguments\": "
                 "{\"command-line\": \"info nope\"}}",
                 "{\"return\":\"unknown command: 'info nope'\\r\\n\"}");
    assert_reply(fx, "{\"execute\": \"human-monitor-command\", \"arguments\": "
                 "{\"command-line\": \"cont\"}}",
                 "{\"return\":\"Error: The command cont has not been found\\r\\n\"}");
    assert_reply(fx, "{\"execute\": \"human-monitor-command\", \"arguments\": {}}",
                 ERR("GenericError", "Parameter 'command-line' is missing"));
}

/* An HMP command of its own: echoes its argument, fails on "bad". */
static bool hmp_echo(void *opaque, const char *arg, GString *out, GError **errp)
{
    if (g_strcmp0(arg, "bad") == 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "it is bad");
        return false;
    }
    g_string_append_printf(out, "[%s]\n", arg ? arg : "(none)");
    return true;
}

static void test_hmp_own_commands(Fixture *fx, gconstpointer d)
{
    static const struct { const char *line, *out; } cases[] = {
        { "savevm", "[(none)]\r\n" },
        { "  savevm  tag ", "[tag]\r\n" },
        { "savevm \"a  b\"", "[a  b]\r\n" },
        { "savevm \"q\\\"x\"", "[q\"x]\r\n" },
        { "savevm a b", "savevm: extraneous characters at the end of line\r\n"
                        "Try \"help savevm\" for more information\r\n" },
        { "savevm \"open", "savevm: unterminated string\r\n"
                           "Try \"help savevm\" for more information\r\n" },
        { "loadvm", "loadvm: string expected\r\n"
                    "Try \"help loadvm\" for more information\r\n" },
        { "loadvm bad", "Error: it is bad\r\n" },
        { "info   snapshots", "[(none)]\r\n" },
        { "info snapshots x", "info snapshots: extraneous characters at the "
                              "end of line\r\nTry \"help info snapshots\" for "
                              "more information\r\n" },
        { "savevmx", "unknown command: 'savevmx'\r\n" },
    };

    hmp_add_command(fx->hmp, "savevm", HMP_ARG_OPTIONAL_STR, hmp_echo, NULL);
    hmp_add_command(fx->hmp, "loadvm", HMP_ARG_STR, hmp_echo, NULL);
    hmp_add_command(fx->hmp, "info snapshots", HMP_ARG_NONE, hmp_echo, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = hmp_run(fx->hmp, cases[i].line);
        g_assert_cmpstr(out, ==, cases[i].out);
    }
}

#define TX(actions) \
    "{\"execute\": \"transaction\", \"arguments\": {\"actions\": [" actions "]}}"
#define ADD(data) "{\"type\": \"fake-add\", \"data\": {" data "}}"

static void test_transaction_commit(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    assert_reply(fx, TX(ADD("\"n\": 1") "," ADD("\"n\": 2")), "{\"return\":{}}");
    g_assert_cmpint(fx->value, ==, 3);
    g_assert_cmpstr(fx->log->str, ==,
                    "prepare1;prepare2;commit1;commit2;clean1;clean2;");
    assert_reply(fx, TX(""), "{\"return\":{}}");
}

static void test_transaction_rollback(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    assert_reply(fx, TX(ADD("\"n\": 1") "," ADD("\"n\": 2") "," ADD("\"fail\": true")
                        "," ADD("\"n\": 4")),
                 ERR("GenericError", "action refused"));
    g_assert_cmpint(fx->value, ==, 0);
    g_assert_cmpstr(fx->log->str, ==,
                    "prepare1;prepare2;fail;abort2;abort1;clean1;clean2;");
}

static void test_transaction_syntax_first(Fixture *fx, gconstpointer d)
{
    negotiate(fx);
    /* A bad second action stops everything before anything is prepared. */
    assert_reply(fx, TX(ADD("\"n\": 1") "," ADD("\"n\": \"x\"")),
                 ERR("GenericError", "Invalid parameter type for 'actions[1].data.n', "
                     "expected: integer"));
    assert_reply(fx, TX(ADD("\"n\": 1") ",{\"type\": \"nope\", \"data\": {}}"),
                 ERR("GenericError", "Parameter 'type' does not accept value 'nope'"));
    assert_reply(fx, TX("{\"type\": \"fake-add\"}"),
                 ERR("GenericError", "Parameter 'actions[0].data' is missing"));
    assert_reply(fx, TX("{\"data\": {}}"),
                 ERR("GenericError", "Parameter 'actions[0].type' is missing"));
    assert_reply(fx, TX("1"),
                 ERR("GenericError", "Invalid parameter type for 'actions[0]', "
                     "expected: object"));
    assert_reply(fx, TX(ADD("\"q\": 1")),
                 ERR("GenericError", "Parameter 'actions[0].data.q' is unexpected"));
    assert_reply(fx, "{\"execute\": \"transaction\", \"arguments\": {\"actions\": {}}}",
                 ERR("GenericError", "Invalid parameter type for 'actions', expected: array"));
    assert_reply(fx, "{\"execute\": \"transaction\", \"arguments\": {\"actions\": ["
                 ADD("") "], \"properties\": {\"completion-mode\": \"grouped\"}}}",
                 ERR("GenericError", "Action 'fake-add' does not support Transaction "
                     "property completion-mode = grouped"));
    g_assert_cmpint(fx->value, ==, 0);
    g_assert_cmpstr(fx->log->str, ==, "");
}

static void test_events(Fixture *fx, gconstpointer d)
{
    json_object *data = json_object_new_object();
    g_autoptr(json_object) ev = NULL;
    g_autofree char *wire = NULL;
    json_object *ts, *v;
    size_t len;

    tern_json_add_bool(data, "guest", false);
    ev = qmp_event_new("SHUTDOWN", data);
    ts = json_object_object_get(ev, "timestamp");
    g_assert_cmpint(json_object_get_int64(json_object_object_get(ts, "seconds")), >,
                    1600000000);
    g_assert_cmpint(json_object_get_int64(json_object_object_get(ts, "microseconds")),
                    <, 1000000);
    v = json_object_object_get(ev, "event");
    g_assert_cmpstr(json_object_get_string(v), ==, "SHUTDOWN");
    wire = qmp_to_wire(ev, &len);
    g_assert_nonnull(strstr(wire, "\"data\":{\"guest\":false}"));
}

static void test_internal_call(Fixture *fx, gconstpointer d)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = qmp_call(fx->reg, "qmp_capabilities", NULL, &err);

    g_assert_null(r);
    g_assert_nonnull(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD_TEST(path, fn) \
    g_test_add("/qmp-dispatch/" path, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD_TEST("negotiation", test_negotiation);
    ADD_TEST("request-shape", test_request_shape);
    ADD_TEST("parse-errors", test_parse_errors);
    ADD_TEST("arguments", test_arguments);
    ADD_TEST("error-classes", test_error_classes);
    ADD_TEST("query-commands", test_query_commands);
    ADD_TEST("hmp", test_hmp);
    ADD_TEST("hmp-own-commands", test_hmp_own_commands);
    ADD_TEST("transaction-commit", test_transaction_commit);
    ADD_TEST("transaction-rollback", test_transaction_rollback);
    ADD_TEST("transaction-syntax-first", test_transaction_syntax_first);
    ADD_TEST("events", test_events);
    ADD_TEST("internal-call", test_internal_call);
    return g_test_run();
}
