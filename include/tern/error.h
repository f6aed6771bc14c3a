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

/*
 * Sets *errp (TERN_ERROR, code) and is false, so a check reads
 *   if (len > max) {
 *       return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "length %u", len);
 *   }
 * tern_invalid() is the same with TERN_ERR_INVALID (malformed input), the
 * common case. Macros, so the compiler sees the false on every error path
 * (and a statement may ignore it).
 */
static inline bool tern_false(void)
{
    return false;
}
#define tern_fail(errp, code, ...) \
    (g_set_error(errp, TERN_ERROR, code, __VA_ARGS__), tern_false())
#define tern_invalid(errp, ...) tern_fail(errp, TERN_ERR_INVALID, __VA_ARGS__)

/*
 * Host I/O errors keep their errno. TERN_ERROR is an extended GError domain
 * (GLib's G_DEFINE_EXTENDED_ERROR) whose errors carry an errno beside
 * their class code: tern_set_error_errno() sets the class (TERN_ERR_BUSY for
 * EBUSY/EAGAIN, TERN_ERR_IO otherwise), the message "<fmt>: <strerror>"
 * and the errno. The errno travels with the GError itself - through
 * g_propagate_error, g_prefix_error and g_error_copy - so every layer that
 * passes the error up keeps it, and policy (werror=enospc, the
 * BLOCK_IO_ERROR event's nospace) asks tern_error_errno(), never the text.
 * A layer that builds a new error from an old one's message loses it.
 */
void tern_set_error_errno(GError **errp, int err, const char *fmt, ...)
    TERN_PRINTF(3, 4);
/* The errno 'err' carries; 0 if none (NULL, another domain, no errno). */
int tern_error_errno(const GError *err);

/* "tern: <message>" on stderr; with timestamps on (QEMU's -msg
 * timestamp=on), each message starts with the UTC time in ISO 8601 and a
 * space, as QEMU writes it. */
void tern_report_set_timestamps(bool on);
void tern_error_report(const char *fmt, ...) TERN_PRINTF(1, 2);
void tern_error_report_err(GError *err);   /* reports and frees */
void tern_warn(const char *fmt, ...) TERN_PRINTF(1, 2);
/* A guest did something invalid: warn, never exit. At most
 * TERN_GUEST_WARN_BURST such warnings per TERN_GUEST_WARN_WINDOW_US; the
 * rest are counted in one line when the next window opens. */
#define TERN_GUEST_WARN_BURST 10
#define TERN_GUEST_WARN_WINDOW_US (5 * G_USEC_PER_SEC)
void tern_warn_guest(const char *fmt, ...) TERN_PRINTF(1, 2);
void tern_die(const char *fmt, ...) TERN_PRINTF(1, 2) __attribute__((noreturn));

#endif
