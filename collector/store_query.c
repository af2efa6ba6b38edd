/* store_query.c -- the read side: a pool of read-only connections, each
 * keeping the statements it prepared (their SQL is store_sql.c's), each
 * query's deadline, and the queries (timeline, clusters, names, latency)
 * rendered as the API's JSON: a timeline's typed probe rows here in C. */
#include "store_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
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

void store_reader_close(struct store_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < STORE_SQL_COUNT; i++)
        sqlite3_finalize(r->stmt[i]);
    for (size_t i = 0; i < STORE_INC_SQL_COUNT; i++)
        sqlite3_finalize(r->inc_stmt[i]);
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
    TL_ANSWERS, TL_ERROR
};

/* A typed probe row's "fields", key for key as schema 5 stored them
 * (store_fields.c) and rendered them: "error" in fourth place when
 * empty, else last (json_set appended it after everything). */
static void store_probe_fields(struct jsonw *w, sqlite3_stmt *s)
{
    /* sextant.proto's ProbeType numbers; any other is "unknown". */
    static const char *const types[] = {
        [1] = "http", [2] = "tcp", [3] = "dns", [4] = "metric", [5] = "kube",
    };
    static const struct {
        const char *key;
        int col;
    } timings[] = {
        { "dns_us", TL_DNS_US }, { "connect_us", TL_CONNECT_US },
        { "tls_us", TL_TLS_US }, { "first_byte_us", TL_FIRST_BYTE_US },
        { "total_us", TL_TOTAL_US },
    };
    int64_t type = sqlite3_column_int64(s, TL_TYPE);
    const char *served_by =
        (const char *)sqlite3_column_text(s, TL_SERVED_BY);
    const char *answers = (const char *)sqlite3_column_text(s, TL_ANSWERS);
    const char *error = (const char *)sqlite3_column_text(s, TL_ERROR);

    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, type > 0 && type < (int64_t)(sizeof(types) /
                                              sizeof(types[0]))
                 ? types[type] : "unknown");
    jsonw_key(w, "ok");
    jsonw_bool(w, sqlite3_column_int64(s, TL_OK) != 0);
    jsonw_key(w, "status");
    jsonw_int(w, sqlite3_column_int64(s, TL_STATUS));
    if (!error) {
        jsonw_key(w, "error");
        jsonw_str(w, "");
    }
    for (size_t i = 0; i < sizeof(timings) / sizeof(timings[0]); i++) {
        jsonw_key(w, timings[i].key);
        jsonw_int(w, sqlite3_column_int64(s, timings[i].col));
    }
    jsonw_key(w, "served_by");
    jsonw_str(w, served_by ? served_by : "");
    jsonw_key(w, "cert_not_after_ms");
    jsonw_int(w, sqlite3_column_int64(s, TL_CERT));   /* NULL: 0 */
    if (answers) {
        jsonw_key(w, "answers");
        jsonw_value(w, answers);
    }
    if (error) {
        jsonw_key(w, "error");
        jsonw_value(w, error);                  /* quoted by SQLite */
    }
    jsonw_obj_end(w);
}

/* Renders the timeline row at @s into @row (emptied first): the event
 * object SQLite wrote, with its "fields" put in last. 0, or -ENOMEM;
 * @row's own error (its cap) is the caller's to look at. */
static int store_timeline_row(struct jsonw *row, sqlite3_stmt *s)
{
    const char *ev = (const char *)sqlite3_column_text(s, TL_EVENT);
    size_t ev_len = (size_t)sqlite3_column_bytes(s, TL_EVENT);
    const char *data;

    if (!ev || ev_len < 2)      /* json_object gives at least "{}" */
        return -ENOMEM;
    data = (const char *)sqlite3_column_text(s, TL_DATA);
    jsonw_reset(row);
    jsonw_raw(row, ev, ev_len - 1);           /* without its '}' */
    jsonw_raw(row, ",\"fields\":", 10);
    if (data)
        jsonw_raw(row, data, strlen(data));
    else if (sqlite3_column_type(s, TL_TYPE) != SQLITE_NULL)
        store_probe_fields(row, s);
    else
        jsonw_raw(row, "null", 4);  /* neither: as json(NULL) gave */
    jsonw_raw(row, "}", 1);
    return 0;
}

int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len)
{
    int id = store_sql_timeline(q->order == STORE_ORDER_CORRECTED,
                                q->cluster != NULL, q->target != NULL,
                                store_kind_filter_of(q->kind));
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    struct jsonw w, row;
    unsigned count = 0;
    int64_t until;
    int rc, step;

    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    jsonw_init(&w, STORE_TIMELINE_BYTES + 64);   /* room to close it */
    jsonw_init(&row, STORE_TIMELINE_BYTES);
    rc = store_reader_stmt(r, id, &s);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (sqlite3_bind_int64(s, 1, q->from_ms) != SQLITE_OK ||
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
        rc = store_timeline_row(&row, s);
        if (rc == 0 && row.err == -ENOMEM)
            rc = -ENOMEM;
        if (rc < 0)
            goto out;
        /* The reply stops at a whole row before its cap, marked truncated,
         * rather than failing: the caller narrows the window and goes on. */
        if (row.err || w.len + row.len + 64 > STORE_TIMELINE_BYTES)
            break;
        jsonw_value(&w, row.buf);
        count++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = store_query_error(st, r->db);
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
    jsonw_free(&w);
    jsonw_free(&row);
    return store_query_end(st, r, s, rc, "timeline");
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

int store_latency(struct store *st, const struct store_latency_query *q,
                  char **out, size_t *out_len)
{
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    int64_t from = store_floor(q->from_ms, step_ms), t = 0;
    uint64_t count = 0, failures = 0;
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    struct hist h;
    struct store_reader *r;
    int have = 0, rc, step;
    int64_t until;

    if (q->to_ms <= q->from_ms ||
        (q->to_ms - from) / step_ms >= (int64_t)STORE_LATENCY_MAX_POINTS)
        return -E2BIG;
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    hist_init(&h);
    jsonw_init(&w, STORE_LATENCY_BYTES);
    rc = store_reader_stmt(r, store_sql_latency(q->step == STORE_STEP_HOUR,
                                                q->cluster != NULL), &s);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (sqlite3_bind_text(s, 1, q->target, -1, SQLITE_STATIC) != SQLITE_OK ||
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
        rc = store_query_error(st, r->db);
        goto out;
    }
    if (have)
        store_point(&w, t, count, failures, &h);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    jsonw_free(&w);
    hist_free(&h);
    return store_query_end(st, r, s, rc, "latency");
}
