/*
 * The strict JSON parser over json-c (include/tern/json.h). json-c 0.16 in
 * strict mode still accepts NaN, Infinity and "1.", clamps integers beyond
 * 64 bits to the nearest limit and keeps a double's input text for output;
 * a walk over the parsed tree closes each of these, so a value tern reads is
 * always one it can write back as valid JSON and one that means what the
 * text said.
 */
#include <math.h>
#include <limits.h>
#include <string.h>

#include "tern/error.h"
#include "tern/json.h"

bool tern_json_int64(json_object *o, int64_t *v)
{
    if (!json_object_is_type(o, json_type_int)) {
        return false;
    }
    *v = json_object_get_int64(o);
    return *v < 0 || json_object_get_uint64(o) <= INT64_MAX;
}

bool tern_json_uint64(json_object *o, uint64_t *v)
{
    if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0) {
        return false;
    }
    *v = json_object_get_uint64(o);
    return true;
}

/* The value json-c gives an integer literal beyond the 64-bit range. */
static bool int_at_clamp(json_object *o)
{
    int64_t i = json_object_get_int64(o);

    return i == INT64_MIN || json_object_get_uint64(o) == UINT64_MAX;
}

/* Digits of an integer literal compared with the limit's, as decimal text. */
static bool digits_exceed(const char *d, size_t n, const char *limit)
{
    size_t ln = strlen(limit);

    return n > ln || (n == ln && memcmp(d, limit, n) > 0);
}

/*
 * Whether text holds an integer literal json-c clamped. Only called when the
 * tree has a value at a clamp limit, so the common path never scans twice.
 */
static bool text_has_wide_integer(const char *t, size_t len)
{
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        if (in_str) {
            if (t[i] == '\\') {
                i++;                    /* the escaped character */
            } else if (t[i] == '"') {
                in_str = false;
            }
            continue;
        }
        if (t[i] == '"') {
            in_str = true;
        } else if (t[i] == '-' || g_ascii_isdigit(t[i])) {
            bool neg = t[i] == '-';
            size_t start = i + neg, end = start;

            while (end < len && g_ascii_isdigit(t[end])) {
                end++;
            }
            if ((end == len || !strchr(".eE", t[end])) &&
                digits_exceed(t + start, end - start,
                              neg ? "9223372036854775808" : "18446744073709551615")) {
                return true;
            }
            for (i = end; i + 1 < len && strchr(".eE+-0123456789", t[i + 1]); i++) {
            }
        }
    }
    return false;
}

typedef struct ParseCheck {
    bool at_clamp;          /* an integer sits at a clamp limit */
} ParseCheck;

static bool check_double(json_object *o, GError **errp)
{
    const char *src = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    double d = json_object_get_double(o);
    size_t n = strlen(src);

    if (!isfinite(d) || !n || !g_ascii_isdigit(src[n - 1])) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "invalid number '%s'", src);
        return false;
    }
    /* Forget the input text: written back, it is %.17g like any double. */
    json_object_set_double(o, d);
    return true;
}

static bool check_tree(json_object *o, ParseCheck *pc, GError **errp)
{
    switch (json_object_get_type(o)) {
    case json_type_double:
        return check_double(o, errp);
    case json_type_int:
        pc->at_clamp |= int_at_clamp(o);
        return true;
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            if (!check_tree(json_object_array_get_idx(o, i), pc, errp)) {
                return false;
            }
        }
        return true;
    case json_type_object: {
        json_object_object_foreach(o, key, val) {
            (void)key;
            if (!check_tree(val, pc, errp)) {
                return false;
            }
        }
        return true;
    }
    default:
        return true;
    }
}

static bool only_space(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!strchr(" \t\r\n", t[i])) {
            return false;
        }
    }
    return true;
}

/* json-c's verdict on the text: the value, or NULL with *errp set. */
static json_object *tokenize(const char *text, size_t len, unsigned max_depth,
                             GError **errp)
{
    /* A text cannot nest deeper than it is long: a short message gets a
     * small tokener (json-c allocates and zeroes one entry per level). */
    struct json_tokener *tok = json_tokener_new_ex((int)MIN(max_depth, len + 1));
    json_object *o;
    enum json_tokener_error jerr;
    const char *why = NULL;

    if (!tok) {
        tern_die("json-c: no memory for a tokener");
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        why = "unexpected end of input";
    } else if (jerr != json_tokener_success) {
        why = json_tokener_error_desc(jerr);
    } else if (!only_space(text + json_tokener_get_parse_end(tok),
                           len - json_tokener_get_parse_end(tok))) {
        why = "unexpected text after the value";
    }
    json_tokener_free(tok);
    if (why) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "%s", why);
        json_object_put(o);
        return NULL;
    }
    return o;
}

json_object *tern_json_parse(const char *text, size_t len, unsigned max_depth,
                             GError **errp)
{
    json_object *o;
    ParseCheck pc = { 0 };

    if (len > INT_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "input too long");
        return NULL;
    }
    o = tokenize(text, len, max_depth, errp);
    if (!o) {
        return NULL;
    }
    if (!check_tree(o, &pc, errp)) {
        json_object_put(o);
        return NULL;
    }
    if (pc.at_clamp && text_has_wide_integer(text, len)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "integer beyond the 64-bit range");
        json_object_put(o);
        return NULL;
    }
    return o;
}
