/*
 * -blockdev nodes (hw/block/blockdev.c) on real images, no machine: a file
 * node and a qcow2 node over it become a drive in the drive set; names,
 * references and deletion follow QEMU's rules and words; auto-read-only
 * reopens a file node for a writable parent; a migration target's nodes are
 * inactive but its drives stay writable; every failure leaves the set as it
 * was (ASan checks that nothing leaks).
 */
#include <string.h>
#include <unistd.h>

#include "hw/block/blockdev.h"
#include "softmmu/vm-config.h"

typedef struct Fixture {
    char *dir;
    char *img;
    VmConfig *cfg;
    DriveSet *drives;
    BlockdevSet *nodes;
} Fixture;

static void setup(Fixture *fx, gconstpointer incoming)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *img2 = NULL;

    fx->dir = g_dir_make_tmp("blockdev-XXXXXX", NULL);
    fx->img = g_build_filename(fx->dir, "d.qcow2", NULL);
    g_assert_true(bdrv_create("qcow2", fx->img, 16 * MiB, NULL, &err));
    img2 = g_strdup_printf("%s2", fx->img);   /* a second image beside it */
    g_assert_true(bdrv_create("qcow2", img2, 16 * MiB, NULL, &err));
    fx->cfg = vm_config_new();
    fx->drives = drive_set_new(fx->cfg, &err);
    g_assert_no_error(err);
    fx->nodes = blockdev_set_new(fx->drives, incoming != NULL);
}

static void teardown(Fixture *fx, gconstpointer data)
{
    g_autofree char *img2 = NULL;

    drive_set_free(fx->drives);
    blockdev_set_free(fx->nodes);
    vm_config_free(fx->cfg);
    img2 = g_strdup_printf("%s2", fx->img);
    unlink(img2);
    unlink(fx->img);
    rmdir(fx->dir);
    g_free(fx->img);
    g_free(fx->dir);
}

static bool add(Fixture *fx, const char *fmt, GError **errp)
{
    g_autofree char *arg = strstr(fmt, "%s") ? g_strdup_printf(fmt, fx->img)
                                             : g_strdup(fmt);

    return blockdev_set_add_option(fx->nodes, arg, errp);
}

static void add_ok(Fixture *fx, const char *fmt)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(add(fx, fmt, &err));
    g_assert_no_error(err);
}

/* errp, not *errp: the call that sets it is another argument. */
static void expect(bool ok, GError **errp, const char *phrase)
{
    g_assert_false(ok);
    g_assert_nonnull(*errp);
    if (!strstr((*errp)->message, phrase)) {
        g_error("message '%s' lacks '%s'", (*errp)->message, phrase);
    }
    g_clear_error(errp);
}

#define FILE_NODE "{\"driver\":\"file\",\"filename\":\"%s\",\"node-name\":\"f1\"," \
                  "\"auto-read-only\":true,\"discard\":\"unmap\"}"
#define QCOW2_NODE "{\"node-name\":\"q1\",\"read-only\":false,\"driver\":\"qcow2\"," \
                   "\"file\":\"f1\",\"backing\":null}"

static void test_libvirt_pair(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    Drive *d;

    add_ok(fx, FILE_NODE);
    /* auto-read-only: read-only until a writer comes. */
    g_assert_true(bdrv_is_read_only(blockdev_node_at(fx->nodes, 0)));
    add_ok(fx, QCOW2_NODE);
    g_assert_cmpstr(bdrv_get_node_name(blockdev_node_at(fx->nodes, 0)), ==, "q1");
    g_assert_cmpstr(bdrv_get_node_name(blockdev_node_at(fx->nodes, 1)), ==, "f1");
    g_assert_null(blockdev_node_at(fx->nodes, 2));
    g_assert_false(bdrv_is_read_only(blockdev_node_at(fx->nodes, 1)));

    expect(blockdev_del(fx->nodes, "f1", &err), &err, "Block device f1 is in use");
    d = blockdev_claim(fx->nodes, "q1", "/machine/peripheral/vd0/virtio-backend", &err);
    g_assert_no_error(err);
    g_assert_nonnull(d);
    g_assert_false(d->read_only);
    g_assert_cmpuint(blk_list_count(fx->drives->backends), ==, 1);
    g_assert_cmpstr(blk_dev(d->blk), ==, "/machine/peripheral/vd0/virtio-backend");
    g_assert_null(blockdev_claim(fx->nodes, "q1", "x", &err));
    g_clear_error(&err);
    expect(blockdev_del(fx->nodes, "q1", &err), &err, "Node q1 is in use");
}

