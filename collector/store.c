/* store.c -- SQLite schema, migrations, the writer thread, rollups,
 * retention and the queries. Does not parse HTTP or protobuf (see
 * server.c, proto/wire.c); it takes decoded, validated batches (ingest.c
 * also caps every seq at INT64_MAX, which SQLite's integers need).
 *
 * Writer: one thread owns the write connection. Batches wait in a queue
 * (bounded in count and bytes: past it store_submit refuses and agents
 * back off) and are committed in groups: one transaction holds many
 * agents' batches, each inside a savepoint so a batch that fails is rolled
 * back alone, and every batch of the group is answered once the COMMIT is
 * on disk (synchronous=FULL). One fsync then serves many requests.
 * Between groups the writer deletes expired rows in small transactions,
 * so retention never holds the write lock for long.
 *
 * Delivery, per agent (cluster, node, epoch): events are stored whatever
 * their order of arrival, once each (UNIQUE (agent_id, seq), INSERT OR
 * IGNORE), and agents.acked_seq is the highest seq below which nothing is
 * missing any more: stored, or declared lost by a "gap" or "drop" event.
 * The agent drains its backlog newest and oldest in alternation, so holes
 * above the watermark are normal and fill later; only what the batch says
 * the agent no longer has (below Batch.oldest_seq) is declared lost.
 *
 * Schema: strings that repeat (cluster, kind, target, error text) live
 * once in dimension tables; an event row holds their ids. Probe results
 * also feed per cluster, target and minute rollups (count, failures, a
 * log-bucket latency histogram, see hist.h) and hour rollups, updated in
 * the same transaction as the events they count.
 *
 * Health: the writer first runs a time-bounded PRAGMA quick_check. A
 * damaged file (found then, or as SQLITE_CORRUPT / SQLITE_NOTADB by any
 * later read or write) puts the store in a corrupt state for good, which
 * store_stats reports and every submit and failed query answers with
 * -EUCLEAN; a group commit that stores nothing marks commits failing
 * until one stores a batch or, with no batch coming, the idle writer's
 * probe commit succeeds. */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hist.h"
#include "jsonw.h"
#include "log.h"
#include "util.h"

#define STORE_READERS        8           /* idle read connections kept */
#define STORE_BUSY_MS        5000
#define STORE_TIMELINE_BYTES (64u << 20) /* reply cap */
#define STORE_FIELDS_BYTES   (1u << 20)  /* one event's JSON fields */
#define STORE_MS_MIN         946684800000LL  /* 2000-01-01: a real clock */
#define STORE_MS_MAX         4102444800000LL /* 2100-01-01 */
#define STORE_OFFSET_MAX_MS (24.0 * 3600 * 1000)  /* larger: not a sample */
#define STORE_MINUTE_MS      60000LL
#define STORE_HOUR_MS        3600000LL

/* A group commit takes queued batches until it holds this many events or
 * batches: big enough that one fsync serves many agents, small enough
 * that the first of them is not kept waiting for long. */
#define STORE_GROUP_EVENTS   20000u
#define STORE_GROUP_BATCHES  512u
/* Retention deletes at most this many rows per transaction, then lets
 * queued batches in; vacuum frees this many pages per step. */
#define STORE_DELETE_ROWS    2000
#define STORE_VACUUM_PAGES   512
/* Interned strings cached per dimension table (then the cache restarts). */
#define STORE_DIM_CACHE      4096u
/* WAL pages that make the writer checkpoint (SQLite's default). */
#define STORE_WAL_PAGES      1000
/* Migration 3 rolls up older events this many at a time. */
#define STORE_BACKFILL_CHUNK 100000u

/* Clock offset, per agent, as NTP's clock filter does it: the last
 * STORE_CLOCK_WINDOW samples (agents.clock_window, so a restart keeps
 * them) and, of those near the window's median, the one with the smallest
 * round trip: its one-way delay guess (RTT/2) is off by the least. A
 * sample's error is up to half its RTT; over STORE_RTT_MAX_US it says
 * nothing useful about the clock (and 2^32-1 us would move it by 36
 * minutes), so it is not taken at all. 10 s: such a sample may be off by
 * 5 s, too coarse to order failover events (the agent waits up to 30 s
 * for a POST, so longer round trips do happen, on a congested link).
 * A sample further than its own RTT/2 plus STORE_OFFSET_SPIKE_MS from the
 * median is a spike and not chosen; once most of the window agrees on a
 * new offset (a real clock step), the median moves and the estimate
 * follows, some five batches later. */
#define STORE_CLOCK_WINDOW    8
#define STORE_CLOCK_SAMPLE    12            /* bytes: i64 offset_us, u32 rtt */
#define STORE_RTT_MAX_US      10000000u
#define STORE_OFFSET_SPIKE_MS 1000.0
/* PRAGMA quick_check at start stops after this long: it reads every page
 * (measured: 2.6 s for a 458 MB file in the page cache on a busy 2-core
 * machine, 0.9 s of it CPU; so some 5 s per GiB, more from a cold disk),
 * and a collector must not stay unready for minutes on a huge file. The
 * schema-and-last-pages check would be cheaper but misses a damaged page
 * in the middle of events, where most of the file is. */
#define STORE_CHECK_MS        10000
/* While commits fail and no batch comes to show they work again (an
 * unready collector gets none behind a readiness probe), the idle writer
 * tries a real commit this often. It inserts and deletes a text of
 * STORE_PROBE_BYTES random bytes (hex: twice that), so the commit writes
 * new pages to the WAL as a batch does; rewriting one page in place could
 * succeed on a full disk while every batch fails. */
#define STORE_PROBE_MS        1000
#define STORE_PROBE_BYTES     4096

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
    /* 3: dimension tables; events hold ids, with the probe's error (or
     * the state change's reason) interned in texts and left out of data;
     * indexes per time, target, kind and agent; minute and hour rollups
     * (filled from the old events by store_backfill_rollups). */
    "CREATE TABLE clusters (id INTEGER PRIMARY KEY, name TEXT NOT NULL"
    "  UNIQUE);"
    "CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE targets (id INTEGER PRIMARY KEY, name TEXT NOT NULL"
    "  UNIQUE);"
    "CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);"
    "INSERT INTO clusters (name) SELECT DISTINCT cluster FROM agents;"
    "ALTER TABLE agents ADD COLUMN cluster_id INTEGER REFERENCES clusters(id);"
    "UPDATE agents SET cluster_id ="
    "  (SELECT id FROM clusters WHERE name = agents.cluster);"
    "INSERT INTO kinds (name) SELECT DISTINCT kind FROM events;"
    "INSERT INTO targets (name) SELECT DISTINCT target FROM events"
    "  WHERE target IS NOT NULL;"
    "INSERT OR IGNORE INTO texts (text)"
    "  SELECT json_extract(data, CASE kind WHEN 'state' THEN '$.reason'"
    "                                      ELSE '$.error' END) AS x"
    "  FROM events WHERE kind IN ('probe', 'state') AND x <> '';"
    "CREATE TABLE events3 ("
    "  id INTEGER PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id),"
    "  seq INTEGER,"
    "  unix_ms INTEGER NOT NULL,"
    "  recv_ms INTEGER NOT NULL,"
    "  kind_id INTEGER NOT NULL REFERENCES kinds(id),"
    "  target_id INTEGER REFERENCES targets(id),"
    "  text_id INTEGER REFERENCES texts(id),"
    "  data TEXT NOT NULL,"
    "  UNIQUE (agent_id, seq));"
    "INSERT INTO events3 SELECT e.id, e.agent_id, e.seq, e.unix_ms,"
    "  e.recv_ms, k.id, t.id, x.id,"
    "  CASE WHEN x.id IS NULL THEN e.data"
    "       WHEN e.kind = 'state' THEN json_remove(e.data, '$.reason')"
    "       ELSE json_remove(e.data, '$.error') END"
    "  FROM events e JOIN kinds k ON k.name = e.kind"
    "  LEFT JOIN targets t ON t.name = e.target"
    "  LEFT JOIN texts x ON e.kind IN ('probe', 'state') AND x.text ="
    "    json_extract(e.data, CASE e.kind WHEN 'state' THEN '$.reason'"
    "                                     ELSE '$.error' END);"
    "DROP TABLE events;"
    "ALTER TABLE events3 RENAME TO events;"
    "CREATE INDEX events_time ON events (unix_ms);"
    "CREATE INDEX events_target ON events (target_id, unix_ms);"
    "CREATE INDEX events_kind ON events (kind_id, unix_ms);"
    "CREATE INDEX events_agent ON events (agent_id, unix_ms);"
    "CREATE TABLE rollup_minute ("
    "  target_id INTEGER NOT NULL,"
    "  cluster_id INTEGER NOT NULL,"
    "  t INTEGER NOT NULL,"             /* start of the minute, agent ms */
    "  count INTEGER NOT NULL,"         /* probe results */
    "  failures INTEGER NOT NULL,"
    "  hist BLOB NOT NULL,"             /* successful probes' total_us */
    "  PRIMARY KEY (target_id, cluster_id, t)) WITHOUT ROWID;"
    "CREATE INDEX rollup_minute_t ON rollup_minute (t);"
    "CREATE TABLE rollup_hour ("
    "  target_id INTEGER NOT NULL,"
    "  cluster_id INTEGER NOT NULL,"
    "  t INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL,"
    "  hist BLOB NOT NULL,"
    "  PRIMARY KEY (target_id, cluster_id, t)) WITHOUT ROWID;"
    "CREATE INDEX rollup_hour_t ON rollup_hour (t);"
    /* For people with the sqlite3 shell: events with their strings. */
    "CREATE VIEW events_full AS SELECT e.id, e.agent_id, e.seq, e.unix_ms,"
    "  e.recv_ms, k.name AS kind, tg.name AS target,"
    "  CASE WHEN e.text_id IS NULL THEN e.data"
    "    ELSE json_set(e.data, CASE k.name WHEN 'state' THEN '$.reason'"
    "                          ELSE '$.error' END, x.text) END AS data"
    "  FROM events e JOIN kinds k ON k.id = e.kind_id"
    "  LEFT JOIN targets tg ON tg.id = e.target_id"
    "  LEFT JOIN texts x ON x.id = e.text_id;"
    "PRAGMA user_version = 3;",
    /* 4: texts no event uses any more are deleted by retention, which
     * needs events by text (only rows with a text pay for it); latency
     * over every cluster reads rollups by target and time. */
    "CREATE INDEX events_text ON events (text_id) WHERE text_id IS NOT NULL;"
    "CREATE INDEX rollup_minute_target_t ON rollup_minute (target_id, t);"
    "CREATE INDEX rollup_hour_target_t ON rollup_hour (target_id, t);"
    "PRAGMA user_version = 4;",
    /* 5: the agent's recent clock offset samples (see store_clock), so
     * the estimate's filter survives a restart; NULL: none yet. */
    /* Parenthesised: clang takes two adjacent literals in an array for a
     * missing comma. */
    ("ALTER TABLE agents ADD COLUMN clock_window BLOB;"
     "PRAGMA user_version = 5;"),
};
#define STORE_SCHEMA_VERSION \
    ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

