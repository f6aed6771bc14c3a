/*
 * The bzImage loader: against Debian's real vmlinuz (fetched by
 * scripts/fetch-linux-kernels into ~/.cache/tern/linux or $TERN_LINUX_CACHE;
 * skipped with the reason when it cannot be had), checking the header facts,
 * load address, boot_params (setup header copy, e820, command line, initrd
 * fields), initrd placement, page tables and entry state; and synthetic images
 * with bad headers, a kernel or initrd that does not fit, too long a cmdline.
 */
#include <string.h>

#include "target/i386/bzimage.h"
#include "tern/error.h"

static uint16_t rd16(const uint8_t *p) { return p[0] | (p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | ((uint32_t)rd16(p + 2) << 16); }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xffff); wr16(p + 2, v >> 16); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, v >> 32); }

/* RAM from 0 to 'size', with the usual PC hole in the e820 map. */
static GuestMemory *mem_new(uint64_t size)
{
    GuestMemory *m = g_new0(GuestMemory, 1);

    m->fd = -1;
    m->nr_regions = 1;
    m->regions[0] = (GuestRegion){ .gpa = 0, .size = size,
                                   .hva = g_malloc0(size) };
    m->ram_size = size;
    g_assert_true(guest_mem_add_e820(m, 0, 0x9fc00, E820_RAM, NULL));
    g_assert_true(guest_mem_add_e820(m, 0x9fc00, 0x100000 - 0x9fc00,
                                     E820_RESERVED, NULL));
    g_assert_true(guest_mem_add_e820(m, 0x100000, size - 0x100000, E820_RAM, NULL));
    return m;
}

static void mem_free(GuestMemory *m)
{
    g_free(m->regions[0].hva);
    g_free(m);
}

static uint8_t *gpa(GuestMemory *m, uint64_t a)
{
    return m->regions[0].hva + a;
}

/* Returns the cached Debian kernel, fetching it once if possible. */
static uint8_t *debian_kernel(size_t *len)
{
    const char *env = g_getenv("TERN_LINUX_CACHE");
    g_autofree char *cache = env ? g_strdup(env) :
        g_build_filename(g_get_home_dir(), ".cache", "tern", "linux", NULL);
    g_autofree char *path = g_build_filename(cache, "amd64", "vmlinuz", NULL);
    const char *srcdir = g_getenv("G_TEST_SRCDIR");
    char *data = NULL;

    if (!g_file_test(path, G_FILE_TEST_EXISTS) && srcdir) {
        g_autofree char *script = g_build_filename(srcdir, "..", "..", "scripts",
                                                   "fetch-linux-kernels", NULL);
        const char *argv[] = { script, "amd64", NULL };

        g_auto(GStrv) envp = g_environ_setenv(g_get_environ(),
                                             "TERN_FETCH_TIMEOUT", "60", true);

        /* Bounded well inside the test's own timeout; offline means skip. */
        g_spawn_sync(NULL, (char **)argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, NULL, NULL);
    }
    if (!g_file_get_contents(path, &data, len, NULL)) {
        g_test_skip("Debian's vmlinuz is not available (offline, or no apt "
                    "sources): run scripts/fetch-linux-kernels");
        return NULL;
    }
    return (uint8_t *)data;
}

static void check_entry_state(GuestMemory *m, const X86BootState *st,
                              const BzImageLayout *l)
{
    g_assert_cmpuint(st->rip, ==, l->kernel_addr + 0x200);
    g_assert_cmpuint(st->rsi, ==, BZ_BOOT_PARAMS_ADDR);
    g_assert_cmpuint(st->cs.selector, ==, BZ_BOOT_CS);
    g_assert_cmpuint(st->ds.selector, ==, BZ_BOOT_DS);
    g_assert_cmpuint(st->cs.l, ==, 1);
    g_assert_cmpuint(st->efer & 0x500, ==, 0x500);
    g_assert_cmpuint(st->cr0 & 0x80000001, ==, 0x80000001);
    g_assert_cmpuint(st->cr4 & 0x20, ==, 0x20);
    g_assert_cmpuint(st->rflags & 0x200, ==, 0);          /* interrupts off */
    g_assert_cmpuint(st->cr3, ==, BZ_PML4_ADDR);
    g_assert_cmpuint(rd64(gpa(m, BZ_PML4_ADDR)) & ~0xfffULL, ==, BZ_PDPT_ADDR);
    g_assert_cmpuint(rd64(gpa(m, BZ_PDPT_ADDR + 3 * 8)) & ~0xfffULL, ==,
                     BZ_PD_ADDR + 3 * 4096);
    /* The PD entry covering the entry point maps it to itself, 2 MiB page. */
    g_assert_cmpuint(rd64(gpa(m, BZ_PD_ADDR + (st->rip >> 21) * 8)), ==,
                     ((st->rip >> 21) << 21) | 0x83);
    /* __BOOT_CS in the GDT is a present 64-bit code segment. */
    g_assert_cmpuint(rd64(gpa(m, BZ_GDT_ADDR + BZ_BOOT_CS)), ==,
                     0x00af9b000000ffffULL);
}

