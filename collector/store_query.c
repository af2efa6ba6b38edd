/* store_query.c -- the read side: a pool of read-only connections, each
 * keeping the statements it prepared (their SQL is store_sql.c's), each
 * query's deadline, and the queries (timeline, clusters, names, latency)
 * rendered as the API's JSON: a timeline's rows handed as plain values to
 * store_tlrow.c, which renders them and merges the events with the
 * annotations (store_tlnote.c's rows). */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "jsonw.h"
#include "log.h"
#include "topology.h"

void store_reader_close(struct store_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < STORE_SQL_COUNT; i++)
        sqlite3_finalize(r->stmt[i]);
    for (size_t i = 0; i < STORE_READER_EXTRA; i++)
        sqlite3_finalize(r->extra[i]);
    sqlite3_close(r->db);
    free(r);
}

void store_readers_close(struct store *st)
{
    for (size_t i = 0; i < st->n_readers; i++)
        store_reader_close(st->readers[i]);
    st->n_readers = 0;
}

/* Takes an idle read-only connection, or opens one. It never waits: with
 * every idle one taken, a new one opens (and closes when handed back to
 * a full pool). */
static struct store_reader *store_reader_get(struct store *st)
{
    struct store_reader *r = NULL;

    pthread_mutex_lock(&st->rlock);
    if (st->n_readers > 0)
        r = st->readers[--st->n_readers];
    pthread_mutex_unlock(&st->rlock);
    if (r)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r) {
        log_msg(LOGL_ERROR, "store", "read connection: out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(st->path, &r->db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "read connection: %s",
                r->db ? sqlite3_errmsg(r->db) : "out of memory");
        store_reader_close(r);
        return NULL;
    }
    sqlite3_busy_timeout(r->db, STORE_BUSY_MS);
    return r;
}

static void store_reader_put(struct store *st, struct store_reader *r)
{
    sqlite3_progress_handler(r->db, 0, NULL, NULL);   /* its deadline is
                                                       * gone */
    pthread_mutex_lock(&st->rlock);
    if (st->n_readers < STORE_READERS) {
        st->readers[st->n_readers++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&st->rlock);
    store_reader_close(r);
}

/* The statement @id of @r, prepared the first time and then kept (it
 * stays @r's; store_stmt_done hands it back): 0, or -EIO. PERSISTENT:
 * it lives as long as the connection. */
static int store_reader_stmt(struct store_reader *r, int id,
                             sqlite3_stmt **out)
{
    if (!r->stmt[id] &&
        sqlite3_prepare_v3(r->db, store_sql[id], -1,
                           SQLITE_PREPARE_PERSISTENT, &r->stmt[id],
                           NULL) != SQLITE_OK)
        return -EIO;
    *out = r->stmt[id];
    return 0;
}

int store_reader_stmt_sql(struct store_reader *r, const char *sql,
                          sqlite3_stmt **out)
{
    size_t i;

    for (i = 0; i < STORE_READER_EXTRA && r->extra_sql[i]; i++)
        if (r->extra_sql[i] == sql) {
            *out = r->extra[i];
            return 0;
        }
    if (i == STORE_READER_EXTRA ||
        sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &r->extra[i], NULL) != SQLITE_OK)
        return -EIO;
    r->extra_sql[i] = sql;
    *out = r->extra[i];
    return 0;
}

/* Ends a use of a cached statement (NULL: none): the reset ends its read
 * transaction, which would otherwise hold back checkpoints while the
 * connection sits idle; no bound string outlives the caller's. */
