/* seqset.c -- sets of uint64 seqs as sorted, merged ranges (seqset.h).
 * Binary search to find, memmove to insert or merge: a collector's set
 * holds a few ranges (one per gap in what it acked), so an array beats a
 * tree. Knows nothing of the spool, SQLite or collectors. */
#include "seqset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* First capacity: a collector that acks in order needs one range; a few
 * more cover the gaps of newest-first batches without a realloc. */
#define SEQSET_FIRST_CAP 8u

void seqset_free(struct seqset *s)
{
    free(s->r);
    memset(s, 0, sizeof(*s));
}

int seqset_copy(struct seqset *to, const struct seqset *from)
{
    memset(to, 0, sizeof(*to));
    if (from->n == 0)
        return 0;
    to->r = malloc(from->n * sizeof(*to->r));
    if (!to->r)
        return -ENOMEM;
    memcpy(to->r, from->r, from->n * sizeof(*to->r));
    to->n = to->cap = from->n;
    return 0;
}

void seqset_swap(struct seqset *a, struct seqset *b)
{
    struct seqset t = *a;

    *a = *b;
    *b = t;
}

size_t seqset_find(const struct seqset *s, uint64_t seq)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->r[mid].last < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int seqset_has(const struct seqset *s, uint64_t seq)
{
    size_t i = seqset_find(s, seq);

    return i < s->n && s->r[i].first <= seq;
}

int seqset_reserve(struct seqset *s)
{
    struct seqset_range *nr;
    size_t ncap;

    if (s->n < s->cap)
        return 0;
    ncap = s->cap ? s->cap * 2 : SEQSET_FIRST_CAP;
    if (ncap < s->cap || ncap > SIZE_MAX / sizeof(*nr))
        return -ENOMEM;
    nr = realloc(s->r, ncap * sizeof(*nr));
    if (!nr)
        return -ENOMEM;
    s->r = nr;
    s->cap = ncap;
    return 0;
}

void seqset_plan(const struct seqset *s, uint64_t f, uint64_t l, size_t *i,
                 size_t *j, struct seqset_range *m)
{
    /* Touching counts: a range ending at f - 1 merges too. Written as
     * first - 1 <= l, not first <= l + 1, so that l = UINT64_MAX does
     * not wrap. */
    size_t k = seqset_find(s, f > 0 ? f - 1 : 0);

    m->first = f;
    m->last = l;
    *i = k;
    while (k < s->n && (s->r[k].first == 0 || s->r[k].first - 1 <= l)) {
        if (s->r[k].first < m->first)
            m->first = s->r[k].first;
        if (s->r[k].last > m->last)
            m->last = s->r[k].last;
        k++;
    }
    *j = k;
}

void seqset_apply(struct seqset *s, size_t i, size_t j,
                  const struct seqset_range *m)
{
    if (j == i) {                   /* a new range at i */
        memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
        s->n++;
    } else if (j > i + 1) {         /* several became one */
        memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
        s->n -= j - i - 1;
    }
    s->r[i] = *m;
}

int seqset_add(struct seqset *s, uint64_t f, uint64_t l)
{
    struct seqset_range m;
    size_t i, j;
    int rc;

    if (f > l)
        return -EINVAL;
    rc = seqset_reserve(s);
    if (rc < 0)
        return rc;
    seqset_plan(s, f, l, &i, &j, &m);
    seqset_apply(s, i, j, &m);
    return 0;
}

void seqset_prune(struct seqset *s, uint64_t min_seq)
{
    size_t k = 0;

    while (k < s->n && s->r[k].last < min_seq)
        k++;
    if (k > 0) {
        memmove(s->r, &s->r[k], (s->n - k) * sizeof(*s->r));
        s->n -= k;
    }
}

int seqset_holes(const struct seqset *s, uint64_t lo, uint64_t hi,
                 struct seqset_range **out, size_t *n)
{
    /* Each range leaves at most one hole before it, plus one after all. */
    struct seqset_range *h = calloc(s->n + 1, sizeof(*h));
    uint64_t cur = lo;
    int done = lo > hi;             /* nothing left of [lo, hi] to cover */
    size_t k = 0;

    if (!h)
        return -ENOMEM;
    for (size_t i = seqset_find(s, lo); i < s->n && !done; i++) {
        if (s->r[i].first > hi)
            break;
        if (s->r[i].first > cur)
            h[k++] = (struct seqset_range){ cur, s->r[i].first - 1 };
        if (s->r[i].last >= hi)
            done = 1;               /* and last + 1 might wrap */
        else
            cur = s->r[i].last + 1;
    }
    if (!done)
        h[k++] = (struct seqset_range){ cur, hi };
    *out = h;
    *n = k;
    return 0;
}

int seqset_intersect(const struct seqset *s, struct seqset_range **in,
                     size_t *n)
{
    /* Two families of disjoint ranges overlap in fewer pairs than they
     * have ranges together: each pair but the last ends one of them. */
    struct seqset_range *out = calloc(*n + s->n + 1, sizeof(*out));
    size_t k = 0;

    if (!out)
        return -ENOMEM;
    for (size_t a = 0; a < *n; a++) {
        struct seqset_range x = (*in)[a];

        for (size_t i = seqset_find(s, x.first);
             i < s->n && s->r[i].first <= x.last; i++) {
            uint64_t f = s->r[i].first > x.first ? s->r[i].first : x.first;
            uint64_t l = s->r[i].last < x.last ? s->r[i].last : x.last;

            out[k++] = (struct seqset_range){ f, l };
        }
    }
    free(*in);
    *in = out;
    *n = k;
    return 0;
}
