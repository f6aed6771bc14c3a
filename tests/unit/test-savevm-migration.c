/* Unit tests for the precopy migration thread (migration/migration-job.c)
 * over a socketpair with tern's own loader on the other end: convergence
 * with a guest that keeps dirtying for a while, the bandwidth limit, cancel
 * of a migration that cannot converge, and a destination that went away;
 * auto-converge's throttle policy and a guest that converges only once
 * throttled. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/migration-job.h"

#define PAGE RAM_PAGE_SIZE
#define RAM_BYTES (1 * MiB)

typedef struct Vm {
    GuestMemory mem;
    SaveVM *sv;
    RamMigration *ram;
    int dirty_rounds;           /* source: syncs that dirty pages */
    bool dirty_all;             /* source: every sync dirties everything */
    unsigned calm_at;           /* dirty_all stops at this throttle (or 0) */
    unsigned throttle;          /* the job's last throttle percentage */
    unsigned throttle_max;
    int throttle_calls;
    int inactivations;          /* disk hand-overs the job asked for */
    bool refuse_inactivate;
    int syncs;
    int stops;
    bool finished;
    GError *finish_err;
} Vm;

static void vm_init(Vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->mem.fd = -1;
    vm->mem.ram_size = RAM_BYTES;
    vm->mem.regions[0] = (GuestRegion){ 0, RAM_BYTES, g_malloc0(RAM_BYTES), 0 };
    vm->mem.nr_regions = 1;
    vm->sv = savevm_new("m");
    vm->ram = ram_migration_new(&vm->mem, "pc.ram");
    ram_migration_register(vm->ram, vm->sv);
}

static void vm_destroy(Vm *vm)
{
    ram_migration_free(vm->ram);
    savevm_free(vm->sv);
    g_free(vm->mem.regions[0].hva);
    g_clear_error(&vm->finish_err);
}

static void fill(Vm *vm, uint8_t salt)
{
    for (size_t off = 0; off < RAM_BYTES; off += PAGE) {
        memset(vm->mem.regions[0].hva + off,
               (off / PAGE) % 3 ? (uint8_t)(off / PAGE + salt) : 0, PAGE);
    }
}

/* The "KVM dirty log": pages the guest wrote since the last sync. */
static bool guest_sync(void *opaque, HBitmap *dirty, GError **errp)
{
    Vm *vm = opaque;

    vm->syncs++;
    if (vm->dirty_all && !(vm->calm_at && vm->throttle >= vm->calm_at)) {
        hbitmap_set_all(dirty);
    } else if (vm->syncs <= vm->dirty_rounds) {
        for (uint64_t page = vm->syncs; page < 32; page += 3) {
            memset(vm->mem.regions[0].hva + page * PAGE, 0x60 + vm->syncs,
                   PAGE);
            hbitmap_set(dirty, page, 1);
        }
    }
    return true;
}

static bool stop_vm(void *opaque, GError **errp)
{
    ((Vm *)opaque)->stops++;
    return true;
}

static void throttled(void *opaque, unsigned pct)
{
    Vm *vm = opaque;

    vm->throttle = pct;
    vm->throttle_max = MAX(vm->throttle_max, pct);
    vm->throttle_calls++;
}

static bool inactivate_disks(void *opaque, GError **errp)
{
    Vm *vm = opaque;

    vm->inactivations++;
    g_assert_cmpint(vm->stops, ==, 1);      /* only with the VM stopped */
    if (vm->refuse_inactivate) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "disk flush failed");
        return false;
    }
    return true;
}

static void finished(void *opaque, const GError *err)
{
    Vm *vm = opaque;

    vm->finished = true;
    vm->finish_err = err ? g_error_copy(err) : NULL;
}

typedef struct Dest {
    Vm vm;
    QEMUFile *f;
    GThread *thread;
    bool ok;
    GError *err;
} Dest;

static gpointer dest_thread(gpointer opaque)
{
    Dest *d = opaque;

    d->ok = savevm_load(d->vm.sv, d->f, &d->err);
    return NULL;
}

