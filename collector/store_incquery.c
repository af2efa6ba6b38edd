/* store_incquery.c -- the incident queries (store.h: store_incidents,
 * store_incident, store_service_status) and the incident's JSON, which
 * the writer's incident_fn calls get too. Reads go through the read pool
 * (store_query.c); the statements are this file's own table, prepared
 * once per read connection (store_reader_stmt_sql). The derived state
 * of store_service_status is what the writer last published. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incident.h"
#include "jsonw.h"
#include "log.h"
#include "topology.h"
#include "util.h"

#define STORE_INC_REPLY_BYTES (16u << 20)   /* one incident with its
                                             * timeline, or a list */
#define STORE_INC_BEFORE_MS   60000         /* the timeline starts this
                                             * long before first failure */

enum { IQ_LIST, IQ_ONE, IQ_TIMELINE, IQ_NOTES };

/* The statements PostgreSQL runs as they are (pg_incident.c): $N, which
 * SQLite numbers in the order of first use (1, 2, ... here). */
const char store_inc_one_sql[] = STORE_INC_COLS " WHERE id = $1";
const char store_inc_notes_sql[] =
    "SELECT id, unix_ms, text, service, incident_id"
    " FROM annotations WHERE incident_id = $1"
    " OR (incident_id IS NULL AND (service IS NULL"
    "  OR service = $2) AND unix_ms >= $3 AND unix_ms <= $4)"
    " ORDER BY unix_ms, id";

#define INC_COLS STORE_INC_COLS

/* The incident's timeline: ?1..?2 the window (corrected ms), ?3 the
 * targets whose state and DNS changes count, ?4 the failed region's
 * targets (first and last failed probe per agent), ?5 the service's
 * region names and ?6 its name (failover events and markers). Times are
 * corrected by agent_offsets, as the incident's own. */
#define INC_EV_COLS STORE_INC_EV_COLS
static const char *const store_inc_qsql[] = {
    [IQ_LIST] = INC_COLS
        " WHERE (?1 IS NULL OR service = ?1)"
        " AND (?2 < 0 OR (closed_ms IS NULL) = ?2)"
        " AND opened_ms >= ?3 AND (?4 = 0 OR opened_ms < ?4)"
        " ORDER BY opened_ms DESC, id DESC LIMIT ?5",
    [IQ_ONE] = store_inc_one_sql,
    [IQ_TIMELINE] =
        STORE_INC_TL_EV("?1", "?2")
        " fp AS (SELECT " INC_EV_COLS ","
        "  row_number() OVER (PARTITION BY agent_id ORDER BY c, seq) AS r1,"
        "  row_number() OVER (PARTITION BY agent_id"
        "   ORDER BY c DESC, seq DESC) AS r2"
        "  FROM ev WHERE kind = 'probe' AND ok = 0 AND c >= ?1 AND c <= ?2"
        "  AND target IN (SELECT value FROM json_each(?4))),"
        " x AS (SELECT " INC_EV_COLS " FROM ev WHERE c >= ?1 AND c <= ?2"
        "  AND ((kind IN ('state', 'dns')"
        "    AND target IN (SELECT value FROM json_each(?3)))"
        "   OR (kind IN ('failover', 'marker') AND ("
        "    json_extract(data, '$.service') = ?6"
        "    OR json_extract(data, '$.from') IN"
        "     (SELECT value FROM json_each(?5))"
        "    OR json_extract(data, '$.to') IN"
        "     (SELECT value FROM json_each(?5))"
        "    OR (coalesce(json_extract(data, '$.from'), '') = ''"
        "     AND coalesce(json_extract(data, '$.to'), '') = ''"
        "     AND coalesce(json_extract(data, '$.service'), '') = ''))))"
        "  UNION ALL SELECT " INC_EV_COLS " FROM fp WHERE r1 = 1 OR r2 = 1)"
        " SELECT json_object('cluster', a.cluster, 'region', a.region,"
        "  'node', a.node, 'epoch', format('%016x', a.epoch),"
        "  'seq', x.seq, 'kind', x.kind, 'target', x.target,"
        "  'time_ms', x.unix_ms,"
        "  'time', strftime('%Y-%m-%dT%H:%M:%fZ', x.unix_ms / 1000.0,"
        "   'unixepoch'),"
        "  'clock_offset_ms', x.c - x.unix_ms, 'corrected_ms', x.c,"
        "  'corrected_time', strftime('%Y-%m-%dT%H:%M:%fZ', x.c / 1000.0,"
        "   'unixepoch'),"
        "  'received_ms', x.unix_ms + x.recv_delta_ms,"
        "  'fields', CASE WHEN x.data IS NULL THEN json_object("
        "    'ok', json(CASE WHEN x.ok THEN 'true' ELSE 'false' END),"
        "    'status', x.status, 'error', coalesce((SELECT text FROM texts"
        "     WHERE id = x.text_id), ''), 'total_us', x.total_us,"
        "    'served_by', coalesce((SELECT name FROM regions"
        "     WHERE id = x.served_by_id), ''))"
        "   WHEN x.text_id IS NULL THEN json(x.data)"
        "   ELSE json_set(x.data, CASE x.kind WHEN 'state' THEN '$.reason'"
        "    ELSE '$.error' END, (SELECT text FROM texts"
        "     WHERE id = x.text_id)) END)"
        " FROM x JOIN agents a ON a.id = x.agent_id"
        " ORDER BY x.c, x.agent_id, x.seq",
    [IQ_NOTES] = store_inc_notes_sql,
};

