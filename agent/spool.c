/* spool.c -- the agent's on-disk FIFO of packed events, in SQLite (WAL).
 * Assigns seqs, keeps the epoch, hands out the oldest events and deletes
 * them once acked. Does not compress, retry or touch the network (see
 * shipper.c), and logs nothing: callers log with spool_errmsg(). */
#include "spool.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SPOOL_BUSY_MS 5000          /* another writer: wait, then fail */

/* Schema migrations, applied in order inside one transaction; entry i
 * takes the file from user_version i to i + 1 and sets it. Never edit a
 * shipped entry: add a new one (issue 5 adds the byte bound). */
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
};

#define SPOOL_VERSION \
    ((int)(sizeof(spool_migrations) / sizeof(spool_migrations[0])))

struct spool {
    sqlite3 *db;                /* loop thread only */
    uint64_t epoch;
    sqlite3_stmt *begin;        /* BEGIN IMMEDIATE: take the write lock */
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *get_next;
    sqlite3_stmt *set_next;
    sqlite3_stmt *insert;
    sqlite3_stmt *peek;
    sqlite3_stmt *ack;
    sqlite3_stmt *count;
    sqlite3_stmt *depth;
    sqlite3_stmt *acked_bytes;
    uint64_t depth_bytes;       /* packed bytes of rows with seq <= depth_seq */
    uint64_t depth_seq;         /* highest seq summed into it; 0: none yet */
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

/* Steps a statement that returns no rows, then resets it. */
static int spool_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : spool_errno(rc);
}

static void spool_rollback(struct spool *sp)
{
    /* Fails only if no transaction is open, which is then what we want. */
    if (sqlite3_get_autocommit(sp->db) == 0)
        (void)spool_step_done(sp->rollback);
}

/* One-row, one-column pragma read; for journal_mode and user_version. */
static int spool_pragma_text(sqlite3 *db, const char *sql, char *out,
                             size_t out_len)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto out;
    snprintf(out, out_len, "%s", (const char *)sqlite3_column_text(st, 0)
                                     ? (const char *)sqlite3_column_text(st, 0)
                                     : "");
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
    if (version > SPOOL_VERSION) {
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
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } all[] = {
        { &sp->begin, "BEGIN IMMEDIATE" },
        { &sp->commit, "COMMIT" },
        { &sp->rollback, "ROLLBACK" },
        { &sp->get_next, "SELECT epoch, next_seq FROM meta WHERE id = 1" },
        { &sp->set_next, "UPDATE meta SET next_seq = ? WHERE id = 1" },
        { &sp->insert, "INSERT INTO events(seq, unix_ms, kind, body) "
                       "VALUES (?, ?, ?, ?)" },
        { &sp->peek, "SELECT seq, body FROM events WHERE seq > ? "
                     "ORDER BY seq LIMIT ?" },
        { &sp->ack, "DELETE FROM events WHERE seq <= ?" },
        { &sp->count, "SELECT count(*) FROM events" },
        /* Three subqueries, not min() and max() side by side: SQLite
         * answers a lone min() or max() from the rowid b-tree's ends, both
         * together with a full scan. One statement is one snapshot. */
        { &sp->depth, "SELECT (SELECT min(seq) FROM events), "
                      "(SELECT max(seq) FROM events), "
                      "(SELECT total(length(body)) FROM events "
                      "WHERE seq > ?)" },
        { &sp->acked_bytes, "SELECT total(length(body)) FROM events "
                            "WHERE seq <= ?" },
    };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        int rc = sqlite3_prepare_v3(sp->db, all[i].sql, -1,
                                    SQLITE_PREPARE_PERSISTENT, all[i].st,
                                    NULL);
        if (rc != SQLITE_OK)
            return spool_errno(rc);
    }
    return 0;
}

/* Reads epoch and next_seq from meta; inside a transaction when the seq
 * is about to be used. */
static int spool_read_meta(struct spool *sp, uint64_t *epoch,
                           uint64_t *next_seq)
{
    sqlite3_stmt *st = sp->get_next;
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        *epoch = (uint64_t)sqlite3_column_int64(st, 0);
        *next_seq = (uint64_t)sqlite3_column_int64(st, 1);
        rc = *epoch != 0 && *next_seq > 0 ? 0 : -EBADMSG;
    } else {
        rc = rc == SQLITE_DONE ? -EBADMSG : spool_errno(rc);
    }
    sqlite3_reset(st);
    return rc;
}

