/*
 * RAM migration: the "ram" live section (version 4) over one RAM block made
 * of GuestMemory's regions. The source keeps a dirty bitmap of the block's
 * pages: all set at setup (the bulk stage), refilled by the dirty-sync
 * callback when the migration core asks for the exact pending figure, and drained
 * by iterations that stop at the rate limit or after 50 ms. Record layout:
 * be64 (page offset | flags), the block name unless CONTINUE, then one fill
 * byte (ZERO) or the page (PAGE); every section's data ends with EOS. The
 * destination validates each record and writes pages into guest memory (or,
 * in postcopy, has the pager place them). Postcopy's own steps are in
 * ram-postcopy.c.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ram-int.h"

/* An iteration yields after this long so the core can re-plan. */
#define RAM_ITERATE_MAX_NS  (50 * 1000 * 1000)
/* Postcopy without a preempt channel: background pages go out in writes of
 * this many, so a requested page waits behind one of them at most (a write
 * of the QEMUFile's whole iovec would hold 32 pages). */
#define RAM_POSTCOPY_BURST  8

#define STAT_ADD(rm, field, n) \
    __atomic_fetch_add(&(rm)->stats.field, (n), __ATOMIC_RELAXED)

RamMigration *ram_migration_new(GuestMemory *mem, const char *block_name)
{
    RamMigration *rm = g_new0(RamMigration, 1);

    g_assert(strlen(block_name) <= 255);
    rm->mem = mem;
    g_strlcpy(rm->block_name, block_name, sizeof(rm->block_name));
    rm->length = mem->ram_size;
    rm->stats.total = mem->ram_size;
    g_mutex_init(&rm->lock);
    g_mutex_init(&rm->urgent_lock);
    g_queue_init(&rm->requests);
    return rm;
}

void ram_migration_free(RamMigration *rm)
{
    if (rm) {
        hbitmap_free(rm->dirty);
        hbitmap_free(rm->holes);
        g_queue_clear_full(&rm->requests, g_free);
        g_mutex_clear(&rm->urgent_lock);
        g_mutex_clear(&rm->lock);
        g_free(rm);
    }
}

void ram_migration_set_dirty_sync(RamMigration *rm, RamDirtySyncFn fn,
                                  void *opaque)
{
    g_mutex_lock(&rm->lock);
    rm->sync = fn;
    rm->sync_opaque = opaque;
    g_mutex_unlock(&rm->lock);
}

void ram_migration_set_batch(RamMigration *rm, unsigned pages)
{
    rm->batch = pages;
}

RamMigrationStats ram_migration_stats(const RamMigration *rm)
{
    RamMigration *m = (RamMigration *)rm;
    RamMigrationStats s;

    g_mutex_lock(&m->lock);
    s = rm->stats;
    s.remaining = rm->dirty ? hbitmap_count(rm->dirty) * RAM_PAGE_SIZE : 0;
    if (rm->mf_send) {
        MultifdSendStats ms;

        multifd_send_get_stats(rm->mf_send, &ms);
        s.zero_copy_copied = ms.zero_copy_copied;
    }
    g_mutex_unlock(&m->lock);
    return s;
}

const char *ram_migration_block_name(const RamMigration *rm)
{
    return rm->block_name;
}

uint8_t *ram_block_page(const RamMigration *rm, uint64_t offset)
{
    for (unsigned i = 0; i < rm->mem->nr_regions; i++) {
        const GuestRegion *r = &rm->mem->regions[i];

        if (offset >= r->fd_offset && offset - r->fd_offset < r->size) {
            return r->hva + (offset - r->fd_offset);
        }
    }
    return NULL;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;

    for (size_t i = 0; i < RAM_PAGE_SIZE / 8; i++) {
        if (w[i]) {
            return false;
        }
    }
    return true;
}

/*
 * The memfd's holes: pages never written, which read as zero. Reading them
 * to find that out would allocate and clear a shmem page each (the main cost
 * of migrating a mostly empty guest), so both ends consult this instead.
 * NULL for heap-backed memory or when the memfd cannot say.
 */
