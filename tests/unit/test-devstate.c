/*
 * Unit tests for the device VMState descriptions (devstate), as each device
 * registers it on its DeviceList: for the UART, RTC, i8042, ACPI PM, a PCI
 * device (conventional and Express) and the PCI host bridge, save -> destroy
 * -> recreate -> load -> compare on heap-backed
 * devices with fake buses and IRQ recorders; golden wire bytes for the UART
 * and the RTC; and hostile input for each: every truncation, newer and older
 * versions, impossible counts and values, a different device.
 */
#include <string.h>

#include "hw/acpi/pm.h"
#include "hw/char/serial.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"
#include "migration/savevm.h"
#include "tern/error.h"

/* ---- helpers ---- */

typedef struct Recorder {
    bool level[32];
    unsigned sets[32];
} Recorder;

static void rec_irq(void *opaque, unsigned gsi, bool level)
{
    Recorder *r = opaque;

    g_assert_cmpuint(gsi, <, 32);
    r->level[gsi] = level;
    r->sets[gsi]++;
}

static IrqLine rec_line(Recorder *r, unsigned gsi)
{
    return (IrqLine){ .set = rec_irq, .opaque = r, .gsi = gsi };
}

static void nop_power(void *opaque) { }
static const PowerOps no_power = { .reset = nop_power, .poweroff = nop_power };

/* The description 'dev' registered on dl under idstr (instance 0). */
static const VMStateDescription *vmsd_of(const DeviceList *dl,
                                         const char *idstr, const void *dev)
{
    const DeviceVmstate *e = device_list_find(dl, idstr, 0);

    g_assert_nonnull(e);
    g_assert_true(e->opaque == dev);
    return e->vmsd;
}

static GBytes *save(const VMStateDescription *vmsd, void *opaque)
{
    g_autoptr(GError) err = NULL;
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *a;
    GBytes *b;

    g_assert_true(vmstate_save(f, vmsd, opaque, NULL, &err));
    g_assert_no_error(err);
    a = qemu_file_mem_output_data(f);
    b = g_bytes_new(a->data, a->len);
    g_assert_true(qemu_fclose(f, &err));
    return b;
}

/* Loads 'len' bytes; on success every byte must have been consumed. */
static bool load(const VMStateDescription *vmsd, void *opaque, const void *data,
                 size_t len, int version, GError **errp)
{
    GBytes *b = g_bytes_new(data, len);
    QEMUFile *f = qemu_file_new_mem_input(b);
    bool ok = vmstate_load(f, vmsd, opaque, version, errp);

    if (ok) {
        g_assert_true(qemu_file_at_eof(f));
    }
    qemu_fclose(f, NULL);
    g_bytes_unref(b);
    return ok;
}

static void load_ok(const VMStateDescription *vmsd, void *opaque, GBytes *b)
{
    g_autoptr(GError) err = NULL;
    size_t len;
    const void *p = g_bytes_get_data(b, &len);

    g_assert_true(load(vmsd, opaque, p, len, vmsd->version_id, &err));
    g_assert_no_error(err);
}

/* Every cut of the stream fails with an error, except at the lengths in
 * 'ok_cuts' (0-terminated), where an optional subsection may begin. */
static void check_truncations(const VMStateDescription *vmsd, void *opaque,
                              GBytes *b, const size_t *ok_cuts)
{
    size_t len;
    const uint8_t *p = g_bytes_get_data(b, &len);

    for (size_t cut = 0; cut < len; cut++) {
        GError *err = NULL;
        bool allowed = false;

        for (const size_t *c = ok_cuts; c && *c; c++) {
            allowed |= *c == cut;
        }
        if (allowed) {
            continue;
        }
        g_assert_false(load(vmsd, opaque, p, cut, vmsd->version_id, &err));
        g_assert_nonnull(err);
        g_error_free(err);
    }
}

static void load_fails(const VMStateDescription *vmsd, void *opaque,
                       const void *data, size_t len, int version,
                       const char *msg)
{
    GError *err = NULL;

    g_assert_false(load(vmsd, opaque, data, len, version, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, msg)) {
        g_error("expected '%s' in: %s", msg, err->message);
    }
    g_error_free(err);
}

static uint64_t in(IoBus *b, uint64_t a, unsigned size)
{
    uint64_t v;

    iobus_read(b, a, &v, size);
    return v;
}

static void out(IoBus *b, uint64_t a, uint64_t v, unsigned size)
{
    iobus_write(b, a, v, size);
}

/* ---- serial ---- */

#define COM1 0x3f8

typedef struct Uart {
    IoBus *pio;
    DeviceList *dl;
    SerialState *s;
    const VMStateDescription *vmsd;     /* what it registered */
    Recorder rec;
} Uart;

static void uart_new(Uart *u)
{
    g_autoptr(GError) err = NULL;

    memset(u, 0, sizeof(*u));
    u->pio = iobus_new("pio");
    u->dl = device_list_new();
    u->s = serial_new(NULL, rec_line(&u->rec, 4), u->dl);
    g_assert_true(serial_attach(u->s, u->pio, COM1, &err));
    u->vmsd = vmsd_of(u->dl, "serial", u->s);
}

static void uart_free(Uart *u)
{
    serial_free(u->s);
    device_list_free(u->dl);
    iobus_free(u->pio);
}

