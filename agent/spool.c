/* spool.c -- the agent's on-disk store of packed events, in SQLite (WAL).
 * Assigns seqs, keeps the epoch, bounds itself by bytes (dropping the
 * oldest events and recording per collector what was lost), counts the
 * events it failed to store and records them as a drop once it stores
 * again, keeps the owner lock (PATH.lock), hands out
 * batches per collector (oldest or newest first), keeps each collector's
 * acked seq ranges, sets refused batches aside as dead letters, and
 * deletes an event once every collector is done with it. Does not
 * compress, retry or touch the network (see shipper.c). Logs only when it
 * moves an unusable file aside (the caller cannot tell otherwise); other
 * failures are for the caller to log with spool_errmsg(). */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SPOOL_BUSY_MS 5000          /* another writer: wait, then fail */
#define SPOOL_SEQ_MAX ((uint64_t)INT64_MAX)     /* seqs are SQLite int64 */

/* Drop-record states (drops.state). A record may grow only while no
 * collector can have seen it: once a batch carried it, a replay must
 * carry the same record, or the collector would count its events twice. */
enum spool_drop_state {
    SPOOL_DROP_OPEN = 0,            /* never sent: later drops merge in */
    SPOOL_DROP_SENT = 1,            /* carried by a batch: frozen */
    SPOOL_DROP_TENTATIVE = 2,       /* events of the batch in flight */
    SPOOL_DROP_REFUSED = 3,         /* refused events: exact, never grows */
};

/* Schema migrations, applied in order inside one transaction; entry i
 * takes the file from user_version i to i + 1 and sets it. Never edit a
 * shipped entry: add a new one. */
static const char *const spool_migrations[] = {
    /* v1: one meta row, and the events themselves. next_seq lives here,
     * not as max(seq) + 1, because acks delete every row. */
    "CREATE TABLE meta ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  epoch INTEGER NOT NULL,"     /* the u64 epoch, stored as int64 */
    "  next_seq INTEGER NOT NULL,"
    "  created_unix_ms INTEGER NOT NULL);"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY,"    /* the rowid: oldest first is cheap */
    "  unix_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"         /* wire_event_kind(), for inspection */
    "  body BLOB NOT NULL);"        /* packed sextant.v1.Event */
    "PRAGMA user_version = 1;",
    /* v2 (issue 5): counters every writer keeps exact in its own
     * transaction (events and bytes can no longer come from min/max seq:
     * with several collectors and newest-first batches, rows go from the
     * middle), the byte bound, collectors with their acked seq ranges,
     * drop records per collector, and dead letters. */
    "ALTER TABLE meta ADD COLUMN n_events INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE meta ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE meta ADD COLUMN max_bytes INTEGER NOT NULL "
    "  DEFAULT 67108864;"
    "ALTER TABLE meta ADD COLUMN dropped_total INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE meta ADD COLUMN dead_letter INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meta SET n_events = (SELECT count(*) FROM events),"
    "  bytes = (SELECT CAST(total(length(body)) AS INTEGER) FROM events);"
    "CREATE TABLE collectors ("
    "  id INTEGER PRIMARY KEY,"
    "  url TEXT NOT NULL UNIQUE,"   /* its ingest URL: the identity */
    "  fl_first INTEGER NOT NULL DEFAULT 0,"    /* its batch out there, */
    "  fl_last INTEGER NOT NULL DEFAULT 0);"    /* 0: none (see below) */
    "CREATE TABLE acked ("         /* merged: disjoint, never adjacent */
    "  collector_id INTEGER NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  PRIMARY KEY (collector_id, first_seq)) WITHOUT ROWID;"
    "CREATE TABLE drops ("
    "  collector_id INTEGER NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"     /* may be below the range's width */
    "  first_unix_ms INTEGER NOT NULL,"
    "  last_unix_ms INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"     /* enum spool_drop_state */
    "  PRIMARY KEY (collector_id, first_seq)) WITHOUT ROWID;"
    "CREATE TABLE dead_letter ("
    "  id INTEGER PRIMARY KEY,"
    "  collector TEXT NOT NULL,"    /* ingest URL of who refused it */
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"    /* HTTP status of the refusal */
    "  reason TEXT NOT NULL,"       /* the collector's error text */
    "  unix_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"        /* sextant.v1.Batch with events only */
    "PRAGMA user_version = 2;",
};

#define SPOOL_VERSION \
    ((int)(sizeof(spool_migrations) / sizeof(spool_migrations[0])))

/* Prepared statements, one slot each; SQL in spool_sql[]. */
enum spool_st {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_GET_META, ST_SET_META, ST_SET_MAX,
    ST_INSERT, ST_PEEK_ASC, ST_PEEK_DESC, ST_FIRST_IN,
    ST_OLDEST_WALK, ST_DEL_UPTO, ST_RANGE_SUM, ST_DEL_RANGE,
    ST_COUNT, ST_MIN_SEQ,
    ST_COLL_LIST, ST_COLL_INSERT, ST_COLL_DELETE, ST_FLIGHT_SET,
    ST_FLIGHT_GET, ST_FLIGHT_CLEAR_ALL,
    ST_ACKED_LIST, ST_ACKED_DEL_BETWEEN, ST_ACKED_INSERT, ST_ACKED_PRUNE,
    ST_ACKED_DEL_COLL,
    ST_DROP_BELOW, ST_DROP_OLDEST, ST_DROP_INSERT, ST_DROP_UPDATE,
    ST_DROP_FREEZE, ST_DROP_DELETE, ST_DROP_DEL_TENT, ST_DROP_KEEP_TENT,
    ST_DROP_KEEP_ALL_TENT, ST_DROP_DEL_COLL, ST_REFUSED_IN, ST_TENT_SUM, ST_TENT_SUM_ALL,
    ST_DL_INSERT, ST_DL_PRUNE,
    ST_N
};

static const char *const spool_sql[ST_N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",         /* take the write lock now */
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET_META] = "SELECT epoch, next_seq, n_events, bytes, max_bytes, "
                    "dropped_total, dead_letter FROM meta WHERE id = 1",
    [ST_SET_META] = "UPDATE meta SET next_seq = ?, n_events = ?, bytes = ?, "
                    "dropped_total = ?, dead_letter = ? WHERE id = 1",
    [ST_SET_MAX] = "UPDATE meta SET max_bytes = ? WHERE id = 1",
    [ST_INSERT] = "INSERT INTO events(seq, unix_ms, kind, body) "
                  "VALUES (?, ?, ?, ?)",
    [ST_PEEK_ASC] = "SELECT seq, body FROM events WHERE seq BETWEEN ? AND ? "
                    "ORDER BY seq LIMIT ?",
    [ST_PEEK_DESC] = "SELECT seq, body FROM events WHERE seq BETWEEN ? AND "
                     "? ORDER BY seq DESC LIMIT ?",
    /* A lone min() over a rowid range: one b-tree seek. */
    [ST_FIRST_IN] = "SELECT min(seq) FROM events WHERE seq BETWEEN ? AND ?",
    [ST_OLDEST_WALK] = "SELECT seq, unix_ms, length(body) FROM events "
                       "ORDER BY seq",
    [ST_DEL_UPTO] = "DELETE FROM events WHERE seq <= ?",
    [ST_RANGE_SUM] = "SELECT count(*), total(length(body)) FROM events "
                     "WHERE seq BETWEEN ? AND ?",
    [ST_DEL_RANGE] = "DELETE FROM events WHERE seq BETWEEN ? AND ?",
    [ST_COUNT] = "SELECT count(*) FROM events",
    [ST_MIN_SEQ] = "SELECT min(seq) FROM events",
    [ST_COLL_LIST] = "SELECT id, url FROM collectors ORDER BY id",
    [ST_COLL_INSERT] = "INSERT INTO collectors(url) VALUES (?)",
    [ST_COLL_DELETE] = "DELETE FROM collectors WHERE id = ?",
    [ST_FLIGHT_SET] = "UPDATE collectors SET fl_first = ?, fl_last = ? "
                      "WHERE id = ?",
    [ST_FLIGHT_GET] = "SELECT fl_first, fl_last FROM collectors WHERE id = ?",
    [ST_FLIGHT_CLEAR_ALL] = "UPDATE collectors SET fl_first = 0, "
                            "fl_last = 0",
    [ST_ACKED_LIST] = "SELECT first_seq, last_seq FROM acked "
                      "WHERE collector_id = ? ORDER BY first_seq",
    [ST_ACKED_DEL_BETWEEN] = "DELETE FROM acked WHERE collector_id = ? AND "
                             "first_seq BETWEEN ? AND ?",
    [ST_ACKED_INSERT] = "INSERT INTO acked(collector_id, first_seq, "
                        "last_seq) VALUES (?, ?, ?)",
    [ST_ACKED_PRUNE] = "DELETE FROM acked WHERE collector_id = ? AND "
                       "last_seq < ?",
    [ST_ACKED_DEL_COLL] = "DELETE FROM acked WHERE collector_id = ?",
    /* The row a new drop from ? would grow: the highest below it (a
     * refused record above the backlog must not hide the bound's). */
    [ST_DROP_BELOW] = "SELECT first_seq, last_seq, count, first_unix_ms, "
                      "last_unix_ms, state FROM drops WHERE collector_id = ? "
                      "AND first_seq < ? ORDER BY first_seq DESC LIMIT 1",
    [ST_DROP_OLDEST] = "SELECT first_seq, last_seq, count, first_unix_ms, "
                       "last_unix_ms FROM drops WHERE collector_id = ? AND "
                       "state != 2 ORDER BY first_seq LIMIT 2",
    [ST_DROP_INSERT] = "INSERT INTO drops(collector_id, first_seq, "
                       "last_seq, count, first_unix_ms, last_unix_ms, "
                       "state) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [ST_DROP_UPDATE] = "UPDATE drops SET last_seq = ?, count = ?, "
                       "first_unix_ms = ?, last_unix_ms = ? "
                       "WHERE collector_id = ? AND first_seq = ?",
    [ST_DROP_FREEZE] = "UPDATE drops SET state = 1 WHERE collector_id = ? "
                       "AND first_seq = ? AND state = 0",
    [ST_DROP_DELETE] = "DELETE FROM drops WHERE collector_id = ? AND "
                       "first_seq = ?",
    [ST_DROP_DEL_TENT] = "DELETE FROM drops WHERE collector_id = ? AND "
                         "state = 2",
    [ST_DROP_KEEP_TENT] = "UPDATE drops SET state = 0 WHERE "
                          "collector_id = ? AND state = 2",
    [ST_DROP_KEEP_ALL_TENT] = "UPDATE drops SET state = 0 WHERE state = 2",
    [ST_DROP_DEL_COLL] = "DELETE FROM drops WHERE collector_id = ?",
    [ST_REFUSED_IN] = "SELECT count(*) FROM drops WHERE collector_id = ? "
                      "AND state = 3 AND first_seq BETWEEN ? AND ?",
    [ST_TENT_SUM] = "SELECT total(count) FROM drops WHERE collector_id = ? "
                    "AND state = 2",
    [ST_TENT_SUM_ALL] = "SELECT total(count) FROM drops WHERE state = 2",
    [ST_DL_INSERT] = "INSERT INTO dead_letter(collector, first_seq, "
                     "last_seq, count, status, reason, unix_ms, body) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    /* Keeps the newest dead letters within ? bytes of bodies. */
    [ST_DL_PRUNE] = "DELETE FROM dead_letter WHERE id IN (SELECT id FROM "
                    "(SELECT id, sum(length(body)) OVER (ORDER BY id DESC) "
                    "AS run FROM dead_letter) WHERE run > ?)",
};

