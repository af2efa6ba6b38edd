/* store.c -- SQLite schema, migrations, ingest and timeline queries.
 * Does not parse HTTP or protobuf (see server.c, proto/wire.c); it takes
 * decoded, validated batches (ingest.c also caps every seq at INT64_MAX,
 * which SQLite's integers need).
 *
 * Delivery, per agent (cluster, node, epoch): events are stored whatever
 * their order of arrival, once each (UNIQUE (agent_id, seq), INSERT OR
 * IGNORE), and agents.acked_seq is the highest seq below which nothing is
 * missing any more: stored, or declared lost by a "gap" or "drop" event.
 * The agent drains its backlog newest and oldest in alternation, so holes
 * above the watermark are normal and fill later; only what the batch says
 * the agent no longer has (below Batch.oldest_seq) is declared lost. */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"

#define STORE_READERS        8           /* idle read connections kept */
#define STORE_BUSY_MS        5000
#define STORE_TIMELINE_BYTES (64u << 20) /* reply cap */
#define STORE_FIELDS_BYTES   (1u << 20)  /* one event's JSON fields */
#define STORE_MS_MIN         946684800000LL  /* 2000-01-01: a real clock */
#define STORE_MS_MAX         4102444800000LL /* 2100-01-01 */
#define STORE_OFFSET_MAX_MS (24.0 * 3600 * 1000)  /* larger: not a sample */

/* Weight of a new clock offset sample: a fifth smooths out one slow round
 * trip and still follows a clock step within some ten batches. */
#define STORE_OFFSET_ALPHA   0.2

/* Schema migrations, applied in order; PRAGMA user_version counts how many
 * ran, and step N sets it to N itself (a pragma takes no bound parameter,
 * and we never build SQL with printf). Never edit a shipped step: append. */
static const char *const store_migrations[] = {
    /* 1: agents with their watermark, and events. */
    "CREATE TABLE agents ("
    "  id INTEGER PRIMARY KEY,"
    "  cluster TEXT NOT NULL,"
    "  region TEXT NOT NULL,"
    "  node TEXT NOT NULL,"
    "  epoch INTEGER NOT NULL,"         /* u64 stored as its i64 bits */
    "  acked_seq INTEGER NOT NULL DEFAULT 0," /* highest contiguous seq */
    "  agent_version TEXT NOT NULL DEFAULT '',"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  UNIQUE (cluster, node, epoch));"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id),"
    "  seq INTEGER,"                    /* NULL for collector-made events */
    "  unix_ms INTEGER NOT NULL,"       /* agent clock */
    "  recv_ms INTEGER NOT NULL,"       /* collector clock */
    "  kind TEXT NOT NULL,"
    "  target TEXT,"
    "  data TEXT NOT NULL,"             /* the kind's fields, JSON */
    "  UNIQUE (agent_id, seq));"
    "CREATE INDEX events_time ON events (unix_ms);"
    "PRAGMA user_version = 1;",
    /* 2: per agent, the smoothed clock offset (collector minus agent, ms;
     * NULL until the first batch with a send time) and the last drop
     * report stored, so a repeated report is stored once. */
    "ALTER TABLE agents ADD COLUMN clock_offset_ms REAL;"
    "ALTER TABLE agents ADD COLUMN drop_first_seq INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN drop_last_seq INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN drop_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN drop_last_ms INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 2;",
};
#define STORE_SCHEMA_VERSION \
    ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

struct store {
    char *path;
    pthread_mutex_t wlock;      /* serializes everything on wdb */
    sqlite3 *wdb;               /* under wlock only; WAL */
    sqlite3_stmt *agent_get;    /* prepared on wdb */
    sqlite3_stmt *agent_ins;
    sqlite3_stmt *agent_upd;
    sqlite3_stmt *event_ins;
    sqlite3_stmt *seq_scan;     /* stored seqs above the watermark */
    sqlite3_stmt *seq_range;    /* stored seqs in a range */
    sqlite3_stmt *begin, *commit, *rollback;

    pthread_mutex_t rlock;      /* guards the idle reader list */
    sqlite3 *readers[STORE_READERS];
    size_t n_readers;
};

static int store_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "%s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int store_user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies every migration the file has not seen yet, each in its own
 * transaction together with the new user_version. */
