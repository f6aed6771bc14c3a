/*
 * The 16550A UART's migratable state in QEMU's "serial" wire layout (version
 * 3, oldest loadable 2): divider, rbr, ier, iir, lcr, mcr, lsr, msr, scr,
 * fcr_vmstate, then the subsections QEMU defines (serial/thr_ipending,
 * serial/recv_fifo, and the ones tern only accepts on load: serial/tsr,
 * serial/xmit_fifo, serial/fifo_timeout_timer, serial/timeout_ipending,
 * serial/poll). The register values travel through serial_get_regs /
 * serial_set_regs, so the device file itself knows nothing about migration.
 *
 * Register it as idstr "serial", instance 0 (COM1), with a SerialVmstate
 * whose 'dev' points at the UART.
 */
#ifndef HW_CHAR_SERIAL_VMSTATE_H
#define HW_CHAR_SERIAL_VMSTATE_H

#include "hw/char/serial.h"
#include "migration/vmstate.h"

/* QEMU's Fifo8 as it travels: the whole ring, read position, fill level. */
typedef struct SerialFifoVm {
    uint8_t data[SERIAL_FIFO_SIZE];
    uint32_t head;
    uint32_t num;
} SerialFifoVm;

typedef struct SerialVmstate {
    SerialState *dev;
    /* The wire image, filled by pre_save and applied by post_load. */
    uint16_t divider;
    uint8_t rbr, ier, iir, lcr, mcr, lsr, msr, scr, fcr_vmstate;
    int32_t thr_ipending;
    SerialFifoVm recv_fifo;
    /* Accepted from QEMU streams and dropped: tern transmits at once and has
     * no FIFO timeout or modem polling timers. */
    SerialFifoVm xmit_fifo;
    uint32_t tsr_retry;
    uint8_t thr, tsr;
    int64_t fifo_timeout_timer;
    int32_t timeout_ipending;
    int32_t poll_msl;
    int64_t modem_status_poll;
} SerialVmstate;

extern const VMStateDescription vmstate_serial;

#endif
