/* store_test.c -- submit-and-wait over the store, for its unit tests: a
 * waiter of our own (mutex, condition variable on CLOCK_MONOTONIC) that
 * the writer's done call signals; and the same tests on PostgreSQL (a
 * database per path on the ctest run's server) with a way to read rows
 * from either backend; and waits on a condition (the engine settled, a
 * counter, a row) with a deadline. */
#include "store_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store_priv.h"

struct store_test_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC */
    int done, rc;
    uint64_t acked;
};

/* A helper has no test to fail: a call that does not return 0 aborts. */
static void store_test_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "store_test: %s: %d\n", what, rc);
        abort();
    }
}

static void store_test_init(struct store_test_waiter *w)
{
    pthread_condattr_t ca;

    store_test_check(pthread_mutex_init(&w->lock, NULL),
                     "pthread_mutex_init");
    store_test_check(pthread_condattr_init(&ca), "pthread_condattr_init");
    store_test_check(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC),
                     "pthread_condattr_setclock");
    store_test_check(pthread_cond_init(&w->cond, &ca), "pthread_cond_init");
    pthread_condattr_destroy(&ca);
    w->done = 0;
    w->rc = 0;
    w->acked = 0;
}

static void store_test_done(void *ctx, int rc, uint64_t acked)
{
    struct store_test_waiter *w = ctx;

    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->acked = acked;
    w->done = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Waits for the done call, up to STORE_TEST_WAIT_MS: its rc. Past the
 * deadline the writer is hung: abort, since the job still holds @w (on
 * our stack) and would signal it after we returned. */
static int store_test_wait(struct store_test_waiter *w)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += STORE_TEST_WAIT_MS / 1000;
    pthread_mutex_lock(&w->lock);
    while (!w->done && rc == 0)
        rc = pthread_cond_timedwait(&w->cond, &w->lock, &until);
    if (!w->done) {
        fprintf(stderr, "store_test: no answer from the writer after %d "
                "ms\n", STORE_TEST_WAIT_MS);
        abort();
    }
    rc = w->rc;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static void store_test_free(struct store_test_waiter *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

int store_test_ingest(struct store *st, const Sextant__V1__Batch *b,
                      int64_t recv_ms, uint64_t *acked_seq)
{
    struct store_test_waiter w;
    int rc;

    store_test_init(&w);
    rc = store_wait_ready(st, STORE_TEST_WAIT_MS);
    if (rc == 0)
        rc = store_submit(st, b, recv_ms, 0, store_test_done, &w);
    if (rc == 0)
        rc = store_test_wait(&w);
    if (rc == 0)
        *acked_seq = w.acked;
    store_test_free(&w);
    return rc;
}

int store_test_retention_run(struct store *st, int64_t now_ms)
{
    struct store_test_waiter w;
    int rc;

    store_test_init(&w);
    rc = store_wait_ready(st, STORE_TEST_WAIT_MS);
    if (rc == 0)
        rc = store_submit_retention(st, now_ms, store_test_done, &w);
    if (rc == 0)
        rc = store_test_wait(&w);
    store_test_free(&w);
    return rc;
}

/* ---- PostgreSQL mode ---- */

#define STORE_TEST_PG_MAX 64        /* database paths one program names */

/* The databases made so far, by path (the tests are single-threaded
 * outside the store). */
static struct store_test_pg_db {
    char *path;                     /* NULL: free slot */
    char name[64];
    char conninfo[640];
} pg_dbs[STORE_TEST_PG_MAX];
static unsigned pg_made;            /* for names: pid and a count */

int store_test_pg(void)
{
    const char *d = getenv("SEXTANT_TEST_PG_DIR");

    return d && d[0];
}

/* The server's conninfo (tests/pg_server.sh wrote it into DIR/conninfo). */
static const char *store_test_pg_server(void)
{
    static char info[512];
    char p[4096];
    FILE *f;

    if (info[0])
        return info;
    snprintf(p, sizeof(p), "%s/conninfo", getenv("SEXTANT_TEST_PG_DIR"));
    f = fopen(p, "r");
    if (!f || !fgets(info, sizeof(info), f)) {
        fprintf(stderr, "store_test: no server's conninfo in %s\n", p);
        abort();
    }
    fclose(f);
    info[strcspn(info, "\n")] = '\0';
    return info;
}

static PGconn *store_test_pg_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "store_test: %s: %s", conninfo, PQerrorMessage(c));
        abort();
    }
    return c;
}

