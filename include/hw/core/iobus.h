/*
 * Port-I/O and MMIO dispatch: a device registers a range with an ops table and an
 * opaque pointer; vCPU threads dispatch KVM_EXIT_IO / KVM_EXIT_MMIO through the
 * bus. Offsets passed to the callbacks are relative to the registered base.
 *
 * Threading: dispatch runs on any vCPU thread (and on the iothread for PCI config
 * via ECAM); a device protects its own state with its own lock. Registration and
 * removal may happen at run time (PCI BAR moves) and are safe against dispatch.
 */
#ifndef HW_CORE_IOBUS_H
#define HW_CORE_IOBUS_H

#include "tern/common.h"

typedef struct IoOps {
    /* size is 1, 2, 4 or 8; a read returns the value zero-extended. */
    uint64_t (*read)(void *opaque, uint64_t off, unsigned size);
    void (*write)(void *opaque, uint64_t off, uint64_t val, unsigned size);
} IoOps;

typedef struct IoBus IoBus;

IoBus *iobus_new(const char *name);
void iobus_free(IoBus *bus);
/* Fails if [base, base+len) overlaps a registered range. */
bool iobus_register(IoBus *bus, uint64_t base, uint64_t len, const IoOps *ops,
                    void *opaque, GError **errp);
/* Removes the range registered at exactly 'base'; returns false if none. */
bool iobus_unregister(IoBus *bus, uint64_t base);
/*
 * Returns false if no device claims 'addr' (reads then see all ones, writes
 * are dropped, as on real hardware).
 */
bool iobus_read(IoBus *bus, uint64_t addr, uint64_t *val, unsigned size);
bool iobus_write(IoBus *bus, uint64_t addr, uint64_t val, unsigned size);

#endif
