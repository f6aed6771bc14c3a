/*
 * Fuzz harness for the QMP input path: the framer, strict JSON parsing,
 * request checks, the typed argument layer and dispatch, with a fake registry:
 * the protocol commands (query-qmp-schema among them), human-monitor-command,
 * a command whose argument type has every kind the layer decodes (scalars of
 * each width, an enum, a nested object, an array of objects, an alternate,
 * optional members with defaults) and two transaction actions, so the
 * TransactionAction union is decoded too. Handlers check what they were given
 * against the type's promises (ranges, no U+0000, defaults, list lengths) and
 * every reply is checked against the command's return type. The first input
 * byte picks the chunk size the stream is fed in, so framing across reads is
 * exercised too.
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

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

/* --- a command with every kind of argument ------------------------------------ */

typedef struct Inner {
    char *node;
    bool has_depth;
    uint8_t depth;
} Inner;

typedef struct Ref {
    int kind;                   /* 0: str, 1: Inner */
    char *name;
    Inner inner;
} Ref;

typedef struct TypedArgs {
    char *s;
    bool has_fail, fail;
    bool has_i;
    int64_t i;
    bool has_u8;
    uint8_t u8;
    bool has_u32;
    uint32_t u32;
    bool has_u64;
    uint64_t u64;
    bool has_n;
    double n;
    bool has_mode;
    int mode;
    bool has_inner;
    Inner inner;
    bool has_list;
    QmpList list;               /* of Inner */
    bool has_refs;
    QmpList refs;               /* of Ref */
    bool has_any;
    json_object *any;
} TypedArgs;

static const char *const modes[] = { "off", "on", "auto", NULL };
QMP_ENUM_TYPE(mode_type, "FuzzMode", modes);
QMP_OBJECT_TYPE(inner_type, "FuzzInner", Inner,
    QMP_MEMBER(Inner, node, "node", qmp_type_str),
    QMP_OPTIONAL(Inner, depth, "depth", qmp_type_uint8, .u = 3));
QMP_ARRAY_TYPE(inner_list, inner_type);
QMP_ALTERNATE_TYPE(ref_type, "FuzzRef", Ref,
    QMP_ALTERNATIVE(Ref, name, qmp_type_str),
    QMP_ALTERNATIVE(Ref, inner, inner_type));
QMP_ARRAY_TYPE(ref_list, ref_type);
QMP_OBJECT_TYPE(typed_args, "typed-arg", TypedArgs,
    QMP_MEMBER(TypedArgs, s, "s", qmp_type_str),
    QMP_OPTIONAL(TypedArgs, fail, "fail", qmp_type_bool),
    QMP_OPTIONAL(TypedArgs, i, "i", qmp_type_int, .i = -5),
    QMP_OPTIONAL(TypedArgs, u8, "u8", qmp_type_uint8, .u = 200),
    QMP_OPTIONAL(TypedArgs, u32, "u32", qmp_type_uint32),
    QMP_OPTIONAL(TypedArgs, u64, "u64", qmp_type_size),
    QMP_OPTIONAL(TypedArgs, n, "n", qmp_type_number),
    QMP_OPTIONAL(TypedArgs, mode, "mode", mode_type, .i = 2),
    QMP_OPTIONAL(TypedArgs, inner, "o", inner_type),
    QMP_OPTIONAL(TypedArgs, list, "a", inner_list),
    QMP_OPTIONAL(TypedArgs, refs, "refs", ref_list),
    QMP_OPTIONAL(TypedArgs, any, "any", qmp_type_any));

static void check_inner(const Inner *in)
{
    CHECK(in->node && strlen(in->node) < QMP_FRAMER_MAX_SIZE);
    CHECK(in->has_depth || in->depth == 3);
}

