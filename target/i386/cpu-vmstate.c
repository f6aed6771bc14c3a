/*
 * The vCPU's VMState description (target/i386/cpu-vmstate.h), over X86Cpu.
 * KVM's structs are architectural (segment descriptors, the XSAVE image,
 * the APIC page), so they are described field by field as they are;
 * pre_save reads the whole vCPU, post_load checks what only tern can check
 * and puts it back in the order KVM needs (target/i386/cpu-state.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "migration/vmstate.h"
#include "target/i386/cpu-vmstate.h"
#include "tern/error.h"

/* KVM's __u64 is not uint64_t's type, though both are 64 bits wide. */
#define K64(f, s)  VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint64, __u64)
#define K32(f, s)  VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint32, __u32)
#define K16(f, s)  VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint16, __u16)
#define K8(f, s)   VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint8, __u8)
#define CPU64(f)   K64(st.f, X86Cpu)
#define CPU32(f)   K32(st.f, X86Cpu)
#define CPU8(f)    K8(st.f, X86Cpu)

#define XSAVE_MAX  (64 * KiB)     /* AMX tiles included, with room to spare */
#define MSR_IA32_TSC_DEADLINE 0x6e0

#define EVENTS_VALID (KVM_VCPUEVENT_VALID_NMI_PENDING |                     \
                      KVM_VCPUEVENT_VALID_SIPI_VECTOR |                     \
                      KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |\
                      KVM_VCPUEVENT_VALID_PAYLOAD |                         \
                      KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

typedef struct kvm_segment KvmSegment;
typedef struct kvm_dtable KvmDtable;
typedef struct kvm_msr_entry KvmMsrEntry;
typedef struct kvm_xcr KvmXcr;

static const VMStateDescription vmstate_segment = {
    .name = "cpu/segment",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        K64(base, KvmSegment), K32(limit, KvmSegment),
        K16(selector, KvmSegment), K8(type, KvmSegment),
        K8(present, KvmSegment), K8(dpl, KvmSegment), K8(db, KvmSegment),
        K8(s, KvmSegment), K8(l, KvmSegment), K8(g, KvmSegment),
        K8(avl, KvmSegment), K8(unusable, KvmSegment),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_dtable = {
    .name = "cpu/dtable",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        K64(base, KvmDtable), K16(limit, KvmDtable),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_msr = {
    .name = "cpu/msr",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        K32(index, KvmMsrEntry), K64(data, KvmMsrEntry),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_xcr = {
    .name = "cpu/xcr",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        K32(xcr, KvmXcr), K64(value, KvmXcr),
        VMSTATE_END_OF_LIST()
    },
};

#define SEG(f) VMSTATE_STRUCT(st.sregs.f, X86Cpu, 1, vmstate_segment, \
                              KvmSegment)
#define DTAB(f) VMSTATE_STRUCT(st.sregs.f, X86Cpu, 1, vmstate_dtable, \
                               KvmDtable)

/* A variable-length array of structures counted by a be32 before it. */
#define STRUCT_VARRAY32(f, nf, cap, sd, t) {                                \
    .name = #f, .num = (cap), .vmsd = &(sd), .size = sizeof(t),           \
    .flags = VMS_STRUCT | VMS_VARRAY,                                     \
    .offset = vmstate_offset_array(X86Cpu, f, t, cap),             \
    .num_offset = vmstate_offset_value(X86Cpu, nf, __u32),         \
    .num_size = 4 }

static bool cpu_pre_save(void *opaque, GError **errp)
{
    X86Cpu *c = opaque;
    int r;

    if (vcpu_run_state(c->vcpu) != VCPU_PAUSED) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "vCPU %u is not paused", vcpu_index(c->vcpu));
        return false;
    }
    r = ioctl(vcpu_fd(c->vcpu), KVM_GET_TSC_KHZ);
    c->tsc_khz = r > 0 ? (uint32_t)r : 0;
    return x86_cpu_state_get(c->kvm, vcpu_fd(c->vcpu), &c->st, errp);
}

/*
 * KVM ignores a TSC-deadline write while the LAPIC is not in TSC-deadline
 * mode, and x86_cpu_state_put writes the MSRs before the LAPIC: write the
 * deadline once more, now that the LVT timer mode is back, or an armed timer
 * would be lost.
 */
static bool put_tsc_deadline(X86Cpu *c, GError **errp)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = { .h.nmsrs = 1, .e.index = MSR_IA32_TSC_DEADLINE };
    uint64_t v;

    if (!x86_cpu_state_msr(&c->st, MSR_IA32_TSC_DEADLINE, &v) || !v) {
        return true;
    }
    m.e.data = v;
    if (ioctl(vcpu_fd(c->vcpu), KVM_SET_MSRS, &m) != 1) {
        tern_set_error_errno(errp, errno, "KVM_SET_MSRS (TSC deadline)");
        return false;
    }
    return true;
}

/* Before the state goes in: the TSC value is in the rate's ticks. */
static void put_tsc_khz(X86Cpu *c)
{
    int fd = vcpu_fd(c->vcpu);
    int here = ioctl(fd, KVM_GET_TSC_KHZ);

    if (!c->tsc_khz || here == (int)c->tsc_khz) {
        return;
    }
    if (c->tsc_khz > INT32_MAX ||
        ioctl(fd, KVM_SET_TSC_KHZ, (unsigned long)c->tsc_khz) < 0) {
        tern_warn("cpu %u: cannot run the guest's TSC at %" PRIu32
                  " kHz here (%d kHz): guest time will drift",
                  vcpu_index(c->vcpu), c->tsc_khz, here);
    }
}

