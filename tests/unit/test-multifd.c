/*
 * Unit tests for multifd (migration/multifd*.c, ram-multifd.c): the wire
 * format's golden bytes and every hostile header the decoder refuses;
 * channels over socketpairs (splice from and into memfds, copies through
 * the mappings of heap RAM, and of a memfd once told to map its pages)
 * carrying pages byte for byte with the SYNC barrier; a receiver fed hostile bytes; a sender whose peer went
 * away; and a precopy MigrationJob to a MigIncoming with multifd whose
 * guest turns pages zero and back between rounds, so zero pages on the main
 * stream and data on the channels must land in order.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/incoming.h"
#include "migration/migration-job.h"
#include "migration/multifd-recv.h"
#include "migration/multifd-send.h"
#include "test-ram-vm.h"

#define PAGE MULTIFD_PAGE_SIZE

static const uint8_t no_uuid[16];

/* ---- the wire format ---- */

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static uint64_t be64_at(const uint8_t *p)
{
    return (uint64_t)be32_at(p) << 32 | be32_at(p + 4);
}

static void test_init_golden(void)
{
    uint8_t uuid[16], out[MULTIFD_INIT_SIZE];
    GError *err = NULL;
    uint8_t id = 0;

    for (int i = 0; i < 16; i++) {
        uuid[i] = 0xa0 + i;
    }
    multifd_init_encode(out, uuid, 3);
    g_assert_cmphex(be32_at(out), ==, 0x11223344);
    g_assert_cmpuint(be32_at(out + 4), ==, 1);
    g_assert_cmpmem(out + 8, 16, uuid, 16);
    g_assert_cmpuint(out[24], ==, 3);
    for (int i = 25; i < MULTIFD_INIT_SIZE; i++) {
        g_assert_cmpuint(out[i], ==, 0);
    }
    g_assert_true(multifd_init_decode(out, uuid, 4, &id, &err));
    g_assert_cmpuint(id, ==, 3);
    /* Hostile: id beyond the channels, another VM, bad magic, version. */
    g_assert_false(multifd_init_decode(out, uuid, 3, &id, &err));
    g_assert_nonnull(strstr(err->message, "channel id 3"));
    g_clear_error(&err);
    g_assert_false(multifd_init_decode(out, no_uuid, 4, &id, &err));
    g_assert_cmpstr(err->message, ==, "multifd: received uuid "
                    "'a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf' and expected uuid "
                    "'00000000-0000-0000-0000-000000000000' for channel 3");
    g_clear_error(&err);
    out[7] = 2;
    g_assert_false(multifd_init_decode(out, uuid, 4, &id, &err));
    g_assert_cmpstr(err->message, ==,
                    "multifd: received packet version 2 expected 1");
    g_clear_error(&err);
    out[0] = 0;
    g_assert_false(multifd_init_decode(out, uuid, 4, &id, &err));
    g_assert_cmpstr(err->message, ==,
                    "multifd: received packet magic 223344 expected 11223344");
    g_clear_error(&err);
}

static const MultifdBlock block = { "pc.ram", 64 * PAGE };

static void encode_two_pages(uint8_t *out)
{
    MultifdPacket p = { .pages = 2, .packet_num = 0x1122334455667788ULL };

    g_strlcpy(p.block, "pc.ram", sizeof(p.block));
    p.offsets[0] = 5 * PAGE;
    p.offsets[1] = 63 * PAGE;
    multifd_packet_encode(out, &p);
}

