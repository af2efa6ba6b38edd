/* hrw.h -- rendezvous (highest random weight) hashing for `probers: N`:
 * which N of a cluster's live agents probe a target. Every agent runs the
 * same pure function over the same list (the collector's, sent in the
 * Ack), so they agree without talking to each other; when a node leaves,
 * only the targets it held move. No I/O, no allocation. */
#ifndef SEXTANT_HRW_H
#define SEXTANT_HRW_H

#include <stddef.h>
#include <stdint.h>

/* What Batch.live_nodes_hash says: the agent wants the list but holds
 * none yet. 0 means it wants none (no target has probers, or too old). */
#define HRW_NO_LIST 1ull

/* The weight of (@target, @node): FNV-1a 64 of "target\0node", then a
 * 64-bit finalizer so that names differing only in their last byte still
 * spread. Part of the contract: every agent must compute the same. */
uint64_t hrw_score(const char *target, const char *node);

/* The rank of @self among the @n names of @nodes for @target: how many
 * of them score higher (a tie goes to the smaller name), 0 the best.
 * @self need not be in @nodes. Ranks below probers are selected. */
size_t hrw_rank(const char *target, const char *self,
                const char *const *nodes, size_t n);

/* The fingerprint of a node list (in the collector's order, sorted):
 * FNV-1a over the names with their NULs, never 0 or HRW_NO_LIST, so the
 * Batch's field can say "I hold this one" (see sextant.proto). */
uint64_t hrw_list_hash(const char *const *nodes, size_t n);

#endif
