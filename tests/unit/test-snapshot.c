/*
 * VM snapshots (migration/snapshot.c over block/snapshot-all.c) without a
 * machine: a SaveVM with RAM in heap memory and a small device, drives on
 * real qcow2 (and raw) files. Save, load and delete across several drives;
 * the same name, date and clock everywhere and the VM state on one drive;
 * disks, RAM and device state going back to the saved point; overwrite and
 * its refusal; QEMU 7.2's messages for every refusal; partial snapshots
 * deleted when a drive fails; the run state around save and load; a stream
 * for another machine refused before anything changes, a cut or garbled
 * one leaving the VM stopped and not runnable until a reset; the state read
 * in place; "info snapshots" and the table text.
 */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "block/snapshot-all.h"
#include "block/snapshot-dump.h"
#include "migration/qemu-file-block.h"
#include "migration/ram.h"
#include "migration/snapshot.h"
#include "softmmu/runstate.h"
#include "test-block-fault.h"

#define RAM_SIZE    (256 * KiB)
#define DISK_SIZE   (4 * MiB)

typedef struct Dev {
    uint32_t counter;
    RunState saw;               /* run state while pre_save ran */
    bool fail_save;
} Dev;

static bool dev_pre_save(void *opaque, GError **errp)
{
    Dev *d = opaque;

    d->saw = runstate_get();
    if (d->fail_save) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "device refuses");
        return false;
    }
    return true;
}

static const VMStateDescription vmstate_dev = {
    .name = "test-dev",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = dev_pre_save,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(counter, Dev),
        VMSTATE_END_OF_LIST()
    },
};

typedef struct Env {
    char *dir;
    BlockBackendList *blks;
    GPtrArray *drives;          /* of BlockBackend * */
    GuestMemory mem;
    SaveVM *sv;
    RamMigration *ram;
    Dev dev;
    VmSnapshot *vs;
    bool refuse;                /* can_save says no */
    unsigned resets;
} Env;

static bool env_can_save(void *opaque, GError **errp)
{
    Env *e = opaque;

    if (e->refuse) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "There's a migration process in progress");
        return false;
    }
    return true;
}

static uint64_t env_clock(void *opaque)
{
    return 3723004000000ull;     /* 1:02:03.004 */
}

static bool env_reset(void *opaque, GError **errp)
{
    Env *e = opaque;

    e->resets++;
    e->dev.counter = 0;
    vm_snapshot_machine_reset(e->vs);
    return true;
}

static const VmSnapshotOps env_ops = {
    .can_save = env_can_save,
    .vm_clock_ns = env_clock,
    .reset = env_reset,
};

static void vm_ops_noop(void *opaque)
{
}

static const VmControlOps vm_ops = {
    .pause_vcpus = vm_ops_noop,
    .resume_vcpus = vm_ops_noop,
};

/* A drive 'id' with node-name 'node' on a new image; format "qcow2",
 * "raw", or "ro" (a read-only qcow2). */
