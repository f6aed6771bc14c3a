/*
 * The block layer's public API: a BlockNode is one open image (a format driver
 * such as raw or qcow2 stacked on a "file" protocol node that owns the host fd
 * and the QEMU-compatible image locks). Callers read and write guest-visible
 * bytes, flush, discard, take internal snapshots and use the vmstate area
 * through the bdrv_* functions below; drivers implement BlockDriver.
 *
 * Threading: every BlockNode has one mutex. Each bdrv_* entry point takes it, so
 * the virtio-blk iothread and the QMP main thread may call in concurrently.
 * Driver callbacks and dirty-bitmap hooks run with the node's mutex held.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include <sys/uio.h>

#include "tern/common.h"
#include "tern/error.h"

typedef struct BlockNode BlockNode;
typedef struct BlockDriver BlockDriver;
typedef struct BdrvDirtyBitmap BdrvDirtyBitmap;

/* Open flags. */
enum {
    BDRV_O_RDWR     = 1 << 0,  /* open read-write (takes the write lock) */
    BDRV_O_NOCACHE  = 1 << 1,  /* O_DIRECT on the host file, where supported */
    BDRV_O_NO_LOCK  = 1 << 2,  /* take no image locks (like QEMU's locking=off) */
    BDRV_O_SHARE_RW = 1 << 3,  /* let others write too (QEMU's share-rw=on) */
    BDRV_O_CHECK    = 1 << 4,  /* opened for check/repair: skip dirty-bit repair */
    BDRV_O_INACTIVE = 1 << 5,  /* another process owns the image for now
                                * (incoming migration): metadata is read,
                                * no write lock, no I/O until bdrv_activate */
    BDRV_O_UNMAP    = 1 << 6,  /* discards reach the image (QEMU's
                                * discard=unmap); without it they do nothing
                                * and write-zeroes keeps space allocated */
    BDRV_O_RESIZE   = 1 << 7,  /* may change the image's size (takes QEMU's
                                * "resize" lock byte) */
    BDRV_O_STABLE_FILE = 1 << 8,  /* set by bdrv_open under a format that
                                   * keeps metadata in the file (qcow2):
                                   * writable, it may resize it; nobody else
                                   * may write or resize it */
    BDRV_O_BITMAPS_IN_USE = 1 << 9,  /* mark persistent bitmaps IN_USE
                                      * while open, as QEMU does, instead
                                      * of keeping them crash-safe
                                      * (block/write-intent.h) */
};

/* One internal snapshot, as stored in a qcow2 snapshot table. */
typedef struct BlockSnapshotInfo {
    char *id_str;
    char *name;
    uint64_t vm_state_size;   /* bytes of VM state saved with the snapshot */
    uint32_t date_sec;        /* wall clock when taken */
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;   /* guest clock when taken */
    uint64_t disk_size;       /* virtual disk size when taken */
    int64_t icount;           /* instruction count, -1 if not recorded */
} BlockSnapshotInfo;

void block_snapshot_info_free(BlockSnapshotInfo *sn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlockSnapshotInfo, block_snapshot_info_free)

/* A persistent bitmap as 'info' shows it (filled by the qcow2 bitmap code). */
typedef struct BlockBitmapInfo {
    char *name;
    uint32_t granularity;
    bool in_use;              /* IN_USE flag: the bitmap is inconsistent */
    bool auto_flag;           /* AUTO flag: tracks writes while enabled */
} BlockBitmapInfo;

void block_bitmap_info_free(BlockBitmapInfo *bi);

/* What 'tern-img info' reports; field names follow QEMU's ImageInfo. */
typedef struct BlockImageInfo {
    const char *format;       /* driver name, static */
    char *filename;
    uint64_t virtual_size;
    uint64_t actual_size;     /* host bytes allocated to the file */
    uint32_t cluster_size;    /* 0 if the format has none */
    bool dirty_flag;
    /* qcow2 "format-specific" data; compat is NULL for other formats */
    char *compat;             /* "0.10" or "1.1" */
    bool lazy_refcounts;
    int refcount_bits;
    bool corrupt;
    bool extended_l2;
    GPtrArray *snapshots;     /* of BlockSnapshotInfo * */
    GPtrArray *bitmaps;       /* of BlockBitmapInfo *; NULL if none loaded */
} BlockImageInfo;

