/* store_incscan.c -- the incident driver's mechanics (store_incident.c
 * runs them): events held for the engine, their corrected times from
 * agent_offsets, stored events read back in corrected order, the engine's
 * feeding, snapshots and restore, and the statements of both (prepared
 * in store_inc_new). Writer connection only (or the rebuild's, or
 * the start's read connection: store_incstart.c).
 *
 * Reading in corrected order: rows come by unix_ms (the time index), and
 * no event is corrected by more than M = the largest |offset_ms| in
 * agent_offsets, so an event whose corrected time is below the current
 * row's unix_ms - M can come before nothing still to be read: a heap
 * holds the rows within that margin and gives them out in (corrected,
 * agent, seq) order. Memory is bounded by the events of 2 M of time, not
 * by the range read. The incidents table's side is store_incrows.c's.
 *
 * Both backends run this code: where it reads the database it calls
 * pg_incscan.c's operations instead of its statements when in->pg is set
 * (the PostgreSQL leader's), which read the same rows into the neutral
 * store_inc_srow. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"
#include "jsonw.h"
#include "log.h"
#include "topology.h"

#define STORE_INC_ANSWERS     64        /* answers handed to the engine */
#define STORE_INC_ANSWERS_CACHE 65536u  /* answer sets cached, then reset */


#define ANSWER_VALUES(path) \
    "(SELECT group_concat(json_extract(value, '$.value'), char(10))" \
    " FROM json_each(events.data, '" path "'))"

/* $N, not ?N, where PostgreSQL runs the same text (pg_incscan.c): SQLite
 * takes $1 as a named parameter numbered in the order of first use, which
 * is 1, 2, ... in each of these. */
const char *const store_inc_sql[STORE_INC_STMTS] = {
    [INC_Q_OFF_AT] = "SELECT from_seq, offset_ms FROM agent_offsets"
                 " WHERE agent_id = $1 AND from_seq <= $2"
                 " ORDER BY from_seq DESC LIMIT 1",
    [INC_Q_OFF_NEXT] = "SELECT min(from_seq) FROM agent_offsets"
                   " WHERE agent_id = $1 AND from_seq > $2",
    [INC_Q_OFF_BOUND] = "SELECT coalesce(max(abs(offset_ms)), 0)"
                    " FROM agent_offsets",
    /* Collector-made events (gap, drop: no seq) never matter. */
    [INC_Q_SCAN] = "SELECT id, agent_id, seq, unix_ms, kind_id, target_id,"
               " probe_type, ok, served_by_id, answers_id,"
               " data IS NOT NULL, recv_delta_ms FROM events"
               " WHERE unix_ms >= ?1 AND unix_ms <= ?2 AND seq IS NOT NULL"
               " AND (target_id IS NOT NULL OR kind_id = ?3)"
               " ORDER BY unix_ms",
    [INC_Q_DATA] = "SELECT json_extract(data, '$.to'),"
               " json_extract(data, '$.name'), " ANSWER_VALUES("$.new") ","
               " json_extract(data, '$.kind'), json_extract(data, '$.from'),"
               " json_extract(data, '$.service'),"
               " json_extract(data, '$.value'), json_extract(data, '$.ok'),"
               " json_extract(data, '$.served_by'), "
               ANSWER_VALUES("$.answers") ","
               " json_extract(data, '$.type'), json_type(data, '$.value'),"
               " (SELECT substr(x.text, 1, 8) = '" WIRE_HANDOFF "'"
               "  FROM texts x WHERE x.id = events.text_id)"
               " FROM events WHERE id = ?1",
    [INC_Q_TARGET] = "SELECT name FROM targets WHERE id = $1",
    [INC_Q_REGION] = "SELECT name FROM regions WHERE id = $1",
    [INC_Q_ANSWERS] = "SELECT (SELECT group_concat(json_extract(value,"
                  " '$.value'), char(10)) FROM json_each(texts.text))"
                  " FROM texts WHERE id = ?1",
    [INC_Q_KINDS] = "SELECT id, name FROM kinds",
    [INC_Q_AGENT] = "SELECT cluster, node FROM agents WHERE id = $1",
    /* The same columns as INC_Q_ROW_LIST. */
    [INC_Q_ROW_GET] = "SELECT id, service, opened_ms, region, to_region,"
                  " manual, first_failure_ms, detected_ms,"
                  " failover_start_ms, dns_first_ms, dns_all_ms,"
                  " restored_ms, closed_ms, rpo_ms, pattern FROM incidents"
                  " WHERE service = $1 AND opened_ms = $2",
    [INC_Q_ROW_PUT] = "INSERT INTO incidents (service, opened_ms, region,"
                  " to_region, pattern, manual, first_failure_ms,"
                  " detected_ms, failover_start_ms, dns_first_ms,"
                  " dns_all_ms, restored_ms, closed_ms, rpo_ms)"
                  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                  " $12, $13, $14) ON CONFLICT (service, opened_ms) DO"
                  " UPDATE SET region = excluded.region,"
                  " to_region = excluded.to_region,"
                  " pattern = excluded.pattern, manual = excluded.manual,"
                  " first_failure_ms = excluded.first_failure_ms,"
                  " detected_ms = excluded.detected_ms,"
                  " failover_start_ms = excluded.failover_start_ms,"
                  " dns_first_ms = excluded.dns_first_ms,"
                  " dns_all_ms = excluded.dns_all_ms,"
                  " restored_ms = excluded.restored_ms,"
                  " closed_ms = excluded.closed_ms,"
                  " rpo_ms = excluded.rpo_ms RETURNING id",
    [INC_Q_ROW_LIST] = "SELECT id, service, opened_ms, region, to_region,"
                   " manual, first_failure_ms, detected_ms,"
                   " failover_start_ms, dns_first_ms, dns_all_ms,"
                   " restored_ms, closed_ms, rpo_ms, pattern FROM incidents"
                   " WHERE opened_ms > $1",
    [INC_Q_ROW_DEL] = "DELETE FROM incidents WHERE id = $1",
};

