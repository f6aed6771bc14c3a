/*
 * JSON for tern is json-c (docs/qmp.md says why). This header adds what every
 * user needs on top of it: g_autoptr support, and one strict parser that
 * closes json-c's lenient corners (NaN and Infinity literals, "1.", integers
 * beyond 64 bits silently clamped, trailing text) so QMP and the migration
 * stream reader treat hostile text alike.
 */
#ifndef TERN_JSON_H
#define TERN_JSON_H

#include <json-c/json.h>

#include "tern/common.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* Serialisation flags: compact, '/' left as is (json-c escapes it by default). */
#define TERN_JSON_COMPACT   (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define TERN_JSON_PRETTY    (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | \
                             JSON_C_TO_STRING_NOSLASHESCAPE)

/* o[name] = a new value: the setters every JSON writer in tern uses. */
static inline void tern_json_add_str(json_object *o, const char *name, const char *v)
{
    json_object_object_add(o, name, json_object_new_string(v));
}

static inline void tern_json_add_int(json_object *o, const char *name, int64_t v)
{
    json_object_object_add(o, name, json_object_new_int64(v));
}

static inline void tern_json_add_uint(json_object *o, const char *name, uint64_t v)
{
    json_object_object_add(o, name, json_object_new_uint64(v));
}

static inline void tern_json_add_bool(json_object *o, const char *name, bool v)
{
    json_object_object_add(o, name, json_object_new_boolean(v));
}

/*
 * Parses exactly one JSON value filling text[0, len) (whitespace around it is
 * fine) nested at most max_depth deep. Refuses what RFC 8259 refuses and
 * json-c lets through, and numbers tern cannot hold exactly: non-finite
 * values and integers outside [INT64_MIN, UINT64_MAX]. Doubles are written
 * back in the %.17g form, not as their input text. Returns a new reference,
 * or NULL with *errp set to what is wrong (no "JSON parse error" prefix).
 * A JSON null parses to NULL too: *errp tells the two apart.
 */
json_object *tern_json_parse(const char *text, size_t len, unsigned max_depth,
                             GError **errp);

/* The value of a JSON integer, if it fits the type (json-c keeps one integer
 * type for both ranges and clamps when asked for the other). */
bool tern_json_int64(json_object *o, int64_t *v);
bool tern_json_uint64(json_object *o, uint64_t *v);

#endif
