/*
 * The source's multifd channels (include/migration/multifd-send.h).
 *
 * Each channel has a thread and a short queue of packets under the
 * sender's lock; the migration thread fills 'cur' and hands it over, the
 * channel thread takes packets off its queue and writes them one at a
 * time. How a packet's pages reach the socket is the channel's mode:
 * splice (memfd -> pipe -> socket, by reference), zero copy (sendmsg
 * MSG_ZEROCOPY from the mapping, completions read from the socket's error
 * queue) or copy (sendmsg from the mapping). The header always goes by
 * copy: it is 1344 bytes the thread owns.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <string.h>
#include <unistd.h>

#include "migration/multifd-send.h"

/* Packets waiting per channel besides the one being written. */
#define QUEUE_LEN 2

typedef enum { SEND_COPY, SEND_SPLICE, SEND_ZERO_COPY } SendMode;

typedef struct SendChannel {
    MultifdSend *s;
    unsigned id;
    int fd;
    SendMode mode;
    int pipe[2];                    /* SEND_SPLICE */
    GThread *thread;
    GCond cond;                     /* work for this channel */
    /* Under s->lock. */
    MultifdPacket queue[QUEUE_LEN];
    unsigned head, count;
    bool busy;                      /* a packet is being written */
    bool quit;                      /* leave once the queue is empty */
    /* The thread's own. */
    uint64_t zc_sent, zc_done;      /* MSG_ZEROCOPY sends, completions */
    bool zc_copied;                 /* the kernel copied since the last sync */
    uint8_t header[MULTIFD_HEADER_SIZE];
    struct iovec iov[MULTIFD_PAGES_MAX + 1];
} SendChannel;

struct MultifdSend {
    MultifdSendConfig cfg;
    char *block;
    unsigned n;
    SendChannel *ch;
    GMutex lock;
    GCond cond;                     /* room in a queue, or all written */
    MultifdFailure fail;
    /* The migration thread's. */
    MultifdPacket cur;
    uint64_t packet_num;
    unsigned next;
    MultifdSendStats stats;         /* atomic */
};

#define STAT_ADD(s, field, v) \
    __atomic_fetch_add(&(s)->stats.field, (v), __ATOMIC_RELAXED)

/* ---- failures ---- */

static void wake_all_locked(MultifdSend *s)
{
    g_cond_broadcast(&s->cond);
    for (unsigned i = 0; i < s->n; i++) {
        g_cond_broadcast(&s->ch[i].cond);
    }
}

static void fail(SendChannel *c, GError *err)
{
    MultifdSend *s = c->s;

    g_prefix_error(&err, "multifd channel %u: ", c->id);
    g_mutex_lock(&s->lock);
    multifd_failure_set_locked(&s->fail, err);
    wake_all_locked(s);
    g_mutex_unlock(&s->lock);
    /* The destination learns at once that this channel is gone. */
    shutdown(c->fd, SHUT_RDWR);
}

GError *multifd_send_get_error(MultifdSend *s)
{
    return multifd_failure_copy(&s->fail);
}

bool multifd_send_check(MultifdSend *s, GError **errp)
{
    return multifd_failure_check(&s->fail, errp);
}

/* ---- writing ---- */

static bool write_iov(SendChannel *c, struct iovec *iov, int cnt, int flags,
                      GError **errp);

static bool write_all(SendChannel *c, const void *buf, size_t len,
                      GError **errp)
{
    struct iovec iov = { (void *)buf, len };

    return write_iov(c, &iov, 1, 0, errp);
}

/* MSG_ZEROCOPY: take the completions the error queue holds; with 'wait',
 * at least one. */
