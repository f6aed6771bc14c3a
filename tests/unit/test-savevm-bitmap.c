/* Unit tests for the migration code that needs the block layer, over real
 * qcow2 nodes: dirty-bitmap migration (golden START bytes, a tern-to-tern
 * round trip with enabled/disabled and persistent bitmaps, the bitmaps of a
 * stream QEMU 7.2 wrote, the destination's refusals) and the savevm stream
 * written into and read back from a qcow2 VM state area. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/block-dirty-bitmap.h"
#include "migration/global-state.h"
#include "migration/migration-job.h"
#include "migration/qemu-file-block.h"
#include "migration/ram.h"
#include "migration/stream-dump.h"
#include "test-postcopy-util.h"
#include "test-savevm-util.h"

#define DISK_SIZE (64 * MiB)

typedef struct Env {
    char *dir;
    BlockNode *bs;
    BlockBackend *blk;          /* over bs, unnamed: bs goes by its node-name */
    BlockBackendList *blks;
} Env;

static BlockNode *open_disk(Env *e, const char *file)
{
    g_autofree char *path = g_build_filename(e->dir, file, NULL);
    GError *err = NULL;
    BlockNode *bs;

    g_assert_true(bdrv_create("qcow2", path, DISK_SIZE, NULL, &err));
    g_assert_no_error(err);
    bs = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    bdrv_set_node_name(bs, "disk0");
    return bs;
}

static void env_init(Env *e, const char *file)
{
    e->dir = g_dir_make_tmp("tern-dbm-XXXXXX", NULL);
    g_assert_nonnull(e->dir);
    e->bs = open_disk(e, file);
    e->blk = blk_new(NULL, e->bs, NULL);
    e->blks = blk_list_new();
    g_assert_true(blk_list_add(e->blks, e->blk, NULL));
}

static void env_destroy(Env *e)
{
    g_autoptr(GDir) d = g_dir_open(e->dir, 0, NULL);
    const char *name;

    blk_list_free(e->blks);
    blk_free(e->blk);           /* closes e->bs */
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(e->dir, name, NULL);
        unlink(p);
    }
    rmdir(e->dir);
    g_free(e->dir);
}

static DirtyBitmapMigration *dbm_for(Env *e, SaveVM *sv)
{
    DirtyBitmapNodes nodes = { .blks = e->blks, .opaque = e };
    DirtyBitmapMigration *dbm = dirty_bitmap_migration_new(&nodes);

    dirty_bitmap_migration_set_enabled(dbm, true);
    dirty_bitmap_migration_register(dbm, sv);
    return dbm;
}

static BdrvDirtyBitmap *add_bitmap(BlockNode *bs, const char *name,
                                   uint32_t gran, bool persistent)
{
    GError *err = NULL;
    BdrvDirtyBitmap *b;

    bdrv_lock(bs);
    b = bdrv_create_dirty_bitmap(bs, gran, name, &err);
    g_assert_no_error(err);
    if (persistent) {
        g_assert_true(bdrv_dirty_bitmap_make_persistent(b, true, &err));
        g_assert_no_error(err);
    }
    bdrv_set_dirty_bitmap(b, 1 * MiB, 64 * KiB);
    bdrv_set_dirty_bitmap(b, 10 * MiB, 4 * KiB);
    bdrv_unlock(bs);
    return b;
}

static bool mem_contains(GBytes *b, const void *needle, size_t len)
{
    gsize size;
    const uint8_t *p = g_bytes_get_data(b, &size);

    return memmem(p, size, needle, len) != NULL;
}

/* The bitmap's dirty state matches the two writes add_bitmap made. */
static void check_bits(BlockNode *bs, const char *name, uint32_t gran)
{
    BdrvDirtyBitmap *b;

    bdrv_lock(bs);
    b = bdrv_find_dirty_bitmap(bs, name);
    g_assert_nonnull(b);
    g_assert_cmpuint(bdrv_dirty_bitmap_granularity(b), ==, gran);
    g_assert_true(bdrv_dirty_bitmap_get(b, 1 * MiB));
    g_assert_true(bdrv_dirty_bitmap_get(b, 10 * MiB));
    g_assert_false(bdrv_dirty_bitmap_get(b, 0));
    g_assert_false(bdrv_dirty_bitmap_get(b, 20 * MiB));
    g_assert_cmpuint(bdrv_get_dirty_count(b), ==,
                     (ALIGN_UP(64 * KiB, gran) + gran));
    bdrv_unlock(bs);
}

