/* test_agent_health.c -- the health state machine gives exact sequences of
 * state changes for flapping inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "health.h"

/* Feeds @results ("+" ok, "-" failure) and writes each change as
 * "from>to@index" into @out, space-separated. */
static void run(const char *results, unsigned m, unsigned n, char *out,
                size_t len)
{
    struct health h = HEALTH_INIT;
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; results[i]; i++) {
        enum health_state from;

        if (health_observe(&h, results[i] == '+', m, n, &from))
            used += (size_t)snprintf(out + used, len - used, "%s%s>%s@%zu",
                                     used ? " " : "", health_name(from),
                                     health_name(h.state), i);
    }
}

static void test_unknown_turns_healthy_after_m_successes(void **state)
{
    char got[256];

    (void)state;
    run("+++", 2, 3, got, sizeof(got));
    assert_string_equal(got, "unknown>healthy@1");
}

static void test_unknown_turns_unhealthy_after_n_failures(void **state)
{
    char got[256];

    (void)state;
    run("--+--", 2, 3, got, sizeof(got));
    assert_string_equal(got, "");
    run("---", 2, 3, got, sizeof(got));
    assert_string_equal(got, "unknown>unhealthy@2");
}

static void test_flapping_below_the_thresholds_changes_nothing(void **state)
{
    char got[256];

    (void)state;
    /* Healthy at 1; then never 3 failures in a row. */
    run("++--+--+--+-+--+", 2, 3, got, sizeof(got));
    assert_string_equal(got, "unknown>healthy@1");
    /* Unhealthy at 2; then never 2 successes in a row. */
    run("---+-+-+--+-", 2, 3, got, sizeof(got));
    assert_string_equal(got, "unknown>unhealthy@2");
}

static void test_route53_defaults_give_the_exact_sequence(void **state)
{
    char got[256];

    (void)state;
    run("++---+-++---+++", 2, 3, got, sizeof(got));
    assert_string_equal(got, "unknown>healthy@1 healthy>unhealthy@4 "
                             "unhealthy>healthy@8 healthy>unhealthy@11 "
                             "unhealthy>healthy@13");
}

static void test_thresholds_of_one_follow_every_result(void **state)
{
    char got[256];

    (void)state;
    run("+-+", 1, 1, got, sizeof(got));
    assert_string_equal(got, "unknown>healthy@0 healthy>unhealthy@1 "
                             "unhealthy>healthy@2");
}

static void test_long_streaks_do_not_overflow_or_repeat(void **state)
{
    struct health h = HEALTH_INIT;
    enum health_state from;
    unsigned changes = 0;

    (void)state;
    for (unsigned i = 0; i < 100000; i++)
        changes += (unsigned)health_observe(&h, 1, 2, 3, &from);
    assert_int_equal(changes, 1);
    assert_int_equal(h.ok_streak, 2);
    assert_int_equal(h.state, HEALTH_HEALTHY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_turns_healthy_after_m_successes),
        cmocka_unit_test(test_unknown_turns_unhealthy_after_n_failures),
        cmocka_unit_test(test_flapping_below_the_thresholds_changes_nothing),
        cmocka_unit_test(test_route53_defaults_give_the_exact_sequence),
        cmocka_unit_test(test_thresholds_of_one_follow_every_result),
        cmocka_unit_test(test_long_streaks_do_not_overflow_or_repeat),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
