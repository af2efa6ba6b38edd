/* store_schema.c -- the SQLite file: the schema's migrations, the start
 * check (quick_check), pragmas, the writer connection's prepared
 * statements, and the small exec/step/prepare/corrupt helpers every
 * SQLite part of the store uses. */
#include "store_priv.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

/* After a burst, the WAL is cut back to this at checkpoints, so the files
 * on disk stay bounded: 64 MiB, some 16,000 pages, room for several big
 * group commits between checkpoints. A plain literal: see STORE_STR. */
#define STORE_WAL_LIMIT_BYTES 67108864
/* Page cache of the writer, KiB: 32 MiB (SQLite's default is 2 MiB): the
 * indexes of events take their inserts in many places at once. */
#define STORE_CACHE_KIB      32768
/* WAL pages that make the writer checkpoint (SQLite's default). */
#define STORE_WAL_PAGES      1000

/* PRAGMA quick_check at start stops after this long: it reads every page
 * (measured: 2.6 s for a 458 MB file in the page cache on a busy 2-core
 * machine, 0.9 s of it CPU; so some 5 s per GiB, more from a cold disk),
 * and a collector must not stay unready for minutes on a huge file. The
 * schema-and-last-pages check would be cheaper but misses a damaged page
 * in the middle of events, where most of the file is. Tests set another
 * deadline with SEXTANT_STORE_CHECK_MS (0 to STORE_CHECK_MS_MAX). */
#define STORE_CHECK_MS        10000
#define STORE_CHECK_MS_MAX    3600000
/* After the deadline the check is interrupted again this often until it
 * returns: SQLite forgets an interrupt that lands before the statement
 * starts (it clears the flag when a connection's first statement runs),
 * and the statement's own start (store_check_started) catches only a
 * deadline passed by then. */
