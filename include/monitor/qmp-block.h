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

/* QEMU's BlockDeviceInfo for a node (query-block's "inserted", and
 * query-named-block-nodes), and its type. */
json_object *qmp_block_device_info(BlockNode *bs);
extern const QmpType qmp_block_device_info_type;

/* blockdev-add, blockdev-del, query-named-block-nodes, query-blockstats
 * (monitor/qmp-cmds-blockdev.c) over the machine's -blockdev nodes and
 * drives; nodes must outlive the registry. */
typedef struct BlockdevSet BlockdevSet;
void qmp_register_blockdev_commands(QmpRegistry *r, BlockdevSet *nodes);

#endif
