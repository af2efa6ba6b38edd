/* store_priv.h -- what the store's files share and nothing outside them
 * may use: struct store, the writer's jobs, the rows a batch passes
 * through, and the internal functions that cross files. store.h stays the
 * one public face.
 *
 * Files: store.c (lifecycle, queue, stats: backend-neutral),
 * store_writer.c (the writer thread and group commit), store_schema.c
 * (the SQLite file: migrations, pragmas, statements, small helpers),
 * store_compact.c (migration 6's chunked copy into compact rows),
 * store_fields.c (event -> stored fields), store_now.c (target_now:
 * each agent and target's state and last probe now, kept per group
 * commit), store_delivery.c (agents,
 * watermarks, gaps, drops, clock offset: the arithmetic neutral, the
 * SQLite rows), store_dims.c (interned
 * strings), store_rollup.c (samples and rollups), store_retention.c,
 * store_sql.c (every statement the reads run), store_query.c (read
 * pool, cached statements, queries), store_backup.c (online backup),
 * store_incident.c (the incident engine's driver on the writer thread,
 * annotations, the rebuild), store_incstart.c (its rebuild at start, off
 * the writer), store_incscan.c (its events, corrected
 * order, feeding and snapshots), store_incrows.c (the incidents table it
 * writes) and store_incquery.c (the incident queries).
 *
 * A second backend (PostgreSQL, a later issue) implements the functions
 * marked "backend" below over its own connection fields, and keeps the
 * neutral part as it is: the job queue and its high-water marks, the
 * group-commit accounting (stats, histograms, commits failing), the
 * waiters on readiness, and the ready and corrupt states (store.c). The
 * backend brings: open, interrupt and close of its connection, and the
 * start check plus migrations (store_db_*, store_setup); one batch stored
 * inside a group (store_ingest_locked, with fields, dimensions and
 * rollups under it); a retention step; the queries (store_sql.c and
 * store_query.c: the public store_timeline, store_clusters_seen,
 * store_name_known, store_latency); the backup (store_backup_*).
 * store_writer.c's queue taking and answers (store_take,
 * store_group_finish) are neutral; its transaction, savepoints and
 * commit probe speak SQLite (PostgreSQL's writer is pg_writer.c, see
 * store_pg.h). Within one batch the two backends share the arithmetic
 * (store_deliver: watermark, gaps, drops, clock filter; the rollups' and
 * target_now's merges; the dimension caches) and differ only in the rows'
 * reads and writes, passed as a table of functions (store_delivery_ops)
 * or one function (store_rollup_fn, store_now_put_fn). The rest of the
 * seam is this function set. */
#ifndef SEXTANT_STORE_PRIV_H
#define SEXTANT_STORE_PRIV_H

#include "hist.h"
#include "incident.h"
#include "jsonw.h"
#include "store.h"
#include "table.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

struct jsonw;
struct store_now;                   /* store_now.c's */
struct store_pg;                    /* store_pg.h's */
struct store_pg_inc;                /* pg_incident.c's */

#define STORE_READERS        8           /* idle read connections kept */
#define STORE_READER_EXTRA   16          /* other files' statements kept
                                          * per read connection */
#define STORE_BUSY_MS        5000            /* a connection waits for a
                                              * lock this long */
#define STORE_MINUTE_MS      60000LL
#define STORE_HOUR_MS        3600000LL
/* Interned strings cached per dimension table (then the cache restarts). */
#define STORE_DIM_CACHE      4096u
/* A read's deadline is looked at every this many virtual machine
 * instructions: often enough to stop within milliseconds, rarely enough
 * to cost nothing measurable. (Not the start check's: store_schema.c.) */
#define STORE_PROGRESS_OPS   1000
/* A macro's value as a string literal: SQL is constant text (a pragma
 * takes no bound parameter, and SQL is never built with printf), so a
 * number it needs is pasted in at compile time from its one #define. */
#define STORE_STR_(x) #x
#define STORE_STR(x)  STORE_STR_(x)

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

/* Schema 6 adds served_by regions and certificate expiries (interned as
 * their decimal text into an integer column: SQLite converts it). */
enum { DIM_CLUSTER, DIM_KIND, DIM_TARGET, DIM_TEXT, DIM_REGION, DIM_CERT,
       DIM_COUNT };

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
    JOB_ANNOTATE,               /* store an annotation: ctx is its
                                 * request (store_incident.c) */
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
    /* The PostgreSQL backend (store_pg.h); NULL: SQLite, and everything
     * from wdb to now_put below is the SQLite writer's. */
    struct store_pg *pg;

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
    sqlite3_stmt *off_last, *off_ins;   /* agent_offsets: latest, insert */
    sqlite3_stmt *seq_max;              /* an agent's highest stored seq */
    sqlite3_stmt *walk;         /* seq_scan or seq_range, walking */
    /* The incident driver (store_incident.c), NULL without services in
     * opt.topo and while it catches up at start; the writer's alone, like
     * wdb (set under inc_lock, for store_inc_replays). On PostgreSQL:
     * the leader's, its maintenance thread's (pg_incident.c), NULL on
     * the other collectors. */
    struct store_inc *inc;
    /* The engine's rebuild at start, until the writer takes it over
     * (store_incstart.c); the writer's pointer, NULL otherwise. */
    struct store_inc_start *inc_start;
    struct store_dim dims[DIM_COUNT];
    struct store_rollup minute, hour;
    struct store_sample *samples;       /* this group's probe results */
    size_t n_samples, cap_samples;
    struct store_now *now;      /* this group's states and probes for
                                 * target_now (store_now.c) */
    size_t n_now, cap_now;
    sqlite3_stmt *now_put;      /* store_now_put_sql */
    int64_t retention_next_ms;  /* when to look for expired rows again
                                 * (monotonic ms) */
    int64_t retention_now_ms;   /* the pass under way (its wall-clock
                                 * cutoff time): 0 = none */
    int retention_done;         /* bit per table done in this pass */
    int64_t retention_free_pages;   /* free pages before the last vacuum
                                     * step */
    int64_t retention_text_id;  /* texts looked at up to this id */
    int wal_pages;              /* in the WAL after the last commit */
    int64_t probe_next_ms;      /* next commit probe while commits fail
                                 * (monotonic ms) */

    pthread_t writer;
    int writer_started;

    /* The queue, and what others read of the writer's state. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;       /* writer: a job, or closing */
    pthread_cond_t rcond;       /* waiters on readiness: ready changed */
    struct store_job *head, *tail;
    size_t q_batches, q_bytes;
    int closing;
    int ready;                  /* 0 migrating, 1 ready, -errno failed */
    struct store_stats stats;   /* counters, under qlock */

    /* ---- derived state the writer publishes for readers ---- */
    pthread_mutex_t inc_lock;   /* guards inc_status */
    char *inc_status;           /* store_service_status's JSON; owned */

    /* ---- reads (store_query.c) ---- */
    pthread_mutex_t rlock;      /* guards the idle reader list */
    struct store_reader *readers[STORE_READERS];    /* owned */
    size_t n_readers;
};

/* One event row to insert; the strings and the probe are borrowed. A
 * probe result goes to the typed columns (probe set, data NULL); every
 * other event, and a probe the columns cannot hold, to data as JSON. */
