/*
 * Unit tests for qcow2 compressed clusters: reading them (several cluster
 * sizes, data starting mid-sector), writing into them (partial and whole
 * cluster: the cluster becomes a normal one and the compressed data's
 * reference is dropped), discard, snapshots sharing one, and hostile
 * descriptors (data outside the file, in the header, garbage or cut-off
 * deflate streams, sector counts past EOF, two entries on one stream, COPIED
 * set, a range on metadata). Images are built by tern itself: a normal data
 * cluster is allocated, then its contents are replaced by a raw deflate
 * stream and the L2 entry by a compressed descriptor pointing into it, so
 * the refcounts stay exactly right.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "test-block-util.h"

#define COMPRESSED   (1ULL << 62)
#define COPIED       (1ULL << 63)
#define OFFSET_MASK  0x00fffffffffffe00ULL

static char *tmpdir;

typedef struct Img {
    char *path;
    uint32_t cs;
    int cluster_bits;
    uint64_t l1, l2;      /* active L1 table, the L2 table of guest 0 */
    uint64_t host;        /* host cluster holding the stream */
    uint64_t data_off;    /* where the stream starts */
    size_t clen;          /* stream length */
    uint8_t *content;     /* the cluster's uncompressed contents */
} Img;

static void img_free(Img *im)
{
    g_free(im->path);
    g_free(im->content);
}

static uint8_t *must_read(BlockNode *bs, uint64_t off, uint64_t len)
{
    GError *err = NULL;
    uint8_t *buf = g_malloc(len);
    g_assert_true(bdrv_pread(bs, off, buf, len, &err));
    g_assert_no_error(err);
    return buf;
}

static void expect_read_fails(BlockNode *bs, uint64_t off, uint64_t len,
                              const char *what)
{
    GError *err = NULL;
    g_autofree uint8_t *buf = g_malloc(len);
    g_assert_false(bdrv_pread(bs, off, buf, len, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, what)) {
        g_error("error '%s' does not mention '%s'", err->message, what);
    }
    g_error_free(err);
}

static void check_counts(BlockNode *bs, int64_t corruptions, int64_t leaks)
{
    BlockCheckResult res;
    GError *err = NULL;
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpint(res.corruptions, ==, corruptions);
    g_assert_cmpint(res.leaks, ==, leaks);
    g_assert_cmpint(res.check_errors, ==, 0);
}

static void check_file_clean(const char *path)
{
    BlockNode *bs = must_open(path, 0);
    check_counts(bs, 0, 0);
    bdrv_close(bs);
}

/* Compressible but not trivial: runs that change every 37 bytes. */
static uint8_t *make_content(uint32_t cs)
{
    uint8_t *c = g_malloc(cs);
    for (uint32_t i = 0; i < cs; i++) {
        c[i] = (uint8_t)(0x40 + (i / 37) % 23);
    }
    return c;
}