static HBitmap *memfd_holes(const RamMigration *rm)
{
    int fd = rm->mem->fd;
    off_t end = rm->length, pos = 0;
    HBitmap *h;

    if (fd < 0 || !(h = hbitmap_try_new(rm->length / RAM_PAGE_SIZE))) {
        return NULL;
    }
    while (pos < end) {
        off_t data = lseek(fd, pos, SEEK_DATA);
        uint64_t first = DIV_ROUND_UP(pos, RAM_PAGE_SIZE);

        if (data < 0 && errno != ENXIO) {
            hbitmap_free(h);
            return NULL;
        }
        data = data < 0 ? end : MIN(data, end);
        if ((uint64_t)data / RAM_PAGE_SIZE > first) {
            hbitmap_set(h, first, data / RAM_PAGE_SIZE - first);
        }
        if (data >= end) {
            break;
        }
        pos = lseek(fd, data, SEEK_HOLE);
        if (pos < 0) {
            hbitmap_free(h);
            return NULL;
        }
    }
    return h;
}

/* A page is sent or written once as a hole at most. */
bool ram_take_hole(RamMigration *rm, uint64_t page)
{
    if (!rm->holes || !hbitmap_get(rm->holes, page)) {
        return false;
    }
    hbitmap_reset(rm->holes, page, 1);
    return true;
}

/* ---- source ---- */

static void put_record_header(RamMigration *rm, QEMUFile *f, uint64_t offset,
                              uint32_t flags, bool *named)
{
    if (*named) {
        qemu_put_be64(f, offset | flags | RAM_FLAG_CONTINUE);
        return;
    }
    /* The first page of every section names its block, so each section can
     * be read on its own (postcopy, packaged streams, tools). */
    qemu_put_be64(f, offset | flags);
    qemu_put_counted_string(f, rm->block_name);
    *named = true;
}

void ram_send_page(RamMigration *rm, QEMUFile *f, uint64_t page, bool *named)
{
    uint64_t offset = page * RAM_PAGE_SIZE;
    const uint8_t *p = ram_block_page(rm, offset);
    bool hole;

    if (!p) {
        return;     /* a hole between regions: nothing to migrate */
    }
    g_mutex_lock(&rm->lock);
    hole = ram_take_hole(rm, page);
    g_mutex_unlock(&rm->lock);
    /* A hole the guest wrote since setup is in the dirty log: sent again. */
    if (hole || page_is_zero(p)) {
        put_record_header(rm, f, offset, RAM_FLAG_ZERO, named);
        qemu_put_byte(f, 0);
        STAT_ADD(rm, duplicate, 1);
    } else if (ram_multifd_send_page(rm, f, offset)) {
        STAT_ADD(rm, normal, 1);
    } else {
        put_record_header(rm, f, offset, RAM_FLAG_PAGE, named);
        qemu_put_buffer_async(f, p, RAM_PAGE_SIZE);
        STAT_ADD(rm, normal, 1);
    }
}

bool ram_take_dirty(RamMigration *rm, uint64_t page)
{
    bool dirty = rm->dirty && hbitmap_get(rm->dirty, page);

    if (dirty) {
        hbitmap_reset(rm->dirty, page, 1);
    }
    return dirty;
}

/* The end of a section's RAM data. With multifd the destination's channels
 * wait at their SYNC for it: it must not sit in the buffer. */
static void put_eos(RamMigration *rm, QEMUFile *f)
{
    qemu_put_be64(f, RAM_FLAG_EOS);
    if (rm->mf_send) {
        qemu_fflush(f);
    }
}

