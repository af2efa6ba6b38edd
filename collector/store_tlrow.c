/* store_tlrow.c -- a timeline reply's rendering and paging, the same for
 * either backend: a row's JSON from plain values (the event object the
 * backend wrote, its fields as stored or a typed probe's columns), its
 * CSV or Markdown row and summary, the cursor's text, and the merge of
 * the events' and the annotations' rows into one page. Runs no SQL:
 * store_query.c (SQLite) and pg_tl.c (PostgreSQL) hand it rows through
 * struct store_tl_src. */
#include "store_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "table.h"
#include "topology.h"

/* A typed probe row's "fields", key for key as schema 5 stored them
 * (store_fields.c) and rendered them: "error" in fourth place when
 * empty, else last (json_set appended it after everything). */
static void store_probe_fields(struct jsonw *w, const struct store_tl_row *r)
{
    /* sextant.proto's ProbeType numbers; any other is "unknown". */
    static const char *const types[] = {
        [1] = "http", [2] = "tcp", [3] = "dns", [4] = "metric", [5] = "kube",
    };
    static const char *const timings[] = {
        "dns_us", "connect_us", "tls_us", "first_byte_us", "total_us",
    };
    int64_t type = r->type;
    const char *served_by = r->served_by;
    const char *answers = r->answers;
    const char *error = r->error;

    jsonw_obj_begin(w);
    jsonw_key(w, "type");
    jsonw_str(w, type > 0 && type < (int64_t)(sizeof(types) /
                                              sizeof(types[0]))
                 ? types[type] : "unknown");
    jsonw_key(w, "ok");
    jsonw_bool(w, r->ok != 0);
    jsonw_key(w, "status");
    jsonw_int(w, r->status);
    if (!error) {
        jsonw_key(w, "error");
        jsonw_str(w, "");
    }
    for (size_t i = 0; i < sizeof(timings) / sizeof(timings[0]); i++) {
        jsonw_key(w, timings[i]);
        jsonw_int(w, r->us[i]);
    }
    jsonw_key(w, "served_by");
    jsonw_str(w, served_by ? served_by : "");
    jsonw_key(w, "cert_not_after_ms");
    jsonw_int(w, r->cert);   /* NULL: 0 */
    if (answers) {
        jsonw_key(w, "answers");
        jsonw_value(w, answers);
    }
    if (error) {
        jsonw_key(w, "error");
        jsonw_value(w, error);                  /* quoted already */
    }
    jsonw_obj_end(w);
}

/* Renders the timeline row @r into @row (emptied first): the event
 * object the backend wrote, with its "fields" put in last, which start at
 * *@fields_at. 0, or -ENOMEM; @row's own error (its cap) is the caller's
 * to look at. */
