/*
 * One error convention for all of tern: functions that can fail take a
 * 'GError **errp' last and return false / -1 / NULL on failure. Codes below are
 * coarse classes; the QMP layer maps them to QEMU's error classes.
 * Host failures the VMM cannot recover from call tern_die(); guest mistakes are
 * only ever warned about (tern_warn_guest), never fatal to the VMM.
 */
#ifndef TERN_ERROR_H
#define TERN_ERROR_H

#include "tern/common.h"

#define TERN_ERROR tern_error_quark()
GQuark tern_error_quark(void);

typedef enum {
    TERN_ERR_FAILED,          /* generic failure ("GenericError") */
    TERN_ERR_INVALID,         /* bad argument or malformed input */
    TERN_ERR_NOT_FOUND,       /* named object does not exist ("DeviceNotFound") */
    TERN_ERR_NOT_SUPPORTED,   /* feature tern does not implement */
    TERN_ERR_BUSY,            /* object in use (locked image, busy bitmap) */
    TERN_ERR_IO,              /* I/O error from the host */
    TERN_ERR_CMD_NOT_FOUND,   /* unknown QMP command ("CommandNotFound") */
} TernErrorCode;

/* g_set_error with ": <strerror(err)>" appended. */
void tern_set_error_errno(GError **errp, int err, const char *fmt, ...)
    TERN_PRINTF(3, 4);

/* "tern: <message>" on stderr. */
void tern_error_report(const char *fmt, ...) TERN_PRINTF(1, 2);
void tern_error_report_err(GError *err);   /* reports and frees */
void tern_warn(const char *fmt, ...) TERN_PRINTF(1, 2);
/* A guest did something invalid: warn once per call site class, never exit. */
void tern_warn_guest(const char *fmt, ...) TERN_PRINTF(1, 2);
void tern_die(const char *fmt, ...) TERN_PRINTF(1, 2) __attribute__((noreturn));

#endif
