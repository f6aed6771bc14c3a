/* Unit tests for the VMState engine: golden wire bytes for every field kind
 * and for subsections, the JSON VM description, version handling, hooks, and
 * hostile input (bad counts, unknown subsections, every truncation). */
#include <string.h>

#include "migration/vmstate.h"
#include "tern/json.h"

typedef struct Inner {
    uint16_t a;
    uint8_t b;
} Inner;

static const VMStateDescription vmstate_inner = {
    .name = "inner",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(a, Inner),
        VMSTATE_UINT8(b, Inner),
        VMSTATE_END_OF_LIST()
    },
};

typedef struct Dev {
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    bool flag;
    uint8_t regs[3];
    uint8_t blob[4];
    uint32_t nr_items;
    uint16_t items[4];
    Inner inner;
    Inner pair[2];
    Inner *ptr;
    uint32_t name_len;
    uint8_t *name;
    uint32_t v2_only;           /* field added in version 2 */
    uint32_t extra;             /* in subsection dev/extra */
    bool extra_needed;
    int pre_save_calls;
    int post_load_version;
} Dev;

static bool extra_needed(void *opaque)
{
    return ((Dev *)opaque)->extra_needed;
}

static const VMStateDescription vmstate_dev_extra = {
    .name = "dev/extra",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = extra_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(extra, Dev),
        VMSTATE_END_OF_LIST()
    },
};

static bool dev_pre_save(void *opaque, GError **errp)
{
    ((Dev *)opaque)->pre_save_calls++;
    return true;
}

static bool dev_post_load(void *opaque, int version_id, GError **errp)
{
    Dev *d = opaque;

    d->post_load_version = version_id;
    if (d->u8 == 0xee) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "u8 must not be 0xee");
        return false;
    }
    return true;
}

static const VMStateDescription vmstate_dev = {
    .name = "dev",
    .version_id = 2,
    .minimum_version_id = 1,
    .pre_save = dev_pre_save,
    .post_load = dev_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(u8, Dev),
        VMSTATE_UINT16(u16, Dev),
        VMSTATE_UINT32(u32, Dev),
        VMSTATE_UINT64(u64, Dev),
        VMSTATE_INT32(i32, Dev),
        VMSTATE_BOOL(flag, Dev),
        VMSTATE_UINT8_ARRAY(regs, Dev, 3),
        VMSTATE_BUFFER(blob, Dev),
        VMSTATE_UINT32(nr_items, Dev),
        VMSTATE_VARRAY_UINT32(items, Dev, nr_items, 4, vmstate_info_uint16,
                              uint16_t),
        VMSTATE_STRUCT(inner, Dev, 0, vmstate_inner, Inner),
        VMSTATE_STRUCT_ARRAY(pair, Dev, 2, vmstate_inner, Inner),
        VMSTATE_STRUCT_POINTER(ptr, Dev, vmstate_inner, Inner),
        VMSTATE_UINT32(name_len, Dev),
        VMSTATE_VBUFFER_ALLOC_UINT32(name, Dev, name_len, 64),
        VMSTATE_UINT32_V(v2_only, Dev, 2),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_dev_extra,
        NULL
    },
};

static const uint8_t golden_dev[] = {
    0x11,                                           /* u8 */
    0x22, 0x33,                                     /* u16 */
    0x44, 0x55, 0x66, 0x77,                         /* u32 */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* u64 */
    0xff, 0xff, 0xff, 0xfe,                         /* i32 = -2 */
    0x01,                                           /* flag */
    0xa1, 0xa2, 0xa3,                               /* regs[3] */
    'b', 'l', 'o', 'b',                             /* blob */
    0x00, 0x00, 0x00, 0x02,                         /* nr_items */
    0x10, 0x01, 0x20, 0x02,                         /* items[0..1] */
    0x12, 0x34, 0x56,                               /* inner */
    0x00, 0x01, 0x02, 0x00, 0x03, 0x04,             /* pair[2] */
    0xbe, 0xef, 0x07,                               /* *ptr */
    0x00, 0x00, 0x00, 0x03, 'c', 'p', 'u',          /* name_len, name */
    0x00, 0x00, 0x00, 0x09,                         /* v2_only */
    0x05, 0x09, 'd', 'e', 'v', '/', 'e', 'x', 't', 'r', 'a',
    0x00, 0x00, 0x00, 0x01,                         /* subsection v1 */
    0xca, 0xfe, 0xba, 0xbe,                         /* extra */
};

static Inner ptr_target = { 0xbeef, 7 };

