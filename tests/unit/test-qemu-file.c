/* Unit tests for QEMUFile: golden big-endian bytes, buffering across the
 * internal buffer size, zero-copy puts, peek, the sticky error, truncation,
 * the fd backend over a pipe and the return path over a socketpair. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/qemu-file.h"

static QEMUFile *input_of(const void *data, size_t len)
{
    g_autoptr(GBytes) b = g_bytes_new(data, len);

    return qemu_file_new_mem_input(b);
}

static void test_put_golden(void)
{
    static const uint8_t golden[] = {
        0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x03, 'r', 'a', 'm', 'x', 'y',
    };
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;

    qemu_put_byte(f, 0xab);
    qemu_put_be16(f, 0x1234);
    qemu_put_be32(f, 0xdeadbeef);
    qemu_put_be64(f, 0x0102030405060708ull);
    qemu_put_counted_string(f, "ram");
    qemu_put_buffer(f, "xy", 2);
    g_assert_cmpuint(qemu_file_tell(f), ==, sizeof(golden));
    out = qemu_file_mem_output_data(f);
    g_assert_cmpmem(out->data, out->len, golden, sizeof(golden));
    g_assert_true(qemu_fclose(f, NULL));
}

static void test_get_golden(void)
{
    static const uint8_t in[] = {
        0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x03, 'r', 'a', 'm',
    };
    QEMUFile *f = input_of(in, sizeof(in));
    char name[256];

    g_assert_cmpuint(qemu_get_byte(f), ==, 0xab);
    g_assert_cmpuint(qemu_get_be16(f), ==, 0x1234);
    g_assert_cmpuint(qemu_get_be32(f), ==, 0xdeadbeef);
    g_assert_cmphex(qemu_get_be64(f), ==, 0x0102030405060708ull);
    g_assert_cmpuint(qemu_get_counted_string(f, name), ==, 3);
    g_assert_cmpstr(name, ==, "ram");
    g_assert_true(qemu_file_at_eof(f));
    g_assert_null(qemu_file_get_error(f));
    g_assert_true(qemu_fclose(f, NULL));
}

/* Writes larger than the buffer, mixed with zero-copy pieces, come out in
 * order; reads of them in odd sizes give the same bytes back. */
static void test_large_roundtrip(void)
{
    size_t n = 3 * QEMU_FILE_BUF_SIZE + 123;
    g_autofree uint8_t *page = g_malloc(n);
    g_autofree uint8_t *back = g_malloc(n);
    QEMUFile *f = qemu_file_new_mem_output();
    const GByteArray *out;
    QEMUFile *in;

    for (size_t i = 0; i < n; i++) {
        page[i] = i * 7 + 3;
    }
    qemu_put_be32(f, 1);
    qemu_put_buffer_async(f, page, 4096);
    qemu_put_be32(f, 2);
    qemu_put_buffer(f, page, n);
    for (int i = 0; i < 100; i++) {     /* more pieces than the iovec holds */
        qemu_put_buffer_async(f, page + (i % 16) * 4096, 4096);
        qemu_put_byte(f, i);
    }
    out = qemu_file_mem_output_data(f);
    g_assert_cmpuint(out->len, ==, 8 + 4096 + n + 100 * 4097);

    in = input_of(out->data, out->len);
    g_assert_cmpuint(qemu_get_be32(in), ==, 1);
    g_assert_cmpuint(qemu_get_buffer(in, back, 4096), ==, 4096);
    g_assert_cmpmem(back, 4096, page, 4096);
    g_assert_cmpuint(qemu_get_be32(in), ==, 2);
    g_assert_cmpuint(qemu_get_buffer(in, back, n), ==, n);
    g_assert_cmpmem(back, n, page, n);
    for (int i = 0; i < 100; i++) {
        g_assert_cmpuint(qemu_get_buffer(in, back, 4096), ==, 4096);
        g_assert_cmpmem(back, 4096, page + (i % 16) * 4096, 4096);
        g_assert_cmpuint(qemu_get_byte(in), ==, i);
    }
    g_assert_true(qemu_file_at_eof(in));
    g_assert_true(qemu_fclose(in, NULL));
    g_assert_true(qemu_fclose(f, NULL));
}

