/*
 * The guest kit's command line: space-separated words from -append, each
 * `key=value` (a bare `key` means `key=1`). Words are split once at boot
 * into a small table; unknown keys are ignored so other programs' options
 * may share the line.
 */
#include "internal.h"

#define MAX_ARGS 48
#define CMDLINE_MAX 1024

static struct {
    char buf[CMDLINE_MAX];
    const char *key[MAX_ARGS];
    const char *val[MAX_ARGS];
    unsigned n;
} args;

void tg_args_init(const char *cmdline)
{
    size_t len = 0;
    char *p = args.buf;

    while (cmdline && cmdline[len] && len < CMDLINE_MAX - 1) {
        args.buf[len] = cmdline[len];
        len++;
    }
    args.buf[len] = 0;
    while (*p && args.n < MAX_ARGS) {
        while (*p == ' ' || *p == '\t' || *p == '\n') {
            *p++ = 0;
        }
        if (!*p) {
            break;
        }
        bool seen_eq = false;
        args.key[args.n] = p;
        args.val[args.n] = "1";
        for (; *p && *p != ' ' && *p != '\t' && *p != '\n'; p++) {
            if (*p == '=' && !seen_eq) {      /* split at the first '=' */
                seen_eq = true;
                *p = 0;
                args.val[args.n] = p + 1;
            }
        }
        args.n++;
    }
}

static const char *find(const char *key)
{
    const char *v = NULL;

    for (unsigned i = 0; i < args.n; i++) {       /* the last one wins */
        if (!strcmp(args.key[i], key)) {
            v = args.val[i];
        }
    }
    return v;
}

const char *tg_arg_str(const char *key, const char *def)
{
    const char *v = find(key);

    return v ? v : def;
}

bool tg_arg_present(const char *key)
{
    return find(key) != NULL;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0, base = 10;
    unsigned digits = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    for (; *s; s++, digits++) {
        unsigned d;
        if (*s >= '0' && *s <= '9') {
            d = (unsigned)(*s - '0');
        } else if (base == 16 && *s >= 'a' && *s <= 'f') {
            d = (unsigned)(*s - 'a' + 10);
        } else if (base == 16 && *s >= 'A' && *s <= 'F') {
            d = (unsigned)(*s - 'A' + 10);
        } else {
            break;
        }
        if (v > (UINT64_MAX - d) / base) {
            return false;
        }
        v = v * base + d;
    }
    unsigned shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    }
    if (!digits || *s || (shift && v > (UINT64_MAX >> shift))) {
        return false;
    }
    *out = v << shift;
    return true;
}

uint64_t tg_arg_u64(const char *key, uint64_t def)
{
    const char *s = find(key);
    uint64_t v;

    if (!s) {
        return def;
    }
    if (!parse_u64(s, &v)) {
        tg_fail("bad argument %s=%s (want a number, optional K/M/G)", key, s);
    }
    return v;
}
