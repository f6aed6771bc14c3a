/* Unit tests for RAM migration (migration/ram.c) over heap-backed guest
 * memory: golden record bytes, a save/load round trip through the savevm
 * registry with two regions, live rounds driven by a fake dirty-sync, the
 * inspector reading tern's RAM stream, and hostile RAM sections; and into
 * memfd RAM, with and without a postcopy pager waiting. */
#include <string.h>
#include <sys/socket.h>

#include "migration/ram.h"
#include "migration/stream-dump.h"
#include "migration/uffd-pager.h"
#include "test-ram-vm.h"
#include "test-savevm-util.h"

#define PAGE RAM_PAGE_SIZE

/* Two regions like a VM with RAM above 4 GiB: memfd [0, lo) at GPA 0 and
 * [lo, lo + hi) at 4 GiB. */
static void mem_init(GuestMemory *m, uint64_t lo, uint64_t hi)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    m->ram_size = lo + hi;
    m->regions[0] = (GuestRegion){ 0, lo, g_malloc0(lo), 0 };
    m->nr_regions = 1;
    if (hi) {
        m->regions[1] = (GuestRegion){ 4 * GiB, hi, g_malloc0(hi), lo };
        m->nr_regions = 2;
    }
}

static void mem_destroy(GuestMemory *m)
{
    for (unsigned i = 0; i < m->nr_regions; i++) {
        g_free(m->regions[i].hva);
    }
}

static uint8_t *mem_page(GuestMemory *m, uint64_t offset)
{
    for (unsigned i = 0; i < m->nr_regions; i++) {
        GuestRegion *r = &m->regions[i];

        if (offset >= r->fd_offset && offset < r->fd_offset + r->size) {
            return r->hva + offset - r->fd_offset;
        }
    }
    g_assert_not_reached();
}

/* Three pages: zero, data, zero. */
static void test_golden(void)
{
    GuestMemory m;
    SaveVM *sv = savevm_new("m");
    RamMigration *rm;
    g_autoptr(GBytes) b = NULL;
    const uint8_t *p;
    static const uint8_t setup[] = {
        0x01, 0, 0, 0, 1, 3, 'r', 'a', 'm', 0, 0, 0, 0, 0, 0, 0, 4,
        0, 0, 0, 0, 0, 0, 0x30, 0x04, 6, 'p', 'c', '.', 'r', 'a', 'm',
        0, 0, 0, 0, 0, 0, 0x30, 0x00,                  /* length 12 KiB */
        0, 0, 0, 0, 0, 0, 0, 0x10,                     /* EOS */
        0x7e, 0, 0, 0, 1,
    };
    static const uint8_t part_head[] = {
        0x02, 0, 0, 0, 1,
        0, 0, 0, 0, 0, 0, 0, 0x02, 6, 'p', 'c', '.', 'r', 'a', 'm', 0,
        0, 0, 0, 0, 0, 0, 0x10, 0x28,                  /* PAGE|CONTINUE */
    };
    static const uint8_t part_tail[] = {
        0, 0, 0, 0, 0, 0, 0x20, 0x22, 0,               /* ZERO|CONTINUE */
        0, 0, 0, 0, 0, 0, 0, 0x10,
        0x7e, 0, 0, 0, 1,
        0x03, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10,   /* END: EOS */
        0x7e, 0, 0, 0, 1,
        0x00,
    };

    mem_init(&m, 3 * PAGE, 0);
    memset(m.regions[0].hva + PAGE, 0xa5, PAGE);
    rm = ram_migration_new(&m, "pc.ram");
    ram_migration_register(rm, sv);
    b = test_savevm_save(sv);
    p = g_bytes_get_data(b, NULL);
    p += 14;                                           /* header + config */
    g_assert_cmpmem(p, sizeof(setup), setup, sizeof(setup));
    p += sizeof(setup);
    g_assert_cmpmem(p, sizeof(part_head), part_head, sizeof(part_head));
    p += sizeof(part_head);
    for (int i = 0; i < PAGE; i++) {
        g_assert_cmpuint(p[i], ==, 0xa5);
    }
    p += PAGE;
    g_assert_cmpmem(p, sizeof(part_tail), part_tail, sizeof(part_tail));
    g_assert_cmpuint(ram_migration_stats(rm).duplicate, ==, 2);
    g_assert_cmpuint(ram_migration_stats(rm).normal, ==, 1);
    ram_migration_free(rm);
    savevm_free(sv);
    mem_destroy(&m);
}

