/*
 * The 'tern-img bitmap' subcommand (qemu-img bitmap's options, actions run
 * in command-line order, same messages), its '--dump' extension that prints
 * a bitmap's dirty extents for tests, and the bitmaps part of 'info'.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "block/dirty-bitmap.h"
#include "tools/tern-img-bitmap.h"

typedef enum {
    BM_ADD, BM_REMOVE, BM_CLEAR, BM_ENABLE, BM_DISABLE, BM_MERGE, BM_DUMP,
} BitmapAction;

static const char *const action_names[] = {
    [BM_ADD] = "add", [BM_REMOVE] = "remove", [BM_CLEAR] = "clear",
    [BM_ENABLE] = "enable", [BM_DISABLE] = "disable", [BM_MERGE] = "merge",
    [BM_DUMP] = "dump",
};

typedef struct BitmapOp {
    BitmapAction act;
    char *source;             /* --merge */
} BitmapOp;

typedef struct BitmapCmd {
    GArray *ops;              /* of BitmapOp */
    const char *fmt, *src_file, *src_fmt;
    uint64_t granularity;     /* 0: default */
    const char *filename, *name;
} BitmapCmd;

static void op_clear(gpointer p)
{
    g_free(((BitmapOp *)p)->source);
}

/* "65536", "64k", "1M": qemu-img's size syntax for -g. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    uint64_t v = g_ascii_strtoull(s, &end, 10);
    int shift = 0;

    if (end == s) {
        return false;
    }
    switch (g_ascii_tolower(*end)) {
    case 'k': shift = 10; end++; break;
    case 'm': shift = 20; end++; break;
    case 'g': shift = 30; end++; break;
    case 'b': end++; break;
    }
    if (*end || v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = v << shift;
    return true;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "tern-img: %s\n", msg);
    return 1;
}

static int parse_args(int argc, char **argv, BitmapCmd *cmd)
{
    enum { O_ADD = 256, O_REMOVE, O_CLEAR, O_ENABLE, O_DISABLE, O_MERGE,
           O_DUMP };
    static const struct option longopts[] = {
        { "add", no_argument, NULL, O_ADD },
        { "remove", no_argument, NULL, O_REMOVE },
        { "clear", no_argument, NULL, O_CLEAR },
        { "enable", no_argument, NULL, O_ENABLE },
        { "disable", no_argument, NULL, O_DISABLE },
        { "merge", required_argument, NULL, O_MERGE },
        { "dump", no_argument, NULL, O_DUMP },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "hb:F:g:f:", longopts, NULL)) != -1) {
        BitmapOp op = { 0 };

        switch (c) {
        case 'b': cmd->src_file = optarg; continue;
        case 'F': cmd->src_fmt = optarg; continue;
        case 'f': cmd->fmt = optarg; continue;
        case 'g':
            if (!parse_size(optarg, &cmd->granularity) ||
                cmd->granularity == 0 || cmd->granularity > UINT32_MAX) {
                return usage_error("Invalid granularity specified");
            }
            continue;
        case O_ADD: op.act = BM_ADD; break;
        case O_REMOVE: op.act = BM_REMOVE; break;
        case O_CLEAR: op.act = BM_CLEAR; break;
        case O_ENABLE: op.act = BM_ENABLE; break;
        case O_DISABLE: op.act = BM_DISABLE; break;
        case O_DUMP: op.act = BM_DUMP; break;
        case O_MERGE:
            op.act = BM_MERGE;
            op.source = g_strdup(optarg);
            break;
        default:
            return usage_error("usage: tern-img bitmap (--merge SOURCE |"
                               " --add | --remove | --clear | --enable |"
                               " --disable | --dump)... [-b SOURCE_FILE"
                               " [-F SOURCE_FMT]] [-g GRANULARITY]"
                               " [-f FMT] FILENAME BITMAP");
        }
        g_array_append_val(cmd->ops, op);
    }
    if (cmd->ops->len == 0) {
        return usage_error("Need at least one of --add, --remove, --clear,"
                           " --enable, --disable, or --merge");
    }
    if (cmd->granularity &&
        g_array_index(cmd->ops, BitmapOp, 0).act != BM_ADD) {
        bool any_add = false;

        for (guint i = 0; i < cmd->ops->len; i++) {
            any_add |= g_array_index(cmd->ops, BitmapOp, i).act == BM_ADD;
        }
        if (!any_add) {
            return usage_error("granularity only supported with --add");
        }
    }
    if (cmd->src_file) {
        bool any_merge = false;

        for (guint i = 0; i < cmd->ops->len; i++) {
            any_merge |= g_array_index(cmd->ops, BitmapOp, i).act == BM_MERGE;
        }
        if (!any_merge) {
            return usage_error("-b only supported with --merge");
        }
    }
    if (argc - optind != 2) {
        return usage_error("Expecting filename and bitmap name");
    }
    cmd->filename = argv[optind];
    cmd->name = argv[optind + 1];
    return 0;
}

/* qemu-img's default: the cluster size, at least 4 KiB; else 64 KiB.
 * bdrv_get_info() takes the node lock: call it unlocked. */
