/*
 * tern-img: qemu-img's everyday subcommands on tern's block layer — create,
 * info, check, snapshot, compare, resize — plus 'io', a small qemu-io for tests
 * (pattern reads/writes, zeroes, discard, flush, vmstate, and a seeded
 * random-write workload that reports what it flushed, for crash tests), and
 * 'bitmap', implemented in tern-img-bitmap.c. Output and exit codes follow
 * qemu-img where tests compare them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "block/block.h"
#include "block/snapshot-dump.h"
#include "tern-img-bitmap.h"

static int usage(void)
{
    fprintf(stderr,
        "usage: tern-img create -f raw|qcow2 [-o cluster_size=N,compat=0.10|1.1] "
        "FILE SIZE\n"
        "       tern-img info [-f FMT] [-U] [--output=human|json] FILE\n"
        "       tern-img check [-f FMT] [-r leaks|all] [--output=human|json] "
        "FILE\n"
        "       tern-img snapshot [-U] -c|-l|-a|-d [NAME] FILE\n"
        "       tern-img compare [-f FMT] [-F FMT] FILE1 FILE2\n"
        "       tern-img resize [-f FMT] FILE [+|-]SIZE\n"
        "       tern-img io [-f FMT] [-r] [-U] -c CMD [-c CMD...] FILE\n"
        "       tern-img bitmap ... (see tern-img-bitmap.c)\n"
        "io commands: read [-P PAT] OFF LEN |\n"
        "  write [-P PAT|-z [-u]|-s FILE] OFF LEN |\n"
        "  discard OFF LEN | flush | sleep MS | vmsave -P PAT POS LEN |\n"
        "  vmload -P PAT POS LEN | stress SEED COUNT LEN [FLUSH_EVERY]\n");
    return 1;
}

static int fail(GError *err)
{
    fprintf(stderr, "tern-img: %s\n", err->message);
    g_error_free(err);
    return 1;
}

/* "64M", "1G", "512", "4k": bytes, with binary suffixes as qemu-img. */
static bool parse_size(const char *str, uint64_t *out)
{
    char *end;
    errno = 0;
    uint64_t v = g_ascii_strtoull(str, &end, 0);
    if (end == str || errno) {
        return false;
    }
    int shift = 0;
    switch (g_ascii_toupper(*end)) {
    case 0:   break;
    case 'B': shift = 0; end++; break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default:  return false;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift))) {
        return false;
    }
    *out = v << shift;
    return true;
}

static bool parse_create_opts(const char *opts, BlockCreateOpts *co,
                              GError **errp)
{
    g_auto(GStrv) items = g_strsplit(opts, ",", -1);
    for (int i = 0; items[i]; i++) {
        uint64_t v;
        if (g_str_has_prefix(items[i], "cluster_size=") &&
            parse_size(items[i] + 13, &v) && v <= UINT32_MAX) {
            co->cluster_size = (uint32_t)v;
        } else if (g_str_has_prefix(items[i], "compat=")) {
            co->compat = g_intern_string(items[i] + 7);
        } else if (*items[i]) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "Invalid option '%s'", items[i]);
            return false;
        }
    }
    return true;
}

static int img_create(int argc, char **argv)
{
    const char *fmt = "raw";
    BlockCreateOpts co = { 0 };
    GError *err = NULL;
    uint64_t size;
    int c;

    while ((c = getopt(argc, argv, "f:o:")) != -1) {
        if (c == 'f') {
            fmt = optarg;
        } else if (c == 'o') {
            if (!parse_create_opts(optarg, &co, &err)) {
                return fail(err);
            }
        } else {
            return usage();
        }
    }
    if (argc - optind != 2 || !parse_size(argv[optind + 1], &size)) {
        return usage();
    }
    if (!bdrv_create(fmt, argv[optind], size, &co, &err)) {
        return fail(err);
    }
    printf("Formatting '%s', fmt=%s size=%" PRIu64 "\n", argv[optind], fmt,
           size);
    return 0;
}

