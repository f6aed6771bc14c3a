/*
 * The virtio 1.x PCI transport: vendor capabilities in config space, the
 * common/ISR/device/notify regions of the virtio BAR, feature negotiation
 * and the device status state machine, queue setup (validated when the
 * driver enables a queue), guest errors turned into NEEDS_RESET, interrupts
 * through MSI-X (irqfd) or INTx with the ISR, and queue kicks that arrive on
 * eventfds (KVM ioeventfds on the notify addresses) and run the device's
 * queue handler on the I/O thread.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hw/virtio/virtio-pci.h"
#include "softmmu/runstate.h"
#include "tern/error.h"

static VirtioPci *from_pci(PciDevice *d)
{
    return container_of(d, VirtioPci, pci);
}

void virtio_pci_set_dirty_tracking(VirtioPci *vp,
                                   void (*fn)(void *opaque, uint64_t gpa, uint64_t len),
                                   void *opaque)
{
    g_mutex_lock(&vp->lock);
    vp->mark_dirty = fn;
    vp->mark_dirty_opaque = opaque;
    g_mutex_unlock(&vp->lock);
}

void virtio_pci_push(VirtioPci *vp, unsigned q, const VirtQueueElement *elem,
                     uint32_t len)
{
    VirtQueue *vq = &vp->vqs[q];

    virtqueue_push(vq, elem, len);
    if (!vp->mark_dirty) {
        return;
    }
    for (unsigned i = elem->out_num; i < elem->out_num + elem->in_num; i++) {
        if (elem->iov[i].iov_len) {
            vp->mark_dirty(vp->mark_dirty_opaque, elem->gpa[i], elem->iov[i].iov_len);
        }
    }
    /* flags, idx, the ring and avail_event: one range, a page or two */
    vp->mark_dirty(vp->mark_dirty_opaque, vq->used_gpa, 6 + 8ULL * vq->size);
}

bool virtio_pci_has_feature(VirtioPci *vp, unsigned bit)
{
    return vp->guest_features & (1ULL << bit);
}

/* Raises the interrupt for 'vector' (MSI-X) or the ISR bit (INTx). Lock held. */
static void raise_irq(VirtioPci *vp, uint16_t vector, uint8_t isr_bit)
{
    if (msix_enabled(&vp->msix)) {
        if (vector != VIRTIO_NO_VECTOR) {
            msix_notify(&vp->msix, vector);
        }
        return;
    }
    vp->isr |= isr_bit;
    pci_device_set_intx(&vp->pci, true);
}

void virtio_pci_queue_done(VirtioPci *vp, unsigned q)
{
    VirtQueue *vq = &vp->vqs[q];

    if (virtqueue_should_notify(vq)) {
        raise_irq(vp, vq->msix_vector, 1);
    }
}

void virtio_pci_set_needs_reset(VirtioPci *vp, const char *why)
{
    tern_warn_guest("%s: %s; device needs reset", vp->cfg.name, why);
    vp->guest_errors++;
    if (vp->status & VIRTIO_STATUS_NEEDS_RESET) {
        return;
    }
    vp->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
        raise_irq(vp, vp->config_vector, 2);
    }
}

/* Driver wrote 0 to device_status: everything back to power-on (lock held). */
static void device_reset(VirtioPci *vp)
{
    vp->status = 0;
    vp->guest_features = 0;
    vp->dfselect = vp->gfselect = 0;
    vp->queue_sel = 0;
    vp->config_vector = VIRTIO_NO_VECTOR;
    vp->isr = 0;
    for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
        virtqueue_reset(&vp->vqs[q]);
    }
    pci_device_set_intx(&vp->pci, false);
    if (vp->cfg.ops->reset) {
        vp->cfg.ops->reset(vp->cfg.opaque);
    }
}

