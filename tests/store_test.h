/* store_test.h -- submit-and-wait conveniences over the store's submit
 * calls, for the store's unit tests only (the collector itself never
 * waits for a commit: it answers from the done call). */
#ifndef SEXTANT_STORE_TEST_H
#define SEXTANT_STORE_TEST_H

#include <stdint.h>

#include "store.h"

/* Waits until @st is ready, submits @b (borrowed) and waits for its group
 * commit: 0 and *acked_seq (the new watermark, see store_submit), or the
 * -errno of store_wait_ready, store_submit or the commit. Aborts when
 * the writer has not answered after STORE_TEST_WAIT_MS. */
int store_test_ingest(struct store *st, const Sextant__V1__Batch *b,
                      int64_t recv_ms, uint64_t *acked_seq);
/* Waits until @st is ready, then runs a whole retention pass as if the
 * time were @now_ms and waits for its end: 0 or -errno. */
int store_test_retention_run(struct store *st, int64_t now_ms);

/* Removes the database @path (a file in @dir), its WAL and shared
 * memory, and then @dir; in PostgreSQL mode drops @path's database. */
void store_test_remove(const char *dir, const char *path);

/* PostgreSQL mode: SEXTANT_TEST_PG_DIR names the server of this ctest
 * run (the NAME@pg tests, tests/pg.cmake). Then each database path a
 * test names is a database of its own on that server, made the first
 * time (the same path again, e.g. a reopen: the same rows).
 * store_test_pg: 1 in PostgreSQL mode, else 0. */
int store_test_pg(void);
/* Sets @o (from store_options_default) to store @path's rows: nothing to
 * do for SQLite; in PostgreSQL mode, backend and pg_conninfo (a string
 * that lives until exit). Aborts when the database cannot be made. */
void store_test_options(const char *path, struct store_options *o);
/* The rows @sql gives on @path's rows (the SQLite file, or in PostgreSQL
 * mode its database running @pg_sql, NULL: @sql again), one line each,
 * columns joined by '|', SQL NULL as empty. Caller frees. Aborts on an
 * error. */
char *store_test_rows(const char *path, const char *sql, const char *pg_sql);

/* Polls @pred(@ctx) until it returns non-zero: 0, or -ETIMEDOUT once
 * @timeout_ms have passed without it (logged with @what). A look every
 * 20 ms, every 100 ms in PostgreSQL mode (where a look is usually a
 * query on a connection of its own). */
int store_test_wait_until(int (*pred)(void *ctx), void *ctx,
                          int64_t timeout_ms, const char *what);
/* Whether the incident engine has taken in every event stored in
 * @path's rows and settled them. PostgreSQL mode: the leader's engine
 * reads committed events once per leader tick, so its rows, counters
 * and announcements trail the ingest; settled means engine_cursor is at
 * the newest event id (pg_incident.c: nothing held, no replay owed, the
 * incidents written and told). SQLite: always 1, there the writer notes
 * each group's events in its engine as it commits, and the tests wait
 * for the row or counter they assert. */
int store_test_engine_settled(const char *path);
/* store_test_wait_until(store_test_engine_settled(@path)), up to
 * STORE_TEST_WAIT_MS: 0 or -ETIMEDOUT. */
int store_test_wait_engine(const char *path);

/* Generous: a loaded ASan run on two shared cores can take long for one
 * commit; a hung writer must still fail the test, not hang it. */
#define STORE_TEST_WAIT_MS 120000

#endif
