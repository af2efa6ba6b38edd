/* test_yconf.c -- common/yconf.c on its own: numbers too large for their
 * unit are errors, not wrapped values; node text tells configs apart;
 * yconf_each() walks a list and stops at the first bad item. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yconf.h"

static char dir[] = "/tmp/sextant-yconf-XXXXXX";
static char path[256];

static yaml_node_t *load(struct yconf *yc, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(yconf_load(yc, path), 0);
    return yconf_root(yc);
}

static void test_huge_bare_duration_is_an_error_not_a_wrap(void **state)
{
    struct yconf yc;
    yaml_node_t *root;
    long long v = 0;

    (void)state;
    /* 2305843009213693962 s in ms wraps to 10 s without the check. */
    root = load(&yc, "interval: 2305843009213693962\n");
    assert_int_equal(yconf_duration_ms(&yc, root, "", "interval", 1, 100,
                                       86400000, &v), -EINVAL);
    assert_non_null(strstr(yc.err, ":1: interval: expected a duration"));
    yconf_free(&yc);
    root = load(&yc, "max: 9223372036854775807KiB\n");
    assert_int_equal(yconf_size(&yc, root, "", "max", 1, 0, 1LL << 40, &v),
                     -EINVAL);
    yconf_free(&yc);
}

static void test_duration_takes_days(void **state)
{
    struct yconf yc;
    yaml_node_t *root;
    long long v = 0;

    (void)state;
    root = load(&yc, "keep: 14d\n");
    assert_int_equal(yconf_duration_ms(&yc, root, "", "keep", 1, 0,
                                       1LL << 50, &v), 0);
    assert_int_equal(v, 14LL * 86400 * 1000);
    yconf_free(&yc);
    root = load(&yc, "keep: 106751991167301d\n");    /* * 86400000 wraps */
    assert_int_equal(yconf_duration_ms(&yc, root, "", "keep", 1, 0,
                                       1LL << 50, &v), -EINVAL);
    yconf_free(&yc);
}

static void test_node_text_differs_exactly_when_the_config_does(void **state)
{
    struct yconf yc;
    yaml_node_t *root;
    char *a, *b, *c;

    (void)state;
    root = load(&yc, "t: {url: \"x\", n: [1, 2]}\n");
    assert_int_equal(yconf_node_text(&yc, root, &a), 0);
    yconf_free(&yc);
    root = load(&yc, "t:\n  url: x\n  n:\n    - 1\n    - 2\n");
    assert_int_equal(yconf_node_text(&yc, root, &b), 0);
    yconf_free(&yc);
    root = load(&yc, "t: {url: \"x\", n: [12]}\n");
    assert_int_equal(yconf_node_text(&yc, root, &c), 0);
    yconf_free(&yc);
    assert_string_equal(a, b);          /* same config, other layout */
    assert_string_not_equal(a, c);      /* [1, 2] is not [12] */
    free(a);
    free(b);
    free(c);
}

static void test_errors_stay_one_line_whatever_the_value(void **state)
{
    struct yconf yc;
    yaml_node_t *root;
    long long v = 0;

    (void)state;
    /* Found by the config fuzzer: a quoted value holding line breaks. */
    root = load(&yc, "interval: 'x\n\n  y'\n");
    assert_int_equal(yconf_duration_ms(&yc, root, "", "interval", 1, 100,
                                       86400000, &v), -EINVAL);
    assert_null(strchr(yc.err, '\n'));
    assert_non_null(strstr(yc.err, "got \"x?y\""));
    yconf_free(&yc);

    /* ... and a key holding them, in the unknown-key error. */
    {
        static const char *const allowed[] = { "x", NULL };
        yaml_node_t *m = NULL;

        root = load(&yc, "m: {a\n\n b, x: 1}\n");
        assert_int_equal(yconf_map(&yc, root, "", "m", 1, &m), 0);
        assert_int_equal(yconf_check_keys(&yc, m, "m", allowed), -EINVAL);
        assert_null(strchr(yc.err, '\n'));
        assert_non_null(strstr(yc.err, "a?b: unknown key"));
        yconf_free(&yc);
    }
}

/* What a walk saw: the paths of the items given to the callback, and the
 * item at which to fail (SIZE_MAX: none). */
struct walk_log {
    char paths[8][64];
    size_t n;
    size_t fail_at;
};

static int walk_item(struct yconf *yc, const struct yconf_item *it, void *arg)
{
    struct walk_log *w = arg;

    assert_true(w->n < 8);
    assert_int_equal(it->i, w->n);
    snprintf(w->paths[w->n++], sizeof(w->paths[0]), "%s", it->ctx);
    if (it->i == w->fail_at)
        return yconf_fail(yc, it->node, it->ctx, NULL, "item refused");
    return 0;
}

/* Walks list @key of the file @text's top level (or of its mapping "m"
 * when @in_m) and returns the walk's rc. */
static int walk(struct yconf *yc, const char *text, int in_m,
                const char *key, int required, enum yconf_items kind,
                struct walk_log *w)
{
    yaml_node_t *root = load(yc, text);
    yaml_node_t *m = root;

    assert_non_null(root);
    if (in_m)
        assert_int_equal(yconf_map(yc, root, "", "m", 1, &m), 0);
    return yconf_each(yc, m, in_m ? "m" : "", key, required, kind, walk_item,
                      w);
}

