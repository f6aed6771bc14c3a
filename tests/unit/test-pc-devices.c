/*
 * The legacy platform devices through the machine's port/MMIO buses: PCI
 * configuration mechanism #1 and ECAM reads of the host bridge's IDs, BAR
 * sizing/mapping, INTx and capabilities, harmless bogus config accesses, the
 * 0xcf9 reset register; CMOS/RTC time and registers; the i8042 probe replies
 * and its reset; ACPI PM1 poweroff, sleep types that are refused, the power
 * button's SCI and the PM timer; and what a system reset puts back (PCI
 * headers and BAR mappings, RTC interrupt enables, i8042, PM1 registers).
 */
#include <string.h>

#include "hw/acpi/pm.h"
#include "hw/i386/pc-layout.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"
#include "tern/error.h"

#define ECAM_BASE 0xb0000000ULL

typedef struct Recorder {
    unsigned resets, poweroffs;
    bool level[32];
    unsigned edges[32];
} Recorder;

static void rec_reset(void *opaque) { ((Recorder *)opaque)->resets++; }
static void rec_poweroff(void *opaque) { ((Recorder *)opaque)->poweroffs++; }
static const PowerOps rec_power = { .reset = rec_reset, .poweroff = rec_poweroff };

static void rec_irq(void *opaque, unsigned gsi, bool level)
{
    Recorder *r = opaque;

    g_assert_cmpuint(gsi, <, 32);
    r->edges[gsi] += level && !r->level[gsi];
    r->level[gsi] = level;
}

