/*
 * The whole machine's device state on real KVM (skipped without /dev/kvm):
 * a VM with the in-kernel irqchip, the PIT, two vCPUs and the platform
 * devices gets distinctive register, MSR, LAPIC, PIC, IOAPIC, PIT, kvmclock
 * and device state; the devices' list, registered with a SaveVM, and
 * savevm_save_all write it to a memory stream; the VM is destroyed, a fresh
 * one loads the stream, and everything reads back the same and the restored
 * BSP runs on. Also: a
 * guest that really ran is stopped mid-loop and its copy goes on counting
 * from the next number; a running vCPU is refused; hostile vCPU/PIT/PIC
 * sections fail with clear errors before reaching KVM; the PIC, IOAPIC and
 * kvmclock bytes QEMU 7.2 writes load.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/kvm/kvm-irqchip-state.h"
#include "hw/acpi/pm.h"
#include "hw/char/serial.h"
#include "hw/core/guest-memory.h"
#include "hw/input/i8042.h"
#include "hw/pci/pci-host.h"
#include "hw/rtc/mc146818rtc.h"
#include "migration/savevm.h"
#include "target/i386/cpu-vmstate.h"
#include "target/i386/cpuid.h"
#include "tern/error.h"
#include "test-kvm-util.h"
#include "test-savevm-util.h"

#define NR_CPUS   2
#define CODE_ADDR 0x1000
#define PM_BASE   0x600
/* u8 0x05, u8 11, "cpu/tsc_khz", be32 version, be32 kHz */
#define TSC_SUB_LEN (1 + 1 + 11 + 4 + 4)

/* out dx, al; jmp $ — the restored vCPU reports its restored AL. */
static const uint8_t spin[] = { 0xee, 0xeb, 0xfe };
#define REPORT_PORT 0x81

typedef struct Vm {
    KvmState *kvm;
    GuestMemory mem;
    IoBus *pio, *mmio;
    Vcpu *vcpus[NR_CPUS];
    DeviceList *devices;
    X86Cpu *cpus[NR_CPUS];
    KvmChips *chips;
    SerialState *serial;
    Rtc *rtc;
    I8042 *kbc;
    AcpiPm *pm;
    PciBus *bus;
    PciHost *host;
    SaveVM *sv;
} Vm;

static void no_event(void *opaque, unsigned index, VcpuEvent ev)
{
}

static void nop_power(void *opaque) { }
static const PowerOps no_power = { .reset = nop_power, .poweroff = nop_power };

static void vm_new(Vm *vm)
{
    g_autoptr(GError) err = NULL;
    VcpuHooks hooks;
    IrqLine irq8, irq1, irq12, sci, irq4;

    memset(vm, 0, sizeof(*vm));
    vm->kvm = kvm_init(&err);
    g_assert_no_error(err);
    g_assert_true(guest_mem_alloc(&vm->mem, 2 * MiB, 2 * MiB, &err));
    g_assert_true(kvm_set_slot(vm->kvm, 0, 0, 2 * MiB, vm->mem.regions[0].hva,
                               0, &err));
    g_assert_true(kvm_create_irqchip(vm->kvm, &err));
    vm->devices = device_list_new();
    vm->chips = kvm_chips_new(vm->kvm, vm->devices);
    g_assert_true(guest_mem_write(&vm->mem, CODE_ADDR, spin, sizeof(spin), &err));
    vm->pio = iobus_new("pio");
    vm->mmio = iobus_new("mmio");
    hooks = (VcpuHooks){ .pio = vm->pio, .mmio = vm->mmio, .event = no_event };
    for (unsigned i = 0; i < NR_CPUS; i++) {
        X86Topology topo = { .nr_cpus = NR_CPUS, .apic_id = i };
        g_autofree struct kvm_cpuid2 *cpuid = NULL;

        vm->vcpus[i] = vcpu_create(vm->kvm, i, &hooks, &err);
        g_assert_no_error(err);
        cpuid = x86_cpuid_build(vm->kvm->supported_cpuid, &topo);
        g_assert_true(x86_cpu_set_cpuid(vcpu_fd(vm->vcpus[i]), cpuid, &err));
        vm->cpus[i] = x86_cpu_new(vm->kvm, vm->vcpus[i], vm->devices);
    }
    irq4 = kvm_irq_line(vm->kvm, 4);
    irq8 = kvm_irq_line(vm->kvm, 8);
    irq1 = kvm_irq_line(vm->kvm, 1);
    irq12 = kvm_irq_line(vm->kvm, 12);
    sci = kvm_irq_line(vm->kvm, 9);
    /* The machine's order: the platform, then COM1. */
    vm->bus = pci_bus_new(vm->pio, vm->mmio);
    vm->host = pci_host_new(vm->bus, vm->pio, vm->mmio, 0, 0, &no_power, NULL,
                            vm->devices, &err);
    vm->rtc = rtc_new(vm->pio, &irq8, vm->devices, &err);
    vm->kbc = i8042_new(vm->pio, &irq1, &irq12, &no_power, NULL, vm->devices,
                        &err);
    vm->pm = acpi_pm_new(vm->pio, PM_BASE, &sci, &no_power, NULL, vm->devices,
                         &err);
    vm->serial = serial_new(NULL, irq4, vm->devices);
    g_assert_true(serial_attach(vm->serial, vm->pio, 0x3f8, &err));
    g_assert_no_error(err);
    vm->sv = savevm_new("tern-devstate-test");
    device_list_register_savevm(vm->devices, vm->sv);
}

