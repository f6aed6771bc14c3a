/*
 * vCPUs: one thread per vCPU running KVM_RUN, with a Paused/Running/Stopped
 * state machine driven from the main thread. Port and MMIO exits go to the
 * machine's I/O buses; shutdown, reset and KVM failures are reported through
 * a callback, after which the vCPU parks itself until told otherwise.
 *
 * vcpu_pause() returns only once the vCPU is outside KVM_RUN with any pending
 * I/O exit completed (it re-enters KVM_RUN once with immediate_exit set, as
 * KVM's API documentation requires), so its register state can be read.
 * Pause/resume/destroy must not be called from a vCPU thread.
 */
#ifndef ACCEL_KVM_KVM_VCPU_H
#define ACCEL_KVM_KVM_VCPU_H

#include "hw/core/iobus.h"
#include "accel/kvm/kvm.h"
#include "accel/kvm/kvm-coalesced.h"
#include "tern/common.h"

typedef enum {
    VCPU_PAUSED,     /* thread parked, state readable and writable */
    VCPU_RUNNING,    /* thread in or around KVM_RUN */
    VCPU_STOPPED,    /* thread exited; only vcpu_destroy remains */
} VcpuRunState;

typedef enum {
    VCPU_EVENT_SHUTDOWN,        /* KVM_SYSTEM_EVENT_SHUTDOWN */
    VCPU_EVENT_RESET,           /* triple fault or KVM_SYSTEM_EVENT_RESET */
    VCPU_EVENT_INTERNAL_ERROR,  /* KVM could not run the vCPU */
} VcpuEvent;

typedef struct VcpuHooks {
    IoBus *pio;
    IoBus *mmio;
    KvmCoalesced *coalesced;   /* replayed after every exit; may be NULL */
    /* Called on the vCPU thread; the vCPU parks itself afterwards. */
    void (*event)(void *opaque, unsigned index, VcpuEvent ev);
    void *opaque;
} VcpuHooks;

typedef struct Vcpu Vcpu;

/* Creates the KVM vCPU (id = APIC id = index); its thread starts paused. */
Vcpu *vcpu_create(KvmState *kvm, unsigned index, const VcpuHooks *hooks, GError **errp);
/* Stops and joins the thread, unmaps kvm_run, closes the fd. */
void vcpu_destroy(Vcpu *v);

int vcpu_fd(const Vcpu *v);
unsigned vcpu_index(const Vcpu *v);
VcpuRunState vcpu_run_state(Vcpu *v);
/* The vCPU thread's Linux thread id (gettid()), as QEMU reports it in
 * query-cpus-fast; 0 if the thread never started. */
int64_t vcpu_thread_id(Vcpu *v);
/* Names the vCPU thread (what ps and /proc show; cut to 15 bytes). */
void vcpu_set_thread_name(Vcpu *v, const char *name);

void vcpu_resume(Vcpu *v);
/* Asks the vCPU to leave KVM_RUN; pair with vcpu_wait_paused (lets a caller
 * kick every vCPU before waiting on the first). */
void vcpu_request_pause(Vcpu *v);
void vcpu_wait_paused(Vcpu *v);
void vcpu_pause(Vcpu *v);
/* Migration's auto-converge: make a running vCPU leave KVM_RUN and sleep
 * 'us' microseconds before entering it again; a pause ends the sleep. Any
 * thread but the vCPU's own. */
void vcpu_throttle_sleep(Vcpu *v, int64_t us);

/* Whole-machine helpers over an array of vCPUs. */
void vcpus_pause_all(Vcpu **v, unsigned n);
void vcpus_resume_all(Vcpu **v, unsigned n);

#endif