void store_inc_utc(int64_t ms, char *utc, size_t len)
{
    time_t secs;
    struct tm tm;
    int64_t frac;

    frac = ms % 1000;
    secs = (time_t)(ms / 1000);
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    gmtime_r(&secs, &tm);
    snprintf(utc, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)frac);
}

void store_inc_time(struct jsonw *w, int64_t ms)
{
    char utc[96];

    if (ms == INC_NONE) {
        jsonw_null(w);
        return;
    }
    store_inc_utc(ms, utc, sizeof(utc));
    jsonw_obj_begin(w);
    jsonw_key(w, "ms");
    jsonw_int(w, ms);
    jsonw_key(w, "utc");
    jsonw_str(w, utc);
    jsonw_obj_end(w);
}

static void store_inc_dur(struct jsonw *w, const char *key, int64_t v)
{
    jsonw_key(w, key);
    if (v == INC_NONE)
        jsonw_null(w);
    else
        jsonw_int(w, v);
}

void store_inc_json(struct jsonw *w, const struct store_inc_row *r)
{
    static const char *const keys[STORE_INC_T_COUNT] = {
        "first_failure", "detected", "failover_start", "dns_switched_first",
        "dns_switched_all", "restored", "closed",
    };
    struct topo_service svc;
    struct inc_record rec;
    struct inc_durations d;

    /* The engine's one definition of the durations, over the row. */
    memset(&svc, 0, sizeof(svc));
    for (int p = TOPO_ACTIVE_PASSIVE; p <= TOPO_SHARDED; p++)
        if (strcmp(topo_pattern_name((enum topo_pattern)p), r->pattern) == 0)
            svc.pattern = (enum topo_pattern)p;
    memset(&rec, 0, sizeof(rec));
    rec.service = &svc;
    rec.manual = r->manual;
    rec.first_failure_ms = r->t[STORE_INC_T_FIRST];
    rec.detected_ms = r->t[STORE_INC_T_DETECTED];
    rec.failover_start_ms = r->t[STORE_INC_T_FAILOVER];
    rec.dns_first_ms = r->t[STORE_INC_T_DNS_FIRST];
    rec.dns_all_ms = r->t[STORE_INC_T_DNS_ALL];
    rec.restored_ms = r->t[STORE_INC_T_RESTORED];
    rec.closed_ms = r->t[STORE_INC_T_CLOSED];
    rec.has_rpo = r->has_rpo;
    rec.rpo_ms = r->rpo_ms;
    inc_durations(&rec, &d);

    jsonw_obj_begin(w);
    jsonw_key(w, "id");
    jsonw_int(w, r->id);
    jsonw_key(w, "service");
    jsonw_str(w, r->service);
    jsonw_key(w, "pattern");
    jsonw_str(w, r->pattern);
    jsonw_key(w, "region");
    jsonw_str(w, r->region);
    jsonw_key(w, "to_region");
    if (r->to_region)
        jsonw_str(w, r->to_region);
    else
        jsonw_null(w);
    jsonw_key(w, "manual");
    jsonw_bool(w, r->manual);
    jsonw_key(w, "open");
    jsonw_bool(w, r->t[STORE_INC_T_CLOSED] == INC_NONE);
    jsonw_key(w, "times");
    jsonw_obj_begin(w);
    for (int i = 0; i < STORE_INC_T_COUNT; i++) {
        jsonw_key(w, keys[i]);
        store_inc_time(w, r->t[i]);
    }
    jsonw_obj_end(w);
    jsonw_key(w, "durations_ms");
    jsonw_obj_begin(w);
    store_inc_dur(w, "time_to_detect", d.time_to_detect);
    store_inc_dur(w, "time_to_failover", d.time_to_failover);
    store_inc_dur(w, "rto", d.rto);
    store_inc_dur(w, "outage", d.outage);
    jsonw_obj_end(w);
    jsonw_key(w, "rpo_ms");
    if (r->has_rpo)
        jsonw_double(w, r->rpo_ms);
    else
        jsonw_null(w);
}

