/* store_pg.h -- the PostgreSQL backend's seam: what its files share and
 * nothing outside the store may use. store.h stays the one public face;
 * store_priv.h's neutral part (the job queue and its high-water marks,
 * group-commit accounting, readiness, the corrupt and commits-failing
 * states) serves both backends.
 *
 * Many collectors share one database. What runs where:
 *   - every collector: its own writer thread (pg_writer.c) commits its
 *     queued batches in group commits, exactly once against every other
 *     collector (the argument is docs/design.md "Scaling out"); its own
 *     read connections serve every query (pg_query.c, pg_incident.c);
 *   - one collector at a time, the leader (pg_store.c's maintenance
 *     thread holds PG_LOCK_LEADER, a session advisory lock, on a
 *     connection of its own): retention (dropping day partitions), day
 *     partitions created ahead, and the incident engine (pg_incident.c),
 *     which publishes the services' status in engine_status for the
 *     others to serve. A leader that dies loses its session and its lock;
 *     another collector's maintenance thread takes it within
 *     PG_LEADER_POLL_MS;
 *   - the schema: created and migrated at start by whichever collector
 *     holds PG_LOCK_MIGRATE (pg_schema.c); the others wait for it.
 *
 * Files: pg_conn.c (connections, parameters, errors), pg_schema.c (the
 * migrations, day partitions), pg_store.c (open and close, the
 * maintenance thread: leadership, retention, partitions ahead),
 * pg_writer.c (the writer thread: connecting, group commit, retries),
 * pg_ingest.c (one batch's delivery rows, interned strings, rollups,
 * target_now), pg_query.c (the read
 * pool and the queries of store.h but the incidents'), pg_incident.c
 * (the engine on the leader, incidents, annotations, service status). */
#ifndef SEXTANT_STORE_PG_H
#define SEXTANT_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct store;
struct store_delta;                 /* store_priv.h's */
struct store_now;
struct store_delivery_ops;
struct pg_rollup_key;               /* pg_ingest.c's */

/* Session advisory lock keys (pg_advisory_lock(bigint)): "SXT" and a
 * number, so they do not collide with another application's. */
#define PG_LOCK_MIGRATE   0x5358540001LL    /* one migrator at a time */
#define PG_LOCK_LEADER    0x5358540002LL    /* retention + incidents */
/* Taken shared (pg_advisory_xact_lock_shared) by every group commit as
 * its transaction's first statement, before any event id is drawn; the
 * leader takes it exclusively for a moment to read a fence: once it
 * holds it, every transaction that drew an id at or below the events
 * sequence's last_value has committed or rolled back, so the engine can
 * read events up to that id without missing one that commits later
 * with a smaller id (pg_incident.c). */
#define PG_LOCK_FENCE     0x5358540003LL
/* Taken by whoever creates a day partition (transaction-scoped). */
#define PG_LOCK_PARTITION 0x5358540004LL

#define PG_DAY_MS          86400000LL
/* Day partitions the leader keeps created ahead of now (and ingest
 * creates any other day it meets, under PG_LOCK_PARTITION). */
#define PG_PARTITIONS_AHEAD 2
#define PG_LEADER_POLL_MS  2000     /* a follower tries for the lead */
#define PG_RECONNECT_MS    1000     /* a lost connection is retried */
#define PG_READERS         8        /* idle read connections kept */

/* The backend's state, st->pg (NULL: the SQLite backend). */
struct store_pg {
    char *conninfo;                 /* copies of the options */
    char *password;                 /* from pg_password_file, wiped on free;
                                     * NULL: libpq's own ways */
    char *instance;

    /* The writer's (pg_writer.c, pg_ingest.c). */
    PGconn *wconn;
    struct pg_wstate *w;            /* its own state, while it runs */
    /* Day partitions known to exist (pg_partitions_ensure), under
     * days_lock: the writer and the maintenance thread both create them.
     * A partition retention dropped stays here until the next insert into
     * it fails (SQLSTATE 23514): the writer then empties the list
     * (pg_partitions_forget) and runs its group again. */
    pthread_mutex_t days_lock;
    int64_t *days;
    size_t n_days, cap_days;

