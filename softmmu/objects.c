/*
 * -object and -audiodev (softmmu/objects.h). tern's guest RAM is always
 * mapped shared, a memfd (hw/core/guest-ram.c) or the file
 * memory-backend-file names: what a backend may ask for is its size,
 * share=on (what it is anyway; a file backend must say so, its QEMU default
 * being private), dump and, for a file, mem-path; everything else is
 * refused by name. The backend keeps the RAM block's migration name
 * "pc.ram" (QEMU names the block after the backend's id), so only that id
 * is accepted. A secret holds data for others to name (libvirt always makes
 * one, its master key): its data is read and checked when given; nothing in
 * tern uses secrets yet.
 */
#include <string.h>
#include <sys/stat.h>

#include "hw/core/qom.h"
#include "softmmu/objects.h"
#include "tern/error.h"
#include "tern/keyval.h"

#define RAM_BACKEND_ID "pc.ram"
#define SECRET_MAX     (64 * 1024)   /* keys and passwords, not files' worth */

static const QomType type_memory_backend = {
    .name = "memory-backend", .parent = "object", .abstract = true,
    .props = (const QomProp[]) {
        { "size", "int", "Size of the memory region (ex: 500M)" },
        { "share", "bool", "Mark the memory as private to QEMU or shared" },
        { "dump", "bool", "Set to 'off' to exclude from core dump" },
        { NULL, NULL, NULL },
    },
};
static const QomType type_memory_backend_ram = {
    .name = "memory-backend-ram", .parent = "memory-backend",
};
static const QomType type_memory_backend_memfd = {
    .name = "memory-backend-memfd", .parent = "memory-backend",
};
static const QomType type_memory_backend_file = {
    .name = "memory-backend-file", .parent = "memory-backend",
    .props = (const QomProp[]) {
        { "mem-path", "string", "File to be used as memory backend" },
        { NULL, NULL, NULL },
    },
};
static const QomType type_secret = {
    .name = "secret", .parent = "object",
    .props = (const QomProp[]) {
        { "format", "QCryptoSecretFormat", NULL },
        { "data", "string", NULL },
        { "file", "string", NULL },
        { NULL, NULL, NULL },
    },
};
QOM_TYPE(type_secret);
QOM_TYPE(type_memory_backend);
QOM_TYPE(type_memory_backend_ram);
QOM_TYPE(type_memory_backend_memfd);
QOM_TYPE(type_memory_backend_file);

static bool check_memory_backend(KeyVal *kv, GError **errp)
{
    const char *id = keyval_get(kv, "id");
    bool is_file = !strcmp(keyval_get(kv, "qom-type"), "memory-backend-file");
    const char *path = is_file ? keyval_get(kv, "mem-path") : NULL;
    uint64_t size = 0;
    bool share = !is_file, dump = true;

    if (!keyval_get_size(kv, "size", &size, errp) ||
        !keyval_get_bool(kv, "share", &share, errp) ||
        !keyval_get_bool(kv, "dump", &dump, errp) ||
        !keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!size) {
        return tern_invalid(errp, "memory backend '%s': size= is required", id);
    }
    if (is_file && !path) {
        return tern_invalid(errp, "memory backend '%s': mem-path= is required", id);
    }
    if (!share) {
        return tern_invalid(errp, "memory backend '%s': share=off: tern maps guest "
                            "RAM shared (give share=on)", id);
    }
    return true;
}

