/* test_jsonw.c -- the JSON writer escapes what JSON requires, replaces
 * bytes that are not UTF-8, stops at its cap, and the API's time parser
 * takes both forms it documents. */
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
    assert_int_equal(api_parse_time("2025-11-25T17:00:00+01:00", &t),
                     -EINVAL);
    assert_int_equal(api_parse_time("2025-11-25T17:00:00.Z", &t), -EINVAL);
    assert_int_equal(api_parse_time("99999999999999999999", &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_are_escaped),
        cmocka_unit_test(test_bytes_that_are_not_utf8_become_replacement_chars),
        cmocka_unit_test(test_growing_past_the_cap_fails_and_sticks),
        cmocka_unit_test(test_a_reset_buffer_starts_empty_and_clean),
        cmocka_unit_test(test_times_parse_as_ms_or_rfc3339),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
