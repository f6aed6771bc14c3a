/*
 * The CMOS real-time clock on ports 0x70 (index, bit 7 = NMI mask) and 0x71
 * (data): time of day in BCD or binary and 12/24-hour mode as register B says,
 * status registers A-D, the century byte (0x32, which FADT names), and the rest
 * of the 128-byte CMOS RAM. The clock is the host's wall clock plus an offset
 * that the guest changes by writing the time registers.
 *
 * Machine: Rtc *rtc = rtc_new(pio, &irq8_line_or_NULL, m->devices, &err);
 *          rtc_nmi_masked(rtc) if the machine ever injects NMIs.
 */
#ifndef HW_RTC_MC146818RTC_H
#define HW_RTC_MC146818RTC_H

#include "tern/common.h"
#include "hw/core/device-list.h"
#include "hw/core/iobus.h"
#include "hw/irq.h"

#define RTC_SECONDS      0x00
#define RTC_MINUTES      0x02
#define RTC_HOURS        0x04
#define RTC_DAY_OF_WEEK  0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH        0x08
#define RTC_YEAR         0x09
#define RTC_REG_A        0x0a
#define RTC_REG_B        0x0b
#define RTC_REG_C        0x0c
#define RTC_REG_D        0x0d
#define RTC_CENTURY      0x32
#define  RTC_B_SET       0x80
#define  RTC_B_PIE       0x40
#define  RTC_B_AIE       0x20
#define  RTC_B_UIE       0x10
#define  RTC_B_SQWE      0x08
#define  RTC_B_DM_BINARY 0x04
#define  RTC_B_24H       0x02
#define  RTC_D_VRT       0x80

typedef struct Rtc Rtc;
/* Seconds since the epoch (UTC); tests inject a fixed clock. */
typedef int64_t (*RtcClock)(void *opaque);

/* irq may be NULL (no interrupts); it is copied. Adds its reset hook and
 * its state (idstr "mc146818rtc", instance 0; layout in docs/devstate.md)
 * to dl. */
Rtc *rtc_new(IoBus *pio, const IrqLine *irq, DeviceList *dl, GError **errp);
void rtc_free(Rtc *rtc);
/* System reset, as QEMU does it: periodic/alarm/square-wave enables and the
 * interrupt flags cleared, IRQ lowered; time and CMOS contents kept. */
void rtc_reset(Rtc *rtc);
void rtc_set_clock(Rtc *rtc, RtcClock clock, void *opaque);
bool rtc_nmi_masked(Rtc *rtc);
/* Direct CMOS access for the machine (e.g. memory size bytes). */
void rtc_cmos_set(Rtc *rtc, uint8_t index, uint8_t val);
/* The IoOps on port 0x70 (offset 0 index, 1 data), for tests. */
extern const IoOps rtc_io_ops;

#endif
