/*
 * Fuzz harness for whole incoming streams that carry dirty bitmaps, in
 * precopy and in postcopy order (POSTCOPY_ADVISE with no payload, a
 * PACKAGED LISTEN + RUN, then the bitmaps' sections read by the listen
 * thread while the "guest" runs): the real destination (MigIncoming, its
 * commands and listen thread) over the real loader
 * (migration/block-dirty-bitmap.c) with two raw nodes, "disk0" (64 MiB,
 * as the unit tests' streams name it) and "disk1" (1 MiB), and one page of
 * RAM in block "pc.ram". When the guest
 * starts (RUN, or the end of a precopy load) it writes to both nodes, so
 * successors record and merge. Nothing may crash, leak or hang; after the
 * load no bitmap is left with a successor, and one the stream completed is
 * not busy.
 */
#include <glib/gstdio.h>
#include <unistd.h>

#include "migration/block-dirty-bitmap.h"
#include "migration/incoming.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NR_NODES 2

static const char *const node_names[NR_NODES] = { "disk0", "disk1" };
static const uint64_t node_sizes[NR_NODES] = { 64 * MiB, 1 * MiB };

typedef struct Dest {
    BlockNode *nodes[NR_NODES];
    BlockBackend *blks[NR_NODES];
    BlockBackendList *list;
    DirtyBitmapMigration *dbm;
    bool started;
} Dest;

/* Unlinked at once: nothing is left behind whatever stops the process. */
static BlockNode *open_node(unsigned i)
{
    static unsigned serial;
    g_autofree char *path = g_strdup_printf(
        "%s/fuzz-bitmap-stream-%d-%u.raw",
        g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm"
                                                    : g_get_tmp_dir(),
        (int)getpid(), serial++);
    BlockNode *bs;

    g_assert(bdrv_create("raw", path, node_sizes[i], NULL, NULL));
    bs = bdrv_open(path, "raw", BDRV_O_RDWR | BDRV_O_NO_LOCK, NULL);
    g_remove(path);
    g_assert(bs);
    bdrv_set_node_name(bs, node_names[i]);
    return bs;
}

static void guest_starts(Dest *d)
{
    static uint8_t buf[8192];

    if (d->started) {
        return;
    }
    dirty_bitmap_migration_before_vm_start(d->dbm);
    d->started = true;
    for (unsigned i = 0; i < NR_NODES; i++) {
        g_assert(bdrv_pwrite(d->nodes[i], 4096, buf, sizeof(buf), NULL));
    }
}

static void run_guest(void *opaque)
{
    guest_starts(opaque);
}

static void status_changed(void *opaque)
{
}

static void check_node(BlockNode *bs)
{
    bdrv_lock(bs);
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        if (bdrv_dirty_bitmap_has_successor(bm)) {
            /* Still incomplete (the stream never completed it): busy. */
            g_assert(bdrv_dirty_bitmap_busy(bm));
        }
    }
    bdrv_unlock(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const MigIncomingConfig cfg = { .nr_vcpus = 1 };
    Dest d = { .list = blk_list_new() };
    const MigIncomingHooks hooks = {
        .run_guest = run_guest, .status_changed = status_changed,
        .opaque = &d,
    };
    GuestMemory mem = {
        .regions = { { 0, 4096, g_malloc0(4096), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 4096,
    };
    RamMigration *ram = ram_migration_new(&mem, "pc.ram");
    SaveVM *sv = savevm_new("none");
    g_autoptr(GBytes) bytes = g_bytes_new(data, size);
    DirtyBitmapNodes nodes = { .blks = d.list };
    MigIncoming *in;
    GError *err = NULL;

    for (unsigned i = 0; i < NR_NODES; i++) {
        d.nodes[i] = open_node(i);
        d.blks[i] = blk_new(NULL, d.nodes[i], NULL);
        g_assert(blk_list_add(d.list, d.blks[i], NULL));
    }
    ram_migration_register(ram, sv);
    d.dbm = dirty_bitmap_migration_new(&nodes);
    dirty_bitmap_migration_set_enabled(d.dbm, true);
    dirty_bitmap_migration_register(d.dbm, sv);
    in = mig_incoming_new(sv, ram, &mem, &cfg, &hooks);
    if (mig_incoming_run(in, qemu_file_new_mem_input(bytes), NULL, &err)) {
        guest_starts(&d);
    } else {
        g_assert(err);
    }
    g_clear_error(&err);
    for (unsigned i = 0; i < NR_NODES; i++) {
        check_node(d.nodes[i]);
    }
    mig_incoming_free(in);
    dirty_bitmap_migration_free(d.dbm);
    savevm_free(sv);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
    blk_list_free(d.list);
    for (unsigned i = 0; i < NR_NODES; i++) {
        blk_free(d.blks[i]);
    }
    return 0;
}