static BlockNode *add_drive(Env *e, const char *id, const char *node,
                            const char *format)
{
    bool ro = !strcmp(format, "ro");
    const char *fmt = ro ? "qcow2" : format;
    g_autofree char *path = g_build_filename(e->dir, node, NULL);
    g_autoptr(GError) err = NULL;
    BlockNode *bs;
    BlockBackend *blk;

    g_assert_true(bdrv_create(fmt, path, DISK_SIZE, NULL, &err));
    bs = bdrv_open(path, fmt, ro ? 0 : BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    bdrv_set_node_name(bs, node);
    blk = blk_new(id, bs, NULL);
    g_assert_true(blk_list_add(e->blks, blk, NULL));
    g_ptr_array_add(e->drives, blk);
    return bs;
}

static void env_init(Env *e)
{
    memset(e, 0, sizeof(*e));
    e->dir = g_dir_make_tmp("test-snapshot-XXXXXX", NULL);
    e->blks = blk_list_new();
    e->drives = g_ptr_array_new_with_free_func((GDestroyNotify)blk_free);
    e->mem = (GuestMemory){
        .regions = { { 0, RAM_SIZE, g_malloc0(RAM_SIZE), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = RAM_SIZE,
    };
    e->sv = savevm_new("virt");
    e->ram = ram_migration_new(&e->mem, "pc.ram");
    ram_migration_register(e->ram, e->sv);
    savevm_register_vmstate(e->sv, NULL, 0, &vmstate_dev, &e->dev);
    e->vs = vm_snapshot_new(e->sv, e->blks, &env_ops, e);
    runstate_init(&vm_ops, e, NULL);
}

static void env_destroy(Env *e)
{
    g_autoptr(GDir) d = g_dir_open(e->dir, 0, NULL);
    const char *name;

    runstate_cleanup();
    vm_snapshot_free(e->vs);
    savevm_free(e->sv);
    ram_migration_free(e->ram);
    blk_list_free(e->blks);
    g_ptr_array_unref(e->drives);
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(e->dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(e->dir);
    g_free(e->dir);
    g_free(e->mem.regions[0].hva);
}

static uint8_t *ram(Env *e)
{
    return e->mem.regions[0].hva;
}

static void set_vm(Env *e, uint8_t pattern, uint32_t counter)
{
    memset(ram(e) + 8 * KiB, pattern, 64 * KiB);
    e->dev.counter = counter;
}

static void disk_write(BlockNode *bs, uint8_t pattern)
{
    uint8_t buf[4096];
    g_autoptr(GError) err = NULL;

    memset(buf, pattern, sizeof(buf));
    g_assert_true(bdrv_pwrite(bs, 64 * KiB, buf, sizeof(buf), &err));
}

static uint8_t disk_read(BlockNode *bs)
{
    uint8_t buf[4096];
    g_autoptr(GError) err = NULL;

    g_assert_true(bdrv_pread(bs, 64 * KiB, buf, sizeof(buf), &err));
    return buf[100];
}

/* The error of a call that must fail, checked against 'want' (a part). */
#define FAILS_WITH(call, want)                                          \
    do {                                                                \
        g_autoptr(GError) err_ = NULL;                                  \
        GError **errp = &err_;                                          \
        g_assert_false(call);                                           \
        g_assert_nonnull(err_);                                         \
        if (!strstr(err_->message, (want))) {                           \
            g_error("'%s' does not say '%s'", err_->message, (want));   \
        }                                                               \
    } while (0)

#define OK(call)                                                        \
    do {                                                                \
        g_autoptr(GError) err_ = NULL;                                  \
        GError **errp = &err_;                                          \
        bool ok_ = (call);                                              \
        g_assert_no_error(err_);                                        \
        g_assert_true(ok_);                                             \
    } while (0)

static BlockSnapshotInfo *find(BlockNode *bs, const char *name)
{
    BlockSnapshotInfo *sn = NULL;

    return snapshot_disks_find(bs, name, &sn, NULL) ? sn : NULL;
}

static unsigned count(BlockNode *bs)
{
    g_autoptr(GPtrArray) list = bdrv_snapshot_list(bs, NULL);

    return list->len;
}

static void test_save_load_two_disks(void)
{
    Env e;
    const char *const devices[] = { "n0", "n1", NULL };
    VmSnapshotArgs save = { .name = "s1", .vmstate = "n1", .devices = devices };
    BlockNode *b0, *b1;

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    b1 = add_drive(&e, "d1", "n1", "qcow2");
    vm_start();
    set_vm(&e, 0x5a, 7);
    disk_write(b0, 0xa0);
    disk_write(b1, 0xb0);
    OK(vm_snapshot_save(e.vs, &save, errp));
    /* The VM was stopped while its state was saved, and runs again. */
    g_assert_cmpint(e.dev.saw, ==, RUN_STATE_SAVE_VM);
    g_assert_true(runstate_check(RUN_STATE_RUNNING));

    g_autoptr(BlockSnapshotInfo) s0 = find(b0, "s1");
    g_autoptr(BlockSnapshotInfo) s1 = find(b1, "s1");
    g_assert_nonnull(s0);
    g_assert_nonnull(s1);
    g_assert_cmpuint(s0->vm_state_size, ==, 0);
    g_assert_cmpuint(s1->vm_state_size, >, RAM_SIZE / 8);
    g_assert_cmpuint(s0->date_sec, ==, s1->date_sec);
    g_assert_cmpuint(s0->date_nsec, ==, s1->date_nsec);
    g_assert_cmpuint(s0->vm_clock_nsec, ==, 3723004000000ull);
    g_assert_cmpuint(s1->vm_clock_nsec, ==, 3723004000000ull);
    g_assert_cmpint(s1->icount, ==, -1);

    /* The VM goes on changing, then goes back. */
    set_vm(&e, 0x11, 99);
    disk_write(b0, 0xa1);
    disk_write(b1, 0xb1);
    OK(vm_snapshot_load(e.vs, &save, errp));
    g_assert_true(runstate_check(RUN_STATE_RUNNING));
    g_assert_cmpuint(e.resets, ==, 1);
    g_assert_cmpuint(ram(&e)[8 * KiB + 4097], ==, 0x5a);
    g_assert_cmpuint(e.dev.counter, ==, 7);
    g_assert_cmpuint(disk_read(b0), ==, 0xa0);
    g_assert_cmpuint(disk_read(b1), ==, 0xb0);
    OK(vm_snapshot_can_run(e.vs, errp));

    /* delete: on every disk. */
    OK(vm_snapshot_delete(e.vs, &save, errp));
    g_assert_cmpuint(count(b0), ==, 0);
    g_assert_cmpuint(count(b1), ==, 0);
    OK(vm_snapshot_delete(e.vs, &save, errp));    /* none left: fine */
    env_destroy(&e);
}

static void test_overwrite_and_names(void)
{
    Env e;
    VmSnapshotArgs hmp = { .name = "s", .overwrite = true };
    const char *const devices[] = { "n0", NULL };
    VmSnapshotArgs qmp = { .name = "s", .vmstate = "n0", .devices = devices };
    VmSnapshotArgs unnamed = { .overwrite = true };
    g_autoptr(GPtrArray) list = NULL;
    BlockNode *b0;

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    set_vm(&e, 1, 1);
    OK(vm_snapshot_save(e.vs, &hmp, errp));
    g_assert_cmpint(e.dev.saw, ==, RUN_STATE_PRELAUNCH);   /* not running */
    set_vm(&e, 2, 2);
    OK(vm_snapshot_save(e.vs, &hmp, errp));    /* HMP replaces it */
    g_assert_cmpuint(count(b0), ==, 1);
    FAILS_WITH(vm_snapshot_save(e.vs, &qmp, errp),
               "Snapshot 's' already exists in one or more devices");
    set_vm(&e, 0, 0);
    OK(vm_snapshot_load(e.vs, &qmp, errp));
    g_assert_cmpuint(e.dev.counter, ==, 2);

    OK(vm_snapshot_save(e.vs, &unnamed, errp));
    list = bdrv_snapshot_list(b0, NULL);
    g_assert_cmpuint(list->len, ==, 2);
    const char *auto_name = ((BlockSnapshotInfo *)list->pdata[1])->name;
    g_assert_true(g_regex_match_simple("^vm-20[0-9]{12}$", auto_name, 0, 0));
    env_destroy(&e);
}

static void test_refusals(void)
{
    Env e;
    const char *const empty[] = { NULL };
    const char *const nosuch[] = { "n0", "zz", NULL };
    const char *const with_ro[] = { "n0", "nro", NULL };
    const char *const with_raw[] = { "n0", "nr", NULL };
    const char *const only_n0[] = { "n0", NULL };
    VmSnapshotArgs a = { .name = "s", .overwrite = true };

    env_init(&e);
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "no block device can store vmstate for snapshot");
    add_drive(&e, "dro", "nro", "ro");
    /* A read-only drive is left out by default... */
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "no block device can store vmstate for snapshot");
    add_drive(&e, "d0", "n0", "qcow2");
    OK(vm_snapshot_save(e.vs, &a, errp));
    /* ...and refused when named. */
    a = (VmSnapshotArgs){ .name = "q", .vmstate = "n0", .devices = with_ro };
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "Device 'dro' is writable but does not support snapshots");
    a.devices = empty;
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "At least one device is required for snapshot");
    a.devices = nosuch;
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp), "No block device node 'zz'");
    /* Drive ids are no node names. */
    a.devices = only_n0;
    a.vmstate = "d0";
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "vmstate block device 'd0' does not exist");
    a.vmstate = "nro";
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "vmstate block device 'nro' does not exist");
    a.vmstate = "n0";
    e.refuse = true;
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "There's a migration process in progress");
    e.refuse = false;

    /* A raw drive cannot take part, by default or by name. */
    add_drive(&e, "dr", "nr", "raw");
    a = (VmSnapshotArgs){ .name = "t", .overwrite = true };
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "Device 'dr' is writable but does not support snapshots");
    FAILS_WITH(vm_snapshot_load(e.vs, &a, errp),
               "Device 'dr' is writable but does not support snapshots");
    FAILS_WITH(vm_snapshot_delete(e.vs, &a, errp),
               "Device 'dr' is writable but does not support snapshots");
    a = (VmSnapshotArgs){ .name = "t", .vmstate = "nr", .devices = with_raw };
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "Device 'dr' is writable but does not support snapshots");
    env_destroy(&e);
}

