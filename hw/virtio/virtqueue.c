/*
 * The device side of split virtqueues: ring mapping with placement checks,
 * popping descriptor chains (direct and indirect) into iovecs with every
 * guest-supplied index, length and address validated, returning them through
 * the used ring, and the interrupt-suppression rules (flags or event idx).
 * The guest may change ring memory at any time, so each descriptor is copied
 * once and only the copy is used.
 */
#include <string.h>

#include "hw/virtio/virtqueue.h"
#include "tern/error.h"

#define USED_ELEM_SIZE 8

bool virtqueue_map(VirtQueue *vq, const GuestMemory *mem, GError **errp)
{
    uint64_t n = vq->size;

    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1))) {
        return tern_invalid(errp, "queue size %" PRIu64 " is not a power of "
                            "two in 1..%u", n, VIRTQ_MAX_SIZE);
    }
    if (!IS_ALIGNED(vq->desc_gpa, 16) || !IS_ALIGNED(vq->avail_gpa, 2) ||
        !IS_ALIGNED(vq->used_gpa, 4)) {
        return tern_invalid(errp, "misaligned ring (desc 0x%" PRIx64 " avail "
                            "0x%" PRIx64 " used 0x%" PRIx64 ")", vq->desc_gpa,
                            vq->avail_gpa, vq->used_gpa);
    }
    vq->desc = guest_mem_ptr(mem, vq->desc_gpa, 16 * n);
    vq->avail = guest_mem_ptr(mem, vq->avail_gpa, 6 + 2 * n);
    vq->used = guest_mem_ptr(mem, vq->used_gpa, 6 + USED_ELEM_SIZE * n);
    if (!vq->desc || !vq->avail || !vq->used) {
        vq->desc = NULL;
        vq->avail = NULL;
        vq->used = NULL;
        return tern_invalid(errp, "ring outside guest RAM (desc 0x%" PRIx64
                            " avail 0x%" PRIx64 " used 0x%" PRIx64 ")",
                            vq->desc_gpa, vq->avail_gpa, vq->used_gpa);
    }
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_valid = false;
    vq->notify_enabled = true;
    return true;
}

void virtqueue_reset(VirtQueue *vq)
{
    memset(vq, 0, sizeof(*vq));
    vq->size = VIRTQ_MAX_SIZE;
    vq->msix_vector = 0xffff;
}

static uint16_t load16(const uint16_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void add_iov(VirtQueueElement *elem, uint64_t gpa, void *base, size_t len)
{
    unsigned n = elem->out_num + elem->in_num;

    if (n == elem->iov_cap) {
        elem->iov_cap = elem->iov_cap ? elem->iov_cap * 2 : 8;
        elem->iov = g_renew(struct iovec, elem->iov, elem->iov_cap);
        elem->gpa = g_renew(uint64_t, elem->gpa, elem->iov_cap);
    }
    elem->iov[n].iov_base = base;
    elem->iov[n].iov_len = len;
    elem->gpa[n] = gpa;
}

/* Appends one data descriptor to elem after checking it. */
static bool take_buffer(const VirtqDesc *d, const GuestMemory *mem,
                        unsigned max_segs, VirtQueueElement *elem, GError **errp)
{
    bool writable = d->flags & VIRTQ_DESC_F_WRITE;
    void *p = d->len ? guest_mem_ptr(mem, d->addr, d->len) : NULL;

    if (d->len && !p) {
        return tern_invalid(errp, "buffer 0x%" PRIx64 "+0x%x outside guest RAM",
                            d->addr, d->len);
    }
    if (!writable && elem->in_num) {
        return tern_invalid(errp, "readable buffer after a writable one");
    }
    if (elem->out_num + elem->in_num >= max_segs) {
        return tern_invalid(errp, "chain longer than %u buffers", max_segs);
    }
    add_iov(elem, d->addr, p, d->len);
    if (writable) {
        elem->in_num++;
        elem->in_len += d->len;
    } else {
        elem->out_num++;
        elem->out_len += d->len;
    }
    return true;
}

/* Walks the chain at 'head'; bounded by the table size so loops end. */
static bool walk_chain(VirtQueue *vq, const GuestMemory *mem, uint16_t head,
                       unsigned max_segs, VirtQueueElement *elem, GError **errp)
{
    const uint8_t *table = (const uint8_t *)vq->desc;
    unsigned tsize = vq->size, idx = head, steps = 0;
    bool indirect = false;
    VirtqDesc d;

    for (;;) {
        memcpy(&d, table + 16 * (size_t)idx, sizeof(d));
        if (++steps > tsize) {
            return tern_invalid(errp, "descriptor chain at %u loops", head);
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (indirect || (d.flags & VIRTQ_DESC_F_NEXT)) {
                return tern_invalid(errp, "indirect descriptor %s", indirect ?
                                    "inside an indirect table" : "with NEXT set");
            }
            if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_INDIRECT) {
                return tern_invalid(errp, "indirect table of %u bytes", d.len);
            }
            table = guest_mem_ptr(mem, d.addr, d.len);
            if (!table) {
                return tern_invalid(errp, "indirect table 0x%" PRIx64 "+0x%x "
                                    "outside guest RAM", d.addr, d.len);
            }
            tsize = d.len / 16;
            idx = 0;
            steps = 0;
            indirect = true;
            continue;
        }
        if (!take_buffer(&d, mem, max_segs, elem, errp)) {
            return false;
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            return true;
        }
        idx = d.next;
        if (idx >= tsize) {
            return tern_invalid(errp, "next index %u beyond the table (%u)",
                                idx, tsize);
        }
    }
}

