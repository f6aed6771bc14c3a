/*
 * The table of command-line options (softmmu/cmdline.h) and the handlers for
 * the machine's own options. Other areas add their lines to the table; the
 * handlers here only record what was asked, the machine checks it against KVM.
 * Each accepts what QEMU 7.2 accepts with the meaning QEMU gives it, or
 * refuses it by name: a management tool must never believe an option took
 * effect when it did not.
 */
#include <stdio.h>
#include <string.h>

#include "softmmu/cmdline.h"
#include "softmmu/daemon.h"
#include "softmmu/objects.h"
#include "softmmu/seccomp.h"
#include "tern/error.h"

#define TERN_MIN_RAM (2 * MiB)
#define TERN_MAX_SMP 1024

static void replace(char **slot, const char *val)
{
    g_free(*slot);
    *slot = g_strdup(val);
}

/* QEMU's accel list "kvm:tcg": the first that works is used; tern has KVM. */
static bool check_accel_list(const char *list, GError **errp)
{
    g_auto(GStrv) names = g_strsplit(list, ":", -1);

    for (char **n = names; *n; n++) {
        if (!strcmp(*n, "kvm")) {
            return true;
        }
    }
    return tern_invalid(errp, "accelerator '%s' is not supported: tern runs on "
                        "kvm only", list);
}

static bool machine_type(VmConfig *cfg, const char *type, GError **errp)
{
    if (!strcmp(type, "help")) {
        printf("Supported machines are:\n"
               "virt    tern's x86 KVM machine (default)\n"
               "none    empty machine: no CPUs, RAM or devices\n");
        cfg->exit_now = true;
        return true;
    }
    if (strcmp(type, "virt") && strcmp(type, "none")) {
        return tern_invalid(errp, "unknown machine type '%s' (tern has 'virt' "
                            "and 'none')", type);
    }
    replace(&cfg->machine, type);
    return true;
}

static bool opt_machine(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "type", errp);
    bool usb = false;
    const char *type, *accel, *backend;

    if (!kv || !keyval_get_bool(kv, "usb", &usb, errp) ||
        !keyval_get_bool(kv, "dump-guest-core", &cfg->dump_guest_core, errp)) {
        return false;
    }
    type = keyval_get(kv, "type");
    accel = keyval_get(kv, "accel");
    backend = keyval_get(kv, "memory-backend");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (usb) {
        return tern_invalid(errp, "usb=on: tern's machine has no USB controller");
    }
    if (accel && !check_accel_list(accel, errp)) {
        return false;
    }
    if (backend) {
        replace(&cfg->memory_backend, backend);
    }
    return !type || machine_type(cfg, type, errp);
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

/* -cpu host: the host CPU as KVM offers it, which is what tern always gives
 * the guest ("max" is the same model under KVM). */
