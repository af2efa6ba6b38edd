/* pg_schema.c -- the PostgreSQL schema: its migrations (one migrator at a
 * time, under PG_LOCK_MIGRATE), versioned in sextant_schema like SQLite's
 * user_version; and the day partitions of events.
 *
 * The tables mirror SQLite's schema 9 (store_schema.c) column for column,
 * so the queries carry over, with these differences:
 *   - events is partitioned by day of unix_ms (agent clock), events_YYYYMMDD
 *     FOR VALUES FROM (day) TO (day + 1): retention drops a partition
 *     instead of deleting rows. A unique index on a partitioned table must
 *     hold the partition key, so the last line of defence is
 *     UNIQUE (agent_id, seq, unix_ms): an (agent, seq) is one event with
 *     one time. Exactly-once does not rest on it (store_pg.h);
 *   - texts are unique by md5 of the text (a btree entry holds at most
 *     2704 bytes; DNS answers and errors may be longer), and carry when
 *     they were made, so retention spares texts a writer may have just
 *     interned outside its transaction;
 *   - engine_status: the leader's service status for every collector;
 *     leader: who leads, for /metrics and the operator.
 * Never edit a shipped step: append. */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_priv.h"

static const char *const pg_migrations[] = {
    /* 1: schema 9 of the SQLite store, partitioned. */
    "CREATE TABLE clusters (id bigserial PRIMARY KEY, name text NOT NULL"
    "  UNIQUE);"
    "CREATE TABLE kinds (id bigserial PRIMARY KEY, name text NOT NULL"
    "  UNIQUE);"
    "CREATE TABLE targets (id bigserial PRIMARY KEY, name text NOT NULL"
    "  UNIQUE);"
    "CREATE TABLE regions (id bigserial PRIMARY KEY, name text NOT NULL"
    "  UNIQUE);"
    "CREATE TABLE certs (id bigserial PRIMARY KEY,"
    "  not_after_ms bigint NOT NULL UNIQUE);"
    "CREATE TABLE texts (id bigserial PRIMARY KEY, text text NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  md5 uuid NOT NULL UNIQUE);"      /* md5(text)::uuid */
    "CREATE TABLE agents ("
    "  id bigserial PRIMARY KEY,"
    "  cluster text NOT NULL,"
    "  region text NOT NULL,"
    "  node text NOT NULL,"
    "  epoch bigint NOT NULL,"          /* u64 as its i64 bits */
    "  acked_seq bigint NOT NULL DEFAULT 0,"
    "  agent_version text NOT NULL DEFAULT '',"
    "  first_seen_ms bigint NOT NULL,"
    "  last_seen_ms bigint NOT NULL,"
    "  clock_offset_ms double precision,"
    "  drop_first_seq bigint NOT NULL DEFAULT 0,"
    "  drop_last_seq bigint NOT NULL DEFAULT 0,"
    "  drop_count bigint NOT NULL DEFAULT 0,"
    "  drop_last_ms bigint NOT NULL DEFAULT 0,"
    "  cluster_id bigint REFERENCES clusters(id),"
    "  clock_window bytea,"
    "  spool_events bigint,"
    "  spool_bytes bigint,"
    "  drop_report_ms bigint,"
    "  UNIQUE (cluster, node, epoch));"
    "CREATE SEQUENCE events_id_seq AS bigint;"
    "CREATE TABLE events ("
    "  id bigint NOT NULL DEFAULT nextval('events_id_seq'),"
    "  agent_id bigint NOT NULL,"
    "  seq bigint,"                     /* NULL for collector-made events */
    "  unix_ms bigint NOT NULL,"        /* agent clock */
    "  recv_delta_ms bigint NOT NULL,"  /* collector clock - unix_ms */
    "  kind_id bigint NOT NULL,"
    "  target_id bigint,"
    "  text_id bigint,"
    "  probe_type integer,"
    "  ok integer,"
    "  status integer,"
    "  dns_us bigint,"
    "  connect_us bigint,"
    "  tls_us bigint,"
    "  first_byte_us bigint,"
    "  total_us bigint,"
    "  served_by_id bigint,"
    "  cert_id bigint,"
    "  answers_id bigint,"
    "  data text,"
    "  UNIQUE (agent_id, seq, unix_ms))"
    "  PARTITION BY RANGE (unix_ms);"
    "ALTER SEQUENCE events_id_seq OWNED BY events.id;"
    "CREATE INDEX events_id ON events (id);"
    "CREATE INDEX events_time ON events (unix_ms);"
    "CREATE INDEX events_target ON events (target_id, unix_ms);"
    "CREATE INDEX events_kind ON events (kind_id, unix_ms)"
    "  WHERE data IS NOT NULL;"
    "CREATE INDEX events_text ON events (text_id)"
    "  WHERE text_id IS NOT NULL;"
    "CREATE INDEX events_answers ON events (answers_id)"
    "  WHERE answers_id IS NOT NULL;"
    "CREATE TABLE rollup_minute ("
    "  target_id bigint NOT NULL,"
    "  cluster_id bigint NOT NULL,"
    "  t bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  failures bigint NOT NULL,"
    "  hist bytea NOT NULL,"
    "  PRIMARY KEY (target_id, cluster_id, t));"
    "CREATE INDEX rollup_minute_t ON rollup_minute (t);"
    "CREATE INDEX rollup_minute_target_t ON rollup_minute (target_id, t);"
    "CREATE TABLE rollup_hour ("
    "  target_id bigint NOT NULL,"
    "  cluster_id bigint NOT NULL,"
    "  t bigint NOT NULL,"
    "  count bigint NOT NULL,"
    "  failures bigint NOT NULL,"
    "  hist bytea NOT NULL,"
    "  PRIMARY KEY (target_id, cluster_id, t));"
    "CREATE INDEX rollup_hour_t ON rollup_hour (t);"
    "CREATE INDEX rollup_hour_target_t ON rollup_hour (target_id, t);"
    "CREATE TABLE agent_offsets ("
    "  agent_id bigint NOT NULL,"
    "  from_seq bigint NOT NULL,"
    "  offset_ms bigint NOT NULL,"
    "  PRIMARY KEY (agent_id, from_seq));"
    "CREATE TABLE incidents ("
    "  id bigserial PRIMARY KEY,"
    "  service text NOT NULL,"
    "  opened_ms bigint NOT NULL,"
    "  region text NOT NULL,"
    "  to_region text,"
    "  pattern text NOT NULL,"
    "  manual integer NOT NULL,"
    "  first_failure_ms bigint,"
    "  detected_ms bigint,"
    "  failover_start_ms bigint,"
    "  dns_first_ms bigint,"
    "  dns_all_ms bigint,"
    "  restored_ms bigint,"
    "  closed_ms bigint,"
    "  rpo_ms double precision,"
    "  UNIQUE (service, opened_ms));"
    "CREATE INDEX incidents_open ON incidents (closed_ms)"
    "  WHERE closed_ms IS NULL;"
    "CREATE TABLE annotations ("
    "  id bigserial PRIMARY KEY,"
    "  unix_ms bigint NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  text text NOT NULL,"
    "  service text,"
    "  incident_id bigint);"
    "CREATE INDEX annotations_time ON annotations (unix_ms);"
    "CREATE TABLE target_now ("
    "  agent_id bigint NOT NULL,"
    "  target_id bigint NOT NULL,"
    "  health text,"
    "  state_ms bigint,"
    "  probe_ms bigint,"
    "  ok integer,"
    "  status integer,"
    "  total_us bigint,"
    "  text_id bigint,"
    "  PRIMARY KEY (agent_id, target_id));"
    "CREATE INDEX target_now_text ON target_now (text_id)"
    "  WHERE text_id IS NOT NULL;"
    /* The leader's derived state for every collector: one row. */
    "CREATE TABLE engine_status ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  status text NOT NULL,"           /* store_service_status's JSON */
    "  leader text NOT NULL,"           /* the instance that wrote it */
    "  updated_ms bigint NOT NULL);"
    /* Up to which event id the leader's engine has read (its fence). */
    "CREATE TABLE engine_cursor ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  event_id bigint NOT NULL);"
    "INSERT INTO kinds (name) VALUES ('marker');",
    /* 2: the timeline's order (time, id) in its indexes. A btree on
     * (unix_ms) alone gives a millisecond's rows in no order of id, so
     * ORDER BY unix_ms, id LIMIT n sorted the whole window; with the id
     * in the key each day's index scan is in the page's order, and the
     * days' scans, read one after the other, stop at the limit
     * (pg_tl.c). The new indexes serve every query the old ones did
     * (same leading columns), so those go: no more indexes to write per
     * event than before. */
    "CREATE INDEX events_time_id ON events (unix_ms, id);"
    "DROP INDEX events_time;"
    "CREATE INDEX events_target_id ON events (target_id, unix_ms, id);"
    "DROP INDEX events_target;"
    "CREATE INDEX events_kind_id ON events (kind_id, unix_ms, id)"
    "  WHERE data IS NOT NULL;"
    "DROP INDEX events_kind;",
};
#define PG_SCHEMA_VERSION \
    ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

