/*
 * qcow2-lite's private header: the on-disk layout (all fields big-endian) and
 * the driver state shared by qcow2.c (open, header, extensions),
 * qcow2-cluster.c (L1/L2 mapping, COW), qcow2-refcount.c (allocation, check),
 * qcow2-cache.c (L2/refcount block cache), qcow2-snapshot.c and
 * qcow2-bitmap.c (persistent dirty bitmaps). Facts from QEMU's
 * docs/interop/qcow2.txt.
 *
 * File layout as qemu-img creates it: cluster 0 header (+ extensions), then
 * the refcount table, one refcount block, the L1 table; data, L2 tables and
 * more metadata are allocated from the first free cluster.
 *
 * Header (byte offsets):
 *   0 magic "QFI\xfb"   4 version (2|3)     8 backing_file_offset
 *  16 backing_file_size 20 cluster_bits    24 size (virtual)
 *  32 crypt_method      36 l1_size         40 l1_table_offset
 *  48 refcount_table_offset                56 refcount_table_clusters
 *  60 nb_snapshots      64 snapshots_offset
 *  v3 only: 72 incompatible_features  80 compatible_features
 *  88 autoclear_features  96 refcount_order  100 header_length
 *  104 compression_type (if header_length > 104)
 * Then extensions: be32 type, be32 length, data padded to 8; type 0 ends.
 *
 * Crash safety: after kill -9 or a power cut (only what was synced is
 * sure to be on disk, the rest in any order) the image has at worst
 * leaked clusters, as QEMU's. The rules (docs/block.md, "Ordering"):
 *  - a refcount is raised durably before anything that points at the
 *    cluster reaches the disk, and lowered only after the last pointer to
 *    it is gone durably: the caches depend on each other as each change
 *    needs (qcow2-cache.c), so a write-back syncs only across a dependency;
 *  - a new L2 table and its refcount are durable before the L1 entry points
 *    at it; new L1, refcount and snapshot tables, refcount blocks and
 *    bitmap metadata before the header or table entry that points at them
 *    (qcow2_header_pwrite and qcow2_update_header: a barrier before, a sync
 *    after);
 *  - copied data (copy-on-write) is durable before the L2 entry points at
 *    it;
 *  - clusters the write path lets go (copy-on-write, discard) are freed in
 *    batches (qcow2_free_clusters_later), so their refcounts need no sync
 *    per write.
 *
 * Locking: every function here runs with the BlockNode's mutex held.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include "block/block.h"

#define QCOW2_MAGIC                 0x514649fbu   /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS      9
#define QCOW2_MAX_CLUSTER_BITS      21
#define QCOW2_DEFAULT_CLUSTER_BITS  16
#define QCOW2_V2_HEADER_SIZE        72
#define QCOW2_V3_HEADER_SIZE        104   /* minimum header_length for v3 */
#define QCOW2_MAX_L1_SIZE           (32 * MiB / 8)     /* entries, as QEMU */
#define QCOW2_MAX_REFTABLE_SIZE     (8 * MiB / 8)      /* entries, as QEMU */
#define QCOW2_MAX_SNAPSHOTS         65536
#define QCOW2_MAX_SNAPSHOT_EXTRA    1024
#define QCOW2_MAX_SNAPSHOTS_SIZE    (64 * MiB)   /* whole snapshot table */

/* incompatible_features bits */
#define QCOW2_INCOMPAT_DIRTY        (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT      (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2        (1ULL << 4)
/* compatible_features bits */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
/* autoclear_features bits */
#define QCOW2_AUTOCLEAR_BITMAPS     (1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)
#define QCOW2_AUTOCLEAR_MASK        QCOW2_AUTOCLEAR_BITMAPS   /* bits we keep */

/* header extension types */
#define QCOW2_EXT_END               0x00000000u
#define QCOW2_EXT_BACKING_FORMAT    0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE     0x6803f857u
#define QCOW2_EXT_CRYPTO            0x0537be77u
#define QCOW2_EXT_BITMAPS           0x23852875u
#define QCOW2_EXT_DATA_FILE         0x44415441u

