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

BdrvDirtyBitmap *qmp_bitmap_add(const BlockBackendList *blks,
                                const QmpBitmapAddArgs *a, GError **errp)
{
    const char *name = a->name;
    const char *node = a->node;
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
    gran = a->has_granularity ? a->granularity : default_granularity(bs);
    if (gran < 512 || (gran & (gran - 1))) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Granularity must be power of 2 and at least 512");
        return NULL;
    }
    bdrv_lock(bs);
    bm = bdrv_create_dirty_bitmap(bs, (uint32_t)gran, name, &err);
    if (bm && a->persistent &&
        !bdrv_dirty_bitmap_make_persistent(bm, true, &err)) {
        bdrv_release_dirty_bitmap(bm);
        bm = NULL;
    }
    if (bm && a->disabled) {
        bdrv_disable_dirty_bitmap(bm);
    }
    bdrv_unlock(bs);
    if (!bm) {
        qmp_block_error_generic(errp, err);
    }
    return bm;
}

static json_object *cmd_bitmap_add(const QmpCall *call, const void *args,
                                   GError **errp)
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
BdrvDirtyBitmap *qmp_bitmap_op_check(const BlockBackendList *blks,
                                     const QmpBitmapArgs *a, QmpBitmapOp op,
                                     GError **errp)
{
    BdrvDirtyBitmap *bm = qmp_bitmap_lookup(blks, a->node, a->name, errp);

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

static json_object *bitmap_op_command(const QmpCall *call, const void *args,
                                   QmpBitmapOp op, GError **errp)
{
    BdrvDirtyBitmap *bm = qmp_bitmap_op_check(call->opaque, args, op, errp);

    return bm && qmp_bitmap_op_apply(bm, op, errp) ? qmp_return_empty() : NULL;
}

static json_object *cmd_bitmap_remove(const QmpCall *call, const void *args,
                                   GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_REMOVE, errp);
}

static json_object *cmd_bitmap_clear(const QmpCall *call, const void *args,
                                  GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_CLEAR, errp);
}

static json_object *cmd_bitmap_enable(const QmpCall *call, const void *args,
                                   GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_ENABLE, errp);
}

static json_object *cmd_bitmap_disable(const QmpCall *call, const void *args,
                                    GError **errp)
{
    return bitmap_op_command(call, args, QMP_BITMAP_DISABLE, errp);
}

/* --- merge -------------------------------------------------------------------- */

/* A source on the target's node (locked), by name. */
static BdrvDirtyBitmap *merge_source_local(BlockNode *tbs, const char *name,
                                           GError **errp)
{
    BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(tbs, name);

    if (!bm) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Dirty bitmap '%s' not found", name);
    }
    return bm;
}

