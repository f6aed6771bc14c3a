/*
 * The block-dirty-bitmap-* commands with QEMU 7.2's arguments, checks, order
 * of checks and messages. Errors from the block layer are reported as
 * GenericError, as QEMU reports them for these commands. The helpers here are
 * shared with the transaction actions (qmp-bitmap.h).
 */
#include <string.h>

#include "monitor/qmp-bitmap.h"
#include "monitor/qmp-dispatch.h"

/* --- lookups and checks ----------------------------------------------------- */

void qmp_block_error_generic(GError **errp, GError *err)
{
    g_set_error_literal(errp, QMP_ERROR, QMP_ERROR_GENERIC, err->message);
    g_error_free(err);
}

/* QEMU's block_dirty_bitmap_lookup(); returns with the node locked. */
BdrvDirtyBitmap *qmp_bitmap_lookup(const BlockBackendList *blks, const char *node,
                                   const char *name, GError **errp)
{
    BlockNode *bs = blk_list_lookup_node(blks, node);
    BdrvDirtyBitmap *bm;

    if (!bs) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Node '%s' not found", node);
        return NULL;
    }
    bdrv_lock(bs);
    bm = bdrv_find_dirty_bitmap(bs, name);
    if (!bm) {
        bdrv_unlock(bs);
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Dirty bitmap '%s' not found", name);
    }
    return bm;
}

void qmp_bitmap_unlock(BdrvDirtyBitmap *bm)
{
    bdrv_unlock(bdrv_dirty_bitmap_node(bm));
}

bool qmp_bitmap_check(BdrvDirtyBitmap *bm, BdrvBitmapCheck flags, GError **errp)
{
    GError *err = NULL;

    if (!bdrv_dirty_bitmap_check(bm, flags, &err)) {
        qmp_block_error_generic(errp, err);
        return false;
    }
    return true;
}

/* --- block-dirty-bitmap-add ------------------------------------------------- */

static uint32_t default_granularity(BlockNode *bs)
{
    g_autoptr(BlockImageInfo) info = NULL;

    /* QEMU: the cluster size, at least 4 KiB; 64 KiB without clusters. */
    if (bdrv_get_info(bs, &info, NULL) && info->cluster_size) {
        return MAX(4096u, info->cluster_size);
    }
    return 64 * KiB;
}

BdrvDirtyBitmap *qmp_bitmap_add(const BlockBackendList *blks, JsonObject *a,
                                GError **errp)
{
    const char *name = qmp_arg_str(a, "name", "");
    const char *node = qmp_arg_str(a, "node", "");
    BlockNode *bs;
    BdrvDirtyBitmap *bm;
    GError *err = NULL;
    int64_t gran;

    if (!*name) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "Bitmap name cannot be empty");
        return NULL;
    }
    bs = blk_list_lookup_node(blks, node);
    if (!bs) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Cannot find device='%s' nor node-name='%s'", node, node);
        return NULL;
    }
    gran = qmp_arg_has(a, "granularity") ? qmp_arg_int(a, "granularity", 0)
                                          : default_granularity(bs);
    if (gran < 512 || (gran & (gran - 1))) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Granularity must be power of 2 and at least 512");
        return NULL;
    }
    bdrv_lock(bs);
    bm = bdrv_create_dirty_bitmap(bs, (uint32_t)gran, name, &err);
    if (bm && qmp_arg_bool(a, "persistent", false) &&
        !bdrv_dirty_bitmap_make_persistent(bm, true, &err)) {
        bdrv_release_dirty_bitmap(bm);
        bm = NULL;
    }
    if (bm && qmp_arg_bool(a, "disabled", false)) {
        bdrv_disable_dirty_bitmap(bm);
    }
    bdrv_unlock(bs);
    if (!bm) {
        qmp_block_error_generic(errp, err);
    }
    return bm;
}

static JsonNode *cmd_bitmap_add(const QmpCall *call, JsonObject *args, GError **errp)
{
    return qmp_bitmap_add(call->opaque, args, errp) ? qmp_return_empty() : NULL;
}

/* --- remove / clear / enable / disable -------------------------------------- */

/* What each operation refuses, as QEMU checks them. */
static BdrvBitmapCheck op_check_flags(QmpBitmapOp op)
{
    switch (op) {
    case QMP_BITMAP_REMOVE: return BDRV_BITMAP_BUSY | BDRV_BITMAP_RO;
    case QMP_BITMAP_CLEAR: return BDRV_BITMAP_DEFAULT;
    default: return BDRV_BITMAP_ALLOW_RO;
    }
}

