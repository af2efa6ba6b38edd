/* store.h -- the collector's store, its one public face: schema and
 * migrations, a writer thread that commits queued batches in group
 * commits (events, rollups and per-agent watermarks), retention, the
 * queries and the backup copy. Thread-safe: only the writer thread
 * writes; queries use a pool of read-only connections, so a heavy query
 * never blocks ingest. Nothing here names the database engine.
 *
 * Backends. Today's is SQLite (collector/store_*.c). A second one
 * (PostgreSQL, a later issue) implements the same functions: the
 * backend-neutral part (store.c: the job queue and its high-water marks,
 * group-commit accounting and histograms, the done calls, the waiters
 * on readiness,
 * stats, the ready and corrupt states) stays; the backend brings open and
 * migrate, commit a group of batches, a retention step, the commit probe,
 * the queries and the backup. collector/store_priv.h lists that seam. */
#ifndef SEXTANT_STORE_H
#define SEXTANT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct store;
struct topology;
struct topo_service;

/* Where the rows live (config `store.backend`). */
enum store_backend {
    STORE_BACKEND_SQLITE,       /* one file, one collector (the default) */
    /* One PostgreSQL database shared by any number of collectors
     * (collector/store_pg.h): @path is unused, pg_conninfo says where. */
    STORE_BACKEND_POSTGRES,
};

/* What the collector's config sets; store_options_default() fills the
 * defaults. A retention of 0 keeps rows forever. */
struct store_options {
    enum store_backend backend;
    /* PostgreSQL only (borrowed: outlive store_open): a libpq connection
     * string ("host=db port=5432 dbname=sextant user=sextant
     * sslmode=verify-full"; PG* environment variables and ~/.pgpass
     * fill what it leaves out, as in psql); and a file whose first line
     * is the password (NULL: libpq's own ways). */
    const char *pg_conninfo;
    const char *pg_password_file;
    /* This collector's name among many (the leader row, logs): NULL
     * gives "hostname:pid". */
    const char *instance;
    int64_t raw_retention_ms;       /* events: 14 days */
    int64_t minute_retention_ms;    /* minute rollups: 90 days */
    int64_t hour_retention_ms;      /* hour rollups: 400 days */
    int64_t retention_interval_ms;  /* how often expired rows are looked
                                     * for: 60 s */
    size_t queue_max_batches;       /* high-water mark: 1024 batches */
    size_t queue_max_bytes;         /* and of their memory: 64 MiB */
    int64_t query_ms;               /* a read query's deadline:
                                     * STORE_QUERY_MS */
    /* The services the incident engine watches (borrowed: outlives the
     * store). NULL or no services: no engine, no incidents. */
    const struct topology *topo;
    /* Called from the writer thread after an incident opened, changed
     * or closed is committed: @change "opened", "updated" or "closed",
     * or "retracted" when a replay (late events) shows that an incident
     * written before never happened and its row is deleted (told only
     * if its "opened" was, or an earlier run wrote it). A row first
     * written closed is told "opened", then "closed". Opening the
     * store and a rebuild announce nothing (history: incidents that
     * changed while no collector ran are not told). @json the incident as store_incident gives it without timeline and
     * annotations (borrowed for the call). Must not block (the webhook
     * sender queues). NULL: nobody listens. */
    void (*incident_fn)(void *ctx, const char *change, const char *json);
    void *incident_ctx;
};
void store_options_default(struct store_options *o);

/* Opens or creates @path and starts the writer thread, which checks the
 * file (an integrity check bounded in time) and applies the migrations
 * first: until they are done the store is not ready (see
 * store_stats) and store_submit() refuses with -EAGAIN. @opts NULL: the
 * defaults. -errno, with a logged reason. */
int store_open(const char *path, const struct store_options *opts,
               struct store **out);
/* Opens @path for the read-only commands (sextant-collector timeline,
 * incidents): no writer thread, no migration (a file whose schema is not
 * this collector's is refused with -EPROTO and a logged reason; a
 * collector may be writing to it meanwhile). Only the queries work on
 * it; store_close frees it. -errno. */
