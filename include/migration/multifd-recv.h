/*
 * The destination's multifd channels: one thread per connection reads its
 * initial packet, then packets, and puts their pages into guest RAM while
 * the loader thread reads the main stream. At every RAM EOS of the main
 * stream the loader waits (multifd_recv_sync) until each channel has
 * reached its SYNC packet; channels wait there too until the loader
 * arrives, so pages of one RAM section never overtake the main stream's
 * records of the one before (a page sent as zero on the main stream, then
 * with data on a channel, ends with the data).
 *
 * Placement, as few copies as the kernel allows: into the RAM memfd, the
 * socket's data goes socket -> pipe -> memfd by splice, so the only copy is
 * the kernel's into the memfd's page (no page fault, no clearing of a fresh
 * page, no copy through a user buffer); RAM without a memfd gets readv
 * straight into its pages. Before a packet's pages land the owner is told
 * (it may refuse them: no channel may write guest RAM once postcopy
 * places pages through userfaultfd).
 */
#ifndef MIGRATION_MULTIFD_RECV_H
#define MIGRATION_MULTIFD_RECV_H

#include "migration/multifd.h"

typedef struct MultifdRecvConfig {
    MultifdBlock block;         /* the RAM block: name and length */
    int ram_fd;                 /* its memfd (file offset = block offset),
                                 * or -1 */
    /* Host address of the page at block offset 'offset' (no memfd). */
    uint8_t *(*page)(void *opaque, uint64_t offset);
    /* Any channel thread, before the pages of 'p' land: false refuses
     * them (the channel fails with errp). */
    bool (*pages)(void *opaque, const MultifdPacket *p, GError **errp);
    void *opaque;
    uint8_t uuid[16];           /* the VM's: every initial packet's */
} MultifdRecvConfig;

typedef struct MultifdRecv MultifdRecv;

/* Takes the accepted sockets 'fds' (in any order: the initial packets say
 * which channel each is) and starts a thread on each. */
MultifdRecv *multifd_recv_new(const MultifdRecvConfig *cfg, const int *fds,
                              unsigned n);
/* The loader, at the main stream's RAM EOS: every channel's SYNC, then the
 * channels go on; false with the first channel failure (a channel closed
 * before its SYNC is one). */
bool multifd_recv_sync(MultifdRecv *r, GError **errp);
/* Any thread: false once a channel failed (its error) or the channels
 * were shut down. */
bool multifd_recv_check(MultifdRecv *r, GError **errp);
/* Any thread: a copy of the first channel failure; NULL if none (being
 * shut down is none). */
GError *multifd_recv_get_error(MultifdRecv *r);
/* Any thread: fail now (teardown); a waiting sync returns. */
void multifd_recv_shutdown(MultifdRecv *r);
/* Any thread: pages from the next packet on go in through their host
 * addresses, never spliced into the memfd behind the mapping's back (a
 * postcopy pager takes faults on pages the mapping lacks). */
void multifd_recv_map_pages(MultifdRecv *r);
/* Postcopy recovery: drop the old connections, carry on over 'fds'. */
void multifd_recv_restart(MultifdRecv *r, const int *fds, unsigned n);
/* Stops the threads and closes the sockets. NULL is ok. */
void multifd_recv_free(MultifdRecv *r);

#endif
