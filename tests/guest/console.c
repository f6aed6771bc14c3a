/*
 * COM1 output for the guest kit: a small vsnprintf (%d %u %x %s %c %p, l/ll,
 * width and zero padding), whole lines written under one lock so that
 * several CPUs never interleave, and the exit/fail helpers. Each byte is one
 * port write (one exit); lines are short and rare, so no FIFO handling.
 */
#include "internal.h"

static volatile int console_lock;

struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, bool neg,
                    unsigned width, char pad)
{
    char tmp[24];
    unsigned n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg) {
        tmp[n++] = '-';
    }
    while (width > n) {
        put(o, pad);
        width--;
    }
    while (n) {
        put(o, tmp[--n]);
    }
}

static uint64_t get_unsigned(va_list *ap, int lng)
{
    return lng ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned);
}

static int64_t get_signed(va_list *ap, int lng)
{
    return lng ? va_arg(*ap, int64_t) : va_arg(*ap, int);
}

int tg_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };
    va_list aq;

    va_copy(aq, ap);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        char pad = ' ';
        unsigned width = 0;
        int lng = 0;
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (unsigned)(*fmt++ - '0');
        }
        while (*fmt == 'l' || *fmt == 'z') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'd': {
            int64_t v = get_signed(&aq, lng);
            put_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_num(&o, get_unsigned(&aq, lng), 10, false, width, pad);
            break;
        case 'x':
            put_num(&o, get_unsigned(&aq, lng), 16, false, width, pad);
            break;
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_num(&o, (uint64_t)va_arg(aq, void *), 16, false, width, pad);
            break;
        case 's': {
            const char *s = va_arg(aq, const char *);
            for (s = s ? s : "(null)"; *s; s++) {
                put(&o, *s);
            }
            break;
        }
        case 'c':
            put(&o, (char)va_arg(aq, int));
            break;
        case '%':
            put(&o, '%');
            break;
        default:
            put(&o, '?');
            if (!*fmt) {
                fmt--;
            }
            break;
        }
    }
    if (size) {
        buf[o.len < size ? o.len : size - 1] = 0;
    }
    va_end(aq);
    return (int)(o.len < size ? o.len : (size ? size - 1 : 0));
}

int tg_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = tg_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* Bounded spin: an exception report must not wait forever for a lock its
 * own CPU may hold. */
void tg_console_write(const char *s, size_t len)
{
    bool locked = false;

    for (unsigned i = 0; i < 10000000 && !locked; i++) {
        locked = !__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE);
        if (!locked) {
            tg_pause();
        }
    }
    for (size_t i = 0; i < len; i++) {
        tg_outb(TG_COM1, (uint8_t)s[i]);
    }
    if (locked) {
        __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
    }
}

void tg_printf(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = tg_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    tg_console_write(line, (size_t)n);
}

void tg_exit(int rc)
{
    tg_printf("TG done rc=%d\n", rc);
    tg_outl(TG_DEBUG_EXIT_PORT, (uint32_t)rc);
    for (;;) {
        tg_wait_irq();
    }
}

void tg_fail(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int n;

    memcpy(line, "TG FAIL ", 8);
    va_start(ap, fmt);
    n = 8 + tg_vsnprintf(line + 8, sizeof(line) - 9, fmt, ap);
    va_end(ap);
    line[n] = '\n';
    tg_console_write(line, (size_t)n + 1);
    tg_exit(1);
}
