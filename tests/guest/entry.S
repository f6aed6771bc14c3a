/*
 * Ring-0 entry code of the guest kit: the PVH note, the 32-bit PVH entry and
 * the real-mode AP trampoline, the switch to long mode shared by every CPU,
 * the drop to ring 3 with iretq, and the interrupt stubs. Ring 0 is emulated
 * at ~1 us per instruction on the PVM host, so every path here is a handful
 * of instructions: the page tables are built at link time (identity map of
 * 0-8 GiB, 2 MiB pages, user-accessible, the 3-4 GiB MMIO hole uncached;
 * nothing above 8 GiB), each CPU sets up only its own TSS, and ring 3 fills
 * the IDT (ring0.c).
 */
#include "layout.h"

/* PVH: Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (18). QEMU reads the descriptor
 * as a native-width pointer, so it is 8 bytes. */
	.section .note.Xen, "a"
	.balign 4
	.long 4, 8, 18
	.asciz "Xen"
	.balign 4
	.quad pvh_entry

	.section .text.boot, "ax"
	.code32
/* PVH entry: 32-bit protected mode, paging off, %ebx = hvm_start_info. */
	.globl pvh_entry
pvh_entry:
	cli
	movl %ebx, tg_start_info_paddr
	lgdt tg_gdt_ptr
	ljmp $TG_SEL_CODE32, $pm32_common

/* BSP and APs: enable PAE paging and long mode. */
pm32_common:
	movl $TG_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $0x20, %eax                 /* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx          /* EFER.LME */
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	andl $0x9fffffff, %eax          /* CD/NW stay set after INIT: clear them */
	orl $0x80000001, %eax           /* PG | PE */
	movl %eax, %cr0
	ljmp $TG_SEL_CODE64, $lm64_common

	.code64
/* Take a CPU index, pick the stacks, load IDT and TSS, iretq to tg_main. */
lm64_common:
	movl $TG_SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $1, %eax
	lock xaddl %eax, tg_cpu_counter(%rip)
	cmpl $TG_MAX_CPUS, %eax
	jae park
	movl %eax, %ebx
	movl %eax, %ecx
	shlq $TG_R0_STACK_SHIFT, %rcx
	leaq tg_r0_stacks + (1 << TG_R0_STACK_SHIFT)(%rip), %rsp
	addq %rcx, %rsp
	testl %ebx, %ebx
	jnz 1f
	/* BSP: firmware (SeaBIOS on q35) may leave the 8259 routing the PIT to
	 * vector 8 through LINT0; silence both before IF=1 in ring 3. */
	movb $0xff, %al
	outb %al, $0x21
	outb %al, $0xa1
	movabsq $(TG_LAPIC_BASE + 0x350), %rax
	movl $0x10000, (%rax)
1:	lidt tg_idt_ptr(%rip)           /* filled by the BSP in ring 3 */
	movl %ebx, %edi
	call tg_ring0_cpu_setup         /* this CPU's TSS and its descriptor */
	movl %ebx, %eax
	shll $4, %eax
	addl $TG_SEL_TSS0, %eax
	ltr %ax
	movl %ebx, %ecx
	shlq $TG_U_STACK_SHIFT, %rcx
	leaq tg_user_stacks + (1 << TG_U_STACK_SHIFT) - 8(%rip), %rdx
	addq %rcx, %rdx                 /* as if called: rsp = 8 mod 16 */
	pushq $(TG_SEL_UDATA | 3)
	pushq %rdx
	pushq $0x202                    /* IF */
	pushq $(TG_SEL_UCODE | 3)
	leaq tg_main(%rip), %rax
	pushq %rax
	movl %ebx, %edi
	iretq
park:
	cli
	hlt
	jmp park

/* Real-mode AP trampoline, copied to TG_TRAMPOLINE_ADDR by the BSP. */
	.code16
	.globl tg_trampoline_start, tg_trampoline_end
tg_trampoline_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl TG_TRAMPOLINE_ADDR + (tramp_gdt_ptr - tg_trampoline_start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $TG_SEL_CODE32, $pm32_common
	.balign 8
tramp_gdt_ptr:
	.word tg_gdt_end - tg_gdt - 1
	.long tg_gdt
tg_trampoline_end:

	.code64
	.text
/* #BP (int3) from ring 3 is the kit's only call into ring 0: wait for the
 * next interrupt. */
	.globl tg_bp_stub
tg_bp_stub:
	sti
	hlt
	iretq

	.globl tg_spurious_stub
tg_spurious_stub:
	iretq

/* LAPIC EOI then return; %rax is saved by the caller stub. */
#define EOI_AND_RETURN                       \
	movabsq $(TG_LAPIC_BASE + 0xb0), %rax; \
	movl $0, (%rax);                     \
	popq %rax;                           \
	iretq

/* One timer vector per CPU, so the handler knows whose tick it is. */
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
timer_\n:
	incq tg_ticks + 8 * \n(%rip)
	pushq %rax
	EOI_AND_RETURN
	.endr

	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
irq_\n:
	incq tg_irq_counts + 8 * \n(%rip)
	pushq %rax
	EOI_AND_RETURN
	.endr

/* Exceptions: push a zero error code where the CPU pushes none, then the
 * vector, and report from C (never returns). */
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
exc_\v:
	.if (\v == 8) || (\v == 10) || (\v == 11) || (\v == 12) || (\v == 13) || (\v == 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushq $0
	.endif
	pushq $\v
	jmp exc_common
	.endr

exc_common:
	movq %rsp, %rdi
	andq $-16, %rsp
	call tg_exception_report
	jmp park

	.section .rodata
	.balign 8
	.globl tg_timer_stubs, tg_irq_stubs, tg_exc_stubs
tg_timer_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	.quad timer_\n
	.endr
tg_irq_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	.quad irq_\n
	.endr
tg_exc_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_\v
	.endr

	.data
	.balign 16
	.globl tg_gdt, tg_gdt_tss, tg_gdt_ptr
tg_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff        /* 0x08 code, 32-bit */
	.quad 0x00cf92000000ffff        /* 0x10 data */
	.quad 0x00af9a000000ffff        /* 0x18 code, 64-bit */
	.quad 0x00cff2000000ffff        /* 0x20 user data */
	.quad 0x00affa000000ffff        /* 0x28 user code, 64-bit */
tg_gdt_tss:
	.fill TG_MAX_CPUS * 2, 8, 0     /* filled by tg_ring0_cpu_setup */
tg_gdt_end:
	.balign 8
tg_gdt_ptr:
	.word tg_gdt_end - tg_gdt - 1
	.quad tg_gdt
	.balign 8
tg_idt_ptr:
	.word 256 * 16 - 1
	.quad tg_idt

	.globl tg_start_info_paddr, tg_cpu_counter
tg_start_info_paddr:
	.long 0
tg_cpu_counter:
	.long 0

/* Page tables: PML4 -> PDPT -> 8 PDs of 2 MiB pages. Page 0 stays mapped:
 * loaders put boot data there (QEMU's PVH option ROM on q35 does). */
	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.irp i, 0,1,2,3,4,5,6,7
	.quad pd + \i * 4096 + 0x7
	.endr
	.fill 504, 8, 0
pd:
	.set addr, 0
	.rept 512 * 8
	.if (addr >= 0xc0000000) && (addr < 0x100000000)
	.quad addr | 0x9f               /* P RW US PWT PCD PS */
	.else
	.quad addr | 0x87               /* P RW US PS */
	.endif
	.set addr, addr + 0x200000
	.endr
	.section .note.GNU-stack, "", @progbits