/* The kinds the engine takes, by their names in the kinds table. */
static const char *const store_inc_kinds[5] = {
    "probe", "state", "dns", "metric", "failover",
};
enum { K_PROBE, K_STATE, K_DNS, K_METRIC, K_FAILOVER };

int store_inc_grow(void *v, size_t *cap, size_t n, size_t size,
                   size_t first)
{
    size_t c = *cap ? *cap * 2 : first;
    void *old, *p;

    if (n < *cap)
        return 0;
    /* @v is the address of a typed pointer: copied, not read as void *
     * (object pointers share one representation on every target). */
    memcpy(&old, v, sizeof(old));
    p = realloc(old, c * size);
    if (!p)
        return -ENOMEM;
    memcpy(v, &p, sizeof(p));
    *cap = c;
    return 0;
}

void store_inc_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

/* ---- events ---- */

void store_inc_ev_free(struct store_inc_ev *x)
{
    free(x->s[0]);
    x->s[0] = NULL;
}

int store_inc_ev_strings(struct store_inc_ev *x, const char *const *s)
{
    size_t len[S_COUNT], total = 0;
    char *p;

    for (int i = 0; i < S_COUNT; i++) {
        len[i] = s[i] ? strlen(s[i]) : 0;
        total += len[i] + 1;
    }
    p = malloc(total);
    if (!p)
        return -ENOMEM;
    for (int i = 0; i < S_COUNT; i++) {
        if (len[i])
            memcpy(p, s[i], len[i]);
        p[len[i]] = '\0';
        x->s[i] = p;
        p += len[i] + 1;
    }
    x->n_answers = 0;
    if (x->has_answers && len[S_ANSWERS] > 0) {
        x->n_answers = 1;
        for (char *c = x->s[S_ANSWERS]; *c; c++)
            if (*c == '\n') {
                *c = '\0';
                x->n_answers++;
            }
    }
    return 0;
}

int store_inc_fo_kind(const char *kind)
{
    return strcmp(kind, "failover") == 0 || strcmp(kind, "manual") == 0;
}

static uint64_t store_inc_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;        /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int store_inc_relevant(const struct store_inc *in, const char *name)
{
    size_t i = (size_t)store_inc_hash(name) & (in->names_cap - 1);

    for (; in->names[i]; i = (i + 1) & (in->names_cap - 1))
        if (strcmp(in->names[i], name) == 0)
            return 1;
    return 0;
}

static void store_inc_name_add(struct store_inc *in, const char *name)
{
    size_t i;

    if (!name || store_inc_relevant(in, name))
        return;
    i = (size_t)store_inc_hash(name) & (in->names_cap - 1);
    while (in->names[i])
        i = (i + 1) & (in->names_cap - 1);
    in->names[i] = name;
}

/* ---- the int64 map ---- */

