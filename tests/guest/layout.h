/*
 * The guest kit's fixed layout, shared by the assembly entry code and the C
 * side: CPU limits, segment selectors, interrupt vectors and the physical
 * addresses of the devices and of the AP trampoline.
 */
#ifndef TG_LAYOUT_H
#define TG_LAYOUT_H

#define TG_MAX_CPUS        16
#define TG_R0_STACK_SHIFT  13          /* 8 KiB ring-0 stack per CPU */
#define TG_U_STACK_SHIFT   15          /* 32 KiB ring-3 stack per CPU */

#define TG_SEL_CODE32      0x08
#define TG_SEL_DATA        0x10
#define TG_SEL_CODE64      0x18
#define TG_SEL_UDATA       0x20        /* used with RPL 3 */
#define TG_SEL_UCODE       0x28        /* used with RPL 3 */
#define TG_SEL_TSS0        0x30        /* 16-byte descriptor per CPU */

#define TG_VEC_IRQ         0x30        /* 16 vectors counting IOAPIC/MSI IRQs */
#define TG_NR_IRQ_VECS     16
#define TG_VEC_TIMER       0x40        /* + cpu: each CPU's LAPIC timer */
#define TG_VEC_SPURIOUS    0xff

#define TG_TRAMPOLINE_ADDR 0x8000      /* SIPI vector 0x08 */
#define TG_IMAGE_BASE      0x100000UL  /* the ELF is linked here */
#define TG_HEAP_BASE       0x200000UL  /* tg_alloc() range, after the image */
#define TG_HEAP_END        0x400000UL  /* `dirty` generations start here */
#define TG_LAPIC_BASE      0xfee00000UL
#define TG_IOAPIC_BASE     0xfec00000UL

#endif
