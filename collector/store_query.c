/* store_query.c -- the read side: a pool of read-only connections, each
 * keeping the statements it prepared (their SQL is store_sql.c's), each
 * query's deadline, and the queries (timeline, clusters, names, latency)
 * rendered as the API's JSON: a timeline's typed probe rows here in C,
 * and its events merged with the annotations (store_tlnote.c's rows).
 * Over 1000 lines: the timeline's rendering, summary and paging are one
 * piece that shares its column layout (TL_*) and reply state. */
#include "store_priv.h"
#include "store_pg.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "jsonw.h"
#include "log.h"
#include "table.h"
#include "topology.h"

#define STORE_TIMELINE_BYTES (64u << 20) /* reply cap */
/* A corrected-order page first reads this much agent-clock time past its
 * start (and the offset margin), then STORE_TL_SPAN_GROWTH times more
 * each time that was too little (store_timeline_span). */
#define STORE_TL_SPAN_MS     4000
#define STORE_TL_SPAN_GROWTH 4
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
    TL_CELLS,       /* time, corrected time, cluster, region, node, kind,
                     * target: a table row's first cells */
};
#define TL_N_CELLS 7

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
 * object SQLite wrote, with its "fields" put in last, which start at
 * *@fields_at. 0, or -ENOMEM; @row's own error (its cap) is the caller's
 * to look at. */
static int store_timeline_row(struct jsonw *row, sqlite3_stmt *s,
                              size_t *fields_at)
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
    *fields_at = row->len;
    if (data)
        jsonw_raw(row, data, strlen(data));
    else if (sqlite3_column_type(s, TL_TYPE) != SQLITE_NULL)
        store_probe_fields(row, s);
    else
        jsonw_raw(row, "null", 4);  /* neither: as json(NULL) gave */
    jsonw_raw(row, "}", 1);
    return 0;
}

/* The end of the JSON value at @j[@i] (within @n bytes): a string's
 * closing quote + 1, an object's or array's matching bracket + 1, or a
 * scalar's end. The text is the store's own JSON. */