/* Looks up and checks; returns the bitmap with its node locked. */
BdrvDirtyBitmap *qmp_bitmap_op_check(const BlockBackendList *blks, JsonObject *a,
                                     QmpBitmapOp op, GError **errp)
{
    BdrvDirtyBitmap *bm = qmp_bitmap_lookup(blks, qmp_arg_str(a, "node", ""),
                                            qmp_arg_str(a, "name", ""), errp);

    if (bm && !qmp_bitmap_check(bm, op_check_flags(op), errp)) {
        qmp_bitmap_unlock(bm);
        return NULL;
    }
    return bm;
}

/* Runs op on a checked bitmap whose node is locked; unlocks it. */
bool qmp_bitmap_op_apply(BdrvDirtyBitmap *bm, QmpBitmapOp op, GError **errp)
{
    BlockNode *bs = bdrv_dirty_bitmap_node(bm);
    GError *err = NULL;
    bool ok = true;

    switch (op) {
    case QMP_BITMAP_REMOVE:
        ok = bdrv_remove_dirty_bitmap(bs, bdrv_dirty_bitmap_name(bm), &err);
        break;
    case QMP_BITMAP_CLEAR:
        bdrv_clear_dirty_bitmap(bm);
        break;
    case QMP_BITMAP_ENABLE:
        bdrv_enable_dirty_bitmap(bm);
        break;
    case QMP_BITMAP_DISABLE:
        bdrv_disable_dirty_bitmap(bm);
        break;
    }
    bdrv_unlock(bs);
    if (!ok) {
        qmp_block_error_generic(errp, err);
    }
    return ok;
}

static JsonNode *bitmap_op_command(const QmpCall *call, JsonObject *args,
                                   QmpBitmapOp op, GError **errp)
{
    BdrvDirtyBitmap *bm = qmp_bitmap_op_check(call->opaque, args, op, errp);

    return bm && qmp_bitmap_op_apply(bm, op, errp) ? qmp_return_empty() : NULL;
}

static JsonNode *cmd_bitmap_remove(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_REMOVE, errp);
}

static JsonNode *cmd_bitmap_clear(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_CLEAR, errp);
}

static JsonNode *cmd_bitmap_enable(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_ENABLE, errp);
}

static JsonNode *cmd_bitmap_disable(const QmpCall *call, JsonObject *args,
                                    GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_DISABLE, errp);
}

/* --- merge -------------------------------------------------------------------- */

static const QmpArgSpec bitmap_ref_args[] = {
    { "node", QMP_ARG_STR, false },
    { "name", QMP_ARG_STR, false },
    { NULL },
};

/* Checks the shape of 'bitmaps' (strings or {node, name}), QEMU's wording. */
static bool merge_sources_check(JsonArray *list, GError **errp)
{
    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonNode *n = json_array_get_element(list, i);
        g_autofree char *path = g_strdup_printf("bitmaps[%u]", i);

        if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
            continue;
        }
        if (!JSON_NODE_HOLDS_OBJECT(n)) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Invalid parameter type for '%s', expected: "
                        "BlockDirtyBitmapOrStr", path);
            return false;
        }
        if (!qmp_check_args(json_node_get_object(n), bitmap_ref_args, path, errp)) {
            return false;
        }
    }
    return true;
}

/* The i-th source; the node of 'target' is locked, other nodes briefly. */
static BdrvDirtyBitmap *merge_source(const BlockBackendList *blks, BlockNode *tbs,
                                     JsonNode *n, GError **errp)
{
    BdrvDirtyBitmap *bm;
    JsonObject *o;

    if (JSON_NODE_HOLDS_VALUE(n)) {
        bm = bdrv_find_dirty_bitmap(tbs, json_node_get_string(n));
        if (!bm) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Dirty bitmap '%s' not found", json_node_get_string(n));
        }
        return bm;
    }
    o = json_node_get_object(n);
    if (blk_list_lookup_node(blks, qmp_arg_str(o, "node", "")) == tbs) {
        bm = bdrv_find_dirty_bitmap(tbs, qmp_arg_str(o, "name", ""));
        if (!bm) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Dirty bitmap '%s' not found", qmp_arg_str(o, "name", ""));
        }
        return bm;
    }
    bm = qmp_bitmap_lookup(blks, qmp_arg_str(o, "node", ""), qmp_arg_str(o, "name", ""),
                           errp);
    if (bm) {
        qmp_bitmap_unlock(bm);      /* nodes are not closed while QMP runs */
    }
    return bm;
}

void qmp_bitmap_merge_plan_free(QmpMergePlan *p)
{
    if (p->sources) {
        g_ptr_array_unref(p->sources);
    }
    g_free(p);
}

