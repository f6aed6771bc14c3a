/*
 * -daemonize, -pidfile and -msg (softmmu/daemon.h). The daemon forks twice,
 * as QEMU does, so it leads no session and cannot take a terminal; the first
 * parent learns the outcome through a pipe. The pid file is locked for the
 * VM's life, so a second VM given the same file fails instead of
 * overwriting it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "softmmu/daemon.h"
#include "tern/error.h"
#include "tern/keyval.h"

struct Daemon {
    int ready_fd;          /* write end of the parent's pipe, or -1 */
    int pid_fd;            /* the locked pid file, or -1 */
    char *pidfile;
};

bool daemon_opt_pidfile(VmConfig *cfg, const char *name, const char *arg,
                        GError **errp)
{
    g_free(cfg->pidfile);
    cfg->pidfile = g_strdup(arg);
    return true;
}

bool daemon_opt_daemonize(VmConfig *cfg, const char *name, const char *arg,
                          GError **errp)
{
    cfg->daemonize = true;
    return true;
}

bool daemon_opt_msg(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, NULL, errp);
    bool timestamp = false, guest_name = false;

    if (!kv || !keyval_get_bool(kv, "timestamp", &timestamp, errp) ||
        !keyval_get_bool(kv, "guest-name", &guest_name, errp) ||
        !keyval_check_unused(kv, errp)) {
        return false;
    }
    if (guest_name) {
        return tern_invalid(errp, "guest-name=on is not supported");
    }
    tern_report_set_timestamps(timestamp);
    return true;
}

/* The first parent: exits 0 once the daemon is ready, 1 if it died first. */
static void __attribute__((noreturn)) wait_for_daemon(int fd)
{
    char status = 1;
    ssize_t n;

    do {
        n = read(fd, &status, 1);
    } while (n < 0 && errno == EINTR);
    _exit(n == 1 && status == 0 ? 0 : 1);
}

static bool detach(Daemon *d, GError **errp)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        tern_set_error_errno(errp, errno, "-daemonize: pipe");
        return false;
    }
    pid = fork();
    if (pid < 0) {
        tern_set_error_errno(errp, errno, "-daemonize: fork");
        return false;
    }
    if (pid > 0) {
        close(fds[1]);
        wait_for_daemon(fds[0]);
    }
    close(fds[0]);
    d->ready_fd = fds[1];
    setsid();
    pid = fork();
    if (pid < 0) {
        _exit(1);
    }
    if (pid > 0) {
        _exit(0);   /* the session leader goes; the daemon cannot get a tty */
    }
    umask(027);
    signal(SIGTSTP, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);
    signal(SIGTTIN, SIG_IGN);
    return true;
}

static bool write_pidfile(Daemon *d, GError **errp)
{
    g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());
    struct stat a, b;

    d->pid_fd = open(d->pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->pid_fd < 0) {
        tern_set_error_errno(errp, errno, "cannot create PID file '%s'", d->pidfile);
        return false;
    }
    if (lockf(d->pid_fd, F_TLOCK, 0) < 0) {
        tern_set_error_errno(errp, errno, "Cannot lock pid file '%s'", d->pidfile);
        return false;
    }
    /* Another process may have replaced the file between open and lock. */
    if (fstat(d->pid_fd, &a) < 0 || stat(d->pidfile, &b) < 0 ||
        a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        return tern_fail(errp, TERN_ERR_BUSY, "PID file '%s' was replaced while "
                         "being locked", d->pidfile);
    }
    if (ftruncate(d->pid_fd, 0) < 0 ||
        write(d->pid_fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        tern_set_error_errno(errp, errno, "cannot write PID file '%s'", d->pidfile);
        return false;
    }
    return true;
}

Daemon *daemon_start(const VmConfig *cfg, GError **errp)
{
    Daemon *d = g_new0(Daemon, 1);

    d->ready_fd = d->pid_fd = -1;
    if (cfg->daemonize && !detach(d, errp)) {
        daemon_free(d);
        return NULL;
    }
    if (cfg->pidfile) {
        d->pidfile = g_strdup(cfg->pidfile);
        if (!write_pidfile(d, errp)) {
            g_clear_pointer(&d->pidfile, g_free);   /* not ours: keep it */
            daemon_free(d);
            return NULL;
        }
    }
    return d;
}

void daemon_ready(Daemon *d)
{
    char ok = 0;
    int null_fd;

    if (!d || d->ready_fd < 0) {
        return;
    }
    if (chdir("/") < 0) {
        tern_warn("-daemonize: chdir /: %s", g_strerror(errno));
    }
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        close(null_fd);
    }
    if (write(d->ready_fd, &ok, 1) != 1) {
        /* The parent is gone: nobody waits for the answer. */
    }
    close(d->ready_fd);
    d->ready_fd = -1;
}

void daemon_free(Daemon *d)
{
    if (!d) {
        return;
    }
    if (d->pidfile) {
        unlink(d->pidfile);
    }
    if (d->pid_fd >= 0) {
        close(d->pid_fd);
    }
    if (d->ready_fd >= 0) {
        close(d->ready_fd);   /* the parent reads EOF and exits 1 */
    }
    g_free(d->pidfile);
    g_free(d);
}
