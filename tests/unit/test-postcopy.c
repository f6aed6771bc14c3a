/*
 * Unit tests for postcopy without KVM: a source MigrationJob and a
 * destination MigIncoming over socketpairs joined by relay threads (which
 * can slow the link and cut it), RAM in memfds, a "guest" that keeps
 * writing on the source until the switchover and a "vCPU" thread that reads
 * every page backwards on the destination from RUN on (so it asks for pages
 * the background stream has not brought yet). Checked: the destination ends
 * with the source's RAM byte for byte, pages were requested, the statuses
 * and the recovery handshake (cut twice, recovered twice), with and without
 * a preempt channel. Then hostile streams against the destination and
 * hostile return-path requests against the source.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/incoming.h"
#include "migration/migration-job.h"
#include "migration/return-path.h"
#include "test-postcopy-util.h"
#include "test-ram-vm.h"

#define PAGE RAM_PAGE_SIZE
#define NPAGES 4096                 /* 16 MiB */
#define RAM_BYTES ((uint64_t)NPAGES * PAGE)

/* ---- a VM's RAM ---- */

typedef TestRamVm Vm;

static void write_page(Vm *vm, uint64_t page, uint8_t gen)
{
    /* Every 5th page stays zero (a hole on both ends). */
    if (page % 5) {
        memset(vm->base + page * PAGE, (uint8_t)(page * 7 + gen), PAGE);
    }
}

/* The "dirty log" of a guest that rewrites half of RAM between syncs: the
 * link never catches up, and pages sent in precopy get dirty again. */
static bool guest_sync(void *opaque, HBitmap *dirty, GError **errp)
{
    Vm *vm = opaque;

    vm->syncs++;
    for (uint64_t page = vm->syncs % 2; page < NPAGES; page += 2) {
        write_page(vm, page, vm->syncs);
        hbitmap_set(dirty, page, 1);
    }
    return true;
}

static bool stop_vm(void *opaque, GError **errp)
{
    return true;
}

/* ---- the destination ---- */

typedef struct Dest {
    Vm vm;
    const Vm *src;
    MigIncoming *in;
    QEMUFile *f, *urgent;
    GThread *loader, *vcpu;
    bool ok;
    GError *err;
    int vcpu_started;               /* atomic */
    int loader_done;                /* atomic */
    uint8_t fill;                   /* RAM's byte before the stream, or 0 */
} Dest;

/* The guest on the destination: every page, backwards, must be the
 * source's (which no longer changes once RUN is sent). */
static gpointer vcpu_thread(gpointer opaque)
{
    Dest *d = opaque;

    for (int64_t page = NPAGES - 1; page >= 0; page--) {
        const uint8_t *got = d->vm.base + page * PAGE;
        const uint8_t *want = d->src->base + page * PAGE;

        if (memcmp(got, want, PAGE)) {
            g_error("page %" PRId64 ": 0x%02x, expected 0x%02x", page,
                    got[0], want[0]);
        }
    }
    return NULL;
}

static void run_guest(void *opaque)
{
    Dest *d = opaque;

    g_assert_false(g_atomic_int_get(&d->vcpu_started));
    g_atomic_int_set(&d->vcpu_started, 1);
    if (d->src) {
        d->vcpu = g_thread_new("vcpu", vcpu_thread, d);
    }
}

static void status_changed(void *opaque)
{
}

static gpointer loader_thread(gpointer opaque)
{
    Dest *d = opaque;

    d->ok = mig_incoming_run(d->in, d->f, d->urgent, &d->err);
    g_atomic_int_set(&d->loader_done, 1);
    return NULL;
}

static void dest_start(Dest *d, const Vm *src, bool postcopy, bool preempt)
{
    const MigIncomingConfig cfg = {
        .postcopy_ram = postcopy, .preempt = preempt, .nr_vcpus = 1,
    };
    const MigIncomingHooks hooks = {
        .run_guest = run_guest, .status_changed = status_changed,
        .opaque = d,
    };

    test_ram_vm_init(&d->vm, RAM_BYTES);
    if (d->fill) {
        memset(d->vm.base, d->fill, RAM_BYTES);
    }
    d->src = src;
    d->in = mig_incoming_new(d->vm.sv, d->vm.ram, &d->vm.mem, &cfg, &hooks);
    d->loader = g_thread_new("loader", loader_thread, d);
}