#define STORE_CHECK_AGAIN_MS  10

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
    /* 6: compact event rows: the new dimension tables and events6 with
     * the indexes it keeps (their final names: the old indexes go now;
     * no query runs while migrating, and the old table only shrinks).
     * store_compact_finish (store_compact.c) then moves the events, in
     * chunks, and renames events6; the version is 6 from here on, so a
     * collector that knows only 5 refuses a file whose move is under way
     * rather than serve half of its events. */
    ("CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL"
     "  UNIQUE);"
     "CREATE TABLE certs (id INTEGER PRIMARY KEY,"
     "  not_after_ms INTEGER NOT NULL UNIQUE);"
     "DROP INDEX IF EXISTS events_time;"
     "DROP INDEX IF EXISTS events_target;"
     "DROP INDEX IF EXISTS events_kind;"
     "DROP INDEX IF EXISTS events_agent;"
     "DROP INDEX IF EXISTS events_text;"
     "CREATE TABLE events6 ("
     "  id INTEGER PRIMARY KEY,"
     "  agent_id INTEGER NOT NULL REFERENCES agents(id),"
     "  seq INTEGER,"                    /* NULL for collector-made events */
     "  unix_ms INTEGER NOT NULL,"       /* agent clock */
     "  recv_delta_ms INTEGER NOT NULL," /* collector clock - unix_ms */
     "  kind_id INTEGER NOT NULL REFERENCES kinds(id),"
     "  target_id INTEGER REFERENCES targets(id),"
     "  text_id INTEGER REFERENCES texts(id),"   /* error, reason */
     /* A probe result's fields; NULL for other kinds (and data holds
      * theirs). No foreign key on the two new dimensions: their rows are
      * never deleted, and each check would cost the writer a lookup. */
     "  probe_type INTEGER,"             /* sextant.proto ProbeType, 0 */
     "  ok INTEGER,"
     "  status INTEGER,"
     "  dns_us INTEGER,"
     "  connect_us INTEGER,"
     "  tls_us INTEGER,"
     "  first_byte_us INTEGER,"
     "  total_us INTEGER,"
     "  served_by_id INTEGER,"           /* regions; NULL: "" */
     "  cert_id INTEGER,"                /* certs; NULL: 0 */
     "  answers_id INTEGER REFERENCES texts(id),"  /* JSON array */
     "  data TEXT);"                     /* other kinds' fields, JSON */
     "CREATE UNIQUE INDEX events_seq ON events6 (agent_id, seq);"
     "CREATE INDEX events_time ON events6 (unix_ms);"
     "CREATE INDEX events_target ON events6 (target_id, unix_ms);"
     "CREATE INDEX events_kind ON events6 (kind_id, unix_ms)"
     "  WHERE data IS NOT NULL;"
     "CREATE INDEX events_text ON events6 (text_id)"
     "  WHERE text_id IS NOT NULL;"
     "CREATE INDEX events_answers ON events6 (answers_id)"
     "  WHERE answers_id IS NOT NULL;"
     "PRAGMA user_version = 6;"),
    /* 7: incidents. agent_offsets: each agent's clock offset as it was
     * when a batch was stored, from that batch's first seq on (a row when
     * it moved by a millisecond or more), so an event's corrected time
     * (unix_ms + the offset of the latest row with from_seq <= seq) never
     * changes later and a rebuild of the incidents equals the live
     * result. incidents: what the engine (incident.h) derived, one row
     * per (service, opened_ms); times in corrected ms, NULL not (yet).
     * annotations: people's notes, in the timeline and exports. Operator
     * events that are not failovers (deploy, drill, ...) become kind
     * "marker": only failovers take part in incidents. */
    ("CREATE TABLE agent_offsets ("
     "  agent_id INTEGER NOT NULL,"
     "  from_seq INTEGER NOT NULL,"
     "  offset_ms INTEGER NOT NULL,"     /* collector clock - agent's */
     "  PRIMARY KEY (agent_id, from_seq)) WITHOUT ROWID;"
     "INSERT INTO agent_offsets SELECT id, 0,"
     "  CAST(round(clock_offset_ms) AS INTEGER) FROM agents"
     "  WHERE clock_offset_ms IS NOT NULL;"
     "CREATE TABLE incidents ("
     "  id INTEGER PRIMARY KEY,"
     "  service TEXT NOT NULL,"
     "  opened_ms INTEGER NOT NULL,"
     "  region TEXT NOT NULL,"
     "  to_region TEXT,"
     "  pattern TEXT NOT NULL,"
     "  manual INTEGER NOT NULL,"
     "  first_failure_ms INTEGER,"
     "  detected_ms INTEGER,"
     "  failover_start_ms INTEGER,"
     "  dns_first_ms INTEGER,"
     "  dns_all_ms INTEGER,"
     "  restored_ms INTEGER,"
     "  closed_ms INTEGER,"
     "  rpo_ms REAL,"
     "  UNIQUE (service, opened_ms));"
     "CREATE INDEX incidents_open ON incidents (closed_ms)"
     "  WHERE closed_ms IS NULL;"
     "CREATE TABLE annotations ("
     "  id INTEGER PRIMARY KEY,"
     "  unix_ms INTEGER NOT NULL,"       /* the moment it is about */
     "  created_ms INTEGER NOT NULL,"    /* collector clock */
     "  text TEXT NOT NULL,"
     "  service TEXT,"
     "  incident_id INTEGER);"
     "CREATE INDEX annotations_time ON annotations (unix_ms);"
     STORE_MARKER_RECLASSIFY_SQL
     "PRAGMA user_version = 7;"),
    /* 8: target_now: every (agent, target)'s latest state and last probe,
     * kept by the writer in each group commit, so GET /api/v1/status
     * reads one row per agent and target, not the history (its columns
     * and backfill: store_status.c's). agents.spool_*: the spool the
     * agent said it held in its latest batch (Batch.spool_events and
     * spool_bytes), NULL until a batch is stored after this migration
     * (an agent too old to say sends 0, stored as 0). */
    ("CREATE TABLE target_now ("
     "  agent_id INTEGER NOT NULL,"
     "  target_id INTEGER NOT NULL,"
     "  health TEXT,"                    /* latest state event's "to" */
     "  state_ms INTEGER,"               /* its unix_ms, agent clock */
     "  probe_ms INTEGER,"               /* the last probe's, NULL none */
     "  ok INTEGER,"
     "  status INTEGER,"
     "  total_us INTEGER,"
     "  text_id INTEGER,"                /* the probe's error, texts */
     "  PRIMARY KEY (agent_id, target_id)) WITHOUT ROWID;"
     /* retention keeps the texts a target_now row names */
     "CREATE INDEX target_now_text ON target_now (text_id)"
     "  WHERE text_id IS NOT NULL;"
     "ALTER TABLE agents ADD COLUMN spool_events INTEGER;"
     "ALTER TABLE agents ADD COLUMN spool_bytes INTEGER;"
     "PRAGMA user_version = 8;"),
    /* 9: when the agent's last drop report arrived (collector clock;
     * NULL: none since this migration), so GET /api/v1/clusters says
     * when, not only what, the agent last reported it lost. */
    ("ALTER TABLE agents ADD COLUMN drop_report_ms INTEGER;"
     "PRAGMA user_version = 9;"),
};
#define STORE_SCHEMA_VERSION \
    ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

