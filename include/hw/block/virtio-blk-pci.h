/*
 * The machine's virtio-blk entry points: the -device virtio-blk-pci driver
 * (for the machine's device table) and the -drive if=virtio shorthand. Both
 * find drives in m->drives (hw/block/drive.h).
 */
#ifndef HW_BLOCK_VIRTIO_BLK_PCI_H
#define HW_BLOCK_VIRTIO_BLK_PCI_H

#include "hw/block/drive.h"
#include "hw/i386/machine.h"
#include "migration/savevm.h"

/* -device virtio-blk-pci,drive=ID[,serial=S][,num-queues=N][,id=NAME]
 *         [,addr=SLOT[.FN]][,bootindex=N (ignored: no firmware)] */
bool virtio_blk_pci_create(Machine *m, KeyVal *opts, GError **errp);
/* One virtio-blk-pci per -drive if=virtio not claimed by a -device. */
bool virtio_blk_pci_create_shorthand(Machine *m, GError **errp);
/* Migration: registers every virtio-blk-pci of m with sv (idstr
 * "virtio-blk-pci", instance = devfn, vmstate_virtio_pci), after the
 * machine's own sections; unregister before the devices are freed. */
void virtio_blk_pci_vmstate_register(Machine *m, SaveVM *sv);
void virtio_blk_pci_vmstate_unregister(Machine *m, SaveVM *sv);
/* Live migration: report the devices' writes to guest RAM into dl (after
 * kvm_dirty_log_start); NULL stops (before kvm_dirty_log_stop). */
typedef struct KvmDirtyLog KvmDirtyLog;
void virtio_blk_pci_set_dirty_log(Machine *m, KvmDirtyLog *dl);

#endif
