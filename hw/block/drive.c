/*
 * The -drive set: parses each -drive option (QEMU's keys and values), opens
 * its image as a block backend with the locks and cache flags the options
 * ask for, and keeps the drives in a backend list by id, for the devices
 * that claim them and for QMP and migration (block/block-backend.h).
 */
#include <errno.h>
#include <string.h>

#include "block/write-intent.h"
#include "hw/block/drive.h"
#include "monitor/monitor.h"
#include "tern/error.h"
#include "tern/keyval.h"

static bool parse_choice(KeyVal *kv, const char *key, const char *const *names,
                         int def, int *out, GError **errp)
{
    const char *v = keyval_get(kv, key);

    *out = def;
    if (!v) {
        return true;
    }
    for (int i = 0; names[i]; i++) {
        if (!strcmp(v, names[i])) {
            *out = i;
            return true;
        }
    }
    return tern_invalid(errp, "invalid %s '%s'", key, v);
}

/* werror also takes QEMU's "enospc": stop on ENOSPC, report the rest. */
static bool parse_error_action(KeyVal *kv, const char *key, DriveErrorAction *out,
                               GError **errp)
{
    /* In DriveErrorAction's order. */
    static const char *const names[] = { "report", "stop", "enospc", NULL };
    int i;

    if (!parse_choice(kv, key, names, 0, &i, errp)) {
        return false;
    }
    if (i == 2 && strcmp(key, "werror")) {
        return tern_invalid(errp, "invalid %s 'enospc'", key);
    }
    *out = (DriveErrorAction)i;
    return true;
}

/* tern does its I/O synchronously on each device's iothread, which is
 * what QEMU's aio=threads gives; the kernel AIO engines are refused. */
static bool parse_aio(KeyVal *kv, GError **errp)
{
    static const char *const aios[] = { "threads", "native", "io_uring", NULL };
    int aio;

    if (!parse_choice(kv, "aio", aios, 0, &aio, errp)) {
        return false;
    }
    if (aio) {
        return tern_invalid(errp, "aio=%s is not supported: tern does its I/O "
                            "on each device's iothread, as aio=threads",
                            aios[aio]);
    }
    return true;
}

enum { CACHE_WRITEBACK, CACHE_NONE, CACHE_WRITETHROUGH, CACHE_DIRECTSYNC, CACHE_UNSAFE };

/* bitmap-chunk=SIZE: a fixed write-intent chunk instead of the adaptive one. */
static bool parse_bitmap_chunk(KeyVal *kv, uint64_t *chunk, GError **errp)
{
    *chunk = 0;
    if (!keyval_get_size(kv, "bitmap-chunk", chunk, errp)) {
        return false;
    }
    if (*chunk && (*chunk < 4 * KiB || *chunk > 1 * GiB ||
                   (*chunk & (*chunk - 1)))) {
        return tern_invalid(errp, "bitmap-chunk must be a power of two from 4K to 1G");
    }
    return true;
}

