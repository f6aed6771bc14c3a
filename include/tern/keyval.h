/*
 * QEMU-style "key=value,key=value" option strings, as -device, -drive, -serial,
 * -qmp and -machine take them: an optional implied first key ("file.img,if=none"
 * means "file=file.img,if=none" when the implied key is "file"), ",," standing for
 * a literal comma inside a value, and every key used at most once. Consumers read
 * keys with the getters and then call keyval_check_unused() so that a typo in a key
 * is a clear error instead of being silently ignored.
 */
#ifndef TERN_KEYVAL_H
#define TERN_KEYVAL_H

#include "tern/common.h"

typedef struct KeyVal KeyVal;

/* implied_key may be NULL: then a first item without '=' is an error. */
KeyVal *keyval_parse(const char *str, const char *implied_key, GError **errp);
/* QEMU's JSON form of the same options ("-device '{"driver": ...}'"): a JSON
 * object whose nested members become dotted keys ("cache.direct"), scalars
 * their text (booleans "on"/"off"); null is refused. */
KeyVal *keyval_parse_json(const char *str, GError **errp);
/* JSON if str starts with '{' (as QEMU decides), else key=value. */
KeyVal *keyval_parse_any(const char *str, const char *implied_key, GError **errp);
void keyval_free(KeyVal *kv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KeyVal, keyval_free)

/* The string as given, for error messages. */
const char *keyval_source(const KeyVal *kv);
bool keyval_has(const KeyVal *kv, const char *key);
/* Returns the value (and marks the key used) or NULL if absent. */
const char *keyval_get(KeyVal *kv, const char *key);
/* Absent keys leave *out untouched and succeed; malformed values fail. */
bool keyval_get_bool(KeyVal *kv, const char *key, bool *out, GError **errp);
bool keyval_get_u64(KeyVal *kv, const char *key, uint64_t *out, GError **errp);
bool keyval_get_size(KeyVal *kv, const char *key, uint64_t *out, GError **errp);
/* The items in the order given; keyval_get_at marks the i-th used. */
size_t keyval_count(const KeyVal *kv);
const char *keyval_key_at(const KeyVal *kv, size_t i);
const char *keyval_get_at(KeyVal *kv, size_t i);
/* Fails naming the first key no getter asked for. */
bool keyval_check_unused(const KeyVal *kv, GError **errp);

/* "on|yes|true" / "off|no|false", as QEMU accepts them. */
bool parse_bool(const char *s, bool *out, GError **errp);
/* Decimal, or 0x hex, or octal with a leading 0. */
bool parse_u64(const char *s, uint64_t *out, GError **errp);
/* A byte count with an optional suffix B/K/M/G/T (powers of 1024); a bare
 * number is scaled by default_unit (1 for bytes, MiB for -m). */
bool parse_size(const char *s, uint64_t default_unit, uint64_t *out, GError **errp);

#endif
