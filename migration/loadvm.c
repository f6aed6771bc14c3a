/*
 * The destination side of the migration stream: a loop that reads one
 * section or command at a time and dispatches it to the registered entry or
 * to the migration core's SaveVMIncomingOps. The stream is hostile, so each
 * step checks what it reads (magic, version, configuration, known idstr and
 * section ids, versions, footers, command lengths, postcopy ordering) and
 * fails with a message that says what was wrong and where.
 *
 * Postcopy: POSTCOPY_LISTEN (inside PACKAGED) hands the outer stream to a
 * listen thread that calls savevm_load_main on it while this thread finishes
 * the package (a nested QEMUFile over a buffer); POSTCOPY_RUN then ends
 * every nested loop with LOAD_QUIT. Each loop knows its outer stream, so
 * nothing about the nesting is shared between the two threads; the entries'
 * section ids are, under load_lock.
 */
#include <string.h>

#include "savevm-int.h"

enum { LOAD_ERROR = -1, LOAD_EOF = 0, LOAD_QUIT = 1, LOAD_CONTINUE = 2 };

/* Data is read in pieces so a hostile length cannot allocate before the
 * bytes actually arrive. */
#define PACKAGED_READ_CHUNK (1 * MiB)

void savevm_set_incoming_ops(SaveVM *sv, const SaveVMIncomingOps *ops,
                             void *opaque)
{
    sv->in_ops = ops;
    sv->in_opaque = opaque;
}

PostcopyIncomingState savevm_postcopy_state(const SaveVM *sv)
{
    return g_atomic_int_get(&sv->postcopy_state);
}

static void set_postcopy_state(SaveVM *sv, PostcopyIncomingState s)
{
    g_atomic_int_set(&sv->postcopy_state, s);
}

bool savevm_load_header(SaveVM *sv, QEMUFile *f, GError **errp)
{
    uint32_t magic = qemu_get_be32(f);
    uint32_t version = qemu_get_be32(f);

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (magic != QEMU_VM_FILE_MAGIC) {
        return tern_invalid(errp, "not a migration stream (magic 0x%08x, "
                            "expected 0x%08x)", magic, QEMU_VM_FILE_MAGIC);
    }
    if (version == QEMU_VM_FILE_VERSION_COMPAT) {
        return tern_invalid(errp, "migration stream version 2 is obsolete");
    }
    if (version != QEMU_VM_FILE_VERSION) {
        return tern_invalid(errp, "unsupported migration stream version %u",
                            version);
    }
    if (!savevm_config_load(sv, f, errp)) {
        g_prefix_error(errp, "configuration: ");
        return false;
    }
    return true;
}

/* ---- sections ---- */

static SaveStateEntry *find_entry(SaveVM *sv, const char *idstr,
                                  uint32_t instance_id)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        if (!strcmp(se->idstr, idstr) && se->instance_id == instance_id) {
            return se;
        }
    }
    return NULL;
}

/* The listen thread and the main thread (finishing a package) may both be
 * here during a postcopy switchover, hence the lock. */
static SaveStateEntry *find_loaded_section(SaveVM *sv, uint32_t section_id)
{
    SaveStateEntry *found = NULL;

    g_mutex_lock(&sv->load_lock);
    for (GList *l = sv->entries.head; l && !found; l = l->next) {
        SaveStateEntry *se = l->data;

        if (se->load_seen && se->load_section_id == section_id) {
            found = se;
        }
    }
    g_mutex_unlock(&sv->load_lock);
    return found;
}

static bool check_footer(QEMUFile *f, const SaveStateEntry *se, GError **errp)
{
    uint8_t mark = qemu_get_byte(f);
    uint32_t id;

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (mark != QEMU_VM_SECTION_FOOTER) {
        return tern_invalid(errp, "missing section footer for '%s' (found "
                            "0x%02x at offset %" PRIu64 ")", se->idstr, mark,
                            qemu_file_tell(f) - 1);
    }
    id = qemu_get_be32(f);
    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (id != se->load_section_id) {
        return tern_invalid(errp, "section footer for '%s' has section id %u, "
                            "expected %u", se->idstr, id, se->load_section_id);
    }
    return true;
}

