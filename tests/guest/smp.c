/*
 * Workload `smp`: every CPU has checked in (`TG cpu N online`) before
 * "TG ready"; here each AP runs a ring-3 counting loop in short bursts
 * between its own timer ticks, and the BSP waits until every CPU's counter
 * and timer have advanced, prints `TG smp all=N` and exits with rc 0 —
 * unless tg.keep=1, which keeps every CPU looping (for migration tests) and
 * prints `TG smp alive ...` every tg.print ticks.
 */
#include "tg.h"

#define BURST 20000
#define RUNNING_TIMEOUT_SECONDS 2

static volatile uint64_t spins[TG_MAX_CPUS];

static void spin_burst(unsigned cpu)
{
    for (unsigned i = 0; i < BURST; i++) {
        spins[cpu]++;
        tg_pause();
    }
}

static void smp_ap(unsigned cpu)
{
    for (;;) {
        spin_burst(cpu);
        tg_wait_irq();
    }
}

static bool all_running(unsigned n, uint64_t ticks0[])
{
    for (unsigned c = 0; c < n; c++) {
        if (!spins[c] || tg_ticks[c] < ticks0[c] + 2) {
            return false;
        }
    }
    return true;
}

static void wait_all_running(unsigned n)
{
    uint64_t ticks0[TG_MAX_CPUS];
    uint64_t until = tg_now_ticks() + RUNNING_TIMEOUT_SECONDS * tg_hz();

    for (unsigned c = 0; c < n; c++) {
        ticks0[c] = tg_ticks[c];
    }
    while (!all_running(n, ticks0)) {
        if (tg_now_ticks() >= until) {
            for (unsigned c = 0; c < n; c++) {
                tg_printf("TG smp cpu=%u spins=%lu ticks=%lu\n", c, spins[c], tg_ticks[c]);
            }
            tg_fail("smp: not every CPU is running its ring-3 loop and timer");
        }
        spin_burst(0);
        tg_wait_irq();
    }
}

static void smp_bsp(void)
{
    unsigned n = tg_nr_cpus();
    uint64_t every = tg_arg_u64("tg.print", tg_hz());
    uint64_t next;

    wait_all_running(n);
    tg_printf("TG smp all=%u\n", n);
    if (!tg_arg_u64("tg.keep", 0)) {
        tg_exit(0);
    }
    next = tg_now_ticks() + (every ? every : 1);
    for (;;) {
        spin_burst(0);
        tg_wait_irq();
        if (tg_now_ticks() >= next) {
            uint64_t least = spins[0];
            for (unsigned c = 1; c < n; c++) {
                least = spins[c] < least ? spins[c] : least;
            }
            tg_printf("TG smp alive ticks=%lu min_spins=%lu\n", tg_now_ticks(), least);
            next += every ? every : 1;
        }
        tg_check_deadline();
    }
}

TG_WORKLOAD(smp, .name = "smp", .bsp = smp_bsp, .ap = smp_ap);
