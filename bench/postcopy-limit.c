/*
 * The limit beside bench/postcopy.py: the fewest hops a postcopy page
 * request can take on this host, with nothing else to do. A destination
 * process registers a fresh memfd mapping with userfaultfd (missing mode); a
 * "vCPU" thread works on a private buffer for GAP us and then touches one
 * page not placed yet, again and again; a fault thread reads each fault and
 * writes an 8-byte request to the source process; the source's request
 * thread answers with the page on a second socket (unless its background
 * thread sent it already), and the destination's urgent thread places it
 * with UFFDIO_COPY. Meanwhile a background thread in the source streams
 * every page over a third socket and one in the destination places them:
 * the two bulk streams a postcopy runs beside its requests, at a lowered
 * priority (nice 10, or SCHED_IDLE with --idle).
 * --no-bulk measures the requests alone: the background stream waits
 * 500 ms first, and only faults placed before it starts count. --spin
 * makes the two request threads poll their sockets instead of sleeping.
 * Prints one JSON line: the fault -> placed latency the fault thread and the
 * placers measure (as tern's x-postcopy-fault-latency): count, p50, p90,
 * p99 and max in us; "ms", the background stream's wall time; "ok", every
 * page arrived.
 * Usage: postcopy-limit [--mib N] [--gap US] [--idle] [--nice N] [--no-bulk]
 *                       [--spin]
 * Built and run by bench/postcopy.py; only libc. Needs userfaultfd (root or
 * vm.unprivileged_userfaultfd=1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE        4096ull
#define MAX_SAMPLES (1 << 20)

static uint64_t npages, gap_us = 300;
static int bulk_nice = 10;
static bool bulk_idle, spin, no_bulk;
static int *bulk_started_p;         /* shared: the source's stream began */
/* Destination state. */
static int uffd, rp_fd, urgent_fd, main_fd;
static uint8_t *ram;
static uint64_t *received;          /* atomic bits */
static uint64_t *fault_ns;          /* first fault time per page, or 0 */
static uint64_t *samples, nr_samples;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int done;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "postcopy-limit: %s: %s\n", what, strerror(errno));
    exit(1);
}

static bool full_io(int fd, void *buf, size_t len, bool rd)
{
    for (size_t off = 0; off < len; ) {
        ssize_t n = rd ? recv(fd, (char *)buf + off, len - off,
                              spin && fd != main_fd ? MSG_DONTWAIT : 0)
                       : write(fd, (char *)buf + off, len - off);

        if (n < 0 && rd && errno == EAGAIN) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        off += n;
    }
    return true;
}

static void bulk_priority(void)
{
    struct sched_param sp = { 0 };

    if (bulk_idle) {
        if (sched_setscheduler(0, SCHED_IDLE, &sp) < 0) {
            die("SCHED_IDLE");
        }
    } else {
        setpriority(PRIO_PROCESS, syscall(SYS_gettid), bulk_nice);
    }
}

static bool is_received(uint64_t page)
{
    return __atomic_load_n(&received[page / 64], __ATOMIC_ACQUIRE) &
           (1ull << (page % 64));
}

/* ---- destination ---- */