    /* The maintenance thread's (pg_store.c). */
    pthread_t maint;
    int maint_started;
    pthread_cond_t mcond;           /* with st->qlock: wakes it to close */
    PGconn *lconn;                  /* holds PG_LOCK_LEADER when leader */
    int leader;                     /* read under st->qlock by others */
    int64_t retention_next_ms;      /* monotonic */

    /* Idle read connections (pg_query.c), under st->rlock. */
    PGconn *readers[PG_READERS];
    size_t n_readers;

    /* The incident engine's (pg_incident.c), NULL when not leader or
     * no services. */
    struct store_pg_inc *inc;
};

/* ---- pg_conn.c ---- */

/* A new connection to the store's database: the conninfo, with the
 * password file's password and application_name "sextant-collector
 * (INSTANCE)"; @timeout_ms > 0 sets statement_timeout on it (readers).
 * NULL on failure, with libpq's message (one line) in @err. */
PGconn *pg_connect(struct store *st, int64_t timeout_ms, char *err,
                   size_t err_len);
/* Runs @sql (no parameters, one or more statements) on @c: 0, or -EIO
 * with the server's message logged. */
int pg_exec(PGconn *c, const char *sql);
/* Text parameters for PQexecParams: each value is a string or NULL
 * (SQL NULL); numbers are written into the set's own buffers. */
#define PG_PARAMS_MAX 32
struct pg_params {
    const char *v[PG_PARAMS_MAX];
    char buf[PG_PARAMS_MAX][24];
    int n;
};
void pg_params_reset(struct pg_params *p);
void pg_param_i64(struct pg_params *p, int64_t v);
void pg_param_f64(struct pg_params *p, double v);
void pg_param_text(struct pg_params *p, const char *s);    /* NULL: NULL */
/* PQexecParams of @sql with @p (NULL: none), text results. The result
 * (always freed by the caller with PQclear), or NULL only when out of
 * memory. pg_ok() tells whether it succeeded. */
PGresult *pg_query(PGconn *c, const char *sql, const struct pg_params *p);
/* 1 when @r is a success (PGRES_COMMAND_OK or PGRES_TUPLES_OK). */
int pg_ok(const PGresult *r);
/* What a failure means, from its SQLSTATE and the connection: */
enum pg_err {
    PG_ERR_NONE,
    PG_ERR_CONN,        /* the connection is gone (class 08, 57P01..03,
                         * or PQstatus bad): reconnect and retry later */
    PG_ERR_RETRY,       /* deadlock (40P01) or serialization (40001):
                         * roll back and run the transaction again */
    PG_ERR_TIMEOUT,     /* statement_timeout (57014) */
    PG_ERR_OTHER,
};
enum pg_err pg_err_class(PGconn *c, const PGresult *r);
/* The error's message, one line (no trailing newline), into @buf. */
void pg_err_text(PGconn *c, const PGresult *r, char *buf, size_t len);
/* Column @col of row @row as int64 (NULL: @dflt), double, or text
 * (NULL: NULL). */
int64_t pg_i64(const PGresult *r, int row, int col, int64_t dflt);
double pg_f64(const PGresult *r, int row, int col, double dflt);
const char *pg_text(const PGresult *r, int row, int col);
/* A bytea column (text format, hex) decoded into @buf of @cap bytes:
 * its length, or -1 when NULL or too long. */
long pg_bytea(const PGresult *r, int row, int col, uint8_t *buf,
              size_t cap);
/* @data as a bytea text parameter ("\\x..." hex) into @out (2 * @len + 3
 * bytes). */
void pg_bytea_hex(const uint8_t *data, size_t len, char *out);

/* ---- pg_schema.c ---- */

/* Creates or migrates the schema under PG_LOCK_MIGRATE (waiting for
 * another collector's migration): 0, -EPROTO when the database's schema
 * is newer than this collector's (logged), or -EIO. */
int pg_migrate(PGconn *c);
int pg_schema_version(void);
/* Whether the database's schema is this collector's, without migrating
 * (the commands that only read, or rebuild incidents): 0, or -EPROTO
 * (none yet, older or newer) or -EIO with the reason in @why. */
int pg_schema_check(PGconn *c, char *why, size_t len);
/* Makes sure the day partitions of events covering [@from_ms, @to_ms]
 * exist (created under PG_LOCK_PARTITION in their own transaction: call
 * outside any other), noting them in pg->days: 0 or -EIO. */
