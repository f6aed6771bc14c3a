/*
 * Splits a QMP byte stream into complete top-level JSON texts. A QMP client sends
 * concatenated JSON values with no delimiter, so the framer tracks only what it
 * needs to find where a value ends: string state (with escapes) and the depth of
 * braces and brackets. It never interprets the JSON; tern_json_parse parses each
 * framed text. Limits on text size and nesting depth bound the memory one client
 * can pin.
 */
#ifndef MONITOR_QMP_FRAMER_H
#define MONITOR_QMP_FRAMER_H

#include "tern/common.h"

/* Defaults, as documented in docs/qmp.md. QEMU allows 64 MiB per message and
 * 1024 levels; tern's commands are all small, so a smaller cap costs nothing. */
#define QMP_FRAMER_MAX_SIZE   (1 * MiB)
#define QMP_FRAMER_MAX_DEPTH  1024

typedef enum {
    QMP_FRAME_TEXT,       /* one complete top-level value (text, len) */
    QMP_FRAME_TOO_BIG,    /* a value exceeded max_size; its rest is skipped */
    QMP_FRAME_TOO_DEEP,   /* a value nested deeper than max_depth; rest skipped */
} QmpFrameKind;

/* Called for each framed value or limit violation. Returning false stops the
 * current qmp_framer_feed() call early (e.g. the connection is being closed). */
typedef bool (*QmpFrameFunc)(QmpFrameKind kind, const char *text, size_t len,
                             void *opaque);

typedef struct QmpFramer QmpFramer;

QmpFramer *qmp_framer_new(size_t max_size, unsigned max_depth);
void qmp_framer_free(QmpFramer *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpFramer, qmp_framer_free)

/*
 * Feeds bytes; calls cb for every value completed by them. A 0xff byte drops any
 * partial value (QEMU's resynchronisation convention). Returns false if cb asked
 * to stop.
 */
bool qmp_framer_feed(QmpFramer *f, const char *data, size_t len,
                     QmpFrameFunc cb, void *opaque);

/* True while a value is partially buffered (or being skipped). */
bool qmp_framer_pending(const QmpFramer *f);

#endif
