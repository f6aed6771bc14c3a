/*
 * Fuzzes the dirty-bitmap migration section in postcopy order through the
 * real loader (migration/block-dirty-bitmap.c behind savevm's section and
 * command loop): START chunks in the setup section, POSTCOPY_ADVISE, a
 * PACKAGED LISTEN + RUN, then BITS, ZEROES and COMPLETE chunks in later
 * sections that the listen thread reads while the guest runs and writes to
 * the disks. The input is a list of operations; the harness frames them into
 * a stream (sections, footers, EOS chunks, commands) so that the fuzzer
 * works on the loader's state machine, with raw bytes for hostile chunks.
 *
 * The listen thread's reading of the outer stream is done on this thread
 * after the package's RUN (savevm_load_main), and a "slow RUN" flag lets the
 * VM start at a chosen point of that stream instead, as when the main thread
 * finishes the package after the listen thread has read ahead. Guest writes
 * are PINGs that the harness turns into writes to a node at that point of
 * the load. DirtyBitmapNodes' vm_running/in_postcopy follow the load, so a
 * loader that consults them is fuzzed the same way.
 *
 * Nothing may crash, leak or hang. When the whole stream loads, each bitmap
 * whose chunks came in the source's order (START, BITS and ZEROES, COMPLETE)
 * must end as a model says: its granularity, persistence and enabled state
 * from START, not busy, and its bits those the chunks carried plus every
 * guest write made while the VM ran, if it was enabled.
 *
 * Input: byte 0 flags (bit 0 precopy only: no postcopy commands, the VM
 * starts after the load; bit 1 slow RUN); then operations, op & 7:
 *   0 START: sel (bits 0-1 bitmap, 2 node, 3 enabled, 4 persistent, 5 raw
 *     flags byte follows, 6 raw be32 granularity follows, 7 names omitted),
 *     g (granularity 512 << g % 8)
 *   1 BITS: sel (bits 0-2 bitmap and node, 3 ZEROES, 4 buffer size off by
 *     the next byte, 5 names omitted), word, words - 1 (% 16), fill
 *   2 COMPLETE: sel (bits 0-2, 5 names omitted)
 *   3 section break (op bit 3: an END section)
 *   4 guest write: node, 4 KiB page, length in sectors - 1
 *   5 next postcopy step: ADVISE, then PACKAGED { LISTEN, RUN }
 *   6 the VM starts here (slow RUN)
 *   7 raw chunk bytes: length, bytes
 */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/block-backend.h"
#include "migration/block-dirty-bitmap.h"
#include "migration/dirty-bitmap-wire.h"
#include "migration/savevm.h"

#define NR_NODES    2
#define NR_NAMES    4
#define MAX_OPS     256
#define MAX_GRANULES (1 * MiB / 512)
#define SECTION_ID  1

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define bug(...) do { fprintf(stderr, "fuzz-bitmap-postcopy: " __VA_ARGS__); \
                      fputc('\n', stderr); abort(); } while (0)

static const uint64_t node_size[NR_NODES] = { 1 * MiB, 100 * KiB + 1536 };
static const char *const node_name[NR_NODES] = { "disk0", "disk1" };
static const char *const bitmap_name[NR_NAMES] = { "b0", "b1", "b2", "b3" };

/* What a bitmap should hold, built as the stream is framed. */
typedef struct Model {
    bool created, enabled, persistent, complete, tainted;
    uint32_t granularity;
    uint64_t nbits;
    uint8_t bits[MAX_GRANULES];   /* what the chunks carried, per granule */
    uint8_t guest[MAX_GRANULES];  /* written while the VM ran and it recorded */
} Model;

/* A guest write, done when the load reaches its PING. */
typedef struct GuestWrite {
    unsigned node;
    uint64_t offset, len;
} GuestWrite;