static void fill_dev(Dev *d)
{
    memset(d, 0, sizeof(*d));
    d->u8 = 0x11;
    d->u16 = 0x2233;
    d->u32 = 0x44556677;
    d->u64 = 0x0102030405060708ull;
    d->i32 = -2;
    d->flag = true;
    memcpy(d->regs, "\xa1\xa2\xa3", 3);
    memcpy(d->blob, "blob", 4);
    d->nr_items = 2;
    d->items[0] = 0x1001;
    d->items[1] = 0x2002;
    d->inner = (Inner){ 0x1234, 0x56 };
    d->pair[0] = (Inner){ 1, 2 };
    d->pair[1] = (Inner){ 3, 4 };
    d->ptr = &ptr_target;
    d->name_len = 3;
    d->name = (uint8_t *)g_strdup("cpu");
    d->v2_only = 9;
    d->extra = 0xcafebabe;
    d->extra_needed = true;
}

static GBytes *save_dev(Dev *d, json_object *vmdesc)
{
    QEMUFile *f = qemu_file_new_mem_output();
    GError *err = NULL;
    const GByteArray *out;
    GBytes *bytes;

    g_assert_true(vmstate_save(f, &vmstate_dev, d, vmdesc, &err));
    g_assert_no_error(err);
    out = qemu_file_mem_output_data(f);
    bytes = g_bytes_new(out->data, out->len);
    g_assert_true(qemu_fclose(f, NULL));
    return bytes;
}

/* Load 'len' bytes of 'data' as version 'version'; returns the error. */
static GError *load_dev(Dev *d, const uint8_t *data, size_t len, int version)
{
    g_autoptr(GBytes) b = g_bytes_new(data, len);
    QEMUFile *f = qemu_file_new_mem_input(b);
    Inner *target = g_new0(Inner, 1);
    GError *err = NULL;

    memset(d, 0, sizeof(*d));
    d->ptr = target;
    if (vmstate_load(f, &vmstate_dev, d, version, &err)) {
        g_assert_no_error(err);
        g_assert_true(qemu_file_at_eof(f));
    }
    qemu_fclose(f, NULL);
    return err;
}

static void free_dev(Dev *d)
{
    if (d->ptr != &ptr_target) {
        g_free(d->ptr);
    }
    g_free(d->name);
}

static void test_save_golden(void)
{
    Dev d;
    g_autoptr(GBytes) b = NULL;

    fill_dev(&d);
    b = save_dev(&d, NULL);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                    golden_dev, sizeof(golden_dev));
    g_assert_cmpint(d.pre_save_calls, ==, 1);
    free_dev(&d);
}

static void test_subsection_not_needed(void)
{
    Dev d;
    g_autoptr(GBytes) b = NULL;

    fill_dev(&d);
    d.extra_needed = false;
    b = save_dev(&d, NULL);
    /* Same bytes without the 19-byte subsection. */
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                    golden_dev, sizeof(golden_dev) - 19);
    free_dev(&d);
}

static void test_load_golden(void)
{
    Dev d;
    GError *err = load_dev(&d, golden_dev, sizeof(golden_dev), 2);

    g_assert_no_error(err);
    g_assert_cmpuint(d.u8, ==, 0x11);
    g_assert_cmpuint(d.u16, ==, 0x2233);
    g_assert_cmpuint(d.u32, ==, 0x44556677);
    g_assert_cmphex(d.u64, ==, 0x0102030405060708ull);
    g_assert_cmpint(d.i32, ==, -2);
    g_assert_true(d.flag);
    g_assert_cmpmem(d.regs, 3, "\xa1\xa2\xa3", 3);
    g_assert_cmpmem(d.blob, 4, "blob", 4);
    g_assert_cmpuint(d.nr_items, ==, 2);
    g_assert_cmphex(d.items[1], ==, 0x2002);
    g_assert_cmphex(d.inner.a, ==, 0x1234);
    g_assert_cmpuint(d.pair[1].b, ==, 4);
    g_assert_cmphex(d.ptr->a, ==, 0xbeef);
    g_assert_cmpmem(d.name, d.name_len, "cpu", 3);
    g_assert_cmpuint(d.v2_only, ==, 9);
    g_assert_cmphex(d.extra, ==, 0xcafebabe);
    g_assert_cmpint(d.post_load_version, ==, 2);
    free_dev(&d);
}

