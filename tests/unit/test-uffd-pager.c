/*
 * Unit tests for userfaultfd demand paging over a memfd split in two regions
 * like guest RAM: threads touching missing pages wait until a fake source
 * thread places them (content checked, each page asked for once), received
 * zero holes fill at once, discards drop pages (whether they keep them in
 * the memfd for minor faults or punch holes), requests lost while the
 * source is away are asked again, completion refuses while pages are
 * missing, statistics (latency, per-vCPU blocktime) and the received
 * bitmap's little-endian layout, hostile ranges.
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "migration/uffd-pager.h"

#define NPAGES 64
#define PS UFFD_PAGE_SIZE

typedef struct Env {
    GuestMemory mem;
    uint8_t *base;
    GAsyncQueue *asked;         /* offsets + 1 */
    UffdPager *pager;
    int refuse;                 /* atomic: the source is "away" */
    GThread *source;
    int vcpu_tids[2];           /* atomic */
    GHashTable *asked_count;    /* offset -> times asked (source thread) */
} Env;

static uint8_t pattern(uint64_t offset, unsigned i)
{
    return (offset / PS) * 7 + i % 251 + 1;
}

static void fill(uint8_t *page, uint64_t offset)
{
    for (unsigned i = 0; i < PS; i++) {
        page[i] = pattern(offset, i);
    }
}

static bool src_request(void *opaque, uint64_t offset)
{
    Env *e = opaque;

    if (g_atomic_int_get(&e->refuse)) {
        return false;
    }
    g_async_queue_push(e->asked, GSIZE_TO_POINTER(offset + 1));
    return true;
}

static int src_vcpu(void *opaque, int64_t tid)
{
    Env *e = opaque;

    for (int i = 0; i < 2; i++) {
        if (g_atomic_int_get(&e->vcpu_tids[i]) == tid) {
            return i;
        }
    }
    return -1;
}

static const UffdPageSourceOps src_ops = {
    .request = src_request, .vcpu_of_thread = src_vcpu,
};

/* The "migration source": serves requests after a little while. */
static gpointer source_thread(gpointer opaque)
{
    Env *e = opaque;
    uint8_t page[PS];
    gpointer item;

    while ((item = g_async_queue_pop(e->asked)) != GSIZE_TO_POINTER(1 + 1)) {
        uint64_t offset = GPOINTER_TO_SIZE(item) - 1;
        g_autoptr(GError) err = NULL;
        int n = GPOINTER_TO_INT(g_hash_table_lookup(e->asked_count,
                                                    GSIZE_TO_POINTER(item)));

        g_hash_table_insert(e->asked_count, item, GINT_TO_POINTER(n + 1));
        g_usleep(200);
        fill(page, offset);
        g_assert_true(uffd_pager_place(e->pager, offset,
                                       offset / PS % 8 == 4 ? NULL : page,
                                       &err));
    }
    return NULL;
}

static bool env_init(Env *e)
{
    g_autoptr(GError) err = NULL;

    if (!uffd_pager_supported(&err)) {
        g_test_skip(err->message);
        return false;
    }
    memset(e, 0, sizeof(*e));
    e->mem.fd = memfd_create("test-ram", MFD_CLOEXEC);
    g_assert_cmpint(e->mem.fd, >=, 0);
    g_assert_cmpint(ftruncate(e->mem.fd, NPAGES * PS), ==, 0);
    e->base = mmap(NULL, NPAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED,
                   e->mem.fd, 0);
    g_assert_true(e->base != MAP_FAILED);
    e->mem.ram_size = NPAGES * PS;
    /* Two regions, like RAM split around the PCI hole. */
    e->mem.regions[0] = (GuestRegion){ 0, 40 * PS, e->base, 0 };
    e->mem.regions[1] = (GuestRegion){ 4 * GiB, 24 * PS, e->base + 40 * PS,
                                       40 * PS };
    e->mem.nr_regions = 2;
    e->asked = g_async_queue_new();
    e->asked_count = g_hash_table_new(NULL, NULL);
    e->pager = uffd_pager_new(&e->mem, 2, &src_ops, e, &err);
    g_assert_no_error(err);
    return true;
}

static void env_start(Env *e)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(uffd_pager_start(e->pager, &err));
    g_assert_no_error(err);
    e->source = g_thread_new("source", source_thread, e);
}

static void env_free(Env *e)
{
    if (e->source) {
        g_async_queue_push(e->asked, GSIZE_TO_POINTER(1 + 1));
        g_thread_join(e->source);
    }
    uffd_pager_free(e->pager);
    g_async_queue_unref(e->asked);
    g_hash_table_destroy(e->asked_count);
    munmap(e->base, NPAGES * PS);
    close(e->mem.fd);
}

typedef struct Toucher {
    Env *e;
    int index;
    uint64_t first, count;
} Toucher;