void block_image_info_free(BlockImageInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlockImageInfo, block_image_info_free)

typedef enum {
    BDRV_CHECK_REPORT = 0,
    BDRV_FIX_LEAKS    = 1 << 0,
    BDRV_FIX_ERRORS   = 1 << 1,
} BlockCheckMode;

/* Result of a consistency check; exit codes derive from it like qemu-img's. */
typedef struct BlockCheckResult {
    int64_t corruptions;
    int64_t leaks;
    int64_t check_errors;
    int64_t corruptions_fixed;
    int64_t leaks_fixed;
    int64_t image_end_offset;
    int64_t total_clusters;
    int64_t allocated_clusters;
    int64_t fragmented_clusters;
    int64_t compressed_clusters;
} BlockCheckResult;

/* Creation options; zero/NULL fields mean the format's default. */
typedef struct BlockCreateOpts {
    uint32_t cluster_size;    /* qcow2: 512 B .. 2 MiB, default 64 KiB */
    const char *compat;       /* qcow2: "0.10" or "1.1" (default) */
} BlockCreateOpts;

/*
 * The driver ops table. Format drivers sit on bs->file; protocol drivers
 * ("file") own the host fd. I/O callbacks get byte ranges already checked
 * against the node's size (vmstate callbacks excepted) and run under the
 * node mutex. Optional callbacks may be NULL.
 */
struct BlockDriver {
    const char *format_name;
    bool is_protocol;
    bool has_metadata;        /* keeps metadata in its file (qcow2): the
                               * file gets BDRV_O_STABLE_FILE */
    size_t state_size;        /* bytes of bs->opaque allocated for the driver */

    bool (*create)(const char *filename, uint64_t size,
                   const BlockCreateOpts *opts, GError **errp);
    bool (*open)(BlockNode *bs, const char *filename, int flags, GError **errp);
    void (*close)(BlockNode *bs);

    bool (*preadv)(BlockNode *bs, uint64_t offset, uint64_t bytes,
                   const struct iovec *iov, int iovcnt, GError **errp);
    bool (*pwritev)(BlockNode *bs, uint64_t offset, uint64_t bytes,
                    const struct iovec *iov, int iovcnt, GError **errp);
    bool (*flush)(BlockNode *bs, GError **errp);
    /* Protocol drivers: start writing dirty data out, without waiting. */
    void (*start_writeback)(BlockNode *bs);
    bool (*discard)(BlockNode *bs, uint64_t offset, uint64_t bytes,
                    GError **errp);
    /* 'unmap': the range may be deallocated (BDRV_O_UNMAP and the caller
     * allowed it); otherwise it stays allocated. */
    bool (*write_zeroes)(BlockNode *bs, uint64_t offset, uint64_t bytes,
                         bool unmap, GError **errp);
    bool (*truncate)(BlockNode *bs, uint64_t size, GError **errp);
    bool (*get_info)(BlockNode *bs, BlockImageInfo *info, GError **errp);
    bool (*check)(BlockNode *bs, BlockCheckMode fix, BlockCheckResult *res,
                  GError **errp);

    bool (*snapshot_create)(BlockNode *bs, const BlockSnapshotInfo *sn,
                            GError **errp);
    GPtrArray *(*snapshot_list)(BlockNode *bs);   /* of BlockSnapshotInfo * */
    bool (*snapshot_apply)(BlockNode *bs, const char *id_or_name,
                           GError **errp);
    bool (*snapshot_delete)(BlockNode *bs, const char *id, const char *name,
                            GError **errp);

