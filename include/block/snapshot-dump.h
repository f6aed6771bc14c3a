/*
 * Internal snapshots as QEMU prints them: the table of qemu-img snapshot -l
 * and qemu-img info (bdrv_snapshot_dump's columns: ID, TAG, VM SIZE, DATE,
 * VM CLOCK, ICOUNT), QEMU's size notation, and HMP's "info snapshots" over
 * a VM's drives (the snapshots present on all of them, then each drive's
 * partial ones). Lines end in '\n'; HMP turns them into "\r\n".
 */
#ifndef BLOCK_SNAPSHOT_DUMP_H
#define BLOCK_SNAPSHOT_DUMP_H

#include "block/block-backend.h"

/* qemu-img's size_to_str(): three significant digits, binary units, the
 * next unit from 1000 of the last ("0.977 KiB"). */
char *block_size_to_str(uint64_t size);
/* The header line and one snapshot's line, without the '\n'; id_str NULL
 * prints sn's own id. */
void block_snapshot_dump_header(GString *out);
void block_snapshot_dump(GString *out, const BlockSnapshotInfo *sn,
                         const char *id_str);
/* "Snapshot list:" and a line per snapshot, as qemu-img snapshot -l. */
void block_snapshot_table(GString *out, const GPtrArray *list);
/* HMP info snapshots over the drives of 'l'. */
void block_snapshot_info_all(GString *out, const BlockBackendList *l);

#endif
