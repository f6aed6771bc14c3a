/*
 * The i8042 keyboard controller on ports 0x60 (data) and 0x64 (status/command),
 * with no real keyboard or mouse behind it: enough for Linux's probe (self
 * test, command byte, port tests, AUX loopback, keyboard reset/identify ACKs)
 * to finish quickly, and for the keyboard-controller reset (0xfe, or output
 * port bit 0 cleared) to reach the machine's PowerOps.reset.
 *
 * Machine: I8042 *kbc = i8042_new(pio, &irq1, &irq12, &power_ops, machine,
 *                                  m->devices, &err);
 * (irq lines may be NULL).
 */
#ifndef HW_INPUT_I8042_H
#define HW_INPUT_I8042_H

#include "tern/common.h"
#include "hw/core/device-list.h"
#include "hw/core/iobus.h"
#include "hw/irq.h"
#include "hw/power-ops.h"

#define I8042_STATUS_OBF      0x01
#define I8042_STATUS_IBF      0x02
#define I8042_STATUS_SYS      0x04
#define I8042_STATUS_CMD      0x08
#define I8042_STATUS_AUXDATA  0x20

typedef struct I8042 I8042;

/* Adds its reset hook and its state (idstr "i8042", instance 0) to dl. */
I8042 *i8042_new(IoBus *pio, const IrqLine *kbd_irq, const IrqLine *aux_irq,
                 const PowerOps *power, void *power_opaque, DeviceList *dl,
                 GError **errp);
void i8042_free(I8042 *k);
/* System reset: command byte and output port back to power-on values, no
 * pending command, output buffer emptied, IRQs lowered. */
void i8042_reset(I8042 *k);
/* The IoOps registered at 0x60 (offset 0) and 0x64 (offset 0), for tests. */
extern const IoOps i8042_data_ops;
extern const IoOps i8042_cmd_ops;

#endif
