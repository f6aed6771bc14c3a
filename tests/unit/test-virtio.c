/*
 * Unit tests for virtio-blk over PCI without KVM: a heap-backed GuestMemory,
 * a PCI bus on private I/O buses, a raw image in a temp dir, and a driver
 * written here that programs the BARs, negotiates features, builds rings and
 * kicks through the notify region (the transport then wakes its I/O thread).
 * Covers request types, config space, feature negotiation, NEEDS_RESET on
 * hostile chains and queue setups, read-only drives, MSI-X masking and
 * pending bits, INTx with the ISR, indirect descriptors and event idx, and
 * (on a qcow2 image) one crash-safe bitmap sync per batch of writes.
 */
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/kvm/kvm.h"
#include "block/write-intent.h"
#include "hw/block/virtio-blk.h"
#include "hw/pci/pci.h"
#include "softmmu/runstate.h"
#include "tern/error.h"
#include "test-block-fault.h"

#define RAM_SIZE   (4 * MiB)
#define BAR_ADDR   0xc0000000ULL
#define MSIX_ADDR  0xc0100000ULL
#define DESC_GPA   0x10000ULL
#define AVAIL_GPA  0x11000ULL
#define USED_GPA   0x12000ULL
#define HDR_GPA    0x20000ULL
#define STATUS_GPA 0x21000ULL
#define DATA_GPA   0x100000ULL
#define QSIZE      64
#define IMG_SIZE   (1 * MiB)

/* The VM the next fixture's ioeventfds go to (NULL: none, as without KVM). */
static KvmState *fixture_kvm;

typedef struct Fixture {
    GuestMemory mem;
    uint8_t *ram;
    IoBus *pio, *mmio;
    PciBus *bus;
    DeviceList *devices;
    char *dir, *img;
    Drive *drive;
    VirtioBlk *vb;
    VirtioPci *vp;
    uint16_t avail_idx, last_used;
    GMutex msi_lock;
    GArray *msis;              /* uint32_t data values delivered */
} Fixture;

static void record_msi(void *opaque, uint64_t addr, uint32_t data)
{
    Fixture *f = opaque;

    g_mutex_lock(&f->msi_lock);
    g_array_append_val(f->msis, data);
    g_mutex_unlock(&f->msi_lock);
}

static unsigned msi_count(Fixture *f)
{
    unsigned n;

    g_mutex_lock(&f->msi_lock);
    n = f->msis->len;
    g_mutex_unlock(&f->msi_lock);
    return n;
}

static void *gpa(Fixture *f, uint64_t a)
{
    return f->ram + a;
}

static void cfg_write(Fixture *f, unsigned off, uint32_t v, unsigned size)
{
    pci_bus_config_write(f->bus, 0, f->vp->pci.devfn, off, v, size);
}

static uint32_t cfg_read(Fixture *f, unsigned off, unsigned size)
{
    return pci_bus_config_read(f->bus, 0, f->vp->pci.devfn, off, size);
}

static void common_w(Fixture *f, unsigned off, uint64_t v, unsigned size)
{
    g_assert_true(iobus_write(f->mmio, BAR_ADDR + off, v, size));
}

static uint64_t common_r(Fixture *f, unsigned off, unsigned size)
{
    uint64_t v = 0;

    g_assert_true(iobus_read(f->mmio, BAR_ADDR + off, &v, size));
    return v;
}

/* A device on a fresh image of the given format and size. */
static void setup_image(Fixture *f, const char *fmt, uint64_t size,
                        const char *drive_opts, unsigned queues)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *spec = NULL;
    VirtioBlkOptions o = { .serial = "tern-serial-1", .num_queues = queues };

    memset(f, 0, sizeof(*f));
    f->ram = g_malloc0(RAM_SIZE);
    f->mem.regions[0] = (GuestRegion){ .gpa = 0, .size = RAM_SIZE, .hva = f->ram };
    f->mem.nr_regions = 1;
    f->mem.fd = -1;
    f->mem.ram_size = RAM_SIZE;
    f->pio = iobus_new("pio");
    f->mmio = iobus_new("mmio");
    f->bus = pci_bus_new(f->pio, f->mmio);
    f->dir = g_dir_make_tmp("test-virtio-XXXXXX", NULL);
    f->img = g_build_filename(f->dir, "disk.img", NULL);
    g_assert_true(bdrv_create(fmt, f->img, size, NULL, &err));
    spec = g_strdup_printf("file=%s,format=%s,if=none,id=d0%s", f->img, fmt,
                           drive_opts);
    f->drive = drive_open(spec, 0, &err);
    g_assert_no_error(err);
    o.mem = &f->mem;
    o.kvm = fixture_kvm;
    f->vb = virtio_blk_new(f->drive, &o, &err);
    g_assert_no_error(err);
    f->vp = virtio_blk_transport(f->vb);
    g_mutex_init(&f->msi_lock);
    f->msis = g_array_new(false, false, sizeof(uint32_t));
    f->vp->msix.signal = record_msi;
    f->vp->msix.signal_opaque = f;
    f->devices = device_list_new();
    g_assert_true(virtio_pci_plug(f->vp, f->bus, -1, f->devices, &err));
    /* BAR 4 (64-bit) for virtio, BAR 1 for MSI-X, then decode. */
    cfg_write(f, 0x10 + 4 * VIRTIO_PCI_BAR, (uint32_t)BAR_ADDR, 4);
    cfg_write(f, 0x14 + 4 * VIRTIO_PCI_BAR, 0, 4);
    cfg_write(f, 0x10 + 4 * VIRTIO_PCI_MSIX_BAR, (uint32_t)MSIX_ADDR, 4);
    cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

static void setup(Fixture *f, const char *drive_opts, unsigned queues)
{
    setup_image(f, "raw", IMG_SIZE, drive_opts, queues);
}

static void teardown(Fixture *f)
{
    virtio_pci_unplug(f->vp, f->devices);
    g_assert_cmpuint(device_list_count(f->devices), ==, 0);
    device_list_free(f->devices);
    virtio_blk_free(f->vb);
    drive_free(f->drive);
    pci_bus_free(f->bus);
    iobus_free(f->mmio);
    iobus_free(f->pio);
    g_remove(f->img);
    g_rmdir(f->dir);
    g_free(f->img);
    g_free(f->dir);
    g_free(f->ram);
    g_array_unref(f->msis);
    g_mutex_clear(&f->msi_lock);
}

