/*
 * Fuzz the option parsers a management tool's command line reaches
 * (docs/libvirt.md): the first byte picks the target, the rest is the
 * option's argument.
 *   0  keyval_parse_any: -device/-object/-audiodev's JSON or key=value form
 *   1  -blockdev: JSON, or key=value typed through BlockdevOptions, then
 *      decoded as blockdev-add decodes it (no image is opened)
 *   2+ a command-line option's handler (-smp, -machine, -cpu, -uuid,
 *      -sandbox, -object, ...) through cmdline_parse
 * Every input parses or fails with an error; nothing leaks or crashes, and
 * what parsed frees cleanly.
 */
#include <string.h>

#include "hw/block/blockdev.h"
#include "softmmu/cmdline.h"
#include "tern/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const options[] = {
    "-smp", "-machine", "-cpu", "-uuid", "-sandbox", "-object", "-overcommit",
    "-rtc", "-boot", "-name", "-msg", "-audiodev", "-device", "-m",
};

static void fuzz_keyval(const char *s)
{
    g_autoptr(GError) err = NULL;
    KeyVal *kv = keyval_parse_any(s, "driver", &err);

    g_assert(kv || err);
    if (kv) {
        for (size_t i = 0; i < keyval_count(kv); i++) {
            g_assert(keyval_key_at(kv, i));
            keyval_get_at(kv, i);
        }
        g_assert(keyval_check_unused(kv, NULL));
        keyval_free(kv);
    }
}

static void fuzz_blockdev(const char *s)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) in = NULL;
    BlockdevOptions o = { 0 };

    if (s[0] == '{') {
        in = tern_json_parse(s, strlen(s), 32, &err);
    } else {
        g_autoptr(KeyVal) kv = keyval_parse(s, NULL, &err);

        in = kv ? qmp_keyval_to_json(&blockdev_options_type, kv, &err) : NULL;
    }
    if (!in) {
        return;
    }
    if (qmp_decode(&blockdev_options_type, in, &o, "", &err)) {
        g_assert_null(err);
        qmp_free(&blockdev_options_type, &o);
    } else {
        g_assert(err);
    }
}

static void fuzz_option(uint8_t which, const char *arg)
{
    g_autoptr(VmConfig) cfg = vm_config_new();
    g_autoptr(GError) err = NULL;
    char *argv[] = { "tern", (char *)options[which % G_N_ELEMENTS(options)],
                     (char *)arg, NULL };

    if (!cmdline_parse(cfg, 3, argv, &err)) {
        g_assert(err);
    }
    tern_report_set_timestamps(false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *s = NULL;

    if (!size) {
        return 0;
    }
    s = g_strndup((const char *)data + 1, size - 1);
    switch (data[0]) {
    case 0:
        fuzz_keyval(s);
        break;
    case 1:
        fuzz_blockdev(s);
        break;
    default:
        fuzz_option(data[0] - 2, s);
        break;
    }
    return 0;
}