int spool_open(const char *path, struct spool **out, char *err,
               size_t err_len)
{
    struct spool *sp;
    char mode[16];
    uint64_t next;
    int rc;

    sp = calloc(1, sizeof(*sp));
    if (!sp) {
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
    rc = spool_migrate(sp, path, err, err_len);
    if (rc < 0)
        goto out;
    rc = spool_prepare_all(sp);
    if (rc < 0) {
        rc = spool_db_fail(sp->db, rc, path, err, err_len);
        goto out;
    }
    rc = spool_read_meta(sp, &sp->epoch, &next);
    if (rc < 0) {
        snprintf(err, err_len, "%s: meta row missing or invalid", path);
        goto out;
    }
    *out = sp;
    sp = NULL;                          /* now the caller's */
out:
    spool_close(sp);
    return rc;
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    sqlite3_finalize(sp->begin);
    sqlite3_finalize(sp->commit);
    sqlite3_finalize(sp->rollback);
    sqlite3_finalize(sp->get_next);
    sqlite3_finalize(sp->set_next);
    sqlite3_finalize(sp->insert);
    sqlite3_finalize(sp->peek);
    sqlite3_finalize(sp->ack);
    sqlite3_finalize(sp->count);
    sqlite3_finalize(sp->depth);
    sqlite3_finalize(sp->acked_bytes);
    /* All statements are finalized, so close cannot be SQLITE_BUSY. */
    sqlite3_close(sp->db);
    free(sp);
}

static int spool_insert(struct spool *sp, const Sextant__V1__Event *ev)
{
    sqlite3_stmt *st = sp->insert;
    uint8_t *body = NULL;
    size_t len;
    int rc;

    rc = wire_event_pack(ev, &body, &len);
    if (rc < 0)
        return rc;
    rc = -EIO;
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)ev->seq) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, ev->unix_ms) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, wire_event_kind(ev), -1, SQLITE_STATIC)
            != SQLITE_OK ||
        sqlite3_bind_blob64(st, 4, body, len, SQLITE_STATIC) != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    free(body);
    return rc;
}

int spool_append_many(struct spool *sp, Sextant__V1__Event *const *evs,
                      size_t n)
{
    int64_t now = util_now_ms();
    uint64_t epoch, next;
    int rc;

    if (n == 0)
        return 0;
    rc = spool_step_done(sp->begin);
    if (rc < 0)
        return rc;
    rc = spool_read_meta(sp, &epoch, &next);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        Sextant__V1__Event ev = *evs[i];    /* shallow: only for packing */

        ev.seq = next + i;
        if (ev.unix_ms == 0)
            ev.unix_ms = now;
        rc = spool_insert(sp, &ev);
        if (rc < 0)
            goto out;
    }
    rc = -EIO;
    if (sqlite3_bind_int64(sp->set_next, 1, (sqlite3_int64)(next + n))
        != SQLITE_OK)
        goto out;
    rc = spool_step_done(sp->set_next);
    if (rc < 0)
        goto out;
    rc = spool_step_done(sp->commit);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {        /* committed: now tell them */
        evs[i]->seq = next + i;
        if (evs[i]->unix_ms == 0)
            evs[i]->unix_ms = now;
    }
out:
    if (rc < 0)
        spool_rollback(sp);
    return rc;
}

int spool_append(struct spool *sp, Sextant__V1__Event *ev)
{
    return spool_append_many(sp, &ev, 1);
}

void spool_chunk_free(struct spool_chunk *c)
{
    free(c->events);
    free(c->data);
    memset(c, 0, sizeof(*c));
}

