/*
 * The process's monitor: the registry with the protocol-level commands, the
 * QMP server, and the command-line options that say where it listens. Options
 * are parsed when given (so errors name the option) and acted on by
 * monitor_start(), once the machine has registered its commands.
 */
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-server.h"
#include "tern/error.h"
#include "tern/keyval.h"

typedef struct ListenSpec {
    char *id;               /* chardev id; NULL for -qmp */
    char *path;             /* unix socket, or NULL for TCP or fd */
    int fd;                 /* an inherited listening socket (fd=), or -1 */
    int listen_fd;          /* that socket once the server has it, or -1 */
    char *host;
    char *port;
    bool wait;
    bool used;              /* a -mon refers to it (or it came from -qmp) */
} ListenSpec;

struct Monitor {
    QmpRegistry *registry;
    Hmp *hmp;
    QmpServer *server;
    GPtrArray *specs;       /* ListenSpec */
};

static void listen_spec_free(gpointer p)
{
    ListenSpec *ls = p;

    if (ls->fd >= 0) {
        close(ls->fd);
    }
    g_free(ls->id);
    g_free(ls->path);
    g_free(ls->host);
    g_free(ls->port);
    g_free(ls);
}

Monitor *monitor_new(GMainContext *ctx)
{
    Monitor *mon = g_new0(Monitor, 1);

    mon->registry = qmp_registry_new();
    mon->server = qmp_server_new(mon->registry, ctx);
    mon->specs = g_ptr_array_new_with_free_func(listen_spec_free);
    qmp_register_core_commands(mon->registry);
    mon->hmp = hmp_new(mon->registry);
    return mon;
}

void monitor_free(Monitor *mon)
{
    if (mon) {
        qmp_server_free(mon->server);
        qmp_registry_free(mon->registry);
        hmp_free(mon->hmp);
        g_ptr_array_unref(mon->specs);
        g_free(mon);
    }
}

QmpRegistry *monitor_registry(Monitor *mon)
{
    return mon->registry;
}

Hmp *monitor_hmp(Monitor *mon)
{
    return mon->hmp;
}

void monitor_emit_event(Monitor *mon, const char *name, json_object *data)
{
    /* query-qmp-schema lists what is sent: an event must be registered. */
    if (!qmp_registry_find_event(mon->registry, name)) {
        tern_die("QMP event %s is sent but not registered", name);
    }
    qmp_server_emit_event(mon->server, name, data);
}

/* QEMU's legacy flags "server", "nowait", "wait", "nodelay" as key=value. */
static char *expand_legacy_flags(const char *arg)
{
    static const char *const flags[][2] = {
        { "server", "server=on" }, { "nowait", "wait=off" },
        { "wait", "wait=on" }, { "nodelay", "nodelay=on" },
    };
    g_auto(GStrv) items = g_strsplit(arg, ",", -1);

    for (char **it = items; *it; it++) {
        for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
            if (!strcmp(*it, flags[i][0])) {
                g_free(*it);
                *it = g_strdup(flags[i][1]);
            }
        }
    }
    return g_strjoinv(",", items);
}

/* server, wait and nodelay, common to -qmp and -chardev socket. */
static bool socket_flags(KeyVal *kv, ListenSpec *ls, GError **errp)
{
    bool server = false, nodelay = false;

    ls->wait = true;
    if (!keyval_get_bool(kv, "server", &server, errp) ||
        !keyval_get_bool(kv, "wait", &ls->wait, errp) ||
        !keyval_get_bool(kv, "nodelay", &nodelay, errp)) {
        return false;
    }
    if (!server) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "'%s': tern's monitor only listens: add server=on",
                    keyval_source(kv));
        return false;
    }
    return true;
}

static bool monitor_add_spec(Monitor *mon, ListenSpec *ls, KeyVal *kv,
                             GError **errp)
{
    if (!socket_flags(kv, ls, errp) || !keyval_check_unused(kv, errp)) {
        listen_spec_free(ls);
        return false;
    }
    g_ptr_array_add(mon->specs, ls);
    return true;
}

/* "unix:PATH" or "tcp:HOST:PORT" into ls. */
static bool parse_address(const char *addr, ListenSpec *ls, GError **errp)
{
    const char *colon;

    if (g_str_has_prefix(addr, "unix:") && addr[5]) {
        ls->path = g_strdup(addr + 5);
        return true;
    }
    if (g_str_has_prefix(addr, "tcp:") && (colon = strrchr(addr + 4, ':'))) {
        ls->host = g_strndup(addr + 4, colon - (addr + 4));
        ls->port = g_strdup(colon + 1);
        return true;
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                "-qmp '%s': expected unix:PATH or tcp:HOST:PORT", addr);
    return false;
}

bool monitor_add_qmp_option(Monitor *mon, const char *arg, GError **errp)
{
    g_autofree char *expanded = expand_legacy_flags(arg);
    g_autoptr(KeyVal) kv = keyval_parse(expanded, "addr", errp);
    ListenSpec *ls;
    const char *addr;

    if (!kv) {
        return false;
    }
    addr = keyval_get(kv, "addr");
    ls = g_new0(ListenSpec, 1);
    ls->fd = ls->listen_fd = -1;
    ls->used = true;
    if (!addr || !parse_address(addr, ls, errp)) {
        if (!addr) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "-qmp '%s': no address given", arg);
        }
        listen_spec_free(ls);
        return false;
    }
    return monitor_add_spec(mon, ls, kv, errp);
}

