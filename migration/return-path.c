/*
 * The return-path message codec (include/migration/return-path.h). Every
 * message is flushed at once: the source waits on it (PONG, page requests).
 * Reading checks the type, the fixed lengths and the inner layout of the
 * variable ones, since the peer is untrusted.
 */
#include <string.h>

#include "migration/return-path.h"

static const struct {
    const char *name;
    int len;                    /* -1: variable */
} rp_msgs[MIG_RP_MSG_MAX] = {
    [MIG_RP_MSG_SHUT]           = { "SHUT", 4 },
    [MIG_RP_MSG_PONG]           = { "PONG", 4 },
    [MIG_RP_MSG_REQ_PAGES_ID]   = { "REQ_PAGES_ID", -1 },
    [MIG_RP_MSG_REQ_PAGES]      = { "REQ_PAGES", 12 },
    [MIG_RP_MSG_RECV_BITMAP]    = { "RECV_BITMAP", -1 },
    [MIG_RP_MSG_RESUME_ACK]     = { "RESUME_ACK", 4 },
    [MIG_RP_MSG_SWITCHOVER_ACK] = { "SWITCHOVER_ACK", 0 },
};

const char *mig_rp_msg_name(unsigned type)
{
    return type > MIG_RP_MSG_INVALID && type < MIG_RP_MSG_MAX ?
           rp_msgs[type].name : NULL;
}

static void send_header(QEMUFile *f, MigRpMsgType type, uint16_t len)
{
    qemu_put_be16(f, type);
    qemu_put_be16(f, len);
}

static void send_be32(QEMUFile *f, MigRpMsgType type, uint32_t value)
{
    send_header(f, type, 4);
    qemu_put_be32(f, value);
    qemu_fflush(f);
}

void mig_rp_send_shut(QEMUFile *f, uint32_t value)
{
    send_be32(f, MIG_RP_MSG_SHUT, value);
}

void mig_rp_send_pong(QEMUFile *f, uint32_t value)
{
    send_be32(f, MIG_RP_MSG_PONG, value);
}

void mig_rp_send_resume_ack(QEMUFile *f, uint32_t value)
{
    send_be32(f, MIG_RP_MSG_RESUME_ACK, value);
}

void mig_rp_send_switchover_ack(QEMUFile *f)
{
    send_header(f, MIG_RP_MSG_SWITCHOVER_ACK, 0);
    qemu_fflush(f);
}

void mig_rp_send_req_pages(QEMUFile *f, const char *block, uint64_t start,
                           uint32_t length)
{
    if (block) {
        send_header(f, MIG_RP_MSG_REQ_PAGES_ID, 12 + 1 + strlen(block));
    } else {
        send_header(f, MIG_RP_MSG_REQ_PAGES, 12);
    }
    qemu_put_be64(f, start);
    qemu_put_be32(f, length);
    if (block) {
        qemu_put_counted_string(f, block);
    }
    qemu_fflush(f);
}

void mig_rp_send_recv_bitmap(QEMUFile *f, const char *block)
{
    send_header(f, MIG_RP_MSG_RECV_BITMAP, 1 + strlen(block));
    qemu_put_counted_string(f, block);
    qemu_fflush(f);
}

static bool bad_length(MigRpMessage *msg, uint16_t len, GError **errp)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                "return path: %s message with length %u",
                mig_rp_msg_name(msg->type), len);
    return false;
}

/* The counted block name that must fill the rest of the message. */
static bool read_block(QEMUFile *f, MigRpMessage *msg, uint16_t left,
                       GError **errp)
{
    size_t n;

    if (left < 1) {
        return bad_length(msg, left, errp);
    }
    n = qemu_get_counted_string(f, msg->block);
    if (!qemu_file_check(f, errp)) {
        return false;
    }
    return n + 1 == left ? true : bad_length(msg, left, errp);
}

static bool read_body(QEMUFile *f, MigRpMessage *msg, uint16_t len,
                      GError **errp)
{
    switch (msg->type) {
    case MIG_RP_MSG_SHUT:
    case MIG_RP_MSG_PONG:
    case MIG_RP_MSG_RESUME_ACK:
        msg->value = qemu_get_be32(f);
        return true;
    case MIG_RP_MSG_REQ_PAGES:
    case MIG_RP_MSG_REQ_PAGES_ID:
        if (len < 12) {
            return bad_length(msg, len, errp);
        }
        msg->start = qemu_get_be64(f);
        msg->length = qemu_get_be32(f);
        return msg->type == MIG_RP_MSG_REQ_PAGES ||
               read_block(f, msg, len - 12, errp);
    case MIG_RP_MSG_RECV_BITMAP:
        return read_block(f, msg, len, errp);
    default:
        return true;
    }
}

bool mig_rp_read(QEMUFile *f, MigRpMessage *msg, GError **errp)
{
    uint16_t type = qemu_get_be16(f);
    uint16_t len = qemu_get_be16(f);

    memset(msg, 0, sizeof(*msg));
    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (!mig_rp_msg_name(type)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "return path: unknown message type %u (length %u)", type,
                    len);
        return false;
    }
    msg->type = type;
    if (rp_msgs[type].len >= 0 && rp_msgs[type].len != len) {
        return bad_length(msg, len, errp);
    }
    return read_body(f, msg, len, errp) && qemu_file_check(f, errp);
}

