/*
 * Unit tests for the block layer core and the raw/file drivers: probing,
 * opening by name, bounds and read-only checks, scatter-gather I/O, discard
 * (hole punching) and write-zeroes, flush, node names, the dirty-bitmap
 * hook that every write, write-zeroes and discard goes through, and the
 * block backend list with QEMU's naming rules.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-block-util.h"
#include "block/block-backend.h"
#include "block/dirty-bitmap.h"

static char *tmpdir;

static char *make_raw(const char *name, uint64_t size)
{
    GError *err = NULL;
    char *path = g_build_filename(tmpdir, name, NULL);
    g_assert_true(bdrv_create("raw", path, size, NULL, &err));
    g_assert_no_error(err);
    return path;
}

static BlockNode *open_raw(const char *path, int flags)
{
    GError *err = NULL;
    BlockNode *bs = bdrv_open(path, NULL, flags, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "raw");
    return bs;
}

static void test_probe_and_names(void)
{
    g_autofree char *raw = make_raw("p.raw", 1 * MiB);
    g_autofree char *q = g_build_filename(tmpdir, "p.qcow2", NULL);
    GError *err = NULL;

    g_assert_true(bdrv_create("qcow2", q, 1 * MiB, NULL, &err));
    g_assert_cmpstr(bdrv_probe_format(raw, &err), ==, "raw");
    g_assert_cmpstr(bdrv_probe_format(q, &err), ==, "qcow2");
    g_assert_null(bdrv_probe_format("/nonexistent/x", &err));
    g_assert_nonnull(strstr(err->message, "Could not open"));
    g_clear_error(&err);
    g_assert_null(bdrv_open(raw, "vdi", 0, &err));
    g_assert_nonnull(strstr(err->message,
                            "Image format 'vdi' is not supported by tern"));
    g_clear_error(&err);
    g_assert_null(bdrv_open(raw, "nosuch", 0, &err));
    g_assert_nonnull(strstr(err->message, "Unknown driver 'nosuch'"));
    g_clear_error(&err);
    g_assert_null(bdrv_open(raw, "file", 0, &err));   /* protocol, not format */
    g_clear_error(&err);
    g_assert_null(bdrv_open(tmpdir, "raw", 0, &err));
    g_assert_nonnull(strstr(err->message, "not a regular file"));
    g_clear_error(&err);
    /* a qcow2 image forced to raw shows its header bytes */
    BlockNode *bs = bdrv_open(q, "raw", 0, &err);
    uint8_t magic[4];
    g_assert_true(bdrv_pread(bs, 0, magic, 4, &err));
    g_assert_cmpmem(magic, 4, "QFI\xfb", 4);
    g_assert_true(g_str_has_prefix(bdrv_get_node_name(bs), "#block"));
    bdrv_set_node_name(bs, "disk0");
    g_assert_cmpstr(bdrv_get_node_name(bs), ==, "disk0");
    bdrv_close(bs);
}

/* The first sector of an image of each format QEMU probes, as its probe
 * sees it (facts from QEMU's block/<format>.c). */
typedef struct ProbeCase {
    const char *format;
    size_t off;
    const char *bytes;
    size_t len;
    const char *filename;
} ProbeCase;

