/* bench_db.h -- a collector database for the benchmarks that write rows
 * straight into SQLite (raw_ceiling, query_fill): created by the
 * collector's own store code, so its schema and pragmas are the
 * collector's and cannot drift, then written with the store's own insert
 * statement and binding, outside its writer thread (no HTTP, queue,
 * watermark or rollup). Not part of the product. */
#ifndef SEXTANT_BENCH_DB_H
#define SEXTANT_BENCH_DB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_events.h"
/* The store's row and insert (store_event_ins_sql, store_event_bind): the
 * benchmarks write the rows the collector writes, with its code. */
#include "store_priv.h"

/* The ids of the dimension rows bench_db_dims() inserts. */
struct bench_ids {
    int64_t cluster[BENCH_CLUSTERS];
    int64_t kind[2];                    /* by enum bench_kind */
    int64_t target[BENCH_TARGETS];
    int64_t text[BENCH_TEXTS];
    int64_t cert;                       /* BENCH_CERT_MS */
};

/* Creates @path (which must not exist) through store_open(),
 * store_wait_ready() and store_close(): every migration, the collector's
 * pragmas (incremental auto-vacuum, WAL). Then opens it with plain sqlite3
 * and sets what the store's writer sets on its connection:
 * synchronous=FULL, foreign_keys=ON. 0 or -1 with a message on stderr;
 * the caller closes *out. */
int bench_db_create(const char *path, sqlite3 **out);

/* Runs @sql (no rows). 0 or -1 with a message on stderr. */
int bench_db_exec(sqlite3 *db, const char *sql);

/* Runs the INSERT @sql with one text parameter @s (a dimension row: a
 * cluster, kind, target, text or region name) and writes the new row's
 * id. 0 or -1 with a message on stderr. */
int bench_db_name(sqlite3 *db, const char *sql, const char *s, int64_t *id);

/* Inserts every cluster, kind, target and text of bench_events.h. */
int bench_db_dims(sqlite3 *db, struct bench_ids *ids);

/* Inserts @a's row into agents as the store would on its first batch
 * (acked_seq 0, seen at @seen_ms), and writes its id. */
int bench_db_agent(sqlite3 *db, const struct bench_agent *a,
                   const struct bench_ids *ids, int64_t seen_ms,
                   int64_t *agent_id);

/* The store's own event insert (store_event_ins_sql), prepared on @db;
 * the caller finalizes *out. */
int bench_db_prepare_event(sqlite3 *db, sqlite3_stmt **out);

/* Fills @ids with plain numbers (index + 1) for a database without
 * dimension tables (raw_ceiling --minimal). */
void bench_db_ids_plain(struct bench_ids *ids);

/* One events row as the store's insert binds it (store_event_bind): the
 * row, its strings' ids, and a probe's values, which e.probe points to.
 * Fill it in place (bench_db_row): a copy would point into the original. */
struct bench_row {
    struct store_event_row e;
    struct store_event_ids ids;
    Sextant__V1__ProbeResult probe;     /* zeroed for a state change */
    Sextant__V1__Timings timings;
    char data[BENCH_JSON_MAX];          /* a state change's fields */
};

/* Fills @r from @ev of agent @agent_id. */
void bench_db_row(struct bench_row *r, const struct bench_event *ev,
                  int64_t agent_id, int64_t recv_ms,
                  const struct bench_ids *ids);

/* Binds @r to @ins (from bench_db_prepare_event) with the store's own
 * store_event_bind, steps and resets it. */
int bench_db_insert(sqlite3_stmt *ins, const struct bench_row *r);

/* Monotonic clock in seconds, for timing. */
double bench_now_s(void);

#endif
