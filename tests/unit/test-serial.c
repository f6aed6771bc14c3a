/*
 * Unit tests for the 16550A UART (hw/char/serial.c) through its port
 * interface, following the steps of Linux's 8250 probe: scratch register,
 * IER read-back, loopback with MSR mirroring MCR, FIFO reported in IIR; plus
 * THRE and receive interrupts on the IrqLine, and the divisor latch.
 */
#include "hw/char/serial.h"
#include "tern/error.h"

enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };

typedef struct Irq {
    bool level;
    unsigned changes;
} Irq;

static void irq_record(void *opaque, unsigned gsi, bool level)
{
    Irq *i = opaque;

    i->changes += i->level != level;
    i->level = level;
}

typedef struct Uart {
    IoBus *bus;
    SerialState *s;
    Irq irq;
} Uart;

static void uart_init(Uart *u)
{
    IrqLine line = { .set = irq_record, .opaque = &u->irq, .gsi = 4 };

    u->irq = (Irq){ 0 };
    u->bus = iobus_new("pio");
    u->s = serial_new(NULL, line, NULL);
    g_assert_true(serial_attach(u->s, u->bus, 0x3f8, NULL));
}

static void uart_free(Uart *u)
{
    serial_free(u->s);
    iobus_free(u->bus);
}

static uint8_t in(Uart *u, unsigned reg)
{
    uint64_t v;

    g_assert_true(iobus_read(u->bus, 0x3f8 + reg, &v, 1));
    return v;
}

static void out(Uart *u, unsigned reg, uint8_t v)
{
    g_assert_true(iobus_write(u->bus, 0x3f8 + reg, v, 1));
}

static void test_linux_probe(void)
{
    Uart u;

    uart_init(&u);
    out(&u, SCR, 0xa5);
    g_assert_cmphex(in(&u, SCR), ==, 0xa5);
    out(&u, IER, 0);
    g_assert_cmphex(in(&u, IER), ==, 0);
    out(&u, IER, 0x0f);
    g_assert_cmphex(in(&u, IER), ==, 0x0f);
    out(&u, IER, 0);
    /* Loopback: RTS|OUT2 must show as CTS|DCD, and only those. */
    out(&u, MCR, 0x10 | 0x0a);
    g_assert_cmphex(in(&u, MSR) & 0xf0, ==, 0x90);
    out(&u, MCR, 0);
    /* FIFO enable shows as 16550A in IIR bits 7:6. */
    out(&u, IIR, 0x01);
    g_assert_cmphex(in(&u, IIR) & 0xc0, ==, 0xc0);
    out(&u, IIR, 0);
    g_assert_cmphex(in(&u, IIR) & 0xc0, ==, 0);
    g_assert_cmphex(in(&u, LSR) & 0x60, ==, 0x60);   /* THRE | TEMT */
    uart_free(&u);
}

static void test_thre_interrupt(void)
{
    Uart u;

    uart_init(&u);
    g_assert_false(u.irq.level);
    out(&u, IER, 0x02);                /* THRI with THR empty: raised at once */
    g_assert_true(u.irq.level);
    g_assert_cmphex(in(&u, IIR) & 0x0f, ==, 0x02);
    g_assert_false(u.irq.level);       /* reading IIR acknowledged it */
    g_assert_cmphex(in(&u, IIR) & 0x0f, ==, 0x01);
    out(&u, RBR, 'x');                 /* sent at once: THR empty again */
    g_assert_true(u.irq.level);
    out(&u, IER, 0);
    g_assert_false(u.irq.level);
    uart_free(&u);
}