static const ProbeCase probe_cases[] = {
    { "qcow2", 0, "QFI\xfb\0\0\0\3", 8, NULL },
    { "qcow2", 0, "QFI\xfb\0\0\0\2", 8, NULL },
    { "qcow", 0, "QFI\xfb\0\0\0\1", 8, NULL },
    { "raw", 0, "QFI\xfb\0\0\0\0", 8, NULL },
    { "vmdk", 0, "KDMV", 4, NULL },
    { "vmdk", 0, "COWD", 4, NULL },
    { "vmdk", 0, "# Disk DescriptorFile\n  \r\nversion=1\n", 36, NULL },
    { "vmdk", 0, "version=3\r\n", 11, NULL },
    { "raw", 0, "# x\nfoo\nversion=1\n", 19, NULL },
    { "vdi", 64, "\x7f\x10\xda\xbe", 4, NULL },
    { "vhdx", 0, "vhdxfile", 8, NULL },
    { "vpc", 0, "conectix", 8, NULL },
    { "qed", 0, "QED\0", 4, NULL },
    { "parallels", 0, "WithoutFreeSpace\2\0\0\0", 20, NULL },
    { "parallels", 0, "WithouFreSpacExt\2\0\0\0", 20, NULL },
    { "raw", 0, "WithoutFreeSpace\3\0\0\0", 20, NULL },
    { "luks", 0, "LUKS\xba\xbe\0\1", 8, NULL },
    { "raw", 0, "LUKS\xba\xbe\0\2", 8, NULL },
    { "cloop", 0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && "
      "mount -r -t iso9660 /dev/cloop $1\n", 84, NULL },
    { "dmg", 0, "", 0, "disk.dmg" },
    { "raw", 0, "", 0, "disk.dmg.img" },
    { "raw", 0, "", 0, NULL },
};

static void test_probe_formats(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(probe_cases); i++) {
        const ProbeCase *c = &probe_cases[i];
        uint8_t buf[512] = { 0 };
        memcpy(buf + c->off, c->bytes, c->len);
        const char *got = bdrv_probe_buffer(buf, sizeof(buf), c->filename);
        if (strcmp(got, c->format)) {
            g_error("case %zu: probed '%s', expected '%s'", i, got,
                    c->format);
        }
    }
    /* bochs: three NUL-terminated strings and a version */
    uint8_t b[512] = { 0 };
    strcpy((char *)b, "Bochs Virtual HD Image");
    strcpy((char *)b + 32, "Redolog");
    strcpy((char *)b + 48, "Growing");
    b[66] = 2;
    g_assert_cmpstr(bdrv_probe_buffer(b, sizeof(b), NULL), ==, "bochs");
    b[66] = 3;
    g_assert_cmpstr(bdrv_probe_buffer(b, sizeof(b), NULL), ==, "raw");
    g_assert_true(bdrv_format_is_known("vmdk"));
    g_assert_false(bdrv_format_is_known("nosuch"));
}

/* A file in a format tern cannot open is refused by name, not opened as
 * raw (read-write, the guest could rewrite its header). */
static void test_probe_refuses_by_name(void)
{
    g_autofree char *path = make_raw("x.vmdk", 64 * KiB);
    GError *err = NULL;
    patch(path, 0, "KDMV\1\0\0\0", 8);
    for (int rw = 0; rw < 2; rw++) {
        g_assert_null(bdrv_open(path, NULL, rw ? BDRV_O_RDWR : 0, &err));
        g_assert_error(err, TERN_ERROR, TERN_ERR_NOT_SUPPORTED);
        g_assert_nonnull(strstr(err->message, "Image format 'vmdk' is not "
                                "supported by tern"));
        g_assert_nonnull(strstr(err->message, "x.vmdk"));
        g_clear_error(&err);
    }
    BlockNode *bs = bdrv_open(path, "raw", 0, &err);   /* when asked for */
    g_assert_no_error(err);
    bdrv_close(bs);
}

/* Probed raw, as QEMU: a write that would make sector 0 probe as another
 * format fails with EPERM; the same bytes elsewhere, or with format=raw
 * given, are fine. */
