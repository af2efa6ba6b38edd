/* pg_incident.c -- the incident engine on the PostgreSQL leader, and the
 * incident queries, service status and annotations on every collector.
 *
 * One collector at a time runs the engine: the one whose maintenance
 * thread holds PG_LOCK_LEADER (pg_store.c) calls store_pg_inc_tick every
 * PG_LEADER_POLL_MS. Its first tick rebuilds the engine from every
 * stored event up to the fence, as a start does on SQLite, and writes the
 * incidents table without telling anyone (history); each later tick
 * reads what any collector committed since, up to the new fence, into
 * the driver's pending list and runs the SQLite driver's own tick
 * (store_incident.c: the hold, replays from snapshots for late events,
 * the incidents written and announced to incident_fn), then writes the
 * services' status to engine_status for every collector to serve. The
 * driver's reads and writes go through pg_incscan.c on the leader's
 * connection, so the incidents agree with a rebuild from scratch as on
 * SQLite.
 *
 * The fence (store_pg.h PG_LOCK_FENCE): the leader holds the lock
 * exclusively for a moment, after which every transaction that drew an
 * event id up to events_id_seq's last_value has ended, so reading by id
 * up to it misses nothing that commits later with a smaller id.
 *
 * What a new leader announces: engine_cursor holds the id up to which
 * the leader before it had fed the engine and written (and announced)
 * what followed. The new one rebuilds quietly from the events up to
 * that id only (their incidents went out already: history), then reads
 * the rest like any new events, late ones replayed, their changes
 * announced: as a SQLite start replays what was stored while it caught
 * up. A new database has no cursor: nothing is history, as on a new
 * SQLite file. A leader without services keeps the cursor at the fence,
 * so that services added later do not announce the past.
 *
 * The queries run on read connections (pg_query.c's pool) and render the
 * SQLite backend's JSON with store_incquery.c's functions. */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"
#include "jsonw.h"
#include "log.h"
#include "store_priv.h"
#include "topology.h"
#include "util.h"

#define PG_INC_REPLY_BYTES (16u << 20)  /* as store_incquery.c's */

/* ---- the leader's engine ---- */

/* Reads the fence into *@out (0: no event yet): 0 or -EIO. */
static int pg_inc_fence(PGconn *c, int64_t *out)
{
    struct pg_params p;
    PGresult *r;
    int rc = -EIO;

    pg_params_reset(&p);
    pg_param_i64(&p, PG_LOCK_FENCE);
    r = pg_query(c, "SELECT pg_advisory_lock($1)", &p);
    if (!pg_ok(r)) {
        PQclear(r);
        return -EIO;
    }
    PQclear(r);
    r = pg_query(c, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                 " FROM events_id_seq", NULL);
    if (pg_ok(r) && PQntuples(r) == 1) {
        *out = pg_i64(r, 0, 0, 0);
        rc = 0;
    }
    PQclear(r);
    r = pg_query(c, "SELECT pg_advisory_unlock($1)", &p);
    if (!pg_ok(r))
        rc = -EIO;
    PQclear(r);
    return rc;
}

/* The id the engine has fed and announced everything up to: all that
 * was read, unless a replay is owed or events are still held. A replay
 * owed (late events, or a broken engine whose changes were dropped) may
 * write and announce what any event read so far implies, and it can
 * wait STORE_INC_LATE_MAX_MS (store_incident.c), longer if it fails:
 * the cursor stays where it was until it is done, or the next leader
 * would rebuild those changes silently. Events held: what was read a
 * hold (and a tick) ago, fed by now. */
static int64_t pg_inc_done_upto(struct store_pg_inc *pi, int64_t mono)
{
    int64_t done = pi->cursor;

    if (pi->in->late)
        return done;
    if (pi->in->n_pend == 0)
        return pi->fed;
    for (int i = 0; i < PG_INC_READS; i++)
        if (pi->reads[i].mono &&
            pi->reads[i].mono <= mono - STORE_INC_HOLD_MS -
                                  PG_LEADER_POLL_MS &&
            pi->reads[i].fed > done)
            done = pi->reads[i].fed;
    return done;
}

/* engine_cursor := @id (no write when it holds it already): 0 or -EIO. */
static int pg_inc_cursor_write(PGconn *c, int64_t id)
{
    struct pg_params p;
    PGresult *r;
    int rc;

    pg_params_reset(&p);
    pg_param_i64(&p, id);
    r = pg_query(c, "INSERT INTO engine_cursor (id, event_id) VALUES (1, $1)"
                 " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id"
                 " WHERE engine_cursor.event_id <> excluded.event_id", &p);
    rc = pg_ok(r) ? 0 : -EIO;
    PQclear(r);
    return rc;
}

