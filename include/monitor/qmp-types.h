/*
 * QMP types described as data: every command's arguments, every return and
 * event shape is a QmpType, a table of members with their types (builtin
 * scalars, enums, objects, arrays, alternates, unions). One table per shape
 * drives three things: the dispatcher decodes a request's arguments into the
 * command's C struct with QEMU 7.2's checks and wording (qmp_decode), the
 * struct is freed by walking the same table (qmp_free), and query-qmp-schema
 * is written from it (qmp-schema.c). Rules that belong to a subsystem (a
 * migration parameter's range, a bitmap's granularity) stay in that
 * subsystem; the tables carry types, presence and defaults.
 *
 * C layout of a decoded value, by kind:
 *   str      char * (owned)              bool     bool
 *   int      int64_t                     uint8    uint8_t
 *   uint32   uint32_t                    uint64   uint64_t (QMP 'size' too)
 *   number   double                      any      json_object * (owned)
 *   enum     int (index into values)     array    QmpList
 *   object   the struct itself, members at their offsets; an optional member
 *            has a 'bool has_<member>' the macros below find by name
 *   alternate  a struct whose first member is 'int kind' (which alternative
 *            was given), then one member per alternative
 *   union    an object whose tag member (an enum) picks a variant object;
 *            the variant's struct is allocated and stored as a 'void *' at
 *            variant_offset
 */
#ifndef MONITOR_QMP_TYPES_H
#define MONITOR_QMP_TYPES_H

#include <stddef.h>

#include "tern/json.h"
#include "tern/keyval.h"

typedef enum {
    QMP_KIND_STR,
    QMP_KIND_BOOL,
    QMP_KIND_INT,
    QMP_KIND_UINT8,
    QMP_KIND_UINT32,
    QMP_KIND_UINT64,
    QMP_KIND_NUMBER,
    QMP_KIND_ANY,
    QMP_KIND_NULL,
    QMP_KIND_ENUM,
    QMP_KIND_OBJECT,
    QMP_KIND_ARRAY,
    QMP_KIND_ALTERNATE,
} QmpKind;

typedef struct QmpType QmpType;

/* An absent optional member's value. */
typedef union QmpDefault {
    int64_t i;          /* int, enum (index) */
    uint64_t u;         /* uint8, uint32, uint64 */
    bool b;
    double d;
    const char *s;      /* copied; NULL leaves the member NULL */
} QmpDefault;

typedef struct QmpMember {
    const char *name;           /* alternates: NULL */
    const QmpType *type;        /* NULL ends a member table */
    size_t offset;              /* of the value in the C struct */
    bool optional;
    size_t has_offset;          /* optional: of its has_<name> flag */
    QmpDefault def;             /* optional: the value when absent */
} QmpMember;

typedef struct QmpVariant {
    const char *tag_value;      /* NULL ends a variant table */
    const QmpType *type;        /* an object type */
} QmpVariant;

struct QmpType {
    const char *name;           /* QAPI's name: messages, and the schema (masked) */
    QmpKind kind;
    size_t size;                /* of the C value; 0 for shapes only ever written */
    const QmpMember *members;   /* objects, alternates */
    const char *const *values;  /* enums, NULL-terminated */
    const QmpType *element;     /* arrays */
    /* Unions: the enum member named 'tag' picks one of 'variants'. */
    const char *tag;
    const QmpVariant *variants;
    size_t variant_offset;
};

/* A decoded array: 'len' values of the element's C type. */
typedef struct QmpList {
    size_t len;
    void *items;
} QmpList;

#define QMP_LIST_AT(list, type, i) (((type *)(list)->items)[i])

/* The builtin types, with QEMU's introspection names. */
extern const QmpType qmp_type_str, qmp_type_bool, qmp_type_int, qmp_type_uint8,
    qmp_type_uint32, qmp_type_uint64, qmp_type_size, qmp_type_number,
    qmp_type_any, qmp_type_null;
/* The object with no members: arguments of commands that take none, the
 * return of commands that return {}, the data of events that carry none. */
extern const QmpType qmp_type_empty;