static void test_packet_golden(void)
{
    uint8_t out[MULTIFD_HEADER_SIZE];
    MultifdPacket p;
    GError *err = NULL;

    encode_two_pages(out);
    g_assert_cmphex(be32_at(out), ==, 0x11223344);
    g_assert_cmpuint(be32_at(out + 4), ==, 1);
    g_assert_cmpuint(be32_at(out + 8), ==, 0);            /* flags */
    g_assert_cmpuint(be32_at(out + 12), ==, 128);         /* pages_alloc */
    g_assert_cmpuint(be32_at(out + 16), ==, 2);           /* normal pages */
    g_assert_cmpuint(be32_at(out + 20), ==, 2 * PAGE);    /* next size */
    g_assert_cmphex(be64_at(out + 24), ==, 0x1122334455667788ULL);
    g_assert_cmpstr((const char *)out + 64, ==, "pc.ram");
    g_assert_cmpuint(be64_at(out + 320), ==, 5 * PAGE);
    g_assert_cmpuint(be64_at(out + 328), ==, 63 * PAGE);
    g_assert_cmpuint(be64_at(out + 336), ==, 0);
    g_assert_cmpuint(MULTIFD_HEADER_SIZE, ==, 1344);
    g_assert_true(multifd_packet_decode(out, &block, &p, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(p.pages, ==, 2);
    g_assert_cmpuint(p.offsets[1], ==, 63 * PAGE);
}

/* A SYNC without pages may carry what QEMU left in its buffer: an old
 * block name and data size. */
static void test_packet_sync_leftovers(void)
{
    uint8_t out[MULTIFD_HEADER_SIZE];
    MultifdPacket p;

    encode_two_pages(out);
    out[11] = MULTIFD_FLAG_SYNC;
    out[19] = 0;                                          /* no pages */
    memcpy(out + 64, "gone", 5);
    g_assert_true(multifd_packet_decode(out, &block, &p, NULL));
    g_assert_cmpuint(p.flags, ==, MULTIFD_FLAG_SYNC);
    g_assert_cmpuint(p.pages, ==, 0);
}

typedef struct Hostile {
    size_t at;                  /* byte to change */
    uint8_t value;
    const char *message;        /* the whole error */
} Hostile;

static void test_packet_hostile(void)
{
    static const Hostile cases[] = {
        { 0, 0x99, "multifd: received packet magic 99223344 and expected "
                   "magic 11223344" },
        { 7, 2, "multifd: received packet version 2 and expected version 1" },
        { 14, 1, "multifd: received packet with size 384 and expected a "
                 "size of 128" },
        { 15, 1, "multifd: received packet with 2 pages and expected "
                 "maximum pages are 1" },
        { 19, 129, "multifd: received packet with 129 pages and expected "
                   "maximum pages are 128" },
        { 11, 0x02, "multifd: flags received 2 flags expected 0 (no "
                    "compression)" },
        { 11, 0x40, "multifd: unknown packet flags 0x40" },
        { 21, 0x10, "multifd: packet of 2 pages announces 1056768 bytes of "
                    "data" },
        { 64, 'x', "multifd: unknown ram block xc.ram" },
        /* 64 pages: 64 * 4096 is one page past the end. */
        { 320 + 8 + 5, 0x04, "multifd: offset too long 262144 (max 262144)" },
        { 320 + 7, 0x01, "multifd: offset 0x5001 is not page aligned" },
        { 320 + 8 + 0, 0x80, "multifd: offset too long 9223372036855033856 "
                             "(max 262144)" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint8_t out[MULTIFD_HEADER_SIZE];
        MultifdPacket p;
        GError *err = NULL;

        encode_two_pages(out);
        if (cases[i].at == 320 + 8 + 5) {
            out[320 + 8 + 5] = 0x04;            /* 0x40000 */
            out[320 + 8 + 6] = 0;
        } else {
            out[cases[i].at] = cases[i].value;
        }
        g_assert_false(multifd_packet_decode(out, &block, &p, &err));
        g_assert_cmpstr(err->message, ==, cases[i].message);
        g_clear_error(&err);
    }
}

/* ---- RAM for the channel tests: a memfd, or the heap ---- */

typedef struct Ram {
    int fd;
    uint8_t *base;
    uint64_t len;
    int landed;                 /* packets the receiver checked, atomic */
    bool refuse;
} Ram;

static void ram_init(Ram *r, uint64_t len, bool memfd)
{
    r->len = len;
    r->landed = 0;
    r->refuse = false;
    if (memfd) {
        r->fd = memfd_create("ram", MFD_CLOEXEC);
        g_assert_cmpint(ftruncate(r->fd, len), ==, 0);
        r->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
                       0);
        g_assert_true(r->base != MAP_FAILED);
    } else {
        r->fd = -1;
        r->base = g_malloc0(len);
    }
}

static void ram_destroy(Ram *r)
{
    if (r->fd >= 0) {
        munmap(r->base, r->len);
        close(r->fd);
    } else {
        g_free(r->base);
    }
}

static const uint8_t *src_page(void *opaque, uint64_t offset)
{
    return ((Ram *)opaque)->base + offset;
}

static uint8_t *dst_page(void *opaque, uint64_t offset)
{
    return ((Ram *)opaque)->base + offset;
}

static bool pages_arrive(void *opaque, const MultifdPacket *p, GError **errp)
{
    Ram *r = opaque;

    g_atomic_int_inc(&r->landed);
    if (r->refuse) {
        return tern_invalid(errp, "pages refused");
    }
    return true;
}

static MultifdRecv *receiver(Ram *r, const int *fds, unsigned n)
{
    const MultifdRecvConfig cfg = {
        .block = { "pc.ram", r->len }, .ram_fd = r->fd, .page = dst_page,
        .pages = pages_arrive, .opaque = r,
    };

    return multifd_recv_new(&cfg, fds, n);
}

static MultifdSend *sender(Ram *r, const int *fds, unsigned n, GError **errp)
{
    const MultifdSendConfig cfg = {
        .block = "pc.ram", .ram_fd = r->fd, .page = src_page, .opaque = r,
    };

    return multifd_send_new(&cfg, fds, n, errp);
}

static void socketpairs(int *a, int *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                                   sv), ==, 0);
        a[i] = sv[0];
        b[i] = sv[1];
    }
}