struct store_event_row {
    int64_t agent_id;
    uint64_t seq;               /* 0: a collector-made event */
    int64_t unix_ms, recv_ms;
    const char *kind;
    const char *target;         /* NULL: none */
    const char *text;           /* NULL: none */
    const char *data;           /* NULL: a typed probe */
    const Sextant__V1__ProbeResult *probe;  /* the typed columns' values */
    const char *answers;        /* the probe's DNS answers, JSON; NULL:
                                 * none */
    int64_t target_id;          /* out: 0 when no target */
    int64_t text_id;            /* out: 0 when no text */
};

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

/* ---- neutral (store.c) ---- */

int64_t store_mono_ns(void);
/* A condition variable wait waits at most this long at once, then looks
 * again: a far deadline ("never", INT64_MAX / 2) must not overflow. */
#define STORE_WAIT_MAX_MS 3600000LL
/* *ts = CLOCK_MONOTONIC now + @ms (clamped to 0..STORE_WAIT_MAX_MS), for
 * pthread_cond_timedwait on the store's condition variables, which all
 * run on CLOCK_MONOTONIC. */
void store_mono_deadline(struct timespec *ts, int64_t ms);
/* Initializes @c on CLOCK_MONOTONIC, as every condition variable of the
 * store is (for store_mono_deadline): 0 or -errno. */
int store_mono_cond_init(pthread_cond_t *c);
/* Queues a whole retention pass, as if the time were @now_ms, for the
 * writer to run between group commits (deletes what is older than each
 * retention, then gives the freed pages back); @done gets its 0 or
 * -errno. As store_submit: 0 queued, or -errno and @done never runs.
 * Not in store.h: only tests call it (tests/store_test.c); the writer
 * runs passes by itself every retention_interval_ms. */
int store_submit_retention(struct store *st, int64_t now_ms,
                           store_done_fn done, void *ctx);
/* Queues a JOB_ANNOTATE job for the writer (store_annotate): as
 * store_submit_retention, @ctx is the request. */
int store_submit_annotate(struct store *st, store_done_fn done, void *ctx);
/* Takes the next group off the queue (store_writer.c), under qlock:
 * batches up to the group limits, or one other job alone. */
struct store_job *store_take(struct store *st);
/* The neutral end of a group commit (store_writer.c), for either
 * backend's writer: the stats, the queue's counters, commits failing
 * (@why, "" when none, is the group's first error), then each job's done
 * call, and frees the jobs. @rc the group's result, @secs its time. */
void store_group_finish(struct store *st, struct store_job *jobs, int rc,
                        const char *why, double secs);
/* Enters the corrupt state, once, logging what to do; @why is copied. */
void store_set_corrupt(struct store *st, const char *why);

/* ---- backend: the writer connection (store_schema.c) ---- */

/* SQLite's process-wide settings, once, before the first connection (a
 * benchmark that opens its own connections calls it first too). */
void store_sqlite_setup(void);
/* Opens st->path for the writer (created if missing): 0 or -EIO, logged. */
int store_db_open(struct store *st);
/* Stops what the writer connection runs (a migration), from any thread. */
void store_db_interrupt(struct store *st);
/* Finalizes every statement, closes the idle readers and the writer
 * connection, after the writer thread ended. */
void store_db_close(struct store *st);
/* The database's files on disk (main file and WAL), bytes. */
int64_t store_db_bytes(const struct store *st);

/* The start check, pragmas, migrations and statements: the writer's
 * first work. 0, -EUCLEAN (damaged file) or -errno. */
int store_setup(struct store *st);
void store_finalize_all(struct store *st);
/* Checkpoints the WAL when it has grown past its threshold. */
void store_checkpoint(struct store *st);
int store_exec(sqlite3 *db, const char *sql);
int store_pragma_int(sqlite3 *db, const char *sql, int64_t *out);
int store_user_version(sqlite3 *db, int *out);
int store_step_done(sqlite3_stmt *s);
int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out);
int store_check_corrupt(struct store *st, sqlite3 *db);

/* The schema version this collector migrates to. */
int store_schema_version(void);

/* Operator events that are not failovers (deploy, drill, ...) become kind
 * "marker" (wire_event_kind's rule): migration 7's last step, and again
 * where a compaction ends (store_compact.c). Idempotent. */
#define STORE_MARKER_RECLASSIFY_SQL \
    "INSERT OR IGNORE INTO kinds (name) VALUES ('marker');" \
    "UPDATE events SET kind_id = (SELECT id FROM kinds WHERE name =" \
    "  'marker') WHERE kind_id = (SELECT id FROM kinds WHERE name =" \
    "  'failover') AND data IS NOT NULL AND CASE WHEN json_valid(data)" \
    "  THEN json_extract(data, '$.kind') END NOT IN ('failover', 'manual');"

/* Moves every event into migration 6's compact rows, if that is not done
 * yet (store_compact.c): 0, -EINTR when store_close asked to stop (the
 * next start resumes), or -EIO. */
int store_compact_finish(struct store *st);

/* ---- backend: one batch (store_fields.c, store_delivery.c) ---- */

/* Fills @e's target, text, and fields from @ev (all borrowed from @ev or
 * @w): a probe result the typed columns hold gets e->probe (and
 * e->answers, its DNS answers as JSON written into @w); any other event
 * e->data, its fields as JSON written into @w. 0, or @w's error. */
int store_event_fields(const Sextant__V1__Event *ev, struct jsonw *w,
                       struct store_event_row *e);
/* The interned ids of one event row's strings; 0: none (NULL). */
struct store_event_ids {
    int64_t kind, target, text;
    int64_t region, cert, answers;      /* typed probe columns */
};
/* An events row's columns in store_event_ins_sql's order: the first
 * STORE_EVENT_INTS as integers (has[i] 0: NULL), the last the data text
 * (NULL: none). Either backend writes these values. */
#define STORE_EVENT_INTS 18
struct store_event_cols {
    int64_t v[STORE_EVENT_INTS];
    int has[STORE_EVENT_INTS];
    const char *data;                   /* borrowed from the row */
};
void store_event_cols(const struct store_event_row *e,
                      const struct store_event_ids *ids,
                      struct store_event_cols *c);
/* A backend's interning of string @s in dimension @dim: 0 with *@id, or
 * -errno. */
typedef int (*store_intern_fn)(struct store *st, int dim, const char *s,
                               int64_t *id);
/* Interns every string of @e (kind, target, text, and a typed probe's
 * region, cert and answers) with @intern into @ids: 0 or -EIO. */
int store_event_intern(struct store *st, const struct store_event_row *e,
                       store_intern_fn intern, struct store_event_ids *ids);
/* The first seq a new agent_offsets row covers: above every stored seq
 * (@prior_max) and at least the batch's lowest new seq @first. */
int64_t store_offset_from(uint64_t prior_max, uint64_t first);
/* The events insert (INSERT OR IGNORE, 19 parameters), as the writer
 * prepares it; the benchmarks prepare it on their own connections. */
extern const char store_event_ins_sql[];
/* Binds @e, with its strings' ids @ids, to @s (store_event_ins_sql): 0,
 * or -EIO with @s reset. The caller steps. */
int store_event_bind(sqlite3_stmt *s, const struct store_event_row *e,
                     const struct store_event_ids *ids);
