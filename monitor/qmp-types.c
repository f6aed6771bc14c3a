/*
 * Decoding JSON into the C values QmpType tables describe, as QEMU 7.2's
 * QObject input visitor does it: the same order of checks and the same
 * messages. Two names appear in them, as in QEMU: the full path of the
 * value ("actions[0].data.name"), and for range and enum errors the bare
 * member name ("null" for an array element).
 */
#include <string.h>

#include "monitor/qmp-types.h"
#include "tern/error.h"

#define BUILTIN(cname, qname, k, ctype) \
    const QmpType cname = { .name = (qname), .kind = (k), .size = sizeof(ctype) }

BUILTIN(qmp_type_str, "str", QMP_KIND_STR, char *);
BUILTIN(qmp_type_bool, "bool", QMP_KIND_BOOL, bool);
BUILTIN(qmp_type_int, "int", QMP_KIND_INT, int64_t);
BUILTIN(qmp_type_uint8, "uint8", QMP_KIND_UINT8, uint8_t);
BUILTIN(qmp_type_uint32, "uint32", QMP_KIND_UINT32, uint32_t);
BUILTIN(qmp_type_uint64, "uint64", QMP_KIND_UINT64, uint64_t);
BUILTIN(qmp_type_size, "size", QMP_KIND_UINT64, uint64_t);
BUILTIN(qmp_type_number, "number", QMP_KIND_NUMBER, double);
BUILTIN(qmp_type_any, "any", QMP_KIND_ANY, json_object *);
BUILTIN(qmp_type_null, "null", QMP_KIND_NULL, char);

static const QmpMember no_members[] = { QMP_END };
const QmpType qmp_type_empty = {
    .name = "q_empty", .kind = QMP_KIND_OBJECT, .size = 1, .members = no_members,
};

/* Where a value is while decoding: its path, and its bare name (NULL for
 * array elements), both as QEMU's messages use them. */
typedef struct Where {
    const char *path;
    const char *name;
} Where;

static bool decode(const QmpType *t, json_object *in, void *out, const Where *w,
                   GError **errp);

static bool wrong_type(const Where *w, const char *expected, GError **errp)
{
    return tern_invalid(errp, "Invalid parameter type for '%s', expected: %s",
                        w->path, expected);
}

static const char *bare(const Where *w)
{
    return w->name ? w->name : "null";
}

int qmp_enum_lookup(const QmpType *t, const char *name)
{
    for (int i = 0; t->values[i]; i++) {
        if (!strcmp(t->values[i], name)) {
            return i;
        }
    }
    return -1;
}

/* --- scalars ------------------------------------------------------------------ */

static bool decode_str(json_object *in, char **out, const Where *w, GError **errp)
{
    const char *s;

    if (!json_object_is_type(in, json_type_string)) {
        return wrong_type(w, "string", errp);
    }
    s = json_object_get_string(in);
    /* C strings end at U+0000: "a\u0000b" would silently become "a". */
    if (strlen(s) != (size_t)json_object_get_string_len(in)) {
        return tern_invalid(errp, "Parameter '%s' expects a string without U+0000",
                            w->path);
    }
    if (out) {
        *out = g_strdup(s);
    }
    return true;
}

/* QEMU's uint64: any JSON integer, a negative one taken modulo 2^64. */
static bool decode_u64(json_object *in, uint64_t *v, const Where *w, GError **errp)
{
    int64_t i;

    if (tern_json_uint64(in, v)) {
        return true;
    }
    if (tern_json_int64(in, &i)) {
        *v = (uint64_t)i;
        return true;
    }
    return tern_invalid(errp, "Parameter '%s' expects uint64", w->path);
}

static bool decode_uint(const QmpType *t, json_object *in, void *out,
                        const Where *w, GError **errp)
{
    uint64_t v;
    uint64_t max = t->kind == QMP_KIND_UINT8 ? UINT8_MAX :
                   t->kind == QMP_KIND_UINT32 ? UINT32_MAX : UINT64_MAX;

    if (!decode_u64(in, &v, w, errp)) {
        return false;
    }
    if (v > max) {
        return tern_invalid(errp, "Parameter '%s' expects %s", bare(w),
                            t->kind == QMP_KIND_UINT8 ? "uint8_t" : "uint32_t");
    }
    if (out) {
        switch (t->kind) {
        case QMP_KIND_UINT8: *(uint8_t *)out = v; break;
        case QMP_KIND_UINT32: *(uint32_t *)out = v; break;
        default: *(uint64_t *)out = v; break;
        }
    }
    return true;
}

