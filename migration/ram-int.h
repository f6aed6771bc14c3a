/*
 * Private to the RAM migration files: the RamMigration object shared by the
 * "ram" section itself (ram.c) and its postcopy half (ram-postcopy.c), and
 * the record helpers both use.
 */
#ifndef MIGRATION_RAM_INT_H
#define MIGRATION_RAM_INT_H

#include "migration/ram.h"

#define RAM_FLAG_ZERO       0x02
#define RAM_FLAG_MEM_SIZE   0x04
#define RAM_FLAG_PAGE       0x08
#define RAM_FLAG_EOS        0x10
#define RAM_FLAG_CONTINUE   0x20
#define RAM_FLAG_MASK       (RAM_PAGE_SIZE - 1)

typedef struct RamRequest {
    uint64_t offset, len;       /* bytes, page aligned, inside the block */
} RamRequest;

struct RamMigration {
    GuestMemory *mem;
    char block_name[256];
    uint64_t length;                /* block bytes = mem->ram_size */
    RamDirtySyncFn sync;
    void *sync_opaque;
    unsigned batch;                 /* pages per iteration, 0 = no cap */

    /* Source. 'lock' guards dirty and cursor while another thread may send
     * pages (a preempt channel served by the return-path thread) and the
     * requests queue; the job thread alone uses the rest. */
    GMutex lock;
    HBitmap *dirty;                 /* pages still to send */
    HBitmap *holes;                 /* memfd pages never written (or NULL) */
    uint64_t cursor;                /* next page to look at */
    bool block_named;               /* this section named the block */
    bool postcopy_capable;          /* capability postcopy-ram */
    bool preempt;                   /* requested pages have their channel */
    bool in_postcopy;               /* past the switchover */
    GQueue requests;                /* of RamRequest, awaited pages */
    int nr_requests;                /* atomic: requests.length */
    bool request_named;             /* a REQ_PAGES_ID named the block */
    GMutex urgent_lock;             /* the preempt channel has two writers:
                                     * requested pages, then EOS */
    bool urgent_named;              /* the preempt channel named it */

    /* Destination. */
    bool load_named;                /* CONTINUE is allowed (main channel) */
    bool urgent_load_named;         /* same on the preempt channel */
    UffdPager *pager;               /* postcopy advised; NULL otherwise */
    RamMigrationStats stats;        /* counters updated atomically */

    /* multifd (ram-multifd.c): set and cleared under 'lock' by the VMM's
     * threads; the job or the loader uses them in between. */
    MultifdSend *mf_send;
    MultifdRecv *mf_recv;
};

/* Host address of the block page at 'offset', or NULL if no region maps it. */
uint8_t *ram_block_page(const RamMigration *rm, uint64_t offset);
/* Take page 'page' off the dirty bitmap (under rm->lock); false if it was
 * clean already. */
bool ram_take_dirty(RamMigration *rm, uint64_t page);
/* One page record; '*named' is the channel's "block named" state. */
void ram_send_page(RamMigration *rm, QEMUFile *f, uint64_t page, bool *named);
/* Records up to EOS; '*named' as above. */
bool ram_load_records(RamMigration *rm, QEMUFile *f, bool *named,
                      GError **errp);
/* The dirty-sync callback into rm->dirty (counts for auto-converge). */
bool ram_sync_dirty(RamMigration *rm, GError **errp);
/* Postcopy, source: send queued requests first (main channel). */
void ram_serve_requests(RamMigration *rm, QEMUFile *f);
/* Whether page 'page' is still a hole; it is not one after this call.
 * Under rm->lock. */
bool ram_take_hole(RamMigration *rm, uint64_t page);
/* Source: a page with data, on a multifd channel if there are any (not in
 * postcopy); false: the caller sends it on the main stream. */
bool ram_multifd_send_page(RamMigration *rm, QEMUFile *f, uint64_t offset);
/* Source, before the main stream's RAM EOS: SYNC on every channel; with
 * 'flush', also wait until every packet is out. */
bool ram_multifd_sync(RamMigration *rm, QEMUFile *f, bool flush,
                      GError **errp);
/* Destination, at the main stream's RAM EOS: every channel's SYNC. */
bool ram_multifd_recv_sync(RamMigration *rm, GError **errp);

#endif
