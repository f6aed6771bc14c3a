/*
 * Workload `blk`: a ring-3 virtio-blk-pci driver (virtio 1.x, modern PCI
 * transport, one split queue, polling). It reaches config space through
 * ECAM (tg.blk.ecam, 0xe0000000 on tern's virt and QEMU's microvm with
 * pcie=on), assigns memory BARs itself in the 32-bit PCI window when no
 * firmware did (tg.blk.mmio, 0xc0000000), walks the virtio vendor
 * capabilities, negotiates features and then runs one mode:
 *
 *   verify   write blocks of a per-block byte pattern, FLUSH, read back and
 *            compare (tg.blk.bs, tg.blk.count, tg.blk.offset, tg.blk.pattern);
 *            tg.blk.hold=1 then sleeps instead of exiting (kill -9 tests);
 *            tg.blk.rounds=N repeats it N times (0: forever) with the
 *            pattern moved on by one per round, "TG blk round=R ok" after
 *            each (live migration with disk I/O)
 *   discard  verify, then one DISCARD (tg.blk.op=discard) or WRITE_ZEROES
 *            (tg.blk.op=zeroes, tg.blk.unmap=1 sets its unmap flag) over
 *            the blocks written, FLUSH, and read the first block back:
 *            "TG blk discard op=OP status=S first=0xXX"
 *   readonly expect writes to fail with IOERR and reads to work
 *   iops     tg.blk.rw=randread|randwrite|seqread|seqwrite at tg.blk.qd for
 *            tg.blk.seconds: "TG blk iops=N mbps=M"
 *   hostile  broken chains and queue setups; each must end in NEEDS_RESET or
 *            a failed request, after which the driver resets the device and
 *            checks that I/O works again
 *
 * Layout in guest RAM (from 16 MiB): rings, request headers and status bytes,
 * then the data buffers (qd * bs bytes).
 */
#include "tg.h"

#define VIRTIO_VENDOR   0x1af4
#define VIRTIO_BLK_DEV  0x1042
#define VIRTIO_BLK_TRANSITIONAL 0x1001
#define RING_BASE       (16UL << 20)
#define HDR_BASE        (RING_BASE + 0x10000)
#define STATUS_BASE     (RING_BASE + 0x11000)
#define BADDESC_BASE    (RING_BASE + 0x12000)     /* hostile indirect tables */
#define DATA_BASE       (RING_BASE + (1UL << 20))
#define QSIZE_MAX       256
#define NO_VECTOR       0xffff

/* Common configuration offsets (virtio 1.x). */
enum {
    C_DFSEL = 0x00, C_DF = 0x04, C_GFSEL = 0x08, C_GF = 0x0c, C_MSIX = 0x10,
    C_NUMQ = 0x12, C_STATUS = 0x14, C_QSEL = 0x16, C_QSIZE = 0x18,
    C_QMSIX = 0x1a, C_QENABLE = 0x1c, C_QNOFF = 0x1e, C_QDESC = 0x20,
    C_QAVAIL = 0x28, C_QUSED = 0x30,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8,
       S_NEEDS_RESET = 0x40 };
enum { F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_DISCARD = 13,
       F_WRITE_ZEROES = 14, F_INDIRECT = 28, F_EVENT_IDX = 29, F_VERSION_1 = 32 };
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11,
       T_WRITE_ZEROES = 13 };
enum { D_NEXT = 1, D_WRITE = 2, D_INDIRECT = 4 };

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

static struct blk {
    uint64_t ecam, cfg;                 /* ECAM base, this function's config */
    uint64_t common, isr, device, notify;
    uint32_t notify_mult;
    uint64_t features;
    uint16_t qsize;
    uint64_t capacity;                  /* sectors */
    uint32_t seg_max;
    volatile struct desc *desc;
    volatile uint16_t *avail;           /* flags, idx, ring[], used_event */
    volatile uint8_t *used;
    uint16_t avail_idx, last_used;
    bool event_idx;
    uint16_t qvector;                   /* MSI-X vector for queue 0 */
    uint64_t qnotify;                   /* queue 0's notify address */
} b;

/* ---- config space through ECAM ---- */
static uint32_t cfg_read32(unsigned off)
{
    return tg_mmio_read32(b.cfg + off);
}
static void cfg_write32(unsigned off, uint32_t v)
{
    tg_mmio_write32(b.cfg + off, v);
}
static uint16_t cfg_read16(unsigned off)
{
    return tg_mmio_read16(b.cfg + off);
}
static uint8_t cfg_read8(unsigned off)
{
    return tg_mmio_read8(b.cfg + off);
}

