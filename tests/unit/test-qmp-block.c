/*
 * The block QMP commands on real qcow2 nodes (block layer, no machine): node
 * lookup by drive id and node name, query-block, every block-dirty-bitmap
 * command's success and failure with QEMU's messages, persistence in the
 * image after close (checked by reopening, and with qemu-img when present),
 * and 'transaction' with bitmap actions: all applied, or on a failure in a
 * later action nothing changed (added bitmaps gone, cleared/merged bits and
 * enabled states restored, removed bitmaps kept).
 */
#include <string.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"
#include "monitor/hmp.h"
#include "monitor/qmp-block.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"

typedef struct Fixture {
    char *dir;
    char *path;
    BlockNode *bs;              /* the drive's root node, while open */
    BlockBackend *blk;          /* drive "drive0" */
    BlockBackendList *blks;
    QmpRegistry *reg;
    Hmp *hmp;
    QmpSession session;
} Fixture;

static void open_image(Fixture *fx)
{
    g_autoptr(GError) err = NULL;

    fx->bs = bdrv_open(fx->path, "qcow2", BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    bdrv_set_node_name(fx->bs, "disk0");
    fx->blk = blk_new("drive0", fx->bs, NULL);
    g_assert_true(blk_attach_dev(fx->blk, "/machine/peripheral/virtio0", &err));
    g_assert_true(blk_list_add(fx->blks, fx->blk, &err));
}

static void close_image(Fixture *fx)
{
    blk_list_remove(fx->blks, fx->blk);
    blk_free(fx->blk);          /* closes fx->bs */
    fx->blk = NULL;
    fx->bs = NULL;
}

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    fx->dir = g_dir_make_tmp("qmp-block-XXXXXX", NULL);
    fx->path = g_build_filename(fx->dir, "d.qcow2", NULL);
    g_assert_true(bdrv_create("qcow2", fx->path, 64 * MiB, NULL, &err));
    g_assert_no_error(err);
    fx->blks = blk_list_new();
    open_image(fx);
    fx->reg = qmp_registry_new();
    qmp_register_core_commands(fx->reg);
    fx->hmp = hmp_new(fx->reg);
    qmp_register_block_commands(fx->reg, fx->blks);
    fx->session.negotiated = true;
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    if (fx->blk) {
        close_image(fx);
    }
    blk_list_free(fx->blks);
    qmp_registry_free(fx->reg);
    hmp_free(fx->hmp);
    unlink(fx->path);
    rmdir(fx->dir);
    g_free(fx->path);
    g_free(fx->dir);
}

static json_object *ask(Fixture *fx, const char *text)
{
    return qmp_dispatch_text(fx->reg, &fx->session, text, strlen(text));
}

/* Member lookups for replies whose shape the test knows. */
static json_object *mem(json_object *o, const char *name)
{
    json_object *v = NULL;

    g_assert_true(json_object_object_get_ex(o, name, &v));
    return v;
}

static const char *mem_str(json_object *o, const char *name)
{
    return json_object_get_string(mem(o, name));
}

static bool mem_bool(json_object *o, const char *name)
{
    return json_object_get_boolean(mem(o, name));
}

static int64_t mem_int(json_object *o, const char *name)
{
    return json_object_get_int64(mem(o, name));
}

static bool has(json_object *o, const char *name)
{
    return json_object_object_get_ex(o, name, NULL);
}

static void assert_ok(Fixture *fx, const char *text)
{
    g_autoptr(json_object) r = ask(fx, text);

    if (!has(r, "return")) {
        g_error("%s -> %s", text, json_object_to_json_string(r));
    }
}

static void assert_error(Fixture *fx, const char *text, const char *cls,
                         const char *desc)
{
    g_autoptr(json_object) r = ask(fx, text);
    json_object *e;

    if (!has(r, "error")) {
        g_error("%s -> %s (wanted an error)", text, json_object_to_json_string(r));
    }
    e = mem(r, "error");
    g_assert_cmpstr(mem_str(e, "class"), ==, cls);
    g_assert_cmpstr(mem_str(e, "desc"), ==, desc);
}

