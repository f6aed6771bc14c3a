/*
 * VMState of KVM's in-kernel PICs, IOAPIC, PIT and kvmclock (layouts in
 * accel/kvm/kvm-irqchip-state.h): one object per chip models it, and is what
 * its description saves and loads. Converting between KVM's structs and the
 * models happens here; values a real chip cannot hold are refused on load
 * before anything reaches the kernel.
 */
#include <string.h>
#include <time.h>

#include "accel/kvm/kvm-irqchip-state.h"
#include "migration/vmstate.h"
#include "tern/error.h"

#define IOAPIC_BASE 0xfec00000ULL

/* ---- 8259 PIC ---- */

static bool pic_pre_save(void *opaque, GError **errp)
{
    KvmPic *p = opaque;
    struct kvm_irqchip chip = { .chip_id = p->chip_id };
    const struct kvm_pic_state *k = &chip.chip.pic;

    if (!kvm_get_irqchip(p->kvm, &chip, errp)) {
        return false;
    }
    p->last_irr = k->last_irr;
    p->irr = k->irr;
    p->imr = k->imr;
    p->isr = k->isr;
    p->priority_add = k->priority_add;
    p->irq_base = k->irq_base;
    p->read_reg_select = k->read_reg_select;
    p->poll = k->poll;
    p->special_mask = k->special_mask;
    p->init_state = k->init_state;
    p->auto_eoi = k->auto_eoi;
    p->rotate_on_auto_eoi = k->rotate_on_auto_eoi;
    p->special_fully_nested_mode = k->special_fully_nested_mode;
    p->init4 = k->init4;
    p->single_mode = 0;                /* KVM's PIC is always cascaded */
    p->elcr = k->elcr;
    return true;
}

static bool pic_check(const KvmPic *p, GError **errp)
{
    const char *bad = NULL;

    if (p->single_mode) {
        bad = "single (uncascaded) mode";
    } else if (p->init_state > 3) {
        bad = "initialization state";
    } else if (p->priority_add > 7) {
        bad = "lowest priority";
    } else if (p->irq_base & 7) {
        bad = "vector base";
    }
    if (bad) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "i8259 %s: impossible %s", p->chip_id ? "slave" : "master",
                    bad);
        return false;
    }
    return true;
}

static bool pic_post_load(void *opaque, int version_id, GError **errp)
{
    KvmPic *p = opaque;
    struct kvm_irqchip chip = { .chip_id = p->chip_id };
    struct kvm_pic_state *k = &chip.chip.pic;

    /* Read first: elcr_mask is the board's wiring, not guest state. */
    if (!pic_check(p, errp) || !kvm_get_irqchip(p->kvm, &chip, errp)) {
        return false;
    }
    k->last_irr = p->last_irr;
    k->irr = p->irr;
    k->imr = p->imr;
    k->isr = p->isr;
    k->priority_add = p->priority_add;
    k->irq_base = p->irq_base;
    k->read_reg_select = p->read_reg_select;
    k->poll = p->poll;
    k->special_mask = p->special_mask;
    k->init_state = p->init_state;
    k->auto_eoi = p->auto_eoi;
    k->rotate_on_auto_eoi = p->rotate_on_auto_eoi;
    k->special_fully_nested_mode = p->special_fully_nested_mode;
    k->init4 = p->init4;
    k->elcr = p->elcr & k->elcr_mask;
    return kvm_set_irqchip(p->kvm, &chip, errp);
}

static const VMStateDescription vmstate_kvm_pic = {
    .name = "i8259",
    .version_id = 1,
    .minimum_version_id = 1,
    .priority = VMSTATE_PRIO_KVM_CHIPS,
    .pre_save = pic_pre_save,
    .post_load = pic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(last_irr, KvmPic),
        VMSTATE_UINT8(irr, KvmPic),
        VMSTATE_UINT8(imr, KvmPic),
        VMSTATE_UINT8(isr, KvmPic),
        VMSTATE_UINT8(priority_add, KvmPic),
        VMSTATE_UINT8(irq_base, KvmPic),
        VMSTATE_UINT8(read_reg_select, KvmPic),
        VMSTATE_UINT8(poll, KvmPic),
        VMSTATE_UINT8(special_mask, KvmPic),
        VMSTATE_UINT8(init_state, KvmPic),
        VMSTATE_UINT8(auto_eoi, KvmPic),
        VMSTATE_UINT8(rotate_on_auto_eoi, KvmPic),
        VMSTATE_UINT8(special_fully_nested_mode, KvmPic),
        VMSTATE_UINT8(init4, KvmPic),
        VMSTATE_UINT8(single_mode, KvmPic),
        VMSTATE_UINT8(elcr, KvmPic),
        VMSTATE_END_OF_LIST()
    },
};