static void test_peek(void)
{
    static const uint8_t in[] = { 5, 3, 'a', 'b', 'c', 9 };
    QEMUFile *f = input_of(in, sizeof(in));
    const uint8_t *p;

    g_assert_cmpint(qemu_peek_byte(f, 0), ==, 5);
    g_assert_cmpint(qemu_peek_byte(f, 1), ==, 3);
    g_assert_cmpuint(qemu_peek_buffer(f, &p, 3, 2), ==, 3);
    g_assert_cmpmem(p, 3, "abc", 3);
    g_assert_cmpuint(qemu_peek_buffer(f, &p, 10, 2), ==, 4);   /* short */
    g_assert_cmpint(qemu_peek_byte(f, 6), ==, -1);             /* past end */
    g_assert_null(qemu_file_get_error(f));                     /* no error */
    g_assert_cmpuint(qemu_file_tell(f), ==, 0);
    qemu_file_skip(f, 5);
    g_assert_cmpuint(qemu_get_byte(f), ==, 9);
    g_assert_true(qemu_fclose(f, NULL));
}

static void test_truncated_sticky(void)
{
    static const uint8_t in[] = { 0x11, 0x22, 0x33 };
    QEMUFile *f = input_of(in, sizeof(in));
    GError *err = NULL;

    g_assert_cmpuint(qemu_get_be32(f), ==, 0);
    g_assert_nonnull(qemu_file_get_error(f));
    g_assert_nonnull(strstr(qemu_file_get_error(f)->message, "truncated"));
    /* Later reads are no-ops returning 0, the first error stays. */
    qemu_file_set_error_msg(f, "second error");
    g_assert_cmpuint(qemu_get_byte(f), ==, 0);
    g_assert_nonnull(strstr(qemu_file_get_error(f)->message, "truncated"));
    g_assert_false(qemu_file_check(f, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_false(qemu_fclose(f, &err));
    g_assert_nonnull(strstr(err->message, "truncated"));
    g_error_free(err);
}

static void test_counted_string_truncated(void)
{
    static const uint8_t in[] = { 200, 'a', 'b' };
    QEMUFile *f = input_of(in, sizeof(in));
    char buf[256];

    g_assert_cmpuint(qemu_get_counted_string(f, buf), ==, 0);
    g_assert_cmpstr(buf, ==, "ab");
    g_assert_nonnull(qemu_file_get_error(f));
    g_assert_false(qemu_fclose(f, NULL));
}

static void test_output_error_sticky(void)
{
    QEMUFile *f = qemu_file_new_mem_output();
    GError *err = NULL;

    qemu_put_be32(f, 1);
    qemu_file_set_error_msg(f, "device failed");
    qemu_put_be32(f, 2);                  /* dropped */
    g_assert_true(qemu_file_rate_limit_exceeded(f));
    g_assert_cmpuint(qemu_file_mem_output_data(f)->len, ==, 0);
    g_assert_false(qemu_fclose(f, &err));
    g_assert_cmpstr(err->message, ==, "device failed");
    g_error_free(err);
}

static void test_rate_limit(void)
{
    QEMUFile *f = qemu_file_new_mem_output();
    uint8_t page[4096] = { 0 };

    g_assert_false(qemu_file_rate_limit_exceeded(f));   /* unlimited */
    qemu_file_set_rate_limit(f, 10000);
    g_assert_cmpuint(qemu_file_get_rate_limit(f), ==, 10000);
    qemu_put_buffer(f, page, sizeof(page));
    qemu_put_buffer(f, page, sizeof(page));
    g_assert_false(qemu_file_rate_limit_exceeded(f));
    qemu_put_buffer(f, page, sizeof(page));
    g_assert_true(qemu_file_rate_limit_exceeded(f));
    qemu_file_reset_rate_limit(f);
    g_assert_false(qemu_file_rate_limit_exceeded(f));
    g_assert_true(qemu_fclose(f, NULL));
}

static void test_fd_pipe(void)
{
    int fds[2];
    QEMUFile *out, *in;
    GError *err = NULL;

    g_assert_cmpint(pipe(fds), ==, 0);
    out = qemu_file_new_fd_output(fds[1]);
    in = qemu_file_new_fd_input(fds[0]);
    qemu_put_be64(out, 0x1122334455667788ull);
    qemu_put_counted_string(out, "pc.ram");
    /* A pipe has no return path. */
    g_assert_null(qemu_file_get_return_path(out, &err));
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_NOT_SUPPORTED));
    g_clear_error(&err);
    g_assert_true(qemu_fclose(out, NULL));

    char name[256];
    g_assert_cmphex(qemu_get_be64(in), ==, 0x1122334455667788ull);
    g_assert_cmpuint(qemu_get_counted_string(in, name), ==, 6);
    g_assert_cmpstr(name, ==, "pc.ram");
    g_assert_true(qemu_file_at_eof(in));
    qemu_get_byte(in);
    g_assert_nonnull(qemu_file_get_error(in));
    g_assert_false(qemu_fclose(in, NULL));
}

