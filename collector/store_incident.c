/* store_incident.c -- the incident engine's driver (incident.h) on the
 * writer thread: it notes the events each group commit stores that matter
 * to the topology, holds them STORE_INC_HOLD_MS so that batches of agents
 * shipping a little apart still come in order, feeds them in (corrected
 * time, agent, seq) order, snapshots the engine every minute of corrected
 * time, and on an event older than what the engine has seen restores the
 * last snapshot before it and replays from the store. It writes the
 * incidents that changed, publishes the derived state for
 * store_service_status, and rebuilds everything from scratch for
 * `sextant-collector incidents rebuild` (at start: store_incstart.c).
 * Reading events back in corrected order (replay, rebuild) is
 * store_incscan.c's, the incidents table's rows store_incrows.c's, the
 * queries store_incquery.c's.
 *
 * Why a hold: the engine needs its events in one total order, and agents
 * ship every second or so, each batch holding its last second: fed as
 * they commit, nearly every batch would be "late" and cost a replay. The
 * engine therefore runs STORE_INC_HOLD_MS behind the collector's clock;
 * the times it records are exact all the same (they come from events,
 * incident.h), only the moment they become visible is later. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"
#include "jsonw.h"
#include "log.h"
#include "topology.h"
#include "util.h"

#define STORE_INC_TICK_MS     1000          /* advance without events */
#define STORE_INC_STATUS_BYTES (4u << 20)   /* the published status */

int64_t store_inc_due(const struct store *st)
{
    return st->inc ? st->inc->due_mono : store_inc_start_due(st);
}

size_t store_inc_mark(const struct store *st)
{
    return st->inc ? st->inc->n_pend : 0;
}

void store_inc_undo(struct store *st, size_t mark)
{
    struct store_inc *in = st->inc;

    if (!in)
        return;
    while (in->n_pend > mark)
        store_inc_ev_free(&in->pend[--in->n_pend]);
}

/* Joins @n DNS answer values with '\n' into a new string (what the store
 * gives back for stored answers, see store_incscan.c). NULL: no memory. */
static char *store_inc_join(Sextant__V1__DnsAnswer **a, size_t n)
{
    size_t len = 1;
    char *s, *p;

    for (size_t i = 0; i < n; i++)
        len += strlen(a[i]->value) + 1;
    s = malloc(len);
    if (!s)
        return NULL;
    p = s;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(a[i]->value);

        if (i > 0)
            *p++ = '\n';
        memcpy(p, a[i]->value, l);
        p += l;
    }
    *p = '\0';
    return s;
}

/* Fills @x's kind and strings from a wire event, as store_incscan.c does
 * from the stored row: 1 it matters, 0 not, -ENOMEM. */
static int store_inc_from_wire(struct store_inc *in,
                               const Sextant__V1__Event *ev,
                               const struct store_event_row *e,
                               struct store_inc_ev *x)
{
    const char *s[S_COUNT] = { 0 };
    char *joined = NULL;
    int rc;

    s[S_TARGET] = e->target;
    if (ev->kind_case == SEXTANT__V1__EVENT__KIND_FAILOVER) {
        const Sextant__V1__Failover *f = ev->failover;

        if (strcmp(e->kind, "failover") != 0 || !store_inc_fo_kind(f->kind))
            return 0;
        x->kind = INC_EV_FAILOVER;
        s[S_FOKIND] = f->kind;
        s[S_FROM] = f->from_region;
        s[S_TO] = f->to_region;
        /* "" is stored as no "service" at all (store_fields.c): NULL
         * here, as the rebuild reads it. */
        s[S_SERVICE] = f->service && f->service[0] ? f->service : NULL;
        s[S_TARGET] = NULL;
    } else if (!e->target || !store_inc_relevant(in, e->target)) {
        return 0;
    } else if (ev->kind_case == SEXTANT__V1__EVENT__KIND_PROBE) {
        const Sextant__V1__ProbeResult *p = ev->probe;

        x->kind = INC_EV_PROBE;
        x->ok = p->ok ? 1 : 0;
        s[S_SERVED] = p->served_by;
        x->has_answers = p->type == SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS;
        if (x->has_answers && p->n_answers > 0) {
            joined = store_inc_join(p->answers, p->n_answers);
            if (!joined)
                return -ENOMEM;
            s[S_ANSWERS] = joined;
        }
    } else if (ev->kind_case == SEXTANT__V1__EVENT__KIND_STATE) {
        x->kind = INC_EV_STATE;
        x->healthy =
            ev->state->to == SEXTANT__V1__HEALTH__HEALTH_HEALTHY ? 1
            : ev->state->to == SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY ? 0
            : wire_state_is_handoff(ev->state) ? INC_HANDED_OFF : -1;
    } else if (ev->kind_case == SEXTANT__V1__EVENT__KIND_DNS) {
        x->kind = INC_EV_DNS;
        x->has_answers = 1;
        s[S_DNS] = ev->dns->name;
        if (ev->dns->n_new_answers > 0) {
            joined = store_inc_join(ev->dns->new_answers,
                                    ev->dns->n_new_answers);
            if (!joined)
                return -ENOMEM;
            s[S_ANSWERS] = joined;
        }
    } else if (ev->kind_case == SEXTANT__V1__EVENT__KIND_METRIC) {
        /* A NaN or infinite sample is stored as a JSON string the
         * rebuild cannot read as a number: neither side feeds it. */
        if (!isfinite(ev->metric->value))
            return 0;
        x->kind = INC_EV_METRIC;
        s[S_METRIC] = ev->metric->name;
        x->value = ev->metric->value;
    } else {
        return 0;
    }
    rc = store_inc_ev_strings(x, s);
    free(joined);
    return rc < 0 ? rc : 1;
}