static void test_roundtrip(void)
{
    Env src, dst;
    SaveVM *ssv = savevm_new("none"), *dsv = savevm_new("none");
    DirtyBitmapMigration *sdbm, *ddbm;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GString) dump = g_string_new(NULL);
    BdrvDirtyBitmap *bm0, *bm1;
    GError *err;
    /* QEMU's START chunk for bm0: flags 0x1c, names, be32 64 KiB, 0x03. */
    static const uint8_t start_bm0[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '0', 3, 'b', 'm', '0',
        0x00, 0x01, 0x00, 0x00, 0x03,
    };
    static const uint8_t start_bm1[] = {
        0x14, 3, 'b', 'm', '1', 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
    };

    env_init(&src, "src.qcow2");
    env_init(&dst, "dst.qcow2");
    bm0 = add_bitmap(src.bs, "bm0", 64 * KiB, true);
    bm1 = add_bitmap(src.bs, "bm1", 128 * KiB, false);
    bdrv_lock(src.bs);
    bdrv_disable_dirty_bitmap(bm1);
    bdrv_unlock(src.bs);
    sdbm = dbm_for(&src, ssv);
    ddbm = dbm_for(&dst, dsv);
    b = test_savevm_save(ssv);
    g_assert_true(mem_contains(b, start_bm0, sizeof(start_bm0)));
    g_assert_true(mem_contains(b, start_bm1, sizeof(start_bm1)));
    bdrv_lock(src.bs);
    g_assert_false(bdrv_dirty_bitmap_busy(bm0));     /* released again */
    bdrv_unlock(src.bs);

    /* tern-stream's reader agrees on what was sent. */
    g_assert_true(stream_dump(b, NULL, dump, NULL));
    g_assert_nonnull(strstr(dump->str, "bitmap: node 'disk0' name 'bm1' "
                            "granularity 131072 flags 0x00 complete"));
    g_assert_nonnull(strstr(dump->str, "  dirty: 1048576 +65536\n"
                            "  dirty: 10485760 +65536\n"));

    err = test_savevm_load(dsv, b);
    g_assert_no_error(err);
    check_bits(dst.bs, "bm0", 64 * KiB);
    check_bits(dst.bs, "bm1", 128 * KiB);
    dirty_bitmap_migration_before_vm_start(ddbm);
    bdrv_lock(dst.bs);
    bm0 = bdrv_find_dirty_bitmap(dst.bs, "bm0");
    bm1 = bdrv_find_dirty_bitmap(dst.bs, "bm1");
    g_assert_true(bdrv_dirty_bitmap_enabled(bm0));
    g_assert_false(bdrv_dirty_bitmap_enabled(bm1));
    g_assert_true(bdrv_dirty_bitmap_get_persistence(bm0));
    g_assert_false(bdrv_dirty_bitmap_get_persistence(bm1));
    g_assert_false(bdrv_dirty_bitmap_has_successor(bm0));
    bdrv_unlock(dst.bs);

    /* Loading the same bitmaps again is refused, as QEMU refuses it. */
    err = test_savevm_load(dsv, b);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "Bitmap with the same name ('bm0') "
                            "already exists on destination"));
    g_error_free(err);

    dirty_bitmap_migration_free(sdbm);
    dirty_bitmap_migration_free(ddbm);
    savevm_free(ssv);
    savevm_free(dsv);
    env_destroy(&src);
    env_destroy(&dst);
}

