/*
 * The guest kit's ring-3 start: every CPU arrives in tg_main() from
 * entry.S. The BSP reads the boot information and the command line, sets up
 * the interrupt controllers, starts the APs and waits for them to check in,
 * then runs the chosen workload; each AP starts its own timer, checks in,
 * and runs the workload's AP part once the BSP has chosen it.
 */
#include "internal.h"

#define AP_CHECKIN_SECONDS 2

volatile uint64_t tg_ticks[TG_MAX_CPUS];
volatile uint64_t tg_irq_counts[TG_NR_IRQ_VECS];

extern const struct tg_workload __tg_workloads_start[], __tg_workloads_end[];

static struct {
    unsigned hz;
    unsigned online;
    uint64_t deadline;                          /* BSP ticks; 0 = none */
    const struct tg_workload *workload;         /* set once: APs may go */
} kit;

void tg_main(unsigned cpu);

unsigned tg_hz(void)
{
    return kit.hz;
}

unsigned tg_nr_cpus(void)
{
    return __atomic_load_n(&kit.online, __ATOMIC_ACQUIRE);
}

void tg_check_deadline(void)
{
    if (kit.deadline && tg_now_ticks() >= kit.deadline) {
        tg_exit(0);
    }
}

static const struct tg_workload *find_workload(const char *name)
{
    for (const struct tg_workload *w = __tg_workloads_start; w < __tg_workloads_end; w++) {
        if (!strcmp(w->name, name)) {
            return w;
        }
    }
    return NULL;
}

static void check_in(unsigned cpu)
{
    __atomic_add_fetch(&kit.online, 1, __ATOMIC_ACQ_REL);
    tg_printf("TG cpu %u online apic=%u\n", cpu, tg_lapic_id());
}

static void wait_for_aps(unsigned want)
{
    uint64_t until = tg_now_ticks() + AP_CHECKIN_SECONDS * kit.hz;

    tg_start_aps();
    while (tg_nr_cpus() < want) {
        if (tg_now_ticks() >= until) {
            tg_fail("smp online=%u want=%u (APs did not check in within %us)",
                    tg_nr_cpus(), want, AP_CHECKIN_SECONDS);
        }
        tg_wait_irq();
    }
}

static void bsp_main(void)
{
    tg_idt_init();
    if (!tg_boot_info_init()) {
        tg_fail("boot: no PVH hvm_start_info at 0x%x (bad magic)", tg_start_info_paddr);
    }
    tg_args_init(tg_boot_cmdline());
    uint64_t hz = tg_arg_u64("tg.hz", 100);
    if (hz < 10 || hz > 1000) {
        tg_fail("bad argument tg.hz=%lu (want 10..1000)", hz);
    }
    kit.hz = (unsigned)hz;
    tg_lapic_init(0, kit.hz);
    check_in(0);

    unsigned acpi_cpus = tg_acpi_count_cpus();
    if (acpi_cpus > TG_MAX_CPUS) {
        tg_printf("TG warn MADT lists %u CPUs, the kit runs %u\n", acpi_cpus, TG_MAX_CPUS);
        acpi_cpus = TG_MAX_CPUS;
    }
    uint64_t want = tg_arg_u64("tg.cpus", acpi_cpus ? acpi_cpus : 1);
    if (want < 1 || want > TG_MAX_CPUS) {
        tg_fail("bad argument tg.cpus=%lu (want 1..%u)", want, TG_MAX_CPUS);
    }
    if (want > 1) {
        wait_for_aps((unsigned)want);
    }

    const char *name = tg_arg_str("tg.workload", "idle");
    const struct tg_workload *w = find_workload(name);
    if (!w) {
        tg_fail("unknown workload tg.workload=%s", name);
    }
    uint64_t seconds = tg_arg_u64("tg.seconds", 0);
    kit.deadline = seconds ? tg_now_ticks() + seconds * kit.hz : 0;
    __atomic_store_n(&kit.workload, w, __ATOMIC_RELEASE);
    tg_printf("TG ready workload=%s cpus=%u hz=%u\n", name, tg_nr_cpus(), kit.hz);
    w->bsp();
    tg_exit(0);
}

static void ap_main(unsigned cpu)
{
    const struct tg_workload *w;

    tg_lapic_init(cpu, kit.hz);
    check_in(cpu);
    while (!(w = __atomic_load_n(&kit.workload, __ATOMIC_ACQUIRE))) {
        tg_wait_irq();
    }
    if (w->ap) {
        w->ap(cpu);
    }
    for (;;) {
        tg_wait_irq();
    }
}

void tg_main(unsigned cpu)
{
    if (cpu == 0) {
        bsp_main();
    } else {
        ap_main(cpu);
    }
    for (;;) {
        tg_wait_irq();
    }
}