/* Stores @b inside the group's transaction (see store_submit): 0 with
 * *acked_seq, or -errno. */
int store_ingest_locked(struct store *st, const Sextant__V1__Batch *b,
                        int64_t recv_ms, uint64_t *acked_seq);

/* A backend's side of one batch's delivery (store_deliver), each inside
 * the group's transaction: 0 or -errno unless said otherwise.
 *   agent: finds or creates @b's agent row into @row (zeroed first), and
 *     holds it against every other writer until the transaction ends;
 *   seq_max: the agent's highest stored seq (0: none);
 *   walk, next, walk_end: the agent's stored (seq, unix_ms) with seq in
 *     [from, to] (to UINT64_MAX: no bound) in ascending order, next
 *     giving 1 (a row), 0 (the end) or -errno; walk_end ends a walk
 *     (also one that failed), logs a database error under @what, and
 *     returns @rc;
 *   event: inserts @e (its strings interned, e->target_id and
 *     e->text_id set) unless its (agent, seq) is stored already: 1
 *     inserted, 0 there already, or -errno. A collector-made event (seq
 *     0) is always inserted;
 *   offset: agent_offsets' row for @row's estimate, if it moved (see
 *     store_incident's corrected time below);
 *   agent_put: writes @row back with what @b says of the agent. */
struct store_delivery_ops {
    int (*agent)(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, struct store_agent_row *row);
    int (*seq_max)(struct store *st, int64_t agent_id, uint64_t *out);
    int (*walk)(struct store *st, int64_t agent_id, uint64_t from,
                uint64_t to);
    int (*next)(struct store *st, uint64_t *seq, int64_t *ms);
    int (*walk_end)(struct store *st, int rc, const char *what);
    int (*event)(struct store *st, struct store_event_row *e);
    int (*offset)(struct store *st, const struct store_agent_row *row,
                  uint64_t prior_max, uint64_t first);
    int (*agent_put)(struct store *st, const struct store_agent_row *row,
                     const Sextant__V1__Batch *b, int64_t recv_ms,
                     int reported);
};
/* Stores @b through @ops (see store_submit: the watermark, gaps, drops,
 * clock offset, target_now notes and rollup samples): 0 with
 * *acked_seq, or -errno. Either backend's writer. */
int store_deliver(struct store *st, const struct store_delivery_ops *ops,
                  const Sextant__V1__Batch *b, int64_t recv_ms,
                  uint64_t *acked_seq);
/* agents.clock_window's bytes into @row's window (what does not parse is
 * dropped), and back into @out: its length. */
void store_clock_load(struct store_agent_row *row, const void *blob,
                      size_t len);
size_t store_clock_save(const struct store_agent_row *row,
                        uint8_t out[STORE_CLOCK_WINDOW * STORE_CLOCK_SAMPLE]);

/* The name an event's health is stored under ("healthy", "unhealthy",
 * "unknown"); static text. */
const char *store_health_name(Sextant__V1__Health h);
/* target_now's health after a handoff state event (wire.h): the agent
 * left the target to other probers, so status counts it neither way. */
#define STORE_HANDED_OFF "handed_off"

/* ---- backend: target_now (store_now.c) ---- */

/* A state or probe older (agent clock) than the row's keeps the row as it
 * is: a late batch never moves "now" back. A tie goes to the newer
 * write, as within a group the later event of the agent does. The SET
 * list of either backend's upsert (the new row as "excluded"). */
#define STORE_NOW_TAKE(t, col) \
    "CASE WHEN excluded." t " >= coalesce(target_now." t ", excluded." t \
    ") THEN excluded." col " ELSE target_now." col " END"
#define STORE_NOW_SET \
    " health = " STORE_NOW_TAKE("state_ms", "health") "," \
    " state_ms = " STORE_NOW_TAKE("state_ms", "state_ms") "," \
    " ok = " STORE_NOW_TAKE("probe_ms", "ok") "," \
    " status = " STORE_NOW_TAKE("probe_ms", "status") "," \
    " total_us = " STORE_NOW_TAKE("probe_ms", "total_us") "," \
    " text_id = " STORE_NOW_TAKE("probe_ms", "text_id") "," \
    " probe_ms = " STORE_NOW_TAKE("probe_ms", "probe_ms")
/* The upsert the writer prepares (st->now_put). */
extern const char store_now_put_sql[];
/* One event of the group for target_now: a state (probe_ms INT64_MIN) or
 * a typed probe (state_ms INT64_MIN). @health is borrowed from a static
 * name; @ord keeps the events' order among equal times. */
struct store_now {
    int64_t agent_id, target_id;
    int64_t state_ms, probe_ms;
    const char *health;
    int ok, status;
    int64_t total_us, text_id;
    size_t ord;
};
/* Upserts one (agent, target)'s merged state and probe @k. */
typedef int (*store_now_put_fn)(struct store *st, const struct store_now *k);
/* Merges the group's notes per (agent, target), in the events' order,
 * and hands each key to @put in ascending (agent, target) order; empties
 * the notes (also on failure). Neutral. */
int store_now_merge(struct store *st, store_now_put_fn put);
/* Notes stored event @ev (@e its stored row, target_id and text_id set)
 * for target_now when it is a state event or a typed probe with a
 * target: 0 or -ENOMEM. Undone like the samples: st->n_now back to a
 * mark. */
int store_now_note(struct store *st, const Sextant__V1__Event *ev,
                   const struct store_event_row *e);
/* Writes the group's notes, one upsert per (agent, target), inside the
 * group's transaction, and empties them (also on failure): 0 or -EIO. */
int store_now_flush(struct store *st);
/* Fills an empty target_now from the stored events, once every migration
 * (migration 6's event move too) is done: 0 or -EIO, logged. */
int store_now_backfill(struct store *st);

/* ---- backend: interned strings (store_dims.c) ---- */

int store_intern(struct store *st, int dim, const char *s, int64_t *id);
/* The cache of @d (neutral): 1 with *@id when @s is in it, else 0; and
 * noting @s's id (the cache starts over when full; out of memory: not
 * noted). store_dims_alloc allocates every cache (0 or -ENOMEM; freed by
 * store_dims_finalize). */
int store_dim_get(struct store_dim *d, const char *s, int64_t *id);
void store_dim_put(struct store_dim *d, const char *s, int64_t id);
int store_dims_alloc(struct store *st);
void store_dim_reset(struct store_dim *d);
void store_dims_reset(struct store *st);
int store_dims_prepare(struct store *st);
void store_dims_finalize(struct store *st);      /* also after a failed
                                                  * prepare */

/* ---- backend: rollups (store_rollup.c) ---- */

int64_t store_floor(int64_t ms, int64_t step);
int store_sample(struct store *st, const struct store_agent_row *row,
                 const struct store_event_row *e,
                 const Sextant__V1__ProbeResult *p);
/* Writes this group's samples into SQLite's rollups (store_rollups_merge
 * with its own row update). */
int store_rollups_flush(struct store *st, int64_t now_ms);
/* A rollup row's worth of new probe results. */
struct store_delta {
    int64_t target_id, cluster_id, t;
    uint64_t count, failures;
    struct hist h;
};
/* Adds delta @d to its row of the minute (@hour 0) or hour rollup. */
typedef int (*store_rollup_fn)(struct store *st, int hour,
                               const struct store_delta *d);
