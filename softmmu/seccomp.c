/*
 * The -sandbox filter (softmmu/seccomp.h): QEMU 7.2's groups of refused
 * system calls as one table. "spawn" refuses running programs (execve,
 * execveat), new processes (fork, vfork, and any clone without CLONE_VM or
 * with a flag that makes a namespace, a vfork or ptraced child, or a pidfd)
 * and namespace changes (setns, unshare); clone3 answers ENOSYS so the C
 * library falls back to clone, whose flags the filter can read. Threads
 * stay allowed, so tern's vCPU, I/O and migration threads still start.
 * QEMU 7.2 also requires CLONE_THREAD and refuses CLONE_UNTRACED; tern
 * does not, because the leak checker's tracer is a CLONE_VM|CLONE_UNTRACED
 * task that tern's tests need at exit.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <seccomp.h>

#include "softmmu/seccomp.h"
#include "tern/error.h"
#include "tern/keyval.h"

typedef enum {
    SET_DEFAULT,
    SET_OBSOLETE,
    SET_PRIVILEGED,
    SET_SPAWN,
    SET_RESOURCES,
} SyscallSet;

typedef struct DeniedCall {
    const char *name;
    SyscallSet set;
} DeniedCall;

static const DeniedCall denied[] = {
    { "reboot", SET_DEFAULT }, { "swapon", SET_DEFAULT }, { "swapoff", SET_DEFAULT },
    { "syslog", SET_DEFAULT }, { "mount", SET_DEFAULT }, { "umount", SET_DEFAULT },
    { "umount2", SET_DEFAULT }, { "kexec_load", SET_DEFAULT },
    { "afs_syscall", SET_DEFAULT }, { "break", SET_DEFAULT }, { "ftime", SET_DEFAULT },
    { "getpmsg", SET_DEFAULT }, { "gtty", SET_DEFAULT }, { "lock", SET_DEFAULT },
    { "mpx", SET_DEFAULT }, { "prof", SET_DEFAULT }, { "profil", SET_DEFAULT },
    { "putpmsg", SET_DEFAULT }, { "security", SET_DEFAULT }, { "stty", SET_DEFAULT },
    { "tuxcall", SET_DEFAULT }, { "ulimit", SET_DEFAULT }, { "vserver", SET_DEFAULT },
    { "readdir", SET_OBSOLETE }, { "_sysctl", SET_OBSOLETE }, { "bdflush", SET_OBSOLETE },
    { "create_module", SET_OBSOLETE }, { "get_kernel_syms", SET_OBSOLETE },
    { "query_module", SET_OBSOLETE }, { "sgetmask", SET_OBSOLETE },
    { "ssetmask", SET_OBSOLETE }, { "sysfs", SET_OBSOLETE }, { "uselib", SET_OBSOLETE },
    { "ustat", SET_OBSOLETE },
    { "setuid", SET_PRIVILEGED }, { "setgid", SET_PRIVILEGED },
    { "setpgid", SET_PRIVILEGED }, { "setsid", SET_PRIVILEGED },
    { "setreuid", SET_PRIVILEGED }, { "setregid", SET_PRIVILEGED },
    { "setresuid", SET_PRIVILEGED }, { "setresgid", SET_PRIVILEGED },
    { "setfsuid", SET_PRIVILEGED }, { "setfsgid", SET_PRIVILEGED },
    { "fork", SET_SPAWN }, { "vfork", SET_SPAWN }, { "execve", SET_SPAWN },
    { "execveat", SET_SPAWN }, { "setns", SET_SPAWN }, { "unshare", SET_SPAWN },
    { "setpriority", SET_RESOURCES }, { "sched_setparam", SET_RESOURCES },
    { "sched_setaffinity", SET_RESOURCES },
};

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* A clone with any of these is not a thread. */
static const uint64_t process_flags[] = {
    CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK, CLONE_PARENT, CLONE_NEWNS,
    CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
    CLONE_NEWPID, CLONE_NEWNET, CLONE_IO,
};

