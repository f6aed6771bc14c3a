/*
 * The virt machine's devices: the PCI bus and host bridge (with ECAM), the
 * legacy platform (RTC, i8042, ACPI PM1), COM1 on the -serial backend, the
 * -device list (dispatched through the MACHINE_DEVICE_TYPE table the linker
 * gathers), and the ACPI and MP tables that describe the CPUs, the IOAPIC
 * and the platform to the guest.
 */
#include <string.h>

#include "hw/acpi/pm.h"
#include "hw/block/blockdev.h"
#include "hw/block/virtio-blk-pci.h"
#include "hw/char/serial.h"
#include "hw/i386/acpi-build.h"
#include "hw/i386/machine-internal.h"
#include "hw/i386/mptable.h"
#include "hw/i386/pc-layout.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"
#include "softmmu/runstate.h"
#include "softmmu/chardev.h"
#include "tern/error.h"

typedef struct Cleanup {
    GDestroyNotify fn;
    void *data;
} Cleanup;

struct MachineDevices {
    PciBus *pci;
    PciHost *pci_host;
    Rtc *rtc;
    I8042 *kbc;
    AcpiPm *pm;
    Chardev *serial_chr;
    SerialState *serial;
    GArray *cleanups;     /* of Cleanup, run last-first */
    GPtrArray *qom;       /* of MachineQomDevice, in creation order */
    unsigned anon_devices;    /* devices without id= so far */
};

static void qom_device_free(gpointer p)
{
    MachineQomDevice *d = p;

    g_free(d->path);
    g_free(d);
}

/* The MACHINE_DEVICE_TYPE lines of every linked device file. */
extern const DeviceType *const __start_tern_device_types[] __attribute__((weak));
extern const DeviceType *const __stop_tern_device_types[] __attribute__((weak));

void machine_add_cleanup(Machine *m, GDestroyNotify fn, void *data)
{
    Cleanup c = { fn, data };

    g_array_append_val(m->dev->cleanups, c);
}

static const DeviceType *find_device_type(const char *driver)
{
    for (const DeviceType *const *t = __start_tern_device_types;
         t < __stop_tern_device_types; t++) {
        if (!strcmp((*t)->qom.name, driver)) {
            return *t;
        }
    }
    return NULL;
}

bool machine_create_device(Machine *m, KeyVal *opts, GError **errp)
{
    const char *driver = keyval_get(opts, "driver");
    const DeviceType *type = find_device_type(driver);

    if (!type) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "-device %s: unknown device driver '%s'", keyval_source(opts),
                    driver);
        return false;
    }
    /* Every device may be named; the name places it in the QOM tree. */
    machine_add_qom_device(m, keyval_get(opts, "id"), type->qom.name);
    if (!type->create(m, opts, errp) || !keyval_check_unused(opts, errp)) {
        g_prefix_error(errp, "-device %s: ", keyval_source(opts));
        return false;
    }
    return true;
}

/*
 * COM1's transmit register (THR, or DLL while DLAB is set) is write-only with
 * no side effect a later access could observe first: every other COM1
 * register is an ordinary exit, which replays the queue before it is served.
 * A guest printing without polling LSR then costs no exit per byte. Where KVM
 * cannot queue, each byte exits as before.
 */
static void queue_transmit(Machine *m)
{
    g_autoptr(GError) err = NULL;

    if (m->coalesced && !kvm_coalesced_add_pio(m->coalesced, X86_COM1_PORT, 1, &err)) {
        tern_warn("COM1 output exits per byte: %s", err->message);
    }
}

/* COM1 on chr, which it then owns. */
static bool attach_com1(Machine *m, Chardev *chr, GError **errp)
{
    m->dev->serial_chr = chr;
    m->dev->serial = serial_new(m->dev->serial_chr,
                                kvm_irq_line(m->kvm, X86_COM1_IRQ), m->devices);
    if (!serial_attach(m->dev->serial, m->pio, X86_COM1_PORT, errp)) {
        return false;
    }
    queue_transmit(m);
    return true;
}

/* The -chardev called id, opened for a serial port. */
static Chardev *open_chardev_id(Machine *m, const char *id, GError **errp)
{
    const char *arg = chardev_find_option(vm_config_list(m->cfg, "chardev"), id);

    if (!arg) {
        tern_fail(errp, TERN_ERR_NOT_FOUND, "chardev '%s' not found", id);
        return NULL;
    }
    return chardev_new_opts(arg, m->ctx, errp);
}

