/* test_hist.c -- collector/hist.c against brute force: quantiles of 100k
 * generated values within 2% of the exact nearest-rank ones, merges (in
 * memory and through the BLOB encoding) equal to the histogram of the
 * whole, and every kind of malformed blob refused without a change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define N_VALUES 100000
#define N_PARTS  4

/* Bucket boundaries are computed with log() and pow(): a value on a
 * boundary may be off by an ulp or two. Anything wrong in the bucket
 * scheme is off by far more. */
#define TOLERANCE (HIST_REL_ERROR * (1 + 1e-9))

/* ---- data ---- */

static uint64_t rng_state;

/* splitmix64: fixed seeds, the same data on every machine. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * 0x1p-53;
}

/* Standard normal (Box-Muller). */
static double rng_normal(void)
{
    double u = 1.0 - rng_unit();        /* (0, 1]: log(u) is finite */

    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * rng_unit());
}

enum data_kind { DATA_UNIFORM, DATA_LOGNORMAL, DATA_BIMODAL, DATA_EXTREMES };

static double gen_value(enum data_kind kind)
{
    double r;

    switch (kind) {
    case DATA_UNIFORM:
        return rng_unit() * 1e6;
    case DATA_LOGNORMAL:                /* e^-3 .. e^17: 0.05 us .. 6 h */
        return exp(7.0 + 2.5 * rng_normal());
    case DATA_BIMODAL:                  /* same region, or cross-region */
        if (rng_unit() < 0.9)
            return fabs(300.0 + 30.0 * rng_normal());
        return fabs(80000.0 + 8000.0 * rng_normal());
    case DATA_EXTREMES:
        r = rng_unit();
        if (r < 0.25)
            return 0.0;
        if (r < 0.30)
            return rng_unit();          /* below 1: the zero bucket */
        if (r < 0.31)
            return 1.0;
        if (r < 0.70)
            return exp(5.0 + 3.0 * rng_normal());
        if (r < 0.99)                   /* 1e11 .. 1e14: many clamped */
            return pow(10.0, 11.0 + 3.0 * rng_unit());
        return r < 0.995 ? HIST_MAX_VALUE : INFINITY;
    }
    return 0.0;
}

/* @n values of @kind from @seed; caller frees. */
static double *gen_data(enum data_kind kind, uint64_t seed, size_t n)
{
    double *v = malloc(n * sizeof(*v));
    size_t i;

    assert_non_null(v);
    rng_state = seed;
    for (i = 0; i < n; i++)
        v[i] = gen_value(kind);
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The exact nearest-rank quantile of @sorted, as hist.h defines it. */
static double exact_quantile(const double *sorted, size_t n, double q)
{
    double r = ceil(q * (double)n);
    size_t rank = r < 1 ? 1 : r > (double)n ? n : (size_t)r;

    return sorted[rank - 1];
}

static void build(struct hist *h, const double *v, size_t n)
{
    size_t i;

    hist_init(h);
    for (i = 0; i < n; i++)
        assert_int_equal(hist_add(h, v[i], 1), 0);
}

static void assert_hist_equal(const struct hist *a, const struct hist *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->zero, b->zero);
    assert_int_equal(a->total, b->total);
    if (a->n > 0) {
        assert_memory_equal(a->idx, b->idx, a->n * sizeof(*a->idx));
        assert_memory_equal(a->cnt, b->cnt, a->n * sizeof(*a->cnt));
    }
}

/* The invariants hist.h promises. */
static void assert_hist_sane(const struct hist *h)
{
    uint64_t sum = h->zero;
    size_t k;

    for (k = 0; k < h->n; k++) {
        assert_in_range(h->idx[k], 0, HIST_MAX_INDEX);
        if (k > 0)
            assert_true(h->idx[k - 1] < h->idx[k]);
        assert_true(h->cnt[k] > 0);
        sum += h->cnt[k];
    }
    assert_int_equal(sum, h->total);
}

