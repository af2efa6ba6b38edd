/* pg_store.c -- the PostgreSQL backend's open and close (also the
 * commands' open: no thread, store_pg_open_tool), and the
 * maintenance thread: leadership (a session advisory lock on a
 * connection of its own), day partitions created ahead, retention by
 * dropping whole day partitions of events. The writer (pg_writer.c), the
 * queries (pg_query.c) and the incident engine (pg_incident.c) are
 * elsewhere; this file starts and stops the threads that run them. */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_priv.h"
#include "util.h"

/* A password file holds one line; a longer one is not a password file. */
#define PG_PASSWORD_MAX   4096u
/* While the store is not ready yet, the maintenance thread looks again
 * this often (it has nothing to do before the schema exists). */
#define PG_MAINT_IDLE_MS  100
/* A DROP of a partition waits at most this long for its locks: a DROP
 * waiting in the lock queue would queue every ingest transaction behind
 * it. A refused drop is tried again at the next pass. */
#define PG_DROP_LOCK_TIMEOUT "'1s'"
/* Texts looked at per statement, as SQLite's retention does. */
#define PG_TEXT_WINDOW    2000
/* A text younger than this is spared even when nothing uses it: a writer
 * interns its texts in short transactions of their own before the group
 * that uses them commits (store_pg.h). */
#define PG_TEXT_GRACE_MS  3600000LL

/* Reads the first line of @path (its newline stripped) into *@out. 0, or
 * -errno with a log line naming the file. */
static int store_pg_password(const char *path, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    rc = util_read_file(path, PG_PASSWORD_MAX, &buf, &len);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "store", "cannot read the password file %s: %s",
                path, rc == -EFBIG ? "larger than 4 KiB" : strerror(-rc));
        return rc;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!buf[0]) {
        log_msg(LOGL_ERROR, "store", "the password file %s: its first line "
                "is empty", path);
        explicit_bzero(buf, len);
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    return 0;
}

/* "hostname:pid", this collector's name among many by default. */
static char *store_pg_default_instance(void)
{
    char host[256], name[300];

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(name, sizeof(name), "%s:%ld", host, (long)getpid());
    return strdup(name);
}

static void *store_pg_maint(void *arg);

/* st->pg made from the options: the conninfo and instance copied, the
 * password file read. 0 or -errno (logged); st->pg, if set, is for
 * store_pg_close to free. */
