/*
 * The QMP server over real unix sockets, in one process: the main loop runs in
 * the test's thread while client threads use blocking sockets. Covers the
 * greeting, per-client sessions, events reaching only negotiated clients (also
 * when emitted from another thread), oversized and too-deep input, a client
 * that never reads being dropped without blocking others, connect/disconnect
 * churn, and -qmp/-chardev/-mon option parsing through Monitor.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "monitor/qmp-framer.h"
#include "monitor/qmp-server.h"

typedef struct Env {
    GMainContext *ctx;
    QmpRegistry *reg;
    QmpServer *server;
    char *dir;
    char *path;
} Env;

/* A command whose reply is 'size' bytes of 'x'. */
typedef struct BigArgs {
    bool has_size;
    uint64_t size;
} BigArgs;

QMP_OBJECT_TYPE(big_args, "big-arg", BigArgs,
    QMP_OPTIONAL(BigArgs, size, "size", qmp_type_uint64, .u = 1024));

static json_object *cmd_big(const QmpCall *call, const void *args, GError **errp)
{
    const BigArgs *a = args;
    g_autofree char *s = g_malloc(a->size + 1);

    memset(s, 'x', a->size);
    s[a->size] = '\0';
    return json_object_new_string(s);
}

static const QmpCommandDef big_cmd = QMP_COMMAND("big", cmd_big, &big_args, NULL);

/* ctx: a reference the Env takes over. The global default context is not
 * made thread-default (that would hold it for good): like tern's main loop,
 * this thread owns it only while iterating. */
static void env_init_on(Env *e, GMainContext *ctx)
{
    g_autoptr(GError) err = NULL;

    e->ctx = ctx;
    if (ctx != g_main_context_default()) {
        g_main_context_push_thread_default(e->ctx);
    }
    e->reg = qmp_registry_new();
    qmp_register_core_commands(e->reg);
    qmp_register_command(e->reg, &big_cmd, NULL);
    e->server = qmp_server_new(e->reg, e->ctx);
    e->dir = g_dir_make_tmp("qmp-test-XXXXXX", NULL);
    e->path = g_build_filename(e->dir, "qmp.sock", NULL);
    g_assert_true(qmp_server_listen_unix(e->server, e->path, &err));
    g_assert_no_error(err);
}

static void env_init(Env *e)
{
    env_init_on(e, g_main_context_new());
}

static void env_cleanup(Env *e)
{
    qmp_server_free(e->server);
    g_assert_false(g_file_test(e->path, G_FILE_TEST_EXISTS));
    qmp_registry_free(e->reg);
    if (e->ctx != g_main_context_default()) {
        g_main_context_pop_thread_default(e->ctx);
    }
    g_main_context_unref(e->ctx);
    rmdir(e->dir);
    g_free(e->path);
    g_free(e->dir);
}

/* Runs the loop until the thread returns; returns its result. */
static gpointer run_until_done(Env *e, GThreadFunc fn, gpointer arg)
{
    GThread *t = g_thread_new("client", fn, arg);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    gint *finished = arg;       /* a Scenario's first member */

    while (!g_atomic_int_get(finished)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(e->ctx, FALSE);
        g_usleep(200);
    }
    return g_thread_join(t);
}

/* Lets the server notice hang-ups; every client must be gone within 5 s. */
static void wait_clients_gone(Env *e)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (qmp_server_client_count(e->server) && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(e->ctx, FALSE);
        g_usleep(1000);
    }
    g_assert_cmpuint(qmp_server_client_count(e->server), ==, 0);
}

/* --- a blocking client ------------------------------------------------------- */

typedef struct Client {
    int fd;
    GString *in;
} Client;

static Client *client_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    Client *c = g_new0(Client, 1);

    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(c->fd, >=, 0);
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    g_assert_cmpint(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    c->in = g_string_new(NULL);
    return c;
}

static void client_close(Client *c)
{
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
}

static void client_send(Client *c, const char *text)
{
    size_t len = strlen(text);

    while (len) {
        ssize_t n = send(c->fd, text, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >, 0);
        text += n;
        len -= n;
    }
}

