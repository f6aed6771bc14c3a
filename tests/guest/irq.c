/*
 * Workload `irq`: proves that IOAPIC routing and the IRQ vectors work. It
 * routes COM1's interrupt (ISA IRQ 4, GSI tg.gsi, default 4) to vector
 * TG_VEC_IRQ + 4 on the BSP, enables the UART's transmitter-empty interrupt
 * (which fires at once while the transmitter is idle), and checks that it
 * was counted within a second: `TG irq gsi=4 count=N`.
 */
#include "tg.h"

#define UART_IER (TG_COM1 + 1)
#define UART_IIR (TG_COM1 + 2)
#define UART_MCR (TG_COM1 + 4)
#define IER_THRE 0x02
#define MCR_OUT2 0x08            /* gates the IRQ line on PC UARTs */
#define IRQ_SLOT 4

static void irq_bsp(void)
{
    uint64_t gsi = tg_arg_u64("tg.gsi", 4);
    uint64_t until = tg_now_ticks() + tg_hz();

    if (gsi > 23) {
        tg_fail("bad argument tg.gsi=%lu (want 0..23)", gsi);
    }
    tg_ioapic_route((unsigned)gsi, IRQ_SLOT, tg_lapic_id(), false);
    tg_outb(UART_MCR, MCR_OUT2);
    tg_outb(UART_IER, IER_THRE);
    while (!tg_irq_counts[IRQ_SLOT] && tg_now_ticks() < until) {
        tg_wait_irq();
    }
    tg_outb(UART_IER, 0);
    (void)tg_inb(UART_IIR);       /* acknowledge a pending THRE */
    tg_ioapic_mask((unsigned)gsi);
    if (!tg_irq_counts[IRQ_SLOT]) {
        tg_fail("irq: no interrupt from gsi %lu (COM1 transmitter empty) within 1s", gsi);
    }
    tg_printf("TG irq gsi=%lu vector=0x%x count=%lu\n", gsi, TG_VEC_IRQ + IRQ_SLOT,
              tg_irq_counts[IRQ_SLOT]);
}

TG_WORKLOAD(irq, .name = "irq", .bsp = irq_bsp);
