/*
 * Unit tests for the per-vCPU CPUID tables (target/i386/cpuid.c) over a
 * synthetic "supported" table, so no /dev/kvm is needed: APIC IDs and counts
 * in leaf 1, cache sharing in leaf 4, the 0xb/0x1f levels, and that leaves
 * the host lacks are not invented.
 */
#include <string.h>

#include "target/i386/cpuid.h"

static struct kvm_cpuid2 *fake_supported(bool with_0xb, bool with_0x1f)
{
    struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + 16 * sizeof(c->entries[0]));
    struct kvm_cpuid_entry2 e[] = {
        { .function = 0, .eax = 0x1f, .ebx = 0x756e6547 },    /* GenuineIntel */
        { .function = 1, .eax = 0x806f8, .ebx = 0xff0800, .ecx = 0x08000000,
          .edx = 0 },
        { .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0xfc004121 },                                  /* L1d */
        { .function = 4, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0xfc01c163 },                                  /* L3 */
        { .function = 4, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 0 },                                           /* end */
        { .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 7 },
        { .function = 0x1f, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
          .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 7 },
        { .function = 0x40000000, .eax = 0x40000001 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(e); i++) {
        if ((e[i].function == 0xb && !with_0xb) || (e[i].function == 0x1f && !with_0x1f)) {
            continue;
        }
        c->entries[c->nent++] = e[i];
    }
    return c;
}

static void test_core_bits(void)
{
    g_assert_cmpuint(x86_core_id_bits(1), ==, 0);
    g_assert_cmpuint(x86_core_id_bits(2), ==, 1);
    g_assert_cmpuint(x86_core_id_bits(3), ==, 2);
    g_assert_cmpuint(x86_core_id_bits(4), ==, 2);
    g_assert_cmpuint(x86_core_id_bits(5), ==, 3);
    g_assert_cmpuint(x86_core_id_bits(255), ==, 8);
}

static void test_leaf1(void)
{
    g_autofree struct kvm_cpuid2 *sup = fake_supported(true, true);
    X86Topology t = { .nr_cpus = 3, .apic_id = 2 };
    g_autofree struct kvm_cpuid2 *c = x86_cpuid_build(sup, &t);
    struct kvm_cpuid_entry2 *e = x86_cpuid_find(c, 1, 0);

    g_assert_nonnull(e);
    g_assert_cmpuint(e->ebx >> 24, ==, 2);              /* initial APIC ID */
    g_assert_cmpuint((e->ebx >> 16) & 0xff, ==, 4);     /* addressable IDs */
    g_assert_cmphex(e->ebx & 0xffff, ==, 0x0800);       /* CLFLUSH etc. kept */
    g_assert_true(e->edx & (1u << 28));                 /* HTT with >1 CPU */
    g_assert_true(e->ecx & (1u << 21));                 /* x2APIC */
    g_assert_true(e->ecx & (1u << 31));                 /* hypervisor */
    g_assert_false(e->ecx & (1u << 27));                /* OSXSAVE is dynamic */
}

static void test_single_cpu(void)
{
    g_autofree struct kvm_cpuid2 *sup = fake_supported(true, false);
    X86Topology t = { .nr_cpus = 1, .apic_id = 0 };
    g_autofree struct kvm_cpuid2 *c = x86_cpuid_build(sup, &t);
    struct kvm_cpuid_entry2 *e = x86_cpuid_find(c, 1, 0);

    g_assert_false(e->edx & (1u << 28));
    g_assert_cmpuint((e->ebx >> 16) & 0xff, ==, 1);
    e = x86_cpuid_find(c, 0xb, 1);
    g_assert_cmpuint(e->eax, ==, 0);
    g_assert_cmpuint(e->ebx, ==, 1);
}

