/*
 * Per-vCPU CPUID tables (target/i386/cpuid.h). Topology model: packages of
 * nr_cpus cores, one thread per core, APIC ID = vCPU index (the package is
 * the bits above the core ID); so the SMT level has 0 ID bits and the core
 * level x86_core_id_bits(nr_cpus).
 */
#include <string.h>

#include "hw/core/qom.h"
#include "target/i386/cpuid.h"

/* The CPU models: both are the host's CPU as KVM offers it (-cpu host). */
static const QomType type_host_cpu = {
    .name = "host-x86_64-cpu", .parent = "x86_64-cpu",
    .props = (const QomProp[]) { { "migratable", "bool", NULL }, { NULL, NULL, NULL } },
};
static const QomType type_max_cpu = {
    .name = "max-x86_64-cpu", .parent = "x86_64-cpu",
    .props = (const QomProp[]) { { "migratable", "bool", NULL }, { NULL, NULL, NULL } },
};
QOM_TYPE(type_host_cpu);
QOM_TYPE(type_max_cpu);

#define CPUID_1_ECX_X2APIC     (1u << 21)
#define CPUID_1_ECX_OSXSAVE    (1u << 27)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT        (1u << 28)
#define CPUID_7_0_ECX_OSPKE    (1u << 4)

#define TOPO_LEVEL_SMT  1
#define TOPO_LEVEL_CORE 2

unsigned x86_core_id_bits(unsigned nr_cpus)
{
    unsigned bits = 0;

    while ((1u << bits) < nr_cpus) {
        bits++;
    }
    return bits;
}

struct kvm_cpuid_entry2 *x86_cpuid_find(struct kvm_cpuid2 *c, uint32_t function,
                                        uint32_t index)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        bool indexed = e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

        if (e->function == function && (!indexed || e->index == index)) {
            return e;
        }
    }
    return NULL;
}

static bool is_amd(const struct kvm_cpuid2 *c)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];

        if (e->function == 0) {
            /* "AuthenticAMD" / "HygonGenuine": EBX starts "Auth" / "Hygo". */
            return e->ebx == 0x68747541 || e->ebx == 0x6f677948;
        }
    }
    return false;
}

static void fix_leaf1(struct kvm_cpuid_entry2 *e, const X86Topology *t)
{
    unsigned logical = 1u << x86_core_id_bits(t->nr_cpus);

    e->ebx = (e->ebx & 0x0000ffff) | ((logical & 0xff) << 16) | (t->apic_id << 24);
    e->ecx |= CPUID_1_ECX_HYPERVISOR | CPUID_1_ECX_X2APIC;
    e->ecx &= ~CPUID_1_ECX_OSXSAVE;   /* KVM derives it from CR4 */
    if (t->nr_cpus > 1) {
        e->edx |= CPUID_1_EDX_HTT;
    } else {
        e->edx &= ~CPUID_1_EDX_HTT;
    }
}

/* Deterministic cache parameters: which cores share each cache level. */
static void fix_leaf4(struct kvm_cpuid_entry2 *e, const X86Topology *t)
{
    unsigned cores = 1u << x86_core_id_bits(t->nr_cpus);
    unsigned level = (e->eax >> 5) & 7;
    unsigned sharing = level >= 3 ? cores : 1;

    if ((e->eax & 0x1f) == 0) {
        return;   /* no more caches */
    }
    e->eax &= 0x3fff;
    e->eax |= ((sharing - 1) & 0xfff) << 14;
    e->eax |= ((cores - 1) & 0x3f) << 26;
}

/* Extended topology (0xb and 0x1f use the same layout here). */
static void fill_topology_leaf(struct kvm_cpuid_entry2 *e, const X86Topology *t)
{
    unsigned bits = x86_core_id_bits(t->nr_cpus);

    e->flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e->edx = t->apic_id;
    switch (e->index) {
    case 0:
        e->eax = 0;
        e->ebx = 1;
        e->ecx = (TOPO_LEVEL_SMT << 8) | 0;
        break;
    case 1:
        e->eax = bits;
        e->ebx = t->nr_cpus;
        e->ecx = (TOPO_LEVEL_CORE << 8) | 1;
        break;
    default:
        e->eax = e->ebx = 0;
        e->ecx = e->index;
        break;
    }
}

static void fix_amd_leaves(struct kvm_cpuid_entry2 *e, const X86Topology *t)
{
    if (e->function == 0x80000008) {
        e->ecx = (e->ecx & ~0xf0ffu) | (x86_core_id_bits(t->nr_cpus) << 12) |
                 ((t->nr_cpus - 1) & 0xff);
    } else if (e->function == 0x8000001e) {
        unsigned bits = x86_core_id_bits(t->nr_cpus);

        e->eax = t->apic_id;
        /* One thread per core: the core id is the APIC id's core bits; each
         * package is a node of its own. */
        e->ebx = t->apic_id & ((1u << bits) - 1) & 0xff;
        e->ecx = (t->apic_id >> bits) & 0xff;
    }
}

/* Appends 0xb-style subleaves 0..2 for 'function'. */
static void add_topology_leaves(struct kvm_cpuid2 *c, uint32_t function,
                                const X86Topology *t)
{
    for (uint32_t i = 0; i < 3; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

        memset(e, 0, sizeof(*e));
        e->function = function;
        e->index = i;
        fill_topology_leaf(e, t);
    }
}

struct kvm_cpuid2 *x86_cpuid_build(const struct kvm_cpuid2 *supported,
                                   const X86Topology *t)
{
    /* Room for the entries kept plus up to six topology subleaves. */
    struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) +
                                     (supported->nent + 6) * sizeof(c->entries[0]));
    bool amd = is_amd(supported);
    bool has_0xb = false, has_0x1f = false;

    for (uint32_t i = 0; i < supported->nent; i++) {
        const struct kvm_cpuid_entry2 *s = &supported->entries[i];
        struct kvm_cpuid_entry2 *e;

        if (s->function == 0xb || s->function == 0x1f) {
            has_0xb |= s->function == 0xb;
            has_0x1f |= s->function == 0x1f;
            continue;   /* rebuilt below, whatever the host reports */
        }
        e = &c->entries[c->nent++];
        *e = *s;
        if (e->function == 1) {
            fix_leaf1(e, t);
        } else if (e->function == 4 && !amd) {
            fix_leaf4(e, t);
        } else if (e->function == 7 && e->index == 0) {
            e->ecx &= ~CPUID_7_0_ECX_OSPKE;   /* KVM derives it from CR4 */
        } else if (amd) {
            fix_amd_leaves(e, t);
        }
    }
    if (has_0xb) {
        add_topology_leaves(c, 0xb, t);
    }
    if (has_0x1f) {
        add_topology_leaves(c, 0x1f, t);
    }
    return c;
}
