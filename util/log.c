/*
 * Error and diagnostic reporting shared by the VMM and the tools. Messages go to
 * stderr prefixed with the program name, so test logs say who complained.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/error.h"

G_DEFINE_QUARK(tern-error-quark, tern_error)

static void vreport(const char *kind, const char *fmt, va_list ap)
{
    const char *prog = g_get_prgname();

    fprintf(stderr, "%s: %s", prog ? prog : "tern", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void tern_set_error_errno(GError **errp, int err, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, TERN_ERROR, err == EBUSY || err == EAGAIN ? TERN_ERR_BUSY
                : TERN_ERR_IO, "%s: %s", msg, g_strerror(err));
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

void tern_warn_guest(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("guest error: ", fmt, ap);
    va_end(ap);
}

void tern_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}