static bool ram_save_setup(QEMUFile *f, void *opaque, GError **errp)
{
    RamMigration *rm = opaque;
    uint64_t start = qemu_file_tell(f);

    HBitmap *dirty = hbitmap_try_new(rm->length / RAM_PAGE_SIZE);
    HBitmap *holes = memfd_holes(rm);

    if (!dirty) {
        hbitmap_free(holes);
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                    "no memory for the RAM dirty bitmap");
        return false;
    }
    hbitmap_set_all(dirty);
    g_mutex_lock(&rm->lock);
    hbitmap_free(rm->dirty);
    rm->dirty = dirty;
    hbitmap_free(rm->holes);
    rm->holes = holes;
    rm->cursor = 0;
    rm->in_postcopy = false;
    rm->stats.dirty_sync_count = 1;
    g_mutex_unlock(&rm->lock);
    qemu_put_be64(f, rm->length | RAM_FLAG_MEM_SIZE);
    qemu_put_counted_string(f, rm->block_name);
    qemu_put_be64(f, rm->length);
    if (!ram_multifd_sync(rm, f, false, errp)) {
        return false;
    }
    put_eos(rm, f);
    STAT_ADD(rm, transferred, qemu_file_tell(f) - start);
    return true;
}

/* The next dirty page from the cursor on, taken off the bitmap; -1 when
 * none is left. */
static int64_t next_dirty_page(RamMigration *rm)
{
    int64_t page;

    g_mutex_lock(&rm->lock);
    page = hbitmap_next_set(rm->dirty, rm->cursor);
    if (page < 0 && rm->cursor) {
        page = hbitmap_next_set(rm->dirty, 0);
    }
    if (page >= 0) {
        hbitmap_reset(rm->dirty, page, 1);
        rm->cursor = page + 1;
    }
    g_mutex_unlock(&rm->lock);
    return page;
}

static bool any_dirty(RamMigration *rm)
{
    bool any;

    g_mutex_lock(&rm->lock);
    any = hbitmap_count(rm->dirty) > 0;
    g_mutex_unlock(&rm->lock);
    return any;
}

/* Send dirty pages from the cursor on; false when the bitmap is empty.
 * In postcopy, pages the destination waits for go first. */
static bool send_dirty_pages(RamMigration *rm, QEMUFile *f, bool limited)
{
    gint64 deadline = g_get_monotonic_time() * 1000 + RAM_ITERATE_MAX_NS;
    unsigned sent = 0;

    for (;;) {
        int64_t page;

        if (rm->in_postcopy) {
            ram_serve_requests(rm, f);
        }
        page = next_dirty_page(rm);
        if (page < 0) {
            return false;
        }
        ram_send_page(rm, f, page, &rm->block_named);
        sent++;
        if (rm->in_postcopy && !rm->preempt && sent % RAM_POSTCOPY_BURST == 0) {
            qemu_fflush(f);
        }
        if (limited && ((rm->batch && sent >= rm->batch) ||
                        qemu_file_rate_limit_exceeded(f) ||
                        (sent % 64 == 0 &&
                         g_get_monotonic_time() * 1000 > deadline))) {
            return any_dirty(rm);
        }
    }
}

static int ram_save_iterate(QEMUFile *f, void *opaque, GError **errp)
{
    RamMigration *rm = opaque;
    uint64_t start = qemu_file_tell(f);
    bool more;

    rm->block_named = false;
    more = send_dirty_pages(rm, f, true);
    /* A failed channel says more than the main stream's EPIPE. */
    if (!ram_multifd_sync(rm, f, false, errp)) {
        return -1;
    }
    put_eos(rm, f);
    STAT_ADD(rm, transferred, qemu_file_tell(f) - start);
    if (!qemu_file_check(f, errp)) {
        return -1;
    }
    return more ? 0 : 1;
}

bool ram_sync_dirty(RamMigration *rm, GError **errp)
{
    uint64_t before;
    bool ok;

    g_mutex_lock(&rm->lock);
    if (!rm->sync) {
        g_mutex_unlock(&rm->lock);
        return true;
    }
    before = hbitmap_count(rm->dirty);
    rm->stats.dirty_sync_count++;
    ok = rm->sync(rm->sync_opaque, rm->dirty, errp);
    /* Pages already dirty and dirtied again count once: an approximation
     * auto-converge shares with QEMU, which counts per sync too. */
    rm->stats.dirtied_pages += hbitmap_count(rm->dirty) - before;
    g_mutex_unlock(&rm->lock);
    return ok;
}