static IrqLine rec_line(Recorder *r, unsigned gsi)
{
    return (IrqLine){ .set = rec_irq, .opaque = r, .gsi = gsi };
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

static uint32_t cfg1_read(IoBus *pio, unsigned devfn, unsigned off, unsigned size)
{
    out(pio, 0xcf8, 0x80000000u | (devfn << 8) | (off & 0xfc), 4);
    return (uint32_t)in(pio, 0xcfc + (off & 3), size);
}

static void cfg1_write(IoBus *pio, unsigned devfn, unsigned off, uint32_t v,
                       unsigned size)
{
    out(pio, 0xcf8, 0x80000000u | (devfn << 8) | (off & 0xfc), 4);
    out(pio, 0xcfc + (off & 3), v, size);
}

typedef struct Pci {
    IoBus *pio, *mmio;
    PciBus *bus;
    PciHost *host;
    Recorder rec;
} Pci;

static IrqLine route(void *opaque, unsigned slot, unsigned pin)
{
    return rec_line(opaque, X86_PCI_INTX_GSI(slot, pin));
}

static void pci_setup(Pci *p)
{
    g_autoptr(GError) err = NULL;

    memset(p, 0, sizeof(*p));
    p->pio = iobus_new("pio");
    p->mmio = iobus_new("mmio");
    p->bus = pci_bus_new(p->pio, p->mmio);
    pci_bus_set_intx_router(p->bus, route, &p->rec);
    p->host = pci_host_new(p->bus, p->pio, p->mmio, ECAM_BASE, 1, &rec_power,
                           &p->rec, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(p->host);
}

static void pci_teardown(Pci *p)
{
    pci_host_free(p->host);
    pci_bus_free(p->bus);
    iobus_free(p->pio);
    iobus_free(p->mmio);
}

static void test_pci_host_ids(void)
{
    Pci p;

    pci_setup(&p);
    g_assert_cmphex(cfg1_read(p.pio, 0, 0, 4), ==, 0x29c08086);
    g_assert_cmphex(cfg1_read(p.pio, 0, 2, 2), ==, 0x29c0);
    g_assert_cmphex(cfg1_read(p.pio, 0, 0x0b, 1), ==, 0x06);   /* bridge class */
    g_assert_cmphex(in(p.pio, 0xcf8, 4), ==, 0x80000008u);
    g_assert_cmphex(in(p.mmio, ECAM_BASE, 4), ==, 0x29c08086);
    g_assert_cmphex(in(p.mmio, ECAM_BASE + 2, 2), ==, 0x29c0);
    g_assert_cmphex(in(p.mmio, ECAM_BASE + 0xa, 2), ==, 0x0600);
    pci_teardown(&p);
}

static void test_pci_bogus(void)
{
    Pci p;

    pci_setup(&p);
    /* Enable bit clear, empty slot, other bus: all ones. */
    out(p.pio, 0xcf8, 0x00000000, 4);
    g_assert_cmphex(in(p.pio, 0xcfc, 4), ==, 0xffffffff);
    g_assert_cmphex(cfg1_read(p.pio, PCI_DEVFN(7, 0), 0, 4), ==, 0xffffffff);
    g_assert_cmphex(cfg1_read(p.pio, PCI_DEVFN(0, 3), 0, 2), ==, 0xffff);
    out(p.pio, 0xcf8, 0x80010000, 4);
    g_assert_cmphex(in(p.pio, 0xcfc, 4), ==, 0xffffffff);
    g_assert_cmphex(in(p.mmio, ECAM_BASE + (5 << 15), 4), ==, 0xffffffff);
    g_assert_cmphex(in(p.mmio, ECAM_BASE, 8), ==, UINT64_MAX);
    /* IDs are read-only; writes to empty slots, odd sizes, unaligned data go nowhere. */
    cfg1_write(p.pio, 0, 0, 0x12345678, 4);
    cfg1_write(p.pio, PCI_DEVFN(9, 0), 0x10, 0xffffffff, 4);
    out(p.mmio, ECAM_BASE + 0xffe, 0xffffffff, 4);
    out(p.mmio, ECAM_BASE + 1, 0xffff, 2);
    out(p.pio, 0xcf8, 0x12, 1);                       /* byte write to 0xcf8 */
    g_assert_cmphex(cfg1_read(p.pio, 0, 0, 4), ==, 0x29c08086);
    g_assert_cmphex(in(p.pio, 0xcfd, 2), ==, 0xffff);   /* unaligned: all ones */
    g_assert_cmpuint(p.rec.resets, ==, 0);
    pci_teardown(&p);
}

static void test_pci_reset_register(void)
{
    Pci p;

    pci_setup(&p);
    out(p.pio, X86_RESET_CONTROL_PORT, 0x02, 1);      /* no RST bit */
    g_assert_cmpuint(p.rec.resets, ==, 0);
    g_assert_cmphex(in(p.pio, X86_RESET_CONTROL_PORT, 1), ==, 0x02);
    out(p.pio, X86_RESET_CONTROL_PORT, X86_RESET_CONTROL_VALUE, 1);
    g_assert_cmpuint(p.rec.resets, ==, 1);
    pci_teardown(&p);
}

typedef struct TestDev {
    PciDevice pci;
    uint64_t last_write, last_off;
} TestDev;

static uint64_t tdev_read(void *opaque, uint64_t off, unsigned size)
{
    return 0xab00 + off;
}

static void tdev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    TestDev *t = opaque;

    t->last_write = val;
    t->last_off = off;
}

static const IoOps tdev_ops = { .read = tdev_read, .write = tdev_write };

/* IDs 1af4:1001, INTA#, BAR 0: 4 KiB MMIO, BAR 1: 32 ports. */
static void tdev_init(TestDev *t)
{
    g_autoptr(GError) err = NULL;

    pci_device_init(&t->pci, "test", 0x1af4, 0x1001, 0x018000, true);
    g_assert_true(pci_device_set_bar(&t->pci, 0, PCI_BAR_MEM32, 4096, false,
                                     &tdev_ops, t, &err));
    g_assert_true(pci_device_set_bar(&t->pci, 1, PCI_BAR_IO, 32, false,
                                     &tdev_ops, t, &err));
}

static void test_pci_device_bars(void)
{
    Pci p;
    TestDev t;
    g_autoptr(GError) err = NULL;
    unsigned devfn = PCI_DEVFN(3, 0);
    uint8_t cap;

    pci_setup(&p);
    tdev_init(&t);
    g_assert_true(pci_device_set_bar(&t.pci, 2, PCI_BAR_MEM64, 1 << 20, true,
                                     &tdev_ops, &t, &err));
    g_assert_false(pci_device_set_bar(&t.pci, 5, PCI_BAR_MEM64, 4096, false,
                                      &tdev_ops, &t, NULL));   /* no BAR 6 */
    g_assert_false(pci_device_set_bar(&t.pci, 4, PCI_BAR_MEM32, 3000, false,
                                      &tdev_ops, &t, NULL));   /* not 2^n */
    cap = pci_device_add_capability(&t.pci, PCI_CAP_ID_VNDR, 16);
    g_assert_cmpuint(cap, ==, 0x40);
    g_assert_cmpuint(pci_device_add_capability(&t.pci, PCI_CAP_ID_MSIX, 12), ==, 0x50);
    g_assert_true(pci_bus_add_device(p.bus, &t.pci, devfn, &err));
    g_assert_false(pci_bus_add_device(p.bus, &t.pci, devfn, NULL));  /* taken */

    /* Capability list: status bit, pointer chain. */
    g_assert_cmphex(cfg1_read(p.pio, devfn, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, !=, 0);
    g_assert_cmphex(cfg1_read(p.pio, devfn, PCI_CAPABILITY_LIST, 1), ==, 0x40);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x41, 1), ==, 0x50);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x50, 1), ==, PCI_CAP_ID_MSIX);
    /* Sizing: all ones reads back the size mask and flags. */
    cfg1_write(p.pio, devfn, 0x10, 0xffffffff, 4);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x10, 4), ==, 0xfffff000);
    cfg1_write(p.pio, devfn, 0x14, 0xffffffff, 4);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x14, 4), ==, 0xffffffe1);
    cfg1_write(p.pio, devfn, 0x18, 0xffffffff, 4);
    cfg1_write(p.pio, devfn, 0x1c, 0xffffffff, 4);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x18, 4), ==, 0xfff0000c);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x1c, 4), ==, 0xffffffff);
    /* Program and enable decoding: the BARs reach the device. */
    cfg1_write(p.pio, devfn, 0x10, 0xc0001000, 4);
    cfg1_write(p.pio, devfn, 0x14, 0xc040, 4);
    cfg1_write(p.pio, devfn, 0x18, 0x00000000, 4);
    cfg1_write(p.pio, devfn, 0x1c, 0x80, 4);
    g_assert_false(iobus_read(p.mmio, 0xc0001000, &(uint64_t){ 0 }, 4));
    cfg1_write(p.pio, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    g_assert_cmphex(in(p.mmio, 0xc0001010, 4), ==, 0xab10);
    g_assert_cmphex(in(p.pio, 0xc044, 2), ==, 0xab04);
    g_assert_cmphex(in(p.mmio, 0x8000000008ULL, 4), ==, 0xab08);
    out(p.mmio, 0xc0001ffc, 0x55, 4);
    g_assert_cmphex(t.last_write, ==, 0x55);
    g_assert_cmphex(t.last_off, ==, 0xffc);
    /* Moving a BAR unmaps the old range; disabling decoding unmaps all. */
    cfg1_write(p.pio, devfn, 0x10, 0xc0100000, 4);
    g_assert_false(iobus_read(p.mmio, 0xc0001000, &(uint64_t){ 0 }, 4));
    g_assert_cmphex(in(p.mmio, 0xc0100000, 4), ==, 0xab00);
    cfg1_write(p.pio, devfn, PCI_COMMAND, 0, 2);
    g_assert_false(iobus_read(p.mmio, 0xc0100000, &(uint64_t){ 0 }, 4));
    g_assert_false(iobus_read(p.pio, 0xc040, &(uint64_t){ 0 }, 4));

    /* INTx: slot 3 INTA -> GSI 19; INTX_DISABLE masks the line, not the status. */
    g_assert_cmpuint(cfg1_read(p.pio, devfn, PCI_INTERRUPT_LINE, 1), ==, 19);
    pci_device_set_intx(&t.pci, true);
    g_assert_true(p.rec.level[19]);
    g_assert_cmphex(cfg1_read(p.pio, devfn, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, !=, 0);
    cfg1_write(p.pio, devfn, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    g_assert_false(p.rec.level[19]);
    cfg1_write(p.pio, devfn, PCI_COMMAND, 0, 2);
    g_assert_true(p.rec.level[19]);
    pci_device_set_intx(&t.pci, false);
    g_assert_false(p.rec.level[19]);
    pci_bus_remove_device(p.bus, &t.pci);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0, 4), ==, 0xffffffff);
    pci_teardown(&p);
}

