/*
 * What the bitmap commands (qmp-cmds-bitmap.c) share with the bitmap
 * transaction actions (qmp-bitmap-actions.c): lookups and checks with QEMU's
 * messages, the operations, and merge planning. Private to monitor/.
 */
#ifndef MONITOR_QMP_BITMAP_H
#define MONITOR_QMP_BITMAP_H

#include "block/dirty-bitmap.h"
#include "monitor/qmp-block.h"

typedef enum {
    QMP_BITMAP_REMOVE,
    QMP_BITMAP_CLEAR,
    QMP_BITMAP_ENABLE,
    QMP_BITMAP_DISABLE,
} QmpBitmapOp;

/* BlockDirtyBitmap: a bitmap by node and name. */
typedef struct QmpBitmapArgs {
    char *node;
    char *name;
} QmpBitmapArgs;

/* BlockDirtyBitmapAdd. */
typedef struct QmpBitmapAddArgs {
    char *node;
    char *name;
    bool has_granularity;       /* else the node's default */
    uint32_t granularity;
    bool has_persistent;
    bool persistent;
    bool has_disabled;
    bool disabled;
} QmpBitmapAddArgs;

/* BlockDirtyBitmapOrStr: a bitmap on the target's node, or anywhere. */
typedef enum { QMP_BITMAP_LOCAL, QMP_BITMAP_EXTERNAL } QmpBitmapRefKind;
typedef struct QmpBitmapRef {
    int kind;                   /* QmpBitmapRefKind */
    char *local;
    QmpBitmapArgs external;
} QmpBitmapRef;

/* BlockDirtyBitmapMerge. */
typedef struct QmpBitmapMergeArgs {
    char *node;
    char *target;
    QmpList bitmaps;            /* of QmpBitmapRef */
} QmpBitmapMergeArgs;

/* The checked sources and target of one merge. */
typedef struct QmpMergePlan {
    BdrvDirtyBitmap *target;
    GPtrArray *sources;     /* BdrvDirtyBitmap *, checked */
} QmpMergePlan;

extern const QmpType qmp_bitmap_add_type;
extern const QmpType qmp_bitmap_type;
extern const QmpType qmp_bitmap_merge_type;

/* Block-layer errors become GenericError with the same text; frees err. */
void qmp_block_error_generic(GError **errp, GError *err);

/* QEMU's block_dirty_bitmap_lookup(); returns with the node locked. */
BdrvDirtyBitmap *qmp_bitmap_lookup(const BlockBackendList *blks, const char *node,
                                   const char *name, GError **errp);
void qmp_bitmap_unlock(BdrvDirtyBitmap *bm);
bool qmp_bitmap_check(BdrvDirtyBitmap *bm, BdrvBitmapCheck flags, GError **errp);

/* block-dirty-bitmap-add's work: the new bitmap, or NULL with *errp set. */
BdrvDirtyBitmap *qmp_bitmap_add(const BlockBackendList *blks,
                                const QmpBitmapAddArgs *args, GError **errp);

/* Looks up and checks for op; returns the bitmap with its node locked. */
BdrvDirtyBitmap *qmp_bitmap_op_check(const BlockBackendList *blks,
                                     const QmpBitmapArgs *args, QmpBitmapOp op,
                                     GError **errp);
/* Runs op on a checked bitmap whose node is locked; unlocks it. */
bool qmp_bitmap_op_apply(BdrvDirtyBitmap *bm, QmpBitmapOp op, GError **errp);

/* Every check QEMU makes before a merge; the plan, or NULL with *errp set. */
QmpMergePlan *qmp_bitmap_merge_prepare(const BlockBackendList *blks,
                                       const QmpBitmapMergeArgs *args,
                                       GError **errp);
void qmp_bitmap_merge_apply(QmpMergePlan *p);
void qmp_bitmap_merge_plan_free(QmpMergePlan *p);

/* Registers the commands / the transaction actions (qmp_register_block_commands
 * calls both). */
void qmp_register_bitmap_commands(QmpRegistry *r, const BlockBackendList *blks);
void qmp_register_bitmap_actions(QmpRegistry *r, const BlockBackendList *blks);

#endif