/* A seq range, both ends included. */
struct spool_range {
    uint64_t first;
    uint64_t last;
};

/* What the spool knows of one collector. The ranges mirror its rows in
 * table acked: sorted, disjoint and never adjacent (merged). Only ranges
 * reaching the oldest event in the spool are kept: below it nothing is
 * left to be acked.
 *
 * The collector's batch "out there" (sent, not yet acked or refused for
 * good; the shipper retries it as it is) is in the file, collectors.fl_*,
 * so that any writer that drops events of it records them as tentative:
 * the collector may have them already, and they are no loss once it
 * acks. Only if the batch is abandoned do they become drops. */
struct spool_coll {
    int64_t id;                     /* collectors.id */
    char *url;                      /* owned */
    struct spool_range *r;          /* owned */
    size_t n;
    size_t cap;
    uint64_t fl_first;              /* make_room's copy of collectors.fl_* */
    uint64_t fl_last;
};

/* The meta row, read and written inside each write transaction. */
struct spool_meta {
    uint64_t epoch;
    uint64_t next_seq;
    uint64_t n_events;
    uint64_t bytes;
    uint64_t max_bytes;
    uint64_t dropped;
    uint64_t dead_letter;
};

struct spool {
    sqlite3 *db;                    /* loop thread only */
    uint64_t epoch;
    sqlite3_stmt *st[ST_N];
    struct spool_coll *coll;        /* owned; n_coll of them */
    size_t n_coll;
    char *moved_aside;              /* owned; NULL if nothing was moved */
    /* Events appends failed to store (disk full, I/O error): counted
     * here, with their time span, until an append commits again and
     * records them as a drop (no seqs yet: see spool_record_refused). */
    struct spool_drop refused;
};

static int spool_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return -EACCES;
    default:
        return -EIO;
    }
}

const char *spool_errmsg(const struct spool *sp)
{
    return sqlite3_errmsg(sp->db);
}

uint64_t spool_epoch(const struct spool *sp)
{
    return sp->epoch;
}

const char *spool_moved_aside(const struct spool *sp)
{
    return sp->moved_aside;
}

size_t spool_n_collectors(const struct spool *sp)
{
    return sp->n_coll;
}

/* -- small statement helpers -- */

/* Binds int64 values to ?1..?n of @st; 0 or -EIO. */
static int spool_bind(sqlite3_stmt *st, size_t n, const int64_t *v)
{
    for (size_t i = 0; i < n; i++)
        if (sqlite3_bind_int64(st, (int)i + 1, v[i]) != SQLITE_OK)
            return -EIO;
    return 0;
}

