/*
 * Guest RAM allocation: one memfd (or a file the user names) mapped shared, so that userfaultfd (postcopy,
 * lazy loadvm), KVM dirty logging and a second mapping for migration all see
 * the same pages. Regions are slices of the one mapping; see guest-memory.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* A RAM file at 'path', or a new unlinked one in the directory 'path'. */
static int open_ram_file(const char *path, GError **errp)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        g_autofree char *tmpl = g_build_filename(path, "tern_back_mem.XXXXXX", NULL);

        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0) {
            unlink(tmpl);
        }
    } else {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        tern_set_error_errno(errp, errno, "can't open backing store %s for guest RAM",
                             path);
    }
    return fd;
}

bool guest_mem_alloc(GuestMemory *m, uint64_t ram_size, uint64_t low_limit,
                     GError **errp)
{
    return guest_mem_alloc_file(m, ram_size, low_limit, NULL, errp);
}

bool guest_mem_alloc_file(GuestMemory *m, uint64_t ram_size, uint64_t low_limit,
                          const char *path, GError **errp)
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
    m->fd = path ? open_ram_file(path, errp) : memfd_create("tern-ram", MFD_CLOEXEC);
    if (m->fd < 0) {
        if (!path) {
            tern_set_error_errno(errp, errno, "memfd_create for guest RAM");
        }
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