static void assert_regs_equal(SerialState *a, SerialState *b)
{
    SerialRegs x, y;

    serial_get_regs(a, &x);
    serial_get_regs(b, &y);
    g_assert_cmpuint(x.divider, ==, y.divider);
    g_assert_cmphex(x.ier, ==, y.ier);
    g_assert_cmphex(x.iir, ==, y.iir);
    g_assert_cmphex(x.lcr, ==, y.lcr);
    g_assert_cmphex(x.mcr, ==, y.mcr);
    g_assert_cmphex(x.lsr, ==, y.lsr);
    g_assert_cmphex(x.msr, ==, y.msr);
    g_assert_cmphex(x.scr, ==, y.scr);
    g_assert_cmphex(x.fcr, ==, y.fcr);
    g_assert_cmpint(x.thr_ipending, ==, y.thr_ipending);
    g_assert_cmpmem(x.rx_fifo, x.rx_count, y.rx_fifo, y.rx_count);
}

/* QEMU's "serial" v3 for a UART fresh from reset. */
static const uint8_t serial_reset_bytes[] = {
    0x00, 0x0c,             /* divider 12: 9600 baud */
    0x00,                   /* rbr */
    0x00,                   /* ier */
    0x01,                   /* iir: no interrupt */
    0x00, 0x00,             /* lcr, mcr */
    0x60,                   /* lsr: THRE | TEMT */
    0xb0,                   /* msr: DCD | DSR | CTS */
    0x00,                   /* scr */
    0x00,                   /* fcr_vmstate */
};

static void test_serial_golden(void)
{
    Uart u;
    g_autoptr(GBytes) b = NULL;
    static const uint8_t fifo_bytes[] = {
        0x00, 0x0c, 0x00, 0x00, 0xc1, 0x00, 0x00, 0x61, 0xb0, 0x00, 0x01,
        0x05, 16, 's', 'e', 'r', 'i', 'a', 'l', '/', 'r', 'e', 'c', 'v', '_',
        'f', 'i', 'f', 'o', 0x00, 0x00, 0x00, 0x01,
        'h', 'i', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x00, 0x00, 0x00, 0x00,         /* head */
        0x00, 0x00, 0x00, 0x02,         /* num */
    };

    uart_new(&u);
    b = save(u.vmsd, u.s);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                    serial_reset_bytes, sizeof(serial_reset_bytes));
    g_bytes_unref(b);

    out(u.pio, COM1 + 2, 0x01, 1);          /* FIFO on */
    g_assert_cmpuint(serial_receive(u.s, (const uint8_t *)"hi", 2), ==, 2);
    b = save(u.vmsd, u.s);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                    fifo_bytes, sizeof(fifo_bytes));
    uart_free(&u);
}

static void test_serial_round_trip(void)
{
    Uart a, b;
    g_autoptr(GBytes) bytes = NULL;

    uart_new(&a);
    out(a.pio, COM1 + 3, 0x80, 1);          /* DLAB: divider 3 (38400) */
    out(a.pio, COM1 + 0, 0x03, 1);
    out(a.pio, COM1 + 1, 0x00, 1);
    out(a.pio, COM1 + 3, 0x03, 1);          /* 8N1 */
    out(a.pio, COM1 + 7, 0x5a, 1);          /* scratch */
    out(a.pio, COM1 + 4, 0x0b, 1);          /* DTR RTS OUT2 */
    out(a.pio, COM1 + 2, 0xc1, 1);          /* FIFO, trigger 14 */
    out(a.pio, COM1 + 1, 0x03, 1);          /* RDI | THRI */
    g_assert_cmpuint(serial_receive(a.s, (const uint8_t *)"abc", 3), ==, 3);
    in(a.pio, COM1, 1);                     /* 'a' read: "bc" stay */
    g_assert_true(a.rec.level[4]);
    bytes = save(a.vmsd, a.s);

    uart_new(&b);
    load_ok(b.vmsd, b.s, bytes);
    assert_regs_equal(a.s, b.s);
    g_assert_true(b.rec.level[4]);
    /* The destination goes on where the source stopped. */
    g_assert_cmphex(in(b.pio, COM1, 1), ==, 'b');
    g_assert_cmphex(in(b.pio, COM1, 1), ==, 'c');
    g_assert_cmphex(in(b.pio, COM1 + 2, 1) & 0x0f, ==, 0x02);   /* THRI now */
    out(b.pio, COM1 + 3, 0x83, 1);
    g_assert_cmphex(in(b.pio, COM1, 1), ==, 0x03);
    uart_free(&a);
    uart_free(&b);
}

/* A THRE interrupt hidden behind a pending receive interrupt needs the
 * serial/thr_ipending subsection; without FIFO the byte travels in RBR. */
static void test_serial_thr_ipending_and_rbr(void)
{
    Uart a, b;
    g_autoptr(GBytes) bytes = NULL;
    size_t len;
    const uint8_t *p;

    uart_new(&a);
    out(a.pio, COM1 + 1, 0x03, 1);          /* RDI | THRI: THRE pending */
    g_assert_cmpuint(serial_receive(a.s, (const uint8_t *)"z", 1), ==, 1);
    g_assert_cmphex(in(a.pio, COM1 + 2, 1), ==, 0x04);   /* RDI first */
    bytes = save(a.vmsd, a.s);
    p = g_bytes_get_data(bytes, &len);
    g_assert_cmpuint(len, ==, sizeof(serial_reset_bytes) + 2 + 19 + 4 + 4);
    g_assert_cmphex(p[2], ==, 'z');         /* rbr */
    g_assert_cmpmem(p + 13, 19, "serial/thr_ipending", 19);

    uart_new(&b);
    load_ok(b.vmsd, b.s, bytes);
    assert_regs_equal(a.s, b.s);
    g_assert_cmphex(in(b.pio, COM1, 1), ==, 'z');
    g_assert_cmphex(in(b.pio, COM1 + 2, 1), ==, 0x02);   /* then THRI */
    check_truncations(b.vmsd, b.s, bytes,
                      (const size_t[]){ sizeof(serial_reset_bytes), 0 });
    uart_free(&a);
    uart_free(&b);
}