/* Next "\r\n"-terminated line, or NULL on EOF/timeout. */
static char *client_line(Client *c, int timeout_ms)
{
    for (;;) {
        char *nl = strstr(c->in->str, "\r\n");
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        char buf[65536];
        ssize_t n;

        if (nl) {
            char *line = g_strndup(c->in->str, nl - c->in->str);

            g_string_erase(c->in, 0, nl - c->in->str + 2);
            return line;
        }
        if (poll(&pfd, 1, timeout_ms) <= 0) {
            return NULL;
        }
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return NULL;
        }
        g_string_append_len(c->in, buf, n);
    }
}

static bool client_sees_eof(Client *c, int timeout_ms)
{
    char *line;

    while ((line = client_line(c, timeout_ms))) {
        g_free(line);
    }
    return true;
}

static void expect_line(Client *c, const char *want)
{
    g_autofree char *line = client_line(c, 5000);

    g_assert_nonnull(line);
    g_assert_cmpstr(line, ==, want);
}

static void expect_prefix(Client *c, const char *want)
{
    g_autofree char *line = client_line(c, 5000);

    g_assert_nonnull(line);
    if (!g_str_has_prefix(line, want)) {
        g_error("'%s' does not start with '%s'", line, want);
    }
}

static Client *client_negotiated(const char *path)
{
    Client *c = client_connect(path);

    expect_prefix(c, "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":0,\"minor\":2,"
                     "\"major\":7},\"package\":\"tern-");
    client_send(c, "{\"execute\": \"qmp_capabilities\"}");
    expect_line(c, "{\"return\":{}}");
    return c;
}

/* --- scenarios (run in the client thread) ------------------------------------- */

typedef struct Scenario {
    gint finished;          /* first member: run_until_done polls it */
    Env *env;
    int step;               /* handshake with the main thread */
} Scenario;

static gpointer finish(Scenario *s)
{
    g_atomic_int_set(&s->finished, 1);
    return NULL;
}

static gpointer scenario_sessions(gpointer opaque)
{
    Scenario *s = opaque;
    Client *a = client_negotiated(s->env->path);
    Client *b = client_connect(s->env->path);
    g_autofree char *greeting = client_line(b, 5000);

    g_assert_nonnull(greeting);
    /* b is not negotiated: its session is its own. */
    client_send(b, "{\"execute\": \"query-version\", \"id\": 1}");
    expect_line(b, "{\"id\":1,\"error\":{\"class\":\"CommandNotFound\",\"desc\":"
                   "\"Expecting capabilities negotiation with 'qmp_capabilities'\"}}");
    client_send(a, "{\"execute\": \"big\", \"arguments\": {\"size\": 3}, \"id\": \"x\"}"
                   "{\"execute\":");
    expect_line(a, "{\"return\":\"xxx\",\"id\":\"x\"}");
    client_send(a, " \"big\", \"arguments\": {\"size\": 2}}");
    expect_line(a, "{\"return\":\"xx\"}");
    /* Ask the main thread for events, from here (another thread). */
    qmp_server_emit_event(s->env->server, "STOP", NULL);
    expect_prefix(a, "{\"timestamp\":{\"seconds\":");
    client_send(b, "{\"execute\": \"qmp_capabilities\"}");
    expect_line(b, "{\"return\":{}}");
    qmp_server_emit_event(s->env->server, "RESUME", NULL);
    expect_prefix(a, "{\"timestamp\":");
    expect_prefix(b, "{\"timestamp\":");
    client_close(a);
    client_close(b);
    return finish(s);
}

static void test_sessions_and_events(void)
{
    Env e = { 0 };
    Scenario s = { .env = &e };

    env_init(&e);
    run_until_done(&e, scenario_sessions, &s);
    env_cleanup(&e);
}

