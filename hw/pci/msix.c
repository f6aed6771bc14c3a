/*
 * MSI-X (PCI Local Bus spec, MSI-X capability): the capability in config
 * space, the vector table and PBA in their own BAR, per-vector and
 * function-wide masking with pending bits, and delivery through one KVM
 * irqfd per vector bound to an MSI route that follows the table entry.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hw/pci/msix.h"
#include "tern/error.h"

static uint8_t *entry(Msix *x, unsigned v)
{
    return x->table + (size_t)v * MSIX_ENTRY_SIZE;
}

static bool vector_masked(Msix *x, unsigned v)
{
    return x->masked_all || (pci_get_long(entry(x, v) + 12) & MSIX_ENTRY_MASKED);
}

/* Binds an eventfd to an MSI route for vector v on first use; refreshes the
 * route when the guest changed address or data since. */
static bool route_vector(Msix *x, unsigned v, uint64_t addr, uint32_t data)
{
    g_autoptr(GError) err = NULL;

    if (x->gsi[v] < 0) {
        int gsi = kvm_msi_route_add(x->kvm, addr, data, &err);
        int efd = gsi < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        if (efd < 0 || !kvm_irqfd(x->kvm, efd, (unsigned)gsi, -1, true, &err)) {
            tern_warn("%s: MSI-X vector %u: %s", x->dev->name, v,
                      err ? err->message : "eventfd failed");
            if (efd >= 0) {
                close(efd);
            }
            if (gsi >= 0) {
                kvm_msi_route_release(x->kvm, gsi);
            }
            return false;
        }
        x->gsi[v] = gsi;
        x->efd[v] = efd;
    } else if (x->stale[v] &&
               !kvm_msi_route_update(x->kvm, x->gsi[v], addr, data, &err)) {
        tern_warn("%s: MSI-X vector %u: %s", x->dev->name, v, err->message);
        return false;
    }
    x->stale[v] = false;
    return true;
}

static void deliver(Msix *x, unsigned v)
{
    uint8_t *e = entry(x, v);
    uint64_t addr = pci_get_long(e) | (uint64_t)pci_get_long(e + 4) << 32;
    uint32_t data = pci_get_long(e + 8);

    if (!x->kvm) {
        if (x->signal) {
            x->signal(x->signal_opaque, addr, data);
        }
        return;
    }
    if (route_vector(x, v, addr, data)) {
        uint64_t one = 1;

        if (write(x->efd[v], &one, sizeof(one)) == sizeof(one)) {
            return;
        }
    }
    kvm_signal_msi(x->kvm, addr, data, NULL);      /* slow path, still delivers */
}

/* Delivers every pending vector that is no longer masked (lock held). */
static void flush_pending(Msix *x)
{
    if (!x->enabled) {
        return;
    }
    for (unsigned v = 0; v < x->nr; v++) {
        if ((x->pba & (1ULL << v)) && !vector_masked(x, v)) {
            x->pba &= ~(1ULL << v);
            deliver(x, v);
        }
    }
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    Msix *x = opaque;
    uint64_t val = 0;

    g_mutex_lock(&x->lock);
    if (off + size <= (uint64_t)x->nr * MSIX_ENTRY_SIZE) {
        memcpy(&val, x->table + off, size);
    } else if (off >= MSIX_PBA_OFFSET && off + size <= MSIX_PBA_OFFSET + 8) {
        uint64_t pba = x->pba;

        memcpy(&val, (uint8_t *)&pba + (off - MSIX_PBA_OFFSET), size);
    }
    g_mutex_unlock(&x->lock);
    return val;
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    Msix *x = opaque;

    if (off + size > (uint64_t)x->nr * MSIX_ENTRY_SIZE) {
        return;                                    /* PBA and gaps are read-only */
    }
    g_mutex_lock(&x->lock);
    memcpy(x->table + off, &val, size);
    for (uint64_t v = off / MSIX_ENTRY_SIZE; v <= (off + size - 1) / MSIX_ENTRY_SIZE; v++) {
        x->stale[v] = true;
    }
    flush_pending(x);
    g_mutex_unlock(&x->lock);
}

static const IoOps msix_bar_ops = {
    .read = bar_read,
    .write = bar_write,
};

