/*
 * The limit beside bench/migration.py: a plain sender/receiver pair that
 * moves SIZE bytes of guest pages from a populated memfd in one process into
 * a fresh memfd in another, over unix or TCP sockets, the way a migration
 * moves them but with nothing else to do. Two framings:
 *   plain    one stream of QEMU RAM records (be64 offset|PAGE, 4096 bytes),
 *            written 32 records per writev as QEMUFile does;
 *   multifd  N streams of QEMU multifd packets (a 1344-byte header naming up
 *            to 128 page offsets, then the pages), packets dealt round-robin.
 * Ways to send: write (writev/sendmsg from the mapping: one copy into the
 * socket), splice (the memfd's pages through a pipe into the socket, by
 * reference), zerocopy (sendmsg MSG_ZEROCOPY, TCP, completions reaped from
 * the error queue). Ways to receive: pwrite (read into a buffer, pwritev runs
 * of pages into the memfd: two copies, no page faults), readv (multifd:
 * readv straight into the mapping: one copy, a fault per fresh page),
 * splice (socket -> pipe -> memfd: one copy, no faults).
 * Prints one JSON line: {"ms": wall time from "go" to the last byte placed,
 * "ok": the destination's bytes hash the same as the source's}.
 * Built and run by bench/migration.py; only libc.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define PKT_PAGES 128
#define PKT_HDR (320 + 8 * PKT_PAGES)
#define PLAIN_BATCH 32
#define MAX_STREAMS 16
#define PIPE_BYTES (1 << 20)
#define IOV_PAGES 256

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif

enum { SEND_WRITE, SEND_SPLICE, SEND_ZEROCOPY };
enum { RECV_PWRITE, RECV_READV, RECV_SPLICE };

typedef struct {
    bool tcp, multifd;
    int streams, send, recv;
    uint64_t size;              /* payload bytes */
    uint64_t base;              /* where the payload sits in both memfds */
    char path[108];
    int port;
    const char *perf;           /* -P FILE */
} Config;

typedef struct {
    const Config *c;
    int fd;                     /* the stream's socket */
    int id;
    int memfd;
    uint8_t *map;
} Stream;

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("send");
        }
        p += n;
        len -= n;
    }
}

static void writev_all(int fd, struct iovec *iov, int cnt, int flags)
{
    while (cnt) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = cnt };
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | flags);

        if (n < 0 && (errno == EINTR || errno == ENOBUFS)) {
            continue;
        }
        if (n < 0) {
            die("sendmsg");
        }
        while (cnt && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
}

static void read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = recv(fd, p, len, MSG_WAITALL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("recv");
        }
        p += n;
        len -= n;
    }
}

/* xorshift fill: "random" pages, none of them zero. */
static void fill(uint8_t *p, uint64_t len)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL, *w = (uint64_t *)p;

    for (uint64_t i = 0; i < len / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
}

