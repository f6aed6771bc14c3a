/*
 * The PCI bus: config-space semantics shared by every device (read-only IDs,
 * write masks, write-1-to-clear status bits, BAR sizing and placement, the
 * capability list, INTx with the command register's disable bit) and the
 * mapping of BARs onto the machine's port and MMIO buses while the command
 * register enables decoding. One lock serializes config accesses and mapping.
 */
#include <string.h>

#include "hw/pci/pci.h"
#include "tern/error.h"

struct PciBus {
    GRecMutex lock;               /* device hooks may re-enter (INTx) */
    IoBus *pio;
    IoBus *mmio;
    PciDevice *devices[256];          /* by devfn */
    PciIntxRouter router;
    void *router_opaque;
};

PciBus *pci_bus_new(IoBus *pio, IoBus *mmio)
{
    PciBus *bus = g_new0(PciBus, 1);

    g_rec_mutex_init(&bus->lock);
    bus->pio = pio;
    bus->mmio = mmio;
    return bus;
}

static void bar_unmap(PciDevice *d, PciBar *bar)
{
    if (bar->mapped) {
        iobus_unregister(bar->type == PCI_BAR_IO ? d->bus->pio : d->bus->mmio,
                         bar->addr);
        bar->mapped = false;
    }
}

void pci_bus_free(PciBus *bus)
{
    if (!bus) {
        return;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(bus->devices); i++) {
        PciDevice *d = bus->devices[i];

        for (unsigned b = 0; d && b < PCI_NUM_BARS; b++) {
            bar_unmap(d, &d->bars[b]);
        }
    }
    g_rec_mutex_clear(&bus->lock);
    g_free(bus);
}

void pci_bus_set_intx_router(PciBus *bus, PciIntxRouter router, void *opaque)
{
    bus->router = router;
    bus->router_opaque = opaque;
}

