/* test_seqset.c -- the spool's in-memory seq-range set, alone: adding
 * (merge on overlap and on touching, sorted inserts, bridging), plan
 * without apply, prune, holes within a window, intersection, growth past
 * the first allocation, the edge seqs 0 and UINT64_MAX, and a seeded
 * random run checked step by step against a plain bitmap model. Pure
 * memory: no files, no timing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "seqset.h"

/* The random run: a window of MODEL_W seqs starting at a base, so that
 * the edges of the uint64 range are covered as well as small seqs. */
#define MODEL_W     256u
#define MODEL_STEPS 4000u
#define MODEL_SEED  0x5e9a7a11u

/* Sorted, disjoint, never touching, each first <= last. */
static void assert_canonical(const struct seqset *s)
{
    assert_true(s->n <= s->cap);
    for (size_t k = 0; k < s->n; k++) {
        assert_true(s->r[k].first <= s->r[k].last);
        if (k + 1 < s->n) {
            assert_true(s->r[k + 1].first > s->r[k].last);
            assert_true(s->r[k + 1].first - s->r[k].last >= 2);
        }
    }
}

/* @s holds exactly the ranges @want (n of them, as {first, last} pairs). */
static void assert_ranges(const struct seqset *s, const uint64_t *want,
                          size_t n)
{
    assert_canonical(s);
    assert_int_equal(s->n, n);
    for (size_t k = 0; k < n; k++) {
        assert_true(s->r[k].first == want[2 * k]);
        assert_true(s->r[k].last == want[2 * k + 1]);
    }
}

static void test_add_merges_overlapping_and_touching_ranges(void **state)
{
    struct seqset s = { 0 };
    const uint64_t one[] = { 10, 30 };

    (void)state;
    assert_int_equal(seqset_add(&s, 10, 20), 0);
    assert_int_equal(seqset_add(&s, 15, 25), 0);    /* overlaps */
    assert_int_equal(seqset_add(&s, 26, 30), 0);    /* touches the end */
    assert_int_equal(seqset_add(&s, 12, 13), 0);    /* inside */
    assert_ranges(&s, one, 1);
    assert_int_equal(seqset_add(&s, 5, 9), 0);      /* touches the start */
    assert_true(s.n == 1 && s.r[0].first == 5 && s.r[0].last == 30);
    seqset_free(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.r);
}

static void test_add_keeps_disjoint_ranges_sorted(void **state)
{
    struct seqset s = { 0 };
    const uint64_t want[] = { 1, 1, 3, 3, 10, 12, 40, 50 };

    (void)state;
    assert_int_equal(seqset_add(&s, 40, 50), 0);
    assert_int_equal(seqset_add(&s, 3, 3), 0);
    assert_int_equal(seqset_add(&s, 10, 12), 0);
    assert_int_equal(seqset_add(&s, 1, 1), 0);      /* 2 stays a gap */
    assert_ranges(&s, want, 4);
    assert_true(seqset_has(&s, 1) && !seqset_has(&s, 2));
    assert_true(seqset_has(&s, 50) && !seqset_has(&s, 51));
    seqset_free(&s);
}

static void test_add_bridging_several_ranges_makes_one(void **state)
{
    struct seqset s = { 0 };
    const uint64_t want[] = { 1, 2, 4, 60, 70, 70 };

    (void)state;
    assert_int_equal(seqset_add(&s, 1, 2), 0);
    for (uint64_t f = 10; f < 60; f += 10)
        assert_int_equal(seqset_add(&s, f, f + 5), 0);
    assert_int_equal(seqset_add(&s, 70, 70), 0);
    assert_int_equal(s.n, 7);
    assert_int_equal(seqset_add(&s, 4, 60), 0);     /* swallows five */
    assert_ranges(&s, want, 3);
    seqset_free(&s);
}

static void test_add_refuses_a_reversed_range(void **state)
{
    struct seqset s = { 0 };
    const uint64_t want[] = { 5, 6 };

    (void)state;
    assert_int_equal(seqset_add(&s, 5, 6), 0);
    assert_int_equal(seqset_add(&s, 9, 8), -EINVAL);
    assert_ranges(&s, want, 1);
    seqset_free(&s);
}