static void fill_pattern(GuestMemory *m, unsigned seed)
{
    for (uint64_t off = 0; off < m->ram_size; off += PAGE) {
        uint8_t *p = mem_page(m, off);

        if ((off / PAGE + seed) % 3) {         /* a third stay zero */
            memset(p, (uint8_t)(off / PAGE * 7 + seed), PAGE);
            p[0] = 1;
        } else {
            memset(p, 0, PAGE);
        }
    }
}

static void assert_same_memory(GuestMemory *a, GuestMemory *b)
{
    for (uint64_t off = 0; off < a->ram_size; off += PAGE) {
        g_assert_cmpmem(mem_page(a, off), PAGE, mem_page(b, off), PAGE);
    }
}

static void test_roundtrip_two_regions(void)
{
    GuestMemory src, dst;
    SaveVM *ssv = savevm_new("m"), *dsv = savevm_new("m");
    RamMigration *srm, *drm;
    g_autoptr(GBytes) b = NULL;
    GError *err;

    mem_init(&src, 40 * PAGE, 24 * PAGE);
    mem_init(&dst, 40 * PAGE, 24 * PAGE);
    fill_pattern(&src, 1);
    memset(mem_page(&dst, 5 * PAGE), 0xff, PAGE);   /* stale, must go */
    srm = ram_migration_new(&src, "pc.ram");
    drm = ram_migration_new(&dst, "pc.ram");
    ram_migration_register(srm, ssv);
    ram_migration_register(drm, dsv);
    ram_migration_set_batch(srm, 5);                /* many PART sections */
    b = test_savevm_save(ssv);
    err = test_savevm_load(dsv, b);
    g_assert_no_error(err);
    assert_same_memory(&src, &dst);
    g_assert_cmpuint(ram_migration_stats(drm).normal +
                     ram_migration_stats(drm).duplicate, ==, 64);
    g_assert_cmpuint(ram_migration_stats(srm).remaining, ==, 0);
    ram_migration_free(srm);
    ram_migration_free(drm);
    savevm_free(ssv);
    savevm_free(dsv);
    mem_destroy(&src);
    mem_destroy(&dst);
}

/* A "guest" that dirties pages between rounds, as KVM dirty logging would
 * report them; the destination must end with the final contents. */
typedef struct FakeGuest {
    GuestMemory *mem;
    int round;
} FakeGuest;

static bool fake_sync(void *opaque, HBitmap *dirty, GError **errp)
{
    FakeGuest *g = opaque;

    if (g->round < 3) {
        for (uint64_t page = g->round; page < 16; page += 4) {
            memset(mem_page(g->mem, page * PAGE), 0x40 + g->round, PAGE);
            hbitmap_set(dirty, page, 1);
        }
    }
    g->round++;
    return true;
}

