/*
 * The devices of one machine as reset and migration see them (crosvm's
 * Bus::snapshot_devices, QEMU's qdev reset and vmstate lists): each device
 * adds itself where it is created - its reset hook, and, if it has
 * guest-visible state, its VMState description under an idstr and instance
 * - and the owners walk this one list: a guest reset runs the hooks,
 * migration and snapshots register every description with their SaveVM.
 *
 *   Rtc *rtc = rtc_new(pio, &irq, m->devices, errp);    (rtc_new calls:)
 *     device_list_add_reset(dl, rtc_reset_hook, rtc);
 *     device_list_add_vmstate(dl, "mc146818rtc", 0, &vmstate_rtc, rtc);
 *
 * A description's opaque is the device object itself; its fields are the
 * device's live state, plus the values that exist only on the wire (filled
 * by pre_save, checked and applied by post_load) kept beside them.
 *
 * Order: reset hooks run in registration order; descriptions are walked by
 * vmsd->priority (highest first: vCPUs, then KVM's chips, then devices),
 * then in registration order. That is the order of the device sections on
 * the wire and the order the destination loads them.
 *
 * Not thread-safe: devices register on the main thread while the machine is
 * built, before any vCPU runs.
 */
#ifndef HW_CORE_DEVICE_LIST_H
#define HW_CORE_DEVICE_LIST_H

#include "tern/common.h"

typedef struct DeviceList DeviceList;
typedef struct SaveVM SaveVM;
typedef struct VMStateDescription VMStateDescription;

/* One device's migratable state. */
typedef struct DeviceVmstate {
    char *idstr;
    uint32_t instance;
    const VMStateDescription *vmsd;
    void *opaque;
} DeviceVmstate;

DeviceList *device_list_new(void);
/* NULL is fine. The devices themselves belong to their owners. */
void device_list_free(DeviceList *dl);

/* dl may be NULL in the functions below that add: nothing is recorded (a
 * device built alone, e.g. by a unit test that does not migrate it). */
void device_list_add_reset(DeviceList *dl, void (*reset)(void *opaque),
                           void *opaque);
/* instance VMSTATE_INSTANCE_ID_ANY (migration/savevm.h) takes the next
 * free instance of idstr. An idstr + instance pair is registered once. */
void device_list_add_vmstate(DeviceList *dl, const char *idstr,
                             uint32_t instance,
                             const VMStateDescription *vmsd, void *opaque);
/* Forgets every hook and description of 'opaque' (a device going away). */
void device_list_remove(DeviceList *dl, void *opaque);

/* Guest reset: every hook in order, with the vCPUs paused. */
void device_list_reset(DeviceList *dl);

/* The descriptions in migration order: i < device_list_count(dl). */
size_t device_list_count(const DeviceList *dl);
const DeviceVmstate *device_list_get(const DeviceList *dl, size_t i);
/* The description of idstr/instance, or NULL. */
const DeviceVmstate *device_list_find(const DeviceList *dl, const char *idstr,
                                      uint32_t instance);
/* Registers every description with sv, in migration order. */
void device_list_register_savevm(const DeviceList *dl, SaveVM *sv);

#endif