static json_object *json_snapshot(const BlockSnapshotInfo *sn)
{
    json_object *o = json_object_new_object();

    if (sn->icount != -1) {
        tern_json_add_int(o, "icount", sn->icount);
    }
    tern_json_add_int(o, "vm-clock-nsec", (int64_t)(sn->vm_clock_nsec % 1000000000));
    tern_json_add_str(o, "name", sn->name);
    tern_json_add_int(o, "date-sec", sn->date_sec);
    tern_json_add_int(o, "date-nsec", sn->date_nsec);
    tern_json_add_int(o, "vm-clock-sec", (int64_t)(sn->vm_clock_nsec / 1000000000));
    tern_json_add_str(o, "id", sn->id_str);
    tern_json_add_int(o, "vm-state-size", (int64_t)sn->vm_state_size);
    return o;
}

static json_object *json_format_specific(const BlockImageInfo *info)
{
    json_object *o = json_object_new_object();
    json_object *data = json_object_new_object();
    bool v3 = !strcmp(info->compat, "1.1");

    tern_json_add_str(o, "type", info->format);
    json_object_object_add(o, "data", data);
    tern_json_add_str(data, "compat", info->compat);
    tern_json_add_str(data, "compression-type", "zlib");
    if (v3) {
        tern_json_add_bool(data, "lazy-refcounts", info->lazy_refcounts);
    }
    img_bitmaps_json(data, info->bitmaps);
    tern_json_add_int(data, "refcount-bits", info->refcount_bits);
    if (v3) {
        tern_json_add_bool(data, "corrupt", info->corrupt);
        tern_json_add_bool(data, "extended-l2", info->extended_l2);
    }
    return o;
}

/* qemu-img's layout: json-c's pretty form, indented by 4 rather than 2. */
static void print_json(json_object *o)
{
    g_auto(GStrv) lines = g_strsplit(json_object_to_json_string_ext(o, TERN_JSON_PRETTY),
                                     "\n", -1);

    for (char **l = lines; *l; l++) {
        size_t indent = strspn(*l, " ");

        printf("%*s%s\n", (int)indent, "", *l);
    }
}

static void info_json(const BlockImageInfo *info)
{
    g_autoptr(json_object) o = json_object_new_object();

    if (info->snapshots && info->snapshots->len) {
        json_object *list = json_object_new_array();

        for (guint i = 0; i < info->snapshots->len; i++) {
            json_object_array_add(list, json_snapshot(info->snapshots->pdata[i]));
        }
        json_object_object_add(o, "snapshots", list);
    }
    tern_json_add_int(o, "virtual-size", (int64_t)info->virtual_size);
    tern_json_add_str(o, "filename", info->filename);
    if (info->cluster_size) {
        tern_json_add_int(o, "cluster-size", info->cluster_size);
    }
    tern_json_add_str(o, "format", info->format);
    tern_json_add_int(o, "actual-size", (int64_t)info->actual_size);
    if (info->compat) {
        json_object_object_add(o, "format-specific", json_format_specific(info));
    }
    tern_json_add_bool(o, "dirty-flag", info->dirty_flag);
    print_json(o);
}

static void info_human(const BlockImageInfo *info)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree char *vsize = block_size_to_str(info->virtual_size);
    g_autofree char *dsize = block_size_to_str(info->actual_size);
    g_string_append_printf(out, "image: %s\nfile format: %s\n"
                           "virtual size: %s (%" PRIu64 " bytes)\n"
                           "disk size: %s\n", info->filename, info->format,
                           vsize, info->virtual_size, dsize);
    if (info->cluster_size) {
        g_string_append_printf(out, "cluster_size: %u\n", info->cluster_size);
    }
    if (info->snapshots && info->snapshots->len) {
        block_snapshot_table(out, info->snapshots);
    }
    if (info->compat) {
        g_string_append_printf(out, "Format specific information:\n"
                               "    compat: %s\n"
                               "    compression type: zlib\n"
                               "    refcount bits: %d\n"
                               "    corrupt: %s\n", info->compat,
                               info->refcount_bits,
                               info->corrupt ? "true" : "false");
        img_bitmaps_human(out, info->bitmaps, "    ");
    }
    fputs(out->str, stdout);
}

