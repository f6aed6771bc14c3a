/*
 * The VMState engine: walks a VMStateDescription's field table to save or
 * load a device's state, recursing into nested structures and subsections,
 * and (when saving) records the JSON VM description next to the bytes. The
 * field layout rules are in include/migration/vmstate.h; the scalar encoders
 * live in vmstate-types.c.
 */
#include <string.h>

#include "migration/vmstate.h"
#include "tern/json.h"

static bool field_present(const VMStateField *field, void *opaque,
                          int version_id)
{
    if (field->field_exists) {
        return field->field_exists(opaque, version_id);
    }
    return field->version_id <= version_id;
}

/* The element count (or byte length for VMS_VBUFFER) kept in another field. */
static uint64_t read_count_field(const VMStateField *field, const void *opaque)
{
    const uint8_t *p = (const uint8_t *)opaque + field->num_offset;

    switch (field->num_size) {
    case 1: return *p;
    case 2: return *(const uint16_t *)p;
    case 4: return *(const uint32_t *)p;
    case 8: return *(const uint64_t *)p;
    }
    g_assert_not_reached();
}

static uint64_t field_count(const VMStateField *field, const void *opaque)
{
    if (field->flags & VMS_ARRAY) {
        return field->num;
    }
    if (field->flags & VMS_VARRAY) {
        return read_count_field(field, opaque);
    }
    return 1;
}

static size_t field_elem_size(const VMStateField *field, const void *opaque)
{
    if (field->flags & VMS_VBUFFER) {
        return read_count_field(field, opaque);
    }
    return field->size;
}

/* Address of element 0; for VMS_ARRAY_OF_POINTER the pointer array. */
static void *field_base(const VMStateField *field, void *opaque)
{
    void *p = (uint8_t *)opaque + field->offset;

    return (field->flags & VMS_POINTER) ? *(void **)p : p;
}

static void *field_elem(const VMStateField *field, void *base, size_t i,
                        size_t size)
{
    if (field->flags & VMS_ARRAY_OF_POINTER) {
        return ((void **)base)[i];
    }
    return (uint8_t *)base + i * size;
}

/* Arrays of plain scalars are described once, with "array_len". */
static bool vmdesc_can_compress(const VMStateField *field)
{
    if (field->field_exists) {
        return false;
    }
    if (field->flags & VMS_STRUCT) {
        for (const VMStateField *f = field->vmsd->fields; f && f->name; f++) {
            if (!vmdesc_can_compress(f)) {
                return false;
            }
        }
    }
    return true;
}

/* ---- save ---- */

static bool save_subsections(QEMUFile *f, const VMStateDescription *vmsd,
                             void *opaque, json_object *vmdesc, GError **errp);

static bool save_fields(QEMUFile *f, const VMStateDescription *vmsd,
                        void *opaque, json_object *vmdesc, GError **errp);

static bool save_elem(QEMUFile *f, const VMStateField *field, void *elem,
                      size_t size, json_object *vmdesc, GError **errp)
{
    if (!(field->flags & VMS_STRUCT)) {
        field->info->put(f, elem, size, field);
        return true;
    }
    if (vmdesc) {
        json_object *inner = json_object_new_object();

        json_object_object_add(vmdesc, "struct", inner);
        vmdesc = inner;
    }
    return vmstate_save(f, field->vmsd, elem, vmdesc, errp);
}

/* A field's entry in the description's "fields" array; "size" comes last. */
static json_object *vmdesc_field_begin(json_object *fields,
                                       const VMStateField *field, size_t i,
                                       size_t n, bool compress)
{
    json_object *desc = json_object_new_object();

    json_object_array_add(fields, desc);
    tern_json_add_str(desc, "name", field->name);
    if (n > 1) {
        tern_json_add_uint(desc, compress ? "array_len" : "index", compress ? n : i);
    }
    tern_json_add_str(desc, "type",
                      (field->flags & VMS_STRUCT) ? "struct" : field->info->name);
    return desc;
}

