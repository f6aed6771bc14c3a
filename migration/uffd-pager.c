/*
 * userfaultfd demand paging of the RAM memfd (include/migration/uffd-pager.h).
 * One fault thread reads the userfaultfd; placement (UFFDIO_COPY/ZEROPAGE
 * into holes, pwrite + UFFDIO_CONTINUE for pages a discard left in the
 * memfd) may come from any thread. 'received' is a lock-free bitmap
 * (placers set it after the page is in, the fault thread reads it); the
 * awaited pages, their first fault times and the vCPUs waiting on them are
 * under 'lock', which is never held across an ioctl or a call into the page
 * source.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "migration/uffd-pager.h"

#define FAULT_BATCH 16
#define NO_PAGE     UINT64_MAX

struct UffdPager {
    const GuestMemory *mem;
    uint64_t length, npages;
    const UffdPageSourceOps *ops;
    void *opaque;
    int uffd;                   /* -1 until started */
    int wake_fd;                /* stops the fault thread */
    bool have_zeropage;         /* UFFDIO_ZEROPAGE on this mapping */
    bool have_thread_id;        /* faults name the faulting thread */
    bool keep_discarded;        /* discards unmap, leaving the memfd page */
    int abandoned;              /* atomic: unregistered, failures expected */
    GThread *thread;

    uint64_t *received;         /* atomic bits, one per page */
    uint64_t nr_received;       /* atomic */
    uint64_t *stale;            /* discarded but still in the memfd: set
                                   before start, read-only after */
    uint64_t *claimed;          /* atomic: stale pages a placer writes */

    GMutex lock;                /* everything below */
    uint64_t *requested;        /* awaited pages */
    GHashTable *pending;        /* page -> first fault time (ns) */
    UffdPagerStats stats;       /* but missing and the blocktimes */
    unsigned nr_vcpus;
    uint64_t *vcpu_page;        /* page each vCPU waits for, or NO_PAGE */
    uint64_t *vcpu_since;       /* ns */
    uint64_t *vcpu_ns;          /* waited so far */
    unsigned nr_blocked;
    uint64_t all_since, all_ns; /* every vCPU waiting at once */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static bool bit_test(const uint64_t *map, uint64_t bit)
{
    return __atomic_load_n(&map[bit / 64], __ATOMIC_ACQUIRE) &
           (1ull << (bit % 64));
}

/* Returns whether the bit was clear before. */
static bool bit_set(uint64_t *map, uint64_t bit)
{
    uint64_t m = 1ull << (bit % 64);

    return !(__atomic_fetch_or(&map[bit / 64], m, __ATOMIC_RELEASE) & m);
}

static void bit_clear(uint64_t *map, uint64_t bit)
{
    __atomic_fetch_and(&map[bit / 64], ~(1ull << (bit % 64)),
                       __ATOMIC_RELEASE);
}

static int uffd_open(uint64_t features, uint64_t *got, GError **errp)
{
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        tern_set_error_errno(errp, errno, "userfaultfd");
        return -1;
    }
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        tern_set_error_errno(errp, errno, "UFFDIO_API");
        close(fd);
        return -1;
    }
    *got = api.features;
    return fd;
}

#define SHMEM_THP_POLICY "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static bool shmem_thp_ok(GError **errp)
{
    g_autofree char *policy = NULL;

    /* A kernel without THP has no such file and no huge shmem pages. */
    if (!g_file_get_contents(SHMEM_THP_POLICY, &policy, NULL, NULL)) {
        return true;
    }
    return uffd_pager_shmem_thp_ok(policy, errp);
}

bool uffd_pager_supported(GError **errp)
{
    uint64_t features = 0;
    int fd = uffd_open(0, &features, errp);

    if (fd < 0) {
        g_prefix_error(errp, "postcopy needs userfaultfd: ");
        return false;
    }
    close(fd);
    if (!(features & UFFD_FEATURE_MISSING_SHMEM)) {
        return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "this kernel's "
                         "userfaultfd cannot serve memfd-backed RAM");
    }
    return shmem_thp_ok(errp);
}

bool uffd_pager_shmem_thp_ok(const char *policy, GError **errp)
{
    static const char *const huge[] = {
        "[always]", "[within_size]", "[force]",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(huge); i++) {
        if (strstr(policy, huge[i])) {
            return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "postcopy needs "
                             "guest RAM in 4 KiB pages, but shmem transparent "
                             "huge pages are '%.*s' (%s: set advise or never)",
                             (int)strlen(huge[i]) - 2, huge[i] + 1,
                             SHMEM_THP_POLICY);
        }
    }
    return true;
}

