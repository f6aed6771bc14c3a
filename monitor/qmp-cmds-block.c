/*
 * query-block for the block QMP commands: the drives come from their block
 * backend list, which also resolves node names. Registration of the bitmap
 * commands and actions (qmp-cmds-bitmap.c, qmp-bitmap-actions.c) goes
 * through here so the machine makes one call.
 */
#include <string.h>

#include "monitor/qmp-bitmap.h"
#include "monitor/qmp-dispatch.h"

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

    g_autoptr(GPtrArray) named = g_ptr_array_new();

    bdrv_lock(bs);
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        if (bdrv_dirty_bitmap_name(bm)) {
            g_ptr_array_add(named, bm);
        }
    }
    /* QEMU lists the newest first. */
    for (guint i = named->len; i-- > 0;) {
        json_array_add_object_element(list, bitmap_info(named->pdata[i]));
    }
    bdrv_unlock(bs);
    return list;
}

static JsonObject *image_info(BlockNode *bs)
{
    g_autoptr(BlockImageInfo) info = NULL;
    JsonObject *o = json_object_new();

    json_object_set_int_member(o, "virtual-size", bdrv_getlength(bs));
    json_object_set_string_member(o, "filename", bdrv_get_filename(bs));
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

    json_object_set_string_member(o, "file", bdrv_get_filename(bs));
    json_object_set_string_member(o, "node-name", bdrv_get_node_name(bs));
    json_object_set_boolean_member(o, "ro", bdrv_is_read_only(bs));
    json_object_set_string_member(o, "drv", bdrv_get_format_name(bs));
    json_object_set_boolean_member(o, "encrypted", false);
    json_object_set_string_member(o, "detect_zeroes", "off");
    for (size_t i = 0; i < ARRAY_SIZE(zero_members); i++) {
        json_object_set_int_member(o, zero_members[i], 0);
    }
    json_object_set_boolean_member(cache, "writeback", true);
    json_object_set_boolean_member(cache, "direct",
                                   (bdrv_get_flags(bs) & BDRV_O_NOCACHE) != 0);
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
    const BlockBackendList *blks = call->opaque;

    for (size_t i = 0; i < blk_list_count(blks); i++) {
        BlockBackend *blk = blk_list_get(blks, i);
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "device", blk_name(blk));
        if (blk_dev(blk)) {
            json_object_set_string_member(o, "qdev", blk_dev(blk));
        }
        json_object_set_boolean_member(o, "locked", false);
        json_object_set_boolean_member(o, "removable", blk_dev(blk) == NULL);
        json_object_set_object_member(o, "inserted", inserted_info(blk_root(blk)));
        json_object_set_string_member(o, "type", "unknown");
        json_array_add_object_element(list, o);
    }
    json_node_take_array(n, list);
    return n;
}

static const QmpCommandDef block_commands[] = {
    { "query-block", cmd_query_block, NULL, 0 },
};

void qmp_register_block_commands(QmpRegistry *r, const BlockBackendList *blks)
{
    qmp_register_commands(r, block_commands, ARRAY_SIZE(block_commands), (void *)blks);
    qmp_register_bitmap_commands(r, blks);
    qmp_register_bitmap_actions(r, blks);
}
