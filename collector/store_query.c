/* store_query.c -- the read side: a pool of read-only connections, each
 * query's deadline, and the queries (timeline, clusters, names, latency)
 * rendered as the API's JSON. */
#include "store_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "jsonw.h"
#include "log.h"

#define STORE_TIMELINE_BYTES (64u << 20) /* reply cap */
/* Latency reply cap: STORE_LATENCY_MAX_POINTS points of some 100 bytes
 * each take 2 MiB; 16 MiB leaves room for long target and cluster names
 * while a reply still cannot grow without bound. */
#define STORE_LATENCY_BYTES  (16u << 20)

/* Takes an idle read-only connection, or opens one. */
static sqlite3 *store_reader_get(struct store *st)
{
    sqlite3 *db = NULL;

    pthread_mutex_lock(&st->rlock);
    if (st->n_readers > 0)
        db = st->readers[--st->n_readers];
    pthread_mutex_unlock(&st->rlock);
    if (db)
        return db;
    if (sqlite3_open_v2(st->path, &db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "read connection: %s",
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    return db;
}

static void store_reader_put(struct store *st, sqlite3 *db)
{
    sqlite3_progress_handler(db, 0, NULL, NULL);   /* its deadline is gone */
    pthread_mutex_lock(&st->rlock);
    if (st->n_readers < STORE_READERS) {
        st->readers[st->n_readers++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&st->rlock);
    sqlite3_close(db);
}

/* Hands the finished reply in @w to the caller: 0, or its error. */
static int store_json_take(struct jsonw *w, char **out, size_t *out_len)
{
    if (w->err)
        return w->err;
    *out = jsonw_take(w, out_len);
    return *out ? 0 : -ENOMEM;
}

/* An event's time on the collector's clock: agent time plus the agent's
 * current offset estimate (none yet: taken as 0). */
#define STORE_OFFSET_SQL "CAST(round(a.clock_offset_ms) AS INTEGER)"
#define STORE_CORRECTED_SQL \
    "(e.unix_ms + coalesce(" STORE_OFFSET_SQL ", 0))"
/* A typed probe's fields (schema 6: data IS NULL), the keys in the order
 * schema 5 stored them; the caller moves a non-empty error to the end
 * (see the events_full view in store_schema.c). */
#define STORE_PROBE_OBJ(answers) \
    "json_object('type', CASE e.probe_type WHEN 1 THEN 'http'" \
    "  WHEN 2 THEN 'tcp' WHEN 3 THEN 'dns' WHEN 4 THEN 'metric'" \
    "  WHEN 5 THEN 'kube' ELSE 'unknown' END," \
    "  'ok', json(CASE WHEN e.ok THEN 'true' ELSE 'false' END)," \
    "  'status', e.status, 'error', '', 'dns_us', e.dns_us," \
    "  'connect_us', e.connect_us, 'tls_us', e.tls_us," \
    "  'first_byte_us', e.first_byte_us, 'total_us', e.total_us," \
    "  'served_by', coalesce(r.name, '')," \
    "  'cert_not_after_ms', coalesce(c.not_after_ms, 0)" answers ")"
#define STORE_PROBE_FIELDS \
    "(CASE WHEN e.answers_id IS NULL THEN " STORE_PROBE_OBJ("") \
    " ELSE " STORE_PROBE_OBJ(", 'answers', json(an.text)") " END)"
#define STORE_TIMELINE_SELECT \
    "SELECT json_object(" \
    "  'cluster', a.cluster, 'region', a.region, 'node', a.node," \
    "  'epoch', printf('%016x', a.epoch), 'seq', e.seq," \
    "  'kind', k.name, 'target', tg.name," \
    "  'time_ms', e.unix_ms," \
    "  'time', strftime('%Y-%m-%dT%H:%M:%fZ', e.unix_ms / 1000.0," \
    "                   'unixepoch')," \
    "  'clock_offset_ms', " STORE_OFFSET_SQL "," \
    "  'corrected_ms', " STORE_CORRECTED_SQL "," \
    "  'corrected_time', strftime('%Y-%m-%dT%H:%M:%fZ'," \
    "                   " STORE_CORRECTED_SQL " / 1000.0, 'unixepoch')," \
    "  'received_ms', e.unix_ms + e.recv_delta_ms," \
    "  'fields', CASE WHEN e.data IS NOT NULL THEN" \
    "    CASE WHEN e.text_id IS NULL THEN json(e.data)" \
    "    ELSE json_set(e.data, CASE k.name WHEN 'state' THEN '$.reason'" \
    "                          ELSE '$.error' END, x.text) END" \
    "  WHEN e.text_id IS NULL THEN " STORE_PROBE_FIELDS \
    "  ELSE json_set(json_remove(" STORE_PROBE_FIELDS ", '$.error')," \
    "                '$.error', x.text) END)" \
    " FROM events e CROSS JOIN agents a ON a.id = e.agent_id" \
    " JOIN kinds k ON k.id = e.kind_id" \
    " LEFT JOIN targets tg ON tg.id = e.target_id" \
    " LEFT JOIN texts x ON x.id = e.text_id" \
    " LEFT JOIN regions r ON r.id = e.served_by_id" \
    " LEFT JOIN certs c ON c.id = e.cert_id" \
    " LEFT JOIN texts an ON an.id = e.answers_id"
/* events drives the join (CROSS JOIN keeps it outer): by time, or by
 * target or kind and time when those are given; a cluster filter is
 * checked row by row. Driven from agents instead, SQLite would fetch every
 * event of the cluster's agents in the window and sort them before the
 * LIMIT: ten times slower on 50 million events (bench/RESULTS.md). */
/* Filters on cluster, target and kind, added only when asked for (an
 * "?5 IS NULL OR ..." would keep SQLite off the target and kind indexes).
 * The name is bound; the id is looked up once. */
#define STORE_FILTER_CLUSTER " AND a.cluster = ?3"
#define STORE_FILTER_TARGET \
    " AND e.target_id = (SELECT id FROM targets WHERE name = ?5)"
#define STORE_FILTER_KIND \
    " AND e.kind_id = (SELECT id FROM kinds WHERE name = ?6)"
/* Several kinds (a comma-separated list): the (kind, time) index then
 * gives no one order, so only a list pays for the sort. */
#define STORE_FILTER_KINDS \
    " AND e.kind_id IN (SELECT id FROM kinds" \
    "   WHERE instr(',' || ?6 || ',', ',' || name || ',') > 0)"
/* Kinds without "probe" are all rows with JSON (schema 6): saying so
 * lets SQLite use the partial (kind, time) index. */
#define STORE_FILTER_JSON " AND e.data IS NOT NULL"

/* Whether the comma-separated kind list @k names "probe". */
static int store_kinds_probe(const char *k)
{
    size_t n = strlen("probe");

    for (const char *p = k; (p = strstr(p, "probe")) != NULL; p += n)
        if ((p == k || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* A reader's query stops when it runs past its deadline (query_ms): it holds an
 * HTTP thread and a read snapshot (which stops checkpoints). */
int store_query_progress(void *arg)
{
    return store_mono_ns() > *(const int64_t *)arg;
}

static void store_query_deadline(const struct store *st, sqlite3 *db,
                                 int64_t *until_ns)
{
    *until_ns = store_mono_ns() + st->opt.query_ms * 1000000;
    sqlite3_progress_handler(db, STORE_PROGRESS_OPS, store_query_progress,
                             until_ns);
}

/* The error of a failed query: -ETIMEDOUT past its deadline, -EUCLEAN
 * (and the corrupt state) on a damaged file, else -EIO. */
static int store_query_error(struct store *st, sqlite3 *db)
{
    if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
        return -ETIMEDOUT;
    return store_check_corrupt(st, db) ? -EUCLEAN : -EIO;
}

/* The end of a reply query: a failed prepare or step (-EIO) becomes its
 * error (see store_query_error), logged once under @what. Returns it. */
static int store_query_end(struct store *st, sqlite3 *db, int rc,
                           const char *what)
{
    if (rc == -EIO)
        rc = store_query_error(st, db);
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "%s: %s", what, sqlite3_errmsg(db));
    if (rc == -ETIMEDOUT)
        log_msg(LOGL_WARN, "store", "%s query stopped after %lld ms", what,
                (long long)st->opt.query_ms);
    return rc;
}

int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len)
{
    static const char agent_where[] =
        STORE_TIMELINE_SELECT
        " WHERE e.unix_ms >= ?1 AND e.unix_ms < ?2";
    static const char agent_order[] = " ORDER BY e.unix_ms, e.id LIMIT ?4";
    /* from/to are on the corrected clock too. The time index still
     * narrows the scan: no event is corrected by more than the largest
     * offset of any agent (one scalar subquery, run once). */
    static const char corrected_where[] =
        "WITH m AS (SELECT coalesce(max(abs("
        "    CAST(round(clock_offset_ms) AS INTEGER))), 0) AS ms FROM agents)"
        STORE_TIMELINE_SELECT
        " WHERE e.unix_ms >= ?1 - (SELECT ms FROM m)"
        "   AND e.unix_ms < ?2 + (SELECT ms FROM m)"
        "   AND " STORE_CORRECTED_SQL " >= ?1"
        "   AND " STORE_CORRECTED_SQL " < ?2";
    static const char corrected_order[] =
        " ORDER BY " STORE_CORRECTED_SQL ", e.id LIMIT ?4";
    int corrected = q->order == STORE_ORDER_CORRECTED;
    char sql[sizeof(corrected_where) + sizeof(corrected_order) + 256];
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    unsigned count = 0;
    int64_t until;
    sqlite3 *db;
    int rc = -EIO, step;

    /* Only constant fragments: every value is bound. */
    snprintf(sql, sizeof(sql), "%s%s%s%s%s%s",
             corrected ? corrected_where : agent_where,
             q->cluster ? STORE_FILTER_CLUSTER : "",
             q->target ? STORE_FILTER_TARGET : "",
             q->kind && !store_kinds_probe(q->kind) ? STORE_FILTER_JSON : "",
             !q->kind ? ""
             : strchr(q->kind, ',') ? STORE_FILTER_KINDS : STORE_FILTER_KIND,
             corrected ? corrected_order : agent_order);
    db = store_reader_get(st);
    if (!db)
        return -EIO;
    store_query_deadline(st, db, &until);
    jsonw_init(&w, STORE_TIMELINE_BYTES + 64);   /* room to close it */
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(s, 1, q->from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, q->to_ms) != SQLITE_OK ||
        (q->cluster &&
         sqlite3_bind_text(s, 3, q->cluster, -1, SQLITE_STATIC) !=
             SQLITE_OK) ||
        sqlite3_bind_int64(s, 4, (int64_t)q->limit + 1) != SQLITE_OK ||
        (q->target &&
         sqlite3_bind_text(s, 5, q->target, -1, SQLITE_STATIC) !=
             SQLITE_OK) ||
        (q->kind &&
         sqlite3_bind_text(s, 6, q->kind, -1, SQLITE_STATIC) != SQLITE_OK))
        goto out;
    jsonw_obj_begin(&w);
    jsonw_key(&w, "events");
    jsonw_arr_begin(&w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW && count < q->limit) {
        /* The reply stops at a whole row before its cap, marked truncated,
         * rather than failing: the caller narrows the window and goes on. */
        if (w.len + (size_t)sqlite3_column_bytes(s, 0) + 64 >
            STORE_TIMELINE_BYTES)
            break;
        jsonw_value(&w, (const char *)sqlite3_column_text(s, 0));
        count++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = store_query_error(st, db);
        goto out;
    }
    jsonw_arr_end(&w);
    jsonw_key(&w, "count");
    jsonw_uint(&w, count);
    jsonw_key(&w, "truncated");
    jsonw_bool(&w, step == SQLITE_ROW);  /* a row past the limit exists */
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    rc = store_query_end(st, db, rc, "timeline");
    jsonw_free(&w);
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}

int store_clusters_seen(struct store *st,
                        void (*fn)(void *ctx, const char *cluster,
                                   int64_t last_seen_ms),
                        void *ctx)
{
    sqlite3_stmt *s = NULL;
    sqlite3 *db;
    int rc = -EIO, step;

    db = store_reader_get(st);
    if (!db)
        return -EIO;
    if (sqlite3_prepare_v2(db, "SELECT cluster, max(last_seen_ms) FROM agents"
                           " GROUP BY cluster ORDER BY cluster", -1, &s,
                           NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0),
           sqlite3_column_int64(s, 1));
    if (step == SQLITE_DONE)
        rc = 0;
out:
    if (rc == -EIO)                 /* a prepare or a step failed */
        rc = store_query_error(st, db);
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "clusters: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}

int store_name_known(struct store *st, enum store_names which,
                     const char *name, store_name_fn fn, void *ctx)
{
    /* [which][0]: is it there; [which][1]: every name, for suggestions. */
    static const char *const sql[][2] = {
        [STORE_NAMES_CLUSTER] = {
            "SELECT 1 FROM clusters WHERE name = ?1",
            "SELECT name FROM clusters ORDER BY name" },
        [STORE_NAMES_TARGET] = {
            "SELECT 1 FROM targets WHERE name = ?1",
            "SELECT name FROM targets ORDER BY name" },
        [STORE_NAMES_KIND] = {
            "SELECT 1 FROM kinds WHERE name = ?1",
            "SELECT name FROM kinds ORDER BY name" },
    };
    sqlite3_stmt *s = NULL;
    int64_t until;
    sqlite3 *db;
    int rc = -EIO, step;

    db = store_reader_get(st);
    if (!db)
        return -EIO;
    store_query_deadline(st, db, &until);
    if (sqlite3_prepare_v2(db, sql[which][0], -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = store_query_error(st, db);
        goto out;
    }
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rc = 1;
        goto out;
    }
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, db);
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!fn) {
        rc = 0;
        goto out;
    }
    if (sqlite3_prepare_v2(db, sql[which][1], -1, &s, NULL) != SQLITE_OK) {
        rc = store_query_error(st, db);
        goto out;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0));
    rc = step == SQLITE_DONE ? 0 : store_query_error(st, db);
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "names: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}

/* Writes one point of a latency series; @h holds its successful probes. */
static void store_point(struct jsonw *w, int64_t t, uint64_t count,
                        uint64_t failures, const struct hist *h)
{
    static const struct {
        const char *key;
        double q;
    } qs[] = { { "p50_ms", 0.5 }, { "p95_ms", 0.95 }, { "p99_ms", 0.99 } };

    jsonw_obj_begin(w);
    jsonw_key(w, "t");
    jsonw_int(w, t);
    jsonw_key(w, "count");
    jsonw_uint(w, count);
    jsonw_key(w, "failures");
    jsonw_uint(w, failures);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        jsonw_key(w, qs[i].key);
        if (hist_count(h) == 0)
            jsonw_null(w);
        else
            jsonw_double(w, hist_quantile(h, qs[i].q) / 1000.0);
    }
    jsonw_obj_end(w);
}

int store_latency(struct store *st, const struct store_latency_query *q,
                  char **out, size_t *out_len)
{
    /* [hour][cluster given]: one cluster walks the primary key's range;
     * every cluster, the (target_id, t) index. */
#define STORE_LATENCY_SQL(table, cluster) \
        "SELECT t, count, failures, hist FROM " table \
        " WHERE target_id = (SELECT id FROM targets WHERE name = ?1)" \
        cluster " AND t >= ?3 AND t < ?4 ORDER BY t"
#define STORE_LATENCY_CLUSTER \
        " AND cluster_id = (SELECT id FROM clusters WHERE name = ?2)"
    static const char *const sql[2][2] = {
        { STORE_LATENCY_SQL("rollup_minute", ""),
          STORE_LATENCY_SQL("rollup_minute", STORE_LATENCY_CLUSTER) },
        { STORE_LATENCY_SQL("rollup_hour", ""),
          STORE_LATENCY_SQL("rollup_hour", STORE_LATENCY_CLUSTER) },
    };
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    int64_t from = store_floor(q->from_ms, step_ms), t = 0;
    uint64_t count = 0, failures = 0;
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    struct hist h;
    int have = 0, rc = -EIO, step;
    int64_t until;
    sqlite3 *db;

    if (q->to_ms <= q->from_ms ||
        (q->to_ms - from) / step_ms >= (int64_t)STORE_LATENCY_MAX_POINTS)
        return -E2BIG;
    db = store_reader_get(st);
    if (!db)
        return -EIO;
    store_query_deadline(st, db, &until);
    hist_init(&h);
    jsonw_init(&w, STORE_LATENCY_BYTES);
    if (sqlite3_prepare_v2(db, sql[q->step == STORE_STEP_HOUR][!!q->cluster],
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_text(s, 1, q->target, -1, SQLITE_STATIC) != SQLITE_OK ||
        (q->cluster &&
         sqlite3_bind_text(s, 2, q->cluster, -1, SQLITE_STATIC) !=
             SQLITE_OK) ||
        sqlite3_bind_int64(s, 3, from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, q->to_ms) != SQLITE_OK)
        goto out;
    jsonw_obj_begin(&w);
    jsonw_key(&w, "target");
    jsonw_str(&w, q->target);
    jsonw_key(&w, "cluster");
    if (q->cluster)
        jsonw_str(&w, q->cluster);
    else
        jsonw_null(&w);
    jsonw_key(&w, "step_ms");
    jsonw_int(&w, step_ms);
    jsonw_key(&w, "points");
    jsonw_arr_begin(&w);
    /* Rows come by time; with every cluster asked for, the rows of one
     * step (one per cluster) merge into one point. */
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t rt = sqlite3_column_int64(s, 0);

        if (have && rt != t) {
            store_point(&w, t, count, failures, &h);
            hist_reset(&h);
            count = failures = 0;
        }
        t = rt;
        have = 1;
        count += (uint64_t)sqlite3_column_int64(s, 1);
        failures += (uint64_t)sqlite3_column_int64(s, 2);
        if (hist_merge_blob(&h, sqlite3_column_blob(s, 3),
                            (size_t)sqlite3_column_bytes(s, 3)) < 0)
            log_msg(LOGL_WARN, "store", "latency: bad histogram at %lld "
                    "skipped", (long long)rt);
    }
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, db);
        goto out;
    }
    if (have)
        store_point(&w, t, count, failures, &h);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    rc = store_query_end(st, db, rc, "latency");
    jsonw_free(&w);
    hist_free(&h);
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}