static int store_pg_init(struct store *st)
{
    const struct store_options *o = &st->opt;
    struct store_pg *pg;
    int rc = -ENOMEM;

    if (!o->pg_conninfo || !o->pg_conninfo[0]) {
        log_msg(LOGL_ERROR, "store", "backend postgres needs a connection "
                "string (store.postgres.conninfo)");
        return -EINVAL;
    }
    pg = calloc(1, sizeof(*pg));
    if (!pg)
        return -ENOMEM;
    st->pg = pg;            /* from here on store_pg_close frees it all */
    pthread_mutex_init(&pg->days_lock, NULL);
    if (store_mono_cond_init(&pg->mcond) < 0) {
        pthread_mutex_destroy(&pg->days_lock);
        free(pg);
        st->pg = NULL;
        return -ENOMEM;
    }
    pg->conninfo = strdup(o->pg_conninfo);
    pg->instance = o->instance ? strdup(o->instance)
                               : store_pg_default_instance();
    if (!pg->conninfo || !pg->instance)
        return -ENOMEM;
    if (o->pg_password_file) {
        rc = store_pg_password(o->pg_password_file, &pg->password);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int store_pg_open(struct store *st)
{
    struct store_pg *pg;
    int rc;

    rc = store_pg_init(st);
    if (rc < 0)
        return rc;
    pg = st->pg;
    if (pthread_create(&st->writer, NULL, store_pg_writer, st) != 0)
        return -EAGAIN;
    st->writer_started = 1;
    if (pthread_create(&pg->maint, NULL, store_pg_maint, st) != 0)
        return -EAGAIN;
    pg->maint_started = 1;
    return 0;
}

int store_pg_open_tool(struct store *st, int check)
{
    char why[256];
    PGconn *c;
    int rc;

    rc = store_pg_init(st);
    if (rc < 0 || !check)
        return rc;
    c = store_pg_reader(st);            /* logs why it cannot connect */
    if (!c)
        return -EIO;
    rc = pg_schema_check(c, why, sizeof(why));
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "%s: %s", st->path, why);
    store_pg_reader_put(st, c, rc == -EIO);
    return rc;
}

/* Wipes and frees a secret. NULL is a no-op. */
static void store_pg_secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

void store_pg_close(struct store *st)
{
    struct store_pg *pg = st->pg;

    if (!pg)
        return;
    if (pg->maint_started) {
        pthread_mutex_lock(&st->qlock);
        st->closing = 1;
        pthread_cond_broadcast(&pg->mcond);
        pthread_mutex_unlock(&st->qlock);
        pthread_join(pg->maint, NULL);
    }
    store_pg_inc_free(st);
    if (pg->wconn)
        PQfinish(pg->wconn);
    if (pg->lconn)
        PQfinish(pg->lconn);
    for (size_t i = 0; i < pg->n_readers; i++)
        PQfinish(pg->readers[i]);
    pthread_mutex_destroy(&pg->days_lock);
    pthread_cond_destroy(&pg->mcond);
    free(pg->days);
    free(pg->conninfo);
    free(pg->instance);
    store_pg_secret_free(pg->password);
    explicit_bzero(pg, sizeof(*pg));
    free(pg);
    st->pg = NULL;
}

int store_pg_leader(struct store *st)
{
    int leader;

    if (!st->pg)
        return 0;
    pthread_mutex_lock(&st->qlock);
    leader = st->pg->leader;
    pthread_mutex_unlock(&st->qlock);
    return leader;
}

/* ---- retention ---- */

/* Adds @n rows to stats.retention_deleted. */
static void store_pg_count_deleted(struct store *st, int64_t n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&st->qlock);
    st->stats.retention_deleted += (uint64_t)n;
    pthread_mutex_unlock(&st->qlock);
}

/* The first ms of the day a partition name stands for (pg_schema.c's
 * names: events_YYYYMMDD, or events_dN for days outside years 0..9999):
 * 0, or -1 when @name is none of those. */