int pg_schema_version(void)
{
    return PG_SCHEMA_VERSION;
}

/* The schema's version: 0 when sextant_schema does not exist yet. */
static int pg_version(PGconn *c, int *out)
{
    PGresult *r = pg_query(c, "SELECT version FROM sextant_schema", NULL);
    int rc = 0;

    if (pg_ok(r)) {
        *out = PQntuples(r) ? (int)pg_i64(r, 0, 0, 0) : 0;
    } else if (r && !strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ?
                            PQresultErrorField(r, PG_DIAG_SQLSTATE) : "",
                            "42P01")) {
        *out = 0;               /* undefined_table: a new database */
    } else {
        rc = -EIO;
    }
    PQclear(r);
    return rc;
}

int pg_schema_check(PGconn *c, char *why, size_t len)
{
    int v = 0;

    if (pg_version(c, &v) < 0) {
        pg_err_text(c, NULL, why, len);
        return -EIO;
    }
    if (v == PG_SCHEMA_VERSION)
        return 0;
    if (v == 0)
        snprintf(why, len, "the database has no Sextant schema: start a "
                 "collector on it first");
    else
        snprintf(why, len, "the database's schema is version %d, this "
                 "collector's is %d: use the collector of that version, or "
                 "start this one on it first", v, PG_SCHEMA_VERSION);
    return -EPROTO;
}