/* Common options of the read-mostly subcommands. */
typedef struct ImgOpts {
    const char *fmt;
    bool json;
    bool force_share;
    const char *repair;
} ImgOpts;

/* Like qemu-img and qemu-io, tern-img lets others write (its images'
 * formats still forbid what they must: a qcow2 file's writes and resizes). */
#define IMG_SHARE BDRV_O_SHARE_RW

static int open_flags(const ImgOpts *o, bool rw)
{
    int flags = (rw ? BDRV_O_RDWR : 0) | IMG_SHARE;
    if (o->force_share) {
        flags |= BDRV_O_SHARE_RW | BDRV_O_NO_LOCK;
    }
    return flags;
}

static bool parse_common(int argc, char **argv, ImgOpts *o)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'O' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "f:r:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': o->fmt = optarg; break;
        case 'r': o->repair = optarg; break;
        case 'U': o->force_share = true; break;
        case 'O':
            if (strcmp(optarg, "json") && strcmp(optarg, "human")) {
                return false;
            }
            o->json = !strcmp(optarg, "json");
            break;
        default: return false;
        }
    }
    return argc - optind == 1;
}

static int img_info(int argc, char **argv)
{
    ImgOpts o = { 0 };
    GError *err = NULL;
    g_autoptr(BlockImageInfo) info = NULL;

    if (!parse_common(argc, argv, &o)) {
        return usage();
    }
    BlockNode *bs = bdrv_open(argv[optind], o.fmt, open_flags(&o, false), &err);
    if (!bs) {
        return fail(err);
    }
    bool ok = bdrv_get_info(bs, &info, &err);
    bdrv_close(bs);
    if (!ok) {
        return fail(err);
    }
    o.json ? info_json(info) : info_human(info);
    return 0;
}