/* Writes the published status (st->inc_status) to engine_status unless
 * it was written already, and engine_cursor when it moved. */
static int pg_inc_write_status(struct store *st, struct store_pg_inc *pi)
{
    struct pg_params p;
    PGresult *r;
    char *json;
    int64_t done;
    int rc = 0;

    pthread_mutex_lock(&st->inc_lock);
    json = st->inc_status ? strdup(st->inc_status) : NULL;
    pthread_mutex_unlock(&st->inc_lock);
    if (json && (!pi->written || strcmp(json, pi->written) != 0)) {
        pg_params_reset(&p);
        pg_param_text(&p, json);
        pg_param_text(&p, st->pg->instance);
        pg_param_i64(&p, util_now_ms());
        r = pg_query(pi->c, "INSERT INTO engine_status (id, status, leader,"
                     " updated_ms) VALUES (1, $1, $2, $3) ON CONFLICT (id)"
                     " DO UPDATE SET status = excluded.status,"
                     " leader = excluded.leader,"
                     " updated_ms = excluded.updated_ms", &p);
        rc = pg_ok(r) ? 0 : -EIO;
        PQclear(r);
        if (rc == 0) {
            free(pi->written);
            pi->written = json;
            json = NULL;
        }
    }
    free(json);
    done = pg_inc_done_upto(pi, store_mono_ns() / 1000000);
    if (rc == 0 && done > pi->cursor) {
        rc = pg_inc_cursor_write(pi->c, done);
        if (rc == 0)
            pi->cursor = done;
    }
    return rc;
}

/* Frees the leader's engine (the lead was lost, or the store closes). */
static void pg_inc_stop(struct store *st)
{
    struct store_pg_inc *pi = st->pg->inc;

    if (!pi)
        return;
    pthread_mutex_lock(&st->inc_lock);
    st->inc = NULL;
    free(st->inc_status);
    st->inc_status = NULL;
    pthread_mutex_unlock(&st->inc_lock);
    store_inc_destroy(pi->in);
    PQclear(pi->page);
    free(pi->written);
    free(pi);
    st->pg->inc = NULL;
}

/* The previous leader's engine_cursor into *@out (0: none; at most
 * @fence): 0 or -EIO. */
static int pg_inc_cursor_read(PGconn *c, int64_t fence, int64_t *out)
{
    PGresult *r = pg_query(c, "SELECT event_id FROM engine_cursor"
                           " WHERE id = 1", NULL);
    int rc = pg_ok(r) ? 0 : -EIO;

    if (rc == 0)
        *out = PQntuples(r) == 1 ? pg_i64(r, 0, 0, 0) : 0;
    if (rc == 0 && *out > fence)
        *out = fence;
    PQclear(r);
    return rc;
}

/* A driver for st's services reading and writing through @c, not yet
 * installed as st->pg->inc: 0 and *@out, or -ENOMEM. */
static int pg_inc_alloc(struct store *st, PGconn *c,
                        struct store_pg_inc **out)
{
    struct store_pg_inc *pi = calloc(1, sizeof(*pi));
    struct store_inc *in = NULL;
    int rc;

    if (!pi)
        return -ENOMEM;
    rc = store_inc_new(NULL, st->opt.topo, &in);
    if (rc < 0) {
        free(pi);
        return rc;
    }
    in->pg = pi;
    pi->in = in;
    pi->c = c;
    *out = pi;
    return 0;
}

/* The first tick as leader: the engine rebuilt from every stored event up
 * to the previous leader's cursor (those past now less the hold are
 * held), the incidents table synced to it unannounced (history, as a
 * start on SQLite); the events after it come as new ones. */
static int pg_inc_start(struct store *st, PGconn *c)
{
    int64_t upto = util_now_ms() - STORE_INC_HOLD_MS;
    int64_t t0 = store_mono_ns();
    struct store_pg_inc *pi;
    struct store_inc *in;
    int rc;

    rc = pg_inc_alloc(st, c, &pi);
    if (rc < 0)
        return rc;
    in = pi->in;
    in->snap_from = upto - STORE_INC_SNAP_KEEP_MS;
    in->quiet = 1;                      /* history: nobody to tell */
    rc = pg_inc_fence(c, &pi->fence);
    if (rc == 0)
        rc = pg_inc_cursor_read(c, pi->fence, &pi->fence);
    if (rc == 0)
        rc = store_inc_scan(in, INT64_MIN, INT64_MAX, upto);
    if (rc == 0)
        store_inc_advance(in, upto);
    st->pg->inc = pi;
    pthread_mutex_lock(&st->inc_lock);
    st->inc = in;
    pthread_mutex_unlock(&st->inc_lock);
    if (rc == 0)
        rc = store_inc_sync(st, INT64_MIN, 0);
    in->quiet = 0;
    if (rc < 0) {
        pg_inc_stop(st);
        return rc;
    }
    pi->fed = pi->fence;
    pi->cursor = pi->fence;
    log_msg(LOGL_INFO, "incidents", "leading: engine rebuilt from %llu "
            "stored events (up to id %lld) in %.3f s",
            (unsigned long long)in->fed, (long long)pi->fence,
            (double)(store_mono_ns() - t0) / 1e9);
    store_inc_publish(st, in, 0);
    return pg_inc_write_status(st, pi);
}

