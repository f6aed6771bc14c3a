/*
 * Unit tests for vCPUs and their state (accel/kvm, target/i386/cpu-state.c),
 * on real KVM (skipped without /dev/kvm): a vCPU paused right after a port
 * exit has the I/O completed (RIP past the instruction, IN data in EAX); and
 * its whole state saved, loaded into a vCPU of a fresh VM and read back is
 * the same (save -> destroy -> recreate -> load -> compare).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/kvm/kvm-vcpu.h"
#include "accel/kvm/kvm.h"
#include "hw/core/guest-memory.h"
#include "target/i386/cpu-state.h"
#include "target/i386/cpuid.h"
#include "tern/error.h"
#include "test-kvm-util.h"

#define CODE_ADDR 0x1000

/* mov eax, 0x12345678; in al, 0x81; jmp $ */
static const uint8_t code[] = { 0xb8, 0x78, 0x56, 0x34, 0x12, 0xe4, 0x81, 0xeb, 0xfe };

typedef struct Port {
    GMutex lock;
    GCond cond;
    bool hit, go;
} Port;

/* Blocks the vCPU thread inside the exit until the test says go, so the test
 * can request a pause while an IN is half done. */
static uint64_t port_read(void *opaque, uint64_t off, unsigned size)
{
    Port *p = opaque;

    g_mutex_lock(&p->lock);
    p->hit = true;
    g_cond_broadcast(&p->cond);
    while (!p->go) {
        g_cond_wait(&p->cond, &p->lock);
    }
    g_mutex_unlock(&p->lock);
    return 0x5a;
}

static const IoOps port_ops = { .read = port_read };

typedef struct TestVm {
    KvmState *kvm;
    GuestMemory mem;
    IoBus *pio, *mmio;
    Vcpu *vcpu;
} TestVm;

static void no_event(void *opaque, unsigned index, VcpuEvent ev)
{
    g_assert_not_reached();
}

static void vm_init(TestVm *vm)
{
    g_autoptr(GError) err = NULL;
    X86Topology topo = { .nr_cpus = 1, .apic_id = 0 };
    VcpuHooks hooks;
    g_autofree struct kvm_cpuid2 *cpuid = NULL;

    memset(vm, 0, sizeof(*vm));
    vm->kvm = kvm_init(&err);
    g_assert_no_error(err);
    g_assert_true(guest_mem_alloc(&vm->mem, 2 * MiB, 2 * MiB, &err));
    g_assert_true(kvm_set_slot(vm->kvm, 0, 0, 2 * MiB, vm->mem.regions[0].hva, 0, &err));
    g_assert_true(kvm_create_irqchip(vm->kvm, &err));
    vm->pio = iobus_new("pio");
    vm->mmio = iobus_new("mmio");
    hooks = (VcpuHooks){ .pio = vm->pio, .mmio = vm->mmio, .event = no_event };
    vm->vcpu = vcpu_create(vm->kvm, 0, &hooks, &err);
    g_assert_no_error(err);
    cpuid = x86_cpuid_build(vm->kvm->supported_cpuid, &topo);
    g_assert_true(x86_cpu_set_cpuid(vcpu_fd(vm->vcpu), cpuid, &err));
}

static void vm_destroy(TestVm *vm)
{
    vcpu_destroy(vm->vcpu);
    kvm_destroy(vm->kvm);
    guest_mem_free(&vm->mem);
    iobus_free(vm->pio);
    iobus_free(vm->mmio);
}

