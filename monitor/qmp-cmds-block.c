/*
 * QMP commands on the block layer: query-block and the dirty-bitmap commands
 * with their transaction actions, with QEMU 7.2's arguments, checks, order of
 * checks and messages. Errors from the block layer are reported as
 * GenericError, as QEMU reports them for these commands.
 *
 * Transaction actions act in prepare, as QEMU's do, so later actions see their
 * effect; abort undoes them from saved state (a backup copy of the bits for
 * clear and merge). remove only marks the bitmap busy in prepare and removes
 * it in commit.
 */
#include <string.h>

#include "block/dirty-bitmap.h"
#include "monitor/qmp-block.h"
#include "monitor/qmp-dispatch.h"

/* --- lookups ------------------------------------------------------------------ */

static bool source_get(const QmpBlockSource *src, size_t i, QmpBlockBackend *out)
{
    memset(out, 0, sizeof(*out));
    return src && src->get && src->get(src->opaque, i, out);
}

static BlockNode *find_node_name(BlockNode *bs, const char *name)
{
    for (; bs; bs = bs->file) {
        const char *nn = bdrv_get_node_name(bs);

        if (nn && !strcmp(nn, name)) {
            return bs;
        }
    }
    return NULL;
}

BlockNode *qmp_block_lookup(const QmpBlockSource *src, const char *name)
{
    QmpBlockBackend be;

    for (size_t i = 0; source_get(src, i, &be); i++) {
        if (be.node && be.device && !strcmp(be.device, name)) {
            return be.node;
        }
    }
    for (size_t i = 0; source_get(src, i, &be); i++) {
        BlockNode *bs = find_node_name(be.node, name);

        if (bs) {
            return bs;
        }
    }
    return NULL;
}

/* Block-layer errors become GenericError with the same text. */
static void error_generic(GError **errp, GError *err)
{
    g_set_error_literal(errp, QMP_ERROR, QMP_ERROR_GENERIC, err->message);
    g_error_free(err);
}