/* What QEMU may add: the subsections tern only accepts, and version 2. */
static void test_serial_qemu_subsections(void)
{
    Uart u;
    g_autoptr(GByteArray) s = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    static const uint8_t xmit[] = {
        0x05, 16, 's', 'e', 'r', 'i', 'a', 'l', '/', 'x', 'm', 'i', 't', '_',
        'f', 'i', 'f', 'o', 0, 0, 0, 1,
        1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 3,
    };
    static const uint8_t poll[] = {
        0x05, 11, 's', 'e', 'r', 'i', 'a', 'l', '/', 'p', 'o', 'l', 'l',
        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34,
    };

    uart_new(&u);
    g_byte_array_append(s, serial_reset_bytes, sizeof(serial_reset_bytes));
    g_byte_array_append(s, xmit, sizeof(xmit));
    g_byte_array_append(s, poll, sizeof(poll));
    g_assert_true(load(u.vmsd, u.s, s->data, s->len, 3, &err));
    g_assert_no_error(err);
    /* Version 2 has no fcr_vmstate byte. */
    g_assert_true(load(u.vmsd, u.s, serial_reset_bytes,
                       sizeof(serial_reset_bytes) - 1, 2, &err));
    g_assert_no_error(err);
    uart_free(&u);
}

/* The "serial" section body QEMU 7.2 writes for COM1 of a paused
 * 'qemu-system-x86_64 -M pc -S -serial null' (migrate "exec:cat > f"). */
static const uint8_t qemu72_serial[] = {
    0x00, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x08, 0x60, 0xb0, 0x00, 0x00,
};

static void test_serial_qemu_bytes(void)
{
    Uart u;
    g_autoptr(GBytes) in = g_bytes_new_static(qemu72_serial,
                                              sizeof(qemu72_serial));
    g_autoptr(GBytes) b = NULL;
    SerialRegs r;

    uart_new(&u);
    load_ok(u.vmsd, u.s, in);
    serial_get_regs(u.s, &r);
    g_assert_cmphex(r.mcr, ==, 0x08);       /* QEMU resets with OUT2 set */
    g_assert_cmpuint(r.divider, ==, 12);
    g_assert_cmphex(r.lsr, ==, 0x60);
    b = save(u.vmsd, u.s);       /* and tern writes it back */
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                    qemu72_serial, sizeof(qemu72_serial));
    uart_free(&u);
}

static void test_serial_hostile(void)
{
    Uart u;
    uint8_t s[sizeof(serial_reset_bytes) + 2 + 16 + 4 + 16 + 8];
    uint8_t *sub = s + sizeof(serial_reset_bytes);
    static const uint8_t bogus[] = {
        0x05, 12, 's', 'e', 'r', 'i', 'a', 'l', '/', 'b', 'o', 'g', 'u', 's',
        0, 0, 0, 1,
    };
    uint8_t bad_sub[sizeof(serial_reset_bytes) + sizeof(bogus)];
    g_autoptr(GBytes) reset = NULL;

    uart_new(&u);
    load_fails(u.vmsd, u.s, serial_reset_bytes,
               sizeof(serial_reset_bytes), 4, "newer");
    load_fails(u.vmsd, u.s, serial_reset_bytes,
               sizeof(serial_reset_bytes), 1, "older");
    memcpy(bad_sub, serial_reset_bytes, sizeof(serial_reset_bytes));
    memcpy(bad_sub + sizeof(serial_reset_bytes), bogus, sizeof(bogus));
    load_fails(u.vmsd, u.s, bad_sub, sizeof(bad_sub), 3,
               "unknown subsection");

    /* A receive FIFO holding more than it can, or a head outside it. */
    memcpy(s, serial_reset_bytes, sizeof(serial_reset_bytes));
    s[10] = 0x01;
    sub[0] = 0x05;
    sub[1] = 16;
    memcpy(sub + 2, "serial/recv_fifo", 16);
    memset(sub + 18, 0, 4 + 16 + 8);
    sub[21] = 1;
    sub[18 + 4 + 16 + 7] = 17;              /* num */
    load_fails(u.vmsd, u.s, s, sizeof(s), 3, "does not fit");
    sub[18 + 4 + 16 + 7] = 1;
    sub[18 + 4 + 16 + 3] = 16;              /* head */
    load_fails(u.vmsd, u.s, s, sizeof(s), 3, "does not fit");
    reset = g_bytes_new_static(serial_reset_bytes, sizeof(serial_reset_bytes));
    check_truncations(u.vmsd, u.s, reset, NULL);
    uart_free(&u);
}

/* ---- RTC ---- */

static int64_t fixed_clock(void *opaque)
{
    return *(int64_t *)opaque;
}

static uint8_t cmos_read(Rtc *rtc, uint8_t idx)
{
    rtc_io_ops.write(rtc, 0, idx, 1);
    return (uint8_t)rtc_io_ops.read(rtc, 1, 1);
}

static void cmos_write(Rtc *rtc, uint8_t idx, uint8_t v)
{
    rtc_io_ops.write(rtc, 0, idx, 1);
    rtc_io_ops.write(rtc, 1, v, 1);
}