/* A "vCPU": reads every page of its share and checks it. */
static gpointer touch_thread(gpointer opaque)
{
    Toucher *t = opaque;

    g_atomic_int_set(&t->e->vcpu_tids[t->index], gettid());
    for (uint64_t p = t->first; p < t->first + t->count; p++) {
        const uint8_t *page = t->e->base + p * PS;
        bool zero = p % 8 == 4;     /* received zero holes, see below */

        for (unsigned i = 0; i < PS; i += 509) {
            g_assert_cmpuint(page[i], ==, zero ? 0 : pattern(p * PS, i));
        }
    }
    return NULL;
}

static bool kernel_has_minor_shmem(void)
{
    struct uffdio_api api = {
        .api = UFFD_API, .features = UFFD_FEATURE_MINOR_SHMEM,
    };
    int fd = syscall(__NR_userfaultfd, O_CLOEXEC);
    bool ok = fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0;

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* This process's locked memory (VmLck), KiB. */
static uint64_t locked_kib(void)
{
    g_autofree char *status = NULL;
    const char *line;

    g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL,
                                      NULL));
    line = strstr(status, "VmLck:");
    return line ? g_ascii_strtoull(line + 6, NULL, 10) : 0;
}

/* Pages p % 8 == 0..3 arrive "in precopy", 4 is a received zero hole,
 * 5..7 are missing; then pages 8..15, which the "guest" had rewritten
 * through its mapping, are dropped again: what the touchers find there must
 * be what the source places, never the old bytes. */
static void precopy(Env *e, bool keep, bool locked)
{
    g_autoptr(GError) err = NULL;
    uint8_t old = 0;

    for (uint64_t p = 0; p < NPAGES; p++) {
        if (p % 8 < 4) {
            /* Through the mapping, as tern loads precopy for a postcopy. */
            fill(e->base + p * PS, p * PS);
        }
        if (p % 8 < 5) {
            uffd_pager_mark_received(e->pager, p * PS);
        }
    }
    memset(e->base + 8 * PS, 0xee, 8 * PS);
    /* -overcommit mem-lock=on: the kernel unmaps nothing locked. (Only
     * the dropped pages: mlock would fill the missing ones with zeroes,
     * where tern's destination has the source's discards cover them.) */
    if (locked) {
        /* The system call itself: the sanitizers make mlock() a no-op. */
        g_assert_cmpint(syscall(__NR_mlock, e->base + 8 * PS, 8 * PS), ==, 0);
        g_assert_cmpuint(locked_kib(), >=, 8 * PS / 1024);
    }
    uffd_pager_keep_discarded(e->pager, keep);
    g_assert_true(uffd_pager_discard(e->pager, 8 * PS, 8 * PS, &err));
    g_assert_no_error(err);
    /* Kept in the memfd, or a hole. */
    g_assert_cmpint(pread(e->mem.fd, &old, 1, 12 * PS), ==, 1);
    g_assert_cmpuint(old, ==, keep && !locked && kernel_has_minor_shmem() ?
                              0xee : 0);
}

static void demand_paging(bool keep, bool locked)
{
    UffdPagerStats st;
    g_autoptr(GError) err = NULL;
    Toucher t[2];
    GThread *th[2];
    Env e;

    if (!env_init(&e)) {
        return;
    }
    precopy(&e, keep, locked);
    g_assert_false(uffd_pager_received(e.pager, 9 * PS));
    g_assert_true(uffd_pager_received(e.pager, 3 * PS));
    env_start(&e);
    for (int i = 0; i < 2; i++) {
        t[i] = (Toucher){ &e, i, i * 32, 32 };
        th[i] = g_thread_new("vcpu", touch_thread, &t[i]);
    }
    for (int i = 0; i < 2; i++) {
        g_thread_join(th[i]);
    }
    /* The rest of the missing pages come in the background (page 12 was
     * dropped but is a zero hole on the wire too). */
    for (uint64_t p = 0; p < NPAGES; p++) {
        uint8_t page[PS];

        fill(page, p * PS);
        g_assert_true(uffd_pager_place(e.pager, p * PS,
                                       p % 8 == 4 ? NULL : page, &err));
    }
    g_assert_true(uffd_pager_finish(e.pager, &err));
    g_assert_no_error(err);
    /* 3 missing per 8 pages, plus 8 dropped of which 4 were received. */
    uffd_pager_get_stats(e.pager, &st);
    g_assert_cmpuint(st.requests, ==, NPAGES / 8 * 3 + 5);
    g_assert_cmpuint(st.latency.count, ==, st.requests);
    g_assert_cmpuint(st.zero_faults, ==, NPAGES / 8 - 1);
    g_assert_cmpuint(st.missing, ==, 0);
    g_assert_cmpuint(histogram_quantile(&st.latency, 1, 2), >=, 200 * 1000);
    g_assert_cmpuint(st.nr_vcpus, ==, 2);
    g_assert_cmpuint(st.vcpu_blocktime_ms[0] + st.vcpu_blocktime_ms[1], >, 0);
    g_free(st.vcpu_blocktime_ms);
    /* Each page was asked for once, however many faults it took. */
    g_assert_cmpuint(g_hash_table_size(e.asked_count), ==, st.requests);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, e.asked_count);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_assert_cmpint(GPOINTER_TO_INT(v), ==, 1);
    }
    env_free(&e);
}