bool msix_init(Msix *x, PciDevice *d, unsigned nr, unsigned bar, KvmState *kvm,
               GError **errp)
{
    uint8_t cap;

    if (nr == 0 || nr > MSIX_MAX_VECTORS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: %u MSI-X vectors (1..%u)", d->name, nr, MSIX_MAX_VECTORS);
        return false;
    }
    memset(x, 0, sizeof(*x));
    x->dev = d;
    x->kvm = kvm;
    x->nr = nr;
    g_mutex_init(&x->lock);
    for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++) {
        x->efd[v] = x->gsi[v] = -1;
    }
    msix_reset(x);
    if (!pci_device_set_bar(d, bar, PCI_BAR_MEM32, MSIX_BAR_SIZE, false,
                            &msix_bar_ops, x, errp)) {
        g_mutex_clear(&x->lock);
        return false;
    }
    cap = pci_device_add_capability(d, PCI_CAP_ID_MSIX, MSIX_CAP_LEN);
    if (!cap) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: no room for the MSI-X capability", d->name);
        g_mutex_clear(&x->lock);
        return false;
    }
    x->cap = cap;
    pci_set_word(d->config + cap + 2, (uint16_t)(nr - 1));
    pci_set_word(d->wmask + cap + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
    pci_set_long(d->config + cap + 4, bar);                  /* table at 0 */
    pci_set_long(d->config + cap + 8, MSIX_PBA_OFFSET | bar);
    return true;
}

void msix_cleanup(Msix *x)
{
    if (!x->dev) {
        return;
    }
    for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++) {
        if (x->gsi[v] >= 0) {
            kvm_irqfd(x->kvm, x->efd[v], (unsigned)x->gsi[v], -1, false, NULL);
            kvm_msi_route_release(x->kvm, x->gsi[v]);
        }
        if (x->efd[v] >= 0) {
            close(x->efd[v]);
        }
    }
    g_mutex_clear(&x->lock);
    x->dev = NULL;
}

void msix_reset(Msix *x)
{
    g_mutex_lock(&x->lock);
    memset(x->table, 0, sizeof(x->table));
    for (unsigned v = 0; v < x->nr; v++) {
        pci_set_long(entry(x, v) + 12, MSIX_ENTRY_MASKED);
        x->stale[v] = true;
    }
    x->pba = 0;
    x->enabled = x->masked_all = false;
    if (x->cap) {
        uint8_t *ctrl = x->dev->config + x->cap + 2;

        pci_set_word(ctrl, pci_get_word(ctrl) & ~(MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL));
    }
    g_mutex_unlock(&x->lock);
}

void msix_config_written(Msix *x, unsigned off, uint32_t val, unsigned size)
{
    uint16_t ctrl;

    if (off + size <= x->cap + 2u || off >= x->cap + 4u) {
        return;
    }
    ctrl = pci_get_word(x->dev->config + x->cap + 2);
    g_mutex_lock(&x->lock);
    x->enabled = ctrl & MSIX_CTRL_ENABLE;
    x->masked_all = ctrl & MSIX_CTRL_MASKALL;
    flush_pending(x);
    g_mutex_unlock(&x->lock);
}

bool msix_enabled(Msix *x)
{
    bool on;

    g_mutex_lock(&x->lock);
    on = x->enabled;
    g_mutex_unlock(&x->lock);
    return on;
}

void msix_notify(Msix *x, unsigned vector)
{
    if (vector >= x->nr) {
        return;
    }
    g_mutex_lock(&x->lock);
    if (!x->enabled) {
        /* nothing: the caller should have used INTx */
    } else if (vector_masked(x, vector)) {
        x->pba |= 1ULL << vector;
    } else {
        deliver(x, vector);
    }
    g_mutex_unlock(&x->lock);
}

static bool msix_post_load(void *opaque, int version_id, GError **errp)
{
    Msix *x = opaque;
    uint16_t ctrl = pci_get_word(x->dev->config + x->cap + 2);

    g_mutex_lock(&x->lock);
    x->pba &= x->nr == 64 ? ~0ULL : (1ULL << x->nr) - 1;
    memset(x->table + (size_t)x->nr * MSIX_ENTRY_SIZE, 0,
           sizeof(x->table) - (size_t)x->nr * MSIX_ENTRY_SIZE);
    for (unsigned v = 0; v < x->nr; v++) {
        x->stale[v] = true;
    }
    x->enabled = ctrl & MSIX_CTRL_ENABLE;
    x->masked_all = ctrl & MSIX_CTRL_MASKALL;
    g_mutex_unlock(&x->lock);
    return true;
}

const VMStateDescription vmstate_msix = {
    .name = "msix",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = msix_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_BUFFER(table, Msix),
        VMSTATE_UINT64(pba, Msix),
        VMSTATE_END_OF_LIST()
    },
};

bool msix_is_pending(Msix *x, unsigned vector)
{
    bool p;

    g_mutex_lock(&x->lock);
    p = vector < x->nr && (x->pba & (1ULL << vector));
    g_mutex_unlock(&x->lock);
    return p;
}
