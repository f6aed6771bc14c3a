/*
 * Dirty-bitmap migration: the "dirty-bitmap" live section (version 1), byte
 * for byte as QEMU's migration/block-dirty-bitmap.c writes and reads it, so
 * named bitmaps move with the VM between tern and QEMU. The source sends a
 * START chunk per bitmap at setup, the bits in the END section (or during
 * postcopy iterations), then COMPLETE chunks. The destination creates each
 * bitmap disabled, gives enabled ones a successor that records writes made
 * after the switchover, and merges it back when the bitmap is COMPLETE.
 *
 * The block layer has no node registry yet, so the owner passes a resolver:
 * the nodes to migrate from, and the node to load into by name.
 */
#ifndef MIGRATION_BLOCK_DIRTY_BITMAP_H
#define MIGRATION_BLOCK_DIRTY_BITMAP_H

#include "block/block.h"
#include "block/dirty-bitmap.h"
#include "migration/savevm.h"

typedef struct DirtyBitmapNodes {
    /* Source: the nodes whose named bitmaps migrate (caller frees array). */
    GPtrArray *(*list)(void *opaque);
    /* Destination: the node called 'name', or NULL. */
    BlockNode *(*find)(void *opaque, const char *name);
    /* Whether the guest runs (bitmaps then iterate only in postcopy). */
    bool (*vm_running)(void *opaque);
    /* Whether the migration has switched to postcopy. */
    bool (*in_postcopy)(void *opaque);
    /* Optional: the name to send for 'bs' (QEMU sends a drive's name for
     * its top node), NULL for the node name. */
    const char *(*wire_name)(void *opaque, BlockNode *bs);
    void *opaque;
} DirtyBitmapNodes;

typedef struct DirtyBitmapMigration DirtyBitmapMigration;

DirtyBitmapMigration *dirty_bitmap_migration_new(const DirtyBitmapNodes *nodes);
void dirty_bitmap_migration_free(DirtyBitmapMigration *dbm);
/* The "dirty-bitmaps" capability: without it the section is not sent. */
void dirty_bitmap_migration_set_enabled(DirtyBitmapMigration *dbm, bool on);
/* Register as live section "dirty-bitmap" instance 0 version 1. */
void dirty_bitmap_migration_register(DirtyBitmapMigration *dbm, SaveVM *sv);
/* Destination, before the guest starts: enable migrated bitmaps, and let
 * the successors of unfinished ones (postcopy) record writes. */
void dirty_bitmap_migration_before_vm_start(DirtyBitmapMigration *dbm);

#endif
