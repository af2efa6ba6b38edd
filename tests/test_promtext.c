/* test_promtext.c -- the Prometheus text format parser on its own: what a
 * good exposition yields sample by sample, and that every kind of broken
 * line is counted and skipped without losing the lines around it. Each
 * input is copied to a heap buffer of exactly its length (no NUL after
 * it), so ASan catches any read past the end. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promtext.h"

#define GOT_MAX 64

/* A copy of one sample, kept after the callback. */
struct got {
    char name[PROMTEXT_MAX_STR + 1];
    size_t n_labels;
    char lname[PROMTEXT_MAX_LABELS][64];
    char lvalue[PROMTEXT_MAX_LABELS][PROMTEXT_MAX_STR + 1];
    double value;
    int has_ts;
    int64_t ts;
    size_t line;
};

struct coll {
    struct got g[GOT_MAX];
    size_t n;
    int stop_at;                /* callback fails on this sample (1-based) */
};

static int collect(const struct promtext_sample *s, void *arg)
{
    struct coll *c = arg;
    struct got *g;

    if (c->stop_at && (int)c->n + 1 == c->stop_at)
        return -ECANCELED;
    assert_true(c->n < GOT_MAX);
    g = &c->g[c->n++];
    assert_true(strlen(s->name) <= PROMTEXT_MAX_STR);
    snprintf(g->name, sizeof(g->name), "%s", s->name);
    g->n_labels = s->n_labels;
    assert_true(s->n_labels <= PROMTEXT_MAX_LABELS);
    for (size_t i = 0; i < s->n_labels; i++) {
        snprintf(g->lname[i], sizeof(g->lname[i]), "%s", s->labels[i].name);
        assert_true(strlen(s->labels[i].value) <= PROMTEXT_MAX_STR);
        snprintf(g->lvalue[i], sizeof(g->lvalue[i]), "%s",
                 s->labels[i].value);
    }
    g->value = s->value;
    g->has_ts = s->has_timestamp;
    g->ts = s->timestamp_ms;
    g->line = s->line;
    return 0;
}

/* Parses @len bytes of @text from an exact-size heap copy. */
static int parse_n(const char *text, size_t len, struct coll *c,
                   struct promtext_stats *st)
{
    char *buf = malloc(len ? len : 1);
    int rc;

    assert_non_null(buf);
    memcpy(buf, text, len);
    rc = promtext_parse(buf, len, collect, c, st);
    free(buf);
    return rc;
}

static struct coll *parse_ok(const char *text, struct promtext_stats *st)
{
    struct coll *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    assert_int_equal(parse_n(text, strlen(text), c, st), 0);
    assert_int_equal(st->samples, c->n);
    return c;
}

static void test_comments_help_and_type_are_skipped(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("# HELP replication_lag_seconds Lag behind the primary.\n"
                 "# TYPE replication_lag_seconds gauge\n"
                 "# any other comment, even { \" broken\n"
                 "#\n"
                 "  # indented comment\n"
                 "#TYPE up counter\n"
                 "# HELP\n"
                 "# TYPE up UNTYPED\n"
                 "# HELP up text with \\\\ and \\n escapes\n"
                 "replication_lag_seconds 2.5\n", &st);
    assert_int_equal(st.lines, 10);
    assert_int_equal(st.malformed, 0);
    assert_null(st.first_bad_why);
    assert_int_equal(st.first_bad_line, 0);
    assert_int_equal(c->n, 1);
    assert_string_equal(c->g[0].name, "replication_lag_seconds");
    assert_int_equal(c->g[0].n_labels, 0);
    assert_true(c->g[0].value == 2.5);
    assert_false(c->g[0].has_ts);
    assert_int_equal(c->g[0].line, 10);
    free(c);
}

static void test_broken_help_and_type_lines_are_counted(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("# TYPE up flute\n"
                 "# TYPE 9up gauge\n"
                 "# TYPE up\n"
                 "# TYPE up gauge extra\n"
                 "# HELP up-time text\n"
                 "# HELP up bad \\t escape\n"
                 "up 1\n", &st);
    assert_int_equal(st.malformed, 6);
    assert_int_equal(st.first_bad_line, 1);
    assert_string_equal(st.first_bad_why, "unknown metric type");
    assert_int_equal(c->n, 1);
    assert_string_equal(c->g[0].name, "up");
    free(c);
}

