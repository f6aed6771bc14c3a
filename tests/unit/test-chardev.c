/*
 * Unit tests for the character backends (softmmu/chardev.c) over the unix
 * socket server: output leaves at a newline at once and a partial line soon
 * after; input reaches the frontend, and what it could not take yet arrives
 * after chardev_accept_input(); a client that goes away and a new one work.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "softmmu/chardev.h"
#include "tern/error.h"

typedef struct Front {
    GString *got;
    size_t room;      /* bytes it takes before the next accept_input */
} Front;

static size_t front_receive(void *opaque, const uint8_t *buf, size_t len)
{
    Front *f = opaque;
    size_t n = MIN(len, f->room);

    g_string_append_len(f->got, (const char *)buf, n);
    f->room -= n;
    return n;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    return fd;
}

/* Runs the default main context until cond() or 2 s pass. */
static void spin_until(bool (*cond)(void *), void *arg)
{
    gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

    while (!cond(arg) && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, false);
        g_usleep(500);
    }
    g_assert_true(cond(arg));
}

typedef struct Expect {
    int fd;
    GString *buf;
    const char *want;
} Expect;

static bool socket_has(void *opaque)
{
    Expect *e = opaque;
    char tmp[256];
    ssize_t n = recv(e->fd, tmp, sizeof(tmp), MSG_DONTWAIT);

    if (n > 0) {
        g_string_append_len(e->buf, tmp, n);
    }
    return !strcmp(e->buf->str, e->want);
}

typedef struct Want {
    Front *f;
    const char *want;
} Want;

static bool front_has(void *opaque)
{
    Want *w = opaque;

    return !strcmp(w->f->got->str, w->want);
}

/* Until the server has accepted fd: output written before is dropped. */
static void sync_client(Chardev *c, int fd)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    char tmp[64];

    for (;;) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        chardev_write(c, (const uint8_t *)"sync\n", 5);
        g_main_context_iteration(NULL, false);
        g_usleep(1000);
        if (recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) > 0) {
            return;
        }
    }
}

static void test_unix_socket(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("tern-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
    Front f = { .got = g_string_new(NULL), .room = 3 };
    Chardev *c = chardev_new(spec, NULL, &err);
    Expect e = { .buf = g_string_new(NULL) };
    Want w = { .f = &f };
    char tmp[64];

    g_assert_no_error(err);
    chardev_set_frontend(c, front_receive, &f);
    chardev_write(c, (const uint8_t *)"lost", 4);   /* no client yet: dropped */
    e.fd = connect_to(path);
    sync_client(c, e.fd);

    chardev_write(c, (const uint8_t *)"hello\n", 6);
    g_assert_cmpint(recv(e.fd, tmp, sizeof(tmp), 0), ==, 6);   /* at once */
    chardev_write(c, (const uint8_t *)"par", 3);
    chardev_write(c, (const uint8_t *)"tial", 4);
    e.want = "partial";
    spin_until(socket_has, &e);

    g_assert_cmpint(write(e.fd, "abcdef", 6), ==, 6);
    w.want = "abc";
    spin_until(front_has, &w);
    f.room = 100;
    chardev_accept_input(c);
    w.want = "abcdef";
    spin_until(front_has, &w);

    /* The client goes (a write to it now must not raise SIGPIPE); a new one
     * gets the output. */
    close(e.fd);
    chardev_write(c, (const uint8_t *)"to nobody\n", 10);
    for (int i = 0; i < 50; i++) {
        g_main_context_iteration(NULL, false);
        g_usleep(200);
    }
    e.fd = connect_to(path);
    sync_client(c, e.fd);
    g_string_truncate(e.buf, 0);
    chardev_write(c, (const uint8_t *)"again\n", 6);
    e.want = "again\n";
    spin_until(socket_has, &e);

    close(e.fd);
    chardev_free(c);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));   /* unlinked */
    rmdir(dir);
    g_string_free(f.got, true);
    g_string_free(e.buf, true);
}

static void test_bad_specs(void)
{
    static const char *const bad[] = {
        "tcp:1.2.3.4:5", "unix:/tmp/x", "unix:", "file:/nonexistent-dir/f",
        "unix:/tmp/x,server=maybe", "pty:/dev/pts/0",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;

        g_assert_null(chardev_new(bad[i], NULL, &err));
        g_assert_nonnull(err);
    }
}

static void test_file_flush_on_free(void)
{
    g_autofree char *dir = g_dir_make_tmp("tern-chr-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "out.log", NULL);
    g_autofree char *spec = g_strdup_printf("file:%s", path);
    g_autofree char *text = NULL;
    Chardev *c = chardev_new(spec, NULL, NULL);

    g_assert_nonnull(c);
    chardev_write(c, (const uint8_t *)"line\nno newline", 15);
    chardev_free(c);          /* the partial line must not be lost */
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, "line\nno newline");
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/chardev/unix-socket", test_unix_socket);
    g_test_add_func("/chardev/bad-specs", test_bad_specs);
    g_test_add_func("/chardev/file-flush-on-free", test_file_flush_on_free);
    return g_test_run();
}
