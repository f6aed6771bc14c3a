/*
 * MSI-X for PCI devices: the capability in config space, the vector table and
 * the pending-bit array (PBA) in a 32-bit memory BAR of their own, and the
 * delivery of each vector to KVM through an irqfd bound to an MSI route. The
 * PCI spec's masking rules apply: a vector fired while it (or the whole
 * function) is masked sets its pending bit and is delivered when unmasked.
 *
 * How a device uses it:
 *   msix_init(&x, &dev->pci, nvec, bar, kvm, &err);   (before pci_bus_add_device)
 *   its PciDeviceOps.config_written calls msix_config_written()
 *   msix_enabled(&x) ? msix_notify(&x, vector) : INTx
 *   msix_reset(&x) on device reset, msix_cleanup(&x) when freed.
 * Without KVM (kvm NULL, unit tests) messages go to x.signal(x.signal_opaque,
 * addr, data).
 *
 * Threading: msix_notify may run on an iothread while vCPUs write the table;
 * the Msix has its own lock and never calls back into the device.
 */
#ifndef HW_PCI_MSIX_H
#define HW_PCI_MSIX_H

#include "accel/kvm/kvm.h"
#include "hw/pci/pci.h"

#define MSIX_MAX_VECTORS     64
#define MSIX_ENTRY_SIZE      16
#define MSIX_BAR_SIZE        4096        /* table at 0, PBA at MSIX_PBA_OFFSET */
#define MSIX_PBA_OFFSET      2048
#define MSIX_CAP_LEN         12
/* Message Control bits (capability offset 2). */
#define MSIX_CTRL_ENABLE     0x8000
#define MSIX_CTRL_MASKALL    0x4000
/* Vector Control bit (entry offset 12). */
#define MSIX_ENTRY_MASKED    0x1

typedef struct Msix {
    PciDevice *dev;
    KvmState *kvm;                 /* NULL: deliver through signal() */
    void (*signal)(void *opaque, uint64_t addr, uint32_t data);
    void *signal_opaque;
    GMutex lock;
    unsigned nr;                   /* vectors */
    uint8_t cap;                   /* config offset of the capability */
    uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
    uint64_t pba;                  /* one bit per vector */
    int efd[MSIX_MAX_VECTORS];     /* irqfd per vector, -1 until first use */
    int gsi[MSIX_MAX_VECTORS];     /* MSI route per vector, -1 until first use */
    bool stale[MSIX_MAX_VECTORS];  /* address/data changed since routed */
    bool enabled, masked_all;      /* cached Message Control bits */
} Msix;

/* Declares BAR 'bar' (mem32, MSIX_BAR_SIZE) and the capability on 'd'. */
bool msix_init(Msix *x, PciDevice *d, unsigned nr, unsigned bar, KvmState *kvm,
               GError **errp);
void msix_cleanup(Msix *x);
/* Every vector masked, nothing pending, MSI-X disabled (device reset). */
void msix_reset(Msix *x);
/* Forward the device's config_written hook here; notices enable/mask-all. */
void msix_config_written(Msix *x, unsigned off, uint32_t val, unsigned size);
bool msix_enabled(Msix *x);
/* Fires 'vector' (out-of-range vectors are a guest mistake and are dropped). */
void msix_notify(Msix *x, unsigned vector);
bool msix_is_pending(Msix *x, unsigned vector);

/* Migration (tern layout): table (MSIX_MAX_VECTORS * 16 bytes) and PBA; the
 * enable/mask bits travel in the device's config space (PCIDevice). Loading
 * re-derives them from there and re-creates KVM routes on first use. */
extern const VMStateDescription vmstate_msix;

#endif
