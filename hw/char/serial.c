/*
 * The 16550A UART (hw/char/serial.h). Register map at base+0..7: RBR/THR
 * (DLL with LCR.DLAB), IER (DLM), IIR/FCR, LCR, MCR, LSR, MSR, SCR.
 */
#include <string.h>

#include "hw/char/serial.h"

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

struct SerialState {
    GMutex lock;
    SerialRegs r;
    Chardev *chr;
    IrqLine irq;
    int irq_level;   /* last level driven, -1 before the first */
};

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

SerialState *serial_new(Chardev *chr, IrqLine irq)
{
    SerialState *s = g_new0(SerialState, 1);

    g_mutex_init(&s->lock);
    s->chr = chr;
    s->irq = irq;
    serial_reset(s);
    if (chr) {
        chardev_set_frontend(chr, serial_receive, s);
    }
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
