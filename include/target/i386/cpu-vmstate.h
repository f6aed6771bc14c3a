/*
 * A vCPU's migratable state ("cpu", one section per vCPU, instance = vCPU
 * index, tern's own layout version 1): everything KVM holds for it, read and
 * written as a unit by target/i386/cpu-state.h. The vCPU must be paused;
 * saving a running one is refused.
 *
 * Wire layout (big-endian):
 *   regs      18 x be64: rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags
 *   sregs     8 segments cs ds es fs gs ss tr ldt (be64 base, be32 limit,
 *             be16 selector, 9 x u8 type present dpl db s l g avl unusable),
 *             gdt idt (be64 base, be16 limit), be64 cr0 cr2 cr3 cr4 cr8
 *             efer apic_base, 4 x be64 pending-interrupt bitmap
 *   msrs      be32 n (<= 40), n x (be32 index, be64 value): TSC, sysenter,
 *             syscall, PAT, kvmclock, TSC deadline/adjust, ...
 *   xcrs      be32 n (<= 16), be32 flags, n x (be32 xcr, be64 value)
 *   xsave     be32 size, size bytes (KVM's XSAVE image; must match the
 *             destination's size)
 *   lapic     1024 bytes (the xAPIC register page)
 *   events    exception (4 x u8, be32 error code), interrupt (4 x u8),
 *             nmi (3 x u8), be32 sipi_vector, be32 flags, smi (4 x u8),
 *             u8 triple fault pending, u8 has payload, be64 payload
 *   mp_state  be32
 *   debugregs 4 x be64 db, be64 dr6, be64 dr7, be64 flags
 * and the subsection "cpu/tsc_khz" (be32 kHz) when KVM reports the rate: a
 * destination with another TSC rate scales the guest's TSC to it
 * (KVM_SET_TSC_KHZ) or, where it cannot, warns that guest time will drift.
 */
#ifndef TARGET_I386_CPU_VMSTATE_H
#define TARGET_I386_CPU_VMSTATE_H

#include "accel/kvm/kvm-vcpu.h"
#include "hw/core/device-list.h"
#include "target/i386/cpu-state.h"

/* One vCPU's architectural state as it migrates. */
typedef struct X86Cpu {
    const KvmState *kvm;
    Vcpu *vcpu;
    X86CpuState st;         /* the whole vCPU, read by pre_save */
    uint32_t tsc_khz;       /* the guest's TSC rate, 0 if KVM did not say */
} X86Cpu;

/* Registers the vCPU's state on dl (idstr "cpu", instance its index,
 * priority VMSTATE_PRIO_CPU: first on the wire). */
X86Cpu *x86_cpu_new(const KvmState *kvm, Vcpu *vcpu, DeviceList *dl);
void x86_cpu_free(X86Cpu *c);

#endif
