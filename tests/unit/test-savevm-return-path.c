/* Unit tests for the return-path message codec: golden bytes for every
 * message, a round trip over a socketpair's return path, and refusal of
 * unknown types, wrong lengths, inconsistent names and truncation; the
 * destination's end (MigRpIncoming) under a real load: OPEN_RETURN_PATH,
 * PINGs answered, SHUT 0 after a good stream and 1 after a bad one. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/return-path.h"
#include "migration/savevm.h"

static const uint8_t golden[] = {
    0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,             /* SHUT 0 */
    0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07,             /* PONG 7 */
    0x00, 0x03, 0x00, 0x13,                                     /* REQ_PAGES_ID */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x00,
    0x00, 0x00, 0x10, 0x00, 0x06, 'p', 'c', '.', 'r', 'a', 'm',
    0x00, 0x04, 0x00, 0x0c,                                     /* REQ_PAGES */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x20, 0x00,
    0x00, 0x05, 0x00, 0x07, 0x06, 'p', 'c', '.', 'r', 'a', 'm', /* RECV_BITMAP */
    0x00, 0x06, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,             /* RESUME_ACK */
    0x00, 0x07, 0x00, 0x00,                                     /* SWITCHOVER */
};

static void test_golden_and_read(void)
{
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;
    g_autoptr(GBytes) b = NULL;
    QEMUFile *in;
    MigRpMessage m;
    GError *err = NULL;

    mig_rp_send_shut(f, 0);
    mig_rp_send_pong(f, 7);
    mig_rp_send_req_pages(f, "pc.ram", 0x12000, 0x1000);
    mig_rp_send_req_pages(f, NULL, 0x20000, 0x2000);
    mig_rp_send_recv_bitmap(f, "pc.ram");
    mig_rp_send_resume_ack(f, 1);
    mig_rp_send_switchover_ack(f);
    out = qemu_file_mem_output_data(f);
    g_assert_cmpmem(out->data, out->len, golden, sizeof(golden));
    b = g_bytes_new(out->data, out->len);
    qemu_fclose(f, NULL);

    in = qemu_file_new_mem_input(b);
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_SHUT);
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_PONG);
    g_assert_cmpuint(m.value, ==, 7);
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_REQ_PAGES_ID);
    g_assert_cmphex(m.start, ==, 0x12000);
    g_assert_cmphex(m.length, ==, 0x1000);
    g_assert_cmpstr(m.block, ==, "pc.ram");
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_REQ_PAGES);
    g_assert_cmpstr(m.block, ==, "");
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_RECV_BITMAP);
    g_assert_cmpstr(m.block, ==, "pc.ram");
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpuint(m.value, ==, 1);
    g_assert_true(mig_rp_read(in, &m, &err));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_SWITCHOVER_ACK);
    g_assert_no_error(err);
    g_assert_true(qemu_file_at_eof(in));
    qemu_fclose(in, NULL);
}

/* PING on the forward stream, PONG back on the same socket. */
static void test_socket_pong(void)
{
    int sv[2];
    QEMUFile *dst_in, *dst_rp, *src_rp;
    MigRpMessage m;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    dst_in = qemu_file_new_fd_input(sv[1]);
    dst_rp = qemu_file_get_return_path(dst_in, NULL);
    src_rp = qemu_file_new_fd_input(sv[0]);
    mig_rp_send_pong(dst_rp, 0xabcd);
    g_assert_true(mig_rp_read(src_rp, &m, NULL));
    g_assert_cmpint(m.type, ==, MIG_RP_MSG_PONG);
    g_assert_cmphex(m.value, ==, 0xabcd);
    qemu_fclose(dst_rp, NULL);
    qemu_fclose(dst_in, NULL);
    qemu_fclose(src_rp, NULL);
}

/* ---- the destination's end under a load ---- */

typedef struct Dest {
    SaveVM *sv;
    QEMUFile *f;
    MigRpIncoming rp;
    bool ok;
    GError *err;
} Dest;

static bool dest_open_rp(void *opaque, QEMUFile *f, GError **errp)
{
    return mig_rp_incoming_open(&((Dest *)opaque)->rp, f, errp);
}

static bool dest_ping(void *opaque, uint32_t value, GError **errp)
{
    return mig_rp_incoming_pong(&((Dest *)opaque)->rp, value, errp);
}

static const SaveVMIncomingOps dest_ops = {
    .open_return_path = dest_open_rp, .ping = dest_ping,
};

static gpointer dest_thread(gpointer opaque)
{
    Dest *d = opaque;

    d->ok = savevm_load(d->sv, d->f, &d->err);
    mig_rp_incoming_shut(&d->rp, !d->ok);
    return NULL;
}

/* Run a destination on one end; the source writes 'write' on the other
 * and reads the return path; returns the SHUT value, PONGs in 'pongs'. */
