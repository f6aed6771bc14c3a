/*
 * Dirty bitmaps in postcopy, end to end without KVM: a source MigrationJob
 * and a destination MigIncoming over a relay that can slow and cut the
 * link (test-postcopy-util.h), each side with two drives of qcow2 images - "d0"
 * (64 MiB, its file node named "d0file") and an unnamed drive over node
 * "big" (1 TiB) - and small RAM. The source's bitmaps: persistent and
 * not, enabled and disabled, granularities 512 B .. 1 MiB, empty, full,
 * sparse, half dirty on the 1 TiB node, one on the file node. Checked: the
 * destination ends with every bitmap's name, granularity, flags and bits
 * (sha256 against the source's bits plus the writes its guest made while
 * the bitmaps were still arriving, for those that record), busy only
 * while incomplete; the source's bitmaps busy and not stored while it
 * migrates, also while paused. Bitmaps alone in postcopy; with RAM
 * postcopy, cut twice while the bitmaps stream and recovered; and a source
 * lost mid-way: the destination runs on, the unfinished bitmaps dropped.
 */
#include <string.h>

#include "migration/block-dirty-bitmap.h"
#include "migration/incoming.h"
#include "migration/migration-job.h"
#include "test-postcopy-util.h"

#define RAM_PAGES   64
#define RAM_BYTES   ((uint64_t)RAM_PAGES * RAM_PAGE_SIZE)
#define SMALL_DISK  (64 * MiB)
#define BIG_DISK    (1 * TiB)

typedef struct BitmapSpec {
    const char *node, *name;
    uint32_t granularity;
    bool persistent, enabled;
    char fill;                  /* 'e'mpty, 'f'ull, 's'parse, 'h'alf */
} BitmapSpec;

static const BitmapSpec specs[] = {
    { "d0", "p512", 512, true, true, 's' },
    { "d0", "full64k", 64 * KiB, false, true, 'f' },
    { "d0", "dis1m", 1 * MiB, true, false, 's' },
    { "d0", "empty4k", 4 * KiB, false, true, 'e' },
    { "big", "half", 64 * KiB, true, true, 'h' },
    { "big", "empty", 64 * KiB, false, true, 'e' },
    { "d0file", "proto", 64 * KiB, false, false, 's' },
};

/* Where the destination's guest writes while the bitmaps arrive. */
typedef struct GuestWrite {
    const char *node;
    uint64_t offset, len;
} GuestWrite;

static const GuestWrite writes[] = {
    { "d0", 5 * MiB + 512, 4096 }, { "d0", 63 * MiB, 64 * KiB },
    { "big", 700 * GiB + 3 * MiB, 8192 }, { "big", 12345 * 4096, 4096 },
};

/* ---- one side: drives, RAM, the migration objects ---- */

typedef struct Side {
    char *dir;
    BlockBackend *blk[2];
    BlockBackendList *blks;
    GuestMemory mem;
    uint8_t *base;
    SaveVM *sv;
    RamMigration *ram;
    DirtyBitmapMigration *dbm;
    JobRef job;                 /* source */
    MigIncoming *in;            /* destination */
    QEMUFile *f;
    GThread *loader;
    bool ok;
    GError *err;
    int started;                /* atomic: the guest runs (RUN) */
} Side;