static bool decode_enum(const QmpType *t, json_object *in, int *out,
                        const Where *w, GError **errp)
{
    g_autofree char *s = NULL;
    int i;

    if (!decode_str(in, &s, w, errp)) {
        return false;
    }
    i = qmp_enum_lookup(t, s);
    if (i < 0) {
        return tern_invalid(errp, "Parameter '%s' does not accept value '%s'", bare(w),
                            s);
    }
    if (out) {
        *out = i;
    }
    return true;
}

static bool decode_scalar(const QmpType *t, json_object *in, void *out,
                          const Where *w, GError **errp)
{
    int64_t i;

    switch (t->kind) {
    case QMP_KIND_BOOL:
        if (!json_object_is_type(in, json_type_boolean)) {
            return wrong_type(w, "boolean", errp);
        }
        if (out) {
            *(bool *)out = json_object_get_boolean(in);
        }
        return true;
    case QMP_KIND_INT:
        if (!tern_json_int64(in, &i)) {
            return wrong_type(w, "integer", errp);
        }
        if (out) {
            *(int64_t *)out = i;
        }
        return true;
    case QMP_KIND_NUMBER:
        if (!json_object_is_type(in, json_type_int) &&
            !json_object_is_type(in, json_type_double)) {
            return wrong_type(w, "number", errp);
        }
        if (out) {
            *(double *)out = json_object_get_double(in);
        }
        return true;
    case QMP_KIND_NULL:
        return in == NULL || wrong_type(w, "null", errp);
    case QMP_KIND_ANY:
        if (out) {
            *(json_object **)out = json_object_get(in);
        }
        return true;
    default:
        g_assert_not_reached();
    }
}

/* --- objects ------------------------------------------------------------------ */

static char *child_path(const char *path, const char *name)
{
    return *path ? g_strdup_printf("%s.%s", path, name) : g_strdup(name);
}

static void set_default(const QmpMember *m, void *out)
{
    void *v = (char *)out + m->offset;

    switch (m->type->kind) {
    case QMP_KIND_STR: *(char **)v = g_strdup(m->def.s); break;
    case QMP_KIND_BOOL: *(bool *)v = m->def.b; break;
    case QMP_KIND_INT: *(int64_t *)v = m->def.i; break;
    case QMP_KIND_ENUM: *(int *)v = (int)m->def.i; break;
    case QMP_KIND_UINT8: *(uint8_t *)v = m->def.u; break;
    case QMP_KIND_UINT32: *(uint32_t *)v = m->def.u; break;
    case QMP_KIND_UINT64: *(uint64_t *)v = m->def.u; break;
    case QMP_KIND_NUMBER: *(double *)v = m->def.d; break;
    default: break;         /* objects, arrays, any: left zeroed */
    }
}

static bool decode_member(const QmpMember *m, json_object *obj, void *out,
                          const Where *w, GError **errp)
{
    g_autofree char *path = child_path(w->path, m->name);
    Where cw = { path, m->name };
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, m->name, &v)) {
        if (!m->optional) {
            return tern_invalid(errp, "Parameter '%s' is missing", path);
        }
        if (out) {
            set_default(m, out);
        }
        return true;
    }
    if (out && m->optional) {
        *(bool *)((char *)out + m->has_offset) = true;
    }
    return decode(m->type, v, out ? (char *)out + m->offset : NULL, &cw, errp);
}

static bool members_have(const QmpMember *members, const char *name)
{
    for (const QmpMember *m = members; m && m->type; m++) {
        if (!strcmp(m->name, name)) {
            return true;
        }
    }
    return false;
}

/* The first member of obj that neither the base nor the variant declares. */
static bool check_unexpected(const QmpType *t, const QmpType *variant,
                             json_object *obj, const Where *w, GError **errp)
{
    json_object_object_foreach(obj, key, val) {
        (void)val;
        if (!members_have(t->members, key) &&
            !(variant && members_have(variant->members, key))) {
            g_autofree char *path = child_path(w->path, key);

            return tern_invalid(errp, "Parameter '%s' is unexpected", path);
        }
    }
    return true;
}

