/* store_writer.c -- the writer thread: takes groups of queued batches and
 * commits each group in one transaction (a savepoint per batch), answers
 * them, probes the disk while commits fail, and runs retention and the
 * incident engine's steps (store_incident.c) between groups. */
#include "store_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* A group commit takes queued batches until it holds this many events or
 * batches: big enough that one fsync serves many agents, small enough
 * that the first of them is not kept waiting for long. */
#define STORE_GROUP_EVENTS   20000u
#define STORE_GROUP_BATCHES  512u

/* While commits fail and no batch comes to show they work again (an
 * unready collector gets none behind a readiness probe), the idle writer
 * tries a real commit this often. It inserts and deletes a text of
 * STORE_PROBE_BYTES random bytes (hex: twice that), so the commit writes
 * new pages to the WAL as a batch does; rewriting one page in place could
 * succeed on a full disk while every batch fails. */
#define STORE_PROBE_MS        1000
#define STORE_PROBE_BYTES     4096

/* The writer's deadlines (retention_next_ms, probe_next_ms) are in these
 * monotonic ms; wall time only sets retention's cutoff. */
static int64_t store_mono_ms(void)
{
    return store_mono_ns() / 1000000;
}

/* Notes the writer's last error for the group: its message in @why (the
 * first only), and the corrupt state if it says the file is damaged. */
static void store_group_error(struct store *st, char *why, size_t len)
{
    if (!why[0])
        snprintf(why, len, "%s", sqlite3_errmsg(st->wdb));
    store_check_corrupt(st, st->wdb);
}

/* Commits @jobs (batches only) in one transaction, each batch in its own
 * savepoint, then answers each. */
static void store_group(struct store *st, struct store_job *jobs)
{
    int64_t t0 = store_mono_ns();
    size_t n = 0, inc_mark = store_inc_mark(st);
    char why[128] = "";         /* the group's first database error */
    double secs;
    int rc;

    rc = store_step_done(st->begin);
    if (rc < 0)
        store_group_error(st, why, sizeof(why));
    for (struct store_job *j = jobs; j; j = j->next) {
        size_t mark = st->n_samples, inc_batch = store_inc_mark(st);
        size_t now_mark = st->n_now;

        n++;
        j->rc = rc < 0 ? -EIO : store_step_done(st->sp_begin);
        if (j->rc == 0)
            j->rc = store_ingest_locked(st, j->b, j->recv_ms, &j->acked);
        if (j->rc < 0 && rc == 0) {
            if (j->rc == -EIO)          /* not a bad field of the batch */
                store_group_error(st, why, sizeof(why));
            /* This batch alone is undone; the group goes on. */
            st->n_samples = mark;
            st->n_now = now_mark;
            store_inc_undo(st, inc_batch);
            store_dims_reset(st);
            if (store_step_done(st->sp_rollback) < 0)
                rc = -EIO;
            j->rc = -EIO;
        }
        if (rc == 0 && store_step_done(st->sp_release) < 0)
            rc = -EIO;
    }
    if (rc == 0)
        rc = store_now_flush(st);       /* before COMMIT: same txn */
    if (rc == 0)
        rc = store_rollups_flush(st, util_now_ms());
    if (rc == 0)
        rc = store_step_done(st->commit);
    if (rc < 0) {
        store_group_error(st, why, sizeof(why));
        if (!sqlite3_get_autocommit(st->wdb))
            store_step_done(st->rollback);
        store_dims_reset(st);
        st->n_samples = 0;
        st->n_now = 0;
        store_inc_undo(st, inc_mark);
        for (struct store_job *j = jobs; j; j = j->next)
            j->rc = -EIO;
        log_msg(LOGL_ERROR, "store", "group commit of %zu batches failed", n);
    }
    secs = (double)(store_mono_ns() - t0) / 1e9;
    store_group_finish(st, jobs, rc, why, secs);
}

