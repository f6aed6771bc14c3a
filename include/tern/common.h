/*
 * Small helpers every tern source file may use: sizes, alignment, containers.
 * GLib supplies the rest (MIN/MAX, g_autofree, GError, lists, main loop).
 */
#ifndef TERN_COMMON_H
#define TERN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <glib.h>

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Power-of-two alignment helpers; 'a' must be a power of two. */
#define ALIGN_DOWN(x, a)  ((x) & ~((__typeof__(x))(a) - 1))
#define ALIGN_UP(x, a)    ALIGN_DOWN((x) + (a) - 1, (a))
#define IS_ALIGNED(x, a)  (((x) & ((__typeof__(x))(a) - 1)) == 0)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))

#define TERN_PACKED __attribute__((packed))
#define TERN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