/* Precopy's final burst (VM stopped) and postcopy's end (nothing should be
 * left then but what the last iteration missed). */
static bool ram_save_complete(QEMUFile *f, void *opaque, GError **errp)
{
    RamMigration *rm = opaque;
    uint64_t start = qemu_file_tell(f);

    if (!rm->in_postcopy && !ram_sync_dirty(rm, errp)) {
        return false;
    }
    rm->block_named = false;
    send_dirty_pages(rm, f, false);
    if (!ram_multifd_sync(rm, f, false, errp)) {
        return false;
    }
    put_eos(rm, f);
    STAT_ADD(rm, transferred, qemu_file_tell(f) - start);
    /* The end: every page out of the channels, and read by the peer. */
    if (rm->mf_send) {
        if (!multifd_send_flush(rm->mf_send, errp)) {
            return false;
        }
    }
    return qemu_file_check(f, errp);
}

static void ram_save_pending(void *opaque, uint64_t *must_precopy,
                             uint64_t *can_postcopy)
{
    RamMigration *rm = opaque;

    g_mutex_lock(&rm->lock);
    if (rm->dirty) {
        *must_precopy += hbitmap_count(rm->dirty) * RAM_PAGE_SIZE;
    }
    g_mutex_unlock(&rm->lock);
}

/* The exact figure includes what the guest dirtied since the last sync. A
 * failed sync is reported at completion, which syncs again. */
static void ram_save_pending_exact(void *opaque, uint64_t *must_precopy,
                                   uint64_t *can_postcopy)
{
    RamMigration *rm = opaque;

    if (rm->dirty) {
        g_autoptr(GError) err = NULL;

        ram_sync_dirty(rm, &err);
    }
    ram_save_pending(opaque, must_precopy, can_postcopy);
}

static void ram_save_cleanup(void *opaque)
{
    RamMigration *rm = opaque;

    g_mutex_lock(&rm->lock);
    hbitmap_free(rm->dirty);
    rm->dirty = NULL;
    hbitmap_free(rm->holes);
    rm->holes = NULL;
    g_queue_clear_full(&rm->requests, g_free);
    g_atomic_int_set(&rm->nr_requests, 0);
    rm->in_postcopy = false;
    g_mutex_unlock(&rm->lock);
}

static bool ram_has_postcopy(void *opaque)
{
    RamMigration *rm = opaque;

    return rm->postcopy_capable;
}

/* ---- destination ---- */

static bool load_mem_size(RamMigration *rm, QEMUFile *f, uint64_t total,
                          GError **errp)
{
    char name[256];
    uint64_t len;

    if (total != rm->length) {
        return tern_invalid(errp, "ram: stream has %" PRIu64 " bytes of RAM, "
                            "this VM %" PRIu64, total, rm->length);
    }
    qemu_get_counted_string(f, name);
    len = qemu_get_be64(f);
    if (!qemu_file_check(f, errp)) {
        return false;
    }
    if (strcmp(name, rm->block_name)) {
        return tern_invalid(errp, "ram: unknown RAM block '%s'", name);
    }
    if (len != rm->length) {
        return tern_invalid(errp, "ram: block '%s' has %" PRIu64 " bytes in "
                            "the stream, %" PRIu64 " here", name, len,
                            rm->length);
    }
    return true;
}

static uint8_t *load_page_target(RamMigration *rm, QEMUFile *f,
                                 uint64_t offset, uint32_t flags,
                                 bool *named, GError **errp)
{
    char name[256];
    uint8_t *p;

    if (!(flags & RAM_FLAG_CONTINUE)) {
        qemu_get_counted_string(f, name);
        if (!qemu_file_check(f, errp)) {
            return NULL;
        }
        if (strcmp(name, rm->block_name)) {
            tern_invalid(errp, "ram: page for unknown RAM block '%s'", name);
            return NULL;
        }
        *named = true;
    } else if (!*named) {
        tern_invalid(errp, "ram: CONTINUE page before any named block");
        return NULL;
    }
    p = offset < rm->length ? ram_block_page(rm, offset) : NULL;
    if (!p) {
        tern_invalid(errp, "ram: page offset 0x%" PRIx64 " is outside block "
                     "'%s'", offset, rm->block_name);
    }
    return p;
}

