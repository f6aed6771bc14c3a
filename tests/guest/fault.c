/*
 * Workload `fault`: raise one CPU exception from ring 3 on purpose, so tests
 * can check that exceptions are reported (`TG FAIL exception vector=...`,
 * exit rc 2). tg.fault=pf (read 256 GiB, above the identity map), ud (ud2)
 * or gp (hlt, privileged at CPL3).
 */
#include "tg.h"

static void fault_bsp(void)
{
    const char *kind = tg_arg_str("tg.fault", "pf");
    static volatile uint64_t unmapped = 0x4000000010; /* opaque to the compiler */

    tg_printf("TG fault %s\n", kind);
    if (!strcmp(kind, "pf")) {
        (void)*(volatile uint64_t *)unmapped;
    } else if (!strcmp(kind, "ud")) {
        __asm__ volatile("ud2");
    } else if (!strcmp(kind, "gp")) {
        __asm__ volatile("hlt");
    } else {
        tg_fail("bad argument tg.fault=%s (want pf, ud or gp)", kind);
    }
    tg_fail("fault %s raised no exception", kind);
}

TG_WORKLOAD(fault, .name = "fault", .bsp = fault_bsp);