void store_inc_note(struct store *st, int64_t agent_id,
                    const Sextant__V1__Event *ev,
                    const struct store_event_row *e)
{
    struct store_inc *in = st->inc;
    struct store_inc_ev x;
    int rc;

    if (!in) {
        store_inc_start_note(st, ev, e);
        return;
    }
    memset(&x, 0, sizeof(x));
    x.t = INT64_MIN;                    /* looked up at the tick */
    x.unix_ms = ev->unix_ms;
    x.recv_ms = e->recv_ms;
    x.agent = agent_id;
    x.seq = ev->seq;
    rc = store_inc_from_wire(in, ev, e, &x);
    if (rc == 1)
        rc = store_inc_pend(in, &x);
    if (rc < 0 && !in->warned) {
        in->warned = 1;
        log_msg(LOGL_ERROR, "incidents", "an event could not be held for "
                "the engine (%s): live incidents may differ from a "
                "rebuild until the next start",
                rc == -ENOBUFS ? "too many pending" : "out of memory");
    }
}

/* ---- the status store_service_status reads ---- */

struct store_inc_status_ctx {
    struct jsonw *w;
    struct store_inc *in;
};

static void store_inc_region_json(void *ctx,
                                  const struct inc_region_state *r)
{
    struct jsonw *w = ((struct store_inc_status_ctx *)ctx)->w;

    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_str(w, r->region->name);
    jsonw_key(w, "role");
    if (r->region->role == TOPO_ROLE_NONE)
        jsonw_null(w);
    else
        jsonw_str(w, topo_role_name(r->region->role));
    jsonw_key(w, "health");
    jsonw_str(w, r->health == 1 ? "healthy" : r->health == 0 ? "unhealthy"
                                                             : "unknown");
    jsonw_key(w, "since");
    store_inc_time(w, r->since_ms);
    jsonw_key(w, "agents");
    jsonw_uint(w, r->agents);
    jsonw_key(w, "unhealthy_agents");
    jsonw_uint(w, r->unhealthy);
    jsonw_key(w, "stale_agents");
    jsonw_uint(w, r->stale);
    jsonw_key(w, "serving");
    jsonw_bool(w, r->serving > 0);
    jsonw_key(w, "serving_agents");
    jsonw_uint(w, r->serving);
    jsonw_obj_end(w);
}

static void store_inc_serving_json(void *ctx,
                                   const struct inc_region_state *r)
{
    struct jsonw *w = ((struct store_inc_status_ctx *)ctx)->w;

    if (r->serving > 0)
        jsonw_str(w, r->region->name);
}

static void store_inc_stale_json(void *ctx, int64_t agent_id,
                                 int64_t last_ms)
{
    struct store_inc_status_ctx *c = ctx;
    char cluster[256] = "", node[256] = "";

    store_inc_agent_name(c->in, agent_id, cluster, sizeof(cluster), node,
                         sizeof(node));
    jsonw_obj_begin(c->w);
    jsonw_key(c->w, "cluster");
    jsonw_str(c->w, cluster);
    jsonw_key(c->w, "node");
    jsonw_str(c->w, node);
    jsonw_key(c->w, "last_seen");
    store_inc_time(c->w, last_ms);
    jsonw_obj_end(c->w);
}