static bool cpu_post_load(void *opaque, int version_id, GError **errp)
{
    X86Cpu *c = opaque;
    unsigned idx = vcpu_index(c->vcpu);

    if (vcpu_run_state(c->vcpu) != VCPU_PAUSED) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "vCPU %u is not paused", idx);
        return false;
    }
    if (c->st.xsave_size != c->kvm->xsave_size || !c->st.xsave) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "cpu %u: XSAVE image of %u bytes, this host's KVM uses %u",
                    idx, c->st.xsave_size, c->kvm->xsave_size);
        return false;
    }
    if (c->st.events.flags & ~(uint32_t)EVENTS_VALID) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "cpu %u: unknown vCPU event flags 0x%x", idx,
                    c->st.events.flags);
        return false;
    }
    put_tsc_khz(c);
    if (!x86_cpu_state_put(c->kvm, vcpu_fd(c->vcpu), &c->st, errp) ||
        !put_tsc_deadline(c, errp)) {
        g_prefix_error(errp, "cpu %u: ", idx);
        return false;
    }
    return true;
}

static bool cpu_pre_load(void *opaque, GError **errp)
{
    ((X86Cpu *)opaque)->tsc_khz = 0;     /* absent subsection */
    return true;
}

static bool tsc_khz_needed(void *opaque)
{
    return ((X86Cpu *)opaque)->tsc_khz != 0;
}

static const VMStateDescription vmstate_x86_cpu_tsc_khz = {
    .name = "cpu/tsc_khz",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = tsc_khz_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(tsc_khz, X86Cpu),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_x86_cpu = {
    .name = "cpu",
    .version_id = 1,
    .minimum_version_id = 1,
    .priority = VMSTATE_PRIO_CPU,
    .pre_save = cpu_pre_save,
    .pre_load = cpu_pre_load,
    .post_load = cpu_post_load,
    .fields = (const VMStateField[]) {
        CPU64(regs.rax), CPU64(regs.rbx), CPU64(regs.rcx), CPU64(regs.rdx),
        CPU64(regs.rsi), CPU64(regs.rdi), CPU64(regs.rsp), CPU64(regs.rbp),
        CPU64(regs.r8), CPU64(regs.r9), CPU64(regs.r10), CPU64(regs.r11),
        CPU64(regs.r12), CPU64(regs.r13), CPU64(regs.r14), CPU64(regs.r15),
        CPU64(regs.rip), CPU64(regs.rflags),

        SEG(cs), SEG(ds), SEG(es), SEG(fs), SEG(gs), SEG(ss), SEG(tr),
        SEG(ldt), DTAB(gdt), DTAB(idt),
        CPU64(sregs.cr0), CPU64(sregs.cr2), CPU64(sregs.cr3),
        CPU64(sregs.cr4), CPU64(sregs.cr8), CPU64(sregs.efer),
        CPU64(sregs.apic_base),
        VMSTATE_ARRAY(st.sregs.interrupt_bitmap, X86Cpu,
                      (KVM_NR_INTERRUPTS + 63) / 64, vmstate_info_uint64,
                      __u64),

        VMSTATE_UINT32(st.nr_msrs, X86Cpu),
        STRUCT_VARRAY32(st.msrs, st.nr_msrs, X86_MAX_MSRS, vmstate_msr,
                        KvmMsrEntry),

        CPU32(xcrs.nr_xcrs), CPU32(xcrs.flags),
        STRUCT_VARRAY32(st.xcrs.xcrs, st.xcrs.nr_xcrs, KVM_MAX_XCRS,
                        vmstate_xcr, KvmXcr),

        VMSTATE_UINT32(st.xsave_size, X86Cpu),
        VMSTATE_VBUFFER_ALLOC_UINT32(st.xsave, X86Cpu, st.xsave_size,
                                     XSAVE_MAX),

        VMSTATE_BUFFER(st.lapic.regs, X86Cpu),

        CPU8(events.exception.injected), CPU8(events.exception.nr),
        CPU8(events.exception.has_error_code),
        CPU8(events.exception.pending), CPU32(events.exception.error_code),
        CPU8(events.interrupt.injected), CPU8(events.interrupt.nr),
        CPU8(events.interrupt.soft), CPU8(events.interrupt.shadow),
        CPU8(events.nmi.injected), CPU8(events.nmi.pending),
        CPU8(events.nmi.masked),
        CPU32(events.sipi_vector), CPU32(events.flags),
        CPU8(events.smi.smm), CPU8(events.smi.pending),
        CPU8(events.smi.smm_inside_nmi), CPU8(events.smi.latched_init),
        CPU8(events.triple_fault.pending),
        CPU8(events.exception_has_payload),
        CPU64(events.exception_payload),

        CPU32(mp_state.mp_state),

        VMSTATE_ARRAY(st.debugregs.db, X86Cpu, 4, vmstate_info_uint64,
                      __u64),
        CPU64(debugregs.dr6), CPU64(debugregs.dr7), CPU64(debugregs.flags),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_x86_cpu_tsc_khz,
        NULL
    },
};

X86Cpu *x86_cpu_new(const KvmState *kvm, Vcpu *vcpu, DeviceList *dl)
{
    X86Cpu *c = g_new0(X86Cpu, 1);

    c->kvm = kvm;
    c->vcpu = vcpu;
    x86_cpu_state_init(&c->st, kvm);
    device_list_add_vmstate(dl, "cpu", vcpu_index(vcpu), &vmstate_x86_cpu, c);
    return c;
}

void x86_cpu_free(X86Cpu *c)
{
    if (c) {
        x86_cpu_state_clear(&c->st);
        g_free(c);
    }
}