void pci_device_init(PciDevice *d, const char *name, uint16_t vendor,
                     uint16_t device, uint32_t class_code, bool has_intx)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    pci_set_word(d->config + PCI_VENDOR_ID, vendor);
    pci_set_word(d->config + PCI_DEVICE_ID, device);
    d->config[PCI_CLASS_PROG] = class_code & 0xff;
    pci_set_word(d->config + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    pci_set_word(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
                 PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    /* Master abort, target aborts and parity errors are write-1-to-clear. */
    pci_set_word(d->w1cmask + PCI_STATUS, 0xf900);
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    if (has_intx) {
        d->config[PCI_INTERRUPT_PIN] = 1;       /* INTA# */
    }
}

bool pci_device_set_bar(PciDevice *d, unsigned idx, PciBarType type,
                        uint64_t size, bool prefetchable, const IoOps *ops,
                        void *opaque, GError **errp)
{
    unsigned words = type == PCI_BAR_MEM64 ? 2 : 1;
    uint64_t min = type == PCI_BAR_IO ? 4 : 16;
    uint32_t low_flags;

    if (idx + words > PCI_NUM_BARS || type == PCI_BAR_NONE || size < min ||
        (size & (size - 1)) || (type != PCI_BAR_MEM64 && size > (1ULL << 31)) ||
        (type == PCI_BAR_IO && size > 256)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: bad BAR %u (size 0x%" PRIx64 ")", d->name, idx, size);
        return false;
    }
    d->bars[idx] = (PciBar){ .type = type, .prefetchable = prefetchable,
                             .size = size, .ops = ops, .opaque = opaque };
    low_flags = type == PCI_BAR_IO ? 0x1 :
                (type == PCI_BAR_MEM64 ? 0x4 : 0) | (prefetchable ? 0x8 : 0);
    pci_set_long(d->config + PCI_BASE_ADDRESS_0 + 4 * idx, low_flags);
    pci_set_long(d->wmask + PCI_BASE_ADDRESS_0 + 4 * idx,
                 (uint32_t)~(size - 1) & (type == PCI_BAR_IO ? ~3u : ~15u));
    if (words == 2) {
        pci_set_long(d->wmask + PCI_BASE_ADDRESS_0 + 4 * (idx + 1),
                     (uint32_t)(~(size - 1) >> 32));
    }
    return true;
}

uint8_t pci_device_add_capability(PciDevice *d, uint8_t cap_id, uint8_t len)
{
    unsigned off = ALIGN_UP(d->last_cap ? d->cap_end : 0x40u, 4u);

    if (len < 2 || off + len > PCI_CONFIG_SPACE_SIZE) {
        return 0;
    }
    d->config[off] = cap_id;
    d->config[off + 1] = 0;
    if (d->last_cap) {
        d->config[d->last_cap + 1] = (uint8_t)off;
    } else {
        d->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
        pci_set_word(d->config + PCI_STATUS,
                     pci_get_word(d->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
    }
    d->last_cap = (uint8_t)off;
    d->cap_end = (uint16_t)(off + len);
    return (uint8_t)off;
}

bool pci_bus_add_device(PciBus *bus, PciDevice *d, int devfn, GError **errp)
{
    bool ok = true;

    g_rec_mutex_lock(&bus->lock);
    if (devfn < 0) {
        for (devfn = 0; devfn < 256 && bus->devices[devfn]; devfn += 8) {
        }
    }
    if (devfn > 255 || bus->devices[devfn]) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY, "%s: %s", d->name,
                    devfn > 255 ? "no free PCI slot" : "PCI address in use");
        ok = false;
    } else {
        bus->devices[devfn] = d;
        d->bus = bus;
        d->devfn = (uint8_t)devfn;
        d->added = true;
        if (bus->router && d->config[PCI_INTERRUPT_PIN]) {
            d->intx = bus->router(bus->router_opaque, PCI_SLOT(devfn),
                                  d->config[PCI_INTERRUPT_PIN] - 1u);
            d->config[PCI_INTERRUPT_LINE] = (uint8_t)d->intx.gsi;
        }
        memcpy(d->power_on, d->config, sizeof(d->power_on));
    }
    g_rec_mutex_unlock(&bus->lock);
    return ok;
}

void pci_bus_remove_device(PciBus *bus, PciDevice *d)
{
    g_rec_mutex_lock(&bus->lock);
    if (d->added && bus->devices[d->devfn] == d) {
        for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
            bar_unmap(d, &d->bars[b]);
        }
        bus->devices[d->devfn] = NULL;
        d->added = false;
    }
    g_rec_mutex_unlock(&bus->lock);
}

PciDevice *pci_bus_find_device(PciBus *bus, uint8_t devfn)
{
    PciDevice *d;

    g_rec_mutex_lock(&bus->lock);
    d = bus->devices[devfn];
    g_rec_mutex_unlock(&bus->lock);
    return d;
}

