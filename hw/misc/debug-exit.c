/*
 * isa-debug-exit (hw/misc/debug-exit.h). The write only posts the exit status
 * to the main loop, which tears the VM down cleanly and exits with it.
 */
#include "hw/misc/debug-exit.h"
#include "sysemu/runstate.h"
#include "tern/error.h"

struct DebugExit {
    IoBus *pio;
    uint64_t base;
};

static void debug_exit_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    vm_request_exit((int)(((val & 0x7fffffff) << 1) | 1));
}

static const IoOps debug_exit_ops = {
    .write = debug_exit_write,
};

DebugExit *debug_exit_new(IoBus *pio, KeyVal *opts, GError **errp)
{
    uint64_t base = 0x501, size = 2;
    DebugExit *d;

    if (!keyval_get_u64(opts, "iobase", &base, errp) ||
        !keyval_get_u64(opts, "iosize", &size, errp)) {
        return NULL;
    }
    if (base > 0xffff || !size || size > 0x10000 - base) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "isa-debug-exit: iobase 0x%" PRIx64 " / iosize 0x%" PRIx64
                    " is not a port range", base, size);
        return NULL;
    }
    if (!iobus_register(pio, base, size, &debug_exit_ops, NULL, errp)) {
        return NULL;
    }
    d = g_new0(DebugExit, 1);
    d->pio = pio;
    d->base = base;
    return d;
}

void debug_exit_free(DebugExit *d)
{
    if (d) {
        iobus_unregister(d->pio, d->base);
        g_free(d);
    }
}