    /* VM state area (past the end of the virtual disk); pos is 0-based. */
    bool (*save_vmstatev)(BlockNode *bs, uint64_t pos,
                          const struct iovec *iov, int iovcnt, GError **errp);
    bool (*load_vmstate)(BlockNode *bs, uint64_t pos, void *buf, size_t len,
                         GError **errp);
    /* The VM state area of snapshot 'id' (exact id), read in place. */
    bool (*snapshot_load_vmstate)(BlockNode *bs, const char *id, uint64_t pos,
                                  void *buf, size_t len, GError **errp);

    /* Persistent-bitmap hooks (qcow2 only, implemented in qcow2-bitmap.c). */
    bool (*can_store_bitmap)(BlockNode *bs, const char *name,
                             uint32_t granularity, GError **errp);
    bool (*remove_persistent_bitmap)(BlockNode *bs, const char *name,
                                     GError **errp);
    bool (*store_bitmaps)(BlockNode *bs, GError **errp);
    /* Crash-safe bitmaps (include/block/write-intent.h): store every
     * persistent, consistent, writable bitmap from its bits with all its
     * data in one contiguous run of clusters, IN_USE clear; write words
     * [first_word, +nwords) (little-endian) of such a bitmap in place,
     * durable (RWF_DSYNC) or not; set its flags in place (AUTO from its
     * enabled state, IN_USE as asked). */
    bool (*bitmaps_arm)(BlockNode *bs, GError **errp);
    bool (*bitmap_write_words)(BlockNode *bs, BdrvDirtyBitmap *bm,
                               uint64_t first_word, uint64_t nwords,
                               const uint64_t *words, bool durable,
                               GError **errp);
    bool (*bitmap_set_flags)(BlockNode *bs, BdrvDirtyBitmap *bm, bool in_use,
                             GError **errp);
};

/*
 * One open node. Fields are read by drivers and the dirty-bitmap code with
 * 'lock' held; other code uses the accessors.
 */
/* I/O accounting per node, for query-blockstats: what the node's users
 * asked of it (bdrv_preadv/pwritev/flush/discard/write_zeroes). */
typedef enum {
    BLOCK_ACCT_READ, BLOCK_ACCT_WRITE, BLOCK_ACCT_FLUSH, BLOCK_ACCT_UNMAP,
    BLOCK_ACCT__MAX,
} BlockAcctType;

typedef struct BlockAcctStats {
    uint64_t bytes[BLOCK_ACCT__MAX];
    uint64_t ops[BLOCK_ACCT__MAX];
    uint64_t failed_ops[BLOCK_ACCT__MAX];
    uint64_t total_time_ns[BLOCK_ACCT__MAX];
    uint64_t wr_highest_offset;
} BlockAcctStats;

struct BlockNode {
    GMutex lock;
    BlockAcctStats stats;     /* under lock */
    char *node_name;
    char *filename;
    const BlockDriver *drv;
    void *opaque;             /* driver state, drv->state_size bytes */
    BlockNode *file;          /* protocol child of a format node, or NULL */
    uint64_t size;            /* virtual size in bytes */
    int flags;                /* BDRV_O_* */
    bool read_only;           /* also while inactive */
    bool inactive;            /* BDRV_O_INACTIVE in effect */
    bool reload_on_activate;  /* opened inactive: metadata may be stale */
    bool drv_closed;          /* a reload failed: no driver state left */
    bool probed;              /* format probed, not given: raw restricts
                               * writes to its first sector */
    GList *dirty_bitmaps;     /* BdrvDirtyBitmap * (include/block/dirty-bitmap.h) */
    void *bitmap_opaque;      /* crash-safe bitmaps (block/write-intent.c) */
};

/*
 * Sets the bits for [offset, offset+bytes) in every enabled dirty bitmap of
 * bs. Called by the block layer (lock held) after every successful write,
 * write-zeroes and discard. Implemented in block/dirty-bitmap.c.
 */
void bdrv_dirty_bitmaps_mark(BlockNode *bs, uint64_t offset, uint64_t bytes);