static uint64_t hash(const uint8_t *p, uint64_t len)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t h = 0;

    for (uint64_t i = 0; i < len / 8; i++) {
        h = (h ^ w[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* ---- framing ---- */

/* Packet k of this stream: the pages [first, first+count). */
static bool packet_of(const Stream *s, uint64_t k, uint64_t *first,
                      uint32_t *count)
{
    uint64_t npages = s->c->size / PAGE;
    uint64_t pkt = k * s->c->streams + s->id;

    *first = pkt * PKT_PAGES;
    if (*first >= npages) {
        return false;
    }
    *count = npages - *first < PKT_PAGES ? npages - *first : PKT_PAGES;
    return true;
}

static void fill_header(uint8_t *h, uint64_t base, uint64_t first,
                        uint32_t count, uint64_t num)
{
    uint32_t *w = (uint32_t *)h;
    uint64_t *off = (uint64_t *)(h + 320);

    memset(h, 0, PKT_HDR);
    w[0] = htobe32(0x11223344);
    w[1] = htobe32(1);
    w[2] = 0;
    w[3] = htobe32(PKT_PAGES);
    w[4] = htobe32(count);
    w[5] = htobe32(count * PAGE);
    *(uint64_t *)(h + 24) = htobe64(num);
    strcpy((char *)h + 64, "pc.ram");
    for (uint32_t i = 0; i < count; i++) {
        off[i] = htobe64(base + (first + i) * PAGE);
    }
}

/* ---- send ---- */

static void zerocopy_reap(int fd, uint32_t *done, bool wait)
{
    char ctrl[128];

    for (;;) {
        struct msghdr m = { .msg_control = ctrl, .msg_controllen = sizeof(ctrl) };
        struct cmsghdr *cm;
        ssize_t n = recvmsg(fd, &m, MSG_ERRQUEUE | (wait ? 0 : MSG_DONTWAIT));

        if (n < 0) {
            if (errno == EAGAIN && !wait) {
                return;
            }
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            die("recvmsg errqueue");
        }
        for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
            struct sock_extended_err *e = (void *)CMSG_DATA(cm);

            if (e->ee_origin == SO_EE_ORIGIN_ZEROCOPY) {
                *done = e->ee_data + 1;
            }
        }
        return;
    }
}

static void send_multifd(Stream *s)
{
    const Config *c = s->c;
    uint8_t hdr[PKT_HDR];
    struct iovec iov[1 + PKT_PAGES];
    uint64_t first;
    uint32_t count, zc_sent = 0, zc_done = 0;
    int pipefd[2] = { -1, -1 };

    if (c->send == SEND_SPLICE) {
        if (pipe2(pipefd, 0) < 0 || fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_BYTES) < 0) {
            die("pipe");
        }
    }
    for (uint64_t k = 0; packet_of(s, k, &first, &count); k++) {
        size_t data = (size_t)count * PAGE;
        loff_t off = c->base + first * PAGE;

        fill_header(hdr, c->base, first, count, k * c->streams + s->id);
        if (c->send == SEND_SPLICE) {
            size_t left = PKT_HDR + data;

            if (write(pipefd[1], hdr, PKT_HDR) != PKT_HDR) {
                die("write pipe");
            }
            while (data) {
                ssize_t n = splice(s->memfd, &off, pipefd[1], NULL, data,
                                   SPLICE_F_MOVE);
                if (n <= 0) {
                    die("splice memfd");
                }
                data -= n;
            }
            while (left) {
                ssize_t n = splice(pipefd[0], NULL, s->fd, NULL, left,
                                   SPLICE_F_MOVE | SPLICE_F_MORE);
                if (n <= 0) {
                    die("splice socket");
                }
                left -= n;
            }
            continue;
        }
        if (c->send == SEND_ZEROCOPY) {
            write_all(s->fd, hdr, PKT_HDR);
            iov[0].iov_base = s->map + off;
            iov[0].iov_len = data;
            writev_all(s->fd, iov, 1, MSG_ZEROCOPY);
            zc_sent++;
            zerocopy_reap(s->fd, &zc_done, false);
            continue;
        }
        iov[0].iov_base = hdr;
        iov[0].iov_len = PKT_HDR;
        iov[1].iov_base = s->map + off;
        iov[1].iov_len = data;
        writev_all(s->fd, iov, 2, 0);
    }
    while (c->send == SEND_ZEROCOPY && zc_done < zc_sent) {
        zerocopy_reap(s->fd, &zc_done, true);
    }
}

static void send_plain(Stream *s)
{
    const Config *c = s->c;
    uint64_t npages = c->size / PAGE, hdr[PLAIN_BATCH];
    struct iovec iov[2 * PLAIN_BATCH];

    for (uint64_t p = 0; p < npages; p += PLAIN_BATCH) {
        int n = 0;

        for (uint64_t i = p; i < npages && i < p + PLAIN_BATCH; i++, n++) {
            hdr[n] = htobe64((c->base + i * PAGE) | 0x08 | (i ? 0x20 : 0));
            iov[2 * n].iov_base = &hdr[n];
            iov[2 * n].iov_len = 8;
            iov[2 * n + 1].iov_base = s->map + c->base + i * PAGE;
            iov[2 * n + 1].iov_len = PAGE;
        }
        writev_all(s->fd, iov, 2 * n, 0);
    }
}

/* ---- receive ---- */

/* pwritev the pages at 'buf' to their offsets, one call per contiguous run. */
static void place_runs(Stream *s, const uint64_t *offs, uint8_t *const *src,
                       uint32_t count)
{
    struct iovec iov[IOV_PAGES];

    for (uint32_t i = 0; i < count; ) {
        uint32_t j = i;

        while (j < count && j - i < IOV_PAGES && offs[j] == offs[i] + (uint64_t)(j - i) * PAGE) {
            iov[j - i].iov_base = src[j];
            iov[j - i].iov_len = PAGE;
            j++;
        }
        if (pwritev(s->memfd, iov, j - i, offs[i]) != (ssize_t)(j - i) * PAGE) {
            die("pwritev");
        }
        i = j;
    }
}

static void splice_runs(Stream *s, int pipefd[2], const uint64_t *offs,
                        uint32_t count)
{
    size_t want = (size_t)count * PAGE;

    while (want) {
        ssize_t n = splice(s->fd, NULL, pipefd[1], NULL, want, SPLICE_F_MOVE);

        if (n <= 0) {
            die("splice from socket");
        }
        want -= n;
    }
    for (uint32_t i = 0; i < count; ) {
        uint32_t j = i;

        while (j < count && offs[j] == offs[i] + (uint64_t)(j - i) * PAGE) {
            j++;
        }
        for (size_t left = (size_t)(j - i) * PAGE; left; ) {
            loff_t off = offs[j - 1] + PAGE - left;
            ssize_t n = splice(pipefd[0], NULL, s->memfd, &off, left,
                               SPLICE_F_MOVE);

            if (n <= 0) {
                die("splice to memfd");
            }
            left -= n;
        }
        i = j;
    }
}

static void recv_multifd(Stream *s)
{
    uint8_t hdr[PKT_HDR];
    uint8_t *buf = malloc(PKT_PAGES * PAGE), *src[PKT_PAGES];
    uint64_t offs[PKT_PAGES], first;
    struct iovec iov[PKT_PAGES];
    uint32_t count;
    int pipefd[2];

    if (s->c->recv == RECV_SPLICE &&
        (pipe2(pipefd, 0) < 0 || fcntl(pipefd[1], F_SETPIPE_SZ, PIPE_BYTES) < 0)) {
        die("pipe");
    }
    for (uint64_t k = 0; packet_of(s, k, &first, &count); k++) {
        read_all(s->fd, hdr, PKT_HDR);
        count = be32toh(((uint32_t *)hdr)[4]);
        for (uint32_t i = 0; i < count; i++) {
            offs[i] = be64toh(((uint64_t *)(hdr + 320))[i]);
            src[i] = buf + i * PAGE;
            iov[i].iov_base = s->map + offs[i];
            iov[i].iov_len = PAGE;
        }
        switch (s->c->recv) {
        case RECV_PWRITE:
            read_all(s->fd, buf, (size_t)count * PAGE);
            place_runs(s, offs, src, count);
            break;
        case RECV_READV:
            for (uint32_t i = 0; i < count; ) {
                struct msghdr m = { .msg_iov = iov + i,
                                    .msg_iovlen = count - i };
                ssize_t n = recvmsg(s->fd, &m, MSG_WAITALL);

                if (n <= 0) {
                    die("recvmsg");
                }
                while (i < count && (size_t)n >= iov[i].iov_len) {
                    n -= iov[i++].iov_len;
                }
                if (n) {
                    iov[i].iov_base = (uint8_t *)iov[i].iov_base + n;
                    iov[i].iov_len -= n;
                }
            }
            break;
        default:
            splice_runs(s, pipefd, offs, count);
        }
    }
    free(buf);
}

static void recv_plain(Stream *s)
{
    uint64_t npages = s->c->size / PAGE, offs[255];
    size_t rec = 8 + PAGE;
    uint8_t *buf = malloc(255 * rec), *src[255];

    for (uint64_t p = 0; p < npages; p += 255) {
        uint32_t n = npages - p < 255 ? npages - p : 255;

        read_all(s->fd, buf, n * rec);
        for (uint32_t i = 0; i < n; i++) {
            offs[i] = be64toh(*(uint64_t *)(buf + i * rec)) & ~0xfffULL;
            src[i] = buf + i * rec + 8;
        }
        place_runs(s, offs, src, n);
    }
    free(buf);
}

/* ---- processes ---- */

static int listen_socket(Config *c)
{
    int fd = socket(c->tcp ? AF_INET : AF_UNIX, SOCK_STREAM, 0);

    if (fd < 0) {
        die("socket");
    }
    if (c->tcp) {
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);

        if (bind(fd, (void *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (void *)&a, &len) < 0) {
            die("bind");
        }
        c->port = ntohs(a.sin_port);
    } else {
        struct sockaddr_un a = { .sun_family = AF_UNIX };

        snprintf(c->path, sizeof(c->path), "/tmp/tern-limit-%d.sock", getpid());
        unlink(c->path);
        strcpy(a.sun_path, c->path);
        if (bind(fd, (void *)&a, sizeof(a)) < 0) {
            die("bind");
        }
    }
    if (listen(fd, MAX_STREAMS) < 0) {
        die("listen");
    }
    return fd;
}

static int connect_socket(const Config *c)
{
    int fd = socket(c->tcp ? AF_INET : AF_UNIX, SOCK_STREAM, 0), one = 1;

    if (c->tcp) {
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons(c->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

        if (c->send == SEND_ZEROCOPY &&
            setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0) {
            die("SO_ZEROCOPY");
        }
        if (connect(fd, (void *)&a, sizeof(a)) < 0) {
            die("connect");
        }
    } else {
        struct sockaddr_un a = { .sun_family = AF_UNIX };

        strcpy(a.sun_path, c->path);
        if (connect(fd, (void *)&a, sizeof(a)) < 0) {
            die("connect");
        }
    }
    return fd;
}

typedef void (*StreamFn)(Stream *s);

typedef struct {
    Stream s;
    StreamFn fn;
} Job;

static void *job_thread(void *opaque)
{
    Job *j = opaque;

    j->fn(&j->s);
    return NULL;
}

static void run_streams(const Config *c, int *fds, int memfd, uint8_t *map,
                        StreamFn fn)
{
    pthread_t t[MAX_STREAMS];
    Job jobs[MAX_STREAMS];

    for (int i = 0; i < c->streams; i++) {
        jobs[i] = (Job){ { c, fds[i], i, memfd, map }, fn };
        if (pthread_create(&t[i], NULL, job_thread, &jobs[i])) {
            die("pthread_create");
        }
    }
    for (int i = 0; i < c->streams; i++) {
        pthread_join(t[i], NULL);
    }
}

static int new_memfd(uint64_t len, uint8_t **map)
{
    int fd = memfd_create("limit", MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, len) < 0) {
        die("memfd");
    }
    *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (*map == MAP_FAILED) {
        die("mmap");
    }
    return fd;
}

/* Source: fill, connect, wait for "go", send; reports the data's hash. */
static void sender(const Config *c, int go, int report)
{
    uint8_t *map;
    int memfd = new_memfd(c->base + c->size, &map), fds[MAX_STREAMS];
    uint64_t h;
    char b;

    fill(map + c->base, c->size);
    h = hash(map + c->base, c->size);
    for (int i = 0; i < c->streams; i++) {
        fds[i] = connect_socket(c);
    }
    if (write(report, &h, 8) != 8 || read(go, &b, 1) != 1) {
        die("sender pipe");
    }
    run_streams(c, fds, memfd, map, c->multifd ? send_multifd : send_plain);
    exit(0);
}

/* Destination: accept, receive into a fresh memfd, report the time the
 * last byte landed, then the hash (untimed). */
static void receiver(const Config *c, int lfd, int report)
{
    uint8_t *map;
    int memfd = new_memfd(c->base + c->size, &map), fds[MAX_STREAMS];
    double t;
    uint64_t h;

    for (int i = 0; i < c->streams; i++) {
        fds[i] = accept(lfd, NULL, NULL);
        if (fds[i] < 0) {
            die("accept");
        }
    }
    run_streams(c, fds, memfd, map, c->multifd ? recv_multifd : recv_plain);
    t = now_ms();
    h = hash(map + c->base, c->size);
    if (write(report, &t, 8) != 8 || write(report, &h, 8) != 8) {
        die("receiver pipe");
    }
    exit(0);
}

/* -P FILE: perf record -g of both processes over the timed part only. */
static pid_t start_perf(const char *file, pid_t ps, pid_t pr)
{
    char pids[64];
    pid_t p;

    snprintf(pids, sizeof(pids), "%d,%d", ps, pr);
    if (!(p = fork())) {
        execlp("perf", "perf", "record", "-q", "-g", "-o", file, "-p", pids,
               (char *)NULL);
        die("perf");
    }
    usleep(500 * 1000);                 /* perf attached */
    return p;
}

static int pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(v, names[i])) {
            return i;
        }
    }
    fprintf(stderr, "unknown value '%s'\n", v);
    exit(2);
}