/* QEMU's block_dirty_bitmap_lookup(); returns with the node locked. */
static BdrvDirtyBitmap *bitmap_lookup(const QmpBlockSource *src, const char *node,
                                      const char *name, GError **errp)
{
    BlockNode *bs = qmp_block_lookup(src, node);
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

static void bitmap_unlock(BdrvDirtyBitmap *bm)
{
    bdrv_unlock(bdrv_dirty_bitmap_node(bm));
}

static bool bitmap_check(BdrvDirtyBitmap *bm, BdrvBitmapCheck flags, GError **errp)
{
    GError *err = NULL;

    if (!bdrv_dirty_bitmap_check(bm, flags, &err)) {
        error_generic(errp, err);
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

static BdrvDirtyBitmap *bitmap_add(const QmpBlockSource *src, JsonObject *a,
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
    bs = qmp_block_lookup(src, node);
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
        error_generic(errp, err);
    }
    return bm;
}

static JsonNode *cmd_bitmap_add(const QmpCall *call, JsonObject *args, GError **errp)
{
    return bitmap_add(call->opaque, args, errp) ? qmp_return_empty() : NULL;
}

/* --- remove / clear / enable / disable -------------------------------------- */

typedef enum { OP_REMOVE, OP_CLEAR, OP_ENABLE, OP_DISABLE } BitmapOp;

/* What each operation refuses, as QEMU checks them. */
static BdrvBitmapCheck op_check_flags(BitmapOp op)
{
    switch (op) {
    case OP_REMOVE: return BDRV_BITMAP_BUSY | BDRV_BITMAP_RO;
    case OP_CLEAR: return BDRV_BITMAP_DEFAULT;
    default: return BDRV_BITMAP_ALLOW_RO;
    }
}

/* Looks up and checks; returns the bitmap with its node locked. */
static BdrvDirtyBitmap *bitmap_op_check(const QmpBlockSource *src, JsonObject *a,
                                        BitmapOp op, GError **errp)
{
    BdrvDirtyBitmap *bm = bitmap_lookup(src, qmp_arg_str(a, "node", ""),
                                        qmp_arg_str(a, "name", ""), errp);

    if (bm && !bitmap_check(bm, op_check_flags(op), errp)) {
        bitmap_unlock(bm);
        return NULL;
    }
    return bm;
}

/* Runs op on a checked bitmap whose node is locked; unlocks it. */
static bool bitmap_op_apply(BdrvDirtyBitmap *bm, BitmapOp op, GError **errp)
{
    BlockNode *bs = bdrv_dirty_bitmap_node(bm);
    GError *err = NULL;
    bool ok = true;

    switch (op) {
    case OP_REMOVE:
        ok = bdrv_remove_dirty_bitmap(bs, bdrv_dirty_bitmap_name(bm), &err);
        break;
    case OP_CLEAR:
        bdrv_clear_dirty_bitmap(bm);
        break;
    case OP_ENABLE:
        bdrv_enable_dirty_bitmap(bm);
        break;
    case OP_DISABLE:
        bdrv_disable_dirty_bitmap(bm);
        break;
    }
    bdrv_unlock(bs);
    if (!ok) {
        error_generic(errp, err);
    }
    return ok;
}

static JsonNode *bitmap_op_command(const QmpCall *call, JsonObject *args,
                                   BitmapOp op, GError **errp)
{
    BdrvDirtyBitmap *bm = bitmap_op_check(call->opaque, args, op, errp);

    return bm && bitmap_op_apply(bm, op, errp) ? qmp_return_empty() : NULL;
}

static JsonNode *cmd_bitmap_remove(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return bitmap_op_command(call, args, OP_REMOVE, errp);
}

static JsonNode *cmd_bitmap_clear(const QmpCall *call, JsonObject *args,
                                  GError **errp)
{
    return bitmap_op_command(call, args, OP_CLEAR, errp);
}

static JsonNode *cmd_bitmap_enable(const QmpCall *call, JsonObject *args,
                                   GError **errp)
{
    return bitmap_op_command(call, args, OP_ENABLE, errp);
}

static JsonNode *cmd_bitmap_disable(const QmpCall *call, JsonObject *args,
                                    GError **errp)
{
    return bitmap_op_command(call, args, OP_DISABLE, errp);
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
static BdrvDirtyBitmap *merge_source(const QmpBlockSource *src, BlockNode *tbs,
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
    if (qmp_block_lookup(src, qmp_arg_str(o, "node", "")) == tbs) {
        bm = bdrv_find_dirty_bitmap(tbs, qmp_arg_str(o, "name", ""));
        if (!bm) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Dirty bitmap '%s' not found", qmp_arg_str(o, "name", ""));
        }
        return bm;
    }
    bm = bitmap_lookup(src, qmp_arg_str(o, "node", ""), qmp_arg_str(o, "name", ""),
                       errp);
    if (bm) {
        bitmap_unlock(bm);      /* nodes are not closed while QMP runs */
    }
    return bm;
}

typedef struct MergePlan {
    BdrvDirtyBitmap *target;
    GPtrArray *sources;     /* BdrvDirtyBitmap *, checked */
} MergePlan;

static void merge_plan_free(MergePlan *p)
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
    ok = bitmap_check(bm, BDRV_BITMAP_ALLOW_RO, errp);
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
static MergePlan *merge_prepare(const QmpBlockSource *src, JsonObject *a,
                                GError **errp)
{
    JsonArray *list = json_object_get_array_member(a, "bitmaps");
    MergePlan *p;

    if (!merge_sources_check(list, errp)) {
        return NULL;
    }
    p = g_new0(MergePlan, 1);
    p->sources = g_ptr_array_new();
    p->target = bitmap_lookup(src, qmp_arg_str(a, "node", ""),
                              qmp_arg_str(a, "target", ""), errp);
    if (!p->target) {
        merge_plan_free(p);
        return NULL;
    }
    bool ok = bitmap_check(p->target, BDRV_BITMAP_DEFAULT, errp);
    for (guint i = 0; ok && i < json_array_get_length(list); i++) {
        BdrvDirtyBitmap *bm = merge_source(src, bdrv_dirty_bitmap_node(p->target),
                                           json_array_get_element(list, i), errp);

        ok = bm && merge_source_ok(p->target, bm, errp);
        if (ok) {
            g_ptr_array_add(p->sources, bm);
        }
    }
    bitmap_unlock(p->target);
    if (!ok) {
        merge_plan_free(p);
        return NULL;
    }
    return p;
}

static void merge_apply(MergePlan *p)
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
    MergePlan *p = merge_prepare(call->opaque, args, errp);

    if (!p) {
        return NULL;
    }
    merge_apply(p);
    merge_plan_free(p);
    return qmp_return_empty();
}

/* --- transaction actions ------------------------------------------------------ */

typedef struct BitmapAction {
    BitmapOp op;
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
        error_generic(errp, err);
        return NULL;
    }
    bdrv_disable_dirty_bitmap(copy);
    if (!bdrv_merge_dirty_bitmap(copy, bm, &err)) {
        bdrv_release_dirty_bitmap(copy);
        error_generic(errp, err);
        return NULL;
    }
    return copy;
}

