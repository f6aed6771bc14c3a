/*
 * The source side of the migration stream and the registry behind it. Each
 * registered entry gets a section id; saving writes the header and
 * configuration, START sections for live state, PART sections while
 * iterating, then END sections, FULL device sections, EOF and the JSON VM
 * description that QEMU's scripts/analyze-migration.py reads. The command
 * writers (return path, ping, postcopy, packaged) are here too; the
 * destination is loadvm.c.
 */
#include <string.h>

#include "savevm-int.h"

static const struct {
    const char *name;
    int len;            /* -1: variable */
} mig_cmds[MIG_CMD_MAX] = {
    [MIG_CMD_INVALID]              = { "INVALID", -1 },
    [MIG_CMD_OPEN_RETURN_PATH]     = { "OPEN_RETURN_PATH", 0 },
    [MIG_CMD_PING]                 = { "PING", 4 },
    [MIG_CMD_POSTCOPY_ADVISE]      = { "POSTCOPY_ADVISE", -1 },
    [MIG_CMD_POSTCOPY_LISTEN]      = { "POSTCOPY_LISTEN", 0 },
    [MIG_CMD_POSTCOPY_RUN]         = { "POSTCOPY_RUN", 0 },
    [MIG_CMD_POSTCOPY_RAM_DISCARD] = { "POSTCOPY_RAM_DISCARD", -1 },
    [MIG_CMD_PACKAGED]             = { "PACKAGED", 4 },
    [MIG_CMD_ENABLE_COLO]          = { "ENABLE_COLO", 0 },
    [MIG_CMD_POSTCOPY_RESUME]      = { "POSTCOPY_RESUME", 0 },
    [MIG_CMD_RECV_BITMAP]          = { "RECV_BITMAP", -1 },
};

const char *mig_cmd_name(unsigned cmd)
{
    return (cmd > MIG_CMD_INVALID && cmd < MIG_CMD_MAX) ?
           mig_cmds[cmd].name : NULL;
}

int mig_cmd_fixed_len(unsigned cmd)
{
    return (cmd < MIG_CMD_MAX) ? mig_cmds[cmd].len : -1;
}

/* ---- registry ---- */

SaveVM *savevm_new(const char *machine_name)
{
    SaveVM *sv = g_new0(SaveVM, 1);

    g_assert(strlen(machine_name) <= 255);
    sv->machine_name = g_strdup(machine_name);
    g_queue_init(&sv->entries);
    /* QEMU's loader matches PART/END by section id and its entries that saw
     * no START yet all hold id 0: a live section numbered 0 would be fed to
     * the wrong device there. Start at 1. */
    sv->next_section_id = 1;
    g_mutex_init(&sv->load_lock);
    return sv;
}

void savevm_set_uuid(SaveVM *sv, const uint8_t uuid[16])
{
    memcpy(sv->uuid, uuid, 16);
    sv->has_uuid = true;
}

void savevm_set_send_uuid(SaveVM *sv, bool on)
{
    sv->send_uuid = on;
}

void savevm_free(SaveVM *sv)
{
    if (!sv) {
        return;
    }
    g_queue_clear_full(&sv->entries, g_free);
    g_clear_pointer(&sv->vmdesc, json_object_put);
    g_mutex_clear(&sv->load_lock);
    g_free(sv->machine_name);
    g_free(sv);
}

static uint32_t next_instance_id(SaveVM *sv, const char *idstr)
{
    uint32_t id = 0;

    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (!strcmp(se->idstr, idstr) && se->instance_id >= id) {
            id = se->instance_id + 1;
        }
    }
    return id;
}

static SaveStateEntry *add_entry(SaveVM *sv, const char *idstr,
                                 uint32_t instance_id, int version_id,
                                 void *opaque)
{
    SaveStateEntry *se = g_new0(SaveStateEntry, 1);

    g_assert(strlen(idstr) < sizeof(se->idstr));
    g_strlcpy(se->idstr, idstr, sizeof(se->idstr));
    se->instance_id = instance_id == VMSTATE_INSTANCE_ID_ANY ?
                      next_instance_id(sv, idstr) : instance_id;
    se->version_id = version_id;
    se->section_id = sv->next_section_id++;
    se->opaque = opaque;
    g_queue_push_tail(&sv->entries, se);
    return se;
}

