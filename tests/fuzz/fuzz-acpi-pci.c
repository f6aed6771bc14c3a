/*
 * Fuzzes the PCI and ACPI configuration a guest reaches: config reads and
 * writes through mechanism #1 (0xcf8/0xcfc, unaligned and odd sizes too)
 * and ECAM on the host bridge and on a virtio-blk-pci function, its BARs
 * sized, enabled and moved, its MSI-X table and PBA and virtio registers
 * wherever the guest put them, raw port I/O (reset control 0xcf9, PM1
 * event/control/timer, the GPE block QEMU uses, which tern leaves empty),
 * power button presses, MSI-X and INTx events and system resets. After every
 * access it checks what the PCI and ACPI specs promise: read-only config
 * bytes keep their power-on values, a mapped BAR decodes exactly where its
 * register and the command register say, BAR sizing reads back the size,
 * no unmasked MSI-X vector stays pending and no message goes out while the
 * function or the vector is masked, the SCI follows PM1 status and enable,
 * SCI_EN reads 1, poweroff and reset requests come exactly from SLP_EN with
 * S5 and from 0xcf9 bit 2; at the end every config byte reads back through
 * both mechanisms as the device holds it.
 *
 * Input: 8-byte records {op, a, b, c, le32 value}; op bits 0-2 kind,
 * bits 3-4 access size (1, 2, 4, 8), bit 5 write:
 *   0 mechanism #1: devfn a, register b, bus c & 1 (c bit 7: enable clear)
 *   1 ECAM: bus c & 1, devfn a, register b | (c >> 1 & 15) << 8
 *   2 the virtio function's BAR (a bit 0: MSI-X BAR), offset b | c << 8
 *   3 port a | b << 8
 *   4 the PM1 block (a % 12), or with a bit 7 the GPE0 block 0xafe0
 *   5 MMIO at 0xb0000000 + (a | b << 8 | c << 16) * 16
 *   6 size BAR b % 6 of the host bridge (a bit 0 clear) or the function
 *   7 event a % 4: MSI-X vector b, power button, INTx level b & 1, reset
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hw/acpi/pm.h"
#include "hw/block/virtio-blk.h"
#include "hw/i386/pc-layout.h"
#include "hw/pci/pci-host.h"

#define ECAM_BASE   0xb0000000ULL
#define ECAM_BUSES  2
#define RAM_SIZE    0x10000u
#define GPE0_BASE   0xafe0
#define REC_SIZE    8
#define MAX_RECORDS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define bug(...) do { fprintf(stderr, "fuzz-acpi-pci: " __VA_ARGS__); \
                      fputc('\n', stderr); abort(); } while (0)

typedef struct Board {
    IoBus *pio, *mmio;
    PciBus *bus;
    PciHost *host;
    PciDevice *bridge;          /* 00:00.0 */
    AcpiPm *pm;
    VirtioBlk *vb;
    VirtioPci *vp;
    GuestMemory mem;
    uint8_t *ram;
    bool sci;                   /* level of the SCI line */
    unsigned resets, poweroffs;
    unsigned want_resets, want_poweroffs;
    unsigned msis;
} Board;

/* The function's image: 1 MiB on tmpfs, opened once per process. */
static Drive *drive(void)
{
    static Drive *d;
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL, *spec = NULL;
    int fd;

    if (d) {
        return d;
    }
    path = g_build_filename(g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm"
                            : g_get_tmp_dir(), "fuzz-acpi-pci-XXXXXX", NULL);
    fd = g_mkstemp(path);
    g_assert(fd >= 0 && ftruncate(fd, 1 * MiB) == 0);
    close(fd);
    spec = g_strdup_printf("file=%s,format=raw,if=none,id=d0", path);
    d = drive_open(spec, 0, &err);
    g_assert_no_error(err);
    unlink(path);               /* the open node keeps it */
    return d;
}

static void on_reset(void *opaque) { ((Board *)opaque)->resets++; }
static void on_poweroff(void *opaque) { ((Board *)opaque)->poweroffs++; }
static const PowerOps power = { .reset = on_reset, .poweroff = on_poweroff };

static void on_sci(void *opaque, unsigned gsi, bool level)
{
    ((Board *)opaque)->sci = level;
}

