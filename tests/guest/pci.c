/*
 * PCI configuration space through the legacy ports 0xcf8 (address) and
 * 0xcfc (data), usable from ring 3 thanks to the TSS I/O bitmap, and BAR
 * decoding for drivers (BARs below 8 GiB are identity-mapped).
 */
#include "tg.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

static void select_reg(uint16_t bdf, uint8_t off)
{
    tg_outl(PCI_ADDR, 0x80000000u | (uint32_t)bdf << 8 | (off & 0xfc));
}

uint32_t tg_pci_read32(uint16_t bdf, uint8_t off)
{
    select_reg(bdf, off);
    return tg_inl(PCI_DATA);
}

void tg_pci_write32(uint16_t bdf, uint8_t off, uint32_t v)
{
    select_reg(bdf, off);
    tg_outl(PCI_DATA, v);
}

uint16_t tg_pci_read16(uint16_t bdf, uint8_t off)
{
    select_reg(bdf, off);
    return tg_inw(PCI_DATA + (off & 2));
}

void tg_pci_write16(uint16_t bdf, uint8_t off, uint16_t v)
{
    select_reg(bdf, off);
    tg_outw(PCI_DATA + (off & 2), v);
}

bool tg_pci_find(uint16_t vendor, uint16_t device, uint16_t *bdf)
{
    for (uint16_t b = 0; b < 32 * 8; b++) {
        uint32_t id = tg_pci_read32(b, 0);
        if (id == ((uint32_t)device << 16 | vendor)) {
            *bdf = b;
            return true;
        }
    }
    return false;
}

uint64_t tg_pci_bar(uint16_t bdf, unsigned n)
{
    uint8_t off = (uint8_t)(0x10 + 4 * n);
    uint32_t lo = tg_pci_read32(bdf, off);

    if (n > 5 || (lo & 1)) {                     /* I/O BAR */
        return 0;
    }
    uint64_t addr = lo & ~0xfu;
    if (((lo >> 1) & 3) == 2 && n < 5) {         /* 64-bit memory BAR */
        addr |= (uint64_t)tg_pci_read32(bdf, off + 4) << 32;
    }
    return addr;
}