static void store_inc_map_reset(struct store_inc_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].s);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static size_t store_inc_map_at(const struct store_inc_map *m, int64_t key)
{
    size_t i = (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 20) &
               (m->cap - 1);

    while (m->slots[i].used && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* The slot of @key; with @create a new zeroed one if absent (NULL: out
 * of memory), else NULL when absent. */
static struct store_inc_slot *store_inc_map_get(struct store_inc_map *m,
                                                int64_t key, int create)
{
    size_t i;

    if (m->cap && m->slots[i = store_inc_map_at(m, key)].used)
        return &m->slots[i];
    if (!create)
        return NULL;
    if ((m->used + 1) * 2 > m->cap) {
        struct store_inc_map n = { 0 };

        n.cap = m->cap ? m->cap * 2 : 64;
        n.slots = calloc(n.cap, sizeof(*n.slots));
        if (!n.slots)
            return NULL;
        for (size_t k = 0; k < m->cap; k++)
            if (m->slots[k].used)
                n.slots[store_inc_map_at(&n, m->slots[k].key)] =
                    m->slots[k];
        n.used = m->used;
        free(m->slots);
        *m = n;
    }
    i = store_inc_map_at(m, key);
    memset(&m->slots[i], 0, sizeof(m->slots[i]));
    m->slots[i].used = 1;
    m->slots[i].key = key;
    m->used++;
    return &m->slots[i];
}

/* The text of dimension row @id through @q into *@out (the caller
 * frees; NULL: no such row): 0, -ENOMEM or -EIO. */
static int store_inc_dim_read(struct store_inc *in, int q, int64_t id,
                              char **out)
{
    sqlite3_stmt *s = in->stmt[q];
    const char *v;
    int step, rc = 0;

    if (in->pg)
        return pg_inc_dim(in, q, id, out);
    if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK)
        return -EIO;
    step = sqlite3_step(s);
    *out = NULL;
    if (step == SQLITE_ROW) {
        v = (const char *)sqlite3_column_text(s, 0);
        if (v && !(*out = strdup(v)))
            rc = -ENOMEM;
    } else if (step != SQLITE_DONE) {
        rc = -EIO;
    }
    store_inc_done(s);
    return rc;
}

/* The text of dimension row @id through @q (INC_Q_TARGET, INC_Q_REGION,
 * INC_Q_ANSWERS), cached in @m; for targets only the relevant ones are kept
 * (others: NULL). 0 and *out (borrowed, NULL: none), or -errno. */
static int store_inc_dim(struct store_inc *in, struct store_inc_map *m,
                         int q, int64_t id, const char **out)
{
    struct store_inc_slot *sl = store_inc_map_get(m, id, 0);
    char *v = NULL;
    int rc;

    if (sl) {
        *out = sl->s;
        return 0;
    }
    if (m == &in->answers && m->used >= STORE_INC_ANSWERS_CACHE)
        store_inc_map_reset(m);
    rc = store_inc_dim_read(in, q, id, &v);
    if (rc < 0)
        return rc;
    sl = store_inc_map_get(m, id, 1);
    if (!sl) {
        free(v);
        return -ENOMEM;
    }
    if (v && q == INC_Q_TARGET && !store_inc_relevant(in, v)) {
        free(v);
        v = NULL;
    }
    sl->s = v;
    *out = sl->s;
    return 0;
}

/* ---- corrected time ---- */

void store_inc_seg_reset(struct store_inc *in)
{
    store_inc_map_reset(&in->segs);
}

/* The offset of agent @agent's event @seq (see store_priv.h): its
 * segment of agent_offsets rows is cached until the next reset. */
static int store_inc_offset(struct store_inc *in, int64_t agent,
                            uint64_t seq, int64_t *off)
{
    struct store_inc_slot *sl = store_inc_map_get(&in->segs, agent, 1);
    sqlite3_stmt *at = in->stmt[INC_Q_OFF_AT], *nx = in->stmt[INC_Q_OFF_NEXT];
    int64_t sq = (int64_t)seq;
    int rc = -EIO, step;

    if (!sl)
        return -ENOMEM;
    if (sq >= sl->a && sq < sl->b) {
        *off = sl->c;
        return 0;
    }
    if (in->pg) {
        rc = pg_inc_offset(in, agent, sq, &sl->a, &sl->c, &sl->b);
        if (rc == 0)
            *off = sl->c;
        goto out;
    }
    if (sqlite3_bind_int64(at, 1, agent) != SQLITE_OK ||
        sqlite3_bind_int64(at, 2, sq) != SQLITE_OK ||
        sqlite3_bind_int64(nx, 1, agent) != SQLITE_OK ||
        sqlite3_bind_int64(nx, 2, sq) != SQLITE_OK)
        goto out;
    step = sqlite3_step(at);
    if (step == SQLITE_ROW) {
        sl->a = sqlite3_column_int64(at, 0);
        sl->c = sqlite3_column_int64(at, 1);
    } else if (step == SQLITE_DONE) {
        sl->a = INT64_MIN;
        sl->c = 0;
    } else {
        goto out;
    }
    if (sqlite3_step(nx) != SQLITE_ROW)
        goto out;
    sl->b = sqlite3_column_type(nx, 0) == SQLITE_NULL
            ? INT64_MAX : sqlite3_column_int64(nx, 0);
    *off = sl->c;
    rc = 0;
out:
    if (rc < 0)
        sl->b = sl->a;                  /* an empty segment: ask again */
    store_inc_done(at);
    store_inc_done(nx);
    return rc;
}

/* ---- pending ---- */

int store_inc_pend(struct store_inc *in, struct store_inc_ev *x)
{
    if (in->n_pend >= STORE_INC_PENDING_MAX) {
        store_inc_ev_free(x);
        return -ENOBUFS;
    }
    if (store_inc_grow(&in->pend, &in->cap_pend, in->n_pend,
                       sizeof(*in->pend), 256) < 0) {
        store_inc_ev_free(x);
        return -ENOMEM;
    }
    in->pend[in->n_pend++] = *x;
    return 0;
}

static int store_inc_ev_cmp(const struct store_inc_ev *a,
                            const struct store_inc_ev *b)
{
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    if (a->agent != b->agent)
        return a->agent < b->agent ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

static int store_inc_ev_qcmp(const void *a, const void *b)
{
    return store_inc_ev_cmp(a, b);
}

int store_inc_future(struct store_inc *in, const struct store_inc_ev *x)
{
    if (x->t - x->recv_ms <= STORE_INC_FUTURE_MS)
        return 0;
    if (in->future++ == 0)
        log_msg(LOGL_WARN, "incidents", "agent %lld seq %llu: event dated "
                "%lld ms after it was received: not fed to the engine "
                "(neither are later ones like it; logged once)",
                (long long)x->agent, (unsigned long long)x->seq,
                (long long)(x->t - x->recv_ms));
    return 1;
}

int store_inc_pend_times(struct store_inc *in)
{
    size_t n = 0;
    int rc = 0;

    for (size_t i = 0; i < in->n_pend; i++) {
        struct store_inc_ev *x = &in->pend[i];
        int64_t off;

        if (rc == 0 && x->t == INT64_MIN) {
            rc = store_inc_offset(in, x->agent, x->seq, &off);
            if (rc == 0)
                x->t = x->unix_ms + off;
        }
        if (x->t != INT64_MIN && store_inc_future(in, x)) {
            store_inc_ev_free(x);
            continue;
        }
        in->pend[n++] = *x;
    }
    in->n_pend = n;
    if (rc < 0)
        return rc;
    /* qsort's array must not be NULL, even for no element (UBSan). */
    if (in->n_pend > 0)
        qsort(in->pend, in->n_pend, sizeof(*in->pend), store_inc_ev_qcmp);
    return 0;
}

/* Removes the first @n pending events (freed). */
static void store_inc_pend_shift(struct store_inc *in, size_t n)
{
    if (n == 0)
        return;                 /* pend may be NULL */
    for (size_t i = 0; i < n; i++)
        store_inc_ev_free(&in->pend[i]);
    memmove(in->pend, in->pend + n, (in->n_pend - n) * sizeof(*in->pend));
    in->n_pend -= n;
}

void store_inc_pend_drop_upto(struct store_inc *in, int64_t upto)
{
    size_t n = 0;

    while (n < in->n_pend && in->pend[n].t <= upto)
        n++;
    store_inc_pend_shift(in, n);
}

/* ---- the engine ---- */

/* Takes a snapshot at the engine's horizon; the oldest goes past
 * STORE_INC_SNAPS. A failed clone only loses the snapshot. */
static void store_inc_snapshot(struct store_inc *in)
{
    struct inc_engine *e;

    /* A broken engine is replaced by restoring a snapshot: never one. */
    if (inc_engine_error(in->eng))
        return;
    e = inc_engine_clone(in->eng);
    if (!e) {
        log_msg(LOGL_WARN, "incidents", "snapshot: out of memory");
        return;
    }
    if (in->n_snaps == STORE_INC_SNAPS) {
        inc_engine_free(in->snaps[0].e);
        memmove(in->snaps, in->snaps + 1,
                (STORE_INC_SNAPS - 1) * sizeof(in->snaps[0]));
        in->n_snaps--;
    }
    in->snaps[in->n_snaps].h = in->h;
    in->snaps[in->n_snaps].e = e;
    in->n_snaps++;
}

/* Before the engine moves to @t: at each minute boundary crossed, the
 * engine advanced to just before it and a snapshot taken there. */
static void store_inc_step_to(struct store_inc *in, int64_t t)
{
    int64_t b;

    if (in->snap_next == INT64_MAX)
        return;
    b = store_floor(t, STORE_INC_SNAP_MS);
    if (in->snap_next == INT64_MIN) {
        in->snap_next = b + STORE_INC_SNAP_MS;
        return;
    }
    if (t < in->snap_next)
        return;
    if (b - 1 > in->h) {
        inc_engine_advance(in->eng, b - 1);
        in->h = b - 1;
    }
    if (in->h >= in->snap_from)
        store_inc_snapshot(in);
    in->snap_next = b + STORE_INC_SNAP_MS;
}

void store_inc_advance(struct store_inc *in, int64_t upto)
{
    store_inc_step_to(in, upto);
    if (upto > in->h) {
        inc_engine_advance(in->eng, upto);
        in->h = upto;
    }
}

static int store_inc_feed(struct store_inc *in, const struct store_inc_ev *x)
{
    const char *ans[STORE_INC_ANSWERS];
    const char *a = x->s[S_ANSWERS];
    struct inc_event e;
    size_t n = 0;
    int rc;

    for (; n < x->n_answers && n < STORE_INC_ANSWERS; n++) {
        ans[n] = a;
        a += strlen(a) + 1;
    }
    memset(&e, 0, sizeof(e));
    e.t_ms = x->t;
    e.agent_id = x->agent;
    e.seq = x->seq;
    e.kind = (enum inc_ev_kind)x->kind;
    e.target = x->s[S_TARGET];
    e.ok = x->ok;
    e.served_by = x->s[S_SERVED];
    e.has_answers = x->has_answers;
    e.answers = ans;
    e.n_answers = n;
    e.dns_name = x->s[S_DNS];
    e.healthy = x->healthy;
    e.fo_kind = x->s[S_FOKIND];
    e.from_region = x->s[S_FROM];
    e.to_region = x->s[S_TO];
    e.fo_service = x->s[S_SERVICE];
    e.metric = x->s[S_METRIC];
    e.value = x->value;
    store_inc_step_to(in, x->t);
    rc = inc_engine_feed(in->eng, &e);
    if (rc == -EINVAL) {
        /* Cannot happen with the order kept here; skipping one event
         * beats stopping every incident. */
        log_msg(LOGL_WARN, "incidents", "event of agent %lld seq %llu out "
                "of order: skipped", (long long)x->agent,
                (unsigned long long)x->seq);
        return 0;
    }
    if (rc == 0)
        in->fed++;
    return rc;
}

int store_inc_feed_pending(struct store_inc *in, int64_t upto)
{
    size_t n = 0;
    int rc = 0;

    while (n < in->n_pend && in->pend[n].t <= upto) {
        rc = store_inc_feed(in, &in->pend[n]);
        if (rc < 0)
            break;
        n++;
    }
    store_inc_pend_shift(in, n);
    return rc;
}

static void store_inc_sink(void *ctx, enum inc_change what,
                           const struct inc_record *r)
{
    struct store_inc *in = ctx;

    if (store_inc_grow(&in->chg, &in->cap_chg, in->n_chg,
                       sizeof(*in->chg), 16) < 0) {
        in->chg_err = -ENOMEM;
        return;
    }
    in->chg[in->n_chg].what = what;
    in->chg[in->n_chg].r = *r;
    in->n_chg++;
}

int store_inc_restore(struct store_inc *in, int64_t t, int64_t *from)
{
    size_t i = in->n_snaps;
    struct inc_engine *e;

    while (i > 0 && in->snaps[i - 1].h >= t)
        i--;
    e = i > 0 ? inc_engine_clone(in->snaps[i - 1].e)
              : inc_engine_new(in->topo, store_inc_sink, in);
    if (!e)
        return -ENOMEM;
    inc_engine_keep_closed(e, STORE_INC_KEEP_CLOSED_MS);
    *from = i > 0 ? in->snaps[i - 1].h : INT64_MIN;
    for (size_t k = i; k < in->n_snaps; k++)
        inc_engine_free(in->snaps[k].e);
    in->n_snaps = i;
    inc_engine_free(in->eng);
    in->eng = e;
    in->h = *from;
    in->snap_next = i > 0 ? *from + 1 + STORE_INC_SNAP_MS : INT64_MIN;
    in->n_chg = 0;              /* the replay's sync writes everything */
    in->chg_err = 0;
    return 0;
}

/* ---- reading stored events in corrected order ---- */

/* The INC_Q_DATA row of event @id into @d (strings borrowed from the
 * statement until it is reset): the statement, or NULL on failure. */
static sqlite3_stmt *store_inc_data(struct store_inc *in, int64_t id,
                                    struct store_inc_drow *d)
{
    sqlite3_stmt *s = in->stmt[INC_Q_DATA];
    const char *jt;

    if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        store_inc_done(s);
        return NULL;
    }
    d->to = store_inc_col(s, 0);
    d->name = store_inc_col(s, 1);
    d->new_answers = store_inc_col(s, 2);
    d->fokind = store_inc_col(s, 3);
    d->from = store_inc_col(s, 4);
    d->service = store_inc_col(s, 5);
    d->value = sqlite3_column_double(s, 6);
    d->ok = sqlite3_column_int(s, 7);
    d->served_by = store_inc_col(s, 8);
    d->answers = store_inc_col(s, 9);
    d->type = store_inc_col(s, 10);
    /* NaN and +-Inf are stored as strings (jsonw_double), which
     * column_double would read as 0. */
    jt = store_inc_col(s, 11);
    d->value_num = jt && (strcmp(jt, "real") == 0 ||
                          strcmp(jt, "integer") == 0);
    d->handoff = sqlite3_column_int(s, 12);
    return s;
}

const char *store_inc_col(sqlite3_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(s, col);
}

/* Fills @x's kind and strings from @d, the data of an event of kind @k
 * (not a typed probe): 0 it matters, 1 not (then @s untouched). */
static int store_inc_data_ev(int k, const struct store_inc_drow *d,
                             const char **s, struct store_inc_ev *x)
{
    switch (k) {
    case K_PROBE:               /* one kept as JSON (store_fields.c) */
        x->ok = d->ok != 0;
        s[S_SERVED] = d->served_by;
        s[S_ANSWERS] = d->answers;
        x->has_answers = d->type && strcmp(d->type, "dns") == 0;
        return 0;
    case K_STATE:
        x->healthy = !d->to ? -1 : strcmp(d->to, "healthy") == 0 ? 1
                     : strcmp(d->to, "unhealthy") == 0 ? 0
                     : d->handoff ? INC_HANDED_OFF : -1;
        return 0;
    case K_DNS:
        x->has_answers = 1;
        s[S_DNS] = d->name;
        s[S_ANSWERS] = d->new_answers;
        return 0;
    case K_METRIC:
        /* A NaN or infinite sample: skipped, as live does. */
        if (!d->value_num)
            return 1;
        s[S_METRIC] = d->name;
        x->value = d->value;
        return 0;
    default:                    /* K_FAILOVER */
        if (!d->fokind || !store_inc_fo_kind(d->fokind))
            return 1;
        s[S_FOKIND] = d->fokind;
        s[S_FROM] = d->from;
        s[S_TO] = d->to;
        s[S_SERVICE] = d->service;
        return 0;
    }
}

/* Fills @x (zeroed, with agent, seq, unix_ms) from the scanned row @r of
 * kind @k: 1 it matters, 0 not, -errno. */
static int store_inc_row_ev(struct store_inc *in,
                            const struct store_inc_srow *r, int k,
                            const char *target, struct store_inc_ev *x)
{
    const char *s[S_COUNT] = { 0 };
    struct store_inc_drow dd;
    const struct store_inc_drow *d = &r->d;
    sqlite3_stmt *ds = NULL;
    int rc = 0;

    s[S_TARGET] = target;
    if (k == K_PROBE && !r->has_data) {
        x->ok = r->ok != 0;
        x->has_answers = r->probe_type ==
                         SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS;
        if (r->served_by_id)
            rc = store_inc_dim(in, &in->regions, INC_Q_REGION,
                               r->served_by_id, &s[S_SERVED]);
        if (rc == 0 && r->answers_id)
            rc = store_inc_dim(in, &in->answers, INC_Q_ANSWERS,
                               r->answers_id, &s[S_ANSWERS]);
        if (rc < 0)
            return rc;
    } else {
        if (!r->has_d) {
            memset(&dd, 0, sizeof(dd));
            ds = store_inc_data(in, r->id, &dd);
            if (!ds)
                return -EIO;
            d = &dd;
        }
        if (store_inc_data_ev(k, d, s, x) == 1) {
            store_inc_done(ds);
            return 0;
        }
    }
    x->kind = k == K_PROBE ? INC_EV_PROBE : k == K_STATE ? INC_EV_STATE
              : k == K_DNS ? INC_EV_DNS : k == K_METRIC ? INC_EV_METRIC
              : INC_EV_FAILOVER;
    rc = store_inc_ev_strings(x, s);
    store_inc_done(ds);
    return rc < 0 ? rc : 1;
}

int store_inc_srow_ev(struct store_inc *in, const struct store_inc_srow *r,
                      struct store_inc_ev *x)
{
    int64_t off;
    const char *target = NULL;
    int k, rc;

    for (k = 0; k < 5 && in->kind_ids[k] != r->kind; k++)
        ;
    if (k == 5)
        return 0;
    if (k != K_FAILOVER) {
        if (!r->target_id)
            return 0;
        rc = store_inc_dim(in, &in->targets, INC_Q_TARGET, r->target_id,
                           &target);
        if (rc < 0 || !target)
            return rc;
    }
    memset(x, 0, sizeof(*x));
    x->agent = r->agent;
    x->seq = (uint64_t)r->seq;
    x->unix_ms = r->unix_ms;
    x->recv_ms = x->unix_ms + r->recv_delta;
    rc = store_inc_offset(in, x->agent, x->seq, &off);
    if (rc < 0)
        return rc;
    x->t = x->unix_ms + off;
    if (store_inc_future(in, x))
        return 0;
    return store_inc_row_ev(in, r, k, target, x);
}

/* A binary min-heap of events by (t, agent, seq). */
struct store_inc_heap {
    struct store_inc_ev *v;
    size_t n, cap;
};

static int store_inc_heap_push(struct store_inc_heap *h,
                               const struct store_inc_ev *x)
{
    size_t i;

    if (store_inc_grow(&h->v, &h->cap, h->n, sizeof(*h->v), 1024) < 0)
        return -ENOMEM;
    i = h->n++;
    while (i > 0 && store_inc_ev_cmp(x, &h->v[(i - 1) / 2]) < 0) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = *x;
    return 0;
}

static void store_inc_heap_pop(struct store_inc_heap *h,
                               struct store_inc_ev *out)
{
    struct store_inc_ev last = h->v[--h->n];
    size_t i = 0;

    *out = h->v[0];
    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= h->n)
            break;
        if (c + 1 < h->n && store_inc_ev_cmp(&h->v[c + 1], &h->v[c]) < 0)
            c++;
        if (store_inc_ev_cmp(&last, &h->v[c]) <= 0)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
}

