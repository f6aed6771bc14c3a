/*
 * Registration entry points: each subsystem adds its QMP commands (and
 * transaction actions) to the one registry. The protocol-level commands live
 * in libternmonitor; commands that drive the machine or the block layer live in
 * libterncore and are registered by the machine's start-up code.
 */
#ifndef MONITOR_QMP_COMMANDS_H
#define MONITOR_QMP_COMMANDS_H

#include "monitor/qmp-registry.h"

/* qmp_capabilities, query-version, query-commands, transaction. */
void qmp_register_core_commands(QmpRegistry *r);

/*
 * Runs a 'transaction' request's actions all-or-nothing: every action's data
 * is checked first, then prepared in order; if one prepare fails, the prepared
 * ones are aborted in reverse order and nothing changes.
 */
JsonNode *qmp_cmd_transaction(const QmpCall *call, JsonObject *args, GError **errp);

#endif
