/*
 * The block graph over QMP: blockdev-add and blockdev-del (the -blockdev
 * nodes' own decoder and rules, hw/block/blockdev.h), query-named-block-nodes
 * (every named node, newest first, as QEMU lists them) and query-blockstats
 * (each drive's node accounting, block/block.h, in QEMU's BlockStats shape).
 */
#include <string.h>

#include "hw/block/blockdev.h"
#include "monitor/qmp-block.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

/* --- blockdev-add, blockdev-del ----------------------------------------------- */

static json_object *cmd_blockdev_add(const QmpCall *call, const void *args,
                                     GError **errp)
{
    return blockdev_add(call->opaque, args, errp) ? qmp_return_empty() : NULL;
}

typedef struct BlockdevDelArgs {
    char *node_name;
} BlockdevDelArgs;

QMP_OBJECT_TYPE(blockdev_del_args, "blockdev-del-arg", BlockdevDelArgs,
    QMP_MEMBER(BlockdevDelArgs, node_name, "node-name", qmp_type_str));

static json_object *cmd_blockdev_del(const QmpCall *call, const void *args,
                                     GError **errp)
{
    const BlockdevDelArgs *a = args;

    return blockdev_del(call->opaque, a->node_name, errp) ? qmp_return_empty() : NULL;
}

/* --- query-named-block-nodes ------------------------------------------------------ */

typedef struct NamedNodesArgs {
    bool has_flat;
    bool flat;
} NamedNodesArgs;

QMP_OBJECT_TYPE(named_nodes_args, "query-named-block-nodes-arg", NamedNodesArgs,
    QMP_OPTIONAL(NamedNodesArgs, flat, "flat", qmp_type_bool, .b = false));

static void add_node(GPtrArray *all, GHashTable *seen, BlockNode *bs)
{
    if (bs && g_hash_table_add(seen, bs)) {
        g_ptr_array_add(all, bs);
    }
}

/* Every named node in QEMU's creation order: -blockdev and blockdev-add
 * nodes, then the drives' (a file node before its format node). */
static GPtrArray *all_nodes(BlockdevSet *nodes)
{
    const BlockBackendList *blks = blockdev_set_backends(nodes);
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
    GPtrArray *all = g_ptr_array_new();
    BlockNode *bs;

    for (size_t i = 0; (bs = blockdev_node_at(nodes, i)); i++) {
        g_ptr_array_insert(all, 0, bs);      /* node_at is newest first */
        g_hash_table_add(seen, bs);
    }
    for (size_t i = 0; i < blk_list_count(blks); i++) {
        BlockNode *root = blk_root(blk_list_get(blks, i));

        add_node(all, seen, root->file);
        add_node(all, seen, root);
    }
    return all;
}

static json_object *cmd_query_named_block_nodes(const QmpCall *call,
                                                const void *args, GError **errp)
{
    g_autoptr(GPtrArray) all = all_nodes(call->opaque);
    json_object *list = json_object_new_array();

    /* Newest first, as QEMU lists them; tern keeps no backing chains, so
     * "flat" changes nothing. */
    for (guint i = all->len; i-- > 0;) {
        json_object_array_add(list, qmp_block_device_info(all->pdata[i]));
    }
    return list;
}

/* --- query-blockstats --------------------------------------------------------------- */

typedef struct BlockstatsArgs {
    bool has_query_nodes;
    bool query_nodes;
} BlockstatsArgs;

QMP_OBJECT_TYPE(blockstats_args, "query-blockstats-arg", BlockstatsArgs,
    QMP_OPTIONAL(BlockstatsArgs, query_nodes, "query-nodes", qmp_type_bool,
                 .b = false));

static json_object *device_stats(BlockNode *bs)
{
    static const char *const kinds[BLOCK_ACCT__MAX] = { "rd", "wr", "flush", "unmap" };
    json_object *o = json_object_new_object();
    BlockAcctStats st;

    bdrv_get_stats(bs, &st);
    for (int k = 0; k < BLOCK_ACCT__MAX; k++) {
        g_autofree char *bytes = g_strdup_printf("%s_bytes", kinds[k]);
        g_autofree char *ops = g_strdup_printf("%s_operations", kinds[k]);
        g_autofree char *time = g_strdup_printf("%s_total_time_ns", kinds[k]);
        g_autofree char *failed = g_strdup_printf("failed_%s_operations", kinds[k]);
        g_autofree char *invalid = g_strdup_printf("invalid_%s_operations", kinds[k]);
        g_autofree char *merged = g_strdup_printf("%s_merged", kinds[k]);

        if (k != BLOCK_ACCT_FLUSH) {
            tern_json_add_uint(o, bytes, st.bytes[k]);
            tern_json_add_int(o, merged, 0);   /* tern does not merge requests */
        }
        tern_json_add_uint(o, ops, st.ops[k]);
        tern_json_add_uint(o, time, st.total_time_ns[k]);
        tern_json_add_uint(o, failed, st.failed_ops[k]);
        tern_json_add_int(o, invalid, 0);
    }
    tern_json_add_uint(o, "wr_highest_offset", st.wr_highest_offset);
    tern_json_add_bool(o, "account_invalid", true);
    tern_json_add_bool(o, "account_failed", true);
    json_object_object_add(o, "timed_stats", json_object_new_array());
    return o;
}

static json_object *node_stats(BlockNode *bs)
{
    json_object *o = json_object_new_object();

    tern_json_add_str(o, "node-name", bdrv_get_node_name(bs));
    json_object_object_add(o, "stats", device_stats(bs));
    if (bs->file) {
        json_object_object_add(o, "parent", node_stats(bs->file));
    }
    return o;
}

