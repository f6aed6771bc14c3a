/*
 * Messages on the return path (destination to source, the same duplex
 * channel in the other direction), in QEMU's framing:
 *   be16 type | be16 length | length bytes
 *   1 SHUT          4   be32: 0 = clean end, else an error
 *   2 PONG          4   be32: the PING's value
 *   3 REQ_PAGES_ID  var be64 start, be32 length, u8 len, RAM block name
 *   4 REQ_PAGES     12  be64 start, be32 length (same block as before)
 *   5 RECV_BITMAP   var u8 len, RAM block name (the bitmap follows, later)
 *   6 RESUME_ACK    4   be32 value
 *   7 SWITCHOVER_ACK 0  (QEMU 8.1+)
 * The source's return-path thread reads them with mig_rp_read.
 */
#ifndef MIGRATION_RETURN_PATH_H
#define MIGRATION_RETURN_PATH_H

#include "migration/qemu-file.h"

typedef enum {
    MIG_RP_MSG_INVALID = 0,
    MIG_RP_MSG_SHUT,
    MIG_RP_MSG_PONG,
    MIG_RP_MSG_REQ_PAGES_ID,
    MIG_RP_MSG_REQ_PAGES,
    MIG_RP_MSG_RECV_BITMAP,
    MIG_RP_MSG_RESUME_ACK,
    MIG_RP_MSG_SWITCHOVER_ACK,
    MIG_RP_MSG_MAX
} MigRpMsgType;

typedef struct MigRpMessage {
    MigRpMsgType type;
    uint32_t value;             /* SHUT, PONG, RESUME_ACK */
    uint64_t start;             /* REQ_PAGES(_ID) */
    uint32_t length;            /* REQ_PAGES(_ID) */
    char block[256];            /* REQ_PAGES_ID, RECV_BITMAP; else "" */
} MigRpMessage;

/* RESUME_ACK's value (QEMU's MIGRATION_RESUME_ACK_VALUE). */
#define MIG_RP_RESUME_ACK_VALUE 1

const char *mig_rp_msg_name(unsigned type);

void mig_rp_send_shut(QEMUFile *f, uint32_t value);
void mig_rp_send_pong(QEMUFile *f, uint32_t value);
/* block NULL: REQ_PAGES (the previous block); else REQ_PAGES_ID. */
void mig_rp_send_req_pages(QEMUFile *f, const char *block, uint64_t start,
                           uint32_t length);
void mig_rp_send_recv_bitmap(QEMUFile *f, const char *block);
void mig_rp_send_resume_ack(QEMUFile *f, uint32_t value);
void mig_rp_send_switchover_ack(QEMUFile *f);

/* Read and validate one message (type, length, layout). */
bool mig_rp_read(QEMUFile *f, MigRpMessage *msg, GError **errp);

/*
 * The destination's end, as QEMU's destination behaves: OPEN_RETURN_PATH
 * opens it on the incoming channel, each PING is answered with PONG, and
 * when the load ends SHUT says how (0 loaded, 1 failed) before the return
 * path is closed. In postcopy the fault thread asks for pages here too
 * (REQ_PAGES_ID when the block differs from the last request's, else
 * REQ_PAGES), and recovery sends the received bitmap and RESUME_ACK, so
 * every message is written under 'lock'. Zero-initialise, then _init.
 */
typedef struct MigRpIncoming {
    GMutex lock;
    QEMUFile *rp;               /* NULL until OPEN_RETURN_PATH / while paused */
    char last_block[256];       /* block of the last page request, or "" */
} MigRpIncoming;

void mig_rp_incoming_init(MigRpIncoming *in);
void mig_rp_incoming_clear(MigRpIncoming *in);     /* closes without SHUT */
bool mig_rp_incoming_open(MigRpIncoming *in, QEMUFile *f, GError **errp);
bool mig_rp_incoming_is_open(MigRpIncoming *in);
bool mig_rp_incoming_pong(MigRpIncoming *in, uint32_t value, GError **errp);
bool mig_rp_incoming_switchover_ack(MigRpIncoming *in, GError **errp);
/* False when no return path is open (postcopy paused) or it failed. */
bool mig_rp_incoming_req_page(MigRpIncoming *in, const char *block,
                              uint64_t start, uint32_t length);
/* RECV_BITMAP 'block', then be64 len, the 'len' bytes of 'words' and the
 * be64 end mark RAM_RECV_BITMAP_END (ram.h), as QEMU sends them. */
bool mig_rp_incoming_recv_bitmap(MigRpIncoming *in, const char *block,
                                 const uint8_t *words, size_t len,
                                 uint64_t end_mark, GError **errp);
bool mig_rp_incoming_resume_ack(MigRpIncoming *in, uint32_t value,
                                GError **errp);
/* Postcopy paused: shut the channel down and close it, without SHUT. */
void mig_rp_incoming_drop(MigRpIncoming *in);
/* Sends SHUT if the return path is open, then closes it. */
void mig_rp_incoming_shut(MigRpIncoming *in, bool failed);

#endif
