/* fuzz_hist_blob.c -- libFuzzer harness: the input is a histogram BLOB as
 * the collector reads it from SQLite, merged with hist_merge_blob into a
 * histogram that already holds data. A refused blob must leave it alone;
 * an accepted one must keep hist.h's invariants, add exactly its own
 * total, and encode back to the very same bytes (the encoding has one
 * form). Seeds in corpus/hist_blob were written by hand: empty, zeros
 * only, a typical minute, the top bucket, every bucket. */
#include "fuzz_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

/* Buckets below, inside and above a typical minute's, and zeros. */
static void with_data(struct hist *h)
{
    static const double v[] = { 0, 0, 1, 180, 900, 901, 5e4, 1e12 };
    size_t i;

    hist_init(h);
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        FUZZ_REQUIRE(hist_add(h, v[i], i + 1) == 0, "hist_add %g", v[i]);
}

static int same(const struct hist *a, const struct hist *b)
{
    return a->n == b->n && a->zero == b->zero && a->total == b->total &&
           (a->n == 0 ||
            (memcmp(a->idx, b->idx, a->n * sizeof(*a->idx)) == 0 &&
             memcmp(a->cnt, b->cnt, a->n * sizeof(*a->cnt)) == 0));
}

static void check_sane(const struct hist *h)
{
    uint64_t sum = h->zero;
    double last = 0, q;
    size_t k;

    for (k = 0; k < h->n; k++) {
        FUZZ_REQUIRE(h->idx[k] >= 0 && h->idx[k] <= HIST_MAX_INDEX,
                     "bucket %zu: index %d out of range", k, h->idx[k]);
        FUZZ_REQUIRE(k == 0 || h->idx[k - 1] < h->idx[k],
                     "bucket %zu: index %d after %d", k, h->idx[k],
                     h->idx[k - 1]);
        FUZZ_REQUIRE(h->cnt[k] > 0, "bucket %zu is empty", k);
        FUZZ_REQUIRE(h->cnt[k] <= UINT64_MAX - sum, "counts overflow");
        sum += h->cnt[k];
    }
    FUZZ_REQUIRE(sum == h->total, "total %llu, buckets add up to %llu",
                 (unsigned long long)h->total, (unsigned long long)sum);
    if (h->total == 0) {
        FUZZ_REQUIRE(isnan(hist_quantile(h, 0.5)), "empty, yet a quantile");
        return;
    }
    for (q = 0; q <= 1; q += 0.125) {
        double v = hist_quantile(h, q);

        FUZZ_REQUIRE(isfinite(v) && v >= last,
                     "quantile %g is %g after %g", q, v, last);
        last = v;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hist dst, before, alone;
    uint8_t *again = NULL;
    size_t len = 0;
    int rc;

    with_data(&dst);
    with_data(&before);
    hist_init(&alone);
    rc = hist_merge_blob(&dst, data, size);
    if (rc < 0) {
        FUZZ_REQUIRE(rc == -EINVAL || rc == -ENOMEM,
                     "hist_merge_blob: %d is not a documented errno", rc);
        FUZZ_REQUIRE(same(&dst, &before), "refused (%d) but changed dst",
                     rc);
        goto out;
    }
    FUZZ_REQUIRE(rc == 0, "hist_merge_blob returned %d", rc);
    check_sane(&dst);
    rc = hist_merge_blob(&alone, data, size);
    FUZZ_REQUIRE(rc == 0, "accepted into dst, refused alone: %d", rc);
    check_sane(&alone);
    FUZZ_REQUIRE(hist_merge(&before, &alone) == 0, "hist_merge failed");
    FUZZ_REQUIRE(same(&dst, &before),
                 "merging the blob differs from merging its histogram");
    FUZZ_REQUIRE(hist_encode(&alone, &again, &len) == 0, "hist_encode");
    FUZZ_REQUIRE(len == size && memcmp(again, data, size) == 0,
                 "%zu accepted bytes encode back as %zu others", size, len);
out:
    free(again);
    hist_free(&dst);
    hist_free(&before);
    hist_free(&alone);
    return 0;
}