/* ---- addresses ---- */

static uint8_t *offset_to_hva(const UffdPager *p, uint64_t offset)
{
    for (unsigned i = 0; i < p->mem->nr_regions; i++) {
        const GuestRegion *r = &p->mem->regions[i];

        if (offset >= r->fd_offset && offset - r->fd_offset < r->size) {
            return r->hva + (offset - r->fd_offset);
        }
    }
    return NULL;
}

/* Minor faults on shmem: a discard can unmap a page instead of freeing it,
 * and a fault on the page still in the memfd reaches the pager. */
static bool minor_supported(void)
{
    uint64_t features = 0;
    int fd = uffd_open(UFFD_FEATURE_MINOR_SHMEM, &features, NULL);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

static bool hva_to_offset(const UffdPager *p, uint64_t hva, uint64_t *offset)
{
    for (unsigned i = 0; i < p->mem->nr_regions; i++) {
        const GuestRegion *r = &p->mem->regions[i];
        uint64_t start = (uintptr_t)r->hva;

        if (hva >= start && hva - start < r->size) {
            *offset = r->fd_offset + ALIGN_DOWN(hva - start, UFFD_PAGE_SIZE);
            return true;
        }
    }
    return false;
}

static bool check_range(const UffdPager *p, uint64_t offset, uint64_t len,
                        GError **errp)
{
    if (!IS_ALIGNED(offset, UFFD_PAGE_SIZE) ||
        !IS_ALIGNED(len, UFFD_PAGE_SIZE) || offset >= p->length ||
        len > p->length - offset) {
        return tern_invalid(errp, "range 0x%" PRIx64 "+0x%" PRIx64 " is not "
                            "whole pages inside RAM (0x%" PRIx64 " bytes)",
                            offset, len, p->length);
    }
    return true;
}

/* ---- life cycle ---- */

static void mark_received(UffdPager *p, uint64_t page)
{
    if (bit_set(p->received, page)) {
        __atomic_fetch_add(&p->nr_received, 1, __ATOMIC_RELAXED);
    }
}

UffdPager *uffd_pager_new(const GuestMemory *mem, unsigned nr_vcpus,
                          const UffdPageSourceOps *ops, void *opaque,
                          GError **errp)
{
    UffdPager *p;
    uint64_t words;

    if (mem->fd < 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "demand paging needs memfd-backed guest RAM");
        return NULL;
    }
    p = g_new0(UffdPager, 1);
    p->mem = mem;
    p->length = mem->ram_size;
    p->npages = p->length / UFFD_PAGE_SIZE;
    p->ops = ops;
    p->opaque = opaque;
    p->uffd = p->wake_fd = -1;
    words = DIV_ROUND_UP(p->npages, 64);
    p->received = g_new0(uint64_t, words);
    p->requested = g_new0(uint64_t, words);
    p->stale = g_new0(uint64_t, words);
    p->claimed = g_new0(uint64_t, words);
    p->keep_discarded = minor_supported();
    p->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                       NULL);
    g_mutex_init(&p->lock);
    p->nr_vcpus = nr_vcpus;
    p->vcpu_page = g_new(uint64_t, nr_vcpus);
    p->vcpu_since = g_new0(uint64_t, nr_vcpus);
    p->vcpu_ns = g_new0(uint64_t, nr_vcpus);
    for (unsigned i = 0; i < nr_vcpus; i++) {
        p->vcpu_page[i] = NO_PAGE;
    }
    /* Block pages no region maps have nothing to fetch. */
    for (uint64_t page = 0; page < p->npages; page++) {
        if (!offset_to_hva(p, page * UFFD_PAGE_SIZE)) {
            mark_received(p, page);
        }
    }
    return p;
}

static void stop_thread(UffdPager *p)
{
    uint64_t one = 1;

    if (!p->thread) {
        return;
    }
    if (write(p->wake_fd, &one, sizeof(one)) != sizeof(one)) {
        tern_warn("cannot stop the userfault thread: %s", g_strerror(errno));
    }
    g_thread_join(p->thread);
    p->thread = NULL;
}

