/*
 * KVM's coalesced I/O ring (accel/kvm/kvm-coalesced.c): guest writes to a
 * registered zone are queued by KVM in a page shared with tern instead of
 * exiting to userspace, and replayed onto the port-I/O or MMIO bus in the
 * order the guest made them. Only write-only side effects may be coalesced:
 * tern uses it for COM1's transmit register, whose bytes would otherwise
 * cost one exit each.
 *
 * Replay points: every vCPU exit (before the exit itself is dispatched, so no
 * access overtakes an earlier queued write), machine pause and teardown, and
 * a timer on the machine's main context, since a guest that writes and then
 * halts in the kernel makes no further exit: every 1 ms while writes keep
 * arriving, backing off to 32 ms while the ring stays empty.
 */
#ifndef ACCEL_KVM_KVM_COALESCED_H
#define ACCEL_KVM_KVM_COALESCED_H

#include <linux/kvm.h>

#include "hw/core/iobus.h"
#include "accel/kvm/kvm.h"

typedef struct KvmCoalesced KvmCoalesced;

/* NULL where KVM lacks KVM_CAP_COALESCED_PIO: writes then exit as before. */
KvmCoalesced *kvm_coalesced_new(KvmState *kvm, IoBus *pio, IoBus *mmio,
                                GMainContext *ctx);
/* Maps the ring through a vCPU fd (it is shared by the VM's vCPUs). */
bool kvm_coalesced_attach(KvmCoalesced *c, int vcpu_fd, GError **errp);
/* Queues guest port writes to [port, port+len) from now on; starts the timer. */
bool kvm_coalesced_add_pio(KvmCoalesced *c, uint16_t port, unsigned len,
                           GError **errp);
/* Replays what is queued; any thread. Returns the number of writes. NULL-safe. */
unsigned kvm_coalesced_flush(KvmCoalesced *c);
/* Replays what is left, then unmaps the ring (vCPUs must be stopped). */
void kvm_coalesced_free(KvmCoalesced *c);

/* The replay itself, on any ring of 'max' entries (unit tests use a fake):
 * entries from first up to last, then first = last. */
unsigned kvm_coalesced_ring_replay(struct kvm_coalesced_mmio_ring *ring, uint32_t max,
                                   IoBus *pio, IoBus *mmio);

#endif