/* Runs the code up to the IN, pauses with the IN pending; returns the state. */
static void run_to_paused_in(TestVm *vm, Port *port)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(guest_mem_write(&vm->mem, CODE_ADDR, code, sizeof(code), &err));
    g_assert_true(iobus_register(vm->pio, 0x81, 1, &port_ops, port, &err));
    g_assert_true(x86_cpu_setup_pvh(vcpu_fd(vm->vcpu), CODE_ADDR, 0x4242, &err));
    g_assert_cmpint(vcpu_run_state(vm->vcpu), ==, VCPU_PAUSED);
    vcpu_resume(vm->vcpu);

    g_mutex_lock(&port->lock);
    while (!port->hit) {
        g_cond_wait(&port->cond, &port->lock);
    }
    g_mutex_unlock(&port->lock);
    vcpu_request_pause(vm->vcpu);
    g_mutex_lock(&port->lock);
    port->go = true;
    g_cond_broadcast(&port->cond);
    g_mutex_unlock(&port->lock);
    vcpu_wait_paused(vm->vcpu);
}

static void test_pause_completes_io(void)
{
    TestVm vm;
    Port port = { 0 };
    struct kvm_regs regs;

    if (!test_have_kvm()) {
        return;
    }
    g_mutex_init(&port.lock);
    g_cond_init(&port.cond);
    vm_init(&vm);
    run_to_paused_in(&vm, &port);
    g_assert_cmpint(ioctl(vcpu_fd(vm.vcpu), KVM_GET_REGS, &regs), ==, 0);
    g_assert_cmphex(regs.rip, ==, CODE_ADDR + 7);          /* past the IN */
    g_assert_cmphex(regs.rax & 0xffffffff, ==, 0x1234565a); /* IN data landed */
    g_assert_cmphex(regs.rbx, ==, 0x4242);                  /* PVH start_info */
    /* It keeps running (the jmp $) and pauses again without an I/O exit. */
    vcpu_resume(vm.vcpu);
    g_usleep(20000);
    vcpu_pause(vm.vcpu);
    g_assert_cmpint(vcpu_run_state(vm.vcpu), ==, VCPU_PAUSED);
    g_assert_cmpint(ioctl(vcpu_fd(vm.vcpu), KVM_GET_REGS, &regs), ==, 0);
    g_assert_cmphex(regs.rip, ==, CODE_ADDR + 7);
    vm_destroy(&vm);
    g_mutex_clear(&port.lock);
    g_cond_clear(&port.cond);
}

static void compare_states(const X86CpuState *a, const X86CpuState *b)
{
    g_assert_cmpmem(&a->regs, sizeof(a->regs), &b->regs, sizeof(b->regs));
    g_assert_cmpmem(&a->sregs, sizeof(a->sregs), &b->sregs, sizeof(b->sregs));
    g_assert_cmpmem(&a->mp_state, sizeof(a->mp_state), &b->mp_state, sizeof(b->mp_state));
    g_assert_cmpmem(&a->debugregs, sizeof(a->debugregs), &b->debugregs,
                    sizeof(b->debugregs));
    g_assert_cmpmem(&a->xcrs, sizeof(a->xcrs), &b->xcrs, sizeof(b->xcrs));
    g_assert_cmpmem(&a->events.exception, sizeof(a->events.exception),
                    &b->events.exception, sizeof(b->events.exception));
    g_assert_cmpmem(&a->events.nmi, sizeof(a->events.nmi), &b->events.nmi,
                    sizeof(b->events.nmi));
    /* LAPIC registers, except the timer's current count (0x390), which runs. */
    g_assert_cmpmem(a->lapic.regs, 0x390, b->lapic.regs, 0x390);
    g_assert_cmpmem(a->lapic.regs + 0x3a0, sizeof(a->lapic.regs) - 0x3a0,
                    b->lapic.regs + 0x3a0, sizeof(b->lapic.regs) - 0x3a0);
    /* FXSAVE area (x87, SSE) and the XSAVE header. */
    g_assert_cmpuint(a->xsave_size, ==, b->xsave_size);
    g_assert_cmpmem(a->xsave, 576, b->xsave, 576);
    g_assert_cmpuint(a->nr_msrs, ==, b->nr_msrs);
    for (uint32_t i = 0; i < a->nr_msrs; i++) {
        g_assert_cmphex(a->msrs[i].index, ==, b->msrs[i].index);
        if (a->msrs[i].index == MSR_IA32_TSC) {
            /* The TSC keeps counting between put and get: within a second. */
            g_assert_cmpuint(b->msrs[i].data - a->msrs[i].data, <, 10000000000ULL);
        } else if (a->msrs[i].index != 0x6e0) {   /* TSC deadline: relative */
            g_assert_cmphex(a->msrs[i].data, ==, b->msrs[i].data);
        }
    }
}