/* L1 / L2 / refcount table entries */
#define QCOW2_OFLAG_COPIED          (1ULL << 63)   /* refcount is exactly 1 */
#define QCOW2_OFLAG_COMPRESSED      (1ULL << 62)
#define QCOW2_OFLAG_ZERO            (1ULL << 0)    /* v3 standard L2 entry */
#define QCOW2_L1E_OFFSET_MASK       0x00fffffffffffe00ULL
#define QCOW2_L2E_OFFSET_MASK       0x00fffffffffffe00ULL
#define QCOW2_L1E_RESERVED_MASK     0x7f000000000001ffULL
#define QCOW2_L2E_RESERVED_MASK     0x3f000000000001feULL
#define QCOW2_REFT_OFFSET_MASK      0xfffffffffffffe00ULL

/* The fixed part of the header, as on disk (big-endian). */
typedef struct TERN_PACKED Qcow2Header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* v3 */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
    uint8_t padding[7];
} Qcow2Header;

/* Payload of the bitmaps header extension (big-endian on disk). */
typedef struct TERN_PACKED Qcow2BitmapHeaderExt {
    uint32_t nb_bitmaps;
    uint32_t reserved32;
    uint64_t bitmap_directory_size;
    uint64_t bitmap_directory_offset;
} Qcow2BitmapHeaderExt;

/* Fixed part of a snapshot table entry (big-endian), then extra data, id, name. */
typedef struct TERN_PACKED Qcow2SnapshotHeader {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    uint16_t id_str_size;
    uint16_t name_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint32_t vm_state_size;
    uint32_t extra_data_size;
} Qcow2SnapshotHeader;

/* Known extra data of a snapshot entry (big-endian); each field optional. */
typedef struct TERN_PACKED Qcow2SnapshotExtra {
    uint64_t vm_state_size_large;
    uint64_t disk_size;
    uint64_t icount;
} Qcow2SnapshotExtra;

/* A header extension tern does not interpret, kept to be written back. */
typedef struct Qcow2UnknownExt {
    uint32_t type;
    uint32_t len;
    uint8_t *data;
} Qcow2UnknownExt;

/* One snapshot table entry, host-endian. */
typedef struct Qcow2Snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str;
    char *name;
    uint64_t disk_size;
    uint64_t vm_state_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    int64_t icount;           /* -1: not recorded */
    uint32_t extra_data_size; /* as read; rewritten as max(read, known) */
    uint8_t *unknown_extra;   /* bytes past the known extra fields */
} Qcow2Snapshot;

/* Kinds of metadata a write may overlap; bits as QEMU's QCOW2_OL_*, plus
 * the bitmaps' tables and data. */
enum {
    QCOW2_OL_MAIN_HEADER      = 1 << 0,
    QCOW2_OL_ACTIVE_L1        = 1 << 1,
    QCOW2_OL_ACTIVE_L2        = 1 << 2,
    QCOW2_OL_REFCOUNT_TABLE   = 1 << 3,
    QCOW2_OL_REFCOUNT_BLOCK   = 1 << 4,
    QCOW2_OL_SNAPSHOT_TABLE   = 1 << 5,
    QCOW2_OL_INACTIVE_L1      = 1 << 6,
    QCOW2_OL_INACTIVE_L2      = 1 << 7,
    QCOW2_OL_BITMAP_DIRECTORY = 1 << 8,
    QCOW2_OL_BITMAP_TABLE     = 1 << 9,
    QCOW2_OL_BITMAP_DATA      = 1 << 10,
    QCOW2_OL_NB_KINDS         = 11,
    QCOW2_OL_L2               = QCOW2_OL_ACTIVE_L2 | QCOW2_OL_INACTIVE_L2,
};

typedef struct Qcow2Cache Qcow2Cache;

/* A host byte range whose references are to be dropped. */
typedef struct Qcow2FreeRange {
    uint64_t offset;
    uint64_t len;
} Qcow2FreeRange;

