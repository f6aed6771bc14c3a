/*
 * The 16550A UART (hw/char/serial.h). Register map at base+0..7: RBR/THR
 * (DLL with LCR.DLAB), IER (DLM), IIR/FCR, LCR, MCR, LSR, MSR, SCR.
 *
 * Its migratable state travels in QEMU's "serial" layout (version 3, oldest
 * loadable 2): divider, rbr, ier, iir, lcr, mcr, lsr, msr, scr,
 * fcr_vmstate, then the subsections QEMU defines (serial/thr_ipending,
 * serial/recv_fifo, and the ones tern only accepts on load: serial/tsr,
 * serial/xmit_fifo, serial/fifo_timeout_timer, serial/timeout_ipending,
 * serial/poll). tern keeps received bytes in one array whether or not the
 * FIFO is on; QEMU keeps a lone byte in RBR when it is off and a ring
 * (Fifo8) when it is on, so the conversion happens at the end of this file
 * in both directions.
 */
#include <string.h>

#include "hw/char/serial.h"
#include "migration/savevm.h"
#include "tern/error.h"

enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_RLSI  0x04
#define IER_MSI   0x08
#define IIR_NONE  0x01
#define IIR_MSI   0x00
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_RLSI  0x06
#define IIR_FIFO  0xc0
#define IIR_ID    0x06
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX    0x02
#define LCR_DLAB  0x80
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_ERRS  0x1e   /* OE PE FE BI */
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_DELTAS 0x0f
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

/* QEMU's Fifo8 as it travels: the whole ring, read position, fill level. */
typedef struct SerialFifoVm {
    uint8_t data[SERIAL_FIFO_SIZE];
    uint32_t head;
    uint32_t num;
} SerialFifoVm;

struct SerialState {
    GMutex lock;
    SerialRegs r;
    Chardev *chr;
    IrqLine irq;
    int irq_level;   /* last level driven, -1 before the first */
    /* The wire image, filled from r by pre_save and applied to r by
     * post_load; named as QEMU names the fields. */
    struct {
        uint16_t divider;
        uint8_t rbr, ier, iir, lcr, mcr, lsr, msr, scr, fcr_vmstate;
        int32_t thr_ipending;
        SerialFifoVm recv_fifo;
        /* Accepted from QEMU streams and dropped: tern transmits at once and
         * has no FIFO timeout or modem polling timers. */
        SerialFifoVm xmit_fifo;
        uint32_t tsr_retry;
        uint8_t thr, tsr;
        int64_t fifo_timeout_timer;
        int32_t timeout_ipending;
        int32_t poll_msl;
        int64_t modem_status_poll;
    };
};

static const VMStateDescription vmstate_serial;

static void update_irq(SerialState *s)
{
    SerialRegs *r = &s->r;
    uint8_t iir = IIR_NONE;

    if ((r->ier & IER_RLSI) && (r->lsr & LSR_ERRS)) {
        iir = IIR_RLSI;
    } else if ((r->ier & IER_RDI) && (r->lsr & LSR_DR)) {
        iir = IIR_RDI;
    } else if ((r->ier & IER_THRI) && r->thr_ipending) {
        iir = IIR_THRI;
    } else if ((r->ier & IER_MSI) && (r->msr & MSR_DELTAS)) {
        iir = IIR_MSI;
    }
    r->iir = iir | ((r->fcr & FCR_FIFO_ENABLE) ? IIR_FIFO : 0);
    /* Only drive changes: each KVM_IRQ_LINE is a system call per byte sent. */
    if (s->irq_level != !(iir & IIR_NONE)) {
        s->irq_level = !(iir & IIR_NONE);
        irq_set(&s->irq, s->irq_level);
    }
}

