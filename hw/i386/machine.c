/*
 * The "virt" machine (hw/i386/machine.h): builds the VM in dependency order -
 * KVM, RAM and its e820 map, irqchip, vCPUs, devices, firmware tables, kernel -
 * and tears it down in reverse. Boot loading and device wiring live in
 * machine-boot.c and machine-devices.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "hw/i386/machine.h"
#include "hw/i386/machine-internal.h"
#include "hw/i386/pc-layout.h"
#include "accel/kvm/kvm-irqchip-state.h"
#include "softmmu/objects.h"
#include "softmmu/runstate.h"
#include "target/i386/cpu-state.h"
#include "target/i386/cpu-vmstate.h"
#include "target/i386/cpuid.h"
#include "tern/error.h"

/* What -machine accepts beyond the type (softmmu/options.c reads it). */
static const QomProp machine_props[] = {
    { "usb", "bool", "Set on/off to enable/disable usb" },
    { "dump-guest-core", "bool", "Include guest memory in a core dump" },
    { "memory-backend", "link<memory-backend>",
      "Set RAM backendValid value is ID of hostmem based backend" },
    { NULL, NULL, NULL },
};
static const QomType type_virt_machine = {
    .name = "virt-machine", .parent = "machine", .props = machine_props,
};
static const QomType type_none_machine = {
    .name = "none-machine", .parent = "machine", .props = machine_props,
};
QOM_TYPE(type_virt_machine);
QOM_TYPE(type_none_machine);

const MachineTypeInfo machine_types[] = {
    { .name = "virt", .is_default = true, .cpu_max = VIRT_MAX_CPUS,
      .default_cpu_type = "host-x86_64-cpu", .default_ram_id = "pc.ram" },
    { .name = "none", .cpu_max = 1 },
    { .name = NULL },
};

/* KVM's identity map page and TSS (accel/kvm/kvm.c) live here. */
#define KVM_RESERVED_ADDR 0xfeffc000ULL
#define KVM_RESERVED_SIZE 0x4000ULL

static bool build_e820(Machine *m, GError **errp)
{
    GuestMemory *mem = &m->mem;
    uint64_t low_end = mem->regions[0].size;

    if (!guest_mem_add_e820(mem, 0, X86_EBDA_START, E820_RAM, errp) ||
        !guest_mem_add_e820(mem, X86_EBDA_START, X86_BIOS_AREA_END - X86_EBDA_START,
                            E820_RESERVED, errp)) {
        return false;
    }
    if (low_end > X86_BIOS_AREA_END &&
        !guest_mem_add_e820(mem, X86_BIOS_AREA_END, low_end - X86_BIOS_AREA_END,
                            E820_RAM, errp)) {
        return false;
    }
    if (!guest_mem_add_e820(mem, VIRT_ECAM_BASE, VIRT_ECAM_BUSES * MiB,
                            E820_RESERVED, errp) ||
        !guest_mem_add_e820(mem, KVM_RESERVED_ADDR, KVM_RESERVED_SIZE,
                            E820_RESERVED, errp)) {
        return false;
    }
    if (mem->nr_regions > 1 &&
        !guest_mem_add_e820(mem, mem->regions[1].gpa, mem->regions[1].size,
                            E820_RAM, errp)) {
        return false;
    }
    return true;
}

/* -machine dump-guest-core=off: a crash dump of tern leaves guest RAM out. */
static bool exclude_from_core_dumps(GuestMemory *mem, GError **errp)
{
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        if (madvise(mem->regions[i].hva, mem->regions[i].size, MADV_DONTDUMP) < 0) {
            tern_set_error_errno(errp, errno, "dump-guest-core=off");
            return false;
        }
    }
    return true;
}

