/*
 * RAM migration in QEMU's "ram" section format (version 4): guest RAM is one
 * RAM block (the VM's memfd, named like QEMU's, e.g. "pc.ram"), whose offsets
 * are the memfd offsets of GuestMemory's regions. The source sends every page
 * once (bulk stage), then the pages a dirty-sync callback reports; zero pages
 * go as one byte, others as 4 KiB sent without copying. The destination
 * writes pages straight into its guest memory. Postcopy, multiple blocks and
 * compression are not implemented yet; the wire format is in
 * docs/migration.md.
 */
#ifndef MIGRATION_RAM_H
#define MIGRATION_RAM_H

#include "hw/core/guest-memory.h"
#include "migration/savevm.h"
#include "tern/hbitmap.h"

#define RAM_PAGE_SIZE 4096
#define RAM_SECTION_VERSION 4

typedef struct RamMigration RamMigration;

/*
 * OR the pages dirtied since the last call into 'dirty' (one bit per page of
 * the block, i.e. per 4 KiB of memfd offset). Called at the start of every
 * round after the first and once with the VM stopped at completion.
 */
typedef bool (*RamDirtySyncFn)(void *opaque, HBitmap *dirty, GError **errp);

typedef struct RamMigrationStats {
    uint64_t total;             /* block length, bytes */
    uint64_t transferred;       /* section bytes written or read */
    uint64_t remaining;         /* dirty bytes not yet sent */
    uint64_t duplicate;         /* zero pages */
    uint64_t normal;            /* full pages */
    uint64_t dirty_sync_count;  /* dirty syncs so far, incl. the bulk stage */
    uint64_t dirtied_pages;     /* pages the syncs found newly dirty */
} RamMigrationStats;

/* 'mem' must outlive the RamMigration; its regions' fd_offset ranges form
 * the block [0, mem->ram_size). */
RamMigration *ram_migration_new(GuestMemory *mem, const char *block_name);
void ram_migration_free(RamMigration *rm);
void ram_migration_set_dirty_sync(RamMigration *rm, RamDirtySyncFn fn,
                                  void *opaque);
/* Register as live section "ram" instance 0 version 4. */
void ram_migration_register(RamMigration *rm, SaveVM *sv);
/* Pages per iteration before checking the rate limit again (default 256). */
void ram_migration_set_batch(RamMigration *rm, unsigned pages);
RamMigrationStats ram_migration_stats(const RamMigration *rm);

#endif