static void check_report(const char *filename, const char *fmt,
                         const BlockCheckResult *r, bool json)
{
    if (json) {
        g_autoptr(json_object) o = json_object_new_object();

        tern_json_add_int(o, "image-end-offset", r->image_end_offset);
        if (r->compressed_clusters) {
            tern_json_add_int(o, "compressed-clusters", r->compressed_clusters);
        }
        tern_json_add_int(o, "total-clusters", r->total_clusters);
        tern_json_add_int(o, "check-errors", r->check_errors);
        if (r->allocated_clusters) {
            tern_json_add_int(o, "allocated-clusters", r->allocated_clusters);
        }
        if (r->corruptions) {
            tern_json_add_int(o, "corruptions", r->corruptions);
        }
        if (r->leaks) {
            tern_json_add_int(o, "leaks", r->leaks);
        }
        tern_json_add_str(o, "filename", filename);
        tern_json_add_str(o, "format", fmt);
        if (r->fragmented_clusters) {
            tern_json_add_int(o, "fragmented-clusters", r->fragmented_clusters);
        }
        print_json(o);
        return;
    }
    if (!r->corruptions && !r->leaks && !r->check_errors) {
        printf("No errors were found on the image.\n");
    }
    if (r->corruptions) {
        printf("\n%" PRId64 " errors were found on the image.\n"
               "Data may be corrupted, or further writes to the image may "
               "corrupt it.\n", r->corruptions);
    }
    if (r->leaks) {
        printf("\n%" PRId64 " leaked clusters were found on the image.\n"
               "This means waste of disk space, but no harm to data.\n",
               r->leaks);
    }
    if (r->check_errors) {
        printf("\n%" PRId64 " internal errors have occurred during the "
               "check.\n", r->check_errors);
    }
    if (r->total_clusters && r->allocated_clusters) {
        printf("%" PRId64 "/%" PRId64 " = %0.2f%% allocated, %0.2f%% "
               "fragmented, %0.2f%% compressed clusters\n",
               r->allocated_clusters, r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    }
    if (r->image_end_offset) {
        printf("Image end offset: %" PRId64 "\n", r->image_end_offset);
    }
}

static int check_exit_code(const BlockCheckResult *r)
{
    return r->corruptions ? 2 : r->leaks ? 3 : r->check_errors ? 1 : 0;
}

static int img_check(int argc, char **argv)
{
    ImgOpts o = { 0 };
    BlockCheckMode fix = BDRV_CHECK_REPORT;
    BlockCheckResult res;
    GError *err = NULL;

    if (!parse_common(argc, argv, &o)) {
        return usage();
    }
    if (o.repair) {
        if (!strcmp(o.repair, "leaks")) {
            fix = BDRV_FIX_LEAKS;
        } else if (!strcmp(o.repair, "all")) {
            fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
        } else {
            fprintf(stderr, "tern-img: Unknown option for -r: '%s'\n",
                    o.repair);
            return 1;
        }
    }
    BlockNode *bs = bdrv_open(argv[optind], o.fmt,
                              open_flags(&o, fix != 0) | BDRV_O_CHECK, &err);
    if (!bs) {
        return fail(err);
    }
    bool ok = bdrv_check(bs, fix, &res, &err);
    if (ok && (res.leaks_fixed || res.corruptions_fixed)) {
        printf("The following inconsistencies were found and repaired:\n\n"
               "    %" PRId64 " leaked clusters\n    %" PRId64
               " corruptions\n\nDouble checking the fixed image now...\n",
               res.leaks_fixed, res.corruptions_fixed);
        ok = bdrv_check(bs, BDRV_CHECK_REPORT, &res, &err);
    }
    const char *fmt = bdrv_get_format_name(bs);
    if (ok) {
        check_report(argv[optind], fmt, &res, o.json);
    }
    bdrv_close(bs);
    return ok ? check_exit_code(&res) : fail(err);
}

/* qemu-img's words for a failed snapshot -c/-a/-d, its not-found
 * messages included (what its drivers say for a missing snapshot). */
static void snapshot_error(GError *err, char action, const char *name)
{
    static const struct {
        char action;
        const char *verb, *not_found;
    } words[] = {
        { 'c', "create", NULL },
        { 'a', "apply", "Failed to load snapshot: No such file or directory" },
        { 'd', "delete", "snapshot not found" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(words); i++) {
        if (words[i].action != action) {
            continue;
        }
        if (words[i].not_found &&
            g_error_matches(err, TERN_ERROR, TERN_ERR_NOT_FOUND)) {
            g_free(err->message);
            err->message = g_strdup(words[i].not_found);
        }
        g_prefix_error(&err, "Could not %s snapshot '%s': ", words[i].verb,
                       name);
    }
}

static int img_snapshot(int argc, char **argv)
{
    char action = 0;
    const char *name = NULL;
    bool force_share = false;
    GError *err = NULL;
    int c;

    while ((c = getopt(argc, argv, "c:a:d:lU")) != -1) {
        if (c == 'U') {
            force_share = true;
            continue;
        }
        if (!strchr("cadl", c) || action) {
            return usage();
        }
        action = (char)c;
        name = optarg;
    }
    if (!action || argc - optind != 1) {
        return usage();
    }
    int flags = (action == 'l' ? 0 : BDRV_O_RDWR) | IMG_SHARE;
    if (force_share && action == 'l') {
        flags |= BDRV_O_NO_LOCK;
    }
    BlockNode *bs = bdrv_open(argv[optind], NULL, flags, &err);
    if (!bs) {
        return fail(err);
    }
    bool ok = true;
    if (action == 'l') {
        g_autoptr(GPtrArray) list = bdrv_snapshot_list(bs, &err);
        ok = list != NULL;
        if (ok && list->len) {
            g_autoptr(GString) out = g_string_new(NULL);
            block_snapshot_table(out, list);
            fputs(out->str, stdout);
        }
    } else if (action == 'c') {
        gint64 now = g_get_real_time();
        BlockSnapshotInfo sn = {
            .name = (char *)name, .date_sec = (uint32_t)(now / G_USEC_PER_SEC),
            .date_nsec = (uint32_t)(now % G_USEC_PER_SEC) * 1000,
            .icount = 0,
        };
        ok = bdrv_snapshot_create(bs, &sn, &err);
    } else if (action == 'a') {
        ok = bdrv_snapshot_apply(bs, name, &err);
    } else {
        g_autoptr(BlockSnapshotInfo) sn = NULL;
        ok = bdrv_snapshot_find(bs, name, &sn, &err) &&
             bdrv_snapshot_delete(bs, sn->id_str, sn->name, &err);
    }
    bdrv_close(bs);
    if (!ok && action != 'l') {
        snapshot_error(err, action, name);
    }
    return ok ? 0 : fail(err);
}

static int img_resize(int argc, char **argv)
{
    const char *fmt = NULL;
    GError *err = NULL;
    uint64_t size;
    int c;

    if (argc < 3) {
        return usage();
    }
    /* The size goes first, so that "-1M" is not taken for an option. */
    const char *arg = argv[--argc];
    while ((c = getopt(argc, argv, "f:")) != -1) {
        if (c != 'f') {
            return usage();
        }
        fmt = optarg;
    }
    if (argc - optind != 1) {
        return usage();
    }
    int sign = *arg == '+' ? 1 : *arg == '-' ? -1 : 0;
    if (!parse_size(arg + (sign != 0), &size)) {
        return usage();
    }
    BlockNode *bs = bdrv_open(argv[optind], fmt,
                              BDRV_O_RDWR | BDRV_O_RESIZE | IMG_SHARE, &err);
    if (!bs) {
        return fail(err);
    }
    uint64_t cur = bdrv_getlength(bs);
    if (sign < 0 && size > cur) {
        bdrv_close(bs);
        fprintf(stderr, "tern-img: New image size must be positive\n");
        return 1;
    }
    uint64_t target = sign > 0 ? cur + size : sign < 0 ? cur - size : size;
    bool ok = bdrv_truncate(bs, target, &err);
    bdrv_close(bs);
    if (!ok) {
        return fail(err);
    }
    printf("Image resized.\n");
    return 0;
}

static int img_compare(int argc, char **argv)
{
    const char *fmt1 = NULL, *fmt2 = NULL;
    GError *err = NULL;
    int c;
    while ((c = getopt(argc, argv, "f:F:U")) != -1) {
        if (c == 'f') {
            fmt1 = optarg;
        } else if (c == 'F') {
            fmt2 = optarg;
        } else if (c != 'U') {
            return usage();
        }
    }
    if (argc - optind != 2) {
        return usage();
    }
    BlockNode *a = bdrv_open(argv[optind], fmt1, IMG_SHARE, &err);
    BlockNode *b = a ? bdrv_open(argv[optind + 1], fmt2, IMG_SHARE, &err)
                     : NULL;
    int ret = 0;
    if (!b) {
        bdrv_close(a);
        return fail(err);
    }
    uint64_t len = MAX(bdrv_getlength(a), bdrv_getlength(b));
    const size_t chunk = 1 * MiB;
    g_autofree uint8_t *ba = g_malloc(chunk), *bb = g_malloc(chunk);
    for (uint64_t off = 0; off < len && !ret; off += chunk) {
        size_t n = (size_t)MIN(chunk, len - off);
        memset(ba, 0, n);
        memset(bb, 0, n);
        uint64_t la = bdrv_getlength(a), lb = bdrv_getlength(b);
        if ((off < la && !bdrv_pread(a, off, ba, MIN(n, la - off), &err)) ||
            (off < lb && !bdrv_pread(b, off, bb, MIN(n, lb - off), &err))) {
            fail(err);
            err = NULL;
            ret = 4;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (ba[i] != bb[i]) {
                printf("Content mismatch at offset %" PRIu64 "!\n", off + i);
                ret = 1;
                break;
            }
        }
    }
    if (!ret) {
        printf("Images are identical.\n");
    }
    bdrv_close(a);
    bdrv_close(b);
    return ret;
}

/* ---- io: a small qemu-io ---- */

typedef struct IoCmd {
    int argc;
    char **argv;      /* words left after options; point into 'words' */
    char **words;     /* everything g_shell_parse_argv returned */
    int pattern;      /* -P value, -1 if none */
    bool zero;        /* -z */
    bool unmap;       /* -u: with -z, the range may be deallocated */
    const char *source;   /* -s FILE: write its first LENGTH bytes */
} IoCmd;

static bool io_parse(const char *line, IoCmd *cmd, GError **errp)
{
    int n;
    if (!g_shell_parse_argv(line, &n, &cmd->words, errp)) {
        return false;
    }
    cmd->argv = g_new0(char *, n + 1);
    cmd->pattern = -1;
    for (int i = 0; i < n; i++) {
        if (i > 0 && !strcmp(cmd->words[i], "-P") && i + 1 < n) {
            cmd->pattern = (int)(g_ascii_strtoull(cmd->words[++i], NULL, 0)
                                 & 0xff);
        } else if (i > 0 && !strcmp(cmd->words[i], "-z")) {
            cmd->zero = true;
        } else if (i > 0 && !strcmp(cmd->words[i], "-u")) {
            cmd->unmap = true;
        } else if (i > 0 && !strcmp(cmd->words[i], "-s") && i + 1 < n) {
            cmd->source = cmd->words[++i];
        } else {
            cmd->argv[cmd->argc++] = cmd->words[i];
        }
    }
    return true;
}

static bool io_off_len(const IoCmd *cmd, int first, uint64_t *off,
                       uint64_t *len, GError **errp)
{
    if (cmd->argc < first + 2 || !parse_size(cmd->argv[first], off) ||
        !parse_size(cmd->argv[first + 1], len) || *len > 1 * GiB) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: expected OFFSET LENGTH (length at most 1 GiB)",
                    cmd->argv[0]);
        return false;
    }
    return true;
}