typedef struct Fuzz {
    /* the stream being framed */
    GByteArray *out;
    GByteArray *section;        /* chunks of the open section */
    bool section_open, started, ended;
    int cur_node, cur_name;     /* names the loader carries over, -1: none */
    unsigned phase;             /* 0, 1 advised, 2 listening */
    bool precopy_only, slow_run;
    bool model_running;         /* the VM runs at this point of the load */
    bool desynced;              /* raw bytes: the loader may frame the rest
                                 * otherwise, so no model holds */
    GArray *writes;             /* of GuestWrite */
    /* the load */
    BlockNode *nodes[NR_NODES];
    BlockBackend *blks[NR_NODES];   /* own the nodes, named as drives */
    BlockBackendList *blk_list;
    SaveVM *sv;
    DirtyBitmapMigration *dbm;
    bool running, listening;
    Model models[NR_NODES][NR_NAMES];
} Fuzz;

/* A fresh image for every input, unlinked once open: nothing is left
 * behind, whatever stops the process. tmpfs if there is one. */
static BlockNode *open_image(unsigned i)
{
    static unsigned serial;
    g_autofree char *path = g_strdup_printf(
        "%s/fuzz-bitmap-postcopy-%d-%u-%s.raw",
        g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir(),
        (int)getpid(), serial++, node_name[i]);
    GError *err = NULL;
    BlockNode *bs;

    g_assert_true(bdrv_create("raw", path, node_size[i], NULL, &err));
    bs = bdrv_open(path, "raw", BDRV_O_RDWR | BDRV_O_NO_LOCK, &err);
    g_assert_no_error(err);
    g_remove(path);
    bdrv_set_node_name(bs, node_name[i]);
    return bs;
}

/* ---- framing the stream ---- */

static void put8(GByteArray *b, uint8_t v)
{
    g_byte_array_append(b, &v, 1);
}

static void put_be(GByteArray *b, uint64_t v, int n)
{
    while (n--) {
        put8(b, (uint8_t)(v >> (8 * n)));
    }
}

static void put_str(GByteArray *b, const char *s)
{
    put8(b, (uint8_t)strlen(s));
    g_byte_array_append(b, (const uint8_t *)s, (guint)strlen(s));
}

static void close_section(Fuzz *z, bool end)
{
    if (!z->section_open) {
        return;
    }
    put8(z->section, DBM_EOS);
    put8(z->out, end ? QEMU_VM_SECTION_END : QEMU_VM_SECTION_PART);
    if (!z->started) {
        z->out->data[z->out->len - 1] = QEMU_VM_SECTION_START;
    }
    put_be(z->out, SECTION_ID, 4);
    if (!z->started) {
        put_str(z->out, "dirty-bitmap");
        put_be(z->out, 0, 4);           /* instance */
        put_be(z->out, 1, 4);           /* version */
        z->started = true;
    }
    g_byte_array_append(z->out, z->section->data, z->section->len);
    put8(z->out, QEMU_VM_SECTION_FOOTER);
    put_be(z->out, SECTION_ID, 4);
    g_byte_array_set_size(z->section, 0);
    z->section_open = false;
    z->ended = end;
}

static void command(GByteArray *b, uint16_t cmd, const uint8_t *arg, uint16_t len)
{
    put8(b, QEMU_VM_COMMAND);
    put_be(b, cmd, 2);
    put_be(b, len, 2);
    g_byte_array_append(b, arg, len);
}

static void ping(Fuzz *z, uint32_t value)
{
    uint8_t arg[4] = { value >> 24, value >> 16, value >> 8, value };

    close_section(z, false);
    command(z->out, MIG_CMD_PING, arg, 4);
}

/* Chunk header: flags and, unless omitted and unchanged, the names. */
static void chunk(Fuzz *z, uint8_t flags, unsigned node, unsigned name, bool omit)
{
    bool node_same = omit && z->cur_node == (int)node;
    bool name_same = node_same && z->cur_name == (int)name;

    z->section_open = true;
    flags |= (node_same ? 0 : DBM_DEVICE_NAME) | (name_same ? 0 : DBM_BITMAP_NAME);
    put8(z->section, flags);
    if (!node_same) {
        put_str(z->section, node_name[node]);
    }
    if (!name_same) {
        put_str(z->section, bitmap_name[name]);
    }
    z->cur_node = (int)node;
    z->cur_name = (int)name;
}