static bool find_device(void)
{
    for (unsigned dev = 0; dev < 32; dev++) {
        uint64_t cfg = b.ecam + ((uint64_t)dev << 15);
        uint32_t id = tg_mmio_read32(cfg);
        /* modern 1af4:1042, or transitional 1af4:1001 (which has the modern
         * capabilities too; QEMU's default on a root bus) */
        if (id == ((uint32_t)VIRTIO_BLK_DEV << 16 | VIRTIO_VENDOR) ||
            id == ((uint32_t)VIRTIO_BLK_TRANSITIONAL << 16 | VIRTIO_VENDOR)) {
            b.cfg = cfg;
            return true;
        }
    }
    return false;
}

/* Sizes every memory BAR and places the unassigned ones in the window. */
static void assign_bars(void)
{
    uint64_t next = tg_arg_u64("tg.blk.mmio", 0xc0000000UL);

    cfg_write32(0x04, 0);                           /* decoding off while sizing */
    for (unsigned i = 0; i < 6; i++) {
        unsigned off = 0x10 + 4 * i;
        uint32_t lo = cfg_read32(off), hi = 0;
        bool is64 = ((lo >> 1) & 3) == 2;

        if (lo & 1) {
            continue;                               /* I/O BAR: unused */
        }
        if (is64) {
            hi = cfg_read32(off + 4);
        }
        cfg_write32(off, 0xffffffff);
        if (is64) {
            cfg_write32(off + 4, 0xffffffff);
        }
        uint64_t mask = cfg_read32(off) & ~0xfu;
        if (is64) {
            mask |= (uint64_t)cfg_read32(off + 4) << 32;
        } else if (mask) {
            mask |= 0xffffffff00000000UL;
        }
        uint64_t size = mask ? ~mask + 1 : 0;
        uint64_t addr = (lo & ~0xfu) | (uint64_t)hi << 32;
        if (size && (addr == 0 || addr + size > TG_MAPPED_LIMIT)) {
            next = (next + size - 1) & ~(size - 1);
            addr = next;
            next += size;
        }
        cfg_write32(off, (uint32_t)addr | (lo & 0xf));
        if (is64) {
            cfg_write32(off + 4, (uint32_t)(addr >> 32));
            i++;
        }
    }
    cfg_write32(0x04, 0x6);                         /* memory + bus master */
}

static uint64_t bar_addr(unsigned n)
{
    uint32_t lo = cfg_read32(0x10 + 4 * n);
    uint64_t a = lo & ~0xfu;

    if (((lo >> 1) & 3) == 2 && n < 5) {
        a |= (uint64_t)cfg_read32(0x14 + 4 * n) << 32;
    }
    return a;
}

static void find_caps(void)
{
    if (!(cfg_read16(0x06) & 0x10)) {
        tg_fail("blk: no capability list");
    }
    for (uint8_t p = cfg_read8(0x34) & 0xfc; p; p = cfg_read8(p + 1) & 0xfc) {
        if (cfg_read8(p) != 0x09) {
            continue;
        }
        uint64_t where = bar_addr(cfg_read8(p + 4)) + cfg_read32(p + 8);
        switch (cfg_read8(p + 3)) {
        case 1: if (!b.common) b.common = where; break;
        case 2:
            if (!b.notify) {
                b.notify = where;
                b.notify_mult = cfg_read32(p + 16);
            }
            break;
        case 3: if (!b.isr) b.isr = where; break;
        case 4: if (!b.device) b.device = where; break;
        }
    }
    if (!b.common || !b.notify || !b.isr || !b.device) {
        tg_fail("blk: virtio capabilities missing");
    }
}

/* ---- transport ---- */
static uint8_t dev_status(void)
{
    return tg_mmio_read8(b.common + C_STATUS);
}
static void set_status(uint8_t s)
{
    tg_mmio_write8(b.common + C_STATUS, s);
}

static void write64(uint64_t addr, uint64_t v)
{
    tg_mmio_write32(addr, (uint32_t)v);
    tg_mmio_write32(addr + 4, (uint32_t)(v >> 32));
}

