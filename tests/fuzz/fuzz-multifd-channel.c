/*
 * Fuzzes the destination's multifd channels as a hostile source drives
 * them: the input's bytes go down one or two real connections into a
 * MultifdRecv (initial packet, packet headers, page data, SYNCs), placed
 * by splice into a memfd or by readv into heap RAM, while this thread plays
 * the loader and syncs until the channels fail or close. The same bytes are
 * also decoded directly as an initial packet and a header. Checked: every
 * packet a decoder accepts holds at most its allowed pages, each aligned
 * and inside the RAM block, and nothing crashes, leaks or hangs.
 *
 * Input: byte 0 picks the RAM (bit 0: memfd, else heap) and the channels
 * (bit 1: two, else one); bytes 1-2 (little endian) are how many of the
 * rest go to channel 0 when there are two; the rest is the bytes sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/multifd-recv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_PAGES       64
#define RAM_LEN         ((uint64_t)RAM_PAGES * MULTIFD_PAGE_SIZE)
#define INPUT_HEAD      3
#define MAX_SYNCS       4096    /* far more than the bytes can hold */

#define CHECK(cond) do { if (!(cond)) { \
        fprintf(stderr, "fuzz-multifd-channel: %s\n", #cond); abort(); } \
    } while (0)

static const uint8_t no_uuid[16];
static const MultifdBlock block = { "pc.ram", RAM_LEN };

/* The RAM, made once: a memfd with its mapping, and heap pages. */
typedef struct Ram {
    int fd;
    uint8_t *mapped;
    uint8_t *heap;
} Ram;

static Ram *ram(void)
{
    static Ram r = { .fd = -1 };

    if (!r.heap) {
        r.fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
        CHECK(r.fd >= 0 && ftruncate(r.fd, RAM_LEN) == 0);
        r.mapped = mmap(NULL, RAM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
                        r.fd, 0);
        CHECK(r.mapped != MAP_FAILED);
        r.heap = g_malloc0(RAM_LEN);
    }
    return &r;
}

/* What the decoder promises about a packet it accepted. */
static void check_packet(const MultifdPacket *p)
{
    CHECK(p->pages <= MULTIFD_PAGES_MAX);
    for (uint32_t i = 0; i < p->pages; i++) {
        CHECK(p->offsets[i] % MULTIFD_PAGE_SIZE == 0);
        CHECK(p->offsets[i] + MULTIFD_PAGE_SIZE <= RAM_LEN);
    }
}

static uint8_t *heap_page(void *opaque, uint64_t offset)
{
    return (uint8_t *)opaque + offset;
}

static bool pages_arrive(void *opaque, const MultifdPacket *p, GError **errp)
{
    check_packet(p);
    return true;
}

/* The decoders alone, on the input's first bytes. */
static void decode_directly(const uint8_t *data, size_t size)
{
    MultifdPacket p;
    GError *err = NULL;
    uint8_t id;

    if (size >= MULTIFD_INIT_SIZE) {
        if (multifd_init_decode(data, no_uuid, 2, &id, &err)) {
            CHECK(id < 2);
        }
        g_clear_error(&err);
    }
    if (size >= MULTIFD_HEADER_SIZE) {
        if (multifd_packet_decode(data, &block, &p, &err)) {
            check_packet(&p);
        }
        g_clear_error(&err);
    }
}

/* One connection's bytes, sent from a thread so that the channel threads
 * and the loader run as they would against a real source. */
typedef struct Feed {
    const uint8_t *data;
    size_t len;
    int fd;
} Feed;

static gpointer feed_thread(gpointer opaque)
{
    Feed *f = opaque;
    size_t done = 0;

    while (done < f->len) {
        /* The receiver drops a channel it refuses: no SIGPIPE then. */
        ssize_t n = send(f->fd, f->data + done, f->len - done, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        done += n;
    }
    close(f->fd);
    return NULL;
}

static void run_channels(const uint8_t *data, size_t size, bool memfd,
                         unsigned n, size_t split)
{
    Ram *r = ram();
    const MultifdRecvConfig cfg = {
        .block = block, .ram_fd = memfd ? r->fd : -1, .page = heap_page,
        .pages = pages_arrive, .opaque = r->heap,
    };
    Feed feeds[2] = {
        { data, n > 1 ? split : size, -1 },
        { data + split, size - split, -1 },
    };
    GThread *threads[2];
    int fds[2];
    MultifdRecv *recv;
    GError *err = NULL;

    for (unsigned i = 0; i < n; i++) {
        int sv[2];

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        feeds[i].fd = sv[0];
        fds[i] = sv[1];
    }
    recv = multifd_recv_new(&cfg, fds, n);
    for (unsigned i = 0; i < n; i++) {
        threads[i] = g_thread_new("fuzz/feed", feed_thread, &feeds[i]);
    }
    for (int i = 0; i < MAX_SYNCS && multifd_recv_sync(recv, &err); i++) {
    }
    /* Every channel fails or ends: the bytes are finite. */
    CHECK(err != NULL);
    g_clear_error(&err);
    multifd_recv_free(recv);
    for (unsigned i = 0; i < n; i++) {
        g_thread_join(threads[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned n;
    size_t split;

    if (size < INPUT_HEAD) {
        return 0;
    }
    n = data[0] & 2 ? 2 : 1;
    split = data[1] | (size_t)data[2] << 8;
    data += INPUT_HEAD;
    size -= INPUT_HEAD;
    split = MIN(split, size);
    decode_directly(data, size);
    run_channels(data, size, data[-INPUT_HEAD] & 1, n, split);
    return 0;
}
