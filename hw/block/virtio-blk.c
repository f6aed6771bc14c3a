/*
 * virtio-blk (virtio 1.x, "Block Device"): turns each popped chain into a
 * block-layer call on the drive's node, on the transport's I/O thread. The
 * request header and status byte may sit anywhere in the chain's buffers;
 * the data between them becomes an iovec handed straight to the block layer
 * (no bounce copies). Ranges, segment counts and sizes are checked first;
 * host I/O errors follow the drive's werror/rerror policy: report fails the
 * request, stop parks it, pauses the VM in io-error and retries it when the
 * VM runs again. Chains are popped in batches whose writes are announced to
 * the block layer first, so crash-safe bitmaps record them all with one
 * sync (block/write-intent.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/write-intent.h"
#include "hw/block/virtio-blk.h"
#include "softmmu/runstate.h"
#include "tern/error.h"

#define REQ_HDR_BYTES 16
#define SEG_BYTES     16          /* discard / write-zeroes segment */
#define BATCH         32          /* chains popped before any of them runs */

struct VirtioBlk {
    VirtioPci *vp;
    Drive *drive;
    char serial[VIRTIO_BLK_ID_BYTES];
    unsigned num_queues;
    VirtQueueElement batch[BATCH];                    /* scratch, I/O thread */
    VirtQueueElement stalled[VIRTIO_PCI_MAX_QUEUES];  /* werror/rerror=stop */
    bool has_stalled[VIRTIO_PCI_MAX_QUEUES];
    uint64_t failed;
};

/* One request as parsed from a chain. */
typedef struct BlkReq {
    uint32_t type;
    uint64_t sector;
    struct iovec *data;           /* data buffers (out for writes, in for reads) */
    unsigned data_n;
    uint64_t data_len;
    uint8_t *status;
    uint32_t written;             /* bytes written to in buffers, status excluded */
} BlkReq;

static uint64_t blk_features(void *opaque)
{
    VirtioBlk *vb = opaque;
    uint64_t f = 1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
                 1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH |
                 1ULL << VIRTIO_BLK_F_TOPOLOGY | 1ULL << VIRTIO_BLK_F_DISCARD |
                 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;

    if (vb->num_queues > 1) {
        f |= 1ULL << VIRTIO_BLK_F_MQ;
    }
    if (vb->drive->read_only) {
        f |= 1ULL << VIRTIO_BLK_F_RO;
    }
    return f;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void blk_get_config(void *opaque, uint8_t *c)
{
    VirtioBlk *vb = opaque;
    uint64_t capacity = bdrv_getlength(drive_node(vb->drive)) /
                        VIRTIO_BLK_SECTOR;

    memcpy(c + 0x00, &capacity, 8);
    put32(c + 0x08, VIRTIO_BLK_SIZE_MAX);
    put32(c + 0x0c, VIRTIO_BLK_SEG_MAX);
    put32(c + 0x14, VIRTIO_BLK_SECTOR);                 /* blk_size */
    c[0x18] = 0;                                        /* physical_block_exp */
    c[0x19] = 0;                                        /* alignment_offset */
    pci_set_word(c + 0x1a, 1);                          /* min_io_size (blocks) */
    put32(c + 0x1c, 0);                                 /* opt_io_size */
    c[0x20] = !vb->drive->writethrough;                 /* writeback */
    pci_set_word(c + 0x22, (uint16_t)vb->num_queues);
    put32(c + 0x24, VIRTIO_BLK_MAX_DISCARD);            /* max_discard_sectors */
    put32(c + 0x28, 1);                                 /* max_discard_seg */
    put32(c + 0x2c, 1);                                 /* discard_sector_alignment */
    put32(c + 0x30, VIRTIO_BLK_MAX_DISCARD);            /* max_write_zeroes_sectors */
    put32(c + 0x34, 1);                                 /* max_write_zeroes_seg */
    c[0x38] = 0;                                        /* write_zeroes_may_unmap */
}

/* Copies len bytes at byte offset 'off' of an iovec array into buf. */
static void iov_read(const struct iovec *iov, unsigned n, uint64_t off, void *buf,
                     size_t len)
{
    uint8_t *out = buf;

    for (unsigned i = 0; i < n && len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t chunk = MIN(len, iov[i].iov_len - off);

        memcpy(out, (uint8_t *)iov[i].iov_base + off, chunk);
        out += chunk;
        len -= chunk;
        off = 0;
    }
}

/* Copies len bytes of buf into an iovec array (which holds at least len). */
static void iov_write(const struct iovec *iov, unsigned n, const void *buf, size_t len)
{
    const uint8_t *in = buf;

    for (unsigned i = 0; i < n && len; i++) {
        size_t chunk = MIN(len, iov[i].iov_len);

        memcpy(iov[i].iov_base, in, chunk);
        in += chunk;
        len -= chunk;
    }
}

/* Fills dst with the part [skip, skip+len) of src; returns the entry count. */
static unsigned iov_slice(const struct iovec *src, unsigned n, uint64_t skip,
                          uint64_t len, struct iovec *dst)
{
    unsigned k = 0;

    for (unsigned i = 0; i < n && len; i++) {
        if (skip >= src[i].iov_len) {
            skip -= src[i].iov_len;
            continue;
        }
        size_t chunk = MIN(len, src[i].iov_len - skip);

        dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
        dst[k++].iov_len = chunk;
        len -= chunk;
        skip = 0;
    }
    return k;
}

/* Finds header, status byte and data; false if the chain lacks them. */
static bool parse_request(VirtQueueElement *e, BlkReq *r, struct iovec *scratch)
{
    uint8_t hdr[REQ_HDR_BYTES];
    struct iovec *in = e->iov + e->out_num;
    unsigned last;

    if (e->out_len < REQ_HDR_BYTES || e->in_len < 1) {
        return false;
    }
    iov_read(e->iov, e->out_num, 0, hdr, sizeof(hdr));
    memcpy(&r->type, hdr, 4);
    memcpy(&r->sector, hdr + 8, 8);
    for (last = e->in_num; in[last - 1].iov_len == 0; last--) {
    }
    r->status = (uint8_t *)in[last - 1].iov_base + in[last - 1].iov_len - 1;
    r->data = scratch;
    r->written = 0;
    if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID) {
        r->data_len = e->in_len - 1;
        r->data_n = iov_slice(in, e->in_num, 0, r->data_len, scratch);
    } else {
        r->data_len = e->out_len - REQ_HDR_BYTES;
        r->data_n = iov_slice(e->iov, e->out_num, REQ_HDR_BYTES, r->data_len, scratch);
    }
    return true;
}

