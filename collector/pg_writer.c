/* pg_writer.c -- the PostgreSQL backend's writer thread: connects (and
 * reconnects, with stats.unavailable while it cannot), migrates, then
 * takes groups of queued batches off the neutral queue and commits each
 * group in one transaction, a savepoint per batch, answering every batch
 * only after COMMIT (store_group_finish). Before the transaction, in
 * short autocommit statements, it makes the day partitions the group's
 * events need and interns the group's strings, so that the transaction
 * holds no lock on them. Inside, batches go in (cluster, node, epoch)
 * order: two collectors lock agent rows (pg_ingest.c) in the same order,
 * and a deadlock or serialization failure runs the group again. The
 * exactly-once argument: docs/design.md "Scaling out". */
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "store_priv.h"
#include "util.h"
#include "wire.h"

/* A group that meets a deadlock, a serialization failure or a missing
 * partition runs again, this many times in all. */
#define PG_GROUP_TRIES      5
/* The texts' id cache starts over this often: retention deletes texts
 * unused for an hour, and an id is refreshed whenever it is interned. */
#define PG_TEXT_CACHE_MS    (10 * 60 * 1000LL)
#define PG_FIELDS_BYTES     (1u << 20)      /* as store_delivery.c's */
#define PG_MS_MIN           946684800000LL  /* 2000-01-01 */
#define PG_MS_MAX           4102444800000LL /* 2100-01-01 */

static int64_t pg_mono_ms(void)
{
    return store_mono_ns() / 1000000;
}

/* Sets or clears the unreachable state, under qlock. */
static void pg_unavailable(struct store *st, int on, const char *why)
{
    pthread_mutex_lock(&st->qlock);
    if (on) {
        if (!st->stats.unavailable)
            log_msg(LOGL_ERROR, "store", "database unreachable: %s; "
                    "retrying every %d ms", why, PG_RECONNECT_MS);
        st->stats.unavailable = 1;
        st->stats.commits_failing = 1;
        snprintf(st->stats.commit_error, sizeof(st->stats.commit_error),
                 "database unreachable: %.220s", why);
    } else if (st->stats.unavailable) {
        st->stats.unavailable = 0;
        st->stats.commits_failing = 0;
        st->stats.commit_error[0] = '\0';
        log_msg(LOGL_INFO, "store", "database reachable again");
    }
    pthread_mutex_unlock(&st->qlock);
}

/* One try at a connection: 0, or -EIO with the state unavailable. */
static int pg_reconnect(struct store *st)
{
    char err[224];

    st->pg->wconn = pg_connect(st, 0, err, sizeof(err));
    if (!st->pg->wconn) {
        pg_unavailable(st, 1, err);
        return -EIO;
    }
    return 0;
}

/* The lost connection: closed, the caches of ids made in rolled-back
 * transactions emptied, the state unavailable with @why. */
static void pg_lost(struct store *st, const char *msg)
{
    char why[200];

    snprintf(why, sizeof(why), "%s", msg && msg[0] ? msg : "connection lost");
    why[strcspn(why, "\n")] = '\0';
    PQfinish(st->pg->wconn);
    st->pg->wconn = NULL;
    store_dims_reset(st);
    pg_unavailable(st, 1, why);
}

/* ---- before the transaction: partitions and strings ---- */

static int pg_day_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Days (their first ms) the group's rows may fall on: each event's, and
 * where a gap or drop event may go. A batch's days are only those its
 * events name, however far apart. */
struct pg_days {
    int64_t *d;
    size_t n, cap;
};

static int pg_days_add(struct pg_days *days, int64_t ms)
{
    int64_t day;

    if (ms < PG_MS_MIN || ms > PG_MS_MAX)
        return 0;
    day = ms - ms % PG_DAY_MS;
    if (days->n > 0 && days->d[days->n - 1] == day)
        return 0;
    if (store_inc_grow(&days->d, &days->cap, days->n, sizeof(*days->d),
                       64) < 0)
        return -ENOMEM;
    days->d[days->n++] = day;
    return 0;
}

static int pg_batch_days(struct pg_days *days, const Sextant__V1__Batch *b,
                         int64_t recv_ms)
{
    int rc = 0;

    for (size_t i = 0; i < b->n_events && rc == 0; i++)
        rc = pg_days_add(days, b->events[i]->unix_ms);
    if (rc == 0)
        rc = pg_days_add(days, b->sent_unix_ms);
    if (rc == 0)
        rc = pg_days_add(days, recv_ms);
    if (rc == 0 && b->drops) {
        rc = pg_days_add(days, b->drops->first_unix_ms);
        if (rc == 0)
            rc = pg_days_add(days, b->drops->last_unix_ms);
    }
    return rc;
}