static void test_plan_changes_nothing_until_applied(void **state)
{
    struct seqset s = { 0 };
    struct seqset_range m;
    const uint64_t before[] = { 1, 3, 8, 9 };
    const uint64_t after[] = { 1, 9 };
    size_t i, j;

    (void)state;
    assert_int_equal(seqset_add(&s, 1, 3), 0);
    assert_int_equal(seqset_add(&s, 8, 9), 0);
    assert_int_equal(seqset_reserve(&s), 0);
    seqset_plan(&s, 4, 7, &i, &j, &m);
    assert_ranges(&s, before, 2);
    assert_int_equal(i, 0);
    assert_int_equal(j, 2);
    assert_true(m.first == 1 && m.last == 9);
    seqset_apply(&s, i, j, &m);
    assert_ranges(&s, after, 1);
    seqset_free(&s);
}

static void test_swap_with_a_copy_undoes_later_changes(void **state)
{
    struct seqset s = { 0 }, saved;
    const uint64_t before[] = { 1, 3, 8, 9 };
    const uint64_t changed[] = { 1, 3, 5, 9, 20, 20 };

    (void)state;
    assert_int_equal(seqset_add(&s, 1, 3), 0);
    assert_int_equal(seqset_add(&s, 8, 9), 0);
    assert_int_equal(seqset_copy(&saved, &s), 0);
    assert_int_equal(seqset_add(&s, 5, 7), 0);
    assert_int_equal(seqset_add(&s, 20, 20), 0);
    assert_ranges(&s, changed, 3);
    assert_ranges(&saved, before, 2);
    seqset_swap(&s, &saved);
    assert_ranges(&s, before, 2);
    assert_ranges(&saved, changed, 3);
    /* The restored set goes on working: it grows past its copy's size. */
    assert_int_equal(seqset_add(&s, 30, 31), 0);
    assert_int_equal(s.n, 3);
    assert_true(seqset_has(&s, 31) && !seqset_has(&s, 5));
    seqset_free(&saved);
    seqset_free(&s);
}

static void test_prune_forgets_only_ranges_wholly_below(void **state)
{
    struct seqset s = { 0 };
    const uint64_t kept[] = { 20, 30, 40, 41 };
    const uint64_t last[] = { 40, 41 };

    (void)state;
    assert_int_equal(seqset_add(&s, 1, 5), 0);
    assert_int_equal(seqset_add(&s, 7, 9), 0);
    assert_int_equal(seqset_add(&s, 20, 30), 0);
    assert_int_equal(seqset_add(&s, 40, 41), 0);
    seqset_prune(&s, 0);
    assert_int_equal(s.n, 4);
    seqset_prune(&s, 25);           /* [20, 30] reaches 25: kept whole */
    assert_ranges(&s, kept, 2);
    seqset_prune(&s, 31);
    assert_ranges(&s, last, 1);
    seqset_prune(&s, UINT64_MAX);
    assert_int_equal(s.n, 0);
    seqset_free(&s);
}

static void test_holes_are_the_missing_seqs_within_a_window(void **state)
{
    struct seqset s = { 0 };
    struct seqset_range *h = NULL;
    size_t n = 99;

    (void)state;
    assert_int_equal(seqset_add(&s, 5, 9), 0);
    assert_int_equal(seqset_add(&s, 15, 19), 0);
    assert_int_equal(seqset_holes(&s, 1, 30, &h, &n), 0);
    assert_int_equal(n, 3);
    assert_true(h[0].first == 1 && h[0].last == 4);
    assert_true(h[1].first == 10 && h[1].last == 14);
    assert_true(h[2].first == 20 && h[2].last == 30);
    free(h);
    /* A window that starts and ends inside ranges. */
    assert_int_equal(seqset_holes(&s, 7, 16, &h, &n), 0);
    assert_int_equal(n, 1);
    assert_true(h[0].first == 10 && h[0].last == 14);
    free(h);
    /* Wholly inside one range: no holes; wholly in a gap: all of it. */
    assert_int_equal(seqset_holes(&s, 6, 8, &h, &n), 0);
    assert_int_equal(n, 0);
    free(h);
    assert_int_equal(seqset_holes(&s, 11, 12, &h, &n), 0);
    assert_true(n == 1 && h[0].first == 11 && h[0].last == 12);
    free(h);
    /* An empty window, and an empty set. */
    assert_int_equal(seqset_holes(&s, 9, 8, &h, &n), 0);
    assert_int_equal(n, 0);
    free(h);
    seqset_free(&s);
    assert_int_equal(seqset_holes(&s, 3, 4, &h, &n), 0);
    assert_true(n == 1 && h[0].first == 3 && h[0].last == 4);
    free(h);
}

