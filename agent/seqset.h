/* seqset.h -- a set of uint64 seqs kept as sorted, disjoint, never
 * adjacent ranges (merged on insert): the acked seqs of one collector in
 * the spool. Pure memory, no I/O. Every seq of the uint64 range may be a
 * member, 0 and UINT64_MAX included.
 *
 * Adding comes in two steps, seqset_plan() then seqset_apply(), so that a
 * caller can write the same change elsewhere first (the spool's file) and
 * apply it in memory only once that has worked: with seqset_reserve()
 * called before, applying cannot fail. seqset_add() does all three. */
#ifndef SEXTANT_AGENT_SEQSET_H
#define SEXTANT_AGENT_SEQSET_H

#include <stddef.h>
#include <stdint.h>

/* A seq range, both ends included: first <= last. */
struct seqset_range {
    uint64_t first;
    uint64_t last;
};

/* Zeroed is empty. r[0..n) is ascending, disjoint, and no two ranges
 * touch (r[k].last + 1 < r[k + 1].first). Callers may read r and n;
 * only the seqset_ calls change them. */
struct seqset {
    struct seqset_range *r;         /* owned; cap of them */
    size_t n;
    size_t cap;
};

void seqset_free(struct seqset *s);             /* back to empty */
/* Makes @to (whatever it held is not freed) a copy of @from. -ENOMEM
 * leaves @to empty. */
int seqset_copy(struct seqset *to, const struct seqset *from);
/* Exchanges the contents of @a and @b: with seqset_copy(), how a caller
 * undoes changes it made after taking a copy. Cannot fail. */
void seqset_swap(struct seqset *a, struct seqset *b);

/* Index of the first range that ends at or after @seq; n if none. */
size_t seqset_find(const struct seqset *s, uint64_t seq);
/* 1 if @seq is a member. */
int seqset_has(const struct seqset *s, uint64_t seq);

/* Room for one more range, so that the next seqset_apply() cannot fail. */
int seqset_reserve(struct seqset *s);
/* What adding [@f, @l] (@f <= @l) does: ranges [*i, *j) merge into *m,
 * which covers them and [@f, @l]; *i == *j means a new range at *i. */
void seqset_plan(const struct seqset *s, uint64_t f, uint64_t l, size_t *i,
                 size_t *j, struct seqset_range *m);
/* Applies a plan of seqset_plan() on the unchanged @s; seqset_reserve()
 * made room. */
void seqset_apply(struct seqset *s, size_t i, size_t j,
                  const struct seqset_range *m);
/* Adds [@f, @l]: -EINVAL if @f > @l, -ENOMEM, else 0. */
int seqset_add(struct seqset *s, uint64_t f, uint64_t l);

/* Forgets the ranges that lie wholly below @min_seq (a range that
 * reaches it is kept whole). */
void seqset_prune(struct seqset *s, uint64_t min_seq);

/* The seqs in [@lo, @hi] that are not members, as ascending ranges: *out
 * (caller frees; non-NULL on success) gets *n of them. */
int seqset_holes(const struct seqset *s, uint64_t lo, uint64_t hi,
                 struct seqset_range **out, size_t *n);

/* Intersects the ascending, disjoint ranges *in (*n of them; the caller's,
 * from malloc) with @s: *in is replaced (the old array freed) and *n
 * updated. On failure (-ENOMEM) both are as they were. */
int seqset_intersect(const struct seqset *s, struct seqset_range **in,
                     size_t *n);

#endif