char *store_inc_status_json(struct store_inc *in, int catching)
{
    const struct topology *topo = in->topo;
    struct store_inc_status_ctx c;
    struct jsonw w;
    char *json;
    size_t len;

    jsonw_init(&w, STORE_INC_STATUS_BYTES);
    c.w = &w;
    c.in = in;
    jsonw_obj_begin(&w);
    jsonw_key(&w, "services");
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < topo->n_services; i++) {
        const struct topo_service *svc = &topo->services[i];
        const struct inc_record *open = NULL;
        size_t unmapped;
        int64_t id = 0;

        jsonw_obj_begin(&w);
        jsonw_key(&w, "name");
        jsonw_str(&w, svc->name);
        jsonw_key(&w, "global_name");
        jsonw_str(&w, svc->global_name);
        jsonw_key(&w, "pattern");
        jsonw_str(&w, topo_pattern_name(svc->pattern));
        /* Every service says it: /api/v1/services/{name} shows one. */
        jsonw_key(&w, "catching_up");
        jsonw_bool(&w, catching);
        jsonw_key(&w, "regions");
        jsonw_arr_begin(&w);
        unmapped = inc_engine_service_state(in->eng, svc,
                                            store_inc_region_json, &c,
                                            &open);
        jsonw_arr_end(&w);
        jsonw_key(&w, "serving");
        jsonw_arr_begin(&w);
        inc_engine_service_state(in->eng, svc, store_inc_serving_json, &c,
                                 NULL);
        jsonw_arr_end(&w);
        jsonw_key(&w, "unmapped_agents");
        jsonw_uint(&w, unmapped);
        jsonw_key(&w, "open_incident");
        if (open && store_inc_row_id(in, svc->name, open->opened_ms,
                                     &id) == 0 && id > 0)
            jsonw_int(&w, id);
        else
            jsonw_null(&w);
        jsonw_key(&w, "stale_agents");
        jsonw_arr_begin(&w);
        inc_engine_stale_agents(in->eng, svc, store_inc_stale_json, &c);
        jsonw_arr_end(&w);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    json = jsonw_take(&w, &len);
    if (!json)
        log_msg(LOGL_WARN, "incidents", "status not published: out of "
                "memory or over %u bytes", STORE_INC_STATUS_BYTES);
    return json;
}

void store_inc_publish(struct store *st, struct store_inc *in, int catching)
{
    char *json = store_inc_status_json(in, catching), *old;

    if (!json)
        return;
    pthread_mutex_lock(&st->inc_lock);
    old = st->inc_status;
    st->inc_status = json;
    pthread_mutex_unlock(&st->inc_lock);
    free(old);
}

/* ---- the live step ---- */

/* Goes back to the last snapshot before @t_late (or, with none, to an
 * empty engine: older than the snapshots kept, or none taken yet) and
 * replays from the store up to @upto, then writes every incident the
 * replay touched. */
static int store_inc_replay(struct store *st, int64_t t_late, int64_t upto)
{
    struct store_inc *in = st->inc;
    int64_t from = INT64_MIN;
    int rc;

    rc = store_inc_restore(in, t_late, &from);
    if (rc < 0)
        return rc;
    if (from == INT64_MIN)
        log_msg(LOGL_WARN, "incidents", "an event at %lld ms came older "
                "than the last snapshot: recomputing from every stored "
                "event", (long long)t_late);
    rc = store_inc_scan(in, from, upto, upto);
    if (rc < 0)
        return rc;
    /* What the replay fed from the store, the pending copies held too. */
    store_inc_pend_drop_upto(in, upto);
    return store_inc_sync(st, from, 0);
}

/* Notes that a replay from before @t is owed. */
static void store_inc_owe(struct store_inc *in, int64_t t, int64_t mono)
{
    if (!in->late || t < in->late_from)
        in->late_from = t;
    if (!in->late)
        in->late_first = mono;
    in->late = 1;
    in->late_last = mono;
}

/* Why a replay waits: an agent back from a partition drains its spool a
 * batch per group commit, and each batch's events are late. Replaying
 * for each would reread the same stretch of history (all of it past the
 * snapshots' hour) once per batch on the writer thread. The late events
 * are stored already, so they are dropped from pend (on-time events go
 * on being fed live) and one replay covers them all once no late event
 * came for STORE_INC_LATE_QUIET_MS, or STORE_INC_LATE_MAX_MS after the
 * first: a drain of 100 batches, one a second, costs at most
 * 100 / (STORE_INC_LATE_MAX_MS / 1000) + 1 replays, not 100. */
