/*
 * tern-stream: print the structure of a migration stream (QEMU's format, as
 * written by QEMU or by tern) read from a file or stdin, and exit non-zero if
 * anything in it is inconsistent. The work is done by stream_dump() in
 * migration/stream-dump.c; this file is option parsing, I/O, and --sample,
 * which writes a known stream through tern's own writers (RAM, dirty
 * bitmaps, globalstate) for checking peers such as QEMU against: to stdout,
 * or with --sample-to as a migration to a peer (with --multifd, RAM on
 * QEMU's multifd channels). --receive is the other end: a device-less
 * destination that loads a peer's stream into RAM and writes that RAM out.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration/block-dirty-bitmap.h"
#include "migration/channel.h"
#include "migration/global-state.h"
#include "migration/ram.h"
#include "migration/snapshot.h"
#include "migration/stream-dump.h"

/* The VM state of snapshot 'name' in a qcow2 image, read in place. */
static GBytes *read_snapshot(const char *image, const char *name,
                             GError **errp)
{
    BlockNode *bs = bdrv_open(image, "qcow2", 0, errp);
    GBytes *state;

    if (!bs) {
        return NULL;
    }
    state = vm_snapshot_read_state(bs, name, errp);
    bdrv_close(bs);
    return state;
}

static GBytes *read_input(const char *path, GError **errp)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    uint8_t chunk[64 * 1024];
    gchar *data;
    gsize len;
    ssize_t n;

    if (path && strcmp(path, "-")) {
        if (!g_file_get_contents(path, &data, &len, errp)) {
            return NULL;
        }
        return g_bytes_new_take(data, len);
    }
    while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            tern_set_error_errno(errp, errno, "reading stdin");
            return NULL;
        }
        g_byte_array_append(buf, chunk, n);
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

/* The sample's RAM: page i holds the byte (i % 251) + 1, every fourth page
 * is zero, so a peer's copy can be checked byte for byte. */
static void fill_sample_ram(uint8_t *ram, uint64_t size)
{
    for (uint64_t page = 0; page < size / RAM_PAGE_SIZE; page++) {
        memset(ram + page * RAM_PAGE_SIZE, page % 4 ? page % 251 + 1 : 0,
               RAM_PAGE_SIZE);
    }
}

/* The sample's bitmaps live on a scratch qcow2 node "disk0" of 64 MiB: bm0
 * (64 KiB, persistent, enabled) and bm1 (128 KiB, disabled), both dirty at
 * [1 MiB, +64 KiB) and [10 MiB, +4 KiB). */
typedef struct SampleDisk {
    char *dir;
    char *path;
    BlockNode *bs;
    BlockBackend *blk;          /* over bs, with no name */
    BlockBackendList *blks;     /* what the bitmaps migrate from */
} SampleDisk;

static bool sample_bitmap(BlockNode *bs, const char *name, uint32_t gran,
                          bool persistent, bool enabled, GError **errp)
{
    BdrvDirtyBitmap *b = bdrv_create_dirty_bitmap(bs, gran, name, errp);

    if (!b || (persistent &&
               !bdrv_dirty_bitmap_make_persistent(b, true, errp))) {
        return false;
    }
    bdrv_set_dirty_bitmap(b, 1 * MiB, 64 * KiB);
    bdrv_set_dirty_bitmap(b, 10 * MiB, 4 * KiB);
    if (!enabled) {
        bdrv_disable_dirty_bitmap(b);
    }
    return true;
}

static bool sample_disk_open(SampleDisk *d, GError **errp)
{
    bool ok;

    d->dir = g_dir_make_tmp("tern-stream-XXXXXX", errp);
    if (!d->dir) {
        return false;
    }
    d->path = g_build_filename(d->dir, "disk0.qcow2", NULL);
    if (!bdrv_create("qcow2", d->path, 64 * MiB, NULL, errp)) {
        return false;
    }
    d->bs = bdrv_open(d->path, "qcow2", BDRV_O_RDWR, errp);
    if (!d->bs) {
        return false;
    }
    bdrv_set_node_name(d->bs, "disk0");
    d->blk = blk_new(NULL, d->bs, NULL);
    d->blks = blk_list_new();
    blk_list_add(d->blks, d->blk, NULL);
    bdrv_lock(d->bs);
    ok = sample_bitmap(d->bs, "bm0", 64 * KiB, true, true, errp) &&
         sample_bitmap(d->bs, "bm1", 128 * KiB, false, false, errp);
    bdrv_unlock(d->bs);
    return ok;
}

