/*
 * The migration QMP commands (migrate, migrate-incoming, migrate_cancel,
 * query-migrate, migrate-set-/query-migrate-capabilities and -parameters,
 * and the test aid x-ram-sha256) and the MIGRATION / MIGRATION_PASS events,
 * over the VMM's MigrationState (include/migration/migration.h).
 */
#ifndef MONITOR_QMP_MIGRATION_H
#define MONITOR_QMP_MIGRATION_H

#include "migration/migration.h"
#include "monitor/monitor.h"

/* Registers the commands and routes the events to 'mon'; both must outlive
 * the registry's use (the main program frees them after the main loop). */
void qmp_migration_attach(Monitor *mon, MigrationState *ms);

#endif
