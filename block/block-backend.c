/*
 * The block backend list (include/block/block-backend.h): drives by name,
 * their root nodes, the devices using them, and QEMU's node naming rules
 * over them.
 */
#include <string.h>

#include "block/block-backend.h"
#include "tern/error.h"

struct BlockBackend {
    char *name;
    BlockNode *root;
    bool owns_root;         /* false: a named node the block graph keeps */
    char *dev;
    void *opaque;
};

struct BlockBackendList {
    GPtrArray *blks;        /* of BlockBackend *, in order */
};

BlockBackend *blk_new(const char *name, BlockNode *root, void *opaque)
{
    BlockBackend *blk = g_new0(BlockBackend, 1);

    blk->name = g_strdup(name ? name : "");
    blk->root = root;
    blk->owns_root = true;
    blk->opaque = opaque;
    return blk;
}

BlockBackend *blk_new_shared(const char *name, BlockNode *root, void *opaque)
{
    BlockBackend *blk = blk_new(name, root, opaque);

    blk->owns_root = false;
    return blk;
}

void blk_free(BlockBackend *blk)
{
    if (blk) {
        if (blk->owns_root) {
            bdrv_close(blk->root);
        }
        g_free(blk->name);
        g_free(blk->dev);
        g_free(blk);
    }
}

const char *blk_name(const BlockBackend *blk)
{
    return blk->name;
}

BlockNode *blk_root(const BlockBackend *blk)
{
    return blk->root;
}

void *blk_opaque(const BlockBackend *blk)
{
    return blk->opaque;
}

const char *blk_dev(const BlockBackend *blk)
{
    return blk->dev;
}

bool blk_attach_dev(BlockBackend *blk, const char *dev, GError **errp)
{
    if (blk->dev) {
        return tern_fail(errp, TERN_ERR_BUSY, "drive '%s' is already used by "
                         "%s", blk->name, blk->dev);
    }
    blk->dev = g_strdup(dev);
    return true;
}

BlockBackendList *blk_list_new(void)
{
    BlockBackendList *l = g_new0(BlockBackendList, 1);

    l->blks = g_ptr_array_new();
    return l;
}

void blk_list_free(BlockBackendList *l)
{
    if (l) {
        g_ptr_array_unref(l->blks);
        g_free(l);
    }
}

bool blk_list_add(BlockBackendList *l, BlockBackend *blk, GError **errp)
{
    if (blk->name[0] && blk_list_find(l, blk->name)) {
        return tern_invalid(errp, "duplicate id '%s'", blk->name);
    }
    g_ptr_array_add(l->blks, blk);
    return true;
}

void blk_list_remove(BlockBackendList *l, BlockBackend *blk)
{
    g_ptr_array_remove(l->blks, blk);
}

size_t blk_list_count(const BlockBackendList *l)
{
    return l ? l->blks->len : 0;
}

BlockBackend *blk_list_get(const BlockBackendList *l, size_t i)
{
    return i < blk_list_count(l) ? g_ptr_array_index(l->blks, i) : NULL;
}

BlockBackend *blk_list_find(const BlockBackendList *l, const char *name)
{
    for (size_t i = 0; i < blk_list_count(l); i++) {
        BlockBackend *blk = g_ptr_array_index(l->blks, i);

        if (name[0] && !strcmp(blk->name, name)) {
            return blk;
        }
    }
    return NULL;
}

/* 'name' among the node names of bs and the nodes below it. */
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

BlockNode *blk_list_lookup_node(const BlockBackendList *l, const char *name)
{
    BlockBackend *blk = blk_list_find(l, name);

    if (blk && blk->root) {
        return blk->root;
    }
    return blk_list_find_node(l, name);
}

BlockNode *blk_list_find_node(const BlockBackendList *l, const char *name)
{
    for (size_t i = 0; i < blk_list_count(l); i++) {
        BlockNode *bs = find_node_name(blk_list_get(l, i)->root, name);

        if (bs) {
            return bs;
        }
    }
    return NULL;
}

const char *blk_list_node_name(const BlockBackendList *l, BlockNode *bs)
{
    for (size_t i = 0; i < blk_list_count(l); i++) {
        BlockBackend *blk = blk_list_get(l, i);

        if (blk->root == bs && blk->name[0]) {
            return blk->name;
        }
    }
    return bdrv_get_node_name(bs);
}

GPtrArray *blk_list_all_nodes(const BlockBackendList *l)
{
    GPtrArray *nodes = g_ptr_array_new();

    for (size_t i = 0; i < blk_list_count(l); i++) {
        BlockNode *root = blk_list_get(l, i)->root;

        if (root && !g_ptr_array_find(nodes, root, NULL)) {
            g_ptr_array_add(nodes, root);
        }
    }
    for (size_t i = 0; i < blk_list_count(l); i++) {
        BlockNode *root = blk_list_get(l, i)->root;

        for (BlockNode *bs = root ? root->file : NULL; bs; bs = bs->file) {
            if (!g_ptr_array_find(nodes, bs, NULL)) {
                g_ptr_array_add(nodes, bs);
            }
        }
    }
    return nodes;
}
