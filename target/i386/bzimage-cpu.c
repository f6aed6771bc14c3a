/*
 * The CPU state the 64-bit Linux boot protocol enters with: long mode with
 * paging on, a GDT whose __BOOT_CS (0x10) and __BOOT_DS (0x18) are flat 4 GiB
 * segments, interrupts off, and identity page tables covering the low 4 GiB
 * (2 MiB pages), which includes the kernel's init_size range, boot_params and
 * the command line. The tables are written into guest RAM at fixed low
 * addresses (bzimage.h); the returned X86BootState is what KVM_SET_SREGS and
 * KVM_SET_REGS need.
 */
#include <string.h>

#include "target/i386/bzimage.h"
#include "tern/error.h"

#define X86_CR0_PE   (1ULL << 0)
#define X86_CR0_MP   (1ULL << 1)
#define X86_CR0_ET   (1ULL << 4)
#define X86_CR0_NE   (1ULL << 5)
#define X86_CR0_WP   (1ULL << 16)
#define X86_CR0_AM   (1ULL << 18)
#define X86_CR0_PG   (1ULL << 31)
#define X86_CR4_PAE  (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)

#define PTE_PRESENT  0x1ULL
#define PTE_WRITE    0x2ULL
#define PTE_PS       0x80ULL
#define BZ_TSS_SEL   0x20
#define BZ_GDT_ENTRIES 6          /* null, null, CS, DS, 16-byte TSS */

static const uint64_t bz_gdt[BZ_GDT_ENTRIES] = {
    0,
    0,
    0x00af9b000000ffffULL,    /* 0x10: 64-bit code, DPL0, execute/read */
    0x00cf93000000ffffULL,    /* 0x18: flat data, read/write */
    0x00008b0000000067ULL,    /* 0x20: busy 64-bit TSS at 0 (KVM needs a TR) */
    0,
};

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool code)
{
    return (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
        .present = 1, .dpl = 0, .db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0,
        .g = 1,
    };
}

static bool write_page_tables(GuestMemory *mem, GError **errp)
{
    uint64_t pml4[512] = { BZ_PDPT_ADDR | PTE_PRESENT | PTE_WRITE };
    uint64_t pdpt[512] = { 0 };
    g_autofree uint64_t *pd = g_new0(uint64_t, 4 * 512);

    for (unsigned i = 0; i < 4; i++) {
        pdpt[i] = (BZ_PD_ADDR + i * 4096) | PTE_PRESENT | PTE_WRITE;
    }
    for (unsigned i = 0; i < 4 * 512; i++) {
        pd[i] = ((uint64_t)i << 21) | PTE_PRESENT | PTE_WRITE | PTE_PS;
    }
    return guest_mem_write(mem, BZ_PML4_ADDR, pml4, sizeof(pml4), errp) &&
           guest_mem_write(mem, BZ_PDPT_ADDR, pdpt, sizeof(pdpt), errp) &&
           guest_mem_write(mem, BZ_PD_ADDR, pd, 4 * 512 * sizeof(*pd), errp);
}

bool x86_write_flat64_tables(GuestMemory *mem, X86BootState *st, GError **errp)
{
    /* The page tables are little-endian in guest memory: so is the host. */
    if (!guest_mem_write(mem, BZ_GDT_ADDR, bz_gdt, sizeof(bz_gdt), errp) ||
        !write_page_tables(mem, errp)) {
        return false;
    }
    memset(st, 0, sizeof(*st));
    st->cs = flat_seg(BZ_BOOT_CS, 0xb, true);
    st->ds = flat_seg(BZ_BOOT_DS, 0x3, false);
    st->es = st->fs = st->gs = st->ss = st->ds;
    st->tr = (struct kvm_segment){ .selector = BZ_TSS_SEL, .limit = 0x67,
                                   .type = 0xb, .present = 1 };
    st->ldt = (struct kvm_segment){ .type = 0x2, .present = 1, .limit = 0xffff,
                                    .unusable = 0 };
    st->gdt = (struct kvm_dtable){ .base = BZ_GDT_ADDR,
                                   .limit = sizeof(bz_gdt) - 1 };
    st->idt = (struct kvm_dtable){ .base = 0, .limit = 0 };
    st->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP |
              X86_CR0_AM | X86_CR0_PG;
    st->cr3 = BZ_PML4_ADDR;
    st->cr4 = X86_CR4_PAE;
    st->efer = X86_EFER_LME | X86_EFER_LMA;
    st->rflags = 0x2;
    st->rsp = BZ_STACK_TOP;
    return true;
}
