/*
 * ACPI PM1a event and control registers and the PM timer (layout in
 * hw/acpi/pm.h). The SCI is a level interrupt: asserted while any status bit
 * whose enable bit is set is 1 (power button, timer overflow). tern has no SMM
 * and FADT's SMI_CMD is 0, so SCI_EN always reads 1: the platform is in ACPI
 * mode from reset. Sleep states other than S5 are not supported; asking for one
 * only warns.
 */
#include "hw/acpi/pm.h"
#include "migration/vmstate.h"
#include "tern/error.h"

#define PM1_STS_OFFSET 0
#define PM1_EN_OFFSET  2
#define PM1_STS_W1C    (ACPI_PM1_STS_TMR | ACPI_PM1_STS_GBL | \
                        ACPI_PM1_STS_PWRBTN | ACPI_PM1_STS_WAK)
#define PM1_EN_MASK    (ACPI_PM1_STS_TMR | ACPI_PM1_STS_GBL | ACPI_PM1_STS_PWRBTN)

struct AcpiPm {
    GMutex lock;
    IoBus *pio;
    uint16_t base;
    IrqLine sci;
    const PowerOps *power;
    void *power_opaque;
    uint16_t sts, en, cnt;
    int64_t timer_origin_us;
    uint32_t vm_timer;          /* migration: PM timer value when saved */
};

static void update_sci(AcpiPm *pm)
{
    irq_set(&pm->sci, (pm->sts & pm->en) != 0);
}

/* 3.579545 MHz since creation, 32 bits wide (FADT TMR_VAL_EXT). */
static uint32_t timer_value(const AcpiPm *pm)
{
    uint64_t us = (uint64_t)(g_get_monotonic_time() - pm->timer_origin_us);

    return (uint32_t)(us * ACPI_PM_TIMER_HZ / 1000000);
}

static uint16_t reg16_read(const AcpiPm *pm, unsigned reg)
{
    switch (reg) {
    case PM1_STS_OFFSET:     return pm->sts;
    case PM1_EN_OFFSET:      return pm->en;
    case ACPI_PM_CNT_OFFSET: return pm->cnt | ACPI_PM1_CNT_SCI_EN;
    default:                 return 0;
    }
}

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
    AcpiPm *pm = opaque;
    uint64_t v = 0;

    g_mutex_lock(&pm->lock);
    if (off >= ACPI_PM_TMR_OFFSET) {
        v = timer_value(pm) >> (8 * (off - ACPI_PM_TMR_OFFSET));
    } else {
        /* Assemble byte by byte so any aligned 1/2/4-byte access works. */
        for (unsigned i = 0; i < size && off + i < ACPI_PM_TMR_OFFSET; i++) {
            unsigned byte = (unsigned)off + i;
            uint16_t r = reg16_read(pm, byte & ~1u);

            v |= (uint64_t)((r >> (8 * (byte & 1))) & 0xff) << (8 * i);
        }
    }
    g_mutex_unlock(&pm->lock);
    return size >= 8 ? v : v & ((1ULL << (8 * size)) - 1);
}

/* Returns true if the guest entered S5. */
static bool cnt_write(AcpiPm *pm, uint16_t v)
{
    unsigned typ = (v & ACPI_PM1_CNT_SLP_TYP) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;

    pm->cnt = v & ~(ACPI_PM1_CNT_SLP_EN | ACPI_PM1_CNT_SCI_EN);
    if (!(v & ACPI_PM1_CNT_SLP_EN)) {
        return false;
    }
    if (typ != ACPI_PM_SLP_TYP_S5) {
        tern_warn_guest("ACPI: sleep type %u is not supported, ignored", typ);
        return false;
    }
    return true;
}

/* Writes the bytes of 'v' selected by 'mask' into the 16-bit register at
 * 'reg'; returns true if the guest entered S5. */
static bool reg16_write(AcpiPm *pm, unsigned reg, uint16_t v, uint16_t mask)
{
    switch (reg) {
    case PM1_STS_OFFSET:
        pm->sts &= ~(v & mask & PM1_STS_W1C);
        return false;
    case PM1_EN_OFFSET:
        pm->en = (uint16_t)((pm->en & ~mask) | (v & mask & PM1_EN_MASK));
        return false;
    case ACPI_PM_CNT_OFFSET:
        return cnt_write(pm, (uint16_t)((pm->cnt & ~mask) | (v & mask)));
    default:
        return false;
    }
}

