/*
 * Errors and diagnostic reporting shared by the VMM and the tools: the
 * TERN_ERROR domain (whose errors carry an errno beside their class), the
 * helpers that set one, and messages on stderr prefixed with the program
 * name, so test logs say who complained.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/error.h"

/* TERN_ERROR's private part: the errno of a host I/O error, else 0. */
typedef struct {
    int errnum;
} TernErrorPrivate;

static void tern_error_private_init(TernErrorPrivate *priv)
{
    priv->errnum = 0;
}

static void tern_error_private_copy(const TernErrorPrivate *src,
                                    TernErrorPrivate *dest)
{
    dest->errnum = src->errnum;
}

static void tern_error_private_clear(TernErrorPrivate *priv)
{
}

G_DEFINE_EXTENDED_ERROR(TernError, tern_error)

int tern_error_errno(const GError *err)
{
    if (!err || err->domain != TERN_ERROR) {
        return 0;
    }
    return tern_error_get_private(err)->errnum;
}

/* Like the program name (g_set_prgname), one setting for the process's
 * stderr, set once while the command line is read. */
static bool report_timestamps;

void tern_report_set_timestamps(bool on)
{
    report_timestamps = on;
}

static void vreport(const char *kind, const char *fmt, va_list ap)
{
    const char *prog = g_get_prgname();

    if (report_timestamps) {
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        g_autofree char *stamp = g_date_time_format_iso8601(now);

        fprintf(stderr, "%s ", stamp);
    }
    fprintf(stderr, "%s: %s", prog ? prog : "tern", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void tern_set_error_errno(GError **errp, int err, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;
    GError *e;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    e = g_error_new(TERN_ERROR, err == EBUSY || err == EAGAIN ? TERN_ERR_BUSY
                    : TERN_ERR_IO, "%s: %s", msg, g_strerror(err));
    tern_error_get_private(e)->errnum = err;
    g_propagate_error(errp, e);
}

void tern_error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

void tern_error_report_err(GError *err)
{
    tern_error_report("%s", err->message);
    g_error_free(err);
}

void tern_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

/* A guest can repeat an invalid access millions of times a second: its
 * warnings go out in bursts of at most TERN_GUEST_WARN_BURST per window,
 * and what a window dropped is counted when the next one opens, so the log
 * stays readable and bounded whatever the guest does. */
static struct {
    GMutex lock;
    gint64 window_start;
    unsigned sent, dropped;
} guest_warn;

void tern_warn_guest(const char *fmt, ...)
{
    gint64 now = g_get_monotonic_time();
    va_list ap;

    g_mutex_lock(&guest_warn.lock);
    if (now - guest_warn.window_start >= TERN_GUEST_WARN_WINDOW_US) {
        if (guest_warn.dropped) {
            tern_error_report("guest error: %u more guest errors were not "
                              "reported", guest_warn.dropped);
        }
        guest_warn.window_start = now;
        guest_warn.sent = guest_warn.dropped = 0;
    }
    if (guest_warn.sent < TERN_GUEST_WARN_BURST) {
        guest_warn.sent++;
        va_start(ap, fmt);
        vreport("guest error: ", fmt, ap);
        va_end(ap);
    } else {
        guest_warn.dropped++;
    }
    g_mutex_unlock(&guest_warn.lock);
}

void tern_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}