void store_stmt_done(sqlite3_stmt *s)
{
    if (!s)
        return;             /* sqlite3_clear_bindings takes no NULL */
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Hands the finished reply in @w to the caller: 0, or its error. */
int store_json_take(struct jsonw *w, char **out, size_t *out_len)
{
    if (w->err)
        return w->err;
    *out = jsonw_take(w, out_len);
    return *out ? 0 : -ENOMEM;
}

/* A reader's query stops when it runs past its deadline (query_ms): it holds an
 * HTTP thread and a read snapshot (which stops checkpoints). */
int store_query_progress(void *arg)
{
    return store_mono_ns() > *(const int64_t *)arg;
}

/* Takes a read connection for a query whose deadline (query_ms from now)
 * @until_ns holds; NULL with *err -EAGAIN while migrating (@need_ready),
 * or -EIO when none opens (logged). */
struct store_reader *store_query_begin(struct store *st, int64_t *until_ns,
                                       int *err, int need_ready)
{
    struct store_reader *r;

    /* Until the migrations are done the tables may be half way between
     * two schemas (schema 6 moves events in chunks): "migrating", not a
     * failed query and an error in the log. Only the agents table, which
     * no migration rewrites, is read meanwhile (need_ready 0). */
    *err = -EAGAIN;
    if (need_ready && store_poll_ready(st) == 0)
        return NULL;
    *err = -EIO;
    r = store_reader_get(st);
    if (!r)
        return NULL;
    *until_ns = store_mono_ns() + st->opt.query_ms * 1000000;
    sqlite3_progress_handler(r->db, STORE_PROGRESS_OPS, store_query_progress,
                             until_ns);
    return r;
}

/* The error of a failed query: -ETIMEDOUT past its deadline, -EUCLEAN
 * (and the corrupt state) on a damaged file, else -EIO. */
int store_query_error(struct store *st, sqlite3 *db)
{
    if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
        return -ETIMEDOUT;
    return store_check_corrupt(st, db) ? -EUCLEAN : -EIO;
}

/* The end of a reply query: a failed prepare or step (-EIO) becomes its
 * error (see store_query_error), logged once under @what; then @s (NULL:
 * none) and @r are handed back. Returns the error, or @rc. */
int store_query_end(struct store *st, struct store_reader *r,
                    sqlite3_stmt *s, int rc, const char *what)
{
    if (rc == -EIO)
        rc = store_query_error(st, r->db);
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "%s: %s", what, sqlite3_errmsg(r->db));
    if (rc == -ETIMEDOUT)
        log_msg(LOGL_WARN, "store", "%s query stopped after %lld ms", what,
                (long long)st->opt.query_ms);
    store_stmt_done(s);
    store_reader_put(st, r);
    return rc;
}

/* The kind filter a timeline's ?kind= (NULL, one kind, or a
 * comma-separated list) takes: whether it may match a probe decides
 * whether its SQL can say data IS NOT NULL (see store_kind_filter). */
static enum store_kind_filter store_kind_filter_of(const char *kind)
{
    int list;

    if (!kind)
        return STORE_KIND_ANY;
    list = strchr(kind, ',') != NULL;
    /* As the SQL matches a list: whole names between commas. */
    for (const char *k = kind; ; k++) {
        size_t n = strcspn(k, ",");

        if (n == 5 && memcmp(k, "probe", 5) == 0)
            return list ? STORE_KINDS_PROBE : STORE_KIND_PROBE;
        k += n;
        if (!*k)
            break;
    }
    return list ? STORE_KINDS_RARE : STORE_KIND_RARE;
}

/* The timeline statement's columns (store_sql.c, TIMELINE_SELECT). */
enum {
    TL_EVENT, TL_DATA, TL_TYPE, TL_OK, TL_STATUS, TL_DNS_US, TL_CONNECT_US,
    TL_TLS_US, TL_FIRST_BYTE_US, TL_TOTAL_US, TL_SERVED_BY, TL_CERT,
    TL_ANSWERS, TL_ERROR, TL_ID, TL_KEY,
    TL_CELLS,       /* STORE_TL_CELLS: a table row's first cells */
};

/* A timeline statement as a row source (store_tlrow.c's merge). */
struct store_tl_stmt {
    struct store_tl_src src;        /* first: the merge's pointer */
    sqlite3_stmt *s;
};

/* Steps the statement and hands its row over as plain values, valid
 * until the next step: 1, 0 done, -EIO (store_query_error says why). */
