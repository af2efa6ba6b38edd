/* pg_ingest.c -- one batch's rows on PostgreSQL, inside the writer's group
 * transaction (pg_writer.c): store_delivery.c's store_deliver runs the
 * arithmetic (watermark, gaps, drops, clock offset) over the ops here. The
 * agent row is locked FOR UPDATE before anything of its agent is read,
 * and held to COMMIT: every batch of one agent, on any collector, waits
 * for the one before it, and under READ COMMITTED each later statement
 * sees what that one committed. So "stored already" is a plain read of
 * the agent's seqs, and an event is inserted (by COPY) only when it is
 * not there: the unique key (agent_id, seq, unix_ms) is never the
 * mechanism, and its violation is logged as a bug. Also the interned
 * strings (the caches of store_dims.c, filled in autocommit before the
 * transaction), rollup rows (read FOR UPDATE, merged in C, written back)
 * and target_now upserts. The writer thread only. */
#include "store_pg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

#define PG_COPY_SQL \
    "COPY events (agent_id, seq, unix_ms, recv_delta_ms, kind_id," \
    " target_id, text_id, probe_type, ok, status, dns_us, connect_us," \
    " tls_us, first_byte_us, total_us, served_by_id, cert_id," \
    " answers_id, data) FROM STDIN"

/* Per dimension: an insert that returns the new id (texts: an upsert
 * that always does, refreshing created_ms so retention spares a text
 * this writer is about to use), and the lookup when it returned none. */
static const char *const pg_dim_sql[DIM_COUNT][2] = {
    { "INSERT INTO clusters (name) VALUES ($1) ON CONFLICT (name)"
      " DO NOTHING RETURNING id", "SELECT id FROM clusters WHERE name = $1" },
    { "INSERT INTO kinds (name) VALUES ($1) ON CONFLICT (name)"
      " DO NOTHING RETURNING id", "SELECT id FROM kinds WHERE name = $1" },
    { "INSERT INTO targets (name) VALUES ($1) ON CONFLICT (name)"
      " DO NOTHING RETURNING id", "SELECT id FROM targets WHERE name = $1" },
    { "INSERT INTO texts (text, created_ms, md5)"
      " VALUES ($1, $2, md5($1)::uuid) ON CONFLICT (md5)"
      " DO UPDATE SET created_ms = excluded.created_ms RETURNING id", NULL },
    { "INSERT INTO regions (name) VALUES ($1) ON CONFLICT (name)"
      " DO NOTHING RETURNING id", "SELECT id FROM regions WHERE name = $1" },
    { "INSERT INTO certs (not_after_ms) VALUES ($1) ON CONFLICT"
      " (not_after_ms) DO NOTHING RETURNING id",
      "SELECT id FROM certs WHERE not_after_ms = $1" },
};

void pg_w_fail(struct store *st, const PGresult *r, const char *what)
{
    struct pg_wstate *w = st->pg->w;
    PGconn *c = st->pg->wconn;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *detail;
    char why[256];

    pg_err_text(c, r, why, sizeof(why));
    if (state && !strcmp(state, "23505") && !strcmp(what, "events"))
        log_msg(LOGL_ERROR, "store", "BUG: an event stored twice got past "
                "the agent row's lock: %s", why);
    else if (w->err == PG_ERR_NONE)
        log_msg(LOGL_ERROR, "store", "postgres %s: %s", what, why);
    if (w->err != PG_ERR_NONE)
        return;
    /* Without a result (a failure of ours, or of COPY's sending), only
     * the connection's state says whether it is gone. */
    w->err = r ? pg_err_class(c, r)
               : PQstatus(c) == CONNECTION_OK ? PG_ERR_OTHER : PG_ERR_CONN;
    snprintf(w->why, sizeof(w->why), "%s", why);
    /* No partition for the row: retention dropped a day this writer
     * still lists, or a day nobody made yet. The detail names the key. */
    if (state && !strcmp(state, "23514")) {
        w->nopart = 1;
        detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        detail = detail ? strstr(detail, "(unix_ms) = (") : NULL;
        if (detail)
            w->nopart_ms = strtoll(detail + 13, NULL, 10);
    }
}