static bool verify(const uint8_t *buf, uint64_t len, int pattern,
                   uint64_t off, GError **errp)
{
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i] != pattern) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                        "Pattern verification failed at offset %" PRIu64
                        ", %" PRIu64 " bytes", off + i, len);
            return false;
        }
    }
    return true;
}

static bool io_rw(BlockNode *bs, const IoCmd *cmd, bool write, bool vm,
                  GError **errp)
{
    uint64_t off, len;
    if (!io_off_len(cmd, 1, &off, &len, errp)) {
        return false;
    }
    g_autofree uint8_t *buf = g_malloc(MAX(len, 1));
    bool ok;
    if (write && cmd->source) {
        g_autofree char *data = NULL;
        gsize n;
        if (!g_file_get_contents(cmd->source, &data, &n, errp)) {
            return false;
        }
        if (n < len) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "%s holds %zu bytes, fewer than %" PRIu64,
                        cmd->source, (size_t)n, len);
            return false;
        }
        memcpy(buf, data, len);
    } else if (write) {
        memset(buf, cmd->pattern < 0 ? 0xcd : cmd->pattern, len);
    }
    if (write) {
        ok = cmd->zero ? bdrv_write_zeroes(bs, off, len, cmd->unmap, errp)
           : vm ? bdrv_save_vmstate(bs, off, buf, len, errp)
                : bdrv_pwrite(bs, off, buf, len, errp);
    } else {
        ok = (vm ? bdrv_load_vmstate(bs, off, buf, len, errp)
                 : bdrv_pread(bs, off, buf, len, errp)) &&
             (cmd->pattern < 0 || verify(buf, len, cmd->pattern, off, errp));
    }
    if (ok) {
        printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n",
               write ? "wrote" : "read", len, len, off);
    }
    return ok;
}

