/*
 * The postcopy half of RAM migration (include/migration/ram.h).
 *
 * Source: at the switchover every page still dirty is dropped on the
 * destination with POSTCOPY_RAM_DISCARD (u8 0, u8 len, block name, u8 0,
 * then be64 start + be64 length ranges in bytes, as many as the 16-bit
 * command length allows); afterwards pages the destination asks for
 * (REQ_PAGES) are taken off the dirty bitmap and sent ahead of the
 * background stream: queued for the migration thread, which serves the
 * queue before each background page, or, with a preempt channel, written
 * there by the return-path thread at once. A page leaves the dirty bitmap
 * exactly once, under rm->lock, whichever thread sends it. Recovery turns
 * the destination's received bitmap back into the dirty bitmap.
 *
 * Destination: discards drop pages before the guest may run; afterwards
 * ram.c places every page through the pager; the preempt channel carries
 * bare page records ending with EOS, as QEMU 7.2 sends them.
 */
#include <string.h>

#include "ram-int.h"

#define STAT_ADD(rm, field, n) \
    __atomic_fetch_add(&(rm)->stats.field, (n), __ATOMIC_RELAXED)

void ram_migration_set_postcopy(RamMigration *rm, bool capable, bool preempt)
{
    rm->postcopy_capable = capable;
    rm->preempt = preempt;
}

/* ---- source: the switchover ---- */

static bool send_discards(RamMigration *rm, QEMUFile *f, GError **errp)
{
    size_t max = (UINT16_MAX - 3 - strlen(rm->block_name)) / 16, n = 0;
    g_autofree uint64_t *starts = g_new(uint64_t, max);
    g_autofree uint64_t *lens = g_new(uint64_t, max);
    uint64_t npages = rm->length / RAM_PAGE_SIZE, pos = 0, s, c;

    while (hbitmap_next_set_area(rm->dirty, pos, npages, &s, &c)) {
        starts[n] = s * RAM_PAGE_SIZE;
        lens[n] = c * RAM_PAGE_SIZE;
        pos = s + c;
        if (++n == max) {
            if (!savevm_send_postcopy_ram_discard(f, rm->block_name, n,
                                                  starts, lens, errp)) {
                return false;
            }
            n = 0;
        }
    }
    return !n || savevm_send_postcopy_ram_discard(f, rm->block_name, n,
                                                  starts, lens, errp);
}

bool ram_migration_postcopy_start(RamMigration *rm, QEMUFile *f,
                                  GError **errp)
{
    bool ok;

    if (!rm->dirty) {
        return tern_invalid(errp, "ram: postcopy without a running migration");
    }
    if (!ram_sync_dirty(rm, errp)) {
        return false;
    }
    g_mutex_lock(&rm->lock);
    ok = send_discards(rm, f, errp);
    rm->in_postcopy = ok;
    g_mutex_unlock(&rm->lock);
    return ok && qemu_file_check(f, errp);
}

/* ---- source: requested pages ---- */

static bool check_request(RamMigration *rm, const char *block, uint64_t start,
                          uint64_t len, GError **errp)
{
    if (!rm->in_postcopy) {
        return tern_invalid(errp, "page request outside postcopy");
    }
    if (block && strcmp(block, rm->block_name)) {
        return tern_invalid(errp, "page request for unknown RAM block '%s'",
                            block);
    }
    if (!block && !rm->request_named) {
        return tern_invalid(errp, "page request before any request named its "
                            "RAM block");
    }
    rm->request_named = true;
    if (!len || !IS_ALIGNED(start, RAM_PAGE_SIZE) ||
        !IS_ALIGNED(len, RAM_PAGE_SIZE)) {
        return tern_invalid(errp, "misaligned page request: start 0x%" PRIx64
                            " length 0x%" PRIx64, start, len);
    }
    if (start >= rm->length || len > rm->length - start) {
        return tern_invalid(errp, "page request 0x%" PRIx64 "+0x%" PRIx64
                            " overruns RAM block '%s' (0x%" PRIx64 " bytes)",
                            start, len, rm->block_name, rm->length);
    }
    return true;
}

static bool take_dirty(RamMigration *rm, uint64_t page)
{
    bool dirty;

    g_mutex_lock(&rm->lock);
    dirty = ram_take_dirty(rm, page);
    g_mutex_unlock(&rm->lock);
    return dirty;
}

/* The pages of [start, start+len) not sent yet, on 'f' now. */
static void send_range(RamMigration *rm, QEMUFile *f, uint64_t start,
                       uint64_t len, bool *named)
{
    for (uint64_t page = start / RAM_PAGE_SIZE;
         page < (start + len) / RAM_PAGE_SIZE; page++) {
        if (take_dirty(rm, page)) {
            ram_send_page(rm, f, page, named);
        }
    }
    qemu_fflush(f);
}

static bool queue_request(RamMigration *rm, uint64_t start, uint64_t len,
                          GError **errp)
{
    /* A destination asks for each page at most once per connection. */
    uint64_t cap = MAX(rm->length / RAM_PAGE_SIZE, 1024);
    RamRequest *r;

    g_mutex_lock(&rm->lock);
    if (rm->requests.length >= cap) {
        g_mutex_unlock(&rm->lock);
        return tern_invalid(errp, "more than %" PRIu64 " page requests pending",
                            cap);
    }
    r = g_new(RamRequest, 1);
    r->offset = start;
    r->len = len;
    g_queue_push_tail(&rm->requests, r);
    g_atomic_int_inc(&rm->nr_requests);
    g_mutex_unlock(&rm->lock);
    return true;
}