/* The load is over: its outcome, and the vCPU has read every page. */
static bool dest_join(Dest *d)
{
    g_thread_join(d->loader);
    d->loader = NULL;
    if (d->vcpu) {
        g_thread_join(d->vcpu);
        d->vcpu = NULL;
    }
    return d->ok;
}

static void dest_free(Dest *d)
{
    mig_incoming_free(d->in);
    test_ram_vm_destroy(&d->vm);
    g_clear_error(&d->err);
}

static MigrationStatus wait_dest(Dest *d, MigrationStatus want)
{
    MigrationStatus s;

    for (int i = 0; i < 30000; i++) {
        s = mig_incoming_status(d->in);
        if (s == want || s >= MIGRATION_STATUS_COMPLETED) {
            return s;
        }
        g_usleep(1000);
    }
    g_error("destination stuck in status %d", s);
}

/* ---- the source ---- */

static MigrationStats wait_job(MigrationJob *job, MigrationStatus want,
                               bool postcopy)
{
    MigrationStats st;

    for (int i = 0; i < 30000; i++) {
        migration_job_get_stats(job, &st);
        if ((st.status == want && (!postcopy || st.postcopy)) ||
            st.status >= MIGRATION_STATUS_COMPLETED) {
            return st;
        }
        g_usleep(1000);
    }
    g_error("source stuck in status %s", migration_status_name(st.status));
}

typedef struct Run {
    Vm src;
    Dest dst;
    Relay main, urgent;
    int main_rate;                  /* KiB/s of both links, atomic */
    bool preempt;
    MigrationJob *job;
} Run;

/* postcopy_bw: max-postcopy-bandwidth, 0 for none; dest_fill: a byte the
 * destination's RAM holds before the stream (0: none, a fresh memfd);
 * kib_per_s: both links' rate from the start (0: unlimited). */
static void run_start_opts(Run *r, bool preempt, uint64_t postcopy_bw,
                           uint8_t dest_fill, int kib_per_s)
{
    MigrationParams p = {
        .max_bandwidth = 0, .downtime_limit_ms = 1,
        .postcopy_ram = true, .postcopy_preempt = preempt,
        .max_postcopy_bandwidth = postcopy_bw,
    };
    MigrationHooks h = { .stop_vm = stop_vm, .opaque = &r->src };
    QEMUFile *f, *urgent = NULL;

    memset(r, 0, sizeof(*r));
    test_ram_vm_init(&r->src, RAM_BYTES);
    for (uint64_t page = 0; page < NPAGES; page++) {
        write_page(&r->src, page, 0);
    }
    r->preempt = preempt;
    r->main_rate = kib_per_s;
    r->dst.fill = dest_fill;
    link_open(&r->main, &r->main_rate, &f, &r->dst.f);
    if (preempt) {
        link_open(&r->urgent, &r->main_rate, &urgent, &r->dst.urgent);
    }
    dest_start(&r->dst, &r->src, true, preempt);
    ram_migration_set_dirty_sync(r->src.ram, guest_sync, &r->src);
    r->job = migration_job_start(r->src.sv, f, urgent, r->src.ram, &p, &h);
}

static void run_start(Run *r, bool preempt)
{
    run_start_opts(r, preempt, 0, 0, 0);
}

/* Switch once precopy has sent everything once. */
static void run_switch(Run *r)
{
    MigrationStats st;

    do {
        g_usleep(1000);
        migration_job_get_stats(r->job, &st);
    } while (st.dirty_sync_count < 2 && st.status < MIGRATION_STATUS_COMPLETED);
    g_assert_cmpint(st.status, ==, MIGRATION_STATUS_ACTIVE);
    g_assert_true(migration_job_start_postcopy(r->job, NULL));
}

