/*
 * tern's x86 machine "virt": guest RAM split around a PCI hole, the in-kernel
 * irqchip and PIT, vCPUs with CPUID topology, COM1, the platform devices
 * (PCI host bridge, RTC, i8042, ACPI PM) and firmware tables, -device
 * instances, and the kernel (PVH ELF or bzImage) loaded for the BSP.
 *
 * Memory map (guest-physical):
 *   0 .. low_end            RAM (low_end = min(RAM, 3 GiB)); 0x9fc00..1 MiB
 *                           reserved for the EBDA, ACPI and MP tables
 *   0xc0000000..0xe0000000  32-bit PCI MMIO window
 *   0xe0000000..0xf0000000  PCI ECAM (256 buses), reserved in e820
 *   0xfec00000 IOAPIC, 0xfee00000 LAPIC, 0xfeffc000 KVM's TSS/identity map
 *   4 GiB ..                the rest of RAM, then the 64-bit PCI window
 *
 * Lifecycle: machine_new() builds everything with the vCPUs paused (the main
 * loop starts them through vm_start()); machine_reset() puts the vCPUs and the
 * irqchip back to their power-on state, runs the devices' reset hooks and
 * reloads the kernel.
 *
 * Devices add their reset hooks and migratable state to m->devices where
 * they are created (hw/core/device-list.h); migration and snapshots register
 * that list with their SaveVM.
 */
#ifndef HW_I386_MACHINE_H
#define HW_I386_MACHINE_H

#include "accel/kvm/kvm-vcpu.h"
#include "accel/kvm/kvm.h"
#include "hw/core/device-list.h"
#include "hw/core/guest-memory.h"
#include "hw/core/qom.h"
#include "hw/core/iobus.h"
#include "softmmu/vm-config.h"
#include "tern/common.h"

#define VIRT_LOW_RAM_END     0xc0000000ULL
#define VIRT_PCI_MMIO32_BASE 0xc0000000ULL
#define VIRT_PCI_MMIO32_SIZE 0x20000000ULL
#define VIRT_ECAM_BASE       0xe0000000ULL
#define VIRT_ECAM_BUSES      256
#define VIRT_PCI_MMIO64_SIZE (32 * GiB)
#define VIRT_MAX_CPUS        255   /* xAPIC IDs, MADT/MP table entries */
#define VIRT_PCI_BUS         "pcie.0"  /* the one PCI bus: a PCIe root with ECAM, as q35's */

/* The machine types, as query-machines describes them (the last has no
 * name). Each also has a QOM type "<name>-machine". */
typedef struct MachineTypeInfo {
    const char *name;
    bool is_default;
    unsigned cpu_max;
    const char *default_cpu_type;   /* or NULL */
    const char *default_ram_id;     /* or NULL: no RAM of its own */
} MachineTypeInfo;
extern const MachineTypeInfo machine_types[];

typedef struct MachineDevices MachineDevices;
typedef struct X86CpuState X86CpuState;
typedef struct X86Cpu X86Cpu;
typedef struct KvmChips KvmChips;
typedef struct DriveSet DriveSet;
typedef struct BlockdevSet BlockdevSet;
typedef struct Drive Drive;

typedef struct Machine {
    VmConfig *cfg;
    GMainContext *ctx;
    KvmState *kvm;
    KvmCoalesced *coalesced;      /* NULL where KVM cannot queue writes */
    GuestMemory mem;
    IoBus *pio;
    IoBus *mmio;
    unsigned nr_vcpus;
    Vcpu **vcpus;
    X86Cpu **cpus;                /* per vCPU: its migratable state */
    X86CpuState *power_on;        /* per vCPU, captured before boot setup */
    KvmChips *chips;              /* the in-kernel chips' migratable state */
    struct kvm_irqchip power_on_chips[3];   /* PIC master, slave, IOAPIC */
    struct kvm_pit_state2 power_on_pit;
    DeviceList *devices;          /* reset hooks and migratable state */
    MachineDevices *dev;          /* serial, platform devices, -device list */
    uint64_t rsdp;                /* 0 without ACPI */
    uint64_t pci_mmio64_base;
    DriveSet *drives;             /* -drive set (hw/block/drive.h) */
    BlockdevSet *blockdevs;       /* -blockdev nodes (hw/block/blockdev.h) */
} Machine;