/* An interned-string table (clusters, kinds, targets, texts): prepared
 * lookup and insert, and a cache of recent strings to ids. The cache may
 * hold ids of rows a rolled-back transaction inserted: store_dims_reset()
 * empties every cache after any rollback. */
struct store_dim_slot {
    char *s;                    /* NULL: empty */
    int64_t id;
};

struct store_dim {
    sqlite3_stmt *sel, *ins;
    struct store_dim_slot *slots;       /* STORE_DIM_CACHE * 2, open
                                         * addressing */
    size_t used;
};

enum { DIM_CLUSTER, DIM_KIND, DIM_TARGET, DIM_TEXT, DIM_COUNT };

/* One probe result stored in the current group, for the rollups. */
struct store_sample {
    int64_t target_id, cluster_id;
    int64_t minute;             /* start of its minute, ms */
    uint64_t total_us;
    int ok;
};

enum store_job_type {
    JOB_BATCH,
    JOB_RETENTION,              /* run retention to the end, at job->now */
};

/* A queued request for the writer. */
struct store_job {
    enum store_job_type type;
    const Sextant__V1__Batch *b;        /* borrowed until done runs */
    int64_t recv_ms;                    /* JOB_RETENTION: "now" */
    size_t cost;
    store_done_fn done;
    void *ctx;
    int rc;
    uint64_t acked;
    struct store_job *next;
};

/* A rollup table's prepared statements. */
struct store_rollup {
    sqlite3_stmt *get, *put, *upd, *expire;
};

struct store {
    char *path;
    struct store_options opt;

    /* Everything on wdb and below belongs to the writer thread (and to
     * store_open/store_close before it starts and after it ends). */
    sqlite3 *wdb;               /* WAL */
    sqlite3_stmt *agent_get;
    sqlite3_stmt *agent_ins;
    sqlite3_stmt *agent_upd;
    sqlite3_stmt *event_ins;
    sqlite3_stmt *seq_scan;     /* stored seqs above the watermark */
    sqlite3_stmt *seq_range;    /* stored seqs in a range */
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *sp_begin, *sp_release, *sp_rollback;
    sqlite3_stmt *events_expire;
    sqlite3_stmt *texts_window, *texts_expire;
    sqlite3_stmt *probe_ins, *probe_del;    /* the commits-failing probe */
    struct store_dim dims[DIM_COUNT];
    struct store_rollup minute, hour;
    struct store_sample *samples;       /* this group's probe results */
    size_t n_samples, cap_samples;
    int64_t retention_next_ms;  /* when to look for expired rows again */
    int64_t retention_now_ms;   /* the pass under way: 0 = none */
    int retention_done;         /* bit per table done in this pass */
    int64_t retention_free_pages;   /* free pages before the last vacuum
                                     * step */
    int64_t retention_text_id;  /* texts looked at up to this id */
    int wal_pages;              /* in the WAL after the last commit */
    int64_t probe_next_ms;      /* next commit probe while commits fail */

    pthread_t writer;
    int writer_started;

    /* The queue, and what others read of the writer's state. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;       /* writer: a job, or closing */
    pthread_cond_t rcond;       /* waiters: ready changed, a job done */
    struct store_job *head, *tail;
    size_t q_batches, q_bytes;
    int closing;
    int ready;                  /* 0 migrating, 1 ready, -errno failed */
    struct store_stats stats;   /* counters, under qlock */

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

/* The first column of the first row of @sql, an integer pragma. */
static int store_pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int store_user_version(sqlite3 *db, int *out)
{
    int64_t v;

    if (store_pragma_int(db, "PRAGMA user_version", &v) < 0)
        return -EIO;
    *out = (int)v;
    return 0;
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

static int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                           NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "prepare: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    return 0;
}

/* Enters the corrupt state, once: one log line says what to do. */
static void store_set_corrupt(struct store *st, const char *why)
{
    int first;

    pthread_mutex_lock(&st->qlock);
    first = !st->stats.corrupt;
    if (first) {
        st->stats.corrupt = 1;
        snprintf(st->stats.corrupt_reason, sizeof(st->stats.corrupt_reason),
                 "%s", why);
    }
    pthread_mutex_unlock(&st->qlock);
    if (first)
        log_msg(LOGL_ERROR, "store", "database %s is corrupt (%s): ingest "
                "and queries answer 500 until it is replaced; stop the "
                "collector and restore the last backup (sextant-collector "
                "backup, see README)", st->path, why);
}

/* When @db's last error says the file is damaged (SQLITE_CORRUPT,
 * SQLITE_NOTADB), enters the corrupt state: 1. Else 0. Retrying cannot
 * fix such a file, so callers answer -EUCLEAN, not "try again". */
static int store_check_corrupt(struct store *st, sqlite3 *db)
{
    int code = sqlite3_errcode(db);

    if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB)
        return 0;
    store_set_corrupt(st, sqlite3_errmsg(db));
    return 1;
}

static int64_t store_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int store_ms_ok(int64_t ms)
{
    return ms >= STORE_MS_MIN && ms <= STORE_MS_MAX;
}

