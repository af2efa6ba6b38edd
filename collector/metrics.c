/* metrics.c -- the collector's counters (static atomics, relaxed adds) and
 * the renderer of /metrics. The store's figures (its stats, the clusters'
 * ages and agents' spool backlogs, the services' state) are read at
 * scrape time, not mirrored here. The page is built in a jsonw buffer
 * used as plain capped text. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "webhook.h"

/* The statuses the collector answers with; anything else is counted as
 * code="other". A fixed table keeps counting lock-free. */
static const unsigned metrics_codes[] = {
    200, 201, 304, 400, 401, 403, 404, 405, 411, 413, 415, 500, 503,
};
#define METRICS_N_CODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]))

static const char *const metrics_route_names[METRICS_N_ROUTES] = {
    "ingest", "timeline", "latency", "healthz", "readyz", "metrics",
    "status", "services", "incidents", "annotations", "clusters",
    "dashboard", "assets", "other",
};

static const char *const metrics_reject_names[METRICS_N_REJECTS] = {
    "unauthorized", "forbidden", "wrong_cluster", "unsupported_media",
    "length_required", "too_large", "malformed", "method_not_allowed",
    "busy", "store_error", "out_of_memory", "stopping", "internal",
};

/* Static, so it exists before main() and nothing ever frees it. */
static struct {
    atomic_uint_fast64_t http[METRICS_N_ROUTES][METRICS_N_CODES + 1];
    atomic_uint_fast64_t batches;
    atomic_uint_fast64_t events;
    atomic_uint_fast64_t bytes;
    atomic_uint_fast64_t rejected[METRICS_N_REJECTS];
} metrics;

/* The webhook sender whose counters the page adds; NULL: none. */
static _Atomic(struct webhook *) metrics_webhook;

#define M_ADD(field, n) \
    atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define M_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

void metrics_http_request(enum metrics_route route, unsigned status)
{
    size_t i = 0;

    if ((unsigned)route >= METRICS_N_ROUTES)
        route = METRICS_ROUTE_OTHER;
    while (i < METRICS_N_CODES && metrics_codes[i] != status)
        i++;
    M_ADD(metrics.http[route][i], 1);       /* i == N: "other" */
}

void metrics_set_webhook(struct webhook *wh)
{
    atomic_store(&metrics_webhook, wh);
}

void metrics_ingest_stored(size_t events, size_t body_bytes)
{
    M_ADD(metrics.batches, 1);
    M_ADD(metrics.events, events);
    M_ADD(metrics.bytes, body_bytes);
}

void metrics_ingest_rejected(enum metrics_reject why)
{
    if ((unsigned)why < METRICS_N_REJECTS)
        M_ADD(metrics.rejected[why], 1);
}

/* -- rendering -- */

__attribute__((format(printf, 2, 3)))
static void metrics_put(struct jsonw *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        w->err = -EMSGSIZE;             /* never cut a line in half */
        return;
    }
    jsonw_raw(w, line, (size_t)n);
}

static void metrics_family(struct jsonw *w, const char *name,
                           const char *type, const char *help)
{
    metrics_put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: backslash, quote and newline
 * escaped. Cluster names come from the config, but the page must not
 * depend on that. */
static void metrics_label(struct jsonw *w, const char *v)
{
    const char *run = v;

    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\""
                        : *v == '\n' ? "\\n" : NULL;

        if (!esc)
            continue;
        jsonw_raw(w, run, (size_t)(v - run));
        jsonw_raw(w, esc, 2);
        run = v + 1;
    }
    jsonw_raw(w, run, (size_t)(v - run));
}

static void metrics_one(struct jsonw *w, const char *name, const char *type,
                        const char *help, uint64_t v)
{
    metrics_family(w, name, type, help);
    metrics_put(w, "%s %" PRIu64 "\n", name, v);
}