#define STORE_INC_LATE_QUIET_MS 1500
#define STORE_INC_LATE_MAX_MS   10000

static int store_inc_catch_up(struct store *st, int64_t upto, int64_t mono,
                              int force, int *changed)
{
    struct store_inc *in = st->inc;
    int rc;

    if (in->n_pend > 0 && in->pend[0].t <= in->h) {
        store_inc_owe(in, in->pend[0].t, mono);
        store_inc_pend_drop_upto(in, in->h);
    }
    if (in->late && (force || mono - in->late_last >= STORE_INC_LATE_QUIET_MS
                     || mono - in->late_first >= STORE_INC_LATE_MAX_MS)) {
        rc = store_inc_replay(st, in->late_from, upto);
        if (rc < 0)
            return rc;
        in->late = 0;
        atomic_fetch_add(&in->replays, 1);
        if (in->broken) {
            in->broken = 0;
            atomic_fetch_add(&in->recoveries, 1);
            log_msg(LOGL_INFO, "incidents", "engine replaced by a replay "
                    "from %lld ms: incidents are written again",
                    (long long)in->late_from);
        }
        *changed = 1;
    }
    return store_inc_feed_pending(in, upto);
}

/* The engine ran out of memory halfway through a step (incident.h): it
 * may have lost an incident, so nothing it holds is written (the
 * changes since the flush are dropped) and the next tick replaces it by
 * a replay from the last snapshot before its horizon, or from scratch
 * with none. Logged once per breakage; a failed replay is tried again
 * each tick (store_inc_catch_up keeps it owed). */
static void store_inc_broke(struct store_inc *in, int64_t mono)
{
    int64_t h = inc_engine_horizon(in->eng);

    in->n_chg = 0;
    in->chg_err = 0;
    if (in->broken)
        return;
    in->broken = 1;
    store_inc_owe(in, h == INC_NONE ? INT64_MIN : h,
                  mono - STORE_INC_LATE_MAX_MS);
    log_msg(LOGL_ERROR, "incidents", "the engine ran out of memory in a "
            "step at %lld ms: replaying from the last snapshot before it "
            "(no incident is written until then)", (long long)h);
}

/* Counts the engine's incidents. */
static void store_inc_count(void *ctx, const struct inc_record *r)
{
    (void)r;
    (*(uint64_t *)ctx)++;
}

void store_inc_tick(struct store *st)
{
    struct store_inc *in = st->inc;
    int64_t upto, mono = store_mono_ns() / 1000000;
    int rc, changed = 0;

    if (!in) {
        store_inc_start_tick(st);       /* may take the engine over */
        in = st->inc;
    }
    if (!in)
        return;
    in->due_mono = mono + STORE_INC_TICK_MS;
    upto = util_now_ms() - STORE_INC_HOLD_MS;
    if (upto < in->h)                   /* the wall clock stepped back */
        upto = in->h;
    store_inc_seg_reset(in);            /* agent_offsets grew: reload */
    rc = store_inc_pend_times(in);
    if (rc == 0)
        rc = store_inc_catch_up(st, upto, mono, 0, &changed);
    if (rc == 0)
        store_inc_advance(in, upto);
    if (rc == -ENOTRECOVERABLE || inc_engine_error(in->eng)) {
        store_inc_broke(in, mono);
        return;
    }
    if (rc == -ENOMEM) {
        /* The engine is as it was (incident.h), but a change the sink
         * or a sync could not keep may be lost: go back to a snapshot
         * at the next tick, whose replay writes them all. */
        store_inc_owe(in, in->h, mono - STORE_INC_LATE_MAX_MS);
        goto out;
    }
    if (rc < 0)
        goto out;
    changed |= in->n_chg > 0;
    rc = store_inc_flush(st);
    /* Once a tick, or at once when an incident changed: under heavy
     * ingest a group commits many times a second. */
    if (rc == 0 && (changed || mono >= in->pub_mono)) {
        uint64_t held = 0;

        store_inc_publish(st, in, 0);
        in->pub_mono = mono + STORE_INC_TICK_MS;
        inc_engine_each(in->eng, store_inc_count, &held);
        atomic_store(&in->held, held);
    }
out:
    if (rc < 0)
        log_msg(LOGL_ERROR, "incidents", "engine step failed (%s); "
                "trying again in %d ms", strerror(-rc), STORE_INC_TICK_MS);
}

