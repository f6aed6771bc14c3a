/*
 * Parser for QEMU-style key=value option strings (see tern/keyval.h), and the
 * number, size and boolean value parsers every option consumer shares. Items
 * are kept in the order given, each with a 'used' mark for keyval_check_unused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tern/keyval.h"
#include "tern/error.h"
#include "tern/json.h"

/* Nesting a JSON option may use: QEMU's option objects are two levels deep. */
#define KEYVAL_JSON_MAX_DEPTH 16

typedef struct KeyValItem {
    char *key;
    char *value;
    bool used;
} KeyValItem;

struct KeyVal {
    char *source;
    GArray *items;   /* of KeyValItem */
};

static void item_clear(gpointer p)
{
    KeyValItem *it = p;

    g_free(it->key);
    g_free(it->value);
}

void keyval_free(KeyVal *kv)
{
    if (!kv) {
        return;
    }
    g_array_unref(kv->items);
    g_free(kv->source);
    g_free(kv);
}

static KeyValItem *find_item(const KeyVal *kv, const char *key)
{
    for (guint i = 0; i < kv->items->len; i++) {
        KeyValItem *it = &g_array_index(kv->items, KeyValItem, i);

        if (!strcmp(it->key, key)) {
            return it;
        }
    }
    return NULL;
}

/* Reads up to 'stop' (or ','), turning ",," into ','; returns the end. */
static const char *scan_part(const char *p, char stop, GString *out)
{
    while (*p) {
        if (*p == ',') {
            if (p[1] != ',') {
                break;
            }
            g_string_append_c(out, ',');
            p += 2;
            continue;
        }
        if (*p == stop) {
            break;
        }
        g_string_append_c(out, *p++);
    }
    return p;
}

static bool add_item(KeyVal *kv, char *key, char *value, GError **errp)
{
    KeyValItem it = { .key = key, .value = value };

    if (!*key) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s': empty parameter name", kv->source);
        goto fail;
    }
    if (find_item(kv, key)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s': parameter '%s' given more than once", kv->source, key);
        goto fail;
    }
    g_array_append_val(kv->items, it);
    return true;
fail:
    g_free(key);
    g_free(value);
    return false;
}

static KeyVal *keyval_new(const char *source);

KeyVal *keyval_parse(const char *str, const char *implied_key, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_new(str);
    const char *p = str;
    bool first = true;

    while (*p) {
        GString *key = g_string_new(NULL);
        GString *val = g_string_new(NULL);
        bool ok;

        p = scan_part(p, '=', key);
        if (*p == '=') {
            p = scan_part(p + 1, '\0', val);
            ok = add_item(kv, g_string_free(key, false), g_string_free(val, false), errp);
        } else if (first && implied_key) {
            g_string_free(val, true);
            ok = add_item(kv, g_strdup(implied_key), g_string_free(key, false), errp);
        } else {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "'%s': expected key=value at '%s'", str, key->str);
            g_string_free(key, true);
            g_string_free(val, true);
            ok = false;
        }
        if (!ok) {
            return NULL;
        }
        first = false;
        if (*p == ',') {
            p++;
            if (!*p) {
                g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                            "'%s': trailing comma", str);
                return NULL;
            }
        }
    }
    return g_steal_pointer(&kv);
}

static KeyVal *keyval_new(const char *source)
{
    KeyVal *kv = g_new0(KeyVal, 1);

    kv->source = g_strdup(source);
    kv->items = g_array_new(false, true, sizeof(KeyValItem));
    g_array_set_clear_func(kv->items, item_clear);
    return kv;
}

/* One JSON scalar as the text key=value would have given. */
static char *json_scalar_text(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_string:
        return g_strdup(json_object_get_string(v));
    case json_type_boolean:
        return g_strdup(json_object_get_boolean(v) ? "on" : "off");
    case json_type_int:
        return g_strdup(json_object_to_json_string_ext(v, TERN_JSON_COMPACT));
    case json_type_double:
        return g_strdup_printf("%.17g", json_object_get_double(v));
    default:
        return NULL;
    }
}

/* Flattens v under 'prefix' the way QEMU's keyval names nested members:
 * "a.b" for objects, "a.0" for array elements. */
static bool add_json(KeyVal *kv, const char *prefix, json_object *v, GError **errp)
{
    char *text;

    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, member) {
            g_autofree char *name = prefix ? g_strdup_printf("%s.%s", prefix, key)
                                           : g_strdup(key);

            if (!add_json(kv, name, member, errp)) {
                return false;
            }
        }
        return true;
    }
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            g_autofree char *name = g_strdup_printf("%s.%zu", prefix, i);

            if (!add_json(kv, name, json_object_array_get_idx(v, i), errp)) {
                return false;
            }
        }
        return true;
    }
    text = json_scalar_text(v);
    if (!text) {
        return tern_invalid(errp, "'%s': parameter '%s' cannot be null",
                            kv->source, prefix);
    }
    return add_item(kv, g_strdup(prefix), text, errp);
}

