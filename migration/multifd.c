/*
 * The multifd wire format (include/migration/multifd.h): the initial packet
 * and the packet header, encoded and checked. Messages name what QEMU
 * 7.2's destination names, so a failing interop reads the same on both.
 */
#include <string.h>

#include "migration/multifd.h"

typedef struct TERN_PACKED InitWire {
    uint32_t magic;
    uint32_t version;
    uint8_t uuid[16];
    uint8_t id;
    uint8_t reserved1[7];
    uint64_t reserved2[4];
} InitWire;

typedef struct TERN_PACKED HeaderWire {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t pages_alloc;
    uint32_t normal_pages;
    uint32_t next_packet_size;
    uint64_t packet_num;
    uint64_t reserved[4];
    char block[256];
    uint64_t offsets[MULTIFD_PAGES_MAX];
} HeaderWire;

G_STATIC_ASSERT(sizeof(InitWire) == MULTIFD_INIT_SIZE);
G_STATIC_ASSERT(sizeof(HeaderWire) == MULTIFD_HEADER_SIZE);

void multifd_init_encode(uint8_t out[MULTIFD_INIT_SIZE],
                         const uint8_t uuid[16], uint8_t id)
{
    InitWire w = {
        .magic = GUINT32_TO_BE(MULTIFD_MAGIC),
        .version = GUINT32_TO_BE(MULTIFD_VERSION),
        .id = id,
    };

    memcpy(w.uuid, uuid, sizeof(w.uuid));
    memcpy(out, &w, sizeof(w));
}

static char *uuid_text(const uint8_t u[16])
{
    return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                           "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
                           u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                           u[12], u[13], u[14], u[15]);
}

bool multifd_init_decode(const uint8_t in[MULTIFD_INIT_SIZE],
                         const uint8_t uuid[16], unsigned channels,
                         uint8_t *id, GError **errp)
{
    InitWire w;

    memcpy(&w, in, sizeof(w));
    if (GUINT32_FROM_BE(w.magic) != MULTIFD_MAGIC) {
        return tern_invalid(errp, "multifd: received packet magic %x "
                            "expected %x", GUINT32_FROM_BE(w.magic),
                            MULTIFD_MAGIC);
    }
    if (GUINT32_FROM_BE(w.version) != MULTIFD_VERSION) {
        return tern_invalid(errp, "multifd: received packet version %u "
                            "expected %u", GUINT32_FROM_BE(w.version),
                            MULTIFD_VERSION);
    }
    if (memcmp(w.uuid, uuid, sizeof(w.uuid))) {
        g_autofree char *got = uuid_text(w.uuid), *want = uuid_text(uuid);

        return tern_invalid(errp, "multifd: received uuid '%s' and expected "
                            "uuid '%s' for channel %u", got, want, w.id);
    }
    if (w.id >= channels) {
        return tern_invalid(errp, "multifd: received channel id %u, but "
                            "multifd-channels is %u", w.id, channels);
    }
    *id = w.id;
    return true;
}

void multifd_packet_encode(uint8_t out[MULTIFD_HEADER_SIZE],
                           const MultifdPacket *p)
{
    HeaderWire *w = (HeaderWire *)out;

    memset(out, 0, MULTIFD_HEADER_SIZE);
    w->magic = GUINT32_TO_BE(MULTIFD_MAGIC);
    w->version = GUINT32_TO_BE(MULTIFD_VERSION);
    w->flags = GUINT32_TO_BE(p->flags);
    w->pages_alloc = GUINT32_TO_BE(MULTIFD_PAGES_MAX);
    w->normal_pages = GUINT32_TO_BE(p->pages);
    w->next_packet_size = GUINT32_TO_BE(p->pages * MULTIFD_PAGE_SIZE);
    w->packet_num = GUINT64_TO_BE(p->packet_num);
    if (p->pages) {
        g_strlcpy(w->block, p->block, sizeof(w->block));
    }
    for (uint32_t i = 0; i < p->pages; i++) {
        w->offsets[i] = GUINT64_TO_BE(p->offsets[i]);
    }
}

static bool decode_counts(const HeaderWire *w, MultifdPacket *out,
                          GError **errp)
{
    uint32_t alloc = GUINT32_FROM_BE(w->pages_alloc);
    uint32_t size = GUINT32_FROM_BE(w->next_packet_size);

    if (alloc > MULTIFD_PAGES_MAX) {
        return tern_invalid(errp, "multifd: received packet with size %u "
                            "and expected a size of %u", alloc,
                            MULTIFD_PAGES_MAX);
    }
    out->pages = GUINT32_FROM_BE(w->normal_pages);
    if (out->pages > alloc) {
        return tern_invalid(errp, "multifd: received packet with %u pages "
                            "and expected maximum pages are %u", out->pages,
                            alloc);
    }
    /* A packet without pages may repeat an earlier size (QEMU does). */
    if (out->pages && size != out->pages * MULTIFD_PAGE_SIZE) {
        return tern_invalid(errp, "multifd: packet of %u pages announces "
                            "%u bytes of data", out->pages, size);
    }
    return true;
}