void store_pg_inc_tick(struct store *st, PGconn *c, int lost)
{
    const struct topology *topo = st->opt.topo;
    struct store_pg_inc *pi = st->pg->inc;
    int64_t fence = 0;
    size_t mark;
    int rc;

    if (lost || !c) {
        if (pi)
            log_msg(LOGL_INFO, "incidents", "no longer leading: the "
                    "engine stops here");
        pg_inc_stop(st);
        return;
    }
    if (!topo || topo->n_services == 0) {
        if (pg_inc_fence(c, &fence) < 0 || pg_inc_cursor_write(c, fence) < 0)
            log_msg(LOGL_WARN, "incidents", "engine_cursor not written: "
                    "trying again at the next tick");
        return;
    }
    if (!pi) {
        rc = pg_inc_start(st, c);
        if (rc < 0)
            log_msg(LOGL_ERROR, "incidents", "rebuild as leader failed "
                    "(%s): trying again at the next tick", strerror(-rc));
        return;
    }
    pi->c = c;
    rc = pg_inc_fence(c, &fence);
    if (rc == 0 && fence > pi->fed) {
        mark = pi->in->n_pend;
        rc = store_inc_scan_new(pi->in, pi->fed, fence);
        if (rc < 0)
            store_inc_undo(st, mark);   /* read again at the next tick */
        else
            pi->fed = fence;
    }
    if (rc < 0) {
        log_msg(LOGL_ERROR, "incidents", "reading new events failed (%s): "
                "trying again at the next tick", strerror(-rc));
        return;
    }
    /* A replay reads what was read by id so far, no more. */
    pi->fence = pi->fed;
    store_inc_tick(st);
    memmove(pi->reads + 1, pi->reads,
            (PG_INC_READS - 1) * sizeof(pi->reads[0]));
    pi->reads[0].mono = store_mono_ns() / 1000000;
    pi->reads[0].fed = pi->fed;
    if (pg_inc_write_status(st, pi) < 0)
        log_msg(LOGL_WARN, "incidents", "engine_status not written: "
                "trying again at the next tick");
}

void store_pg_inc_free(struct store *st)
{
    if (st->pg)
        pg_inc_stop(st);
}

/* ---- sextant-collector incidents rebuild ---- */

/* How long the rebuild waits for the lead: a collector stopped a moment
 * ago may still hold it until the server has ended its session; one that
 * runs holds it for good. */
#define PG_INC_REBUILD_WAIT "'5s'"

/* Who holds PG_LOCK_LEADER, from the server's lock table, into @buf:
 * its application_name ("sextant-collector (INSTANCE)") and address, or
 * "another session" when the server does not show it to us (another
 * role's session) or it let go meanwhile. */
static void pg_inc_leader_name(PGconn *c, char *buf, size_t len)
{
    struct pg_params p;
    PGresult *r;

    pg_params_reset(&p);
    pg_param_i64(&p, PG_LOCK_LEADER);
    /* A bigint advisory key is classid (high 32 bits) and objid. */
    r = pg_query(c, "SELECT a.application_name,"
                 " coalesce(host(a.client_addr), 'a local socket')"
                 " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                 " WHERE l.locktype = 'advisory' AND l.granted"
                 " AND l.objsubid = 1 AND ((l.classid::bigint << 32)"
                 "  | l.objid::bigint) = $1 LIMIT 1", &p);
    if (pg_ok(r) && PQntuples(r) == 1 && pg_text(r, 0, 0) &&
        pg_text(r, 0, 0)[0])
        snprintf(buf, len, "%s from %s", pg_text(r, 0, 0),
                 pg_text(r, 0, 1));
    else
        snprintf(buf, len, "another session");
    PQclear(r);
}

