/*
 * The named block nodes of -blockdev and blockdev-add (hw/block/blockdev.h):
 * BlockdevOptions as QMP types (one decoder for the option and the command,
 * so both check alike, and query-qmp-schema describes what is accepted),
 * opening the graph, and the drives devices use the nodes through.
 */
#include <errno.h>
#include <string.h>

#include "hw/block/blockdev.h"
#include "tern/error.h"
#include "tern/keyval.h"

#define BLOCKDEV_JSON_MAX_DEPTH 32

typedef struct BdNode {
    char *name;
    BlockNode *bs;
    struct BdNode *parent;      /* the format node over it, or NULL */
    bool inline_child;          /* made with its parent's options: goes with it */
    bool is_file;
    bool auto_read_only;
    int flags;                  /* what bs was opened with */
    bool no_flush;              /* cache.no-flush */
    Drive *drive;               /* the drive a device uses it through */
} BdNode;

struct BlockdevSet {
    GPtrArray *nodes;           /* of BdNode *, oldest first */
    DriveSet *drives;
    int extra_flags;            /* BDRV_O_INACTIVE on a migration target */
};

/* --- the options as QMP types ----------------------------------------------- */

static const char *const driver_values[] = { "file", "raw", "qcow2", NULL };
QMP_ENUM_TYPE(driver_type, "BlockdevDriver", driver_values);
/* In the enum's order: ignore (QEMU's default for -blockdev) drops a
 * guest's discards at this node, unmap passes them on (BDRV_O_UNMAP). */
static const char *const discard_values[] = { "ignore", "unmap", NULL };
QMP_ENUM_TYPE(discard_type, "BlockdevDiscardOptions", discard_values);
static const char *const detect_zeroes_values[] = { "off", NULL };
QMP_ENUM_TYPE(detect_zeroes_type, "BlockdevDetectZeroesOptions", detect_zeroes_values);
static const char *const aio_values[] = { "threads", NULL };
QMP_ENUM_TYPE(aio_type, "BlockdevAioOptions", aio_values);
static const char *const locking_values[] = { "auto", "on", "off", NULL };
QMP_ENUM_TYPE(locking_type, "OnOffAuto", locking_values);

QMP_OBJECT_TYPE(cache_type, "BlockdevCacheOptions", BlockdevCacheOptions,
    QMP_OPTIONAL(BlockdevCacheOptions, direct, "direct", qmp_type_bool, .b = false),
    QMP_OPTIONAL(BlockdevCacheOptions, no_flush, "no-flush", qmp_type_bool, .b = false));

QMP_OBJECT_TYPE(file_type, "BlockdevOptionsFile", BlockdevOptionsFile,
    QMP_MEMBER(BlockdevOptionsFile, filename, "filename", qmp_type_str),
    QMP_OPTIONAL(BlockdevOptionsFile, aio, "aio", aio_type, .i = 0),
    QMP_OPTIONAL(BlockdevOptionsFile, locking, "locking", locking_type, .i = 0));

QMP_ALTERNATE_TYPE(ref_type, "BlockdevRef", BlockdevRef,
    QMP_ALTERNATIVE(BlockdevRef, definition, blockdev_options_type),
    QMP_ALTERNATIVE(BlockdevRef, reference, qmp_type_str));

QMP_ALTERNATE_TYPE(ref_or_null_type, "BlockdevRefOrNull", BlockdevRefOrNull,
    QMP_ALTERNATIVE(BlockdevRefOrNull, definition, blockdev_options_type),
    QMP_ALTERNATIVE(BlockdevRefOrNull, reference, qmp_type_str),
    QMP_ALTERNATIVE(BlockdevRefOrNull, null, qmp_type_null));

QMP_OBJECT_TYPE(raw_type, "BlockdevOptionsRaw", BlockdevOptionsFormat,
    QMP_MEMBER(BlockdevOptionsFormat, file, "file", ref_type));
QMP_OBJECT_TYPE(qcow2_type, "BlockdevOptionsQcow2", BlockdevOptionsFormat,
    QMP_MEMBER(BlockdevOptionsFormat, file, "file", ref_type),
    QMP_OPTIONAL(BlockdevOptionsFormat, backing, "backing", ref_or_null_type, .i = 0));