static unsigned tdev_resets;

static void tdev_reset(PciDevice *d)
{
    tdev_resets++;
}

static const PciDeviceOps tdev_pci_ops = { .reset = tdev_reset };

/* A system reset puts the header back to power-on values and unmaps BARs. */
static void test_pci_bus_reset(void)
{
    Pci p;
    TestDev t;
    g_autoptr(GError) err = NULL;
    unsigned devfn = PCI_DEVFN(3, 0);
    uint8_t cap;

    pci_setup(&p);
    tdev_init(&t);
    cap = pci_device_add_capability(&t.pci, PCI_CAP_ID_MSIX, 12);
    t.pci.wmask[cap + 3] = 0xc0;               /* MSI-X enable and mask-all */
    t.pci.ops = &tdev_pci_ops;
    tdev_resets = 0;
    g_assert_true(pci_bus_add_device(p.bus, &t.pci, devfn, &err));

    cfg1_write(p.pio, devfn, 0x10, 0xc0001000, 4);
    cfg1_write(p.pio, devfn, 0x14, 0xc040, 4);
    cfg1_write(p.pio, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
               PCI_COMMAND_MASTER, 2);
    cfg1_write(p.pio, devfn, cap + 3, 0x80, 1);
    pci_device_set_intx(&t.pci, true);
    g_assert_true(p.rec.level[19]);
    g_assert_cmphex(in(p.mmio, 0xc0001010, 4), ==, 0xab10);

    pci_bus_reset(p.bus);
    g_assert_cmpuint(tdev_resets, ==, 1);
    g_assert_cmphex(cfg1_read(p.pio, devfn, PCI_COMMAND, 2), ==, 0);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x10, 4), ==, 0);
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0x14, 4), ==, 0x1);    /* I/O flag */
    g_assert_false(iobus_read(p.mmio, 0xc0001000, &(uint64_t){ 0 }, 4));
    g_assert_false(iobus_read(p.pio, 0xc040, &(uint64_t){ 0 }, 4));
    g_assert_false(p.rec.level[19]);
    g_assert_cmphex(cfg1_read(p.pio, devfn, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, ==, 0);
    g_assert_cmphex(cfg1_read(p.pio, devfn, cap + 3, 1), ==, 0);
    /* Read-only identity and the machine's interrupt routing stay. */
    g_assert_cmphex(cfg1_read(p.pio, devfn, 0, 4), ==, 0x10011af4);
    g_assert_cmpuint(cfg1_read(p.pio, devfn, PCI_INTERRUPT_LINE, 1), ==, 19);
    g_assert_cmphex(cfg1_read(p.pio, devfn, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, !=, 0);
    /* The guest can program it again afterwards. */
    cfg1_write(p.pio, devfn, 0x10, 0xc0002000, 4);
    cfg1_write(p.pio, devfn, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    g_assert_cmphex(in(p.mmio, 0xc0002004, 4), ==, 0xab04);
    pci_bus_remove_device(p.bus, &t.pci);
    pci_teardown(&p);
}

/* 2024-02-29 13:45:56 UTC, a Thursday. */
static int64_t fixed_clock(void *opaque)
{
    return *(int64_t *)opaque;
}

static uint8_t cmos_read(IoBus *pio, uint8_t idx)
{
    out(pio, 0x70, idx, 1);
    return (uint8_t)in(pio, 0x71, 1);
}

static void cmos_write(IoBus *pio, uint8_t idx, uint8_t v)
{
    out(pio, 0x70, idx, 1);
    out(pio, 0x71, v, 1);
}

static void test_rtc(void)
{
    IoBus *pio = iobus_new("pio");
    g_autoptr(GError) err = NULL;
    Rtc *rtc = rtc_new(pio, NULL, NULL, &err);
    int64_t now = 1709214356;

    g_assert_nonnull(rtc);
    rtc_set_clock(rtc, fixed_clock, &now);
    /* BCD, 24 hours by default. */
    g_assert_cmphex(cmos_read(pio, RTC_SECONDS), ==, 0x56);
    g_assert_cmphex(cmos_read(pio, RTC_MINUTES), ==, 0x45);
    g_assert_cmphex(cmos_read(pio, RTC_HOURS), ==, 0x13);
    g_assert_cmphex(cmos_read(pio, RTC_DAY_OF_WEEK), ==, 5);
    g_assert_cmphex(cmos_read(pio, RTC_DAY_OF_MONTH), ==, 0x29);
    g_assert_cmphex(cmos_read(pio, RTC_MONTH), ==, 0x02);
    g_assert_cmphex(cmos_read(pio, RTC_YEAR), ==, 0x24);
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x20);
    g_assert_cmphex(cmos_read(pio, RTC_REG_A) & 0x80, ==, 0);   /* no UIP */
    g_assert_cmphex(cmos_read(pio, RTC_REG_D), ==, RTC_D_VRT);
    g_assert_cmphex(in(pio, 0x70, 1), ==, 0xff);
    /* Binary and 12-hour modes change only the encoding. */
    cmos_write(pio, RTC_REG_B, RTC_B_DM_BINARY);
    g_assert_cmpuint(cmos_read(pio, RTC_MINUTES), ==, 45);
    g_assert_cmphex(cmos_read(pio, RTC_HOURS), ==, 0x80 | 1);      /* 1 PM */
    cmos_write(pio, RTC_REG_B, RTC_B_24H);
    /* Setting the time moves the clock; it keeps running from there. */
    cmos_write(pio, RTC_MINUTES, 0x07);
    g_assert_cmphex(cmos_read(pio, RTC_MINUTES), ==, 0x07);
    now += 61;
    g_assert_cmphex(cmos_read(pio, RTC_MINUTES), ==, 0x08);
    g_assert_cmphex(cmos_read(pio, RTC_SECONDS), ==, 0x57);
    cmos_write(pio, RTC_YEAR, 0x99);
    g_assert_cmphex(cmos_read(pio, RTC_YEAR), ==, 0x99);
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x20);
    cmos_write(pio, RTC_HOURS, 0xff);                 /* garbage: no crash */
    cmos_read(pio, RTC_HOURS);
    /* NMI mask is bit 7 of the index write; CMOS RAM keeps its bytes. */
    out(pio, 0x70, 0x80 | 0x40, 1);
    g_assert_true(rtc_nmi_masked(rtc));
    out(pio, 0x71, 0x5a, 1);
    g_assert_cmphex(cmos_read(pio, 0x40), ==, 0x5a);
    g_assert_false(rtc_nmi_masked(rtc));
    rtc_cmos_set(rtc, 0x34, 0x12);
    g_assert_cmphex(cmos_read(pio, 0x34), ==, 0x12);
    /* Register C reads clear; writes to C/D are ignored. */
    cmos_write(pio, RTC_REG_D, 0);
    g_assert_cmphex(cmos_read(pio, RTC_REG_D), ==, RTC_D_VRT);
    g_assert_cmphex(cmos_read(pio, RTC_REG_C), ==, 0);
    rtc_free(rtc);
    g_assert_false(iobus_read(pio, 0x71, &(uint64_t){ 0 }, 1));
    iobus_free(pio);
}

