/*
 * vCPU threads (accel/kvm/kvm-vcpu.h). Each thread loops: park while paused, else
 * KVM_RUN and dispatch the exit. Another thread stops it by setting 'want',
 * setting kvm_run->immediate_exit (covers the window before KVM_RUN is
 * entered) and sending SIG_KICK (covers a vCPU already inside KVM_RUN).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/kvm/kvm-vcpu.h"
#include "tern/error.h"

#define SIG_KICK SIGUSR1

struct Vcpu {
    unsigned index;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    VcpuHooks hooks;

    pthread_t thread;
    bool thread_started;
    GMutex lock;
    GCond cond;
    VcpuRunState state;   /* what the thread is doing */
    VcpuRunState want;    /* what it was asked to do */
    bool io_pending;      /* last exit was I/O that completes on re-entry */
    pid_t tid;            /* the thread's Linux TID; 0 until it has started */
    gint64 throttle_us;   /* auto-converge: sleep this long before KVM_RUN */
};

static void kick_handler(int sig)
{
    /* Nothing to do: delivery alone makes KVM_RUN return EINTR. */
}

static void install_kick_handler(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        struct sigaction sa = { .sa_handler = kick_handler };

        sigemptyset(&sa.sa_mask);
        sigaction(SIG_KICK, &sa, NULL);
        g_once_init_leave(&done, 1);
    }
}

/* ---- exit dispatch ---- */

static void handle_pio(Vcpu *v)
{
    struct kvm_run *r = v->run;
    uint8_t *data = (uint8_t *)r + r->io.data_offset;
    unsigned size = r->io.size;

    for (uint32_t i = 0; i < r->io.count; i++, data += size) {
        uint64_t val = 0;

        if (r->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&val, data, size);
            iobus_write(v->hooks.pio, r->io.port, val, size);
        } else {
            iobus_read(v->hooks.pio, r->io.port, &val, size);
            memcpy(data, &val, size);
        }
    }
}

static void handle_mmio(Vcpu *v)
{
    struct kvm_run *r = v->run;
    unsigned len = r->mmio.len;
    uint64_t val = 0;

    if (len != 1 && len != 2 && len != 4 && len != 8) {
        tern_warn_guest("vCPU %u: MMIO access of %u bytes at 0x%llx ignored",
                        v->index, len, (unsigned long long)r->mmio.phys_addr);
        return;
    }
    if (r->mmio.is_write) {
        memcpy(&val, r->mmio.data, len);
        iobus_write(v->hooks.mmio, r->mmio.phys_addr, val, len);
    } else {
        iobus_read(v->hooks.mmio, r->mmio.phys_addr, &val, len);
        memcpy(r->mmio.data, &val, len);
    }
}

static void report_failure(Vcpu *v, const char *what)
{
    struct kvm_regs regs;

    if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0) {
        tern_error_report("vCPU %u: %s (rip=0x%llx rsp=0x%llx rflags=0x%llx)",
                          v->index, what, (unsigned long long)regs.rip,
                          (unsigned long long)regs.rsp, (unsigned long long)regs.rflags);
    } else {
        tern_error_report("vCPU %u: %s", v->index, what);
    }
}

/* Handles the exit in v->run; returns the event to report, or -1 for none. */
static int dispatch_exit(Vcpu *v)
{
    struct kvm_run *r = v->run;
    g_autofree char *msg = NULL;

    switch (r->exit_reason) {
    case KVM_EXIT_IO:
        handle_pio(v);
        return -1;
    case KVM_EXIT_MMIO:
        handle_mmio(v);
        return -1;
    case KVM_EXIT_HLT:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
        return -1;
    case KVM_EXIT_SHUTDOWN:
        return VCPU_EVENT_RESET;   /* triple fault: the machine resets */
    case KVM_EXIT_SYSTEM_EVENT:
        if (r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
            return VCPU_EVENT_SHUTDOWN;
        }
        if (r->system_event.type == KVM_SYSTEM_EVENT_RESET) {
            return VCPU_EVENT_RESET;
        }
        msg = g_strdup_printf("KVM system event %u", r->system_event.type);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        msg = g_strdup_printf("KVM entry failed, hardware reason 0x%llx",
                              (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        msg = g_strdup_printf("KVM internal error, suberror %u", r->internal.suberror);
        break;
    default:
        msg = g_strdup_printf("unhandled KVM exit reason %u", r->exit_reason);
        break;
    }
    report_failure(v, msg);
    return VCPU_EVENT_INTERNAL_ERROR;
}

/* One KVM_RUN and its exit; returns the event to report, or -1. */
static int run_once(Vcpu *v)
{
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            v->io_pending = false;
            return -1;
        }
        report_failure(v, g_strerror(errno));
        return VCPU_EVENT_INTERNAL_ERROR;
    }
    v->io_pending = v->run->exit_reason == KVM_EXIT_IO ||
                    v->run->exit_reason == KVM_EXIT_MMIO;
    kvm_coalesced_flush(v->hooks.coalesced);   /* queued writes come first */
    return dispatch_exit(v);
}

