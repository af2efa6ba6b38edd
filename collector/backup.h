/* backup.h -- a consistent copy of a Sextant database, taken online while a
 * collector keeps writing to it (sextant-collector backup). Knows nothing
 * of the store's tables: it copies whatever the file holds. */
#ifndef SEXTANT_BACKUP_H
#define SEXTANT_BACKUP_H

#include <stddef.h>
#include <stdint.h>

struct backup_result {
    int64_t bytes;              /* size of the copy */
    int64_t duration_us;        /* from opening the source to the rename */
};

/* Copies the database at @db_path (opened read-only; a collector may be
 * writing to it) to the new file @out_path: VACUUM INTO a temporary file
 * beside it, fsync, PRAGMA integrity_check on the copy, rename into place
 * (never over an existing file) and fsync the folder. The copy is one
 * snapshot: every transaction committed before the copy began, none that
 * committed after. On any failure the temporary file is removed and
 * @out_path not created. While it runs, SIGINT, SIGTERM and SIGHUP also
 * remove the temporary file before the process dies of them. 0 and *res,
 * or -errno with one line in @err naming the file and the reason:
 * -EEXIST @out_path exists, -ENOENT @db_path does not, -EINVAL @db_path is
 * not a Sextant database (no SQLite file, or user_version 0), -EIO SQLite
 * failed or the copy is damaged, or the errno of a failed file call. */
int backup_run(const char *db_path, const char *out_path,
               struct backup_result *res, char *err, size_t err_len);

#endif
