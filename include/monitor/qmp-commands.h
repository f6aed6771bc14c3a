/*
 * Registration entry points: each subsystem adds its QMP commands (and
 * transaction actions) to the one registry. The protocol-level commands live
 * in libternmonitor; commands that drive the machine or the block layer live in
 * libterncore and are registered by the machine's start-up code.
 */
#ifndef MONITOR_QMP_COMMANDS_H
#define MONITOR_QMP_COMMANDS_H

#include "monitor/qmp-registry.h"

/* qmp_capabilities, query-version, query-commands, query-qmp-schema,
 * transaction. */
void qmp_register_core_commands(QmpRegistry *r);

/* 'transaction''s arguments (the registry builds their type). */
typedef struct QmpTransactionAction {
    int type;                   /* index into the registered action types */
    void *data;                 /* the action's arguments, as its type says */
} QmpTransactionAction;

typedef enum {
    QMP_COMPLETION_INDIVIDUAL,
    QMP_COMPLETION_GROUPED,
} QmpCompletionMode;

typedef struct QmpTransactionProps {
    bool has_completion_mode;
    int completion_mode;        /* QmpCompletionMode */
} QmpTransactionProps;

typedef struct QmpTransactionArgs {
    QmpList actions;            /* of QmpTransactionAction */
    bool has_properties;
    QmpTransactionProps properties;
} QmpTransactionArgs;

/*
 * Runs a 'transaction' request's actions all-or-nothing: the dispatcher has
 * decoded every action's data already; they are prepared in order, and if
 * one prepare fails, the prepared ones are aborted in reverse order and
 * nothing changes.
 */
json_object *qmp_cmd_transaction(const QmpCall *call, const void *args,
                                 GError **errp);

/* query-qmp-schema's reply, from the registry (qmp-schema.c). */
json_object *qmp_schema(const QmpRegistry *r);
/* The schema's own return type, [SchemaInfo]. */
extern const QmpType qmp_schema_info_list;

#endif
