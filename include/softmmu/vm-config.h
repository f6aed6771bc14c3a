/*
 * Everything the command line asked for, filled by softmmu/cmdline.c and read
 * by the machine and the other areas. Options that belong to other areas
 * (-qmp, -drive, -incoming, -loadvm, ...) are kept as their raw argument
 * strings, in order, under the option's name: vm_config_list(cfg, "qmp").
 * -device arguments are parsed into KeyVal (implied key "driver") and handed
 * to the device factory (hw/i386/machine.h) by driver name.
 */
#ifndef SOFTMMU_VM_CONFIG_H
#define SOFTMMU_VM_CONFIG_H

#include "tern/common.h"
#include "tern/keyval.h"

typedef struct VmConfig {
    char *machine;            /* -M type, "virt" */
    uint64_t ram_size;        /* -m, bytes */
    unsigned smp;             /* -smp cpus */
    char *kernel, *initrd, *append;
    char *name;               /* -name guest= */
    GPtrArray *serials;       /* char* specs from -serial, in order */
    GPtrArray *devices;       /* KeyVal* from -device */
    GHashTable *lists;        /* option name -> GPtrArray of char* */
    bool start_paused;        /* -S */
    bool no_reboot, no_shutdown;
    bool nographic;
    bool exit_now;            /* -help / -version answered; exit 0 */
} VmConfig;

VmConfig *vm_config_new(void);
void vm_config_free(VmConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmConfig, vm_config_free)

/* Raw arguments of every occurrence of option 'name' (never NULL). */
GPtrArray *vm_config_list(VmConfig *cfg, const char *name);
/* The last occurrence, or NULL. */
const char *vm_config_last(VmConfig *cfg, const char *name);

#endif