static void test_label_values_are_unescaped(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("m{a=\"a\\\"b\",b=\"x\\\\y\",c=\"line\\nbreak\","
                 "d=\"\",e=\"}{,=# \\\\n\"} 1\n", &st);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->g[0].n_labels, 5);
    assert_string_equal(c->g[0].lname[0], "a");
    assert_string_equal(c->g[0].lvalue[0], "a\"b");
    assert_string_equal(c->g[0].lname[1], "b");
    assert_string_equal(c->g[0].lvalue[1], "x\\y");
    assert_string_equal(c->g[0].lname[2], "c");
    assert_string_equal(c->g[0].lvalue[2], "line\nbreak");
    assert_string_equal(c->g[0].lvalue[3], "");
    assert_string_equal(c->g[0].lname[4], "e");
    assert_string_equal(c->g[0].lvalue[4], "}{,=# \\n");
    free(c);
}

static void test_nan_and_infinities_are_values(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("a NaN\nb +Inf\nc -Inf\nd 1.5e3\ne -0.25\nf 0\n"
                 "g 12345678901234567890\nh 1e-400\n", &st);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(c->n, 8);
    assert_true(isnan(c->g[0].value));
    assert_true(isinf(c->g[1].value) && c->g[1].value > 0);
    assert_true(isinf(c->g[2].value) && c->g[2].value < 0);
    assert_true(c->g[3].value == 1500.0);
    assert_true(c->g[4].value == -0.25);
    assert_true(c->g[5].value == 0.0);
    assert_true(c->g[6].value == 12345678901234567890.0);
    assert_true(c->g[7].value >= 0.0 && c->g[7].value < 1e-300);
    free(c);
}

static void test_timestamps_are_read_when_present(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("a 1 1700000000123\n"
                 "b{x=\"1\"} 2 -5\n"
                 "c 3 9223372036854775807\n"
                 "d 4 -9223372036854775808\n"
                 "e 5\t+7 \t\n"
                 "f 6\n"
                 "g 7 9223372036854775808\n"
                 "h 8 12x\n"
                 "i 9 1 extra\n"
                 "j 10 1.5\n"
                 "k 11 -\n", &st);
    assert_int_equal(st.malformed, 5);
    assert_int_equal(st.first_bad_line, 7);
    assert_int_equal(c->n, 6);
    assert_true(c->g[0].has_ts);
    assert_int_equal(c->g[0].ts, 1700000000123LL);
    assert_int_equal(c->g[1].ts, -5);
    assert_int_equal(c->g[2].ts, INT64_MAX);
    assert_int_equal(c->g[3].ts, INT64_MIN);
    assert_string_equal(c->g[4].name, "e");
    assert_int_equal(c->g[4].ts, 7);
    assert_false(c->g[5].has_ts);
    assert_int_equal(c->g[5].ts, 0);
    free(c);
}

static void test_empty_label_set_and_trailing_comma_are_fine(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("a{} 1\n"
                 "b{x=\"1\",} 2\n"
                 "c{ x = \"1\" ,\ty=\"2\" , } 3\n"
                 "d{x=\"1\"}4\n"
                 "job:rate5m{} 5\n", &st);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(c->n, 5);
    assert_int_equal(c->g[0].n_labels, 0);
    assert_int_equal(c->g[1].n_labels, 1);
    assert_string_equal(c->g[1].lvalue[0], "1");
    assert_int_equal(c->g[2].n_labels, 2);
    assert_string_equal(c->g[2].lname[1], "y");
    assert_string_equal(c->g[2].lvalue[1], "2");
    assert_true(c->g[3].value == 4.0);
    assert_string_equal(c->g[4].name, "job:rate5m");
    free(c);
}

/* Each bad line sits between good ones: it is counted, and the next line
 * is read as if nothing happened. */