/* Binds @n values, steps a statement that returns no rows, resets. */
static int spool_exec(struct spool *sp, enum spool_st which, size_t n,
                      const int64_t *v)
{
    sqlite3_stmt *st = sp->st[which];
    int rc = spool_bind(st, n, v);

    if (rc == 0) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Binds @n values and steps to the one row a statement returns: 0 with
 * the row current (the caller reads it, then spool_done()), 1 if there is
 * none (already reset), or -errno (already reset). */
static int spool_row(struct spool *sp, enum spool_st which, size_t n,
                     const int64_t *v)
{
    sqlite3_stmt *st = sp->st[which];
    int rc = spool_bind(st, n, v);

    if (rc == 0) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            return 0;
        rc = rc == SQLITE_DONE ? 1 : spool_errno(rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void spool_done(struct spool *sp, enum spool_st which)
{
    sqlite3_reset(sp->st[which]);
    sqlite3_clear_bindings(sp->st[which]);
}

static void spool_rollback(struct spool *sp)
{
    /* Fails only if no transaction is open, which is then what we want. */
    if (sqlite3_get_autocommit(sp->db) == 0)
        (void)spool_exec(sp, ST_ROLLBACK, 0, NULL);
}

/* Reads the meta row; inside a transaction when it is about to change. */
static int spool_read_meta(struct spool *sp, struct spool_meta *m)
{
    sqlite3_stmt *st = sp->st[ST_GET_META];
    int rc = spool_row(sp, ST_GET_META, 0, NULL);

    if (rc != 0)
        return rc == 1 ? -EBADMSG : rc;
    m->epoch = (uint64_t)sqlite3_column_int64(st, 0);
    m->next_seq = (uint64_t)sqlite3_column_int64(st, 1);
    m->n_events = (uint64_t)sqlite3_column_int64(st, 2);
    m->bytes = (uint64_t)sqlite3_column_int64(st, 3);
    m->max_bytes = (uint64_t)sqlite3_column_int64(st, 4);
    m->dropped = (uint64_t)sqlite3_column_int64(st, 5);
    m->dead_letter = (uint64_t)sqlite3_column_int64(st, 6);
    spool_done(sp, ST_GET_META);
    return m->epoch != 0 && m->next_seq > 0 ? 0 : -EBADMSG;
}

/* BEGIN IMMEDIATE and the meta row as it is under the write lock. */
static int spool_begin(struct spool *sp, struct spool_meta *m)
{
    int rc = spool_exec(sp, ST_BEGIN, 0, NULL);

    if (rc == 0) {
        rc = spool_read_meta(sp, m);
        if (rc < 0)
            spool_rollback(sp);
    }
    return rc;
}

/* Writes the counters back and commits; rolls back on failure. */
static int spool_commit(struct spool *sp, const struct spool_meta *m)
{
    const int64_t v[] = { (int64_t)m->next_seq, (int64_t)m->n_events,
                          (int64_t)m->bytes, (int64_t)m->dropped,
                          (int64_t)m->dead_letter };
    int rc = spool_exec(sp, ST_SET_META, 5, v);

    if (rc == 0)
        rc = spool_exec(sp, ST_COMMIT, 0, NULL);
    if (rc < 0)
        spool_rollback(sp);
    return rc;
}

/* -- seq ranges (in memory) -- */

/* Index of the first range that ends at or after @seq; n if none. */
static size_t range_find(const struct spool_coll *c, uint64_t seq)
{
    size_t lo = 0, hi = c->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (c->r[mid].last < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Room for one more range, so that adding after a commit cannot fail. */
static int range_reserve(struct spool_coll *c)
{
    struct spool_range *nr;
    size_t ncap;

    if (c->n < c->cap)
        return 0;
    ncap = c->cap ? c->cap * 2 : 8;
    nr = realloc(c->r, ncap * sizeof(*nr));
    if (!nr)
        return -ENOMEM;
    c->r = nr;
    c->cap = ncap;
    return 0;
}

/* What adding [@f, @l] does: ranges [*i, *j) merge into *m. */
static void range_plan(const struct spool_coll *c, uint64_t f, uint64_t l,
                       size_t *i, size_t *j, struct spool_range *m)
{
    size_t k = range_find(c, f > 1 ? f - 1 : 1);     /* touching counts */

    m->first = f;
    m->last = l;
    *i = k;
    while (k < c->n && c->r[k].first <= l + 1) {
        if (c->r[k].first < m->first)
            m->first = c->r[k].first;
        if (c->r[k].last > m->last)
            m->last = c->r[k].last;
        k++;
    }
    *j = k;
}

/* Applies a plan; range_reserve() made room. */
static void range_apply(struct spool_coll *c, size_t i, size_t j,
                        const struct spool_range *m)
{
    if (j == i) {                   /* a new range at i */
        memmove(&c->r[i + 1], &c->r[i], (c->n - i) * sizeof(*c->r));
        c->n++;
    } else if (j > i + 1) {         /* several became one */
        memmove(&c->r[i + 1], &c->r[j], (c->n - j) * sizeof(*c->r));
        c->n -= j - i - 1;
    }
    c->r[i] = *m;
}

/* Forgets ranges wholly below @min_seq. */
static void range_prune(struct spool_coll *c, uint64_t min_seq)
{
    size_t k = 0;

    while (k < c->n && c->r[k].last < min_seq)
        k++;
    if (k > 0) {
        memmove(c->r, &c->r[k], (c->n - k) * sizeof(*c->r));
        c->n -= k;
    }
}

/* The seqs in [lo, hi] that @c has not acked, as ranges; *out (caller
 * frees) has *n of them, ascending. */
static int range_holes(const struct spool_coll *c, uint64_t lo, uint64_t hi,
                       struct spool_range **out, size_t *n)
{
    struct spool_range *h = calloc(c->n + 1, sizeof(*h));
    uint64_t cur = lo;
    size_t k = 0;

    if (!h)
        return -ENOMEM;
    for (size_t i = range_find(c, lo); i < c->n && cur <= hi; i++) {
        if (c->r[i].first > cur)
            h[k++] = (struct spool_range){ cur, c->r[i].first - 1 < hi
                                                    ? c->r[i].first - 1
                                                    : hi };
        cur = c->r[i].last + 1;
    }
    if (cur <= hi)
        h[k++] = (struct spool_range){ cur, hi };
    *out = h;
    *n = k;
    return 0;
}

/* Intersects the ranges @in (*n of them, ascending) with @c's, in place
 * into *in (reallocated); *n is updated. */
static int range_intersect(const struct spool_coll *c,
                           struct spool_range **in, size_t *n)
{
    struct spool_range *out;
    size_t k = 0;

    out = calloc(*n + c->n + 1, sizeof(*out));
    if (!out)
        return -ENOMEM;
    for (size_t a = 0; a < *n; a++) {
        struct spool_range s = (*in)[a];

        for (size_t i = range_find(c, s.first);
             i < c->n && c->r[i].first <= s.last; i++) {
            uint64_t f = c->r[i].first > s.first ? c->r[i].first : s.first;
            uint64_t l = c->r[i].last < s.last ? c->r[i].last : s.last;

            out[k++] = (struct spool_range){ f, l };
        }
    }
    free(*in);
    *in = out;
    *n = k;
    return 0;
}

/* -- opening -- */

/* One-row, one-column pragma read; for journal_mode and user_version. */
static int spool_pragma_text(sqlite3 *db, const char *sql, char *out,
                             size_t out_len)
{
    sqlite3_stmt *st = NULL;
    const char *v;
    int rc;

    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto out;
    v = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, out_len, "%s", v ? v : "");
    rc = SQLITE_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Writes "@what: SQLite's message" to @err; returns @rc as -errno. */
static int spool_db_fail(sqlite3 *db, int rc, const char *what, char *err,
                         size_t err_len)
{
    snprintf(err, err_len, "%s: %s", what,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return spool_errno(db ? sqlite3_extended_errcode(db) : rc);
}

/* Brings the schema to SPOOL_VERSION and, for a new file, creates the meta
 * row with a fresh epoch -- all in one transaction, so a crash half way
 * leaves an empty file that the next start initialises again. */
static int spool_migrate(struct spool *sp, const char *path, char *err,
                         size_t err_len)
{
    sqlite3_stmt *st = NULL;
    char buf[32];
    uint64_t epoch = 0;
    long version;
    int rc;

    rc = sqlite3_exec(sp->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = spool_pragma_text(sp->db, "PRAGMA user_version", buf,
                               sizeof(buf));
    if (rc != SQLITE_OK) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    version = strtol(buf, NULL, 10);
    if (version > SPOOL_VERSION || version < 0) {
        snprintf(err, err_len, "spool schema v%ld is newer than this agent "
                 "knows (v%d)", version, SPOOL_VERSION);
        rc = -EPROTO;
        goto out;
    }
    for (long v = version; v < SPOOL_VERSION && rc == SQLITE_OK; v++)
        rc = sqlite3_exec(sp->db, spool_migrations[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = spool_db_fail(sp->db, rc, "schema migration", err, err_len);
        goto out;
    }
    if (version == 0) {
        while (epoch == 0) {        /* 0 means "no epoch" on the wire */
            rc = util_random_u64(&epoch);
            if (rc < 0) {
                snprintf(err, err_len, "no random epoch: %s", strerror(-rc));
                goto out;
            }
        }
        rc = sqlite3_prepare_v2(sp->db,
                                "INSERT INTO meta(id, epoch, next_seq, "
                                "created_unix_ms) VALUES (1, ?, 1, ?)",
                                -1, &st, NULL);
        /* Two's complement: the bits of the u64 survive the round trip. */
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)epoch);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, util_now_ms());
        if (rc == SQLITE_OK && sqlite3_step(st) != SQLITE_DONE)
            rc = SQLITE_ERROR;
        if (rc != SQLITE_OK) {
            rc = spool_db_fail(sp->db, rc, "new epoch", err, err_len);
            goto out;
        }
    }
    rc = sqlite3_exec(sp->db, "COMMIT", NULL, NULL, NULL);
    rc = rc == SQLITE_OK ? 0 : spool_db_fail(sp->db, rc, path, err, err_len);
out:
    sqlite3_finalize(st);
    /* Statements are not prepared yet: no spool_rollback() here. */
    if (rc < 0 && sqlite3_get_autocommit(sp->db) == 0)
        sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int spool_prepare_all(struct spool *sp)
{
    for (size_t i = 0; i < ST_N; i++) {
        int rc = sqlite3_prepare_v3(sp->db, spool_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, &sp->st[i],
                                    NULL);
        if (rc != SQLITE_OK)
            return spool_errno(rc);
    }
    return 0;
}

static void spool_coll_free(struct spool_coll *c)
{
    free(c->url);
    free(c->r);
    memset(c, 0, sizeof(*c));
}

/* Reads collector @c's acked ranges from the file. */
static int spool_load_ranges(struct spool *sp, struct spool_coll *c)
{
    sqlite3_stmt *st = sp->st[ST_ACKED_LIST];
    int rc;

    if (sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK)
        return -EIO;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        rc = range_reserve(c);
        if (rc < 0)
            goto out;
        c->r[c->n].first = (uint64_t)sqlite3_column_int64(st, 0);
        c->r[c->n].last = (uint64_t)sqlite3_column_int64(st, 1);
        c->n++;
    }
    rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
out:
    spool_done(sp, ST_ACKED_LIST);
    return rc;
}

/* The collectors the file names, in the order they were first seen. */
static int spool_load_collectors(struct spool *sp)
{
    sqlite3_stmt *st = sp->st[ST_COLL_LIST];
    int rc;

    for (;;) {
        struct spool_coll *c;
        const char *url;

        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (sp->n_coll == SPOOL_MAX_COLLECTORS) {
            rc = SQLITE_DONE;       /* more were never written by us */
            break;
        }
        c = &sp->coll[sp->n_coll];
        c->id = sqlite3_column_int64(st, 0);
        url = (const char *)sqlite3_column_text(st, 1);
        c->url = strdup(url ? url : "");
        if (!c->url) {
            rc = SQLITE_NOMEM;
            break;
        }
        sp->n_coll++;
    }
    rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
    spool_done(sp, ST_COLL_LIST);
    for (size_t i = 0; i < sp->n_coll && rc == 0; i++)
        rc = spool_load_ranges(sp, &sp->coll[i]);
    return rc;
}

/* Opens @path as it is. -EBADMSG or -EPROTO mean the file is not a usable
 * spool (spool_open moves it aside); anything else is an error of its
 * own. */
static int spool_open_file(const char *path, struct spool **out, char *err,
                           size_t err_len)
{
    struct spool_meta m;
    struct spool *sp;
    char mode[16], check[128];
    int rc;

    sp = calloc(1, sizeof(*sp));
    if (sp)
        sp->coll = calloc(SPOOL_MAX_COLLECTORS, sizeof(*sp->coll));
    if (!sp || !sp->coll) {
        free(sp);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    rc = sqlite3_open_v2(path, &sp->db, SQLITE_OPEN_READWRITE |
                         SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_extended_result_codes(sp->db, 1);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(sp->db, SPOOL_BUSY_MS);
    /* WAL: appends do not block the reader, and a commit is one write. */
    if (rc == SQLITE_OK)
        rc = spool_pragma_text(sp->db, "PRAGMA journal_mode = WAL", mode,
                               sizeof(mode));
    /* FULL, not NORMAL. NORMAL already survives kill -9 of the agent (a
     * commit is in the kernel's page cache when write() returns), but a
     * power cut or kernel panic could then lose the newest commits after
     * the collector acked them. The spool would hand out those seqs again
     * in the same epoch and the collector would drop the new events as
     * replays, silently. FULL fsyncs the WAL on every commit; the loop
     * batches appends (loop.c: at most ten commits a second) to pay for it. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(sp->db, "PRAGMA synchronous = FULL", NULL, NULL,
                          NULL);
    /* After a checkpoint the WAL shrinks back to 4 MiB, so a burst (a
     * long drain) does not leave a WAL the size of the spool on disk. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(sp->db, "PRAGMA journal_size_limit = 4194304",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    if (strcmp(mode, "wal") != 0) {
        snprintf(err, err_len, "%s: cannot switch to WAL (mode %s)", path,
                 mode);
        rc = -EIO;
        goto out;
    }
    /* Reads every page once: tens of milliseconds for a full 64 MiB
     * spool, paid at start only, and the only way to find a torn or
     * overwritten page before it fails a batch half way. */
    rc = spool_pragma_text(sp->db, "PRAGMA quick_check(1)", check,
                           sizeof(check));
    if (rc != SQLITE_OK) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    if (strcmp(check, "ok") != 0) {
        for (char *c = check; *c; c++)  /* its report has lines: one line */
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        snprintf(err, err_len, "%s: quick_check: %s", path, check);
        rc = -EBADMSG;
        goto out;
    }
    rc = spool_migrate(sp, path, err, err_len);
    if (rc < 0)
        goto out;
    rc = spool_prepare_all(sp);
    if (rc < 0) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    rc = spool_read_meta(sp, &m);
    if (rc == -EBADMSG) {
        snprintf(err, err_len, "%s: meta row missing or invalid", path);
        goto out;
    }
    if (rc < 0) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    sp->epoch = m.epoch;
    rc = spool_load_collectors(sp);
    if (rc < 0) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    *out = sp;
    sp = NULL;                          /* now the caller's */
out:
    spool_close(sp);
    return rc;
}

/* Renames @path, and its -wal and -shm if there, to PATH.corrupt-<unix
 * seconds>[-N]; *aside (caller frees) gets the new name. */
static int spool_move_aside(const char *path, char **aside)
{
    static const char *const sfx[] = { "-wal", "-shm" };
    char *to = NULL, from_x[4096], to_x[4096];
    struct stat stt;
    long long now = (long long)time(NULL);

    for (int k = 0; k < 100; k++) {
        free(to);
        to = NULL;
        if ((k == 0 ? asprintf(&to, "%s.corrupt-%lld", path, now)
                    : asprintf(&to, "%s.corrupt-%lld-%d", path, now, k)) < 0)
            return -ENOMEM;
        if (stat(to, &stt) < 0 && errno == ENOENT)
            break;
    }
    if (rename(path, to) < 0) {
        int e = -errno;

        free(to);
        return e;
    }
    /* The WAL goes with its file: left behind, it would be replayed into
     * the new spool. (SQLite's close has usually checkpointed and deleted
     * it already; not if another process still has the file open.) */
    for (size_t i = 0; i < 2; i++) {
        snprintf(from_x, sizeof(from_x), "%s%s", path, sfx[i]);
        snprintf(to_x, sizeof(to_x), "%s%s", to, sfx[i]);
        if (rename(from_x, to_x) < 0 && errno != ENOENT)
            (void)unlink(from_x);
    }
    *aside = to;
    return 0;
}

int spool_open(const char *path, struct spool **out, char *err,
               size_t err_len)
{
    char why[SPOOL_ERR_LEN], *aside = NULL;
    struct spool *sp = NULL;
    int rc;

    rc = spool_open_file(path, &sp, why, sizeof(why));
    if (rc == 0) {
        *out = sp;
        return 0;
    }
    if (rc != -EBADMSG && rc != -EPROTO) {
        snprintf(err, err_len, "%s", why);
        return rc;
    }
    rc = spool_move_aside(path, &aside);
    if (rc < 0) {
        snprintf(err, err_len, "%s; cannot move it aside: %s", why,
                 strerror(-rc));
        return rc;
    }
    log_msg(LOGL_ERROR, "spool", "%s: not a usable spool (%s): moved aside "
            "to %s; starting a new spool with a new epoch. Its unshipped "
            "events stay in the old file", path, why, aside);
    rc = spool_open_file(path, &sp, err, err_len);
    if (rc < 0) {
        free(aside);
        return rc == -EBADMSG || rc == -EPROTO ? -EIO : rc;
    }
    sp->moved_aside = aside;
    *out = sp;
    return 0;
}

/* A POSIX record lock, not flock(): F_GETLK names the holder's pid,
 * which is what a person needs to find the other agent. The kernel drops
 * it when the holder exits, however it exits, so a lock file left behind
 * never blocks a restart. */
int spool_own(const char *path, int *fd_out, long *holder, char *err,
              size_t err_len)
{
    struct flock fl;
    char *lock_path = NULL;
    int fd = -1, rc;

    *holder = 0;
    if (asprintf(&lock_path, "%s.lock", path) < 0) {
        lock_path = NULL;
        rc = -ENOMEM;
        snprintf(err, err_len, "%s.lock: out of memory", path);
        goto out;
    }
    fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", lock_path, strerror(errno));
        goto out;
    }
    /* The holder may exit between a failed set and the get: try again. */
    for (int tries = 0; tries < 3; tries++) {
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            rc = 0;
            goto out;
        }
        if (errno != EACCES && errno != EAGAIN) {
            rc = -errno;
            snprintf(err, err_len, "%s: cannot lock: %s", lock_path,
                     strerror(errno));
            goto out;
        }
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
            *holder = (long)fl.l_pid;
            break;
        }
    }
    rc = -EBUSY;
    snprintf(err, err_len, "spool %s is in use by another sextant-agent "
             "(pid %ld); one agent per spool", path, *holder);
out:
    if (rc == 0) {
        *fd_out = fd;
        fd = -1;                    /* now the caller's */
    }
    if (fd >= 0)
        close(fd);
    free(lock_path);
    return rc;
}

void spool_disown(int fd)
{
    if (fd >= 0)
        close(fd);                  /* and with it, the lock */
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    for (size_t i = 0; i < ST_N; i++)
        sqlite3_finalize(sp->st[i]);
    /* All statements are finalized, so close cannot be SQLITE_BUSY. */
    sqlite3_close(sp->db);
    for (size_t i = 0; sp->coll && i < sp->n_coll; i++)
        spool_coll_free(&sp->coll[i]);
    free(sp->coll);
    free(sp->moved_aside);
    free(sp);
}

int spool_set_max_bytes(struct spool *sp, uint64_t max_bytes)
{
    const int64_t v[] = { (int64_t)max_bytes };

    if (max_bytes < SPOOL_MIN_MAX_BYTES || max_bytes > SPOOL_SEQ_MAX)
        return -EINVAL;
    return spool_exec(sp, ST_SET_MAX, 1, v);
}

/* -- deleting what everyone is done with -- */

/* Deletes the events in @segs (n of them) and takes them off @m. */
static int spool_delete_ranges(struct spool *sp, struct spool_meta *m,
                               const struct spool_range *segs, size_t n,
                               uint64_t *deleted)
{
    sqlite3_stmt *sum = sp->st[ST_RANGE_SUM];

    for (size_t i = 0; i < n; i++) {
        const int64_t v[] = { (int64_t)segs[i].first, (int64_t)segs[i].last };
        uint64_t cnt, bytes;
        int rc = spool_row(sp, ST_RANGE_SUM, 2, v);

        if (rc != 0)
            return rc < 0 ? rc : -EIO;
        cnt = (uint64_t)sqlite3_column_int64(sum, 0);
        bytes = (uint64_t)sqlite3_column_double(sum, 1);
        spool_done(sp, ST_RANGE_SUM);
        if (cnt == 0)
            continue;
        rc = spool_exec(sp, ST_DEL_RANGE, 2, v);
        if (rc < 0)
            return rc;
        m->n_events = m->n_events > cnt ? m->n_events - cnt : 0;
        m->bytes = m->bytes > bytes ? m->bytes - bytes : 0;
        *deleted += cnt;
    }
    return 0;
}

/* The oldest seq in the spool, or @m's next seq if it is empty. */
static int spool_min_seq(struct spool *sp, const struct spool_meta *m,
                         uint64_t *out)
{
    int rc = spool_row(sp, ST_MIN_SEQ, 0, NULL);

    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    if (sqlite3_column_type(sp->st[ST_MIN_SEQ], 0) == SQLITE_NULL)
        *out = m->next_seq;
    else
        *out = (uint64_t)sqlite3_column_int64(sp->st[ST_MIN_SEQ], 0);
    spool_done(sp, ST_MIN_SEQ);
    return 0;
}

/* Deletes acked rows below the oldest event (nothing left to ack there);
 * the caller prunes the ranges in memory with the same *min_seq once the
 * transaction is committed. */
static int spool_prune_rows(struct spool *sp, const struct spool_meta *m,
                            uint64_t *min_seq)
{
    int rc = spool_min_seq(sp, m, min_seq);

    for (size_t i = 0; i < sp->n_coll && rc == 0; i++) {
        const int64_t v[] = { sp->coll[i].id, (int64_t)*min_seq };

        if (sp->coll[i].n > 0 && sp->coll[i].r[0].last < *min_seq)
            rc = spool_exec(sp, ST_ACKED_PRUNE, 2, v);
    }
    return rc;
}

static void spool_prune_mem(struct spool *sp, uint64_t min_seq)
{
    for (size_t i = 0; i < sp->n_coll; i++)
        range_prune(&sp->coll[i], min_seq);
}

/* Deletes the events in [@f, @l] (or everywhere, @f = 0) that every
 * collector has acked. */
static int spool_sweep(struct spool *sp, struct spool_meta *m, uint64_t f,
                       uint64_t l, uint64_t *deleted)
{
    struct spool_range *segs;
    size_t n = 1;
    int rc = 0;

    if (sp->n_coll == 0)
        return 0;
    segs = malloc(sizeof(*segs));
    if (!segs)
        return -ENOMEM;
    segs[0] = f ? (struct spool_range){ f, l }
                : (struct spool_range){ 1, SPOOL_SEQ_MAX };
    for (size_t i = 0; i < sp->n_coll && rc == 0 && n > 0; i++)
        rc = range_intersect(&sp->coll[i], &segs, &n);
    if (rc == 0)
        rc = spool_delete_ranges(sp, m, segs, n, deleted);
    free(segs);
    return rc;
}

/* Adds [@f, @l] to collector @c's acked rows in the file; *i, *j and *mr
 * say how to do the same in memory after the commit (range_apply). */
static int spool_add_range_rows(struct spool *sp, struct spool_coll *c,
                                uint64_t f, uint64_t l, size_t *i, size_t *j,
                                struct spool_range *mr)
{
    int64_t v[3];
    int rc = range_reserve(c);

    if (rc < 0)
        return rc;
    range_plan(c, f, l, i, j, mr);
    v[0] = c->id;
    v[1] = (int64_t)mr->first;
    v[2] = (int64_t)mr->last;
    rc = spool_exec(sp, ST_ACKED_DEL_BETWEEN, 3, v);
    if (rc == 0)
        rc = spool_exec(sp, ST_ACKED_INSERT, 3, v);
    return rc;
}

/* Tentative drops of collector @id (all, if @id < 0) become drop records
 * and count as dropped. (Several collectors' batches out there with the
 * same events, all abandoned at once, would count those events once per
 * collector: a crash with several collectors, an over-count of at most a
 * batch.) */
static int spool_tent_to_drops(struct spool *sp, struct spool_meta *m,
                               int64_t id)
{
    const int64_t key[] = { id };
    enum spool_st sum = id < 0 ? ST_TENT_SUM_ALL : ST_TENT_SUM;
    int rc = spool_row(sp, sum, id < 0 ? 0 : 1, key);

    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    m->dropped += (uint64_t)sqlite3_column_double(sp->st[sum], 0);
    spool_done(sp, sum);
    return id < 0 ? spool_exec(sp, ST_DROP_KEEP_ALL_TENT, 0, NULL)
                  : spool_exec(sp, ST_DROP_KEEP_TENT, 1, key);
}

/* A copy of @from's identity and ranges, for a collector list being
 * built beside the one in use. */
static int spool_coll_copy(struct spool_coll *to, const struct spool_coll *from)
{
    memset(to, 0, sizeof(*to));
    to->id = from->id;
    to->url = strdup(from->url);
    if (from->n > 0)
        to->r = malloc(from->n * sizeof(*to->r));
    if (!to->url || (from->n > 0 && !to->r)) {
        spool_coll_free(to);
        return -ENOMEM;
    }
    if (from->n > 0)
        memcpy(to->r, from->r, from->n * sizeof(*to->r));
    to->n = to->cap = from->n;
    return 0;
}

int spool_set_collectors(struct spool *sp, const char *const *ids, size_t n)
{
    struct spool_coll *nc, *old = sp->coll;
    size_t n_old = sp->n_coll;
    struct spool_meta m;
    uint64_t deleted = 0, min_seq = 0;
    int used[SPOOL_MAX_COLLECTORS] = { 0 };
    int rc, began = 0;

    if (n == 0 || n > SPOOL_MAX_COLLECTORS)
        return -EINVAL;
    nc = calloc(SPOOL_MAX_COLLECTORS, sizeof(*nc));
    if (!nc)
        return -ENOMEM;
    rc = spool_begin(sp, &m);
    began = rc == 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = 0;

        while (k < n_old && strcmp(old[k].url, ids[i]) != 0)
            k++;
        if (k < n_old && !used[k]) {
            used[k] = 1;
            rc = spool_coll_copy(&nc[i], &old[k]);
            continue;
        }
        nc[i].url = strdup(ids[i]);
        if (!nc[i].url) {
            rc = -ENOMEM;
            break;
        }
        if (sqlite3_bind_text(sp->st[ST_COLL_INSERT], 1, ids[i], -1,
                              SQLITE_STATIC) != SQLITE_OK) {
            spool_done(sp, ST_COLL_INSERT);
            rc = -EIO;
            break;
        }
        rc = spool_exec(sp, ST_COLL_INSERT, 0, NULL);
        nc[i].id = sqlite3_last_insert_rowid(sp->db);
    }
    /* Gone from the config: its ranges and drop records go too. */
    for (size_t k = 0; k < n_old && rc == 0; k++) {
        const int64_t v[] = { old[k].id };

        if (used[k])
            continue;
        rc = spool_exec(sp, ST_ACKED_DEL_COLL, 1, v);
        if (rc == 0)
            rc = spool_exec(sp, ST_DROP_DEL_COLL, 1, v);
        if (rc == 0)
            rc = spool_exec(sp, ST_COLL_DELETE, 1, v);
    }
    /* Tentative drops of a batch that was in flight when the last agent
     * died: whether the collector stored it is unknown, so they count as
     * drops -- a drop reported twice beats a loss never reported. */
    if (rc == 0)
        rc = spool_tent_to_drops(sp, &m, -1);
    if (rc == 0)
        rc = spool_exec(sp, ST_FLIGHT_CLEAR_ALL, 0, NULL);
    /* The sweep reads sp->coll: the new list, put back on failure. */
    if (rc == 0) {
        sp->coll = nc;
        sp->n_coll = n;
        rc = spool_sweep(sp, &m, 0, 0, &deleted);
        if (rc == 0)
            rc = spool_prune_rows(sp, &m, &min_seq);
        if (rc == 0) {
            rc = spool_commit(sp, &m);
            began = 0;                  /* committed or rolled back */
        }
        if (rc < 0) {
            sp->coll = old;
            sp->n_coll = n_old;
        }
    }
    if (began)
        spool_rollback(sp);
    if (rc == 0) {
        spool_prune_mem(sp, min_seq);
        nc = old;                       /* the old list is what goes */
    }
    for (size_t i = 0; i < SPOOL_MAX_COLLECTORS; i++)
        spool_coll_free(&nc[i]);
    free(nc);
    return rc;
}

/* -- appending, and dropping the oldest to make room -- */

static void spool_drop_add(struct spool_drop *d, uint64_t seq, int64_t ms)
{
    if (d->count == 0) {
        d->first_seq = seq;
        d->first_unix_ms = ms;
        d->last_unix_ms = ms;
    }
    d->last_seq = seq;
    if (ms < d->first_unix_ms)      /* clocks step: keep the span */
        d->first_unix_ms = ms;
    if (ms > d->last_unix_ms)
        d->last_unix_ms = ms;
    d->count++;
}

/* A new drop row for @c: @d in state @state. */
static int spool_drop_insert(struct spool *sp, const struct spool_coll *c,
                             const struct spool_drop *d, int state)
{
    const int64_t v[] = { c->id, (int64_t)d->first_seq, (int64_t)d->last_seq,
                          (int64_t)d->count, d->first_unix_ms,
                          d->last_unix_ms, state };

    return spool_exec(sp, ST_DROP_INSERT, 7, v);
}

/* Records bound drop @d for collector @c: tentative ones merge into the
 * tentative row of its batch in flight; others into the highest row
 * below @d if that one is still open, else as a new row. Bound drops take
 * the oldest events, so @d lies above every bound row @c has; only
 * refused records (spool_record_refused) can lie above it, and those are
 * never grown. */
static int spool_drop_record(struct spool *sp, const struct spool_coll *c,
                             const struct spool_drop *d, int tentative)
{
    sqlite3_stmt *st = sp->st[ST_DROP_BELOW];
    const int64_t key[] = { c->id, (int64_t)d->first_seq };
    int want = tentative ? SPOOL_DROP_TENTATIVE : SPOOL_DROP_OPEN;
    int rc = spool_row(sp, ST_DROP_BELOW, 2, key);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        struct spool_drop o;
        int state = sqlite3_column_int(st, 5);

        o.first_seq = (uint64_t)sqlite3_column_int64(st, 0);
        o.last_seq = (uint64_t)sqlite3_column_int64(st, 1);
        o.count = (uint64_t)sqlite3_column_int64(st, 2);
        o.first_unix_ms = sqlite3_column_int64(st, 3);
        o.last_unix_ms = sqlite3_column_int64(st, 4);
        spool_done(sp, ST_DROP_BELOW);
        if (state == want && o.last_seq < d->first_seq) {
            const int64_t v[] = {
                (int64_t)d->last_seq, (int64_t)(o.count + d->count),
                o.first_unix_ms < d->first_unix_ms ? o.first_unix_ms
                                                   : d->first_unix_ms,
                o.last_unix_ms > d->last_unix_ms ? o.last_unix_ms
                                                 : d->last_unix_ms,
                c->id, (int64_t)o.first_seq,
            };
            return spool_exec(sp, ST_DROP_UPDATE, 6, v);
        }
    }
    return spool_drop_insert(sp, c, d, want);
}

/* The collectors as the file has them now, inside the caller's write
 * transaction: their acked ranges and batches out there. Another process
 * (sextant-agent event) must not trust what it read at open. */
static int spool_view(struct spool *sp, struct spool_coll *v)
{
    int rc = 0;

    for (size_t i = 0; i < sp->n_coll && rc == 0; i++) {
        const int64_t key[] = { sp->coll[i].id };

        v[i].id = sp->coll[i].id;
        rc = spool_load_ranges(sp, &v[i]);
        if (rc == 0)
            rc = spool_row(sp, ST_FLIGHT_GET, 1, key);
        if (rc == 0) {
            v[i].fl_first = (uint64_t)sqlite3_column_int64(
                sp->st[ST_FLIGHT_GET], 0);
            v[i].fl_last = (uint64_t)sqlite3_column_int64(
                sp->st[ST_FLIGHT_GET], 1);
            spool_done(sp, ST_FLIGHT_GET);
        } else if (rc == 1) {
            rc = 0;                 /* forgotten since we opened */
        }
    }
    return rc;
}

/* Before @seq joins @c's drop @d: if a refused record lies between them,
 * @d is recorded now and starts afresh, so that no bound drop spans a
 * refused record (the collector would take the wider one and the refused
 * one would come too late, below its drop_last). */
static int spool_drop_split(struct spool *sp, const struct spool_coll *c,
                            struct spool_drop *d, uint64_t seq,
                            int tentative)
{
    const int64_t v[] = { c->id, (int64_t)d->last_seq + 1,
                          (int64_t)seq - 1 };
    int rc;

    if (d->count == 0 || seq <= d->last_seq + 1)
        return 0;
    rc = spool_row(sp, ST_REFUSED_IN, 3, v);
    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    rc = sqlite3_column_int64(sp->st[ST_REFUSED_IN], 0) > 0;
    spool_done(sp, ST_REFUSED_IN);
    if (rc) {
        rc = spool_drop_record(sp, c, d, tentative);
        memset(d, 0, sizeof(*d));
    }
    return rc;
}

/* Deletes the oldest events until @need bytes are free (or the spool is
 * empty), and records for each collector the ones it had not acked:
 * those below its batch out there, in it (tentative), and above it. */
static int spool_make_room(struct spool *sp, struct spool_meta *m,
                           uint64_t need)
{
    sqlite3_stmt *st = sp->st[ST_OLDEST_WALK];
    struct spool_drop agg[SPOOL_MAX_COLLECTORS][3];
    struct spool_coll view[SPOOL_MAX_COLLECTORS];
    size_t at[SPOOL_MAX_COLLECTORS] = { 0 };
    uint64_t freed = 0, k = 0, cut = 0, lost = 0;
    int rc, err = 0;

    memset(agg, 0, sizeof(agg));
    memset(view, 0, sizeof(view));
    rc = spool_view(sp, view);
    if (rc < 0)
        goto out;
    rc = SQLITE_DONE;
    for (;;) {
        uint64_t seq;
        int64_t ms;
        int real;

        if (freed >= need)
            break;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        seq = (uint64_t)sqlite3_column_int64(st, 0);
        ms = sqlite3_column_int64(st, 1);
        freed += (uint64_t)sqlite3_column_int64(st, 2);
        cut = seq;
        k++;
        /* Lost when some collector lacks it for good; only tentatively
         * for all: counted if that turns into a loss (abandoned). */
        real = sp->n_coll == 0;
        for (size_t i = 0; i < sp->n_coll; i++) {
            const struct spool_coll *c = &view[i];
            int part = 0;

            /* seqs rise: walk the ranges along instead of searching */
            while (at[i] < c->n && c->r[at[i]].last < seq)
                at[i]++;
            if (at[i] < c->n && c->r[at[i]].first <= seq)
                continue;           /* acked: no loss for this one */
            if (c->fl_first && seq >= c->fl_first && seq <= c->fl_last)
                part = 1;
            else if (c->fl_first && seq > c->fl_last)
                part = 2;
            real |= part != 1;
            err = spool_drop_split(sp, c, &agg[i][part], seq, part == 1);
            if (err < 0)
                break;
            spool_drop_add(&agg[i][part], seq, ms);
        }
        if (err < 0)
            break;
        lost += real ? 1 : 0;
    }
    rc = err < 0 ? err
         : rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : spool_errno(rc);
    spool_done(sp, ST_OLDEST_WALK);
    if (rc < 0 || k == 0)
        goto out;
    {
        const int64_t v[] = { (int64_t)cut };

        rc = spool_exec(sp, ST_DEL_UPTO, 1, v);
    }
    for (size_t i = 0; i < sp->n_coll && rc == 0; i++)
        for (int part = 0; part < 3 && rc == 0; part++)
            if (agg[i][part].count > 0)
                rc = spool_drop_record(sp, &view[i], &agg[i][part],
                                       part == 1);
    if (rc < 0)
        goto out;
    m->n_events = m->n_events > k ? m->n_events - k : 0;
    m->bytes = m->bytes > freed ? m->bytes - freed : 0;
    m->dropped += lost;
out:
    for (size_t i = 0; i < sp->n_coll; i++)
        free(view[i].r);
    return rc;
}

/* Inside an append's transaction: the events earlier appends failed to
 * store become a drop of the next seqs, for every collector, as if they
 * had been spooled and dropped at once. Giving them seqs (above every
 * event spooled so far, below the ones of this append) is what keeps the
 * collector's accounting exact: its drop event covers exactly those seqs,
 * count = width, and no seq is left for a gap. A row of its own that no
 * other drop merges into (SPOOL_DROP_REFUSED), not even a bound drop of
 * the seqs next to it, so its count and time span are the outage's.
 * Not added to dropped_total (the bound's count): the loop counted these
 * in /metrics when the append failed. */
static int spool_record_refused(struct spool *sp, struct spool_meta *m)
{
    struct spool_drop d = sp->refused;
    int rc = 0;

    if (d.count == 0)
        return 0;
    d.first_seq = m->next_seq;
    d.last_seq = m->next_seq + d.count - 1;
    for (size_t i = 0; i < sp->n_coll && rc == 0; i++)
        rc = spool_drop_insert(sp, &sp->coll[i], &d, SPOOL_DROP_REFUSED);
    if (rc < 0)
        return rc;
    m->next_seq += d.count;
    return 0;
}

/* A failed append: its events join the refused ones. */
static void spool_refuse(struct spool *sp, Sextant__V1__Event *const *evs,
                         size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        int64_t ms = evs[i]->unix_ms ? evs[i]->unix_ms : now;

        spool_drop_add(&sp->refused, 0, ms);    /* seqs: when recorded */
    }
}

void spool_refused(const struct spool *sp, struct spool_drop *out)
{
    *out = sp->refused;
}

int spool_append_many(struct spool *sp, Sextant__V1__Event *const *evs,
                      size_t n)
{
    sqlite3_stmt *st = sp->st[ST_INSERT];
    int64_t now = util_now_ms();
    struct spool_meta m;
    uint8_t **body = NULL;
    size_t *len = NULL;
    uint64_t sum = 0, refused = 0;
    int rc = 0, began = 0;

    if (n == 0)
        return 0;
    body = calloc(n, sizeof(*body));
    len = calloc(n, sizeof(*len));
    if (!body || !len) {
        rc = -ENOMEM;
        goto out;
    }
    rc = spool_begin(sp, &m);
    if (rc < 0)
        goto out;
    began = 1;
    refused = sp->refused.count;
    rc = spool_record_refused(sp, &m);
    if (rc < 0)
        goto out;
    /* Packed first: the bound needs their size before anything goes. */
    for (size_t i = 0; i < n; i++) {
        Sextant__V1__Event ev = *evs[i];    /* shallow: only for packing */

        ev.seq = m.next_seq + i;
        if (ev.unix_ms == 0)
            ev.unix_ms = now;
        rc = wire_event_pack(&ev, &body[i], &len[i]);
        if (rc < 0)
            goto out;
        sum += len[i];
    }
    if (m.bytes + sum > m.max_bytes) {
        rc = spool_make_room(sp, &m, m.bytes + sum - m.max_bytes);
        if (rc < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = -EIO;
        if (sqlite3_bind_int64(st, 1, (sqlite3_int64)(m.next_seq + i))
                != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, evs[i]->unix_ms ? evs[i]->unix_ms
                                                      : now) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, wire_event_kind(evs[i]), -1,
                              SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob64(st, 4, body[i], len[i], SQLITE_STATIC)
                != SQLITE_OK) {
            spool_done(sp, ST_INSERT);
            goto out;
        }
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
        spool_done(sp, ST_INSERT);
        if (rc < 0)
            goto out;
    }
    m.next_seq += n;
    m.n_events += n;
    m.bytes += sum;
    rc = spool_commit(sp, &m);
    began = 0;                          /* committed or rolled back */
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {    /* committed: now tell them */
        evs[i]->seq = m.next_seq - n + i;
        if (evs[i]->unix_ms == 0)
            evs[i]->unix_ms = now;
    }
    if (refused)
        memset(&sp->refused, 0, sizeof(sp->refused));   /* recorded */
out:
    if (began)
        spool_rollback(sp);
    if (rc < 0)
        spool_refuse(sp, evs, n, now);
    for (size_t i = 0; body && i < n; i++)
        free(body[i]);
    free(body);
    free(len);
    return rc;
}

int spool_append(struct spool *sp, Sextant__V1__Event *ev)
{
    return spool_append_many(sp, &ev, 1);
}

/* -- reading batches -- */

void spool_chunk_free(struct spool_chunk *c)
{
    free(c->events);
    free(c->data);
    memset(c, 0, sizeof(*c));
}

/* A chunk being filled: the rows' bytes back to back in data, their
 * lengths and seqs aside until spool_chunk_finish() points events at
 * them. */
struct spool_fill {
    struct spool_chunk c;
    size_t max_events;
    size_t max_bytes;
    size_t cap;                     /* of c.data */
    size_t *lens;                   /* max_events of them */
    uint64_t *seqs;
    int full;                       /* a row did not fit: stop */
};

static int spool_fill_init(struct spool_fill *f, size_t max_events,
                           size_t max_bytes)
{
    memset(f, 0, sizeof(*f));
    f->max_events = max_events ? max_events : 1;
    f->max_bytes = max_bytes;
    f->lens = calloc(f->max_events, sizeof(*f->lens));
    f->seqs = calloc(f->max_events, sizeof(*f->seqs));
    return f->lens && f->seqs ? 0 : -ENOMEM;
}

static void spool_fill_free(struct spool_fill *f)
{
    spool_chunk_free(&f->c);
    free(f->lens);
    free(f->seqs);
}

/* Takes the row @st is on, if it fits; sets f->full when it does not. */
static int spool_fill_row(struct spool_fill *f, sqlite3_stmt *st)
{
    const void *blob = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);

    if (f->c.n == f->max_events ||
        (f->c.n > 0 && f->c.bytes + len > f->max_bytes)) {
        f->full = 1;
        return 0;
    }
    if (f->c.bytes + len > f->cap) {
        size_t ncap = f->cap ? f->cap : 4096;
        uint8_t *nd;

        while (ncap < f->c.bytes + len)
            ncap *= 2;
        nd = realloc(f->c.data, ncap);
        if (!nd)
            return -ENOMEM;
        f->c.data = nd;
        f->cap = ncap;
    }
    if (len)
        memcpy(f->c.data + f->c.bytes, blob, len);
    f->lens[f->c.n] = len;
    f->seqs[f->c.n] = (uint64_t)sqlite3_column_int64(st, 0);
    f->c.n++;
    f->c.bytes += len;
    return 0;
}