static bool parse_options(Drive *d, KeyVal *kv, unsigned index, char **idp,
                          int *flags, GError **errp)
{
    static const char *const ifs[] = { "none", "virtio", NULL };
    static const char *const caches[] = { "writeback", "none", "writethrough",
                                          "directsync", "unsafe", NULL };
    /* QEMU's names: "off" is "ignore", "on" is "unmap" */
    static const char *const discards[] = { "ignore", "unmap", "off", "on", NULL };
    const char *id = keyval_get(kv, "id");
    int iface, cache, discard;
    bool crash_safe = true;

    if (!parse_choice(kv, "if", ifs, 0, &iface, errp) ||
        !parse_choice(kv, "cache", caches, CACHE_WRITEBACK, &cache, errp) ||
        !parse_choice(kv, "discard", discards, 0, &discard, errp) ||
        !parse_aio(kv, errp) ||
        !keyval_get_bool(kv, "readonly", &d->read_only, errp) ||
        !keyval_get_bool(kv, "crash-safe-bitmaps", &crash_safe, errp) ||
        !parse_bitmap_chunk(kv, &d->bitmap_chunk, errp) ||
        !parse_error_action(kv, "werror", &d->werror, errp) ||
        !parse_error_action(kv, "rerror", &d->rerror, errp)) {
        return false;
    }
    d->if_virtio = iface == 1;
    if (!id && !d->if_virtio) {
        return tern_invalid(errp, "if=none needs an id=");
    }
    *idp = id ? g_strdup(id) : g_strdup_printf("virtio%u", index);
    d->writethrough = cache == CACHE_WRITETHROUGH || cache == CACHE_DIRECTSYNC;
    d->ignore_flush = cache == CACHE_UNSAFE;
    *flags = d->read_only ? 0 : BDRV_O_RDWR;
    if (!crash_safe) {
        *flags |= BDRV_O_BITMAPS_IN_USE;    /* QEMU's behaviour */
    }
    if (cache == CACHE_NONE || cache == CACHE_DIRECTSYNC) {
        *flags |= BDRV_O_NOCACHE;
    }
    if (discard == 1 || discard == 3) {
        *flags |= BDRV_O_UNMAP;
    }
    return true;
}

static Drive *drive_open_flags(const char *spec, unsigned index,
                               int extra_flags, GError **errp);

/* QEMU's node-name rule: a letter, then letters, digits, '-', '.', '_'. */
bool drive_node_name_ok(const char *name, GError **errp)
{
    bool ok = g_ascii_isalpha(name[0]) && strlen(name) < 32;

    for (const char *p = name; ok && *p; p++) {
        ok = g_ascii_isalnum(*p) || strchr("-._", *p);
    }
    return ok || tern_invalid(errp, "Invalid node-name: '%s'", name);
}

Drive *drive_open(const char *spec, unsigned index, GError **errp)
{
    return drive_open_flags(spec, index, 0, errp);
}

static Drive *drive_open_flags(const char *spec, unsigned index,
                               int extra_flags, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(spec, "file", errp);
    g_autofree char *id = NULL;
    Drive *d;
    const char *file, *format, *node_name;
    BlockNode *node;
    int flags = 0;

    if (!kv) {
        return NULL;
    }
    d = g_new0(Drive, 1);
    file = keyval_get(kv, "file");
    format = keyval_get(kv, "format");
    node_name = keyval_get(kv, "node-name");
    if (!parse_options(d, kv, index, &id, &flags, errp) ||
        !keyval_check_unused(kv, errp)) {
        drive_free(d);
        return NULL;
    }
    if (!file || !*file) {
        tern_invalid(errp, "file= is required");
        drive_free(d);
        return NULL;
    }
    if (node_name && !drive_node_name_ok(node_name, errp)) {
        drive_free(d);
        return NULL;
    }
    node = bdrv_open(file, format, flags | extra_flags, errp);
    if (!node) {
        drive_free(d);
        return NULL;
    }
    if (d->bitmap_chunk) {
        bdrv_lock(node);
        bdrv_write_intent_set_chunk(node, d->bitmap_chunk, d->bitmap_chunk);
        bdrv_unlock(node);
    }
    if (node_name) {
        bdrv_set_node_name(node, node_name);    /* QMP's snapshot jobs name it */
    }
    d->blk = blk_new(id, node, d);
    return d;
}

void drive_free(Drive *d)
{
    if (!d) {
        return;
    }
    blk_free(d->blk);
    g_free(d);
}

/* Into the set's backend list; node names are unique, as in QEMU. */
static bool add_to_set(DriveSet *set, Drive *d, GError **errp)
{
    const char *node_name = bdrv_get_node_name(blk_root(d->blk));

    if (blk_list_find_node(set->backends, node_name)) {
        return tern_invalid(errp, "Duplicate nodes with node-name='%s'",
                            node_name);
    }
    return blk_list_add(set->backends, d->blk, errp);
}