static void device_reset(void)
{
    set_status(0);
    for (int i = 0; i < 1000 && dev_status() != 0; i++) {
        tg_pause();
    }
    if (dev_status() != 0) {
        tg_fail("blk: reset did not complete");
    }
}

static uint64_t device_features(void)
{
    tg_mmio_write32(b.common + C_DFSEL, 0);
    uint64_t f = tg_mmio_read32(b.common + C_DF);
    tg_mmio_write32(b.common + C_DFSEL, 1);
    return f | (uint64_t)tg_mmio_read32(b.common + C_DF) << 32;
}

static void negotiate(void)
{
    uint64_t offered, want;

    set_status(S_ACK);
    set_status(S_ACK | S_DRIVER);
    offered = device_features();
    if (!(offered & (1UL << F_VERSION_1))) {
        tg_fail("blk: device lacks VERSION_1");
    }
    want = 1UL << F_VERSION_1 | 1UL << F_FLUSH | 1UL << F_SEG_MAX | 1UL << F_RO |
           1UL << F_BLK_SIZE | 1UL << F_DISCARD | 1UL << F_WRITE_ZEROES |
           1UL << F_INDIRECT;
    if (tg_arg_u64("tg.blk.event_idx", 1)) {
        want |= 1UL << F_EVENT_IDX;
    }
    b.features = offered & want;
    b.event_idx = b.features & (1UL << F_EVENT_IDX);
    tg_mmio_write32(b.common + C_GFSEL, 0);
    tg_mmio_write32(b.common + C_GF, (uint32_t)b.features);
    tg_mmio_write32(b.common + C_GFSEL, 1);
    tg_mmio_write32(b.common + C_GF, (uint32_t)(b.features >> 32));
    set_status(S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(dev_status() & S_FEATURES_OK)) {
        tg_fail("blk: FEATURES_OK refused");
    }
}

static uint64_t ring_size_bytes(uint16_t n)
{
    return 16UL * n;
}

/* Programs queue 0 with size n at the standard places; enable it. */
static void setup_queue(uint16_t n, uint64_t desc_gpa)
{
    uint64_t avail = desc_gpa + ring_size_bytes(QSIZE_MAX);
    uint64_t used = (avail + 6 + 2 * QSIZE_MAX + 4095) & ~4095UL;

    tg_mmio_write16(b.common + C_QSEL, 0);
    b.qsize = n;
    memset((void *)RING_BASE, 0, 0x10000);
    tg_mmio_write16(b.common + C_QSIZE, n);
    tg_mmio_write16(b.common + C_QMSIX, b.qvector);
    write64(b.common + C_QDESC, desc_gpa);
    write64(b.common + C_QAVAIL, avail);
    write64(b.common + C_QUSED, used);
    b.desc = (volatile struct desc *)desc_gpa;
    b.avail = (volatile uint16_t *)avail;
    b.used = (volatile uint8_t *)used;
    b.avail_idx = b.last_used = 0;
    b.qnotify = b.notify + (uint64_t)tg_mmio_read16(b.common + C_QNOFF) * b.notify_mult;
    tg_mmio_write16(b.common + C_QENABLE, 1);
}

static uint16_t max_queue_size(void)
{
    tg_mmio_write16(b.common + C_QSEL, 0);
    uint16_t n = tg_mmio_read16(b.common + C_QSIZE);
    if (n == 0) {
        tg_fail("blk: queue 0 missing");
    }
    return n < QSIZE_MAX ? n : QSIZE_MAX;
}

