/* export.c -- an incident's JSON (store.h's shape) as Markdown, CSV or
 * JSON for a postmortem (see export.h). Parses with json-c and writes the
 * tables with table.h; knows nothing of HTTP or the store. */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "table.h"

#define EXPORT_MAX_BYTES (64u << 20)    /* an export's cap */
#define EXPORT_TL_COLS   7u

/* The summary: a field's CSV name, its Markdown label, and where its
 * value is in the incident JSON ("times" or "durations_ms" member, or a
 * top-level member). */
enum export_kind { EX_STR, EX_BOOL, EX_INT, EX_TIME, EX_DUR, EX_RPO };
static const struct {
    const char *field, *label, *key;
    enum export_kind kind;
} export_summary[] = {
    { "id", "Incident", "id", EX_INT },
    { "service", "Service", "service", EX_STR },
    { "region", "Region", "region", EX_STR },
    { "pattern", "Pattern", "pattern", EX_STR },
    { "to_region", "To region", "to_region", EX_STR },
    { "manual", "Manual failover", "manual", EX_BOOL },
    { "open", "Open", "open", EX_BOOL },
    { "first_failure", "First failure (UTC)", "first_failure", EX_TIME },
    { "detected", "Detected (UTC)", "detected", EX_TIME },
    { "failover_start", "Failover start (UTC)", "failover_start", EX_TIME },
    { "dns_switched_first", "DNS switched, first agent (UTC)",
      "dns_switched_first", EX_TIME },
    { "dns_switched_all", "DNS switched, all agents (UTC)",
      "dns_switched_all", EX_TIME },
    { "restored", "Restored (UTC)", "restored", EX_TIME },
    { "closed", "Closed (UTC)", "closed", EX_TIME },
    { "time_to_detect", "Time to detect", "time_to_detect", EX_DUR },
    { "time_to_failover", "Time to fail over", "time_to_failover", EX_DUR },
    { "rto", "RTO", "rto", EX_DUR },
    { "outage", "Outage", "outage", EX_DUR },
    { "rpo", "RPO (estimate)", "rpo_ms", EX_RPO },
};
#define EXPORT_N_SUMMARY (sizeof(export_summary) / sizeof(export_summary[0]))

int export_format_parse(const char *s, enum export_format *out)
{
    if (strcmp(s, "md") == 0)
        *out = EXPORT_MD;
    else if (strcmp(s, "csv") == 0)
        *out = EXPORT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = EXPORT_JSON;
    else
        return -EINVAL;
    return 0;
}

const char *export_content_type(enum export_format f)
{
    if (f == EXPORT_JSON)
        return "application/json";
    return table_content_type(f == EXPORT_CSV ? TABLE_CSV : TABLE_MD);
}

const char *export_extension(enum export_format f)
{
    return f == EXPORT_JSON ? "json" : f == EXPORT_CSV ? "csv" : "md";
}

void export_utc(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)t * 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "%" PRId64, ms);
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, frac);
}

void export_duration(int64_t ms, char *buf, size_t size)
{
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;

    snprintf(buf, size, "%s%" PRIu64 ".%03u s", ms < 0 ? "-" : "",
             a / 1000, (unsigned)(a % 1000));
}

/* @o's member @key, or NULL (also when @o is NULL or not an object). */
static struct json_object *ex_get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!o || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

