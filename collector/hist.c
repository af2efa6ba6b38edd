/* hist.c -- the latency histogram of hist.h: sorted sparse buckets, their
 * merge, quantiles, and the BLOB encoding with a decoder that trusts
 * nothing. Does not touch SQLite: the store reads and writes the bytes. */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define VARINT_MAX 10               /* bytes of a 64-bit LEB128 varint */

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hist_free(struct hist *h)
{
    free(h->idx);
    free(h->cnt);
    hist_init(h);
}

void hist_reset(struct hist *h)
{
    h->n = 0;
    h->zero = 0;
    h->total = 0;
}

uint64_t hist_count(const struct hist *h)
{
    return h->total;
}

/* The bucket of @v, 1 <= v <= HIST_MAX_VALUE. The clamp only guards the
 * rounding of log() at the two ends. */
static int32_t bucket_of(double v)
{
    double i = ceil(log(v) / log(HIST_GAMMA));

    if (i < 0)
        return 0;
    if (i > HIST_MAX_INDEX)
        return HIST_MAX_INDEX;
    return (int32_t)i;
}

/* Bucket i holds (gamma^(i-1), gamma^i]; this value is within a of both
 * ends, so of everything in between. */
static double bucket_value(int32_t i)
{
    return 2.0 * pow(HIST_GAMMA, i) / (HIST_GAMMA + 1.0);
}

/* Room for @need buckets. On failure @h still holds what it held (one of
 * the arrays may have grown, which cap does not claim). */
static int grow(struct hist *h, size_t need)
{
    size_t cap = h->cap ? h->cap : 8;
    int32_t *idx;
    uint64_t *cnt;

    if (need <= h->cap)
        return 0;
    while (cap < need)              /* need <= HIST_MAX_BUCKETS: no wrap */
        cap *= 2;
    idx = realloc(h->idx, cap * sizeof(*idx));
    if (idx == NULL)
        return -ENOMEM;
    h->idx = idx;
    cnt = realloc(h->cnt, cap * sizeof(*cnt));
    if (cnt == NULL)
        return -ENOMEM;
    h->cnt = cnt;
    h->cap = cap;
    return 0;
}

/* The position of the first bucket >= @b. A binary search: a minute of
 * one target's probes hits the same few buckets again and again, so
 * inserts are rare and the search is the common cost. */