static void update_intx(PciDevice *d)
{
    bool disabled = pci_get_word(d->config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
    uint16_t status = pci_get_word(d->config + PCI_STATUS) & ~PCI_STATUS_INTERRUPT;

    pci_set_word(d->config + PCI_STATUS,
                 status | (d->intx_level ? PCI_STATUS_INTERRUPT : 0));
    irq_set(&d->intx, d->intx_level && !disabled);
}

void pci_device_set_intx(PciDevice *d, bool level)
{
    if (!d->bus) {
        return;
    }
    g_rec_mutex_lock(&d->bus->lock);
    d->intx_level = level;
    update_intx(d);
    g_rec_mutex_unlock(&d->bus->lock);
}

static void update_bars(PciDevice *d);

static void device_reset(PciDevice *d)
{
    for (unsigned i = 0; i < PCIE_CONFIG_SPACE_SIZE; i++) {
        uint8_t m = d->wmask[i] | d->w1cmask[i];

        d->config[i] = (uint8_t)((d->config[i] & ~m) | (d->power_on[i] & m));
    }
    d->intx_level = false;
    update_intx(d);
    update_bars(d);
    if (d->ops && d->ops->reset) {
        d->ops->reset(d);
    }
}

void pci_bus_reset(PciBus *bus)
{
    g_rec_mutex_lock(&bus->lock);
    for (unsigned i = 0; i < G_N_ELEMENTS(bus->devices); i++) {
        if (bus->devices[i]) {
            device_reset(bus->devices[i]);
        }
    }
    g_rec_mutex_unlock(&bus->lock);
}

/* The address a BAR decodes, or 0 if it is unprogrammed or impossible (as
 * while the guest sizes it with all ones). */
static uint64_t bar_address(const PciDevice *d, unsigned idx)
{
    const PciBar *bar = &d->bars[idx];
    uint64_t v = pci_get_long(d->config + PCI_BASE_ADDRESS_0 + 4 * idx);

    switch (bar->type) {
    case PCI_BAR_IO:
        v &= ~3ULL;
        return v + bar->size <= 0x10000 ? v : 0;
    case PCI_BAR_MEM32:
        v &= ~15ULL;
        return v + bar->size <= (1ULL << 32) ? v : 0;
    case PCI_BAR_MEM64:
        v = (v & ~15ULL) |
            ((uint64_t)pci_get_long(d->config + PCI_BASE_ADDRESS_0 + 4 * idx + 4) << 32);
        return v < (1ULL << 52) ? v : 0;
    default:
        return 0;
    }
}

static void update_bars(PciDevice *d)
{
    uint16_t cmd = pci_get_word(d->config + PCI_COMMAND);

    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        PciBar *bar = &d->bars[i];
        bool io = bar->type == PCI_BAR_IO;
        bool on = cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
        uint64_t addr = bar->type != PCI_BAR_NONE && on ? bar_address(d, i) : 0;
        GError *err = NULL;

        if (bar->mapped && bar->addr == addr) {
            continue;
        }
        bar_unmap(d, bar);
        bar->addr = addr;
        if (addr && bar->ops) {
            if (iobus_register(io ? d->bus->pio : d->bus->mmio, addr, bar->size,
                               bar->ops, bar->opaque, &err)) {
                bar->mapped = true;
            } else {
                tern_warn_guest("%s: BAR %u at 0x%" PRIx64 " not mapped: %s",
                                d->name, i, addr, err->message);
                g_error_free(err);
            }
        }
    }
}

static uint32_t config_read_default(const PciDevice *d, unsigned off, unsigned size)
{
    uint32_t v = 0;

    for (unsigned i = 0; i < size; i++) {
        v |= (uint32_t)d->config[off + i] << (8 * i);
    }
    return v;
}

static void config_write_default(PciDevice *d, unsigned off, uint32_t val,
                                 unsigned size)
{
    for (unsigned i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        uint8_t wm = d->wmask[off + i], w1c = d->w1cmask[off + i];

        d->config[off + i] = (uint8_t)(((d->config[off + i] & ~wm) | (b & wm)) &
                                       ~(b & w1c));
    }
    if (off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) {
        update_intx(d);
    }
    if ((off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) ||
        (off < PCI_BASE_ADDRESS_0 + 24 && off + size > PCI_BASE_ADDRESS_0)) {
        update_bars(d);
    }
}

static bool access_ok(unsigned off, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && off % size == 0 &&
           off + size <= PCIE_CONFIG_SPACE_SIZE;
}

uint32_t pci_bus_config_read(PciBus *bus, uint8_t busnr, uint8_t devfn,
                             unsigned off, unsigned size)
{
    uint32_t v = size >= 4 ? 0xffffffff : (1u << (8 * size)) - 1;
    PciDevice *d;

    if (busnr != 0 || !access_ok(off, size)) {
        return v;
    }
    g_rec_mutex_lock(&bus->lock);
    d = bus->devices[devfn];
    if (d && !(d->ops && d->ops->config_read &&
               d->ops->config_read(d, off, size, &v))) {
        v = config_read_default(d, off, size);
    }
    g_rec_mutex_unlock(&bus->lock);
    return v;
}

