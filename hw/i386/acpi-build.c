/*
 * Builds tern's ACPI tables and places them in guest RAM. Layout in memory:
 * the RSDP at cfg->rsdp_addr; from cfg->tables_addr, each table 16-byte aligned
 * (the FACS 64-byte aligned): FACS, DSDT, FADT, MADT, [MCFG], XSDT, RSDT.
 * Tables that point at others are built after them, so every address is final
 * when a checksum is computed. Field offsets follow ACPI 6.x chapter 5.
 */
#include <string.h>

#include "hw/acpi/pm.h"
#include "hw/i386/acpi-internal.h"
#include "hw/i386/pc-layout.h"
#include "tern/error.h"

#define ACPI_OEM_ID        "TERN  "
#define ACPI_OEM_TABLE_ID  "TERNVM  "
#define ACPI_CREATOR_ID    "TERN"
#define ACPI_FADT_REVISION 6
#define ACPI_FADT_LEN      276
#define ACPI_FACS_LEN      64
#define RSDP_LEN           36
#define RSDP_V1_LEN        20

/* FADT flags. Power button bit 4 clear: it is the fixed-feature button. */
#define FADT_WBINVD        (1u << 0)
#define FADT_PROC_C1       (1u << 2)
#define FADT_SLP_BUTTON    (1u << 5)    /* no sleep button */
#define FADT_TMR_VAL_EXT   (1u << 8)    /* 32-bit PM timer */
#define FADT_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags. */
#define BOOT_LEGACY_DEVICES 0x1
#define BOOT_8042           0x2
#define BOOT_NO_VGA         0x4

#define MADT_LOCAL_APIC    0
#define MADT_IOAPIC        1
#define MADT_ISO           2
#define MADT_LAPIC_NMI     4
#define MADT_LOCAL_X2APIC  9
#define MADT_PCAT_COMPAT   1
#define MADT_ISO_LEVEL_HIGH 0x000d      /* level (11b << 2), active high (01b) */

void acpi_put(GByteArray *b, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        uint8_t c = i < 8 ? (uint8_t)(v >> (8 * i)) : 0;   /* wide = padding */

        g_byte_array_append(b, &c, 1);
    }
}

void acpi_put_bytes(GByteArray *b, const void *p, size_t len)
{
    g_byte_array_append(b, p, (guint)len);
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++) {
        sum += p[i];
    }
    return sum;
}

GByteArray *acpi_table_begin(const char *sig, uint8_t revision)
{
    GByteArray *t = g_byte_array_new();

    acpi_put_bytes(t, sig, 4);
    acpi_put(t, 0, 4);                      /* length, set at the end */
    acpi_put(t, revision, 1);
    acpi_put(t, 0, 1);                      /* checksum, set at the end */
    acpi_put_bytes(t, ACPI_OEM_ID, 6);
    acpi_put_bytes(t, ACPI_OEM_TABLE_ID, 8);
    acpi_put(t, 1, 4);                      /* OEM revision */
    acpi_put_bytes(t, ACPI_CREATOR_ID, 4);
    acpi_put(t, 1, 4);                      /* creator revision */
    return t;
}

void acpi_table_end(GByteArray *t)
{
    uint32_t len = t->len;

    t->data[4] = len & 0xff;
    t->data[5] = (len >> 8) & 0xff;
    t->data[6] = (len >> 16) & 0xff;
    t->data[7] = len >> 24;
    t->data[9] = 0;
    t->data[9] = (uint8_t)-acpi_checksum(t->data, len);
}

void acpi_put_gas_io(GByteArray *b, uint8_t bit_width, uint8_t access_size,
                     uint64_t port)
{
    acpi_put(b, 1, 1);            /* system I/O space */
    acpi_put(b, bit_width, 1);
    acpi_put(b, 0, 1);            /* bit offset */
    acpi_put(b, access_size, 1);
    acpi_put(b, port, 8);
}

static GByteArray *build_facs(void)
{
    GByteArray *t = g_byte_array_new();

    acpi_put_bytes(t, "FACS", 4);
    acpi_put(t, ACPI_FACS_LEN, 4);
    acpi_put(t, 0, 4 + 4 + 4 + 4 + 8);      /* hw signature .. X waking vector */
    acpi_put(t, 2, 1);                      /* version */
    acpi_put(t, 0, ACPI_FACS_LEN - t->len);
    return t;
}