static void usage(void)
{
    fprintf(stderr, "usage: migration-limit [-t unix|tcp] [-f plain|multifd] "
            "[-n STREAMS] [-m MIB] [-S write|splice|zerocopy] "
            "[-R pwrite|readv|splice]\n");
    exit(2);
}

static void parse(Config *c, int argc, char **argv)
{
    static const char *const sends[] = { "write", "splice", "zerocopy" };
    static const char *const recvs[] = { "pwrite", "readv", "splice" };
    int opt;

    *c = (Config){ .streams = 1, .size = 1ULL << 30, .base = 1ULL << 30 };
    while ((opt = getopt(argc, argv, "t:f:n:m:S:R:P:")) != -1) {
        switch (opt) {
        case 't': c->tcp = !strcmp(optarg, "tcp"); break;
        case 'f': c->multifd = !strcmp(optarg, "multifd"); break;
        case 'n': c->streams = atoi(optarg); break;
        case 'm': c->size = c->base = strtoull(optarg, NULL, 0) << 20; break;
        case 'S': c->send = pick(optarg, sends, 3); break;
        case 'R': c->recv = pick(optarg, recvs, 3); break;
        case 'P': c->perf = optarg; break;
        default: usage();
        }
    }
    if (c->streams < 1 || c->streams > MAX_STREAMS ||
        (!c->multifd && (c->streams != 1 || c->send != SEND_WRITE ||
                         c->recv != RECV_PWRITE)) ||
        (c->send == SEND_ZEROCOPY && !c->tcp)) {
        usage();
    }
}

