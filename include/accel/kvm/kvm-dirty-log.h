/*
 * Dirty-page tracking of guest RAM for live migration: KVM's per-slot dirty
 * log (KVM_MEM_LOG_DIRTY_PAGES on every RAM slot, KVM_GET_DIRTY_LOG, with
 * KVM_CLEAR_DIRTY_LOG when KVM offers manual protection) turned into bits of
 * RAM migration's bitmap, indexed by memfd page (ram.h's RamDirtySyncFn).
 * KVM only sees guest writes; the VMM's own writes into guest RAM (virtio
 * rings and data written by the iothread) are reported with
 * kvm_dirty_log_mark, which is safe from any thread.
 */
#ifndef ACCEL_KVM_KVM_DIRTY_LOG_H
#define ACCEL_KVM_KVM_DIRTY_LOG_H

#include "hw/core/guest-memory.h"
#include "accel/kvm/kvm.h"
#include "tern/hbitmap.h"

typedef struct KvmDirtyLog KvmDirtyLog;

/* Turns logging on for slots 0..mem->nr_regions-1 (slot i = region i). */
KvmDirtyLog *kvm_dirty_log_start(KvmState *kvm, const GuestMemory *mem,
                                 GError **errp);
/* Turns logging off again and frees; NULL is ok. */
void kvm_dirty_log_stop(KvmDirtyLog *dl);
/* RamDirtySyncFn: OR the pages dirtied since the last call into 'dirty'. */
bool kvm_dirty_log_sync(void *opaque, HBitmap *dirty, GError **errp);
/* The VMM wrote [gpa, gpa + len) of guest RAM; any thread. */
void kvm_dirty_log_mark(KvmDirtyLog *dl, uint64_t gpa, uint64_t len);
/* Pages dirtied per second, measured at the last sync; any thread. */
uint64_t kvm_dirty_log_rate(KvmDirtyLog *dl);
/* Whether KVM_CLEAR_DIRTY_LOG is in use. */
bool kvm_dirty_log_manual(const KvmDirtyLog *dl);

#endif
