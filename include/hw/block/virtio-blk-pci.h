/*
 * The machine's virtio-blk entry points: the -device virtio-blk-pci driver
 * (for the machine's device table) and the -drive if=virtio shorthand. Both
 * find drives in m->drives (hw/block/drive.h).
 */
#ifndef HW_BLOCK_VIRTIO_BLK_PCI_H
#define HW_BLOCK_VIRTIO_BLK_PCI_H

#include "hw/block/drive.h"
#include "hw/i386/machine.h"

/* -device virtio-blk-pci,drive=ID[,serial=S][,num-queues=N][,id=NAME] */
bool virtio_blk_pci_create(Machine *m, KeyVal *opts, GError **errp);
/* One virtio-blk-pci per -drive if=virtio not claimed by a -device. */
bool virtio_blk_pci_create_shorthand(Machine *m, GError **errp);

#endif