/* Driver state, bs->opaque of a qcow2 node; all values host-endian. */
typedef struct BDRVQcow2State {
    int qcow_version;             /* 2 or 3 */
    uint32_t header_length;
    int cluster_bits;
    uint32_t cluster_size;
    int l2_bits;                  /* log2 of entries per L2 table */
    uint32_t l2_size;             /* entries per L2 table */
    uint64_t backing_file_offset; /* must be 0: backing files refused */

    uint32_t l1_size;             /* entries (may cover the vmstate area) */
    uint32_t l1_vm_state_index;   /* first L1 entry past the virtual size */
    uint64_t l1_table_offset;
    uint64_t *l1_table;           /* in memory, host-endian */

    int refcount_order;           /* log2 of refcount width in bits (4 = 16) */
    int refcount_block_bits;      /* log2 of entries per refcount block */
    uint32_t refcount_block_size; /* entries per refcount block */
    uint64_t refcount_max;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_size; /* entries */
    uint64_t *refcount_table;     /* in memory, host-endian */
    uint64_t free_cluster_index;  /* allocation hint */

    Qcow2Cache *l2_table_cache;
    Qcow2Cache *refcount_block_cache;

    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint8_t compression_type;

    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;      /* bytes of the on-disk table */
    Qcow2Snapshot *snapshots;

    /* bitmaps extension, as read; the bitmap code updates it and then calls
     * qcow2_update_header() */
    uint32_t nb_bitmaps;
    uint64_t bitmap_directory_size;
    uint64_t bitmap_directory_offset;
    void *bitmaps;                /* qcow2-bitmap.c's own state */

    GPtrArray *unknown_exts;      /* of Qcow2UnknownExt *, written back as-is */
    uint8_t *cluster_buf;         /* one cluster of scratch, for COW */

    bool unsynced;                /* written to bs->file since its last sync */
    uint64_t sync_count;          /* syncs qcow2_sync() made */
    GArray *pending_frees;        /* Qcow2FreeRange: refcounts to lower once
                                   * the L2 entries that let them go are
                                   * durable (qcow2_free_clusters_later) */

    /* qcow2-overlap.c: cluster index -> QCOW2_OL_* mask; writable only */
    GHashTable *meta;
    bool unusable;                /* corruption found while writable: no
                                   * more I/O, as QEMU */
} BDRVQcow2State;

static inline uint64_t qcow2_offset_into_cluster(BDRVQcow2State *s, uint64_t o)
{
    return o & (s->cluster_size - 1);
}

static inline uint64_t qcow2_size_to_clusters(BDRVQcow2State *s, uint64_t size)
{
    return (size + s->cluster_size - 1) >> s->cluster_bits;
}

static inline uint64_t qcow2_vm_state_offset(BDRVQcow2State *s)
{
    return (uint64_t)s->l1_vm_state_index << (s->cluster_bits + s->l2_bits);
}

/* qcow2.c */
/* Rewrites cluster 0: header, then extensions (bitmaps from s->nb_bitmaps
 * etc. when nb_bitmaps > 0, feature table, unknown ones) and flushes. */
bool qcow2_update_header(BlockNode *bs, GError **errp);
/* Sets/clears an autoclear bit in memory; qcow2_update_header() writes it. */
void qcow2_set_autoclear(BlockNode *bs, uint64_t bit, bool on);
/* Fails unless 'size' is a virtual size the L1 table can address. */
bool qcow2_check_disk_size(BDRVQcow2State *s, uint64_t size, GError **errp);
/* Marks the image corrupt (on disk, when writable) and fails with 'why'. */
void qcow2_signal_corruption(BlockNode *bs, GError **errp, const char *fmt, ...)
    TERN_PRINTF(3, 4);
/* Fails once a corruption was signalled on the writable node. */
bool qcow2_check_usable(BlockNode *bs, GError **errp);
/* Metadata I/O on the image file (bs->file). A write names the kind of
 * metadata it writes ('own', QCOW2_OL_*): it must not overlap any other. */
bool qcow2_file_pread(BlockNode *bs, uint64_t offset, void *buf, size_t len,
                      GError **errp);
bool qcow2_file_pwrite(BlockNode *bs, uint32_t own, uint64_t offset,
                       const void *buf, size_t len, GError **errp);
/* The same, durable when it returns (bdrv_file_pwrite_durable). */
bool qcow2_file_pwrite_durable(BlockNode *bs, uint32_t own, uint64_t offset,
                               const void *buf, size_t len, GError **errp);
/* Guest data (and copy-on-write data) to the image file. */
bool qcow2_data_pwritev(BlockNode *bs, uint64_t offset,
                        const struct iovec *iov, int iovcnt, GError **errp);
uint64_t qcow2_file_length(BlockNode *bs);
/* Syncs the image file if it was written since its last sync. */
bool qcow2_sync(BlockNode *bs, GError **errp);
/* Writes 'len' bytes of the header at 'offset' as a pointer switch: what
 * was written before is durable first (caches written back, file synced),
 * and the header when it returns. qcow2_update_header() likewise. */
bool qcow2_header_pwrite(BlockNode *bs, uint64_t offset, const void *buf,
                         size_t len, GError **errp);

