/* spool.c -- the spool's core (spool.h; spool_priv.h lists its files):
 * the SQL of every prepared statement, the helpers that run them and the
 * write transaction (BEGIN IMMEDIATE, the meta row read under the lock,
 * counters written back at commit), and the cheap counters. What the
 * spool does with them lives in spool_file.c, spool_collectors.c,
 * spool_append.c and spool_batch.c. */
#include "spool_priv.h"

#include <errno.h>

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
    /* Rows with first > last as uint64s, which the file holds as int64s:
     * a negative one is above every non-negative one. */
    [ST_ACKED_DEL_BAD] = "DELETE FROM acked WHERE collector_id = ? AND "
                         "((first_seq < 0) > (last_seq < 0) OR "
                         "((first_seq < 0) = (last_seq < 0) AND "
                         "first_seq > last_seq))",
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

int spool_errno(int rc)
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
int spool_bind(sqlite3_stmt *st, size_t n, const int64_t *v)
{
    for (size_t i = 0; i < n; i++)
        if (sqlite3_bind_int64(st, (int)i + 1, v[i]) != SQLITE_OK)
            return -EIO;
    return 0;
}

/* Binds @n values, steps a statement that returns no rows, resets. */
int spool_exec(struct spool *sp, enum spool_st which, size_t n,
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
int spool_row(struct spool *sp, enum spool_st which, size_t n,
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

void spool_done(struct spool *sp, enum spool_st which)
{
    sqlite3_reset(sp->st[which]);
    sqlite3_clear_bindings(sp->st[which]);
}

void spool_rollback(struct spool *sp)
{
    /* Fails only if no transaction is open, which is then what we want. */
    if (sqlite3_get_autocommit(sp->db) == 0)
        (void)spool_exec(sp, ST_ROLLBACK, 0, NULL);
}

/* Reads the meta row; inside a transaction when it is about to change. */
int spool_read_meta(struct spool *sp, struct spool_meta *m)
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
int spool_begin(struct spool *sp, struct spool_meta *m)
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
int spool_commit(struct spool *sp, const struct spool_meta *m)
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

int spool_prepare_all(struct spool *sp)
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