int virtqueue_pop(VirtQueue *vq, const GuestMemory *mem, unsigned max_segs,
                  VirtQueueElement *elem, GError **errp)
{
    uint16_t avail_idx, head;

    if (!vq->enabled || !vq->avail) {
        return 0;
    }
    avail_idx = load16(&vq->avail[1]);
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
        tern_invalid(errp, "available index moved from %u to %u (queue size "
                     "%u)", vq->last_avail, avail_idx, vq->size);
        return -1;
    }
    if (avail_idx == vq->last_avail) {
        return 0;
    }
    head = load16(&vq->avail[2 + (vq->last_avail & (vq->size - 1))]);
    if (head >= vq->size) {
        tern_invalid(errp, "head index %u beyond queue size %u", head,
                     vq->size);
        return -1;
    }
    elem->head = head;
    elem->out_num = elem->in_num = 0;
    elem->out_len = elem->in_len = 0;
    if (!walk_chain(vq, mem, head, max_segs, elem, errp)) {
        return -1;
    }
    vq->last_avail++;
    if (vq->event_idx && vq->notify_enabled) {
        virtqueue_set_notification(vq, true);
    }
    return 1;
}

void virtqueue_unpop(VirtQueue *vq, unsigned n)
{
    vq->last_avail -= (uint16_t)n;
}

void virtqueue_set_notification(VirtQueue *vq, bool enable)
{
    vq->notify_enabled = enable;
    if (!vq->used) {
        return;
    }
    if (vq->event_idx) {
        /* Kick me once the driver moves past last_avail; while disabled the
         * old value stays behind, so the driver stops kicking. */
        if (enable) {
            uint16_t *avail_event = (uint16_t *)(vq->used + 4 + USED_ELEM_SIZE * vq->size);

            __atomic_store_n(avail_event, vq->last_avail, __ATOMIC_RELEASE);
        }
    } else {
        uint16_t *flags = (uint16_t *)vq->used;

        __atomic_store_n(flags, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELEASE);
    }
    /* The driver must see the change before we look at the ring again. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtqueue_empty(VirtQueue *vq)
{
    return !vq->enabled || !vq->avail || load16(&vq->avail[1]) == vq->last_avail;
}

void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem, uint32_t len)
{
    uint8_t *e = vq->used + 4 + USED_ELEM_SIZE * (size_t)(vq->used_idx & (vq->size - 1));
    uint32_t id = elem->head;

    memcpy(e, &id, 4);
    memcpy(e + 4, &len, 4);
    vq->used_idx++;
    __atomic_store_n((uint16_t *)(vq->used + 2), vq->used_idx, __ATOMIC_RELEASE);
}

bool virtqueue_should_notify(VirtQueue *vq)
{
    uint16_t old = vq->signalled_used, new = vq->used_idx, event;
    bool valid = vq->signalled_valid;

    /* The used index must be visible before we read the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vq->signalled_used = new;
    vq->signalled_valid = true;
    if (!vq->event_idx) {
        return !(load16(&vq->avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (!valid) {
        return true;
    }
    event = load16(&vq->avail[2 + vq->size]);
    return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void virtqueue_element_clear(VirtQueueElement *elem)
{
    g_free(elem->iov);
    g_free(elem->gpa);
    memset(elem, 0, sizeof(*elem));
}
