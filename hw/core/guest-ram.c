/*
 * Guest RAM allocation: one memfd mapped shared, so that userfaultfd (postcopy,
 * lazy loadvm), KVM dirty logging and a second mapping for migration all see
 * the same pages. Regions are slices of the one mapping; see guest-memory.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hw/core/guest-memory.h"
#include "tern/error.h"

static uint64_t host_ram_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long psize = sysconf(_SC_PAGESIZE);

    return pages > 0 && psize > 0 ? (uint64_t)pages * psize : UINT64_MAX;
}

bool guest_mem_alloc(GuestMemory *m, uint64_t ram_size, uint64_t low_limit,
                     GError **errp)
{
    uint64_t low = MIN(ram_size, low_limit);
    uint8_t *hva;

    memset(m, 0, sizeof(*m));
    m->fd = -1;
    if (!ram_size || !IS_ALIGNED(ram_size, 4096) || !IS_ALIGNED(low_limit, 4096)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "RAM size 0x%" PRIx64 " is not a multiple of 4 KiB", ram_size);
        return false;
    }
    if (ram_size > host_ram_bytes()) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "RAM size %" PRIu64 " MiB exceeds the host's %" PRIu64 " MiB",
                    (uint64_t)(ram_size / MiB), (uint64_t)(host_ram_bytes() / MiB));
        return false;
    }
    m->fd = memfd_create("tern-ram", MFD_CLOEXEC);
    if (m->fd < 0) {
        tern_set_error_errno(errp, errno, "memfd_create for guest RAM");
        return false;
    }
    if (ftruncate(m->fd, ram_size) < 0) {
        tern_set_error_errno(errp, errno, "cannot size guest RAM to %" PRIu64 " bytes",
                             ram_size);
        goto fail;
    }
    hva = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
               m->fd, 0);
    if (hva == MAP_FAILED) {
        tern_set_error_errno(errp, errno, "cannot map %" PRIu64 " bytes of guest RAM",
                             ram_size);
        goto fail;
    }
    m->ram_size = ram_size;
    m->regions[m->nr_regions++] = (GuestRegion){ .gpa = 0, .size = low, .hva = hva };
    if (ram_size > low) {
        m->regions[m->nr_regions++] = (GuestRegion){
            .gpa = 4 * GiB, .size = ram_size - low, .hva = hva + low, .fd_offset = low,
        };
    }
    return true;
fail:
    close(m->fd);
    m->fd = -1;
    return false;
}

void guest_mem_free(GuestMemory *m)
{
    if (m->nr_regions) {
        munmap(m->regions[0].hva, m->ram_size);
    }
    if (m->fd >= 0) {
        close(m->fd);
    }
    m->nr_regions = 0;
    m->fd = -1;
}