static const char *ex_str(struct json_object *o, const char *key)
{
    struct json_object *v = ex_get(o, key);

    return v && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

/* A member holding an integer: 1 and *out, or 0. */
static int ex_int(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v = ex_get(o, key);

    if (!v || !(json_object_is_type(v, json_type_int) ||
                json_object_is_type(v, json_type_double)))
        return 0;
    *out = json_object_get_int64(v);
    return 1;
}

/* The index in export_summary of @field (one of its names). */
static size_t ex_field(const char *field)
{
    size_t i = 0;

    while (i < EXPORT_N_SUMMARY - 1 &&
           strcmp(export_summary[i].field, field) != 0)
        i++;
    return i;
}

/* One summary value into @buf ("" when null or missing). */
static void ex_summary_value(struct json_object *inc, size_t i, char *buf,
                             size_t size)
{
    const char *key = export_summary[i].key, *s;
    struct json_object *v;
    int64_t n;

    buf[0] = '\0';
    switch (export_summary[i].kind) {
    case EX_STR:
        s = ex_str(inc, key);
        snprintf(buf, size, "%s", s ? s : "");
        break;
    case EX_BOOL:
        v = ex_get(inc, key);
        if (v && json_object_is_type(v, json_type_boolean))
            snprintf(buf, size, "%s",
                     json_object_get_boolean(v) ? "yes" : "no");
        break;
    case EX_INT:
        if (ex_int(inc, key, &n))
            snprintf(buf, size, "%" PRId64, n);
        break;
    case EX_TIME:
        if (ex_int(ex_get(ex_get(inc, "times"), key), "ms", &n))
            export_utc(n, buf, size);
        break;
    case EX_DUR:
        if (ex_int(ex_get(inc, "durations_ms"), key, &n))
            export_duration(n, buf, size);
        break;
    case EX_RPO:
        v = ex_get(inc, key);
        if (v && (json_object_is_type(v, json_type_int) ||
                  json_object_is_type(v, json_type_double)))
            export_duration((int64_t)(json_object_get_double(v) + 0.5), buf,
                            size);
        break;
    }
}

/* One row of the timeline, its cells owned. */
struct ex_row {
    int64_t sort_ms;
    size_t order;               /* ties keep the store's order */
    char *cells[EXPORT_TL_COLS];
};

static void ex_row_free(struct ex_row *r)
{
    for (size_t i = 0; i < EXPORT_TL_COLS; i++)
        free(r->cells[i]);
}

/* Appends the values of @key's array of answers (or strings), joined by
 * commas, to @w. */
static void ex_answers(struct jsonw *w, struct json_object *fields,
                       const char *key)
{
    struct json_object *a = ex_get(fields, key), *x;
    size_t n;

    if (!a || !json_object_is_type(a, json_type_array)) {
        jsonw_raw(w, "-", 1);
        return;
    }
    n = json_object_array_length(a);
    if (n == 0)
        jsonw_raw(w, "(none)", 6);
    for (size_t i = 0; i < n; i++) {
        const char *v;

        x = json_object_array_get_idx(a, i);
        v = json_object_is_type(x, json_type_string)
                ? json_object_get_string(x) : ex_str(x, "value");
        if (i)
            jsonw_raw(w, ",", 1);
        if (v)
            jsonw_raw(w, v, strlen(v));
    }
}

static void ex_text(struct jsonw *w, const char *s)
{
    if (s)
        jsonw_raw(w, s, strlen(s));
}

/* Appends ": @s" when @s is not empty. */
static void ex_colon(struct jsonw *w, const char *s)
{
    if (s && s[0]) {
        jsonw_raw(w, ": ", 2);
        jsonw_raw(w, s, strlen(s));
    }
}

/* What an event says, in a few words, into @w. */
static void ex_what(struct jsonw *w, const char *kind,
                    struct json_object *ev)
{
    struct json_object *f = ex_get(ev, "fields"), *v;
    const char *note = ex_str(ev, "note");
    char num[64];
    int64_t n;

    if (note && note[0]) {
        ex_text(w, note);
        jsonw_raw(w, "; ", 2);
    }
    if (strcmp(kind, "probe") == 0) {
        v = ex_get(f, "ok");
        ex_text(w, v && json_object_get_boolean(v) ? "ok" : "failed");
        if (ex_int(f, "status", &n) && n) {
            snprintf(num, sizeof(num), ", status %" PRId64, n);
            ex_text(w, num);
        }
        if (ex_int(f, "total_us", &n) && n) {
            snprintf(num, sizeof(num), ", %" PRId64 ".%03" PRId64 " ms",
                     n / 1000, n % 1000);
            ex_text(w, num);
        }
        if (ex_str(f, "served_by") && ex_str(f, "served_by")[0]) {
            ex_text(w, ", served by ");
            ex_text(w, ex_str(f, "served_by"));
        }
        ex_colon(w, ex_str(f, "error"));
    } else if (strcmp(kind, "state") == 0) {
        ex_text(w, ex_str(f, "from"));
        ex_text(w, " -> ");
        ex_text(w, ex_str(f, "to"));
        ex_colon(w, ex_str(f, "reason"));
    } else if (strcmp(kind, "dns") == 0) {
        ex_text(w, ex_str(f, "name"));
        ex_text(w, ": ");
        ex_answers(w, f, "old");
        ex_text(w, " -> ");
        ex_answers(w, f, "new");
    } else if (strcmp(kind, "failover") == 0 ||
               strcmp(kind, "marker") == 0) {
        ex_text(w, ex_str(f, "kind"));
        if ((ex_str(f, "from") && ex_str(f, "from")[0]) ||
            (ex_str(f, "to") && ex_str(f, "to")[0])) {
            ex_text(w, " ");
            ex_text(w, ex_str(f, "from"));
            ex_text(w, " -> ");
            ex_text(w, ex_str(f, "to"));
        }
        ex_colon(w, ex_str(f, "text"));
    } else if (strcmp(kind, "metric") == 0) {
        v = ex_get(f, "value");
        ex_text(w, ex_str(f, "name"));
        snprintf(num, sizeof(num), " = %g", v ? json_object_get_double(v)
                                              : 0.0);
        ex_text(w, num);
    } else if (f) {
        ex_text(w, json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN));
    }
}

