/* Unit tests for the savevm stream: golden framing bytes (header,
 * configuration, START/PART/END/FULL sections, footers, EOF, vmdesc), a
 * save/load round trip through the registry, the command writers and the
 * loader's checks on hostile streams and postcopy command order. */
#include <string.h>

#include "migration/ram.h"
#include "migration/savevm.h"
#include "migration/stream-dump.h"

/* ---- a fake live handler and a device ---- */

typedef struct Live {
    int rounds;             /* source: iterations before done */
    uint32_t loaded[8];     /* destination: values read, in order */
    int nr_loaded;
    bool setup_called, cleanup_called;
} Live;

static bool live_setup(QEMUFile *f, void *opaque, GError **errp)
{
    qemu_put_be32(f, 0xaaaa0001);
    return true;
}

static int live_iterate(QEMUFile *f, void *opaque, GError **errp)
{
    Live *l = opaque;

    qemu_put_be32(f, 0xbbbb0000 + l->rounds);
    return --l->rounds <= 0 ? 1 : 0;
}

static bool live_complete(QEMUFile *f, void *opaque, GError **errp)
{
    qemu_put_be32(f, 0xcccc0000);
    return true;
}

static bool live_load(QEMUFile *f, void *opaque, int version_id, GError **errp)
{
    Live *l = opaque;
    uint32_t v = qemu_get_be32(f);

    if (l->nr_loaded == G_N_ELEMENTS(l->loaded)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "too many parts");
        return false;
    }
    l->loaded[l->nr_loaded++] = v;
    return true;
}

static bool live_load_setup(QEMUFile *f, void *opaque, GError **errp)
{
    ((Live *)opaque)->setup_called = true;
    return true;
}

static void live_load_cleanup(void *opaque)
{
    ((Live *)opaque)->cleanup_called = true;
}

static const SaveVMHandlers live_handlers = {
    .save_setup = live_setup,
    .save_live_iterate = live_iterate,
    .save_live_complete_precopy = live_complete,
    .load_setup = live_load_setup,
    .load_state = live_load,
    .load_cleanup = live_load_cleanup,
};

typedef struct Dev {
    uint32_t x;
} Dev;

static const VMStateDescription vmstate_dev = {
    .name = "dev",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(x, Dev),
        VMSTATE_END_OF_LIST()
    },
};

typedef struct Fixture {
    SaveVM *sv;
    Live live;
    Dev dev;
} Fixture;

static void fixture_init(Fixture *fx, const char *machine)
{
    memset(fx, 0, sizeof(*fx));
    fx->sv = savevm_new(machine);
    savevm_register_live(fx->sv, "live", 0, 1, &live_handlers, &fx->live);
    savevm_register_vmstate(fx->sv, NULL, VMSTATE_INSTANCE_ID_ANY,
                            &vmstate_dev, &fx->dev);
}

static const uint8_t golden_head[] = {
    0x51, 0x45, 0x56, 0x4d, 0x00, 0x00, 0x00, 0x03,       /* QEVM v3 */
    0x07, 0x00, 0x00, 0x00, 0x07, 'p', 'c', '-', 't', 'e', 's', 't',
    /* START section 1 "live" instance 0 version 1 */
    0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 'l', 'i', 'v', 'e',
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xaa, 0xaa, 0x00, 0x01,
    0x7e, 0x00, 0x00, 0x00, 0x01,
    /* PART section 1 */
    0x02, 0x00, 0x00, 0x00, 0x01, 0xbb, 0xbb, 0x00, 0x01,
    0x7e, 0x00, 0x00, 0x00, 0x01,
    /* END section 1 */
    0x03, 0x00, 0x00, 0x00, 0x01, 0xcc, 0xcc, 0x00, 0x00,
    0x7e, 0x00, 0x00, 0x00, 0x01,
    /* FULL section 2 "dev" instance 0 version 1 */
    0x04, 0x00, 0x00, 0x00, 0x02, 0x03, 'd', 'e', 'v',
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x12, 0x34, 0x56, 0x78,
    0x7e, 0x00, 0x00, 0x00, 0x02,
    0x00,                                                   /* EOF */
};