/* Connect a source VM to a destination loading on its own thread. */
static QEMUFile *connect_pair(Dest *d)
{
    int fds[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    vm_init(&d->vm);
    d->f = qemu_file_new_fd_input(fds[1]);
    d->thread = g_thread_new("dest", dest_thread, d);
    return qemu_file_new_fd_output(fds[0]);
}

static void dest_join(Dest *d)
{
    g_thread_join(d->thread);
    qemu_fclose(d->f, NULL);
}

static MigrationJob *start_with(Vm *src, QEMUFile *f,
                                const MigrationParams *p)
{
    MigrationHooks h = {
        .stop_vm = stop_vm, .finished = finished, .throttle = throttled,
        .inactivate_disks = inactivate_disks, .opaque = src,
    };

    ram_migration_set_dirty_sync(src->ram, guest_sync, src);
    return migration_job_start(src->sv, f, NULL, src->ram, p, &h);
}

static MigrationJob *start(Vm *src, QEMUFile *f, uint64_t bw)
{
    MigrationParams p = { .max_bandwidth = bw };
    MigrationHooks h = {
        .stop_vm = stop_vm, .finished = finished, .throttle = throttled,
        .inactivate_disks = inactivate_disks, .opaque = src,
    };

    ram_migration_set_dirty_sync(src->ram, guest_sync, src);
    return migration_job_start(src->sv, f, NULL, src->ram, &p, &h);
}

static void test_converges(void)
{
    Vm src;
    Dest d = { 0 };
    QEMUFile *f;
    MigrationJob *job;
    MigrationStats st;
    GError *err = NULL;

    vm_init(&src);
    fill(&src, 3);
    src.dirty_rounds = 3;
    f = connect_pair(&d);
    job = start(&src, f, 0);
    g_assert_true(migration_job_wait(job, &err));
    g_assert_no_error(err);
    dest_join(&d);
    g_assert_no_error(d.err);
    g_assert_true(d.ok);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "completed");
    g_assert_cmpuint(st.total, ==, RAM_BYTES);
    g_assert_cmpuint(st.remaining, ==, 0);
    g_assert_cmpuint(st.dirty_sync_count, >=, 4);
    g_assert_cmpuint(st.normal + st.duplicate, >=, RAM_BYTES / PAGE);
    g_assert_cmpuint(st.transferred, >, RAM_BYTES / 2);
    g_assert_cmpint(src.stops, ==, 1);
    g_assert_cmpint(src.inactivations, ==, 1);
    g_assert_true(src.finished);
    g_assert_null(src.finish_err);
    g_assert_cmpmem(src.mem.regions[0].hva, RAM_BYTES,
                    d.vm.mem.regions[0].hva, RAM_BYTES);
    migration_job_free(job);
    vm_destroy(&src);
    vm_destroy(&d.vm);
}

static void test_bandwidth_limit(void)
{
    Vm src;
    Dest d = { 0 };
    MigrationJob *job;
    MigrationStats st;

    vm_init(&src);
    memset(src.mem.regions[0].hva, 0x42, RAM_BYTES);   /* no zero pages */
    job = start(&src, connect_pair(&d), 8 * MiB);
    g_assert_true(migration_job_wait(job, NULL));
    dest_join(&d);
    g_assert_true(d.ok);
    migration_job_get_stats(job, &st);
    /* 1 MiB at 8 MiB/s in 100 ms windows of 0.8 MiB: at least one wait. */
    g_assert_cmpuint(st.total_time_ms, >=, 90);
    g_assert_cmpmem(src.mem.regions[0].hva, RAM_BYTES,
                    d.vm.mem.regions[0].hva, RAM_BYTES);
    migration_job_free(job);
    vm_destroy(&src);
    vm_destroy(&d.vm);
}

/* A guest dirtying everything faster than 2 MiB/s never converges; cancel
 * ends it, the VM was never stopped, and the destination fails cleanly. */