void savevm_register_live(SaveVM *sv, const char *idstr, uint32_t instance_id,
                          int version_id, const SaveVMHandlers *ops,
                          void *opaque)
{
    add_entry(sv, idstr, instance_id, version_id, opaque)->ops = ops;
}

void savevm_register_vmstate(SaveVM *sv, const char *idstr,
                             uint32_t instance_id,
                             const VMStateDescription *vmsd, void *opaque)
{
    add_entry(sv, idstr ? idstr : vmsd->name, instance_id, vmsd->version_id,
              opaque)->vmsd = vmsd;
}

void savevm_unregister(SaveVM *sv, void *opaque)
{
    GList *l = sv->entries.head;

    while (l) {
        GList *next = l->next;
        SaveStateEntry *se = l->data;

        if (se->opaque == opaque) {
            g_queue_delete_link(&sv->entries, l);
            g_free(se);
        }
        l = next;
    }
}

bool savevm_state_saveable(SaveVM *sv, GError **errp)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (se->vmsd && se->vmsd->unmigratable) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "State blocked by "
                        "non-migratable device '%s'", se->idstr);
            return false;
        }
    }
    return true;
}

/* ---- sections ---- */

static void put_section_header(QEMUFile *f, const SaveStateEntry *se,
                               uint8_t type)
{
    qemu_put_byte(f, type);
    qemu_put_be32(f, se->section_id);
    if (type == QEMU_VM_SECTION_START || type == QEMU_VM_SECTION_FULL) {
        qemu_put_counted_string(f, se->idstr);
        qemu_put_be32(f, se->instance_id);
        qemu_put_be32(f, se->version_id);
    }
}

static void put_section_footer(QEMUFile *f, const SaveStateEntry *se)
{
    qemu_put_byte(f, QEMU_VM_SECTION_FOOTER);
    qemu_put_be32(f, se->section_id);
}

static bool live_active(const SaveStateEntry *se)
{
    return se->ops && (!se->ops->is_active || se->ops->is_active(se->opaque));
}

bool savevm_save_header(SaveVM *sv, QEMUFile *f, GError **errp)
{
    qemu_put_be32(f, QEMU_VM_FILE_MAGIC);
    qemu_put_be32(f, QEMU_VM_FILE_VERSION);
    return savevm_config_save(sv, f, errp);
}

static void vmdesc_begin(SaveVM *sv)
{
    g_clear_pointer(&sv->vmdesc, json_object_put);
    sv->vmdesc = json_object_new_object();
    tern_json_add_int(sv->vmdesc, "page_size", 1 << SAVEVM_TARGET_PAGE_BITS);
    json_object_object_add(sv->vmdesc, "devices", json_object_new_array());
}

/* The "devices" array of the description being built. */
static json_object *vmdesc_devices(SaveVM *sv)
{
    return json_object_object_get(sv->vmdesc, "devices");
}

bool savevm_save_setup(SaveVM *sv, QEMUFile *f, GError **errp)
{
    vmdesc_begin(sv);
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;
        bool ok;

        if (!live_active(se) || !se->ops->save_setup) {
            continue;
        }
        put_section_header(f, se, QEMU_VM_SECTION_START);
        ok = se->ops->save_setup(f, se->opaque, errp);
        put_section_footer(f, se);
        if (!ok) {
            g_prefix_error(errp, "setup of '%s': ", se->idstr);
            return false;
        }
    }
    return qemu_file_check(f, errp);
}

static bool iterates_now(const SaveStateEntry *se, bool postcopy)
{
    const SaveVMHandlers *ops = se->ops;

    if (!live_active(se) || !ops->save_live_iterate) {
        return false;
    }
    if (ops->is_active_iterate && !ops->is_active_iterate(se->opaque)) {
        return false;
    }
    /* After the postcopy switchover only postcopy-capable state goes on. */
    return !postcopy || (ops->has_postcopy && ops->has_postcopy(se->opaque));
}

