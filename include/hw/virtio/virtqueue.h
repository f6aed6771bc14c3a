/*
 * Split virtqueues (virtio 1.x, "Split Virtqueues"): the device side of the
 * descriptor table, available ring and used ring in guest memory. Everything
 * the guest wrote is checked before use: ring placement and size when the
 * queue is enabled, and on every pop the head index, each descriptor index
 * and buffer (through guest_mem_ptr), chain length (so a looping chain ends),
 * indirect tables (no nesting, no NEXT with INDIRECT) and the rule that
 * device-writable buffers follow the readable ones. A broken chain makes
 * virtqueue_pop() fail; the transport then sets NEEDS_RESET.
 *
 * Threading: a queue is used by one thread at a time (the iothread, or the
 * transport under its lock).
 */
#ifndef HW_VIRTIO_VIRTQUEUE_H
#define HW_VIRTIO_VIRTQUEUE_H

#include <sys/uio.h>

#include "hw/core/guest-memory.h"
#include "tern/common.h"

#define VIRTQ_MAX_SIZE        256     /* queue_size the device offers */
#define VIRTQ_MAX_INDIRECT    1024    /* entries in one indirect table */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

typedef struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VirtqDesc;

typedef struct VirtQueue {
    /* What the driver programmed through the common configuration. */
    uint16_t size;
    bool enabled;
    uint16_t msix_vector;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Device state, valid while enabled. */
    VirtqDesc *desc;              /* host views of the rings */
    uint16_t *avail;              /* flags, idx, ring[size], used_event */
    uint8_t *used;                /* flags, idx, ring[size] of {id, len}, avail_event */
    uint16_t last_avail;          /* next avail entry to pop */
    uint16_t used_idx;            /* next used entry to fill */
    uint16_t signalled_used;      /* used_idx at the last interrupt */
    bool signalled_valid;
    bool event_idx;               /* VIRTIO_F_RING_EVENT_IDX negotiated */
    bool notify_enabled;          /* driver should kick (see set_notification) */
} VirtQueue;

/* One popped request: out (driver-readable) buffers then in (writable) ones. */
typedef struct VirtQueueElement {
    uint16_t head;
    unsigned out_num, in_num;
    uint64_t out_len, in_len;     /* total bytes each way */
    struct iovec *iov;            /* out_num + in_num entries */
    uint64_t *gpa;                /* guest address of each iov entry */
    unsigned iov_cap;
} VirtQueueElement;

/*
 * Maps the rings for vq->size entries at vq->*_gpa. Fails (guest error) if
 * the size is not a power of two in 1..VIRTQ_MAX_SIZE, an address is
 * misaligned or a ring does not lie wholly in guest RAM.
 */
bool virtqueue_map(VirtQueue *vq, const GuestMemory *mem, GError **errp);
/* Back to the power-on values (size = VIRTQ_MAX_SIZE, vector NO_VECTOR). */
void virtqueue_reset(VirtQueue *vq);

/*
 * Takes the next available chain: 1 with *elem filled, 0 if the ring is
 * empty, -1 with errp set if the guest broke the rules. max_segs bounds
 * out_num + in_num (beyond it the chain is refused as well).
 */
int virtqueue_pop(VirtQueue *vq, const GuestMemory *mem, unsigned max_segs,
                  VirtQueueElement *elem, GError **errp);
/* Puts back the last n chains popped, unused: the next pops return them. */
void virtqueue_unpop(VirtQueue *vq, unsigned n);
/* Returns a chain to the driver with 'len' bytes written to its in buffers. */
void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem, uint32_t len);
/* After pushes: whether the driver wants an interrupt (event idx or flags). */
bool virtqueue_should_notify(VirtQueue *vq);
void virtqueue_element_clear(VirtQueueElement *elem);
/*
 * Asks the driver to kick (enable) or not (disable) when it adds buffers:
 * avail_event with event idx, used->flags otherwise. A device that disables
 * kicks while it polls must enable them and check virtqueue_empty() once
 * more before it sleeps, or it could miss a buffer added in between.
 */
void virtqueue_set_notification(VirtQueue *vq, bool enable);
bool virtqueue_empty(VirtQueue *vq);

#endif