static uint32_t run_load(void (*write)(QEMUFile *f), GArray *pongs,
                         bool *load_ok)
{
    int fds[2];
    Dest d = { 0 };
    QEMUFile *out, *rp;
    GThread *t;
    MigRpMessage m;
    uint32_t shut = 0xffffffff;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    mig_rp_incoming_init(&d.rp);
    d.sv = savevm_new("m");
    savevm_set_incoming_ops(d.sv, &dest_ops, &d);
    d.f = qemu_file_new_fd_input(fds[1]);
    t = g_thread_new("dest", dest_thread, &d);
    out = qemu_file_new_fd_output(fds[0]);
    rp = qemu_file_new_fd_input(dup(fds[0]));
    write(out);
    qemu_fflush(out);
    while (mig_rp_read(rp, &m, NULL)) {
        if (m.type == MIG_RP_MSG_PONG) {
            g_array_append_val(pongs, m.value);
        } else {
            g_assert_cmpint(m.type, ==, MIG_RP_MSG_SHUT);
            shut = m.value;
            break;
        }
    }
    g_thread_join(t);
    *load_ok = d.ok;
    g_clear_error(&d.err);
    qemu_fclose(d.f, NULL);
    qemu_fclose(out, NULL);
    qemu_fclose(rp, NULL);
    savevm_free(d.sv);
    mig_rp_incoming_clear(&d.rp);
    return shut;
}

static void write_good(QEMUFile *f)
{
    SaveVM *sv = savevm_new("m");

    g_assert_true(savevm_save_header(sv, f, NULL));
    savevm_send_open_return_path(f);
    savevm_send_ping(f, 0x1234);
    savevm_send_open_return_path(f);       /* a repeat is harmless */
    savevm_send_ping(f, 7);
    g_assert_true(savevm_save_complete_precopy(sv, f, false, false, NULL));
    savevm_free(sv);
}

static void write_bad(QEMUFile *f)
{
    SaveVM *sv = savevm_new("m");

    g_assert_true(savevm_save_header(sv, f, NULL));
    savevm_send_open_return_path(f);
    savevm_send_ping(f, 1);
    qemu_put_byte(f, 0x55);                /* no such section type */
    savevm_free(sv);
}

static void test_destination_end(void)
{
    g_autoptr(GArray) pongs = g_array_new(false, false, sizeof(uint32_t));
    bool ok;

    g_assert_cmpuint(run_load(write_good, pongs, &ok), ==, 0);
    g_assert_true(ok);
    g_assert_cmpuint(pongs->len, ==, 2);
    g_assert_cmphex(g_array_index(pongs, uint32_t, 0), ==, 0x1234);
    g_assert_cmphex(g_array_index(pongs, uint32_t, 1), ==, 7);
    g_array_set_size(pongs, 0);
    g_assert_cmpuint(run_load(write_bad, pongs, &ok), ==, 1);
    g_assert_false(ok);
    g_assert_cmpuint(pongs->len, ==, 1);
}

/* Without OPEN_RETURN_PATH, a PING is refused and nothing is sent back;
 * a channel with no return path (a memory stream) fails the open. */
static void test_destination_refusals(void)
{
    MigRpIncoming in;
    g_autoptr(GBytes) b = g_bytes_new_static("", 0);
    QEMUFile *f = qemu_file_new_mem_input(b);
    GError *err = NULL;

    mig_rp_incoming_init(&in);
    g_assert_false(mig_rp_incoming_pong(&in, 3, &err));
    g_assert_nonnull(strstr(err->message, "no return path"));
    g_clear_error(&err);
    g_assert_false(mig_rp_incoming_open(&in, f, &err));
    g_assert_nonnull(strstr(err->message, "OPEN_RETURN_PATH"));
    g_clear_error(&err);
    g_assert_null(in.rp);
    mig_rp_incoming_shut(&in, true);       /* nothing open: no-op */
    g_assert_false(mig_rp_incoming_req_page(&in, "pc.ram", 0, 4096));
    g_assert_false(mig_rp_incoming_resume_ack(&in, 1, &err));
    g_assert_nonnull(strstr(err->message, "RESUME_ACK with no return path"));
    g_clear_error(&err);
    mig_rp_incoming_clear(&in);
    qemu_fclose(f, NULL);
}

/* The destination's postcopy messages: REQ_PAGES_ID names the block only
 * when it changes (and again after RESUME_ACK), RECV_BITMAP carries the
 * bitmap and its end mark after the message, as QEMU's source reads it. */