int store_open_readonly(const char *path, struct store **out);
/* store_open_readonly for the store @opts names (NULL: SQLite at @path).
 * On PostgreSQL (@path then only names it in messages) it connects once
 * to check that the schema is this collector's (-EPROTO or -EIO with a
 * logged reason), and has no writer, no maintenance thread: it never
 * migrates nor leads; the queries open read connections as they need.
 * -errno. */
int store_open_readonly_with(const char *path,
                             const struct store_options *opts,
                             struct store **out);
/* Waits until the migrations are done, at most @timeout_ms: 0, or -errno
 * when they failed (the store then refuses every batch; close it).
 * -EUCLEAN: the start check found the file damaged (see store_stats'
 * corrupt). -ETIMEDOUT: still migrating. @timeout_ms <= 0 waits as long
 * as they take: a rewrite for incremental vacuum or a backfill of a big
 * file takes minutes, and a tool with nothing else to do (bench) may
 * wait for it; the collector polls (store_poll_ready) to stay
 * stoppable. */
int store_wait_ready(struct store *st, int64_t timeout_ms);
/* Stops the writer after the batches already queued (each gets its done
 * call), closes every connection; interrupts migrations under way. NULL
 * is a no-op. */
void store_close(struct store *st);
/* Without waiting: 1 ready, 0 still migrating, -errno failed. */
int store_poll_ready(struct store *st);

/* Called once per submitted batch, from the writer thread, when the group
 * commit that holds it is durable (rc 0, @acked_seq the new watermark,
 * see store_submit) or failed (rc -EIO: nothing of that batch is stored;
 * -EUCLEAN: nor will any batch be, the file is damaged). Must not block. */
typedef void (*store_done_fn)(void *ctx, int rc, uint64_t acked_seq);

/* Queues @b (borrowed until @done runs) for the writer, which stores what
 * is new in it in one transaction with the agent's row, together with
 * other queued batches: every event above the agent/epoch's watermark,
 * whatever the order of arrival (a replayed or overlapping event is
 * stored once); "drop" events for the seqs of b->drops not stored here,
 * unless that report was stored already; "gap" events for seqs the agent
 * no longer has (below b->oldest_seq; when that is 0, any jump forward in
 * seq) that are missing and not explained by a drop report; the clock
 * offset sample (see store_timeline); and the new watermark, which @done
 * gets: the highest seq with nothing missing below it. All seqs must be
 * <= INT64_MAX (ingest.c checks). @cost is what the batch holds in memory
 * (counted against queue_max_bytes). 0: @done will run. -EAGAIN: not
 * queued, the queue is over its high-water mark or the store is not
 * ready (reply 503 and let the agent back off); -EUCLEAN: the file is
 * damaged (store_stats says why; retrying cannot help); -ESHUTDOWN:
 * closing. @done may run before this returns. */
int store_submit(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, size_t cost, store_done_fn done,
                 void *ctx);

/* Upper bounds of the commit histograms (Prometheus "le"), ascending. */
#define STORE_COMMIT_BUCKETS 12
extern const double store_commit_seconds_le[STORE_COMMIT_BUCKETS];
#define STORE_GROUP_BUCKETS 9
extern const double store_group_batches_le[STORE_GROUP_BUCKETS];

/* A snapshot of the store's counters, for /metrics and /readyz. Histogram
 * counts are cumulative per bound; the last slot is +Inf (= commits). */
