/*
 * Character backends for serial ports (and later consoles): the -serial
 * spec "stdio", "file:PATH", "unix:PATH,server=on[,wait=off]", "pty", "null" or
 * "none"
 * ("none" means no device at all; chardev_new refuses it, the caller checks).
 * Output may be written from any thread; input is read on the main loop and
 * handed to the frontend, which takes what fits and calls
 * chardev_accept_input() when it has room again (from any thread).
 */
#ifndef SOFTMMU_CHARDEV_H
#define SOFTMMU_CHARDEV_H

#include "tern/common.h"

typedef struct Chardev Chardev;

/* Returns how many of the len bytes the frontend took. */
typedef size_t (*ChardevReceive)(void *opaque, const uint8_t *buf, size_t len);

Chardev *chardev_new(const char *spec, GMainContext *ctx, GError **errp);
/* From a -chardev argument: pty, file (path=, append=), null or stdio,
 * labelled with its id=. A pty's master is the guest's end; its slave's
 * name is reported on stderr and in chardev_filename ("pty:/dev/pts/N"). */
Chardev *chardev_new_opts(const char *arg, GMainContext *ctx, GError **errp);
/* The -chardev argument (among chardev_args, as given) whose id= is id. */
const char *chardev_find_option(GPtrArray *chardev_args, const char *id);
/* What query-chardev shows: the label (NULL for a -serial spec) and
 * QEMU's "filename" for the backend. */
const char *chardev_label(const Chardev *c);
const char *chardev_filename(const Chardev *c);
void chardev_free(Chardev *c);
void chardev_set_frontend(Chardev *c, ChardevReceive receive, void *opaque);
/* Drops output (rather than block the guest) when a socket peer is slow or
 * absent, as QEMU does. */
void chardev_write(Chardev *c, const uint8_t *buf, size_t len);
void chardev_accept_input(Chardev *c);

#endif
