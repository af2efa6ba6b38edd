/* test_log.c -- common/log.c: every byte that could end or disguise a log
 * line is escaped, valid UTF-8 text is kept, and log_msg() writes exactly
 * one line whatever its arguments hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* A literal's length, NUL bytes inside it included. */
#define CHECK_ESCAPE(lit, want) check_escape(lit, sizeof(lit) - 1, want)

static void check_escape(const char *in, size_t len, const char *want)
{
    char out[256];

    assert_int_equal(log_escape(out, sizeof(out), in, len), strlen(want));
    assert_string_equal(out, want);
}

static void test_control_bytes_and_del_become_hex(void **state)
{
    (void)state;
    CHECK_ESCAPE("a\nb\rc\td\x1b[31m\x7f",
                 "a\\x0ab\\x0dc\\x09d\\x1b[31m\\x7f");
    CHECK_ESCAPE("nul\0end", "nul\\x00end");
}

static void test_valid_utf8_is_kept(void **state)
{
    (void)state;
    CHECK_ESCAPE("eu-west-1 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                 "eu-west-1 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_invalid_utf8_and_unicode_line_breaks_become_hex(void **state)
{
    (void)state;
    CHECK_ESCAPE("\xc3(", "\\xc3(");                 /* no continuation */
    CHECK_ESCAPE("\xc0\xaf", "\\xc0\\xaf");          /* overlong '/' */
    CHECK_ESCAPE("\xed\xa0\x80", "\\xed\\xa0\\x80"); /* surrogate */
    CHECK_ESCAPE("\xc2\x85", "\\xc2\\x85");          /* C1: NEL */
    CHECK_ESCAPE("\xe2\x80\xa8", "\\xe2\\x80\\xa8"); /* U+2028 */
    CHECK_ESCAPE("\xe2\x82", "\\xe2\\x82");          /* cut short */
}

static void test_escape_stops_before_what_does_not_fit(void **state)
{
    char out[6];

    (void)state;
    assert_int_equal(log_escape(out, sizeof(out), "ab\ncd", 5), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(log_escape(out, sizeof(out), "abcd\xc3\xa9", 6), 4);
    assert_string_equal(out, "abcd");
}

/* The end-to-end check: log_msg() through stderr, with a value that tries
 * to forge a second line. */
static void test_log_msg_writes_one_line_for_a_forging_value(void **state)
{
    char path[] = "/tmp/sextant-log-XXXXXX", buf[2048];
    int fd, saved;
    size_t n;
    FILE *f;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    log_msg(LOGL_WARN, "ingest", "node %s refused",
            "n1\n2026-01-01T00:00:00.000Z error main: forged");
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fd);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    unlink(path);
    buf[n] = '\0';
    assert_non_null(strstr(buf, " warn  ingest: node n1\\x0a2026-01-01T"));
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);   /* one line */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_bytes_and_del_become_hex),
        cmocka_unit_test(test_valid_utf8_is_kept),
        cmocka_unit_test(test_invalid_utf8_and_unicode_line_breaks_become_hex),
        cmocka_unit_test(test_escape_stops_before_what_does_not_fit),
        cmocka_unit_test(test_log_msg_writes_one_line_for_a_forging_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
