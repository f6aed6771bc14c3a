/*
 * query-qmp-schema against the registry it is written from: exactly the
 * registered commands and events, each command's arguments exactly its
 * table (names, optional, types), every type reference defined once, the
 * transaction union with one variant per registered action, and the reply
 * itself of the SchemaInfo shape the command declares.
 */
#include <string.h>

#include "monitor/hmp.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"

typedef struct Schema {
    json_object *list;
    GHashTable *by_name;        /* name -> entry (borrowed) */
} Schema;

/* --- a registry with every kind of argument ------------------------------------- */

typedef struct Inner {
    char *node;
    bool has_depth;
    uint8_t depth;
} Inner;

typedef struct Args {
    char *s;
    bool has_u32;
    uint32_t u32;
    bool has_mode;
    int mode;
    bool has_list;
    QmpList list;
} Args;

static const char *const modes[] = { "off", "on", NULL };
QMP_ENUM_TYPE(mode_type, "Mode", modes);
QMP_OBJECT_TYPE(inner_type, "Inner", Inner,
    QMP_MEMBER(Inner, node, "node", qmp_type_str),
    QMP_OPTIONAL(Inner, depth, "depth", qmp_type_uint8));
QMP_ARRAY_TYPE(inner_list, inner_type);
QMP_OBJECT_TYPE(args_type, "Args", Args,
    QMP_MEMBER(Args, s, "s", qmp_type_str),
    QMP_OPTIONAL(Args, u32, "u32", qmp_type_uint32),
    QMP_OPTIONAL(Args, mode, "mode", mode_type),
    QMP_OPTIONAL(Args, list, "list", inner_list));

static json_object *cmd_any(const QmpCall *call, const void *args, GError **errp)
{
    return qmp_return_empty();
}

static void *act_prepare(const QmpCall *call, const void *data, GError **errp)
{
    return g_new0(int, 1);
}

static const QmpCommandDef commands[] = {
    QMP_COMMAND("typed", cmd_any, &args_type, NULL),
    QMP_COMMAND("plain", cmd_any, NULL, NULL),
};
static const QmpEventDef events[] = {
    { .name = "EV_PLAIN" }, { .name = "EV_DATA", .data = &inner_type },
};
static const QmpActionOps actions[] = {
    { .type = "act-a", .args = &args_type, .prepare = act_prepare, .clean = g_free },
    { .type = "act-b", .args = &inner_type, .prepare = act_prepare, .clean = g_free },
};

static QmpRegistry *registry(Hmp **hmp)
{
    QmpRegistry *r = qmp_registry_new();

    qmp_register_core_commands(r);
    *hmp = hmp_new(r);
    qmp_register_commands(r, commands, ARRAY_SIZE(commands), NULL);
    qmp_register_events(r, events, ARRAY_SIZE(events));
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        qmp_register_action(r, &actions[i], NULL);
    }
    return r;
}

/* --- reading the schema ----------------------------------------------------------- */

static void schema_load(Schema *sc, QmpRegistry *r)
{
    g_autoptr(GError) err = NULL;
    QmpSession s = { .negotiated = true };
    g_autoptr(json_object) reply =
        qmp_dispatch_text(r, &s, "{\"execute\": \"query-qmp-schema\"}", 32);

    g_assert_true(json_object_object_get_ex(reply, "return", &sc->list));
    json_object_get(sc->list);
    /* The reply has the shape the command declares. */
    g_assert_true(qmp_type_check(&qmp_schema_info_list, sc->list, &err));
    g_assert_no_error(err);
    sc->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < json_object_array_length(sc->list); i++) {
        json_object *e = json_object_array_get_idx(sc->list, i);
        const char *name = json_object_get_string(json_object_object_get(e, "name"));

        /* Each name is defined once. */
        g_assert_false(g_hash_table_contains(sc->by_name, name));
        g_hash_table_insert(sc->by_name, (gpointer)name, e);
    }
}

static void schema_free(Schema *sc)
{
    g_hash_table_destroy(sc->by_name);
    json_object_put(sc->list);
}

static const char *str(json_object *o, const char *name)
{
    json_object *v = json_object_object_get(o, name);

    return v ? json_object_get_string(v) : NULL;
}

static json_object *entry(Schema *sc, const char *name)
{
    json_object *e = g_hash_table_lookup(sc->by_name, name);

    if (!e) {
        g_error("schema has no entry '%s'", name);
    }
    return e;
}

/* Names of the entries of one meta-type, sorted. */
static GPtrArray *names_of(Schema *sc, const char *meta)
{
    GPtrArray *out = g_ptr_array_new();

    for (size_t i = 0; i < json_object_array_length(sc->list); i++) {
        json_object *e = json_object_array_get_idx(sc->list, i);

        if (!strcmp(str(e, "meta-type"), meta)) {
            g_ptr_array_add(out, (gpointer)str(e, "name"));
        }
    }
    return out;
}

static int compare_strp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void assert_same_names(GPtrArray *got, const char **want, size_t n)
{
    g_assert_cmpuint(got->len, ==, n);
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpstr(got->pdata[i], ==, want[i]);
    }
}

/* Every type name an entry mentions is defined. */
static void check_refs(Schema *sc, json_object *e)
{
    static const char *const keys[] = { "arg-type", "ret-type", "element-type",
                                        "type" };

    for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
        if (str(e, keys[k])) {
            entry(sc, str(e, keys[k]));
        }
    }
    json_object_object_foreach(e, key, val) {
        (void)key;
        if (json_object_is_type(val, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(val); i++) {
                json_object *m = json_object_array_get_idx(val, i);

                if (json_object_is_type(m, json_type_object)) {
                    check_refs(sc, m);
                }
            }
        }
    }
}