/* Feeds @x (t <= @feed_upto) or holds it; @x is taken either way. */
static int store_inc_take(struct store_inc *in, struct store_inc_ev *x,
                          int64_t feed_upto)
{
    int rc;

    if (x->t > feed_upto)
        return store_inc_pend(in, x);
    rc = store_inc_feed(in, x);
    store_inc_ev_free(x);
    return rc;
}

/* The kinds' ids and the largest offset: what a scan needs to know. */
static int store_inc_scan_setup(struct store_inc *in, int64_t *bound)
{
    sqlite3_stmt *s = in->stmt[INC_Q_KINDS];
    int step;

    memset(in->kind_ids, 0, sizeof(in->kind_ids));
    if (in->pg)
        return pg_inc_setup(in, store_inc_kinds, in->kind_ids, 5, bound);
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        for (int k = 0; k < 5; k++)
            if (strcmp(store_inc_col(s, 1), store_inc_kinds[k]) == 0)
                in->kind_ids[k] = sqlite3_column_int64(s, 0);
    store_inc_done(s);
    if (step != SQLITE_DONE)
        return -EIO;
    s = in->stmt[INC_Q_OFF_BOUND];
    step = sqlite3_step(s);
    *bound = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    store_inc_done(s);
    return step == SQLITE_ROW ? 0 : -EIO;
}