/* The byte range [sector, sector+bytes) lies within the disk. */
static bool range_ok(VirtioBlk *vb, uint64_t sector, uint64_t bytes)
{
    uint64_t size = bdrv_getlength(drive_node(vb->drive));

    return sector <= size / VIRTIO_BLK_SECTOR &&
           bytes <= size - sector * VIRTIO_BLK_SECTOR;
}

static bool segments_ok(const BlkReq *r)
{
    if (r->data_n > VIRTIO_BLK_SEG_MAX) {
        return false;
    }
    for (unsigned i = 0; i < r->data_n; i++) {
        if (r->data[i].iov_len > VIRTIO_BLK_SIZE_MAX) {
            return false;
        }
    }
    return true;
}

/* O_DIRECT (cache=none/directsync) wants sector-aligned memory; guests may
 * hand us any byte alignment, so such requests go through a bounce buffer. */
static bool needs_bounce(VirtioBlk *vb, const BlkReq *r)
{
    if (!(bdrv_get_flags(drive_node(vb->drive)) & BDRV_O_NOCACHE)) {
        return false;
    }
    for (unsigned i = 0; i < r->data_n; i++) {
        if ((uintptr_t)r->data[i].iov_base % VIRTIO_BLK_BOUNCE_ALIGN ||
            r->data[i].iov_len % VIRTIO_BLK_BOUNCE_ALIGN) {
            return true;
        }
    }
    return false;
}