static void metrics_http(struct jsonw *w)
{
    metrics_family(w, "sextant_collector_http_requests_total", "counter",
                   "HTTP responses sent, by route and status code.");
    for (size_t r = 0; r < METRICS_N_ROUTES; r++) {
        for (size_t c = 0; c <= METRICS_N_CODES; c++) {
            uint64_t v = M_GET(metrics.http[r][c]);
            char code[16];

            /* Only pairs that happened: most of the 84 never do. */
            if (v == 0)
                continue;
            if (c < METRICS_N_CODES)
                snprintf(code, sizeof(code), "%u", metrics_codes[c]);
            else
                snprintf(code, sizeof(code), "other");
            metrics_put(w, "sextant_collector_http_requests_total{route=\"%s"
                        "\",code=\"%s\"} %" PRIu64 "\n",
                        metrics_route_names[r], code, v);
        }
    }
}

static void metrics_ingest(struct jsonw *w)
{
    metrics_one(w, "sextant_collector_ingest_batches_total", "counter",
                "Batches stored (answered 200).", M_GET(metrics.batches));
    metrics_one(w, "sextant_collector_ingest_events_total", "counter",
                "Events in the batches stored.", M_GET(metrics.events));
    metrics_one(w, "sextant_collector_ingest_bytes_total", "counter",
                "Compressed request body bytes of the batches stored.",
                M_GET(metrics.bytes));
    /* Every reason, zero or not: rate() works from the first scrape. */
    metrics_family(w, "sextant_collector_ingest_rejected_total", "counter",
                   "Ingest requests refused, by reason.");
    for (size_t i = 0; i < METRICS_N_REJECTS; i++)
        metrics_put(w, "sextant_collector_ingest_rejected_total{reason="
                    "\"%s\"} %" PRIu64 "\n", metrics_reject_names[i],
                    M_GET(metrics.rejected[i]));
}

/* A histogram from cumulative counts per bound; the slot after the last
 * bound is +Inf (= the count). */
static void metrics_histogram(struct jsonw *w, const char *name,
                              const char *help, const double *le,
                              const uint64_t *cum, size_t n_le,
                              const char *sum)
{
    metrics_family(w, name, "histogram", help);
    for (size_t i = 0; i < n_le; i++)
        metrics_put(w, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, le[i],
                    cum[i]);
    metrics_put(w, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum[n_le]);
    metrics_put(w, "%s_sum %s\n", name, sum);
    metrics_put(w, "%s_count %" PRIu64 "\n", name, cum[n_le]);
}

