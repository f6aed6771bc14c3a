/*
 * The strict JSON parser over json-c: what it refuses beyond json-c's own
 * strict mode (NaN, Infinity, "1.", integers past 64 bits, trailing text),
 * exact int64/uint64 round trips at the range edges, and doubles written
 * back in %.17g form rather than their input text.
 */
#include <string.h>

#include "tern/error.h"
#include "tern/json.h"

static json_object *parse(const char *text, GError **errp)
{
    return tern_json_parse(text, strlen(text), 32, errp);
}

static void assert_refused(const char *text)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) o = parse(text, &err);

    if (!err) {
        g_error("'%s' was accepted as %s", text,
                json_object_to_json_string_ext(o, TERN_JSON_COMPACT));
    }
    g_assert_null(o);
}

/* Parses, then writes back compactly. */
static void assert_round_trip(const char *text, const char *want)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) o = parse(text, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(json_object_to_json_string_ext(o, TERN_JSON_COMPACT), ==, want);
}

static void test_refused(void)
{
    const char *bad[] = {
        "[NaN]", "[Infinity]", "[-Infinity]", "[1.]", "[1e999]", "[-1e999]",
        "[18446744073709551616]", "[99999999999999999999999]",
        "[-9223372036854775809]", "{\"a\": 18446744073709551616}",
        "[1] [2]", "[1] x", "[1", "", "   ", "['single']", "[1,]", "{\"a\" 1}",
        "[\"\xc3\x28\"]", "[\"\\x\"]", "/* c */ [1]", "[01]",
    };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_refused(bad[i]);
    }
}

static void test_integers(void)
{
    g_autoptr(json_object) o = parse("[9223372036854775807, -9223372036854775808, "
                                     "9223372036854775808, 18446744073709551615, -1, "
                                     "\"99999999999999999999999\", 1.5]", NULL);
    int64_t i;
    uint64_t u;

    g_assert_nonnull(o);
    g_assert_true(tern_json_int64(json_object_array_get_idx(o, 0), &i));
    g_assert_cmpint(i, ==, INT64_MAX);
    g_assert_true(tern_json_int64(json_object_array_get_idx(o, 1), &i));
    g_assert_cmpint(i, ==, INT64_MIN);
    g_assert_false(tern_json_uint64(json_object_array_get_idx(o, 1), &u));
    g_assert_false(tern_json_int64(json_object_array_get_idx(o, 2), &i));
    g_assert_true(tern_json_uint64(json_object_array_get_idx(o, 2), &u));
    g_assert_cmpuint(u, ==, (uint64_t)INT64_MAX + 1);
    g_assert_true(tern_json_uint64(json_object_array_get_idx(o, 3), &u));
    g_assert_cmpuint(u, ==, UINT64_MAX);
    g_assert_true(tern_json_int64(json_object_array_get_idx(o, 4), &i));
    g_assert_cmpint(i, ==, -1);
    g_assert_false(tern_json_uint64(json_object_array_get_idx(o, 4), &u));
    g_assert_false(tern_json_int64(json_object_array_get_idx(o, 5), &i));
    g_assert_false(tern_json_int64(json_object_array_get_idx(o, 6), &i));
    assert_round_trip("[18446744073709551615,-9223372036854775808,-0]",
                      "[18446744073709551615,-9223372036854775808,0]");
}

static void test_doubles_and_strings(void)
{
    assert_round_trip(" {\"a\": 1.5e300, \"b\": 2.0, \"c\": -0.0, \"d\": 0.1} ",
                      "{\"a\":1.5000000000000001e+300,\"b\":2.0,\"c\":-0.0,"
                      "\"d\":0.10000000000000001}");
    assert_round_trip("[\"a\\u0000b\", \"\\u00e9/\\r\\n\"]",
                      "[\"a\\u0000b\",\"\xc3\xa9/\\r\\n\"]");
}

static void test_depth(void)
{
    g_autofree char *deep = g_strnfill(40, '[');
    g_autoptr(GError) err = NULL;

    g_assert_null(tern_json_parse(deep, strlen(deep), 32, &err));
    g_assert_nonnull(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/json/refused", test_refused);
    g_test_add_func("/json/integers", test_integers);
    g_test_add_func("/json/doubles-strings", test_doubles_and_strings);
    g_test_add_func("/json/depth", test_depth);
    return g_test_run();
}
