/*
 * Everything the command line asked for, filled by softmmu/cmdline.c and read
 * by the machine and the other areas. Options that belong to other areas
 * (-qmp, -drive, -incoming, -loadvm, ...) are kept as their raw argument
 * strings, in order, under the option's name: vm_config_list(cfg, "qmp").
 * -device arguments (key=value or JSON) are parsed into KeyVal (implied key
 * "driver") and handed to the device factory (hw/i386/machine.h) by driver
 * name; -object arguments likewise (implied key "qom-type").
 */
#ifndef SOFTMMU_VM_CONFIG_H
#define SOFTMMU_VM_CONFIG_H

#include "tern/common.h"
#include "tern/keyval.h"

/* -smp: vCPUs and how they are laid out (threads per core are always 1). */
typedef struct VmTopology {
    unsigned sockets;
    unsigned cores;           /* per socket */
} VmTopology;

/* -sandbox on: which groups of system calls are refused (softmmu/seccomp.h). */
typedef struct VmSandbox {
    bool on;
    bool deny_obsolete, deny_elevate, deny_spawn, deny_resources;
    bool no_new_privs;        /* elevateprivileges=children */
} VmSandbox;

typedef struct VmConfig {
    char *machine;            /* -M type: "virt", or "none" (no guest at all) */
    uint64_t ram_size;        /* -m, bytes */
    bool has_ram_size;        /* -m was given */
    unsigned smp;             /* -smp cpus */
    VmTopology topo;          /* sockets * cores == smp */
    char *kernel, *initrd, *append;
    char *name;               /* -name guest= */
    bool debug_threads;       /* -name debug-threads=on: QEMU's thread names */
    bool has_uuid;
    uint8_t uuid[16];         /* -uuid */
    bool dump_guest_core;     /* -machine dump-guest-core (default on) */
    char *memory_backend;     /* -machine memory-backend=: an -object id */
    char *mem_path;           /* its mem-path, for a memory-backend-file */
    bool mem_lock;            /* -overcommit mem-lock=on */
    VmSandbox sandbox;        /* -sandbox */
    char *pidfile;            /* -pidfile */
    bool daemonize;           /* -daemonize */
    GPtrArray *serials;       /* char* specs from -serial, in order */
    GPtrArray *devices;       /* KeyVal* from -device */
    GPtrArray *objects;       /* KeyVal* from -object (key "qom-type") */
    GHashTable *lists;        /* option name -> GPtrArray of char* */
    bool start_paused;        /* -S */
    bool no_reboot, no_shutdown;
    bool nographic;
    bool nodefaults;          /* -nodefaults: no serial port unless asked for */
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