/* Both ends done: the job's statuses and figures, the destination's. */
static void run_finish(Run *r, const MigrationStatus *want, size_t n,
                       MigrationStats *st, MigIncomingInfo *info)
{
    g_autoptr(GArray) got = g_array_new(false, false,
                                        sizeof(MigrationStatusChange));
    g_autoptr(GError) err = NULL;
    uint64_t syncs = 0;

    g_assert_true(migration_job_wait(r->job, &err));
    g_assert_no_error(err);
    migration_job_get_stats(r->job, st);
    migration_job_take_statuses(r->job, got);
    for (size_t i = 0; i < MAX(n, got->len); i++) {
        const MigrationStatusChange *c =
            &g_array_index(got, MigrationStatusChange, i);

        g_assert_cmpuint(i, <, MIN(n, got->len));
        g_assert_cmpstr(migration_status_name(c->status), ==,
                        migration_status_name(want[i]));
        g_assert_cmpuint(c->syncs, >=, syncs);
        syncs = c->syncs;
    }
    /* The last sync (at the switchover) follows postcopy-active. */
    g_assert_cmpuint(syncs, ==, st->dirty_sync_count);
    if (!dest_join(&r->dst)) {
        g_error("destination: %s", r->dst.err->message);
    }
    mig_incoming_get_info(r->dst.in, info);
    g_assert_cmpint(info->status, ==, MIGRATION_STATUS_COMPLETED);
    g_assert_cmpmem(r->dst.vm.base, RAM_BYTES, r->src.base, RAM_BYTES);
    migration_job_free(r->job);
    link_close(&r->main);
    link_close(&r->urgent);
    dest_free(&r->dst);
    test_ram_vm_destroy(&r->src);
}

/* Switch at once, on a slow link, so most pages are still to come. */
static void run_switch_early(Run *r)
{
    MigrationStats st = wait_job(r->job, MIGRATION_STATUS_ACTIVE, false);

    g_assert_cmpint(st.status, ==, MIGRATION_STATUS_ACTIVE);
    g_assert_true(migration_job_start_postcopy(r->job, NULL));
    while (!g_atomic_int_get(&r->dst.vcpu_started)) {
        g_usleep(1000);
    }
    g_atomic_int_set(&r->main_rate, 0);
}

/* dest_fill: see run_start_opts; with it the switch comes early. */
static void end_to_end(bool preempt, uint64_t postcopy_bw, uint8_t dest_fill)
{
    static const MigrationStatus want[] = {
        MIGRATION_STATUS_SETUP, MIGRATION_STATUS_ACTIVE,
        MIGRATION_STATUS_POSTCOPY_ACTIVE, MIGRATION_STATUS_COMPLETED,
    };
    MigIncomingInfo info;
    MigrationStats st;
    Run r;

    run_start_opts(&r, preempt, postcopy_bw, dest_fill, dest_fill ? 256 : 0);
    if (dest_fill) {
        run_switch_early(&r);
    } else {
        run_switch(&r);
    }
    run_finish(&r, want, G_N_ELEMENTS(want), &st, &info);
    g_assert_true(st.postcopy);
    g_assert_cmpuint(st.postcopy_requests, >, 0);
    g_assert_true(info.postcopy);
    g_assert_cmpuint(info.pager.requests, >, 0);
    g_assert_cmpuint(info.pager.missing, ==, 0);
    g_assert_cmpuint(info.pager.latency.count, ==, info.pager.requests);
    g_free(info.pager.vcpu_blocktime_ms);
}

static void test_end_to_end(void)
{
    end_to_end(false, 0, 0);
}

static void test_end_to_end_preempt(void)
{
    end_to_end(true, 0, 0);
}

/* Under max-postcopy-bandwidth the background pages keep to the limit,
 * but requested pages never wait for the next window. */
static void test_end_to_end_limited(void)
{
    end_to_end(false, 4 * MiB, 0);
}

/* RAM the destination wrote before the stream (a kernel loaded beside
 * -incoming) never shows through: with the switch made before precopy has
 * sent most pages, every page the guest reads is the source's (the
 * switchover's RAM_DISCARD covers the pages not sent yet, so they fault). */
