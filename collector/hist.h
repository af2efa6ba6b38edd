/* hist.h -- a mergeable latency histogram (DDSketch style): log-spaced
 * buckets whose representative value is within HIST_REL_ERROR of every
 * value in them, so any quantile is within 2% of the exact one. Sparse:
 * only buckets that hold values take memory. Compact encoding for SQLite
 * BLOBs. Not thread-safe; knows nothing of SQLite or time. */
#ifndef SEXTANT_HIST_H
#define SEXTANT_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_REL_ERROR 0.02
/* gamma = (1 + a) / (1 - a): a value v >= 1 goes to bucket
 * ceil(log(v) / log(gamma)), values < 1 to the zero bucket. */
#define HIST_GAMMA ((1.0 + HIST_REL_ERROR) / (1.0 - HIST_REL_ERROR))
/* Larger values are counted as this (1e12 us is 11.6 days). */
#define HIST_MAX_VALUE 1e12
/* The bucket of HIST_MAX_VALUE: indexes are 0..HIST_MAX_INDEX, so no
 * histogram has more than HIST_MAX_BUCKETS buckets. */
#define HIST_MAX_INDEX 691
#define HIST_MAX_BUCKETS (HIST_MAX_INDEX + 1)
/* First byte of an encoded histogram. */
#define HIST_BLOB_VERSION 1

/* Read the fields, do not write them: the functions below keep these
 * invariants. idx is strictly ascending within 0..HIST_MAX_INDEX, every
 * cnt[k] > 0, and total = zero + the sum of cnt. */
struct hist {
    int32_t *idx;       /* bucket indexes, ascending */
    uint64_t *cnt;      /* values in bucket idx[k] */
    size_t n, cap;      /* buckets used, allocated */
    uint64_t zero;      /* values < 1 */
    uint64_t total;     /* all values, zero included */
};

/* An empty histogram; allocates nothing. */
void hist_init(struct hist *h);
/* Frees the buckets and leaves @h empty and reusable. */
void hist_free(struct hist *h);
/* Empties @h and keeps its memory. */
void hist_reset(struct hist *h);

/* Counts @v (microseconds) @count times. A @count of 0 changes nothing.
 * -EINVAL: @v negative or NaN; -EOVERFLOW: the total would pass
 * UINT64_MAX; -ENOMEM. @h is unchanged on any error. */
int hist_add(struct hist *h, double v, uint64_t count);
/* Adds every value of @src (borrowed; may be @dst) to @dst. -EOVERFLOW:
 * the total would pass UINT64_MAX; -ENOMEM. @dst is unchanged on error. */
int hist_merge(struct hist *dst, const struct hist *src);

/* Encodes @h for a SQLite BLOB: the version byte, then LEB128 varints:
 * zero count, number of buckets, and per bucket its index (the first
 * zigzag-encoded, then the delta from the previous one) and its count.
 * Caller frees *out; -ENOMEM. */
int hist_encode(const struct hist *h, uint8_t **out, size_t *len);
/* Decodes @len bytes of @blob (untrusted: a corrupt database) and merges
 * them into @dst. -EINVAL, with @dst unchanged, on anything hist_encode()
 * would not have written: a bad version, a truncated or overlong varint,
 * more than HIST_MAX_BUCKETS buckets, indexes not strictly ascending or
 * out of 0..HIST_MAX_INDEX, an empty bucket, a total (with @dst's) past
 * UINT64_MAX, trailing bytes. -ENOMEM, @dst unchanged. */
int hist_merge_blob(struct hist *dst, const uint8_t *blob, size_t len);

/* The number of values counted (h->total). */
uint64_t hist_count(const struct hist *h);
/* The q-quantile by nearest rank: the representative value of the bucket
 * holding the value of rank max(1, ceil(q * total)), 0 for the zero
 * bucket. NAN when @h is empty or @q is not within 0..1. */
double hist_quantile(const struct hist *h, double q);

#endif
