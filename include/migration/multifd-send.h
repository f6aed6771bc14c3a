/*
 * The source's multifd channels: one thread per connection writes the
 * packets the migration thread hands it (include/migration/multifd.h for
 * the bytes). The migration thread fills a packet with page offsets and
 * deals it to the least busy channel (each holds a few), so pages leave on
 * all connections at once; a sync queues a SYNC packet on every channel.
 *
 * Page data is never copied here. With the RAM memfd the pages go from the
 * memfd through a pipe into the socket by reference (splice), so the
 * kernel moves page references, not bytes; with zero-copy-send (TCP,
 * MSG_ZEROCOPY, QEMU's capability) they are sent from the mapping and the
 * kernel reports when it let go of them, which every SYNC waits for, as
 * QEMU does; otherwise sendmsg copies them from the mapping. Either way a
 * page may change after it was queued: the dirty log sends it again, and
 * at the end the source waits until its sockets are drained.
 *
 * Errors: the first channel failure is kept ("multifd channel N: ...");
 * from then on nothing is queued and the migration thread finds it with
 * multifd_send_check.
 */
#ifndef MIGRATION_MULTIFD_SEND_H
#define MIGRATION_MULTIFD_SEND_H

#include "migration/multifd.h"

typedef struct MultifdSendConfig {
    const char *block;          /* the RAM block's name */
    int ram_fd;                 /* memfd holding the block at its offsets,
                                 * or -1 */
    /* Host address of the page at block offset 'offset'. */
    const uint8_t *(*page)(void *opaque, uint64_t offset);
    void *opaque;
    bool zero_copy;             /* capability zero-copy-send */
    uint8_t uuid[16];           /* the VM's, in every initial packet */
} MultifdSendConfig;

typedef struct MultifdSendStats {
    uint64_t bytes;             /* packets handed to the channels */
    uint64_t zero_copy_copied;  /* syncs where the kernel copied anyway */
} MultifdSendStats;

typedef struct MultifdSend MultifdSend;

/* Takes the connected sockets 'fds' (channel i is fds[i]); each channel's
 * thread sends its initial packet at once. With zero_copy, fails if a
 * socket cannot do MSG_ZEROCOPY (QEMU's message), closing the sockets. */
MultifdSend *multifd_send_new(const MultifdSendConfig *cfg, const int *fds,
                              unsigned n, GError **errp);
/* Migration thread: the page at 'offset' goes in the current packet; a
 * full packet is handed to a channel (waiting for room). Returns the bytes
 * handed over by this call (header and pages), 0 mostly. */
uint64_t multifd_send_page(MultifdSend *s, uint64_t offset);
/* Migration thread, before the main stream's RAM EOS: the current packet
 * and a SYNC on every channel. Returns the bytes handed over. */
uint64_t multifd_send_sync(MultifdSend *s);
/* Migration thread: wait until every packet handed over is written and the
 * peer has read it (unix sockets) or the kernel released the pages (zero
 * copy); false with the first channel failure. */
bool multifd_send_flush(MultifdSend *s, GError **errp);
/* Any thread: false once a channel failed (its error) or the channels
 * were shut down. */
bool multifd_send_check(MultifdSend *s, GError **errp);
/* Any thread: a copy of the first channel failure; NULL if none (being
 * shut down is none). */
GError *multifd_send_get_error(MultifdSend *s);
/* Any thread: writes blocked on a stalled peer fail now (cancel). */
void multifd_send_shutdown(MultifdSend *s);
/* Postcopy recovery, while the migration thread waits: drop the old
 * connections and whatever was queued, carry on over 'fds'. */
void multifd_send_restart(MultifdSend *s, const int *fds, unsigned n);
unsigned multifd_send_channels(const MultifdSend *s);
void multifd_send_get_stats(MultifdSend *s, MultifdSendStats *out);
/* Stops the threads and closes the sockets. NULL is ok. */
void multifd_send_free(MultifdSend *s);

#endif
