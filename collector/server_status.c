/* server_status.c -- the collector's own pages: /healthz (the process
 * answers), /readyz (the store takes batches, or why not) and /metrics
 * (Prometheus text). Each fills a struct reply; server_route.c sends it. */
#include "server_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A 200 with a fixed JSON body. */
void server_ok_json(struct reply *r, const char *json)
{
    r->status = 200;
    r->content_type = "application/json";
    r->body = (uint8_t *)strdup(json);
    r->len = r->body ? strlen(json) : 0;
}

/* GET /readyz: ready for batches, or 503 naming why (and when to ask
 * again). */
void server_readyz(struct server *srv, struct server_req *rq,
                   struct reply *r)
{
    struct store_stats s;
    char detail[sizeof(s.commit_error) + 64];

    store_stats(srv->st, &s);
    if (atomic_load(&srv->stopping)) {
        reply_error(r, 503, "not ready", "the collector is stopping");
    } else if (s.corrupt) {
        store_corrupt_detail(srv->st, detail, sizeof(detail));
        reply_error(r, 503, "not ready", detail);
    } else if (s.unavailable) {
        /* commit_error: "database unreachable: " and libpq's reason. */
        rq->retry_after = SERVER_RETRY_BUSY;
        reply_error(r, 503, "not ready", s.commit_error);
    } else if (!s.ready) {
        rq->retry_after = SERVER_RETRY_START;
        reply_error(r, 503, "not ready", "the database is migrating");
    } else if (s.overloaded) {
        rq->retry_after = SERVER_RETRY_BUSY;
        snprintf(detail, sizeof(detail), "writer queue over its high-water "
                 "mark: %llu of %llu batches, %llu of %llu bytes",
                 (unsigned long long)s.queue_batches,
                 (unsigned long long)s.queue_max_batches,
                 (unsigned long long)s.queue_bytes,
                 (unsigned long long)s.queue_max_bytes);
        reply_error(r, 503, "not ready", detail);
    } else if (s.commits_failing) {
        snprintf(detail, sizeof(detail), "commits failing: %s",
                 s.commit_error);
        reply_error(r, 503, "not ready", detail);
    } else {
        server_ok_json(r, "{\"status\":\"ready\"}");
    }
}

void server_metrics(struct server *srv, struct reply *r)
{
    char *page = NULL;
    size_t len = 0;

    if (metrics_render(srv->st, util_now_ms(), &page, &len) < 0) {
        reply_error(r, 500, "internal error", "cannot render the metrics");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    r->body = (uint8_t *)page;
    r->len = len;
}