/* An INC_COLS row at @s into @r (strings borrowed from @s). */
static void store_inc_row_read(sqlite3_stmt *s, struct store_inc_row *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    r->service = (const char *)sqlite3_column_text(s, 1);
    r->pattern = (const char *)sqlite3_column_text(s, 2);
    r->region = (const char *)sqlite3_column_text(s, 3);
    r->to_region = (const char *)sqlite3_column_text(s, 4);
    r->manual = sqlite3_column_int(s, 5) != 0;
    for (int i = 0; i < STORE_INC_T_COUNT; i++)
        r->t[i] = sqlite3_column_type(s, 6 + i) == SQLITE_NULL
                  ? INC_NONE : sqlite3_column_int64(s, 6 + i);
    r->has_rpo = sqlite3_column_type(s, 13) != SQLITE_NULL;
    r->rpo_ms = sqlite3_column_double(s, 13);
    if (!r->service)
        r->service = "";
    if (!r->pattern)
        r->pattern = "";
    if (!r->region)
        r->region = "";
}

/* The statement @id of @r, prepared the first time and kept with the
 * connection (store_reader_stmt_sql). */
static int store_inc_stmt(struct store_reader *r, int id, sqlite3_stmt **out)
{
    return store_reader_stmt_sql(r, store_inc_qsql[id], out);
}

int store_incidents(struct store *st, const struct store_incident_query *q,
                    char **out, size_t *out_len)
{
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    struct store_inc_row row;
    struct jsonw w;
    unsigned count = 0, limit = q->limit;
    int64_t until;
    int rc, step;

    if (st->pg)
        return store_pg_incidents(st, q, out, out_len);

    if (limit == 0 || limit > STORE_INCIDENTS_MAX_LIMIT)
        limit = STORE_INCIDENTS_MAX_LIMIT;
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    jsonw_init(&w, STORE_INC_REPLY_BYTES);
    rc = store_inc_stmt(r, IQ_LIST, &s);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if ((q->service ? sqlite3_bind_text(s, 1, q->service, -1, SQLITE_STATIC)
                    : sqlite3_bind_null(s, 1)) != SQLITE_OK ||
        sqlite3_bind_int(s, 2, q->open < 0 ? -1 : q->open != 0) !=
            SQLITE_OK ||
        sqlite3_bind_int64(s, 3, q->from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, q->to_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 5, (int64_t)limit + 1) != SQLITE_OK)
        goto out;
    jsonw_obj_begin(&w);
    jsonw_key(&w, "incidents");
    jsonw_arr_begin(&w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW && count < limit) {
        store_inc_row_read(s, &row);
        store_inc_json(&w, &row);
        jsonw_obj_end(&w);
        count++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    jsonw_arr_end(&w);
    jsonw_key(&w, "count");
    jsonw_uint(&w, count);
    jsonw_key(&w, "truncated");
    jsonw_bool(&w, step == SQLITE_ROW);
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    jsonw_free(&w);
    return store_query_end(st, r, s, rc, "incidents");
}

const struct topo_service *store_inc_service(const struct store *st,
                                             const char *name)
{
    const struct topology *topo = st->opt.topo;

    for (size_t i = 0; topo && i < topo->n_services; i++)
        if (strcmp(topo->services[i].name, name) == 0)
            return &topo->services[i];
    return NULL;
}

void store_inc_sets(const struct topo_service *svc,
                           const struct store_inc_row *row,
                    struct jsonw *all, struct jsonw *failed,
                    struct jsonw *regions)
{
    jsonw_arr_begin(all);
    jsonw_arr_begin(failed);
    jsonw_arr_begin(regions);
    jsonw_str(regions, row->region);
    if (row->to_region)
        jsonw_str(regions, row->to_region);
    if (svc) {
        jsonw_str(all, svc->global_name);
        for (size_t g = 0; g < svc->n_global_targets; g++)
            jsonw_str(all, svc->global_targets[g]);
        for (size_t i = 0; i < svc->n_regions; i++) {
            const struct topo_region *reg = &svc->regions[i];

            jsonw_str(regions, reg->name);
            for (size_t t = 0; t < reg->n_targets; t++) {
                jsonw_str(all, reg->targets[t]);
                if (strcmp(reg->name, row->region) == 0)
                    jsonw_str(failed, reg->targets[t]);
            }
        }
    }
    jsonw_arr_end(all);
    jsonw_arr_end(failed);
    jsonw_arr_end(regions);
}

void store_inc_window(const struct store_inc_row *row, int64_t *from_ms,
                      int64_t *to_ms)
{
    int64_t from = row->t[STORE_INC_T_FIRST] != INC_NONE
                   ? row->t[STORE_INC_T_FIRST] : row->t[STORE_INC_T_DETECTED];
    int64_t to = row->t[STORE_INC_T_CLOSED] != INC_NONE
                 ? row->t[STORE_INC_T_CLOSED] : util_now_ms();

    if (from == INC_NONE)
        from = to;
    *from_ms = from - STORE_INC_BEFORE_MS;
    *to_ms = to;
}

void store_inc_note_json(struct jsonw *w, int64_t id, int64_t unix_ms,
                         const char *text, const char *service,
                         int64_t incident)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "id");
    jsonw_int(w, id);
    jsonw_key(w, "time");
    store_inc_time(w, unix_ms);
    jsonw_key(w, "text");
    jsonw_str(w, text);
    jsonw_key(w, "service");
    if (!service)
        jsonw_null(w);
    else
        jsonw_str(w, service);
    jsonw_key(w, "incident");
    if (!incident)
        jsonw_null(w);
    else
        jsonw_int(w, incident);
    jsonw_obj_end(w);
}

