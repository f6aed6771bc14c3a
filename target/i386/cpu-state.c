/*
 * Get and put of a vCPU's whole state (target/i386/cpu-state.h), the MSR set
 * tern saves, CPUID installation and the PVH entry state.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "target/i386/cpu-state.h"
#include "tern/error.h"

/* Saved when KVM lists them (KVM_GET_MSR_INDEX_LIST). EFER and the APIC base
 * travel in sregs, so they are not repeated here. Order matters on put: the
 * async-PF vector must be set before async PF is enabled. */
static const uint32_t wanted_msrs[] = {
    MSR_IA32_TSC, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP,
    MSR_IA32_SYSENTER_EIP, MSR_IA32_MISC_ENABLE, MSR_IA32_CR_PAT,
    MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
    0x11,         /* MSR_KVM_WALL_CLOCK (pre-0x4b564d00 guests) */
    0x12,         /* MSR_KVM_SYSTEM_TIME */
    MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW,
    0x4b564d06,   /* MSR_KVM_ASYNC_PF_INT */
    0x4b564d07,   /* MSR_KVM_ASYNC_PF_ACK */
    0x4b564d02,   /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03,   /* MSR_KVM_STEAL_TIME */
    0x4b564d04,   /* MSR_KVM_PV_EOI_EN */
    0x3b,         /* MSR_IA32_TSC_ADJUST */
    0x6e0,        /* MSR_IA32_TSC_DEADLINE */
    0x4b564d05,   /* MSR_KVM_POLL_CONTROL */
    0x17a,        /* MSR_IA32_MCG_STATUS */
    0x17b,        /* MSR_IA32_MCG_CTL */
    0x1d9,        /* MSR_IA32_DEBUGCTL */
};

unsigned x86_msrs_to_save(const KvmState *kvm, uint32_t *out, unsigned max)
{
    unsigned n = 0;

    for (size_t i = 0; i < ARRAY_SIZE(wanted_msrs) && n < max; i++) {
        for (uint32_t j = 0; j < kvm->msr_list->nmsrs; j++) {
            if (kvm->msr_list->indices[j] == wanted_msrs[i]) {
                out[n++] = wanted_msrs[i];
                break;
            }
        }
    }
    return n;
}

void x86_cpu_state_init(X86CpuState *st, const KvmState *kvm)
{
    memset(st, 0, sizeof(*st));
    st->xsave_size = kvm->xsave_size;
    st->xsave = g_malloc0(st->xsave_size);
}

void x86_cpu_state_clear(X86CpuState *st)
{
    g_free(st->xsave);
    st->xsave = NULL;
}

bool x86_cpu_state_msr(const X86CpuState *st, uint32_t index, uint64_t *val)
{
    for (uint32_t i = 0; i < st->nr_msrs; i++) {
        if (st->msrs[i].index == index) {
            *val = st->msrs[i].data;
            return true;
        }
    }
    return false;
}

static bool vcpu_ioctl(int fd, unsigned long req, void *arg, const char *name,
                       GError **errp)
{
    if (ioctl(fd, req, arg) < 0) {
        tern_set_error_errno(errp, errno, "%s", name);
        return false;
    }
    return true;
}

#define VCPU_IOCTL(fd, req, arg, errp) vcpu_ioctl(fd, req, arg, #req, errp)

/* KVM_GET_MSRS / KVM_SET_MSRS return how many entries they processed. */
static bool msrs_ioctl(int fd, unsigned long req, struct kvm_msr_entry *e,
                       uint32_t n, GError **errp)
{
    g_autofree struct kvm_msrs *m = g_malloc0(sizeof(*m) + n * sizeof(*e));
    int r;

    m->nmsrs = n;
    memcpy(m->entries, e, n * sizeof(*e));
    r = ioctl(fd, req, m);
    if (r < 0) {
        tern_set_error_errno(errp, errno, "%s",
                             req == KVM_GET_MSRS ? "KVM_GET_MSRS" : "KVM_SET_MSRS");
        return false;
    }
    if ((uint32_t)r != n) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "%s stopped at MSR 0x%x",
                    req == KVM_GET_MSRS ? "KVM_GET_MSRS" : "KVM_SET_MSRS",
                    e[r].index);
        return false;
    }
    memcpy(e, m->entries, n * sizeof(*e));
    return true;
}

static bool get_xsave(const KvmState *kvm, int fd, X86CpuState *st, GError **errp)
{
    if (kvm->has_xsave2) {
        return VCPU_IOCTL(fd, KVM_GET_XSAVE2, st->xsave, errp);
    }
    return VCPU_IOCTL(fd, KVM_GET_XSAVE, st->xsave, errp);
}