static void test_debian_kernel(void)
{
    size_t len;
    g_autofree uint8_t *img = debian_kernel(&len);
    const uint64_t ram = 256 * MiB;
    GuestMemory *m;
    BzImageInfo info;
    BzImageLayout l;
    X86BootState st;
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *initrd = NULL;
    const size_t initrd_len = 3 * MiB + 123;
    const char *cmdline = "console=ttyS0 root=/dev/vda rw";
    const uint8_t *bp;

    if (!img) {
        return;
    }
    g_assert_true(bzimage_probe(img, len, &info, &err));
    g_assert_cmpuint(info.version, >=, 0x0206);
    g_assert_cmphex(info.xloadflags & BZ_XLF_KERNEL_64, ==, BZ_XLF_KERNEL_64);
    g_assert_true(info.relocatable);
    g_assert_cmphex(info.kernel_alignment, ==, 0x200000);
    g_assert_cmphex(info.pref_address, ==, 0x1000000);
    g_assert_cmpuint(info.init_size, >, info.kernel_size);
    g_assert_cmpuint(info.setup_size + info.kernel_size, ==, len);

    m = mem_new(ram);
    initrd = g_malloc(initrd_len);
    memset(initrd, 0x5a, initrd_len);
    g_assert_true(bzimage_load(m, img, len, initrd, initrd_len, cmdline,
                               &st, &l, &err));
    g_assert_no_error(err);
    /* Relocatable and it fits: loaded at pref_address. */
    g_assert_cmphex(l.kernel_addr, ==, info.pref_address);
    g_assert_cmpmem(gpa(m, l.kernel_addr), 4096, img + info.setup_size, 4096);
    g_assert_cmpmem(gpa(m, l.kernel_addr + info.kernel_size - 4096), 4096,
                    img + len - 4096, 4096);
    /* Initrd: page aligned, as high as possible below the top of RAM. */
    g_assert_cmpuint(l.initrd_addr % 4096, ==, 0);
    g_assert_cmpuint(l.initrd_addr + initrd_len, <=, ram);
    g_assert_cmpuint(l.initrd_addr + initrd_len, >, ram - 4096);
    g_assert_cmpuint(l.initrd_addr, >=, l.kernel_addr + info.init_size);
    g_assert_cmpmem(gpa(m, l.initrd_addr), initrd_len, initrd, initrd_len);

    bp = gpa(m, BZ_BOOT_PARAMS_ADDR);
    g_assert_cmpmem(bp + BZ_HDR_MAGIC, 4, "HdrS", 4);
    g_assert_cmpmem(bp + 0x1f1, 0x1fa - 0x1f1, img + 0x1f1, 0x1fa - 0x1f1);
    g_assert_cmpmem(bp + 0x1fc, 0x210 - 0x1fc, img + 0x1fc, 0x210 - 0x1fc);
    g_assert_cmphex(bp[BZ_HDR_TYPE_OF_LOADER], ==, 0xff);
    g_assert_cmphex(bp[BZ_HDR_LOADFLAGS] & BZ_LOADED_HIGH, ==, BZ_LOADED_HIGH);
    g_assert_cmphex(rd32(bp + BZ_HDR_CMD_LINE_PTR), ==, BZ_CMDLINE_ADDR);
    g_assert_cmpstr((const char *)gpa(m, BZ_CMDLINE_ADDR), ==, cmdline);
    g_assert_cmphex(rd32(bp + BZ_HDR_RAMDISK_IMAGE), ==, l.initrd_addr);
    g_assert_cmphex(rd32(bp + BZ_HDR_RAMDISK_SIZE), ==, initrd_len);
    g_assert_cmphex(rd32(bp + BZ_HDR_INIT_SIZE), ==, info.init_size);
    g_assert_cmphex(rd64(bp + BZ_HDR_PREF_ADDRESS), ==, info.pref_address);
    /* e820 copied from GuestMemory. */
    g_assert_cmpuint(bp[BZ_BP_E820_ENTRIES], ==, 3);
    g_assert_cmphex(rd64(bp + BZ_BP_E820_TABLE + 20 * 1), ==, 0x9fc00);
    g_assert_cmpuint(rd32(bp + BZ_BP_E820_TABLE + 20 * 1 + 16), ==, E820_RESERVED);
    g_assert_cmphex(rd64(bp + BZ_BP_E820_TABLE + 20 * 2), ==, 0x100000);
    g_assert_cmphex(rd64(bp + BZ_BP_E820_TABLE + 20 * 2 + 8), ==, ram - 0x100000);
    g_assert_cmpuint(rd32(bp + BZ_BP_E820_TABLE + 20 * 2 + 16), ==, E820_RAM);
    check_entry_state(m, &st, &l);
    mem_free(m);
}

