/* store_status.c -- the store's side of GET /api/v1/status and
 * /api/v1/services: every (cluster, target)'s health now, from each
 * agent's latest state event and last probe as target_now holds them
 * (kept by the writer, store_now.c); and a set of
 * targets' probe count, failures and latency percentiles over a window,
 * from the rollups. Read-only, through the read pool (store_query.c's
 * hooks, store_priv.h); the SQL is this file's own table. The services'
 * derived state (quorum, serving) is the incident engine's, in
 * store_incident.c. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "hist.h"
#include "jsonw.h"

#define STORE_STATUS_BYTES (16u << 20)  /* reply cap */

/* The corrected time (agent time + the agent's offset now) of @col. Its
 * UTC text is written here (export_utc), not by SQLite's strftime: that
 * was a third of a status answer's CPU. */
#define ST_CORRECTED(col) \
    "(" col " + coalesce(CAST(round(a.clock_offset_ms) AS INTEGER), 0))"

/* Every (cluster, node, target) with a state event, from target_now (one
 * row per agent and target, kept by the writer: store_now.c), never from
 * the history. An agent's epochs (restarts) are one node: max() takes
 * the latest state, and SQLite gives the bare columns of that row, its
 * last probe included. */
static const char st_state_sql[] =
    "SELECT a.cluster, a.region, a.node, tg.name, max(n.state_ms),"
    " n.health, " ST_CORRECTED("n.state_ms") ","
    " n.probe_ms IS NOT NULL, n.ok, n.status, n.total_us, x.text, "
    ST_CORRECTED("n.probe_ms")
    " FROM target_now n JOIN agents a ON a.id = n.agent_id"
    " JOIN targets tg ON tg.id = n.target_id"
    " LEFT JOIN texts x ON x.id = n.text_id"
    " WHERE n.state_ms IS NOT NULL"
    " GROUP BY a.cluster, a.node, n.target_id"
    " ORDER BY a.cluster, tg.name, a.node";
/* A target's rollups over a window: the (target_id, t) indexes. */
static const char st_window_minute_sql[] =
    "SELECT count, failures, hist FROM rollup_minute"
    " WHERE target_id = (SELECT id FROM targets WHERE name = ?1)"
    "   AND t >= ?2 AND t < ?3";
static const char st_window_hour_sql[] =
    "SELECT count, failures, hist FROM rollup_hour"
    " WHERE target_id = (SELECT id FROM targets WHERE name = ?1)"
    "   AND t >= ?2 AND t < ?3";

/* The columns of st_state_sql. */
enum { SS_CLUSTER, SS_REGION, SS_NODE, SS_TARGET, SS_UNIX_MS, SS_HEALTH,
       SS_MS, SP_HAS, SP_OK, SP_STATUS, SP_TOTAL_US, SP_ERROR, SP_MS };

/* "@key": the text of column @col of @s. */
static void st_kv(struct jsonw *w, const char *key, sqlite3_stmt *s, int col)
{
    jsonw_key(w, key);
    jsonw_str(w, (const char *)sqlite3_column_text(s, col));
}

/* {"ms","utc"} of column @col of @s. */
static void st_time(struct jsonw *w, sqlite3_stmt *s, int col)
{
    int64_t ms = sqlite3_column_int64(s, col);
    char utc[40];

    export_utc(ms, utc, sizeof(utc));
    jsonw_obj_begin(w);
    jsonw_key(w, "ms");
    jsonw_int(w, ms);
    jsonw_key(w, "utc");
    jsonw_str(w, utc);
    jsonw_obj_end(w);
}

/* The last probe of the agent and target at @s's row, or null, into
 * @w; *@ms its time (INT64_MIN: none). */
static void st_last_probe(sqlite3_stmt *s, struct jsonw *w, int64_t *ms)
{
    const char *err;

    *ms = INT64_MIN;
    if (!sqlite3_column_int(s, SP_HAS)) {
        jsonw_null(w);
        return;
    }
    err = (const char *)sqlite3_column_text(s, SP_ERROR);
    *ms = sqlite3_column_int64(s, SP_MS);
    jsonw_obj_begin(w);
    jsonw_key(w, "time");
    st_time(w, s, SP_MS);
    jsonw_key(w, "ok");
    jsonw_bool(w, sqlite3_column_int64(s, SP_OK) != 0);
    jsonw_key(w, "status");
    jsonw_int(w, sqlite3_column_int64(s, SP_STATUS));
    jsonw_key(w, "total_ms");
    jsonw_double(w, (double)sqlite3_column_int64(s, SP_TOTAL_US) / 1000.0);
    jsonw_key(w, "error");
    jsonw_str(w, err ? err : "");
    jsonw_obj_end(w);
}

