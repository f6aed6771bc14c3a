/*
 * The machine's side of virtio-blk: the `-device virtio-blk-pci` driver
 * (drive=, serial=, num-queues=, id=) and the `-drive ...,if=virtio`
 * shorthand, each building a VirtioBlk on the machine's PCI bus with the
 * machine's guest memory and KVM, its reset hook and state on the machine's
 * device list (idstr "virtio-blk-pci", instance the devfn), and removing it
 * again at teardown.
 */
#include <stdio.h>
#include <string.h>

#include "accel/kvm/kvm-dirty-log.h"
#include "hw/block/virtio-blk-pci.h"
#include "hw/block/virtio-blk.h"
#include "hw/pci/pci.h"
#include "tern/error.h"

typedef struct BlkPci {
    VirtioBlk *vb;
    DeviceList *devices;
    Drive *drive;
} BlkPci;

static void blk_pci_free(void *opaque)
{
    BlkPci *bp = opaque;

    virtio_pci_unplug(virtio_blk_transport(bp->vb), bp->devices);
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

static bool attach(Machine *m, Drive *drive, const char *serial, unsigned queues,
                   int devfn, GError **errp)
{
    VirtioBlkOptions o = { .serial = serial, .num_queues = queues,
                           .mem = &m->mem, .kvm = m->kvm };
    BlkPci *bp = g_new0(BlkPci, 1);

    bp->devices = m->devices;
    bp->vb = virtio_blk_new(drive, &o, errp);
    if (!bp->vb) {
        g_free(bp);
        return false;
    }
    if (!virtio_pci_plug(virtio_blk_transport(bp->vb), machine_pci_bus(m), devfn,
                         m->devices, errp)) {
        virtio_blk_free(bp->vb);
        g_free(bp);
        return false;
    }
    drive->vblk = bp->vb;
    bp->drive = drive;
    machine_add_cleanup(m, blk_pci_free, bp);
    return true;
}

/* -device virtio-blk-pci,drive=ID[,serial=S][,num-queues=N][,id=NAME]
 *         [,bus=pci.0][,addr=SLOT[.FN]][,bootindex=N (ignored: no firmware)]
 * drive= names a -drive id or a -blockdev node (docs/libvirt.md). */
static bool virtio_blk_pci_create(Machine *m, KeyVal *opts, GError **errp)
{
    const char *drive_id = keyval_get(opts, "drive");
    const char *serial = keyval_get(opts, "serial");
    const char *bus = keyval_get(opts, "bus");
    uint64_t queues = 1, bootindex = 0;
    g_autofree char *backend = NULL;
    Drive *drive;
    int devfn;

    /* bootindex is accepted for QEMU command lines; tern has no firmware. */
    if (!keyval_get_u64(opts, "num-queues", &queues, errp) ||
        !keyval_get_u64(opts, "bootindex", &bootindex, errp) ||
        !parse_addr(keyval_get(opts, "addr"), &devfn, errp)) {
        return false;
    }
    if (bus && strcmp(bus, VIRT_PCI_BUS)) {
        return tern_fail(errp, TERN_ERR_NOT_FOUND, "Bus '%s' not found", bus);
    }
    if (queues == 0 || queues > VIRTIO_PCI_MAX_QUEUES) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "num-queues must be 1..%u", VIRTIO_PCI_MAX_QUEUES);
        return false;
    }
    /* QMP's "qdev" for the drive: the device's virtio backend object. */
    backend = g_strdup_printf("%s/virtio-backend", machine_device_path(m));
    drive = machine_claim_drive(m, drive_id, backend, errp);
    return drive && attach(m, drive, serial, (unsigned)queues, devfn, errp);
}

static const QomProp virtio_blk_pci_props[] = {
    { "drive", "str", "Node name or ID of a block device to use as a backend" },
    { "serial", "str", NULL },
    { "num-queues", "uint16", NULL },
    { "addr", "int32", "Slot and optional function number, example: 06.0 or 06" },
    { "bootindex", "int32", NULL },
    { NULL, NULL, NULL },
};

MACHINE_DEVICE_TYPE(virtio_blk_pci, "virtio-blk-pci", "pci-device",
                    virtio_blk_pci_props, virtio_blk_pci_create);

bool virtio_blk_pci_create_shorthand(Machine *m, GError **errp)
{
    Drive *d;

    for (size_t i = 0; (d = drive_set_get(m->drives, i)); i++) {
        if (d->if_virtio && !blk_dev(d->blk)) {
            const char *path = machine_add_qom_device(m, NULL, "virtio-blk-pci");
            g_autofree char *backend = g_strdup_printf("%s/virtio-backend", path);

            if (!blk_attach_dev(d->blk, backend, errp) ||
                !attach(m, d, NULL, 1, -1, errp)) {
                g_prefix_error(errp, "-drive %s: ", drive_id(d));
                return false;
            }
        }
    }
    return true;
}

static void mark_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
    kvm_dirty_log_mark(opaque, gpa, len);
}

void virtio_blk_pci_set_dirty_log(Machine *m, KvmDirtyLog *dl)
{
    Drive *d;

    for (size_t i = 0; (d = drive_set_get(m->drives, i)); i++) {
        if (d->vblk) {
            virtio_pci_set_dirty_tracking(virtio_blk_transport(d->vblk),
                                          dl ? mark_dirty : NULL, dl);
        }
    }
}