int savevm_save_iterate(SaveVM *sv, QEMUFile *f, bool postcopy,
                        GError **errp)
{
    int ret = 1;

    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (!iterates_now(se, postcopy)) {
            continue;
        }
        if (qemu_file_rate_limit_exceeded(f)) {
            ret = 0;
            break;
        }
        put_section_header(f, se, QEMU_VM_SECTION_PART);
        ret = se->ops->save_live_iterate(f, se->opaque, errp);
        put_section_footer(f, se);
        if (ret < 0) {
            g_prefix_error(errp, "iteration of '%s': ", se->idstr);
            return -1;
        }
        if (ret == 0) {
            /* Finish one source's round before starting the next, so fast
             * changing state is not resent over and over. */
            break;
        }
    }
    return qemu_file_check(f, errp) ? ret : -1;
}

static void save_pending(SaveVM *sv, bool exact, uint64_t *must_precopy,
                         uint64_t *can_postcopy)
{
    *must_precopy = *can_postcopy = 0;
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (!live_active(se)) {
            continue;
        }
        if (exact && se->ops->save_pending_exact) {
            se->ops->save_pending_exact(se->opaque, must_precopy,
                                        can_postcopy);
        } else if (se->ops->save_pending) {
            se->ops->save_pending(se->opaque, must_precopy, can_postcopy);
        }
    }
}

void savevm_save_pending(SaveVM *sv, uint64_t *must_precopy,
                         uint64_t *can_postcopy)
{
    save_pending(sv, false, must_precopy, can_postcopy);
}

void savevm_save_pending_exact(SaveVM *sv, uint64_t *must_precopy,
                               uint64_t *can_postcopy)
{
    save_pending(sv, true, must_precopy, can_postcopy);
}

static bool complete_iterables(SaveVM *sv, QEMUFile *f, bool in_postcopy,
                               GError **errp)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;
        bool ok;

        if (!live_active(se) || !se->ops->save_live_complete_precopy) {
            continue;
        }
        if (in_postcopy && se->ops->has_postcopy &&
            se->ops->has_postcopy(se->opaque)) {
            continue;
        }
        put_section_header(f, se, QEMU_VM_SECTION_END);
        ok = se->ops->save_live_complete_precopy(f, se->opaque, errp);
        put_section_footer(f, se);
        if (!ok) {
            g_prefix_error(errp, "completion of '%s': ", se->idstr);
            return false;
        }
    }
    return true;
}

/* The vmdesc entry for old-style state: one opaque buffer. */
static void vmdesc_old_style(json_object *desc, uint64_t size)
{
    json_object *fields = json_object_new_array();
    json_object *data = json_object_new_object();

    tern_json_add_uint(desc, "size", size);
    tern_json_add_str(data, "name", "data");
    tern_json_add_uint(data, "size", size);
    tern_json_add_str(data, "type", "buffer");
    json_object_array_add(fields, data);
    json_object_object_add(desc, "fields", fields);
}

static bool save_device_body(SaveStateEntry *se, QEMUFile *f, json_object *desc,
                             GError **errp)
{
    uint64_t start = qemu_file_tell(f);

    if (se->vmsd) {
        return vmstate_save(f, se->vmsd, se->opaque, desc, errp);
    }
    if (!se->ops->save_state(f, se->opaque, errp)) {
        return false;
    }
    if (desc) {
        vmdesc_old_style(desc, qemu_file_tell(f) - start);
    }
    return true;
}

/* Saves one section; with devices, appends its description there. */
static bool save_device(SaveStateEntry *se, QEMUFile *f, json_object *devices,
                        GError **errp)
{
    json_object *desc = NULL;

    if (!se->vmsd && !(se->ops && se->ops->save_state)) {
        return true;
    }
    if (se->vmsd && se->vmsd->needed && !se->vmsd->needed(se->opaque)) {
        return true;
    }
    put_section_header(f, se, QEMU_VM_SECTION_FULL);
    if (devices) {
        desc = json_object_new_object();
        json_object_array_add(devices, desc);
        tern_json_add_str(desc, "name", se->idstr);
        tern_json_add_int(desc, "instance_id", se->instance_id);
    }
    if (!save_device_body(se, f, desc, errp)) {
        g_prefix_error(errp, "saving '%s': ", se->idstr);
        return false;
    }
    put_section_footer(f, se);
    return true;
}