/* Steps @which over [@lo, @hi] (bound ?1, ?2, limit ?3) into @f. */
static int spool_fill_range(struct spool *sp, enum spool_st which,
                            uint64_t lo, uint64_t hi, struct spool_fill *f)
{
    sqlite3_stmt *st = sp->st[which];
    /* One more than fits: seeing it is how we know there is more. */
    const int64_t v[] = { (int64_t)lo, (int64_t)hi,
                          (int64_t)(f->max_events - f->c.n + 1) };
    int rc = spool_bind(st, 3, v);

    while (rc == 0 && !f->full) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = 0;
            break;
        }
        rc = rc == SQLITE_ROW ? spool_fill_row(f, st) : spool_errno(rc);
    }
    spool_done(sp, which);
    return rc;
}

/* Points the chunk's events at its data, in ascending seq order: rows
 * filled newest first (@reverse) are turned around. */
static int spool_fill_finish(struct spool_fill *f, int reverse)
{
    struct spool_chunk *c = &f->c;
    size_t off = 0;

    if (c->n == 0)
        return 0;
    c->events = calloc(c->n, sizeof(*c->events));
    if (!c->events)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        size_t slot = reverse ? c->n - 1 - i : i;

        c->events[slot].data = c->data + off;
        c->events[slot].len = f->lens[i];
        off += f->lens[i];
    }
    c->first_seq = reverse ? f->seqs[c->n - 1] : f->seqs[0];
    c->last_seq = reverse ? f->seqs[0] : f->seqs[c->n - 1];
    c->more = f->full;
    return 0;
}

