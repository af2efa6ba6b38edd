/* store.c -- the store's lifecycle and its queue: options, open, ready,
 * close, submit, stats; the part a second backend would keep as it is
 * (store_priv.h lists the other files and what each holds). The notes
 * below describe the whole store. It does not parse HTTP or protobuf (see
 * server_ingest.c, proto/wire.c); it takes decoded, validated batches
 * (ingest.c also caps every seq at INT64_MAX, which SQLite's integers
 * need).
 *
 * Writer: one thread owns the write connection. Batches wait in a queue
 * (bounded in count and bytes: past it store_submit refuses and agents
 * back off) and are committed in groups: one transaction holds many
 * agents' batches, each inside a savepoint so a batch that fails is rolled
 * back alone, and every batch of the group is answered once the COMMIT is
 * on disk (synchronous=FULL). One fsync then serves many requests.
 * Between groups the writer deletes expired rows in small transactions,
 * so retention never holds the write lock for long.
 *
 * Delivery, per agent (cluster, node, epoch): events are stored whatever
 * their order of arrival, once each (UNIQUE (agent_id, seq), INSERT OR
 * IGNORE), and agents.acked_seq is the highest seq below which nothing is
 * missing any more: stored, or declared lost by a "gap" or "drop" event.
 * The agent drains its backlog newest and oldest in alternation, so holes
 * above the watermark are normal and fill later; only what the batch says
 * the agent no longer has (below Batch.oldest_seq) is declared lost.
 *
 * Schema: strings that repeat (cluster, kind, target, error text) live
 * once in dimension tables; an event row holds their ids. Probe results
 * also feed per cluster, target and minute rollups (count, failures, a
 * log-bucket latency histogram, see hist.h) and hour rollups, updated in
 * the same transaction as the events they count.
 *
 * Health: the writer first runs a time-bounded PRAGMA quick_check. A
 * damaged file (found then, or as SQLITE_CORRUPT / SQLITE_NOTADB by any
 * later read or write) puts the store in a corrupt state for good, which
 * store_stats reports and every submit and failed query answers with
 * -EUCLEAN; a group commit that stores nothing marks commits failing
 * until one stores a batch or, with no batch coming, the idle writer's
 * probe commit succeeds.
 *
 * Read-only (store_open_readonly, for the commands that only query a
 * file; store_open_readonly_with, also a PostgreSQL store): no writer
 * thread and no migration; the read pool only. The commands' incident
 * rebuild (store_incidents_rebuild_with) picks its backend here too. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

/* store_wait_ready's longest deadline, about 100 years: the ns it
 * becomes fit in an int64_t with room to add the monotonic now. */
#define STORE_READY_MAX_MS (100LL * 365 * 24 * 3600 * 1000)

int64_t store_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void store_mono_deadline(struct timespec *ts, int64_t ms)
{
    if (ms > STORE_WAIT_MAX_MS)
        ms = STORE_WAIT_MAX_MS;
    if (ms < 0)
        ms = 0;
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int store_mono_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc;

    if (pthread_condattr_init(&ca) != 0)
        return -ENOMEM;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return -rc;
}

/* rcond and qcond, timed on CLOCK_MONOTONIC (as are the writer's own
 * deadlines, store_writer.c): a wall-clock step (NTP, an operator's date)
 * must neither stall a wait nor cut it short. 0, or -errno and neither
 * exists. */
static int store_conds_init(struct store *st)
{
    int rc = store_mono_cond_init(&st->rcond);

    if (rc == 0) {
        rc = store_mono_cond_init(&st->qcond);
        if (rc < 0)
            pthread_cond_destroy(&st->rcond);
    }
    return rc;
}

/* Enters the corrupt state, once: one log line says what to do. */
void store_set_corrupt(struct store *st, const char *why)
{
    int first;

    pthread_mutex_lock(&st->qlock);
    first = !st->stats.corrupt;
    if (first) {
        st->stats.corrupt = 1;
        snprintf(st->stats.corrupt_reason, sizeof(st->stats.corrupt_reason),
                 "%s", why);
    }
    pthread_mutex_unlock(&st->qlock);
    if (first)
        log_msg(LOGL_ERROR, "store", "database %s is corrupt (%s): ingest "
                "and queries answer 500 until it is replaced; stop the "
                "collector and restore the last backup (sextant-collector "
                "backup, see README)", st->path, why);
}

const double store_commit_seconds_le[STORE_COMMIT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
const double store_group_batches_le[STORE_GROUP_BUCKETS] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256,
};

void store_options_default(struct store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->raw_retention_ms = 14LL * 86400 * 1000;
    o->minute_retention_ms = 90LL * 86400 * 1000;
    o->hour_retention_ms = 400LL * 86400 * 1000;
    o->retention_interval_ms = 60 * 1000;
    o->queue_max_batches = 1024;
    o->queue_max_bytes = 64u << 20;
    o->query_ms = STORE_QUERY_MS;
}

/* A store without connections yet: its locks, options and path. NULL
 * and *rc -ENOMEM when that fails. */