/* A copy of @s ("" for NULL); NULL only when out of memory. */
static char *ex_dup(const char *s)
{
    return strdup(s ? s : "");
}

/* Fills @r from timeline event @ev: 0 or -ENOMEM. */
static int ex_event_row(struct json_object *ev, struct ex_row *r)
{
    const char *kind = ex_str(ev, "kind");
    char t[40], c[40];
    struct jsonw what;
    int64_t ms = 0, cms;
    size_t len;

    if (!kind)
        kind = "";
    ex_int(ev, "time_ms", &ms);
    cms = ms;
    ex_int(ev, "corrected_ms", &cms);
    export_utc(ms, t, sizeof(t));
    export_utc(cms, c, sizeof(c));
    r->sort_ms = cms;
    jsonw_init(&what, EXPORT_MAX_BYTES);
    ex_what(&what, kind, ev);
    r->cells[0] = ex_dup(t);
    r->cells[1] = ex_dup(c);
    r->cells[2] = ex_dup(ex_str(ev, "cluster"));
    r->cells[3] = ex_dup(ex_str(ev, "node"));
    r->cells[4] = ex_dup(kind);
    r->cells[5] = ex_dup(ex_str(ev, "target"));
    r->cells[6] = what.err ? NULL : jsonw_take(&what, &len);
    jsonw_free(&what);
    for (size_t i = 0; i < EXPORT_TL_COLS; i++)
        if (!r->cells[i])
            return -ENOMEM;
    return 0;
}

/* Fills @r from annotation @an: its time is on the collector's clock,
 * so it is both the time and the corrected time. */
static int ex_annotation_row(struct json_object *an, struct ex_row *r)
{
    char t[40];
    int64_t ms = 0;

    ex_int(ex_get(an, "time"), "ms", &ms);
    export_utc(ms, t, sizeof(t));
    r->sort_ms = ms;
    r->cells[0] = ex_dup(t);
    r->cells[1] = ex_dup(t);
    r->cells[2] = ex_dup("");
    r->cells[3] = ex_dup("");
    r->cells[4] = ex_dup("annotation");
    r->cells[5] = ex_dup("");
    r->cells[6] = ex_dup(ex_str(an, "text"));
    for (size_t i = 0; i < EXPORT_TL_COLS; i++)
        if (!r->cells[i])
            return -ENOMEM;
    return 0;
}