static void vm_free(Vm *vm)
{
    savevm_free(vm->sv);
    for (unsigned i = 0; i < NR_CPUS; i++) {
        x86_cpu_free(vm->cpus[i]);
        vcpu_destroy(vm->vcpus[i]);
    }
    kvm_chips_free(vm->chips);
    device_list_free(vm->devices);
    serial_free(vm->serial);
    rtc_free(vm->rtc);
    i8042_free(vm->kbc);
    acpi_pm_free(vm->pm);
    pci_host_free(vm->host);
    pci_bus_free(vm->bus);
    kvm_destroy(vm->kvm);
    guest_mem_free(&vm->mem);
    iobus_free(vm->pio);
    iobus_free(vm->mmio);
}

/* The description the VM's device registered as idstr/instance. */
static const VMStateDescription *registered(Vm *vm, const char *idstr,
                                            uint32_t instance, void *opaque)
{
    const DeviceVmstate *e = device_list_find(vm->devices, idstr, instance);

    g_assert_nonnull(e);
    g_assert_true(e->opaque == opaque);
    return e->vmsd;
}

static void xioctl(int fd, unsigned long req, void *arg)
{
    if (ioctl(fd, req, arg) < 0) {
        g_error("ioctl 0x%lx: %s", req, g_strerror(errno));
    }
}

static void set_msr(int fd, uint32_t index, uint64_t value)
{
    struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = {
        .h.nmsrs = 1, .e = { .index = index, .data = value },
    };

    g_assert_cmpint(ioctl(fd, KVM_SET_MSRS, &m), ==, 1);
}

static void set_lapic_reg(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
    memcpy(l->regs + off, &v, 4);
}

