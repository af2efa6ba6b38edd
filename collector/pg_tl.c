/* pg_tl.c -- store_timeline on PostgreSQL: the events' and annotations'
 * statements, and their rows as plain values for store_tlrow.c, which
 * renders, pages and merges them as it does SQLite's. SQLite writes an
 * event's JSON object in SQL (json_object, strftime); here it is written
 * in C to the same bytes: keys in the same order, strings quoted as
 * SQLite's JSON functions quote them, times as strftime's
 * "%Y-%m-%dT%H:%M:%fZ". A page is read as SQLite reads it: the agent
 * order by an index scan in its order that stops at the limit, the
 * corrected order by a span of agent-clock time widened until the page
 * is whole within it (store_timeline_widen).
 *
 * Paging with many collectors. Event ids come from one sequence, drawn
 * before a writer commits: with several writers (or one writer's group
 * beside a reader) an event with a smaller id than the first page's
 * newest may commit after that page was read. A cursor holds a position
 * (time on the order's clock, id) and every later page starts strictly
 * after it, so no event is ever given twice and every event stored
 * before the first page is given once; what holds less than on SQLite
 * is "events stored after the first page are not in that paging": such
 * a late committer is given if its position is after the cursor's, and
 * not otherwise. Reads only. */
#include "store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "jsonw.h"
#include "store_priv.h"
#include "topology.h"

/* An event's clock offset: the one recorded for its batch (see
 * store_sql.c's OFFSET_SQL); NULL when there is none. The agent order
 * needs it for the page's rows only: looked up row by row on
 * agent_offsets' primary key. The corrected order's key needs it for
 * every row scanned: agent_offsets is read once as ranges of seq and
 * hash-joined (an agent's ranges [from_seq, the next from_seq) do not
 * overlap, so at most one matches: the one OFFSET_SQL picks). */
#define PGTL_OFFSET_EACH \
    " LEFT JOIN LATERAL (SELECT o.offset_ms FROM agent_offsets o" \
    "   WHERE o.agent_id = e.agent_id AND o.from_seq <= e.seq" \
    "   ORDER BY o.from_seq DESC LIMIT 1) o ON true"
#define PGTL_OFFSET_RANGES \
    " LEFT JOIN (SELECT agent_id, from_seq, offset_ms, lead(from_seq)" \
    "   OVER (PARTITION BY agent_id ORDER BY from_seq) AS to_seq" \
    "   FROM agent_offsets) o ON o.agent_id = e.agent_id" \
    "   AND o.from_seq <= e.seq AND (o.to_seq IS NULL OR e.seq < o.to_seq)"
#define PGTL_CORRECTED "(e.unix_ms + coalesce(o.offset_ms, 0))"
/* A data field as SQLite's SVC_FIELD reads it ('' when absent). */
#define PGTL_FIELD(f) "coalesce(e.data::json->>'" f "', '')"
#define PGTL_IN_REGIONS(f) \
    PGTL_FIELD(f) " IN (SELECT json_array_elements_text($13::json))"
/* The page: events and what the filters need, in the order's (key, id),
 * at most the limit. A NULL parameter is no filter (PQexecParams plans
 * with the values, so a NULL filter folds away). $1 $2 the scan's
 * agent-clock bounds, $3 cluster, $4 the limit, $5 target, $6 kinds
 * (comma-separated), $7 the paging's newest id, ($8, $9) the position
 * after which the page starts, $10 the service's targets (JSON), $11 its
 * global name, $12 its name, $13 its regions (JSON), $14 region, $15 $16
 * the window on the order's clock. The service's rules are store_sql.c's
 * F_SERVICE. In the agent order the indexes on (unix_ms, id) and
 * (target_id, unix_ms, id) (schema 2) give each day's rows in that
 * order: the days' index scans one after the other (an ordered Append:
 * the days are ranges of unix_ms), stopped at the limit, no sort. */
