/*
 * The QMP command registry: every command tern answers (name, handler,
 * argument and return types), every event it sends (name, data type) and
 * every 'transaction' action type. Subsystems register theirs at start-up;
 * the dispatcher, query-commands and query-qmp-schema read this table, so a
 * command is one argument table (qmp-types.h) plus one handler.
 */
#ifndef MONITOR_QMP_REGISTRY_H
#define MONITOR_QMP_REGISTRY_H

#include "monitor/qmp-types.h"
#include "tern/common.h"

typedef struct QmpRegistry QmpRegistry;
typedef struct QmpSession QmpSession;

/* What a handler is called with besides its arguments. */
typedef struct QmpCall {
    QmpRegistry *registry;
    QmpSession *session;    /* the client's session; NULL for internal calls (HMP) */
    void *opaque;           /* given at registration */
} QmpCall;

/*
 * A command handler gets its arguments decoded into the C struct its
 * argument type describes (a pointer to it; an empty struct for commands
 * without arguments) and returns the "return" value (a new reference; an
 * empty object for commands that return nothing) or NULL with *errp set.
 */
typedef json_object *(*QmpCommandFunc)(const QmpCall *call, const void *args,
                                       GError **errp);

typedef struct QmpCommandDef {
    const char *name;
    QmpCommandFunc func;
    const QmpType *args;        /* an object type; NULL: takes no arguments */
    const QmpType *ret;         /* NULL: returns {} */
    /* Instead of args, for arguments that depend on what is registered
     * (transaction's actions). */
    const QmpType *(*args_of)(const QmpRegistry *r);
} QmpCommandDef;

/* A table line: name, handler, argument type, return type (NULL: none/{}). */
#define QMP_COMMAND(n, f, a, r) { .name = (n), .func = (f), .args = (a), .ret = (r) }

typedef struct QmpEventDef {
    const char *name;
    const QmpType *data;        /* an object type; NULL: carries no data */
} QmpEventDef;

/*
 * A transaction action: prepare does all checks and may do the work in an
 * undoable way; after every action prepared, commit makes it final, otherwise
 * abort undoes it. clean frees the state whatever happened. Only prepare fails:
 * it returns the action's state (never NULL on success) or NULL with *errp set.
 * 'data' is the action's "data" member decoded as 'args' describes.
 */
typedef struct QmpActionOps {
    const char *type;
    const QmpType *args;        /* the type of its "data" member */
    void *(*prepare)(const QmpCall *call, const void *data, GError **errp);
    void (*commit)(void *state);
    void (*abort)(void *state);
    void (*clean)(void *state);
} QmpActionOps;

QmpRegistry *qmp_registry_new(void);
void qmp_registry_free(QmpRegistry *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpRegistry, qmp_registry_free)

/* def (and what it points to) must outlive the registry: use static tables.
 * Registering a name twice is a programming error and dies. */
void qmp_register_command(QmpRegistry *r, const QmpCommandDef *def, void *opaque);
void qmp_register_commands(QmpRegistry *r, const QmpCommandDef *defs, size_t n,
                           void *opaque);
void qmp_register_events(QmpRegistry *r, const QmpEventDef *defs, size_t n);
/*
 * The monitor's named file descriptors (QMP getfd): set replaces (and
 * closes) one of the same name; take hands the descriptor over to the
 * caller (-1 if there is none); close closes it (false if there is none).
 * What is left is closed with the registry.
 */
void qmp_registry_set_fd(QmpRegistry *r, const char *name, int fd);
int qmp_registry_take_fd(QmpRegistry *r, const char *name);
bool qmp_registry_close_fd(QmpRegistry *r, const char *name);

/* Adds a variant to the TransactionAction union the 'transaction' command
 * decodes its actions with. */
void qmp_register_action(QmpRegistry *r, const QmpActionOps *ops, void *opaque);

/* NULL if unknown. */
const QmpCommandDef *qmp_registry_find(const QmpRegistry *r, const char *name,
                                       void **opaque);
const QmpActionOps *qmp_registry_find_action(const QmpRegistry *r,
                                             const char *type, void **opaque);
/* The action a decoded TransactionAction's type index names. */
const QmpActionOps *qmp_registry_action_at(const QmpRegistry *r, int index,
                                           void **opaque);
const QmpEventDef *qmp_registry_find_event(const QmpRegistry *r, const char *name);
/* Command (event) names, sorted; free the array (not the strings) with g_free. */
const char **qmp_registry_names(const QmpRegistry *r, size_t *n);
const char **qmp_registry_event_names(const QmpRegistry *r, size_t *n);

/* The type of 'transaction''s arguments: its actions are a union over the
 * registered action types, so it grows as actions register. */
const QmpType *qmp_registry_transaction_args(const QmpRegistry *r);
/* A command's argument type (the empty object if it takes none). */
const QmpType *qmp_command_args(const QmpRegistry *r, const QmpCommandDef *def);

/* A new empty object: the "return" of commands that return nothing. */
json_object *qmp_return_empty(void);

#endif