static void test_rtc_host_clock(void)
{
    Rtc *rtc = rtc_new(NULL, NULL, NULL, NULL);
    GDateTime *t = g_date_time_new_now_utc();
    uint8_t year;

    rtc_io_ops.write(rtc, 0, RTC_YEAR, 1);
    year = (uint8_t)rtc_io_ops.read(rtc, 1, 1);
    g_assert_cmphex(year, ==, ((g_date_time_get_year(t) % 100) / 10) << 4 |
                              (g_date_time_get_year(t) % 10));
    g_date_time_unref(t);
    rtc_free(rtc);
}

/*
 * The century register makes any year 0000..9999 reachable; years before 1900
 * (or before 0) must still read as BCD digits 00..99, as the chip's counters
 * wrap, never reaching a negative shift in the conversion.
 */
static void test_rtc_century_wraps(void)
{
    IoBus *pio = iobus_new("pio");
    Rtc *rtc = rtc_new(pio, NULL, NULL, NULL);
    int64_t now = 1709214356;        /* 2024-02-29 13:45:56 UTC */

    rtc_set_clock(rtc, fixed_clock, &now);
    cmos_write(pio, RTC_CENTURY, 0x18);
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x18);
    cmos_write(pio, RTC_YEAR, 0x50);
    g_assert_cmphex(cmos_read(pio, RTC_YEAR), ==, 0x50);    /* 1850 */
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x18);
    cmos_write(pio, RTC_CENTURY, 0x00);                      /* 0050 */
    g_assert_cmphex(cmos_read(pio, RTC_YEAR), ==, 0x50);
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x00);
    cmos_write(pio, RTC_YEAR, 0x00);                         /* 0000 */
    g_assert_cmphex(cmos_read(pio, RTC_YEAR), ==, 0x00);
    /* 9999-12-31 23:59:59 counts on to 0000-01-01. */
    cmos_write(pio, RTC_CENTURY, 0x99);
    cmos_write(pio, RTC_YEAR, 0x99);
    cmos_write(pio, RTC_MONTH, 0x12);
    cmos_write(pio, RTC_DAY_OF_MONTH, 0x31);
    cmos_write(pio, RTC_HOURS, 0x23);
    cmos_write(pio, RTC_MINUTES, 0x59);
    cmos_write(pio, RTC_SECONDS, 0x59);
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x99);
    now++;
    g_assert_cmphex(cmos_read(pio, RTC_SECONDS), ==, 0x00);
    g_assert_cmphex(cmos_read(pio, RTC_YEAR), ==, 0x00);
    g_assert_cmphex(cmos_read(pio, RTC_CENTURY), ==, 0x00);
    g_assert_cmphex(cmos_read(pio, RTC_MONTH), ==, 0x01);
    cmos_write(pio, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
    cmos_write(pio, RTC_CENTURY, 19);                        /* 1900 */
    g_assert_cmpuint(cmos_read(pio, RTC_YEAR), ==, 0);
    cmos_write(pio, RTC_YEAR, 255);                          /* 1955 */
    g_assert_cmpuint(cmos_read(pio, RTC_YEAR), ==, 55);
    g_assert_cmpuint(cmos_read(pio, RTC_CENTURY), ==, 19);
    /* Every byte in every register, in both encodings: UBSan watches. */
    for (unsigned mode = 0; mode < 4; mode++) {
        cmos_write(pio, RTC_REG_B, (mode & 1 ? RTC_B_DM_BINARY : 0) |
                                   (mode & 2 ? RTC_B_24H : 0));
        for (unsigned v = 0; v < 256; v += 5) {
            static const uint8_t regs[] = { RTC_SECONDS, RTC_MINUTES,
                RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH, RTC_MONTH,
                RTC_YEAR, RTC_CENTURY };

            for (size_t r = 0; r < G_N_ELEMENTS(regs); r++) {
                cmos_write(pio, regs[r], v);
                for (size_t k = 0; k < G_N_ELEMENTS(regs); k++) {
                    cmos_read(pio, regs[k]);
                }
            }
        }
    }
    rtc_free(rtc);
    iobus_free(pio);
}

