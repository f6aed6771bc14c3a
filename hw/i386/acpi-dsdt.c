/*
 * The DSDT: the namespace Linux walks to find the PCI root bridge (PNP0A08 with
 * PNP0A03 as compatible ID, its bus/I/O/MMIO windows in _CRS and the legacy INTx
 * routing in _PRT), the ISA devices tern emulates (COM1, the i8042, the RTC),
 * a motherboard-resources device reserving the ECAM window, and \_S5 whose
 * SLP_TYP the PM1 control register (hw/acpi/pm.c) recognises as poweroff.
 */
#include "hw/acpi/pm.h"
#include "hw/i386/acpi-internal.h"
#include "hw/i386/aml-build.h"
#include "hw/i386/pc-layout.h"

#define PCI_ECAM_BUS_BYTES (1ULL << 20)

static Aml *isa_device(const char *name, const char *hid, unsigned uid,
                       Aml *crs)
{
    Aml *dev = aml_device(name);

    aml_append(dev, aml_name_decl("_HID", aml_eisaid(hid)));
    aml_append(dev, aml_name_decl("_UID", aml_int(uid)));
    aml_append(dev, aml_name_decl("_CRS", crs));
    return dev;
}

static Aml *com1(void)
{
    Aml *crs = aml_resource_template();

    aml_append(crs, aml_io16(X86_COM1_PORT, 8));
    aml_append(crs, aml_irq_noflags(X86_COM1_IRQ));
    return isa_device("COM1", "PNP0501", 1, crs);
}

static Aml *keyboard(void)
{
    Aml *crs = aml_resource_template();

    aml_append(crs, aml_io16(X86_I8042_DATA_PORT, 1));
    aml_append(crs, aml_io16(X86_I8042_CMD_PORT, 1));
    aml_append(crs, aml_irq_noflags(X86_I8042_KBD_IRQ));
    return isa_device("KBD", "PNP0303", 0, crs);
}

static Aml *rtc(void)
{
    Aml *crs = aml_resource_template();

    aml_append(crs, aml_io16(X86_RTC_PORT, 2));
    aml_append(crs, aml_irq_noflags(X86_RTC_IRQ));
    return isa_device("RTC", "PNP0B00", 0, crs);
}

/* PNP0C02 "motherboard resources": Linux uses MMCONFIG only if it is reserved. */
static Aml *ecam_reservation(const AcpiConfig *cfg)
{
    Aml *crs = aml_resource_template();

    aml_append(crs, aml_memory32_fixed((uint32_t)cfg->ecam_base,
               (uint32_t)((cfg->ecam_end_bus + 1ULL) * PCI_ECAM_BUS_BYTES)));
    return isa_device("RES0", "PNP0C02", 0, crs);
}

static Aml *pci_crs(const AcpiConfig *cfg)
{
    Aml *crs = aml_resource_template();
    uint8_t last_bus = cfg->ecam_base ? cfg->ecam_end_bus : 0xff;

    aml_append(crs, aml_word_bus_number(0, last_bus));
    aml_append(crs, aml_io16(0xcf8, 8));
    aml_append(crs, aml_word_io(0, 0xcf7));
    aml_append(crs, aml_word_io(cfg->pci_io_base,
                                cfg->pci_io_base + cfg->pci_io_size - 1));
    aml_append(crs, aml_dword_memory((uint32_t)cfg->pci_mmio32_base,
               (uint32_t)(cfg->pci_mmio32_base + cfg->pci_mmio32_size - 1), false));
    if (cfg->pci_mmio64_size) {
        aml_append(crs, aml_qword_memory(cfg->pci_mmio64_base,
                   cfg->pci_mmio64_base + cfg->pci_mmio64_size - 1, true));
    }
    return crs;
}

/* _PRT: Package(){ Package(){ 0xSSSSFFFF, pin, Zero, GSI }, ... } where the
 * Zero source means "the last field is a GSI" (level, active-low). */
static Aml *pci_prt(const AcpiConfig *cfg)
{
    Aml *prt = aml_package();

    for (unsigned slot = 0; slot < cfg->pci_slots; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            Aml *e = aml_package();

            aml_append(e, aml_int(((uint64_t)slot << 16) | 0xffff));
            aml_append(e, aml_int(pin));
            aml_append(e, aml_zero());
            aml_append(e, aml_int(X86_PCI_INTX_GSI(slot, pin)));
            aml_append(prt, e);
        }
    }
    return prt;
}

static Aml *pci_root(const AcpiConfig *cfg)
{
    Aml *dev = aml_device("PCI0");

    aml_append(dev, aml_name_decl("_HID", aml_eisaid("PNP0A08")));
    aml_append(dev, aml_name_decl("_CID", aml_eisaid("PNP0A03")));
    aml_append(dev, aml_name_decl("_ADR", aml_zero()));
    aml_append(dev, aml_name_decl("_UID", aml_zero()));
    aml_append(dev, aml_name_decl("_SEG", aml_zero()));
    aml_append(dev, aml_name_decl("_BBN", aml_zero()));
    aml_append(dev, aml_name_decl("_CRS", pci_crs(cfg)));
    aml_append(dev, aml_name_decl("_PRT", pci_prt(cfg)));
    return dev;
}

/* \_S5: SLP_TYPa, SLP_TYPb, two reserved. */
static Aml *sleep_state_s5(void)
{
    Aml *pkg = aml_package();

    aml_append(pkg, aml_int(ACPI_PM_SLP_TYP_S5));
    aml_append(pkg, aml_int(ACPI_PM_SLP_TYP_S5));
    aml_append(pkg, aml_zero());
    aml_append(pkg, aml_zero());
    return aml_name_decl("_S5", pkg);
}

GByteArray *acpi_build_dsdt(const AcpiConfig *cfg)
{
    GByteArray *t = acpi_table_begin("DSDT", 2);
    Aml *body = aml_body();
    Aml *sb = aml_scope("\\_SB");
    GByteArray *aml;

    aml_append(sb, pci_root(cfg));
    aml_append(sb, com1());
    aml_append(sb, keyboard());
    aml_append(sb, rtc());
    if (cfg->ecam_base) {
        aml_append(sb, ecam_reservation(cfg));
    }
    aml_append(body, sb);
    aml_append(body, sleep_state_s5());
    aml = aml_serialize(body);
    g_byte_array_append(t, aml->data, aml->len);
    g_byte_array_unref(aml);
    acpi_table_end(t);
    return t;
}