int store_schema_version(void)
{
    return STORE_SCHEMA_VERSION;
}

int store_exec(sqlite3 *db, const char *sql)
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
int store_pragma_int(sqlite3 *db, const char *sql, int64_t *out)
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

int store_user_version(sqlite3 *db, int *out)
{
    int64_t v;

    if (store_pragma_int(db, "PRAGMA user_version", &v) < 0)
        return -EIO;
    *out = (int)v;
    return 0;
}

/* Runs a prepared statement that returns no rows, then resets it. */
int store_step_done(sqlite3_stmt *s)
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

int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                           NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "prepare: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    return 0;
}

/* When @db's last error says the file is damaged (SQLITE_CORRUPT,
 * SQLITE_NOTADB), enters the corrupt state: 1. Else 0. Retrying cannot
 * fix such a file, so callers answer -EUCLEAN, not "try again". */
int store_check_corrupt(struct store *st, sqlite3 *db)
{
    int code = sqlite3_errcode(db);

    if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB)
        return 0;
    store_set_corrupt(st, sqlite3_errmsg(db));
    return 1;
}

/* The rollup tables' statements: migration 3 needs them for its
 * backfill, before the later migrations (whose columns the other
 * statements name) ran. */
static int store_prepare_rollups(struct store *st)
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

    if (st->minute.get)                 /* prepared already */
        return 0;
    for (int i = 0; i < 2; i++)
        if (store_prepare(db, rollup_sql[i][0], &r[i]->get) < 0 ||
            store_prepare(db, rollup_sql[i][1], &r[i]->put) < 0 ||
            store_prepare(db, rollup_sql[i][2], &r[i]->upd) < 0 ||
            store_prepare(db, rollup_sql[i][3], &r[i]->expire) < 0)
            return -EIO;
    return 0;
}

/* The writer's statements, once every migration ran. */
static int store_prepare_all(struct store *st)
{
    sqlite3 *db = st->wdb;

    if (st->agent_ins)                  /* prepared already */
        return 0;
    if (store_dims_prepare(st) < 0 || store_prepare_rollups(st) < 0)
        return -EIO;
    if (store_prepare(db,
                      "INSERT INTO agents (cluster, region, node, epoch,"
                      " agent_version, first_seen_ms, last_seen_ms,"
                      " cluster_id)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                      &st->agent_ins) < 0 ||
        store_prepare(db, store_event_ins_sql, &st->event_ins) < 0 ||
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
        store_prepare(db,       /* events_text, events_answers and
                                 * target_now_text: a last probe's error
                                 * outlives its event */
                      "DELETE FROM texts WHERE id > ?1 AND id <= ?2"
                      " AND NOT EXISTS (SELECT 1 FROM events"
                      "                 WHERE text_id = texts.id)"
                      " AND NOT EXISTS (SELECT 1 FROM events"
                      "                 WHERE answers_id = texts.id)"
                      " AND NOT EXISTS (SELECT 1 FROM target_now"
                      "                 WHERE text_id = texts.id)",
                      &st->texts_expire) < 0 ||
        store_prepare(db, "SELECT from_seq, offset_ms FROM agent_offsets"
                      " WHERE agent_id = ?1 ORDER BY from_seq DESC LIMIT 1",
                      &st->off_last) < 0 ||
        store_prepare(db, "INSERT OR REPLACE INTO agent_offsets (agent_id,"
                      " from_seq, offset_ms) VALUES (?1, ?2, ?3)",
                      &st->off_ins) < 0 ||
        store_prepare(db, "SELECT max(seq) FROM events WHERE agent_id = ?1",
                      &st->seq_max) < 0 ||
        store_prepare(db, "INSERT INTO texts (text)"
                      " VALUES (hex(randomblob(?1)))", &st->probe_ins) < 0 ||
        store_prepare(db, "DELETE FROM texts WHERE id = ?1",
                      &st->probe_del) < 0 ||
        store_prepare(db, store_now_put_sql, &st->now_put) < 0 ||
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
                      " drop_last_ms = ?10, clock_window = ?11,"
                      " drop_report_ms = coalesce(?12, drop_report_ms),"
                      " spool_events = ?13, spool_bytes = ?14"
                      " WHERE id = ?1",
                      &st->agent_upd) < 0)
        return -EIO;
    return 0;
}

