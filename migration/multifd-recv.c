/*
 * The destination's multifd channels (include/migration/multifd-recv.h).
 *
 * Each channel thread reads a header, has the owner check its pages, then
 * moves exactly the packet's data from the socket into guest RAM: through
 * its pipe into the memfd at each run of consecutive offsets (splice), or
 * with readv into the pages' host addresses. The sync barrier is a count
 * of channels waiting at their SYNC and a generation the loader bumps to
 * let them go, both under the receiver's lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "migration/multifd-recv.h"

typedef struct RecvChannel {
    MultifdRecv *r;
    unsigned index;                 /* accept order, then the channel id */
    int fd;
    int pipe[2];                    /* splice into the memfd */
    size_t pipe_size;
    GThread *thread;
    uint8_t header[MULTIFD_HEADER_SIZE];
    MultifdPacket packet;
    struct iovec iov[MULTIFD_PAGES_MAX];
} RecvChannel;

struct MultifdRecv {
    MultifdRecvConfig cfg;
    char *block;
    unsigned n;
    RecvChannel *ch;
    GMutex lock;
    GCond cond;
    MultifdFailure fail;
    unsigned synced;                /* channels waiting at their SYNC */
    unsigned ended;                 /* channels the source closed */
    uint64_t release;               /* bumped when the loader lets go */
    bool seen[MULTIFD_CHANNELS_MAX + 1];    /* ids that said hello */
    int map_pages;                  /* atomic: readv even with a pipe */
};

/* ---- failures ---- */

static void fail(RecvChannel *c, GError *err)
{
    MultifdRecv *r = c->r;

    g_mutex_lock(&r->lock);
    multifd_failure_set_locked(&r->fail, err);
    g_cond_broadcast(&r->cond);
    g_mutex_unlock(&r->lock);
    /* The source learns at once that this channel is gone. */
    shutdown(c->fd, SHUT_RDWR);
}

static bool io_error(RecvChannel *c, int err, const char *what,
                     GError **errp)
{
    tern_set_error_errno(errp, err, "multifd channel %u: %s", c->index, what);
    return false;
}

static bool truncated(RecvChannel *c, GError **errp)
{
    return tern_invalid(errp, "multifd channel %u: truncated packet",
                        c->index);
}

GError *multifd_recv_get_error(MultifdRecv *r)
{
    return multifd_failure_copy(&r->fail);
}

bool multifd_recv_check(MultifdRecv *r, GError **errp)
{
    return multifd_failure_check(&r->fail, errp);
}

/* ---- reading ---- */

/* Up to 'len' bytes; fewer only at EOF. -1 on an error. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = read(fd, buf + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (!n) {
            break;
        }
        done += n;
    }
    return done;
}

static bool read_init(RecvChannel *c, GError **errp)
{
    MultifdRecv *r = c->r;
    uint8_t init[MULTIFD_INIT_SIZE];
    ssize_t n = read_full(c->fd, init, sizeof(init));
    uint8_t id;
    bool dup;

    if (n < 0) {
        return io_error(c, errno, "read", errp);
    }
    if (n < MULTIFD_INIT_SIZE) {
        return tern_invalid(errp, "multifd channel %u: closed before its "
                            "initial packet", c->index);
    }
    if (!multifd_init_decode(init, r->cfg.uuid, r->n, &id, errp)) {
        return false;
    }
    g_mutex_lock(&r->lock);
    dup = r->seen[id];
    r->seen[id] = true;
    g_mutex_unlock(&r->lock);
    if (dup) {
        return tern_invalid(errp, "multifd: received id '%u' already setup",
                            id);
    }
    c->index = id;      /* errors name the channel as the source does */
    return true;
}

/* 1: a header; 0: the source closed the channel between packets. */
static int read_header(RecvChannel *c, GError **errp)
{
    ssize_t n = read_full(c->fd, c->header, MULTIFD_HEADER_SIZE);

    if (n < 0) {
        io_error(c, errno, "read", errp);
        return -1;
    }
    if (n && n < MULTIFD_HEADER_SIZE) {
        truncated(c, errp);
        return -1;
    }
    return n ? 1 : 0;
}