static bool reap_zero_copy(SendChannel *c, bool wait, GError **errp)
{
    for (;;) {
        char control[128];
        struct msghdr m = { .msg_control = control,
                            .msg_controllen = sizeof(control) };
        struct pollfd pfd = { .fd = c->fd };

        if (recvmsg(c->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0) {
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm;
                 cm = CMSG_NXTHDR(&m, cm)) {
                const struct sock_extended_err *e = (void *)CMSG_DATA(cm);

                if (e->ee_origin == SO_EE_ORIGIN_ZEROCOPY) {
                    c->zc_done += e->ee_data - e->ee_info + 1;
                    c->zc_copied |= e->ee_code & SO_EE_CODE_ZEROCOPY_COPIED;
                }
            }
            wait = false;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            tern_set_error_errno(errp, errno, "zero-copy completions");
            return false;
        }
        if (!wait) {
            return true;
        }
        /* The error queue raises POLLERR; a dead peer POLLHUP. */
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            tern_set_error_errno(errp, errno, "poll");
            return false;
        }
        if ((pfd.revents & POLLHUP) && !(pfd.revents & POLLERR)) {
            return tern_fail(errp, TERN_ERR_IO, "connection lost while "
                             "zero-copy sends were in flight");
        }
    }
}

static bool zero_copy_flush(SendChannel *c, GError **errp)
{
    while (c->zc_done < c->zc_sent) {
        if (!reap_zero_copy(c, true, errp)) {
            return false;
        }
    }
    if (c->zc_copied) {
        STAT_ADD(c->s, zero_copy_copied, 1);
        c->zc_copied = false;
    }
    return true;
}

/* ENOBUFS with MSG_ZEROCOPY: too much in flight; wait for some of it. */
static bool zero_copy_room(SendChannel *c, GError **errp)
{
    if (c->zc_done == c->zc_sent) {
        return tern_fail(errp, TERN_ERR_IO, "Process can't lock enough "
                         "memory for using MSG_ZEROCOPY");
    }
    return reap_zero_copy(c, true, errp);
}

static bool write_iov(SendChannel *c, struct iovec *iov, int cnt, int flags,
                      GError **errp)
{
    while (cnt) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = cnt };
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | flags);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == ENOBUFS && (flags & MSG_ZEROCOPY)) {
            if (!zero_copy_room(c, errp)) {
                return false;
            }
            continue;
        }
        if (n < 0) {
            tern_set_error_errno(errp, errno, "write");
            return false;
        }
        c->zc_sent += !!(flags & MSG_ZEROCOPY);
        multifd_iov_advance(&iov, &cnt, n);
    }
    return true;
}

/* The packet's pages as iovecs from the mapping, neighbours merged. */
static int page_iovecs(SendChannel *c, const MultifdPacket *p,
                       struct iovec *iov)
{
    const MultifdSendConfig *cfg = &c->s->cfg;
    int n = 0;

    for (uint32_t i = 0; i < p->pages; i++) {
        uint8_t *host = (uint8_t *)cfg->page(cfg->opaque, p->offsets[i]);

        if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == host) {
            iov[n - 1].iov_len += MULTIFD_PAGE_SIZE;
        } else {
            iov[n++] = (struct iovec){ host, MULTIFD_PAGE_SIZE };
        }
    }
    return n;
}

static bool send_copy(SendChannel *c, const MultifdPacket *p, GError **errp)
{
    c->iov[0] = (struct iovec){ c->header, MULTIFD_HEADER_SIZE };
    return write_iov(c, c->iov, 1 + page_iovecs(c, p, c->iov + 1), 0, errp);
}

static bool send_zero_copy(SendChannel *c, const MultifdPacket *p,
                           GError **errp)
{
    int n;

    /* The header is the thread's own buffer, reused at once: copied. */
    if (!write_all(c, c->header, MULTIFD_HEADER_SIZE, errp)) {
        return false;
    }
    n = page_iovecs(c, p, c->iov);
    if (n && !write_iov(c, c->iov, n, MSG_ZEROCOPY, errp)) {
        return false;
    }
    /* As QEMU: a SYNC waits until the kernel let go of every page. */
    return (p->flags & MULTIFD_FLAG_SYNC) ? zero_copy_flush(c, errp)
                                          : reap_zero_copy(c, false, errp);
}

/* Move 'len' bytes out of the pipe into the socket. */
static bool pipe_to_socket(SendChannel *c, size_t len, GError **errp)
{
    while (len) {
        ssize_t n = splice(c->pipe[0], NULL, c->fd, NULL, len,
                           SPLICE_F_MOVE);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            tern_set_error_errno(errp, n < 0 ? errno : EPIPE, "write");
            return false;
        }
        len -= n;
    }
    return true;
}

/* [off, off + len) of the memfd into the pipe, emptying it into the socket
 * whenever it is full. */