void pci_bus_config_write(PciBus *bus, uint8_t busnr, uint8_t devfn,
                          unsigned off, uint32_t val, unsigned size)
{
    PciDevice *d;

    if (busnr != 0 || !access_ok(off, size)) {
        return;
    }
    g_rec_mutex_lock(&bus->lock);
    d = bus->devices[devfn];
    if (d && !(d->ops && d->ops->config_write &&
               d->ops->config_write(d, off, val, size))) {
        config_write_default(d, off, val, size);
        if (d->ops && d->ops->config_written) {
            d->ops->config_written(d, off, val, size);
        }
    }
    g_rec_mutex_unlock(&bus->lock);
}

/*
 * Migration: QEMU's "PCIDevice" layout, version 2 (oldest loadable 2):
 *   be32 version (2) | config space (256 bytes, or 4096 when the device has
 *   a PCI Express capability) | 4 x be32 INTx level of pins A-D
 * Loading refuses a config space whose identity bytes (IDs, class, header
 * type, subsystem, capability pointer, interrupt pin) differ from the
 * destination's device, then re-derives the INTx line and the BAR mappings.
 */
#define PCI_VMSTATE_VERSION 2
#define PCI_NUM_PINS        4

static bool has_express_cap(void *opaque, int version_id)
{
    const PciDevice *d = opaque;
    unsigned off = d->config[PCI_CAPABILITY_LIST];

    /* Bounded walk: a list can have at most 48 entries below 0x100. */
    for (unsigned n = 0; off >= 0x40 && off < PCI_CONFIG_SPACE_SIZE - 1 && n < 48; n++) {
        if (d->config[off] == PCI_CAP_ID_EXP) {
            return true;
        }
        off = d->config[off + 1];
    }
    return false;
}

static bool lacks_express_cap(void *opaque, int version_id)
{
    return !has_express_cap(opaque, version_id);
}

static bool get_pci_version(QEMUFile *f, void *pv, size_t size,
                            const VMStateField *field, GError **errp)
{
    int32_t v = (int32_t)qemu_get_be32(f);

    if (!qemu_file_get_error(f) && (v < 1 || v > PCI_VMSTATE_VERSION)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "PCIDevice: version %" PRId32 " is not 1..%d", v,
                    PCI_VMSTATE_VERSION);
        return false;
    }
    return true;
}

static void put_pci_version(QEMUFile *f, const void *pv, size_t size,
                            const VMStateField *field)
{
    qemu_put_be32(f, PCI_VMSTATE_VERSION);
}

static const VMStateInfo pci_info_version = {
    .name = "int32 le", .get = get_pci_version, .put = put_pci_version,
};

/* Bytes that say which device this is; they must match on load. */
static bool is_identity_byte(unsigned off)
{
    return off < PCI_COMMAND ||
           (off >= PCI_REVISION_ID && off < PCI_REVISION_ID + 4) ||
           off == PCI_HEADER_TYPE ||
           (off >= PCI_SUBSYSTEM_VENDOR_ID && off < PCI_SUBSYSTEM_ID + 2) ||
           off == PCI_CAPABILITY_LIST || off == PCI_INTERRUPT_PIN;
}