static bool merge_source_ok(BdrvDirtyBitmap *target, BdrvDirtyBitmap *bm,
                            GError **errp)
{
    BlockNode *sbs = bdrv_dirty_bitmap_node(bm);
    bool other = sbs != bdrv_dirty_bitmap_node(target);
    bool ok;

    if (other) {
        bdrv_lock(sbs);
    }
    ok = qmp_bitmap_check(bm, BDRV_BITMAP_ALLOW_RO, errp);
    if (ok && bdrv_dirty_bitmap_size(bm) != bdrv_dirty_bitmap_size(target)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Bitmaps are incompatible and can't be merged");
        ok = false;
    }
    if (other) {
        bdrv_unlock(sbs);
    }
    return ok;
}

/* Everything QEMU checks before merging; returns with the target unlocked. */
QmpMergePlan *qmp_bitmap_merge_prepare(const BlockBackendList *blks, JsonObject *a,
                                       GError **errp)
{
    JsonArray *list = json_object_get_array_member(a, "bitmaps");
    QmpMergePlan *p;

    if (!merge_sources_check(list, errp)) {
        return NULL;
    }
    p = g_new0(QmpMergePlan, 1);
    p->sources = g_ptr_array_new();
    p->target = qmp_bitmap_lookup(blks, qmp_arg_str(a, "node", ""),
                                  qmp_arg_str(a, "target", ""), errp);
    if (!p->target) {
        qmp_bitmap_merge_plan_free(p);
        return NULL;
    }
    bool ok = qmp_bitmap_check(p->target, BDRV_BITMAP_DEFAULT, errp);
    for (guint i = 0; ok && i < json_array_get_length(list); i++) {
        BdrvDirtyBitmap *bm = merge_source(blks, bdrv_dirty_bitmap_node(p->target),
                                           json_array_get_element(list, i), errp);

        ok = bm && merge_source_ok(p->target, bm, errp);
        if (ok) {
            g_ptr_array_add(p->sources, bm);
        }
    }
    qmp_bitmap_unlock(p->target);
    if (!ok) {
        qmp_bitmap_merge_plan_free(p);
        return NULL;
    }
    return p;
}

void qmp_bitmap_merge_apply(QmpMergePlan *p)
{
    BlockNode *tbs = bdrv_dirty_bitmap_node(p->target);

    bdrv_lock(tbs);
    for (guint i = 0; i < p->sources->len; i++) {
        BdrvDirtyBitmap *bm = p->sources->pdata[i];
        BlockNode *sbs = bdrv_dirty_bitmap_node(bm);
        g_autoptr(GError) err = NULL;

        if (sbs != tbs) {
            bdrv_lock(sbs);
        }
        if (!bdrv_merge_dirty_bitmap(p->target, bm, &err)) {
            g_warning("bitmap merge failed after its checks passed: %s", err->message);
        }
        if (sbs != tbs) {
            bdrv_unlock(sbs);
        }
    }
    bdrv_unlock(tbs);
}

static JsonNode *cmd_bitmap_merge(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    QmpMergePlan *p = qmp_bitmap_merge_prepare(call->opaque, args, errp);

    if (!p) {
        return NULL;
    }
    qmp_bitmap_merge_apply(p);
    qmp_bitmap_merge_plan_free(p);
    return qmp_return_empty();
}

/* --- registration --------------------------------------------------------------- */

const QmpArgSpec qmp_bitmap_add_args[] = {
    { "node", QMP_ARG_STR, false },
    { "name", QMP_ARG_STR, false },
    { "granularity", QMP_ARG_UINT32, true },
    { "persistent", QMP_ARG_BOOL, true },
    { "disabled", QMP_ARG_BOOL, true },
    { NULL },
};

const QmpArgSpec qmp_bitmap_node_name_args[] = {
    { "node", QMP_ARG_STR, false },
    { "name", QMP_ARG_STR, false },
    { NULL },
};

const QmpArgSpec qmp_bitmap_merge_args[] = {
    { "node", QMP_ARG_STR, false },
    { "target", QMP_ARG_STR, false },
    { "bitmaps", QMP_ARG_ARRAY, false },
    { NULL },
};

static const QmpCommandDef bitmap_commands[] = {
    { "block-dirty-bitmap-add", cmd_bitmap_add, qmp_bitmap_add_args, 0 },
    { "block-dirty-bitmap-remove", cmd_bitmap_remove, qmp_bitmap_node_name_args, 0 },
    { "block-dirty-bitmap-clear", cmd_bitmap_clear, qmp_bitmap_node_name_args, 0 },
    { "block-dirty-bitmap-enable", cmd_bitmap_enable, qmp_bitmap_node_name_args, 0 },
    { "block-dirty-bitmap-disable", cmd_bitmap_disable, qmp_bitmap_node_name_args, 0 },
    { "block-dirty-bitmap-merge", cmd_bitmap_merge, qmp_bitmap_merge_args, 0 },
};

void qmp_register_bitmap_commands(QmpRegistry *r, const BlockBackendList *blks)
{
    qmp_register_commands(r, bitmap_commands, ARRAY_SIZE(bitmap_commands), (void *)blks);
}