static void test_names_and_references(Fixture *fx, gconstpointer data)
{
    static const struct {
        const char *arg, *phrase;
    } bad[] = {
        { "{\"driver\":\"file\",\"filename\":\"%s\",\"node-name\":\"1x\"}",
          "Invalid node-name: '1x'" },
        { "{\"driver\":\"file\",\"filename\":\"%s\"}", "'node-name' must be specified" },
        { "{\"driver\":\"qcow2\",\"node-name\":\"q2\",\"file\":\"nosuch\"}",
          "Cannot find device='nosuch' nor node-name='nosuch'" },
        { "{\"driver\":\"qcow2\",\"node-name\":\"q2\",\"file\":\"f1\",\"backing\":\"b\"}",
          "no backing files" },
        { "{\"driver\":\"file\",\"filename\":\"%s\",\"node-name\":\"f2\","
          "\"force-share\":true}", "read-only images" },
        { "{\"driver\":\"qcow2\",\"node-name\":\"q2\",\"file\":{\"driver\":\"file\","
          "\"filename\":\"%s2\",\"discard\":\"sometimes\"}}",
          "does not accept value 'sometimes'" },
        { "{\"driver\":\"file\",\"filename\":\"/nonexistent/d\",\"node-name\":\"f2\"}",
          "Could not open '/nonexistent/d'" },
        { "{\"driver\":\"vmdk\",\"node-name\":\"v\"}", "does not accept value 'vmdk'" },
        { "driver=file,node-name=f2,filename=%s,read-only=maybe", "'maybe'" },
        { "driver=qcow2,file=f1,file.driver=file", "used inconsistently" },
        { "{\"driver\":\"file\"", "JSON" },
    };

    add_ok(fx, FILE_NODE);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;

        expect(add(fx, bad[i].arg, &err), &err, bad[i].phrase);
        g_assert_null(blockdev_node_at(fx->nodes, 1));   /* nothing was left */
    }
    {
        g_autoptr(GError) err = NULL;

        expect(add(fx, FILE_NODE, &err), &err, "Duplicate nodes with node-name='f1'");
        g_clear_error(&err);
        expect(blockdev_del(fx->nodes, "nosuch", &err), &err,
               "Failed to find node with node-name='nosuch'");
    }
}

static void test_delete(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    /* A file node made on its own outlives its parent... */
    add_ok(fx, FILE_NODE);
    add_ok(fx, QCOW2_NODE);
    g_assert_true(blockdev_del(fx->nodes, "q1", &err));
    g_assert_cmpstr(bdrv_get_node_name(blockdev_node_at(fx->nodes, 0)), ==, "f1");
    add_ok(fx, QCOW2_NODE);                  /* and can have another */
    g_assert_true(blockdev_del(fx->nodes, "q1", &err));
    g_assert_true(blockdev_del(fx->nodes, "f1", &err));
    g_assert_null(blockdev_node_at(fx->nodes, 0));
    /* ...one made inline goes with it. */
    add_ok(fx, "driver=qcow2,node-name=q3,file.driver=file,file.filename=%s");
    g_assert_nonnull(blockdev_node_at(fx->nodes, 1));
    g_assert_true(blockdev_del(fx->nodes, "q3", &err));
    g_assert_no_error(err);
    g_assert_null(blockdev_node_at(fx->nodes, 0));
}

/* cache.direct on the file node: O_DIRECT under qcow2 too; discard=unmap
 * on the format node lets a guest's discards through. */
static void test_cache_and_discard(Fixture *fx, gconstpointer data)
{
    add_ok(fx, "{\"driver\":\"qcow2\",\"node-name\":\"q2\",\"discard\":\"unmap\","
               "\"file\":{\"driver\":\"file\",\"filename\":\"%s2\","
               "\"cache\":{\"direct\":true}}}");
    g_assert_true(bdrv_get_flags(blockdev_node_at(fx->nodes, 0)) & BDRV_O_UNMAP);
    g_assert_true(bdrv_get_flags(blockdev_node_at(fx->nodes, 1)) & BDRV_O_NOCACHE);
}

static void test_read_only_parent(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    Drive *d;

    add_ok(fx, FILE_NODE);
    add_ok(fx, "{\"node-name\":\"q1\",\"read-only\":true,\"driver\":\"qcow2\","
               "\"file\":\"f1\"}");
    g_assert_true(bdrv_is_read_only(blockdev_node_at(fx->nodes, 1)));
    d = blockdev_claim(fx->nodes, "q1", "vd", &err);
    g_assert_nonnull(d);
    g_assert_true(d->read_only);
}

/* A migration target opens its nodes inactive; the drive over one must
 * still be writable once migration hands the image over. */
static void test_incoming(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    Drive *d;

    add_ok(fx, FILE_NODE);
    add_ok(fx, QCOW2_NODE);
    g_assert_true(bdrv_is_inactive(blockdev_node_at(fx->nodes, 0)));
    d = blockdev_claim(fx->nodes, "q1", "vd", &err);
    g_assert_false(d->read_only);
    g_assert_true(bdrv_activate(drive_node(d), &err));
    g_assert_no_error(err);
    g_assert_false(bdrv_is_read_only(drive_node(d)));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/blockdev/libvirt-pair", Fixture, NULL, setup, test_libvirt_pair,
               teardown);
    g_test_add("/blockdev/names-and-references", Fixture, NULL, setup,
               test_names_and_references, teardown);
    g_test_add("/blockdev/delete", Fixture, NULL, setup, test_delete, teardown);
    g_test_add("/blockdev/cache-and-discard", Fixture, NULL, setup,
               test_cache_and_discard, teardown);
    g_test_add("/blockdev/read-only-parent", Fixture, NULL, setup,
               test_read_only_parent, teardown);
    g_test_add("/blockdev/incoming", Fixture, "incoming", setup, test_incoming,
               teardown);
    return g_test_run();
}
