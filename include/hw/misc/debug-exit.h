/*
 * isa-debug-exit: a port whose write of value v ends tern with exit status
 * (v << 1) | 1, exactly as QEMU's device does, so test guests report results.
 * Options (as -device takes them): iobase (default 0x501), iosize (default 2).
 */
#ifndef HW_MISC_DEBUG_EXIT_H
#define HW_MISC_DEBUG_EXIT_H

#include "hw/io.h"
#include "tern/keyval.h"

typedef struct DebugExit DebugExit;

/* Reads iobase/iosize from opts (marking them used) and registers the port. */
DebugExit *debug_exit_new(IoBus *pio, KeyVal *opts, GError **errp);
void debug_exit_free(DebugExit *d);

#endif