/* One (cluster, target) as it is being written: its agents' array is
 * open; the health, since and last probe of the whole come after it. */
struct st_group {
    int open;
    int any_unhealthy, all_healthy;
    size_t n_counted;           /* agents not handed off */
    int64_t since_ms;
    char since_utc[32];
    int64_t last_ms;            /* INT64_MIN: no probe yet */
    struct jsonw last;          /* the latest of its agents' last probes */
    struct jsonw one;           /* the agent's being written */
};

static void st_group_end(struct jsonw *w, struct st_group *g)
{
    if (!g->open)
        return;
    jsonw_arr_end(w);
    jsonw_key(w, "health");
    jsonw_str(w, g->any_unhealthy ? "unhealthy"
                 : g->all_healthy && g->n_counted > 0 ? "healthy"
                 : "unknown");
    jsonw_key(w, "since");
    if (g->since_ms == INT64_MIN) {     /* every agent handed it off */
        jsonw_null(w);
    } else {
        jsonw_obj_begin(w);
        jsonw_key(w, "ms");
        jsonw_int(w, g->since_ms);
        jsonw_key(w, "utc");
        jsonw_str(w, g->since_utc);
        jsonw_obj_end(w);
    }
    jsonw_key(w, "last");
    if (g->last_ms == INT64_MIN)
        jsonw_null(w);
    else
        jsonw_value(w, g->last.buf);
    jsonw_obj_end(w);
    g->open = 0;
}

static void st_group_begin(struct jsonw *w, struct st_group *g,
                           sqlite3_stmt *s)
{
    jsonw_obj_begin(w);
    st_kv(w, "cluster", s, SS_CLUSTER);
    st_kv(w, "target", s, SS_TARGET);
    jsonw_key(w, "agents");
    jsonw_arr_begin(w);
    g->open = 1;
    g->any_unhealthy = 0;
    g->all_healthy = 1;
    g->n_counted = 0;
    g->since_ms = INT64_MIN;
    g->last_ms = INT64_MIN;
}

/* The agent's last probe (its row at @s): into the agent's object, and
 * kept as the group's when it is the latest so far. */
static int st_group_last(struct jsonw *w, struct st_group *g,
                         sqlite3_stmt *s)
{
    int64_t ms;

    jsonw_reset(&g->one);
    st_last_probe(s, &g->one, &ms);
    if (g->one.err)
        return g->one.err;
    jsonw_value(w, g->one.buf);
    if (ms != INT64_MIN && ms > g->last_ms) {
        g->last_ms = ms;
        jsonw_reset(&g->last);
        jsonw_raw(&g->last, g->one.buf, g->one.len);
        if (g->last.err)
            return g->last.err;
    }
    return 0;
}

/* Adds the agent at @s to its group: a group's health is unhealthy when
 * any of its agents sees it so, healthy when all do, else unknown; its
 * since is the latest change among its agents. */
static void st_group_agent(struct jsonw *w, struct st_group *g,
                           sqlite3_stmt *s)
{
    const char *health = (const char *)sqlite3_column_text(s, SS_HEALTH);
    int64_t ms = sqlite3_column_int64(s, SS_MS);

    if (!health)
        health = "unknown";
    /* An agent that handed the target to other probers is listed but
     * counts neither way, and its handoff is no change of the target's. */
    if (strcmp(health, STORE_HANDED_OFF) == 0)
        goto row;
    g->n_counted++;
    g->any_unhealthy |= strcmp(health, "unhealthy") == 0;
    g->all_healthy &= strcmp(health, "healthy") == 0;
    if (ms > g->since_ms) {
        g->since_ms = ms;
        export_utc(ms, g->since_utc, sizeof(g->since_utc));
    }
row:
    jsonw_obj_begin(w);
    st_kv(w, "region", s, SS_REGION);
    st_kv(w, "node", s, SS_NODE);
    jsonw_key(w, "health");
    jsonw_str(w, health);
    jsonw_key(w, "since");
    st_time(w, s, SS_MS);
    jsonw_key(w, "last");
}

