/*
 * Helpers the block-layer unit tests share (test-block.c, test-qcow2*.c,
 * test-write-intent.c): opening a qcow2 image that must open, filling a
 * range, patching bytes of an image file to make it hostile, reading a
 * big-endian field back, a scratch directory with a fresh image (and its
 * removal), a bitmap tests' fixture, adding a persistent bitmap, a clean
 * check, an O_DIRECT open, and kill -9 of a writer. Header-only (static
 * inline) so each test stays one file.
 */
#ifndef TESTS_UNIT_TEST_BLOCK_UTIL_H
#define TESTS_UNIT_TEST_BLOCK_UTIL_H

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"
#include "block/dirty-bitmap.h"

static inline BlockNode *must_open(const char *path, int flags)
{
    GError *err = NULL;
    BlockNode *bs = bdrv_open(path, "qcow2", flags, &err);
    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

/* A qcow2 image opened read-write with O_DIRECT (cache=none); NULL, the
 * test skipped, where the temp file system has no O_DIRECT. */
static inline BlockNode *open_nocache_or_skip(const char *path)
{
    GError *err = NULL;
    BlockNode *bs = bdrv_open(path, "qcow2", BDRV_O_RDWR | BDRV_O_NOCACHE,
                              &err);

    if (!bs && strstr(err->message, "Invalid argument")) {
        g_test_skip("the temp file system has no O_DIRECT");
        g_clear_error(&err);
        return NULL;
    }
    g_assert_no_error(err);
    return bs;
}

/* Writes len bytes of 'pat' at off through the block layer. */
static inline void fill(BlockNode *bs, uint64_t off, uint64_t len, int pat)
{
    GError *err = NULL;
    g_autofree uint8_t *buf = g_malloc(len);
    memset(buf, pat, len);
    g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
    g_assert_no_error(err);
}

static inline void patch(const char *path, uint64_t off, const void *data,
                         size_t len)
{
    int fd = open(path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, data, len, (off_t)off), ==, (ssize_t)len);
    close(fd);
}

static inline void patch_be32(const char *path, uint64_t off, uint32_t v)
{
    uint32_t be = GUINT32_TO_BE(v);
    patch(path, off, &be, 4);
}

static inline void patch_be64(const char *path, uint64_t off, uint64_t v)
{
    uint64_t be = GUINT64_TO_BE(v);
    patch(path, off, &be, 8);
}

static inline uint64_t read_be64(const char *path, uint64_t off)
{
    uint64_t be = 0;
    int fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &be, 8, (off_t)off), ==, 8);
    close(fd);
    return GUINT64_FROM_BE(be);
}

/* The qcow2 image at path, opened read-only, checks clean: no corruption,
 * no leak, no check error. */
static inline void assert_file_clean(const char *path)
{
    GError *err = NULL;
    BlockNode *bs = must_open(path, 0);
    BlockCheckResult res;

    g_assert_true(bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
    bdrv_close(bs);
}

/* A scratch directory (g_dir_make_tmp template) holding a fresh qcow2 image
 * of 'size' bytes; returns the image's path, *dir the directory's. */
static inline char *scratch_qcow2(const char *tmpl, uint64_t size, char **dir)
{
    GError *err = NULL;
    char *path;

    *dir = g_dir_make_tmp(tmpl, &err);
    g_assert_no_error(err);
    path = g_build_filename(*dir, "t.qcow2", NULL);
    g_assert_true(bdrv_create("qcow2", path, size, NULL, &err));
    g_assert_no_error(err);
    return path;
}

/* Removes the (flat) scratch directory and frees its name. */
static inline void rm_scratch_dir(char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, n, NULL);
        unlink(p);
    }
    rmdir(dir);
    g_free(dir);
}

/* The bitmap tests' image size: not a multiple of any granularity. */
#define BITMAP_TEST_DISK_SIZE (64 * MiB + 4096)

/* A GTest fixture: a fresh qcow2 image of BITMAP_TEST_DISK_SIZE in a
 * scratch directory of its own. */
typedef struct Fixture {
    char *dir;
    char *path;
} Fixture;

static inline void fixture_setup(Fixture *f, gconstpointer data)
{
    f->path = scratch_qcow2("tern-bitmap-test-XXXXXX", BITMAP_TEST_DISK_SIZE,
                            &f->dir);
}

static inline void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_free(f->path);
    rm_scratch_dir(f->dir);
}

/* A new persistent bitmap on bs (takes the node lock). */
static inline BdrvDirtyBitmap *add_persistent(BlockNode *bs, const char *name,
                                              uint32_t gran)
{
    GError *err = NULL;
    BdrvDirtyBitmap *bm;

    bdrv_lock(bs);
    bm = bdrv_create_dirty_bitmap(bs, gran, name, &err);
    g_assert_no_error(err);
    g_assert_true(bdrv_dirty_bitmap_make_persistent(bm, true, &err));
    g_assert_no_error(err);
    bdrv_unlock(bs);
    return bm;
}

/* kill -9 of a writer: a child opens path with 'flags', writes 4 KiB at
 * i MiB + skew for i < 64 (then flushes if asked), says so and waits; it is
 * SIGKILLed then, leaving the image as the page cache holds it. */
static inline void kill9_writer(const char *path, int flags, uint64_t skew,
                                bool flush)
{
    int pipefd[2], status;
    char c;
    pid_t pid;

    g_assert_cmpint(pipe(pipefd), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        BlockNode *w = bdrv_open(path, "qcow2", flags, NULL);
        uint8_t buf[4096] = { 1 };

        for (int i = 0; w && i < 64; i++) {
            bdrv_pwrite(w, (uint64_t)i * MiB + skew, buf, sizeof(buf), NULL);
        }
        if (w && flush) {
            bdrv_flush(w, NULL);
        }
        (void)!write(pipefd[1], w ? "k" : "f", 1);
        for (;;) {
            pause();
        }
    }
    close(pipefd[1]);
    g_assert_cmpint(read(pipefd[0], &c, 1), ==, 1);
    close(pipefd[0]);
    g_assert_cmpint(c, ==, 'k');
    kill(pid, SIGKILL);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
}

#endif
