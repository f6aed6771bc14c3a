/*
 * The QMP command registry: every command tern answers (name, handler, argument
 * schema) and every 'transaction' action type. Subsystems register their commands
 * at start-up; query-commands and the dispatcher read this table, so a command is
 * added in exactly one place. Argument checking follows QEMU's QAPI visitor, so
 * bad arguments get QEMU's wording ("Parameter 'x' is missing", ...).
 */
#ifndef MONITOR_QMP_REGISTRY_H
#define MONITOR_QMP_REGISTRY_H

#include <json-glib/json-glib.h>

#include "tern/common.h"

typedef struct QmpRegistry QmpRegistry;
typedef struct QmpSession QmpSession;

typedef enum {
    QMP_ARG_STR,
    QMP_ARG_BOOL,
    QMP_ARG_INT,        /* int64 */
    QMP_ARG_UINT32,
    QMP_ARG_UINT64,
    QMP_ARG_NUMBER,     /* int or float */
    QMP_ARG_OBJECT,     /* checked by the handler */
    QMP_ARG_ARRAY,      /* checked by the handler */
    QMP_ARG_ANY,
} QmpArgType;

typedef struct QmpArgSpec {
    const char *name;   /* NULL ends a spec array */
    QmpArgType type;
    bool optional;
} QmpArgSpec;

/* What a handler is called with besides its arguments. */
typedef struct QmpCall {
    QmpRegistry *registry;
    QmpSession *session;    /* the client's session; NULL for internal calls (HMP) */
    void *opaque;           /* given at registration */
} QmpCall;

/*
 * A command handler returns the "return" value (a new node; an empty object for
 * commands that return nothing) or NULL with *errp set. Arguments have already
 * passed the command's QmpArgSpec, so scalar members have the declared types.
 */
typedef JsonNode *(*QmpCommandFunc)(const QmpCall *call, JsonObject *args,
                                    GError **errp);

enum {
    QMP_CMD_BEFORE_NEGOTIATION = 1 << 0,   /* only qmp_capabilities */
};

typedef struct QmpCommandDef {
    const char *name;
    QmpCommandFunc func;
    const QmpArgSpec *args;     /* NULL: takes no arguments */
    unsigned flags;
} QmpCommandDef;

/*
 * A transaction action: prepare does all checks and may do the work in an
 * undoable way; after every action prepared, commit makes it final, otherwise
 * abort undoes it. clean frees the state whatever happened. Only prepare fails:
 * it returns the action's state (never NULL on success) or NULL with *errp set.
 */
typedef struct QmpActionOps {
    const char *type;
    const QmpArgSpec *args;     /* the schema of its "data" member */
    void *(*prepare)(const QmpCall *call, JsonObject *data, GError **errp);
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
void qmp_register_action(QmpRegistry *r, const QmpActionOps *ops, void *opaque);

/* NULL if unknown. */
const QmpCommandDef *qmp_registry_find(const QmpRegistry *r, const char *name,
                                       void **opaque);
const QmpActionOps *qmp_registry_find_action(const QmpRegistry *r,
                                             const char *type, void **opaque);
/* Command names, sorted; free the array (not the strings) with g_free. */
const char **qmp_registry_names(const QmpRegistry *r, size_t *n);

/*
 * Checks obj against spec as QEMU's input visitor does: members in spec order
 * (missing, wrong type, out of range), then any member the spec lacks. 'path'
 * prefixes member names in messages ("actions[1].data" gives
 * "Parameter 'actions[1].data.name' is missing"); NULL or "" for top level.
 */
bool qmp_check_args(JsonObject *obj, const QmpArgSpec *spec, const char *path,
                    GError **errp);

/* Typed getters for members already checked; defaults for absent optionals. */
const char *qmp_arg_str(JsonObject *args, const char *name, const char *def);
bool qmp_arg_bool(JsonObject *args, const char *name, bool def);
int64_t qmp_arg_int(JsonObject *args, const char *name, int64_t def);
bool qmp_arg_has(JsonObject *args, const char *name);

/* A new empty-object node: the "return" of commands that return nothing. */
JsonNode *qmp_return_empty(void);

#endif