static void test_unnamed_node_refused(void)
{
    Env src;
    SaveVM *sv = savevm_new("none");
    DirtyBitmapMigration *dbm;
    QEMUFile *f = qemu_file_new_mem_output();
    GError *err = NULL;

    env_init(&src, "src.qcow2");
    bdrv_set_node_name(src.bs, "#block7");
    add_bitmap(src.bs, "bm0", 64 * KiB, false);
    dbm = dbm_for(&src, sv);
    g_assert_false(savevm_save_all(sv, f, &err));
    g_assert_nonnull(strstr(err->message, "Bitmap 'bm0' in a node with "
                            "auto-generated name '#block7' can't be migrated"));
    g_clear_error(&err);
    qemu_fclose(f, NULL);
    /* And a node with no name at all. */
    bdrv_set_node_name(src.bs, "");
    f = qemu_file_new_mem_output();
    g_assert_false(savevm_save_all(sv, f, &err));
    g_assert_nonnull(strstr(err->message, "Bitmap 'bm0' in unnamed node "
                            "can't be migrated"));
    g_error_free(err);
    qemu_fclose(f, NULL);
    dirty_bitmap_migration_free(dbm);
    savevm_free(sv);
    env_destroy(&src);
}

/* QEMU 7.2's stream (tests/fuzz/corpus/stream/qemu-none-bitmaps-trimmed.bin:
 * -M none -m 4M, node disk0 with bm0 64 KiB persistent and bm1 128 KiB,
 * both written at 1 MiB + 64 KiB and 10 MiB + 4 KiB). */
typedef struct QemuDevs {
    int64_t t[3];
    uint32_t rs_size;
    uint8_t runstate[100];
} QemuDevs;