static BdrvDirtyBitmap *bitmap(Fixture *fx, const char *name)
{
    BdrvDirtyBitmap *bm;

    bdrv_lock(fx->bs);
    bm = bdrv_find_dirty_bitmap(fx->bs, name);
    bdrv_unlock(fx->bs);
    return bm;
}

static uint64_t dirty(Fixture *fx, const char *name)
{
    BdrvDirtyBitmap *bm = bitmap(fx, name);
    uint64_t n;

    g_assert_nonnull(bm);
    bdrv_lock(fx->bs);
    n = bdrv_get_dirty_count(bm);
    bdrv_unlock(fx->bs);
    return n;
}

static bool enabled(Fixture *fx, const char *name)
{
    BdrvDirtyBitmap *bm = bitmap(fx, name);
    bool on;

    g_assert_nonnull(bm);
    bdrv_lock(fx->bs);
    on = bdrv_dirty_bitmap_enabled(bm);
    bdrv_unlock(fx->bs);
    return on;
}

static void write_at(Fixture *fx, uint64_t offset, size_t len)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *buf = g_malloc0(len);

    memset(buf, 0x5a, len);
    g_assert_true(bdrv_pwrite(fx->bs, offset, buf, len, &err));
    g_assert_no_error(err);
}

/* QEMU's message for the busy case is not pinned here; the class is. */
static void assert_error_any(Fixture *fx, const char *text)
{
    g_autoptr(json_object) r = ask(fx, text);

    g_assert_true(has(r, "error"));
}

#define ADD(args) "{\"execute\": \"block-dirty-bitmap-add\", \"arguments\": {" args "}}"
#define CMD(cmd, args) "{\"execute\": \"" cmd "\", \"arguments\": {" args "}}"
#define TX(actions) "{\"execute\": \"transaction\", \"arguments\": {\"actions\": [" \
    actions "]}}"
#define ACT(type, data) "{\"type\": \"" type "\", \"data\": {" data "}}"

static void test_add_and_lookup(Fixture *fx, gconstpointer d)
{
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"a\""));
    assert_ok(fx, ADD("\"node\": \"disk0\", \"name\": \"b\", \"granularity\": 512"));
    g_assert_cmpuint(bdrv_dirty_bitmap_granularity(bitmap(fx, "a")), ==, 64 * KiB);
    g_assert_cmpuint(bdrv_dirty_bitmap_granularity(bitmap(fx, "b")), ==, 512);
    assert_error(fx, ADD("\"node\": \"drive0\", \"name\": \"a\""), "GenericError",
                 "Bitmap already exists: a");
    assert_error(fx, ADD("\"node\": \"nope\", \"name\": \"c\""), "GenericError",
                 "Cannot find device='nope' nor node-name='nope'");
    assert_error(fx, ADD("\"node\": \"drive0\", \"name\": \"\""), "GenericError",
                 "Bitmap name cannot be empty");
    assert_error(fx, ADD("\"node\": \"drive0\", \"name\": \"c\", \"granularity\": 1000"),
                 "GenericError", "Granularity must be power of 2 and at least 512");
    assert_error(fx, ADD("\"node\": \"drive0\", \"name\": \"c\", \"granularity\": 256"),
                 "GenericError", "Granularity must be power of 2 and at least 512");
    assert_error(fx, ADD("\"node\": \"drive0\", \"name\": \"c\", \"granularity\": -1"),
                 "GenericError", "Parameter 'granularity' expects uint32_t");
    assert_error(fx, ADD("\"node\": \"drive0\""), "GenericError",
                 "Parameter 'name' is missing");
    g_assert_null(bitmap(fx, "c"));
}

