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
 * transaction), rollup rows and target_now rows, gathered over the
 * group and written at its end a few statements per table (rollups:
 * inserted, or read FOR UPDATE, merged in C and written back). The
 * writer thread only. */
#include "store_pg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
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

/* ---- rollups and target_now, before COMMIT ----
 *
 * Gathered over the group (pg_rollup_add, pg_now_put) and sent by
 * pg_group_flush as array parameters (text format, '{1,2,3}') that the
 * server unnests: a few statements per group, not two or three per row.
 * Round trips, not either side's CPU, bound this writer (bench/RESULTS.md
 * "Many collectors on PostgreSQL"). */

/* A group's rollup row: where its row stands, its delta (with a
 * histogram of its own) and the row to write. */
enum pg_key_state { PG_KEY_NEW, PG_KEY_INSERTED, PG_KEY_READ };
struct pg_rollup_key {
    enum pg_key_state state;
    struct store_delta d;
    struct store_rollup_row row;
};

/* An array parameter under construction; oom: a growth failed. */
struct pg_arr {
    char *s;
    size_t len, cap;
    int oom;
};

static void pg_arr_put(struct pg_arr *a, const char *s, size_t n)
{
    size_t cap = a->cap ? a->cap : 256;
    char *ns;

    if (a->oom)
        return;
    while (a->len + n + 2 > cap)
        cap *= 2;
    if (cap != a->cap) {
        ns = realloc(a->s, cap);
        if (!ns) {
            a->oom = 1;
            return;
        }
        a->s = ns;
        a->cap = cap;
    }
    memcpy(a->s + a->len, s, n);
    a->len += n;
    a->s[a->len] = '\0';
}

/* Starts the next element: '{' before the first, ',' before the others. */
static void pg_arr_next(struct pg_arr *a)
{
    pg_arr_put(a, a->len ? "," : "{", 1);
}

static void pg_arr_i64(struct pg_arr *a, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);

    pg_arr_next(a);
    pg_arr_put(a, b, (size_t)n);
}

static void pg_arr_null(struct pg_arr *a)
{
    pg_arr_next(a);
    pg_arr_put(a, "NULL", 4);
}

/* @s quoted, its '"' and '\' escaped: any text stays one element. */
static void pg_arr_str(struct pg_arr *a, const char *s)
{
    size_t run;

    pg_arr_next(a);
    pg_arr_put(a, "\"", 1);
    while (*s) {
        run = strcspn(s, "\"\\");
        pg_arr_put(a, s, run);
        s += run;
        if (*s) {
            pg_arr_put(a, "\\", 1);
            pg_arr_put(a, s++, 1);
        }
    }
    pg_arr_put(a, "\"", 1);
}

/* @data as a bytea element ("\\x..." hex, quoted and escaped). */
static int pg_arr_bytea(struct pg_arr *a, const uint8_t *data, size_t len)
{
    char *hex = malloc(len * 2 + 3);

    if (!hex)
        return -ENOMEM;
    pg_bytea_hex(data, len, hex);
    pg_arr_str(a, hex);
    free(hex);
    return 0;
}

/* Closes @n arrays into the parameters @p ("{}" when empty): 0, -ENOMEM. */
static int pg_arrs_params(struct pg_arr *a, int n, struct pg_params *p)
{
    pg_params_reset(p);
    for (int i = 0; i < n; i++) {
        if (a[i].len == 0)
            pg_arr_put(&a[i], "{", 1);
        pg_arr_put(&a[i], "}", 1);
        if (a[i].oom)
            return -ENOMEM;
        pg_param_text(p, a[i].s);
    }
    return 0;
}

static void pg_arrs_free(struct pg_arr *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].s);
        memset(&a[i], 0, sizeof(a[i]));
    }
}

/* Per table (minute, hour): the insert of the rows as new (what it
 * inserted comes back; a key another collector has is skipped, or waited
 * for while its insert is uncommitted), the read FOR UPDATE of the rows
 * it did not insert, and their update. Rows are inserted and locked in
 * key order: a SELECT sorts before it locks (PostgreSQL's SELECT,
 * "The Locking Clause": ORDER BY is applied first, rows are locked as
 * they come out), so two collectors lock their common rows in the same
 * order; a deadlock all the same is rolled back and retried. */
