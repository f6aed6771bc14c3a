/*
 * Fixed addresses of the legacy x86 platform that the firmware-table builders,
 * the Linux loader and the machine must agree on. The machine owns the memory
 * map; these are the defaults it passes to acpi_build()/mptable_build() and the
 * ports its devices use. Everything in [X86_BIOS_AREA_START, 1 MiB) must be
 * guest RAM (so the tables can be written there) but reported as E820_RESERVED.
 */
#ifndef HW_I386_PC_LAYOUT_H
#define HW_I386_PC_LAYOUT_H

#include "tern/common.h"

#define X86_EBDA_START          UINT64_C(0x9fc00)   /* e820: RAM ends here */
#define X86_BIOS_AREA_START     X86_EBDA_START
#define X86_BIOS_AREA_END       UINT64_C(0x100000)

/* ACPI: RSDP at the start of the 0xE0000 segment, tables right after it. */
#define X86_ACPI_RSDP_ADDR      UINT64_C(0xe0000)
#define X86_ACPI_TABLES_ADDR    UINT64_C(0xe0040)
#define X86_ACPI_TABLES_END     UINT64_C(0xf0000)
/* MP floating pointer + config table: in the BIOS ROM area Linux scans. */
#define X86_MPTABLE_ADDR        UINT64_C(0xf0000)
#define X86_MPTABLE_END         UINT64_C(0xf8000)

#define X86_IOAPIC_ADDR         UINT64_C(0xfec00000)
#define X86_IOAPIC_ID           0          /* machine: KVM's IOAPIC id */
#define X86_LAPIC_ADDR          UINT64_C(0xfee00000)
/* Default 32-bit PCI MMIO window given to the guest (ends at the IOAPIC). */
#define X86_PCI_MMIO32_BASE     UINT64_C(0xc0000000)
#define X86_PCI_MMIO32_END      X86_IOAPIC_ADDR

/* Legacy ports and IRQs (ISA IRQ n is GSI n except IRQ0 -> GSI2). */
#define X86_COM1_PORT           0x3f8
#define X86_COM1_IRQ            4
#define X86_I8042_DATA_PORT     0x60
#define X86_I8042_CMD_PORT      0x64
#define X86_I8042_KBD_IRQ       1
#define X86_I8042_AUX_IRQ       12
#define X86_RTC_PORT            0x70
#define X86_RTC_IRQ             8
#define X86_PM_BASE             0x600      /* PM1a_EVT(4) PM1a_CNT(2) PM_TMR(4) */
#define X86_SCI_IRQ             9
#define X86_RESET_CONTROL_PORT  0xcf9      /* handled by the PCI host bridge */
#define X86_RESET_CONTROL_VALUE 0x06       /* full reset + reset CPU */

/* PCI INTx: pin 0..3 = INTA..INTD of slot s goes to GSI 16 + ((s + pin) & 3),
 * level-triggered, active-low (ACPI _PRT and MP table say the same). */
#define X86_PCI_SLOTS           32
#define X86_PCI_INTX_GSI_BASE   16
#define X86_PCI_INTX_GSI(slot, pin) \
    (X86_PCI_INTX_GSI_BASE + (((unsigned)(slot) + (unsigned)(pin)) & 3))

#endif
