/* pg_incscan.c -- the incident driver's database operations on
 * PostgreSQL (store_pg.h): store_incscan.c and store_incrows.c call these
 * where they would step their SQLite statements, when the driver is the
 * PostgreSQL leader's (in->pg). The statements that read the same in
 * both dialects are store_incscan.c's own text (store_inc_sql); the scan
 * is this file's, since PostgreSQL reads an event's JSON data with
 * jsonb operators and gets it in the same row (SQLite looks each up).
 *
 * A scan reads through a cursor in a transaction of its own (or the one
 * open), a page at a time: a rebuild reads every stored event, which
 * must not sit in memory at once. Only events with an id up to the
 * fence are read (store_pg.h PG_LOCK_FENCE): events above it may still
 * be committing with smaller ids, and the next tick reads them. */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"
#include "log.h"
#include "store_priv.h"
#include "wire.h"

#define PG_INC_PAGE "1000"          /* rows fetched at once */

/* The values of a JSON array's objects' "value" keys, joined by '\n', as
 * SQLite's group_concat over json_each gives them (NULL: none). */
#define PG_ANSWERS(x) \
    "(SELECT string_agg(a.v->>'value', E'\\n' ORDER BY a.o)" \
    " FROM jsonb_array_elements(CASE WHEN jsonb_typeof(" x ") = 'array'" \
    " THEN " x " END) WITH ORDINALITY a(v, o))"

/* store_inc_srow's columns, then its data's (store_inc_drow). */
#define PG_INC_COLS \
    "SELECT e.id, e.agent_id, e.seq, e.unix_ms, e.kind_id, e.target_id," \
    " e.probe_type, e.ok, e.served_by_id, e.answers_id," \
    " (e.data IS NOT NULL)::int, e.recv_delta_ms," \
    " j.d->>'to', j.d->>'name', " PG_ANSWERS("j.d->'new'") "," \
    " j.d->>'kind', j.d->>'from', j.d->>'service'," \
    " CASE WHEN jsonb_typeof(j.d->'value') = 'number'" \
    "  THEN (j.d->>'value')::float8 END," \
    " CASE jsonb_typeof(j.d->'ok') WHEN 'boolean'" \
    "  THEN (j.d->'ok')::boolean::int" \
    "  WHEN 'number' THEN ((j.d->>'ok')::float8 <> 0)::int ELSE 0 END," \
    " j.d->>'served_by', " PG_ANSWERS("j.d->'answers'") ", j.d->>'type'," \
    " CASE WHEN e.data IS NOT NULL AND e.text_id IS NOT NULL THEN" \
    "  (SELECT (left(x.text, 8) = '" WIRE_HANDOFF "')::int FROM texts x" \
    "  WHERE x.id = e.text_id) ELSE 0 END" \
    " FROM events e CROSS JOIN LATERAL (SELECT e.data::jsonb AS d) j" \
    " WHERE e.seq IS NOT NULL AND (e.target_id IS NOT NULL" \
    "  OR e.kind_id = $3)"

static const char pg_inc_scan_sql[] =
    "DECLARE inc_scan NO SCROLL CURSOR FOR " PG_INC_COLS
    " AND e.unix_ms >= $1 AND e.unix_ms <= $2 AND e.id <= $4"
    " ORDER BY e.unix_ms";
static const char pg_inc_ids_sql[] =
    "DECLARE inc_scan NO SCROLL CURSOR FOR " PG_INC_COLS
    " AND e.id > $1 AND e.id <= $2";

static const char pg_inc_answers_sql[] =
    "SELECT " PG_ANSWERS("t.text::jsonb") " FROM texts t WHERE t.id = $1";

/* Logs a failed statement's error (once per failure, here). */
static void pg_inc_log(struct store_inc *in, const PGresult *r,
                       const char *what)
{
    char why[256];

    pg_err_text(in->pg->c, r, why, sizeof(why));
    log_msg(LOGL_ERROR, "incidents", "postgres: %s: %s", what, why);
}

/* @sql with @p on the leader's connection: the result, or NULL (logged,
 * cleared) when it failed. */
