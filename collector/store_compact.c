/* store_compact.c -- the second half of migration 6: every event moves
 * into the compact rows of schema 6 (a probe result's fields in typed
 * columns, see store_fields.c), in place and in chunks. Migration 6
 * (store_schema.c) made events6 and set user_version 6, so that an older
 * collector refuses the file from then on. Each chunk of ids is copied
 * into events6 and deleted from events in one transaction, so the WAL
 * stays bounded, the file hardly grows (the next chunks reuse the freed
 * pages) and a collector stopped or killed mid-way resumes at events6's
 * largest id on its next start; the last transaction drops the empty old
 * table, renames events6 and runs migration 7's marker reclassification
 * again. It runs on the writer at start, while the
 * server answers 503 "migrating". */
#include "store_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "log.h"

/* Ids per transaction: some 10 MB of WAL for probe results, and a chunk
 * takes well under a second, so a stop request waits little. */
#define STORE_COMPACT_CHUNK    50000
#define STORE_COMPACT_CHUNK_MAX 1000000
/* Progress is logged after the first chunk, then this often. */
#define STORE_COMPACT_LOG_MS   5000

/* A chunk: ?1 the last id moved, ?2 the chunk's last id, ?3 the id of
 * kind "probe". A probe's JSON goes to the columns only when they give
 * back its very text (store_fields.c writes it so: the same keys in the
 * same order, error "" only without a text); the checks below hold for
 * every row schema 3 to 5 wrote but a timing past INT64_MAX (json_extract
 * gives a real) or a served_by with a control character (escaped
 * otherwise by SQLite); such a row keeps its JSON. */
#define STORE_COMPACT_RANGE \
    " FROM events WHERE id > ?1 AND id <= ?2 AND kind_id = ?3"
/* A row's fields when they are valid JSON, else NULL: json_extract()
 * fails the whole statement on one malformed text (a hand-edited or
 * damaged row), which would stop every start at the same chunk. Such a
 * row is not typed; it keeps its text as it is. */
#define STORE_COMPACT_J "CASE WHEN json_valid(data) THEN data END"
#define STORE_COMPACT_CTRL \
    " GLOB '*[' || char(1) || '-' || char(31) || ']*'"
