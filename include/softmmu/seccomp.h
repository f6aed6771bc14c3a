/*
 * -sandbox: QEMU's seccomp system call filter, installed with libseccomp
 * before the VM starts any thread (and synchronised to all threads anyway).
 * "on" refuses QEMU's default and obsolete groups; elevateprivileges,
 * spawn and resourcecontrol=deny add theirs. A refused call kills the
 * process (resource control calls fail with EPERM instead), so a
 * compromised tern cannot quietly do what the sandbox forbids.
 */
#ifndef SOFTMMU_SECCOMP_H
#define SOFTMMU_SECCOMP_H

#include "softmmu/vm-config.h"

bool seccomp_opt_sandbox(VmConfig *cfg, const char *name, const char *arg,
                         GError **errp);
/* Installs cfg's filter; nothing with -sandbox off or absent. */
bool seccomp_install(const VmSandbox *sb, GError **errp);

#endif