static PGresult *pg_inc_q(struct store_inc *in, const char *sql,
                          const struct pg_params *p, const char *what)
{
    PGresult *r = pg_query(in->pg->c, sql, p);

    if (!pg_ok(r)) {
        pg_inc_log(in, r, what);
        PQclear(r);
        return NULL;
    }
    return r;
}

int pg_inc_dim(struct store_inc *in, int q, int64_t id, char **out)
{
    struct pg_params p;
    PGresult *r;
    const char *v;

    pg_params_reset(&p);
    pg_param_i64(&p, id);
    r = pg_inc_q(in, q == INC_Q_ANSWERS ? pg_inc_answers_sql
                                        : store_inc_sql[q], &p, "names");
    if (!r)
        return -EIO;
    v = PQntuples(r) ? pg_text(r, 0, 0) : NULL;
    *out = v ? strdup(v) : NULL;
    PQclear(r);
    return v && !*out ? -ENOMEM : 0;
}

int pg_inc_offset(struct store_inc *in, int64_t agent, int64_t seq,
                  int64_t *from, int64_t *off, int64_t *next)
{
    struct pg_params p;
    PGresult *a, *b;
    int rc = -EIO;

    pg_params_reset(&p);
    pg_param_i64(&p, agent);
    pg_param_i64(&p, seq);
    a = pg_inc_q(in, store_inc_sql[INC_Q_OFF_AT], &p, "offsets");
    b = a ? pg_inc_q(in, store_inc_sql[INC_Q_OFF_NEXT], &p, "offsets")
          : NULL;
    if (a && b && PQntuples(b) == 1) {
        *from = PQntuples(a) ? pg_i64(a, 0, 0, INT64_MIN) : INT64_MIN;
        *off = PQntuples(a) ? pg_i64(a, 0, 1, 0) : 0;
        *next = pg_i64(b, 0, 0, INT64_MAX);
        rc = 0;
    }
    PQclear(a);
    PQclear(b);
    return rc;
}

int pg_inc_setup(struct store_inc *in, const char *const *names,
                 int64_t *ids, size_t n, int64_t *bound)
{
    PGresult *k, *b;
    int rc = -EIO;

    k = pg_inc_q(in, store_inc_sql[INC_Q_KINDS], NULL, "kinds");
    b = k ? pg_inc_q(in, store_inc_sql[INC_Q_OFF_BOUND], NULL, "offsets")
          : NULL;
    if (k && b && PQntuples(b) == 1) {
        for (int i = 0; i < PQntuples(k); i++)
            for (size_t j = 0; j < n; j++)
                if (strcmp(PQgetvalue(k, i, 1), names[j]) == 0)
                    ids[j] = pg_i64(k, i, 0, 0);
        *bound = pg_i64(b, 0, 0, 0);
        rc = 0;
    }
    PQclear(k);
    PQclear(b);
    return rc;
}

/* ---- the scan: a cursor, a page at a time ---- */

static int pg_inc_cursor(struct store_inc *in, const char *sql,
                         const struct pg_params *p)
{
    struct store_pg_inc *pi = in->pg;
    PGresult *r;

    pi->began = PQtransactionStatus(pi->c) == PQTRANS_IDLE;
    if (pi->began && pg_exec(pi->c, "BEGIN") < 0) {
        pi->began = 0;
        return -EIO;
    }
    r = pg_inc_q(in, sql, p, "reading events");
    if (!r)
        return -EIO;
    PQclear(r);
    pi->open = 1;
    pi->row = 0;
    return 0;
}

/* Opens the cursor of @sql over ($1 @a, $2 @b, $3 @failover[, $4 the
 * fence]). */
static int pg_inc_open(struct store_inc *in, const char *sql, int64_t a,
                       int64_t b, int64_t failover, int fenced)
{
    struct pg_params p;

    pg_params_reset(&p);
    pg_param_i64(&p, a);
    pg_param_i64(&p, b);
    pg_param_i64(&p, failover);
    if (fenced)
        pg_param_i64(&p, in->pg->fence);
    return pg_inc_cursor(in, sql, &p);
}

int pg_inc_scan_begin(struct store_inc *in, int64_t lo, int64_t hi,
                      int64_t failover)
{
    return pg_inc_open(in, pg_inc_scan_sql, lo, hi, failover, 1);
}