static int store_tl_stmt_next(struct store_tl_src *src,
                              struct store_tl_row *row)
{
    sqlite3_stmt *s = ((struct store_tl_stmt *)src)->s;
    int step = sqlite3_step(s);

    if (step == SQLITE_DONE)
        return 0;
    if (step != SQLITE_ROW)
        return -EIO;
    row->event = (const char *)sqlite3_column_text(s, TL_EVENT);
    row->event_len = (size_t)sqlite3_column_bytes(s, TL_EVENT);
    row->data = (const char *)sqlite3_column_text(s, TL_DATA);
    row->has_type = sqlite3_column_type(s, TL_TYPE) != SQLITE_NULL;
    row->type = sqlite3_column_int64(s, TL_TYPE);
    row->ok = sqlite3_column_int64(s, TL_OK);
    row->status = sqlite3_column_int64(s, TL_STATUS);
    for (int i = 0; i < 5; i++)
        row->us[i] = sqlite3_column_int64(s, TL_DNS_US + i);
    row->cert = sqlite3_column_int64(s, TL_CERT);
    row->served_by = (const char *)sqlite3_column_text(s, TL_SERVED_BY);
    row->answers = (const char *)sqlite3_column_text(s, TL_ANSWERS);
    /* Quoted by SQLite (json_quote), as schema 5's json_set quoted it. */
    row->error = (const char *)sqlite3_column_text(s, TL_ERROR);
    row->id = sqlite3_column_int64(s, TL_ID);
    row->key = sqlite3_column_int64(s, TL_KEY);
    for (int i = 0; i < STORE_TL_CELLS; i++)
        row->cells[i] = (const char *)sqlite3_column_text(s, TL_CELLS + i);
    return 1;
}

/* The one number statement @id gives (NULL: 0): STORE_SQL_MAX_ID, the
 * newest event id now (a first page's bound), or STORE_SQL_MAX_OFFSET,
 * the largest clock offset recorded (the corrected order's margin; read
 * after the paging's newest id: an offset row is stored with its batch's
 * events, so it covers every event a page may give). */
static int store_scalar(struct store_reader *r, int id, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = store_reader_stmt(r, id, &s);

    if (rc == 0 && sqlite3_step(s) == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);     /* NULL: 0 */
    else
        rc = -EIO;
    store_stmt_done(s);
    return rc;
}

/* Binds @q's window, filters and page position to @s: 0, or -EIO. The
 * strings stay @q's (and @tg's, @rg's) until the statement is reset. */
