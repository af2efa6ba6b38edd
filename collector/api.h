/* api.h -- the JSON query API under /api/v1/. Parses and checks query
 * parameters, runs the query on the store, renders the reply. Knows
 * nothing of libmicrohttpd: server_route.c hands it the parameters. */
#ifndef SEXTANT_API_H
#define SEXTANT_API_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"
#include "store.h"
#include "topology.h"

/* One query-string parameter, borrowed from the HTTP layer, unescaped.
 * The lengths count every byte: a key or value holding a NUL (%00) or
 * bytes that are not UTF-8 is refused, naming it. */
struct api_param {
    const char *key;
    size_t key_len;
    const char *value;      /* NULL for "?flag" without '=' */
    size_t value_len;
};

/* Parses a time as Unix milliseconds ("1764090000000") or RFC 3339 UTC
 * ("2026-11-25T17:00:00Z", fraction optional). 0 or -EINVAL. */
int api_parse_time(const char *s, int64_t *out_ms);

/* GET /api/v1/timeline?from=&to=&cluster=&target=&kind=&limit=&order=
 * into @r (200 JSON, or a 400 naming the bad parameter, or 503). A
 * cluster, target or kind the store has never seen is a 400 naming it
 * with the close names it knows; kind takes a comma-separated list of
 * kinds (any of them matches). order=agent (default)
 * sorts and filters by each agent's own clock, order=corrected by agent
 * time plus the agent's clock offset. @now_ms sets the defaults: the last
 * hour. */
void api_timeline(struct store *st, const struct api_param *params,
                  size_t n_params, int64_t now_ms, struct reply *r);

/* GET /api/v1/latency?target=&cluster=&from=&to=&step=minute|hour into
 * @r: per step, probe count, failures and p50/p95/p99 of the successful
 * probes' total time (ms), from the rollups (see store_latency). No
 * cluster: every cluster's probes of the target merged. Defaults: the
 * last hour, per minute. Unknown names: as api_timeline. */
void api_latency(struct store *st, const struct api_param *params,
                 size_t n_params, int64_t now_ms, struct reply *r);

/* GET /api/v1/clusters (api_clusters.c): store_clusters' reply; takes
 * no parameter (a 400 names one). */
void api_clusters(struct store *st, const struct api_param *params,
                  size_t n_params, struct reply *r);

#endif