static void test_live_rounds(void)
{
    GuestMemory src, dst;
    SaveVM *ssv = savevm_new("m"), *dsv = savevm_new("m");
    RamMigration *srm, *drm;
    FakeGuest guest = { &src, 0 };
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;
    g_autoptr(GBytes) b = NULL;
    uint64_t must = 0, can = 0;
    GError *err = NULL;
    int rounds = 0;

    mem_init(&src, 16 * PAGE, 0);
    mem_init(&dst, 16 * PAGE, 0);
    fill_pattern(&src, 2);
    srm = ram_migration_new(&src, "pc.ram");
    drm = ram_migration_new(&dst, "pc.ram");
    ram_migration_set_dirty_sync(srm, fake_sync, &guest);
    ram_migration_register(srm, ssv);
    ram_migration_register(drm, dsv);

    g_assert_true(savevm_save_header(ssv, f, NULL));
    g_assert_true(savevm_save_setup(ssv, f, NULL));
    /* The core's loop: iterate until a round is done, then ask the exact
     * pending figure (which syncs) and stop once nothing is left. */
    for (;;) {
        int ret = savevm_save_iterate(ssv, f, false, &err);

        g_assert_no_error(err);
        if (ret == 0) {
            continue;
        }
        rounds++;
        savevm_save_pending_exact(ssv, &must, &can);
        if (must == 0 || rounds > 10) {
            break;
        }
        must = 0;
    }
    g_assert_cmpint(rounds, ==, 4);     /* bulk + 3 dirtying rounds */
    g_assert_true(savevm_save_complete_precopy(ssv, f, false, false, NULL));
    savevm_save_cleanup(ssv);
    g_assert_cmpuint(ram_migration_stats(srm).dirty_sync_count, ==, 6);
    out = qemu_file_mem_output_data(f);
    b = g_bytes_new(out->data, out->len);
    err = test_savevm_load(dsv, b);
    g_assert_no_error(err);
    assert_same_memory(&src, &dst);
    g_assert_cmpuint(mem_page(&dst, 2 * PAGE)[100], ==, 0x42);
    qemu_fclose(f, NULL);
    ram_migration_free(srm);
    ram_migration_free(drm);
    savevm_free(ssv);
    savevm_free(dsv);
    mem_destroy(&src);
    mem_destroy(&dst);
}

static void test_inspector_counts_pages(void)
{
    GuestMemory m;
    SaveVM *sv = savevm_new("m");
    RamMigration *rm;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    GError *err = NULL;

    mem_init(&m, 30 * PAGE, 0);
    fill_pattern(&m, 0);
    rm = ram_migration_new(&m, "pc.ram");
    ram_migration_register(rm, sv);
    b = test_savevm_save(sv);
    g_assert_true(stream_dump(b, NULL, out, &err));
    g_assert_no_error(err);
    g_assert_nonnull(strstr(out->str, "ram: block 'pc.ram' length 122880"));
    g_assert_nonnull(strstr(out->str, "ram: 1 block(s), pages: zero 10, "
                            "normal 20,"));
    ram_migration_free(rm);
    savevm_free(sv);
    mem_destroy(&m);
}

/* The stream for a 2-page "pc.ram" with 'patch' applied at 'at' (no
 * patch: cut at 'at'; SIZE_MAX: unchanged), loaded into 'dst_pages' of
 * RAM block 'block'. */
static GError *load_patched(size_t at, const void *patch, size_t len,
                            const char *block, uint64_t dst_pages)
{
    GuestMemory src, dst;
    SaveVM *ssv = savevm_new("m"), *dsv = savevm_new("m");
    RamMigration *srm, *drm;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GBytes) bad = NULL;
    g_autofree uint8_t *data = NULL;
    gsize size;
    GError *err;

    mem_init(&src, 2 * PAGE, 0);
    mem_init(&dst, dst_pages * PAGE, 0);
    memset(src.regions[0].hva, 0x11, PAGE);
    srm = ram_migration_new(&src, "pc.ram");
    drm = ram_migration_new(&dst, block);
    ram_migration_register(srm, ssv);
    ram_migration_register(drm, dsv);
    b = test_savevm_save(ssv);
    {
        const void *raw = g_bytes_get_data(b, &size);

        data = g_memdup2(raw, size);
    }
    if (patch) {
        memcpy(data + at, patch, len);
    } else if (at != SIZE_MAX) {
        size = at;                      /* truncate */
    }
    bad = g_bytes_new(data, size);
    err = test_savevm_load(dsv, bad);
    ram_migration_free(srm);
    ram_migration_free(drm);
    savevm_free(ssv);
    savevm_free(dsv);
    mem_destroy(&src);
    mem_destroy(&dst);
    return err;
}