struct store_stats {
    int ready;                      /* migrations done and succeeded */
    int overloaded;                 /* queue over its high-water mark */
    uint64_t queue_batches;         /* queued, not yet committed */
    uint64_t queue_bytes;
    uint64_t queue_max_batches;
    uint64_t queue_max_bytes;
    uint64_t commits;               /* group commits that succeeded */
    uint64_t commit_failures;
    uint64_t commit_seconds_le[STORE_COMMIT_BUCKETS + 1];
    double commit_seconds_sum;
    uint64_t group_batches_le[STORE_GROUP_BUCKETS + 1];
    uint64_t group_batches_sum;
    uint64_t retention_deleted;     /* rows deleted by retention */
    uint64_t incident_replays;      /* the incident engine's replays */
    uint64_t incident_recoveries;   /* of those, replacing an engine that
                                     * ran out of memory in a step */
    int64_t db_bytes;               /* the database's files on disk */
    /* The file is damaged (the database says so at the start
     * check or from any read or write): it stays so until a restart on a
     * good file; store_submit refuses with -EUCLEAN, queries fail so. */
    int corrupt;
    char corrupt_reason[128];       /* the database's words */
    /* The database server cannot be reached (PostgreSQL only): the writer
     * reconnects by itself; store_submit refuses with -EAGAIN meanwhile,
     * and commit_error says why. Implies commits_failing. */
    int unavailable;
    /* PostgreSQL: 1 while this collector leads (retention, partitions,
     * the incident engine: store_pg.h), 0 while another one does or the
     * database cannot be reached. -1 on SQLite (no such role). */
    int leader;
    /* The last group commit stored nothing (disk full, I/O error):
     * cleared by the next one that stores a batch. */
    int commits_failing;
    /* The database's message for it; 256: libpq's connection errors
     * open with "connection to server at \"HOST\", port N failed: ",
     * and the reason after it (a TLS certificate refused) must fit. */
    char commit_error[256];
};
void store_stats(struct store *st, struct store_stats *out);
/* What every answer says while the store is corrupt (/readyz, ingest and
 * queries): the reason and what to do, into @buf (@len >= 1). */
void store_corrupt_detail(struct store *st, char *buf, size_t len);

/* Calls @fn for every cluster that ever sent, with the last time (ms,
 * collector clock) any of its agents did. Reads through a read
 * connection. 0 or -EIO. */
int store_clusters_seen(struct store *st,
                        void (*fn)(void *ctx, const char *cluster,
                                   int64_t last_seen_ms),
                        void *ctx);

/* GET /api/v1/clusters (store_clusters.c): every cluster that ever sent,
 * its regions and agents, as last reported: {"clusters":[{"name":S,
 * "last_seen":T,"regions":[{"name":S,"agents":[{"node":S,"region":S,
 * "epoch":"016x","epochs":n,"agent_version":S,"first_seen":T,
 * "last_seen":T,"clock_offset_ms":n|null,"acked_seq":n,"highest_seq":n,
 * "waiting":n,"last_drop":{"count":n,"from_seq":n,"to_seq":n,
 * "last_event":T|null,"reported":T|null}|null,
 * "spool":{"events":n,"bytes":n}|null}]}]}]}, where T is {"ms":N,
 * "utc":S} on the collector's clock (last_event: the agent's). spool:
 * what the agent held for this collector when it sent its latest batch.
 * One agent per (cluster, node): its latest epoch, with the number of
 * epochs seen. Caller frees *out; -EAGAIN while migrating, as the
 * queries below. */
int store_clusters(struct store *st, char **out, size_t *out_len);

/* The names the store has seen, one table each (see the API's checks). */
enum store_names {
    STORE_NAMES_CLUSTER,
    STORE_NAMES_TARGET,
    STORE_NAMES_KIND,
};
typedef void (*store_name_fn)(void *ctx, const char *name);

/* Whether any event or agent ever brought @name (borrowed) in @which: 1
 * yes; 0 no, after calling @fn (may be NULL) with every name the store
 * has in @which, in name order, so the caller can offer close ones; -EIO
 * (or -ETIMEDOUT past STORE_QUERY_MS). Reads through a read connection. */
int store_name_known(struct store *st, enum store_names which,
                     const char *name, store_name_fn fn, void *ctx);

/* A query running longer (by default; store_options.query_ms) is
 * stopped with -ETIMEDOUT: a reader holds an
 * HTTP thread and a read snapshot. A query that hits a damaged page fails
 * with -EUCLEAN (and the store enters the corrupt state, see
 * store_stats). Until the store is ready (migrating) the queries below
 * but store_clusters_seen refuse with -EAGAIN. */
#define STORE_QUERY_MS 10000

enum store_order {
    STORE_ORDER_AGENT,      /* by agent time (each agent's own clock) */
    STORE_ORDER_CORRECTED,  /* by agent time + the agent's clock offset */
};