/* ---- IOAPIC ---- */

static bool ioapic_pre_save(void *opaque, GError **errp)
{
    KvmIoapic *s = opaque;
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
    const struct kvm_ioapic_state *k = &chip.chip.ioapic;

    if (!kvm_get_irqchip(s->kvm, &chip, errp)) {
        return false;
    }
    s->id = (uint8_t)k->id;
    s->ioregsel = (uint8_t)k->ioregsel;
    memset(s->unused, 0, sizeof(s->unused));
    s->irr = k->irr;
    for (unsigned i = 0; i < KVM_IOAPIC_PINS; i++) {
        s->redirtbl[i] = k->redirtbl[i].bits;
    }
    return true;
}

static bool ioapic_post_load(void *opaque, int version_id, GError **errp)
{
    KvmIoapic *s = opaque;
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
    struct kvm_ioapic_state *k = &chip.chip.ioapic;

    if (version_id < 2) {
        s->irr = 0;
    }
    k->base_address = IOAPIC_BASE;
    k->id = s->id;
    k->ioregsel = s->ioregsel;
    k->irr = s->irr & ((1u << KVM_IOAPIC_PINS) - 1);
    for (unsigned i = 0; i < KVM_IOAPIC_PINS; i++) {
        k->redirtbl[i].bits = s->redirtbl[i];
    }
    return kvm_set_irqchip(s->kvm, &chip, errp);
}

static const VMStateDescription vmstate_kvm_ioapic = {
    .name = "ioapic",
    .version_id = 3,
    .minimum_version_id = 1,
    .priority = VMSTATE_PRIO_KVM_CHIPS,
    .pre_save = ioapic_pre_save,
    .post_load = ioapic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(id, KvmIoapic),
        VMSTATE_UINT8(ioregsel, KvmIoapic),
        { .name = "unused", .size = 8, .info = &vmstate_info_buffer,
          .version_id = 2, .offset = offsetof(KvmIoapic, unused) },
        VMSTATE_UINT32_V(irr, KvmIoapic, 2),
        VMSTATE_UINT64_ARRAY(redirtbl, KvmIoapic, KVM_IOAPIC_PINS),
        VMSTATE_END_OF_LIST()
    },
};

/* ---- 8254 PIT ---- */

/* KVM stamps count loads with the kernel's monotonic clock. */
static int64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool pit_pre_save(void *opaque, GError **errp)
{
    KvmPit *s = opaque;
    struct kvm_pit_state2 k;
    int64_t now;

    memset(&k, 0, sizeof(k));
    if (!kvm_get_pit(s->kvm, &k, errp)) {
        return false;
    }
    now = monotonic_ns();
    s->flags = k.flags;
    for (unsigned i = 0; i < 3; i++) {
        const struct kvm_pit_channel_state *c = &k.channels[i];

        s->channels[i] = (KvmPitChannel){
            .count = c->count, .latched_count = c->latched_count,
            .count_latched = c->count_latched,
            .status_latched = c->status_latched, .status = c->status,
            .read_state = c->read_state, .write_state = c->write_state,
            .write_latch = c->write_latch, .rw_mode = c->rw_mode,
            .mode = c->mode, .bcd = c->bcd, .gate = c->gate,
            .load_age_ns = MAX(now - c->count_load_time, 0),
        };
    }
    return true;
}

static bool pit_channel_check(const KvmPitChannel *c, unsigned i,
                              GError **errp)
{
    /* Mode 0xff is KVM's "never programmed" after reset. */
    if (c->count > 0x10000 || (c->mode > 5 && c->mode != 0xff) ||
        c->rw_mode > 3 ||
        c->read_state > 4 || c->write_state > 4 || c->bcd > 1 ||
        c->gate > 1 || c->count_latched > 3 || c->load_age_ns < 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kvm-pit: channel %u holds impossible values (count "
                    "0x%" PRIx32 ", mode %u, access %u)", i, c->count,
                    c->mode, c->rw_mode);
        return false;
    }
    return true;
}

