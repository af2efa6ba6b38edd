/* backup.c -- a consistent online copy of the collector's database: the
 * file side (a temporary file beside the copy, removed on failure or on a
 * fatal signal, fsync, rename into place, fsync of the folder). The
 * database side (open and check the source, copy one snapshot, check the
 * copy) is the store's, see store_backup_open(). Does not parse arguments
 * or print: main.c does. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

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
    struct store_backup *src = NULL;
    int fd, rc;

    rc = store_backup_open(db_path, &src, err, err_len);
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

    rc = store_backup_write(src, db_path, backup_tmp, out_path, err,
                            err_len);
    store_backup_close(src);        /* ends the snapshot */
    src = NULL;
    if (rc == 0)
        rc = backup_sync(backup_tmp, bytes, err, err_len);
    if (rc == 0)
        rc = store_backup_check(backup_tmp, out_path, err, err_len);
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
    store_backup_close(src);
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