static int store_migrate(sqlite3 *db)
{
    int v, rc;

    rc = store_user_version(db, &v);
    if (rc < 0)
        return rc;
    if (v > STORE_SCHEMA_VERSION) {
        log_msg(LOGL_ERROR, "store", "database schema %d is newer than this "
                "collector (%d)", v, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    for (; v < STORE_SCHEMA_VERSION; v++) {
        int now;

        if (store_exec(db, "BEGIN IMMEDIATE") < 0)
            return -EIO;
        if (store_exec(db, store_migrations[v]) < 0 ||
            store_user_version(db, &now) < 0 || now != v + 1) {
            log_msg(LOGL_ERROR, "store", "migration %d failed", v + 1);
            store_exec(db, "ROLLBACK");
            return -EIO;
        }
        if (store_exec(db, "COMMIT") < 0)
            return -EIO;
        log_msg(LOGL_INFO, "store", "schema migrated to version %d", v + 1);
    }
    return 0;
}

static int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                           NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "prepare: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    return 0;
}

void store_options_default(struct store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->raw_retention_ms = 14LL * 86400 * 1000;
    o->minute_retention_ms = 90LL * 86400 * 1000;
    o->hour_retention_ms = 400LL * 86400 * 1000;
    o->retention_interval_ms = 60 * 1000;
    o->queue_max_batches = 1024;
    o->queue_max_bytes = 64u << 20;
}

int store_open(const char *path, const struct store_options *opts,
               struct store **out)
{
    struct store *st;
    int rc = -EIO;

    (void)opts;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    pthread_mutex_init(&st->wlock, NULL);
    pthread_mutex_init(&st->rlock, NULL);
    st->path = strdup(path);
    if (!st->path) {
        rc = -ENOMEM;
        goto err;
    }
    if (sqlite3_open_v2(path, &st->wdb,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "open %s: %s", path,
                st->wdb ? sqlite3_errmsg(st->wdb) : "out of memory");
        goto err;
    }
    sqlite3_busy_timeout(st->wdb, STORE_BUSY_MS);
    /* WAL: readers never block the writer. synchronous=FULL: a batch is
     * acked only after its commit is on disk, so not even a power cut
     * loses an acked event (NORMAL would survive kill -9 only). */
    if (store_exec(st->wdb, "PRAGMA journal_mode=WAL") < 0 ||
        store_exec(st->wdb, "PRAGMA synchronous=FULL") < 0 ||
        store_exec(st->wdb, "PRAGMA foreign_keys=ON") < 0)
        goto err;
    rc = store_migrate(st->wdb);
    if (rc < 0)
        goto err;
    rc = -EIO;
    if (store_prepare(st->wdb,
                      "SELECT id, acked_seq, clock_offset_ms,"
                      " drop_first_seq, drop_last_seq, drop_count,"
                      " drop_last_ms FROM agents"
                      " WHERE cluster = ?1 AND node = ?2 AND epoch = ?3",
                      &st->agent_get) < 0 ||
        store_prepare(st->wdb,
                      "INSERT INTO agents (cluster, region, node, epoch,"
                      " agent_version, first_seen_ms, last_seen_ms)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                      &st->agent_ins) < 0 ||
        store_prepare(st->wdb,
                      "UPDATE agents SET acked_seq = ?2, region = ?3,"
                      " agent_version = ?4, last_seen_ms = ?5,"
                      " clock_offset_ms = ?6, drop_first_seq = ?7,"
                      " drop_last_seq = ?8, drop_count = ?9,"
                      " drop_last_ms = ?10 WHERE id = ?1",
                      &st->agent_upd) < 0 ||
        store_prepare(st->wdb,
                      "INSERT OR IGNORE INTO events (agent_id, seq, unix_ms,"
                      " recv_ms, kind, target, data)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      &st->event_ins) < 0 ||
        store_prepare(st->wdb,      /* walks the (agent_id, seq) index */
                      "SELECT seq, unix_ms FROM events"
                      " WHERE agent_id = ?1 AND seq > ?2 ORDER BY seq",
                      &st->seq_scan) < 0 ||
        store_prepare(st->wdb,
                      "SELECT seq, unix_ms FROM events WHERE agent_id = ?1"
                      " AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
                      &st->seq_range) < 0 ||
        store_prepare(st->wdb, "BEGIN IMMEDIATE", &st->begin) < 0 ||
        store_prepare(st->wdb, "COMMIT", &st->commit) < 0 ||
        store_prepare(st->wdb, "ROLLBACK", &st->rollback) < 0)
        goto err;
    *out = st;
    return 0;
err:
    store_close(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    sqlite3_finalize(st->agent_get);
    sqlite3_finalize(st->agent_ins);
    sqlite3_finalize(st->agent_upd);
    sqlite3_finalize(st->event_ins);
    sqlite3_finalize(st->seq_scan);
    sqlite3_finalize(st->seq_range);
    sqlite3_finalize(st->begin);
    sqlite3_finalize(st->commit);
    sqlite3_finalize(st->rollback);
    /* Readers first: the last connection to close checkpoints and removes
     * the WAL, and only the writer may. */
    for (size_t i = 0; i < st->n_readers; i++)
        sqlite3_close(st->readers[i]);
    if (st->wdb && sqlite3_close(st->wdb) != SQLITE_OK)
        log_msg(LOGL_ERROR, "store", "close: %s", sqlite3_errmsg(st->wdb));
    pthread_mutex_destroy(&st->wlock);
    pthread_mutex_destroy(&st->rlock);
    free(st->path);
    free(st);
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int store_step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        log_msg(LOGL_ERROR, "store", "%s: %s", sqlite3_sql(s),
                sqlite3_errmsg(sqlite3_db_handle(s)));
        return -EIO;
    }
    return 0;
}

static const char *store_health_name(Sextant__V1__Health h)
{
    switch (h) {
    case SEXTANT__V1__HEALTH__HEALTH_HEALTHY:   return "healthy";
    case SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY: return "unhealthy";
    default:                                    return "unknown";
    }
}

static const char *store_probe_type_name(Sextant__V1__ProbeType t)
{
    switch (t) {
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP:   return "http";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP:    return "tcp";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS:    return "dns";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_METRIC: return "metric";
    case SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE:   return "kube";
    default:                                         return "unknown";
    }
}

static const char *store_phase_name(Sextant__V1__LifecyclePhase p)
{
    switch (p) {
    case SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_START:  return "start";
    case SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_STOP:   return "stop";
    case SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD: return "reload";
    default:                                                   return "unknown";
    }
}

static void store_answers(struct jsonw *w, const char *key,
                          Sextant__V1__DnsAnswer **a, size_t n)
{
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n; i++) {
        jsonw_obj_begin(w);
        jsonw_key(w, "type");
        jsonw_str(w, a[i]->type);
        jsonw_key(w, "value");
        jsonw_str(w, a[i]->value);
        jsonw_key(w, "ttl");
        jsonw_uint(w, a[i]->ttl);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

/* Writes the kind-specific fields of @ev as one JSON object and returns the
 * event's target (borrowed from @ev, NULL when it has none). */
static const char *store_event_fields(const Sextant__V1__Event *ev,
                                      struct jsonw *w)
{
    const char *target = NULL;

    jsonw_obj_begin(w);
    switch (ev->kind_case) {
    case SEXTANT__V1__EVENT__KIND_PROBE: {
        const Sextant__V1__ProbeResult *p = ev->probe;
        const Sextant__V1__Timings *t = p->timings;

        target = p->target;
        jsonw_key(w, "type");
        jsonw_str(w, store_probe_type_name(p->type));
        jsonw_key(w, "ok");
        jsonw_bool(w, p->ok);
        jsonw_key(w, "status");
        jsonw_int(w, p->status);
        jsonw_key(w, "error");
        jsonw_str(w, p->error);
        jsonw_key(w, "dns_us");
        jsonw_uint(w, t ? t->dns_us : 0);
        jsonw_key(w, "connect_us");
        jsonw_uint(w, t ? t->connect_us : 0);
        jsonw_key(w, "tls_us");
        jsonw_uint(w, t ? t->tls_us : 0);
        jsonw_key(w, "first_byte_us");
        jsonw_uint(w, t ? t->first_byte_us : 0);
        jsonw_key(w, "total_us");
        jsonw_uint(w, t ? t->total_us : 0);
        jsonw_key(w, "served_by");
        jsonw_str(w, p->served_by);
        jsonw_key(w, "cert_not_after_ms");
        jsonw_int(w, p->cert_not_after_unix_ms);
        if (p->n_answers > 0)
            store_answers(w, "answers", p->answers, p->n_answers);
        break;
    }
    case SEXTANT__V1__EVENT__KIND_STATE:
        target = ev->state->target;
        jsonw_key(w, "from");
        jsonw_str(w, store_health_name(ev->state->from));
        jsonw_key(w, "to");
        jsonw_str(w, store_health_name(ev->state->to));
        jsonw_key(w, "reason");
        jsonw_str(w, ev->state->reason);
        break;
    case SEXTANT__V1__EVENT__KIND_DNS:
        target = ev->dns->target[0] ? ev->dns->target : ev->dns->name;
        jsonw_key(w, "name");
        jsonw_str(w, ev->dns->name);
        store_answers(w, "old", ev->dns->old_answers,
                      ev->dns->n_old_answers);
        store_answers(w, "new", ev->dns->new_answers,
                      ev->dns->n_new_answers);
        break;
    case SEXTANT__V1__EVENT__KIND_METRIC:
        target = ev->metric->target[0] ? ev->metric->target : NULL;
        jsonw_key(w, "name");
        jsonw_str(w, ev->metric->name);
        jsonw_key(w, "labels");
        jsonw_obj_begin(w);
        for (size_t i = 0; i < ev->metric->n_labels; i++) {
            jsonw_key(w, ev->metric->labels[i]->name);
            jsonw_str(w, ev->metric->labels[i]->value);
        }
        jsonw_obj_end(w);
        jsonw_key(w, "value");
        jsonw_double(w, ev->metric->value);
        break;
    case SEXTANT__V1__EVENT__KIND_FAILOVER:
        jsonw_key(w, "kind");
        jsonw_str(w, ev->failover->kind);
        jsonw_key(w, "from");
        jsonw_str(w, ev->failover->from_region);
        jsonw_key(w, "to");
        jsonw_str(w, ev->failover->to_region);
        jsonw_key(w, "text");
        jsonw_str(w, ev->failover->text);
        break;
    case SEXTANT__V1__EVENT__KIND_LIFECYCLE:
        jsonw_key(w, "phase");
        jsonw_str(w, store_phase_name(ev->lifecycle->phase));
        jsonw_key(w, "version");
        jsonw_str(w, ev->lifecycle->version);
        jsonw_key(w, "detail");
        jsonw_str(w, ev->lifecycle->detail);
        break;
    default:                    /* a kind from a newer agent: keep the row */
        break;
    }
    jsonw_obj_end(w);
    return target && target[0] ? target : NULL;
}

static int store_insert_event(struct store *st, int64_t agent_id,
                              uint64_t seq, int64_t unix_ms, int64_t recv_ms,
                              const char *kind, const char *target,
                              const char *data)
{
    sqlite3_stmt *s = st->event_ins;

    if (sqlite3_bind_int64(s, 1, agent_id) != SQLITE_OK ||
        (seq ? sqlite3_bind_int64(s, 2, (int64_t)seq)
             : sqlite3_bind_null(s, 2)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, unix_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, recv_ms) != SQLITE_OK ||
        sqlite3_bind_text(s, 5, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        (target ? sqlite3_bind_text(s, 6, target, -1, SQLITE_STATIC)
                : sqlite3_bind_null(s, 6)) != SQLITE_OK ||
        sqlite3_bind_text(s, 7, data, -1, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    return store_step_done(s);
}

/* What the store keeps per agent row, read and written once per batch. */
struct store_agent_row {
    int64_t id;
    uint64_t acked;             /* contiguous watermark */
    int has_offset;             /* clock_offset_ms is not NULL */
    double offset_ms;           /* collector clock minus agent clock */
    uint64_t drop_first;        /* the last drop report stored */
    uint64_t drop_last;         /* highest drop seq reported: 0 = none */
    uint64_t drop_count;
    int64_t drop_last_ms;
};

/* A seq range [first, last] some batch explained as dropped. */
struct store_range {
    uint64_t first, last;
};

static int store_ms_ok(int64_t ms)
{
    return ms >= STORE_MS_MIN && ms <= STORE_MS_MAX;
}

/* Events 'from'..'to' are lost and nobody said why. Stored as an event of
 * its own so the timeline shows it. */
static int store_insert_gap_n(struct store *st, int64_t agent_id,
                              uint64_t from, uint64_t to, uint64_t count,
                              int64_t unix_ms, int64_t recv_ms)
{
    char data[96];

    snprintf(data, sizeof(data),
             "{\"from_seq\":%llu,\"to_seq\":%llu,\"count\":%llu}",
             (unsigned long long)from, (unsigned long long)to,
             (unsigned long long)count);
    return store_insert_event(st, agent_id, 0, unix_ms, recv_ms, "gap", NULL,
                              data);
}

static int store_insert_gap(struct store *st, int64_t agent_id,
                            uint64_t from, uint64_t to, int64_t unix_ms,
                            int64_t recv_ms)
{
    return store_insert_gap_n(st, agent_id, from, to, to - from + 1, unix_ms,
                              recv_ms);
}

/* Stores gap events for [from, to] less the ranges in @drops (those have
 * their drop event): one per piece that is left. */
static int store_gaps(struct store *st, int64_t agent_id, uint64_t from,
                      uint64_t to, const struct store_range *drops,
                      size_t n_drops, int64_t unix_ms, int64_t recv_ms)
{
    uint64_t p = from;
    int rc;

    while (p <= to) {
        uint64_t end = to;
        int skipped = 0;

        for (size_t i = 0; i < n_drops; i++) {
            if (drops[i].last < p || drops[i].first > to)
                continue;
            if (drops[i].first <= p) {      /* p is explained: skip it all */
                p = drops[i].last + 1;
                skipped = 1;
                break;
            }
            if (drops[i].first - 1 < end)   /* stop before the next one */
                end = drops[i].first - 1;
        }
        if (skipped) {
            if (p == 0)                     /* wrapped: nothing above */
                break;
            continue;
        }
        rc = store_insert_gap(st, agent_id, p, end, unix_ms, recv_ms);
        if (rc < 0)
            return rc;
        if (end == to)
            break;
        p = end + 1;
    }
    return 0;
}

static int store_insert_drop(struct store *st, int64_t agent_id,
                             uint64_t from, uint64_t to, uint64_t count,
                             int64_t from_ms, int64_t to_ms,
                             int64_t fallback_ms, int64_t recv_ms)
{
    char data[192];

    snprintf(data, sizeof(data),
             "{\"count\":%llu,\"from_seq\":%llu,\"to_seq\":%llu,"
             "\"from_ms\":%lld,\"to_ms\":%lld}",
             (unsigned long long)count, (unsigned long long)from,
             (unsigned long long)to, (long long)from_ms, (long long)to_ms);
    /* On the timeline where the loss began, if the agent said when. */
    return store_insert_event(st, agent_id, 0, from_ms ? from_ms : fallback_ms,
                              recv_ms, "drop", NULL, data);
}

/* Stores drop report @d unless it was stored already: a report that goes
 * no further than the last one (a replay, or the next batch repeating it)
 * adds nothing. A report that extends the last one (the agent kept
 * counting because the Ack of the first got lost) counts only the new
 * part: seqs after the last report, and as count the growth when it
 * counts from the same first seq.
 *
 * The agent reports what it dropped unacked, which this collector may
 * have stored all the same (a batch whose Ack was lost; with several
 * collectors, one another collector lacked): a drop event says what this
 * collector lacks. A contiguous report (count = its seqs) gets one drop
 * event per run of seqs not stored, each exact; any other report, one
 * event spanning the seqs not stored, its count capped by theirs. The
 * times of a run inside the report are bounded by its stored neighbours.
 * Updates @row's drop fields. */
static int store_drop(struct store *st, struct store_agent_row *row,
                      const Sextant__V1__Drops *d, int64_t fallback_ms,
                      int64_t recv_ms)
{
    sqlite3_stmt *s = st->seq_range;
    uint64_t from = d->first_seq, count = d->count, p, missing = 0;
    uint64_t span_from = 0, span_to = 0;
    int64_t from_ms = d->first_unix_ms, to_ms = d->last_unix_ms;
    int64_t prev_ms, span_from_ms = 0, span_to_ms = 0;
    int contiguous, rc = -EIO, step;

    if (d->last_seq <= row->drop_last)
        return 0;
    if (from <= row->drop_last) {
        from = row->drop_last + 1;
        if (d->first_seq == row->drop_first && count > row->drop_count)
            count -= row->drop_count;
        if (count > d->last_seq - row->drop_last)
            count = d->last_seq - row->drop_last;
        from_ms = row->drop_last_ms;        /* the new part is no older */
    }
    if (!store_ms_ok(from_ms))
        from_ms = 0;
    if (!store_ms_ok(to_ms))
        to_ms = 0;
    contiguous = count == d->last_seq - from + 1;
    if (sqlite3_bind_int64(s, 1, row->id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, (int64_t)from) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, (int64_t)d->last_seq) != SQLITE_OK)
        goto out;
    p = from;                       /* the first seq not yet looked at */
    prev_ms = from_ms;
    for (;;) {
        uint64_t next = d->last_seq + 1;    /* past the end: no more rows */
        int64_t next_ms = to_ms;

        step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            next = (uint64_t)sqlite3_column_int64(s, 0);
            next_ms = sqlite3_column_int64(s, 1);
        } else if (step != SQLITE_DONE) {
            goto out;
        }
        if (next > p) {                     /* p .. next-1: not stored */
            if (contiguous) {
                rc = store_insert_drop(st, row->id, p, next - 1, next - p,
                                       prev_ms, next_ms, fallback_ms,
                                       recv_ms);
                if (rc < 0)
                    goto out;
                rc = -EIO;
            } else {
                if (missing == 0) {
                    span_from = p;
                    span_from_ms = prev_ms;
                }
                span_to = next - 1;
                span_to_ms = next_ms;
                missing += next - p;
            }
        }
        if (step == SQLITE_DONE)
            break;
        p = next + 1;
        prev_ms = next_ms;
    }
    if (missing > 0) {
        rc = store_insert_drop(st, row->id, span_from, span_to,
                               count < missing ? count : missing,
                               span_from_ms, span_to_ms, fallback_ms,
                               recv_ms);
        /* The report explains fewer seqs than are missing in its span
         * (some went elsewhere, e.g. a dead letter): the rest is a gap of
         * the same span, so every missing seq is accounted for here. */
        if (rc == 0 && count < missing)
            rc = store_insert_gap_n(st, row->id, span_from, span_to,
                                    missing - count,
                                    span_to_ms ? span_to_ms : fallback_ms,
                                    recv_ms);
        if (rc < 0)
            goto out;
    }
    row->drop_first = d->first_seq;
    row->drop_last = d->last_seq;
    row->drop_count = d->count;
    row->drop_last_ms = to_ms;
    rc = 0;
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "drop report: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* Moves @row's watermark over every stored seq that is now contiguous
 * with it, and over every hole at or below @gone (seqs the agent no
 * longer has): such a hole gets gap events, less the @drops ranges. Stops
 * at the first hole above @gone, which the agent can still fill. */
static int store_advance(struct store *st, struct store_agent_row *row,
                         uint64_t gone, const struct store_range *drops,
                         size_t n_drops, int64_t fallback_ms,
                         int64_t recv_ms)
{
    sqlite3_stmt *s = st->seq_scan;
    uint64_t w = row->acked;
    int rc = -EIO, step;

    if (sqlite3_bind_int64(s, 1, row->id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, (int64_t)w) != SQLITE_OK)
        goto out;
    for (;;) {
        uint64_t next = 0;              /* 0: nothing stored above w */
        int64_t next_ms = fallback_ms;
        uint64_t hole_end;

        step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            next = (uint64_t)sqlite3_column_int64(s, 0);
            next_ms = sqlite3_column_int64(s, 1);
        } else if (step != SQLITE_DONE) {
            goto out;
        }
        if (next != 0 && next == w + 1) {
            w = next;
            continue;
        }
        /* A hole from w + 1 up to before next (or open-ended): what of it
         * lies at or below 'gone' is lost for good. */
        hole_end = next ? next - 1 : gone;
        if (hole_end > gone)
            hole_end = gone;
        if (hole_end > w) {
            rc = store_gaps(st, row->id, w + 1, hole_end, drops, n_drops,
                            next_ms, recv_ms);
            if (rc < 0)
                goto out;
            rc = -EIO;
            w = hole_end;
        }
        if (next == 0 || next != w + 1)
            break;
        w = next;
    }
    row->acked = w;
    rc = 0;
out:
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "watermark: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* Finds or creates the agent row. */
static int store_agent(struct store *st, const Sextant__V1__Batch *b,
                       int64_t recv_ms, struct store_agent_row *row)
{
    sqlite3_stmt *s = st->agent_get;
    int64_t epoch = (int64_t)b->epoch;   /* same 64 bits */
    int rc = -EIO, step;

    memset(row, 0, sizeof(*row));
    if (sqlite3_bind_text(s, 1, b->cluster, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 2, b->node, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, epoch) != SQLITE_OK)
        goto out;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        row->id = sqlite3_column_int64(s, 0);
        row->acked = (uint64_t)sqlite3_column_int64(s, 1);
        row->has_offset = sqlite3_column_type(s, 2) != SQLITE_NULL;
        row->offset_ms = sqlite3_column_double(s, 2);
        row->drop_first = (uint64_t)sqlite3_column_int64(s, 3);
        row->drop_last = (uint64_t)sqlite3_column_int64(s, 4);
        row->drop_count = (uint64_t)sqlite3_column_int64(s, 5);
        row->drop_last_ms = sqlite3_column_int64(s, 6);
        rc = 0;
        goto out;
    }
    if (step != SQLITE_DONE)
        goto out;
    sqlite3_reset(s);
    s = st->agent_ins;
    if (sqlite3_bind_text(s, 1, b->cluster, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 2, b->region, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, b->node, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, epoch) != SQLITE_OK ||
        sqlite3_bind_text(s, 5, b->agent_version, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(s, 6, recv_ms) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_DONE)
        goto out;
    row->id = sqlite3_last_insert_rowid(st->wdb);
    rc = 0;
out:
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "agent row: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* Folds this batch's clock offset sample into @row: collector time at
 * receipt minus agent time at sending, less half the previous round trip
 * (the best guess of the one-way delay). Without a send time, no sample. */
static void store_clock(struct store_agent_row *row,
                        const Sextant__V1__Batch *b, int64_t recv_ms)
{
    double sample;

    if (!store_ms_ok(b->sent_unix_ms))
        return;
    sample = (double)(recv_ms - b->sent_unix_ms) -
             (double)b->prev_rtt_us / 2000.0;
    /* A clock a day off is not skew but a node that booted without time;
     * such a sample would drag the estimate (and widen every corrected
     * query's window) for days. */
    if (sample > STORE_OFFSET_MAX_MS || sample < -STORE_OFFSET_MAX_MS)
        return;
    if (row->has_offset)
        row->offset_ms += STORE_OFFSET_ALPHA * (sample - row->offset_ms);
    else
        row->offset_ms = sample;
    row->has_offset = 1;
}

static int store_agent_update(struct store *st,
                              const struct store_agent_row *row,
                              const Sextant__V1__Batch *b, int64_t recv_ms)
{
    sqlite3_stmt *s = st->agent_upd;

    if (sqlite3_bind_int64(s, 1, row->id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, (int64_t)row->acked) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, b->region, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(s, 4, b->agent_version, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(s, 5, recv_ms) != SQLITE_OK ||
        (row->has_offset ? sqlite3_bind_double(s, 6, row->offset_ms)
                         : sqlite3_bind_null(s, 6)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 7, (int64_t)row->drop_first) != SQLITE_OK ||
        sqlite3_bind_int64(s, 8, (int64_t)row->drop_last) != SQLITE_OK ||
        sqlite3_bind_int64(s, 9, (int64_t)row->drop_count) != SQLITE_OK ||
        sqlite3_bind_int64(s, 10, row->drop_last_ms) != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    return store_step_done(s);
}

static int store_ingest_locked(struct store *st, const Sextant__V1__Batch *b,
                               int64_t recv_ms, uint64_t *acked_seq)
{
    const Sextant__V1__Drops *d = b->drops;
    struct store_agent_row row;
    struct store_range drops[2];
    size_t n_drops = 0;
    struct jsonw w;
    uint64_t gone;
    int64_t fallback_ms;
    int rc;

    rc = store_agent(st, b, recv_ms, &row);
    if (rc < 0)
        return rc;
    /* Where a collector-made event goes on the timeline when nothing
     * better is known: the batch's first event, else its send time. */
    fallback_ms = b->n_events > 0 ? b->events[0]->unix_ms
                  : store_ms_ok(b->sent_unix_ms) ? b->sent_unix_ms
                  : recv_ms;
    if (d && d->count == 0)
        d = NULL;
    /* Dropped ranges are explained losses, never also a gap: this
     * report's, and the last one stored (its range may lie below a
     * watermark that only now moves). */
    if (row.drop_last > 0)
        drops[n_drops++] = (struct store_range){ row.drop_first,
                                                 row.drop_last };
    if (d)
        drops[n_drops++] = (struct store_range){ d->first_seq, d->last_seq };
    if (d) {
        rc = store_drop(st, &row, d, fallback_ms, recv_ms);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < b->n_events; i++) {
        const Sextant__V1__Event *ev = b->events[i];
        const char *target;

        if (ev->seq <= row.acked)       /* stored, or declared lost */
            continue;
        jsonw_init(&w, STORE_FIELDS_BYTES);
        target = store_event_fields(ev, &w);
        rc = w.err ? w.err
                   : store_insert_event(st, row.id, ev->seq, ev->unix_ms,
                                        recv_ms, wire_event_kind(ev), target,
                                        w.buf);
        jsonw_free(&w);
        if (rc < 0)
            return rc;
    }
    /* What the agent no longer has: below oldest_seq when it says so.
     * Older agents do not: then, as before, any jump forward within or
     * after the batch is a loss (they ship in seq order). Dropped seqs
     * are gone either way. */
    if (b->oldest_seq > 0)
        gone = b->oldest_seq - 1;
    else
        gone = b->n_events > 0 ? b->events[b->n_events - 1]->seq - 1 : 0;
    if (!b->oldest_seq && d && d->last_seq > gone)
        gone = d->last_seq;
    rc = store_advance(st, &row, gone, drops, n_drops, fallback_ms, recv_ms);
    if (rc < 0)
        return rc;
    store_clock(&row, b, recv_ms);
    rc = store_agent_update(st, &row, b, recv_ms);
    if (rc == 0)
        *acked_seq = row.acked;
    return rc;
}

int store_ingest(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, uint64_t *acked_seq)
{
    uint64_t acked = 0;
    int rc;

    pthread_mutex_lock(&st->wlock);
    rc = store_step_done(st->begin);
    if (rc == 0) {
        rc = store_ingest_locked(st, b, recv_ms, &acked);
        if (rc == 0)
            rc = store_step_done(st->commit);
        if (rc < 0 && !sqlite3_get_autocommit(st->wdb))
            store_step_done(st->rollback);
    }
    pthread_mutex_unlock(&st->wlock);
    if (rc == 0)
        *acked_seq = acked;
    return rc;
}

/* Interim: synchronous until the writer thread lands. */
int store_submit(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, size_t cost, store_done_fn done,
                 void *ctx)
{
    uint64_t acked = 0;
    int rc;

    (void)cost;
    rc = store_ingest(st, b, recv_ms, &acked);
    done(ctx, rc, acked);
    return 0;
}

int store_wait_ready(struct store *st)
{
    (void)st;
    return 0;
}

const double store_commit_seconds_le[STORE_COMMIT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
const double store_group_batches_le[STORE_GROUP_BUCKETS] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256,
};

void store_stats(struct store *st, struct store_stats *out)
{
    (void)st;
    memset(out, 0, sizeof(*out));
    out->ready = 1;
}

int store_clusters_seen(struct store *st,
                        void (*fn)(void *ctx, const char *cluster,
                                   int64_t last_seen_ms),
                        void *ctx)
{
    (void)st; (void)fn; (void)ctx;
    return 0;
}

int store_latency(struct store *st, const struct store_latency_query *q,
                  char **out, size_t *out_len)
{
    (void)st; (void)q; (void)out; (void)out_len;
    return -ENOSYS;
}

/* Takes an idle read-only connection, or opens one. */
static sqlite3 *store_reader_get(struct store *st)
{
    sqlite3 *db = NULL;

    pthread_mutex_lock(&st->rlock);
    if (st->n_readers > 0)
        db = st->readers[--st->n_readers];
    pthread_mutex_unlock(&st->rlock);
    if (db)
        return db;
    if (sqlite3_open_v2(st->path, &db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "read connection: %s",
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    return db;
}

static void store_reader_put(struct store *st, sqlite3 *db)
{
    pthread_mutex_lock(&st->rlock);
    if (st->n_readers < STORE_READERS) {
        st->readers[st->n_readers++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&st->rlock);
    sqlite3_close(db);
}

/* An event's time on the collector's clock: agent time plus the agent's
 * current offset estimate (none yet: taken as 0). */
#define STORE_OFFSET_SQL "CAST(round(a.clock_offset_ms) AS INTEGER)"
#define STORE_CORRECTED_SQL \
    "(e.unix_ms + coalesce(" STORE_OFFSET_SQL ", 0))"
#define STORE_TIMELINE_SELECT \
    "SELECT json_object(" \
    "  'cluster', a.cluster, 'region', a.region, 'node', a.node," \
    "  'epoch', printf('%016x', a.epoch), 'seq', e.seq," \
    "  'kind', e.kind, 'target', e.target," \
    "  'time_ms', e.unix_ms," \
    "  'time', strftime('%Y-%m-%dT%H:%M:%fZ', e.unix_ms / 1000.0," \
    "                   'unixepoch')," \
    "  'clock_offset_ms', " STORE_OFFSET_SQL "," \
    "  'corrected_ms', " STORE_CORRECTED_SQL "," \
    "  'corrected_time', strftime('%Y-%m-%dT%H:%M:%fZ'," \
    "                   " STORE_CORRECTED_SQL " / 1000.0, 'unixepoch')," \
    "  'received_ms', e.recv_ms," \
    "  'fields', json(e.data))" \
    " FROM events e JOIN agents a ON a.id = e.agent_id"

int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len)
{
    static const char sql_agent[] =
        STORE_TIMELINE_SELECT
        " WHERE e.unix_ms >= ?1 AND e.unix_ms < ?2"
        "   AND (?3 IS NULL OR a.cluster = ?3)"
        " ORDER BY e.unix_ms, e.id LIMIT ?4";
    /* from/to are on the corrected clock too. The time index still
     * narrows the scan: no event is corrected by more than the largest
     * offset of any agent (one scalar subquery, run once). */
    static const char sql_corrected[] =
        "WITH m AS (SELECT coalesce(max(abs("
        "    CAST(round(clock_offset_ms) AS INTEGER))), 0) AS ms FROM agents)"
        STORE_TIMELINE_SELECT
        " WHERE e.unix_ms >= ?1 - (SELECT ms FROM m)"
        "   AND e.unix_ms < ?2 + (SELECT ms FROM m)"
        "   AND " STORE_CORRECTED_SQL " >= ?1"
        "   AND " STORE_CORRECTED_SQL " < ?2"
        "   AND (?3 IS NULL OR a.cluster = ?3)"
        " ORDER BY " STORE_CORRECTED_SQL ", e.id LIMIT ?4";
    const char *sql = q->order == STORE_ORDER_CORRECTED ? sql_corrected
                                                        : sql_agent;
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    unsigned count = 0;
    sqlite3 *db;
    int rc = -EIO, step;

    db = store_reader_get(st);
    if (!db)
        return -EIO;
    jsonw_init(&w, STORE_TIMELINE_BYTES + 64);   /* room to close it */
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(s, 1, q->from_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, q->to_ms) != SQLITE_OK ||
        (q->cluster ? sqlite3_bind_text(s, 3, q->cluster, -1, SQLITE_STATIC)
                    : sqlite3_bind_null(s, 3)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, (int64_t)q->limit + 1) != SQLITE_OK)
        goto out;
    jsonw_obj_begin(&w);
    jsonw_key(&w, "events");
    jsonw_arr_begin(&w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW && count < q->limit) {
        /* The reply stops at a whole row before its cap, marked truncated,
         * rather than failing: the caller narrows the window and goes on. */
        if (w.len + (size_t)sqlite3_column_bytes(s, 0) + 64 >
            STORE_TIMELINE_BYTES)
            break;
        jsonw_value(&w, (const char *)sqlite3_column_text(s, 0));
        count++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    jsonw_arr_end(&w);
    jsonw_key(&w, "count");
    jsonw_uint(&w, count);
    jsonw_key(&w, "truncated");
    jsonw_bool(&w, step == SQLITE_ROW);  /* a row past the limit exists */
    jsonw_obj_end(&w);
    rc = w.err;
    if (rc == 0) {
        *out = jsonw_take(&w, out_len);
        rc = *out ? 0 : -ENOMEM;
    }
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "timeline: %s", sqlite3_errmsg(db));
    jsonw_free(&w);
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}
