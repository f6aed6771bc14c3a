/*
 * The I/O thread: one GMainContext with its own GMainLoop on a GThread.
 * File descriptors are watched with GLib unix fd sources attached to that
 * context, so callbacks run on the thread and never on a vCPU.
 */
#include <glib-unix.h>

#include "hw/virtio/iothread.h"

struct IoThread {
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
};

typedef struct FdWatch {
    IoThreadFdFunc fn;
    void *opaque;
} FdWatch;

static gpointer run(gpointer opaque)
{
    IoThread *t = opaque;

    g_main_context_push_thread_default(t->ctx);
    g_main_loop_run(t->loop);
    g_main_context_pop_thread_default(t->ctx);
    return NULL;
}

IoThread *iothread_new(const char *name)
{
    IoThread *t = g_new0(IoThread, 1);

    t->ctx = g_main_context_new();
    t->loop = g_main_loop_new(t->ctx, false);
    t->thread = g_thread_new(name, run, t);
    return t;
}

static gboolean quit_loop(gpointer opaque)
{
    g_main_loop_quit(opaque);
    return G_SOURCE_REMOVE;
}

void iothread_free(IoThread *t)
{
    GSource *s;

    if (!t) {
        return;
    }
    s = g_idle_source_new();
    g_source_set_callback(s, quit_loop, t->loop, NULL);
    g_source_attach(s, t->ctx);
    g_source_unref(s);
    g_thread_join(t->thread);
    g_main_loop_unref(t->loop);
    g_main_context_unref(t->ctx);
    g_free(t);
}

static gboolean fd_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    FdWatch *w = opaque;

    w->fn(w->opaque, fd);
    return G_SOURCE_CONTINUE;
}

guint iothread_add_fd(IoThread *t, int fd, IoThreadFdFunc fn, void *opaque)
{
    GSource *s = g_unix_fd_source_new(fd, G_IO_IN);
    FdWatch *w = g_new(FdWatch, 1);
    guint tag;

    w->fn = fn;
    w->opaque = opaque;
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))fd_ready, w, g_free);
    /* Without this GLib "blocks" the source around each dispatch, removing
     * and re-adding its fd, and wakes the context twice per kick; callbacks
     * never iterate the context, so recursion cannot happen. */
    g_source_set_can_recurse(s, true);
    tag = g_source_attach(s, t->ctx);
    g_source_unref(s);
    return tag;
}

void iothread_remove_fd(IoThread *t, guint tag)
{
    GSource *s = g_main_context_find_source_by_id(t->ctx, tag);

    if (s) {
        g_source_destroy(s);
    }
}
