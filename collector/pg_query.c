/* pg_query.c -- store.h's queries on PostgreSQL but the timeline
 * (pg_tl.c) and the incidents' (pg_incident.c): the read pool, clusters,
 * names, latency, the targets' status and windows. Each fetches plain
 * columns and renders them with the SQLite backend's own C (store_priv.h's
 * neutral rendering), so both answer the same bytes for the same rows.
 * Names are ordered COLLATE "C": byte order, as SQLite's. Reads only. */
#include "store_pg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "store_priv.h"

/* A histogram blob's bytes at most (HIST_MAX_BUCKETS varint pairs and a
 * head need far less): a longer one is a bad histogram, skipped. */
#define PGQ_HIST_MAX (64u << 10)

/* An idle connection the server wrote to is gone: nothing comes to one
 * between queries but a server's goodbye ("terminating connection" when
 * it stops or restarts) and the end of the stream. Without this check
 * each pooled connection would fail one request with a 503 after a
 * restart. A connection that is merely silent (its host vanished) is
 * left to the TCP keepalives and the query's own failure. */
static int pgq_idle_gone(PGconn *c)
{
    struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };

    return p.fd < 0 || poll(&p, 1, 0) != 0;
}

PGconn *store_pg_reader(struct store *st)
{
    struct store_pg *pg = st->pg;
    PGconn *c = NULL;
    char err[256];

    for (;;) {
        pthread_mutex_lock(&st->rlock);
        c = pg->n_readers > 0 ? pg->readers[--pg->n_readers] : NULL;
        pthread_mutex_unlock(&st->rlock);
        if (!c || !pgq_idle_gone(c))
            break;
        PQfinish(c);
    }
    if (c)
        return c;
    /* statement_timeout is the query's deadline (query_ms). */
    c = pg_connect(st, st->opt.query_ms, err, sizeof(err));
    if (!c)
        log_msg(LOGL_ERROR, "store", "read connection: %s", err);
    return c;
}