static bool setup_ram(Machine *m, GError **errp)
{
    VmConfig *cfg = m->cfg;
    GuestMemory *mem = &m->mem;
    uint64_t end;

    if (!objects_resolve_ram(cfg, errp)) {
        return false;
    }
    if (cfg->ram_size < X86_BIOS_AREA_END * 2) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "-m %" PRIu64 "K is too small: at least 2 MiB", (uint64_t)(cfg->ram_size / KiB));
        return false;
    }
    if (!guest_mem_alloc_file(mem, cfg->ram_size, VIRT_LOW_RAM_END, cfg->mem_path,
                              errp)) {
        return false;
    }
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const GuestRegion *r = &mem->regions[i];

        if (!kvm_set_slot(m->kvm, i, r->gpa, r->size, r->hva, 0, errp)) {
            return false;
        }
    }
    if (!cfg->dump_guest_core && !exclude_from_core_dumps(mem, errp)) {
        return false;
    }
    end = mem->regions[mem->nr_regions - 1].gpa + mem->regions[mem->nr_regions - 1].size;
    m->pci_mmio64_base = ALIGN_UP(MAX(end, 4 * GiB), GiB);
    return build_e820(m, errp);
}

static void vcpu_event(void *opaque, unsigned index, VcpuEvent ev)
{
    switch (ev) {
    case VCPU_EVENT_SHUTDOWN:
        vm_request_shutdown(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
        break;
    case VCPU_EVENT_RESET:
        vm_request_reset(SHUTDOWN_CAUSE_GUEST_RESET);
        break;
    case VCPU_EVENT_INTERNAL_ERROR:
        vm_request_stop(RUN_STATE_INTERNAL_ERROR);
        break;
    }
}

static bool check_smp(Machine *m, GError **errp)
{
    unsigned n = m->cfg->smp;

    if (n > m->kvm->max_vcpus || n > VIRT_MAX_CPUS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "-smp %u exceeds the limit of %u vCPUs (KVM allows %u, the "
                    "machine's xAPIC IDs and tables %u)", n,
                    MIN(m->kvm->max_vcpus, VIRT_MAX_CPUS), m->kvm->max_vcpus,
                    VIRT_MAX_CPUS);
        return false;
    }
    return true;
}

static bool setup_vcpus(Machine *m, GError **errp)
{
    const VcpuHooks hooks = { .pio = m->pio, .mmio = m->mmio,
                              .coalesced = m->coalesced, .event = vcpu_event,
                              .opaque = m };
    unsigned n = m->cfg->smp;

    m->vcpus = g_new0(Vcpu *, n);
    m->cpus = g_new0(X86Cpu *, n);
    m->power_on = g_new0(X86CpuState, n);
    for (unsigned i = 0; i < n; i++) {
        X86Topology topo = { .nr_cpus = m->cfg->topo.cores, .apic_id = i };
        g_autofree struct kvm_cpuid2 *cpuid =
            x86_cpuid_build(m->kvm->supported_cpuid, &topo);

        x86_cpu_state_init(&m->power_on[i], m->kvm);
        m->vcpus[i] = vcpu_create(m->kvm, i, &hooks, errp);
        if (!m->vcpus[i]) {
            return false;
        }
        m->nr_vcpus = i + 1;
        if (m->cfg->debug_threads) {   /* -name debug-threads=on: QEMU's names */
            g_autofree char *name = g_strdup_printf("CPU %u/KVM", i);

            vcpu_set_thread_name(m->vcpus[i], name);
        }
        m->cpus[i] = x86_cpu_new(m->kvm, m->vcpus[i], m->devices);
        if ((i == 0 && m->coalesced &&
             !kvm_coalesced_attach(m->coalesced, vcpu_fd(m->vcpus[0]), errp)) ||
            !x86_cpu_set_cpuid(vcpu_fd(m->vcpus[i]), cpuid, errp) ||
            !x86_cpu_state_get(m->kvm, vcpu_fd(m->vcpus[i]), &m->power_on[i], errp)) {
            return false;
        }
    }
    return true;
}