static void test_load_refusals(void)
{
    Env e;
    BlockSnapshotInfo disk_only = { .name = (char *)"disk", .icount = -1 };
    VmSnapshotArgs s = { .name = "s", .overwrite = true };
    const char *const only_n0[] = { "n0", NULL };
    VmSnapshotArgs s_n0 = { .name = "s", .vmstate = "n0", .devices = only_n0 };
    VmSnapshotArgs d = { .name = "disk" };
    BlockNode *b0, *b1;

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    OK(vm_snapshot_save(e.vs, &s_n0, errp));     /* on n0 alone */
    b1 = add_drive(&e, "d1", "n1", "qcow2");
    vm_start();
    FAILS_WITH(vm_snapshot_load(e.vs, &s, errp),
               "Snapshot 's' does not exist in one or more devices");
    /* Stopped first and left stopped, as QEMU's loadvm, but intact. */
    g_assert_true(runstate_check(RUN_STATE_RESTORE_VM));
    OK(vm_snapshot_can_run(e.vs, errp));
    OK(vm_snapshot_load(e.vs, &s_n0, errp));      /* the subset has it */

    g_assert_true(bdrv_snapshot_create(b0, &disk_only, NULL));
    g_assert_true(bdrv_snapshot_create(b1, &disk_only, NULL));
    FAILS_WITH(vm_snapshot_load(e.vs, &d, errp),
               "This is a disk-only snapshot. Revert to it  offline using "
               "qemu-img");
    g_assert_cmpuint(e.resets, ==, 1);
    OK(vm_snapshot_can_run(e.vs, errp));
    env_destroy(&e);
}