static void fadt_put_pm_blocks(GByteArray *t, const AcpiConfig *cfg)
{
    acpi_put(t, cfg->pm_base, 4);                        /* PM1a_EVT_BLK */
    acpi_put(t, 0, 4);                                   /* PM1b_EVT_BLK */
    acpi_put(t, cfg->pm_base + ACPI_PM_CNT_OFFSET, 4);   /* PM1a_CNT_BLK */
    acpi_put(t, 0, 4 + 4);                               /* PM1b_CNT, PM2_CNT */
    acpi_put(t, cfg->pm_base + ACPI_PM_TMR_OFFSET, 4);   /* PM_TMR_BLK */
    acpi_put(t, 0, 4 + 4);                               /* GPE0, GPE1 */
    acpi_put(t, ACPI_PM1_EVT_LEN, 1);
    acpi_put(t, ACPI_PM1_CNT_LEN, 1);
    acpi_put(t, 0, 1);                                   /* PM2_CNT_LEN */
    acpi_put(t, ACPI_PM_TMR_LEN, 1);
    acpi_put(t, 0, 4);                   /* GPE0/1 lengths, GPE1 base, CST_CNT */
}

static void fadt_put_x_blocks(GByteArray *t, const AcpiConfig *cfg)
{
    acpi_put_gas_io(t, 8 * ACPI_PM1_EVT_LEN, 0, cfg->pm_base);
    acpi_put(t, 0, 12);                                         /* PM1b_EVT */
    acpi_put_gas_io(t, 8 * ACPI_PM1_CNT_LEN, 0,
                    cfg->pm_base + ACPI_PM_CNT_OFFSET);
    acpi_put(t, 0, 12 + 12);                                    /* PM1b, PM2 */
    acpi_put_gas_io(t, 8 * ACPI_PM_TMR_LEN, 0,
                    cfg->pm_base + ACPI_PM_TMR_OFFSET);
    acpi_put(t, 0, 12 + 12);                                    /* GPE0/1 */
    acpi_put(t, 0, 12 + 12);                     /* sleep control/status */
    acpi_put(t, 0, 8);                           /* hypervisor vendor */
}

static GByteArray *build_fadt(const AcpiConfig *cfg, uint64_t facs, uint64_t dsdt)
{
    GByteArray *t = acpi_table_begin("FACP", ACPI_FADT_REVISION);
    uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON |
                     FADT_TMR_VAL_EXT | (cfg->reset_port ? FADT_RESET_REG_SUP : 0);

    acpi_put(t, facs, 4);                   /* FIRMWARE_CTRL */
    acpi_put(t, dsdt, 4);
    acpi_put(t, 0, 1);                      /* reserved (INT_MODEL) */
    acpi_put(t, 0, 1);                      /* preferred PM profile: unspecified */
    acpi_put(t, cfg->sci_irq, 2);
    acpi_put(t, 0, 4);                      /* SMI_CMD 0: always in ACPI mode */
    acpi_put(t, 0, 4);                      /* ACPI_ENABLE/DISABLE, S4BIOS, PSTATE */
    fadt_put_pm_blocks(t, cfg);
    acpi_put(t, 101, 2);                    /* P_LVL2_LAT > 100: no C2 */
    acpi_put(t, 1001, 2);                   /* P_LVL3_LAT > 1000: no C3 */
    acpi_put(t, 0, 2 + 2 + 1 + 1);          /* flush size/stride, duty */
    acpi_put(t, 0, 1 + 1);                  /* day/month alarm */
    acpi_put(t, 0x32, 1);                   /* CMOS century register */
    acpi_put(t, BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_NO_VGA, 2);
    acpi_put(t, 0, 1);
    acpi_put(t, flags, 4);
    acpi_put_gas_io(t, 8, 1, cfg->reset_port);  /* RESET_REG */
    acpi_put(t, cfg->reset_value, 1);
    acpi_put(t, 0, 2);                      /* ARM boot arch */
    acpi_put(t, 0, 1);                      /* FADT minor version */
    acpi_put(t, 0, 8);                      /* X_FIRMWARE_CTRL: FIRMWARE_CTRL used */
    acpi_put(t, dsdt, 8);                   /* X_DSDT */
    fadt_put_x_blocks(t, cfg);
    g_assert(t->len == ACPI_FADT_LEN);
    acpi_table_end(t);
    return t;
}

static void madt_put_cpu(GByteArray *t, unsigned uid, uint32_t apic_id)
{
    if (apic_id < 0xff) {
        acpi_put(t, MADT_LOCAL_APIC, 1);
        acpi_put(t, 8, 1);
        acpi_put(t, uid, 1);
        acpi_put(t, apic_id, 1);
        acpi_put(t, 1, 4);                  /* enabled */
    } else {
        acpi_put(t, MADT_LOCAL_X2APIC, 1);
        acpi_put(t, 16, 1);
        acpi_put(t, 0, 2);
        acpi_put(t, apic_id, 4);
        acpi_put(t, 1, 4);
        acpi_put(t, uid, 4);
    }
}

