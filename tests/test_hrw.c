/* test_hrw.c -- rendezvous hashing for `probers: N` (common/hrw.c):
 * the same answer every time and on every agent, every target gets
 * exactly N probers, targets spread evenly over the nodes, and a node
 * leaving moves only the targets it held. Pure computation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hrw.h"

#define N_TARGETS 100
#define N_NODES   10
#define PROBERS   3

static char targets[N_TARGETS][32];
static char names[N_NODES][32];
static const char *nodes[N_NODES];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < N_TARGETS; i++)
        snprintf(targets[i], sizeof(targets[i]), "svc-%d.example", i);
    for (int i = 0; i < N_NODES; i++) {
        snprintf(names[i], sizeof(names[i]), "node-%d", i);
        nodes[i] = names[i];
    }
    return 0;
}

/* Whether node @k probes target @t over the first @n nodes. */
static int picked(int t, int k, size_t n, size_t probers)
{
    return hrw_rank(targets[t], nodes[k], nodes, n) < probers;
}

static void test_score_is_stable_and_depends_on_both_names(void **state)
{
    (void)state;
    assert_int_equal(hrw_score("a", "b"), hrw_score("a", "b"));
    assert_true(hrw_score("a", "b") != hrw_score("b", "a"));
    /* The NUL between them: ("ab", "c") is not ("a", "bc"). */
    assert_true(hrw_score("ab", "c") != hrw_score("a", "bc"));
    /* Pinned: agents of every version must compute the same, or a
     * target gets too many or too few probers while they differ. */
    assert_true(hrw_score("web", "node-1") == 0x61e52b1647180d7full);
}

static void test_each_target_gets_exactly_n_probers(void **state)
{
    (void)state;
    for (int t = 0; t < N_TARGETS; t++) {
        int n = 0;

        for (int k = 0; k < N_NODES; k++)
            n += picked(t, k, N_NODES, PROBERS);
        assert_int_equal(n, PROBERS);
    }
}

static void test_targets_spread_evenly_over_nodes(void **state)
{
    int load[N_NODES] = { 0 };

    (void)state;
    for (int t = 0; t < N_TARGETS; t++)
        for (int k = 0; k < N_NODES; k++)
            load[k] += picked(t, k, N_NODES, PROBERS);
    /* 300 assignments over 10 nodes: 30 each on average; a fair hash
     * keeps every node within 30 +- 15 (far outside 4 sigma of ~5). */
    for (int k = 0; k < N_NODES; k++) {
        assert_true(load[k] >= 15);
        assert_true(load[k] <= 45);
    }
}

static void test_a_node_leaving_moves_only_its_targets(void **state)
{
    int moved = 0;

    (void)state;
    /* The last node leaves: lists of the first N_NODES - 1. */
    for (int t = 0; t < N_TARGETS; t++) {
        int held = picked(t, N_NODES - 1, N_NODES, PROBERS);

        for (int k = 0; k < N_NODES - 1; k++) {
            int before = picked(t, k, N_NODES, PROBERS);
            int after = picked(t, k, N_NODES - 1, PROBERS);

            /* Nobody stops probing; a target gains a prober only if
             * the leaving node held it. */
            assert_false(before && !after);
            if (!before && after) {
                assert_true(held);
                moved++;
            }
        }
    }
    /* It held about 3/10 of 100 targets; each moves to one other node. */
    assert_true(moved >= 15 && moved <= 45);
}

static void test_rank_ignores_order_and_self_outside_the_list(void **state)
{
    const char *fwd[3] = { "a", "b", "c" }, *rev[3] = { "c", "b", "a" };
    const char *others[2] = { "a", "b" };

    (void)state;
    for (int t = 0; t < 20; t++) {
        assert_int_equal(hrw_rank(targets[t], "b", fwd, 3),
                         hrw_rank(targets[t], "b", rev, 3));
        /* Not in the list: ranked as if it were. */
        assert_int_equal(hrw_rank(targets[t], "c", others, 2),
                         hrw_rank(targets[t], "c", fwd, 3));
    }
}

static void test_list_hash_tells_lists_apart_and_is_never_0_or_1(void **state)
{
    const char *ab[2] = { "a", "b" }, *a_b[1] = { "ab" };

    (void)state;
    assert_true(hrw_list_hash(ab, 2) != hrw_list_hash(a_b, 1));
    assert_true(hrw_list_hash(ab, 2) == hrw_list_hash(ab, 2));
    assert_true(hrw_list_hash(NULL, 0) > HRW_NO_LIST);
    assert_true(hrw_list_hash(ab, 1) != hrw_list_hash(ab, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_is_stable_and_depends_on_both_names),
        cmocka_unit_test(test_each_target_gets_exactly_n_probers),
        cmocka_unit_test(test_targets_spread_evenly_over_nodes),
        cmocka_unit_test(test_a_node_leaving_moves_only_its_targets),
        cmocka_unit_test(test_rank_ignores_order_and_self_outside_the_list),
        cmocka_unit_test(test_list_hash_tells_lists_apart_and_is_never_0_or_1),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