/* A snapshot whose VM state area holds 'state' (size: what it records). */
static void forge_snapshot(BlockNode *bs, const char *name, const void *state,
                           size_t len, uint64_t size)
{
    BlockSnapshotInfo sn = { .name = (char *)name, .icount = -1,
                             .vm_state_size = size };
    g_autoptr(GError) err = NULL;

    g_assert_true(bdrv_save_vmstate(bs, 0, state, len, &err));
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
}

static GBytes *saved_stream(Env *e, BlockNode *bs)
{
    VmSnapshotArgs a = { .name = "good", .overwrite = true };
    GBytes *b;
    g_autoptr(GError) err = NULL;

    OK(vm_snapshot_save(e->vs, &a, errp));
    b = vm_snapshot_read_state(bs, "good", &err);
    g_assert_no_error(err);
    return b;
}

static void test_corrupt_state(void)
{
    Env e;
    BlockNode *b0;
    g_autoptr(GBytes) good = NULL;
    const uint8_t *p;
    size_t len;
    VmSnapshotArgs a = { 0 };

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    set_vm(&e, 0x77, 5);
    good = saved_stream(&e, b0);
    p = g_bytes_get_data(good, &len);
    g_assert_cmpmem(p, 4, "QEVM", 4);

    /* Another machine's stream: refused before the disks or the VM
     * change, so the VM may run on. */
    {
        g_autofree uint8_t *other = g_memdup2(p, len);
        memcpy(other + 13, "none", 4);          /* 4-byte name "virt" */
        forge_snapshot(b0, "other", other, len, len);
    }
    set_vm(&e, 0x12, 9);
    disk_write(b0, 0xc3);
    vm_start();
    a.name = "other";
    FAILS_WITH(vm_snapshot_load(e.vs, &a, errp),
               "machine type in the stream is 'none', this VM is 'virt'");
    g_assert_true(runstate_check(RUN_STATE_RESTORE_VM));
    g_assert_cmpuint(e.resets, ==, 0);
    g_assert_cmpuint(disk_read(b0), ==, 0xc3);
    g_assert_cmpuint(e.dev.counter, ==, 9);
    OK(vm_snapshot_can_run(e.vs, errp));

    /* Garbage in place of the stream. */
    {
        uint8_t junk[4096];
        memset(junk, 0xe5, sizeof(junk));
        forge_snapshot(b0, "junk", junk, sizeof(junk), sizeof(junk));
    }
    a.name = "junk";
    FAILS_WITH(vm_snapshot_load(e.vs, &a, errp), "not a migration stream");
    OK(vm_snapshot_can_run(e.vs, errp));

    /* Cut short: found only while loading. The VM stays stopped and may
     * not run until a load succeeds or it is reset. */
    forge_snapshot(b0, "cut", p, len / 2, len / 2);
    a.name = "cut";
    FAILS_WITH(vm_snapshot_load(e.vs, &a, errp), "truncated");
    FAILS_WITH(vm_snapshot_can_run(e.vs, errp), "failed loadvm");
    g_assert_true(runstate_check(RUN_STATE_RESTORE_VM));
    a.name = "good";
    OK(vm_snapshot_load(e.vs, &a, errp));
    OK(vm_snapshot_can_run(e.vs, errp));
    g_assert_cmpuint(e.dev.counter, ==, 5);

    /* Garbled from the middle of the RAM section on. */
    {
        g_autofree uint8_t *bad = g_memdup2(p, len);
        memset(bad + len / 2, 0xff, len - len / 2);
        forge_snapshot(b0, "garbled", bad, len, len);
    }
    a.name = "garbled";
    FAILS_WITH(vm_snapshot_load(e.vs, &a, errp), "Error while loading VM state");
    FAILS_WITH(vm_snapshot_can_run(e.vs, errp), "failed loadvm");
    env_reset(&e, NULL);             /* what system_reset does */
    OK(vm_snapshot_can_run(e.vs, errp));
    env_destroy(&e);
}