static void sample_disk_close(SampleDisk *d)
{
    blk_list_free(d->blks);
    if (d->blk) {
        blk_free(d->blk);           /* closes d->bs */
    } else if (d->bs) {
        bdrv_close(d->bs);
    }
    if (d->path) {
        unlink(d->path);
    }
    if (d->dir) {
        rmdir(d->dir);
    }
    g_free(d->path);
    g_free(d->dir);
}

/* A paused VM with no devices (and, with ram_size, one RAM block "ram"
 * as QEMU's -M none names it), written by tern's own stream writer: a
 * known-good stream to check peers (QEMU's -incoming) and tools against. */
/* Write the sample as snapshot NAME of qcow2 IMAGE (IMAGE:NAME), replacing
 * one of that name, as HMP savevm does. */
static bool save_sample_snapshot(SaveVM *sv, const char *where, GError **errp)
{
    const char *colon = strrchr(where, ':');
    g_autofree char *image = colon ? g_strndup(where, colon - where) : NULL;
    const VmSnapshotArgs args = { .name = colon + 1, .overwrite = true };
    BlockBackendList *drives;
    VmSnapshot *vs;
    BlockNode *bs;
    bool ok;

    if (!colon || !colon[1]) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "--sample-snapshot wants IMAGE:NAME");
        return false;
    }
    bs = bdrv_open(image, "qcow2", BDRV_O_RDWR, errp);
    if (!bs) {
        return false;
    }
    drives = blk_list_new();
    blk_list_add(drives, blk_new(NULL, bs, NULL), NULL);
    vs = vm_snapshot_new(sv, drives, NULL, NULL);
    ok = vm_snapshot_save(vs, &args, errp);
    vm_snapshot_free(vs);
    blk_free(blk_list_get(drives, 0));
    blk_list_free(drives);
    return ok;
}

/* tern has no -uuid: multifd's initial packets carry zeroes, as QEMU's
 * without one. */
static const uint8_t no_uuid[16];

/* RAM of 'size' bytes in a memfd (multifd splices from it), one region. */
static bool ram_open(GuestMemory *mem, uint64_t size, GError **errp)
{
    uint8_t *hva;

    *mem = (GuestMemory){ .fd = memfd_create("ram", MFD_CLOEXEC),
                          .ram_size = size };
    if (mem->fd < 0 || ftruncate(mem->fd, size) < 0) {
        tern_set_error_errno(errp, errno, "memfd");
        return false;
    }
    hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->fd, 0);
    if (hva == MAP_FAILED) {
        tern_set_error_errno(errp, errno, "mmap");
        return false;
    }
    mem->regions[0] = (GuestRegion){ 0, size, hva, 0 };
    mem->nr_regions = 1;
    return true;
}

static void ram_close(GuestMemory *mem)
{
    if (mem->nr_regions) {
        munmap(mem->regions[0].hva, mem->ram_size);
    }
    if (mem->fd >= 0) {
        close(mem->fd);
    }
}

static void close_sockets(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        close(fds[i]);
    }
}

/* --sample-to URI: the sample as a migration to a peer listening there,
 * RAM pages on 'multifd' channels (none: on the main stream). */
static bool send_sample(SaveVM *sv, RamMigration *ram, const char *uri,
                        unsigned multifd, GError **errp)
{
    int fds[MULTIFD_CHANNELS_MAX];
    QEMUFile *f = migration_channel_connect(uri, errp);
    unsigned n = 0;
    bool ok = f != NULL;

    while (ok && n < multifd) {
        fds[n] = migration_channel_connect_socket(uri, errp);
        ok = fds[n] >= 0;
        n += ok;
    }
    if (ok && multifd) {
        ok = ram_migration_multifd_send_start(ram, fds, n, false, no_uuid,
                                              errp);
    } else if (!ok) {
        close_sockets(fds, n);
    }
    ok = ok && savevm_save_all(sv, f, errp);
    ram_migration_multifd_stop(ram);
    return qemu_fclose(f, ok ? errp : NULL) && ok;
}