static const char *const pg_rollup_sql[2][3] = {
    { "INSERT INTO rollup_minute (target_id, cluster_id, t, count,"
      " failures, hist) SELECT * FROM unnest($1::bigint[], $2::bigint[],"
      " $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])"
      " AS u (g, c, t, n, f, h) ORDER BY g, c, t"
      " ON CONFLICT DO NOTHING RETURNING target_id, cluster_id, t",
      "SELECT target_id, cluster_id, t, count, failures, hist"
      " FROM rollup_minute WHERE (target_id, cluster_id, t) IN"
      " (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]))"
      " ORDER BY target_id, cluster_id, t FOR UPDATE",
      "UPDATE rollup_minute r SET count = u.n, failures = u.f, hist = u.h"
      " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],"
      " $4::bigint[], $5::bigint[], $6::bytea[]) AS u (g, c, t, n, f, h)"
      " WHERE r.target_id = u.g AND r.cluster_id = u.c AND r.t = u.t" },
    { "INSERT INTO rollup_hour (target_id, cluster_id, t, count,"
      " failures, hist) SELECT * FROM unnest($1::bigint[], $2::bigint[],"
      " $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])"
      " AS u (g, c, t, n, f, h) ORDER BY g, c, t"
      " ON CONFLICT DO NOTHING RETURNING target_id, cluster_id, t",
      "SELECT target_id, cluster_id, t, count, failures, hist"
      " FROM rollup_hour WHERE (target_id, cluster_id, t) IN"
      " (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]))"
      " ORDER BY target_id, cluster_id, t FOR UPDATE",
      "UPDATE rollup_hour r SET count = u.n, failures = u.f, hist = u.h"
      " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],"
      " $4::bigint[], $5::bigint[], $6::bytea[]) AS u (g, c, t, n, f, h)"
      " WHERE r.target_id = u.g AND r.cluster_id = u.c AND r.t = u.t" },
};

/* store_rollup_fn: notes @d (copied) for pg_group_flush. The deltas come
 * in ascending key order per table. */
int pg_rollup_add(struct store *st, int hour, const struct store_delta *d)
{
    struct pg_wstate *w = st->pg->w;
    struct pg_rollup_key *k;

    if (w->n_roll[hour] == w->cap_roll[hour]) {
        size_t cap = w->cap_roll[hour] ? w->cap_roll[hour] * 2 : 256;

        k = realloc(w->roll[hour], cap * sizeof(*k));
        if (!k)
            return -ENOMEM;
        w->roll[hour] = k;
        w->cap_roll[hour] = cap;
    }
    k = &w->roll[hour][w->n_roll[hour]];
    memset(k, 0, sizeof(*k));
    k->d = *d;
    hist_init(&k->d.h);
    w->n_roll[hour]++;                  /* freed by pg_group_drop */
    return hist_merge(&k->d.h, &d->h) < 0 ? -ENOMEM : 0;
}

/* The arrays of the keys in @state: their keys, and with @values their
 * rows' counts and histograms: 0 or -ENOMEM. */
static int pg_rollup_arrs(const struct pg_rollup_key *k, size_t n,
                          enum pg_key_state state, int values,
                          struct pg_arr *a, struct pg_params *p)
{
    for (size_t i = 0; i < n; i++) {
        if (k[i].state != state)
            continue;
        pg_arr_i64(&a[0], k[i].d.target_id);
        pg_arr_i64(&a[1], k[i].d.cluster_id);
        pg_arr_i64(&a[2], k[i].d.t);
        if (!values)
            continue;
        pg_arr_i64(&a[3], (int64_t)k[i].row.count);
        pg_arr_i64(&a[4], (int64_t)k[i].row.failures);
        if (pg_arr_bytea(&a[5], k[i].row.blob, k[i].row.len) < 0)
            return -ENOMEM;
    }
    return pg_arrs_params(a, values ? 6 : 3, p);
}