static bool opt_cpu(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "model", errp);
    bool migratable = true;
    const char *model;

    if (!kv || !keyval_get_bool(kv, "migratable", &migratable, errp)) {
        return false;
    }
    model = keyval_get(kv, "model");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (!model || (strcmp(model, "host") && strcmp(model, "max"))) {
        return tern_invalid(errp, "CPU model '%s' is not supported: tern gives "
                            "the guest the host CPU (-cpu host)", model ? model : "");
    }
    if (!migratable) {
        return tern_invalid(errp, "migratable=off: tern passes only the CPU "
                            "features KVM can migrate");
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
    if (!size) {
        return tern_invalid(errp, "missing 'size' option value");
    }
    if (!parse_size(size, MiB, &bytes, errp)) {
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
    cfg->has_ram_size = true;
    return true;
}

typedef struct SmpArgs {
    uint64_t cpus, maxcpus, sockets, dies, clusters, cores, threads;
} SmpArgs;

/* QEMU 7.2's rule for a modern machine (cores preferred over sockets):
 * without cpus and maxcpus every missing level is 1; otherwise maxcpus
 * defaults to cpus, missing cores (else sockets, else threads) fill it,
 * other missing levels are 1. */
static bool smp_fill(SmpArgs *a, GError **errp)
{
    uint64_t fixed;

    a->dies = a->dies ? a->dies : 1;
    a->clusters = a->clusters ? a->clusters : 1;
    if (!a->cpus && !a->maxcpus) {
        a->sockets = a->sockets ? a->sockets : 1;
        a->cores = a->cores ? a->cores : 1;
        a->threads = a->threads ? a->threads : 1;
    } else {
        a->maxcpus = a->maxcpus ? a->maxcpus : a->cpus;
        if (!a->cores) {
            a->sockets = a->sockets ? a->sockets : 1;
            a->threads = a->threads ? a->threads : 1;
            a->cores = a->maxcpus / (a->sockets * a->dies * a->clusters * a->threads);
        } else if (!a->sockets) {
            a->threads = a->threads ? a->threads : 1;
            a->sockets = a->maxcpus / (a->dies * a->clusters * a->cores * a->threads);
        }
        if (!a->threads) {
            a->threads = a->maxcpus / (a->sockets * a->dies * a->clusters * a->cores);
        }
    }
    fixed = a->sockets * a->dies * a->clusters * a->cores * a->threads;
    a->maxcpus = a->maxcpus ? a->maxcpus : fixed;
    a->cpus = a->cpus ? a->cpus : a->maxcpus;
    if (fixed != a->maxcpus) {
        return tern_invalid(errp, "Invalid CPU topology: product of the hierarchy "
                            "must match maxcpus: sockets (%" PRIu64 ") * dies (%"
                            PRIu64 ") * cores (%" PRIu64 ") * threads (%" PRIu64
                            ") != maxcpus (%" PRIu64 ")", a->sockets, a->dies,
                            a->cores, a->threads, a->maxcpus);
    }
    if (a->maxcpus < a->cpus) {
        return tern_invalid(errp, "Invalid CPU topology: maxcpus must be equal to "
                            "or greater than smp: maxcpus (%" PRIu64 ") < smp_cpus (%"
                            PRIu64 ")", a->maxcpus, a->cpus);
    }
    return true;
}

/* What tern's CPUID and firmware tables can describe: sockets of
 * single-thread cores whose APIC IDs are the vCPU indexes. */
static bool smp_check_tern(const SmpArgs *a, GError **errp)
{
    if (a->dies != 1 || a->clusters != 1 || a->threads != 1) {
        return tern_invalid(errp, "tern models sockets of single-thread cores "
                            "(dies=1, clusters=1, threads=1)");
    }
    if (a->maxcpus != a->cpus) {
        return tern_invalid(errp, "CPU hotplug is not supported (maxcpus must "
                            "equal cpus)");
    }
    if (a->sockets > 1 && (a->cores & (a->cores - 1))) {
        return tern_invalid(errp, "with several sockets, cores per socket must be "
                            "a power of two (APIC IDs are the vCPU indexes)");
    }
    if (a->cpus > TERN_MAX_SMP) {
        return tern_invalid(errp, "too many CPUs");
    }
    return true;
}

static bool smp_get(KeyVal *kv, const char *key, uint64_t *out, GError **errp)
{
    if (!keyval_get_u64(kv, key, out, errp)) {
        return false;
    }
    if (keyval_has(kv, key) && !*out) {
        return tern_invalid(errp, strcmp(key, "cpus") ? "CPU topology parameters "
                            "must be greater than zero" : "the number of CPUs "
                            "must be at least 1");
    }
    return true;
}

static bool opt_smp(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    static const char *const keys[] = { "cpus", "maxcpus", "sockets", "dies",
                                        "clusters", "cores", "threads" };
    g_autoptr(KeyVal) kv = keyval_parse(arg, "cpus", errp);
    SmpArgs a = { 0 };
    uint64_t *fields[] = { &a.cpus, &a.maxcpus, &a.sockets, &a.dies,
                           &a.clusters, &a.cores, &a.threads };

    if (!kv) {
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (!smp_get(kv, keys[i], fields[i], errp)) {
            return false;
        }
    }
    if (!keyval_check_unused(kv, errp) || !smp_fill(&a, errp) ||
        !smp_check_tern(&a, errp)) {
        return false;
    }
    cfg->smp = a.cpus;
    cfg->topo = (VmTopology){ .sockets = a.sockets, .cores = a.cores };
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

    if (!kv || !keyval_get_bool(kv, "debug-threads", &cfg->debug_threads, errp)) {
        return false;
    }
    guest = keyval_get(kv, "guest");
    if (keyval_get(kv, "process")) {
        return tern_invalid(errp, "process=: tern does not rename its process");
    }
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    replace(&cfg->name, guest);
    return true;
}

static bool opt_uuid(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    static const int dash_at[] = { 8, 13, 18, 23 };
    unsigned byte = 0;

    if (strlen(arg) != 36) {
        goto bad;
    }
    for (size_t i = 0, d = 0; i < 36; i++) {
        if (d < ARRAY_SIZE(dash_at) && (int)i == dash_at[d]) {
            if (arg[i] != '-') {
                goto bad;
            }
            d++;
            continue;
        }
        if (!g_ascii_isxdigit(arg[i]) || !g_ascii_isxdigit(arg[i + 1])) {
            goto bad;
        }
        cfg->uuid[byte++] = g_ascii_xdigit_value(arg[i]) << 4 |
                            g_ascii_xdigit_value(arg[i + 1]);
        i++;
    }
    cfg->has_uuid = true;
    return true;
bad:
    return tern_invalid(errp, "Fail to parse UUID string. Wrong format.");
}

static bool opt_overcommit(VmConfig *cfg, const char *name, const char *arg,
                           GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, NULL, errp);
    bool cpu_pm = false;

    if (!kv || !keyval_get_bool(kv, "mem-lock", &cfg->mem_lock, errp) ||
        !keyval_get_bool(kv, "cpu-pm", &cpu_pm, errp) ||
        !keyval_check_unused(kv, errp)) {
        return false;
    }
    if (cpu_pm) {
        return tern_invalid(errp, "cpu-pm=on: tern keeps HLT and MWAIT exits");
    }
    return true;
}

