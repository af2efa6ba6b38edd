/* store_retention.c -- deleting expired events, rollups and unused texts
 * in small transactions, then giving the freed pages back (incremental
 * vacuum), one step at a time between group commits. */
#include "store_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>

/* Retention deletes at most this many rows per transaction, then lets
 * queued batches in; vacuum frees this many pages per step. */
#define STORE_DELETE_ROWS    2000
#define STORE_VACUUM_PAGES   512         /* a plain literal: see STORE_STR */

/* Runs the bound delete @d in a transaction of its own and counts what
 * it deleted: rows, or -EIO. */
static int store_delete_txn(struct store *st, sqlite3_stmt *d)
{
    int n;

    if (store_step_done(st->begin) < 0) {
        sqlite3_clear_bindings(d);
        return -EIO;
    }
    if (store_step_done(d) < 0) {
        store_step_done(st->rollback);
        return -EIO;
    }
    n = sqlite3_changes(st->wdb);
    if (store_step_done(st->commit) < 0) {
        store_step_done(st->rollback);
        return -EIO;
    }
    pthread_mutex_lock(&st->qlock);
    st->stats.retention_deleted += (uint64_t)n;
    pthread_mutex_unlock(&st->qlock);
    return n;
}

/* Starts a retention pass at @now_ms, or ends it (0). */
void store_retention_reset(struct store *st, int64_t now_ms)
{
    st->retention_now_ms = now_ms;
    st->retention_done = 0;
    st->retention_free_pages = 0;
    st->retention_text_id = 0;
}

/* Deletes the texts no event uses any more (their events expired), a
 * window of STORE_DELETE_ROWS texts after st->retention_text_id at a
 * time, so a step stays small however many texts there are. 1: more to
 * look at; 0: all looked at; -EIO. */
static int store_texts_step(struct store *st)
{
    sqlite3_stmt *w = st->texts_window, *d = st->texts_expire;
    int64_t end;
    int n, step;

    if (sqlite3_bind_int64(w, 1, st->retention_text_id) != SQLITE_OK ||
        sqlite3_bind_int(w, 2, STORE_DELETE_ROWS) != SQLITE_OK)
        return -EIO;
    step = sqlite3_step(w);
    end = 0;
    if (step == SQLITE_ROW) {
        if (sqlite3_column_type(w, 0) == SQLITE_NULL)
            step = SQLITE_DONE;         /* no texts past the window */
        else
            end = sqlite3_column_int64(w, 0);
    }
    sqlite3_reset(w);
    sqlite3_clear_bindings(w);
    if (step == SQLITE_DONE) {
        st->retention_text_id = 0;
        return 0;
    }
    if (step != SQLITE_ROW ||
        sqlite3_bind_int64(d, 1, st->retention_text_id) != SQLITE_OK ||
        sqlite3_bind_int64(d, 2, end) != SQLITE_OK)
        return -EIO;
    n = store_delete_txn(st, d);
    if (n < 0)
        return n;
    if (n > 0)                  /* cached ids may be gone */
        store_dim_reset(&st->dims[DIM_TEXT]);
    st->retention_text_id = end;
    return 1;
}

/* One step of the retention pass under way (st->retention_now_ms): one
 * small delete transaction, or one incremental vacuum step. 1: more to
 * do; 0: the pass is over; -EIO. */
int store_retention_step(struct store *st)
{
    struct {
        sqlite3_stmt *s;
        int64_t keep_ms;
    } t[3] = {
        { st->events_expire, st->opt.raw_retention_ms },
        { st->minute.expire, st->opt.minute_retention_ms },
        { st->hour.expire, st->opt.hour_retention_ms },
    };
    int64_t free_pages;

    for (int i = 0; i < 3; i++) {
        int n;

        if (t[i].keep_ms <= 0 || (st->retention_done & (1 << i)))
            continue;
        if (sqlite3_bind_int64(t[i].s, 1,
                               st->retention_now_ms - t[i].keep_ms) !=
                SQLITE_OK ||
            sqlite3_bind_int(t[i].s, 2, STORE_DELETE_ROWS) != SQLITE_OK)
            return -EIO;
        n = store_delete_txn(st, t[i].s);
        if (n < 0)
            return n;
        if (n < STORE_DELETE_ROWS)      /* nothing older left there */
            st->retention_done |= 1 << i;
        return 1;
    }
    if (st->opt.raw_retention_ms > 0 && !(st->retention_done & (1 << 3))) {
        int rc = store_texts_step(st);

        if (rc <= 0)
            st->retention_done |= 1 << 3;
        if (rc < 0)
            return rc;
        return 1;
    }
    if (store_pragma_int(st->wdb, "PRAGMA freelist_count", &free_pages) < 0)
        return -EIO;
    /* Stops when nothing is free, or when a step freed nothing (a file
     * that is not in incremental mode: never loop on it). */
    if (free_pages > 0 && free_pages != st->retention_free_pages) {
        st->retention_free_pages = free_pages;
        return store_exec(st->wdb, "PRAGMA incremental_vacuum("
                          STORE_STR(STORE_VACUUM_PAGES) ")") < 0 ? -EIO : 1;
    }
    store_retention_reset(st, 0);
    return 0;
}
