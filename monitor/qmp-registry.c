/*
 * The command, event and transaction-action tables. Lookups are by exact
 * name in hash tables; entries point at static definitions owned by the
 * registering subsystem. The registry also owns the one type that grows as
 * subsystems register: 'transaction''s arguments, whose TransactionAction
 * union has a variant {"data": <the action's arguments>} per action type.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/qmp-commands.h"
#include "tern/error.h"

/* One variant's type and member table in one allocation. */
typedef struct TxWrapper {
    QmpType type;
    QmpMember members[2];
} TxWrapper;

typedef struct TxTypes {
    GPtrArray *names;           /* action types, NULL-terminated: the enum */
    GArray *variants;           /* QmpVariant, terminated */
    GPtrArray *wrappers;        /* TxWrapper per action */
    QmpType kind;               /* enum TransactionActionKind */
    QmpMember action_members[2];
    QmpType action;             /* union TransactionAction */
    QmpType actions;            /* [TransactionAction] */
    QmpMember args_members[3];
    QmpType args;               /* transaction's arguments */
} TxTypes;

struct QmpRegistry {
    GHashTable *commands;   /* name -> RegEntry */
    GHashTable *actions;    /* type -> RegEntry */
    GHashTable *events;     /* name -> QmpEventDef */
    GHashTable *fds;        /* getfd's name -> descriptor */
    TxTypes tx;
};

typedef struct RegEntry {
    const void *def;        /* QmpCommandDef or QmpActionOps */
    void *opaque;
} RegEntry;

/* --- transaction's argument types -------------------------------------------- */

static const char *const completion_modes[] = { "individual", "grouped", NULL };
static const QmpType completion_mode_type = {
    .name = "ActionCompletionMode", .kind = QMP_KIND_ENUM, .size = sizeof(int),
    .values = completion_modes,
};

QMP_OBJECT_TYPE(tx_properties_type, "TransactionProperties", QmpTransactionProps,
    QMP_OPTIONAL(QmpTransactionProps, completion_mode, "completion-mode",
                 completion_mode_type, .i = QMP_COMPLETION_INDIVIDUAL));

static void tx_types_init(TxTypes *tx)
{
    QmpVariant end = { 0 };

    tx->names = g_ptr_array_new();
    g_ptr_array_add(tx->names, NULL);
    tx->variants = g_array_new(FALSE, TRUE, sizeof(QmpVariant));
    g_array_append_val(tx->variants, end);
    tx->wrappers = g_ptr_array_new_with_free_func(g_free);
    tx->kind = (QmpType){
        .name = "TransactionActionKind", .kind = QMP_KIND_ENUM, .size = sizeof(int),
        .values = (const char *const *)tx->names->pdata,
    };
    tx->action_members[0] = (QmpMember){
        .name = "type", .type = &tx->kind,
        .offset = offsetof(QmpTransactionAction, type),
    };
    tx->action = (QmpType){
        .name = "TransactionAction", .kind = QMP_KIND_OBJECT,
        .size = sizeof(QmpTransactionAction), .members = tx->action_members,
        .tag = "type", .variants = (const QmpVariant *)tx->variants->data,
        .variant_offset = offsetof(QmpTransactionAction, data),
    };
    tx->actions = (QmpType){
        .name = "[TransactionAction]", .kind = QMP_KIND_ARRAY,
        .size = sizeof(QmpList), .element = &tx->action,
    };
    tx->args_members[0] = (QmpMember)QMP_MEMBER(QmpTransactionArgs, actions,
                                                "actions", tx->actions);
    tx->args_members[1] = (QmpMember)QMP_OPTIONAL(QmpTransactionArgs, properties,
                                                  "properties", tx_properties_type);
    tx->args = (QmpType){
        .name = "transaction-arg", .kind = QMP_KIND_OBJECT,
        .size = sizeof(QmpTransactionArgs), .members = tx->args_members,
    };
}

