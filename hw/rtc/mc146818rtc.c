/*
 * The MC146818 CMOS RTC. Time is never stored: registers 0-9 are computed on
 * read from clock() + offset, in BCD or binary and 12- or 24-hour form as
 * register B says, and a guest write to one of them moves the offset so the
 * clock goes on from the new value. Update-in-progress is never reported, so
 * a guest polling register A's UIP bit never waits. Register C reads clear the
 * interrupt flags; periodic/alarm/update interrupts are not generated (Linux
 * does not need them to boot), but the IRQ line is kept for a later version.
 */
#include <string.h>
#include <time.h>

#include "hw/rtc/mc146818rtc.h"
#include "migration/vmstate.h"
#include "tern/error.h"

#define CMOS_SIZE      128
#define INDEX_MASK     0x7f
#define NMI_DISABLE    0x80
#define REG_A_DEFAULT  0x26     /* 32.768 kHz divider, 1024 Hz rate */

struct Rtc {
    GMutex lock;
    IoBus *pio;
    IrqLine irq;
    uint8_t index;
    bool nmi_masked;
    uint8_t cmos[CMOS_SIZE];
    int64_t offset;            /* guest time - clock() in seconds */
    RtcClock clock;
    void *clock_opaque;
    int64_t vm_guest_time;     /* migration: guest seconds when saved */
};

static int64_t host_clock(void *opaque)
{
    return (int64_t)time(NULL);
}

static bool is_binary(const Rtc *rtc)
{
    return rtc->cmos[RTC_REG_B] & RTC_B_DM_BINARY;
}