/* tern's RTC runs on the host's UTC clock: the options that say so pass. */
static bool opt_rtc(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, NULL, errp);
    const char *base, *clock, *driftfix;

    if (!kv) {
        return false;
    }
    base = keyval_get(kv, "base");
    clock = keyval_get(kv, "clock");
    driftfix = keyval_get(kv, "driftfix");
    if (!keyval_check_unused(kv, errp)) {
        return false;
    }
    if (base && strcmp(base, "utc")) {
        return tern_invalid(errp, "base=%s: tern's RTC follows the host's UTC "
                            "clock (base=utc)", base);
    }
    if (clock && strcmp(clock, "host")) {
        return tern_invalid(errp, "clock=%s: tern's RTC follows the host clock "
                            "(clock=host)", clock);
    }
    if (driftfix && strcmp(driftfix, "none")) {
        return tern_invalid(errp, "driftfix=%s: tern does not re-inject lost RTC "
                            "ticks (driftfix=none)", driftfix);
    }
    return true;
}

/* Without firmware there is no boot order: only the options that ask for
 * nothing more pass. */
static bool opt_boot(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(arg, "order", errp);
    bool strict = false, menu = false;

    if (!kv || !keyval_get_bool(kv, "strict", &strict, errp) ||
        !keyval_get_bool(kv, "menu", &menu, errp)) {
        return false;
    }
    if (keyval_has(kv, "order") || keyval_has(kv, "once") || menu) {
        return tern_invalid(errp, "tern has no firmware to choose a boot device: "
                            "boot a -kernel");
    }
    return keyval_check_unused(kv, errp);
}

static bool opt_serial(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_ptr_array_add(cfg->serials, g_strdup(arg));
    return true;
}