static void metrics_store(struct jsonw *w, const struct store_stats *s)
{
    char sum[64];

    metrics_one(w, "sextant_collector_ready", "gauge",
                "1 when the database is migrated, sound and committing, "
                "and the writer queue is below its high-water mark (as "
                "/readyz).",
                s->ready && !s->overloaded && !s->corrupt &&
                !s->commits_failing);
    metrics_one(w, "sextant_collector_store_corrupt", "gauge",
                "1 when the database file was found damaged: restore it "
                "from a backup.", s->corrupt);
    /* Only where there is such a role: a gauge stuck at 0 on SQLite
     * would read as "no collector leads". */
    if (s->leader >= 0)
        metrics_one(w, "sextant_collector_store_leader", "gauge",
                    "1 while this collector leads on the shared PostgreSQL "
                    "database (retention, partitions, incidents).",
                    s->leader);
    metrics_one(w, "sextant_collector_commits_failing", "gauge",
                "1 while the last group commit stored nothing (disk "
                "full, I/O error).", s->commits_failing);
    snprintf(sum, sizeof(sum), "%" PRIu64, s->group_batches_sum);
    metrics_histogram(w, "sextant_collector_commit_batches",
                      "Batches per group commit.", store_group_batches_le,
                      s->group_batches_le, STORE_GROUP_BUCKETS, sum);
    snprintf(sum, sizeof(sum), "%.6f", s->commit_seconds_sum);
    metrics_histogram(w, "sextant_collector_commit_duration_seconds",
                      "Time of each group commit, durable on disk.",
                      store_commit_seconds_le, s->commit_seconds_le,
                      STORE_COMMIT_BUCKETS, sum);
    metrics_one(w, "sextant_collector_commit_failures_total", "counter",
                "Group commits that failed (their batches got 503).",
                s->commit_failures);
    metrics_one(w, "sextant_collector_writer_queue_batches", "gauge",
                "Batches waiting for the writer.", s->queue_batches);
    metrics_one(w, "sextant_collector_writer_queue_bytes", "gauge",
                "Memory held by the batches waiting for the writer.",
                s->queue_bytes);
    metrics_one(w, "sextant_collector_writer_queue_high_water_batches",
                "gauge", "Queued batches over which ingest answers 503 "
                "(limits.queue_batches).", s->queue_max_batches);
    metrics_one(w, "sextant_collector_writer_queue_high_water_bytes",
                "gauge", "Queued bytes over which ingest answers 503 "
                "(limits.queue_bytes).", s->queue_max_bytes);
    metrics_one(w, "sextant_collector_retention_deleted_rows_total",
                "counter", "Rows deleted by retention.",
                s->retention_deleted);
    metrics_one(w, "sextant_collector_incident_replays_total", "counter",
                "Incident engine replays from a snapshot (late events, "
                "or a broken engine).", s->incident_replays);
    metrics_one(w, "sextant_collector_incident_engine_recoveries_total",
                "counter", "Replays that replaced an incident engine "
                "that ran out of memory in a step.", s->incident_recoveries);
    metrics_family(w, "sextant_collector_database_bytes", "gauge",
                   "Size of the database file and its WAL on disk.");
    metrics_put(w, "sextant_collector_database_bytes %" PRId64 "\n",
                s->db_bytes);
}

struct metrics_seen {
    struct jsonw *w;
    int64_t now_ms;
};

static void metrics_cluster(void *ctx, const char *cluster,
                            int64_t last_seen_ms)
{
    struct metrics_seen *ms = ctx;
    int64_t age = ms->now_ms - last_seen_ms;

    if (age < 0)                        /* our clock stepped back */
        age = 0;
    metrics_put(ms->w, "sextant_collector_cluster_last_seen_age_seconds"
                "{cluster=\"");
    metrics_label(ms->w, cluster);
    metrics_put(ms->w, "\"} %" PRId64 ".%03" PRId64 "\n", age / 1000,
                age % 1000);
}

/* A json-c member's string, or "" (also when @o is not an object). */
static const char *metrics_jstr(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

/* One sample "NAME{service="S"[,region="R"]} V". */
static void metrics_service_line(struct jsonw *w, const char *name,
                                 const char *service, const char *region,
                                 int v)
{
    metrics_put(w, "%s{service=\"", name);
    metrics_label(w, service);
    if (region) {
        metrics_put(w, "\",region=\"");
        metrics_label(w, region);
    }
    metrics_put(w, "\"} %d\n", v);
}

/* Writes gauge family @name with the samples built apart in @fam (a
 * family is written whole, so families read from one reply are built
 * side by side and joined here), passes on its error, and frees @fam.
 * metrics_services() could join its three this way too. */
static void metrics_gauges(struct jsonw *w, struct jsonw *fam,
                           const char *name, const char *help)
{
    metrics_family(w, name, "gauge", help);
    jsonw_raw(w, fam->buf ? fam->buf : "", fam->len);
    if (fam->err && !w->err)
        w->err = fam->err;
    jsonw_free(fam);
}

/* One sample "NAME{cluster="C",node="N"} V" of an agent's @key in its
 * reported spool object @spool. */
static void metrics_spool_line(struct jsonw *w, const char *name,
                               const char *cluster, const char *node,
                               struct json_object *spool, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(spool, key, &v))
        return;
    metrics_put(w, "%s{cluster=\"", name);
    metrics_label(w, cluster);
    metrics_put(w, "\",node=\"");
    metrics_label(w, node);
    metrics_put(w, "\"} %" PRId64 "\n", json_object_get_int64(v));
}