static void place(uint64_t page, const uint8_t *data)
{
    struct uffdio_copy c = {
        .dst = (uintptr_t)(ram + page * PAGE), .len = PAGE,
        .src = (uintptr_t)data,
    };
    uint64_t t0;

    if (is_received(page)) {
        return;
    }
    while (ioctl(uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST) {
        if (errno != EAGAIN) {
            die("UFFDIO_COPY");
        }
    }
    __atomic_fetch_or(&received[page / 64], 1ull << (page % 64),
                      __ATOMIC_RELEASE);
    pthread_mutex_lock(&lock);
    t0 = fault_ns[page];
    fault_ns[page] = 0;
    if (t0 && nr_samples < MAX_SAMPLES &&
        !(no_bulk && __atomic_load_n(bulk_started_p, __ATOMIC_RELAXED))) {
        samples[nr_samples++] = now_ns() - t0;
    }
    pthread_mutex_unlock(&lock);
}

static void *placer(void *opaque)
{
    int fd = *(int *)opaque;
    static __thread uint8_t buf[8 + PAGE];

    if (fd == main_fd) {
        bulk_priority();
    }
    while (full_io(fd, buf, sizeof(buf), true)) {
        uint64_t page;

        memcpy(&page, buf, 8);
        place(page, buf + 8);
    }
    return NULL;
}

static void *fault_thread(void *opaque)
{
    struct pollfd pfd = { .fd = uffd, .events = POLLIN };

    (void)opaque;
    while (!done) {
        struct uffd_msg msg;
        uint64_t page;
        bool ask;

        if (poll(&pfd, 1, 100) <= 0 || read(uffd, &msg, sizeof(msg)) !=
            sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT) {
            continue;
        }
        page = (msg.arg.pagefault.address - (uintptr_t)ram) / PAGE;
        pthread_mutex_lock(&lock);
        ask = !fault_ns[page] && !is_received(page);
        if (ask) {
            fault_ns[page] = now_ns();
        }
        pthread_mutex_unlock(&lock);
        if (ask && !full_io(rp_fd, &page, 8, false)) {
            break;
        }
    }
    return NULL;
}

/* Works GAP us on its own buffer, then touches a page still missing. */
static void *vcpu(void *opaque)
{
    static uint8_t work[1 << 20];
    uint64_t seed = 88172645463325252ull, i = 0;

    (void)opaque;
    while (!done) {
        uint64_t until = now_ns() + gap_us * 1000, page;

        while (now_ns() < until) {
            work[(i++ * 64) % sizeof(work)]++;
        }
        for (int tries = 0; tries < 64; tries++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            page = seed % npages;
            if (!is_received(page)) {
                __atomic_fetch_add(&ram[page * PAGE], 1, __ATOMIC_RELAXED);
                break;
            }
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double quantile_us(unsigned pct)
{
    uint64_t i = (nr_samples * pct + 99) / 100;

    return nr_samples ? samples[i ? i - 1 : 0] / 1000.0 : 0;
}

static void destination(void)
{
    int memfd = memfd_create("ram", MFD_CLOEXEC);
    struct uffdio_api api = { .api = UFFD_API };
    struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
    pthread_t v, f, u, b;
    uint64_t t0, all, ms;

    if (memfd < 0 || ftruncate(memfd, npages * PAGE) < 0) {
        die("memfd");
    }
    ram = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
               0);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (ram == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0) {
        die("userfaultfd");
    }
    reg.range.start = (uintptr_t)ram;
    reg.range.len = npages * PAGE;
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
        die("UFFDIO_REGISTER");
    }
    received = calloc((npages + 63) / 64, 8);
    fault_ns = calloc(npages, 8);
    samples = calloc(MAX_SAMPLES, 8);
    t0 = now_ns();
    pthread_create(&f, NULL, fault_thread, NULL);
    pthread_create(&u, NULL, placer, &urgent_fd);
    pthread_create(&b, NULL, placer, &main_fd);
    pthread_create(&v, NULL, vcpu, NULL);
    pthread_join(b, NULL);              /* the background stream's end */
    ms = (now_ns() - t0) / 1000000;
    done = 1;
    pthread_join(v, NULL);
    pthread_join(f, NULL);
    shutdown(urgent_fd, SHUT_RDWR);
    pthread_join(u, NULL);
    all = 0;
    for (uint64_t p = 0; p < npages; p++) {
        all += is_received(p);
    }
    qsort(samples, nr_samples, 8, cmp_u64);
    printf("{\"ms\": %lu, \"ok\": %s, \"faults\": %lu, \"p50\": %.1f, "
           "\"p90\": %.1f, \"p99\": %.1f, \"max\": %.1f}\n", ms,
           all == npages ? "true" : "false", nr_samples, quantile_us(50),
           quantile_us(90), quantile_us(99), quantile_us(100));
}

/* ---- source ---- */

static uint64_t *sent;              /* atomic bits, shared by both threads */
static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;

static bool take(uint64_t page)
{
    uint64_t m = 1ull << (page % 64);

    return !(__atomic_fetch_or(&sent[page / 64], m, __ATOMIC_ACQ_REL) & m);
}

static void send_page(int fd, uint64_t page)
{
    static __thread uint8_t buf[8 + PAGE];

    memcpy(buf, &page, 8);
    memset(buf + 8, (int)page, PAGE);
    if (!full_io(fd, buf, sizeof(buf), false)) {
        die("send");
    }
}

static void *background(void *opaque)
{
    (void)opaque;
    bulk_priority();
    if (no_bulk) {
        usleep(500 * 1000);
        __atomic_store_n(bulk_started_p, 1, __ATOMIC_RELAXED);
    }
    for (uint64_t page = 0; page < npages; page++) {
        if (take(page)) {
            pthread_mutex_lock(&send_lock);
            send_page(main_fd, page);
            pthread_mutex_unlock(&send_lock);
        }
    }
    shutdown(main_fd, SHUT_WR);
    return NULL;
}

static void source(void)
{
    pthread_t b;
    uint64_t page;

    sent = calloc((npages + 63) / 64, 8);
    pthread_create(&b, NULL, background, NULL);
    while (full_io(rp_fd, &page, 8, true)) {
        if (page < npages && take(page)) {
            send_page(urgent_fd, page);
        }
    }
    pthread_join(b, NULL);
}

int main(int argc, char **argv)
{
    int rp[2], urgent[2], bulk[2];
    uint64_t mib = 256;
    pid_t pid;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc) {
            mib = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--gap") && i + 1 < argc) {
            gap_us = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--nice") && i + 1 < argc) {
            bulk_nice = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--spin")) {
            spin = true;
        } else if (!strcmp(argv[i], "--no-bulk")) {
            no_bulk = true;
        } else if (!strcmp(argv[i], "--idle")) {
            bulk_idle = true;
        } else {
            fprintf(stderr, "usage: postcopy-limit [--mib N] [--gap US] "
                    "[--idle] [--nice N] [--no-bulk] [--spin]\n");
            return 2;
        }
    }
    npages = mib * 256;
    bulk_started_p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, rp) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, urgent) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, bulk) < 0) {
        die("socketpair");
    }
    pid = fork();
    if (pid < 0) {
        die("fork");
    }
    rp_fd = rp[!pid];
    urgent_fd = urgent[!pid];
    main_fd = bulk[!pid];
    if (pid == 0) {
        source();
        return 0;
    }
    destination();
    shutdown(rp_fd, SHUT_RDWR);
    waitpid(pid, NULL, 0);
    return 0;
}
