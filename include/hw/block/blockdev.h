/*
 * Named block nodes, as -blockdev and QMP blockdev-add build them
 * (QEMU's BlockdevOptions for the drivers tern has: "file" protocol nodes,
 * and "raw" or "qcow2" format nodes over one). A format node owns its file
 * node; both keep their node-names and are listed, newest first, by
 * query-named-block-nodes. A device's drive= may name a format (or file)
 * node: the set then makes a drive over it in the machine's drive set, so
 * QMP, migration and snapshots see it as they see a -drive.
 *
 * A file node given auto-read-only opens read-only, and is reopened
 * read-write when a writable format node is put over it (nothing uses a
 * node without a parent, so the reopen is safe). With -incoming every node
 * opens inactive, as -drive does.
 */
#ifndef HW_BLOCK_BLOCKDEV_H
#define HW_BLOCK_BLOCKDEV_H

#include "hw/block/drive.h"
#include "monitor/qmp-types.h"

typedef struct BlockdevSet BlockdevSet;

/* QEMU's BlockdevOptions (subset), decoded by blockdev_options_type. */
typedef struct BlockdevCacheOptions {
    bool has_direct;
    bool direct;
    bool has_no_flush;
    bool no_flush;
} BlockdevCacheOptions;

typedef enum { BLOCKDEV_DRIVER_FILE, BLOCKDEV_DRIVER_RAW, BLOCKDEV_DRIVER_QCOW2 } BlockdevDriver;

typedef struct BlockdevOptions {
    int driver;                 /* BlockdevDriver */
    bool has_node_name;
    char *node_name;
    bool has_discard;
    int discard;                /* ignore, unmap */
    bool has_cache;
    BlockdevCacheOptions cache;
    bool has_read_only;
    bool read_only;
    bool has_auto_read_only;
    bool auto_read_only;
    bool has_force_share;
    bool force_share;
    bool has_detect_zeroes;
    int detect_zeroes;          /* "off" */
    void *u;                    /* BlockdevOptionsFile or BlockdevOptionsFormat */
} BlockdevOptions;

typedef struct BlockdevOptionsFile {
    char *filename;
    bool has_aio;
    int aio;                    /* "threads" */
    bool has_locking;
    int locking;                /* auto, on, off */
} BlockdevOptionsFile;

/* BlockdevRef: a node-name, or the options of a new (file) node. */
typedef struct BlockdevRef {
    int kind;                   /* 0: definition, 1: reference */
    BlockdevOptions definition;
    char *reference;
} BlockdevRef;

/* BlockdevRefOrNull: the same, or null (no backing file). */
typedef struct BlockdevRefOrNull {
    int kind;                   /* 0: definition, 1: reference, 2: null */
    BlockdevOptions definition;
    char *reference;
    char null;
} BlockdevRefOrNull;

typedef struct BlockdevOptionsFormat {
    BlockdevRef file;
    bool has_backing;
    BlockdevRefOrNull backing;  /* qcow2: tern opens no backing files */
} BlockdevOptionsFormat;

extern const QmpType blockdev_options_type;

BlockdevSet *blockdev_set_new(DriveSet *drives, bool incoming);
/* Closes every node; the drives over them must be gone. NULL is fine. */
void blockdev_set_free(BlockdevSet *s);
/* -blockdev: JSON or key=value, checked as blockdev-add checks it. */
bool blockdev_set_add_option(BlockdevSet *s, const char *arg, GError **errp);
/* blockdev-add: a new named node (and its inline file node). */
bool blockdev_add(BlockdevSet *s, const BlockdevOptions *o, GError **errp);
/* blockdev-del: a node nothing uses. */
bool blockdev_del(BlockdevSet *s, const char *node_name, GError **errp);
/* The drive a device uses node 'name' through, claimed for 'device';
 * NULL if there is no such node (TERN_ERR_NOT_FOUND) or it is taken. */
Drive *blockdev_claim(BlockdevSet *s, const char *name, const char *device,
                      GError **errp);
/* The machine's drives (-drive and those over nodes). */
const BlockBackendList *blockdev_set_backends(BlockdevSet *s);
/* The nodes, newest first; NULL past the last. */
BlockNode *blockdev_node_at(BlockdevSet *s, size_t i);

#endif
