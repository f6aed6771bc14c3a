/*
 * The machine's side of virtio-blk: the `-device virtio-blk-pci` driver
 * (drive=, serial=, num-queues=, id=) and the `-drive ...,if=virtio`
 * shorthand, each building a VirtioBlk on the machine's PCI bus with the
 * machine's guest memory and KVM, and removing it again at teardown.
 */
#include <stdio.h>

#include "hw/block/virtio-blk-pci.h"
#include "hw/block/virtio-blk.h"
#include "hw/pci/pci.h"
#include "sysemu/kvm-dirty-log.h"
#include "tern/error.h"

typedef struct BlkPci {
    VirtioBlk *vb;
    PciBus *bus;
    Drive *drive;
} BlkPci;

static void blk_pci_free(void *opaque)
{
    BlkPci *bp = opaque;

    pci_bus_remove_device(bp->bus, &virtio_blk_transport(bp->vb)->pci);
    bp->drive->vblk = NULL;
    virtio_blk_free(bp->vb);
    g_free(bp);
}

/* QEMU's addr=SLOT[.FN] (hex); -1 when absent. */
static bool parse_addr(const char *s, int *devfn, GError **errp)
{
    unsigned slot, fn = 0;
    char dot, extra;
    int n;

    *devfn = -1;
    if (!s) {
        return true;
    }
    n = sscanf(s, "%x%c%x%c", &slot, &dot, &fn, &extra);
    if (!(n == 1 || (n == 3 && dot == '.')) || slot >= PCI_SLOT_MAX || fn > 7) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "addr '%s': expected SLOT[.FUNCTION] in hex (slot < 0x20)", s);
        return false;
    }
    *devfn = PCI_DEVFN(slot, fn);
    return true;
}

/* Machine reset (vCPUs paused). */
static void blk_pci_reset(void *opaque)
{
    BlkPci *bp = opaque;

    virtio_pci_system_reset(virtio_blk_transport(bp->vb));
}

static bool attach(Machine *m, Drive *drive, const char *serial, unsigned queues,
                   int devfn, GError **errp)
{
    VirtioBlkOptions o = { .serial = serial, .num_queues = queues,
                           .mem = &m->mem, .kvm = m->kvm };
    BlkPci *bp = g_new0(BlkPci, 1);

    bp->bus = machine_pci_bus(m);
    bp->vb = virtio_blk_new(drive, &o, errp);
    if (!bp->vb) {
        g_free(bp);
        return false;
    }
    if (!pci_bus_add_device(bp->bus, &virtio_blk_transport(bp->vb)->pci, devfn, errp)) {
        virtio_blk_free(bp->vb);
        g_free(bp);
        return false;
    }
    drive->vblk = bp->vb;
    bp->drive = drive;
    machine_add_cleanup(m, blk_pci_free, bp);
    machine_add_reset(m, blk_pci_reset, bp);
    return true;
}

bool virtio_blk_pci_create(Machine *m, KeyVal *opts, GError **errp)
{
    const char *drive_id = keyval_get(opts, "drive");
    const char *serial = keyval_get(opts, "serial");
    const char *id = keyval_get(opts, "id");
    uint64_t queues = 1, bootindex = 0;
    Drive *drive;
    int devfn;

    /* bootindex is accepted for QEMU command lines; tern has no firmware. */
    if (!keyval_get_u64(opts, "num-queues", &queues, errp) ||
        !keyval_get_u64(opts, "bootindex", &bootindex, errp) ||
        !parse_addr(keyval_get(opts, "addr"), &devfn, errp)) {
        return false;
    }
    if (queues == 0 || queues > VIRTIO_PCI_MAX_QUEUES) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "num-queues must be 1..%u", VIRTIO_PCI_MAX_QUEUES);
        return false;
    }
    drive = drive_set_claim(m->drives, drive_id, id ? id : "virtio-blk-pci", errp);
    return drive && attach(m, drive, serial, (unsigned)queues, devfn, errp);
}

bool virtio_blk_pci_create_shorthand(Machine *m, GError **errp)
{
    for (guint i = 0; m->drives && i < m->drives->drives->len; i++) {
        Drive *d = g_ptr_array_index(m->drives->drives, i);

        if (d->if_virtio && !d->attached) {
            d->attached = g_strdup("virtio-blk-pci");
            if (!attach(m, d, NULL, 1, -1, errp)) {
                g_prefix_error(errp, "-drive %s: ", d->id);
                return false;
            }
        }
    }
    return true;
}

void virtio_blk_pci_vmstate_register(Machine *m, SaveVM *sv)
{
    for (guint i = 0; m->drives && i < m->drives->drives->len; i++) {
        Drive *d = g_ptr_array_index(m->drives->drives, i);

        if (d->vblk) {
            VirtioPci *vp = virtio_blk_transport(d->vblk);

            savevm_register_vmstate(sv, "virtio-blk-pci", vp->pci.devfn,
                                    &vmstate_virtio_pci, vp);
        }
    }
}

void virtio_blk_pci_vmstate_unregister(Machine *m, SaveVM *sv)
{
    for (guint i = 0; m->drives && i < m->drives->drives->len; i++) {
        Drive *d = g_ptr_array_index(m->drives->drives, i);

        if (d->vblk) {
            savevm_unregister(sv, virtio_blk_transport(d->vblk));
        }
    }
}

static void mark_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
    kvm_dirty_log_mark(opaque, gpa, len);
}

void virtio_blk_pci_set_dirty_log(Machine *m, KvmDirtyLog *dl)
{
    for (guint i = 0; m->drives && i < m->drives->drives->len; i++) {
        Drive *d = g_ptr_array_index(m->drives->drives, i);

        if (d->vblk) {
            virtio_pci_set_dirty_tracking(virtio_blk_transport(d->vblk),
                                          dl ? mark_dirty : NULL, dl);
        }
    }
}
