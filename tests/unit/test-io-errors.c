/*
 * Host I/O errors keep their errno on the way up, and policy decides on it.
 * Under raw and qcow2 a protocol layer fails on demand (test-block-fault.h)
 * with ENOSPC or EIO and a message that names neither: every read, write
 * (into allocated and unallocated qcow2 clusters), flush, discard and
 * write-zeroes that fails must carry exactly that errno through the format
 * driver and the block layer. Then the -drive policies (werror=report|stop|
 * enospc, rerror=report|stop) on such errors: ENOSPC stops a werror=enospc
 * drive and EIO is reported, whatever the message says - an EIO error
 * renamed "No space left on device" is still reported.
 */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "hw/block/drive.h"
#include "test-block-fault.h"

#define IMG_SIZE (1 * MiB)

typedef struct Img {
    char *dir, *path;
} Img;

static void img_new(Img *img, const char *format)
{
    g_autoptr(GError) err = NULL;

    img->dir = g_dir_make_tmp("test-io-errors-XXXXXX", NULL);
    img->path = g_build_filename(img->dir, "disk.img", NULL);
    g_assert_true(bdrv_create(format, img->path, IMG_SIZE, NULL, &err));
    g_assert_no_error(err);
}

static void img_free(Img *img)
{
    g_remove(img->path);
    g_rmdir(img->dir);
    g_free(img->path);
    g_free(img->dir);
}

/* ok, or failed with exactly 'errnum' (a cache may absorb a metadata write;
 * what fails must say why). Returns whether it failed. */
static bool failed_with(bool ok, GError *err, int errnum, const char *what)
{
    if (ok) {
        g_assert_null(err);
        return false;
    }
    g_assert_nonnull(err);
    if (tern_error_errno(err) != errnum) {
        g_error("%s: errno %d, expected %d (%s)", what, tern_error_errno(err),
                errnum, err->message);
    }
    g_assert_nonnull(strstr(err->message, "injected"));
    return true;
}

/* Runs one call under the fault; true if it failed (with errnum). */
#define FAILS(call, what)                                                   \
    (g_clear_error(&err), ok = (call), failed_with(ok, err, errnum, what))

static void check_layers(const char *format, int errnum)
{
    g_autoptr(GError) err = NULL;
    uint8_t buf[4096];
    BlockNode *bs;
    Img img;
    unsigned failures = 0;
    bool ok;

    img_new(&img, format);
    /* (discards reach the file only with BDRV_O_UNMAP) */
    bs = bdrv_open(img.path, format, BDRV_O_RDWR | BDRV_O_UNMAP, &err);
    g_assert_no_error(err);
    test_fault_attach(bs);
    memset(buf, 0x5a, sizeof(buf));
    g_assert_true(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));   /* allocated */

    test_fault_set(errnum);
    g_assert_true(FAILS(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err), "write"));
    g_assert_true(FAILS(bdrv_pwrite(bs, 512 * KiB, buf, sizeof(buf), &err),
                        "allocating write"));
    g_assert_true(FAILS(bdrv_pread(bs, 0, buf, sizeof(buf), &err), "read"));
    g_assert_true(FAILS(bdrv_flush(bs, &err), "flush"));
    failures += FAILS(bdrv_discard(bs, 0, 64 * KiB, &err), "discard");
    failures += FAILS(bdrv_write_zeroes(bs, 0, 64 * KiB, true, &err),
                      "write-zeroes");
    failures += FAILS(bdrv_flush(bs, &err), "second flush");
    g_clear_error(&err);
    g_test_message("%s: %u of discard, write-zeroes, flush failed with %d",
                   format, failures, errnum);
    g_assert_cmpuint(failures, >, 0);

    test_fault_set(0);
    g_assert_true(bdrv_pread(bs, 0, buf, sizeof(buf), &err));
    g_assert_no_error(err);
    bdrv_close(bs);
    img_free(&img);
}

static void test_raw_keeps_errno(void)
{
    check_layers("raw", ENOSPC);
    check_layers("raw", EIO);
}

static void test_qcow2_keeps_errno(void)
{
    check_layers("qcow2", ENOSPC);
    check_layers("qcow2", EIO);
}

/* The error a write or read of d's first (allocated) sector fails with
 * under the fault 'errnum'. */
