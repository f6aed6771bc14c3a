/*
 * Interfaces between the guest kit's own parts (boot, APIC, arguments,
 * console), not meant for workloads: those use tg.h.
 */
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

#include "tg.h"

/* boot-info.c: PVH start info, memory map, ACPI MADT */
extern uint32_t tg_start_info_paddr;          /* set by entry.S */
bool tg_boot_info_init(void);                 /* false: bad start info */
const char *tg_boot_cmdline(void);
unsigned tg_acpi_count_cpus(void);            /* 0 if no MADT */

/* ring0.c: the IDT, filled from ring 3 before interrupts are enabled */
void tg_idt_init(void);

/* args.c */
void tg_args_init(const char *cmdline);

/* apic.c */
void tg_lapic_init(unsigned cpu, unsigned hz);
void tg_start_aps(void);

/* console.c: usable from ring 0 (exception reports) */
void tg_console_write(const char *s, size_t len);

/* entry.S: the real-mode AP trampoline, copied to TG_TRAMPOLINE_ADDR */
extern char tg_trampoline_start[], tg_trampoline_end[];

#endif