static const QmpMember options_members[] = {
    QMP_MEMBER(BlockdevOptions, driver, "driver", driver_type),
    QMP_OPTIONAL(BlockdevOptions, node_name, "node-name", qmp_type_str, .s = NULL),
    QMP_OPTIONAL(BlockdevOptions, discard, "discard", discard_type, .i = 0),
    QMP_OPTIONAL(BlockdevOptions, cache, "cache", cache_type, .i = 0),
    QMP_OPTIONAL(BlockdevOptions, read_only, "read-only", qmp_type_bool, .b = false),
    QMP_OPTIONAL(BlockdevOptions, auto_read_only, "auto-read-only", qmp_type_bool,
                 .b = false),
    QMP_OPTIONAL(BlockdevOptions, force_share, "force-share", qmp_type_bool, .b = false),
    QMP_OPTIONAL(BlockdevOptions, detect_zeroes, "detect-zeroes", detect_zeroes_type,
                 .i = 0),
    QMP_END,
};
static const QmpVariant options_variants[] = {
    { "file", &file_type }, { "raw", &raw_type }, { "qcow2", &qcow2_type }, { NULL },
};
const QmpType blockdev_options_type = {
    .name = "BlockdevOptions", .kind = QMP_KIND_OBJECT, .size = sizeof(BlockdevOptions),
    .members = options_members, .tag = "driver", .variants = options_variants,
    .variant_offset = offsetof(BlockdevOptions, u),
};

/* --- the graph ---------------------------------------------------------------- */

static BdNode *find(BlockdevSet *s, const char *name)
{
    for (guint i = 0; i < s->nodes->len; i++) {
        BdNode *n = s->nodes->pdata[i];

        if (!strcmp(n->name, name)) {
            return n;
        }
    }
    return NULL;
}

/* QEMU's name rule, and unique among every node, -drive's too. */
static bool check_node_name(BlockdevSet *s, const char *name, GError **errp)
{
    if (!drive_node_name_ok(name, errp)) {
        return false;
    }
    if (find(s, name) || blk_list_lookup_node(s->drives->backends, name)) {
        return tern_invalid(errp, "Duplicate nodes with node-name='%s'", name);
    }
    return true;
}

/* The open flags a node's own options ask for. */
static int node_flags(BlockdevSet *s, const BlockdevOptions *o)
{
    int flags = s->extra_flags;

    if (!o->read_only) {
        flags |= BDRV_O_RDWR;
    }
    if (o->cache.direct) {
        flags |= BDRV_O_NOCACHE;
    }
    if (o->force_share) {
        flags |= BDRV_O_SHARE_RW;
    }
    if (o->has_discard && o->discard == 1) {
        flags |= BDRV_O_UNMAP;
    }
    return flags;
}

static bool check_common(const BlockdevOptions *o, GError **errp)
{
    if (o->force_share && !o->read_only) {
        return tern_invalid(errp, "force-share=on can only be used with read-only "
                            "images");
    }
    return true;
}

static BdNode *add_node(BlockdevSet *s, const BlockdevOptions *o, BlockNode *bs)
{
    BdNode *n = g_new0(BdNode, 1);

    n->bs = bs;
    n->no_flush = o->cache.no_flush;
    if (o->node_name) {
        bdrv_set_node_name(bs, o->node_name);
    }
    n->name = g_strdup(bdrv_get_node_name(bs));
    g_ptr_array_add(s->nodes, n);
    return n;
}

static BdNode *open_file(BlockdevSet *s, const BlockdevOptions *o, GError **errp)
{
    const BlockdevOptionsFile *f = o->u;
    int flags = node_flags(s, o);
    g_autoptr(GError) err = NULL;
    BlockNode *bs;
    BdNode *n;

    if (f->has_locking && f->locking == 2) {
        flags |= BDRV_O_NO_LOCK;
    }
    /* auto-read-only: read-only until a writer needs more (reopen_file). */
    bs = bdrv_open_protocol(f->filename, o->auto_read_only ? flags & ~BDRV_O_RDWR
                                                           : flags, &err);
    if (!bs) {
        g_propagate_error(errp, g_steal_pointer(&err));
        return NULL;
    }
    n = add_node(s, o, bs);
    n->is_file = true;
    n->auto_read_only = o->auto_read_only && !o->read_only;
    n->flags = bdrv_get_flags(bs);
    return n;
}

/* Puts a 'format' node opened with 'flags' over file node n: an
 * auto-read-only node becomes read-write for a writable parent, and a
 * format that keeps metadata in the file gets it stable (nothing else uses
 * n yet, so it is reopened as needed). */