/* secret,id=ID,(data=D|file=F)[,format=raw|base64]: the data must be there. */
static bool check_secret(KeyVal *kv, GError **errp)
{
    const char *data = keyval_get(kv, "data");
    const char *file = keyval_get(kv, "file");
    const char *format = keyval_get(kv, "format");
    g_autofree char *contents = NULL;
    g_autoptr(GError) err = NULL;
    struct stat st;

    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!data == !file) {
        return tern_invalid(errp, "secret '%s': give one of data= and file=",
                            keyval_get(kv, "id"));
    }
    if (format && strcmp(format, "raw") && strcmp(format, "base64")) {
        return tern_invalid(errp, "secret '%s': format '%s' (raw or base64)",
                            keyval_get(kv, "id"), format);
    }
    if (!file) {
        return true;
    }
    /* Small regular files only: a device or a huge file must not hang us. */
    if (stat(file, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SECRET_MAX) {
        return tern_invalid(errp, "secret '%s': %s is not a regular file of at "
                            "most %d bytes", keyval_get(kv, "id"), file, SECRET_MAX);
    }
    if (!g_file_get_contents(file, &contents, NULL, &err)) {
        return tern_invalid(errp, "Unable to read %s: %s", file, err->message);
    }
    return true;
}

bool objects_opt_object(VmConfig *cfg, const char *name, const char *arg,
                        GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse_any(arg, "qom-type", errp);
    const QomType *t;
    const char *type;

    if (!kv) {
        return false;
    }
    type = keyval_get(kv, "qom-type");
    if (!type || !keyval_get(kv, "id")) {
        return tern_invalid(errp, "'%s': qom-type and id are required", arg);
    }
    t = qom_type_find(type);
    if (t && !strcmp(type, "secret")) {
        if (!check_secret(kv, errp)) {
            return false;
        }
    } else if (!t || t->abstract || !qom_type_is_a(t, "memory-backend")) {
        return tern_invalid(errp, "object type '%s' is not supported (tern has "
                            "secret and memory-backend-ram, -memfd and -file)", type);
    } else if (!check_memory_backend(kv, errp)) {
        return false;
    }
    g_ptr_array_add(cfg->objects, g_steal_pointer(&kv));
    return true;
}

static KeyVal *find_object(VmConfig *cfg, const char *id)
{
    for (guint i = 0; i < cfg->objects->len; i++) {
        KeyVal *kv = cfg->objects->pdata[i];

        if (!strcmp(keyval_get(kv, "id"), id)) {
            return kv;
        }
    }
    return NULL;
}

bool objects_resolve_ram(VmConfig *cfg, GError **errp)
{
    KeyVal *kv;
    uint64_t size = 0;
    bool dump = true;

    if (!cfg->memory_backend) {
        return true;
    }
    kv = find_object(cfg, cfg->memory_backend);
    if (!kv || !g_str_has_prefix(keyval_get(kv, "qom-type"), "memory-backend-")) {
        return tern_fail(errp, TERN_ERR_NOT_FOUND, "Memory backend '%s' not found",
                         cfg->memory_backend);
    }
    if (strcmp(cfg->memory_backend, RAM_BACKEND_ID)) {
        return tern_invalid(errp, "memory-backend=%s: tern's RAM backend must be "
                            "called '%s' (the RAM block's migration name)",
                            cfg->memory_backend, RAM_BACKEND_ID);
    }
    if (!keyval_get_size(kv, "size", &size, errp) ||
        !keyval_get_bool(kv, "dump", &dump, errp)) {
        return false;
    }
    if (cfg->has_ram_size && size != cfg->ram_size) {
        return tern_invalid(errp, "Machine memory size does not match the size of "
                            "the memory backend");
    }
    cfg->ram_size = size;
    cfg->dump_guest_core &= dump;
    g_free(cfg->mem_path);
    cfg->mem_path = g_strdup(keyval_get(kv, "mem-path"));
    return true;
}

bool objects_opt_audiodev(VmConfig *cfg, const char *name, const char *arg,
                          GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse_any(arg, "driver", errp);
    const char *driver;

    if (!kv) {
        return false;
    }
    driver = keyval_get(kv, "driver");
    if (!keyval_get(kv, "id")) {
        return tern_invalid(errp, "'%s': id= is required", arg);
    }
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!driver || strcmp(driver, "none")) {
        return tern_invalid(errp, "audio driver '%s' is not supported: tern has "
                            "no sound device (driver=none)", driver ? driver : "");
    }
    return true;
}
