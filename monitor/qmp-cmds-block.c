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

static json_object *bitmap_info(BdrvDirtyBitmap *bm)
{
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "name", bdrv_dirty_bitmap_name(bm));
    tern_json_add_bool(o, "recording", bdrv_dirty_bitmap_enabled(bm));
    tern_json_add_bool(o, "persistent", bdrv_dirty_bitmap_get_persistence(bm));
    tern_json_add_bool(o, "busy", bdrv_dirty_bitmap_busy(bm));
    tern_json_add_int(o, "granularity", bdrv_dirty_bitmap_granularity(bm));
    tern_json_add_int(o, "count", bdrv_get_dirty_count(bm));
    if (bdrv_dirty_bitmap_inconsistent(bm)) {
        tern_json_add_bool(o, "inconsistent", true);
    }
    return o;
}

static json_object *bitmaps_info(BlockNode *bs)
{
    json_object *list = json_object_new_array();

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
        json_object_array_add(list, bitmap_info(named->pdata[i]));
    }
    bdrv_unlock(bs);
    return list;
}

static json_object *image_info(BlockNode *bs)
{
    g_autoptr(BlockImageInfo) info = NULL;
    json_object *o = json_object_new_object();

    /* QEMU counts a node's size in whole 512-byte sectors. */
    tern_json_add_int(o, "virtual-size", ALIGN_UP(bdrv_getlength(bs), 512));
    tern_json_add_str(o, "filename", bdrv_get_filename(bs));
    tern_json_add_str(o, "format", bdrv_get_format_name(bs));
    if (bdrv_get_info(bs, &info, NULL)) {
        if (info->cluster_size) {
            tern_json_add_int(o, "cluster-size", info->cluster_size);
        }
        tern_json_add_int(o, "actual-size", info->actual_size);
        tern_json_add_bool(o, "dirty-flag", info->dirty_flag);
    }
    return o;
}

json_object *qmp_block_device_info(BlockNode *bs)
{
    static const char *const zero_members[] = {
        "bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
        "backing_file_depth", "write_threshold",
    };
    json_object *o = json_object_new_object();
    json_object *cache = json_object_new_object();

    tern_json_add_str(o, "file", bdrv_get_filename(bs));
    tern_json_add_str(o, "node-name", bdrv_get_node_name(bs));
    tern_json_add_bool(o, "ro", bdrv_is_read_only(bs));
    tern_json_add_str(o, "drv", bdrv_get_format_name(bs));
    tern_json_add_bool(o, "encrypted", false);
    tern_json_add_str(o, "detect_zeroes", "off");
    for (size_t i = 0; i < ARRAY_SIZE(zero_members); i++) {
        tern_json_add_int(o, zero_members[i], 0);
    }
    tern_json_add_bool(cache, "writeback", true);
    tern_json_add_bool(cache, "direct", (bdrv_get_flags(bs) & BDRV_O_NOCACHE) != 0);
    tern_json_add_bool(cache, "no-flush", false);
    json_object_object_add(o, "cache", cache);
    json_object_object_add(o, "image", image_info(bs));
    json_object_object_add(o, "dirty-bitmaps", bitmaps_info(bs));
    return o;
}

static json_object *cmd_query_block(const QmpCall *call, const void *args,
                                    GError **errp)
{
    json_object *list = json_object_new_array();
    const BlockBackendList *blks = call->opaque;

    for (size_t i = 0; i < blk_list_count(blks); i++) {
        BlockBackend *blk = blk_list_get(blks, i);
        json_object *o = json_object_new_object();

        tern_json_add_str(o, "device", blk_name(blk));
        if (blk_dev(blk)) {
            tern_json_add_str(o, "qdev", blk_dev(blk));
        }
        tern_json_add_bool(o, "locked", false);
        tern_json_add_bool(o, "removable", blk_dev(blk) == NULL);
        json_object_object_add(o, "inserted", qmp_block_device_info(blk_root(blk)));
        tern_json_add_str(o, "type", "unknown");
        json_object_array_add(list, o);
    }
    return list;
}

/* --- types ------------------------------------------------------------------------ */