static void test_failures_clean_up(void)
{
    Env e;
    VmSnapshotArgs a = { .name = "s", .overwrite = true };
    BlockNode *b0, *b1;

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    b1 = add_drive(&e, "d1", "n1", "qcow2");
    vm_start();

    /* The state cannot be written: no snapshot anywhere, the VM runs. */
    e.dev.fail_save = true;
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "Error while writing VM state: ");
    e.dev.fail_save = false;
    g_assert_true(runstate_check(RUN_STATE_RUNNING));
    g_assert_cmpuint(count(b0) + count(b1), ==, 0);

    /* The second drive fails: the first one's snapshot goes again. */
    test_fault_attach(b1);
    test_fault_set(EIO);
    FAILS_WITH(vm_snapshot_save(e.vs, &a, errp),
               "Could not create snapshot 's' on 'd1': ");
    test_fault_set(0);
    g_assert_true(runstate_check(RUN_STATE_RUNNING));
    g_assert_cmpuint(count(b0), ==, 0);
    OK(vm_snapshot_save(e.vs, &a, errp));
    g_assert_cmpuint(count(b0), ==, 1);
    g_assert_cmpuint(count(b1), ==, 1);
    env_destroy(&e);
}

/* The VM state read where the snapshot keeps it: the image is untouched,
 * and the bytes are the stream loadvm reads after reverting. */
