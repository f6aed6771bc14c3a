/*
 * Helpers the KVM-backed unit tests share (test-vcpu-state.c,
 * test-devstate-kvm.c, test-kvm-dirty-log.c): skip a case cleanly where
 * /dev/kvm is missing. Header-only (static inline) so each test stays one file.
 */
#ifndef TESTS_UNIT_TEST_KVM_UTIL_H
#define TESTS_UNIT_TEST_KVM_UTIL_H

#include <unistd.h>

#include <glib.h>

/* True if /dev/kvm is usable; otherwise marks the running case skipped. */
static inline bool test_have_kvm(void)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        g_test_skip("/dev/kvm is not accessible");
        return false;
    }
    return true;
}

#endif
