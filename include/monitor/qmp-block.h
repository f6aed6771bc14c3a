/*
 * The block-layer QMP commands (query-block, block-dirty-bitmap-*, and the
 * bitmap 'transaction' actions). They find nodes through the drives' block
 * backend list (block/block-backend.h).
 */
#ifndef MONITOR_QMP_BLOCK_H
#define MONITOR_QMP_BLOCK_H

#include "block/block-backend.h"
#include "monitor/qmp-registry.h"

/* blks must outlive the registry; NULL: no drives. */
void qmp_register_block_commands(QmpRegistry *r, const BlockBackendList *blks);

#endif