/* qcow2-refcount.c */
bool qcow2_refcount_init(BlockNode *bs, GError **errp);
void qcow2_refcount_close(BlockNode *bs);
bool qcow2_get_refcount(BlockNode *bs, uint64_t cluster_index,
                        uint64_t *refcount, GError **errp);
/* Allocates contiguous clusters for 'size' bytes with refcount 1; returns the
 * host offset or -1. */
int64_t qcow2_alloc_clusters(BlockNode *bs, uint64_t size, GError **errp);
/* Adds 'addend' to the refcount of every cluster touching [offset, +length). */
bool qcow2_update_refcount(BlockNode *bs, uint64_t offset, uint64_t length,
                           int64_t addend, GError **errp);
/* Drops one reference; errors only warn (a leak at worst). The count
 * reaches the disk after whatever pointed at the clusters is gone there. */
void qcow2_free_clusters(BlockNode *bs, uint64_t offset, uint64_t size);
/* The same, queued: the write path lets go of clusters whose L2 entries
 * it replaced in the cache; the next qcow2_flush_caches() (or a long
 * queue) drops them all, one dependency sync for the batch. */
void qcow2_free_clusters_later(BlockNode *bs, uint64_t offset, uint64_t size);
/* Drops the queued references now (errors warn: leaks at worst). */
void qcow2_settle_frees(BlockNode *bs);
/* Adjusts the refcounts of every cluster reachable from an L1 table. */
bool qcow2_update_l1_refcounts(BlockNode *bs, uint64_t l1_offset,
                               uint32_t l1_size, int64_t addend,
                               GError **errp);
/* The same for an L1 table already in memory (host-endian). */
bool qcow2_update_l1_array_refcounts(BlockNode *bs, const uint64_t *l1,
                                     uint32_t l1_size, int64_t addend,
                                     GError **errp);
/* True if two entries of an L1 table point at the same L2 table (never so
 * in a sane image; refused for the active table of a writable image). */
bool qcow2_l1_has_duplicates(const uint64_t *l1, uint32_t l1_size);
/* Recomputes the COPIED flags in the active L1/L2 tables. */
bool qcow2_fix_copied_flags(BlockNode *bs, GError **errp);
bool qcow2_check(BlockNode *bs, BlockCheckMode fix, BlockCheckResult *res,
                 GError **errp);

/* For check: an in-memory refcount per host cluster, built from metadata. */
typedef struct Qcow2CheckRefs {
    uint64_t nb_clusters;
    uint32_t *counts;
    BlockCheckResult *res;
} Qcow2CheckRefs;
/* Counts one reference to every cluster in [offset, offset+size); references
 * past the end of the file or unaligned offsets count as corruptions. */
void qcow2_check_ref_range(BlockNode *bs, Qcow2CheckRefs *refs,
                           uint64_t offset, uint64_t size);

/* What qcow2_find_cluster_user() found: the first host cluster of the set
 * that something else uses, what uses it, and the set's value for it. */
typedef struct Qcow2ClusterUser {
    bool found;
    uint64_t offset;
    const char *what;         /* "a refcount block", "an L2 table", ... */
    gpointer value;
} Qcow2ClusterUser;
/* Searches the refcount blocks, the active and snapshot L2 tables and the
 * guest data they map (compressed ranges included) for a host cluster in
 * 'clusters' (cluster index -> non-NULL value). Each L2 table is read once;
 * tables that cannot be read are skipped (reads report them). */
void qcow2_find_cluster_user(BlockNode *bs, GHashTable *clusters,
                             Qcow2ClusterUser *user);

/* qcow2-overlap.c: the map of metadata clusters and the write check. */
/* Builds the map from the metadata (snapshot L1 tables are read). */
GHashTable *qcow2_meta_build(BlockNode *bs, GError **errp);
/* Replaces s->meta by a fresh build (writable nodes only); on failure the
 * node is unusable. */
bool qcow2_meta_rebuild(BlockNode *bs, GError **errp);
/* The same at the end of an operation that returned 'ok' (whose error, if
 * any, is kept); returns ok && rebuilt. */
bool qcow2_meta_rebuild_after(BlockNode *bs, bool ok, GError **errp);
void qcow2_meta_free(BDRVQcow2State *s);
/* Incremental updates as metadata is allocated or freed (no-ops while
 * there is no map). */
void qcow2_meta_add(BlockNode *bs, uint32_t kind, uint64_t off, uint64_t len);
void qcow2_meta_remove(BlockNode *bs, uint32_t kind, uint64_t off,
                       uint64_t len);
