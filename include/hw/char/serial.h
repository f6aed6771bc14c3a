/*
 * A 16550A UART on the port bus (COM1 on tern's machine), behaving as Linux's
 * 8250 driver probes it: scratch register, IER read-back, loopback via MCR,
 * 16-byte FIFOs reported through IIR, THRE/RDA/RLS/MSI interrupts on one
 * IrqLine. Transmission is instant: a byte written to THR goes to the backend
 * at once.
 */
#ifndef HW_CHAR_SERIAL_H
#define HW_CHAR_SERIAL_H

#include "hw/core/device-list.h"
#include "hw/core/iobus.h"
#include "hw/irq.h"
#include "softmmu/chardev.h"
#include "tern/common.h"

#define SERIAL_FIFO_SIZE 16

typedef struct SerialRegs {
    uint16_t divider;
    uint8_t ier, iir, lcr, mcr, lsr, msr, scr, fcr;
    bool thr_ipending;
    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
    uint8_t rx_count;   /* bytes in rx_fifo, oldest first */
} SerialRegs;

typedef struct SerialState SerialState;

/* chr may be NULL (output discarded, no input). Adds its reset hook and
 * its state (idstr "serial", the next free instance: 0 for COM1; QEMU's
 * layout, docs/devstate.md) to dl. */
SerialState *serial_new(Chardev *chr, IrqLine irq, DeviceList *dl);
void serial_free(SerialState *s);
bool serial_attach(SerialState *s, IoBus *pio, uint16_t base, GError **errp);
/* Power-on register values (machine reset); pending input is dropped. */
void serial_reset(SerialState *s);
/* The registers as a unit (tests, and the migration code at the end of
 * serial.c). */
void serial_get_regs(SerialState *s, SerialRegs *out);
void serial_set_regs(SerialState *s, const SerialRegs *in);
/* Input as the chardev delivers it; returns how many bytes were taken. */
size_t serial_receive(void *opaque, const uint8_t *buf, size_t len);

#endif
