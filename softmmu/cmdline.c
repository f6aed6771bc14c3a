/*
 * The command-line parser (softmmu/cmdline.h) and VmConfig's storage. Options
 * are "-name" or "--name", each followed by its argument when it takes one.
 */
#include <stdio.h>
#include <string.h>

#include "softmmu/cmdline.h"
#include "tern/error.h"

VmConfig *vm_config_new(void)
{
    VmConfig *cfg = g_new0(VmConfig, 1);

    cfg->machine = g_strdup("virt");
    cfg->ram_size = 128 * MiB;
    cfg->smp = 1;
    cfg->topo = (VmTopology){ .sockets = 1, .cores = 1 };
    cfg->dump_guest_core = true;
    cfg->serials = g_ptr_array_new_with_free_func(g_free);
    cfg->devices = g_ptr_array_new_with_free_func((GDestroyNotify)keyval_free);
    cfg->objects = g_ptr_array_new_with_free_func((GDestroyNotify)keyval_free);
    cfg->lists = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)g_ptr_array_unref);
    return cfg;
}

void vm_config_free(VmConfig *cfg)
{
    if (!cfg) {
        return;
    }
    g_free(cfg->machine);
    g_free(cfg->kernel);
    g_free(cfg->initrd);
    g_free(cfg->append);
    g_free(cfg->name);
    g_free(cfg->memory_backend);
    g_free(cfg->mem_path);
    g_free(cfg->pidfile);
    g_ptr_array_unref(cfg->serials);
    g_ptr_array_unref(cfg->devices);
    g_ptr_array_unref(cfg->objects);
    g_hash_table_unref(cfg->lists);
    g_free(cfg);
}

GPtrArray *vm_config_list(VmConfig *cfg, const char *name)
{
    GPtrArray *l = g_hash_table_lookup(cfg->lists, name);

    if (!l) {
        l = g_ptr_array_new_with_free_func(g_free);
        g_hash_table_insert(cfg->lists, g_strdup(name), l);
    }
    return l;
}

const char *vm_config_last(VmConfig *cfg, const char *name)
{
    GPtrArray *l = g_hash_table_lookup(cfg->lists, name);

    return l && l->len ? g_ptr_array_index(l, l->len - 1) : NULL;
}

bool cmdline_store_raw(VmConfig *cfg, const char *name, const char *arg, GError **errp)
{
    g_ptr_array_add(vm_config_list(cfg, name), g_strdup(arg));
    return true;
}

static const CmdlineOption *find_option(const char *name)
{
    for (size_t i = 0; i < cmdline_options_count; i++) {
        if (!strcmp(cmdline_options[i].name, name)) {
            return &cmdline_options[i];
        }
    }
    return NULL;
}

bool cmdline_parse(VmConfig *cfg, int argc, char **argv, GError **errp)
{
    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        const char *name = word + (word[1] == '-' ? 2 : 1);
        const CmdlineOption *opt;
        const char *arg = NULL;

        if (word[0] != '-' || !word[1]) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "%s: unexpected argument (options start with '-'; see -help)",
                        word);
            return false;
        }
        opt = find_option(name);
        if (!opt) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "%s: invalid option (see -help)", word);
            return false;
        }
        if (opt->arg) {
            if (i + 1 >= argc) {
                g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                            "%s: requires an argument (%s)", word, opt->arg);
                return false;
            }
            arg = argv[++i];
        }
        if (!opt->handler(cfg, opt->name, arg, errp)) {
            g_prefix_error(errp, "-%s %s: ", opt->name, arg ? arg : "");
            return false;
        }
        if (cfg->exit_now) {
            return true;
        }
    }
    return true;
}

void cmdline_print_help(void)
{
    printf("usage: tern [options]\n\n");
    for (size_t i = 0; i < cmdline_options_count; i++) {
        const CmdlineOption *o = &cmdline_options[i];
        g_autofree char *left = g_strdup_printf("-%s%s%s", o->name, o->arg ? " " : "",
                                                o->arg ? o->arg : "");

        printf("  %-34s %s\n", left, o->help);
    }
}