static void on_intx(void *opaque, unsigned gsi, bool level)
{
}

static IrqLine route(void *opaque, unsigned slot, unsigned pin)
{
    return (IrqLine){ .set = on_intx, .gsi = X86_PCI_INTX_GSI(slot, pin) };
}

/* Called under the MSI-X lock: a message may leave only when neither the
 * function nor the vector it belongs to is masked. */
static void on_msi(void *opaque, uint64_t addr, uint32_t data)
{
    Board *b = opaque;
    Msix *x = &b->vp->msix;
    bool some = false;

    if (!x->enabled || x->masked_all) {
        bug("MSI-X message sent while %s", x->enabled ? "masked" : "disabled");
    }
    for (unsigned v = 0; v < x->nr; v++) {
        const uint8_t *e = x->table + 16 * v;

        some |= !(pci_get_long(e + 12) & MSIX_ENTRY_MASKED) &&
                pci_get_long(e) == (uint32_t)addr &&
                pci_get_long(e + 4) == addr >> 32 && pci_get_long(e + 8) == data;
    }
    if (!some) {
        bug("MSI-X message 0x%" PRIx64 "/0x%x from no unmasked vector", addr, data);
    }
    b->msis++;
}

static void board_new(Board *b)
{
    g_autoptr(GError) err = NULL;
    IrqLine sci = { .set = on_sci, .opaque = b, .gsi = 9 };
    VirtioBlkOptions o = { .serial = "fuzz", .num_queues = 2, .mem = &b->mem };

    memset(b, 0, sizeof(*b));
    b->ram = g_malloc0(RAM_SIZE);
    b->mem = (GuestMemory){ .nr_regions = 1, .fd = -1, .ram_size = RAM_SIZE };
    b->mem.regions[0] = (GuestRegion){ .gpa = 0, .size = RAM_SIZE, .hva = b->ram };
    b->pio = iobus_new("pio");
    b->mmio = iobus_new("mmio");
    b->bus = pci_bus_new(b->pio, b->mmio);
    pci_bus_set_intx_router(b->bus, route, b);
    b->host = pci_host_new(b->bus, b->pio, b->mmio, ECAM_BASE, ECAM_BUSES, &power,
                           b, NULL, &err);
    g_assert_no_error(err);
    b->bridge = pci_bus_find_device(b->bus, 0);
    b->pm = acpi_pm_new(b->pio, X86_PM_BASE, &sci, &power, b, NULL, &err);
    g_assert_no_error(err);
    b->vb = virtio_blk_new(drive(), &o, &err);
    g_assert_no_error(err);
    b->vp = virtio_blk_transport(b->vb);
    b->vp->msix.signal = on_msi;
    b->vp->msix.signal_opaque = b;
    g_assert_true(pci_bus_add_device(b->bus, &b->vp->pci, PCI_DEVFN(3, 0), &err));
}

static void board_free(Board *b)
{
    pci_bus_remove_device(b->bus, &b->vp->pci);
    virtio_blk_free(b->vb);
    acpi_pm_free(b->pm);
    pci_host_free(b->host);
    pci_bus_free(b->bus);
    iobus_free(b->pio);
    iobus_free(b->mmio);
    g_free(b->ram);
}

/* ---- accesses, with the requests they must cause ---- */

static uint64_t value_of(const uint8_t *p)
{
    return p[4] | p[5] << 8 | p[6] << 16 | (uint64_t)p[7] << 24;
}

/* Which bytes [addr, addr + size) of a write cover in [reg, reg + 2), and
 * their value there. */
static uint16_t covered(uint64_t addr, unsigned size, uint64_t val, uint64_t reg,
                        uint16_t *mask)
{
    uint16_t v = 0;

    *mask = 0;
    for (unsigned i = 0; i < size; i++) {
        if (addr + i >= reg && addr + i < reg + 2) {
            unsigned shift = 8 * (unsigned)(addr + i - reg);

            *mask |= (uint16_t)(0xff << shift);
            v |= (uint16_t)(((val >> (8 * i)) & 0xff) << shift);
        }
    }
    return v;
}

