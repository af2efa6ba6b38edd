/* metrics.h -- the collector's own counters in one process-wide registry,
 * and the /metrics page in the Prometheus text format (0.0.4), which adds
 * the store's figures (store_stats, store_clusters_seen, the agents'
 * reported spool backlogs from store_clusters, and the services' derived
 * state from store_service_status) at scrape time.
 * Does not serve HTTP (server.c) or decide readiness.
 *
 * Threads: every counter is a C11 atomic bumped with a relaxed add, so the
 * HTTP threads never take a lock or allocate to count; any thread may
 * render. A page is not one snapshot: a counter may move between two
 * lines, which Prometheus tolerates. */
#ifndef SEXTANT_COLLECTOR_METRICS_H
#define SEXTANT_COLLECTOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define METRICS_PAGE_MAX (1u << 20)     /* bytes of one /metrics page */

/* The "route" label of sextant_collector_http_requests_total. */
enum metrics_route {
    METRICS_ROUTE_INGEST,
    METRICS_ROUTE_TIMELINE,
    METRICS_ROUTE_LATENCY,
    METRICS_ROUTE_HEALTHZ,
    METRICS_ROUTE_READYZ,
    METRICS_ROUTE_METRICS,
    METRICS_ROUTE_STATUS,       /* /api/v1/status */
    METRICS_ROUTE_SERVICES,     /* /api/v1/services[/{name}] */
    METRICS_ROUTE_INCIDENTS,    /* /api/v1/incidents[/{id}[/export]] */
    METRICS_ROUTE_ANNOTATIONS,  /* POST /api/v1/annotations */
    METRICS_ROUTE_CLUSTERS,     /* /api/v1/clusters */
    METRICS_ROUTE_DASHBOARD,    /* / and /index.html: the dashboard's page */
    METRICS_ROUTE_ASSETS,       /* /assets/...: its scripts, styles, icons */
    METRICS_ROUTE_OTHER,        /* 404s and anything unrouted */
    METRICS_N_ROUTES
};

/* The "reason" label of sextant_collector_ingest_rejected_total: why a
 * POST /v1/ingest got no 200. */
enum metrics_reject {
    METRICS_REJ_UNAUTHORIZED,       /* 401: token or client certificate */
    METRICS_REJ_FORBIDDEN,          /* 403: client certificate */
    METRICS_REJ_WRONG_CLUSTER,      /* 403: batch of another cluster */
    METRICS_REJ_UNSUPPORTED_MEDIA,  /* 415 */
    METRICS_REJ_LENGTH_REQUIRED,    /* 411 */
    METRICS_REJ_TOO_LARGE,          /* 413, or a body over the cap */
    METRICS_REJ_MALFORMED,          /* 400 */
    METRICS_REJ_METHOD,             /* 405 */
    METRICS_REJ_BUSY,               /* 503: writer queue full, not ready */
    METRICS_REJ_STORE_ERROR,        /* 503: the commit failed */
    METRICS_REJ_NO_MEMORY,          /* 503 */
    METRICS_REJ_STOPPING,           /* 503: the collector is stopping */
    METRICS_REJ_INTERNAL,           /* 500 */
    METRICS_N_REJECTS
};

/* One response sent on @route with HTTP @status. Any thread. */
void metrics_http_request(enum metrics_route route, unsigned status);
/* A batch of @events events, @body_bytes compressed, is stored. */
void metrics_ingest_stored(size_t events, size_t body_bytes);
void metrics_ingest_rejected(enum metrics_reject why);

struct webhook;
/* The webhook sender whose counters the page shows (webhook.h; NULL:
 * none, its counters show 0). Any thread; the sender must outlive its
 * setting (set NULL before webhook_stop). */
void metrics_set_webhook(struct webhook *wh);

/* Renders the page, with the store's stats of @st and each cluster's age
 * relative to @now_ms. Caller frees *out. 0, -ENOMEM, or -EMSGSIZE over
 * METRICS_PAGE_MAX. */
int metrics_render(struct store *st, int64_t now_ms, char **out,
                   size_t *out_len);

#endif
