/* bench_db.c -- benchmark databases made by the collector's store code and
 * written with plain SQL; see bench_db.h. */
#include "bench_db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "store.h"

int bench_db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_db: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int bench_db_create(const char *path, sqlite3 **out)
{
    struct store *st = NULL;
    struct stat sb;
    sqlite3 *db = NULL;
    int rc;

    if (stat(path, &sb) == 0) {
        fprintf(stderr, "bench_db: %s exists; give a new file\n", path);
        return -1;
    }
    log_set_level(LOGL_WARN);           /* no "schema migrated" lines */
    rc = store_open(path, NULL, &st);
    if (rc == 0)
        rc = store_wait_ready(st, 0);   /* a new file: no deadline needed */
    store_close(st);
    if (rc < 0) {
        fprintf(stderr, "bench_db: store_open %s: %s\n", path,
                strerror(-rc));
        return -1;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "bench_db: open %s: %s\n", path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    if (bench_db_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
        bench_db_exec(db, "PRAGMA synchronous=FULL") < 0 ||
        bench_db_exec(db, "PRAGMA foreign_keys=ON") < 0 ||
        bench_db_exec(db, "PRAGMA cache_size=-32768") < 0) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

/* INSERT @sql with one text parameter @s; writes the new row's id. */
static int bench_db_name(sqlite3 *db, const char *sql, const char *s,
                         int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE) {
        *id = sqlite3_last_insert_rowid(db);
        rc = 0;
    } else {
        fprintf(stderr, "bench_db: %s (%s): %s\n", sql, s,
                sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

int bench_db_dims(sqlite3 *db, struct bench_ids *ids)
{
    for (unsigned i = 0; i < BENCH_CLUSTERS; i++)
        if (bench_db_name(db, "INSERT INTO clusters (name) VALUES (?1)",
                          bench_clusters[i], &ids->cluster[i]) < 0)
            return -1;
    for (unsigned i = 0; i < 2; i++)
        if (bench_db_name(db, "INSERT INTO kinds (name) VALUES (?1)",
                          bench_kind_name((enum bench_kind)i),
                          &ids->kind[i]) < 0)
            return -1;
    for (unsigned i = 0; i < BENCH_TARGETS; i++)
        if (bench_db_name(db, "INSERT INTO targets (name) VALUES (?1)",
                          bench_targets[i], &ids->target[i]) < 0)
            return -1;
    for (unsigned i = 0; i < BENCH_TEXTS; i++)
        if (bench_db_name(db, "INSERT INTO texts (text) VALUES (?1)",
                          bench_texts[i], &ids->text[i]) < 0)
            return -1;
    return 0;
}

int bench_db_agent(sqlite3 *db, const struct bench_agent *a,
                   const struct bench_ids *ids, int64_t seen_ms,
                   int64_t *agent_id)
{
    static const char sql[] =       /* as the store's agent_ins */
        "INSERT INTO agents (cluster, region, node, epoch, agent_version,"
        " first_seen_ms, last_seen_ms, cluster_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)";
    const char *cluster = bench_clusters[a->cluster];
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_text(st, 2, cluster, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_text(st, 3, a->node, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 4, (int64_t)a->epoch) == SQLITE_OK &&
        sqlite3_bind_text(st, 5, "bench", -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 6, seen_ms) == SQLITE_OK &&
        sqlite3_bind_int64(st, 7, ids->cluster[a->cluster]) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE) {
        *agent_id = sqlite3_last_insert_rowid(db);
        rc = 0;
    } else {
        fprintf(stderr, "bench_db: agent %s: %s\n", a->node,
                sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

int bench_db_prepare_event(sqlite3 *db, sqlite3_stmt **out)
{
    static const char sql[] =       /* the store's event_ins, verbatim */
        "INSERT OR IGNORE INTO events (agent_id, seq, unix_ms,"
        " recv_ms, kind_id, target_id, text_id, data)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_db: prepare: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

void bench_db_ids_plain(struct bench_ids *ids)
{
    for (unsigned i = 0; i < BENCH_CLUSTERS; i++)
        ids->cluster[i] = i + 1;
    for (unsigned i = 0; i < 2; i++)
        ids->kind[i] = i + 1;
    for (unsigned i = 0; i < BENCH_TARGETS; i++)
        ids->target[i] = i + 1;
    for (unsigned i = 0; i < BENCH_TEXTS; i++)
        ids->text[i] = i + 1;
}

void bench_db_row(struct bench_row *r, const struct bench_event *ev,
                  int64_t agent_id, int64_t recv_ms,
                  const struct bench_ids *ids)
{
    r->agent_id = agent_id;
    r->seq = (int64_t)ev->seq;
    r->unix_ms = ev->unix_ms;
    r->recv_ms = recv_ms;
    r->kind_id = ids->kind[ev->kind];
    r->target_id = ids->target[ev->target];
    r->text_id = ev->text >= 0 ? ids->text[ev->text] : 0;
    r->ok = ev->kind == BENCH_PROBE && ev->ok;
    r->status = ev->kind == BENCH_PROBE ? ev->status : 0;
    r->total_us = ev->kind == BENCH_PROBE ? (int64_t)ev->total_us : 0;
    r->data_len = (int)bench_event_json(ev, r->data);
}

/* Binds an id, or NULL for 0. */
static int bench_db_bind_id(sqlite3_stmt *s, int i, int64_t id)
{
    return id ? sqlite3_bind_int64(s, i, id) : sqlite3_bind_null(s, i);
}

int bench_db_insert(sqlite3_stmt *s, const struct bench_row *r)
{
    int rc = -1;

    if (sqlite3_bind_int64(s, 1, r->agent_id) == SQLITE_OK &&
        bench_db_bind_id(s, 2, r->seq) == SQLITE_OK &&
        sqlite3_bind_int64(s, 3, r->unix_ms) == SQLITE_OK &&
        sqlite3_bind_int64(s, 4, r->recv_ms) == SQLITE_OK &&
        sqlite3_bind_int64(s, 5, r->kind_id) == SQLITE_OK &&
        bench_db_bind_id(s, 6, r->target_id) == SQLITE_OK &&
        bench_db_bind_id(s, 7, r->text_id) == SQLITE_OK &&
        sqlite3_bind_text(s, 8, r->data, r->data_len, SQLITE_STATIC) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_DONE)
        rc = 0;
    else
        fprintf(stderr, "bench_db: insert: %s\n",
                sqlite3_errmsg(sqlite3_db_handle(s)));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
