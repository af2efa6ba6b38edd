/* store_incstart.c -- the incident engine's rebuild at start, off the
 * writer's path: the collector is ready (ingest, API) while the engine
 * catches up with the stored history, and the incidents it then writes
 * equal a rebuild from scratch. The live driver is store_incident.c's.
 *
 * How: before the store says ready, the writer opens a read connection
 * and takes a read snapshot on it (a WAL read transaction). A thread of
 * its own rebuilds the engine from every event in that snapshot, as the
 * old start did on the writer (store_inc_scan: fed up to the collector's
 * now less the hold, later ones held). Meanwhile the writer stores
 * batches but feeds nothing: it only notes the smallest agent time of
 * the events that matter to the topology (store_inc_start_note). When
 * the rebuild is done, the writer takes its engine over (statements
 * prepared again on the writer's connection), writes the rebuilt
 * incidents without telling anyone (history, as before), and then, if
 * events came meanwhile, goes back to the engine's last snapshot before
 * the earliest of them and replays from the store, which now holds them
 * all: the usual replay (store_incident.c), whose changes are announced
 * (webhooks), since they happened after the start. Holding the events
 * themselves instead would cost memory for every event of a catch-up
 * that can take minutes; the store has them anyway. The price: the
 * rebuild's read snapshot keeps checkpoints from passing it, so the WAL
 * grows by what is ingested during the catch-up (and is cut back to
 * its limit at the next checkpoint after).
 *
 * What "catching up" means to readers: store_service_status says so
 * ("catching_up": true; regions unknown, no serving region) and the
 * incidents table holds what the last run wrote, until the takeover.
 *
 * Why not a persisted snapshot of the engine: it would have to be
 * versioned with the engine's structures and invalidated with the
 * topology, and a rebuild is still needed whenever it is; this needs
 * neither, and ingest is not held up either way. */
#include "store_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "incident.h"
#include "log.h"
#include "topology.h"
#include "util.h"

#define STORE_INC_START_POLL_MS 100   /* the writer looks for the end */
#define STORE_INC_GATE_POLL_US  20000 /* SEXTANT_INC_REBUILD_GATE */

struct store_inc_start {
    struct store *st;
    pthread_t th;
    /* The rebuild thread's until done (then the writer's): the driver
     * with its statements on db, and db itself (closed by the thread). */
    struct store_inc *in;
    sqlite3 *db;                /* also under lock: NULL once closed */
    int64_t upto;               /* fed up to here */
    int64_t t0;                 /* monotonic ns at the start */
    const char *gate;           /* tests: rebuild once this file exists */
    /* The writer's. */
    int noted;                  /* an event that matters came meanwhile */
    int64_t min_unix;           /* the smallest agent time of them */
    uint64_t noted_n;
    int64_t due_mono;
    /* Under lock. */
    pthread_mutex_t lock;
    int done, stop, rc;
};

/* Tests hold the rebuild until a file exists (SEXTANT_INC_REBUILD_GATE),
 * so that a catch-up overlaps ingest for as long as they need. 0, or
 * -ECANCELED when the store closes first. */
static int store_inc_start_gate(struct store_inc_start *s)
{
    for (;;) {
        int stop;

        pthread_mutex_lock(&s->lock);
        stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            return -ECANCELED;
        if (!s->gate || access(s->gate, F_OK) == 0)
            return 0;
        usleep(STORE_INC_GATE_POLL_US);
    }
}

static void *store_inc_start_run(void *arg)
{
    struct store_inc_start *s = arg;
    struct store_inc *in = s->in;
    int rc;

    rc = store_inc_start_gate(s);
    if (rc == 0)
        rc = store_inc_scan(in, INT64_MIN, INT64_MAX, s->upto);
    if (rc == 0)
        store_inc_advance(in, s->upto);
    /* The statements go with the connection; the writer prepares its
     * own. Ending the read transaction lets checkpoints go past it. */
    store_inc_unprepare(in);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->lock);
    sqlite3_close(s->db);
    s->db = NULL;
    s->rc = rc;
    s->done = 1;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Opens the read connection of @s and takes its snapshot: every event
 * committed from now on is the catch-up's. 0 or -EIO. */
