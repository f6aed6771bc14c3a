/*
 * Time for workloads: sleeping on a CPU's own timer ticks, and the TSC rate,
 * measured once against the BSP's ticks (KVM's LAPIC timer is exact, the
 * TSC is what a benchmark loop can read without an exit).
 */
#include "tg.h"

#define CALIBRATION_TICKS 10

static uint64_t tsc_hz;

void tg_sleep_until(unsigned cpu, uint64_t until)
{
    while (tg_ticks[cpu] < until) {
        tg_wait_irq();
    }
}

/* Measured between two tick edges, so the first call takes about
 * CALIBRATION_TICKS ticks (100 ms at 100 Hz); later calls are free. */
uint64_t tg_tsc_hz(void)
{
    uint64_t cached = __atomic_load_n(&tsc_hz, __ATOMIC_RELAXED);

    if (cached) {
        return cached;
    }
    tg_sleep_until(0, tg_now_ticks() + 1);
    uint64_t t0 = tg_rdtsc(), tick0 = tg_now_ticks();
    tg_sleep_until(0, tick0 + CALIBRATION_TICKS);
    uint64_t t1 = tg_rdtsc(), ticks = tg_now_ticks() - tick0;
    cached = (t1 - t0) * tg_hz() / ticks;
    __atomic_store_n(&tsc_hz, cached, __ATOMIC_RELAXED);
    return cached;
}

uint64_t tg_tsc_to_ns(uint64_t cycles)
{
    uint64_t hz = tg_tsc_hz();

    return cycles / hz * 1000000000ULL + cycles % hz * 1000000000ULL / hz;
}
