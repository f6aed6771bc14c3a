/*
 * The configuration section that follows the stream header: the machine
 * type name, and optional subsections for the target page size, the
 * capabilities both sides must agree on, and the VM's UUID. The destination
 * refuses a stream made for another machine type or page size.
 */
#include <string.h>

#include "savevm-int.h"
#include "tern/error.h"

/* Capabilities that must match on both sides; QEMU validates only these.
 * tern implements none of them, so a stream that enables one is refused. */
static const char *const validated_caps[] = { "x-ignore-shared" };

/* Every capability name QEMU 7.2 knows, so an unknown one is an error. */
static const char *const known_caps[] = {
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress",
    "events", "postcopy-ram", "x-colo", "release-ram", "block",
    "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps",
    "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
    "validate-uuid", "background-snapshot", "zero-copy-send",
    "postcopy-preempt", "switchover-ack", "dirty-limit",
};

typedef struct ConfigState ConfigState;

typedef struct ConfigCap {
    char name[256];
} ConfigCap;

struct ConfigState {
    SaveVM *sv;
    uint32_t name_len;
    uint8_t *name;
    uint32_t target_page_bits;
    uint32_t caps_count;
    ConfigCap *caps;
    uint8_t uuid[16];
};

static bool get_capability(QEMUFile *f, void *pv, size_t size,
                           const VMStateField *field, GError **errp)
{
    ConfigCap *cap = pv;

    qemu_get_counted_string(f, cap->name);
    for (size_t i = 0; i < ARRAY_SIZE(known_caps); i++) {
        if (!strcmp(cap->name, known_caps[i])) {
            return true;
        }
    }
    if (!qemu_file_get_error(f)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "unknown migration capability '%s' in the stream",
                    cap->name);
        return false;
    }
    return true;
}

static void put_capability(QEMUFile *f, const void *pv, size_t size,
                           const VMStateField *field)
{
    qemu_put_counted_string(f, ((const ConfigCap *)pv)->name);
}

static const VMStateInfo vmstate_info_capability = {
    .name = "capability", .get = get_capability, .put = put_capability,
};

static bool page_bits_needed(void *opaque)
{
    return false;       /* x86 uses the minimum page size: never sent */
}

static const VMStateDescription vmstate_target_page_bits = {
    .name = "configuration/target-page-bits",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = page_bits_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(target_page_bits, ConfigState),
        VMSTATE_END_OF_LIST()
    },
};

static bool caps_needed(void *opaque)
{
    return ((ConfigState *)opaque)->caps_count > 0;
}

static const VMStateDescription vmstate_capabilities = {
    .name = "configuration/capabilities",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = caps_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(caps_count, ConfigState),
        VMSTATE_VARRAY_ALLOC(caps, ConfigState, caps_count, uint32_t,
                             ARRAY_SIZE(known_caps), vmstate_info_capability,
                             ConfigCap),
        VMSTATE_END_OF_LIST()
    },
};

static bool uuid_needed(void *opaque)
{
    const ConfigState *cs = opaque;

    return cs->sv->has_uuid && cs->sv->send_uuid;
}

static char *uuid_text(const uint8_t u[16])
{
    return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                           "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
                           u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                           u[12], u[13], u[14], u[15]);
}

static bool uuid_post_load(void *opaque, int version_id, GError **errp)
{
    const ConfigState *cs = opaque;
    g_autofree char *src = uuid_text(cs->uuid);
    g_autofree char *dst = NULL;

    if (!cs->sv->has_uuid) {
        /* A snapshot may be loaded by a VM that was given no UUID. */
        tern_warn("UUID is received %s, but local uuid isn't set", src);
        return true;
    }
    if (memcmp(cs->uuid, cs->sv->uuid, 16)) {
        dst = uuid_text(cs->sv->uuid);
        return tern_invalid(errp, "UUID received is %s and local is %s", src, dst);
    }
    return true;
}

static const VMStateDescription vmstate_uuid = {
    .name = "configuration/uuid",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = uuid_needed,
    .post_load = uuid_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8_ARRAY(uuid, ConfigState, 16),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_configuration = {
    .name = "configuration",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(name_len, ConfigState),
        VMSTATE_VBUFFER_ALLOC_UINT32(name, ConfigState, name_len, 255),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *const[]) {
        &vmstate_target_page_bits,
        &vmstate_capabilities,
        &vmstate_uuid,
        NULL
    },
};

bool savevm_config_save(SaveVM *sv, QEMUFile *f, GError **errp)
{
    ConfigState cs = {
        .sv = sv,
        .name_len = strlen(sv->machine_name),
        .name = (uint8_t *)sv->machine_name,
        .target_page_bits = SAVEVM_TARGET_PAGE_BITS,
    };

    memcpy(cs.uuid, sv->uuid, sizeof(cs.uuid));
    qemu_put_byte(f, QEMU_VM_CONFIGURATION);
    return vmstate_save(f, &vmstate_configuration, &cs, NULL, errp);
}

static bool check_config(SaveVM *sv, const ConfigState *cs, GError **errp)
{
    /* An empty name arrives as no allocation at all. */
    g_autofree char *name = cs->name ?
        g_strndup((const char *)cs->name, cs->name_len) : g_strdup("");

    if (strcmp(name, sv->machine_name)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "machine type in the stream is '%s', this VM is '%s'",
                    name, sv->machine_name);
        return false;
    }
    if (cs->target_page_bits != SAVEVM_TARGET_PAGE_BITS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "stream has target page bits %u, this VM %u",
                    cs->target_page_bits, SAVEVM_TARGET_PAGE_BITS);
        return false;
    }
    for (uint32_t i = 0; i < cs->caps_count; i++) {
        for (size_t j = 0; j < ARRAY_SIZE(validated_caps); j++) {
            if (!strcmp(cs->caps[i].name, validated_caps[j])) {
                g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                            "capability %s is on in the stream but not "
                            "supported here", cs->caps[i].name);
                return false;
            }
        }
    }
    return true;
}

bool savevm_config_load(SaveVM *sv, QEMUFile *f, GError **errp)
{
    ConfigState cs = { .sv = sv, .target_page_bits = SAVEVM_TARGET_PAGE_BITS };
    bool ok;

    if (qemu_get_byte(f) != QEMU_VM_CONFIGURATION) {
        if (!qemu_file_check(f, errp)) {
            return false;
        }
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "configuration section missing");
        return false;
    }
    ok = vmstate_load(f, &vmstate_configuration, &cs, 1, errp) &&
         check_config(sv, &cs, errp);
    g_free(cs.name);
    g_free(cs.caps);
    return ok;
}
