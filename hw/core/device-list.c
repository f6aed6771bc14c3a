/*
 * The machine's device list (hw/core/device-list.h): reset hooks in
 * registration order and device state descriptions kept sorted by priority,
 * so every walker - reset, migration, snapshots - sees one order.
 */
#include <string.h>

#include "hw/core/device-list.h"
#include "migration/savevm.h"

typedef struct DeviceReset {
    void (*fn)(void *opaque);
    void *opaque;
} DeviceReset;

struct DeviceList {
    GArray *resets;         /* of DeviceReset */
    GPtrArray *states;      /* of DeviceVmstate *, in migration order */
};

static void vmstate_free(gpointer p)
{
    DeviceVmstate *e = p;

    g_free(e->idstr);
    g_free(e);
}

DeviceList *device_list_new(void)
{
    DeviceList *dl = g_new0(DeviceList, 1);

    dl->resets = g_array_new(false, false, sizeof(DeviceReset));
    dl->states = g_ptr_array_new_with_free_func(vmstate_free);
    return dl;
}

void device_list_free(DeviceList *dl)
{
    if (dl) {
        g_array_unref(dl->resets);
        g_ptr_array_unref(dl->states);
        g_free(dl);
    }
}

void device_list_add_reset(DeviceList *dl, void (*reset)(void *opaque),
                           void *opaque)
{
    DeviceReset r = { reset, opaque };

    if (dl) {
        g_array_append_val(dl->resets, r);
    }
}

static uint32_t next_instance(const DeviceList *dl, const char *idstr)
{
    uint32_t id = 0;

    for (guint i = 0; i < dl->states->len; i++) {
        const DeviceVmstate *e = g_ptr_array_index(dl->states, i);

        if (!strcmp(e->idstr, idstr) && e->instance >= id) {
            id = e->instance + 1;
        }
    }
    return id;
}

/* After the last entry of the same or a higher priority. */
static guint insert_position(const DeviceList *dl, VMStatePriority prio)
{
    guint pos = dl->states->len;

    while (pos > 0) {
        const DeviceVmstate *prev = g_ptr_array_index(dl->states, pos - 1);

        if (prev->vmsd->priority >= prio) {
            break;
        }
        pos--;
    }
    return pos;
}

void device_list_add_vmstate(DeviceList *dl, const char *idstr,
                             uint32_t instance,
                             const VMStateDescription *vmsd, void *opaque)
{
    DeviceVmstate *e;

    if (!dl) {
        return;
    }
    if (instance == VMSTATE_INSTANCE_ID_ANY) {
        instance = next_instance(dl, idstr);
    }
    g_assert(!device_list_find(dl, idstr, instance));
    e = g_new0(DeviceVmstate, 1);
    e->idstr = g_strdup(idstr);
    e->instance = instance;
    e->vmsd = vmsd;
    e->opaque = opaque;
    g_ptr_array_insert(dl->states, insert_position(dl, vmsd->priority), e);
}

void device_list_remove(DeviceList *dl, void *opaque)
{
    if (!dl) {
        return;
    }
    for (guint i = dl->resets->len; i-- > 0;) {
        if (g_array_index(dl->resets, DeviceReset, i).opaque == opaque) {
            g_array_remove_index(dl->resets, i);
        }
    }
    for (guint i = dl->states->len; i-- > 0;) {
        const DeviceVmstate *e = g_ptr_array_index(dl->states, i);

        if (e->opaque == opaque) {
            g_ptr_array_remove_index(dl->states, i);
        }
    }
}

void device_list_reset(DeviceList *dl)
{
    for (guint i = 0; i < dl->resets->len; i++) {
        DeviceReset *r = &g_array_index(dl->resets, DeviceReset, i);

        r->fn(r->opaque);
    }
}

size_t device_list_count(const DeviceList *dl)
{
    return dl->states->len;
}

const DeviceVmstate *device_list_get(const DeviceList *dl, size_t i)
{
    return i < dl->states->len ? g_ptr_array_index(dl->states, i) : NULL;
}

const DeviceVmstate *device_list_find(const DeviceList *dl, const char *idstr,
                                      uint32_t instance)
{
    for (guint i = 0; i < dl->states->len; i++) {
        const DeviceVmstate *e = g_ptr_array_index(dl->states, i);

        if (e->instance == instance && !strcmp(e->idstr, idstr)) {
            return e;
        }
    }
    return NULL;
}

void device_list_register_savevm(const DeviceList *dl, SaveVM *sv)
{
    for (guint i = 0; i < dl->states->len; i++) {
        const DeviceVmstate *e = g_ptr_array_index(dl->states, i);

        savevm_register_vmstate(sv, e->idstr, e->instance, e->vmsd, e->opaque);
    }
}