/* For qcow2_bitmaps_add_metadata: adds a range to a map being built. */
void qcow2_meta_add_to(BlockNode *bs, GHashTable *map, uint32_t kind,
                       uint64_t off, uint64_t len);
/* The kinds of metadata in the clusters [off, off+len) touches. */
uint32_t qcow2_meta_kinds(BlockNode *bs, uint64_t off, uint64_t len);
const char *qcow2_meta_kind_name(uint32_t kinds);
/* Before writing [off, off+len): fails, marking the image corrupt as QEMU
 * does, if the range holds metadata of a kind not in 'ign'. */
bool qcow2_pre_write_check(BlockNode *bs, uint32_t ign, uint64_t off,
                           uint64_t len, GError **errp);
/* Test hook: the live map equals a fresh build from the metadata (true
 * also when there is no map or the metadata cannot be read now). */
bool qcow2_meta_verify(BlockNode *bs, GError **errp);

/* qcow2-cache.c: tables of one cluster each, cached by host offset. */
/* 'kind' (QCOW2_OL_*) is what a writeback may overwrite. */
Qcow2Cache *qcow2_cache_new(BlockNode *bs, int nb_tables, uint32_t kind);
void qcow2_cache_free(Qcow2Cache *c);
/* Before 'c' writes back anything, 'dep' is written back and the file
 * synced (once: the dependency is then gone). Whatever 'dep' or 'c'
 * waited for before is done now (no cycles); fails if that fails. */
bool qcow2_cache_set_dependency(Qcow2Cache *c, Qcow2Cache *dep,
                                GError **errp);
/* Before 'c' writes back anything, the file is synced (once). */
void qcow2_cache_depends_on_sync(Qcow2Cache *c);
/* Loads (or, with _empty, zero-fills) the table at offset; returns a pointer
 * valid until qcow2_cache_put(). */
void *qcow2_cache_get(Qcow2Cache *c, uint64_t offset, GError **errp);
void *qcow2_cache_get_empty(Qcow2Cache *c, uint64_t offset, GError **errp);
void qcow2_cache_put(Qcow2Cache *c, void *table);
void qcow2_cache_mark_dirty(Qcow2Cache *c, void *table);
/* Writes back every dirty table (after what 'c' depends on); no sync of
 * its own. */
bool qcow2_cache_flush(Qcow2Cache *c, GError **errp);
/* The same, and every table written back so far is durable when it
 * returns (a few dirty tables by RWF_DSYNC writes, else with a sync). */
bool qcow2_cache_flush_durable(Qcow2Cache *c, GError **errp);
/* Drops a cached table without writing it (its cluster was freed). */
void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);
/* Applies the queued frees and writes back both caches, each after what
 * it depends on (no final sync). */
bool qcow2_flush_caches(BlockNode *bs, GError **errp);
/* The same, then the file synced: everything written so far is durable. */
bool qcow2_flush_all(BlockNode *bs, GError **errp);

/* qcow2-cluster.c */
/* Writes the whole in-memory active L1 table to disk. */
bool qcow2_write_l1(BlockNode *bs, GError **errp);
bool qcow2_grow_l1_table(BlockNode *bs, uint64_t min_size, GError **errp);
/* Reads/writes guest data. */
bool qcow2_preadv(BlockNode *bs, uint64_t offset, uint64_t bytes,
                  const struct iovec *iov, int iovcnt, GError **errp);
bool qcow2_pwritev(BlockNode *bs, uint64_t offset, uint64_t bytes,
                   const struct iovec *iov, int iovcnt, GError **errp);
/* What qcow2_cluster_discard does to whole clusters: unmap them (entry 0),
 * make them read as zeroes and unmap them, or make them read as zeroes
 * keeping their host clusters (v3: the ZERO flag on the allocated entry; a
 * v2 image has no ZERO flag and unmaps, as QEMU, since it has no backing
 * file to show through). */
typedef enum {
    QCOW2_DISCARD,
    QCOW2_ZERO_UNMAP,
    QCOW2_ZERO_KEEP,
} Qcow2DiscardMode;
/* Zeroes or discards whole clusters; partial clusters of a zeroing are
 * written as zeroes. */
bool qcow2_cluster_discard(BlockNode *bs, uint64_t offset, uint64_t bytes,
                           Qcow2DiscardMode mode, GError **errp);