static bool decode_members(const QmpMember *members, json_object *obj, void *out,
                           const Where *w, GError **errp)
{
    for (const QmpMember *m = members; m && m->type; m++) {
        if (!decode_member(m, obj, out, w, errp)) {
            return false;
        }
    }
    return true;
}

/* A union's variant for a tag value (NULL: the value has none). */
static const QmpType *variant_for(const QmpType *t, const char *value)
{
    for (const QmpVariant *v = t->variants; v->tag_value; v++) {
        if (!strcmp(v->tag_value, value)) {
            return v->type;
        }
    }
    return NULL;
}

/* The variant of a decoded union value, from its tag member. */
static const QmpType *decoded_variant(const QmpType *t, const void *value)
{
    for (const QmpMember *m = t->members; m->type; m++) {
        if (!strcmp(m->name, t->tag)) {
            int i = *(const int *)((const char *)value + m->offset);

            return variant_for(t, m->type->values[i]);
        }
    }
    g_assert_not_reached();
}

static bool decode_object(const QmpType *t, json_object *in, void *out,
                          const Where *w, GError **errp)
{
    const QmpType *variant = NULL;
    void *vout = NULL;

    if (!json_object_is_type(in, json_type_object)) {
        return wrong_type(w, "object", errp);
    }
    if (!decode_members(t->members, in, out, w, errp)) {
        return false;
    }
    if (t->variants) {
        /* The tag member is decoded: it holds one of its enum's values. */
        variant = variant_for(t, json_object_get_string(
                                     json_object_object_get(in, t->tag)));
        if (variant && out) {
            vout = qmp_value_new(variant);
            *(void **)((char *)out + t->variant_offset) = vout;
        }
        if (variant && !decode_members(variant->members, in, vout, w, errp)) {
            return false;
        }
    }
    return check_unexpected(t, variant, in, w, errp);
}

/* --- arrays and alternates ---------------------------------------------------- */

static bool decode_array(const QmpType *t, json_object *in, QmpList *out,
                         const Where *w, GError **errp)
{
    size_t n, size = t->element->size;

    if (!json_object_is_type(in, json_type_array)) {
        return wrong_type(w, "array", errp);
    }
    n = json_object_array_length(in);
    if (out) {
        out->len = n;
        out->items = g_malloc0_n(n ? n : 1, size);
    }
    for (size_t i = 0; i < n; i++) {
        g_autofree char *path = g_strdup_printf("%s[%zu]", w->path, i);
        Where ew = { path, NULL };

        if (!decode(t->element, json_object_array_get_idx(in, i),
                    out ? (char *)out->items + i * size : NULL, &ew, errp)) {
            return false;
        }
    }
    return true;
}

/* Which JSON types a kind takes, as QEMU's alternates choose by them. */
static bool kind_takes(QmpKind k, json_type jt)
{
    switch (k) {
    case QMP_KIND_STR:
    case QMP_KIND_ENUM:
        return jt == json_type_string;
    case QMP_KIND_BOOL:
        return jt == json_type_boolean;
    case QMP_KIND_NUMBER:
        return jt == json_type_int || jt == json_type_double;
    case QMP_KIND_OBJECT:
        return jt == json_type_object;
    case QMP_KIND_ARRAY:
        return jt == json_type_array;
    case QMP_KIND_NULL:
        return jt == json_type_null;
    default:
        return jt == json_type_int;
    }
}

static bool decode_alternate(const QmpType *t, json_object *in, void *out,
                             const Where *w, GError **errp)
{
    for (const QmpMember *m = t->members; m->type; m++) {
        if (kind_takes(m->type->kind, json_object_get_type(in))) {
            if (out) {
                *(int *)out = (int)(m - t->members);
            }
            return decode(m->type, in, out ? (char *)out + m->offset : NULL, w,
                          errp);
        }
    }
    /* QEMU names an alternate by its bare name ("null" in an array). */
    return tern_invalid(errp, "Invalid parameter type for '%s', expected: %s", bare(w),
                        t->name);
}

/* --- entry points ------------------------------------------------------------- */

