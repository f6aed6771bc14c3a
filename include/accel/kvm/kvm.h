/*
 * The KVM VM: /dev/kvm and the VM fd, checked for the API version and the
 * capabilities tern needs before anything else happens; memory slots; the
 * in-kernel irqchip (PIC, IOAPIC, LAPICs) and PIT; the GSI routing table with
 * MSI routes; irqfd and ioeventfd. vCPUs are in accel/kvm/kvm-vcpu.h.
 *
 * Everything here may be called from any thread unless noted; the routing
 * table and the slot table have their own lock.
 */
#ifndef ACCEL_KVM_KVM_H
#define ACCEL_KVM_KVM_H

#include <linux/kvm.h>

#include "hw/irq.h"
#include "tern/common.h"

#define KVM_MAX_SLOTS 32

typedef struct KvmSlot {
    uint64_t gpa;
    uint64_t size;         /* 0: slot unused */
    void *hva;
    uint32_t flags;        /* KVM_MEM_* */
} KvmSlot;

typedef struct KvmState {
    int fd;                          /* /dev/kvm */
    int vm_fd;
    int vcpu_mmap_size;
    unsigned max_vcpus;              /* KVM_CAP_MAX_VCPUS */
    unsigned xsave_size;             /* bytes of struct kvm_xsave to transfer */
    bool has_xcrs;
    bool has_xsave2;
    struct kvm_cpuid2 *supported_cpuid;
    struct kvm_msr_list *msr_list;   /* MSRs KVM can save and restore */

    GMutex lock;                     /* slots and routes */
    KvmSlot slots[KVM_MAX_SLOTS];
    struct kvm_irq_routing_entry *routes;
    unsigned nr_routes;
    unsigned next_msi_gsi;
    GHashTable *free_msi_gsis;       /* released GSIs, reused first */
} KvmState;

/* Opens /dev/kvm, checks version and capabilities, creates the VM. */
KvmState *kvm_init(GError **errp);
void kvm_destroy(KvmState *s);

/* Creates or replaces memory slot 'slot'; size 0 deletes it. */
bool kvm_set_slot(KvmState *s, unsigned slot, uint64_t gpa, uint64_t size,
                  void *hva, uint32_t flags, GError **errp);
/* Turns KVM_MEM_LOG_DIRTY_PAGES on or off for a slot (migration). */
bool kvm_slot_set_dirty_log(KvmState *s, unsigned slot, bool on, GError **errp);
/* Fetches and clears the slot's dirty bitmap (one bit per 4 KiB page, words
 * of 64 bits, DIV_ROUND_UP(pages, 64) of them). */
bool kvm_get_dirty_log(KvmState *s, unsigned slot, uint64_t *bitmap, GError **errp);

/* KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2 and the PC's GSI routes: GSI n to
 * PIC pin n (n < 16, n != 2) and IOAPIC pin n (n != 2), except GSI 0 (the
 * PIT) to IOAPIC pin 2, matching the IRQ0->GSI2 override in the MADT. */
bool kvm_create_irqchip(KvmState *s, GError **errp);
/* An IrqLine that drives 'gsi' through KVM_IRQ_LINE. */
IrqLine kvm_irq_line(KvmState *s, unsigned gsi);

/* MSI routes: allocate a GSI for (addr, data), change it, release it. */
int kvm_msi_route_add(KvmState *s, uint64_t addr, uint32_t data, GError **errp);
bool kvm_msi_route_update(KvmState *s, int gsi, uint64_t addr, uint32_t data,
                          GError **errp);
void kvm_msi_route_release(KvmState *s, int gsi);
bool kvm_signal_msi(KvmState *s, uint64_t addr, uint32_t data, GError **errp);

/* An eventfd that raises 'gsi' when signalled (resample_fd -1: edge). */
bool kvm_irqfd(KvmState *s, int efd, unsigned gsi, int resample_fd, bool assign,
               GError **errp);
/* An eventfd KVM signals on a guest write to [addr, addr+len) (len 0 for any
 * size on MMIO); datamatch restricts it to writes of 'data'. */
bool kvm_ioeventfd(KvmState *s, int efd, uint64_t addr, unsigned len, bool pio,
                   bool datamatch, uint64_t data, bool assign, GError **errp);

/* The VM-wide kvmclock (KVM_GET_CLOCK / KVM_SET_CLOCK) for migration. */
bool kvm_get_clock(KvmState *s, struct kvm_clock_data *out, GError **errp);
bool kvm_set_clock(KvmState *s, const struct kvm_clock_data *in, GError **errp);
/* The in-kernel PIC/IOAPIC and PIT state, for migration. */
bool kvm_get_irqchip(KvmState *s, struct kvm_irqchip *chip, GError **errp);
bool kvm_set_irqchip(KvmState *s, const struct kvm_irqchip *chip, GError **errp);
bool kvm_get_pit(KvmState *s, struct kvm_pit_state2 *pit, GError **errp);
bool kvm_set_pit(KvmState *s, const struct kvm_pit_state2 *pit, GError **errp);

#endif
