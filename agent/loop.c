/* loop.c -- the agent's event loop: schedules probes, collects their
 * results into the spool, drives the shipper, and stops on a signal. One
 * thread, one curl multi handle, no thread per target. Does not parse
 * config, open the spool or know how any probe type works.
 *
 * Over 1000 lines on purpose: scheduling, reload and the probers handoff
 * all work on the loop's private target array, and a split would need a
 * private header just to share that one struct. */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "probers.h"
#include "shipper.h"
#include "spool.h"
#include "util.h"
#include "wire.h"

#define LOOP_FLUSH_MAX   128        /* results per spool transaction */
#define LOOP_FLUSH_US    100000LL   /* longest a result waits for the spool */
#define LOOP_MAX_WAIT_MS 1000L      /* wake at least this often */
#define LOOP_MAX_JITTER  1000000LL  /* us: first-run jitter per target */
#define LOOP_NEVER       INT64_MAX
#define LOOP_MAX_FDS     32         /* extra fds: self-pipe + probe types */

static char loop_version[] = SEXTANT_VERSION;  /* protobuf-c: not const */

struct loop_target {
    const struct agent_target *t;   /* borrowed from the config */
    const struct probe_ops *ops;
    int64_t due_us;                 /* monotonic start of the next run */
    struct probe_run *run;          /* in flight, or NULL */
    void *pstate;                   /* the type's per-target state, owned */
    struct health health;
    enum health_state reset_from;   /* a reload reset it from this state:
                                       HEALTH_UNKNOWN when it did not */
    int handed_off;                 /* probers: other nodes probe it */
};

enum loop_phase {
    LOOP_RUNNING,                   /* probing (and shipping) */
    LOOP_DRAINING,                  /* --once: probed; shipping the rest */
    LOOP_STOPPING,                  /* signalled: flushing within a grace */
};

struct loop {
    const struct agent_config *cfg; /* borrowed (see loop_set_reload) */
    loop_load_fn load;              /* SIGHUP: read the config again */
    loop_release_fn release;        /* hands back a config we let go */
    void *reload_arg;
    struct spool *sp;               /* borrowed */
    CURLM *multi;                   /* loop thread only; owns the easies */
    struct shipper *sh;
    struct probers *pr;             /* which targets this node probes */
    uint64_t pr_seen;               /* probers_version() acted on */
    struct loop_target *targets;
    size_t n_targets;
    size_t running;                 /* probes in flight */
    int64_t next_due_us;            /* min of targets' due_us */
    int pipe_rd;                    /* self-pipe: a signal makes it readable */
    int pipe_wr;
    uint64_t rng;                   /* xorshift state, for jitter only */
    size_t n_ok;                    /* results since start */
    size_t n_failed;
    enum loop_phase phase;          /* of the current loop_run() */
    int64_t deadline_us;            /* draining or stopping: give up then */
    size_t n_pending;               /* results not yet in the spool */
    int64_t pending_since_us;       /* when the oldest of them came */
    struct probe_event pending[LOOP_FLUSH_MAX];
};

/* Set by the handler, read by the loop; the pipe makes poll return. */
static volatile sig_atomic_t loop_signal;
static volatile sig_atomic_t loop_hup;
static int loop_signal_fd = -1;

static void loop_on_signal(int sig)
{
    int saved = errno;
    char b = 1;
    ssize_t n;

    if (sig == SIGHUP)
        loop_hup = 1;
    else
        loop_signal = sig;
    /* write() is async-signal-safe; curl_multi_wakeup() is not. A full
     * pipe already wakes the loop, so a failed write loses nothing. */
    n = write(loop_signal_fd, &b, 1);
    (void)n;
    errno = saved;
}

static uint64_t loop_rand(struct loop *lp)
{
    uint64_t x = lp->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    lp->rng = x;
    return x;
}

void loop_free(struct loop *lp)
{
    if (!lp)
        return;
    for (size_t i = 0; i < lp->n_targets; i++) {
        struct loop_target *lt = &lp->targets[i];
        if (lt->run)
            lt->ops->cancel(lt->run, lp->multi);
        if (lt->pstate && lt->ops->state_free)
            lt->ops->state_free(lt->pstate);
    }
    shipper_free(lp->sh, lp->multi);
    probers_free(lp->pr);
    if (lp->multi)
        curl_multi_cleanup(lp->multi);
    if (lp->pipe_rd >= 0)
        close(lp->pipe_rd);
    if (lp->pipe_wr >= 0)
        close(lp->pipe_wr);
    free(lp->targets);
    free(lp);
}

/* /metrics shows each target's health by its index here: the targets in
 * use now, with the health they start with (kept across a reload). */
static void loop_publish_targets(const struct loop *lp)
{
    metrics_targets_begin(lp->n_targets);
    for (size_t i = 0; i < lp->n_targets; i++)
        metrics_target_set(i, lp->targets[i].t->name, lp->targets[i].t->type,
                           lp->targets[i].health.state);
}