static void test_leaf4(void)
{
    g_autofree struct kvm_cpuid2 *sup = fake_supported(true, true);
    X86Topology t = { .nr_cpus = 4, .apic_id = 1 };
    g_autofree struct kvm_cpuid2 *c = x86_cpuid_build(sup, &t);
    struct kvm_cpuid_entry2 *l1 = x86_cpuid_find(c, 4, 0);
    struct kvm_cpuid_entry2 *l3 = x86_cpuid_find(c, 4, 1);

    g_assert_cmpuint(l1->eax >> 26, ==, 3);              /* 4 cores - 1 */
    g_assert_cmpuint((l1->eax >> 14) & 0xfff, ==, 0);     /* L1 per core */
    g_assert_cmpuint(l1->eax & 0x3fff, ==, 0x0121);       /* type/level kept */
    g_assert_cmpuint(l3->eax >> 26, ==, 3);
    g_assert_cmpuint((l3->eax >> 14) & 0xfff, ==, 3);     /* L3 shared by 4 */
    g_assert_cmpuint(x86_cpuid_find(c, 4, 2)->eax, ==, 0);
}

static void check_topology_leaf(struct kvm_cpuid2 *c, uint32_t fn, const X86Topology *t)
{
    struct kvm_cpuid_entry2 *smt = x86_cpuid_find(c, fn, 0);
    struct kvm_cpuid_entry2 *core = x86_cpuid_find(c, fn, 1);
    struct kvm_cpuid_entry2 *end = x86_cpuid_find(c, fn, 2);

    g_assert_nonnull(smt);
    g_assert_nonnull(core);
    g_assert_nonnull(end);
    g_assert_cmpuint(smt->eax, ==, 0);
    g_assert_cmpuint(smt->ebx, ==, 1);
    g_assert_cmphex(smt->ecx, ==, 0x100);
    g_assert_cmpuint(smt->edx, ==, t->apic_id);
    g_assert_cmpuint(core->eax, ==, x86_core_id_bits(t->nr_cpus));
    g_assert_cmpuint(core->ebx, ==, t->nr_cpus);
    g_assert_cmphex(core->ecx, ==, 0x201);
    g_assert_cmpuint(core->edx, ==, t->apic_id);
    g_assert_cmphex((end->ecx >> 8) & 0xff, ==, 0);       /* invalid level */
    g_assert_cmpuint(end->ebx, ==, 0);
}

static void test_topology_leaves(void)
{
    g_autofree struct kvm_cpuid2 *sup = fake_supported(true, true);

    for (unsigned n = 1; n <= 8; n++) {
        for (unsigned id = 0; id < n; id++) {
            X86Topology t = { .nr_cpus = n, .apic_id = id };
            g_autofree struct kvm_cpuid2 *c = x86_cpuid_build(sup, &t);

            check_topology_leaf(c, 0xb, &t);
            check_topology_leaf(c, 0x1f, &t);
            /* Exactly three subleaves of each, no leftovers of the host's. */
            unsigned count = 0;
            for (uint32_t i = 0; i < c->nent; i++) {
                count += c->entries[i].function == 0xb;
            }
            g_assert_cmpuint(count, ==, 3);
        }
    }
}

static void test_no_invented_leaves(void)
{
    g_autofree struct kvm_cpuid2 *sup = fake_supported(false, false);
    X86Topology t = { .nr_cpus = 2, .apic_id = 1 };
    g_autofree struct kvm_cpuid2 *c = x86_cpuid_build(sup, &t);

    g_assert_null(x86_cpuid_find(c, 0xb, 0));
    g_assert_null(x86_cpuid_find(c, 0x1f, 0));
    g_assert_nonnull(x86_cpuid_find(c, 0x40000000, 0));
    g_assert_cmpuint(c->nent, ==, sup->nent);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cpuid/core-bits", test_core_bits);
    g_test_add_func("/cpuid/leaf1", test_leaf1);
    g_test_add_func("/cpuid/single-cpu", test_single_cpu);
    g_test_add_func("/cpuid/leaf4", test_leaf4);
    g_test_add_func("/cpuid/topology-leaves", test_topology_leaves);
    g_test_add_func("/cpuid/no-invented-leaves", test_no_invented_leaves);
    return g_test_run();
}
