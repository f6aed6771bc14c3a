/*
 * The ACPI tables tern gives its x86 guests: RSDP (v2), XSDT and RSDT, FADT
 * (full, not hardware-reduced: PM1a at AcpiConfig.pm_base, SCI, the 0xcf9 reset
 * register, fixed-feature power button), FACS, MADT (one Local APIC or x2APIC
 * entry per CPU, the IOAPIC, IRQ0->GSI2 and SCI overrides, LINT1 NMI), DSDT
 * (PCI root bridge with _CRS and _PRT, COM1, i8042, RTC, ECAM reservation,
 * _S5) and MCFG when ECAM is offered.
 *
 * Machine:
 *   AcpiConfig cfg; acpi_config_default(&cfg, nr_cpus);
 *   cfg.pci_mmio32_base = ...; cfg.pci_mmio32_size = ...; (ecam_* if ECAM)
 *   uint64_t rsdp;
 *   if (!acpi_build(mem, &cfg, &rsdp, errp)) ...   (rsdp -> PVH rsdp_paddr)
 * The tables go to [cfg.tables_addr, cfg.tables_end) and the RSDP to
 * cfg.rsdp_addr; by default both are in the 0xE0000 segment, which the machine
 * reports as E820_RESERVED (see hw/i386/pc-layout.h).
 */
#ifndef HW_I386_ACPI_BUILD_H
#define HW_I386_ACPI_BUILD_H

#include "tern/common.h"
#include "hw/core/guest-memory.h"

#define ACPI_MAX_CPUS 255

typedef struct AcpiConfig {
    unsigned nr_cpus;
    uint32_t apic_ids[ACPI_MAX_CPUS];  /* default: 0..nr_cpus-1 */
    uint64_t lapic_addr;
    uint64_t ioapic_addr;
    uint8_t ioapic_id;
    uint16_t pm_base;                  /* hw/acpi/pm.h register block */
    uint8_t sci_irq;
    uint16_t reset_port;               /* 0: no reset register */
    uint8_t reset_value;
    uint64_t ecam_base;                /* 0: no ECAM, no MCFG */
    uint8_t ecam_end_bus;              /* window = (end_bus + 1) MiB */
    uint16_t pci_io_base, pci_io_size; /* I/O window above the legacy ports */
    uint64_t pci_mmio32_base, pci_mmio32_size;
    uint64_t pci_mmio64_base, pci_mmio64_size;   /* size 0: none */
    unsigned pci_slots;                /* _PRT entries for slots 0..n-1 */
    uint64_t rsdp_addr;
    uint64_t tables_addr, tables_end;
} AcpiConfig;

/* One built table: its signature, guest address and bytes. */
typedef struct AcpiTable {
    char sig[5];
    uint64_t addr;
    GByteArray *data;
} AcpiTable;

typedef struct AcpiTables {
    GPtrArray *tables;    /* AcpiTable*, RSDP first */
} AcpiTables;

/* The pc-layout.h defaults for nr_cpus CPUs (ECAM off, no 64-bit window). */
void acpi_config_default(AcpiConfig *cfg, unsigned nr_cpus);
/* Builds every table with final addresses and checksums, without writing. */
AcpiTables *acpi_tables_build(const AcpiConfig *cfg, GError **errp);
void acpi_tables_free(AcpiTables *t);
/* Builds and writes them into guest RAM; *rsdp_addr gets the RSDP address. */
bool acpi_build(GuestMemory *mem, const AcpiConfig *cfg, uint64_t *rsdp_addr,
                GError **errp);
/* Sum of the bytes (a valid table sums to 0). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
