/*
 * Guest-physical address translation over the machine's RAM regions, and the
 * e820 map builder. Every access path that takes a guest-supplied address goes
 * through guest_mem_ptr(), which checks the whole range (with overflow checks).
 */
#include <fcntl.h>
#include <string.h>

#include "hw/core/guest-memory.h"
#include "tern/error.h"

void *guest_mem_ptr(const GuestMemory *m, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < m->nr_regions; i++) {
        const GuestRegion *r = &m->regions[i];

        if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
            len <= r->size - (gpa - r->gpa)) {
            return r->hva + (gpa - r->gpa);
        }
    }
    return NULL;
}

bool guest_mem_write(const GuestMemory *m, uint64_t gpa, const void *buf,
                     uint64_t len, GError **errp)
{
    void *p = guest_mem_ptr(m, gpa, len);

    if (!p) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "guest range 0x%" PRIx64 "+0x%" PRIx64 " is not RAM", gpa, len);
        return false;
    }
    memcpy(p, buf, len);
    return true;
}

bool guest_mem_read(const GuestMemory *m, uint64_t gpa, void *buf,
                    uint64_t len, GError **errp)
{
    const void *p = guest_mem_ptr(m, gpa, len);

    if (!p) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "guest range 0x%" PRIx64 "+0x%" PRIx64 " is not RAM", gpa, len);
        return false;
    }
    memcpy(buf, p, len);
    return true;
}

/* The memfd offset of a host pointer into guest RAM (one mapping of it). */
static uint64_t fd_offset_of(const GuestMemory *m, const uint8_t *p)
{
    return (uint64_t)(p - m->regions[0].hva);
}

bool guest_mem_zero(const GuestMemory *m, uint64_t gpa, uint64_t len, GError **errp)
{
    uint8_t *p = guest_mem_ptr(m, gpa, len);
    uint8_t *first, *end;

    if (!p) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "guest range 0x%" PRIx64 "+0x%" PRIx64 " is not RAM", gpa, len);
        return false;
    }
    first = (uint8_t *)ALIGN_UP((uintptr_t)p, 4096);
    end = (uint8_t *)ALIGN_DOWN((uintptr_t)(p + len), 4096);
    /* Whole pages: a hole in the memfd reads as zero and costs no page
     * allocation (a loader's bss would otherwise fault in every page). */
    if (m->fd < 0 || first >= end ||
        fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  fd_offset_of(m, first), end - first) < 0) {
        memset(p, 0, len);
        return true;
    }
    memset(p, 0, first - p);
    memset(end, 0, p + len - end);
    return true;
}

bool guest_mem_add_e820(GuestMemory *m, uint64_t addr, uint64_t size,
                        uint32_t type, GError **errp)
{
    if (m->nr_e820 >= E820_MAX_ENTRIES) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "e820 map is full");
        return false;
    }
    m->e820[m->nr_e820++] = (E820Entry){ .addr = addr, .size = size, .type = type };
    return true;
}
