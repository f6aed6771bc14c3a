/*
 * The command and transaction-action tables, and QAPI-style argument checks.
 * Lookups are by exact name in two hash tables; entries point at static
 * definitions owned by the registering subsystem.
 */
#include <stdlib.h>
#include <string.h>

#include "monitor/qmp-registry.h"
#include "tern/error.h"

struct QmpRegistry {
    GHashTable *commands;   /* name -> RegEntry */
    GHashTable *actions;    /* type -> RegEntry */
};

typedef struct RegEntry {
    const void *def;        /* QmpCommandDef or QmpActionOps */
    void *opaque;
} RegEntry;

QmpRegistry *qmp_registry_new(void)
{
    QmpRegistry *r = g_new0(QmpRegistry, 1);

    r->commands = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    r->actions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    return r;
}

void qmp_registry_free(QmpRegistry *r)
{
    if (r) {
        g_hash_table_destroy(r->commands);
        g_hash_table_destroy(r->actions);
        g_free(r);
    }
}

static void registry_insert(GHashTable *table, const char *name, const void *def,
                            void *opaque)
{
    RegEntry *e = g_new(RegEntry, 1);

    if (g_hash_table_contains(table, name)) {
        tern_die("QMP: '%s' registered twice", name);
    }
    e->def = def;
    e->opaque = opaque;
    g_hash_table_insert(table, (gpointer)name, e);
}

void qmp_register_command(QmpRegistry *r, const QmpCommandDef *def, void *opaque)
{
    registry_insert(r->commands, def->name, def, opaque);
}

void qmp_register_commands(QmpRegistry *r, const QmpCommandDef *defs, size_t n,
                           void *opaque)
{
    for (size_t i = 0; i < n; i++) {
        qmp_register_command(r, &defs[i], opaque);
    }
}

void qmp_register_action(QmpRegistry *r, const QmpActionOps *ops, void *opaque)
{
    registry_insert(r->actions, ops->type, ops, opaque);
}

static const void *registry_lookup(GHashTable *table, const char *name,
                                   void **opaque)
{
    RegEntry *e = g_hash_table_lookup(table, name);

    if (!e) {
        return NULL;
    }
    if (opaque) {
        *opaque = e->opaque;
    }
    return e->def;
}

const QmpCommandDef *qmp_registry_find(const QmpRegistry *r, const char *name,
                                       void **opaque)
{
    return registry_lookup(r->commands, name, opaque);
}

const QmpActionOps *qmp_registry_find_action(const QmpRegistry *r,
                                             const char *type, void **opaque)
{
    return registry_lookup(r->actions, type, opaque);
}

static int compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **qmp_registry_names(const QmpRegistry *r, size_t *n)
{
    guint len = 0;
    const char **names =
        (const char **)g_hash_table_get_keys_as_array(r->commands, &len);

    qsort(names, len, sizeof(*names), compare_names);
    *n = len;
    return names;
}

/* --- argument checks ------------------------------------------------------ */

static char *member_path(const char *path, const char *name)
{
    return path && *path ? g_strdup_printf("%s.%s", path, name) : g_strdup(name);
}

static const char *type_expected(QmpArgType t)
{
    switch (t) {
    case QMP_ARG_STR: return "string";
    case QMP_ARG_BOOL: return "boolean";
    case QMP_ARG_OBJECT: return "object";
    case QMP_ARG_ARRAY: return "array";
    case QMP_ARG_NUMBER: return "number";
    default: return "integer";
    }
}

static bool node_is_int(JsonNode *n)
{
    return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

/* QEMU words unsigned failures differently from other type mismatches. */
static bool check_unsigned(JsonNode *n, QmpArgType t, const char *what,
                           GError **errp)
{
    if (!node_is_int(n)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Parameter '%s' expects uint64", what);
        return false;
    }
    if (json_node_get_int(n) < 0 ||
        (t == QMP_ARG_UINT32 && json_node_get_int(n) > UINT32_MAX)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "Parameter '%s' expects %s",
                    what, t == QMP_ARG_UINT32 ? "uint32_t" : "uint64");
        return false;
    }
    return true;
}

static bool type_matches(JsonNode *n, QmpArgType t)
{
    GType vt = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_NONE;

    switch (t) {
    case QMP_ARG_STR: return vt == G_TYPE_STRING;
    case QMP_ARG_BOOL: return vt == G_TYPE_BOOLEAN;
    case QMP_ARG_INT: return vt == G_TYPE_INT64;
    case QMP_ARG_NUMBER: return vt == G_TYPE_INT64 || vt == G_TYPE_DOUBLE;
    case QMP_ARG_OBJECT: return JSON_NODE_HOLDS_OBJECT(n);
    case QMP_ARG_ARRAY: return JSON_NODE_HOLDS_ARRAY(n);
    default: return true;
    }
}

static bool check_member(JsonObject *obj, const QmpArgSpec *a, const char *path,
                         GError **errp)
{
    JsonNode *n = json_object_get_member(obj, a->name);
    g_autofree char *what = member_path(path, a->name);

    if (!n) {
        if (!a->optional) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "Parameter '%s' is missing", what);
            return false;
        }
        return true;
    }
    if (a->type == QMP_ARG_UINT32 || a->type == QMP_ARG_UINT64) {
        return check_unsigned(n, a->type, what, errp);
    }
    if (!type_matches(n, a->type)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Invalid parameter type for '%s', expected: %s", what,
                    type_expected(a->type));
        return false;
    }
    return true;
}

static bool spec_has(const QmpArgSpec *spec, const char *name)
{
    for (; spec && spec->name; spec++) {
        if (!strcmp(spec->name, name)) {
            return true;
        }
    }
    return false;
}

bool qmp_check_args(JsonObject *obj, const QmpArgSpec *spec, const char *path,
                    GError **errp)
{
    g_autoptr(GList) members = NULL;

    for (const QmpArgSpec *a = spec; a && a->name; a++) {
        if (!check_member(obj, a, path, errp)) {
            return false;
        }
    }
    members = json_object_get_members(obj);
    for (GList *l = members; l; l = l->next) {
        if (!spec_has(spec, l->data)) {
            g_autofree char *what = member_path(path, l->data);

            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "Parameter '%s' is unexpected", what);
            return false;
        }
    }
    return true;
}

bool qmp_arg_has(JsonObject *args, const char *name)
{
    return args && json_object_has_member(args, name);
}

const char *qmp_arg_str(JsonObject *args, const char *name, const char *def)
{
    return qmp_arg_has(args, name) ? json_object_get_string_member(args, name) : def;
}

bool qmp_arg_bool(JsonObject *args, const char *name, bool def)
{
    return qmp_arg_has(args, name) ? json_object_get_boolean_member(args, name) : def;
}

int64_t qmp_arg_int(JsonObject *args, const char *name, int64_t def)
{
    return qmp_arg_has(args, name) ? json_object_get_int_member(args, name) : def;
}

JsonNode *qmp_return_empty(void)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(n, json_object_new());
    return n;
}
