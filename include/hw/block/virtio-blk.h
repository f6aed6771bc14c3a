/*
 * virtio-blk over the virtio PCI transport: requests IN, OUT, FLUSH, GET_ID,
 * DISCARD and WRITE_ZEROES against a Drive's block node, processed on the
 * transport's I/O thread; the configuration space reports capacity, block
 * size, segment limits, topology, queue count and discard/write-zeroes
 * limits. Malformed requests fail with VIRTIO_BLK_S_IOERR/UNSUPP; broken
 * rings put the device in NEEDS_RESET (hw/virtio/virtio-pci.h).
 */
#ifndef HW_BLOCK_VIRTIO_BLK_H
#define HW_BLOCK_VIRTIO_BLK_H

#include "hw/block/drive.h"
#include "hw/virtio/virtio-pci.h"

#define VIRTIO_ID_BLOCK           2

/* Feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values. */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define VIRTIO_BLK_ID_BYTES       20
#define VIRTIO_BLK_SECTOR         512
#define VIRTIO_BLK_SEG_MAX        126     /* data segments per request */
#define VIRTIO_BLK_SIZE_MAX       (4u << 20)
#define VIRTIO_BLK_MAX_DISCARD    (1u << 22)   /* sectors per segment */
#define VIRTIO_BLK_CONFIG_SIZE    0x3c
#define VIRTIO_BLK_POLL_US        32      /* busy-poll after a batch */
#define VIRTIO_BLK_BOUNCE_ALIGN   4096    /* O_DIRECT memory alignment we rely on */

typedef struct VirtioBlkOptions {
    const char *serial;        /* GET_ID answer, up to 20 bytes; NULL: none */
    unsigned num_queues;       /* 1..VIRTIO_PCI_MAX_QUEUES */
    const GuestMemory *mem;
    KvmState *kvm;             /* NULL in unit tests */
} VirtioBlkOptions;

typedef struct VirtioBlk VirtioBlk;

VirtioBlk *virtio_blk_new(Drive *drive, const VirtioBlkOptions *opts, GError **errp);
/* Remove the PCI function from its bus before freeing. NULL is fine. */
void virtio_blk_free(VirtioBlk *vb);
VirtioPci *virtio_blk_transport(VirtioBlk *vb);
/* Requests completed with an error status (tests). */
uint64_t virtio_blk_failed_requests(VirtioBlk *vb);

#endif
