/* live.h -- which nodes of each cluster the collector heard from
 * recently, for `probers: N`: every stored batch notes its (cluster,
 * node), and its Ack carries the cluster's live list when the agent asks
 * for one and holds another (see sextant.proto, Ack.live_nodes). In
 * memory only: after a restart the list refills as agents ship, and a
 * partial list only makes agents probe more, never less. Thread-safe:
 * the HTTP pool threads call it under one mutex. */
#ifndef SEXTANT_LIVE_H
#define SEXTANT_LIVE_H

#include <stdint.h>

#include "config.h"
#include "wire.h"

/* Nodes tracked per cluster; past it a new node is not listed (it then
 * probes every target: safe). */
#define LIVE_MAX_NODES 16384u

struct live;                        /* opaque outside live.c */

/* @cfg is borrowed and must outlive the registry. -ENOMEM. */
int live_new(const struct collector_config *cfg, struct live **out);
void live_free(struct live *lv);    /* NULL is a no-op */

/* @node of @c (one of cfg->clusters) shipped a batch stored at @now_ms,
 * holding the list whose hash is @held (Batch.live_nodes_hash). When
 * @held is not 0, sets ack->live_nodes_hash and, when @held is not the
 * current list's hash, ack->live_nodes to a copy of the list: *names is
 * then the allocation to free (caller frees, after encoding the Ack),
 * else NULL. 0, or -ENOMEM (the Ack then carries no list). */
int live_reply(struct live *lv, const struct collector_cluster *c,
               const char *node, uint64_t held, int64_t now_ms,
               Sextant__V1__Ack *ack, char ***names);

#endif