static int store_timeline_bind(sqlite3_stmt *s,
                               const struct store_timeline_query *q,
                               const int64_t page[4], const struct jsonw *tg,
                               const struct jsonw *rg)
{
    int64_t from = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    const struct topo_service *sv = q->target ? NULL : q->service;

    if (sqlite3_bind_int64(s, 1, from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, q->to_ms) != SQLITE_OK ||
        (q->cluster &&
         sqlite3_bind_text(s, 3, q->cluster, -1, SQLITE_STATIC) !=
             SQLITE_OK) ||
        sqlite3_bind_int64(s, 4, (int64_t)q->limit + 1) != SQLITE_OK ||
        (q->target &&
         sqlite3_bind_text(s, 5, q->target, -1, SQLITE_STATIC) !=
             SQLITE_OK) ||
        (q->kind &&
         sqlite3_bind_text(s, 6, q->kind, -1, SQLITE_STATIC) != SQLITE_OK) ||
        sqlite3_bind_int64(s, 7, page[0]) != SQLITE_OK ||
        sqlite3_bind_int64(s, 8, page[1]) != SQLITE_OK ||
        sqlite3_bind_int64(s, 9, page[2]) != SQLITE_OK ||
        (q->region &&
         sqlite3_bind_text(s, 14, q->region, -1, SQLITE_STATIC) !=
             SQLITE_OK))
        return -EIO;
    if (sv &&
        (sqlite3_bind_text(s, 10, tg->buf, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_text(s, 11, sv->global_name, -1, SQLITE_STATIC) !=
             SQLITE_OK ||
         sqlite3_bind_text(s, 12, sv->name, -1, SQLITE_STATIC) !=
             SQLITE_OK ||
         sqlite3_bind_text(s, 13, rg->buf, -1, SQLITE_STATIC) != SQLITE_OK))
        return -EIO;
    return 0;
}

int64_t store_timeline_span(int64_t lo, int64_t span, int64_t margin,
                            int64_t to, int *full)
{
    *full = lo >= to || (uint64_t)to - (uint64_t)lo <= (uint64_t)span ||
            lo + span > INT64_MAX - margin;         /* margin >= 0 */
    return *full ? INT64_MAX : lo + span + margin;
}

int store_timeline_widen(const struct store_tl_page *pg, int full,
                         int64_t lo, int64_t *span)
{
    if (full || pg->added < 0 || pg->err < 0 ||
        (pg->more && pg->stop_key < lo + *span))
        return 0;
    *span = *span > INT64_MAX / STORE_TL_SPAN_GROWTH
                ? INT64_MAX : *span * STORE_TL_SPAN_GROWTH;
    return 1;
}

int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len)
{
    int corr = q->order == STORE_ORDER_CORRECTED;
    enum store_tl_targets tsel = q->target ? STORE_TL_TARGET
                                 : q->service ? STORE_TL_SERVICE
                                              : STORE_TL_ALL;
    int id = store_sql_timeline(corr, q->cluster != NULL, q->region != NULL,
                                tsel, store_kind_filter_of(q->kind));
    /* The newest event id, the position, the newest annotation id. */
    int64_t page[4] = { 0, INT64_MIN, 0, 0 };
    int64_t until, margin = 0, span = STORE_TL_SPAN_MS, lo;
    struct store_reader *r;
    struct store_tl_stmt es = { .src.next = store_tl_stmt_next };
    struct store_tl_stmt as = { .src.next = store_tl_stmt_next };
    struct store_tl t;
    struct store_tl_page pg = { 0 };
    int rc, full = 1;

    if (st->pg)
        return store_pg_timeline(st, q, out, out_len);

    if (q->cursor && store_cursor_parse(q->cursor, q->order, page) < 0)
        return -EINVAL;
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    store_tl_init(&t, q);
    rc = t.tg.err ? t.tg.err : t.rg.err;
    if (rc == 0 && !q->cursor)
        rc = store_scalar(r, STORE_SQL_MAX_ID, &page[0]);
    if (rc == 0 && !q->cursor)
        rc = store_tl_note_max(r, &page[3]);
    if (rc == 0 && corr)
        rc = store_scalar(r, STORE_SQL_MAX_OFFSET, &margin);
    if (rc == 0)
        rc = store_reader_stmt(r, id, &es.s);
    if (rc == 0)
        rc = store_timeline_bind(es.s, q, page, &t.tg, &t.rg);
    if (rc == 0)
        rc = store_tl_note_stmt(r, q, page, &as.s);
    if (rc < 0)
        goto out;
    lo = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    /* The corrected order reads a growing span until the page is whole
     * within it (see store_timeline_span); a run that was too short is
     * thrown away. The agent order's index gives its rows in order. */
    for (;;) {
        if (corr && sqlite3_bind_int64(es.s, 15, store_timeline_span(
                        lo, span, margin, q->to_ms, &full)) != SQLITE_OK) {
            rc = -EIO;
            goto out;
        }
        store_timeline_steps(&t, q, &es.src, as.s ? &as.src : NULL, &pg);
        if (!store_timeline_widen(&pg, full, lo, &span))
            break;
        sqlite3_reset(es.s);
        if (as.s)
            sqlite3_reset(as.s);
        jsonw_reset(&t.w);
    }
    rc = pg.added < 0 ? pg.added : 0;
    if (rc == 0 && pg.err < 0)
        rc = store_query_error(st, r->db);
    if (rc == 0)
        rc = store_tl_finish(&t, q, &pg, page, out, out_len);
out:
    store_tl_free(&t);
    store_stmt_done(as.s);
    return store_query_end(st, r, es.s, rc, "timeline");
}