static const char golden_vmdesc[] =
    "{\"page_size\":4096,\"devices\":[{\"name\":\"dev\",\"instance_id\":0,"
    "\"vmsd_name\":\"dev\",\"version\":1,\"fields\":[{\"name\":\"x\","
    "\"type\":\"uint32\",\"size\":4}]}]}";

static GBytes *save_stream(Fixture *fx)
{
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;
    GError *err = NULL;
    GBytes *b;

    fx->live.rounds = 1;
    fx->dev.x = 0x12345678;
    g_assert_true(savevm_save_all(fx->sv, f, &err));
    g_assert_no_error(err);
    out = qemu_file_mem_output_data(f);
    b = g_bytes_new(out->data, out->len);
    g_assert_true(qemu_fclose(f, NULL));
    return b;
}

static void test_save_golden(void)
{
    Fixture fx;
    g_autoptr(GBytes) b = NULL;
    const uint8_t *p;
    gsize len;
    size_t jlen = strlen(golden_vmdesc);

    fixture_init(&fx, "pc-test");
    b = save_stream(&fx);
    p = g_bytes_get_data(b, &len);
    g_assert_cmpuint(len, ==, sizeof(golden_head) + 5 + jlen);
    g_assert_cmpmem(p, sizeof(golden_head), golden_head, sizeof(golden_head));
    p += sizeof(golden_head);
    g_assert_cmpuint(p[0], ==, QEMU_VM_VMDESCRIPTION);
    g_assert_cmpuint(p[1] << 24 | p[2] << 16 | p[3] << 8 | p[4], ==, jlen);
    g_assert_cmpmem(p + 5, jlen, golden_vmdesc, jlen);
    savevm_free(fx.sv);
}

/* Load 'data' into a fresh fixture for machine 'machine'; returns the
 * error (NULL on success) and leaves the fixture for inspection. */
static GError *load_stream(Fixture *fx, const char *machine,
                           const uint8_t *data, size_t len)
{
    g_autoptr(GBytes) b = g_bytes_new(data, len);
    QEMUFile *f = qemu_file_new_mem_input(b);
    GError *err = NULL;

    fixture_init(fx, machine);
    if (savevm_load(fx->sv, f, &err)) {
        g_assert_no_error(err);
    } else {
        g_assert_nonnull(err);
    }
    qemu_fclose(f, NULL);
    return err;
}

static void test_load_roundtrip(void)
{
    Fixture src, dst;
    g_autoptr(GBytes) b = NULL;
    GError *err;

    fixture_init(&src, "pc-test");
    b = save_stream(&src);
    err = load_stream(&dst, "pc-test", g_bytes_get_data(b, NULL),
                      g_bytes_get_size(b));
    g_assert_no_error(err);
    g_assert_true(dst.live.setup_called);
    g_assert_true(dst.live.cleanup_called);
    g_assert_cmpint(dst.live.nr_loaded, ==, 3);
    g_assert_cmphex(dst.live.loaded[0], ==, 0xaaaa0001);
    g_assert_cmphex(dst.live.loaded[1], ==, 0xbbbb0001);
    g_assert_cmphex(dst.live.loaded[2], ==, 0xcccc0000);
    g_assert_cmphex(dst.dev.x, ==, 0x12345678);
    savevm_free(src.sv);
    savevm_free(dst.sv);
}

static void expect_error_machine(const uint8_t *data, size_t len,
                                 const char *machine, const char *needle)
{
    Fixture fx;
    GError *err = load_stream(&fx, machine, data, len);

    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
    savevm_free(fx.sv);
}

static void expect_error(const uint8_t *data, size_t len, const char *needle)
{
    expect_error_machine(data, len, "pc-test", needle);
}

/* golden_head with byte 'at' replaced by 'v'. */
static void expect_patched_error(size_t at, uint8_t v, const char *needle)
{
    g_autofree uint8_t *bad = g_memdup2(golden_head, sizeof(golden_head));

    bad[at] = v;
    expect_error(bad, sizeof(golden_head), needle);
}