#define PGTL_PAGE(key, offset) \
    "SELECT a.cluster, a.region, a.node, a.epoch, e.seq, k.name AS kind," \
    " e.target_id, e.unix_ms, o.offset_ms, e.recv_delta_ms, e.data," \
    " e.text_id, e.probe_type, e.ok, e.status, e.dns_us, e.connect_us," \
    " e.tls_us, e.first_byte_us, e.total_us, e.served_by_id, e.cert_id," \
    " e.answers_id, e.id, " key " AS key" \
    " FROM events e JOIN agents a ON a.id = e.agent_id" \
    " JOIN kinds k ON k.id = e.kind_id" offset \
    " WHERE e.unix_ms >= $1 AND e.unix_ms < $2" \
    "   AND " key " >= $15 AND " key " < $16" \
    "   AND ($3::text IS NULL OR a.cluster = $3)" \
    "   AND ($14::text IS NULL OR a.region = $14)" \
    "   AND ($5::text IS NULL OR e.target_id =" \
    "     (SELECT id FROM targets WHERE name = $5))" \
    "   AND ($6::text IS NULL OR k.name = ANY (string_to_array($6, ',')))" \
    "   AND ($10::text IS NULL" \
    "     OR e.target_id IN (SELECT id FROM targets WHERE name IN" \
    "       (SELECT json_array_elements_text($10::json)))" \
    "     OR (e.data IS NOT NULL AND CASE k.name" \
    "       WHEN 'dns' THEN lower(rtrim(" PGTL_FIELD("name") ", '.')) =" \
    "         lower(rtrim($11, '.'))" \
    "       WHEN 'failover' THEN " PGTL_FIELD("service") " = $12" \
    "         OR (" PGTL_FIELD("service") " = '' AND (" \
    PGTL_IN_REGIONS("from") " OR " PGTL_IN_REGIONS("to") "))" \
    "       WHEN 'marker' THEN " PGTL_FIELD("service") " IN ($12, '')" \
    "       ELSE false END))" \
    "   AND e.id <= $7 AND (" key ", e.id) > ($8::bigint, $9::bigint)" \
    " ORDER BY " key ", e.id LIMIT $4"
/* The page's rows with the names and texts they point to, looked up
 * for those rows only (the enum below). */
#define PGTL_SELECT(key, offset) \
    "SELECT p.cluster, p.region, p.node, p.epoch, p.seq, p.kind, tg.name," \
    " p.unix_ms, p.offset_ms, p.recv_delta_ms, p.data, x.text," \
    " p.probe_type, p.ok, p.status, p.dns_us, p.connect_us, p.tls_us," \
    " p.first_byte_us, p.total_us, r.name, c.not_after_ms, an.text," \
    " p.id, p.key" \
    " FROM (" PGTL_PAGE(key, offset) ") p" \
    " LEFT JOIN targets tg ON tg.id = p.target_id" \
    " LEFT JOIN texts x ON x.id = p.text_id" \
    " LEFT JOIN regions r ON r.id = p.served_by_id" \
    " LEFT JOIN certs c ON c.id = p.cert_id" \
    " LEFT JOIN texts an ON an.id = p.answers_id" \
    " ORDER BY p.key, p.id"

static const char pgtl_agent_sql[] =
    PGTL_SELECT("e.unix_ms", PGTL_OFFSET_EACH);
static const char pgtl_corrected_sql[] =
    PGTL_SELECT(PGTL_CORRECTED, PGTL_OFFSET_RANGES);

enum {
    PT_CLUSTER, PT_REGION, PT_NODE, PT_EPOCH, PT_SEQ, PT_KIND, PT_TARGET,
    PT_UNIX_MS, PT_OFFSET, PT_RECV_DELTA, PT_DATA, PT_TEXT, PT_TYPE, PT_OK,
    PT_STATUS, PT_DNS_US, PT_SERVED_BY = PT_DNS_US + 5, PT_CERT,
    PT_ANSWERS, PT_ID, PT_KEY
};

/* Annotations as store_tlnote.c gives them: $1 $2 the window, $3 the
 * paging's newest annotation id, ($4, $5) the position (an annotation's
 * id negated), $6 the limit, $7 a service (NULL: every note). */
static const char pgtl_note_sql[] =
    "SELECT n.id, n.unix_ms, n.created_ms, n.text, n.service,"
    " n.incident_id FROM annotations n"
    " WHERE n.unix_ms >= $1 AND n.unix_ms < $2 AND n.id <= $3"
    "   AND (n.unix_ms, -n.id) > ($4::bigint, $5::bigint)"
    "   AND ($7::text IS NULL OR n.service = $7 OR n.incident_id IN"
    "     (SELECT id FROM incidents WHERE service = $7))"
    " ORDER BY n.unix_ms, n.id DESC LIMIT $6";