/* The scan's rows (INC_Q_SCAN on SQLite): begin, next (1 and @r, 0 at
 * the end, -EIO), end. */
static int store_inc_scan_begin(struct store_inc *in, int64_t lo,
                                int64_t hi)
{
    sqlite3_stmt *s = in->stmt[INC_Q_SCAN];

    if (in->pg)
        return pg_inc_scan_begin(in, lo, hi, in->kind_ids[K_FAILOVER]);
    if (sqlite3_bind_int64(s, 1, lo) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, hi) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, in->kind_ids[K_FAILOVER]) != SQLITE_OK)
        return -EIO;
    return 0;
}

static int64_t store_inc_col_id(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL
           ? 0 : sqlite3_column_int64(s, col);
}

static int store_inc_scan_next(struct store_inc *in,
                               struct store_inc_srow *r)
{
    sqlite3_stmt *s = in->stmt[INC_Q_SCAN];
    int step;

    if (in->pg)
        return pg_inc_scan_next(in, r);
    step = sqlite3_step(s);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : -EIO;
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    r->agent = sqlite3_column_int64(s, 1);
    r->seq = sqlite3_column_int64(s, 2);
    r->unix_ms = sqlite3_column_int64(s, 3);
    r->kind = sqlite3_column_int64(s, 4);
    r->target_id = store_inc_col_id(s, 5);
    r->probe_type = sqlite3_column_int(s, 6);
    r->ok = sqlite3_column_int(s, 7);
    r->served_by_id = store_inc_col_id(s, 8);
    r->answers_id = store_inc_col_id(s, 9);
    r->has_data = sqlite3_column_int(s, 10);
    r->recv_delta = sqlite3_column_int64(s, 11);
    return 1;
}