static void test_probed_raw_first_sector(void)
{
    g_autofree char *path = make_raw("s0.raw", 1 * MiB);
    GError *err = NULL;
    uint8_t sector[512] = "QFI\xfb\0\0\0\3";
    uint8_t back[512];
    BlockNode *bs = open_raw(path, BDRV_O_RDWR);

    g_assert_false(bdrv_pwrite(bs, 0, sector, sizeof(sector), &err));
    g_assert_nonnull(strstr(err->message, "Refusing to write a qcow2 "
                            "header to the first sector"));
    g_assert_nonnull(strstr(err->message, "Operation not permitted"));
    g_clear_error(&err);
    g_assert_false(bdrv_pwrite(bs, 0, "KDMV", 4, &err));     /* partial */
    g_assert_nonnull(strstr(err->message, "vmdk"));
    g_clear_error(&err);
    /* what counts is the sector after the write, old bytes included */
    g_assert_true(bdrv_pwrite(bs, 2, "nectix", 6, &err));
    g_assert_false(bdrv_pwrite(bs, 0, "co", 2, &err));       /* "conectix" */
    g_assert_nonnull(strstr(err->message, "vpc"));
    g_clear_error(&err);
    g_assert_true(bdrv_pread(bs, 0, back, 8, &err));
    g_assert_cmpmem(back, 8, "\0\0nectix", 8);
    memset(sector + 8, 0x11, sizeof(sector) - 8);
    g_assert_true(bdrv_pwrite(bs, 512, sector, sizeof(sector), &err));
    memset(back, 0x22, sizeof(back));
    g_assert_true(bdrv_pwrite(bs, 0, back, sizeof(back), &err));
    g_assert_no_error(err);
    bdrv_close(bs);

    bs = bdrv_open(path, "raw", BDRV_O_RDWR, &err);          /* given */
    g_assert_true(bdrv_pwrite(bs, 0, sector, sizeof(sector), &err));
    g_assert_no_error(err);
    bdrv_close(bs);
    g_assert_cmpstr(bdrv_probe_format(path, &err), ==, "qcow2");
}

