/*
 * Fuzzes virtio-blk requests end to end: 64 KiB of guest RAM (the input's
 * image of it, the rest a canary) hold a split virtqueue and request chains;
 * the driver side here negotiates features, programs the queue through the
 * BAR and publishes heads, and the real device code (virtio-pci transport,
 * virtqueue, virtio-blk, block layer) runs them against a 64 KiB raw image in
 * a temp file. After every run it checks what a device may do: guest RAM
 * changes only in the used ring and in the writable buffers of the chains it
 * returned, each change is reported to migration's dirty log, used lengths
 * fit those buffers, and the image changes only where a returned write,
 * write-zeroes or discard request says. For a run that returns one request
 * it also checks the status, used length and data against the virtio spec.
 *
 * Input: byte 0: bits 0-3 queue size log2 (mod 9), bit 4 EVENT_IDX, bit 5
 * read-only drive, bit 6 MSI-X (else INTx); bytes 1-2: le16 length of the RAM
 * image that follows (from guest address 0); then steps, each an op byte:
 *   op % 4 == 0: publish the head in the next byte and run the queue
 *   op % 4 == 1: publish (op >> 2) % 16 + 1 heads (next bytes), run once
 *   op % 4 == 2: guest write: le16 address, u8 length, that many bytes
 *   op % 8 == 3: the driver resets the device and sets it up again
 *   op % 8 == 7: the driver sets avail idx to the next le16 and runs
 * Ring layout for queue size n: descriptors at 0, the available ring at
 * 16 n, the used ring after it (4-aligned).
 */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "hw/block/virtio-blk.h"
#include "hw/pci/pci.h"

#define RAM_SIZE   0x10000u
#define DISK_SIZE  0x10000u
#define CANARY     0xa5
#define BAR_ADDR   0xc0000000ULL
#define MSIX_ADDR  0xc0100000ULL
#define SERIAL     "fuzz-serial-0123"
#define MAX_STEPS  64
#define MAX_SEGS   1024         /* what the device accepts per chain */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define bug(...) do { fprintf(stderr, "fuzz-virtio-blk: " __VA_ARGS__); \
                      fputc('\n', stderr); abort(); } while (0)

/* The images: opened once per process, their contents reset per input. */
typedef struct Disks {
    char *dir;
    Drive *rw, *ro;
} Disks;

typedef struct Range {
    uint64_t start, len;
} Range;

typedef struct Seg {
    uint64_t gpa;
    uint32_t len;
    bool writable;
} Seg;

/* A chain as the spec reads it, from a snapshot of guest RAM. */
typedef struct Chain {
    Seg segs[MAX_SEGS];
    unsigned n;
    uint64_t out_len, in_len;
    Range tables[2];            /* the descriptor tables it read */
    unsigned nr_tables;
} Chain;

/* What a request should do, per the spec and the device's limits. */
typedef struct Expect {
    bool have_status;
    uint64_t status_gpa;
    uint8_t status;
    uint32_t written;           /* bytes of data before the status byte */
    uint32_t type;
    Range disk;                 /* bytes of the image it may change */
    bool disk_zeroes;           /* ... to zeroes (write-zeroes) */
    bool disk_maybe_zero;       /* ... to zeroes or not at all (discard) */
    Range data[MAX_SEGS];       /* the data pieces, in order */
    unsigned nr_data;
} Expect;

typedef struct Harness {
    uint8_t *ram;
    uint8_t *before;            /* RAM as the last run found it */
    GuestMemory mem;
    IoBus *pio, *mmio;
    PciBus *bus;
    Drive *drive;
    VirtioBlk *vb;
    VirtioPci *vp;
    unsigned qsize;
    uint64_t desc, avail, used;
    bool event_idx, msix;
    uint16_t avail_idx;
    uint8_t disk[DISK_SIZE];    /* what the image should hold */
    GArray *dirty;              /* of Range: device writes reported */
    Chain chain;                /* scratch */
    Expect expect;              /* scratch */
} Harness;