static void store_inc_scan_end(struct store_inc *in)
{
    if (in->pg)
        pg_inc_scan_end(in);
    else
        store_inc_done(in->stmt[INC_Q_SCAN]);
}

int store_inc_scan(struct store_inc *in, int64_t after, int64_t upto,
                   int64_t feed_upto)
{
    struct store_inc_heap h = { 0 };
    struct store_inc_ev x;
    struct store_inc_srow r;
    int64_t m, lo, hi;
    int rc, more = 0;

    store_inc_seg_reset(in);
    rc = store_inc_scan_setup(in, &m);
    if (rc < 0)
        return rc;
    lo = after == INT64_MIN ? INT64_MIN : after + 1 - m;
    hi = upto == INT64_MAX ? INT64_MAX : upto + m;
    rc = store_inc_scan_begin(in, lo, hi);
    while (rc == 0 && (more = store_inc_scan_next(in, &r)) == 1) {
        /* Nothing still to come is corrected below unix_ms - m. */
        while (rc == 0 && h.n > 0 && h.v[0].t < r.unix_ms - m) {
            store_inc_heap_pop(&h, &x);
            rc = store_inc_take(in, &x, feed_upto);
        }
        if (rc < 0)
            break;
        rc = store_inc_srow_ev(in, &r, &x);
        if (rc == 1 && (x.t <= after || x.t > upto)) {
            store_inc_ev_free(&x);
            rc = 0;
        } else if (rc == 1) {
            rc = store_inc_heap_push(&h, &x);
            if (rc < 0)
                store_inc_ev_free(&x);
        }
    }
    if (rc == 0 && more < 0)
        rc = -EIO;
    while (rc == 0 && h.n > 0) {
        store_inc_heap_pop(&h, &x);
        rc = store_inc_take(in, &x, feed_upto);
    }
    if (rc == -EIO && !in->pg)
        log_msg(LOGL_ERROR, "incidents", "reading events: %s",
                sqlite3_errmsg(in->db));
    while (h.n > 0) {
        store_inc_heap_pop(&h, &x);
        store_inc_ev_free(&x);
    }
    free(h.v);
    store_inc_scan_end(in);
    return rc;
}