int spool_peek(struct spool *sp, uint64_t after_seq, size_t max_events,
               size_t max_bytes, struct spool_chunk *out)
{
    struct spool_fill f;
    int rc = spool_fill_init(&f, max_events, max_bytes);

    if (rc == 0 && after_seq < SPOOL_SEQ_MAX)
        rc = spool_fill_range(sp, ST_PEEK_ASC, after_seq + 1, SPOOL_SEQ_MAX,
                              &f);
    if (rc == 0)
        rc = spool_fill_finish(&f, 0);
    if (rc == 0) {
        *out = f.c;
        memset(&f.c, 0, sizeof(f.c));   /* now the caller's */
    }
    spool_fill_free(&f);
    return rc;
}

/* The lowest seq in the spool within @holes (a collector's unacked
 * ranges, ascending); 0 if none. */
static int spool_first_unacked(struct spool *sp,
                               const struct spool_range *holes, size_t n,
                               uint64_t *out)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t v[] = { (int64_t)holes[i].first,
                              (int64_t)holes[i].last };
        int rc = spool_row(sp, ST_FIRST_IN, 2, v);

        if (rc != 0)
            return rc < 0 ? rc : -EIO;
        if (sqlite3_column_type(sp->st[ST_FIRST_IN], 0) != SQLITE_NULL)
            *out = (uint64_t)sqlite3_column_int64(sp->st[ST_FIRST_IN], 0);
        spool_done(sp, ST_FIRST_IN);
        if (*out)
            break;
    }
    return 0;
}