int store_clusters_seen(struct store *st,
                        void (*fn)(void *ctx, const char *cluster,
                                   int64_t last_seen_ms),
                        void *ctx)
{
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    int64_t until;
    int rc, step;

    if (st->pg)
        return store_pg_clusters_seen(st, fn, ctx);

    r = store_query_begin(st, &until, &rc, 0);
    if (!r)
        return rc;
    rc = store_reader_stmt(r, STORE_SQL_CLUSTERS, &s);
    if (rc < 0)
        goto out;
    rc = -EIO;
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0),
           sqlite3_column_int64(s, 1));
    if (step == SQLITE_DONE)
        rc = 0;
out:
    if (rc == -EIO)                 /* a prepare or a step failed */
        rc = store_query_error(st, r->db);
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "clusters: %s", sqlite3_errmsg(r->db));
    store_stmt_done(s);
    store_reader_put(st, r);
    return rc;
}

int store_name_known(struct store *st, enum store_names which,
                     const char *name, store_name_fn fn, void *ctx)
{
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    int64_t until;
    int rc, step;

    if (st->pg)
        return store_pg_name_known(st, which, name, fn, ctx);

    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    if (store_reader_stmt(r, STORE_SQL_NAME_KNOWN + (int)which, &s) < 0 ||
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = store_query_error(st, r->db);
        goto out;
    }
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rc = 1;
        goto out;
    }
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, r->db);
        goto out;
    }
    store_stmt_done(s);
    s = NULL;
    if (!fn) {
        rc = 0;
        goto out;
    }
    if (store_reader_stmt(r, STORE_SQL_NAME_LIST + (int)which, &s) < 0) {
        rc = store_query_error(st, r->db);
        goto out;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0));
    rc = step == SQLITE_DONE ? 0 : store_query_error(st, r->db);
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "names: %s", sqlite3_errmsg(r->db));
    store_stmt_done(s);
    store_reader_put(st, r);
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

/* "@key": @name, or null when NULL. */
static void store_key_name(struct jsonw *w, const char *key,
                           const char *name)
{
    jsonw_key(w, key);
    if (name)
        jsonw_str(w, name);
    else
        jsonw_null(w);
}

/* Writes the latency reply's head: what it is of, up to its points. A
 * target's reply is as it was before services existed, byte for byte.
 * Either backend's (store_priv.h). */
void store_latency_head(struct jsonw *w, const struct store_latency_query *q,
                        int64_t step_ms)
{
    jsonw_obj_begin(w);
    store_key_name(w, "target", q->target);
    if (!q->target) {
        store_key_name(w, "service", q->service);
        store_key_name(w, "region", q->region);
        jsonw_key(w, "targets");
        jsonw_arr_begin(w);
        for (size_t i = 0; i < q->n_targets; i++)
            jsonw_str(w, q->targets[i]);
        jsonw_arr_end(w);
    }
    store_key_name(w, "cluster", q->cluster);
    jsonw_key(w, "step_ms");
    jsonw_int(w, step_ms);
    jsonw_key(w, "points");
}

/* One rollup row into the series: rows come by time; with every cluster
 * (or several targets) asked for, the rows of one step merge into one
 * point, written when the next step's row (or the end) comes. */
void store_latency_row(struct store_lat *l, int64_t t, int64_t count,
                       int64_t failures, const uint8_t *hist, size_t len)
{
    if (l->have && t != l->t) {
        store_point(l->w, l->t, l->count, l->failures, &l->h);
        hist_reset(&l->h);
        l->count = l->failures = 0;
    }
    l->t = t;
    l->have = 1;
    l->count += (uint64_t)count;
    l->failures += (uint64_t)failures;
    if (hist_merge_blob(&l->h, hist, len) < 0)
        log_msg(LOGL_WARN, "store", "latency: bad histogram at %lld "
                "skipped", (long long)t);
}