static void test_rtc_golden_and_round_trip(void)
{
    g_autoptr(GError) err = NULL;
    int64_t src_now = 1700000000, dst_now = 1800000000;   /* hosts disagree */
    Recorder rec = { 0 };
    IrqLine irq = rec_line(&rec, 8);
    DeviceList *dl = device_list_new();
    Rtc *a = rtc_new(NULL, &irq, dl, &err), *b;
    const VMStateDescription *vmsd = vmsd_of(dl, "mc146818rtc", a);
    g_autoptr(GBytes) bytes = NULL;
    uint8_t want[128 + 1 + 1 + 8] = { 0 };
    int64_t guest;

    rtc_set_clock(a, fixed_clock, &src_now);
    cmos_write(a, RTC_YEAR, 0x99);          /* guest sets its own year */
    rtc_cmos_set(a, 0x40, 0x5a);
    rtc_io_ops.write(a, 0, 0x80 | 0x40, 1);  /* NMI masked, index 0x40 */
    bytes = save(vmsd, a);

    /* 2023-11-14 22:13:20 UTC with year 99: 2099-11-14 22:13:20. */
    guest = 4098377600LL;
    want[RTC_REG_A] = 0x26;
    want[RTC_REG_B] = RTC_B_24H;
    want[RTC_REG_D] = RTC_D_VRT;
    want[0x40] = 0x5a;
    want[128] = 0x40;
    want[129] = 1;
    for (int i = 0; i < 8; i++) {
        want[130 + i] = (uint8_t)(guest >> (56 - 8 * i));
    }
    g_assert_cmpmem(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes),
                    want, sizeof(want));

    b = rtc_new(NULL, &irq, NULL, &err);
    rtc_set_clock(b, fixed_clock, &dst_now);
    load_ok(vmsd, b, bytes);
    g_assert_true(rtc_nmi_masked(b));
    g_assert_cmphex(rtc_io_ops.read(b, 1, 1), ==, 0x5a);    /* index kept */
    for (uint8_t r = RTC_SECONDS; r <= RTC_YEAR; r++) {
        g_assert_cmphex(cmos_read(a, r), ==, cmos_read(b, r));
    }
    g_assert_cmphex(cmos_read(b, RTC_CENTURY), ==, 0x20);
    src_now += 5;
    dst_now += 5;                           /* both go on at the same pace */
    g_assert_cmphex(cmos_read(a, RTC_SECONDS), ==, cmos_read(b, RTC_SECONDS));
    check_truncations(vmsd, b, bytes, NULL);
    rtc_free(a);
    rtc_free(b);
    device_list_free(dl);
}

static void test_rtc_hostile(void)
{
    g_autoptr(GError) err = NULL;
    DeviceList *dl = device_list_new();
    Rtc *rtc = rtc_new(NULL, NULL, dl, &err);
    const VMStateDescription *vmsd = vmsd_of(dl, "mc146818rtc", rtc);
    uint8_t s[128 + 1 + 1 + 8] = { 0 };

    s[128] = 0x80;                          /* index beyond the CMOS */
    load_fails(vmsd, rtc, s, sizeof(s), 1, "out of range");
    s[128] = 0;
    s[130] = 0x80;                          /* INT64_MIN seconds */
    load_fails(vmsd, rtc, s, sizeof(s), 1, "outside the years");
    s[130] = 0x00;
    s[133] = 0x10;                          /* 2^36 s: year ~4147, fine */
    g_assert_true(load(vmsd, rtc, s, sizeof(s), 1, NULL));
    s[131] = 0x3b;                          /* ~2^48 s: beyond 9999 */
    load_fails(vmsd, rtc, s, sizeof(s), 1, "outside the years");
    load_fails(vmsd, rtc, s, sizeof(s), 2, "newer");
    load_fails(vmsd, rtc, s, sizeof(s), 0, "older");
    rtc_free(rtc);
    device_list_free(dl);
}

/* A guest clock that ran past 9999-12-31 has wrapped to year 0000, as the
 * registers show it, and migrates as such instead of being refused. */
static void test_rtc_past_9999_migrates(void)
{
    int64_t now = 1700000000;
    DeviceList *dl = device_list_new();
    Rtc *a = rtc_new(NULL, NULL, dl, NULL), *b = rtc_new(NULL, NULL, NULL, NULL);
    const VMStateDescription *vmsd = vmsd_of(dl, "mc146818rtc", a);
    static const struct { uint8_t reg, val; } set[] = {
        { RTC_CENTURY, 0x99 }, { RTC_YEAR, 0x99 }, { RTC_MONTH, 0x12 },
        { RTC_DAY_OF_MONTH, 0x31 }, { RTC_HOURS, 0x23 }, { RTC_MINUTES, 0x59 },
        { RTC_SECONDS, 0x59 },
    };
    g_autoptr(GBytes) bytes = NULL;

    rtc_set_clock(a, fixed_clock, &now);
    rtc_set_clock(b, fixed_clock, &now);
    for (size_t i = 0; i < G_N_ELEMENTS(set); i++) {
        cmos_write(a, set[i].reg, set[i].val);
    }
    now += 2;
    bytes = save(vmsd, a);
    load_ok(vmsd, b, bytes);
    g_assert_cmphex(cmos_read(b, RTC_CENTURY), ==, 0x00);
    g_assert_cmphex(cmos_read(b, RTC_YEAR), ==, 0x00);
    g_assert_cmphex(cmos_read(b, RTC_MONTH), ==, 0x01);
    g_assert_cmphex(cmos_read(b, RTC_SECONDS), ==, 0x01);
    g_assert_cmphex(cmos_read(b, RTC_DAY_OF_WEEK), ==, cmos_read(a, RTC_DAY_OF_WEEK));
    rtc_free(a);
    rtc_free(b);
    device_list_free(dl);
}

/* ---- i8042 ---- */