/* A page into a memfd hole: pwrite(2) fills a new shmem page without the
 * fault and the clearing that a store through the mapping costs. Not while
 * a postcopy pager waits to start: it may take faults on pages the memfd
 * has but the guest's mapping lacks (minor faults, see uffd_pager_discard),
 * so precopy's pages go in through the mapping. */
static bool load_page_data(RamMigration *rm, QEMUFile *f, uint64_t offset,
                           uint8_t *p)
{
    const uint8_t *src;

    if (rm->mem->fd >= 0 && !rm->pager &&
        qemu_peek_buffer(f, &src, RAM_PAGE_SIZE, 0) == RAM_PAGE_SIZE &&
        pwrite(rm->mem->fd, src, RAM_PAGE_SIZE, offset) == RAM_PAGE_SIZE) {
        qemu_file_skip(f, RAM_PAGE_SIZE);
        return true;
    }
    return qemu_get_buffer(f, p, RAM_PAGE_SIZE) == RAM_PAGE_SIZE;
}

/* Postcopy: the page goes in whole through the pager, never through the
 * mapping (touching a missing page here would wait for this very thread). */
static bool place_page(RamMigration *rm, QEMUFile *f, uint64_t offset,
                       uint32_t flags, GError **errp)
{
    uint8_t fill_page[RAM_PAGE_SIZE];
    const uint8_t *data = NULL;
    bool ok;

    if (flags & RAM_FLAG_ZERO) {
        uint8_t fill = qemu_get_byte(f);

        if (fill) {
            memset(fill_page, fill, sizeof(fill_page));
            data = fill_page;
        }
        STAT_ADD(rm, duplicate, 1);
    } else if (qemu_peek_buffer(f, &data, RAM_PAGE_SIZE, 0) != RAM_PAGE_SIZE) {
        return qemu_file_check(f, errp) &&
               tern_invalid(errp, "ram: truncated page at 0x%" PRIx64, offset);
    } else {
        STAT_ADD(rm, normal, 1);
    }
    ok = qemu_file_check(f, errp) &&
         uffd_pager_place(rm->pager, offset, data, errp);
    if (!(flags & RAM_FLAG_ZERO)) {
        qemu_file_skip(f, RAM_PAGE_SIZE);
    }
    return ok;
}

/* The holes bitmap is shared with the multifd channel threads. */
static bool take_hole_locked(RamMigration *rm, uint64_t page)
{
    bool hole;

    g_mutex_lock(&rm->lock);
    hole = ram_take_hole(rm, page);
    g_mutex_unlock(&rm->lock);
    return hole;
}

static bool is_hole_locked(RamMigration *rm, uint64_t page)
{
    bool hole;

    g_mutex_lock(&rm->lock);
    hole = rm->holes && hbitmap_get(rm->holes, page);
    g_mutex_unlock(&rm->lock);
    return hole;
}

static bool load_page(RamMigration *rm, QEMUFile *f, uint64_t offset,
                      uint32_t flags, bool *named, GError **errp)
{
    uint8_t *p = load_page_target(rm, f, offset, flags, named, errp);
    uint64_t page = offset / RAM_PAGE_SIZE;
    uint8_t fill;

    if (!p) {
        return false;
    }
    if (rm->pager && uffd_pager_started(rm->pager)) {
        return place_page(rm, f, offset, flags, errp);
    }
    if (flags & RAM_FLAG_ZERO) {
        fill = qemu_get_byte(f);
        /* Leave untouched zero pages unallocated in the memfd. */
        if (fill) {
            take_hole_locked(rm, page);
            memset(p, fill, RAM_PAGE_SIZE);
        } else if (!is_hole_locked(rm, page) && !page_is_zero(p)) {
            memset(p, 0, RAM_PAGE_SIZE);
        }
        STAT_ADD(rm, duplicate, 1);
    } else if (take_hole_locked(rm, page)) {
        load_page_data(rm, f, offset, p);
        STAT_ADD(rm, normal, 1);
    } else {
        /* Already allocated: a store through the mapping is cheapest. */
        qemu_get_buffer(f, p, RAM_PAGE_SIZE);
        STAT_ADD(rm, normal, 1);
    }
    if (rm->pager) {
        uffd_pager_mark_received(rm->pager, offset);
    }
    return qemu_file_check(f, errp);
}