/* Distinctive state in every part that travels. */
static void make_distinctive(Vm *vm)
{
    g_autoptr(GError) err = NULL;
    struct kvm_irqchip chip;
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clk = { .clock = 5000000000ULL };

    for (unsigned i = 0; i < NR_CPUS; i++) {
        int fd = vcpu_fd(vm->vcpus[i]);
        struct kvm_regs r;
        struct kvm_lapic_state l;

        g_assert_true(x86_cpu_setup_pvh(fd, CODE_ADDR, 0x4242 + i, &err));
        xioctl(fd, KVM_GET_REGS, &r);
        r.rax = 0x1111222233334444ULL + i;
        r.r15 = 0x1515151515151515ULL ^ i;
        r.rsi = 0xabcdef00 + i;
        r.rdx = REPORT_PORT;
        xioctl(fd, KVM_SET_REGS, &r);
        set_msr(fd, MSR_IA32_SYSENTER_CS, 0x10 + i);
        set_msr(fd, MSR_IA32_SYSENTER_EIP, 0xfeedf00d + i);
        set_msr(fd, MSR_IA32_CR_PAT, 0x0007010600070106ULL);
        xioctl(fd, KVM_GET_LAPIC, &l);
        set_lapic_reg(&l, 0x80, 0x20 + 0x10 * i);      /* TPR */
        set_lapic_reg(&l, 0xf0, 0x1ff);                 /* SVR: enabled */
        set_lapic_reg(&l, 0x350, 0x700);                /* LINT0: ExtINT */
        set_lapic_reg(&l, 0x3e0, 0xb);                  /* timer divide 1 */
        if (i == 1) {
            set_lapic_reg(&l, 0x320, (2u << 17) | 0xec);   /* TSC-deadline */
        }
        xioctl(fd, KVM_SET_LAPIC, &l);
        if (i == 1) {
            set_msr(fd, 0x6e0, 1ULL << 62);             /* far in the future */
        }
    }
    memset(&chip, 0, sizeof(chip));
    chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
    g_assert_true(kvm_get_irqchip(vm->kvm, &chip, &err));
    chip.chip.pic.imr = 0xfa;
    chip.chip.pic.irq_base = 0x20;
    g_assert_true(kvm_set_irqchip(vm->kvm, &chip, &err));
    chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    g_assert_true(kvm_get_irqchip(vm->kvm, &chip, &err));
    chip.chip.pic.imr = 0xef;
    chip.chip.pic.irq_base = 0x28;
    g_assert_true(kvm_set_irqchip(vm->kvm, &chip, &err));
    chip.chip_id = KVM_IRQCHIP_IOAPIC;
    g_assert_true(kvm_get_irqchip(vm->kvm, &chip, &err));
    chip.chip.ioapic.redirtbl[4].bits = 0x10034;        /* masked, vector 0x34 */
    chip.chip.ioapic.redirtbl[9].bits = 0x0100000000018039ULL;
    chip.chip.ioapic.ioregsel = 0x12;
    g_assert_true(kvm_set_irqchip(vm->kvm, &chip, &err));
    memset(&pit, 0, sizeof(pit));
    g_assert_true(kvm_get_pit(vm->kvm, &pit, &err));
    pit.channels[2].count = 0x1234;
    pit.channels[2].mode = 3;
    pit.channels[2].rw_mode = 3;
    pit.channels[2].write_latch = 0x34;
    pit.channels[2].gate = 0;
    g_assert_true(kvm_set_pit(vm->kvm, &pit, &err));
    g_assert_true(kvm_set_clock(vm->kvm, &clk, &err));
    g_assert_no_error(err);

    iobus_write(vm->pio, 0x3f8 + 7, 0x77, 1);           /* UART scratch */
    iobus_write(vm->pio, 0x70, 0x45, 1);                /* CMOS 0x45 */
    iobus_write(vm->pio, 0x71, 0x99, 1);
    iobus_write(vm->pio, 0x64, 0xaa, 1);                /* i8042 self test */
    iobus_write(vm->pio, PM_BASE + 2, 0x0100, 2);       /* PM1_EN: PWRBTN */
    iobus_write(vm->pio, 0xcf8, 0x80000010, 4);
}

static uint64_t report_read(void *opaque, uint64_t off, unsigned size)
{
    return 0;
}

static void report_write(void *opaque, uint64_t off, uint64_t val,
                         unsigned size)
{
    g_atomic_int_set((int *)opaque, 0x100 | (int)(val & 0xff));
}

static const IoOps report_ops = { .read = report_read, .write = report_write };

typedef struct Snapshot {
    X86CpuState cpu[NR_CPUS];
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
} Snapshot;

static void snapshot(Vm *vm, Snapshot *s)
{
    g_autoptr(GError) err = NULL;

    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < NR_CPUS; i++) {
        x86_cpu_state_init(&s->cpu[i], vm->kvm);
        g_assert_true(x86_cpu_state_get(vm->kvm, vcpu_fd(vm->vcpus[i]),
                                        &s->cpu[i], &err));
    }
    for (unsigned c = 0; c < 3; c++) {
        s->chips[c].chip_id = c;
        g_assert_true(kvm_get_irqchip(vm->kvm, &s->chips[c], &err));
    }
    g_assert_true(kvm_get_pit(vm->kvm, &s->pit, &err));
    g_assert_true(kvm_get_clock(vm->kvm, &s->clock, &err));
    g_assert_no_error(err);
}