void store_pg_reader_put(struct store *st, PGconn *c, int broken)
{
    struct store_pg *pg = st->pg;
    PGconn *idle[PG_READERS];
    size_t n = 0;

    if (!c)
        return;
    broken |= PQstatus(c) != CONNECTION_OK ||
              PQtransactionStatus(c) != PQTRANS_IDLE;
    pthread_mutex_lock(&st->rlock);
    if (broken) {
        /* The server restarted or the network broke: the idle ones are
         * gone too, and each would fail one more query. */
        n = pg->n_readers;
        memcpy(idle, pg->readers, n * sizeof(idle[0]));
        pg->n_readers = 0;
    } else if (pg->n_readers < PG_READERS) {
        pg->readers[pg->n_readers++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&st->rlock);
    PQfinish(c);
    for (size_t i = 0; i < n; i++)
        PQfinish(idle[i]);
}

int pgq_begin(struct store *st, int need_ready, PGconn **out)
{
    /* Until the writer has migrated, the tables may not exist yet. */
    if (need_ready && store_poll_ready(st) != 1)
        return -EAGAIN;
    *out = store_pg_reader(st);
    return *out ? 0 : -EIO;
}

int pgq_run(struct store *st, PGconn *c, const char *sql,
            const struct pg_params *p, const char *what, PGresult **out,
            int *broken)
{
    PGresult *r = pg_query(c, sql, p);
    char why[256];
    int rc = 0;

    if (!r)
        return -ENOMEM;
    if (!pg_ok(r)) {
        rc = -EIO;
        switch (pg_err_class(c, r)) {
        case PG_ERR_TIMEOUT:
            rc = -ETIMEDOUT;
            log_msg(LOGL_WARN, "store", "%s query stopped after %lld ms",
                    what, (long long)st->opt.query_ms);
            break;
        case PG_ERR_CONN:
            *broken = 1;
            /* fall through */
        default:
            pg_err_text(c, r, why, sizeof(why));
            log_msg(LOGL_ERROR, "store", "%s: %s", what, why);
            break;
        }
        PQclear(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* pgq_begin (ready needed) and pgq_run of @sql with @p: 0, or -errno;
 * *@c is the caller's to hand back (NULL when none was taken). */
static int pgq_fetch(struct store *st, const char *sql,
                     const struct pg_params *p, const char *what,
                     PGconn **c, PGresult **r, int *broken)
{
    int rc = pgq_begin(st, 1, c);

    if (rc < 0) {
        *c = NULL;
        return rc;
    }
    return pgq_run(st, *c, sql, p, what, r, broken);
}

int store_pg_clusters_seen(struct store *st,
                           void (*fn)(void *ctx, const char *cluster,
                                      int64_t last_seen_ms),
                           void *ctx)
{
    PGresult *r = NULL;
    PGconn *c;
    int rc, broken = 0;

    rc = pgq_begin(st, 0, &c);      /* as SQLite's: agents is read early */
    if (rc < 0)
        return rc;
    rc = pgq_run(st, c,
                 "SELECT cluster, max(last_seen_ms) FROM agents"
                 " GROUP BY cluster ORDER BY cluster COLLATE \"C\"",
                 NULL, "clusters", &r, &broken);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        fn(ctx, pg_text(r, i, 0), pg_i64(r, i, 1, 0));
    PQclear(r);
    store_pg_reader_put(st, c, broken);
    return rc;
}

/* Is the name there, and (for suggestions) every name: by store_names. */
static const char *const pgq_name_known[] = {
    [STORE_NAMES_CLUSTER] = "SELECT 1 FROM clusters WHERE name = $1",
    [STORE_NAMES_TARGET] = "SELECT 1 FROM targets WHERE name = $1",
    [STORE_NAMES_KIND] = "SELECT 1 FROM kinds WHERE name = $1",
};
static const char *const pgq_name_list[] = {
    [STORE_NAMES_CLUSTER] =
        "SELECT name FROM clusters ORDER BY name COLLATE \"C\"",
    [STORE_NAMES_TARGET] =
        "SELECT name FROM targets ORDER BY name COLLATE \"C\"",
    [STORE_NAMES_KIND] = "SELECT name FROM kinds ORDER BY name COLLATE \"C\"",
};

int store_pg_name_known(struct store *st, enum store_names which,
                        const char *name, store_name_fn fn, void *ctx)
{
    struct pg_params p;
    PGresult *r = NULL;
    PGconn *c;
    int rc, broken = 0;

    if ((unsigned)which > STORE_NAMES_KIND)
        return -EINVAL;
    rc = pgq_begin(st, 1, &c);
    if (rc < 0)
        return rc;
    pg_params_reset(&p);
    pg_param_text(&p, name);
    rc = pgq_run(st, c, pgq_name_known[which], &p, "names", &r, &broken);
    if (rc < 0)
        goto out;
    if (PQntuples(r) > 0) {
        rc = 1;
        goto out;
    }
    PQclear(r);
    r = NULL;
    if (!fn)
        goto out;
    rc = pgq_run(st, c, pgq_name_list[which], NULL, "names", &r, &broken);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        fn(ctx, pg_text(r, i, 0));
out:
    PQclear(r);
    store_pg_reader_put(st, c, broken);
    return rc;
}

/* A rollup table's rows of targets $1 (a JSON array of names), cluster $2
 * (NULL: every cluster), in [$3, $4), by time. */
#define PGQ_ROLLUP(table) \
    "SELECT t, count, failures, hist FROM " table \
    " WHERE target_id IN (SELECT id FROM targets WHERE name IN" \
    "   (SELECT json_array_elements_text($1::json)))" \
    "   AND ($2::text IS NULL OR cluster_id =" \
    "     (SELECT id FROM clusters WHERE name = $2))" \
    "   AND t >= $3 AND t < $4 ORDER BY t"
static const char pgq_rollup_minute[] = PGQ_ROLLUP("rollup_minute");
static const char pgq_rollup_hour[] = PGQ_ROLLUP("rollup_hour");
/* store_targets_window's: every name of $1 counts, as SQLite's loop over
 * them counts each (a name listed twice, twice). */
#define PGQ_WINDOW(table) \
    "SELECT r.t, r.count, r.failures, r.hist" \
    " FROM json_array_elements_text($1::json) AS n(name)" \
    " JOIN targets tg ON tg.name = n.name" \
    " JOIN " table " r ON r.target_id = tg.id" \
    " WHERE $2::text IS NULL AND r.t >= $3 AND r.t < $4"
static const char pgq_window_minute[] = PGQ_WINDOW("rollup_minute");
static const char pgq_window_hour[] = PGQ_WINDOW("rollup_hour");

/* The rollup rows of @targets_json (and @cluster) over [@from, @to) at
 * @step into *@out, on @c. */
static int pgq_rollups(struct store *st, PGconn *c, enum store_step step,
                       int window, const char *targets_json,
                       const char *cluster, int64_t from, int64_t to,
                       PGresult **out, int *broken)
{
    int hour = step == STORE_STEP_HOUR;
    const char *sql = window ? (hour ? pgq_window_hour : pgq_window_minute)
                             : (hour ? pgq_rollup_hour : pgq_rollup_minute);
    struct pg_params p;

    pg_params_reset(&p);
    pg_param_text(&p, targets_json);
    pg_param_text(&p, cluster);
    pg_param_i64(&p, from);
    pg_param_i64(&p, to);
    return pgq_run(st, c, sql, &p, window ? "window" : "latency", out,
                   broken);
}

int store_pg_latency(struct store *st, const struct store_latency_query *q,
                     char **out, size_t *out_len)
{
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    struct jsonw w, names;
    struct store_lat l = { .w = &w };
    PGresult *r = NULL;
    uint8_t *blob = NULL;
    PGconn *c;
    int rc, broken = 0;

    rc = store_latency_check(q);
    if (rc < 0)
        return rc;
    rc = pgq_begin(st, 1, &c);
    if (rc < 0)
        return rc;
    hist_init(&l.h);
    jsonw_init(&w, STORE_LATENCY_BYTES);
    jsonw_init(&names, STORE_LATENCY_BYTES);
    if (q->target) {                /* one target: a list of one */
        jsonw_arr_begin(&names);
        jsonw_str(&names, q->target);
        jsonw_arr_end(&names);
    } else {
        store_latency_names(q, &names);
    }
    blob = malloc(PGQ_HIST_MAX);
    rc = names.err ? names.err : blob ? 0 : -ENOMEM;
    if (rc == 0)
        rc = pgq_rollups(st, c, q->step, 0, names.buf, q->cluster,
                         store_floor(q->from_ms, step_ms), q->to_ms, &r,
                         &broken);
    if (rc < 0)
        goto out;
    store_latency_head(&w, q, step_ms);
    jsonw_arr_begin(&w);
    for (int i = 0; i < PQntuples(r); i++) {
        long n = pg_bytea(r, i, 3, blob, PGQ_HIST_MAX);

        store_latency_row(&l, pg_i64(r, i, 0, 0), pg_i64(r, i, 1, 0),
                          pg_i64(r, i, 2, 0), blob, n < 0 ? 0 : (size_t)n);
    }
    store_latency_end(&l);
    rc = store_json_take(&w, out, out_len);
out:
    PQclear(r);
    free(blob);
    jsonw_free(&w);
    jsonw_free(&names);
    hist_free(&l.h);
    store_pg_reader_put(st, c, broken);
    return rc;
}

int store_pg_targets_window(struct store *st, const char *const *targets,
                            size_t n, int64_t from_ms, int64_t to_ms,
                            enum store_step step, struct store_window *out)
{
    struct store_window win = { 0 };
    struct jsonw names;
    PGresult *r = NULL;
    uint8_t *blob = NULL;
    struct hist h;
    PGconn *c;
    int rc, broken = 0;

    rc = pgq_begin(st, 1, &c);
    if (rc < 0)
        return rc;
    hist_init(&h);
    jsonw_init(&names, STORE_LATENCY_BYTES);
    jsonw_arr_begin(&names);
    for (size_t i = 0; i < n; i++)
        jsonw_str(&names, targets[i]);
    jsonw_arr_end(&names);
    blob = malloc(PGQ_HIST_MAX);
    rc = names.err ? names.err : blob ? 0 : -ENOMEM;
    if (rc == 0)
        rc = pgq_rollups(st, c, step, 1, names.buf, NULL, from_ms, to_ms, &r,
                         &broken);
    if (rc < 0)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        long len = pg_bytea(r, i, 3, blob, PGQ_HIST_MAX);

        store_window_add(&win, &h, pg_i64(r, i, 1, 0), pg_i64(r, i, 2, 0),
                         blob, len < 0 ? 0 : (size_t)len);
    }
    store_window_end(&win, &h);
    *out = win;
out:
    PQclear(r);
    free(blob);
    jsonw_free(&names);
    hist_free(&h);
    store_pg_reader_put(st, c, broken);
    return rc;
}

/* store_clusters.c's statement. The offset is rounded as numeric: half
 * away from zero, as SQLite's round() (a double's is half to even). */
static const char pgq_clusters_sql[] =
    STORE_CLUSTERS_SQL("lpad(to_hex(a.epoch), 16, '0')",
                       "round(a.clock_offset_ms::numeric)::bigint",
                       " COLLATE \"C\"");

static const char *pgq_str(const PGresult *r, int row, int col)
{
    const char *t = pg_text(r, row, col);

    return t ? t : "";
}

/* Row @i of pgq_clusters_sql as plain values. */
static void pgq_cl_row(const PGresult *r, int i, struct store_cl_row *o)
{
    o->cluster = pgq_str(r, i, CL_CLUSTER);
    o->region = pgq_str(r, i, CL_REGION);
    o->node = pgq_str(r, i, CL_NODE);
    o->epoch = pgq_str(r, i, CL_EPOCH);
    o->version = pgq_str(r, i, CL_VERSION);
    o->first_ms = pg_i64(r, i, CL_FIRST, 0);
    o->last_ms = pg_i64(r, i, CL_LAST, 0);
    o->has_offset = !PQgetisnull(r, i, CL_OFFSET);
    o->offset_ms = pg_i64(r, i, CL_OFFSET, 0);
    o->acked = pg_i64(r, i, CL_ACKED, 0);
    o->highest = pg_i64(r, i, CL_HIGHEST, 0);
    o->drop_count = pg_i64(r, i, CL_DROP_COUNT, 0);
    o->drop_first = pg_i64(r, i, CL_DROP_FIRST, 0);
    o->drop_last = pg_i64(r, i, CL_DROP_LAST, 0);
    o->drop_ms = pg_i64(r, i, CL_DROP_MS, 0);
    o->has_report = !PQgetisnull(r, i, CL_DROP_REPORT);
    o->report_ms = pg_i64(r, i, CL_DROP_REPORT, 0);
    o->has_spool = !PQgetisnull(r, i, CL_SPOOL_EVENTS);
    o->spool_events = pg_i64(r, i, CL_SPOOL_EVENTS, 0);
    o->spool_bytes = pg_i64(r, i, CL_SPOOL_BYTES, 0);
    o->epochs = pg_i64(r, i, CL_EPOCHS, 0);
}

int store_pg_clusters(struct store *st, char **out, size_t *out_len)
{
    struct store_cl_state cs = { .in_cluster = 0 };
    struct store_cl_row row;
    PGresult *r = NULL;
    struct jsonw w;
    PGconn *c;
    int rc, broken = 0;

    jsonw_init(&w, CLUSTERS_BYTES);
    rc = pgq_fetch(st, pgq_clusters_sql, NULL, "clusters", &c, &r, &broken);
    if (rc < 0)
        goto out;
    store_cl_begin(&w);
    for (int i = 0; i < PQntuples(r) && !w.err; i++) {
        pgq_cl_row(r, i, &row);
        store_cl_add(&w, &cs, &row);
    }
    store_cl_end(&w, &cs);
    rc = store_json_take(&w, out, out_len);
out:
    PQclear(r);
    jsonw_free(&w);
    store_pg_reader_put(st, c, broken);
    return rc;
}

/* store_status.c's st_state_sql: each (cluster, node, target)'s row of
 * target_now with the latest state (DISTINCT ON takes that row whole, as
 * SQLite's bare columns beside max() do), corrected with the agent's
 * offset now, rounded as SQLite's round(). */
#define PGQ_CORRECTED(col) \
    "(" col " + coalesce(round(a.clock_offset_ms::numeric)::bigint, 0))"
static const char pgq_status_sql[] =
    "SELECT * FROM (SELECT DISTINCT ON (a.cluster, a.node, n.target_id)"
    " a.cluster, a.region, a.node, tg.name AS target, n.health,"
    " " PGQ_CORRECTED("n.state_ms") ", n.probe_ms IS NOT NULL, n.ok,"
    " n.status, n.total_us, x.text, " PGQ_CORRECTED("n.probe_ms")
    " FROM target_now n JOIN agents a ON a.id = n.agent_id"
    " JOIN targets tg ON tg.id = n.target_id"
    " LEFT JOIN texts x ON x.id = n.text_id"
    " WHERE n.state_ms IS NOT NULL"
    " ORDER BY a.cluster, a.node, n.target_id, n.state_ms DESC) s"
    " ORDER BY cluster COLLATE \"C\", target COLLATE \"C\","
    "   node COLLATE \"C\"";

int store_pg_targets_status(struct store *st, char **out, size_t *out_len)
{
    struct store_st_group g;
    struct store_st_row row;
    PGresult *r = NULL;
    struct jsonw w;
    PGconn *c;
    int rc, broken = 0;

    store_st_init(&w, &g);
    rc = pgq_fetch(st, pgq_status_sql, NULL, "status", &c, &r, &broken);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        row.cluster = pg_text(r, i, 0);
        row.region = pg_text(r, i, 1);
        row.node = pg_text(r, i, 2);
        row.target = pg_text(r, i, 3);
        row.health = pg_text(r, i, 4);
        row.ms = pg_i64(r, i, 5, 0);
        row.has_probe = pg_text(r, i, 6) && pg_text(r, i, 6)[0] == 't';
        row.ok = pg_i64(r, i, 7, 0);
        row.status = pg_i64(r, i, 8, 0);
        row.total_us = pg_i64(r, i, 9, 0);
        row.error = pg_text(r, i, 10);
        row.probe_ms = pg_i64(r, i, 11, 0);
        rc = store_st_add(&w, &g, &row);
    }
    if (rc == 0) {
        store_st_end(&w, &g);
        rc = store_json_take(&w, out, out_len);
    }
    PQclear(r);
    store_st_free(&w, &g);
    store_pg_reader_put(st, c, broken);
    return rc;
}
