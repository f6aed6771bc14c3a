/*
 * Standalone replay driver for libFuzzer harnesses: feeds every file given on the
 * command line (or every file in a given directory) to LLVMFuzzerTestOneInput once.
 * CI runs the corpora this way under ASan/UBSan; real fuzzing uses clang's libFuzzer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    g_autofree char *buf = NULL;
    gsize len = 0;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(path, &buf, &len, &err)) {
        fprintf(stderr, "fuzz driver: %s\n", err->message);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    return 0;
}

static int run_path(const char *path, unsigned *count)
{
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        (*count)++;
        return run_file(path);
    }
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;
    int rc = 0;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        rc |= run_path(child, count);
    }
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int rc = 0;

    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        rc |= run_path(argv[i], &count);
    }
    printf("replayed %u inputs\n", count);
    return rc;
}