/* Full bring-up: reset, features, queue 0, DRIVER_OK. */
static void device_init(void)
{
    device_reset();
    negotiate();
    setup_queue(max_queue_size(), RING_BASE);
    set_status(S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    b.capacity = tg_mmio_read32(b.device) | (uint64_t)tg_mmio_read32(b.device + 4) << 32;
    b.seg_max = (b.features & (1UL << F_SEG_MAX)) ? tg_mmio_read32(b.device + 0x0c) : 1;
}

static uint16_t used_idx(void)
{
    return *(volatile uint16_t *)(b.used + 2);
}

static void kick(void)
{
    tg_mmio_write16(b.qnotify, 0);
}

/* Publishes descriptor chain 'head' and notifies unless event idx says no. */
static void publish(uint16_t head)
{
    uint16_t old = b.avail_idx;

    b.avail[2 + (b.avail_idx % b.qsize)] = head;
    tg_barrier();
    b.avail[1] = ++b.avail_idx;
    tg_barrier();
    if (b.event_idx) {
        uint16_t event = *(volatile uint16_t *)(b.used + 4 + 8 * b.qsize);
        if ((uint16_t)(b.avail_idx - event - 1) >= (uint16_t)(b.avail_idx - old)) {
            return;
        }
    }
    kick();
}

/* Request slot s uses descriptors 3s..3s+2: header, data, status. */
static volatile uint8_t *slot_status(unsigned s)
{
    return (volatile uint8_t *)(STATUS_BASE + s);
}

static void submit(unsigned s, uint32_t type, uint64_t sector, uint64_t buf, uint32_t len)
{
    struct req_hdr *h = (struct req_hdr *)(HDR_BASE + 16UL * s);
    volatile struct desc *d = &b.desc[3 * s];
    uint16_t i = (uint16_t)(3 * s);

    h->type = type;
    h->reserved = 0;
    h->sector = sector;
    *slot_status(s) = 0xff;
    d[0] = (struct desc){ HDR_BASE + 16UL * s, 16, D_NEXT, (uint16_t)(i + 1) };
    if (len) {
        bool out = type == T_OUT || type == T_DISCARD || type == T_WRITE_ZEROES;
        d[1] = (struct desc){ buf, len, (uint16_t)(D_NEXT | (out ? 0 : D_WRITE)),
                              (uint16_t)(i + 2) };
    } else {
        d[0].next = (uint16_t)(i + 2);
    }
    d[2] = (struct desc){ STATUS_BASE + s, 1, D_WRITE, 0 };
    publish(i);
}

/* Waits (5 s at most: CI hosts are slow and shared) for the next completion;
 * returns its slot or -1 (also at once when the device needs a reset). */
static int reap(uint32_t *len)
{
    uint64_t deadline = tg_now_ticks() + 5 * tg_hz() + 1;

    /* Polling: used_event stays 0, so the device (almost) never interrupts.
     * The status register is an MMIO exit, so look at it once per tick. */
    uint64_t checked = tg_now_ticks();
    while (used_idx() == b.last_used) {
        uint64_t now = tg_now_ticks();
        if (now > deadline) {
            return -1;
        }
        if (now != checked) {
            checked = now;
            if (dev_status() & S_NEEDS_RESET) {
                return -1;
            }
        }
        tg_pause();
    }
    tg_barrier();
    volatile uint32_t *e = (volatile uint32_t *)(b.used + 4 + 8 * (b.last_used % b.qsize));
    b.last_used++;
    *len = e[1];
    return (int)(e[0] / 3);
}

/* One synchronous request in slot 0; returns the status byte (0xff: none). */
static uint8_t do_sync(uint32_t type, uint64_t sector, uint64_t buf, uint32_t len)
{
    uint32_t used_len;

    submit(0, type, sector, buf, len);
    if (reap(&used_len) < 0) {
        return 0xff;
    }
    return *slot_status(0);
}

static void fill(uint64_t buf, uint8_t v, uint64_t len)
{
    memset((void *)buf, v, len);
}

static bool check(uint64_t buf, uint8_t v, uint64_t len)
{
    const uint8_t *p = (const uint8_t *)buf;

    for (uint64_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

static void print_identity(void)
{
    char id[21] = { 0 };

    if (do_sync(T_GET_ID, 0, DATA_BASE, 20) == 0) {
        memcpy(id, (void *)DATA_BASE, 20);
    }
    tg_printf("TG blk device capacity=%lu seg_max=%u qsize=%u features=0x%lx id=%s\n",
              b.capacity, b.seg_max, b.qsize, b.features, id);
}

/* ---- modes ---- */
static void verify_round(uint8_t pattern)
{
    uint64_t bs = tg_arg_u64("tg.blk.bs", 4096), count = tg_arg_u64("tg.blk.count", 64);
    uint64_t offset = tg_arg_u64("tg.blk.offset", 0);
    uint64_t sector = offset / 512;

    if (!bs || bs % 512 || bs > (1UL << 20) || offset % 512 ||
        sector + count * (bs / 512) > b.capacity) {
        tg_fail("blk: bad tg.blk.bs/count/offset for this disk");
    }
    for (uint64_t k = 0; k < count; k++) {
        fill(DATA_BASE, (uint8_t)(pattern + k), bs);
        uint8_t st = do_sync(T_OUT, sector + k * (bs / 512), DATA_BASE, (uint32_t)bs);
        if (st != 0) {
            tg_fail("blk: write block %lu status=%u", k, st);
        }
    }
    tg_printf("TG blk write blocks=%lu bs=%lu offset=%lu pattern=0x%02x\n",
              count, bs, offset, pattern);
    if (b.features & (1UL << F_FLUSH)) {
        uint8_t st = do_sync(T_FLUSH, 0, 0, 0);
        if (st != 0) {
            tg_fail("blk: flush status=%u", st);
        }
        tg_printf("TG blk flush ok\n");
    }
    for (uint64_t k = 0; k < count; k++) {
        fill(DATA_BASE, 0, bs);
        uint8_t st = do_sync(T_IN, sector + k * (bs / 512), DATA_BASE, (uint32_t)bs);
        if (st != 0 || !check(DATA_BASE, (uint8_t)(pattern + k), bs)) {
            tg_fail("blk: verify block %lu status=%u", k, st);
        }
    }
    tg_printf("TG blk verify ok blocks=%lu\n", count);
}

static void mode_verify(void)
{
    uint8_t pattern = (uint8_t)tg_arg_u64("tg.blk.pattern", 0x5a);
    uint64_t rounds = tg_arg_u64("tg.blk.rounds", 1);

    for (uint64_t r = 0; !rounds || r < rounds; r++) {
        verify_round((uint8_t)(pattern + r));
        if (rounds != 1) {
            tg_printf("TG blk round=%lu ok\n", r + 1);
        }
    }
    if (tg_arg_u64("tg.blk.hold", 0)) {
        tg_printf("TG blk holding\n");
        for (;;) {
            tg_wait_irq();
        }
    }
}

static void mode_discard(void)
{
    uint64_t bs = tg_arg_u64("tg.blk.bs", 4096), count = tg_arg_u64("tg.blk.count", 64);
    uint64_t offset = tg_arg_u64("tg.blk.offset", 0);
    const char *op = tg_arg_str("tg.blk.op", "discard");
    bool zeroes = !strcmp(op, "zeroes");
    struct { uint64_t sector; uint32_t num, flags; } *seg = (void *)DATA_BASE;
    uint8_t st;

    verify_round((uint8_t)tg_arg_u64("tg.blk.pattern", 0x5a));
    seg->sector = offset / 512;
    seg->num = (uint32_t)(count * bs / 512);
    seg->flags = zeroes && tg_arg_u64("tg.blk.unmap", 0) ? 1 : 0;
    st = do_sync(zeroes ? T_WRITE_ZEROES : T_DISCARD, 0, DATA_BASE, 16);
    if (st == 0) {
        st = do_sync(T_FLUSH, 0, 0, 0);
    }
    fill(DATA_BASE, 0xee, bs);
    if (st == 0) {
        st = do_sync(T_IN, offset / 512, DATA_BASE, (uint32_t)bs);
    }
    tg_printf("TG blk discard op=%s status=%u first=0x%02x\n", op, st,
              *(uint8_t *)DATA_BASE);
}

static void mode_readonly(void)
{
    uint8_t st;

    fill(DATA_BASE, 0xee, 4096);
    st = do_sync(T_OUT, 0, DATA_BASE, 4096);
    tg_printf("TG blk readonly write status=%u ro_feature=%d\n", st,
              !!(b.features & (1UL << F_RO)));
    if (st != 1) {
        tg_fail("blk: write to a read-only drive returned status %u", st);
    }
    st = do_sync(T_IN, 0, DATA_BASE, 4096);
    if (st != 0) {
        tg_fail("blk: read from a read-only drive returned status %u", st);
    }
    tg_printf("TG blk readonly read status=0 first=0x%02x\n", *(uint8_t *)DATA_BASE);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15UL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mode_iops(void)
{
    uint64_t bs = tg_arg_u64("tg.blk.bs", 4096), qd = tg_arg_u64("tg.blk.qd", 1);
    uint64_t secs = tg_arg_u64("tg.blk.seconds", 2);
    const char *rw = tg_arg_str("tg.blk.rw", "randread");
    bool write = !strcmp(rw, "randwrite") || !strcmp(rw, "seqwrite");
    bool seq = !strcmp(rw, "seqread") || !strcmp(rw, "seqwrite");
    uint64_t blocks = b.capacity / (bs / 512), next = 0, done = 0;
    uint64_t ram_end = tg_ram_end(DATA_BASE);

    if (!bs || bs % 512 || bs > (4UL << 20) || !qd || qd > b.qsize / 3 || qd > 64 ||
        !blocks || (!write && !seq && strcmp(rw, "randread"))) {
        tg_fail("blk: bad iops arguments");
    }
    if (ram_end && DATA_BASE + qd * bs > ram_end) {
        tg_fail("blk: qd*bs does not fit in RAM");
    }
    fill(DATA_BASE, 0xa5, qd * bs);
    uint64_t start = tg_now_ticks(), end = start + secs * tg_hz();
    for (unsigned s = 0; s < qd; s++) {
        uint64_t blk = seq ? next++ % blocks : rng() % blocks;
        submit(s, write ? T_OUT : T_IN, blk * (bs / 512), DATA_BASE + s * bs, (uint32_t)bs);
    }
    for (;;) {
        uint32_t len;
        int s = reap(&len);
        if (s < 0) {
            tg_fail("blk: request timed out or device needs reset");
        }
        if (*slot_status((unsigned)s) != 0) {
            tg_fail("blk: I/O status %u", *slot_status((unsigned)s));
        }
        done++;
        if (tg_now_ticks() >= end) {
            break;
        }
        uint64_t blk = seq ? next++ % blocks : rng() % blocks;
        submit((unsigned)s, write ? T_OUT : T_IN, blk * (bs / 512),
               DATA_BASE + (uint64_t)s * bs, (uint32_t)bs);
    }
    uint64_t ticks = tg_now_ticks() - start;
    uint64_t iops = done * tg_hz() / (ticks ? ticks : 1);
    tg_printf("TG blk iops=%lu mbps=%lu rw=%s bs=%lu qd=%lu requests=%lu\n",
              iops, iops * bs / 1000000, rw, bs, qd, done);
    /* Drain the rest so the device is idle at exit. */
    for (uint64_t left = qd - 1; left; left--) {
        uint32_t len;
        if (reap(&len) < 0) {
            break;
        }
    }
}

/* ---- hostile cases ---- */
enum outcome { NEEDS_RESET, IOERR };

/* Waits for the device to react to a bad request: NEEDS_RESET or a completion. */
static enum outcome await_outcome(const char *name, enum outcome want)
{
    uint32_t len;
    int s = reap(&len);
    uint8_t st = dev_status();

    if (s < 0 && (st & S_NEEDS_RESET)) {
        tg_printf("TG blk hostile %s needs_reset status=0x%02x\n", name, st);
        if (want != NEEDS_RESET) {
            tg_fail("blk: hostile %s wanted a failed request", name);
        }
        return NEEDS_RESET;
    }
    if (s >= 0 && *slot_status((unsigned)s) == 1) {
        tg_printf("TG blk hostile %s ioerr\n", name);
        if (want != IOERR) {
            tg_fail("blk: hostile %s wanted NEEDS_RESET", name);
        }
        return IOERR;
    }
    tg_fail("blk: hostile %s: no reaction (slot %d status 0x%02x)", name, s, st);
}

static void recover(const char *name)
{
    device_init();
    fill(DATA_BASE, 0x3c, 4096);
    if (do_sync(T_OUT, 8, DATA_BASE, 4096) != 0) {
        tg_fail("blk: hostile %s: write after reset failed", name);
    }
    fill(DATA_BASE, 0, 4096);
    if (do_sync(T_IN, 8, DATA_BASE, 4096) != 0 || !check(DATA_BASE, 0x3c, 4096)) {
        tg_fail("blk: hostile %s: read after reset failed", name);
    }
    tg_printf("TG blk hostile %s recovered\n", name);
}

static void chain_hdr(uint16_t i, uint32_t type, uint16_t flags, uint16_t next)
{
    struct req_hdr *h = (struct req_hdr *)HDR_BASE;

    h->type = type;
    h->sector = 0;
    b.desc[i] = (struct desc){ HDR_BASE, 16, flags, next };
}

static void hostile_loop(void)
{
    chain_hdr(0, T_IN, D_NEXT, 1);
    b.desc[1] = (struct desc){ DATA_BASE, 512, D_NEXT | D_WRITE, 2 };
    b.desc[2] = (struct desc){ DATA_BASE + 512, 512, D_NEXT | D_WRITE, 1 };
    publish(0);
    await_outcome("loop", NEEDS_RESET);
}

static void hostile_outside_ram(void)
{
    chain_hdr(0, T_IN, D_NEXT, 1);
    b.desc[1] = (struct desc){ 0x7ff000000000UL, 4096, D_NEXT | D_WRITE, 2 };
    b.desc[2] = (struct desc){ STATUS_BASE, 1, D_WRITE, 0 };
    publish(0);
    await_outcome("outside_ram", NEEDS_RESET);
}

static void hostile_seg_max(void)
{
    unsigned n = b.seg_max + 2;                     /* data segments */

    if (n + 2 > b.qsize) {
        tg_printf("TG blk hostile seg_max skipped\n");
        return;
    }
    *slot_status(0) = 0xff;
    chain_hdr(0, T_IN, D_NEXT, 1);
    for (unsigned i = 1; i <= n; i++) {
        b.desc[i] = (struct desc){ DATA_BASE + 512UL * i, 512, D_NEXT | D_WRITE,
                                   (uint16_t)(i + 1) };
    }
    b.desc[n + 1] = (struct desc){ STATUS_BASE, 1, D_WRITE, 0 };
    publish(0);
    await_outcome("seg_max", IOERR);
}

static void hostile_direction(void)
{
    /* Everything device-writable: no readable header at all. */
    chain_hdr(0, T_IN, D_NEXT | D_WRITE, 1);
    b.desc[1] = (struct desc){ STATUS_BASE, 1, D_WRITE, 0 };
    publish(0);
    await_outcome("direction", NEEDS_RESET);
}

static void hostile_readable_after_writable(void)
{
    chain_hdr(0, T_OUT, D_NEXT, 1);
    b.desc[1] = (struct desc){ STATUS_BASE, 1, D_NEXT | D_WRITE, 2 };
    b.desc[2] = (struct desc){ DATA_BASE, 512, 0, 0 };
    publish(0);
    await_outcome("write_then_read", NEEDS_RESET);
}

static void hostile_indirect(void)
{
    volatile struct desc *t = (volatile struct desc *)BADDESC_BASE;

    if (!(b.features & (1UL << F_INDIRECT))) {
        tg_printf("TG blk hostile indirect skipped\n");
        return;
    }
    t[0] = (struct desc){ BADDESC_BASE, 32, D_INDIRECT, 0 };    /* nested */
    b.desc[0] = (struct desc){ BADDESC_BASE, 32, D_INDIRECT, 0 };
    publish(0);
    await_outcome("indirect_nested", NEEDS_RESET);
}

static void hostile_avail_jump(void)
{
    b.avail[1] = (uint16_t)(b.avail_idx + 1000);
    b.avail_idx += 1000;
    kick();
    await_outcome("avail_jump", NEEDS_RESET);
}

/* Queue setups the device must refuse when the driver enables them. */
static void hostile_queue_setup(const char *name, uint16_t size, uint64_t desc_gpa)
{
    device_reset();
    negotiate();
    setup_queue(size, desc_gpa);
    set_status(S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    uint8_t st = dev_status();
    uint16_t enabled = tg_mmio_read16(b.common + C_QENABLE);
    tg_printf("TG blk hostile %s status=0x%02x enabled=%u\n", name, st, enabled);
    if (!(st & S_NEEDS_RESET) || enabled) {
        tg_fail("blk: hostile %s accepted", name);
    }
}

static void mode_hostile(void)
{
    static void (*const cases[])(void) = {
        hostile_loop, hostile_outside_ram, hostile_seg_max, hostile_direction,
        hostile_readable_after_writable, hostile_indirect, hostile_avail_jump,
    };
    static const char *const names[] = {
        "loop", "outside_ram", "seg_max", "direction", "write_then_read",
        "indirect_nested", "avail_jump",
    };
    unsigned n = 0;

    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++, n++) {
        cases[i]();
        recover(names[i]);
    }
    hostile_queue_setup("queue_size", 100, RING_BASE);
    recover("queue_size");
    hostile_queue_setup("queue_addr", 256, 0x7ff000000000UL);
    recover("queue_addr");
    tg_printf("TG blk hostile done cases=%u\n", n + 2);
}

/* ---- MSI-X: completions raise vector TG_VEC_IRQ + MSIX_SLOT ---- */
#define MSIX_SLOT 5

static uint64_t find_msix_table(void)
{
    for (uint8_t p = cfg_read8(0x34) & 0xfc; p; p = cfg_read8(p + 1) & 0xfc) {
        if (cfg_read8(p) == 0x11) {
            uint32_t t = cfg_read32(p + 4);
            uint16_t ctrl = cfg_read16(p + 2);
            /* enable, function unmasked */
            cfg_write32(p, (uint32_t)(ctrl | 0x8000) << 16 | cfg_read16(p));
            return bar_addr(t & 7) + (t & ~7u);
        }
    }
    tg_fail("blk: no MSI-X capability");
}

static void mode_msix(void)
{
    uint64_t table = find_msix_table(), count = tg_arg_u64("tg.blk.count", 64);
    uint64_t irqs0 = tg_irq_counts[MSIX_SLOT];

    /* entry 0: this CPU, vector TG_VEC_IRQ + MSIX_SLOT, unmasked */
    tg_mmio_write32(table, (uint32_t)(TG_LAPIC_BASE | (uint64_t)tg_lapic_id() << 12));
    tg_mmio_write32(table + 4, 0);
    tg_mmio_write32(table + 8, TG_VEC_IRQ + MSIX_SLOT);
    tg_mmio_write32(table + 12, 0);
    b.qvector = 0;
    device_init();
    if (tg_mmio_read16(b.common + C_QMSIX) != 0) {
        tg_fail("blk: msix: device refused vector 0 for queue 0");
    }
    for (uint64_t k = 0; k < 2 * count; k++) {
        bool write = k < count;
        uint64_t deadline = tg_now_ticks() + 5 * tg_hz() + 1;

        if (b.event_idx) {
            b.avail[2 + b.qsize] = b.last_used;   /* interrupt for the next one */
        }
        fill(DATA_BASE, write ? (uint8_t)(0x90 + k) : 0, 4096);
        submit(0, write ? T_OUT : T_IN, (k % count) * 8, DATA_BASE, 4096);
        /* Wait for the completion and for its message: submitting the next
         * request while this one's MSI is still in flight would let the two
         * coalesce in the LAPIC (one vector, IRR already set), as on hardware. */
        while (used_idx() == b.last_used || tg_irq_counts[MSIX_SLOT] - irqs0 < k + 1) {
            if (tg_now_ticks() > deadline) {
                tg_fail("blk: msix: request %lu: used=%u irqs=%lu", k, used_idx(),
                        tg_irq_counts[MSIX_SLOT] - irqs0);
            }
            tg_wait_irq();
        }
        b.last_used++;
        if (*slot_status(0) != 0 || (!write && !check(DATA_BASE, (uint8_t)(0x90 + k - count), 4096))) {
            tg_fail("blk: msix: request %lu failed", k);
        }
    }
    uint64_t irqs = tg_irq_counts[MSIX_SLOT] - irqs0;
    tg_printf("TG blk msix requests=%lu irqs=%lu vector=0x%x\n", 2 * count, irqs,
              TG_VEC_IRQ + MSIX_SLOT);
    if (irqs != 2 * count) {
        tg_fail("blk: msix: %lu interrupts for %lu requests", irqs, 2 * count);
    }
}

static void blk_bsp(void)
{
    const char *mode = tg_arg_str("tg.blk.mode", "verify");
    uint64_t ram_end = tg_ram_end(RING_BASE);

    if (ram_end && ram_end < DATA_BASE + (1UL << 20)) {
        tg_fail("blk: needs RAM up to 18 MiB");
    }
    b.ecam = tg_arg_u64("tg.blk.ecam", 0xe0000000UL);
    b.qvector = NO_VECTOR;
    if (!find_device()) {
        tg_fail("blk: no virtio-blk-pci (1af4:1042 or 1af4:1001) on bus 0");
    }
    assign_bars();
    find_caps();
    device_init();
    print_identity();
    if (!strcmp(mode, "verify")) {
        mode_verify();
    } else if (!strcmp(mode, "readonly")) {
        mode_readonly();
    } else if (!strcmp(mode, "discard")) {
        mode_discard();
    } else if (!strcmp(mode, "iops")) {
        mode_iops();
    } else if (!strcmp(mode, "msix")) {
        mode_msix();
    } else if (!strcmp(mode, "hostile")) {
        mode_hostile();
    } else {
        tg_fail("blk: unknown tg.blk.mode '%s'", mode);
    }
    device_reset();
    tg_exit(0);
}

TG_WORKLOAD(blk, .name = "blk", .bsp = blk_bsp);
