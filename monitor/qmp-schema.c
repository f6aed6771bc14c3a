/*
 * query-qmp-schema in QEMU's introspection format (SchemaInfo), written from
 * the registry's tables: one entry per command and event, then one per type
 * they reach. As QEMU does, type names are masked: builtins keep their JSON
 * names ("str", "int" for every integer type, "number", "bool", "any",
 * "null"), arrays are "[<element>]", every other type is a number, "0"
 * being the empty object. Optional members carry "default": null, QEMU's
 * mark for them.
 */
#include <string.h>

#include "monitor/qmp-commands.h"

typedef struct Schema {
    const QmpRegistry *registry;
    GHashTable *names;          /* QmpType * -> its masked name */
    GHashTable *written;        /* masked names queued, each once */
    GPtrArray *pending;         /* types named but not yet written */
    unsigned next;
    json_object *out;
} Schema;

static const char *builtin_json_type(QmpKind k)
{
    switch (k) {
    case QMP_KIND_STR: return "string";
    case QMP_KIND_BOOL: return "boolean";
    case QMP_KIND_NUMBER: return "number";
    case QMP_KIND_ANY: return "value";
    case QMP_KIND_NULL: return "null";
    case QMP_KIND_INT:
    case QMP_KIND_UINT8:
    case QMP_KIND_UINT32:
    case QMP_KIND_UINT64:
        return "int";
    default:
        return NULL;
    }
}

static const char *builtin_name(QmpKind k)
{
    const char *jt = builtin_json_type(k);

    if (!jt) {
        return NULL;
    }
    return !strcmp(jt, "string") ? "str" : !strcmp(jt, "boolean") ? "bool" :
           !strcmp(jt, "value") ? "any" : jt;
}

/* The masked name of t, queueing t to be written if it is new. */
static const char *type_name(Schema *sc, const QmpType *t)
{
    const char *name = g_hash_table_lookup(sc->names, t);

    if (name) {
        return name;
    }
    if (builtin_name(t->kind)) {
        name = g_strdup(builtin_name(t->kind));
    } else if (t->kind == QMP_KIND_ARRAY) {
        name = g_strdup_printf("[%s]", type_name(sc, t->element));
    } else {
        name = g_strdup_printf("%u", sc->next++);
    }
    g_hash_table_insert(sc->names, (gpointer)t, (gpointer)name);
    /* Types that mask to one name (every integer width is "int") are
     * written once. */
    if (g_hash_table_add(sc->written, (gpointer)name)) {
        g_ptr_array_add(sc->pending, (gpointer)t);
    }
    return name;
}

static json_object *entry(const char *name, const char *meta)
{
    json_object *e = json_object_new_object();

    tern_json_add_str(e, "name", name);
    tern_json_add_str(e, "meta-type", meta);
    return e;
}

static json_object *object_members(Schema *sc, const QmpMember *members)
{
    json_object *list = json_object_new_array();

    for (const QmpMember *m = members; m && m->type; m++) {
        json_object *o = json_object_new_object();

        tern_json_add_str(o, "name", m->name);
        tern_json_add_str(o, "type", type_name(sc, m->type));
        if (m->optional) {
            json_object_object_add(o, "default", NULL);
        }
        json_object_array_add(list, o);
    }
    return list;
}

static void object_variants(Schema *sc, const QmpType *t, json_object *e)
{
    json_object *list = json_object_new_array();

    for (const QmpVariant *v = t->variants; v->tag_value; v++) {
        json_object *o = json_object_new_object();

        tern_json_add_str(o, "case", v->tag_value);
        tern_json_add_str(o, "type", type_name(sc, v->type));
        json_object_array_add(list, o);
    }
    tern_json_add_str(e, "tag", t->tag);
    json_object_object_add(e, "variants", list);
}