static bool ram_load_setup(QEMUFile *f, void *opaque, GError **errp)
{
    RamMigration *rm = opaque;
    HBitmap *holes = memfd_holes(rm);

    rm->load_named = false;
    g_mutex_lock(&rm->lock);
    hbitmap_free(rm->holes);
    rm->holes = holes;
    g_mutex_unlock(&rm->lock);
    return true;
}

bool ram_load_records(RamMigration *rm, QEMUFile *f, bool *named,
                      GError **errp)
{
    for (;;) {
        uint64_t v = qemu_get_be64(f);
        uint32_t flags = v & RAM_FLAG_MASK;
        uint32_t kind = flags & ~RAM_FLAG_CONTINUE;
        bool ok;

        if (!qemu_file_check(f, errp)) {
            return false;
        }
        if (flags == RAM_FLAG_EOS) {
            return true;
        }
        if (flags == RAM_FLAG_MEM_SIZE) {
            ok = load_mem_size(rm, f, v & ~(uint64_t)RAM_FLAG_MASK, errp);
        } else if (kind == RAM_FLAG_ZERO || kind == RAM_FLAG_PAGE) {
            ok = load_page(rm, f, v & ~(uint64_t)RAM_FLAG_MASK, flags, named,
                           errp);
        } else {
            ok = tern_invalid(errp, "ram: unsupported record flags 0x%x",
                              flags);
        }
        if (!ok) {
            return false;
        }
    }
}

/* CONTINUE refers to the last named block, which QEMU may have named in an
 * earlier section: the state lives in rm, reset at load setup. */
static bool ram_load(QEMUFile *f, void *opaque, int version_id, GError **errp)
{
    RamMigration *rm = opaque;
    uint64_t start = qemu_file_tell(f);

    if (version_id != RAM_SECTION_VERSION) {
        return tern_invalid(errp, "ram: section version %d, expected %d",
                            version_id, RAM_SECTION_VERSION);
    }
    /* The main stream's EOS: the channels' pages of this section are in
     * before the next section's records. */
    if (!ram_load_records(rm, f, &rm->load_named, errp) ||
        !ram_multifd_recv_sync(rm, errp)) {
        return false;
    }
    STAT_ADD(rm, transferred, qemu_file_tell(f) - start);
    return true;
}

static void ram_load_cleanup(void *opaque)
{
    RamMigration *rm = opaque;

    g_mutex_lock(&rm->lock);
    hbitmap_free(rm->holes);
    rm->holes = NULL;
    g_mutex_unlock(&rm->lock);
}

static const SaveVMHandlers ram_handlers = {
    .save_setup = ram_save_setup,
    .save_live_iterate = ram_save_iterate,
    .save_live_complete_precopy = ram_save_complete,
    .save_pending = ram_save_pending,
    .save_pending_exact = ram_save_pending_exact,
    .save_cleanup = ram_save_cleanup,
    .has_postcopy = ram_has_postcopy,
    .save_live_complete_postcopy = ram_save_complete,
    .load_setup = ram_load_setup,
    .load_state = ram_load,
    .load_cleanup = ram_load_cleanup,
};

void ram_migration_register(RamMigration *rm, SaveVM *sv)
{
    savevm_register_live(sv, "ram", 0, RAM_SECTION_VERSION, &ram_handlers,
                         rm);
}