DriveSet *drive_set_new(VmConfig *cfg, GError **errp)
{
    GPtrArray *specs = vm_config_list(cfg, "drive");
    DriveSet *set = g_new0(DriveSet, 1);
    unsigned virtio_index = 0;
    /* A migration destination reads its images but leaves them to the
     * source until the stream ends (migration.c activates them). */
    int extra = vm_config_last(cfg, "incoming") ? BDRV_O_INACTIVE : 0;

    set->backends = blk_list_new();
    g_mutex_init(&set->event_lock);
    for (guint i = 0; i < specs->len; i++) {
        const char *spec = g_ptr_array_index(specs, i);
        Drive *d = drive_open_flags(spec, virtio_index, extra, errp);

        if (!d) {
            g_prefix_error(errp, "-drive %s: ", spec);
            drive_set_free(set);
            return NULL;
        }
        if (!add_to_set(set, d, errp)) {
            g_prefix_error(errp, "-drive %s: ", spec);
            drive_free(d);
            drive_set_free(set);
            return NULL;
        }
        virtio_index += d->if_virtio;
        d->set = set;
    }
    return set;
}

void drive_set_free(DriveSet *set)
{
    if (!set) {
        return;
    }
    for (size_t i = blk_list_count(set->backends); i-- > 0;) {
        drive_free(drive_set_get(set, i));
    }
    blk_list_free(set->backends);
    g_mutex_clear(&set->event_lock);
    g_free(set);
}

void drive_set_attach_monitor(DriveSet *set, Monitor *mon)
{
    g_mutex_lock(&set->event_lock);
    set->mon = mon;
    g_mutex_unlock(&set->event_lock);
}

void drive_io_error_event(Drive *d, bool is_read, DriveErrorAction action,
                          int err, const char *reason)
{
    json_object *data;

    if (!d->set) {
        return;
    }
    g_mutex_lock(&d->set->event_lock);
    if (d->set->mon) {
        data = json_object_new_object();
        tern_json_add_str(data, "device", drive_id(d));
        tern_json_add_str(data, "node-name", bdrv_get_node_name(drive_node(d)));
        tern_json_add_str(data, "operation", is_read ? "read" : "write");
        tern_json_add_str(data, "action",
                          action == DRIVE_ERROR_STOP ? "stop" : "report");
        tern_json_add_bool(data, "nospace", err == ENOSPC);
        tern_json_add_str(data, "reason", reason);
        monitor_emit_event(d->set->mon, "BLOCK_IO_ERROR", data);
    }
    g_mutex_unlock(&d->set->event_lock);
}

Drive *drive_set_get(DriveSet *set, size_t i)
{
    BlockBackend *blk = set ? blk_list_get(set->backends, i) : NULL;

    return blk ? blk_opaque(blk) : NULL;
}

Drive *drive_set_find(DriveSet *set, const char *id)
{
    BlockBackend *blk = set ? blk_list_find(set->backends, id) : NULL;

    return blk ? blk_opaque(blk) : NULL;
}

Drive *drive_set_claim(DriveSet *set, const char *id, const char *device,
                       GError **errp)
{
    Drive *d = id ? drive_set_find(set, id) : NULL;

    if (!id) {
        tern_invalid(errp, "drive= is required");
        return NULL;
    }
    if (!d) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND, "no drive with id '%s'", id);
        return NULL;
    }
    return blk_attach_dev(d->blk, device, errp) ? d : NULL;
}

DriveErrorAction drive_error_action(const Drive *d, bool is_read,
                                    const GError *err)
{
    DriveErrorAction a = is_read ? d->rerror : d->werror;

    if (a == DRIVE_ERROR_ENOSPC) {
        return tern_error_errno(err) == ENOSPC ? DRIVE_ERROR_STOP
                                               : DRIVE_ERROR_REPORT;
    }
    return a;
}