static void test_hostile_header(void)
{
    expect_patched_error(0, 0x52, "not a migration stream");
    expect_patched_error(7, 0x02, "version 2 is obsolete");
    expect_patched_error(7, 0x04, "unsupported migration stream version 4");
    expect_patched_error(8, 0x01, "configuration section missing");
    expect_patched_error(13, 'x', "machine type in the stream is 'xc-test', "
                         "this VM is 'pc-test'");
    expect_error_machine(golden_head, sizeof(golden_head), "q35",
                         "this VM is 'q35'");
    /* An empty name (no allocation on load) is just a mismatch. */
    {
        static const uint8_t empty_name[] = {
            0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 0x07, 0, 0, 0, 0, 0x00,
        };
        expect_error(empty_name, sizeof(empty_name),
                     "machine type in the stream is '', this VM is 'pc-test'");
    }
    /* A name longer than any machine name. */
    expect_patched_error(11, 0x01, "at most 255 allowed");
}

static void test_hostile_sections(void)
{
    expect_patched_error(20, 0x09, "unknown section type 0x09 at offset 20");
    expect_patched_error(26, 'L', "unknown section 'Live' instance 0");
    expect_patched_error(33, 0x01, "unknown section 'live' instance 1");
    expect_patched_error(37, 0x02, "'live': unsupported version 2");
    expect_patched_error(42, 0x7f, "missing section footer for 'live'");
    expect_patched_error(46, 0x05, "footer for 'live' has section id 5, "
                         "expected 1");
    expect_patched_error(51, 0x09, "section id 9 continues a section that "
                         "was never started");
}

static void test_every_truncation(void)
{
    for (size_t len = 0; len < sizeof(golden_head); len++) {
        Fixture fx;
        GError *err = load_stream(&fx, "pc-test", golden_head, len);

        g_assert_nonnull(err);
        g_error_free(err);
        savevm_free(fx.sv);
    }
}

/* ---- commands ---- */

typedef struct Incoming {
    bool rp_open;
    uint32_t pings[4];
    int nr_pings;
    bool advised, advised_ram;
    uint64_t host_pages, page_size;
    char discard_block[256];
    uint64_t discards[8][2];
    int nr_discards;
    bool listening, running;
    char bitmap_block[256];
} Incoming;

static bool in_open_rp(void *o, QEMUFile *f, GError **errp)
{
    ((Incoming *)o)->rp_open = true;
    return true;
}

static bool in_ping(void *o, uint32_t v, GError **errp)
{
    Incoming *in = o;

    in->pings[in->nr_pings++ % 4] = v;
    return true;
}

static bool in_advise(void *o, bool ram, uint64_t hp, uint64_t ps,
                      GError **errp)
{
    Incoming *in = o;

    in->advised = true;
    in->advised_ram = ram;
    in->host_pages = hp;
    in->page_size = ps;
    return true;
}

static bool in_discard(void *o, const char *block, uint64_t start,
                       uint64_t length, GError **errp)
{
    Incoming *in = o;

    g_strlcpy(in->discard_block, block, sizeof(in->discard_block));
    in->discards[in->nr_discards % 8][0] = start;
    in->discards[in->nr_discards % 8][1] = length;
    in->nr_discards++;
    return true;
}

static bool in_listen(void *o, QEMUFile *f, GError **errp)
{
    ((Incoming *)o)->listening = true;
    return true;
}

static bool in_run(void *o, GError **errp)
{
    ((Incoming *)o)->running = true;
    return true;
}

static bool in_recv_bitmap(void *o, const char *block, GError **errp)
{
    g_strlcpy(((Incoming *)o)->bitmap_block, block, 256);
    return true;
}

static const SaveVMIncomingOps incoming_ops = {
    .open_return_path = in_open_rp,
    .ping = in_ping,
    .postcopy_advise = in_advise,
    .postcopy_ram_discard = in_discard,
    .postcopy_listen = in_listen,
    .postcopy_run = in_run,
    .recv_bitmap = in_recv_bitmap,
};

/* Header + configuration for machine "m". */
static QEMUFile *stream_start(SaveVM *sv)
{
    QEMUFile *f = qemu_file_new_mem_output();

    g_assert_true(savevm_save_header(sv, f, NULL));
    return f;
}