static void test_destination_ram_not_trusted(void)
{
    end_to_end(false, 0, 0xee);
}

/* New links for a paused postcopy, handed to both ends. */
static void reconnect(Run *r)
{
    QEMUFile *sf, *df, *su = NULL, *du = NULL;
    g_autoptr(GError) err = NULL;

    link_close(&r->main);
    link_close(&r->urgent);
    link_open(&r->main, &r->main_rate, &sf, &df);
    if (r->preempt) {
        link_open(&r->urgent, &r->main_rate, &su, &du);
    }
    g_assert_true(mig_incoming_recover_begin(r->dst.in, &err));
    g_assert_false(mig_incoming_recover_begin(r->dst.in, &err));
    g_assert_nonnull(strstr(err->message, "triggered already"));
    g_clear_error(&err);
    g_assert_true(mig_incoming_recover(r->dst.in, df, du, &err));
    g_assert_true(migration_job_resume(r->job, sf, su, &err));
    g_assert_no_error(err);
}

/* Three cuts mid-postcopy over a slow link: migrate-pause on the source,
 * on the destination, the link itself; each recovered. */
static void recover_three_times(bool preempt)
{
    static const MigrationStatus want[] = {
        MIGRATION_STATUS_SETUP, MIGRATION_STATUS_ACTIVE,
        MIGRATION_STATUS_POSTCOPY_ACTIVE,
        MIGRATION_STATUS_POSTCOPY_PAUSED, MIGRATION_STATUS_POSTCOPY_RECOVER,
        MIGRATION_STATUS_POSTCOPY_ACTIVE,
        MIGRATION_STATUS_POSTCOPY_PAUSED, MIGRATION_STATUS_POSTCOPY_RECOVER,
        MIGRATION_STATUS_POSTCOPY_ACTIVE,
        MIGRATION_STATUS_POSTCOPY_PAUSED, MIGRATION_STATUS_POSTCOPY_RECOVER,
        MIGRATION_STATUS_POSTCOPY_ACTIVE, MIGRATION_STATUS_COMPLETED,
    };
    g_autoptr(GError) err = NULL;
    MigIncomingInfo info;
    MigrationStats st;
    Run r;

    run_start(&r, preempt);
    run_switch(&r);
    g_atomic_int_set(&r.main_rate, 2048);
    /* Only a destination that ran RUN can pause (the seed's rule). */
    while (!g_atomic_int_get(&r.dst.vcpu_started)) {
        g_usleep(1000);
    }
    for (int cut = 0; cut < 3; cut++) {
        st = wait_job(r.job, MIGRATION_STATUS_POSTCOPY_ACTIVE, true);
        g_assert_cmpint(st.status, ==, MIGRATION_STATUS_POSTCOPY_ACTIVE);
        g_usleep(100 * 1000);
        if (cut == 0) {
            g_assert_true(migration_job_pause(r.job, &err));
        } else if (cut == 1) {
            g_assert_true(mig_incoming_pause(r.dst.in, &err));
        } else {
            link_cut(&r.main);
        }
        g_assert_no_error(err);
        st = wait_job(r.job, MIGRATION_STATUS_POSTCOPY_PAUSED, false);
        g_assert_cmpint(st.status, ==, MIGRATION_STATUS_POSTCOPY_PAUSED);
        g_assert_nonnull(strstr(st.error_desc, "postcopy paused"));
        g_assert_cmpint(wait_dest(&r.dst, MIGRATION_STATUS_POSTCOPY_PAUSED),
                        ==, MIGRATION_STATUS_POSTCOPY_PAUSED);
        g_assert_false(migration_job_pause(r.job, NULL));
        reconnect(&r);
    }
    g_atomic_int_set(&r.main_rate, 0);
    run_finish(&r, want, G_N_ELEMENTS(want), &st, &info);
    g_assert_cmpuint(info.pager.missing, ==, 0);
    g_free(info.pager.vcpu_blocktime_ms);
}

static void test_recover(void)
{
    recover_three_times(false);
}

static void test_recover_preempt(void)
{
    recover_three_times(true);
}

/* ---- hostile streams against the destination ---- */

