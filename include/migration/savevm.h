/*
 * The migration stream as QEMU writes it (savevm format version 3), and the
 * registry of everything that puts state into it: live (iterative) state such
 * as RAM and dirty bitmaps through SaveVMHandlers, device state through
 * VMStateDescriptions, each keyed by idstr + instance id with a section id.
 *
 * Stream layout (all integers big-endian; the full byte map is in
 * docs/migration.md):
 *   be32 0x5145564d "QEVM" | be32 3
 *   u8 0x07 CONFIGURATION | vmstate "configuration" (be32 len, machine name,
 *        optional subsections)
 *   then any number of:
 *   u8 0x01 START / 0x04 FULL | be32 section_id | u8 len, idstr |
 *        be32 instance_id | be32 version_id | data | footer
 *   u8 0x02 PART / 0x03 END | be32 section_id | data | footer
 *        footer = u8 0x7e | be32 section_id
 *   u8 0x08 COMMAND | be16 cmd | be16 len | len bytes of arguments
 *   u8 0x00 EOF
 *   and after EOF: u8 0x06 VMDESCRIPTION | be32 len | JSON
 *
 * One SaveVM is owned by the machine (the migration core and snapshots use
 * it); tools and tests make their own with fake handlers.
 */
#ifndef MIGRATION_SAVEVM_H
#define MIGRATION_SAVEVM_H

#include "migration/vmstate.h"

#define QEMU_VM_FILE_MAGIC          0x5145564d
#define QEMU_VM_FILE_VERSION_COMPAT 0x00000002
#define QEMU_VM_FILE_VERSION        0x00000003

enum {
    QEMU_VM_EOF            = 0x00,
    QEMU_VM_SECTION_START  = 0x01,
    QEMU_VM_SECTION_PART   = 0x02,
    QEMU_VM_SECTION_END    = 0x03,
    QEMU_VM_SECTION_FULL   = 0x04,
    /* QEMU_VM_SUBSECTION  = 0x05, in vmstate.h */
    QEMU_VM_VMDESCRIPTION  = 0x06,
    QEMU_VM_CONFIGURATION  = 0x07,
    QEMU_VM_COMMAND        = 0x08,
    QEMU_VM_SECTION_FOOTER = 0x7e,
};

/* QEMU_VM_COMMAND sub-commands, numbered as QEMU numbers them. */
typedef enum {
    MIG_CMD_INVALID = 0,
    MIG_CMD_OPEN_RETURN_PATH,       /* len 0: open the return path */
    MIG_CMD_PING,                   /* len 4: be32, answered by a PONG */
    MIG_CMD_POSTCOPY_ADVISE,        /* len 0 or 16: be64 host page summary,
                                     * be64 target page size (RAM postcopy) */
    MIG_CMD_POSTCOPY_LISTEN,        /* len 0 */
    MIG_CMD_POSTCOPY_RUN,           /* len 0 */
    MIG_CMD_POSTCOPY_RAM_DISCARD,   /* u8 0, u8 len, name, u8 0,
                                     * n x (be64 start, be64 length) */
    MIG_CMD_PACKAGED,               /* len 4: be32 size, then size bytes of
                                     * a nested stream (no header) */
    MIG_CMD_ENABLE_COLO,            /* len 0 */
    MIG_CMD_POSTCOPY_RESUME,        /* len 0 */
    MIG_CMD_RECV_BITMAP,            /* u8 len, RAM block name */
    MIG_CMD_MAX
} MigCmd;

/* The command's name, or NULL if 'cmd' is not one. */
const char *mig_cmd_name(unsigned cmd);
/* The fixed argument length of 'cmd', or -1 if variable. */
int mig_cmd_fixed_len(unsigned cmd);

#define MIG_CMD_PACKAGED_MAX  UINT32_MAX
#define VMSTATE_INSTANCE_ID_ANY UINT32_MAX
/* x86 guest pages: the page size in the vmdesc and the configuration. */
#define SAVEVM_TARGET_PAGE_BITS 12