static void test_malformed_lines_are_counted_and_skipped(void **state)
{
    static const char *const bad[] = {
        "a\n",                          /* missing value */
        "a{x=\"1\"}\n",                 /* missing value after labels */
        "a abc\n",                      /* bad float */
        "a 1.2.3\n",
        "a 1e999\n",                    /* overflows a double */
        "a nan(1)\n",
        "a{x=\"1} 2\n",                 /* unterminated label value */
        "a{x=\"1\\\n",                  /* backslash at the end */
        "a{x=\"1\" 2\n",                /* unterminated label set */
        "1a 2\n",                       /* bad names */
        "a-b 2\n",
        "{x=\"1\"} 2\n",
        "a{x:y=\"1\"} 2\n",
        "a{1x=\"1\"} 2\n",
        "a{x \"1\"} 2\n",               /* no '=' */
        "a{x=1} 2\n",                   /* value not quoted */
        "a{x=\"\\t\"} 2\n",             /* escape not in the format */
        "a{x=\"1\",x=\"2\"} 2\n",       /* label twice */
        "a{x=\"1\",,} 2\n",
        "a{,} 2\n",
        "a{x=\"1\" y=\"2\"} 2\n",       /* no comma */
    };
    size_t n = sizeof(bad) / sizeof(bad[0]);
    char text[4096] = "";
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    strcat(text, "good 0\n");
    for (size_t i = 0; i < n; i++) {
        char line[64];

        strcat(text, bad[i]);
        snprintf(line, sizeof(line), "good %zu\n", i + 1);
        strcat(text, line);
    }
    c = parse_ok(text, &st);
    assert_int_equal(st.lines, 2 * n + 1);
    assert_int_equal(st.malformed, n);
    assert_int_equal(st.first_bad_line, 2);
    assert_string_equal(st.first_bad_why, "missing value");
    assert_int_equal(c->n, n + 1);
    for (size_t i = 0; i <= n; i++) {
        assert_string_equal(c->g[i].name, "good");
        assert_true(c->g[i].value == (double)i);
        assert_int_equal(c->g[i].line, 2 * i + 1);
    }
    free(c);
}

static void test_last_line_needs_no_newline(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("a 1\nb{x=\"y\"} 2", &st);
    assert_int_equal(st.lines, 2);
    assert_int_equal(c->n, 2);
    assert_string_equal(c->g[1].lvalue[0], "y");
    assert_true(c->g[1].value == 2.0);
    free(c);

    /* Cut inside a label value: that line is malformed, not overread. */
    c = parse_ok("a 1\nb{x=\"y", &st);
    assert_int_equal(st.malformed, 1);
    assert_int_equal(c->n, 1);
    free(c);
}

static void test_crlf_line_ends_are_tolerated(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("# TYPE a gauge\r\na 1\r\nb{x=\"y\"} 2 17\r\n\r\n", &st);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.lines, 4);
    assert_int_equal(c->n, 2);
    assert_true(c->g[0].value == 1.0);
    assert_string_equal(c->g[1].lvalue[0], "y");
    assert_int_equal(c->g[1].ts, 17);
    free(c);

    /* A '\r' anywhere else is not a line end. */
    c = parse_ok("a 1\rb 2\n", &st);
    assert_int_equal(st.malformed, 1);
    assert_int_equal(c->n, 0);
    free(c);
}

static void test_blank_lines_and_empty_input(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("\n\n   \n\t\n  a   1  \n\n", &st);
    assert_int_equal(st.lines, 6);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(c->n, 1);
    assert_true(c->g[0].value == 1.0);
    free(c);

    c = parse_ok("", &st);
    assert_int_equal(st.lines, 0);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.malformed, 0);
    free(c);
}

/* A name or a value at the cap is fine; one byte more makes the line
 * malformed, and the next line still parses. */
static void test_long_lines_are_bounded_by_the_caps(void **state)
{
    size_t big = 3u << 20;
    char *text = malloc(2 * big);
    struct promtext_stats st;
    struct coll *c = calloc(1, sizeof(*c));
    size_t len = 0;

    (void)state;
    assert_non_null(text);
    assert_non_null(c);
    /* A 3 MiB comment, then a 1.5 MiB name, then good lines. */
    text[len++] = '#';
    memset(text + len, 'x', big);
    len += big;
    text[len++] = '\n';
    memset(text + len, 'n', big / 2);
    len += big / 2;
    len += (size_t)sprintf(text + len, " 1\n");
    /* The value at the cap, then one byte over. */
    len += (size_t)sprintf(text + len, "v{x=\"");
    memset(text + len, 'v', PROMTEXT_MAX_STR);
    len += PROMTEXT_MAX_STR;
    len += (size_t)sprintf(text + len, "\"} 2\nw{x=\"");
    memset(text + len, 'w', PROMTEXT_MAX_STR + 1);
    len += PROMTEXT_MAX_STR + 1;
    len += (size_t)sprintf(text + len, "\"} 3\n");
    /* A name at the cap. */
    memset(text + len, 'm', PROMTEXT_MAX_STR);
    len += PROMTEXT_MAX_STR;
    len += (size_t)sprintf(text + len, " 4\nlast 5");
    assert_int_equal(parse_n(text, len, c, &st), 0);
    free(text);
    assert_int_equal(st.lines, 6);
    assert_int_equal(st.malformed, 2);
    assert_int_equal(st.first_bad_line, 2);
    assert_string_equal(st.first_bad_why, "name over the length cap");
    assert_int_equal(c->n, 3);
    assert_string_equal(c->g[0].name, "v");
    assert_int_equal(strlen(c->g[0].lvalue[0]), PROMTEXT_MAX_STR);
    assert_int_equal(strlen(c->g[1].name), PROMTEXT_MAX_STR);
    assert_string_equal(c->g[2].name, "last");
    free(c);
}

