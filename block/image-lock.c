/*
 * Image locking compatible with QEMU's file-posix driver, so tern and QEMU
 * never write one image at once. Each permission bit i (consistent read 0,
 * write 1, write unchanged 2, resize 3, graph-mod 4) has two lock bytes in
 * the image file, held as shared OFD read locks:
 *   100 + i  "I use permission i"
 *   200 + i  "I forbid others to use permission i"
 * Taking permission i fails if someone else holds 200 + i; forbidding it
 * fails if someone else holds 100 + i. OFD locks belong to the open file
 * description, so two opens in one process conflict just like two processes.
 */
#include <errno.h>
#include <fcntl.h>

#include "block/block-int.h"

#define LOCK_PERM_BASE   100
#define LOCK_SHARED_BASE 200
#define LOCK_NB_PERMS    5

static const char *const perm_names[LOCK_NB_PERMS] = {
    "consistent read", "write", "write unchanged", "resize", "change children",
};

static int lock_byte(int fd, int64_t off, short type)
{
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = off, .l_len = 1, .l_type = type,
    };
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* True if another open file description holds a lock on byte 'off'. */
static bool byte_locked_by_other(int fd, int64_t off, int *err)
{
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = off, .l_len = 1, .l_type = F_WRLCK,
    };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        *err = errno;
        return false;
    }
    return fl.l_type != F_UNLCK;
}

static bool set_lock_bytes(int fd, uint32_t perm, uint32_t shared,
                           GError **errp)
{
    for (int i = 0; i < LOCK_NB_PERMS; i++) {
        bool use = perm & (1u << i);
        bool forbid = !(shared & (1u << i));
        int r = lock_byte(fd, LOCK_PERM_BASE + i, use ? F_RDLCK : F_UNLCK);
        if (!r) {
            r = lock_byte(fd, LOCK_SHARED_BASE + i, forbid ? F_RDLCK : F_UNLCK);
        }
        if (r) {
            tern_set_error_errno(errp, -r, "Failed to lock byte %d",
                                 LOCK_PERM_BASE + i);
            return false;
        }
    }
    return true;
}

/* One byte per permission in 'mask': fails naming the first that another
 * file description holds. */
static bool check_bytes(int fd, const char *filename, uint32_t mask, int base,
                        const char *kind, GError **errp)
{
    for (int i = 0; i < LOCK_NB_PERMS; i++) {
        int err = 0;
        if (!(mask & (1u << i)) || !byte_locked_by_other(fd, base + i, &err)) {
            if (!err) {
                continue;
            }
            tern_set_error_errno(errp, err, "Failed to check lock bytes of "
                                 "'%s'", filename);
            return false;
        }
        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "Failed to get %s\"%s\" lock. Is another process "
                    "using the image [%s]?", kind, perm_names[i], filename);
        return false;
    }
    return true;
}

/* As QEMU's file-posix: first every permission we use against others'
 * "forbid" bytes, then every one we forbid against others' "use" bytes. */
static bool check_lock_bytes(int fd, const char *filename, uint32_t perm,
                             uint32_t shared, GError **errp)
{
    return check_bytes(fd, filename, perm, LOCK_SHARED_BASE, "", errp) &&
           check_bytes(fd, filename, ~shared & BLK_PERM_ALL, LOCK_PERM_BASE,
                       "shared ", errp);
}

bool image_lock_apply(int fd, const char *filename, uint32_t perm,
                      uint32_t shared, GError **errp)
{
    /* Lock first, then look for conflicts: two openers racing both see the
     * other's bytes, so at worst both fail, never both succeed. */
    if (!set_lock_bytes(fd, perm, shared, errp)) {
        return false;
    }
    if (!check_lock_bytes(fd, filename, perm, shared, errp)) {
        GError *ignored = NULL;
        set_lock_bytes(fd, 0, BLK_PERM_ALL, &ignored);
        g_clear_error(&ignored);
        return false;
    }
    return true;
}