static void test_destination_postcopy_messages(void)
{
    static const uint8_t want[] = {
        0x00, 0x03, 0x00, 0x0f, 0, 0, 0, 0, 0, 0, 0x10, 0x00,    /* REQ_ID */
        0x00, 0x00, 0x10, 0x00, 0x02, 'p', 'c',
        0x00, 0x04, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0x20, 0x00,    /* REQ */
        0x00, 0x00, 0x10, 0x00,
        0x00, 0x05, 0x00, 0x03, 0x02, 'p', 'c',                  /* BITMAP */
        0, 0, 0, 0, 0, 0, 0, 8, 0x81, 0, 0, 0, 0, 0, 0, 0x02,
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0x00, 0x06, 0x00, 0x04, 0, 0, 0, 1,                      /* ACK */
        0x00, 0x03, 0x00, 0x0f, 0, 0, 0, 0, 0, 0, 0x30, 0x00,    /* REQ_ID */
        0x00, 0x00, 0x10, 0x00, 0x02, 'p', 'c',
    };
    static const uint8_t words[8] = { 0x81, 0, 0, 0, 0, 0, 0, 0x02 };
    MigRpIncoming in;
    int fds[2];
    QEMUFile *src, *dst;
    uint8_t got[sizeof(want)];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    mig_rp_incoming_init(&in);
    dst = qemu_file_new_fd_input(fds[1]);
    g_assert_true(mig_rp_incoming_open(&in, dst, NULL));
    g_assert_true(mig_rp_incoming_req_page(&in, "pc", 0x1000, 0x1000));
    g_assert_true(mig_rp_incoming_req_page(&in, "pc", 0x2000, 0x1000));
    g_assert_true(mig_rp_incoming_recv_bitmap(&in, "pc", words, 8,
                                              0x0123456789abcdefULL, NULL));
    g_assert_true(mig_rp_incoming_resume_ack(&in, 1, NULL));
    g_assert_true(mig_rp_incoming_req_page(&in, "pc", 0x3000, 0x1000));
    src = qemu_file_new_fd_input(fds[0]);
    g_assert_cmpuint(qemu_get_buffer(src, got, sizeof(got)), ==,
                     sizeof(got));
    g_assert_cmpmem(got, sizeof(got), want, sizeof(want));
    mig_rp_incoming_drop(&in);
    g_assert_false(mig_rp_incoming_is_open(&in));
    mig_rp_incoming_clear(&in);
    qemu_fclose(src, NULL);
    qemu_fclose(dst, NULL);
}

static void expect_error(const uint8_t *data, size_t len, const char *needle)
{
    g_autoptr(GBytes) b = g_bytes_new(data, len);
    QEMUFile *f = qemu_file_new_mem_input(b);
    MigRpMessage m;
    GError *err = NULL;

    g_assert_false(mig_rp_read(f, &m, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
    qemu_fclose(f, NULL);
}

static void test_hostile(void)
{
    static const uint8_t unknown[] = { 0x00, 0x08, 0x00, 0x00 };
    static const uint8_t invalid[] = { 0x00, 0x00, 0x00, 0x00 };
    static const uint8_t pong_len[] = { 0x00, 0x02, 0x00, 0x05, 0, 0, 0, 0, 0 };
    static const uint8_t req_len[] = { 0x00, 0x04, 0x00, 0x0b };
    static const uint8_t id_short[] = { 0x00, 0x03, 0x00, 0x0c,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t id_mismatch[] = { 0x00, 0x03, 0x00, 0x10,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 'a', 'b', 'c' };
    static const uint8_t bitmap_long[] = { 0x00, 0x05, 0x00, 0x09,
        0x02, 'p', 'c', 0, 0, 0, 0, 0, 0 };

    expect_error(unknown, sizeof(unknown), "unknown message type 8");
    expect_error(invalid, sizeof(invalid), "unknown message type 0");
    expect_error(pong_len, sizeof(pong_len), "PONG message with length 5");
    expect_error(req_len, sizeof(req_len), "REQ_PAGES message with length 11");
    expect_error(id_short, sizeof(id_short),
                 "REQ_PAGES_ID message with length 0");
    expect_error(id_mismatch, sizeof(id_mismatch), "truncated");
    expect_error(bitmap_long, sizeof(bitmap_long),
                 "RECV_BITMAP message with length 9");
    for (size_t cut = 0; cut < sizeof(golden); cut++) {
        g_autoptr(GBytes) b = g_bytes_new(golden, cut);
        QEMUFile *f = qemu_file_new_mem_input(b);
        MigRpMessage m;
        GError *err = NULL;

        while (mig_rp_read(f, &m, &err)) {
        }
        g_assert_nonnull(err);
        g_error_free(err);
        qemu_fclose(f, NULL);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/return-path/golden-and-read", test_golden_and_read);
    g_test_add_func("/return-path/socket-pong", test_socket_pong);
    g_test_add_func("/return-path/hostile", test_hostile);
    g_test_add_func("/return-path/destination-end", test_destination_end);
    g_test_add_func("/return-path/destination-refusals",
                    test_destination_refusals);
    g_test_add_func("/return-path/destination-postcopy-messages",
                    test_destination_postcopy_messages);
    return g_test_run();
}