static bool load_entry(SaveStateEntry *se, QEMUFile *f, GError **errp)
{
    bool ok;

    if (se->vmsd) {
        ok = vmstate_load(f, se->vmsd, se->opaque, se->load_version_id, errp);
    } else if (se->ops && se->ops->load_state) {
        ok = se->ops->load_state(f, se->opaque, se->load_version_id, errp);
        ok = ok && qemu_file_check(f, errp);
    } else {
        ok = tern_invalid(errp, "section '%s' cannot be loaded here",
                          se->idstr);
    }
    if (!ok) {
        g_prefix_error(errp, "loading '%s' instance %u: ", se->idstr,
                       se->instance_id);
        return false;
    }
    return check_footer(f, se, errp);
}

static bool load_section_start_full(SaveVM *sv, QEMUFile *f, GError **errp)
{
    uint32_t section_id = qemu_get_be32(f);
    char idstr[256];
    uint32_t instance_id, version_id;
    SaveStateEntry *se;

    qemu_get_counted_string(f, idstr);
    instance_id = qemu_get_be32(f);
    version_id = qemu_get_be32(f);
    if (!qemu_file_check(f, errp)) {
        return false;
    }
    se = find_entry(sv, idstr, instance_id);
    if (!se) {
        return tern_invalid(errp, "unknown section '%s' instance %u: the "
                            "stream does not match this VM's devices", idstr,
                            instance_id);
    }
    if (version_id > (uint32_t)se->version_id) {
        return tern_invalid(errp, "section '%s': unsupported version %u (this "
                            "VM has %d)", idstr, version_id, se->version_id);
    }
    g_mutex_lock(&sv->load_lock);
    se->load_seen = true;
    se->load_section_id = section_id;
    se->load_version_id = version_id;
    g_mutex_unlock(&sv->load_lock);
    return load_entry(se, f, errp);
}

static bool load_section_part_end(SaveVM *sv, QEMUFile *f, GError **errp)
{
    uint32_t section_id = qemu_get_be32(f);
    SaveStateEntry *se;

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    se = find_loaded_section(sv, section_id);
    if (!se) {
        return tern_invalid(errp, "section id %u continues a section that was "
                            "never started", section_id);
    }
    return load_entry(se, f, errp);
}

/* ---- commands ---- */

#define NEED_OP(sv, op, name)                                              \
    ((sv)->in_ops && (sv)->in_ops->op ? true :                             \
     tern_invalid(errp, "%s is not supported by this destination", name))

static bool cmd_open_return_path(SaveVM *sv, QEMUFile *outer, GError **errp)
{
    if (sv->return_path_open) {
        return true;        /* harmless repeat, as QEMU treats it */
    }
    if (!NEED_OP(sv, open_return_path, "OPEN_RETURN_PATH") ||
        !sv->in_ops->open_return_path(sv->in_opaque, outer, errp)) {
        return false;
    }
    sv->return_path_open = true;
    return true;
}

static bool cmd_ping(SaveVM *sv, QEMUFile *f, GError **errp)
{
    uint32_t value = qemu_get_be32(f);

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (!sv->return_path_open) {
        return tern_invalid(errp, "PING 0x%x received with no return path",
                            value);
    }
    return NEED_OP(sv, ping, "PING") &&
           sv->in_ops->ping(sv->in_opaque, value, errp);
}

static bool cmd_postcopy_advise(SaveVM *sv, QEMUFile *f, uint16_t len,
                                GError **errp)
{
    uint64_t host_pages = 0, page_size = 0;

    if (savevm_postcopy_state(sv) != POSTCOPY_INCOMING_NONE) {
        return tern_invalid(errp, "POSTCOPY_ADVISE in the wrong postcopy state "
                            "(%d)", savevm_postcopy_state(sv));
    }
    if (len != 0 && len != 16) {
        return tern_invalid(errp, "POSTCOPY_ADVISE with invalid length %u",
                            len);
    }
    if (len == 16) {
        host_pages = qemu_get_be64(f);
        page_size = qemu_get_be64(f);
        if (!qemu_file_check(f, errp)) {
            return false;
        }
    }
    set_postcopy_state(sv, POSTCOPY_INCOMING_ADVISE);
    if (!sv->in_ops || !sv->in_ops->postcopy_advise) {
        /* Dirty-bitmap-only postcopy needs nothing from RAM. */
        return len == 0 ? true :
               tern_invalid(errp, "RAM postcopy is not supported by this "
                            "destination");
    }
    return sv->in_ops->postcopy_advise(sv->in_opaque, len == 16, host_pages,
                                       page_size, errp);
}