static void test_intersect_keeps_only_common_seqs(void **state)
{
    struct seqset s = { 0 };
    struct seqset_range *in = malloc(3 * sizeof(*in));
    size_t n = 3;

    (void)state;
    assert_non_null(in);
    in[0] = (struct seqset_range){ 1, 12 };
    in[1] = (struct seqset_range){ 14, 16 };
    in[2] = (struct seqset_range){ 30, 40 };
    assert_int_equal(seqset_add(&s, 3, 4), 0);
    assert_int_equal(seqset_add(&s, 10, 15), 0);
    assert_int_equal(seqset_add(&s, 50, 60), 0);
    assert_int_equal(seqset_intersect(&s, &in, &n), 0);
    assert_int_equal(n, 3);
    assert_true(in[0].first == 3 && in[0].last == 4);
    assert_true(in[1].first == 10 && in[1].last == 12);
    assert_true(in[2].first == 14 && in[2].last == 15);
    /* With an empty set nothing is common. */
    seqset_free(&s);
    assert_int_equal(seqset_intersect(&s, &in, &n), 0);
    assert_int_equal(n, 0);
    free(in);
}

static void test_capacity_grows_past_the_first_allocation(void **state)
{
    struct seqset s = { 0 }, c;
    const size_t many = 5000;

    (void)state;
    /* Every other seq, added from the top down: each lands at index 0,
     * so every insert moves the whole array. */
    for (size_t k = many; k > 0; k--)
        assert_int_equal(seqset_add(&s, 2 * k, 2 * k), 0);
    assert_int_equal(s.n, many);
    assert_true(s.cap >= many);
    assert_canonical(&s);
    for (size_t k = 1; k <= many; k++)
        assert_true(s.r[k - 1].first == 2 * k && s.r[k - 1].last == 2 * k);
    /* A copy is its own memory. */
    assert_int_equal(seqset_copy(&c, &s), 0);
    assert_int_equal(seqset_add(&s, 1, 2 * many + 1), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(c.n, many);
    assert_true(c.r[many - 1].first == 2 * many);
    seqset_free(&c);
    seqset_free(&s);
}

static void test_edge_seqs_zero_and_uint64_max(void **state)
{
    struct seqset s = { 0 };
    struct seqset_range *h = NULL;
    const uint64_t max = UINT64_MAX;
    const uint64_t two[] = { 0, 0, max, max };
    const uint64_t all[] = { 0, max };
    size_t n;

    (void)state;
    assert_int_equal(seqset_add(&s, max, max), 0);
    assert_int_equal(seqset_add(&s, 0, 0), 0);
    assert_ranges(&s, two, 2);
    assert_true(seqset_has(&s, 0) && seqset_has(&s, max));
    assert_false(seqset_has(&s, 1) || seqset_has(&s, max - 1));
    assert_int_equal(seqset_holes(&s, 0, max, &h, &n), 0);
    assert_true(n == 1 && h[0].first == 1 && h[0].last == max - 1);
    free(h);
    /* Touching at both ends at once. */
    assert_int_equal(seqset_add(&s, 1, max - 1), 0);
    assert_ranges(&s, all, 1);
    assert_int_equal(seqset_holes(&s, 0, max, &h, &n), 0);
    assert_int_equal(n, 0);
    free(h);
    assert_int_equal(seqset_holes(&s, max, max, &h, &n), 0);
    assert_int_equal(n, 0);
    free(h);
    seqset_prune(&s, max);          /* reaches max: kept */
    assert_ranges(&s, all, 1);
    seqset_free(&s);
    /* A range ending at max merges with one touching it from below. */
    assert_int_equal(seqset_add(&s, max - 3, max), 0);
    assert_int_equal(seqset_add(&s, max - 9, max - 4), 0);
    assert_true(s.n == 1 && s.r[0].first == max - 9 && s.r[0].last == max);
    assert_int_equal(seqset_holes(&s, max - 20, max, &h, &n), 0);
    assert_true(n == 1 && h[0].first == max - 20 && h[0].last == max - 10);
    free(h);
    seqset_free(&s);
}

/* -- the random run against a bitmap -- */

static uint32_t rng_state;

static uint32_t rng(void)                   /* xorshift32: deterministic */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Two offsets in [0, MODEL_W), ordered. */
static void rng_span(unsigned *a, unsigned *b)
{
    unsigned x = rng() % MODEL_W, y = x + rng() % 16;

    if (rng() % 8 == 0)             /* now and then a wide one */
        y = x + rng() % MODEL_W;
    *a = x;
    *b = y < MODEL_W ? y : MODEL_W - 1;
}

/* The set equals the bitmap: same members, nothing outside the window. */
static void model_check(const struct seqset *s, uint64_t base,
                        const unsigned char *bit)
{
    assert_canonical(s);
    for (size_t k = 0; k < s->n; k++) {
        assert_true(s->r[k].first >= base);
        assert_true(s->r[k].last - base < MODEL_W);
    }
    for (unsigned i = 0; i < MODEL_W; i++)
        assert_int_equal(seqset_has(s, base + i), bit[i]);
}

/* What prune does to the model: runs wholly below @min go. */
static void model_prune(unsigned char *bit, unsigned min)
{
    unsigned i = 0;

    while (i < MODEL_W) {
        unsigned j = i;

        if (!bit[i]) {
            i++;
            continue;
        }
        while (j + 1 < MODEL_W && bit[j + 1])
            j++;
        if (j < min)
            memset(bit + i, 0, j - i + 1);
        i = j + 1;
    }
}

/* The runs of @want (0 or 1) within [a, b] equal @got (n of them). */
static void model_runs(const unsigned char *bit, int want, unsigned a,
                       unsigned b, uint64_t base,
                       const struct seqset_range *got, size_t n)
{
    size_t k = 0;

    for (unsigned i = a; i <= b; i++) {
        unsigned j = i;

        if (bit[i] != want)
            continue;
        while (j + 1 <= b && bit[j + 1] == want)
            j++;
        assert_true(k < n);
        assert_true(got[k].first == base + i && got[k].last == base + j);
        k++;
        i = j;
    }
    assert_int_equal(k, n);
}

static void model_run(uint64_t base)
{
    unsigned char bit[MODEL_W];
    struct seqset s = { 0 };
    unsigned a, b;

    memset(bit, 0, sizeof(bit));
    rng_state = MODEL_SEED;
    for (unsigned step = 0; step < MODEL_STEPS; step++) {
        unsigned op = rng() % 10;
        struct seqset_range *h = NULL;
        size_t n;

        rng_span(&a, &b);
        if (op < 6) {
            assert_int_equal(seqset_add(&s, base + a, base + b), 0);
            memset(bit + a, 1, b - a + 1);
        } else if (op == 6) {
            seqset_prune(&s, base + a);
            model_prune(bit, a);
        } else if (op == 7) {
            assert_int_equal(seqset_holes(&s, base + a, base + b, &h, &n), 0);
            model_runs(bit, 0, a, b, base, h, n);
        } else {
            /* One input range, clipped to the set's runs within it. */
            h = malloc(sizeof(*h));
            assert_non_null(h);
            h[0] = (struct seqset_range){ base + a, base + b };
            n = 1;
            assert_int_equal(seqset_intersect(&s, &h, &n), 0);
            model_runs(bit, 1, a, b, base, h, n);
        }
        free(h);
        model_check(&s, base, bit);
        if (rng() % 500 == 0) {     /* start over now and then */
            seqset_free(&s);
            memset(bit, 0, sizeof(bit));
        }
    }
    seqset_free(&s);
}

static void test_random_run_matches_a_bitmap_at_zero(void **state)
{
    (void)state;
    model_run(0);
}

static void test_random_run_matches_a_bitmap_at_uint64_max(void **state)
{
    (void)state;
    model_run(UINT64_MAX - (MODEL_W - 1));
}

static void test_random_run_matches_a_bitmap_at_int64_max(void **state)
{
    (void)state;
    /* The spool's own top: its seqs are SQLite int64. */
    model_run((uint64_t)INT64_MAX - MODEL_W / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_merges_overlapping_and_touching_ranges),
        cmocka_unit_test(test_add_keeps_disjoint_ranges_sorted),
        cmocka_unit_test(test_add_bridging_several_ranges_makes_one),
        cmocka_unit_test(test_add_refuses_a_reversed_range),
        cmocka_unit_test(test_plan_changes_nothing_until_applied),
        cmocka_unit_test(test_swap_with_a_copy_undoes_later_changes),
        cmocka_unit_test(test_prune_forgets_only_ranges_wholly_below),
        cmocka_unit_test(test_holes_are_the_missing_seqs_within_a_window),
        cmocka_unit_test(test_intersect_keeps_only_common_seqs),
        cmocka_unit_test(test_capacity_grows_past_the_first_allocation),
        cmocka_unit_test(test_edge_seqs_zero_and_uint64_max),
        cmocka_unit_test(test_random_run_matches_a_bitmap_at_zero),
        cmocka_unit_test(test_random_run_matches_a_bitmap_at_uint64_max),
        cmocka_unit_test(test_random_run_matches_a_bitmap_at_int64_max),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