/* A rollup row after adding a delta: its counts and histogram blob
 * (caller frees). */
struct store_rollup_row {
    uint64_t count, failures;
    uint8_t *blob;
    size_t len;
};
/* Adds @d to a row's stored @count, @failures and histogram @blob of @len
 * bytes (@has_old 0: no row yet, those are ignored) into @out: 0 or
 * -ENOMEM. A bad stored histogram is logged and replaced. Neutral. */
int store_rollup_fold(const struct store_delta *d, int has_old,
                      uint64_t count, uint64_t failures, const void *blob,
                      size_t len, struct store_rollup_row *out);
/* Folds this group's probe results (st->samples, sorted here) into one
 * delta per rollup row and hands each to @add, minute and hour rows each
 * in ascending (target, cluster, t) order: one write per row touched,
 * however many results it gets. Results for minutes (hours) already past
 * their retention are not rolled up into minute (hour) rows. Empties the
 * samples (also on failure). Neutral. */
int store_rollups_merge(struct store *st, int64_t now_ms, store_rollup_fn add);
int store_backfill_rollups(struct store *st);

/* ---- backend: retention (store_retention.c) ---- */

void store_retention_reset(struct store *st, int64_t now_ms);
int store_retention_step(struct store *st);

/* ---- backend: incidents (store_incident.c) ----
 *
 * Corrected time: an event's unix_ms plus the offset_ms of its agent's
 * latest agent_offsets row with from_seq <= its seq (0 when none). A row
 * is written (store_delivery.c) when a batch's offset estimate moved by
 * 1 ms or more, from a seq above every seq the agent has stored, so the
 * corrected time of a stored event never changes afterwards: the live
 * engine, a replay and a rebuild from scratch see the same times, which
 * is what makes them equal. The smoothed agents.clock_offset_ms keeps
 * moving and is only the timeline's "now" view. */

/* Opens the driver when opt.topo has services: starts rebuilding the
 * engine from the stored events on a thread and read snapshot of its own
 * (store_incstart.c), publishes "catching up", and returns: the store is
 * ready meanwhile. 0 (also without services) or -errno. Writer thread. */
int store_inc_open(struct store *st);
/* Frees the driver and the published status (store_close); stops a
 * rebuild still under way. */
void store_inc_free(struct store *st);
/* While the start's rebuild runs (st->inc_start, store_incstart.c):
 * notes what a stored event means for the catch-up; when the rebuild is
 * done, takes its engine over as st->inc, syncs the incidents table and
 * replays what was stored meanwhile (store_inc_tick calls it); when to
 * look again (monotonic ms); and, at close, stops the rebuild. */
void store_inc_start_note(struct store *st, const Sextant__V1__Event *ev,
                          const struct store_event_row *e);
void store_inc_start_tick(struct store *st);
int64_t store_inc_start_due(const struct store *st);
void store_inc_start_free(struct store *st);
/* Renders @in's engine state as store_service_status's JSON, each
 * service with "catching_up" @catching, and hands it to the readers. */
void store_inc_publish(struct store *st, struct store_inc *in, int catching);
/* Notes a stored event @ev of agent @agent_id (@e its stored fields: the
 * target) for the engine if it matters to the topology; fed after the
 * group commits. Out of memory: logged and skipped. */
void store_inc_note(struct store *st, int64_t agent_id,
                    const Sextant__V1__Event *ev,
                    const struct store_event_row *e);
/* The notes so far, and undoing the notes after @mark (a batch or a
 * group rolled back). */
size_t store_inc_mark(const struct store *st);
void store_inc_undo(struct store *st, size_t mark);
/* Feeds what the last commits stored, advances the engine to the
 * collector's now less the hold, writes the incidents that changed and
 * publishes the state. Writer thread, between groups. */
void store_inc_tick(struct store *st);
/* When the next tick is due without new events (monotonic ms). */
int64_t store_inc_due(const struct store *st);
/* Runs a JOB_ANNOTATE job and answers it. */
void store_inc_annotate_job(struct store *st, struct store_job *j);

/* The driver's inner parts (store_incscan.c and, for the incidents
 * table, store_incrows.c), for store_incident.c. */
#define STORE_INC_HOLD_MS      5000     /* the engine trails now by this */
/* An event whose corrected time is more than this after the collector
 * received it claims to come from the future (a stepped or hostile
 * clock): it is never fed, live or rebuilt, so that it cannot sit in the
 * pending list for ever, and whether it is fed depends on stored facts
 * only (unix_ms, recv_delta_ms, agent_offsets), not on when one looks. */
#define STORE_INC_FUTURE_MS    60000
#define STORE_INC_SNAP_MS      60000LL  /* a snapshot per minute ... */
#define STORE_INC_SNAPS        60       /* ... for the last hour */
#define STORE_INC_SNAP_KEEP_MS (STORE_INC_SNAP_MS * STORE_INC_SNAPS)
/* Closed incidents the engine keeps (inc_engine_keep_closed): as long
 * as the oldest snapshot a replay may restore. The rows are written from
 * the sink's changes (store_inc_sync), so this bounds memory only: a
 * replay or rebuild that drops an incident still writes it. */
#define STORE_INC_KEEP_CLOSED_MS STORE_INC_SNAP_KEEP_MS
#define STORE_INC_PENDING_MAX  1000000u /* held events, at most */
#define STORE_INC_LOCK_MS      1000     /* rebuild: wait for the lock */

/* The strings of one event for the engine, in one allocation at s[0]. */
enum { S_TARGET, S_SERVED, S_ANSWERS, S_DNS, S_FOKIND, S_FROM, S_TO,
       S_SERVICE, S_METRIC, S_COUNT };
struct store_inc_ev {
    int64_t t;                  /* corrected; INT64_MIN: not looked up */
    int64_t unix_ms, agent;
    int64_t recv_ms;            /* the collector's clock when stored */
    uint64_t seq;
    int kind;                   /* enum inc_ev_kind */
    int ok, healthy, has_answers;
    size_t n_answers;           /* s[S_ANSWERS]: that many strings, each
                                 * NUL-terminated, one after the other */
    double value;
    char *s[S_COUNT];
};

/* An int64 -> string map (targets, regions, answers by id; agents'
 * offset segments in a, b, c). */
struct store_inc_slot {
    int64_t key;
    int used;
    char *s;                    /* owned; NULL allowed */
    int64_t a, b, c;
};
struct store_inc_map {
    struct store_inc_slot *slots;
    size_t cap, used;
};

struct store_inc_snap {
    int64_t h;                  /* the engine's horizon when taken */
    struct inc_engine *e;
};

struct store_inc_change {
    int what;                   /* enum inc_change */
    struct inc_record r;        /* its pointers are the topology's */
};

/* An event's JSON data fields the driver reads back (either backend);
 * strings borrowed from the backend's row, NULL when absent. */
struct store_inc_drow {
    const char *to, *name, *new_answers, *fokind, *from, *service,
               *served_by, *answers, *type;
    int ok;                     /* "ok" as an integer (true: 1) */
    int value_num;              /* "value" is a JSON number */
    int handoff;                /* its text starts with WIRE_HANDOFF */
    double value;
};
/* One stored event as the driver's scan reads it (either backend); the
 * ids are 0 for NULL. */
