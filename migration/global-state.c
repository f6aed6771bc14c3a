/*
 * The "globalstate" section (see include/migration/global-state.h). It is
 * always sent, as QEMU does when its store-global-state property is on (the
 * default since 2.4), and a received name must be a QEMU run state.
 */
#include <string.h>

#include "migration/global-state.h"

static const char *const runstate_names[] = {
    "debug", "inmigrate", "internal-error", "io-error", "paused",
    "postmigrate", "prelaunch", "finish-migrate", "restore-vm", "running",
    "save-vm", "shutdown", "suspended", "watchdog", "guest-panicked",
    "colo",
};

void mig_global_state_set(MigGlobalState *gs, const char *runstate)
{
    memset(gs, 0, sizeof(*gs));
    g_strlcpy((char *)gs->runstate, runstate, sizeof(gs->runstate));
    gs->size = strlen((char *)gs->runstate) + 1;
}

const char *mig_global_state_received(const MigGlobalState *gs)
{
    return gs->received ? (const char *)gs->runstate : NULL;
}

static bool global_state_pre_load(void *opaque, GError **errp)
{
    ((MigGlobalState *)opaque)->received = false;
    return true;
}

static bool global_state_post_load(void *opaque, int version_id,
                                   GError **errp)
{
    MigGlobalState *gs = opaque;
    const char *name = (const char *)gs->runstate;

    if (gs->size > sizeof(gs->runstate) ||
        !memchr(gs->runstate, 0, sizeof(gs->runstate))) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "globalstate: run state is not a string");
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(runstate_names); i++) {
        if (!strcmp(name, runstate_names[i])) {
            gs->received = true;
            return true;
        }
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                "globalstate: unknown run state '%.99s'", name);
    return false;
}

static const VMStateDescription vmstate_globalstate = {
    .name = "globalstate",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_load = global_state_pre_load,
    .post_load = global_state_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(size, MigGlobalState),
        VMSTATE_BUFFER(runstate, MigGlobalState),
        VMSTATE_END_OF_LIST()
    },
};

void mig_global_state_register(SaveVM *sv, MigGlobalState *gs)
{
    savevm_register_vmstate(sv, NULL, 0, &vmstate_globalstate, gs);
}
