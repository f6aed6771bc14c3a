/*
 * PCI devices and the bus they sit on. A PciDevice is a struct that device code
 * embeds (container_of gets back to the device): a 4 KiB config space with a
 * write mask, up to six BARs, a capability list and an INTx line. The bus owns
 * the standard header semantics: ID registers are read-only, BARs size and move
 * the QEMU/hardware way (write all ones, read back the size mask) and are mapped
 * on the machine's port or MMIO IoBus when the command register enables
 * decoding, status bits are write-1-to-clear. Device hooks see every config
 * access first if they want to (MSI-X, virtio capabilities).
 *
 * How the machine uses it:
 *   PciBus *bus = pci_bus_new(pio_bus, mmio_bus);
 *   PciHost *host = pci_host_new(bus, pio_bus, mmio_bus, ecam_base, ...);  (pci-host.h)
 *   ... devices: pci_device_init(&dev->pci, "virtio-blk", 0x1af4, 0x1042, 0x018000);
 *       pci_device_set_bar(&dev->pci, 0, PCI_BAR_MEM64, 0x4000, false, &ops, dev);
 *       pci_bus_add_device(bus, &dev->pci, -1, &err);   (-1: first free slot)
 *   INTx: the machine sets dev->intx (IrqLine) from X86_PCI_INTX_GSI(slot, pin)
 *   via pci_bus_set_intx_router(); devices call pci_device_set_intx(dev, level).
 *
 * Threading: all config accesses and BAR (un)mapping go through the bus lock.
 */
#ifndef HW_PCI_PCI_H
#define HW_PCI_PCI_H

#include "tern/common.h"
#include "hw/core/iobus.h"
#include "hw/irq.h"
#include "migration/vmstate.h"

#define PCI_CONFIG_SPACE_SIZE   256
#define PCIE_CONFIG_SPACE_SIZE  4096
#define PCI_NUM_BARS            6
#define PCI_SLOT_MAX            32
#define PCI_DEVFN(slot, fn)     ((uint8_t)(((slot) << 3) | (fn)))
#define PCI_SLOT(devfn)         (((devfn) >> 3) & 0x1f)
#define PCI_FUNC(devfn)         ((devfn) & 7)

/* Standard header offsets (type 0). */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define  PCI_COMMAND_IO         0x0001
#define  PCI_COMMAND_MEMORY     0x0002
#define  PCI_COMMAND_MASTER     0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS              0x06
#define  PCI_STATUS_INTERRUPT   0x0008
#define  PCI_STATUS_CAP_LIST    0x0010
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_CLASS_DEVICE        0x0a
#define PCI_HEADER_TYPE         0x0e
#define  PCI_HEADER_TYPE_MULTI_FUNCTION 0x80
#define PCI_BASE_ADDRESS_0      0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d

#define PCI_CAP_ID_MSI          0x05
#define PCI_CAP_ID_VNDR         0x09
#define PCI_CAP_ID_EXP          0x10
#define PCI_CAP_ID_MSIX         0x11

typedef enum PciBarType {
    PCI_BAR_NONE = 0,
    PCI_BAR_IO,         /* port I/O, size >= 4 */
    PCI_BAR_MEM32,
    PCI_BAR_MEM64,      /* uses this BAR and the next */
} PciBarType;

typedef struct PciBar {
    PciBarType type;
    bool prefetchable;
    uint64_t size;          /* power of two */
    uint64_t addr;          /* address the guest programmed (0: none) */
    bool mapped;            /* currently registered on the io/mmio bus */
    const IoOps *ops;       /* region handler, offsets relative to the BAR */
    void *opaque;
} PciBar;

typedef struct PciBus PciBus;
typedef struct PciDevice PciDevice;

/* Optional per-device config hooks. A hook that handles the access returns
 * true; returning false lets the bus apply the default (masked) behaviour. */
typedef struct PciDeviceOps {
    bool (*config_read)(PciDevice *d, unsigned off, unsigned size, uint32_t *val);
    bool (*config_write)(PciDevice *d, unsigned off, uint32_t val, unsigned size);
    /* Called after a default write landed, e.g. to notice MSI-X enable. */
    void (*config_written)(PciDevice *d, unsigned off, uint32_t val, unsigned size);
    /* System reset, after the bus put the header back (pci_bus_reset): the
     * device's own state (queues, MSI-X table via msix_reset, ...). */
    void (*reset)(PciDevice *d);
} PciDeviceOps;