static const VMStateDescription vmstate_timer = {
    .name = "timer", .version_id = 2, .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_INT64(t[0], QemuDevs),
        VMSTATE_INT64(t[1], QemuDevs),
        VMSTATE_INT64(t[2], QemuDevs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_globalstate = {
    .name = "globalstate", .version_id = 1, .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(rs_size, QemuDevs),
        VMSTATE_BUFFER(runstate, QemuDevs),
        VMSTATE_END_OF_LIST()
    },
};

static void test_load_qemu_bitmaps(void)
{
    g_autofree char *path = g_test_build_filename(
        G_TEST_DIST, "..", "fuzz", "corpus", "stream",
        "qemu-none-bitmaps-trimmed.bin", NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr(GBytes) b = NULL;
    Env dst;
    SaveVM *sv = savevm_new("none");
    DirtyBitmapMigration *dbm;
    QemuDevs devs = { .rs_size = 0 };
    GuestMemory mem = {
        .regions = { { 0, 4 * MiB, g_malloc0(4 * MiB), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 4 * MiB,
    };
    RamMigration *ram = ram_migration_new(&mem, "ram");
    GError *err;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    b = g_bytes_new(data, len);
    env_init(&dst, "dst.qcow2");
    savevm_register_vmstate(sv, NULL, 0, &vmstate_timer, &devs);
    ram_migration_register(ram, sv);
    dbm = dbm_for(&dst, sv);
    savevm_register_vmstate(sv, NULL, 0, &vmstate_globalstate, &devs);
    err = test_savevm_load(sv, b);
    g_assert_no_error(err);
    check_bits(dst.bs, "bm0", 64 * KiB);
    check_bits(dst.bs, "bm1", 128 * KiB);
    dirty_bitmap_migration_before_vm_start(dbm);
    bdrv_lock(dst.bs);
    g_assert_true(bdrv_dirty_bitmap_get_persistence(
                      bdrv_find_dirty_bitmap(dst.bs, "bm0")));
    g_assert_true(bdrv_dirty_bitmap_enabled(
                      bdrv_find_dirty_bitmap(dst.bs, "bm1")));
    bdrv_unlock(dst.bs);
    g_assert_cmpstr((char *)devs.runstate, ==, "prelaunch");
    dirty_bitmap_migration_free(dbm);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
    savevm_free(sv);
    env_destroy(&dst);
}

/* A dirty-bitmap section alone after the configuration, as QEMU accepts,
 * loaded into disk0 (which holds a bitmap "mine" of its own); 'version' is
 * the section's. */
static GError *load_chunks_v(const uint8_t *chunks, size_t len, uint8_t version)
{
    g_autoptr(GByteArray) s = g_byte_array_new();
    static const uint8_t head[] = {
        'Q', 'E', 'V', 'M', 0, 0, 0, 3, 0x07, 0, 0, 0, 4, 'n', 'o', 'n', 'e',
        0x01, 0, 0, 0, 9, 12, 'd', 'i', 'r', 't', 'y', '-', 'b', 'i', 't',
        'm', 'a', 'p', 0, 0, 0, 0, 0, 0, 0,
    };
    static const uint8_t tail[] = { 0x7e, 0, 0, 0, 9, 0x00 };
    Env dst;
    SaveVM *sv = savevm_new("none");
    DirtyBitmapMigration *dbm;
    g_autoptr(GBytes) b = NULL;
    GError *err;

    g_byte_array_append(s, head, sizeof(head));
    g_byte_array_append(s, &version, 1);
    g_byte_array_append(s, chunks, len);
    g_byte_array_append(s, tail, sizeof(tail));
    b = g_bytes_new(s->data, s->len);
    env_init(&dst, "dst.qcow2");
    add_bitmap(dst.bs, "mine", 64 * KiB, false);
    dbm = dbm_for(&dst, sv);
    err = test_savevm_load(sv, b);
    savevm_load_abandon(sv);
    if (!err) {
        /* What loaded is whole: complete bitmaps are no longer busy. */
        dirty_bitmap_migration_before_vm_start(dbm);
        bdrv_lock(dst.bs);
        for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(dst.bs, NULL); bm;
             bm = bdrv_dirty_bitmap_next(dst.bs, bm)) {
            g_assert_false(bdrv_dirty_bitmap_busy(bm));
        }
        bdrv_unlock(dst.bs);
    }
    dirty_bitmap_migration_free(dbm);
    savevm_free(sv);
    env_destroy(&dst);
    return err;
}

static GError *load_chunks(const uint8_t *chunks, size_t len)
{
    return load_chunks_v(chunks, len, 1);
}

static void expect(GError *err, const char *needle)
{
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
}

/* START of disk0/bm at 64 KiB, not enabled, then what the test adds. */
#define START_BM 0x1c, 5, 'd', 'i', 's', 'k', '0', 2, 'b', 'm', 0, 1, 0, 0, 0x00
/* BITS of the first 64 MiB of the current bitmap: 128 bytes of bits. */
#define BITS_ALL 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, \
                 0, 0, 0, 0, 0, 0, 0, 0x80
#define ZERO16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define ZERO128 ZERO16, ZERO16, ZERO16, ZERO16, ZERO16, ZERO16, ZERO16, ZERO16

/* Every refusal of the loader, in the seed's words where it has them. */
static void test_hostile(void)
{
    static const uint8_t ok[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '0', 2, 'b', 'm', 0, 1, 0, 0, 0x01,
        0x80, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00,  /* 2-byte flags */
        0, 0, 0, 0, 0, 0, 0, 32, 0x05, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x80, 0x80, 0x00, 0x21,                          /* 4-byte COMPLETE|EOS */
    };
    static const uint8_t no_node[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '9', 2, 'b', 'm', 0, 1, 0, 0, 0, 0x01,
    };
    static const uint8_t empty_node[] = { 0x1c, 0, 2, 'b', 'm', 0, 1, 0, 0, 0 };
    static const uint8_t cut_node[] = { 0x1c, 200, 'd', 'i' };
    static const uint8_t empty_name[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '0', 0, 0, 1, 0, 0, 0,
    };
    static const uint8_t no_bitmap[] = {
        0x4c, 5, 'd', 'i', 's', 'k', '0', 2, 'b', 'm',
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01,
    };
    static const uint8_t no_device_name[] = { 0x40, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t no_bitmap_name[] = {
        0x48, 5, 'd', 'i', 's', 'k', '0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    };
    static const uint8_t exists[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '0', 4, 'm', 'i', 'n', 'e', 0, 1, 0, 0, 0,
    };
    static const uint8_t not_migrated[] = {     /* BITS for disk0's own */
        0x4e, 5, 'd', 'i', 's', 'k', '0', 4, 'm', 'i', 'n', 'e',
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0x01,
    };
    static const uint8_t bad_size[] = {
        START_BM, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00,
        0, 0, 0, 0, 0, 0, 0x10, 0,
    };
    static const uint8_t bad_gran[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '0', 2, 'b', 'm', 0, 0, 0, 3, 0x00, 0x01,
    };
    static const uint8_t reserved[] = {
        0x1c, 5, 'd', 'i', 's', 'k', '0', 2, 'b', 'm', 0, 1, 0, 0, 0x08, 0x01,
    };
    static const uint8_t beyond[] = {       /* past the end of a 64 MiB disk */
        START_BM, 0x42, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x02, 0, 0x01,
    };
    static const uint8_t cut_bits[] = { START_BM, BITS_ALL, 0xff, 0xff };
    static const uint8_t after_complete[] = {
        START_BM, BITS_ALL, ZERO128, 0x20, 0x42, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0x02, 0, 0x01,
    };
    static const uint8_t complete_twice[] = {
        START_BM, BITS_ALL, ZERO128, 0x20, 0x20, 0x01,
    };
    static const uint8_t unknown_flags[] = { 0x81, 0x00, 0x01 };

    g_assert_no_error(load_chunks(ok, sizeof(ok)));
    g_assert_no_error(load_chunks(complete_twice, sizeof(complete_twice)));
    expect(load_chunks(no_node, sizeof(no_node)),
           "Cannot find device='disk9' nor node-name='disk9'");
    expect(load_chunks(empty_node, sizeof(empty_node)),
           "Unable to read node name string");
    expect(load_chunks(cut_node, sizeof(cut_node)),
           "Unable to read node name string");
    expect(load_chunks(empty_name, sizeof(empty_name)),
           "Unable to read bitmap name string");
    expect(load_chunks(no_bitmap, sizeof(no_bitmap)),
           "Error: unknown dirty bitmap 'bm' for block device 'disk0'");
    expect(load_chunks(no_device_name, sizeof(no_device_name)),
           "Error: block device name is not set");
    expect(load_chunks(no_bitmap_name, sizeof(no_bitmap_name)),
           "Error: block device name is not set");
    expect(load_chunks(exists, sizeof(exists)),
           "Bitmap with the same name ('mine') already exists on destination");
    expect(load_chunks(not_migrated, sizeof(not_migrated)),
           "Error: unknown dirty bitmap 'mine' for block device 'disk0'");
    expect(load_chunks(bad_size, sizeof(bad_size)),
           "Migrated bitmap granularity doesn't match the destination bitmap "
           "'bm' granularity");
    expect(load_chunks(bad_gran, sizeof(bad_gran)),
           "Granularity must be power of 2 and at least 512");
    expect(load_chunks(reserved, sizeof(reserved)),
           "Unknown flags in migrated dirty bitmap header: 8");
    expect(load_chunks(beyond, sizeof(beyond)),
           "Migrated bitmap 'bm' does not match the size of node 'disk0'");
    expect(load_chunks(cut_bits, sizeof(cut_bits)),
           "Failed to read bitmap bits");
    expect(load_chunks(after_complete, sizeof(after_complete)),
           "dirty bitmap 'bm' for block device 'disk0' is complete already");
    expect(load_chunks(unknown_flags, sizeof(unknown_flags)),
           "unknown chunk flags 0x100");
    expect(load_chunks_v(ok, sizeof(ok), 2), "unsupported version 2");
    for (size_t cut = 0; cut < sizeof(ok); cut++) {
        GError *err = load_chunks(ok, cut);

        g_assert_nonnull(err);
        g_error_free(err);
    }
}

/* savevm into the qcow2 VM state area and loadvm back, RAM included. */
static void test_vmstate_area(void)
{
    Env e;
    GuestMemory src = {
        .regions = { { 0, 256 * KiB, g_malloc0(256 * KiB), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 256 * KiB,
    };
    GuestMemory dst = {
        .regions = { { 0, 256 * KiB, g_malloc0(256 * KiB), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 256 * KiB,
    };
    SaveVM *ssv = savevm_new("none"), *dsv = savevm_new("none");
    RamMigration *sram = ram_migration_new(&src, "pc.ram");
    RamMigration *dram = ram_migration_new(&dst, "pc.ram");
    MigGlobalState sgs, dgs = { 0 };
    QEMUFile *f;
    uint8_t head[17];
    uint64_t size;
    GError *err = NULL;

    env_init(&e, "snap.qcow2");
    for (size_t i = 0; i < 256 * KiB; i += 3 * 4096) {
        memset(src.regions[0].hva + i, (uint8_t)(i >> 12) | 1, 4096);
    }
    mig_global_state_set(&sgs, "paused");
    ram_migration_register(sram, ssv);
    mig_global_state_register(ssv, &sgs);
    ram_migration_register(dram, dsv);
    mig_global_state_register(dsv, &dgs);

    f = qemu_file_new_vmstate_output(e.bs);
    g_assert_true(savevm_save_all(ssv, f, &err));
    g_assert_no_error(err);
    size = qemu_file_tell(f);
    g_assert_true(qemu_fclose(f, &err));
    g_assert_true(bdrv_load_vmstate(e.bs, 0, head, sizeof(head), &err));
    g_assert_cmpmem(head, sizeof(head),
                    "QEVM\0\0\0\3\x07\0\0\0\4none", sizeof(head));

    f = qemu_file_new_vmstate_input(e.bs, size);
    g_assert_true(savevm_load(dsv, f, &err));
    g_assert_no_error(err);
    g_assert_true(qemu_file_at_eof(f));
    qemu_fclose(f, NULL);
    g_assert_cmpmem(src.regions[0].hva, 256 * KiB, dst.regions[0].hva,
                    256 * KiB);
    g_assert_cmpstr(mig_global_state_received(&dgs), ==, "paused");

    /* A stream cut short by the recorded size fails cleanly. */
    f = qemu_file_new_vmstate_input(e.bs, size / 2);
    g_assert_false(savevm_load(dsv, f, &err));
    g_assert_nonnull(strstr(err->message, "truncated"));
    g_clear_error(&err);
    qemu_fclose(f, NULL);

    ram_migration_free(sram);
    ram_migration_free(dram);
    savevm_free(ssv);
    savevm_free(dsv);
    g_free(src.regions[0].hva);
    g_free(dst.regions[0].hva);
    env_destroy(&e);
}

typedef struct LoadThread {
    SaveVM *sv;
    QEMUFile *f;
    bool ok;
    GError *err;
} LoadThread;

static gpointer load_thread(gpointer opaque)
{
    LoadThread *t = opaque;

    t->ok = savevm_load(t->sv, t->f, &t->err);
    return NULL;
}

/* A whole migration job, RAM and bitmaps, over a socket. */
static void test_migration_job_with_bitmaps(void)
{
    Env src, dst;
    SaveVM *ssv = savevm_new("none"), *dsv = savevm_new("none");
    DirtyBitmapMigration *sdbm, *ddbm;
    GuestMemory mem = {
        .regions = { { 0, 256 * KiB, g_malloc0(256 * KiB), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 256 * KiB,
    };
    GuestMemory dmem = {
        .regions = { { 0, 256 * KiB, g_malloc0(256 * KiB), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 256 * KiB,
    };
    RamMigration *sram = ram_migration_new(&mem, "pc.ram");
    RamMigration *dram = ram_migration_new(&dmem, "pc.ram");
    MigrationParams params = { 0 };
    LoadThread lt = { .sv = dsv };
    MigrationStats st;
    MigrationJob *job;
    GThread *t;
    int fds[2];
    GError *err = NULL;

    env_init(&src, "src.qcow2");
    env_init(&dst, "dst.qcow2");
    add_bitmap(src.bs, "bm0", 64 * KiB, false);
    memset(mem.regions[0].hva + 8192, 0x33, 4096);
    ram_migration_register(sram, ssv);
    ram_migration_register(dram, dsv);
    sdbm = dbm_for(&src, ssv);
    ddbm = dbm_for(&dst, dsv);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    lt.f = qemu_file_new_fd_input(fds[1]);
    t = g_thread_new("dest", load_thread, &lt);
    job = migration_job_start(ssv, qemu_file_new_fd_output(fds[0]), NULL, sram,
                              &params, NULL);
    g_assert_true(migration_job_wait(job, &err));
    g_assert_no_error(err);
    g_thread_join(t);
    g_assert_no_error(lt.err);
    g_assert_true(lt.ok);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "completed");
    check_bits(dst.bs, "bm0", 64 * KiB);
    g_assert_cmpuint(dmem.regions[0].hva[8192 + 7], ==, 0x33);

    qemu_fclose(lt.f, NULL);
    migration_job_free(job);
    dirty_bitmap_migration_free(sdbm);
    dirty_bitmap_migration_free(ddbm);
    ram_migration_free(sram);
    ram_migration_free(dram);
    savevm_free(ssv);
    savevm_free(dsv);
    g_free(mem.regions[0].hva);
    g_free(dmem.regions[0].hva);
    env_destroy(&src);
    env_destroy(&dst);
}

/* ---- a postcopy of the bitmaps alone, byte for byte ---- */

typedef struct Collect {
    int fd;
    GByteArray *bytes;
} Collect;

static gpointer collect_thread(gpointer opaque)
{
    Collect *c = opaque;
    uint8_t buf[4096];
    ssize_t n;

    while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
        g_byte_array_append(c->bytes, buf, n);
    }
    return NULL;
}

static bool stop_vm(void *opaque, GError **errp)
{
    return true;
}

/* What a source writes for a postcopy of bitmaps alone: one RAM page,
 * bitmap bm0 of add_bitmap on node disk0. */
static GBytes *bitmap_postcopy_stream(void)
{
    Env src;
    SaveVM *sv = savevm_new("none");
    JobRef ps = { NULL };
    DirtyBitmapNodes nodes = { .in_postcopy = jobref_in_postcopy, .opaque = &ps };
    DirtyBitmapMigration *dbm;
    GuestMemory mem = {
        .regions = { { 0, 4096, g_malloc0(4096), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 4096,
    };
    RamMigration *ram = ram_migration_new(&mem, "pc.ram");
    MigrationParams params = { .postcopy_bitmaps = true };
    MigrationHooks hooks = { .stop_vm = stop_vm };
    Collect c = { .bytes = g_byte_array_new() };
    GThread *t;
    GError *err = NULL;
    int fds[2];

    env_init(&src, "src.qcow2");
    add_bitmap(src.bs, "bm0", 64 * KiB, true);
    ram_migration_register(ram, sv);
    ram_migration_set_dirty_sync(ram, jobref_sync_then_postcopy, &ps);
    nodes.blks = src.blks;
    dbm = dirty_bitmap_migration_new(&nodes);
    dirty_bitmap_migration_set_enabled(dbm, true);
    dirty_bitmap_migration_register(dbm, sv);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    c.fd = fds[1];
    t = g_thread_new("collect", collect_thread, &c);
    g_atomic_pointer_set(&ps.job,
                         migration_job_start(sv, qemu_file_new_fd_output(fds[0]),
                                             NULL, ram, &params, &hooks));
    g_assert_true(migration_job_wait(ps.job, &err));
    g_assert_no_error(err);
    g_thread_join(t);
    close(fds[1]);
    migration_job_free(ps.job);
    dirty_bitmap_migration_free(dbm);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
    savevm_free(sv);
    env_destroy(&src);
    return g_byte_array_free_to_bytes(c.bytes);
}

#define Z8 0, 0, 0, 0, 0, 0, 0, 0

/* The stream QEMU's source writes for the same migration (seed 000, seed
 * 004 and QEMU 7.2's postcopy_start: ADVISE with no payload, RAM ends at
 * the switchover, LISTEN and RUN packaged with no discards or pings, the
 * bits in iterations after RUN, COMPLETE at the end). */
static const uint8_t postcopy_golden[] = {
        /* magic, version 3 */
        0x51, 0x45, 0x56, 0x4d, 0x00, 0x00, 0x00, 0x03,
        /* CONFIGURATION: machine "none" */
        0x07, 0x00, 0x00, 0x00, 0x04, 0x6e, 0x6f, 0x6e, 0x65,
        /* COMMAND POSTCOPY_ADVISE, length 0: the bitmaps alone */
        0x08, 0x00, 0x03, 0x00, 0x00,
        /* START 'ram' v4: MEM_SIZE, block pc.ram, EOS, footer */
        0x01, 0x00, 0x00, 0x00, 0x01, 0x03, 0x72, 0x61, 0x6d, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
        0x04, 0x06, 0x70, 0x63, 0x2e, 0x72, 0x61, 0x6d, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
        0x7e, 0x00, 0x00, 0x00, 0x01,
        /* START 'dirty-bitmap' v1: START disk0/bm0, be32 64 KiB, enabled|persistent; EOS */
        0x01, 0x00, 0x00, 0x00, 0x02, 0x0c, 0x64, 0x69, 0x72, 0x74, 0x79, 0x2d,
        0x62, 0x69, 0x74, 0x6d, 0x61, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x1c, 0x05, 0x64, 0x69, 0x73, 0x6b, 0x30, 0x03, 0x62, 0x6d,
        0x30, 0x00, 0x01, 0x00, 0x00, 0x03, 0x01, 0x7e, 0x00, 0x00, 0x00, 0x02,
        /* PART 'ram': the zero page, EOS */
        0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x06, 0x70, 0x63, 0x2e, 0x72, 0x61, 0x6d, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x10, 0x7e, 0x00, 0x00, 0x00, 0x01,
        /* PART 'dirty-bitmap': EOS alone in precopy */
        0x02, 0x00, 0x00, 0x00, 0x02, 0x01, 0x7e, 0x00, 0x00, 0x00, 0x02,
        /* END 'ram' (RAM does not follow), EOS */
        0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x10, 0x7e, 0x00, 0x00, 0x00, 0x01,
        /* COMMAND PACKAGED, be32 10: */
        0x08, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0a,
        /*   POSTCOPY_LISTEN */
        0x08, 0x00, 0x04, 0x00, 0x00,
        /*   POSTCOPY_RUN (QEMU pings only with RAM postcopy) */
        0x08, 0x00, 0x05, 0x00, 0x00,
        /* PART 'dirty-bitmap' after RUN: */
        0x02, 0x00, 0x00, 0x00, 0x02,
        /*   BITS (names unchanged), sector 0, 131072 sectors, be64 128 bytes */
        0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
        /*   bits 16 (1 MiB) and 160 (10 MiB) of 1024 */
        0x00, 0x00, 0x01, Z8, Z8, 0x00, 0x01, 0x00, 0x00, 0x00,
        Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8, Z8,
        /*   EOS, footer */
        0x01, 0x7e, 0x00, 0x00, 0x00, 0x02,
        /* END 'dirty-bitmap': COMPLETE, EOS */
        0x03, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x7e, 0x00, 0x00, 0x00, 0x02,
        /* EOF, no VM description */
        0x00,
};

static void test_postcopy_golden(void)
{
    g_autoptr(GBytes) b = bitmap_postcopy_stream();
    g_autoptr(GString) dump = g_string_new(NULL);
    StreamDumpOptions opts = { .verbose = true };
    GError *err = NULL;

    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                    postcopy_golden, sizeof(postcopy_golden));
    /* tern-stream's reader follows it. */
    g_assert_true(stream_dump(b, &opts, dump, &err));
    g_assert_no_error(err);
    g_assert_nonnull(strstr(dump->str, "command POSTCOPY_ADVISE length 0\n"
                            "  no RAM postcopy (dirty bitmaps only)"));
    g_assert_nonnull(strstr(dump->str, "command POSTCOPY_LISTEN length 0"));
    g_assert_nonnull(strstr(dump->str, "command POSTCOPY_RUN length 0\n"
                            "  the destination's guest starts\n  }\n"
                            "@205 PART section 2 'dirty-bitmap' instance 0 "
                            "version 1\n  dirty-bitmap: BITS 'bm0' sector 0 "
                            "count 131072 size 128"));
    g_assert_nonnull(strstr(dump->str, "bitmap: node 'disk0' name 'bm0' "
                            "granularity 65536 flags 0x03 complete"));
    g_assert_nonnull(strstr(dump->str, "  dirty: 1048576 +65536\n"
                            "  dirty: 10485760 +65536\n"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/savevm-bitmap/roundtrip", test_roundtrip);
    g_test_add_func("/savevm-bitmap/unnamed-node-refused",
                    test_unnamed_node_refused);
    g_test_add_func("/savevm-bitmap/load-qemu-7.2-bitmaps",
                    test_load_qemu_bitmaps);
    g_test_add_func("/savevm-bitmap/hostile", test_hostile);
    g_test_add_func("/savevm-bitmap/vmstate-area", test_vmstate_area);
    g_test_add_func("/savevm-bitmap/migration-job-with-bitmaps",
                    test_migration_job_with_bitmaps);
    g_test_add_func("/savevm-bitmap/postcopy-golden", test_postcopy_golden);
    return g_test_run();
}
