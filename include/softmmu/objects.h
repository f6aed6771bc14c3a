/*
 * -object: the user-creatable objects tern has: QEMU's memory backends for
 * the machine's RAM (memory-backend-ram, -memfd, -file) and secrets. Each
 * is checked when given; the machine asks for its RAM backend (-machine
 * memory-backend=ID) when it builds its RAM.
 */
#ifndef SOFTMMU_OBJECTS_H
#define SOFTMMU_OBJECTS_H

#include "softmmu/vm-config.h"

bool objects_opt_object(VmConfig *cfg, const char *name, const char *arg,
                        GError **errp);
/* -audiodev: tern has no sound device, so only the "none" driver. */
bool objects_opt_audiodev(VmConfig *cfg, const char *name, const char *arg,
                          GError **errp);
/* Applies -machine memory-backend= to cfg (RAM size, core dumps); true
 * without one. */
bool objects_resolve_ram(VmConfig *cfg, GError **errp);

#endif