static size_t deflate_raw(const uint8_t *in, size_t len, uint8_t *out,
                          size_t out_len)
{
    z_stream z = { 0 };
    g_assert_cmpint(deflateInit2(&z, 9, Z_DEFLATED, -12, 9,
                                 Z_DEFAULT_STRATEGY), ==, Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
    size_t n = out_len - z.avail_out;
    deflateEnd(&z);
    return n;
}

static uint64_t descriptor(const Img *im, uint64_t off, uint64_t extra)
{
    return COMPRESSED | (extra << (62 - (im->cluster_bits - 8))) | off;
}

/* The descriptor the qcow2 spec gives for a stream at off of len bytes. */
static uint64_t exact_descriptor(const Img *im, uint64_t off, size_t len)
{
    return descriptor(im, off, ((off + len - 1) >> 9) - (off >> 9));
}

/* Guest cluster 0 compressed (stream at 'in_off' inside its host cluster),
 * guest cluster 1 unallocated; a 4-cluster disk. */
static void make_compressed(Img *im, const char *name, uint32_t cs,
                            uint64_t in_off)
{
    GError *err = NULL;
    im->path = g_build_filename(tmpdir, name, NULL);
    im->cs = cs;
    im->cluster_bits = __builtin_ctz(cs);
    BlockCreateOpts o = { .cluster_size = cs, .compat = "1.1" };
    g_assert_true(bdrv_create("qcow2", im->path, 4ULL * cs, &o, &err));
    g_assert_no_error(err);

    BlockNode *bs = must_open(im->path, BDRV_O_RDWR);
    fill(bs, cs, cs, 0x77);              /* allocates the host cluster */
    bdrv_close(bs);
    im->l1 = read_be64(im->path, 40);
    im->l2 = read_be64(im->path, im->l1) & OFFSET_MASK;
    im->host = read_be64(im->path, im->l2 + 8) & OFFSET_MASK;

    im->content = make_content(cs);
    g_autofree uint8_t *stream = g_malloc0(cs);
    im->clen = deflate_raw(im->content, cs, stream, cs);
    g_assert_cmpuint(in_off + im->clen, <=, cs);
    im->data_off = im->host + in_off;
    patch(im->path, im->data_off, stream, im->clen);
    patch_be64(im->path, im->l2, exact_descriptor(im, im->data_off, im->clen));
    patch_be64(im->path, im->l2 + 8, 0);
}

static void test_read(gconstpointer data)
{
    uint32_t cs = GPOINTER_TO_UINT(data);
    Img im;
    make_compressed(&im, "read.qcow2", cs, cs >= 4096 ? 700 : 16);
    BlockNode *bs = must_open(im.path, 0);

    g_autofree uint8_t *whole = must_read(bs, 0, cs);
    g_assert_cmpmem(whole, cs, im.content, cs);
    /* a read across the compressed and the unallocated cluster */
    g_autofree uint8_t *across = must_read(bs, cs / 2, cs);
    g_assert_cmpmem(across, cs / 2, im.content + cs / 2, cs / 2);
    for (uint32_t i = cs / 2; i < cs; i++) {
        g_assert_cmpint(across[i], ==, 0);
    }
    check_counts(bs, 0, 0);
    bdrv_close(bs);
    img_free(&im);
}

/* A partial write inflates the cluster into a new normal one; the compressed
 * data's cluster is freed (no leak) and the rest of the data is kept. */
static void test_write_partial(gconstpointer data)
{
    uint32_t cs = GPOINTER_TO_UINT(data);
    Img im;
    make_compressed(&im, "wpart.qcow2", cs, cs >= 4096 ? 700 : 16);
    BlockNode *bs = must_open(im.path, BDRV_O_RDWR);
    fill(bs, cs / 4, 100, 0xab);
    memset(im.content + cs / 4, 0xab, 100);
    g_autofree uint8_t *buf = must_read(bs, 0, cs);
    g_assert_cmpmem(buf, cs, im.content, cs);
    check_counts(bs, 0, 0);
    bdrv_close(bs);

    uint64_t e = read_be64(im.path, im.l2);
    g_assert_cmpuint(e & COMPRESSED, ==, 0);
    g_assert_cmpuint(e & COPIED, ==, COPIED);
    check_file_clean(im.path);
    bs = must_open(im.path, 0);
    g_autofree uint8_t *again = must_read(bs, 0, cs);
    g_assert_cmpmem(again, cs, im.content, cs);
    bdrv_close(bs);
    img_free(&im);
}

static void test_write_whole_and_discard(void)
{
    const uint32_t cs = 4096;
    Img im;
    make_compressed(&im, "wwhole.qcow2", cs, 0);
    BlockNode *bs = must_open(im.path, BDRV_O_RDWR);
    fill(bs, 0, cs, 0x5c);
    g_autofree uint8_t *buf = must_read(bs, 0, cs);
    for (uint32_t i = 0; i < cs; i++) {
        g_assert_cmpint(buf[i], ==, 0x5c);
    }
    check_counts(bs, 0, 0);
    bdrv_close(bs);
    img_free(&im);

    GError *err = NULL;
    make_compressed(&im, "discard.qcow2", cs, 100);
    bs = must_open(im.path, BDRV_O_RDWR | BDRV_O_UNMAP);
    g_assert_true(bdrv_discard(bs, 0, cs, &err));
    g_assert_no_error(err);
    g_autofree uint8_t *z = must_read(bs, 0, cs);
    for (uint32_t i = 0; i < cs; i++) {
        g_assert_cmpint(z[i], ==, 0);
    }
    check_counts(bs, 0, 0);
    bdrv_close(bs);
    g_assert_cmpuint(read_be64(im.path, im.l2) & COMPRESSED, ==, 0);
    img_free(&im);
}

/* A snapshot shares the compressed cluster: a write copies it out, the
 * snapshot still reads the old data, deleting it leaves a clean image. */
static void test_snapshot_shares(void)
{
    const uint32_t cs = 65536;
    GError *err = NULL;
    Img im;
    make_compressed(&im, "snap.qcow2", cs, 3000);
    BlockNode *bs = must_open(im.path, BDRV_O_RDWR);
    BlockSnapshotInfo sn = { .name = (char *)"s1" };
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    fill(bs, 10, 10, 0xee);
    check_counts(bs, 0, 0);
    g_assert_true(bdrv_snapshot_apply(bs, "s1", &err));
    g_assert_no_error(err);
    g_autofree uint8_t *buf = must_read(bs, 0, cs);
    g_assert_cmpmem(buf, cs, im.content, cs);
    check_counts(bs, 0, 0);
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "s1", &err));
    g_assert_no_error(err);
    fill(bs, 0, 512, 0x12);
    check_counts(bs, 0, 0);
    bdrv_close(bs);
    check_file_clean(im.path);
    img_free(&im);
}

