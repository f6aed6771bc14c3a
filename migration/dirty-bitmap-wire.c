/*
 * Decoding of the dirty-bitmap section's chunk flags, for every reader of
 * that section (include/migration/dirty-bitmap-wire.h).
 */
#include "migration/dirty-bitmap-wire.h"
#include "tern/error.h"

bool dbm_get_flags(QEMUFile *f, uint32_t *flags, GError **errp)
{
    uint32_t v = qemu_get_byte(f);
    uint32_t markers = 0;

    if (v & DBM_EXTRA) {
        v = v << 8 | qemu_get_byte(f);
        markers = 0x8000;
        if (v & DBM_EXTRA) {
            v = v << 16 | qemu_get_be16(f);
            markers = 0x80800000;
        }
    }
    if (qemu_file_get_error(f)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "dirty-bitmap: truncated chunk flags");
        return false;
    }
    v &= ~markers;
    if (v & ~0x7fu) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "dirty-bitmap: unknown chunk flags 0x%x", v);
        return false;
    }
    *flags = v;
    return true;
}
