/*
 * The protocol-level QMP commands, which need nothing outside the monitor:
 * qmp_capabilities (per-session negotiation), query-version,
 * query-commands and query-qmp-schema (generated from the registry), and
 * getfd/closefd (descriptors a client passes, named for later commands:
 * migrate's "fd:NAME").
 */
#include <string.h>
#include <unistd.h>

#include "monitor/qmp-commands.h"
#include "monitor/qmp-dispatch.h"
#include "tern/error.h"

/* --- qmp_capabilities ----------------------------------------------------------- */

static const char *const qmp_capability_values[] = { "oob", NULL };
static const QmpType qmp_capability_type = {
    .name = "QMPCapability", .kind = QMP_KIND_ENUM, .size = sizeof(int),
    .values = qmp_capability_values,
};
static const QmpType qmp_capability_list = {
    .name = "[QMPCapability]", .kind = QMP_KIND_ARRAY, .size = sizeof(QmpList),
    .element = &qmp_capability_type,
};

typedef struct CapabilitiesArgs {
    bool has_enable;
    QmpList enable;             /* of int (QMPCapability) */
} CapabilitiesArgs;

QMP_OBJECT_TYPE(capabilities_args, "qmp_capabilities-arg", CapabilitiesArgs,
    QMP_OPTIONAL(CapabilitiesArgs, enable, "enable", qmp_capability_list));

static json_object *cmd_qmp_capabilities(const QmpCall *call, const void *args,
                                         GError **errp)
{
    const CapabilitiesArgs *a = args;
    QmpSession *s = call->session;

    if (!s) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "qmp_capabilities needs a QMP session");
        return NULL;
    }
    if (s->negotiated) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        return NULL;
    }
    /* "oob" is the only capability, so any entry enables it. */
    s->oob = a->enable.len > 0;
    s->negotiated = true;
    return qmp_return_empty();
}

/* --- query-version ---------------------------------------------------------------- */

static json_object *cmd_query_version(const QmpCall *call, const void *args,
                                      GError **errp)
{
    return qmp_version_info();
}

QMP_SHAPE(version_triple_type, "VersionTriple",
    QMP_OUT("major", qmp_type_int), QMP_OUT("minor", qmp_type_int),
    QMP_OUT("micro", qmp_type_int));
QMP_SHAPE(version_info_type, "VersionInfo",
    QMP_OUT("qemu", version_triple_type), QMP_OUT("package", qmp_type_str));

/* --- query-commands ------------------------------------------------------------- */

static json_object *cmd_query_commands(const QmpCall *call, const void *args,
                                       GError **errp)
{
    size_t n;
    g_autofree const char **names = qmp_registry_names(call->registry, &n);
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();

        tern_json_add_str(o, "name", names[i]);
        json_object_array_add(list, o);
    }
    return list;
}

QMP_SHAPE(command_info_type, "CommandInfo",
    QMP_OUT("name", qmp_type_str));
static const QmpType command_info_list = {
    .name = "[CommandInfo]", .kind = QMP_KIND_ARRAY, .element = &command_info_type,
};

/* --- query-qmp-schema ----------------------------------------------------------- */

static json_object *cmd_query_qmp_schema(const QmpCall *call, const void *args,
                                         GError **errp)
{
    return qmp_schema(call->registry);
}

/* --- getfd, closefd ---------------------------------------------------------------- */

typedef struct FdnameArgs {
    char *fdname;
} FdnameArgs;

QMP_OBJECT_TYPE(getfd_args, "getfd-arg", FdnameArgs,
    QMP_MEMBER(FdnameArgs, fdname, "fdname", qmp_type_str));
QMP_OBJECT_TYPE(closefd_args, "closefd-arg", FdnameArgs,
    QMP_MEMBER(FdnameArgs, fdname, "fdname", qmp_type_str));

static json_object *cmd_getfd(const QmpCall *call, const void *args, GError **errp)
{
    const FdnameArgs *a = args;
    QmpSession *s = call->session;
    int fd;

    if (!s || !s->n_passed_fds) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "No file descriptor supplied via SCM_RIGHTS");
        return NULL;
    }
    /* Numbers mean descriptor numbers where a name is expected (fd:N). */
    if (g_ascii_isdigit(a->fdname[0])) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Parameter 'fdname' expects a name not starting with a digit");
        return NULL;
    }
    fd = s->passed_fds[0];
    memmove(s->passed_fds, s->passed_fds + 1, --s->n_passed_fds * sizeof(int));
    qmp_session_set_passed_fds(s, NULL, 0);   /* as QEMU: the rest are closed */
    qmp_registry_set_fd(call->registry, a->fdname, fd);
    return qmp_return_empty();
}

static json_object *cmd_closefd(const QmpCall *call, const void *args, GError **errp)
{
    const FdnameArgs *a = args;

    if (!qmp_registry_close_fd(call->registry, a->fdname)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "File descriptor named '%s' not found", a->fdname);
        return NULL;
    }
    return qmp_return_empty();
}

static const QmpCommandDef core_commands[] = {
    QMP_COMMAND("qmp_capabilities", cmd_qmp_capabilities, &capabilities_args, NULL),
    QMP_COMMAND("query-version", cmd_query_version, NULL, &version_info_type),
    QMP_COMMAND("query-commands", cmd_query_commands, NULL, &command_info_list),
    QMP_COMMAND("query-qmp-schema", cmd_query_qmp_schema, NULL,
                &qmp_schema_info_list),
    QMP_COMMAND("getfd", cmd_getfd, &getfd_args, NULL),
    QMP_COMMAND("closefd", cmd_closefd, &closefd_args, NULL),
    { .name = "transaction", .func = qmp_cmd_transaction,
      .args_of = qmp_registry_transaction_args },
};

void qmp_register_core_commands(QmpRegistry *r)
{
    qmp_register_commands(r, core_commands, ARRAY_SIZE(core_commands), NULL);
}
