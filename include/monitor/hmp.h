/*
 * The human monitor subset reachable through QMP's human-monitor-command:
 * "info status", "info block", "stop", "cont", "quit", "system_reset",
 * "system_powerdown", "migrate_start_postcopy", "migrate_pause", each
 * mapped onto a registered QMP command; "migrate_recover URI"; and
 * commands of their own that subsystems add (savevm, loadvm, delvm, "info
 * snapshots": HMP commands without a QMP twin). Arguments are parsed as
 * QEMU's HMP parses a string ("s"): a word or a double-quoted string, with
 * QEMU's messages for a missing or extraneous one.
 */
#ifndef MONITOR_HMP_H
#define MONITOR_HMP_H

#include "monitor/qmp-registry.h"

typedef struct Hmp Hmp;

/* Registers human-monitor-command on r; the Hmp must outlive r's use. */
Hmp *hmp_new(QmpRegistry *r);
void hmp_free(Hmp *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Hmp, hmp_free)

/* How many arguments a command of its own takes. */
typedef enum {
    HMP_ARG_NONE,
    HMP_ARG_OPTIONAL_STR,
    HMP_ARG_STR,
} HmpArg;

/* arg: the parsed argument or NULL; out gets the command's text, '\n'
 * line ends (printed as "\r\n"); false with *errp prints "Error: ...". */
typedef bool (*HmpFunc)(void *opaque, const char *arg, GString *out,
                        GError **errp);
/* name may be two words ("info snapshots"); opaque must outlive h. */
void hmp_add_command(Hmp *h, const char *name, HmpArg arg, HmpFunc fn,
                     void *opaque);

/* Runs one HMP command line and returns its output (never NULL). */
char *hmp_run(Hmp *h, const char *line);

#endif