/* Runs @sql with @p on the writer connection: the result when it
 * succeeded (caller clears), else NULL with the failure noted. */
static PGresult *pg_w_query(struct store *st, const char *sql,
                            const struct pg_params *p, const char *what)
{
    PGresult *r = pg_query(st->pg->wconn, sql, p);

    if (pg_ok(r))
        return r;
    pg_w_fail(st, r, what);
    PQclear(r);
    return NULL;
}

int pg_intern(struct store *st, int dim, const char *s, int64_t *id)
{
    struct store_dim *d = &st->dims[dim];
    struct pg_params p;
    PGresult *r;

    if (store_dim_get(d, s, id))
        return 0;
    pg_params_reset(&p);
    pg_param_text(&p, s);
    if (dim == DIM_TEXT)
        pg_param_i64(&p, util_now_ms());
    r = pg_w_query(st, pg_dim_sql[dim][0], &p, "interning a string");
    if (r && PQntuples(r) == 0 && pg_dim_sql[dim][1]) {
        PQclear(r);
        p.n = 1;
        r = pg_w_query(st, pg_dim_sql[dim][1], &p, "interning a string");
    }
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return -EIO;
    }
    *id = pg_i64(r, 0, 0, 0);
    PQclear(r);
    store_dim_put(d, s, *id);
    return 0;
}

/* Appends @s to the COPY buffer, escaped for COPY's text format. */
static int pg_copy_put(struct pg_wstate *w, const char *s, int escape)
{
    size_t need = strlen(s) * 2 + 2;

    if (w->copy_len + need > w->copy_cap) {
        size_t cap = w->copy_cap ? w->copy_cap : 65536;
        char *n;

        while (cap < w->copy_len + need)
            cap *= 2;
        n = realloc(w->copy, cap);
        if (!n)
            return -ENOMEM;
        w->copy = n;
        w->copy_cap = cap;
    }
    for (; *s; s++) {
        const char *esc = !escape ? NULL : *s == '\\' ? "\\\\"
                          : *s == '\n' ? "\\n" : *s == '\r' ? "\\r"
                          : *s == '\t' ? "\\t" : NULL;

        if (esc) {
            memcpy(w->copy + w->copy_len, esc, 2);
            w->copy_len += 2;
        } else {
            w->copy[w->copy_len++] = *s;
        }
    }
    return 0;
}

/* Queues @e's row (its ids @ids) for the next COPY. */
static int pg_copy_row(struct pg_wstate *w, const struct store_event_row *e,
                       const struct store_event_ids *ids)
{
    struct store_event_cols c;
    char num[24];
    int rc = 0;

    store_event_cols(e, ids, &c);
    for (int i = 0; i < STORE_EVENT_INTS && rc == 0; i++) {
        snprintf(num, sizeof(num), "%lld\t", (long long)c.v[i]);
        rc = pg_copy_put(w, c.has[i] ? num : "\\N\t", 0);
    }
    if (rc == 0)
        rc = c.data ? pg_copy_put(w, c.data, 1) : pg_copy_put(w, "\\N", 0);
    if (rc == 0)
        rc = pg_copy_put(w, "\n", 0);
    return rc;
}

int pg_copy_flush(struct store *st)
{
    struct pg_wstate *w = st->pg->w;
    PGconn *c = st->pg->wconn;
    PGresult *r;
    int rc = 0;

    if (w->copy_len == 0)
        return 0;
    r = PQexec(c, PG_COPY_SQL);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        pg_w_fail(st, r, "events");
        PQclear(r);
        w->copy_len = 0;
        return -EIO;
    }
    PQclear(r);
    if (PQputCopyData(c, w->copy, (int)w->copy_len) != 1 ||
        PQputCopyEnd(c, NULL) != 1)
        rc = -EIO;
    w->copy_len = 0;
    while ((r = PQgetResult(c))) {
        if (rc == 0 && !pg_ok(r)) {
            pg_w_fail(st, r, "events");
            rc = -EIO;
        }
        PQclear(r);
    }
    if (rc < 0 && st->pg->w->err == PG_ERR_NONE)
        pg_w_fail(st, NULL, "events");
    return rc;
}