int pg_inc_ids_begin(struct store_inc *in, int64_t after, int64_t upto,
                     int64_t failover)
{
    return pg_inc_open(in, pg_inc_ids_sql, after, upto, failover, 0);
}

int pg_inc_scan_next(struct store_inc *in, struct store_inc_srow *r)
{
    struct store_pg_inc *pi = in->pg;
    struct store_inc_drow *d = &r->d;
    PGresult *g;
    int i;

    if (!pi->open)
        return -EIO;
    if (!pi->page || pi->row >= PQntuples(pi->page)) {
        PQclear(pi->page);
        pi->page = pg_inc_q(in, "FETCH " PG_INC_PAGE " FROM inc_scan", NULL,
                            "reading events");
        pi->row = 0;
        if (!pi->page)
            return -EIO;
        if (PQntuples(pi->page) == 0)
            return 0;
    }
    g = pi->page;
    i = pi->row++;
    memset(r, 0, sizeof(*r));
    r->id = pg_i64(g, i, 0, 0);
    r->agent = pg_i64(g, i, 1, 0);
    r->seq = pg_i64(g, i, 2, 0);
    r->unix_ms = pg_i64(g, i, 3, 0);
    r->kind = pg_i64(g, i, 4, 0);
    r->target_id = pg_i64(g, i, 5, 0);
    r->probe_type = (int)pg_i64(g, i, 6, 0);
    r->ok = (int)pg_i64(g, i, 7, 0);
    r->served_by_id = pg_i64(g, i, 8, 0);
    r->answers_id = pg_i64(g, i, 9, 0);
    r->has_data = (int)pg_i64(g, i, 10, 0);
    r->recv_delta = pg_i64(g, i, 11, 0);
    r->has_d = 1;
    d->to = pg_text(g, i, 12);
    d->name = pg_text(g, i, 13);
    d->new_answers = pg_text(g, i, 14);
    d->fokind = pg_text(g, i, 15);
    d->from = pg_text(g, i, 16);
    d->service = pg_text(g, i, 17);
    d->value_num = !PQgetisnull(g, i, 18);
    d->value = pg_f64(g, i, 18, 0);
    d->ok = (int)pg_i64(g, i, 19, 0);
    d->served_by = pg_text(g, i, 20);
    d->answers = pg_text(g, i, 21);
    d->type = pg_text(g, i, 22);
    d->handoff = (int)pg_i64(g, i, 23, 0);
    return 1;
}

void pg_inc_scan_end(struct store_inc *in)
{
    struct store_pg_inc *pi = in->pg;
    PGTransactionStatusType ts = PQtransactionStatus(pi->c);

    PQclear(pi->page);
    pi->page = NULL;
    if (ts == PQTRANS_INERROR) {
        if (pi->began)
            pg_exec(pi->c, "ROLLBACK");
    } else if (pi->open) {
        pg_exec(pi->c, "CLOSE inc_scan");
        if (pi->began)
            pg_exec(pi->c, "COMMIT");
    } else if (pi->began) {
        pg_exec(pi->c, "ROLLBACK");
    }
    pi->open = 0;
    pi->began = 0;
}

/* ---- the incidents table ---- */

void pg_inc_row_at(const PGresult *g, int i, int pattern_col,
                   struct store_inc_row *row)
{
    memset(row, 0, sizeof(*row));
    row->id = pg_i64(g, i, 0, 0);
    row->service = PQgetvalue(g, i, 1);
    row->region = PQgetvalue(g, i, 3);
    row->to_region = pg_text(g, i, 4);
    row->manual = pg_i64(g, i, 5, 0) != 0;
    for (int t = 0; t < STORE_INC_T_COUNT; t++)
        row->t[t] = pg_i64(g, i, 6 + t, INC_NONE);
    row->has_rpo = !PQgetisnull(g, i, 13);
    row->rpo_ms = pg_f64(g, i, 13, 0);
    row->pattern = PQgetvalue(g, i, pattern_col);
}

/* Each row of @sql (INC_Q_ROW_LIST's columns) with @p to @fn: how many
 * rows, @fn's error, or -EIO. */
