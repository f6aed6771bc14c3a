/*
 * Fuzz the key=value option parser (util/keyval.c) and the number/size
 * parsers: any string parses or fails with an error; every parsed key reads
 * back, and the unused-key check agrees with what was read.
 */
#include <string.h>

#include "tern/keyval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *s = g_strndup((const char *)data, size);
    GError *err = NULL;
    KeyVal *kv = keyval_parse(s, size % 2 ? "driver" : NULL, &err);
    uint64_t n;
    bool b;

    if (!kv) {
        g_assert(err);
        g_clear_error(&err);
    } else {
        keyval_get(kv, "driver");
        if (!keyval_get_u64(kv, "iobase", &n, &err) ||
            !keyval_get_bool(kv, "server", &b, &err) ||
            !keyval_get_size(kv, "size", &n, &err) ||
            !keyval_check_unused(kv, &err)) {
            g_assert(err);
            g_clear_error(&err);
        }
        keyval_free(kv);
    }
    if (!parse_size(s, MiB, &n, &err)) {
        g_clear_error(&err);
    }
    return 0;
}