int main(int argc, char **argv)
{
    Config c;
    int go[2], sr[2], rr[2], lfd, status;
    uint64_t hs, hr;
    double t0, t1;
    pid_t ps, pr, perf;

    parse(&c, argc, argv);
    lfd = listen_socket(&c);
    if (pipe(go) < 0 || pipe(sr) < 0 || pipe(rr) < 0) {
        die("pipe");
    }
    /* Each end only where it is used: a child that dies ends the reads. */
    if (!(pr = fork())) {
        close(go[1]);
        close(sr[1]);
        receiver(&c, lfd, rr[1]);
    }
    close(rr[1]);
    if (!(ps = fork())) {
        close(go[1]);
        sender(&c, go[0], sr[1]);
    }
    close(go[0]);
    close(sr[1]);
    if (read(sr[0], &hs, 8) != 8) {
        die("sender report");
    }
    usleep(100 * 1000);                 /* connections accepted */
    perf = c.perf ? start_perf(c.perf, ps, pr) : 0;
    t0 = now_ms();
    if (write(go[1], "g", 1) != 1 || read(rr[0], &t1, 8) != 8) {
        die("receiver report");
    }
    if (perf) {
        kill(perf, SIGINT);
        waitpid(perf, &status, 0);
    }
    if (read(rr[0], &hr, 8) != 8) {
        die("receiver report");
    }
    waitpid(ps, &status, 0);
    waitpid(pr, &status, 0);
    if (!c.tcp) {
        unlink(c.path);
    }
    printf("{\"ms\": %.1f, \"ok\": %s}\n", t1 - t0, hs == hr ? "true" : "false");
    return hs == hr ? 0 : 1;
}
