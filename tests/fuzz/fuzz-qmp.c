/*
 * Fuzz harness for the QMP input path: the framer, json-glib parsing, request
 * checks, argument checks and dispatch, with a fake registry (the protocol
 * commands, human-monitor-command, a command with every argument type, and a
 * transaction action). The first input byte picks the chunk size the stream
 * is fed in, so framing across reads is exercised too.
 */
#include <string.h>

#include "monitor/hmp.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-framer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FuzzState {
    QmpRegistry *reg;
    Hmp *hmp;
    QmpSession session;
    unsigned replies;
} FuzzState;

static JsonNode *cmd_typed(const QmpCall *call, JsonObject *args, GError **errp)
{
    if (qmp_arg_bool(args, "fail", false)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "no such device");
        return NULL;
    }
    return qmp_return_empty();
}

static const QmpArgSpec typed_args[] = {
    { "s", QMP_ARG_STR, false },
    { "fail", QMP_ARG_BOOL, true },
    { "i", QMP_ARG_INT, true },
    { "u32", QMP_ARG_UINT32, true },
    { "u64", QMP_ARG_UINT64, true },
    { "n", QMP_ARG_NUMBER, true },
    { "o", QMP_ARG_OBJECT, true },
    { "a", QMP_ARG_ARRAY, true },
    { "any", QMP_ARG_ANY, true },
    { NULL },
};

static JsonNode *cmd_status(const QmpCall *call, JsonObject *args, GError **errp)
{
    JsonObject *o = json_object_new();
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_object_set_string_member(o, "status", "running");
    json_object_set_boolean_member(o, "singlestep", false);
    json_object_set_boolean_member(o, "running", true);
    json_node_take_object(n, o);
    return n;
}

static const QmpCommandDef fuzz_commands[] = {
    { "typed", cmd_typed, typed_args, 0 },
    { "query-status", cmd_status, NULL, 0 },
};

static void *act_prepare(const QmpCall *call, JsonObject *data, GError **errp)
{
    if (qmp_arg_bool(data, "fail", false)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "refused");
        return NULL;
    }
    return g_new0(int, 1);
}

static const QmpArgSpec act_args[] = { { "fail", QMP_ARG_BOOL, true }, { NULL } };
static const QmpActionOps fuzz_action = {
    .type = "act", .args = act_args, .prepare = act_prepare, .clean = g_free,
};

static bool on_frame(QmpFrameKind kind, const char *text, size_t len, void *opaque)
{
    FuzzState *st = opaque;
    g_autoptr(JsonNode) reply = NULL;
    g_autofree char *wire = NULL;
    size_t wlen;

    if (kind != QMP_FRAME_TEXT) {
        st->replies++;
        return true;
    }
    reply = qmp_dispatch_text(st->reg, &st->session, text, len);
    /* Every reply must be an object that serialises. */
    if (!JSON_NODE_HOLDS_OBJECT(reply)) {
        __builtin_trap();
    }
    wire = qmp_to_wire(reply, &wlen);
    st->replies++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzState st = { 0 };
    g_autoptr(QmpFramer) fr = NULL;
    size_t chunk;

    if (size == 0) {
        return 0;
    }
    chunk = 1 + data[0] % 64;
    data++;
    size--;
    st.reg = qmp_registry_new();
    qmp_register_core_commands(st.reg);
    st.hmp = hmp_new(st.reg);
    qmp_register_commands(st.reg, fuzz_commands, G_N_ELEMENTS(fuzz_commands), NULL);
    qmp_register_action(st.reg, &fuzz_action, NULL);
    /* Small limits so that the corpus reaches them. */
    fr = qmp_framer_new(4096, 32);
    for (size_t off = 0; off < size; off += chunk) {
        qmp_framer_feed(fr, (const char *)data + off, MIN(chunk, size - off), on_frame,
                        &st);
    }
    qmp_registry_free(st.reg);
    hmp_free(st.hmp);
    return 0;
}