static BlockNode *open_image(Side *s, const char *file, uint64_t size)
{
    g_autofree char *path = g_build_filename(s->dir, file, NULL);
    GError *err = NULL;
    BlockNode *bs;

    g_assert_true(bdrv_create("qcow2", path, size, NULL, &err));
    bs = bdrv_open(path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    return bs;
}

static void side_init(Side *s)
{
    BlockNode *d0, *big;
    DirtyBitmapNodes nodes = {
        .in_postcopy = jobref_in_postcopy, .opaque = &s->job,
    };

    memset(s, 0, sizeof(*s));
    s->dir = g_dir_make_tmp("tern-bmpc-XXXXXX", NULL);
    d0 = open_image(s, "d0.qcow2", SMALL_DISK);
    bdrv_set_node_name(d0->file, "d0file");
    big = open_image(s, "big.qcow2", BIG_DISK);
    bdrv_set_node_name(big, "big");
    s->blk[0] = blk_new("d0", d0, NULL);
    s->blk[1] = blk_new(NULL, big, NULL);
    s->blks = blk_list_new();
    g_assert_true(blk_list_add(s->blks, s->blk[0], NULL));
    g_assert_true(blk_list_add(s->blks, s->blk[1], NULL));
    s->base = test_memfd_ram(&s->mem, RAM_BYTES);
    s->mem.regions[0] = (GuestRegion){ 0, RAM_BYTES, s->base, 0 };
    s->mem.nr_regions = 1;
    s->sv = savevm_new("m");
    s->ram = ram_migration_new(&s->mem, "pc.ram");
    ram_migration_register(s->ram, s->sv);
    nodes.blks = s->blks;
    s->dbm = dirty_bitmap_migration_new(&nodes);
    dirty_bitmap_migration_set_enabled(s->dbm, true);
    dirty_bitmap_migration_register(s->dbm, s->sv);
}

static void side_destroy(Side *s)
{
    g_autoptr(GDir) d = NULL;
    const char *name;

    migration_job_free(s->job.job);
    mig_incoming_free(s->in);
    g_clear_error(&s->err);
    dirty_bitmap_migration_free(s->dbm);
    ram_migration_free(s->ram);
    savevm_free(s->sv);
    munmap(s->base, RAM_BYTES);
    close(s->mem.fd);
    blk_list_free(s->blks);
    blk_free(s->blk[0]);
    blk_free(s->blk[1]);
    d = g_dir_open(s->dir, 0, NULL);
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(s->dir, name, NULL);

        unlink(p);
    }
    rmdir(s->dir);
    g_free(s->dir);
}

static BdrvDirtyBitmap *find(Side *s, const char *node, const char *name)
{
    BlockNode *bs = blk_list_lookup_node(s->blks, node);
    BdrvDirtyBitmap *bm;

    bdrv_lock(bs);
    bm = bdrv_find_dirty_bitmap(bs, name);
    bdrv_unlock(bs);
    return bm;
}

static void fill(BdrvDirtyBitmap *bm, char how)
{
    uint64_t size = bdrv_dirty_bitmap_size(bm);

    switch (how) {
    case 'f':
        bdrv_set_dirty_bitmap(bm, 0, size);
        break;
    case 's':
        bdrv_set_dirty_bitmap(bm, 1 * MiB, 4096);
        bdrv_set_dirty_bitmap(bm, 33 * MiB + 512, 100 * KiB);
        bdrv_set_dirty_bitmap(bm, size - 512, 512);
        break;
    case 'h':
        for (uint64_t off = 0; off < size; off += 8 * MiB) {
            bdrv_set_dirty_bitmap(bm, off, 4 * MiB);
        }
        break;
    }
}

static void add_bitmaps(Side *s)
{
    for (size_t i = 0; i < G_N_ELEMENTS(specs); i++) {
        const BitmapSpec *sp = &specs[i];
        BlockNode *bs = blk_list_lookup_node(s->blks, sp->node);
        GError *err = NULL;
        BdrvDirtyBitmap *bm;

        bdrv_lock(bs);
        bm = bdrv_create_dirty_bitmap(bs, sp->granularity, sp->name, &err);
        g_assert_no_error(err);
        if (sp->persistent) {
            g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
        }
        fill(bm, sp->fill);
        if (!sp->enabled) {
            bdrv_disable_dirty_bitmap(bm);
        }
        bdrv_unlock(bs);
    }
}

/* ---- the destination ---- */

static void run_guest(void *opaque)
{
    Side *d = opaque;

    dirty_bitmap_migration_before_vm_start(d->dbm);
    g_atomic_int_set(&d->started, 1);
}

static void status_changed(void *opaque)
{
}