static bool do_rw_bounced(VirtioBlk *vb, BlkReq *r, bool write, GError **errp)
{
    BlockNode *bs = drive_node(vb->drive);
    uint64_t off = r->sector * VIRTIO_BLK_SECTOR;
    void *buf = NULL;
    bool ok;

    if (posix_memalign(&buf, VIRTIO_BLK_BOUNCE_ALIGN, r->data_len)) {
        tern_die("virtio-blk: out of memory for a %" PRIu64 "-byte bounce buffer",
                 r->data_len);
    }
    if (write) {
        iov_read(r->data, r->data_n, 0, buf, r->data_len);
        ok = bdrv_pwrite(bs, off, buf, r->data_len, errp) &&
             (!vb->drive->writethrough || bdrv_flush(bs, errp));
    } else {
        ok = bdrv_pread(bs, off, buf, r->data_len, errp);
        if (ok) {
            iov_write(r->data, r->data_n, buf, r->data_len);
            r->written = (uint32_t)r->data_len;
        }
    }
    free(buf);
    return ok;
}

static bool do_rw(VirtioBlk *vb, BlkReq *r, bool write, GError **errp)
{
    BlockNode *bs = drive_node(vb->drive);
    uint64_t off = r->sector * VIRTIO_BLK_SECTOR;

    if (needs_bounce(vb, r)) {
        return do_rw_bounced(vb, r, write, errp);
    }
    if (write) {
        return bdrv_pwritev(bs, off, r->data, (int)r->data_n, errp) &&
               (!vb->drive->writethrough || bdrv_flush(bs, errp));
    }
    if (!bdrv_preadv(bs, off, r->data, (int)r->data_n, errp)) {
        return false;
    }
    r->written = (uint32_t)r->data_len;
    return true;
}