static bool decode_offsets(const HeaderWire *w, const MultifdBlock *block,
                           MultifdPacket *out, GError **errp)
{
    memcpy(out->block, w->block, sizeof(out->block));
    out->block[sizeof(out->block) - 1] = '\0';
    if (strcmp(out->block, block->name)) {
        return tern_invalid(errp, "multifd: unknown ram block %s",
                            out->block);
    }
    for (uint32_t i = 0; i < out->pages; i++) {
        uint64_t off = GUINT64_FROM_BE(w->offsets[i]);

        if (block->length < MULTIFD_PAGE_SIZE ||
            off > block->length - MULTIFD_PAGE_SIZE) {
            return tern_invalid(errp, "multifd: offset too long %" PRIu64
                                " (max %" PRIu64 ")", off, block->length);
        }
        if (!IS_ALIGNED(off, MULTIFD_PAGE_SIZE)) {
            return tern_invalid(errp, "multifd: offset 0x%" PRIx64 " is not "
                                "page aligned", off);
        }
        out->offsets[i] = off;
    }
    return true;
}

bool multifd_packet_decode(const uint8_t in[MULTIFD_HEADER_SIZE],
                           const MultifdBlock *block, MultifdPacket *out,
                           GError **errp)
{
    const HeaderWire *w = (const HeaderWire *)in;
    uint32_t compression;

    if (GUINT32_FROM_BE(w->magic) != MULTIFD_MAGIC) {
        return tern_invalid(errp, "multifd: received packet magic %x and "
                            "expected magic %x", GUINT32_FROM_BE(w->magic),
                            MULTIFD_MAGIC);
    }
    if (GUINT32_FROM_BE(w->version) != MULTIFD_VERSION) {
        return tern_invalid(errp, "multifd: received packet version %u and "
                            "expected version %u",
                            GUINT32_FROM_BE(w->version), MULTIFD_VERSION);
    }
    out->flags = GUINT32_FROM_BE(w->flags);
    compression = out->flags & MULTIFD_FLAG_COMPRESSION_MASK;
    if (compression) {
        return tern_invalid(errp, "multifd: flags received %x flags expected "
                            "%x (no compression)", compression, 0);
    }
    if (out->flags & ~(MULTIFD_FLAG_SYNC | MULTIFD_FLAG_COMPRESSION_MASK)) {
        return tern_invalid(errp, "multifd: unknown packet flags 0x%x",
                            out->flags);
    }
    out->packet_num = GUINT64_FROM_BE(w->packet_num);
    out->block[0] = '\0';
    if (!decode_counts(w, out, errp)) {
        return false;
    }
    return !out->pages || decode_offsets(w, block, out, errp);
}

uint32_t multifd_packet_run_end(const MultifdPacket *p, uint32_t i)
{
    uint32_t j = i + 1;

    while (j < p->pages &&
           p->offsets[j] == p->offsets[j - 1] + MULTIFD_PAGE_SIZE) {
        j++;
    }
    return j;
}

void multifd_iov_advance(struct iovec **iov, int *cnt, size_t n)
{
    while (*cnt && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*cnt)--;
    }
    if (*cnt) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* ---- failures ---- */

void multifd_failure_set_locked(MultifdFailure *f, GError *err)
{
    if (!f->error && !f->failed) {
        f->error = g_steal_pointer(&err);
    }
    g_clear_error(&err);
    f->failed = true;
}

void multifd_failure_clear_locked(MultifdFailure *f)
{
    g_clear_error(&f->error);
    f->failed = false;
}

GError *multifd_failure_copy(MultifdFailure *f)
{
    GError *err;

    g_mutex_lock(f->lock);
    err = f->error ? g_error_copy(f->error) : NULL;
    g_mutex_unlock(f->lock);
    return err;
}

bool multifd_failure_check(MultifdFailure *f, GError **errp)
{
    bool failed;

    g_mutex_lock(f->lock);
    failed = f->failed;
    if (failed) {
        g_propagate_error(errp, f->error ? g_error_copy(f->error) :
                          g_error_new(TERN_ERROR, TERN_ERR_FAILED,
                                      "multifd channels shut down"));
    }
    g_mutex_unlock(f->lock);
    return !failed;
}