static json_object *enum_entry(const QmpType *t, const char *name)
{
    json_object *e = entry(name, "enum");
    json_object *members = json_object_new_array();
    json_object *values = json_object_new_array();

    for (const char *const *v = t->values; *v; v++) {
        json_object *m = json_object_new_object();

        tern_json_add_str(m, "name", *v);
        json_object_array_add(members, m);
        json_object_array_add(values, json_object_new_string(*v));
    }
    json_object_object_add(e, "members", members);
    json_object_object_add(e, "values", values);
    return e;
}

static json_object *alternate_entry(Schema *sc, const QmpType *t, const char *name)
{
    json_object *e = entry(name, "alternate");
    json_object *members = json_object_new_array();

    for (const QmpMember *m = t->members; m->type; m++) {
        json_object *o = json_object_new_object();

        tern_json_add_str(o, "type", type_name(sc, m->type));
        json_object_array_add(members, o);
    }
    json_object_object_add(e, "members", members);
    return e;
}

static json_object *type_entry(Schema *sc, const QmpType *t)
{
    const char *name = g_hash_table_lookup(sc->names, t);
    json_object *e;

    switch (t->kind) {
    case QMP_KIND_ENUM:
        return enum_entry(t, name);
    case QMP_KIND_ALTERNATE:
        return alternate_entry(sc, t, name);
    case QMP_KIND_ARRAY:
        e = entry(name, "array");
        tern_json_add_str(e, "element-type", type_name(sc, t->element));
        return e;
    case QMP_KIND_OBJECT:
        e = entry(name, "object");
        json_object_object_add(e, "members", object_members(sc, t->members));
        if (t->variants) {
            object_variants(sc, t, e);
        }
        return e;
    default:
        e = entry(name, "builtin");
        tern_json_add_str(e, "json-type", builtin_json_type(t->kind));
        return e;
    }
}

static void add_commands(Schema *sc)
{
    size_t n;
    g_autofree const char **names = qmp_registry_names(sc->registry, &n);

    for (size_t i = 0; i < n; i++) {
        const QmpCommandDef *def = qmp_registry_find(sc->registry, names[i], NULL);
        json_object *e = entry(def->name, "command");
        const QmpType *args = qmp_command_args(sc->registry, def);
        const QmpType *ret = def->ret ? def->ret : &qmp_type_empty;

        tern_json_add_str(e, "arg-type", type_name(sc, args));
        tern_json_add_str(e, "ret-type", type_name(sc, ret));
        json_object_array_add(sc->out, e);
    }
}

static void add_events(Schema *sc)
{
    size_t n;
    g_autofree const char **names = qmp_registry_event_names(sc->registry, &n);

    for (size_t i = 0; i < n; i++) {
        const QmpEventDef *def = qmp_registry_find_event(sc->registry, names[i]);
        json_object *e = entry(def->name, "event");
        const QmpType *data = def->data ? def->data : &qmp_type_empty;

        tern_json_add_str(e, "arg-type", type_name(sc, data));
        json_object_array_add(sc->out, e);
    }
}

json_object *qmp_schema(const QmpRegistry *r)
{
    Schema sc = {
        .registry = r,
        .names = g_hash_table_new_full(NULL, NULL, NULL, g_free),
        .written = g_hash_table_new(g_str_hash, g_str_equal),
        .pending = g_ptr_array_new(),
        .out = json_object_new_array(),
    };

    type_name(&sc, &qmp_type_empty);        /* "0", as in QEMU */
    add_commands(&sc);
    add_events(&sc);
    /* Writing a type may name more: pending grows while it is walked. */
    for (guint i = 0; i < sc.pending->len; i++) {
        json_object_array_add(sc.out, type_entry(&sc, sc.pending->pdata[i]));
    }
    g_ptr_array_unref(sc.pending);
    g_hash_table_destroy(sc.written);
    g_hash_table_destroy(sc.names);
    return sc.out;
}

/* --- SchemaInfo, the shape of the reply above ------------------------------------ */