/* The Debian kernel needs pref_address + init_size (~80 MiB) of RAM. */
static void test_debian_kernel_too_big(void)
{
    size_t len;
    g_autofree uint8_t *img = debian_kernel(&len);
    GuestMemory *m;
    X86BootState st;
    GError *err = NULL;

    if (!img) {
        return;
    }
    m = mem_new(48 * MiB);
    g_assert_false(bzimage_load(m, img, len, NULL, 0, "", &st, NULL, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_nonnull(strstr(err->message, "RAM"));
    g_clear_error(&err);
    mem_free(m);
}

/* A minimal image the loader accepts: 4 setup sectors + 'kernel' bytes. */
static uint8_t *fake_image(size_t kernel, size_t *len)
{
    uint8_t *img;

    *len = 5 * 512 + kernel;
    img = g_malloc0(*len);
    img[BZ_HDR_SETUP_SECTS] = 4;
    wr16(img + BZ_HDR_BOOT_FLAG, 0xaa55);
    img[BZ_HDR_JUMP] = 0xeb;
    img[BZ_HDR_JUMP + 1] = 0x6a;
    memcpy(img + BZ_HDR_MAGIC, "HdrS", 4);
    wr16(img + BZ_HDR_VERSION, 0x020f);
    img[BZ_HDR_LOADFLAGS] = BZ_LOADED_HIGH;
    wr32(img + BZ_HDR_INITRD_ADDR_MAX, 0x7fffffff);
    wr32(img + BZ_HDR_KERNEL_ALIGNMENT, 0x200000);
    img[BZ_HDR_RELOCATABLE] = 0;
    wr16(img + BZ_HDR_XLOADFLAGS, BZ_XLF_KERNEL_64);
    wr32(img + BZ_HDR_CMDLINE_SIZE, 255);
    wr64(img + BZ_HDR_PREF_ADDRESS, 0x100000);
    wr32(img + BZ_HDR_INIT_SIZE, (uint32_t)(kernel * 2));
    for (size_t i = 0; i < kernel; i++) {
        img[5 * 512 + i] = (uint8_t)(i * 7);
    }
    return img;
}

static void expect_load_error(uint8_t *img, size_t len, const char *what)
{
    GuestMemory *m = mem_new(16 * MiB);
    X86BootState st;
    GError *err = NULL;

    g_assert_false(bzimage_load(m, img, len, NULL, 0, NULL, &st, NULL, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    if (!strstr(err->message, what)) {
        g_test_message("message '%s' lacks '%s'", err->message, what);
        g_assert_not_reached();
    }
    g_clear_error(&err);
    mem_free(m);
}

static void test_bad_headers(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_image(64 * KiB, &len);
    g_autofree uint8_t *zeros = g_malloc0(len);
    g_autofree uint8_t *noise = g_malloc(len);

    for (size_t i = 0; i < len; i++) {
        noise[i] = (uint8_t)g_test_rand_int();
    }
    expect_load_error(zeros, len, "not a Linux bzImage");
    expect_load_error(noise, len, "not a Linux bzImage");
    expect_load_error(img, 100, "not a Linux bzImage");        /* truncated */
    wr16(img + BZ_HDR_VERSION, 0x0205);
    expect_load_error(img, len, "too old");
    wr16(img + BZ_HDR_VERSION, 0x020f);
    wr16(img + BZ_HDR_XLOADFLAGS, 0);
    expect_load_error(img, len, "64-bit");
    wr16(img + BZ_HDR_XLOADFLAGS, BZ_XLF_KERNEL_64);
    img[BZ_HDR_LOADFLAGS] = 0;
    expect_load_error(img, len, "LOADED_HIGH");
    img[BZ_HDR_LOADFLAGS] = BZ_LOADED_HIGH;
    img[BZ_HDR_SETUP_SECTS] = 200;                            /* past the end */
    expect_load_error(img, len, "truncated");
    img[BZ_HDR_SETUP_SECTS] = 4;
    img[BZ_HDR_JUMP + 1] = 0xff;                              /* header too long */
    expect_load_error(img, len, "setup header");
    img[BZ_HDR_JUMP + 1] = 0x6a;
    wr32(img + BZ_HDR_KERNEL_ALIGNMENT, 0x300000);
    expect_load_error(img, len, "power of two");
    wr32(img + BZ_HDR_KERNEL_ALIGNMENT, 0x200000);
    wr32(img + BZ_HDR_INIT_SIZE, 0xf0000000);                 /* huge */
    expect_load_error(img, len, "RAM");
    wr32(img + BZ_HDR_INIT_SIZE, 0x20000);
    wr64(img + BZ_HDR_PREF_ADDRESS, ~0ULL);                   /* hostile */
    expect_load_error(img, len, "RAM");
}

static void test_fake_kernel_layout(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_image(64 * KiB, &len);
    uint8_t initrd[10000];
    GuestMemory *m = mem_new(8 * MiB);
    BzImageLayout l;
    X86BootState st;
    g_autoptr(GError) err = NULL;
    g_autofree char *long_cmd = g_strnfill(300, 'x');
    GError *e2 = NULL;

    memset(initrd, 0xa5, sizeof(initrd));
    /* initrd_addr_max below the top of RAM wins. */
    wr32(img + BZ_HDR_INITRD_ADDR_MAX, 4 * MiB - 1);
    g_assert_true(bzimage_load(m, img, len, initrd, sizeof(initrd), "quiet",
                               &st, &l, &err));
    g_assert_cmphex(l.kernel_addr, ==, 0x100000);             /* not relocatable */
    g_assert_cmphex(l.initrd_addr, ==, 4 * MiB - 3 * 4096);
    g_assert_cmpmem(gpa(m, l.initrd_addr), sizeof(initrd), initrd, sizeof(initrd));
    g_assert_cmpmem(gpa(m, 0x100000), 64 * KiB, img + 5 * 512, 64 * KiB);
    g_assert_cmpstr((const char *)gpa(m, BZ_CMDLINE_ADDR), ==, "quiet");
    check_entry_state(m, &st, &l);

    /* An initrd larger than the room between kernel and limit. */
    g_assert_false(bzimage_load(m, img, len, initrd, 4 * MiB, NULL, &st, NULL, &e2));
    g_assert_error(e2, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_nonnull(strstr(e2->message, "initrd"));
    g_clear_error(&e2);
    /* A command line longer than cmdline_size (255). */
    g_assert_false(bzimage_load(m, img, len, NULL, 0, long_cmd, &st, NULL, &e2));
    g_assert_error(e2, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_nonnull(strstr(e2->message, "command line"));
    g_clear_error(&e2);
    mem_free(m);
}

/* No RAM at 1 MiB at all (e820 says so): a clear error, no write. */
static void test_no_high_ram(void)
{
    size_t len;
    g_autofree uint8_t *img = fake_image(4 * KiB, &len);
    GuestMemory *m = mem_new(2 * MiB);
    X86BootState st;
    GError *err = NULL;

    m->nr_e820 = 1;                   /* only the low 640 KiB */
    g_assert_false(bzimage_load(m, img, len, NULL, 0, NULL, &st, NULL, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_clear_error(&err);
    mem_free(m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bzimage/debian/load", test_debian_kernel);
    g_test_add_func("/bzimage/debian/too-little-ram", test_debian_kernel_too_big);
    g_test_add_func("/bzimage/bad-headers", test_bad_headers);
    g_test_add_func("/bzimage/fake/layout", test_fake_kernel_layout);
    g_test_add_func("/bzimage/no-high-ram", test_no_high_ram);
    return g_test_run();
}