static void madt_put_iso(GByteArray *t, uint8_t irq, uint32_t gsi, uint16_t flags)
{
    acpi_put(t, MADT_ISO, 1);
    acpi_put(t, 10, 1);
    acpi_put(t, 0, 1);                      /* bus: ISA */
    acpi_put(t, irq, 1);
    acpi_put(t, gsi, 4);
    acpi_put(t, flags, 2);
}

static GByteArray *build_madt(const AcpiConfig *cfg)
{
    GByteArray *t = acpi_table_begin("APIC", 3);

    acpi_put(t, cfg->lapic_addr, 4);
    acpi_put(t, MADT_PCAT_COMPAT, 4);
    for (unsigned i = 0; i < cfg->nr_cpus; i++) {
        madt_put_cpu(t, i, cfg->apic_ids[i]);
    }
    acpi_put(t, MADT_IOAPIC, 1);
    acpi_put(t, 12, 1);
    acpi_put(t, cfg->ioapic_id, 1);
    acpi_put(t, 0, 1);
    acpi_put(t, cfg->ioapic_addr, 4);
    acpi_put(t, 0, 4);                      /* GSI base */
    madt_put_iso(t, 0, 2, 0);               /* PIT on IRQ0 is IOAPIC pin 2 */
    madt_put_iso(t, cfg->sci_irq, cfg->sci_irq, MADT_ISO_LEVEL_HIGH);
    acpi_put(t, MADT_LAPIC_NMI, 1);
    acpi_put(t, 6, 1);
    acpi_put(t, 0xff, 1);                   /* all processors */
    acpi_put(t, 0, 2);
    acpi_put(t, 1, 1);                      /* LINT1 */
    acpi_table_end(t);
    return t;
}

static GByteArray *build_mcfg(const AcpiConfig *cfg)
{
    GByteArray *t = acpi_table_begin("MCFG", 1);

    acpi_put(t, 0, 8);
    acpi_put(t, cfg->ecam_base, 8);
    acpi_put(t, 0, 2);                      /* segment */
    acpi_put(t, 0, 1);                      /* start bus */
    acpi_put(t, cfg->ecam_end_bus, 1);
    acpi_put(t, 0, 4);
    acpi_table_end(t);
    return t;
}

static GByteArray *build_sdt(const char *sig, unsigned entry_size,
                             const uint64_t *addrs, unsigned n)
{
    GByteArray *t = acpi_table_begin(sig, 1);

    for (unsigned i = 0; i < n; i++) {
        acpi_put(t, addrs[i], entry_size);
    }
    acpi_table_end(t);
    return t;
}

static GByteArray *build_rsdp(uint64_t rsdt, uint64_t xsdt)
{
    GByteArray *t = g_byte_array_new();

    acpi_put_bytes(t, "RSD PTR ", 8);
    acpi_put(t, 0, 1);                      /* checksum of the first 20 bytes */
    acpi_put_bytes(t, ACPI_OEM_ID, 6);
    acpi_put(t, 2, 1);                      /* revision: ACPI 2.0+ */
    acpi_put(t, rsdt, 4);
    acpi_put(t, RSDP_LEN, 4);
    acpi_put(t, xsdt, 8);
    acpi_put(t, 0, 4);                      /* extended checksum, reserved */
    t->data[8] = (uint8_t)-acpi_checksum(t->data, RSDP_V1_LEN);
    t->data[32] = (uint8_t)-acpi_checksum(t->data, RSDP_LEN);
    return t;
}

void acpi_config_default(AcpiConfig *cfg, unsigned nr_cpus)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nr_cpus = nr_cpus;
    for (unsigned i = 0; i < ACPI_MAX_CPUS; i++) {
        cfg->apic_ids[i] = i;
    }
    cfg->lapic_addr = X86_LAPIC_ADDR;
    cfg->ioapic_addr = X86_IOAPIC_ADDR;
    cfg->ioapic_id = X86_IOAPIC_ID;
    cfg->pm_base = X86_PM_BASE;
    cfg->sci_irq = X86_SCI_IRQ;
    cfg->reset_port = X86_RESET_CONTROL_PORT;
    cfg->reset_value = X86_RESET_CONTROL_VALUE;
    cfg->pci_io_base = 0xd00;
    cfg->pci_io_size = 0xf300;              /* 0xd00..0xffff */
    cfg->pci_mmio32_base = X86_PCI_MMIO32_BASE;
    cfg->pci_mmio32_size = X86_PCI_MMIO32_END - X86_PCI_MMIO32_BASE;
    cfg->pci_slots = X86_PCI_SLOTS;
    cfg->rsdp_addr = X86_ACPI_RSDP_ADDR;
    cfg->tables_addr = X86_ACPI_TABLES_ADDR;
    cfg->tables_end = X86_ACPI_TABLES_END;
}

