/*
 * The guest kit's interrupt tables: tg_ring0_cpu_setup() gives the calling
 * CPU its TSS (ring 0, a few dozen instructions: this code is emulated at
 * ~1 us per instruction on the PVM host), tg_idt_init() fills the IDT from
 * ring 3 (the BSP's first act, before any interrupt source is enabled;
 * entry.S has already loaded IDTR), and tg_exception_report() prints a CPU
 * exception as a TG FAIL line and exits. Each TSS carries a full I/O
 * permission bitmap of zeros, which is how ring 3 reaches its ports: on the
 * PVM host IOPL is ignored at CPL3 but the bitmap is honoured.
 */
#include "internal.h"

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
    uint8_t iomap[65536 / 8];     /* 0 = port allowed at CPL3 */
    uint8_t iomap_end;            /* the CPU reads one byte past the map */
} __attribute__((packed, aligned(64)));

struct idt_gate {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t reserved;
} __attribute__((packed));

/* The interrupt frame as exc_common hands it over. */
struct exc_frame {
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

extern uint64_t tg_gdt_tss[TG_MAX_CPUS * 2];
extern const uint64_t tg_timer_stubs[TG_MAX_CPUS];
extern const uint64_t tg_irq_stubs[TG_NR_IRQ_VECS];
extern const uint64_t tg_exc_stubs[32];
extern char tg_bp_stub[], tg_spurious_stub[];

uint8_t tg_r0_stacks[TG_MAX_CPUS][1 << TG_R0_STACK_SHIFT] __attribute__((aligned(16)));
uint8_t tg_user_stacks[TG_MAX_CPUS][1 << TG_U_STACK_SHIFT] __attribute__((aligned(16)));
static struct tss tss[TG_MAX_CPUS];
struct idt_gate tg_idt[256];        /* IDTR points here from entry.S */

void tg_ring0_cpu_setup(unsigned cpu);
void tg_exception_report(struct exc_frame *f);

static void set_gate(unsigned vec, uint64_t handler, unsigned dpl)
{
    tg_idt[vec] = (struct idt_gate){
        .off_lo = handler & 0xffff,
        .sel = TG_SEL_CODE64,
        .type = 0x8e | dpl << 5,          /* present 64-bit interrupt gate */
        .off_mid = (handler >> 16) & 0xffff,
        .off_hi = handler >> 32,
    };
}

void tg_ring0_cpu_setup(unsigned cpu)
{
    uint64_t base = (uint64_t)&tss[cpu];
    uint64_t limit = sizeof(tss[cpu]) - 1;

    tss[cpu].rsp[0] = (uint64_t)tg_r0_stacks[cpu + 1];
    tss[cpu].iomap_base = offsetof(struct tss, iomap);
    tss[cpu].iomap_end = 0xff;
    tg_gdt_tss[cpu * 2] = (limit & 0xffff) | (base & 0xffffff) << 16 |
                          0x89UL << 40 |             /* present, 64-bit TSS */
                          ((limit >> 16) & 0xf) << 48 | (base >> 24 & 0xff) << 56;
    tg_gdt_tss[cpu * 2 + 1] = base >> 32;
}

void tg_idt_init(void)
{
    for (unsigned cpu = 0; cpu < TG_MAX_CPUS; cpu++) {
        set_gate(TG_VEC_TIMER + cpu, tg_timer_stubs[cpu], 0);
    }
    for (unsigned v = 0; v < 32; v++) {
        set_gate(v, tg_exc_stubs[v], 0);
    }
    set_gate(3, (uint64_t)tg_bp_stub, 3);    /* int3: ring 3 waits for an IRQ */
    for (unsigned n = 0; n < TG_NR_IRQ_VECS; n++) {
        set_gate(TG_VEC_IRQ + n, tg_irq_stubs[n], 0);
    }
    set_gate(TG_VEC_SPURIOUS, (uint64_t)tg_spurious_stub, 0);
}

void tg_exception_report(struct exc_frame *f)
{
    uint64_t cr2;
    char line[192];
    int n;

    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    n = tg_snprintf(line, sizeof(line),
                    "TG FAIL exception vector=%lu error=0x%lx rip=0x%lx cs=0x%lx "
                    "rsp=0x%lx cr2=0x%lx apic=%u\nTG done rc=2\n",
                    f->vector, f->error, f->rip, f->cs, f->rsp, cr2, tg_lapic_id());
    tg_console_write(line, (size_t)n);
    tg_outl(TG_DEBUG_EXIT_PORT, 2);
}