/*
 * stress SEED COUNT LEN [FLUSH_EVERY]: COUNT writes of LEN bytes at random
 * LEN-aligned offsets, write i filled with byte (i % 251) + 1. Prints
 * "i OFF PAT" before each write, "w OFF PAT" after it and "f N" after each
 * flush, line-buffered, so a crash test knows which writes were acknowledged
 * and flushed, and which one may have landed unacknowledged when it was killed.
 */
static bool io_stress(BlockNode *bs, const IoCmd *cmd, GError **errp)
{
    uint64_t seed, count, len, every = 16;
    if (cmd->argc < 4 || !parse_size(cmd->argv[1], &seed) ||
        !parse_size(cmd->argv[2], &count) || !parse_size(cmd->argv[3], &len) ||
        (cmd->argc > 4 && !parse_size(cmd->argv[4], &every)) ||
        !len || len > 16 * MiB || !every || len > bdrv_getlength(bs)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "stress: expected SEED COUNT LEN [FLUSH_EVERY]");
        return false;
    }
    g_autoptr(GRand) rand = g_rand_new_with_seed((guint32)seed);
    g_autofree uint8_t *buf = g_malloc(len);
    uint64_t slots = bdrv_getlength(bs) / len;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t off = (uint64_t)g_rand_double_range(rand, 0, (double)slots);
        off = MIN(off, slots - 1) * len;
        int pat = (int)(i % 251) + 1;
        memset(buf, pat, len);
        printf("i %" PRIu64 " %d\n", off, pat);
        if (!bdrv_pwrite(bs, off, buf, len, errp)) {
            return false;
        }
        printf("w %" PRIu64 " %d\n", off, pat);
        if ((i + 1) % every == 0) {
            if (!bdrv_flush(bs, errp)) {
                return false;
            }
            printf("f %" PRIu64 "\n", i + 1);
        }
    }
    return true;
}

