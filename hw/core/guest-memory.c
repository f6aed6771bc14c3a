/*
 * Guest-physical address translation over the machine's RAM regions, and the
 * e820 map builder. Every access path that takes a guest-supplied address goes
 * through guest_mem_ptr(), which checks the whole range (with overflow checks).
 */
#include <string.h>

#include "sysemu/guest-memory.h"
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