void uffd_pager_free(UffdPager *p)
{
    if (!p) {
        return;
    }
    stop_thread(p);
    if (p->uffd >= 0) {
        close(p->uffd);     /* wakes every thread still waiting */
    }
    if (p->wake_fd >= 0) {
        close(p->wake_fd);
    }
    g_hash_table_destroy(p->pending);
    g_mutex_clear(&p->lock);
    g_free(p->received);
    g_free(p->requested);
    g_free(p->stale);
    g_free(p->claimed);
    g_free(p->vcpu_page);
    g_free(p->vcpu_since);
    g_free(p->vcpu_ns);
    g_free(p);
}

uint64_t uffd_pager_length(const UffdPager *p)
{
    return p->length;
}

bool uffd_pager_started(const UffdPager *p)
{
    return p->uffd >= 0;
}

void uffd_pager_mark_received(UffdPager *p, uint64_t offset)
{
    if (offset < p->length) {
        mark_received(p, offset / UFFD_PAGE_SIZE);
    }
}

void uffd_pager_keep_discarded(UffdPager *p, bool on)
{
    g_assert(!uffd_pager_started(p));
    p->keep_discarded = on && minor_supported();
}

/* Drops the guest's mappings of [offset, offset + len): the next access
 * faults (in minor mode once registered) while the pages stay in the memfd.
 * Much cheaper than freeing them: a switchover discards most of the
 * guest's working set, which precopy has just sent. 0 or an errno. */
static int unmap_range(UffdPager *p, uint64_t offset, uint64_t len)
{
    for (unsigned i = 0; i < p->mem->nr_regions; i++) {
        const GuestRegion *r = &p->mem->regions[i];
        uint64_t start = MAX(offset, r->fd_offset);
        uint64_t end = MIN(offset + len, r->fd_offset + r->size);

        if (start < end &&
            madvise(r->hva + (start - r->fd_offset), end - start,
                    MADV_DONTNEED) < 0) {
            return errno;
        }
    }
    return 0;
}

static bool punch_range(UffdPager *p, uint64_t offset, uint64_t len,
                        GError **errp)
{
    if (fallocate(p->mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  offset, len) < 0) {
        tern_set_error_errno(errp, errno, "discarding RAM 0x%" PRIx64
                             "+0x%" PRIx64, offset, len);
        return false;
    }
    return true;
}

bool uffd_pager_discard(UffdPager *p, uint64_t offset, uint64_t len,
                        GError **errp)
{
    bool kept = false;
    int err;

    if (!check_range(p, offset, len, errp)) {
        return false;
    }
    g_assert(!uffd_pager_started(p));
    if (p->keep_discarded) {
        err = unmap_range(p, offset, len);
        /* EINVAL: locked in RAM (-overcommit mem-lock=on), where the
         * kernel unmaps nothing; the pages are freed instead. */
        if (err && err != EINVAL) {
            tern_set_error_errno(errp, err, "unmapping discarded RAM "
                                 "0x%" PRIx64 "+0x%" PRIx64, offset, len);
            return false;
        }
        kept = !err;
    }
    if (!kept && !punch_range(p, offset, len, errp)) {
        return false;
    }
    for (uint64_t page = offset / UFFD_PAGE_SIZE;
         page < (offset + len) / UFFD_PAGE_SIZE; page++) {
        if (kept) {
            bit_set(p->stale, page);
        }
        if (bit_test(p->received, page)) {
            bit_clear(p->received, page);
            __atomic_fetch_sub(&p->nr_received, 1, __ATOMIC_RELAXED);
        }
    }
    return true;
}

/* ---- blocktime: who waits for which page ---- */

static void vcpu_blocked(UffdPager *p, int vcpu, uint64_t page, uint64_t now)
{
    if (vcpu < 0 || (unsigned)vcpu >= p->nr_vcpus ||
        p->vcpu_page[vcpu] != NO_PAGE) {
        return;
    }
    p->vcpu_page[vcpu] = page;
    p->vcpu_since[vcpu] = now;
    if (++p->nr_blocked == p->nr_vcpus) {
        p->all_since = now;
    }
}

static void page_arrived(UffdPager *p, uint64_t page, uint64_t now)
{
    for (unsigned v = 0; v < p->nr_vcpus; v++) {
        if (p->vcpu_page[v] != page) {
            continue;
        }
        if (p->nr_blocked-- == p->nr_vcpus) {
            p->all_ns += now - p->all_since;
        }
        p->vcpu_ns[v] += now - p->vcpu_since[v];
        p->vcpu_page[v] = NO_PAGE;
    }
}