static int store_pg_partition_day(const char *name, int64_t *day)
{
    struct tm tm;
    long long n;
    int y, m, d, used = 0;

    if (sscanf(name, "events_d%lld%n", &n, &used) == 1 &&
        (size_t)used == strlen(name)) {
        *day = (n - 1000000000LL) * PG_DAY_MS;
        return 0;
    }
    used = 0;
    if (strlen(name) != 15 ||
        sscanf(name, "events_%4d%2d%2d%n", &y, &m, &d, &used) != 3 ||
        used != 15 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *day = (int64_t)timegm(&tm) * 1000;
    return 0;
}

/* The name pg_schema.c gives the partition of @day, rebuilt from the
 * number (an identifier is the one thing SQL here is built from, and
 * only from numbers). */
static void store_pg_partition_name(int64_t day, char *buf, size_t len)
{
    time_t t = (time_t)(day / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 ||
        tm.tm_year + 1900 > 9999)
        snprintf(buf, len, "events_d%lld",
                 (long long)(day / PG_DAY_MS) + 1000000000LL);
    else
        snprintf(buf, len, "events_%04d%02d%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
}

/* Drops partition @name in a transaction of its own, after counting its
 * rows (count(*): exact; reltuples is an estimate, -1 before the first
 * analyze). Its locks are waited for at most PG_DROP_LOCK_TIMEOUT: a busy
 * partition (a long query reading it) is left for the next pass. Rows:
 * 0 or more, or -EAGAIN (not dropped this time), -EIO. */
static int64_t store_pg_drop_one(PGconn *c, const char *name)
{
    char sql[160];
    PGresult *r = NULL;
    int64_t n = -EIO;

    if (pg_exec(c, "BEGIN; SET LOCAL lock_timeout = "
                PG_DROP_LOCK_TIMEOUT) < 0)
        goto rollback;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", name);
    r = pg_query(c, sql, NULL);
    if (!pg_ok(r) || PQntuples(r) != 1)
        goto rollback;
    n = pg_i64(r, 0, 0, 0);
    PQclear(r);
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", name);
    r = pg_query(c, sql, NULL);
    if (!pg_ok(r))
        goto rollback;
    PQclear(r);
    r = NULL;
    if (pg_exec(c, "COMMIT") == 0)
        goto out;
    n = -EIO;
rollback:
    if (r) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

        /* 55P03 lock_not_available: lock_timeout; 42P01: another pass
         * (the writer's JOB_RETENTION, another leader) dropped it. */
        if (state && !strcmp(state, "55P03"))
            n = -EAGAIN;
        else if (state && !strcmp(state, "42P01"))
            n = 0;
        else
            n = -EIO;
        if (n == -EIO) {
            char why[256];

            pg_err_text(c, r, why, sizeof(why));
            log_msg(LOGL_ERROR, "store", "retention: %s: %s", name, why);
        }
    }
    PQclear(r);
    r = NULL;
    pg_exec(c, "ROLLBACK");
out:
    PQclear(r);
    return n;
}

/* Drops every partition of events whose whole day ended before @cut_ms.
 * 0 (a partition that stayed busy is left for the next pass), or -EIO. */
static int store_pg_drop_days(struct store *st, PGconn *c, int64_t cut_ms)
{
    PGresult *r;
    int64_t *days = NULL;
    int n = 0, rc = 0, dropped = 0;

    r = pg_query(c, "SELECT c.relname FROM pg_inherits i"
                 " JOIN pg_class c ON c.oid = i.inhrelid"
                 " WHERE i.inhparent = 'events'::regclass", NULL);
    if (!pg_ok(r)) {
        PQclear(r);
        return -EIO;
    }
    days = calloc((size_t)PQntuples(r) + 1, sizeof(*days));
    for (int i = 0; days && i < PQntuples(r); i++) {
        int64_t day;

        /* A table someone else attached is not ours to drop. */
        if (store_pg_partition_day(PQgetvalue(r, i, 0), &day) == 0 &&
            day + PG_DAY_MS <= cut_ms)
            days[n++] = day;
    }
    PQclear(r);
    if (!days)
        return -ENOMEM;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[32];
        int64_t rows;

        store_pg_partition_name(days[i], name, sizeof(name));
        rows = store_pg_drop_one(c, name);
        if (rows == -EAGAIN) {
            log_msg(LOGL_INFO, "store", "retention: %s is busy, dropped "
                    "at a later pass", name);
            continue;
        }
        if (rows < 0) {
            rc = -EIO;
            break;
        }
        store_pg_count_deleted(st, rows);
        dropped++;
    }
    free(days);
    /* This collector's list of days may name a dropped one: forgotten,
     * so the next group creates it again if an event needs it. */
    if (dropped)
        pg_partitions_forget(st);
    return rc;
}

/* Deletes the rows of rollup table @sql names older than @cut_ms, in one
 * statement: unlike SQLite's one writer, a long DELETE here blocks no
 * ingest (it locks only the old rows it deletes: a writer waits only
 * for a late event's minute past retention), and at one pass per
 * retention.interval each finds about that interval's worth of rows.
 * 0 or -EIO. */
static int store_pg_delete_old(struct store *st, PGconn *c, const char *sql,
                               int64_t cut_ms)
{
    struct pg_params p;
    PGresult *r;

    pg_params_reset(&p);
    pg_param_i64(&p, cut_ms);
    r = pg_query(c, sql, &p);
    if (!pg_ok(r)) {
        char why[256];

        pg_err_text(c, r, why, sizeof(why));
        log_msg(LOGL_ERROR, "store", "retention: %s", why);
        PQclear(r);
        return -EIO;
    }
    store_pg_count_deleted(st, strtoll(PQcmdTuples(r), NULL, 10));
    PQclear(r);
    return 0;
}

/* Deletes the texts nothing uses (their events expired) and made over
 * PG_TEXT_GRACE_MS before @now_ms, a window of PG_TEXT_WINDOW ids at a
 * time. 0 or -EIO. */
