/*
 * An interrupt line a device raises or lowers. The machine wires each line to a
 * GSI of the in-kernel irqchip (KVM_IRQ_LINE); unit tests wire it to a recorder.
 */
#ifndef HW_IRQ_H
#define HW_IRQ_H

#include "tern/common.h"

typedef struct IrqLine {
    void (*set)(void *opaque, unsigned gsi, bool level);
    void *opaque;
    unsigned gsi;
} IrqLine;

static inline void irq_set(const IrqLine *l, bool level)
{
    if (l && l->set) {
        l->set(l->opaque, l->gsi, level);
    }
}

static inline void irq_pulse(const IrqLine *l)
{
    irq_set(l, true);
    irq_set(l, false);
}

#endif
