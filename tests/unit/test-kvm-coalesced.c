/*
 * Replay of KVM's coalesced I/O ring (accel/kvm/kvm-coalesced.c) on a fake
 * ring: writes reach the port-I/O or MMIO bus in ring order, across the wrap
 * at the end of the page; 'first' is published at 'last' afterwards; entries
 * with impossible lengths and a ring with out-of-range indices are dropped,
 * never read past the page. Then on real KVM (skipped without /dev/kvm): a
 * registered port queues a vCPU's writes instead of exiting, and an exit
 * replays them before it is dispatched.
 */
#include <string.h>

#include <sys/ioctl.h>

#include "accel/kvm/kvm-coalesced.h"
#include "accel/kvm/kvm-vcpu.h"
#include "hw/core/guest-memory.h"
#include "tern/error.h"
#include "test-kvm-util.h"

#define RING_MAX 170   /* what a 4 KiB ring holds */

typedef struct Rec {
    GMutex lock;      /* the vCPU thread writes while the test reads */
    GString *log;
} Rec;

static void rec_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    Rec *r = opaque;

    g_mutex_lock(&r->lock);
    g_string_append_printf(r->log, "%" PRIx64 ":%" PRIx64 "/%u ", off, val, size);
    g_mutex_unlock(&r->lock);
}

static size_t rec_len(Rec *r)
{
    size_t n;

    g_mutex_lock(&r->lock);
    n = r->log->len;
    g_mutex_unlock(&r->lock);
    return n;
}

static uint64_t rec_read(void *opaque, uint64_t off, unsigned size)
{
    return 0;
}

static const IoOps rec_ops = { .read = rec_read, .write = rec_write };

typedef struct Fake {
    struct kvm_coalesced_mmio_ring *ring;
    IoBus *pio, *mmio;
    Rec pio_rec, mmio_rec;
} Fake;

static void fake_init(Fake *f)
{
    *f = (Fake){ .ring = g_malloc0(4096) };
    f->pio = iobus_new("pio");
    f->mmio = iobus_new("mmio");
    f->pio_rec.log = g_string_new("");
    f->mmio_rec.log = g_string_new("");
    g_assert_true(iobus_register(f->pio, 0x3f8, 8, &rec_ops, &f->pio_rec, NULL));
    g_assert_true(iobus_register(f->mmio, 0x1000, 0x100, &rec_ops, &f->mmio_rec, NULL));
}

static void fake_free(Fake *f)
{
    g_free(f->ring);
    iobus_free(f->pio);
    iobus_free(f->mmio);
    g_string_free(f->pio_rec.log, true);
    g_string_free(f->mmio_rec.log, true);
}

static void push(Fake *f, uint64_t addr, uint64_t val, uint32_t len, bool pio)
{
    struct kvm_coalesced_mmio *e = &f->ring->coalesced_mmio[f->ring->last];

    e->phys_addr = addr;
    e->len = len;
    e->pio = pio;
    memcpy(e->data, &val, sizeof(val));
    f->ring->last = (f->ring->last + 1) % RING_MAX;
}

static void test_replay_in_order_across_wrap(void)
{
    Fake f;

    fake_init(&f);
    f.ring->first = f.ring->last = RING_MAX - 2;
    push(&f, 0x3f8, 'a', 1, true);
    push(&f, 0x1010, 0x1234, 2, false);
    push(&f, 0x3f8, 'b', 1, true);          /* slot 0: wrapped */
    push(&f, 0x3f9, 0xdeadbeef, 4, true);
    g_assert_cmpuint(f.ring->last, ==, 2);
    g_assert_cmpuint(kvm_coalesced_ring_replay(f.ring, RING_MAX, f.pio, f.mmio), ==, 4);
    g_assert_cmpstr(f.pio_rec.log->str, ==, "0:61/1 0:62/1 1:deadbeef/4 ");
    g_assert_cmpstr(f.mmio_rec.log->str, ==, "10:1234/2 ");
    g_assert_cmpuint(f.ring->first, ==, 2);
    /* Nothing new: nothing replayed. */
    g_assert_cmpuint(kvm_coalesced_ring_replay(f.ring, RING_MAX, f.pio, f.mmio), ==, 0);
    fake_free(&f);
}

static void test_bad_entries_dropped(void)
{
    Fake f;

    fake_init(&f);
    push(&f, 0x3f8, 'x', 0, true);
    push(&f, 0x3f8, 'y', 3, true);
    push(&f, 0x3f8, 'z', 9, true);
    push(&f, 0x3f8, 'k', 1, true);
    g_assert_cmpuint(kvm_coalesced_ring_replay(f.ring, RING_MAX, f.pio, f.mmio), ==, 1);
    g_assert_cmpstr(f.pio_rec.log->str, ==, "0:6b/1 ");
    g_assert_cmpuint(f.ring->first, ==, f.ring->last);
    /* Indices past the ring: nothing is read, the ring is reset. */
    f.ring->first = RING_MAX + 5;
    f.ring->last = 3;
    g_assert_cmpuint(kvm_coalesced_ring_replay(f.ring, RING_MAX, f.pio, f.mmio), ==, 0);
    g_assert_cmpuint(f.ring->first, ==, 3);
    f.ring->first = 0;
    f.ring->last = 1000;
    g_assert_cmpuint(kvm_coalesced_ring_replay(f.ring, RING_MAX, f.pio, f.mmio), ==, 0);
    g_assert_cmpuint(f.ring->first, ==, 0);
    g_assert_cmpstr(f.pio_rec.log->str, ==, "0:6b/1 ");
    fake_free(&f);
}