static void test_query_block(Fixture *fx, gconstpointer d)
{
    g_autoptr(json_object) r = NULL;
    json_object *dev, *ins, *bm, *bms;

    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"old\""));
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"new\", \"disabled\": true, "
                      "\"persistent\": true"));
    write_at(fx, 0, 4096);
    r = ask(fx, "{\"execute\": \"query-block\"}");
    dev = json_object_array_get_idx(mem(r, "return"), 0);
    g_assert_cmpstr(mem_str(dev, "device"), ==, "drive0");
    g_assert_cmpstr(mem_str(dev, "qdev"), ==,
                    "/machine/peripheral/virtio0");
    ins = mem(dev, "inserted");
    g_assert_cmpstr(mem_str(ins, "node-name"), ==, "disk0");
    g_assert_cmpstr(mem_str(ins, "drv"), ==, "qcow2");
    g_assert_cmpstr(mem_str(ins, "file"), ==, fx->path);
    g_assert_false(mem_bool(ins, "ro"));
    g_assert_cmpint(mem_int(mem(ins, "image"), "virtual-size"), ==, 64 * MiB);
    bms = mem(ins, "dirty-bitmaps");
    g_assert_cmpuint(json_object_array_length(bms), ==, 2);
    bm = json_object_array_get_idx(bms, 0);         /* newest first, as QEMU */
    g_assert_cmpstr(mem_str(bm, "name"), ==, "new");
    g_assert_false(mem_bool(bm, "recording"));
    g_assert_true(mem_bool(bm, "persistent"));
    g_assert_cmpint(mem_int(bm, "count"), ==, 0);
    bm = json_object_array_get_idx(bms, 1);
    g_assert_true(mem_bool(bm, "recording"));
    g_assert_false(mem_bool(bm, "busy"));
    g_assert_cmpint(mem_int(bm, "granularity"), ==, 64 * KiB);
    g_assert_cmpint(mem_int(bm, "count"), ==, 64 * KiB);
}

static void test_hmp_info_block(Fixture *fx, gconstpointer d)
{
    g_autofree char *out = hmp_run(fx->hmp, "info block");
    g_autofree char *want = g_strdup_printf("drive0 (disk0): %s (qcow2)\r\n"
                                            "    Attached to:      /machine/peripheral/virtio0\r\n"
                                            "    Cache mode:       writeback\r\n", fx->path);

    g_assert_cmpstr(out, ==, want);
}

static void test_remove_clear_enable_disable(Fixture *fx, gconstpointer d)
{
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"a\""));
    write_at(fx, 0, 4096);
    g_assert_cmpuint(dirty(fx, "a"), ==, 64 * KiB);
    assert_ok(fx, CMD("block-dirty-bitmap-clear", "\"node\": \"disk0\", \"name\": \"a\""));
    g_assert_cmpuint(dirty(fx, "a"), ==, 0);
    assert_ok(fx, CMD("block-dirty-bitmap-disable", "\"node\": \"drive0\", \"name\": \"a\""));
    g_assert_false(enabled(fx, "a"));
    write_at(fx, 0, 4096);
    g_assert_cmpuint(dirty(fx, "a"), ==, 0);
    assert_ok(fx, CMD("block-dirty-bitmap-enable", "\"node\": \"drive0\", \"name\": \"a\""));
    g_assert_true(enabled(fx, "a"));
    assert_ok(fx, CMD("block-dirty-bitmap-remove", "\"node\": \"drive0\", \"name\": \"a\""));
    g_assert_null(bitmap(fx, "a"));
    assert_error(fx, CMD("block-dirty-bitmap-remove", "\"node\": \"drive0\", \"name\": \"a\""),
                 "GenericError", "Dirty bitmap 'a' not found");
    assert_error(fx, CMD("block-dirty-bitmap-clear", "\"node\": \"x\", \"name\": \"a\""),
                 "GenericError", "Node 'x' not found");
    assert_error(fx, CMD("block-dirty-bitmap-enable", "\"node\": \"drive0\", \"name\": \"q\""),
                 "GenericError", "Dirty bitmap 'q' not found");
    assert_error(fx, CMD("block-dirty-bitmap-disable", "\"node\": \"drive0\""),
                 "GenericError", "Parameter 'name' is missing");
}

static void test_busy_bitmap_refused(Fixture *fx, gconstpointer d)
{
    g_autoptr(json_object) r = NULL;
    BdrvDirtyBitmap *bm;

    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"a\""));
    bm = bitmap(fx, "a");
    bdrv_lock(fx->bs);
    bdrv_dirty_bitmap_set_busy(bm, true);
    bdrv_unlock(fx->bs);
    r = ask(fx, CMD("block-dirty-bitmap-remove", "\"node\": \"drive0\", \"name\": \"a\""));
    g_assert_true(has(r, "error"));
    g_assert_nonnull(bitmap(fx, "a"));
    bdrv_lock(fx->bs);
    bdrv_dirty_bitmap_set_busy(bm, false);
    bdrv_unlock(fx->bs);
}