/* DISCARD and WRITE_ZEROES carry one 16-byte segment (we offer max_seg 1). */
static uint8_t do_ranged(VirtioBlk *vb, BlkReq *r, GError **errp, bool *host_err)
{
    bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
    uint8_t seg[SEG_BYTES];
    uint64_t sector;
    uint32_t count, flags;

    if (r->data_len != SEG_BYTES) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    iov_read(r->data, r->data_n, 0, seg, sizeof(seg));
    memcpy(&sector, seg, 8);
    memcpy(&count, seg + 8, 4);
    memcpy(&flags, seg + 12, 4);
    if (flags & ~(zeroes ? 1u : 0u)) {
        return VIRTIO_BLK_S_UNSUPP;               /* unmap only with write-zeroes */
    }
    if (count > VIRTIO_BLK_MAX_DISCARD ||
        !range_ok(vb, sector, (uint64_t)count * VIRTIO_BLK_SECTOR)) {
        return VIRTIO_BLK_S_IOERR;
    }
    /* The drive's discard= option decides whether either may unmap. */
    if (zeroes) {
        *host_err = !bdrv_write_zeroes(drive_node(vb->drive),
                                       sector * VIRTIO_BLK_SECTOR,
                                       (uint64_t)count * VIRTIO_BLK_SECTOR,
                                       flags & 1, errp);
    } else {
        *host_err = !bdrv_discard(drive_node(vb->drive),
                                  sector * VIRTIO_BLK_SECTOR,
                                  (uint64_t)count * VIRTIO_BLK_SECTOR, errp);
    }
    return *host_err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

static uint8_t do_get_id(VirtioBlk *vb, BlkReq *r)
{
    uint8_t id[VIRTIO_BLK_ID_BYTES];
    uint64_t left = MIN(r->data_len, sizeof(id));
    uint8_t *p = id;

    memcpy(id, vb->serial, sizeof(id));
    for (unsigned i = 0; i < r->data_n && left; i++) {
        size_t chunk = MIN(left, r->data[i].iov_len);

        memcpy(r->data[i].iov_base, p, chunk);
        p += chunk;
        left -= chunk;
    }
    r->written = (uint32_t)MIN(r->data_len, sizeof(id));
    return VIRTIO_BLK_S_OK;
}

/* Runs the request; *host_err says a host I/O error (policy applies). */
static uint8_t execute(VirtioBlk *vb, BlkReq *r, bool *host_err, GError **errp)
{
    bool ro = vb->drive->read_only;

    *host_err = false;
    switch (r->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        if ((r->type == VIRTIO_BLK_T_OUT && ro) || r->data_len % VIRTIO_BLK_SECTOR ||
            !segments_ok(r) || !range_ok(vb, r->sector, r->data_len)) {
            return VIRTIO_BLK_S_IOERR;
        }
        *host_err = !do_rw(vb, r, r->type == VIRTIO_BLK_T_OUT, errp);
        return *host_err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_FLUSH:
        if (vb->drive->ignore_flush) {
            return VIRTIO_BLK_S_OK;
        }
        *host_err = !bdrv_flush(drive_node(vb->drive), errp);
        return *host_err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID:
        return do_get_id(vb, r);
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        return ro ? VIRTIO_BLK_S_IOERR : do_ranged(vb, r, errp, host_err);
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

static bool is_read(uint32_t type)
{
    return type == VIRTIO_BLK_T_IN;
}

/*
 * Processes one chain. Returns false if the request was parked (stop policy)
 * and must be retried; true once it was pushed to the used ring (or the
 * device went to NEEDS_RESET).
 */
static bool process(VirtioBlk *vb, unsigned q, VirtQueueElement *e)
{
    g_autofree struct iovec *scratch = g_new(struct iovec, e->out_num + e->in_num + 1);
    g_autoptr(GError) err = NULL;
    BlkReq r;
    bool host_err;
    uint8_t status;

    if (!parse_request(e, &r, scratch)) {
        virtio_pci_set_needs_reset(vb->vp, "request without header or status byte");
        return true;
    }
    status = execute(vb, &r, &host_err, &err);
    if (host_err) {
        DriveErrorAction a = drive_error_action(vb->drive, is_read(r.type), err);
        int errnum = tern_error_errno(err);

        tern_warn("%s: %s error: %s", drive_id(vb->drive),
                  is_read(r.type) ? "read" : "write", err->message);
        drive_io_error_event(vb->drive, is_read(r.type), a,
                             errnum ? errnum : EIO, err->message);
        if (a == DRIVE_ERROR_STOP) {
            vm_request_stop(RUN_STATE_IO_ERROR);
            return false;
        }
    }
    if (status != VIRTIO_BLK_S_OK) {
        vb->failed++;
    }
    *r.status = status;
    virtio_pci_push(vb->vp, q, e, r.written + 1);
    return true;
}

/* Moves a scratch element into the queue's parking slot. */
static void park(VirtioBlk *vb, unsigned q, VirtQueueElement *e)
{
    VirtQueueElement tmp = vb->stalled[q];

    vb->stalled[q] = *e;
    *e = tmp;
    vb->has_stalled[q] = true;
}

/* The byte range a well-formed write chain will write, if it is one. */
static bool write_range(VirtioBlk *vb, const VirtQueueElement *e, BdrvRange *r)
{
    uint8_t hdr[REQ_HDR_BYTES];
    uint32_t type;
    uint64_t sector;

    if (e->out_len < REQ_HDR_BYTES) {
        return false;
    }
    iov_read(e->iov, e->out_num, 0, hdr, sizeof(hdr));
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    r->offset = sector * VIRTIO_BLK_SECTOR;
    r->bytes = e->out_len - REQ_HDR_BYTES;
    return type == VIRTIO_BLK_T_OUT && r->bytes &&
           r->bytes % VIRTIO_BLK_SECTOR == 0 && range_ok(vb, sector, r->bytes);
}

/* Tells the block layer which writes come next (errors show on the writes). */
static void announce_writes(VirtioBlk *vb, unsigned n)
{
    BdrvRange r[BATCH];
    unsigned k = 0;

    for (unsigned i = 0; i < n; i++) {
        k += write_range(vb, &vb->batch[i], &r[k]);
    }
    if (k && !vb->drive->read_only) {
        bdrv_write_intent_announce(drive_node(vb->drive), r, k, NULL);
    }
}

/* Pops up to BATCH chains; *err set (and fewer popped) on a broken ring. */
static unsigned pop_batch(VirtioBlk *vb, VirtQueue *vq, GError **err)
{
    unsigned n = 0;

    while (n < BATCH &&
           virtqueue_pop(vq, vb->vp->cfg.mem, VIRTQ_MAX_INDIRECT, &vb->batch[n],
                         err) > 0) {
        n++;
    }
    return n;
}

/* Pops and runs requests until the ring is empty. Returns false if the
 * queue must stop (a parked request, or the device now needs a reset). */
static bool drain(VirtioBlk *vb, unsigned q, bool *done)
{
    VirtQueue *vq = &vb->vp->vqs[q];

    for (;;) {
        g_autoptr(GError) err = NULL;
        unsigned n = pop_batch(vb, vq, &err);

        announce_writes(vb, n);
        for (unsigned i = 0; i < n; i++) {
            if (!process(vb, q, &vb->batch[i])) {
                park(vb, q, &vb->batch[i]);
                virtqueue_unpop(vq, n - i - 1);
                return false;
            }
            *done = true;
            if (vb->vp->status & VIRTIO_STATUS_NEEDS_RESET) {
                return false;
            }
        }
        if (err) {
            virtio_pci_set_needs_reset(vb->vp, err->message);
            return false;
        }
        if (n < BATCH) {
            return true;
        }
    }
}

/* Spins briefly for the driver's next request, which saves it a kick (an
 * MMIO exit) and us a wake-up; QEMU's iothreads poll for the same 32 us. */
static bool poll_more(VirtQueue *vq)
{
    gint64 until = g_get_monotonic_time() + VIRTIO_BLK_POLL_US;

    do {
        if (!virtqueue_empty(vq)) {
            return true;
        }
        __builtin_ia32_pause();
    } while (g_get_monotonic_time() < until);
    return false;
}

static void blk_handle_queue(void *opaque, unsigned q)
{
    VirtioBlk *vb = opaque;
    VirtQueue *vq = &vb->vp->vqs[q];
    bool done = false;

    if (vb->has_stalled[q]) {
        if (!process(vb, q, &vb->stalled[q])) {
            return;
        }
        vb->has_stalled[q] = false;
        virtio_pci_queue_done(vb->vp, q);
    }
    for (;;) {
        virtqueue_set_notification(vq, false);
        if (!drain(vb, q, &done)) {
            break;
        }
        if (done) {
            virtio_pci_queue_done(vb->vp, q);
            done = false;
        }
        if (poll_more(vq)) {
            continue;
        }
        virtqueue_set_notification(vq, true);
        if (virtqueue_empty(vq)) {
            break;
        }
    }
    if (done) {
        virtio_pci_queue_done(vb->vp, q);
    }
    virtqueue_set_notification(vq, true);
}

static void blk_reset(void *opaque)
{
    VirtioBlk *vb = opaque;

    memset(vb->has_stalled, 0, sizeof(vb->has_stalled));
}

static unsigned blk_in_flight(void *opaque, unsigned q)
{
    VirtioBlk *vb = opaque;

    return vb->has_stalled[q];
}

static const VirtioDeviceOps virtio_blk_ops = {
    .features = blk_features,
    .get_config = blk_get_config,
    .handle_queue = blk_handle_queue,
    .reset = blk_reset,
    .in_flight = blk_in_flight,
};

VirtioBlk *virtio_blk_new(Drive *drive, const VirtioBlkOptions *opts, GError **errp)
{
    VirtioBlk *vb = g_new0(VirtioBlk, 1);
    VirtioPciConfig cfg = {
        .name = "virtio-blk-pci",
        .device_id = VIRTIO_ID_BLOCK,
        .class_code = 0x010000,              /* mass storage, SCSI (as QEMU) */
        .num_queues = opts->num_queues,
        .config_size = VIRTIO_BLK_CONFIG_SIZE,
        .ops = &virtio_blk_ops,
        .opaque = vb,
        .mem = opts->mem,
        .kvm = opts->kvm,
    };

    if (opts->serial && strlen(opts->serial) > VIRTIO_BLK_ID_BYTES) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "serial '%s' is longer than %u bytes", opts->serial,
                    VIRTIO_BLK_ID_BYTES);
        g_free(vb);
        return NULL;
    }
    vb->drive = drive;
    vb->num_queues = opts->num_queues;
    if (opts->serial) {
        memcpy(vb->serial, opts->serial, strlen(opts->serial));
    }
    vb->vp = virtio_pci_new(&cfg, errp);
    if (!vb->vp) {
        g_free(vb);
        return NULL;
    }
    return vb;
}

void virtio_blk_free(VirtioBlk *vb)
{
    if (!vb) {
        return;
    }
    virtio_pci_free(vb->vp);
    for (unsigned i = 0; i < BATCH; i++) {
        virtqueue_element_clear(&vb->batch[i]);
    }
    for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
        virtqueue_element_clear(&vb->stalled[q]);
    }
    g_free(vb);
}

VirtioPci *virtio_blk_transport(VirtioBlk *vb)
{
    return vb->vp;
}

uint64_t virtio_blk_failed_requests(VirtioBlk *vb)
{
    return vb->failed;
}