/* A register holds two digits: v is 0..99 by construction, and wraps if not. */
static uint8_t to_reg(const Rtc *rtc, unsigned v)
{
    v %= 100;
    return is_binary(rtc) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static int from_reg(const Rtc *rtc, uint8_t v)
{
    return is_binary(rtc) ? v : ((v >> 4) & 0xf) * 10 + (v & 0xf);
}

/*
 * The century and year registers are four BCD digits, so the guest's clock
 * lives in the years 0000..9999 and counts on from 9999 to 0000 as the chip's
 * counters do. 10000 Gregorian years are 25 whole 400-year cycles, so the
 * wrap keeps date and weekday exact.
 */
#define RTC_TIME_MIN  (-62167219200LL)     /* 0000-01-01 00:00:00 UTC */
#define RTC_TIME_MAX  253402300799LL       /* 9999-12-31 23:59:59 UTC */
#define RTC_TIME_SPAN (25 * 146097 * 86400LL)

static int64_t guest_time(Rtc *rtc)
{
    int64_t t = rtc->clock(rtc->clock_opaque) + rtc->offset;
    int64_t r = (t - RTC_TIME_MIN) % RTC_TIME_SPAN;

    return RTC_TIME_MIN + (r < 0 ? r + RTC_TIME_SPAN : r);
}

/* Broken-down guest time; tm_year + 1900 is 0..9999. */
static void guest_tm(Rtc *rtc, struct tm *tm)
{
    time_t t = (time_t)guest_time(rtc);

    gmtime_r(&t, tm);
}

static unsigned guest_year(const struct tm *tm)
{
    return (unsigned)(tm->tm_year + 1900);
}

static uint8_t hours_reg(const Rtc *rtc, int hour)
{
    int h12;

    if (rtc->cmos[RTC_REG_B] & RTC_B_24H) {
        return to_reg(rtc, hour);
    }
    h12 = hour % 12 ? hour % 12 : 12;
    return to_reg(rtc, h12) | (hour >= 12 ? 0x80 : 0);
}

static uint8_t time_reg_read(Rtc *rtc, uint8_t idx)
{
    struct tm tm;

    guest_tm(rtc, &tm);
    switch (idx) {
    case RTC_SECONDS:      return to_reg(rtc, tm.tm_sec);
    case RTC_MINUTES:      return to_reg(rtc, tm.tm_min);
    case RTC_HOURS:        return hours_reg(rtc, tm.tm_hour);
    case RTC_DAY_OF_WEEK:  return to_reg(rtc, tm.tm_wday + 1);
    case RTC_DAY_OF_MONTH: return to_reg(rtc, tm.tm_mday);
    case RTC_MONTH:        return to_reg(rtc, tm.tm_mon + 1);
    case RTC_YEAR:         return to_reg(rtc, guest_year(&tm) % 100);
    case RTC_CENTURY:      return to_reg(rtc, guest_year(&tm) / 100);
    default:               return rtc->cmos[idx];   /* alarms */
    }
}

static int hours_from_reg(const Rtc *rtc, uint8_t v)
{
    int h;

    if (rtc->cmos[RTC_REG_B] & RTC_B_24H) {
        return from_reg(rtc, v);
    }
    h = from_reg(rtc, v & 0x7f) % 12;
    return (v & 0x80) ? h + 12 : h;
}

/* Moves the offset so that the written field reads back as 'v' from now on. */
static void time_reg_write(Rtc *rtc, uint8_t idx, uint8_t v)
{
    struct tm tm;
    int64_t now = rtc->clock(rtc->clock_opaque);

    guest_tm(rtc, &tm);
    switch (idx) {
    case RTC_SECONDS:      tm.tm_sec = from_reg(rtc, v) % 60; break;
    case RTC_MINUTES:      tm.tm_min = from_reg(rtc, v) % 60; break;
    case RTC_HOURS:        tm.tm_hour = hours_from_reg(rtc, v) % 24; break;
    case RTC_DAY_OF_MONTH: tm.tm_mday = CLAMP(from_reg(rtc, v), 1, 31); break;
    case RTC_MONTH:        tm.tm_mon = CLAMP(from_reg(rtc, v), 1, 12) - 1; break;
    case RTC_YEAR:
        tm.tm_year = guest_year(&tm) / 100 * 100 + from_reg(rtc, v) % 100 - 1900;
        break;
    case RTC_CENTURY:
        tm.tm_year = from_reg(rtc, v) % 100 * 100 + guest_year(&tm) % 100 - 1900;
        break;
    default:               /* day of week follows from the date; alarms */
        rtc->cmos[idx] = v;
        return;
    }
    rtc->offset = (int64_t)timegm(&tm) - now;
}

static bool is_time_reg(uint8_t idx)
{
    return idx <= RTC_YEAR || idx == RTC_CENTURY;
}

static uint64_t rtc_read(void *opaque, uint64_t off, unsigned size)
{
    Rtc *rtc = opaque;
    uint8_t v;

    if (off == 0) {
        return 0xff;                /* the index port is write-only */
    }
    g_mutex_lock(&rtc->lock);
    if (is_time_reg(rtc->index)) {
        v = time_reg_read(rtc, rtc->index);
    } else {
        v = rtc->cmos[rtc->index];
        if (rtc->index == RTC_REG_C) {
            rtc->cmos[RTC_REG_C] = 0;
            irq_set(&rtc->irq, false);
        }
    }
    g_mutex_unlock(&rtc->lock);
    return v;
}

static void rtc_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    Rtc *rtc = opaque;
    uint8_t v = (uint8_t)val;

    g_mutex_lock(&rtc->lock);
    if (off == 0) {
        rtc->index = v & INDEX_MASK;
        rtc->nmi_masked = v & NMI_DISABLE;
    } else if (is_time_reg(rtc->index)) {
        time_reg_write(rtc, rtc->index, v);
    } else if (rtc->index == RTC_REG_A) {
        rtc->cmos[RTC_REG_A] = v & 0x7f;     /* UIP is read-only */
    } else if (rtc->index == RTC_REG_B) {
        /* Binary/24h mode changes only the encoding: the offset stays. */
        rtc->cmos[RTC_REG_B] = v;
    } else if (rtc->index != RTC_REG_C && rtc->index != RTC_REG_D) {
        rtc->cmos[rtc->index] = v;
    }
    g_mutex_unlock(&rtc->lock);
}

const IoOps rtc_io_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

static const VMStateDescription vmstate_mc146818rtc;

static void reset_hook(void *opaque)
{
    rtc_reset(opaque);
}

