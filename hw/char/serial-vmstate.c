/*
 * The UART's VMState description (hw/char/serial-vmstate.h): QEMU's "serial"
 * layout, built from and applied to the device through its register snapshot
 * (SerialRegs). tern keeps received bytes in one array whether or not the
 * FIFO is on; QEMU keeps a lone byte in RBR when it is off and a ring
 * (Fifo8) when it is on, so the conversion happens here in both directions.
 */
#include <string.h>

#include "hw/char/serial-vmstate.h"
#include "tern/error.h"

#define UART_IER_THRI    0x02
#define UART_IIR_ID      0x06
#define UART_IIR_THRI    0x02
#define UART_FCR_ENABLE  0x01
#define UART_LSR_DR      0x01

static bool serial_pre_save(void *opaque, GError **errp)
{
    SerialVmstate *v = opaque;
    SerialRegs r;

    serial_get_regs(v->dev, &r);
    v->divider = r.divider;
    v->ier = r.ier;
    v->iir = r.iir;
    v->lcr = r.lcr;
    v->mcr = r.mcr;
    v->lsr = r.lsr;
    v->msr = r.msr;
    v->scr = r.scr;
    v->fcr_vmstate = r.fcr;
    v->thr_ipending = r.thr_ipending;
    memset(&v->recv_fifo, 0, sizeof(v->recv_fifo));
    v->rbr = 0;
    if (r.fcr & UART_FCR_ENABLE) {
        memcpy(v->recv_fifo.data, r.rx_fifo, r.rx_count);
        v->recv_fifo.num = r.rx_count;
    } else if (r.rx_count) {
        v->rbr = r.rx_fifo[0];
    }
    return true;
}

static bool serial_pre_load(void *opaque, GError **errp)
{
    SerialVmstate *v = opaque;
    SerialState *dev = v->dev;

    memset(v, 0, sizeof(*v));
    v->dev = dev;
    v->thr_ipending = -1;     /* absent subsection: follows from IIR */
    v->poll_msl = -1;
    return true;
}

static bool fifo_ok(const SerialFifoVm *f, const char *what, GError **errp)
{
    if (f->num > SERIAL_FIFO_SIZE || f->head >= SERIAL_FIFO_SIZE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "serial: %s FIFO with head %" PRIu32 " and %" PRIu32
                    " bytes does not fit %d", what, f->head, f->num,
                    SERIAL_FIFO_SIZE);
        return false;
    }
    return true;
}

/* Received bytes, oldest first, in tern's linear form. */
static void rx_from_wire(const SerialVmstate *v, SerialRegs *r)
{
    if (r->fcr & UART_FCR_ENABLE) {
        for (uint32_t i = 0; i < v->recv_fifo.num; i++) {
            r->rx_fifo[i] = v->recv_fifo.data[(v->recv_fifo.head + i) %
                                              SERIAL_FIFO_SIZE];
        }
        r->rx_count = (uint8_t)v->recv_fifo.num;
    } else if (v->lsr & UART_LSR_DR) {
        r->rx_fifo[0] = v->rbr;
        r->rx_count = 1;
    }
}

static bool serial_post_load(void *opaque, int version_id, GError **errp)
{
    SerialVmstate *v = opaque;
    SerialRegs r = { 0 };

    if (!fifo_ok(&v->recv_fifo, "receive", errp) ||
        !fifo_ok(&v->xmit_fifo, "transmit", errp)) {
        return false;
    }
    if (version_id < 3) {
        v->fcr_vmstate = 0;
    }
    r.divider = v->divider;
    r.ier = v->ier & 0x0f;
    r.lcr = v->lcr;
    r.mcr = v->mcr & 0x1f;
    r.lsr = v->lsr;
    r.msr = v->msr;
    r.scr = v->scr;
    r.fcr = v->fcr_vmstate & 0xc1;
    r.thr_ipending = v->thr_ipending < 0 ?
        (v->iir & UART_IIR_ID) == UART_IIR_THRI : v->thr_ipending != 0;
    rx_from_wire(v, &r);
    /* Data-ready follows the bytes actually held, whatever the stream said. */
    r.lsr = (uint8_t)((r.lsr & ~UART_LSR_DR) | (r.rx_count ? UART_LSR_DR : 0));
    serial_set_regs(v->dev, &r);   /* recomputes IIR and drives the IRQ */
    return true;
}

static bool thr_ipending_needed(void *opaque)
{
    const SerialVmstate *v = opaque;
    bool implied = (v->iir & UART_IIR_ID) == UART_IIR_THRI;

    /* Without THRI enabled, THRE is sampled again when the guest enables it. */
    return (v->ier & UART_IER_THRI) && (v->thr_ipending != 0) != implied;
}

static bool recv_fifo_needed(void *opaque)
{
    return ((const SerialVmstate *)opaque)->recv_fifo.num > 0;
}

static bool never_needed(void *opaque)
{
    return false;
}

static const VMStateDescription vmstate_serial_fifo = {
    .name = "Fifo8",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BUFFER(data, SerialFifoVm),
        VMSTATE_UINT32(head, SerialFifoVm),
        VMSTATE_UINT32(num, SerialFifoVm),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_thr_ipending = {
    .name = "serial/thr_ipending",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = thr_ipending_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(thr_ipending, SerialVmstate),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_tsr = {
    .name = "serial/tsr",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(tsr_retry, SerialVmstate),
        VMSTATE_UINT8(thr, SerialVmstate),
        VMSTATE_UINT8(tsr, SerialVmstate),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_recv_fifo = {
    .name = "serial/recv_fifo",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = recv_fifo_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(recv_fifo, SerialVmstate, 1, vmstate_serial_fifo,
                       SerialFifoVm),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_xmit_fifo = {
    .name = "serial/xmit_fifo",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(xmit_fifo, SerialVmstate, 1, vmstate_serial_fifo,
                       SerialFifoVm),
        VMSTATE_END_OF_LIST()
    },
};

/* QEMU sends a pending timer as its be64 expiry time. */
static const VMStateDescription vmstate_serial_fifo_timeout_timer = {
    .name = "serial/fifo_timeout_timer",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_INT64(fifo_timeout_timer, SerialVmstate),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_timeout_ipending = {
    .name = "serial/timeout_ipending",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(timeout_ipending, SerialVmstate),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_poll = {
    .name = "serial/poll",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(poll_msl, SerialVmstate),
        VMSTATE_INT64(modem_status_poll, SerialVmstate),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_serial = {
    .name = "serial",
    .version_id = 3,
    .minimum_version_id = 2,
    .pre_save = serial_pre_save,
    .pre_load = serial_pre_load,
    .post_load = serial_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16_V(divider, SerialVmstate, 2),
        VMSTATE_UINT8(rbr, SerialVmstate),
        VMSTATE_UINT8(ier, SerialVmstate),
        VMSTATE_UINT8(iir, SerialVmstate),
        VMSTATE_UINT8(lcr, SerialVmstate),
        VMSTATE_UINT8(mcr, SerialVmstate),
        VMSTATE_UINT8(lsr, SerialVmstate),
        VMSTATE_UINT8(msr, SerialVmstate),
        VMSTATE_UINT8(scr, SerialVmstate),
        VMSTATE_UINT8_V(fcr_vmstate, SerialVmstate, 3),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_serial_thr_ipending,
        &vmstate_serial_tsr,
        &vmstate_serial_recv_fifo,
        &vmstate_serial_xmit_fifo,
        &vmstate_serial_fifo_timeout_timer,
        &vmstate_serial_timeout_ipending,
        &vmstate_serial_poll,
        NULL
    },
};