static const char *const store_compact_sql[] = {
    /* the next chunk's end (NULL: none left) */
    ("SELECT max(id) FROM (SELECT id FROM events WHERE id > ?1"
     "  ORDER BY id LIMIT ?2)"),
    ("INSERT OR IGNORE INTO regions (name)"
     " SELECT json_extract(" STORE_COMPACT_J ", '$.served_by') AS v"
     STORE_COMPACT_RANGE
     "   AND typeof(v) = 'text' AND v <> '' AND NOT v" STORE_COMPACT_CTRL),
    ("INSERT OR IGNORE INTO certs (not_after_ms)"
     " SELECT json_extract(" STORE_COMPACT_J ", '$.cert_not_after_ms')"
     "   AS v" STORE_COMPACT_RANGE " AND typeof(v) = 'integer' AND v <> 0"),
    ("INSERT OR IGNORE INTO texts (text)"
     " SELECT json_extract(" STORE_COMPACT_J ", '$.answers')"
     STORE_COMPACT_RANGE
     "   AND json_type(" STORE_COMPACT_J ", '$.answers') = 'array'"),
    ("INSERT INTO events6 (id, agent_id, seq, unix_ms, recv_delta_ms,"
     "  kind_id, target_id, text_id, probe_type, ok, status, dns_us,"
     "  connect_us, tls_us, first_byte_us, total_us, served_by_id, cert_id,"
     "  answers_id, data)"
     " SELECT p.id, p.agent_id, p.seq, p.unix_ms, p.recv_ms - p.unix_ms,"
     "  p.kind_id, p.target_id, p.text_id,"
     "  CASE WHEN p.typed THEN CASE p.type WHEN 'http' THEN 1"
     "    WHEN 'tcp' THEN 2 WHEN 'dns' THEN 3 WHEN 'metric' THEN 4"
     "    WHEN 'kube' THEN 5 ELSE 0 END END,"
     "  CASE WHEN p.typed THEN p.ok END, CASE WHEN p.typed THEN p.status END,"
     "  CASE WHEN p.typed THEN p.dns END, CASE WHEN p.typed THEN p.con END,"
     "  CASE WHEN p.typed THEN p.tls END, CASE WHEN p.typed THEN p.fb END,"
     "  CASE WHEN p.typed THEN p.total END, CASE WHEN p.typed THEN r.id END,"
     "  CASE WHEN p.typed THEN c.id END, CASE WHEN p.typed THEN a.id END,"
     "  CASE WHEN p.typed THEN NULL ELSE p.data END"
     " FROM (SELECT e.*, json_extract(e.j, '$.type') AS type,"
     "    json_extract(e.j, '$.ok') AS ok,"
     "    json_extract(e.j, '$.status') AS status,"
     "    json_extract(e.j, '$.dns_us') AS dns,"
     "    json_extract(e.j, '$.connect_us') AS con,"
     "    json_extract(e.j, '$.tls_us') AS tls,"
     "    json_extract(e.j, '$.first_byte_us') AS fb,"
     "    json_extract(e.j, '$.total_us') AS total,"
     "    json_extract(e.j, '$.served_by') AS sb,"
     "    json_extract(e.j, '$.cert_not_after_ms') AS cert,"
     "    json_extract(e.j, '$.answers') AS ans,"
     "    e.kind_id = ?3"
     "    AND json_type(e.j, '$.type') = 'text'"
     "    AND json_extract(e.j, '$.type') IN"
     "      ('http', 'tcp', 'dns', 'metric', 'kube', 'unknown')"
     "    AND json_type(e.j, '$.ok') IN ('true', 'false')"
     "    AND typeof(json_extract(e.j, '$.status')) = 'integer'"
     "    AND typeof(json_extract(e.j, '$.dns_us')) = 'integer'"
     "    AND typeof(json_extract(e.j, '$.connect_us')) = 'integer'"
     "    AND typeof(json_extract(e.j, '$.tls_us')) = 'integer'"
     "    AND typeof(json_extract(e.j, '$.first_byte_us')) = 'integer'"
     "    AND typeof(json_extract(e.j, '$.total_us')) = 'integer'"
     "    AND typeof(json_extract(e.j, '$.cert_not_after_ms')) ="
     "      'integer'"
     "    AND json_type(e.j, '$.served_by') = 'text'"
     "    AND NOT json_extract(e.j, '$.served_by')" STORE_COMPACT_CTRL
     "    AND coalesce(json_type(e.j, '$.answers'), 'array') = 'array'"
     "    AND CASE WHEN e.text_id IS NULL"
     "      THEN json_extract(e.j, '$.error') IS ''"
     "      ELSE json_type(e.j, '$.error') IS NULL END"
     "    AND json_remove(e.j, '$.type', '$.ok', '$.status', '$.error',"
     "      '$.dns_us', '$.connect_us', '$.tls_us', '$.first_byte_us',"
     "      '$.total_us', '$.served_by', '$.cert_not_after_ms',"
     "      '$.answers') = '{}' AS typed"
     "  FROM (SELECT *, " STORE_COMPACT_J " AS j FROM events"
     "    WHERE id > ?1 AND id <= ?2) e) p"
     " LEFT JOIN regions r ON r.name = p.sb AND p.sb <> ''"
     " LEFT JOIN certs c ON c.not_after_ms = p.cert AND p.cert <> 0"
     " LEFT JOIN texts a ON a.text = p.ans"
     " ORDER BY p.id"),
    ("DELETE FROM events WHERE id > ?1 AND id <= ?2"),
};
enum { COMPACT_WINDOW, COMPACT_REGIONS, COMPACT_CERTS, COMPACT_ANSWERS,
       COMPACT_COPY, COMPACT_DELETE, COMPACT_COUNT };

/* Ids per chunk: STORE_COMPACT_CHUNK, or for tests (a migration long
 * enough to kill mid-way) SEXTANT_STORE_MIGRATE_CHUNK. */
static int64_t store_compact_chunk(void)
{
    return store_env_int("SEXTANT_STORE_MIGRATE_CHUNK", 1,
                         STORE_COMPACT_CHUNK_MAX, STORE_COMPACT_CHUNK);
}

/* Runs @s with the chunk's bounds and the probe kind: 0 or -EIO. */
static int store_compact_run(sqlite3_stmt *s, int64_t after, int64_t end,
                             int64_t probe_kind)
{
    if (sqlite3_bind_int64(s, 1, after) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, end) != SQLITE_OK ||
        (sqlite3_bind_parameter_count(s) >= 3 &&
         sqlite3_bind_int64(s, 3, probe_kind) != SQLITE_OK)) {
        sqlite3_reset(s);
        return -EIO;
    }
    return store_step_done(s);
}