static gpointer loader_thread(gpointer opaque)
{
    Side *d = opaque;

    d->ok = mig_incoming_run(d->in, d->f, NULL, &d->err);
    return NULL;
}

static void dest_start(Side *d, bool postcopy_ram)
{
    const MigIncomingConfig cfg = {
        .postcopy_ram = postcopy_ram, .nr_vcpus = 1,
    };
    const MigIncomingHooks hooks = {
        .run_guest = run_guest, .status_changed = status_changed,
        .opaque = d,
    };

    d->in = mig_incoming_new(d->sv, d->ram, &d->mem, &cfg, &hooks);
    d->loader = g_thread_new("loader", loader_thread, d);
}

static bool dest_join(Side *d)
{
    g_thread_join(d->loader);
    d->loader = NULL;
    return d->ok;
}

static bool busy(Side *s, const char *node, const char *name)
{
    BdrvDirtyBitmap *bm = find(s, node, name);
    bool ret;

    bdrv_dirty_bitmap_lock(bm);
    ret = bdrv_dirty_bitmap_busy(bm);
    bdrv_dirty_bitmap_unlock(bm);
    return ret;
}

/* The guest's writes on the destination, while 'half' still arrives. */
static void guest_writes(Side *d)
{
    while (!g_atomic_int_get(&d->started)) {
        g_usleep(1000);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(writes); i++) {
        BlockNode *bs = blk_list_lookup_node(d->blks, writes[i].node);
        g_autofree uint8_t *buf = g_malloc0(writes[i].len);
        GError *err = NULL;

        g_assert_true(bdrv_pwrite(bs, writes[i].offset, buf, writes[i].len,
                                  &err));
        g_assert_no_error(err);
    }
    g_assert_true(busy(d, "big", "half"));
}

/* ---- the checks ---- */

/* The source's bits, plus the guest's writes if the bitmap records. */
static char *expected_sha256(Side *src, Side *dst, const BitmapSpec *sp)
{
    BlockNode *bs = blk_list_lookup_node(dst->blks, sp->node);
    BdrvDirtyBitmap *from = find(src, sp->node, sp->name), *want;
    char *hex;

    bdrv_lock(bs);
    want = bdrv_create_dirty_bitmap(bs, sp->granularity, NULL, NULL);
    bdrv_disable_dirty_bitmap(want);
    g_assert_true(bdrv_merge_dirty_bitmap(want, from, NULL));
    for (size_t i = 0; sp->enabled && i < G_N_ELEMENTS(writes); i++) {
        if (!strcmp(writes[i].node, sp->node)) {
            bdrv_set_dirty_bitmap(want, writes[i].offset, writes[i].len);
        }
    }
    hex = bdrv_dirty_bitmap_sha256(want);
    bdrv_release_dirty_bitmap(want);
    bdrv_unlock(bs);
    return hex;
}

static void check_bitmap(Side *src, Side *dst, const BitmapSpec *sp)
{
    BdrvDirtyBitmap *bm = find(dst, sp->node, sp->name);
    g_autofree char *want = NULL, *got = NULL;

    if (!bm) {
        g_error("%s/%s did not arrive", sp->node, sp->name);
    }
    want = expected_sha256(src, dst, sp);
    bdrv_dirty_bitmap_lock(bm);
    got = bdrv_dirty_bitmap_sha256(bm);
    g_assert_cmpuint(bdrv_dirty_bitmap_granularity(bm), ==, sp->granularity);
    g_assert_cmpint(bdrv_dirty_bitmap_get_persistence(bm), ==,
                    sp->persistent);
    g_assert_cmpint(bdrv_dirty_bitmap_enabled(bm), ==, sp->enabled);
    g_assert_false(bdrv_dirty_bitmap_busy(bm));
    g_assert_false(bdrv_dirty_bitmap_has_successor(bm));
    bdrv_dirty_bitmap_unlock(bm);
    if (strcmp(want, got)) {
        g_error("%s/%s: sha256 %s, expected %s", sp->node, sp->name, got,
                want);
    }
}

