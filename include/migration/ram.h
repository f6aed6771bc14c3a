/*
 * RAM migration in QEMU's "ram" section format (version 4): guest RAM is one
 * RAM block (the VM's memfd, named like QEMU's, e.g. "pc.ram"), whose offsets
 * are the memfd offsets of GuestMemory's regions. The source sends every page
 * once (bulk stage), then the pages a dirty-sync callback reports; zero pages
 * go as one byte, others as 4 KiB sent without copying. The destination
 * writes pages straight into its guest memory. With postcopy the rest of
 * RAM moves after the switchover (ram-postcopy.c): the source drops what the
 * destination must not keep (RAM_DISCARD) and serves requested pages ahead
 * of the background stream, on the main channel or a preempt channel; the
 * destination places pages through a UffdPager. With multifd the pages
 * travel on channels of their own (ram-multifd.c). Multiple blocks and
 * compression are not implemented; the wire format is in docs/migration.md.
 */
#ifndef MIGRATION_RAM_H
#define MIGRATION_RAM_H

#include "hw/core/guest-memory.h"
#include "migration/multifd-recv.h"
#include "migration/multifd-send.h"
#include "migration/savevm.h"
#include "migration/uffd-pager.h"
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
    uint64_t postcopy_requests; /* page requests from the destination */
    uint64_t multifd_bytes;     /* of 'transferred', on multifd channels */
    uint64_t zero_copy_copied;  /* syncs where zero-copy-send was copied */
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
const char *ram_migration_block_name(const RamMigration *rm);

/* ---- postcopy (ram-postcopy.c) ---- */

/* Source, capability postcopy-ram: RAM iterates on after the switchover;
 * 'preempt': requested pages go on a channel of their own. */
void ram_migration_set_postcopy(RamMigration *rm, bool capable, bool preempt);
/* Source, VM stopped, at the switchover: a last dirty sync, then
 * POSTCOPY_RAM_DISCARD for every page still dirty (sent but dirtied since,
 * or never sent), as many ranges per command as its length allows. From
 * then on each iteration sends requested pages before background ones. */
bool ram_migration_postcopy_start(RamMigration *rm, QEMUFile *f,
                                  GError **errp);
/* Source, return-path thread: the destination asks for [start, start+len)
 * of 'block' (NULL: the block its last request named). Checked as QEMU
 * checks it (known block, whole pages, inside the block). With 'urgent'
 * (the preempt channel) the pages still dirty go there at once; otherwise
 * they are queued for the migration thread. */
bool ram_migration_request(RamMigration *rm, const char *block,
                           uint64_t start, uint64_t len, QEMUFile *urgent,
                           GError **errp);
/* Source: the end of the preempt channel (EOS), after any requested page
 * being sent on it. */
void ram_migration_end_urgent(RamMigration *rm, QEMUFile *f);
/* Source, postcopy recovery, return-path thread: the destination's
 * received bitmap for 'block' follows a RECV_BITMAP message on 'rp' (be64
 * size, little-endian words, be64 end mark); every page it lacks becomes
 * dirty again and the queue is dropped. The next records on any new
 * channel name the block again. */
bool ram_migration_load_recv_bitmap(RamMigration *rm, QEMUFile *rp,
                                    const char *block, GError **errp);
/* Bytes of the received bitmap on the wire, the end mark included. */
uint64_t ram_migration_recv_bitmap_size(const RamMigration *rm);
#define RAM_RECV_BITMAP_END 0x0123456789abcdefULL

/* Destination, from POSTCOPY_ADVISE: pages loaded are recorded in 'pager';
 * once it is started they are placed through it. NULL detaches. */
void ram_migration_set_pager(RamMigration *rm, UffdPager *pager);
/* Destination: POSTCOPY_RAM_DISCARD of a range ('block' must be ours). */
bool ram_migration_discard(RamMigration *rm, const char *block,
                           uint64_t start, uint64_t len, GError **errp);
/* Destination, preempt channel: page records up to EOS. */
bool ram_migration_load_urgent(RamMigration *rm, QEMUFile *f, GError **errp);

/* ---- multifd (ram-multifd.c) ---- */

/* Source: until the switch to postcopy, pages with data go on the multifd
 * channels 'fds' (taken, closed on failure) and every RAM EOS of the main
 * stream follows a SYNC on each (QEMU 7.2's format); zero pages and holes
 * stay ZERO records on the main stream. 'uuid': the VM's. */
bool ram_migration_multifd_send_start(RamMigration *rm, const int *fds,
                                      unsigned n, bool zero_copy,
                                      const uint8_t uuid[16], GError **errp);
/* Destination: pages arrive on the channels 'fds' (taken) and every RAM
 * EOS of the main stream waits for their SYNC. */
void ram_migration_multifd_recv_start(RamMigration *rm, const int *fds,
                                      unsigned n, const uint8_t uuid[16]);
/* Postcopy recovery, either end: new channels 'fds' for the old ones. */
void ram_migration_multifd_restart(RamMigration *rm, const int *fds,
                                   unsigned n);
/* Any thread: the channels' blocked I/O fails now (cancel, pause,
 * teardown). */
void ram_migration_multifd_shutdown(RamMigration *rm);
/* After the job or the load: stop the channels. */
void ram_migration_multifd_stop(RamMigration *rm);
/* A channel that failed says more than the main stream's EPIPE: *errp
 * becomes that failure, if there was one. */
void ram_migration_multifd_explain(RamMigration *rm, GError **errp);

#endif