static bool save_field(QEMUFile *f, const VMStateField *field, void *opaque,
                       json_object *fields, GError **errp)
{
    uint64_t n = field_count(field, opaque);
    size_t size = field_elem_size(field, opaque);
    void *base = field_base(field, opaque);
    bool compress = vmdesc_can_compress(field);

    if (!size) {
        return true;        /* an empty variable buffer: nothing on the wire */
    }
    if (n && !base) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "vmstate field '%s' has no data to save", field->name);
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        void *elem = field_elem(field, base, i, size);
        uint64_t start = qemu_file_tell(f);
        json_object *desc = NULL;

        if (!elem) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "vmstate field '%s'[%" PRIu64 "] is a null pointer",
                        field->name, i);
            return false;
        }
        if (fields && (i == 0 || !compress)) {
            desc = vmdesc_field_begin(fields, field, i, n, compress);
        }
        if (!save_elem(f, field, elem, size, desc, errp)) {
            return false;
        }
        if (desc) {
            tern_json_add_uint(desc, "size", qemu_file_tell(f) - start);
        }
    }
    return true;
}

static bool save_fields(QEMUFile *f, const VMStateDescription *vmsd,
                        void *opaque, json_object *vmdesc, GError **errp)
{
    json_object *fields = NULL;

    if (vmdesc) {
        fields = json_object_new_array();
        json_object_object_add(vmdesc, "fields", fields);
    }
    for (const VMStateField *field = vmsd->fields; field && field->name;
         field++) {
        if (field_present(field, opaque, vmsd->version_id) &&
            !save_field(f, field, opaque, fields, errp)) {
            return false;
        }
    }
    return true;
}

bool vmstate_save(QEMUFile *f, const VMStateDescription *vmsd, void *opaque,
                  json_object *vmdesc, GError **errp)
{
    bool ok;

    if (vmsd->pre_save && !vmsd->pre_save(opaque, errp)) {
        g_prefix_error(errp, "pre_save of '%s': ", vmsd->name);
        return false;
    }
    if (vmdesc) {
        tern_json_add_str(vmdesc, "vmsd_name", vmsd->name);
        tern_json_add_int(vmdesc, "version", vmsd->version_id);
    }
    ok = save_fields(f, vmsd, opaque, vmdesc, errp) &&
         save_subsections(f, vmsd, opaque, vmdesc, errp);
    if (vmsd->post_save) {
        vmsd->post_save(opaque);
    }
    return ok && qemu_file_check(f, errp);
}

static bool save_subsections(QEMUFile *f, const VMStateDescription *vmsd,
                             void *opaque, json_object *vmdesc, GError **errp)
{
    json_object *subs = NULL;

    for (const VMStateDescription *const *sub = vmsd->subsections;
         sub && *sub; sub++) {
        const VMStateDescription *s = *sub;
        json_object *desc = NULL;

        if (s->needed && !s->needed(opaque)) {
            continue;
        }
        if (vmdesc && !subs) {
            subs = json_object_new_array();
            json_object_object_add(vmdesc, "subsections", subs);
        }
        if (subs) {
            desc = json_object_new_object();
            json_object_array_add(subs, desc);
        }
        qemu_put_byte(f, QEMU_VM_SUBSECTION);
        qemu_put_counted_string(f, s->name);
        qemu_put_be32(f, s->version_id);
        if (!vmstate_save(f, s, opaque, desc, errp)) {
            return false;
        }
    }
    return true;
}

/* ---- load ---- */

/* Check a stream-controlled count and (for VMS_ALLOC) allocate for it. */
static bool prepare_load_target(const VMStateField *field, void *opaque,
                                uint64_t n, size_t size, GError **errp)
{
    uint64_t asked = (field->flags & VMS_VBUFFER) ? size : n;
    void **slot;

    if ((field->flags & (VMS_VARRAY | VMS_VBUFFER)) && asked > field->num) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "vmstate field '%s': stream asks for %" PRIu64
                    " %s, at most %" PRIu32 " allowed", field->name, asked,
                    (field->flags & VMS_VBUFFER) ? "bytes" : "elements",
                    field->num);
        return false;
    }
    if (!(field->flags & VMS_ALLOC)) {
        return true;
    }
    slot = (void **)((uint8_t *)opaque + field->offset);
    g_free(*slot);
    *slot = (n && size) ? g_malloc0(n * size) : NULL;
    return true;
}

static bool load_elem(QEMUFile *f, const VMStateField *field, void *elem,
                      size_t size, GError **errp)
{
    if (field->flags & VMS_STRUCT) {
        return vmstate_load(f, field->vmsd, elem, field->vmsd->version_id,
                            errp);
    }
    if (!field->info->get(f, elem, size, field, errp)) {
        return false;
    }
    return qemu_file_check(f, errp);
}

