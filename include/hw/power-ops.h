/*
 * What the platform devices (i8042, ACPI PM1, the 0xcf9 reset control register)
 * ask of the machine when the guest wants to reset or power off. The devices
 * only report the request; the machine decides what it means (-no-reboot,
 * -no-shutdown, exit status 0). Callbacks run on the vCPU thread that did the
 * port write, so they should only record the request and wake the main loop.
 */
#ifndef HW_POWER_OPS_H
#define HW_POWER_OPS_H

#include "tern/common.h"

typedef struct PowerOps {
    void (*reset)(void *opaque);      /* keyboard-controller / 0xcf9 / ACPI reset */
    void (*poweroff)(void *opaque);   /* ACPI S5 (SLP_TYP=S5 with SLP_EN) */
} PowerOps;

static inline void power_request_reset(const PowerOps *ops, void *opaque)
{
    if (ops && ops->reset) {
        ops->reset(opaque);
    }
}

static inline void power_request_poweroff(const PowerOps *ops, void *opaque)
{
    if (ops && ops->poweroff) {
        ops->poweroff(opaque);
    }
}

#endif