static gpointer scenario_limits(gpointer opaque)
{
    Scenario *s = opaque;
    Client *c = client_negotiated(s->env->path);
    GString *deep = g_string_new(NULL);
    GString *big = g_string_new("{\"execute\": \"");

    for (int i = 0; i < QMP_FRAMER_MAX_DEPTH + 5; i++) {
        g_string_append_c(deep, '[');
    }
    for (int i = 0; i < QMP_FRAMER_MAX_DEPTH + 5; i++) {
        g_string_append_c(deep, ']');
    }
    client_send(c, deep->str);
    expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":"
                   "\"JSON parse error, nesting too deep\"}}");
    /* Still served after a too-deep message and after malformed ones. */
    for (int i = 0; i < 50; i++) {
        client_send(c, "{\"execute\": }");
        expect_prefix(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":"
                         "\"JSON parse error, ");
    }
    client_send(c, "{\"execute\": \"query-version\", \"id\": 2}");
    expect_prefix(c, "{\"return\":{\"qemu\"");
    /* Oversized: an error, then the server closes the connection. */
    while (big->len <= QMP_FRAMER_MAX_SIZE) {
        g_string_append(big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }
    g_string_append(big, "\"}");
    send(c->fd, big->str, big->len, MSG_NOSIGNAL);      /* may be cut short */
    expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":"
                   "\"JSON parse error, message too large\"}}");
    g_assert_null(client_line(c, 5000));                /* EOF */
    g_string_free(deep, TRUE);
    g_string_free(big, TRUE);
    client_close(c);
    return finish(s);
}

static void test_limits(void)
{
    Env e = { 0 };
    Scenario s = { .env = &e };

    env_init(&e);
    run_until_done(&e, scenario_limits, &s);
    env_cleanup(&e);
}

static gpointer scenario_slow_reader(gpointer opaque)
{
    Scenario *s = opaque;
    Client *slow = client_negotiated(s->env->path);
    Client *ok = client_negotiated(s->env->path);
    g_autofree char *req = g_strdup("{\"execute\": \"big\", \"arguments\": "
                                    "{\"size\": 1000000}}");
    int sent = 0;

    /* Queue replies far past the output limit without reading any. */
    while (sent < 12) {
        ssize_t n = send(slow->fd, req, strlen(req), MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            break;          /* server dropped us: the pipe is gone */
        }
        g_assert_cmpint(n, ==, strlen(req));
        sent++;
        /* The other client is answered meanwhile. */
        client_send(ok, "{\"execute\": \"big\", \"arguments\": {\"size\": 1}}");
        expect_line(ok, "{\"return\":\"x\"}");
    }
    client_sees_eof(slow, 5000);
    client_send(ok, "{\"execute\": \"query-version\"}");
    expect_prefix(ok, "{\"return\":");
    client_close(slow);
    client_close(ok);
    return finish(s);
}

static void test_slow_reader_dropped(void)
{
    Env e = { 0 };
    Scenario s = { .env = &e };

    env_init(&e);
    run_until_done(&e, scenario_slow_reader, &s);
    wait_clients_gone(&e);
    env_cleanup(&e);
}

/* Reads until EOF (true) or until nothing comes for timeout_ms (false);
 * *bytes counts what was read. */
static bool client_drain(Client *c, int timeout_ms, size_t *bytes)
{
    char buf[65536];

    for (;;) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, timeout_ms) <= 0) {
            return false;
        }
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return true;
        }
        *bytes += n;
    }
}

#define HOG_REPLY 1000000
#define TOTAL_CAP (3 * MiB)

/* Four clients ask for 1, 2, 3 and 4 replies of 1 MB and read none: past
 * the total cap the ones holding the most go; the smallest and a reading
 * client are served in full. */
static gpointer scenario_total_output(gpointer opaque)
{
    Scenario *s = opaque;
    Client *ok = client_negotiated(s->env->path);
    Client *hogs[4];
    g_autofree char *req = g_strdup_printf("{\"execute\": \"big\", \"arguments\": "
                                           "{\"size\": %d}}", HOG_REPLY);
    size_t got = 0;
    unsigned dropped = 0;

    for (int i = 0; i < 4; i++) {
        hogs[i] = client_negotiated(s->env->path);
    }
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k <= i; k++) {
            client_send(hogs[i], req);
        }
    }
    g_usleep(300 * 1000);
    client_send(ok, "{\"execute\": \"query-version\"}");
    expect_prefix(ok, "{\"return\":");
    for (int i = 1; i < 4; i++) {
        size_t n = 0;

        dropped += client_drain(hogs[i], 3000, &n);
    }
    g_assert_cmpuint(dropped, >=, 1);
    g_assert_false(client_drain(hogs[0], 1000, &got));
    g_assert_cmpuint(got, ==, HOG_REPLY + strlen("{\"return\":\"\"}\r\n"));
    client_send(ok, "{\"execute\": \"query-version\"}");
    expect_prefix(ok, "{\"return\":");
    for (int i = 0; i < 4; i++) {
        client_close(hogs[i]);
    }
    client_close(ok);
    return finish(s);
}