static void expect(GError *err, const char *needle)
{
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
}

static void test_hostile(void)
{
    /* Offsets: 14 header+config ("m"), START header 17 -> MEM_SIZE at 31,
     * name at 39, length at 46, EOS 54, footer 62, PART at 67, first
     * record at 72, its name at 80, the page data at 87. */
    static const uint8_t big_offset[] = { 0, 0, 0, 0, 0, 0x10, 0x00, 0x08 };
    static const uint8_t xbzrle[] = { 0, 0, 0, 0, 0, 0, 0x00, 0x48 };
    static const uint8_t cont[] = { 0, 0, 0, 0, 0, 0, 0x00, 0x28 };

    expect(load_patched(SIZE_MAX, NULL, 0, "pc.rom", 2), "unknown RAM block 'pc.ram'");
    expect(load_patched(SIZE_MAX, NULL, 0, "pc.ram", 3), "stream has 8192 bytes of "
           "RAM, this VM 12288");
    expect(load_patched(53, "\x11", 1, "pc.ram", 2), "has 8209 bytes in the "
           "stream");
    expect(load_patched(72, big_offset, 8, "pc.ram", 2), "page offset "
           "0x100000 is outside block 'pc.ram'");
    expect(load_patched(72, xbzrle, 8, "pc.ram", 2), "unsupported record "
           "flags 0x48");
    expect(load_patched(72, cont, 8, "pc.ram", 2), "CONTINUE page before any "
           "named block");
    expect(load_patched(81, "x", 1, "pc.ram", 2), "page for unknown RAM "
           "block 'xc.ram'");
    for (size_t cut = 14; cut < 87 + PAGE + 20; cut += 7) {
        GError *err = load_patched(cut, NULL, 0, "pc.ram", 2);

        g_assert_nonnull(err);
        g_error_free(err);
    }
}

/* QEMU may name the block in one section and CONTINUE in the next. */
static void test_continue_across_sections(void)
{
    static const uint8_t stream[] = {
        'Q', 'E', 'V', 'M', 0, 0, 0, 3, 0x07, 0, 0, 0, 1, 'm',
        0x01, 0, 0, 0, 0, 3, 'r', 'a', 'm', 0, 0, 0, 0, 0, 0, 0, 4,
        0, 0, 0, 0, 0, 0, 0x20, 0x04, 6, 'p', 'c', '.', 'r', 'a', 'm',
        0, 0, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x10,
        0x7e, 0, 0, 0, 0,
        0x02, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0x02, 6, 'p', 'c', '.', 'r', 'a', 'm', 0,
        0, 0, 0, 0, 0, 0, 0, 0x10, 0x7e, 0, 0, 0, 0,
        0x02, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0x10, 0x22, 0x00,
        0, 0, 0, 0, 0, 0, 0, 0x10, 0x7e, 0, 0, 0, 0,
        0x00,
    };
    GuestMemory m;
    SaveVM *sv = savevm_new("m");
    RamMigration *rm;
    g_autoptr(GBytes) b = g_bytes_new(stream, sizeof(stream));
    GError *err;

    mem_init(&m, 2 * PAGE, 0);
    memset(m.regions[0].hva + PAGE, 0x77, PAGE);
    rm = ram_migration_new(&m, "pc.ram");
    ram_migration_register(rm, sv);
    err = test_savevm_load(sv, b);
    g_assert_no_error(err);
    g_assert_cmpuint(ram_migration_stats(rm).duplicate, ==, 2);
    g_assert_cmpuint(m.regions[0].hva[PAGE + 5], ==, 0);    /* zeroed */
    ram_migration_free(rm);
    savevm_free(sv);
    mem_destroy(&m);
}