/* The first page's bounds and the corrected order's margin (store_sql.c's
 * STORE_SQL_MAX_ID, note max, MAX_OFFSET), in one snapshot. */
static const char pgtl_bounds_sql[] =
    "SELECT (SELECT max(id) FROM events),"
    " (SELECT max(id) FROM annotations),"
    " (SELECT max(abs(offset_ms)) FROM agent_offsets)";

/* A result as a row source: its rows one by one, rendered into the
 * buffers here (valid until the next). */
struct pgtl_src {
    struct store_tl_src src;        /* first: the merge's pointer */
    const PGresult *r;
    int i, note;
    struct jsonw ev, data, err;
    char utc[2][40];                /* time, corrected time */
};

/* @s (NULL: null) as SQLite's JSON functions quote a string: \" \\ and
 * \b \t \n \f \r, other control characters as \u00xx, every other byte
 * as it is. */
static void pgtl_quote(struct jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    static const char special[32] = {
        ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
    };
    char esc[6] = { '\\', 'u', '0', '0' };
    size_t run = 0;

    if (!s) {
        jsonw_raw(w, "null", 4);
        return;
    }
    jsonw_raw(w, "\"", 1);
    for (;; s++) {
        unsigned char c = (unsigned char)*s;

        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        jsonw_raw(w, s - run, run);
        run = 0;
        if (!c)
            break;
        if (c == '"' || c == '\\' || special[c]) {
            esc[1] = c < 0x20 ? special[c] : (char)c;
            jsonw_raw(w, esc, 2);
            esc[1] = 'u';
        } else {
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            jsonw_raw(w, esc, 6);
        }
    }
    jsonw_raw(w, "\"", 1);
}

/* ,"@key":@v for an integer column @col (NULL: null); first: no comma. */
static void pgtl_int(struct jsonw *w, const char *key, const PGresult *r,
                     int i, int col)
{
    char buf[48];

    snprintf(buf, sizeof(buf), ",\"%s\":", key);
    jsonw_raw(w, buf, strlen(buf));
    if (col < 0 || PQgetisnull(r, i, col))
        jsonw_raw(w, "null", 4);
    else
        jsonw_raw(w, PQgetvalue(r, i, col), (size_t)PQgetlength(r, i, col));
}

static void pgtl_num(struct jsonw *w, const char *key, int64_t v)
{
    char buf[64];

    snprintf(buf, sizeof(buf), ",\"%s\":%" PRId64, key, v);
    jsonw_raw(w, buf, strlen(buf));
}

static void pgtl_text(struct jsonw *w, const char *key, const char *v)
{
    char buf[48];

    snprintf(buf, sizeof(buf), ",\"%s\":", key);
    jsonw_raw(w, buf, strlen(buf));
    pgtl_quote(w, v);
}

/* The event object but its fields, as store_sql.c's TIMELINE_SELECT
 * writes it (store_tlnote.c's for a note: every agent's key null). */
static void pgtl_head(struct pgtl_src *p, const char *cluster,
                      const char *region, const char *node,
                      const char *epoch, int seq_col, const char *kind,
                      const char *target, int64_t ms, int offset_col,
                      int64_t corrected, int64_t received)
{
    struct jsonw *w = &p->ev;

    jsonw_reset(w);
    jsonw_raw(w, "{\"cluster\":", 11);
    pgtl_quote(w, cluster);
    pgtl_text(w, "region", region);
    pgtl_text(w, "node", node);
    pgtl_text(w, "epoch", epoch);
    pgtl_int(w, "seq", p->r, p->i, seq_col);
    pgtl_text(w, "kind", kind);
    pgtl_text(w, "target", target);
    pgtl_num(w, "time_ms", ms);
    pgtl_text(w, "time", p->utc[0]);
    pgtl_int(w, "clock_offset_ms", p->r, p->i, offset_col);
    pgtl_num(w, "corrected_ms", corrected);
    pgtl_text(w, "corrected_time", p->utc[1]);
    pgtl_num(w, "received_ms", received);
    jsonw_raw(w, "}", 1);
}