static uint64_t device_features(Fixture *f)
{
    common_w(f, VIRTIO_COMMON_DFSELECT, 0, 4);
    uint64_t lo = common_r(f, VIRTIO_COMMON_DF, 4);
    common_w(f, VIRTIO_COMMON_DFSELECT, 1, 4);
    return lo | common_r(f, VIRTIO_COMMON_DF, 4) << 32;
}

static void set_features(Fixture *f, uint64_t feat)
{
    common_w(f, VIRTIO_COMMON_GFSELECT, 0, 4);
    common_w(f, VIRTIO_COMMON_GF, (uint32_t)feat, 4);
    common_w(f, VIRTIO_COMMON_GFSELECT, 1, 4);
    common_w(f, VIRTIO_COMMON_GF, feat >> 32, 4);
}

static uint8_t status(Fixture *f)
{
    return (uint8_t)common_r(f, VIRTIO_COMMON_STATUS, 1);
}

static void program_queue(Fixture *f, uint16_t size, uint64_t desc, uint16_t vector)
{
    common_w(f, VIRTIO_COMMON_Q_SELECT, 0, 2);
    common_w(f, VIRTIO_COMMON_Q_SIZE, size, 2);
    common_w(f, VIRTIO_COMMON_Q_MSIX, vector, 2);
    common_w(f, VIRTIO_COMMON_Q_DESCLO, (uint32_t)desc, 4);
    common_w(f, VIRTIO_COMMON_Q_DESCHI, desc >> 32, 4);
    common_w(f, VIRTIO_COMMON_Q_AVAILLO, AVAIL_GPA, 4);
    common_w(f, VIRTIO_COMMON_Q_AVAILHI, 0, 4);
    common_w(f, VIRTIO_COMMON_Q_USEDLO, USED_GPA, 4);
    common_w(f, VIRTIO_COMMON_Q_USEDHI, 0, 4);
    common_w(f, VIRTIO_COMMON_Q_ENABLE, 1, 2);
}

/* Reset, negotiate 'extra' on top of VERSION_1|FLUSH, queue 0, DRIVER_OK. */
static void driver_init(Fixture *f, uint64_t extra, uint16_t vector)
{
    uint64_t want = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH | extra;

    common_w(f, VIRTIO_COMMON_STATUS, 0, 1);
    g_assert_cmpuint(status(f), ==, 0);
    memset(f->ram + DESC_GPA, 0, 0x3000);
    f->avail_idx = f->last_used = 0;
    common_w(f, VIRTIO_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    g_assert_cmphex(device_features(f) & want, ==, want);
    set_features(f, want);
    common_w(f, VIRTIO_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
             VIRTIO_STATUS_FEATURES_OK, 1);
    g_assert_cmphex(status(f) & VIRTIO_STATUS_FEATURES_OK, ==, VIRTIO_STATUS_FEATURES_OK);
    program_queue(f, QSIZE, DESC_GPA, vector);
    common_w(f, VIRTIO_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
}

static void set_desc(Fixture *f, uint64_t table, unsigned i, uint64_t addr,
                     uint32_t len, uint16_t flags, uint16_t next)
{
    VirtqDesc d = { addr, len, flags, next };

    memcpy(gpa(f, table + 16ULL * i), &d, sizeof(d));
}

static void publish(Fixture *f, uint16_t head)
{
    uint16_t *avail = gpa(f, AVAIL_GPA);

    avail[2 + f->avail_idx % QSIZE] = head;
    __atomic_store_n(&avail[1], ++f->avail_idx, __ATOMIC_RELEASE);
    common_w(f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
}

static uint16_t used_idx(Fixture *f)
{
    return __atomic_load_n((uint16_t *)gpa(f, USED_GPA + 2), __ATOMIC_ACQUIRE);
}

/* Waits up to 5 s for a completion (true) or NEEDS_RESET (false). */
static bool wait_used(Fixture *f, uint32_t *len)
{
    for (int i = 0; i < 5000; i++) {
        if (used_idx(f) != f->last_used) {
            uint32_t e[2];

            memcpy(e, gpa(f, USED_GPA + 4 + 8 * (f->last_used % QSIZE)), 8);
            f->last_used++;
            if (len) {
                *len = e[1];
            }
            return true;
        }
        if (status(f) & VIRTIO_STATUS_NEEDS_RESET) {
            return false;
        }
        g_usleep(1000);
    }
    g_assert_not_reached();
}

/* header, optional data, status: descriptors 0..2 of the main table. */
static uint8_t request(Fixture *f, uint32_t type, uint64_t sector, uint32_t len,
                       uint32_t *used_len)
{
    uint64_t hdr[2] = { type, sector };
    uint8_t *st = gpa(f, STATUS_GPA);
    bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

    memcpy(gpa(f, HDR_GPA), hdr, 16);
    *st = 0xff;
    set_desc(f, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, len ? 1 : 2);
    set_desc(f, DESC_GPA, 1, DATA_GPA, len,
             VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0), 2);
    set_desc(f, DESC_GPA, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
    publish(f, 0);
    g_assert_true(wait_used(f, used_len));
    return *st;
}

/* A bus reset (system reset) turns the BAR's decoding off: the notify
 * ioeventfds leave its address, so a BAR mapped there next gets its own
 * writes; programmed again, they come back. */
static void test_bus_reset_takes_ioeventfds_down(void)
{
    g_autoptr(GError) err = NULL;
    Fixture f;

    fixture_kvm = kvm_init(&err);
    if (!fixture_kvm) {
        g_test_skip(err->message);
        return;
    }
    setup(&f, "", 1);
    g_assert_cmphex(f.vp->ioeventfd_base, ==, BAR_ADDR);
    pci_bus_reset(f.bus);
    g_assert_cmphex(f.vp->ioeventfd_base, ==, 0);
    cfg_write(&f, 0x10 + 4 * VIRTIO_PCI_BAR, (uint32_t)BAR_ADDR, 4);
    cfg_write(&f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    g_assert_cmphex(f.vp->ioeventfd_base, ==, BAR_ADDR);
    teardown(&f);
    kvm_destroy(fixture_kvm);
    fixture_kvm = NULL;
}

static void test_rw_flush_id(void)
{
    Fixture f;
    uint32_t used_len;
    uint8_t buf[8192];

    setup(&f, "", 1);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    memset(gpa(&f, DATA_GPA), 0xab, 8192);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_OUT, 8, 8192, &used_len), ==, 0);
    g_assert_cmpuint(used_len, ==, 1);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_FLUSH, 0, 0, NULL), ==, 0);
    memset(gpa(&f, DATA_GPA), 0, 8192);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 8, 8192, &used_len), ==, 0);
    g_assert_cmpuint(used_len, ==, 8193);
    g_assert_cmpuint(((uint8_t *)gpa(&f, DATA_GPA))[8191], ==, 0xab);
    g_assert_true(bdrv_pread(drive_node(f.drive), 4096, buf, sizeof(buf), NULL));
    g_assert_cmpuint(buf[0], ==, 0xab);
    g_assert_cmpuint(buf[8191], ==, 0xab);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_GET_ID, 0, 20, &used_len), ==, 0);
    g_assert_cmpstr(gpa(&f, DATA_GPA), ==, "tern-serial-1");
    /* beyond the end, unaligned length, unknown type */
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, IMG_SIZE / 512 - 1, 1024, NULL), ==, 1);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, NULL), ==, 1);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 100, NULL), ==, 1);
    g_assert_cmpuint(request(&f, 99, 0, 0, NULL), ==, 2);
    g_assert_cmpuint(virtio_blk_failed_requests(f.vb), ==, 4);
    teardown(&f);
}

