/*
 * An LD_PRELOAD shim for power-cut tests: it records, in the order they
 * took effect, every write, truncate, hole punch and sync a process makes
 * to one file, so a test can rebuild the file as a disk would hold it if
 * power were cut at any point (tests/functional/ternlib/writelog.py).
 * Nothing of it is in tern; tests load it with
 *
 *     LD_PRELOAD=<build>/tests/crash/write-log.so
 *     TERN_WRITE_LOG=/path/log  TERN_WRITE_LOG_TARGET=/path/image
 *     ASAN_OPTIONS=verify_asan_link_order=0   (sanitizer builds)
 *
 * Records (little-endian): kind (1 byte), offset (8), length (8), then
 * 'length' data bytes for writes. Kinds:
 *   'W' write             'D' write made durable by itself (RWF_DSYNC/O_DSYNC)
 *   'S' fsync/fdatasync done: every earlier record is durable
 *   'T' truncate to offset   'Z' range reads as zeroes (punch / zero range)
 * A mutex held across each call and its record keeps the order exact.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int log_fd = -1;
static char target[PATH_MAX];
static char tracked[MAX_FDS];

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_open)(const char *, int, ...);   /* for the log itself */
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);

static void init_once(void)
{
    const char *log, *t;

    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_pwritev2 = dlsym(RTLD_NEXT, "pwritev2");
    real_write = dlsym(RTLD_NEXT, "write");
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_fallocate = dlsym(RTLD_NEXT, "fallocate");
    real_writev = dlsym(RTLD_NEXT, "writev");
    log = getenv("TERN_WRITE_LOG");
    t = getenv("TERN_WRITE_LOG_TARGET");
    if (log && t && realpath(t, target)) {
        log_fd = real_open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                           0644);
    }
}

static void init(void)
{
    pthread_once(&once, init_once);
}

static void put(const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t w = real_write(log_fd, c, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            abort();        /* a log with a hole would mislead the test */
        }
        c += w;
        n -= (size_t)w;
    }
}

static void record(char kind, uint64_t off, uint64_t len,
                   const struct iovec *iov, int iovcnt)
{
    put(&kind, 1);
    put(&off, 8);
    put(&len, 8);
    for (int i = 0; iov && i < iovcnt && len; i++) {
        size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;

        put(iov[i].iov_base, n);
        len -= n;
    }
}

static int is_tracked(int fd)
{
    return log_fd >= 0 && fd >= 0 && fd < MAX_FDS && tracked[fd];
}

static void track_open(int fd, const char *path)
{
    char real[PATH_MAX];

    if (fd >= 0 && fd < MAX_FDS && log_fd >= 0) {
        tracked[fd] = realpath(path, real) && !strcmp(real, target);
    }
}

/* Every open goes through here, so the traced file is known by fd. */
static int traced_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd;

    pthread_mutex_lock(&lock);
    fd = real_openat(dirfd, path, flags, mode);
    if (dirfd == AT_FDCWD || path[0] == '/') {
        track_open(fd, path);
    }
    if (is_tracked(fd) && (flags & O_TRUNC)) {
        record('T', 0, 0, NULL, 0);
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

/* The mode argument open(2) has only when it creates. */
#define OPEN_MODE(flags, last, mode) \
    do { \
        if ((flags) & (O_CREAT | O_TMPFILE)) { \
            va_list ap; \
            va_start(ap, last); \
            (mode) = va_arg(ap, mode_t); \
            va_end(ap); \
        } \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;

    init();
    OPEN_MODE(flags, flags, mode);
    return traced_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

/* What open() becomes under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags)
{
    init();
    return traced_openat(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;

    init();
    OPEN_MODE(flags, flags, mode);
    return traced_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
    __attribute__((alias("openat")));

int close(int fd)
{
    int r;

    init();
    pthread_mutex_lock(&lock);
    r = real_close(fd);
    if (fd >= 0 && fd < MAX_FDS) {
        tracked[fd] = 0;
    }
    pthread_mutex_unlock(&lock);
    return r;
}

/* Writes at the file position are not logged: the image must not get any. */
static void refuse_unlogged(int fd)
{
    static const char msg[] = "write-log: unlogged write to the traced file\n";

    if (is_tracked(fd)) {
        real_write(2, msg, sizeof(msg) - 1);
        abort();
    }
}

ssize_t write(int fd, const void *buf, size_t n)
{
    init();
    refuse_unlogged(fd);
    return real_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    init();
    refuse_unlogged(fd);
    return real_writev(fd, iov, iovcnt);
}

static ssize_t logged_pwritev(int fd, const struct iovec *iov, int iovcnt,
                              off_t off, int flags)
{
    ssize_t r;

    pthread_mutex_lock(&lock);
    r = flags ? real_pwritev2(fd, iov, iovcnt, off, flags)
              : real_pwritev(fd, iov, iovcnt, off);
    if (r > 0 && is_tracked(fd)) {
        int durable = (flags & (RWF_DSYNC | RWF_SYNC)) ||
                      (fcntl(fd, F_GETFL) & (O_DSYNC | O_SYNC));

        record(durable ? 'D' : 'W', (uint64_t)off, (uint64_t)r, iov, iovcnt);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct iovec iov = { (void *)buf, n };

    init();
    return logged_pwritev(fd, &iov, 1, off, 0);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
    __attribute__((alias("pwrite")));

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    init();
    return logged_pwritev(fd, iov, iovcnt, off, 0);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
    __attribute__((alias("pwritev")));

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off,
                 int flags)
{
    init();
    if (off == -1) {
        refuse_unlogged(fd);
        return real_pwritev2(fd, iov, iovcnt, off, flags);
    }
    return logged_pwritev(fd, iov, iovcnt, off, flags);
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off_t off,
                    int flags) __attribute__((alias("pwritev2")));

static int logged_sync(int fd, int (*fn)(int))
{
    int r;

    init();
    pthread_mutex_lock(&lock);
    r = fn(fd);
    if (r == 0 && is_tracked(fd)) {
        record('S', 0, 0, NULL, 0);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd)
{
    init();
    return logged_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
    init();
    return logged_sync(fd, real_fdatasync);
}

int ftruncate(int fd, off_t len)
{
    int r;

    init();
    pthread_mutex_lock(&lock);
    r = real_ftruncate(fd, len);
    if (r == 0 && is_tracked(fd)) {
        record('T', (uint64_t)len, 0, NULL, 0);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int fallocate(int fd, int mode, off_t off, off_t len)
{
    int r;

    init();
    pthread_mutex_lock(&lock);
    r = real_fallocate(fd, mode, off, len);
    if (r == 0 && is_tracked(fd) &&
        (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
        record('Z', (uint64_t)off, (uint64_t)len, NULL, 0);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int fallocate64(int fd, int mode, off_t off, off_t len)
    __attribute__((alias("fallocate")));
