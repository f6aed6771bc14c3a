/*
 * tern-img's bitmap pieces, called from tools/tern-img.c: the 'bitmap'
 * subcommand and the "bitmaps" part of 'info' output in qemu-img's shapes.
 */
#ifndef TOOLS_TERN_IMG_BITMAP_H
#define TOOLS_TERN_IMG_BITMAP_H

#include "block/block.h"
#include "tern/json.h"

/*
 * tern-img bitmap (--merge SOURCE | --add | --remove | --clear | --enable |
 *   --disable)... [-b SOURCE_FILE [-F SOURCE_FMT]] [-g GRANULARITY]
 *   [-f FMT] FILENAME BITMAP
 * and, for tests, tern-img bitmap --dump [-f FMT] FILENAME BITMAP, which
 * prints the dirty extents as JSON. argv[0] is "bitmap"; returns the exit
 * status (0 ok, 1 error), like qemu-img.
 */
int img_bitmap(int argc, char **argv);

/* Adds the "bitmaps" member (if bitmaps is non-NULL) to object o. */
void img_bitmaps_json(json_object *o, const GPtrArray *bitmaps);
/* Appends qemu-img info's human "bitmaps:" block, each line indented. */
void img_bitmaps_human(GString *out, const GPtrArray *bitmaps,
                       const char *indent);

#endif