/* An annotation row (pgtl_note_sql's). */
static void pgtl_note_row(struct pgtl_src *p, struct store_tl_row *row)
{
    const PGresult *r = p->r;
    int i = p->i;
    int64_t ms = pg_i64(r, i, 1, 0);

    export_utc(ms, p->utc[0], sizeof(p->utc[0]));
    memcpy(p->utc[1], p->utc[0], sizeof(p->utc[1]));
    pgtl_head(p, NULL, NULL, NULL, NULL, -1, "annotation", NULL, ms, -1, ms,
              pg_i64(r, i, 2, 0));
    jsonw_reset(&p->data);
    jsonw_raw(&p->data, "{\"id\":", 6);
    jsonw_raw(&p->data, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    pgtl_text(&p->data, "text", pg_text(r, i, 3));
    pgtl_text(&p->data, "service", pg_text(r, i, 4));
    pgtl_int(&p->data, "incident", r, i, 5);
    jsonw_raw(&p->data, "}", 1);
    row->data = p->data.buf;
    row->has_type = 0;
    row->id = -pg_i64(r, i, 0, 0);
    row->key = ms;
    row->cells[0] = p->utc[0];
    row->cells[1] = p->utc[1];
    for (int c = 2; c < STORE_TL_CELLS; c++)
        row->cells[c] = "";
    row->cells[5] = "annotation";
}

/* The fields of an event kept as JSON: @data as stored, and the text the
 * writer interned apart (its "reason" for a state, else "error") put in
 * last, as SQLite's json_set appends a key the object lacks. */
static const char *pgtl_data(struct pgtl_src *p, const char *data,
                             const char *kind, const char *text)
{
    size_t n = strlen(data);

    if (!text || n < 2 || data[n - 1] != '}')
        return data;
    jsonw_reset(&p->data);
    jsonw_raw(&p->data, data, n - 1);
    if (n > 2)
        jsonw_raw(&p->data, ",", 1);
    pgtl_quote(&p->data, strcmp(kind, "state") == 0 ? "reason" : "error");
    jsonw_raw(&p->data, ":", 1);
    pgtl_quote(&p->data, text);
    jsonw_raw(&p->data, "}", 1);
    return p->data.buf;
}

/* An event row (PGTL_SELECT's). */
static void pgtl_event_row(struct pgtl_src *p, struct store_tl_row *row)
{
    const PGresult *r = p->r;
    int i = p->i;
    int64_t ms = pg_i64(r, i, PT_UNIX_MS, 0);
    int64_t corrected = ms + pg_i64(r, i, PT_OFFSET, 0);
    const char *kind = pg_text(r, i, PT_KIND);
    const char *data = pg_text(r, i, PT_DATA);
    const char *text = pg_text(r, i, PT_TEXT);
    char epoch[20];

    snprintf(epoch, sizeof(epoch), "%016" PRIx64,
             (uint64_t)pg_i64(r, i, PT_EPOCH, 0));
    export_utc(ms, p->utc[0], sizeof(p->utc[0]));
    export_utc(corrected, p->utc[1], sizeof(p->utc[1]));
    pgtl_head(p, pg_text(r, i, PT_CLUSTER), pg_text(r, i, PT_REGION),
              pg_text(r, i, PT_NODE), epoch, PT_SEQ, kind,
              pg_text(r, i, PT_TARGET), ms, PT_OFFSET, corrected,
              ms + pg_i64(r, i, PT_RECV_DELTA, 0));
    row->data = data ? pgtl_data(p, data, kind ? kind : "", text) : NULL;
    row->has_type = !PQgetisnull(r, i, PT_TYPE);
    row->type = pg_i64(r, i, PT_TYPE, 0);
    row->ok = pg_i64(r, i, PT_OK, 0);
    row->status = pg_i64(r, i, PT_STATUS, 0);
    for (int c = 0; c < 5; c++)
        row->us[c] = pg_i64(r, i, PT_DNS_US + c, 0);
    row->cert = pg_i64(r, i, PT_CERT, 0);
    row->served_by = pg_text(r, i, PT_SERVED_BY);
    row->answers = pg_text(r, i, PT_ANSWERS);
    row->error = NULL;
    if (text) {                     /* quoted as SQLite's json_quote */
        jsonw_reset(&p->err);
        pgtl_quote(&p->err, text);
        row->error = p->err.buf;
    }
    row->id = pg_i64(r, i, PT_ID, 0);
    row->key = pg_i64(r, i, PT_KEY, 0);
    row->cells[0] = p->utc[0];
    row->cells[1] = p->utc[1];
    row->cells[2] = pg_text(r, i, PT_CLUSTER);
    row->cells[3] = pg_text(r, i, PT_REGION);
    row->cells[4] = pg_text(r, i, PT_NODE);
    row->cells[5] = kind;
    row->cells[6] = pg_text(r, i, PT_TARGET);
}

static int pgtl_next(struct store_tl_src *src, struct store_tl_row *row)
{
    struct pgtl_src *p = (struct pgtl_src *)src;

    if (p->i + 1 >= PQntuples(p->r))
        return 0;
    p->i++;
    memset(row, 0, sizeof(*row));
    if (p->note)
        pgtl_note_row(p, row);
    else
        pgtl_event_row(p, row);
    if (p->ev.err || p->data.err || p->err.err)
        return -ENOMEM;             /* each is capped by the reply's */
    row->event = p->ev.buf;
    row->event_len = p->ev.len;
    return 1;
}

static void pgtl_src_init(struct pgtl_src *p, int note)
{
    memset(p, 0, sizeof(*p));
    p->src.next = pgtl_next;
    p->note = note;
    p->i = -1;
    jsonw_init(&p->ev, STORE_TIMELINE_BYTES);
    jsonw_init(&p->data, STORE_TIMELINE_BYTES);
    jsonw_init(&p->err, STORE_TIMELINE_BYTES);
}

static void pgtl_src_free(struct pgtl_src *p)
{
    jsonw_free(&p->ev);
    jsonw_free(&p->data);
    jsonw_free(&p->err);
}

/* a + b, saturated (the scan's bounds widened by the offset margin). */
static int64_t pgtl_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* Whether the kind filter @kind (NULL: every kind) takes annotations, as
 * store_tlnote.c's: one of its comma-separated names is "annotation". */
static int pgtl_note_kind(const char *kind)
{
    const char *k = kind;

    if (!kind)
        return 1;
    for (;;) {
        size_t n = strcspn(k, ",");

        if (n == 10 && memcmp(k, "annotation", 10) == 0)
            return 1;
        if (!k[n])
            return 0;
        k += n + 1;
    }
}

/* Runs the events' statement of @q's page into *@out; the corrected
 * order scans agent-clock time up to @end (store_timeline_span's). */
static int pgtl_events(struct store *st, PGconn *c,
                       const struct store_timeline_query *q,
                       const struct store_tl *t, const int64_t page[4],
                       int64_t margin, int64_t end, PGresult **out,
                       int *broken)
{
    int corr = q->order == STORE_ORDER_CORRECTED;
    int64_t from = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    int64_t to = pgtl_add(q->to_ms, margin);
    const struct topo_service *sv = q->target ? NULL : q->service;
    struct pg_params p;

    pg_params_reset(&p);
    pg_param_i64(&p, corr ? pgtl_add(from, -margin) : from);      /* $1 */
    pg_param_i64(&p, corr ? (end < to ? end : to) : q->to_ms);
    pg_param_text(&p, q->cluster);
    pg_param_i64(&p, (int64_t)q->limit + 1);
    pg_param_text(&p, q->target);                                   /* $5 */
    pg_param_text(&p, q->kind);
    pg_param_i64(&p, page[0]);
    pg_param_i64(&p, page[1]);
    pg_param_i64(&p, page[2]);
    pg_param_text(&p, sv ? t->tg.buf : NULL);                       /* $10 */
    pg_param_text(&p, sv ? sv->global_name : NULL);
    pg_param_text(&p, sv ? sv->name : NULL);
    pg_param_text(&p, sv ? t->rg.buf : NULL);
    pg_param_text(&p, q->region);
    pg_param_i64(&p, from);                                         /* $15 */
    pg_param_i64(&p, q->to_ms);
    return pgq_run(st, c, corr ? pgtl_corrected_sql : pgtl_agent_sql, &p,
                   "timeline", out, broken);
}

/* Runs the annotations' statement of @q's page into *@out (NULL: the
 * query takes none: an agent's filter, or kinds without "annotation"). */
static int pgtl_notes(struct store *st, PGconn *c,
                      const struct store_timeline_query *q,
                      const int64_t page[4], PGresult **out, int *broken)
{
    int64_t from = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    const struct topo_service *sv = q->target ? NULL : q->service;
    struct pg_params p;

    *out = NULL;
    if (q->cluster || q->region || q->target || !pgtl_note_kind(q->kind))
        return 0;
    pg_params_reset(&p);
    pg_param_i64(&p, from);
    pg_param_i64(&p, q->to_ms);
    pg_param_i64(&p, page[3]);
    pg_param_i64(&p, page[1]);
    pg_param_i64(&p, page[2]);
    pg_param_i64(&p, (int64_t)q->limit + 1);
    pg_param_text(&p, sv ? sv->name : NULL);
    return pgq_run(st, c, pgtl_note_sql, &p, "timeline", out, broken);
}

/* The first page's newest event and annotation ids into @page, the
 * largest offset into *@margin. */
static int pgtl_bounds(struct store *st, PGconn *c, int first,
                       int64_t page[4], int64_t *margin, int *broken)
{
    PGresult *r = NULL;
    int rc = pgq_run(st, c, pgtl_bounds_sql, NULL, "timeline", &r, broken);

    if (rc < 0)
        return rc;
    if (first) {
        page[0] = pg_i64(r, 0, 0, 0);
        page[3] = pg_i64(r, 0, 1, 0);
    }
    *margin = pg_i64(r, 0, 2, 0);
    PQclear(r);
    return 0;
}

int store_pg_timeline(struct store *st, const struct store_timeline_query *q,
                      char **out, size_t *out_len)
{
    /* The newest event id, the position, the newest annotation id. */
    int64_t page[4] = { 0, INT64_MIN, 0, 0 }, margin = 0;
    int64_t span = STORE_TL_SPAN_MS, lo, end = INT64_MAX;
    struct pgtl_src es, ns;
    PGresult *er = NULL, *nr = NULL;
    struct store_tl t;
    struct store_tl_page pg = { 0 };
    PGconn *c;
    int rc, broken = 0, full = 1;

    if (q->cursor && store_cursor_parse(q->cursor, q->order, page) < 0)
        return -EINVAL;
    rc = pgq_begin(st, 1, &c);
    if (rc < 0)
        return rc;
    store_tl_init(&t, q);
    pgtl_src_init(&es, 0);
    pgtl_src_init(&ns, 1);
    rc = t.tg.err ? t.tg.err : t.rg.err;
    if (rc == 0)
        rc = pgtl_bounds(st, c, !q->cursor, page, &margin, &broken);
    if (rc == 0)
        rc = pgtl_notes(st, c, q, page, &nr, &broken);
    lo = q->cursor && page[1] > q->from_ms ? page[1] : q->from_ms;
    /* The corrected order reads a growing span until the page is whole
     * within it, as on SQLite (store_timeline_widen); the agent order's
     * index gives its rows in order, and it stops at the limit. */
    while (rc == 0) {
        if (q->order == STORE_ORDER_CORRECTED)
            end = store_timeline_span(lo, span, margin, q->to_ms, &full);
        PQclear(er);
        er = NULL;
        rc = pgtl_events(st, c, q, &t, page, margin, end, &er, &broken);
        if (rc < 0)
            break;
        es.r = er;
        es.i = -1;
        ns.r = nr;
        ns.i = -1;
        store_timeline_steps(&t, q, &es.src, nr ? &ns.src : NULL, &pg);
        if (!store_timeline_widen(&pg, full, lo, &span))
            break;
        jsonw_reset(&t.w);
    }
    if (rc < 0)
        goto out;
    rc = pg.added < 0 ? pg.added : pg.err;
    if (rc == 0)
        rc = store_tl_finish(&t, q, &pg, page, out, out_len);
out:
    PQclear(er);
    PQclear(nr);
    pgtl_src_free(&es);
    pgtl_src_free(&ns);
    store_tl_free(&t);
    store_pg_reader_put(st, c, broken);
    return rc;
}
