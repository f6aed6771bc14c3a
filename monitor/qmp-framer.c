/*
 * The QMP stream framer: finds where each top-level JSON value ends in a byte
 * stream, enforcing size and depth limits, without parsing the JSON itself.
 * At depth 0 a value is an object or array (ends when its depth returns to 0), a
 * string (ends at its closing quote) or a bare word such as 42 or true (ends at
 * the next delimiter). Stray closers and separators at depth 0 are framed alone
 * so that the parser reports them, as QEMU does, instead of being swallowed.
 */
#include <string.h>

#include "monitor/qmp-framer.h"

struct QmpFramer {
    size_t max_size;
    unsigned max_depth;
    GString *buf;       /* the value being framed */
    size_t depth;       /* braces + brackets currently open */
    bool in_string;
    bool escape;        /* previous byte was a backslash inside a string */
    bool in_word;       /* a bare scalar at depth 0 */
    bool skipping;      /* over a limit: track structure, keep nothing */
};

QmpFramer *qmp_framer_new(size_t max_size, unsigned max_depth)
{
    QmpFramer *f = g_new0(QmpFramer, 1);

    f->max_size = max_size;
    f->max_depth = max_depth;
    f->buf = g_string_sized_new(256);
    return f;
}

void qmp_framer_free(QmpFramer *f)
{
    if (f) {
        g_string_free(f->buf, TRUE);
        g_free(f);
    }
}

bool qmp_framer_pending(const QmpFramer *f)
{
    return f->buf->len > 0 || f->skipping || f->depth || f->in_string || f->in_word;
}

static void framer_reset(QmpFramer *f)
{
    g_string_truncate(f->buf, 0);
    f->depth = 0;
    f->in_string = f->escape = f->in_word = f->skipping = false;
}

/* A value just ended: hand it over unless it was being skipped. */
static bool framer_emit(QmpFramer *f, QmpFrameFunc cb, void *opaque)
{
    bool skipped = f->skipping;
    bool go_on = true;

    f->skipping = false;
    if (!skipped) {
        go_on = cb(QMP_FRAME_TEXT, f->buf->str, f->buf->len, opaque);
    }
    g_string_truncate(f->buf, 0);
    return go_on;
}

/* Enter skip mode after a limit violation and tell the owner once. */
static bool framer_violate(QmpFramer *f, QmpFrameKind kind, QmpFrameFunc cb,
                           void *opaque)
{
    g_string_truncate(f->buf, 0);
    if (f->skipping) {
        return true;
    }
    f->skipping = true;
    return cb(kind, NULL, 0, opaque);
}

static bool framer_append(QmpFramer *f, char c, QmpFrameFunc cb, void *opaque)
{
    if (f->skipping) {
        return true;
    }
    g_string_append_c(f->buf, c);
    if (f->buf->len > f->max_size) {
        return framer_violate(f, QMP_FRAME_TOO_BIG, cb, opaque);
    }
    return true;
}

/* A run of plain bytes inside a string or bare word, appended at once. */
static bool framer_append_run(QmpFramer *f, const char *run, size_t n,
                              QmpFrameFunc cb, void *opaque)
{
    if (f->skipping) {
        return true;
    }
    if (f->buf->len + n > f->max_size) {
        return framer_violate(f, QMP_FRAME_TOO_BIG, cb, opaque);
    }
    g_string_append_len(f->buf, run, n);
    return true;
}

/* Length of the prefix of data[0..len) that needs no per-byte handling: no
 * 0xff, and no quote or backslash (in a string) or delimiter (in a word). */
static size_t plain_run(const char *data, size_t len, bool in_string)
{
    size_t n = 0;

    for (; n < len; n++) {
        unsigned char c = data[n];

        if (c == 0xff || c == '"' || c == '\\') {
            break;
        }
        if (!in_string && (c <= ' ' || c == '{' || c == '}' || c == '[' ||
                           c == ']' || c == ',' || c == ':')) {
            break;
        }
    }
    return n;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_delimiter(char c)
{
    return is_space(c) || strchr("{}[]\",:", c) != NULL;
}

static bool framer_string_byte(QmpFramer *f, char c, QmpFrameFunc cb, void *opaque)
{
    if (!framer_append(f, c, cb, opaque)) {
        return false;
    }
    if (f->escape) {
        f->escape = false;
    } else if (c == '\\') {
        f->escape = true;
    } else if (c == '"') {
        f->in_string = false;
        if (f->depth == 0) {
            return framer_emit(f, cb, opaque);
        }
    }
    return true;
}

/* One byte outside any string or bare word. */
static bool framer_structural_byte(QmpFramer *f, char c, QmpFrameFunc cb,
                                   void *opaque)
{
    if (is_space(c)) {
        return f->depth == 0 || framer_append(f, c, cb, opaque);
    }
    if (!framer_append(f, c, cb, opaque)) {
        return false;
    }
    switch (c) {
    case '"':
        f->in_string = true;
        return true;
    case '{':
    case '[':
        if (++f->depth > f->max_depth) {
            return framer_violate(f, QMP_FRAME_TOO_DEEP, cb, opaque);
        }
        return true;
    case '}':
    case ']':
        if (f->depth == 0) {
            return framer_emit(f, cb, opaque);    /* stray closer */
        }
        return --f->depth == 0 ? framer_emit(f, cb, opaque) : true;
    case ',':
    case ':':
        return f->depth == 0 ? framer_emit(f, cb, opaque) : true;
    default:
        if (f->depth == 0) {
            f->in_word = true;
        }
        return true;
    }
}

bool qmp_framer_feed(QmpFramer *f, const char *data, size_t len,
                     QmpFrameFunc cb, void *opaque)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        bool ok;
        size_t run = 0;

        /* Strings and words are most of the bytes: take them in runs. */
        if (f->in_string && !f->escape) {
            run = plain_run(data + i, len - i, true);
        } else if (f->in_word) {
            run = plain_run(data + i, len - i, false);
        }
        if (run) {
            if (!framer_append_run(f, data + i, run, cb, opaque)) {
                return false;
            }
            i += run - 1;
            continue;
        }
        if ((unsigned char)c == 0xff) {
            framer_reset(f);
            continue;
        }
        if (f->in_word) {
            if (!is_delimiter(c)) {
                if (!framer_append(f, c, cb, opaque)) {
                    return false;
                }
                continue;
            }
            f->in_word = false;
            if (!framer_emit(f, cb, opaque)) {
                return false;
            }
        }
        ok = f->in_string ? framer_string_byte(f, c, cb, opaque)
                          : framer_structural_byte(f, c, cb, opaque);
        if (!ok) {
            return false;
        }
    }
    return true;
}