static bool decode(const QmpType *t, json_object *in, void *out, const Where *w,
                   GError **errp)
{
    switch (t->kind) {
    case QMP_KIND_STR:
        return decode_str(in, out, w, errp);
    case QMP_KIND_UINT8:
    case QMP_KIND_UINT32:
    case QMP_KIND_UINT64:
        return decode_uint(t, in, out, w, errp);
    case QMP_KIND_ENUM:
        return decode_enum(t, in, out, w, errp);
    case QMP_KIND_OBJECT:
        return decode_object(t, in, out, w, errp);
    case QMP_KIND_ARRAY:
        return decode_array(t, in, out, w, errp);
    case QMP_KIND_ALTERNATE:
        return decode_alternate(t, in, out, w, errp);
    default:
        return decode_scalar(t, in, out, w, errp);
    }
}

bool qmp_decode(const QmpType *t, json_object *in, void *out, const char *path,
                GError **errp)
{
    Where w = { path ? path : "", NULL };

    if (!decode(t, in, out, &w, errp)) {
        if (out) {
            qmp_free(t, out);
            memset(out, 0, t->size);
        }
        return false;
    }
    return true;
}

bool qmp_type_check(const QmpType *t, json_object *in, GError **errp)
{
    return qmp_decode(t, in, NULL, "", errp);
}

void qmp_free(const QmpType *t, void *value)
{
    switch (t->kind) {
    case QMP_KIND_STR:
        g_clear_pointer((char **)value, g_free);
        break;
    case QMP_KIND_ANY:
        g_clear_pointer((json_object **)value, json_object_put);
        break;
    case QMP_KIND_OBJECT:
    case QMP_KIND_ALTERNATE:
        for (const QmpMember *m = t->members; m->type; m++) {
            qmp_free(m->type, (char *)value + m->offset);
        }
        if (t->variants) {
            void **vp = (void **)((char *)value + t->variant_offset);

            if (*vp) {
                qmp_value_free(decoded_variant(t, value), *vp);
                *vp = NULL;
            }
        }
        break;
    case QMP_KIND_ARRAY: {
        QmpList *l = value;

        for (size_t i = 0; l->items && i < l->len; i++) {
            qmp_free(t->element, (char *)l->items + i * t->element->size);
        }
        g_clear_pointer(&l->items, g_free);
        l->len = 0;
        break;
    }
    default:
        break;
    }
}

void *qmp_value_new(const QmpType *t)
{
    return g_malloc0(t->size ? t->size : 1);
}

void qmp_value_free(const QmpType *t, void *value)
{
    if (value) {
        qmp_free(t, value);
        g_free(value);
    }
}

/* --- key=value options as typed JSON ---------------------------------------- */

/* {"a": {"b": "v"}} from "a.b=v": every value still a string. */
static bool keyval_tree(KeyVal *kv, json_object *root, GError **errp)
{
    for (size_t i = 0; i < keyval_count(kv); i++) {
        g_auto(GStrv) parts = g_strsplit(keyval_key_at(kv, i), ".", -1);
        const char *value = keyval_get_at(kv, i);
        json_object *o = root, *next;

        for (char **p = parts; *p; p++) {
            bool last = !p[1];

            if (!json_object_object_get_ex(o, *p, &next)) {
                next = last ? json_object_new_string(value) : json_object_new_object();
                json_object_object_add(o, *p, next);
            } else if (last || !json_object_is_type(next, json_type_object)) {
                return tern_invalid(errp, "Parameters '%s.*' used inconsistently",
                                    *p);
            }
            o = next;
        }
    }
    return true;
}

static json_object *typed(const QmpType *t, json_object *in, GError **errp);

static json_object *typed_scalar(const QmpType *t, const char *s, GError **errp)
{
    bool b;
    uint64_t u;
    char *end;
    double d;

    switch (t->kind) {
    case QMP_KIND_BOOL:
        return parse_bool(s, &b, errp) ? json_object_new_boolean(b) : NULL;
    case QMP_KIND_INT:
        if (s[0] == '-') {
            int64_t i = g_ascii_strtoll(s, &end, 0);

            return *end || end == s ? (tern_invalid(errp, "'%s' is not a number", s),
                                       NULL) : json_object_new_int64(i);
        }
        /* fall through */
    case QMP_KIND_UINT8:
    case QMP_KIND_UINT32:
    case QMP_KIND_UINT64:
        return parse_u64(s, &u, errp) ? json_object_new_uint64(u) : NULL;
    case QMP_KIND_NUMBER:
        d = g_ascii_strtod(s, &end);
        return *end || end == s ? (tern_invalid(errp, "'%s' is not a number", s), NULL)
                                : json_object_new_double(d);
    default:
        return json_object_new_string(s);
    }
}

