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
    void (*print)(JsonNode *ret, GString *out);  /* NULL: prints nothing */
} HmpCommand;

static void print_status(JsonNode *ret, GString *out)
{
    JsonObject *o = json_node_get_object(ret);
    bool running = json_object_get_boolean_member(o, "running");
    const char *status = json_object_get_string_member(o, "status");

    g_string_append_printf(out, "VM status: %s", running ? "running" : "paused");
    if (!running && strcmp(status, "paused")) {
        g_string_append_printf(out, " (%s)", status);
    }
    g_string_append(out, "\r\n");
}

static const char *member_str(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n)
                                                        : "";
}

static bool member_bool(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_BOOLEAN && json_node_get_boolean(n);
}

/* QEMU's "Cache mode:" wording from query-block's cache flags. */
static void print_cache_mode(JsonObject *ins, GString *out)
{
    JsonObject *cache = json_object_has_member(ins, "cache")
        ? json_object_get_object_member(ins, "cache") : NULL;

    g_string_append_printf(out, "    Cache mode:       %s%s%s\r\n",
                           member_bool(cache, "writeback") ? "writeback" : "writethrough",
                           member_bool(cache, "direct") ? ", direct" : "",
                           member_bool(cache, "no-flush") ? ", ignore flushes" : "");
}

static void print_block_device(JsonObject *dev, GString *out)
{
    JsonObject *ins = json_object_has_member(dev, "inserted")
        ? json_object_get_object_member(dev, "inserted") : NULL;

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

static void print_block(JsonNode *ret, GString *out)
{
    JsonArray *list = json_node_get_array(ret);

    for (guint i = 0; i < json_array_get_length(list); i++) {
        if (i) {
            g_string_append(out, "\r\n");
        }
        print_block_device(json_array_get_object_element(list, i), out);
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

static void run_qmp(QmpRegistry *r, const char *qmp, JsonObject *args,
                    void (*print)(JsonNode *ret, GString *out), GString *out)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = qmp_call(r, qmp, args, &err);

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
        JsonObject *args;

        if (strncmp(cmd, h->name, n) || (cmd[n] && cmd[n] != ' ')) {
            continue;
        }
        if (!cmd[n]) {
            g_string_append_printf(out, "%s: missing argument '%s'\r\n",
                                   h->name, h->arg);
            return true;
        }
        args = json_object_new();
        json_object_set_string_member(args, h->arg, cmd + n + 1);
        run_qmp(r, h->qmp, args, NULL, out);
        json_object_unref(args);
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

static JsonNode *cmd_human_monitor_command(const QmpCall *call, JsonObject *args,
                                           GError **errp)
{
    g_autofree char *text =
        hmp_run(call->registry, json_object_get_string_member(args, "command-line"));
    JsonNode *n = json_node_new(JSON_NODE_VALUE);

    json_node_set_string(n, text);
    return n;
}

static const QmpArgSpec hmc_args[] = {
    { "command-line", QMP_ARG_STR, false },
    { "cpu-index", QMP_ARG_INT, true },
    { NULL },
};

static const QmpCommandDef hmc_command = {
    "human-monitor-command", cmd_human_monitor_command, hmc_args, 0,
};

void hmp_register_command(QmpRegistry *r)
{
    qmp_register_command(r, &hmc_command, NULL);
}
