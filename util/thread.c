/*
 * Thread helpers (include/tern/thread.h).
 */
#include <sys/resource.h>
#include <unistd.h>

#include "tern/thread.h"

void tern_thread_yield_priority(int nice)
{
    int now = getpriority(PRIO_PROCESS, gettid());

    /* Failure only costs latency elsewhere: nothing to report. */
    (void)setpriority(PRIO_PROCESS, gettid(), MIN(now + nice, 19));
}