static struct store *store_new(const char *path,
                               const struct store_options *opts, int *rc)
{
    struct store *st;

    *rc = -ENOMEM;
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    pthread_mutex_init(&st->qlock, NULL);
    pthread_mutex_init(&st->rlock, NULL);
    pthread_mutex_init(&st->inc_lock, NULL);
    if (store_conds_init(st) < 0) {
        pthread_mutex_destroy(&st->qlock);
        pthread_mutex_destroy(&st->rlock);
        pthread_mutex_destroy(&st->inc_lock);
        free(st);
        return NULL;
    }
    if (opts)
        st->opt = *opts;
    else
        store_options_default(&st->opt);
    if (st->opt.retention_interval_ms <= 0)
        st->opt.retention_interval_ms = 60 * 1000;
    if (st->opt.query_ms <= 0)
        st->opt.query_ms = STORE_QUERY_MS;
    st->path = strdup(path);
    if (!st->path) {
        store_close(st);
        return NULL;
    }
    return st;
}

int store_open(const char *path, const struct store_options *opts,
               struct store **out)
{
    struct store *st;
    int rc = -EIO;

    st = store_new(path, opts, &rc);
    if (!st)
        return rc;
    st->stats.queue_max_batches = st->opt.queue_max_batches;
    st->stats.queue_max_bytes = st->opt.queue_max_bytes;
    if (st->opt.backend == STORE_BACKEND_POSTGRES) {
        rc = store_pg_open(st);         /* starts its own threads */
        if (rc < 0)
            goto err;
        *out = st;
        return 0;
    }
    rc = -EIO;
    if (store_db_open(st) < 0)
        goto err;
    if (pthread_create(&st->writer, NULL, store_writer, st) != 0) {
        rc = -EAGAIN;
        goto err;
    }
    st->writer_started = 1;
    *out = st;
    return 0;
err:
    store_close(st);
    return rc;
}

/* A store for the read-only commands: no writer, no migration; the
 * schema checked (SQLite's file, or the PostgreSQL database of @opts). */
static int store_open_query(const char *path,
                            const struct store_options *opts,
                            struct store **out)
{
    struct store *st;
    int rc;

    st = store_new(path, opts, &rc);
    if (!st)
        return rc;
    rc = st->opt.backend == STORE_BACKEND_POSTGRES
         ? store_pg_open_tool(st, 1) : store_readonly_check(st);
    if (rc < 0) {
        store_close(st);
        return rc;
    }
    st->ready = 1;              /* no writer: nothing to migrate */
    *out = st;
    return 0;
}

int store_open_readonly(const char *path, struct store **out)
{
    struct stat sb;
    int rc;

    /* A read-only open of a missing file fails with a vaguer reason. */
    if (stat(path, &sb) != 0) {
        rc = -errno;
        log_msg(LOGL_ERROR, "store", "%s: %s", path, strerror(errno));
        return rc;
    }
    store_sqlite_setup();
    return store_open_query(path, NULL, out);
}

int store_open_readonly_with(const char *path,
                             const struct store_options *opts,
                             struct store **out)
{
    if (!opts || opts->backend != STORE_BACKEND_POSTGRES)
        return store_open_readonly(path, out);
    return store_open_query(path, opts, out);
}

int store_incidents_rebuild_with(const char *path,
                                 const struct store_options *opts,
                                 uint64_t *events_out,
                                 uint64_t *incidents_out, char *err,
                                 size_t err_len)
{
    struct store *st;
    int rc;

    if (opts->backend != STORE_BACKEND_POSTGRES)
        return store_incidents_rebuild(path, opts->topo, events_out,
                                       incidents_out, err, err_len);
    st = store_new(path, opts, &rc);
    if (st)
        rc = store_pg_open_tool(st, 0);
    if (rc == 0)
        rc = store_pg_inc_rebuild(st, events_out, incidents_out, err,
                                  err_len);
    else
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
    store_close(st);
    return rc;
}

int store_wait_ready(struct store *st, int64_t timeout_ms)
{
    int64_t until = 0;
    struct timespec ts;
    int rc;

    /* Clamped so that ms -> ns cannot overflow: a longer wait is one
     * without a deadline in all but name. */
    if (timeout_ms > STORE_READY_MAX_MS)
        timeout_ms = STORE_READY_MAX_MS;
    if (timeout_ms > 0)
        until = store_mono_ns() + timeout_ms * 1000000;
    pthread_mutex_lock(&st->qlock);
    while (st->ready == 0) {
        int64_t left_ns, left_ms;

        if (timeout_ms <= 0) {
            pthread_cond_wait(&st->rcond, &st->qlock);
            continue;
        }
        left_ns = until - store_mono_ns();
        if (left_ns <= 0)
            break;
        /* Rounded up: never give up before the deadline. */
        left_ms = (left_ns + 999999) / 1000000;
        store_mono_deadline(&ts, left_ms);
        pthread_cond_timedwait(&st->rcond, &st->qlock, &ts);
    }
    rc = st->ready == 0 ? -ETIMEDOUT : st->ready == 1 ? 0 : st->ready;
    pthread_mutex_unlock(&st->qlock);
    return rc;
}

