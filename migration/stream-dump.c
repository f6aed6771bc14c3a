/*
 * The stream inspector's framing walker: header, configuration, sections
 * with their footers, commands (PACKAGED sub-streams walked recursively),
 * EOF and the trailing JSON VM description. Section bodies go to the RAM and
 * dirty-bitmap readers; other device sections are skipped by the sizes the
 * VM description gives (as QEMU's analyze-migration.py does) or, when the
 * stream has none, by finding the section's footer.
 */
#include <string.h>

#include "migration/savevm.h"
#include "stream-dump-int.h"

typedef struct DumpSection {
    char idstr[256];
    uint32_t instance_id;
    uint32_t version_id;
    uint64_t parts, part_bytes;     /* PART sections are only counted */
} DumpSection;

bool dump_fail(GError **errp, QEMUFile *f, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "%s (at offset %" PRIu64
                ")", msg, qemu_file_tell(f));
    return false;
}

/* ---- the JSON VM description ---- */

static uint64_t be32_at(const uint8_t *p)
{
    return (uint64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* The description is the stream's tail: 0x06, be32 length, JSON. */
static json_object *find_vmdesc(const uint8_t *data, size_t size, size_t *at)
{
    if (size < 6) {
        return NULL;
    }
    for (size_t pos = size - 5; pos-- > 0;) {
        if (data[pos] == QEMU_VM_VMDESCRIPTION && data[pos + 5] == '{' &&
            be32_at(data + pos + 1) == size - pos - 5) {
            *at = pos;
            return tern_json_parse((const char *)data + pos + 5, size - pos - 5,
                                   VMDESC_MAX_DEPTH, NULL);
        }
    }
    return NULL;
}

/* Member 'name' of o if it has type t, else NULL. */
static json_object *vmdesc_member(json_object *o, const char *name, json_type t)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, t)
           ? v : NULL;
}

static const char *vmdesc_str(json_object *o, const char *name, const char *def)
{
    json_object *v = vmdesc_member(o, name, json_type_string);

    return v ? json_object_get_string(v) : def;
}

static bool vmdesc_int(json_object *o, const char *member, int64_t *v)
{
    json_object *n = vmdesc_member(o, member, json_type_int);

    return n && tern_json_int64(n, v) && *v >= 0 && *v <= (int64_t)UINT32_MAX;
}

/* Element i of array a if it is an object, else NULL. */
static json_object *vmdesc_object_at(json_object *a, size_t i)
{
    json_object *o = json_object_array_get_idx(a, i);

    return json_object_is_type(o, json_type_object) ? o : NULL;
}

static size_t vmdesc_length(json_object *a)
{
    return a ? json_object_array_length(a) : 0;
}

/* Bytes the description says a vmstate (fields and subsections) takes. */
static bool vmdesc_size(json_object *o, int depth, uint64_t *size)
{
    json_object *fields = vmdesc_member(o, "fields", json_type_array);
    json_object *subs = vmdesc_member(o, "subsections", json_type_array);

    if (depth > 16) {
        return false;
    }
    for (size_t i = 0; i < vmdesc_length(fields); i++) {
        json_object *fo = vmdesc_object_at(fields, i);
        int64_t sz, n = 1;

        if (!fo || !vmdesc_int(fo, "size", &sz) ||
            (json_object_object_get_ex(fo, "array_len", NULL) &&
             !vmdesc_int(fo, "array_len", &n))) {
            return false;
        }
        *size += (uint64_t)sz * n;
    }
    for (size_t i = 0; i < vmdesc_length(subs); i++) {
        json_object *so = vmdesc_object_at(subs, i);
        const char *name = so ? vmdesc_str(so, "vmsd_name", NULL) : NULL;

        if (!name || strlen(name) > 255 || !vmdesc_size(so, depth + 1, size)) {
            return false;
        }
        *size += 1 + 1 + strlen(name) + 4;
    }
    return true;
}