int pg_partitions_ensure(struct store *st, PGconn *c, int64_t from_ms,
                         int64_t to_ms);
void pg_partitions_forget(struct store *st);

/* ---- pg_store.c ---- */

/* Called by store_open for STORE_BACKEND_POSTGRES instead of the SQLite
 * writer: copies the options, reads the password file, starts the
 * writer (store_pg_writer) and the maintenance thread. 0 or -errno. */
int store_pg_open(struct store *st);
/* For the commands that open the store without serving it
 * (store_open_readonly_with, store_incidents_rebuild_with): st->pg as
 * store_pg_open makes it, but no thread: the store never writes
 * batches, migrates nor leads; its queries use the read pool. @check 1:
 * connects once and checks the schema is this collector's
 * (pg_schema_check). 0 or -errno, the reason logged. */
int store_pg_open_tool(struct store *st, int check);
/* After the writer ended (store_close): stops the maintenance thread,
 * closes every connection, frees st->pg. */
void store_pg_close(struct store *st);
/* 1 when this collector leads (retention and the incident engine). */
int store_pg_leader(struct store *st);
/* One whole retention pass on @c as if the time were @now_ms: drops the
 * day partitions of events wholly older than raw retention, deletes
 * rollups and agent_offsets past theirs and texts nothing uses (made
 * over an hour ago), adds what it removed to stats.retention_deleted.
 * The leader's maintenance thread runs it every retention_interval_ms;
 * the writer runs it for a JOB_RETENTION (store_submit_retention, the
 * tests). 0 or -errno. */
int store_pg_retention(struct store *st, PGconn *c, int64_t now_ms);

/* ---- pg_writer.c ---- */

/* The writer thread: connects and migrates (the store is not ready
 * until then; a database that cannot be reached yet is retried every
 * PG_RECONNECT_MS, with stats.unavailable set), then takes groups off the
 * queue like the SQLite writer, answering each batch after COMMIT. */
void *store_pg_writer(void *arg);
/* It uses store_priv.h's store_take and store_group_finish (neutral). */

/* ---- pg_ingest.c: one batch's rows, inside the group transaction ---- */

/* The writer's state beside its connection (st->pg->w). */
struct pg_wstate {
    /* The batch's agent: its stored seqs above the watermark, ascending,
     * read under the agent row's lock. */
    int64_t *stored;
    size_t n_stored, cap_stored;
    PGresult *walk;                 /* a walk of stored seqs under way */
    int walk_row;
    /* Event rows not yet sent, in COPY's text format. */
    char *copy;
    size_t copy_len, copy_cap;
    /* The group's first database error: its class and message; nopart: it
     * was "no partition of events for the row" (SQLSTATE 23514), for a
     * row at nopart_ms (INT64_MIN: the message did not say). */
    enum pg_err err;
    char why[256];
    int nopart;
    int64_t nopart_ms;
    int64_t texts_since_ms;         /* the texts' id cache (monotonic) */
    /* The group's rollup rows (minute, hour) and target_now keys, noted
     * by pg_rollup_add and pg_now_put, written by pg_group_flush. */
    struct pg_rollup_key *roll[2];
    size_t n_roll[2], cap_roll[2];
    struct store_now *now;
    size_t n_now, cap_now;
};
/* store_delivery_ops on the writer connection (store_deliver). */
extern const struct store_delivery_ops pg_delivery_ops;
/* Notes a failed statement @r (NULL: the connection's error) under
 * @what in w->err/why, unless an error is noted already; logs it. */
void pg_w_fail(struct store *st, const PGresult *r, const char *what);
/* store_intern_fn: the id of @s in @dim from the cache, else the database
 * (inserted if new; outside a transaction, in autocommit): 0 or -EIO. */
int pg_intern(struct store *st, int dim, const char *s, int64_t *id);
/* Sends the queued event rows (one COPY): 0 or -EIO. */
int pg_copy_flush(struct store *st);
/* store_rollup_fn and store_now_put_fn: they note the group's rows
 * (0 or -ENOMEM), which pg_group_flush writes in a few statements per
 * table (arrays, unnested by the server) before COMMIT: 0 or -EIO. It
 * empties the notes, as does pg_group_drop (@release 1: frees them,
 * when the writer ends). */