/* Runs @sql on the server's maintenance database ("postgres"). */
static void store_test_pg_admin(const char *sql)
{
    char info[640];
    PGconn *c;
    PGresult *r;

    /* Quiet: DROP DATABASE IF EXISTS notices a database that is not. */
    snprintf(info, sizeof(info), "%s dbname=postgres"
             " options='-c client_min_messages=warning'",
             store_test_pg_server());
    c = store_test_pg_connect(info);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "store_test: %s: %s", sql, PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

/* @path's database, made on first use. */
static struct store_test_pg_db *store_test_pg_db(const char *path)
{
    struct store_test_pg_db *free_slot = NULL;
    char sql[160];

    for (size_t i = 0; i < STORE_TEST_PG_MAX; i++) {
        if (pg_dbs[i].path && strcmp(pg_dbs[i].path, path) == 0)
            return &pg_dbs[i];
        if (!pg_dbs[i].path && !free_slot)
            free_slot = &pg_dbs[i];
    }
    if (!free_slot) {
        fprintf(stderr, "store_test: over %d databases\n",
                STORE_TEST_PG_MAX);
        abort();
    }
    /* The name is made of numbers only (the one kind of SQL text built
     * here); one a pid left by a crashed run goes first. */
    snprintf(free_slot->name, sizeof(free_slot->name), "sxt_c_%ld_%u",
             (long)getpid(), pg_made++);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             free_slot->name);
    store_test_pg_admin(sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", free_slot->name);
    store_test_pg_admin(sql);
    snprintf(free_slot->conninfo, sizeof(free_slot->conninfo),
             "%s dbname=%s", store_test_pg_server(), free_slot->name);
    free_slot->path = strdup(path);
    if (!free_slot->path)
        abort();
    return free_slot;
}

void store_test_options(const char *path, struct store_options *o)
{
    if (!store_test_pg())
        return;
    o->backend = STORE_BACKEND_POSTGRES;
    o->pg_conninfo = store_test_pg_db(path)->conninfo;
}

/* Appends @s and @sep to the growing *@buf (*@len bytes, *@cap). */
static void store_test_append(char **buf, size_t *len, size_t *cap,
                              const char *s, char sep)
{
    size_t n = strlen(s);

    while (*len + n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[(*len)++] = sep;
    (*buf)[*len] = '\0';
}

static char *store_test_rows_pg(const char *path, const char *sql)
{
    PGconn *c = store_test_pg_connect(store_test_pg_db(path)->conninfo);
    PGresult *r = PQexec(c, sql);
    char *out = NULL;
    size_t len = 0, cap = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "store_test: %s: %s", sql, PQerrorMessage(c));
        abort();
    }
    store_test_append(&out, &len, &cap, "", '\0');
    len = 0;
    for (int i = 0; i < PQntuples(r); i++)
        for (int k = 0; k < PQnfields(r); k++)
            store_test_append(&out, &len, &cap, PQgetvalue(r, i, k),
                              k + 1 < PQnfields(r) ? '|' : '\n');
    PQclear(r);
    PQfinish(c);
    return out;
}

char *store_test_rows(const char *path, const char *sql, const char *pg_sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char *out = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (store_test_pg())
        return store_test_rows_pg(path, pg_sql ? pg_sql : sql);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "store_test: %s: %s\n", sql, sqlite3_errmsg(db));
        abort();
    }
    store_test_append(&out, &len, &cap, "", '\0');
    len = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int n = sqlite3_column_count(s);

        for (int k = 0; k < n; k++) {
            const unsigned char *v = sqlite3_column_text(s, k);

            store_test_append(&out, &len, &cap, v ? (const char *)v : "",
                              k + 1 < n ? '|' : '\n');
        }
    }
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "store_test: %s: %s\n", sql, sqlite3_errmsg(db));
        abort();
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

void store_test_remove(const char *dir, const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    char p[4096];

    for (size_t i = 0; store_test_pg() && i < STORE_TEST_PG_MAX; i++) {
        if (pg_dbs[i].path && strcmp(pg_dbs[i].path, path) == 0) {
            snprintf(p, sizeof(p), "DROP DATABASE %s WITH (FORCE)",
                     pg_dbs[i].name);
            store_test_pg_admin(p);
            free(pg_dbs[i].path);
            pg_dbs[i].path = NULL;
        }
    }
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* ---- waiting for a condition ---- */

static int64_t store_test_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_test_wait_until(int (*pred)(void *ctx), void *ctx,
                          int64_t timeout_ms, const char *what)
{
    int64_t until = store_test_mono_ms() + timeout_ms;
    useconds_t pause = store_test_pg() ? 100000 : 20000;

    while (!pred(ctx)) {
        if (store_test_mono_ms() >= until) {
            fprintf(stderr, "store_test: still not %s after %lld ms\n",
                    what, (long long)timeout_ms);
            return -ETIMEDOUT;
        }
        usleep(pause);
    }
    return 0;
}

int store_test_engine_settled(const char *path)
{
    char *rows;
    int yes;

    if (!store_test_pg())
        return 1;
    /* No events and no cursor yet: nothing to settle. */
    rows = store_test_rows_pg(path,
        "SELECT coalesce((SELECT event_id FROM engine_cursor WHERE id = 1),"
        " 0) >= coalesce((SELECT max(id) FROM events), 0)");
    yes = strcmp(rows, "t\n") == 0;
    free(rows);
    return yes;
}

struct store_test_path {
    const char *path;
};

static int store_test_settled_pred(void *ctx)
{
    const struct store_test_path *p = ctx;

    return store_test_engine_settled(p->path);
}

int store_test_wait_engine(const char *path)
{
    struct store_test_path p = { path };

    return store_test_wait_until(store_test_settled_pred, &p,
                                 STORE_TEST_WAIT_MS,
                                 "settled (the engine's cursor at the "
                                 "newest event)");
}