static void test_merge(Fixture *fx, gconstpointer d)
{
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"src1\""));
    write_at(fx, 0, 4096);
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"src2\""));
    write_at(fx, 1 * MiB, 4096);
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"dst\", \"disabled\": true"));
    assert_ok(fx, CMD("block-dirty-bitmap-merge", "\"node\": \"drive0\", \"target\": "
                      "\"dst\", \"bitmaps\": [\"src1\", {\"node\": \"disk0\", "
                      "\"name\": \"src2\"}]"));
    g_assert_cmpuint(dirty(fx, "dst"), ==, 2 * 64 * KiB);
    assert_error(fx, CMD("block-dirty-bitmap-merge", "\"node\": \"drive0\", \"target\": "
                         "\"dst\", \"bitmaps\": [\"zz\"]"),
                 "GenericError", "Dirty bitmap 'zz' not found");
    assert_error(fx, CMD("block-dirty-bitmap-merge", "\"node\": \"drive0\", \"target\": "
                         "\"dst\", \"bitmaps\": [{\"node\": \"nonode\", \"name\": \"b\"}]"),
                 "GenericError", "Node 'nonode' not found");
    assert_error(fx, CMD("block-dirty-bitmap-merge", "\"node\": \"drive0\", \"target\": "
                         "\"dst\", \"bitmaps\": [{\"node\": \"disk0\"}]"),
                 "GenericError", "Parameter 'bitmaps[0].name' is missing");
    assert_error(fx, CMD("block-dirty-bitmap-merge", "\"node\": \"drive0\", \"target\": "
                         "\"dst\", \"bitmaps\": [1]"),
                 "GenericError", "Invalid parameter type for 'null', expected: "
                 "BlockDirtyBitmapOrStr");
    assert_error(fx, CMD("block-dirty-bitmap-merge", "\"node\": \"drive0\", \"target\": "
                         "\"nope\", \"bitmaps\": []"),
                 "GenericError", "Dirty bitmap 'nope' not found");
}

static void test_transaction_all(Fixture *fx, gconstpointer d)
{
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"a\""));
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"gone\""));
    write_at(fx, 0, 4096);
    assert_ok(fx, TX(ACT("block-dirty-bitmap-add", "\"node\": \"drive0\", \"name\": \"n\"")
                     "," ACT("block-dirty-bitmap-merge", "\"node\": \"drive0\", "
                             "\"target\": \"n\", \"bitmaps\": [\"a\"]")
                     "," ACT("block-dirty-bitmap-clear", "\"node\": \"drive0\", \"name\": \"a\"")
                     "," ACT("block-dirty-bitmap-disable", "\"node\": \"drive0\", "
                            "\"name\": \"a\"")
                     "," ACT("block-dirty-bitmap-remove", "\"node\": \"drive0\", "
                            "\"name\": \"gone\"")));
    g_assert_cmpuint(dirty(fx, "n"), ==, 64 * KiB);      /* merged before the clear */
    g_assert_cmpuint(dirty(fx, "a"), ==, 0);
    g_assert_false(enabled(fx, "a"));
    g_assert_null(bitmap(fx, "gone"));
}

