/*
 * The "globalstate" section: the source's run state name ("running",
 * "paused", ...) carried in QEMU's layout (be32 size including the NUL, then
 * a 100-byte buffer), so the destination knows whether to resume the guest.
 * The machine fills it from its runstate before saving and reads it after
 * loading; this file only knows the wire format and its checks.
 */
#ifndef MIGRATION_GLOBAL_STATE_H
#define MIGRATION_GLOBAL_STATE_H

#include "migration/savevm.h"

typedef struct MigGlobalState {
    uint32_t size;
    uint8_t runstate[100];
    bool received;
} MigGlobalState;

/* Record the run state name to send (at most 99 characters). */
void mig_global_state_set(MigGlobalState *gs, const char *runstate);
/* The run state the stream carried, or NULL if it had no globalstate. */
const char *mig_global_state_received(const MigGlobalState *gs);
void mig_global_state_register(SaveVM *sv, MigGlobalState *gs);

#endif