/* @c's oldest pending drop record into *d, and the first seq of the one
 * after it (0 if none) into *next. */
static int spool_oldest_drop(struct spool *sp, const struct spool_coll *c,
                             struct spool_drop *d, uint64_t *next)
{
    sqlite3_stmt *st = sp->st[ST_DROP_OLDEST];
    int rc;

    memset(d, 0, sizeof(*d));
    *next = 0;
    if (sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK)
        return -EIO;
    for (int row = 0; row < 2; row++) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (row == 1) {
            *next = (uint64_t)sqlite3_column_int64(st, 0);
            break;
        }
        d->first_seq = (uint64_t)sqlite3_column_int64(st, 0);
        d->last_seq = (uint64_t)sqlite3_column_int64(st, 1);
        d->count = (uint64_t)sqlite3_column_int64(st, 2);
        d->first_unix_ms = sqlite3_column_int64(st, 3);
        d->last_unix_ms = sqlite3_column_int64(st, 4);
    }
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : spool_errno(rc);
    spool_done(sp, ST_DROP_OLDEST);
    return rc;
}

int spool_peek_for(struct spool *sp, unsigned coll, int newest,
                   size_t max_events, size_t max_bytes,
                   struct spool_chunk *out)
{
    struct spool_range *holes = NULL;
    const struct spool_coll *c;
    struct spool_fill f;
    uint64_t lowest = 0, next_drop = 0, withheld = 0;
    size_t n = 0;
    int rc;

