/* Unit tests for the shared error helpers. */
#include <errno.h>

#include "tern/error.h"

static void test_errno_message(void)
{
    GError *err = NULL;

    tern_set_error_errno(&err, ENOENT, "open %s", "x.img");
    g_assert_nonnull(err);
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_IO));
    g_assert_cmpstr(err->message, ==, "open x.img: No such file or directory");
    g_clear_error(&err);

    tern_set_error_errno(&err, EAGAIN, "lock");
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_BUSY));
    g_clear_error(&err);
}

/* A guest that repeats an invalid access cannot flood the log: a burst per
 * window goes out, the rest are counted when the next window opens. */
static void test_guest_warnings_limited(void)
{
    if (g_test_subprocess()) {
        for (int i = 0; i < 100000; i++) {
            tern_warn_guest("bad access %d", i);
        }
        g_usleep(TERN_GUEST_WARN_WINDOW_US + G_USEC_PER_SEC / 10);
        tern_warn_guest("after the window");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*bad access 9\n*");
    g_test_trap_assert_stderr_unmatched("*bad access 10\n*");
    g_test_trap_assert_stderr("*99990 more guest errors were not reported*"
                              "after the window*");
}

static void test_align(void)
{
    g_assert_cmpuint(ALIGN_UP(4097u, 4096u), ==, 8192u);
    g_assert_cmpuint(ALIGN_DOWN(8191u, 4096u), ==, 4096u);
    g_assert_true(IS_ALIGNED(65536ull, 512ull));
    g_assert_false(IS_ALIGNED(65537ull, 512ull));
    g_assert_cmpuint(DIV_ROUND_UP(10, 4), ==, 3);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/error/errno-message", test_errno_message);
    g_test_add_func("/common/align", test_align);
    g_test_add_func("/error/guest-warnings-limited",
                    test_guest_warnings_limited);
    return g_test_run();
}
