/*
 * Unit tests for the command-line parser (softmmu/cmdline.c, options.c):
 * values land in VmConfig, raw options are kept in order for other areas,
 * and bad options fail with a message naming them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "softmmu/cmdline.h"
#include "softmmu/objects.h"
#include "tern/error.h"

static bool parse(VmConfig *cfg, GError **errp, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    va_list ap;
    const char *a;

    g_ptr_array_add(argv, (char *)"tern");
    va_start(ap, errp);
    while ((a = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, (char *)a);
    }
    va_end(ap);
    return cmdline_parse(cfg, argv->len, (char **)argv->pdata, errp);
}

static void test_machine_options(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();
    g_autoptr(GError) err = NULL;

    g_assert_true(parse(cfg, &err, "-M", "virt,accel=kvm", "-accel", "kvm", "-m", "512",
                        "-smp", "cpus=4", "-kernel", "k.elf", "-initrd", "i.img",
                        "-append", "console=ttyS0 x=1", "-name", "guest=vm1",
                        "-serial", "file:/tmp/s.log", "-S", "-no-reboot",
                        "-no-shutdown", "-nographic", "-display", "none",
                        "--device", "isa-debug-exit,iobase=0xf4,iosize=4", NULL));
    g_assert_no_error(err);
    g_assert_cmpuint(cfg->ram_size, ==, 512 * MiB);
    g_assert_cmpuint(cfg->smp, ==, 4);
    g_assert_cmpstr(cfg->kernel, ==, "k.elf");
    g_assert_cmpstr(cfg->initrd, ==, "i.img");
    g_assert_cmpstr(cfg->append, ==, "console=ttyS0 x=1");
    g_assert_cmpstr(cfg->name, ==, "vm1");
    g_assert_cmpuint(cfg->serials->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(cfg->serials, 0), ==, "file:/tmp/s.log");
    g_assert_true(cfg->start_paused && cfg->no_reboot && cfg->no_shutdown);
    g_assert_cmpuint(cfg->devices->len, ==, 1);
    g_assert_cmpstr(keyval_get(g_ptr_array_index(cfg->devices, 0), "driver"), ==,
                    "isa-debug-exit");
    g_assert_false(cfg->exit_now);
}

/* What libvirt 9.0 gives an emulator for a minimal KVM domain (the parts
 * the command line itself records; the machine checks the rest). */