int store_targets_status(struct store *st, char **out, size_t *out_len)
{
    struct st_group g = { 0 };
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    const char *cl, *tg;
    char prev_cl[WIRE_MAX_STR + 1] = "", prev_tg[WIRE_MAX_STR + 1] = "";
    struct jsonw w;
    int64_t until;
    int rc, step;

    if (st->pg)
        return store_pg_targets_status(st, out, out_len);

    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    jsonw_init(&w, STORE_STATUS_BYTES);
    jsonw_init(&g.last, STORE_STATUS_BYTES);
    jsonw_init(&g.one, STORE_STATUS_BYTES);
    rc = store_reader_stmt_sql(r, st_state_sql, &s);
    if (rc < 0)
        goto out;
    jsonw_arr_begin(&w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        cl = (const char *)sqlite3_column_text(s, SS_CLUSTER);
        tg = (const char *)sqlite3_column_text(s, SS_TARGET);
        if (!cl || !tg)
            continue;
        if (!g.open || strcmp(cl, prev_cl) != 0 || strcmp(tg, prev_tg) != 0) {
            st_group_end(&w, &g);
            st_group_begin(&w, &g, s);
            snprintf(prev_cl, sizeof(prev_cl), "%s", cl);
            snprintf(prev_tg, sizeof(prev_tg), "%s", tg);
        }
        st_group_agent(&w, &g, s);
        rc = st_group_last(&w, &g, s);
        if (rc < 0)
            goto out;
        jsonw_obj_end(&w);
    }
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, r->db);
        goto out;
    }
    st_group_end(&w, &g);
    jsonw_arr_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    jsonw_free(&w);
    jsonw_free(&g.last);
    jsonw_free(&g.one);
    return store_query_end(st, r, s, rc, "status");
}

/* Adds @target's rollups over [from, to) into @h and the counts. */
static int st_window_one(struct store *st, struct store_reader *r,
                         const char *sql, const char *target,
                         int64_t from_ms, int64_t to_ms, struct hist *h,
                         struct store_window *out)
{
    sqlite3_stmt *s = NULL;
    int rc = -EIO, step;

    if (store_reader_stmt_sql(r, sql, &s) < 0 ||
        sqlite3_bind_text(s, 1, target, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, to_ms) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        out->count += (uint64_t)sqlite3_column_int64(s, 0);
        out->failures += (uint64_t)sqlite3_column_int64(s, 1);
        /* A bad histogram (never written so) loses its latencies only. */
        (void)hist_merge_blob(h, sqlite3_column_blob(s, 2),
                              (size_t)sqlite3_column_bytes(s, 2));
    }
    rc = step == SQLITE_DONE ? 0 : store_query_error(st, r->db);
out:
    store_stmt_done(s);
    return rc;
}

int store_targets_window(struct store *st, const char *const *targets,
                         size_t n, int64_t from_ms, int64_t to_ms,
                         enum store_step step, struct store_window *out)
{
    const char *sql = step == STORE_STEP_HOUR ? st_window_hour_sql
                                              : st_window_minute_sql;
    struct store_window win = { 0 };
    struct store_reader *r;
    struct hist h;
    int64_t until;
    int rc = 0;

    if (st->pg)
        return store_pg_targets_window(st, targets, n, from_ms, to_ms,
                                       step, out);

    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    rc = 0;
    hist_init(&h);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = st_window_one(st, r, sql, targets[i], from_ms, to_ms, &h,
                           &win);
    if (rc == 0) {
        win.has_latency = hist_count(&h) > 0;
        if (win.has_latency) {
            win.p50_ms = hist_quantile(&h, 0.5) / 1000.0;
            win.p95_ms = hist_quantile(&h, 0.95) / 1000.0;
            win.p99_ms = hist_quantile(&h, 0.99) / 1000.0;
        }
        *out = win;
    }
    hist_free(&h);
    return store_query_end(st, r, NULL, rc, "window");
}