/* ---- the model ---- */

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* Granules [first, end) of the chunks' bits take 'bit' (or the bits of buf
 * from bit 0). */
static void model_fill(Model *m, uint64_t first, uint64_t end, const uint8_t *buf,
                       int bit)
{
    for (uint64_t i = first; i < MIN(end, m->nbits); i++) {
        uint64_t k = i - first;

        m->bits[i] = buf ? (buf[k / 8] >> (k % 8)) & 1 : (uint8_t)bit;
    }
}

/* A write the destination's guest made stays dirty whatever the source's
 * chunks say about that range, before or after it. */
static void model_guest_write(Fuzz *z, const GuestWrite *w)
{
    for (unsigned n = 0; n < NR_NAMES; n++) {
        Model *m = &z->models[w->node][n];
        uint64_t last;

        if (!m->created || !m->enabled || !m->nbits) {
            continue;
        }
        last = MIN((w->offset + w->len - 1) / m->granularity, m->nbits - 1);
        for (uint64_t i = w->offset / m->granularity; i <= last; i++) {
            m->guest[i] = 1;
        }
    }
}

/* ---- operations ---- */

static const uint8_t *take(const uint8_t **p, const uint8_t *end, size_t n)
{
    const uint8_t *q = *p;

    if ((size_t)(end - q) < n) {
        return NULL;
    }
    *p += n;
    return q;
}

static void op_start(Fuzz *z, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *a = take(p, end, 2), *raw_flags = NULL, *raw_gran = NULL;
    unsigned node, name;
    uint32_t gran;
    uint8_t flags;
    Model *m;

    if (!a || ((a[0] & 0x20) && !(raw_flags = take(p, end, 1))) ||
        ((a[0] & 0x40) && !(raw_gran = take(p, end, 4)))) {
        return;
    }
    node = a[0] >> 2 & 1;
    name = a[0] & 3;
    flags = raw_flags ? raw_flags[0] : (uint8_t)((a[0] & 8 ? DBM_START_ENABLED : 0) |
                                                 (a[0] & 16 ? DBM_START_PERSISTENT : 0));
    gran = raw_gran ? (uint32_t)raw_gran[0] << 24 | raw_gran[1] << 16 |
                      raw_gran[2] << 8 | raw_gran[3]
                    : 512u << (a[1] % 8);
    chunk(z, DBM_START, node, name, a[0] & 0x80);
    put_be(z->section, gran, 4);
    put8(z->section, flags);
    m = &z->models[node][name];
    if (m->created) {
        m->tainted = true;           /* the load must fail: bitmap exists */
        return;
    }
    memset(m, 0, offsetof(Model, bits));
    m->created = true;
    m->enabled = flags & DBM_START_ENABLED;
    m->persistent = flags & DBM_START_PERSISTENT;
    m->granularity = gran;
    m->nbits = is_pow2(gran) && gran >= 512 ? DIV_ROUND_UP(node_size[node], gran) : 0;
    /* A START after LISTEN is not the source's order. */
    m->tainted = z->phase == 2 || !m->nbits;
    memset(m->bits, 0, MAX_GRANULES);
    memset(m->guest, 0, MAX_GRANULES);
}

static void bits_payload(Fuzz *z, Model *m, const uint8_t *a, const uint8_t *adj,
                         uint64_t offset, uint64_t bytes)
{
    uint64_t first = offset / m->granularity / 64;
    uint64_t words = bytes ? ((offset + bytes - 1) / m->granularity / 64 - first + 1) : 0;
    uint64_t len = words * 8 + (adj ? adj[0] : 0);
    g_autofree uint8_t *buf = g_malloc0(len + 8);

    for (uint64_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(a[3] * (i + 1) ^ (i >> 3));
    }
    put_be(z->section, len, 8);
    g_byte_array_append(z->section, buf, (guint)len);
    if (!adj || adj[0] == 0) {
        model_fill(m, first * 64, (first + words) * 64, buf, 0);
    } else {
        m->tainted = true;
    }
}