static int store_inc_start_snapshot(struct store *st,
                                    struct store_inc_start *s)
{
    sqlite3_stmt *b;
    int step;

    if (sqlite3_open_v2(st->path, &s->db, SQLITE_OPEN_READONLY |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    if (store_inc_new(s->db, st->opt.topo, &s->in) < 0)
        return -EIO;
    /* BEGIN alone takes no snapshot: the first read does. */
    if (store_exec(s->db, "BEGIN") < 0)
        return -EIO;
    b = s->in->stmt[INC_Q_OFF_BOUND];
    step = sqlite3_step(b);
    store_inc_done(b);
    return step == SQLITE_ROW ? 0 : -EIO;
}

static void store_inc_start_destroy(struct store_inc_start *s)
{
    store_inc_destroy(s->in);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int store_inc_open(struct store *st)
{
    const struct topology *topo = st->opt.topo;
    struct store_inc_start *s;
    const char *gate = getenv("SEXTANT_INC_REBUILD_GATE");
    int rc;

    if (!topo || topo->n_services == 0)
        return 0;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->st = st;
    s->t0 = store_mono_ns();
    s->upto = util_now_ms() - STORE_INC_HOLD_MS;
    s->gate = gate && *gate ? gate : NULL;
    s->due_mono = store_mono_ns() / 1000000 + STORE_INC_START_POLL_MS;
    rc = store_inc_start_snapshot(st, s);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "incidents", "rebuild at start: %s",
                s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    s->in->snap_from = s->upto - STORE_INC_SNAP_KEEP_MS;
    s->in->quiet = 1;                   /* history: nobody to tell */
    /* Published before the thread owns the engine (empty: every region
     * unknown), so readers see "catching up" from the first request. */
    store_inc_publish(st, s->in, 1);
    rc = -pthread_create(&s->th, NULL, store_inc_start_run, s);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "incidents", "rebuild at start: no thread");
        goto fail;
    }
    st->inc_start = s;
    if (s->gate)
        log_msg(LOGL_INFO, "incidents", "rebuild at start waits for %s",
                s->gate);
    return 0;
fail:
    store_inc_start_destroy(s);
    return rc;
}

void store_inc_start_note(struct store *st, const Sextant__V1__Event *ev,
                          const struct store_event_row *e)
{
    struct store_inc_start *s = st->inc_start;

    /* The names the driver matches are fixed once it is made: reading
     * them beside the rebuild thread is safe. A note too many (a batch
     * rolled back after it) only makes the replay start earlier. */
    if (!s || (ev->kind_case != SEXTANT__V1__EVENT__KIND_FAILOVER &&
               (!e->target || !store_inc_relevant(s->in, e->target))))
        return;
    if (!s->noted || ev->unix_ms < s->min_unix)
        s->min_unix = ev->unix_ms;
    s->noted = 1;
    s->noted_n++;
}

int64_t store_inc_start_due(const struct store *st)
{
    return st->inc_start ? st->inc_start->due_mono : INT64_MAX / 2;
}

/* Replays what was stored during the catch-up: from the last snapshot
 * before the earliest of it, every stored event, those past @upto held
 * (the pending list is dropped first: the scan reads them again). */
static int store_inc_start_replay(struct store *st, struct store_inc *in,
                                  int64_t min_unix, int64_t upto)
{
    sqlite3_stmt *b = in->stmt[INC_Q_OFF_BOUND];
    int64_t m = 0, from;
    int rc;

    /* Events are corrected by at most the largest offset recorded. */
    if (sqlite3_step(b) == SQLITE_ROW)
        m = sqlite3_column_int64(b, 0);
    store_inc_done(b);
    rc = store_inc_restore(in, min_unix - m - 1, &from);
    if (rc < 0)
        return rc;
    store_inc_pend_drop_upto(in, INT64_MAX);
    rc = store_inc_scan(in, from, INT64_MAX, upto);
    if (rc == 0) {
        store_inc_advance(in, upto);
        rc = store_inc_sync(st, from, 0);
    }
    return rc;
}

/* Takes the finished rebuild of @s over as st->inc. */
static int store_inc_start_take(struct store *st, struct store_inc_start *s)
{
    struct store_inc *in = s->in;
    int64_t upto = util_now_ms() - STORE_INC_HOLD_MS;
    uint64_t history = in->fed;
    int rc;

    rc = store_inc_prepare(in, st->wdb);
    if (rc < 0)
        return rc;
    s->in = NULL;
    pthread_mutex_lock(&st->inc_lock);
    st->inc = in;
    pthread_mutex_unlock(&st->inc_lock);
    rc = store_inc_sync(st, INT64_MIN, 0);  /* quiet: the history */
    in->quiet = 0;
    if (upto < in->h)                   /* the wall clock stepped back */
        upto = in->h;
    if (rc == 0 && s->noted)
        rc = store_inc_start_replay(st, in, s->min_unix, upto);
    if (rc < 0)
        return rc;
    log_msg(LOGL_INFO, "incidents", "engine caught up in %.3f s: %llu "
            "stored events at start, %llu stored since (%zu held for the "
            "next %d ms)", (double)(store_mono_ns() - s->t0) / 1e9,
            (unsigned long long)history, (unsigned long long)s->noted_n,
            in->n_pend, STORE_INC_HOLD_MS);
    store_inc_publish(st, in, 0);
    return 0;
}

void store_inc_start_tick(struct store *st)
{
    struct store_inc_start *s = st->inc_start;
    int done, rc;

    if (!s)
        return;
    s->due_mono = store_mono_ns() / 1000000 + STORE_INC_START_POLL_MS;
    pthread_mutex_lock(&s->lock);
    done = s->done;
    rc = s->rc;
    pthread_mutex_unlock(&s->lock);
    if (!done)
        return;
    pthread_join(s->th, NULL);
    st->inc_start = NULL;
    if (rc == 0) {
        log_msg(LOGL_INFO, "incidents", "engine rebuilt from %llu stored "
                "events in %.3f s", (unsigned long long)s->in->fed,
                (double)(store_mono_ns() - s->t0) / 1e9);
        rc = store_inc_start_take(st, s);
    }
    if (rc < 0) {
        /* Rare (out of memory, an I/O error): the derived state stays
         * "catching up" rather than showing a wrong one. */
        log_msg(LOGL_ERROR, "incidents", "rebuild at start failed (%s): "
                "incidents stay off until the collector restarts",
                strerror(-rc));
        if (!s->in) {
            pthread_mutex_lock(&st->inc_lock);
            s->in = st->inc;
            st->inc = NULL;
            pthread_mutex_unlock(&st->inc_lock);
        }
    }
    store_inc_start_destroy(s);
}

void store_inc_start_free(struct store *st)
{
    struct store_inc_start *s = st->inc_start;
    int done = 0;

    if (!s)
        return;
    /* The writer has stopped. Interrupt the scan (again until it ends:
     * an interrupt before a statement starts is forgotten), not wait for
     * it: the next start rebuilds anyway. */
    while (!done) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        done = s->done;
        if (!done && s->db)
            sqlite3_interrupt(s->db);
        pthread_mutex_unlock(&s->lock);
        if (!done)
            usleep(STORE_INC_GATE_POLL_US);
    }
    pthread_join(s->th, NULL);
    log_msg(LOGL_INFO, "incidents", "stopped while catching up: the next "
            "start computes the incidents again");
    st->inc_start = NULL;
    store_inc_start_destroy(s);
}