static bool cmd_ram_discard(SaveVM *sv, QEMUFile *f, uint16_t len,
                            GError **errp)
{
    PostcopyIncomingState ps = savevm_postcopy_state(sv);
    char block[256];
    uint8_t version, nil;
    size_t name_len;

    if (ps != POSTCOPY_INCOMING_ADVISE && ps != POSTCOPY_INCOMING_DISCARD) {
        return tern_invalid(errp, "POSTCOPY_RAM_DISCARD in the wrong postcopy "
                            "state (%d)", ps);
    }
    set_postcopy_state(sv, POSTCOPY_INCOMING_DISCARD);
    if (len < 1 + 1 + 1 + 1 + 16) {
        return tern_invalid(errp, "POSTCOPY_RAM_DISCARD with invalid length %u",
                            len);
    }
    version = qemu_get_byte(f);
    name_len = qemu_get_counted_string(f, block);
    nil = qemu_get_byte(f);
    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (version != 0) {
        return tern_invalid(errp, "POSTCOPY_RAM_DISCARD version %u unknown",
                            version);
    }
    if (nil != 0) {
        return tern_invalid(errp, "POSTCOPY_RAM_DISCARD name not terminated");
    }
    if (len < 3 + name_len || (len - 3 - name_len) % 16 ||
        len == 3 + name_len) {
        return tern_invalid(errp, "POSTCOPY_RAM_DISCARD with invalid length %u",
                            len);
    }
    for (size_t left = len - 3 - name_len; left; left -= 16) {
        uint64_t start = qemu_get_be64(f);
        uint64_t length = qemu_get_be64(f);

        if (!qemu_file_check(f, errp) ||
            !NEED_OP(sv, postcopy_ram_discard, "POSTCOPY_RAM_DISCARD") ||
            !sv->in_ops->postcopy_ram_discard(sv->in_opaque, block, start,
                                              length, errp)) {
            return false;
        }
    }
    return true;
}

static bool cmd_postcopy_listen(SaveVM *sv, QEMUFile *f, QEMUFile *outer,
                                GError **errp)
{
    PostcopyIncomingState ps = savevm_postcopy_state(sv);

    if (ps != POSTCOPY_INCOMING_ADVISE && ps != POSTCOPY_INCOMING_DISCARD) {
        return tern_invalid(errp, "POSTCOPY_LISTEN in the wrong postcopy state "
                            "(%d)", ps);
    }
    /* Outside a package the listen thread and this one would both read
     * the outer stream. QEMU always packages LISTEN and RUN. */
    if (f == outer) {
        return tern_invalid(errp, "POSTCOPY_LISTEN outside a PACKAGED blob");
    }
    if (!NEED_OP(sv, postcopy_listen, "POSTCOPY_LISTEN")) {
        return false;
    }
    set_postcopy_state(sv, POSTCOPY_INCOMING_LISTENING);
    /* LISTEN normally arrives inside PACKAGED: the listen thread takes over
     * the outer stream, which is where the postcopy pages come. */
    return sv->in_ops->postcopy_listen(sv->in_opaque, outer, errp);
}

static bool cmd_postcopy_run(SaveVM *sv, QEMUFile *f, QEMUFile *outer,
                             GError **errp)
{
    if (savevm_postcopy_state(sv) != POSTCOPY_INCOMING_LISTENING) {
        return tern_invalid(errp, "POSTCOPY_RUN in the wrong postcopy state "
                            "(%d)", savevm_postcopy_state(sv));
    }
    if (f == outer) {
        return tern_invalid(errp, "POSTCOPY_RUN outside a PACKAGED blob");
    }
    set_postcopy_state(sv, POSTCOPY_INCOMING_RUNNING);
    return NEED_OP(sv, postcopy_run, "POSTCOPY_RUN") &&
           sv->in_ops->postcopy_run(sv->in_opaque, errp);
}