KeyVal *keyval_parse_json(const char *str, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_new(str);
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) root = tern_json_parse(str, strlen(str),
                                                  KEYVAL_JSON_MAX_DEPTH, &err);

    if (!root || !json_object_is_type(root, json_type_object)) {
        tern_invalid(errp, "'%s': JSON parse error, %s", str,
                     err ? err->message : "expected an object");
        return NULL;
    }
    return add_json(kv, NULL, root, errp) ? g_steal_pointer(&kv) : NULL;
}

KeyVal *keyval_parse_any(const char *str, const char *implied_key, GError **errp)
{
    return str[0] == '{' ? keyval_parse_json(str, errp)
                         : keyval_parse(str, implied_key, errp);
}

size_t keyval_count(const KeyVal *kv)
{
    return kv->items->len;
}

const char *keyval_key_at(const KeyVal *kv, size_t i)
{
    return g_array_index(kv->items, KeyValItem, i).key;
}

const char *keyval_get_at(KeyVal *kv, size_t i)
{
    KeyValItem *it = &g_array_index(kv->items, KeyValItem, i);

    it->used = true;
    return it->value;
}

const char *keyval_source(const KeyVal *kv)
{
    return kv->source;
}

bool keyval_has(const KeyVal *kv, const char *key)
{
    return find_item(kv, key) != NULL;
}

const char *keyval_get(KeyVal *kv, const char *key)
{
    KeyValItem *it = find_item(kv, key);

    if (!it) {
        return NULL;
    }
    it->used = true;
    return it->value;
}

static bool prefix_error(bool ok, const char *key, GError **errp)
{
    if (!ok) {
        g_prefix_error(errp, "parameter '%s': ", key);
    }
    return ok;
}

bool keyval_get_bool(KeyVal *kv, const char *key, bool *out, GError **errp)
{
    const char *v = keyval_get(kv, key);

    return !v || prefix_error(parse_bool(v, out, errp), key, errp);
}

bool keyval_get_u64(KeyVal *kv, const char *key, uint64_t *out, GError **errp)
{
    const char *v = keyval_get(kv, key);

    return !v || prefix_error(parse_u64(v, out, errp), key, errp);
}

bool keyval_get_size(KeyVal *kv, const char *key, uint64_t *out, GError **errp)
{
    const char *v = keyval_get(kv, key);

    return !v || prefix_error(parse_size(v, 1, out, errp), key, errp);
}

bool keyval_check_unused(const KeyVal *kv, GError **errp)
{
    for (guint i = 0; i < kv->items->len; i++) {
        KeyValItem *it = &g_array_index(kv->items, KeyValItem, i);

        if (!it->used) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "'%s': invalid parameter '%s'", kv->source, it->key);
            return false;
        }
    }
    return true;
}

bool parse_bool(const char *s, bool *out, GError **errp)
{
    if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true")) {
        *out = true;
    } else if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false")) {
        *out = false;
    } else {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s' is not 'on' or 'off'", s);
        return false;
    }
    return true;
}

/* strtoull, refusing signs, blanks, trailing junk and overflow; *end gets the rest
 * when end is non-NULL. */
static bool scan_u64(const char *s, uint64_t *out, const char **end, GError **errp)
{
    char *e;

    if (!g_ascii_isdigit(*s)) {
        goto bad;
    }
    errno = 0;
    *out = strtoull(s, &e, 0);
    if (errno == ERANGE) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "'%s' is too large", s);
        return false;
    }
    if (end) {
        *end = e;
        return true;
    }
    if (*e) {
        goto bad;
    }
    return true;
bad:
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "'%s' is not a number", s);
    return false;
}

bool parse_u64(const char *s, uint64_t *out, GError **errp)
{
    return scan_u64(s, out, NULL, errp);
}

bool parse_size(const char *s, uint64_t default_unit, uint64_t *out, GError **errp)
{
    static const char suffixes[] = "BKMGT";
    const char *end;
    const char *sfx;
    uint64_t n, unit;

    if (!scan_u64(s, &n, &end, errp)) {
        return false;
    }
    if (!*end) {
        unit = default_unit;
    } else if (!end[1] && (sfx = strchr(suffixes, g_ascii_toupper(*end)))) {
        unit = 1ULL << (10 * (sfx - suffixes));
    } else {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s' is not a size (use a number with B, K, M, G or T)", s);
        return false;
    }
    if (unit && n > UINT64_MAX / unit) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "size '%s' is too large", s);
        return false;
    }
    *out = n * unit;
    return true;
}