void store_finalize_all(struct store *st)
{
    sqlite3_stmt **all[] = {
        &st->agent_get, &st->agent_ins, &st->agent_upd, &st->event_ins,
        &st->seq_scan, &st->seq_range, &st->events_expire,
        &st->texts_window, &st->texts_expire, &st->probe_ins,
        &st->off_last, &st->off_ins, &st->seq_max, &st->now_put,
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
    store_dims_finalize(st);
}

/* Applies every migration the file has not seen yet, each in its own
 * transaction together with the new user_version (and, for 3, the
 * rollups of the events already stored), then moves the events of 6 in
 * chunks if that is not done yet. */
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
            (store_prepare_rollups(st) < 0 ||
             store_backfill_rollups(st) < 0))
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
    /* 6's events move in many transactions of their own, resumed at
     * every start until done. */
    rc = store_compact_finish(st);
    if (rc < 0 && rc != -EINTR)
        log_msg(LOGL_ERROR, "store", "migration 6 failed");
    return rc;
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
void store_checkpoint(struct store *st)
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

int64_t store_env_int(const char *name, int64_t lo, int64_t hi,
                      int64_t def)
{
    const char *v = getenv(name);
    char *end;
    long long n;

    if (!v || !*v)
        return def;
    n = strtoll(v, &end, 10);
    if (*end || n < lo || n > hi) {
        log_msg(LOGL_WARN, "store", "%s=%s is not %lld to %lld: %lld", name,
                v, (long long)lo, (long long)hi, (long long)def);
        return def;
    }
    return n;
}

/* Why a thread that calls sqlite3_interrupt, not a progress handler:
 * quick_check walks every b-tree inside one virtual machine instruction
 * (OP_IntegrityCk), and SQLite 3.40 (Debian 12's) calls the progress
 * handler only between instructions, so a handler's deadline is seen
 * once the whole file was read: 324 s late on a cold 5.4 GiB file
 * (bench/RESULTS.md). The b-tree walk does look at the interrupt flag at
 * every page it visits, so an interrupt stops it within one page read.
 * A smaller progress step would change nothing (the one instruction is
 * the walk), and PRAGMA quick_check(N) bounds the errors reported, not
 * the pages read. Checking the file's header and freelist at start and
 * the rest later, in the background, would leave a damaged file serving
 * until then; a bounded check keeps "damaged: refused at start" for every
 * file checked in time, and says so of the others. */
struct store_check_timer {
    sqlite3 *db;                /* borrowed; open until the timer ends */
    int64_t until_ns;           /* monotonic */
    int done;                   /* under lock: the check returned */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* on CLOCK_MONOTONIC */
};

