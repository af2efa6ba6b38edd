/* spool_file.c -- the spool's file (spool.h): opening it (WAL, FULL
 * sync, a quick check), the schema and its migrations, a fresh epoch for
 * a new file, moving an unusable file aside, the owner lock, and closing.
 * Logs only when it moves an unusable file aside (the caller cannot tell
 * otherwise); other failures are for the caller to log. */
#include "spool_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Numbers that SQL text needs are spelled into it by the preprocessor,
 * so each number is written once and no SQL is ever printf'd. */
#define SPOOL_STR(x)  #x
#define SPOOL_XSTR(x) SPOOL_STR(x)

/* After a checkpoint the WAL shrinks back to this (4 MiB), so a burst (a
 * long drain) does not leave a WAL the size of the spool on disk. Plain
 * digits: it goes into the PRAGMA's text. */
#define SPOOL_WAL_KEEP_BYTES 4194304
#define SPOOL_PRAGMA_SHORT   32u    /* a journal mode or a number, as text */
#define SPOOL_CHECK_TEXT     128u   /* quick_check's report, for the error */
/* PATH.corrupt-<unix seconds>-N names tried: more than one file moved
 * aside in the same second takes the next free N. */
#define SPOOL_ASIDE_TRIES    100
/* F_SETLK then F_GETLK: the holder may exit in between, so try again. */
#define SPOOL_LOCK_TRIES     3

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
    "  DEFAULT " SPOOL_XSTR(SPOOL_DEF_MAX_BYTES_N) ";"
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
    char buf[SPOOL_PRAGMA_SHORT];
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

/* Opens @path as it is. -EBADMSG or -EPROTO mean the file is not a usable
 * spool (spool_open moves it aside); anything else is an error of its
 * own. */
static int spool_open_file(const char *path, struct spool **out, char *err,
                           size_t err_len)
{
    struct spool_meta m;
    struct spool *sp;
    char mode[SPOOL_PRAGMA_SHORT], check[SPOOL_CHECK_TEXT];
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
    /* The WAL's size after a checkpoint: SPOOL_WAL_KEEP_BYTES. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(sp->db, "PRAGMA journal_size_limit = "
                          SPOOL_XSTR(SPOOL_WAL_KEEP_BYTES), NULL, NULL, NULL);
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
    char *to = NULL, from_x[PATH_MAX], to_x[PATH_MAX];
    struct stat stt;
    long long now = (long long)time(NULL);

    for (int k = 0; k < SPOOL_ASIDE_TRIES; k++) {
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
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
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
    for (int tries = 0; tries < SPOOL_LOCK_TRIES; tries++) {
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
