/*
 * Workload `dirty`: keep rewriting a memory region and keep verifying it, so
 * that a migration (or snapshot) that loses or reorders a page is caught.
 *
 * Every page has a generation in a separate array (below the region, not in
 * the page). Writing a page bumps its generation and fills the page with a
 * pattern derived from (page index, generation); verifying recomputes the
 * pattern from the array. A page whose content is stale, lost or moved
 * fails with `TG FAIL dirty page=...`. The loop alternates a chunk of
 * verification with a chunk of writes, rate-limited by the BSP's timer
 * ticks; a full verification sweep is one pass, reported as
 * `TG dirty pass=N ...`. With tg.writers=N the region is split into N slices,
 * one per CPU, each written and verified by its own CPU. tg.corrupt=N
 * reverts one page to its previous generation behind the verifier's back
 * after pass N, which must fail. tg.stall=US times every page access with
 * the TSC and keeps those slower than US microseconds (a page a postcopy
 * destination still has to fetch, a VM stopped for the switchover) in a
 * histogram that each report prints.
 */
#include "tg.h"

#define CHUNK 64
#define QWORDS (TG_PAGE_SIZE / 8)
#define GEN_BASE TG_HEAP_END          /* above tg_alloc()'s range */
#define REGION_ALIGN (2UL << 20)
#define SEQ_MULT 0x9e3779b97f4a7c15ULL
#define DEFAULT_RATE_PAGES ((4UL << 20) / TG_PAGE_SIZE)   /* 4 MiB/s */
#define STALL_SUB 2                   /* 4 buckets per power of two */
#define STALL_BUCKETS (64 << STALL_SUB)

enum pattern { PAT_SEQ, PAT_FILL, PAT_ZERO };
static const char *const pattern_names[] = { "seq", "fill", "zero" };

/* What every writer shares; set by the BSP before `ready`. */
struct dirty {
    uint8_t *region;
    uint32_t *gen;              /* per page, outside the region */
    uint64_t npages;
    enum pattern pattern;
    bool random_walk;
    unsigned writers;
    uint64_t rate;              /* pages per second per writer; 0 = flat out */
    uint64_t max_passes, corrupt_after, report_ticks;
    uint64_t start_tick;
    uint64_t stall_cycles;      /* tg.stall in TSC cycles; 0 = off */
    uint64_t cycles_per_us;
    bool ready;
};

/* Accesses slower than tg.stall, in microseconds, log-linear buckets. */
struct stalls {
    uint64_t count, max_us;
    uint64_t bucket[STALL_BUCKETS];
};

/* One CPU's share: pages [first, first + count). */
struct slice {
    uint64_t first, count;
    uint64_t rnd, write_cursor, verify_cursor;
    uint64_t writes, passes;
    struct stalls stalls;       /* this CPU's; the BSP reads them racily */
};

static struct dirty dirty;
static struct slice slices[TG_MAX_CPUS];

static uint64_t *page_ptr(uint64_t p)
{
    return (uint64_t *)(dirty.region + p * TG_PAGE_SIZE);
}

/* The first qword of every non-zero pattern is (page << 32 | generation),
 * which is what a failure report decodes as "got". */
static uint64_t pattern_base(uint64_t p, uint32_t g, uint64_t *step)
{
    *step = dirty.pattern == PAT_FILL ? 0 : SEQ_MULT;
    if (dirty.pattern == PAT_ZERO && !(g & 1)) {
        *step = 0;
        return 0;
    }
    return p << 32 | g;
}

static void fill_page(uint64_t p, uint32_t g)
{
    uint64_t step, base = pattern_base(p, g, &step), k = 0;
    uint64_t *q = page_ptr(p);

    for (unsigned i = 0; i < QWORDS; i++, k += step) {
        q[i] = base ^ k;
    }
}

static void write_page(struct slice *s, uint64_t p)
{
    fill_page(p, ++dirty.gen[p]);
    __atomic_store_n(&s->writes, s->writes + 1, __ATOMIC_RELAXED);
}

static void verify_page(struct slice *s, uint64_t p)
{
    uint32_t g = dirty.gen[p];
    uint64_t step, base = pattern_base(p, g, &step), k = 0;
    const uint64_t *q = page_ptr(p);

    for (unsigned i = 0; i < QWORDS; i++, k += step) {
        if (q[i] != (base ^ k)) {
            tg_fail("dirty page=%lu addr=0x%lx off=%u want=%u got=%u raw=0x%lx "
                    "pass=%lu", p, (uint64_t)q, i * 8, g, (uint32_t)q[0], q[0],
                    s->passes);
        }
    }
}