struct store_inc_srow {
    int64_t id, agent, seq, unix_ms, kind, recv_delta;
    int64_t target_id, served_by_id, answers_id;
    int probe_type, ok, has_data;
    int has_d;                  /* d was read with the row (PostgreSQL);
                                 * else looked up by id (SQLite) */
    struct store_inc_drow d;
};

/* The driver's statements (store_incscan.c's table), by number. */
enum {
    INC_Q_OFF_AT, INC_Q_OFF_NEXT, INC_Q_OFF_BOUND, INC_Q_SCAN, INC_Q_DATA,
    INC_Q_TARGET, INC_Q_REGION, INC_Q_ANSWERS, INC_Q_KINDS, INC_Q_AGENT,
    INC_Q_ROW_GET, INC_Q_ROW_PUT, INC_Q_ROW_LIST, INC_Q_ROW_DEL,
    STORE_INC_STMTS
};
struct store_inc {
    const struct topology *topo;        /* borrowed */
    sqlite3 *db;                        /* borrowed: the writer's */
    /* PostgreSQL: the leader's connection and scan state (pg_incident.c),
     * which the database operations below use instead of db and stmt;
     * NULL: SQLite. */
    struct store_pg_inc *pg;
    sqlite3_stmt *stmt[STORE_INC_STMTS];
    struct inc_engine *eng;
    /* Every event with t <= h was fed and the engine advanced to h. */
    int64_t h;
    struct store_inc_snap snaps[STORE_INC_SNAPS];   /* oldest first */
    size_t n_snaps;
    int64_t snap_next;          /* next minute boundary to snapshot at */
    int64_t snap_from;          /* none before this (they would expire) */
    struct store_inc_ev *pend;  /* noted, not yet fed */
    size_t n_pend, cap_pend;
    struct store_inc_change *chg;       /* the sink's, since the flush */
    size_t n_chg, cap_chg;
    int chg_err;
    const char **names;         /* the topology's target and global
                                 * names, open addressing; borrowed */
    size_t names_cap;
    struct store_inc_map targets, regions, answers, segs;
    int64_t kind_ids[5];        /* probe, state, dns, metric, failover */
    uint64_t fed;               /* events fed since created */
    uint64_t future;            /* not fed: STORE_INC_FUTURE_MS */
    /* A replay owed (late events, or an engine error): from late_from,
     * first owed at late_first, last late event at late_last (monotonic
     * ms); replays done since created. */
    int late;
    int64_t late_from, late_first, late_last;
    atomic_ullong replays;      /* read by store_inc_replays */
    /* The engine ran out of memory halfway through a step
     * (-ENOTRECOVERABLE): nothing it holds is written until a replay
     * replaced it; recoveries counts those replays. */
    int broken;
    atomic_ullong recoveries;   /* read by store_inc_recoveries */
    atomic_ullong held;         /* incidents in the engine after a tick */
    /* Rows whose "opened" went out in this run (ascending ids), and the
     * highest id before this run wrote any (-1: not read yet): only
     * those, or rows an earlier run wrote, are told "retracted".
     * told_lost: an id could not be noted, so every retraction is told. */
    int64_t *told;
    size_t n_told, cap_told;
    int64_t id_base;
    int told_lost;
    int64_t due_mono;           /* next tick, monotonic ms */
    int64_t pub_mono;           /* next status publication, same */
    int quiet;                  /* no incident_fn calls (history) */
    int warned;
};

/* The driver's statements' text, by number (PostgreSQL runs those
 * written with $N too). */
extern const char *const store_inc_sql[STORE_INC_STMTS];
/* A new driver for @topo with its statements on @db (NULL: none, the
 * PostgreSQL backend sets in->pg instead). */
int store_inc_new(sqlite3 *db, const struct topology *topo,
                  struct store_inc **out);
/* The event of scanned row @r if it matters to the topology: 1 and @x
 * (its corrected time set), 0 not, -errno (store_incscan.c). */
int store_inc_srow_ev(struct store_inc *in, const struct store_inc_srow *r,
                      struct store_inc_ev *x);
/* Prepares the driver's statements on @db (finalizing those it had):
 * 0, or -EIO and none; and finalizes them all (in->db NULL). */
int store_inc_prepare(struct store_inc *in, sqlite3 *db);
void store_inc_unprepare(struct store_inc *in);
/* Makes room for one more element in the array *@v of @n used and *@cap
 * allocated elements of @size bytes (doubling, from @first): 0 or
 * -ENOMEM, *v unchanged then. */
int store_inc_grow(void *v, size_t *cap, size_t n, size_t size,
                   size_t first);
/* Resets @s after a use (NULL: no-op); a text column of @s. */
void store_inc_done(sqlite3_stmt *s);
const char *store_inc_col(sqlite3_stmt *s, int col);
void store_inc_destroy(struct store_inc *in);           /* NULL: no-op */
void store_inc_ev_free(struct store_inc_ev *x);
/* Copies @s (NULL: "") into @x (an answers string is split at '\n').
 * 0 or -ENOMEM. */
int store_inc_ev_strings(struct store_inc_ev *x, const char *const *s);
int store_inc_fo_kind(const char *kind);    /* failover or manual */
int store_inc_relevant(const struct store_inc *in, const char *name);
/* Takes @x into the pending list: 0, -ENOBUFS (full; @x freed),
 * -ENOMEM (@x freed). */
int store_inc_pend(struct store_inc *in, struct store_inc_ev *x);
/* Replays done since the store opened (any thread once ready: tests
 * and store_stats). */
unsigned long long store_inc_replays(struct store *st);
/* Replays that replaced an engine broken by -ENOTRECOVERABLE, and the
 * incidents the engine held after the last tick (the same). */
unsigned long long store_inc_recoveries(struct store *st);
unsigned long long store_inc_held(struct store *st);
/* 1 if @x (t set) is from the future (STORE_INC_FUTURE_MS): counted, and
 * logged the first time. */
int store_inc_future(struct store_inc *in, const struct store_inc_ev *x);
/* Looks up the corrected times of new pending events, sorts them. */
int store_inc_pend_times(struct store_inc *in);
void store_inc_pend_drop_upto(struct store_inc *in, int64_t upto);
int store_inc_feed_pending(struct store_inc *in, int64_t upto);
void store_inc_seg_reset(struct store_inc *in);
/* Feeds the stored events with corrected time in (@after, @upto], in
 * order: those up to @feed_upto to the engine, the rest to pending. */
int store_inc_scan(struct store_inc *in, int64_t after, int64_t upto,
                   int64_t feed_upto);
void store_inc_advance(struct store_inc *in, int64_t upto);
/* PostgreSQL (in->pg): takes the events with id in (@after, @upto] that
 * matter into the pending list, their corrected times set. 0, -ENOBUFS,
 * -ENOMEM or -EIO. */
int store_inc_scan_new(struct store_inc *in, int64_t after, int64_t upto);
/* Back to the last snapshot before @t (*from its horizon), or to a new
 * engine (*from INT64_MIN). */