static void test_demand_paging(void)
{
    demand_paging(true, false);
}

static void test_demand_paging_holes(void)
{
    demand_paging(false, false);
}

static void test_demand_paging_locked(void)
{
    demand_paging(true, true);
}

static void test_resend_after_reconnect(void)
{
    g_autoptr(GError) err = NULL;
    Toucher t;
    GThread *th;
    Env e;

    if (!env_init(&e)) {
        return;
    }
    for (uint64_t p = 0; p < NPAGES; p++) {
        if (p != 5) {
            uint8_t page[PS];

            fill(page, p * PS);
            g_assert_cmpint(pwrite(e.mem.fd, page, PS, p * PS), ==, PS);
            uffd_pager_mark_received(e.pager, p * PS);
        }
    }
    g_assert_false(uffd_pager_finish(e.pager, &err));
    g_assert_nonnull(strstr(err->message, "1 page(s) of RAM never arrived"));
    g_clear_error(&err);
    g_atomic_int_set(&e.refuse, 1);
    env_start(&e);
    /* Page 5 (in the first region, not marked zero) is awaited while the
     * source is away; the toucher sleeps until it is asked again. */
    t = (Toucher){ &e, 0, 5, 1 };
    th = g_thread_new("vcpu", touch_thread, &t);
    g_usleep(50 * 1000);
    g_atomic_int_set(&e.refuse, 0);
    uffd_pager_resend_requests(e.pager);
    g_thread_join(th);
    /* The toucher wakes when the page is in, a moment before the placing
     * thread counts it. */
    for (int i = 0; i < 10000 && !uffd_pager_received(e.pager, 5 * PS); i++) {
        g_usleep(1000);
    }
    g_assert_true(uffd_pager_finish(e.pager, &err));
    env_free(&e);
}

static void test_received_words_and_hostile(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *words = NULL;
    size_t len;
    Env e;

    if (!env_init(&e)) {
        return;
    }
    uffd_pager_mark_received(e.pager, 0);
    uffd_pager_mark_received(e.pager, 9 * PS);
    uffd_pager_mark_received(e.pager, 63 * PS);
    uffd_pager_mark_received(e.pager, 64 * PS);     /* outside: ignored */
    words = uffd_pager_received_words(e.pager, &len);
    g_assert_cmpuint(len, ==, 8);
    g_assert_cmpuint(words[0], ==, 0x01);
    g_assert_cmpuint(words[1], ==, 0x02);
    g_assert_cmpuint(words[7], ==, 0x80);
    g_assert_false(uffd_pager_discard(e.pager, 60 * PS, 8 * PS, &err));
    g_assert_nonnull(strstr(err->message, "inside RAM"));
    g_clear_error(&err);
    g_assert_false(uffd_pager_discard(e.pager, 100, PS, &err));
    g_clear_error(&err);
    g_assert_false(uffd_pager_discard(e.pager, UINT64_MAX - PS + 1, PS,
                                      &err));
    g_clear_error(&err);
    env_start(&e);
    g_assert_false(uffd_pager_place(e.pager, 64 * PS, NULL, &err));
    g_clear_error(&err);
    g_assert_false(uffd_pager_place(e.pager, 3, NULL, &err));
    g_clear_error(&err);
    /* A page already there is left alone. */
    g_assert_true(uffd_pager_place(e.pager, 0, NULL, &err));
    env_free(&e);
}

/* Hosts whose memfd pages may be huge are refused, with the knob to turn. */
static void test_shmem_thp_policy(void)
{
    static const struct {
        const char *policy;
        const char *refused;        /* NULL: accepted */
    } cases[] = {
        { "always within_size advise [never] deny force\n", NULL },
        { "always within_size [advise] never deny force\n", NULL },
        { "always within_size advise never [deny] force\n", NULL },
        { "[always] within_size advise never deny force\n", "'always'" },
        { "always [within_size] advise never deny force\n", "'within_size'" },
        { "always within_size advise never deny [force]\n", "'force'" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        bool ok = uffd_pager_shmem_thp_ok(cases[i].policy, &err);

        g_assert_true(ok == !cases[i].refused);
        if (!ok) {
            g_assert_nonnull(strstr(err->message, cases[i].refused));
            g_assert_nonnull(strstr(err->message, "shmem_enabled"));
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/uffd-pager/shmem-thp-policy", test_shmem_thp_policy);
    g_test_add_func("/uffd-pager/demand-paging", test_demand_paging);
    g_test_add_func("/uffd-pager/demand-paging-holes",
                    test_demand_paging_holes);
    g_test_add_func("/uffd-pager/demand-paging-locked",
                    test_demand_paging_locked);
    g_test_add_func("/uffd-pager/resend-after-reconnect",
                    test_resend_after_reconnect);
    g_test_add_func("/uffd-pager/received-words-and-hostile",
                    test_received_words_and_hostile);
    return g_test_run();
}
