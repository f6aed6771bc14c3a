/*
 * The coalesced I/O ring (accel/kvm/kvm-coalesced.h): KVM appends guest writes
 * to registered zones at ring->last; tern consumes from ring->first under one
 * lock, since vCPU threads and the main-loop timer all replay. KVM falls back
 * to an ordinary exit when the ring is full, and the vCPU replays the ring
 * before dispatching that exit, so order is kept either way.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "accel/kvm/kvm-coalesced.h"
#include "tern/error.h"

#define RING_BYTES     4096
#define FLUSH_MIN_MS   1
#define FLUSH_MAX_MS   32
#define IDLE_TICKS     16     /* empty ticks at one interval before doubling it */

struct KvmCoalesced {
    KvmState *kvm;
    IoBus *pio, *mmio;
    GMainContext *ctx;
    GMutex lock;                          /* consumer side of the ring */
    struct kvm_coalesced_mmio_ring *ring; /* NULL until attached */
    GSource *timer;
    unsigned interval_ms, idle_ticks;
};

static const uint32_t ring_max = (RING_BYTES - sizeof(struct kvm_coalesced_mmio_ring)) /
                                 sizeof(struct kvm_coalesced_mmio);

unsigned kvm_coalesced_ring_replay(struct kvm_coalesced_mmio_ring *ring, uint32_t max,
                                   IoBus *pio, IoBus *mmio)
{
    uint32_t first = ring->first;
    uint32_t last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
    unsigned n = 0;

    if (first >= max || last >= max) {
        tern_warn("coalesced I/O ring indices %u/%u out of range: dropped", first, last);
        __atomic_store_n(&ring->first, last < max ? last : 0, __ATOMIC_RELEASE);
        return 0;
    }
    while (first != last) {
        const struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[first];
        uint64_t val = 0;

        if (e->len == 1 || e->len == 2 || e->len == 4 || e->len == 8) {
            memcpy(&val, e->data, e->len);
            iobus_write(e->pio ? pio : mmio, e->phys_addr, val, e->len);
            n++;
        }
        first = (first + 1) % max;
    }
    /* KVM reads 'first' to see free slots: publish only after the replay. */
    __atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
    return n;
}

unsigned kvm_coalesced_flush(KvmCoalesced *c)
{
    unsigned n;

    /* The common case, on every vCPU exit: nothing queued, no lock. */
    if (!c || !c->ring || __atomic_load_n(&c->ring->first, __ATOMIC_RELAXED) ==
                          __atomic_load_n(&c->ring->last, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    g_mutex_lock(&c->lock);
    n = kvm_coalesced_ring_replay(c->ring, ring_max, c->pio, c->mmio);
    g_mutex_unlock(&c->lock);
    return n;
}

static void arm_timer(KvmCoalesced *c, unsigned ms);

static gboolean on_timer(gpointer opaque)
{
    KvmCoalesced *c = opaque;
    unsigned next = c->interval_ms;

    if (kvm_coalesced_flush(c)) {
        c->idle_ticks = 0;
        next = FLUSH_MIN_MS;
    } else if (++c->idle_ticks >= IDLE_TICKS) {
        c->idle_ticks = 0;
        next = MIN(c->interval_ms * 2, FLUSH_MAX_MS);
    }
    if (next == c->interval_ms) {
        return G_SOURCE_CONTINUE;
    }
    arm_timer(c, next);
    return G_SOURCE_REMOVE;
}

static void arm_timer(KvmCoalesced *c, unsigned ms)
{
    if (c->timer) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
    }
    c->interval_ms = ms;
    c->timer = g_timeout_source_new(ms);
    g_source_set_callback(c->timer, on_timer, c, NULL);
    g_source_attach(c->timer, c->ctx);
}

KvmCoalesced *kvm_coalesced_new(KvmState *kvm, IoBus *pio, IoBus *mmio,
                                GMainContext *ctx)
{
    KvmCoalesced *c;

    if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO) !=
            KVM_COALESCED_MMIO_PAGE_OFFSET ||
        ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) <= 0 ||
        kvm->vcpu_mmap_size < (KVM_COALESCED_MMIO_PAGE_OFFSET + 1) * RING_BYTES) {
        return NULL;
    }
    c = g_new0(KvmCoalesced, 1);
    c->kvm = kvm;
    c->pio = pio;
    c->mmio = mmio;
    c->ctx = ctx;
    g_mutex_init(&c->lock);
    return c;
}

bool kvm_coalesced_attach(KvmCoalesced *c, int vcpu_fd, GError **errp)
{
    void *p = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd,
                   KVM_COALESCED_MMIO_PAGE_OFFSET * RING_BYTES);

    if (p == MAP_FAILED) {
        tern_set_error_errno(errp, errno, "mmap of KVM's coalesced I/O ring");
        return false;
    }
    c->ring = p;
    return true;
}

bool kvm_coalesced_add_pio(KvmCoalesced *c, uint16_t port, unsigned len, GError **errp)
{
    struct kvm_coalesced_mmio_zone z = { .addr = port, .size = len, .pio = 1 };

    if (!c->ring) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "coalesced I/O: no vCPU ring attached");
        return false;
    }
    if (ioctl(c->kvm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &z) < 0) {
        tern_set_error_errno(errp, errno, "KVM_REGISTER_COALESCED_MMIO port 0x%x+%u",
                             port, len);
        return false;
    }
    if (!c->timer) {
        arm_timer(c, FLUSH_MIN_MS);
    }
    return true;
}

void kvm_coalesced_free(KvmCoalesced *c)
{
    if (!c) {
        return;
    }
    if (c->timer) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
    }
    kvm_coalesced_flush(c);
    if (c->ring) {
        munmap(c->ring, RING_BYTES);
    }
    g_mutex_clear(&c->lock);
    g_free(c);
}
