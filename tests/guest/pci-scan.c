/*
 * Workload `pci`: list the functions on PCI bus 0 through the config ports,
 * one `TG pci BB:DD.F id=VVVV:DDDD class=CCCCCC [barN=0x...]` line each
 * (memory BARs that are set), then
 * `TG pci functions=N`. tg.find=VVVV:DDDD additionally requires
 * tg_pci_find() to locate that device (TG FAIL if absent). Exercises the PCI
 * helpers that device drivers such as `blk` use.
 */
#include "tg.h"

static void print_function(uint16_t bdf)
{
    uint32_t id = tg_pci_read32(bdf, 0x00);
    uint32_t class = tg_pci_read32(bdf, 0x08) >> 8;
    char bars[128];
    int len = 0;

    bars[0] = 0;
    for (unsigned n = 0; n < 6; n++) {
        uint64_t addr = tg_pci_bar(bdf, n);
        if (addr && len < (int)sizeof(bars) - 24) {
            len += tg_snprintf(bars + len, sizeof(bars) - (size_t)len, " bar%u=0x%lx", n, addr);
        }
    }
    tg_printf("TG pci %02x:%02x.%x id=%04x:%04x class=%06x%s\n",
              bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7, id & 0xffff, id >> 16, class, bars);
}

static unsigned scan_bus0(void)
{
    unsigned found = 0;

    for (uint16_t dev = 0; dev < 32; dev++) {
        for (uint16_t fn = 0; fn < 8; fn++) {
            uint16_t bdf = (uint16_t)(dev << 3 | fn);
            if ((tg_pci_read32(bdf, 0) & 0xffff) == 0xffff) {
                if (fn == 0) {
                    break;
                }
                continue;
            }
            print_function(bdf);
            found++;
            if (fn == 0 && !(tg_pci_read32(bdf, 0x0c) & 0x800000)) {
                break;                          /* not multi-function */
            }
        }
    }
    return found;
}

/* Four hex digits; false on anything else. */
static bool parse_hex16(const char *s, uint16_t *out)
{
    uint16_t v = 0;

    for (unsigned i = 0; i < 4; i++) {
        char c = (char)(s[i] | 0x20);
        unsigned d;
        if (s[i] >= '0' && s[i] <= '9') {
            d = (unsigned)(s[i] - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return false;
        }
        v = (uint16_t)(v << 4 | d);
    }
    *out = v;
    return true;
}

static void find_wanted(void)
{
    const char *want = tg_arg_str("tg.find", NULL);
    uint16_t vendor, device, bdf;

    if (!want) {
        return;
    }
    if (strlen(want) != 9 || want[4] != ':' || !parse_hex16(want, &vendor)
        || !parse_hex16(want + 5, &device)) {
        tg_fail("bad argument tg.find=%s (want VVVV:DDDD in hex)", want);
    }
    if (!tg_pci_find(vendor, device, &bdf)) {
        tg_fail("pci: no device %04x:%04x on bus 0", vendor, device);
    }
    tg_printf("TG pci found %04x:%04x at %02x:%02x.%x\n", vendor, device,
              bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7);
}

static void pci_bsp(void)
{
    tg_printf("TG pci functions=%u\n", scan_bus0());
    find_wanted();
}

TG_WORKLOAD(pci, .name = "pci", .bsp = pci_bsp);