static json_object *vmdesc_device(StreamDump *d, const DumpSection *s)
{
    for (size_t i = 0; i < vmdesc_length(d->vmdesc_devices); i++) {
        json_object *o = vmdesc_object_at(d->vmdesc_devices, i);
        int64_t inst;

        if (o && !g_strcmp0(vmdesc_str(o, "name", NULL), s->idstr) &&
            vmdesc_int(o, "instance_id", &inst) && inst == s->instance_id) {
            return o;
        }
    }
    return NULL;
}

/* ---- header and configuration ---- */

static bool dump_config_subsection(StreamDump *d, QEMUFile *f,
                                   const char *name, GError **errp)
{
    char cap[256];

    if (!strcmp(name, "configuration/target-page-bits")) {
        g_string_append_printf(d->out, "configuration: target page bits %u\n",
                               qemu_get_be32(f));
    } else if (!strcmp(name, "configuration/capabilities")) {
        uint32_t n = qemu_get_be32(f);

        for (uint32_t i = 0; i < n && !qemu_file_get_error(f); i++) {
            qemu_get_counted_string(f, cap);
            d->ignore_shared |= !strcmp(cap, "x-ignore-shared");
            g_string_append_printf(d->out, "configuration: capability %s\n",
                                   cap);
        }
    } else if (!strcmp(name, "configuration/uuid")) {
        qemu_file_skip(f, 16);
        g_string_append(d->out, "configuration: uuid\n");
    } else {
        return dump_fail(errp, f, "unknown configuration subsection '%s'",
                         name);
    }
    return true;
}

static bool dump_config(StreamDump *d, QEMUFile *f, GError **errp)
{
    char name[256];
    uint32_t len;

    if (qemu_get_byte(f) != QEMU_VM_CONFIGURATION) {
        return dump_fail(errp, f, "configuration section missing");
    }
    len = qemu_get_be32(f);
    if (len > 255) {
        return dump_fail(errp, f, "machine name of %u bytes", len);
    }
    qemu_get_buffer(f, name, len);
    name[len] = '\0';
    g_string_append_printf(d->out, "configuration: machine '%s'\n", name);
    while (qemu_peek_byte(f, 0) == QEMU_VM_SUBSECTION) {
        qemu_file_skip(f, 1);
        qemu_get_counted_string(f, name);
        if (qemu_get_be32(f) != 1 && !qemu_file_get_error(f)) {
            return dump_fail(errp, f, "configuration subsection '%s' has an "
                             "unknown version", name);
        }
        if (!dump_config_subsection(d, f, name, errp)) {
            return false;
        }
    }
    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "truncated configuration section");
    }
    return true;
}

static bool dump_header(StreamDump *d, QEMUFile *f, GError **errp)
{
    uint32_t magic = qemu_get_be32(f);
    uint32_t version = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "truncated header");
    }
    if (magic != QEMU_VM_FILE_MAGIC) {
        return dump_fail(errp, f, "not a migration stream (magic 0x%08x)",
                         magic);
    }
    if (version != QEMU_VM_FILE_VERSION) {
        return dump_fail(errp, f, "unsupported stream version %u", version);
    }
    g_string_append(d->out, "header: QEVM version 3\n");
    return dump_config(d, f, errp);
}

/* ---- sections ---- */

static bool check_footer(QEMUFile *f, uint32_t id, GError **errp)
{
    uint8_t mark = qemu_get_byte(f);
    uint32_t got = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "truncated section footer");
    }
    if (mark != QEMU_VM_SECTION_FOOTER) {
        return dump_fail(errp, f, "section %u has no footer (found 0x%02x)",
                         id, mark);
    }
    if (got != id) {
        return dump_fail(errp, f, "footer of section %u names section %u",
                         id, got);
    }
    return true;
}