Machine *machine_new(VmConfig *cfg, GMainContext *ctx, GError **errp);
void machine_free(Machine *m);
void machine_pause(Machine *m);
void machine_resume(Machine *m);
/* With the vCPUs paused: power-on state again, kernel reloaded. */
bool machine_reset(Machine *m, GError **errp);
/* Presses the ACPI power button (QMP system_powerdown); any thread. */
void machine_powerdown(Machine *m);

/*
 * -device drivers: the device's own file adds its driver with one line,
 *   MACHINE_DEVICE_TYPE(my_dev, "driver-name", "pci-device", my_props,
 *                       my_dev_create);
 * and no other file changes (the linker gathers the lines into one table, as
 * kvmtool's dev_init does); the same line declares the driver's QOM type
 * (hw/core/qom.h) with its parent family and the properties it accepts,
 * which device-list-properties reports. The create function builds the
 * device on m, adds its reset hook and state to m->devices and a cleanup
 * with machine_add_cleanup, and must read every option it accepts from opts
 * (the caller then rejects leftovers; "id" is every device's).
 */
typedef bool (*DeviceCreate)(Machine *m, KeyVal *opts, GError **errp);
typedef struct DeviceType {
    QomType qom;               /* qom.name is the -device driver name */
    DeviceCreate create;
} DeviceType;
#define MACHINE_DEVICE_TYPE(cname, driver_, parent_, props_, create_)         \
    static const DeviceType device_type_##cname = {                           \
        { .name = (driver_), .parent = (parent_), .props = (props_) },        \
        (create_) };                                                          \
    static const DeviceType *const device_type_ptr_##cname                    \
        __attribute__((used, section("tern_device_types"))) = &device_type_##cname; \
    static const QomType *const qom_type_ptr_##cname                          \
        __attribute__((used, section("tern_qom_types"))) = &device_type_##cname.qom
bool machine_create_device(Machine *m, KeyVal *opts, GError **errp);
/* The drive a device's drive= names: a -drive id, else a -blockdev node
 * (which then gets a drive); marked as used by 'device'. */
Drive *machine_claim_drive(Machine *m, const char *id, const char *device,
                           GError **errp);
/* Opens the drive set and the -blockdev nodes (also for -machine none). */
bool machine_open_block(Machine *m, GError **errp);
/* The machine's devices as QEMU's QOM tree shows them (qom-list): each at
 * /machine/peripheral/ID, or /machine/peripheral-anon/device[N] without an
 * id. machine_create_device adds each -device before its create function
 * runs, which can read its path with machine_device_path; devices made
 * otherwise add themselves. */
typedef struct MachineQomDevice {
    char *path;
    const char *type;          /* the -device driver */
} MachineQomDevice;
const char *machine_add_qom_device(Machine *m, const char *id, const char *type);
const char *machine_device_path(Machine *m);
/* The i-th device, NULL past the last. */
const MachineQomDevice *machine_qom_device(Machine *m, size_t i);
/* COM1's backend, or NULL (no serial port). */
typedef struct Chardev Chardev;
Chardev *machine_serial_chardev(Machine *m);
/* The PCI bus, for -device drivers of PCI devices. */
typedef struct PciBus PciBus;
PciBus *machine_pci_bus(Machine *m);
/* Devices created through the table register a cleanup here (run last
 * first, before the drives close). */
void machine_add_cleanup(Machine *m, GDestroyNotify fn, void *data);

#endif