/* The writer sets st->inc under inc_lock once it caught up: readers on
 * other threads (metrics, stats) take the lock to read the pointer. */
enum store_inc_counter { INC_C_REPLAYS, INC_C_RECOVERIES, INC_C_HELD };

static unsigned long long store_inc_counter(struct store *st,
                                            enum store_inc_counter c)
{
    unsigned long long n = 0;

    pthread_mutex_lock(&st->inc_lock);
    if (st->inc)
        n = c == INC_C_REPLAYS ? atomic_load(&st->inc->replays)
            : c == INC_C_RECOVERIES ? atomic_load(&st->inc->recoveries)
            : atomic_load(&st->inc->held);
    pthread_mutex_unlock(&st->inc_lock);
    return n;
}

unsigned long long store_inc_replays(struct store *st)
{
    return store_inc_counter(st, INC_C_REPLAYS);
}

unsigned long long store_inc_recoveries(struct store *st)
{
    return store_inc_counter(st, INC_C_RECOVERIES);
}

unsigned long long store_inc_held(struct store *st)
{
    return store_inc_counter(st, INC_C_HELD);
}

void store_inc_free(struct store *st)
{
    struct store_inc *in = st->inc;
    int changed = 0;

    /* A replay still owed is done now (the writer has stopped): the
     * rows left behind are what a rebuild would write. */
    if (in && in->late &&
        store_inc_catch_up(st, in->h, store_mono_ns() / 1000000, 1,
                           &changed) == 0 && !inc_engine_error(in->eng))
        store_inc_flush(st);
    store_inc_start_free(st);
    store_inc_destroy(st->inc);
    st->inc = NULL;
    free(st->inc_status);
    st->inc_status = NULL;
}

/* ---- annotations ---- */

