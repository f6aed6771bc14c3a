/*
 * human-monitor-command: the few HMP commands management tools still send
 * through QMP. Most run the matching QMP command through the registry and
 * format its result as QEMU's HMP prints it ("\r\n" line ends, as QEMU's
 * monitor emits them); subsystems add commands of their own (savevm...),
 * whose argument this file parses as QEMU's HMP does.
 */
#include <string.h>

#include "monitor/hmp.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

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
};

typedef struct HmpOwn {
    char *name;
    HmpArg arg;
    HmpFunc fn;
    void *opaque;
} HmpOwn;

struct Hmp {
    QmpRegistry *registry;
    GPtrArray *own;                     /* of HmpOwn *: commands of its own */
};

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

/* Runs the QMP twin of 'cmd'; false if it has none. */
static bool run_mapped(Hmp *h, const char *cmd, GString *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(hmp_commands); i++) {
        const HmpCommand *c = &hmp_commands[i];
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonNode) ret = NULL;

        if (strcmp(cmd, c->name)) {
            continue;
        }
        ret = qmp_call(h->registry, c->qmp, NULL, &err);
        if (!ret) {
            g_string_append_printf(out, "Error: %s\r\n", err->message);
        } else if (c->print) {
            c->print(ret, out);
        }
        return true;
    }
    return false;
}

/* One string argument at *p as QEMU's HMP reads it: a word, or a
 * double-quoted string with backslash escapes. NULL if there is none. */
static char *parse_word(const char **p, GError **errp)
{
    const char *s = *p + strspn(*p, " \t");
    GString *w = g_string_new(NULL);

    if (*s != '"') {
        size_t n = strcspn(s, " \t");

        g_string_append_len(w, s, n);
        *p = s + n;
        return w->len ? g_string_free(w, FALSE) : (g_string_free(w, TRUE), NULL);
    }
    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            g_string_append_c(w, *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s);
        } else {
            g_string_append_c(w, *s);
        }
    }
    if (*s != '"') {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "unterminated string");
        g_string_free(w, TRUE);
        return NULL;
    }
    *p = s + 1;
    return g_string_free(w, FALSE);
}

/* The argument of c from 'rest', with QEMU's complaints. */
static bool parse_arg(const HmpOwn *c, const char *rest, char **arg,
                      GString *out)
{
    g_autoptr(GError) err = NULL;
    const char *p = rest;

    *arg = c->arg == HMP_ARG_NONE ? NULL : parse_word(&p, &err);
    if (err || (!*arg && c->arg == HMP_ARG_STR)) {
        g_string_append_printf(out, "%s: %s\r\n", c->name,
                               err ? err->message : "string expected");
    } else if (p[strspn(p, " \t")]) {
        g_string_append_printf(out, "%s: extraneous characters at the end of "
                               "line\r\n", c->name);
    } else {
        return true;
    }
    g_string_append_printf(out, "Try \"help %s\" for more information\r\n",
                           c->name);
    g_clear_pointer(arg, g_free);
    return false;
}

static void append_crlf(GString *out, const char *text)
{
    for (const char *t = text; *t; t++) {
        if (*t == '\n') {
            g_string_append_c(out, '\r');
        }
        g_string_append_c(out, *t);
    }
}

/* A command of its own at the start of 'line'; false if none matches. */
static bool run_own(Hmp *h, const char *line, GString *out)
{
    for (guint i = 0; i < h->own->len; i++) {
        const HmpOwn *c = h->own->pdata[i];
        size_t n = strlen(c->name);
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(GError) err = NULL;
        g_autofree char *arg = NULL;

        if (strncmp(line, c->name, n) || (line[n] && line[n] != ' ')) {
            continue;
        }
        if (parse_arg(c, line + n, &arg, out)) {
            bool ok = c->fn(c->opaque, arg, text, &err);

            append_crlf(out, text->str);
            if (!ok) {
                g_string_append_printf(out, "Error: %s\r\n", err->message);
            }
        }
        return true;
    }
    return false;
}

char *hmp_run(Hmp *h, const char *line)
{
    g_autofree char *cmd = normalise(line);
    GString *out = g_string_new(NULL);

    if (*cmd && !run_mapped(h, cmd, out) && !run_own(h, cmd, out)) {
        g_string_append_printf(out, "unknown command: '%s'\r\n", cmd);
    }
    return g_string_free(out, FALSE);
}

static JsonNode *cmd_human_monitor_command(const QmpCall *call, JsonObject *args,
                                           GError **errp)
{
    g_autofree char *text =
        hmp_run(call->opaque, json_object_get_string_member(args, "command-line"));
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

static void own_free(gpointer p)
{
    HmpOwn *c = p;

    g_free(c->name);
    g_free(c);
}

Hmp *hmp_new(QmpRegistry *r)
{
    Hmp *h = g_new0(Hmp, 1);

    h->registry = r;
    h->own = g_ptr_array_new_with_free_func(own_free);
    qmp_register_command(r, &hmc_command, h);
    return h;
}

void hmp_free(Hmp *h)
{
    if (h) {
        g_ptr_array_unref(h->own);
        g_free(h);
    }
}

void hmp_add_command(Hmp *h, const char *name, HmpArg arg, HmpFunc fn,
                     void *opaque)
{
    HmpOwn *c = g_new0(HmpOwn, 1);

    c->name = g_strdup(name);
    c->arg = arg;
    c->fn = fn;
    c->opaque = opaque;
    g_ptr_array_add(h->own, c);
}