static int write_sample(const char *machine, uint64_t ram_size,
                        bool bitmaps, const char *snapshot, const char *to,
                        unsigned multifd)
{
    SaveVM *sv;
    MigGlobalState gs;
    GuestMemory mem = { .fd = -1, .ram_size = ram_size };
    RamMigration *ram = NULL;
    SampleDisk disk = { NULL };
    DirtyBitmapNodes nodes = { NULL };
    DirtyBitmapMigration *dbm = NULL;
    QEMUFile *f;
    g_autoptr(GError) err = NULL;
    bool ok = true;

    if (strlen(machine) > 255 || ram_size % RAM_PAGE_SIZE) {
        fprintf(stderr, "tern-stream: bad machine name or RAM size\n");
        return 2;
    }
    sv = savevm_new(machine);
    if (ram_size) {
        ok = ram_open(&mem, ram_size, &err);
    }
    if (ok && ram_size) {
        fill_sample_ram(mem.regions[0].hva, ram_size);
        ram = ram_migration_new(&mem, "ram");
        ram_migration_register(ram, sv);
    }
    if (bitmaps) {
        ok = sample_disk_open(&disk, &err);
        nodes.blks = disk.blks;
        dbm = dirty_bitmap_migration_new(&nodes);
        dirty_bitmap_migration_set_enabled(dbm, true);
        dirty_bitmap_migration_register(dbm, sv);
    }
    mig_global_state_set(&gs, "paused");
    mig_global_state_register(sv, &gs);
    if (ok && snapshot) {
        ok = save_sample_snapshot(sv, snapshot, &err);
    } else if (ok && to) {
        ok = send_sample(sv, ram, to, multifd, &err);
    } else if (ok) {
        f = qemu_file_new_fd_output(dup(STDOUT_FILENO));
        ok = savevm_save_all(sv, f, &err);
        ok = qemu_fclose(f, ok ? &err : NULL) && ok;
    }
    savevm_free(sv);
    dirty_bitmap_migration_free(dbm);
    sample_disk_close(&disk);
    ram_migration_free(ram);
    ram_close(&mem);
    if (!ok) {
        fprintf(stderr, "tern-stream: %s\n", err->message);
        return 1;
    }
    return 0;
}

/* QEMU's "-M none" VM has one device state, its clocks ("timer"), which
 * a device-less destination takes and drops. */
typedef struct QemuTimer {
    int64_t ticks, unused, clock;
} QemuTimer;

static const VMStateDescription vmstate_qemu_timer = {
    .name = "timer",
    .version_id = 2,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_INT64(ticks, QemuTimer),
        VMSTATE_INT64(unused, QemuTimer),
        VMSTATE_INT64_V(clock, QemuTimer, 2),
        VMSTATE_END_OF_LIST()
    },
};

/* --receive URI: load a device-less stream for 'machine' (RAM block
 * "ram" of 'ram_size' bytes, globalstate, QEMU's "timer") from a peer
 * migrating to URI,
 * with 'multifd' channels; the RAM loaded goes to 'out'. */
static bool receive(const char *uri, const char *machine, uint64_t ram_size,
                    unsigned multifd, const char *out, GError **errp)
{
    MigrationListener *l = migration_listener_new(uri, errp);
    SaveVM *sv = savevm_new(machine);
    RamMigration *ram = NULL;
    GuestMemory mem = { .fd = -1 };
    MigGlobalState gs;
    QemuTimer timer;
    int fds[MULTIFD_CHANNELS_MAX];
    QEMUFile *f = NULL;
    unsigned n = 0;
    bool ok = l && ram_open(&mem, ram_size, errp);

    if (ok) {
        ram = ram_migration_new(&mem, "ram");
        ram_migration_register(ram, sv);
        mig_global_state_register(sv, &gs);
        savevm_register_vmstate(sv, NULL, 0, &vmstate_qemu_timer, &timer);
        f = migration_listener_accept(l, errp);
        ok = f != NULL;
    }
    while (ok && n < multifd) {
        fds[n] = migration_listener_accept_socket(l, errp);
        ok = fds[n] >= 0;
        n += ok;
    }
    if (ok && multifd) {
        ram_migration_multifd_recv_start(ram, fds, n, no_uuid);
    } else if (!ok) {
        close_sockets(fds, n);
    }
    ok = ok && savevm_load(sv, f, errp);
    if (!ok && ram) {
        ram_migration_multifd_explain(ram, errp);
    }
    if (ram) {
        ram_migration_multifd_stop(ram);
    }
    qemu_fclose(f, NULL);
    if (ok && !g_file_set_contents(out, (const char *)mem.regions[0].hva,
                                   ram_size, errp)) {
        ok = false;
    }
    savevm_free(sv);
    ram_migration_free(ram);
    ram_close(&mem);
    migration_listener_free(l);
    return ok;
}

