/*
 * Demand paging of guest RAM through userfaultfd: the RAM block (the memfd
 * behind GuestMemory's regions, addressed by memfd offset) is registered in
 * missing mode (and minor mode, where the kernel has it for shmem), so a
 * vCPU or VMM thread touching a page that is not there sleeps in the kernel
 * while a fault thread asks a page source for it. A page is installed whole,
 * and its sleepers woken, by UFFDIO_COPY / UFFDIO_ZEROPAGE into a hole of
 * the memfd, or, for a page a discard left in the memfd, by writing the
 * memfd while nothing maps the page and then UFFDIO_CONTINUE; nobody ever
 * sees half a page.
 *
 * Where pages come from is the page source's business (ops below): the
 * postcopy destination asks the migration source over the return path; a
 * lazy loadvm would read the snapshot's vmstate area. The pager only keeps
 * which pages are there ("received"), which were asked for and are still
 * awaited ("requested": de-duplicated, asked again after a reconnect), and
 * the statistics: fault -> placed latency and, per vCPU, the time blocked.
 *
 * Invariant the caller keeps: before uffd_pager_start every page of the
 * block is either received (its content is in the memfd, a hole meaning
 * zero) or dropped with uffd_pager_discard; afterwards pages only arrive
 * through uffd_pager_place. A missing fault on a received page is
 * therefore a zero page that was never allocated, and is filled with
 * zeroes at once; a minor one is a placed page, mapped at once.
 */
#ifndef MIGRATION_UFFD_PAGER_H
#define MIGRATION_UFFD_PAGER_H

#include "hw/core/guest-memory.h"
#include "tern/error.h"
#include "tern/histogram.h"

#define UFFD_PAGE_SIZE 4096

typedef struct UffdPageSourceOps {
    /* Fault thread: fetch the page at 'offset' of the block; it comes back
     * through uffd_pager_place, on any thread. False when the source cannot
     * be reached now: the page stays requested and is asked for again by
     * uffd_pager_resend_requests. */
    bool (*request)(void *opaque, uint64_t offset);
    /* The vCPU index of Linux thread 'tid', or -1 (not a vCPU). Optional:
     * without it no fault is charged to a vCPU. */
    int (*vcpu_of_thread)(void *opaque, int64_t tid);
} UffdPageSourceOps;

typedef struct UffdPagerStats {
    uint64_t faults;            /* fault messages read */
    uint64_t requests;          /* pages asked of the source (first time) */
    uint64_t placed;            /* pages installed by uffd_pager_place */
    uint64_t zero_faults;       /* faults on received zero pages */
    uint64_t missing;           /* pages not received yet */
    Histogram latency;          /* ns, first fault -> page placed */
    /* Blocktime, QEMU's definition: milliseconds during which every vCPU
     * waited for a page at once, and each vCPU's own waiting time. */
    uint64_t blocktime_ms;
    unsigned nr_vcpus;
    uint64_t *vcpu_blocktime_ms;    /* nr_vcpus entries, g_free them */
} UffdPagerStats;

typedef struct UffdPager UffdPager;

/* Whether this host can do it (userfaultfd with missing faults on shmem,
 * and guest RAM in 4 KiB pages); the reason otherwise. */
bool uffd_pager_supported(GError **errp);
/* The shmem transparent huge page policy, as sysfs words it ("always
 * within_size advise [never] deny force"): with always, within_size or
 * force a memfd's pages may be huge, and a 4 KiB discard inside one only
 * zeroes it, present, so the guest would read zeroes where a page is
 * still to come. */
bool uffd_pager_shmem_thp_ok(const char *policy, GError **errp);

/* A pager over the whole of 'mem' (ram_size bytes of memfd, which must
 * outlive it); nothing is received and nothing registered yet. */
UffdPager *uffd_pager_new(const GuestMemory *mem, unsigned nr_vcpus,
                          const UffdPageSourceOps *ops, void *opaque,
                          GError **errp);
/* Stops the fault thread and closes the userfaultfd: anyone still waiting
 * for a page wakes up and finds a fresh zero page, or the old content of a
 * discarded one (only at teardown). */
void uffd_pager_free(UffdPager *p);

uint64_t uffd_pager_length(const UffdPager *p);
/* Before start: the page at 'offset' holds its final content already. */
void uffd_pager_mark_received(UffdPager *p, uint64_t offset);
/* Before start: drop [offset, offset + len) (page aligned, inside the
 * block): the pages are not received, and their old content never reaches
 * anyone again. With minor faults (the default where the kernel has them)
 * the guest's mapping of the range is dropped and the pages wait in the
 * memfd for their new content; otherwise (or where the range is locked in
 * RAM) the memfd range becomes a hole, which costs freeing every page now
 * and allocating it again later. */
bool uffd_pager_discard(UffdPager *p, uint64_t offset, uint64_t len,
                        GError **errp);
/* Before any discard: whether discards keep pages in the memfd (only where
 * the kernel has minor faults on shmem); off, they punch holes. */
void uffd_pager_keep_discarded(UffdPager *p, bool on);
/* Register the block with userfaultfd and start the fault thread. */
bool uffd_pager_start(UffdPager *p, GError **errp);
bool uffd_pager_started(const UffdPager *p);

/* Any thread, after start: install the page at 'offset' ('data' NULL: a
 * zero page). A page already received is left as it is (true). */
bool uffd_pager_place(UffdPager *p, uint64_t offset, const void *data,
                      GError **errp);
bool uffd_pager_received(const UffdPager *p, uint64_t offset);
/* Ask the source again for every page still awaited (after a reconnect). */
void uffd_pager_resend_requests(UffdPager *p);
/* The received bitmap as little-endian 64-bit words, one bit per page,
 * rounded up to whole words: *len bytes (g_free the result). */
uint8_t *uffd_pager_received_words(UffdPager *p, size_t *len);
/* Every page is there: unregister (the guest runs on plain memory again)
 * and stop the fault thread. Fails, leaving everything as it was, if any
 * page is still missing. */
bool uffd_pager_finish(UffdPager *p, GError **errp);
/* Teardown while pages are missing (the VMM quits, the load failed): let
 * every thread waiting for a page run on, finding zero pages or a discarded
 * page's old content; placement fails from now on. */
void uffd_pager_abandon(UffdPager *p);
void uffd_pager_get_stats(UffdPager *p, UffdPagerStats *out);

#endif