static bool get_pci_config(QEMUFile *f, void *pv, size_t size,
                           const VMStateField *field, GError **errp)
{
    PciDevice *d = container_of(pv, PciDevice, config);
    g_autofree uint8_t *in = g_malloc(size);

    if (qemu_get_buffer(f, in, size) != size) {
        return true;      /* the sticky error tells */
    }
    for (unsigned i = 0; i < size; i++) {
        if (is_identity_byte(i) && in[i] != d->config[i]) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "PCI device %s: config byte 0x%x is 0x%02x in the "
                        "stream, 0x%02x here (a different device?)", d->name,
                        i, in[i], d->config[i]);
            return false;
        }
    }
    for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
        unsigned off = PCI_BASE_ADDRESS_0 + 4 * b;

        /* BAR type bits are read-only: keep ours, take the address. */
        for (unsigned i = off; i < off + 4; i++) {
            in[i] = (uint8_t)((d->config[i] & ~d->wmask[i]) |
                              (in[i] & d->wmask[i]));
        }
    }
    memcpy(d->config, in, size);
    return true;
}

static void put_pci_config(QEMUFile *f, const void *pv, size_t size,
                           const VMStateField *field)
{
    qemu_put_buffer(f, pv, size);
}

static const VMStateInfo pci_info_config = {
    .name = "pci config", .get = get_pci_config, .put = put_pci_config,
};

/* The device's own INTx pin (0 = INTA#), or -1 without INTx. */
static int intx_pin(const PciDevice *d)
{
    uint8_t pin = d->config[PCI_INTERRUPT_PIN];

    return pin >= 1 && pin <= PCI_NUM_PINS ? pin - 1 : -1;
}

static bool get_pci_irq_state(QEMUFile *f, void *pv, size_t size,
                              const VMStateField *field, GError **errp)
{
    PciDevice *d = container_of(pv, PciDevice, intx_level);
    bool level = false;

    for (int pin = 0; pin < PCI_NUM_PINS; pin++) {
        uint32_t v = qemu_get_be32(f);

        if (qemu_file_get_error(f)) {
            return true;
        }
        if (v > 1 || (v && pin != intx_pin(d))) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "PCI device %s: INTx pin %d level %" PRIu32
                        " is impossible here", d->name, pin, v);
            return false;
        }
        level |= v != 0;
    }
    d->intx_level = level;
    return true;
}

static void put_pci_irq_state(QEMUFile *f, const void *pv, size_t size,
                              const VMStateField *field)
{
    const PciDevice *d = container_of(pv, PciDevice, intx_level);

    for (int pin = 0; pin < PCI_NUM_PINS; pin++) {
        qemu_put_be32(f, pin == intx_pin(d) && d->intx_level);
    }
}

static const VMStateInfo pci_info_irq_state = {
    .name = "pci irq state", .get = get_pci_irq_state, .put = put_pci_irq_state,
};

static bool pci_device_post_load(void *opaque, int version_id, GError **errp)
{
    PciDevice *d = opaque;

    if (!d->bus) {
        return true;          /* not on a bus: nothing to map or raise */
    }
    g_rec_mutex_lock(&d->bus->lock);
    update_intx(d);
    update_bars(d);
    g_rec_mutex_unlock(&d->bus->lock);
    return true;
}

const VMStateDescription vmstate_pci_device = {
    .name = "PCIDevice",
    .version_id = PCI_VMSTATE_VERSION,
    .minimum_version_id = PCI_VMSTATE_VERSION,
    .post_load = pci_device_post_load,
    .fields = (const VMStateField[]) {
        { .name = "version_id", .size = 4, .info = &pci_info_version,
          .offset = offsetof(PciDevice, devfn) },
        { .name = "config", .size = PCI_CONFIG_SPACE_SIZE,
          .info = &pci_info_config, .offset = offsetof(PciDevice, config),
          .field_exists = lacks_express_cap },
        { .name = "config", .size = PCIE_CONFIG_SPACE_SIZE,
          .info = &pci_info_config, .offset = offsetof(PciDevice, config),
          .field_exists = has_express_cap },
        { .name = "irq_state", .size = PCI_NUM_PINS * sizeof(int32_t),
          .info = &pci_info_irq_state,
          .offset = offsetof(PciDevice, intx_level) },
        VMSTATE_END_OF_LIST()
    },
};