/* A timeline reply's text: the JSON object below, or CSV or Markdown
 * rows (table.h: one per event, time, corrected time, cluster, region,
 * node, kind, target and a summary of the fields). */
enum store_format {
    STORE_FORMAT_JSON,
    STORE_FORMAT_CSV,
    STORE_FORMAT_MD,
};

struct store_timeline_query {
    int64_t from_ms;        /* inclusive, on the clock @order names */
    int64_t to_ms;          /* exclusive */
    const char *cluster;    /* NULL = every cluster */
    const char *region;     /* NULL = every region (the agent's) */
    const char *target;     /* NULL = every target */
    /* NULL = every service; else (with @target NULL) the events of its
     * regions' targets, lag targets and global targets, DNS changes of
     * its global name, and failover events and markers that name it (or,
     * naming no service, one of its regions; a marker naming none). */
    const struct topo_service *service;
    const char *kind;       /* NULL = every kind; else one or more kinds
                             * ("probe", "state", ...) joined by commas */
    unsigned limit;
    enum store_order order;
    /* NULL: the first page. Else a @next of an earlier reply of the same
     * @order: the page after it (-EINVAL: not such a cursor). A cursor
     * holds the newest event id of the first page and the position
     * (time on @order's clock, id) of the last event given, so paging
     * through a window gives each of its events once while ingest goes
     * on: events stored after the first page are not in that paging
     * (on PostgreSQL, one whose id was drawn before the first page but
     * committed after it may be: collector/pg_tl.c).
     * The same holds for annotations (the cursor holds the newest
     * annotation id too). */
    const char *cursor;
    enum store_format format;
    /* 1: only the rows (JSON: the event objects joined by commas; tables:
     * no header), for a caller that joins pages (sextant-collector
     * timeline). */
    int rows_only;
    /* Out, when not NULL (STORE_CURSOR_LEN bytes): the cursor of the
     * next page, or "" when this page is the last. */
    char *next;
};
#define STORE_TIMELINE_MAX_LIMIT 10000u
#define STORE_CURSOR_LEN 96u     /* 4 int64s, their dots, "c." and "n" */

/* JSON {"events":[...],"count":N,"truncated":bool,"next":cursor|null};
 * caller frees *out. Each event carries time_ms (agent clock),
 * clock_offset_ms (collector clock minus agent clock, as recorded when
 * the event's batch was stored: agent_offsets, see the incidents below;
 * null when none was, as for collector-made events), corrected_ms =
 * time_ms + clock_offset_ms (time_ms when null) and corrected_time.
 * Annotations in the window are rows of kind "annotation" (fields id,
 * text, service, incident; cluster, region, node, epoch, seq, target and
 * clock_offset_ms null; time_ms = corrected_ms = its time, received_ms
 * when it was stored), merged in by time: unless a cluster, region or
 * target filter is given or the kind filter leaves them out; with
 * @service, those naming it or tied to one of its incidents. */
int store_timeline(struct store *st, const struct store_timeline_query *q,
                   char **out, size_t *out_len);

enum store_step {
    STORE_STEP_MINUTE,
    STORE_STEP_HOUR,
};

struct store_latency_query {
    int64_t from_ms;            /* inclusive, agent clock */
    int64_t to_ms;              /* exclusive */
    const char *target;         /* one target; or NULL and @targets */
    /* Else the targets whose probes merge into each point (borrowed): a
     * service's or a region's (@n_targets >= 1). */
    const char *const *targets;
    size_t n_targets;
    const char *cluster;        /* NULL = every cluster's probes merged */
    enum store_step step;
    /* Only named in the reply: "service" and "region" (NULL: null). */
    const char *service;
    const char *region;
};
#define STORE_LATENCY_MAX_POINTS 20000u

/* JSON {"target":S,"cluster":S|null,"step_ms":..,"points":[...]} for one
 * target, {"target":null,"service":S|null,"region":S|null,"targets":
 * [S..],"cluster":...} for a list; points [{"t":ms,"count":n,
 * "failures":n,"p50_ms":x,"p95_ms":x,"p99_ms":x},...]} from the rollups,
 * one point per step that has probes of any of the targets; percentiles
 * of successful probes' total time, within 2% (null when none
 * succeeded). -E2BIG: the range holds more than STORE_LATENCY_MAX_POINTS
 * steps. Caller frees *out. */
