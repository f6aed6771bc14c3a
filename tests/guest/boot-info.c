/*
 * What the guest kit learns from its loader: the PVH hvm_start_info (layout
 * from Xen's public arch-x86/hvm/start_info.h: magic, version, flags,
 * nr_modules, modlist/cmdline/rsdp/memmap physical addresses, memmap entry
 * count) and the CPU count from the ACPI MADT. It runs in ring 3 (all RAM is
 * user-accessible), copying what it needs before low memory is reused.
 */
#include "internal.h"

#define HVM_START_MAGIC 0x336ec578
#define MAX_MEMMAP 32
#define E820_RAM 1

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;        /* version >= 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
} __attribute__((packed));

struct hvm_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
} __attribute__((packed));

struct acpi_header {
    char sig[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem[6];
    char oem_table[8];
    uint32_t oem_rev;
    uint32_t creator;
    uint32_t creator_rev;
} __attribute__((packed));

struct acpi_rsdp {
    char sig[8];
    uint8_t checksum;
    char oem[6];
    uint8_t revision;
    uint32_t rsdt;
    uint32_t length;
    uint64_t xsdt;
    uint8_t ext_checksum;
    uint8_t reserved[3];
} __attribute__((packed));

static struct {
    char cmdline[1024];
    uint64_t rsdp;
    struct hvm_memmap_entry memmap[MAX_MEMMAP];
    unsigned memmap_entries;
} boot;

bool tg_boot_info_init(void)
{
    const struct hvm_start_info *si =
        (const void *)(uintptr_t)tg_start_info_paddr;

    if (!si || si->magic != HVM_START_MAGIC) {
        return false;
    }
    if (si->cmdline_paddr && si->cmdline_paddr < TG_MAPPED_LIMIT) {
        const char *c = (const char *)si->cmdline_paddr;
        for (size_t i = 0; i < sizeof(boot.cmdline) - 1 && c[i]; i++) {
            boot.cmdline[i] = c[i];
        }
    }
    boot.rsdp = si->rsdp_paddr;
    if (si->version >= 1 && si->memmap_paddr && si->memmap_paddr < TG_MAPPED_LIMIT) {
        const struct hvm_memmap_entry *m = (const void *)si->memmap_paddr;
        unsigned n = si->memmap_entries;
        boot.memmap_entries = n < MAX_MEMMAP ? n : MAX_MEMMAP;
        memcpy(boot.memmap, m, boot.memmap_entries * sizeof(*m));
    }
    return true;
}

const char *tg_boot_cmdline(void)
{
    return boot.cmdline;
}

uint64_t tg_ram_end(uint64_t addr)
{
    for (unsigned i = 0; i < boot.memmap_entries; i++) {
        const struct hvm_memmap_entry *e = &boot.memmap[i];
        if (e->type == E820_RAM && addr >= e->addr && addr - e->addr < e->size) {
            return e->addr + e->size;
        }
    }
    return 0;
}

static bool checksum_ok(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    while (len--) {
        sum += *b++;
    }
    return sum == 0;
}

static const struct acpi_rsdp *find_rsdp(void)
{
    if (boot.rsdp && boot.rsdp < TG_MAPPED_LIMIT) {
        return (const void *)boot.rsdp;
    }
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
        const struct acpi_rsdp *r = (const void *)a;
        if (!memcmp(r->sig, "RSD PTR ", 8) && checksum_ok(r, 20)) {
            return r;
        }
    }
    return NULL;
}

static const struct acpi_header *table_at(uint64_t addr)
{
    const struct acpi_header *h = (const void *)addr;

    if (!addr || addr >= TG_MAPPED_LIMIT || h->length < sizeof(*h)
        || h->length > (1u << 20) || !checksum_ok(h, h->length)) {
        return NULL;
    }
    return h;
}

static const struct acpi_header *find_table(const char sig[4])
{
    const struct acpi_rsdp *r = find_rsdp();
    const struct acpi_header *root;
    unsigned width = 4;

    if (!r || memcmp(r->sig, "RSD PTR ", 8)) {
        return NULL;
    }
    root = r->revision >= 2 ? table_at(r->xsdt) : NULL;
    if (root) {
        width = 8;
    } else {
        root = table_at(r->rsdt);
    }
    if (!root) {
        return NULL;
    }
    const uint8_t *ent = (const uint8_t *)(root + 1);
    unsigned n = (root->length - sizeof(*root)) / width;
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = 0;
        memcpy(&a, ent + i * width, width);
        const struct acpi_header *t = table_at(a);
        if (t && !memcmp(t->sig, sig, 4)) {
            return t;
        }
    }
    return NULL;
}

/* Enabled Local APIC (type 0) and Local x2APIC (type 9) entries. */
unsigned tg_acpi_count_cpus(void)
{
    const struct acpi_header *madt = find_table("APIC");
    unsigned cpus = 0;

    if (!madt) {
        return 0;
    }
    const uint8_t *p = (const uint8_t *)madt + sizeof(*madt) + 8;
    const uint8_t *end = (const uint8_t *)madt + madt->length;
    while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
        uint32_t flags;
        if (p[0] == 0 && p[1] >= 8) {
            memcpy(&flags, p + 4, 4);
            cpus += flags & 1;
        } else if (p[0] == 9 && p[1] >= 16) {
            memcpy(&flags, p + 8, 4);
            cpus += flags & 1;
        }
        p += p[1];
    }
    return cpus;
}
