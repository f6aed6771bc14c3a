/*
 * The source's return-path thread: one per connection, it reads what the
 * destination sends back (return-path.h) and acts on it. SHUT ends it (0:
 * the destination loaded everything; else the migration fails); PONG is
 * only traced by QEMU; REQ_PAGES(_ID) go to RAM, which queues them for the
 * migration thread or, with a preempt channel, sends them there at once;
 * RECV_BITMAP and RESUME_ACK are the recovery handshake the job thread
 * waits for; SWITCHOVER_ACK lets the VM stop. Whatever goes wrong is kept
 * in job->rp_error, "fatal" when the destination broke the protocol (the
 * migration fails) rather than the connection (a postcopy may pause), and
 * the main channel is shut down so the job thread notices at once.
 */
#include "migration-job-int.h"
#include "migration/return-path.h"

/* How long a failed job waits for the destination's own account. */
#define RP_EXPLAIN_WAIT_US (1000 * 1000)

static void signal_flag(MigrationJob *job, bool *flag)
{
    g_mutex_lock(&job->lock);
    *flag = true;
    g_cond_broadcast(&job->cond);
    g_mutex_unlock(&job->lock);
}

static bool handle_requests(MigrationJob *job, const MigRpMessage *m,
                            GError **errp)
{
    /* The preempt channel is only used after the switchover; before it
     * RAM refuses any request anyway. */
    QEMUFile *urgent = job->params.postcopy_preempt ? job->urgent : NULL;

    return ram_migration_request(job->ram,
                                 m->type == MIG_RP_MSG_REQ_PAGES_ID ?
                                 m->block : NULL,
                                 m->start, m->length, urgent, errp);
}

/* A message the source cannot accept: the destination broke the
 * protocol. */
static bool refuse(GError **errp, const char *what)
{
    g_set_error_literal(errp, TERN_ERROR, TERN_ERR_INVALID, what);
    return false;
}

static bool handle_shut(uint32_t value, bool *shut, GError **errp)
{
    *shut = true;
    if (value) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "the destination failed (SHUT %u)", value);
    }
    return !value;
}

static bool handle_resume_ack(MigrationJob *job, uint32_t value,
                              GError **errp)
{
    if (value != MIG_RP_RESUME_ACK_VALUE ||
        migration_job_status(job) != MIGRATION_STATUS_POSTCOPY_RECOVER) {
        return tern_invalid(errp,
                            "unexpected RESUME_ACK %u", value);
    }
    signal_flag(job, &job->resume_acked);
    return true;
}

/* One message; *shut when the destination says it is done. */
static bool handle(MigrationJob *job, const MigRpMessage *m, bool *shut,
                   GError **errp)
{
    switch (m->type) {
    case MIG_RP_MSG_SHUT:
        return handle_shut(m->value, shut, errp);
    case MIG_RP_MSG_PONG:
        return true;
    case MIG_RP_MSG_REQ_PAGES:
    case MIG_RP_MSG_REQ_PAGES_ID:
        return job->ram ? handle_requests(job, m, errp)
                        : refuse(errp, "page request without RAM");
    case MIG_RP_MSG_RECV_BITMAP:
        if (!job->ram) {
            return refuse(errp, "received bitmap without RAM");
        }
        if (!ram_migration_load_recv_bitmap(job->ram, job->rp, m->block,
                                            errp)) {
            return false;
        }
        signal_flag(job, &job->bitmap_loaded);
        return true;
    case MIG_RP_MSG_RESUME_ACK:
        return handle_resume_ack(job, m->value, errp);
    case MIG_RP_MSG_SWITCHOVER_ACK:
        if (!job->params.switchover_ack) {
            return refuse(errp, "SWITCHOVER_ACK without switchover-ack");
        }
        g_atomic_int_set(&job->switchover_acked, 1);
        return true;
    default:
        g_assert_not_reached();     /* mig_rp_read knows every type */
    }
}

static gpointer rp_thread(gpointer opaque)
{
    MigrationJob *job = opaque;
    GError *err = NULL;
    bool shut = false, fatal;
    MigRpMessage m;

    while (mig_rp_read(job->rp, &m, &err) && handle(job, &m, &shut, &err) &&
           !shut) {
    }
    /* A broken connection shows as a sticky error on one of the files;
     * anything else is the destination's doing. */
    fatal = err && !qemu_file_get_error(job->rp) &&
            !(job->urgent && qemu_file_get_error(job->urgent));
    if (err) {
        g_prefix_error(&err, job->urgent && qemu_file_get_error(job->urgent) ?
                       "preempt channel: " : "return path: ");
    }
    g_mutex_lock(&job->lock);
    job->rp_error = err;
    job->rp_fatal = fatal;
    job->rp_shut = shut && !err;
    job->rp_done = true;
    if (err && job->f) {
        qemu_file_shutdown_channel(job->f);
    }
    g_cond_broadcast(&job->cond);
    g_mutex_unlock(&job->lock);
    return NULL;
}

void job_rp_start(MigrationJob *job)
{
    g_mutex_lock(&job->lock);
    g_clear_error(&job->rp_error);
    job->rp_fatal = job->rp_done = job->rp_shut = false;
    job->bitmap_loaded = job->resume_acked = false;
    g_mutex_unlock(&job->lock);
    job->rp_thread = g_thread_new("migration/rp", rp_thread, job);
}

void job_rp_stop(MigrationJob *job)
{
    if (job->rp_thread) {
        qemu_file_shutdown_channel(job->rp);
        g_thread_join(job->rp_thread);
        job->rp_thread = NULL;
    }
    qemu_fclose(job->rp, NULL);
    job->rp = NULL;
}

bool job_rp_failed(MigrationJob *job, bool *fatal, GError **errp)
{
    bool failed;

    g_mutex_lock(&job->lock);
    failed = job->rp_error != NULL;
    *fatal = job->rp_fatal;
    if (failed) {
        g_propagate_error(errp, g_error_copy(job->rp_error));
    }
    g_mutex_unlock(&job->lock);
    return failed;
}

bool job_rp_wait_for(MigrationJob *job, bool *flag, GError **errp)
{
    bool ok;

    g_mutex_lock(&job->lock);
    while (!*flag && !job->rp_done && !g_atomic_int_get(&job->cancel)) {
        g_cond_wait(&job->cond, &job->lock);
    }
    ok = *flag;
    if (!ok) {
        g_propagate_error(errp, job->rp_error ? g_error_copy(job->rp_error) :
                          g_error_new(TERN_ERROR, TERN_ERR_IO, "return path "
                                      "closed before the destination "
                                      "answered"));
    }
    g_mutex_unlock(&job->lock);
    return ok;
}

void job_rp_explain(MigrationJob *job, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + RP_EXPLAIN_WAIT_US;

    if (!job->rp_thread || !errp || !*errp) {
        return;
    }
    g_mutex_lock(&job->lock);
    while (!job->rp_done &&
           g_cond_wait_until(&job->cond, &job->lock, deadline)) {
    }
    if (job->rp_fatal && job->rp_error) {
        g_clear_error(errp);
        g_propagate_error(errp, g_error_copy(job->rp_error));
    }
    g_mutex_unlock(&job->lock);
}

bool job_rp_wait_shut(MigrationJob *job, GError **errp)
{
    return job_rp_wait_for(job, &job->rp_shut, errp);
}
