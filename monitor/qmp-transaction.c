/*
 * QMP 'transaction': several actions applied all-or-nothing. The dispatcher
 * has decoded every action's data before anything runs (as QEMU's visitor
 * parses the whole request first); then prepare runs in order, and either
 * every action commits or the prepared ones abort in reverse order.
 */
#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

typedef struct Action {
    const QmpActionOps *ops;
    void *opaque;
    const void *data;
    void *state;            /* from prepare; NULL until prepared */
} Action;

static void action_resolve(const QmpCall *call, const QmpTransactionAction *ta,
                           Action *a)
{
    a->ops = qmp_registry_action_at(call->registry, ta->type, &a->opaque);
    a->data = ta->data;
}

static bool properties_check(const QmpTransactionArgs *args, const Action *acts,
                             size_t n, GError **errp)
{
    if (args->properties.completion_mode == QMP_COMPLETION_GROUPED && n > 0) {
        /* Only job-starting actions honour grouped mode; tern has none yet. */
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Action '%s' does not support Transaction property "
                    "completion-mode = grouped", acts[0].ops->type);
        return false;
    }
    return true;
}

static bool actions_prepare(const QmpCall *call, Action *acts, size_t n,
                            GError **errp)
{
    for (size_t i = 0; i < n; i++) {
        QmpCall acall = *call;

        acall.opaque = acts[i].opaque;
        acts[i].state = acts[i].ops->prepare(&acall, acts[i].data, errp);
        if (!acts[i].state) {
            for (size_t j = i; j-- > 0;) {
                if (acts[j].ops->abort) {
                    acts[j].ops->abort(acts[j].state);
                }
            }
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (acts[i].ops->commit) {
            acts[i].ops->commit(acts[i].state);
        }
    }
    return true;
}

json_object *qmp_cmd_transaction(const QmpCall *call, const void *args,
                                 GError **errp)
{
    const QmpTransactionArgs *a = args;
    size_t n = a->actions.len;
    g_autofree Action *acts = g_new0(Action, n ? n : 1);
    bool ok;

    for (size_t i = 0; i < n; i++) {
        action_resolve(call, &QMP_LIST_AT(&a->actions, QmpTransactionAction, i),
                       &acts[i]);
    }
    ok = properties_check(a, acts, n, errp) && actions_prepare(call, acts, n, errp);
    for (size_t i = 0; i < n; i++) {
        if (acts[i].state && acts[i].ops->clean) {
            acts[i].ops->clean(acts[i].state);
        }
    }
    return ok ? qmp_return_empty() : NULL;
}