static void test_i8042_round_trip(void)
{
    g_autoptr(GError) err = NULL;
    Recorder ra = { 0 }, rb = { 0 };
    IrqLine ka = rec_line(&ra, 1), aa = rec_line(&ra, 12);
    IrqLine kb = rec_line(&rb, 1), ab = rec_line(&rb, 12);
    DeviceList *dl = device_list_new();
    I8042 *a = i8042_new(NULL, &ka, &aa, &no_power, NULL, dl, &err);
    I8042 *b = i8042_new(NULL, &kb, &ab, &no_power, NULL, NULL, &err);
    const VMStateDescription *vmsd = vmsd_of(dl, "i8042", a);
    g_autoptr(GBytes) bytes = NULL;

    i8042_cmd_ops.write(a, 0, 0xaa, 1);     /* self test: 0x55 queued */
    i8042_cmd_ops.write(a, 0, 0xd3, 1);     /* AUX loopback of 0x42 */
    i8042_data_ops.write(a, 0, 0x42, 1);
    i8042_cmd_ops.write(a, 0, 0x60, 1);     /* command byte: pending */
    g_assert_true(ra.level[1]);
    bytes = save(vmsd, a);
    g_assert_cmpuint(g_bytes_get_size(bytes), ==, 5 + 2 + 2);

    load_ok(vmsd, b, bytes);
    g_assert_true(rb.level[1]);
    g_assert_cmphex(i8042_cmd_ops.read(b, 0, 1), ==, i8042_cmd_ops.read(a, 0, 1));
    g_assert_cmphex(i8042_data_ops.read(b, 0, 1), ==, 0x55);
    g_assert_cmphex(i8042_cmd_ops.read(b, 0, 1) & I8042_STATUS_AUXDATA, !=, 0);
    g_assert_cmphex(i8042_data_ops.read(b, 0, 1), ==, 0x42);
    /* The pending 0x60 travelled: the next data byte is the command byte. */
    i8042_data_ops.write(b, 0, 0x03, 1);
    i8042_cmd_ops.write(b, 0, 0x20, 1);
    g_assert_cmphex(i8042_data_ops.read(b, 0, 1), ==, 0x03);
    check_truncations(vmsd, b, bytes, NULL);
    i8042_free(a);
    i8042_free(b);
    device_list_free(dl);
}

static void test_i8042_hostile(void)
{
    g_autoptr(GError) err = NULL;
    DeviceList *dl = device_list_new();
    I8042 *k = i8042_new(NULL, NULL, NULL, &no_power, NULL, dl, &err);
    const VMStateDescription *vmsd = vmsd_of(dl, "i8042", k);
    uint8_t s[5 + 17 + 17] = { 0x45, 0x03, 0, 0, 17 };

    load_fails(vmsd, k, s, sizeof(s), 1, "at most 16");
    load_fails(vmsd, k, s, 5, 2, "newer");
    i8042_free(k);
    device_list_free(dl);
}

/* ---- ACPI PM ---- */

static void test_acpi_pm_round_trip(void)
{
    g_autoptr(GError) err = NULL;
    Recorder ra = { 0 }, rb = { 0 };
    IrqLine sa = rec_line(&ra, 9), sb = rec_line(&rb, 9);
    DeviceList *dl = device_list_new();
    AcpiPm *a = acpi_pm_new(NULL, 0, &sa, &no_power, NULL, dl, &err);
    AcpiPm *b = acpi_pm_new(NULL, 0, &sb, &no_power, NULL, NULL, &err);
    const VMStateDescription *vmsd = vmsd_of(dl, "acpi-pm", a);
    g_autoptr(GBytes) bytes = NULL;
    uint32_t ta, tb;

    acpi_pm_io_ops.write(a, 2, ACPI_PM1_STS_PWRBTN, 2);          /* PM1_EN */
    acpi_pm_io_ops.write(a, ACPI_PM_CNT_OFFSET, 3 << 10, 2);     /* SLP_TYP */
    acpi_pm_power_button(a);
    g_assert_true(ra.level[9]);
    g_usleep(20000);                        /* the timer has moved on */
    ta = (uint32_t)acpi_pm_io_ops.read(a, ACPI_PM_TMR_OFFSET, 4);
    bytes = save(vmsd, a);
    g_assert_cmpuint(g_bytes_get_size(bytes), ==, 10);

    load_ok(vmsd, b, bytes);
    g_assert_true(rb.level[9]);
    for (unsigned off = 0; off < ACPI_PM_TMR_OFFSET; off += 2) {
        g_assert_cmphex(acpi_pm_io_ops.read(b, off, 2), ==,
                        acpi_pm_io_ops.read(a, off, 2));
    }
    tb = (uint32_t)acpi_pm_io_ops.read(b, ACPI_PM_TMR_OFFSET, 4);
    /* The fresh device's own timer would read ~0; this one goes on. */
    g_assert_cmpuint(tb, >=, ta - ACPI_PM_TIMER_HZ / 1000);
    g_assert_cmpuint(tb - ta, <, ACPI_PM_TIMER_HZ);
    check_truncations(vmsd, b, bytes, NULL);
    acpi_pm_free(a);
    acpi_pm_free(b);
    device_list_free(dl);
}

static void test_acpi_pm_hostile(void)
{
    g_autoptr(GError) err = NULL;
    Recorder r = { 0 };
    IrqLine sci = rec_line(&r, 9);
    DeviceList *dl = device_list_new();
    AcpiPm *pm = acpi_pm_new(NULL, 0, &sci, &no_power, NULL, dl, &err);
    const VMStateDescription *vmsd = vmsd_of(dl, "acpi-pm", pm);
    /* Every bit set: only real status/enable bits survive; SLP_EN does not
     * power off from a stream. */
    static const uint8_t s[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0, 0, 0, 0 };

    g_assert_true(load(vmsd, pm, s, sizeof(s), 1, &err));
    g_assert_no_error(err);
    g_assert_cmphex(acpi_pm_io_ops.read(pm, 0, 2), ==, 0x8121);
    g_assert_cmphex(acpi_pm_io_ops.read(pm, 2, 2), ==, 0x0121);
    g_assert_cmphex(acpi_pm_io_ops.read(pm, ACPI_PM_CNT_OFFSET, 2), ==,
                    0xdffe | ACPI_PM1_CNT_SCI_EN);
    g_assert_true(r.level[9]);
    load_fails(vmsd, pm, s, sizeof(s), 2, "newer");
    acpi_pm_free(pm);
    device_list_free(dl);
}

