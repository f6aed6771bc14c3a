/*
 * ACPI and MP table builders: every table for 1, 2 and 4 CPUs (with and without
 * ECAM) has a valid checksum, the pointers between tables are right, the MADT
 * lists exactly N CPUs, and `iasl -d` (acpica-tools) disassembles each one
 * without errors. The MP table's checksums and entry counts are checked too.
 */
#include <string.h>
#include <glib/gstdio.h>

#include "hw/i386/acpi-build.h"
#include "hw/i386/aml-build.h"
#include "hw/i386/mptable.h"
#include "hw/i386/pc-layout.h"
#include "hw/acpi/pm.h"
#include "tern/error.h"

#define TEST_RAM (2 * MiB)

static uint32_t rd32(const uint8_t *p)
{
    return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

static GuestMemory *test_mem_new(void)
{
    GuestMemory *m = g_new0(GuestMemory, 1);

    m->fd = -1;
    m->nr_regions = 1;
    m->regions[0] = (GuestRegion){ .gpa = 0, .size = TEST_RAM,
                                   .hva = g_malloc0(TEST_RAM) };
    m->ram_size = TEST_RAM;
    return m;
}

static void test_mem_free(GuestMemory *m)
{
    g_free(m->regions[0].hva);
    g_free(m);
}

static const AcpiTable *find(const AcpiTables *t, const char *sig)
{
    for (guint i = 0; i < t->tables->len; i++) {
        const AcpiTable *e = t->tables->pdata[i];

        if (!strcmp(e->sig, sig)) {
            return e;
        }
    }
    return NULL;
}

static unsigned madt_cpus(const GByteArray *madt)
{
    unsigned n = 0;

    for (guint off = 44; off + 2 <= madt->len; off += madt->data[off + 1]) {
        g_assert_cmpuint(madt->data[off + 1], >=, 2);
        if (madt->data[off] == 0 || madt->data[off] == 9) {
            n++;
        }
    }
    return n;
}

static void check_checksums(const AcpiTables *t)
{
    for (guint i = 0; i < t->tables->len; i++) {
        const AcpiTable *e = t->tables->pdata[i];

        if (!strcmp(e->sig, "RSDP")) {
            g_assert_cmpuint(acpi_checksum(e->data->data, 20), ==, 0);
            g_assert_cmpuint(acpi_checksum(e->data->data, 36), ==, 0);
        } else if (strcmp(e->sig, "FACS") != 0) {
            g_assert_cmpuint(rd32(e->data->data + 4), ==, e->data->len);
            g_assert_cmpuint(acpi_checksum(e->data->data, e->data->len), ==, 0);
            g_assert_cmpmem(e->data->data, 4, e->sig, 4);
        }
    }
}

/* RSDP -> XSDT/RSDT -> FADT -> DSDT/FACS, all at the addresses recorded. */
static void check_links(const AcpiTables *t, bool ecam)
{
    const AcpiTable *rsdp = find(t, "RSDP"), *xsdt = find(t, "XSDT");
    const AcpiTable *rsdt = find(t, "RSDT"), *fadt = find(t, "FACP");
    const uint8_t *f = fadt->data->data;
    unsigned n = ecam ? 3 : 2;

    g_assert_cmpmem(rsdp->data->data, 8, "RSD PTR ", 8);
    g_assert_cmpuint(rsdp->data->data[15], ==, 2);
    g_assert_cmpuint(rd64(rsdp->data->data + 24), ==, xsdt->addr);
    g_assert_cmpuint(rd32(rsdp->data->data + 16), ==, rsdt->addr);
    g_assert_cmpuint(xsdt->data->len, ==, 36 + 8 * n);
    g_assert_cmpuint(rsdt->data->len, ==, 36 + 4 * n);
    g_assert_cmpuint(rd64(xsdt->data->data + 36), ==, fadt->addr);
    g_assert_cmpuint(rd64(xsdt->data->data + 44), ==, find(t, "APIC")->addr);
    g_assert(!ecam || rd64(xsdt->data->data + 52) == find(t, "MCFG")->addr);
    g_assert(ecam == (find(t, "MCFG") != NULL));
    g_assert_cmpuint(rd32(f + 36), ==, find(t, "FACS")->addr);
    g_assert_cmpuint(find(t, "FACS")->addr % 64, ==, 0);
    g_assert_cmpuint(rd32(f + 40), ==, find(t, "DSDT")->addr);
    g_assert_cmpuint(rd64(f + 140), ==, find(t, "DSDT")->addr);
    g_assert_cmpuint(f[46], ==, X86_SCI_IRQ);
    g_assert_cmpuint(rd32(f + 56), ==, X86_PM_BASE);
    g_assert_cmpuint(rd32(f + 64), ==, X86_PM_BASE + ACPI_PM_CNT_OFFSET);
    g_assert_cmpuint(rd32(f + 112) & (1u << 20), ==, 0);   /* not HW-reduced */
    g_assert_cmpuint(rd64(f + 120), ==, X86_RESET_CONTROL_PORT);
    g_assert_cmpuint(f[128], ==, X86_RESET_CONTROL_VALUE);
}

static void check_dsdt(const AcpiTables *t)
{
    const GByteArray *d = find(t, "DSDT")->data;

    g_assert_nonnull(memmem(d->data, d->len, "PCI0", 4));
    g_assert_nonnull(memmem(d->data, d->len, "_PRT", 4));
    g_assert_nonnull(memmem(d->data, d->len, "_S5_", 4));
    g_assert_nonnull(memmem(d->data, d->len, "COM1", 4));
}

/* iasl exits 0 on bad checksums and broken AML: its messages tell. */
static bool iasl_complains(const char *text)
{
    return strstr(text, "Error") || strstr(text, "Warning") ||
           strstr(text, "****") || strstr(text, "Unknown");
}

/* Writes each table to dir/<sig>.dat and runs iasl -d on it. The RSDP is not
 * a table with a header: iasl 20200925 cannot load it from a binary file, so
 * check_checksums() and check_links() verify it field by field instead. */
static void iasl_disassemble_all(const AcpiTables *t)
{
    g_autofree char *iasl = g_find_program_in_path("iasl");
    g_autofree char *dir = NULL;

    if (!iasl) {
        g_test_message("iasl not installed (acpica-tools): disassembly not checked");
        return;
    }
    dir = g_dir_make_tmp("tern-acpi-XXXXXX", NULL);
    g_assert_nonnull(dir);
    for (guint i = 0; i < t->tables->len; i++) {
        const AcpiTable *e = t->tables->pdata[i];
        g_autofree char *name = g_strdup_printf("%s.dat", e->sig);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *dsl = g_strdup_printf("%s/%s.dsl", dir, e->sig);
        g_autofree char *out = NULL, *err = NULL, *text = NULL;
        const char *argv[] = { iasl, "-d", path, NULL };
        int status;

        if (!strcmp(e->sig, "RSDP")) {
            continue;
        }
        g_assert_true(g_file_set_contents(path, (const char *)e->data->data,
                                          e->data->len, NULL));
        g_assert_true(g_spawn_sync(dir, (char **)argv, NULL, 0, NULL, NULL,
                                   &out, &err, &status, NULL));
        if (!g_spawn_check_wait_status(status, NULL) || iasl_complains(out) ||
            iasl_complains(err) || !g_file_get_contents(dsl, &text, NULL, NULL) ||
            iasl_complains(text)) {
            g_test_message("iasl -d %s:\n%s\n%s\n%s", e->sig, out, err, text);
            g_assert_not_reached();
        }
        g_remove(dsl);
        g_remove(path);
    }
    g_rmdir(dir);
}

static void test_tables(unsigned cpus, bool ecam)
{
    AcpiConfig cfg;
    g_autoptr(GError) err = NULL;
    AcpiTables *t;

    acpi_config_default(&cfg, cpus);
    if (ecam) {
        cfg.ecam_base = 0xb0000000;
        cfg.ecam_end_bus = 0;
        cfg.pci_mmio64_base = 0x8000000000ULL;
        cfg.pci_mmio64_size = 0x4000000000ULL;
    }
    t = acpi_tables_build(&cfg, &err);
    g_assert_no_error(err);
    check_checksums(t);
    check_links(t, ecam);
    check_dsdt(t);
    g_assert_cmpuint(madt_cpus(find(t, "APIC")->data), ==, cpus);
    iasl_disassemble_all(t);
    acpi_tables_free(t);
}

static void test_tables_1(void) { test_tables(1, false); }
static void test_tables_2(void) { test_tables(2, true); }
static void test_tables_4(void) { test_tables(4, false); }
static void test_tables_4_ecam(void) { test_tables(4, true); }

static void test_build_into_ram(void)
{
    GuestMemory *m = test_mem_new();
    AcpiConfig cfg;
    uint64_t rsdp = 0;
    g_autoptr(GError) err = NULL;
    const uint8_t *p;

    acpi_config_default(&cfg, 2);
    g_assert_true(acpi_build(m, &cfg, &rsdp, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(rsdp, ==, X86_ACPI_RSDP_ADDR);
    p = m->regions[0].hva + rsdp;
    g_assert_cmpmem(p, 8, "RSD PTR ", 8);
    p = m->regions[0].hva + rd64(p + 24);
    g_assert_cmpmem(p, 4, "XSDT", 4);
    g_assert_cmpuint(acpi_checksum(p, rd32(p + 4)), ==, 0);
    test_mem_free(m);
}

static void test_bad_config(void)
{
    GuestMemory *m = test_mem_new();
    AcpiConfig cfg;
    uint64_t rsdp = 0;
    GError *err = NULL;

    acpi_config_default(&cfg, 0);
    g_assert_false(acpi_build(m, &cfg, &rsdp, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    acpi_config_default(&cfg, 256);
    g_assert_null(acpi_tables_build(&cfg, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    acpi_config_default(&cfg, 4);
    cfg.tables_end = cfg.tables_addr + 64;             /* too small */
    g_assert_false(acpi_build(m, &cfg, &rsdp, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    acpi_config_default(&cfg, 1);
    cfg.pci_mmio32_base = 0xf0000000;
    cfg.pci_mmio32_size = 0x20000000;                  /* crosses 4 GiB */
    g_assert_null(acpi_tables_build(&cfg, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    acpi_config_default(&cfg, 1);
    cfg.rsdp_addr = 64 * GiB;                          /* not RAM */
    g_assert_false(acpi_build(m, &cfg, &rsdp, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    test_mem_free(m);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;

    while (n--) {
        s += *p++;
    }
    return s;
}

static void test_mptable(unsigned cpus)
{
    GuestMemory *m = test_mem_new();
    MpTableConfig c;
    g_autoptr(GError) err = NULL;
    const uint8_t *fp, *t;
    unsigned len, count, procs = 0, bsp = 0, off;

    mptable_config_default(&c, cpus);
    g_assert_true(mptable_build(m, &c, &err));
    g_assert_no_error(err);
    fp = m->regions[0].hva + X86_MPTABLE_ADDR;
    g_assert_cmpmem(fp, 4, "_MP_", 4);
    g_assert_cmpuint(fp[8], ==, 1);
    g_assert_cmpuint(sum(fp, 16), ==, 0);
    t = m->regions[0].hva + rd32(fp + 4);
    g_assert_cmpmem(t, 4, "PCMP", 4);
    len = t[4] | (t[5] << 8);
    count = t[34] | (t[35] << 8);
    g_assert_cmpuint(sum(t, len), ==, 0);
    g_assert_cmpuint(count, ==, cpus + 3 + 16 + 32 * 4 + 2);
    g_assert_cmpuint(rd32(t + 36), ==, X86_LAPIC_ADDR);
    off = 44;
    for (unsigned i = 0; i < count; i++) {
        g_assert_cmpuint(off, <, len);
        if (t[off] == 0) {
            procs++;
            bsp += (t[off + 3] & 2) != 0;
            off += 20;
        } else {
            g_assert_cmpuint(t[off], <=, 4);
            off += 8;
        }
    }
    g_assert_cmpuint(off, ==, len);
    g_assert_cmpuint(procs, ==, cpus);
    g_assert_cmpuint(bsp, ==, 1);
    test_mem_free(m);
}

static void test_mptable_1(void) { test_mptable(1); }
static void test_mptable_2(void) { test_mptable(2); }
static void test_mptable_4(void) { test_mptable(4); }

static void test_mptable_bad(void)
{
    GuestMemory *m = test_mem_new();
    MpTableConfig c;
    GError *err = NULL;

    mptable_config_default(&c, 0);
    g_assert_false(mptable_build(m, &c, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    mptable_config_default(&c, 255);
    c.end = c.addr + 256;                              /* too small */
    g_assert_false(mptable_build(m, &c, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    test_mem_free(m);
}

/* PkgLength counts its own bytes; each encoding width at its boundaries. */
static void test_aml_pkglength(void)
{
    static const struct {
        size_t content;
        guint bytes;
        uint8_t lead;
    } cases[] = {
        { 0, 1, 0x01 }, { 0x3e, 1, 0x3f }, { 0x3f, 2, 0x41 },
        { 0xffd, 2, 0x4f }, { 0xffe, 3, 0x81 }, { 0xffffc, 3, 0x8f },
        { 0xffffd, 4, 0xc1 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GByteArray *b = g_byte_array_new();
        uint64_t total = 0;

        aml_put_pkglength(b, cases[i].content);
        g_assert_cmpuint(b->len, ==, cases[i].bytes);
        g_assert_cmphex(b->data[0], ==, cases[i].lead);
        total = b->len == 1 ? b->data[0] : (b->data[0] & 0xf);
        for (guint j = 1; j < b->len; j++) {
            total |= (uint64_t)b->data[j] << (4 + 8 * (j - 1));
        }
        g_assert_cmpuint(total, ==, cases[i].content + cases[i].bytes);
        g_byte_array_unref(b);
    }
}

/* Name strings: root and parent prefixes, dual and multi-segment paths. */
static void test_aml_namestring(void)
{
    GByteArray *b = g_byte_array_new();

    aml_put_namestring(b, "\\_SB.PCI0.S1");
    g_assert_cmpmem(b->data, b->len, "\\\x2f\x03_SB_PCI0S1__", 15);
    g_byte_array_set_size(b, 0);
    aml_put_namestring(b, "^PCI0.KBD");
    g_assert_cmpmem(b->data, b->len, "^\x2ePCI0KBD_", 10);
    g_byte_array_set_size(b, 0);
    aml_put_namestring(b, "_S5");
    g_assert_cmpmem(b->data, b->len, "_S5_", 4);
    g_byte_array_unref(b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/acpi/tables/1cpu", test_tables_1);
    g_test_add_func("/acpi/tables/2cpu-ecam", test_tables_2);
    g_test_add_func("/acpi/tables/4cpu", test_tables_4);
    g_test_add_func("/acpi/tables/4cpu-ecam", test_tables_4_ecam);
    g_test_add_func("/acpi/build-into-ram", test_build_into_ram);
    g_test_add_func("/acpi/bad-config", test_bad_config);
    g_test_add_func("/aml/pkglength", test_aml_pkglength);
    g_test_add_func("/aml/namestring", test_aml_namestring);
    g_test_add_func("/mptable/1cpu", test_mptable_1);
    g_test_add_func("/mptable/2cpu", test_mptable_2);
    g_test_add_func("/mptable/4cpu", test_mptable_4);
    g_test_add_func("/mptable/bad", test_mptable_bad);
    return g_test_run();
}