static bool load_field(QEMUFile *f, const VMStateField *field, void *opaque,
                       GError **errp)
{
    uint64_t n = field_count(field, opaque);
    size_t size = field_elem_size(field, opaque);
    void *base;

    if (!prepare_load_target(field, opaque, n, size, errp)) {
        return false;
    }
    base = field_base(field, opaque);
    for (uint64_t i = 0; i < n && size; i++) {
        void *elem = base ? field_elem(field, base, i, size) : NULL;

        if (!elem) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "vmstate field '%s' has no storage to load into",
                        field->name);
            return false;
        }
        if (!load_elem(f, field, elem, size, errp)) {
            g_prefix_error(errp, "field '%s': ", field->name);
            return false;
        }
    }
    return true;
}

static const VMStateDescription *find_subsection(
    const VMStateDescription *vmsd, const char *name)
{
    for (const VMStateDescription *const *sub = vmsd->subsections;
         sub && *sub; sub++) {
        if (!strcmp((*sub)->name, name)) {
            return *sub;
        }
    }
    return NULL;
}

/* Peek the next subsection header; NULL name when the next bytes are not a
 * subsection of 'vmsd' (they belong to whoever reads after us). */
static bool peek_subsection_name(QEMUFile *f, const VMStateDescription *vmsd,
                                 char name[256], GError **errp)
{
    const uint8_t *p;
    int len;

    name[0] = '\0';
    if (qemu_peek_byte(f, 0) != QEMU_VM_SUBSECTION) {
        return true;
    }
    len = qemu_peek_byte(f, 1);
    if (len < 0 || qemu_peek_buffer(f, &p, len, 2) < (size_t)len) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "truncated subsection header in '%s'", vmsd->name);
        return false;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    if (strncmp(name, vmsd->name, strlen(vmsd->name))) {
        name[0] = '\0';
    }
    return true;
}

static bool load_subsections(QEMUFile *f, const VMStateDescription *vmsd,
                             void *opaque, GError **errp)
{
    char name[256];

    for (;;) {
        const VMStateDescription *sub;
        uint32_t version;

        if (!peek_subsection_name(f, vmsd, name, errp)) {
            return false;
        }
        if (!name[0]) {
            return true;
        }
        sub = find_subsection(vmsd, name);

        if (!sub) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "unknown subsection '%s' in '%s'", name, vmsd->name);
            return false;
        }
        qemu_file_skip(f, 2 + strlen(name));
        version = qemu_get_be32(f);
        if (!qemu_file_check(f, errp)) {
            return false;
        }
        /* Unsigned on the wire: compare before it becomes an int. */
        if (version > (uint32_t)sub->version_id) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "'%s': stream version %" PRIu32 " is newer than "
                        "supported %d", sub->name, version, sub->version_id);
            return false;
        }
        if (!vmstate_load(f, sub, opaque, (int)version, errp)) {
            return false;
        }
    }
}

bool vmstate_load(QEMUFile *f, const VMStateDescription *vmsd, void *opaque,
                  int version_id, GError **errp)
{
    if (version_id > vmsd->version_id) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s': stream version %d is newer than supported %d",
                    vmsd->name, version_id, vmsd->version_id);
        return false;
    }
    if (version_id < vmsd->minimum_version_id) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "'%s': stream version %d is older than the oldest "
                    "supported %d", vmsd->name, version_id,
                    vmsd->minimum_version_id);
        return false;
    }
    if (vmsd->pre_load && !vmsd->pre_load(opaque, errp)) {
        g_prefix_error(errp, "pre_load of '%s': ", vmsd->name);
        return false;
    }
    for (const VMStateField *field = vmsd->fields; field && field->name;
         field++) {
        if (field_present(field, opaque, version_id) &&
            !load_field(f, field, opaque, errp)) {
            g_prefix_error(errp, "'%s': ", vmsd->name);
            return false;
        }
    }
    if (!load_subsections(f, vmsd, opaque, errp)) {
        return false;
    }
    if (vmsd->post_load && !vmsd->post_load(opaque, version_id, errp)) {
        g_prefix_error(errp, "post_load of '%s': ", vmsd->name);
        return false;
    }
    return qemu_file_check(f, errp);
}