static int store_pg_texts(struct store *st, PGconn *c, int64_t now_ms)
{
    int64_t after = 0;

    for (;;) {
        struct pg_params p;
        PGresult *r;
        int64_t end;

        pg_params_reset(&p);
        pg_param_i64(&p, after);
        pg_param_i64(&p, PG_TEXT_WINDOW);
        r = pg_query(c, "SELECT max(id) FROM (SELECT id FROM texts"
                     " WHERE id > $1 ORDER BY id LIMIT $2) w", &p);
        if (!pg_ok(r) || PQntuples(r) != 1) {
            PQclear(r);
            return -EIO;
        }
        end = pg_i64(r, 0, 0, 0);
        PQclear(r);
        if (end == 0)
            return 0;
        pg_params_reset(&p);
        pg_param_i64(&p, after);
        pg_param_i64(&p, end);
        pg_param_i64(&p, now_ms - PG_TEXT_GRACE_MS);
        /* The same references as SQLite's texts_expire: events' text
         * and answers, and target_now's last error. */
        r = pg_query(c, "DELETE FROM texts t WHERE t.id > $1 AND t.id <= $2"
                     " AND t.created_ms < $3"
                     " AND NOT EXISTS (SELECT 1 FROM events"
                     "                 WHERE text_id = t.id)"
                     " AND NOT EXISTS (SELECT 1 FROM events"
                     "                 WHERE answers_id = t.id)"
                     " AND NOT EXISTS (SELECT 1 FROM target_now"
                     "                 WHERE text_id = t.id)", &p);
        if (!pg_ok(r)) {
            PQclear(r);
            return -EIO;
        }
        store_pg_count_deleted(st, strtoll(PQcmdTuples(r), NULL, 10));
        PQclear(r);
        after = end;
    }
}

int store_pg_retention(struct store *st, PGconn *c, int64_t now_ms)
{
    const struct store_options *o = &st->opt;
    int rc = 0;

    if (!c)
        return -EIO;
    if (o->raw_retention_ms > 0)
        rc = store_pg_drop_days(st, c, now_ms - o->raw_retention_ms);
    if (rc == 0 && o->minute_retention_ms > 0)
        rc = store_pg_delete_old(st, c, "DELETE FROM rollup_minute"
                                 " WHERE t < $1",
                                 now_ms - o->minute_retention_ms);
    if (rc == 0 && o->hour_retention_ms > 0)
        rc = store_pg_delete_old(st, c, "DELETE FROM rollup_hour"
                                 " WHERE t < $1",
                                 now_ms - o->hour_retention_ms);
    /* agent_offsets: kept, as the SQLite store keeps them (a row per
     * offset change of an agent, read to correct any stored event). */
    if (rc == 0 && o->raw_retention_ms > 0)
        rc = store_pg_texts(st, c, now_ms);
    return rc;
}

/* ---- the maintenance thread ---- */

/* Waits @ms or until the store closes: 1 closing, 0 time to work. */
static int store_pg_maint_wait(struct store *st, int64_t ms)
{
    struct timespec ts;
    int closing;

    store_mono_deadline(&ts, ms);
    pthread_mutex_lock(&st->qlock);
    if (!st->closing)
        pthread_cond_timedwait(&st->pg->mcond, &st->qlock, &ts);
    closing = st->closing;
    pthread_mutex_unlock(&st->qlock);
    return closing;
}

static int store_pg_ready(struct store *st)
{
    int ready;

    pthread_mutex_lock(&st->qlock);
    ready = st->ready == 1;
    pthread_mutex_unlock(&st->qlock);
    return ready;
}

static void store_pg_set_leader(struct store *st, int leader)
{
    pthread_mutex_lock(&st->qlock);
    st->pg->leader = leader;
    pthread_mutex_unlock(&st->qlock);
}

/* The lead is gone (lost connection, or @closing): the engine is freed,
 * the connection closed (its session, and so the lock, ends with it). */
static void store_pg_lose(struct store *st, int closing)
{
    struct store_pg *pg = st->pg;

    if (pg->leader) {
        store_pg_inc_tick(st, NULL, 1);
        store_pg_set_leader(st, 0);
        if (closing)
            log_msg(LOGL_INFO, "store", "gave up the lead (closing)");
        else
            log_msg(LOGL_WARN, "store", "lost the lead (the database "
                    "connection failed)");
    }
    if (pg->lconn) {
        PQfinish(pg->lconn);
        pg->lconn = NULL;
    }
}

