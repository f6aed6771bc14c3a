/*
 * The virtio 1.x PCI transport (modern only): a PCI function with vendor
 * capabilities (cfg_type common, notify, ISR, device) pointing into one
 * 64-bit memory BAR, MSI-X in a second BAR, feature negotiation (VERSION_1
 * required), the device status state machine with FEATURES_OK and
 * NEEDS_RESET, device reset, and split virtqueues whose notifications arrive
 * as KVM ioeventfds on an I/O thread. A device (virtio-blk) supplies a
 * VirtioDeviceOps table and handles its queues there.
 *
 * BAR layout (BAR 4, 16 KiB, like QEMU's): common 0x0000, ISR 0x1000, device
 * config 0x2000, notify 0x3000 (queue q at 0x3000 + 4 q). MSI-X: BAR 1.
 *
 * Threading: the device lock (vp->lock) guards the transport and queue
 * state; BAR accesses from vCPUs and queue handlers on the I/O thread take
 * it. Device ops run with it held. While the VM is stopped (vm_stop) no
 * queue is processed, so device state and guest RAM hold still for
 * migration and snapshots; when it runs again every queue is kicked (which
 * also retries requests parked by werror=stop).
 */
#ifndef HW_VIRTIO_VIRTIO_PCI_H
#define HW_VIRTIO_VIRTIO_PCI_H

#include "accel/kvm/kvm.h"
#include "hw/core/device-list.h"
#include "hw/core/guest-memory.h"
#include "hw/pci/msix.h"
#include "hw/virtio/iothread.h"
#include "hw/virtio/virtqueue.h"

#define VIRTIO_PCI_VENDOR         0x1af4
#define VIRTIO_PCI_DEVICE_BASE    0x1040     /* + virtio device id */
#define VIRTIO_PCI_MAX_QUEUES     16
#define VIRTIO_NO_VECTOR          0xffff

/* Feature bits (virtio 1.x, "Reserved Feature Bits"). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* Vendor capability cfg_type values. */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* BAR layout. */
#define VIRTIO_PCI_BAR            4
#define VIRTIO_PCI_MSIX_BAR       1
#define VIRTIO_PCI_BAR_SIZE       0x4000
#define VIRTIO_PCI_COMMON_OFF     0x0000
#define VIRTIO_PCI_COMMON_LEN     0x38
#define VIRTIO_PCI_ISR_OFF        0x1000
#define VIRTIO_PCI_DEVICE_OFF     0x2000
#define VIRTIO_PCI_NOTIFY_OFF     0x3000
#define VIRTIO_PCI_NOTIFY_MULT    4

/* Common configuration offsets. */
#define VIRTIO_COMMON_DFSELECT    0x00
#define VIRTIO_COMMON_DF          0x04
#define VIRTIO_COMMON_GFSELECT    0x08
#define VIRTIO_COMMON_GF          0x0c
#define VIRTIO_COMMON_MSIX        0x10
#define VIRTIO_COMMON_NUMQ        0x12
#define VIRTIO_COMMON_STATUS      0x14
#define VIRTIO_COMMON_CFGGEN      0x15
#define VIRTIO_COMMON_Q_SELECT    0x16
#define VIRTIO_COMMON_Q_SIZE      0x18
#define VIRTIO_COMMON_Q_MSIX      0x1a
#define VIRTIO_COMMON_Q_ENABLE    0x1c
#define VIRTIO_COMMON_Q_NOFF      0x1e
#define VIRTIO_COMMON_Q_DESCLO    0x20
#define VIRTIO_COMMON_Q_DESCHI    0x24
#define VIRTIO_COMMON_Q_AVAILLO   0x28
#define VIRTIO_COMMON_Q_AVAILHI   0x2c
#define VIRTIO_COMMON_Q_USEDLO    0x30
#define VIRTIO_COMMON_Q_USEDHI    0x34

typedef struct VirtioPci VirtioPci;

/* What migration carries besides PCI config and MSI-X: a snapshot taken under
 * the lock before saving, checked and applied after loading. */
typedef struct VirtioPciSaved {
    uint32_t num_queues;
    uint64_t guest_features;
    uint32_t dfselect, gfselect;
    uint16_t config_vector, queue_sel;
    uint8_t status, config_generation, isr;
    VirtQueue vqs[VIRTIO_PCI_MAX_QUEUES];    /* only the programmed fields */
} VirtioPciSaved;

