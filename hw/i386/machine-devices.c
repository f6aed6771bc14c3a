/*
 * The virt machine's devices: COM1 on the -serial backend, the -device list
 * (dispatched through device_types below), and the ACPI and MP tables that
 * describe the CPUs, the IOAPIC and the platform to the guest.
 */
#include <string.h>

#include "hw/char/serial.h"
#include "hw/i386/acpi-build.h"
#include "hw/i386/machine-internal.h"
#include "hw/i386/mptable.h"
#include "hw/i386/pc-layout.h"
#include "hw/misc/debug-exit.h"
#include "sysemu/chardev.h"
#include "tern/error.h"

typedef struct Cleanup {
    GDestroyNotify fn;
    void *data;
} Cleanup;

struct MachineDevices {
    Chardev *serial_chr;
    SerialState *serial;
    GArray *cleanups;     /* of Cleanup, run last-first */
};

static bool create_debug_exit(Machine *m, KeyVal *opts, GError **errp)
{
    DebugExit *d = debug_exit_new(m->pio, opts, errp);

    if (!d) {
        return false;
    }
    machine_add_cleanup(m, (GDestroyNotify)debug_exit_free, d);
    return true;
}

/* -device drivers. Areas add their line here. */
static const DeviceType device_types[] = {
    { "isa-debug-exit", create_debug_exit },
};

void machine_add_cleanup(Machine *m, GDestroyNotify fn, void *data)
{
    Cleanup c = { fn, data };

    g_array_append_val(m->dev->cleanups, c);
}

bool machine_create_device(Machine *m, KeyVal *opts, GError **errp)
{
    const char *driver = keyval_get(opts, "driver");

    for (size_t i = 0; i < G_N_ELEMENTS(device_types); i++) {
        if (!strcmp(device_types[i].driver, driver)) {
            if (!device_types[i].create(m, opts, errp) ||
                !keyval_check_unused(opts, errp)) {
                g_prefix_error(errp, "-device %s: ", keyval_source(opts));
                return false;
            }
            return true;
        }
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                "-device %s: unknown device driver '%s'", keyval_source(opts), driver);
    return false;
}

static bool setup_serial(Machine *m, GError **errp)
{
    GPtrArray *serials = m->cfg->serials;
    const char *spec = serials->len ? g_ptr_array_index(serials, 0) : "stdio";

    if (serials->len > 1) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "-serial: tern has one serial port (COM1)");
        return false;
    }
    if (!strcmp(spec, "none")) {
        return true;
    }
    m->dev->serial_chr = chardev_new(spec, m->ctx, errp);
    if (!m->dev->serial_chr) {
        g_prefix_error(errp, "-serial %s: ", spec);
        return false;
    }
    m->dev->serial = serial_new(m->dev->serial_chr, kvm_irq_line(m->kvm, X86_COM1_IRQ));
    return serial_attach(m->dev->serial, m->pio, X86_COM1_PORT, errp);
}

static bool build_tables(Machine *m, GError **errp)
{
    AcpiConfig acpi;
    MpTableConfig mp;

    acpi_config_default(&acpi, m->nr_vcpus);
    acpi.pci_mmio32_base = VIRT_PCI_MMIO32_BASE;
    acpi.pci_mmio32_size = VIRT_PCI_MMIO32_SIZE;
    acpi.pci_mmio64_base = m->pci_mmio64_base;
    acpi.pci_mmio64_size = VIRT_PCI_MMIO64_SIZE;
    mptable_config_default(&mp, m->nr_vcpus);
    return acpi_build(&m->mem, &acpi, &m->rsdp, errp) && mptable_build(&m->mem, &mp, errp);
}

bool machine_devices_init(Machine *m, GError **errp)
{
    m->dev = g_new0(MachineDevices, 1);
    m->dev->cleanups = g_array_new(false, false, sizeof(Cleanup));
    if (!setup_serial(m, errp)) {
        return false;
    }
    for (guint i = 0; i < m->cfg->devices->len; i++) {
        if (!machine_create_device(m, g_ptr_array_index(m->cfg->devices, i), errp)) {
            return false;
        }
    }
    return build_tables(m, errp);
}

void machine_devices_free(Machine *m)
{
    MachineDevices *d = m->dev;

    if (!d) {
        return;
    }
    for (guint i = d->cleanups->len; i-- > 0;) {
        Cleanup *c = &g_array_index(d->cleanups, Cleanup, i);

        c->fn(c->data);
    }
    g_array_unref(d->cleanups);
    serial_free(d->serial);
    chardev_free(d->serial_chr);
    g_free(d);
    m->dev = NULL;
}