/* Run the loader over what 'f' holds; returns the loader result. */
static int load_commands(QEMUFile *out, Incoming *in, SaveVM **svp,
                         GError **errp)
{
    const GByteArray *data = qemu_file_mem_output_data(out);
    g_autoptr(GBytes) b = g_bytes_new(data->data, data->len);
    QEMUFile *f = qemu_file_new_mem_input(b);
    SaveVM *sv = savevm_new("m");
    int ret = -1;

    savevm_set_incoming_ops(sv, &incoming_ops, in);
    if (savevm_load_header(sv, f, errp)) {
        ret = savevm_load_main(sv, f, errp);
    }
    qemu_fclose(f, NULL);
    if (svp) {
        *svp = sv;
    } else {
        savevm_free(sv);
    }
    return ret;
}

static void test_command_golden(void)
{
    SaveVM *sv = savevm_new("m");
    QEMUFile *f = qemu_file_new_mem_output();
    uint64_t start = 0x2000, len = 0x1000;
    static const uint8_t golden[] = {
        0x08, 0x00, 0x01, 0x00, 0x00,                       /* OPEN_RP */
        0x08, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07, /* PING 7 */
        0x08, 0x00, 0x03, 0x00, 0x00,                       /* ADVISE */
        0x08, 0x00, 0x06, 0x00, 0x15,                       /* DISCARD */
        0x00, 0x02, 'p', 'c', 0x00,
        0, 0, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 0, 0, 0, 0x10, 0x00,
        0x08, 0x00, 0x0a, 0x00, 0x03, 0x02, 'p', 'c',       /* RECV_BITMAP */
        0x08, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00,
    };
    const GByteArray *out;

    savevm_send_open_return_path(f);
    savevm_send_ping(f, 7);
    savevm_send_postcopy_advise(f, false, 0, 0);
    g_assert_true(savevm_send_postcopy_ram_discard(f, "pc", 1, &start, &len,
                                                   NULL));
    savevm_send_recv_bitmap(f, "pc");
    g_assert_true(savevm_send_packaged(f, (const uint8_t *)"", 1, NULL));
    out = qemu_file_mem_output_data(f);
    g_assert_cmpmem(out->data, out->len, golden, sizeof(golden));
    qemu_fclose(f, NULL);
    savevm_free(sv);
}