static void *action_add_prepare(const QmpCall *call, JsonObject *data, GError **errp)
{
    BdrvDirtyBitmap *bm = bitmap_add(call->opaque, data, errp);
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

    bdrv_lock(bs);
    bdrv_release_dirty_bitmap(act->bitmap);
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
    case OP_REMOVE:
        bdrv_dirty_bitmap_set_busy(bm, true);
        return true;
    case OP_CLEAR:
        act->backup = bitmap_backup(bm, errp);
        if (!act->backup) {
            return false;
        }
        bdrv_clear_dirty_bitmap(bm);
        return true;
    case OP_ENABLE:
        bdrv_enable_dirty_bitmap(bm);
        return true;
    case OP_DISABLE:
        bdrv_disable_dirty_bitmap(bm);
        return true;
    }
    return false;
}

static void *action_op_prepare(const QmpCall *call, JsonObject *data, BitmapOp op,
                               GError **errp)
{
    BdrvDirtyBitmap *bm = bitmap_op_check(call->opaque, data, op, errp);
    BitmapAction *act;
    bool ok;

    if (!bm) {
        return NULL;
    }
    act = g_new0(BitmapAction, 1);
    act->op = op;
    act->bitmap = bm;
    ok = action_op_do(act, errp);
    bitmap_unlock(bm);
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

    if (act->op != OP_REMOVE) {
        return;
    }
    bdrv_dirty_bitmap_lock(act->bitmap);
    bdrv_dirty_bitmap_set_busy(act->bitmap, false);
    if (!bitmap_op_apply(act->bitmap, OP_REMOVE, &err)) {
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
    case OP_REMOVE:
        bdrv_dirty_bitmap_set_busy(bm, false);
        break;
    case OP_CLEAR:
        bitmap_restore(bm, act->backup);
        break;
    case OP_ENABLE:
    case OP_DISABLE:
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
    static void *fn(const QmpCall *call, JsonObject *data, GError **errp) \
    { \
        return action_op_prepare(call, data, op, errp); \
    }
OP_PREPARE(action_remove_prepare, OP_REMOVE)
OP_PREPARE(action_clear_prepare, OP_CLEAR)
OP_PREPARE(action_enable_prepare, OP_ENABLE)
OP_PREPARE(action_disable_prepare, OP_DISABLE)

static void *action_merge_prepare(const QmpCall *call, JsonObject *data,
                                  GError **errp)
{
    MergePlan *p = merge_prepare(call->opaque, data, errp);
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
        merge_plan_free(p);
        action_free(act);
        return NULL;
    }
    merge_apply(p);
    merge_plan_free(p);
    return act;
}

static void action_merge_abort(void *opaque)
{
    BitmapAction *act = opaque;

    bdrv_dirty_bitmap_lock(act->bitmap);
    bitmap_restore(act->bitmap, act->backup);
    bdrv_dirty_bitmap_unlock(act->bitmap);
}

/* --- query-block ---------------------------------------------------------------- */

static JsonObject *bitmap_info(BdrvDirtyBitmap *bm)
{
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "name", bdrv_dirty_bitmap_name(bm));
    json_object_set_boolean_member(o, "recording", bdrv_dirty_bitmap_enabled(bm));
    json_object_set_boolean_member(o, "persistent",
                                   bdrv_dirty_bitmap_get_persistence(bm));
    json_object_set_boolean_member(o, "busy", bdrv_dirty_bitmap_busy(bm));
    json_object_set_int_member(o, "granularity", bdrv_dirty_bitmap_granularity(bm));
    json_object_set_int_member(o, "count", bdrv_get_dirty_count(bm));
    if (bdrv_dirty_bitmap_inconsistent(bm)) {
        json_object_set_boolean_member(o, "inconsistent", true);
    }
    return o;
}

static JsonArray *bitmaps_info(BlockNode *bs)
{
    JsonArray *list = json_array_new();

    bdrv_lock(bs);
    /* QEMU lists the newest first. */
    for (GList *l = g_list_last(bs->dirty_bitmaps); l; l = l->prev) {
        if (bdrv_dirty_bitmap_name(l->data)) {
            json_array_add_object_element(list, bitmap_info(l->data));
        }
    }
    bdrv_unlock(bs);
    return list;
}

static JsonObject *image_info(BlockNode *bs)
{
    g_autoptr(BlockImageInfo) info = NULL;
    JsonObject *o = json_object_new();

    json_object_set_int_member(o, "virtual-size", bdrv_getlength(bs));
    json_object_set_string_member(o, "filename", bs->filename ? bs->filename : "");
    json_object_set_string_member(o, "format", bdrv_get_format_name(bs));
    if (bdrv_get_info(bs, &info, NULL)) {
        if (info->cluster_size) {
            json_object_set_int_member(o, "cluster-size", info->cluster_size);
        }
        json_object_set_int_member(o, "actual-size", info->actual_size);
        json_object_set_boolean_member(o, "dirty-flag", info->dirty_flag);
    }
    return o;
}