static void snapshot_clear(Snapshot *s)
{
    for (unsigned i = 0; i < NR_CPUS; i++) {
        x86_cpu_state_clear(&s->cpu[i]);
    }
}

static void compare_cpu(const X86CpuState *a, const X86CpuState *b)
{
    g_assert_cmpmem(&a->regs, sizeof(a->regs), &b->regs, sizeof(b->regs));
    g_assert_cmpmem(&a->sregs, sizeof(a->sregs), &b->sregs, sizeof(b->sregs));
    g_assert_cmpuint(a->mp_state.mp_state, ==, b->mp_state.mp_state);
    g_assert_cmpmem(&a->debugregs, sizeof(a->debugregs), &b->debugregs,
                    sizeof(b->debugregs));
    g_assert_cmpmem(&a->xcrs, sizeof(a->xcrs), &b->xcrs, sizeof(b->xcrs));
    g_assert_cmpmem(&a->events.exception, sizeof(a->events.exception),
                    &b->events.exception, sizeof(b->events.exception));
    /* LAPIC page except the timer's current count, which runs. */
    g_assert_cmpmem(a->lapic.regs, 0x390, b->lapic.regs, 0x390);
    g_assert_cmpmem(a->lapic.regs + 0x3a0, sizeof(a->lapic.regs) - 0x3a0,
                    b->lapic.regs + 0x3a0, sizeof(b->lapic.regs) - 0x3a0);
    g_assert_cmpuint(a->xsave_size, ==, b->xsave_size);
    g_assert_cmpmem(a->xsave, 576, b->xsave, 576);
    g_assert_cmpuint(a->nr_msrs, ==, b->nr_msrs);
    for (uint32_t i = 0; i < a->nr_msrs; i++) {
        g_assert_cmphex(a->msrs[i].index, ==, b->msrs[i].index);
        if (a->msrs[i].index == MSR_IA32_TSC) {
            g_assert_cmpuint(b->msrs[i].data - a->msrs[i].data, <,
                             100000000000ULL);
        } else if (a->msrs[i].index != 0x6e0) {    /* TSC deadline: relative */
            g_assert_cmphex(a->msrs[i].data, ==, b->msrs[i].data);
        }
    }
}

