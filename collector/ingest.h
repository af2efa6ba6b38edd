/* ingest.h -- turns one POST /v1/ingest body into a stored batch and the
 * reply for it. Knows nothing of HTTP framing (server.c reads the body and
 * checks headers); knows the order of checks and the status of each. */
#ifndef SEXTANT_INGEST_H
#define SEXTANT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reply.h"
#include "store.h"

/* Decodes @body (deflated Batch) sent with the token of @cluster, checks
 * the batch names that cluster, stores it and fills @r: an Ack on 200. Never fails
 * without a reply: errors become 400/403/413/500/503 with a JSON body. */
void ingest_handle(const struct collector_config *cfg, struct store *st,
                   const struct collector_cluster *cluster,
                   const uint8_t *body, size_t len, struct reply *r);

#endif