/* Find the footer of 'id' followed by something that can follow a section. */
static bool skip_to_footer(StreamDump *d, QEMUFile *f, uint32_t id,
                           GError **errp)
{
    size_t pos = qemu_file_tell(f);

    for (; pos + 5 <= d->size; pos++) {
        const uint8_t *p = d->data + pos;

        if (p[0] == QEMU_VM_SECTION_FOOTER && be32_at(p + 1) == id &&
            (pos + 5 == d->size || p[5] <= QEMU_VM_SECTION_FULL ||
             p[5] == QEMU_VM_COMMAND)) {
            qemu_file_skip(f, pos - qemu_file_tell(f));
            return true;
        }
    }
    return dump_fail(errp, f, "cannot find the end of section %u", id);
}

static bool dump_section_body(StreamDump *d, QEMUFile *f, const DumpSection *s,
                              uint8_t type, uint32_t id, GError **errp)
{
    json_object *desc;
    uint64_t size = 0;

    if (!strcmp(s->idstr, "ram")) {
        if (s->version_id != 4) {
            return dump_fail(errp, f, "ram section version %u (expected 4)",
                             s->version_id);
        }
        return dump_ram_section(d, f, type == QEMU_VM_SECTION_START, errp);
    }
    if (!strcmp(s->idstr, "dirty-bitmap")) {
        if (s->version_id != 1) {
            return dump_fail(errp, f, "dirty-bitmap section version %u "
                             "(expected 1)", s->version_id);
        }
        return dump_bitmap_section(d, f, errp);
    }
    desc = type == QEMU_VM_SECTION_FULL ? vmdesc_device(d, s) : NULL;
    if (desc && vmdesc_size(desc, 0, &size)) {
        if (size > d->size - qemu_file_tell(f)) {
            return dump_fail(errp, f, "section '%s' runs past the end",
                             s->idstr);
        }
        qemu_file_skip(f, size);
        return true;
    }
    g_string_append_printf(d->out, "  (no description for '%s': its end is "
                           "found by its footer)\n", s->idstr);
    return skip_to_footer(d, f, id, errp);
}

static bool dump_section(StreamDump *d, QEMUFile *f, uint8_t type,
                         uint64_t offset, GError **errp)
{
    static const char *const names[] = { "", "START", "PART", "END", "FULL" };
    uint32_t id = qemu_get_be32(f);
    DumpSection *s = g_hash_table_lookup(d->sections, GUINT_TO_POINTER(id));
    bool quiet;

    if (type == QEMU_VM_SECTION_START || type == QEMU_VM_SECTION_FULL) {
        DumpSection fresh = { 0 };

        qemu_get_counted_string(f, fresh.idstr);
        fresh.instance_id = qemu_get_be32(f);
        fresh.version_id = qemu_get_be32(f);
        if (qemu_file_get_error(f)) {
            return dump_fail(errp, f, "truncated section header");
        }
        s = g_memdup2(&fresh, sizeof(fresh));
        g_hash_table_replace(d->sections, GUINT_TO_POINTER(id), s);
    } else if (!s) {
        return dump_fail(errp, f, "%s of section %u that was never started",
                         names[type], id);
    }
    /* A paused QEMU iterates with near-empty PARTs: count, don't print. */
    quiet = type == QEMU_VM_SECTION_PART && !d->opts->verbose;
    if (!quiet) {
        g_string_append_printf(d->out, "@%" PRIu64 " %s section %u '%s' "
                               "instance %u version %u\n", offset,
                               names[type], id, s->idstr, s->instance_id,
                               s->version_id);
    }
    if (!dump_section_body(d, f, s, type, id, errp) ||
        !check_footer(f, id, errp)) {
        return false;
    }
    if (type == QEMU_VM_SECTION_PART) {
        s->parts++;
        s->part_bytes += qemu_file_tell(f) - offset;
    }
    if (!quiet) {
        g_string_append_printf(d->out, "  size %" PRIu64 "\n",
                               qemu_file_tell(f) - offset);
    }
    return true;
}

