/*
 * The types tern answers QEMU's QOM questions about (qom-list-types,
 * device-list-properties, qom-list-properties): each machine, device, CPU
 * model, accelerator and -object type tern accepts, with its parent (QEMU's
 * name for the family, so "implements" filters work) and the properties
 * tern honours. A type is declared where it is implemented, with
 *   QOM_TYPE(my_type);
 * over a static QomType, and the linker gathers the declarations, so the
 * answer lists exactly what the binary has.
 */
#ifndef HW_CORE_QOM_H
#define HW_CORE_QOM_H

#include "tern/common.h"

typedef struct QomProp {
    const char *name;          /* NULL ends a table */
    const char *type;          /* QEMU's spelling: "str", "bool", "uint32", "size", ... */
    const char *description;   /* or NULL */
} QomProp;

typedef struct QomType {
    const char *name;
    const char *parent;        /* NULL for a root ("object", "interface") */
    bool abstract;
    const QomProp *props;      /* NULL: none beyond the parents' */
} QomType;

#define QOM_TYPE(cname)                                                       \
    static const QomType *const qom_type_ptr_##cname                          \
        __attribute__((used, section("tern_qom_types"))) = &(cname)

const QomType *qom_type_find(const char *name);
/* True if t is 'ancestor' or derives from it. */
bool qom_type_is_a(const QomType *t, const char *ancestor);
/* Every declared type, in link order. */
size_t qom_type_count(void);
const QomType *qom_type_at(size_t i);

#endif