static void test_raw_io(void)
{
    g_autofree char *path = make_raw("io.raw", 1 * MiB);
    GError *err = NULL;
    BlockNode *bs = open_raw(path, BDRV_O_RDWR);
    uint8_t a[1000], b[3000], back[4000];

    g_assert_cmpuint(bdrv_getlength(bs), ==, 1 * MiB);
    memset(a, 0xa1, sizeof(a));
    memset(b, 0xb2, sizeof(b));
    struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
    g_assert_true(bdrv_pwritev(bs, 12345, iov, 2, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_pread(bs, 12345, back, sizeof(back), &err));
    g_assert_cmpmem(back, 1000, a, 1000);
    g_assert_cmpmem(back + 1000, 3000, b, 3000);
    g_assert_true(bdrv_flush(bs, &err));

    g_assert_false(bdrv_pread(bs, 1 * MiB - 10, back, 11, &err));
    g_assert_nonnull(strstr(err->message, "past the end"));
    g_clear_error(&err);
    g_assert_false(bdrv_pwrite(bs, UINT64_MAX - 5, a, 10, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_pread(bs, 1 * MiB, back, 0, &err));   /* empty at end */
    bdrv_close(bs);

    bs = open_raw(path, 0);
    g_assert_true(bdrv_is_read_only(bs));
    g_assert_false(bdrv_pwrite(bs, 0, a, 10, &err));
    g_assert_nonnull(strstr(err->message, "read-only"));
    g_clear_error(&err);
    g_assert_false(bdrv_discard(bs, 0, 4096, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_pread(bs, 12345, back, 1000, &err));
    g_assert_cmpmem(back, 1000, a, 1000);
    bdrv_close(bs);
}

/* cache=none on a raw file whose size is not a multiple of the block: an
 * unaligned write near the end is bounced and leaves the size as it was. */
static void test_raw_nocache_unaligned(void)
{
    g_autofree char *path = make_raw("odd.raw", 10000);
    GError *err = NULL;
    BlockNode *bs = bdrv_open(path, "raw", BDRV_O_RDWR | BDRV_O_NOCACHE,
                              &err);
    struct stat st;
    uint8_t buf[300], back[300];

    if (!bs && strstr(err->message, "Invalid argument")) {
        g_test_skip("the temp file system has no O_DIRECT");
        g_clear_error(&err);
        return;
    }
    g_assert_no_error(err);
    memset(buf, 0x3c, sizeof(buf));
    g_assert_true(bdrv_pwrite(bs, 9999 - 300, buf, sizeof(buf), &err));
    g_assert_true(bdrv_pwrite(bs, 3, buf, 7, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_pread(bs, 9999 - 300, back, sizeof(back), &err));
    g_assert_cmpmem(back, sizeof(back), buf, sizeof(buf));
    g_assert_true(bdrv_pread(bs, 0, back, 12, &err));
    g_assert_cmpmem(back, 12, "\0\0\0<<<<<<<\0\0", 12);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 10000);
    bdrv_close(bs);
}

/* Discard does nothing (and succeeds) unless the node may unmap (QEMU's
 * discard=unmap); write-zeroes keeps its blocks unless asked to unmap. */
static void test_raw_unmap_policy(void)
{
    g_autofree char *path = make_raw("um.raw", 4 * MiB);
    g_autofree uint8_t *buf = g_malloc(4 * MiB);
    GError *err = NULL;
    struct stat st;

    memset(buf, 0x5c, 4 * MiB);
    BlockNode *bs = bdrv_open(path, "raw", BDRV_O_RDWR, &err);
    g_assert_true(bdrv_pwrite(bs, 0, buf, 4 * MiB, &err));
    g_assert_true(bdrv_flush(bs, &err));
    g_assert_cmpint(stat(path, &st), ==, 0);
    int64_t full = st.st_blocks;
    g_assert_true(bdrv_discard(bs, 0, 2 * MiB, &err));       /* ignored */
    g_assert_true(bdrv_write_zeroes(bs, 2 * MiB, 1 * MiB, true, &err));
    g_assert_no_error(err);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_blocks, ==, full);
    g_assert_true(bdrv_pread(bs, 0, buf, 4 * MiB, &err));
    g_assert_cmpuint(buf[0], ==, 0x5c);
    g_assert_cmpuint(buf[2 * MiB], ==, 0);
    bdrv_close(bs);

    bs = bdrv_open(path, "raw", BDRV_O_RDWR | BDRV_O_UNMAP, &err);
    g_assert_true(bdrv_write_zeroes(bs, 3 * MiB, 1 * MiB, false, &err));
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_blocks, ==, full);                  /* kept */
    g_assert_true(bdrv_discard(bs, 0, 2 * MiB, &err));
    g_assert_true(bdrv_write_zeroes(bs, 2 * MiB, 1 * MiB, true, &err));
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_blocks, <=, full / 4);              /* holes */
    bdrv_close(bs);
}

static void test_raw_discard_zeroes(void)
{
    g_autofree char *path = make_raw("dz.raw", 4 * MiB);
    GError *err = NULL;
    BlockNode *bs = open_raw(path, BDRV_O_RDWR | BDRV_O_UNMAP);
    g_autofree uint8_t *buf = g_malloc(4 * MiB);
    struct stat st;

    memset(buf, 0x5c, 4 * MiB);
    g_assert_true(bdrv_pwrite(bs, 0, buf, 4 * MiB, &err));
    g_assert_true(bdrv_flush(bs, &err));
    g_assert_cmpint(stat(path, &st), ==, 0);
    int64_t before = st.st_blocks;
    g_assert_true(bdrv_discard(bs, 1 * MiB, 2 * MiB, &err));
    g_assert_true(bdrv_write_zeroes(bs, 100, 200, true, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_pread(bs, 0, buf, 4 * MiB, &err));
    for (size_t i = 0; i < 4 * MiB; i++) {
        bool zero = (i >= 100 && i < 300) || (i >= 1 * MiB && i < 3 * MiB);
        if (buf[i] != (zero ? 0 : 0x5c)) {
            g_error("byte %zu is %#x", i, buf[i]);
        }
    }
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_blocks, <, before);       /* the hole is real */
    g_assert_cmpint(st.st_size, ==, 4 * MiB);
    bdrv_close(bs);
}