/* ---- PCI ---- */

#define DEV_DEVFN PCI_DEVFN(3, 0)
#define BAR_ADDR  0xc0001000u

typedef struct TestPci {
    IoBus *pio, *mmio;
    DeviceList *dl;
    PciBus *bus;
    PciHost *host;
    PciDevice dev;
    Recorder rec;
    unsigned bar_reads;
} TestPci;

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    ((TestPci *)opaque)->bar_reads++;
    return 0xabcd0000 | off;
}

static const IoOps bar_ops = { .read = bar_read };

static IrqLine route(void *opaque, unsigned slot, unsigned pin)
{
    return rec_line(opaque, 16 + slot % 8);
}

static void pci_new(TestPci *p, uint16_t device_id, bool express)
{
    g_autoptr(GError) err = NULL;

    memset(p, 0, sizeof(*p));
    p->pio = iobus_new("pio");
    p->mmio = iobus_new("mmio");
    p->bus = pci_bus_new(p->pio, p->mmio);
    pci_bus_set_intx_router(p->bus, route, &p->rec);
    p->dl = device_list_new();
    p->host = pci_host_new(p->bus, p->pio, p->mmio, 0, 0, &no_power, NULL,
                           p->dl, &err);
    g_assert_nonnull(p->host);
    pci_device_init(&p->dev, "test-dev", 0x1af4, device_id, 0x018000, true);
    g_assert_true(pci_device_set_bar(&p->dev, 0, PCI_BAR_MEM32, 0x1000, false,
                                     &bar_ops, p, &err));
    if (express) {
        g_assert_cmpuint(pci_device_add_capability(&p->dev, PCI_CAP_ID_EXP, 0x3c),
                         !=, 0);
    }
    g_assert_true(pci_bus_add_device(p->bus, &p->dev, DEV_DEVFN, &err));
}

static void pci_free(TestPci *p)
{
    pci_bus_remove_device(p->bus, &p->dev);
    pci_host_free(p->host);
    pci_bus_free(p->bus);
    device_list_free(p->dl);
    iobus_free(p->pio);
    iobus_free(p->mmio);
}

static void cfg_write(TestPci *p, unsigned off, uint32_t v, unsigned size)
{
    pci_bus_config_write(p->bus, 0, DEV_DEVFN, off, v, size);
}