bool x86_cpu_state_get(const KvmState *kvm, int fd, X86CpuState *st, GError **errp)
{
    uint32_t idx[X86_MAX_MSRS];

    st->nr_msrs = x86_msrs_to_save(kvm, idx, X86_MAX_MSRS);
    memset(st->msrs, 0, sizeof(st->msrs));
    for (uint32_t i = 0; i < st->nr_msrs; i++) {
        st->msrs[i].index = idx[i];
    }
    return VCPU_IOCTL(fd, KVM_GET_REGS, &st->regs, errp) &&
           VCPU_IOCTL(fd, KVM_GET_DEBUGREGS, &st->debugregs, errp) &&
           VCPU_IOCTL(fd, KVM_GET_MP_STATE, &st->mp_state, errp) &&
           VCPU_IOCTL(fd, KVM_GET_VCPU_EVENTS, &st->events, errp) &&
           VCPU_IOCTL(fd, KVM_GET_LAPIC, &st->lapic, errp) &&
           get_xsave(kvm, fd, st, errp) &&
           (!kvm->has_xcrs || VCPU_IOCTL(fd, KVM_GET_XCRS, &st->xcrs, errp)) &&
           msrs_ioctl(fd, KVM_GET_MSRS, st->msrs, st->nr_msrs, errp) &&
           VCPU_IOCTL(fd, KVM_GET_SREGS, &st->sregs, errp);
}

bool x86_cpu_state_put(const KvmState *kvm, int fd, const X86CpuState *st,
                       GError **errp)
{
    struct kvm_msr_entry msrs[X86_MAX_MSRS];
    /* KVM's set ioctls take non-const pointers; work on copies. */
    X86CpuState c = *st;

    if (st->xsave_size != kvm->xsave_size || st->nr_msrs > X86_MAX_MSRS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "vCPU state does not fit this KVM (xsave %u bytes, KVM %u)",
                    st->xsave_size, kvm->xsave_size);
        return false;
    }
    memcpy(msrs, st->msrs, st->nr_msrs * sizeof(msrs[0]));
    return VCPU_IOCTL(fd, KVM_SET_SREGS, &c.sregs, errp) &&
           msrs_ioctl(fd, KVM_SET_MSRS, msrs, st->nr_msrs, errp) &&
           (!kvm->has_xcrs || VCPU_IOCTL(fd, KVM_SET_XCRS, &c.xcrs, errp)) &&
           VCPU_IOCTL(fd, KVM_SET_XSAVE, c.xsave, errp) &&
           VCPU_IOCTL(fd, KVM_SET_LAPIC, &c.lapic, errp) &&
           VCPU_IOCTL(fd, KVM_SET_VCPU_EVENTS, &c.events, errp) &&
           VCPU_IOCTL(fd, KVM_SET_MP_STATE, &c.mp_state, errp) &&
           VCPU_IOCTL(fd, KVM_SET_DEBUGREGS, &c.debugregs, errp) &&
           VCPU_IOCTL(fd, KVM_SET_REGS, &c.regs, errp);
}

bool x86_cpu_set_cpuid(int fd, const struct kvm_cpuid2 *c, GError **errp)
{
    return VCPU_IOCTL(fd, KVM_SET_CPUID2, (void *)c, errp);
}

static struct kvm_segment flat32(uint16_t sel, uint8_t type)
{
    return (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
}

bool x86_cpu_setup_pvh(int fd, uint32_t entry, uint32_t start_info, GError **errp)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs = { .rip = entry, .rbx = start_info, .rflags = 0x2 };

    if (!VCPU_IOCTL(fd, KVM_GET_SREGS, &sregs, errp)) {
        return false;
    }
    sregs.cs = flat32(0x8, 0xb);        /* execute/read, accessed */
    sregs.ds = flat32(0x10, 0x3);       /* read/write, accessed */
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    /* A valid busy TSS and an unusable LDT keep VMX's entry checks happy. */
    sregs.tr = (struct kvm_segment){ .selector = 0x18, .limit = 0x67, .type = 0xb,
                                     .present = 1 };
    sregs.ldt = (struct kvm_segment){ .type = 0x2, .present = 1, .limit = 0xffff };
    sregs.cr0 = 0x11;                   /* PE | ET; paging off */
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    return VCPU_IOCTL(fd, KVM_SET_SREGS, &sregs, errp) &&
           VCPU_IOCTL(fd, KVM_SET_REGS, &regs, errp);
}