/* The schema's object entry for t describes t's table exactly. */
static void check_object(Schema *sc, json_object *e, const QmpType *t)
{
    json_object *members = json_object_object_get(e, "members");
    size_t n = 0;

    g_assert_cmpstr(str(e, "meta-type"), ==, "object");
    for (const QmpMember *m = t->members; m->type; m++, n++) {
        json_object *me = json_object_array_get_idx(members, n);
        json_object *te = entry(sc, str(me, "type"));

        g_assert_nonnull(me);
        g_assert_cmpstr(str(me, "name"), ==, m->name);
        g_assert_cmpint(json_object_object_get_ex(me, "default", NULL), ==, m->optional);
        switch (m->type->kind) {
        case QMP_KIND_OBJECT:
            check_object(sc, te, m->type);
            break;
        case QMP_KIND_ENUM:
            g_assert_cmpstr(str(te, "meta-type"), ==, "enum");
            break;
        case QMP_KIND_ARRAY:
            g_assert_cmpstr(str(te, "meta-type"), ==, "array");
            break;
        default:
            g_assert_cmpstr(str(te, "meta-type"), ==, "builtin");
            break;
        }
    }
    g_assert_cmpuint(json_object_array_length(members), ==, n);
}

/* --- tests ---------------------------------------------------------------------- */

static void test_lists_registry(void)
{
    g_autoptr(Hmp) hmp = NULL;
    g_autoptr(QmpRegistry) r = registry(&hmp);
    Schema sc;
    size_t n;
    g_autofree const char **cmds = qmp_registry_names(r, &n);
    g_autofree const char **evs = NULL;
    g_autoptr(GPtrArray) got_cmds = NULL, got_evs = NULL;

    schema_load(&sc, r);
    got_cmds = names_of(&sc, "command");
    g_ptr_array_sort(got_cmds, compare_strp);
    assert_same_names(got_cmds, cmds, n);
    evs = qmp_registry_event_names(r, &n);
    got_evs = names_of(&sc, "event");
    g_ptr_array_sort(got_evs, compare_strp);
    assert_same_names(got_evs, evs, n);
    for (size_t i = 0; i < json_object_array_length(sc.list); i++) {
        check_refs(&sc, json_object_array_get_idx(sc.list, i));
    }
    schema_free(&sc);
}

static void test_arguments_match_tables(void)
{
    g_autoptr(Hmp) hmp = NULL;
    g_autoptr(QmpRegistry) r = registry(&hmp);
    Schema sc;
    size_t n;
    g_autofree const char **cmds = qmp_registry_names(r, &n);

    schema_load(&sc, r);
    for (size_t i = 0; i < n; i++) {
        const QmpCommandDef *def = qmp_registry_find(r, cmds[i], NULL);
        const QmpType *args = qmp_command_args(r, def);
        json_object *e = entry(&sc, cmds[i]);

        if (!args->variants && args != qmp_registry_transaction_args(r)) {
            check_object(&sc, entry(&sc, str(e, "arg-type")), args);
        }
    }
    /* No arguments and no return are QEMU's empty object "0". */
    g_assert_cmpstr(str(entry(&sc, "plain"), "arg-type"), ==, "0");
    g_assert_cmpstr(str(entry(&sc, "plain"), "ret-type"), ==, "0");
    g_assert_cmpstr(str(entry(&sc, "EV_PLAIN"), "arg-type"), ==, "0");
    check_object(&sc, entry(&sc, str(entry(&sc, "EV_DATA"), "arg-type")), &inner_type);
    /* Integer widths are masked as QEMU masks them. */
    g_assert_cmpstr(str(entry(&sc, "int"), "json-type"), ==, "int");
    g_assert_null(g_hash_table_lookup(sc.by_name, "uint32"));
    schema_free(&sc);
}

static void test_transaction_union(void)
{
    g_autoptr(Hmp) hmp = NULL;
    g_autoptr(QmpRegistry) r = registry(&hmp);
    Schema sc;
    json_object *args, *list, *action, *variants;

    schema_load(&sc, r);
    args = entry(&sc, str(entry(&sc, "transaction"), "arg-type"));
    list = entry(&sc, str(json_object_array_get_idx(
                              json_object_object_get(args, "members"), 0), "type"));
    action = entry(&sc, str(list, "element-type"));
    g_assert_cmpstr(str(action, "tag"), ==, "type");
    variants = json_object_object_get(action, "variants");
    g_assert_cmpuint(json_object_array_length(variants), ==, ARRAY_SIZE(actions));
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        json_object *v = json_object_array_get_idx(variants, i);
        json_object *wrap = entry(&sc, str(v, "type"));
        json_object *data = json_object_array_get_idx(
            json_object_object_get(wrap, "members"), 0);

        g_assert_cmpstr(str(v, "case"), ==, actions[i].type);
        g_assert_cmpstr(str(data, "name"), ==, "data");
        check_object(&sc, entry(&sc, str(data, "type")), actions[i].args);
    }
    schema_free(&sc);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-schema/lists-registry", test_lists_registry);
    g_test_add_func("/qmp-schema/arguments-match-tables", test_arguments_match_tables);
    g_test_add_func("/qmp-schema/transaction-union", test_transaction_union);
    return g_test_run();
}
