/*
 * Fuzz the device VMState descriptions (devstate) with hostile section
 * bodies: the first byte picks the device (UART, RTC, i8042, ACPI PM, PCI
 * device, PCI host bridge; their descriptions as they registered them) and
 * its low bit the stream's version offset, the
 * rest is loaded into a fresh device. A load may fail, but must not crash,
 * and a device that loaded must keep working: it is saved again and driven
 * through its ports, so a bad count that slipped through would show up.
 */
#include <string.h>

#include "hw/acpi/pm.h"
#include "hw/char/serial.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void irq_ignore(void *opaque, unsigned gsi, bool level)
{
}

static void nop_power(void *opaque)
{
}

static const PowerOps no_power = { .reset = nop_power, .poweroff = nop_power };

typedef struct Board {
    IoBus *pio, *mmio;
    IrqLine irq;
    DeviceList *devices;
    SerialState *serial;
    Rtc *rtc;
    I8042 *kbc;
    AcpiPm *pm;
    PciBus *bus;
    PciHost *host;
    PciDevice dev;
} Board;

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    return off;
}

static const IoOps bar_ops = { .read = bar_read };

static void board_new(Board *b)
{
    memset(b, 0, sizeof(*b));
    b->pio = iobus_new("pio");
    b->mmio = iobus_new("mmio");
    b->irq = (IrqLine){ .set = irq_ignore };
    b->devices = device_list_new();
    b->serial = serial_new(NULL, b->irq, b->devices);
    serial_attach(b->serial, b->pio, 0x3f8, NULL);
    b->rtc = rtc_new(b->pio, &b->irq, b->devices, NULL);
    b->kbc = i8042_new(b->pio, &b->irq, &b->irq, &no_power, NULL, b->devices,
                       NULL);
    b->pm = acpi_pm_new(b->pio, 0x600, &b->irq, &no_power, NULL, b->devices,
                        NULL);
    b->bus = pci_bus_new(b->pio, b->mmio);
    b->host = pci_host_new(b->bus, b->pio, b->mmio, 0, 0, &no_power, NULL,
                           b->devices, NULL);
    pci_device_init(&b->dev, "fuzz-dev", 0x1af4, 0x1042, 0x018000, true);
    pci_device_set_bar(&b->dev, 0, PCI_BAR_MEM32, 0x1000, false, &bar_ops,
                       b, NULL);
    pci_device_set_bar(&b->dev, 1, PCI_BAR_IO, 0x20, false, &bar_ops, b, NULL);
    pci_bus_add_device(b->bus, &b->dev, PCI_DEVFN(3, 0), NULL);
}

static void board_free(Board *b)
{
    pci_bus_remove_device(b->bus, &b->dev);
    pci_host_free(b->host);
    pci_bus_free(b->bus);
    acpi_pm_free(b->pm);
    i8042_free(b->kbc);
    rtc_free(b->rtc);
    serial_free(b->serial);
    device_list_free(b->devices);
    iobus_free(b->pio);
    iobus_free(b->mmio);
}

/* Every port the board decodes, read twice and written once. */
static void poke(Board *b)
{
    static const uint16_t ports[] = { 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc,
                                      0x3fd, 0x3fe, 0x3ff, 0x70, 0x71, 0x60,
                                      0x64, 0x600, 0x602, 0x604, 0x608,
                                      0xcf8, 0xcf9, 0xcfc };
    uint64_t v;

    for (size_t i = 0; i < G_N_ELEMENTS(ports); i++) {
        for (int n = 0; n < 20; n++) {
            iobus_read(b->pio, ports[i], &v, 1);
        }
    }
    iobus_read(b->mmio, 0xc0000000, &v, 4);
    serial_receive(b->serial, (const uint8_t *)"xy", 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const VMStateDescription *vmsd;
    const char *idstr;
    void *opaque;
    Board b;
    GBytes *in;
    QEMUFile *f;
    GError *err = NULL;

    if (size < 1) {
        return 0;
    }
    board_new(&b);
    switch ((data[0] >> 1) % 6) {
    case 0: idstr = "serial"; break;
    case 1: idstr = "mc146818rtc"; break;
    case 2: idstr = "i8042"; break;
    case 3: idstr = "acpi-pm"; break;
    case 4: idstr = NULL; break;            /* the embedded PCIDevice */
    default: idstr = "pci-host"; break;
    }
    if (idstr) {
        const DeviceVmstate *e = device_list_find(b.devices, idstr, 0);

        vmsd = e->vmsd;
        opaque = e->opaque;
    } else {
        vmsd = &vmstate_pci_device;
        opaque = &b.dev;
    }
    in = g_bytes_new(data + 1, size - 1);
    f = qemu_file_new_mem_input(in);
    if (vmstate_load(f, vmsd, opaque, vmsd->version_id - (data[0] & 1), &err)) {
        QEMUFile *out = qemu_file_new_mem_output();

        g_assert(vmstate_save(out, vmsd, opaque, NULL, NULL));
        qemu_fclose(out, NULL);
        poke(&b);
    } else {
        g_assert(err);
        g_error_free(err);
    }
    qemu_fclose(f, NULL);
    g_bytes_unref(in);
    board_free(&b);
    return 0;
}