static void set_status(VirtioPci *vp, uint8_t val)
{
    if (val == 0) {
        device_reset(vp);
        return;
    }
    if ((val & VIRTIO_STATUS_FEATURES_OK) && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
        /* Refuse (leave FEATURES_OK clear) unless the subset is acceptable. */
        if ((vp->guest_features & ~vp->host_features) ||
            !virtio_pci_has_feature(vp, VIRTIO_F_VERSION_1)) {
            tern_warn_guest("%s: driver features 0x%" PRIx64 " refused",
                            vp->cfg.name, vp->guest_features);
            val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if ((val & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_FEATURES_OK)) {
        tern_warn_guest("%s: DRIVER_OK without FEATURES_OK", vp->cfg.name);
        val &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
    }
    /* NEEDS_RESET is the device's to set; only a reset clears it. */
    vp->status = (uint8_t)((val & ~VIRTIO_STATUS_NEEDS_RESET) |
                           (vp->status & VIRTIO_STATUS_NEEDS_RESET));
}

static void enable_queue(VirtioPci *vp, VirtQueue *vq)
{
    g_autoptr(GError) err = NULL;

    if (vq->enabled) {
        return;
    }
    vq->event_idx = virtio_pci_has_feature(vp, VIRTIO_F_RING_EVENT_IDX);
    if (!virtqueue_map(vq, vp->cfg.mem, &err)) {
        virtio_pci_set_needs_reset(vp, err->message);
        return;
    }
    vq->enabled = true;
}

static VirtQueue *selected_queue(VirtioPci *vp)
{
    return vp->queue_sel < vp->cfg.num_queues ? &vp->vqs[vp->queue_sel] : NULL;
}

static uint64_t common_read(VirtioPci *vp, uint64_t off)
{
    VirtQueue *vq = selected_queue(vp);

    switch (off) {
    case VIRTIO_COMMON_DFSELECT: return vp->dfselect;
    case VIRTIO_COMMON_DF:
        return vp->dfselect < 2 ? (uint32_t)(vp->host_features >> (32 * vp->dfselect)) : 0;
    case VIRTIO_COMMON_GFSELECT: return vp->gfselect;
    case VIRTIO_COMMON_GF:
        return vp->gfselect < 2 ? (uint32_t)(vp->guest_features >> (32 * vp->gfselect)) : 0;
    case VIRTIO_COMMON_MSIX: return vp->config_vector;
    case VIRTIO_COMMON_NUMQ: return vp->cfg.num_queues;
    case VIRTIO_COMMON_STATUS: return vp->status;
    case VIRTIO_COMMON_CFGGEN: return vp->config_generation;
    case VIRTIO_COMMON_Q_SELECT: return vp->queue_sel;
    }
    if (!vq) {
        return 0;                 /* queue_size 0: no such queue */
    }
    switch (off) {
    case VIRTIO_COMMON_Q_SIZE: return vq->size;
    case VIRTIO_COMMON_Q_MSIX: return vq->msix_vector;
    case VIRTIO_COMMON_Q_ENABLE: return vq->enabled;
    case VIRTIO_COMMON_Q_NOFF: return vp->queue_sel;
    case VIRTIO_COMMON_Q_DESCLO: return (uint32_t)vq->desc_gpa;
    case VIRTIO_COMMON_Q_DESCHI: return vq->desc_gpa >> 32;
    case VIRTIO_COMMON_Q_AVAILLO: return (uint32_t)vq->avail_gpa;
    case VIRTIO_COMMON_Q_AVAILHI: return vq->avail_gpa >> 32;
    case VIRTIO_COMMON_Q_USEDLO: return (uint32_t)vq->used_gpa;
    case VIRTIO_COMMON_Q_USEDHI: return vq->used_gpa >> 32;
    }
    return 0;
}

static void set_half(uint64_t *v, bool high, uint32_t val)
{
    *v = high ? (*v & 0xffffffffULL) | (uint64_t)val << 32
              : (*v & ~0xffffffffULL) | val;
}

static uint16_t checked_vector(VirtioPci *vp, uint64_t val)
{
    /* A vector beyond the table reads back as NO_VECTOR (driver's hint). */
    return val < vp->msix.nr ? (uint16_t)val : VIRTIO_NO_VECTOR;
}

static void queue_write(VirtioPci *vp, VirtQueue *vq, uint64_t off, uint64_t val)
{
    if (off == VIRTIO_COMMON_Q_ENABLE) {
        if (val == 1) {
            enable_queue(vp, vq);
        }
        return;
    }
    if (vq->enabled) {
        return;                   /* the spec forbids changes once enabled */
    }
    switch (off) {
    case VIRTIO_COMMON_Q_SIZE: vq->size = (uint16_t)val; break;
    case VIRTIO_COMMON_Q_MSIX: vq->msix_vector = checked_vector(vp, val); break;
    case VIRTIO_COMMON_Q_DESCLO: set_half(&vq->desc_gpa, false, (uint32_t)val); break;
    case VIRTIO_COMMON_Q_DESCHI: set_half(&vq->desc_gpa, true, (uint32_t)val); break;
    case VIRTIO_COMMON_Q_AVAILLO: set_half(&vq->avail_gpa, false, (uint32_t)val); break;
    case VIRTIO_COMMON_Q_AVAILHI: set_half(&vq->avail_gpa, true, (uint32_t)val); break;
    case VIRTIO_COMMON_Q_USEDLO: set_half(&vq->used_gpa, false, (uint32_t)val); break;
    case VIRTIO_COMMON_Q_USEDHI: set_half(&vq->used_gpa, true, (uint32_t)val); break;
    }
}

static void common_write(VirtioPci *vp, uint64_t off, uint64_t val)
{
    VirtQueue *vq = selected_queue(vp);

    switch (off) {
    case VIRTIO_COMMON_DFSELECT: vp->dfselect = (uint32_t)val; return;
    case VIRTIO_COMMON_GFSELECT: vp->gfselect = (uint32_t)val; return;
    case VIRTIO_COMMON_GF:
        if (vp->gfselect < 2 && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
            uint64_t mask = 0xffffffffULL << (32 * vp->gfselect);

            vp->guest_features = (vp->guest_features & ~mask) |
                                 ((uint64_t)(uint32_t)val << (32 * vp->gfselect));
        }
        return;
    case VIRTIO_COMMON_MSIX: vp->config_vector = checked_vector(vp, val); return;
    case VIRTIO_COMMON_STATUS: set_status(vp, (uint8_t)val); return;
    case VIRTIO_COMMON_Q_SELECT: vp->queue_sel = (uint16_t)val; return;
    }
    if (vq) {
        queue_write(vp, vq, off, val);
    }
}

static void kick(VirtioPci *vp, uint64_t q)
{
    uint64_t one = 1;

    if (q < vp->cfg.num_queues && write(vp->kick_fd[q], &one, sizeof(one)) < 0) {
        tern_warn("%s: queue kick: %s", vp->cfg.name, g_strerror(errno));
    }
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    VirtioPci *vp = opaque;
    uint64_t val = 0;

    g_mutex_lock(&vp->lock);
    if (off < VIRTIO_PCI_COMMON_LEN) {
        val = common_read(vp, off);
    } else if (off == VIRTIO_PCI_ISR_OFF) {
        val = vp->isr;                /* reading acknowledges */
        vp->isr = 0;
        pci_device_set_intx(&vp->pci, false);
    } else if (off >= VIRTIO_PCI_DEVICE_OFF &&
               off + size <= VIRTIO_PCI_DEVICE_OFF + vp->cfg.config_size) {
        g_autofree uint8_t *buf = g_malloc0(vp->cfg.config_size);

        vp->cfg.ops->get_config(vp->cfg.opaque, buf);
        memcpy(&val, buf + (off - VIRTIO_PCI_DEVICE_OFF), size);
    }
    g_mutex_unlock(&vp->lock);
    return size < 8 ? val & ((1ULL << (8 * size)) - 1) : val;
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    VirtioPci *vp = opaque;

    if (off >= VIRTIO_PCI_NOTIFY_OFF) {
        /* Only reached without a KVM ioeventfd on this address. */
        kick(vp, (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT);
        return;
    }
    g_mutex_lock(&vp->lock);
    if (off < VIRTIO_PCI_COMMON_LEN) {
        common_write(vp, off, val);
    }
    g_mutex_unlock(&vp->lock);
}

static const IoOps virtio_bar_ops = {
    .read = bar_read,
    .write = bar_write,
};

/* Moves the KVM ioeventfds to where the BAR now decodes (bus lock held). */
static void update_ioeventfds(VirtioPci *vp)
{
    PciBar *bar = &vp->pci.bars[VIRTIO_PCI_BAR];
    uint64_t want = vp->cfg.kvm && bar->mapped ? bar->addr : 0;

    if (want == vp->ioeventfd_base) {
        return;
    }
    for (unsigned q = 0; q < vp->cfg.num_queues; q++) {
        uint64_t off = VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;
        g_autoptr(GError) err = NULL;

        if (vp->ioeventfd_base) {
            kvm_ioeventfd(vp->cfg.kvm, vp->kick_fd[q], vp->ioeventfd_base + off, 2,
                          false, false, 0, false, NULL);
        }
        if (want && !kvm_ioeventfd(vp->cfg.kvm, vp->kick_fd[q], want + off, 2,
                                   false, false, 0, true, &err)) {
            /* The MMIO handler still kicks, just slower. */
            tern_warn("%s: ioeventfd: %s", vp->cfg.name, err->message);
        }
    }
    vp->ioeventfd_base = want;
}

static void config_written(PciDevice *d, unsigned off, uint32_t val, unsigned size)
{
    VirtioPci *vp = from_pci(d);

    msix_config_written(&vp->msix, off, val, size);
    update_ioeventfds(vp);
}

/* A bus reset has turned decoding off: the notify addresses are free for
 * whatever the guest maps there next (bus lock held). */
static void pci_reset(PciDevice *d)
{
    update_ioeventfds(from_pci(d));
}

static const PciDeviceOps virtio_pci_dev_ops = {
    .config_written = config_written,
    .reset = pci_reset,
};

/* Runs queue q's handler if the device may process it now (lock held). */
static void run_queue(VirtioPci *vp, unsigned q)
{
    if (q < vp->cfg.num_queues && vp->vqs[q].enabled && !vp->vm_stopped &&
        (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
        !(vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
        vp->cfg.ops->handle_queue(vp->cfg.opaque, q);
    }
}

void virtio_pci_run_queue(VirtioPci *vp, unsigned q)
{
    g_mutex_lock(&vp->lock);
    run_queue(vp, q);
    g_mutex_unlock(&vp->lock);
}

/* I/O thread: queue q was kicked. */
static void on_kick(void *opaque, int fd)
{
    VirtioPci *vp = opaque;
    uint64_t cnt;
    unsigned q;

    if (read(fd, &cnt, sizeof(cnt)) < 0) {
        return;                       /* EAGAIN: nothing new */
    }
    g_mutex_lock(&vp->lock);
    for (q = 0; q < vp->cfg.num_queues && vp->kick_fd[q] != fd; q++) {
    }
    run_queue(vp, q);
    g_mutex_unlock(&vp->lock);
}

/* Whether the queues wait for the VM to run: after a stop, and on a migration
 * target (whose images are handed over only after the stream). Before the
 * first start (prelaunch, or a unit test that never starts) no vCPU can kick,
 * so nothing needs holding then. */
static bool queues_held(void)
{
    RunState s = runstate_get();

    return !runstate_is_running(s) && s != RUN_STATE_PRELAUNCH;
}

/* Main loop. Taking the lock waits for a batch in progress on the I/O thread
 * to finish; after that nothing runs until the VM does again. */
static void on_runstate(void *opaque, bool running, RunState state)
{
    VirtioPci *vp = opaque;

    g_mutex_lock(&vp->lock);
    vp->vm_stopped = !running;
    g_mutex_unlock(&vp->lock);
    if (running) {
        for (unsigned q = 0; q < vp->cfg.num_queues; q++) {
            kick(vp, q);
        }
    }
}

static void add_cap(PciDevice *d, uint8_t type, uint32_t off, uint32_t len,
                    bool notify)
{
    uint8_t cap_len = notify ? 20 : 16;
    uint8_t c = pci_device_add_capability(d, PCI_CAP_ID_VNDR, cap_len);

    d->config[c + 2] = cap_len;
    d->config[c + 3] = type;
    d->config[c + 4] = VIRTIO_PCI_BAR;
    pci_set_long(d->config + c + 8, off);
    pci_set_long(d->config + c + 12, len);
    if (notify) {
        pci_set_long(d->config + c + 16, VIRTIO_PCI_NOTIFY_MULT);
    }
}

static bool setup_pci(VirtioPci *vp, GError **errp)
{
    PciDevice *d = &vp->pci;
    const VirtioPciConfig *c = &vp->cfg;

    pci_device_init(d, c->name, VIRTIO_PCI_VENDOR,
                    (uint16_t)(VIRTIO_PCI_DEVICE_BASE + c->device_id), c->class_code, true);
    d->config[PCI_REVISION_ID] = 1;              /* modern device */
    pci_set_word(d->config + PCI_SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_VENDOR);
    pci_set_word(d->config + PCI_SUBSYSTEM_ID, 0x40);
    d->ops = &virtio_pci_dev_ops;
    if (!pci_device_set_bar(d, VIRTIO_PCI_BAR, PCI_BAR_MEM64, VIRTIO_PCI_BAR_SIZE,
                            true, &virtio_bar_ops, vp, errp) ||
        !msix_init(&vp->msix, d, c->num_queues + 1, VIRTIO_PCI_MSIX_BAR, c->kvm, errp)) {
        return false;
    }
    add_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, 0x1000, false);
    add_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 0x1000, false);
    add_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, 0x1000, false);
    add_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF, 0x1000, true);
    return true;
}

void virtio_pci_system_reset(VirtioPci *vp)
{
    g_mutex_lock(&vp->lock);          /* waits for a batch in progress */
    device_reset(vp);
    g_mutex_unlock(&vp->lock);
    msix_reset(&vp->msix);
}

VirtioPci *virtio_pci_new(const VirtioPciConfig *cfg, GError **errp)
{
    VirtioPci *vp = g_new0(VirtioPci, 1);

    if (cfg->num_queues == 0 || cfg->num_queues > VIRTIO_PCI_MAX_QUEUES ||
        cfg->config_size > 0x1000) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: num-queues must be 1..%u", cfg->name, VIRTIO_PCI_MAX_QUEUES);
        g_free(vp);
        return NULL;
    }
    vp->cfg = *cfg;
    g_mutex_init(&vp->lock);
    for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
        vp->kick_fd[q] = -1;
    }
    if (!setup_pci(vp, errp)) {
        g_mutex_clear(&vp->lock);
        g_free(vp);
        return NULL;
    }
    vp->host_features = cfg->ops->features(cfg->opaque) |
                        1ULL << VIRTIO_F_VERSION_1 |
                        1ULL << VIRTIO_F_RING_INDIRECT_DESC |
                        1ULL << VIRTIO_F_RING_EVENT_IDX;
    device_reset(vp);
    vp->iothread = iothread_new(cfg->name);
    for (unsigned q = 0; q < cfg->num_queues; q++) {
        vp->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vp->kick_fd[q] < 0) {
            tern_die("%s: eventfd: %s", cfg->name, g_strerror(errno));
        }
        vp->kick_tag[q] = iothread_add_fd(vp->iothread, vp->kick_fd[q], on_kick, vp);
    }
    vp->vm_stopped = queues_held();
    runstate_add_listener(on_runstate, vp);
    return vp;
}