static uint64_t next_write_page(struct slice *s)
{
    if (dirty.random_walk) {
        s->rnd ^= s->rnd << 13;
        s->rnd ^= s->rnd >> 7;
        s->rnd ^= s->rnd << 17;
        return s->first + s->rnd % s->count;
    }
    uint64_t p = s->write_cursor;
    s->write_cursor = (p + 1) % s->count;
    return s->first + p;
}

/* Revert page p to its previous generation without telling the verifier:
 * what a page lost by a migration looks like. */
static void corrupt_page(uint64_t p)
{
    uint32_t g = dirty.gen[p];

    tg_printf("TG dirty corrupt page=%lu gen=%u->%u\n", p, g, g - 1);
    fill_page(p, g - 1);
}

/* Passes completed by every writer, and writes by all of them. */
static uint64_t total_passes(uint64_t *writes)
{
    uint64_t least = UINT64_MAX;

    *writes = 0;
    for (unsigned c = 0; c < dirty.writers; c++) {
        uint64_t n = __atomic_load_n(&slices[c].passes, __ATOMIC_RELAXED);
        least = n < least ? n : least;
        *writes += __atomic_load_n(&slices[c].writes, __ATOMIC_RELAXED);
    }
    return least;
}

static void pass_done(struct slice *s)
{
    __atomic_store_n(&s->passes, s->passes + 1, __ATOMIC_RELAXED);
    if (s == &slices[0] && dirty.corrupt_after && s->passes == dirty.corrupt_after) {
        corrupt_page(s->first + s->verify_cursor);   /* the very next page checked */
    }
}

/* ---- stalls ---- */

static unsigned stall_bucket(uint64_t us)
{
    if (us < (1u << STALL_SUB)) {
        return us;
    }
    unsigned e = 63 - __builtin_clzll(us);
    return ((e - STALL_SUB + 1) << STALL_SUB) |
           ((us >> (e - STALL_SUB)) & ((1u << STALL_SUB) - 1));
}

/* The largest value in bucket b (what a quantile reports). */
static uint64_t stall_bucket_top(unsigned b)
{
    if (b < (1u << STALL_SUB)) {
        return b;
    }
    unsigned e = (b >> STALL_SUB) + STALL_SUB - 1;
    uint64_t sub = b & ((1u << STALL_SUB) - 1);
    return (((1ULL << STALL_SUB) | sub) << (e - STALL_SUB)) +
           (1ULL << (e - STALL_SUB)) - 1;
}

static void note_access(struct slice *s, uint64_t t0)
{
    uint64_t t1 = tg_rdtsc();

    /* A TSC that went backwards (another host) is not a stall. */
    if (t1 <= t0 || t1 - t0 <= dirty.stall_cycles) {
        return;
    }
    uint64_t us = (t1 - t0) / dirty.cycles_per_us;
    struct stalls *st = &s->stalls;
    __atomic_store_n(&st->bucket[stall_bucket(us)],
                     st->bucket[stall_bucket(us)] + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&st->count, st->count + 1, __ATOMIC_RELAXED);
    if (us > st->max_us) {
        __atomic_store_n(&st->max_us, us, __ATOMIC_RELAXED);
    }
}

static void merge_stalls(struct stalls *all)
{
    memset(all, 0, sizeof(*all));
    for (unsigned c = 0; c < dirty.writers; c++) {
        struct stalls *st = &slices[c].stalls;
        all->count += __atomic_load_n(&st->count, __ATOMIC_RELAXED);
        uint64_t m = __atomic_load_n(&st->max_us, __ATOMIC_RELAXED);
        all->max_us = m > all->max_us ? m : all->max_us;
        for (unsigned b = 0; b < STALL_BUCKETS; b++) {
            all->bucket[b] += __atomic_load_n(&st->bucket[b], __ATOMIC_RELAXED);
        }
    }
}