static bool reopen_file(BdNode *n, const char *format, int flags, GError **errp)
{
    int rdwr = n->auto_read_only ? flags & BDRV_O_RDWR : n->flags & BDRV_O_RDWR;
    int want = bdrv_file_flags_for(format, (n->flags & ~BDRV_O_RDWR) | rdwr);
    g_autofree char *filename = NULL;
    BlockNode *bs;

    if ((flags & BDRV_O_RDWR) && !rdwr) {
        return tern_invalid(errp, "Block node '%s' is read-only", n->name);
    }
    if (want == n->flags) {
        return true;
    }
    /* Our own lock would stand in the way: close first, and on failure
     * open again as it was. */
    filename = g_strdup(bdrv_get_filename(n->bs));
    bdrv_close(n->bs);
    bs = bdrv_open_protocol(filename, want, errp);
    if (!bs) {
        bs = bdrv_open_protocol(filename, n->flags, NULL);
        if (!bs) {
            tern_die("block node '%s' could not be reopened", n->name);
        }
        bdrv_set_node_name(bs, n->name);
        n->bs = bs;
        return false;
    }
    bdrv_set_node_name(bs, n->name);
    n->bs = bs;
    n->flags = want;
    return true;
}

static BdNode *open_node(BlockdevSet *s, const BlockdevOptions *o, GError **errp);

/* The file child of a format node: an existing node, or a new one. */
static BdNode *child_node(BlockdevSet *s, const BlockdevRef *ref, GError **errp)
{
    BdNode *n;

    if (ref->kind == 0) {
        n = open_node(s, &ref->definition, errp);
        if (n) {
            n->inline_child = true;
        }
        return n;
    }
    n = find(s, ref->reference);
    if (!n) {
        tern_fail(errp, TERN_ERR_FAILED, "Cannot find device='%s' nor "
                  "node-name='%s'", ref->reference, ref->reference);
        return NULL;
    }
    if (n->parent || n->drive) {
        tern_fail(errp, TERN_ERR_BUSY, "Node '%s' is already in use", n->name);
        return NULL;
    }
    return n;
}

static void drop_node(BlockdevSet *s, BdNode *n, bool close)
{
    if (close) {
        bdrv_close(n->bs);
    }
    g_ptr_array_remove(s->nodes, n);
    g_free(n->name);
    g_free(n);
}

static BdNode *open_format(BlockdevSet *s, const BlockdevOptions *o, GError **errp)
{
    const BlockdevOptionsFormat *f = o->u;
    const char *format = driver_values[o->driver];
    int flags = node_flags(s, o);
    bool new_child = f->file.kind == 0;
    BdNode *child;
    BlockNode *bs;
    BdNode *n;

    /* "" is QEMU's old spelling of null (key=value cannot say null). */
    if (f->has_backing && f->backing.kind != 2 &&
        !(f->backing.kind == 1 && !f->backing.reference[0])) {
        tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "tern opens no backing files: give "
                  "\"backing\": null or leave it out");
        return NULL;
    }
    child = child_node(s, &f->file, errp);
    if (!child) {
        return NULL;
    }
    if (!child->is_file) {
        tern_invalid(errp, "Node '%s' is not a file node: tern stacks one format "
                     "node over one file node", child->name);
    } else if (reopen_file(child, format, flags, errp) &&
               (bs = bdrv_open_over(format, child->bs, flags, errp))) {
        n = add_node(s, o, bs);
        n->flags = flags;
        child->parent = n;
        return n;
    }
    if (new_child) {
        drop_node(s, child, true);
    }
    return NULL;
}

static BdNode *open_node(BlockdevSet *s, const BlockdevOptions *o, GError **errp)
{
    if ((o->node_name && !check_node_name(s, o->node_name, errp)) ||
        !check_common(o, errp)) {
        return NULL;
    }
    return o->driver == BLOCKDEV_DRIVER_FILE ? open_file(s, o, errp)
                                             : open_format(s, o, errp);
}

bool blockdev_add(BlockdevSet *s, const BlockdevOptions *o, GError **errp)
{
    if (!s) {
        return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "this machine has no block "
                         "layer");
    }
    if (!o->node_name) {
        return tern_invalid(errp, "'node-name' must be specified for the root node");
    }
    return open_node(s, o, errp) != NULL;
}