/* While the job owns them: busy (QMP refuses them) and not stored. */
static void check_source_owned(Side *src, bool owned)
{
    for (size_t i = 0; i < G_N_ELEMENTS(specs); i++) {
        BdrvDirtyBitmap *bm = find(src, specs[i].node, specs[i].name);

        bdrv_dirty_bitmap_lock(bm);
        g_assert_cmpint(bdrv_dirty_bitmap_busy(bm), ==, owned);
        g_assert_false(bdrv_dirty_bitmap_get_persistence(bm));
        bdrv_dirty_bitmap_unlock(bm);
    }
}

/* ---- the source ---- */

static bool stop_vm(void *opaque, GError **errp)
{
    return true;
}

static void source_start(Side *src, QEMUFile *f, bool postcopy_ram,
                         uint64_t postcopy_bw)
{
    MigrationParams p = {
        .downtime_limit_ms = 1, .postcopy_ram = postcopy_ram,
        .postcopy_bitmaps = true, .max_postcopy_bandwidth = postcopy_bw,
    };
    MigrationHooks h = { .stop_vm = stop_vm };
    MigrationJob *job;

    for (uint64_t page = 0; page < RAM_PAGES; page += 3) {
        memset(src->base + page * RAM_PAGE_SIZE, (int)page + 1, RAM_PAGE_SIZE);
    }
    ram_migration_set_dirty_sync(src->ram, jobref_sync_then_postcopy,
                                 &src->job);
    job = migration_job_start(src->sv, f, NULL, src->ram, &p, &h);
    g_atomic_pointer_set(&src->job.job, job);
}

static MigrationStats wait_job(MigrationJob *job, MigrationStatus want)
{
    MigrationStats st;

    for (int i = 0; i < 60000; i++) {
        migration_job_get_stats(job, &st);
        if (st.status == want || st.status >= MIGRATION_STATUS_COMPLETED) {
            return st;
        }
        g_usleep(1000);
    }
    g_error("source stuck in status %s", migration_status_name(st.status));
}

static void wait_dest(Side *d, MigrationStatus want)
{
    for (int i = 0; i < 60000; i++) {
        if (mig_incoming_status(d->in) == want) {
            return;
        }
        g_usleep(1000);
    }
    g_error("destination never reached status %s",
            migration_status_name(want));
}

/* ---- the tests ---- */

typedef struct Run {
    Side src, dst;
    Relay link;
    int kib_per_s;
} Run;

static void run_start(Run *r, bool postcopy_ram, uint64_t postcopy_bw)
{
    QEMUFile *f;

    side_init(&r->src);
    side_init(&r->dst);
    add_bitmaps(&r->src);
    link_open(&r->link, &r->kib_per_s, &f, &r->dst.f);
    dest_start(&r->dst, postcopy_ram);
    source_start(&r->src, f, postcopy_ram, postcopy_bw);
}

static void run_finish(Run *r)
{
    GError *err = NULL;
    MigrationStats st;

    if (!migration_job_wait(r->src.job.job, &err)) {
        g_error("source: %s", err->message);
    }
    migration_job_get_stats(r->src.job.job, &st);
    g_assert_true(st.postcopy);
    if (!dest_join(&r->dst)) {
        g_error("destination: %s", r->dst.err->message);
    }
    g_assert_cmpint(mig_incoming_status(r->dst.in), ==,
                    MIGRATION_STATUS_COMPLETED);
    g_assert_cmpmem(r->dst.base, RAM_BYTES, r->src.base, RAM_BYTES);
    for (size_t i = 0; i < G_N_ELEMENTS(specs); i++) {
        check_bitmap(&r->src, &r->dst, &specs[i]);
    }
    check_source_owned(&r->src, false);
    link_close(&r->link);
    side_destroy(&r->src);
    side_destroy(&r->dst);
}

/* Bitmaps alone: ADVISE with no payload, the switchover without RAM
 * discards, the bits after RUN under max-postcopy-bandwidth. */