static void op_bits(Fuzz *z, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *a = take(p, end, 4), *adj = NULL;
    unsigned node, name;
    uint64_t offset, bytes, size;
    Model *m;

    if (!a || ((a[0] & 0x10) && !(adj = take(p, end, 1)))) {
        return;
    }
    node = a[0] >> 2 & 1;
    name = a[0] & 3;
    m = &z->models[node][name];
    size = node_size[node];
    /* Offsets in whole serialization words, as the source sends them. */
    offset = (uint64_t)a[1] * 64 * (m->granularity ? m->granularity : 512);
    bytes = (uint64_t)(a[2] % 16 + 1) * 64 * (m->granularity ? m->granularity : 512);
    if (offset < size && bytes > size - offset) {
        bytes = size - offset;
    }
    chunk(z, DBM_BITS | (a[0] & 8 ? DBM_ZEROES : 0), node, name, a[0] & 0x20);
    put_be(z->section, offset / 512, 8);
    put_be(z->section, DIV_ROUND_UP(bytes, 512), 4);
    if (!m->created || !m->nbits) {
        m->tainted = true;          /* no bitmap to size the data by */
        if (!(a[0] & 8)) {
            put_be(z->section, 0, 8);
        }
        return;
    }
    m->tainted |= m->complete;      /* not the source's order */
    bytes = DIV_ROUND_UP(bytes, 512) * 512;
    if (a[0] & 8) {
        model_fill(m, offset / m->granularity,
                   DIV_ROUND_UP(MIN(offset + bytes, size), m->granularity), NULL, 0);
    } else {
        bits_payload(z, m, a, adj, offset, MIN(bytes, size - MIN(offset, size)));
    }
}

static void op_complete(Fuzz *z, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *a = take(p, end, 1);
    Model *m;

    if (!a) {
        return;
    }
    chunk(z, DBM_COMPLETE, a[0] >> 2 & 1, a[0] & 3, a[0] & 0x20);
    m = &z->models[a[0] >> 2 & 1][a[0] & 3];
    m->tainted |= !m->created || m->complete;
    m->complete = true;
}

static void op_guest_write(Fuzz *z, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *a = take(p, end, 3);
    GuestWrite w;

    if (!a) {
        return;
    }
    w.node = a[0] & 1;
    w.offset = (uint64_t)a[1] * 4096 % node_size[w.node];
    w.len = MIN(((uint64_t)a[2] % 32 + 1) * 512, node_size[w.node] - w.offset);
    ping(z, z->writes->len);
    g_array_append_val(z->writes, w);
    if (z->model_running) {
        model_guest_write(z, &w);
    }
}

static void vm_starts(Fuzz *z)
{
    z->model_running = true;
}

static void op_postcopy_step(Fuzz *z)
{
    g_autoptr(GByteArray) pkg = g_byte_array_new();
    uint8_t len[4];

    if (z->precopy_only || z->phase == 2) {
        return;
    }
    close_section(z, false);
    if (z->phase++ == 0) {
        command(z->out, MIG_CMD_POSTCOPY_ADVISE, NULL, 0);
        return;
    }
    command(pkg, MIG_CMD_POSTCOPY_LISTEN, NULL, 0);
    command(pkg, MIG_CMD_POSTCOPY_RUN, NULL, 0);
    len[0] = 0, len[1] = 0, len[2] = (uint8_t)(pkg->len >> 8), len[3] = (uint8_t)pkg->len;
    command(z->out, MIG_CMD_PACKAGED, len, 4);
    g_byte_array_append(z->out, pkg->data, pkg->len);
    if (!z->slow_run) {
        vm_starts(z);
    }
}

#define PING_VM_START 0xffffffffu

static void operation(Fuzz *z, const uint8_t **p, const uint8_t *end)
{
    uint8_t op = *(*p)++;
    const uint8_t *n, *raw;

    switch (op & 7) {
    case 0: op_start(z, p, end); break;
    case 1: op_bits(z, p, end); break;
    case 2: op_complete(z, p, end); break;
    case 3: close_section(z, op & 8); break;
    case 4: op_guest_write(z, p, end); break;
    case 5: op_postcopy_step(z); break;
    case 6:
        if (z->phase == 2 && z->slow_run && !z->model_running) {
            ping(z, PING_VM_START);
            vm_starts(z);
        }
        break;
    default:
        if ((n = take(p, end, 1)) && (raw = take(p, end, n[0]))) {
            z->section_open = true;
            g_byte_array_append(z->section, raw, n[0]);
            z->desynced = true;
        }
    }
}