static size_t store_json_skip(const char *j, size_t i, size_t n)
{
    int depth = 0, in_str = 0;

    if (j[i] != '"' && j[i] != '{' && j[i] != '[') {
        while (i < n && j[i] != ',' && j[i] != '}' && j[i] != ']')
            i++;
        return i;
    }
    for (; i < n; i++) {
        if (in_str) {
            if (j[i] == '\\')
                i++;
            else if (j[i] == '"' && (in_str = 0, depth == 0))
                return i + 1;
        } else if (j[i] == '"') {
            in_str = 1;
        } else if (j[i] == '{' || j[i] == '[') {
            depth++;
        } else if ((j[i] == '}' || j[i] == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return n;
}

/* A string's text without its quotes, \" and \\ undone, other escapes
 * as written (a summary is for reading, not parsing). */
static void store_summary_str(struct jsonw *out, const char *j, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (j[i] == '\\' && i + 1 < n && (j[i + 1] == '"' ||
                                          j[i + 1] == '\\'))
            i++;
        jsonw_raw(out, j + i, 1);
    }
}

/* A table row's summary of an event's fields (@j, @n bytes: a flat JSON
 * object, or null): "key=value" separated by spaces, strings unquoted,
 * nested values as JSON, empty strings left out. */
static void store_summary(struct jsonw *out, const char *j, size_t n)
{
    size_t i = 1, k, v, e;
    int first = 1;

    if (n < 2 || j[0] != '{')
        return;
    while (i < n && j[i] == '"') {
        k = i;
        i = store_json_skip(j, i, n);           /* the key */
        if (i >= n || j[i] != ':')
            break;
        v = ++i;
        i = e = store_json_skip(j, i, n);       /* its value */
        if (!(e - v == 2 && j[v] == '"')) {
            if (!first)
                jsonw_raw(out, " ", 1);
            first = 0;
            jsonw_raw(out, j + k + 1, v - k - 3);   /* the key's text */
            jsonw_raw(out, "=", 1);
            if (j[v] == '"')
                store_summary_str(out, j + v + 1, e - v - 2);
            else
                jsonw_raw(out, j + v, e - v);
        }
        if (i < n && j[i] == ',')
            i++;
    }
}

/* Renders the row at @s as a table row into @trow (emptied first), its
 * JSON already in @row with its fields at @fields_at. */
static void store_table_row(struct jsonw *trow, enum table_format f,
                            sqlite3_stmt *s, const struct jsonw *row,
                            size_t fields_at, struct jsonw *summary)
{
    const char *cells[TL_N_CELLS + 1];

    for (int i = 0; i < TL_N_CELLS; i++)
        cells[i] = (const char *)sqlite3_column_text(s, TL_CELLS + i);
    jsonw_reset(summary);
    store_summary(summary, row->buf + fields_at, row->len - fields_at - 1);
    cells[TL_N_CELLS] = summary->buf ? summary->buf : "";
    jsonw_reset(trow);
    table_row(trow, f, cells, TL_N_CELLS + 1);
}

/* A cursor: "a" or "c" (the order), the newest event id of the first
 * page, the (time, id) position of the last row given (an annotation's
 * id negated, see store_tlnote.c) and, after an "n", the newest
 * annotation id of the first page, joined by dots: @page as
 * store_timeline holds it. */
static void store_cursor_format(char *buf, enum store_order o,
                                const int64_t page[4])
{
    snprintf(buf, STORE_CURSOR_LEN, "%c.%lld.%lld.%lld.n%lld",
             o == STORE_ORDER_CORRECTED ? 'c' : 'a', (long long)page[0],
             (long long)page[1], (long long)page[2], (long long)page[3]);
}

/* Parses one decimal of a cursor up to @end_ch: 0 and *v, or -EINVAL. */
static int store_cursor_num(const char **p, char end_ch, int64_t *v)
{
    char *end;
    long long n;

    if (!isdigit((unsigned char)**p) && !(**p == '-' &&
                                          isdigit((unsigned char)(*p)[1])))
        return -EINVAL;
    errno = 0;
    n = strtoll(*p, &end, 10);
    if (errno || *end != end_ch)
        return -EINVAL;
    *v = n;
    *p = end + (end_ch != '\0');
    return 0;
}

/* 0 and the cursor's parts into @page, or -EINVAL: not a cursor of
 * order @o. */
static int store_cursor_parse(const char *c, enum store_order o,
                              int64_t page[4])
{
    const char *p = c + 2;

    if (strlen(c) >= STORE_CURSOR_LEN ||
        c[0] != (o == STORE_ORDER_CORRECTED ? 'c' : 'a') || c[1] != '.')
        return -EINVAL;
    if (store_cursor_num(&p, '.', &page[0]) < 0 ||
        store_cursor_num(&p, '.', &page[1]) < 0 ||
        store_cursor_num(&p, '.', &page[2]) < 0 || *p++ != 'n' ||
        store_cursor_num(&p, '\0', &page[3]) < 0 || page[0] < 0 ||
        page[3] < 0 || page[2] == INT64_MIN)
        return -EINVAL;
    return 0;
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

/* A service's names as the statement binds them: ?10 its targets (every
 * region's, the lag targets and the global ones), ?13 its regions, both
 * JSON arrays, into @tg and @rg. */
static void store_service_json(const struct topo_service *sv,
                               struct jsonw *tg, struct jsonw *rg)
{
    jsonw_arr_begin(tg);
    jsonw_arr_begin(rg);
    for (size_t i = 0; i < sv->n_regions; i++) {
        const struct topo_region *reg = &sv->regions[i];

        jsonw_str(rg, reg->name);
        for (size_t j = 0; j < reg->n_targets; j++)
            jsonw_str(tg, reg->targets[j]);
        if (reg->lag_target)
            jsonw_str(tg, reg->lag_target);
    }
    for (size_t i = 0; i < sv->n_global_targets; i++)
        jsonw_str(tg, sv->global_targets[i]);
    jsonw_arr_end(tg);
    jsonw_arr_end(rg);
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

/* What a timeline query is working with: the reply, a row's JSON, its
 * table row and summary, and the service's bound names. */
struct store_tl {
    struct jsonw w, row, trow, summary, tg, rg;
    enum table_format tf;
    int table;
};

/* Writes the reply's head (JSON: up to the events; a table: its header). */
static void store_timeline_head(struct store_tl *t,
                                const struct store_timeline_query *q)
{
    static const char *const head[] = {
        "time", "corrected_time", "cluster", "region", "node", "kind",
        "target", "summary",
    };

    if (q->rows_only)
        return;
    if (t->table) {
        table_header(&t->w, t->tf, head, sizeof(head) / sizeof(head[0]));
        return;
    }
    jsonw_obj_begin(&t->w);
    jsonw_key(&t->w, "events");
    jsonw_arr_begin(&t->w);
}

/* Writes the reply's tail: JSON's count, truncated and @next. */
static void store_timeline_tail(struct store_tl *t,
                                const struct store_timeline_query *q,
                                unsigned count, const char *next)
{
    if (q->rows_only || t->table)
        return;
    jsonw_arr_end(&t->w);
    jsonw_key(&t->w, "count");
    jsonw_uint(&t->w, count);
    jsonw_key(&t->w, "truncated");
    jsonw_bool(&t->w, next[0] != '\0');  /* a row past the page exists */
    jsonw_key(&t->w, "next");
    if (next[0])
        jsonw_str(&t->w, next);
    else
        jsonw_null(&t->w);
    jsonw_obj_end(&t->w);
}

/* Adds the row at @s to the reply: 1 added, 0 it would pass the reply's
 * cap (the reply stops at a whole row, and the cursor goes on from
 * there), or -ENOMEM. */
static int store_timeline_add(struct store_tl *t,
                              const struct store_timeline_query *q,
                              sqlite3_stmt *s, unsigned count)
{
    const struct jsonw *piece = &t->row;
    size_t fields_at;
    int rc = store_timeline_row(&t->row, s, &fields_at);

    if (rc == 0 && t->row.err == -ENOMEM)
        rc = -ENOMEM;
    if (rc < 0 || t->row.err)
        return rc;
    if (t->table) {
        store_table_row(&t->trow, t->tf, s, &t->row, fields_at,
                        &t->summary);
        if (t->trow.err == -ENOMEM || t->summary.err == -ENOMEM)
            return -ENOMEM;
        if (t->trow.err)
            return 0;
        piece = &t->trow;
    }
    if (t->w.len + piece->len + 64 > STORE_TIMELINE_BYTES)
        return 0;
    if (!t->table && !q->rows_only) {
        jsonw_value(&t->w, piece->buf);
        return 1;
    }
    if (!t->table && count > 0)
        jsonw_raw(&t->w, ",", 1);           /* rows joined by commas */
    jsonw_raw(&t->w, piece->buf, piece->len);
    return 1;
}

/* How one run of the timeline statement went: the rows it gave, the
 * last one's position, and the row it stopped at (step SQLITE_ROW: one
 * past the limit or the reply's cap) with its key. */
struct store_tl_page {
    unsigned count;
    int step, added;
    int64_t last_key, last_id, stop_key;
};

/* Of the events' row at @s (step @ss) and the annotations' at @a (step
 * @as), the one first in (key, id) order; NULL when neither has a row. */
static sqlite3_stmt *store_timeline_first(sqlite3_stmt *s, int ss,
                                          sqlite3_stmt *a, int as)
{
    int64_t sk, ak;

    if (ss != SQLITE_ROW)
        return as == SQLITE_ROW ? a : NULL;
    if (as != SQLITE_ROW)
        return s;
    sk = sqlite3_column_int64(s, TL_KEY);
    ak = sqlite3_column_int64(a, TL_KEY);
    if (sk != ak)
        return sk < ak ? s : a;
    return sqlite3_column_int64(s, TL_ID) < sqlite3_column_int64(a, TL_ID)
               ? s : a;
}

/* Runs @s (and @a, the annotations, NULL: none) once into @t's reply,
 * from its head on, merging the two by position. Each statement gives
 * at most limit + 1 rows, and a page takes limit: the one that runs out
 * first has no more. */
static void store_timeline_steps(struct store_tl *t,
                                 const struct store_timeline_query *q,
                                 sqlite3_stmt *s, sqlite3_stmt *a,
                                 struct store_tl_page *pg)
{
    sqlite3_stmt *h;
    int as = a ? sqlite3_step(a) : SQLITE_DONE, ss;

    pg->count = 0;
    pg->added = 1;
    store_timeline_head(t, q);
    ss = sqlite3_step(s);
    for (;;) {
        pg->step = ss != SQLITE_ROW && ss != SQLITE_DONE ? ss : as;
        if (pg->step != SQLITE_ROW && pg->step != SQLITE_DONE)
            return;                     /* either one's error */
        h = store_timeline_first(s, ss, a, as);
        pg->step = h ? SQLITE_ROW : SQLITE_DONE;
        if (!h)
            return;
        if (pg->count >= q->limit)
            break;
        pg->added = store_timeline_add(t, q, h, pg->count);
        if (pg->added <= 0)
            break;
        pg->last_id = sqlite3_column_int64(h, TL_ID);
        pg->last_key = sqlite3_column_int64(h, TL_KEY);
        pg->count++;
        if (h == a)
            as = sqlite3_step(a);
        else
            ss = sqlite3_step(s);
    }
    pg->stop_key = sqlite3_column_int64(h, TL_KEY);
}

/* The corrected order's scan end (?15) for a page from corrected time
 * @lo that reads @span ms of agent-clock time past it, with @margin the
 * largest offset; *@full when that reaches the window's end @to anyway
 * (the scan ends at @to + margin, as without ?15). An event not scanned
 * is corrected to @lo + @span or later: a page whose rows, and the one
 * it stopped at, come before that is the page the whole window gives. */
static int64_t store_timeline_span(int64_t lo, int64_t span, int64_t margin,
                                   int64_t to, int *full)
{
    *full = lo >= to || (uint64_t)to - (uint64_t)lo <= (uint64_t)span ||
            lo + span > INT64_MAX - margin;         /* margin >= 0 */
    return *full ? INT64_MAX : lo + span + margin;
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
    char next[STORE_CURSOR_LEN] = "";
    struct store_reader *r;
    sqlite3_stmt *s = NULL, *a = NULL;
    struct store_tl t = { .table = q->format != STORE_FORMAT_JSON };
    struct store_tl_page pg = { 0 };
    int rc, full = 1;

    if (st->pg)
        return store_pg_timeline(st, q, out, out_len);

    if (q->cursor && store_cursor_parse(q->cursor, q->order, page) < 0)
        return -EINVAL;
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    t.tf = q->format == STORE_FORMAT_MD ? TABLE_MD : TABLE_CSV;
    jsonw_init(&t.w, STORE_TIMELINE_BYTES + 64);   /* room to close it */
    jsonw_init(&t.row, STORE_TIMELINE_BYTES);
    jsonw_init(&t.trow, STORE_TIMELINE_BYTES);
    jsonw_init(&t.summary, STORE_TIMELINE_BYTES);
    jsonw_init(&t.tg, STORE_TIMELINE_BYTES);
    jsonw_init(&t.rg, STORE_TIMELINE_BYTES);
    if (tsel == STORE_TL_SERVICE)
        store_service_json(q->service, &t.tg, &t.rg);
    rc = t.tg.err ? t.tg.err : t.rg.err;
    if (rc == 0 && !q->cursor)
        rc = store_scalar(r, STORE_SQL_MAX_ID, &page[0]);
    if (rc == 0 && !q->cursor)
        rc = store_tl_note_max(r, &page[3]);
    if (rc == 0 && corr)
        rc = store_scalar(r, STORE_SQL_MAX_OFFSET, &margin);
    if (rc == 0)
        rc = store_reader_stmt(r, id, &s);
    if (rc == 0)
        rc = store_timeline_bind(s, q, page, &t.tg, &t.rg);
    if (rc == 0)
        rc = store_tl_note_stmt(r, q, page, &a);
    if (rc < 0)
        goto out;
    lo = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    /* The corrected order reads a growing span until the page is whole
     * within it (see store_timeline_span); a run that was too short is
     * thrown away. The agent order's index gives its rows in order. */
    for (;;) {
        if (corr && sqlite3_bind_int64(s, 15, store_timeline_span(
                        lo, span, margin, q->to_ms, &full)) != SQLITE_OK) {
            rc = -EIO;
            goto out;
        }
        store_timeline_steps(&t, q, s, a, &pg);
        if (full || pg.added < 0 ||
            (pg.step != SQLITE_ROW && pg.step != SQLITE_DONE) ||
            (pg.step == SQLITE_ROW && pg.stop_key < lo + span))
            break;
        sqlite3_reset(s);
        if (a)
            sqlite3_reset(a);
        jsonw_reset(&t.w);
        span = span > INT64_MAX / STORE_TL_SPAN_GROWTH
                   ? INT64_MAX : span * STORE_TL_SPAN_GROWTH;
    }
    rc = pg.added < 0 ? pg.added : 0;
    if (rc == 0 && pg.step != SQLITE_ROW && pg.step != SQLITE_DONE)
        rc = store_query_error(st, r->db);
    if (rc == 0 && pg.step == SQLITE_ROW && pg.count == 0)
        rc = -EMSGSIZE;             /* one row over the whole cap */
    if (rc < 0)
        goto out;
    if (pg.step == SQLITE_ROW) {
        page[1] = pg.last_key;
        page[2] = pg.last_id;
        store_cursor_format(next, q->order, page);
    }
    store_timeline_tail(&t, q, pg.count, next);
    if (q->next)
        memcpy(q->next, next, sizeof(next));
    if (t.w.len == 0 && !t.w.err) {     /* rows only, and none: "" */
        *out = calloc(1, 1);
        *out_len = 0;
        rc = *out ? 0 : -ENOMEM;
    } else {
        rc = store_json_take(&t.w, out, out_len);
    }
out:
    jsonw_free(&t.w);
    jsonw_free(&t.row);
    jsonw_free(&t.trow);
    jsonw_free(&t.summary);
    jsonw_free(&t.tg);
    jsonw_free(&t.rg);
    store_stmt_done(a);
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
 * target's reply is as it was before services existed, byte for byte. */
static void store_latency_head(struct jsonw *w,
                               const struct store_latency_query *q,
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

int store_latency(struct store *st, const struct store_latency_query *q,
                  char **out, size_t *out_len)
{
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    int64_t from = store_floor(q->from_ms, step_ms), t = 0;
    uint64_t count = 0, failures = 0;
    sqlite3_stmt *s = NULL;
    struct jsonw w, names;
    struct hist h;
    struct store_reader *r;
    int have = 0, rc, step;
    int64_t until;

    if (st->pg)
        return store_pg_latency(st, q, out, out_len);

    if (q->to_ms <= q->from_ms ||
        (q->to_ms - from) / step_ms >= (int64_t)STORE_LATENCY_MAX_POINTS)
        return -E2BIG;
    if (!q->target && q->n_targets == 0)
        return -EINVAL;
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    hist_init(&h);
    jsonw_init(&w, STORE_LATENCY_BYTES);
    jsonw_init(&names, STORE_LATENCY_BYTES);
    /* A list is bound as a JSON array of its names. */
    jsonw_arr_begin(&names);
    for (size_t i = 0; !q->target && i < q->n_targets; i++)
        jsonw_str(&names, q->targets[i]);
    jsonw_arr_end(&names);
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
    /* Rows come by time; with every cluster (or several targets) asked
     * for, the rows of one step merge into one point. */
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
    jsonw_free(&names);
    hist_free(&h);
    return store_query_end(st, r, s, rc, "latency");
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