static gint compare_ids(gconstpointer a, gconstpointer b)
{
    return (gint)(GPOINTER_TO_UINT(a) > GPOINTER_TO_UINT(b)) -
           (gint)(GPOINTER_TO_UINT(a) < GPOINTER_TO_UINT(b));
}

/* ---- commands ---- */

static bool dump_main(StreamDump *d, QEMUFile *f, GError **errp);

static bool dump_packaged(StreamDump *d, QEMUFile *f, GError **errp)
{
    uint32_t len = qemu_get_be32(f);
    size_t start = qemu_file_tell(f);
    size_t outer_size = d->size;
    g_autoptr(GBytes) sub = NULL;
    QEMUFile *pf;
    bool ok;

    if (qemu_file_get_error(f) || len > d->size - start) {
        return dump_fail(errp, f, "PACKAGED data runs past the end");
    }
    if (d->depth) {
        return dump_fail(errp, f, "PACKAGED inside PACKAGED");
    }
    g_string_append_printf(d->out, "  packaged stream of %u bytes {\n", len);
    sub = g_bytes_new_static(d->data + start, len);
    pf = qemu_file_new_mem_input(sub);
    /* Offsets inside are relative to the package: scan its bytes. */
    d->data += start;
    d->size = len;
    d->depth++;
    ok = dump_main(d, pf, errp);
    d->depth--;
    d->data -= start;
    d->size = outer_size;
    if (ok && !qemu_file_at_eof(pf)) {
        ok = dump_fail(errp, pf, "bytes after the end of the PACKAGED "
                       "stream");
    }
    if (!ok) {
        g_prefix_error(errp, "in PACKAGED stream at %zu: ", start);
    }
    qemu_fclose(pf, NULL);
    qemu_file_skip(f, len);
    g_string_append(d->out, "  }\n");
    return ok;
}

/* Ranges shown without -v before "... N more". */
#define DISCARD_SHOWN 8

static bool dump_discard(StreamDump *d, QEMUFile *f, uint16_t len,
                         GError **errp)
{
    char block[256];
    uint8_t version = qemu_get_byte(f);
    size_t n = qemu_get_counted_string(f, block);
    uint8_t nil = qemu_get_byte(f);
    size_t ranges;

    if (qemu_file_get_error(f) || version != 0 || nil != 0 ||
        len < 3 + n + 16 || (len - 3 - n) % 16) {
        return dump_fail(errp, f, "malformed POSTCOPY_RAM_DISCARD");
    }
    ranges = (len - 3 - n) / 16;
    g_string_append_printf(d->out, "  block '%s', %zu range(s)\n", block,
                           ranges);
    for (size_t i = 0; i < ranges; i++) {
        uint64_t start = qemu_get_be64(f);
        uint64_t length = qemu_get_be64(f);

        if (i < DISCARD_SHOWN || d->opts->verbose) {
            g_string_append_printf(d->out, "  discard 0x%" PRIx64 "+0x%"
                                   PRIx64 "\n", start, length);
        } else if (i == DISCARD_SHOWN) {
            g_string_append_printf(d->out, "  ... %zu more\n",
                                   ranges - DISCARD_SHOWN);
        }
    }
    return true;
}

static bool dump_advise(StreamDump *d, QEMUFile *f, uint16_t len,
                        GError **errp)
{
    uint64_t host_pages, target_page;

    if (len != 0 && len != 16) {
        return dump_fail(errp, f, "POSTCOPY_ADVISE of length %u", len);
    }
    if (!len) {
        g_string_append(d->out, "  no RAM postcopy (dirty bitmaps only)\n");
        return true;
    }
    host_pages = qemu_get_be64(f);
    target_page = qemu_get_be64(f);
    g_string_append_printf(d->out, "  RAM postcopy: host page sizes 0x%"
                           PRIx64 ", target page size %" PRIu64 "\n",
                           host_pages, target_page);
    return true;
}