static uint64_t stall_quantile(const struct stalls *st, uint64_t pct)
{
    uint64_t want = (st->count * pct + 99) / 100, seen = 0;

    for (unsigned b = 0; b < STALL_BUCKETS && want; b++) {
        seen += st->bucket[b];
        if (seen >= want) {
            uint64_t top = stall_bucket_top(b);
            return top < st->max_us ? top : st->max_us;
        }
    }
    return st->max_us;
}

/* `TG dirty stall count=N p50=US p99=US max=US`, then the non-zero
 * buckets as `TG dirty stallhist B:C,...` lines (cumulative: a benchmark
 * takes the difference of two reports to see one period alone). */
static void report_stalls(void)
{
    struct stalls all;
    char hist[160];
    unsigned len = 0;

    merge_stalls(&all);
    tg_printf("TG dirty stall count=%lu p50=%lu p99=%lu max=%lu\n", all.count,
              stall_quantile(&all, 50), stall_quantile(&all, 99), all.max_us);
    for (unsigned b = 0; b < STALL_BUCKETS; b++) {
        if (all.bucket[b]) {
            len += tg_snprintf(hist + len, sizeof(hist) - len, "%s%u:%lu",
                               len ? "," : "", b, all.bucket[b]);
        }
        if (len && (len > sizeof(hist) - 32 || b == STALL_BUCKETS - 1)) {
            tg_printf("TG dirty stallhist %s\n", hist);
            len = 0;
        }
    }
}

static void report(void)
{
    uint64_t writes, passes = total_passes(&writes);

    tg_printf("TG dirty pass=%lu writes=%lu pages=%lu\n", passes, writes, dirty.npages);
    if (dirty.stall_cycles) {
        report_stalls();
    }
}

static bool verify_chunk(struct slice *s)
{
    for (unsigned i = 0; i < CHUNK; i++) {
        uint64_t t0 = tg_rdtsc();

        verify_page(s, s->first + s->verify_cursor);
        if (dirty.stall_cycles) {
            note_access(s, t0);
        }
        if (++s->verify_cursor == s->count) {
            s->verify_cursor = 0;
            pass_done(s);
            return true;
        }
    }
    return false;
}

/* Pages the rate allows now; CHUNK at most per round. */
static uint64_t write_budget(struct slice *s)
{
    if (!dirty.rate) {
        return CHUNK;
    }
    uint64_t elapsed = tg_now_ticks() - dirty.start_tick;
    uint64_t allowed = dirty.rate * elapsed / tg_hz() + 1;
    uint64_t left = allowed > s->writes ? allowed - s->writes : 0;
    return left < CHUNK ? left : CHUNK;
}

/* One round: verify a chunk, write what the rate allows. */
static void round_once(struct slice *s)
{
    bool swept = verify_chunk(s);
    uint64_t budget = write_budget(s);

    for (uint64_t i = 0; i < budget; i++) {
        uint64_t t0 = tg_rdtsc();

        write_page(s, next_write_page(s));
        if (dirty.stall_cycles) {
            note_access(s, t0);
        }
    }
    if (swept && dirty.rate) {
        tg_wait_irq();              /* rate-limited: at most one sweep a tick */
    }
}

static enum pattern parse_pattern(void)
{
    const char *s = tg_arg_str("tg.pattern", "seq");

    for (unsigned i = 0; i < sizeof(pattern_names) / sizeof(pattern_names[0]); i++) {
        if (!strcmp(s, pattern_names[i])) {
            return (enum pattern)i;
        }
    }
    tg_fail("bad argument tg.pattern=%s (want seq, fill or zero)", s);
}

/* tg.rate: a plain number is pages per second, a K/M/G suffix bytes per
 * second. */
static uint64_t parse_rate(void)
{
    const char *s = tg_arg_str("tg.rate", NULL);

    if (!s || !*s) {
        return DEFAULT_RATE_PAGES;
    }
    uint64_t v = tg_arg_u64("tg.rate", 0);
    char last = s[strlen(s) - 1];
    bool bytes = last == 'k' || last == 'K' || last == 'm' || last == 'M' ||
                 last == 'g' || last == 'G';
    return bytes ? (v + TG_PAGE_SIZE - 1) / TG_PAGE_SIZE : v;
}