/* Takes the lead on @c for the rebuild, waiting PG_INC_REBUILD_WAIT at
 * most: 0, -EBUSY with the leader named in @err, or -EIO. */
static int pg_inc_rebuild_lead(struct store *st, PGconn *c, char *err,
                               size_t err_len)
{
    struct pg_params p;
    PGresult *r;
    const char *state;
    char who[192];
    int rc;

    if (pg_exec(c, "SET lock_timeout = " PG_INC_REBUILD_WAIT) < 0)
        return -EIO;
    pg_params_reset(&p);
    pg_param_i64(&p, PG_LOCK_LEADER);
    r = pg_query(c, "SELECT pg_advisory_lock($1::bigint)", &p);
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    rc = pg_ok(r) ? 0 : state && !strcmp(state, "55P03") ? -EBUSY : -EIO;
    if (rc == -EIO) {
        pg_err_text(c, r, who, sizeof(who));
        snprintf(err, err_len, "%s: %s", st->path, who);
    }
    PQclear(r);
    if (rc == 0 && pg_exec(c, "RESET lock_timeout") < 0)
        rc = -EIO;
    if (rc == -EBUSY) {
        pg_inc_leader_name(c, who, sizeof(who));
        snprintf(err, err_len, "%s: a collector leads (%s): it runs the "
                 "incident engine, and computed the incidents from the "
                 "stored events when it took the lead; restart it to have "
                 "the next leader compute them again with its config, or "
                 "stop every collector and run this again", st->path, who);
    }
    return rc;
}

/* The rebuild on the lead's connection @c: the engine fed from scratch
 * with every event up to the fence and the collector's clock less the
 * hold, then in one transaction the incidents table synced to it and
 * engine_cursor set to the fence. 0 or -errno. */
static int pg_inc_rebuild_run(struct store *st, PGconn *c, uint64_t *events,
                              uint64_t *incidents)
{
    int64_t upto = util_now_ms() - STORE_INC_HOLD_MS;
    struct store_pg_inc *pi;
    struct store_inc *in;
    PGresult *r;
    int rc;

    rc = pg_inc_alloc(st, c, &pi);
    if (rc < 0)
        return rc;
    in = pi->in;
    st->pg->inc = pi;                   /* pg_inc_stop frees them */
    st->inc = in;
    in->snap_next = INT64_MAX;          /* no replays to come */
    in->quiet = 1;                      /* a rebuild tells nobody */
    rc = pg_inc_fence(c, &pi->fence);
    if (rc == 0)
        rc = store_inc_scan(in, INT64_MIN, upto, upto);
    if (rc == 0) {
        store_inc_advance(in, upto);
        rc = pg_exec(c, "BEGIN");
    }
    if (rc == 0)
        rc = pg_inc_cursor_write(c, pi->fence);
    if (rc == 0)
        rc = store_inc_sync(st, INT64_MIN, 1);
    r = rc == 0 ? pg_query(c, "SELECT count(*) FROM incidents", NULL) : NULL;
    if (rc == 0 && (!pg_ok(r) || PQntuples(r) != 1))
        rc = -EIO;
    if (rc == 0)
        *incidents = (uint64_t)pg_i64(r, 0, 0, 0);
    PQclear(r);
    if (rc == 0)
        rc = pg_exec(c, "COMMIT");
    if (rc == 0)
        *events = in->fed;
    else if (PQtransactionStatus(c) != PQTRANS_IDLE)
        pg_exec(c, "ROLLBACK");
    return rc;
}

/* Why this rebuild holds the lead instead of asking the leader, or
 * waiting for it. A leader keeps the lead as long as it runs, so a wait
 * could last for ever (it waits PG_INC_REBUILD_WAIT, for a collector
 * stopped just before); and whatever this command wrote, the next leader
 * computes the incidents again from the stored events, with its own
 * config, when it takes the lead. So, as the SQLite command refuses
 * while a collector holds the write lock, this one refuses while a
 * collector leads, and says what to do: restart the leader (the next
 * one computes them again) or stop them all. With no leader it holds
 * the lead for the run, so no collector's engine writes meanwhile (the
 * others ingest on; one takes the lead within PG_LEADER_POLL_MS after
 * and carries on from engine_cursor, which the rebuild moved to its
 * fence: what the rebuild wrote is history, told to nobody, as after a
 * SQLite rebuild). */
