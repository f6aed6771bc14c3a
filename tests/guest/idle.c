/*
 * Workload `idle`: sleep between timer ticks and print `TG tick N` every
 * tg.print ticks (default: once a second). Stops with rc 0 after tg.ticks=
 * ticks or tg.seconds= seconds when given; otherwise runs forever.
 * tg.tsc=1 first prints the measured TSC rate and how long measuring took:
 * `TG tsc hz=N`, `TG tsc calibrate_ns=N`.
 */
#include "tg.h"

static void idle_bsp(void)
{
    uint64_t every = tg_arg_u64("tg.print", tg_hz());
    uint64_t stop = tg_arg_u64("tg.ticks", 0);
    uint64_t next;

    if (!every) {
        tg_fail("bad argument tg.print=0 (want >= 1)");
    }
    if (tg_arg_u64("tg.tsc", 0)) {
        uint64_t t0 = tg_rdtsc();
        tg_printf("TG tsc hz=%lu\n", tg_tsc_hz());
        tg_printf("TG tsc calibrate_ns=%lu\n", tg_tsc_to_ns(tg_rdtsc() - t0));
    }
    next = (tg_now_ticks() / every + 1) * every;
    for (;;) {
        tg_wait_irq();
        uint64_t t = tg_now_ticks();
        if (t >= next) {
            tg_printf("TG tick %lu\n", t);
            next = (t / every + 1) * every;
        }
        if (stop && t >= stop) {
            tg_exit(0);
        }
        tg_check_deadline();
    }
}

TG_WORKLOAD(idle, .name = "idle", .bsp = idle_bsp);
