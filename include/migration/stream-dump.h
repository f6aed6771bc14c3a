/*
 * The migration stream inspector behind tools/tern-stream (and its fuzz
 * harness): walks a complete stream held in memory without any device
 * model, prints its structure and reports every inconsistency it finds.
 *
 * It understands the framing (header, configuration, sections, footers,
 * commands, PACKAGED sub-streams, EOF, the JSON VM description), QEMU's RAM
 * section (version 4) and the dirty-bitmap section (version 1, per QEMU's
 * block-dirty-bitmap.c, flags in 1, 2 or 4 bytes, granularity be32). Other
 * device sections are skipped using the sizes in the VM description, or,
 * without one, by finding their section footer.
 */
#ifndef MIGRATION_STREAM_DUMP_H
#define MIGRATION_STREAM_DUMP_H

#include "tern/error.h"

typedef struct StreamDumpOptions {
    bool verbose;           /* one line per RAM page run and bitmap chunk */
} StreamDumpOptions;

/* Append a report of 'stream' to 'out'. Returns false with errp at the
 * first inconsistency; 'out' then holds everything up to it. */
bool stream_dump(GBytes *stream, const StreamDumpOptions *opts, GString *out,
                 GError **errp);

#endif
