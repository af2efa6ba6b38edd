/* test_jsonw.c -- the JSON writer escapes what JSON requires, replaces
 * bytes that are not UTF-8, stops at its cap, and the API's time parser
 * takes both forms it documents; CSV and Markdown rows escape what would
 * break them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jsonw.h"
#include "table.h"

static void test_strings_are_escaped(void **state)
{
    struct jsonw w;
    char *s;

    (void)state;
    jsonw_init(&w, 1024);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "a\"b");
    jsonw_str(&w, "q\" bs\\ nl\n tab\t ctl\x01 é");
    jsonw_key(&w, "n");
    jsonw_arr_begin(&w);
    jsonw_int(&w, -5);
    jsonw_uint(&w, 18446744073709551615u);
    jsonw_bool(&w, 1);
    jsonw_null(&w);
    jsonw_double(&w, NAN);
    jsonw_double(&w, 0.5);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    s = jsonw_take(&w, NULL);
    assert_non_null(s);
    assert_string_equal(s, "{\"a\\\"b\":\"q\\\" bs\\\\ nl\\n tab\\t ctl\\u0001 "
                           "é\",\"n\":[-5,18446744073709551615,true,null,"
                           "\"NaN\",0.5]}");
    free(s);
}

static void test_bytes_that_are_not_utf8_become_replacement_chars(void **state)
{
    struct jsonw w;
    char *s;

    (void)state;
    jsonw_init(&w, 1024);
    jsonw_obj_begin(&w);
    /* Each bad byte is one U+FFFD; good characters around them stay. */
    jsonw_key(&w, "k\xff");
    jsonw_str(&w, "a\xff\xfe" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82");
    jsonw_key(&w, "ok");
    jsonw_str(&w, "\xc3\xa9\xf0\x9f\x98\x80\x7f");
    jsonw_obj_end(&w);
    s = jsonw_take(&w, NULL);
    assert_non_null(s);
    assert_string_equal(s, "{\"k\\ufffd\":\"a\\ufffd\\ufffdb\\ufffd\\ufffd"
                           "c\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffd\","
                           "\"ok\":\"\xc3\xa9\xf0\x9f\x98\x80\x7f\"}");
    free(s);
}

static void test_growing_past_the_cap_fails_and_sticks(void **state)
{
    struct jsonw w;
    char big[200];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    jsonw_init(&w, 100);
    jsonw_arr_begin(&w);
    jsonw_str(&w, big);
    assert_int_equal(w.err, -EMSGSIZE);
    jsonw_str(&w, "small");
    assert_int_equal(w.err, -EMSGSIZE);
    assert_null(jsonw_take(&w, NULL));
}

static void test_a_reset_buffer_starts_empty_and_clean(void **state)
{
    struct jsonw w;
    char *s;

    (void)state;
    jsonw_init(&w, 8);
    jsonw_arr_begin(&w);
    jsonw_str(&w, "past the cap");         /* fails: the error sticks */
    assert_int_not_equal(w.err, 0);
    jsonw_reset(&w);
    assert_int_equal(w.err, 0);
    jsonw_int(&w, 1);               /* no comma: nothing before it */
    s = jsonw_take(&w, NULL);
    assert_non_null(s);
    assert_string_equal(s, "1");
    free(s);
}

static void test_times_parse_as_ms_or_rfc3339(void **state)
{
    int64_t t = 0;

    (void)state;
    assert_int_equal(api_parse_time("1764090000123", &t), 0);
    assert_int_equal(t, 1764090000123);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00Z", &t), 0);
    assert_int_equal(t, 1764090000000);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00.5Z", &t), 0);
    assert_int_equal(t, 1764090000500);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00.123456Z", &t), 0);
    assert_int_equal(t, 1764090000123);
    assert_int_equal(api_parse_time("", &t), -EINVAL);
    assert_int_equal(api_parse_time("yesterday", &t), -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00", &t), -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00.Z", &t), -EINVAL);
    assert_int_equal(api_parse_time("99999999999999999999", &t), -EINVAL);
}

static void test_parse_time_takes_rfc3339_offsets_and_lower_case(
    void **state)
{
    int64_t t = 0;

    (void)state;
    /* 17:00+01:00 is 16:00Z; 22:00+02:00 is 20:00Z; -05:30 adds. */
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+01:00", &t), 0);
    assert_int_equal(t, 1764086400000);
    assert_int_equal(api_parse_time("2026-12-04T22:00:00+02:00", &t), 0);
    assert_int_equal(t, 1796414400000);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00.250-05:30", &t),
                     0);
    assert_int_equal(t, 1764090000000 + 5 * 3600000 + 1800000 + 250);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00-00:00", &t), 0);
    assert_int_equal(t, 1764090000000);
    assert_int_equal(api_parse_time("2025-11-25t17:00:00z", &t), 0);
    assert_int_equal(t, 1764090000000);
    /* The offset across midnight and the year. */
    assert_int_equal(api_parse_time("2026-01-01T00:30:00+01:00", &t), 0);
    assert_int_equal(t, 1767223800000);

    t = 42;
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+1:00", &t),
                     -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+0100", &t),
                     -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+24:00", &t),
                     -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+01:60", &t),
                     -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+01:00Z", &t),
                     -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00Z ", &t), -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25 17:00:00Z", &t), -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00 +01:00", &t),
                     -EINVAL);
    assert_int_equal(t, 42);                /* untouched on error */
}

static char *table_text(enum table_format f)
{
    static const char *const head[] = { "time", "text" };
    static const char *const row1[] = { "a,b", "say \"hi\"" };
    static const char *const row2[] = { "x|y\\z", "two\nlines" };
    static const char *const row3[] = { NULL, "plain" };
    struct jsonw w;

    jsonw_init(&w, 4096);
    table_header(&w, f, head, 2);
    table_row(&w, f, row1, 2);
    table_row(&w, f, row2, 2);
    table_row(&w, f, row3, 2);
    return jsonw_take(&w, NULL);
}

static void test_tables_escape_what_would_break_a_row(void **state)
{
    enum table_format f;
    char *s;

    (void)state;
    s = table_text(TABLE_CSV);
    assert_string_equal(s, "time,text\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n"
                           "x|y\\z,\"two\nlines\"\r\n,plain\r\n");
    free(s);
    s = table_text(TABLE_MD);
    assert_string_equal(s, "| time | text |\n| --- | --- |\n"
                           "| a,b | say \"hi\" |\n"
                           "| x\\|y\\\\z | two lines |\n|  | plain |\n");
    free(s);
    assert_int_equal(table_format_parse("md", &f), 0);
    assert_int_equal(f, TABLE_MD);
    assert_int_equal(table_format_parse("csv", &f), 0);
    assert_int_equal(f, TABLE_CSV);
    assert_int_equal(table_format_parse("xml", &f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_are_escaped),
        cmocka_unit_test(test_bytes_that_are_not_utf8_become_replacement_chars),
        cmocka_unit_test(test_growing_past_the_cap_fails_and_sticks),
        cmocka_unit_test(test_a_reset_buffer_starts_empty_and_clean),
        cmocka_unit_test(test_times_parse_as_ms_or_rfc3339),
        cmocka_unit_test(test_parse_time_takes_rfc3339_offsets_and_lower_case),
        cmocka_unit_test(test_tables_escape_what_would_break_a_row),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