struct PciDevice {
    PciBus *bus;
    uint8_t devfn;
    bool added;
    const char *name;
    uint8_t config[PCIE_CONFIG_SPACE_SIZE];
    uint8_t wmask[PCIE_CONFIG_SPACE_SIZE];    /* guest-writable bits */
    uint8_t w1cmask[PCIE_CONFIG_SPACE_SIZE];  /* write-1-to-clear bits */
    PciBar bars[PCI_NUM_BARS];
    uint8_t last_cap;                         /* tail of the capability list */
    uint16_t cap_end;                         /* first free byte after it */
    IrqLine intx;                             /* set by the bus's router */
    bool intx_level;
    const PciDeviceOps *ops;
    /* Config space as it was when added to the bus: what a reset restores
     * of the guest-writable bits. */
    uint8_t power_on[PCIE_CONFIG_SPACE_SIZE];
};

/* Routes (slot, pin 0..3) to a line; the x86 machine uses X86_PCI_INTX_GSI. */
typedef IrqLine (*PciIntxRouter)(void *opaque, unsigned slot, unsigned pin);

PciBus *pci_bus_new(IoBus *pio, IoBus *mmio);
/* Unmaps the BARs of every device; the devices themselves belong to their owners. */
void pci_bus_free(PciBus *bus);
void pci_bus_set_intx_router(PciBus *bus, PciIntxRouter router, void *opaque);

/*
 * Fills the header: IDs, class (24-bit: base << 16 | sub << 8 | prog-if),
 * header type 0, a writable command register and interrupt line, INTA# as pin
 * if 'has_intx'. Call before pci_bus_add_device().
 */
void pci_device_init(PciDevice *d, const char *name, uint16_t vendor,
                     uint16_t device, uint32_t class_code, bool has_intx);
/* Declares BAR 'idx' (size must be a power of two; MEM64 also takes idx+1). */
bool pci_device_set_bar(PciDevice *d, unsigned idx, PciBarType type,
                        uint64_t size, bool prefetchable, const IoOps *ops,
                        void *opaque, GError **errp);
/* Appends a capability of 'len' bytes (id and next pointer included); returns
 * its offset, or 0 if it does not fit below 0x100. The device fills the body
 * and widens wmask for the fields the guest may write. */
uint8_t pci_device_add_capability(PciDevice *d, uint8_t cap_id, uint8_t len);
/* devfn < 0: function 0 of the first free slot. Fails if taken or full. */
bool pci_bus_add_device(PciBus *bus, PciDevice *d, int devfn, GError **errp);
void pci_bus_remove_device(PciBus *bus, PciDevice *d);
PciDevice *pci_bus_find_device(PciBus *bus, uint8_t devfn);
/*
 * System reset of every device: the guest-writable (and write-1-to-clear)
 * config bits go back to their values when the device was added (command
 * register 0, BARs unprogrammed and unmapped, MSI-X disabled, interrupt
 * line as the machine set it), INTx is lowered, then ops->reset runs.
 */
void pci_bus_reset(PciBus *bus);
/* Raises/lowers INTx unless the guest set INTX_DISABLE; keeps status bit 3. */
void pci_device_set_intx(PciDevice *d, bool level);

/*
 * Config access as the host bridge issues it; bus numbers other than 0 and
 * empty slots read as all ones and ignore writes. off + size must not cross a
 * naturally aligned dword (the host bridge guarantees it).
 */
uint32_t pci_bus_config_read(PciBus *bus, uint8_t busnr, uint8_t devfn,
                             unsigned off, unsigned size);
void pci_bus_config_write(PciBus *bus, uint8_t busnr, uint8_t devfn,
                          unsigned off, uint32_t val, unsigned size);

/* Migration: QEMU's "PCIDevice" (version 2) for the generic part of any PCI
 * device; a device embeds it with VMSTATE_STRUCT(pci, ..., vmstate_pci_device,
 * PciDevice). Loading re-derives INTx and the BAR mappings. */
extern const VMStateDescription vmstate_pci_device;

/* Little-endian helpers for config-space arrays. */
static inline void pci_set_word(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}
static inline void pci_set_long(uint8_t *p, uint32_t v)
{
    pci_set_word(p, v & 0xffff);
    pci_set_word(p + 2, v >> 16);
}
static inline uint16_t pci_get_word(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t pci_get_long(const uint8_t *p)
{
    return pci_get_word(p) | ((uint32_t)pci_get_word(p + 2) << 16);
}

#endif
