/*
 * The Intel MultiProcessor Specification 1.4 tables. Layout at c->addr:
 *   floating pointer (16 bytes): "_MP_", config table address, length 1
 *     (in 16-byte units), spec rev 4, checksum, feature bytes (all 0: a
 *     config table follows, virtual-wire mode)
 *   config table header (44 bytes): "PCMP", base length, rev, checksum, OEM
 *     and product IDs, entry count, LAPIC address, extended length 0
 *   entries, in the order the spec requires: processors (20 bytes each), buses,
 *     the IOAPIC, I/O interrupt assignments, local interrupt assignments
 *     (8 bytes each).
 */
#include <string.h>

#include "hw/i386/mptable.h"
#include "hw/i386/pc-layout.h"
#include "tern/error.h"

#define MP_FLOAT_LEN      16
#define MP_HEADER_LEN     44
#define MP_SPEC_REV       4
#define MP_APIC_VERSION   0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_BUS_PCI        0
#define MP_BUS_ISA        1

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };
#define MP_CPU_ENABLED    0x01
#define MP_CPU_BSP        0x02
#define MP_IRQ_CONFORMS   0x0000
/* CPU signature family 6 and FPU|APIC feature bits: what MP parsers print. */
#define MP_CPU_SIGNATURE  0x00000600
#define MP_CPU_FEATURES   0x00000201

static void put(GByteArray *b, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));

        g_byte_array_append(b, &c, 1);
    }
}

static uint8_t sum8(const uint8_t *p, size_t len)
{
    uint8_t s = 0;

    for (size_t i = 0; i < len; i++) {
        s += p[i];
    }
    return s;
}

static void put_irq_entry(GByteArray *b, uint8_t type, uint8_t int_type,
                          uint8_t bus, uint8_t bus_irq, uint8_t dst,
                          uint8_t dst_pin)
{
    put(b, type, 1);
    put(b, int_type, 1);
    put(b, MP_IRQ_CONFORMS, 2);
    put(b, bus, 1);
    put(b, bus_irq, 1);
    put(b, dst, 1);
    put(b, dst_pin, 1);
}

static unsigned put_processors(GByteArray *b, const MpTableConfig *c)
{
    for (unsigned i = 0; i < c->nr_cpus; i++) {
        put(b, MP_PROCESSOR, 1);
        put(b, c->apic_ids[i], 1);
        put(b, MP_APIC_VERSION, 1);
        put(b, MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0), 1);
        put(b, MP_CPU_SIGNATURE, 4);
        put(b, MP_CPU_FEATURES, 4);
        put(b, 0, 8);
    }
    return c->nr_cpus;
}

static unsigned put_buses_and_ioapic(GByteArray *b, const MpTableConfig *c)
{
    put(b, MP_BUS, 1);
    put(b, MP_BUS_PCI, 1);
    g_byte_array_append(b, (const uint8_t *)"PCI   ", 6);
    put(b, MP_BUS, 1);
    put(b, MP_BUS_ISA, 1);
    g_byte_array_append(b, (const uint8_t *)"ISA   ", 6);
    put(b, MP_IOAPIC, 1);
    put(b, c->ioapic_id, 1);
    put(b, MP_IOAPIC_VERSION, 1);
    put(b, 1, 1);                         /* enabled */
    put(b, c->ioapic_addr, 4);
    return 3;
}

static unsigned put_io_interrupts(GByteArray *b, const MpTableConfig *c)
{
    unsigned n = 0;

    /* ISA: the 8259 ExtINT on pin 0, IRQ0 on pin 2, IRQ n on pin n (not 2). */
    put_irq_entry(b, MP_INTSRC, MP_EXTINT, MP_BUS_ISA, 0, c->ioapic_id, 0);
    n++;
    for (unsigned irq = 0; irq < 16; irq++) {
        if (irq == 2) {
            continue;
        }
        put_irq_entry(b, MP_INTSRC, MP_INT, MP_BUS_ISA, irq, c->ioapic_id,
                      irq == 0 ? 2 : irq);
        n++;
    }
    /* PCI: source IRQ is (slot << 2) | pin, as the spec encodes it. */
    for (unsigned slot = 0; slot < c->pci_slots; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            put_irq_entry(b, MP_INTSRC, MP_INT, MP_BUS_PCI,
                          (uint8_t)((slot << 2) | pin), c->ioapic_id,
                          X86_PCI_INTX_GSI(slot, pin));
            n++;
        }
    }
    return n;
}

