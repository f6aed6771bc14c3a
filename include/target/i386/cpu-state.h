/*
 * One x86 vCPU's architectural state as KVM exposes it, read and written as a
 * unit (migration, snapshots, reset). The vCPU must be paused (accel/kvm/kvm-vcpu.h)
 * so that no I/O exit is half done.
 *
 * Put order, and why:
 *   1. sregs      - CR0/CR4/EFER and the APIC base first: they decide which
 *                   MSRs, XSAVE components and LAPIC mode are valid.
 *   2. MSRs       - TSC, sysenter, syscall, PAT, kvmclock, MISC_ENABLE...
 *   3. xcrs       - XCR0 before XSAVE, or KVM refuses the enabled components.
 *   4. xsave      - FPU/SSE/AVX registers.
 *   5. LAPIC      - after the APIC base MSR has set xAPIC/x2APIC mode.
 *   6. events     - pending exceptions, NMIs, interrupt shadow.
 *   7. mp_state   - after the LAPIC, whose INIT/SIPI latch it depends on.
 *   8. debugregs
 *   9. regs       - last: general registers, RIP, RFLAGS.
 * Get uses the same set in the reverse order; nothing depends on it.
 */
#ifndef TARGET_I386_CPU_STATE_H
#define TARGET_I386_CPU_STATE_H

#include <linux/kvm.h>

#include "accel/kvm/kvm.h"
#include "tern/common.h"

#define X86_MAX_MSRS 40

typedef struct X86CpuState {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    struct kvm_debugregs debugregs;
    uint32_t nr_msrs;
    struct kvm_msr_entry msrs[X86_MAX_MSRS];
    uint32_t xsave_size;             /* bytes in xsave */
    uint8_t *xsave;                  /* struct kvm_xsave, maybe extended */
} X86CpuState;

/* Well-known MSR numbers used by the machine and tests. */
#define MSR_IA32_TSC              0x10
#define MSR_IA32_APICBASE         0x1b
#define MSR_IA32_SYSENTER_CS      0x174
#define MSR_IA32_SYSENTER_ESP     0x175
#define MSR_IA32_SYSENTER_EIP     0x176
#define MSR_IA32_MISC_ENABLE      0x1a0
#define MSR_IA32_CR_PAT           0x277
#define MSR_EFER                  0xc0000080
#define MSR_STAR                  0xc0000081
#define MSR_LSTAR                 0xc0000082
#define MSR_CSTAR                 0xc0000083
#define MSR_FMASK                 0xc0000084
#define MSR_KERNEL_GS_BASE        0xc0000102
#define MSR_TSC_AUX               0xc0000103
#define MSR_KVM_WALL_CLOCK_NEW    0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW   0x4b564d01

void x86_cpu_state_init(X86CpuState *st, const KvmState *kvm);
void x86_cpu_state_clear(X86CpuState *st);
/* The MSRs tern saves that this KVM supports; returns how many (<= max). */
unsigned x86_msrs_to_save(const KvmState *kvm, uint32_t *out, unsigned max);

bool x86_cpu_state_get(const KvmState *kvm, int vcpu_fd, X86CpuState *st, GError **errp);
bool x86_cpu_state_put(const KvmState *kvm, int vcpu_fd, const X86CpuState *st,
                       GError **errp);
/* The MSR value in st, or false if st does not hold it. */
bool x86_cpu_state_msr(const X86CpuState *st, uint32_t index, uint64_t *val);

/* Sets CPUID for a vCPU (KVM_SET_CPUID2). */
bool x86_cpu_set_cpuid(int vcpu_fd, const struct kvm_cpuid2 *c, GError **errp);

/* PVH entry (Xen's HVM direct boot ABI): 32-bit protected mode, paging off,
 * flat 4 GiB CS/DS/ES/SS, EIP = entry, EBX = hvm_start_info address. */
bool x86_cpu_setup_pvh(int vcpu_fd, uint32_t entry, uint32_t start_info, GError **errp);

#endif
