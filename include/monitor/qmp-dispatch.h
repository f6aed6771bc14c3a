/*
 * The QMP protocol core, independent of any transport: one client's session
 * state (capabilities negotiation), turning a framed JSON text into a reply, the
 * greeting, events, and QEMU's error shape. The server feeds it bytes; unit tests
 * and the fuzz harness call it directly.
 */
#ifndef MONITOR_QMP_DISPATCH_H
#define MONITOR_QMP_DISPATCH_H

#include "monitor/qmp-registry.h"

/* The QEMU release whose QMP tern matches; 'package' names tern's version. */
#define QMP_QEMU_MAJOR 7
#define QMP_QEMU_MINOR 2
#define QMP_QEMU_MICRO 0

/* QEMU's error classes, as GError codes in QMP_ERROR. Errors from other domains
 * map as tern/error.h says: TERN_ERR_NOT_FOUND is DeviceNotFound,
 * TERN_ERR_CMD_NOT_FOUND is CommandNotFound, all else GenericError. */
#define QMP_ERROR qmp_error_quark()
GQuark qmp_error_quark(void);
typedef enum {
    QMP_ERROR_GENERIC,
    QMP_ERROR_COMMAND_NOT_FOUND,
    QMP_ERROR_DEVICE_NOT_FOUND,
    QMP_ERROR_DEVICE_NOT_ACTIVE,
    QMP_ERROR_KVM_MISSING_CAP,
} QmpErrorClass;

/* Descriptors one message may carry (SCM_RIGHTS); more are closed. */
#define QMP_MAX_PASSED_FDS 8

struct QmpSession {
    bool negotiated;        /* qmp_capabilities accepted: commands and events flow */
    bool oob;               /* the client enabled the "oob" capability */
    /* Descriptors the client's latest message carried, for getfd; as in
     * QEMU, a new message's replace them and getfd takes the first. */
    int passed_fds[QMP_MAX_PASSED_FDS];
    unsigned n_passed_fds;
};

/* Closes the session's passed descriptors, then keeps fds[0..n) instead. */
void qmp_session_set_passed_fds(QmpSession *s, const int *fds, unsigned n);

/* {"QMP": {"version": ..., "capabilities": ["oob"]}} */
json_object *qmp_greeting(void);
/* {"qemu": {"micro", "minor", "major"}, "package": "tern-X"}: query-version. */
json_object *qmp_version_info(void);

/*
 * Handles one framed text: parses it (tern_json_parse), validates the
 * request's shape, checks negotiation, decodes the arguments into the
 * command's C struct and runs the command. Returns the reply to send (never
 * NULL).
 */
json_object *qmp_dispatch_text(QmpRegistry *r, QmpSession *s, const char *text,
                               size_t len);
/* The same for an already-parsed request. */
json_object *qmp_dispatch(QmpRegistry *r, QmpSession *s, json_object *request);

/* Runs a command by name without a session (HMP, internal users): the caller
 * frees the result; NULL with *errp set on failure. args may be NULL. */
json_object *qmp_call(QmpRegistry *r, const char *name, json_object *args,
                      GError **errp);

/* {"error": {"class", "desc"}} with "id" copied when given. */
json_object *qmp_error_reply(const GError *err, json_object *id);
const char *qmp_error_class_name(const GError *err);

/* {"timestamp": {"seconds", "microseconds"}, "event": name[, "data": data]};
 * takes ownership of data (may be NULL). */
json_object *qmp_event_new(const char *name, json_object *data);

/* One line of QMP wire text, "\r\n"-terminated as QEMU writes it. */
char *qmp_to_wire(json_object *msg, size_t *len);

#endif