/* The pages as they come, straight into their host addresses. */
static bool place_readv(RecvChannel *c, GError **errp)
{
    const MultifdPacket *p = &c->packet;
    struct iovec *iov = c->iov;
    int cnt = p->pages;

    for (int i = 0; i < cnt; i++) {
        iov[i].iov_base = c->r->cfg.page(c->r->cfg.opaque, p->offsets[i]);
        iov[i].iov_len = MULTIFD_PAGE_SIZE;
    }
    while (cnt) {
        ssize_t n = readv(c->fd, iov, MIN(cnt, IOV_MAX));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? io_error(c, errno, "read", errp)
                         : truncated(c, errp);
        }
        multifd_iov_advance(&iov, &cnt, n);
    }
    return true;
}

/* 'len' bytes waiting in the pipe, which start at byte 'pos' of the
 * packet's data, into the memfd: one splice per run of consecutive
 * pages. */
static bool pipe_to_memfd(RecvChannel *c, size_t pos, size_t len,
                          GError **errp)
{
    const MultifdPacket *p = &c->packet;

    while (len) {
        uint32_t i = pos / MULTIFD_PAGE_SIZE;
        uint32_t j = multifd_packet_run_end(p, i);
        size_t run;
        loff_t off;
        ssize_t n;

        run = MIN(len, (size_t)j * MULTIFD_PAGE_SIZE - pos);
        off = p->offsets[i] + pos % MULTIFD_PAGE_SIZE;
        n = splice(c->pipe[0], NULL, c->r->cfg.ram_fd, &off, run,
                   SPLICE_F_MOVE);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return io_error(c, n < 0 ? errno : EIO, "write to guest RAM",
                            errp);
        }
        pos += n;
        len -= n;
    }
    return true;
}

/* The data through the (empty) pipe: one fill from the socket, which may
 * stop short when the pipe is full or the socket has less, then out. */
static bool place_splice(RecvChannel *c, GError **errp)
{
    size_t total = (size_t)c->packet.pages * MULTIFD_PAGE_SIZE, pos = 0;

    while (pos < total) {
        ssize_t n = splice(c->fd, NULL, c->pipe[1], NULL,
                           MIN(total - pos, c->pipe_size), SPLICE_F_MOVE);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? io_error(c, errno, "read", errp)
                         : truncated(c, errp);
        }
        if (!pipe_to_memfd(c, pos, n, errp)) {
            return false;
        }
        pos += n;
    }
    return true;
}

static bool take_packet(RecvChannel *c, GError **errp)
{
    MultifdRecv *r = c->r;

    if (!multifd_packet_decode(c->header, &r->cfg.block, &c->packet, errp) ||
        (c->packet.pages && !r->cfg.pages(r->cfg.opaque, &c->packet, errp))) {
        return false;
    }
    if (!c->packet.pages) {
        return true;
    }
    return c->pipe[0] >= 0 && !g_atomic_int_get(&r->map_pages) ?
           place_splice(c, errp) : place_readv(c, errp);
}

/* ---- the sync barrier ---- */

/* Channel: wait at a SYNC until the loader reaches its EOS. */
static bool wait_release(RecvChannel *c)
{
    MultifdRecv *r = c->r;
    uint64_t gen;
    bool released;

    g_mutex_lock(&r->lock);
    r->synced++;
    g_cond_broadcast(&r->cond);
    gen = r->release;
    while (r->release == gen && !r->fail.failed) {
        g_cond_wait(&r->cond, &r->lock);
    }
    released = r->release != gen;
    g_mutex_unlock(&r->lock);
    return released;
}

bool multifd_recv_sync(MultifdRecv *r, GError **errp)
{
    bool ok;

    g_mutex_lock(&r->lock);
    while (!r->fail.failed && r->synced < r->n && r->synced + r->ended < r->n) {
        g_cond_wait(&r->cond, &r->lock);
    }
    ok = !r->fail.failed && r->synced == r->n;
    if (ok) {
        r->synced = 0;
        r->release++;
        g_cond_broadcast(&r->cond);
    }
    g_mutex_unlock(&r->lock);
    if (!ok && multifd_recv_check(r, errp)) {
        return tern_invalid(errp, "multifd: a channel was closed before its "
                            "SYNC");
    }
    return ok;
}

