/*
 * Dirty-page tracking for live migration (accel/kvm/kvm-dirty-log.h) on real
 * KVM (skipped without /dev/kvm): logging turns on and off per RAM slot, the
 * VMM's own writes land at memfd pages across both RAM regions, a sync
 * hands them over exactly once, and nothing else is reported while no vCPU
 * runs.
 */
#include <unistd.h>

#include "accel/kvm/kvm-dirty-log.h"
#include "tern/error.h"
#include "test-kvm-util.h"

#define LOW_LIMIT (64 * MiB)   /* small low region: RAM above it goes to 4 GiB */

typedef struct Fixture {
    KvmState *kvm;
    GuestMemory mem;
} Fixture;

static bool setup(Fixture *f)
{
    g_autoptr(GError) err = NULL;

    if (!test_have_kvm()) {
        return false;
    }
    f->mem.fd = -1;
    f->kvm = kvm_init(&err);
    g_assert_no_error(err);
    g_assert_true(guest_mem_alloc(&f->mem, 96 * MiB, LOW_LIMIT, &err));
    g_assert_cmpuint(f->mem.nr_regions, ==, 2);
    for (unsigned i = 0; i < f->mem.nr_regions; i++) {
        const GuestRegion *r = &f->mem.regions[i];

        g_assert_true(kvm_set_slot(f->kvm, i, r->gpa, r->size, r->hva, 0, &err));
    }
    return true;
}

static void teardown(Fixture *f)
{
    kvm_destroy(f->kvm);
    guest_mem_free(&f->mem);
}

static void test_slots_log_while_started(void)
{
    Fixture f;
    KvmDirtyLog *dl;
    g_autoptr(GError) err = NULL;

    if (!setup(&f)) {
        return;
    }
    dl = kvm_dirty_log_start(f.kvm, &f.mem, &err);
    g_assert_no_error(err);
    for (unsigned i = 0; i < f.mem.nr_regions; i++) {
        g_assert_true(f.kvm->slots[i].flags & KVM_MEM_LOG_DIRTY_PAGES);
        /* The slot stayed where it was (flags change in place). */
        g_assert_cmpuint(f.kvm->slots[i].gpa, ==, f.mem.regions[i].gpa);
    }
    kvm_dirty_log_stop(dl);
    for (unsigned i = 0; i < f.mem.nr_regions; i++) {
        g_assert_false(f.kvm->slots[i].flags & KVM_MEM_LOG_DIRTY_PAGES);
    }
    teardown(&f);
}

static void test_vmm_writes_reported_once(void)
{
    Fixture f;
    KvmDirtyLog *dl;
    g_autoptr(HBitmap) dirty = NULL;
    g_autoptr(GError) err = NULL;
    uint64_t high_page = LOW_LIMIT / 4096;   /* first page of the 4 GiB region */

    if (!setup(&f)) {
        return;
    }
    dirty = hbitmap_try_new(f.mem.ram_size / 4096);
    dl = kvm_dirty_log_start(f.kvm, &f.mem, &err);
    g_assert_no_error(err);

    /* No vCPU ran: a sync reports nothing. */
    g_assert_true(kvm_dirty_log_sync(dl, dirty, &err));
    g_assert_cmpuint(hbitmap_count(dirty), ==, 0);

    kvm_dirty_log_mark(dl, 0x1ffe, 4);                 /* pages 1 and 2 */
    kvm_dirty_log_mark(dl, 4 * GiB + 4096, 1);         /* 2nd page at 4 GiB */
    kvm_dirty_log_mark(dl, 0x5000, 0);                 /* nothing */
    kvm_dirty_log_mark(dl, LOW_LIMIT + 4096, 4096);    /* not RAM: the hole */
    kvm_dirty_log_mark(dl, 8 * GiB, 4096);             /* beyond RAM */
    g_assert_true(kvm_dirty_log_sync(dl, dirty, &err));
    g_assert_cmpuint(hbitmap_count(dirty), ==, 3);
    g_assert_true(hbitmap_get(dirty, 1) && hbitmap_get(dirty, 2));
    g_assert_true(hbitmap_get(dirty, high_page + 1));

    hbitmap_reset_all(dirty);
    g_assert_true(kvm_dirty_log_sync(dl, dirty, &err));
    g_assert_cmpuint(hbitmap_count(dirty), ==, 0);
    kvm_dirty_log_stop(dl);
    kvm_dirty_log_stop(NULL);
    teardown(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-dirty-log/slots-log-while-started",
                    test_slots_log_while_started);
    g_test_add_func("/kvm-dirty-log/vmm-writes-reported-once",
                    test_vmm_writes_reported_once);
    return g_test_run();
}