static const Disks *disks(void)
{
    static Disks d;
    g_autoptr(GError) err = NULL;

    if (d.rw) {
        return &d;
    }
    /* tmpfs if there is one: flush requests fsync the image. */
    d.dir = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)
        ? g_mkdtemp(g_strdup("/dev/shm/fuzz-virtio-blk-XXXXXX"))
        : g_dir_make_tmp("fuzz-virtio-blk-XXXXXX", &err);
    g_assert_no_error(err);
    g_assert_nonnull(d.dir);
    for (int ro = 0; ro < 2; ro++) {
        g_autofree char *img = g_strdup_printf("%s/%s.raw", d.dir, ro ? "ro" : "rw");
        g_autofree char *spec = g_strdup_printf(
            "file=%s,format=raw,if=none,id=%s%s", img, ro ? "ro" : "rw",
            ro ? ",readonly=on" : "");

        g_assert_true(bdrv_create("raw", img, DISK_SIZE, NULL, &err));
        if (ro) {
            d.ro = drive_open(spec, 0, &err);
        } else {
            d.rw = drive_open(spec, 0, &err);
        }
        g_assert_no_error(err);
        g_remove(img);          /* the open nodes keep them; nothing is left */
    }
    g_rmdir(d.dir);
    return &d;
}

/* ---- the driver side ---- */

static void cfg_write(Harness *h, unsigned off, uint32_t v, unsigned size)
{
    pci_bus_config_write(h->bus, 0, h->vp->pci.devfn, off, v, size);
}

static void common_w(Harness *h, unsigned off, uint64_t v, unsigned size)
{
    iobus_write(h->mmio, BAR_ADDR + off, v, size);
}

static uint64_t common_r(Harness *h, unsigned off, unsigned size)
{
    uint64_t v = 0;

    iobus_read(h->mmio, BAR_ADDR + off, &v, size);
    return v;
}

static void record_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
    Harness *h = opaque;
    Range r = { gpa, len };

    g_array_append_val(h->dirty, r);
}

static void ignore_msi(void *opaque, uint64_t addr, uint32_t data)
{
}