/* ---- placement ---- */

static const uint8_t zeroes[UFFD_PAGE_SIZE];

/* Maps the memfd's page at 'hva' and wakes its waiters. */
static int map_in_place(UffdPager *p, uint8_t *hva)
{
    struct uffdio_continue c = {
        .range = { (uintptr_t)hva, UFFD_PAGE_SIZE },
    };
    int ret;

    do {
        ret = ioctl(p->uffd, UFFDIO_CONTINUE, &c);
    } while (ret < 0 && errno == EAGAIN);
    if (ret < 0 && errno == EEXIST) {
        ioctl(p->uffd, UFFDIO_WAKE, &c.range);
        return 0;
    }
    return ret < 0 ? errno : 0;
}

/* A page a discard left in the memfd: the new content goes into the memfd
 * while nothing maps the page (its faults wait), then it is mapped. */
static int place_stale(UffdPager *p, uint64_t offset, uint8_t *hva,
                       const void *data)
{
    ssize_t n = pwrite(p->mem->fd, data ? data : zeroes, UFFD_PAGE_SIZE,
                       offset);

    if (n != UFFD_PAGE_SIZE) {
        return n < 0 ? errno : EIO;
    }
    return map_in_place(p, hva);
}

static int place_ioctl(UffdPager *p, uint8_t *hva, const void *data)
{
    struct uffdio_range range = { (uintptr_t)hva, UFFD_PAGE_SIZE };
    int ret;

    do {
        if (!data && p->have_zeropage) {
            struct uffdio_zeropage z = { .range = range };

            ret = ioctl(p->uffd, UFFDIO_ZEROPAGE, &z);
        } else {
            struct uffdio_copy c = {
                .dst = range.start, .len = UFFD_PAGE_SIZE,
                .src = (uintptr_t)(data ? data : zeroes),
            };

            ret = ioctl(p->uffd, UFFDIO_COPY, &c);
        }
    } while (ret < 0 && errno == EAGAIN);
    if (ret < 0 && errno == EEXIST) {
        /* Someone installed it first; make sure nobody sleeps on it. */
        ioctl(p->uffd, UFFDIO_WAKE, &range);
        return 0;
    }
    return ret < 0 ? errno : 0;
}

bool uffd_pager_place(UffdPager *p, uint64_t offset, const void *data,
                      GError **errp)
{
    uint64_t page = offset / UFFD_PAGE_SIZE;
    gpointer key, t0;
    int err;

    if (!check_range(p, offset, UFFD_PAGE_SIZE, errp)) {
        return false;
    }
    if (bit_test(p->received, page)) {
        return true;
    }
    if (!bit_test(p->stale, page)) {
        err = place_ioctl(p, offset_to_hva(p, offset), data);
    } else if (bit_set(p->claimed, page)) {
        err = place_stale(p, offset, offset_to_hva(p, offset), data);
    } else {
        /* Another thread is writing it: a second write could land after
         * the guest has changed the page. */
        return true;
    }
    if (err) {
        tern_set_error_errno(errp, err, "placing the RAM page at 0x%" PRIx64,
                             offset);
        return false;
    }
    mark_received(p, page);
    g_mutex_lock(&p->lock);
    bit_clear(p->requested, page);
    if (g_hash_table_steal_extended(p->pending, &page, &key, &t0)) {
        uint64_t now = now_ns();

        histogram_add(&p->stats.latency, now - *(uint64_t *)t0);
        g_free(key);
        page_arrived(p, page, now);
    }
    p->stats.placed++;
    g_mutex_unlock(&p->lock);
    return true;
}

bool uffd_pager_received(const UffdPager *p, uint64_t offset)
{
    return offset < p->length && bit_test(p->received, offset / UFFD_PAGE_SIZE);
}

/* ---- the fault thread ---- */

/* A fault on a received page: a zero page never allocated in the memfd
 * (missing), or a page placed in the memfd whose fault was read after it
 * was mapped (minor). */