static unsigned fifo_depth(const SerialState *s)
{
    return (s->r.fcr & FCR_FIFO_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

/* Called with the lock held. */
static size_t push_rx(SerialState *s, const uint8_t *buf, size_t len)
{
    size_t n = 0;

    while (n < len && s->r.rx_count < fifo_depth(s)) {
        s->r.rx_fifo[s->r.rx_count++] = buf[n++];
    }
    if (s->r.rx_count) {
        s->r.lsr |= LSR_DR;
    }
    update_irq(s);
    return n;
}

static uint8_t pop_rx(SerialState *s)
{
    uint8_t v = 0;

    if (s->r.rx_count) {
        v = s->r.rx_fifo[0];
        memmove(s->r.rx_fifo, s->r.rx_fifo + 1, --s->r.rx_count);
    }
    if (!s->r.rx_count) {
        s->r.lsr &= ~LSR_DR;
    }
    update_irq(s);
    return v;
}

static uint8_t loopback_msr(uint8_t mcr)
{
    return ((mcr & MCR_RTS) ? MSR_CTS : 0) | ((mcr & MCR_DTR) ? MSR_DSR : 0) |
           ((mcr & MCR_OUT1) ? MSR_RI : 0) | ((mcr & MCR_OUT2) ? MSR_DCD : 0);
}

static uint64_t serial_read(void *opaque, uint64_t off, unsigned size)
{
    SerialState *s = opaque;
    SerialRegs *r = &s->r;
    bool dlab = r->lcr & LCR_DLAB;
    bool freed = false;
    uint8_t v = 0xff;

    g_mutex_lock(&s->lock);
    switch (off) {
    case RBR:
        if (dlab) {
            v = r->divider & 0xff;
        } else {
            v = pop_rx(s);
            freed = true;
        }
        break;
    case IER:
        v = dlab ? r->divider >> 8 : r->ier;
        break;
    case IIR:
        v = r->iir;
        if ((v & 0x0f) == IIR_THRI) {   /* reading IIR acknowledges THRE */
            r->thr_ipending = false;
            update_irq(s);
        }
        break;
    case LCR:
        v = r->lcr;
        break;
    case MCR:
        v = r->mcr;
        break;
    case LSR:
        v = r->lsr;
        r->lsr &= ~LSR_ERRS;
        update_irq(s);
        break;
    case MSR:
        v = (r->mcr & MCR_LOOP) ? loopback_msr(r->mcr) : r->msr;
        r->msr &= ~MSR_DELTAS;
        update_irq(s);
        break;
    case SCR:
        v = r->scr;
        break;
    }
    g_mutex_unlock(&s->lock);
    if (freed) {
        chardev_accept_input(s->chr);
    }
    return v;
}

static void transmit(SerialState *s, uint8_t byte)
{
    if (s->r.mcr & MCR_LOOP) {
        push_rx(s, &byte, 1);
    } else {
        chardev_write(s->chr, &byte, 1);
    }
    s->r.thr_ipending = true;
    s->r.lsr |= LSR_THRE | LSR_TEMT;
}

static void serial_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    SerialState *s = opaque;
    SerialRegs *r = &s->r;
    bool dlab = r->lcr & LCR_DLAB;
    uint8_t v = val;

    g_mutex_lock(&s->lock);
    switch (off) {
    case RBR:
        if (dlab) {
            r->divider = (r->divider & 0xff00) | v;
        } else {
            transmit(s, v);
        }
        break;
    case IER:
        if (dlab) {
            r->divider = (r->divider & 0x00ff) | (v << 8);
            break;
        }
        /* Enabling THRI with THR empty raises THRE at once (8250 probes it). */
        if (!(r->ier & IER_THRI) && (v & IER_THRI) && (r->lsr & LSR_THRE)) {
            r->thr_ipending = true;
        }
        r->ier = v & 0x0f;
        break;
    case IIR:   /* FCR */
        if ((v ^ r->fcr) & FCR_FIFO_ENABLE || (v & FCR_CLEAR_RX)) {
            r->rx_count = 0;
            r->lsr &= ~LSR_DR;
        }
        r->fcr = v & 0xc1;   /* enable + trigger level; clear bits self-reset */
        break;
    case LCR:
        r->lcr = v;
        break;
    case MCR:
        r->mcr = v & 0x1f;
        break;
    case LSR:
    case MSR:
        break;   /* read-only on a 16550A */
    case SCR:
        r->scr = v;
        break;
    }
    update_irq(s);
    g_mutex_unlock(&s->lock);
}

static const IoOps serial_ops = {
    .read = serial_read,
    .write = serial_write,
};

size_t serial_receive(void *opaque, const uint8_t *buf, size_t len)
{
    SerialState *s = opaque;
    size_t n;

    g_mutex_lock(&s->lock);
    n = (s->r.mcr & MCR_LOOP) ? 0 : push_rx(s, buf, len);
    g_mutex_unlock(&s->lock);
    return n;
}

static void reset_hook(void *opaque)
{
    serial_reset(opaque);
}

SerialState *serial_new(Chardev *chr, IrqLine irq, DeviceList *dl)
{
    SerialState *s = g_new0(SerialState, 1);

    g_mutex_init(&s->lock);
    s->chr = chr;
    s->irq = irq;
    serial_reset(s);
    if (chr) {
        chardev_set_frontend(chr, serial_receive, s);
    }
    device_list_add_reset(dl, reset_hook, s);
    device_list_add_vmstate(dl, "serial", VMSTATE_INSTANCE_ID_ANY,
                            &vmstate_serial, s);
    return s;
}

void serial_reset(SerialState *s)
{
    g_mutex_lock(&s->lock);
    memset(&s->r, 0, sizeof(s->r));
    s->r.divider = 12;   /* 9600 baud, as after a PC BIOS */
    s->r.lsr = LSR_THRE | LSR_TEMT;
    s->r.msr = MSR_DCD | MSR_DSR | MSR_CTS;
    s->irq_level = -1;
    update_irq(s);
    g_mutex_unlock(&s->lock);
    chardev_accept_input(s->chr);
}

void serial_free(SerialState *s)
{
    if (!s) {
        return;
    }
    if (s->chr) {
        chardev_set_frontend(s->chr, NULL, NULL);
    }
    g_mutex_clear(&s->lock);
    g_free(s);
}

bool serial_attach(SerialState *s, IoBus *pio, uint16_t base, GError **errp)
{
    return iobus_register(pio, base, 8, &serial_ops, s, errp);
}

void serial_get_regs(SerialState *s, SerialRegs *out)
{
    g_mutex_lock(&s->lock);
    *out = s->r;
    g_mutex_unlock(&s->lock);
}

void serial_set_regs(SerialState *s, const SerialRegs *in)
{
    g_mutex_lock(&s->lock);
    s->r = *in;
    s->r.rx_count = MIN(s->r.rx_count, SERIAL_FIFO_SIZE);
    s->irq_level = -1;
    update_irq(s);
    g_mutex_unlock(&s->lock);
}

/* ---- migration ---- */

static bool serial_pre_save(void *opaque, GError **errp)
{
    SerialState *v = opaque;
    SerialRegs r;

    serial_get_regs(v, &r);
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
    if (r.fcr & FCR_FIFO_ENABLE) {
        memcpy(v->recv_fifo.data, r.rx_fifo, r.rx_count);
        v->recv_fifo.num = r.rx_count;
    } else if (r.rx_count) {
        v->rbr = r.rx_fifo[0];
    }
    return true;
}

static bool serial_pre_load(void *opaque, GError **errp)
{
    SerialState *v = opaque;

    /* What a stream may leave out: the subsections. */
    v->thr_ipending = -1;     /* absent: follows from IIR */
    memset(&v->recv_fifo, 0, sizeof(v->recv_fifo));
    memset(&v->xmit_fifo, 0, sizeof(v->xmit_fifo));
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
static void rx_from_wire(const SerialState *v, SerialRegs *r)
{
    if (r->fcr & FCR_FIFO_ENABLE) {
        for (uint32_t i = 0; i < v->recv_fifo.num; i++) {
            r->rx_fifo[i] = v->recv_fifo.data[(v->recv_fifo.head + i) %
                                              SERIAL_FIFO_SIZE];
        }
        r->rx_count = (uint8_t)v->recv_fifo.num;
    } else if (v->lsr & LSR_DR) {
        r->rx_fifo[0] = v->rbr;
        r->rx_count = 1;
    }
}

static bool serial_post_load(void *opaque, int version_id, GError **errp)
{
    SerialState *v = opaque;
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
        (v->iir & IIR_ID) == IIR_THRI : v->thr_ipending != 0;
    rx_from_wire(v, &r);
    /* Data-ready follows the bytes actually held, whatever the stream said. */
    r.lsr = (uint8_t)((r.lsr & ~LSR_DR) | (r.rx_count ? LSR_DR : 0));
    serial_set_regs(v, &r);   /* recomputes IIR and drives the IRQ */
    return true;
}

static bool thr_ipending_needed(void *opaque)
{
    const SerialState *v = opaque;
    bool implied = (v->iir & IIR_ID) == IIR_THRI;

    /* Without THRI enabled, THRE is sampled again when the guest enables it. */
    return (v->ier & IER_THRI) && (v->thr_ipending != 0) != implied;
}

static bool recv_fifo_needed(void *opaque)
{
    return ((const SerialState *)opaque)->recv_fifo.num > 0;
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
        VMSTATE_INT32(thr_ipending, SerialState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_tsr = {
    .name = "serial/tsr",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(tsr_retry, SerialState),
        VMSTATE_UINT8(thr, SerialState),
        VMSTATE_UINT8(tsr, SerialState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_recv_fifo = {
    .name = "serial/recv_fifo",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = recv_fifo_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(recv_fifo, SerialState, 1, vmstate_serial_fifo,
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
        VMSTATE_STRUCT(xmit_fifo, SerialState, 1, vmstate_serial_fifo,
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
        VMSTATE_INT64(fifo_timeout_timer, SerialState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_timeout_ipending = {
    .name = "serial/timeout_ipending",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(timeout_ipending, SerialState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial_poll = {
    .name = "serial/poll",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = never_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(poll_msl, SerialState),
        VMSTATE_INT64(modem_status_poll, SerialState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_serial = {
    .name = "serial",
    .version_id = 3,
    .minimum_version_id = 2,
    .pre_save = serial_pre_save,
    .pre_load = serial_pre_load,
    .post_load = serial_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16_V(divider, SerialState, 2),
        VMSTATE_UINT8(rbr, SerialState),
        VMSTATE_UINT8(ier, SerialState),
        VMSTATE_UINT8(iir, SerialState),
        VMSTATE_UINT8(lcr, SerialState),
        VMSTATE_UINT8(mcr, SerialState),
        VMSTATE_UINT8(lsr, SerialState),
        VMSTATE_UINT8(msr, SerialState),
        VMSTATE_UINT8(scr, SerialState),
        VMSTATE_UINT8_V(fcr_vmstate, SerialState, 3),
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