/* Interns @ev's strings outside any transaction. A string the database
 * refuses is skipped here: its batch fails alone, inside. */
static int pg_intern_event(struct store *st, const Sextant__V1__Event *ev)
{
    struct store_event_row e = { .kind = wire_event_kind(ev) };
    struct store_event_ids ids;
    struct jsonw w;
    int rc;

    jsonw_init(&w, PG_FIELDS_BYTES);
    rc = store_event_fields(ev, &w, &e);
    if (rc == 0)
        store_event_intern(st, &e, pg_intern, &ids);
    jsonw_free(&w);
    return rc;
}

/* Batches in (cluster, node, epoch) order, one agent's in queue order. */
struct pg_item {
    struct store_job *j;
    size_t ord;
};

/* The group's partitions and strings, in autocommit: 0, or -EIO when the
 * connection failed (w->err says). */
static int pg_prepare(struct store *st, const struct pg_item *v, size_t n)
{
    struct pg_wstate *w = st->pg->w;
    struct pg_days days = { 0 };
    int64_t id;
    int rc = 0;

    if (pg_mono_ms() - w->texts_since_ms > PG_TEXT_CACHE_MS) {
        store_dim_reset(&st->dims[DIM_TEXT]);
        w->texts_since_ms = pg_mono_ms();
    }
    pg_intern(st, DIM_KIND, "gap", &id);
    pg_intern(st, DIM_KIND, "drop", &id);
    for (size_t i = 0; i < n && w->err != PG_ERR_CONN; i++) {
        const Sextant__V1__Batch *b = v[i].j->b;

        pg_intern(st, DIM_CLUSTER, b->cluster, &id);
        for (size_t k = 0; k < b->n_events && w->err != PG_ERR_CONN; k++)
            pg_intern_event(st, b->events[k]);
        if (pg_batch_days(&days, b, v[i].j->recv_ms) < 0)
            rc = -ENOMEM;
    }
    if (w->nopart_ms != INT64_MIN && rc == 0)
        rc = pg_days_add(&days, w->nopart_ms);
    if (days.n > 1)
        qsort(days.d, days.n, sizeof(*days.d), pg_day_cmp);
    for (size_t i = 0; i < days.n && rc == 0 && w->err != PG_ERR_CONN; i++)
        if ((i == 0 || days.d[i] != days.d[i - 1]) &&
            pg_partitions_ensure(st, st->pg->wconn, days.d[i],
                                 days.d[i]) < 0 &&
            PQstatus(st->pg->wconn) != CONNECTION_OK)
            pg_w_fail(st, NULL, "partitions");
    free(days.d);
    if (w->err == PG_ERR_CONN)
        return -EIO;
    w->err = PG_ERR_NONE;       /* a refused string fails its batch later */
    w->why[0] = '\0';
    return rc;
}

/* ---- the group transaction ---- */

static int pg_item_cmp(const void *pa, const void *pb)
{
    const struct pg_item *a = pa, *b = pb;
    const Sextant__V1__Batch *x = a->j->b, *y = b->j->b;
    int c = strcmp(x->cluster, y->cluster);

    if (c == 0)
        c = strcmp(x->node, y->node);
    if (c == 0 && x->epoch != y->epoch)
        c = x->epoch < y->epoch ? -1 : 1;
    if (c == 0)
        c = a->ord < b->ord ? -1 : a->ord > b->ord;
    return c;
}

/* Runs @sql on the writer connection: 0 or -EIO, noted. */
static int pg_w_exec(struct store *st, const char *sql)
{
    PGresult *r = pg_query(st->pg->wconn, sql, NULL);
    int rc = pg_ok(r) ? 0 : -EIO;

    if (rc < 0)
        pg_w_fail(st, r, sql);
    PQclear(r);
    return rc;
}

/* The group's errors that end the whole transaction, not one batch. */
static int pg_fatal(const struct pg_wstate *w)
{
    return w->err == PG_ERR_CONN || w->err == PG_ERR_RETRY || w->nopart;
}

/* One batch in its savepoint: its rc in j->rc. -EIO when the whole
 * group must end (pg_fatal). */
