/*
 * Adding a device with state takes one file: this one. The "tern-test-ledger"
 * device below is a -device driver (MACHINE_DEVICE_TYPE) that registers its
 * reset hook and its VMState description where it is created, and no product
 * file names it. Two real machines (KVM; skipped without /dev/kvm) are built
 * from the same command line; the device's state is changed on the first,
 * the first machine's migration SaveVM writes the whole stream (RAM, vCPUs,
 * chips, platform, this device), the second loads it, and the device reads
 * back the same, its section last on the wire after the machine's own in
 * their documented order. A guest reset runs its hook; a hostile value is
 * refused with its message.
 */
#include <string.h>

#include "hw/i386/machine.h"
#include "migration/migration.h"
#include "migration/vmstate.h"
#include "softmmu/cmdline.h"
#include "test-kvm-util.h"
#include "test-savevm-util.h"

/* ---- the throwaway device ---- */

#define LEDGER_LEN 8

typedef struct Ledger {
    uint32_t power_on;          /* value=, what a reset restores */
    uint32_t count;
    uint8_t entries[LEDGER_LEN];
} Ledger;

static bool ledger_post_load(void *opaque, int version_id, GError **errp)
{
    Ledger *l = opaque;

    if (l->count == 0xdeadbeef) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "tern-test-ledger: count 0x%x is impossible", l->count);
        return false;
    }
    return true;
}

static const VMStateDescription vmstate_ledger = {
    .name = "tern-test-ledger",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = ledger_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(count, Ledger),
        VMSTATE_BUFFER(entries, Ledger),
        VMSTATE_END_OF_LIST()
    },
};

static void ledger_reset(void *opaque)
{
    Ledger *l = opaque;

    l->count = l->power_on;
    memset(l->entries, 0, sizeof(l->entries));
}

static bool ledger_create(Machine *m, KeyVal *opts, GError **errp)
{
    Ledger *l = g_new0(Ledger, 1);
    uint64_t value = 0;

    if (!keyval_get_u64(opts, "value", &value, errp)) {
        g_free(l);
        return false;
    }
    l->power_on = l->count = (uint32_t)value;
    device_list_add_reset(m->devices, ledger_reset, l);
    device_list_add_vmstate(m->devices, "tern-test-ledger", 0,
                            &vmstate_ledger, l);
    machine_add_cleanup(m, g_free, l);
    return true;
}

static const QomProp ledger_props[] = { { "value", "uint32", NULL }, { NULL, NULL, NULL } };
MACHINE_DEVICE_TYPE(ledger, "tern-test-ledger", "isa-device", ledger_props,
                    ledger_create);

/* ---- the test ---- */

typedef struct Vm {
    VmConfig *cfg;
    Machine *m;
    MigrationState *ms;
    Ledger *ledger;
} Vm;

static void vm_new(Vm *vm)
{
    static const char *const args[] = {
        "tern", "-m", "8M", "-smp", "2", "-serial", "none",
        "-incoming", "defer", "-device", "tern-test-ledger,value=7",
    };
    g_autoptr(GError) err = NULL;
    const DeviceVmstate *e;

    vm->cfg = vm_config_new();
    g_assert_true(cmdline_parse(vm->cfg, G_N_ELEMENTS(args), (char **)args,
                                &err));
    g_assert_no_error(err);
    vm->m = machine_new(vm->cfg, NULL, &err);
    g_assert_no_error(err);
    e = device_list_find(vm->m->devices, "tern-test-ledger", 0);
    g_assert_nonnull(e);
    vm->ledger = e->opaque;
    g_assert_cmpuint(vm->ledger->count, ==, 7);
    vm->ms = migration_state_new(vm->m);
}

static void vm_free(Vm *vm)
{
    migration_state_free(vm->ms);
    machine_free(vm->m);
    vm_config_free(vm->cfg);
}

/* Where idstr's first section starts in the stream: its counted name. */
static size_t section_at(GBytes *stream, const char *idstr)
{
    size_t len, n = strlen(idstr);
    const uint8_t *p = g_bytes_get_data(stream, &len);
    g_autofree char *needle = g_strdup_printf("%c%s", (char)n, idstr);
    const uint8_t *hit = memmem(p, len, needle, n + 1);

    g_assert_nonnull(hit);
    return (size_t)(hit - p);
}

static void test_one_file_device_migrates(void)
{
    static const char *const order[] = {
        "cpu", "i8259", "ioapic", "kvm-pit", "kvmclock", "pci-host",
        "mc146818rtc", "i8042", "acpi-pm", "tern-test-ledger",
    };
    g_autoptr(GBytes) stream = NULL;
    g_autoptr(GError) err = NULL;
    Vm a, b;

    if (!test_have_kvm()) {
        return;
    }
    vm_new(&a);
    vm_new(&b);
    a.ledger->count = 12345;
    memcpy(a.ledger->entries, "ledger!", LEDGER_LEN);

    stream = test_savevm_save(migration_savevm(a.ms));
    for (size_t i = 1; i < G_N_ELEMENTS(order); i++) {
        g_assert_cmpuint(section_at(stream, order[i - 1]), <,
                         section_at(stream, order[i]));
    }
    err = test_savevm_load(migration_savevm(b.ms), stream);
    g_assert_no_error(err);
    g_assert_cmpuint(b.ledger->count, ==, 12345);
    g_assert_cmpmem(b.ledger->entries, LEDGER_LEN, "ledger!", LEDGER_LEN);

    /* A guest reset on the destination runs the device's hook. */
    g_assert_true(machine_reset(b.m, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(b.ledger->count, ==, 7);
    g_assert_cmpuint(b.ledger->entries[0], ==, 0);

    /* What the device refuses, the whole load refuses, with its words. */
    a.ledger->count = 0xdeadbeef;
    g_bytes_unref(stream);
    stream = test_savevm_save(migration_savevm(a.ms));
    err = test_savevm_load(migration_savevm(b.ms), stream);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "count 0xdeadbeef is impossible"));
    vm_free(&a);
    vm_free(&b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/devstate-machine/one-file-device-migrates",
                    test_one_file_device_migrates);
    return g_test_run();
}