static void configure_region(void)
{
    uint64_t mem = tg_arg_u64("tg.mem", 32UL << 20);

    if (mem < TG_PAGE_SIZE || mem % TG_PAGE_SIZE) {
        tg_fail("bad argument tg.mem=%lu (want a multiple of 4K, at least 4K)", mem);
    }
    dirty.npages = mem / TG_PAGE_SIZE;
    dirty.gen = (uint32_t *)GEN_BASE;
    uint64_t base = GEN_BASE + dirty.npages * sizeof(uint32_t);
    base = (base + REGION_ALIGN - 1) & ~(REGION_ALIGN - 1);
    dirty.region = (uint8_t *)base;
    uint64_t ram_end = tg_ram_end(GEN_BASE);
    if (base + mem > TG_MAPPED_LIMIT || (ram_end && base + mem > ram_end)) {
        tg_fail("dirty: tg.mem=%lu does not fit: region 0x%lx-0x%lx, RAM ends at 0x%lx",
                mem, base, base + mem, ram_end);
    }
}

static void configure(void)
{
    const char *walk = tg_arg_str("tg.walk", "seq");
    uint64_t writers = tg_arg_u64("tg.writers", 1);

    configure_region();
    dirty.pattern = parse_pattern();
    if (strcmp(walk, "seq") && strcmp(walk, "random")) {
        tg_fail("bad argument tg.walk=%s (want seq or random)", walk);
    }
    dirty.random_walk = !strcmp(walk, "random");
    if (writers < 1 || writers > tg_nr_cpus() || writers > dirty.npages) {
        tg_fail("bad argument tg.writers=%lu (want 1..%u CPUs, at most one per page)",
                writers, tg_nr_cpus());
    }
    dirty.writers = (unsigned)writers;
    dirty.rate = (parse_rate() + writers - 1) / writers;
    dirty.max_passes = tg_arg_u64("tg.passes", 0);
    dirty.corrupt_after = tg_arg_u64("tg.corrupt", 0);
    uint64_t stall_us = tg_arg_u64("tg.stall", 0);
    if (stall_us) {
        dirty.cycles_per_us = tg_tsc_hz() / 1000000;
        dirty.cycles_per_us = dirty.cycles_per_us ? dirty.cycles_per_us : 1;
        dirty.stall_cycles = stall_us * dirty.cycles_per_us;
    }
    uint64_t report_ms = tg_arg_u64("tg.report", 250);
    dirty.report_ticks = report_ms * tg_hz() / 1000;
    dirty.report_ticks = dirty.report_ticks ? dirty.report_ticks : 1;
    for (unsigned c = 0; c < dirty.writers; c++) {
        struct slice *s = &slices[c];
        s->first = dirty.npages * c / dirty.writers;
        s->count = dirty.npages * (c + 1) / dirty.writers - s->first;
        s->rnd = 0x2545f4914f6cdd1dULL + c;
    }
}

/* Every page gets generation 1 before anyone verifies. */
static void fill_all(void)
{
    for (uint64_t p = 0; p < dirty.npages; p++) {
        dirty.gen[p] = 0;
        fill_page(p, ++dirty.gen[p]);
    }
}

static void dirty_bsp(void)
{
    uint64_t next_report, writes;

    configure();
    fill_all();
    dirty.start_tick = tg_now_ticks();
    next_report = dirty.start_tick + dirty.report_ticks;
    tg_printf("TG dirty start pages=%lu base=0x%lx gen=0x%lx pattern=%s walk=%s "
              "rate=%lu writers=%u\n", dirty.npages, (uint64_t)dirty.region,
              (uint64_t)dirty.gen, pattern_names[dirty.pattern],
              dirty.random_walk ? "random" : "seq", dirty.rate, dirty.writers);
    __atomic_store_n(&dirty.ready, true, __ATOMIC_RELEASE);
    for (;;) {
        round_once(&slices[0]);
        if (dirty.max_passes && total_passes(&writes) >= dirty.max_passes) {
            report();
            tg_exit(0);
        }
        if (tg_now_ticks() >= next_report) {
            report();
            next_report = tg_now_ticks() + dirty.report_ticks;
        }
        tg_check_deadline();
    }
}

static void dirty_ap(unsigned cpu)
{
    while (!__atomic_load_n(&dirty.ready, __ATOMIC_ACQUIRE)) {
        tg_wait_irq();
    }
    if (cpu >= dirty.writers) {
        return;
    }
    for (;;) {
        round_once(&slices[cpu]);
    }
}

TG_WORKLOAD(dirty, .name = "dirty", .bsp = dirty_bsp, .ap = dirty_ap);