/* Appends the incident's "timeline" and "annotations" to @w. */
static int store_inc_detail(struct store *st, struct store_reader *r,
                            const struct store_inc_row *row, struct jsonw *w)
{
    const struct topo_service *svc = store_inc_service(st, row->service);
    int64_t from, to;
    struct jsonw all, failed, regions;
    sqlite3_stmt *s = NULL, *n = NULL;
    int rc = -EIO, step;

    store_inc_window(row, &from, &to);
    jsonw_init(&all, 1u << 20);
    jsonw_init(&failed, 1u << 20);
    jsonw_init(&regions, 1u << 20);
    store_inc_sets(svc, row, &all, &failed, &regions);
    if (all.err || failed.err || regions.err ||
        store_inc_stmt(r, IQ_TIMELINE, &s) < 0 ||
        store_inc_stmt(r, IQ_NOTES, &n) < 0)
        goto out;
    if (sqlite3_bind_int64(s, 1, from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, to) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, all.buf, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 4, failed.buf, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_text(s, 5, regions.buf, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_text(s, 6, row->service, -1, SQLITE_STATIC) !=
            SQLITE_OK)
        goto out;
    jsonw_key(w, "timeline");
    jsonw_arr_begin(w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        jsonw_value(w, (const char *)sqlite3_column_text(s, 0));
    if (step != SQLITE_DONE)
        goto out;
    jsonw_arr_end(w);
    if (sqlite3_bind_int64(n, 1, row->id) != SQLITE_OK ||
        sqlite3_bind_text(n, 2, row->service, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(n, 3, from) != SQLITE_OK ||
        sqlite3_bind_int64(n, 4, to) != SQLITE_OK)
        goto out;
    jsonw_key(w, "annotations");
    jsonw_arr_begin(w);
    while ((step = sqlite3_step(n)) == SQLITE_ROW)
        store_inc_note_json(w, sqlite3_column_int64(n, 0),
                            sqlite3_column_int64(n, 1),
                            (const char *)sqlite3_column_text(n, 2),
                            (const char *)sqlite3_column_text(n, 3),
                            sqlite3_column_int64(n, 4));
    if (step != SQLITE_DONE)
        goto out;
    jsonw_arr_end(w);
    rc = 0;
out:
    store_stmt_done(s);
    store_stmt_done(n);
    jsonw_free(&all);
    jsonw_free(&failed);
    jsonw_free(&regions);
    return rc;
}

int store_incident(struct store *st, int64_t id, char **out,
                   size_t *out_len)
{
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    struct store_inc_row row;
    struct jsonw w;
    int64_t until;
    int rc, step;

    if (st->pg)
        return store_pg_incident(st, id, out, out_len);

    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    jsonw_init(&w, STORE_INC_REPLY_BYTES);
    rc = store_inc_stmt(r, IQ_ONE, &s);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK)
        goto out;
    step = sqlite3_step(s);
    if (step == SQLITE_DONE)
        rc = -ENOENT;
    if (step != SQLITE_ROW)
        goto out;
    store_inc_row_read(s, &row);
    store_inc_json(&w, &row);
    /* row's strings live until s is reset: the detail runs first. */
    rc = store_inc_detail(st, r, &row, &w);
    if (rc < 0)
        goto out;
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    jsonw_free(&w);
    return store_query_end(st, r, s, rc, "incident");
}

int store_service_status(struct store *st, char **out, size_t *out_len)
{
    static const char none[] = "{\"services\":[]}";
    char *s;
    int rc = store_poll_ready(st);

    if (st->pg)
        return store_pg_service_status(st, out, out_len);

    if (rc != 1)
        return rc == 0 ? -EAGAIN : rc;
    pthread_mutex_lock(&st->inc_lock);
    s = strdup(st->inc_status ? st->inc_status : none);
    pthread_mutex_unlock(&st->inc_lock);
    if (!s)
        return -ENOMEM;
    *out = s;
    *out_len = strlen(s);
    return 0;
}