static void fault_on_received(UffdPager *p, uint64_t offset, bool minor)
{
    uint8_t *hva = offset_to_hva(p, offset);
    int err = minor ? map_in_place(p, hva) : place_ioctl(p, hva, NULL);

    if (err && !g_atomic_int_get(&p->abandoned)) {
        tern_warn("cannot %s the page at 0x%" PRIx64 ": %s",
                  minor ? "map" : "zero-fill", offset, g_strerror(err));
    }
}

static void handle_fault(UffdPager *p, uint64_t hva, int64_t tid,
                         bool minor)
{
    uint64_t offset, page, now = now_ns();
    int vcpu = -1;
    bool ask;

    if (!hva_to_offset(p, hva, &offset)) {
        tern_warn("userfault at 0x%" PRIx64 " outside guest RAM", hva);
        return;
    }
    page = offset / UFFD_PAGE_SIZE;
    if (tid && p->ops->vcpu_of_thread) {
        vcpu = p->ops->vcpu_of_thread(p->opaque, tid);
    }
    g_mutex_lock(&p->lock);
    p->stats.faults++;
    if (bit_test(p->received, page)) {
        p->stats.zero_faults++;
        g_mutex_unlock(&p->lock);
        fault_on_received(p, offset, minor);
        return;
    }
    if (!g_hash_table_contains(p->pending, &page)) {
        uint64_t *key = g_new(uint64_t, 2);

        key[0] = page;
        key[1] = now;
        /* The key doubles as the value: [page, first fault time]. */
        g_hash_table_insert(p->pending, key, key + 1);
    }
    vcpu_blocked(p, vcpu, page, now);
    ask = !(p->requested[page / 64] & (1ull << (page % 64)));
    p->requested[page / 64] |= 1ull << (page % 64);
    p->stats.requests += ask;
    g_mutex_unlock(&p->lock);
    if (ask) {
        p->ops->request(p->opaque, offset);
    }
}

static bool read_faults(UffdPager *p)
{
    struct uffd_msg msg[FAULT_BATCH];
    ssize_t n = read(p->uffd, msg, sizeof(msg));

    if (n < 0) {
        return errno == EAGAIN || errno == EINTR;
    }
    for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
        if (msg[i].event == UFFD_EVENT_PAGEFAULT) {
            handle_fault(p, msg[i].arg.pagefault.address,
                         p->have_thread_id ? msg[i].arg.pagefault.feat.ptid
                                           : 0,
                         msg[i].arg.pagefault.flags &
                         UFFD_PAGEFAULT_FLAG_MINOR);
        }
    }
    return true;
}

static gpointer fault_thread(gpointer opaque)
{
    UffdPager *p = opaque;
    struct pollfd pfd[2] = {
        { .fd = p->uffd, .events = POLLIN },
        { .fd = p->wake_fd, .events = POLLIN },
    };

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            tern_warn("userfault thread: poll: %s", g_strerror(errno));
            break;
        }
        if (pfd[1].revents) {
            break;
        }
        if ((pfd[0].revents & POLLIN) && !read_faults(p)) {
            tern_warn("userfault thread: read: %s", g_strerror(errno));
            break;
        }
    }
    return NULL;
}

static bool register_regions(UffdPager *p, GError **errp)
{
    for (unsigned i = 0; i < p->mem->nr_regions; i++) {
        const GuestRegion *r = &p->mem->regions[i];
        struct uffdio_register reg = {
            .range = { (uintptr_t)r->hva, r->size },
            .mode = UFFDIO_REGISTER_MODE_MISSING |
                    (p->keep_discarded ? UFFDIO_REGISTER_MODE_MINOR : 0),
        };

        if (ioctl(p->uffd, UFFDIO_REGISTER, &reg) < 0) {
            tern_set_error_errno(errp, errno, "UFFDIO_REGISTER of guest RAM");
            return false;
        }
        if (!(reg.ioctls & (1ull << _UFFDIO_COPY)) ||
            (p->keep_discarded && !(reg.ioctls & (1ull << _UFFDIO_CONTINUE)))) {
            return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "userfaultfd "
                             "cannot place pages into guest RAM here");
        }
        p->have_zeropage = reg.ioctls & (1ull << _UFFDIO_ZEROPAGE);
    }
    return true;
}