static JsonObject *inserted_info(BlockNode *bs)
{
    static const char *const zero_members[] = {
        "bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
        "backing_file_depth", "write_threshold",
    };
    JsonObject *o = json_object_new();
    JsonObject *cache = json_object_new();

    json_object_set_string_member(o, "file", bs->filename ? bs->filename : "");
    json_object_set_string_member(o, "node-name", bdrv_get_node_name(bs));
    json_object_set_boolean_member(o, "ro", bdrv_is_read_only(bs));
    json_object_set_string_member(o, "drv", bdrv_get_format_name(bs));
    json_object_set_boolean_member(o, "encrypted", false);
    json_object_set_string_member(o, "detect_zeroes", "off");
    for (size_t i = 0; i < ARRAY_SIZE(zero_members); i++) {
        json_object_set_int_member(o, zero_members[i], 0);
    }
    json_object_set_boolean_member(cache, "writeback", true);
    json_object_set_boolean_member(cache, "direct", (bs->flags & BDRV_O_NOCACHE) != 0);
    json_object_set_boolean_member(cache, "no-flush", false);
    json_object_set_object_member(o, "cache", cache);
    json_object_set_object_member(o, "image", image_info(bs));
    json_object_set_array_member(o, "dirty-bitmaps", bitmaps_info(bs));
    return o;
}

static JsonNode *cmd_query_block(const QmpCall *call, JsonObject *args,
                                 GError **errp)
{
    JsonArray *list = json_array_new();
    JsonNode *n = json_node_new(JSON_NODE_ARRAY);
    QmpBlockBackend be;

    for (size_t i = 0; source_get(call->opaque, i, &be); i++) {
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "device", be.device ? be.device : "");
        if (be.qdev) {
            json_object_set_string_member(o, "qdev", be.qdev);
        }
        json_object_set_boolean_member(o, "locked", false);
        json_object_set_boolean_member(o, "removable", be.qdev == NULL);
        if (be.node) {
            json_object_set_object_member(o, "inserted", inserted_info(be.node));
        }
        json_object_set_string_member(o, "type", "unknown");
        json_array_add_object_element(list, o);
    }
    json_node_take_array(n, list);
    return n;
}

/* --- registration --------------------------------------------------------------- */

static const QmpArgSpec add_args[] = {
    { "node", QMP_ARG_STR, false },
    { "name", QMP_ARG_STR, false },
    { "granularity", QMP_ARG_UINT32, true },
    { "persistent", QMP_ARG_BOOL, true },
    { "disabled", QMP_ARG_BOOL, true },
    { NULL },
};

static const QmpArgSpec node_name_args[] = {
    { "node", QMP_ARG_STR, false },
    { "name", QMP_ARG_STR, false },
    { NULL },
};

static const QmpArgSpec merge_args[] = {
    { "node", QMP_ARG_STR, false },
    { "target", QMP_ARG_STR, false },
    { "bitmaps", QMP_ARG_ARRAY, false },
    { NULL },
};

static const QmpCommandDef block_commands[] = {
    { "query-block", cmd_query_block, NULL, 0 },
    { "block-dirty-bitmap-add", cmd_bitmap_add, add_args, 0 },
    { "block-dirty-bitmap-remove", cmd_bitmap_remove, node_name_args, 0 },
    { "block-dirty-bitmap-clear", cmd_bitmap_clear, node_name_args, 0 },
    { "block-dirty-bitmap-enable", cmd_bitmap_enable, node_name_args, 0 },
    { "block-dirty-bitmap-disable", cmd_bitmap_disable, node_name_args, 0 },
    { "block-dirty-bitmap-merge", cmd_bitmap_merge, merge_args, 0 },
};

static const QmpActionOps block_actions[] = {
    { "block-dirty-bitmap-add", add_args, action_add_prepare, NULL,
      action_add_abort, action_free },
    { "block-dirty-bitmap-remove", node_name_args, action_remove_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-clear", node_name_args, action_clear_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-enable", node_name_args, action_enable_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-disable", node_name_args, action_disable_prepare,
      action_op_commit, action_op_abort, action_free },
    { "block-dirty-bitmap-merge", merge_args, action_merge_prepare,
      NULL, action_merge_abort, action_free },
};

void qmp_register_block_commands(QmpRegistry *r, const QmpBlockSource *src)
{
    qmp_register_commands(r, block_commands, ARRAY_SIZE(block_commands), (void *)src);
    for (size_t i = 0; i < ARRAY_SIZE(block_actions); i++) {
        qmp_register_action(r, &block_actions[i], (void *)src);
    }
}
