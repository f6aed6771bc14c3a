/*
 * The -drive set: every -drive option opened as a block backend named by its
 * id (block/block-backend.h), with the per-drive policies devices need
 * (read-only, cache mode, werror/rerror). Devices find drives by id and
 * claim them; QMP and migration see the set's backend list.
 *
 * Accepted, each honoured: file=PATH (required), format=raw|qcow2 (probed
 * if absent; other formats are refused by name), if=none|virtio, id=ID
 * (required with if=none; if=virtio defaults to "virtioN"),
 * cache=writeback|none|writethrough|directsync|unsafe (none and directsync:
 * O_DIRECT), readonly=on|off, werror=report|stop|enospc,
 * rerror=report|stop, discard=ignore|off|unmap|on (unmap: guest discards
 * and unmapping write-zeroes reach the image), aio=threads (what tern
 * does: synchronous I/O on the device's iothread; native and io_uring are
 * refused). Anything else is refused by name.
 */
#ifndef HW_BLOCK_DRIVE_H
#define HW_BLOCK_DRIVE_H

#include "block/block-backend.h"
#include "softmmu/vm-config.h"

typedef enum DriveErrorAction {
    DRIVE_ERROR_REPORT,        /* fail the request towards the guest */
    DRIVE_ERROR_STOP,          /* pause the VM (io-error), retry on resume */
    DRIVE_ERROR_ENOSPC,        /* werror=enospc: STOP on ENOSPC, else REPORT */
} DriveErrorAction;

typedef struct DriveSet DriveSet;
typedef struct Monitor Monitor;

typedef struct Drive {
    DriveSet *set;             /* owner, or NULL (unit tests) */
    BlockBackend *blk;         /* name (the id), root node, attached device */
    bool read_only;
    bool if_virtio;            /* -drive if=virtio: the machine adds a device */
    bool writethrough;         /* flush after every write */
    bool ignore_flush;         /* cache=unsafe */
    uint64_t bitmap_chunk;     /* bitmap-chunk=: fixed write-intent chunk */
    DriveErrorAction werror, rerror;
    struct VirtioBlk *vblk;    /* the device using it, if a virtio-blk-pci */
} Drive;

struct DriveSet {
    BlockBackendList *backends;    /* every drive's backend, opaque the Drive */
    GMutex event_lock;         /* guards mon against the I/O threads */
    Monitor *mon;              /* where BLOCK_IO_ERROR goes, or NULL */
};

/* QEMU's rule for a node-name (also -blockdev's): "Invalid node-name" if not. */
bool drive_node_name_ok(const char *name, GError **errp);
/* Opens every -drive of cfg; NULL with errp naming the bad option. */
DriveSet *drive_set_new(VmConfig *cfg, GError **errp);
/* Flushes and closes every node; NULL is fine. */
void drive_set_free(DriveSet *set);
/* Parses and opens one -drive argument (index: for the "virtioN" default). */
Drive *drive_open(const char *spec, unsigned index, GError **errp);
void drive_free(Drive *d);
static inline const char *drive_id(const Drive *d)
{
    return blk_name(d->blk);
}
static inline BlockNode *drive_node(const Drive *d)
{
    return blk_root(d->blk);
}
/* The i-th drive, in -drive order; NULL past the last (or no set). */
Drive *drive_set_get(DriveSet *set, size_t i);
Drive *drive_set_find(DriveSet *set, const char *id);
/* Marks the drive as used by 'device'; fails if it is missing or taken. */
Drive *drive_set_claim(DriveSet *set, const char *id, const char *device,
                       GError **errp);
/* Sends BLOCK_IO_ERROR events to mon from now on; NULL stops (call that
 * before the monitor goes away). */
void drive_set_attach_monitor(DriveSet *set, Monitor *mon);
/* What d's werror (writes) or rerror (reads) policy does with the host
 * error 'err': DRIVE_ERROR_REPORT or DRIVE_ERROR_STOP, decided on the errno
 * it carries (tern_error_errno), never on its message. */
DriveErrorAction drive_error_action(const Drive *d, bool is_read,
                                    const GError *err);
/* A host I/O error on d, handled with 'action': emits QEMU's BLOCK_IO_ERROR
 * (device, node-name, operation, action, nospace, reason). Any thread. */
void drive_io_error_event(Drive *d, bool is_read, DriveErrorAction action,
                          int err, const char *reason);

#endif