static bool cmd_recv_bitmap(SaveVM *sv, QEMUFile *f, uint16_t len,
                            GError **errp)
{
    char block[256];
    size_t n = qemu_get_counted_string(f, block);

    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (!n || len != n + 1) {
        return tern_invalid(errp, "RECV_BITMAP with invalid length %u", len);
    }
    return NEED_OP(sv, recv_bitmap, "RECV_BITMAP") &&
           sv->in_ops->recv_bitmap(sv->in_opaque, block, errp);
}

static GBytes *read_packaged(QEMUFile *f, uint32_t length, GError **errp)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();

    while (buf->len < length) {
        size_t chunk = MIN(length - buf->len, PACKAGED_READ_CHUNK);
        size_t old = buf->len;

        g_byte_array_set_size(buf, old + chunk);
        if (qemu_get_buffer(f, buf->data + old, chunk) != chunk) {
            qemu_file_check(f, errp);
            g_prefix_error(errp, "PACKAGED data of %u bytes: ", length);
            return NULL;
        }
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

static int load_loop(SaveVM *sv, QEMUFile *f, QEMUFile *outer, GError **errp);

/* 'f' is 'outer' unless we are inside a package already. */
static int cmd_packaged(SaveVM *sv, QEMUFile *f, QEMUFile *outer,
                        GError **errp)
{
    uint32_t length = qemu_get_be32(f);
    g_autoptr(GBytes) data = NULL;
    QEMUFile *packf;
    int ret;

    if (!qemu_file_check(f, errp)) {
        return LOAD_ERROR;
    }
    if (f != outer) {
        tern_invalid(errp, "PACKAGED command inside a packaged stream");
        return LOAD_ERROR;
    }
    data = read_packaged(f, length, errp);
    if (!data) {
        return LOAD_ERROR;
    }
    packf = qemu_file_new_mem_input(data);
    ret = load_loop(sv, packf, outer, errp);
    qemu_fclose(packf, NULL);
    if (ret < 0) {
        g_prefix_error(errp, "in PACKAGED stream: ");
    }
    return ret == LOAD_EOF ? LOAD_CONTINUE : ret;
}

static bool dispatch_command(SaveVM *sv, QEMUFile *f, QEMUFile *outer,
                             uint16_t cmd, uint16_t len, GError **errp)
{
    switch (cmd) {
    case MIG_CMD_OPEN_RETURN_PATH:
        return cmd_open_return_path(sv, outer, errp);
    case MIG_CMD_PING:
        return cmd_ping(sv, f, errp);
    case MIG_CMD_POSTCOPY_ADVISE:
        return cmd_postcopy_advise(sv, f, len, errp);
    case MIG_CMD_POSTCOPY_LISTEN:
        return cmd_postcopy_listen(sv, f, outer, errp);
    case MIG_CMD_POSTCOPY_RAM_DISCARD:
        return cmd_ram_discard(sv, f, len, errp);
    case MIG_CMD_POSTCOPY_RUN:
        return cmd_postcopy_run(sv, f, outer, errp);
    case MIG_CMD_POSTCOPY_RESUME:
        return NEED_OP(sv, postcopy_resume, "POSTCOPY_RESUME") &&
               sv->in_ops->postcopy_resume(sv->in_opaque, errp);
    case MIG_CMD_RECV_BITMAP:
        return cmd_recv_bitmap(sv, f, len, errp);
    case MIG_CMD_ENABLE_COLO:
        return tern_invalid(errp, "COLO is not supported");
    }
    g_assert_not_reached();
}

static int load_command(SaveVM *sv, QEMUFile *f, QEMUFile *outer,
                        GError **errp)
{
    uint16_t cmd = qemu_get_be16(f);
    uint16_t len = qemu_get_be16(f);
    int fixed;

    if (!qemu_file_check(f, errp)) {
        return LOAD_ERROR;
    }
    if (!mig_cmd_name(cmd)) {
        tern_invalid(errp, "unknown migration command 0x%x (length %u)", cmd,
                     len);
        return LOAD_ERROR;
    }
    fixed = mig_cmd_fixed_len(cmd);
    if (fixed >= 0 && fixed != len) {
        tern_invalid(errp, "%s with length %u, expected %d", mig_cmd_name(cmd),
                     len, fixed);
        return LOAD_ERROR;
    }
    if (cmd == MIG_CMD_PACKAGED) {
        return cmd_packaged(sv, f, outer, errp);
    }
    if (!dispatch_command(sv, f, outer, cmd, len, errp)) {
        return LOAD_ERROR;
    }
    return cmd == MIG_CMD_POSTCOPY_RUN ? LOAD_QUIT : LOAD_CONTINUE;
}

/* ---- main loop ---- */

static int load_one(SaveVM *sv, QEMUFile *f, QEMUFile *outer, GError **errp)
{
    uint64_t offset = qemu_file_tell(f);
    uint8_t type = qemu_get_byte(f);

    if (!qemu_file_check(f, errp)) {
        return LOAD_ERROR;
    }
    switch (type) {
    case QEMU_VM_SECTION_START:
    case QEMU_VM_SECTION_FULL:
        return load_section_start_full(sv, f, errp) ? LOAD_CONTINUE
                                                    : LOAD_ERROR;
    case QEMU_VM_SECTION_PART:
    case QEMU_VM_SECTION_END:
        return load_section_part_end(sv, f, errp) ? LOAD_CONTINUE
                                                  : LOAD_ERROR;
    case QEMU_VM_COMMAND:
        return load_command(sv, f, outer, errp);
    case QEMU_VM_EOF:
        return LOAD_EOF;
    }
    tern_invalid(errp, "unknown section type 0x%02x at offset %" PRIu64, type,
                 offset);
    return LOAD_ERROR;
}

static int load_loop(SaveVM *sv, QEMUFile *f, QEMUFile *outer, GError **errp)
{
    int ret;

    do {
        ret = load_one(sv, f, outer, errp);
    } while (ret == LOAD_CONTINUE);
    return ret;
}

int savevm_load_main(SaveVM *sv, QEMUFile *f, GError **errp)
{
    int ret = load_loop(sv, f, f, errp);

    if (ret == LOAD_EOF &&
        savevm_postcopy_state(sv) == POSTCOPY_INCOMING_RUNNING) {
        set_postcopy_state(sv, POSTCOPY_INCOMING_END);
    }
    return ret;
}

static bool load_setup(SaveVM *sv, QEMUFile *f, GError **errp)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;

        se->load_seen = false;
        if (se->ops && se->ops->load_setup &&
            !se->ops->load_setup(f, se->opaque, errp)) {
            g_prefix_error(errp, "load setup of '%s': ", se->idstr);
            return false;
        }
    }
    return true;
}