static void test_transaction_rollback(Fixture *fx, gconstpointer d)
{
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"a\""));
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"keep\""));
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"off\", \"disabled\": true"));
    write_at(fx, 0, 4096);
    /* Fails in the last action: each earlier one must be undone. */
    assert_error(fx, TX(ACT("block-dirty-bitmap-add", "\"node\": \"drive0\", \"name\": \"t1\"")
                        "," ACT("block-dirty-bitmap-clear", "\"node\": \"drive0\", "
                               "\"name\": \"a\"")
                        "," ACT("block-dirty-bitmap-merge", "\"node\": \"drive0\", "
                               "\"target\": \"t1\", \"bitmaps\": [\"a\"]")
                        "," ACT("block-dirty-bitmap-disable", "\"node\": \"drive0\", "
                               "\"name\": \"a\"")
                        "," ACT("block-dirty-bitmap-enable", "\"node\": \"drive0\", "
                               "\"name\": \"off\"")
                        "," ACT("block-dirty-bitmap-remove", "\"node\": \"drive0\", "
                               "\"name\": \"keep\"")
                        "," ACT("block-dirty-bitmap-add", "\"node\": \"drive0\", "
                               "\"name\": \"a\"")),
                 "GenericError", "Bitmap already exists: a");
    g_assert_null(bitmap(fx, "t1"));
    g_assert_cmpuint(dirty(fx, "a"), ==, 64 * KiB);
    g_assert_true(enabled(fx, "a"));
    g_assert_false(enabled(fx, "off"));
    g_assert_nonnull(bitmap(fx, "keep"));
    /* A bitmap left busy by the aborted remove would refuse this. */
    assert_ok(fx, CMD("block-dirty-bitmap-clear", "\"node\": \"drive0\", \"name\": \"keep\""));
    /* Fails in its second action: the first (an add) is undone. */
    assert_error(fx, TX(ACT("block-dirty-bitmap-add", "\"node\": \"drive0\", \"name\": \"t2\"")
                        "," ACT("block-dirty-bitmap-add", "\"node\": \"nope\", "
                               "\"name\": \"t3\"")),
                 "GenericError", "Cannot find device='nope' nor node-name='nope'");
    g_assert_null(bitmap(fx, "t2"));
    /* remove then use in one transaction: the removed one is busy. */
    assert_error_any(fx, TX(ACT("block-dirty-bitmap-remove", "\"node\": \"drive0\", "
                                "\"name\": \"keep\"")
                            "," ACT("block-dirty-bitmap-clear", "\"node\": \"drive0\", "
                                   "\"name\": \"keep\"")));
    g_assert_nonnull(bitmap(fx, "keep"));
}

static char *qemu_img_info(const char *path)
{
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    const char *argv[] = { qemu_img, "info", "--force-share", path, NULL };
    char *out = NULL;
    int status = -1;

    if (!qemu_img ||
        !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                      &out, NULL, &status, NULL) || status != 0) {
        g_free(out);
        return NULL;
    }
    return out;
}

static void test_persistent_in_image(Fixture *fx, gconstpointer d)
{
    g_autofree char *info = NULL;

    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"p1\", \"persistent\": true"));
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"p2\", \"persistent\": true, "
                      "\"disabled\": true, \"granularity\": 131072"));
    assert_ok(fx, ADD("\"node\": \"drive0\", \"name\": \"temp\""));
    write_at(fx, 0, 4096);
    close_image(fx);
    info = qemu_img_info(fx->path);
    if (info) {
        g_assert_nonnull(strstr(info, "name: p1"));
        g_assert_nonnull(strstr(info, "name: p2"));
        g_assert_nonnull(strstr(info, "granularity: 131072"));
        g_assert_null(strstr(info, "name: temp"));
    } else {
        g_test_message("qemu-img not found: checked by reopening only");
    }
    open_image(fx);
    g_assert_nonnull(bitmap(fx, "p1"));
    g_assert_nonnull(bitmap(fx, "p2"));
    g_assert_null(bitmap(fx, "temp"));
    g_assert_cmpuint(dirty(fx, "p1"), ==, 64 * KiB);
    g_assert_false(enabled(fx, "p2"));
    /* Removing a persistent bitmap removes it from the image too. */
    assert_ok(fx, CMD("block-dirty-bitmap-remove", "\"node\": \"drive0\", \"name\": \"p1\""));
    close_image(fx);
    open_image(fx);
    g_assert_null(bitmap(fx, "p1"));
    g_assert_nonnull(bitmap(fx, "p2"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD_TEST(path, fn) \
    g_test_add("/qmp-block/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD_TEST("add-and-lookup", test_add_and_lookup);
    ADD_TEST("query-block", test_query_block);
    ADD_TEST("hmp-info-block", test_hmp_info_block);
    ADD_TEST("remove-clear-enable-disable", test_remove_clear_enable_disable);
    ADD_TEST("busy-refused", test_busy_bitmap_refused);
    ADD_TEST("merge", test_merge);
    ADD_TEST("transaction-all", test_transaction_all);
    ADD_TEST("transaction-rollback", test_transaction_rollback);
    ADD_TEST("persistent-in-image", test_persistent_in_image);
    return g_test_run();
}
