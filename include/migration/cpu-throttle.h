/*
 * Auto-converge's vCPU throttle: while a percentage P is set, a ticker
 * thread makes every running vCPU sleep P/(100-P) of a 10 ms slice per
 * period of 10 ms/(1-P/100), so the guest runs (100-P) % of the time, as
 * QEMU's cpu-throttle does. vCPUs leave KVM_RUN through their kick
 * (vcpu_throttle_sleep); a pause or stop of the VM ends a sleep at once.
 */
#ifndef MIGRATION_CPU_THROTTLE_H
#define MIGRATION_CPU_THROTTLE_H

#include "accel/kvm/kvm-vcpu.h"

#define CPU_THROTTLE_SLICE_US   (10 * 1000)

typedef struct CpuThrottle CpuThrottle;

/* The vCPU array must outlive the throttle. */
CpuThrottle *cpu_throttle_new(Vcpu **vcpus, unsigned n);
/* Stops the ticker (joins its thread). */
void cpu_throttle_free(CpuThrottle *t);
/* 0 stops throttling; values above 99 are taken as 99. Any thread. */
void cpu_throttle_set(CpuThrottle *t, unsigned pct);
unsigned cpu_throttle_get(CpuThrottle *t);
/* The sleep per slice for 'pct', in microseconds. */
int64_t cpu_throttle_sleep_us(unsigned pct);

#endif