static void test_bitmaps_alone(void)
{
    Run r = { 0 };

    run_start(&r, false, 4 * MiB);
    wait_job(r.src.job.job, MIGRATION_STATUS_POSTCOPY_ACTIVE);
    guest_writes(&r.dst);
    check_source_owned(&r.src, true);
    run_finish(&r);
}

static void reconnect(Run *r)
{
    QEMUFile *sf, *df;
    GError *err = NULL;

    link_close(&r->link);
    link_open(&r->link, &r->kib_per_s, &sf, &df);
    g_assert_true(mig_incoming_recover_begin(r->dst.in, &err));
    g_assert_true(mig_incoming_recover(r->dst.in, df, NULL, &err));
    g_assert_true(migration_job_resume(r->src.job.job, sf, NULL, &err));
    g_assert_no_error(err);
}

/* With RAM postcopy: both switch at once; the link is cut twice while the
 * bitmaps stream (migrate-pause, then the link itself) and recovered. */
static void test_with_ram_recovered(void)
{
    Run r = { .kib_per_s = 512 };

    run_start(&r, true, 0);
    guest_writes(&r.dst);
    for (int cut = 0; cut < 2; cut++) {
        g_usleep(300 * 1000);
        if (cut == 0) {
            g_assert_true(migration_job_pause(r.src.job.job, NULL));
        } else {
            link_cut(&r.link);
        }
        wait_job(r.src.job.job, MIGRATION_STATUS_POSTCOPY_PAUSED);
        wait_dest(&r.dst, MIGRATION_STATUS_POSTCOPY_PAUSED);
        /* Still arriving, and still the job's on the source. */
        g_assert_true(busy(&r.dst, "big", "half"));
        check_source_owned(&r.src, true);
        reconnect(&r);
    }
    g_atomic_int_set(&r.kib_per_s, 0);
    run_finish(&r);
}

/* The source is lost while the bitmaps stream: the destination goes on
 * (the seed's rule) and drops every bitmap that did not complete; its own
 * bitmaps stay. The source fails and never takes the guest back. */
static void test_source_lost(void)
{
    Run r = { .kib_per_s = 256 };
    GError *err = NULL;
    BlockNode *d0;

    side_init(&r.src);
    side_init(&r.dst);
    add_bitmaps(&r.src);
    d0 = blk_list_lookup_node(r.dst.blks, "d0");
    bdrv_lock(d0);
    g_assert_nonnull(bdrv_create_dirty_bitmap(d0, 4096, "mine", NULL));
    bdrv_unlock(d0);
    {
        QEMUFile *f;

        link_open(&r.link, &r.kib_per_s, &f, &r.dst.f);
        dest_start(&r.dst, false);
        source_start(&r.src, f, false, 0);
    }
    guest_writes(&r.dst);
    link_cut(&r.link);
    g_assert_false(migration_job_wait(r.src.job.job, &err));
    g_assert_nonnull(strstr(err->message, "postcopy of the dirty bitmaps "
                            "failed"));
    g_clear_error(&err);
    g_assert_true(dest_join(&r.dst));
    g_assert_cmpint(mig_incoming_status(r.dst.in), ==,
                    MIGRATION_STATUS_COMPLETED);
    for (size_t i = 0; i < G_N_ELEMENTS(specs); i++) {
        g_assert_null(find(&r.dst, specs[i].node, specs[i].name));
    }
    g_assert_nonnull(find(&r.dst, "d0", "mine"));
    link_close(&r.link);
    side_destroy(&r.src);
    side_destroy(&r.dst);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bitmap-postcopy/bitmaps-alone", test_bitmaps_alone);
    g_test_add_func("/bitmap-postcopy/source-lost", test_source_lost);
    if (uffd_pager_supported(&err)) {
        g_test_add_func("/bitmap-postcopy/with-ram-recovered",
                        test_with_ram_recovered);
    } else {
        g_test_message("no RAM postcopy here: %s", err->message);
    }
    return g_test_run();
}