/* Drivers, by name ("file", "raw", "qcow2"); NULL if unknown. */
const BlockDriver *bdrv_find_format(const char *name);
/* The format of a file as QEMU 7.2 probes it: any format QEMU knows ("raw",
 * "qcow2", "vmdk", "vdi", ...), not only the ones tern opens. */
const char *bdrv_probe_format(const char *filename, GError **errp);
/* The same for the first bytes of an image (filename for dmg's probe). */
const char *bdrv_probe_buffer(const uint8_t *buf, size_t len,
                              const char *filename);
/* True for every format name QEMU 7.2 can probe. */
bool bdrv_format_is_known(const char *format);

/*
 * Opens filename with 'format' ("raw", "qcow2", or NULL to probe: a format
 * tern cannot open is refused by name; probed raw warns when opened
 * read-write, and refuses writes that would make its first sector probe
 * as another format, as QEMU does). Takes the lock bytes QEMU 7.2 takes for
 * the same use unless BDRV_O_NO_LOCK (block/image-lock.c): "consistent
 * read"; "write" with BDRV_O_RDWR; "resize" with BDRV_O_RESIZE or for a
 * writable qcow2; others may not write unless BDRV_O_SHARE_RW, and may
 * neither write nor resize a qcow2 image's file; an inactive node takes
 * none.
 */
BlockNode *bdrv_open(const char *filename, const char *format, int flags,
                     GError **errp);
/* The two halves of bdrv_open, for block graphs built node by node
 * (-blockdev): the protocol node alone (host file + image locks), and a
 * format driver over an open protocol node, which the new node then owns
 * (on failure the caller keeps it). bdrv_file_flags_for() says which of a
 * format node's flags its protocol node takes. */
BlockNode *bdrv_open_protocol(const char *filename, int flags, GError **errp);
BlockNode *bdrv_open_over(const char *format, BlockNode *file, int flags,
                          GError **errp);
int bdrv_file_flags_for(const char *format, int flags);
/* Flushes (errors are reported, not returned) and frees; NULL is fine. */
void bdrv_close(BlockNode *bs);
/* The same for a format node whose file node lives on (a node the user
 * created on its own, under a format node being deleted). */
void bdrv_close_keep_file(BlockNode *bs);
/* A copy of the node's I/O accounting. */
void bdrv_get_stats(BlockNode *bs, BlockAcctStats *out);
bool bdrv_create(const char *format, const char *filename, uint64_t size,
                 const BlockCreateOpts *opts, GError **errp);

/* Sets the node name used by QMP; default is "#block<N>". */
void bdrv_set_node_name(BlockNode *bs, const char *name);
const char *bdrv_get_node_name(BlockNode *bs);
const char *bdrv_get_format_name(BlockNode *bs);
/* The image's file name as opened ("" if none). */
const char *bdrv_get_filename(BlockNode *bs);
/* The BDRV_O_* flags it was opened with. */
int bdrv_get_flags(BlockNode *bs);
uint64_t bdrv_getlength(BlockNode *bs);
bool bdrv_is_read_only(BlockNode *bs);

/* Byte-granular I/O; ranges must lie within the virtual size. */
bool bdrv_pread(BlockNode *bs, uint64_t offset, void *buf, size_t bytes,
                GError **errp);
bool bdrv_pwrite(BlockNode *bs, uint64_t offset, const void *buf, size_t bytes,
                 GError **errp);
bool bdrv_preadv(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                 int iovcnt, GError **errp);
bool bdrv_pwritev(BlockNode *bs, uint64_t offset, const struct iovec *iov,
                  int iovcnt, GError **errp);
bool bdrv_flush(BlockNode *bs, GError **errp);
/* Starts writing what the node's file holds dirty to the disk and returns:
 * a bulk writer calls it as it goes, so its closing bdrv_flush waits for
 * little (the disk works while the writer still produces). A hint. */
void bdrv_start_writeback(BlockNode *bs);
/* Deallocates the range if the node was opened with BDRV_O_UNMAP; without
 * it, succeeds and does nothing (QEMU's discard=ignore). */
