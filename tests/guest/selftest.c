/*
 * Workload `selftest`: checks the kit's own library as built (freestanding,
 * -O2, no SSE) inside the guest: formatting, argument parsing, string and
 * memory functions, tg_alloc. Prints `TG selftest checks=N` or fails with
 * the first check that did not hold. Run with
 * `tg.workload=selftest tg.st.num=0x1fK tg.st.flag tg.st.str=a=b`;
 * tg.st.oom=1 then asks tg_alloc for more than it has (must TG FAIL).
 */
#include "tg.h"

static unsigned checks;

#define CHECK(cond)                                                    \
    do {                                                               \
        checks++;                                                      \
        if (!(cond)) {                                                 \
            tg_fail("selftest: %s (line %d)", #cond, __LINE__);        \
        }                                                              \
    } while (0)

static void check_format(void)
{
    char buf[64];
    int n;

    n = tg_snprintf(buf, sizeof(buf), "%d %u %x %lx %s %c %05u %3d|%%",
                    -42, 42u, 0xbeefu, 0x123456789abUL, "str", 'c', 7u, 5);
    CHECK(!strcmp(buf, "-42 42 beef 123456789ab str c 00007   5|%"));
    CHECK(n == (int)strlen(buf));
    n = tg_snprintf(buf, 8, "%s", "truncated text");
    CHECK(!strcmp(buf, "truncat") && n == 7);
    tg_snprintf(buf, sizeof(buf), "%ld %lu", (int64_t)INT64_MIN, (uint64_t)UINT64_MAX);
    CHECK(!strcmp(buf, "-9223372036854775808 18446744073709551615"));
    static const char *volatile null_str;     /* opaque: GCC warns on a literal NULL */
    tg_snprintf(buf, sizeof(buf), "%s", null_str);
    CHECK(!strcmp(buf, "(null)"));
}

static void check_args(void)
{
    CHECK(tg_arg_u64("tg.st.num", 0) == 0x1fUL << 10);
    CHECK(tg_arg_u64("tg.st.absent", 77) == 77);
    CHECK(tg_arg_present("tg.st.flag") && !strcmp(tg_arg_str("tg.st.flag", ""), "1"));
    CHECK(!strcmp(tg_arg_str("tg.st.str", ""), "a=b"));
    CHECK(!tg_arg_present("tg.st"));
}

static void check_memory(void)
{
    char s[16] = "abcdefgh";

    memmove(s + 2, s, 6);
    CHECK(!memcmp(s, "ababcdef", 8));
    memmove(s, s + 2, 6);
    CHECK(!memcmp(s, "abcdefef", 8));
    CHECK(memcmp("abc", "abd", 3) < 0 && strcmp("b", "a") > 0);
    CHECK(strncmp("abcx", "abcy", 3) == 0 && strlen("four") == 4);

    uint8_t *a = tg_alloc(100, 8), *b = tg_alloc(4096, 4096), *c = tg_alloc(1, 1);
    CHECK((uint64_t)a >= TG_HEAP_BASE && (uint64_t)c < TG_HEAP_END);
    CHECK(!((uint64_t)b & 4095) && b >= a + 100 && c >= b + 4096);
    CHECK(b[0] == 0 && b[4095] == 0);
    memset(b, 0xa5, 4096);
    CHECK(a[99] == 0 && c[0] == 0);
}

static void selftest_bsp(void)
{
    check_format();
    check_args();
    check_memory();
    tg_printf("TG selftest checks=%u\n", checks);
    if (tg_arg_u64("tg.st.oom", 0)) {
        tg_alloc(TG_HEAP_END - TG_HEAP_BASE, 8);
        tg_fail("selftest: tg_alloc gave out more than its range");
    }
}

TG_WORKLOAD(selftest, .name = "selftest", .bsp = selftest_bsp);