void store_latency_end(struct store_lat *l)
{
    if (l->have)
        store_point(l->w, l->t, l->count, l->failures, &l->h);
    jsonw_arr_end(l->w);
    jsonw_obj_end(l->w);
}

int store_latency(struct store *st, const struct store_latency_query *q,
                  char **out, size_t *out_len)
{
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    int64_t from = store_floor(q->from_ms, step_ms);
    sqlite3_stmt *s = NULL;
    struct jsonw w, names;
    struct store_lat l = { .w = &w };
    struct store_reader *r;
    int rc, step;
    int64_t until;

    if (st->pg)
        return store_pg_latency(st, q, out, out_len);

    rc = store_latency_check(q);
    if (rc < 0)
        return rc;
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    hist_init(&l.h);
    jsonw_init(&w, STORE_LATENCY_BYTES);
    jsonw_init(&names, STORE_LATENCY_BYTES);
    store_latency_names(q, &names);
    rc = names.err;
    if (rc == 0)
        rc = store_reader_stmt(r, store_sql_latency(
                                      q->step == STORE_STEP_HOUR,
                                      q->cluster != NULL, !q->target), &s);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (sqlite3_bind_text(s, 1, q->target ? q->target : names.buf, -1,
                          SQLITE_STATIC) != SQLITE_OK ||
        (q->cluster &&
         sqlite3_bind_text(s, 2, q->cluster, -1, SQLITE_STATIC) !=
             SQLITE_OK) ||
        sqlite3_bind_int64(s, 3, from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, q->to_ms) != SQLITE_OK)
        goto out;
    store_latency_head(&w, q, step_ms);
    jsonw_arr_begin(&w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        store_latency_row(&l, sqlite3_column_int64(s, 0),
                          sqlite3_column_int64(s, 1),
                          sqlite3_column_int64(s, 2),
                          sqlite3_column_blob(s, 3),
                          (size_t)sqlite3_column_bytes(s, 3));
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, r->db);
        goto out;
    }
    store_latency_end(&l);
    rc = store_json_take(&w, out, out_len);
out:
    jsonw_free(&w);
    jsonw_free(&names);
    hist_free(&l.h);
    return store_query_end(st, r, s, rc, "latency");
}

/* -E2BIG: more than STORE_LATENCY_MAX_POINTS steps; -EINVAL: no target. */
int store_latency_check(const struct store_latency_query *q)
{
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    int64_t from = store_floor(q->from_ms, step_ms);

    if (q->to_ms <= q->from_ms ||
        (q->to_ms - from) / step_ms >= (int64_t)STORE_LATENCY_MAX_POINTS)
        return -E2BIG;
    if (!q->target && q->n_targets == 0)
        return -EINVAL;
    return 0;
}

/* A list's names as one JSON array (the statement's parameter). */
void store_latency_names(const struct store_latency_query *q,
                         struct jsonw *names)
{
    jsonw_arr_begin(names);
    for (size_t i = 0; !q->target && i < q->n_targets; i++)
        jsonw_str(names, q->targets[i]);
    jsonw_arr_end(names);
}

int store_readonly_check(struct store *st)
{
    struct store_reader *r;
    int version = 0, rc = -EIO;

    r = store_reader_get(st);
    if (!r)
        return -EIO;
    if (store_user_version(r->db, &version) < 0) {
        log_msg(LOGL_ERROR, "store", "%s: %s", st->path,
                sqlite3_errmsg(r->db));
        goto out;
    }
    rc = -EPROTO;
    if (version == 0)
        log_msg(LOGL_ERROR, "store", "%s: not a Sextant database",
                st->path);
    else if (version != store_schema_version())
        log_msg(LOGL_ERROR, "store", "%s: schema %d, this collector's is "
                "%d: start the collector of that version on it first",
                st->path, version, store_schema_version());
    else
        rc = 0;
out:
    store_reader_put(st, r);
    return rc;
}