/* Floor of @ms to a multiple of @step (ms are positive here: >= 2000). */
static int64_t store_floor(int64_t ms, int64_t step)
{
    return ms - ms % step;
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
 * event's target (borrowed from @ev, NULL when it has none). A probe's
 * error or a state change's reason that is not empty goes to *text
 * instead (borrowed; interned, and put back into the fields on reading);
 * otherwise *text is NULL. */
static const char *store_event_fields(const Sextant__V1__Event *ev,
                                      struct jsonw *w, const char **text)
{
    const char *target = NULL;

    *text = NULL;
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
        if (p->error[0]) {
            *text = p->error;
        } else {
            jsonw_key(w, "error");
            jsonw_str(w, "");
        }
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
        if (ev->state->reason[0]) {
            *text = ev->state->reason;
        } else {
            jsonw_key(w, "reason");
            jsonw_str(w, "");
        }
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

static int store_intern(struct store *st, int dim, const char *s,
                        int64_t *id);

/* One event row to insert; the strings are borrowed. */
struct store_event_row {
    int64_t agent_id;
    uint64_t seq;               /* 0: a collector-made event */
    int64_t unix_ms, recv_ms;
    const char *kind;
    const char *target;         /* NULL: none */
    const char *text;           /* NULL: none */
    const char *data;
    int64_t target_id;          /* out: 0 when no target */
};

/* Inserts @e unless its (agent, seq) is stored already: 1 inserted, 0
 * already there, -EIO. */
static int store_insert_event(struct store *st, struct store_event_row *e)
{
    sqlite3_stmt *s = st->event_ins;
    int64_t kind_id, text_id = 0;

    e->target_id = 0;
    if (store_intern(st, DIM_KIND, e->kind, &kind_id) < 0 ||
        (e->target &&
         store_intern(st, DIM_TARGET, e->target, &e->target_id) < 0) ||
        (e->text && store_intern(st, DIM_TEXT, e->text, &text_id) < 0))
        return -EIO;
    if (sqlite3_bind_int64(s, 1, e->agent_id) != SQLITE_OK ||
        (e->seq ? sqlite3_bind_int64(s, 2, (int64_t)e->seq)
                : sqlite3_bind_null(s, 2)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, e->unix_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 4, e->recv_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 5, kind_id) != SQLITE_OK ||
        (e->target_id ? sqlite3_bind_int64(s, 6, e->target_id)
                      : sqlite3_bind_null(s, 6)) != SQLITE_OK ||
        (text_id ? sqlite3_bind_int64(s, 7, text_id)
                 : sqlite3_bind_null(s, 7)) != SQLITE_OK ||
        sqlite3_bind_text(s, 8, e->data, -1, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    if (store_step_done(s) < 0)
        return -EIO;
    return sqlite3_changes(st->wdb) > 0;
}

/* Inserts an event the collector made (gap, drop): no seq, no target. */
static int store_insert_note(struct store *st, int64_t agent_id,
                             const char *kind, int64_t unix_ms,
                             int64_t recv_ms, const char *data)
{
    struct store_event_row e = {
        .agent_id = agent_id, .unix_ms = unix_ms, .recv_ms = recv_ms,
        .kind = kind, .data = data,
    };

    return store_insert_event(st, &e) < 0 ? -EIO : 0;
}

/* One clock offset sample: collector minus agent clock, and the round
 * trip it was corrected by (0: the agent did not know one yet). */
struct store_clock_sample {
    int64_t offset_us;
    uint32_t rtt_us;
};

/* What the store keeps per agent row, read and written once per batch. */
struct store_agent_row {
    int64_t id;
    int64_t cluster_id;
    uint64_t acked;             /* contiguous watermark */
    int has_offset;             /* clock_offset_ms is not NULL */
    double offset_ms;           /* collector clock minus agent clock */
    struct store_clock_sample win[STORE_CLOCK_WINDOW];  /* oldest first */
    size_t n_win;
    uint64_t drop_first;        /* the last drop report stored */
    uint64_t drop_last;         /* highest drop seq reported: 0 = none */
    uint64_t drop_count;
    int64_t drop_last_ms;
};

/* A seq range [first, last] some batch explained as dropped. */
struct store_range {
    uint64_t first, last;
};

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
    return store_insert_note(st, agent_id, "gap", unix_ms, recv_ms, data);
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
    return store_insert_note(st, agent_id, "drop",
                             from_ms ? from_ms : fallback_ms, recv_ms, data);
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

/* agents.clock_window: STORE_CLOCK_SAMPLE bytes per sample, little-endian
 * whatever the host, oldest first. What does not parse is dropped. */
static void store_clock_load(struct store_agent_row *row, const void *blob,
                             size_t len)
{
    const uint8_t *p = blob;

    row->n_win = 0;
    if (!p || len % STORE_CLOCK_SAMPLE != 0 ||
        len > STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE)
        return;
    for (; len > 0; len -= STORE_CLOCK_SAMPLE, p += STORE_CLOCK_SAMPLE) {
        struct store_clock_sample *c = &row->win[row->n_win++];
        uint64_t o = 0;
        uint32_t r = 0;

        for (int i = 7; i >= 0; i--)
            o = o << 8 | p[i];
        for (int i = 11; i >= 8; i--)
            r = r << 8 | p[i];
        c->offset_us = (int64_t)o;
        c->rtt_us = r;
    }
}

static size_t store_clock_save(const struct store_agent_row *row,
                               uint8_t out[STORE_CLOCK_WINDOW *
                                           STORE_CLOCK_SAMPLE])
{
    uint8_t *p = out;

    for (size_t k = 0; k < row->n_win; k++, p += STORE_CLOCK_SAMPLE) {
        uint64_t o = (uint64_t)row->win[k].offset_us;
        uint32_t r = row->win[k].rtt_us;

        for (int i = 0; i < 8; i++, o >>= 8)
            p[i] = (uint8_t)o;
        for (int i = 8; i < 12; i++, r >>= 8)
            p[i] = (uint8_t)r;
    }
    return row->n_win * STORE_CLOCK_SAMPLE;
}

/* Finds or creates the agent row. */
static int store_agent(struct store *st, const Sextant__V1__Batch *b,
                       int64_t recv_ms, struct store_agent_row *row)
{
    sqlite3_stmt *s = st->agent_get;
    int64_t epoch = (int64_t)b->epoch;   /* same 64 bits */
    int rc = -EIO, step;

    memset(row, 0, sizeof(*row));
    if (store_intern(st, DIM_CLUSTER, b->cluster, &row->cluster_id) < 0)
        return -EIO;
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
        store_clock_load(row, sqlite3_column_blob(s, 7),
                         (size_t)sqlite3_column_bytes(s, 7));
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
        sqlite3_bind_int64(s, 6, recv_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 7, row->cluster_id) != SQLITE_OK)
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

/* The estimate from a window of @n > 0 samples (oldest first): of those
 * within their RTT/2 plus STORE_OFFSET_SPIKE_MS of the median offset (all
 * of them while fewer than 3: no majority yet), the one with the smallest
 * RTT, the newest on a tie. An unknown RTT ranks as the largest allowed.
 * The median itself always qualifies. With an even @n the median is the
 * older of the two middle samples: taking always the lower (or upper) one
 * would follow a step down (or up) once half the window, not most of it,
 * agrees; the older one moves only with a strict majority either way. */
static double store_clock_pick(const struct store_clock_sample *w, size_t n)
{
    size_t order[STORE_CLOCK_WINDOW], mid;  /* indexes by offset */
    int64_t median;
    uint32_t best_rank = UINT32_MAX;
    size_t best = n - 1;

    for (size_t i = 0; i < n; i++) {
        size_t k = i;

        while (k > 0 && w[order[k - 1]].offset_us > w[i].offset_us) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    mid = order[(n - 1) / 2];
    if (n % 2 == 0 && order[n / 2] < mid)
        mid = order[n / 2];
    median = w[mid].offset_us;
    for (size_t i = n; i-- > 0;) {
        uint32_t rank = w[i].rtt_us ? w[i].rtt_us : STORE_RTT_MAX_US;
        double off = fabs((double)(w[i].offset_us - median)) / 1000.0;

        if (n >= 3 && off > rank / 2000.0 + STORE_OFFSET_SPIKE_MS)
            continue;
        if (rank < best_rank) {
            best_rank = rank;
            best = i;
        }
    }
    return (double)w[best].offset_us / 1000.0;
}

/* Adds this batch's clock offset sample to @row's window and picks the
 * estimate again: collector time at receipt minus agent time at sending,
 * less half the previous round trip (the best guess of the one-way
 * delay). Without a send time, or with a round trip over the cap, no
 * sample. */
static void store_clock(struct store_agent_row *row,
                        const Sextant__V1__Batch *b, int64_t recv_ms)
{
    double sample;

    if (!store_ms_ok(b->sent_unix_ms) || b->prev_rtt_us > STORE_RTT_MAX_US)
        return;
    sample = (double)(recv_ms - b->sent_unix_ms) -
             (double)b->prev_rtt_us / 2000.0;
    /* A clock a day off is not skew but a node that booted without time;
     * such a sample would drag the estimate (and widen every corrected
     * query's window) for days. */
    if (sample > STORE_OFFSET_MAX_MS || sample < -STORE_OFFSET_MAX_MS)
        return;
    if (row->n_win == STORE_CLOCK_WINDOW) {
        memmove(row->win, row->win + 1,
                (STORE_CLOCK_WINDOW - 1) * sizeof(row->win[0]));
        row->n_win--;
    }
    row->win[row->n_win].offset_us = llround(sample * 1000.0);
    row->win[row->n_win].rtt_us = b->prev_rtt_us;
    row->n_win++;
    row->offset_ms = store_clock_pick(row->win, row->n_win);
    row->has_offset = 1;
}

static int store_agent_update(struct store *st,
                              const struct store_agent_row *row,
                              const Sextant__V1__Batch *b, int64_t recv_ms)
{
    sqlite3_stmt *s = st->agent_upd;
    uint8_t win[STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE];
    size_t win_len = store_clock_save(row, win);

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
        sqlite3_bind_int64(s, 10, row->drop_last_ms) != SQLITE_OK ||
        (win_len ? sqlite3_bind_blob(s, 11, win, (int)win_len,
                                     SQLITE_STATIC)
                 : sqlite3_bind_null(s, 11)) != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return -EIO;
    }
    return store_step_done(s);
}

static int store_sample(struct store *st, const struct store_agent_row *row,
                        const struct store_event_row *e,
                        const Sextant__V1__ProbeResult *p);

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
        struct store_event_row e = {
            .agent_id = row.id, .seq = ev->seq, .unix_ms = ev->unix_ms,
            .recv_ms = recv_ms, .kind = wire_event_kind(ev),
        };

        if (ev->seq <= row.acked)       /* stored, or declared lost */
            continue;
        jsonw_init(&w, STORE_FIELDS_BYTES);
        e.target = store_event_fields(ev, &w, &e.text);
        e.data = w.buf;
        rc = w.err ? w.err : store_insert_event(st, &e);
        jsonw_free(&w);
        if (rc < 0)
            return rc;
        if (rc == 1 && ev->kind_case == SEXTANT__V1__EVENT__KIND_PROBE &&
            e.target_id) {
            rc = store_sample(st, &row, &e, ev->probe);
            if (rc < 0)
                return rc;
        }
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


/* ---- interned strings ---- */

static const char *const store_dim_sql[DIM_COUNT][2] = {
    { "SELECT id FROM clusters WHERE name = ?1",
      "INSERT INTO clusters (name) VALUES (?1)" },
    { "SELECT id FROM kinds WHERE name = ?1",
      "INSERT INTO kinds (name) VALUES (?1)" },
    { "SELECT id FROM targets WHERE name = ?1",
      "INSERT INTO targets (name) VALUES (?1)" },
    { "SELECT id FROM texts WHERE text = ?1",
      "INSERT INTO texts (text) VALUES (?1)" },
};

static uint64_t store_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void store_dim_reset(struct store_dim *d)
{
    if (!d->slots)
        return;
    for (size_t i = 0; i < STORE_DIM_CACHE * 2; i++) {
        free(d->slots[i].s);
        d->slots[i].s = NULL;
    }
    d->used = 0;
}

/* After a rollback: ids cached since the last commit may be gone. */
static void store_dims_reset(struct store *st)
{
    for (int i = 0; i < DIM_COUNT; i++)
        store_dim_reset(&st->dims[i]);
}

static struct store_dim_slot *store_dim_slot(struct store_dim *d,
                                             const char *s)
{
    size_t mask = STORE_DIM_CACHE * 2 - 1, i = store_hash(s) & mask;

    while (d->slots[i].s && strcmp(d->slots[i].s, s) != 0)
        i = (i + 1) & mask;
    return &d->slots[i];
}

/* The id of @s in dimension @dim, inserted if new. */
static int store_intern(struct store *st, int dim, const char *s,
                        int64_t *id)
{
    struct store_dim *d = &st->dims[dim];
    struct store_dim_slot *slot;
    int step;

    slot = store_dim_slot(d, s);
    if (slot->s) {
        *id = slot->id;
        return 0;
    }
    if (sqlite3_bind_text(d->sel, 1, s, -1, SQLITE_STATIC) != SQLITE_OK)
        return -EIO;
    step = sqlite3_step(d->sel);
    if (step == SQLITE_ROW)
        *id = sqlite3_column_int64(d->sel, 0);
    sqlite3_reset(d->sel);
    sqlite3_clear_bindings(d->sel);
    if (step != SQLITE_ROW) {
        if (step != SQLITE_DONE ||
            sqlite3_bind_text(d->ins, 1, s, -1, SQLITE_STATIC) != SQLITE_OK ||
            store_step_done(d->ins) < 0)
            return -EIO;
        *id = sqlite3_last_insert_rowid(st->wdb);
    }
    if (d->used >= STORE_DIM_CACHE) {   /* full: start over */
        store_dim_reset(d);
        slot = store_dim_slot(d, s);
    }
    slot->s = strdup(s);
    if (slot->s) {                      /* else: not cached, still right */
        slot->id = *id;
        d->used++;
    }
    return 0;
}

/* ---- rollups ---- */

/* A new slot at the end of this group's samples; NULL when out of memory. */
static struct store_sample *store_sample_new(struct store *st)
{
    if (st->n_samples == st->cap_samples) {
        size_t cap = st->cap_samples ? st->cap_samples * 2 : 1024;
        struct store_sample *n = realloc(st->samples, cap * sizeof(*n));

        if (!n)
            return NULL;
        st->samples = n;
        st->cap_samples = cap;
    }
    return &st->samples[st->n_samples++];
}

static int store_sample(struct store *st, const struct store_agent_row *row,
                        const struct store_event_row *e,
                        const Sextant__V1__ProbeResult *p)
{
    struct store_sample *sm = store_sample_new(st);

    if (!sm)
        return -ENOMEM;
    sm->target_id = e->target_id;
    sm->cluster_id = row->cluster_id;
    sm->minute = store_floor(e->unix_ms, STORE_MINUTE_MS);
    sm->total_us = p->timings ? p->timings->total_us : 0;
    sm->ok = p->ok;
    return 0;
}

static int store_sample_cmp(const void *pa, const void *pb)
{
    const struct store_sample *a = pa, *b = pb;

    if (a->target_id != b->target_id)
        return a->target_id < b->target_id ? -1 : 1;
    if (a->cluster_id != b->cluster_id)
        return a->cluster_id < b->cluster_id ? -1 : 1;
    if (a->minute != b->minute)
        return a->minute < b->minute ? -1 : 1;
    return 0;
}

/* A rollup row's worth of new probe results. */
struct store_delta {
    int64_t target_id, cluster_id, t;
    uint64_t count, failures;
    struct hist h;
};

/* Adds @d to its row of @r: read, merge, write back. */
static int store_rollup_add(struct store_rollup *r,
                            const struct store_delta *d)
{
    sqlite3_stmt *g = r->get, *p = r->put;
    uint64_t count = d->count, failures = d->failures;
    struct hist h;
    uint8_t *blob = NULL;
    size_t len;
    int rc = -EIO, step;

    hist_init(&h);
    if (sqlite3_bind_int64(g, 1, d->target_id) != SQLITE_OK ||
        sqlite3_bind_int64(g, 2, d->cluster_id) != SQLITE_OK ||
        sqlite3_bind_int64(g, 3, d->t) != SQLITE_OK)
        goto out;
    step = sqlite3_step(g);
    if (step == SQLITE_ROW) {
        p = r->upd;
        count += (uint64_t)sqlite3_column_int64(g, 0);
        failures += (uint64_t)sqlite3_column_int64(g, 1);
        /* A corrupt blob loses that row's old latencies, not the batch:
         * the counts stay right and the log says so. */
        if (hist_merge_blob(&h, sqlite3_column_blob(g, 2),
                            (size_t)sqlite3_column_bytes(g, 2)) < 0)
            log_msg(LOGL_WARN, "store", "rollup %lld/%lld/%lld: bad "
                    "histogram replaced", (long long)d->target_id,
                    (long long)d->cluster_id, (long long)d->t);
    } else if (step != SQLITE_DONE) {
        goto out;
    }
    sqlite3_reset(g);
    rc = hist_merge(&h, &d->h);
    if (rc == 0)
        rc = hist_encode(&h, &blob, &len);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (sqlite3_bind_int64(p, 1, d->target_id) != SQLITE_OK ||
        sqlite3_bind_int64(p, 2, d->cluster_id) != SQLITE_OK ||
        sqlite3_bind_int64(p, 3, d->t) != SQLITE_OK ||
        sqlite3_bind_int64(p, 4, (int64_t)count) != SQLITE_OK ||
        sqlite3_bind_int64(p, 5, (int64_t)failures) != SQLITE_OK ||
        sqlite3_bind_blob(p, 6, blob, (int)len, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(p);
        sqlite3_clear_bindings(p);
        goto out;
    }
    rc = store_step_done(p);
out:
    sqlite3_reset(g);
    sqlite3_clear_bindings(g);
    hist_free(&h);
    free(blob);
    return rc;
}

static void store_delta_start(struct store_delta *d,
                              const struct store_sample *s, int64_t t)
{
    d->target_id = s->target_id;
    d->cluster_id = s->cluster_id;
    d->t = t;
    d->count = 0;
    d->failures = 0;
    hist_reset(&d->h);
}

static int store_delta_add(struct store_delta *d, const struct store_sample *s)
{
    d->count++;
    if (!s->ok) {
        d->failures++;
        return 0;
    }
    return hist_add(&d->h, (double)s->total_us, 1);
}

/* Folds this group's probe results into the minute and hour rollups: one
 * read and write per row touched, however many results it gets. Results
 * for minutes (hours) already past their retention are not rolled up
 * into minute (hour) rows. */
static int store_rollups_flush(struct store *st, int64_t now_ms)
{
    struct store_delta m, h;
    int64_t cutoff = st->opt.minute_retention_ms > 0
                         ? now_ms - st->opt.minute_retention_ms : INT64_MIN;
    int64_t hcutoff = st->opt.hour_retention_ms > 0
                          ? now_ms - st->opt.hour_retention_ms : INT64_MIN;
    int has_m = 0, has_h = 0, rc = 0;

    if (st->n_samples == 0)
        return 0;
    qsort(st->samples, st->n_samples, sizeof(*st->samples),
          store_sample_cmp);
    hist_init(&m.h);
    hist_init(&h.h);
    for (size_t i = 0; i < st->n_samples && rc == 0; i++) {
        const struct store_sample *s = &st->samples[i];
        int64_t hour = store_floor(s->minute, STORE_HOUR_MS);

        if (has_m && (m.target_id != s->target_id ||
                      m.cluster_id != s->cluster_id || m.t != s->minute)) {
            rc = m.t >= cutoff ? store_rollup_add(&st->minute, &m) : 0;
            has_m = 0;
        }
        if (rc == 0 && has_h && (h.target_id != s->target_id ||
                                 h.cluster_id != s->cluster_id ||
                                 h.t != hour)) {
            rc = h.t >= hcutoff ? store_rollup_add(&st->hour, &h) : 0;
            has_h = 0;
        }
        if (rc < 0)
            break;
        if (!has_m) {
            store_delta_start(&m, s, s->minute);
            has_m = 1;
        }
        if (!has_h) {
            store_delta_start(&h, s, hour);
            has_h = 1;
        }
        rc = store_delta_add(&m, s);
        if (rc == 0)
            rc = store_delta_add(&h, s);
    }
    if (rc == 0 && has_m && m.t >= cutoff)
        rc = store_rollup_add(&st->minute, &m);
    if (rc == 0 && has_h && h.t >= hcutoff)
        rc = store_rollup_add(&st->hour, &h);
    hist_free(&m.h);
    hist_free(&h.h);
    st->n_samples = 0;
    return rc;
}

/* Rebuilds the rollups from every stored probe result: migration 3, for
 * events stored before rollups existed. Runs inside its transaction. */
static int store_backfill_rollups(struct store *st)
{
    static const char sql[] =
        "SELECT e.target_id, a.cluster_id, e.unix_ms,"
        " json_extract(e.data, '$.ok'), json_extract(e.data, '$.total_us')"
        " FROM events e JOIN agents a ON a.id = e.agent_id"
        " JOIN kinds k ON k.id = e.kind_id"
        " WHERE k.name = 'probe' AND e.target_id IS NOT NULL"
        " ORDER BY e.target_id, e.unix_ms";
    sqlite3_stmt *s = NULL;
    int rc = -EIO, step;

    if (sqlite3_prepare_v2(st->wdb, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_sample *sm = store_sample_new(st);

        if (!sm) {
            rc = -ENOMEM;
            goto out;
        }
        sm->target_id = sqlite3_column_int64(s, 0);
        sm->cluster_id = sqlite3_column_int64(s, 1);
        sm->minute = store_floor(sqlite3_column_int64(s, 2), STORE_MINUTE_MS);
        sm->ok = sqlite3_column_int(s, 3);
        sm->total_us = (uint64_t)sqlite3_column_int64(s, 4);
        /* Flushed in chunks: memory stays bounded however many events
         * there are (a row flushed twice is merged, not replaced). */
        if (st->n_samples >= STORE_BACKFILL_CHUNK) {
            rc = store_rollups_flush(st, util_now_ms());
            if (rc < 0)
                goto out;
            rc = -EIO;
        }
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = store_rollups_flush(st, util_now_ms());
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "rollup backfill: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_finalize(s);
    st->n_samples = 0;
    return rc;
}

/* ---- schema and statements ---- */

static int store_prepare_all(struct store *st)
{
    /* get, put (a new row), upd (an existing one: an UPDATE of columns
     * no index holds leaves the indexes alone, where a REPLACE would
     * delete and reinsert their entries), expire. */
    static const char *const rollup_sql[2][4] = {
        { "SELECT count, failures, hist FROM rollup_minute"
          " WHERE target_id = ?1 AND cluster_id = ?2 AND t = ?3",
          "INSERT INTO rollup_minute (target_id, cluster_id, t,"
          " count, failures, hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
          "UPDATE rollup_minute SET count = ?4, failures = ?5, hist = ?6"
          " WHERE target_id = ?1 AND cluster_id = ?2 AND t = ?3",
          "DELETE FROM rollup_minute WHERE (target_id, cluster_id, t) IN"
          " (SELECT target_id, cluster_id, t FROM rollup_minute"
          "  WHERE t < ?1 LIMIT ?2)" },
        { "SELECT count, failures, hist FROM rollup_hour"
          " WHERE target_id = ?1 AND cluster_id = ?2 AND t = ?3",
          "INSERT INTO rollup_hour (target_id, cluster_id, t,"
          " count, failures, hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
          "UPDATE rollup_hour SET count = ?4, failures = ?5, hist = ?6"
          " WHERE target_id = ?1 AND cluster_id = ?2 AND t = ?3",
          "DELETE FROM rollup_hour WHERE (target_id, cluster_id, t) IN"
          " (SELECT target_id, cluster_id, t FROM rollup_hour"
          "  WHERE t < ?1 LIMIT ?2)" },
    };
    struct store_rollup *r[2] = { &st->minute, &st->hour };
    sqlite3 *db = st->wdb;

    if (st->agent_ins)                  /* prepared already */
        return 0;
    for (int i = 0; i < DIM_COUNT; i++) {
        st->dims[i].slots = calloc(STORE_DIM_CACHE * 2,
                                   sizeof(*st->dims[i].slots));
        if (!st->dims[i].slots ||
            store_prepare(db, store_dim_sql[i][0], &st->dims[i].sel) < 0 ||
            store_prepare(db, store_dim_sql[i][1], &st->dims[i].ins) < 0)
            return -EIO;
    }
    for (int i = 0; i < 2; i++)
        if (store_prepare(db, rollup_sql[i][0], &r[i]->get) < 0 ||
            store_prepare(db, rollup_sql[i][1], &r[i]->put) < 0 ||
            store_prepare(db, rollup_sql[i][2], &r[i]->upd) < 0 ||
            store_prepare(db, rollup_sql[i][3], &r[i]->expire) < 0)
            return -EIO;
    if (store_prepare(db,
                      "INSERT INTO agents (cluster, region, node, epoch,"
                      " agent_version, first_seen_ms, last_seen_ms,"
                      " cluster_id)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                      &st->agent_ins) < 0 ||
        store_prepare(db,
                      "INSERT OR IGNORE INTO events (agent_id, seq, unix_ms,"
                      " recv_ms, kind_id, target_id, text_id, data)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                      &st->event_ins) < 0 ||
        store_prepare(db,       /* walks the (agent_id, seq) index */
                      "SELECT seq, unix_ms FROM events"
                      " WHERE agent_id = ?1 AND seq > ?2 ORDER BY seq",
                      &st->seq_scan) < 0 ||
        store_prepare(db,
                      "SELECT seq, unix_ms FROM events WHERE agent_id = ?1"
                      " AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
                      &st->seq_range) < 0 ||
        store_prepare(db,       /* the time index, oldest first */
                      "DELETE FROM events WHERE id IN (SELECT id FROM events"
                      " WHERE unix_ms < ?1 ORDER BY unix_ms LIMIT ?2)",
                      &st->events_expire) < 0 ||
        store_prepare(db,       /* the end of the next window of texts */
                      "SELECT max(id) FROM (SELECT id FROM texts"
                      " WHERE id > ?1 ORDER BY id LIMIT ?2)",
                      &st->texts_window) < 0 ||
        store_prepare(db,       /* events_text answers NOT EXISTS */
                      "DELETE FROM texts WHERE id > ?1 AND id <= ?2"
                      " AND NOT EXISTS (SELECT 1 FROM events"
                      "                 WHERE text_id = texts.id)",
                      &st->texts_expire) < 0 ||
        store_prepare(db, "INSERT INTO texts (text)"
                      " VALUES (hex(randomblob(?1)))", &st->probe_ins) < 0 ||
        store_prepare(db, "DELETE FROM texts WHERE id = ?1",
                      &st->probe_del) < 0 ||
        store_prepare(db, "BEGIN IMMEDIATE", &st->begin) < 0 ||
        store_prepare(db, "COMMIT", &st->commit) < 0 ||
        store_prepare(db, "ROLLBACK", &st->rollback) < 0 ||
        store_prepare(db, "SAVEPOINT batch", &st->sp_begin) < 0 ||
        store_prepare(db, "RELEASE batch", &st->sp_release) < 0 ||
        store_prepare(db, "ROLLBACK TO batch", &st->sp_rollback) < 0)
        return -EIO;
    return 0;
}

/* The agent row's statements name columns of the latest schema, so they
 * wait for every migration (migration 3 prepares the rest, for its
 * backfill). */
static int store_prepare_agents(struct store *st)
{
    if (store_prepare(st->wdb,
                      "SELECT id, acked_seq, clock_offset_ms,"
                      " drop_first_seq, drop_last_seq, drop_count,"
                      " drop_last_ms, clock_window FROM agents"
                      " WHERE cluster = ?1 AND node = ?2 AND epoch = ?3",
                      &st->agent_get) < 0 ||
        store_prepare(st->wdb,
                      "UPDATE agents SET acked_seq = ?2, region = ?3,"
                      " agent_version = ?4, last_seen_ms = ?5,"
                      " clock_offset_ms = ?6, drop_first_seq = ?7,"
                      " drop_last_seq = ?8, drop_count = ?9,"
                      " drop_last_ms = ?10, clock_window = ?11"
                      " WHERE id = ?1",
                      &st->agent_upd) < 0)
        return -EIO;
    return 0;
}

static void store_finalize_all(struct store *st)
{
    sqlite3_stmt **all[] = {
        &st->agent_get, &st->agent_ins, &st->agent_upd, &st->event_ins,
        &st->seq_scan, &st->seq_range, &st->events_expire,
        &st->texts_window, &st->texts_expire, &st->probe_ins,
        &st->probe_del, &st->begin,
        &st->commit, &st->rollback, &st->sp_begin, &st->sp_release,
        &st->sp_rollback, &st->minute.get, &st->minute.put, &st->minute.upd,
        &st->minute.expire, &st->hour.get, &st->hour.put, &st->hour.upd,
        &st->hour.expire,
    };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
    for (int i = 0; i < DIM_COUNT; i++) {
        sqlite3_finalize(st->dims[i].sel);
        sqlite3_finalize(st->dims[i].ins);
        store_dim_reset(&st->dims[i]);
        free(st->dims[i].slots);
        memset(&st->dims[i], 0, sizeof(st->dims[i]));
    }
}

/* Applies every migration the file has not seen yet, each in its own
 * transaction together with the new user_version (and, for 3, the
 * rollups of the events already stored). */
static int store_migrate(struct store *st)
{
    sqlite3 *db = st->wdb;
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
        rc = store_exec(db, store_migrations[v]);
        if (rc == 0)
            rc = store_user_version(db, &now);
        if (rc == 0 && now != v + 1)
            rc = -EIO;
        if (rc == 0 && v + 1 == 3 &&
            (store_prepare_all(st) < 0 || store_backfill_rollups(st) < 0))
            rc = -EIO;
        if (rc < 0) {
            log_msg(LOGL_ERROR, "store", "migration %d failed", v + 1);
            store_finalize_all(st);
            store_exec(db, "ROLLBACK");
            return -EIO;
        }
        if (store_exec(db, "COMMIT") < 0)
            return -EIO;
        log_msg(LOGL_INFO, "store", "schema migrated to version %d", v + 1);
    }
    return 0;
}

static int store_wal_hook(void *arg, sqlite3 *db, const char *name,
                          int pages)
{
    struct store *st = arg;

    (void)db;
    (void)name;
    st->wal_pages = pages;
    return SQLITE_OK;
}

/* Copies the WAL back into the database once it holds STORE_WAL_PAGES
 * pages, without waiting for readers (PASSIVE): the writer calls it when
 * no batch is waiting for it. */
static void store_checkpoint(struct store *st)
{
    int rc;

    if (st->wal_pages < STORE_WAL_PAGES)
        return;
    rc = sqlite3_wal_checkpoint_v2(st->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                   NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_msg(LOGL_WARN, "store", "checkpoint: %s",
                sqlite3_errmsg(st->wdb));
    st->wal_pages = 0;
}

static int store_query_progress(void *arg);

/* PRAGMA quick_check, on a connection of its own (the writer's page cache
 * stays as cold as after any start) and stopped after STORE_CHECK_MS: then
 * the collector starts unchecked, and says so. A damaged page it finds,
 * or a file that is not a database at all: -EUCLEAN, corrupt state. */
static int store_quick_check(struct store *st)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t until = store_mono_ns() + (int64_t)STORE_CHECK_MS * 1000000;
    int rc = -EIO, step;

    if (sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READONLY |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    sqlite3_progress_handler(db, 1000, store_query_progress, &until);
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s, NULL) !=
        SQLITE_OK)
        goto out;
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(s, 0);
        char why[128];

        rc = 0;
        if (res && strcmp(res, "ok") != 0) {
            snprintf(why, sizeof(why), "quick_check: %s", res);
            store_set_corrupt(st, why);
            rc = -EUCLEAN;
        }
    } else if (step == SQLITE_INTERRUPT) {
        log_msg(LOGL_WARN, "store", "quick_check of %s not done after %d "
                "ms: starting unchecked", st->path, STORE_CHECK_MS);
        rc = 0;
    }
out:
    if (rc == -EIO) {
        if (db && store_check_corrupt(st, db))
            rc = -EUCLEAN;
        else
            log_msg(LOGL_ERROR, "store", "quick_check of %s: %s", st->path,
                    db ? sqlite3_errmsg(db) : "out of memory");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* The start check, pragmas, incremental vacuum, migrations, statements:
 * the writer's first work, while the store is not ready yet. */
static int store_setup(struct store *st)
{
    sqlite3 *db = st->wdb;
    int64_t av, tables;
    int rc;

    rc = store_quick_check(st);
    if (rc < 0)
        return rc;

    /* Retention frees pages; incremental vacuum gives them back to the
     * file system. The mode can only be set before the first table (and
     * before WAL mode) exists; a database made without it takes one full
     * VACUUM. */
    if (store_pragma_int(db, "PRAGMA auto_vacuum", &av) < 0 ||
        store_pragma_int(db, "SELECT count(*) FROM sqlite_schema",
                         &tables) < 0)
        return -EIO;
    if (av != 2) {
        if (store_exec(db, "PRAGMA auto_vacuum=INCREMENTAL") < 0)
            return -EIO;
        /* The rewrite needs the file's size again in free space: when it
         * fails, carry on without (retention still deletes; the file just
         * does not shrink) rather than never start. */
        if (tables > 0) {
            log_msg(LOGL_INFO, "store", "rewriting %s for incremental "
                    "vacuum (once)", st->path);
            if (store_exec(db, "VACUUM") < 0)
                log_msg(LOGL_WARN, "store", "%s stays without incremental "
                        "vacuum: its size will not shrink", st->path);
        }
    }
    /* WAL: readers never block the writer. synchronous=FULL: a batch is
     * acked only after its commit is on disk, so not even a power cut
     * loses an acked event (NORMAL would survive kill -9 only). */
    if (store_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
        store_exec(db, "PRAGMA synchronous=FULL") < 0 ||
        store_exec(db, "PRAGMA foreign_keys=ON") < 0 ||
        /* After a burst, the WAL is cut back to this at checkpoints, so
         * the files on disk stay bounded. */
        store_exec(db, "PRAGMA journal_size_limit=67108864") < 0 ||
        /* Each batch's savepoint keeps a statement journal; past 64 KiB
         * SQLite would spill it to a temporary file, written a page at a
         * time and thrown away at RELEASE (a third of the writer's time,
         * measured). It is never needed after a crash. */
        store_exec(db, "PRAGMA temp_store=MEMORY") < 0 ||
        /* 32 MiB of page cache (SQLite's default is 2 MiB): the five
         * indexes of events take their inserts in many places at once. */
        store_exec(db, "PRAGMA cache_size=-32768") < 0)
        return -EIO;
    /* Checkpoints run after a group's batches are answered, not inside
     * the COMMIT that crosses the threshold (which would make every batch
     * of that group wait for it): the hook only notes the WAL's size. */
    sqlite3_wal_hook(db, store_wal_hook, st);
    rc = store_migrate(st);
    if (rc == 0)
        rc = store_prepare_all(st);
    if (rc == 0)
        rc = store_prepare_agents(st);
    return rc;
}

/* ---- retention ---- */

/* Runs the bound delete @d in a transaction of its own and counts what
 * it deleted: rows, or -EIO. */
static int store_delete_txn(struct store *st, sqlite3_stmt *d)
{
    int n;

    if (store_step_done(st->begin) < 0) {
        sqlite3_clear_bindings(d);
        return -EIO;
    }
    if (store_step_done(d) < 0) {
        store_step_done(st->rollback);
        return -EIO;
    }
    n = sqlite3_changes(st->wdb);
    if (store_step_done(st->commit) < 0) {
        store_step_done(st->rollback);
        return -EIO;
    }
    pthread_mutex_lock(&st->qlock);
    st->stats.retention_deleted += (uint64_t)n;
    pthread_mutex_unlock(&st->qlock);
    return n;
}

/* Starts a retention pass at @now_ms, or ends it (0). */
static void store_retention_reset(struct store *st, int64_t now_ms)
{
    st->retention_now_ms = now_ms;
    st->retention_done = 0;
    st->retention_free_pages = 0;
    st->retention_text_id = 0;
}

/* Deletes the texts no event uses any more (their events expired), a
 * window of STORE_DELETE_ROWS texts after st->retention_text_id at a
 * time, so a step stays small however many texts there are. 1: more to
 * look at; 0: all looked at; -EIO. */
static int store_texts_step(struct store *st)
{
    sqlite3_stmt *w = st->texts_window, *d = st->texts_expire;
    int64_t end;
    int n, step;

    if (sqlite3_bind_int64(w, 1, st->retention_text_id) != SQLITE_OK ||
        sqlite3_bind_int(w, 2, STORE_DELETE_ROWS) != SQLITE_OK)
        return -EIO;
    step = sqlite3_step(w);
    end = sqlite3_column_int64(w, 0);
    if (step == SQLITE_ROW && sqlite3_column_type(w, 0) == SQLITE_NULL)
        step = SQLITE_DONE;             /* no texts past the window */
    sqlite3_reset(w);
    sqlite3_clear_bindings(w);
    if (step == SQLITE_DONE) {
        st->retention_text_id = 0;
        return 0;
    }
    if (step != SQLITE_ROW ||
        sqlite3_bind_int64(d, 1, st->retention_text_id) != SQLITE_OK ||
        sqlite3_bind_int64(d, 2, end) != SQLITE_OK)
        return -EIO;
    n = store_delete_txn(st, d);
    if (n < 0)
        return n;
    if (n > 0)                  /* cached ids may be gone */
        store_dim_reset(&st->dims[DIM_TEXT]);
    st->retention_text_id = end;
    return 1;
}

/* One step of the retention pass under way (st->retention_now_ms): one
 * small delete transaction, or one incremental vacuum step. 1: more to
 * do; 0: the pass is over; -EIO. */
static int store_retention_step(struct store *st)
{
    struct {
        sqlite3_stmt *s;
        int64_t keep_ms;
    } t[3] = {
        { st->events_expire, st->opt.raw_retention_ms },
        { st->minute.expire, st->opt.minute_retention_ms },
        { st->hour.expire, st->opt.hour_retention_ms },
    };
    int64_t free_pages;

    for (int i = 0; i < 3; i++) {
        int n;

        if (t[i].keep_ms <= 0 || (st->retention_done & (1 << i)))
            continue;
        if (sqlite3_bind_int64(t[i].s, 1,
                               st->retention_now_ms - t[i].keep_ms) !=
                SQLITE_OK ||
            sqlite3_bind_int(t[i].s, 2, STORE_DELETE_ROWS) != SQLITE_OK)
            return -EIO;
        n = store_delete_txn(st, t[i].s);
        if (n < 0)
            return n;
        if (n < STORE_DELETE_ROWS)      /* nothing older left there */
            st->retention_done |= 1 << i;
        return 1;
    }
    if (st->opt.raw_retention_ms > 0 && !(st->retention_done & (1 << 3))) {
        int rc = store_texts_step(st);

        if (rc <= 0)
            st->retention_done |= 1 << 3;
        if (rc < 0)
            return rc;
        return 1;
    }
    if (store_pragma_int(st->wdb, "PRAGMA freelist_count", &free_pages) < 0)
        return -EIO;
    /* Stops when nothing is free, or when a step freed nothing (a file
     * that is not in incremental mode: never loop on it). */
    if (free_pages > 0 && free_pages != st->retention_free_pages) {
        char sql[48];

        st->retention_free_pages = free_pages;
        snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)",
                 STORE_VACUUM_PAGES);
        return store_exec(st->wdb, sql) < 0 ? -EIO : 1;
    }
    store_retention_reset(st, 0);
    return 0;
}

/* ---- the writer ---- */

/* Notes the writer's last error for the group: its message in @why (the
 * first only), and the corrupt state if it says the file is damaged. */
static void store_group_error(struct store *st, char *why, size_t len)
{
    if (!why[0])
        snprintf(why, len, "%s", sqlite3_errmsg(st->wdb));
    store_check_corrupt(st, st->wdb);
}

/* Commits @jobs (batches only) in one transaction, each batch in its own
 * savepoint, then answers each. */
static void store_group(struct store *st, struct store_job *jobs)
{
    int64_t t0 = store_mono_ns();
    size_t n = 0, bytes = 0, stored = 0;
    char why[128] = "";         /* the group's first database error */
    double secs;
    int rc, corrupt;

    rc = store_step_done(st->begin);
    if (rc < 0)
        store_group_error(st, why, sizeof(why));
    for (struct store_job *j = jobs; j; j = j->next) {
        size_t mark = st->n_samples;

        n++;
        bytes += j->cost;
        j->rc = rc < 0 ? -EIO : store_step_done(st->sp_begin);
        if (j->rc == 0)
            j->rc = store_ingest_locked(st, j->b, j->recv_ms, &j->acked);
        if (j->rc < 0 && rc == 0) {
            if (j->rc == -EIO)          /* not a bad field of the batch */
                store_group_error(st, why, sizeof(why));
            /* This batch alone is undone; the group goes on. */
            st->n_samples = mark;
            store_dims_reset(st);
            if (store_step_done(st->sp_rollback) < 0)
                rc = -EIO;
            j->rc = -EIO;
        }
        if (rc == 0 && store_step_done(st->sp_release) < 0)
            rc = -EIO;
    }
    if (rc == 0)
        rc = store_rollups_flush(st, util_now_ms());
    if (rc == 0)
        rc = store_step_done(st->commit);
    if (rc < 0) {
        store_group_error(st, why, sizeof(why));
        if (!sqlite3_get_autocommit(st->wdb))
            store_step_done(st->rollback);
        store_dims_reset(st);
        st->n_samples = 0;
        for (struct store_job *j = jobs; j; j = j->next)
            j->rc = -EIO;
        log_msg(LOGL_ERROR, "store", "group commit of %zu batches failed", n);
    }
    secs = (double)(store_mono_ns() - t0) / 1e9;

    for (struct store_job *j = jobs; j; j = j->next)
        stored += j->rc == 0;

    pthread_mutex_lock(&st->qlock);
    corrupt = st->stats.corrupt;
    /* Disk full fails the COMMIT, or every batch's savepoint when a big
     * group spills its page cache: either way nothing was stored. */
    if (stored > 0) {
        st->stats.commits_failing = 0;
    } else if (why[0]) {
        st->stats.commits_failing = 1;
        snprintf(st->stats.commit_error, sizeof(st->stats.commit_error),
                 "%s", why);
        st->probe_next_ms = util_now_ms() + STORE_PROBE_MS;
    }
    st->q_batches -= n;
    st->q_bytes -= bytes;
    if (st->stats.overloaded && st->q_batches <= st->opt.queue_max_batches / 2
        && st->q_bytes <= st->opt.queue_max_bytes / 2)
        st->stats.overloaded = 0;
    if (rc == 0) {
        st->stats.commits++;
        for (int i = 0; i < STORE_COMMIT_BUCKETS; i++)
            if (secs <= store_commit_seconds_le[i])
                st->stats.commit_seconds_le[i]++;
        st->stats.commit_seconds_le[STORE_COMMIT_BUCKETS]++;
        st->stats.commit_seconds_sum += secs;
        for (int i = 0; i < STORE_GROUP_BUCKETS; i++)
            if ((double)n <= store_group_batches_le[i])
                st->stats.group_batches_le[i]++;
        st->stats.group_batches_le[STORE_GROUP_BUCKETS]++;
        st->stats.group_batches_sum += n;
    } else {
        st->stats.commit_failures++;
    }
    pthread_mutex_unlock(&st->qlock);

    while (jobs) {
        struct store_job *j = jobs;

        jobs = j->next;
        if (j->rc < 0 && corrupt)
            j->rc = -EUCLEAN;
        j->done(j->ctx, j->rc, j->rc == 0 ? j->acked : 0);
        free(j);
    }
}

/* Steps @s (no rows) for the probe: unlike store_step_done it does not
 * log, as a failing probe repeats every STORE_PROBE_MS. */
static int store_probe_step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* While commits fail and the queue is empty: one real commit that writes
 * new pages (see STORE_PROBE_BYTES) and leaves the data as it was. Its
 * success clears commits failing, so /readyz recovers without ingest; its
 * failure keeps the state with SQLite's newest message. A held write lock
 * fails it after the busy timeout, as it would a batch. */
static void store_probe(struct store *st)
{
    char why[128] = "";
    int rc;

    rc = store_probe_step(st->begin);
    if (rc == 0 &&
        sqlite3_bind_int(st->probe_ins, 1, STORE_PROBE_BYTES) != SQLITE_OK)
        rc = -EIO;
    if (rc == 0)
        rc = store_probe_step(st->probe_ins);
    if (rc == 0 &&
        sqlite3_bind_int64(st->probe_del, 1,
                           sqlite3_last_insert_rowid(st->wdb)) != SQLITE_OK)
        rc = -EIO;
    if (rc == 0)
        rc = store_probe_step(st->probe_del);
    if (rc == 0)
        rc = store_probe_step(st->commit);
    if (rc < 0) {
        store_group_error(st, why, sizeof(why));
        if (!sqlite3_get_autocommit(st->wdb))
            store_probe_step(st->rollback);
    }
    pthread_mutex_lock(&st->qlock);
    if (rc == 0 && st->stats.commits_failing) {
        st->stats.commits_failing = 0;
        log_msg(LOGL_INFO, "store", "a probe commit succeeded: commits "
                "work again");
    } else if (rc < 0 && why[0]) {
        snprintf(st->stats.commit_error, sizeof(st->stats.commit_error),
                 "%s", why);
    }
    pthread_mutex_unlock(&st->qlock);
    st->probe_next_ms = util_now_ms() + STORE_PROBE_MS;
}

/* Runs a whole retention pass at job->recv_ms, then answers the job. */
static void store_retention_job(struct store *st, struct store_job *j)
{
    int rc;

    store_retention_reset(st, j->recv_ms);
    while ((rc = store_retention_step(st)) > 0)
        ;
    store_retention_reset(st, 0);
    j->done(j->ctx, rc, 0);
    free(j);
}

/* Takes the next group off the queue: batches up to the group limits, or
 * one retention job alone. Under qlock. */
static struct store_job *store_take(struct store *st)
{
    struct store_job *first = st->head, *last = first;
    size_t batches = 1, events = first->b ? first->b->n_events : 0;

    if (first->type == JOB_BATCH) {
        while (last->next && last->next->type == JOB_BATCH &&
               batches < STORE_GROUP_BATCHES &&
               events + last->next->b->n_events <= STORE_GROUP_EVENTS) {
            last = last->next;
            batches++;
            events += last->b->n_events;
        }
    }
    st->head = last->next;
    if (!st->head)
        st->tail = NULL;
    last->next = NULL;
    return first;
}

/* Starts a retention pass when one is due, or goes on with the one under
 * way, by one step. */
static void store_retention_tick(struct store *st, int64_t now)
{
    int rc;

    if (!st->retention_now_ms) {
        if (st->opt.raw_retention_ms <= 0 &&
            st->opt.minute_retention_ms <= 0 &&
            st->opt.hour_retention_ms <= 0) {
            st->retention_next_ms = INT64_MAX / 2;  /* keep everything */
            return;
        }
        store_retention_reset(st, now);
    }
    rc = store_retention_step(st);
    if (rc > 0)
        return;
    if (rc < 0 && !store_check_corrupt(st, st->wdb))
        log_msg(LOGL_ERROR, "store", "retention step failed; retrying in "
                "%lld ms", (long long)st->opt.retention_interval_ms);
    store_retention_reset(st, 0);
    st->retention_next_ms = now + st->opt.retention_interval_ms;
}

static void *store_writer(void *arg)
{
    struct store *st = arg;
    int rc, corrupt;

    rc = store_setup(st);
    if (rc < 0 && rc != -EUCLEAN && store_check_corrupt(st, st->wdb))
        rc = -EUCLEAN;
    pthread_mutex_lock(&st->qlock);
    st->ready = rc < 0 ? rc : 1;
    st->stats.ready = rc == 0;
    pthread_cond_broadcast(&st->rcond);
    pthread_mutex_unlock(&st->qlock);
    if (rc < 0)
        return NULL;
    /* The first pass after one interval: a collector that restarts
     * does not hold up its first batches with deletes. */
    st->retention_next_ms = util_now_ms() + st->opt.retention_interval_ms;
    for (;;) {
        struct store_job *jobs = NULL;
        int64_t now = util_now_ms(), wake;
        int probe = 0;

        pthread_mutex_lock(&st->qlock);
        for (;;) {
            struct timespec ts;

            probe = st->stats.commits_failing && !st->stats.corrupt;
            if (st->head || st->closing || st->retention_now_ms ||
                now >= st->retention_next_ms ||
                (probe && now >= st->probe_next_ms))
                break;
            wake = st->retention_next_ms;
            if (probe && st->probe_next_ms < wake)
                wake = st->probe_next_ms;
            ts.tv_sec = wake / 1000;
            ts.tv_nsec = (wake % 1000) * 1000000;
            pthread_cond_timedwait(&st->qcond, &st->qlock, &ts);
            now = util_now_ms();
        }
        if (st->head) {
            jobs = store_take(st);
        } else if (st->closing) {
            pthread_mutex_unlock(&st->qlock);
            break;
        }
        /* Only an idle writer probes: a batch in the queue proves or
         * disproves commits by itself. */
        probe = probe && !jobs && now >= st->probe_next_ms;
        pthread_mutex_unlock(&st->qlock);

        if (probe)
            store_probe(st);
        else if (jobs && jobs->type == JOB_RETENTION)
            store_retention_job(st, jobs);
        else if (jobs)
            store_group(st, jobs);      /* answers its batches */
        store_checkpoint(st);
        /* One retention step between groups: ingest waits for at most one
         * small delete, even when the queue never empties. Not on a
         * damaged file: it would only fail again. */
        pthread_mutex_lock(&st->qlock);
        corrupt = st->stats.corrupt;
        pthread_mutex_unlock(&st->qlock);
        if (corrupt)
            st->retention_next_ms = INT64_MAX / 2;
        else if (st->retention_now_ms || now >= st->retention_next_ms)
            store_retention_tick(st, now);
    }
    return NULL;
}

/* ---- public ---- */

const double store_commit_seconds_le[STORE_COMMIT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
const double store_group_batches_le[STORE_GROUP_BUCKETS] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256,
};

void store_options_default(struct store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->raw_retention_ms = 14LL * 86400 * 1000;
    o->minute_retention_ms = 90LL * 86400 * 1000;
    o->hour_retention_ms = 400LL * 86400 * 1000;
    o->retention_interval_ms = 60 * 1000;
    o->queue_max_batches = 1024;
    o->queue_max_bytes = 64u << 20;
    o->query_ms = STORE_QUERY_MS;
}

int store_open(const char *path, const struct store_options *opts,
               struct store **out)
{
    struct store *st;
    int rc = -EIO;

    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    pthread_mutex_init(&st->qlock, NULL);
    pthread_cond_init(&st->rcond, NULL);
    pthread_cond_init(&st->qcond, NULL);    /* timed on the wall clock */
    pthread_mutex_init(&st->rlock, NULL);
    if (opts)
        st->opt = *opts;
    else
        store_options_default(&st->opt);
    if (st->opt.retention_interval_ms <= 0)
        st->opt.retention_interval_ms = 60 * 1000;
    if (st->opt.query_ms <= 0)
        st->opt.query_ms = STORE_QUERY_MS;
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
    st->stats.queue_max_batches = st->opt.queue_max_batches;
    st->stats.queue_max_bytes = st->opt.queue_max_bytes;
    if (pthread_create(&st->writer, NULL, store_writer, st) != 0) {
        rc = -EAGAIN;
        goto err;
    }
    st->writer_started = 1;
    *out = st;
    return 0;
err:
    store_close(st);
    return rc;
}

int store_wait_ready(struct store *st)
{
    int rc;

    pthread_mutex_lock(&st->qlock);
    while (st->ready == 0)
        pthread_cond_wait(&st->rcond, &st->qlock);
    rc = st->ready == 1 ? 0 : st->ready;
    pthread_mutex_unlock(&st->qlock);
    return rc;
}

int store_poll_ready(struct store *st)
{
    int rc;

    pthread_mutex_lock(&st->qlock);
    rc = st->ready;
    pthread_mutex_unlock(&st->qlock);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->writer_started) {
        pthread_mutex_lock(&st->qlock);
        /* Still migrating (a VACUUM can take long): stop it; it rolls
         * back and the next start begins again. */
        if (st->ready == 0)
            sqlite3_interrupt(st->wdb);
        st->closing = 1;
        pthread_cond_signal(&st->qcond);
        pthread_mutex_unlock(&st->qlock);
        pthread_join(st->writer, NULL);
    }
    store_finalize_all(st);
    free(st->samples);
    /* Readers first: the last connection to close checkpoints and removes
     * the WAL, and only the writer may. */
    for (size_t i = 0; i < st->n_readers; i++)
        sqlite3_close(st->readers[i]);
    if (st->wdb && sqlite3_close(st->wdb) != SQLITE_OK)
        log_msg(LOGL_ERROR, "store", "close: %s", sqlite3_errmsg(st->wdb));
    pthread_mutex_destroy(&st->qlock);
    pthread_cond_destroy(&st->qcond);
    pthread_cond_destroy(&st->rcond);
    pthread_mutex_destroy(&st->rlock);
    free(st->path);
    free(st);
}

/* Appends @j to the queue unless closing, not ready or full. */
static int store_enqueue(struct store *st, struct store_job *j)
{
    int rc = 0;

    pthread_mutex_lock(&st->qlock);
    if (st->closing) {
        rc = -ESHUTDOWN;
    } else if (st->stats.corrupt) {
        rc = -EUCLEAN;
    } else if (st->ready != 1) {
        rc = -EAGAIN;
    } else if (j->type == JOB_BATCH && st->q_batches > 0 &&
               (st->q_batches >= st->opt.queue_max_batches ||
                st->q_bytes + j->cost > st->opt.queue_max_bytes)) {
        st->stats.overloaded = 1;       /* cleared when half drained */
        rc = -EAGAIN;
    } else {
        if (st->tail)
            st->tail->next = j;
        else
            st->head = j;
        st->tail = j;
        if (j->type == JOB_BATCH) {
            st->q_batches++;
            st->q_bytes += j->cost;
        }
        pthread_cond_signal(&st->qcond);
    }
    pthread_mutex_unlock(&st->qlock);
    return rc;
}

int store_submit(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, size_t cost, store_done_fn done,
                 void *ctx)
{
    struct store_job *j = calloc(1, sizeof(*j));
    int rc;

    if (!j)
        return -ENOMEM;
    j->type = JOB_BATCH;
    j->b = b;
    j->recv_ms = recv_ms;
    j->cost = cost;
    j->done = done;
    j->ctx = ctx;
    rc = store_enqueue(st, j);
    if (rc < 0)
        free(j);
    return rc;
}

/* A caller waiting for its job: store_ingest, store_retention_run. */
struct store_waiter {
    struct store *st;
    int done, rc;
    uint64_t acked;
};

static void store_waiter_done(void *ctx, int rc, uint64_t acked)
{
    struct store_waiter *w = ctx;

    pthread_mutex_lock(&w->st->qlock);
    w->rc = rc;
    w->acked = acked;
    w->done = 1;
    pthread_cond_broadcast(&w->st->rcond);
    pthread_mutex_unlock(&w->st->qlock);
}

static int store_waiter_wait(struct store_waiter *w)
{
    pthread_mutex_lock(&w->st->qlock);
    while (!w->done)
        pthread_cond_wait(&w->st->rcond, &w->st->qlock);
    pthread_mutex_unlock(&w->st->qlock);
    return w->rc;
}

int store_ingest(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, uint64_t *acked_seq)
{
    struct store_waiter w = { .st = st };
    int rc;

    rc = store_wait_ready(st);
    if (rc == 0)
        rc = store_submit(st, b, recv_ms, 0, store_waiter_done, &w);
    if (rc == 0)
        rc = store_waiter_wait(&w);
    if (rc == 0)
        *acked_seq = w.acked;
    return rc;
}

int store_retention_run(struct store *st, int64_t now_ms)
{
    struct store_waiter w = { .st = st };
    struct store_job *j;
    int rc;

    rc = store_wait_ready(st);
    if (rc < 0)
        return rc;
    j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->type = JOB_RETENTION;
    j->recv_ms = now_ms;
    j->done = store_waiter_done;
    j->ctx = &w;
    rc = store_enqueue(st, j);
    if (rc < 0) {
        free(j);
        return rc;
    }
    return store_waiter_wait(&w);
}

static int64_t store_file_bytes(const char *path, const char *suffix)
{
    char p[4096];
    struct stat sb;

    snprintf(p, sizeof(p), "%s%s", path, suffix);
    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

void store_stats(struct store *st, struct store_stats *out)
{
    pthread_mutex_lock(&st->qlock);
    *out = st->stats;
    out->queue_batches = st->q_batches;
    out->queue_bytes = st->q_bytes;
    /* Over the mark, or refused a batch and not yet half drained: what
     * makes store_submit refuse. */
    out->overloaded = st->stats.overloaded ||
                      st->q_batches >= st->opt.queue_max_batches ||
                      st->q_bytes >= st->opt.queue_max_bytes;
    pthread_mutex_unlock(&st->qlock);
    out->db_bytes = store_file_bytes(st->path, "") +
                    store_file_bytes(st->path, "-wal");
}
void store_corrupt_detail(struct store *st, char *buf, size_t len)
{
    pthread_mutex_lock(&st->qlock);
    snprintf(buf, len, "database file damaged (%s): restore it from a "
             "backup", st->stats.corrupt_reason);
    pthread_mutex_unlock(&st->qlock);
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
    sqlite3_progress_handler(db, 0, NULL, NULL);   /* its deadline is gone */
    pthread_mutex_lock(&st->rlock);
    if (st->n_readers < STORE_READERS) {
        st->readers[st->n_readers++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&st->rlock);
    sqlite3_close(db);
}

/* Hands the finished reply in @w to the caller: 0, or its error. */
static int store_json_take(struct jsonw *w, char **out, size_t *out_len)
{
    if (w->err)
        return w->err;
    *out = jsonw_take(w, out_len);
    return *out ? 0 : -ENOMEM;
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
    "  'kind', k.name, 'target', tg.name," \
    "  'time_ms', e.unix_ms," \
    "  'time', strftime('%Y-%m-%dT%H:%M:%fZ', e.unix_ms / 1000.0," \
    "                   'unixepoch')," \
    "  'clock_offset_ms', " STORE_OFFSET_SQL "," \
    "  'corrected_ms', " STORE_CORRECTED_SQL "," \
    "  'corrected_time', strftime('%Y-%m-%dT%H:%M:%fZ'," \
    "                   " STORE_CORRECTED_SQL " / 1000.0, 'unixepoch')," \
    "  'received_ms', e.recv_ms," \
    "  'fields', CASE WHEN e.text_id IS NULL THEN json(e.data)" \
    "    ELSE json_set(e.data, CASE k.name WHEN 'state' THEN '$.reason'" \
    "                          ELSE '$.error' END, x.text) END)" \
    " FROM events e CROSS JOIN agents a ON a.id = e.agent_id" \
    " JOIN kinds k ON k.id = e.kind_id" \
    " LEFT JOIN targets tg ON tg.id = e.target_id" \
    " LEFT JOIN texts x ON x.id = e.text_id"
/* events drives the join (CROSS JOIN keeps it outer): by time, or by
 * target or kind and time when those are given; a cluster filter is
 * checked row by row. Driven from agents instead, SQLite would fetch every
 * event of the cluster's agents in the window and sort them before the
 * LIMIT: ten times slower on 50 million events (bench/RESULTS.md). */
/* Filters on cluster, target and kind, added only when asked for (an
 * "?5 IS NULL OR ..." would keep SQLite off the target and kind indexes).
 * The name is bound; the id is looked up once. */
#define STORE_FILTER_CLUSTER " AND a.cluster = ?3"
#define STORE_FILTER_TARGET \
    " AND e.target_id = (SELECT id FROM targets WHERE name = ?5)"
#define STORE_FILTER_KIND \
    " AND e.kind_id = (SELECT id FROM kinds WHERE name = ?6)"
/* Several kinds (a comma-separated list): the (kind, time) index then
 * gives no one order, so only a list pays for the sort. */
#define STORE_FILTER_KINDS \
    " AND e.kind_id IN (SELECT id FROM kinds" \
    "   WHERE instr(',' || ?6 || ',', ',' || name || ',') > 0)"

/* A reader's query stops when it runs past its deadline (query_ms): it holds an
 * HTTP thread and a read snapshot (which stops checkpoints). */
static int store_query_progress(void *arg)
{
    return store_mono_ns() > *(const int64_t *)arg;
}

static void store_query_deadline(const struct store *st, sqlite3 *db,
                                 int64_t *until_ns)
{
    *until_ns = store_mono_ns() + st->opt.query_ms * 1000000;
    sqlite3_progress_handler(db, 1000, store_query_progress, until_ns);
}

/* The error of a failed query: -ETIMEDOUT past its deadline, -EUCLEAN
 * (and the corrupt state) on a damaged file, else -EIO. */
static int store_query_error(struct store *st, sqlite3 *db)
{
    if (sqlite3_errcode(db) == SQLITE_INTERRUPT)
        return -ETIMEDOUT;
    return store_check_corrupt(st, db) ? -EUCLEAN : -EIO;
}

int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len)
{
    static const char agent_where[] =
        STORE_TIMELINE_SELECT
        " WHERE e.unix_ms >= ?1 AND e.unix_ms < ?2";
    static const char agent_order[] = " ORDER BY e.unix_ms, e.id LIMIT ?4";
    /* from/to are on the corrected clock too. The time index still
     * narrows the scan: no event is corrected by more than the largest
     * offset of any agent (one scalar subquery, run once). */
    static const char corrected_where[] =
        "WITH m AS (SELECT coalesce(max(abs("
        "    CAST(round(clock_offset_ms) AS INTEGER))), 0) AS ms FROM agents)"
        STORE_TIMELINE_SELECT
        " WHERE e.unix_ms >= ?1 - (SELECT ms FROM m)"
        "   AND e.unix_ms < ?2 + (SELECT ms FROM m)"
        "   AND " STORE_CORRECTED_SQL " >= ?1"
        "   AND " STORE_CORRECTED_SQL " < ?2";
    static const char corrected_order[] =
        " ORDER BY " STORE_CORRECTED_SQL ", e.id LIMIT ?4";
    int corrected = q->order == STORE_ORDER_CORRECTED;
    char sql[sizeof(corrected_where) + sizeof(corrected_order) + 256];
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    unsigned count = 0;
    int64_t until;
    sqlite3 *db;
    int rc = -EIO, step;

    /* Only constant fragments: every value is bound. */
    snprintf(sql, sizeof(sql), "%s%s%s%s%s",
             corrected ? corrected_where : agent_where,
             q->cluster ? STORE_FILTER_CLUSTER : "",
             q->target ? STORE_FILTER_TARGET : "",
             !q->kind ? ""
             : strchr(q->kind, ',') ? STORE_FILTER_KINDS : STORE_FILTER_KIND,
             corrected ? corrected_order : agent_order);
    db = store_reader_get(st);
    if (!db)
        return -EIO;
    store_query_deadline(st, db, &until);
    jsonw_init(&w, STORE_TIMELINE_BYTES + 64);   /* room to close it */
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(s, 1, q->from_ms) != SQLITE_OK ||
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
        /* The reply stops at a whole row before its cap, marked truncated,
         * rather than failing: the caller narrows the window and goes on. */
        if (w.len + (size_t)sqlite3_column_bytes(s, 0) + 64 >
            STORE_TIMELINE_BYTES)
            break;
        jsonw_value(&w, (const char *)sqlite3_column_text(s, 0));
        count++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = store_query_error(st, db);
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
    if (rc == -EIO)                 /* a prepare or a step failed */
        rc = store_query_error(st, db);
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "timeline: %s", sqlite3_errmsg(db));
    if (rc == -ETIMEDOUT)
        log_msg(LOGL_WARN, "store", "timeline query stopped after %lld ms",
                (long long)st->opt.query_ms);
    jsonw_free(&w);
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}

int store_clusters_seen(struct store *st,
                        void (*fn)(void *ctx, const char *cluster,
                                   int64_t last_seen_ms),
                        void *ctx)
{
    sqlite3_stmt *s = NULL;
    sqlite3 *db;
    int rc = -EIO, step;

    db = store_reader_get(st);
    if (!db)
        return -EIO;
    if (sqlite3_prepare_v2(db, "SELECT cluster, max(last_seen_ms) FROM agents"
                           " GROUP BY cluster ORDER BY cluster", -1, &s,
                           NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0),
           sqlite3_column_int64(s, 1));
    if (step == SQLITE_DONE)
        rc = 0;
out:
    if (rc == -EIO)                 /* a prepare or a step failed */
        rc = store_query_error(st, db);
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "clusters: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}

int store_name_known(struct store *st, enum store_names which,
                     const char *name, store_name_fn fn, void *ctx)
{
    /* [which][0]: is it there; [which][1]: every name, for suggestions. */
    static const char *const sql[][2] = {
        [STORE_NAMES_CLUSTER] = {
            "SELECT 1 FROM clusters WHERE name = ?1",
            "SELECT name FROM clusters ORDER BY name" },
        [STORE_NAMES_TARGET] = {
            "SELECT 1 FROM targets WHERE name = ?1",
            "SELECT name FROM targets ORDER BY name" },
        [STORE_NAMES_KIND] = {
            "SELECT 1 FROM kinds WHERE name = ?1",
            "SELECT name FROM kinds ORDER BY name" },
    };
    sqlite3_stmt *s = NULL;
    int64_t until;
    sqlite3 *db;
    int rc = -EIO, step;

    db = store_reader_get(st);
    if (!db)
        return -EIO;
    store_query_deadline(st, db, &until);
    if (sqlite3_prepare_v2(db, sql[which][0], -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
        rc = store_query_error(st, db);
        goto out;
    }
    step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rc = 1;
        goto out;
    }
    if (step != SQLITE_DONE) {
        rc = store_query_error(st, db);
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!fn) {
        rc = 0;
        goto out;
    }
    if (sqlite3_prepare_v2(db, sql[which][1], -1, &s, NULL) != SQLITE_OK) {
        rc = store_query_error(st, db);
        goto out;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(s, 0));
    rc = step == SQLITE_DONE ? 0 : store_query_error(st, db);
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "names: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    store_reader_put(st, db);
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
    /* [hour][cluster given]: one cluster walks the primary key's range;
     * every cluster, the (target_id, t) index. */
#define STORE_LATENCY_SQL(table, cluster) \
        "SELECT t, count, failures, hist FROM " table \
        " WHERE target_id = (SELECT id FROM targets WHERE name = ?1)" \
        cluster " AND t >= ?3 AND t < ?4 ORDER BY t"
#define STORE_LATENCY_CLUSTER \
        " AND cluster_id = (SELECT id FROM clusters WHERE name = ?2)"
    static const char *const sql[2][2] = {
        { STORE_LATENCY_SQL("rollup_minute", ""),
          STORE_LATENCY_SQL("rollup_minute", STORE_LATENCY_CLUSTER) },
        { STORE_LATENCY_SQL("rollup_hour", ""),
          STORE_LATENCY_SQL("rollup_hour", STORE_LATENCY_CLUSTER) },
    };
    int64_t step_ms = q->step == STORE_STEP_HOUR ? STORE_HOUR_MS
                                                 : STORE_MINUTE_MS;
    int64_t from = store_floor(q->from_ms, step_ms), t = 0;
    uint64_t count = 0, failures = 0;
    sqlite3_stmt *s = NULL;
    struct jsonw w;
    struct hist h;
    int have = 0, rc = -EIO, step;
    int64_t until;
    sqlite3 *db;

    if (q->to_ms <= q->from_ms ||
        (q->to_ms - from) / step_ms >= (int64_t)STORE_LATENCY_MAX_POINTS)
        return -E2BIG;
    db = store_reader_get(st);
    if (!db)
        return -EIO;
    store_query_deadline(st, db, &until);
    hist_init(&h);
    jsonw_init(&w, 16u << 20);
    if (sqlite3_prepare_v2(db, sql[q->step == STORE_STEP_HOUR][!!q->cluster],
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_text(s, 1, q->target, -1, SQLITE_STATIC) != SQLITE_OK ||
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
        rc = store_query_error(st, db);
        goto out;
    }
    if (have)
        store_point(&w, t, count, failures, &h);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    rc = store_json_take(&w, out, out_len);
out:
    if (rc == -EIO)                 /* a prepare or a step failed */
        rc = store_query_error(st, db);
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "latency: %s", sqlite3_errmsg(db));
    if (rc == -ETIMEDOUT)
        log_msg(LOGL_WARN, "store", "latency query stopped after %lld ms",
                (long long)st->opt.query_ms);
    jsonw_free(&w);
    hist_free(&h);
    sqlite3_finalize(s);
    store_reader_put(st, db);
    return rc;
}
