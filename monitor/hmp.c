/*
 * human-monitor-command: the few HMP commands management tools still send
 * through QMP. Each runs the matching QMP command through the registry and
 * formats its result as QEMU's HMP prints it ("\r\n" line ends, as QEMU's
 * monitor emits them).
 */
#include <string.h>

#include "monitor/hmp.h"
#include "monitor/qmp-dispatch.h"

typedef struct HmpCommand {
    const char *name;
    const char *qmp;                    /* the QMP command it runs */
    void (*print)(json_object *ret, GString *out);  /* NULL: prints nothing */
} HmpCommand;

/* Member 'name' of o if it has JSON type t, else NULL. */
static json_object *member(json_object *o, const char *name, json_type t)
{
    json_object *v = NULL;

    return o && json_object_object_get_ex(o, name, &v) && json_object_is_type(v, t)
           ? v : NULL;
}

static const char *member_str(json_object *o, const char *name)
{
    json_object *v = member(o, name, json_type_string);

    return v ? json_object_get_string(v) : "";
}

static bool member_bool(json_object *o, const char *name)
{
    json_object *v = member(o, name, json_type_boolean);

    return v && json_object_get_boolean(v);
}

static void print_status(json_object *ret, GString *out)
{
    bool running = member_bool(ret, "running");
    const char *status = member_str(ret, "status");

    g_string_append_printf(out, "VM status: %s", running ? "running" : "paused");
    if (!running && strcmp(status, "paused")) {
        g_string_append_printf(out, " (%s)", status);
    }
    g_string_append(out, "\r\n");
}

/* QEMU's "Cache mode:" wording from query-block's cache flags. */
static void print_cache_mode(json_object *ins, GString *out)
{
    json_object *cache = member(ins, "cache", json_type_object);

    g_string_append_printf(out, "    Cache mode:       %s%s%s\r\n",
                           member_bool(cache, "writeback") ? "writeback" : "writethrough",
                           member_bool(cache, "direct") ? ", direct" : "",
                           member_bool(cache, "no-flush") ? ", ignore flushes" : "");
}

static void print_block_device(json_object *dev, GString *out)
{
    json_object *ins = member(dev, "inserted", json_type_object);

    g_string_append(out, member_str(dev, "device"));
    if (!ins) {
        g_string_append(out, ": [not inserted]\r\n");
        return;
    }
    g_string_append_printf(out, " (%s): %s (%s%s)\r\n", member_str(ins, "node-name"),
                           member_str(ins, "file"), member_str(ins, "drv"),
                           member_bool(ins, "ro") ? ", read-only" : "");
    if (*member_str(dev, "qdev")) {
        g_string_append_printf(out, "    Attached to:      %s\r\n", member_str(dev, "qdev"));
    }
    if (member_bool(dev, "removable")) {
        g_string_append_printf(out, "    Removable device: %slocked, tray closed\r\n",
                               member_bool(dev, "locked") ? "" : "not ");
    }
    print_cache_mode(ins, out);
}

static void print_block(json_object *ret, GString *out)
{
    for (size_t i = 0; i < json_object_array_length(ret); i++) {
        if (i) {
            g_string_append(out, "\r\n");
        }
        print_block_device(json_object_array_get_idx(ret, i), out);
    }
}

static const HmpCommand hmp_commands[] = {
    { "info status", "query-status", print_status },
    { "info block", "query-block", print_block },
    { "stop", "stop", NULL },
    { "cont", "cont", NULL },
    { "c", "cont", NULL },
    { "quit", "quit", NULL },
    { "q", "quit", NULL },
    { "system_reset", "system_reset", NULL },
    { "system_powerdown", "system_powerdown", NULL },
    { "migrate_start_postcopy", "migrate-start-postcopy", NULL },
    { "migrate_pause", "migrate-pause", NULL },
};

/* Commands with one string argument: "NAME VALUE" runs QMP 'qmp' with
 * { arg: VALUE }. */
typedef struct HmpArgCommand {
    const char *name;
    const char *qmp;
    const char *arg;
} HmpArgCommand;

static const HmpArgCommand hmp_arg_commands[] = {
    { "migrate_recover", "migrate-recover", "uri" },
};