static void test_discard_write_zeroes(void)
{
    Fixture f;
    uint8_t buf[512];
    struct { uint64_t sector; uint32_t num, flags; } seg = { 2, 1, 0 };

    setup(&f, "", 1);
    driver_init(&f, 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES,
                VIRTIO_NO_VECTOR);
    memset(gpa(&f, DATA_GPA), 0x11, 4096);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_OUT, 0, 4096, NULL), ==, 0);
    memcpy(gpa(&f, DATA_GPA), &seg, sizeof(seg));
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, NULL), ==, 0);
    g_assert_true(bdrv_pread(drive_node(f.drive), 1024, buf, 512, NULL));
    g_assert_cmpuint(buf[0], ==, 0);
    g_assert_cmpuint(buf[511], ==, 0);
    g_assert_true(bdrv_pread(drive_node(f.drive), 512, buf, 512, NULL));
    g_assert_cmpuint(buf[0], ==, 0x11);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_DISCARD, 0, 16, NULL), ==, 0);
    seg.flags = 1;                  /* unmap is not allowed with discard */
    memcpy(gpa(&f, DATA_GPA), &seg, sizeof(seg));
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_DISCARD, 0, 16, NULL), ==, 2);
    seg = (typeof(seg)){ IMG_SIZE / 512, 1, 0 };   /* past the end */
    memcpy(gpa(&f, DATA_GPA), &seg, sizeof(seg));
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, NULL), ==, 1);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_DISCARD, 0, 32, NULL), ==, 2);
    teardown(&f);
}

static void test_config_space(void)
{
    Fixture f;

    setup(&f, "", 2);
    g_assert_cmphex(cfg_read(&f, 0, 4), ==, 0x10421af4);
    g_assert_cmphex(cfg_read(&f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, !=, 0);
    g_assert_cmpuint(common_r(&f, VIRTIO_PCI_DEVICE_OFF, 8), ==, IMG_SIZE / 512);
    g_assert_cmpuint(common_r(&f, VIRTIO_PCI_DEVICE_OFF + 0x0c, 4), ==, VIRTIO_BLK_SEG_MAX);
    g_assert_cmpuint(common_r(&f, VIRTIO_PCI_DEVICE_OFF + 0x14, 4), ==, 512);
    g_assert_cmpuint(common_r(&f, VIRTIO_PCI_DEVICE_OFF + 0x22, 2), ==, 2);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_NUMQ, 2), ==, 2);
    g_assert_cmphex(device_features(&f) & (1ULL << VIRTIO_BLK_F_MQ), !=, 0);
    g_assert_cmphex(device_features(&f) & (1ULL << VIRTIO_BLK_F_RO), ==, 0);
    /* a queue beyond num_queues reads as size 0 */
    common_w(&f, VIRTIO_COMMON_Q_SELECT, 5, 2);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_Q_SIZE, 2), ==, 0);
    /* vendor capabilities: walk the list, find all four types */
    unsigned seen = 0;
    for (unsigned p = cfg_read(&f, PCI_CAPABILITY_LIST, 1); p; p = cfg_read(&f, p + 1, 1)) {
        if (cfg_read(&f, p, 1) == PCI_CAP_ID_VNDR) {
            seen |= 1u << cfg_read(&f, p + 3, 1);
            g_assert_cmpuint(cfg_read(&f, p + 4, 1), ==, VIRTIO_PCI_BAR);
        }
    }
    g_assert_cmphex(seen, ==, 0x1e);
    teardown(&f);
}