int store_inc_restore(struct store_inc *in, int64_t t, int64_t *from);
/* Writes what the sink saw since the last flush, then tells incident_fn. */
int store_inc_flush(struct store *st);
/* Writes every incident the engine holds or the sink handed out since
 * the last flush (the latest of each) that differs from its row, and
 * deletes the rows opened after @from that are none of those; @in_tx: a
 * transaction is open already. -ENOMEM if the sink lost a change and
 * @from is not INT64_MAX (a replay's or rebuild's changes are its only
 * record of incidents the engine dropped: do it again). */
int store_inc_sync(struct store *st, int64_t from, int in_tx);
int store_inc_row_id(struct store_inc *in, const char *service,
                     int64_t opened_ms, int64_t *id);
void store_inc_agent_name(struct store_inc *in, int64_t agent_id,
                          char *cluster, size_t cluster_len, char *node,
                          size_t node_len);

/* One incidents row, for rendering (store_incquery.c); times INC_NONE
 * (incident.h) for NULL; strings borrowed. */
struct store_inc_row {
    int64_t id;
    const char *service, *pattern, *region, *to_region;    /* to: NULL */
    int manual;
    int64_t t[7];               /* STORE_INC_T_* */
    int has_rpo;
    double rpo_ms;
};
enum { STORE_INC_T_FIRST, STORE_INC_T_DETECTED, STORE_INC_T_FAILOVER,
       STORE_INC_T_DNS_FIRST, STORE_INC_T_DNS_ALL, STORE_INC_T_RESTORED,
       STORE_INC_T_CLOSED, STORE_INC_T_COUNT };
/* Writes @r as store.h's incident object, without its closing brace
 * (the caller may add "timeline" and "annotations"). */
void store_inc_json(struct jsonw *w, const struct store_inc_row *r);
/* {"ms":N,"utc":"..."} or null for INC_NONE; and @ms's "utc" text
 * alone (2006-01-02T15:04:05.000Z) into @utc. */
void store_inc_time(struct jsonw *w, int64_t ms);
void store_inc_utc(int64_t ms, char *utc, size_t len);
/* The incident timeline's first part (both backends' SQL): m, the
 * largest offset, and ev, the events of the window [@lo, @hi] (their
 * placeholders) in corrected time c, read by unix_ms widened by m; then
 * its events' columns. */
#define STORE_INC_TL_EV(lo, hi) \
    "WITH m(b) AS (SELECT coalesce(max(abs(offset_ms)), 0)" \
    "  FROM agent_offsets)," \
    " ev AS (SELECT e.id, e.agent_id, e.seq, e.unix_ms," \
    "  e.recv_delta_ms, k.name AS kind, tg.name AS target, e.data," \
    "  e.text_id, e.ok, e.status, e.total_us, e.served_by_id," \
    "  e.unix_ms + coalesce((SELECT o.offset_ms FROM agent_offsets o" \
    "   WHERE o.agent_id = e.agent_id AND o.from_seq <= e.seq" \
    "   ORDER BY o.from_seq DESC LIMIT 1), 0) AS c" \
    "  FROM m, events e JOIN kinds k ON k.id = e.kind_id" \
    "  LEFT JOIN targets tg ON tg.id = e.target_id" \
    "  WHERE e.unix_ms >= " lo " - m.b AND e.unix_ms <= " hi " + m.b" \
    "  AND e.seq IS NOT NULL),"
#define STORE_INC_EV_COLS \
    "id, agent_id, seq, unix_ms, recv_delta_ms, kind, target, data," \
    " text_id, ok, status, total_us, served_by_id, c"
/* An incident row's columns, in store_inc_row's order (both backends). */
#define STORE_INC_COLS \
    "SELECT id, service, pattern, region, to_region, manual," \
    " first_failure_ms, detected_ms, failover_start_ms, dns_first_ms," \
    " dns_all_ms, restored_ms, closed_ms, rpo_ms FROM incidents"
/* The incident queries' pieces both backends use (store_incquery.c):
 * one incident's row by id ($1), and the annotations of an incident's
 * timeline ($1 its id, $2 service, $3..$4 the window) as SQL; the
 * timeline's window of @row; the topology's service @name (NULL: none);
 * the JSON arrays of the timeline's targets, failed region's targets and
 * region names; one annotation's JSON (@service NULL and @incident 0:
 * null). */
extern const char store_inc_one_sql[];
extern const char store_inc_notes_sql[];
void store_inc_window(const struct store_inc_row *row, int64_t *from_ms,
                      int64_t *to_ms);
struct topo_service;
const struct topo_service *store_inc_service(const struct store *st,
                                             const char *name);
void store_inc_sets(const struct topo_service *svc,
                    const struct store_inc_row *row, struct jsonw *all,
                    struct jsonw *failed, struct jsonw *regions);
void store_inc_note_json(struct jsonw *w, int64_t id, int64_t unix_ms,
                         const char *text, const char *service,
                         int64_t incident);
/* store_service_status's JSON of @in's engine, each service with
 * "catching_up" @catching: caller frees; NULL (logged) out of memory.
 * store_inc_publish hands it to the readers (st->inc_status). */
char *store_inc_status_json(struct store_inc *in, int catching);
/* store_annotate's checks of its arguments: 0 or -EINVAL. */
int store_annotate_check(const struct store *st, int64_t unix_ms,
                         const char *text, const char *service,
                         int64_t incident);

/* ---- the writer thread (store_writer.c) ---- */

void *store_writer(void *arg);

/* ---- backend: reads (store_sql.c, store_query.c) ---- */

/* store_open_readonly's check of the file through a read connection: 0,
 * -EPROTO (not this collector's schema) or -EIO, logged. */
int store_readonly_check(struct store *st);

/* The integer in environment variable @name (tests' settings), or @def
 * when unset or not in @lo..@hi (then logged). */
int64_t store_env_int(const char *name, int64_t lo, int64_t hi,
                      int64_t def);
/* sqlite3 progress handler: nonzero past the deadline at @arg (ns). */
int store_query_progress(void *arg);

/* A timeline's kind filter. Only probes are stored without JSON data
 * (schema 6), so a filter that cannot match a probe says so in its SQL
 * and SQLite may use the partial (kind_id, unix_ms) index. */
enum store_kind_filter {
    STORE_KIND_ANY,             /* no filter */
    STORE_KIND_PROBE,           /* one kind: probe */
    STORE_KIND_RARE,            /* one kind, not probe */
    STORE_KINDS_PROBE,          /* a list holding probe */
    STORE_KINDS_RARE,           /* a list without probe */
    STORE_KIND_FILTERS
};

/* A timeline's target filter: none, one target, or a service's. */
enum store_tl_targets {
    STORE_TL_ALL,
    STORE_TL_TARGET,
    STORE_TL_SERVICE,
    STORE_TL_TARGETS
};

/* Every statement the read side runs (store_sql[]), by number: a read
 * connection prepares each once, the first time it needs it. */
enum {
    STORE_SQL_TIMELINE = 0,     /* + store_sql_timeline() */
    STORE_SQL_LATENCY = STORE_SQL_TIMELINE +
                        2 * 2 * 2 * STORE_TL_TARGETS * STORE_KIND_FILTERS,
    STORE_SQL_NAME_KNOWN = STORE_SQL_LATENCY + 2 * 2 * 2, /* + store_names */
    STORE_SQL_NAME_LIST = STORE_SQL_NAME_KNOWN + 3,    /* + store_names */
    STORE_SQL_CLUSTERS = STORE_SQL_NAME_LIST + 3,
    STORE_SQL_MAX_ID,
    STORE_SQL_MAX_OFFSET,
    STORE_SQL_COUNT
};
extern const char *const store_sql[STORE_SQL_COUNT];
/* The timeline statement for agent or @corrected order, with or without a
 * @cluster and a @region filter, a @targets and a @kind filter. */
