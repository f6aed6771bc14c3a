/*
 * The PCI host bridge: configuration mechanism #1 (a dword address register at
 * 0xcf8 with the enable bit 31, bus 23:16, devfn 15:8, register 7:2, and the
 * data window 0xcfc-0xcff), the ECAM window (1 MiB per bus, 4 KiB per
 * function), the bridge's own function 00:00.0, and the reset control register
 * at 0xcf9, which sits inside the same port range as on real chipsets.
 */
#include "hw/pci/pci-host.h"
#include "tern/error.h"

#define CONFIG_ENABLE        0x80000000u
#define RESET_CONTROL_OFFSET 1         /* 0xcf9 */
#define RESET_CONTROL_RST    0x04      /* bit 2 triggers the reset */
#define DATA_OFFSET          4         /* 0xcfc */

struct PciHost {
    PciDevice dev;                     /* 00:00.0 */
    PciBus *bus;
    IoBus *pio;
    IoBus *mmio;
    uint64_t ecam_base;
    GMutex lock;                       /* config_address, reset_control */
    uint32_t config_address;
    uint8_t reset_control;
    const PowerOps *power;
    void *power_opaque;
};

static uint64_t ones(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
}

static uint64_t host_port_read(void *opaque, uint64_t off, unsigned size)
{
    PciHost *h = opaque;
    uint32_t addr;

    g_mutex_lock(&h->lock);
    addr = h->config_address;
    if (off == 0 && size == 4) {
        g_mutex_unlock(&h->lock);
        return addr;
    }
    if (off == RESET_CONTROL_OFFSET && size == 1) {
        uint8_t v = h->reset_control;

        g_mutex_unlock(&h->lock);
        return v;
    }
    g_mutex_unlock(&h->lock);
    if (off < DATA_OFFSET || off + size > 8 || !(addr & CONFIG_ENABLE)) {
        return ones(size);
    }
    return pci_bus_config_read(h->bus, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
                               (addr & 0xfc) + (unsigned)(off - DATA_OFFSET), size);
}

static void host_port_write(void *opaque, uint64_t off, uint64_t val,
                            unsigned size)
{
    PciHost *h = opaque;
    uint32_t addr;

    g_mutex_lock(&h->lock);
    if (off == 0 && size == 4) {
        h->config_address = (uint32_t)val & 0x80fffffcu;
        g_mutex_unlock(&h->lock);
        return;
    }
    if (off == RESET_CONTROL_OFFSET && size == 1) {
        h->reset_control = val & 0x0a;   /* remembers full-reset/system-reset */
        g_mutex_unlock(&h->lock);
        if (val & RESET_CONTROL_RST) {
            power_request_reset(h->power, h->power_opaque);
        }
        return;
    }
    addr = h->config_address;
    g_mutex_unlock(&h->lock);
    if (off < DATA_OFFSET || off + size > 8 || !(addr & CONFIG_ENABLE)) {
        return;
    }
    pci_bus_config_write(h->bus, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
                         (addr & 0xfc) + (unsigned)(off - DATA_OFFSET),
                         (uint32_t)val, size);
}

static const IoOps host_port_ops = {
    .read = host_port_read,
    .write = host_port_write,
};

static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
    PciHost *h = opaque;

    if (size > 4) {
        return ones(size);
    }
    return pci_bus_config_read(h->bus, (off >> 20) & 0xff, (off >> 12) & 0xff,
                               off & 0xfff, size);
}

static void ecam_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    PciHost *h = opaque;

    if (size <= 4) {
        pci_bus_config_write(h->bus, (off >> 20) & 0xff, (off >> 12) & 0xff,
                             off & 0xfff, (uint32_t)val, size);
    }
}

static const IoOps ecam_ops = {
    .read = ecam_read,
    .write = ecam_write,
};

static const VMStateDescription vmstate_pci_host;

PciHost *pci_host_new(PciBus *bus, IoBus *pio, IoBus *mmio, uint64_t ecam_base,
                      unsigned ecam_buses, const PowerOps *power,
                      void *power_opaque, DeviceList *dl, GError **errp)
{
    PciHost *h = g_new0(PciHost, 1);

    h->bus = bus;
    h->pio = pio;
    h->mmio = mmio;
    h->power = power;
    h->power_opaque = power_opaque;
    g_mutex_init(&h->lock);
    pci_device_init(&h->dev, "pci-host", PCI_HOST_VENDOR, PCI_HOST_DEVICE,
                    0x060000 /* host bridge */, false);
    if (ecam_base && (ecam_buses == 0 || ecam_buses > 256)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "PCI host: ECAM window of %u buses", ecam_buses);
        goto fail;
    }
    if (!pci_bus_add_device(bus, &h->dev, PCI_DEVFN(0, 0), errp)) {
        goto fail;
    }
    if (!iobus_register(pio, PCI_HOST_CONFIG_PORT, PCI_HOST_PORT_LEN,
                        &host_port_ops, h, errp)) {
        goto fail_dev;
    }
    if (ecam_base && !iobus_register(mmio, ecam_base,
                                     ecam_buses * PCI_ECAM_BUS_SIZE,
                                     &ecam_ops, h, errp)) {
        iobus_unregister(pio, PCI_HOST_CONFIG_PORT);
        goto fail_dev;
    }
    h->ecam_base = ecam_base;
    device_list_add_vmstate(dl, "pci-host", 0, &vmstate_pci_host, h);
    return h;

fail_dev:
    pci_bus_remove_device(bus, &h->dev);
fail:
    g_mutex_clear(&h->lock);
    g_free(h);
    return NULL;
}

void pci_host_free(PciHost *h)
{
    if (!h) {
        return;
    }
    iobus_unregister(h->pio, PCI_HOST_CONFIG_PORT);
    if (h->ecam_base) {
        iobus_unregister(h->mmio, h->ecam_base);
    }
    pci_bus_remove_device(h->bus, &h->dev);
    g_mutex_clear(&h->lock);
    g_free(h);
}

/*
 * Migration ("pci-host", tern's own layout, version 1):
 *   PCIDevice (00:00.0) | be32 CONFIG_ADDRESS | u8 reset control (0xcf9)
 */
static bool pci_host_post_load(void *opaque, int version_id, GError **errp)
{
    PciHost *h = opaque;

    if (h->config_address & ~0x80fffffcu || h->reset_control & ~0x0au) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "pci-host: impossible CONFIG_ADDRESS 0x%08x or reset "
                    "control 0x%02x", h->config_address, h->reset_control);
        return false;
    }
    return true;
}

static const VMStateDescription vmstate_pci_host = {
    .name = "pci-host",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = pci_host_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(dev, PciHost, 0, vmstate_pci_device, PciDevice),
        VMSTATE_UINT32(config_address, PciHost),
        VMSTATE_UINT8(reset_control, PciHost),
        VMSTATE_END_OF_LIST()
    },
};