int loop_new(const struct agent_config *cfg, struct spool *sp,
             struct loop **out)
{
    struct loop *lp;
    int fds[2];
    int rc;

    lp = calloc(1, sizeof(*lp));
    if (!lp)
        return -ENOMEM;
    lp->cfg = cfg;
    lp->sp = sp;
    lp->pipe_rd = lp->pipe_wr = -1;
    lp->next_due_us = LOOP_NEVER;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = -errno;
        goto err;
    }
    lp->pipe_rd = fds[0];
    lp->pipe_wr = fds[1];
    if (util_random_u64(&lp->rng) < 0 || lp->rng == 0)
        lp->rng = (uint64_t)util_mono_us() | 1;  /* jitter needs no secret */
    rc = spool_set_max_bytes(sp, (uint64_t)cfg->spool_max_bytes);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "loop", "cannot set the spool's bound: %s (%s)",
                strerror(-rc), spool_errmsg(sp));
        goto err;
    }
    rc = -ENOMEM;
    lp->multi = curl_multi_init();
    if (!lp->multi)
        goto err;
    rc = shipper_new(cfg, sp, &lp->sh);
    if (rc < 0)
        goto err;
    rc = probers_new(cfg, &lp->pr);
    if (rc < 0)
        goto err;
    shipper_set_probers(lp->sh, lp->pr);
    lp->pr_seen = probers_version(lp->pr);  /* all probed until a list */
    rc = -ENOMEM;
    lp->targets = calloc(cfg->n_targets, sizeof(*lp->targets));
    if (!lp->targets)
        goto err;
    lp->n_targets = cfg->n_targets;
    for (size_t i = 0; i < cfg->n_targets; i++) {
        lp->targets[i].t = &cfg->targets[i];
        lp->targets[i].ops = probe_ops_find(cfg->targets[i].type);
        lp->targets[i].due_us = LOOP_NEVER;
        lp->targets[i].health = (struct health)HEALTH_INIT;
        if (!lp->targets[i].ops) {      /* config.c checked the type */
            rc = -EINVAL;
            goto err;
        }
    }
    loop_publish_targets(lp);
    *out = lp;
    return 0;
err:
    loop_free(lp);
    return rc;
}

/* Every write to the spool goes through here. A failed append loses
 * nothing silently: the spool counts its events and records them as a
 * drop once an append commits again (spool.h), /metrics counts them
 * dropped now, and the log says so once per outage, not per result. */
static void loop_spool(struct loop *lp, Sextant__V1__Event *const *evs,
                       size_t n)
{
    struct spool_drop before;
    int rc;

    spool_refused(lp->sp, &before);
    rc = spool_append_many(lp->sp, evs, n);
    metrics_spool_write(rc, n);
    if (rc < 0 && before.count == 0)
        log_msg(LOGL_ERROR, "loop", "the spool refuses writes: %s (%s); "
                "events are counted as dropped until it takes writes again, "
                "then reported to the collectors as one drop",
                strerror(-rc), spool_errmsg(lp->sp));
    else if (rc == 0 && before.count > 0)
        log_msg(LOGL_WARN, "loop", "the spool takes writes again; the %"
                PRIu64 " events it refused (agent clock %" PRId64 " to %"
                PRId64 " ms) are recorded as a drop", before.count,
                before.first_unix_ms, before.last_unix_ms);
}

/* Writes the pending results to the spool in one transaction. */
static void loop_flush(struct loop *lp)
{
    Sextant__V1__Event *evs[LOOP_FLUSH_MAX];

    if (lp->n_pending == 0)
        return;
    for (size_t i = 0; i < lp->n_pending; i++)
        evs[i] = &lp->pending[i].ev;
    loop_spool(lp, evs, lp->n_pending);
    for (size_t i = 0; i < lp->n_pending; i++)
        probe_event_release(&lp->pending[i]);
    lp->n_pending = 0;
}

static void loop_lifecycle(struct loop *lp, Sextant__V1__LifecyclePhase ph,
                           const char *what)
{
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__Lifecycle lc = SEXTANT__V1__LIFECYCLE__INIT;
    Sextant__V1__Event *evp = &ev;
    char detail[WIRE_MAX_TEXT];

    loop_flush(lp);                 /* keep the spool in event order */
    snprintf(detail, sizeof(detail), "%s", what);
    lc.phase = ph;
    lc.version = loop_version;
    lc.detail = detail;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    ev.lifecycle = &lc;
    loop_spool(lp, &evp, 1);
}

/* Each spool commit is an fsync (spool_file.c says why), which on a cloud
 * disk costs milliseconds of a loop that must not stall. So results wait in
 * memory for up to LOOP_FLUSH_US and go in together: at most ten commits
 * a second however many targets there are. A kill -9 loses at most that
 * window of results, none of them acked. */
static void loop_flush_if_due(struct loop *lp, int64_t now_us)
{
    if (lp->n_pending > 0 && now_us - lp->pending_since_us >= LOOP_FLUSH_US)
        loop_flush(lp);
}

