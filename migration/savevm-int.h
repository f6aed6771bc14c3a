/*
 * Private to the savevm files: the registry entry and the SaveVM object
 * shared by the source side (savevm.c), the loader (loadvm.c) and the
 * configuration section (savevm-config.c).
 */
#ifndef MIGRATION_SAVEVM_INT_H
#define MIGRATION_SAVEVM_INT_H

#include "migration/savevm.h"
#include "tern/json.h"

typedef struct SaveStateEntry {
    char idstr[256];
    uint32_t instance_id;
    int version_id;
    uint32_t section_id;
    const SaveVMHandlers *ops;          /* live or old-style state */
    const VMStateDescription *vmsd;     /* device state */
    void *opaque;
    /* Destination: what the stream said in this entry's START/FULL. */
    bool load_seen;
    uint32_t load_section_id;
    int load_version_id;
} SaveStateEntry;

struct SaveVM {
    char *machine_name;
    bool has_uuid;                      /* the VM's -uuid */
    uint8_t uuid[16];
    bool send_uuid;                     /* validate-uuid: in the configuration */
    GQueue entries;                     /* of SaveStateEntry, in save order */
    uint32_t next_section_id;
    json_object *vmdesc;                /* source: built while saving */

    const SaveVMIncomingOps *in_ops;
    void *in_opaque;
    int postcopy_state;                 /* PostcopyIncomingState, atomic */
    bool return_path_open;
    GMutex load_lock;                   /* entries' load_* fields */
};

bool savevm_config_save(SaveVM *sv, QEMUFile *f, GError **errp);
bool savevm_config_load(SaveVM *sv, QEMUFile *f, GError **errp);

#endif
