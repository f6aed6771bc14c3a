/*
 * Thread helpers GLib does not have.
 */
#ifndef TERN_THREAD_H
#define TERN_THREAD_H

#include "tern/common.h"

/* Lower the calling thread's scheduling priority by 'nice' steps (Linux
 * nice values are per thread): a bulk stream that must leave the CPU to a
 * latency-critical thread of the same process. Best effort. */
void tern_thread_yield_priority(int nice);
/* How much a bulk stream yields to its latency-critical siblings. */
#define TERN_BACKGROUND_NICE 10

#endif