static json_object *cmd_typed(const QmpCall *call, const void *args, GError **errp)
{
    const TypedArgs *a = args;

    CHECK(a->s);
    CHECK(a->has_i || a->i == -5);
    CHECK(a->has_u8 || a->u8 == 200);
    CHECK(a->has_mode || a->mode == 2);
    CHECK(a->mode >= 0 && a->mode < 3);
    CHECK(a->has_inner == (a->inner.node != NULL));
    if (a->has_inner) {
        check_inner(&a->inner);
    }
    CHECK(a->has_list || (!a->list.len && !a->list.items));
    for (size_t i = 0; i < a->list.len; i++) {
        check_inner(&QMP_LIST_AT(&a->list, Inner, i));
    }
    for (size_t i = 0; i < a->refs.len; i++) {
        const Ref *r = &QMP_LIST_AT(&a->refs, Ref, i);

        CHECK(r->kind == 0 ? r->name && !r->inner.node : !r->name);
        if (r->kind == 1) {
            check_inner(&r->inner);
        }
    }
    if (a->fail) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "no such device");
        return NULL;
    }
    return json_object_new_string(a->s);
}

static json_object *cmd_status(const QmpCall *call, const void *args, GError **errp)
{
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "status", "running");
    tern_json_add_bool(o, "singlestep", false);
    tern_json_add_bool(o, "running", true);
    return o;
}

QMP_SHAPE(status_type, "StatusInfo",
    QMP_OUT("status", qmp_type_str), QMP_OUT("singlestep", qmp_type_bool),
    QMP_OUT("running", qmp_type_bool));

static const QmpCommandDef fuzz_commands[] = {
    QMP_COMMAND("typed", cmd_typed, &typed_args, &qmp_type_str),
    QMP_COMMAND("query-status", cmd_status, NULL, &status_type),
};

/* --- transaction actions --------------------------------------------------------- */

static void *act_prepare(const QmpCall *call, const void *data, GError **errp)
{
    const TypedArgs *a = data;

    CHECK(a->s);
    if (a->fail) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "refused");
        return NULL;
    }
    return g_new0(int, 1);
}

static void *inner_prepare(const QmpCall *call, const void *data, GError **errp)
{
    check_inner(data);
    return g_new0(int, 1);
}

static const QmpActionOps fuzz_actions[] = {
    { .type = "act", .args = &typed_args, .prepare = act_prepare, .clean = g_free },
    { .type = "inner", .args = &inner_type, .prepare = inner_prepare, .clean = g_free },
};

/* --- driving ----------------------------------------------------------------------- */

/* A success reply's "return" must have the command's return type. */
static void check_return(FuzzState *st, const char *text, size_t len,
                         json_object *reply)
{
    g_autoptr(json_object) req = tern_json_parse(text, len, 64, NULL);
    json_object *ret = NULL, *cmd = NULL;
    const QmpCommandDef *def;

    if (!json_object_object_get_ex(reply, "return", &ret) ||
        !json_object_object_get_ex(req, "execute", &cmd)) {
        return;
    }
    def = qmp_registry_find(st->reg, json_object_get_string(cmd), NULL);
    CHECK(def);
    CHECK(qmp_type_check(def->ret ? def->ret : &qmp_type_empty, ret, NULL));
}

static bool on_frame(QmpFrameKind kind, const char *text, size_t len, void *opaque)
{
    FuzzState *st = opaque;
    g_autoptr(json_object) reply = NULL;
    g_autofree char *wire = NULL;
    size_t wlen;

    st->replies++;
    if (kind != QMP_FRAME_TEXT) {
        return true;
    }
    reply = qmp_dispatch_text(st->reg, &st->session, text, len);
    /* Every reply is an object that serialises as valid JSON. */
    CHECK(json_object_is_type(reply, json_type_object));
    wire = qmp_to_wire(reply, &wlen);
    g_clear_pointer(&reply, json_object_put);
    reply = tern_json_parse(wire, wlen, 256, NULL);
    CHECK(reply);
    check_return(st, text, len, reply);
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
    for (size_t i = 0; i < G_N_ELEMENTS(fuzz_actions); i++) {
        qmp_register_action(st.reg, &fuzz_actions[i], NULL);
    }
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