static int pg_batch(struct store *st, struct store_job *j)
{
    struct pg_wstate *w = st->pg->w;
    size_t mark = st->n_samples, now_mark = st->n_now;

    if (pg_w_exec(st, "SAVEPOINT batch") < 0)
        return -EIO;
    w->copy_len = 0;
    j->rc = store_deliver(st, &pg_delivery_ops, j->b, j->recv_ms, &j->acked);
    if (j->rc == 0)
        j->rc = pg_copy_flush(st);
    if (j->rc == 0)
        return pg_w_exec(st, "RELEASE batch");
    if (pg_fatal(w))
        return -EIO;
    /* This batch alone is undone; the group goes on. */
    st->n_samples = mark;
    st->n_now = now_mark;
    store_dims_reset(st);
    j->rc = -EIO;
    w->err = PG_ERR_NONE;       /* its message stays the group's why */
    return pg_w_exec(st, "ROLLBACK TO batch");
}

/* One try of the whole group: 0 committed, -EIO (w->err says why). */
static int pg_try(struct store *st, struct pg_item *v, size_t n)
{
    char fence[96];
    int rc;

    snprintf(fence, sizeof(fence),
             "SELECT pg_advisory_xact_lock_shared(%lld)", PG_LOCK_FENCE);
    st->n_samples = 0;
    st->n_now = 0;
    rc = pg_w_exec(st, "BEGIN");
    if (rc == 0)
        rc = pg_w_exec(st, fence);      /* before any event id is drawn */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = pg_batch(st, v[i].j);
    if (rc == 0)
        rc = store_rollups_merge(st, util_now_ms(), pg_rollup_add);
    if (rc == 0)
        rc = store_now_merge(st, pg_now_put);
    if (rc == 0)
        rc = pg_group_flush(st);
    if (rc == 0)
        rc = pg_w_exec(st, "COMMIT");
    if (rc < 0) {
        PGTransactionStatusType ts = PQtransactionStatus(st->pg->wconn);

        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
            pg_exec(st->pg->wconn, "ROLLBACK");
        store_dims_reset(st);
        st->n_samples = 0;
        st->n_now = 0;
        pg_group_drop(st->pg->w, 0);
        if (st->pg->w->err == PG_ERR_NONE)  /* out of memory, say */
            pg_w_fail(st, NULL, "group commit");
    }
    return rc;
}

/* Commits @jobs (batches only), then answers each. */
static void pg_group(struct store *st, struct store_job *jobs)
{
    struct pg_wstate *w = st->pg->w;
    int64_t t0 = store_mono_ns();
    struct pg_item *v;
    size_t n = 0;
    char why[320] = "";
    int rc = -ENOMEM, lost = 0;

    for (struct store_job *j = jobs; j; j = j->next)
        n++;
    v = calloc(n, sizeof(*v));
    if (v) {
        n = 0;
        for (struct store_job *j = jobs; j; j = j->next, n++)
            v[n] = (struct pg_item){ j, n };
        qsort(v, n, sizeof(*v), pg_item_cmp);
    }
    w->nopart_ms = INT64_MIN;
    for (int t = 0; v && t < PG_GROUP_TRIES; t++) {
        w->err = PG_ERR_NONE;
        w->nopart = 0;
        w->why[0] = '\0';
        rc = pg_prepare(st, v, n);
        if (rc == 0)
            rc = pg_try(st, v, n);
        if (rc == 0 || w->err == PG_ERR_CONN ||
            (w->err != PG_ERR_RETRY && !w->nopart))
            break;
        if (w->nopart)
            pg_partitions_forget(st);
        log_msg(LOGL_WARN, "store", "group commit of %zu batches runs "
                "again: %s", n, w->why);
    }
    if (w->why[0])
        snprintf(why, sizeof(why), "%s%s", w->err == PG_ERR_CONN
                 ? "database unreachable: " : "", w->why);
    lost = rc < 0 && w->err == PG_ERR_CONN;
    for (struct store_job *j = jobs; j && rc < 0; j = j->next)
        j->rc = -EIO;
    if (rc < 0)
        log_msg(LOGL_ERROR, "store", "group commit of %zu batches failed",
                n);
    free(v);
    if (lost)
        pg_lost(st, w->why);
    store_group_finish(st, jobs, rc < 0 ? -EIO : 0, why,
                       (double)(store_mono_ns() - t0) / 1e9);
}

/* ---- the thread ---- */

/* Answers every queued job -EIO while the database cannot be reached:
 * the agents get 503 and retry, nothing waits on a dead connection. */
static void pg_refuse_queued(struct store *st)
{
    struct store_job *jobs;
    char why[sizeof(st->stats.commit_error)];

    pthread_mutex_lock(&st->qlock);
    jobs = st->head;
    st->head = st->tail = NULL;
    snprintf(why, sizeof(why), "%s", st->stats.commit_error);
    pthread_mutex_unlock(&st->qlock);
    while (jobs) {
        struct store_job *j = jobs, *batches = NULL, **tail = &batches;

        jobs = j->next;
        j->next = NULL;
        j->rc = -EIO;
        if (j->type != JOB_BATCH) {
            j->done(j->ctx, -EIO, 0);
            free(j);
            continue;
        }
        *tail = j;
        store_group_finish(st, batches, -EIO, why, 0);
    }
}