int pg_rollup_add(struct store *st, int hour, const struct store_delta *d);
int pg_now_put(struct store *st, const struct store_now *k);
int pg_group_flush(struct store *st);
void pg_group_drop(struct pg_wstate *w, int release);

/* ---- pg_query.c: store.h's queries on PostgreSQL ---- */

/* A read connection from the pool (a new one when none is idle), or
 * NULL (-EIO: the database cannot be reached). */
PGconn *store_pg_reader(struct store *st);
/* Gives @c back; @broken 1 closes it instead. */
void store_pg_reader_put(struct store *st, PGconn *c, int broken);
/* A query's read connection into *@out: 0, -EAGAIN until the store is
 * ready (@need_ready), or -EIO. */
int pgq_begin(struct store *st, int need_ready, PGconn **out);
/* Runs @sql with @p on @c into *@out (the caller PQclears it): 0, or
 * -ETIMEDOUT past query_ms, -EIO (logged under @what; *@broken 1 when
 * the connection is lost: hand it back broken), -ENOMEM. */
int pgq_run(struct store *st, PGconn *c, const char *sql,
            const struct pg_params *p, const char *what, PGresult **out,
            int *broken);

int store_pg_clusters_seen(struct store *st,
                           void (*fn)(void *ctx, const char *cluster,
                                      int64_t last_seen_ms),
                           void *ctx);
int store_pg_clusters(struct store *st, char **out, size_t *out_len);
int store_pg_name_known(struct store *st, enum store_names which,
                        const char *name, store_name_fn fn, void *ctx);
int store_pg_timeline(struct store *st, const struct store_timeline_query *q,
                      char **out, size_t *out_len);
int store_pg_latency(struct store *st, const struct store_latency_query *q,
                     char **out, size_t *out_len);
int store_pg_targets_status(struct store *st, char **out, size_t *out_len);
int store_pg_targets_window(struct store *st, const char *const *targets,
                            size_t n, int64_t from_ms, int64_t to_ms,
                            enum store_step step, struct store_window *out);

/* ---- pg_incident.c ---- */

/* The maintenance thread, every tick while leader (@c its connection,
 * which holds the lead): starts the engine when it has none (rebuilt
 * from the stored events), feeds it what was committed since (by any
 * collector, up to the fence), writes the incidents table and
 * engine_status. @lost 1: the lead was lost, free the engine. */
void store_pg_inc_tick(struct store *st, PGconn *c, int lost);
void store_pg_inc_free(struct store *st);
/* sextant-collector incidents rebuild on PostgreSQL (st from
 * store_pg_open_tool): on a connection of its own, takes PG_LOCK_LEADER
 * (-EBUSY when a collector still leads after 5 s, named in @err),
 * computes every incident from scratch over st->opt.topo up to the
 * fence and the collector's clock less the hold, and in one transaction
 * syncs the incidents table to it and moves engine_cursor to the fence
 * (the next leader takes what it wrote as history). 0, or -errno with
 * one line in @err. */
int store_pg_inc_rebuild(struct store *st, uint64_t *events_out,
                         uint64_t *incidents_out, char *err, size_t err_len);
int store_pg_incidents(struct store *st, const struct store_incident_query *q,
                       char **out, size_t *out_len);
int store_pg_incident(struct store *st, int64_t id, char **out,
                      size_t *out_len);
int store_pg_service_status(struct store *st, char **out, size_t *out_len);
int store_pg_annotate(struct store *st, int64_t unix_ms, const char *text,
                      const char *service, int64_t incident, int64_t *id);

/* ---- pg_incident.c, pg_incscan.c ---- */

#define PG_INC_READS 8              /* ticks' reads remembered */
/* The leader's incident driver, st->pg->inc: the neutral driver of
 * store_priv.h (store_incscan.c, store_incrows.c, store_incident.c's
 * feeding, snapshots and replays) reading and writing through the
 * maintenance thread's connection. Maintenance thread only. */
struct store_pg_inc {
    struct store_inc *in;       /* owned; in->pg points back here */
    PGconn *c;                  /* borrowed: the leader's connection */
    int64_t fence;              /* a scan reads no event id above it */
    int64_t fed;                /* events up to this id were read */
    int64_t cursor;             /* engine_cursor as last written */
    /* fed at the last ticks, newest first (pg_inc_done_upto) */
    struct { int64_t mono, fed; } reads[PG_INC_READS];
    char *written;              /* engine_status as last written */
    /* A scan under way (pg_incscan.c): its page of rows, the next row,
     * and whether it opened the transaction it runs in. */
    PGresult *page;
    int row, open, began;
};