/* Three rounds over 3 channels: every page, then every third page
 * rewritten, then a scattered few; each round ends with a SYNC. With
 * 'map', the receiver is told to map its pages (a postcopy's precopy). */
static void channels_round_trip(bool src_memfd, bool dst_memfd, bool map)
{
    const unsigned n = 3;
    const uint64_t npages = 1000;
    int a[3], b[3];
    Ram src, dst;
    MultifdSend *s;
    MultifdRecv *r;
    GError *err = NULL;

    ram_init(&src, npages * PAGE, src_memfd);
    ram_init(&dst, npages * PAGE, dst_memfd);
    socketpairs(a, b, n);
    s = sender(&src, a, n, &err);
    g_assert_no_error(err);
    r = receiver(&dst, b, n);
    if (map) {
        multifd_recv_map_pages(r);
    }
    for (int round = 0; round < 3; round++) {
        for (uint64_t page = 0; page < npages; page++) {
            if (round == 0 || (round == 1 && page % 3 == 0) ||
                (round == 2 && page % 97 == 5)) {
                memset(src.base + page * PAGE, page * 7 + round, PAGE);
                multifd_send_page(s, page * PAGE);
            }
        }
        /* One SYNC per channel, whatever the pages. */
        g_assert_cmpuint(multifd_send_sync(s), >=, n * MULTIFD_HEADER_SIZE);
        g_assert_true(multifd_recv_sync(r, &err));
        g_assert_no_error(err);
        if (round == 0 && dst_memfd) {
            g_assert_cmpuint(test_mapped_pages(dst.base, npages), ==,
                             map ? npages : 0);
        }
        g_assert_cmpmem(dst.base, npages * PAGE, src.base, npages * PAGE);
    }
    g_assert_true(multifd_send_flush(s, &err));
    g_assert_no_error(err);
    multifd_send_free(s);
    /* The source closed its channels after the last SYNC: another sync
     * finds them gone. */
    g_assert_false(multifd_recv_sync(r, &err));
    g_assert_nonnull(strstr(err->message, "closed before its SYNC"));
    g_clear_error(&err);
    multifd_recv_free(r);
    ram_destroy(&src);
    ram_destroy(&dst);
}

static void test_channels_splice(void)
{
    channels_round_trip(true, true, false);
}

static void test_channels_copy(void)
{
    channels_round_trip(false, false, false);
}

static void test_channels_mapped(void)
{
    channels_round_trip(true, true, true);
}

static void test_zero_copy_needs_tcp(void)
{
    const MultifdSendConfig cfg = {
        .block = "pc.ram", .ram_fd = -1, .zero_copy = true,
    };
    int a[1], b[1];
    GError *err = NULL;

    socketpairs(a, b, 1);
    g_assert_null(multifd_send_new(&cfg, a, 1, &err));
    g_assert_cmpstr(err->message, ==,
                    "Zero copy send feature not detected in host kernel");
    g_clear_error(&err);
    close(b[0]);
}

/* ---- hostile bytes into a receiver ---- */