static void test_dirty_bitmap_hook(gconstpointer fmt)
{
    g_autofree char *path = g_build_filename(tmpdir, "hook.img", NULL);
    GError *err = NULL;
    g_assert_true(bdrv_create(fmt, path, 16 * MiB, NULL, &err));
    BlockNode *bs = bdrv_open(path, fmt, BDRV_O_RDWR | BDRV_O_UNMAP, &err);
    g_assert_no_error(err);
    uint8_t buf[100] = { 1 };

    bdrv_lock(bs);
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, 64 * KiB, "b", &err);
    bdrv_unlock(bs);
    g_assert_no_error(err);
    g_assert_true(bdrv_pwrite(bs, 70 * KiB, buf, sizeof(buf), &err));
    g_assert_true(bdrv_write_zeroes(bs, 1 * MiB, 64 * KiB, false, &err));
    g_assert_true(bdrv_discard(bs, 4 * MiB, 128 * KiB, &err));
    g_assert_false(bdrv_pwrite(bs, 16 * MiB, buf, 1, &err));  /* failed */
    g_clear_error(&err);
    bdrv_lock(bs);
    g_assert_true(bdrv_dirty_bitmap_get(bm, 64 * KiB));
    g_assert_false(bdrv_dirty_bitmap_get(bm, 0));
    g_assert_true(bdrv_dirty_bitmap_get(bm, 1 * MiB));
    g_assert_true(bdrv_dirty_bitmap_get(bm, 4 * MiB + 64 * KiB));
    g_assert_cmpuint(bdrv_get_dirty_count(bm), ==, 4 * 64 * KiB);
    bdrv_disable_dirty_bitmap(bm);
    bdrv_unlock(bs);
    g_assert_true(bdrv_pwrite(bs, 8 * MiB, buf, sizeof(buf), &err));
    bdrv_lock(bs);
    g_assert_false(bdrv_dirty_bitmap_get(bm, 8 * MiB));
    bdrv_unlock(bs);
    bdrv_close(bs);                         /* releases the bitmap */
    unlink(path);
}

/* Bit i for byte 100+i, bit 8+i for byte 200+i, as another open file
 * description sees them. */
static unsigned lock_bytes_held(const char *path)
{
    int fd = open(path, O_RDONLY);
    unsigned held = 0;
    for (int i = 0; i < 5; i++) {
        for (int base = 100, bit = 0; base <= 200; base += 100, bit += 8) {
            struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                .l_start = base + i, .l_len = 1 };
            g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
            held |= fl.l_type != F_UNLCK ? 1u << (bit + i) : 0;
        }
    }
    close(fd);
    return held;
}

#define B(n) (1u << ((n) >= 200 ? (n) - 200 + 8 : (n) - 100))

/* The lock bytes QEMU 7.2 holds for the same use (seen in /proc/locks:
 * qemu-io / qemu-img share writes, a virtio-blk device forbids them unless
 * share-rw, qcow2 forbids writes and resizes of its file and takes resize
 * when writable, an inactive node holds none). */