typedef struct SaveVMHandlers {
    /* Source, live state (START, PARTs, END sections). */
    bool (*save_setup)(QEMUFile *f, void *opaque, GError **errp);
    /* <0 error, 0 more to send, 1 this round's work is done. */
    int (*save_live_iterate)(QEMUFile *f, void *opaque, GError **errp);
    bool (*save_live_complete_precopy)(QEMUFile *f, void *opaque,
                                       GError **errp);
    bool (*save_live_complete_postcopy)(QEMUFile *f, void *opaque,
                                        GError **errp);
    /* A cheap estimate of what is left to send... */
    void (*save_pending)(void *opaque, uint64_t *must_precopy,
                         uint64_t *can_postcopy);
    /* ...and the exact figure (RAM syncs its dirty log first); optional,
     * save_pending is used without it. */
    void (*save_pending_exact)(void *opaque, uint64_t *must_precopy,
                               uint64_t *can_postcopy);
    void (*save_cleanup)(void *opaque);
    /* Postcopy recovery: the stream goes on over a new channel; send again
     * whatever may have been lost with the old one. Optional. */
    void (*resume_prepare)(void *opaque);
    bool (*is_active)(void *opaque);
    bool (*is_active_iterate)(void *opaque);
    bool (*has_postcopy)(void *opaque);
    /* Source, one-shot state without a VMStateDescription (FULL section). */
    bool (*save_state)(QEMUFile *f, void *opaque, GError **errp);
    /* Destination. load_state reads one section's data (not its footer). */
    bool (*load_setup)(QEMUFile *f, void *opaque, GError **errp);
    bool (*load_state)(QEMUFile *f, void *opaque, int version_id,
                       GError **errp);
    void (*load_cleanup)(void *opaque);
    /* Postcopy recovery on the destination: the source reconnected and
     * sends again what it cannot know arrived. Optional. */
    void (*load_resumed)(void *opaque);
    /* The load failed for good, no recovery follows (called once every
     * thread reading the stream is done): drop what did not arrive whole.
     * Optional. */
    void (*load_abandon)(void *opaque);
} SaveVMHandlers;

/* What the destination does on commands. A NULL callback makes the command
 * an error ("not supported here"), except ENABLE_COLO which is never ok. */
typedef struct SaveVMIncomingOps {
    /* Open the return path of 'f', the outer stream (never a package). */
    bool (*open_return_path)(void *opaque, QEMUFile *f, GError **errp);
    bool (*ping)(void *opaque, uint32_t value, GError **errp);
    /* ram: RAM postcopy requested (the 16-byte form) with its page sizes. */
    bool (*postcopy_advise)(void *opaque, bool ram, uint64_t host_pages,
                            uint64_t target_page_size, GError **errp);
    bool (*postcopy_ram_discard)(void *opaque, const char *block,
                                 uint64_t start, uint64_t length,
                                 GError **errp);
    /* Must start a thread that keeps reading 'f' (the outer stream: LISTEN
     * is only accepted inside PACKAGED) with savevm_load_main;
     * savevm_load_cleanup runs once that thread is done. */
    bool (*postcopy_listen)(void *opaque, QEMUFile *f, GError **errp);
    bool (*postcopy_run)(void *opaque, GError **errp);
    bool (*postcopy_resume)(void *opaque, GError **errp);
    bool (*recv_bitmap)(void *opaque, const char *block, GError **errp);
} SaveVMIncomingOps;

/* The destination's postcopy progress; commands must come in this order.
 * END: the stream after RUN reached EOF (set by savevm_load_main). */
typedef enum {
    POSTCOPY_INCOMING_NONE = 0,
    POSTCOPY_INCOMING_ADVISE,
    POSTCOPY_INCOMING_DISCARD,
    POSTCOPY_INCOMING_LISTENING,
    POSTCOPY_INCOMING_RUNNING,
    POSTCOPY_INCOMING_END,
} PostcopyIncomingState;

typedef struct SaveVM SaveVM;

SaveVM *savevm_new(const char *machine_name);
void savevm_free(SaveVM *sv);
/* The VM's UUID (-uuid). A source sends it in the configuration section
 * when validate-uuid is on (savevm_set_send_uuid); a destination that has
 * one refuses a stream carrying another ("UUID received is ... and local
 * is ..."), one that has none only warns (seed 004's rules). */
void savevm_set_uuid(SaveVM *sv, const uint8_t uuid[16]);
void savevm_set_send_uuid(SaveVM *sv, bool on);

/* Register live state; instance_id may be VMSTATE_INSTANCE_ID_ANY. */
void savevm_register_live(SaveVM *sv, const char *idstr, uint32_t instance_id,
                          int version_id, const SaveVMHandlers *ops,
                          void *opaque);
/* Register device state under vmsd->name (or 'idstr' if not NULL). */
void savevm_register_vmstate(SaveVM *sv, const char *idstr,
                             uint32_t instance_id,
                             const VMStateDescription *vmsd, void *opaque);
void savevm_unregister(SaveVM *sv, void *opaque);