static void test_total_output_bounded(void)
{
    Env e = { 0 };
    Scenario s = { .env = &e };
    GThread *t;
    size_t peak = 0;

    env_init(&e);
    qmp_server_set_max_total_output(e.server, TOTAL_CAP);
    t = g_thread_new("client", scenario_total_output, &s);
    while (!g_atomic_int_get(&s.finished)) {
        g_main_context_iteration(e.ctx, FALSE);
        peak = MAX(peak, qmp_server_pending_output(e.server));
        g_usleep(200);
    }
    g_thread_join(t);
    /* Without the total cap the hogs would hold about 9 MB here. */
    g_assert_cmpuint(peak, <=, TOTAL_CAP);
    g_assert_cmpuint(peak, >, HOG_REPLY / 2);
    wait_clients_gone(&e);
    env_cleanup(&e);
}

static gpointer scenario_churn(gpointer opaque)
{
    Scenario *s = opaque;
    Client *keeper = client_negotiated(s->env->path);

    for (int i = 0; i < 100; i++) {
        Client *c = client_connect(s->env->path);

        if (i % 3 == 0) {
            client_send(c, "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"big\"}");
        } else if (i % 3 == 1) {
            client_send(c, "{\"execute\": \"qmp_capa");      /* vanish mid-message */
        }
        client_close(c);
    }
    client_send(keeper, "{\"execute\": \"big\", \"arguments\": {\"size\": 4}}");
    expect_line(keeper, "{\"return\":\"xxxx\"}");
    client_close(keeper);
    return finish(s);
}

static void test_connect_churn(void)
{
    Env e = { 0 };
    Scenario s = { .env = &e };

    env_init(&e);
    run_until_done(&e, scenario_churn, &s);
    wait_clients_gone(&e);
    env_cleanup(&e);
}

/* A client that never reads must not hold up shutdown: free gives up on
 * its unsent output after a short grace period. */
static void test_free_with_stuck_client(void)
{
    Env e = { 0 };
    Client *c;
    const char *req = "{\"execute\": \"qmp_capabilities\"}"
                      "{\"execute\": \"big\", \"arguments\": {\"size\": 1000000}}"
                      "{\"execute\": \"big\", \"arguments\": {\"size\": 1000000}}"
                      "{\"execute\": \"big\", \"arguments\": {\"size\": 1000000}}";
    gint64 t0;

    env_init(&e);
    c = client_connect(e.path);
    client_send(c, req);
    for (int i = 0; i < 200; i++) {
        g_main_context_iteration(e.ctx, FALSE);
        g_usleep(1000);
    }
    g_assert_cmpuint(qmp_server_client_count(e.server), ==, 1);
    t0 = g_get_monotonic_time();
    qmp_server_free(e.server);
    e.server = NULL;
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_USEC_PER_SEC);
    client_close(c);
    e.server = qmp_server_new(e.reg, e.ctx);    /* for env_cleanup */
    env_cleanup(&e);
}

/* --- greeting first, while events fly ----------------------------------------- */

typedef struct Hammer {
    gint finished;          /* first member: run_until_done polls it */
    Env *env;
    gint stop;              /* tells the emitters to end */
} Hammer;

/* Emits RESUME from its own thread, as the migration thread or a vCPU-driven
 * run-state change does, until told to stop. */
static gpointer hammer_emitter(gpointer opaque)
{
    Hammer *h = opaque;

    while (!g_atomic_int_get(&h->stop)) {
        qmp_server_emit_event(h->env->server, "RESUME", NULL);
        g_usleep(20);
    }
    return NULL;
}