static bool pit_post_load(void *opaque, int version_id, GError **errp)
{
    KvmPit *s = opaque;
    struct kvm_pit_state2 k;
    int64_t now = monotonic_ns();

    if (s->flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY |
                               KVM_PIT_FLAGS_SPEAKER_DATA_ON)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kvm-pit: unknown flags 0x%" PRIx32, s->flags);
        return false;
    }
    memset(&k, 0, sizeof(k));
    k.flags = s->flags;
    for (unsigned i = 0; i < 3; i++) {
        const KvmPitChannel *c = &s->channels[i];

        if (!pit_channel_check(c, i, errp)) {
            return false;
        }
        k.channels[i] = (struct kvm_pit_channel_state){
            .count = c->count, .latched_count = c->latched_count,
            .count_latched = c->count_latched,
            .status_latched = c->status_latched, .status = c->status,
            .read_state = c->read_state, .write_state = c->write_state,
            .write_latch = c->write_latch, .rw_mode = c->rw_mode,
            .mode = c->mode, .bcd = c->bcd, .gate = c->gate,
            .count_load_time = now - c->load_age_ns,
        };
    }
    return kvm_set_pit(s->kvm, &k, errp);
}

static const VMStateDescription vmstate_kvm_pit_channel = {
    .name = "kvm-pit/channel",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(count, KvmPitChannel),
        VMSTATE_UINT16(latched_count, KvmPitChannel),
        VMSTATE_UINT8(count_latched, KvmPitChannel),
        VMSTATE_UINT8(status_latched, KvmPitChannel),
        VMSTATE_UINT8(status, KvmPitChannel),
        VMSTATE_UINT8(read_state, KvmPitChannel),
        VMSTATE_UINT8(write_state, KvmPitChannel),
        VMSTATE_UINT8(write_latch, KvmPitChannel),
        VMSTATE_UINT8(rw_mode, KvmPitChannel),
        VMSTATE_UINT8(mode, KvmPitChannel),
        VMSTATE_UINT8(bcd, KvmPitChannel),
        VMSTATE_UINT8(gate, KvmPitChannel),
        VMSTATE_INT64(load_age_ns, KvmPitChannel),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_pit = {
    .name = "kvm-pit",
    .version_id = 1,
    .minimum_version_id = 1,
    .priority = VMSTATE_PRIO_KVM_CHIPS,
    .pre_save = pit_pre_save,
    .post_load = pit_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(flags, KvmPit),
        VMSTATE_STRUCT_ARRAY(channels, KvmPit, 3,
                             vmstate_kvm_pit_channel, KvmPitChannel),
        VMSTATE_END_OF_LIST()
    },
};

/* ---- kvmclock ---- */

static bool clock_pre_save(void *opaque, GError **errp)
{
    KvmClock *s = opaque;
    struct kvm_clock_data d;

    if (!kvm_get_clock(s->kvm, &d, errp)) {
        return false;
    }
    s->clock = d.clock;
    s->reliable = d.flags & KVM_CLOCK_TSC_STABLE;
    return true;
}

static bool clock_pre_load(void *opaque, GError **errp)
{
    ((KvmClock *)opaque)->reliable = false;
    return true;
}

static bool clock_post_load(void *opaque, int version_id, GError **errp)
{
    KvmClock *s = opaque;
    struct kvm_clock_data d = { .clock = s->clock };

    return kvm_set_clock(s->kvm, &d, errp);
}

static bool always_needed(void *opaque)
{
    return true;
}

static const VMStateDescription vmstate_kvmclock_reliable = {
    .name = "kvmclock/clock_is_reliable",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = always_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(reliable, KvmClock),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvmclock = {
    .name = "kvmclock",
    .version_id = 1,
    .minimum_version_id = 1,
    .priority = VMSTATE_PRIO_KVM_CHIPS,
    .pre_save = clock_pre_save,
    .pre_load = clock_pre_load,
    .post_load = clock_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(clock, KvmClock),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_kvmclock_reliable,
        NULL
    },
};

KvmChips *kvm_chips_new(KvmState *kvm, DeviceList *dl)
{
    KvmChips *s = g_new0(KvmChips, 1);

    s->pic[0] = (KvmPic){ .kvm = kvm, .chip_id = KVM_IRQCHIP_PIC_MASTER };
    s->pic[1] = (KvmPic){ .kvm = kvm, .chip_id = KVM_IRQCHIP_PIC_SLAVE };
    s->ioapic.kvm = kvm;
    s->pit.kvm = kvm;
    s->clock.kvm = kvm;
    device_list_add_vmstate(dl, "i8259", 0, &vmstate_kvm_pic, &s->pic[0]);
    device_list_add_vmstate(dl, "i8259", 1, &vmstate_kvm_pic, &s->pic[1]);
    device_list_add_vmstate(dl, "ioapic", 0, &vmstate_kvm_ioapic, &s->ioapic);
    device_list_add_vmstate(dl, "kvm-pit", 0, &vmstate_kvm_pit, &s->pit);
    device_list_add_vmstate(dl, "kvmclock", 0, &vmstate_kvmclock, &s->clock);
    return s;
}

void kvm_chips_free(KvmChips *c)
{
    g_free(c);
}
