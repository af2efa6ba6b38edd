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

int bench_db_name(sqlite3 *db, const char *sql, const char *s,
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
    /* As the store interns it: the decimal text into an integer column. */
    return bench_db_name(db, "INSERT INTO certs (not_after_ms) VALUES (?1)",
                         BENCH_CERT_TEXT, &ids->cert);
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
    if (sqlite3_prepare_v3(db, store_event_ins_sql, -1,
                           SQLITE_PREPARE_PERSISTENT, out, NULL) !=
            SQLITE_OK) {
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
    ids->cert = 1;
}

void bench_db_row(struct bench_row *r, const struct bench_event *ev,
                  int64_t agent_id, int64_t recv_ms,
                  const struct bench_ids *ids)
{
    memset(r, 0, sizeof(*r));
    sextant__v1__probe_result__init(&r->probe);
    sextant__v1__timings__init(&r->timings);
    r->e.agent_id = agent_id;
    r->e.seq = ev->seq;
    r->e.unix_ms = ev->unix_ms;
    r->e.recv_ms = recv_ms;
    r->ids.kind = ids->kind[ev->kind];
    r->ids.target = ids->target[ev->target];
    r->ids.text = ev->text >= 0 ? ids->text[ev->text] : 0;
    if (ev->kind == BENCH_STATE) {
        bench_event_json(ev, r->data);
        r->e.data = r->data;
        return;
    }
    /* What store_event_fields takes from the agent's ProbeResult. */
    r->probe.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    r->probe.ok = ev->ok;
    r->probe.status = ev->status;
    r->timings.dns_us = ev->dns_us;
    r->timings.connect_us = ev->connect_us;
    r->timings.tls_us = ev->tls_us;
    r->timings.first_byte_us = ev->first_byte_us;
    r->timings.total_us = ev->total_us;
    r->probe.timings = &r->timings;
    r->probe.cert_not_after_unix_ms = ev->cert_not_after_ms;
    r->ids.cert = ev->cert_not_after_ms ? ids->cert : 0;
    r->e.probe = &r->probe;
}

int bench_db_insert(sqlite3_stmt *s, const struct bench_row *r)
{
    int rc = -1;

    if (store_event_bind(s, &r->e, &r->ids) == 0 &&
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