int store_inc_scan_new(struct store_inc *in, int64_t after, int64_t upto)
{
    struct store_inc_ev x;
    struct store_inc_srow r;
    int64_t m;
    int rc, more = 0;

    /* agent_offsets grew since: the cached segments may end too late. */
    store_inc_seg_reset(in);
    rc = store_inc_scan_setup(in, &m);
    if (rc < 0)
        return rc;
    rc = pg_inc_ids_begin(in, after, upto, in->kind_ids[K_FAILOVER]);
    while (rc == 0 && (more = store_inc_scan_next(in, &r)) == 1) {
        rc = store_inc_srow_ev(in, &r, &x);
        if (rc == 1)
            rc = store_inc_pend(in, &x);
    }
    if (rc == 0 && more < 0)
        rc = -EIO;
    store_inc_scan_end(in);
    return rc;
}

/* ---- life ---- */

int store_inc_new(sqlite3 *db, const struct topology *topo,
                  struct store_inc **out)
{
    struct store_inc *in = calloc(1, sizeof(*in));
    size_t n = 0;

    if (!in)
        return -ENOMEM;
    in->topo = topo;
    in->h = INC_NONE;
    in->snap_next = INT64_MIN;
    in->snap_from = INT64_MIN;
    in->id_base = -1;
    for (size_t i = 0; i < topo->n_services; i++) {
        const struct topo_service *svc = &topo->services[i];

        n += 1 + svc->n_global_targets;
        for (size_t r = 0; r < svc->n_regions; r++)
            n += svc->regions[r].n_targets + 1;
    }
    for (in->names_cap = 16; in->names_cap < 2 * n + 1;)
        in->names_cap *= 2;
    in->names = calloc(in->names_cap, sizeof(*in->names));
    in->eng = inc_engine_new(topo, store_inc_sink, in);
    if (!in->names || !in->eng) {
        store_inc_destroy(in);
        return -ENOMEM;
    }
    inc_engine_keep_closed(in->eng, STORE_INC_KEEP_CLOSED_MS);
    for (size_t i = 0; i < topo->n_services; i++) {
        const struct topo_service *svc = &topo->services[i];

        store_inc_name_add(in, svc->global_name);
        for (size_t g = 0; g < svc->n_global_targets; g++)
            store_inc_name_add(in, svc->global_targets[g]);
        for (size_t r = 0; r < svc->n_regions; r++) {
            for (size_t t = 0; t < svc->regions[r].n_targets; t++)
                store_inc_name_add(in, svc->regions[r].targets[t]);
            store_inc_name_add(in, svc->regions[r].lag_target);
        }
    }
    if (db && store_inc_prepare(in, db) < 0) {
        store_inc_destroy(in);
        return -EIO;
    }
    *out = in;
    return 0;
}