/* Appends @evs to the spool in one transaction, after whatever results
 * are pending, so the spool keeps the order things happened in. */
static void loop_append_now(struct loop *lp, Sextant__V1__Event **evs,
                            size_t n)
{
    loop_flush(lp);
    loop_spool(lp, evs, n);
}

/* Feeds the result to the target's state machine; a change becomes a
 * state-change event, stamped with the probe's time. */
static void loop_health(struct loop *lp, struct loop_target *lt,
                        int64_t unix_ms, const struct probe_result *res)
{
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__StateChange sc = SEXTANT__V1__STATE_CHANGE__INIT;
    Sextant__V1__Event *evp = &ev;
    enum health_state from;
    char reason[PROBE_ERR_LEN + 64];

    if (!health_observe(&lt->health, res->ok, lt->t->healthy_after,
                        lt->t->unhealthy_after, &from))
        return;
    if (res->ok)
        snprintf(reason, sizeof(reason), "%u successes in a row",
                 lt->t->healthy_after);
    else
        snprintf(reason, sizeof(reason), "%u failures in a row, last: %s",
                 lt->t->unhealthy_after, res->error);
    sc.target = lt->t->name;
    sc.from = (Sextant__V1__Health)from;
    sc.to = (Sextant__V1__Health)lt->health.state;
    sc.reason = reason;
    ev.unix_ms = unix_ms;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_STATE;
    ev.state = &sc;
    log_msg(LOGL_INFO, "health", "%s: %s -> %s (%s)", lt->t->name,
            health_name(from), health_name(lt->health.state), reason);
    loop_append_now(lp, &evp, 1);
}

/* Records a finished run: its probe-result event, then the events it
 * added (DNS change, metric samples), then a state change if any. Takes
 * the extra events of @res. */
static void loop_record(struct loop *lp, struct loop_target *lt,
                        int64_t start_unix_ms, struct probe_result *res)
{
    if (lp->n_pending == LOOP_FLUSH_MAX)
        loop_flush(lp);
    if (lp->n_pending == 0)
        lp->pending_since_us = util_mono_us();
    probe_event_init(&lp->pending[lp->n_pending++], lt->t->name, lt->t->type,
                     start_unix_ms, res);
    if (res->ok)
        lp->n_ok++;
    else
        lp->n_failed++;
    metrics_probe_done(lt->t->type, res->ok, res->t.total_us);
    log_msg(LOGL_DEBUG, "probe", "%s: %s, status %d, total %" PRIu64 " us%s%s",
            lt->t->name, res->ok ? "ok" : "FAILED", res->status,
            res->t.total_us, res->error[0] ? ": " : "", res->error);
    if (res->n_extra > 0) {
        for (size_t i = 0; i < res->n_extra; i++)
            if (res->extra[i]->unix_ms == 0)
                res->extra[i]->unix_ms = start_unix_ms;
        loop_append_now(lp, res->extra, res->n_extra);
    }
    probe_result_clear(res);
    loop_health(lp, lt, start_unix_ms, res);
    /* After the verdict: the gauge follows the state machine. */
    metrics_target_health((size_t)(lt - lp->targets), lt->health.state);
}

/* First runs: each target's first run is spread over its interval by its
 * place in the list, plus a little jitter, so that a thousand targets do
 * not all fire in the same millisecond after a restart. --once runs them
 * all now. */
static void loop_schedule_first(struct loop *lp, int64_t now_us, int once)
{
    lp->next_due_us = LOOP_NEVER;
    for (size_t i = 0; i < lp->n_targets; i++) {
        struct loop_target *lt = &lp->targets[i];
        int64_t slot = lt->t->interval_ms * 1000 / (int64_t)lp->n_targets;
        int64_t jmax = slot < LOOP_MAX_JITTER ? slot : LOOP_MAX_JITTER;

        lt->due_us = now_us;
        if (!once)
            lt->due_us += slot * (int64_t)i +
                          (int64_t)(loop_rand(lp) % (uint64_t)(jmax + 1));
        if (lt->due_us < lp->next_due_us)
            lp->next_due_us = lt->due_us;
    }
}

static void loop_start_probe(struct loop *lp, size_t i)
{
    struct loop_target *lt = &lp->targets[i];
    struct probe_run *run;
    int rc;

    if (lt->handed_off)
        return;                     /* its schedule ticks on, unused */
    if (lt->run) {
        /* The timeout fits the interval, so this is a loop that fell
         * behind; skipping a beat beats piling runs up. */
        log_msg(LOGL_DEBUG, "loop", "%s: previous run still going, skipped",
                lt->t->name);
        return;
    }
    rc = lt->ops->start(lt->t, &lt->pstate, lp->multi, &run);
    if (rc < 0) {
        log_msg(LOGL_WARN, "loop", "%s: cannot start a probe: %s",
                lt->t->name, strerror(-rc));
        return;
    }
    run->slot = i;
    lt->run = run;
    lp->running++;
}