/* Tries for the lead on lconn: 1 leader now, 0 another collector leads,
 * -EIO the connection failed. */
static int store_pg_try_lead(struct store *st)
{
    struct pg_params p;
    PGresult *r;
    int rc;

    pg_params_reset(&p);
    pg_param_i64(&p, PG_LOCK_LEADER);
    r = pg_query(st->pg->lconn, "SELECT pg_try_advisory_lock($1::bigint)",
                 &p);
    if (!pg_ok(r) || PQntuples(r) != 1)
        rc = -EIO;
    else
        rc = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return rc;
}

/* One tick of the leader's work: the session is alive (the lock held
 * with it), partitions ahead, retention when due, the incident engine.
 * 0, or -EIO: the connection failed (the lead is lost). */
static int store_pg_lead_tick(struct store *st)
{
    struct store_pg *pg = st->pg;
    int64_t now = util_now_ms(), mono = store_mono_ns() / 1000000;
    int rc;

    /* A session advisory lock lives as long as the session: a query
     * that succeeds on this connection proves we still hold it. */
    rc = pg_exec(pg->lconn, "SELECT 1");
    if (rc == 0)
        rc = pg_partitions_ensure(st, pg->lconn, now,
                                  now + PG_PARTITIONS_AHEAD * PG_DAY_MS);
    if (rc == 0 && mono >= pg->retention_next_ms) {
        pg->retention_next_ms = mono + st->opt.retention_interval_ms;
        rc = store_pg_retention(st, pg->lconn, now);
        if (rc < 0)
            log_msg(LOGL_WARN, "store", "retention pass failed: tried "
                    "again in %lld ms",
                    (long long)st->opt.retention_interval_ms);
    }
    if (PQstatus(pg->lconn) != CONNECTION_OK)
        return -EIO;
    store_pg_inc_tick(st, pg->lconn, 0);
    return PQstatus(pg->lconn) == CONNECTION_OK ? 0 : -EIO;
}

/* One pass of the loop once the store is ready: connect, try for the
 * lead, or work as leader. The ms to wait before the next. */
static int64_t store_pg_maint_step(struct store *st, int *conn_logged)
{
    struct store_pg *pg = st->pg;
    char err[256];
    int rc;

    if (!pg->lconn) {
        pg->lconn = pg_connect(st, 0, err, sizeof(err));
        if (!pg->lconn) {
            if (!*conn_logged)
                log_msg(LOGL_WARN, "store", "maintenance connection: %s "
                        "(retrying every %d ms)", err, PG_RECONNECT_MS);
            *conn_logged = 1;
            return PG_RECONNECT_MS;
        }
        *conn_logged = 0;
    }
    if (!pg->leader) {
        rc = store_pg_try_lead(st);
        if (rc < 0) {
            store_pg_lose(st, 0);
            return PG_RECONNECT_MS;
        }
        if (rc == 0)
            return PG_LEADER_POLL_MS;
        store_pg_set_leader(st, 1);
        log_msg(LOGL_INFO, "store", "this collector leads (retention, "
                "incidents)");
        pg->retention_next_ms = store_mono_ns() / 1000000 +
                                st->opt.retention_interval_ms;
    }
    if (store_pg_lead_tick(st) < 0) {
        store_pg_lose(st, 0);
        return PG_RECONNECT_MS;
    }
    return PG_LEADER_POLL_MS;
}

/* The maintenance thread: waits for the schema (the writer migrates),
 * then tries for the lead every PG_LEADER_POLL_MS and, while it holds
 * it, works as leader each tick. Ends when the store closes. */
static void *store_pg_maint(void *arg)
{
    struct store *st = arg;
    int64_t wait_ms = PG_MAINT_IDLE_MS;
    int conn_logged = 0;

    while (!store_pg_maint_wait(st, wait_ms)) {
        if (!store_pg_ready(st)) {
            wait_ms = PG_MAINT_IDLE_MS;
            continue;
        }
        wait_ms = store_pg_maint_step(st, &conn_logged);
    }
    store_pg_lose(st, 1);
    return NULL;
}