/* The destination answers on the same socket through its return path. */
static void test_return_path_socketpair(void)
{
    int sv[2];
    QEMUFile *src_out, *dst_in, *dst_rp, *src_rp;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    src_out = qemu_file_new_fd_output(sv[0]);
    dst_in = qemu_file_new_fd_input(sv[1]);
    dst_rp = qemu_file_get_return_path(dst_in, NULL);
    src_rp = qemu_file_get_return_path(src_out, NULL);
    g_assert_nonnull(dst_rp);
    g_assert_nonnull(src_rp);
    g_assert_true(qemu_file_is_output(dst_rp));
    g_assert_false(qemu_file_is_output(src_rp));

    qemu_put_be32(src_out, 42);
    qemu_fflush(src_out);
    g_assert_cmpuint(qemu_get_be32(dst_in), ==, 42);
    qemu_put_be32(dst_rp, 43);
    qemu_fflush(dst_rp);
    g_assert_cmpuint(qemu_get_be32(src_rp), ==, 43);

    g_assert_true(qemu_fclose(dst_rp, NULL));
    g_assert_true(qemu_fclose(src_rp, NULL));
    g_assert_true(qemu_fclose(src_out, NULL));
    g_assert_true(qemu_fclose(dst_in, NULL));
}

static void test_write_to_closed_socket(void)
{
    int sv[2];
    QEMUFile *f;
    uint8_t page[4096] = { 0 };
    GError *err = NULL;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    close(sv[1]);
    f = qemu_file_new_fd_output(sv[0]);
    qemu_put_buffer(f, page, sizeof(page));
    qemu_fflush(f);              /* EPIPE, not SIGPIPE */
    g_assert_nonnull(qemu_file_get_error(f));
    g_assert_false(qemu_fclose(f, &err));
    g_assert_true(g_error_matches(err, TERN_ERROR, TERN_ERR_IO));
    g_error_free(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qemu-file/put-golden", test_put_golden);
    g_test_add_func("/qemu-file/get-golden", test_get_golden);
    g_test_add_func("/qemu-file/large-roundtrip", test_large_roundtrip);
    g_test_add_func("/qemu-file/peek", test_peek);
    g_test_add_func("/qemu-file/truncated-sticky", test_truncated_sticky);
    g_test_add_func("/qemu-file/counted-string-truncated",
                    test_counted_string_truncated);
    g_test_add_func("/qemu-file/output-error-sticky", test_output_error_sticky);
    g_test_add_func("/qemu-file/rate-limit", test_rate_limit);
    g_test_add_func("/qemu-file/fd-pipe", test_fd_pipe);
    g_test_add_func("/qemu-file/return-path", test_return_path_socketpair);
    g_test_add_func("/qemu-file/closed-socket", test_write_to_closed_socket);
    return g_test_run();
}
