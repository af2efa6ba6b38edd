/* store_status.c -- the store's side of GET /api/v1/status and
 * /api/v1/services: every (cluster, target)'s health now, from each
 * agent's latest state event and last probe as target_now holds them
 * (kept by the writer, store_now.c); and a set of
 * targets' probe count, failures and latency percentiles over a window,
 * from the rollups. Read-only, through the read pool (store_query.c's
 * hooks, store_priv.h); the SQL is this file's own table. The services'
 * derived state (quorum, serving) is the incident engine's, in
 * store_incident.c. The rendering takes plain rows (store_st_*,
 * store_window_*), so the PostgreSQL backend's answers are the same. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "hist.h"
#include "jsonw.h"


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

/* The row at @s as plain values (borrowed until the next step). */
static void st_row_of(sqlite3_stmt *s, struct store_st_row *r)
{
    r->cluster = (const char *)sqlite3_column_text(s, SS_CLUSTER);
    r->region = (const char *)sqlite3_column_text(s, SS_REGION);
    r->node = (const char *)sqlite3_column_text(s, SS_NODE);
    r->target = (const char *)sqlite3_column_text(s, SS_TARGET);
    r->health = (const char *)sqlite3_column_text(s, SS_HEALTH);
    r->ms = sqlite3_column_int64(s, SS_MS);
    r->has_probe = sqlite3_column_int(s, SP_HAS);
    r->ok = sqlite3_column_int64(s, SP_OK);
    r->status = sqlite3_column_int64(s, SP_STATUS);
    r->total_us = sqlite3_column_int64(s, SP_TOTAL_US);
    r->error = (const char *)sqlite3_column_text(s, SP_ERROR);
    r->probe_ms = sqlite3_column_int64(s, SP_MS);
}

/* "@key": @v. */
static void st_kv(struct jsonw *w, const char *key, const char *v)
{
    jsonw_key(w, key);
    jsonw_str(w, v);
}

/* {"ms","utc"} of @ms. */
static void st_time(struct jsonw *w, int64_t ms)
{
    char utc[40];

    export_utc(ms, utc, sizeof(utc));
    jsonw_obj_begin(w);
    jsonw_key(w, "ms");
    jsonw_int(w, ms);
    jsonw_key(w, "utc");
    jsonw_str(w, utc);
    jsonw_obj_end(w);
}

/* The last probe of the agent and target of row @r, or null, into @w;
 * *@ms its time (INT64_MIN: none). */
static void st_last_probe(const struct store_st_row *r, struct jsonw *w,
                          int64_t *ms)
{
    *ms = INT64_MIN;
    if (!r->has_probe) {
        jsonw_null(w);
        return;
    }
    *ms = r->probe_ms;
    jsonw_obj_begin(w);
    jsonw_key(w, "time");
    st_time(w, r->probe_ms);
    jsonw_key(w, "ok");
    jsonw_bool(w, r->ok != 0);
    jsonw_key(w, "status");
    jsonw_int(w, r->status);
    jsonw_key(w, "total_ms");
    jsonw_double(w, (double)r->total_us / 1000.0);
    jsonw_key(w, "error");
    jsonw_str(w, r->error ? r->error : "");
    jsonw_obj_end(w);
}

static void st_group_end(struct jsonw *w, struct store_st_group *g)
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

static void st_group_begin(struct jsonw *w, struct store_st_group *g,
                           const struct store_st_row *r)
{
    jsonw_obj_begin(w);
    st_kv(w, "cluster", r->cluster);
    st_kv(w, "target", r->target);
    jsonw_key(w, "agents");
    jsonw_arr_begin(w);
    g->open = 1;
    g->any_unhealthy = 0;
    g->all_healthy = 1;
    g->n_counted = 0;
    g->since_ms = INT64_MIN;
    g->last_ms = INT64_MIN;
}

/* The agent's last probe (row @r): into the agent's object, and kept as
 * the group's when it is the latest so far. */
