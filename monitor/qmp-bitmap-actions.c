/*
 * The dirty-bitmap actions of QMP 'transaction'. They act in prepare, as
 * QEMU's do, so later actions see their effect; abort undoes them from saved
 * state (a backup copy of the bits for clear and merge, the previous state
 * for enable/disable). remove only marks the bitmap busy in prepare, so no
 * later action may use it, and removes it in commit.
 */
#include "monitor/qmp-bitmap.h"

typedef struct BitmapAction {
    QmpBitmapOp op;
    BdrvDirtyBitmap *bitmap;    /* the bitmap added or acted on */
    BdrvDirtyBitmap *backup;    /* clear/merge: the bits before, for abort */
    bool was_enabled;           /* enable/disable: the state before */
} BitmapAction;

/* An anonymous, disabled copy of bm's bits; bm's node is locked. */
static BdrvDirtyBitmap *bitmap_backup(BdrvDirtyBitmap *bm, GError **errp)
{
    GError *err = NULL;
    BdrvDirtyBitmap *copy = bdrv_create_dirty_bitmap(bdrv_dirty_bitmap_node(bm),
                                                     bdrv_dirty_bitmap_granularity(bm),
                                                     NULL, &err);

    if (!copy) {
        qmp_block_error_generic(errp, err);
        return NULL;
    }
    bdrv_disable_dirty_bitmap(copy);
    if (!bdrv_merge_dirty_bitmap(copy, bm, &err)) {
        bdrv_release_dirty_bitmap(copy);
        qmp_block_error_generic(errp, err);
        return NULL;
    }
    return copy;
}

static void *action_add_prepare(const QmpCall *call, const void *data,
                                GError **errp)
{
    BdrvDirtyBitmap *bm = qmp_bitmap_add(call->opaque, data, errp);
    BitmapAction *act;

    if (!bm) {
        return NULL;
    }
    act = g_new0(BitmapAction, 1);
    act->bitmap = bm;
    return act;
}

static void action_add_abort(void *opaque)
{
    BitmapAction *act = opaque;
    BlockNode *bs = bdrv_dirty_bitmap_node(act->bitmap);
    g_autoptr(GError) err = NULL;

    bdrv_lock(bs);
    /* A crash-safe persistent bitmap is in the image already: remove it. */
    if (!bdrv_remove_dirty_bitmap(bs, bdrv_dirty_bitmap_name(act->bitmap),
                                  &err)) {
        g_warning("could not undo adding bitmap '%s': %s",
                  bdrv_dirty_bitmap_name(act->bitmap), err->message);
        bdrv_release_dirty_bitmap(act->bitmap);
    }
    bdrv_unlock(bs);
}

static void action_free(void *opaque)
{
    BitmapAction *act = opaque;

    if (act->backup) {
        BlockNode *bs = bdrv_dirty_bitmap_node(act->backup);

        bdrv_lock(bs);
        bdrv_release_dirty_bitmap(act->backup);
        bdrv_unlock(bs);
    }
    g_free(act);
}

/*
 * Does the operation now, keeping what abort needs: like QEMU, so that later
 * actions in the same transaction see its effect. remove only marks the
 * bitmap busy (nothing later may use it) and removes it in commit.
 */
static bool action_op_do(BitmapAction *act, GError **errp)
{
    BdrvDirtyBitmap *bm = act->bitmap;

    act->was_enabled = bdrv_dirty_bitmap_enabled(bm);
    switch (act->op) {
    case QMP_BITMAP_REMOVE:
        bdrv_dirty_bitmap_set_busy(bm, true);
        return true;
    case QMP_BITMAP_CLEAR:
        act->backup = bitmap_backup(bm, errp);
        if (!act->backup) {
            return false;
        }
        bdrv_clear_dirty_bitmap(bm);
        return true;
    case QMP_BITMAP_ENABLE:
        bdrv_enable_dirty_bitmap(bm);
        return true;
    case QMP_BITMAP_DISABLE:
        bdrv_disable_dirty_bitmap(bm);
        return true;
    }
    return false;
}

static void *action_op_prepare(const QmpCall *call, const void *data,
                               QmpBitmapOp op, GError **errp)
{
    BdrvDirtyBitmap *bm = qmp_bitmap_op_check(call->opaque, data, op, errp);
    BitmapAction *act;
    bool ok;

    if (!bm) {
        return NULL;
    }
    act = g_new0(BitmapAction, 1);
    act->op = op;
    act->bitmap = bm;
    ok = action_op_do(act, errp);
    qmp_bitmap_unlock(bm);
    if (!ok) {
        action_free(act);
        return NULL;
    }
    return act;
}

