/*
 * Dirty-page tracking for live migration (accel/kvm/kvm-dirty-log.h): KVM's
 * dirty log per RAM slot, fetched (and, with manual protection, cleared) on
 * every sync and translated from slot pages to memfd pages, plus the pages
 * the VMM itself wrote, which KVM cannot see.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm/kvm-dirty-log.h"
#include "tern/error.h"

#define PAGE_SHIFT 12

struct KvmDirtyLog {
    KvmState *kvm;
    const GuestMemory *mem;
    unsigned nr_slots;
    bool manual;                /* KVM_CLEAR_DIRTY_LOG after each fetch */
    uint64_t *words;            /* scratch: the largest slot's bitmap */
    GMutex lock;                /* vmm_dirty */
    HBitmap *vmm_dirty;         /* memfd pages the VMM wrote */
    gint64 last_sync_us;        /* for the dirty rate */
    uint64_t rate;              /* pages per second at the last sync */
};

/* Manual protection makes the fetch cheap and lets us clear exactly what
 * we fetched; older KVMs (and some nested ones) lack it, which is fine. */
static bool enable_manual_protect(KvmState *kvm)
{
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
        .args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
    };
    int have = ioctl(kvm->fd, KVM_CHECK_EXTENSION,
                     KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

    if (have <= 0 || !(have & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) {
        return false;
    }
    return ioctl(kvm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

KvmDirtyLog *kvm_dirty_log_start(KvmState *kvm, const GuestMemory *mem,
                                 GError **errp)
{
    KvmDirtyLog *dl = g_new0(KvmDirtyLog, 1);
    uint64_t max_pages = 0;

    dl->kvm = kvm;
    dl->mem = mem;
    g_mutex_init(&dl->lock);
    dl->vmm_dirty = hbitmap_try_new(mem->ram_size >> PAGE_SHIFT);
    if (!dl->vmm_dirty) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                    "no memory for the VMM's dirty bitmap");
        kvm_dirty_log_stop(dl);
        return NULL;
    }
    dl->manual = enable_manual_protect(kvm);
    dl->last_sync_us = g_get_monotonic_time();
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        max_pages = MAX(max_pages, mem->regions[i].size >> PAGE_SHIFT);
        if (!kvm_slot_set_dirty_log(kvm, i, true, errp)) {
            kvm_dirty_log_stop(dl);
            return NULL;
        }
        dl->nr_slots = i + 1;
    }
    dl->words = g_new0(uint64_t, DIV_ROUND_UP(max_pages, 64));
    return dl;
}

void kvm_dirty_log_stop(KvmDirtyLog *dl)
{
    g_autoptr(GError) err = NULL;

    if (!dl) {
        return;
    }
    for (unsigned i = 0; i < dl->nr_slots; i++) {
        if (!kvm_slot_set_dirty_log(dl->kvm, i, false, &err)) {
            /* The guest keeps running with logging on: slower, not wrong. */
            tern_warn("dirty logging stays on: %s", err->message);
            g_clear_error(&err);
        }
    }
    hbitmap_free(dl->vmm_dirty);
    g_mutex_clear(&dl->lock);
    g_free(dl->words);
    g_free(dl);
}

uint64_t kvm_dirty_log_rate(KvmDirtyLog *dl)
{
    return __atomic_load_n(&dl->rate, __ATOMIC_RELAXED);
}

bool kvm_dirty_log_manual(const KvmDirtyLog *dl)
{
    return dl->manual;
}

static bool clear_slot(KvmDirtyLog *dl, unsigned slot, uint64_t pages,
                       GError **errp)
{
    struct kvm_clear_dirty_log c = {
        .slot = slot, .first_page = 0, .num_pages = pages,
        .dirty_bitmap = dl->words,
    };

    if (ioctl(dl->kvm->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0) {
        tern_set_error_errno(errp, errno, "KVM_CLEAR_DIRTY_LOG slot %u", slot);
        return false;
    }
    return true;
}

static bool sync_slot(KvmDirtyLog *dl, unsigned slot, HBitmap *dirty,
                      uint64_t *found, GError **errp)
{
    const GuestRegion *r = &dl->mem->regions[slot];
    uint64_t pages = r->size >> PAGE_SHIFT;
    uint64_t first = r->fd_offset >> PAGE_SHIFT;
    uint64_t nwords = DIV_ROUND_UP(pages, 64);

    memset(dl->words, 0, nwords * sizeof(uint64_t));
    if (!kvm_get_dirty_log(dl->kvm, slot, dl->words, errp)) {
        return false;
    }
    for (uint64_t w = 0; w < nwords; w++) {
        uint64_t bits = dl->words[w];

        while (bits) {
            unsigned b = __builtin_ctzll(bits);

            bits &= bits - 1;
            hbitmap_set(dirty, first + w * 64 + b, 1);
            (*found)++;
        }
    }
    return !dl->manual || clear_slot(dl, slot, pages, errp);
}

bool kvm_dirty_log_sync(void *opaque, HBitmap *dirty, GError **errp)
{
    KvmDirtyLog *dl = opaque;
    gint64 now = g_get_monotonic_time();
    uint64_t found = 0;

    for (unsigned i = 0; i < dl->nr_slots; i++) {
        if (!sync_slot(dl, i, dirty, &found, errp)) {
            return false;
        }
    }
    if (now > dl->last_sync_us) {
        __atomic_store_n(&dl->rate, found * G_USEC_PER_SEC /
                         (uint64_t)(now - dl->last_sync_us), __ATOMIC_RELAXED);
    }
    dl->last_sync_us = now;
    g_mutex_lock(&dl->lock);
    if (hbitmap_count(dl->vmm_dirty)) {
        hbitmap_merge(dirty, dl->vmm_dirty);
        hbitmap_reset_all(dl->vmm_dirty);
    }
    g_mutex_unlock(&dl->lock);
    return true;
}

void kvm_dirty_log_mark(KvmDirtyLog *dl, uint64_t gpa, uint64_t len)
{
    if (!len) {
        return;
    }
    for (unsigned i = 0; i < dl->mem->nr_regions; i++) {
        const GuestRegion *r = &dl->mem->regions[i];
        uint64_t start, end;

        if (gpa + len <= r->gpa || gpa >= r->gpa + r->size) {
            continue;
        }
        start = MAX(gpa, r->gpa) - r->gpa + r->fd_offset;
        end = MIN(gpa + len, r->gpa + r->size) - r->gpa + r->fd_offset;
        g_mutex_lock(&dl->lock);
        hbitmap_set(dl->vmm_dirty, start >> PAGE_SHIFT,
                    DIV_ROUND_UP(end, 4096) - (start >> PAGE_SHIFT));
        g_mutex_unlock(&dl->lock);
    }
}