static uint64_t pm_reg(Board *b, unsigned off)
{
    uint64_t v;

    iobus_read(b->pio, X86_PM_BASE + off, &v, 2);
    return v;
}

/* A port write: counts the poweroff or reset it must request. */
static void port_write(Board *b, uint64_t port, uint64_t val, unsigned size)
{
    uint16_t mask, v = covered(port, size, val, X86_PM_BASE + ACPI_PM_CNT_OFFSET, &mask);

    if (mask && port >= X86_PM_BASE && port + size <= X86_PM_BASE + ACPI_PM_IO_LEN) {
        uint16_t cnt = (uint16_t)((pm_reg(b, ACPI_PM_CNT_OFFSET) & ~mask) | (v & mask));

        b->want_poweroffs += (cnt & ACPI_PM1_CNT_SLP_EN) &&
            (cnt & ACPI_PM1_CNT_SLP_TYP) >> ACPI_PM1_CNT_SLP_TYP_SHIFT ==
            ACPI_PM_SLP_TYP_S5;
    }
    if (port == PCI_HOST_CONFIG_PORT + 1 && size == 1 && (val & 4)) {
        b->want_resets++;
    }
    iobus_write(b->pio, port, val, size);
}

static void port_access(Board *b, uint64_t port, uint64_t val, unsigned size,
                        bool write)
{
    uint64_t v;

    if (write) {
        port_write(b, port, val, size);
    } else {
        iobus_read(b->pio, port, &v, size);
    }
}

/* The guest's queue kicks run here, on this thread: the I/O thread would
 * make what a run sees depend on timing. */
