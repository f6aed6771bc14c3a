/*
 * Unit tests for the PVH ELF loader (target/i386/pvh.c): the guest kit ELF
 * loads with its entry note, start_info, memmap, command line and initrd as
 * the PVH ABI lays them out; malformed ELFs and initrds that do not fit are
 * refused with errors, never crashes.
 */
#include <elf.h>
#include <string.h>

#include "target/i386/pvh.h"
#include "tern/error.h"

#define RAM_SIZE (16 * MiB)

typedef struct TestMem {
    GuestMemory mem;
    uint8_t *ram;
} TestMem;

static void mem_init(TestMem *t, uint64_t size)
{
    memset(t, 0, sizeof(*t));
    t->ram = g_malloc0(size);
    t->mem.fd = -1;
    t->mem.ram_size = size;
    t->mem.regions[0] = (GuestRegion){ .gpa = 0, .size = size, .hva = t->ram };
    t->mem.nr_regions = 1;
    g_assert_true(guest_mem_add_e820(&t->mem, 0, 0x9fc00, E820_RAM, NULL));
    g_assert_true(guest_mem_add_e820(&t->mem, 0x9fc00, 0x100000 - 0x9fc00,
                                     E820_RESERVED, NULL));
    g_assert_true(guest_mem_add_e820(&t->mem, 0x100000, size - 0x100000, E820_RAM, NULL));
}

static void mem_clear(TestMem *t)
{
    g_free(t->ram);
}

/* A minimal ELF64 with one PT_LOAD at paddr and a Xen PHYS32_ENTRY note. */
typedef struct TERN_PACKED MiniElf {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
    uint32_t note[3];
    char name[4];
    uint32_t entry;
    uint8_t code[64];
} MiniElf;

static void mini_elf(MiniElf *e, uint64_t paddr, uint32_t entry)
{
    memset(e, 0, sizeof(*e));
    memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
    e->eh.e_ident[EI_CLASS] = ELFCLASS64;
    e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    e->eh.e_ident[EI_VERSION] = EV_CURRENT;
    e->eh.e_type = ET_EXEC;
    e->eh.e_machine = EM_X86_64;
    e->eh.e_phoff = offsetof(MiniElf, ph);
    e->eh.e_phentsize = sizeof(Elf64_Phdr);
    e->eh.e_phnum = 2;
    e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(MiniElf, code),
                             .p_paddr = paddr, .p_filesz = 64, .p_memsz = 4096 };
    e->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = offsetof(MiniElf, note),
                             .p_filesz = 12 + 4 + 4 };
    e->note[0] = 4;
    e->note[1] = 4;
    e->note[2] = XEN_ELFNOTE_PHYS32_ENTRY;
    memcpy(e->name, "Xen", 4);
    e->entry = entry;
    memset(e->code, 0xf4, sizeof(e->code));
}

static const char *kit_path(void)
{
    static char path[4096];
    const char *root = g_getenv("TERN_BUILD_ROOT");

    if (!root) {
        return NULL;
    }
    g_snprintf(path, sizeof(path), "%s/tests/guest/tguest.elf", root);
    return g_file_test(path, G_FILE_TEST_EXISTS) ? path : NULL;
}

static void test_guest_kit(void)
{
    const char *path = kit_path();
    g_autofree gchar *image = NULL;
    gsize len;
    TestMem t;
    PvhBootInfo info;
    HvmStartInfo si;
    HvmModlistEntry mod;
    HvmMemmapEntry map[4];
    const char *cmdline = "tg.workload=idle tg.hz=100";
    uint8_t initrd[5000];
    char buf[64];

    if (!path) {
        g_test_skip("guest kit not built (ninja tests/guest/tguest.elf)");
        return;
    }
    g_assert_true(g_file_get_contents(path, &image, &len, NULL));
    g_assert_true(pvh_is_elf((uint8_t *)image, len));
    for (size_t i = 0; i < sizeof(initrd); i++) {
        initrd[i] = i * 7;
    }
    mem_init(&t, RAM_SIZE);
    g_assert_true(pvh_load(&t.mem, (uint8_t *)image, len, initrd, sizeof(initrd),
                           cmdline, 0xe0000, &info, NULL));
    /* The guest kit links at 1 MiB with its entry in the first segment. */
    g_assert_cmphex(info.kernel_low, ==, 0x100000);
    g_assert_cmphex(info.entry, >=, info.kernel_low);
    g_assert_cmphex(info.entry, <, info.kernel_end);
    g_assert_cmphex(info.start_info, ==, PVH_INFO_ADDR);

    /* Segment contents landed at their physical addresses. */
    {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)image;
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(image + eh->e_phoff);

        for (unsigned i = 0; i < eh->e_phnum; i++) {
            if (ph[i].p_type == PT_LOAD) {
                g_assert_cmpmem(t.ram + ph[i].p_paddr, ph[i].p_filesz,
                                image + ph[i].p_offset, ph[i].p_filesz);
            }
        }
    }

    g_assert_true(guest_mem_read(&t.mem, info.start_info, &si, sizeof(si), NULL));
    g_assert_cmphex(si.magic, ==, XEN_HVM_START_MAGIC);
    g_assert_cmpuint(si.version, ==, 1);
    g_assert_cmphex(si.rsdp_paddr, ==, 0xe0000);
    g_assert_cmpuint(si.memmap_entries, ==, 3);
    g_assert_true(guest_mem_read(&t.mem, si.memmap_paddr, map, 3 * sizeof(map[0]), NULL));
    g_assert_cmphex(map[2].addr, ==, 0x100000);
    g_assert_cmphex(map[2].size, ==, RAM_SIZE - 0x100000);
    g_assert_cmpuint(map[1].type, ==, E820_RESERVED);
    g_assert_true(guest_mem_read(&t.mem, si.cmdline_paddr, buf, strlen(cmdline) + 1, NULL));
    g_assert_cmpstr(buf, ==, cmdline);

    g_assert_cmpuint(si.nr_modules, ==, 1);
    g_assert_true(guest_mem_read(&t.mem, si.modlist_paddr, &mod, sizeof(mod), NULL));
    g_assert_cmpuint(mod.size, ==, sizeof(initrd));
    g_assert_cmphex(mod.paddr, ==, info.initrd_addr);
    g_assert_true(IS_ALIGNED(mod.paddr, 4096));
    g_assert_cmphex(mod.paddr, >=, info.kernel_end);
    g_assert_cmphex(mod.paddr + mod.size, <=, RAM_SIZE);
    g_assert_cmpmem(t.ram + mod.paddr, sizeof(initrd), initrd, sizeof(initrd));
    mem_clear(&t);
}