/*
 * The postcopy switchover shape: ADVISE, then PACKAGED { LISTEN, device
 * state, RUN } and RAM pages after it on the outer stream. LISTEN starts a
 * thread that keeps reading the socket while the main thread finishes the
 * package; RUN makes savevm_load return at once; the listen thread then
 * loads the RAM that follows and reaches EOF.
 */
typedef struct Listen {
    SaveVM *sv;
    QEMUFile *f;
    GThread *thread;
    int result;
    GError *err;
    bool ran;
} Listen;

static gpointer listen_thread(gpointer opaque)
{
    Listen *l = opaque;

    l->result = savevm_load_main(l->sv, l->f, &l->err);
    savevm_load_cleanup(l->sv);
    return NULL;
}

static bool on_listen(void *opaque, QEMUFile *f, GError **errp)
{
    Listen *l = opaque;

    l->f = f;
    l->thread = g_thread_new("postcopy/listen", listen_thread, l);
    return true;
}

static bool on_advise(void *opaque, bool ram, uint64_t hp, uint64_t ps,
                      GError **errp)
{
    return true;
}

static bool on_run(void *opaque, GError **errp)
{
    ((Listen *)opaque)->ran = true;
    return true;
}

static const SaveVMIncomingOps postcopy_ops = {
    .postcopy_advise = on_advise,
    .postcopy_listen = on_listen,
    .postcopy_run = on_run,
};

typedef struct Dev {
    uint32_t x;
} Dev;

static const VMStateDescription vmstate_dev = {
    .name = "dev", .version_id = 1, .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(x, Dev),
        VMSTATE_END_OF_LIST()
    },
};

static void write_postcopy_stream(QEMUFile *f, GuestMemory *src)
{
    SaveVM *sv = savevm_new("m");
    RamMigration *rm = ram_migration_new(src, "pc.ram");
    QEMUFile *pkg = qemu_file_new_mem_output();
    const GByteArray *blob;
    Dev dev = { 0xfeed };

    ram_migration_register(rm, sv);
    savevm_register_vmstate(sv, NULL, 0, &vmstate_dev, &dev);
    g_assert_true(savevm_save_header(sv, f, NULL));
    savevm_send_postcopy_advise(f, false, 0, 0);
    g_assert_true(savevm_save_setup(sv, f, NULL));
    /* Switchover: device state travels inside the package. */
    savevm_send_postcopy_listen(pkg);
    g_assert_true(savevm_save_devices(sv, pkg, NULL));
    savevm_send_postcopy_run(pkg);
    blob = qemu_file_mem_output_data(pkg);
    g_assert_true(savevm_send_packaged(f, blob->data, blob->len, NULL));
    /* Then the pages, read by the listen thread, and EOF. (ram.c has no
     * postcopy mode yet, so its precopy PARTs stand in for the pages.) */
    while (savevm_save_iterate(sv, f, false, NULL) == 0) {
    }
    g_assert_true(savevm_save_complete_postcopy(sv, f, NULL));
    savevm_save_cleanup(sv);
    qemu_fclose(pkg, NULL);
    ram_migration_free(rm);
    savevm_free(sv);
}

