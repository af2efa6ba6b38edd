/* backup.c -- a consistent online copy of the collector's database.
 *
 * VACUUM INTO, not the backup API: it reads the source in one read
 * transaction, which in WAL mode no writer blocks or disturbs, so it ends
 * under constant ingest; sqlite3_backup_step() starts over whenever another
 * connection writes, and a busy collector writes all the time. The copy is
 * also compact and in rollback-journal mode, a plain file to ship anywhere.
 * Does not parse arguments or print: main.c does. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define BACKUP_BUSY_MS   10000      /* a reader waits only on WAL recovery */
#define BACKUP_TMP_SUFFIX ".tmp-XXXXXX"

/* The temporary file, and the rollback journal SQLite keeps beside it
 * while VACUUM INTO writes (left behind when the copy fails), for the
 * signal handler: fixed buffers, because the handler may only call
 * async-signal-safe functions. */
static char backup_tmp[PATH_MAX];
static char backup_tmp_journal[PATH_MAX + 8];
static volatile sig_atomic_t backup_tmp_live;
static const int backup_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define BACKUP_N_SIGNALS (sizeof(backup_signals) / sizeof(backup_signals[0]))

static void backup_say(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void backup_say(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Removes the temporary file, then dies of the signal as it would have
 * (SA_RESETHAND put the default action back, SA_NODEFER lets it through). */
static void backup_on_signal(int sig)
{
    if (backup_tmp_live) {
        unlink(backup_tmp);
        unlink(backup_tmp_journal);
    }
    raise(sig);
}

/* @old has room for BACKUP_N_SIGNALS + 1. A file size limit (ulimit -f)
 * would kill us with SIGXFSZ and leave the temporary file: ignored, the
 * write fails instead and the copy fails with a reason. */
static void backup_trap_signals(struct sigaction *old)
{
    struct sigaction sa;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = backup_on_signal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < BACKUP_N_SIGNALS; i++)
        sigaction(backup_signals[i], &sa, &old[i]);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGXFSZ, &sa, &old[i]);
}

static void backup_restore_signals(const struct sigaction *old)
{
    size_t i;

    for (i = 0; i < BACKUP_N_SIGNALS; i++)
        sigaction(backup_signals[i], &old[i], NULL);
    sigaction(SIGXFSZ, &old[i], NULL);
}

/* Opens @path read-only and checks that a collector made it: the store
 * sets user_version with its first migration. */