/* A version 1 stream lacks v2_only; the subsection follows the name. */
static void test_load_old_version(void)
{
    g_autoptr(GByteArray) v1 = g_byte_array_new();
    size_t v2_at = sizeof(golden_dev) - 19 - 4;
    Dev d;
    GError *err;

    g_byte_array_append(v1, golden_dev, v2_at);
    g_byte_array_append(v1, golden_dev + v2_at + 4, 19);
    err = load_dev(&d, v1->data, v1->len, 1);
    g_assert_no_error(err);
    g_assert_cmpuint(d.v2_only, ==, 0);
    g_assert_cmphex(d.extra, ==, 0xcafebabe);
    g_assert_cmpint(d.post_load_version, ==, 1);
    free_dev(&d);
}

static void expect_load_error(const uint8_t *data, size_t len, int version,
                              const char *needle)
{
    Dev d;
    GError *err = load_dev(&d, data, len, version);

    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
    free_dev(&d);
}

static void test_bad_versions(void)
{
    expect_load_error(golden_dev, sizeof(golden_dev), 3, "newer than supported");
    expect_load_error(golden_dev, sizeof(golden_dev), 0, "older than the oldest");
}

static void test_varray_count_too_big(void)
{
    g_autofree uint8_t *bad = g_memdup2(golden_dev, sizeof(golden_dev));

    bad[30] = 5;                       /* nr_items = 5 > capacity 4 */
    expect_load_error(bad, sizeof(golden_dev), 2, "at most 4 allowed");
}

static void test_vbuffer_too_big(void)
{
    g_autofree uint8_t *bad = g_memdup2(golden_dev, sizeof(golden_dev));

    bad[47] = 0x7f;                    /* name_len = 0x7f000003 */
    expect_load_error(bad, sizeof(golden_dev), 2, "at most 64 allowed");
}

static void test_unknown_subsection(void)
{
    g_autofree uint8_t *bad = g_memdup2(golden_dev, sizeof(golden_dev));

    memcpy(bad + sizeof(golden_dev) - 19 + 7, "xtrz", 4);   /* dev/extrz */
    expect_load_error(bad, sizeof(golden_dev), 2,
                      "unknown subsection 'dev/extrz'");
}

static void test_subsection_bad_version(void)
{
    g_autofree uint8_t *bad = g_memdup2(golden_dev, sizeof(golden_dev));

    bad[sizeof(golden_dev) - 5] = 2;
    expect_load_error(bad, sizeof(golden_dev), 2, "'dev/extra': stream version 2");
    /* 0xffffffff is not version -1 */
    memset(bad + sizeof(golden_dev) - 8, 0xff, 4);
    expect_load_error(bad, sizeof(golden_dev), 2,
                      "'dev/extra': stream version 4294967295 is newer");
}

static void test_post_load_error(void)
{
    g_autofree uint8_t *bad = g_memdup2(golden_dev, sizeof(golden_dev));

    bad[0] = 0xee;
    expect_load_error(bad, sizeof(golden_dev), 2, "u8 must not be 0xee");
}

/* Every proper prefix of the stream fails cleanly (ASan watches). The full
 * stream minus the subsection is valid: the subsection is optional. */
static void test_every_truncation(void)
{
    for (size_t len = 0; len < sizeof(golden_dev); len++) {
        Dev d;
        GError *err = load_dev(&d, golden_dev, len, 2);

        if (len == sizeof(golden_dev) - 19) {
            g_assert_no_error(err);
        } else {
            g_assert_nonnull(err);
            g_error_free(err);
        }
        free_dev(&d);
    }
}

static void test_vmdesc(void)
{
    g_autoptr(json_object) root = json_object_new_object();
    g_autoptr(GBytes) b = NULL;
    const char *json;
    Dev d;

    fill_dev(&d);
    b = save_dev(&d, root);
    json = json_object_to_json_string_ext(root, TERN_JSON_COMPACT);
    g_assert_nonnull(strstr(json, "\"vmsd_name\":\"dev\",\"version\":2,"));
    g_assert_nonnull(strstr(json,
        "{\"name\":\"u32\",\"type\":\"uint32\",\"size\":4}"));
    g_assert_nonnull(strstr(json,
        "{\"name\":\"regs\",\"array_len\":3,\"type\":\"uint8\",\"size\":1}"));
    g_assert_nonnull(strstr(json,
        "{\"name\":\"blob\",\"type\":\"buffer\",\"size\":4}"));
    g_assert_nonnull(strstr(json, "{\"name\":\"inner\",\"type\":\"struct\","
        "\"struct\":{\"vmsd_name\":\"inner\",\"version\":1,\"fields\":["));
    g_assert_nonnull(strstr(json,
        "{\"name\":\"pair\",\"array_len\":2,\"type\":\"struct\""));
    g_assert_nonnull(strstr(json, "\"subsections\":[{\"vmsd_name\":"
        "\"dev/extra\",\"version\":1,\"fields\":[{\"name\":\"extra\","
        "\"type\":\"uint32\",\"size\":4}]}]"));
    free_dev(&d);
}