/* A source; the node of 'target' is locked, other nodes briefly. */
static BdrvDirtyBitmap *merge_source(const BlockBackendList *blks, BlockNode *tbs,
                                     const QmpBitmapRef *ref, GError **errp)
{
    const QmpBitmapArgs *o = &ref->external;
    BdrvDirtyBitmap *bm;

    if (ref->kind == QMP_BITMAP_LOCAL) {
        return merge_source_local(tbs, ref->local, errp);
    }
    if (blk_list_lookup_node(blks, o->node) == tbs) {
        return merge_source_local(tbs, o->name, errp);
    }
    bm = qmp_bitmap_lookup(blks, o->node, o->name, errp);
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
QmpMergePlan *qmp_bitmap_merge_prepare(const BlockBackendList *blks,
                                       const QmpBitmapMergeArgs *a, GError **errp)
{
    QmpMergePlan *p = g_new0(QmpMergePlan, 1);

    p->sources = g_ptr_array_new();
    p->target = qmp_bitmap_lookup(blks, a->node, a->target, errp);
    if (!p->target) {
        qmp_bitmap_merge_plan_free(p);
        return NULL;
    }
    bool ok = qmp_bitmap_check(p->target, BDRV_BITMAP_DEFAULT, errp);
    for (size_t i = 0; ok && i < a->bitmaps.len; i++) {
        BdrvDirtyBitmap *bm = merge_source(blks, bdrv_dirty_bitmap_node(p->target),
                                           &QMP_LIST_AT(&a->bitmaps, QmpBitmapRef, i),
                                           errp);

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

static json_object *cmd_bitmap_merge(const QmpCall *call, const void *args,
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

/* --- types and registration ----------------------------------------------------- */

static const QmpMember bitmap_add_members[] = {
    QMP_MEMBER(QmpBitmapAddArgs, node, "node", qmp_type_str),
    QMP_MEMBER(QmpBitmapAddArgs, name, "name", qmp_type_str),
    QMP_OPTIONAL(QmpBitmapAddArgs, granularity, "granularity", qmp_type_uint32),
    QMP_OPTIONAL(QmpBitmapAddArgs, persistent, "persistent", qmp_type_bool, .b = false),
    QMP_OPTIONAL(QmpBitmapAddArgs, disabled, "disabled", qmp_type_bool, .b = false),
    QMP_END,
};
const QmpType qmp_bitmap_add_type = {
    .name = "BlockDirtyBitmapAdd", .kind = QMP_KIND_OBJECT,
    .size = sizeof(QmpBitmapAddArgs), .members = bitmap_add_members,
};

static const QmpMember bitmap_members[] = {
    QMP_MEMBER(QmpBitmapArgs, node, "node", qmp_type_str),
    QMP_MEMBER(QmpBitmapArgs, name, "name", qmp_type_str),
    QMP_END,
};
const QmpType qmp_bitmap_type = {
    .name = "BlockDirtyBitmap", .kind = QMP_KIND_OBJECT,
    .size = sizeof(QmpBitmapArgs), .members = bitmap_members,
};

QMP_ALTERNATE_TYPE(bitmap_ref_type, "BlockDirtyBitmapOrStr", QmpBitmapRef,
    QMP_ALTERNATIVE(QmpBitmapRef, local, qmp_type_str),
    QMP_ALTERNATIVE(QmpBitmapRef, external, qmp_bitmap_type));
QMP_ARRAY_TYPE(bitmap_ref_list, bitmap_ref_type);

static const QmpMember bitmap_merge_members[] = {
    QMP_MEMBER(QmpBitmapMergeArgs, node, "node", qmp_type_str),
    QMP_MEMBER(QmpBitmapMergeArgs, target, "target", qmp_type_str),
    QMP_MEMBER(QmpBitmapMergeArgs, bitmaps, "bitmaps", bitmap_ref_list),
    QMP_END,
};
const QmpType qmp_bitmap_merge_type = {
    .name = "BlockDirtyBitmapMerge", .kind = QMP_KIND_OBJECT,
    .size = sizeof(QmpBitmapMergeArgs), .members = bitmap_merge_members,
};

/* --- x-debug-block-dirty-bitmap-sha256 ------------------------------------- */

/* QEMU's test aid: the hash of the bitmap's bits (busy bitmaps too). */
static json_object *cmd_bitmap_sha256(const QmpCall *call, const void *args,
                                      GError **errp)
{
    const QmpBitmapArgs *a = args;
    BdrvDirtyBitmap *bm = qmp_bitmap_lookup(call->opaque, a->node, a->name,
                                            errp);
    g_autofree char *hex = NULL;
    json_object *o;

    if (!bm) {
        return NULL;
    }
    hex = bdrv_dirty_bitmap_sha256(bm);
    qmp_bitmap_unlock(bm);
    o = json_object_new_object();
    tern_json_add_str(o, "sha256", hex);
    return o;
}

QMP_SHAPE(bitmap_sha256_type, "BlockDirtyBitmapSha256",
          QMP_OUT("sha256", qmp_type_str));

static const QmpCommandDef bitmap_commands[] = {
    QMP_COMMAND("block-dirty-bitmap-add", cmd_bitmap_add, &qmp_bitmap_add_type, NULL),
    QMP_COMMAND("block-dirty-bitmap-remove", cmd_bitmap_remove, &qmp_bitmap_type, NULL),
    QMP_COMMAND("block-dirty-bitmap-clear", cmd_bitmap_clear, &qmp_bitmap_type, NULL),
    QMP_COMMAND("block-dirty-bitmap-enable", cmd_bitmap_enable, &qmp_bitmap_type, NULL),
    QMP_COMMAND("block-dirty-bitmap-disable", cmd_bitmap_disable, &qmp_bitmap_type, NULL),
    QMP_COMMAND("block-dirty-bitmap-merge", cmd_bitmap_merge, &qmp_bitmap_merge_type,
                NULL),
    QMP_COMMAND("x-debug-block-dirty-bitmap-sha256", cmd_bitmap_sha256,
                &qmp_bitmap_type, &bitmap_sha256_type),
};

void qmp_register_bitmap_commands(QmpRegistry *r, const BlockBackendList *blks)
{
    qmp_register_commands(r, bitmap_commands, ARRAY_SIZE(bitmap_commands), (void *)blks);
}
