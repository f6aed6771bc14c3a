/*
 * What the postcopy unit tests share (test-postcopy.c,
 * test-bitmap-postcopy.c, test-savevm-bitmap.c), header-only:
 *  - a migration link: a source end and a destination end, two socketpairs
 *    joined by relay threads that can slow the source-to-destination
 *    direction (KiB/s, changed at any time) and cut the link;
 *  - guest RAM in a memfd, as postcopy's pager needs it (test-ram-vm.h);
 *  - a source job's postcopy trigger: RAM's dirty-sync callback asks for
 *    postcopy, so the switch never races the job's convergence, and the
 *    dirty bitmaps' in_postcopy hook.
 */
#ifndef TESTS_UNIT_TEST_POSTCOPY_UTIL_H
#define TESTS_UNIT_TEST_POSTCOPY_UTIL_H

#include <glib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/migration-job.h"
#include "migration/qemu-file.h"
#include "test-ram-vm.h"

typedef struct Relay {
    int a, b;                       /* forward a -> b (slowly), b -> a */
    int *kib_per_s;                 /* a -> b, 0: as fast as it goes */
    GThread *fwd, *back;
} Relay;

typedef struct Pump {
    int from, to;
    int *kib_per_s;                 /* NULL: never slowed */
} Pump;

static inline gpointer pump(gpointer opaque)
{
    Pump p = *(Pump *)opaque;
    uint8_t buf[16384];
    ssize_t n;

    g_free(opaque);
    while ((n = read(p.from, buf, sizeof(buf))) > 0) {
        int rate = p.kib_per_s ? g_atomic_int_get(p.kib_per_s) : 0;

        if (send(p.to, buf, n, MSG_NOSIGNAL) != n) {
            break;
        }
        if (rate) {
            g_usleep(n * (G_USEC_PER_SEC / 1024) / rate);
        }
    }
    shutdown(p.from, SHUT_RDWR);
    shutdown(p.to, SHUT_RDWR);
    return NULL;
}

static inline GThread *start_pump(int from, int to, int *kib_per_s)
{
    Pump *p = g_new(Pump, 1);

    *p = (Pump){ from, to, kib_per_s };
    return g_thread_new("pump", pump, p);
}

/* A source end and a destination end, joined by a relay. */
static inline void link_open(Relay *r, int *kib_per_s, QEMUFile **src,
                             QEMUFile **dst)
{
    int s[2], d[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, s), ==, 0);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, d), ==, 0);
    r->a = s[1];
    r->b = d[0];
    r->kib_per_s = kib_per_s;
    r->fwd = start_pump(r->a, r->b, kib_per_s);
    r->back = start_pump(r->b, r->a, NULL);
    *src = qemu_file_new_fd_output(s[0]);
    *dst = qemu_file_new_fd_input(d[1]);
}

static inline void link_cut(Relay *r)
{
    shutdown(r->a, SHUT_RDWR);
    shutdown(r->b, SHUT_RDWR);
}

static inline void link_close(Relay *r)
{
    if (r->fwd) {
        link_cut(r);
        g_thread_join(r->fwd);
        g_thread_join(r->back);
        close(r->a);
        close(r->b);
        r->fwd = NULL;
    }
}

/* The job, once started (set and read atomically: the job's thread reads
 * it through the hooks below). */
typedef struct JobRef {
    MigrationJob *job;
} JobRef;

/* RamDirtySyncFn over a JobRef: the job syncs before it decides to stop. */
static inline bool jobref_sync_then_postcopy(void *opaque, HBitmap *dirty,
                                             GError **errp)
{
    JobRef *ref = opaque;
    MigrationJob *job;

    while (!(job = g_atomic_pointer_get(&ref->job))) {
        g_usleep(1000);
    }
    return migration_job_start_postcopy(job, errp);
}

/* DirtyBitmapNodes.in_postcopy over a JobRef. */
static inline bool jobref_in_postcopy(void *opaque)
{
    JobRef *ref = opaque;
    MigrationJob *job = g_atomic_pointer_get(&ref->job);

    return job && migration_job_in_postcopy(job);
}

#endif
