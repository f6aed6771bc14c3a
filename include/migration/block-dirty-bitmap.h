/*
 * Dirty-bitmap migration: the "dirty-bitmap" live section (version 1), byte
 * for byte as QEMU's migration/block-dirty-bitmap.c writes and reads it, so
 * named bitmaps move with the VM between tern and QEMU. The source sends a
 * START chunk per bitmap at setup, the bits in the END section (or during
 * postcopy iterations), then COMPLETE chunks. The destination creates each
 * bitmap disabled, gives enabled ones a successor that records writes made
 * after the switchover, and merges it back when the bitmap is COMPLETE.
 *
 * The bitmaps of every drive's root node migrate (the owner's block backend
 * list); a node goes by the name QEMU gives it (the drive id for a drive's
 * root, else its node-name) and the destination looks it up by that name.
 */
#ifndef MIGRATION_BLOCK_DIRTY_BITMAP_H
#define MIGRATION_BLOCK_DIRTY_BITMAP_H

#include "block/block-backend.h"
#include "block/dirty-bitmap.h"
#include "migration/savevm.h"

typedef struct DirtyBitmapNodes {
    /* The drives (outlives the migration; NULL: none). */
    const BlockBackendList *blks;
    /* Whether the guest runs (bitmaps then iterate only in postcopy). */
    bool (*vm_running)(void *opaque);
    /* Whether the migration has switched to postcopy. */
    bool (*in_postcopy)(void *opaque);
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
/* Source, when a migration failed before the destination ran: the bitmaps
 * that were to travel belong to their images again and are stored at close
 * (the seed leaves them unstored, which loses them at the next shutdown). */
void dirty_bitmap_migration_source_failed(DirtyBitmapMigration *dbm);

#endif
