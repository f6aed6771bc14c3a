/*
 * Private to the stream inspector: the state shared by the framing walker
 * (stream-dump.c), the RAM section reader (stream-dump-ram.c) and the
 * dirty-bitmap section reader (stream-dump-bitmap.c).
 */
#ifndef MIGRATION_STREAM_DUMP_INT_H
#define MIGRATION_STREAM_DUMP_INT_H

#include "migration/qemu-file.h"
#include "migration/stream-dump.h"
#include "tern/json.h"

/* Nesting allowed in the trailing VM description (QEMU's are under 20). */
#define VMDESC_MAX_DEPTH 64

typedef struct DumpRamBlock {
    char idstr[256];
    uint64_t length;
} DumpRamBlock;

typedef struct DumpRam {
    GArray *blocks;                 /* of DumpRamBlock */
    int last_block;                 /* for CONTINUE; -1 before any */
    uint64_t zero, normal, xbzrle, compressed;
} DumpRam;

typedef struct DumpBitmap {
    char node[256];
    char name[256];
    uint32_t granularity;
    uint8_t flags;
    bool completed;
    uint64_t chunks, zero_chunks;
    GArray *dirty;                  /* of uint64_t pairs: byte start, length */
} DumpBitmap;

typedef struct DumpBitmaps {
    GPtrArray *list;                /* of DumpBitmap */
    char node[256];                 /* names carried over between chunks */
    char name[256];
    bool have_node, have_name;
} DumpBitmaps;

typedef struct StreamDump {
    const StreamDumpOptions *opts;
    GString *out;
    const uint8_t *data;            /* the whole stream */
    size_t size;
    json_object *vmdesc_devices;    /* from the trailing description */
    size_t vmdesc_offset;           /* where it starts */
    bool ignore_shared;             /* capability x-ignore-shared */
    GHashTable *sections;           /* section id -> DumpSection */
    DumpRam ram;
    DumpBitmaps bitmaps;
    int depth;                      /* PACKAGED nesting */
} StreamDump;

bool dump_ram_section(StreamDump *d, QEMUFile *f, bool start, GError **errp);
void dump_ram_summary(StreamDump *d);
void dump_ram_free(DumpRam *ram);

bool dump_bitmap_section(StreamDump *d, QEMUFile *f, GError **errp);
void dump_bitmap_summary(StreamDump *d);
void dump_bitmaps_free(DumpBitmaps *b);

bool dump_fail(GError **errp, QEMUFile *f, const char *fmt, ...)
    TERN_PRINTF(3, 4);

#endif