/* Each new client must read the greeting first, then (once negotiated) the
 * capabilities reply, then events. */
static gpointer hammer_clients(gpointer opaque)
{
    Hammer *h = opaque;

    for (int i = 0; i < 150; i++) {
        Client *c = client_connect(h->env->path);
        g_autofree char *first = client_line(c, 5000);
        g_autofree char *reply = NULL;
        g_autofree char *event = NULL;

        g_assert_nonnull(first);
        if (!g_str_has_prefix(first, "{\"QMP\":")) {
            g_error("client %d read '%s' before the greeting", i, first);
        }
        client_send(c, "{\"execute\": \"qmp_capabilities\"}");
        reply = client_line(c, 5000);
        g_assert_cmpstr(reply, ==, "{\"return\":{}}");
        event = client_line(c, 5000);
        g_assert_nonnull(event);
        g_assert_nonnull(strstr(event, "\"event\":\"RESUME\""));
        client_close(c);
    }
    g_atomic_int_set(&h->finished, 1);
    return NULL;
}

static void test_greeting_first_under_events(void)
{
    Env e = { 0 };
    Hammer h = { .env = &e };
    GThread *emitters[2];

    /* The global default context, as tern's main loop uses: other threads
     * can then acquire it between the loop's iterations. */
    env_init_on(&e, g_main_context_ref(g_main_context_default()));
    for (unsigned i = 0; i < G_N_ELEMENTS(emitters); i++) {
        emitters[i] = g_thread_new("emitter", hammer_emitter, &h);
    }
    run_until_done(&e, hammer_clients, &h);
    g_atomic_int_set(&h.stop, 1);
    for (unsigned i = 0; i < G_N_ELEMENTS(emitters); i++) {
        g_thread_join(emitters[i]);
    }
    /* Events still queued for the loop are freed with the context. */
    while (g_main_context_iteration(e.ctx, FALSE)) {
    }
    wait_clients_gone(&e);
    env_cleanup(&e);
}

/* Next line, running the loop on this thread meanwhile. */
static char *client_line_pumping(Env *e, Client *c)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < deadline) {
        char *line;

        g_main_context_iteration(e->ctx, FALSE);
        line = client_line(c, 1);
        if (line) {
            return line;
        }
    }
    return NULL;
}

static gpointer emit_stop(gpointer opaque)
{
    qmp_server_emit_event(opaque, "STOP", NULL);
    return NULL;
}

/* An event from another thread reaches clients only through the loop's own
 * thread, even when that thread is between iterations and GLib would let the
 * emitter take the context. */
static void test_foreign_event_waits_for_loop(void)
{
    Env e = { 0 };
    Client *c;
    g_autofree char *greeting = NULL;
    g_autofree char *reply = NULL;
    g_autofree char *event = NULL;
    g_autofree char *early = NULL;

    env_init_on(&e, g_main_context_ref(g_main_context_default()));
    c = client_connect(e.path);
    greeting = client_line_pumping(&e, c);
    g_assert_nonnull(greeting);
    client_send(c, "{\"execute\": \"qmp_capabilities\"}");
    reply = client_line_pumping(&e, c);
    g_assert_cmpstr(reply, ==, "{\"return\":{}}");
    g_thread_join(g_thread_new("emitter", emit_stop, e.server));
    early = client_line(c, 200);
    g_assert_null(early);
    event = client_line_pumping(&e, c);
    g_assert_nonnull(event);
    g_assert_nonnull(strstr(event, "\"event\":\"STOP\""));
    client_close(c);
    wait_clients_gone(&e);
    env_cleanup(&e);
}

/* --- Monitor and its options --------------------------------------------------- */

static void expect_option_error(bool (*add)(Monitor *, const char *, GError **),
                                Monitor *mon, const char *arg)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(add(mon, arg, &err));
    g_assert_nonnull(err);
}

static const QmpEventDef stop_event = { .name = "STOP" };