int store_sql_timeline(int corrected, int cluster, int region,
                       enum store_tl_targets targets,
                       enum store_kind_filter kind);
/* The latency statement for minute or @hour steps, with or without a
 * @cluster filter, for one target or a @list of them. */
int store_sql_latency(int hour, int cluster, int list);

/* A read-only connection and the statements it prepared so far (NULL: not
 * yet), kept with it while it sits idle in the pool. Used by one thread
 * at a time: the one that took it from the pool. */
struct store_reader {
    sqlite3 *db;
    sqlite3_stmt *stmt[STORE_SQL_COUNT];
    /* Statements of query files with their own SQL table (store_status.c),
     * by the address of their constant text; NULL: a free slot. */
    const char *extra_sql[STORE_READER_EXTRA];
    sqlite3_stmt *extra[STORE_READER_EXTRA];
};
/* Finalizes the statements and closes the connection; NULL is a no-op. */
void store_reader_close(struct store_reader *r);

/* The hooks a query file outside store_query.c (store_status.c) runs its
 * queries with, as store_query.c's own do. store_query_begin: a read
 * connection with the query's deadline in *@until_ns (NULL with *@err
 * -EAGAIN while migrating when @need_ready, or -EIO). store_reader_stmt_sql:
 * the statement of constant text @sql (compared by address), prepared
 * once per connection and kept; -EIO past STORE_READER_EXTRA texts.
 * store_stmt_done: resets a statement after use (NULL: none).
 * store_query_error: -ETIMEDOUT, -EUCLEAN or -EIO for a failed step.
 * store_query_end: logs a failure under @what, hands @s and @r back,
 * returns the error or @rc. store_json_take: @w's text into *@out. */
struct store_reader *store_query_begin(struct store *st, int64_t *until_ns,
                                      int *err, int need_ready);
int store_reader_stmt_sql(struct store_reader *r, const char *sql,
                          sqlite3_stmt **out);
void store_stmt_done(sqlite3_stmt *s);
int store_query_error(struct store *st, sqlite3 *db);
int store_query_end(struct store *st, struct store_reader *r,
                    sqlite3_stmt *s, int rc, const char *what);
int store_json_take(struct jsonw *w, char **out, size_t *out_len);
/* store_tlnote.c, annotations as timeline rows. store_tl_note_max: the
 * newest annotation id (none: 0), a first page's bound. store_tl_note_stmt:
 * into *@out the bound statement of @q's annotations after the position
 * (@page[1], @page[2]) up to id @page[3], in the order (time, -id), with
 * the timeline statement's columns; NULL when @q takes none (a cluster,
 * region, target or kind filter that excludes them). 0, or -EIO. */
int store_tl_note_max(struct store_reader *r, int64_t *out);
int store_tl_note_stmt(struct store_reader *r,
                       const struct store_timeline_query *q,
                       const int64_t page[4], sqlite3_stmt **out);
/* Closes every idle reader (store_db_close, after the writer ended). */
void store_readers_close(struct store *st);

/* ---- neutral rendering, shared with the PostgreSQL backend ---- */

/* A timeline (store_tlrow.c). */
#define STORE_TIMELINE_BYTES (64u << 20) /* reply cap */
#define STORE_TL_CELLS 7        /* time, corrected time, cluster, region,
                                 * node, kind, target: a table row's first
                                 * cells (then the summary) */
/* One row of a page, plain (strings borrowed until the source's next). */
struct store_tl_row {
    /* The event's JSON object but its "fields" (as store.h lists its
     * keys), @event_len bytes ending in '}'. */
    const char *event;
    size_t event_len;
    /* Its fields as JSON text; NULL: a typed probe's columns below
     * (has_type), or null. */
    const char *data;
    int has_type;
    int64_t type, ok, status;
    int64_t us[5];              /* dns, connect, tls, first byte, total */
    int64_t cert;               /* not_after_ms, 0: none */
    const char *served_by;      /* NULL: "" */
    const char *answers;        /* JSON array; NULL: none */
    const char *error;          /* a JSON string; NULL: "" */
    int64_t id;                 /* an annotation's negated */
    int64_t key;                /* the order's time: the cursor's */
    const char *cells[STORE_TL_CELLS];  /* NULL: empty */
};
/* Where a page's rows come from: @next fills @row with the next one in
 * (key, id) order and returns 1, or 0 at the end, or -errno. */
struct store_tl_src {
    int (*next)(struct store_tl_src *src, struct store_tl_row *row);
};
/* What a timeline query is working with: the reply, a row's JSON, its
 * table row and summary, and the service's names (JSON arrays: ?10 its
 * targets, every region's, the lag targets and the global ones; ?13 its
 * regions). */
struct store_tl {
    struct jsonw w, row, trow, summary, tg, rg;
    enum table_format tf;
    int table;
};
/* How one run of a page went: the rows it gave, the last one's position,
 * and (more) the row it stopped at, one past the limit or the reply's
 * cap, with its key; err a source's error, added < 0 the reply's. */
struct store_tl_page {
    unsigned count;
    int more, err, added;
    int64_t last_key, last_id, stop_key;
};
void store_tl_init(struct store_tl *t, const struct store_timeline_query *q);
void store_tl_free(struct store_tl *t);
/* Runs @s (and @a, the annotations, NULL: none) once into @t's reply,
 * from its head on, merging the two by position. Each source gives at
 * most limit + 1 rows, and a page takes limit: the one that runs out
 * first has no more. */
void store_timeline_steps(struct store_tl *t,
                          const struct store_timeline_query *q,
                          struct store_tl_src *s, struct store_tl_src *a,
                          struct store_tl_page *pg);
/* The corrected order's paging (store_query.c), the same on both
 * backends: a page first reads STORE_TL_SPAN_MS of agent-clock time past
 * its start (and the offset margin), then STORE_TL_SPAN_GROWTH times more
 * each time that was too little. store_timeline_span: the scan's end on
 * the agent clock for a page from corrected time @lo that reads @span ms
 * past it, with @margin (>= 0) the largest offset; *@full when that
 * reaches the window's end @to anyway (the scan then ends at @to +
 * margin: INT64_MAX is returned). An event not scanned is corrected to
 * @lo + @span or later: a page whose rows, and the one it stopped at,
 * come before that is the page the whole window gives.
 * store_timeline_widen: after the page @pg of such a scan, 0 when it is
 * that page (or failed), else 1 with *@span grown for the next try. */
#define STORE_TL_SPAN_MS     4000
#define STORE_TL_SPAN_GROWTH 4
int64_t store_timeline_span(int64_t lo, int64_t span, int64_t margin,
                            int64_t to, int *full);
int store_timeline_widen(const struct store_tl_page *pg, int full,
                         int64_t lo, int64_t *span);
/* The reply's end after a page @pg (no error): the cursor from @page
 * (the first page's bounds; its position set here) into q->next, the
 * tail, the text into *@out. 0, -EMSGSIZE (one row over the cap) or
 * -ENOMEM. */