int main(int argc, char **argv)
{
    gboolean verbose = FALSE;
    g_autofree char *sample = NULL;
    gint64 sample_ram = 0;
    gboolean sample_bitmaps = FALSE;
    g_autofree char *sample_snapshot = NULL;
    g_autofree char *snapshot = NULL;
    g_autofree char *sample_to = NULL;
    g_autofree char *receive_uri = NULL;
    g_autofree char *ram_out = NULL;
    gint multifd = 0;
    GOptionEntry entries[] = {
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
          "one line per PART section and dirty-bitmap chunk", NULL },
        { "sample", 0, 0, G_OPTION_ARG_STRING, &sample,
          "write a paused, device-less stream for MACHINE to stdout",
          "MACHINE" },
        { "sample-ram", 0, 0, G_OPTION_ARG_INT64, &sample_ram,
          "with --sample: a RAM block \"ram\" of BYTES with a known pattern",
          "BYTES" },
        { "sample-bitmaps", 0, 0, G_OPTION_ARG_NONE, &sample_bitmaps,
          "with --sample: node disk0 with dirty bitmaps bm0 and bm1", NULL },
        { "sample-snapshot", 0, 0, G_OPTION_ARG_STRING, &sample_snapshot,
          "with --sample: save it as internal snapshot NAME of qcow2 IMAGE "
          "instead of writing stdout", "IMAGE:NAME" },
        { "sample-to", 0, 0, G_OPTION_ARG_STRING, &sample_to,
          "with --sample: migrate it to URI instead of writing stdout",
          "URI" },
        { "multifd", 0, 0, G_OPTION_ARG_INT, &multifd,
          "with --sample-to or --receive: RAM on N multifd channels", "N" },
        { "receive", 0, 0, G_OPTION_ARG_STRING, &receive_uri,
          "be a device-less destination on URI for machine --sample (none "
          "by default) with --sample-ram bytes of RAM block \"ram\"; the "
          "RAM loaded goes to --ram-out", "URI" },
        { "ram-out", 0, 0, G_OPTION_ARG_FILENAME, &ram_out,
          "with --receive: where the RAM goes", "FILE" },
        { "snapshot", 0, 0, G_OPTION_ARG_STRING, &snapshot,
          "read the VM state of snapshot NAME of the qcow2 FILE (in place; "
          "the image is not changed)", "NAME" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("[FILE|-] - show a migration stream's structure");
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) stream = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    StreamDumpOptions opts = { 0 };
    bool ok;

    g_set_prgname("tern-stream");   /* prefix of shared error reports */
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc > 2) {
        fprintf(stderr, "tern-stream: %s\n",
                err ? err->message : "at most one input file");
        return 2;
    }
    if (multifd < 0 || multifd > MULTIFD_CHANNELS_MAX) {
        fprintf(stderr, "tern-stream: --multifd wants 0 to %d\n",
                MULTIFD_CHANNELS_MAX);
        return 2;
    }
    if (receive_uri) {
        if (!ram_out || sample_ram <= 0 || sample_ram % RAM_PAGE_SIZE) {
            fprintf(stderr, "tern-stream: --receive needs --ram-out and "
                    "--sample-ram\n");
            return 2;
        }
        if (!receive(receive_uri, sample ? sample : "none", sample_ram,
                     multifd, ram_out, &err)) {
            fprintf(stderr, "tern-stream: %s\n", err->message);
            return 1;
        }
        return 0;
    }
    if (sample) {
        return write_sample(sample, sample_ram < 0 ? 1 : (uint64_t)sample_ram,
                            sample_bitmaps, sample_snapshot, sample_to,
                            multifd);
    }
    if (snapshot && argc != 2) {
        fprintf(stderr, "tern-stream: --snapshot needs the image file\n");
        return 2;
    }
    stream = snapshot ? read_snapshot(argv[1], snapshot, &err)
                      : read_input(argc == 2 ? argv[1] : NULL, &err);
    if (!stream) {
        fprintf(stderr, "tern-stream: %s\n", err->message);
        return 2;
    }
    opts.verbose = verbose;
    ok = stream_dump(stream, &opts, out, &err);
    fwrite(out->str, 1, out->len, stdout);
    if (!ok) {
        fprintf(stderr, "tern-stream: invalid stream: %s\n", err->message);
        return 1;
    }
    printf("stream ok: %zu bytes\n", g_bytes_get_size(stream));
    return 0;
}