static void action_op_commit(void *opaque)
{
    BitmapAction *act = opaque;
    g_autoptr(GError) err = NULL;

    if (act->op != QMP_BITMAP_REMOVE) {
        return;
    }
    bdrv_dirty_bitmap_lock(act->bitmap);
    bdrv_dirty_bitmap_set_busy(act->bitmap, false);
    if (!qmp_bitmap_op_apply(act->bitmap, QMP_BITMAP_REMOVE, &err)) {
        g_warning("bitmap removal failed after its checks passed: %s", err->message);
    }
}

/* Puts back the bits saved in prepare; the node is locked. */
static void bitmap_restore(BdrvDirtyBitmap *bm, BdrvDirtyBitmap *backup)
{
    g_autoptr(GError) err = NULL;

    bdrv_clear_dirty_bitmap(bm);
    if (!bdrv_merge_dirty_bitmap(bm, backup, &err)) {
        g_warning("could not restore bitmap '%s': %s", bdrv_dirty_bitmap_name(bm),
                  err->message);
    }
}

static void action_op_abort(void *opaque)
{
    BitmapAction *act = opaque;
    BdrvDirtyBitmap *bm = act->bitmap;

    bdrv_dirty_bitmap_lock(bm);
    switch (act->op) {
    case QMP_BITMAP_REMOVE:
        bdrv_dirty_bitmap_set_busy(bm, false);
        break;
    case QMP_BITMAP_CLEAR:
        bitmap_restore(bm, act->backup);
        break;
    case QMP_BITMAP_ENABLE:
    case QMP_BITMAP_DISABLE:
        if (act->was_enabled) {
            bdrv_enable_dirty_bitmap(bm);
        } else {
            bdrv_disable_dirty_bitmap(bm);
        }
        break;
    }
    bdrv_dirty_bitmap_unlock(bm);
}

#define OP_PREPARE(fn, op) \
    static void *fn(const QmpCall *call, const void *data, GError **errp) \
    { \
        return action_op_prepare(call, data, op, errp); \
    }
OP_PREPARE(action_remove_prepare, QMP_BITMAP_REMOVE)
OP_PREPARE(action_clear_prepare, QMP_BITMAP_CLEAR)
OP_PREPARE(action_enable_prepare, QMP_BITMAP_ENABLE)
OP_PREPARE(action_disable_prepare, QMP_BITMAP_DISABLE)

static void *action_merge_prepare(const QmpCall *call, const void *data,
                                  GError **errp)
{
    QmpMergePlan *p = qmp_bitmap_merge_prepare(call->opaque, data, errp);
    BitmapAction *act;

    if (!p) {
        return NULL;
    }
    act = g_new0(BitmapAction, 1);
    act->bitmap = p->target;
    bdrv_dirty_bitmap_lock(p->target);
    act->backup = bitmap_backup(p->target, errp);
    bdrv_dirty_bitmap_unlock(p->target);
    if (!act->backup) {
        qmp_bitmap_merge_plan_free(p);
        action_free(act);
        return NULL;
    }
    qmp_bitmap_merge_apply(p);
    qmp_bitmap_merge_plan_free(p);
    return act;
}

static void action_merge_abort(void *opaque)
{
    BitmapAction *act = opaque;

    bdrv_dirty_bitmap_lock(act->bitmap);
    bitmap_restore(act->bitmap, act->backup);
    bdrv_dirty_bitmap_unlock(act->bitmap);
}

static const QmpActionOps bitmap_actions[] = {
    { "block-dirty-bitmap-add", &qmp_bitmap_add_type, action_add_prepare, NULL,
      action_add_abort, action_free },
    { "block-dirty-bitmap-remove", &qmp_bitmap_type, action_remove_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-clear", &qmp_bitmap_type, action_clear_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-enable", &qmp_bitmap_type, action_enable_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-disable", &qmp_bitmap_type, action_disable_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-merge", &qmp_bitmap_merge_type, action_merge_prepare,
      NULL, action_merge_abort, action_free },
};

void qmp_register_bitmap_actions(QmpRegistry *r, const BlockBackendList *blks)
{
    for (size_t i = 0; i < ARRAY_SIZE(bitmap_actions); i++) {
        qmp_register_action(r, &bitmap_actions[i], (void *)blks);
    }
}