static void test_i8042(void)
{
    IoBus *pio = iobus_new("pio");
    Recorder rec = { 0 };
    IrqLine kbd = rec_line(&rec, 1), aux = rec_line(&rec, 12);
    g_autoptr(GError) err = NULL;
    I8042 *k = i8042_new(pio, &kbd, &aux, &rec_power, &rec, NULL, &err);
    unsigned edges;

    g_assert_nonnull(k);
    g_assert_cmphex(in(pio, 0x64, 1) & I8042_STATUS_OBF, ==, 0);
    out(pio, 0x64, 0xaa, 1);                          /* self test */
    g_assert_cmphex(in(pio, 0x64, 1) & I8042_STATUS_OBF, ==, I8042_STATUS_OBF);
    g_assert_true(rec.level[1]);
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0x55);
    g_assert_false(rec.level[1]);
    out(pio, 0x64, 0x20, 1);                          /* read command byte */
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0x45);
    out(pio, 0x64, 0x60, 1);                          /* write command byte */
    out(pio, 0x60, 0x47, 1);                          /* + AUX interrupts */
    out(pio, 0x64, 0x20, 1);
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0x47);
    out(pio, 0x64, 0xd3, 1);                          /* AUX loopback */
    out(pio, 0x60, 0x5a, 1);
    g_assert_cmphex(in(pio, 0x64, 1) & (I8042_STATUS_OBF | I8042_STATUS_AUXDATA),
                    ==, I8042_STATUS_OBF | I8042_STATUS_AUXDATA);
    g_assert_true(rec.level[12]);
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0x5a);
    g_assert_false(rec.level[12]);
    edges = rec.edges[1];
    out(pio, 0x60, 0xff, 1);                          /* keyboard reset */
    g_assert_cmpuint(rec.edges[1], ==, edges + 1);
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0xfa);
    g_assert_cmpuint(rec.edges[1], ==, edges + 2);    /* a new edge per byte */
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0xaa);
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0x00);      /* empty */
    for (unsigned i = 0; i < 100; i++) {              /* overrun is harmless */
        out(pio, 0x60, 0xf2, 1);
    }
    for (unsigned i = 0; i < 100; i++) {
        in(pio, 0x60, 1);
    }
    g_assert_cmphex(in(pio, 0x64, 1) & I8042_STATUS_OBF, ==, 0);
    out(pio, 0x64, 0x42, 1);                          /* unknown: ignored */
    g_assert_cmpuint(rec.resets, ==, 0);
    out(pio, 0x64, 0xd1, 1);                          /* output port, keep CPU */
    out(pio, 0x60, 0x03, 1);
    g_assert_cmpuint(rec.resets, ==, 0);
    out(pio, 0x64, 0xd1, 1);                          /* output port bit 0 low */
    out(pio, 0x60, 0x02, 1);
    g_assert_cmpuint(rec.resets, ==, 1);
    out(pio, 0x64, 0xfe, 1);                          /* pulse reset line */
    g_assert_cmpuint(rec.resets, ==, 2);
    out(pio, 0x64, 0xff, 1);                          /* pulse nothing */
    g_assert_cmpuint(rec.resets, ==, 2);
    i8042_free(k);
    iobus_free(pio);
}

