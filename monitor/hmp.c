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
        g_autoptr(json_object) ret = NULL;

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
    const char *s = *p + strspn(*p, " \t\r\n");
    GString *w = g_string_new(NULL);

    if (*s != '"') {
        size_t n = strcspn(s, " \t\r\n");

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
    } else if (p[strspn(p, " \t\r\n")]) {
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

/* The rest of 'line' after the words of 'name' (blanks between them may
 * differ), or NULL if the line does not start with them. */
static const char *after_words(const char *line, const char *name)
{
    const char *p = line + strspn(line, " \t");

    for (const char *n = name; *n;) {
        size_t len = strcspn(n, " ");

        if (strncmp(p, n, len) || (p[len] && !strchr(" \t\r\n", p[len]))) {
            return NULL;
        }
        p += len;
        n += len + strspn(n + len, " ");
        p += n[0] ? strspn(p, " \t") : 0;
    }
    return p;
}

/* A command of its own at the start of 'line'; false if none matches. Its
 * argument is read from the line as given (quoted blanks kept). */
static bool run_own(Hmp *h, const char *line, GString *out)
{
    for (guint i = 0; i < h->own->len; i++) {
        const HmpOwn *c = h->own->pdata[i];
        const char *rest = after_words(line, c->name);
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(GError) err = NULL;
        g_autofree char *arg = NULL;

        if (!rest) {
            continue;
        }
        if (parse_arg(c, rest, &arg, out)) {
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

    if (*cmd && !run_mapped(h, cmd, out) && !run_own(h, line, out)) {
        g_string_append_printf(out, "unknown command: '%s'\r\n", cmd);
    }
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
    text = hmp_run(call->opaque, a->command_line);
    return json_object_new_string(text);
}

/* migrate_recover URI: QMP migrate-recover, the word as its uri. */
static bool hmp_migrate_recover(void *opaque, const char *arg, GString *out,
                                GError **errp)
{
    Hmp *h = opaque;
    g_autoptr(json_object) args = json_object_new_object();
    g_autoptr(json_object) ret = NULL;

    tern_json_add_str(args, "uri", arg);
    ret = qmp_call(h->registry, "migrate-recover", args, errp);
    return ret != NULL;
}

static const QmpCommandDef hmc_command =
    QMP_COMMAND("human-monitor-command", cmd_human_monitor_command, &hmc_args,
                &qmp_type_str);

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
    hmp_add_command(h, "migrate_recover", HMP_ARG_STR, hmp_migrate_recover, h);
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
