/*
 * The declared QOM types (hw/core/qom.h), and the families they belong to:
 * the abstract parents QEMU's type names are grouped under.
 */
#include <string.h>

#include "hw/core/qom.h"

static const QomType type_object = { .name = "object", .abstract = true };
static const QomType type_device = { .name = "device", .parent = "object",
                                     .abstract = true };
static const QomType type_pci_device = { .name = "pci-device", .parent = "device",
                                         .abstract = true };
static const QomType type_isa_device = { .name = "isa-device", .parent = "device",
                                         .abstract = true };
static const QomType type_machine = { .name = "machine", .parent = "object",
                                      .abstract = true };
static const QomType type_accel = { .name = "accel", .parent = "object",
                                    .abstract = true };
static const QomType type_cpu = { .name = "x86_64-cpu", .parent = "device",
                                  .abstract = true };
QOM_TYPE(type_object);
QOM_TYPE(type_device);
QOM_TYPE(type_pci_device);
QOM_TYPE(type_isa_device);
QOM_TYPE(type_machine);
QOM_TYPE(type_accel);
QOM_TYPE(type_cpu);

extern const QomType *const __start_tern_qom_types[];
extern const QomType *const __stop_tern_qom_types[];

size_t qom_type_count(void)
{
    return __stop_tern_qom_types - __start_tern_qom_types;
}

const QomType *qom_type_at(size_t i)
{
    return i < qom_type_count() ? __start_tern_qom_types[i] : NULL;
}

const QomType *qom_type_find(const char *name)
{
    for (size_t i = 0; i < qom_type_count(); i++) {
        if (!strcmp(__start_tern_qom_types[i]->name, name)) {
            return __start_tern_qom_types[i];
        }
    }
    return NULL;
}

bool qom_type_is_a(const QomType *t, const char *ancestor)
{
    /* Bounded: a parent chain longer than the table would be a cycle. */
    for (size_t depth = 0; t && depth <= qom_type_count(); depth++) {
        if (!strcmp(t->name, ancestor)) {
            return true;
        }
        t = t->parent ? qom_type_find(t->parent) : NULL;
    }
    return false;
}
