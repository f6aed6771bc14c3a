/*
 * The Intel MultiProcessor Specification 1.4 table: the floating pointer and
 * the configuration table with one processor entry per CPU (the first is the
 * BSP), buses PCI (id 0) and ISA (id 1), the IOAPIC, an I/O interrupt entry for
 * each ISA IRQ (IRQ0 -> INTIN2, ExtINT on INTIN0) and each PCI slot's INTA-D
 * (X86_PCI_INTX_GSI), and the local ExtINT/NMI on LINT0/LINT1. Kernels built
 * with MPPARSE use it when ACPI is off or absent.
 *
 * Machine: MpTableConfig c; mptable_config_default(&c, nr_cpus);
 *          mptable_build(mem, &c, &err);   (writes at c.addr, 0xF0000 default)
 */
#ifndef HW_I386_MPTABLE_H
#define HW_I386_MPTABLE_H

#include "tern/common.h"
#include "hw/core/guest-memory.h"

#define MPTABLE_MAX_CPUS 255

typedef struct MpTableConfig {
    unsigned nr_cpus;
    uint8_t apic_ids[MPTABLE_MAX_CPUS];   /* default 0..n-1 */
    uint32_t lapic_addr;
    uint32_t ioapic_addr;
    uint8_t ioapic_id;
    unsigned pci_slots;                   /* I/O interrupt entries for 0..n-1 */
    uint64_t addr;                        /* floating pointer; table follows */
    uint64_t end;
} MpTableConfig;

void mptable_config_default(MpTableConfig *c, unsigned nr_cpus);
/* The floating pointer followed by the config table, as written to c->addr. */
GByteArray *mptable_build_bytes(const MpTableConfig *c, GError **errp);
bool mptable_build(GuestMemory *mem, const MpTableConfig *c, GError **errp);

#endif