/* The last id of the chunk after @after (0: none left): 0 or -EIO. */
static int store_compact_window(sqlite3_stmt *s, int64_t after,
                                int64_t chunk, int64_t *end)
{
    int step, rc = -EIO;

    if (sqlite3_bind_int64(s, 1, after) == SQLITE_OK &&
        sqlite3_bind_int64(s, 2, chunk) == SQLITE_OK) {
        step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            *end = sqlite3_column_int64(s, 0);     /* NULL reads as 0 */
            rc = 0;
        }
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* Moves the chunk (after, end] in one transaction: the rows moved, or
 * -EIO. */
static int64_t store_compact_move(struct store *st, sqlite3_stmt **s,
                                  int64_t after, int64_t end,
                                  int64_t probe_kind)
{
    int64_t n;

    if (store_exec(st->wdb, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    for (int i = COMPACT_REGIONS; i < COMPACT_COUNT; i++)
        if (store_compact_run(s[i], after, end, probe_kind) < 0) {
            store_exec(st->wdb, "ROLLBACK");
            return -EIO;
        }
    n = sqlite3_changes64(st->wdb);         /* the DELETE's: rows moved */
    if (store_exec(st->wdb, "COMMIT") < 0) {
        store_exec(st->wdb, "ROLLBACK");    /* a failed COMMIT stays open */
        return -EIO;
    }
    store_checkpoint(st);       /* the writer loop does not run yet */
    return n;
}

/* Whether store_close asked the writer to stop (between two chunks: an
 * interrupt only stops a statement that runs). */
static int store_compact_closing(struct store *st)
{
    int closing;

    pthread_mutex_lock(&st->qlock);
    closing = st->closing;
    pthread_mutex_unlock(&st->qlock);
    return closing;
}

/* The last transaction: the old table is empty. The view renders each
 * row's fields as schema 5 stored them, for people with the sqlite3 shell
 * and as the reference of the API's rendering (a probe's error comes
 * last: schema 5 put it back with json_set, which appends; "error":""
 * stays in 4th place). */
static const char store_compact_end_sql[] =
    "DROP VIEW IF EXISTS events_full;"
    "DROP TABLE events;"
    "ALTER TABLE events6 RENAME TO events;"
    "CREATE VIEW events_full AS SELECT id, agent_id, seq, unix_ms, recv_ms,"
    "  kind, target,"
    "  CASE WHEN o IS NULL THEN"
    "    CASE WHEN text_id IS NULL THEN data"
    "    ELSE json_set(data, CASE kind WHEN 'state' THEN '$.reason'"
    "                        ELSE '$.error' END, text) END"
    "  WHEN text_id IS NULL THEN o"
    "  ELSE json_set(json_remove(o, '$.error'), '$.error', text) END"
    "  AS data"
    "  FROM (SELECT *, CASE WHEN answers IS NULL THEN p"
    "      ELSE json_set(p, '$.answers', json(answers)) END AS o"
    "    FROM (SELECT e.id, e.agent_id, e.seq, e.unix_ms,"
    "      e.unix_ms + e.recv_delta_ms AS recv_ms, k.name AS kind,"
    "      tg.name AS target, e.text_id, x.text, e.data, an.text AS answers,"
    "      CASE WHEN e.data IS NULL THEN json_object("
    "        'type', CASE e.probe_type WHEN 1 THEN 'http' WHEN 2 THEN 'tcp'"
    "          WHEN 3 THEN 'dns' WHEN 4 THEN 'metric' WHEN 5 THEN 'kube'"
    "          ELSE 'unknown' END,"
    "        'ok', json(CASE WHEN e.ok THEN 'true' ELSE 'false' END),"
    "        'status', e.status, 'error', '', 'dns_us', e.dns_us,"
    "        'connect_us', e.connect_us, 'tls_us', e.tls_us,"
    "        'first_byte_us', e.first_byte_us, 'total_us', e.total_us,"
    "        'served_by', coalesce(r.name, ''),"
    "        'cert_not_after_ms', coalesce(c.not_after_ms, 0)) END AS p"
    "      FROM events e JOIN kinds k ON k.id = e.kind_id"
    "      LEFT JOIN targets tg ON tg.id = e.target_id"
    "      LEFT JOIN texts x ON x.id = e.text_id"
    "      LEFT JOIN regions r ON r.id = e.served_by_id"
    "      LEFT JOIN certs c ON c.id = e.cert_id"
    "      LEFT JOIN texts an ON an.id = e.answers_id));"
    /* Rows a compaction moved into events6 before migration 7 ran (a
     * schema 6 collector stopped mid-way, then this one started) escaped
     * its reclassification, which only saw the old table: run it again
     * on the whole table, now that every row is in it. */
    STORE_MARKER_RECLASSIFY_SQL;

/* Tells where the copy stands: *after = the last id moved already, *last
 * = the largest id to move, *probe_kind. */
static int store_compact_start(struct store *st, int64_t *after,
                               int64_t *last, int64_t *probe_kind)
{
    sqlite3 *db = st->wdb;
    int64_t first = 0;

    if (store_pragma_int(db, "SELECT coalesce(max(id), 0) FROM events6",
                         after) < 0 ||
        /* Nothing moved yet: start below the smallest id (the collector
         * only makes positive ones; a hand-made row is not left behind
         * either, and store_compact_end checks). */
        (*after == 0 &&
         store_pragma_int(db, "SELECT coalesce(min(id) - 1, 0) FROM events",
                          &first) < 0) ||
        store_pragma_int(db, "SELECT coalesce(max(id), 0) FROM events",
                         last) < 0 ||
        store_pragma_int(db, "SELECT coalesce((SELECT id FROM kinds"
                         " WHERE name = 'probe'), 0)", probe_kind) < 0)
        return -EIO;
    if (*after > 0) {
        log_msg(LOGL_INFO, "store", "migrating events to schema 6: "
                "resuming after id %lld", (long long)*after);
    } else {
        *after = first < 0 ? first : 0;
        log_msg(LOGL_INFO, "store", "migrating events to schema 6 (in "
                "place, in chunks; the collector is not ready until done)");
    }
    return 0;
}

/* Drops the emptied old table and puts events6 in its place. */
static int store_compact_end(struct store *st)
{
    int64_t left = 0;

    if (store_exec(st->wdb, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    /* The old table is dropped only empty: an event the walk missed
     * stops the start (logged) instead of going with it. */
    if (store_pragma_int(st->wdb, "SELECT count(*) FROM"
                         " (SELECT 1 FROM events LIMIT 1)", &left) < 0 ||
        left != 0 || store_exec(st->wdb, store_compact_end_sql) < 0) {
        if (left != 0)
            log_msg(LOGL_ERROR, "store", "migrating events to schema 6: "
                    "events left behind in the old table; not dropping it");
        store_exec(st->wdb, "ROLLBACK");
        return -EIO;
    }
    if (store_exec(st->wdb, "COMMIT") < 0) {
        store_exec(st->wdb, "ROLLBACK");
        return -EIO;
    }
    log_msg(LOGL_INFO, "store", "migrating events to schema 6: done");
    return 0;
}

int store_compact_finish(struct store *st)
{
    sqlite3_stmt *s[COMPACT_COUNT] = { NULL };
    int64_t chunk = store_compact_chunk(), after = 0, last, probe_kind, end;
    int64_t moved = 0, log_at = 0, n, pending;
    int rc = -EIO;

    if (store_pragma_int(st->wdb, "SELECT count(*) FROM sqlite_schema"
                         " WHERE name = 'events6'", &pending) < 0)
        goto out;
    if (!pending)                       /* moved already, or never began */
        return 0;
    if (store_compact_start(st, &after, &last, &probe_kind) < 0)
        goto out;
    for (int i = 0; i < COMPACT_COUNT; i++)
        if (store_prepare(st->wdb, store_compact_sql[i], &s[i]) < 0)
            goto out;
    for (;;) {
        if (store_compact_closing(st)) {
            rc = -EINTR;
            goto out;
        }
        if (store_compact_window(s[COMPACT_WINDOW], after, chunk, &end) < 0)
            goto out;
        if (end == 0)
            break;
        n = store_compact_move(st, s, after, end, probe_kind);
        if (n < 0)
            goto out;
        moved += n;
        after = end;
        if (store_mono_ns() / 1000000 >= log_at) {
            log_msg(LOGL_INFO, "store", "migrating events to schema 6: "
                    "%lld moved, up to id %lld of %lld",
                    (long long)moved, (long long)after, (long long)last);
            log_at = store_mono_ns() / 1000000 + STORE_COMPACT_LOG_MS;
        }
    }
    rc = store_compact_end(st);
out:
    if (rc == -EIO && store_compact_closing(st))
        rc = -EINTR;                /* interrupted by store_close */
    if (rc == -EINTR)
        log_msg(LOGL_INFO, "store", "migrating events to schema 6: stopped "
                "after id %lld; the next start resumes", (long long)after);
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "migrating events to schema 6: %s",
                sqlite3_errmsg(st->wdb));
    for (int i = 0; i < COMPACT_COUNT; i++)
        sqlite3_finalize(s[i]);
    return rc;
}