static unsigned put_local_interrupts(GByteArray *b)
{
    put_irq_entry(b, MP_LINTSRC, MP_EXTINT, MP_BUS_ISA, 0, 0xff, 0);
    put_irq_entry(b, MP_LINTSRC, MP_NMI, MP_BUS_ISA, 0, 0xff, 1);
    return 2;
}

void mptable_config_default(MpTableConfig *c, unsigned nr_cpus)
{
    memset(c, 0, sizeof(*c));
    c->nr_cpus = nr_cpus;
    for (unsigned i = 0; i < MPTABLE_MAX_CPUS; i++) {
        c->apic_ids[i] = (uint8_t)i;
    }
    c->lapic_addr = (uint32_t)X86_LAPIC_ADDR;
    c->ioapic_addr = (uint32_t)X86_IOAPIC_ADDR;
    c->ioapic_id = X86_IOAPIC_ID;
    c->pci_slots = X86_PCI_SLOTS;
    c->addr = X86_MPTABLE_ADDR;
    c->end = X86_MPTABLE_END;
}

static void put_header(GByteArray *b, const MpTableConfig *c)
{
    g_byte_array_append(b, (const uint8_t *)"PCMP", 4);
    put(b, 0, 2);                         /* base table length, patched */
    put(b, MP_SPEC_REV, 1);
    put(b, 0, 1);                         /* checksum, patched */
    g_byte_array_append(b, (const uint8_t *)"TERN    ", 8);
    g_byte_array_append(b, (const uint8_t *)"TERNVM      ", 12);
    put(b, 0, 4 + 2);                     /* OEM table pointer and size */
    put(b, 0, 2);                         /* entry count, patched */
    put(b, c->lapic_addr, 4);
    put(b, 0, 2 + 1 + 1);                 /* extended table: none */
}

GByteArray *mptable_build_bytes(const MpTableConfig *c, GError **errp)
{
    GByteArray *b;
    uint8_t *table;
    unsigned entries, len;

    if (c->nr_cpus == 0 || c->nr_cpus > MPTABLE_MAX_CPUS || c->pci_slots > 32) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "MP table: %u CPUs, %u PCI slots (need 1..%u, <= 32)",
                    c->nr_cpus, c->pci_slots, MPTABLE_MAX_CPUS);
        return NULL;
    }
    b = g_byte_array_new();
    g_byte_array_append(b, (const uint8_t *)"_MP_", 4);
    put(b, c->addr + MP_FLOAT_LEN, 4);
    put(b, 1, 1);
    put(b, MP_SPEC_REV, 1);
    put(b, 0, 1 + 5);                     /* checksum, feature bytes */
    b->data[10] = (uint8_t)-sum8(b->data, MP_FLOAT_LEN);

    put_header(b, c);
    entries = put_processors(b, c);
    entries += put_buses_and_ioapic(b, c);
    entries += put_io_interrupts(b, c);
    entries += put_local_interrupts(b);
    table = b->data + MP_FLOAT_LEN;
    len = b->len - MP_FLOAT_LEN;
    table[4] = len & 0xff;
    table[5] = (uint8_t)(len >> 8);
    table[34] = entries & 0xff;
    table[35] = (uint8_t)(entries >> 8);
    table[7] = (uint8_t)-sum8(table, len);
    return b;
}

bool mptable_build(GuestMemory *mem, const MpTableConfig *c, GError **errp)
{
    GByteArray *b = mptable_build_bytes(c, errp);
    bool ok;

    if (!b) {
        return false;
    }
    if (c->addr + b->len > c->end || c->addr + b->len > UINT32_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "MP table: %u bytes do not fit at 0x%" PRIx64, b->len, c->addr);
        g_byte_array_unref(b);
        return false;
    }
    ok = guest_mem_write(mem, c->addr, b->data, b->len, errp);
    g_byte_array_unref(b);
    return ok;
}