static uint32_t default_granularity(BlockNode *bs)
{
    g_autoptr(BlockImageInfo) info = NULL;

    if (bdrv_get_info(bs, &info, NULL) && info->cluster_size) {
        return MAX(4096u, info->cluster_size);
    }
    return 64 * KiB;
}

static BdrvDirtyBitmap *find_or_fail(BlockNode *bs, const char *name,
                                     GError **errp)
{
    BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, name);

    if (!bm) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "Dirty bitmap '%s' not found", name);
    }
    return bm;
}

static bool do_add(BlockNode *bs, const BitmapCmd *cmd, uint32_t gran,
                   GError **errp)
{
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, gran, cmd->name, errp);

    if (!bm) {
        return false;
    }
    if (!bdrv_dirty_bitmap_make_persistent(bm, true, errp)) {
        bdrv_release_dirty_bitmap(bm);
        return false;
    }
    return true;
}

static bool do_merge(BlockNode *bs, BlockNode *src_bs, const BitmapOp *op,
                     const BitmapCmd *cmd, GError **errp)
{
    BdrvDirtyBitmap *dst = find_or_fail(bs, cmd->name, errp);
    BdrvDirtyBitmap *src;

    if (!dst) {
        return false;
    }
    src = find_or_fail(src_bs ? src_bs : bs, op->source, errp);
    return src && bdrv_merge_dirty_bitmap(dst, src, errp);
}

/* Prints {"name", "granularity", "size", "count", "enabled", "sha256",
 * "extents": [[offset, length], ...]}. */
static bool do_dump(BlockNode *bs, const BitmapCmd *cmd, GError **errp)
{
    BdrvDirtyBitmap *bm = find_or_fail(bs, cmd->name, errp);
    g_autoptr(json_object) o = NULL;
    g_autofree char *sha = NULL;
    json_object *extents;
    uint64_t off = 0, s, c, size;

    if (!bm || !bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_INCONSISTENT, errp)) {
        return false;
    }
    size = bdrv_dirty_bitmap_size(bm);
    sha = bdrv_dirty_bitmap_sha256(bm);
    o = json_object_new_object();
    extents = json_object_new_array();
    tern_json_add_str(o, "name", cmd->name);
    tern_json_add_uint(o, "granularity", bdrv_dirty_bitmap_granularity(bm));
    tern_json_add_uint(o, "size", size);
    tern_json_add_uint(o, "count", bdrv_get_dirty_count(bm));
    tern_json_add_bool(o, "enabled", bdrv_dirty_bitmap_enabled(bm));
    tern_json_add_str(o, "sha256", sha);
    json_object_object_add(o, "extents", extents);
    while (bdrv_dirty_bitmap_next_dirty_area(bm, off, size, &s, &c)) {
        json_object *e = json_object_new_array();

        json_object_array_add(e, json_object_new_uint64(s));
        json_object_array_add(e, json_object_new_uint64(c));
        json_object_array_add(extents, e);
        off = s + c;
    }
    printf("%s\n", json_object_to_json_string_ext(o, TERN_JSON_COMPACT));
    return true;
}

/* Runs one action with the node lock(s) held. */
static bool run_op(BlockNode *bs, BlockNode *src_bs, const BitmapOp *op,
                   const BitmapCmd *cmd, GError **errp)
{
    BdrvDirtyBitmap *bm;

    switch (op->act) {
    case BM_ADD:
        return do_add(bs, cmd, cmd->granularity, errp);
    case BM_REMOVE:
        return bdrv_remove_dirty_bitmap(bs, cmd->name, errp);
    case BM_CLEAR:
        bm = find_or_fail(bs, cmd->name, errp);
        if (!bm || !bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_DEFAULT, errp)) {
            return false;
        }
        bdrv_clear_dirty_bitmap(bm);
        return true;
    case BM_ENABLE:
    case BM_DISABLE:
        bm = find_or_fail(bs, cmd->name, errp);
        if (!bm || !bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_ALLOW_RO, errp)) {
            return false;
        }
        if (op->act == BM_ENABLE) {
            bdrv_enable_dirty_bitmap(bm);
        } else {
            bdrv_disable_dirty_bitmap(bm);
        }
        return true;
    case BM_MERGE:
        return do_merge(bs, src_bs, op, cmd, errp);
    case BM_DUMP:
        return do_dump(bs, cmd, errp);
    }
    g_assert_not_reached();
}