/* allow|deny for one group; elevateprivileges also takes "children". */
static bool parse_policy(KeyVal *kv, const char *key, bool *deny, bool *children,
                         GError **errp)
{
    const char *v = keyval_get(kv, key);

    if (!v) {
        return true;
    }
    if (!strcmp(v, "deny") || !strcmp(v, "allow")) {
        *deny = !strcmp(v, "deny");
        return true;
    }
    if (children && !strcmp(v, "children")) {
        *deny = *children = true;
        return true;
    }
    return tern_invalid(errp, "invalid argument for %s", key);
}

bool seccomp_opt_sandbox(VmConfig *cfg, const char *name, const char *arg,
                         GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "enable", errp);
    VmSandbox sb = { .deny_obsolete = true };

    if (!kv || !keyval_get_bool(kv, "enable", &sb.on, errp) ||
        !parse_policy(kv, "obsolete", &sb.deny_obsolete, NULL, errp) ||
        !parse_policy(kv, "elevateprivileges", &sb.deny_elevate, &sb.no_new_privs,
                      errp) ||
        !parse_policy(kv, "spawn", &sb.deny_spawn, NULL, errp) ||
        !parse_policy(kv, "resourcecontrol", &sb.deny_resources, NULL, errp) ||
        !keyval_check_unused(kv, errp)) {
        return false;
    }
    cfg->sandbox = sb;
    return true;
}

static bool set_denied(const VmSandbox *sb, SyscallSet set)
{
    switch (set) {
    case SET_DEFAULT:
        return true;
    case SET_OBSOLETE:
        return sb->deny_obsolete;
    case SET_PRIVILEGED:
        return sb->deny_elevate;
    case SET_SPAWN:
        return sb->deny_spawn;
    case SET_RESOURCES:
        return sb->deny_resources;
    }
    return true;
}

static uint32_t kill_action(void)
{
    return seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_TRAP;
}

/* A clone that does not make a thread kills. */
static int add_clone_rules(scmp_filter_ctx ctx)
{
    int rc = seccomp_rule_add(ctx, kill_action(), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM, 0));

    for (size_t i = 0; i < ARRAY_SIZE(process_flags) && rc == 0; i++) {
        rc = seccomp_rule_add(ctx, kill_action(), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, process_flags[i],
                                      process_flags[i]));
    }
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
    return rc;
}

static int add_rules(scmp_filter_ctx ctx, const VmSandbox *sb)
{
    int rc = 0;

    for (size_t i = 0; i < ARRAY_SIZE(denied) && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i].name);

        if (nr == __NR_SCMP_ERROR || !set_denied(sb, denied[i].set)) {
            continue;   /* a call this architecture does not have */
        }
        rc = seccomp_rule_add(ctx, denied[i].set == SET_RESOURCES ?
                              SCMP_ACT_ERRNO(EPERM) : kill_action(), nr, 0);
    }
    if (rc == 0 && sb->deny_resources) {
        /* QEMU lets a thread make itself idle, nothing else. */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(sched_setscheduler),
                              1, SCMP_A1(SCMP_CMP_NE, SCHED_IDLE));
    }
    if (rc == 0 && sb->deny_spawn) {
        rc = add_clone_rules(ctx);
    }
    return rc;
}

bool seccomp_install(const VmSandbox *sb, GError **errp)
{
    scmp_filter_ctx ctx;
    int rc;

    if (!sb->on) {
        return true;
    }
    if (sb->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        tern_set_error_errno(errp, errno, "-sandbox: failed to set no_new_privs");
        return false;
    }
    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        return tern_fail(errp, TERN_ERR_IO, "-sandbox: failed to initialize "
                         "seccomp context");
    }
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0) {
        rc = add_rules(ctx, sb);
    }
    if (rc == 0) {
        rc = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    if (rc < 0) {
        tern_set_error_errno(errp, -rc, "-sandbox: failed to install the seccomp "
                             "filter");
        return false;
    }
    return true;
}