int store_latency(struct store *st, const struct store_latency_query *q,
                  char **out, size_t *out_len);

/* Incidents (store_incident.c; the engine is incident.h). Every time is
 * on the corrected clock: an event's unix_ms plus its agent's clock
 * offset as recorded when the event's batch was stored (agent_offsets),
 * so it never changes afterwards. The writer feeds the engine after each
 * group commit what that commit stored, in (corrected time, agent, seq)
 * order; an event older than what the engine has seen (an agent that
 * was partitioned delivers late) makes it go back to its last snapshot
 * before that time and replay from the store, so the live incidents
 * always equal a rebuild from scratch over the same events. Until the
 * store is ready the queries refuse with -EAGAIN as above.
 *
 * JSON of one incident (a list holds these without "timeline" and
 * "annotations"):
 *   {"id":N,"service":S,"pattern":"active-passive","region":S,
 *    "to_region":S|null,"manual":bool,"open":bool,
 *    "times":{"first_failure":T,"detected":T,"failover_start":T,
 *             "dns_switched_first":T,"dns_switched_all":T,
 *             "restored":T,"closed":T},
 *    "durations_ms":{"time_to_detect":n,"time_to_failover":n,"rto":n,
 *                    "outage":n},
 *    "rpo_ms":n,
 *    "timeline":[event...], "annotations":[annotation...]}
 * where T is {"ms":N,"utc":"2026-12-04T21:00:00.123Z"} or null (not
 * (yet)), every n or rpo_ms may be null, an event is as in
 * store_timeline (state changes, DNS changes, failover and manual
 * events, markers of the service's targets and regions, and each agent's
 * first and last failed probe of the region, between first failure
 * minus a minute and close (or now)), and an annotation is
 * {"id":N,"time":T,"text":S,"service":S|null,"incident":N|null}. */
struct store_incident_query {
    const char *service;        /* NULL: every service */
    int open;                   /* -1 any, 1 open only, 0 closed only */
    int64_t from_ms, to_ms;     /* opened in [from, to); to 0: no end */
    unsigned limit;             /* newest first */
};
#define STORE_INCIDENTS_MAX_LIMIT 1000u

/* {"incidents":[...],"count":N,"truncated":bool}. Caller frees *out. */
int store_incidents(struct store *st, const struct store_incident_query *q,
                    char **out, size_t *out_len);
/* One incident with its timeline and annotations; -ENOENT: no such id. */
int store_incident(struct store *st, int64_t id, char **out,
                   size_t *out_len);

/* Derived state now, from the engine (not limited to a time window):
 * {"services":[{"name":S,"global_name":S,"pattern":S,
 *   "catching_up":bool (the engine is still being rebuilt from the
 *     stored history after a start: regions unknown meanwhile),
 *   "regions":[{"name":S,"role":S|null,"health":"healthy"|"unhealthy"|
 *     "unknown","since":T,"agents":n,"unhealthy_agents":n,
 *     "stale_agents":n,"serving":bool,"serving_agents":n}],
 *   "serving":[S...] (regions the answers point to; two or more: split),
 *   "unmapped_agents":n,"open_incident":N|null,
 *   "stale_agents":[{"cluster":S,"node":S,"last_seen":T}]}]}.
 * Caller frees *out. */
int store_service_status(struct store *st, char **out, size_t *out_len);

/* A person's note (POST /api/v1/annotations), stored through the writer
 * like a batch: 0 and *id once committed; -EAGAIN not ready or
 * overloaded; -EIO. @text is UTF-8, at most STORE_ANNOTATION_MAX bytes;
 * @service NULL or a topology service; @incident 0 or an incident id
 * (-ENOENT when there is none). */
#define STORE_ANNOTATION_MAX 4096u
int store_annotate(struct store *st, int64_t unix_ms, const char *text,
                   const char *service, int64_t incident, int64_t *id);