/* Per agent (its latest epoch, as GET /api/v1/clusters shows it), the
 * spool backlog its latest batch reported: one series per (cluster,
 * node), none for an agent that never said. Read from store_clusters()'
 * reply, so the page and the API cannot disagree; a store that cannot
 * say leaves the families empty. */
static void metrics_agents(struct jsonw *w, struct store *st)
{
    struct json_object *o = NULL, *cl, *regs, *ags, *a, *spool;
    struct jsonw fam[2];
    char *json = NULL;
    size_t len = 0;

    for (size_t i = 0; i < 2; i++)
        jsonw_init(&fam[i], METRICS_PAGE_MAX);
    if (store_clusters(st, &json, &len) == 0 && len <= INT32_MAX)
        o = json_tokener_parse(json);
    free(json);
    if (!o || !json_object_object_get_ex(o, "clusters", &cl))
        cl = NULL;
    for (size_t i = 0; cl && i < json_object_array_length(cl); i++) {
        struct json_object *c = json_object_array_get_idx(cl, i);

        if (!json_object_object_get_ex(c, "regions", &regs))
            continue;
        for (size_t j = 0; j < json_object_array_length(regs); j++) {
            struct json_object *r = json_object_array_get_idx(regs, j);

            if (!json_object_object_get_ex(r, "agents", &ags))
                continue;
            for (size_t k = 0; k < json_object_array_length(ags); k++) {
                a = json_object_array_get_idx(ags, k);
                if (!json_object_object_get_ex(a, "spool", &spool) ||
                    !json_object_is_type(spool, json_type_object))
                    continue;
                metrics_spool_line(&fam[0],
                                   "sextant_collector_agent_spool_events",
                                   metrics_jstr(c, "name"),
                                   metrics_jstr(a, "node"), spool, "events");
                metrics_spool_line(&fam[1],
                                   "sextant_collector_agent_spool_bytes",
                                   metrics_jstr(c, "name"),
                                   metrics_jstr(a, "node"), spool, "bytes");
            }
        }
    }
    json_object_put(o);
    metrics_gauges(w, &fam[0], "sextant_collector_agent_spool_events",
                   "Events the agent held for this collector (not yet "
                   "acked) when it sent its latest batch.");
    metrics_gauges(w, &fam[1], "sextant_collector_agent_spool_bytes",
                   "Packed bytes of those events.");
}

/* One service of store_service_status's reply: its regions' health and
 * serving into @health and @serving, its open incidents into @open. */
static void metrics_service(struct json_object *svc, struct jsonw *health,
                            struct jsonw *serving, struct jsonw *open)
{
    const char *name = metrics_jstr(svc, "name"), *h;
    struct json_object *regions, *reg, *v;

    if (json_object_object_get_ex(svc, "regions", &regions) &&
        json_object_is_type(regions, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(regions); i++) {
            reg = json_object_array_get_idx(regions, i);
            h = metrics_jstr(reg, "health");
            metrics_service_line(health, "sextant_collector_region_healthy",
                                 name, metrics_jstr(reg, "name"),
                                 strcmp(h, "healthy") == 0 ? 1
                                 : strcmp(h, "unhealthy") == 0 ? 0 : -1);
            metrics_service_line(serving, "sextant_collector_region_serving",
                                 name, metrics_jstr(reg, "name"),
                                 json_object_object_get_ex(reg, "serving",
                                                           &v) &&
                                     json_object_get_boolean(v));
        }
    }
    metrics_service_line(open, "sextant_collector_open_incidents", name,
                         NULL, json_object_object_get_ex(svc,
                                                         "open_incident",
                                                         &v) &&
                                   v != NULL);
}