/* Raw access to the guest-address space including the vmstate area. */
bool qcow2_rw_vmspace(BlockNode *bs, uint64_t offset, void *buf, size_t len,
                      bool write, GError **errp);

/* qcow2-compress.c: compressed clusters (read only; entry has bit 62). */
/* Host byte offset of the data and the bytes its sectors span from the
 * sector holding that offset (an upper bound on the data's size). */
void qcow2_compressed_extent(const BDRVQcow2State *s, uint64_t entry,
                             uint64_t *offset, uint64_t *bytes);
/* The byte range whose clusters hold one reference each for this entry. */
void qcow2_compressed_ref_range(const BDRVQcow2State *s, uint64_t entry,
                                uint64_t *start, uint64_t *len);
/* Reads and inflates one compressed cluster into out (cluster_size bytes);
 * data outside the file or a bad stream is an I/O error. */
bool qcow2_read_compressed(BlockNode *bs, uint64_t entry, uint8_t *out,
                           GError **errp);

/* qcow2-snapshot.c */
bool qcow2_read_snapshots(BlockNode *bs, GError **errp);
void qcow2_free_snapshots(BDRVQcow2State *s);
bool qcow2_snapshot_create(BlockNode *bs, const BlockSnapshotInfo *sn,
                           GError **errp);
GPtrArray *qcow2_snapshot_list(BlockNode *bs);
bool qcow2_snapshot_apply(BlockNode *bs, const char *id_or_name, GError **errp);
bool qcow2_snapshot_load_vmstate(BlockNode *bs, const char *id, uint64_t pos,
                                 void *buf, size_t len, GError **errp);
bool qcow2_snapshot_delete(BlockNode *bs, const char *id, const char *name,
                           GError **errp);

/*
 * qcow2-bitmap.c: persistent bitmaps. qcow2.c calls:
 *  - qcow2_bitmaps_load() at the end of open (after the header, refcounts
 *    and snapshots are read; s->nb_bitmaps etc. hold the extension, already
 *    dropped if the autoclear bit was clear);
 *  - qcow2_bitmaps_open_rw() right after that when opened read-write: the
 *    crash-safe layout (through bdrv_write_intent_arm), or IN_USE marking
 *    (qcow2_bitmaps_mark_in_use) with BDRV_O_BITMAPS_IN_USE;
 *  - qcow2_bitmaps_store() from close (read-write only), before the caches
 *    are flushed and the header is rewritten for the last time;
 *  - qcow2_bitmaps_close() at close to free s->bitmaps;
 *  - qcow2_bitmaps_check() from check, to count the clusters bitmaps use;
 *  - qcow2_bitmaps_info() from get_info, to fill info->bitmaps.
 */
bool qcow2_bitmaps_load(BlockNode *bs, GError **errp);
bool qcow2_bitmaps_mark_in_use(BlockNode *bs, GError **errp);
bool qcow2_bitmaps_store(BlockNode *bs, GError **errp);
void qcow2_bitmaps_close(BlockNode *bs);
void qcow2_bitmaps_check(BlockNode *bs, Qcow2CheckRefs *refs);
/* Adds the loaded bitmaps' tables and data clusters to a metadata map. */
void qcow2_bitmaps_add_metadata(BlockNode *bs, GHashTable *map);
void qcow2_bitmaps_info(BlockNode *bs, BlockImageInfo *info);
bool qcow2_can_store_bitmap(BlockNode *bs, const char *name,
                            uint32_t granularity, GError **errp);
/* Crash-safe layout (BlockDriver's bitmaps_arm, bitmap_write_words,
 * bitmap_set_flags; block/write-intent.c drives them). */
bool qcow2_bitmaps_arm(BlockNode *bs, GError **errp);
bool qcow2_bitmap_write_words(BlockNode *bs, BdrvDirtyBitmap *bm,
                              uint64_t first_word, uint64_t nwords,
                              const uint64_t *words, bool durable,
                              GError **errp);
bool qcow2_bitmap_set_flags(BlockNode *bs, BdrvDirtyBitmap *bm, bool in_use,
                            GError **errp);
/* Read-write open: crash-safe layout, or IN_USE with BDRV_O_BITMAPS_IN_USE. */
bool qcow2_bitmaps_open_rw(BlockNode *bs, int flags, GError **errp);
bool qcow2_remove_persistent_bitmap(BlockNode *bs, const char *name,
                                    GError **errp);

#endif
