/* store_backup.c -- the database side of "sextant-collector backup": open
 * a collector's file read-only and check that a collector made it, copy
 * one snapshot of it into an empty file, and check the copy. The file
 * side (temporary name, signals, fsync, rename) is backup.c's.
 *
 * VACUUM INTO, not the backup API: it reads the source in one read
 * transaction, which in WAL mode no writer blocks or disturbs, so it ends
 * under constant ingest; sqlite3_backup_step() starts over whenever another
 * connection writes, and a busy collector writes all the time. The copy is
 * also compact and in rollback-journal mode, a plain file to ship anywhere.
 * Runs outside any open store: it needs no struct store. */
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_BACKUP_BUSY_MS 10000  /* a reader waits only on WAL recovery */

struct store_backup {
    sqlite3 *db;                /* read-only; its read transaction is the
                                 * snapshot the copy takes */
};

int store_backup_open(const char *path, struct store_backup **out,
                      char *err, size_t err_len)
{
    struct store_backup *b = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int rc = -EIO, step, version;

    if (stat(path, &sb) < 0) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, err_len, "%s: not a Sextant database (not a "
                 "regular file)", path);
        return -EINVAL;
    }
    /* Read-only: the backup can never change the source. It still uses
     * the -shm file beside it, as every WAL reader must. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
            SQLITE_OK) {
        snprintf(err, err_len, "%s: cannot open: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, STORE_BACKUP_BUSY_MS);
    step = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
           SQLITE_OK ? sqlite3_step(st) : SQLITE_ERROR;
    if (step != SQLITE_ROW) {
        if (sqlite3_errcode(db) == SQLITE_NOTADB) {
            rc = -EINVAL;
            snprintf(err, err_len, "%s: not a Sextant database (%s)",
                     path, sqlite3_errmsg(db));
        } else {
            snprintf(err, err_len, "%s: cannot read: %s", path,
                     sqlite3_errmsg(db));
        }
        goto out;
    }
    /* The store sets user_version with its first migration. */
    version = sqlite3_column_int(st, 0);
    if (version <= 0) {
        rc = -EINVAL;
        snprintf(err, err_len, "%s: not a Sextant database "
                 "(user_version %d)", path, version);
        goto out;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        rc = -ENOMEM;
        snprintf(err, err_len, "%s: out of memory", path);
        goto out;
    }
    b->db = db;
    db = NULL;                      /* now b's */
    *out = b;
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int store_backup_write(struct store_backup *b, const char *db_path,
                       const char *tmp, const char *out_path, char *err,
                       size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(b->db, "VACUUM INTO ?1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    else
        snprintf(err, err_len, "%s -> %s: copy failed: %s", db_path,
                 out_path, sqlite3_errmsg(b->db));
    sqlite3_finalize(st);
    return rc;
}

void store_backup_close(struct store_backup *b)
{
    if (!b)
        return;
    sqlite3_close(b->db);
    free(b);
}

int store_backup_check(const char *tmp, const char *out_path, char *err,
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
        snprintf(err, err_len, "%s: cannot check the copy: %s", out_path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    /* One row "ok", or one row per problem: the first says enough. */
    res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0) {
        snprintf(err, err_len, "%s: the copy fails its integrity check: "
                 "%s", out_path, res ? res : "?");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