static bool is_kick(Board *b, uint64_t addr, unsigned *q)
{
    const PciBar *bar = &b->vp->pci.bars[VIRTIO_PCI_BAR];

    if (!bar->mapped || addr < bar->addr + VIRTIO_PCI_NOTIFY_OFF ||
        addr >= bar->addr + VIRTIO_PCI_BAR_SIZE) {
        return false;
    }
    *q = (unsigned)(addr - bar->addr - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
    return true;
}

static void mmio_access(Board *b, uint64_t addr, uint64_t val, unsigned size,
                        bool write)
{
    unsigned q;
    uint64_t v;

    if (write && is_kick(b, addr, &q)) {
        virtio_pci_run_queue(b->vp, q);
    } else if (write) {
        iobus_write(b->mmio, addr, val, size);
    } else {
        iobus_read(b->mmio, addr, &v, size);
    }
}

static uint32_t cfg1_address(unsigned bus, unsigned devfn, unsigned reg, bool on)
{
    return (on ? 0x80000000u : 0) | bus << 16 | devfn << 8 | (reg & 0xfc);
}

static uint64_t cfg1_read(Board *b, unsigned devfn, unsigned reg, unsigned size)
{
    uint64_t v;

    iobus_write(b->pio, PCI_HOST_CONFIG_PORT, cfg1_address(0, devfn, reg, true), 4);
    iobus_read(b->pio, 0xcfc + (reg & 3), &v, size);
    return v;
}

static void cfg1_write(Board *b, unsigned devfn, unsigned reg, uint32_t v,
                       unsigned size)
{
    iobus_write(b->pio, PCI_HOST_CONFIG_PORT, cfg1_address(0, devfn, reg, true), 4);
    iobus_write(b->pio, 0xcfc + (reg & 3), v, size);
}

/* ---- the checks ---- */

static uint64_t decoded(const PciDevice *d, unsigned i)
{
    const PciBar *bar = &d->bars[i];
    uint64_t v = pci_get_long(d->config + PCI_BASE_ADDRESS_0 + 4 * i);

    switch (bar->type) {
    case PCI_BAR_IO:
        return v & ~3ULL;
    case PCI_BAR_MEM64:
        return (v & ~15ULL) |
               (uint64_t)pci_get_long(d->config + PCI_BASE_ADDRESS_0 + 4 * i + 4) << 32;
    default:
        return v & ~15ULL;
    }
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

/* The first 'len' config bytes: the read-only bits (all but the guest's and
 * the interrupt status) are still as at power-on. Word-wise: this runs after
 * every access. */
static void check_fixed_bits(const PciDevice *d, unsigned len)
{
    for (unsigned i = 0; i < len; i += 8) {
        uint64_t fixed = ~(load64(d->wmask + i) | load64(d->w1cmask + i));

        if (i == 0) {
            fixed &= ~((uint64_t)PCI_STATUS_INTERRUPT << 8 * PCI_STATUS);
        }
        if ((load64(d->config + i) ^ load64(d->power_on + i)) & fixed) {
            bug("%s: read-only config bits changed at 0x%x: 0x%016" PRIx64
                ", were 0x%016" PRIx64, d->name, i, load64(d->config + i),
                load64(d->power_on + i));
        }
    }
}

static void check_device(const PciDevice *d)
{
    uint16_t cmd = pci_get_word(d->config + PCI_COMMAND);

    check_fixed_bits(d, PCI_CONFIG_SPACE_SIZE);
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        const PciBar *bar = &d->bars[i];
        bool on = cmd & (bar->type == PCI_BAR_IO ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);

        if (bar->mapped && (!on || bar->addr != decoded(d, i) || !bar->addr)) {
            bug("%s: BAR %u mapped at 0x%" PRIx64 ", its register says 0x%" PRIx64
                " (command 0x%x)", d->name, i, bar->addr, decoded(d, i), cmd);
        }
    }
}

static void check_msix(Board *b)
{
    Msix *x = &b->vp->msix;
    uint16_t ctrl = pci_get_word(b->vp->pci.config + x->cap + 2);

    if (x->enabled != !!(ctrl & MSIX_CTRL_ENABLE) ||
        x->masked_all != !!(ctrl & MSIX_CTRL_MASKALL)) {
        bug("MSI-X control 0x%x, but enabled %d masked %d", ctrl, x->enabled,
            x->masked_all);
    }
    if (x->nr < 64 && x->pba >> x->nr) {
        bug("MSI-X pending bits 0x%" PRIx64 " beyond %u vectors", x->pba, x->nr);
    }
    for (unsigned v = 0; x->enabled && !x->masked_all && v < x->nr; v++) {
        if ((x->pba >> v & 1) &&
            !(pci_get_long(x->table + 16 * v + 12) & MSIX_ENTRY_MASKED)) {
            bug("MSI-X vector %u unmasked but still pending", v);
        }
    }
}

static void check_acpi(Board *b)
{
    uint64_t sts = pm_reg(b, 0), en = pm_reg(b, 2), cnt = pm_reg(b, ACPI_PM_CNT_OFFSET);

    if (!(cnt & ACPI_PM1_CNT_SCI_EN)) {
        bug("PM1_CNT 0x%" PRIx64 " without SCI_EN", cnt);
    }
    if (b->sci != ((sts & en) != 0)) {
        bug("SCI %d with PM1_STS 0x%" PRIx64 " PM1_EN 0x%" PRIx64, b->sci, sts, en);
    }
    if (b->poweroffs != b->want_poweroffs || b->resets != b->want_resets) {
        bug("%u poweroff and %u reset requests, expected %u and %u", b->poweroffs,
            b->resets, b->want_poweroffs, b->want_resets);
    }
}

static void check_board(Board *b)
{
    check_device(b->bridge);
    check_device(&b->vp->pci);
    check_msix(b);
    check_acpi(b);
}

/* Every config byte reads back as the device holds it, both ways. */
static void check_readback(Board *b, const PciDevice *d)
{
    for (unsigned reg = 0; reg < PCI_CONFIG_SPACE_SIZE; reg += 4) {
        uint32_t want = pci_get_long(d->config + reg);
        uint64_t ecam;

        iobus_read(b->mmio, ECAM_BASE + ((uint64_t)d->devfn << 12) + reg, &ecam, 4);
        if (cfg1_read(b, d->devfn, reg, 4) != want || ecam != want) {
            bug("%s: config 0x%x reads 0x%08x (cf8) / 0x%08x (ECAM), holds 0x%08x",
                d->name, reg, (uint32_t)cfg1_read(b, d->devfn, reg, 4),
                (uint32_t)ecam, want);
        }
    }
}

/* BAR sizing as firmware does it: all ones, read back, restore. */
static void size_bar(Board *b, PciDevice *d, unsigned i)
{
    unsigned reg = PCI_BASE_ADDRESS_0 + 4 * i;
    uint32_t old = (uint32_t)cfg1_read(b, d->devfn, reg, 4);
    const PciBar *bar = &d->bars[i];
    uint32_t got, want;

    cfg1_write(b, d->devfn, reg, 0xffffffff, 4);
    got = (uint32_t)cfg1_read(b, d->devfn, reg, 4);
    if (bar->type == PCI_BAR_NONE) {
        want = pci_get_long(d->power_on + reg) & ~pci_get_long(d->wmask + reg);
        want |= pci_get_long(d->wmask + reg);
    } else {
        want = (uint32_t)~(bar->size - 1) & (bar->type == PCI_BAR_IO ? ~3u : ~15u);
        want |= pci_get_long(d->power_on + reg) & (bar->type == PCI_BAR_IO ? 3u : 15u);
    }
    if (got != want) {
        bug("%s: BAR %u sizes as 0x%08x, expected 0x%08x", d->name, i, got, want);
    }
    cfg1_write(b, d->devfn, reg, old, 4);
}

static void event(Board *b, uint8_t which, uint8_t arg)
{
    switch (which % 4) {
    case 0:
        msix_notify(&b->vp->msix, arg);
        break;
    case 1:
        acpi_pm_power_button(b->pm);
        break;
    case 2:
        pci_device_set_intx(&b->vp->pci, arg & 1);
        break;
    default:                    /* the machine's reset order */
        pci_bus_reset(b->bus);
        acpi_pm_reset(b->pm);
        virtio_pci_system_reset(b->vp);
        for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
            if (b->vp->pci.bars[i].mapped) {
                bug("BAR %u still mapped after reset", i);
            }
        }
    }
}