static bool save_devices_desc(SaveVM *sv, QEMUFile *f, json_object *devices,
                              GError **errp)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        if (!save_device(l->data, f, devices, errp)) {
            return false;
        }
    }
    return qemu_file_check(f, errp);
}

bool savevm_save_devices(SaveVM *sv, QEMUFile *f, GError **errp)
{
    return save_devices_desc(sv, f, NULL, errp);
}

static void put_vmdesc(SaveVM *sv, QEMUFile *f)
{
    size_t len = 0;
    const char *json = json_object_to_json_string_length(sv->vmdesc,
                                                         TERN_JSON_COMPACT, &len);

    qemu_put_byte(f, QEMU_VM_VMDESCRIPTION);
    qemu_put_be32(f, len);
    qemu_put_buffer(f, (const uint8_t *)json, len);
    g_clear_pointer(&sv->vmdesc, json_object_put);
}

static bool complete_precopy(SaveVM *sv, QEMUFile *f, bool in_postcopy,
                             bool iterable_only,
                             bool (*before_eof)(void *opaque, GError **errp),
                             void *opaque, GError **errp)
{
    bool ok = true;

    if (!sv->vmdesc) {
        vmdesc_begin(sv);
    }
    if (!in_postcopy || iterable_only) {
        ok = complete_iterables(sv, f, in_postcopy, errp);
    }
    if (ok && !iterable_only) {
        ok = save_devices_desc(sv, f, vmdesc_devices(sv), errp);
        if (ok && before_eof) {
            qemu_fflush(f);
            ok = qemu_file_check(f, errp) && before_eof(opaque, errp);
        }
        if (ok && !in_postcopy) {
            qemu_put_byte(f, QEMU_VM_EOF);
            /* The description is only sent when the stream ends here. */
            put_vmdesc(sv, f);
        }
    }
    qemu_fflush(f);
    return ok && qemu_file_check(f, errp);
}

bool savevm_save_complete_precopy(SaveVM *sv, QEMUFile *f, bool in_postcopy,
                                  bool iterable_only, GError **errp)
{
    return complete_precopy(sv, f, in_postcopy, iterable_only, NULL, NULL,
                            errp);
}

bool savevm_save_complete_precopy_then(SaveVM *sv, QEMUFile *f,
                                       bool (*before_eof)(void *opaque,
                                                          GError **errp),
                                       void *opaque, GError **errp)
{
    return complete_precopy(sv, f, false, false, before_eof, opaque, errp);
}

bool savevm_save_complete_postcopy(SaveVM *sv, QEMUFile *f, GError **errp)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;
        bool ok;

        /* State that cannot follow a postcopy ended at the switchover. */
        if (!live_active(se) || !se->ops->save_live_complete_postcopy ||
            !se->ops->has_postcopy || !se->ops->has_postcopy(se->opaque)) {
            continue;
        }
        put_section_header(f, se, QEMU_VM_SECTION_END);
        ok = se->ops->save_live_complete_postcopy(f, se->opaque, errp);
        put_section_footer(f, se);
        if (!ok) {
            g_prefix_error(errp, "postcopy completion of '%s': ", se->idstr);
            return false;
        }
    }
    qemu_put_byte(f, QEMU_VM_EOF);
    qemu_fflush(f);
    return qemu_file_check(f, errp);
}

void savevm_save_resume_prepare(SaveVM *sv)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (live_active(se) && se->ops->resume_prepare) {
            se->ops->resume_prepare(se->opaque);
        }
    }
}

void savevm_save_cleanup(SaveVM *sv)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (se->ops && se->ops->save_cleanup) {
            se->ops->save_cleanup(se->opaque);
        }
    }
    g_clear_pointer(&sv->vmdesc, json_object_put);
}