static void test_lock_bytes(void)
{
    static const struct { const char *fmt; int flags; unsigned bytes; } c[] = {
        { "raw", 0, B(100) | B(201) },
        { "raw", BDRV_O_RDWR, B(100) | B(101) | B(201) },
        { "raw", BDRV_O_SHARE_RW, B(100) },
        { "raw", BDRV_O_RDWR | BDRV_O_SHARE_RW, B(100) | B(101) },
        { "raw", BDRV_O_RDWR | BDRV_O_SHARE_RW | BDRV_O_RESIZE,
          B(100) | B(101) | B(103) },
        { "raw", BDRV_O_RDWR | BDRV_O_INACTIVE, 0 },
        { "raw", BDRV_O_RDWR | BDRV_O_NO_LOCK, 0 },
        { "qcow2", 0, B(100) | B(201) | B(203) },
        { "qcow2", BDRV_O_SHARE_RW, B(100) | B(201) | B(203) },
        { "qcow2", BDRV_O_RDWR, B(100) | B(101) | B(103) | B(201) | B(203) },
        { "qcow2", BDRV_O_RDWR | BDRV_O_SHARE_RW,
          B(100) | B(101) | B(103) | B(201) | B(203) },
        { "qcow2", BDRV_O_RDWR | BDRV_O_INACTIVE, 0 },
    };
    GError *err = NULL;
    g_autofree char *raw = make_raw("lk.raw", 1 * MiB);
    g_autofree char *q = g_build_filename(tmpdir, "lk.qcow2", NULL);
    g_assert_true(bdrv_create("qcow2", q, 1 * MiB, NULL, &err));
    for (size_t i = 0; i < G_N_ELEMENTS(c); i++) {
        const char *path = !strcmp(c[i].fmt, "raw") ? raw : q;
        BlockNode *bs = bdrv_open(path, c[i].fmt, c[i].flags, &err);
        g_assert_no_error(err);
        if (lock_bytes_held(path) != c[i].bytes) {
            g_error("case %zu: bytes %#x, expected %#x", i,
                    lock_bytes_held(path), c[i].bytes);
        }
        if (c[i].flags & BDRV_O_INACTIVE) {      /* and back */
            g_assert_true(bdrv_activate(bs, &err));
            g_assert_no_error(err);
            g_assert_cmphex(lock_bytes_held(path), ==,
                            !strcmp(c[i].fmt, "raw")
                            ? B(100) | B(101) | B(201)
                            : B(100) | B(101) | B(103) | B(201) | B(203));
        }
        bdrv_close(bs);
        g_assert_cmphex(lock_bytes_held(path), ==, 0);
    }
}

/* A holder that forbids resizing but shares writes (QEMU's floppy with
 * share-rw=on, read-only, holds bytes 100 and 203): a resizer is refused
 * with QEMU's words, a writer is not. */
