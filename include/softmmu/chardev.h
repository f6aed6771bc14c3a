/*
 * Character backends for serial ports (and later consoles): the -serial
 * spec "stdio", "file:PATH", "unix:PATH,server=on[,wait=off]", "null" or "none"
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
void chardev_free(Chardev *c);
void chardev_set_frontend(Chardev *c, ChardevReceive receive, void *opaque);
/* Drops output (rather than block the guest) when a socket peer is slow or
 * absent, as QEMU does. */
void chardev_write(Chardev *c, const uint8_t *buf, size_t len);
void chardev_accept_input(Chardev *c);

#endif