QMP_SHAPE(bitmap_info_type, "BlockDirtyInfo",
    QMP_OUT_OPT("name", qmp_type_str), QMP_OUT("count", qmp_type_int),
    QMP_OUT("granularity", qmp_type_uint32), QMP_OUT("recording", qmp_type_bool),
    QMP_OUT("busy", qmp_type_bool), QMP_OUT("persistent", qmp_type_bool),
    QMP_OUT_OPT("inconsistent", qmp_type_bool));
QMP_ARRAY_TYPE(bitmap_info_list, bitmap_info_type);
QMP_SHAPE(image_info_type, "ImageInfo",
    QMP_OUT("filename", qmp_type_str), QMP_OUT("format", qmp_type_str),
    QMP_OUT("virtual-size", qmp_type_int), QMP_OUT_OPT("cluster-size", qmp_type_int),
    QMP_OUT_OPT("actual-size", qmp_type_int), QMP_OUT_OPT("dirty-flag", qmp_type_bool));
QMP_SHAPE(cache_info_type, "BlockdevCacheInfo",
    QMP_OUT("writeback", qmp_type_bool), QMP_OUT("direct", qmp_type_bool),
    QMP_OUT("no-flush", qmp_type_bool));
static const char *const detect_zeroes_values[] = { "off", "on", "unmap", NULL };
QMP_ENUM_TYPE(detect_zeroes_type, "BlockdevDetectZeroesOptions", detect_zeroes_values);
static const QmpMember device_info_members[] = {
    QMP_OUT("file", qmp_type_str), QMP_OUT_OPT("node-name", qmp_type_str),
    QMP_OUT("ro", qmp_type_bool), QMP_OUT("drv", qmp_type_str),
    QMP_OUT("backing_file_depth", qmp_type_int), QMP_OUT("encrypted", qmp_type_bool),
    QMP_OUT("detect_zeroes", detect_zeroes_type), QMP_OUT("bps", qmp_type_int),
    QMP_OUT("bps_rd", qmp_type_int), QMP_OUT("bps_wr", qmp_type_int),
    QMP_OUT("iops", qmp_type_int), QMP_OUT("iops_rd", qmp_type_int),
    QMP_OUT("iops_wr", qmp_type_int), QMP_OUT("image", image_info_type),
    QMP_OUT("write_threshold", qmp_type_int), QMP_OUT("cache", cache_info_type),
    QMP_OUT_OPT("dirty-bitmaps", bitmap_info_list), QMP_END,
};
const QmpType qmp_block_device_info_type = {
    .name = "BlockDeviceInfo", .kind = QMP_KIND_OBJECT, .members = device_info_members,
};
QMP_SHAPE(block_info_type, "BlockInfo",
    QMP_OUT("device", qmp_type_str), QMP_OUT_OPT("qdev", qmp_type_str),
    QMP_OUT("type", qmp_type_str), QMP_OUT("removable", qmp_type_bool),
    QMP_OUT("locked", qmp_type_bool), QMP_OUT_OPT("inserted", qmp_block_device_info_type));
QMP_ARRAY_TYPE(block_info_list, block_info_type);

static const char *const io_operation_values[] = { "read", "write", NULL };
QMP_ENUM_TYPE(io_operation_type, "IoOperationType", io_operation_values);
static const char *const error_action_values[] = { "ignore", "report", "stop", NULL };
QMP_ENUM_TYPE(error_action_type, "BlockErrorAction", error_action_values);
QMP_SHAPE(io_error_data, "BLOCK_IO_ERROR-arg",
    QMP_OUT("device", qmp_type_str), QMP_OUT_OPT("node-name", qmp_type_str),
    QMP_OUT("operation", io_operation_type), QMP_OUT("action", error_action_type),
    QMP_OUT_OPT("nospace", qmp_type_bool), QMP_OUT("reason", qmp_type_str));

static const QmpCommandDef block_commands[] = {
    QMP_COMMAND("query-block", cmd_query_block, NULL, &block_info_list),
};

static const QmpEventDef block_events[] = {
    { .name = "BLOCK_IO_ERROR", .data = &io_error_data },
};

void qmp_register_block_commands(QmpRegistry *r, const BlockBackendList *blks)
{
    qmp_register_commands(r, block_commands, ARRAY_SIZE(block_commands), (void *)blks);
    qmp_register_events(r, block_events, ARRAY_SIZE(block_events));
    qmp_register_bitmap_commands(r, blks);
    qmp_register_bitmap_actions(r, blks);
}
