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

struct topology;

/* Parses a time as Unix milliseconds ("1764090000000") or RFC 3339
 * ("2026-11-25T17:00:00Z", "2026-12-04T22:00:00+02:00", "-05:30"; a
 * fraction optional, of which milliseconds count; "t" and "z" may be
 * lower case; no other zone, and nothing after it). 0 or -EINVAL. */
int api_parse_time(const char *s, int64_t *out_ms);

/* GET /api/v1/timeline?from=&to=&cluster=&region=&service=&target=&kind=
 * &limit=&order=&cursor=&format= into @r (200 JSON, CSV or Markdown, or a
 * 400 naming the bad parameter, or 503). A cluster, target or kind the
 * store has never seen, or a service not in @topo (the config's), is a
 * 400 naming it with the close names; kind takes a comma-separated list
 * of kinds (any of them matches); region is the agents' region (an
 * unknown one matches nothing). order=agent (default) sorts and filters
 * by each agent's own clock, order=corrected by agent time plus the
 * agent's clock offset. The reply's next (and its X-Next-Cursor header,
 * for every format) is the cursor= of the next page; a cursor that is
 * not one is a 400. @now_ms sets the defaults: the last hour. */
void api_timeline(struct store *st, const struct topology *topo,
                  const struct api_param *params, size_t n_params,
                  int64_t now_ms, struct reply *r);

/* GET /api/v1/latency?target=&service=&region=&cluster=&from=&to=
 * &step=minute|hour into @r: per step, probe count, failures and
 * p50/p95/p99 of the successful probes' total time (ms), from the
 * rollups (see store_latency). One target, or a service of @topo: its
 * regions' targets merged, or with region= only that region's (region
 * needs service). No cluster: every cluster's probes merged. Defaults:
 * the last hour, per minute. Unknown names: as api_timeline. */
void api_latency(struct store *st, const struct topology *topo,
                 const struct api_param *params, size_t n_params,
                 int64_t now_ms, struct reply *r);

/* GET /api/v1/clusters (api_clusters.c): store_clusters' reply; takes
 * no parameter (a 400 names one). */
void api_clusters(struct store *st, const struct api_param *params,
                  size_t n_params, struct reply *r);

#endif
