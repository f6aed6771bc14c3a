/*
 * Registers the migratable state of the whole x86 machine with a SaveVM, in
 * the order the destination must load it: the vCPUs first ("cpu", instance
 * = vCPU index), then KVM's in-kernel chips ("i8259" 0 and 1, "ioapic",
 * "kvm-pit", "kvmclock"), then the platform devices ("pci-host",
 * "mc146818rtc", "i8042", "acpi-pm", "serial"). Devices with their own
 * descriptions elsewhere (virtio-pci and friends) register themselves.
 *
 * The machine calls, once its devices exist (vCPUs paused or not yet run):
 *   MachineVmstateParts p = { .kvm = m->kvm, .vcpus = m->vcpus,
 *       .nr_vcpus = m->nr_vcpus, .serial = d->serial, .rtc = d->rtc,
 *       .kbc = d->kbc, .pm = d->pm, .pci_host = d->pci_host };
 *   MachineVmstate *mv = machine_vmstate_register(sv, &p);
 *   ...
 *   machine_vmstate_unregister(mv, sv);   (before the devices are freed)
 * Any device pointer may be NULL (e.g. -serial none): it is left out.
 */
#ifndef HW_I386_MACHINE_VMSTATE_H
#define HW_I386_MACHINE_VMSTATE_H

#include "hw/acpi/pm.h"
#include "hw/char/serial.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"
#include "migration/savevm.h"
#include "sysemu/kvm.h"
#include "sysemu/vcpu.h"

typedef struct MachineVmstateParts {
    KvmState *kvm;                /* NULL: no vCPU or in-kernel chip state */
    Vcpu **vcpus;
    unsigned nr_vcpus;
    SerialState *serial;
    Rtc *rtc;
    I8042 *kbc;
    AcpiPm *pm;
    PciHost *pci_host;
} MachineVmstateParts;

typedef struct MachineVmstate MachineVmstate;

MachineVmstate *machine_vmstate_register(SaveVM *sv,
                                         const MachineVmstateParts *parts);
/* Unregisters everything registered above and frees it; NULL is ok. */
void machine_vmstate_unregister(MachineVmstate *mv, SaveVM *sv);

#endif
