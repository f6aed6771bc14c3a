/*
 * The VMState engine: a device describes its migratable state as a table
 * (VMStateDescription) kept next to the device, and this engine saves and
 * loads it in QEMU's wire format. A description has a name, a version and the
 * oldest version it can still load, a list of fields, optional subsections
 * (sent only when their needed() says so) and pre/post hooks.
 *
 * Wire format: fields are concatenated big-endian with no framing; arrays of
 * variable length take their count from a field that precedes them. After
 * the fields, each needed subsection is
 *   u8 0x05 (QEMU_VM_SUBSECTION) | u8 len | name[len] | be32 version | fields
 * and a subsection's name starts with its parent's name.
 *
 * Loading treats the stream as hostile: versions are checked, a count that
 * exceeds the array is an error, unknown subsections are an error, and a
 * truncated stream is an error, all with a message naming the field.
 */
#ifndef MIGRATION_VMSTATE_H
#define MIGRATION_VMSTATE_H


#include "migration/qemu-file.h"

#define QEMU_VM_SUBSECTION 0x05

typedef struct VMStateField VMStateField;
typedef struct VMStateDescription VMStateDescription;

/* How one element travels. 'size' is the element size in memory. */
typedef struct VMStateInfo {
    const char *name;       /* the vmdesc "type": "uint32", "buffer", ... */
    bool (*get)(QEMUFile *f, void *pv, size_t size, const VMStateField *field,
                GError **errp);
    void (*put)(QEMUFile *f, const void *pv, size_t size,
                const VMStateField *field);
} VMStateInfo;

extern const VMStateInfo vmstate_info_bool;
extern const VMStateInfo vmstate_info_int8;
extern const VMStateInfo vmstate_info_int16;
extern const VMStateInfo vmstate_info_int32;
extern const VMStateInfo vmstate_info_int64;
extern const VMStateInfo vmstate_info_uint8;
extern const VMStateInfo vmstate_info_uint16;
extern const VMStateInfo vmstate_info_uint32;
extern const VMStateInfo vmstate_info_uint64;
extern const VMStateInfo vmstate_info_buffer;   /* raw bytes, 'size' long */
/* Load checks the stream's value equals the current one (QEMU's _EQUAL). */
extern const VMStateInfo vmstate_info_uint8_equal;
extern const VMStateInfo vmstate_info_uint16_equal;
extern const VMStateInfo vmstate_info_uint32_equal;
extern const VMStateInfo vmstate_info_int32_equal;
/* 'size' bytes of zeros that the loader skips (QEMU's VMSTATE_UNUSED). */
extern const VMStateInfo vmstate_info_unused_buffer;

enum VMStateFlags {
    VMS_SINGLE  = 0,
    VMS_POINTER = 1 << 0,   /* the field is a pointer to the data */
    VMS_ARRAY   = 1 << 1,   /* 'num' elements */
    VMS_VARRAY  = 1 << 2,   /* count from the field at 'num_offset' */
    VMS_STRUCT  = 1 << 3,   /* elements are described by 'vmsd' */
    VMS_VBUFFER = 1 << 4,   /* one buffer, byte length at 'num_offset' */
    VMS_ALLOC   = 1 << 5,   /* with VMS_POINTER: allocate on load (g_malloc) */
    VMS_ARRAY_OF_POINTER = 1 << 6,  /* elements are pointers to the data */
};

struct VMStateField {
    const char *name;
    size_t offset;
    size_t size;            /* element size */
    const VMStateInfo *info;
    const VMStateDescription *vmsd;     /* VMS_STRUCT */
    uint32_t flags;
    /* VMS_ARRAY: the count. VMS_VARRAY/VMS_VBUFFER: the most the stream may
     * ask for (the array's capacity, or an allocation cap with VMS_ALLOC). */
    uint32_t num;
    size_t num_offset;      /* VMS_VARRAY/VMS_VBUFFER: the count field */
    uint8_t num_size;       /* its width: 1, 2, 4 or 8 bytes, unsigned */
    int version_id;         /* present in streams of this version and newer */
    bool (*field_exists)(void *opaque, int version_id);
};

/* Where a device's section goes among the others: higher first, equal ones
 * in registration order (QEMU's MigrationPriority). */
typedef enum VMStatePriority {
    VMSTATE_PRIO_DEFAULT = 0,   /* devices */
    VMSTATE_PRIO_KVM_CHIPS,     /* KVM's interrupt controllers, PIT, clock */
    VMSTATE_PRIO_CPU,           /* vCPUs, first of all */
} VMStatePriority;

struct VMStateDescription {
    const char *name;
    int version_id;
    int minimum_version_id;
    VMStatePriority priority;
    bool (*pre_save)(void *opaque, GError **errp);
    void (*post_save)(void *opaque);
    bool (*pre_load)(void *opaque, GError **errp);
    bool (*post_load)(void *opaque, int version_id, GError **errp);
    bool (*needed)(void *opaque);           /* subsections only */
    const VMStateField *fields;             /* ends with VMSTATE_END_OF_LIST */
    const VMStateDescription *const *subsections;   /* NULL-terminated */
    bool unmigratable;      /* its state cannot be saved: no migration or
                             * snapshot while it is registered */
};