struct store_annotation_req {
    int64_t unix_ms;
    const char *text, *service;     /* borrowed from the caller */
    int64_t incident;
    int64_t id;                     /* out */
    int rc, done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void store_annotate_done(void *ctx, int rc, uint64_t id)
{
    struct store_annotation_req *r = ctx;

    pthread_mutex_lock(&r->lock);
    r->rc = rc;
    r->id = (int64_t)id;
    r->done = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Inserts the annotation of @r in one transaction on the writer: 0 and
 * *id, -ENOENT no such incident, -EIO. */
static int store_annotate_insert(struct store *st,
                                 const struct store_annotation_req *r,
                                 int64_t *id)
{
    sqlite3_stmt *chk = NULL, *ins = NULL;
    int rc = -EIO, step;

    if (store_exec(st->wdb, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    if (store_prepare(st->wdb, "SELECT 1 FROM incidents WHERE id = ?1",
                      &chk) < 0 ||
        store_prepare(st->wdb, "INSERT INTO annotations (unix_ms,"
                      " created_ms, text, service, incident_id)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)", &ins) < 0)
        goto out;
    if (r->incident) {
        if (sqlite3_bind_int64(chk, 1, r->incident) != SQLITE_OK)
            goto out;
        step = sqlite3_step(chk);
        if (step == SQLITE_DONE)
            rc = -ENOENT;
        if (step != SQLITE_ROW)
            goto out;
    }
    if (sqlite3_bind_int64(ins, 1, r->unix_ms) != SQLITE_OK ||
        sqlite3_bind_int64(ins, 2, util_now_ms()) != SQLITE_OK ||
        sqlite3_bind_text(ins, 3, r->text, -1, SQLITE_STATIC) != SQLITE_OK ||
        (r->service ? sqlite3_bind_text(ins, 4, r->service, -1,
                                        SQLITE_STATIC)
                    : sqlite3_bind_null(ins, 4)) != SQLITE_OK ||
        (r->incident ? sqlite3_bind_int64(ins, 5, r->incident)
                     : sqlite3_bind_null(ins, 5)) != SQLITE_OK ||
        sqlite3_step(ins) != SQLITE_DONE)
        goto out;
    *id = sqlite3_last_insert_rowid(st->wdb);
    rc = 0;
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "annotation: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_finalize(chk);
    sqlite3_finalize(ins);
    if (store_exec(st->wdb, rc == 0 ? "COMMIT" : "ROLLBACK") < 0 && rc == 0)
        rc = -EIO;
    return rc;
}

void store_inc_annotate_job(struct store *st, struct store_job *j)
{
    int64_t id = 0;
    int rc;

    rc = store_annotate_insert(st, j->ctx, &id);
    j->done(j->ctx, rc, rc == 0 ? (uint64_t)id : 0);
    free(j);
}


/* Whether @s is non-empty strict UTF-8 without control characters but
 * tab and newline. */
static int store_text_ok(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return 0;
    while (i < len) {
        uint32_t cp;
        size_t n = util_utf8_char((const unsigned char *)s + i, len - i,
                                  &cp);

        if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n') ||
            cp == 0x7f)
            return 0;
        i += n;
    }
    return 1;
}

int store_annotate_check(const struct store *st, int64_t unix_ms,
                         const char *text, const char *service,
                         int64_t incident)
{
    size_t len = text ? strlen(text) : 0;

    if (!text || len > STORE_ANNOTATION_MAX || !store_text_ok(text, len) ||
        (service && !store_inc_service(st, service)) || incident < 0 ||
        unix_ms < 0)
        return -EINVAL;
    return 0;
}

int store_annotate(struct store *st, int64_t unix_ms, const char *text,
                   const char *service, int64_t incident, int64_t *id)
{
    struct store_annotation_req r = {
        .unix_ms = unix_ms, .text = text, .service = service,
        .incident = incident,
    };
    int rc = store_annotate_check(st, unix_ms, text, service, incident);

    if (rc < 0)
        return rc;
    if (st->pg)
        return store_pg_annotate(st, unix_ms, text, service, incident, id);
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    rc = store_submit_annotate(st, store_annotate_done, &r);
    if (rc == 0) {
        /* The writer answers every queued job, also when closing. */
        pthread_mutex_lock(&r.lock);
        while (!r.done)
            pthread_cond_wait(&r.cond, &r.lock);
        pthread_mutex_unlock(&r.lock);
        rc = r.rc;
        if (rc == 0)
            *id = r.id;
    }
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
    return rc;
}

/* ---- sextant-collector incidents rebuild ---- */

/* The rows of the incidents table into *@n: the rebuild's count, as the
 * engine no longer holds every incident it handed out. */
static int store_inc_rows(sqlite3 *db, uint64_t *n)
{
    sqlite3_stmt *s = NULL;
    int rc = -EIO;

    if (store_prepare(db, "SELECT count(*) FROM incidents", &s) == 0 &&
        sqlite3_step(s) == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(s, 0);
        rc = 0;
    }
    sqlite3_finalize(s);
    return rc;
}

int store_incidents_rebuild(const char *path, const struct topology *topo,
                            uint64_t *events_out, uint64_t *incidents_out,
                            char *err, size_t err_len)
{
    struct store st_local;
    struct store_inc *in = NULL;
    sqlite3 *db = NULL;
    int64_t upto = util_now_ms() - STORE_INC_HOLD_MS;
    uint64_t rows = 0;
    int rc = -EIO, v = -1;

    memset(&st_local, 0, sizeof(st_local));
    store_sqlite_setup();
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "%s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        rc = -ENOENT;
        goto out;
    }
    sqlite3_busy_timeout(db, STORE_INC_LOCK_MS);
    if (store_user_version(db, &v) < 0 || v != store_schema_version()) {
        snprintf(err, err_len, "%s: not a database of this collector "
                 "(schema %d, expected %d): start the collector on it once",
                 path, v, store_schema_version());
        rc = -EPROTO;
        goto out;
    }
    /* One transaction, reads and writes: the incidents replaced agree
     * with exactly the events read. */
    if (sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "%s: cannot take the write lock (%s): a "
                 "collector is writing to it; stop it first", path,
                 sqlite3_errmsg(db));
        rc = -EBUSY;
        goto out;
    }
    rc = store_inc_new(db, topo, &in);
    if (rc == 0) {
        in->snap_next = INT64_MAX;      /* no replays to come */
        in->quiet = 1;
        st_local.wdb = db;
        st_local.inc = in;
        rc = store_inc_scan(in, INT64_MIN, upto, upto);
    }
    if (rc == 0) {
        store_inc_advance(in, upto);
        rc = store_inc_sync(&st_local, INT64_MIN, 1);
    }
    if (rc == 0)
        rc = store_inc_rows(db, &rows);
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) !=
                       SQLITE_OK)
        rc = -EIO;
    if (rc < 0) {
        snprintf(err, err_len, "%s: rebuild failed: %s", path,
                 rc == -EIO ? sqlite3_errmsg(db) : strerror(-rc));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    *events_out = in->fed;
    *incidents_out = rows;
out:
    store_inc_destroy(in);
    sqlite3_close(db);
    return rc;
}