static const VMStateDescription vmstate_virtio_pci;

static void reset_hook(void *opaque)
{
    virtio_pci_system_reset(opaque);
}

bool virtio_pci_plug(VirtioPci *vp, PciBus *bus, int devfn, DeviceList *dl,
                     GError **errp)
{
    if (!pci_bus_add_device(bus, &vp->pci, devfn, errp)) {
        return false;
    }
    device_list_add_reset(dl, reset_hook, vp);
    device_list_add_vmstate(dl, vp->cfg.name, vp->pci.devfn,
                            &vmstate_virtio_pci, vp);
    return true;
}

void virtio_pci_unplug(VirtioPci *vp, DeviceList *dl)
{
    device_list_remove(dl, vp);
    pci_bus_remove_device(vp->pci.bus, &vp->pci);
}

void virtio_pci_free(VirtioPci *vp)
{
    if (!vp) {
        return;
    }
    runstate_remove_listener(on_runstate, vp);
    iothread_free(vp->iothread);
    if (vp->ioeventfd_base) {
        PciBar *bar = &vp->pci.bars[VIRTIO_PCI_BAR];

        bar->mapped = false;      /* so update_ioeventfds() takes them down */
        update_ioeventfds(vp);
    }
    for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
        if (vp->kick_fd[q] >= 0) {
            close(vp->kick_fd[q]);
        }
    }
    msix_cleanup(&vp->msix);
    g_mutex_clear(&vp->lock);
    g_free(vp);
}