static void test_monitor_options(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("qmp-test-XXXXXX", NULL);
    g_autofree char *p1 = g_build_filename(dir, "a.sock", NULL);
    g_autofree char *p2 = g_build_filename(dir, "b.sock", NULL);
    g_autofree char *p3 = g_build_filename(dir, "c.sock", NULL);
    g_autofree char *qmp = g_strdup_printf("unix:%s,server,nowait", p1);
    g_autofree char *chr = g_strdup_printf("socket,id=mon0,path=%s,server=on,wait=off", p2);
    g_autofree char *unused = g_strdup_printf("socket,id=x,path=%s,server=on,wait=off", p3);
    Monitor *mon = monitor_new(NULL);

    g_assert_true(monitor_add_qmp_option(mon, qmp, &err));
    g_assert_no_error(err);
    g_assert_true(monitor_add_chardev_option(mon, chr, &err));
    g_assert_true(monitor_add_chardev_option(mon, unused, &err));
    g_assert_true(monitor_has_chardev(mon, "mon0"));
    g_assert_true(monitor_add_mon_option(mon, "chardev=mon0,mode=control,pretty=off", &err));
    g_assert_no_error(err);
    expect_option_error(monitor_add_qmp_option, mon, "stdio");
    expect_option_error(monitor_add_qmp_option, mon, "unix:/x,wait=off");  /* no server */
    expect_option_error(monitor_add_qmp_option, mon, "unix:/x,server=on,bogus=1");
    /* Another backend is the serial port's: the monitor leaves it alone,
     * and cannot be put on it. */
    g_assert_true(monitor_add_chardev_option(mon, "file,id=f,path=/x", &err));
    g_assert_false(monitor_has_chardev(mon, "f"));
    expect_option_error(monitor_add_mon_option, mon, "chardev=f,mode=control");
    expect_option_error(monitor_add_chardev_option, mon, chr);            /* dup id */
    expect_option_error(monitor_add_chardev_option, mon, "socket,path=/x,server=on");
    expect_option_error(monitor_add_chardev_option, mon,
                        "socket,id=y,path=/x,fd=3,server=on");     /* two places */
    expect_option_error(monitor_add_chardev_option, mon, "socket,id=z,fd=-1,server=on");
    expect_option_error(monitor_add_mon_option, mon, "chardev=mon0,mode=readline");
    expect_option_error(monitor_add_mon_option, mon, "chardev=nope,mode=control");
    g_assert_true(monitor_start(mon, &err));
    g_assert_no_error(err);
    g_assert_true(g_file_test(p1, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(p2, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(p3, G_FILE_TEST_EXISTS));   /* no -mon uses it */
    g_assert_nonnull(qmp_registry_find(monitor_registry(mon), "human-monitor-command",
                                       NULL));
    qmp_register_events(monitor_registry(mon), &stop_event, 1);
    monitor_emit_event(mon, "STOP", NULL);          /* nobody listening: fine */
    monitor_free(mon);
    g_assert_false(g_file_test(p1, G_FILE_TEST_EXISTS));
    rmdir(dir);
}

static void test_bad_socket_path(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(QmpRegistry) reg = qmp_registry_new();
    g_autoptr(QmpServer) s = qmp_server_new(reg, NULL);
    g_autofree char *longp = g_strnfill(200, 'a');

    g_assert_false(qmp_server_listen_unix(s, longp, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_false(qmp_server_listen_unix(s, "/nonexistent-dir/x.sock", &err));
    g_assert_nonnull(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-server/sessions-and-events", test_sessions_and_events);
    g_test_add_func("/qmp-server/limits", test_limits);
    g_test_add_func("/qmp-server/slow-reader-dropped", test_slow_reader_dropped);
    g_test_add_func("/qmp-server/total-output-bounded", test_total_output_bounded);
    g_test_add_func("/qmp-server/connect-churn", test_connect_churn);
    g_test_add_func("/qmp-server/free-with-stuck-client", test_free_with_stuck_client);
    g_test_add_func("/qmp-server/greeting-first-under-events",
                    test_greeting_first_under_events);
    g_test_add_func("/qmp-server/foreign-event-waits-for-loop",
                    test_foreign_event_waits_for_loop);
    g_test_add_func("/qmp-server/monitor-options", test_monitor_options);
    g_test_add_func("/qmp-server/bad-socket-path", test_bad_socket_path);
    return g_test_run();
}