/* sextant-collector incidents rebuild --db PATH: opens @path (no
 * collector may be writing to it), recomputes every incident from
 * scratch over @topo, up to the collector's clock less the hold the live
 * engine keeps (STORE_INC_HOLD_MS, 5 s), and replaces the table in one
 * transaction (rows whose incident is unchanged keep their id). 0, or
 * -errno with one line in @err: -EBUSY the write lock stays taken for a
 * second (a collector is committing: stop it first; one that merely
 * runs would keep writing its own view, and rebuilds at its next start
 * anyway), -EPROTO not this collector's schema. @events_out: how many
 * events it fed; @incidents_out: how many incidents it holds now. */
int store_incidents_rebuild(const char *path, const struct topology *topo,
                            uint64_t *events_out, uint64_t *incidents_out,
                            char *err, size_t err_len);
/* store_incidents_rebuild for the store @opts names, over opts->topo: on
 * SQLite that of @path; on PostgreSQL (@path names it in messages) it
 * holds the leader's lock for the run instead of the write lock, and
 * refuses with -EBUSY, the leading collector named in @err, while one
 * leads (collector/store_pg.h store_pg_inc_rebuild says why). */
int store_incidents_rebuild_with(const char *path,
                                 const struct store_options *opts,
                                 uint64_t *events_out,
                                 uint64_t *incidents_out, char *err,
                                 size_t err_len);

/* GET /api/v1/status's per-target part (store_status.c), not limited to
 * a time window: per (cluster, target), from the latest state event of
 * each of the cluster's agents (a node's epochs are one agent) and that
 * agent's last probe of the target:
 *   [{"cluster":S,"target":S,"health":"healthy"|"unhealthy"|"unknown",
 *     "since":T,"last":P|null,"agents":[{"region":S,"node":S,
 *       "health":S,"since":T,"last":P|null}]}]
 * with P {"time":T,"ok":bool,"status":n,"total_ms":x,"error":S}, ordered
 * by cluster, target and node; a (cluster, target) is unhealthy when any
 * agent sees it so, healthy when all do, else unknown, since the latest
 * change among them, and its last probe the latest of theirs. T is {"ms":N,"utc":S}, corrected with the
 * agent's offset now. A target no agent has sent a state event for is
 * not listed. Caller frees *out. */
int store_targets_status(struct store *st, char **out, size_t *out_len);

/* Probe results of @targets (names; unknown ones count nothing) over
 * [@from_ms, @to_ms) of agent time, from the minute or hour rollups:
 * their count, failures and, when any succeeded (has_latency), the
 * percentiles of their total time, within 2%. 0 or -errno as the other
 * queries. */
struct store_window {
    uint64_t count;
    uint64_t failures;
    int has_latency;
    double p50_ms, p95_ms, p99_ms;
};
int store_targets_window(struct store *st, const char *const *targets,
                         size_t n, int64_t from_ms, int64_t to_ms,
                         enum store_step step, struct store_window *out);

/* A copy of a database file, outside any open store (sextant-collector
 * backup; backup.c does the file side). Each call writes one line naming
 * the file and the reason into @err (@err_len >= 1) on failure. */
struct store_backup;            /* an open source: one read snapshot */
/* Opens @path read-only (a collector may be writing to it) and checks a
 * collector made it. 0 and *out (store_backup_close frees it); -ENOENT
 * (or another stat errno), -EINVAL not a Sextant database, -EIO. */
int store_backup_open(const char *path, struct store_backup **out,
                      char *err, size_t err_len);
/* Writes the snapshot into @tmp, an empty file (@db_path and @out_path
 * only name the files in @err). 0 or -EIO. */
int store_backup_write(struct store_backup *b, const char *db_path,
                       const char *tmp, const char *out_path, char *err,
                       size_t err_len);
/* Ends the snapshot. NULL is a no-op. */
void store_backup_close(struct store_backup *b);
/* Checks the whole copy at @tmp (integrity, not only structure). 0, or
 * -EIO with the first problem (@out_path names it in @err). */
int store_backup_check(const char *tmp, const char *out_path, char *err,
                       size_t err_len);

#endif
