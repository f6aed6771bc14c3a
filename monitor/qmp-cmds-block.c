/*
 * query-block and node lookup for the block QMP commands: drives come from the
 * machine through a QmpBlockSource; a name is a drive id first, else any
 * node's node-name, as QEMU's bdrv_lookup_bs() resolves it. Registration of
 * the bitmap commands and actions (qmp-cmds-bitmap.c, qmp-bitmap-actions.c)
 * goes through here so the machine makes one call.
 */
#include <string.h>

#include "monitor/qmp-bitmap.h"
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

static const QmpCommandDef block_commands[] = {
    { "query-block", cmd_query_block, NULL, 0 },
};

void qmp_register_block_commands(QmpRegistry *r, const QmpBlockSource *src)
{
    qmp_register_commands(r, block_commands, ARRAY_SIZE(block_commands), (void *)src);
    qmp_register_bitmap_commands(r, src);
    qmp_register_bitmap_actions(r, src);
}