void store_group_finish(struct store *st, struct store_job *jobs, int rc,
                        const char *why, double secs)
{
    size_t n = 0, bytes = 0, stored = 0;
    int corrupt;

    for (struct store_job *j = jobs; j; j = j->next) {
        n++;
        bytes += j->cost;
        stored += j->rc == 0;
    }

    pthread_mutex_lock(&st->qlock);
    corrupt = st->stats.corrupt;
    /* Disk full fails the COMMIT, or every batch's savepoint when a big
     * group spills its page cache: either way nothing was stored. */
    if (stored > 0) {
        st->stats.commits_failing = 0;
    } else if (why[0]) {
        st->stats.commits_failing = 1;
        snprintf(st->stats.commit_error, sizeof(st->stats.commit_error),
                 "%s", why);
        st->probe_next_ms = store_mono_ms() + STORE_PROBE_MS;
    }
    st->q_batches -= n;
    st->q_bytes -= bytes;
    if (st->stats.overloaded && st->q_batches <= st->opt.queue_max_batches / 2
        && st->q_bytes <= st->opt.queue_max_bytes / 2)
        st->stats.overloaded = 0;
    if (rc == 0) {
        st->stats.commits++;
        for (int i = 0; i < STORE_COMMIT_BUCKETS; i++)
            if (secs <= store_commit_seconds_le[i])
                st->stats.commit_seconds_le[i]++;
        st->stats.commit_seconds_le[STORE_COMMIT_BUCKETS]++;
        st->stats.commit_seconds_sum += secs;
        for (int i = 0; i < STORE_GROUP_BUCKETS; i++)
            if ((double)n <= store_group_batches_le[i])
                st->stats.group_batches_le[i]++;
        st->stats.group_batches_le[STORE_GROUP_BUCKETS]++;
        st->stats.group_batches_sum += n;
    } else {
        st->stats.commit_failures++;
    }
    pthread_mutex_unlock(&st->qlock);

    while (jobs) {
        struct store_job *j = jobs;

        jobs = j->next;
        if (j->rc < 0 && corrupt)
            j->rc = -EUCLEAN;
        j->done(j->ctx, j->rc, j->rc == 0 ? j->acked : 0);
        free(j);
    }
}

/* Steps @s (no rows) for the probe: unlike store_step_done it does not
 * log, as a failing probe repeats every STORE_PROBE_MS. */
static int store_probe_step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* While commits fail and the queue is empty: one real commit that writes
 * new pages (see STORE_PROBE_BYTES) and leaves the data as it was. Its
 * success clears commits failing, so /readyz recovers without ingest; its
 * failure keeps the state with SQLite's newest message. A held write lock
 * fails it after the busy timeout, as it would a batch. */
static void store_probe(struct store *st)
{
    char why[128] = "";
    int rc;

    rc = store_probe_step(st->begin);
    if (rc == 0 &&
        sqlite3_bind_int(st->probe_ins, 1, STORE_PROBE_BYTES) != SQLITE_OK)
        rc = -EIO;
    if (rc == 0)
        rc = store_probe_step(st->probe_ins);
    if (rc == 0 &&
        sqlite3_bind_int64(st->probe_del, 1,
                           sqlite3_last_insert_rowid(st->wdb)) != SQLITE_OK)
        rc = -EIO;
    if (rc == 0)
        rc = store_probe_step(st->probe_del);
    if (rc == 0)
        rc = store_probe_step(st->commit);
    if (rc < 0) {
        store_group_error(st, why, sizeof(why));
        if (!sqlite3_get_autocommit(st->wdb))
            store_probe_step(st->rollback);
    }
    pthread_mutex_lock(&st->qlock);
    if (rc == 0 && st->stats.commits_failing) {
        st->stats.commits_failing = 0;
        log_msg(LOGL_INFO, "store", "a probe commit succeeded: commits "
                "work again");
    } else if (rc < 0 && why[0]) {
        snprintf(st->stats.commit_error, sizeof(st->stats.commit_error),
                 "%s", why);
    }
    pthread_mutex_unlock(&st->qlock);
    st->probe_next_ms = store_mono_ms() + STORE_PROBE_MS;
}

/* Runs a whole retention pass at job->recv_ms, then answers the job. */
static void store_retention_job(struct store *st, struct store_job *j)
{
    int rc;

    store_retention_reset(st, j->recv_ms);
    while ((rc = store_retention_step(st)) > 0)
        ;
    store_retention_reset(st, 0);
    j->done(j->ctx, rc, 0);
    free(j);
}

/* Takes the next group off the queue: batches up to the group limits, or
 * one retention job alone. Under qlock. */
struct store_job *store_take(struct store *st)
{
    struct store_job *first = st->head, *last = first;
    size_t batches = 1, events = first->b ? first->b->n_events : 0;

    if (first->type == JOB_BATCH) {
        while (last->next && last->next->type == JOB_BATCH &&
               batches < STORE_GROUP_BATCHES &&
               events + last->next->b->n_events <= STORE_GROUP_EVENTS) {
            last = last->next;
            batches++;
            events += last->b->n_events;
        }
    }
    st->head = last->next;
    if (!st->head)
        st->tail = NULL;
    last->next = NULL;
    return first;
}

