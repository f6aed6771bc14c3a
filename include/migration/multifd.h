/*
 * QEMU's multifd wire format (capability "multifd"): besides the main
 * stream, N more connections carry RAM pages. Each opens with a 64-byte
 * initial packet (be32 magic 0x11223344, be32 version 1, the VM's 16-byte
 * uuid, u8 channel id, 39 reserved bytes); then packets follow, each a
 * 1344-byte header (be32 magic, version, flags, pages_alloc, normal_pages,
 * next_packet_size; be64 packet_num; 32 reserved bytes; the RAM block's
 * name in 256 bytes; 128 be64 page offsets, the first normal_pages used)
 * and normal_pages * 4 KiB of page data. A packet with flag SYNC marks the
 * end of a RAM section: the destination places nothing of the next section
 * before every channel has delivered its SYNC (QEMU 7.2: the main stream's
 * RAM EOS waits for them). Flags 0x0e select compression; tern sends and
 * accepts none. This file encodes and checks those bytes; the channels
 * themselves are multifd-send.c and multifd-recv.c.
 */
#ifndef MIGRATION_MULTIFD_H
#define MIGRATION_MULTIFD_H

#include <sys/uio.h>

#include "tern/error.h"

#define MULTIFD_MAGIC           0x11223344u
#define MULTIFD_VERSION         1
#define MULTIFD_INIT_SIZE       64
#define MULTIFD_PAGE_SIZE       4096
/* QEMU's 512 KiB packets of 4 KiB pages. */
#define MULTIFD_PAGES_MAX       128
#define MULTIFD_HEADER_SIZE     (320 + 8 * MULTIFD_PAGES_MAX)
#define MULTIFD_FLAG_SYNC       0x01
#define MULTIFD_FLAG_COMPRESSION_MASK 0x0e

/* QEMU's parameter multifd-channels: default and range. */
#define MULTIFD_CHANNELS_DEFAULT 2
#define MULTIFD_CHANNELS_MAX    255

typedef struct MultifdPacket {
    uint32_t flags;
    uint32_t pages;                 /* normal pages that follow */
    uint64_t packet_num;
    char block[256];                /* NUL-terminated */
    uint64_t offsets[MULTIFD_PAGES_MAX];    /* block offsets, bytes */
} MultifdPacket;

/* The destination's view of its one RAM block, for the checks. */
typedef struct MultifdBlock {
    const char *name;
    uint64_t length;                /* bytes */
} MultifdBlock;

void multifd_init_encode(uint8_t out[MULTIFD_INIT_SIZE],
                         const uint8_t uuid[16], uint8_t id);
/* Checks magic, version, that the uuid is ours (as QEMU always does) and
 * that the id names one of 'channels'; the id in *id. */
bool multifd_init_decode(const uint8_t in[MULTIFD_INIT_SIZE],
                         const uint8_t uuid[16], unsigned channels,
                         uint8_t *id, GError **errp);

void multifd_packet_encode(uint8_t out[MULTIFD_HEADER_SIZE],
                           const MultifdPacket *p);
/* Checks what QEMU 7.2's destination checks (magic, version, pages_alloc,
 * normal pages within it, a known block, offsets inside it, no
 * compression) and, as tern does everywhere, unknown flags, offsets that
 * are not page aligned and a data size that disagrees with the pages. */
bool multifd_packet_decode(const uint8_t in[MULTIFD_HEADER_SIZE],
                           const MultifdBlock *block, MultifdPacket *out,
                           GError **errp);

/* The end of the run of consecutive pages of 'p' that starts at page
 * 'i': the index after its last page. */
uint32_t multifd_packet_run_end(const MultifdPacket *p, uint32_t i);

/* After a readv/writev of 'n' bytes over '*iov' ('*cnt' entries): past the
 * entries done, into the one done in part. */
void multifd_iov_advance(struct iovec **iov, int *cnt, size_t n);

/* How a set of channels failed, under its owner's lock: the first error
 * wins, later ones are dropped. */
typedef struct MultifdFailure {
    GMutex *lock;                   /* the owner's */
    GError *error;                  /* the first failure; NULL if none */
    bool failed;                    /* an error, or shut down */
} MultifdFailure;

/* With the lock held: takes 'err' (NULL: shut down without an error). */
void multifd_failure_set_locked(MultifdFailure *f, GError *err);
/* With the lock held: not failed any more (a restart on new
 * connections). */
void multifd_failure_clear_locked(MultifdFailure *f);
/* Any thread (takes the lock): a copy of the first error, NULL if none. */
GError *multifd_failure_copy(MultifdFailure *f);
/* Any thread (takes the lock): false once failed, with the first error
 * (or "shut down"). */
bool multifd_failure_check(MultifdFailure *f, GError **errp);

#endif