static int pg_rollup_key_cmp(const void *pa, const void *pb)
{
    const struct store_delta *a = &((const struct pg_rollup_key *)pa)->d;
    const struct store_delta *b = &((const struct pg_rollup_key *)pb)->d;

    if (a->target_id != b->target_id)
        return a->target_id < b->target_id ? -1 : 1;
    if (a->cluster_id != b->cluster_id)
        return a->cluster_id < b->cluster_id ? -1 : 1;
    return a->t < b->t ? -1 : a->t > b->t;
}

/* The key of result row @i (its first three columns) among the sorted
 * @k, when it is there in state PG_KEY_NEW; else NULL. */
static struct pg_rollup_key *pg_rollup_find(struct pg_rollup_key *k,
                                            size_t n, const PGresult *r,
                                            int i)
{
    struct pg_rollup_key want, *x;

    want.d.target_id = pg_i64(r, i, 0, 0);
    want.d.cluster_id = pg_i64(r, i, 1, 0);
    want.d.t = pg_i64(r, i, 2, 0);
    x = bsearch(&want, k, n, sizeof(*k), pg_rollup_key_cmp);
    return x && x->state == PG_KEY_NEW ? x : NULL;
}

/* Row @i of the read FOR UPDATE merged into its key's row. */
static int pg_rollup_merge(struct pg_rollup_key *x, const PGresult *r,
                           int i)
{
    size_t cap = (size_t)PQgetlength(r, i, 5) / 2 + 1;
    uint8_t *old = malloc(cap);
    long len;
    int rc;

    if (!old)
        return -ENOMEM;
    len = pg_bytea(r, i, 5, old, cap);
    free(x->row.blob);
    x->row.blob = NULL;
    rc = store_rollup_fold(&x->d, 1, (uint64_t)pg_i64(r, i, 3, 0),
                           (uint64_t)pg_i64(r, i, 4, 0), old,
                           len > 0 ? (size_t)len : 0, &x->row);
    free(old);
    x->state = PG_KEY_READ;
    return rc;
}

/* Marks the rows of @r (as pg_rollup_find finds them) inserted (@read 0)
 * or merges them (@read 1): their number, or -EIO (a row we did not ask
 * for, or twice) or -ENOMEM. */
static long pg_rollup_rows(struct pg_rollup_key *k, size_t n,
                           const PGresult *r, int read)
{
    struct pg_rollup_key *x;
    int rows = PQntuples(r);

    for (int i = 0; i < rows; i++) {
        x = pg_rollup_find(k, n, r, i);
        if (!x)
            return -EIO;
        if (!read)
            x->state = PG_KEY_INSERTED;
        else if (pg_rollup_merge(x, r, i) < 0)
            return -ENOMEM;
    }
    return rows;
}

/* Statement @q of pg_rollup_sql[@hour] over the keys in @state: its
 * result, or NULL with *@rc -EIO (w->err says why) or -ENOMEM. */
static PGresult *pg_rollup_run(struct store *st, int hour, int q,
                               const struct pg_rollup_key *k, size_t n,
                               enum pg_key_state state, int *rc)
{
    struct pg_arr a[6] = { { 0 } };
    struct pg_params p;
    PGresult *r = NULL;

    *rc = pg_rollup_arrs(k, n, state, q != 1, a, &p);
    if (*rc == 0) {
        r = pg_w_query(st, pg_rollup_sql[hour][q], &p, "rollup rows");
        *rc = r ? 0 : -EIO;
    }
    pg_arrs_free(a, 6);
    return r;
}

/* One table's rows: insert as new, read the others FOR UPDATE, merge,
 * update. 0, -EIO (w->err says why when the database did) or -ENOMEM. */