/* Starts every target that is due and finds the next due time. A linear
 * scan, done only when something is due: 1000 targets at 10 s are 100
 * scans of 1000 entries a second, noise next to one HTTP request. A heap
 * would make it O(log n) if that ever shows in a profile. */
static void loop_start_due(struct loop *lp, int64_t now_us, int once)
{
    int64_t next = LOOP_NEVER;

    for (size_t i = 0; i < lp->n_targets; i++) {
        struct loop_target *lt = &lp->targets[i];
        int64_t iv = lt->t->interval_ms * 1000;

        if (lt->due_us <= now_us) {
            loop_start_probe(lp, i);
            if (once) {
                lt->due_us = LOOP_NEVER;
            } else {
                /* Fixed rate, not fixed delay: no drift by run time. */
                lt->due_us += iv;
                if (lt->due_us <= now_us)
                    lt->due_us = now_us + iv;
            }
        }
        if (lt->due_us < next)
            next = lt->due_us;
    }
    lp->next_due_us = next;
}

/* Abandons every probe in flight; their results are not recorded. */
static void loop_cancel_probes(struct loop *lp)
{
    for (size_t i = 0; i < lp->n_targets; i++) {
        struct loop_target *lt = &lp->targets[i];
        if (lt->run) {
            lt->ops->cancel(lt->run, lp->multi);
            lt->run = NULL;
        }
        lt->due_us = LOOP_NEVER;
    }
    lp->running = 0;
    lp->next_due_us = LOOP_NEVER;
}

/* Hands every finished transfer to its owner; results go to the pending
 * list, and to the spool with loop_flush_if_due(). */
static void loop_collect(struct loop *lp)
{
    int64_t now_us = util_mono_us();
    int left;

    for (;;) {
        CURLMsg *m = curl_multi_info_read(lp->multi, &left);
        struct probe_result res;
        struct loop_target *lt;
        struct probe_run *run;
        char *priv = NULL;
        int64_t started;
        CURLcode code;
        CURL *e;

        if (!m)
            break;
        if (m->msg != CURLMSG_DONE)
            continue;
        e = m->easy_handle;         /* m dies with the handle's removal */
        code = m->data.result;
        if (shipper_owns(lp->sh, e)) {
            shipper_done(lp->sh, lp->multi, e, code, now_us);
            continue;
        }
        if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
            !priv) {
            log_msg(LOGL_ERROR, "loop", "transfer without an owner, dropped");
            curl_multi_remove_handle(lp->multi, e);
            curl_easy_cleanup(e);
            continue;
        }
        run = (struct probe_run *)(void *)priv;
        lt = &lp->targets[run->slot];
        started = run->start_unix_ms;
        lt->run = NULL;
        lp->running--;
        run->ops->finish(run, lp->multi, e, code, &res);
        loop_record(lp, lt, started, &res);
    }
}

static long loop_min_wait(long w, int64_t until_us, int64_t now_us)
{
    int64_t d;

    if (until_us == LOOP_NEVER)
        return w;
    d = until_us <= now_us ? 0 : (until_us - now_us + 999) / 1000;
    return d < w ? (long)d : w;
}

static void loop_drain_pipe(struct loop *lp)
{
    char buf[64];

    while (read(lp->pipe_rd, buf, sizeof(buf)) > 0)
        ;
}

static int loop_install_signals(struct loop *lp, struct sigaction *old_term,
                                struct sigaction *old_int,
                                struct sigaction *old_hup)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = loop_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    loop_signal = 0;
    loop_signal_fd = lp->pipe_wr;
    loop_hup = 0;
    if (sigaction(SIGTERM, &sa, old_term) < 0 ||
        sigaction(SIGINT, &sa, old_int) < 0 ||
        sigaction(SIGHUP, &sa, old_hup) < 0)
        return -errno;
    return 0;
}

static void loop_restore_signals(const struct sigaction *old_term,
                                 const struct sigaction *old_int,
                                 const struct sigaction *old_hup)
{
    sigaction(SIGTERM, old_term, NULL);
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGHUP, old_hup, NULL);
    loop_signal_fd = -1;
}

static uint64_t loop_spooled(struct loop *lp)
{
    uint64_t n = 0;

    if (spool_count(lp->sp, &n) < 0)
        return 0;
    return n;
}

/* A signal asked us to stop: no more probes, a STOP event, and a prompt
 * flush of what is spooled to every collector, for at most
 * shipping.shutdown_grace. A collector that fails once is not waited
 * for; the spool keeps the rest for the next start. */
static void loop_begin_stop(struct loop *lp, int sig, int64_t now_us)
{
    log_msg(LOGL_INFO, "loop", "signal %d: stopping, flushing for up to %lld "
            "ms", sig, lp->cfg->shutdown_grace_ms);
    metrics_loop_stopping();
    loop_cancel_probes(lp);
    if (lp->phase == LOOP_RUNNING)      /* --once draining has its STOP */
        loop_lifecycle(lp,
                       SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_STOP,
                       "signal");
    shipper_flush(lp->sh, 1);
    lp->deadline_us = now_us + lp->cfg->shutdown_grace_ms * 1000;
    lp->phase = LOOP_STOPPING;
}