static void tx_types_add(TxTypes *tx, const QmpActionOps *ops)
{
    TxWrapper *w = g_new0(TxWrapper, 1);
    QmpVariant v = { 0 };

    w->members[0] = (QmpMember){ .name = "data", .type = ops->args };
    w->type = (QmpType){ .name = ops->type, .kind = QMP_KIND_OBJECT,
                         .size = ops->args->size, .members = w->members };
    g_ptr_array_add(tx->wrappers, w);
    tx->names->pdata[tx->names->len - 1] = (gpointer)ops->type;
    g_ptr_array_add(tx->names, NULL);
    v.tag_value = ops->type;
    v.type = &w->type;
    g_array_insert_val(tx->variants, tx->variants->len - 1, v);
    /* Both arrays may have moved. */
    tx->kind.values = (const char *const *)tx->names->pdata;
    tx->action.variants = (const QmpVariant *)tx->variants->data;
}

static void tx_types_destroy(TxTypes *tx)
{
    g_ptr_array_unref(tx->names);
    g_array_unref(tx->variants);
    g_ptr_array_unref(tx->wrappers);
}

const QmpType *qmp_registry_transaction_args(const QmpRegistry *r)
{
    return &r->tx.args;
}

/* --- the tables ----------------------------------------------------------------- */

static void close_fd(gpointer p)
{
    close(GPOINTER_TO_INT(p));
}

void qmp_registry_set_fd(QmpRegistry *r, const char *name, int fd)
{
    g_hash_table_replace(r->fds, g_strdup(name), GINT_TO_POINTER(fd));
}

int qmp_registry_take_fd(QmpRegistry *r, const char *name)
{
    gpointer key, value;

    if (!g_hash_table_steal_extended(r->fds, name, &key, &value)) {
        return -1;
    }
    g_free(key);
    return GPOINTER_TO_INT(value);
}

bool qmp_registry_close_fd(QmpRegistry *r, const char *name)
{
    return g_hash_table_remove(r->fds, name);
}

QmpRegistry *qmp_registry_new(void)
{
    QmpRegistry *r = g_new0(QmpRegistry, 1);

    r->commands = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    r->actions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    r->events = g_hash_table_new(g_str_hash, g_str_equal);
    r->fds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, close_fd);
    tx_types_init(&r->tx);
    return r;
}

void qmp_registry_free(QmpRegistry *r)
{
    if (r) {
        g_hash_table_destroy(r->commands);
        g_hash_table_destroy(r->actions);
        g_hash_table_destroy(r->events);
        g_hash_table_destroy(r->fds);
        tx_types_destroy(&r->tx);
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

void qmp_register_events(QmpRegistry *r, const QmpEventDef *defs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (g_hash_table_contains(r->events, defs[i].name)) {
            tern_die("QMP: event '%s' registered twice", defs[i].name);
        }
        g_hash_table_insert(r->events, (gpointer)defs[i].name, (gpointer)&defs[i]);
    }
}

void qmp_register_action(QmpRegistry *r, const QmpActionOps *ops, void *opaque)
{
    registry_insert(r->actions, ops->type, ops, opaque);
    tx_types_add(&r->tx, ops);
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

const QmpActionOps *qmp_registry_action_at(const QmpRegistry *r, int index,
                                           void **opaque)
{
    g_assert(index >= 0 && (guint)index + 1 < r->tx.names->len);
    return qmp_registry_find_action(r, r->tx.names->pdata[index], opaque);
}

const QmpEventDef *qmp_registry_find_event(const QmpRegistry *r, const char *name)
{
    return g_hash_table_lookup(r->events, name);
}

const QmpType *qmp_command_args(const QmpRegistry *r, const QmpCommandDef *def)
{
    if (def->args_of) {
        return def->args_of(r);
    }
    return def->args ? def->args : &qmp_type_empty;
}

static int compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char **sorted_keys(GHashTable *table, size_t *n)
{
    guint len = 0;
    const char **names = (const char **)g_hash_table_get_keys_as_array(table, &len);

    qsort(names, len, sizeof(*names), compare_names);
    *n = len;
    return names;
}

const char **qmp_registry_names(const QmpRegistry *r, size_t *n)
{
    return sorted_keys(r->commands, n);
}

const char **qmp_registry_event_names(const QmpRegistry *r, size_t *n)
{
    return sorted_keys(r->events, n);
}

json_object *qmp_return_empty(void)
{
    return json_object_new_object();
}