static bool has_isa_serial(const VmConfig *cfg)
{
    for (guint i = 0; i < cfg->devices->len; i++) {
        if (!strcmp(keyval_get(cfg->devices->pdata[i], "driver"), "isa-serial")) {
            return true;
        }
    }
    return false;
}

/* -serial SPEC (or stdio by default, unless -nodefaults or an isa-serial
 * device says otherwise); "chardev:ID" names a -chardev. */
static bool setup_serial(Machine *m, GError **errp)
{
    GPtrArray *serials = m->cfg->serials;
    const char *spec = serials->len ? g_ptr_array_index(serials, 0) : "stdio";
    Chardev *chr;

    if (serials->len > 1) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "-serial: tern has one serial port (COM1)");
        return false;
    }
    if (!strcmp(spec, "none") ||
        (!serials->len && (m->cfg->nodefaults || has_isa_serial(m->cfg)))) {
        return true;
    }
    chr = g_str_has_prefix(spec, "chardev:") ? open_chardev_id(m, spec + 8, errp)
                                            : chardev_new(spec, m->ctx, errp);
    if (!chr) {
        g_prefix_error(errp, "-serial %s: ", spec);
        return false;
    }
    return attach_com1(m, chr, errp);
}

/* -device isa-serial,chardev=ID[,index=0][,iobase=0x3f8][,irq=4]: COM1,
 * the one serial port tern's machine has. */
static bool isa_serial_create(Machine *m, KeyVal *opts, GError **errp)
{
    const char *id = keyval_get(opts, "chardev");
    uint64_t index = 0, iobase = X86_COM1_PORT, irq = X86_COM1_IRQ;
    Chardev *chr;

    if (!keyval_get_u64(opts, "index", &index, errp) ||
        !keyval_get_u64(opts, "iobase", &iobase, errp) ||
        !keyval_get_u64(opts, "irq", &irq, errp)) {
        return false;
    }
    if (index != 0 || iobase != X86_COM1_PORT || irq != X86_COM1_IRQ) {
        return tern_invalid(errp, "tern's machine has one serial port: COM1 "
                            "(index=0, iobase=0x3f8, irq=4)");
    }
    if (m->dev->serial) {
        return tern_fail(errp, TERN_ERR_BUSY, "COM1 is already used (by -serial)");
    }
    chr = id ? open_chardev_id(m, id, errp) : chardev_new("null", m->ctx, errp);
    return chr && attach_com1(m, chr, errp);
}

static const QomProp isa_serial_props[] = {
    { "index", "uint32", NULL },
    { "iobase", "uint32", NULL },
    { "irq", "uint32", NULL },
    { "chardev", "str", "ID of a chardev to use as a backend" },
    { NULL, NULL, NULL },
};

MACHINE_DEVICE_TYPE(isa_serial, "isa-serial", "isa-device", isa_serial_props,
                    isa_serial_create);

/* Guest reset and poweroff requests from the platform devices (vCPU thread). */
static void power_reset(void *opaque)
{
    vm_request_reset(SHUTDOWN_CAUSE_GUEST_RESET);
}