/* --once: every target reported. STOP goes in the spool too, so a good
 * run ends with the spool empty. The collector gets a bounded time; the
 * shipper's default backoff (full jitter under 1 s, 2 s, 4 s, 8 s...)
 * fits at least four tries in it. */
static void loop_begin_drain(struct loop *lp, int64_t now_us)
{
    log_msg(LOGL_INFO, "loop", "probed %zu targets: %zu ok, %zu failed; "
            "shipping", lp->n_targets, lp->n_ok, lp->n_failed);
    loop_lifecycle(lp, SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_STOP,
                   "once");
    shipper_flush(lp->sh, 1);           /* no waiting for full batches */
    lp->deadline_us = now_us + LOOP_ONCE_SHIP_MS * 1000;
    lp->phase = LOOP_DRAINING;
}

/* After the shipper's poll: 1 when the run is over (with *rc set), else
 * 0. Only draining and stopping end; running goes on until a signal. */
static int loop_over(struct loop *lp, int64_t now_us, int *rc)
{
    if (lp->phase == LOOP_RUNNING)
        return 0;
    if (shipper_drained(lp->sh)) {
        log_msg(LOGL_INFO, "loop", "every event is acked; spool empty");
        *rc = 0;
        return 1;
    }
    if (lp->phase == LOOP_DRAINING && now_us >= lp->deadline_us) {
        log_msg(LOGL_ERROR, "loop", "the collector did not ack every event "
                "within %ld ms; %" PRIu64 " events stay in the spool for the "
                "next run", LOOP_ONCE_SHIP_MS, loop_spooled(lp));
        *rc = -ETIMEDOUT;
        return 1;
    }
    if (lp->phase == LOOP_STOPPING &&
        (now_us >= lp->deadline_us || shipper_settled(lp->sh))) {
        log_msg(LOGL_WARN, "loop", "could not ship everything before "
                "stopping; %" PRIu64 " events stay in the spool",
                loop_spooled(lp));
        *rc = 0;
        return 1;
    }
    return 0;
}

/* How long the next poll may sleep: until the next probe is due (or the
 * deadline), pending results are due in the spool, a backoff ends, or
 * LOOP_MAX_WAIT_MS -- whichever is first. curl_multi_poll() also wakes for
 * curl's own timers and sockets. */
static long loop_wait_ms(const struct loop *lp, int64_t now_us)
{
    long w = loop_min_wait(LOOP_MAX_WAIT_MS, lp->phase == LOOP_RUNNING
                                                 ? lp->next_due_us
                                                 : lp->deadline_us, now_us);
    long sw = shipper_wait_ms(lp->sh, now_us);

    if (lp->n_pending > 0)
        w = loop_min_wait(w, lp->pending_since_us + LOOP_FLUSH_US, now_us);

    return sw >= 0 && sw < w ? sw : w;
}

/* Target @lt stops (@off) or starts again being probed by this node. A
 * stop cancels its run, forgets its health (a later start begins afresh)
 * and says so with a state change to unknown whose reason starts
 * "handoff:" (sextant.proto): the collector then leaves this agent out
 * of the target's quorum instead of counting it stale. */
static void loop_handoff(struct loop *lp, struct loop_target *lt, int off,
                         size_t rank, int64_t now_us)
{
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__StateChange sc = SEXTANT__V1__STATE_CHANGE__INIT;
    Sextant__V1__Event *evp = &ev;
    char reason[128];

    lt->handed_off = off;
    if (!off) {
        lt->due_us = now_us;        /* probe it now, not an interval on */
        lp->next_due_us = now_us;
        return;
    }
    if (lt->run) {
        lt->ops->cancel(lt->run, lp->multi);
        lt->run = NULL;
        lp->running--;
    }
    snprintf(reason, sizeof(reason), "handoff: probers %lld, this node "
             "ranks %zu of %zu live", lt->t->probers, rank + 1,
             probers_n_live(lp->pr));
    sc.target = lt->t->name;
    sc.from = (Sextant__V1__Health)lt->health.state;
    sc.to = (Sextant__V1__Health)HEALTH_UNKNOWN;
    sc.reason = reason;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_STATE;
    ev.state = &sc;
    loop_append_now(lp, &evp, 1);
    lt->health = (struct health)HEALTH_INIT;
    metrics_target_health((size_t)(lt - lp->targets), HEALTH_UNKNOWN);
}

/* The live list or the config changed: start and stop probing targets as
 * probers_select() now says, and log the new set once. */