typedef void (*WriteFn)(SaveVM *sv, QEMUFile *f);

/* Load 'write's stream into a postcopy destination (RAM postcopy on or
 * off); returns the error, or NULL when the load succeeded. */
static GError *hostile_load(WriteFn write, bool postcopy)
{
    Dest d;
    SaveVM *sv;
    QEMUFile *f;
    int fds[2];
    GError *err;

    memset(&d, 0, sizeof(d));
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    d.f = qemu_file_new_fd_input(fds[1]);
    dest_start(&d, NULL, postcopy, false);
    sv = savevm_new("m");
    f = qemu_file_new_fd_output(fds[0]);
    g_assert_true(savevm_save_header(sv, f, NULL));
    write(sv, f);
    qemu_fflush(f);
    /* The destination may wait (paused) for a source that is gone. */
    shutdown(fds[0], SHUT_WR);
    for (int i = 0; i < 200 && !g_atomic_int_get(&d.loader_done); i++) {
        g_usleep(5000);
    }
    mig_incoming_shutdown(d.in);
    dest_join(&d);
    err = d.ok ? NULL : g_steal_pointer(&d.err);
    qemu_fclose(f, NULL);
    savevm_free(sv);
    dest_free(&d);
    return err;
}

static void expect_load_error(WriteFn write, bool postcopy, const char *needle)
{
    g_autoptr(GError) err = hostile_load(write, postcopy);

    if (!err || !strstr(err->message, needle)) {
        g_error("expected '%s', got '%s'", needle,
                err ? err->message : "success");
    }
}

static void w_advise_ram(SaveVM *sv, QEMUFile *f)
{
    savevm_send_postcopy_advise(f, true, PAGE, PAGE);
}

static void w_advise_bitmaps(SaveVM *sv, QEMUFile *f)
{
    savevm_send_postcopy_advise(f, false, 0, 0);
}

static void w_advise_host_pages(SaveVM *sv, QEMUFile *f)
{
    savevm_send_postcopy_advise(f, true, 2 * MiB, PAGE);
}

static void w_advise_target_pages(SaveVM *sv, QEMUFile *f)
{
    savevm_send_postcopy_advise(f, true, PAGE, 8192);
}

static void discard(QEMUFile *f, const char *block, uint64_t start,
                    uint64_t len)
{
    g_assert_true(savevm_send_postcopy_ram_discard(f, block, 1, &start, &len,
                                                   NULL));
}

static void w_discard_outside(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    discard(f, "pc.ram", RAM_BYTES - PAGE, 2 * PAGE);
}

static void w_discard_wrap(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    discard(f, "pc.ram", UINT64_MAX - PAGE + 1, 2 * PAGE);
}

static void w_discard_unaligned(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    discard(f, "pc.ram", 100, PAGE);
}

static void w_discard_unknown_block(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    discard(f, "pc.rom", 0, PAGE);
}

static void w_discard_first(SaveVM *sv, QEMUFile *f)
{
    discard(f, "pc.ram", 0, PAGE);
}

static void w_listen_unpackaged(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    savevm_send_postcopy_listen(f);
}

static void w_run_first(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    savevm_send_postcopy_run(f);
}

static void w_bitmap_unknown(SaveVM *sv, QEMUFile *f)
{
    w_advise_ram(sv, f);
    savevm_send_recv_bitmap(f, "pc.rom");
}

static void w_bitmap_no_postcopy(SaveVM *sv, QEMUFile *f)
{
    savevm_send_recv_bitmap(f, "pc.ram");
}

static void w_resume_then_eof(SaveVM *sv, QEMUFile *f)
{
    savevm_send_postcopy_resume(f);
    qemu_put_byte(f, QEMU_VM_EOF);
}

static void package(QEMUFile *f, bool run)
{
    QEMUFile *pkg = qemu_file_new_mem_output();
    const GByteArray *b;

    savevm_send_postcopy_listen(pkg);
    if (run) {
        savevm_send_postcopy_run(pkg);
    }
    b = qemu_file_mem_output_data(pkg);
    g_assert_true(savevm_send_packaged(f, b->data, b->len, NULL));
    qemu_fclose(pkg, NULL);
}