/* Member table entries for a struct S with a field f. */
#define QMP_MEMBER(S, f, jname, t) \
    { .name = (jname), .type = &(t), .offset = offsetof(S, f) }
#define QMP_OPTIONAL(S, f, jname, t, ...) \
    { .name = (jname), .type = &(t), .offset = offsetof(S, f), .optional = true, \
      .has_offset = offsetof(S, has_##f), .def = { __VA_ARGS__ } }
/* For shapes that are only written (returns, events): no C layout. */
#define QMP_OUT(jname, t)       { .name = (jname), .type = &(t) }
#define QMP_OUT_OPT(jname, t)   { .name = (jname), .type = &(t), .optional = true }
#define QMP_ALTERNATIVE(S, f, t) { .type = &(t), .offset = offsetof(S, f) }
#define QMP_END                 { .type = NULL }

/* An object type decoded into struct S, and one that is only written
 * (a return or event shape, with QMP_OUT members). */
#define QMP_OBJECT_TYPE(cname, qname, S, ...) \
    static const QmpMember cname##_members[] = { __VA_ARGS__, QMP_END }; \
    static const QmpType cname = { .name = (qname), .kind = QMP_KIND_OBJECT, \
                                   .size = sizeof(S), .members = cname##_members }
#define QMP_SHAPE(cname, qname, ...) \
    static const QmpMember cname##_members[] = { __VA_ARGS__, QMP_END }; \
    static const QmpType cname = { .name = (qname), .kind = QMP_KIND_OBJECT, \
                                   .members = cname##_members }
/* An alternate: the C struct S holds one member per alternative
 * (QMP_ALTERNATIVE), the first whose JSON type matches is decoded. */
#define QMP_ALTERNATE_TYPE(cname, qname, S, ...) \
    static const QmpMember cname##_members[] = { __VA_ARGS__, QMP_END }; \
    static const QmpType cname = { .name = (qname), \
                                   .kind = QMP_KIND_ALTERNATE, \
                                   .size = sizeof(S), .members = cname##_members }
/* An array of t, and an enum over a NULL-terminated table of names. */
#define QMP_ARRAY_TYPE(cname, t) \
    static const QmpType cname = { .name = "[" #t "]", .kind = QMP_KIND_ARRAY, \
                                   .size = sizeof(QmpList), .element = &(t) }
#define QMP_ENUM_TYPE(cname, qname, table) \
    static const QmpType cname = { .name = (qname), .kind = QMP_KIND_ENUM, \
                                   .size = sizeof(int), .values = (table) }

/*
 * Decodes 'in' as a value of 't' into 'out' (a zeroed C value of t->size
 * bytes), checking in QEMU's order and with its messages: members in table
 * order (missing, wrong type, out of the type's range), then members the
 * table lacks. 'path' names 'in' in messages ("" at the top of a command's
 * arguments). With out NULL it only checks. On failure *errp is set and
 * whatever was decoded is freed.
 */
bool qmp_decode(const QmpType *t, json_object *in, void *out, const char *path,
                GError **errp);
/* True if 'in' is a value of 't' (what a reply or event is checked with). */
bool qmp_type_check(const QmpType *t, json_object *in, GError **errp);
/* Frees what a decoded value owns (not the value's own memory). */
void qmp_free(const QmpType *t, void *value);

/* A new zeroed value of t, and its release (value and what it owns). */
void *qmp_value_new(const QmpType *t);
void qmp_value_free(const QmpType *t, void *value);

/*
 * The JSON a key=value option string stands for, typed by t as QEMU's keyval
 * visitor reads it: "a.b=x" is member b of object a, "a.0=x" element 0 of
 * array a, and each text value becomes t's type for that member (bool,
 * number; never null: "null" is text). Members t lacks stay text, so
 * qmp_decode() then reports them as a request's would be. Marks every key
 * of kv used.
 */
json_object *qmp_keyval_to_json(const QmpType *t, KeyVal *kv, GError **errp);

/* An enum's index of 'name', or -1. */
int qmp_enum_lookup(const QmpType *t, const char *name);

#endif
