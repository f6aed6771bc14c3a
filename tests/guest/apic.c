/*
 * Interrupt controllers, programmed from ring 3 through the identity map
 * (the LAPIC and IOAPIC pages are user-accessible): each CPU's LAPIC with a
 * periodic timer on its own vector, IOAPIC pins routed or masked on request
 * (the kit boots without firmware, so every pin is still masked from reset:
 * masking all 24 up front would cost ~50 exits), and AP start-up by INIT +
 * SIPI + SIPI broadcast to all other CPUs. Each register access is an exit,
 * so reset state is relied on wherever it is what the kit wants. The timer
 * assumes KVM's LAPIC bus clock of 1 GHz (one tick per ns before the divider).
 */
#include "internal.h"

#define LAPIC_ID       0x20
#define LAPIC_SVR      0xf0
#define LAPIC_ICR_LO   0x300
#define LAPIC_ICR_HI   0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0

#define LVT_MASKED     (1u << 16)
#define LVT_PERIODIC   (1u << 17)
#define ICR_PENDING    (1u << 12)
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_INIT       0x4500u      /* INIT, level assert */
#define ICR_SIPI       0x4600u

#define LAPIC_BUS_HZ   1000000000u
#define TIMER_DIVIDE   16u          /* divide configuration 0x3 */

#define IOAPIC_SEL     0x00
#define IOAPIC_WIN     0x10
#define IOAPIC_REDIR   0x10

static void lapic_write(unsigned reg, uint32_t v)
{
    tg_mmio_write32(TG_LAPIC_BASE + reg, v);
}

static uint32_t lapic_read(unsigned reg)
{
    return tg_mmio_read32(TG_LAPIC_BASE + reg);
}

unsigned tg_lapic_id(void)
{
    return lapic_read(LAPIC_ID) >> 24;
}

/* TPR 0 and every LVT masked are the LAPIC's reset state (an AP has just
 * had INIT; the BSP's LINT0 and the 8259 were masked in ring 0, against
 * firmware that routes the PIT there): only the timer is programmed. */
void tg_lapic_init(unsigned cpu, unsigned hz)
{
    lapic_write(LAPIC_SVR, 0x100 | TG_VEC_SPURIOUS);     /* software enable */
    lapic_write(LAPIC_TIMER_DIV, 0x3);
    lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | (TG_VEC_TIMER + cpu));
    lapic_write(LAPIC_TIMER_INIT, LAPIC_BUS_HZ / TIMER_DIVIDE / hz);
}

static void ioapic_write(unsigned reg, uint32_t v)
{
    tg_mmio_write32(TG_IOAPIC_BASE + IOAPIC_SEL, reg);
    tg_mmio_write32(TG_IOAPIC_BASE + IOAPIC_WIN, v);
}

void tg_ioapic_mask(unsigned gsi)
{
    ioapic_write(IOAPIC_REDIR + 2 * gsi, LVT_MASKED);
}

void tg_ioapic_route(unsigned gsi, unsigned n, unsigned apic_id, bool level)
{
    uint32_t lo = TG_VEC_IRQ + (n % TG_NR_IRQ_VECS);

    if (level) {
        lo |= 1u << 15 | 1u << 13;                  /* level, active low */
    }
    ioapic_write(IOAPIC_REDIR + 2 * gsi + 1, apic_id << 24);
    ioapic_write(IOAPIC_REDIR + 2 * gsi, lo);
}

static void send_ipi(uint32_t icr_lo)
{
    lapic_write(LAPIC_ICR_HI, 0);
    lapic_write(LAPIC_ICR_LO, icr_lo);
    for (unsigned i = 0; i < 1000000 && (lapic_read(LAPIC_ICR_LO) & ICR_PENDING); i++) {
        tg_pause();
    }
}

void tg_start_aps(void)
{
    size_t len = (size_t)(tg_trampoline_end - tg_trampoline_start);

    memcpy((void *)TG_TRAMPOLINE_ADDR, tg_trampoline_start, len);
    tg_barrier();
    send_ipi(ICR_ALL_BUT_SELF | ICR_INIT);
    send_ipi(ICR_ALL_BUT_SELF | ICR_SIPI | (TG_TRAMPOLINE_ADDR >> 12));
    send_ipi(ICR_ALL_BUT_SELF | ICR_SIPI | (TG_TRAMPOLINE_ADDR >> 12));
}