/* ---- the destination's end ---- */

void mig_rp_incoming_init(MigRpIncoming *in)
{
    memset(in, 0, sizeof(*in));
    g_mutex_init(&in->lock);
}

void mig_rp_incoming_clear(MigRpIncoming *in)
{
    mig_rp_incoming_drop(in);
    g_mutex_clear(&in->lock);
}

bool mig_rp_incoming_open(MigRpIncoming *in, QEMUFile *f, GError **errp)
{
    QEMUFile *rp;

    if (mig_rp_incoming_is_open(in)) {
        return true;
    }
    rp = qemu_file_get_return_path(f, errp);
    if (!rp) {
        g_prefix_error(errp, "OPEN_RETURN_PATH: ");
        return false;
    }
    g_mutex_lock(&in->lock);
    in->rp = rp;
    in->last_block[0] = 0;
    g_mutex_unlock(&in->lock);
    return true;
}

bool mig_rp_incoming_is_open(MigRpIncoming *in)
{
    bool open;

    g_mutex_lock(&in->lock);
    open = in->rp != NULL;
    g_mutex_unlock(&in->lock);
    return open;
}

/* Under in->lock, after writing: the channel's state as the result. */
static bool sent(MigRpIncoming *in, GError **errp)
{
    if (!qemu_file_check(in->rp, errp)) {
        g_prefix_error(errp, "return path: ");
        return false;
    }
    return true;
}

static bool no_rp(GError **errp, const char *what)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "%s with no return path",
                what);
    return false;
}

bool mig_rp_incoming_pong(MigRpIncoming *in, uint32_t value, GError **errp)
{
    bool ok;

    g_mutex_lock(&in->lock);
    if (!in->rp) {
        g_mutex_unlock(&in->lock);
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "PING 0x%x with no return path", value);
        return false;
    }
    mig_rp_send_pong(in->rp, value);
    ok = sent(in, errp);
    g_mutex_unlock(&in->lock);
    return ok;
}

bool mig_rp_incoming_switchover_ack(MigRpIncoming *in, GError **errp)
{
    bool ok;

    g_mutex_lock(&in->lock);
    ok = in->rp ? (mig_rp_send_switchover_ack(in->rp), sent(in, errp))
                : no_rp(errp, "SWITCHOVER_ACK");
    g_mutex_unlock(&in->lock);
    return ok;
}

bool mig_rp_incoming_req_page(MigRpIncoming *in, const char *block,
                              uint64_t start, uint32_t length)
{
    bool ok = false;

    g_mutex_lock(&in->lock);
    if (in->rp) {
        bool same = !strcmp(in->last_block, block);

        mig_rp_send_req_pages(in->rp, same ? NULL : block, start, length);
        g_strlcpy(in->last_block, block, sizeof(in->last_block));
        ok = !qemu_file_get_error(in->rp);
    }
    g_mutex_unlock(&in->lock);
    return ok;
}

bool mig_rp_incoming_recv_bitmap(MigRpIncoming *in, const char *block,
                                 const uint8_t *words, size_t len,
                                 uint64_t end_mark, GError **errp)
{
    bool ok;

    g_mutex_lock(&in->lock);
    if (!in->rp) {
        ok = no_rp(errp, "RECV_BITMAP");
    } else {
        send_header(in->rp, MIG_RP_MSG_RECV_BITMAP, 1 + strlen(block));
        qemu_put_counted_string(in->rp, block);
        qemu_put_be64(in->rp, len);
        qemu_put_buffer(in->rp, words, len);
        qemu_put_be64(in->rp, end_mark);
        qemu_fflush(in->rp);
        ok = sent(in, errp);
    }
    g_mutex_unlock(&in->lock);
    return ok;
}

bool mig_rp_incoming_resume_ack(MigRpIncoming *in, uint32_t value,
                                GError **errp)
{
    bool ok;

    g_mutex_lock(&in->lock);
    if (!in->rp) {
        ok = no_rp(errp, "RESUME_ACK");
    } else {
        /* The source starts over from its received bitmap: the next
         * request names its block again. */
        in->last_block[0] = 0;
        mig_rp_send_resume_ack(in->rp, value);
        ok = sent(in, errp);
    }
    g_mutex_unlock(&in->lock);
    return ok;
}

static QEMUFile *take_rp(MigRpIncoming *in)
{
    QEMUFile *rp;

    g_mutex_lock(&in->lock);
    rp = in->rp;
    in->rp = NULL;
    g_mutex_unlock(&in->lock);
    return rp;
}

void mig_rp_incoming_drop(MigRpIncoming *in)
{
    QEMUFile *rp = take_rp(in);

    if (rp) {
        qemu_file_shutdown_channel(rp);
        qemu_fclose(rp, NULL);
    }
}

void mig_rp_incoming_shut(MigRpIncoming *in, bool failed)
{
    QEMUFile *rp;

    g_mutex_lock(&in->lock);
    rp = in->rp;
    in->rp = NULL;
    if (rp) {
        /* The source may be gone already: nothing to report it to then. */
        mig_rp_send_shut(rp, failed ? 1 : 0);
    }
    g_mutex_unlock(&in->lock);
    qemu_fclose(rp, NULL);
}