static bool memfd_to_socket(SendChannel *c, loff_t off, size_t len,
                            size_t *in_pipe, GError **errp)
{
    while (len) {
        ssize_t n = splice(c->s->cfg.ram_fd, &off, c->pipe[1], NULL, len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

        if (n < 0 && errno == EAGAIN) {
            if (!pipe_to_socket(c, *in_pipe, errp)) {
                return false;
            }
            *in_pipe = 0;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            tern_set_error_errno(errp, n < 0 ? errno : EIO,
                                 "splice from guest RAM");
            return false;
        }
        len -= n;
        *in_pipe += n;
    }
    return true;
}

static bool send_splice(SendChannel *c, const MultifdPacket *p,
                        GError **errp)
{
    size_t in_pipe = MULTIFD_HEADER_SIZE;

    /* Every packet leaves the pipe empty: the header fits. */
    if (write(c->pipe[1], c->header, MULTIFD_HEADER_SIZE) !=
        MULTIFD_HEADER_SIZE) {
        tern_set_error_errno(errp, errno, "pipe");
        return false;
    }
    for (uint32_t i = 0; i < p->pages; ) {
        uint32_t j = multifd_packet_run_end(p, i);

        if (!memfd_to_socket(c, p->offsets[i],
                             (size_t)(j - i) * MULTIFD_PAGE_SIZE, &in_pipe,
                             errp)) {
            return false;
        }
        i = j;
    }
    return pipe_to_socket(c, in_pipe, errp);
}

static bool send_packet(SendChannel *c, const MultifdPacket *p,
                        GError **errp)
{
    multifd_packet_encode(c->header, p);
    switch (c->mode) {
    case SEND_SPLICE:
        return send_splice(c, p, errp);
    case SEND_ZERO_COPY:
        return send_zero_copy(c, p, errp);
    default:
        return send_copy(c, p, errp);
    }
}

/* ---- the channel thread ---- */

static bool take_packet(SendChannel *c, MultifdPacket *p)
{
    MultifdSend *s = c->s;
    bool got;

    g_mutex_lock(&s->lock);
    while (!c->count && !c->quit && !s->fail.failed) {
        g_cond_wait(&c->cond, &s->lock);
    }
    got = c->count && !s->fail.failed;
    if (got) {
        *p = c->queue[c->head];
        c->head = (c->head + 1) % QUEUE_LEN;
        c->count--;
        c->busy = true;
        g_cond_broadcast(&s->cond);
    }
    g_mutex_unlock(&s->lock);
    return got;
}

static void packet_done(SendChannel *c)
{
    g_mutex_lock(&c->s->lock);
    c->busy = false;
    g_cond_broadcast(&c->s->cond);
    g_mutex_unlock(&c->s->lock);
}

static gpointer send_thread(gpointer opaque)
{
    SendChannel *c = opaque;
    uint8_t init[MULTIFD_INIT_SIZE];
    g_autofree MultifdPacket *p = g_new(MultifdPacket, 1);
    GError *err = NULL;
    sigset_t pipe;

    /* splice(2) into a socket the peer closed raises SIGPIPE (it has no
     * MSG_NOSIGNAL): blocked here, it stays pending on this thread and the
     * call fails with EPIPE. */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    multifd_init_encode(init, c->s->cfg.uuid, c->id);
    if (!write_all(c, init, sizeof(init), &err)) {
        fail(c, err);
        return NULL;
    }
    while (take_packet(c, p)) {
        bool ok = send_packet(c, p, &err);

        if (!ok) {
            fail(c, err);
        }
        packet_done(c);
        if (!ok) {
            break;
        }
    }
    return NULL;
}

/* ---- channels ---- */

static bool channel_setup(SendChannel *c, GError **errp)
{
    const MultifdSendConfig *cfg = &c->s->cfg;
    int one = 1;

    c->pipe[0] = c->pipe[1] = -1;
    if (cfg->zero_copy) {
        if (setsockopt(c->fd, SOL_SOCKET, SO_ZEROCOPY, &one,
                       sizeof(one)) < 0) {
            return tern_fail(errp, TERN_ERR_NOT_SUPPORTED, "Zero copy send "
                             "feature not detected in host kernel");
        }
        c->mode = SEND_ZERO_COPY;
        return true;
    }
    /* A packet is at most 129 pipe buffers; 1 MiB pipes hold 256. */
    if (cfg->ram_fd >= 0 && pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        if (fcntl(c->pipe[1], F_SETPIPE_SZ, 1 * MiB) < 0) {
            /* A smaller pipe only means more splice calls. */
        }
        c->mode = SEND_SPLICE;
        return true;
    }
    c->mode = SEND_COPY;
    return true;
}

static void channel_close(SendChannel *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->pipe[i] >= 0) {
            close(c->pipe[i]);
            c->pipe[i] = -1;
        }
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Channels over 'fds' (taken in any case); threads running on success. */
static bool channels_start(MultifdSend *s, const int *fds, GError **errp)
{
    bool ok = true;

    for (unsigned i = 0; i < s->n; i++) {
        SendChannel *c = &s->ch[i];

        c->s = s;
        c->id = i;
        c->fd = fds[i];
        c->head = c->count = 0;
        c->busy = c->quit = false;
        c->zc_sent = c->zc_done = 0;
        ok = ok && channel_setup(c, errp);
        if (!ok) {
            c->pipe[0] = c->pipe[1] = -1;
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (!ok) {
            channel_close(&s->ch[i]);
        } else {
            s->ch[i].thread = g_thread_new("multifd/send", send_thread,
                                           &s->ch[i]);
        }
    }
    return ok;
}

/* Threads gone and sockets closed; 'hard' cuts writes still under way. */
static void channels_stop(MultifdSend *s, bool hard)
{
    g_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->n; i++) {
        SendChannel *c = &s->ch[i];

        c->quit = true;
        hard = hard || c->count || c->busy;
    }
    for (unsigned i = 0; i < s->n && hard; i++) {
        shutdown(s->ch[i].fd, SHUT_RDWR);
    }
    s->fail.failed |= hard;
    wake_all_locked(s);
    g_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->n; i++) {
        if (s->ch[i].thread) {
            g_thread_join(s->ch[i].thread);
            s->ch[i].thread = NULL;
        }
        channel_close(&s->ch[i]);
    }
}