    if (coll >= sp->n_coll)
        return -EINVAL;
    c = &sp->coll[coll];
    rc = spool_fill_init(&f, max_events, max_bytes);
    /* Ranges are kept only from the oldest event up, so the holes are
     * few: one per acked range, plus everything above the last. */
    if (rc == 0)
        rc = range_holes(c, 1, SPOOL_SEQ_MAX, &holes, &n);
    for (size_t i = 0; i < n && rc == 0 && !f.full; i++) {
        const struct spool_range *h = &holes[newest ? n - 1 - i : i];

        rc = spool_fill_range(sp, newest ? ST_PEEK_DESC : ST_PEEK_ASC,
                              h->first, h->last, &f);
    }
    if (rc == 0)
        rc = spool_fill_finish(&f, newest);
    if (rc == 0 && newest && f.c.more)
        rc = spool_first_unacked(sp, holes, n, &lowest);
    else if (rc == 0 && f.c.n > 0)
        lowest = f.c.first_seq;
    if (rc == 0)
        rc = spool_oldest_drop(sp, c, &f.c.drop, &next_drop);
    if (rc < 0)
        goto out;
    /* Drops from the bound take the oldest events, so they lie below the
     * events; but events no append could store are recorded above those
     * spooled before them. The collector takes drops in seq order only
     * (one above its last is new, any other a replay), so such a record
     * waits until no unacked event is left below it: a newest-first batch
     * above it must not carry it while older events may still be
     * dropped by the bound. 'lowest' is that first unacked event. */
    if (f.c.n > 0 && f.c.drop.count > 0 && f.c.drop.last_seq >= lowest) {
        withheld = f.c.drop.first_seq;
        memset(&f.c.drop, 0, sizeof(f.c.drop));
    }
    /* Without events, everything above the record was acked: the
     * record's end is where the collector's losses end. */
    if (f.c.n == 0)
        lowest = f.c.drop.count ? f.c.drop.last_seq + 1 : 0;
    /* What a later (or withheld) drop record will explain is not a gap
     * yet. */
    if (withheld && (!next_drop || withheld < next_drop))
        next_drop = withheld;
    f.c.oldest_seq = next_drop && next_drop < lowest ? next_drop : lowest;
out:
    if (rc == 0) {
        *out = f.c;
        memset(&f.c, 0, sizeof(f.c));   /* now the caller's */
    }
    spool_fill_free(&f);
    free(holes);
    return rc;
}

/* -- a batch's fate -- */

int spool_batch_sent(struct spool *sp, unsigned coll,
                     const struct spool_chunk *c)
{
    struct spool_coll *sc;
    struct spool_meta m;
    int rc;

    if (coll >= sp->n_coll || (c->n == 0 && c->drop.count == 0))
        return -EINVAL;
    sc = &sp->coll[coll];
    rc = spool_begin(sp, &m);
    if (rc < 0)
        return rc;
    if (c->drop.count > 0) {
        const int64_t v[] = { sc->id, (int64_t)c->drop.first_seq };

        rc = spool_exec(sp, ST_DROP_FREEZE, 2, v);
    }
    if (rc == 0) {
        const int64_t v[] = { c->n ? (int64_t)c->first_seq : 0,
                              c->n ? (int64_t)c->last_seq : 0, sc->id };

        rc = spool_exec(sp, ST_FLIGHT_SET, 3, v);
    }
    if (rc == 0)
        return spool_commit(sp, &m);
    spool_rollback(sp);
    return rc;
}