static void test_features_ok_refused(void)
{
    Fixture f;

    setup(&f, "", 1);
    common_w(&f, VIRTIO_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    set_features(&f, 1ULL << VIRTIO_BLK_F_FLUSH);          /* no VERSION_1 */
    common_w(&f, VIRTIO_COMMON_STATUS, 0xb, 1);
    g_assert_cmphex(status(&f) & VIRTIO_STATUS_FEATURES_OK, ==, 0);
    set_features(&f, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 60);   /* not offered */
    common_w(&f, VIRTIO_COMMON_STATUS, 0xb, 1);
    g_assert_cmphex(status(&f) & VIRTIO_STATUS_FEATURES_OK, ==, 0);
    teardown(&f);
}

/* A hostile chain must end in NEEDS_RESET; after a reset I/O works again. */
static void expect_needs_reset_then_recover(Fixture *f)
{
    g_assert_false(wait_used(f, NULL));
    g_assert_cmphex(status(f) & VIRTIO_STATUS_NEEDS_RESET, !=, 0);
    driver_init(f, 0, VIRTIO_NO_VECTOR);
    g_assert_cmphex(status(f) & VIRTIO_STATUS_NEEDS_RESET, ==, 0);
    g_assert_cmpuint(request(f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
}

static void test_hostile_chains(void)
{
    Fixture f;
    uint64_t hdr[2] = { VIRTIO_BLK_T_IN, 0 };

    setup(&f, "", 1);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    memcpy(gpa(&f, HDR_GPA), hdr, 16);
    /* loop 1 -> 2 -> 1 */
    set_desc(&f, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(&f, DESC_GPA, 1, DATA_GPA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    set_desc(&f, DESC_GPA, 2, STATUS_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    /* buffer outside RAM, and straddling its end */
    set_desc(&f, DESC_GPA, 1, RAM_SIZE - 256, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    set_desc(&f, DESC_GPA, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    /* next index beyond the queue */
    set_desc(&f, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE + 3);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    /* head beyond the queue */
    publish(&f, QSIZE);
    expect_needs_reset_then_recover(&f);
    /* readable after writable */
    set_desc(&f, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(&f, DESC_GPA, 1, STATUS_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    set_desc(&f, DESC_GPA, 2, DATA_GPA, 512, 0, 0);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    /* no status byte (nothing device-writable) */
    set_desc(&f, DESC_GPA, 0, HDR_GPA, 16, 0, 0);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    /* indirect: bad length, nested, with NEXT */
    set_desc(&f, DESC_GPA, 0, 0x30000, 24, VIRTQ_DESC_F_INDIRECT, 0);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    set_desc(&f, 0x30000, 0, 0x30000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    set_desc(&f, DESC_GPA, 0, 0x30000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    set_desc(&f, DESC_GPA, 0, 0x30000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    publish(&f, 0);
    expect_needs_reset_then_recover(&f);
    /* available index jumps past the queue size */
    ((uint16_t *)gpa(&f, AVAIL_GPA))[1] = 500;
    common_w(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
    expect_needs_reset_then_recover(&f);
    teardown(&f);
}

static void test_seg_max(void)
{
    Fixture f;
    uint64_t hdr[2] = { VIRTIO_BLK_T_IN, 0 };
    unsigned n = VIRTIO_BLK_SEG_MAX + 1;
    uint64_t table = 0x40000;

    setup(&f, "", 1);
    driver_init(&f, 1ULL << VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_NO_VECTOR);
    memcpy(gpa(&f, HDR_GPA), hdr, 16);
    *(uint8_t *)gpa(&f, STATUS_GPA) = 0xff;
    set_desc(&f, table, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    for (unsigned i = 1; i <= n; i++) {
        set_desc(&f, table, i, DATA_GPA + 512 * i, 512,
                 VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)(i + 1));
    }
    set_desc(&f, table, n + 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
    set_desc(&f, DESC_GPA, 0, table, 16 * (n + 2), VIRTQ_DESC_F_INDIRECT, 0);
    publish(&f, 0);
    g_assert_true(wait_used(&f, NULL));
    g_assert_cmpuint(*(uint8_t *)gpa(&f, STATUS_GPA), ==, VIRTIO_BLK_S_IOERR);
    /* the same through an indirect table within seg_max succeeds */
    set_desc(&f, table, n - 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
    set_desc(&f, DESC_GPA, 0, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
    publish(&f, 0);
    g_assert_true(wait_used(&f, NULL));
    g_assert_cmpuint(*(uint8_t *)gpa(&f, STATUS_GPA), ==, VIRTIO_BLK_S_OK);
    teardown(&f);
}

static void test_bad_queue_setup(void)
{
    Fixture f;

    setup(&f, "", 1);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    common_w(&f, VIRTIO_COMMON_STATUS, 0, 1);
    common_w(&f, VIRTIO_COMMON_STATUS, 3, 1);
    set_features(&f, 1ULL << VIRTIO_F_VERSION_1);
    common_w(&f, VIRTIO_COMMON_STATUS, 0xb, 1);
    program_queue(&f, 100, DESC_GPA, VIRTIO_NO_VECTOR);        /* not a power of 2 */
    g_assert_cmphex(status(&f) & VIRTIO_STATUS_NEEDS_RESET, !=, 0);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_Q_ENABLE, 2), ==, 0);
    common_w(&f, VIRTIO_COMMON_STATUS, 0, 1);
    common_w(&f, VIRTIO_COMMON_STATUS, 3, 1);
    set_features(&f, 1ULL << VIRTIO_F_VERSION_1);
    common_w(&f, VIRTIO_COMMON_STATUS, 0xb, 1);
    program_queue(&f, QSIZE, RAM_SIZE - 512, VIRTIO_NO_VECTOR); /* desc past RAM */
    g_assert_cmphex(status(&f) & VIRTIO_STATUS_NEEDS_RESET, !=, 0);
    common_w(&f, VIRTIO_COMMON_STATUS, 0, 1);
    common_w(&f, VIRTIO_COMMON_STATUS, 3, 1);
    set_features(&f, 1ULL << VIRTIO_F_VERSION_1);
    common_w(&f, VIRTIO_COMMON_STATUS, 0xb, 1);
    program_queue(&f, QSIZE, DESC_GPA + 8, VIRTIO_NO_VECTOR);  /* misaligned */
    g_assert_cmphex(status(&f) & VIRTIO_STATUS_NEEDS_RESET, !=, 0);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    g_assert_cmpuint(f.vp->guest_errors, ==, 3);
    teardown(&f);
}

static void test_readonly(void)
{
    Fixture f;

    setup(&f, ",readonly=on", 1);
    g_assert_cmphex(device_features(&f) & (1ULL << VIRTIO_BLK_F_RO), !=, 0);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_OUT, 0, 512, NULL), ==, VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, VIRTIO_BLK_S_OK);
    g_assert_cmphex(status(&f) & VIRTIO_STATUS_NEEDS_RESET, ==, 0);
    teardown(&f);
}

/* werror=enospc through the device: a write failing with EIO completes
 * with IOERR; one failing with ENOSPC is parked until the VM runs again.
 * The injected errors' messages name no errno. */
static void test_werror_enospc(void)
{
    uint64_t hdr[2] = { VIRTIO_BLK_T_OUT, 0 };
    Fixture f;

    setup(&f, ",werror=enospc", 1);
    test_fault_attach(drive_node(f.drive));
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    vm_start();
    test_fault_set(EIO);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_OUT, 0, 512, NULL), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(virtio_blk_failed_requests(f.vb), ==, 1);

    test_fault_set(ENOSPC);
    memcpy(gpa(&f, HDR_GPA), hdr, 16);
    *(uint8_t *)gpa(&f, STATUS_GPA) = 0xff;
    publish(&f, 0);
    g_usleep(50000);
    g_assert_cmpuint(used_idx(&f), ==, f.last_used);     /* parked */
    test_fault_set(0);
    vm_stop(RUN_STATE_IO_ERROR);
    vm_start();                                         /* retried */
    g_assert_true(wait_used(&f, NULL));
    g_assert_cmpuint(*(uint8_t *)gpa(&f, STATUS_GPA), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpuint(virtio_blk_failed_requests(f.vb), ==, 1);
    teardown(&f);
}

static void msix_entry(Fixture *f, unsigned v, uint32_t data, bool masked)
{
    g_assert_true(iobus_write(f->mmio, MSIX_ADDR + 16 * v, 0xfee00000, 4));
    g_assert_true(iobus_write(f->mmio, MSIX_ADDR + 16 * v + 4, 0, 4));
    g_assert_true(iobus_write(f->mmio, MSIX_ADDR + 16 * v + 8, data, 4));
    g_assert_true(iobus_write(f->mmio, MSIX_ADDR + 16 * v + 12, masked, 4));
}

static void test_msix(void)
{
    Fixture f;
    uint8_t cap;
    uint64_t pba = 0;

    setup(&f, "", 1);
    cap = f.vp->msix.cap;
    g_assert_cmpuint(cfg_read(&f, cap, 1), ==, PCI_CAP_ID_MSIX);
    g_assert_cmpuint(cfg_read(&f, cap + 2, 2) & 0x7ff, ==, 1);    /* 2 vectors */
    cfg_write(&f, cap + 2, MSIX_CTRL_ENABLE, 2);
    msix_entry(&f, 0, 0x31, true);
    driver_init(&f, 0, 0);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_Q_MSIX, 2), ==, 0);
    /* masked: the interrupt is pending, not delivered */
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    for (int i = 0; i < 100 && !msix_is_pending(&f.vp->msix, 0); i++) {
        g_usleep(1000);
    }
    g_assert_true(msix_is_pending(&f.vp->msix, 0));
    g_assert_true(iobus_read(f.mmio, MSIX_ADDR + MSIX_PBA_OFFSET, &pba, 8));
    g_assert_cmphex(pba, ==, 1);
    g_assert_cmpuint(msi_count(&f), ==, 0);
    /* unmasking delivers the pending message */
    g_assert_true(iobus_write(f.mmio, MSIX_ADDR + 12, 0, 4));
    g_assert_cmpuint(msi_count(&f), ==, 1);
    g_assert_false(msix_is_pending(&f.vp->msix, 0));
    /* unmasked: delivered directly (event idx not negotiated) */
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    for (int i = 0; i < 100 && msi_count(&f) < 2; i++) {
        g_usleep(1000);
    }
    g_assert_cmpuint(msi_count(&f), ==, 2);
    g_assert_cmphex(g_array_index(f.msis, uint32_t, 1), ==, 0x31);
    /* function mask-all holds it back again */
    cfg_write(&f, cap + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL, 2);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    for (int i = 0; i < 100 && !msix_is_pending(&f.vp->msix, 0); i++) {
        g_usleep(1000);
    }
    g_assert_cmpuint(msi_count(&f), ==, 2);
    cfg_write(&f, cap + 2, MSIX_CTRL_ENABLE, 2);
    g_assert_cmpuint(msi_count(&f), ==, 3);
    /* vectors beyond the table read back as NO_VECTOR */
    common_w(&f, VIRTIO_COMMON_MSIX, 7, 2);
    g_assert_cmphex(common_r(&f, VIRTIO_COMMON_MSIX, 2), ==, VIRTIO_NO_VECTOR);
    teardown(&f);
}

static void test_intx_isr(void)
{
    Fixture f;

    setup(&f, "", 1);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    for (int i = 0; i < 100 && !f.vp->pci.intx_level; i++) {
        g_usleep(1000);
    }
    g_assert_true(f.vp->pci.intx_level);
    g_assert_cmpuint(common_r(&f, VIRTIO_PCI_ISR_OFF, 1), ==, 1);
    g_assert_false(f.vp->pci.intx_level);
    g_assert_cmpuint(common_r(&f, VIRTIO_PCI_ISR_OFF, 1), ==, 0);
    teardown(&f);
}

static void test_event_idx(void)
{
    Fixture f;
    uint16_t avail_event;

    setup(&f, "", 1);
    driver_init(&f, 1ULL << VIRTIO_F_RING_EVENT_IDX, VIRTIO_NO_VECTOR);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    /* The device moves avail_event once it finds the ring empty, a moment
     * after the used entry the driver waited for. */
    for (int i = 0; i < 10000; i++) {
        memcpy(&avail_event, gpa(&f, USED_GPA + 4 + 8 * QSIZE), 2);
        if (avail_event == 2) {
            break;
        }
        g_usleep(1000);
    }
    g_assert_cmpuint(avail_event, ==, 2);
    teardown(&f);
}

/* What the transport registered when it was plugged. */
static const VMStateDescription *vmstate_of(Fixture *f)
{
    const DeviceVmstate *e = device_list_get(f->devices, 0);

    g_assert_cmpstr(e->idstr, ==, "virtio-blk-pci");
    g_assert_cmpuint(e->instance, ==, f->vp->pci.devfn);
    g_assert_true(e->opaque == f->vp);
    return e->vmsd;
}

static GBytes *save_state(Fixture *f)
{
    g_autoptr(GError) err = NULL;
    QEMUFile *qf = qemu_file_new_mem_output();
    const GByteArray *a;
    GBytes *b;

    g_assert_true(vmstate_save(qf, vmstate_of(f), f->vp, NULL, &err));
    g_assert_no_error(err);
    a = qemu_file_mem_output_data(qf);
    b = g_bytes_new(a->data, a->len);
    g_assert_true(qemu_fclose(qf, NULL));
    return b;
}

static bool load_state(Fixture *f, GBytes *b, size_t len, GError **errp)
{
    g_autoptr(GBytes) part = g_bytes_new_from_bytes(b, 0, len);
    QEMUFile *qf = qemu_file_new_mem_input(part);
    bool ok = vmstate_load(qf, vmstate_of(f), f->vp, 1, errp);

    qemu_fclose(qf, NULL);
    return ok;
}

/* Migrate a device mid-stream: same RAM, indices, MSI-X and features on B. */
static void test_migration_roundtrip(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) state = NULL;
    Fixture a, b;

    setup(&a, "", 1);
    setup(&b, "", 1);
    cfg_write(&a, a.vp->msix.cap + 2, MSIX_CTRL_ENABLE, 2);
    msix_entry(&a, 0, 0x42, false);
    driver_init(&a, 1ULL << VIRTIO_F_RING_EVENT_IDX, 0);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpuint(request(&a, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    }
    state = save_state(&a);
    memcpy(b.ram, a.ram, RAM_SIZE);
    b.avail_idx = a.avail_idx;
    b.last_used = a.last_used;
    g_assert_true(load_state(&b, state, g_bytes_get_size(state), &err));
    g_assert_no_error(err);
    g_assert_cmphex(status(&b), ==, status(&a));
    g_assert_cmpuint(common_r(&b, VIRTIO_COMMON_Q_ENABLE, 2), ==, 1);
    g_assert_cmpuint(common_r(&b, VIRTIO_COMMON_Q_DESCLO, 4), ==, DESC_GPA);
    g_assert_true(msix_enabled(&b.vp->msix));
    /* event idx: ask for an interrupt when the next entry is used */
    ((uint16_t *)gpa(&b, AVAIL_GPA))[2 + QSIZE] = b.last_used;
    g_assert_cmpuint(request(&b, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    g_assert_cmpuint(used_idx(&b), ==, 4);
    for (int i = 0; i < 100 && msi_count(&b) < 1; i++) {
        g_usleep(1000);
    }
    g_assert_cmpuint(msi_count(&b), >=, 1);
    g_assert_cmphex(g_array_index(b.msis, uint32_t, 0), ==, 0x42);
    /* truncated streams fail cleanly */
    for (size_t len = 0; len < g_bytes_get_size(state); len += 97) {
        g_assert_false(load_state(&b, state, len, &err));
        g_assert_nonnull(err);
        g_clear_error(&err);
    }
    teardown(&b);
    teardown(&a);
}

/* A stream whose rings lie outside this guest's RAM, or with features this
 * device does not offer, is refused. */
static void test_migration_hostile(void)
{
    g_autoptr(GError) err = NULL;
    GBytes *state;
    Fixture a, b;

    setup(&a, "", 1);
    setup(&b, "", 1);
    driver_init(&a, 0, VIRTIO_NO_VECTOR);
    a.vp->vqs[0].desc_gpa = RAM_SIZE;
    state = save_state(&a);
    g_assert_false(load_state(&b, state, g_bytes_get_size(state), &err));
    g_assert_nonnull(strstr(err->message, "queue 0"));
    g_clear_error(&err);
    g_bytes_unref(state);
    a.vp->vqs[0].desc_gpa = DESC_GPA;
    a.vp->guest_features |= 1ULL << 60;
    state = save_state(&a);
    g_assert_false(load_state(&b, state, g_bytes_get_size(state), &err));
    g_assert_nonnull(strstr(err->message, "not offered"));
    g_clear_error(&err);
    g_bytes_unref(state);
    a.vp->guest_features &= ~(1ULL << 60);
    a.vp->vqs[0].msix_vector = 9;
    state = save_state(&a);
    g_assert_false(load_state(&b, state, g_bytes_get_size(state), &err));
    g_bytes_unref(state);
    teardown(&b);
    teardown(&a);
}

/* While the VM is stopped the device processes nothing; it catches up on
 * vm_start. */
/* A running device, then a VM stop, then a one-sector read published. */
static void stop_with_read_pending(Fixture *f)
{
    uint64_t hdr[2] = { VIRTIO_BLK_T_IN, 0 };

    driver_init(f, 0, VIRTIO_NO_VECTOR);
    vm_start();
    vm_stop(RUN_STATE_PAUSED);
    memcpy(gpa(f, HDR_GPA), hdr, 16);
    set_desc(f, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(f, DESC_GPA, 1, DATA_GPA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    set_desc(f, DESC_GPA, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
    publish(f, 0);
}

static void test_vm_stop_holds_queues(void)
{
    Fixture f;

    setup(&f, "", 1);
    stop_with_read_pending(&f);
    g_usleep(50000);
    g_assert_cmpuint(used_idx(&f), ==, 0);
    vm_start();
    g_assert_true(wait_used(&f, NULL));
    g_assert_cmpuint(*(uint8_t *)gpa(&f, STATUS_GPA), ==, 0);
    teardown(&f);
}

/* On a migration target the loaded queues wait for vm_start: the images are
 * handed over only after the stream ends, so a request the source left in
 * the ring must not run while the target is still in 'inmigrate'. */
static void test_incoming_holds_queues_until_start(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) state = NULL;
    Fixture a, b;

    setup(&a, "", 1);
    stop_with_read_pending(&a);   /* the source had not started it */
    state = save_state(&a);
    /* The target is built before its runstate becomes inmigrate (vl.c). */
    runstate_set(RUN_STATE_PRELAUNCH);
    setup(&b, "", 1);
    memcpy(b.ram, a.ram, RAM_SIZE);
    b.avail_idx = a.avail_idx;
    b.last_used = a.last_used;
    runstate_set(RUN_STATE_INMIGRATE);
    g_assert_true(load_state(&b, state, g_bytes_get_size(state), &err));
    g_assert_no_error(err);
    g_usleep(50000);
    g_assert_cmpuint(used_idx(&b), ==, 0);
    vm_start();
    g_assert_true(wait_used(&b, NULL));
    g_assert_cmpuint(*(uint8_t *)gpa(&b, STATUS_GPA), ==, 0);
    teardown(&b);
    teardown(&a);
}

typedef struct DirtyRec {
    GMutex lock;
    GArray *ranges;            /* of uint64_t pairs */
} DirtyRec;

static void record_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
    DirtyRec *d = opaque;
    uint64_t r[2] = { gpa, len };

    g_mutex_lock(&d->lock);
    g_array_append_vals(d->ranges, r, 2);
    g_mutex_unlock(&d->lock);
}

static bool dirty_has(DirtyRec *d, uint64_t gpa, uint64_t len)
{
    bool found = false;

    g_mutex_lock(&d->lock);
    for (guint i = 0; i + 1 < d->ranges->len; i += 2) {
        uint64_t a = g_array_index(d->ranges, uint64_t, i);
        uint64_t l = g_array_index(d->ranges, uint64_t, i + 1);

        found |= a <= gpa && gpa + len <= a + l;
    }
    g_mutex_unlock(&d->lock);
    return found;
}

/* The device's own writes to guest RAM reach the migration dirty log. */
static void test_dirty_tracking(void)
{
    DirtyRec d = { .ranges = g_array_new(false, false, sizeof(uint64_t)) };
    Fixture f;

    g_mutex_init(&d.lock);
    setup(&f, "", 1);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    virtio_pci_set_dirty_tracking(f.vp, record_dirty, &d);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 1024, NULL), ==, 0);
    g_assert_true(dirty_has(&d, DATA_GPA, 1024));
    g_assert_true(dirty_has(&d, STATUS_GPA, 1));
    g_assert_true(dirty_has(&d, USED_GPA, 6 + 8 * QSIZE));
    g_assert_false(dirty_has(&d, HDR_GPA, 16));       /* only read */
    virtio_pci_set_dirty_tracking(f.vp, NULL, NULL);
    g_array_set_size(d.ranges, 0);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    g_assert_cmpuint(d.ranges->len, ==, 0);
    teardown(&f);
    g_array_unref(d.ranges);
    g_mutex_clear(&d.lock);
}

/* Crash-safe bitmaps: the writes popped in one batch are announced
 * together and share one intent sync (without the batch: one each). */
static void test_batch_shares_intent_sync(void)
{
    g_autoptr(GError) err = NULL;
    BdrvWriteIntentStats st;
    BlockNode *bs;
    BdrvDirtyBitmap *bm;
    uint16_t *avail;
    Fixture f;

    setup_image(&f, "qcow2", 64 * MiB, ",bitmap-chunk=64K", 1);
    bs = drive_node(f.drive);
    bdrv_lock(bs);
    bm = bdrv_create_dirty_bitmap(bs, 64 * KiB, "b", &err);
    g_assert_true(bm && bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    bdrv_unlock(bs);
    g_assert_no_error(err);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    avail = gpa(&f, AVAIL_GPA);
    for (unsigned i = 0; i < 8; i++) {
        uint64_t hdr[2] = { VIRTIO_BLK_T_OUT, (uint64_t)i * 7 * MiB / 512 };

        memcpy(gpa(&f, HDR_GPA + 16 * i), hdr, 16);
        set_desc(&f, DESC_GPA, 3 * i, HDR_GPA + 16 * i, 16, VIRTQ_DESC_F_NEXT,
                 3 * i + 1);
        set_desc(&f, DESC_GPA, 3 * i + 1, DATA_GPA + 4096 * i, 4096,
                 VIRTQ_DESC_F_NEXT, 3 * i + 2);
        set_desc(&f, DESC_GPA, 3 * i + 2, STATUS_GPA + i, 1,
                 VIRTQ_DESC_F_WRITE, 0);
        avail[2 + (f.avail_idx + i) % QSIZE] = 3 * i;
    }
    f.avail_idx += 8;
    __atomic_store_n(&avail[1], f.avail_idx, __ATOMIC_RELEASE);
    common_w(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
    for (unsigned i = 0; i < 8; i++) {
        g_assert_true(wait_used(&f, NULL));
    }
    for (unsigned i = 0; i < 8; i++) {
        g_assert_cmpuint(*(uint8_t *)gpa(&f, STATUS_GPA + i), ==, 0);
    }
    bdrv_lock(bs);
    bdrv_write_intent_get_stats(bs, &st);
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, 8 * 64 * KiB);
    bdrv_unlock(bs);
    g_assert_cmpuint(st.syncs, ==, 1);
    g_assert_cmpuint(st.ranges, ==, 8);
    teardown(&f);
}

/* cache=none: buffers at any byte alignment still work (bounced). */
static void test_cache_none_unaligned_buffers(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-virtio-odirect-XXXXXX", NULL);
    g_autofree char *img = g_build_filename(dir, "probe.raw", NULL);
    g_autofree char *spec = g_strdup_printf("file=%s,format=raw,id=p,cache=none", img);
    uint64_t hdr[2] = { VIRTIO_BLK_T_OUT, 4 };
    uint8_t *st, *buf = NULL;
    Drive *probe;
    Fixture f;

    g_assert_true(bdrv_create("raw", img, IMG_SIZE, NULL, &err));
    probe = drive_open(spec, 0, &err);
    g_remove(img);
    g_rmdir(dir);
    if (!probe) {
        g_test_skip("the temp file system has no O_DIRECT");
        return;
    }
    drive_free(probe);
    g_assert_cmpint(posix_memalign((void **)&buf, 4096, 4096), ==, 0);   /* O_DIRECT */
    setup(&f, ",cache=none", 1);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    st = gpa(&f, STATUS_GPA);
    for (int i = 0; i < 1024; i++) {
        ((uint8_t *)gpa(&f, DATA_GPA + 3))[i] = (uint8_t)(i * 7);
    }
    /* two segments of 512 bytes at odd addresses */
    memcpy(gpa(&f, HDR_GPA), hdr, 16);
    set_desc(&f, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(&f, DESC_GPA, 1, DATA_GPA + 3, 512, VIRTQ_DESC_F_NEXT, 2);
    set_desc(&f, DESC_GPA, 2, DATA_GPA + 515, 512, VIRTQ_DESC_F_NEXT, 3);
    set_desc(&f, DESC_GPA, 3, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
    *st = 0xff;
    publish(&f, 0);
    g_assert_true(wait_used(&f, NULL));
    g_assert_cmpuint(*st, ==, 0);
    g_assert_true(bdrv_pread(drive_node(f.drive), 2048, buf, 1024, NULL));
    for (int i = 0; i < 1024; i++) {
        g_assert_cmpuint(buf[i], ==, (uint8_t)(i * 7));
    }
    /* and read back into an odd address */
    hdr[0] = VIRTIO_BLK_T_IN;
    memcpy(gpa(&f, HDR_GPA), hdr, 16);
    set_desc(&f, DESC_GPA, 1, DATA_GPA + 4097, 1024, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
    *st = 0xff;
    publish(&f, 0);
    g_assert_true(wait_used(&f, NULL));
    g_assert_cmpuint(*st, ==, 0);
    g_assert_cmpmem(gpa(&f, DATA_GPA + 4097), 1024, buf, 1024);
    teardown(&f);
    free(buf);
}

/* NEEDS_RESET raises the configuration-change vector. */
static void test_needs_reset_config_interrupt(void)
{
    Fixture f;

    setup(&f, "", 1);
    cfg_write(&f, f.vp->msix.cap + 2, MSIX_CTRL_ENABLE, 2);
    msix_entry(&f, 0, 0x41, false);
    msix_entry(&f, 1, 0x51, false);
    driver_init(&f, 0, 0);
    common_w(&f, VIRTIO_COMMON_MSIX, 1, 2);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_MSIX, 2), ==, 1);
    publish(&f, QSIZE + 1);                   /* head out of range */
    g_assert_false(wait_used(&f, NULL));
    for (int i = 0; i < 100 && msi_count(&f) < 1; i++) {
        g_usleep(1000);
    }
    g_assert_cmpuint(msi_count(&f), ==, 1);
    g_assert_cmphex(g_array_index(f.msis, uint32_t, 0), ==, 0x51);
    teardown(&f);
}

/* A system reset returns the function to power-on state. */
static void test_system_reset(void)
{
    Fixture f;

    setup(&f, "", 1);
    cfg_write(&f, f.vp->msix.cap + 2, MSIX_CTRL_ENABLE, 2);
    msix_entry(&f, 0, 0x42, false);
    driver_init(&f, 0, 0);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    virtio_pci_system_reset(f.vp);
    g_assert_cmpuint(status(&f), ==, 0);
    g_assert_false(msix_enabled(&f.vp->msix));
    g_assert_cmphex(cfg_read(&f, f.vp->msix.cap + 2, 2) & MSIX_CTRL_ENABLE, ==, 0);
    common_w(&f, VIRTIO_COMMON_Q_SELECT, 0, 2);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_Q_ENABLE, 2), ==, 0);
    g_assert_cmpuint(common_r(&f, VIRTIO_COMMON_Q_SIZE, 2), ==, VIRTQ_MAX_SIZE);
    driver_init(&f, 0, VIRTIO_NO_VECTOR);
    g_assert_cmpuint(request(&f, VIRTIO_BLK_T_IN, 0, 512, NULL), ==, 0);
    teardown(&f);
}

static void test_drive_options(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_null(drive_open("file=/nonexistent.img,if=none", 0, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);       /* id missing */
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,cache=sometimes", 0, &err));
    g_assert_nonnull(strstr(err->message, "cache"));
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,werror=maybe", 0, &err));
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,rerror=enospc", 0, &err));
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,bogus=1", 0, &err));
    g_assert_nonnull(strstr(err->message, "bogus"));
    g_clear_error(&err);
    g_assert_null(drive_open("id=a", 0, &err));
    g_clear_error(&err);
    g_assert_null(drive_open("file=/nonexistent-tern.img,id=a,format=raw", 0, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,aio=native", 0, &err));
    g_assert_nonnull(strstr(err->message, "aio=native is not supported"));
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,aio=io_uring", 0, &err));
    g_assert_nonnull(strstr(err->message, "aio=io_uring is not supported"));
    g_clear_error(&err);
    g_assert_null(drive_open("file=/x,id=a,discard=sometimes", 0, &err));
    g_clear_error(&err);

    /* what the accepted options turn into */
    g_autofree char *dir = g_dir_make_tmp("test-virtio-opts-XXXXXX", NULL);
    g_autofree char *img = g_build_filename(dir, "o.raw", NULL);
    g_assert_true(bdrv_create("raw", img, 1 << 20, NULL, &err));
    static const struct { const char *opts; int flags; DriveErrorAction w; } c[] = {
        { "", 0, DRIVE_ERROR_REPORT },
        { ",discard=ignore,aio=threads", 0, DRIVE_ERROR_REPORT },
        { ",discard=off", 0, DRIVE_ERROR_REPORT },
        { ",discard=unmap", BDRV_O_UNMAP, DRIVE_ERROR_REPORT },
        { ",discard=on,werror=enospc", BDRV_O_UNMAP, DRIVE_ERROR_ENOSPC },
        { ",werror=stop", 0, DRIVE_ERROR_STOP },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(c); i++) {
        g_autofree char *spec = g_strdup_printf("file=%s,format=raw,id=a%s", img,
                                                c[i].opts);
        Drive *d = drive_open(spec, 0, &err);
        g_assert_no_error(err);
        g_assert_cmpint(drive_node(d)->flags & BDRV_O_UNMAP, ==, c[i].flags);
        g_assert_cmpint(d->werror, ==, c[i].w);
        drive_free(d);
    }
    g_remove(img);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virtio/pci/bus-reset-takes-ioeventfds-down",
                    test_bus_reset_takes_ioeventfds_down);
    g_test_add_func("/virtio/blk/rw-flush-id", test_rw_flush_id);
    g_test_add_func("/virtio/blk/discard-write-zeroes", test_discard_write_zeroes);
    g_test_add_func("/virtio/blk/config-space", test_config_space);
    g_test_add_func("/virtio/blk/seg-max", test_seg_max);
    g_test_add_func("/virtio/blk/readonly", test_readonly);
    g_test_add_func("/virtio/blk/werror-enospc", test_werror_enospc);
    g_test_add_func("/virtio/blk/cache-none-unaligned", test_cache_none_unaligned_buffers);
    g_test_add_func("/virtio/transport/features-ok-refused", test_features_ok_refused);
    g_test_add_func("/virtio/transport/hostile-chains", test_hostile_chains);
    g_test_add_func("/virtio/transport/bad-queue-setup", test_bad_queue_setup);
    g_test_add_func("/virtio/transport/msix", test_msix);
    g_test_add_func("/virtio/transport/intx-isr", test_intx_isr);
    g_test_add_func("/virtio/transport/event-idx", test_event_idx);
    g_test_add_func("/virtio/transport/migration-roundtrip", test_migration_roundtrip);
    g_test_add_func("/virtio/transport/migration-hostile", test_migration_hostile);
    g_test_add_func("/virtio/transport/vm-stop", test_vm_stop_holds_queues);
    g_test_add_func("/virtio/transport/incoming-holds-queues",
                    test_incoming_holds_queues_until_start);
    g_test_add_func("/virtio/transport/dirty-tracking", test_dirty_tracking);
    g_test_add_func("/virtio/transport/system-reset", test_system_reset);
    g_test_add_func("/virtio/transport/needs-reset-irq", test_needs_reset_config_interrupt);
    g_test_add_func("/virtio/drive/options", test_drive_options);
    g_test_add_func("/virtio/blk/batch-shares-intent-sync",
                    test_batch_shares_intent_sync);
    return g_test_run();
}