int store_pg_inc_rebuild(struct store *st, uint64_t *events_out,
                         uint64_t *incidents_out, char *err, size_t err_len)
{
    uint64_t events = 0, incidents = 0;
    char why[256];
    PGconn *c;
    int rc;

    c = pg_connect(st, 0, why, sizeof(why));
    if (!c) {
        snprintf(err, err_len, "%s: %s", st->path, why);
        return -EIO;
    }
    rc = pg_schema_check(c, why, sizeof(why));
    if (rc < 0)
        snprintf(err, err_len, "%s: %s", st->path, why);
    if (rc == 0)
        rc = pg_inc_rebuild_lead(st, c, err, err_len);
    if (rc == 0) {
        rc = pg_inc_rebuild_run(st, c, &events, &incidents);
        if (rc < 0)
            snprintf(err, err_len, "%s: rebuild failed: %s", st->path,
                     rc == -EIO ? "the database refused (see above)"
                                : strerror(-rc));
        pg_inc_stop(st);
    }
    PQfinish(c);                        /* and with it the lead */
    if (rc == 0) {
        *events_out = events;
        *incidents_out = incidents;
    }
    return rc;
}

/* ---- the queries, on any collector ---- */

/* A read connection (pg_query.c's pool): NULL with *@err -EAGAIN before
 * the store is ready, or -EIO. Given back with pg_inc_put. */
static PGconn *pg_inc_reader(struct store *st, int *err)
{
    PGconn *c = NULL;

    *err = pgq_begin(st, 1, &c);
    return *err < 0 ? NULL : c;
}

/* Gives @c back; @r the failed result, if any: logs it under @what and
 * says what the failure means (-ETIMEDOUT, -EIO). */
static int pg_inc_put(struct store *st, PGconn *c, const PGresult *r,
                      int rc, const char *what)
{
    enum pg_err e = r ? pg_err_class(c, r) : PG_ERR_NONE;

    if (e != PG_ERR_NONE) {
        char why[256];

        pg_err_text(c, r, why, sizeof(why));
        log_msg(LOGL_WARN, "store", "postgres: %s: %s", what, why);
        rc = e == PG_ERR_TIMEOUT ? -ETIMEDOUT : -EIO;
    }
    store_pg_reader_put(st, c, e == PG_ERR_CONN);
    return rc;
}

int store_pg_incidents(struct store *st, const struct store_incident_query *q,
                       char **out, size_t *out_len)
{
    unsigned limit = q->limit, count = 0;
    struct store_inc_row row;
    struct pg_params p;
    PGresult *g = NULL;
    struct jsonw w;
    PGconn *c;
    int rc;

    if (limit == 0 || limit > STORE_INCIDENTS_MAX_LIMIT)
        limit = STORE_INCIDENTS_MAX_LIMIT;
    c = pg_inc_reader(st, &rc);
    if (!c)
        return rc;
    pg_params_reset(&p);
    pg_param_text(&p, q->service);
    pg_param_i64(&p, q->open < 0 ? -1 : q->open != 0);
    pg_param_i64(&p, q->from_ms);
    pg_param_i64(&p, q->to_ms);
    pg_param_i64(&p, (int64_t)limit + 1);
    g = pg_query(c, STORE_INC_COLS " WHERE ($1::text IS NULL OR service = $1)"
                 " AND ($2::int < 0 OR (closed_ms IS NULL) = ($2::int = 1))"
                 " AND opened_ms >= $3 AND ($4::bigint = 0 OR opened_ms < $4)"
                 " ORDER BY opened_ms DESC, id DESC LIMIT $5", &p);
    if (!pg_ok(g)) {
        rc = pg_inc_put(st, c, g, -EIO, "incidents");
        PQclear(g);
        return rc;
    }
    jsonw_init(&w, PG_INC_REPLY_BYTES);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "incidents");
    jsonw_arr_begin(&w);
    for (; count < limit && (int)count < PQntuples(g); count++) {
        pg_inc_row_at(g, (int)count, 2, &row);
        store_inc_json(&w, &row);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_key(&w, "count");
    jsonw_uint(&w, count);
    jsonw_key(&w, "truncated");
    jsonw_bool(&w, PQntuples(g) > (int)limit);
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
    jsonw_free(&w);
    PQclear(g);
    return pg_inc_put(st, c, NULL, rc, "incidents");
}

/* The incident's timeline: as store_incquery.c's IQ_TIMELINE, $1..$2
 * the window (corrected ms), $3 the targets whose state and DNS changes
 * count, $4 the failed region's targets, $5 the service's region names
 * (JSON arrays), $6 its name; the columns pg_inc_tl_row renders. */
