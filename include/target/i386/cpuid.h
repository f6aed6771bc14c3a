/*
 * The CPUID table each vCPU gets: KVM's supported set, with the topology
 * leaves (1, 4, 0xb, 0x1f and AMD's 0x80000008/0x8000001e) rewritten so that
 * -smp N,sockets=S shows S packages of N/S single-threaded cores, the vCPU's APIC ID
 * in every leaf that reports one, and the hypervisor bit set. Pure functions
 * over struct kvm_cpuid2, so they are unit-tested without /dev/kvm.
 */
#ifndef TARGET_I386_CPUID_H
#define TARGET_I386_CPUID_H

#include <linux/kvm.h>

#include "tern/common.h"

typedef struct X86Topology {
    unsigned nr_cpus;      /* cores in the vCPU's package, one thread each */
    unsigned apic_id;      /* this vCPU's (= its index) */
} X86Topology;

/* Bits of the APIC ID that number the cores: ceil(log2(nr_cpus)). */
unsigned x86_core_id_bits(unsigned nr_cpus);

/* A new table for one vCPU built from 'supported'; g_free() it. */
struct kvm_cpuid2 *x86_cpuid_build(const struct kvm_cpuid2 *supported,
                                   const X86Topology *topo);

/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *x86_cpuid_find(struct kvm_cpuid2 *c, uint32_t function,
                                        uint32_t index);

#endif
