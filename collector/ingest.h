/* ingest.h -- turns one POST /v1/ingest body into a checked batch, and the
 * store's verdict on it into the reply. Knows nothing of HTTP framing or
 * of waiting for the store (server_ingest.c reads the body, checks headers
 * and submits); knows the order of checks and the status of each. */
#ifndef SEXTANT_INGEST_H
#define SEXTANT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "live.h"
#include "metrics.h"
#include "reply.h"
#include "store.h"

/* Decodes @body (a deflated Batch) sent with the token of @cluster and
 * checks it: names that cluster, seqs SQLite can hold. 0: *out is the
 * batch (free it with wire_batch_free()) and *cost what it holds in memory
 * while queued for the store (its inflated size). -1: @r holds the error
 * reply (400/403/413/503, JSON) and *why its reason; logged. */
int ingest_decode(const struct collector_config *cfg,
                  const struct collector_cluster *cluster,
                  const uint8_t *body, size_t len, Sextant__V1__Batch **out,
                  size_t *cost, struct reply *r, enum metrics_reject *why);

/* Fills @r with the reply to @b (borrowed) once the store is done with it
 * (rc and acked_seq as store_done_fn gives them; @recv_ms as submitted):
 * an Ack on 200, or a 503 JSON error when it was not stored. A stored
 * batch notes its node as live in @lv (for cluster @c, the token's), and
 * its Ack carries @c's live nodes when the agent wants them. */
void ingest_reply(const Sextant__V1__Batch *b, int rc, uint64_t acked_seq,
                  int64_t recv_ms, struct live *lv,
                  const struct collector_cluster *c, struct reply *r);

#endif
