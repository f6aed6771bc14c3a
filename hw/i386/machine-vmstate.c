/*
 * The machine's list of migratable state (hw/i386/machine-vmstate.h): one
 * place that knows every device's idstr, instance and description, and owns
 * the adapter structs (vCPU, in-kernel chips, UART) that stand between a
 * description and the object it describes.
 */
#include "hw/char/serial-vmstate.h"
#include "hw/i386/machine-vmstate.h"
#include "sysemu/kvm-irqchip-state.h"
#include "target/i386/cpu-vmstate.h"

struct MachineVmstate {
    unsigned nr_cpus;
    X86CpuVmstate *cpus;
    KvmIrqchipVmstate *chips;
    SerialVmstate serial;
    /* Every opaque registered, for savevm_unregister. */
    GPtrArray *opaques;
};

static void add(MachineVmstate *mv, SaveVM *sv, const char *idstr,
                uint32_t instance, const VMStateDescription *vmsd,
                void *opaque)
{
    savevm_register_vmstate(sv, idstr, instance, vmsd, opaque);
    g_ptr_array_add(mv->opaques, opaque);
}

static void register_kvm(MachineVmstate *mv, SaveVM *sv,
                         const MachineVmstateParts *p)
{
    mv->nr_cpus = p->nr_vcpus;
    mv->cpus = g_new0(X86CpuVmstate, p->nr_vcpus);
    for (unsigned i = 0; i < p->nr_vcpus; i++) {
        x86_cpu_vmstate_init(&mv->cpus[i], p->kvm, p->vcpus[i]);
        add(mv, sv, "cpu", vcpu_index(p->vcpus[i]), &vmstate_x86_cpu,
            &mv->cpus[i]);
    }
    mv->chips = g_new0(KvmIrqchipVmstate, 1);
    kvm_irqchip_vmstate_init(mv->chips, p->kvm);
    add(mv, sv, "i8259", 0, &vmstate_kvm_pic, &mv->chips->pic[0]);
    add(mv, sv, "i8259", 1, &vmstate_kvm_pic, &mv->chips->pic[1]);
    add(mv, sv, "ioapic", 0, &vmstate_kvm_ioapic, &mv->chips->ioapic);
    add(mv, sv, "kvm-pit", 0, &vmstate_kvm_pit, &mv->chips->pit);
    add(mv, sv, "kvmclock", 0, &vmstate_kvmclock, &mv->chips->clock);
}

MachineVmstate *machine_vmstate_register(SaveVM *sv,
                                         const MachineVmstateParts *p)
{
    MachineVmstate *mv = g_new0(MachineVmstate, 1);

    mv->opaques = g_ptr_array_new();
    if (p->kvm) {
        register_kvm(mv, sv, p);
    }
    if (p->pci_host) {
        add(mv, sv, "pci-host", 0, &vmstate_pci_host, p->pci_host);
    }
    if (p->rtc) {
        add(mv, sv, "mc146818rtc", 0, &vmstate_mc146818rtc, p->rtc);
    }
    if (p->kbc) {
        add(mv, sv, "i8042", 0, &vmstate_i8042, p->kbc);
    }
    if (p->pm) {
        add(mv, sv, "acpi-pm", 0, &vmstate_acpi_pm, p->pm);
    }
    if (p->serial) {
        mv->serial.dev = p->serial;
        add(mv, sv, "serial", 0, &vmstate_serial, &mv->serial);
    }
    return mv;
}

void machine_vmstate_unregister(MachineVmstate *mv, SaveVM *sv)
{
    if (!mv) {
        return;
    }
    for (guint i = 0; i < mv->opaques->len; i++) {
        savevm_unregister(sv, g_ptr_array_index(mv->opaques, i));
    }
    g_ptr_array_unref(mv->opaques);
    for (unsigned i = 0; i < mv->nr_cpus; i++) {
        x86_cpu_vmstate_clear(&mv->cpus[i]);
    }
    g_free(mv->cpus);
    g_free(mv->chips);
    g_free(mv);
}
