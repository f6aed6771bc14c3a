/*
 * Unit tests for the key=value option parser and the value parsers
 * (util/keyval.c): implied keys, ",," escaping, duplicates, unused keys,
 * sizes with suffixes and overflow.
 */
#include <string.h>

#include "tern/error.h"
#include "tern/keyval.h"

static void test_basic(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("isa-debug-exit,iobase=0xf4,iosize=4",
                                        "driver", &err);
    uint64_t base = 0, size = 0;

    g_assert_no_error(err);
    g_assert_cmpstr(keyval_get(kv, "driver"), ==, "isa-debug-exit");
    g_assert_true(keyval_get_u64(kv, "iobase", &base, &err));
    g_assert_true(keyval_get_u64(kv, "iosize", &size, &err));
    g_assert_cmphex(base, ==, 0xf4);
    g_assert_cmpuint(size, ==, 4);
    g_assert_true(keyval_check_unused(kv, &err));
    g_assert_null(keyval_get(kv, "absent"));
}

static void test_escaped_comma(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("file=a,,b.img,,,if=none", NULL, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(keyval_get(kv, "file"), ==, "a,b.img,");
    g_assert_cmpstr(keyval_get(kv, "if"), ==, "none");
}

static void test_implied_only_first(void)
{
    g_autoptr(GError) err = NULL;
    KeyVal *kv = keyval_parse("a=1,bare", "driver", &err);

    g_assert_null(kv);
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_nonnull(strstr(err->message, "bare"));
}

static void test_no_implied_key(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_null(keyval_parse("bare", NULL, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
}

static void test_duplicate_and_empty(void)
{
    static const char *const bad[] = { "a=1,a=2", "=1", "a=1,", "x,=2" };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;

        g_assert_null(keyval_parse(bad[i], "x", &err));
        g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    }
}

static void test_unused_key(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("isa-debug-exit,iobas=1", "driver", &err);

    keyval_get(kv, "driver");
    g_assert_false(keyval_check_unused(kv, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_nonnull(strstr(err->message, "iobas"));
}

static void test_empty_string(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("", "x", &err);

    g_assert_nonnull(kv);
    g_assert_false(keyval_has(kv, "x"));
}

static void test_bool(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("server=on,wait=off,x=maybe", NULL, &err);
    bool server = false, wait = true, x = false;

    g_assert_true(keyval_get_bool(kv, "server", &server, &err));
    g_assert_true(keyval_get_bool(kv, "wait", &wait, &err));
    g_assert_true(server);
    g_assert_false(wait);
    g_assert_false(keyval_get_bool(kv, "x", &x, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
}

static void test_size(void)
{
    static const struct {
        const char *s;
        uint64_t unit, want;
    } good[] = {
        { "512", MiB, 512 * MiB }, { "512M", MiB, 512 * MiB }, { "2G", MiB, 2 * GiB },
        { "4k", 1, 4096 }, { "100", 1, 100 }, { "1T", 1, TiB }, { "0x10", 1, 16 },
        { "3B", MiB, 3 },
    };
    static const char *const bad[] = {
        "", "-1", "1X", "1MB", "M", " 1", "99999999999999999999", "20000000T",
    };
    uint64_t v;

    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) err = NULL;

        g_assert_true(parse_size(good[i].s, good[i].unit, &v, &err));
        g_assert_cmpuint(v, ==, good[i].want);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;

        g_assert_false(parse_size(bad[i], MiB, &v, &err));
        g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    }
}

static void test_u64(void)
{
    g_autoptr(GError) err = NULL;
    uint64_t v;

    g_assert_true(parse_u64("0x3f8", &v, &err));
    g_assert_cmphex(v, ==, 0x3f8);
    g_assert_false(parse_u64("12abc", &v, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keyval/basic", test_basic);
    g_test_add_func("/keyval/escaped-comma", test_escaped_comma);
    g_test_add_func("/keyval/implied-only-first", test_implied_only_first);
    g_test_add_func("/keyval/no-implied-key", test_no_implied_key);
    g_test_add_func("/keyval/duplicate-and-empty", test_duplicate_and_empty);
    g_test_add_func("/keyval/unused-key", test_unused_key);
    g_test_add_func("/keyval/empty-string", test_empty_string);
    g_test_add_func("/keyval/bool", test_bool);
    g_test_add_func("/keyval/size", test_size);
    g_test_add_func("/keyval/u64", test_u64);
    return g_test_run();
}