/* Starts a retention pass when one is due, or goes on with the one under
 * way, by one step. @now (wall clock) is a new pass's cutoff; @mono
 * (monotonic ms) times the next pass. */
static void store_retention_tick(struct store *st, int64_t now, int64_t mono)
{
    int rc;

    if (!st->retention_now_ms) {
        if (st->opt.raw_retention_ms <= 0 &&
            st->opt.minute_retention_ms <= 0 &&
            st->opt.hour_retention_ms <= 0) {
            st->retention_next_ms = INT64_MAX / 2;  /* keep everything */
            return;
        }
        store_retention_reset(st, now);
    }
    rc = store_retention_step(st);
    if (rc > 0)
        return;
    if (rc < 0 && !store_check_corrupt(st, st->wdb))
        log_msg(LOGL_ERROR, "store", "retention step failed; retrying in "
                "%lld ms", (long long)st->opt.retention_interval_ms);
    store_retention_reset(st, 0);
    st->retention_next_ms = mono + st->opt.retention_interval_ms;
}

void *store_writer(void *arg)
{
    struct store *st = arg;
    int rc, corrupt;

    rc = store_setup(st);
    if (rc == 0)
        rc = store_inc_open(st);        /* rebuilt beside ingest */
    if (rc < 0 && rc != -EUCLEAN && store_check_corrupt(st, st->wdb))
        rc = -EUCLEAN;
    pthread_mutex_lock(&st->qlock);
    st->ready = rc < 0 ? rc : 1;
    st->stats.ready = rc == 0;
    pthread_cond_broadcast(&st->rcond);
    pthread_mutex_unlock(&st->qlock);
    if (rc < 0)
        return NULL;
    /* The first pass after one interval: a collector that restarts
     * does not hold up its first batches with deletes. */
    st->retention_next_ms = store_mono_ms() + st->opt.retention_interval_ms;
    for (;;) {
        struct store_job *jobs = NULL;
        int64_t mono = store_mono_ms(), wake;
        int probe = 0, tick;

        pthread_mutex_lock(&st->qlock);
        for (;;) {
            struct timespec ts;

            probe = st->stats.commits_failing && !st->stats.corrupt;
            if (st->head || st->closing || st->retention_now_ms ||
                mono >= st->retention_next_ms ||
                mono >= store_inc_due(st) ||
                (probe && mono >= st->probe_next_ms))
                break;
            wake = st->retention_next_ms;
            if (store_inc_due(st) < wake)
                wake = store_inc_due(st);
            if (probe && st->probe_next_ms < wake)
                wake = st->probe_next_ms;
            /* Both deadlines and the wait run on the monotonic clock: a
             * wall-clock step back must not hold up retention or the
             * probe. */
            store_mono_deadline(&ts, wake - mono);
            pthread_cond_timedwait(&st->qcond, &st->qlock, &ts);
            mono = store_mono_ms();
        }
        if (st->head) {
            jobs = store_take(st);
        } else if (st->closing) {
            pthread_mutex_unlock(&st->qlock);
            break;
        }
        /* Only an idle writer probes: a batch in the queue proves or
         * disproves commits by itself. */
        probe = probe && !jobs && mono >= st->probe_next_ms;
        pthread_mutex_unlock(&st->qlock);

        /* After a group (its events may open or end incidents), or when
         * due: the engine moves on without events too. */
        tick = (jobs && jobs->type == JOB_BATCH) ||
               mono >= store_inc_due(st);
        if (probe)
            store_probe(st);
        else if (jobs && jobs->type == JOB_RETENTION)
            store_retention_job(st, jobs);
        else if (jobs && jobs->type == JOB_ANNOTATE)
            store_inc_annotate_job(st, jobs);
        else if (jobs)
            store_group(st, jobs);      /* answers its batches */
        if (tick)
            store_inc_tick(st);
        store_checkpoint(st);
        /* One retention step between groups: ingest waits for at most one
         * small delete, even when the queue never empties. Not on a
         * damaged file: it would only fail again. */
        pthread_mutex_lock(&st->qlock);
        corrupt = st->stats.corrupt;
        pthread_mutex_unlock(&st->qlock);
        if (corrupt)
            st->retention_next_ms = INT64_MAX / 2;
        else if (st->retention_now_ms || mono >= st->retention_next_ms)
            store_retention_tick(st, util_now_ms(), mono);
    }
    return NULL;
}