static void test_cancel(void)
{
    Vm src;
    Dest d = { 0 };
    MigrationJob *job;
    MigrationStats st;
    GError *err = NULL;

    vm_init(&src);
    fill(&src, 1);
    src.dirty_all = true;
    job = start(&src, connect_pair(&d), 2 * MiB);
    g_usleep(300 * 1000);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "active");
    migration_job_cancel(job);
    g_assert_false(migration_job_wait(job, &err));
    g_assert_nonnull(strstr(err->message, "cancelled"));
    g_clear_error(&err);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "cancelled");
    g_assert_cmpstr(st.error_desc, ==, "migration cancelled");
    g_assert_cmpint(src.stops, ==, 0);
    g_assert_cmpint(src.inactivations, ==, 0);
    g_assert_true(src.finished);
    g_assert_nonnull(src.finish_err);
    dest_join(&d);
    g_assert_false(d.ok);
    g_assert_nonnull(strstr(d.err->message, "truncated"));
    g_clear_error(&d.err);
    migration_job_free(job);
    vm_destroy(&src);
    vm_destroy(&d.vm);
}

static void test_destination_gone(void)
{
    Vm src;
    int fds[2];
    MigrationJob *job;
    MigrationStats st;
    GError *err = NULL;

    vm_init(&src);
    fill(&src, 2);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    close(fds[1]);
    job = start(&src, qemu_file_new_fd_output(fds[0]), 0);
    g_assert_false(migration_job_wait(job, &err));
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_IO));
    g_clear_error(&err);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "failed");
    g_assert_nonnull(strstr(st.error_desc, "migration channel write"));
    g_assert_nonnull(src.finish_err);
    migration_job_free(job);
    vm_destroy(&src);
}

/* The disks cannot be handed over: the migration fails with the reason,
 * before EOF, so the destination never completes a load. */
static void test_inactivate_failure(void)
{
    Vm src;
    Dest d = { 0 };
    MigrationJob *job;
    MigrationStats st;
    GError *err = NULL;

    vm_init(&src);
    fill(&src, 7);
    src.refuse_inactivate = true;
    job = start(&src, connect_pair(&d), 0);
    g_assert_false(migration_job_wait(job, &err));
    g_assert_nonnull(strstr(err->message, "disk flush failed"));
    g_clear_error(&err);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "failed");
    g_assert_cmpint(src.inactivations, ==, 1);
    g_assert_nonnull(src.finish_err);
    dest_join(&d);
    g_assert_false(d.ok);
    g_clear_error(&d.err);
    migration_job_free(job);
    vm_destroy(&src);
    vm_destroy(&d.vm);
}

static void test_throttle_next(void)
{
    MigrationParams p = {
        .cpu_throttle_initial = 20, .cpu_throttle_increment = 10,
        .max_cpu_throttle = 99,
    };

    g_assert_cmpuint(migration_throttle_next(&p, 0, 100, 50), ==, 20);
    g_assert_cmpuint(migration_throttle_next(&p, 20, 100, 50), ==, 30);
    g_assert_cmpuint(migration_throttle_next(&p, 95, 100, 50), ==, 99);
    p.max_cpu_throttle = 50;
    g_assert_cmpuint(migration_throttle_next(&p, 45, 100, 50), ==, 50);
    g_assert_cmpuint(migration_throttle_next(&p, 0, 100, 50), ==, 20);
    p.cpu_throttle_initial = 70;                /* initial above the max */
    g_assert_cmpuint(migration_throttle_next(&p, 0, 100, 50), ==, 50);
    /* Tailslow: 60 % of the time left, dirtying 100 for a threshold of 95
     * -> the ideal is 57 %, so +3 rather than +10; far over it -> +10. */
    p = (MigrationParams){ .cpu_throttle_initial = 20,
                           .cpu_throttle_increment = 10,
                           .max_cpu_throttle = 99,
                           .cpu_throttle_tailslow = true };
    g_assert_cmpuint(migration_throttle_next(&p, 40, 100, 95), ==, 43);
    g_assert_cmpuint(migration_throttle_next(&p, 40, 1000, 50), ==, 50);
    g_assert_cmpuint(migration_throttle_next(&p, 0, 1000, 50), ==, 20);
    g_assert_cmpuint(migration_throttle_next(&p, 95, 1000, 50), ==, 99);
}