int spool_batch_abandoned(struct spool *sp, unsigned coll)
{
    int64_t key[1];
    struct spool_meta m;
    int rc;

    if (coll >= sp->n_coll)
        return -EINVAL;
    key[0] = sp->coll[coll].id;
    rc = spool_begin(sp, &m);
    if (rc < 0)
        return rc;
    rc = spool_tent_to_drops(sp, &m, key[0]);
    if (rc == 0) {
        const int64_t w[] = { 0, 0, key[0] };

        rc = spool_exec(sp, ST_FLIGHT_SET, 3, w);
    }
    if (rc == 0)
        return spool_commit(sp, &m);
    spool_rollback(sp);
    return rc;
}

/* Protobuf framing of one Batch.events entry: field 7, wire type 2
 * (length-delimited), then the length as a varint. */
static size_t spool_frame(uint8_t *out, size_t len)
{
    size_t k = 0;

    out[k++] = (7 << 3) | 2;
    do {
        uint8_t b = (uint8_t)(len & 0x7f);

        len >>= 7;
        out[k++] = len ? (uint8_t)(b | 0x80) : b;
    } while (len);
    return k;
}

/* Inserts the dead letter for @c: its events framed as Batch.events. */
static int spool_dead_insert(struct spool *sp, const struct spool_coll *sc,
                             const struct spool_chunk *c, int status,
                             const char *reason)
{
    sqlite3_stmt *st = sp->st[ST_DL_INSERT];
    uint8_t *body;
    size_t off = 0;
    int rc = -EIO;

    body = malloc(c->bytes + c->n * 11 + 1);    /* 1 tag + <= 10 varint */
    if (!body)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        off += spool_frame(body + off, c->events[i].len);
        memcpy(body + off, c->events[i].data, c->events[i].len);
        off += c->events[i].len;
    }
    /* A batch of a drop record alone keeps the record's range. */
    if (sqlite3_bind_text(st, 1, sc->url, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, (int64_t)(c->n ? c->first_seq
                                                 : c->drop.first_seq))
            == SQLITE_OK &&
        sqlite3_bind_int64(st, 3, (int64_t)(c->n ? c->last_seq
                                                 : c->drop.last_seq))
            == SQLITE_OK &&
        sqlite3_bind_int64(st, 4, (int64_t)c->n) == SQLITE_OK &&
        sqlite3_bind_int(st, 5, status) == SQLITE_OK &&
        sqlite3_bind_text(st, 6, reason, (int)strnlen(reason,
                          SPOOL_MAX_REASON), SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_int64(st, 7, util_now_ms()) == SQLITE_OK &&
        sqlite3_bind_blob64(st, 8, body, off, SQLITE_STATIC) == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
    }
    spool_done(sp, ST_DL_INSERT);
    free(body);
    if (rc == 0) {
        /* A collector that refuses everything must not fill the disk:
         * the oldest dead letters go past the cap, and say so. */
        const int64_t cap[] = { SPOOL_DEAD_MAX_BYTES };

        rc = spool_exec(sp, ST_DL_PRUNE, 1, cap);
        if (rc == 0 && sqlite3_changes(sp->db) > 0)
            log_msg(LOGL_WARN, "spool", "dead letters over %u bytes: the "
                    "%d oldest removed", SPOOL_DEAD_MAX_BYTES,
                    sqlite3_changes(sp->db));
    }
    return rc;
}

/* Acked (@status 0) or dead (@status, @reason): the range is done for
 * @coll, and whatever everyone is done with goes. */
static int spool_batch_end(struct spool *sp, unsigned coll,
                           const struct spool_chunk *c, int status,
                           const char *reason, uint64_t *deleted)
{
    struct spool_coll *sc;
    struct spool_range mr;
    struct spool_meta m;
    uint64_t gone = 0, min_seq = 0;
    size_t i = 0, j = 0;
    int rc;

    memset(&mr, 0, sizeof(mr));
    if (coll >= sp->n_coll || (c->n == 0 && c->drop.count == 0))
        return -EINVAL;
    sc = &sp->coll[coll];
    rc = spool_begin(sp, &m);
    if (rc < 0)
        return rc;
    if (status) {
        rc = spool_dead_insert(sp, sc, c, status, reason);
        m.dead_letter += c->n;
    }
    if (rc == 0 && c->n > 0)
        rc = spool_add_range_rows(sp, sc, c->first_seq, c->last_seq, &i, &j,
                                  &mr);
    /* Stored: its drop record is told. Refused with events: it is not,
     * and the next batch carries it again. Refused alone, it would be
     * refused forever: its dead letter keeps it, and it goes. */
    if (rc == 0 && (!status || c->n == 0) && c->drop.count > 0) {
        const int64_t v[] = { sc->id, (int64_t)c->drop.first_seq };

        rc = spool_exec(sp, ST_DROP_DELETE, 2, v);
    }
    /* Events dropped while it was out there: the collector has them
     * (acked), or the dead letter does. Either way they are no loss. */
    if (rc == 0) {
        const int64_t v[] = { sc->id };

        rc = spool_exec(sp, ST_DROP_DEL_TENT, 1, v);
    }
    if (rc == 0) {
        const int64_t v[] = { 0, 0, sc->id };

        rc = spool_exec(sp, ST_FLIGHT_SET, 3, v);
    }
    if (rc < 0) {
        spool_rollback(sp);
        return rc;
    }
    /* The sweep reads the ranges: apply in memory, undo on failure. */
    {
        struct spool_range *saved = malloc((sc->n + 1) * sizeof(*saved));
        size_t saved_n = sc->n;

        if (!saved) {
            spool_rollback(sp);
            return -ENOMEM;
        }
        memcpy(saved, sc->r, sc->n * sizeof(*saved));
        if (c->n > 0) {
            range_apply(sc, i, j, &mr);
            rc = spool_sweep(sp, &m, c->first_seq, c->last_seq, &gone);
        }
        if (rc == 0)
            rc = spool_prune_rows(sp, &m, &min_seq);
        if (rc == 0)
            rc = spool_commit(sp, &m);
        if (rc < 0) {
            memcpy(sc->r, saved, saved_n * sizeof(*saved));
            sc->n = saved_n;
            spool_rollback(sp);
        }
        free(saved);
    }
    if (rc < 0)
        return rc;
    spool_prune_mem(sp, min_seq);
    if (deleted)
        *deleted = gone;
    return 0;
}

int spool_batch_acked(struct spool *sp, unsigned coll,
                      const struct spool_chunk *c, uint64_t *deleted)
{
    return spool_batch_end(sp, coll, c, 0, NULL, deleted);
}

int spool_batch_dead(struct spool *sp, unsigned coll,
                     const struct spool_chunk *c, int status,
                     const char *reason, uint64_t *deleted)
{
    if (status <= 0)
        return -EINVAL;
    return spool_batch_end(sp, coll, c, status, reason ? reason : "",
                           deleted);
}

int spool_ack(struct spool *sp, uint64_t upto_seq, uint64_t *deleted)
{
    struct spool_range all;
    struct spool_meta m;
    uint64_t gone = 0, min_seq = 0;
    int rc;

    if (upto_seq == 0) {
        if (deleted)
            *deleted = 0;
        return 0;
    }
    all.first = 1;
    all.last = upto_seq < SPOOL_SEQ_MAX ? upto_seq : SPOOL_SEQ_MAX;
    rc = spool_begin(sp, &m);
    if (rc < 0)
        return rc;
    rc = spool_delete_ranges(sp, &m, &all, 1, &gone);
    if (rc == 0)
        rc = spool_prune_rows(sp, &m, &min_seq);
    if (rc == 0)
        rc = spool_commit(sp, &m);
    else
        spool_rollback(sp);
    if (rc < 0)
        return rc;
    spool_prune_mem(sp, min_seq);
    if (deleted)
        *deleted = gone;
    return 0;
}

/* -- counting -- */

int spool_count(struct spool *sp, uint64_t *out)
{
    int rc = spool_row(sp, ST_COUNT, 0, NULL);

    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    *out = (uint64_t)sqlite3_column_int64(sp->st[ST_COUNT], 0);
    spool_done(sp, ST_COUNT);
    return 0;
}

int spool_next_seq(struct spool *sp, uint64_t *out)
{
    struct spool_meta m;
    int rc = spool_read_meta(sp, &m);

    if (rc == 0)
        *out = m.next_seq;
    return rc;
}

int spool_stats(struct spool *sp, struct spool_stats *out)
{
    struct spool_meta m;
    int rc = spool_read_meta(sp, &m);

    if (rc < 0)
        return rc;
    out->events = m.n_events;
    out->bytes = m.bytes;
    out->dropped = m.dropped;
    out->dead_letter = m.dead_letter;
    return 0;
}

int spool_depth(struct spool *sp, uint64_t *events, uint64_t *bytes)
{
    struct spool_stats s;
    int rc = spool_stats(sp, &s);

    if (rc == 0) {
        *events = s.events;
        *bytes = s.bytes;
    }
    return rc;
}