static bool save_power_on_irqchip(Machine *m, GError **errp)
{
    m->chips = kvm_chips_new(m->kvm, m->devices);
    for (unsigned i = 0; i < 3; i++) {
        m->power_on_chips[i].chip_id = i;   /* PIC master, PIC slave, IOAPIC */
        if (!kvm_get_irqchip(m->kvm, &m->power_on_chips[i], errp)) {
            return false;
        }
    }
    return kvm_get_pit(m->kvm, &m->power_on_pit, errp);
}

/* -machine none: KVM is opened (query-kvm says so), but there are no CPUs,
 * RAM or devices; block nodes and drives may still be given. */
static bool machine_none_init(Machine *m, GError **errp)
{
    return machine_open_block(m, errp);
}

Machine *machine_new(VmConfig *cfg, GMainContext *ctx, GError **errp)
{
    Machine *m = g_new0(Machine, 1);

    m->cfg = cfg;
    m->ctx = ctx;
    m->mem.fd = -1;
    m->devices = device_list_new();
    m->pio = iobus_new("port I/O");
    m->mmio = iobus_new("MMIO");
    m->kvm = kvm_init(errp);
    if (m->kvm && !strcmp(cfg->machine, "none")) {
        if (!machine_none_init(m, errp)) {
            machine_free(m);
            return NULL;
        }
        return m;
    }
    if (m->kvm) {
        m->coalesced = kvm_coalesced_new(m->kvm, m->pio, m->mmio, ctx);
    }
    if (!m->kvm || !check_smp(m, errp) || !setup_ram(m, errp) || !kvm_create_irqchip(m->kvm, errp) ||
        !save_power_on_irqchip(m, errp) || !setup_vcpus(m, errp) ||
        !machine_devices_init(m, errp) || !machine_boot(m, errp)) {
        machine_free(m);
        return NULL;
    }
    return m;
}

void machine_free(Machine *m)
{
    if (!m) {
        return;
    }
    /* vCPUs first: nothing may dispatch into devices being freed. */
    for (unsigned i = 0; i < m->nr_vcpus; i++) {
        x86_cpu_free(m->cpus[i]);
        vcpu_destroy(m->vcpus[i]);
    }
    kvm_coalesced_free(m->coalesced);   /* its last writes reach the devices */
    machine_devices_free(m);
    machine_close_block(m);   /* -machine none: no devices closed them */
    if (m->power_on) {
        for (unsigned i = 0; i < m->cfg->smp; i++) {
            x86_cpu_state_clear(&m->power_on[i]);
        }
    }
    g_free(m->power_on);
    g_free(m->cpus);
    g_free(m->vcpus);
    kvm_chips_free(m->chips);
    device_list_free(m->devices);
    kvm_destroy(m->kvm);
    guest_mem_free(&m->mem);
    iobus_free(m->pio);
    iobus_free(m->mmio);
    g_free(m);
}

void machine_pause(Machine *m)
{
    vcpus_pause_all(m->vcpus, m->nr_vcpus);
    kvm_coalesced_flush(m->coalesced);   /* device state is complete from here */
}

void machine_resume(Machine *m)
{
    vcpus_resume_all(m->vcpus, m->nr_vcpus);
}

bool machine_reset(Machine *m, GError **errp)
{
    if (!m->nr_vcpus) {
        return true;   /* -machine none */
    }
    for (unsigned i = 0; i < 3; i++) {
        if (!kvm_set_irqchip(m->kvm, &m->power_on_chips[i], errp)) {
            return false;
        }
    }
    if (!kvm_set_pit(m->kvm, &m->power_on_pit, errp)) {
        return false;
    }
    for (unsigned i = 0; i < m->nr_vcpus; i++) {
        if (!x86_cpu_state_put(m->kvm, vcpu_fd(m->vcpus[i]), &m->power_on[i], errp)) {
            return false;
        }
    }
    device_list_reset(m->devices);
    return machine_boot(m, errp);
}