#define PG_INC_EV_COLS STORE_INC_EV_COLS
static const char pg_inc_tl_sql[] =
    STORE_INC_TL_EV("$1", "$2")
    " fp AS (SELECT " PG_INC_EV_COLS ","
    "  row_number() OVER (PARTITION BY agent_id ORDER BY c, seq) AS r1,"
    "  row_number() OVER (PARTITION BY agent_id"
    "   ORDER BY c DESC, seq DESC) AS r2"
    "  FROM ev WHERE kind = 'probe' AND ok = 0 AND c >= $1 AND c <= $2"
    "  AND target IN (SELECT jsonb_array_elements_text($4::jsonb))),"
    " x AS (SELECT " PG_INC_EV_COLS " FROM ev WHERE c >= $1 AND c <= $2"
    "  AND ((kind IN ('state', 'dns')"
    "    AND target IN (SELECT jsonb_array_elements_text($3::jsonb)))"
    "   OR (kind IN ('failover', 'marker') AND ("
    "    data::jsonb->>'service' = $6"
    "    OR data::jsonb->>'from' IN"
    "     (SELECT jsonb_array_elements_text($5::jsonb))"
    "    OR data::jsonb->>'to' IN"
    "     (SELECT jsonb_array_elements_text($5::jsonb))"
    "    OR (coalesce(data::jsonb->>'from', '') = ''"
    "     AND coalesce(data::jsonb->>'to', '') = ''"
    "     AND coalesce(data::jsonb->>'service', '') = ''))))"
    "  UNION ALL SELECT " PG_INC_EV_COLS " FROM fp WHERE r1 = 1 OR r2 = 1)"
    " SELECT a.cluster, a.region, a.node, a.epoch, x.seq, x.kind,"
    "  x.target, x.unix_ms, x.c, x.recv_delta_ms, x.data,"
    "  (SELECT text FROM texts WHERE id = x.text_id), x.ok, x.status,"
    "  x.total_us, (SELECT name FROM regions WHERE id = x.served_by_id)"
    " FROM x JOIN agents a ON a.id = x.agent_id"
    " ORDER BY x.c, x.agent_id, x.seq";

/* A nullable integer column as JSON. */
static void pg_inc_int_or_null(struct jsonw *w, const PGresult *g, int i,
                               int col)
{
    if (PQgetisnull(g, i, col))
        jsonw_null(w);
    else
        jsonw_int(w, pg_i64(g, i, col, 0));
}

/* The event's "fields" as SQLite's json_set gave them: its data with
 * @key (the error, or a state's reason, kept in texts) added last;
 * store_fields.c leaves that key out of the data when the text holds it. */
static void pg_inc_data_with(struct jsonw *w, const char *data,
                             const char *key, const char *text)
{
    struct jsonw v;
    size_t n = strlen(data);

    while (n > 0 && data[n - 1] != '}')
        n--;
    if (n == 0) {                       /* not an object: as it is */
        jsonw_value(w, data);
        return;
    }
    jsonw_init(&v, 1u << 20);
    jsonw_raw(&v, data, n - 1);
    if (strspn(data + 1, " \t\r\n") < n - 2)
        jsonw_raw(&v, ",", 1);
    jsonw_raw(&v, "\"", 1);
    jsonw_raw(&v, key, strlen(key));
    jsonw_raw(&v, "\":", 2);
    jsonw_str(&v, text);
    jsonw_raw(&v, "}", 1);
    if (!v.err && v.buf)
        jsonw_value(w, v.buf);
    else
        jsonw_value(w, data);
    jsonw_free(&v);
}