/* MSRs Linux guests use that the state must carry where KVM lists them,
 * with a value differing from KVM's power-on one. */
static const struct kvm_msr_entry guest_msrs[] = {
    { .index = 0x4b564d05, .data = 0 },        /* POLL_CONTROL (power-on 1) */
    { .index = 0x4b564d06, .data = 0xf3 },     /* ASYNC_PF_INT vector */
    { .index = 0x17a, .data = 0x1 },           /* MCG_STATUS.RIPV */
    { .index = 0x12, .data = 0 },              /* old kvmclock: listed, saved */
    { .index = 0x1d9, .data = 0 },             /* DEBUGCTL */
};

static bool kvm_lists_msr(const KvmState *kvm, uint32_t index)
{
    for (uint32_t i = 0; i < kvm->msr_list->nmsrs; i++) {
        if (kvm->msr_list->indices[i] == index) {
            return true;
        }
    }
    return false;
}

/* Sets guest_msrs[] that KVM lists; returns how many. */
static unsigned set_guest_msrs(TestVm *vm)
{
    unsigned n = 0;

    for (size_t i = 0; i < ARRAY_SIZE(guest_msrs); i++) {
        struct { struct kvm_msrs h; struct kvm_msr_entry e; } m = { .h.nmsrs = 1 };

        if (!kvm_lists_msr(vm->kvm, guest_msrs[i].index)) {
            continue;
        }
        m.e = guest_msrs[i];
        g_assert_cmpint(ioctl(vcpu_fd(vm->vcpu), KVM_SET_MSRS, &m), ==, 1);
        n++;
    }
    return n;
}

static void check_guest_msrs(const TestVm *vm, const X86CpuState *st)
{
    for (size_t i = 0; i < ARRAY_SIZE(guest_msrs); i++) {
        uint64_t v;

        if (kvm_lists_msr(vm->kvm, guest_msrs[i].index)) {
            g_assert_true(x86_cpu_state_msr(st, guest_msrs[i].index, &v));
            g_assert_cmphex(v, ==, guest_msrs[i].data);
        }
    }
}