static GBytes *frame(Fuzz *z, const uint8_t *data, size_t size)
{
    static const uint8_t head[] = {
        'Q', 'E', 'V', 'M', 0, 0, 0, 3, QEMU_VM_CONFIGURATION, 0, 0, 0, 4,
        'n', 'o', 'n', 'e',
    };
    const uint8_t *p = data + 1, *end = data + size;

    z->precopy_only = data[0] & 1;
    z->slow_run = data[0] & 2;
    z->cur_node = z->cur_name = -1;
    z->out = g_byte_array_new();
    z->section = g_byte_array_new();
    z->writes = g_array_new(false, false, sizeof(GuestWrite));
    g_byte_array_append(z->out, head, sizeof(head));
    command(z->out, MIG_CMD_OPEN_RETURN_PATH, NULL, 0);
    z->section_open = true;             /* the setup section, even if empty */
    for (unsigned n = 0; p < end && n < MAX_OPS; n++) {
        operation(z, &p, end);
    }
    if (!z->ended || z->section_open) {
        z->section_open = true;
        close_section(z, true);
    }
    put8(z->out, QEMU_VM_EOF);
    g_byte_array_unref(z->section);
    return g_byte_array_free_to_bytes(z->out);
}

/* ---- the destination ---- */

static bool vm_running(void *opaque) { return ((Fuzz *)opaque)->running; }
static bool in_postcopy(void *opaque) { return ((Fuzz *)opaque)->listening; }

static void start_vm(Fuzz *z)
{
    if (!z->running) {
        dirty_bitmap_migration_before_vm_start(z->dbm);
        z->running = true;
    }
}

static void guest_write(Fuzz *z, const GuestWrite *w)
{
    static uint8_t buf[32 * 512];

    if (z->running && !bdrv_pwrite(z->nodes[w->node], w->offset, buf, w->len, NULL)) {
        bug("guest write 0x%" PRIx64 "+0x%" PRIx64 " failed", w->offset, w->len);
    }
}

static bool accept_rp(void *o, QEMUFile *f, GError **errp) { return true; }

static bool on_ping(void *opaque, uint32_t value, GError **errp)
{
    Fuzz *z = opaque;

    if (value == PING_VM_START) {
        start_vm(z);
    } else if (value < z->writes->len) {
        guest_write(z, &g_array_index(z->writes, GuestWrite, value));
    }
    return true;
}

static bool on_advise(void *o, bool ram, uint64_t a, uint64_t b, GError **errp)
{
    return true;
}

/* The listen thread's work is done on this thread once the package ends. */
static bool on_listen(void *opaque, QEMUFile *f, GError **errp)
{
    ((Fuzz *)opaque)->listening = true;
    return true;
}

static bool on_run(void *opaque, GError **errp)
{
    Fuzz *z = opaque;

    if (!z->slow_run) {
        start_vm(z);
    }
    return true;
}

static const SaveVMIncomingOps incoming = {
    .open_return_path = accept_rp,
    .ping = on_ping,
    .postcopy_advise = on_advise,
    .postcopy_listen = on_listen,
    .postcopy_run = on_run,
};

static void destination_new(Fuzz *z)
{
    DirtyBitmapNodes nodes = { .vm_running = vm_running,
                               .in_postcopy = in_postcopy, .opaque = z };

    z->blk_list = blk_list_new();
    for (unsigned i = 0; i < NR_NODES; i++) {
        z->nodes[i] = open_image(i);
        z->blks[i] = blk_new(node_name[i], z->nodes[i], NULL);
        g_assert_true(blk_list_add(z->blk_list, z->blks[i], NULL));
    }
    nodes.blks = z->blk_list;
    z->sv = savevm_new("none");
    z->dbm = dirty_bitmap_migration_new(&nodes);
    dirty_bitmap_migration_set_enabled(z->dbm, true);
    dirty_bitmap_migration_register(z->dbm, z->sv);
    savevm_set_incoming_ops(z->sv, &incoming, z);
}