/* One channel fed 'data' then closed; the first sync's error. */
static char *feed(const void *data, size_t len, unsigned channels,
                  bool refuse)
{
    int a[2], b[2];
    Ram dst;
    MultifdRecv *r;
    GError *err = NULL;
    char *msg;

    ram_init(&dst, 64 * PAGE, true);
    dst.refuse = refuse;
    socketpairs(a, b, channels);
    r = receiver(&dst, b, channels);
    g_assert_cmpint(write(a[0], data, len), ==, (ssize_t)len);
    close(a[0]);
    if (channels > 1) {
        g_assert_cmpint(write(a[1], data, MULTIFD_INIT_SIZE), ==,
                        MULTIFD_INIT_SIZE);
        close(a[1]);
    }
    g_assert_false(multifd_recv_sync(r, &err));
    msg = g_strdup(err->message);
    g_error_free(err);
    multifd_recv_free(r);
    ram_destroy(&dst);
    return msg;
}

static void test_receiver_hostile(void)
{
    uint8_t buf[MULTIFD_INIT_SIZE + MULTIFD_HEADER_SIZE + 2 * PAGE] = { 0 };
    uint8_t *hdr = buf + MULTIFD_INIT_SIZE;
    char *msg;

    multifd_init_encode(buf, no_uuid, 0);
    encode_two_pages(hdr);
    /* Truncated: the header cut, then the data cut. */
    msg = feed(buf, MULTIFD_INIT_SIZE + 100, 1, false);
    g_assert_cmpstr(msg, ==, "multifd channel 0: truncated packet");
    g_free(msg);
    msg = feed(buf, sizeof(buf) - 1, 1, false);
    g_assert_cmpstr(msg, ==, "multifd channel 0: truncated packet");
    g_free(msg);
    /* Closed before its initial packet. */
    msg = feed(buf, 10, 1, false);
    g_assert_cmpstr(msg, ==, "multifd channel 0: closed before its initial "
                    "packet");
    g_free(msg);
    /* A header the decoder refuses, pages the owner refuses. */
    hdr[0] = 0;
    msg = feed(buf, sizeof(buf), 1, false);
    g_assert_nonnull(strstr(msg, "received packet magic"));
    g_free(msg);
    hdr[0] = 0x11;
    msg = feed(buf, sizeof(buf), 1, true);
    g_assert_cmpstr(msg, ==, "pages refused");
    g_free(msg);
    /* Two channels saying they are channel 0. */
    msg = feed(buf, MULTIFD_INIT_SIZE, 2, false);
    g_assert_cmpstr(msg, ==, "multifd: received id '0' already setup");
    g_free(msg);
    /* A whole good packet, then EOF without a SYNC. */
    msg = feed(buf, sizeof(buf), 1, false);
    g_assert_cmpstr(msg, ==, "multifd: a channel was closed before its SYNC");
    g_free(msg);
}

/* ---- a sender whose peer went away ---- */

static void test_sender_peer_gone(void)
{
    int a[2], b[2];
    Ram src;
    MultifdSend *s;
    GError *err = NULL;

    ram_init(&src, 256 * PAGE, true);
    socketpairs(a, b, 2);
    s = sender(&src, a, 2, &err);
    close(b[0]);
    close(b[1]);
    /* Packets go nowhere; handing them over must not block for ever. */
    for (int i = 0; i < 20; i++) {
        for (uint64_t page = 0; page < 256; page++) {
            multifd_send_page(s, page * PAGE);
        }
    }
    multifd_send_sync(s);
    g_assert_false(multifd_send_flush(s, &err));
    g_assert_true(g_str_has_prefix(err->message, "multifd channel "));
    g_assert_nonnull(strstr(err->message, "Broken pipe"));
    g_clear_error(&err);
    multifd_send_free(s);
    ram_destroy(&src);
}

/* ---- a precopy job with multifd ---- */

#define JOB_PAGES 2048

typedef TestRamVm Vm;

/* Between rounds the guest turns some pages to zero and others back to
 * data: a page's zero record (main stream) and its data (a channel) of
 * successive rounds must land in order. */
static bool guest_sync(void *opaque, HBitmap *dirty, GError **errp)
{
    Vm *vm = opaque;

    if (++vm->syncs > 6) {
        return true;
    }
    for (uint64_t page = vm->syncs % 4; page < JOB_PAGES; page += 4) {
        uint8_t v = (page / 4 + vm->syncs) % 2 ? 0 : page + vm->syncs;

        memset(vm->base + page * PAGE, v, PAGE);
        hbitmap_set(dirty, page, 1);
    }
    return true;
}