static void test_machine_round_trip(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) stream = NULL;
    Vm vm;
    Snapshot before, after;
    QEMUFile *f;
    uint64_t v;

    if (!test_have_kvm()) {
        return;
    }
    vm_new(&vm);
    make_distinctive(&vm);
    snapshot(&vm, &before);
    g_assert_true(x86_cpu_state_msr(&before.cpu[1], MSR_IA32_SYSENTER_EIP, &v));
    g_assert_cmphex(v, ==, 0xfeedf00e);
    stream = test_savevm_save(vm.sv);
    vm_free(&vm);

    vm_new(&vm);
    f = qemu_file_new_mem_input(stream);
    savevm_load(vm.sv, f, &err);
    g_assert_no_error(err);
    qemu_fclose(f, NULL);
    snapshot(&vm, &after);

    for (unsigned i = 0; i < NR_CPUS; i++) {
        compare_cpu(&before.cpu[i], &after.cpu[i]);
    }
    g_assert_cmphex(after.cpu[1].regs.rax, ==, 0x1111222233334445ULL);
    /* An armed TSC-deadline timer survives (the MSR only sticks once the
     * LAPIC is in TSC-deadline mode). */
    if (x86_cpu_state_msr(&before.cpu[1], 0x6e0, &v)) {
        g_assert_cmphex(v, !=, 0);
        g_assert_true(x86_cpu_state_msr(&after.cpu[1], 0x6e0, &v));
        g_assert_cmphex(v, !=, 0);
    }
    for (unsigned c = 0; c < 2; c++) {
        g_assert_cmpmem(&before.chips[c].chip.pic, sizeof(struct kvm_pic_state),
                        &after.chips[c].chip.pic, sizeof(struct kvm_pic_state));
    }
    g_assert_cmphex(after.chips[0].chip.pic.imr, ==, 0xfa);
    g_assert_cmpmem(&before.chips[2].chip.ioapic, sizeof(struct kvm_ioapic_state),
                    &after.chips[2].chip.ioapic, sizeof(struct kvm_ioapic_state));
    g_assert_cmphex(after.chips[2].chip.ioapic.redirtbl[4].bits, ==, 0x10034);
    for (unsigned i = 0; i < 3; i++) {
        const struct kvm_pit_channel_state *a = &before.pit.channels[i];
        const struct kvm_pit_channel_state *b = &after.pit.channels[i];

        g_assert_cmpuint(a->count, ==, b->count);
        g_assert_cmpuint(a->mode, ==, b->mode);
        g_assert_cmpuint(a->rw_mode, ==, b->rw_mode);
        g_assert_cmpuint(a->write_latch, ==, b->write_latch);
        g_assert_cmpuint(a->gate, ==, b->gate);
    }
    g_assert_cmpuint(after.pit.channels[2].count, ==, 0x1234);
    g_assert_cmpuint(after.pit.flags, ==, before.pit.flags);
    /* kvmclock goes on from the saved value (not the fresh VM's ~0). */
    g_assert_cmpuint(after.clock.clock, >=, 5000000000ULL);
    g_assert_cmpuint(after.clock.clock - before.clock.clock, <, 60000000000ULL);

    {
        uint64_t r;

        iobus_read(vm.pio, 0x3f8 + 7, &r, 1);
        g_assert_cmphex(r, ==, 0x77);
        iobus_read(vm.pio, 0x71, &r, 1);               /* index 0x45 kept */
        g_assert_cmphex(r, ==, 0x99);
        iobus_read(vm.pio, 0x60, &r, 1);
        g_assert_cmphex(r, ==, 0x55);
        iobus_read(vm.pio, PM_BASE + 2, &r, 2);
        g_assert_cmphex(r, ==, 0x0100);
        iobus_read(vm.pio, 0xcf8, &r, 4);
        g_assert_cmphex(r, ==, 0x80000010);
    }
    /* The restored BSP runs on from the restored RIP with the restored AL. */
    {
        int reported = 0;
        struct kvm_regs r;

        g_assert_true(iobus_register(vm.pio, REPORT_PORT, 1, &report_ops,
                                     &reported, &err));
        vcpu_resume(vm.vcpus[0]);
        for (int i = 0; i < 5000 && !g_atomic_int_get(&reported); i++) {
            g_usleep(1000);
        }
        vcpu_pause(vm.vcpus[0]);
        g_assert_cmphex(g_atomic_int_get(&reported), ==, 0x144);
        xioctl(vcpu_fd(vm.vcpus[0]), KVM_GET_REGS, &r);
        g_assert_cmphex(r.rip, ==, CODE_ADDR + 1);
        g_assert_cmphex(r.r15, ==, 0x1515151515151515ULL);
    }
    snapshot_clear(&before);
    snapshot_clear(&after);
    vm_free(&vm);
}

static void test_running_vcpu_refused(void)
{
    g_autoptr(GError) err = NULL;
    QEMUFile *f;
    Vm vm;

    if (!test_have_kvm()) {
        return;
    }
    vm_new(&vm);
    g_assert_true(x86_cpu_setup_pvh(vcpu_fd(vm.vcpus[0]), CODE_ADDR, 0, &err));
    vcpu_resume(vm.vcpus[0]);
    for (int i = 0; i < 5000 && vcpu_run_state(vm.vcpus[0]) != VCPU_RUNNING; i++) {
        g_usleep(1000);                 /* the thread wakes asynchronously */
    }
    g_assert_cmpint(vcpu_run_state(vm.vcpus[0]), ==, VCPU_RUNNING);
    f = qemu_file_new_mem_output();
    g_assert_false(savevm_save_all(vm.sv, f, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "vCPU 0 is not paused"));
    qemu_fclose(f, NULL);
    vcpu_pause(vm.vcpus[0]);
    vm_free(&vm);
}