static bool check_config(const AcpiConfig *cfg, GError **errp)
{
    if (cfg->nr_cpus == 0 || cfg->nr_cpus > ACPI_MAX_CPUS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "ACPI: %u CPUs (need 1..%u)", cfg->nr_cpus, ACPI_MAX_CPUS);
        return false;
    }
    if (cfg->pci_slots > 32 || !cfg->pci_mmio32_size || !cfg->pci_io_size ||
        cfg->pci_mmio32_base + cfg->pci_mmio32_size > (1ULL << 32) ||
        (uint32_t)cfg->pci_io_base + cfg->pci_io_size > 0x10000 ||
        (cfg->ecam_base && cfg->ecam_base + (cfg->ecam_end_bus + 1ULL) *
                           (1ULL << 20) > (1ULL << 32))) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "ACPI: impossible PCI windows in the machine configuration");
        return false;
    }
    return true;
}

static void add_table(AcpiTables *t, const char *sig, uint64_t addr,
                      GByteArray *data)
{
    AcpiTable *e = g_new0(AcpiTable, 1);

    g_strlcpy(e->sig, sig, sizeof(e->sig));
    e->addr = addr;
    e->data = data;
    g_ptr_array_add(t->tables, e);
}

static void free_table(gpointer p)
{
    AcpiTable *e = p;

    g_byte_array_unref(e->data);
    g_free(e);
}

/* Places 'data' at the next aligned address and records it. */
static uint64_t place(AcpiTables *t, uint64_t *next, uint64_t align,
                      const char *sig, GByteArray *data)
{
    uint64_t addr = ALIGN_UP(*next, align);

    *next = addr + data->len;
    add_table(t, sig, addr, data);
    return addr;
}

AcpiTables *acpi_tables_build(const AcpiConfig *cfg, GError **errp)
{
    AcpiTables *t;
    uint64_t next = cfg->tables_addr, facs, dsdt, sdt[3], rsdt, xsdt;
    unsigned n = 0;

    if (!check_config(cfg, errp)) {
        return NULL;
    }
    t = g_new0(AcpiTables, 1);
    t->tables = g_ptr_array_new_with_free_func(free_table);
    add_table(t, "RSDP", cfg->rsdp_addr, g_byte_array_new());  /* filled last */
    facs = place(t, &next, 64, "FACS", build_facs());
    dsdt = place(t, &next, 16, "DSDT", acpi_build_dsdt(cfg));
    sdt[n++] = place(t, &next, 16, "FACP", build_fadt(cfg, facs, dsdt));
    sdt[n++] = place(t, &next, 16, "APIC", build_madt(cfg));
    if (cfg->ecam_base) {
        sdt[n++] = place(t, &next, 16, "MCFG", build_mcfg(cfg));
    }
    xsdt = place(t, &next, 16, "XSDT", build_sdt("XSDT", 8, sdt, n));
    rsdt = place(t, &next, 16, "RSDT", build_sdt("RSDT", 4, sdt, n));
    if (next > cfg->tables_end || rsdt > UINT32_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "ACPI: tables need 0x%" PRIx64 " bytes, 0x%" PRIx64 " available",
                    next - cfg->tables_addr, cfg->tables_end - cfg->tables_addr);
        acpi_tables_free(t);
        return NULL;
    }
    g_byte_array_unref(((AcpiTable *)t->tables->pdata[0])->data);
    ((AcpiTable *)t->tables->pdata[0])->data = build_rsdp(rsdt, xsdt);
    return t;
}

void acpi_tables_free(AcpiTables *t)
{
    if (t) {
        g_ptr_array_unref(t->tables);
        g_free(t);
    }
}

bool acpi_build(GuestMemory *mem, const AcpiConfig *cfg, uint64_t *rsdp_addr,
                GError **errp)
{
    AcpiTables *t = acpi_tables_build(cfg, errp);
    bool ok = t != NULL;

    for (guint i = 0; ok && i < t->tables->len; i++) {
        AcpiTable *e = t->tables->pdata[i];

        ok = guest_mem_write(mem, e->addr, e->data->data, e->data->len, errp);
    }
    if (ok) {
        *rsdp_addr = cfg->rsdp_addr;
    }
    acpi_tables_free(t);
    return ok;
}