/* An alternate given as text takes its first scalar alternative that parses,
 * as QEMU's keyval visitor does; text is never null ("null" is a name). */
static json_object *typed_alternate(const QmpType *t, json_object *in, GError **errp)
{
    json_type jt = json_object_get_type(in);

    for (const QmpMember *m = t->members; m->type; m++) {
        if (m->type->kind == QMP_KIND_NULL) {
            continue;
        }
        if ((jt == json_type_object) == (m->type->kind == QMP_KIND_OBJECT ||
                                          m->type->kind == QMP_KIND_ARRAY)) {
            g_autoptr(GError) err = NULL;
            json_object *v = typed(m->type, in, &err);

            if (v) {
                return v;
            }
        }
    }
    return json_object_get(in);   /* the decoder says what is wrong */
}

/* The member of t (or of its union variant) called key, or NULL. */
static const QmpMember *find_member(const QmpType *t, const QmpType *variant,
                                    const char *key)
{
    for (const QmpMember *m = t->members; m->type; m++) {
        if (!strcmp(m->name, key)) {
            return m;
        }
    }
    for (const QmpMember *m = variant ? variant->members : NULL; m && m->type; m++) {
        if (!strcmp(m->name, key)) {
            return m;
        }
    }
    return NULL;
}

static json_object *typed_object(const QmpType *t, json_object *in, GError **errp)
{
    json_object *out = json_object_new_object();
    const QmpType *variant = NULL;
    json_object *tag;

    /* A union's tag is an enum, so its text is its value already. */
    if (t->variants && json_object_object_get_ex(in, t->tag, &tag) &&
        json_object_is_type(tag, json_type_string)) {
        for (const QmpVariant *v = t->variants; v->tag_value; v++) {
            if (!strcmp(v->tag_value, json_object_get_string(tag))) {
                variant = v->type;
            }
        }
    }
    json_object_object_foreach(in, key, val) {
        const QmpMember *m = find_member(t, variant, key);
        json_object *v = m ? typed(m->type, val, errp) : json_object_get(val);

        if (!v && *errp) {
            g_prefix_error(errp, "parameter '%s': ", key);
            json_object_put(out);
            return NULL;
        }
        json_object_object_add(out, key, v);
    }
    return out;
}

static json_object *typed_array(const QmpType *t, json_object *in, GError **errp)
{
    json_object *out = json_object_new_array();
    json_object *v;

    for (size_t i = 0;; i++) {
        g_autofree char *key = g_strdup_printf("%zu", i);

        if (!json_object_object_get_ex(in, key, &v)) {
            break;
        }
        v = typed(t->element, v, errp);
        if (!v && *errp) {
            json_object_put(out);
            return NULL;
        }
        json_object_array_add(out, v);
    }
    if (json_object_array_length(out) != (size_t)json_object_object_length(in)) {
        json_object_put(out);
        tern_invalid(errp, "array elements must be numbered 0, 1, ... without gaps");
        return NULL;
    }
    return out;
}

static json_object *typed(const QmpType *t, json_object *in, GError **errp)
{
    bool is_obj = json_object_is_type(in, json_type_object);

    if (t->kind == QMP_KIND_ALTERNATE) {
        return typed_alternate(t, in, errp);
    }
    if (t->kind == QMP_KIND_OBJECT && is_obj) {
        return typed_object(t, in, errp);
    }
    if (t->kind == QMP_KIND_ARRAY && is_obj) {
        return typed_array(t, in, errp);
    }
    if (is_obj || t->kind == QMP_KIND_OBJECT || t->kind == QMP_KIND_ARRAY) {
        return json_object_get(in);   /* the decoder says what is wrong */
    }
    return typed_scalar(t, json_object_get_string(in), errp);
}

json_object *qmp_keyval_to_json(const QmpType *t, KeyVal *kv, GError **errp)
{
    g_autoptr(json_object) tree = json_object_new_object();

    if (!keyval_tree(kv, tree, errp)) {
        return NULL;
    }
    return typed(t, tree, errp);
}