static GError *io_error(Drive *d, bool is_read, int errnum)
{
    uint8_t buf[512] = { 0 };
    GError *err = NULL;
    bool ok;

    g_assert_true(bdrv_pwrite(drive_node(d), 0, buf, sizeof(buf), NULL));
    test_fault_set(errnum);
    ok = is_read ? bdrv_pread(drive_node(d), 0, buf, sizeof(buf), &err)
                 : bdrv_pwrite(drive_node(d), 0, buf, sizeof(buf), &err);
    test_fault_set(0);
    g_assert_false(ok);
    g_assert_cmpint(tern_error_errno(err), ==, errnum);
    return err;
}

static Drive *drive_with(const Img *img, const char *policy)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *spec = g_strdup_printf("file=%s,format=qcow2,if=none,"
                                            "id=d0%s", img->path, policy);
    Drive *d = drive_open(spec, 0, &err);

    g_assert_no_error(err);
    test_fault_attach(drive_node(d));
    return d;
}

static void test_policy_decides_on_errno(void)
{
    g_autoptr(GError) nospc = NULL, eio = NULL, rd = NULL;
    Drive *d;
    Img img;

    img_new(&img, "qcow2");
    d = drive_with(&img, ",werror=enospc,rerror=stop");
    nospc = io_error(d, false, ENOSPC);
    eio = io_error(d, false, EIO);
    rd = io_error(d, true, EIO);
    g_assert_null(strstr(nospc->message, g_strerror(ENOSPC)));
    g_assert_cmpint(drive_error_action(d, false, nospc), ==, DRIVE_ERROR_STOP);
    g_assert_cmpint(drive_error_action(d, false, eio), ==, DRIVE_ERROR_REPORT);
    g_assert_cmpint(drive_error_action(d, true, rd), ==, DRIVE_ERROR_STOP);
    /* The text says ENOSPC, the code says EIO: the code wins. */
    g_free(eio->message);
    eio->message = g_strdup(g_strerror(ENOSPC));
    g_assert_cmpint(drive_error_action(d, false, eio), ==, DRIVE_ERROR_REPORT);
    /* An error that carries no errno is no ENOSPC either. */
    g_assert_cmpint(drive_error_action(d, false, NULL), ==, DRIVE_ERROR_REPORT);
    drive_free(d);

    d = drive_with(&img, ",werror=stop");
    g_assert_cmpint(drive_error_action(d, false, eio), ==, DRIVE_ERROR_STOP);
    g_assert_cmpint(drive_error_action(d, false, nospc), ==, DRIVE_ERROR_STOP);
    g_assert_cmpint(drive_error_action(d, true, rd), ==, DRIVE_ERROR_REPORT);
    drive_free(d);

    d = drive_with(&img, ",werror=report");
    g_assert_cmpint(drive_error_action(d, false, nospc), ==, DRIVE_ERROR_REPORT);
    drive_free(d);
    img_free(&img);
}

/* The errno rides the GError itself: copies and prefixes keep it. */
static void test_errno_travels_with_the_error(void)
{
    GError *err = NULL, *copy;

    tern_set_error_errno(&err, ENOSPC, "write");
    g_prefix_error(&err, "qcow2: ");
    copy = g_error_copy(err);
    g_assert_cmpint(tern_error_errno(copy), ==, ENOSPC);
    g_assert_cmpstr(copy->message, ==, "qcow2: write: No space left on device");
    g_assert_true(g_error_matches(copy, TERN_ERROR, TERN_ERR_IO));
    g_error_free(copy);
    g_error_free(err);
    g_assert_cmpint(tern_error_errno(NULL), ==, 0);
    err = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_NOSPC, "other domain");
    g_assert_cmpint(tern_error_errno(err), ==, 0);
    g_clear_error(&err);
    g_assert_false(tern_invalid(&err, "bad %s", "input"));
    g_assert_error(err, TERN_ERROR, TERN_ERR_INVALID);
    g_assert_cmpstr(err->message, ==, "bad input");
    g_assert_cmpint(tern_error_errno(err), ==, 0);
    g_error_free(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/io-errors/errno/travels", test_errno_travels_with_the_error);
    g_test_add_func("/io-errors/errno/raw", test_raw_keeps_errno);
    g_test_add_func("/io-errors/errno/qcow2", test_qcow2_keeps_errno);
    g_test_add_func("/io-errors/policy/decides-on-errno",
                    test_policy_decides_on_errno);
    return g_test_run();
}