static GBytes *save_one(const VMStateDescription *vmsd, void *opaque)
{
    g_autoptr(GError) err = NULL;
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *a;
    GBytes *b;

    g_assert_true(vmstate_save(f, vmsd, opaque, NULL, &err));
    a = qemu_file_mem_output_data(f);
    b = g_bytes_new(a->data, a->len);
    qemu_fclose(f, NULL);
    return b;
}

static GError *load_one(const VMStateDescription *vmsd, void *opaque,
                        const uint8_t *p, size_t len)
{
    GError *err = NULL;
    GBytes *b = g_bytes_new(p, len);
    QEMUFile *f = qemu_file_new_mem_input(b);

    if (vmstate_load(f, vmsd, opaque, vmsd->version_id, &err)) {
        g_assert_no_error(err);
    } else {
        g_assert_nonnull(err);
    }
    qemu_fclose(f, NULL);
    g_bytes_unref(b);
    return err;
}

static void expect_error(const VMStateDescription *vmsd, void *opaque,
                         const uint8_t *p, size_t len, const char *msg)
{
    GError *err = load_one(vmsd, opaque, p, len);

    g_assert_nonnull(err);
    if (!strstr(err->message, msg)) {
        g_error("expected '%s' in: %s", msg, err->message);
    }
    g_error_free(err);
}

/* Offset of the be32 XSAVE size in a "cpu" section (layout in the header). */
static size_t xsave_size_offset(const X86CpuState *st)
{
    size_t regs = 18 * 8, seg = 8 + 4 + 2 + 9, dt = 8 + 2;

    return regs + 8 * seg + 2 * dt + 7 * 8 + 4 * 8 +
           4 + st->nr_msrs * 12 + 8 + st->xcrs.nr_xcrs * 12;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = (uint8_t)v;
}

static void test_hostile_sections(void)
{
    Vm vm;
    const VMStateDescription *vmstate_x86_cpu, *vmstate_kvm_pit, *vmstate_kvm_pic;
    X86Cpu *cpu;
    KvmChips *chips;
    g_autoptr(GBytes) cb = NULL, pb = NULL, picb = NULL;
    g_autofree uint8_t *c = NULL, *p = NULL, *pic = NULL;
    size_t clen, plen, off;
    GError *err;

    if (!test_have_kvm()) {
        return;
    }
    vm_new(&vm);
    cpu = vm.cpus[0];
    chips = vm.chips;
    vmstate_x86_cpu = registered(&vm, "cpu", 0, cpu);
    vmstate_kvm_pit = registered(&vm, "kvm-pit", 0, &chips->pit);
    vmstate_kvm_pic = registered(&vm, "i8259", 1, &chips->pic[1]);
    cb = save_one(vmstate_x86_cpu, cpu);
    clen = g_bytes_get_size(cb);
    c = g_memdup2(g_bytes_get_data(cb, NULL), clen);
    off = xsave_size_offset(&cpu->st);
    {
        /* A bigger image than this KVM's: the stream is consistent, the
         * size is not. */
        size_t tail = off + 4 + vm.kvm->xsave_size;
        g_autofree uint8_t *big = g_malloc0(clen + 64);

        memcpy(big, c, tail);
        memcpy(big + tail + 64, c + tail, clen - tail);
        put_be32(big + off, vm.kvm->xsave_size + 64);
        expect_error(vmstate_x86_cpu, cpu, big, clen + 64, "XSAVE image");
    }
    put_be32(c + off, 1u << 24);
    expect_error(vmstate_x86_cpu, cpu, c, clen, "at most");
    put_be32(c + off, vm.kvm->xsave_size);
    put_be32(c + 18 * 8 + 8 * 23 + 2 * 10 + 11 * 8, 99);     /* nr_msrs */
    expect_error(vmstate_x86_cpu, cpu, c, clen, "at most 40");
    memcpy(c, g_bytes_get_data(cb, NULL), clen);
    g_test_message("KVM reports a TSC of %" PRIu32 " kHz", cpu->tsc_khz);
    if (cpu->tsc_khz) {
        /* The TSC rate travels in the one subsection, at the very end. */
        g_assert_cmpuint(clen, >, TSC_SUB_LEN);
        g_assert_cmpmem(c + clen - TSC_SUB_LEN + 2, 11, "cpu/tsc_khz", 11);
    }
    /* Every truncation fails before KVM sees anything, except the one
     * that drops the whole optional subsection. */
    for (size_t cut = 0; cut < clen; cut += (cut < 600 ? 1 : 97)) {
        if (cpu->tsc_khz && cut == clen - TSC_SUB_LEN) {
            continue;
        }
        err = load_one(vmstate_x86_cpu, cpu, c, cut);
        g_assert_nonnull(err);
        g_error_free(err);
    }
    err = load_one(vmstate_x86_cpu, cpu, c, clen);     /* intact: loads */
    g_assert_no_error(err);

    pb = save_one(vmstate_kvm_pit, &chips->pit);
    plen = g_bytes_get_size(pb);
    g_assert_cmpuint(plen, ==, 4 + 3 * 24);
    p = g_memdup2(g_bytes_get_data(pb, NULL), plen);
    p[4 + 13] = 7;                                      /* channel 0 mode */
    expect_error(vmstate_kvm_pit, &chips->pit, p, plen, "channel 0");
    p[4 + 13] = 2;
    p[3] = 0x80;                                        /* flags */
    expect_error(vmstate_kvm_pit, &chips->pit, p, plen, "unknown flags");

    picb = save_one(vmstate_kvm_pic, &chips->pic[1]);
    g_assert_cmpuint(g_bytes_get_size(picb), ==, 16);
    pic = g_memdup2(g_bytes_get_data(picb, NULL), 16);
    pic[14] = 1;                                        /* single mode */
    expect_error(vmstate_kvm_pic, &chips->pic[1], pic, 16, "slave: impossible");
    pic[14] = 0;
    pic[9] = 9;                                         /* init_state */
    expect_error(vmstate_kvm_pic, &chips->pic[1], pic, 16, "initialization");

    vm_free(&vm);
}