static int ex_row_cmp(const void *a, const void *b)
{
    const struct ex_row *x = a, *y = b;

    if (x->sort_ms != y->sort_ms)
        return x->sort_ms < y->sort_ms ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The incident's timeline and annotations as rows by corrected time:
 * 0 with *rows (free each with ex_row_free, then the array), or -errno. */
static int ex_rows(struct json_object *inc, struct ex_row **rows,
                   size_t *n_rows)
{
    struct json_object *tl = ex_get(inc, "timeline");
    struct json_object *an = ex_get(inc, "annotations");
    size_t n_tl = 0, n_an = 0, n = 0;
    struct ex_row *r;
    int rc = 0;

    if (tl && json_object_is_type(tl, json_type_array))
        n_tl = json_object_array_length(tl);
    if (an && json_object_is_type(an, json_type_array))
        n_an = json_object_array_length(an);
    r = calloc(n_tl + n_an + 1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n_tl && rc == 0; i++, n++) {
        r[n].order = n;
        rc = ex_event_row(json_object_array_get_idx(tl, i), &r[n]);
    }
    for (size_t i = 0; i < n_an && rc == 0; i++, n++) {
        r[n].order = n;
        rc = ex_annotation_row(json_object_array_get_idx(an, i), &r[n]);
    }
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            ex_row_free(&r[i]);
        free(r);
        return rc;
    }
    qsort(r, n, sizeof(*r), ex_row_cmp);
    *rows = r;
    *n_rows = n;
    return 0;
}

static const char *const export_tl_header[EXPORT_TL_COLS] = {
    "Time (UTC)", "Corrected (UTC)", "Cluster", "Node", "Kind", "Target",
    "What",
};

/* The summary: Markdown a two-column table under a title, CSV
 * field,value rows under that header. */
static void ex_summary(struct jsonw *w, struct json_object *inc,
                       enum table_format tf)
{
    static const char *const md_head[] = { "Field", "Value" };
    static const char *const csv_head[] = { "field", "value" };
    char value[64], title[512];
    int64_t id = 0;

    if (tf == TABLE_MD) {
        ex_int(inc, "id", &id);
        snprintf(title, sizeof(title), "# Incident %" PRId64 ": %.200s, "
                 "region %.200s\n\n", id,
                 ex_str(inc, "service") ? ex_str(inc, "service") : "",
                 ex_str(inc, "region") ? ex_str(inc, "region") : "");
        jsonw_raw(w, title, strlen(title));
    }
    table_header(w, tf, tf == TABLE_MD ? md_head : csv_head, 2);
    for (size_t i = 0; i < EXPORT_N_SUMMARY; i++) {
        const char *cells[2];

        ex_summary_value(inc, i, value, sizeof(value));
        cells[0] = tf == TABLE_MD ? export_summary[i].label
                                  : export_summary[i].field;
        cells[1] = value;
        table_row(w, tf, cells, 2);
    }
}

/* Parses @json as an object: 0 and *out (json_object_put it), or
 * -EINVAL. */
static int ex_parse(const char *json, size_t len, struct json_object **out)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o;

    if (!tok)
        return -ENOMEM;
    o = json_tokener_parse_ex(tok, json, (int)len);
    if (o && (json_tokener_get_error(tok) != json_tokener_success ||
              tok->char_offset != (int)len ||
              !json_object_is_type(o, json_type_object))) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    if (!o)
        return -EINVAL;
    *out = o;
    return 0;
}

/* The JSON format: a copy of what was given. */
static int ex_copy(const char *json, size_t len, char **out, size_t *out_len)
{
    char *s = malloc(len + 1);

    if (!s)
        return -ENOMEM;
    memcpy(s, json, len);
    s[len] = '\0';
    *out = s;
    *out_len = len;
    return 0;
}

static int ex_take(struct jsonw *w, char **out, size_t *out_len)
{
    char *s;

    if (w->err)
        return w->err;
    s = jsonw_take(w, out_len);
    if (!s)
        return -ENOMEM;
    *out = s;
    return 0;
}

/* The start of an export: parses @json, which must be an incident (or
 * with @list, a list of them). 0 and *obj to render; 1 when @f is JSON,
 * with the copy in *out (done); -errno. */