typedef struct VirtioDeviceOps {
    /* Device-specific feature bits (transport bits are added). */
    uint64_t (*features)(void *opaque);
    /* Fills the device configuration (config_size bytes) for a guest read. */
    void (*get_config)(void *opaque, uint8_t *buf);
    /* Queue q was kicked; runs on the I/O thread with the lock held. */
    void (*handle_queue)(void *opaque, unsigned q);
    /* The driver reset the device (lock held). */
    void (*reset)(void *opaque);
    /* Chains popped from queue q and not yet pushed (e.g. parked by
     * werror=stop); migration rewinds them so the destination pops them
     * again. May be NULL (none). Lock held. */
    unsigned (*in_flight)(void *opaque, unsigned q);
} VirtioDeviceOps;

typedef struct VirtioPciConfig {
    const char *name;
    uint16_t device_id;           /* virtio device id (2: block) */
    uint32_t class_code;
    unsigned num_queues;          /* 1..VIRTIO_PCI_MAX_QUEUES */
    size_t config_size;           /* bytes of device config, <= 0x1000 */
    const VirtioDeviceOps *ops;
    void *opaque;
    const GuestMemory *mem;
    KvmState *kvm;                /* NULL: no ioeventfd/irqfd (unit tests) */
} VirtioPciConfig;

struct VirtioPci {
    PciDevice pci;
    Msix msix;
    VirtioPciConfig cfg;
    GMutex lock;
    uint64_t host_features, guest_features;
    uint32_t dfselect, gfselect;
    uint16_t config_vector, queue_sel;
    uint8_t status, config_generation, isr;
    VirtQueue vqs[VIRTIO_PCI_MAX_QUEUES];
    int kick_fd[VIRTIO_PCI_MAX_QUEUES];
    guint kick_tag[VIRTIO_PCI_MAX_QUEUES];
    uint64_t ioeventfd_base;      /* BAR address the ioeventfds sit on, 0: none */
    IoThread *iothread;
    uint64_t guest_errors;        /* NEEDS_RESET transitions, for tests */
    bool vm_stopped;              /* VM paused: queues are not processed */
    /* Reports the device's own writes to guest RAM (migration's dirty log). */
    void (*mark_dirty)(void *opaque, uint64_t gpa, uint64_t len);
    void *mark_dirty_opaque;
    VirtioPciSaved saved;         /* migration snapshot */
};

/* Builds the function and starts its I/O thread; plug it after. */
VirtioPci *virtio_pci_new(const VirtioPciConfig *cfg, GError **errp);
/* Puts the function on bus (devfn < 0: the first free slot) and adds its
 * reset hook (virtio_pci_system_reset) and its state to dl: idstr
 * cfg->name, instance the devfn, tern's layout below. */
bool virtio_pci_plug(VirtioPci *vp, PciBus *bus, int devfn, DeviceList *dl,
                     GError **errp);
/* Takes it off its bus and out of dl; before virtio_pci_free. */
void virtio_pci_unplug(VirtioPci *vp, DeviceList *dl);
/* System reset (the machine's reset hook, vCPUs paused): the device as after
 * power-on: driver status and queues reset, MSI-X disabled and masked. */
void virtio_pci_system_reset(VirtioPci *vp);
/* Stops the I/O thread and frees; remove it from the bus first. NULL is fine. */
void virtio_pci_free(VirtioPci *vp);
/* Processes queue q on the calling thread, as a kick would on the I/O thread
 * (nothing if the queue or the device is not ready): for harnesses that must
 * not depend on thread timing. Takes the lock. */
void virtio_pci_run_queue(VirtioPci *vp, unsigned q);

/*
 * Migration (tern layout, version 1): PCIDevice (config space with BARs and
 * the MSI-X control word), the MSI-X table and PBA, then the transport and
 * every queue's setup and indices. Save with the VM stopped; loading checks
 * the features against the device's, vectors against the table, rings
 * against guest RAM, then maps BARs, ioeventfds and queues and kicks them.
 */

/*
 * Live migration: from now on report every write the device makes to guest
 * RAM (used rings, data of device-writable buffers) to fn(opaque, gpa, len);
 * fn NULL stops. KVM's dirty log only sees the guest's own writes.
 */
void virtio_pci_set_dirty_tracking(VirtioPci *vp,
                                   void (*fn)(void *opaque, uint64_t gpa, uint64_t len),
                                   void *opaque);

/* With the lock held (device ops): */
bool virtio_pci_has_feature(VirtioPci *vp, unsigned bit);
/* virtqueue_push() on queue q plus dirty tracking of what the device wrote:
 * the chain's writable buffers and the used ring. */
void virtio_pci_push(VirtioPci *vp, unsigned q, const VirtQueueElement *elem,
                     uint32_t len);
/* Interrupts the driver for queue q if the ring's suppression allows it. */
void virtio_pci_queue_done(VirtioPci *vp, unsigned q);
/* A guest error: warn, set NEEDS_RESET, stop the queues, raise a config
 * change interrupt. The device keeps answering until the driver resets it. */
void virtio_pci_set_needs_reset(VirtioPci *vp, const char *why);

#endif