static bool only_dumps(const BitmapCmd *cmd)
{
    for (guint i = 0; i < cmd->ops->len; i++) {
        if (g_array_index(cmd->ops, BitmapOp, i).act != BM_DUMP) {
            return false;
        }
    }
    return true;
}

/* Opens the image(s), runs the actions in order, closes (which stores). */
static int run_cmd(BitmapCmd *cmd)
{
    GError *err = NULL;
    BlockNode *bs, *src_bs = NULL;
    int ret = 0;

    /* others may write, as with qemu-img (qcow2 still forbids it) */
    bs = bdrv_open(cmd->filename, cmd->fmt,
                   (only_dumps(cmd) ? 0 : BDRV_O_RDWR) | BDRV_O_SHARE_RW, &err);
    if (!bs) {
        tern_error_report_err(err);
        return 1;
    }
    if (cmd->src_file) {
        src_bs = bdrv_open(cmd->src_file, cmd->src_fmt, BDRV_O_SHARE_RW,
                           &err);
        if (!src_bs) {
            tern_error_report_err(err);
            bdrv_close(bs);
            return 1;
        }
    }
    if (!cmd->granularity) {
        cmd->granularity = default_granularity(bs);
    }
    for (guint i = 0; i < cmd->ops->len && !ret; i++) {
        const BitmapOp *op = &g_array_index(cmd->ops, BitmapOp, i);

        bdrv_lock(bs);
        if (src_bs) {
            bdrv_lock(src_bs);
        }
        if (!run_op(bs, src_bs, op, cmd, &err)) {
            tern_error_report("Operation %s on bitmap %s failed: %s",
                              action_names[op->act], cmd->name, err->message);
            g_clear_error(&err);
            ret = 1;
        }
        if (src_bs) {
            bdrv_unlock(src_bs);
        }
        bdrv_unlock(bs);
    }
    bdrv_close(src_bs);
    bdrv_close(bs);
    return ret;
}

int img_bitmap(int argc, char **argv)
{
    BitmapCmd cmd = { 0 };
    int ret;

    cmd.ops = g_array_new(FALSE, TRUE, sizeof(BitmapOp));
    g_array_set_clear_func(cmd.ops, op_clear);
    ret = parse_args(argc, argv, &cmd);
    if (ret == 0) {
        ret = run_cmd(&cmd);
    }
    g_array_unref(cmd.ops);
    return ret;
}

void img_bitmaps_json(json_object *o, const GPtrArray *bitmaps)
{
    json_object *list;

    if (!bitmaps) {
        return;
    }
    list = json_object_new_array();
    json_object_object_add(o, "bitmaps", list);
    for (guint i = 0; i < bitmaps->len; i++) {
        const BlockBitmapInfo *bi = bitmaps->pdata[i];
        json_object *b = json_object_new_object();
        json_object *flags = json_object_new_array();

        if (bi->in_use) {
            json_object_array_add(flags, json_object_new_string("in-use"));
        }
        if (bi->auto_flag) {
            json_object_array_add(flags, json_object_new_string("auto"));
        }
        json_object_object_add(b, "flags", flags);
        tern_json_add_str(b, "name", bi->name);
        tern_json_add_uint(b, "granularity", bi->granularity);
        json_object_array_add(list, b);
    }
}

void img_bitmaps_human(GString *out, const GPtrArray *bitmaps,
                       const char *indent)
{
    if (!bitmaps) {
        return;
    }
    g_string_append_printf(out, "%sbitmaps:\n", indent);
    for (guint i = 0; i < bitmaps->len; i++) {
        const BlockBitmapInfo *bi = bitmaps->pdata[i];
        int f = 0;

        g_string_append_printf(out, "%s    [%u]:\n", indent, i);
        g_string_append_printf(out, "%s        flags:\n", indent);
        if (bi->in_use) {
            g_string_append_printf(out, "%s            [%d]: in-use\n",
                                   indent, f++);
        }
        if (bi->auto_flag) {
            g_string_append_printf(out, "%s            [%d]: auto\n",
                                   indent, f++);
        }
        g_string_append_printf(out, "%s        name: %s\n", indent, bi->name);
        g_string_append_printf(out, "%s        granularity: %" PRIu32 "\n",
                               indent, bi->granularity);
    }
}