static bool dump_command_args(StreamDump *d, QEMUFile *f, uint16_t cmd,
                              uint16_t len, GError **errp)
{
    char block[256];

    switch (cmd) {
    case MIG_CMD_PING:
        g_string_append_printf(d->out, "  value 0x%x\n", qemu_get_be32(f));
        return true;
    case MIG_CMD_PACKAGED:
        return dump_packaged(d, f, errp);
    case MIG_CMD_POSTCOPY_ADVISE:
        return dump_advise(d, f, len, errp);
    case MIG_CMD_POSTCOPY_RAM_DISCARD:
        return dump_discard(d, f, len, errp);
    case MIG_CMD_POSTCOPY_LISTEN:
        g_string_append(d->out, "  the destination listens: what follows "
                        "the package is read while the guest runs\n");
        return true;
    case MIG_CMD_POSTCOPY_RUN:
        g_string_append(d->out, "  the destination's guest starts\n");
        return true;
    case MIG_CMD_RECV_BITMAP:
        if (qemu_get_counted_string(f, block) + 1 != len) {
            return dump_fail(errp, f, "malformed RECV_BITMAP");
        }
        g_string_append_printf(d->out, "  block '%s'\n", block);
        return true;
    }
    return true;
}

/* Whether the command at 'offset' of the current buffer is POSTCOPY_RUN. */
static bool is_run(const StreamDump *d, uint64_t offset)
{
    return offset + 3 <= d->size && d->data[offset + 1] == 0 &&
           d->data[offset + 2] == MIG_CMD_POSTCOPY_RUN;
}

static bool dump_command(StreamDump *d, QEMUFile *f, uint64_t offset,
                         GError **errp)
{
    uint16_t cmd = qemu_get_be16(f);
    uint16_t len = qemu_get_be16(f);
    int fixed = mig_cmd_fixed_len(cmd);

    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "truncated command");
    }
    if (!mig_cmd_name(cmd)) {
        return dump_fail(errp, f, "unknown command 0x%x", cmd);
    }
    if (fixed >= 0 && fixed != len) {
        return dump_fail(errp, f, "%s with length %u", mig_cmd_name(cmd), len);
    }
    g_string_append_printf(d->out, "@%" PRIu64 " command %s length %u\n",
                           offset, mig_cmd_name(cmd), len);
    if (!dump_command_args(d, f, cmd, len, errp)) {
        return false;
    }
    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "truncated %s", mig_cmd_name(cmd));
    }
    return true;
}

/* Sections and commands up to and including EOF; a package ends at its
 * POSTCOPY_RUN (QEMU puts no EOF in it). */
static bool dump_main(StreamDump *d, QEMUFile *f, GError **errp)
{
    for (;;) {
        uint64_t offset = qemu_file_tell(f);
        uint8_t type = qemu_get_byte(f);
        bool ok;

        if (qemu_file_get_error(f)) {
            return dump_fail(errp, f, "stream ends without EOF");
        }
        if (d->depth && type == QEMU_VM_COMMAND && is_run(d, offset)) {
            return dump_command(d, f, offset, errp);
        }
        if (type == QEMU_VM_EOF) {
            g_string_append_printf(d->out, "@%" PRIu64 " EOF\n", offset);
            return true;
        }
        if (type >= QEMU_VM_SECTION_START && type <= QEMU_VM_SECTION_FULL) {
            ok = dump_section(d, f, type, offset, errp);
        } else if (type == QEMU_VM_COMMAND) {
            ok = dump_command(d, f, offset, errp);
        } else {
            ok = dump_fail(errp, f, "unknown section type 0x%02x", type);
        }
        if (!ok) {
            return false;
        }
    }
}

/* An integer member for the summary, -1 when absent or not one. */
static int64_t vmdesc_int_or(json_object *o, const char *name)
{
    json_object *v = vmdesc_member(o, name, json_type_int);
    int64_t i;

    return v && tern_json_int64(v, &i) ? i : -1;
}

