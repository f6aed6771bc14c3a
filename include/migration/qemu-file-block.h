/*
 * A QEMUFile over a block node's VM state area (qcow2's space past the
 * virtual disk): savevm writes the whole migration stream there before
 * taking an internal snapshot, and loadvm reads it back after applying one,
 * as QEMU's save_snapshot/load_snapshot do; tools and loadvm's checks read
 * a snapshot's state where it lies. Offsets count from 0. Writes reach the
 * node in whole clusters, so the area is allocated in one sequential run.
 */
#ifndef MIGRATION_QEMU_FILE_BLOCK_H
#define MIGRATION_QEMU_FILE_BLOCK_H

#include "block/block.h"
#include "migration/qemu-file.h"

/* Writes from offset 0; the node must stay open until qemu_fclose. */
QEMUFile *qemu_file_new_vmstate_output(BlockNode *bs);
/* Reads [0, size): the snapshot's vm_state_size, so the end is an EOF. */
QEMUFile *qemu_file_new_vmstate_input(BlockNode *bs, uint64_t size);
/* Reads the VM state of snapshot 'snapshot_id' (its id_str) where the
 * snapshot keeps it, without reverting the image to it. */
QEMUFile *qemu_file_new_snapshot_vmstate_input(BlockNode *bs,
                                               const char *snapshot_id,
                                               uint64_t size);

#endif