static void power_off(void *opaque)
{
    vm_request_shutdown(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
}

static const PowerOps machine_power_ops = {
    .reset = power_reset,
    .poweroff = power_off,
};

static IrqLine route_intx(void *opaque, unsigned slot, unsigned pin)
{
    Machine *m = opaque;

    return kvm_irq_line(m->kvm, X86_PCI_INTX_GSI(slot, pin));
}

/* System reset of the PCI bus's devices (the host bridge among them). */
static void pci_reset(void *opaque)
{
    pci_bus_reset(opaque);
}

static bool setup_platform(Machine *m, GError **errp)
{
    MachineDevices *d = m->dev;
    IrqLine rtc_irq = kvm_irq_line(m->kvm, X86_RTC_IRQ);
    IrqLine kbd_irq = kvm_irq_line(m->kvm, X86_I8042_KBD_IRQ);
    IrqLine aux_irq = kvm_irq_line(m->kvm, X86_I8042_AUX_IRQ);
    IrqLine sci = kvm_irq_line(m->kvm, X86_SCI_IRQ);

    d->pci = pci_bus_new(m->pio, m->mmio);
    pci_bus_set_intx_router(d->pci, route_intx, m);
    device_list_add_reset(m->devices, pci_reset, d->pci);
    d->pci_host = pci_host_new(d->pci, m->pio, m->mmio, VIRT_ECAM_BASE, VIRT_ECAM_BUSES,
                               &machine_power_ops, m, m->devices, errp);
    if (!d->pci_host) {
        return false;
    }
    d->rtc = rtc_new(m->pio, &rtc_irq, m->devices, errp);
    if (!d->rtc) {
        return false;
    }
    d->kbc = i8042_new(m->pio, &kbd_irq, &aux_irq, &machine_power_ops, m,
                       m->devices, errp);
    if (!d->kbc) {
        return false;
    }
    d->pm = acpi_pm_new(m->pio, X86_PM_BASE, &sci, &machine_power_ops, m,
                        m->devices, errp);
    return d->pm != NULL;
}

void machine_powerdown(Machine *m)
{
    if (!m->dev) {
        return;   /* -machine none: no power button */
    }
    acpi_pm_power_button(m->dev->pm);
}

const char *machine_add_qom_device(Machine *m, const char *id, const char *type)
{
    MachineQomDevice *d = g_new0(MachineQomDevice, 1);

    d->path = id ? g_strdup_printf("/machine/peripheral/%s", id)
                 : g_strdup_printf("/machine/peripheral-anon/device[%u]",
                                   m->dev->anon_devices++);
    d->type = type;
    g_ptr_array_add(m->dev->qom, d);
    return d->path;
}

const char *machine_device_path(Machine *m)
{
    return ((MachineQomDevice *)g_ptr_array_index(m->dev->qom, m->dev->qom->len - 1))->path;
}

const MachineQomDevice *machine_qom_device(Machine *m, size_t i)
{
    return m->dev && i < m->dev->qom->len ? m->dev->qom->pdata[i] : NULL;
}

Chardev *machine_serial_chardev(Machine *m)
{
    return m->dev ? m->dev->serial_chr : NULL;
}

PciBus *machine_pci_bus(Machine *m)
{
    return m->dev->pci;
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
    acpi.ecam_base = VIRT_ECAM_BASE;
    acpi.ecam_end_bus = VIRT_ECAM_BUSES - 1;
    mptable_config_default(&mp, m->nr_vcpus);
    return acpi_build(&m->mem, &acpi, &m->rsdp, errp) && mptable_build(&m->mem, &mp, errp);
}

bool machine_open_block(Machine *m, GError **errp)
{
    GPtrArray *specs = vm_config_list(m->cfg, "blockdev");

    m->drives = drive_set_new(m->cfg, errp);
    if (!m->drives) {
        return false;
    }
    m->blockdevs = blockdev_set_new(m->drives, vm_config_last(m->cfg, "incoming"));
    for (guint i = 0; i < specs->len; i++) {
        if (!blockdev_set_add_option(m->blockdevs, specs->pdata[i], errp)) {
            g_prefix_error(errp, "-blockdev %s: ", (char *)specs->pdata[i]);
            return false;
        }
    }
    return true;
}

void machine_close_block(Machine *m)
{
    drive_set_free(m->drives);       /* after the devices that used them */
    m->drives = NULL;
    blockdev_set_free(m->blockdevs); /* after the drives over its nodes */
    m->blockdevs = NULL;
}

Drive *machine_claim_drive(Machine *m, const char *id, const char *device,
                           GError **errp)
{
    if (!id) {
        tern_invalid(errp, "drive= is required");
        return NULL;
    }
    if (drive_set_find(m->drives, id)) {
        return drive_set_claim(m->drives, id, device, errp);
    }
    return blockdev_claim(m->blockdevs, id, device, errp);
}

bool machine_devices_init(Machine *m, GError **errp)
{
    m->dev = g_new0(MachineDevices, 1);
    m->dev->cleanups = g_array_new(false, false, sizeof(Cleanup));
    m->dev->qom = g_ptr_array_new_with_free_func(qom_device_free);
    if (!setup_platform(m, errp) || !setup_serial(m, errp) ||
        !machine_open_block(m, errp)) {
        return false;
    }
    for (guint i = 0; i < m->cfg->devices->len; i++) {
        if (!machine_create_device(m, g_ptr_array_index(m->cfg->devices, i), errp)) {
            return false;
        }
    }
    if (!virtio_blk_pci_create_shorthand(m, errp)) {
        return false;
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
    g_ptr_array_unref(d->qom);
    machine_close_block(m);
    serial_free(d->serial);
    chardev_free(d->serial_chr);
    acpi_pm_free(d->pm);
    i8042_free(d->kbc);
    rtc_free(d->rtc);
    pci_host_free(d->pci_host);
    pci_bus_free(d->pci);
    g_free(d);
    m->dev = NULL;
}