static void dump_vmdesc_summary(StreamDump *d, json_object *root)
{
    g_string_append_printf(d->out, "vmdesc: page_size %" PRId64 ", %zu "
                           "device(s)\n", MAX(vmdesc_int_or(root, "page_size"), 0),
                           vmdesc_length(d->vmdesc_devices));
    for (size_t i = 0; i < vmdesc_length(d->vmdesc_devices); i++) {
        json_object *o = vmdesc_object_at(d->vmdesc_devices, i);
        uint64_t size = 0;

        if (!o) {
            continue;
        }
        vmdesc_size(o, 0, &size);
        g_string_append_printf(d->out, "  device '%s' instance %" PRId64
                               " vmsd '%s' version %" PRId64 " size %"
                               PRIu64 "\n", vmdesc_str(o, "name", "?"),
                               vmdesc_int_or(o, "instance_id"),
                               vmdesc_str(o, "vmsd_name", "?"),
                               vmdesc_int_or(o, "version"), size);
    }
}

/* After EOF: nothing, or exactly the VM description. */
static bool dump_tail(StreamDump *d, QEMUFile *f, json_object *vmdesc,
                      GError **errp)
{
    uint64_t offset = qemu_file_tell(f);

    if (qemu_file_at_eof(f)) {
        g_string_append(d->out, "vmdesc: none\n");
        return true;
    }
    if (!vmdesc || offset != d->vmdesc_offset) {
        return dump_fail(errp, f, "unexpected data after EOF");
    }
    g_string_append_printf(d->out, "@%" PRIu64 " VMDESCRIPTION length %"
                           PRIu64 "\n", offset, d->size - offset - 5);
    dump_vmdesc_summary(d, vmdesc);
    return true;
}

static void dump_part_summary(StreamDump *d)
{
    g_autoptr(GList) ids = g_hash_table_get_keys(d->sections);

    ids = g_list_sort(ids, compare_ids);
    for (GList *l = ids; l; l = l->next) {
        DumpSection *s = g_hash_table_lookup(d->sections, l->data);

        if (s->parts) {
            g_string_append_printf(d->out, "section %u '%s': %" PRIu64
                                   " PART section(s), %" PRIu64 " bytes\n",
                                   GPOINTER_TO_UINT(l->data), s->idstr,
                                   s->parts, s->part_bytes);
        }
    }
}

static void dump_init(StreamDump *d, GBytes *stream,
                      const StreamDumpOptions *opts, GString *out)
{
    static const StreamDumpOptions defaults;

    memset(d, 0, sizeof(*d));
    d->opts = opts ? opts : &defaults;
    d->out = out;
    d->data = g_bytes_get_data(stream, &d->size);
    d->sections = g_hash_table_new_full(NULL, NULL, NULL, g_free);
}

bool stream_dump(GBytes *stream, const StreamDumpOptions *opts, GString *out,
                 GError **errp)
{
    StreamDump d;
    g_autoptr(json_object) vmdesc = NULL;
    QEMUFile *f = qemu_file_new_mem_input(stream);
    bool ok;

    dump_init(&d, stream, opts, out);
    vmdesc = find_vmdesc(d.data, d.size, &d.vmdesc_offset);
    if (json_object_is_type(vmdesc, json_type_object)) {
        d.vmdesc_devices = vmdesc_member(vmdesc, "devices", json_type_array);
    } else {
        g_clear_pointer(&vmdesc, json_object_put);
    }
    ok = dump_header(&d, f, errp) && dump_main(&d, f, errp) &&
         dump_tail(&d, f, vmdesc, errp);
    if (ok) {
        dump_part_summary(&d);
        dump_ram_summary(&d);
        dump_bitmap_summary(&d);
    }
    qemu_fclose(f, NULL);
    dump_ram_free(&d.ram);
    dump_bitmaps_free(&d.bitmaps);
    g_hash_table_destroy(d.sections);
    return ok;
}