static bool opt_device(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    KeyVal *kv = keyval_parse_any(arg, "driver", errp);

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
    } else if (!strcmp(name, "nodefaults")) {
        cfg->nodefaults = true;
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
    { "M", "TYPE[,accel=kvm][,...]", opt_machine, "machine type: virt (none: probe only)" },
    { "machine", "TYPE[,accel=kvm][,usb=off][,dump-guest-core=on|off]"
      "[,memory-backend=ID]", opt_machine, "same as -M" },
    { "accel", "kvm", opt_accel, "accelerator (kvm is the only one)" },
    { "enable-kvm", NULL, opt_flag, "accepted for compatibility (always KVM)" },
    { "cpu", "host[,migratable=on]", opt_cpu, "CPU model: the host's, as KVM offers it" },
    { "m", "SIZE", opt_memory, "guest RAM, MiB unless suffixed (K/M/G/T)" },
    { "smp", "N[,sockets=S][,cores=C][,threads=1][,maxcpus=N]", opt_smp,
      "number of vCPUs and their sockets and cores" },
    { "overcommit", "mem-lock=on|off", opt_overcommit, "lock guest and tern memory in RAM" },
    { "uuid", "UUID", opt_uuid, "the machine's UUID" },
    { "rtc", "base=utc[,clock=host][,driftfix=none]", opt_rtc, "RTC (host UTC clock)" },
    { "boot", "strict=on|off", opt_boot, "accepted for compatibility (no firmware)" },
    { "object", "TYPE,id=ID[,...] | JSON", objects_opt_object,
      "memory-backend-ram|-memfd|-file,id=ID,size=SIZE, secret,id=ID,file=F" },
    { "audiodev", "none,id=ID | JSON", objects_opt_audiodev,
      "accepted for compatibility: no sound device (driver=none only)" },
    { "kernel", "FILE", opt_string, "PVH ELF or Linux bzImage to boot" },
    { "initrd", "FILE", opt_string, "initial ramdisk" },
    { "append", "CMDLINE", opt_string, "kernel command line" },
    { "serial", "DEV", opt_serial,
      "COM1 backend: stdio, file:PATH, unix:PATH,server=on,wait=off, "
      "chardev:ID, null, none" },
    { "device", "DRIVER[,PROP=VALUE...] | JSON", opt_device,
      "add a device (virtio-blk-pci, isa-serial, isa-debug-exit)" },
    { "name", "[guest=]NAME[,debug-threads=on]", opt_name, "guest name" },
    { "S", NULL, opt_flag, "do not start the vCPUs until told to (QMP cont)" },
    { "no-reboot", NULL, opt_flag, "exit instead of rebooting" },
    { "no-shutdown", NULL, opt_flag, "stop instead of exiting on guest poweroff" },
    { "nographic", NULL, opt_flag, "no display (tern never has one)" },
    { "display", "none", opt_display, "display backend (none only)" },
    { "nodefaults", NULL, opt_flag, "no default devices (no COM1 without -serial)" },
    { "no-user-config", NULL, opt_flag, "accepted for compatibility" },
    { "version", NULL, opt_version, "print the version and exit" },
    { "help", NULL, opt_help, "print this help and exit" },
    { "h", NULL, opt_help, "same as -help" },
    /* process (softmmu/daemon.c, softmmu/seccomp.c) */
    { "pidfile", "FILE", daemon_opt_pidfile, "write the process id to FILE" },
    { "daemonize", NULL, daemon_opt_daemonize,
      "detach once the VM is set up (errors before that still reach stderr)" },
    { "msg", "timestamp=on|off", daemon_opt_msg, "prefix messages with the time" },
    { "sandbox", "on|off[,obsolete=..][,elevateprivileges=..][,spawn=..]"
      "[,resourcecontrol=..]", seccomp_opt_sandbox, "seccomp system call filter" },
    /* monitor (docs/qmp.md) */
    { "qmp", "unix:PATH,server=on,wait=off", cmdline_store_raw,
      "QMP monitor on a listening unix (or tcp:HOST:PORT) socket" },
    { "chardev", "socket|pty|file|null,id=ID[,...]", cmdline_store_raw,
      "character device, for -mon, -serial chardev:ID and isa-serial" },
    { "mon", "chardev=ID,mode=control", cmdline_store_raw, "QMP monitor on a -chardev" },
    /* migration (docs/migration.md) */
    { "incoming", "unix:PATH|tcp:HOST:PORT|exec:CMD|file:PATH|fd:N|defer",
      cmdline_store_raw, "wait for a migration stream (defer: until QMP migrate-incoming)" },
    { "loadvm", "TAG", cmdline_store_raw,
      "start from internal snapshot TAG of the drives (docs/snapshots.md)" },
    /* drives (docs/virtio.md, docs/libvirt.md) */
    { "drive", "file=PATH,format=raw|qcow2,if=none|virtio,id=ID[,readonly=on]"
      "[,cache=..][,werror=..][,rerror=..]", cmdline_store_raw, "a disk image" },
    { "blockdev", "JSON | driver=file|raw|qcow2,node-name=NAME,...", cmdline_store_raw,
      "a block node (file, then raw or qcow2 over it)" },
};

const size_t cmdline_options_count = G_N_ELEMENTS(cmdline_options);

#define PARAMS(...) (const CmdlineParam[]) { __VA_ARGS__, { NULL, NULL } }
#define NO_PARAMS   (const CmdlineParam[]) { { NULL, NULL } }

const CmdlineGroup cmdline_groups[] = {
    { "machine", PARAMS({ "type", "string" }, { "accel", "string" },
                        { "usb", "boolean" }, { "dump-guest-core", "boolean" }) },
    { "accel", NO_PARAMS },
    { "smp-opts", PARAMS({ "cpus", "number" }, { "maxcpus", "number" },
                         { "sockets", "number" }, { "dies", "number" },
                         { "clusters", "number" }, { "cores", "number" },
                         { "threads", "number" }) },
    { "name", PARAMS({ "guest", "string" }, { "debug-threads", "boolean" }) },
    { "overcommit", PARAMS({ "mem-lock", "boolean" }, { "cpu-pm", "boolean" }) },
    { "rtc", PARAMS({ "base", "string" }, { "clock", "string" },
                    { "driftfix", "string" }) },
    { "boot-opts", PARAMS({ "strict", "boolean" }, { "menu", "boolean" }) },
    { "msg", PARAMS({ "timestamp", "boolean" }) },
    { "sandbox", PARAMS({ "enable", "boolean" }, { "obsolete", "string" },
                        { "elevateprivileges", "string" }, { "spawn", "string" },
                        { "resourcecontrol", "string" }) },
    { "mon", PARAMS({ "chardev", "string" }, { "mode", "string" },
                    { "pretty", "boolean" }) },
    { "object", NO_PARAMS },
    { "device", NO_PARAMS },
    { NULL, NULL },
};