int store_poll_ready(struct store *st)
{
    int rc;

    pthread_mutex_lock(&st->qlock);
    rc = st->ready;
    pthread_mutex_unlock(&st->qlock);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->writer_started) {
        pthread_mutex_lock(&st->qlock);
        /* Still migrating (a VACUUM can take long): stop it; it rolls
         * back and the next start begins again. */
        if (st->ready == 0 && !st->pg)
            store_db_interrupt(st);
        st->closing = 1;
        pthread_cond_signal(&st->qcond);
        pthread_mutex_unlock(&st->qlock);
        pthread_join(st->writer, NULL);
    }
    if (st->pg) {
        store_pg_close(st);
    } else {
        store_inc_free(st);
        store_db_close(st);
    }
    free(st->samples);
    free(st->now);
    pthread_mutex_destroy(&st->qlock);
    pthread_cond_destroy(&st->qcond);
    pthread_cond_destroy(&st->rcond);
    pthread_mutex_destroy(&st->rlock);
    pthread_mutex_destroy(&st->inc_lock);
    free(st->path);
    free(st);
}

/* Appends @j to the queue unless closing, not ready or full. */
static int store_enqueue(struct store *st, struct store_job *j)
{
    int rc = 0;

    pthread_mutex_lock(&st->qlock);
    if (st->closing) {
        rc = -ESHUTDOWN;
    } else if (st->stats.corrupt) {
        rc = -EUCLEAN;
    } else if (st->ready != 1 || st->stats.unavailable) {
        rc = -EAGAIN;
    } else if (j->type == JOB_BATCH && st->q_batches > 0 &&
               (st->q_batches >= st->opt.queue_max_batches ||
                st->q_bytes + j->cost > st->opt.queue_max_bytes)) {
        st->stats.overloaded = 1;       /* cleared when half drained */
        rc = -EAGAIN;
    } else {
        if (st->tail)
            st->tail->next = j;
        else
            st->head = j;
        st->tail = j;
        if (j->type == JOB_BATCH) {
            st->q_batches++;
            st->q_bytes += j->cost;
        }
        pthread_cond_signal(&st->qcond);
    }
    pthread_mutex_unlock(&st->qlock);
    return rc;
}

/* Queues a new job: 0, or -errno and nothing queued. */
static int store_submit_job(struct store *st, enum store_job_type type,
                            const Sextant__V1__Batch *b, int64_t recv_ms,
                            size_t cost, store_done_fn done, void *ctx)
{
    struct store_job *j = calloc(1, sizeof(*j));
    int rc;

    if (!j)
        return -ENOMEM;
    j->type = type;
    j->b = b;
    j->recv_ms = recv_ms;
    j->cost = cost;
    j->done = done;
    j->ctx = ctx;
    rc = store_enqueue(st, j);
    if (rc < 0)
        free(j);
    return rc;
}

int store_submit(struct store *st, const Sextant__V1__Batch *b,
                 int64_t recv_ms, size_t cost, store_done_fn done,
                 void *ctx)
{
    return store_submit_job(st, JOB_BATCH, b, recv_ms, cost, done, ctx);
}

int store_submit_annotate(struct store *st, store_done_fn done, void *ctx)
{
    return store_submit_job(st, JOB_ANNOTATE, NULL, 0, 0, done, ctx);
}

int store_submit_retention(struct store *st, int64_t now_ms,
                           store_done_fn done, void *ctx)
{
    return store_submit_job(st, JOB_RETENTION, NULL, now_ms, 0, done, ctx);
}

void store_stats(struct store *st, struct store_stats *out)
{
    int ready;

    pthread_mutex_lock(&st->qlock);
    *out = st->stats;
    ready = st->ready == 1;
    out->leader = st->pg ? st->pg->leader : -1;
    out->queue_batches = st->q_batches;
    out->queue_bytes = st->q_bytes;
    /* Over the mark, or refused a batch and not yet half drained: what
     * makes store_submit refuse. */
    out->overloaded = st->stats.overloaded ||
                      st->q_batches >= st->opt.queue_max_batches ||
                      st->q_bytes >= st->opt.queue_max_bytes;
    pthread_mutex_unlock(&st->qlock);
    /* PostgreSQL's files are the server's, not ours to measure. */
    out->db_bytes = st->pg ? 0 : store_db_bytes(st);
    /* st->inc is set before ready (under qlock) and kept until close. */
    if (ready) {
        out->incident_replays = store_inc_replays(st);
        out->incident_recoveries = store_inc_recoveries(st);
    }
}
void store_corrupt_detail(struct store *st, char *buf, size_t len)
{
    pthread_mutex_lock(&st->qlock);
    snprintf(buf, len, "database file damaged (%s): restore it from a "
             "backup", st->stats.corrupt_reason);
    pthread_mutex_unlock(&st->qlock);
}
