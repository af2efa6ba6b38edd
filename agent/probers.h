/* probers.h -- `probers: N`: which of the agent's targets this node
 * probes, from the list of live nodes its collectors send in their Acks
 * (rendezvous hashing, common/hrw.c). Safe by default: without a list, or
 * with one that does not name this node, every target is probed. Does not
 * schedule or record anything (loop.c does); runs on the loop's thread. */
#ifndef SEXTANT_AGENT_PROBERS_H
#define SEXTANT_AGENT_PROBERS_H

#include <stddef.h>
#include <stdint.h>

struct agent_config;
struct probers;                     /* opaque outside probers.c */

/* @cfg is borrowed (see probers_set_config). -ENOMEM. */
int probers_new(const struct agent_config *cfg, struct probers **out);
void probers_free(struct probers *pr);      /* NULL is a no-op */
/* A reloaded config: its targets and node are the ones selected for. */
void probers_set_config(struct probers *pr, const struct agent_config *cfg);

/* What Batch.live_nodes_hash says: 0 when no target has probers (or @pr
 * is NULL), HRW_NO_LIST without a list, else the list's hash. */
uint64_t probers_held(const struct probers *pr);
/* A collector's Ack of a stored batch (@len bytes at @resp): takes its
 * live list when it has one. A list that fails the checks of
 * wire_ack_live() is logged and ignored (the list held stays). */
void probers_ack(struct probers *pr, const uint8_t *resp, size_t len);
/* Bumped whenever the list changes: reselect when it differs. */
uint64_t probers_version(const struct probers *pr);
/* The number of live nodes listed (0: none). */
size_t probers_n_live(const struct probers *pr);

/* Which of the config's targets this node probes, into @sel (one byte a
 * target, 1: probe): every target without probers; a target with probers
 * N when this node ranks among its N best; everything without a usable
 * list. An agent that would probe nothing keeps its best-ranked target,
 * so it still ships batches and stays in its collectors' live list.
 * Returns how many are selected; *rank gets each target's rank (0 best;
 * may be NULL). */
size_t probers_select(const struct probers *pr, unsigned char *sel,
                      size_t *rank);

#endif
