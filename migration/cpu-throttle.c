/*
 * The vCPU throttle behind auto-converge (include/migration/cpu-throttle.h):
 * one ticker thread, asleep on a condition while the percentage is 0, else
 * kicking every vCPU into a sleep once per throttle period.
 */
#include "migration/cpu-throttle.h"

struct CpuThrottle {
    Vcpu **vcpus;
    unsigned n;
    GThread *thread;
    GMutex lock;
    GCond cond;
    unsigned pct;               /* under lock */
    bool quit;                  /* under lock */
};

int64_t cpu_throttle_sleep_us(unsigned pct)
{
    pct = MIN(pct, 99);
    return (int64_t)CPU_THROTTLE_SLICE_US * pct / (100 - pct);
}

static gpointer ticker(gpointer opaque)
{
    CpuThrottle *t = opaque;

    g_mutex_lock(&t->lock);
    while (!t->quit) {
        int64_t sleep_us;

        if (!t->pct) {
            g_cond_wait(&t->cond, &t->lock);
            continue;
        }
        sleep_us = cpu_throttle_sleep_us(t->pct);
        g_mutex_unlock(&t->lock);
        for (unsigned i = 0; i < t->n; i++) {
            vcpu_throttle_sleep(t->vcpus[i], sleep_us);
        }
        g_mutex_lock(&t->lock);
        /* The next kick after the sleep plus one slice of running. */
        g_cond_wait_until(&t->cond, &t->lock, g_get_monotonic_time() +
                          sleep_us + CPU_THROTTLE_SLICE_US);
    }
    g_mutex_unlock(&t->lock);
    return NULL;
}

CpuThrottle *cpu_throttle_new(Vcpu **vcpus, unsigned n)
{
    CpuThrottle *t = g_new0(CpuThrottle, 1);

    t->vcpus = vcpus;
    t->n = n;
    g_mutex_init(&t->lock);
    g_cond_init(&t->cond);
    t->thread = g_thread_new("cpu-throttle", ticker, t);
    return t;
}

void cpu_throttle_free(CpuThrottle *t)
{
    if (!t) {
        return;
    }
    g_mutex_lock(&t->lock);
    t->quit = true;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
    g_thread_join(t->thread);
    g_cond_clear(&t->cond);
    g_mutex_clear(&t->lock);
    g_free(t);
}

void cpu_throttle_set(CpuThrottle *t, unsigned pct)
{
    g_mutex_lock(&t->lock);
    t->pct = MIN(pct, 99);
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
}

unsigned cpu_throttle_get(CpuThrottle *t)
{
    unsigned pct;

    g_mutex_lock(&t->lock);
    pct = t->pct;
    g_mutex_unlock(&t->lock);
    return pct;
}
