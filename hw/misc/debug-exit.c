/*
 * isa-debug-exit: a port whose write of value v ends tern with exit status
 * (v << 1) | 1, exactly as QEMU's device does, so test guests report results.
 * Options (as -device takes them): iobase (default 0x501), iosize (default 2).
 * The write only posts the exit status to the main loop, which tears the VM
 * down cleanly and exits with it. The device has no state to migrate.
 */
#include "hw/i386/machine.h"
#include "softmmu/runstate.h"
#include "tern/error.h"

typedef struct DebugExit {
    IoBus *pio;
    uint64_t base;
} DebugExit;

static void debug_exit_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    vm_request_exit((int)(((val & 0x7fffffff) << 1) | 1));
}

static const IoOps debug_exit_ops = {
    .write = debug_exit_write,
};

static void debug_exit_free(void *opaque)
{
    DebugExit *d = opaque;

    iobus_unregister(d->pio, d->base);
    g_free(d);
}

/* Reads iobase/iosize from opts (marking them used) and registers the port. */
static bool debug_exit_create(Machine *m, KeyVal *opts, GError **errp)
{
    uint64_t base = 0x501, size = 2;
    DebugExit *d;

    if (!keyval_get_u64(opts, "iobase", &base, errp) ||
        !keyval_get_u64(opts, "iosize", &size, errp)) {
        return false;
    }
    if (base > 0xffff || !size || size > 0x10000 - base) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "isa-debug-exit: iobase 0x%" PRIx64 " / iosize 0x%" PRIx64
                    " is not a port range", base, size);
        return false;
    }
    if (!iobus_register(m->pio, base, size, &debug_exit_ops, NULL, errp)) {
        return false;
    }
    d = g_new0(DebugExit, 1);
    d->pio = m->pio;
    d->base = base;
    machine_add_cleanup(m, debug_exit_free, d);
    return true;
}

static const QomProp debug_exit_props[] = {
    { "iobase", "uint32", NULL },
    { "iosize", "uint32", NULL },
    { NULL, NULL, NULL },
};

MACHINE_DEVICE_TYPE(debug_exit, "isa-debug-exit", "isa-device", debug_exit_props,
                    debug_exit_create);
