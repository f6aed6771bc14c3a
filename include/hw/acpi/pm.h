/*
 * ACPI fixed-hardware power management registers (non-hardware-reduced):
 *   base+0  PM1a_EVT_BLK: PM1_STS (2 bytes, write 1 to clear), PM1_EN (2 bytes)
 *   base+4  PM1a_CNT_BLK: PM1_CNT (2 bytes): SCI_EN, SLP_TYP, SLP_EN
 *   base+8  PM_TMR_BLK:   32-bit ACPI PM timer at 3.579545 MHz
 * SLP_EN with SLP_TYP == ACPI_PM_SLP_TYP_S5 (what the DSDT's _S5 says) calls
 * PowerOps.poweroff. acpi_pm_power_button() latches PWRBTN_STS and raises the
 * SCI (level, while any enabled status bit is set) — what system_powerdown does.
 *
 * Machine: AcpiPm *pm = acpi_pm_new(pio, X86_PM_BASE, &sci_line(GSI 9),
 *                                  &power_ops, machine, m->devices, &err);
 */
#ifndef HW_ACPI_PM_H
#define HW_ACPI_PM_H

#include "tern/common.h"
#include "hw/core/device-list.h"
#include "hw/core/iobus.h"
#include "hw/irq.h"
#include "hw/power-ops.h"

#define ACPI_PM1_EVT_LEN       4
#define ACPI_PM1_CNT_LEN       2
#define ACPI_PM_TMR_LEN        4
#define ACPI_PM_CNT_OFFSET     4
#define ACPI_PM_TMR_OFFSET     8
#define ACPI_PM_IO_LEN         12
#define ACPI_PM_TIMER_HZ       3579545

#define ACPI_PM1_STS_TMR       0x0001
#define ACPI_PM1_STS_GBL       0x0020
#define ACPI_PM1_STS_PWRBTN    0x0100
#define ACPI_PM1_STS_WAK       0x8000
#define ACPI_PM1_CNT_SCI_EN    0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP   0x1c00
#define ACPI_PM1_CNT_SLP_EN    0x2000

#define ACPI_PM_SLP_TYP_S5     5      /* the DSDT's _S5 package carries this */

typedef struct AcpiPm AcpiPm;

/* Adds its reset hook and its state (idstr "acpi-pm", instance 0) to dl. */
AcpiPm *acpi_pm_new(IoBus *pio, uint16_t base, const IrqLine *sci,
                    const PowerOps *power, void *power_opaque, DeviceList *dl,
                    GError **errp);
void acpi_pm_free(AcpiPm *pm);
/* System reset: PM1 status, enable and control cleared (SCI lowered); the
 * PM timer runs on, as in QEMU. */
void acpi_pm_reset(AcpiPm *pm);
/* Fixed-feature power button press (QMP system_powerdown). */
void acpi_pm_power_button(AcpiPm *pm);
/* The IoOps registered at 'base' (offsets as above), for tests. */
extern const IoOps acpi_pm_io_ops;

#endif