bool savevm_save_all(SaveVM *sv, QEMUFile *f, GError **errp)
{
    bool ok = savevm_save_header(sv, f, errp) &&
              savevm_save_setup(sv, f, errp);

    /* Iterate while precopy state is left; postcopy-only state (dirty
     * bitmaps) goes in the END sections, as QEMU's completion sends it. */
    while (ok) {
        uint64_t must = 0, can = 0;
        int ret = savevm_save_iterate(sv, f, false, errp);

        ok = ret >= 0;
        if (ret != 0) {
            break;
        }
        savevm_save_pending(sv, &must, &can);
        if (!must) {
            break;
        }
    }
    ok = ok && savevm_save_complete_precopy(sv, f, false, false, errp);
    savevm_save_cleanup(sv);
    return ok;
}

/* ---- commands ---- */

static void send_command(QEMUFile *f, MigCmd cmd, uint16_t len,
                         const uint8_t *data)
{
    qemu_put_byte(f, QEMU_VM_COMMAND);
    qemu_put_be16(f, cmd);
    qemu_put_be16(f, len);
    qemu_put_buffer(f, data, len);
    qemu_fflush(f);
}

void savevm_send_open_return_path(QEMUFile *f)
{
    send_command(f, MIG_CMD_OPEN_RETURN_PATH, 0, NULL);
}

void savevm_send_ping(QEMUFile *f, uint32_t value)
{
    uint8_t b[4] = { value >> 24, value >> 16, value >> 8, value };

    send_command(f, MIG_CMD_PING, sizeof(b), b);
}

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) {
        p[i] = v;
    }
}

void savevm_send_postcopy_advise(QEMUFile *f, bool ram, uint64_t host_pages,
                                 uint64_t target_page_size)
{
    uint8_t b[16];

    if (!ram) {
        send_command(f, MIG_CMD_POSTCOPY_ADVISE, 0, NULL);
        return;
    }
    store_be64(b, host_pages);
    store_be64(b + 8, target_page_size);
    send_command(f, MIG_CMD_POSTCOPY_ADVISE, sizeof(b), b);
}

void savevm_send_postcopy_listen(QEMUFile *f)
{
    send_command(f, MIG_CMD_POSTCOPY_LISTEN, 0, NULL);
}

void savevm_send_postcopy_run(QEMUFile *f)
{
    send_command(f, MIG_CMD_POSTCOPY_RUN, 0, NULL);
}

void savevm_send_postcopy_resume(QEMUFile *f)
{
    send_command(f, MIG_CMD_POSTCOPY_RESUME, 0, NULL);
}

void savevm_send_enable_colo(QEMUFile *f)
{
    send_command(f, MIG_CMD_ENABLE_COLO, 0, NULL);
}

bool savevm_send_postcopy_ram_discard(QEMUFile *f, const char *block,
                                      size_t n, const uint64_t *starts,
                                      const uint64_t *lengths, GError **errp)
{
    size_t name_len = strlen(block);
    size_t len = 3 + name_len + 16 * n;
    g_autofree uint8_t *b = NULL;
    size_t pos = 0;

    if (name_len > 255 || len > UINT16_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "RAM discard for '%s' with %zu ranges does not fit one "
                    "command", block, n);
        return false;
    }
    b = g_malloc(len);
    b[pos++] = 0;                       /* format version */
    b[pos++] = name_len;
    memcpy(b + pos, block, name_len);
    pos += name_len;
    b[pos++] = 0;                       /* terminator, checked on load */
    for (size_t i = 0; i < n; i++, pos += 16) {
        store_be64(b + pos, starts[i]);
        store_be64(b + pos + 8, lengths[i]);
    }
    send_command(f, MIG_CMD_POSTCOPY_RAM_DISCARD, len, b);
    return true;
}

bool savevm_send_packaged(QEMUFile *f, const uint8_t *buf, size_t len,
                          GError **errp)
{
    uint8_t b[4] = { len >> 24, len >> 16, len >> 8, len };

    if (len > MIG_CMD_PACKAGED_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "packaged device state of %zu bytes is too large", len);
        return false;
    }
    send_command(f, MIG_CMD_PACKAGED, sizeof(b), b);
    qemu_put_buffer(f, buf, len);
    return true;
}

void savevm_send_recv_bitmap(QEMUFile *f, const char *block)
{
    size_t len = strlen(block);
    uint8_t b[256];

    g_assert(len <= 255);
    b[0] = len;
    memcpy(b + 1, block, len);
    send_command(f, MIG_CMD_RECV_BITMAP, len + 1, b);
}