/* ---- the channel thread ---- */

static gpointer recv_thread(gpointer opaque)
{
    RecvChannel *c = opaque;
    GError *err = NULL;

    if (!read_init(c, &err)) {
        fail(c, err);
        return NULL;
    }
    while (read_header(c, &err) > 0) {
        if (!take_packet(c, &err)) {
            break;
        }
        if ((c->packet.flags & MULTIFD_FLAG_SYNC) && !wait_release(c)) {
            return NULL;
        }
    }
    if (err) {
        fail(c, err);
        return NULL;
    }
    g_mutex_lock(&c->r->lock);
    c->r->ended++;
    g_cond_broadcast(&c->r->cond);
    g_mutex_unlock(&c->r->lock);
    return NULL;
}

/* ---- channels ---- */

static void channel_setup(RecvChannel *c)
{
    int size;

    c->pipe[0] = c->pipe[1] = -1;
    if (c->r->cfg.ram_fd < 0 || pipe2(c->pipe, O_CLOEXEC) < 0) {
        return;
    }
    /* A bigger pipe: fewer splice calls per packet. */
    fcntl(c->pipe[1], F_SETPIPE_SZ, (int)(1 * MiB));
    size = fcntl(c->pipe[1], F_GETPIPE_SZ);
    c->pipe_size = size > 0 ? (size_t)size : 64 * KiB;
}

static void channels_start(MultifdRecv *r, const int *fds)
{
    for (unsigned i = 0; i < r->n; i++) {
        RecvChannel *c = &r->ch[i];

        c->r = r;
        c->index = i;
        c->fd = fds[i];
        channel_setup(c);
    }
    for (unsigned i = 0; i < r->n; i++) {
        r->ch[i].thread = g_thread_new("multifd/recv", recv_thread,
                                       &r->ch[i]);
    }
}

static void channels_stop(MultifdRecv *r)
{
    multifd_recv_shutdown(r);
    for (unsigned i = 0; i < r->n; i++) {
        RecvChannel *c = &r->ch[i];

        if (c->thread) {
            g_thread_join(c->thread);
            c->thread = NULL;
        }
        for (int k = 0; k < 2; k++) {
            if (c->pipe[k] >= 0) {
                close(c->pipe[k]);
            }
            c->pipe[k] = -1;
        }
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
}

MultifdRecv *multifd_recv_new(const MultifdRecvConfig *cfg, const int *fds,
                              unsigned n)
{
    MultifdRecv *r = g_new0(MultifdRecv, 1);

    g_assert(n >= 1 && n <= MULTIFD_CHANNELS_MAX);
    r->cfg = *cfg;
    r->block = g_strdup(cfg->block.name);
    r->cfg.block.name = r->block;
    r->n = n;
    r->ch = g_new0(RecvChannel, n);
    g_mutex_init(&r->lock);
    r->fail.lock = &r->lock;
    g_cond_init(&r->cond);
    channels_start(r, fds);
    return r;
}

void multifd_recv_map_pages(MultifdRecv *r)
{
    g_atomic_int_set(&r->map_pages, 1);
}

void multifd_recv_shutdown(MultifdRecv *r)
{
    g_mutex_lock(&r->lock);
    r->fail.failed = true;
    for (unsigned i = 0; i < r->n; i++) {
        shutdown(r->ch[i].fd, SHUT_RDWR);
    }
    g_cond_broadcast(&r->cond);
    g_mutex_unlock(&r->lock);
}

void multifd_recv_restart(MultifdRecv *r, const int *fds, unsigned n)
{
    g_assert(n == r->n);
    channels_stop(r);
    g_mutex_lock(&r->lock);
    multifd_failure_clear_locked(&r->fail);
    r->synced = r->ended = 0;
    memset(r->seen, 0, sizeof(r->seen));
    g_mutex_unlock(&r->lock);
    channels_start(r, fds);
}

void multifd_recv_free(MultifdRecv *r)
{
    if (!r) {
        return;
    }
    channels_stop(r);
    multifd_failure_clear_locked(&r->fail);
    g_cond_clear(&r->cond);
    g_mutex_clear(&r->lock);
    g_free(r->ch);
    g_free(r->block);
    g_free(r);
}
