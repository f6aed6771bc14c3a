/*
 * The QEMU-style command line: one table (softmmu/options.c) of options, each
 * naming its argument and a handler that fills VmConfig. An area that adds an
 * option adds one line to that table; options whose value another area
 * consumes later can use cmdline_store_raw, which keeps every argument under
 * the option's name (vm_config_list). The parser itself (softmmu/cmdline.c)
 * never changes for a new option.
 */
#ifndef SOFTMMU_CMDLINE_H
#define SOFTMMU_CMDLINE_H

#include "softmmu/vm-config.h"

typedef bool (*CmdlineHandler)(VmConfig *cfg, const char *name, const char *arg,
                               GError **errp);

typedef struct CmdlineOption {
    const char *name;         /* without the leading '-' */
    const char *arg;          /* argument placeholder for -help; NULL: none */
    CmdlineHandler handler;
    const char *help;
} CmdlineOption;

extern const CmdlineOption cmdline_options[];
extern const size_t cmdline_options_count;

/*
 * The key=value options as query-command-line-options lists them: QEMU's
 * group name ("smp-opts" for -smp) and the keys tern's handler accepts, with
 * QEMU's type names ("boolean", "string", "number", "size"). A group with no
 * keys takes keys its consumer checks (-object, -device).
 */
typedef struct CmdlineParam {
    const char *name;           /* NULL ends a list */
    const char *type;
} CmdlineParam;

typedef struct CmdlineGroup {
    const char *option;         /* NULL ends the table */
    const CmdlineParam *params;
} CmdlineGroup;

extern const CmdlineGroup cmdline_groups[];

/* Parses argv[1..] into cfg. Fails with a message naming the option. */
bool cmdline_parse(VmConfig *cfg, int argc, char **argv, GError **errp);
void cmdline_print_help(void);

/* Handler for options consumed by other areas: appends arg to the list. */
bool cmdline_store_raw(VmConfig *cfg, const char *name, const char *arg, GError **errp);

#endif
