/* test_yconf.c -- common/yconf.c on its own: numbers too large for their
 * unit are errors, not wrapped values; node text tells configs apart. */
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
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