static void loop_probers(struct loop *lp, int64_t now_us)
{
    unsigned char *sel = calloc(lp->n_targets + 1, 1);
    size_t *rank = calloc(lp->n_targets + 1, sizeof(*rank));
    size_t n, moved = 0;

    lp->pr_seen = probers_version(lp->pr);
    if (!sel || !rank) {            /* keep probing as we are; next time */
        lp->pr_seen--;
        goto out;
    }
    n = probers_select(lp->pr, sel, rank);
    for (size_t i = 0; i < lp->n_targets; i++) {
        struct loop_target *lt = &lp->targets[i];

        if (lt->handed_off == !sel[i])
            continue;
        loop_handoff(lp, lt, !sel[i], rank[i], now_us);
        moved++;
    }
    metrics_probers(lp->n_targets - n, probers_n_live(lp->pr));
    if (moved > 0)
        log_msg(LOGL_INFO, "probers", "probing %zu of %zu targets, %zu "
                "handed off to other nodes (%zu live nodes listed; %zu "
                "targets moved)", n, lp->n_targets, lp->n_targets - n,
                probers_n_live(lp->pr), moved);
out:
    free(sel);
    free(rank);
}

/* A probe type outside libcurl finished a run (see probe.h). */
static void loop_complete(struct probe_run *run, struct probe_result *res,
                          void *arg)
{
    struct loop *lp = arg;
    struct loop_target *lt = &lp->targets[run->slot];

    lt->run = NULL;
    lp->running--;
    loop_record(lp, lt, run->start_unix_ms, res);
}

/* One turn: sleep until curl, the self-pipe, a probe type's fd or a timer
 * wakes us, let curl and those types move their work, and collect what
 * finished. wfd[0] is the self-pipe; the probe types' fds follow. */
static int loop_turn(struct loop *lp, struct curl_waitfd *wfd,
                     int64_t now_us)
{
    const struct probe_ops *const *all;
    size_t n_ops, n_fds = 1, first[16], count[16];
    long wait = loop_wait_ms(lp, now_us);
    CURLMcode mc;
    int still;

    all = probe_ops_all(&n_ops);
    if (n_ops > 16)
        n_ops = 16;
    for (size_t i = 0; i < n_ops; i++) {
        first[i] = n_fds;
        count[i] = 0;
        if (all[i]->poll_fds) {
            count[i] = all[i]->poll_fds(wfd + n_fds, LOOP_MAX_FDS - n_fds);
            n_fds += count[i];
        }
        if (all[i]->poll_timeout_ms) {
            long t = all[i]->poll_timeout_ms();
            if (t >= 0 && t < wait)
                wait = t;
        }
    }
    for (size_t i = 0; i < n_fds; i++)
        wfd[i].revents = 0;
    mc = curl_multi_poll(lp->multi, wfd, (unsigned)n_fds, (int)wait, NULL);
    if (mc != CURLM_OK) {
        log_msg(LOGL_ERROR, "loop", "curl_multi_poll: %s",
                curl_multi_strerror(mc));
        return -EIO;
    }
    if (wfd[0].revents)
        loop_drain_pipe(lp);
    for (size_t i = 0; i < n_ops; i++)
        if (all[i]->poll_process)
            all[i]->poll_process(wfd + first[i], count[i], loop_complete, lp);
    mc = curl_multi_perform(lp->multi, &still);
    if (mc != CURLM_OK) {
        log_msg(LOGL_ERROR, "loop", "curl_multi_perform: %s",
                curl_multi_strerror(mc));
        return -EIO;
    }
    loop_collect(lp);
    if (probers_version(lp->pr) != lp->pr_seen)
        loop_probers(lp, util_mono_us());
    return 0;
}

const struct agent_config *loop_config(const struct loop *lp)
{
    return lp->cfg;
}

void loop_set_reload(struct loop *lp, loop_load_fn load,
                     loop_release_fn release, void *arg)
{
    lp->load = load;
    lp->release = release;
    lp->reload_arg = arg;
}

/* What a reload may not change while the agent runs: who it is, where it
 * spools and where it ships. NULL if none of it changed. */
static const char *loop_reload_refused(const struct agent_config *a,
                                       const struct agent_config *b)
{
    if (strcmp(a->cluster, b->cluster) || strcmp(a->region, b->region) ||
        strcmp(a->node, b->node))
        return "cluster, region or node";
    if (strcmp(a->spool_path, b->spool_path))
        return "spool.path";
    if (a->n_collectors != b->n_collectors)
        return "collectors";
    for (size_t i = 0; i < a->n_collectors; i++)
        if (!agent_collector_equal(&a->collectors[i], &b->collectors[i]))
            return "collectors";
    if ((a->admin_listen == NULL) != (b->admin_listen == NULL) ||
        (a->admin_listen && strcmp(a->admin_listen, b->admin_listen)))
        return "admin";
    return NULL;
}

/* Appends "name" to a comma-separated list in @buf, within its size. */
static void loop_list_add(char *buf, size_t len, const char *name)
{
    size_t used = strlen(buf);

    if (used + strlen(name) + 3 >= len) {
        if (used + 4 < len)
            memcpy(buf + used, "...", 4);
        return;
    }
    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
}