/* ---- migration ---- */

static const VMStateDescription vmstate_virtqueue = {
    .name = "virtqueue",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(size, VirtQueue),
        VMSTATE_BOOL(enabled, VirtQueue),
        VMSTATE_UINT16(msix_vector, VirtQueue),
        VMSTATE_UINT64(desc_gpa, VirtQueue),
        VMSTATE_UINT64(avail_gpa, VirtQueue),
        VMSTATE_UINT64(used_gpa, VirtQueue),
        VMSTATE_UINT16(last_avail, VirtQueue),
        VMSTATE_UINT16(used_idx, VirtQueue),
        VMSTATE_UINT16(signalled_used, VirtQueue),
        VMSTATE_BOOL(signalled_valid, VirtQueue),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_virtio_pci_saved = {
    .name = "virtio-pci-transport",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_EQUAL(num_queues, VirtioPciSaved),
        VMSTATE_UINT64(guest_features, VirtioPciSaved),
        VMSTATE_UINT32(dfselect, VirtioPciSaved),
        VMSTATE_UINT32(gfselect, VirtioPciSaved),
        VMSTATE_UINT16(config_vector, VirtioPciSaved),
        VMSTATE_UINT16(queue_sel, VirtioPciSaved),
        VMSTATE_UINT8(status, VirtioPciSaved),
        VMSTATE_UINT8(config_generation, VirtioPciSaved),
        VMSTATE_UINT8(isr, VirtioPciSaved),
        VMSTATE_STRUCT_ARRAY(vqs, VirtioPciSaved, VIRTIO_PCI_MAX_QUEUES,
                             vmstate_virtqueue, VirtQueue),
        VMSTATE_END_OF_LIST()
    },
};