/* Before parking: let KVM finish an I/O instruction whose data we supplied,
 * without running any further guest instruction. A string instruction
 * (rep ins/outs) may need several more exits to finish: serve them too. */
static void complete_pending_io(Vcpu *v)
{
    for (unsigned i = 0; v->io_pending && i < 100000; i++) {
        int ev;

        v->run->immediate_exit = 1;
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno != EINTR && errno != EAGAIN) {
                tern_warn("vCPU %u: completing I/O: %s", v->index, g_strerror(errno));
            }
            v->io_pending = false;
            return;
        }
        v->io_pending = v->run->exit_reason == KVM_EXIT_IO ||
                        v->run->exit_reason == KVM_EXIT_MMIO;
        kvm_coalesced_flush(v->hooks.coalesced);
        ev = dispatch_exit(v);
        if (ev >= 0) {
            v->hooks.event(v->hooks.opaque, v->index, ev);
            return;
        }
    }
    if (v->io_pending) {
        tern_warn("vCPU %u: I/O still pending after re-entry", v->index);
        v->io_pending = false;
    }
}

/* Waiters wait for a change of state; a vCPU re-entering KVM_RUN after an
 * exit stays RUNNING and must not pay a futex wake-up per exit. */
static void set_state(Vcpu *v, VcpuRunState s)
{
    if (v->state != s) {
        v->state = s;
        g_cond_broadcast(&v->cond);
    }
}

/* Auto-converge's sleep, under the lock; a pause or destroy request ends
 * it early (they broadcast the condition). */
static void throttle_sleep(Vcpu *v)
{
    gint64 until = g_get_monotonic_time() + v->throttle_us;

    v->throttle_us = 0;
    while (v->want == VCPU_RUNNING &&
           g_cond_wait_until(&v->cond, &v->lock, until)) {
        if (g_get_monotonic_time() >= until) {
            break;
        }
    }
}

static void *vcpu_thread(void *opaque)
{
    Vcpu *v = opaque;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIG_KICK);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    g_mutex_lock(&v->lock);
    v->tid = gettid();
    g_cond_broadcast(&v->cond);
    for (;;) {
        int ev;

        if (v->want != VCPU_RUNNING) {
            complete_pending_io(v);
            if (v->want == VCPU_STOPPED) {
                break;
            }
            v->throttle_us = 0;     /* a throttle does not outlive a pause */
            set_state(v, VCPU_PAUSED);
            g_cond_wait(&v->cond, &v->lock);
            continue;
        }
        if (v->throttle_us) {
            throttle_sleep(v);
            continue;
        }
        v->run->immediate_exit = 0;
        set_state(v, VCPU_RUNNING);
        g_mutex_unlock(&v->lock);
        ev = run_once(v);
        g_mutex_lock(&v->lock);
        if (ev >= 0) {
            v->want = VCPU_PAUSED;
            g_mutex_unlock(&v->lock);
            v->hooks.event(v->hooks.opaque, v->index, ev);
            g_mutex_lock(&v->lock);
        }
    }
    set_state(v, VCPU_STOPPED);
    g_mutex_unlock(&v->lock);
    return NULL;
}

