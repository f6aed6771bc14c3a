/*
 * Block backends (QEMU's BlockBackend): a machine's drives as the block
 * layer keeps them - each a name (the -drive id; "" for none), the root node
 * it owns and closes, and the device it is attached to - in one list. The
 * list is the one place that finds nodes by name and that walks the drives:
 * QMP (query-block, the dirty-bitmap commands), migration (dirty bitmaps,
 * the images' hand-over) and the devices use it, with QEMU's naming rules:
 *
 *   blk_list_lookup_node(l, name)   a drive id first, else the node-name of
 *                                   any node under a drive (bdrv_lookup_bs)
 *   blk_list_node_name(l, bs)       a drive's root node goes by the drive id,
 *                                   any other node by its node-name
 *                                   (bdrv_get_device_or_node_name)
 *
 * The drive owner (hw/block/drive.c) creates the backends and the list,
 * adds each backend to it, and frees both; a backend's 'opaque' points back
 * at the owner's own record of the drive (its -drive policies).
 */
#ifndef BLOCK_BLOCK_BACKEND_H
#define BLOCK_BLOCK_BACKEND_H

#include "block/block.h"

typedef struct BlockBackend BlockBackend;
typedef struct BlockBackendList BlockBackendList;

/* Takes 'root' (closed by blk_free); name NULL means "". */
BlockBackend *blk_new(const char *name, BlockNode *root, void *opaque);
/* A backend over a node that stays its owner's (a -blockdev node): freeing
 * the backend leaves the node open. */
BlockBackend *blk_new_shared(const char *name, BlockNode *root, void *opaque);
/* Closes the root node (flushing it) if it owns it; NULL is fine. */
void blk_free(BlockBackend *blk);
const char *blk_name(const BlockBackend *blk);
BlockNode *blk_root(const BlockBackend *blk);
void *blk_opaque(const BlockBackend *blk);
/* The device using the drive (QMP's "qdev"), or NULL. */
const char *blk_dev(const BlockBackend *blk);
/* Marks the drive as used by 'dev'; fails if another device has it. */
bool blk_attach_dev(BlockBackend *blk, const char *dev, GError **errp);

BlockBackendList *blk_list_new(void);
/* Frees the list, not the backends; NULL is fine. */
void blk_list_free(BlockBackendList *l);
/* Appends blk; a duplicate non-empty name is refused. */
bool blk_list_add(BlockBackendList *l, BlockBackend *blk, GError **errp);
/* Takes blk out of the list (a drive going away); it stays allocated. */
void blk_list_remove(BlockBackendList *l, BlockBackend *blk);
/* The drives in the order they were added: i < blk_list_count(l). A NULL
 * list has none. */
size_t blk_list_count(const BlockBackendList *l);
BlockBackend *blk_list_get(const BlockBackendList *l, size_t i);
/* By drive id; NULL if none. */
BlockBackend *blk_list_find(const BlockBackendList *l, const char *name);
/* The node called 'name' (rules above); NULL if none. */
BlockNode *blk_list_lookup_node(const BlockBackendList *l, const char *name);
/* By node-name alone, as QEMU's bdrv_find_node (snapshot-save's 'vmstate'
 * and 'devices' name nodes, never drives); NULL if none. */
BlockNode *blk_list_find_node(const BlockBackendList *l, const char *name);
/* The name QEMU gives bs on the wire and in messages (rules above). */
const char *blk_list_node_name(const BlockBackendList *l, BlockNode *bs);
/* Every node under the drives, each once: the drives' roots in order, then
 * the nodes below them (g_ptr_array_unref it). */
GPtrArray *blk_list_all_nodes(const BlockBackendList *l);

#endif