static void run_qmp(QmpRegistry *r, const char *qmp, json_object *args,
                    void (*print)(json_object *ret, GString *out),
                    GString *out)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ret = qmp_call(r, qmp, args, &err);

    if (!ret) {
        g_string_append_printf(out, "Error: %s\r\n", err->message);
    } else if (print) {
        print(ret, out);
    }
}

static bool run_arg_command(QmpRegistry *r, const char *cmd, GString *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(hmp_arg_commands); i++) {
        const HmpArgCommand *h = &hmp_arg_commands[i];
        size_t n = strlen(h->name);
        g_autoptr(json_object) args = NULL;

        if (strncmp(cmd, h->name, n) || (cmd[n] && cmd[n] != ' ')) {
            continue;
        }
        if (!cmd[n]) {
            g_string_append_printf(out, "%s: missing argument '%s'\r\n",
                                   h->name, h->arg);
            return true;
        }
        args = json_object_new_object();
        tern_json_add_str(args, h->arg, cmd + n + 1);
        run_qmp(r, h->qmp, args, NULL, out);
        return true;
    }
    return false;
}

/* Collapses runs of blanks so "info   status " finds "info status". */
static char *normalise(const char *line)
{
    g_auto(GStrv) words = g_strsplit_set(line, " \t\r\n", -1);
    GString *s = g_string_new(NULL);

    for (char **w = words; *w; w++) {
        if (**w) {
            g_string_append_printf(s, "%s%s", s->len ? " " : "", *w);
        }
    }
    return g_string_free(s, FALSE);
}

char *hmp_run(QmpRegistry *r, const char *line)
{
    g_autofree char *cmd = normalise(line);
    GString *out = g_string_new(NULL);

    if (!*cmd) {
        return g_string_free(out, FALSE);
    }
    for (size_t i = 0; i < ARRAY_SIZE(hmp_commands); i++) {
        const HmpCommand *h = &hmp_commands[i];

        if (!strcmp(cmd, h->name)) {
            run_qmp(r, h->qmp, NULL, h->print, out);
            return g_string_free(out, FALSE);
        }
    }
    if (run_arg_command(r, cmd, out)) {
        return g_string_free(out, FALSE);
    }
    g_string_append_printf(out, "unknown command: '%s'\r\n", cmd);
    return g_string_free(out, FALSE);
}

typedef struct HmcArgs {
    char *command_line;
    bool has_cpu_index;
    int64_t cpu_index;
} HmcArgs;

QMP_OBJECT_TYPE(hmc_args, "human-monitor-command-arg", HmcArgs,
    QMP_MEMBER(HmcArgs, command_line, "command-line", qmp_type_str),
    QMP_OPTIONAL(HmcArgs, cpu_index, "cpu-index", qmp_type_int));

/* QEMU's check of cpu-index: a CPU query-cpus-fast lists. */
static bool cpu_index_ok(QmpRegistry *r, int64_t index, GError **errp)
{
    g_autoptr(json_object) cpus = NULL;
    size_t n = 0;

    if (qmp_registry_find(r, "query-cpus-fast", NULL)) {
        cpus = qmp_call(r, "query-cpus-fast", NULL, NULL);
        n = json_object_is_type(cpus, json_type_array) ? json_object_array_length(cpus)
                                                       : 0;
    }
    if (index < 0 || index >= (int64_t)n) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'cpu-index' expects a CPU number");
        return false;
    }
    return true;
}

static json_object *cmd_human_monitor_command(const QmpCall *call, const void *args,
                                              GError **errp)
{
    const HmcArgs *a = args;
    g_autofree char *text = NULL;

    /* tern's HMP subset acts on no particular CPU; the index is checked. */
    if (a->has_cpu_index && !cpu_index_ok(call->registry, a->cpu_index, errp)) {
        return NULL;
    }
    text = hmp_run(call->registry, a->command_line);
    return json_object_new_string(text);
}

static const QmpCommandDef hmc_command =
    QMP_COMMAND("human-monitor-command", cmd_human_monitor_command, &hmc_args,
                &qmp_type_str);

void hmp_register_command(QmpRegistry *r)
{
    qmp_register_command(r, &hmc_command, NULL);
}
