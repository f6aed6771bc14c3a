/*
 * Fuzz harness for the incoming migration stream: every input goes through
 * the tern-stream inspector (stream_dump) and through the savevm loader with
 * a device set shaped like QEMU's "-M none -m 1M" VM: fake "timer" and
 * "globalstate" device states and tern's real RAM loader over 1 MiB of heap
 * memory in a block named "ram", plus incoming command callbacks that accept
 * everything, then once more through the real destination (MigIncoming,
 * without RAM postcopy: no userfaultfd in a fuzzer). The same bytes are
 * also read as return-path messages, which the source takes from an
 * untrusted destination: page requests and received bitmaps go to a source
 * RAM past its postcopy switchover. Nothing may crash, leak or hang
 * whatever the bytes; errors are expected.
 */
#include "migration/incoming.h"
#include "migration/ram.h"
#include "migration/return-path.h"
#include "migration/savevm.h"
#include "migration/stream-dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FakeTimer {
    int64_t ticks, dummy, clock;
} FakeTimer;

static const VMStateDescription vmstate_fake_timer = {
    .name = "timer",
    .version_id = 2,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_INT64(ticks, FakeTimer),
        VMSTATE_INT64(dummy, FakeTimer),
        VMSTATE_INT64_V(clock, FakeTimer, 2),
        VMSTATE_END_OF_LIST()
    },
};

typedef struct FakeGlobal {
    uint32_t size;
    uint8_t runstate[100];
} FakeGlobal;

static const VMStateDescription vmstate_fake_global = {
    .name = "globalstate",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(size, FakeGlobal),
        VMSTATE_BUFFER(runstate, FakeGlobal),
        VMSTATE_END_OF_LIST()
    },
};

static bool accept_rp(void *o, QEMUFile *f, GError **errp) { return true; }
static bool accept_ping(void *o, uint32_t v, GError **errp) { return true; }
static bool accept_advise(void *o, bool ram, uint64_t a, uint64_t b,
                          GError **errp) { return true; }
static bool accept_discard(void *o, const char *b, uint64_t s, uint64_t l,
                           GError **errp) { return true; }
static bool accept_listen(void *o, QEMUFile *f, GError **errp) { return true; }
static bool accept_run(void *o, GError **errp) { return true; }
static bool accept_bitmap(void *o, const char *b, GError **errp) { return true; }

static const SaveVMIncomingOps accept_all = {
    .open_return_path = accept_rp,
    .ping = accept_ping,
    .postcopy_advise = accept_advise,
    .postcopy_ram_discard = accept_discard,
    .postcopy_listen = accept_listen,
    .postcopy_run = accept_run,
    .recv_bitmap = accept_bitmap,
};

#define FUZZ_RAM_SIZE (1 * MiB)

/* 1 MiB of heap RAM in one region (g_free regions[0].hva). */
static GuestMemory fuzz_ram(void)
{
    GuestMemory mem = {
        .regions = { { 0, FUZZ_RAM_SIZE, g_malloc0(FUZZ_RAM_SIZE), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = FUZZ_RAM_SIZE,
    };

    return mem;
}

static void fuzz_loader(GBytes *bytes)
{
    FakeTimer timer;
    FakeGlobal global;
    GuestMemory mem = fuzz_ram();
    RamMigration *ram = ram_migration_new(&mem, "ram");
    SaveVM *sv = savevm_new("none");
    QEMUFile *f = qemu_file_new_mem_input(bytes);
    GError *err = NULL;

    savevm_register_vmstate(sv, NULL, 0, &vmstate_fake_timer, &timer);
    savevm_register_vmstate(sv, NULL, 0, &vmstate_fake_global, &global);
    ram_migration_register(ram, sv);
    savevm_set_incoming_ops(sv, &accept_all, NULL);
    if (!savevm_load(sv, f, &err)) {
        g_assert(err);
    }
    g_clear_error(&err);
    qemu_fclose(f, NULL);
    savevm_free(sv);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
}

static void run_guest(void *opaque)
{
}

static void status_changed(void *opaque)
{
}

/* The destination's own command handling (incoming.c) over the loader. */
static void fuzz_incoming(GBytes *bytes)
{
    const MigIncomingConfig cfg = { .nr_vcpus = 1 };
    const MigIncomingHooks hooks = {
        .run_guest = run_guest, .status_changed = status_changed,
    };
    FakeTimer timer;
    FakeGlobal global;
    GuestMemory mem = fuzz_ram();
    RamMigration *ram = ram_migration_new(&mem, "ram");
    SaveVM *sv = savevm_new("none");
    MigIncoming *in = mig_incoming_new(sv, ram, &mem, &cfg, &hooks);
    GError *err = NULL;

    savevm_register_vmstate(sv, NULL, 0, &vmstate_fake_timer, &timer);
    savevm_register_vmstate(sv, NULL, 0, &vmstate_fake_global, &global);
    ram_migration_register(ram, sv);
    if (!mig_incoming_run(in, qemu_file_new_mem_input(bytes), NULL, &err)) {
        g_assert(err);
    }
    g_clear_error(&err);
    mig_incoming_free(in);
    savevm_free(sv);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
}

static void fuzz_inspector(GBytes *bytes)
{
    g_autoptr(GString) out = g_string_new(NULL);
    StreamDumpOptions opts = { .verbose = true };
    GError *err = NULL;

    if (!stream_dump(bytes, &opts, out, &err)) {
        g_assert(err);
    }
    g_clear_error(&err);
}

/* What the source's return-path thread does with requests and bitmaps. */
static bool source_handles(RamMigration *ram, QEMUFile *f,
                           const MigRpMessage *m, GError **errp)
{
    switch (m->type) {
    case MIG_RP_MSG_REQ_PAGES:
    case MIG_RP_MSG_REQ_PAGES_ID:
        return ram_migration_request(ram, m->type == MIG_RP_MSG_REQ_PAGES_ID ?
                                     m->block : NULL, m->start, m->length,
                                     NULL, errp);
    case MIG_RP_MSG_RECV_BITMAP:
        return ram_migration_load_recv_bitmap(ram, f, m->block, errp);
    default:
        return true;
    }
}

static void fuzz_return_path(GBytes *bytes)
{
    GuestMemory mem = fuzz_ram();
    RamMigration *ram = ram_migration_new(&mem, "ram");
    SaveVM *sv = savevm_new("none");
    QEMUFile *out = qemu_file_new_mem_output();
    QEMUFile *f = qemu_file_new_mem_input(bytes);
    MigRpMessage msg;
    GError *err = NULL;

    ram_migration_register(ram, sv);
    ram_migration_set_postcopy(ram, true, false);
    g_assert(savevm_save_setup(sv, out, NULL));
    g_assert(ram_migration_postcopy_start(ram, out, NULL));
    while (mig_rp_read(f, &msg, &err) &&
           source_handles(ram, f, &msg, &err)) {
    }
    g_assert(err);
    g_clear_error(&err);
    qemu_fclose(f, NULL);
    savevm_save_cleanup(sv);
    qemu_fclose(out, NULL);
    savevm_free(sv);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GBytes) bytes = g_bytes_new(data, size);

    fuzz_inspector(bytes);
    fuzz_loader(bytes);
    fuzz_incoming(bytes);
    fuzz_return_path(bytes);
    return 0;
}
