/*
 * The PCI host bridge at 00:00.0: configuration mechanism #1 on ports
 * 0xcf8 (address) / 0xcfc-0xcff (data), an optional ECAM (MMCONFIG) window, and
 * the reset control register at 0xcf9 that shares the port range.
 *
 * Machine: after pci_bus_new(),
 *   PciHost *h = pci_host_new(bus, pio, mmio, ecam_base, ecam_buses,
 *                             &power_ops, machine, m->devices, &err);
 * ecam_base 0 means no ECAM; otherwise the window is ecam_buses MiB long and
 * must be reported in MCFG (acpi_build does it from AcpiConfig.ecam_*).
 */
#ifndef HW_PCI_PCI_HOST_H
#define HW_PCI_PCI_HOST_H

#include "hw/core/device-list.h"
#include "hw/pci/pci.h"
#include "hw/power-ops.h"

#define PCI_HOST_CONFIG_PORT    0xcf8
#define PCI_HOST_PORT_LEN       8           /* 0xcf8..0xcff */
#define PCI_HOST_VENDOR         0x8086      /* like QEMU q35's MCH */
#define PCI_HOST_DEVICE         0x29c0
#define PCI_ECAM_BUS_SIZE       (1ULL << 20)

typedef struct PciHost PciHost;

/* Adds its state (idstr "pci-host", instance 0) to dl; the bus's reset
 * (pci_bus_reset) resets it. */
PciHost *pci_host_new(PciBus *bus, IoBus *pio, IoBus *mmio, uint64_t ecam_base,
                      unsigned ecam_buses, const PowerOps *power,
                      void *power_opaque, DeviceList *dl, GError **errp);
/* Unregisters the ports/window and the 00:00.0 device. */
void pci_host_free(PciHost *h);

#endif