static ListenSpec *find_chardev(Monitor *mon, const char *id)
{
    for (guint i = 0; i < mon->specs->len; i++) {
        ListenSpec *ls = mon->specs->pdata[i];

        if (ls->id && !strcmp(ls->id, id)) {
            return ls;
        }
    }
    return NULL;
}

bool monitor_has_chardev(Monitor *mon, const char *id)
{
    return find_chardev(mon, id) != NULL;
}

/* fd=N: a listening socket the parent process made (libvirt does). */
static bool parse_fd(KeyVal *kv, ListenSpec *ls, GError **errp)
{
    uint64_t fd = UINT64_MAX;

    if (!keyval_get_u64(kv, "fd", &fd, errp)) {
        return false;
    }
    ls->fd = fd > INT_MAX ? -1 : (int)fd;
    if (keyval_has(kv, "fd") && ls->fd < 0) {
        return tern_invalid(errp, "'%s': fd is out of range", keyval_source(kv));
    }
    return true;
}

bool monitor_add_chardev_option(Monitor *mon, const char *arg, GError **errp)
{
    g_autofree char *expanded = expand_legacy_flags(arg);
    g_autoptr(KeyVal) kv = keyval_parse(expanded, "backend", errp);
    const char *backend, *id, *path, *port;
    ListenSpec *ls;

    if (!kv) {
        return false;
    }
    backend = keyval_get(kv, "backend");
    id = keyval_get(kv, "id");
    if (!id || !*id || find_chardev(mon, id)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "-chardev '%s': %s", arg, id && *id ? "duplicate id" : "id= is required");
        return false;
    }
    if (!backend || strcmp(backend, "socket")) {
        return true;   /* not a monitor's: the serial port may use it */
    }
    path = keyval_get(kv, "path");
    port = keyval_get(kv, "port");
    ls = g_new0(ListenSpec, 1);
    ls->listen_fd = -1;
    if (!parse_fd(kv, ls, errp) || (!!path + !!port + (ls->fd >= 0)) != 1) {
        if (errp && !*errp) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "-chardev '%s': give one of path=, host=/port= or fd=", arg);
        }
        listen_spec_free(ls);
        return false;
    }
    ls->id = g_strdup(id);
    ls->path = g_strdup(path);
    ls->host = g_strdup(keyval_get(kv, "host") ? keyval_get(kv, "host") : "");
    ls->port = g_strdup(port);
    return monitor_add_spec(mon, ls, kv, errp);
}

bool monitor_add_mon_option(Monitor *mon, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "chardev", errp);
    const char *id, *mode;
    bool pretty = false;
    ListenSpec *ls;

    if (!kv) {
        return false;
    }
    id = keyval_get(kv, "chardev");
    mode = keyval_get(kv, "mode");
    keyval_get(kv, "id");   /* the monitor's own name: nothing refers to it */
    if (!keyval_get_bool(kv, "pretty", &pretty, errp) ||
        !keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!mode || strcmp(mode, "control")) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "-mon '%s': only mode=control (QMP) is supported", arg);
        return false;
    }
    ls = id ? find_chardev(mon, id) : NULL;
    if (!ls) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "-mon '%s': chardev '%s' not found", arg, id ? id : "");
        return false;
    }
    ls->used = true;
    return true;
}

bool monitor_start(Monitor *mon, GError **errp)
{
    bool wait = false;

    for (guint i = 0; i < mon->specs->len; i++) {
        ListenSpec *ls = mon->specs->pdata[i];
        bool ok;

        if (!ls->used) {
            continue;
        }
        if (ls->fd >= 0) {
            ok = qmp_server_listen_fd(mon->server, ls->fd, errp);
            ls->listen_fd = ls->fd;
            ls->fd = -1;   /* the server owns it now */
        } else if (ls->path) {
            ok = qmp_server_listen_unix(mon->server, ls->path, errp);
        } else {
            ok = qmp_server_listen_tcp(mon->server, ls->host, ls->port, errp);
        }
        if (!ok) {
            return false;
        }
        wait |= ls->wait;
    }
    if (wait) {
        qmp_server_wait_for_client(mon->server);
    }
    return true;
}

/* Where a listener is, as QEMU's query-chardev names a server socket. */
static char *listen_address(const ListenSpec *ls, int fd)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);

    if (ls->path) {
        return g_strdup_printf("unix:%s,server=on", ls->path);
    }
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
        sa.sun_family == AF_UNIX) {
        return g_strdup_printf("unix:%s,server=on", sa.sun_path);
    }
    return g_strdup_printf("tcp:%s:%s,server=on", ls->host, ls->port);
}

void monitor_add_chardev_info(Monitor *mon, json_object *list)
{
    bool connected = qmp_server_client_count(mon->server) > 0;

    for (guint i = 0; i < mon->specs->len; i++) {
        ListenSpec *ls = mon->specs->pdata[i];
        json_object *o;
        g_autofree char *addr = NULL, *name = NULL;

        if (!ls->used) {
            continue;
        }
        addr = listen_address(ls, ls->listen_fd);
        name = g_strdup_printf("%s%s", connected ? "" : "disconnected:", addr);
        o = json_object_new_object();
        tern_json_add_bool(o, "frontend-open", true);
        tern_json_add_str(o, "filename", name);
        tern_json_add_str(o, "label", ls->id ? ls->id : "compat_monitor0");
        json_object_array_add(list, o);
    }
}