static int store_timeline_row(struct jsonw *row, const struct store_tl_row *r,
                              size_t *fields_at)
{
    const char *ev = r->event;
    size_t ev_len = r->event_len;
    const char *data = r->data;

    if (!ev || ev_len < 2)      /* an object is at least "{}" */
        return -ENOMEM;
    jsonw_reset(row);
    jsonw_raw(row, ev, ev_len - 1);           /* without its '}' */
    jsonw_raw(row, ",\"fields\":", 10);
    *fields_at = row->len;
    if (data)
        jsonw_raw(row, data, strlen(data));
    else if (r->has_type)
        store_probe_fields(row, r);
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

/* Renders the row @r as a table row into @trow (emptied first), its
 * JSON already in @row with its fields at @fields_at. */
static void store_table_row(struct jsonw *trow, enum table_format f,
                            const struct store_tl_row *r,
                            const struct jsonw *row, size_t fields_at,
                            struct jsonw *summary)
{
    const char *cells[STORE_TL_CELLS + 1];

    for (int i = 0; i < STORE_TL_CELLS; i++)
        cells[i] = r->cells[i];
    jsonw_reset(summary);
    store_summary(summary, row->buf + fields_at, row->len - fields_at - 1);
    cells[STORE_TL_CELLS] = summary->buf ? summary->buf : "";
    jsonw_reset(trow);
    table_row(trow, f, cells, STORE_TL_CELLS + 1);
}

/* A cursor: "a" or "c" (the order), the newest event id of the first
 * page, the (time, id) position of the last row given (an annotation's
 * id negated, see store_tlnote.c) and, after an "n", the newest
 * annotation id of the first page, joined by dots: @page as
 * store_timeline holds it. */
void store_cursor_format(char *buf, enum store_order o,
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
int store_cursor_parse(const char *c, enum store_order o, int64_t page[4])
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

/* A service's names as the statement binds them: ?10 its targets (every
 * region's, the lag targets and the global ones), ?13 its regions, both
 * JSON arrays, into @tg and @rg. */
void store_service_json(const struct topo_service *sv, struct jsonw *tg,
                        struct jsonw *rg)
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

/* Writes the reply's head (JSON: up to the events; a table: its header). */
void store_timeline_head(struct store_tl *t,
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
void store_timeline_tail(struct store_tl *t,
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

/* Adds the row @r to the reply: 1 added, 0 it would pass the reply's
 * cap (the reply stops at a whole row, and the cursor goes on from
 * there), or -ENOMEM. */
static int store_timeline_add(struct store_tl *t,
                              const struct store_timeline_query *q,
                              const struct store_tl_row *r, unsigned count)
{
    const struct jsonw *piece = &t->row;
    size_t fields_at;
    int rc = store_timeline_row(&t->row, r, &fields_at);

    if (rc == 0 && t->row.err == -ENOMEM)
        rc = -ENOMEM;
    if (rc < 0 || t->row.err)
        return rc;
    if (t->table) {
        store_table_row(&t->trow, t->tf, r, &t->row, fields_at,
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

/* Of the events' row @s and the annotations' @a (NULL: none), the one
 * first in (key, id) order; NULL when neither has a row. */
static const struct store_tl_row *store_timeline_first(
    const struct store_tl_row *s, const struct store_tl_row *a)
{
    if (!s || !a)
        return s ? s : a;
    if (s->key != a->key)
        return s->key < a->key ? s : a;
    return s->id < a->id ? s : a;
}

void store_timeline_steps(struct store_tl *t,
                          const struct store_timeline_query *q,
                          struct store_tl_src *s, struct store_tl_src *a,
                          struct store_tl_page *pg)
{
    struct store_tl_row sr, ar;
    const struct store_tl_row *h;
    int as = a ? a->next(a, &ar) : 0, ss;

    pg->count = 0;
    pg->added = 1;
    pg->err = 0;
    pg->more = 0;
    store_timeline_head(t, q);
    ss = s->next(s, &sr);
    for (;;) {
        if (ss < 0 || as < 0) {
            pg->err = ss < 0 ? ss : as;       /* either one's error */
            return;
        }
        h = store_timeline_first(ss ? &sr : NULL, as ? &ar : NULL);
        pg->more = h != NULL;
        if (!h)
            return;
        if (pg->count >= q->limit)
            break;
        pg->added = store_timeline_add(t, q, h, pg->count);
        if (pg->added <= 0)
            break;
        pg->last_id = h->id;
        pg->last_key = h->key;
        pg->count++;
        if (h == &ar)
            as = a->next(a, &ar);
        else
            ss = s->next(s, &sr);
    }
    pg->stop_key = h->key;
}

void store_tl_init(struct store_tl *t, const struct store_timeline_query *q)
{
    t->table = q->format != STORE_FORMAT_JSON;
    t->tf = q->format == STORE_FORMAT_MD ? TABLE_MD : TABLE_CSV;
    jsonw_init(&t->w, STORE_TIMELINE_BYTES + 64);   /* room to close it */
    jsonw_init(&t->row, STORE_TIMELINE_BYTES);
    jsonw_init(&t->trow, STORE_TIMELINE_BYTES);
    jsonw_init(&t->summary, STORE_TIMELINE_BYTES);
    jsonw_init(&t->tg, STORE_TIMELINE_BYTES);
    jsonw_init(&t->rg, STORE_TIMELINE_BYTES);
    if (!q->target && q->service)
        store_service_json(q->service, &t->tg, &t->rg);
}

void store_tl_free(struct store_tl *t)
{
    jsonw_free(&t->w);
    jsonw_free(&t->row);
    jsonw_free(&t->trow);
    jsonw_free(&t->summary);
    jsonw_free(&t->tg);
    jsonw_free(&t->rg);
}

int store_tl_finish(struct store_tl *t, const struct store_timeline_query *q,
                    const struct store_tl_page *pg, int64_t page[4],
                    char **out, size_t *out_len)
{
    char next[STORE_CURSOR_LEN] = "";

    if (pg->more && pg->count == 0)
        return -EMSGSIZE;           /* one row over the whole cap */
    if (pg->more) {
        page[1] = pg->last_key;
        page[2] = pg->last_id;
        store_cursor_format(next, q->order, page);
    }
    store_timeline_tail(t, q, pg->count, next);
    if (q->next)
        memcpy(q->next, next, sizeof(next));
    if (t->w.len == 0 && !t->w.err) {   /* rows only, and none: "" */
        *out = calloc(1, 1);
        *out_len = 0;
        return *out ? 0 : -ENOMEM;
    }
    return store_json_take(&t->w, out, out_len);
}