static int pg_rollup_flush(struct store *st, int hour)
{
    struct pg_wstate *w = st->pg->w;
    struct pg_rollup_key *k = w->roll[hour];
    size_t n = w->n_roll[hour];
    PGresult *r = NULL;
    long left = (long)n, got;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = store_rollup_fold(&k[i].d, 0, 0, 0, NULL, 0, &k[i].row);
    if (rc < 0 || n == 0)
        goto out;
    r = pg_rollup_run(st, hour, 0, k, n, PG_KEY_NEW, &rc);
    got = r ? pg_rollup_rows(k, n, r, 0) : rc;
    rc = got < 0 ? (int)got : 0;
    left -= got;
    if (rc < 0 || left == 0)
        goto out;
    PQclear(r);
    /* Fewer rows than keys: retention deleted a row meanwhile. */
    r = pg_rollup_run(st, hour, 1, k, n, PG_KEY_NEW, &rc);
    got = r ? pg_rollup_rows(k, n, r, 1) : rc;
    if (got != left) {
        rc = got == -ENOMEM ? -ENOMEM : -EIO;
        goto out;
    }
    PQclear(r);
    r = pg_rollup_run(st, hour, 2, k, n, PG_KEY_READ, &rc);
    if (r && strtol(PQcmdTuples(r), NULL, 10) != left)
        rc = -EIO;
out:
    PQclear(r);
    return rc;
}

/* store_now_put_fn: notes @k for pg_group_flush (keys come unique, in
 * ascending order). */
int pg_now_put(struct store *st, const struct store_now *k)
{
    struct pg_wstate *w = st->pg->w;

    if (w->n_now == w->cap_now) {
        size_t cap = w->cap_now ? w->cap_now * 2 : 256;
        struct store_now *v = realloc(w->now, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        w->now = v;
        w->cap_now = cap;
    }
    w->now[w->n_now++] = *k;
    return 0;
}

/* One upsert of every (agent, target) of the group: only that agent's
 * transaction writes its rows, so no lock order to keep. */
static int pg_now_flush(struct store *st)
{
    static const char sql[] =
        "INSERT INTO target_now (agent_id, target_id, health, state_ms,"
        " probe_ms, ok, status, total_us, text_id) SELECT * FROM"
        " unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],"
        " $5::bigint[], $6::integer[], $7::integer[], $8::bigint[],"
        " $9::bigint[])"
        " ON CONFLICT (agent_id, target_id) DO UPDATE SET " STORE_NOW_SET;
    struct pg_wstate *w = st->pg->w;
    struct pg_arr a[9] = { { 0 } };
    struct pg_params p;
    PGresult *r;
    int rc;

    if (w->n_now == 0)
        return 0;
    for (size_t i = 0; i < w->n_now; i++) {
        const struct store_now *k = &w->now[i];
        int hs = k->state_ms != INT64_MIN, hp = k->probe_ms != INT64_MIN;

        pg_arr_i64(&a[0], k->agent_id);
        pg_arr_i64(&a[1], k->target_id);
        if (hs) {
            pg_arr_str(&a[2], k->health);
            pg_arr_i64(&a[3], k->state_ms);
        } else {
            pg_arr_null(&a[2]);
            pg_arr_null(&a[3]);
        }
        if (hp) {
            pg_arr_i64(&a[4], k->probe_ms);
            pg_arr_i64(&a[5], k->ok);
            pg_arr_i64(&a[6], k->status);
            pg_arr_i64(&a[7], k->total_us);
        } else {
            for (int j = 4; j < 8; j++)
                pg_arr_null(&a[j]);
        }
        if (hp && k->text_id)
            pg_arr_i64(&a[8], k->text_id);
        else
            pg_arr_null(&a[8]);
    }
    rc = pg_arrs_params(a, 9, &p);
    if (rc == 0) {
        r = pg_w_query(st, sql, &p, "target_now");
        rc = r ? 0 : -EIO;
        PQclear(r);
    }
    pg_arrs_free(a, 9);
    return rc;
}

int pg_group_flush(struct store *st)
{
    int rc = pg_rollup_flush(st, 0);

    if (rc == 0)
        rc = pg_rollup_flush(st, 1);
    if (rc == 0)
        rc = pg_now_flush(st);
    pg_group_drop(st->pg->w, 0);
    return rc;
}

void pg_group_drop(struct pg_wstate *w, int release)
{
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < w->n_roll[t]; i++) {
            hist_free(&w->roll[t][i].d.h);
            free(w->roll[t][i].row.blob);
        }
        w->n_roll[t] = 0;
        if (release) {
            free(w->roll[t]);
            w->roll[t] = NULL;
            w->cap_roll[t] = 0;
        }
    }
    w->n_now = 0;
    if (release) {
        free(w->now);
        w->now = NULL;
        w->cap_now = 0;
    }
}