static void test_read_in_place(void)
{
    Env e;
    BlockNode *b0;
    VmSnapshotArgs a = { .name = "s", .overwrite = true };
    g_autoptr(GBytes) state = NULL;
    g_autoptr(BlockSnapshotInfo) sn = NULL;
    g_autofree uint8_t *area = NULL;
    g_autoptr(GError) err = NULL;

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    for (size_t i = 0; i < RAM_SIZE; i += 4096) {
        ram(&e)[i] = (uint8_t)(i >> 12) | 1;
    }
    OK(vm_snapshot_save(e.vs, &a, errp));
    /* The active image dropped its VM state area; the snapshot kept it. */
    sn = find(b0, "s");
    state = vm_snapshot_read_state(b0, "s", &err);
    g_assert_no_error(err);
    g_assert_cmpuint(g_bytes_get_size(state), ==, sn->vm_state_size);
    area = g_malloc(sn->vm_state_size);
    g_assert_true(bdrv_load_vmstate(b0, 0, area, 16, &err));
    g_assert_cmpuint(area[0], ==, 0);
    g_assert_true(bdrv_snapshot_apply(b0, sn->id_str, &err));
    g_assert_true(bdrv_load_vmstate(b0, 0, area, sn->vm_state_size, &err));
    g_assert_cmpmem(area, sn->vm_state_size, g_bytes_get_data(state, NULL),
                    g_bytes_get_size(state));

    g_assert_null(vm_snapshot_read_state(b0, "nosuch", &err));
    g_assert_nonnull(strstr(err->message, "nosuch"));
    g_clear_error(&err);
    g_assert_false(bdrv_snapshot_load_vmstate(b0, "77", 0, area, 1, &err));
    g_assert_nonnull(err);
    env_destroy(&e);
}

/* Writes of every size reach the area in order, whole clusters at a time,
 * and read back through both inputs. */
static void test_channel_sizes(void)
{
    Env e;
    BlockNode *b0;
    g_autofree uint8_t *data = g_malloc(3 * MiB);
    g_autofree uint8_t *back = g_malloc(3 * MiB);
    BlockSnapshotInfo sn = { .name = (char *)"c", .icount = -1 };
    size_t sizes[] = { 1, 7, 4096, 8, 65535, 65537, 300000, 1 };
    size_t off = 0, n;
    QEMUFile *f;
    g_autoptr(GError) err = NULL;

    env_init(&e);
    b0 = add_drive(&e, "d0", "n0", "qcow2");
    for (size_t i = 0; i < 3 * MiB; i++) {
        data[i] = (uint8_t)(i * 7 + (i >> 13));
    }
    f = qemu_file_new_vmstate_output(b0);
    for (unsigned round = 0; off < 3 * MiB - 400000; round++) {
        n = sizes[round % G_N_ELEMENTS(sizes)];
        if (round % 3) {
            qemu_put_buffer_async(f, data + off, n);
        } else {
            qemu_put_buffer(f, data + off, n);
        }
        off += n;
    }
    g_assert_cmpuint(qemu_file_tell(f), ==, off);
    g_assert_true(qemu_fclose(f, &err));
    sn.vm_state_size = off;
    g_assert_true(bdrv_snapshot_create(b0, &sn, &err));
    g_autoptr(BlockSnapshotInfo) got = find(b0, "c");
    f = qemu_file_new_snapshot_vmstate_input(b0, got->id_str, off);
    g_assert_cmpuint(qemu_get_buffer(f, back, 5), ==, 5);
    g_assert_cmpuint(qemu_get_buffer(f, back + 5, off - 5), ==, off - 5);
    g_assert_true(qemu_file_at_eof(f));
    qemu_fclose(f, NULL);
    g_assert_cmpmem(back, off, data, off);
    env_destroy(&e);
}