static const QmpType str_list = {
    .name = "[str]", .kind = QMP_KIND_ARRAY, .element = &qmp_type_str,
};
static const char *const meta_types[] = {
    "builtin", "enum", "array", "object", "alternate", "command", "event", NULL,
};
static const QmpType meta_type = {
    .name = "SchemaMetaType", .kind = QMP_KIND_ENUM, .values = meta_types,
};
static const char *const json_types[] = {
    "string", "number", "int", "boolean", "null", "object", "array", "value", NULL,
};
static const QmpType json_type_enum = {
    .name = "JSONType", .kind = QMP_KIND_ENUM, .values = json_types,
};

QMP_SHAPE(info_builtin, "SchemaInfoBuiltin",
    QMP_OUT("json-type", json_type_enum));
QMP_SHAPE(info_enum_member, "SchemaInfoEnumMember",
    QMP_OUT("name", qmp_type_str), QMP_OUT_OPT("features", str_list));
static const QmpType info_enum_member_list = {
    .name = "[SchemaInfoEnumMember]", .kind = QMP_KIND_ARRAY,
    .element = &info_enum_member,
};
QMP_SHAPE(info_enum, "SchemaInfoEnum",
    QMP_OUT("members", info_enum_member_list), QMP_OUT("values", str_list));
QMP_SHAPE(info_array, "SchemaInfoArray",
    QMP_OUT("element-type", qmp_type_str));
QMP_SHAPE(info_object_member, "SchemaInfoObjectMember",
    QMP_OUT("name", qmp_type_str), QMP_OUT("type", qmp_type_str),
    QMP_OUT_OPT("default", qmp_type_any), QMP_OUT_OPT("features", str_list));
static const QmpType info_object_member_list = {
    .name = "[SchemaInfoObjectMember]", .kind = QMP_KIND_ARRAY,
    .element = &info_object_member,
};
QMP_SHAPE(info_object_variant, "SchemaInfoObjectVariant",
    QMP_OUT("case", qmp_type_str), QMP_OUT("type", qmp_type_str));
static const QmpType info_object_variant_list = {
    .name = "[SchemaInfoObjectVariant]", .kind = QMP_KIND_ARRAY,
    .element = &info_object_variant,
};
QMP_SHAPE(info_object, "SchemaInfoObject",
    QMP_OUT("members", info_object_member_list), QMP_OUT_OPT("tag", qmp_type_str),
    QMP_OUT_OPT("variants", info_object_variant_list));
QMP_SHAPE(info_alternate_member, "SchemaInfoAlternateMember",
    QMP_OUT("type", qmp_type_str));
static const QmpType info_alternate_member_list = {
    .name = "[SchemaInfoAlternateMember]", .kind = QMP_KIND_ARRAY,
    .element = &info_alternate_member,
};
QMP_SHAPE(info_alternate, "SchemaInfoAlternate",
    QMP_OUT("members", info_alternate_member_list));
QMP_SHAPE(info_command, "SchemaInfoCommand",
    QMP_OUT("arg-type", qmp_type_str), QMP_OUT("ret-type", qmp_type_str),
    QMP_OUT_OPT("allow-oob", qmp_type_bool));
QMP_SHAPE(info_event, "SchemaInfoEvent",
    QMP_OUT("arg-type", qmp_type_str));

static const QmpVariant info_variants[] = {
    { "builtin", &info_builtin }, { "enum", &info_enum },
    { "array", &info_array }, { "object", &info_object },
    { "alternate", &info_alternate }, { "command", &info_command },
    { "event", &info_event }, { NULL },
};
static const QmpMember info_members[] = {
    QMP_OUT("name", qmp_type_str), QMP_OUT("meta-type", meta_type),
    QMP_OUT_OPT("features", str_list), QMP_END,
};
static const QmpType schema_info = {
    .name = "SchemaInfo", .kind = QMP_KIND_OBJECT, .members = info_members,
    .tag = "meta-type", .variants = info_variants,
};
const QmpType qmp_schema_info_list = {
    .name = "[SchemaInfo]", .kind = QMP_KIND_ARRAY, .element = &schema_info,
};