void store_inc_unprepare(struct store_inc *in)
{
    for (int q = 0; q < STORE_INC_STMTS; q++) {
        sqlite3_finalize(in->stmt[q]);
        in->stmt[q] = NULL;
    }
    in->db = NULL;
}

int store_inc_prepare(struct store_inc *in, sqlite3 *db)
{
    store_inc_unprepare(in);
    in->db = db;
    for (int q = 0; q < STORE_INC_STMTS; q++)
        if (store_prepare(db, store_inc_sql[q], &in->stmt[q]) < 0) {
            store_inc_unprepare(in);
            return -EIO;
        }
    /* Cached offset segments came from the other connection's view. */
    store_inc_seg_reset(in);
    return 0;
}

void store_inc_destroy(struct store_inc *in)
{
    if (!in)
        return;
    store_inc_unprepare(in);
    inc_engine_free(in->eng);
    for (size_t i = 0; i < in->n_snaps; i++)
        inc_engine_free(in->snaps[i].e);
    store_inc_pend_shift(in, in->n_pend);
    free(in->pend);
    free(in->chg);
    free(in->told);
    free((void *)in->names);
    store_inc_map_reset(&in->targets);
    store_inc_map_reset(&in->regions);
    store_inc_map_reset(&in->answers);
    store_inc_map_reset(&in->segs);
    free(in);
}