/* Connects and migrates, retrying while the database cannot be reached:
 * 0, -ECANCELED (closing), -EPROTO (a newer schema) or -EIO. */
static int pg_start(struct store *st)
{
    int rc;

    for (;;) {
        struct timespec ts;

        if (pg_reconnect(st) == 0) {
            rc = pg_migrate(st->pg->wconn);
            if (rc == 0 || PQstatus(st->pg->wconn) == CONNECTION_OK)
                return rc;
            pg_lost(st, PQerrorMessage(st->pg->wconn));
        }
        pthread_mutex_lock(&st->qlock);
        if (!st->closing) {
            store_mono_deadline(&ts, PG_RECONNECT_MS);
            pthread_cond_timedwait(&st->qcond, &st->qlock, &ts);
        }
        rc = st->closing;
        pthread_mutex_unlock(&st->qlock);
        if (rc)
            return -ECANCELED;
    }
}

/* Runs @j, one job taken off the queue. */
static void pg_job(struct store *st, struct store_job *j)
{
    int rc;

    if (j->type == JOB_BATCH) {
        pg_group(st, j);                /* answers its batches */
        return;
    }
    /* Annotations go straight to the database (pg_incident.c). */
    rc = j->type == JOB_RETENTION
             ? store_pg_retention(st, st->pg->wconn, j->recv_ms)
             : -ENOSYS;
    j->done(j->ctx, rc, 0);
    free(j);
}

static void pg_loop(struct store *st)
{
    int64_t next_try = 0;

    for (;;) {
        struct store_job *jobs = NULL;
        int64_t mono = pg_mono_ms();

        pthread_mutex_lock(&st->qlock);
        while (!st->head && !st->closing &&
               (st->pg->wconn || mono < next_try)) {
            struct timespec ts;

            if (st->pg->wconn && mono >= next_try)
                break;          /* idle: ping */
            store_mono_deadline(&ts, next_try - mono);
            pthread_cond_timedwait(&st->qcond, &st->qlock, &ts);
            mono = pg_mono_ms();
        }
        if (!st->head && st->closing) {
            pthread_mutex_unlock(&st->qlock);
            break;
        }
        if (st->pg->wconn && st->head)
            jobs = store_take(st);
        pthread_mutex_unlock(&st->qlock);
        if (jobs) {
            pg_job(st, jobs);
            next_try = pg_mono_ms() + PG_RECONNECT_MS;
            continue;
        }
        /* Idle with a connection: one round trip, so that /readyz says a
         * database that went away before the next batch says it. */
        if (st->pg->wconn) {
            next_try = mono + PG_RECONNECT_MS;
            if (pg_exec(st->pg->wconn, "SELECT 1") < 0 &&
                PQstatus(st->pg->wconn) != CONNECTION_OK)
                pg_lost(st, PQerrorMessage(st->pg->wconn));
            continue;
        }
        /* No connection: while idle this is the probe. */
        if (mono >= next_try) {
            next_try = mono + PG_RECONNECT_MS;
            if (pg_reconnect(st) == 0) {
                pg_unavailable(st, 0, NULL);
                continue;
            }
        }
        pg_refuse_queued(st);
    }
}

void *store_pg_writer(void *arg)
{
    struct store *st = arg;
    struct pg_wstate *w = calloc(1, sizeof(*w));
    int rc = -ENOMEM;

    st->pg->w = w;
    if (w && store_dims_alloc(st) == 0) {
        w->texts_since_ms = pg_mono_ms();
        rc = pg_start(st);
    }
    if (rc == 0)
        log_msg(LOGL_INFO, "store", "postgres: schema version %d, ready",
                pg_schema_version());
    pthread_mutex_lock(&st->qlock);
    st->ready = rc < 0 ? rc : 1;
    st->stats.ready = rc == 0;
    if (rc == 0) {
        st->stats.unavailable = 0;
        st->stats.commits_failing = 0;
        st->stats.commit_error[0] = '\0';
    }
    pthread_cond_broadcast(&st->rcond);
    pthread_mutex_unlock(&st->qlock);
    if (rc == 0)
        pg_loop(st);
    else
        pg_refuse_queued(st);
    store_dims_finalize(st);
    if (w) {
        PQclear(w->walk);
        free(w->stored);
        free(w->copy);
        pg_group_drop(w, 1);
        free(w);
    }
    st->pg->w = NULL;
    return NULL;
}