/* ---- quantiles ---- */

static const double qs[] = { 0.5, 0.9, 0.95, 0.99, 0.999, 0, 1 };

static void check_q(const struct hist *h, const double *sorted, size_t n,
                    double q, const char *name)
{
    double want = exact_quantile(sorted, n, q);
    double got = hist_quantile(h, q);

    if (want < 1) {                     /* the zero bucket: exactly 0 */
        if (got != 0.0)
            fail_msg("%s q=%g: exact %.17g, got %.17g, not 0", name, q,
                     want, got);
        return;
    }
    if (!(fabs(got - want) <= TOLERANCE * want))
        fail_msg("%s q=%g: exact %.17g, got %.17g: relative error %g",
                 name, q, want, got, fabs(got - want) / want);
}

static void check_data_set(enum data_kind kind, uint64_t seed,
                           const char *name)
{
    double *v = gen_data(kind, seed, N_VALUES);
    struct hist h;
    size_t i;

    build(&h, v, N_VALUES);
    assert_hist_sane(&h);
    assert_int_equal(hist_count(&h), N_VALUES);
    for (i = 0; i < N_VALUES; i++)      /* what the histogram stores */
        v[i] = fmin(v[i], HIST_MAX_VALUE);
    qsort(v, N_VALUES, sizeof(*v), cmp_double);
    for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        check_q(&h, v, N_VALUES, qs[i], name);
    for (i = 0; i <= 1000; i++)         /* and every 0.1% on the way */
        check_q(&h, v, N_VALUES, (double)i / 1000, name);
    hist_free(&h);
    free(v);
}

static void test_uniform_quantiles_are_within_2_percent(void **state)
{
    (void)state;
    check_data_set(DATA_UNIFORM, 1, "uniform");
}

static void test_lognormal_quantiles_are_within_2_percent(void **state)
{
    (void)state;
    check_data_set(DATA_LOGNORMAL, 2, "log-normal");
    check_data_set(DATA_LOGNORMAL, 3, "log-normal");
}

static void test_bimodal_quantiles_are_within_2_percent(void **state)
{
    (void)state;
    check_data_set(DATA_BIMODAL, 4, "bimodal");
}

static void test_zeros_and_huge_values_are_0_or_within_2_percent(
    void **state)
{
    (void)state;
    check_data_set(DATA_EXTREMES, 5, "extremes");
}

/* Values 10% apart land in different buckets, so the answer names the
 * rank: within 2% of one value means more than 5% off its neighbours. */
static void test_quantile_picks_the_nearest_rank(void **state)
{
    static const struct { double q; int k; } cases[] = {
        { 0, 0 }, { 0.001, 0 }, { 0.01, 0 }, { 0.0101, 1 }, { 0.5, 49 },
        { 0.505, 50 }, { 0.985, 98 }, { 0.991, 99 }, { 1, 99 },
    };
    double v[100];
    struct hist h;
    size_t i;

    (void)state;
    for (i = 0; i < 100; i++)
        v[i] = 10.0 * pow(1.1, (double)i);
    build(&h, v, 100);
    assert_int_equal(h.n, 100);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double want = v[cases[i].k], got = hist_quantile(&h, cases[i].q);

        if (!(fabs(got - want) <= TOLERANCE * want))
            fail_msg("q=%g: got %g, want value %d (%g)", cases[i].q, got,
                     cases[i].k, want);
    }
    assert_true(isnan(hist_quantile(&h, -0.01)));
    assert_true(isnan(hist_quantile(&h, 1.01)));
    assert_true(isnan(hist_quantile(&h, NAN)));
    hist_free(&h);
}

/* ---- adding ---- */

