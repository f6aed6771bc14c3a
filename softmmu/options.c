/*
 * The table of command-line options (softmmu/cmdline.h) and the handlers for
 * the machine's own options. Other areas add their lines to the table; the
 * handlers here only record what was asked, the machine checks it against KVM.
 */
#include <stdio.h>
#include <string.h>

#include "softmmu/cmdline.h"
#include "tern/error.h"

#define TERN_MIN_RAM (2 * MiB)

static void replace(char **slot, const char *val)
{
    g_free(*slot);
    *slot = g_strdup(val);
}

static bool opt_machine(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "type", errp);
    const char *type, *accel;

    if (!kv) {
        return false;
    }
    type = keyval_get(kv, "type");
    accel = keyval_get(kv, "accel");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (type && !strcmp(type, "help")) {
        printf("Supported machines are:\nvirt    tern's x86 KVM machine (default)\n");
        cfg->exit_now = true;
        return true;
    }
    if (type && strcmp(type, "virt")) {
        return tern_invalid(errp, "unknown machine type '%s' (tern has 'virt')",
                            type);
    }
    if (accel && strcmp(accel, "kvm")) {
        return tern_invalid(errp, "accelerator '%s' is not supported: tern "
                            "runs on kvm only", accel);
    }
    return true;
}

static bool opt_accel(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "accel", errp);
    const char *accel;

    if (!kv) {
        return false;
    }
    accel = keyval_get(kv, "accel");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!accel || strcmp(accel, "kvm")) {
        return tern_invalid(errp, "accelerator '%s' is not supported: tern "
                            "runs on kvm only", accel ? accel : "");
    }
    return true;
}

static bool opt_memory(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "size", errp);
    const char *size;
    uint64_t bytes;

    if (!kv) {
        return false;
    }
    size = keyval_get(kv, "size");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!size || !parse_size(size, MiB, &bytes, errp)) {
        return false;
    }
    if (bytes < TERN_MIN_RAM) {
        return tern_invalid(errp, "RAM size '%s' is too small (at least 2 MiB)",
                            size);
    }
    if (!IS_ALIGNED(bytes, 4096)) {
        return tern_invalid(errp, "RAM size '%s' is not a multiple of 4 KiB",
                            size);
    }
    cfg->ram_size = bytes;
    return true;
}

static bool opt_smp(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "cpus", errp);
    uint64_t cpus = 0, maxcpus = 0, sockets = 1, dies = 1, cores = 0, threads = 1;

    if (!kv || !keyval_get_u64(kv, "cpus", &cpus, errp) ||
        !keyval_get_u64(kv, "maxcpus", &maxcpus, errp) ||
        !keyval_get_u64(kv, "sockets", &sockets, errp) ||
        !keyval_get_u64(kv, "dies", &dies, errp) ||
        !keyval_get_u64(kv, "cores", &cores, errp) ||
        !keyval_get_u64(kv, "threads", &threads, errp) || !keyval_check_unused(kv, errp)) {
        return false;
    }
    /* tern's topology is one socket of single-threaded cores: accept the
     * spellings of that QEMU users write, refuse anything else. */
    if (sockets != 1 || dies != 1 || threads != 1) {
        return tern_invalid(errp, "tern models one socket of single-thread "
                            "cores (sockets=1,dies=1,threads=1)");
    }
    if (!cpus) {
        cpus = cores ? cores : keyval_has(kv, "cpus") ? 0 : 1;
    }
    if (cores && cores != cpus) {
        return tern_invalid(errp, "cores must equal the number of CPUs");
    }
    if (cpus == 0) {
        return tern_invalid(errp, "the number of CPUs must be at least 1");
    }
    if (cpus > 1024) {
        return tern_invalid(errp, "too many CPUs");
    }
    if (maxcpus && maxcpus != cpus) {
        return tern_invalid(errp, "CPU hotplug is not supported (maxcpus must "
                            "equal cpus)");
    }
    cfg->smp = cpus;
    return true;
}

static bool opt_string(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    if (!strcmp(name, "kernel")) {
        replace(&cfg->kernel, arg);
    } else if (!strcmp(name, "initrd")) {
        replace(&cfg->initrd, arg);
    } else {
        replace(&cfg->append, arg);
    }
    return true;
}

static bool opt_name(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "guest", errp);
    const char *guest;

    if (!kv) {
        return false;
    }
    guest = keyval_get(kv, "guest");
    keyval_get(kv, "process");
    keyval_get(kv, "debug-threads");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    replace(&cfg->name, guest);
    return true;
}