bool ram_migration_request(RamMigration *rm, const char *block,
                           uint64_t start, uint64_t len, QEMUFile *urgent,
                           GError **errp)
{
    if (!check_request(rm, block, start, len, errp)) {
        return false;
    }
    STAT_ADD(rm, postcopy_requests, 1);
    if (!urgent) {
        return queue_request(rm, start, len, errp);
    }
    g_mutex_lock(&rm->urgent_lock);
    send_range(rm, urgent, start, len, &rm->urgent_named);
    g_mutex_unlock(&rm->urgent_lock);
    return qemu_file_check(urgent, errp);
}

void ram_serve_requests(RamMigration *rm, QEMUFile *f)
{
    while (g_atomic_int_get(&rm->nr_requests)) {
        RamRequest *r;

        g_mutex_lock(&rm->lock);
        r = g_queue_pop_head(&rm->requests);
        if (r) {
            g_atomic_int_add(&rm->nr_requests, -1);
        }
        g_mutex_unlock(&rm->lock);
        if (!r) {
            return;
        }
        send_range(rm, f, r->offset, r->len, &rm->block_named);
        g_free(r);
    }
}

void ram_migration_end_urgent(RamMigration *rm, QEMUFile *f)
{
    /* After any page a request is sending right now. */
    g_mutex_lock(&rm->urgent_lock);
    qemu_put_be64(f, RAM_FLAG_EOS);
    qemu_fflush(f);
    g_mutex_unlock(&rm->urgent_lock);
}

/* ---- source: recovery ---- */

uint64_t ram_migration_recv_bitmap_size(const RamMigration *rm)
{
    return ALIGN_UP(DIV_ROUND_UP(rm->length / RAM_PAGE_SIZE, 8), 8);
}

/* dirty := every page 'recv' lacks. */
static void dirty_from_received(RamMigration *rm, const HBitmap *recv)
{
    uint64_t npages = rm->length / RAM_PAGE_SIZE;
    int64_t zero;

    hbitmap_reset_all(rm->dirty);
    for (uint64_t pos = 0; pos < npages; ) {
        int64_t next;

        zero = hbitmap_next_zero(recv, pos, npages - pos);
        if (zero < 0) {
            break;
        }
        next = hbitmap_next_set(recv, zero);
        next = next < 0 ? (int64_t)npages : next;
        hbitmap_set(rm->dirty, zero, next - zero);
        pos = next;
    }
}

static bool read_recv_bitmap(RamMigration *rm, QEMUFile *rp, HBitmap *recv,
                             GError **errp)
{
    uint64_t want = ram_migration_recv_bitmap_size(rm);
    uint64_t size = qemu_get_be64(rp), end;
    g_autofree uint8_t *buf = NULL;

    if (!qemu_file_check(rp, errp)) {
        return false;
    }
    if (size != want) {
        return tern_invalid(errp, "received bitmap of '%s' has %" PRIu64
                            " bytes, expected %" PRIu64, rm->block_name, size,
                            want);
    }
    buf = g_malloc(want);
    qemu_get_buffer(rp, buf, want);
    end = qemu_get_be64(rp);
    if (!qemu_file_check(rp, errp)) {
        return false;
    }
    if (end != RAM_RECV_BITMAP_END) {
        return tern_invalid(errp, "received bitmap of '%s' ends with 0x%" PRIx64
                            ", not its end mark", rm->block_name, end);
    }
    hbitmap_load_words(recv, 0, want / 8, buf);
    return true;
}

bool ram_migration_load_recv_bitmap(RamMigration *rm, QEMUFile *rp,
                                    const char *block, GError **errp)
{
    g_autoptr(HBitmap) recv = NULL;

    if (strcmp(block, rm->block_name)) {
        return tern_invalid(errp, "received bitmap for unknown RAM block '%s'",
                            block);
    }
    if (!rm->dirty || !rm->in_postcopy) {
        return tern_invalid(errp, "received bitmap outside postcopy");
    }
    recv = hbitmap_try_new(rm->length / RAM_PAGE_SIZE);
    if (!recv) {
        return tern_fail(errp, TERN_ERR_FAILED,
                         "no memory for the received bitmap");
    }
    if (!read_recv_bitmap(rm, rp, recv, errp)) {
        return false;
    }
    g_mutex_lock(&rm->lock);
    dirty_from_received(rm, recv);
    rm->cursor = 0;
    g_queue_clear_full(&rm->requests, g_free);
    g_queue_init(&rm->requests);
    g_atomic_int_set(&rm->nr_requests, 0);
    rm->block_named = rm->urgent_named = rm->request_named = false;
    g_mutex_unlock(&rm->lock);
    return true;
}

/* ---- destination ---- */

void ram_migration_set_pager(RamMigration *rm, UffdPager *pager)
{
    g_mutex_lock(&rm->lock);
    rm->pager = pager;
    if (pager && rm->mf_recv) {
        multifd_recv_map_pages(rm->mf_recv);
    }
    g_mutex_unlock(&rm->lock);
}

bool ram_migration_discard(RamMigration *rm, const char *block,
                           uint64_t start, uint64_t len, GError **errp)
{
    if (strcmp(block, rm->block_name)) {
        return tern_invalid(errp, "RAM_DISCARD for unknown RAM block '%s'",
                            block);
    }
    if (!rm->pager) {
        return tern_invalid(errp, "RAM_DISCARD without RAM postcopy");
    }
    if (!uffd_pager_discard(rm->pager, start, len, errp)) {
        g_prefix_error(errp, "RAM_DISCARD in block '%s': ", block);
        return false;
    }
    return true;
}

bool ram_migration_load_urgent(RamMigration *rm, QEMUFile *f, GError **errp)
{
    return ram_load_records(rm, f, &rm->urgent_load_named, errp);
}