bool bdrv_discard(BlockNode *bs, uint64_t offset, uint64_t bytes, GError **errp);
/* Makes the range read as zeroes; 'may_unmap' lets it be deallocated too,
 * which happens only on a BDRV_O_UNMAP node (QEMU's BDRV_REQ_MAY_UNMAP). */
bool bdrv_write_zeroes(BlockNode *bs, uint64_t offset, uint64_t bytes,
                       bool may_unmap, GError **errp);

/* Changes the virtual size (qcow2: growing only, and not with internal
 * snapshots); dirty bitmaps follow. */
bool bdrv_truncate(BlockNode *bs, uint64_t size, GError **errp);

bool bdrv_get_info(BlockNode *bs, BlockImageInfo **info, GError **errp);
bool bdrv_check(BlockNode *bs, BlockCheckMode fix, BlockCheckResult *res,
                GError **errp);

/* Internal snapshots (qcow2). sn->id_str NULL picks the next free id. */
bool bdrv_snapshot_create(BlockNode *bs, const BlockSnapshotInfo *sn,
                          GError **errp);
/* NULL with errp set if the format has no snapshots. */
GPtrArray *bdrv_snapshot_list(BlockNode *bs, GError **errp);
/* Looks up by id first, then by name, like QEMU's "snapshot -a". Refused,
 * as QEMU refuses it, while the node has any dirty bitmap: none would
 * record what the revert changes. */
bool bdrv_snapshot_apply(BlockNode *bs, const char *id_or_name, GError **errp);
/* Whether bdrv_snapshot_apply would refuse for the node's bitmaps. */
bool bdrv_snapshot_can_apply(BlockNode *bs, GError **errp);
/* Either id or name may be NULL; both given must match the same snapshot. */
bool bdrv_snapshot_delete(BlockNode *bs, const char *id, const char *name,
                          GError **errp);
/* Finds a snapshot by id or name; false if none. */
bool bdrv_snapshot_find(BlockNode *bs, const char *id_or_name,
                        BlockSnapshotInfo **out, GError **errp);

/*
 * The VM state area: savevm writes the VM state stream at pos 0.. before
 * taking the snapshot; loadvm reads it after applying one.
 */
bool bdrv_save_vmstate(BlockNode *bs, uint64_t pos, const void *buf, size_t len,
                       GError **errp);
/* The same from a vector: savevm hands over whole clusters at a time. */
bool bdrv_save_vmstatev(BlockNode *bs, uint64_t pos, const struct iovec *iov,
                        int iovcnt, GError **errp);
bool bdrv_load_vmstate(BlockNode *bs, uint64_t pos, void *buf, size_t len,
                       GError **errp);
/* Reads the VM state of snapshot 'id' (its id_str) where the snapshot keeps
 * it, without reverting the image: tools, and loadvm's checks before it
 * changes anything. Bytes past what the snapshot holds read as zeroes. */
bool bdrv_snapshot_load_vmstate(BlockNode *bs, const char *id, uint64_t pos,
                                void *buf, size_t len, GError **errp);

/* Lock/unlock the node from outside (the dirty-bitmap code's public calls). */
/*
 * Migration's hand-over of a shared image (QEMU's inactivate/invalidate):
 * bdrv_inactivate flushes everything (persistent bitmaps too when
 * 'store_bitmaps'), drops the write lock and refuses I/O, so another
 * process may activate the image; closing an inactive node writes nothing.
 * bdrv_activate takes the locks back and, if the node's metadata may have
 * been written meanwhile ('reload': the node was opened inactive), rereads
 * it (header, L1, refcounts, snapshots, bitmaps), keeping the in-memory
 * dirty bitmaps (migrated ones win over the image's of the same name).
 * Both are no-ops on a node already in that state.
 */
bool bdrv_inactivate(BlockNode *bs, bool store_bitmaps, GError **errp);
bool bdrv_activate(BlockNode *bs, GError **errp);
bool bdrv_is_inactive(BlockNode *bs);

void bdrv_lock(BlockNode *bs);
void bdrv_unlock(BlockNode *bs);

#endif