/* The stream ends while the package is loading (LISTEN, no RUN). */
static void w_cut_in_listen(SaveVM *sv, QEMUFile *f)
{
    savevm_send_open_return_path(f);
    w_advise_ram(sv, f);
    package(f, false);
}

/* After RUN: garbage on the main channel pauses; nobody recovers. */
static void w_garbage_after_run(SaveVM *sv, QEMUFile *f)
{
    savevm_send_open_return_path(f);
    w_advise_ram(sv, f);
    package(f, true);
    qemu_put_byte(f, 0x42);
}

static void test_destination_hostile(void)
{
    g_autoptr(GError) err = NULL;

    expect_load_error(w_advise_ram, false, "RAM postcopy is disabled but the "
                      "source sent a 16-byte POSTCOPY_ADVISE");
    expect_load_error(w_advise_bitmaps, true, "RAM postcopy is enabled but "
                      "the source sent a 0-byte POSTCOPY_ADVISE");
    expect_load_error(w_advise_host_pages, true, "matching RAM page sizes");
    expect_load_error(w_advise_target_pages, true,
                      "matching target page sizes");
    expect_load_error(w_discard_outside, true, "inside RAM");
    expect_load_error(w_discard_wrap, true, "inside RAM");
    expect_load_error(w_discard_unaligned, true, "inside RAM");
    expect_load_error(w_discard_unknown_block, true,
                      "RAM_DISCARD for unknown RAM block 'pc.rom'");
    expect_load_error(w_discard_first, true,
                      "POSTCOPY_RAM_DISCARD in the wrong postcopy state");
    expect_load_error(w_listen_unpackaged, true, "outside a PACKAGED blob");
    expect_load_error(w_run_first, true, "POSTCOPY_RUN in the wrong postcopy");
    expect_load_error(w_bitmap_unknown, true, "block 'pc.rom' not found");
    expect_load_error(w_bitmap_no_postcopy, false, "without RAM postcopy");
    expect_load_error(w_cut_in_listen, true, "truncated");
    expect_load_error(w_garbage_after_run, true, "unknown section type 0x42");
    /* RESUME outside recovery is reported, and the load goes on. */
    err = hostile_load(w_resume_then_eof, false);
    g_assert_no_error(err);
}

/* ---- hostile requests against the source ---- */

/* A source RAM past its switchover, into memory files. */
static void source_in_postcopy(Vm *vm, QEMUFile **out)
{
    *out = qemu_file_new_mem_output();
    test_ram_vm_init(vm, RAM_BYTES);
    ram_migration_set_postcopy(vm->ram, true, false);
    g_assert_true(savevm_save_setup(vm->sv, *out, NULL));
    g_assert_true(ram_migration_postcopy_start(vm->ram, *out, NULL));
}

static void expect_request_error(RamMigration *ram, const char *block,
                                 uint64_t start, uint64_t len,
                                 const char *needle)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(ram_migration_request(ram, block, start, len, NULL, &err));
    if (!strstr(err->message, needle)) {
        g_error("expected '%s', got '%s'", needle, err->message);
    }
}

static GError *load_bitmap(RamMigration *ram, const char *block,
                           uint64_t size, uint64_t end, size_t cut)
{
    g_autofree uint8_t *words = g_malloc0(MAX(size, 8));
    QEMUFile *w = qemu_file_new_mem_output();
    g_autoptr(GBytes) b = NULL;
    const GByteArray *data;
    GError *err = NULL;
    QEMUFile *r;

    words[0] = 0x0f;            /* pages 0-3 received */
    qemu_put_be64(w, size);
    qemu_put_buffer(w, words, size);
    qemu_put_be64(w, end);
    data = qemu_file_mem_output_data(w);
    b = g_bytes_new(data->data, MIN(data->len, cut));
    qemu_fclose(w, NULL);
    r = qemu_file_new_mem_input(b);
    ram_migration_load_recv_bitmap(ram, r, block, &err);
    qemu_fclose(r, NULL);
    return err;
}