int store_tl_finish(struct store_tl *t, const struct store_timeline_query *q,
                    const struct store_tl_page *pg, int64_t page[4],
                    char **out, size_t *out_len);
/* A cursor: "a" or "c" (the order), the newest event id of the first
 * page, the (time, id) position of the last row given and the newest
 * annotation id of the first page (@page). Parse: 0, or -EINVAL: not a
 * cursor of order @o. */
void store_cursor_format(char *buf, enum store_order o,
                         const int64_t page[4]);
int store_cursor_parse(const char *c, enum store_order o, int64_t page[4]);
void store_service_json(const struct topo_service *sv, struct jsonw *tg,
                        struct jsonw *rg);

/* Latency (store_query.c). Reply cap: STORE_LATENCY_MAX_POINTS points of
 * some 100 bytes each take 2 MiB; 16 MiB leaves room for long target and
 * cluster names while a reply still cannot grow without bound. */
#define STORE_LATENCY_BYTES  (16u << 20)
/* A series being written into @w: the step's point not yet written. */
struct store_lat {
    struct jsonw *w;
    struct hist h;              /* hist_init'ed by the caller */
    int64_t t;
    uint64_t count, failures;
    int have;
};
/* -E2BIG or -EINVAL for a query store_latency refuses, else 0. */
int store_latency_check(const struct store_latency_query *q);
/* @q's list of targets as a JSON array into @names. */
void store_latency_names(const struct store_latency_query *q,
                         struct jsonw *names);
/* The reply up to its points' array (not opened). */
void store_latency_head(struct jsonw *w, const struct store_latency_query *q,
                        int64_t step_ms);
/* One rollup row, in time order (@hist its histogram blob); then the
 * end: the last point, and the reply closed. */
void store_latency_row(struct store_lat *l, int64_t t, int64_t count,
                       int64_t failures, const uint8_t *hist, size_t len);
void store_latency_end(struct store_lat *l);
/* store_targets_window's sums (store_status.c): one rollup row into
 * @win and @h; then its percentiles from @h. */
void store_window_add(struct store_window *win, struct hist *h,
                      int64_t count, int64_t failures, const uint8_t *blob,
                      size_t len);
void store_window_end(struct store_window *win, const struct hist *h);

/* GET /api/v1/status's per-target part (store_status.c). */
#define STORE_STATUS_BYTES (16u << 20)  /* reply cap */
/* One (cluster, node, target)'s row: its latest state and last probe
 * (strings borrowed; times corrected with the agent's offset now). */
struct store_st_row {
    const char *cluster, *region, *node, *target;
    const char *health;         /* NULL: "unknown" */
    int64_t ms;                 /* the state's time */
    int has_probe;
    int64_t ok, status, total_us;
    const char *error;          /* NULL: "" */
    int64_t probe_ms;
};
/* One (cluster, target) as it is being written: its agents' array is
 * open; the health, since and last probe of the whole come after it. */
struct store_st_group {
    int open;
    int any_unhealthy, all_healthy;
    size_t n_counted;           /* agents not handed off */
    int64_t since_ms;
    char since_utc[32];
    int64_t last_ms;            /* INT64_MIN: no probe yet */
    struct jsonw last;          /* the latest of its agents' last probes */
    struct jsonw one;           /* the agent's being written */
    char cluster[WIRE_MAX_STR + 1], target[WIRE_MAX_STR + 1];
};
/* The reply into @w: init (opens its array), each row in cluster,
 * target and node order (0 or -errno), end, free (@w too). */
void store_st_init(struct jsonw *w, struct store_st_group *g);
int store_st_add(struct jsonw *w, struct store_st_group *g,
                 const struct store_st_row *r);
void store_st_end(struct jsonw *w, struct store_st_group *g);
void store_st_free(struct jsonw *w, struct store_st_group *g);

/* GET /api/v1/clusters' rendering (store_clusters.c). Reply cap: an
 * agent's row takes some 500 bytes with long names, so 16 MiB is tens of
 * thousands of agents. */
#define CLUSTERS_BYTES (16u << 20)
/* One agent's row of the clusters query, plain (strings borrowed, never
 * NULL; epoch as 16 hex digits). */
struct store_cl_row {
    const char *cluster, *region, *node, *epoch, *version;
    int64_t first_ms, last_ms;
    int has_offset;
    int64_t offset_ms;          /* rounded half away from zero */
    int64_t acked, highest;     /* highest: 0 when no event is left */
    int64_t drop_count, drop_first, drop_last, drop_ms;
    int has_report;
    int64_t report_ms;
    int has_spool;
    int64_t spool_events, spool_bytes;
    int64_t epochs;
};
/* Its statement on either backend, with the backend's words for the
 * epoch as 16 hex digits, the offset rounded half away from zero, and a
 * bytewise text order: one row per (cluster, node), its latest epoch (a
 * new spool is a new epoch, and a node may move to another region), in
 * cluster, region and node order, the columns of struct store_cl_row's
 * order (epochs last). */
/* STORE_CLUSTERS_SQL's columns, in order: both backends read its rows
 * by these. */
enum {
    CL_CLUSTER, CL_REGION, CL_NODE, CL_EPOCH, CL_VERSION, CL_FIRST,
    CL_LAST, CL_OFFSET, CL_ACKED, CL_HIGHEST, CL_DROP_COUNT, CL_DROP_FIRST,
    CL_DROP_LAST, CL_DROP_MS, CL_DROP_REPORT, CL_SPOOL_EVENTS,
    CL_SPOOL_BYTES, CL_EPOCHS
};

#define STORE_CLUSTERS_SQL(epoch, offset, collate) \
    "SELECT a.cluster, a.region, a.node, " epoch "," \
    " a.agent_version, a.first_seen_ms, a.last_seen_ms, " offset "," \
    " a.acked_seq," \
    " (SELECT max(e.seq) FROM events e WHERE e.agent_id = a.id)," \
    " a.drop_count, a.drop_first_seq, a.drop_last_seq, a.drop_last_ms," \
    " a.drop_report_ms, a.spool_events, a.spool_bytes," \
    " (SELECT count(*) FROM agents b" \
    "   WHERE b.cluster = a.cluster AND b.node = a.node)" \
    " FROM agents a" \
    " WHERE a.id = (SELECT b.id FROM agents b" \
    "   WHERE b.cluster = a.cluster AND b.node = a.node" \
    "   ORDER BY b.last_seen_ms DESC, b.id DESC LIMIT 1)" \
    " ORDER BY a.cluster" collate ", a.region" collate ", a.node" collate
/* Where the rendering is: the open cluster and region (names copied: the
 * next row may replace the strings) and the cluster's latest batch. */
struct store_cl_state {
    char cluster[WIRE_MAX_STR + 1];
    char region[WIRE_MAX_STR + 1];
    int in_cluster, in_region;
    int64_t last_ms;
};
/* The reply's head; each row, in cluster, region and node order; the
 * end, which closes the open cluster. */
void store_cl_begin(struct jsonw *w);
void store_cl_add(struct jsonw *w, struct store_cl_state *c,
                  const struct store_cl_row *r);
void store_cl_end(struct jsonw *w, struct store_cl_state *c);

#endif