static void test_postcopy_listen_thread(void)
{
    GuestMemory src, dst;
    int sv_fds[2];
    QEMUFile *out, *in;
    SaveVM *dsv = savevm_new("m");
    RamMigration *drm;
    Dev dev = { 0 };
    Listen l = { .sv = dsv };
    GError *err = NULL;

    mem_init(&src, 8 * PAGE, 0);
    mem_init(&dst, 8 * PAGE, 0);
    fill_pattern(&src, 1);
    drm = ram_migration_new(&dst, "pc.ram");
    ram_migration_register(drm, dsv);
    savevm_register_vmstate(dsv, NULL, 0, &vmstate_dev, &dev);
    savevm_set_incoming_ops(dsv, &postcopy_ops, &l);

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv_fds), ==, 0);
    out = qemu_file_new_fd_output(sv_fds[0]);
    in = qemu_file_new_fd_input(sv_fds[1]);
    write_postcopy_stream(out, &src);
    g_assert_true(qemu_fclose(out, NULL));

    g_assert_true(savevm_load(dsv, in, &err));      /* returns at RUN */
    g_assert_no_error(err);
    g_assert_true(l.ran);
    g_assert_cmphex(dev.x, ==, 0xfeed);
    g_assert_cmpint(savevm_postcopy_state(dsv), ==, POSTCOPY_INCOMING_RUNNING);
    g_assert_nonnull(l.thread);
    g_thread_join(l.thread);
    g_assert_no_error(l.err);
    g_assert_cmpint(l.result, ==, 0);               /* reached EOF */
    assert_same_memory(&src, &dst);
    qemu_fclose(in, NULL);
    ram_migration_free(drm);
    savevm_free(dsv);
    mem_destroy(&src);
    mem_destroy(&dst);
}

static bool no_source(void *opaque, uint64_t offset)
{
    return false;
}

static const UffdPageSourceOps no_source_ops = { .request = no_source };

/* Precopy into memfd holes: written into the memfd without mapping the
 * pages, unless a postcopy pager waits to start, whose minor faults would
 * take every page the mapping lacks to the source. */
static void precopy_into_memfd(bool with_pager)
{
    const uint64_t npages = 32;
    SaveVM *ssv = savevm_new("m");
    g_autoptr(GBytes) b = NULL;
    UffdPager *pager = NULL;
    RamMigration *srm;
    GuestMemory src;
    TestRamVm dst;
    uint64_t data = 0;
    GError *err = NULL;

    mem_init(&src, npages / 2 * PAGE, npages / 2 * PAGE);
    fill_pattern(&src, 1);
    for (uint64_t page = 0; page < npages; page++) {
        data += (page + 1) % 3 != 0;
    }
    test_ram_vm_init(&dst, npages * PAGE);
    if (with_pager) {
        pager = uffd_pager_new(&dst.mem, 1, &no_source_ops, NULL, &err);
        g_assert_no_error(err);
        ram_migration_set_pager(dst.ram, pager);
    }
    srm = ram_migration_new(&src, "pc.ram");
    ram_migration_register(srm, ssv);
    b = test_savevm_save(ssv);
    err = test_savevm_load(dst.sv, b);
    g_assert_no_error(err);
    /* Zero pages stay holes either way. */
    g_assert_cmpuint(test_mapped_pages(dst.base, npages), ==,
                     with_pager ? data : 0);
    assert_same_memory(&src, &dst.mem);
    ram_migration_set_pager(dst.ram, NULL);
    uffd_pager_free(pager);
    ram_migration_free(srm);
    savevm_free(ssv);
    mem_destroy(&src);
    test_ram_vm_destroy(&dst);
}

static void test_precopy_into_memfd(void)
{
    precopy_into_memfd(false);
}

static void test_precopy_into_memfd_pager(void)
{
    precopy_into_memfd(true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/savevm-ram/golden", test_golden);
    g_test_add_func("/savevm-ram/roundtrip-two-regions",
                    test_roundtrip_two_regions);
    g_test_add_func("/savevm-ram/live-rounds", test_live_rounds);
    g_test_add_func("/savevm-ram/inspector-counts-pages",
                    test_inspector_counts_pages);
    g_test_add_func("/savevm-ram/hostile", test_hostile);
    g_test_add_func("/savevm-ram/continue-across-sections",
                    test_continue_across_sections);
    g_test_add_func("/savevm-ram/precopy-into-memfd",
                    test_precopy_into_memfd);
    g_test_add_func("/savevm-ram/precopy-into-memfd-pager",
                    test_precopy_into_memfd_pager);
    g_test_add_func("/savevm-ram/postcopy-listen-thread",
                    test_postcopy_listen_thread);
    return g_test_run();
}
