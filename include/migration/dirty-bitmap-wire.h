/*
 * The dirty-bitmap section's wire constants (idstr "dirty-bitmap", version 1,
 * as QEMU's migration/block-dirty-bitmap.c writes it), shared by the live
 * loader (migration/block-dirty-bitmap.c) and the stream inspector
 * (migration/stream-dump-bitmap.c), with the one decoder for chunk flags.
 */
#ifndef MIGRATION_DIRTY_BITMAP_WIRE_H
#define MIGRATION_DIRTY_BITMAP_WIRE_H

#include "migration/qemu-file.h"

/* Chunk flags. */
#define DBM_EOS          0x01
#define DBM_ZEROES       0x02
#define DBM_BITMAP_NAME  0x04
#define DBM_DEVICE_NAME  0x08
#define DBM_START        0x10
#define DBM_COMPLETE     0x20
#define DBM_BITS         0x40
#define DBM_EXTRA        0x80   /* more flag bytes follow (a marker, not a flag) */

/* The byte after START's be32 granularity. */
#define DBM_START_ENABLED     0x01
#define DBM_START_PERSISTENT  0x02
#define DBM_START_RESERVED    0xf8

/*
 * Reads chunk flags in any of their 1-, 2- or 4-byte forms (QEMU writes one
 * byte; its own reader keeps only that byte, tern decodes all three) and
 * returns them without the marker bits. Unknown flags and a truncated stream
 * are errors.
 */
bool dbm_get_flags(QEMUFile *f, uint32_t *flags, GError **errp);

#endif
