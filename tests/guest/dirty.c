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
 * `TG dirty pass=N ...`. tg.corrupt=N reverts one page to its previous
 * generation behind the verifier's back after pass N, which must fail.
 */
#include "tg.h"

#define CHUNK 64
#define QWORDS (TG_PAGE_SIZE / 8)
#define GEN_BASE (4UL << 20)
#define REGION_ALIGN (2UL << 20)
#define SEQ_MULT 0x9e3779b97f4a7c15ULL
#define DEFAULT_RATE_PAGES ((4UL << 20) / TG_PAGE_SIZE)   /* 4 MiB/s */

enum pattern { PAT_SEQ, PAT_FILL, PAT_ZERO };
static const char *const pattern_names[] = { "seq", "fill", "zero" };

struct dirty {
    uint8_t *region;
    uint32_t *gen;
    uint64_t npages;
    enum pattern pattern;
    bool random_walk;
    uint64_t rate;              /* pages per second; 0 = as fast as possible */
    uint64_t max_passes, corrupt_after, report_ticks;
    uint64_t rnd, write_cursor, verify_cursor;
    uint64_t writes, passes, start_tick, next_report;
};

static uint64_t *page_ptr(struct dirty *d, uint64_t p)
{
    return (uint64_t *)(d->region + p * TG_PAGE_SIZE);
}

/* The first qword of every non-zero pattern is (page << 32 | generation),
 * which is what a failure report decodes as "got". */
static uint64_t pattern_base(struct dirty *d, uint64_t p, uint32_t g, uint64_t *step)
{
    *step = d->pattern == PAT_FILL ? 0 : SEQ_MULT;
    if (d->pattern == PAT_ZERO && !(g & 1)) {
        *step = 0;
        return 0;
    }
    return p << 32 | g;
}

static void fill_page(struct dirty *d, uint64_t p, uint32_t g)
{
    uint64_t step, base = pattern_base(d, p, g, &step), k = 0;
    uint64_t *q = page_ptr(d, p);

    for (unsigned i = 0; i < QWORDS; i++, k += step) {
        q[i] = base ^ k;
    }
}

static void write_page(struct dirty *d, uint64_t p)
{
    fill_page(d, p, ++d->gen[p]);
    d->writes++;
}

static void verify_page(struct dirty *d, uint64_t p)
{
    uint32_t g = d->gen[p];
    uint64_t step, base = pattern_base(d, p, g, &step), k = 0;
    const uint64_t *q = page_ptr(d, p);

    for (unsigned i = 0; i < QWORDS; i++, k += step) {
        if (q[i] != (base ^ k)) {
            tg_fail("dirty page=%lu addr=0x%lx off=%u want=%u got=%u raw=0x%lx "
                    "pass=%lu", p, (uint64_t)q, i * 8, g, (uint32_t)q[0], q[0],
                    d->passes);
        }
    }
}

static uint64_t next_write_page(struct dirty *d)
{
    if (d->random_walk) {
        d->rnd ^= d->rnd << 13;
        d->rnd ^= d->rnd >> 7;
        d->rnd ^= d->rnd << 17;
        return d->rnd % d->npages;
    }
    uint64_t p = d->write_cursor;
    d->write_cursor = (p + 1) % d->npages;
    return p;
}

/* Revert page p to its previous generation without telling the verifier:
 * what a page lost by a migration looks like. */
static void corrupt_page(struct dirty *d, uint64_t p)
{
    uint32_t g = d->gen[p];

    tg_printf("TG dirty corrupt page=%lu gen=%u->%u\n", p, g, g - 1);
    fill_page(d, p, g - 1);
}

static void report(struct dirty *d)
{
    tg_printf("TG dirty pass=%lu writes=%lu pages=%lu\n", d->passes, d->writes, d->npages);
}

static void pass_done(struct dirty *d)
{
    d->passes++;
    if (d->max_passes && d->passes >= d->max_passes) {
        report(d);
        tg_exit(0);
    }
    if (d->corrupt_after && d->passes == d->corrupt_after) {
        corrupt_page(d, d->verify_cursor);     /* the very next page checked */
    }
}