static void *store_check_timer_run(void *arg)
{
    struct store_check_timer *t = arg;

    pthread_mutex_lock(&t->lock);
    while (!t->done) {
        int64_t left = t->until_ns - store_mono_ns();
        struct timespec ts;

        if (left <= 0) {
            sqlite3_interrupt(t->db);
            left = (int64_t)STORE_CHECK_AGAIN_MS * 1000000;
        }
        store_mono_deadline(&ts, (left + 999999) / 1000000);
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* The check's statement has started (its first instruction, after SQLite
 * cleared any earlier interrupt): a deadline passed already interrupts
 * it here, so that even a 0 ms deadline stops the check on any file. */
static int store_check_started(unsigned type, void *ctx, void *p, void *x)
{
    struct store_check_timer *t = ctx;

    (void)type;
    (void)p;
    (void)x;
    if (store_mono_ns() >= t->until_ns)
        sqlite3_interrupt(t->db);
    return 0;
}

/* Starts @t's thread on @db: 0, or -errno and no thread. */
static int store_check_timer_start(struct store_check_timer *t, sqlite3 *db,
                                   int64_t ms, pthread_t *th)
{
    pthread_condattr_t ca;
    int rc;

    memset(t, 0, sizeof(*t));
    t->db = db;
    t->until_ns = store_mono_ns() + ms * 1000000;
    if (pthread_condattr_init(&ca) != 0)
        return -ENOMEM;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -rc;
    pthread_mutex_init(&t->lock, NULL);
    rc = pthread_create(th, NULL, store_check_timer_run, t);
    if (rc != 0) {
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
    }
    return -rc;
}

/* Ends @t's thread: no interrupt comes after this. */
static void store_check_timer_stop(struct store_check_timer *t, pthread_t th)
{
    pthread_mutex_lock(&t->lock);
    t->done = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
}

/* PRAGMA quick_check, on a connection of its own (the writer's page cache
 * stays as cold as after any start) and interrupted at its deadline
 * (store_check_ms): then the collector starts unchecked, and says so. A
 * damaged page it finds, or a file that is not a database at all:
 * -EUCLEAN, corrupt state. */
static int store_quick_check(struct store *st)
{
    struct store_check_timer t;
    pthread_t th;
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    /* Tests cut the check short on a small file. */
    int64_t ms = store_env_int("SEXTANT_STORE_CHECK_MS", 0,
                               STORE_CHECK_MS_MAX, STORE_CHECK_MS);
    int rc = -EIO, step;

    if (sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READONLY |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s, NULL) !=
        SQLITE_OK)
        goto out;
    if (store_check_timer_start(&t, db, ms, &th) < 0) {
        log_msg(LOGL_ERROR, "store", "quick_check of %s: no timer thread",
                st->path);
        goto out;
    }
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, store_check_started, &t);
    step = sqlite3_step(s);
    store_check_timer_stop(&t, th);
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
        log_msg(LOGL_WARN, "store", "quick_check of %s not done after %lld "
                "ms: starting unchecked", st->path, (long long)ms);
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
int store_setup(struct store *st)
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
        store_exec(db, "PRAGMA journal_size_limit="
                   STORE_STR(STORE_WAL_LIMIT_BYTES)) < 0 ||
        /* Each batch's savepoint keeps a statement journal; past 64 KiB
         * SQLite would spill it to a temporary file, written a page at a
         * time and thrown away at RELEASE (a third of the writer's time,
         * measured). It is never needed after a crash. */
        store_exec(db, "PRAGMA temp_store=MEMORY") < 0 ||
        /* A negative cache_size counts KiB, not pages. */
        store_exec(db, "PRAGMA cache_size=-"
                   STORE_STR(STORE_CACHE_KIB)) < 0)
        return -EIO;
    /* Checkpoints run after a group's batches are answered, not inside
     * the COMMIT that crosses the threshold (which would make every batch
     * of that group wait for it): the hook only notes the WAL's size. */
    sqlite3_wal_hook(db, store_wal_hook, st);
    rc = store_migrate(st);
    if (rc == 0)                /* events6 is gone: every event in place */
        rc = store_now_backfill(st);
    if (rc == 0)
        rc = store_prepare_all(st);
    if (rc == 0)
        rc = store_prepare_agents(st);
    return rc;
}

/* Process-wide SQLite settings, before its first connection: memory
 * statistics off. With them on (SQLite's default) every allocation takes
 * a global mutex, and the writer allocates on every statement step:
 * malloc/free and mutexes were 16 % of the writer's samples under load
 * (bench/RESULTS.md). Nothing reads the statistics. Once SQLite is
 * initialised (a tool opened a connection first) the call is refused
 * with SQLITE_MISUSE and the default stays: slower, not wrong. */
static void store_sqlite_global(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

void store_sqlite_setup(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, store_sqlite_global);
}

int store_db_open(struct store *st)
{
    store_sqlite_setup();
    if (sqlite3_open_v2(st->path, &st->wdb,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        log_msg(LOGL_ERROR, "store", "open %s: %s", st->path,
                st->wdb ? sqlite3_errmsg(st->wdb) : "out of memory");
        return -EIO;
    }
    sqlite3_busy_timeout(st->wdb, STORE_BUSY_MS);
    return 0;
}

void store_db_interrupt(struct store *st)
{
    sqlite3_interrupt(st->wdb);
}

void store_db_close(struct store *st)
{
    store_finalize_all(st);
    /* Readers first: the last connection to close checkpoints and removes
     * the WAL, and only the writer may. */
    store_readers_close(st);
    if (st->wdb && sqlite3_close(st->wdb) != SQLITE_OK)
        log_msg(LOGL_ERROR, "store", "close: %s", sqlite3_errmsg(st->wdb));
    st->wdb = NULL;
}

static int64_t store_file_bytes(const char *path, const char *suffix)
{
    char p[4096];
    struct stat sb;

    snprintf(p, sizeof(p), "%s%s", path, suffix);
    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int64_t store_db_bytes(const struct store *st)
{
    return store_file_bytes(st->path, "") +
           store_file_bytes(st->path, "-wal");
}