bool blockdev_del(BlockdevSet *s, const char *node_name, GError **errp)
{
    BdNode *n = s ? find(s, node_name) : NULL;

    if (!n) {
        return tern_fail(errp, TERN_ERR_FAILED, "Failed to find node with "
                         "node-name='%s'", node_name);
    }
    /* QEMU's words: a device's node, and a node under another. */
    if (n->drive) {
        return tern_fail(errp, TERN_ERR_BUSY, "Node %s is in use", node_name);
    }
    if (n->parent) {
        return tern_fail(errp, TERN_ERR_BUSY, "Block device %s is in use", node_name);
    }
    /* As in QEMU, a file node made by its own blockdev-add outlives its
     * parent; one made inline goes with it. */
    for (guint i = s->nodes->len; i-- > 0;) {
        BdNode *c = s->nodes->pdata[i];

        if (c->parent == n && !c->inline_child) {
            c->parent = NULL;
            bdrv_close_keep_file(n->bs);
            drop_node(s, n, false);
            return true;
        }
        if (c->parent == n) {
            drop_node(s, c, false);   /* closed with its parent */
        }
    }
    drop_node(s, n, true);
    return true;
}

/* --- -blockdev ------------------------------------------------------------------ */

static json_object *option_json(const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = NULL;

    if (arg[0] == '{') {
        g_autoptr(GError) err = NULL;
        json_object *o = tern_json_parse(arg, strlen(arg), BLOCKDEV_JSON_MAX_DEPTH,
                                         &err);

        if (!o) {
            tern_invalid(errp, "JSON parse error, %s",
                         err ? err->message : "null is not an object");
        }
        return o;
    }
    kv = keyval_parse(arg, NULL, errp);
    return kv ? qmp_keyval_to_json(&blockdev_options_type, kv, errp) : NULL;
}

bool blockdev_set_add_option(BlockdevSet *s, const char *arg, GError **errp)
{
    g_autoptr(json_object) in = option_json(arg, errp);
    BlockdevOptions o = { 0 };
    bool ok;

    if (!in || !qmp_decode(&blockdev_options_type, in, &o, "", errp)) {
        return false;
    }
    ok = blockdev_add(s, &o, errp);
    qmp_free(&blockdev_options_type, &o);
    return ok;
}

/* --- the set ------------------------------------------------------------------ */

BlockdevSet *blockdev_set_new(DriveSet *drives, bool incoming)
{
    BlockdevSet *s = g_new0(BlockdevSet, 1);

    s->nodes = g_ptr_array_new();
    s->drives = drives;
    s->extra_flags = incoming ? BDRV_O_INACTIVE : 0;
    return s;
}

void blockdev_set_free(BlockdevSet *s)
{
    if (!s) {
        return;
    }
    for (guint i = 0; i < s->nodes->len; i++) {
        BdNode *n = s->nodes->pdata[i];

        if (!n->parent) {
            bdrv_close(n->bs);   /* and the file node under it */
        }
    }
    for (guint i = 0; i < s->nodes->len; i++) {
        BdNode *n = s->nodes->pdata[i];

        g_free(n->name);
        g_free(n);
    }
    g_ptr_array_unref(s->nodes);
    g_free(s);
}

Drive *blockdev_claim(BlockdevSet *s, const char *name, const char *device,
                      GError **errp)
{
    BdNode *n = s ? find(s, name) : NULL;
    Drive *d;

    if (!n) {
        tern_fail(errp, TERN_ERR_NOT_FOUND, "no drive with id '%s' nor a block node of "
                  "that name", name);
        return NULL;
    }
    if (n->drive || n->parent) {
        tern_fail(errp, TERN_ERR_BUSY, "Node '%s' is already in use", name);
        return NULL;
    }
    d = g_new0(Drive, 1);
    /* What the node was asked to be: an inactive node (a migration target)
     * reads as read-only until it is handed over. */
    d->read_only = !(n->flags & BDRV_O_RDWR);
    d->ignore_flush = n->no_flush;
    d->blk = blk_new_shared("", n->bs, d);
    if (!blk_attach_dev(d->blk, device, errp) ||
        !blk_list_add(s->drives->backends, d->blk, errp)) {
        drive_free(d);
        return NULL;
    }
    d->set = s->drives;
    n->drive = d;
    return d;
}

const BlockBackendList *blockdev_set_backends(BlockdevSet *s)
{
    return s ? s->drives->backends : NULL;
}

BlockNode *blockdev_node_at(BlockdevSet *s, size_t i)
{
    if (!s || i >= s->nodes->len) {
        return NULL;
    }
    return ((BdNode *)s->nodes->pdata[s->nodes->len - 1 - i])->bs;
}