static void test_libvirt_command_line(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("cmdline-XXXXXX", NULL);
    g_autofree char *key = g_build_filename(dir, "master-key.aes", NULL);
    g_autofree char *secret = g_strdup_printf("secret,id=masterKey0,format=raw,file=%s",
                                              key);

    g_assert_true(g_file_set_contents(key, "0123456789abcdef0123456789abcdef", -1, NULL));
    g_assert_true(parse(cfg, &err, "-name", "guest=lvt,debug-threads=on", "-S",
        "-object", secret,
        "-machine", "virt,usb=off,dump-guest-core=off,memory-backend=pc.ram",
        "-accel", "kvm", "-cpu", "host,migratable=on", "-m", "128",
        "-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\","
                   "\"size\":134217728}",
        "-overcommit", "mem-lock=off", "-smp", "2,sockets=2,dies=1,cores=1,threads=1",
        "-uuid", "50d24677-5e8b-47ee-901f-950c170b8d5c", "-display", "none",
        "-no-user-config", "-nodefaults", "-rtc", "base=utc", "-no-shutdown",
        "-boot", "strict=on", "-audiodev", "{\"id\":\"audio1\",\"driver\":\"none\"}",
        "-device", "{\"driver\":\"isa-serial\",\"chardev\":\"charserial0\","
                   "\"id\":\"serial0\",\"index\":0}",
        "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
                    "resourcecontrol=deny",
        "-msg", "timestamp=on", NULL));
    g_assert_no_error(err);
    g_assert_cmpstr(cfg->name, ==, "lvt");
    g_assert_true(cfg->debug_threads && cfg->start_paused && cfg->nodefaults);
    g_assert_false(cfg->dump_guest_core);
    g_assert_cmpstr(cfg->memory_backend, ==, "pc.ram");
    g_assert_cmpuint(cfg->objects->len, ==, 2);
    g_assert_cmpuint(cfg->smp, ==, 2);
    g_assert_cmpuint(cfg->topo.sockets, ==, 2);
    g_assert_true(cfg->has_uuid);
    g_assert_cmphex(cfg->uuid[0], ==, 0x50);
    g_assert_cmphex(cfg->uuid[15], ==, 0x5c);
    g_assert_true(cfg->sandbox.on && cfg->sandbox.deny_spawn && cfg->sandbox.deny_elevate &&
                  cfg->sandbox.deny_resources && cfg->sandbox.deny_obsolete);
    /* The JSON -device became key=value items with text values. */
    g_assert_cmpstr(keyval_get(g_ptr_array_index(cfg->devices, 0), "index"), ==, "0");
    g_assert_true(objects_resolve_ram(cfg, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(cfg->ram_size, ==, 128 * MiB);
    tern_report_set_timestamps(false);
    unlink(key);
    rmdir(dir);
}

static void test_ram_backend_size(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();
    g_autoptr(GError) err = NULL;

    g_assert_true(parse(cfg, &err, "-m", "64", "-machine", "memory-backend=pc.ram",
                        "-object", "memory-backend-memfd,id=pc.ram,size=32M", NULL));
    g_assert_false(objects_resolve_ram(cfg, &err));
    g_assert_nonnull(strstr(err->message, "does not match"));
}

static void test_defaults(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();

    g_assert_true(parse(cfg, NULL, NULL));
    g_assert_cmpstr(cfg->machine, ==, "virt");
    g_assert_cmpuint(cfg->ram_size, ==, 128 * MiB);
    g_assert_cmpuint(cfg->smp, ==, 1);
    g_assert_null(cfg->kernel);
    g_assert_false(cfg->start_paused);
}

static void test_last_wins_and_sizes(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();

    g_assert_true(parse(cfg, NULL, "-m", "1G", "-m", "size=2G", "-smp", "2", "-smp", "3",
                        "-kernel", "a", "-kernel", "b", NULL));
    g_assert_cmpuint(cfg->ram_size, ==, 2 * GiB);
    g_assert_cmpuint(cfg->smp, ==, 3);
    g_assert_cmpstr(cfg->kernel, ==, "b");
}

static void test_smp_spellings(void)
{
    /* QEMU 7.2's rule: missing sockets are 1, missing cores fill cpus. */
    static const struct {
        const char *arg;
        unsigned cpus, sockets, cores;
    } ok[] = {
        { "3", 3, 1, 3 }, { "cpus=2", 2, 1, 2 }, { "4,sockets=1,cores=4,threads=1", 4, 1, 4 },
        { "cores=6", 6, 1, 6 }, { "2,maxcpus=2,dies=1", 2, 1, 2 },
        { "2,sockets=2,cores=1,threads=1", 2, 2, 1 },     /* libvirt's spelling */
        { "4,sockets=2", 4, 2, 2 }, { "sockets=3", 3, 3, 1 }, { "4,cores=2", 4, 2, 2 },
        { "8,sockets=2,dies=1,clusters=1,cores=4,threads=1", 8, 2, 4 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autoptr(VmConfig) cfg = vm_config_new();
        g_autoptr(GError) err = NULL;

        g_assert_true(parse(cfg, &err, "-smp", ok[i].arg, NULL));
        g_assert_no_error(err);
        g_assert_cmpuint(cfg->smp, ==, ok[i].cpus);
        g_assert_cmpuint(cfg->topo.sockets, ==, ok[i].sockets);
        g_assert_cmpuint(cfg->topo.cores, ==, ok[i].cores);
    }
}

static void test_raw_lists(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();
    GPtrArray *l;

    g_assert_true(cmdline_store_raw(cfg, "incoming", "defer", NULL));
    g_assert_true(cmdline_store_raw(cfg, "incoming", "unix:/x", NULL));
    l = vm_config_list(cfg, "incoming");
    g_assert_cmpuint(l->len, ==, 2);
    g_assert_cmpstr(vm_config_last(cfg, "incoming"), ==, "unix:/x");
    g_assert_null(vm_config_last(cfg, "loadvm"));
    g_assert_cmpuint(vm_config_list(cfg, "loadvm")->len, ==, 0);
}

static void test_version_stops_parsing(void)
{
    g_autoptr(VmConfig) cfg = vm_config_new();
    int saved = dup(STDOUT_FILENO), devnull = open("/dev/null", O_WRONLY);

    /* Keep the version banner out of the TAP stream. */
    fflush(stdout);
    dup2(devnull, STDOUT_FILENO);
    g_assert_true(parse(cfg, NULL, "-version", "-bogus", NULL));
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(devnull);
    g_assert_true(cfg->exit_now);
}

static void test_errors(void)
{
    static const struct {
        const char *args[4];
        const char *phrase;
    } cases[] = {
        { { "-bogus" }, "-bogus: invalid option" },
        { { "image.qcow2" }, "unexpected argument" },
        { { "-" }, "unexpected argument" },
        { { "-m" }, "requires an argument" },
        { { "-m", "1" }, "too small" },
        { { "-m", "" }, "missing 'size'" },         /* crashed: no error was set */
        { { "-m", "1G,slots=2" }, "invalid parameter 'slots'" },
        { { "-smp", "0" }, "at least 1" },
        { { "-smp", "4,maxcpus=8" }, "hotplug" },
        { { "-smp", "4,sockets=1,cores=2,threads=1" }, "product of the hierarchy must match" },
        { { "-smp", "4,sockets=1,cores=2" }, "single-thread cores" },   /* threads=2 */
        { { "-smp", "4,sockets=3,cores=1" }, "product of the hierarchy must match" },
        { { "-smp", "4,threads=2" }, "single-thread cores" },
        { { "-smp", "6,sockets=2,cores=3" }, "power of two" },
        { { "-smp", "2,cores=0" }, "greater than zero" },
        { { "-smp", "4,books=2" }, "invalid parameter 'books'" },
        { { "-accel", "tcg" }, "kvm only" },
        { { "-machine", "q35" }, "unknown machine type" },
        { { "-machine", "virt,accel=tcg" }, "kvm only" },
        { { "-machine", "virt,usb=on" }, "no USB" },
        { { "-machine", "virt,vmport=off" }, "invalid parameter 'vmport'" },
        { { "-cpu", "qemu64" }, "host CPU" },
        { { "-cpu", "host,+vmx" }, "expected key=value" },
        { { "-cpu", "host,vmx=on" }, "invalid parameter 'vmx'" },
        { { "-uuid", "not-a-uuid" }, "Wrong format" },
        { { "-uuid", "0123456789abcdef0123456789abcdef0123" }, "Wrong format" },
        { { "-overcommit", "cpu-pm=on" }, "HLT" },
        { { "-rtc", "base=localtime" }, "UTC" },
        { { "-rtc", "driftfix=slew" }, "lost RTC" },
        { { "-boot", "order=c" }, "no firmware" },
        { { "-sandbox", "on,spawn=maybe" }, "invalid argument for spawn" },
        { { "-msg", "timestamp=on,guest-name=on" }, "guest-name" },
        { { "-object", "iothread,id=io0" }, "not supported" },
        { { "-object", "memory-backend-ram,id=m,size=1M,share=off" }, "share=off" },
        { { "-object", "memory-backend-file,id=m,size=1M,share=on" }, "mem-path" },
        { { "-object", "secret,id=s" }, "data= and file=" },
        { { "-audiodev", "pa,id=a" }, "no sound" },
        { { "-device", "{\"driver\": \"x\", \"a\": null}" }, "cannot be null" },
        { { "-device", "{\"driver\": 1" }, "-device" },
        { { "-display", "sdl" }, "no display" },
        { { "-device", "iobase=1" }, "missing device driver" },
        { { "-name", "a,,b,c=d" }, "invalid parameter 'c'" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(VmConfig) cfg = vm_config_new();
        g_autoptr(GError) err = NULL;
        bool ok = parse(cfg, &err, cases[i].args[0], cases[i].args[1], cases[i].args[2],
                        NULL);

        g_assert_false(ok);
        g_assert_nonnull(err);
        if (!strstr(err->message, cases[i].phrase)) {
            g_error("'%s': message '%s' lacks '%s'", cases[i].args[0], err->message,
                    cases[i].phrase);
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/machine-options", test_machine_options);
    g_test_add_func("/cmdline/defaults", test_defaults);
    g_test_add_func("/cmdline/libvirt", test_libvirt_command_line);
    g_test_add_func("/cmdline/ram-backend-size", test_ram_backend_size);
    g_test_add_func("/cmdline/last-wins-and-sizes", test_last_wins_and_sizes);
    g_test_add_func("/cmdline/smp-spellings", test_smp_spellings);
    g_test_add_func("/cmdline/raw-lists", test_raw_lists);
    g_test_add_func("/cmdline/version-stops-parsing", test_version_stops_parsing);
    g_test_add_func("/cmdline/errors", test_errors);
    return g_test_run();
}
