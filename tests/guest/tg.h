/*
 * The guest kit's ring-3 API, for the workloads (idle.c, smp.c, dirty.c and
 * later blk.c): port and MMIO access, COM1 output, time, the command line,
 * PCI config space, interrupts, exit, and workload registration. Everything
 * here runs in ring 3 unless marked otherwise; the only call into ring 0 is
 * tg_wait_irq() (int3).
 */
#ifndef TG_H
#define TG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

#define TG_PAGE_SIZE 4096UL
#define TG_COM1      0x3f8
#define TG_DEBUG_EXIT_PORT 0xf4

/* ---- port I/O (ring 3 reaches every port through the TSS I/O bitmap) ---- */
static inline void tg_outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void tg_outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void tg_outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t tg_inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t tg_inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t tg_inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* ---- MMIO: all of 0-8 GiB is identity-mapped and user-accessible; the
 * 3-4 GiB hole (LAPIC, IOAPIC, 32-bit PCI BARs) is uncached. ---- */
static inline uint32_t tg_mmio_read32(uint64_t addr)
{
    return *(volatile uint32_t *)addr;
}
static inline void tg_mmio_write32(uint64_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}
static inline uint16_t tg_mmio_read16(uint64_t addr)
{
    return *(volatile uint16_t *)addr;
}
static inline void tg_mmio_write16(uint64_t addr, uint16_t v)
{
    *(volatile uint16_t *)addr = v;
}
static inline uint8_t tg_mmio_read8(uint64_t addr)
{
    return *(volatile uint8_t *)addr;
}
static inline void tg_mmio_write8(uint64_t addr, uint8_t v)
{
    *(volatile uint8_t *)addr = v;
}
static inline uint64_t tg_mmio_read64(uint64_t addr)
{
    return *(volatile uint64_t *)addr;
}
static inline void tg_mmio_write64(uint64_t addr, uint64_t v)
{
    *(volatile uint64_t *)addr = v;
}
#define TG_MAPPED_LIMIT (8UL << 30)

static inline void tg_barrier(void)
{
    __asm__ volatile("mfence" ::: "memory");
}
static inline void tg_pause(void)
{
    __asm__ volatile("pause" ::: "memory");
}
static inline uint64_t tg_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* Sleep until the next interrupt (this CPU's timer tick at the latest). */
static inline void tg_wait_irq(void)
{
    __asm__ volatile("int3" ::: "memory");
}

/* ---- time: every CPU has a periodic LAPIC timer at tg_hz() ---- */
extern volatile uint64_t tg_ticks[TG_MAX_CPUS];
unsigned tg_hz(void);
static inline uint64_t tg_now_ticks(void)     /* the BSP's tick count */
{
    return tg_ticks[0];
}
/* Sleep (tg_wait_irq) until cpu's tick count reaches `until`. */
void tg_sleep_until(unsigned cpu, uint64_t until);
/* TSC cycles per second, measured against the BSP's ticks on first use
 * (~10 ticks); and cycles converted to nanoseconds. */
uint64_t tg_tsc_hz(void);
uint64_t tg_tsc_to_ns(uint64_t cycles);

/* ---- COM1 output, one lock so lines from several CPUs never mix ---- */
int tg_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int tg_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "TG done rc=N" and write N to the debug-exit port (QEMU exits with
 * status (N << 1) | 1). Without that device the CPU sleeps forever. */
__attribute__((noreturn)) void tg_exit(int rc);
/* Print "TG FAIL <msg>" and exit with rc 1. */
__attribute__((noreturn, format(printf, 1, 2))) void tg_fail(const char *fmt, ...);
/* Exit with rc 0 if tg.seconds= has passed (checked against BSP ticks). */
void tg_check_deadline(void);

/* ---- command line (-append): space-separated key=value words ---- */
const char *tg_arg_str(const char *key, const char *def);
/* Decimal or 0x hex with optional K/M/G suffix; a malformed value is a
 * TG FAIL naming the key. */
uint64_t tg_arg_u64(const char *key, uint64_t def);
bool tg_arg_present(const char *key);

/* ---- boot information ---- */
unsigned tg_nr_cpus(void);                 /* CPUs online (all checked in) */
/* End of the RAM range that contains addr per the PVH memory map, or 0
 * when the map is missing or addr is not RAM. */
uint64_t tg_ram_end(uint64_t addr);
extern char tg_image_end[];                /* end of the kit's image + bss */

/* ---- interrupts ---- */
extern volatile uint64_t tg_irq_counts[TG_NR_IRQ_VECS];  /* per TG_VEC_IRQ + n */
unsigned tg_lapic_id(void);
/* Route IOAPIC pin `gsi` to vector TG_VEC_IRQ + n on LAPIC `apic_id`. */
void tg_ioapic_route(unsigned gsi, unsigned n, unsigned apic_id, bool level);
void tg_ioapic_mask(unsigned gsi);

/* ---- PCI config space through ports 0xcf8/0xcfc; bdf = bus<<8|dev<<3|fn ---- */
uint32_t tg_pci_read32(uint16_t bdf, uint8_t off);
void tg_pci_write32(uint16_t bdf, uint8_t off, uint32_t v);
uint16_t tg_pci_read16(uint16_t bdf, uint8_t off);
void tg_pci_write16(uint16_t bdf, uint8_t off, uint16_t v);
/* Find the first function with vendor:device on bus 0; false if none. */
bool tg_pci_find(uint16_t vendor, uint16_t device, uint16_t *bdf);
/* Address of memory BAR n (64-bit BARs combined); 0 for I/O or empty. */
uint64_t tg_pci_bar(uint16_t bdf, unsigned n);

/* ---- memory for drivers: zeroed, identity-mapped (pointer == guest
 * physical address), from [TG_HEAP_BASE, TG_HEAP_END); never freed ---- */
void *tg_alloc(size_t size, size_t align);

/* ---- small library ---- */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* ---- workloads: register with TG_WORKLOAD; chosen by tg.workload= ----
 * bsp runs on CPU 0 after "TG ready"; ap (may be NULL: sleep forever) runs
 * on every other CPU once the BSP has chosen the workload. */
struct tg_workload {
    const char *name;
    void (*bsp)(void);
    void (*ap)(unsigned cpu);
};
#define TG_WORKLOAD(id, ...)                                              \
    static const struct tg_workload tg_workload_##id                      \
        __attribute__((used, section(".tg_workloads"), aligned(8))) =     \
            { __VA_ARGS__ }

#endif