static void test_hostile(void)
{
    const uint32_t cs = 65536;
    GError *err = NULL;
    Img im;
    make_compressed(&im, "hostile.qcow2", cs, 500);
    BlockNode *bs;

    /* data far past the end of the file */
    patch_be64(im.path, im.l2, descriptor(&im, 1ULL << 40, 3));
    bs = must_open(im.path, 0);
    expect_read_fails(bs, 0, 4096, "outside");
    bdrv_close(bs);

    /* data inside the header cluster */
    patch_be64(im.path, im.l2, descriptor(&im, 8, 0));
    bs = must_open(im.path, 0);
    expect_read_fails(bs, 0, 4096, "outside");
    bdrv_close(bs);

    /* sector count too small: the stream is cut off */
    patch_be64(im.path, im.l2, descriptor(&im, im.data_off, 0));
    bs = must_open(im.path, 0);
    expect_read_fails(bs, 0, 4096, "inflate");
    bdrv_close(bs);

    /* the largest sector count, running past EOF: what exists is read */
    patch_be64(im.path, im.l2, descriptor(&im, im.data_off, cs / 256 - 1));
    bs = must_open(im.path, 0);
    g_autofree uint8_t *buf = must_read(bs, 0, cs);
    g_assert_cmpmem(buf, cs, im.content, cs);
    bdrv_close(bs);

    /* two entries on one stream: both read; check sees the refcount gap;
     * a write into one drops the only reference without crashing */
    uint64_t e = exact_descriptor(&im, im.data_off, im.clen);
    patch_be64(im.path, im.l2, e);
    patch_be64(im.path, im.l2 + 8, e);
    bs = must_open(im.path, BDRV_O_RDWR);
    g_autofree uint8_t *two = must_read(bs, 0, 2 * cs);
    g_assert_cmpmem(two, cs, im.content, cs);
    g_assert_cmpmem(two + cs, cs, im.content, cs);
    BlockCheckResult res;
    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_cmpint(res.corruptions, >, 0);
    fill(bs, 0, 512, 0x31);
    g_autofree uint8_t *second = must_read(bs, cs, cs);
    g_assert_cmpmem(second, cs, im.content, cs);
    bdrv_close(bs);

    img_free(&im);

    /* COPIED on a compressed entry is a corruption */
    make_compressed(&im, "hostile-copied.qcow2", cs, 500);
    e = exact_descriptor(&im, im.data_off, im.clen);
    patch_be64(im.path, im.l2, COPIED | e);
    bs = must_open(im.path, 0);
    check_counts(bs, 1, 0);
    bdrv_close(bs);

    /* garbage instead of a deflate stream */
    patch_be64(im.path, im.l2, e);
    g_autofree uint8_t *junk = g_malloc(im.clen);
    memset(junk, 0xff, im.clen);
    patch(im.path, im.data_off, junk, im.clen);
    bs = must_open(im.path, BDRV_O_RDWR);
    expect_read_fails(bs, 0, 4096, "inflate");
    g_autofree uint8_t *w = g_malloc(512);
    g_assert_false(bdrv_pwrite(bs, 100, w, 512, &err));   /* needs old data */
    g_assert_nonnull(strstr(err->message, "inflate"));
    g_clear_error(&err);
    check_counts(bs, 0, 0);                             /* nothing leaked */
    bdrv_close(bs);

    /* a range on the L1 table: a write or discard would drop a reference
     * on metadata, so both fail */
    patch_be64(im.path, im.l2, descriptor(&im, im.l1, 1));
    bs = must_open(im.path, BDRV_O_RDWR);
    g_assert_false(bdrv_pwrite(bs, 0, w, 512, &err));
    g_assert_nonnull(strstr(err->message, "overlaps qcow2 metadata"));
    g_clear_error(&err);
    bdrv_close(bs);
    img_free(&im);

    make_compressed(&im, "hostile2.qcow2", cs, 0);
    patch_be64(im.path, im.l2, descriptor(&im, im.l1, 1));
    bs = must_open(im.path, BDRV_O_RDWR | BDRV_O_UNMAP);
    g_assert_false(bdrv_discard(bs, 0, cs, &err));
    g_assert_nonnull(strstr(err->message, "overlaps qcow2 metadata"));
    g_clear_error(&err);
    bdrv_close(bs);
    img_free(&im);
}

int main(int argc, char **argv)
{
    static const uint32_t sizes[] = { 512, 4096, 65536, 2 * 1024 * 1024 };
    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("test-qcow2-compress-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree char *r = g_strdup_printf("/qcow2-compress/read/%u",
                                             sizes[i]);
        g_autofree char *w = g_strdup_printf("/qcow2-compress/write/%u",
                                             sizes[i]);
        g_test_add_data_func(r, GUINT_TO_POINTER(sizes[i]), test_read);
        g_test_add_data_func(w, GUINT_TO_POINTER(sizes[i]),
                             test_write_partial);
    }
    g_test_add_func("/qcow2-compress/write-whole-discard",
                    test_write_whole_and_discard);
    g_test_add_func("/qcow2-compress/snapshot", test_snapshot_shares);
    g_test_add_func("/qcow2-compress/hostile", test_hostile);
    int ret = g_test_run();
    rm_scratch_dir(tmpdir);
    return ret;
}
