/*
 * Fuzzes the legacy platform devices as a hostile guest drives them: the input
 * is a sequence of 12-byte port/MMIO accesses (kind, size, address, value)
 * replayed against the PCI host bridge (mechanism #1 and ECAM) with one device
 * that has BARs and capabilities, the CMOS RTC, the i8042 and the ACPI PM1
 * block. Reset/poweroff requests are only counted. Nothing may crash or leak.
 */
#include <string.h>

#include "hw/acpi/pm.h"
#include "hw/i386/pc-layout.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"

#define ECAM_BASE 0xb0000000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned requests;

static void count(void *opaque) { requests++; }
static const PowerOps power = { .reset = count, .poweroff = count };
static void irq(void *opaque, unsigned gsi, bool level) { }

static uint64_t bar_read(void *opaque, uint64_t off, unsigned sz) { return off; }
static void bar_write(void *opaque, uint64_t off, uint64_t v, unsigned sz) { }
static const IoOps bar_ops = { .read = bar_read, .write = bar_write };

static IrqLine route(void *opaque, unsigned slot, unsigned pin)
{
    return (IrqLine){ .set = irq, .gsi = X86_PCI_INTX_GSI(slot, pin) };
}

static void replay(IoBus *pio, IoBus *mmio, const uint8_t *p)
{
    static const unsigned sizes[4] = { 1, 2, 4, 8 };
    unsigned size = sizes[p[1] & 3];
    uint32_t addr = p[2] | (p[3] << 8) | ((uint32_t)p[4] << 16) | ((uint32_t)p[5] << 24);
    uint64_t val = 0, out;
    bool is_mmio = p[0] & 2;

    memcpy(&val, p + 6, 6);
    if (is_mmio) {
        /* Mostly ECAM; with bit 7 anywhere (BARs the input programmed). */
        addr = p[0] & 0x80 ? addr : (uint32_t)(ECAM_BASE + (addr & 0x1fffff));
    } else {
        addr &= 0xffff;
    }
    if (p[0] & 1) {
        iobus_write(is_mmio ? mmio : pio, addr, val, size);
    } else {
        iobus_read(is_mmio ? mmio : pio, addr, &out, size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IoBus *pio = iobus_new("pio"), *mmio = iobus_new("mmio");
    PciBus *bus = pci_bus_new(pio, mmio);
    PciHost *host;
    PciDevice dev;
    IrqLine line = { .set = irq };
    Rtc *rtc = rtc_new(pio, &line, NULL, NULL);
    I8042 *kbd = i8042_new(pio, &line, &line, &power, NULL, NULL, NULL);
    AcpiPm *pm = acpi_pm_new(pio, X86_PM_BASE, &line, &power, NULL, NULL, NULL);

    pci_bus_set_intx_router(bus, route, NULL);
    host = pci_host_new(bus, pio, mmio, ECAM_BASE, 2, &power, NULL, NULL, NULL);
    pci_device_init(&dev, "fuzz", 0x1af4, 0x1000, 0x020000, true);
    pci_device_set_bar(&dev, 0, PCI_BAR_IO, 64, false, &bar_ops, NULL, NULL);
    pci_device_set_bar(&dev, 1, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL, NULL);
    pci_device_set_bar(&dev, 2, PCI_BAR_MEM64, 1 << 20, true, &bar_ops, NULL, NULL);
    pci_device_add_capability(&dev, PCI_CAP_ID_VNDR, 20);
    pci_bus_add_device(bus, &dev, PCI_DEVFN(1, 0), NULL);
    for (size_t off = 0; off + 12 <= size; off += 12) {
        replay(pio, mmio, data + off);
        if (data[off] & 4) {
            pci_device_set_intx(&dev, data[off] & 8);
        }
        if (data[off] == 0xff) {
            acpi_pm_power_button(pm);
        }
    }
    pci_bus_remove_device(bus, &dev);
    pci_host_free(host);
    pci_bus_free(bus);
    acpi_pm_free(pm);
    i8042_free(kbd);
    rtc_free(rtc);
    iobus_free(pio);
    iobus_free(mmio);
    return 0;
}