static int pg_inc_rows(struct store_inc *in, const char *sql,
                       const struct pg_params *p, store_inc_row_fn fn,
                       void *ctx)
{
    struct store_inc_row row;
    PGresult *g = pg_inc_q(in, sql, p, "incident rows");
    int rc = 0, i;

    if (!g)
        return -EIO;
    for (i = 0; rc == 0 && i < PQntuples(g); i++) {
        pg_inc_row_at(g, i, 14, &row);
        rc = fn(ctx, &row, pg_i64(g, i, 2, 0));
    }
    PQclear(g);
    return rc < 0 ? rc : i;
}

int pg_inc_row_get(struct store_inc *in, const char *service,
                   int64_t opened_ms, store_inc_row_fn fn, void *ctx)
{
    struct pg_params p;
    int rc;

    pg_params_reset(&p);
    pg_param_text(&p, service);
    pg_param_i64(&p, opened_ms);
    rc = pg_inc_rows(in, store_inc_sql[INC_Q_ROW_GET], &p, fn, ctx);
    return rc > 0 ? 1 : rc;
}

/* A time as a parameter: INC_NONE is NULL. */
static void pg_inc_param_time(struct pg_params *p, int64_t t)
{
    if (t == INC_NONE)
        pg_param_text(p, NULL);
    else
        pg_param_i64(p, t);
}

int pg_inc_row_put(struct store_inc *in, const struct store_inc_row *r,
                   int64_t opened_ms, int64_t *id)
{
    struct pg_params p;
    PGresult *g;

    pg_params_reset(&p);
    pg_param_text(&p, r->service);
    pg_param_i64(&p, opened_ms);
    pg_param_text(&p, r->region);
    pg_param_text(&p, r->to_region);
    pg_param_text(&p, r->pattern);
    pg_param_i64(&p, r->manual);
    for (int t = 0; t < STORE_INC_T_COUNT; t++)
        pg_inc_param_time(&p, r->t[t]);
    if (r->has_rpo)
        pg_param_f64(&p, r->rpo_ms);
    else
        pg_param_text(&p, NULL);
    g = pg_inc_q(in, store_inc_sql[INC_Q_ROW_PUT], &p, "incident row");
    if (!g)
        return -EIO;
    if (PQntuples(g) == 1)
        *id = pg_i64(g, 0, 0, 0);
    PQclear(g);
    return 0;
}

int pg_inc_row_list(struct store_inc *in, int64_t from, store_inc_row_fn fn,
                    void *ctx)
{
    struct pg_params p;
    int rc;

    pg_params_reset(&p);
    pg_param_i64(&p, from);
    rc = pg_inc_rows(in, store_inc_sql[INC_Q_ROW_LIST], &p, fn, ctx);
    return rc > 0 ? 0 : rc;
}

int pg_inc_row_del(struct store_inc *in, int64_t id)
{
    struct pg_params p;
    PGresult *g;

    pg_params_reset(&p);
    pg_param_i64(&p, id);
    g = pg_inc_q(in, store_inc_sql[INC_Q_ROW_DEL], &p, "incident row");
    PQclear(g);
    return g ? 0 : -EIO;
}

int pg_inc_max_id(struct store_inc *in, int64_t *id)
{
    PGresult *g = pg_inc_q(in, "SELECT coalesce(max(id), 0) FROM incidents",
                           NULL, "incident rows");

    if (!g)
        return -EIO;
    *id = pg_i64(g, 0, 0, 0);
    PQclear(g);
    return 0;
}

int pg_inc_exec(struct store_inc *in, const char *sql)
{
    if (strcmp(sql, "ROLLBACK") == 0 &&
        PQtransactionStatus(in->pg->c) == PQTRANS_IDLE)
        return 0;
    return pg_exec(in->pg->c, sql);
}

void pg_inc_agent(struct store_inc *in, int64_t agent, char *cluster,
                  size_t cluster_len, char *node, size_t node_len)
{
    struct pg_params p;
    PGresult *g;

    pg_params_reset(&p);
    pg_param_i64(&p, agent);
    g = pg_inc_q(in, store_inc_sql[INC_Q_AGENT], &p, "agent");
    if (g && PQntuples(g) == 1) {
        snprintf(cluster, cluster_len, "%s",
                 pg_text(g, 0, 0) ? pg_text(g, 0, 0) : "");
        snprintf(node, node_len, "%s",
                 pg_text(g, 0, 1) ? pg_text(g, 0, 1) : "");
    }
    PQclear(g);
}