/* Reset, features, queue 0 at the fixed layout, DRIVER_OK. */
static void driver_init(Harness *h)
{
    uint64_t want = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH |
                    1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES |
                    1ULL << VIRTIO_F_RING_INDIRECT_DESC |
                    (h->event_idx ? 1ULL << VIRTIO_F_RING_EVENT_IDX : 0) |
                    (h->drive->read_only ? 1ULL << VIRTIO_BLK_F_RO : 0);
    uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

    common_w(h, VIRTIO_COMMON_STATUS, 0, 1);
    common_w(h, VIRTIO_COMMON_STATUS, st, 1);
    common_w(h, VIRTIO_COMMON_GFSELECT, 0, 4);
    common_w(h, VIRTIO_COMMON_GF, (uint32_t)want, 4);
    common_w(h, VIRTIO_COMMON_GFSELECT, 1, 4);
    common_w(h, VIRTIO_COMMON_GF, want >> 32, 4);
    common_w(h, VIRTIO_COMMON_STATUS, st |= VIRTIO_STATUS_FEATURES_OK, 1);
    common_w(h, VIRTIO_COMMON_Q_SELECT, 0, 2);
    common_w(h, VIRTIO_COMMON_Q_SIZE, h->qsize, 2);
    common_w(h, VIRTIO_COMMON_Q_MSIX, h->msix ? 0 : VIRTIO_NO_VECTOR, 2);
    common_w(h, VIRTIO_COMMON_Q_DESCLO, h->desc, 4);
    common_w(h, VIRTIO_COMMON_Q_AVAILLO, h->avail, 4);
    common_w(h, VIRTIO_COMMON_Q_USEDLO, h->used, 4);
    common_w(h, VIRTIO_COMMON_Q_ENABLE, 1, 2);
    common_w(h, VIRTIO_COMMON_STATUS, st | VIRTIO_STATUS_DRIVER_OK, 1);
    if (!(common_r(h, VIRTIO_COMMON_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK)) {
        bug("the device refused a valid setup (status 0x%x)",
            (unsigned)common_r(h, VIRTIO_COMMON_STATUS, 1));
    }
    h->avail_idx = 0;
}

static void read_disk(Harness *h, uint8_t *buf);

static void harness_init(Harness *h, uint8_t flags)
{
    g_autoptr(GError) err = NULL;
    VirtioBlkOptions o = { .serial = SERIAL, .num_queues = 1, .mem = &h->mem };
    unsigned n;

    memset(h, 0, sizeof(*h));
    h->qsize = n = 1u << (flags & 0xf) % 9;
    h->event_idx = flags & 0x10;
    h->msix = flags & 0x40;
    h->desc = 0;
    h->avail = 16 * n;
    h->used = ALIGN_UP(h->avail + 6 + 2 * n, 4);
    h->ram = g_malloc(RAM_SIZE);
    h->before = g_malloc(RAM_SIZE);
    memset(h->ram, CANARY, RAM_SIZE);
    h->mem.regions[0] = (GuestRegion){ .gpa = 0, .size = RAM_SIZE, .hva = h->ram };
    h->mem.nr_regions = 1;
    h->mem.fd = -1;
    h->mem.ram_size = RAM_SIZE;
    h->dirty = g_array_new(false, false, sizeof(Range));
    h->drive = flags & 0x20 ? disks()->ro : disks()->rw;
    for (unsigned i = 0; i < DISK_SIZE; i++) {
        h->disk[i] = (uint8_t)(i * 7 + i / 512);
    }
    if (!h->drive->read_only) {
        g_assert_true(bdrv_pwrite(drive_node(h->drive), 0, h->disk, DISK_SIZE, NULL));
    }
    read_disk(h, h->disk);
    h->pio = iobus_new("pio");
    h->mmio = iobus_new("mmio");
    h->bus = pci_bus_new(h->pio, h->mmio);
    h->vb = virtio_blk_new(h->drive, &o, &err);
    g_assert_no_error(err);
    h->vp = virtio_blk_transport(h->vb);
    h->vp->msix.signal = ignore_msi;
    virtio_pci_set_dirty_tracking(h->vp, record_dirty, h);
    g_assert_true(pci_bus_add_device(h->bus, &h->vp->pci, -1, &err));
    cfg_write(h, 0x10 + 4 * VIRTIO_PCI_BAR, (uint32_t)BAR_ADDR, 4);
    cfg_write(h, 0x14 + 4 * VIRTIO_PCI_BAR, 0, 4);
    cfg_write(h, 0x10 + 4 * VIRTIO_PCI_MSIX_BAR, (uint32_t)MSIX_ADDR, 4);
    cfg_write(h, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    if (h->msix) {
        cfg_write(h, h->vp->msix.cap + 2, MSIX_CTRL_ENABLE, 2);
        iobus_write(h->mmio, MSIX_ADDR + 12, 0, 4);      /* unmask vector 0 */
    }
}

static void harness_free(Harness *h)
{
    pci_bus_remove_device(h->bus, &h->vp->pci);
    virtio_blk_free(h->vb);
    pci_bus_free(h->bus);
    iobus_free(h->mmio);
    iobus_free(h->pio);
    g_array_unref(h->dirty);
    g_free(h->ram);
    g_free(h->before);
}

/* ---- the model: the spec's reading of a chain ---- */

static bool in_ram(uint64_t gpa, uint64_t len)
{
    return gpa <= RAM_SIZE && len <= RAM_SIZE - gpa;
}

static bool overlaps(Range a, Range b)
{
    return a.len && b.len && a.start < b.start + b.len && b.start < a.start + a.len;
}

static bool walk(const Harness *h, const uint8_t *ram, uint16_t head, Chain *c)
{
    uint64_t table = h->desc;
    unsigned tsize = h->qsize, idx = head, steps = 0;
    bool indirect = false;

    c->n = 0;
    c->out_len = c->in_len = 0;
    c->nr_tables = 1;
    c->tables[0] = (Range){ h->desc, 16ULL * h->qsize };
    if (head >= h->qsize) {
        return false;
    }
    for (;;) {
        struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d;
        bool w;

        memcpy(&d, ram + table + 16ULL * idx, 16);
        if (++steps > tsize) {
            return false;
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (indirect || (d.flags & VIRTQ_DESC_F_NEXT) || d.len == 0 ||
                d.len % 16 || d.len / 16 > VIRTQ_MAX_INDIRECT ||
                !in_ram(d.addr, d.len)) {
                return false;
            }
            table = d.addr;
            tsize = d.len / 16;
            idx = steps = 0;
            indirect = true;
            c->tables[c->nr_tables++] = (Range){ d.addr, d.len };
            continue;
        }
        w = d.flags & VIRTQ_DESC_F_WRITE;
        if ((d.len && !in_ram(d.addr, d.len)) || (!w && c->in_len) ||
            c->n >= MAX_SEGS) {
            return false;
        }
        c->segs[c->n++] = (Seg){ d.addr, d.len, w };
        *(w ? &c->in_len : &c->out_len) += d.len;
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            return true;
        }
        idx = d.next;
        if (idx >= tsize) {
            return false;
        }
    }
}

/* The non-empty pieces of bytes [skip, skip + len) of the chain's out or in
 * side, as the device slices them into its data iovec; returns how many. */
static unsigned slice(const Chain *c, bool in, uint64_t skip, uint64_t len,
                      Range *out)
{
    unsigned n = 0;

    for (unsigned i = 0; i < c->n && len; i++) {
        const Seg *s = &c->segs[i];
        uint64_t chunk;

        if (s->writable != in) {
            continue;
        }
        if (skip >= s->len) {
            skip -= s->len;
            continue;
        }
        chunk = MIN(len, s->len - skip);
        out[n++] = (Range){ s->gpa + skip, chunk };
        len -= chunk;
        skip = 0;
    }
    return n;
}

/* Copies bytes [skip, skip + len) of the chain's out or in side. */
static void gather(const Chain *c, const uint8_t *ram, bool in, uint64_t skip,
                   uint8_t *buf, uint64_t len)
{
    Range pieces[MAX_SEGS];
    unsigned n = slice(c, in, skip, len, pieces);

    for (unsigned i = 0; i < n; i++) {
        memcpy(buf, ram + pieces[i].start, pieces[i].len);
        buf += pieces[i].len;
    }
}

static bool range_ok(uint64_t sector, uint64_t bytes)
{
    return sector <= DISK_SIZE / 512 && bytes <= DISK_SIZE - sector * 512;
}

static uint8_t expect_ranged(const Chain *c, const uint8_t *ram, Expect *e,
                             uint64_t data_len, bool ro)
{
    bool zeroes = e->type == VIRTIO_BLK_T_WRITE_ZEROES;
    uint8_t seg[16];
    uint64_t sector;
    uint32_t count, flags;

    if (ro) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (data_len != 16) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    gather(c, ram, false, 16, seg, 16);
    memcpy(&sector, seg, 8);
    memcpy(&count, seg + 8, 4);
    memcpy(&flags, seg + 12, 4);
    if (flags & ~(zeroes ? 1u : 0u)) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (count > VIRTIO_BLK_MAX_DISCARD || !range_ok(sector, count * 512ULL)) {
        return VIRTIO_BLK_S_IOERR;
    }
    e->disk = (Range){ sector * 512, count * 512ULL };
    e->disk_zeroes = zeroes;
    e->disk_maybe_zero = !zeroes;
    return VIRTIO_BLK_S_OK;
}

/* Fills e for a chain the device accepted; false if it has no header or no
 * status byte (the device must then not have returned it). */
static bool expect_request(const Harness *h, const Chain *c, const uint8_t *ram,
                           Expect *e)
{
    uint8_t hdr[16];
    uint64_t sector, data_len;
    bool dev_writes, ro = h->drive->read_only;

    memset(e, 0, offsetof(Expect, data));
    if (c->out_len < 16 || c->in_len < 1) {
        return false;
    }
    for (unsigned i = c->n; i-- > 0;) {
        if (c->segs[i].len) {
            e->status_gpa = c->segs[i].gpa + c->segs[i].len - 1;
            break;
        }
    }
    e->have_status = true;
    gather(c, ram, false, 0, hdr, 16);
    memcpy(&e->type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    dev_writes = e->type == VIRTIO_BLK_T_IN || e->type == VIRTIO_BLK_T_GET_ID;
    data_len = dev_writes ? c->in_len - 1 : c->out_len - 16;
    e->nr_data = slice(c, dev_writes, dev_writes ? 0 : 16, data_len, e->data);
    switch (e->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        if ((e->type == VIRTIO_BLK_T_OUT && ro) || data_len % 512 ||
            e->nr_data > VIRTIO_BLK_SEG_MAX || !range_ok(sector, data_len)) {
            e->status = VIRTIO_BLK_S_IOERR;
            break;
        }
        e->status = VIRTIO_BLK_S_OK;
        if (e->type == VIRTIO_BLK_T_IN) {
            e->written = (uint32_t)data_len;
        }
        e->disk = (Range){ sector * 512, e->type == VIRTIO_BLK_T_OUT ? data_len : 0 };
        break;
    case VIRTIO_BLK_T_FLUSH:
        e->status = VIRTIO_BLK_S_OK;
        break;
    case VIRTIO_BLK_T_GET_ID:
        e->status = VIRTIO_BLK_S_OK;
        e->written = (uint32_t)MIN(data_len, VIRTIO_BLK_ID_BYTES);
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        e->status = expect_ranged(c, ram, e, data_len, ro);
        break;
    default:
        e->status = VIRTIO_BLK_S_UNSUPP;
    }
    return true;
}

/* ---- the checks ---- */

static bool in_ranges(const GArray *a, uint64_t gpa)
{
    for (guint i = 0; i < a->len; i++) {
        const Range *r = &g_array_index(a, Range, i);

        if (gpa >= r->start && gpa - r->start < r->len) {
            return true;
        }
    }
    return false;
}

/* The device's notification hints (used flags, avail_event) are rewritten by
 * its next run after migration, so they need no dirty-log report. */
static bool is_hint(const Harness *h, uint64_t gpa)
{
    uint64_t event = h->used + 4 + 8ULL * h->qsize;

    return (gpa >= h->used && gpa < h->used + 2) || (gpa >= event && gpa < event + 2);
}

static void read_disk(Harness *h, uint8_t *buf)
{
    if (!bdrv_pread(drive_node(h->drive), 0, buf, DISK_SIZE, NULL)) {
        bug("the image cannot be read back");
    }
}

/* The single request's data and status, as the spec says. */
static void check_one(Harness *h, const Expect *e, uint32_t used_len,
                      const uint8_t *disk_now)
{
    Range st = { e->status_gpa, 1 };
    Range ring = { h->used, 6 + 8ULL * h->qsize };
    bool alias = false;
    uint64_t pos = 0;

    /* A buffer on the used ring is overwritten by the push that follows. */
    if (!overlaps(st, ring) && h->ram[e->status_gpa] != e->status) {
        bug("request type %u: status %u, the spec says %u", e->type,
            h->ram[e->status_gpa], e->status);
    }
    if (used_len != e->written + 1) {
        bug("request type %u: used length %u, expected %u", e->type, used_len,
            e->written + 1);
    }
    for (unsigned i = 0; i < e->nr_data; i++) {
        alias |= overlaps(e->data[i], st) || overlaps(e->data[i], ring);
        for (unsigned j = 0; j < i; j++) {
            alias |= overlaps(e->data[i], e->data[j]);
        }
    }
    if (alias || e->status != VIRTIO_BLK_S_OK || !e->written) {
        return;
    }
    for (unsigned i = 0; i < e->nr_data && pos < e->written; i++) {
        uint64_t n = MIN(e->data[i].len, e->written - pos);
        const uint8_t *want = e->type == VIRTIO_BLK_T_IN
            ? disk_now + e->disk.start + pos
            : (const uint8_t *)SERIAL "\0\0\0\0" + pos;

        if (memcmp(h->ram + e->data[i].start, want, n)) {
            bug("request type %u: data piece %u differs from the %s", e->type,
                i, e->type == VIRTIO_BLK_T_IN ? "image" : "serial");
        }
        pos += n;
    }
}

/* Applies an OUT's data to the expected image. */
static void apply_write(Harness *h, const Chain *c, const Expect *e)
{
    if (e->type == VIRTIO_BLK_T_OUT && e->disk.len) {
        gather(c, h->before, false, 16, h->disk + e->disk.start, e->disk.len);
    }
}

/* The first index >= i where a and b differ, or end (memcmp keeps the
 * per-byte loops, which the fuzzer instruments, off the equal stretches). */
static uint64_t next_diff(const uint8_t *a, const uint8_t *b, uint64_t i, uint64_t end)
{
    while (i < end) {
        uint64_t n = MIN(256u, end - i);

        if (memcmp(a + i, b + i, n)) {
            while (a[i] == b[i]) {
                i++;
            }
            return i;
        }
        i += n;
    }
    return end;
}

/* The image holds what it should; 'allowed' are the ranges a batch of
 * requests (not modelled one by one) may have changed. */
static void check_disk(Harness *h, const uint8_t *now, const GArray *allowed,
                       const Expect *one)
{
    if (one && one->disk.len && (one->disk_zeroes || one->disk_maybe_zero)) {
        for (uint64_t i = one->disk.start; i < one->disk.start + one->disk.len; i++) {
            if (one->disk_zeroes || now[i] == 0) {
                h->disk[i] = 0;
            }
        }
    }
    for (uint64_t i = 0; (i = next_diff(now, h->disk, i, DISK_SIZE)) < DISK_SIZE; i++) {
        if (!(allowed && in_ranges(allowed, i))) {
            bug("image byte 0x%" PRIx64 " is 0x%02x, expected 0x%02x", i,
                now[i], h->disk[i]);
        }
    }
    memcpy(h->disk, now, DISK_SIZE);
}

/* Whether a writable buffer of a returned chain overlaps what another
 * request of the same run may have read after it was written: descriptor
 * tables, the available ring, headers and data. The used ring is both: its
 * pushes are writes, and the harness reads the used elements back after the
 * run, which a later request's data or status may have overwritten. Then the
 * snapshot is not what the device saw, and the run is not checked byte by
 * byte. */
static bool batch_aliased(Harness *h, uint16_t used_before, uint16_t done)
{
    g_autoptr(GArray) reads = g_array_new(false, false, sizeof(Range));
    g_autoptr(GArray) writes = g_array_new(false, false, sizeof(Range));
    Range avail = { h->avail, 6 + 2ULL * h->qsize };
    Range ring = { h->used, 6 + 8ULL * h->qsize };

    g_array_append_val(reads, avail);
    for (uint16_t k = 0; k < done; k++) {
        uint64_t slot = h->used + 4 + 8ULL * ((used_before + k) % h->qsize);
        uint32_t id;
        Chain *c = &h->chain;

        memcpy(&id, h->ram + slot, 4);
        if (!walk(h, h->before, (uint16_t)id, c)) {
            return true;            /* an earlier request rewrote it */
        }
        g_array_append_vals(reads, c->tables, c->nr_tables);
        for (unsigned i = 0; i < c->n; i++) {
            Range r = { c->segs[i].gpa, c->segs[i].len };

            g_array_append_val(c->segs[i].writable ? writes : reads, r);
        }
    }
    for (guint w = 0; w < writes->len; w++) {
        if (overlaps(g_array_index(writes, Range, w), ring)) {
            return true;
        }
    }
    g_array_append_val(writes, ring);
    for (guint w = 0; w < writes->len; w++) {
        for (guint r = 0; r < reads->len; r++) {
            if (overlaps(g_array_index(writes, Range, w),
                         g_array_index(reads, Range, r))) {
                return true;
            }
        }
    }
    return false;
}

/* Checks one returned chain; adds its writable buffers and the image range
 * it may change. */
static void check_chain(Harness *h, uint32_t id, uint32_t len, bool single,
                        GArray *writable, GArray *disk_writes)
{
    Chain *c = &h->chain;
    uint64_t wlen = 0;

    if (!walk(h, h->before, (uint16_t)id, c)) {
        bug("head %u returned, but its chain breaks the rules", id);
    }
    for (unsigned i = 0; i < c->n; i++) {
        Range r = { c->segs[i].gpa, c->segs[i].len };

        if (c->segs[i].writable) {
            g_array_append_val(writable, r);
            wlen += r.len;
        }
    }
    if (len > wlen) {
        bug("used length %u for a chain with %" PRIu64 " writable bytes", len, wlen);
    }
    if (!expect_request(h, c, h->before, &h->expect)) {
        bug("head %u returned without a header or status byte", id);
    }
    if (h->expect.disk.len) {
        g_array_append_val(disk_writes, h->expect.disk);
    }
    if (single) {
        apply_write(h, c, &h->expect);
    }
}

/* Checks one run of the queue: what came back, what changed in RAM and on
 * the image. */
static void check_run(Harness *h, uint16_t used_before)
{
    uint16_t done = (uint16_t)(h->vp->vqs[0].used_idx - used_before);
    g_autoptr(GArray) writable = g_array_new(false, false, sizeof(Range));
    g_autoptr(GArray) disk_writes = g_array_new(false, false, sizeof(Range));
    g_autofree uint8_t *disk_now = g_malloc(DISK_SIZE);
    Range ring = { h->used, 6 + 8ULL * h->qsize };
    uint32_t len = 0;

    if (done > h->qsize) {
        bug("%u chains returned from a queue of %u", done, h->qsize);
    }
    read_disk(h, disk_now);
    if (done > 1 && batch_aliased(h, used_before, done)) {
        memcpy(h->disk, disk_now, DISK_SIZE);
        return;
    }
    g_array_append_val(writable, ring);
    for (uint16_t k = 0; k < done; k++) {
        uint64_t slot = h->used + 4 + 8ULL * ((used_before + k) % h->qsize);
        uint32_t id;

        memcpy(&id, h->ram + slot, 4);
        memcpy(&len, h->ram + slot + 4, 4);
        check_chain(h, id, len, done == 1, writable, disk_writes);
    }
    for (uint64_t a = 0; (a = next_diff(h->ram, h->before, a, RAM_SIZE)) < RAM_SIZE; a++) {
        if (!in_ranges(writable, a)) {
            bug("guest RAM 0x%" PRIx64 " changed (0x%02x -> 0x%02x) outside the "
                "used ring and the returned writable buffers", a, h->before[a],
                h->ram[a]);
        }
        if (!in_ranges(h->dirty, a) && !is_hint(h, a)) {
            bug("guest RAM 0x%" PRIx64 " written without a dirty-log report", a);
        }
    }
    if (done == 1) {
        check_one(h, &h->expect, len, disk_now);
        check_disk(h, disk_now, NULL, &h->expect);
    } else {
        check_disk(h, disk_now, disk_writes, NULL);
    }
}

/* Snapshot, run queue 0, check. */
static void run(Harness *h)
{
    uint16_t used_before = h->vp->vqs[0].used_idx;

    memcpy(h->before, h->ram, RAM_SIZE);
    g_array_set_size(h->dirty, 0);
    virtio_pci_run_queue(h->vp, 0);
    check_run(h, used_before);
}

static void publish(Harness *h, uint16_t head)
{
    uint64_t slot = h->avail + 4 + 2ULL * (h->avail_idx % h->qsize);

    memcpy(h->ram + slot, &head, 2);
    h->avail_idx++;
    memcpy(h->ram + h->avail + 2, &h->avail_idx, 2);
}

/* Runs the steps; returns the bytes consumed. */
static size_t step(Harness *h, const uint8_t *p, size_t left)
{
    uint8_t op = p[0];
    size_t need;

    switch (op % 4) {
    case 0:
        if (left < 2) {
            return left;
        }
        publish(h, p[1]);
        run(h);
        return 2;
    case 1:
        need = 1 + (op >> 2) % 16 + 1;
        if (left < need) {
            return left;
        }
        for (size_t i = 1; i < need; i++) {
            publish(h, p[i]);
        }
        run(h);
        return need;
    case 2:
        if (left < 4 || left < 4u + p[3]) {
            return left;
        }
        memcpy(h->ram + MIN((unsigned)(p[1] | p[2] << 8), RAM_SIZE - p[3]), p + 4, p[3]);
        return 4u + p[3];
    }
    if (op & 4) {
        if (left < 3) {
            return left;
        }
        h->avail_idx = (uint16_t)(p[1] | p[2] << 8);
        memcpy(h->ram + h->avail + 2, &h->avail_idx, 2);
        run(h);
        return 3;
    }
    driver_init(h);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Harness *h;
    size_t image, off;

    if (size < 3) {
        return 0;
    }
    h = g_new(Harness, 1);
    harness_init(h, data[0]);
    image = MIN((size_t)(data[1] | data[2] << 8), MIN(size - 3, (size_t)RAM_SIZE));
    memcpy(h->ram, data + 3, image);
    driver_init(h);
    off = 3 + image;
    for (unsigned n = 0; off < size && n < MAX_STEPS; n++) {
        off += step(h, data + off, size - off);
    }
    harness_free(h);
    g_free(h);
    return 0;
}