/* The incident engine's state now (store_service_status): per service
 * and region, health (1 healthy, 0 unhealthy, -1 unknown: no agent that
 * is not stale probes it) and serving (1: the global name's answers
 * point there), per service its open incidents, and whether the engine
 * still catches up with the history after a start. Each family is
 * written whole, so the three are built apart and joined. A store that
 * cannot say leaves the families empty; the rest of the page serves. */
static void metrics_services(struct jsonw *w, struct store *st)
{
    struct json_object *o = NULL, *list, *v;
    struct jsonw fam[3];
    char *json = NULL;
    size_t len = 0;
    int catching = 0;

    for (size_t i = 0; i < 3; i++)
        jsonw_init(&fam[i], METRICS_PAGE_MAX);
    if (store_service_status(st, &json, &len) == 0 && len <= INT32_MAX)
        o = json_tokener_parse(json);
    free(json);
    if (o && json_object_object_get_ex(o, "services", &list) &&
        json_object_is_type(list, json_type_array))
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            struct json_object *svc = json_object_array_get_idx(list, i);

            metrics_service(svc, &fam[0], &fam[1], &fam[2]);
            if (json_object_object_get_ex(svc, "catching_up", &v) &&
                json_object_get_boolean(v))
                catching = 1;
        }
    json_object_put(o);
    metrics_family(w, "sextant_collector_region_healthy", "gauge",
                   "1 when a region of a service is healthy by quorum of "
                   "the agents probing it, 0 unhealthy, -1 unknown (no "
                   "agent that is not stale probes it).");
    jsonw_raw(w, fam[0].buf ? fam[0].buf : "", fam[0].len);
    metrics_family(w, "sextant_collector_region_serving", "gauge",
                   "1 when the service's global name sends traffic to the "
                   "region, as the agents' DNS answers say.");
    jsonw_raw(w, fam[1].buf ? fam[1].buf : "", fam[1].len);
    metrics_family(w, "sextant_collector_open_incidents", "gauge",
                   "Incidents of the service that are open now.");
    jsonw_raw(w, fam[2].buf ? fam[2].buf : "", fam[2].len);
    metrics_family(w, "sextant_collector_incidents_catching_up", "gauge",
                   "1 while the incident engine is rebuilt from the stored "
                   "history after a start (regions unknown, incidents as "
                   "the last run wrote them), else 0.");
    metrics_put(w, "sextant_collector_incidents_catching_up %d\n", catching);
    for (size_t i = 0; i < 3; i++) {
        if (fam[i].err && !w->err)
            w->err = fam[i].err;
        jsonw_free(&fam[i]);
    }
}

int metrics_render(struct store *st, int64_t now_ms, char **out,
                   size_t *out_len)
{
    struct store_stats s;
    struct jsonw w;
    struct metrics_seen ms = { .w = &w, .now_ms = now_ms };
    char *page;

    jsonw_init(&w, METRICS_PAGE_MAX);
    metrics_family(&w, "sextant_collector_build_info", "gauge",
                   "Always 1; the collector's version is in the label.");
    metrics_put(&w, "sextant_collector_build_info{version=\"");
    metrics_label(&w, SEXTANT_VERSION);
    metrics_put(&w, "\"} 1\n");
    metrics_http(&w);
    metrics_ingest(&w);
    store_stats(st, &s);
    metrics_store(&w, &s);
    metrics_family(&w, "sextant_collector_cluster_last_seen_age_seconds",
                   "gauge", "Seconds since any agent of the cluster last "
                   "sent a batch.");
    /* A failed read leaves the family empty; the rest still serves. */
    store_clusters_seen(st, metrics_cluster, &ms);
    metrics_services(&w, st);
    metrics_agents(&w, st);
    webhook_metrics(atomic_load(&metrics_webhook), &w);
    page = jsonw_take(&w, out_len);
    if (!page)
        return w.err ? w.err : -ENOMEM;
    *out = page;
    return 0;
}