static json_object *cmd_query_blockstats(const QmpCall *call, const void *args,
                                         GError **errp)
{
    BlockdevSet *nodes = call->opaque;
    const BlockBackendList *blks = blockdev_set_backends(nodes);
    const BlockstatsArgs *a = args;
    json_object *list = json_object_new_array();

    if (a->query_nodes) {
        g_autoptr(GPtrArray) all = all_nodes(nodes);

        for (guint i = 0; i < all->len; i++) {
            json_object_array_add(list, node_stats(all->pdata[i]));
        }
        return list;
    }
    for (size_t i = 0; i < blk_list_count(blks); i++) {
        BlockBackend *blk = blk_list_get(blks, i);
        json_object *o = node_stats(blk_root(blk));

        tern_json_add_str(o, "device", blk_name(blk));
        if (blk_dev(blk)) {
            tern_json_add_str(o, "qdev", blk_dev(blk));
        }
        json_object_array_add(list, o);
    }
    return list;
}

/* --- types ------------------------------------------------------------------------ */

QMP_ARRAY_TYPE(block_device_info_list, qmp_block_device_info_type);

/* tern keeps no timed statistics (no -device stats-intervals): always []. */
QMP_SHAPE(timed_stats_type, "BlockDeviceTimedStats",
    QMP_OUT("interval_length", qmp_type_int), QMP_OUT("min_rd_latency_ns", qmp_type_int),
    QMP_OUT("max_rd_latency_ns", qmp_type_int), QMP_OUT("avg_rd_latency_ns", qmp_type_int),
    QMP_OUT("min_wr_latency_ns", qmp_type_int), QMP_OUT("max_wr_latency_ns", qmp_type_int),
    QMP_OUT("avg_wr_latency_ns", qmp_type_int),
    QMP_OUT("min_flush_latency_ns", qmp_type_int),
    QMP_OUT("max_flush_latency_ns", qmp_type_int),
    QMP_OUT("avg_flush_latency_ns", qmp_type_int),
    QMP_OUT("avg_rd_queue_depth", qmp_type_number),
    QMP_OUT("avg_wr_queue_depth", qmp_type_number));
QMP_ARRAY_TYPE(timed_stats_list, timed_stats_type);

static const QmpMember device_stats_members[] = {
    QMP_OUT("rd_bytes", qmp_type_int), QMP_OUT("wr_bytes", qmp_type_int),
    QMP_OUT("unmap_bytes", qmp_type_int), QMP_OUT("rd_operations", qmp_type_int),
    QMP_OUT("wr_operations", qmp_type_int), QMP_OUT("flush_operations", qmp_type_int),
    QMP_OUT("unmap_operations", qmp_type_int),
    QMP_OUT("rd_total_time_ns", qmp_type_int), QMP_OUT("wr_total_time_ns", qmp_type_int),
    QMP_OUT("flush_total_time_ns", qmp_type_int),
    QMP_OUT("unmap_total_time_ns", qmp_type_int),
    QMP_OUT("wr_highest_offset", qmp_type_int), QMP_OUT("rd_merged", qmp_type_int),
    QMP_OUT("wr_merged", qmp_type_int), QMP_OUT("unmap_merged", qmp_type_int),
    QMP_OUT_OPT("idle_time_ns", qmp_type_int),
    QMP_OUT("failed_rd_operations", qmp_type_int),
    QMP_OUT("failed_wr_operations", qmp_type_int),
    QMP_OUT("failed_flush_operations", qmp_type_int),
    QMP_OUT("failed_unmap_operations", qmp_type_int),
    QMP_OUT("invalid_rd_operations", qmp_type_int),
    QMP_OUT("invalid_wr_operations", qmp_type_int),
    QMP_OUT("invalid_flush_operations", qmp_type_int),
    QMP_OUT("invalid_unmap_operations", qmp_type_int),
    QMP_OUT("account_invalid", qmp_type_bool), QMP_OUT("account_failed", qmp_type_bool),
    QMP_OUT("timed_stats", timed_stats_list),
    QMP_END,
};
static const QmpType device_stats_type = {
    .name = "BlockDeviceStats", .kind = QMP_KIND_OBJECT, .members = device_stats_members,
};
static const QmpType block_stats_type;
static const QmpMember block_stats_members[] = {
    QMP_OUT_OPT("device", qmp_type_str), QMP_OUT_OPT("qdev", qmp_type_str),
    QMP_OUT_OPT("node-name", qmp_type_str), QMP_OUT("stats", device_stats_type),
    QMP_OUT_OPT("parent", block_stats_type), QMP_END,
};
static const QmpType block_stats_type = {
    .name = "BlockStats", .kind = QMP_KIND_OBJECT, .members = block_stats_members,
};
QMP_ARRAY_TYPE(block_stats_list, block_stats_type);

static const QmpCommandDef blockdev_commands[] = {
    QMP_COMMAND("blockdev-add", cmd_blockdev_add, &blockdev_options_type, NULL),
    QMP_COMMAND("blockdev-del", cmd_blockdev_del, &blockdev_del_args, NULL),
    QMP_COMMAND("query-named-block-nodes", cmd_query_named_block_nodes,
                &named_nodes_args, &block_device_info_list),
    QMP_COMMAND("query-blockstats", cmd_query_blockstats, &blockstats_args,
                &block_stats_list),
};

void qmp_register_blockdev_commands(QmpRegistry *r, BlockdevSet *nodes)
{
    qmp_register_commands(r, blockdev_commands, ARRAY_SIZE(blockdev_commands), nodes);
}