static void test_label_count_is_capped(void **state)
{
    char text[2048];
    size_t len = 0;
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    for (unsigned round = 0; round < 2; round++) {
        unsigned n = PROMTEXT_MAX_LABELS + round;

        len += (size_t)sprintf(text + len, "m%u{", round);
        for (unsigned i = 0; i < n; i++)
            len += (size_t)sprintf(text + len, "l%u=\"%u\",", i, i);
        len += (size_t)sprintf(text + len, "} 1\n");
    }
    text[len] = '\0';
    c = parse_ok(text, &st);
    assert_int_equal(st.malformed, 1);
    assert_string_equal(st.first_bad_why, "too many labels");
    assert_int_equal(c->n, 1);
    assert_string_equal(c->g[0].name, "m0");
    assert_int_equal(c->g[0].n_labels, PROMTEXT_MAX_LABELS);
    assert_string_equal(c->g[0].lvalue[PROMTEXT_MAX_LABELS - 1], "31");
    free(c);
}

/* The collector refuses a batch with a string that is not UTF-8, so such
 * a line must never become a sample. */
static void test_label_values_must_be_utf8(void **state)
{
    struct promtext_stats st;
    struct coll *c;

    (void)state;
    c = parse_ok("a{r=\"caf\xc3\xa9 \xe2\x82\xac\"} 1\n"
                 "b{r=\"\xff\"} 2\n"
                 "c{r=\"\xc3\"} 3\n"
                 "d{r=\"\xed\xa0\x80\"} 4\n"    /* a surrogate */
                 "e{r=\"\xc0\xaf\"} 5\n", &st); /* overlong '/' */
    assert_int_equal(st.malformed, 4);
    assert_string_equal(st.first_bad_why, "label value is not UTF-8");
    assert_int_equal(c->n, 1);
    assert_string_equal(c->g[0].lvalue[0], "caf\xc3\xa9 \xe2\x82\xac");
    free(c);
}

static void test_nul_bytes_make_a_line_malformed(void **state)
{
    static const char text[] = "a{x=\"1\0002\"} 1\nb 1\0002\nc 3\n";
    struct promtext_stats st;
    struct coll *c = calloc(1, sizeof(*c));

    (void)state;
    assert_non_null(c);
    assert_int_equal(parse_n(text, sizeof(text) - 1, c, &st), 0);
    assert_int_equal(st.lines, 3);
    assert_int_equal(st.malformed, 2);
    assert_int_equal(c->n, 1);
    assert_string_equal(c->g[0].name, "c");
    free(c);
}

static void test_callback_error_stops_the_parse(void **state)
{
    struct promtext_stats st = { .lines = 4242 };
    struct coll *c = calloc(1, sizeof(*c));
    const char *text = "a 1\nb 2\nc 3\n";

    (void)state;
    assert_non_null(c);
    c->stop_at = 2;
    assert_int_equal(parse_n(text, strlen(text), c, &st), -ECANCELED);
    assert_int_equal(c->n, 1);
    assert_int_equal(st.lines, 4242);       /* untouched on failure */
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comments_help_and_type_are_skipped),
        cmocka_unit_test(test_broken_help_and_type_lines_are_counted),
        cmocka_unit_test(test_label_values_are_unescaped),
        cmocka_unit_test(test_nan_and_infinities_are_values),
        cmocka_unit_test(test_timestamps_are_read_when_present),
        cmocka_unit_test(test_empty_label_set_and_trailing_comma_are_fine),
        cmocka_unit_test(test_malformed_lines_are_counted_and_skipped),
        cmocka_unit_test(test_last_line_needs_no_newline),
        cmocka_unit_test(test_crlf_line_ends_are_tolerated),
        cmocka_unit_test(test_blank_lines_and_empty_input),
        cmocka_unit_test(test_long_lines_are_bounded_by_the_caps),
        cmocka_unit_test(test_label_count_is_capped),
        cmocka_unit_test(test_label_values_must_be_utf8),
        cmocka_unit_test(test_nul_bytes_make_a_line_malformed),
        cmocka_unit_test(test_callback_error_stops_the_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
