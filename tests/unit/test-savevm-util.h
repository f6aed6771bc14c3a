/*
 * Helpers the migration unit tests share (test-savevm-ram.c,
 * test-savevm-bitmap.c, test-devstate-kvm.c): run a whole SaveVM into a
 * memory QEMUFile and hand back the bytes, and load bytes into a SaveVM,
 * returning the loader's error (NULL on success). Header-only.
 */
#ifndef TESTS_UNIT_TEST_SAVEVM_UTIL_H
#define TESTS_UNIT_TEST_SAVEVM_UTIL_H

#include <glib.h>

#include "migration/qemu-file.h"
#include "migration/savevm.h"

static inline GBytes *test_savevm_save(SaveVM *sv)
{
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;
    GError *err = NULL;
    GBytes *b;

    g_assert_true(savevm_save_all(sv, f, &err));
    g_assert_no_error(err);
    out = qemu_file_mem_output_data(f);
    b = g_bytes_new(out->data, out->len);
    g_assert_true(qemu_fclose(f, NULL));
    return b;
}

static inline GError *test_savevm_load(SaveVM *sv, GBytes *b)
{
    QEMUFile *f = qemu_file_new_mem_input(b);
    GError *err = NULL;

    savevm_load(sv, f, &err);
    qemu_fclose(f, NULL);
    return err;
}

#endif
