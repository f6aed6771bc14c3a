/*
 * The QMP framer: values split across feeds, several values in one feed,
 * strings holding braces and escaped quotes, bare scalars, stray closers,
 * 0xff resynchronisation, and the size and depth limits.
 */
#include <string.h>

#include "monitor/qmp-framer.h"

typedef struct Frames {
    GPtrArray *texts;       /* "TEXT:<value>", "TOO_BIG", "TOO_DEEP" */
    int stop_after;         /* ask the framer to stop after this many; 0: never */
} Frames;

static bool collect(QmpFrameKind kind, const char *text, size_t len, void *opaque)
{
    Frames *f = opaque;

    switch (kind) {
    case QMP_FRAME_TEXT:
        g_assert_cmpuint(strlen(text), ==, len);
        g_ptr_array_add(f->texts, g_strdup_printf("TEXT:%s", text));
        break;
    case QMP_FRAME_TOO_BIG:
        g_ptr_array_add(f->texts, g_strdup("TOO_BIG"));
        break;
    case QMP_FRAME_TOO_DEEP:
        g_ptr_array_add(f->texts, g_strdup("TOO_DEEP"));
        break;
    }
    return !f->stop_after || (int)f->texts->len < f->stop_after;
}

static Frames *frames_new(void)
{
    Frames *f = g_new0(Frames, 1);

    f->texts = g_ptr_array_new_with_free_func(g_free);
    return f;
}

static void frames_free(Frames *f)
{
    g_ptr_array_unref(f->texts);
    g_free(f);
}

static void assert_frames(Frames *f, const char *const *want)
{
    guint n = 0;

    for (; want[n]; n++) {
        g_assert_cmpuint(n, <, f->texts->len);
        g_assert_cmpstr(f->texts->pdata[n], ==, want[n]);
    }
    g_assert_cmpuint(f->texts->len, ==, n);
}

/* Feeds the input in pieces of 'step' bytes. */
static Frames *frame_in_steps(const char *in, size_t step, size_t max, unsigned depth)
{
    g_autoptr(QmpFramer) fr = qmp_framer_new(max, depth);
    Frames *f = frames_new();
    size_t len = strlen(in);

    for (size_t off = 0; off < len; off += step) {
        g_assert_true(qmp_framer_feed(fr, in + off, MIN(step, len - off), collect, f));
    }
    return f;
}

static void test_split_anywhere(void)
{
    const char *in = " {\"execute\": \"a\\\"}{\", \"id\": [1, {\"x\": \"]\"}]}\n"
                     "{\"execute\":\"b\"}";
    const char *want[] = {
        "TEXT:{\"execute\": \"a\\\"}{\", \"id\": [1, {\"x\": \"]\"}]}",
        "TEXT:{\"execute\":\"b\"}", NULL,
    };

    for (size_t step = 1; step <= strlen(in); step++) {
        Frames *f = frame_in_steps(in, step, 4096, 64);

        assert_frames(f, want);
        frames_free(f);
    }
}

static void test_scalars_and_strays(void)
{
    Frames *f = frame_in_steps("\"abc\" 42 true}] , [1]{}", 3, 4096, 64);
    const char *want[] = {
        "TEXT:\"abc\"", "TEXT:42", "TEXT:true", "TEXT:}", "TEXT:]", "TEXT:,",
        "TEXT:[1]", "TEXT:{}", NULL,
    };

    assert_frames(f, want);
    frames_free(f);
}

static void test_partial_pending(void)
{
    g_autoptr(QmpFramer) fr = qmp_framer_new(4096, 64);
    Frames *f = frames_new();
    const char *want[] = { "TEXT:{\"a\": \"}\"}", NULL };

    g_assert_false(qmp_framer_pending(fr));
    qmp_framer_feed(fr, "{\"a\": \"}", 8, collect, f);
    g_assert_true(qmp_framer_pending(fr));
    g_assert_cmpuint(f->texts->len, ==, 0);
    qmp_framer_feed(fr, "\"}", 2, collect, f);
    g_assert_false(qmp_framer_pending(fr));
    assert_frames(f, want);
    frames_free(f);
}

static void test_resync_0xff(void)
{
    Frames *f = frame_in_steps("{\"a\": [1, \"x\xff{\"b\": 2}", 1, 4096, 64);
    const char *want[] = { "TEXT:{\"b\": 2}", NULL };

    assert_frames(f, want);
    frames_free(f);
}

static void test_too_big_then_recovers(void)
{
    GString *in = g_string_new("{\"x\": \"");
    const char *want[] = { "TOO_BIG", "TEXT:{\"ok\": 1}", NULL };
    Frames *f;

    for (int i = 0; i < 300; i++) {
        g_string_append(in, "{[\\\"");     /* structure inside a string is ignored */
    }
    g_string_append(in, "\"}{\"ok\": 1}");
    f = frame_in_steps(in->str, 7, 256, 64);
    assert_frames(f, want);
    frames_free(f);
    g_string_free(in, TRUE);
}

static void test_too_big_bare_word(void)
{
    g_autofree char *in = g_strdup_printf("%0300d {}", 7);
    Frames *f = frame_in_steps(in, 5, 256, 64);
    const char *want[] = { "TOO_BIG", "TEXT:{}", NULL };

    assert_frames(f, want);
    frames_free(f);
}

static void test_too_deep_then_recovers(void)
{
    GString *in = g_string_new(NULL);
    const char *want[] = { "TEXT:[[[[]]]]", "TOO_DEEP", "TEXT:{\"ok\": 1}", NULL };
    Frames *f;

    g_string_append(in, "[[[[]]]]");        /* exactly at the limit: fine */
    for (int i = 0; i < 10; i++) {
        g_string_append(in, "[{\"a\":");
    }
    g_string_append(in, "1");
    for (int i = 0; i < 10; i++) {
        g_string_append(in, "}]");
    }
    g_string_append(in, "{\"ok\": 1}");
    f = frame_in_steps(in->str, 1, 4096, 4);
    assert_frames(f, want);
    frames_free(f);
    g_string_free(in, TRUE);
}

static void test_callback_stops_feed(void)
{
    g_autoptr(QmpFramer) fr = qmp_framer_new(4096, 64);
    Frames *f = frames_new();
    const char *want[] = { "TEXT:{}", NULL };

    f->stop_after = 1;
    g_assert_false(qmp_framer_feed(fr, "{}[]{}", 6, collect, f));
    assert_frames(f, want);
    frames_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-framer/split-anywhere", test_split_anywhere);
    g_test_add_func("/qmp-framer/scalars-and-strays", test_scalars_and_strays);
    g_test_add_func("/qmp-framer/partial-pending", test_partial_pending);
    g_test_add_func("/qmp-framer/resync-0xff", test_resync_0xff);
    g_test_add_func("/qmp-framer/too-big-recovers", test_too_big_then_recovers);
    g_test_add_func("/qmp-framer/too-big-bare-word", test_too_big_bare_word);
    g_test_add_func("/qmp-framer/too-deep-recovers", test_too_deep_then_recovers);
    g_test_add_func("/qmp-framer/callback-stops", test_callback_stops_feed);
    return g_test_run();
}