static void test_receive(void)
{
    Uart u;
    uint8_t buf[40];

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = 'a' + i % 26;
    }
    uart_init(&u);
    /* Without the FIFO only one byte is held. */
    g_assert_cmpuint(serial_receive(u.s, buf, sizeof(buf)), ==, 1);
    g_assert_cmphex(in(&u, LSR) & 1, ==, 1);
    g_assert_cmphex(in(&u, RBR), ==, 'a');
    g_assert_cmphex(in(&u, LSR) & 1, ==, 0);
    out(&u, IIR, 0x01);
    out(&u, IER, 0x01);
    g_assert_cmpuint(serial_receive(u.s, buf, sizeof(buf)), ==, SERIAL_FIFO_SIZE);
    g_assert_true(u.irq.level);
    g_assert_cmphex(in(&u, IIR) & 0x0f, ==, 0x04);
    for (unsigned i = 0; i < SERIAL_FIFO_SIZE; i++) {
        g_assert_cmphex(in(&u, RBR), ==, buf[i]);
    }
    g_assert_false(u.irq.level);
    g_assert_cmphex(in(&u, RBR), ==, 0);      /* empty FIFO reads 0, no crash */
    /* FCR clear-receive empties the FIFO. */
    g_assert_cmpuint(serial_receive(u.s, buf, 3), ==, 3);
    out(&u, IIR, 0x03);
    g_assert_cmphex(in(&u, LSR) & 1, ==, 0);
    uart_free(&u);
}

static void test_loopback_data(void)
{
    Uart u;

    uart_init(&u);
    out(&u, MCR, 0x10);
    out(&u, RBR, 0x5a);
    g_assert_cmphex(in(&u, LSR) & 1, ==, 1);
    g_assert_cmphex(in(&u, RBR), ==, 0x5a);
    g_assert_cmpuint(serial_receive(u.s, (const uint8_t *)"x", 1), ==, 0);
    uart_free(&u);
}

static void test_divisor_latch(void)
{
    Uart u;
    SerialRegs r;

    uart_init(&u);
    out(&u, LCR, 0x83);
    out(&u, RBR, 0x01);
    out(&u, IER, 0x00);
    g_assert_cmphex(in(&u, RBR), ==, 0x01);
    out(&u, LCR, 0x03);
    g_assert_cmphex(in(&u, IER), ==, 0);     /* IER itself is untouched */
    serial_get_regs(u.s, &r);
    g_assert_cmpuint(r.divider, ==, 1);
    g_assert_cmphex(r.lcr, ==, 0x03);
    /* Restored registers (migration) are clamped, not trusted. */
    r.rx_count = 200;
    serial_set_regs(u.s, &r);
    serial_get_regs(u.s, &r);
    g_assert_cmpuint(r.rx_count, ==, SERIAL_FIFO_SIZE);
    uart_free(&u);
}

static void test_reset(void)
{
    Uart u;
    SerialRegs r;

    uart_init(&u);
    out(&u, IER, 0x02);
    out(&u, LCR, 0x83);
    out(&u, SCR, 0x77);
    g_assert_cmpuint(serial_receive(u.s, (const uint8_t *)"q", 1), ==, 1);
    g_assert_true(u.irq.level);
    serial_reset(u.s);
    g_assert_false(u.irq.level);
    serial_get_regs(u.s, &r);
    g_assert_cmpuint(r.ier, ==, 0);
    g_assert_cmpuint(r.lcr, ==, 0);
    g_assert_cmpuint(r.scr, ==, 0);
    g_assert_cmpuint(r.rx_count, ==, 0);
    g_assert_cmpuint(r.divider, ==, 12);
    g_assert_cmphex(in(&u, LSR), ==, 0x60);
    g_assert_cmphex(in(&u, IIR), ==, 0x01);
    uart_free(&u);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/serial/linux-probe", test_linux_probe);
    g_test_add_func("/serial/thre-interrupt", test_thre_interrupt);
    g_test_add_func("/serial/receive", test_receive);
    g_test_add_func("/serial/loopback-data", test_loopback_data);
    g_test_add_func("/serial/divisor-latch", test_divisor_latch);
    g_test_add_func("/serial/reset", test_reset);
    return g_test_run();
}