static void test_state_round_trip(void)
{
    g_autoptr(GError) err = NULL;
    TestVm vm, vm2;
    Port port = { 0 };
    X86CpuState saved, loaded;
    uint64_t v;

    if (!test_have_kvm()) {
        return;
    }
    g_mutex_init(&port.lock);
    g_cond_init(&port.cond);
    vm_init(&vm);
    run_to_paused_in(&vm, &port);

    /* Make a few fields distinctive before saving. */
    {
        struct kvm_msr_entry e[] = {
            { .index = MSR_IA32_SYSENTER_EIP, .data = 0xfeedf00d },
            { .index = MSR_IA32_CR_PAT, .data = 0x0007040600070406ULL },
        };
        struct { struct kvm_msrs h; struct kvm_msr_entry e[2]; } m = { .h.nmsrs = 2 };
        struct kvm_regs r;

        memcpy(m.e, e, sizeof(e));
        g_assert_cmpint(ioctl(vcpu_fd(vm.vcpu), KVM_SET_MSRS, &m), ==, 2);
        if (set_guest_msrs(&vm) == 0) {
            g_test_message("KVM lists none of the extra guest MSRs");
        }
        g_assert_cmpint(ioctl(vcpu_fd(vm.vcpu), KVM_GET_REGS, &r), ==, 0);
        r.r15 = 0x1515151515151515ULL;
        r.rsi = 0xabcdef;
        g_assert_cmpint(ioctl(vcpu_fd(vm.vcpu), KVM_SET_REGS, &r), ==, 0);
    }
    x86_cpu_state_init(&saved, vm.kvm);
    g_assert_true(x86_cpu_state_get(vm.kvm, vcpu_fd(vm.vcpu), &saved, &err));
    g_assert_no_error(err);
    g_assert_true(x86_cpu_state_msr(&saved, MSR_IA32_SYSENTER_EIP, &v));
    g_assert_cmphex(v, ==, 0xfeedf00d);
    check_guest_msrs(&vm, &saved);
    vm_destroy(&vm);

    vm_init(&vm2);
    g_assert_true(guest_mem_write(&vm2.mem, CODE_ADDR, code, sizeof(code), &err));
    g_assert_true(x86_cpu_state_put(vm2.kvm, vcpu_fd(vm2.vcpu), &saved, &err));
    g_assert_no_error(err);
    x86_cpu_state_init(&loaded, vm2.kvm);
    g_assert_true(x86_cpu_state_get(vm2.kvm, vcpu_fd(vm2.vcpu), &loaded, &err));
    compare_states(&saved, &loaded);
    check_guest_msrs(&vm2, &loaded);
    g_assert_cmphex(loaded.regs.r15, ==, 0x1515151515151515ULL);
    g_assert_cmphex(loaded.regs.rip, ==, CODE_ADDR + 7);

    /* The restored vCPU runs on from where it was. */
    vcpu_resume(vm2.vcpu);
    g_usleep(20000);
    vcpu_pause(vm2.vcpu);
    g_assert_true(x86_cpu_state_get(vm2.kvm, vcpu_fd(vm2.vcpu), &loaded, &err));
    g_assert_cmphex(loaded.regs.rip, ==, CODE_ADDR + 7);
    g_assert_cmphex(loaded.regs.rax & 0xffffffff, ==, 0x1234565a);

    x86_cpu_state_clear(&saved);
    x86_cpu_state_clear(&loaded);
    vm_destroy(&vm2);
    g_mutex_clear(&port.lock);
    g_cond_clear(&port.cond);
}

static void test_put_rejects_mismatch(void)
{
    g_autoptr(GError) err = NULL;
    TestVm vm;
    X86CpuState st;

    if (!test_have_kvm()) {
        return;
    }
    vm_init(&vm);
    x86_cpu_state_init(&st, vm.kvm);
    g_assert_true(x86_cpu_state_get(vm.kvm, vcpu_fd(vm.vcpu), &st, &err));
    st.xsave_size -= 64;
    g_assert_false(x86_cpu_state_put(vm.kvm, vcpu_fd(vm.vcpu), &st, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    st.xsave_size += 64;
    x86_cpu_state_clear(&st);
    vm_destroy(&vm);
}

/* ISA IRQ0 (the PIT's GSI 0) must reach IOAPIC pin 2, as the MADT's
 * interrupt source override tells the guest; GSI 4 stays on pin 4. */
static void test_gsi_routing(void)
{
    g_autoptr(GError) err = NULL;
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
    IrqLine gsi0, gsi4;
    TestVm vm;

    if (!test_have_kvm()) {
        return;
    }
    vm_init(&vm);
    gsi0 = kvm_irq_line(vm.kvm, 0);
    gsi4 = kvm_irq_line(vm.kvm, 4);
    irq_set(&gsi0, true);
    irq_set(&gsi4, true);
    g_assert_true(kvm_get_irqchip(vm.kvm, &chip, &err));
    g_assert_cmphex(chip.chip.ioapic.irr & 0x15, ==, (1u << 2) | (1u << 4));
    irq_set(&gsi0, false);
    irq_set(&gsi4, false);
    vm_destroy(&vm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vcpu/pause-completes-io", test_pause_completes_io);
    g_test_add_func("/vcpu/state-round-trip", test_state_round_trip);
    g_test_add_func("/vcpu/put-rejects-mismatch", test_put_rejects_mismatch);
    g_test_add_func("/vcpu/gsi-routing", test_gsi_routing);
    return g_test_run();
}
