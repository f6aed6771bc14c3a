/*
 * Migratable state of the devices KVM emulates in the kernel: the two 8259
 * PICs and the IOAPIC (KVM_GET/SET_IRQCHIP), the 8254 PIT (KVM_GET/SET_PIT2)
 * and the VM-wide kvmclock (KVM_GET/SET_CLOCK).
 *
 *   idstr     instance  layout
 *   "i8259"   0, 1      QEMU's "i8259" v1: 16 x u8 (last_irr irr imr isr
 *                       priority_add irq_base read_reg_select poll
 *                       special_mask init_state auto_eoi rotate_on_auto_eoi
 *                       special_fully_nested_mode init4 single_mode elcr)
 *   "ioapic"  0         QEMU's "ioapic" v3: u8 id | u8 ioregsel | 8 unused
 *                       bytes | be32 irr | 24 x be64 redirection entries
 *   "kvm-pit" 0         tern v1: be32 flags | 3 x channel (be32 count,
 *                       be16 latched_count, 10 x u8 latch/status/mode
 *                       fields, be64 ns since the count was loaded)
 *   "kvmclock" 0        QEMU's "kvmclock" v1: be64 clock (ns) + subsection
 *                       "kvmclock/clock_is_reliable" (u8)
 * The vCPUs must be paused while these are saved or loaded. Each chip has a
 * user-space object here that models it: pre_save reads the kernel's copy
 * into it, post_load checks it and writes it back.
 */
#ifndef ACCEL_KVM_KVM_IRQCHIP_STATE_H
#define ACCEL_KVM_KVM_IRQCHIP_STATE_H

#include "hw/core/device-list.h"
#include "accel/kvm/kvm.h"

/* The models, one per chip: what the descriptions save and load. */
typedef struct KvmPic {
    KvmState *kvm;
    unsigned chip_id;                  /* KVM_IRQCHIP_PIC_MASTER or _SLAVE */
    uint8_t last_irr, irr, imr, isr, priority_add, irq_base;
    uint8_t read_reg_select, poll, special_mask, init_state, auto_eoi;
    uint8_t rotate_on_auto_eoi, special_fully_nested_mode, init4;
    uint8_t single_mode, elcr;
} KvmPic;

#define KVM_IOAPIC_PINS 24

typedef struct KvmIoapic {
    KvmState *kvm;
    uint8_t id, ioregsel;
    uint8_t unused[8];                 /* qemu-kvm's old fields, always 0 */
    uint32_t irr;
    uint64_t redirtbl[KVM_IOAPIC_PINS];
} KvmIoapic;

typedef struct KvmPitChannel {
    uint32_t count;                    /* 1..0x10000 */
    uint16_t latched_count;
    uint8_t count_latched, status_latched, status, read_state, write_state;
    uint8_t write_latch, rw_mode, mode, bcd, gate;
    int64_t load_age_ns;               /* how long ago the count was loaded */
} KvmPitChannel;

typedef struct KvmPit {
    KvmState *kvm;
    uint32_t flags;                    /* KVM_PIT_FLAGS_* */
    KvmPitChannel channels[3];
} KvmPit;

typedef struct KvmClock {
    KvmState *kvm;
    uint64_t clock;
    bool reliable;                     /* the host's TSC clock was stable */
} KvmClock;

/* All four, bound to one VM. */
typedef struct KvmChips {
    KvmPic pic[2];
    KvmIoapic ioapic;
    KvmPit pit;
    KvmClock clock;
} KvmChips;

/* After kvm_create_irqchip: the four chips' state, registered on dl (the
 * idstrs above, priority VMSTATE_PRIO_KVM_CHIPS). */
KvmChips *kvm_chips_new(KvmState *kvm, DeviceList *dl);
void kvm_chips_free(KvmChips *c);

#endif