/*
 * Save 'opaque' as described by 'vmsd'. With 'vmdesc' (a JSON object) it
 * also records there the description QEMU's stream tools read: vmsd_name,
 * version, fields[{name, type, size, ...}], subsections[...].
 */
struct json_object;
bool vmstate_save(QEMUFile *f, const VMStateDescription *vmsd, void *opaque,
                  struct json_object *vmdesc, GError **errp);
/* Load a state written with 'version_id' of 'vmsd' into 'opaque'. */
bool vmstate_load(QEMUFile *f, const VMStateDescription *vmsd, void *opaque,
                  int version_id, GError **errp);

/* ---- field constructors ---- */

/* offsetof with a compile-time check that the member has type 't'. */
#define vmstate_offset_value(s, m, t) \
    (offsetof(s, m) + 0 * sizeof(&((s *)0)->m == (t *)0))
#define vmstate_offset_array(s, m, t, n) \
    (offsetof(s, m) + 0 * sizeof(&((s *)0)->m == (t (*)[n])0))
#define vmstate_offset_pointer(s, m, t) \
    (offsetof(s, m) + 0 * sizeof(((s *)0)->m == (t *)0))

#define VMSTATE_SINGLE_V(f, s, v, inf, t) {                                \
    .name = #f, .version_id = (v), .size = sizeof(t), .info = &(inf),     \
    .flags = VMS_SINGLE, .offset = vmstate_offset_value(s, f, t) }

#define VMSTATE_BOOL_V(f, s, v)    VMSTATE_SINGLE_V(f, s, v, vmstate_info_bool, bool)
#define VMSTATE_INT8_V(f, s, v)    VMSTATE_SINGLE_V(f, s, v, vmstate_info_int8, int8_t)
#define VMSTATE_INT16_V(f, s, v)   VMSTATE_SINGLE_V(f, s, v, vmstate_info_int16, int16_t)
#define VMSTATE_INT32_V(f, s, v)   VMSTATE_SINGLE_V(f, s, v, vmstate_info_int32, int32_t)
#define VMSTATE_INT64_V(f, s, v)   VMSTATE_SINGLE_V(f, s, v, vmstate_info_int64, int64_t)
#define VMSTATE_UINT8_V(f, s, v)   VMSTATE_SINGLE_V(f, s, v, vmstate_info_uint8, uint8_t)
#define VMSTATE_UINT16_V(f, s, v)  VMSTATE_SINGLE_V(f, s, v, vmstate_info_uint16, uint16_t)
#define VMSTATE_UINT32_V(f, s, v)  VMSTATE_SINGLE_V(f, s, v, vmstate_info_uint32, uint32_t)
#define VMSTATE_UINT64_V(f, s, v)  VMSTATE_SINGLE_V(f, s, v, vmstate_info_uint64, uint64_t)

#define VMSTATE_BOOL(f, s)    VMSTATE_BOOL_V(f, s, 0)
#define VMSTATE_INT8(f, s)    VMSTATE_INT8_V(f, s, 0)
#define VMSTATE_INT16(f, s)   VMSTATE_INT16_V(f, s, 0)
#define VMSTATE_INT32(f, s)   VMSTATE_INT32_V(f, s, 0)
#define VMSTATE_INT64(f, s)   VMSTATE_INT64_V(f, s, 0)
#define VMSTATE_UINT8(f, s)   VMSTATE_UINT8_V(f, s, 0)
#define VMSTATE_UINT16(f, s)  VMSTATE_UINT16_V(f, s, 0)
#define VMSTATE_UINT32(f, s)  VMSTATE_UINT32_V(f, s, 0)
#define VMSTATE_UINT64(f, s)  VMSTATE_UINT64_V(f, s, 0)

/* Values that must match on both sides, e.g. a device's queue count. */
#define VMSTATE_UINT8_EQUAL(f, s)  VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint8_equal, uint8_t)
#define VMSTATE_UINT16_EQUAL(f, s) VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint16_equal, uint16_t)
#define VMSTATE_UINT32_EQUAL(f, s) VMSTATE_SINGLE_V(f, s, 0, vmstate_info_uint32_equal, uint32_t)
#define VMSTATE_INT32_EQUAL(f, s)  VMSTATE_SINGLE_V(f, s, 0, vmstate_info_int32_equal, int32_t)

/* n bytes kept on the wire for compatibility, with no storage. */
#define VMSTATE_UNUSED_V(v, n) {                                           \
    .name = "unused", .version_id = (v), .size = (n),                     \
    .info = &vmstate_info_unused_buffer, .flags = VMS_SINGLE }
#define VMSTATE_UNUSED(n) VMSTATE_UNUSED_V(0, n)