static bool verify_chunk(struct dirty *d)
{
    for (unsigned i = 0; i < CHUNK; i++) {
        verify_page(d, d->verify_cursor);
        if (++d->verify_cursor == d->npages) {
            d->verify_cursor = 0;
            pass_done(d);
            return true;
        }
    }
    return false;
}

/* Pages the rate allows now; CHUNK at most per round. */
static uint64_t write_budget(struct dirty *d)
{
    if (!d->rate) {
        return CHUNK;
    }
    uint64_t elapsed = tg_now_ticks() - d->start_tick;
    uint64_t allowed = d->rate * elapsed / tg_hz() + 1;
    uint64_t left = allowed > d->writes ? allowed - d->writes : 0;
    return left < CHUNK ? left : CHUNK;
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

static void configure(struct dirty *d)
{
    uint64_t mem = tg_arg_u64("tg.mem", 32UL << 20);
    const char *walk = tg_arg_str("tg.walk", "seq");

    if (mem < TG_PAGE_SIZE || mem % TG_PAGE_SIZE) {
        tg_fail("bad argument tg.mem=%lu (want a multiple of 4K, at least 4K)", mem);
    }
    d->npages = mem / TG_PAGE_SIZE;
    d->gen = (uint32_t *)GEN_BASE;
    uint64_t base = GEN_BASE + d->npages * sizeof(uint32_t);
    base = (base + REGION_ALIGN - 1) & ~(REGION_ALIGN - 1);
    d->region = (uint8_t *)base;
    uint64_t ram_end = tg_ram_end(GEN_BASE);
    if (base + mem > TG_MAPPED_LIMIT || (ram_end && base + mem > ram_end)) {
        tg_fail("dirty: tg.mem=%lu does not fit: region 0x%lx-0x%lx, RAM ends at 0x%lx",
                mem, base, base + mem, ram_end);
    }
    d->pattern = parse_pattern();
    if (strcmp(walk, "seq") && strcmp(walk, "random")) {
        tg_fail("bad argument tg.walk=%s (want seq or random)", walk);
    }
    d->random_walk = !strcmp(walk, "random");
    d->rate = parse_rate();
    d->max_passes = tg_arg_u64("tg.passes", 0);
    d->corrupt_after = tg_arg_u64("tg.corrupt", 0);
    uint64_t report_ms = tg_arg_u64("tg.report", 250);
    d->report_ticks = report_ms * tg_hz() / 1000;
    d->report_ticks = d->report_ticks ? d->report_ticks : 1;
    d->rnd = 0x2545f4914f6cdd1dULL;
}

static void dirty_bsp(void)
{
    static struct dirty d;

    configure(&d);
    for (uint64_t p = 0; p < d.npages; p++) {
        d.gen[p] = 0;
        write_page(&d, p);
    }
    d.writes = 0;
    d.start_tick = tg_now_ticks();
    d.next_report = d.start_tick + d.report_ticks;
    tg_printf("TG dirty start pages=%lu base=0x%lx gen=0x%lx pattern=%s walk=%s "
              "rate=%lu\n", d.npages, (uint64_t)d.region, (uint64_t)d.gen,
              pattern_names[d.pattern], d.random_walk ? "random" : "seq", d.rate);
    for (;;) {
        bool swept = verify_chunk(&d);
        uint64_t budget = write_budget(&d);
        for (uint64_t i = 0; i < budget; i++) {
            write_page(&d, next_write_page(&d));
        }
        if (tg_now_ticks() >= d.next_report) {
            report(&d);
            d.next_report = tg_now_ticks() + d.report_ticks;
        }
        tg_check_deadline();
        if (swept && d.rate) {
            tg_wait_irq();          /* rate-limited: at most one sweep a tick */
        }
    }
}

TG_WORKLOAD(dirty, .name = "dirty", .bsp = dirty_bsp);
