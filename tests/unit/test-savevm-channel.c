/* Unit tests for the migration transports: a stream over unix:, tcp: (with
 * the PING/PONG return path), exec: and file:, and clear errors for bad
 * URIs, refused connections, missing files and failing commands. */
#include <string.h>
#include <unistd.h>

#include "migration/channel.h"
#include "migration/global-state.h"
#include "migration/return-path.h"
#include "migration/savevm.h"

typedef struct Source {
    char *uri;
    bool ping;              /* send PING 0x55 and wait for the PONG */
    uint32_t pong;
    GError *err;
} Source;

/* The source: a paused device-less VM, optionally pinging first. */
static gpointer source_thread(gpointer opaque)
{
    Source *s = opaque;
    SaveVM *sv = savevm_new("none");
    MigGlobalState gs;
    QEMUFile *f = migration_channel_connect(s->uri, &s->err);
    QEMUFile *rp = NULL;
    MigRpMessage m;

    mig_global_state_set(&gs, "paused");
    mig_global_state_register(sv, &gs);
    if (f && s->ping) {
        rp = qemu_file_get_return_path(f, &s->err);
        g_assert_true(savevm_save_header(sv, f, NULL));
        savevm_send_open_return_path(f);
        savevm_send_ping(f, 0x55);
        if (rp && mig_rp_read(rp, &m, &s->err)) {
            s->pong = m.value;
        }
        g_assert_true(savevm_save_setup(sv, f, NULL));
        g_assert_true(savevm_save_complete_precopy(sv, f, false, false, NULL));
    } else if (f) {
        savevm_save_all(sv, f, s->err ? NULL : &s->err);
    }
    qemu_fclose(rp, NULL);
    if (f) {
        qemu_fclose(f, s->err ? NULL : &s->err);
    }
    savevm_free(sv);
    return NULL;
}

typedef struct Dest {
    QEMUFile *rp;
} Dest;

static bool dest_open_rp(void *opaque, QEMUFile *f, GError **errp)
{
    ((Dest *)opaque)->rp = qemu_file_get_return_path(f, errp);
    return ((Dest *)opaque)->rp != NULL;
}

static bool dest_ping(void *opaque, uint32_t value, GError **errp)
{
    mig_rp_send_pong(((Dest *)opaque)->rp, value);
    return qemu_file_check(((Dest *)opaque)->rp, errp);
}

static const SaveVMIncomingOps dest_ops = {
    .open_return_path = dest_open_rp,
    .ping = dest_ping,
};

/* Receive one stream on 'l' and check it carried "paused". */
static void receive(MigrationListener *l)
{
    SaveVM *sv = savevm_new("none");
    MigGlobalState gs = { 0 };
    Dest dest = { NULL };
    GError *err = NULL;
    QEMUFile *f = migration_listener_accept(l, &err);

    g_assert_no_error(err);
    mig_global_state_register(sv, &gs);
    savevm_set_incoming_ops(sv, &dest_ops, &dest);
    savevm_load(sv, f, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(mig_global_state_received(&gs), ==, "paused");
    qemu_fclose(dest.rp, NULL);
    qemu_fclose(f, NULL);
    savevm_free(sv);
}

static void run_socket(const char *listen_uri, bool ping)
{
    GError *err = NULL;
    MigrationListener *l = migration_listener_new(listen_uri, &err);
    Source s = { 0 };
    GThread *t;

    g_assert_no_error(err);
    s.uri = g_strdup(migration_listener_uri(l));
    s.ping = ping;
    t = g_thread_new("source", source_thread, &s);
    receive(l);
    g_thread_join(t);
    g_assert_no_error(s.err);
    if (ping) {
        g_assert_cmphex(s.pong, ==, 0x55);
    }
    g_free(s.uri);
    migration_listener_free(l);
}

static void test_unix(void)
{
    g_autofree char *dir = g_dir_make_tmp("tern-ch-XXXXXX", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s/mig.sock", dir);
    g_autofree char *path = g_strdup_printf("%s/mig.sock", dir);

    run_socket(uri, true);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));  /* cleaned up */
    rmdir(dir);
}

static void test_tcp(void)
{
    GError *err = NULL;
    MigrationListener *l = migration_listener_new("tcp:127.0.0.1:0", &err);

    g_assert_no_error(err);
    g_assert_true(g_str_has_prefix(migration_listener_uri(l),
                                   "tcp:127.0.0.1:"));
    g_assert_cmpstr(migration_listener_uri(l), !=, "tcp:127.0.0.1:0");
    migration_listener_free(l);
    run_socket("tcp:127.0.0.1:0", true);
    run_socket("tcp:127.0.0.1:0", false);
}

static void run_through(const char *out_uri, const char *in_uri)
{
    Source s = { .uri = g_strdup(out_uri) };
    GError *err = NULL;
    MigrationListener *l;

    source_thread(&s);              /* write all, then read it back */
    g_assert_no_error(s.err);
    l = migration_listener_new(in_uri, &err);
    g_assert_no_error(err);
    receive(l);
    migration_listener_free(l);
    g_free(s.uri);
}

static void test_exec_and_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("tern-ch-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "vm.stream", NULL);
    g_autofree char *exec_out = g_strdup_printf("exec:cat > '%s'", path);
    g_autofree char *exec_in = g_strdup_printf("exec:cat '%s'", path);
    g_autofree char *file_uri = g_strdup_printf("file:%s", path);

    run_through(exec_out, exec_in);
    run_through(file_uri, file_uri);
    run_through(exec_out, file_uri);
    unlink(path);
    rmdir(dir);
}

static void expect(GError *err, const char *needle)
{
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
}

static void test_errors(void)
{
    GError *err = NULL;
    QEMUFile *f;
    MigrationListener *l;

    g_assert_null(migration_channel_connect("rdma:1.2.3.4:5", &err));
    expect(err, "Parameter 'uri' expects a valid migration protocol");
    err = NULL;
    g_assert_null(migration_listener_new("tcp:", &err));
    expect(err, "unknown migration protocol: tcp:");
    err = NULL;
    g_assert_null(migration_channel_connect("unix:/nonexistent/tern.sock",
                                            &err));
    expect(err, "migration connect to /nonexistent/tern.sock");
    err = NULL;
    l = migration_listener_new("file:/nonexistent/vm.stream", &err);
    g_assert_no_error(err);
    g_assert_null(migration_listener_accept(l, &err));
    expect(err, "file:/nonexistent/vm.stream: No such file or directory");
    migration_listener_free(l);
    err = NULL;

    /* A command that fails is reported when the channel is closed. */
    f = migration_channel_connect("exec:cat > /dev/null; exit 3", &err);
    g_assert_no_error(err);
    qemu_put_be32(f, 1);
    g_assert_false(qemu_fclose(f, &err));
    expect(err, "failed (status 0x300)");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/channel/unix", test_unix);
    g_test_add_func("/channel/tcp", test_tcp);
    g_test_add_func("/channel/exec-and-file", test_exec_and_file);
    g_test_add_func("/channel/errors", test_errors);
    return g_test_run();
}