static bool stop_vm(void *opaque, GError **errp)
{
    return true;
}

static void run_guest(void *opaque)
{
}

static void status_changed(void *opaque)
{
}

typedef struct Load {
    MigIncoming *in;
    QEMUFile *f;
    bool ok;
    GError *err;
} Load;

static gpointer load_thread(gpointer opaque)
{
    Load *l = opaque;

    l->ok = mig_incoming_run(l->in, l->f, NULL, &l->err);
    return NULL;
}

static void test_job_with_multifd(void)
{
    const unsigned n = 4;
    const MigrationParams p = { .downtime_limit_ms = 1 };
    const MigrationHooks h = { .stop_vm = stop_vm };
    const MigIncomingConfig cfg = { .nr_vcpus = 1 };
    const MigIncomingHooks ih = { .run_guest = run_guest,
                                  .status_changed = status_changed };
    int main_fds[2], a[4], b[4];
    Vm src, dst;
    Load load = { 0 };
    MigrationJob *job;
    MigrationStats st;
    GThread *t;
    GError *err = NULL;

    test_ram_vm_init(&src, (uint64_t)JOB_PAGES * PAGE);
    test_ram_vm_init(&dst, (uint64_t)JOB_PAGES * PAGE);
    for (uint64_t page = 0; page < JOB_PAGES; page++) {
        memset(src.base + page * PAGE, page % 3 ? page : 0, PAGE);
    }
    /* The destination starts with stale data where zeroes must land. */
    memset(dst.base, 0xee, (uint64_t)JOB_PAGES * PAGE);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                               main_fds), ==, 0);
    socketpairs(a, b, n);
    g_assert_true(ram_migration_multifd_send_start(src.ram, a, n, false,
                                                   no_uuid, &err));
    ram_migration_multifd_recv_start(dst.ram, b, n, no_uuid);
    load.in = mig_incoming_new(dst.sv, dst.ram, &dst.mem, &cfg, &ih);
    load.f = qemu_file_new_fd_input(main_fds[1]);
    t = g_thread_new("load", load_thread, &load);
    ram_migration_set_dirty_sync(src.ram, guest_sync, &src);
    job = migration_job_start(src.sv, qemu_file_new_fd_output(main_fds[0]),
                              NULL, src.ram, &p, &h);
    g_assert_true(migration_job_wait(job, &err));
    g_assert_no_error(err);
    migration_job_get_stats(job, &st);
    g_assert_cmpuint(st.dirty_sync_count, >=, 3);
    g_assert_cmpuint(st.multifd_bytes, >=, st.normal * PAGE);
    g_assert_cmpuint(st.duplicate, >, 0);
    g_thread_join(t);
    g_assert_no_error(load.err);
    g_assert_true(load.ok);
    g_assert_cmpmem(dst.base, (uint64_t)JOB_PAGES * PAGE, src.base,
                    (uint64_t)JOB_PAGES * PAGE);
    migration_job_free(job);
    mig_incoming_free(load.in);
    ram_migration_multifd_stop(src.ram);
    ram_migration_multifd_stop(dst.ram);
    test_ram_vm_destroy(&src);
    test_ram_vm_destroy(&dst);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/multifd/wire/init", test_init_golden);
    g_test_add_func("/multifd/wire/packet", test_packet_golden);
    g_test_add_func("/multifd/wire/sync-leftovers", test_packet_sync_leftovers);
    g_test_add_func("/multifd/wire/hostile", test_packet_hostile);
    g_test_add_func("/multifd/channels/splice", test_channels_splice);
    g_test_add_func("/multifd/channels/copy", test_channels_copy);
    g_test_add_func("/multifd/channels/mapped", test_channels_mapped);
    g_test_add_func("/multifd/channels/zero-copy-needs-tcp",
                    test_zero_copy_needs_tcp);
    g_test_add_func("/multifd/receiver/hostile", test_receiver_hostile);
    g_test_add_func("/multifd/sender/peer-gone", test_sender_peer_gone);
    g_test_add_func("/multifd/job", test_job_with_multifd);
    return g_test_run();
}