int spool_peek(struct spool *sp, uint64_t after_seq, size_t max_events,
               size_t max_bytes, struct spool_chunk *out)
{
    sqlite3_stmt *st = sp->peek;
    struct spool_chunk c = { 0 };
    size_t *lens = NULL, cap = 0, off = 0;
    int rc = -EIO;

    if (max_events == 0)
        max_events = 1;
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)after_seq) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max_events) != SQLITE_OK)
        goto out;
    lens = calloc(max_events, sizeof(*lens));
    if (!lens) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        const void *blob;
        size_t len;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            rc = spool_errno(rc);
            goto out;
        }
        blob = sqlite3_column_blob(st, 1);
        len = (size_t)sqlite3_column_bytes(st, 1);
        if (c.n > 0 && c.bytes + len > max_bytes)
            break;
        if (off + len > cap) {
            size_t ncap = cap ? cap : 4096;
            uint8_t *nd;

            while (ncap < off + len)
                ncap *= 2;
            nd = realloc(c.data, ncap);
            if (!nd) {
                rc = -ENOMEM;
                goto out;
            }
            c.data = nd;
            cap = ncap;
        }
        if (len)
            memcpy(c.data + off, blob, len);
        off += len;
        if (c.n == 0)
            c.first_seq = (uint64_t)sqlite3_column_int64(st, 0);
        c.last_seq = (uint64_t)sqlite3_column_int64(st, 0);
        lens[c.n++] = len;
        c.bytes += len;
    }
    if (c.n > 0) {
        /* Pointers only now: data may have moved while it grew. */
        c.events = calloc(c.n, sizeof(*c.events));
        if (!c.events) {
            rc = -ENOMEM;
            goto out;
        }
        off = 0;
        for (size_t i = 0; i < c.n; i++) {
            c.events[i].data = c.data + off;
            c.events[i].len = lens[i];
            off += lens[i];
        }
    }
    *out = c;
    memset(&c, 0, sizeof(c));           /* now the caller's */
    rc = 0;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    spool_chunk_free(&c);
    free(lens);
    return rc;
}

/* Packed bytes of the rows spool_ack(@upto_seq) is about to delete that
 * spool_depth() has counted; -1 if SQLite cannot say. Costs what the
 * delete costs: it visits the same rows. */
static int64_t spool_depth_acked(struct spool *sp, uint64_t upto_seq)
{
    sqlite3_stmt *st = sp->acked_bytes;
    uint64_t upto = upto_seq < sp->depth_seq ? upto_seq : sp->depth_seq;
    int64_t n = -1;

    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)upto) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (int64_t)sqlite3_column_double(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return n;
}

int spool_ack(struct spool *sp, uint64_t upto_seq, uint64_t *deleted)
{
    sqlite3_stmt *st = sp->ack;
    int64_t gone = 0;
    int rc = -EIO;

    if (upto_seq > (uint64_t)INT64_MAX)
        upto_seq = (uint64_t)INT64_MAX;
    if (sp->depth_seq > 0)
        gone = spool_depth_acked(sp, upto_seq);
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)upto_seq) != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
    if (rc == 0 && deleted)
        *deleted = (uint64_t)sqlite3_changes64(sp->db);
out:
    /* Unsure what went: forget the sum, spool_depth() starts it afresh. */
    if (rc < 0 || gone < 0 || (uint64_t)gone > sp->depth_bytes)
        sp->depth_seq = sp->depth_bytes = 0;
    else
        sp->depth_bytes -= (uint64_t)gone;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int spool_count(struct spool *sp, uint64_t *out)
{
    sqlite3_stmt *st = sp->count;
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = spool_errno(rc);
    }
    sqlite3_reset(st);
    return rc;
}

int spool_next_seq(struct spool *sp, uint64_t *out)
{
    uint64_t epoch, next;
    int rc = spool_read_meta(sp, &epoch, &next);

    if (rc == 0)
        *out = next;
    return rc;
}

int spool_depth(struct spool *sp, uint64_t *events, uint64_t *bytes)
{
    sqlite3_stmt *st = sp->depth;
    uint64_t lo = 0, hi = 0;
    int rc = -EIO;

    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)sp->depth_seq) != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = spool_errno(rc);
        goto out;
    }
    rc = 0;
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) {    /* empty */
        sp->depth_bytes = 0;
        goto done;
    }
    lo = (uint64_t)sqlite3_column_int64(st, 0);
    hi = (uint64_t)sqlite3_column_int64(st, 1);
    if (hi > sp->depth_seq) {
        sp->depth_bytes += (uint64_t)sqlite3_column_double(st, 2);
        sp->depth_seq = hi;
    }
done:
    *events = hi >= lo && hi > 0 ? hi - lo + 1 : 0;
    *bytes = sp->depth_bytes;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}