Vcpu *vcpu_create(KvmState *kvm, unsigned index, const VcpuHooks *hooks, GError **errp)
{
    Vcpu *v = g_new0(Vcpu, 1);
    sigset_t block, old;
    int rc;

    install_kick_handler();
    v->index = index;
    v->hooks = *hooks;
    v->state = v->want = VCPU_PAUSED;
    g_mutex_init(&v->lock);
    g_cond_init(&v->cond);
    v->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (v->fd < 0) {
        tern_set_error_errno(errp, errno, "KVM_CREATE_VCPU %u", index);
        goto fail;
    }
    v->run_size = kvm->vcpu_mmap_size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        tern_set_error_errno(errp, errno, "mmap of vCPU %u kvm_run", index);
        goto fail;
    }
    /* The thread inherits a mask blocking everything but the kick, so that
     * SIGINT/SIGTERM reach the main loop. */
    sigfillset(&block);
    pthread_sigmask(SIG_SETMASK, &block, &old);
    rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        tern_set_error_errno(errp, rc, "cannot start vCPU %u thread", index);
        goto fail;
    }
    v->thread_started = true;
    return v;
fail:
    vcpu_destroy(v);
    return NULL;
}

static void kick(Vcpu *v)
{
    v->run->immediate_exit = 1;
    pthread_kill(v->thread, SIG_KICK);
}

void vcpu_destroy(Vcpu *v)
{
    if (!v) {
        return;
    }
    if (v->thread_started) {
        g_mutex_lock(&v->lock);
        v->want = VCPU_STOPPED;
        kick(v);
        g_cond_broadcast(&v->cond);
        g_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
    }
    /* kvm_run must go before the fd, or KVM never frees the vCPU. */
    if (v->run) {
        munmap(v->run, v->run_size);
    }
    if (v->fd >= 0) {
        close(v->fd);
    }
    g_cond_clear(&v->cond);
    g_mutex_clear(&v->lock);
    g_free(v);
}

int vcpu_fd(const Vcpu *v)
{
    return v->fd;
}

unsigned vcpu_index(const Vcpu *v)
{
    return v->index;
}

void vcpu_set_thread_name(Vcpu *v, const char *name)
{
    char comm[16];   /* the kernel keeps 15 bytes and a NUL */

    if (v->thread_started) {
        g_strlcpy(comm, name, sizeof(comm));
        pthread_setname_np(v->thread, comm);
    }
}

int64_t vcpu_thread_id(Vcpu *v)
{
    pid_t tid;

    g_mutex_lock(&v->lock);
    /* vcpu_create returns before the thread has run its first line. */
    while (v->thread_started && !v->tid) {
        g_cond_wait(&v->cond, &v->lock);
    }
    tid = v->tid;
    g_mutex_unlock(&v->lock);
    return tid;
}

VcpuRunState vcpu_run_state(Vcpu *v)
{
    VcpuRunState s;

    g_mutex_lock(&v->lock);
    s = v->state;
    g_mutex_unlock(&v->lock);
    return s;
}

void vcpu_resume(Vcpu *v)
{
    g_mutex_lock(&v->lock);
    if (v->want == VCPU_PAUSED) {
        v->want = VCPU_RUNNING;
        g_cond_broadcast(&v->cond);
    }
    g_mutex_unlock(&v->lock);
}

void vcpu_request_pause(Vcpu *v)
{
    g_mutex_lock(&v->lock);
    if (v->want == VCPU_RUNNING) {
        v->want = VCPU_PAUSED;
        if (v->state == VCPU_RUNNING) {
            kick(v);
        }
        g_cond_broadcast(&v->cond);     /* ends a throttle sleep */
    }
    g_mutex_unlock(&v->lock);
}

void vcpu_throttle_sleep(Vcpu *v, int64_t us)
{
    g_mutex_lock(&v->lock);
    if (v->want == VCPU_RUNNING && v->state == VCPU_RUNNING && us > 0) {
        v->throttle_us = us;
        kick(v);
    }
    g_mutex_unlock(&v->lock);
}

void vcpu_wait_paused(Vcpu *v)
{
    g_mutex_lock(&v->lock);
    while (v->want == VCPU_PAUSED && v->state != VCPU_PAUSED) {
        g_cond_wait(&v->cond, &v->lock);
    }
    g_mutex_unlock(&v->lock);
}

void vcpu_pause(Vcpu *v)
{
    vcpu_request_pause(v);
    vcpu_wait_paused(v);
}

void vcpus_pause_all(Vcpu **v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        vcpu_request_pause(v[i]);
    }
    for (unsigned i = 0; i < n; i++) {
        vcpu_wait_paused(v[i]);
    }
}

void vcpus_resume_all(Vcpu **v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        vcpu_resume(v[i]);
    }
}