/* The whole stream; true if it loaded. */
static bool load(Fuzz *z, GBytes *stream)
{
    QEMUFile *f = qemu_file_new_mem_input(stream);
    GError *err = NULL;
    bool ok = savevm_load(z->sv, f, &err);

    if (ok && savevm_postcopy_state(z->sv) == POSTCOPY_INCOMING_RUNNING) {
        ok = savevm_load_main(z->sv, f, &err) == 0;
        savevm_load_cleanup(z->sv);
    }
    if (!ok && !err) {
        bug("the load failed without an error");
    }
    g_clear_error(&err);
    qemu_fclose(f, NULL);
    return ok;
}

/* ---- the check ---- */

static void check_bitmap(Fuzz *z, unsigned node, unsigned name)
{
    const Model *m = &z->models[node][name];
    BlockNode *bs = z->nodes[node];
    BdrvDirtyBitmap *bm;

    bdrv_lock(bs);
    bm = bdrv_find_dirty_bitmap(bs, bitmap_name[name]);
    if (!bm) {
        bug("%s/%s: START loaded, but there is no such bitmap", node_name[node],
            bitmap_name[name]);
    }
    if (bdrv_dirty_bitmap_granularity(bm) != m->granularity ||
        bdrv_dirty_bitmap_get_persistence(bm) != m->persistent) {
        bug("%s/%s: granularity %u persistent %d, START said %u and %d",
            node_name[node], bitmap_name[name], bdrv_dirty_bitmap_granularity(bm),
            bdrv_dirty_bitmap_get_persistence(bm), m->granularity, m->persistent);
    }
    if (m->complete && (bdrv_dirty_bitmap_enabled(bm) != m->enabled ||
                        bdrv_dirty_bitmap_busy(bm))) {
        bug("%s/%s: complete, but enabled %d busy %d (START said enabled %d)",
            node_name[node], bitmap_name[name], bdrv_dirty_bitmap_enabled(bm),
            bdrv_dirty_bitmap_busy(bm), m->enabled);
    }
    for (uint64_t i = 0; m->complete && i < m->nbits; i++) {
        bool want = m->bits[i] | m->guest[i];

        if (bdrv_dirty_bitmap_get(bm, i * m->granularity) != want) {
            bug("%s/%s: granule %" PRIu64 " is %d, expected %d (sent %d, guest "
                "write %d)", node_name[node], bitmap_name[name], i, !want, want,
                m->bits[i], m->guest[i]);
        }
    }
    bdrv_unlock(bs);
}

static void check(Fuzz *z)
{
    if (z->desynced) {
        return;
    }
    for (unsigned n = 0; n < NR_NODES; n++) {
        for (unsigned b = 0; b < NR_NAMES; b++) {
            if (z->models[n][b].created && !z->models[n][b].tainted) {
                check_bitmap(z, n, b);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GuestWrite after = { 0, 0, 4096 };
    Fuzz *z;
    GBytes *stream;

    if (size < 1) {
        return 0;
    }
    z = g_new0(Fuzz, 1);
    stream = frame(z, data, size);
    destination_new(z);
    if (load(z, stream)) {
        /* Whatever did not start the VM, the end of the migration does. */
        start_vm(z);
        vm_starts(z);
        for (after.node = 0; after.node < NR_NODES; after.node++) {
            guest_write(z, &after);
            model_guest_write(z, &after);
        }
        check(z);
    }
    g_bytes_unref(stream);
    dirty_bitmap_migration_free(z->dbm);
    savevm_free(z->sv);
    for (unsigned i = 0; i < NR_NODES; i++) {
        blk_free(z->blks[i]);          /* closes the node */
    }
    blk_list_free(z->blk_list);
    g_array_unref(z->writes);
    g_free(z);
    return 0;
}