/* QEMU's compatibility field kinds: _EQUAL values and unused bytes. */
typedef struct Compat {
    uint32_t queues;
    int32_t irq;
    uint8_t flags;
    bool ok[2];
} Compat;

static const VMStateDescription vmstate_compat = {
    .name = "compat",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_EQUAL(queues, Compat),
        VMSTATE_UNUSED(6),
        VMSTATE_INT32_EQUAL(irq, Compat),
        VMSTATE_UINT8(flags, Compat),
        VMSTATE_BOOL_ARRAY(ok, Compat, 2),
        VMSTATE_END_OF_LIST()
    },
};

static void test_equal_and_unused(void)
{
    static const uint8_t golden[] = {
        0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfb, 0x81, 1, 0,
    };
    Compat c = { 4, -5, 0x81, { true, false } }, d = { 4, -5, 0, { 0 } };
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;
    g_autoptr(GBytes) b = NULL;
    GError *err = NULL;
    QEMUFile *in;

    g_assert_true(vmstate_save(f, &vmstate_compat, &c, NULL, NULL));
    out = qemu_file_mem_output_data(f);
    g_assert_cmpmem(out->data, out->len, golden, sizeof(golden));
    qemu_fclose(f, NULL);

    /* Unused bytes are skipped whatever they hold. */
    {
        uint8_t noisy[sizeof(golden)];

        memcpy(noisy, golden, sizeof(golden));
        memset(noisy + 4, 0xaa, 6);
        b = g_bytes_new(noisy, sizeof(noisy));
    }
    in = qemu_file_new_mem_input(b);
    g_assert_true(vmstate_load(in, &vmstate_compat, &d, 1, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(d.flags, ==, 0x81);
    g_assert_true(d.ok[0]);
    qemu_fclose(in, NULL);

    /* A different queue count here is refused, naming the field. */
    d.queues = 2;
    in = qemu_file_new_mem_input(b);
    g_assert_false(vmstate_load(in, &vmstate_compat, &d, 1, &err));
    g_assert_nonnull(strstr(err->message, "queues is 4 in the stream but 2 here"));
    g_clear_error(&err);
    qemu_fclose(in, NULL);
    d.queues = 4;
    d.irq = 7;
    in = qemu_file_new_mem_input(b);
    g_assert_false(vmstate_load(in, &vmstate_compat, &d, 1, &err));
    g_assert_nonnull(strstr(err->message, "irq is -5 in the stream but 7 here"));
    g_clear_error(&err);
    qemu_fclose(in, NULL);
}

/* A variable buffer of length 0 with no allocation saves as nothing and
 * loads back as no allocation. */
static void test_empty_vbuffer(void)
{
    Dev d;
    g_autoptr(GBytes) b = NULL;
    GError *err;

    fill_dev(&d);
    g_free(d.name);
    d.name = NULL;
    d.name_len = 0;
    b = save_dev(&d, NULL);
    g_assert_cmpuint(g_bytes_get_size(b), ==, sizeof(golden_dev) - 3);
    free_dev(&d);
    err = load_dev(&d, g_bytes_get_data(b, NULL), g_bytes_get_size(b), 2);
    g_assert_no_error(err);
    g_assert_null(d.name);
    g_assert_cmphex(d.extra, ==, 0xcafebabe);
    free_dev(&d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmstate/save-golden", test_save_golden);
    g_test_add_func("/vmstate/subsection-not-needed", test_subsection_not_needed);
    g_test_add_func("/vmstate/load-golden", test_load_golden);
    g_test_add_func("/vmstate/load-old-version", test_load_old_version);
    g_test_add_func("/vmstate/bad-versions", test_bad_versions);
    g_test_add_func("/vmstate/varray-count-too-big", test_varray_count_too_big);
    g_test_add_func("/vmstate/vbuffer-too-big", test_vbuffer_too_big);
    g_test_add_func("/vmstate/unknown-subsection", test_unknown_subsection);
    g_test_add_func("/vmstate/subsection-bad-version",
                    test_subsection_bad_version);
    g_test_add_func("/vmstate/post-load-error", test_post_load_error);
    g_test_add_func("/vmstate/every-truncation", test_every_truncation);
    g_test_add_func("/vmstate/vmdesc", test_vmdesc);
    g_test_add_func("/vmstate/equal-and-unused", test_equal_and_unused);
    g_test_add_func("/vmstate/empty-vbuffer", test_empty_vbuffer);
    return g_test_run();
}