static void test_commands_dispatch(void)
{
    SaveVM *sv = savevm_new("m");
    QEMUFile *f = stream_start(sv);
    uint64_t starts[2] = { 0x1000, 0x8000 }, lens[2] = { 0x1000, 0x2000 };
    Incoming in = { 0 };
    GError *err = NULL;

    savevm_send_open_return_path(f);
    savevm_send_ping(f, 0x1234);
    savevm_send_postcopy_advise(f, true, 0x1000, 0x1000);
    g_assert_true(savevm_send_postcopy_ram_discard(f, "pc.ram", 2, starts,
                                                   lens, NULL));
    savevm_send_recv_bitmap(f, "pc.ram");
    qemu_put_byte(f, QEMU_VM_EOF);
    g_assert_cmpint(load_commands(f, &in, NULL, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(in.rp_open);
    g_assert_cmpint(in.nr_pings, ==, 1);
    g_assert_cmphex(in.pings[0], ==, 0x1234);
    g_assert_true(in.advised_ram);
    g_assert_cmphex(in.host_pages, ==, 0x1000);
    g_assert_cmpint(in.nr_discards, ==, 2);
    g_assert_cmpstr(in.discard_block, ==, "pc.ram");
    g_assert_cmphex(in.discards[1][0], ==, 0x8000);
    g_assert_cmphex(in.discards[1][1], ==, 0x2000);
    g_assert_cmpstr(in.bitmap_block, ==, "pc.ram");
    qemu_fclose(f, NULL);
    savevm_free(sv);
}

/* The postcopy switchover: LISTEN and RUN inside a PACKAGED blob end the
 * loop with 1 while the outer stream stays unread for the listen thread. */
static void test_postcopy_packaged(void)
{
    SaveVM *sv = savevm_new("m");
    QEMUFile *f = stream_start(sv);
    QEMUFile *pkg = qemu_file_new_mem_output();
    const GByteArray *blob;
    Incoming in = { 0 };
    GError *err = NULL;
    SaveVM *dst = NULL;

    savevm_send_postcopy_advise(f, false, 0, 0);
    savevm_send_postcopy_listen(pkg);
    savevm_send_postcopy_run(pkg);
    blob = qemu_file_mem_output_data(pkg);
    g_assert_true(savevm_send_packaged(f, blob->data, blob->len, NULL));
    qemu_put_byte(f, 0x42);         /* for the listen thread, not for us */
    g_assert_cmpint(load_commands(f, &in, &dst, &err), ==, 1);
    g_assert_no_error(err);
    g_assert_true(in.advised);
    g_assert_false(in.advised_ram);
    g_assert_true(in.listening);
    g_assert_true(in.running);
    g_assert_cmpint(savevm_postcopy_state(dst), ==, POSTCOPY_INCOMING_RUNNING);
    savevm_free(dst);
    qemu_fclose(pkg, NULL);
    qemu_fclose(f, NULL);
    savevm_free(sv);
}

/* A stream of raw bytes after the header must fail with 'needle'. */
static void expect_command_error(const uint8_t *cmds, size_t len,
                                 const char *needle)
{
    SaveVM *sv = savevm_new("m");
    QEMUFile *f = stream_start(sv);
    Incoming in = { 0 };
    GError *err = NULL;

    qemu_put_buffer(f, cmds, len);
    g_assert_cmpint(load_commands(f, &in, NULL, &err), ==, -1);
    g_assert_nonnull(err);
    if (!strstr(err->message, needle)) {
        g_error("expected '%s' in '%s'", needle, err->message);
    }
    g_error_free(err);
    qemu_fclose(f, NULL);
    savevm_free(sv);
}

static void test_hostile_commands(void)
{
    static const uint8_t unknown[] = { 0x08, 0x00, 0x0b, 0x00, 0x00 };
    static const uint8_t invalid[] = { 0x08, 0x00, 0x00, 0x00, 0x00 };
    static const uint8_t ping_len[] = { 0x08, 0x00, 0x02, 0x00, 0x02, 0, 0 };
    static const uint8_t ping_no_rp[] = { 0x08, 0x00, 0x02, 0x00, 0x04,
                                          0, 0, 0, 1 };
    static const uint8_t advise_len[] = { 0x08, 0x00, 0x03, 0x00, 0x08,
                                          0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t advise_twice[] = { 0x08, 0x00, 0x03, 0x00, 0x00,
                                            0x08, 0x00, 0x03, 0x00, 0x00 };
    static const uint8_t listen_early[] = { 0x08, 0x00, 0x04, 0x00, 0x00 };
    static const uint8_t run_early[] = { 0x08, 0x00, 0x03, 0x00, 0x00,
                                         0x08, 0x00, 0x05, 0x00, 0x00 };
    static const uint8_t discard_early[] = { 0x08, 0x00, 0x06, 0x00, 0x14,
        0, 1, 'p', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t discard_bad[] = { 0x08, 0x00, 0x03, 0x00, 0x00,
        0x08, 0x00, 0x06, 0x00, 0x15,
        0, 1, 'p', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t discard_nil[] = { 0x08, 0x00, 0x03, 0x00, 0x00,
        0x08, 0x00, 0x06, 0x00, 0x14,
        0, 1, 'p', 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t packaged_short[] = { 0x08, 0x00, 0x07, 0x00, 0x04,
                                              0xff, 0xff, 0xff, 0xff, 1, 2 };
    static const uint8_t packaged_nested[] = { 0x08, 0x00, 0x07, 0x00, 0x04,
        0, 0, 0, 9, 0x08, 0x00, 0x07, 0x00, 0x04, 0, 0, 0, 0 };
    static const uint8_t packaged_bad[] = { 0x08, 0x00, 0x07, 0x00, 0x04,
        0, 0, 0, 1, 0x33 };
    static const uint8_t recv_len[] = { 0x08, 0x00, 0x0a, 0x00, 0x05,
                                        0x02, 'p', 'c' };
    static const uint8_t colo[] = { 0x08, 0x00, 0x08, 0x00, 0x00 };

    expect_command_error(unknown, sizeof(unknown), "unknown migration command 0xb");
    expect_command_error(invalid, sizeof(invalid), "unknown migration command 0x0");
    expect_command_error(ping_len, sizeof(ping_len), "PING with length 2, expected 4");
    expect_command_error(ping_no_rp, sizeof(ping_no_rp), "with no return path");
    expect_command_error(advise_len, sizeof(advise_len),
                         "POSTCOPY_ADVISE with invalid length 8");
    expect_command_error(advise_twice, sizeof(advise_twice),
                         "POSTCOPY_ADVISE in the wrong postcopy state");
    expect_command_error(listen_early, sizeof(listen_early),
                         "POSTCOPY_LISTEN in the wrong postcopy state");
    expect_command_error(run_early, sizeof(run_early),
                         "POSTCOPY_RUN in the wrong postcopy state");
    expect_command_error(discard_early, sizeof(discard_early),
                         "POSTCOPY_RAM_DISCARD in the wrong postcopy state");
    expect_command_error(discard_bad, sizeof(discard_bad),
                         "POSTCOPY_RAM_DISCARD with invalid length 21");
    expect_command_error(discard_nil, sizeof(discard_nil), "not terminated");
    expect_command_error(packaged_short, sizeof(packaged_short),
                         "PACKAGED data of 4294967295 bytes");
    expect_command_error(packaged_nested, sizeof(packaged_nested),
                         "PACKAGED command inside a packaged stream");
    expect_command_error(packaged_bad, sizeof(packaged_bad),
                         "in PACKAGED stream: unknown section type 0x33");
    expect_command_error(recv_len, sizeof(recv_len),
                         "RECV_BITMAP with invalid length 5");
    expect_command_error(colo, sizeof(colo), "COLO is not supported");
}

static void test_instance_ids(void)
{
    SaveVM *sv = savevm_new("m");
    Dev a, b;
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;

    savevm_register_vmstate(sv, "serial", VMSTATE_INSTANCE_ID_ANY,
                            &vmstate_dev, &a);
    savevm_register_vmstate(sv, "serial", VMSTATE_INSTANCE_ID_ANY,
                            &vmstate_dev, &b);
    a.x = 1;
    b.x = 2;
    g_assert_true(savevm_save_devices(sv, f, NULL));
    out = qemu_file_mem_output_data(f);
    /* Second FULL section: id 2, "serial", instance 1. */
    g_assert_cmpuint(out->len, ==, 2 * (1 + 4 + 7 + 4 + 4 + 4 + 5));
    g_assert_cmpmem(out->data + 29, 16,
                    "\x04\x00\x00\x00\x02\x06serial\x00\x00\x00\x01", 16);
    savevm_unregister(sv, &a);
    qemu_fclose(f, NULL);
    savevm_free(sv);
}


/* ---- interop: a stream QEMU 7.2 wrote ---- */

/* QEMU's "-M none" VM: timer and globalstate device state (RAM is ram.c). */
typedef struct QemuNone {
    int64_t ticks, dummy, clock;
    uint32_t rs_size;
    uint8_t runstate[100];
} QemuNone;

static const VMStateDescription vmstate_qemu_timer = {
    .name = "timer",
    .version_id = 2,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_INT64(ticks, QemuNone),
        VMSTATE_INT64(dummy, QemuNone),
        VMSTATE_INT64_V(clock, QemuNone, 2),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_qemu_globalstate = {
    .name = "globalstate",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(rs_size, QemuNone),
        VMSTATE_BUFFER(runstate, QemuNone),
        VMSTATE_END_OF_LIST()
    },
};

static void test_load_qemu_stream(void)
{
    g_autofree char *path = g_test_build_filename(
        G_TEST_DIST, "..", "fuzz", "corpus", "stream", "qemu-none-plain.bin",
        NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr(GBytes) b = NULL;
    SaveVM *sv = savevm_new("none");
    QemuNone q = { 0 };
    GuestMemory mem = {
        .regions = { { 0, 1 * MiB, g_malloc0(1 * MiB), 0 } },
        .nr_regions = 1, .fd = -1, .ram_size = 1 * MiB,
    };
    RamMigration *ram = ram_migration_new(&mem, "ram");
    QEMUFile *f;
    GError *err = NULL;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    b = g_bytes_new(data, len);
    f = qemu_file_new_mem_input(b);
    savevm_register_vmstate(sv, NULL, 0, &vmstate_qemu_timer, &q);
    savevm_register_vmstate(sv, NULL, 0, &vmstate_qemu_globalstate, &q);
    ram_migration_register(ram, sv);
    g_assert_true(savevm_load(sv, f, &err));
    g_assert_no_error(err);
    g_assert_true(qemu_file_at_eof(f));         /* vmdesc read past too */
    g_assert_cmpuint(ram_migration_stats(ram).duplicate, ==, 256);
    ram_migration_free(ram);
    g_free(mem.regions[0].hva);
    g_assert_cmpstr((const char *)q.runstate, ==, "prelaunch");
    g_assert_cmpuint(q.rs_size, ==, strlen("prelaunch") + 1);   /* NUL too */
    qemu_fclose(f, NULL);
    savevm_free(sv);

    /* The same stream for another machine type is refused. */
    sv = savevm_new("pc-q35-7.2");
    f = qemu_file_new_mem_input(b);
    g_assert_false(savevm_load(sv, f, &err));
    g_assert_nonnull(strstr(err->message, "machine type in the stream is "
                            "'none', this VM is 'pc-q35-7.2'"));
    g_clear_error(&err);
    qemu_fclose(f, NULL);
    savevm_free(sv);
}

/* tern-stream's inspector accepts what tern writes: device sections are
 * sized from tern's vmdesc, the unknown live section by its footer. */
static void test_inspector_reads_own_stream(void)
{
    Fixture fx;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    GError *err = NULL;

    fixture_init(&fx, "pc-test");
    b = save_stream(&fx);
    g_assert_true(stream_dump(b, NULL, out, &err));
    g_assert_no_error(err);
    g_assert_nonnull(strstr(out->str, "configuration: machine 'pc-test'"));
    g_assert_nonnull(strstr(out->str, "@20 START section 1 'live' instance 0 "
                            "version 1"));
    g_assert_nonnull(strstr(out->str, "FULL section 2 'dev' instance 0 "
                            "version 1\n  size 26\n"));
    g_assert_nonnull(strstr(out->str, "vmdesc: page_size 4096, 1 device(s)\n"
                            "  device 'dev' instance 0 vmsd 'dev' version 1 "
                            "size 4\n"));
    savevm_free(fx.sv);
}

/* A registered description marked unmigratable blocks saving, with QEMU's
 * message; unregistered, it blocks nothing. */
static const VMStateDescription vmstate_stuck = {
    .name = "stuck-dev", .version_id = 1, .minimum_version_id = 1,
    .unmigratable = true,
    .fields = (const VMStateField[]) { VMSTATE_END_OF_LIST() },
};

static void test_unmigratable(void)
{
    SaveVM *sv = savevm_new("none");
    int dev = 0, stuck = 0;
    GError *err = NULL;

    savevm_register_vmstate(sv, NULL, 0, &vmstate_dev, &dev);
    g_assert_true(savevm_state_saveable(sv, &err));
    savevm_register_vmstate(sv, NULL, 0, &vmstate_stuck, &stuck);
    g_assert_false(savevm_state_saveable(sv, &err));
    g_assert_cmpstr(err->message, ==,
                    "State blocked by non-migratable device 'stuck-dev'");
    g_clear_error(&err);
    savevm_unregister(sv, &stuck);
    g_assert_true(savevm_state_saveable(sv, &err));
    savevm_free(sv);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/savevm/save-golden", test_save_golden);
    g_test_add_func("/savevm/unmigratable", test_unmigratable);
    g_test_add_func("/savevm/load-roundtrip", test_load_roundtrip);
    g_test_add_func("/savevm/hostile-header", test_hostile_header);
    g_test_add_func("/savevm/hostile-sections", test_hostile_sections);
    g_test_add_func("/savevm/every-truncation", test_every_truncation);
    g_test_add_func("/savevm/command-golden", test_command_golden);
    g_test_add_func("/savevm/commands-dispatch", test_commands_dispatch);
    g_test_add_func("/savevm/postcopy-packaged", test_postcopy_packaged);
    g_test_add_func("/savevm/hostile-commands", test_hostile_commands);
    g_test_add_func("/savevm/instance-ids", test_instance_ids);
    g_test_add_func("/savevm/load-qemu-7.2-stream", test_load_qemu_stream);
    g_test_add_func("/savevm/inspector-reads-own-stream",
                    test_inspector_reads_own_stream);
    return g_test_run();
}