/* ---- store_delivery_ops ---- */

/* The agent's stored seqs above @acked, into w->stored (ascending). */
static int pg_stored_load(struct store *st, int64_t agent_id,
                          uint64_t acked)
{
    struct pg_wstate *w = st->pg->w;
    struct pg_params p;
    PGresult *r;
    size_t n;

    pg_params_reset(&p);
    pg_param_i64(&p, agent_id);
    pg_param_i64(&p, (int64_t)acked);
    r = pg_w_query(st, "SELECT seq FROM events WHERE agent_id = $1"
                   " AND seq > $2 ORDER BY seq", &p, "stored seqs");
    if (!r)
        return -EIO;
    n = (size_t)PQntuples(r);
    w->n_stored = 0;
    if (n > w->cap_stored) {
        int64_t *s = realloc(w->stored, n * sizeof(*s));

        if (!s) {
            PQclear(r);
            return -ENOMEM;
        }
        w->stored = s;
        w->cap_stored = n;
    }
    for (size_t i = 0; i < n; i++)
        w->stored[i] = pg_i64(r, (int)i, 0, 0);
    w->n_stored = n;
    PQclear(r);
    return 0;
}

static int pg_stored_has(const struct pg_wstate *w, int64_t seq)
{
    size_t lo = 0, hi = w->n_stored;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (w->stored[mid] == seq)
            return 1;
        if (w->stored[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Reads the agent row FOR UPDATE into @row: 1 found, 0 none, -EIO. */
static int pg_agent_get(struct store *st, const struct pg_params *key,
                        struct store_agent_row *row)
{
    uint8_t win[STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE];
    PGresult *r;
    long len;

    r = pg_w_query(st, "SELECT id, acked_seq, clock_offset_ms,"
                   " drop_first_seq, drop_last_seq, drop_count, drop_last_ms,"
                   " clock_window FROM agents WHERE cluster = $1"
                   " AND node = $2 AND epoch = $3 FOR UPDATE", key,
                   "agent row");
    if (!r)
        return -EIO;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    row->id = pg_i64(r, 0, 0, 0);
    row->acked = (uint64_t)pg_i64(r, 0, 1, 0);
    row->has_offset = !PQgetisnull(r, 0, 2);
    row->offset_ms = pg_f64(r, 0, 2, 0);
    row->drop_first = (uint64_t)pg_i64(r, 0, 3, 0);
    row->drop_last = (uint64_t)pg_i64(r, 0, 4, 0);
    row->drop_count = (uint64_t)pg_i64(r, 0, 5, 0);
    row->drop_last_ms = pg_i64(r, 0, 6, 0);
    len = pg_bytea(r, 0, 7, win, sizeof(win));
    store_clock_load(row, len > 0 ? win : NULL, len > 0 ? (size_t)len : 0);
    PQclear(r);
    return 1;
}

/* The agent row, created if new, locked to COMMIT; then its stored seqs
 * above the watermark, which the lock keeps exact. */
static int pg_agent(struct store *st, const Sextant__V1__Batch *b,
                    int64_t recv_ms, struct store_agent_row *row)
{
    struct pg_params key, p;
    PGresult *r;
    int rc;

    memset(row, 0, sizeof(*row));
    if (pg_intern(st, DIM_CLUSTER, b->cluster, &row->cluster_id) < 0)
        return -EIO;
    pg_params_reset(&key);
    pg_param_text(&key, b->cluster);
    pg_param_text(&key, b->node);
    pg_param_i64(&key, (int64_t)b->epoch);      /* same 64 bits */
    rc = pg_agent_get(st, &key, row);
    if (rc == 0) {
        pg_params_reset(&p);
        pg_param_text(&p, b->cluster);
        pg_param_text(&p, b->region);
        pg_param_text(&p, b->node);
        pg_param_i64(&p, (int64_t)b->epoch);
        pg_param_text(&p, b->agent_version);
        pg_param_i64(&p, recv_ms);
        pg_param_i64(&p, row->cluster_id);
        r = pg_w_query(st, "INSERT INTO agents (cluster, region, node, epoch,"
                       " agent_version, first_seen_ms, last_seen_ms,"
                       " cluster_id) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"
                       " ON CONFLICT (cluster, node, epoch) DO NOTHING", &p,
                       "agent row");
        if (!r)
            return -EIO;
        PQclear(r);
        rc = pg_agent_get(st, &key, row);
        if (rc == 0) {
            log_msg(LOGL_ERROR, "store", "agent row missing after insert");
            rc = -EIO;
        }
    }
    if (rc < 0)
        return rc;
    return pg_stored_load(st, row->id, row->acked);
}

static int pg_seq_max(struct store *st, int64_t agent_id, uint64_t *out)
{
    struct pg_params p;
    PGresult *r;

    pg_params_reset(&p);
    pg_param_i64(&p, agent_id);
    r = pg_w_query(st, "SELECT max(seq) FROM events WHERE agent_id = $1",
                   &p, "highest seq");
    if (!r)
        return -EIO;
    *out = (uint64_t)pg_i64(r, 0, 0, 0);
    PQclear(r);
    return 0;
}

/* A walk reads what the batch inserted so far: the COPY goes first. */
static int pg_walk(struct store *st, int64_t agent_id, uint64_t from,
                   uint64_t to)
{
    struct pg_wstate *w = st->pg->w;
    struct pg_params p;

    w->walk = NULL;
    w->walk_row = 0;
    if (pg_copy_flush(st) < 0)
        return -EIO;
    pg_params_reset(&p);
    pg_param_i64(&p, agent_id);
    pg_param_i64(&p, (int64_t)from);
    pg_param_i64(&p, to > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)to);
    w->walk = pg_w_query(st, "SELECT seq, unix_ms FROM events"
                         " WHERE agent_id = $1 AND seq >= $2 AND seq <= $3"
                         " ORDER BY seq", &p, "stored seqs");
    return w->walk ? 0 : -EIO;
}

static int pg_next(struct store *st, uint64_t *seq, int64_t *ms)
{
    struct pg_wstate *w = st->pg->w;

    if (!w->walk || w->walk_row >= PQntuples(w->walk))
        return 0;
    *seq = (uint64_t)pg_i64(w->walk, w->walk_row, 0, 0);
    *ms = pg_i64(w->walk, w->walk_row, 1, 0);
    w->walk_row++;
    return 1;
}

static int pg_walk_end(struct store *st, int rc, const char *what)
{
    (void)what;                 /* a failure was logged where it happened */
    PQclear(st->pg->w->walk);
    st->pg->w->walk = NULL;
    return rc;
}

static int pg_event(struct store *st, struct store_event_row *e)
{
    struct pg_wstate *w = st->pg->w;
    struct store_event_ids ids;

    if (e->seq && pg_stored_has(w, (int64_t)e->seq))
        return 0;
    if (store_event_intern(st, e, pg_intern, &ids) < 0)
        return -EIO;
    e->target_id = ids.target;
    e->text_id = ids.text;
    if (pg_copy_row(w, e, &ids) < 0)
        return -ENOMEM;
    return 1;
}

static int pg_offset(struct store *st, const struct store_agent_row *row,
                     uint64_t prior_max, uint64_t first)
{
    struct pg_params p;
    PGresult *r;
    int64_t off;
    int same;

    if (!row->has_offset)
        return 0;
    off = llround(row->offset_ms);
    pg_params_reset(&p);
    pg_param_i64(&p, row->id);
    r = pg_w_query(st, "SELECT offset_ms FROM agent_offsets"
                   " WHERE agent_id = $1 ORDER BY from_seq DESC LIMIT 1", &p,
                   "clock offset row");
    if (!r)
        return -EIO;
    same = PQntuples(r) == 1 && pg_i64(r, 0, 0, 0) == off;
    PQclear(r);
    if (same)
        return 0;
    pg_param_i64(&p, store_offset_from(prior_max, first));
    pg_param_i64(&p, off);
    r = pg_w_query(st, "INSERT INTO agent_offsets (agent_id, from_seq,"
                   " offset_ms) VALUES ($1, $2, $3) ON CONFLICT (agent_id,"
                   " from_seq) DO UPDATE SET offset_ms = excluded.offset_ms",
                   &p, "clock offset row");
    PQclear(r);
    return r ? 0 : -EIO;
}

static int pg_agent_put(struct store *st, const struct store_agent_row *row,
                        const Sextant__V1__Batch *b, int64_t recv_ms,
                        int reported)
{
    uint8_t win[STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE];
    char hex[sizeof(win) * 2 + 3];
    size_t win_len = store_clock_save(row, win);
    struct pg_params p;
    PGresult *r;

    pg_bytea_hex(win, win_len, hex);
    pg_params_reset(&p);
    pg_param_i64(&p, row->id);
    pg_param_i64(&p, (int64_t)row->acked);
    pg_param_text(&p, b->region);
    pg_param_text(&p, b->agent_version);
    pg_param_i64(&p, recv_ms);
    if (row->has_offset)
        pg_param_f64(&p, row->offset_ms);
    else
        pg_param_text(&p, NULL);
    pg_param_i64(&p, (int64_t)row->drop_first);
    pg_param_i64(&p, (int64_t)row->drop_last);
    pg_param_i64(&p, (int64_t)row->drop_count);
    pg_param_i64(&p, row->drop_last_ms);
    pg_param_text(&p, win_len ? hex : NULL);
    if (reported)
        pg_param_i64(&p, recv_ms);
    else
        pg_param_text(&p, NULL);
    pg_param_i64(&p, (int64_t)b->spool_events);
    pg_param_i64(&p, (int64_t)b->spool_bytes);
    r = pg_w_query(st, "UPDATE agents SET acked_seq = $2, region = $3,"
                   " agent_version = $4, last_seen_ms = $5,"
                   " clock_offset_ms = $6, drop_first_seq = $7,"
                   " drop_last_seq = $8, drop_count = $9, drop_last_ms = $10,"
                   " clock_window = $11,"
                   " drop_report_ms = coalesce($12::bigint, drop_report_ms),"
                   " spool_events = $13, spool_bytes = $14 WHERE id = $1",
                   &p, "agent row");
    PQclear(r);
    return r ? 0 : -EIO;
}

const struct store_delivery_ops pg_delivery_ops = {
    .agent = pg_agent,
    .seq_max = pg_seq_max,
    .walk = pg_walk,
    .next = pg_next,
    .walk_end = pg_walk_end,
    .event = pg_event,
    .offset = pg_offset,
    .agent_put = pg_agent_put,
};

/* ---- rollups and target_now, before COMMIT ---- */

static const char *const pg_rollup_sql[2][3] = {
    { "INSERT INTO rollup_minute (target_id, cluster_id, t, count,"
      " failures, hist) VALUES ($1, $2, $3, $4, $5, $6)"
      " ON CONFLICT DO NOTHING RETURNING 1",
      "SELECT count, failures, hist FROM rollup_minute WHERE target_id = $1"
      " AND cluster_id = $2 AND t = $3 FOR UPDATE",
      "UPDATE rollup_minute SET count = $4, failures = $5, hist = $6"
      " WHERE target_id = $1 AND cluster_id = $2 AND t = $3" },
    { "INSERT INTO rollup_hour (target_id, cluster_id, t, count,"
      " failures, hist) VALUES ($1, $2, $3, $4, $5, $6)"
      " ON CONFLICT DO NOTHING RETURNING 1",
      "SELECT count, failures, hist FROM rollup_hour WHERE target_id = $1"
      " AND cluster_id = $2 AND t = $3 FOR UPDATE",
      "UPDATE rollup_hour SET count = $4, failures = $5, hist = $6"
      " WHERE target_id = $1 AND cluster_id = $2 AND t = $3" },
};

/* Writes @row as the row of @d's key with statement @sql: 1 written (an
 * insert may find the row there: 0), or -errno. */
static int pg_rollup_put(struct store *st, const char *sql,
                         const struct store_delta *d,
                         const struct store_rollup_row *row)
{
    struct pg_params p;
    char *hex = malloc(row->len * 2 + 3);
    PGresult *r;
    int rc;

    if (!hex)
        return -ENOMEM;
    pg_bytea_hex(row->blob, row->len, hex);
    pg_params_reset(&p);
    pg_param_i64(&p, d->target_id);
    pg_param_i64(&p, d->cluster_id);
    pg_param_i64(&p, d->t);
    pg_param_i64(&p, (int64_t)row->count);
    pg_param_i64(&p, (int64_t)row->failures);
    pg_param_text(&p, hex);
    r = pg_w_query(st, sql, &p, "rollup row");
    rc = !r ? -EIO : PQntuples(r) > 0 || PQcmdTuples(r)[0] != '0';
    PQclear(r);
    free(hex);
    return rc;
}

/* store_rollup_fn: a new row, or the row read FOR UPDATE (another
 * collector may add to the same minute), merged and written back. */
int pg_rollup_add(struct store *st, int hour, const struct store_delta *d)
{
    struct store_rollup_row row = { 0 };
    struct pg_params p;
    PGresult *r = NULL;
    uint8_t *old = NULL;
    long len;
    int rc;

    rc = store_rollup_fold(d, 0, 0, 0, NULL, 0, &row);
    if (rc == 0)
        rc = pg_rollup_put(st, pg_rollup_sql[hour][0], d, &row);
    free(row.blob);
    row.blob = NULL;
    if (rc != 0)
        return rc < 0 ? rc : 0;         /* 1: inserted */
    pg_params_reset(&p);
    pg_param_i64(&p, d->target_id);
    pg_param_i64(&p, d->cluster_id);
    pg_param_i64(&p, d->t);
    r = pg_w_query(st, pg_rollup_sql[hour][1], &p, "rollup row");
    if (!r || PQntuples(r) != 1) {
        rc = -EIO;
        goto out;
    }
    old = malloc((size_t)PQgetlength(r, 0, 2) / 2 + 1);
    if (!old) {
        rc = -ENOMEM;
        goto out;
    }
    len = pg_bytea(r, 0, 2, old, (size_t)PQgetlength(r, 0, 2) / 2 + 1);
    rc = store_rollup_fold(d, 1, (uint64_t)pg_i64(r, 0, 0, 0),
                           (uint64_t)pg_i64(r, 0, 1, 0), old,
                           len > 0 ? (size_t)len : 0, &row);
    if (rc == 0)
        rc = pg_rollup_put(st, pg_rollup_sql[hour][2], d, &row) < 0 ? -EIO
                                                                    : 0;
out:
    PQclear(r);
    free(old);
    free(row.blob);
    return rc;
}

/* store_now_put_fn: only this agent's transaction writes its rows. */
int pg_now_put(struct store *st, const struct store_now *k)
{
    static const char sql[] =
        "INSERT INTO target_now (agent_id, target_id, health, state_ms,"
        " probe_ms, ok, status, total_us, text_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (agent_id, target_id) DO UPDATE SET " STORE_NOW_SET;
    int hs = k->state_ms != INT64_MIN, hp = k->probe_ms != INT64_MIN;
    struct pg_params p;
    PGresult *r;

    pg_params_reset(&p);
    pg_param_i64(&p, k->agent_id);
    pg_param_i64(&p, k->target_id);
    pg_param_text(&p, hs ? k->health : NULL);
    if (hs)
        pg_param_i64(&p, k->state_ms);
    else
        pg_param_text(&p, NULL);
    if (hp) {
        pg_param_i64(&p, k->probe_ms);
        pg_param_i64(&p, k->ok);
        pg_param_i64(&p, k->status);
        pg_param_i64(&p, k->total_us);
    } else {
        for (int i = 0; i < 4; i++)
            pg_param_text(&p, NULL);
    }
    if (hp && k->text_id)
        pg_param_i64(&p, k->text_id);
    else
        pg_param_text(&p, NULL);
    r = pg_w_query(st, sql, &p, "target_now");
    PQclear(r);
    return r ? 0 : -EIO;
}