static void test_mini_no_initrd(void)
{
    MiniElf e;
    TestMem t;
    PvhBootInfo info;
    HvmStartInfo si;

    mini_elf(&e, 0x200000, 0x200010);
    mem_init(&t, RAM_SIZE);
    g_assert_true(pvh_load(&t.mem, (uint8_t *)&e, sizeof(e), NULL, 0, NULL, 0, &info, NULL));
    g_assert_cmphex(info.entry, ==, 0x200010);
    g_assert_cmphex(info.kernel_end, ==, 0x201000);
    g_assert_cmpuint(t.ram[0x200000], ==, 0xf4);
    g_assert_cmpuint(t.ram[0x200040], ==, 0);    /* bss zeroed */
    g_assert_true(guest_mem_read(&t.mem, info.start_info, &si, sizeof(si), NULL));
    g_assert_cmpuint(si.nr_modules, ==, 0);
    g_assert_cmphex(si.cmdline_paddr, ==, 0);
    mem_clear(&t);
}

/* Each case corrupts a valid mini ELF one way; loading must fail cleanly. */
static void test_bad_elf(void)
{
    static const char *const names[] = {
        "truncated", "bad-class", "big-endian", "phoff-outside", "phnum-huge",
        "seg-outside-file", "filesz-gt-memsz", "seg-outside-ram", "seg-over-bootinfo",
        "no-note", "note-bad-size", "no-load", "bad-machine", "seg-over-cmdline",
    };

    for (unsigned c = 0; c < G_N_ELEMENTS(names); c++) {
        g_autoptr(GError) err = NULL;
        MiniElf e;
        size_t len = sizeof(e);
        TestMem t;
        PvhBootInfo info;

        mini_elf(&e, 0x200000, 0x200000);
        switch (c) {
        case 0: len = 20; break;
        case 1: e.eh.e_ident[EI_CLASS] = 7; break;
        case 2: e.eh.e_ident[EI_DATA] = ELFDATA2MSB; break;
        case 3: e.eh.e_phoff = 1 << 30; break;
        case 4: e.eh.e_phnum = 0xffff; break;
        case 5: e.ph[0].p_offset = 1ULL << 62; break;
        case 6: e.ph[0].p_filesz = 8192; break;
        case 7: e.ph[0].p_paddr = RAM_SIZE - 16; break;
        case 8: e.ph[0].p_paddr = 0x6000; break;
        case 9: e.note[2] = 1; break;
        case 10: e.note[0] = 0xfffffff0; break;
        case 11: e.ph[0].p_type = PT_NULL; break;
        case 12: e.eh.e_machine = EM_ARM; break;
        case 13: e.ph[0].p_paddr = 0x1f800; break;
        }
        mem_init(&t, RAM_SIZE);
        if (g_test_verbose()) {
            g_test_message("case %s", names[c]);
        }
        g_assert_false(pvh_load(&t.mem, (uint8_t *)&e, len, NULL, 0, "x", 0, &info, &err));
        g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
        mem_clear(&t);
    }
}

static void test_initrd_too_big(void)
{
    g_autoptr(GError) err = NULL;
    MiniElf e;
    TestMem t;
    PvhBootInfo info;
    size_t big = RAM_SIZE;
    g_autofree uint8_t *initrd = g_malloc0(big);

    mini_elf(&e, 0x200000, 0x200000);
    mem_init(&t, RAM_SIZE);
    g_assert_false(pvh_load(&t.mem, (uint8_t *)&e, sizeof(e), initrd, big, NULL, 0,
                            &info, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_nonnull(strstr(err->message, "initrd"));
    mem_clear(&t);
}

static void test_cmdline_too_long(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *cmd = g_strnfill(PVH_CMDLINE_MAX, 'x');
    MiniElf e;
    TestMem t;
    PvhBootInfo info;

    mini_elf(&e, 0x200000, 0x200000);
    mem_init(&t, RAM_SIZE);
    g_assert_false(pvh_load(&t.mem, (uint8_t *)&e, sizeof(e), NULL, 0, cmd, 0, &info, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    mem_clear(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pvh/guest-kit", test_guest_kit);
    g_test_add_func("/pvh/mini-no-initrd", test_mini_no_initrd);
    g_test_add_func("/pvh/bad-elf", test_bad_elf);
    g_test_add_func("/pvh/initrd-too-big", test_initrd_too_big);
    g_test_add_func("/pvh/cmdline-too-long", test_cmdline_too_long);
    return g_test_run();
}