/* What QEMU 7.2 writes for a paused '-M pc -S' (TCG) VM: both PICs all
 * zero, and the IOAPIC ("ioapic" v3) with every pin masked; and, with
 * '-accel kvm -cpu qemu64', its "kvmclock" section. */
static const uint8_t qemu72_kvmclock[] = {
    0x00, 0x00, 0x00, 0x00, 0x0e, 0xd6, 0xfd, 0x2c,
    0x05, 26, 'k', 'v', 'm', 'c', 'l', 'o', 'c', 'k', '/', 'c', 'l', 'o',
    'c', 'k', '_', 'i', 's', '_', 'r', 'e', 'l', 'i', 'a', 'b', 'l', 'e',
    0x00, 0x00, 0x00, 0x01, 0x01,
};

static void test_qemu_chip_bytes(void)
{
    g_autoptr(GError) err = NULL;
    Vm vm;
    KvmChips *chips;
    uint8_t pic[16] = { 0 }, ioapic[2 + 8 + 4 + 24 * 8] = { 0 };
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
    struct kvm_clock_data clk;

    if (!test_have_kvm()) {
        return;
    }
    for (unsigned i = 0; i < 24; i++) {
        ioapic[14 + 8 * i + 5] = 0x01;      /* be64 0x10000: masked */
    }
    vm_new(&vm);
    chips = vm.chips;
    g_assert_null(load_one(registered(&vm, "i8259", 0, &chips->pic[0]),
                           &chips->pic[0], pic, sizeof(pic)));
    g_assert_null(load_one(registered(&vm, "i8259", 1, &chips->pic[1]),
                           &chips->pic[1], pic, sizeof(pic)));
    g_assert_null(load_one(registered(&vm, "ioapic", 0, &chips->ioapic),
                           &chips->ioapic, ioapic, sizeof(ioapic)));
    g_assert_true(kvm_get_irqchip(vm.kvm, &chip, &err));
    for (unsigned i = 0; i < 24; i++) {
        g_assert_cmphex(chip.chip.ioapic.redirtbl[i].bits, ==, 0x10000);
    }
    /* QEMU with -accel kvm: its kvmclock section, subsection included. */
    g_assert_null(load_one(registered(&vm, "kvmclock", 0, &chips->clock),
                           &chips->clock, qemu72_kvmclock,
                           sizeof(qemu72_kvmclock)));
    g_assert_true(chips->clock.reliable);
    g_assert_true(kvm_get_clock(vm.kvm, &clk, &err));
    g_assert_cmpuint(clk.clock, >=, 0x0ed6fd2c);
    g_assert_cmpuint(clk.clock, <, 0x0ed6fd2c + 60000000000ULL);
    vm_free(&vm);
}

