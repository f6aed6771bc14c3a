/*
 * The KVM VM (accel/kvm/kvm.h): opening /dev/kvm with every capability tern
 * relies on checked up front, memory slots, the in-kernel irqchip and PIT, the
 * GSI routing table (irqchip pins plus MSI routes), irqfd and ioeventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "accel/kvm/kvm.h"
#include "hw/core/qom.h"
#include "tern/error.h"

static const QomType type_kvm_accel = { .name = "kvm-accel", .parent = "accel" };
QOM_TYPE(type_kvm_accel);

/* Identity-map page and TSS that VMX needs for real mode; they sit in the PCI
 * hole just below the BIOS area, as in QEMU. */
#define KVM_IDENTITY_MAP_ADDR 0xfeffc000ULL
#define KVM_TSS_ADDR          0xfeffd000ULL

#define IOAPIC_PINS 24
#define PIC_PINS    16

static const struct {
    int cap;
    const char *name;
} required_caps[] = {
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
    { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
    { KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
    { KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
    { KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
    { KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    { KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
    { KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS" },
    { KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS" },
    { KVM_CAP_XSAVE, "KVM_CAP_XSAVE" },
    { KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK" },
    { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
    { KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
};

static bool check_caps(KvmState *s, GError **errp)
{
    int v = ioctl(s->fd, KVM_GET_API_VERSION, 0);

    if (v != KVM_API_VERSION) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                    "/dev/kvm has API version %d, tern needs %d", v, KVM_API_VERSION);
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
        if (ioctl(s->fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_SUPPORTED,
                        "KVM lacks %s, which tern requires", required_caps[i].name);
            return false;
        }
    }
    v = ioctl(s->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    s->max_vcpus = v > 0 ? v : 4;
    s->has_xcrs = ioctl(s->fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
    s->xsave_size = sizeof(struct kvm_xsave);
    v = ioctl(s->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    if (v > (int)sizeof(struct kvm_xsave)) {
        s->has_xsave2 = true;
        s->xsave_size = v;
    }
    return true;
}

static bool fetch_supported_cpuid(KvmState *s, GError **errp)
{
    for (unsigned n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + n * sizeof(c->entries[0]));

        c->nent = n;
        if (ioctl(s->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            s->supported_cpuid = c;
            return true;
        }
        g_free(c);
        if (errno != E2BIG) {
            tern_set_error_errno(errp, errno, "KVM_GET_SUPPORTED_CPUID");
            return false;
        }
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED, "KVM_GET_SUPPORTED_CPUID: too many entries");
    return false;
}

static bool fetch_msr_list(KvmState *s, GError **errp)
{
    struct kvm_msr_list probe = { .nmsrs = 0 };
    struct kvm_msr_list *l;

    if (ioctl(s->fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
        tern_set_error_errno(errp, errno, "KVM_GET_MSR_INDEX_LIST");
        return false;
    }
    l = g_malloc0(sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
    l->nmsrs = probe.nmsrs;
    if (ioctl(s->fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        tern_set_error_errno(errp, errno, "KVM_GET_MSR_INDEX_LIST");
        g_free(l);
        return false;
    }
    s->msr_list = l;
    return true;
}

static bool create_vm(KvmState *s, GError **errp)
{
    s->vm_fd = ioctl(s->fd, KVM_CREATE_VM, 0);
    if (s->vm_fd < 0) {
        tern_set_error_errno(errp, errno, "KVM_CREATE_VM");
        return false;
    }
    s->vcpu_mmap_size = ioctl(s->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (s->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
        tern_set_error_errno(errp, errno, "KVM_GET_VCPU_MMAP_SIZE");
        return false;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    if (ioctl(s->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 ||
        ioctl(s->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
        tern_set_error_errno(errp, errno, "KVM_SET_TSS_ADDR");
        return false;
    }
    return true;
}

KvmState *kvm_init(GError **errp)
{
    KvmState *s = g_new0(KvmState, 1);

    s->vm_fd = -1;
    g_mutex_init(&s->lock);
    s->free_msi_gsis = g_hash_table_new(NULL, NULL);
    s->next_msi_gsi = IOAPIC_PINS;
    s->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        tern_set_error_errno(errp, errno, "cannot open /dev/kvm");
        goto fail;
    }
    if (!check_caps(s, errp) || !fetch_supported_cpuid(s, errp) ||
        !fetch_msr_list(s, errp) || !create_vm(s, errp)) {
        goto fail;
    }
    return s;
fail:
    kvm_destroy(s);
    return NULL;
}

void kvm_destroy(KvmState *s)
{
    if (!s) {
        return;
    }
    if (s->vm_fd >= 0) {
        close(s->vm_fd);
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    g_hash_table_unref(s->free_msi_gsis);
    g_free(s->routes);
    g_free(s->supported_cpuid);
    g_free(s->msr_list);
    g_mutex_clear(&s->lock);
    g_free(s);
}

/* ---- memory slots ---- */

static int set_user_memory(KvmState *s, unsigned slot, const KvmSlot *k)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .flags = k->flags,
        .guest_phys_addr = k->gpa,
        .memory_size = k->size,
        .userspace_addr = (uintptr_t)k->hva,
    };

    return ioctl(s->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

bool kvm_set_slot(KvmState *s, unsigned slot, uint64_t gpa, uint64_t size,
                  void *hva, uint32_t flags, GError **errp)
{
    KvmSlot k = { .gpa = gpa, .size = size, .hva = hva, .flags = flags };
    bool ok = true;

    if (slot >= KVM_MAX_SLOTS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "memory slot %u out of range", slot);
        return false;
    }
    g_mutex_lock(&s->lock);
    if (s->slots[slot].size && size &&
        (s->slots[slot].gpa != gpa || s->slots[slot].size != size ||
         s->slots[slot].hva != hva)) {
        /* KVM cannot move or resize a slot in place: delete it first. Only
         * flags (dirty logging) change in place, with the vCPUs running. */
        KvmSlot gone = s->slots[slot];
        gone.size = 0;
        set_user_memory(s, slot, &gone);
    }
    if (set_user_memory(s, slot, &k) < 0) {
        tern_set_error_errno(errp, errno, "KVM_SET_USER_MEMORY_REGION slot %u "
                             "gpa 0x%" PRIx64 " size 0x%" PRIx64, slot, gpa, size);
        ok = false;
    } else {
        s->slots[slot] = k;
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

bool kvm_slot_set_dirty_log(KvmState *s, unsigned slot, bool on, GError **errp)
{
    KvmSlot k;

    if (slot >= KVM_MAX_SLOTS || !s->slots[slot].size) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "memory slot %u is not in use", slot);
        return false;
    }
    k = s->slots[slot];
    k.flags = on ? k.flags | KVM_MEM_LOG_DIRTY_PAGES : k.flags & ~KVM_MEM_LOG_DIRTY_PAGES;
    return kvm_set_slot(s, slot, k.gpa, k.size, k.hva, k.flags, errp);
}

bool kvm_get_dirty_log(KvmState *s, unsigned slot, uint64_t *bitmap, GError **errp)
{
    struct kvm_dirty_log d = { .slot = slot, .dirty_bitmap = bitmap };

    if (ioctl(s->vm_fd, KVM_GET_DIRTY_LOG, &d) < 0) {
        tern_set_error_errno(errp, errno, "KVM_GET_DIRTY_LOG slot %u", slot);
        return false;
    }
    return true;
}

/* ---- interrupts ---- */

static bool commit_routes(KvmState *s, GError **errp)
{
    g_autofree struct kvm_irq_routing *r =
        g_malloc0(sizeof(*r) + s->nr_routes * sizeof(r->entries[0]));

    r->nr = s->nr_routes;
    memcpy(r->entries, s->routes, s->nr_routes * sizeof(r->entries[0]));
    if (ioctl(s->vm_fd, KVM_SET_GSI_ROUTING, r) < 0) {
        tern_set_error_errno(errp, errno, "KVM_SET_GSI_ROUTING");
        return false;
    }
    return true;
}

static void add_route(KvmState *s, const struct kvm_irq_routing_entry *e)
{
    s->routes = g_renew(struct kvm_irq_routing_entry, s->routes, s->nr_routes + 1);
    s->routes[s->nr_routes++] = *e;
}

static void add_irqchip_route(KvmState *s, unsigned gsi, unsigned chip, unsigned pin)
{
    struct kvm_irq_routing_entry e = {
        .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
        .u.irqchip = { .irqchip = chip, .pin = pin },
    };

    add_route(s, &e);
}

bool kvm_create_irqchip(KvmState *s, GError **errp)
{
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    bool ok;

    if (ioctl(s->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        tern_set_error_errno(errp, errno, "KVM_CREATE_IRQCHIP");
        return false;
    }
    if (ioctl(s->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        tern_set_error_errno(errp, errno, "KVM_CREATE_PIT2");
        return false;
    }
    /* QEMU's PC routing, which the MADT and MP table describe: ISA IRQ0 (the
     * PIT) reaches IOAPIC pin 2 (the IRQ0->GSI2 override), GSI 2 has no IOAPIC
     * pin of its own and is the PICs' cascade. KVM's default table sends GSI 0
     * to pin 0 instead, so it is replaced here (one SRCU grace period). */
    g_mutex_lock(&s->lock);
    for (unsigned i = 0; i < PIC_PINS; i++) {
        if (i != 2) {
            add_irqchip_route(s, i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                              i % 8);
        }
    }
    for (unsigned i = 0; i < IOAPIC_PINS; i++) {
        if (i != 2) {
            add_irqchip_route(s, i, KVM_IRQCHIP_IOAPIC, i == 0 ? 2 : i);
        }
    }
    ok = commit_routes(s, errp);
    g_mutex_unlock(&s->lock);
    return ok;
}

static void kvm_irq_line_set(void *opaque, unsigned gsi, bool level)
{
    KvmState *s = opaque;
    struct kvm_irq_level l = { .irq = gsi, .level = level };

    if (ioctl(s->vm_fd, KVM_IRQ_LINE, &l) < 0) {
        tern_die("KVM_IRQ_LINE gsi %u: %s", gsi, g_strerror(errno));
    }
}

IrqLine kvm_irq_line(KvmState *s, unsigned gsi)
{
    return (IrqLine){ .set = kvm_irq_line_set, .opaque = s, .gsi = gsi };
}

static struct kvm_irq_routing_entry *find_route(KvmState *s, unsigned gsi)
{
    for (unsigned i = 0; i < s->nr_routes; i++) {
        if (s->routes[i].gsi == gsi && s->routes[i].type == KVM_IRQ_ROUTING_MSI) {
            return &s->routes[i];
        }
    }
    return NULL;
}

static unsigned alloc_msi_gsi(KvmState *s)
{
    GHashTableIter it;
    gpointer key;

    g_hash_table_iter_init(&it, s->free_msi_gsis);
    if (g_hash_table_iter_next(&it, &key, NULL)) {
        g_hash_table_iter_remove(&it);
        return GPOINTER_TO_UINT(key);
    }
    return s->next_msi_gsi++;
}

int kvm_msi_route_add(KvmState *s, uint64_t addr, uint32_t data, GError **errp)
{
    struct kvm_irq_routing_entry e = { .type = KVM_IRQ_ROUTING_MSI };
    int gsi;

    g_mutex_lock(&s->lock);
    e.gsi = alloc_msi_gsi(s);
    e.u.msi.address_lo = (uint32_t)addr;
    e.u.msi.address_hi = addr >> 32;
    e.u.msi.data = data;
    add_route(s, &e);
    gsi = e.gsi;
    if (!commit_routes(s, errp)) {
        s->nr_routes--;
        g_hash_table_add(s->free_msi_gsis, GUINT_TO_POINTER(e.gsi));
        gsi = -1;
    }
    g_mutex_unlock(&s->lock);
    return gsi;
}

bool kvm_msi_route_update(KvmState *s, int gsi, uint64_t addr, uint32_t data,
                          GError **errp)
{
    struct kvm_irq_routing_entry *e;
    bool ok = false;

    g_mutex_lock(&s->lock);
    e = gsi >= 0 ? find_route(s, gsi) : NULL;
    if (!e) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "GSI %d is not an MSI route", gsi);
    } else {
        e->u.msi.address_lo = (uint32_t)addr;
        e->u.msi.address_hi = addr >> 32;
        e->u.msi.data = data;
        ok = commit_routes(s, errp);
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

void kvm_msi_route_release(KvmState *s, int gsi)
{
    struct kvm_irq_routing_entry *e;
    g_autoptr(GError) err = NULL;

    g_mutex_lock(&s->lock);
    e = gsi >= 0 ? find_route(s, gsi) : NULL;
    if (e) {
        *e = s->routes[--s->nr_routes];
        g_hash_table_add(s->free_msi_gsis, GINT_TO_POINTER(gsi));
        if (!commit_routes(s, &err)) {
            tern_warn("releasing MSI route %d: %s", gsi, err->message);
        }
    }
    g_mutex_unlock(&s->lock);
}

bool kvm_signal_msi(KvmState *s, uint64_t addr, uint32_t data, GError **errp)
{
    struct kvm_msi m = { .address_lo = (uint32_t)addr, .address_hi = addr >> 32,
                         .data = data };

    if (ioctl(s->vm_fd, KVM_SIGNAL_MSI, &m) < 0) {
        tern_set_error_errno(errp, errno, "KVM_SIGNAL_MSI");
        return false;
    }
    return true;
}

bool kvm_irqfd(KvmState *s, int efd, unsigned gsi, int resample_fd, bool assign,
               GError **errp)
{
    struct kvm_irqfd f = { .fd = efd, .gsi = gsi };

    if (!assign) {
        f.flags |= KVM_IRQFD_FLAG_DEASSIGN;
    } else if (resample_fd >= 0) {
        f.flags |= KVM_IRQFD_FLAG_RESAMPLE;
        f.resamplefd = resample_fd;
    }
    if (ioctl(s->vm_fd, KVM_IRQFD, &f) < 0) {
        tern_set_error_errno(errp, errno, "KVM_IRQFD gsi %u", gsi);
        return false;
    }
    return true;
}

bool kvm_ioeventfd(KvmState *s, int efd, uint64_t addr, unsigned len, bool pio,
                   bool datamatch, uint64_t data, bool assign, GError **errp)
{
    struct kvm_ioeventfd e = { .datamatch = data, .addr = addr, .len = len, .fd = efd };

    e.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
              (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
              (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN);
    if (ioctl(s->vm_fd, KVM_IOEVENTFD, &e) < 0) {
        tern_set_error_errno(errp, errno, "KVM_IOEVENTFD 0x%" PRIx64, addr);
        return false;
    }
    return true;
}

/* ---- VM-wide state for migration ---- */

static bool vm_ioctl(KvmState *s, unsigned long req, void *arg, const char *name,
                     GError **errp)
{
    if (ioctl(s->vm_fd, req, arg) < 0) {
        tern_set_error_errno(errp, errno, "%s", name);
        return false;
    }
    return true;
}

bool kvm_get_clock(KvmState *s, struct kvm_clock_data *out, GError **errp)
{
    memset(out, 0, sizeof(*out));
    return vm_ioctl(s, KVM_GET_CLOCK, out, "KVM_GET_CLOCK", errp);
}

bool kvm_set_clock(KvmState *s, const struct kvm_clock_data *in, GError **errp)
{
    struct kvm_clock_data c = { .clock = in->clock };

    return vm_ioctl(s, KVM_SET_CLOCK, &c, "KVM_SET_CLOCK", errp);
}

bool kvm_get_irqchip(KvmState *s, struct kvm_irqchip *chip, GError **errp)
{
    return vm_ioctl(s, KVM_GET_IRQCHIP, chip, "KVM_GET_IRQCHIP", errp);
}

bool kvm_set_irqchip(KvmState *s, const struct kvm_irqchip *chip, GError **errp)
{
    return vm_ioctl(s, KVM_SET_IRQCHIP, (void *)chip, "KVM_SET_IRQCHIP", errp);
}

bool kvm_get_pit(KvmState *s, struct kvm_pit_state2 *pit, GError **errp)
{
    return vm_ioctl(s, KVM_GET_PIT2, pit, "KVM_GET_PIT2", errp);
}

bool kvm_set_pit(KvmState *s, const struct kvm_pit_state2 *pit, GError **errp)
{
    return vm_ioctl(s, KVM_SET_PIT2, (void *)pit, "KVM_SET_PIT2", errp);
}