static int st_group_last(struct jsonw *w, struct store_st_group *g,
                         const struct store_st_row *r)
{
    int64_t ms;

    jsonw_reset(&g->one);
    st_last_probe(r, &g->one, &ms);
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

/* Adds the agent of row @r to its group: a group's health is unhealthy
 * when any of its agents sees it so, healthy when all do, else unknown;
 * its since is the latest change among its agents. */
static void st_group_agent(struct jsonw *w, struct store_st_group *g,
                           const struct store_st_row *r)
{
    const char *health = r->health ? r->health : "unknown";
    int64_t ms = r->ms;

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
    st_kv(w, "region", r->region);
    st_kv(w, "node", r->node);
    jsonw_key(w, "health");
    jsonw_str(w, health);
    jsonw_key(w, "since");
    st_time(w, ms);
    jsonw_key(w, "last");
}

void store_st_init(struct jsonw *w, struct store_st_group *g)
{
    memset(g, 0, sizeof(*g));
    jsonw_init(w, STORE_STATUS_BYTES);
    jsonw_init(&g->last, STORE_STATUS_BYTES);
    jsonw_init(&g->one, STORE_STATUS_BYTES);
    jsonw_arr_begin(w);
}

int store_st_add(struct jsonw *w, struct store_st_group *g,
                 const struct store_st_row *r)
{
    int rc;

    if (!r->cluster || !r->target)
        return 0;
    if (!g->open || strcmp(r->cluster, g->cluster) != 0 ||
        strcmp(r->target, g->target) != 0) {
        st_group_end(w, g);
        st_group_begin(w, g, r);
        snprintf(g->cluster, sizeof(g->cluster), "%s", r->cluster);
        snprintf(g->target, sizeof(g->target), "%s", r->target);
    }
    st_group_agent(w, g, r);
    rc = st_group_last(w, g, r);
    if (rc < 0)
        return rc;
    jsonw_obj_end(w);
    return 0;
}

void store_st_end(struct jsonw *w, struct store_st_group *g)
{
    st_group_end(w, g);
    jsonw_arr_end(w);
}

void store_st_free(struct jsonw *w, struct store_st_group *g)
{
    jsonw_free(w);
    jsonw_free(&g->last);
    jsonw_free(&g->one);
}

int store_targets_status(struct store *st, char **out, size_t *out_len)
{
    struct store_st_group g;
    struct store_st_row row;
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    int64_t until;
    int rc, step;

    if (st->pg)
        return store_pg_targets_status(st, out, out_len);

    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    store_st_init(&w, &g);
    rc = store_reader_stmt_sql(r, st_state_sql, &s);
    if (rc < 0)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        st_row_of(s, &row);
        rc = store_st_add(&w, &g, &row);
        if (rc < 0)
            goto out;
    }
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, r->db);
        goto out;
    }
    store_st_end(&w, &g);
    rc = store_json_take(&w, out, out_len);
out:
    store_st_free(&w, &g);
    return store_query_end(st, r, s, rc, "status");
}

void store_window_add(struct store_window *win, struct hist *h,
                      int64_t count, int64_t failures, const uint8_t *blob,
                      size_t len)
{
    win->count += (uint64_t)count;
    win->failures += (uint64_t)failures;
    /* A bad histogram (never written so) loses its latencies only. */
    (void)hist_merge_blob(h, blob, len);
}

void store_window_end(struct store_window *win, const struct hist *h)
{
    win->has_latency = hist_count(h) > 0;
    if (win->has_latency) {
        win->p50_ms = hist_quantile(h, 0.5) / 1000.0;
        win->p95_ms = hist_quantile(h, 0.95) / 1000.0;
        win->p99_ms = hist_quantile(h, 0.99) / 1000.0;
    }
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
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        store_window_add(out, h, sqlite3_column_int64(s, 0),
                         sqlite3_column_int64(s, 1), sqlite3_column_blob(s, 2),
                         (size_t)sqlite3_column_bytes(s, 2));
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
        store_window_end(&win, &h);
        *out = win;
    }
    hist_free(&h);
    return store_query_end(st, r, NULL, rc, "window");
}