static void test_values_below_1_count_as_0(void **state)
{
    struct hist h;

    (void)state;
    hist_init(&h);
    assert_int_equal(hist_add(&h, 0.0, 3), 0);
    assert_int_equal(hist_add(&h, -0.0, 1), 0);
    assert_int_equal(hist_add(&h, 0.999, 1), 0);
    assert_int_equal(h.zero, 5);
    assert_int_equal(h.n, 0);
    assert_true(hist_quantile(&h, 1) == 0.0);
    assert_int_equal(hist_add(&h, 1.0, 5), 0);      /* the first bucket */
    assert_int_equal(h.n, 1);
    assert_int_equal(h.idx[0], 0);
    assert_true(hist_quantile(&h, 0.5) == 0.0);     /* rank 5 */
    assert_true(fabs(hist_quantile(&h, 0.6) - 1.0) <= TOLERANCE);
    assert_int_equal(hist_count(&h), 10);
    hist_free(&h);
}

static void test_huge_values_are_clamped_to_the_cap(void **state)
{
    struct hist h;

    (void)state;
    hist_init(&h);
    assert_int_equal(hist_add(&h, HIST_MAX_VALUE, 1), 0);
    assert_int_equal(hist_add(&h, 1e15, 1), 0);
    assert_int_equal(hist_add(&h, INFINITY, 1), 0);
    assert_int_equal(hist_add(&h, DBL_MAX, 1), 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.idx[0], HIST_MAX_INDEX);
    assert_int_equal(h.cnt[0], 4);
    assert_true(fabs(hist_quantile(&h, 1) - HIST_MAX_VALUE) <=
                TOLERANCE * HIST_MAX_VALUE);
    hist_free(&h);
}

static void test_negative_nan_and_overflow_are_refused_unchanged(
    void **state)
{
    struct hist h, ref;
    static const double v[] = { 0, 5, 7, 5000 };

    (void)state;
    build(&h, v, 4);
    build(&ref, v, 4);
    assert_int_equal(hist_add(&h, -1.0, 1), -EINVAL);
    assert_int_equal(hist_add(&h, -INFINITY, 1), -EINVAL);
    assert_int_equal(hist_add(&h, NAN, 1), -EINVAL);
    assert_int_equal(hist_add(&h, -1e-300, 0), -EINVAL);
    assert_int_equal(hist_add(&h, 6.0, UINT64_MAX - 3), -EOVERFLOW);
    assert_int_equal(hist_add(&h, 0.0, UINT64_MAX), -EOVERFLOW);
    assert_hist_equal(&h, &ref);
    assert_int_equal(hist_add(&h, 1e6, 0), 0);      /* nothing at all */
    assert_hist_equal(&h, &ref);
    assert_int_equal(hist_add(&h, 6.0, UINT64_MAX - 4), 0);  /* just fits */
    assert_int_equal(hist_count(&h), UINT64_MAX);
    assert_int_equal(hist_merge(&h, &ref), -EOVERFLOW);
    assert_int_equal(hist_merge(&ref, &h), -EOVERFLOW);
    assert_int_equal(hist_count(&ref), 4);
    hist_free(&h);
    hist_free(&ref);
}