int pg_migrate(PGconn *c)
{
    char lock[64], unlock[64];
    int v = 0, rc;

    snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%lld)",
             PG_LOCK_MIGRATE);
    snprintf(unlock, sizeof(unlock), "SELECT pg_advisory_unlock(%lld)",
             PG_LOCK_MIGRATE);
    if (pg_exec(c, lock) < 0)
        return -EIO;
    rc = pg_version(c, &v);
    if (rc == 0 && v > PG_SCHEMA_VERSION) {
        log_msg(LOGL_ERROR, "store", "the database's schema is version %d, "
                "newer than this collector's %d: run a newer collector",
                v, PG_SCHEMA_VERSION);
        rc = -EPROTO;
    }
    if (rc == 0 && v == 0)
        rc = pg_exec(c, "CREATE TABLE IF NOT EXISTS sextant_schema ("
                     "  version integer NOT NULL);"
                     "INSERT INTO sextant_schema SELECT 0 WHERE NOT EXISTS"
                     "  (SELECT 1 FROM sextant_schema)");
    for (; rc == 0 && v < PG_SCHEMA_VERSION; v++) {
        struct pg_params p;
        PGresult *r;

        log_msg(LOGL_INFO, "store", "migrating the database to schema "
                "version %d", v + 1);
        rc = pg_exec(c, "BEGIN");
        if (rc == 0)
            rc = pg_exec(c, pg_migrations[v]);
        if (rc == 0) {
            pg_params_reset(&p);
            pg_param_i64(&p, v + 1);
            r = pg_query(c, "UPDATE sextant_schema SET version = $1", &p);
            rc = pg_ok(r) ? 0 : -EIO;
            PQclear(r);
        }
        if (rc == 0)
            rc = pg_exec(c, "COMMIT");
        if (rc < 0)
            pg_exec(c, "ROLLBACK");
    }
    if (pg_exec(c, unlock) < 0 && rc == 0)
        rc = -EIO;
    return rc;
}