bool uffd_pager_start(UffdPager *p, GError **errp)
{
    uint64_t features = 0;
    uint64_t minor = p->keep_discarded ? UFFD_FEATURE_MINOR_SHMEM : 0;

    g_assert(!uffd_pager_started(p));
    p->uffd = uffd_open(UFFD_FEATURE_THREAD_ID | minor, &features, NULL);
    if (p->uffd < 0) {
        p->uffd = uffd_open(minor, &features, errp);
    }
    if (p->uffd < 0) {
        return false;
    }
    p->have_thread_id = features & UFFD_FEATURE_THREAD_ID;
    p->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (p->wake_fd < 0) {
        tern_set_error_errno(errp, errno, "eventfd for the userfault thread");
    }
    if (p->wake_fd < 0 || !register_regions(p, errp)) {
        close(p->uffd);     /* unregisters whatever was registered */
        p->uffd = -1;
        return false;
    }
    p->thread = g_thread_new("postcopy/fault", fault_thread, p);
    return true;
}

/* ---- reconnects, completion, statistics ---- */

void uffd_pager_resend_requests(UffdPager *p)
{
    g_autoptr(GArray) pages = g_array_new(false, false, sizeof(uint64_t));

    g_mutex_lock(&p->lock);
    for (uint64_t w = 0; w < DIV_ROUND_UP(p->npages, 64); w++) {
        for (uint64_t bits = p->requested[w]; bits; bits &= bits - 1) {
            uint64_t page = w * 64 + __builtin_ctzll(bits);

            g_array_append_val(pages, page);
        }
    }
    g_mutex_unlock(&p->lock);
    for (guint i = 0; i < pages->len; i++) {
        p->ops->request(p->opaque, g_array_index(pages, uint64_t, i) *
                                   UFFD_PAGE_SIZE);
    }
}

uint8_t *uffd_pager_received_words(UffdPager *p, size_t *len)
{
    uint64_t words = DIV_ROUND_UP(p->npages, 64);
    uint8_t *buf = g_malloc(words * 8);

    for (uint64_t w = 0; w < words; w++) {
        uint64_t v = __atomic_load_n(&p->received[w], __ATOMIC_ACQUIRE);

        for (int b = 0; b < 8; b++) {
            buf[w * 8 + b] = v >> (8 * b);
        }
    }
    *len = words * 8;
    return buf;
}

/* Waiters on the ranges wake up and fault again, now without us. */
static void unregister_regions(UffdPager *p)
{
    for (unsigned i = 0; p->uffd >= 0 && i < p->mem->nr_regions; i++) {
        const GuestRegion *r = &p->mem->regions[i];
        struct uffdio_range range = { (uintptr_t)r->hva, r->size };

        if (ioctl(p->uffd, UFFDIO_UNREGISTER, &range) < 0) {
            tern_warn("UFFDIO_UNREGISTER of guest RAM: %s", g_strerror(errno));
        }
    }
}

bool uffd_pager_finish(UffdPager *p, GError **errp)
{
    uint64_t missing = p->npages - __atomic_load_n(&p->nr_received,
                                                    __ATOMIC_ACQUIRE);

    if (missing) {
        return tern_fail(errp, TERN_ERR_FAILED,
                         "%" PRIu64 " page(s) of RAM never arrived", missing);
    }
    stop_thread(p);
    unregister_regions(p);
    return true;
}

void uffd_pager_abandon(UffdPager *p)
{
    if (p && uffd_pager_started(p) &&
        !__atomic_exchange_n(&p->abandoned, 1, __ATOMIC_ACQ_REL)) {
        unregister_regions(p);
    }
}

void uffd_pager_get_stats(UffdPager *p, UffdPagerStats *out)
{
    uint64_t now = now_ns(), all;

    g_mutex_lock(&p->lock);
    *out = p->stats;
    all = p->all_ns + (p->nr_vcpus && p->nr_blocked == p->nr_vcpus ?
                       now - p->all_since : 0);
    out->blocktime_ms = all / 1000000;
    out->nr_vcpus = p->nr_vcpus;
    out->vcpu_blocktime_ms = g_new0(uint64_t, p->nr_vcpus);
    for (unsigned v = 0; v < p->nr_vcpus; v++) {
        uint64_t ns = p->vcpu_ns[v] + (p->vcpu_page[v] != NO_PAGE ?
                                       now - p->vcpu_since[v] : 0);

        out->vcpu_blocktime_ms[v] = ns / 1000000;
    }
    g_mutex_unlock(&p->lock);
    out->missing = p->npages - __atomic_load_n(&p->nr_received,
                                               __ATOMIC_ACQUIRE);
}