/* Reads events with id in (@after, @upto] (seq not NULL, a target or
 * kind @failover), in no order, through pg_inc_scan_next and _end. */
int pg_inc_ids_begin(struct store_inc *in, int64_t after, int64_t upto,
                     int64_t failover);

struct store_inc_row;
/* Row @i of @g, columns as STORE_INC_COLS (id, service, -, region,
 * to_region, manual, the 7 times, rpo_ms) with the pattern in column
 * @pattern_col, into @row (strings borrowed from @g). */
void pg_inc_row_at(const PGresult *g, int i, int pattern_col,
                   struct store_inc_row *row);

/* ---- pg_incscan.c: the incident driver's database operations ----
 *
 * store_incscan.c and store_incrows.c run the driver for both backends:
 * where they would step a SQLite statement they call these instead when
 * in->pg is set (the leader's connection, pg_incident.c). Rows come back
 * in the neutral structs of store_priv.h, their strings borrowed until
 * the next call. */
struct store_inc;
struct store_inc_srow;
struct store_inc_row;
/* Called for each incidents row (@opened_ms its key with the service):
 * 0 goes on, <0 stops with that error. */
typedef int (*store_inc_row_fn)(void *ctx, const struct store_inc_row *r,
                                int64_t opened_ms);
/* The text of row @id of the table of @q (INC_Q_TARGET, INC_Q_REGION,
 * INC_Q_ANSWERS: the answers' values joined by '\n') into *@out, which
 * the caller frees (NULL: no such row). 0, -ENOMEM or -EIO. */
int pg_inc_dim(struct store_inc *in, int q, int64_t id, char **out);
/* Agent @agent's agent_offsets row for @seq: *@from its from_seq
 * (INT64_MIN: none) and *@off its offset (0: none), *@next the next
 * row's from_seq (INT64_MAX: none). 0 or -EIO. */
int pg_inc_offset(struct store_inc *in, int64_t agent, int64_t seq,
                  int64_t *from, int64_t *off, int64_t *next);
/* The ids of the kinds named @names (0: none) and the largest
 * |offset_ms|: 0 or -EIO. */
int pg_inc_setup(struct store_inc *in, const char *const *names,
                 int64_t *ids, size_t n, int64_t *bound);
/* The events with unix_ms in [@lo, @hi] and id up to the fence, seq not
 * NULL, a target or kind @failover, by unix_ms: begin, then next (1 and
 * @r, 0 at the end, -EIO), then end (always, also after an error). */
int pg_inc_scan_begin(struct store_inc *in, int64_t lo, int64_t hi,
                      int64_t failover);
int pg_inc_scan_next(struct store_inc *in, struct store_inc_srow *r);
void pg_inc_scan_end(struct store_inc *in);
/* The incidents row of (@service, @opened_ms) to @fn: 1 found, 0 none,
 * or @fn's error or -EIO. */
int pg_inc_row_get(struct store_inc *in, const char *service,
                   int64_t opened_ms, store_inc_row_fn fn, void *ctx);
/* Inserts or updates @r's row (@opened_ms): 0 and *@id, or -EIO. */
int pg_inc_row_put(struct store_inc *in, const struct store_inc_row *r,
                   int64_t opened_ms, int64_t *id);
/* Each row opened after @from to @fn: 0, @fn's error or -EIO. */
int pg_inc_row_list(struct store_inc *in, int64_t from, store_inc_row_fn fn,
                    void *ctx);
int pg_inc_row_del(struct store_inc *in, int64_t id);
/* The highest incidents id (0: none): 0 or -EIO. */
int pg_inc_max_id(struct store_inc *in, int64_t *id);
/* BEGIN, COMMIT or ROLLBACK of the incidents' own transaction. */
int pg_inc_exec(struct store_inc *in, const char *sql);
/* Agent @agent's cluster and node ("" when unknown). */
void pg_inc_agent(struct store_inc *in, int64_t agent, char *cluster,
                  size_t cluster_len, char *node, size_t node_len);

#endif
