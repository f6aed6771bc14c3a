/*
 * RAM's multifd half (include/migration/ram.h): RAM owns the multifd
 * channels, since they carry nothing but its pages.
 *
 * Source: pages with data go to the channels as QEMU 7.2 sends them (not
 * after the switch to postcopy, where a page must arrive whole through
 * userfaultfd: then the main stream and the preempt channel carry them);
 * each of RAM's EOS follows a SYNC on every channel, in postcopy too, and
 * the last one waits until everything is out. The bytes count in the main
 * stream's position, so the rate limit, the bandwidth and 'transferred'
 * see them.
 *
 * Destination: pages land from the channel threads straight into the
 * memfd (or the mapping); before they do, RAM takes them out of its holes
 * bitmap (under its lock: the loader thread reads it for zero pages),
 * marks them received for a postcopy pager and refuses them once the pager
 * places pages. The loader waits for every channel's SYNC at each EOS.
 */
#include <string.h>
#include <unistd.h>

#include "ram-int.h"

#define STAT_ADD(rm, field, n) \
    __atomic_fetch_add(&(rm)->stats.field, (n), __ATOMIC_RELAXED)

/* ---- source ---- */

static const uint8_t *page_of(void *opaque, uint64_t offset)
{
    return ram_block_page(opaque, offset);
}

bool ram_migration_multifd_send_start(RamMigration *rm, const int *fds,
                                      unsigned n, bool zero_copy,
                                      const uint8_t uuid[16], GError **errp)
{
    MultifdSendConfig cfg = {
        .block = rm->block_name, .ram_fd = rm->mem->fd, .page = page_of,
        .opaque = rm, .zero_copy = zero_copy,
    };
    MultifdSend *s;

    memcpy(cfg.uuid, uuid, sizeof(cfg.uuid));
    s = multifd_send_new(&cfg, fds, n, errp);
    g_mutex_lock(&rm->lock);
    g_assert(!rm->mf_send);
    rm->mf_send = s;
    g_mutex_unlock(&rm->lock);
    return s != NULL;
}

bool ram_multifd_send_page(RamMigration *rm, QEMUFile *f, uint64_t offset)
{
    uint64_t bytes;

    if (!rm->mf_send || rm->in_postcopy) {
        return false;
    }
    bytes = multifd_send_page(rm->mf_send, offset);
    qemu_file_count_sent(f, bytes);
    STAT_ADD(rm, multifd_bytes, bytes);
    return true;
}

bool ram_multifd_sync(RamMigration *rm, QEMUFile *f, bool flush,
                      GError **errp)
{
    uint64_t bytes;

    if (!rm->mf_send) {
        return true;
    }
    bytes = multifd_send_sync(rm->mf_send);
    qemu_file_count_sent(f, bytes);
    STAT_ADD(rm, multifd_bytes, bytes);
    return flush ? multifd_send_flush(rm->mf_send, errp)
                 : multifd_send_check(rm->mf_send, errp);
}

/* ---- destination ---- */

static uint8_t *host_page(void *opaque, uint64_t offset)
{
    return ram_block_page(opaque, offset);
}

/* A channel thread, before the packet's pages land. */
static bool pages_arrive(void *opaque, const MultifdPacket *p, GError **errp)
{
    RamMigration *rm = opaque;

    if (rm->pager && uffd_pager_started(rm->pager)) {
        return tern_invalid(errp, "multifd: pages arrived after the switch "
                            "to postcopy");
    }
    for (uint32_t i = 0; i < p->pages; i++) {
        if (!ram_block_page(rm, p->offsets[i])) {
            return tern_invalid(errp, "multifd: page offset 0x%" PRIx64
                                " is in no RAM region", p->offsets[i]);
        }
    }
    g_mutex_lock(&rm->lock);
    for (uint32_t i = 0; i < p->pages; i++) {
        ram_take_hole(rm, p->offsets[i] / RAM_PAGE_SIZE);
    }
    g_mutex_unlock(&rm->lock);
    for (uint32_t i = 0; rm->pager && i < p->pages; i++) {
        uffd_pager_mark_received(rm->pager, p->offsets[i]);
    }
    STAT_ADD(rm, normal, p->pages);
    STAT_ADD(rm, multifd_bytes, MULTIFD_HEADER_SIZE +
                                (uint64_t)p->pages * RAM_PAGE_SIZE);
    return true;
}

void ram_migration_multifd_recv_start(RamMigration *rm, const int *fds,
                                      unsigned n, const uint8_t uuid[16])
{
    MultifdRecvConfig cfg = {
        .block = { rm->block_name, rm->length }, .ram_fd = rm->mem->fd,
        .page = host_page, .pages = pages_arrive, .opaque = rm,
    };
    MultifdRecv *r;

    memcpy(cfg.uuid, uuid, sizeof(cfg.uuid));
    r = multifd_recv_new(&cfg, fds, n);
    g_mutex_lock(&rm->lock);
    g_assert(!rm->mf_recv);
    rm->mf_recv = r;
    /* See load_page_data: precopy's pages go through the mapping. */
    if (rm->pager) {
        multifd_recv_map_pages(r);
    }
    g_mutex_unlock(&rm->lock);
}

bool ram_multifd_recv_sync(RamMigration *rm, GError **errp)
{
    return !rm->mf_recv || multifd_recv_sync(rm->mf_recv, errp);
}

/* ---- either end ---- */

void ram_migration_multifd_restart(RamMigration *rm, const int *fds,
                                   unsigned n)
{
    if (rm->mf_send) {
        multifd_send_restart(rm->mf_send, fds, n);
    } else if (rm->mf_recv) {
        multifd_recv_restart(rm->mf_recv, fds, n);
    } else {
        for (unsigned i = 0; i < n; i++) {
            close(fds[i]);
        }
    }
}

void ram_migration_multifd_shutdown(RamMigration *rm)
{
    g_mutex_lock(&rm->lock);
    if (rm->mf_send) {
        multifd_send_shutdown(rm->mf_send);
    }
    if (rm->mf_recv) {
        multifd_recv_shutdown(rm->mf_recv);
    }
    g_mutex_unlock(&rm->lock);
}

void ram_migration_multifd_stop(RamMigration *rm)
{
    MultifdSend *s;
    MultifdRecv *r;

    g_mutex_lock(&rm->lock);
    s = rm->mf_send;
    r = rm->mf_recv;
    rm->mf_send = NULL;
    rm->mf_recv = NULL;
    g_mutex_unlock(&rm->lock);
    multifd_send_free(s);
    multifd_recv_free(r);
}

void ram_migration_multifd_explain(RamMigration *rm, GError **errp)
{
    GError *err = NULL;

    if (!errp || !rm) {
        return;
    }
    if (rm->mf_send) {
        err = multifd_send_get_error(rm->mf_send);
    } else if (rm->mf_recv) {
        err = multifd_recv_get_error(rm->mf_recv);
    }
    if (err) {
        g_clear_error(errp);
        g_propagate_error(errp, err);
    }
}
