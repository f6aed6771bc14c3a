/*
 * An I/O thread: a GLib main context running on a thread of its own, so that
 * device work (virtio-blk requests) happens off the vCPU and main-loop
 * threads. Devices attach eventfds (ioeventfd kicks) with a callback that
 * runs on the thread.
 */
#ifndef HW_VIRTIO_IOTHREAD_H
#define HW_VIRTIO_IOTHREAD_H

#include "tern/common.h"

typedef struct IoThread IoThread;
typedef void (*IoThreadFdFunc)(void *opaque, int fd);

IoThread *iothread_new(const char *name);
/* Stops the thread (after its current callback) and frees it; NULL is fine. */
void iothread_free(IoThread *t);
/* Calls fn(opaque, fd) on the thread whenever fd is readable. Returns a tag
 * for iothread_remove_fd. */
guint iothread_add_fd(IoThread *t, int fd, IoThreadFdFunc fn, void *opaque);
void iothread_remove_fd(IoThread *t, guint tag);

#endif