/* Swaps in @ncfg's targets. A target with the same name and identity
 * (type and url/address/query: config.h) keeps its health whatever else
 * changed, since it still probes the same thing; one that also has the
 * same fingerprint keeps its type's state and its schedule too. A run in
 * flight is cancelled and restarted at once, since it points into the old
 * config. A target whose identity changed starts afresh; if it had a
 * health state, reset_from says which (loop_reset_events() records the
 * reset). New targets start within their interval; removed
 * ones are cancelled. */
static int loop_swap_targets(struct loop *lp, const struct agent_config *ncfg,
                             int64_t now_us, char *detail, size_t len)
{
    char added[512] = "", removed[512] = "", changed[512] = "";
    struct loop_target *nt;
    size_t kept = 0;

    nt = calloc(ncfg->n_targets ? ncfg->n_targets : 1, sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < ncfg->n_targets; i++) {
        const struct agent_target *t = &ncfg->targets[i];
        int64_t slot = t->interval_ms * 1000 / (int64_t)ncfg->n_targets;
        struct loop_target *ot = NULL;

        nt[i].t = t;
        nt[i].ops = probe_ops_find(t->type);
        nt[i].health = (struct health)HEALTH_INIT;
        nt[i].reset_from = HEALTH_UNKNOWN;
        nt[i].due_us = now_us + (int64_t)(loop_rand(lp) %
                                          (uint64_t)(slot + 1));
        for (size_t j = 0; j < lp->n_targets && !ot; j++)
            if (lp->targets[j].t &&
                strcmp(lp->targets[j].t->name, t->name) == 0)
                ot = &lp->targets[j];
        if (!ot) {
            loop_list_add(added, sizeof(added), t->name);
            continue;
        }
        nt[i].handed_off = ot->handed_off;  /* loop_probers() rechecks */
        if (strcmp(ot->t->identity, t->identity) == 0)
            nt[i].health = ot->health;
        else
            nt[i].reset_from = ot->health.state;
        if (strcmp(ot->t->fingerprint, t->fingerprint) == 0) {
            nt[i].pstate = ot->pstate;
            nt[i].due_us = ot->run ? now_us : ot->due_us;
            ot->pstate = NULL;
            kept++;
        } else {
            if (ot->run)
                nt[i].due_us = now_us;  /* its run is cut short below */
            loop_list_add(changed, sizeof(changed), t->name);
        }
        ot->t = NULL;               /* matched: not removed */
    }
    for (size_t j = 0; j < lp->n_targets; j++) {
        struct loop_target *ot = &lp->targets[j];

        if (ot->run) {
            ot->ops->cancel(ot->run, lp->multi);
            ot->run = NULL;
            lp->running--;
        }
        if (ot->pstate && ot->ops->state_free)
            ot->ops->state_free(ot->pstate);
        if (ot->t)
            loop_list_add(removed, sizeof(removed), ot->t->name);
    }
    free(lp->targets);
    lp->targets = nt;
    lp->n_targets = ncfg->n_targets;
    lp->next_due_us = now_us;       /* rescan the schedule */
    loop_publish_targets(lp);
    snprintf(detail, len, "%zu targets kept; added: %s; removed: %s; "
             "changed: %s", kept, added[0] ? added : "none",
             removed[0] ? removed : "none", changed[0] ? changed : "none");
    return 0;
}

/* After a reload: each target whose identity changed and so lost a known
 * health state gets a state change to unknown, so that the timeline says
 * why its next verdict comes (a reset is never silent). */
static void loop_reset_events(struct loop *lp)
{
    for (size_t i = 0; i < lp->n_targets; i++) {
        struct loop_target *lt = &lp->targets[i];
        Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
        Sextant__V1__StateChange sc = SEXTANT__V1__STATE_CHANGE__INIT;
        Sextant__V1__Event *evp = &ev;
        char reason[] = "config reload: the target's type, url, address or "
                        "query changed";

        if (lt->reset_from == HEALTH_UNKNOWN)
            continue;
        sc.target = lt->t->name;
        sc.from = (Sextant__V1__Health)lt->reset_from;
        sc.to = (Sextant__V1__Health)HEALTH_UNKNOWN;
        sc.reason = reason;
        ev.kind_case = SEXTANT__V1__EVENT__KIND_STATE;
        ev.state = &sc;
        log_msg(LOGL_INFO, "health", "%s: %s -> unknown (%s)", lt->t->name,
                health_name(lt->reset_from), reason);
        loop_append_now(lp, &evp, 1);
        lt->reset_from = HEALTH_UNKNOWN;
    }
}