static void test_info_snapshots(void)
{
    Env e;
    g_autoptr(GString) out = g_string_new(NULL);
    const char *const only_n0[] = { "n0", NULL };
    VmSnapshotArgs all = { .name = "both", .overwrite = true };
    VmSnapshotArgs one = { .name = "half", .vmstate = "n0", .devices = only_n0 };
    char *row;

    env_init(&e);
    block_snapshot_info_all(out, e.blks);
    g_assert_cmpstr(out->str, ==,
                    "no block device can store vmstate for snapshot\n");
    add_drive(&e, "d0", "n0", "qcow2");
    add_drive(&e, "d1", "n1", "qcow2");
    g_string_truncate(out, 0);
    block_snapshot_info_all(out, e.blks);
    g_assert_cmpstr(out->str, ==, "There is no snapshot available.\n");
    OK(vm_snapshot_save(e.vs, &one, errp));
    g_string_truncate(out, 0);
    block_snapshot_info_all(out, e.blks);
    g_assert_true(g_str_has_prefix(out->str,
        "List of snapshots present on all disks:\nNone\n\n"
        "List of partial (non-loadable) snapshots on 'd0':\n"
        "ID        TAG               VM SIZE                DATE     "
        "VM CLOCK     ICOUNT\n1         half    "));
    OK(vm_snapshot_save(e.vs, &all, errp));
    g_string_truncate(out, 0);
    block_snapshot_info_all(out, e.blks);
    row = strstr(out->str, "\n--        both    ");
    g_assert_nonnull(row);
    g_assert_true(g_str_has_suffix(strchr(row + 1, '\n') - 25,
                                   " 01:02:03.004           \n"));
    g_assert_nonnull(strstr(out->str, "on 'd0':\n"));
    g_assert_null(strstr(out->str, "on 'd1'"));
    env_destroy(&e);
}

static void test_size_to_str(void)
{
    static const struct { uint64_t v; const char *s; } cases[] = {
        { 0, "0 B" }, { 999, "999 B" }, { 1000, "0.977 KiB" },
        { 1024, "1 KiB" }, { 37683, "36.8 KiB" }, { 1023 * 1024, "0.999 MiB" },
        { 1ull << 30, "1 GiB" }, { 1536ull << 20, "1.5 GiB" },
        { UINT64_MAX, "16 EiB" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *s = block_size_to_str(cases[i].v);
        g_assert_cmpstr(s, ==, cases[i].s);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/save-load-two-disks", test_save_load_two_disks);
    g_test_add_func("/snapshot/overwrite-and-names", test_overwrite_and_names);
    g_test_add_func("/snapshot/refusals", test_refusals);
    g_test_add_func("/snapshot/load-refusals", test_load_refusals);
    g_test_add_func("/snapshot/corrupt-state", test_corrupt_state);
    g_test_add_func("/snapshot/failures-clean-up", test_failures_clean_up);
    g_test_add_func("/snapshot/read-in-place", test_read_in_place);
    g_test_add_func("/snapshot/channel-sizes", test_channel_sizes);
    g_test_add_func("/snapshot/info-snapshots", test_info_snapshots);
    g_test_add_func("/snapshot/size-to-str", test_size_to_str);
    return g_test_run();
}