/* ---- real KVM: a 16-bit guest writes to port 0x3f8 (queued), then 0x3f9 ---- */

typedef struct Live {
    Rec rec;
    int events;
} Live;

static void live_event(void *opaque, unsigned index, VcpuEvent ev)
{
    ((Live *)opaque)->events++;
}

static void test_kvm_queues_until_exit(void)
{
    static const uint8_t code[] = {
        0xba, 0xf8, 0x03,               /* mov dx, 0x3f8 */
        0xb0, 'h', 0xee,                /* mov al, 'h'; out dx, al */
        0xb0, 'i', 0xee,                /* mov al, 'i'; out dx, al */
        0x80, 0x3e, 0x00, 0x20, 0x00,   /* wait: cmp byte [0x2000], 0 */
        0x74, 0xf9,                     /* je wait */
        0xb0, 'j', 0xee,                /* mov al, 'j'; out dx, al */
        0x42, 0xb0, '!', 0xee,          /* inc dx; mov al, '!'; out dx, al */
        0xf4, 0xeb, 0xfd,               /* hlt; jmp hlt */
    };
    g_autoptr(GError) err = NULL;
    KvmState *kvm;
    KvmCoalesced *c;
    IoBus *pio, *mmio;
    Live live = { .rec.log = g_string_new("") };
    GuestMemory mem;
    Vcpu *v;
    struct kvm_sregs sregs;
    struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
    unsigned replayed = 0;

    if (!test_have_kvm()) {
        g_string_free(live.rec.log, true);
        return;
    }
    kvm = kvm_init(&err);
    g_assert_no_error(err);
    pio = iobus_new("pio");
    mmio = iobus_new("mmio");
    g_assert_true(iobus_register(pio, 0x3f8, 8, &rec_ops, &live.rec, NULL));
    c = kvm_coalesced_new(kvm, pio, mmio, NULL);
    if (!c) {
        g_test_skip("KVM has no KVM_CAP_COALESCED_PIO");
        goto out_bus;
    }
    g_assert_true(guest_mem_alloc(&mem, 1 * MiB, 1 * MiB, &err));
    g_assert_true(kvm_set_slot(kvm, 0, 0, mem.ram_size, mem.regions[0].hva, 0, &err));
    memcpy(mem.regions[0].hva + 0x1000, code, sizeof(code));
    v = vcpu_create(kvm, 0, &(VcpuHooks){ .pio = pio, .mmio = mmio, .coalesced = c,
                                          .event = live_event, .opaque = &live }, &err);
    g_assert_no_error(err);
    g_assert_true(kvm_coalesced_attach(c, vcpu_fd(v), &err));
    g_assert_true(kvm_coalesced_add_pio(c, 0x3f8, 1, &err));
    g_assert_no_error(err);
    g_assert_cmpint(ioctl(vcpu_fd(v), KVM_GET_SREGS, &sregs), ==, 0);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    g_assert_cmpint(ioctl(vcpu_fd(v), KVM_SET_SREGS, &sregs), ==, 0);
    g_assert_cmpint(ioctl(vcpu_fd(v), KVM_SET_REGS, &regs), ==, 0);
    vcpu_resume(v);
    /* 'h' and 'i' wait in the ring while the guest spins without exiting:
     * only this thread's flush delivers them. */
    for (int i = 0; i < 5000 && replayed < 2; i++) {
        g_assert_cmpuint(rec_len(&live.rec), ==, replayed * strlen("0:68/1 "));
        replayed += kvm_coalesced_flush(c);
        g_usleep(1000);
    }
    g_assert_cmpuint(replayed, ==, 2);
    g_assert_cmpstr(live.rec.log->str, ==, "0:68/1 0:69/1 ");
    /* 'j' is queued, '!' to 0x3f9 exits: the exit replays 'j' first. */
    __atomic_store_n(mem.regions[0].hva + 0x2000, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 5000 && rec_len(&live.rec) < strlen("0:68/1 0:69/1 0:6a/1 1:21/1 "); i++) {
        g_usleep(1000);
    }
    vcpu_request_pause(v);
    vcpu_wait_paused(v);
    g_assert_cmpstr(live.rec.log->str, ==, "0:68/1 0:69/1 0:6a/1 1:21/1 ");
    g_assert_cmpint(live.events, ==, 0);
    vcpu_destroy(v);
    kvm_coalesced_free(c);
    guest_mem_free(&mem);
out_bus:
    iobus_free(pio);
    iobus_free(mmio);
    kvm_destroy(kvm);
    g_string_free(live.rec.log, true);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-coalesced/replay-in-order-across-wrap",
                    test_replay_in_order_across_wrap);
    g_test_add_func("/kvm-coalesced/bad-entries-dropped", test_bad_entries_dropped);
    g_test_add_func("/kvm-coalesced/kvm-queues-until-exit", test_kvm_queues_until_exit);
    return g_test_run();
}