static int ex_begin(const char *json, size_t len, enum export_format f,
                    int list, struct json_object **obj, char **out,
                    size_t *out_len)
{
    struct json_object *o = NULL, *incs;
    int rc;

    if (len > INT32_MAX)
        return -EMSGSIZE;
    rc = ex_parse(json, len, &o);
    if (rc < 0)
        return rc;
    incs = ex_get(o, "incidents");
    if (list ? !incs || !json_object_is_type(incs, json_type_array)
             : !ex_get(o, "id") || !ex_str(o, "service") ||
               !ex_get(o, "times"))
        rc = -EINVAL;
    else if (f == EXPORT_JSON)
        rc = ex_copy(json, len, out, out_len) < 0 ? -ENOMEM : 1;
    if (rc != 0) {
        json_object_put(o);
        return rc;
    }
    *obj = o;
    return 0;
}

int export_incident(const char *json, size_t len, enum export_format f,
                    char **out, size_t *out_len)
{
    enum table_format tf = f == EXPORT_CSV ? TABLE_CSV : TABLE_MD;
    struct json_object *inc = NULL;
    struct ex_row *rows = NULL;
    size_t n_rows = 0;
    const char *sep;
    struct jsonw w;
    int rc;

    rc = ex_begin(json, len, f, 0, &inc, out, out_len);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    jsonw_init(&w, EXPORT_MAX_BYTES);
    rc = ex_rows(inc, &rows, &n_rows);
    if (rc < 0)
        goto out;
    ex_summary(&w, inc, tf);
    sep = tf == TABLE_MD ? "\n## Timeline\n\n" : "\r\n";
    jsonw_raw(&w, sep, strlen(sep));
    table_header(&w, tf, export_tl_header, EXPORT_TL_COLS);
    for (size_t i = 0; i < n_rows; i++)
        table_row(&w, tf, (const char *const *)rows[i].cells,
                  EXPORT_TL_COLS);
    rc = ex_take(&w, out, out_len);
out:
    for (size_t i = 0; i < n_rows; i++)
        ex_row_free(&rows[i]);
    free(rows);
    jsonw_free(&w);
    json_object_put(inc);
    return rc;
}

int export_incident_list(const char *json, size_t len,
                         enum export_format f, char **out,
                         size_t *out_len)
{
    /* The summary fields a list row shows. */
    static const char *const cols[] = {
        "id", "service", "region", "to_region", "open", "first_failure",
        "detected", "restored", "closed", "time_to_detect",
        "time_to_failover", "rto", "rpo",
    };
#define EX_LIST_COLS (sizeof(cols) / sizeof(cols[0]))
    enum table_format tf = f == EXPORT_CSV ? TABLE_CSV : TABLE_MD;
    const char *head[EX_LIST_COLS], *cells[EX_LIST_COLS];
    char values[EX_LIST_COLS][64];
    struct json_object *list = NULL, *incs;
    struct jsonw w;
    int rc;

    rc = ex_begin(json, len, f, 1, &list, out, out_len);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    jsonw_init(&w, EXPORT_MAX_BYTES);
    incs = ex_get(list, "incidents");
    for (size_t c = 0; c < EX_LIST_COLS; c++) {
        head[c] = tf == TABLE_MD ? export_summary[ex_field(cols[c])].label
                                 : cols[c];
        cells[c] = values[c];
    }
    table_header(&w, tf, head, EX_LIST_COLS);
    for (size_t i = 0; i < json_object_array_length(incs); i++) {
        struct json_object *inc = json_object_array_get_idx(incs, i);

        for (size_t c = 0; c < EX_LIST_COLS; c++)
            ex_summary_value(inc, ex_field(cols[c]), values[c],
                             sizeof(values[c]));
        table_row(&w, tf, cells, EX_LIST_COLS);
    }
    rc = ex_take(&w, out, out_len);
    jsonw_free(&w);
    json_object_put(list);
    return rc;
#undef EX_LIST_COLS
}
