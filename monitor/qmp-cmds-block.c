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

static json_object *bitmap_info(BdrvDirtyBitmap *bm)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(bdrv_dirty_bitmap_name(bm)));
    json_object_object_add(o, "recording", json_object_new_boolean(bdrv_dirty_bitmap_enabled(bm)));
    json_object_object_add(o, "persistent",
                           json_object_new_boolean(bdrv_dirty_bitmap_get_persistence(bm)));
    json_object_object_add(o, "busy", json_object_new_boolean(bdrv_dirty_bitmap_busy(bm)));
    json_object_object_add(o, "granularity", json_object_new_int64(bdrv_dirty_bitmap_granularity(bm)));
    json_object_object_add(o, "count", json_object_new_int64(bdrv_get_dirty_count(bm)));
    if (bdrv_dirty_bitmap_inconsistent(bm)) {
        json_object_object_add(o, "inconsistent", json_object_new_boolean(true));
    }
    return o;
}

static json_object *bitmaps_info(BlockNode *bs)
{
    json_object *list = json_object_new_array();

    bdrv_lock(bs);
    /* QEMU lists the newest first. */
    for (GList *l = g_list_last(bs->dirty_bitmaps); l; l = l->prev) {
        if (bdrv_dirty_bitmap_name(l->data)) {
            json_object_array_add(list, bitmap_info(l->data));
        }
    }
    bdrv_unlock(bs);
    return list;
}

static json_object *image_info(BlockNode *bs)
{
    g_autoptr(BlockImageInfo) info = NULL;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "virtual-size", json_object_new_int64(bdrv_getlength(bs)));
    json_object_object_add(o, "filename", json_object_new_string(bs->filename ? bs->filename : ""));
    json_object_object_add(o, "format", json_object_new_string(bdrv_get_format_name(bs)));
    if (bdrv_get_info(bs, &info, NULL)) {
        if (info->cluster_size) {
            json_object_object_add(o, "cluster-size", json_object_new_int64(info->cluster_size));
        }
        json_object_object_add(o, "actual-size", json_object_new_int64(info->actual_size));
        json_object_object_add(o, "dirty-flag", json_object_new_boolean(info->dirty_flag));
    }
    return o;
}

static json_object *inserted_info(BlockNode *bs)
{
    static const char *const zero_members[] = {
        "bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
        "backing_file_depth", "write_threshold",
    };
    json_object *o = json_object_new_object();
    json_object *cache = json_object_new_object();

    json_object_object_add(o, "file", json_object_new_string(bs->filename ? bs->filename : ""));
    json_object_object_add(o, "node-name", json_object_new_string(bdrv_get_node_name(bs)));
    json_object_object_add(o, "ro", json_object_new_boolean(bdrv_is_read_only(bs)));
    json_object_object_add(o, "drv", json_object_new_string(bdrv_get_format_name(bs)));
    json_object_object_add(o, "encrypted", json_object_new_boolean(false));
    json_object_object_add(o, "detect_zeroes", json_object_new_string("off"));
    for (size_t i = 0; i < ARRAY_SIZE(zero_members); i++) {
        json_object_object_add(o, zero_members[i], json_object_new_int64(0));
    }
    json_object_object_add(cache, "writeback", json_object_new_boolean(true));
    json_object_object_add(cache, "direct", json_object_new_boolean((bs->flags & BDRV_O_NOCACHE) != 0));
    json_object_object_add(cache, "no-flush", json_object_new_boolean(false));
    json_object_object_add(o, "cache", cache);
    json_object_object_add(o, "image", image_info(bs));
    json_object_object_add(o, "dirty-bitmaps", bitmaps_info(bs));
    return o;
}

static json_object *cmd_query_block(const QmpCall *call, const void *args,
                                    GError **errp)
{
    json_object *list = json_object_new_array();
    QmpBlockBackend be;

    for (size_t i = 0; source_get(call->opaque, i, &be); i++) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "device", json_object_new_string(be.device ? be.device : ""));
        if (be.qdev) {
            json_object_object_add(o, "qdev", json_object_new_string(be.qdev));
        }
        json_object_object_add(o, "locked", json_object_new_boolean(false));
        json_object_object_add(o, "removable", json_object_new_boolean(be.qdev == NULL));
        if (be.node) {
            json_object_object_add(o, "inserted", inserted_info(be.node));
        }
        json_object_object_add(o, "type", json_object_new_string("unknown"));
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
QMP_SHAPE(device_info_type, "BlockDeviceInfo",
    QMP_OUT("file", qmp_type_str), QMP_OUT_OPT("node-name", qmp_type_str),
    QMP_OUT("ro", qmp_type_bool), QMP_OUT("drv", qmp_type_str),
    QMP_OUT("backing_file_depth", qmp_type_int), QMP_OUT("encrypted", qmp_type_bool),
    QMP_OUT("detect_zeroes", detect_zeroes_type), QMP_OUT("bps", qmp_type_int),
    QMP_OUT("bps_rd", qmp_type_int), QMP_OUT("bps_wr", qmp_type_int),
    QMP_OUT("iops", qmp_type_int), QMP_OUT("iops_rd", qmp_type_int),
    QMP_OUT("iops_wr", qmp_type_int), QMP_OUT("image", image_info_type),
    QMP_OUT("write_threshold", qmp_type_int), QMP_OUT("cache", cache_info_type),
    QMP_OUT_OPT("dirty-bitmaps", bitmap_info_list));
QMP_SHAPE(block_info_type, "BlockInfo",
    QMP_OUT("device", qmp_type_str), QMP_OUT_OPT("qdev", qmp_type_str),
    QMP_OUT("type", qmp_type_str), QMP_OUT("removable", qmp_type_bool),
    QMP_OUT("locked", qmp_type_bool), QMP_OUT_OPT("inserted", device_info_type));
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

void qmp_register_block_commands(QmpRegistry *r, const QmpBlockSource *src)
{
    qmp_register_commands(r, block_commands, ARRAY_SIZE(block_commands), (void *)src);
    qmp_register_events(r, block_events, ARRAY_SIZE(block_events));
    qmp_register_bitmap_commands(r, src);
    qmp_register_bitmap_actions(r, src);
}