/* SIGHUP: load, check, swap, record. Any failure keeps the old config. */
static void loop_reload(struct loop *lp, int64_t now_us)
{
    struct agent_config *ncfg = NULL;
    const struct agent_config *old = lp->cfg;
    const char *refused;
    char detail[2048];
    int rc;

    if (!lp->load) {
        log_msg(LOGL_WARN, "loop", "SIGHUP: reload not available, ignored");
        return;
    }
    rc = lp->load(lp->reload_arg, &ncfg);
    if (rc < 0)
        return;                     /* the loader logged why */
    refused = loop_reload_refused(old, ncfg);
    if (refused) {
        log_msg(LOGL_ERROR, "loop", "reload refused: %s cannot change while "
                "the agent runs (restart it); keeping the old config",
                refused);
        lp->release(lp->reload_arg, ncfg);
        return;
    }
    rc = loop_swap_targets(lp, ncfg, now_us, detail, sizeof(detail));
    if (rc < 0) {
        log_msg(LOGL_ERROR, "loop", "reload failed: %s; keeping the old "
                "config", strerror(-rc));
        lp->release(lp->reload_arg, ncfg);
        return;
    }
    if (ncfg->spool_max_bytes != old->spool_max_bytes &&
        spool_set_max_bytes(lp->sp, (uint64_t)ncfg->spool_max_bytes) < 0)
        log_msg(LOGL_ERROR, "loop", "reload: cannot set the spool's new "
                "bound: %s; the old one stays", spool_errmsg(lp->sp));
    lp->cfg = ncfg;
    shipper_set_config(lp->sh, ncfg);
    probers_set_config(lp->pr, ncfg);
    log_set_level(ncfg->log_level);
    log_msg(LOGL_INFO, "loop", "config reloaded: %s", detail);
    loop_lifecycle(lp, SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD,
                   detail);
    loop_reset_events(lp);
    lp->release(lp->reload_arg, (struct agent_config *)old);
}

/* Stopping while the spool still refuses writes: what it counted has no
 * seqs and no record, and dies with the process. Say how much. */
static void loop_warn_refused(struct loop *lp)
{
    struct spool_drop d;

    spool_refused(lp->sp, &d);
    if (d.count > 0)
        log_msg(LOGL_ERROR, "loop", "stopping while the spool refuses "
                "writes: %" PRIu64 " events (agent clock %" PRId64 " to %"
                PRId64 " ms) are lost without a drop record", d.count,
                d.first_unix_ms, d.last_unix_ms);
}

int loop_run(struct loop *lp, int once)
{
    struct sigaction old_term, old_int, old_hup;
    struct curl_waitfd wfd[LOOP_MAX_FDS];
    int64_t now = util_mono_us();
    int interrupted = 0, rc;

    memset(wfd, 0, sizeof(wfd));
    wfd[0].fd = lp->pipe_rd;
    wfd[0].events = CURL_WAIT_POLLIN;
    memset(&old_term, 0, sizeof(old_term));     /* SIG_DFL if never set */
    memset(&old_int, 0, sizeof(old_int));
    memset(&old_hup, 0, sizeof(old_hup));
    rc = loop_install_signals(lp, &old_term, &old_int, &old_hup);
    if (rc < 0) {
        log_msg(LOGL_ERROR, "loop", "cannot install signal handlers: %s",
                strerror(-rc));
        loop_restore_signals(&old_term, &old_int, &old_hup);
        return rc;
    }
    lp->phase = LOOP_RUNNING;
    lp->deadline_us = LOOP_NEVER;
    loop_lifecycle(lp, SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_START,
                   once ? "once" : "");
    loop_schedule_first(lp, now, once);
    log_msg(LOGL_INFO, "loop", "sextant-agent %s started: cluster %s, region "
            "%s, node %s, %zu targets, spool epoch %016" PRIx64 "%s",
            SEXTANT_VERSION, lp->cfg->cluster, lp->cfg->region, lp->cfg->node,
            lp->n_targets, spool_epoch(lp->sp), once ? ", once" : "");
    for (;;) {
        now = util_mono_us();
        if (loop_signal) {
            int sig = loop_signal;

            loop_signal = 0;
            if (lp->phase == LOOP_STOPPING) {
                log_msg(LOGL_WARN, "loop", "second signal: stopping now");
                break;
            }
            interrupted = once;
            loop_begin_stop(lp, sig, now);
        }
        if (loop_hup) {
            loop_hup = 0;
            if (lp->phase == LOOP_RUNNING)
                loop_reload(lp, now);
        }
        if (lp->phase == LOOP_RUNNING) {
            if (now >= lp->next_due_us)
                loop_start_due(lp, now, once);
            if (once && lp->running == 0)
                loop_begin_drain(lp, now);
        }
        loop_flush_if_due(lp, now);
        shipper_poll(lp->sh, lp->multi, now);   /* logs its own failures */
        if (loop_over(lp, now, &rc))
            break;
        rc = loop_turn(lp, wfd, now);
        if (rc < 0)
            break;
        metrics_loop_turn(lp->sp, lp->n_targets, util_mono_us());
    }
    loop_cancel_probes(lp);
    shipper_abort(lp->sh, lp->multi);           /* its events stay spooled */
    loop_flush(lp);
    loop_warn_refused(lp);
    loop_restore_signals(&old_term, &old_int, &old_hup);
    if (rc == 0 && interrupted)
        rc = -EINTR;
    log_msg(LOGL_INFO, "loop", "stopped");
    return rc;
}