static bool virtio_pci_pre_save(void *opaque, GError **errp)
{
    VirtioPci *vp = opaque;
    VirtioPciSaved *s = &vp->saved;

    g_mutex_lock(&vp->lock);
    memset(s, 0, sizeof(*s));
    s->num_queues = vp->cfg.num_queues;
    s->guest_features = vp->guest_features;
    s->dfselect = vp->dfselect;
    s->gfselect = vp->gfselect;
    s->config_vector = vp->config_vector;
    s->queue_sel = vp->queue_sel;
    s->status = vp->status;
    s->config_generation = vp->config_generation;
    s->isr = vp->isr;
    for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
        s->vqs[q] = vp->vqs[q];
        if (q < vp->cfg.num_queues && vp->cfg.ops->in_flight) {
            s->vqs[q].last_avail -= (uint16_t)vp->cfg.ops->in_flight(vp->cfg.opaque, q);
        }
    }
    g_mutex_unlock(&vp->lock);
    return true;
}

static bool virtio_pci_pre_load(void *opaque, GError **errp)
{
    VirtioPci *vp = opaque;

    memset(&vp->saved, 0, sizeof(vp->saved));
    vp->saved.num_queues = vp->cfg.num_queues;
    return true;
}

static bool vector_ok(VirtioPci *vp, uint16_t v)
{
    return v == VIRTIO_NO_VECTOR || v < vp->msix.nr;
}

