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
    static const struct {
        const char *arg;
        unsigned cpus;
    } ok[] = {
        { "3", 3 }, { "cpus=2", 2 }, { "4,sockets=1,cores=4,threads=1", 4 },
        { "cores=6", 6 }, { "2,maxcpus=2,dies=1", 2 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autoptr(VmConfig) cfg = vm_config_new();
        g_autoptr(GError) err = NULL;

        g_assert_true(parse(cfg, &err, "-smp", ok[i].arg, NULL));
        g_assert_cmpuint(cfg->smp, ==, ok[i].cpus);
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
        { { "-m", "1G,slots=2" }, "invalid parameter 'slots'" },
        { { "-smp", "0" }, "at least 1" },
        { { "-smp", "4,maxcpus=8" }, "hotplug" },
        { { "-smp", "4,cores=2" }, "cores must equal" },
        { { "-smp", "4,sockets=2" }, "one socket" },
        { { "-smp", "4,threads=2" }, "one socket" },
        { { "-smp", "4,books=2" }, "invalid parameter 'books'" },
        { { "-accel", "tcg" }, "kvm only" },
        { { "-machine", "q35" }, "unknown machine type" },
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
    g_test_add_func("/cmdline/last-wins-and-sizes", test_last_wins_and_sizes);
    g_test_add_func("/cmdline/smp-spellings", test_smp_spellings);
    g_test_add_func("/cmdline/raw-lists", test_raw_lists);
    g_test_add_func("/cmdline/version-stops-parsing", test_version_stops_parsing);
    g_test_add_func("/cmdline/errors", test_errors);
    return g_test_run();
}