static void test_pm_poweroff(void)
{
    IoBus *pio = iobus_new("pio");
    Recorder rec = { 0 };
    g_autoptr(GError) err = NULL;
    IrqLine sci = rec_line(&rec, X86_SCI_IRQ);
    AcpiPm *pm = acpi_pm_new(pio, X86_PM_BASE, &sci, &rec_power, &rec, NULL, &err);
    const uint16_t cnt = X86_PM_BASE + ACPI_PM_CNT_OFFSET;

    g_assert_nonnull(pm);
    g_assert_cmphex(in(pio, cnt, 2) & ACPI_PM1_CNT_SCI_EN, ==, ACPI_PM1_CNT_SCI_EN);
    out(pio, cnt, (1 << 10) | ACPI_PM1_CNT_SLP_EN, 2);       /* S1: refused */
    g_assert_cmpuint(rec.poweroffs, ==, 0);
    out(pio, cnt, (5 << 10), 2);                             /* no SLP_EN */
    g_assert_cmpuint(rec.poweroffs, ==, 0);
    g_assert_cmphex(in(pio, cnt, 2) & ACPI_PM1_CNT_SLP_TYP, ==, 5 << 10);
    out(pio, cnt + 1, (ACPI_PM1_CNT_SLP_EN | (5 << 10)) >> 8, 1);  /* byte write */
    g_assert_cmpuint(rec.poweroffs, ==, 1);
    out(pio, cnt, (ACPI_PM_SLP_TYP_S5 << 10) | ACPI_PM1_CNT_SLP_EN, 2);
    g_assert_cmpuint(rec.poweroffs, ==, 2);
    g_assert_cmpuint(rec.resets, ==, 0);
    acpi_pm_free(pm);
    iobus_free(pio);
}