static void test_each_calls_every_item_in_order_with_its_path(void **state)
{
    struct walk_log w = { .n = 0, .fail_at = SIZE_MAX };
    struct yconf yc;

    (void)state;
    assert_int_equal(walk(&yc, "l: [{a: 1}, {b: 2}, {c: 3}]\n", 0, "l", 1,
                          YCONF_ITEMS_MAPPINGS, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.paths[0], "l[0]");
    assert_string_equal(w.paths[2], "l[2]");
    yconf_free(&yc);
    /* Nested: the path starts with where the list is. */
    w.n = 0;
    assert_int_equal(walk(&yc, "m:\n  codes: [200, 204]\n", 1, "codes", 1,
                          YCONF_ITEMS_SCALARS, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.paths[1], "m.codes[1]");
    yconf_free(&yc);
}

static void test_each_absent_list_is_1_or_an_error(void **state)
{
    struct walk_log w = { .n = 0, .fail_at = SIZE_MAX };
    struct yconf yc;

    (void)state;
    assert_int_equal(walk(&yc, "x: 1\n", 0, "l", 0, YCONF_ITEMS_ANY, &w), 1);
    assert_int_equal(w.n, 0);
    yconf_free(&yc);
    assert_int_equal(walk(&yc, "x: 1\n", 0, "l", 1, YCONF_ITEMS_ANY, &w),
                     -EINVAL);
    assert_non_null(strstr(yc.err, ":1: l: required key is missing"));
    yconf_free(&yc);
}

static void test_each_empty_list_or_not_a_list_is_an_error(void **state)
{
    struct walk_log w = { .n = 0, .fail_at = SIZE_MAX };
    struct yconf yc;

    (void)state;
    assert_int_equal(walk(&yc, "x: 1\nl: []\n", 0, "l", 0, YCONF_ITEMS_ANY,
                          &w), -EINVAL);
    assert_non_null(strstr(yc.err, ":2: l: list is empty"));
    yconf_free(&yc);
    assert_int_equal(walk(&yc, "m:\n  l: {a: 1}\n", 1, "l", 0,
                          YCONF_ITEMS_ANY, &w), -EINVAL);
    assert_non_null(strstr(yc.err, ":2: m.l: expected a list"));
    yconf_free(&yc);
    assert_int_equal(walk(&yc, "l: 3\n", 0, "l", 0, YCONF_ITEMS_ANY, &w),
                     -EINVAL);
    assert_non_null(strstr(yc.err, ":1: l: expected a list"));
    assert_int_equal(w.n, 0);           /* no item was handed out */
    yconf_free(&yc);
}

static void test_each_stops_at_the_failing_item_and_names_its_line(
    void **state)
{
    struct walk_log w = { .n = 0, .fail_at = 2 };
    struct yconf yc;

    (void)state;
    assert_int_equal(walk(&yc, "l:\n  - a\n  - b\n  - c\n  - d\n", 0, "l", 1,
                          YCONF_ITEMS_SCALARS, &w), -EINVAL);
    assert_int_equal(w.n, 3);           /* d never seen */
    assert_string_equal(w.paths[2], "l[2]");
    assert_non_null(strstr(yc.err, ":4: l[2]: item refused"));
    yconf_free(&yc);
}

static void test_each_checks_the_kind_of_every_item(void **state)
{
    struct walk_log w = { .n = 0, .fail_at = SIZE_MAX };
    struct yconf yc;

    (void)state;
    /* A scalar among mappings fails at its line, after the good ones. */
    assert_int_equal(walk(&yc, "l:\n  - {a: 1}\n  - oops\n", 0, "l", 1,
                          YCONF_ITEMS_MAPPINGS, &w), -EINVAL);
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(yc.err, ":3: l[1]: expected a mapping"));
    yconf_free(&yc);
    w.n = 0;
    assert_int_equal(walk(&yc, "l:\n  - 1\n  - [2]\n", 0, "l", 1,
                          YCONF_ITEMS_SCALARS, &w), -EINVAL);
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(yc.err, ":3: l[1]: expected a scalar value"));
    yconf_free(&yc);
    /* ANY leaves the judging to the callback. */
    w.n = 0;
    assert_int_equal(walk(&yc, "l: [1, {a: 2}, [3]]\n", 0, "l", 1,
                          YCONF_ITEMS_ANY, &w), 0);
    assert_int_equal(w.n, 3);
    yconf_free(&yc);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/c.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_bare_duration_is_an_error_not_a_wrap),
        cmocka_unit_test(test_duration_takes_days),
        cmocka_unit_test(test_node_text_differs_exactly_when_the_config_does),
        cmocka_unit_test(test_errors_stay_one_line_whatever_the_value),
        cmocka_unit_test(test_each_calls_every_item_in_order_with_its_path),
        cmocka_unit_test(test_each_absent_list_is_1_or_an_error),
        cmocka_unit_test(test_each_empty_list_or_not_a_list_is_an_error),
        cmocka_unit_test(
            test_each_stops_at_the_failing_item_and_names_its_line),
        cmocka_unit_test(test_each_checks_the_kind_of_every_item),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