/* Every handler's optional hook at 'offset' in SaveVMHandlers. */
static void call_load_hooks(SaveVM *sv, size_t offset)
{
    for (GList *l = sv->entries.head; l; l = l->next) {
        SaveStateEntry *se = l->data;
        void (*hook)(void *opaque);

        if (se->ops) {
            memcpy(&hook, (const char *)se->ops + offset, sizeof(hook));
            if (hook) {
                hook(se->opaque);
            }
        }
    }
}

void savevm_load_cleanup(SaveVM *sv)
{
    call_load_hooks(sv, offsetof(SaveVMHandlers, load_cleanup));
}

void savevm_load_resumed(SaveVM *sv)
{
    call_load_hooks(sv, offsetof(SaveVMHandlers, load_resumed));
}

void savevm_load_abandon(SaveVM *sv)
{
    call_load_hooks(sv, offsetof(SaveVMHandlers, load_abandon));
}

/* The VM description after EOF is for tools; read past it so the sender
 * does not see a closed connection, but do not require it. */
static void skip_vmdesc(QEMUFile *f)
{
    if (qemu_peek_byte(f, 0) != QEMU_VM_VMDESCRIPTION) {
        return;
    }
    qemu_file_skip(f, 1);
    qemu_file_skip(f, qemu_get_be32(f));
}

bool savevm_load(SaveVM *sv, QEMUFile *f, GError **errp)
{
    int ret;

    sv->return_path_open = false;
    set_postcopy_state(sv, POSTCOPY_INCOMING_NONE);
    if (!savevm_load_header(sv, f, errp)) {
        return false;
    }
    if (!load_setup(sv, f, errp)) {
        savevm_load_cleanup(sv);
        return false;
    }
    ret = savevm_load_main(sv, f, errp);
    if (ret == LOAD_QUIT) {
        return true;    /* the listen thread owns the stream and cleanup */
    }
    if (ret == LOAD_EOF) {
        skip_vmdesc(f);
    }
    savevm_load_cleanup(sv);
    return ret == LOAD_EOF;
}