static void test_resize_lock(void)
{
    g_autofree char *raw = make_raw("rz.raw", 1 * MiB);
    GError *err = NULL;
    int fd = open(raw, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    for (int off = 100; off <= 203; off += 103) {
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                            .l_start = off, .l_len = 1 };
        g_assert_cmpint(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
    }
    g_assert_null(bdrv_open(raw, "raw", BDRV_O_RDWR | BDRV_O_RESIZE |
                            BDRV_O_SHARE_RW, &err));
    g_assert_error(err, TERN_ERROR, TERN_ERR_BUSY);
    g_assert_nonnull(strstr(err->message, "Failed to get \"resize\" lock"));
    g_clear_error(&err);
    BlockNode *bs = bdrv_open(raw, "raw", BDRV_O_RDWR | BDRV_O_SHARE_RW, &err);
    g_assert_no_error(err);
    bdrv_close(bs);
    close(fd);
}

/* Drive ids name a drive's root node; node-names name any node below a
 * drive; an unnamed drive's root goes by its node-name. */
static void test_backend_list(void)
{
    g_autofree char *a = make_raw("a.raw", 1 * MiB);
    g_autofree char *b = make_raw("b.raw", 1 * MiB);
    BlockBackendList *l = blk_list_new();
    BlockNode *na = open_raw(a, BDRV_O_RDWR), *nb = open_raw(b, 0);
    BlockBackend *da = blk_new("drive0", na, &l), *db = blk_new(NULL, nb, NULL);
    BlockBackend *dup = blk_new("drive0", NULL, NULL);
    GError *err = NULL;

    bdrv_set_node_name(na, "fmt0");
    bdrv_set_node_name(nb, "fmt1");
    g_assert_cmpuint(blk_list_count(NULL), ==, 0);
    g_assert_true(blk_list_add(l, da, &err));
    g_assert_true(blk_list_add(l, db, &err));
    g_assert_false(blk_list_add(l, dup, &err));
    g_assert_cmpstr(err->message, ==, "duplicate id 'drive0'");
    g_clear_error(&err);
    g_assert_cmpuint(blk_list_count(l), ==, 2);
    g_assert_true(blk_list_get(l, 1) == db);
    g_assert_null(blk_list_get(l, 2));
    g_assert_true(blk_list_find(l, "drive0") == da);
    g_assert_true(blk_opaque(da) == &l);
    g_assert_null(blk_list_find(l, ""));

    g_assert_true(blk_list_lookup_node(l, "drive0") == na);
    g_assert_true(blk_list_lookup_node(l, "fmt0") == na);
    g_assert_true(blk_list_lookup_node(l, "fmt1") == nb);
    g_assert_true(blk_list_lookup_node(l, bdrv_get_node_name(nb->file)) ==
                  nb->file);
    g_assert_null(blk_list_lookup_node(l, "nosuch"));
    g_assert_cmpstr(blk_list_node_name(l, na), ==, "drive0");
    g_assert_cmpstr(blk_list_node_name(l, nb), ==, "fmt1");
    g_assert_cmpstr(blk_list_node_name(l, na->file), ==,
                    bdrv_get_node_name(na->file));

    g_assert_null(blk_dev(da));
    g_assert_true(blk_attach_dev(da, "virtio-blk-pci", &err));
    g_assert_false(blk_attach_dev(da, "other", &err));
    g_assert_cmpstr(err->message, ==,
                    "drive 'drive0' is already used by virtio-blk-pci");
    g_clear_error(&err);
    g_assert_cmpstr(blk_dev(da), ==, "virtio-blk-pci");

    blk_list_remove(l, da);
    g_assert_null(blk_list_find(l, "drive0"));
    g_assert_null(blk_list_lookup_node(l, "fmt0"));
    blk_list_free(l);
    blk_free(da);
    blk_free(db);
    blk_free(dup);
}

static void test_create_raw_errors(void)
{
    GError *err = NULL;
    g_assert_false(bdrv_create("raw", "/nonexistent/dir/x.raw", 1, NULL,
                               &err));
    g_assert_nonnull(strstr(err->message, "Could not create"));
    g_clear_error(&err);
    g_assert_false(bdrv_create("vpc", "/nonexistent/x", 1, NULL, &err));
    g_assert_nonnull(strstr(err->message, "does not support image creation"));
    g_clear_error(&err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("test-block-XXXXXX", NULL);
    g_test_add_func("/block/probe-and-names", test_probe_and_names);
    g_test_add_func("/block/probe/formats", test_probe_formats);
    g_test_add_func("/block/probe/refuses-by-name", test_probe_refuses_by_name);
    g_test_add_func("/block/probe/raw-first-sector",
                    test_probed_raw_first_sector);
    g_test_add_func("/block/raw/io", test_raw_io);
    g_test_add_func("/block/raw/discard-zeroes", test_raw_discard_zeroes);
    g_test_add_func("/block/raw/unmap-policy", test_raw_unmap_policy);
    g_test_add_func("/block/raw/nocache-unaligned", test_raw_nocache_unaligned);
    g_test_add_data_func("/block/dirty-hook/raw", "raw",
                         test_dirty_bitmap_hook);
    g_test_add_data_func("/block/dirty-hook/qcow2", "qcow2",
                         test_dirty_bitmap_hook);
    g_test_add_func("/block/create-errors", test_create_raw_errors);
    g_test_add_func("/block/locks/bytes", test_lock_bytes);
    g_test_add_func("/block/locks/resize", test_resize_lock);
    g_test_add_func("/block/backend-list", test_backend_list);
    int ret = g_test_run();
    rm_scratch_dir(tmpdir);
    return ret;
}
