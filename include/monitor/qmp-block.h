/*
 * The block-layer QMP commands (query-block, block-dirty-bitmap-*, and the
 * bitmap 'transaction' actions). They find nodes through the machine's list of
 * drives, which the machine exposes with QmpBlockSource so that this layer
 * does not depend on how the machine stores its drives.
 */
#ifndef MONITOR_QMP_BLOCK_H
#define MONITOR_QMP_BLOCK_H

#include "block/block.h"
#include "monitor/qmp-registry.h"

/* One drive as QMP sees it (QEMU's BlockBackend). */
typedef struct QmpBlockBackend {
    const char *device;     /* -drive id: QMP's "device"; "" for none */
    const char *qdev;       /* the device it is attached to, or NULL */
    BlockNode *node;        /* the drive's top (format) node */
} QmpBlockBackend;

typedef struct QmpBlockSource {
    /* Fills *out with the i-th drive; false past the last one. */
    bool (*get)(void *opaque, size_t i, QmpBlockBackend *out);
    void *opaque;
} QmpBlockSource;

/* src must outlive the registry. */
void qmp_register_block_commands(QmpRegistry *r, const QmpBlockSource *src);

/* QEMU's bdrv_lookup_bs(name, name): a drive id, else any node's node-name
 * (format nodes and their file children). NULL if none. */
BlockNode *qmp_block_lookup(const QmpBlockSource *src, const char *name);

#endif