static bool io_run(BlockNode *bs, const char *line, GError **errp)
{
    IoCmd cmd = { 0 };
    if (!io_parse(line, &cmd, errp)) {
        return false;
    }
    const char *name = cmd.argc ? cmd.argv[0] : "";
    uint64_t off, len;
    bool ok;
    if (!strcmp(name, "read") || !strcmp(name, "write")) {
        ok = io_rw(bs, &cmd, name[0] == 'w', false, errp);
    } else if (!strcmp(name, "vmload") || !strcmp(name, "vmsave")) {
        ok = io_rw(bs, &cmd, name[2] == 's', true, errp);
    } else if (!strcmp(name, "discard")) {
        ok = io_off_len(&cmd, 1, &off, &len, errp) &&
             bdrv_discard(bs, off, len, errp);
    } else if (!strcmp(name, "flush")) {
        ok = bdrv_flush(bs, errp);
    } else if (!strcmp(name, "sleep") && cmd.argc == 2) {
        g_usleep(g_ascii_strtoull(cmd.argv[1], NULL, 10) * 1000);
        ok = true;
    } else if (!strcmp(name, "stress")) {
        ok = io_stress(bs, &cmd, errp);
    } else {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Unknown io command '%s'", name);
        ok = false;
    }
    g_free(cmd.argv);
    g_strfreev(cmd.words);
    return ok;
}

static int img_io(int argc, char **argv)
{
    const char *fmt = NULL;
    bool ro = false, share = false;
    g_autoptr(GPtrArray) cmds = g_ptr_array_new();
    GError *err = NULL;
    int c;

    while ((c = getopt(argc, argv, "f:c:rU")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'c': g_ptr_array_add(cmds, optarg); break;
        case 'r': ro = true; break;
        case 'U': share = true; break;
        default: return usage();
        }
    }
    if (argc - optind != 1) {
        return usage();
    }
    /* As qemu-io: discards reach the image. */
    int flags = (ro ? 0 : BDRV_O_RDWR) | (share ? BDRV_O_NO_LOCK : 0) |
                BDRV_O_UNMAP | IMG_SHARE;
    BlockNode *bs = bdrv_open(argv[optind], fmt, flags, &err);
    if (!bs) {
        return fail(err);
    }
    int ret = 0;
    for (guint i = 0; i < cmds->len && !ret; i++) {
        if (!io_run(bs, cmds->pdata[i], &err)) {
            ret = fail(err);
            err = NULL;
        }
    }
    bdrv_close(bs);
    return ret;
}

int main(int argc, char **argv)
{
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        { "create", img_create }, { "info", img_info }, { "check", img_check },
        { "snapshot", img_snapshot }, { "compare", img_compare },
        { "resize", img_resize },
        { "io", img_io }, { "bitmap", img_bitmap },
    };

    g_set_prgname("tern-img");   /* prefix of the block layer's error reports */
    if (argc < 2) {
        return usage();
    }
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
        if (!strcmp(argv[1], cmds[i].name)) {
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    return usage();
}