/* Fixed-length arrays of scalars: t f[n]. */
#define VMSTATE_ARRAY(f, s, n, inf, t) {                                   \
    .name = #f, .num = (n), .size = sizeof(t), .info = &(inf),            \
    .flags = VMS_ARRAY, .offset = vmstate_offset_array(s, f, t, n) }
#define VMSTATE_UINT8_ARRAY(f, s, n)  VMSTATE_ARRAY(f, s, n, vmstate_info_uint8, uint8_t)
#define VMSTATE_UINT16_ARRAY(f, s, n) VMSTATE_ARRAY(f, s, n, vmstate_info_uint16, uint16_t)
#define VMSTATE_UINT32_ARRAY(f, s, n) VMSTATE_ARRAY(f, s, n, vmstate_info_uint32, uint32_t)
#define VMSTATE_UINT64_ARRAY(f, s, n) VMSTATE_ARRAY(f, s, n, vmstate_info_uint64, uint64_t)
#define VMSTATE_INT32_ARRAY(f, s, n)  VMSTATE_ARRAY(f, s, n, vmstate_info_int32, int32_t)
#define VMSTATE_INT64_ARRAY(f, s, n)  VMSTATE_ARRAY(f, s, n, vmstate_info_int64, int64_t)
#define VMSTATE_BOOL_ARRAY(f, s, n)   VMSTATE_ARRAY(f, s, n, vmstate_info_bool, bool)

/* A byte buffer sent as one "buffer" element: uint8_t f[n]. */
#define VMSTATE_BUFFER(f, s) {                                             \
    .name = #f, .size = sizeof(((s *)0)->f), .info = &vmstate_info_buffer,\
    .flags = VMS_SINGLE, .offset = offsetof(s, f) }

/* t f[cap] of which the first s.nf (type nt) are valid. */
#define VMSTATE_VARRAY(f, s, nf, nt, cap, inf, t) {                        \
    .name = #f, .num = (cap), .size = sizeof(t), .info = &(inf),          \
    .flags = VMS_VARRAY, .offset = vmstate_offset_array(s, f, t, cap),    \
    .num_offset = vmstate_offset_value(s, nf, nt), .num_size = sizeof(nt) }
#define VMSTATE_VARRAY_UINT32(f, s, nf, cap, inf, t) \
    VMSTATE_VARRAY(f, s, nf, uint32_t, cap, inf, t)

/* t *f allocated on load to s.nf elements (at most 'max'). */
#define VMSTATE_VARRAY_ALLOC(f, s, nf, nt, max, inf, t) {                  \
    .name = #f, .num = (max), .size = sizeof(t), .info = &(inf),          \
    .flags = VMS_VARRAY | VMS_POINTER | VMS_ALLOC,                        \
    .offset = vmstate_offset_pointer(s, f, t),                            \
    .num_offset = vmstate_offset_value(s, nf, nt), .num_size = sizeof(nt) }

/* uint8_t *f holding s.nf bytes (at most 'max'), allocated on load. */
#define VMSTATE_VBUFFER_ALLOC_UINT32(f, s, nf, max) {                      \
    .name = #f, .num = (max), .size = 1, .info = &vmstate_info_buffer,    \
    .flags = VMS_VBUFFER | VMS_POINTER | VMS_ALLOC,                       \
    .offset = offsetof(s, f),                                             \
    .num_offset = vmstate_offset_value(s, nf, uint32_t), .num_size = 4 }

/* Nested structures: t f; t f[n]; t *f (pointer must be set up). */
#define VMSTATE_STRUCT(f, s, v, sd, t) {                                   \
    .name = #f, .version_id = (v), .vmsd = &(sd), .size = sizeof(t),      \
    .flags = VMS_STRUCT, .offset = vmstate_offset_value(s, f, t) }
#define VMSTATE_STRUCT_ARRAY(f, s, n, sd, t) {                             \
    .name = #f, .num = (n), .vmsd = &(sd), .size = sizeof(t),             \
    .flags = VMS_STRUCT | VMS_ARRAY,                                      \
    .offset = vmstate_offset_array(s, f, t, n) }
#define VMSTATE_STRUCT_POINTER(f, s, sd, t) {                              \
    .name = #f, .vmsd = &(sd), .size = sizeof(t),                         \
    .flags = VMS_STRUCT | VMS_POINTER,                                    \
    .offset = vmstate_offset_pointer(s, f, t) }
/* t *f[n]: an array of pointers to structures. */
#define VMSTATE_STRUCT_ARRAY_OF_POINTER(f, s, n, sd, t) {                  \
    .name = #f, .num = (n), .vmsd = &(sd), .size = sizeof(t),             \
    .flags = VMS_STRUCT | VMS_ARRAY | VMS_ARRAY_OF_POINTER,               \
    .offset = vmstate_offset_array(s, f, t *, n) }

#define VMSTATE_END_OF_LIST() { .name = NULL }

#endif
