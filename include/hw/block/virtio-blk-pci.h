/*
 * The machine's virtio-blk entry points besides the -device virtio-blk-pci
 * driver (which registers itself): the -drive if=virtio shorthand, and the
 * devices' writes to guest RAM for live migration. Both find drives in
 * m->drives (hw/block/drive.h).
 */
#ifndef HW_BLOCK_VIRTIO_BLK_PCI_H
#define HW_BLOCK_VIRTIO_BLK_PCI_H

#include "hw/block/drive.h"
#include "hw/i386/machine.h"

/* One virtio-blk-pci per -drive if=virtio not claimed by a -device. */
bool virtio_blk_pci_create_shorthand(Machine *m, GError **errp);
/* Live migration: report the devices' writes to guest RAM into dl (after
 * kvm_dirty_log_start); NULL stops (before kvm_dirty_log_stop). */
typedef struct KvmDirtyLog KvmDirtyLog;
void virtio_blk_pci_set_dirty_log(Machine *m, KvmDirtyLog *dl);

#endif