static void test_empty_histogram_has_no_quantile(void **state)
{
    static const uint8_t want[] = { HIST_BLOB_VERSION, 0, 0 };
    struct hist h, back;
    uint8_t *blob = NULL;
    size_t len = 0;

    (void)state;
    hist_init(&h);
    assert_int_equal(hist_count(&h), 0);
    assert_true(isnan(hist_quantile(&h, 0.5)));
    assert_int_equal(hist_encode(&h, &blob, &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(blob, want, len);
    hist_init(&back);
    assert_int_equal(hist_merge_blob(&back, blob, len), 0);
    assert_hist_equal(&back, &h);
    assert_true(isnan(hist_quantile(&back, 0.5)));
    free(blob);
    /* Emptied histograms are empty again, and reusable. */
    assert_int_equal(hist_add(&h, 42, 1), 0);
    hist_reset(&h);
    assert_hist_equal(&h, &back);
    assert_true(isnan(hist_quantile(&h, 0.5)));
    assert_int_equal(hist_add(&h, 42, 1), 0);
    hist_free(&h);
    assert_hist_equal(&h, &back);
    assert_int_equal(hist_add(&h, 42, 1), 0);
    assert_int_equal(hist_count(&h), 1);
    hist_free(&h);
}

/* ---- merging ---- */

static void assert_same_quantiles(const struct hist *a, const struct hist *b)
{
    size_t i;

    for (i = 0; i <= 1000; i++) {
        double q = (double)i / 1000;

        assert_true(hist_quantile(a, q) == hist_quantile(b, q));
    }
}

/* Parts of unequal sizes, each a contiguous slice: so each part has
 * buckets the others lack. */
static void test_merged_parts_equal_the_whole(void **state)
{
    static const size_t cut[N_PARTS + 1] = { 0, 100, 30000, 30001,
                                             N_VALUES };
    double *v = gen_data(DATA_EXTREMES, 6, N_VALUES);
    struct hist whole, part[N_PARTS], mem, via_blob;
    size_t p;

    (void)state;
    build(&whole, v, N_VALUES);
    hist_init(&mem);
    hist_init(&via_blob);
    for (p = 0; p < N_PARTS; p++) {
        uint8_t *blob = NULL;
        size_t len = 0;

        build(&part[p], v + cut[p], cut[p + 1] - cut[p]);
        assert_int_equal(hist_merge(&mem, &part[p]), 0);
        assert_hist_sane(&mem);
        assert_int_equal(hist_encode(&part[p], &blob, &len), 0);
        assert_int_equal(hist_merge_blob(&via_blob, blob, len), 0);
        assert_hist_sane(&via_blob);
        free(blob);
    }
    for (p = N_PARTS; p-- > 0;)         /* another order, into a part */
        if (p != 2)
            assert_int_equal(hist_merge(&part[2], &part[p]), 0);
    assert_hist_equal(&mem, &whole);
    assert_hist_equal(&via_blob, &whole);
    assert_hist_equal(&part[2], &whole);
    assert_same_quantiles(&mem, &whole);
    assert_same_quantiles(&via_blob, &whole);
    for (p = 0; p < N_PARTS; p++)
        hist_free(&part[p]);
    hist_free(&mem);
    hist_free(&via_blob);
    hist_free(&whole);
    free(v);
}

static void test_merging_into_itself_doubles_every_count(void **state)
{
    double *v = gen_data(DATA_LOGNORMAL, 7, 1000);
    struct hist h, twice;
    size_t i;

    (void)state;
    build(&h, v, 1000);
    hist_init(&twice);
    for (i = 0; i < 1000; i++)
        assert_int_equal(hist_add(&twice, v[i], 2), 0);
    assert_int_equal(hist_merge(&h, &h), 0);
    assert_hist_equal(&h, &twice);
    hist_free(&h);
    hist_free(&twice);
    free(v);
}

/* ---- encoding ---- */

static void test_blob_round_trip_is_exact(void **state)
{
    double *v = gen_data(DATA_EXTREMES, 8, N_VALUES);
    struct hist h, back;
    uint8_t *blob = NULL, *again = NULL;
    size_t len = 0, len2 = 0;

    (void)state;
    build(&h, v, N_VALUES);
    assert_int_equal(hist_encode(&h, &blob, &len), 0);
    assert_true(len < 4 + h.n * 5);     /* small: deltas and counts */
    hist_init(&back);
    assert_int_equal(hist_merge_blob(&back, blob, len), 0);
    assert_hist_equal(&back, &h);
    assert_int_equal(hist_encode(&back, &again, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, blob, len);
    hist_free(&h);
    hist_free(&back);
    free(blob);
    free(again);
    free(v);
}

/* The largest varint there is still decodes. */
static void test_blob_with_64_bit_counts_decodes(void **state)
{
    static const uint8_t max_zero[] = {
        HIST_BLOB_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x01, 0
    };
    struct hist h;

    (void)state;
    hist_init(&h);
    assert_int_equal(hist_merge_blob(&h, max_zero, sizeof(max_zero)), 0);
    assert_int_equal(h.zero, UINT64_MAX);
    assert_int_equal(hist_count(&h), UINT64_MAX);
    assert_true(hist_quantile(&h, 1) == 0.0);
    hist_free(&h);
}

/* What the blobs below are merged into: a few buckets, and zeros. */
static void dst_with_data(struct hist *h)
{
    static const double v[] = { 0, 0, 3, 250, 251, 9000, 1e9 };

    build(h, v, sizeof(v) / sizeof(v[0]));
}

/* @blob is refused, into an empty histogram and into one with data, and
 * neither changes. */
static void assert_refused(const uint8_t *blob, size_t len, const char *why)
{
    struct hist dst, ref;
    int rc;

    hist_init(&dst);
    hist_init(&ref);
    rc = hist_merge_blob(&dst, blob, len);
    if (rc != -EINVAL)
        fail_msg("%s: into an empty histogram: %d, not -EINVAL", why, rc);
    assert_hist_equal(&dst, &ref);
    dst_with_data(&dst);
    dst_with_data(&ref);
    rc = hist_merge_blob(&dst, blob, len);
    if (rc != -EINVAL)
        fail_msg("%s: into a histogram: %d, not -EINVAL", why, rc);
    assert_hist_equal(&dst, &ref);
    hist_free(&dst);
    hist_free(&ref);
}

#define REFUSED(why, ...)                                               \
    do {                                                                \
        static const uint8_t b_[] = { __VA_ARGS__ };                    \
        assert_refused(b_, sizeof(b_), why);                            \
    } while (0)

#define V HIST_BLOB_VERSION

static void test_malformed_blobs_are_refused_unchanged(void **state)
{
    (void)state;
    assert_refused(NULL, 0, "no bytes");
    REFUSED("version 0", 0, 0, 0);
    REFUSED("version 2", 2, 0, 0);
    REFUSED("version only", V);
    REFUSED("no bucket count", V, 0);
    REFUSED("bucket count cut", V, 0, 0x81);
    REFUSED("bucket missing", V, 0, 1);
    REFUSED("count missing", V, 0, 1, 20);
    REFUSED("second bucket missing", V, 0, 2, 20, 1);
    REFUSED("trailing byte", V, 0, 0, 0);
    REFUSED("trailing bucket", V, 0, 1, 20, 1, 2, 1);
    /* 10 is zigzag 20; equal, then what wraps to 9 in 32 bits. */
    REFUSED("equal indexes", V, 0, 2, 20, 1, 0, 1);
    REFUSED("descending index", V, 0, 2, 20, 1,
            0xff, 0xff, 0xff, 0xff, 0x0f, 1);
    REFUSED("negative index", V, 0, 1, 1, 1);
    REFUSED("index past the cap", V, 0, 1, 0xe8, 0x0a, 1);     /* 692 */
    REFUSED("delta past the cap", V, 0, 2, 0xe4, 0x0a, 1, 2, 1); /* 690+2 */
    REFUSED("empty bucket", V, 0, 2, 20, 1, 1, 0);
    REFUSED("overlong zero count", V, 0x80, 0x00, 0);
    REFUSED("overlong index", V, 0, 1, 0x94, 0x00, 1);
    REFUSED("11-byte varint", V, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
            0x80, 0x80, 0x80, 0x00, 0);
    REFUSED("varint past 64 bits", V, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x02, 0);
    REFUSED("zero count + bucket overflows", V,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            1, 20, 1);
    REFUSED("two buckets of 2^63", V, 0, 2,
            20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
    /* 2^62 buckets announced in a few bytes: refused before allocating. */
    REFUSED("2^62 buckets", V, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
            0x80, 0x40, 0, 1, 1, 1);
}

/* Every prefix of a valid blob lacks something. */
static void test_truncated_blobs_are_refused(void **state)
{
    static const double v[] = { 0, 1, 2, 300, 300, 4e4, 5e9, 1e12 };
    struct hist h;
    uint8_t *blob = NULL;
    size_t len = 0, cut;

    (void)state;
    build(&h, v, sizeof(v) / sizeof(v[0]));
    assert_int_equal(hist_add(&h, 300, 1000000), 0);  /* a 3-byte count */
    assert_int_equal(hist_encode(&h, &blob, &len), 0);
    for (cut = 0; cut < len; cut++)
        assert_refused(blob, cut, "truncated");
    hist_free(&h);
    free(blob);
}

/* One bucket more than any histogram has, each in a valid-looking form. */
static void test_too_many_buckets_are_refused(void **state)
{
    size_t n = HIST_MAX_BUCKETS + 1, len = 0, k;
    uint8_t *blob = malloc(8 + 2 * n);

    (void)state;
    assert_non_null(blob);
    blob[len++] = HIST_BLOB_VERSION;
    blob[len++] = 0;
    blob[len++] = (uint8_t)(n | 0x80);  /* n < 2^14: two bytes */
    blob[len++] = (uint8_t)(n >> 7);
    for (k = 0; k < n; k++) {
        blob[len++] = k == 0 ? 0 : 1;   /* index 0, then deltas of 1 */
        blob[len++] = 1;
    }
    assert_refused(blob, len, "too many buckets");
    /* The same with one bucket less is a full, valid histogram. */
    blob[2] = (uint8_t)((n - 1) | 0x80);
    blob[3] = (uint8_t)((n - 1) >> 7);
    {
        struct hist h;

        hist_init(&h);
        assert_int_equal(hist_merge_blob(&h, blob, len - 2), 0);
        assert_int_equal(h.n, HIST_MAX_BUCKETS);
        assert_int_equal(h.idx[h.n - 1], HIST_MAX_INDEX);
        hist_free(&h);
    }
    free(blob);
}

/* A blob valid alone whose total, added to dst's, passes UINT64_MAX. */
static void test_blob_overflowing_dst_total_is_refused(void **state)
{
    static const uint8_t blob[] = {
        HIST_BLOB_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x01, 0
    };
    struct hist dst, ref;

    (void)state;
    hist_init(&dst);
    assert_int_equal(hist_add(&dst, 7, 1), 0);
    hist_init(&ref);
    assert_int_equal(hist_add(&ref, 7, 1), 0);
    assert_int_equal(hist_merge_blob(&dst, blob, sizeof(blob)), -EINVAL);
    assert_hist_equal(&dst, &ref);
    hist_free(&dst);
    hist_free(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_quantiles_are_within_2_percent),
        cmocka_unit_test(test_lognormal_quantiles_are_within_2_percent),
        cmocka_unit_test(test_bimodal_quantiles_are_within_2_percent),
        cmocka_unit_test(
            test_zeros_and_huge_values_are_0_or_within_2_percent),
        cmocka_unit_test(test_quantile_picks_the_nearest_rank),
        cmocka_unit_test(test_values_below_1_count_as_0),
        cmocka_unit_test(test_huge_values_are_clamped_to_the_cap),
        cmocka_unit_test(
            test_negative_nan_and_overflow_are_refused_unchanged),
        cmocka_unit_test(test_empty_histogram_has_no_quantile),
        cmocka_unit_test(test_merged_parts_equal_the_whole),
        cmocka_unit_test(test_merging_into_itself_doubles_every_count),
        cmocka_unit_test(test_blob_round_trip_is_exact),
        cmocka_unit_test(test_blob_with_64_bit_counts_decodes),
        cmocka_unit_test(test_malformed_blobs_are_refused_unchanged),
        cmocka_unit_test(test_truncated_blobs_are_refused),
        cmocka_unit_test(test_too_many_buckets_are_refused),
        cmocka_unit_test(test_blob_overflowing_dst_total_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