static size_t find(const struct hist *h, int32_t b)
{
    size_t lo = 0, hi = h->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (h->idx[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int hist_add(struct hist *h, double v, uint64_t count)
{
    int32_t b;
    size_t k;
    int rc;

    if (isnan(v) || v < 0)
        return -EINVAL;
    if (count == 0)
        return 0;
    if (count > UINT64_MAX - h->total)
        return -EOVERFLOW;          /* a bucket is <= total: it fits too */
    if (v < 1) {
        h->zero += count;
        h->total += count;
        return 0;
    }
    b = bucket_of(v > HIST_MAX_VALUE ? HIST_MAX_VALUE : v);
    k = find(h, b);
    if (k == h->n || h->idx[k] != b) {
        rc = grow(h, h->n + 1);
        if (rc < 0)
            return rc;
        memmove(h->idx + k + 1, h->idx + k, (h->n - k) * sizeof(*h->idx));
        memmove(h->cnt + k + 1, h->cnt + k, (h->n - k) * sizeof(*h->cnt));
        h->idx[k] = b;
        h->cnt[k] = 0;
        h->n++;
    }
    h->cnt[k] += count;
    h->total += count;
    return 0;
}

/* Buckets in @a or @b or both. */
static size_t union_size(const struct hist *a, const struct hist *b)
{
    size_t i = 0, j = 0, u = 0;

    while (i < a->n && j < b->n) {
        int32_t x = a->idx[i], y = b->idx[j];

        i += x <= y;
        j += y <= x;
        u++;
    }
    return u + (a->n - i) + (b->n - j);
}

int hist_merge(struct hist *dst, const struct hist *src)
{
    uint64_t zero = src->zero, total = src->total;  /* src may be dst */
    size_t i = dst->n, j = src->n, u, k;
    int rc;

    if (total > UINT64_MAX - dst->total)
        return -EOVERFLOW;          /* a bucket is <= total: it fits too */
    u = union_size(dst, src);
    rc = grow(dst, u);
    if (rc < 0)
        return rc;
    /* From the top down inside dst's arrays: the write position k - 1
     * never falls below dst's next unread bucket i - 1, so nothing is
     * overwritten before it is read, also when src is dst. Once src is
     * used up, dst's remaining buckets are already in place. */
    for (k = u; j > 0; k--) {
        int32_t b = src->idx[j - 1];
        uint64_t c;

        if (i > 0 && dst->idx[i - 1] > b) {
            b = dst->idx[i - 1];
            c = dst->cnt[--i];
        } else if (i > 0 && dst->idx[i - 1] == b) {
            c = dst->cnt[--i] + src->cnt[--j];
        } else {
            c = src->cnt[--j];
        }
        dst->idx[k - 1] = b;
        dst->cnt[k - 1] = c;
    }
    dst->n = u;
    dst->zero += zero;
    dst->total += total;
    return 0;
}

/* ---- encoding ---- */

/* Reads one varint at *pos. -1 when truncated, longer than 64 bits, or
 * not minimal (a final 0x00 byte): what util_put_varint() writes is the
 * only accepted form, so a blob has exactly one encoding. */
static int get_varint(const uint8_t *p, size_t len, size_t *pos,
                      uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    size_t i = *pos;

    for (;;) {
        uint8_t b;

        if (i >= len)
            return -1;
        b = p[i++];
        if (shift == 63 && b > 1)
            return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0)
                return -1;
            break;
        }
        shift += 7;
    }
    *pos = i;
    *out = v;
    return 0;
}

static uint64_t zigzag(int32_t x)
{
    return ((uint64_t)(int64_t)x << 1) ^ (x < 0 ? UINT64_MAX : 0);
}

int hist_encode(const struct hist *h, uint8_t **out, size_t *len)
{
    uint8_t *buf = malloc(1 + 2 * VARINT_MAX + h->n * 2 * VARINT_MAX);
    size_t p = 0, k;

    if (buf == NULL)
        return -ENOMEM;
    buf[p++] = HIST_BLOB_VERSION;
    p += util_put_varint(buf + p, h->zero);
    p += util_put_varint(buf + p, h->n);
    for (k = 0; k < h->n; k++) {
        uint64_t d = k == 0 ? zigzag(h->idx[0])
                            : (uint64_t)(h->idx[k] - h->idx[k - 1]);

        p += util_put_varint(buf + p, d);
        p += util_put_varint(buf + p, h->cnt[k]);
    }
    *out = buf;
    *len = p;
    return 0;
}

int hist_merge_blob(struct hist *dst, const uint8_t *blob, size_t len)
{
    struct hist tmp;            /* the blob alone, merged once all valid */
    uint64_t n, v, c;
    int64_t prev = -1;          /* the previous bucket's index */
    size_t pos = 1, k;
    int rc = -EINVAL;

    if (len < 1 || blob[0] != HIST_BLOB_VERSION)
        return -EINVAL;
    hist_init(&tmp);
    if (get_varint(blob, len, &pos, &tmp.zero) < 0 ||
        get_varint(blob, len, &pos, &n) < 0)
        goto out;
    /* A bucket takes two bytes at least: a small blob cannot make us
     * allocate much. */
    if (n > HIST_MAX_BUCKETS || n > (len - pos) / 2)
        goto out;
    if (n > 0 && grow(&tmp, n) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    tmp.total = tmp.zero;
    for (k = 0; k < n; k++) {
        if (get_varint(blob, len, &pos, &v) < 0)
            goto out;
        if (k == 0) {           /* zigzag: a negative index is odd */
            if ((v & 1) || v / 2 > HIST_MAX_INDEX)
                goto out;
            prev = (int64_t)(v / 2);
        } else {                /* strictly ascending, in range */
            if (v == 0 || v > (uint64_t)(HIST_MAX_INDEX - prev))
                goto out;
            prev += (int64_t)v;
        }
        if (get_varint(blob, len, &pos, &c) < 0 || c == 0 ||
            c > UINT64_MAX - tmp.total)
            goto out;
        tmp.idx[k] = (int32_t)prev;
        tmp.cnt[k] = c;
        tmp.total += c;
    }
    tmp.n = n;
    if (pos != len || tmp.total > UINT64_MAX - dst->total)
        goto out;
    rc = hist_merge(dst, &tmp);     /* can only fail with -ENOMEM now */
out:
    hist_free(&tmp);
    return rc;
}

/* ---- quantiles ---- */

double hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen;
    double r;
    size_t k;

    if (h->total == 0 || !(q >= 0 && q <= 1))
        return NAN;
    r = ceil(q * (double)h->total);
    if (r < 1)
        rank = 1;
    else if (r >= (double)h->total)
        rank = h->total;
    else
        rank = (uint64_t)r;
    if (rank <= h->zero)
        return 0.0;
    seen = h->zero;
    for (k = 0; k < h->n; k++) {
        seen += h->cnt[k];
        if (seen >= rank)
            return bucket_value(h->idx[k]);
    }
    return NAN;                     /* unreachable while total is right */
}