static void test_source_hostile(void)
{
    uint64_t size;
    QEMUFile *out;
    GError *err = NULL;
    Vm vm;

    test_ram_vm_init(&vm, RAM_BYTES);
    expect_request_error(vm.ram, "pc.ram", 0, PAGE, "outside postcopy");
    test_ram_vm_destroy(&vm);
    source_in_postcopy(&vm, &out);
    expect_request_error(vm.ram, NULL, 0, PAGE, "before any request named");
    expect_request_error(vm.ram, "pc.rom", 0, PAGE,
                         "unknown RAM block 'pc.rom'");
    expect_request_error(vm.ram, "pc.ram", 100, PAGE, "misaligned");
    expect_request_error(vm.ram, "pc.ram", 0, 0, "misaligned");
    expect_request_error(vm.ram, "pc.ram", RAM_BYTES, PAGE, "overruns");
    expect_request_error(vm.ram, "pc.ram", RAM_BYTES - PAGE, 2 * PAGE,
                         "overruns");
    expect_request_error(vm.ram, "pc.ram", UINT64_MAX - PAGE + 1, 2 * PAGE,
                         "overruns");
    g_assert_true(ram_migration_request(vm.ram, "pc.ram", 0, PAGE, NULL,
                                        &err));
    g_assert_true(ram_migration_request(vm.ram, NULL, PAGE, PAGE, NULL,
                                        &err));
    g_assert_no_error(err);
    g_assert_cmpuint(ram_migration_stats(vm.ram).postcopy_requests, ==, 2);
    /* A destination flooding requests is cut off, not buffered forever. */
    for (int i = 0; i < NPAGES && !err; i++) {
        ram_migration_request(vm.ram, NULL, 0, PAGE, NULL, &err);
    }
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "page requests pending"));
    g_clear_error(&err);

    size = ram_migration_recv_bitmap_size(vm.ram);
    g_assert_cmpuint(size, ==, NPAGES / 8);
    err = load_bitmap(vm.ram, "pc.rom", size, RAM_RECV_BITMAP_END, ~0u);
    g_assert_nonnull(strstr(err->message, "unknown RAM block 'pc.rom'"));
    g_clear_error(&err);
    err = load_bitmap(vm.ram, "pc.ram", size + 8, RAM_RECV_BITMAP_END, ~0u);
    g_assert_nonnull(strstr(err->message, "expected 512"));
    g_clear_error(&err);
    err = load_bitmap(vm.ram, "pc.ram", size, 0x1234, ~0u);
    g_assert_nonnull(strstr(err->message, "end mark"));
    g_clear_error(&err);
    err = load_bitmap(vm.ram, "pc.ram", size, RAM_RECV_BITMAP_END, 100);
    g_assert_nonnull(err);
    g_clear_error(&err);
    err = load_bitmap(vm.ram, "pc.ram", size, RAM_RECV_BITMAP_END, ~0u);
    g_assert_no_error(err);
    /* Every page but the four received is to be sent again. */
    g_assert_cmpuint(ram_migration_stats(vm.ram).remaining, ==,
                     (NPAGES - 4) * PAGE);
    savevm_save_cleanup(vm.sv);
    qemu_fclose(out, NULL);
    test_ram_vm_destroy(&vm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!uffd_pager_supported(NULL)) {
        g_test_message("no userfaultfd here: postcopy tests skipped");
        return 0;
    }
    g_test_add_func("/postcopy/end-to-end", test_end_to_end);
    g_test_add_func("/postcopy/end-to-end-preempt", test_end_to_end_preempt);
    g_test_add_func("/postcopy/end-to-end-limited", test_end_to_end_limited);
    g_test_add_func("/postcopy/destination-ram-not-trusted",
                    test_destination_ram_not_trusted);
    g_test_add_func("/postcopy/recover-three-times", test_recover);
    g_test_add_func("/postcopy/recover-three-times-preempt",
                    test_recover_preempt);
    g_test_add_func("/postcopy/destination-hostile",
                    test_destination_hostile);
    g_test_add_func("/postcopy/source-hostile", test_source_hostile);
    return g_test_run();
}