/* Timeline row @i of @g as store_incquery.c's timeline object. */
static void pg_inc_tl_row(struct jsonw *w, const PGresult *g, int i)
{
    int64_t unix_ms = pg_i64(g, i, 7, 0), c = pg_i64(g, i, 8, 0);
    const char *kind = PQgetvalue(g, i, 5), *text = pg_text(g, i, 11);
    char utc[96], epoch[24];

    snprintf(epoch, sizeof(epoch), "%016llx",
             (unsigned long long)pg_i64(g, i, 3, 0));
    jsonw_obj_begin(w);
    jsonw_key(w, "cluster");
    jsonw_str(w, PQgetvalue(g, i, 0));
    jsonw_key(w, "region");
    jsonw_str(w, PQgetvalue(g, i, 1));
    jsonw_key(w, "node");
    jsonw_str(w, PQgetvalue(g, i, 2));
    jsonw_key(w, "epoch");
    jsonw_str(w, epoch);
    jsonw_key(w, "seq");
    jsonw_int(w, pg_i64(g, i, 4, 0));
    jsonw_key(w, "kind");
    jsonw_str(w, kind);
    jsonw_key(w, "target");
    if (pg_text(g, i, 6))
        jsonw_str(w, pg_text(g, i, 6));
    else
        jsonw_null(w);
    jsonw_key(w, "time_ms");
    jsonw_int(w, unix_ms);
    jsonw_key(w, "time");
    store_inc_utc(unix_ms, utc, sizeof(utc));
    jsonw_str(w, utc);
    jsonw_key(w, "clock_offset_ms");
    jsonw_int(w, c - unix_ms);
    jsonw_key(w, "corrected_ms");
    jsonw_int(w, c);
    jsonw_key(w, "corrected_time");
    store_inc_utc(c, utc, sizeof(utc));
    jsonw_str(w, utc);
    jsonw_key(w, "received_ms");
    jsonw_int(w, unix_ms + pg_i64(g, i, 9, 0));
    jsonw_key(w, "fields");
    if (pg_text(g, i, 10) && text) {
        pg_inc_data_with(w, pg_text(g, i, 10),
                         strcmp(kind, "state") == 0 ? "reason" : "error",
                         text);
    } else if (pg_text(g, i, 10)) {
        jsonw_value(w, pg_text(g, i, 10));
    } else {
        jsonw_obj_begin(w);
        jsonw_key(w, "ok");
        jsonw_bool(w, pg_i64(g, i, 12, 0) != 0);
        jsonw_key(w, "status");
        pg_inc_int_or_null(w, g, i, 13);
        jsonw_key(w, "error");
        jsonw_str(w, text ? text : "");
        jsonw_key(w, "total_us");
        pg_inc_int_or_null(w, g, i, 14);
        jsonw_key(w, "served_by");
        jsonw_str(w, pg_text(g, i, 15) ? pg_text(g, i, 15) : "");
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}

/* Appends the incident's "timeline" and "annotations" to @w: 0, or the
 * failed result in *@bad (the caller's to clear) and -EIO. */
static int pg_inc_detail(struct store *st, PGconn *c,
                         const struct store_inc_row *row, struct jsonw *w,
                         PGresult **bad)
{
    struct jsonw all, failed, regions;
    struct pg_params p;
    PGresult *g = NULL;
    int64_t from, to;
    int rc = -EIO;

    store_inc_window(row, &from, &to);
    jsonw_init(&all, 1u << 20);
    jsonw_init(&failed, 1u << 20);
    jsonw_init(&regions, 1u << 20);
    store_inc_sets(store_inc_service(st, row->service), row, &all, &failed,
                   &regions);
    if (all.err || failed.err || regions.err)
        goto out;
    pg_params_reset(&p);
    pg_param_i64(&p, from);
    pg_param_i64(&p, to);
    pg_param_text(&p, all.buf);
    pg_param_text(&p, failed.buf);
    pg_param_text(&p, regions.buf);
    pg_param_text(&p, row->service);
    g = pg_query(c, pg_inc_tl_sql, &p);
    if (!pg_ok(g))
        goto out;
    jsonw_key(w, "timeline");
    jsonw_arr_begin(w);
    for (int i = 0; i < PQntuples(g); i++)
        pg_inc_tl_row(w, g, i);
    jsonw_arr_end(w);
    PQclear(g);
    pg_params_reset(&p);
    pg_param_i64(&p, row->id);
    pg_param_text(&p, row->service);
    pg_param_i64(&p, from);
    pg_param_i64(&p, to);
    g = pg_query(c, store_inc_notes_sql, &p);
    if (!pg_ok(g))
        goto out;
    jsonw_key(w, "annotations");
    jsonw_arr_begin(w);
    for (int i = 0; i < PQntuples(g); i++)
        store_inc_note_json(w, pg_i64(g, i, 0, 0), pg_i64(g, i, 1, 0),
                            PQgetvalue(g, i, 2), pg_text(g, i, 3),
                            pg_i64(g, i, 4, 0));
    jsonw_arr_end(w);
    rc = 0;
out:
    if (rc < 0 && g) {
        *bad = g;
        g = NULL;
    }
    PQclear(g);
    jsonw_free(&all);
    jsonw_free(&failed);
    jsonw_free(&regions);
    return rc;
}

int store_pg_incident(struct store *st, int64_t id, char **out,
                      size_t *out_len)
{
    struct store_inc_row row;
    struct pg_params p;
    PGresult *g, *bad = NULL;
    struct jsonw w;
    PGconn *c;
    int rc;

    c = pg_inc_reader(st, &rc);
    if (!c)
        return rc;
    pg_params_reset(&p);
    pg_param_i64(&p, id);
    g = pg_query(c, store_inc_one_sql, &p);
    if (!pg_ok(g)) {
        rc = pg_inc_put(st, c, g, -EIO, "incident");
        PQclear(g);
        return rc;
    }
    if (PQntuples(g) == 0) {
        PQclear(g);
        return pg_inc_put(st, c, NULL, -ENOENT, "incident");
    }
    jsonw_init(&w, PG_INC_REPLY_BYTES);
    pg_inc_row_at(g, 0, 2, &row);
    store_inc_json(&w, &row);
    rc = pg_inc_detail(st, c, &row, &w, &bad);
    if (rc == 0) {
        jsonw_obj_end(&w);
        rc = store_json_take(&w, out, out_len);
    }
    jsonw_free(&w);
    PQclear(g);
    rc = pg_inc_put(st, c, bad, rc, "incident");
    PQclear(bad);
    return rc;
}

int store_pg_service_status(struct store *st, char **out, size_t *out_len)
{
    const struct topology *topo = st->opt.topo;
    struct store_inc *in = NULL;
    char *s = NULL;
    PGresult *g;
    PGconn *c;
    int rc;

    c = pg_inc_reader(st, &rc);
    if (!c)
        return rc;
    g = pg_query(c, "SELECT status FROM engine_status WHERE id = 1", NULL);
    if (!pg_ok(g)) {
        rc = pg_inc_put(st, c, g, -EIO, "service status");
        PQclear(g);
        return rc;
    }
    rc = -ENOMEM;
    if (PQntuples(g) == 1) {
        s = strdup(PQgetvalue(g, 0, 0));
    } else if (topo && topo->n_services > 0) {
        /* No leader has written it yet: "catching up", as the SQLite
         * backend says while it rebuilds (every region unknown). */
        if (store_inc_new(NULL, topo, &in) == 0)
            s = store_inc_status_json(in, 1);
        store_inc_destroy(in);
    } else {
        s = strdup("{\"services\":[]}");
    }
    PQclear(g);
    if (s) {
        *out = s;
        *out_len = strlen(s);
        rc = 0;
    }
    return pg_inc_put(st, c, NULL, rc, "service status");
}

/* In its own transaction: 0 and *@id once committed, -ENOENT when
 * @incident (0: none) does not exist, or -EIO with the failed result in
 * *@bad. */
static int pg_inc_annotate_tx(PGconn *c, int64_t unix_ms, const char *text,
                              const char *service, int64_t incident,
                              int64_t *id, PGresult **bad)
{
    struct pg_params p;
    PGresult *g = NULL;
    int64_t got = 0;
    int rc = -EIO;

    g = pg_query(c, "BEGIN", NULL);
    if (!pg_ok(g))
        goto out;
    PQclear(g);
    pg_params_reset(&p);
    pg_param_i64(&p, incident);
    /* KEY SHARE: a replay on the leader cannot delete it meanwhile. */
    g = incident ? pg_query(c, "SELECT 1 FROM incidents WHERE id = $1"
                            " FOR KEY SHARE", &p) : NULL;
    if (incident && !pg_ok(g))
        goto out;
    if (incident && PQntuples(g) == 0) {
        rc = -ENOENT;
        goto out;
    }
    PQclear(g);
    pg_params_reset(&p);
    pg_param_i64(&p, unix_ms);
    pg_param_i64(&p, util_now_ms());
    pg_param_text(&p, text);
    pg_param_text(&p, service);
    if (incident)
        pg_param_i64(&p, incident);
    else
        pg_param_text(&p, NULL);
    g = pg_query(c, "INSERT INTO annotations (unix_ms, created_ms, text,"
                 " service, incident_id) VALUES ($1, $2, $3, $4, $5)"
                 " RETURNING id", &p);
    if (!pg_ok(g) || PQntuples(g) != 1)
        goto out;
    got = pg_i64(g, 0, 0, 0);
    PQclear(g);
    g = pg_query(c, "COMMIT", NULL);
    if (!pg_ok(g))
        goto out;
    *id = got;
    rc = 0;
out:
    if (rc == -EIO) {
        *bad = g;
        g = NULL;
    }
    PQclear(g);
    if (rc < 0)
        PQclear(pg_query(c, "ROLLBACK", NULL));
    return rc;
}

int store_pg_annotate(struct store *st, int64_t unix_ms, const char *text,
                      const char *service, int64_t incident, int64_t *id)
{
    PGresult *bad = NULL;
    PGconn *c;
    int rc;

    c = pg_inc_reader(st, &rc);
    if (!c)
        return rc;
    rc = pg_inc_annotate_tx(c, unix_ms, text, service, incident, id, &bad);
    rc = pg_inc_put(st, c, bad, rc, "annotation");
    PQclear(bad);
    return rc;
}