/* A guest dirtying everything until it is throttled to 30 %: without
 * auto-converge it would never converge (test_cancel); with it, the job
 * throttles twice-high periods at 20 then 30, completes, and unthrottles. */
static void test_auto_converge(void)
{
    MigrationParams p = {
        .max_bandwidth = 4 * MiB, .downtime_limit_ms = 50,
        .auto_converge = true,
        .throttle_trigger_threshold = 50, .cpu_throttle_initial = 20,
        .cpu_throttle_increment = 10, .max_cpu_throttle = 99,
    };
    Vm src;
    Dest d = { 0 };
    MigrationJob *job;
    MigrationStats st;
    GError *err = NULL;

    vm_init(&src);
    fill(&src, 5);
    src.dirty_all = true;
    src.calm_at = 30;
    job = start_with(&src, connect_pair(&d), &p);
    g_assert_true(migration_job_wait(job, &err));
    g_assert_no_error(err);
    dest_join(&d);
    g_assert_no_error(d.err);
    g_assert_true(d.ok);
    migration_job_get_stats(job, &st);
    g_assert_cmpstr(migration_status_name(st.status), ==, "completed");
    /* 20, 30, then 0 when the job ended. */
    g_assert_cmpint(src.throttle_calls, ==, 3);
    g_assert_cmpuint(src.throttle_max, ==, 30);
    g_assert_cmpuint(src.throttle, ==, 0);
    g_assert_cmpuint(st.cpu_throttle_percentage, ==, 0);
    /* Two periods of at least a second per step. */
    g_assert_cmpuint(st.total_time_ms, >=, 4000);
    g_assert_cmpmem(src.mem.regions[0].hva, RAM_BYTES,
                    d.vm.mem.regions[0].hva, RAM_BYTES);
    migration_job_free(job);
    vm_destroy(&src);
    vm_destroy(&d.vm);
}

/* A cancelled job that throttled leaves the guest unthrottled. */
static void test_auto_converge_cancel(void)
{
    MigrationParams p = {
        .max_bandwidth = 4 * MiB, .downtime_limit_ms = 50,
        .auto_converge = true,
        .throttle_trigger_threshold = 50, .cpu_throttle_initial = 20,
        .cpu_throttle_increment = 10, .max_cpu_throttle = 99,
    };
    Vm src;
    Dest d = { 0 };
    MigrationJob *job;
    MigrationStats st = { 0 };

    vm_init(&src);
    fill(&src, 6);
    src.dirty_all = true;
    job = start_with(&src, connect_pair(&d), &p);
    for (int i = 0; i < 200 && !st.cpu_throttle_percentage; i++) {
        g_usleep(50 * 1000);
        migration_job_get_stats(job, &st);
    }
    g_assert_cmpuint(st.cpu_throttle_percentage, ==, 20);
    migration_job_cancel(job);
    g_assert_false(migration_job_wait(job, NULL));
    g_assert_cmpuint(src.throttle, ==, 0);
    g_assert_cmpuint(src.throttle_max, >=, 20);
    dest_join(&d);
    g_clear_error(&d.err);
    migration_job_free(job);
    vm_destroy(&src);
    vm_destroy(&d.vm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration-job/converges", test_converges);
    g_test_add_func("/migration-job/bandwidth-limit", test_bandwidth_limit);
    g_test_add_func("/migration-job/cancel", test_cancel);
    g_test_add_func("/migration-job/destination-gone", test_destination_gone);
    g_test_add_func("/migration-job/inactivate-failure",
                    test_inactivate_failure);
    g_test_add_func("/migration-job/throttle-next", test_throttle_next);
    g_test_add_func("/migration-job/auto-converge", test_auto_converge);
    g_test_add_func("/migration-job/auto-converge-cancel",
                    test_auto_converge_cancel);
    return g_test_run();
}