static void pci_round_trip(bool express)
{
    TestPci a, b;
    g_autoptr(GBytes) bytes = NULL;
    const uint8_t *p;
    size_t len, cfg = express ? PCIE_CONFIG_SPACE_SIZE : PCI_CONFIG_SPACE_SIZE;

    pci_new(&a, 0x1042, express);
    cfg_write(&a, PCI_BASE_ADDRESS_0, BAR_ADDR, 4);
    cfg_write(&a, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    cfg_write(&a, PCI_INTERRUPT_LINE, 0x0b, 1);
    pci_device_set_intx(&a.dev, true);
    g_assert_cmphex(in(a.mmio, BAR_ADDR + 8, 4), ==, 0xabcd0008);
    bytes = save(&vmstate_pci_device, &a.dev);
    p = g_bytes_get_data(bytes, &len);
    g_assert_cmpuint(len, ==, 4 + cfg + 16);
    g_assert_cmphex(p[3], ==, 2);                       /* version */
    g_assert_cmpmem(p + 4, cfg, a.dev.config, cfg);
    g_assert_cmphex(p[4 + cfg + 3], ==, 1);              /* INTA# high */

    pci_new(&b, 0x1042, express);
    g_assert_cmphex(in(b.mmio, BAR_ADDR + 8, 4), ==, UINT32_MAX);
    load_ok(&vmstate_pci_device, &b.dev, bytes);
    g_assert_cmpmem(b.dev.config, cfg, a.dev.config, cfg);
    g_assert_true(b.rec.level[16 + 3]);                  /* INTx re-driven */
    g_assert_cmphex(in(b.mmio, BAR_ADDR + 8, 4), ==, 0xabcd0008);   /* mapped */
    g_assert_cmpuint(b.bar_reads, ==, 1);
    check_truncations(&vmstate_pci_device, &b.dev, bytes, NULL);
    pci_free(&a);
    pci_free(&b);
}

static void test_pci_round_trip(void)
{
    pci_round_trip(false);
}

static void test_pcie_round_trip(void)
{
    pci_round_trip(true);
}

static void test_pci_hostile(void)
{
    TestPci a, b;
    g_autoptr(GBytes) bytes = NULL;
    g_autofree uint8_t *s = NULL;
    size_t len;

    pci_new(&a, 0x1042, false);
    bytes = save(&vmstate_pci_device, &a.dev);
    len = g_bytes_get_size(bytes);
    s = g_memdup2(g_bytes_get_data(bytes, NULL), len);

    pci_new(&b, 0x1001, false);             /* another device */
    load_fails(&vmstate_pci_device, &b.dev, s, len, 2, "config byte 0x2");
    s[3] = 3;                               /* version field */
    load_fails(&vmstate_pci_device, &a.dev, s, len, 2, "version 3");
    s[3] = 2;
    s[4 + 256 + 7] = 1;                     /* INTB# on an INTA# device */
    load_fails(&vmstate_pci_device, &a.dev, s, len, 2, "pin 1");
    s[4 + 256 + 7] = 0;
    s[4 + 256 + 3] = 7;                     /* level 7 */
    load_fails(&vmstate_pci_device, &a.dev, s, len, 2, "level 7");
    load_fails(&vmstate_pci_device, &a.dev, s, len, 1, "older");
    pci_free(&a);
    pci_free(&b);
}

/* The PCIDevice part of the "0000:00:00.0/I440FX" section QEMU 7.2 writes
 * for a paused -M pc VM: be32 2, its 256-byte config space (non-zero bytes
 * listed), 4 x be32 INTx levels. */
static const struct { uint8_t off, val; } qemu72_i440fx_cfg[] = {
    { 0x00, 0x86 }, { 0x01, 0x80 }, { 0x02, 0x37 }, { 0x03, 0x12 },
    { 0x08, 0x02 }, { 0x0b, 0x06 }, { 0x2c, 0xf4 }, { 0x2d, 0x1a },
    { 0x2f, 0x11 }, { 0x57, 0x04 }, { 0x72, 0x02 },
};

static void test_pci_qemu_bytes(void)
{
    uint8_t s[4 + PCI_CONFIG_SPACE_SIZE + 16] = { 0, 0, 0, 2 };
    g_autoptr(GBytes) in = NULL, again = NULL;
    PciDevice d;

    for (size_t i = 0; i < G_N_ELEMENTS(qemu72_i440fx_cfg); i++) {
        s[4 + qemu72_i440fx_cfg[i].off] = qemu72_i440fx_cfg[i].val;
    }
    /* The same chip as tern would describe it. */
    pci_device_init(&d, "i440fx", 0x8086, 0x1237, 0x060000, false);
    d.config[PCI_REVISION_ID] = 0x02;
    pci_set_word(d.config + PCI_SUBSYSTEM_VENDOR_ID, 0x1af4);
    pci_set_word(d.config + PCI_SUBSYSTEM_ID, 0x1100);
    in = g_bytes_new(s, sizeof(s));
    load_ok(&vmstate_pci_device, &d, in);
    g_assert_cmphex(d.config[0x57], ==, 0x04);
    g_assert_cmphex(d.config[0x72], ==, 0x02);
    again = save(&vmstate_pci_device, &d);
    g_assert_cmpmem(g_bytes_get_data(again, NULL), g_bytes_get_size(again),
                    s, sizeof(s));
}

static void test_pci_host_round_trip(void)
{
    const VMStateDescription *vmsd;
    TestPci a, b;
    g_autoptr(GBytes) bytes = NULL;
    g_autofree uint8_t *s = NULL;
    size_t len;

    pci_new(&a, 0x1042, false);
    vmsd = vmsd_of(a.dl, "pci-host", a.host);
    out(a.pio, 0xcf8, 0x80001810, 4);       /* left pointing at 00:03.0 BAR0 */
    out(a.pio, 0xcf9, 0x02, 1);
    bytes = save(vmsd, a.host);
    pci_new(&b, 0x1042, false);
    load_ok(vmsd, b.host, bytes);
    g_assert_cmphex(in(b.pio, 0xcf8, 4), ==, 0x80001810);
    g_assert_cmphex(in(b.pio, 0xcf9, 1), ==, 0x02);
    check_truncations(vmsd, b.host, bytes, NULL);

    len = g_bytes_get_size(bytes);
    s = g_memdup2(g_bytes_get_data(bytes, NULL), len);
    s[len - 5] |= 0x01;                     /* CONFIG_ADDRESS low bits */
    load_fails(vmsd, b.host, s, len, 1, "impossible");
    s[len - 5] &= ~0x01;
    s[len - 1] = 0x04;                      /* a reset in flight */
    load_fails(vmsd, b.host, s, len, 1, "impossible");
    pci_free(&a);
    pci_free(&b);
}

/* Registration without KVM: the devices put their state on one list, in
 * creation order, and the list goes through a whole savevm stream and back. */
static void test_device_list_stream(void)
{
    g_autoptr(GError) err = NULL;
    int64_t now = 1700000000;
    Uart ua, ub;
    Rtc *ra, *rb;
    SaveVM *sa = savevm_new("tern-test"), *sb = savevm_new("tern-test");
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *bytes;
    g_autoptr(GBytes) stream = NULL;
    const uint8_t *p;
    size_t len;

    uart_new(&ua);
    uart_new(&ub);
    ra = rtc_new(NULL, NULL, ua.dl, &err);
    rb = rtc_new(NULL, NULL, ub.dl, &err);
    rtc_set_clock(ra, fixed_clock, &now);
    rtc_set_clock(rb, fixed_clock, &now);
    out(ua.pio, COM1 + 7, 0x42, 1);
    cmos_write(ra, 0x50, 0x17);
    g_assert_cmpuint(device_list_count(ua.dl), ==, 2);
    g_assert_cmpstr(device_list_get(ua.dl, 0)->idstr, ==, "serial");
    g_assert_cmpstr(device_list_get(ua.dl, 1)->idstr, ==, "mc146818rtc");
    g_assert_null(device_list_get(ua.dl, 2));
    device_list_register_savevm(ua.dl, sa);
    device_list_register_savevm(ub.dl, sb);
    g_assert_true(savevm_save_all(sa, f, &err));
    g_assert_no_error(err);
    bytes = qemu_file_mem_output_data(f);
    stream = g_bytes_new(bytes->data, bytes->len);
    qemu_fclose(f, NULL);
    p = g_bytes_get_data(stream, &len);
    g_assert_nonnull(memmem(p, len, "\x06serial", 7));
    g_assert_nonnull(memmem(p, len, "\x0bmc146818rtc", 12));
    g_assert_true((const uint8_t *)memmem(p, len, "\x06serial", 7) <
                  (const uint8_t *)memmem(p, len, "\x0bmc146818rtc", 12));
    g_assert_null(memmem(p, len, "\x05i8042", 6));

    f = qemu_file_new_mem_input(stream);
    g_assert_true(savevm_load(sb, f, &err));
    g_assert_no_error(err);
    qemu_fclose(f, NULL);
    g_assert_cmphex(in(ub.pio, COM1 + 7, 1), ==, 0x42);
    g_assert_cmphex(cmos_read(rb, 0x50), ==, 0x17);

    savevm_free(sa);
    savevm_free(sb);
    rtc_free(ra);
    rtc_free(rb);
    uart_free(&ua);
    uart_free(&ub);
}

/* Priorities order the walk (vCPUs, then KVM's chips, then devices), equal
 * ones keep their registration order; ANY takes the next free instance;
 * a removed device leaves no reset hook or state behind. */
static const VMStateDescription vmsd_dev = { .name = "dev" };
static const VMStateDescription vmsd_chip = {
    .name = "chip", .priority = VMSTATE_PRIO_KVM_CHIPS,
};
static const VMStateDescription vmsd_cpu = {
    .name = "cpu", .priority = VMSTATE_PRIO_CPU,
};

static void count_reset(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_device_list_order(void)
{
    DeviceList *dl = device_list_new();
    int dev_a = 0, dev_b = 0, chip = 0, cpu0 = 0, cpu1 = 0;
    static const char *const want[] = { "cpu", "cpu", "chip", "dev", "dev" };

    device_list_add_vmstate(dl, "dev", VMSTATE_INSTANCE_ID_ANY, &vmsd_dev, &dev_a);
    device_list_add_vmstate(dl, "chip", 0, &vmsd_chip, &chip);
    device_list_add_vmstate(dl, "cpu", 0, &vmsd_cpu, &cpu0);
    device_list_add_vmstate(dl, "dev", VMSTATE_INSTANCE_ID_ANY, &vmsd_dev, &dev_b);
    device_list_add_vmstate(dl, "cpu", 1, &vmsd_cpu, &cpu1);
    device_list_add_reset(dl, count_reset, &dev_a);
    device_list_add_reset(dl, count_reset, &dev_b);
    g_assert_cmpuint(device_list_count(dl), ==, 5);
    for (size_t i = 0; i < 5; i++) {
        g_assert_cmpstr(device_list_get(dl, i)->idstr, ==, want[i]);
    }
    g_assert_true(device_list_get(dl, 0)->opaque == &cpu0);
    g_assert_true(device_list_get(dl, 1)->opaque == &cpu1);
    g_assert_true(device_list_get(dl, 3)->opaque == &dev_a);
    g_assert_cmpuint(device_list_get(dl, 4)->instance, ==, 1);
    g_assert_true(device_list_find(dl, "dev", 1)->opaque == &dev_b);
    g_assert_null(device_list_find(dl, "dev", 2));

    device_list_reset(dl);
    device_list_remove(dl, &dev_a);
    device_list_reset(dl);
    g_assert_cmpint(dev_a, ==, 1);
    g_assert_cmpint(dev_b, ==, 2);
    g_assert_cmpuint(device_list_count(dl), ==, 4);
    g_assert_null(device_list_find(dl, "dev", 0));
    device_list_free(dl);
    device_list_add_vmstate(NULL, "dev", 0, &vmsd_dev, &dev_a);   /* no list */
    device_list_add_reset(NULL, count_reset, &dev_a);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/devstate/serial/golden", test_serial_golden);
    g_test_add_func("/devstate/serial/round-trip", test_serial_round_trip);
    g_test_add_func("/devstate/serial/thr-ipending-rbr",
                    test_serial_thr_ipending_and_rbr);
    g_test_add_func("/devstate/serial/qemu-subsections",
                    test_serial_qemu_subsections);
    g_test_add_func("/devstate/serial/qemu-7.2-bytes", test_serial_qemu_bytes);
    g_test_add_func("/devstate/serial/hostile", test_serial_hostile);
    g_test_add_func("/devstate/rtc/golden-round-trip",
                    test_rtc_golden_and_round_trip);
    g_test_add_func("/devstate/rtc/hostile", test_rtc_hostile);
    g_test_add_func("/devstate/rtc/past-9999-migrates", test_rtc_past_9999_migrates);
    g_test_add_func("/devstate/i8042/round-trip", test_i8042_round_trip);
    g_test_add_func("/devstate/i8042/hostile", test_i8042_hostile);
    g_test_add_func("/devstate/acpi-pm/round-trip", test_acpi_pm_round_trip);
    g_test_add_func("/devstate/acpi-pm/hostile", test_acpi_pm_hostile);
    g_test_add_func("/devstate/pci/round-trip", test_pci_round_trip);
    g_test_add_func("/devstate/pci/express-round-trip", test_pcie_round_trip);
    g_test_add_func("/devstate/pci/hostile", test_pci_hostile);
    g_test_add_func("/devstate/pci/qemu-7.2-bytes", test_pci_qemu_bytes);
    g_test_add_func("/devstate/pci-host/round-trip", test_pci_host_round_trip);
    g_test_add_func("/devstate/device-list/stream", test_device_list_stream);
    g_test_add_func("/devstate/device-list/order", test_device_list_order);
    return g_test_run();
}