MultifdSend *multifd_send_new(const MultifdSendConfig *cfg, const int *fds,
                              unsigned n, GError **errp)
{
    MultifdSend *s = g_new0(MultifdSend, 1);

    g_assert(n >= 1 && n <= MULTIFD_CHANNELS_MAX);
    s->cfg = *cfg;
    s->block = g_strdup(cfg->block);
    s->cfg.block = s->block;
    s->n = n;
    s->ch = g_new0(SendChannel, n);
    g_mutex_init(&s->lock);
    s->fail.lock = &s->lock;
    g_cond_init(&s->cond);
    for (unsigned i = 0; i < n; i++) {
        g_cond_init(&s->ch[i].cond);
    }
    g_strlcpy(s->cur.block, cfg->block, sizeof(s->cur.block));
    if (!channels_start(s, fds, errp)) {
        multifd_send_free(s);
        return NULL;
    }
    return s;
}

void multifd_send_free(MultifdSend *s)
{
    if (!s) {
        return;
    }
    channels_stop(s, false);
    for (unsigned i = 0; i < s->n; i++) {
        g_cond_clear(&s->ch[i].cond);
    }
    multifd_failure_clear_locked(&s->fail);
    g_cond_clear(&s->cond);
    g_mutex_clear(&s->lock);
    g_free(s->ch);
    g_free(s->block);
    g_free(s);
}

void multifd_send_restart(MultifdSend *s, const int *fds, unsigned n)
{
    GError *err = NULL;

    g_assert(n == s->n);
    channels_stop(s, true);
    g_mutex_lock(&s->lock);
    multifd_failure_clear_locked(&s->fail);
    g_mutex_unlock(&s->lock);
    s->cur.pages = 0;
    if (!channels_start(s, fds, &err)) {
        g_mutex_lock(&s->lock);
        multifd_failure_set_locked(&s->fail, err);
        g_mutex_unlock(&s->lock);
    }
}