static void test_pm_power_button(void)
{
    IoBus *pio = iobus_new("pio");
    Recorder rec = { 0 };
    IrqLine sci = rec_line(&rec, X86_SCI_IRQ);
    AcpiPm *pm = acpi_pm_new(pio, X86_PM_BASE, &sci, &rec_power, &rec, NULL, NULL);
    uint32_t t0, t1;

    acpi_pm_power_button(pm);                                /* not enabled yet */
    g_assert_cmphex(in(pio, X86_PM_BASE, 2), ==, ACPI_PM1_STS_PWRBTN);
    g_assert_false(rec.level[X86_SCI_IRQ]);
    out(pio, X86_PM_BASE + 2, ACPI_PM1_STS_PWRBTN, 2);       /* PM1_EN */
    g_assert_true(rec.level[X86_SCI_IRQ]);
    g_assert_cmphex(in(pio, X86_PM_BASE, 4), ==,
                    ACPI_PM1_STS_PWRBTN | (ACPI_PM1_STS_PWRBTN << 16));
    out(pio, X86_PM_BASE, 0x0001, 2);                        /* clears nothing set */
    g_assert_true(rec.level[X86_SCI_IRQ]);
    out(pio, X86_PM_BASE, ACPI_PM1_STS_PWRBTN, 2);           /* write 1 to clear */
    g_assert_false(rec.level[X86_SCI_IRQ]);
    g_assert_cmphex(in(pio, X86_PM_BASE, 2), ==, 0);
    g_assert_cmpuint(rec.poweroffs, ==, 0);
    /* The PM timer runs at 3.58 MHz. */
    t0 = (uint32_t)in(pio, X86_PM_BASE + ACPI_PM_TMR_OFFSET, 4);
    g_usleep(2000);
    t1 = (uint32_t)in(pio, X86_PM_BASE + ACPI_PM_TMR_OFFSET, 4);
    g_assert_cmpuint(t1 - t0, >=, 2000 * 3);
    acpi_pm_free(pm);
    iobus_free(pio);
}