Rtc *rtc_new(IoBus *pio, const IrqLine *irq, DeviceList *dl, GError **errp)
{
    Rtc *rtc = g_new0(Rtc, 1);

    g_mutex_init(&rtc->lock);
    rtc->pio = pio;
    if (irq) {
        rtc->irq = *irq;
    }
    rtc->clock = host_clock;
    rtc->cmos[RTC_REG_A] = REG_A_DEFAULT;
    rtc->cmos[RTC_REG_B] = RTC_B_24H;        /* BCD, 24-hour, like PC firmware */
    rtc->cmos[RTC_REG_D] = RTC_D_VRT;        /* battery good */
    if (pio && !iobus_register(pio, 0x70, 2, &rtc_io_ops, rtc, errp)) {
        g_mutex_clear(&rtc->lock);
        g_free(rtc);
        return NULL;
    }
    device_list_add_reset(dl, reset_hook, rtc);
    device_list_add_vmstate(dl, "mc146818rtc", 0, &vmstate_mc146818rtc, rtc);
    return rtc;
}

void rtc_reset(Rtc *rtc)
{
    g_mutex_lock(&rtc->lock);
    rtc->cmos[RTC_REG_B] &= (uint8_t)~(RTC_B_PIE | RTC_B_AIE | RTC_B_SQWE);
    rtc->cmos[RTC_REG_C] = 0;
    irq_set(&rtc->irq, false);
    g_mutex_unlock(&rtc->lock);
}

void rtc_free(Rtc *rtc)
{
    if (!rtc) {
        return;
    }
    if (rtc->pio) {
        iobus_unregister(rtc->pio, 0x70);
    }
    g_mutex_clear(&rtc->lock);
    g_free(rtc);
}

void rtc_set_clock(Rtc *rtc, RtcClock clock, void *opaque)
{
    g_mutex_lock(&rtc->lock);
    rtc->clock = clock ? clock : host_clock;
    rtc->clock_opaque = opaque;
    g_mutex_unlock(&rtc->lock);
}

bool rtc_nmi_masked(Rtc *rtc)
{
    bool m;

    g_mutex_lock(&rtc->lock);
    m = rtc->nmi_masked;
    g_mutex_unlock(&rtc->lock);
    return m;
}

void rtc_cmos_set(Rtc *rtc, uint8_t index, uint8_t val)
{
    g_mutex_lock(&rtc->lock);
    rtc->cmos[index & INDEX_MASK] = val;
    g_mutex_unlock(&rtc->lock);
}

/*
 * Migration ("mc146818rtc", tern's own layout, version 1):
 *   cmos[128] | u8 index | u8 nmi_masked | be64 guest time (s since epoch)
 * The guest's clock travels as an absolute time, not as tern's offset from
 * the source host's clock, so it goes on from the same value on the
 * destination whatever that host's clock says.
 */
static bool rtc_pre_save(void *opaque, GError **errp)
{
    Rtc *rtc = opaque;

    g_mutex_lock(&rtc->lock);
    rtc->vm_guest_time = guest_time(rtc);
    g_mutex_unlock(&rtc->lock);
    return true;
}

static bool rtc_post_load(void *opaque, int version_id, GError **errp)
{
    Rtc *rtc = opaque;

    if (rtc->index & ~INDEX_MASK) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "mc146818rtc: CMOS index 0x%x is out of range", rtc->index);
        return false;
    }
    /* Years 0000..9999 are what the registers (century included) can say. */
    if (rtc->vm_guest_time < RTC_TIME_MIN || rtc->vm_guest_time > RTC_TIME_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "mc146818rtc: guest time %" PRId64 " is outside the years "
                    "0000..9999", rtc->vm_guest_time);
        return false;
    }
    g_mutex_lock(&rtc->lock);
    rtc->offset = rtc->vm_guest_time - rtc->clock(rtc->clock_opaque);
    /* The line follows register C's IRQF bit, as the guest left it. */
    irq_set(&rtc->irq, rtc->cmos[RTC_REG_C] & 0x80);
    g_mutex_unlock(&rtc->lock);
    return true;
}

static const VMStateDescription vmstate_mc146818rtc = {
    .name = "mc146818rtc",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = rtc_pre_save,
    .post_load = rtc_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_BUFFER(cmos, Rtc),
        VMSTATE_UINT8(index, Rtc),
        VMSTATE_BOOL(nmi_masked, Rtc),
        VMSTATE_INT64(vm_guest_time, Rtc),
        VMSTATE_END_OF_LIST()
    },
};