/* ---- source ---- */
/* False with QEMU's message if a registered device cannot be saved. */
bool savevm_state_saveable(SaveVM *sv, GError **errp);
/* Magic, version and the configuration section. */
bool savevm_save_header(SaveVM *sv, QEMUFile *f, GError **errp);
/* START sections of every active live handler. */
bool savevm_save_setup(SaveVM *sv, QEMUFile *f, GError **errp);
/* PART sections; 1 when every live handler is done, 0 for more, -1 error. */
int savevm_save_iterate(SaveVM *sv, QEMUFile *f, bool postcopy,
                        GError **errp);
void savevm_save_pending(SaveVM *sv, uint64_t *must_precopy,
                         uint64_t *can_postcopy);
/* As QEMU: ask for the exact figure only when the estimate looks small
 * enough to stop, since it costs a dirty-log sync. */
void savevm_save_pending_exact(SaveVM *sv, uint64_t *must_precopy,
                               uint64_t *can_postcopy);
/* END sections, device FULL sections, EOF (unless in_postcopy) and the VM
 * description. iterable_only: just the END sections (postcopy switchover). */
/* As savevm_save_complete_precopy (not in postcopy), with 'before_eof'
 * called after the device state and before EOF: where a migration source
 * hands its disks over (QEMU inactivates them there). */
bool savevm_save_complete_precopy_then(SaveVM *sv, QEMUFile *f,
                                       bool (*before_eof)(void *opaque,
                                                          GError **errp),
                                       void *opaque, GError **errp);
bool savevm_save_complete_precopy(SaveVM *sv, QEMUFile *f, bool in_postcopy,
                                  bool iterable_only, GError **errp);
/* Device FULL sections alone (the PACKAGED blob at postcopy switchover). */
bool savevm_save_devices(SaveVM *sv, QEMUFile *f, GError **errp);
bool savevm_save_complete_postcopy(SaveVM *sv, QEMUFile *f, GError **errp);
/* Every live handler's resume_prepare (a postcopy recovery). */
void savevm_save_resume_prepare(SaveVM *sv);
void savevm_save_cleanup(SaveVM *sv);
/* A whole paused-VM stream in one go (snapshots, exec:/file: migration). */
bool savevm_save_all(SaveVM *sv, QEMUFile *f, GError **errp);

void savevm_send_open_return_path(QEMUFile *f);
void savevm_send_ping(QEMUFile *f, uint32_t value);
/* ram: send the 16-byte RAM form; otherwise the empty (bitmaps-only) form. */
void savevm_send_postcopy_advise(QEMUFile *f, bool ram, uint64_t host_pages,
                                 uint64_t target_page_size);
void savevm_send_postcopy_listen(QEMUFile *f);
void savevm_send_postcopy_run(QEMUFile *f);
void savevm_send_postcopy_resume(QEMUFile *f);
void savevm_send_enable_colo(QEMUFile *f);
/* At most (65535 - 3 - strlen(block)) / 16 ranges per command. */
bool savevm_send_postcopy_ram_discard(QEMUFile *f, const char *block,
                                      size_t n, const uint64_t *starts,
                                      const uint64_t *lengths, GError **errp);
bool savevm_send_packaged(QEMUFile *f, const uint8_t *buf, size_t len,
                          GError **errp);
void savevm_send_recv_bitmap(QEMUFile *f, const char *block);

/* ---- destination ---- */
void savevm_set_incoming_ops(SaveVM *sv, const SaveVMIncomingOps *ops,
                             void *opaque);
/* Read a whole stream: header, load_setup, sections, EOF, the VM
 * description. Returns early (true) once a postcopy listen thread owns 'f'. */
bool savevm_load(SaveVM *sv, QEMUFile *f, GError **errp);
/* Magic, version and configuration (machine name checked). */
bool savevm_load_header(SaveVM *sv, QEMUFile *f, GError **errp);
/* The section/command loop: 0 at EOF, 1 when POSTCOPY_RUN ends the loop
 * (the listen thread carries on), -1 with errp on error. EOF after RUN
 * moves the postcopy state to END. */
int savevm_load_main(SaveVM *sv, QEMUFile *f, GError **errp);
PostcopyIncomingState savevm_postcopy_state(const SaveVM *sv);
void savevm_load_cleanup(SaveVM *sv);
/* Every handler's load_resumed / load_abandon (see SaveVMHandlers). */
void savevm_load_resumed(SaveVM *sv);
void savevm_load_abandon(SaveVM *sv);

#endif