/* System reset of the platform devices (the machine's platform_reset). */
static void test_rtc_reset(void)
{
    IoBus *pio = iobus_new("pio");
    Recorder rec = { 0 };
    IrqLine irq = rec_line(&rec, 8);
    Rtc *rtc = rtc_new(pio, &irq, NULL, NULL);
    uint8_t b = RTC_B_24H | RTC_B_DM_BINARY | RTC_B_UIE;

    cmos_write(pio, RTC_REG_B, b | RTC_B_PIE | RTC_B_AIE | RTC_B_SQWE);
    rtc_cmos_set(rtc, RTC_REG_C, 0xe0);
    cmos_write(pio, 0x20, 0x5a);                        /* plain CMOS byte */
    rtc_reset(rtc);
    g_assert_cmphex(cmos_read(pio, RTC_REG_B), ==, b);  /* as QEMU: UIE kept */
    g_assert_cmphex(cmos_read(pio, RTC_REG_C), ==, 0);
    g_assert_cmphex(cmos_read(pio, 0x20), ==, 0x5a);
    g_assert_false(rec.level[8]);
    rtc_free(rtc);
    iobus_free(pio);
}

static void test_i8042_reset(void)
{
    IoBus *pio = iobus_new("pio");
    Recorder rec = { 0 };
    IrqLine kbd = rec_line(&rec, 1), aux = rec_line(&rec, 12);
    I8042 *k = i8042_new(pio, &kbd, &aux, &rec_power, &rec, NULL, NULL);

    out(pio, 0x64, 0x60, 1);                            /* write command byte */
    out(pio, 0x60, 0x03, 1);
    out(pio, 0x64, 0xaa, 1);                            /* self test: 0x55 queued */
    g_assert_true(rec.level[1]);
    out(pio, 0x64, 0xd1, 1);                            /* output port write pending */
    i8042_reset(k);
    g_assert_false(rec.level[1]);
    g_assert_cmphex(in(pio, 0x64, 1) & I8042_STATUS_OBF, ==, 0);
    out(pio, 0x60, 0x02, 1);                            /* not an output-port write now */
    g_assert_cmpuint(rec.resets, ==, 0);
    while (in(pio, 0x64, 1) & I8042_STATUS_OBF) {       /* the keyboard's ACK */
        in(pio, 0x60, 1);
    }
    out(pio, 0x64, 0x20, 1);
    g_assert_cmphex(in(pio, 0x60, 1), ==, 0x45);        /* power-on command byte */
    i8042_free(k);
    iobus_free(pio);
}

static void test_pm_reset(void)
{
    IoBus *pio = iobus_new("pio");
    Recorder rec = { 0 };
    IrqLine sci = rec_line(&rec, X86_SCI_IRQ);
    AcpiPm *pm = acpi_pm_new(pio, X86_PM_BASE, &sci, &rec_power, &rec, NULL, NULL);

    out(pio, X86_PM_BASE + 2, ACPI_PM1_STS_PWRBTN, 2);
    out(pio, X86_PM_BASE + ACPI_PM_CNT_OFFSET, 3 << ACPI_PM1_CNT_SLP_TYP_SHIFT, 2);
    acpi_pm_power_button(pm);
    g_assert_true(rec.level[X86_SCI_IRQ]);
    acpi_pm_reset(pm);
    g_assert_false(rec.level[X86_SCI_IRQ]);
    g_assert_cmphex(in(pio, X86_PM_BASE, 4), ==, 0);    /* PM1_STS, PM1_EN */
    g_assert_cmphex(in(pio, X86_PM_BASE + ACPI_PM_CNT_OFFSET, 2), ==,
                    ACPI_PM1_CNT_SCI_EN);
    acpi_pm_power_button(pm);                           /* not enabled any more */
    g_assert_false(rec.level[X86_SCI_IRQ]);
    acpi_pm_free(pm);
    iobus_free(pio);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pci/host-ids", test_pci_host_ids);
    g_test_add_func("/pci/bogus-accesses", test_pci_bogus);
    g_test_add_func("/pci/reset-register", test_pci_reset_register);
    g_test_add_func("/pci/device-bars-intx-caps", test_pci_device_bars);
    g_test_add_func("/pci/bus-reset", test_pci_bus_reset);
    g_test_add_func("/rtc/registers", test_rtc);
    g_test_add_func("/rtc/host-clock", test_rtc_host_clock);
    g_test_add_func("/rtc/century-wraps", test_rtc_century_wraps);
    g_test_add_func("/i8042/probe-and-reset", test_i8042);
    g_test_add_func("/acpi-pm/poweroff", test_pm_poweroff);
    g_test_add_func("/acpi-pm/power-button", test_pm_power_button);
    g_test_add_func("/rtc/reset", test_rtc_reset);
    g_test_add_func("/i8042/reset", test_i8042_reset);
    g_test_add_func("/acpi-pm/reset", test_pm_reset);
    return g_test_run();
}