void multifd_send_shutdown(MultifdSend *s)
{
    g_mutex_lock(&s->lock);
    s->fail.failed = true;
    for (unsigned i = 0; i < s->n; i++) {
        shutdown(s->ch[i].fd, SHUT_RDWR);
    }
    wake_all_locked(s);
    g_mutex_unlock(&s->lock);
}

unsigned multifd_send_channels(const MultifdSend *s)
{
    return s->n;
}

void multifd_send_get_stats(MultifdSend *s, MultifdSendStats *out)
{
    out->bytes = __atomic_load_n(&s->stats.bytes, __ATOMIC_RELAXED);
    out->zero_copy_copied = __atomic_load_n(&s->stats.zero_copy_copied,
                                            __ATOMIC_RELAXED);
}

/* ---- the migration thread's side ---- */

/* The least busy channel with room, fairly; NULL if all are full. */
static SendChannel *pick_channel(MultifdSend *s)
{
    SendChannel *best = NULL;

    for (unsigned k = 0; k < s->n; k++) {
        SendChannel *c = &s->ch[(s->next + k) % s->n];

        if (c->count < QUEUE_LEN &&
            (!best || c->count + c->busy < best->count + best->busy)) {
            best = c;
        }
    }
    if (best) {
        s->next = best->id + 1;
    }
    return best;
}

/* Queue 'p' on 'only' or on the least busy channel; the bytes it puts on
 * the wire, 0 once the channels have failed. */
static uint64_t hand_over(MultifdSend *s, SendChannel *only,
                          const MultifdPacket *p)
{
    uint64_t bytes = MULTIFD_HEADER_SIZE +
                     (uint64_t)p->pages * MULTIFD_PAGE_SIZE;
    SendChannel *c = NULL;

    g_mutex_lock(&s->lock);
    while (!s->fail.failed &&
           !(c = only ? (only->count < QUEUE_LEN ? only : NULL)
                      : pick_channel(s))) {
        g_cond_wait(&s->cond, &s->lock);
    }
    if (s->fail.failed) {
        g_mutex_unlock(&s->lock);
        return 0;
    }
    c->queue[(c->head + c->count) % QUEUE_LEN] = *p;
    c->queue[(c->head + c->count) % QUEUE_LEN].packet_num = s->packet_num++;
    c->count++;
    g_cond_signal(&c->cond);
    g_mutex_unlock(&s->lock);
    STAT_ADD(s, bytes, bytes);
    return bytes;
}

uint64_t multifd_send_page(MultifdSend *s, uint64_t offset)
{
    uint64_t bytes = 0;

    s->cur.offsets[s->cur.pages++] = offset;
    if (s->cur.pages == MULTIFD_PAGES_MAX) {
        bytes = hand_over(s, NULL, &s->cur);
        s->cur.pages = 0;
    }
    return bytes;
}

uint64_t multifd_send_sync(MultifdSend *s)
{
    MultifdPacket sync = { .flags = MULTIFD_FLAG_SYNC };
    uint64_t bytes = 0;

    if (s->cur.pages) {
        bytes = hand_over(s, NULL, &s->cur);
        s->cur.pages = 0;
    }
    for (unsigned i = 0; i < s->n; i++) {
        bytes += hand_over(s, &s->ch[i], &sync);
    }
    return bytes;
}

/* Unix sockets: until the peer has read what was queued (the pages are
 * referenced, not copied, until then). */
static bool wait_drained(MultifdSend *s, GError **errp)
{
    for (unsigned i = 0; i < s->n; i++) {
        int queued = 0;

        while (ioctl(s->ch[i].fd, SIOCOUTQ, &queued) == 0 && queued > 0) {
            if (!multifd_send_check(s, errp)) {
                return false;
            }
            g_usleep(200);
        }
    }
    return true;
}

bool multifd_send_flush(MultifdSend *s, GError **errp)
{
    bool idle = false;

    g_mutex_lock(&s->lock);
    while (!s->fail.failed && !idle) {
        idle = true;
        for (unsigned i = 0; i < s->n; i++) {
            idle = idle && !s->ch[i].count && !s->ch[i].busy;
        }
        if (!idle) {
            g_cond_wait(&s->cond, &s->lock);
        }
    }
    g_mutex_unlock(&s->lock);
    return multifd_send_check(s, errp) && wait_drained(s, errp);
}