/* inc eax; out dx, eax; jmp back to the inc */
static const uint8_t counter[] = { 0x40, 0xef, 0xeb, 0xfc };
#define COUNTER_PORT 0x84

typedef struct Counter {
    GMutex lock;
    GCond cond;
    unsigned writes;
    uint32_t first, last;
} Counter;

static void counter_write(void *opaque, uint64_t off, uint64_t val,
                          unsigned size)
{
    Counter *c = opaque;

    g_mutex_lock(&c->lock);
    if (!c->writes++) {
        c->first = (uint32_t)val;
    }
    c->last = (uint32_t)val;
    g_cond_broadcast(&c->cond);
    g_mutex_unlock(&c->lock);
}

static const IoOps counter_ops = { .read = report_read, .write = counter_write };

/* Waits (bounded) until the guest has written 'n' more times. */
static void counter_wait(Counter *c, unsigned n)
{
    gint64 end = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

    g_mutex_lock(&c->lock);
    n += c->writes;
    while (c->writes < n && g_cond_wait_until(&c->cond, &c->lock, end)) {
    }
    g_assert_cmpuint(c->writes, >=, n);
    g_mutex_unlock(&c->lock);
}

/* A vCPU that really ran is paused mid-loop, saved, and its copy in a fresh
 * VM goes on counting from the next number. */
static void test_running_guest_continues(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) stream = NULL;
    Counter src = { 0 }, dst = { 0 };
    struct kvm_regs r;
    uint32_t last;

    QEMUFile *f;
    Vm vm;

    if (!test_have_kvm()) {
        return;
    }
    vm_new(&vm);
    g_assert_true(guest_mem_write(&vm.mem, CODE_ADDR, counter, sizeof(counter),
                                  &err));
    g_assert_true(iobus_register(vm.pio, COUNTER_PORT, 4, &counter_ops, &src,
                                 &err));
    g_assert_true(x86_cpu_setup_pvh(vcpu_fd(vm.vcpus[0]), CODE_ADDR, 0, &err));
    xioctl(vcpu_fd(vm.vcpus[0]), KVM_GET_REGS, &r);
    r.rdx = COUNTER_PORT;
    r.rax = 0;
    xioctl(vcpu_fd(vm.vcpus[0]), KVM_SET_REGS, &r);
    vcpu_resume(vm.vcpus[0]);
    counter_wait(&src, 20);
    vcpu_pause(vm.vcpus[0]);
    last = src.last;
    stream = test_savevm_save(vm.sv);
    vm_free(&vm);

    vm_new(&vm);
    g_assert_true(guest_mem_write(&vm.mem, CODE_ADDR, counter, sizeof(counter),
                                  &err));
    g_assert_true(iobus_register(vm.pio, COUNTER_PORT, 4, &counter_ops, &dst,
                                 &err));
    f = qemu_file_new_mem_input(stream);
    savevm_load(vm.sv, f, &err);
    g_assert_no_error(err);
    qemu_fclose(f, NULL);
    vcpu_resume(vm.vcpus[0]);
    counter_wait(&dst, 1);
    vcpu_pause(vm.vcpus[0]);
    /* The first number after the restore follows the last one before
     * (whether the source stopped before or after its next inc). */
    g_assert_cmpuint(last, >=, 20);
    g_assert_cmpuint(dst.first, ==, last + 1);
    vm_free(&vm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/devstate-kvm/machine-round-trip", test_machine_round_trip);
    g_test_add_func("/devstate-kvm/running-vcpu-refused",
                    test_running_vcpu_refused);
    g_test_add_func("/devstate-kvm/hostile-sections", test_hostile_sections);
    g_test_add_func("/devstate-kvm/qemu-7.2-chips", test_qemu_chip_bytes);
    g_test_add_func("/devstate-kvm/running-guest-continues",
                    test_running_guest_continues);
    return g_test_run();
}