static void record(Board *b, const uint8_t *p)
{
    static const unsigned sizes[4] = { 1, 2, 4, 8 };
    unsigned size = sizes[(p[0] >> 3) & 3];
    bool write = p[0] & 0x20;
    uint64_t val = value_of(p), addr;
    const PciBar *bar;

    switch (p[0] & 7) {
    case 0:
        iobus_write(b->pio, PCI_HOST_CONFIG_PORT,
                    cfg1_address(p[3] & 1, p[1], p[2], !(p[3] & 0x80)), 4);
        port_access(b, 0xcfc + (p[2] & 3), val, size, write);
        break;
    case 1:
        addr = ECAM_BASE + ((uint64_t)(p[3] & 1) << 20) + ((uint64_t)p[1] << 12) +
               (p[2] | (p[3] >> 1 & 15) << 8);
        mmio_access(b, addr, val, size, write);
        break;
    case 2:
        bar = &b->vp->pci.bars[p[1] & 1 ? VIRTIO_PCI_MSIX_BAR : VIRTIO_PCI_BAR];
        mmio_access(b, bar->addr + (p[2] | p[3] << 8), val, size, write);
        break;
    case 3:
        port_access(b, p[1] | p[2] << 8, val, size, write);
        break;
    case 4:
        port_access(b, p[1] & 0x80 ? GPE0_BASE + (p[1] & 3) : X86_PM_BASE + p[1] % 12,
                    val, size, write);
        break;
    case 5:
        mmio_access(b, ECAM_BASE + ((uint64_t)(p[1] | p[2] << 8 | p[3] << 16) << 4),
                    val, size, write);
        break;
    case 6:
        size_bar(b, p[1] & 1 ? &b->vp->pci : b->bridge, p[2] % PCI_NUM_BARS);
        break;
    default:
        event(b, p[1], p[2]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Board *b = g_new(Board, 1);

    board_new(b);
    for (size_t off = 0, n = 0; off + REC_SIZE <= size && n < MAX_RECORDS;
         off += REC_SIZE, n++) {
        record(b, data + off);
        check_board(b);
    }
    check_fixed_bits(b->bridge, PCIE_CONFIG_SPACE_SIZE);
    check_fixed_bits(&b->vp->pci, PCIE_CONFIG_SPACE_SIZE);
    check_readback(b, b->bridge);
    check_readback(b, &b->vp->pci);
    board_free(b);
    g_free(b);
    return 0;
}