static void pm_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    AcpiPm *pm = opaque;
    bool poweroff = false;

    g_mutex_lock(&pm->lock);
    for (unsigned reg = 0; reg < ACPI_PM_TMR_OFFSET; reg += 2) {
        uint16_t mask = 0, v = 0;

        for (unsigned i = 0; i < size; i++) {
            if ((off + i) / 2 * 2 == reg) {
                unsigned shift = 8 * ((off + i) & 1);

                mask |= (uint16_t)(0xff << shift);
                v |= (uint16_t)(((val >> (8 * i)) & 0xff) << shift);
            }
        }
        if (mask) {
            poweroff |= reg16_write(pm, reg, v, mask);
        }
    }
    update_sci(pm);
    g_mutex_unlock(&pm->lock);
    if (poweroff) {
        power_request_poweroff(pm->power, pm->power_opaque);
    }
}

const IoOps acpi_pm_io_ops = {
    .read = pm_read,
    .write = pm_write,
};

static const VMStateDescription vmstate_acpi_pm;

static void reset_hook(void *opaque)
{
    acpi_pm_reset(opaque);
}

AcpiPm *acpi_pm_new(IoBus *pio, uint16_t base, const IrqLine *sci,
                    const PowerOps *power, void *power_opaque, DeviceList *dl,
                    GError **errp)
{
    AcpiPm *pm = g_new0(AcpiPm, 1);

    g_mutex_init(&pm->lock);
    pm->pio = pio;
    pm->base = base;
    pm->sci = sci ? *sci : (IrqLine){ 0 };
    pm->power = power;
    pm->power_opaque = power_opaque;
    pm->timer_origin_us = g_get_monotonic_time();
    if (pio && !iobus_register(pio, base, ACPI_PM_IO_LEN, &acpi_pm_io_ops, pm,
                               errp)) {
        g_mutex_clear(&pm->lock);
        g_free(pm);
        return NULL;
    }
    device_list_add_reset(dl, reset_hook, pm);
    device_list_add_vmstate(dl, "acpi-pm", 0, &vmstate_acpi_pm, pm);
    return pm;
}

void acpi_pm_free(AcpiPm *pm)
{
    if (!pm) {
        return;
    }
    if (pm->pio) {
        iobus_unregister(pm->pio, pm->base);
    }
    g_mutex_clear(&pm->lock);
    g_free(pm);
}

void acpi_pm_reset(AcpiPm *pm)
{
    g_mutex_lock(&pm->lock);
    pm->sts = pm->en = pm->cnt = 0;
    update_sci(pm);
    g_mutex_unlock(&pm->lock);
}

void acpi_pm_power_button(AcpiPm *pm)
{
    g_mutex_lock(&pm->lock);
    pm->sts |= ACPI_PM1_STS_PWRBTN;
    update_sci(pm);
    g_mutex_unlock(&pm->lock);
}

/*
 * Migration ("acpi-pm", tern's own layout, version 1):
 *   be16 PM1_STS | be16 PM1_EN | be16 PM1_CNT | be32 PM timer value
 * The timer goes on from the saved count on the destination.
 */
static bool pm_pre_save(void *opaque, GError **errp)
{
    AcpiPm *pm = opaque;

    g_mutex_lock(&pm->lock);
    pm->vm_timer = timer_value(pm);
    g_mutex_unlock(&pm->lock);
    return true;
}

static bool pm_post_load(void *opaque, int version_id, GError **errp)
{
    AcpiPm *pm = opaque;

    g_mutex_lock(&pm->lock);
    /* Only bits a guest could have set survive a hostile stream. */
    pm->sts &= PM1_STS_W1C;
    pm->en &= PM1_EN_MASK;
    pm->cnt &= (uint16_t)~(ACPI_PM1_CNT_SLP_EN | ACPI_PM1_CNT_SCI_EN);
    pm->timer_origin_us = g_get_monotonic_time() -
        (int64_t)((uint64_t)pm->vm_timer * 1000000 / ACPI_PM_TIMER_HZ);
    update_sci(pm);
    g_mutex_unlock(&pm->lock);
    return true;
}

static const VMStateDescription vmstate_acpi_pm = {
    .name = "acpi-pm",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = pm_pre_save,
    .post_load = pm_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(sts, AcpiPm),
        VMSTATE_UINT16(en, AcpiPm),
        VMSTATE_UINT16(cnt, AcpiPm),
        VMSTATE_UINT32(vm_timer, AcpiPm),
        VMSTATE_END_OF_LIST()
    },
};