/* The day (its first ms) that holds @ms. */
static int64_t pg_day(int64_t ms)
{
    int64_t d = ms / PG_DAY_MS;

    if (ms < 0 && ms % PG_DAY_MS)
        d--;
    return d * PG_DAY_MS;
}

static int pg_day_known(const struct store_pg *pg, int64_t day)
{
    for (size_t i = 0; i < pg->n_days; i++)
        if (pg->days[i] == day)
            return 1;
    return 0;
}

static int pg_day_note(struct store_pg *pg, int64_t day)
{
    if (pg->n_days == pg->cap_days) {
        size_t cap = pg->cap_days ? pg->cap_days * 2 : 64;
        int64_t *d = realloc(pg->days, cap * sizeof(*d));

        if (!d)
            return -ENOMEM;
        pg->days = d;
        pg->cap_days = cap;
    }
    pg->days[pg->n_days++] = day;
    return 0;
}

/* Creates the partition of @day unless it exists. */
static int pg_partition_create(PGconn *c, int64_t day)
{
    char sql[512], name[32];
    time_t t = (time_t)(day / 1000);
    struct tm tm;
    int rc;

    if (!gmtime_r(&t, &tm))
        return -EINVAL;
    /* Days before 1970 or after 9999 have no such name; events that far
     * off are an agent's broken clock, and still get a partition. */
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        snprintf(name, sizeof(name), "events_d%lld",
                 (long long)(day / PG_DAY_MS) + 1000000000LL);
    else
        snprintf(name, sizeof(name), "events_%04d%02d%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(sql, sizeof(sql),
             "BEGIN;"
             "SELECT pg_advisory_xact_lock(%lld);"
             "CREATE TABLE IF NOT EXISTS %s PARTITION OF events"
             "  FOR VALUES FROM (%lld) TO (%lld);"
             "COMMIT",
             PG_LOCK_PARTITION, name, (long long)day,
             (long long)(day + PG_DAY_MS));
    rc = pg_exec(c, sql);
    if (rc < 0)
        pg_exec(c, "ROLLBACK");
    return rc;
}

int pg_partitions_ensure(struct store *st, PGconn *c, int64_t from_ms,
                         int64_t to_ms)
{
    struct store_pg *pg = st->pg;
    int rc = 0;

    pthread_mutex_lock(&pg->days_lock);
    for (int64_t d = pg_day(from_ms); rc == 0 && d <= pg_day(to_ms);
         d += PG_DAY_MS) {
        if (pg_day_known(pg, d))
            continue;
        rc = pg_partition_create(c, d);
        if (rc == 0)
            rc = pg_day_note(pg, d);
    }
    pthread_mutex_unlock(&pg->days_lock);
    return rc;
}

void pg_partitions_forget(struct store *st)
{
    pthread_mutex_lock(&st->pg->days_lock);
    st->pg->n_days = 0;
    pthread_mutex_unlock(&st->pg->days_lock);
}
