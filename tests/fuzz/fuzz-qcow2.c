/*
 * Fuzz target: a hostile qcow2 image. The input is written to a scratch file
 * that is opened read-only as qcow2 (header, extensions, refcounts, snapshot
 * table and persistent bitmaps are parsed); then info, snapshot list, a
 * read-only check, guest reads across the disk, a vmstate read and each
 * snapshot's VM state read in place run; then
 * (for inputs under 1 MiB) it is opened read-write for writes, zeroes, a
 * snapshot create/apply/delete, a repair and a resize. Any failure must be
 * a clean error.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *scratch_path(void)
{
    static char *path;
    if (!path) {
        /* tmpfs if there is one: g_file_set_contents() syncs every input */
        path = g_strdup_printf("%s/tern-fuzz-qcow2-%d.img",
                               g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)
                               ? "/dev/shm" : g_get_tmp_dir(), (int)getpid());
    }
    return path;
}

static void read_some(BlockNode *bs)
{
    uint64_t len = bdrv_getlength(bs);
    static uint8_t buf[64 * 1024];
    /* the start, a few spread offsets, and the last bytes */
    for (int i = 0; i <= 8 && len; i++) {
        uint64_t off = len / 8 * (uint64_t)i;
        uint64_t n = MIN(sizeof(buf), len - MIN(off, len));
        if (n && !bdrv_pread(bs, off, buf, n, NULL)) {
            break;
        }
    }
    bdrv_load_vmstate(bs, 0, buf, 4096, NULL);
    /* Each snapshot's VM state, read in place through its own L1 table. */
    g_autoptr(GPtrArray) sns = bdrv_snapshot_list(bs, NULL);
    for (guint i = 0; sns && i < sns->len && i < 16; i++) {
        const BlockSnapshotInfo *sn = sns->pdata[i];
        bdrv_snapshot_load_vmstate(bs, sn->id_str, 0, buf, 4096, NULL);
        bdrv_snapshot_load_vmstate(bs, sn->id_str, sn->vm_state_size, buf, 512,
                                   NULL);
    }
}

static void write_some(const char *path)
{
    static uint8_t buf[8192];
    BlockCheckResult res;
    BlockNode *bs = bdrv_open(path, "qcow2",
                              BDRV_O_RDWR | BDRV_O_NO_LOCK | BDRV_O_UNMAP,
                              NULL);
    if (!bs) {
        return;
    }
    uint64_t len = bdrv_getlength(bs);
    memset(buf, 0xa5, sizeof(buf));
    if (len >= sizeof(buf)) {
        bdrv_pwrite(bs, 0, buf, sizeof(buf), NULL);
        bdrv_pwrite(bs, len / 2 / 512 * 512, buf, 512, NULL);
        bdrv_write_zeroes(bs, len - sizeof(buf), sizeof(buf), true, NULL);
        bdrv_write_zeroes(bs, len / 4 / 512 * 512, sizeof(buf), false, NULL);
    }
    bdrv_save_vmstate(bs, 0, buf, sizeof(buf), NULL);
    BlockSnapshotInfo sn = { .name = (char *)"fuzz", .icount = -1 };
    if (bdrv_snapshot_create(bs, &sn, NULL)) {
        bdrv_pwrite(bs, 0, buf, 512, NULL);
        bdrv_snapshot_apply(bs, "fuzz", NULL);
        bdrv_snapshot_delete(bs, NULL, "fuzz", NULL);
    }
    bdrv_check(bs, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &res, NULL);
    if (len < 1 * GiB) {
        bdrv_truncate(bs, len + 1 * MiB, NULL);
    }
    bdrv_close(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = scratch_path();
    GError *err = NULL;

    if (!g_file_set_contents(path, (const char *)data, (gssize)size, NULL)) {
        abort();
    }
    BlockNode *bs = bdrv_open(path, "qcow2", BDRV_O_NO_LOCK, &err);
    if (!bs) {
        g_assert(err && err->message && *err->message);
        g_error_free(err);
        unlink(path);
        return 0;
    }
    BlockImageInfo *info = NULL;
    if (bdrv_get_info(bs, &info, NULL)) {
        block_image_info_free(info);
    }
    GPtrArray *list = bdrv_snapshot_list(bs, NULL);
    if (list) {
        g_ptr_array_unref(list);
    }
    BlockCheckResult res;
    bdrv_check(bs, BDRV_CHECK_REPORT, &res, NULL);
    read_some(bs);
    bdrv_close(bs);
    if (size < 1 * MiB) {
        write_some(path);
    }
    unlink(path);
    return 0;
}