static int backup_open_source(const char *path, sqlite3 **out, char *err,
                              size_t err_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int rc = -EIO, version;

    if (stat(path, &sb) < 0) {
        rc = -errno;
        backup_say(err, err_len, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (!S_ISREG(sb.st_mode)) {
        backup_say(err, err_len, "%s: not a Sextant database (not a "
                   "regular file)", path);
        return -EINVAL;
    }
    /* Read-only: the backup can never change the source. It still uses
     * the -shm file beside it, as every WAL reader must. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
            SQLITE_OK) {
        backup_say(err, err_len, "%s: cannot open: %s", path,
                   db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, BACKUP_BUSY_MS);
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        if (sqlite3_errcode(db) == SQLITE_NOTADB) {
            rc = -EINVAL;
            backup_say(err, err_len, "%s: not a Sextant database (%s)",
                       path, sqlite3_errmsg(db));
        } else {
            backup_say(err, err_len, "%s: cannot read: %s", path,
                       sqlite3_errmsg(db));
        }
        goto out;
    }
    version = sqlite3_column_int(st, 0);
    if (version <= 0) {
        rc = -EINVAL;
        backup_say(err, err_len, "%s: not a Sextant database "
                   "(user_version %d)", path, version);
        goto out;
    }
    *out = db;
    db = NULL;                      /* now the caller's */
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* VACUUM INTO writes @tmp, which must be empty, from one snapshot. */
static int backup_vacuum(sqlite3 *db, const char *db_path, const char *tmp,
                         const char *out_path, char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    else
        backup_say(err, err_len, "%s -> %s: copy failed: %s", db_path,
                   out_path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

/* fsync: VACUUM INTO leaves the copy to the page cache. */
static int backup_sync(const char *path, int64_t *bytes, char *err,
                       size_t err_len)
{
    struct stat sb;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0 || (bytes && fstat(fd, &sb) < 0)) {
        rc = -errno;
        backup_say(err, err_len, "%s: cannot sync: %s", path,
                   strerror(errno));
    } else if (bytes) {
        *bytes = (int64_t)sb.st_size;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int backup_check(const char *tmp, const char *out_path, char *err,
                        size_t err_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *res;
    int rc = -EIO;

    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READONLY, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        backup_say(err, err_len, "%s: cannot check the copy: %s", out_path,
                   db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    /* One row "ok", or one row per problem: the first says enough. */
    res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0) {
        backup_say(err, err_len, "%s: the copy fails its integrity check: "
                   "%s", out_path, res ? res : "?");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* Renames @tmp to @out_path unless that exists by now (another backup
 * finished meanwhile): the check at the start alone would race. Where
 * the filesystem has no RENAME_NOREPLACE, link() fails on an existing
 * name just as well. */
static int backup_place(const char *tmp, const char *out_path, char *err,
                        size_t err_len)
{
    int rc;

    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out_path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) {
        if (link(tmp, out_path) == 0) {
            unlink(tmp);
            return 0;
        }
    }
    rc = -errno;
    if (rc == -EEXIST)
        backup_say(err, err_len, "%s: exists; not overwriting it",
                   out_path);
    else
        backup_say(err, err_len, "%s: cannot rename the copy into place: "
                   "%s", out_path, strerror(-rc));
    return rc;
}

/* The rename is durable only once the folder holding it is synced. */
static int backup_sync_dir(const char *out_path, char *err, size_t err_len)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(out_path, '/');

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == out_path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - out_path),
                 out_path);
    return backup_sync(dir, NULL, err, err_len);
}

/* Everything from opening the source to the rename, signals trapped. */
static int backup_copy(const char *db_path, const char *out_path,
                       int64_t *bytes, char *err, size_t err_len)
{
    sqlite3 *db = NULL;
    int fd, rc;

    rc = backup_open_source(db_path, &db, err, err_len);
    if (rc < 0)
        return rc;
    snprintf(backup_tmp, sizeof(backup_tmp), "%s" BACKUP_TMP_SUFFIX,
             out_path);
    fd = mkstemp(backup_tmp);
    if (fd < 0) {
        rc = -errno;
        backup_say(err, err_len, "%s: cannot create a temporary file "
                   "beside it: %s", out_path, strerror(errno));
        goto out;
    }
    snprintf(backup_tmp_journal, sizeof(backup_tmp_journal), "%s-journal",
             backup_tmp);
    backup_tmp_live = 1;
    close(fd);                      /* VACUUM INTO takes an empty file */

    rc = backup_vacuum(db, db_path, backup_tmp, out_path, err, err_len);
    sqlite3_close(db);              /* ends the snapshot */
    db = NULL;
    if (rc == 0)
        rc = backup_sync(backup_tmp, bytes, err, err_len);
    if (rc == 0)
        rc = backup_check(backup_tmp, out_path, err, err_len);
    if (rc == 0)
        rc = backup_place(backup_tmp, out_path, err, err_len);
out:
    if (backup_tmp_live) {
        if (rc < 0) {
            unlink(backup_tmp);
            unlink(backup_tmp_journal);
        }
        backup_tmp_live = 0;
    }
    sqlite3_close(db);
    return rc;
}

int backup_run(const char *db_path, const char *out_path,
               struct backup_result *res, char *err, size_t err_len)
{
    struct sigaction old[BACKUP_N_SIGNALS + 1];
    int64_t start = util_mono_us(), bytes = 0;
    struct stat sb;
    int rc;

    if (lstat(out_path, &sb) == 0) {
        backup_say(err, err_len, "%s: exists; not overwriting it",
                   out_path);
        return -EEXIST;
    }
    if (errno != ENOENT) {
        rc = -errno;
        backup_say(err, err_len, "%s: %s", out_path, strerror(errno));
        return rc;
    }
    if (strlen(out_path) + sizeof(BACKUP_TMP_SUFFIX) > sizeof(backup_tmp)) {
        backup_say(err, err_len, "%s: path too long", out_path);
        return -ENAMETOOLONG;
    }
    /* From the start: even opening the source writes its -shm file. */
    backup_trap_signals(old);
    rc = backup_copy(db_path, out_path, &bytes, err, err_len);
    if (rc == 0)
        rc = backup_sync_dir(out_path, err, err_len);
    backup_restore_signals(old);
    if (rc < 0)
        return rc;
    res->bytes = bytes;
    res->duration_us = util_mono_us() - start;
    return 0;
}