static bool opt_serial(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_ptr_array_add(cfg->serials, g_strdup(arg));
    return true;
}

static bool opt_device(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    KeyVal *kv = keyval_parse(arg, "driver", errp);

    if (!kv) {
        return false;
    }
    if (!keyval_has(kv, "driver")) {
        keyval_free(kv);
        return tern_invalid(errp, "'%s': missing device driver name", arg);
    }
    g_ptr_array_add(cfg->devices, kv);
    return true;
}

static bool opt_display(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    if (strcmp(arg, "none")) {
        return tern_invalid(errp, "display '%s' is not supported: tern has no "
                            "display (use none)", arg);
    }
    return true;
}

static bool opt_flag(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    if (!strcmp(name, "S")) {
        cfg->start_paused = true;
    } else if (!strcmp(name, "no-reboot")) {
        cfg->no_reboot = true;
    } else if (!strcmp(name, "no-shutdown")) {
        cfg->no_shutdown = true;
    } else if (!strcmp(name, "nographic")) {
        cfg->nographic = true;
    }
    return true;
}

static bool opt_version(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    printf("tern version %s (QEMU-compatible x86 KVM VMM)\n", TERN_VERSION);
    cfg->exit_now = true;
    return true;
}

static bool opt_help(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    cmdline_print_help();
    cfg->exit_now = true;
    return true;
}

const CmdlineOption cmdline_options[] = {
    /* machine */
    { "M", "TYPE[,accel=kvm]", opt_machine, "machine type: virt" },
    { "machine", "TYPE[,accel=kvm]", opt_machine, "same as -M" },
    { "accel", "kvm", opt_accel, "accelerator (kvm is the only one)" },
    { "enable-kvm", NULL, opt_flag, "accepted for compatibility (always KVM)" },
    { "m", "SIZE", opt_memory, "guest RAM, MiB unless suffixed (K/M/G/T)" },
    { "smp", "N[,cores=N][,maxcpus=N]", opt_smp,
      "number of vCPUs (one socket, one thread per core)" },
    { "kernel", "FILE", opt_string, "PVH ELF or Linux bzImage to boot" },
    { "initrd", "FILE", opt_string, "initial ramdisk" },
    { "append", "CMDLINE", opt_string, "kernel command line" },
    { "serial", "DEV", opt_serial,
      "COM1 backend: stdio, file:PATH, unix:PATH,server=on,wait=off, null, none" },
    { "device", "DRIVER[,PROP=VALUE...]", opt_device,
      "add a device (isa-debug-exit,iobase=..,iosize=..)" },
    { "name", "NAME", opt_name, "guest name" },
    { "S", NULL, opt_flag, "do not start the vCPUs until told to (QMP cont)" },
    { "no-reboot", NULL, opt_flag, "exit instead of rebooting" },
    { "no-shutdown", NULL, opt_flag, "stop instead of exiting on guest poweroff" },
    { "nographic", NULL, opt_flag, "no display (tern never has one)" },
    { "display", "none", opt_display, "display backend (none only)" },
    { "nodefaults", NULL, opt_flag, "accepted for compatibility" },
    { "no-user-config", NULL, opt_flag, "accepted for compatibility" },
    { "version", NULL, opt_version, "print the version and exit" },
    { "help", NULL, opt_help, "print this help and exit" },
    { "h", NULL, opt_help, "same as -help" },
    /* monitor (docs/qmp.md) */
    { "qmp", "unix:PATH,server=on,wait=off", cmdline_store_raw,
      "QMP monitor on a listening unix (or tcp:HOST:PORT) socket" },
    { "chardev", "socket,id=ID,path=PATH,server=on,wait=off", cmdline_store_raw,
      "socket character device, for -mon" },
    { "mon", "chardev=ID,mode=control", cmdline_store_raw, "QMP monitor on a -chardev" },
    /* migration (docs/migration.md) */
    { "incoming", "unix:PATH|tcp:HOST:PORT|exec:CMD|file:PATH|defer", cmdline_store_raw,
      "wait for a migration stream (defer: until QMP migrate-incoming)" },
    { "loadvm", "TAG", cmdline_store_raw,
      "start from internal snapshot TAG of the drives (docs/snapshots.md)" },
    /* drives (docs/virtio.md) */
    { "drive", "file=PATH,format=raw|qcow2,if=none|virtio,id=ID[,readonly=on]"
      "[,cache=..][,werror=..][,rerror=..]", cmdline_store_raw, "a disk image" },
};

const size_t cmdline_options_count = G_N_ELEMENTS(cmdline_options);
