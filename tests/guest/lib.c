/*
 * The few C library functions the guest kit (and GCC's generated code) need
 * in a freestanding build.
 */
#include "tg.h"

void *memset(void *s, int c, size_t n)
{
    uint8_t *p = s;

    while (n--) {
        *p++ = (uint8_t)c;
    }
    return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;

    while (n--) {
        *dp++ = *sp++;
    }
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;

    if (dp < sp) {
        return memcpy(d, s, n);
    }
    while (n--) {
        dp[n] = sp[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *ap = a, *bp = b;

    for (; n; n--, ap++, bp++) {
        if (*ap != *bp) {
            return *ap < *bp ? -1 : 1;
        }
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n]) {
        n++;
    }
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b || !*a) {
            return (uint8_t)*a - (uint8_t)*b;
        }
    }
    return 0;
}

int strcmp(const char *a, const char *b)
{
    return strncmp(a, b, (size_t)-1);
}