/* Rebuilds queue q from the stream's fields; false if the guest RAM here
 * does not hold its rings. */
static bool load_queue(VirtioPci *vp, const VirtQueue *in, VirtQueue *out,
                       GError **errp)
{
    virtqueue_reset(out);
    out->size = in->size;
    out->msix_vector = in->msix_vector;
    out->desc_gpa = in->desc_gpa;
    out->avail_gpa = in->avail_gpa;
    out->used_gpa = in->used_gpa;
    if (!vector_ok(vp, in->msix_vector)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "bad MSI-X vector %u",
                    in->msix_vector);
        return false;
    }
    if (!in->enabled) {
        return true;
    }
    out->event_idx = vp->saved.guest_features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
    if (!virtqueue_map(out, vp->cfg.mem, errp)) {
        return false;
    }
    out->enabled = true;
    out->last_avail = in->last_avail;
    out->used_idx = in->used_idx;
    out->signalled_used = in->signalled_used;
    out->signalled_valid = in->signalled_valid;
    return true;
}

static bool virtio_pci_post_load(void *opaque, int version_id, GError **errp)
{
    VirtioPci *vp = opaque;
    VirtioPciSaved *s = &vp->saved;
    VirtQueue vqs[VIRTIO_PCI_MAX_QUEUES];

    if (s->guest_features & ~vp->host_features) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: features 0x%" PRIx64 " not offered here", vp->cfg.name,
                    s->guest_features);
        return false;
    }
    if (!vector_ok(vp, s->config_vector) || (s->isr & ~3u)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: bad config vector %u or ISR 0x%x", vp->cfg.name,
                    s->config_vector, s->isr);
        return false;
    }
    for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
        if (q >= vp->cfg.num_queues) {
            virtqueue_reset(&vqs[q]);
        } else if (!load_queue(vp, &s->vqs[q], &vqs[q], errp)) {
            g_prefix_error(errp, "%s: queue %u: ", vp->cfg.name, q);
            return false;
        }
    }
    g_mutex_lock(&vp->lock);
    vp->guest_features = s->guest_features;
    vp->dfselect = s->dfselect;
    vp->gfselect = s->gfselect;
    vp->config_vector = s->config_vector;
    vp->queue_sel = s->queue_sel;
    vp->status = s->status;
    vp->config_generation = s->config_generation;
    vp->isr = s->isr;
    memcpy(vp->vqs, vqs, sizeof(vqs));
    /* On a migration target a request run now would fail on a node that is
     * still inactive: the queues wait for vm_start. */
    vp->vm_stopped = queues_held();
    g_mutex_unlock(&vp->lock);
    update_ioeventfds(vp);
    /* Requests the source had not finished (or rewound) wait in the rings;
     * the kick only counts once the VM runs (on_runstate kicks again then). */
    for (unsigned q = 0; q < vp->cfg.num_queues; q++) {
        if (vqs[q].enabled) {
            kick(vp, q);
        }
    }
    return true;
}

static const VMStateDescription vmstate_virtio_pci = {
    .name = "virtio-pci",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = virtio_pci_pre_save,
    .pre_load = virtio_pci_pre_load,
    .post_load = virtio_pci_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(pci, VirtioPci, 0, vmstate_pci_device, PciDevice),
        VMSTATE_STRUCT(msix, VirtioPci, 0, vmstate_msix, Msix),
        VMSTATE_STRUCT(saved, VirtioPci, 0, vmstate_virtio_pci_saved, VirtioPciSaved),
        VMSTATE_END_OF_LIST()
    },
};
