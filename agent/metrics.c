/* metrics.c -- the agent's self-observability registry: lock-free atomic
 * counters and gauges the loop updates, and a renderer of the Prometheus
 * text format the admin thread calls. Allocates nothing, on either side:
 * the registry is static and the page is written into the caller's
 * buffer. Does not serve HTTP and reads the spool only when the loop
 * itself asks (metrics_loop_turn). */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "spool.h"
#include "util.h"

/* Indexed by enum probe_type, which follows the wire's ProbeType numbers
 * (1..5 today): room for a few more before this must grow. */
#define METRICS_MAX_TYPES 8
_Static_assert(PROBE_KUBE < METRICS_MAX_TYPES, "grow METRICS_MAX_TYPES");

/* Probe duration buckets: 5 ms, where a healthy in-cluster endpoint
 * answers, to 10 s, the longest timeout worth bucketing (a slower probe
 * still lands in +Inf). The text is what goes into "le" as written. */
static const struct {
    uint64_t us;
    const char *le;
} metrics_buckets[] = {
    { 5000, "0.005" }, { 10000, "0.01" }, { 25000, "0.025" },
    { 50000, "0.05" }, { 100000, "0.1" }, { 250000, "0.25" },
    { 500000, "0.5" }, { 1000000, "1" }, { 2500000, "2.5" },
    { 5000000, "5" }, { 10000000, "10" },
};
#define METRICS_N_BUCKETS \
    (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

#define METRICS_ABSENT INT64_MIN    /* a gauge with no value yet */

struct metrics_type {
    atomic_uint_fast64_t failed;
    atomic_uint_fast64_t bucket[METRICS_N_BUCKETS + 1];  /* last: > 10 s */
    atomic_uint_fast64_t sum_us;
};

/* The statuses that dead-letter a batch (shipper.c). */
static const int metrics_reject_status[] = { 400, 413, 415 };
#define METRICS_N_REJECT \
    (sizeof(metrics_reject_status) / sizeof(metrics_reject_status[0]))

struct metrics_collector {
    atomic_uint_fast64_t shipped;
    atomic_uint_fast64_t failures;          /* in a row, now */
};

/* Static, so it exists before main() and nothing ever frees it. The
 * loop-thread-only fields need no atomics but are kept apart. */
static struct {
    struct metrics_type type[METRICS_MAX_TYPES];
    atomic_uint_fast64_t dropped;
    atomic_uint_fast64_t shipped;
    atomic_uint_fast64_t ship_failed;
    atomic_uint_fast64_t spool_events;
    atomic_uint_fast64_t spool_bytes;
    atomic_uint_fast64_t spool_dropped;     /* persisted in the spool */
    atomic_uint_fast64_t dead_letter;       /* events, from the spool */
    atomic_uint_fast64_t rejected[METRICS_N_REJECT];
    struct metrics_collector coll[METRICS_MAX_COLLECTORS];
    /* Written by metrics_collectors_set() before the admin thread starts,
     * read-only afterwards: no atomics needed. */
    char coll_label[METRICS_MAX_COLLECTORS][METRICS_MAX_LABEL];
    size_t n_coll;
    atomic_uint_fast64_t targets;
    atomic_uint_fast64_t handed_off;        /* probers: probed elsewhere */
    atomic_uint_fast64_t live_nodes;        /* probers: the list held */
    atomic_int_fast64_t last_ack_us;        /* monotonic; METRICS_ABSENT */
    atomic_int_fast64_t offset_ms;          /* METRICS_ABSENT until an ack */
    atomic_int_fast64_t heartbeat_us;       /* 0: no turn yet */
    atomic_int spool_errno;
    atomic_int phase;                       /* enum metrics_phase */
    /* loop thread only */
    int64_t sent_ms;                        /* batch in flight; 0: none */
    int64_t received_ms;                    /* its Ack; 0: none yet */
    int64_t depth_at_us;                    /* last spool_depth(); 0: never */
    int depth_failing;                      /* spool_depth() failed last */
} metrics = {
    .last_ack_us = METRICS_ABSENT,
    .offset_ms = METRICS_ABSENT,
};

/* The targets' names, guarded by their lock (see metrics.h); the states
 * are atomics the loop stores without it. */
static struct {
    pthread_mutex_t lock;
    size_t n;                               /* shown: <= METRICS_MAX_TARGETS */
    char name[METRICS_MAX_TARGETS][METRICS_MAX_LABEL];
    unsigned char type[METRICS_MAX_TARGETS];    /* enum probe_type */
    atomic_int state[METRICS_MAX_TARGETS];      /* enum health_state */
} metrics_targets = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

#define M_ADD(field, n) \
    atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define M_SET(field, v) \
    atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define M_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

void metrics_reset(void)
{
    for (size_t i = 0; i < METRICS_MAX_TYPES; i++) {
        struct metrics_type *t = &metrics.type[i];

        M_SET(t->failed, 0);
        M_SET(t->sum_us, 0);
        for (size_t b = 0; b <= METRICS_N_BUCKETS; b++)
            M_SET(t->bucket[b], 0);
    }
    M_SET(metrics.dropped, 0);
    M_SET(metrics.shipped, 0);
    M_SET(metrics.ship_failed, 0);
    M_SET(metrics.spool_events, 0);
    M_SET(metrics.spool_bytes, 0);
    M_SET(metrics.spool_dropped, 0);
    M_SET(metrics.dead_letter, 0);
    for (size_t i = 0; i < METRICS_N_REJECT; i++)
        M_SET(metrics.rejected[i], 0);
    for (size_t i = 0; i < METRICS_MAX_COLLECTORS; i++) {
        M_SET(metrics.coll[i].shipped, 0);
        M_SET(metrics.coll[i].failures, 0);
    }
    metrics.n_coll = 0;
    M_SET(metrics.targets, 0);
    M_SET(metrics.handed_off, 0);
    M_SET(metrics.live_nodes, 0);
    M_SET(metrics.last_ack_us, METRICS_ABSENT);
    M_SET(metrics.offset_ms, METRICS_ABSENT);
    M_SET(metrics.heartbeat_us, 0);
    M_SET(metrics.spool_errno, 0);
    M_SET(metrics.phase, METRICS_STARTING);
    metrics.sent_ms = 0;
    metrics.received_ms = 0;
    metrics.depth_at_us = 0;
    metrics.depth_failing = 0;
    metrics_targets_begin(0);
}

void metrics_probers(size_t handed_off, size_t live_nodes)
{
    M_SET(metrics.handed_off, handed_off);
    M_SET(metrics.live_nodes, live_nodes);
}

void metrics_targets_begin(size_t n)
{
    if (n > METRICS_MAX_TARGETS) {
        log_msg(LOGL_WARN, "metrics", "%zu targets: /metrics shows the "
                "health of the first %u", n, METRICS_MAX_TARGETS);
        n = METRICS_MAX_TARGETS;
    }
    pthread_mutex_lock(&metrics_targets.lock);
    for (size_t i = 0; i < n; i++) {
        metrics_targets.name[i][0] = '\0';     /* not shown until set */
        M_SET(metrics_targets.state[i], HEALTH_UNKNOWN);
    }
    metrics_targets.n = n;
    pthread_mutex_unlock(&metrics_targets.lock);
}

void metrics_target_set(size_t idx, const char *name, enum probe_type type,
                        enum health_state state)
{
    pthread_mutex_lock(&metrics_targets.lock);
    if (idx < metrics_targets.n) {
        snprintf(metrics_targets.name[idx], sizeof(metrics_targets.name[idx]),
                 "%s", name);
        metrics_targets.type[idx] = (unsigned char)type;
        M_SET(metrics_targets.state[idx], state);
    }
    pthread_mutex_unlock(&metrics_targets.lock);
}

void metrics_target_health(size_t idx, enum health_state state)
{
    if (idx < METRICS_MAX_TARGETS)
        M_SET(metrics_targets.state[idx], state);
}

void metrics_probe_done(enum probe_type type, int ok, uint64_t total_us)
{
    struct metrics_type *t;
    size_t b = 0;

    if ((unsigned)type >= METRICS_MAX_TYPES)
        return;
    t = &metrics.type[type];
    /* Eleven compares: a binary search would save nothing measurable. */
    while (b < METRICS_N_BUCKETS && total_us > metrics_buckets[b].us)
        b++;
    M_ADD(t->bucket[b], 1);
    M_ADD(t->sum_us, total_us);
    if (!ok)
        M_ADD(t->failed, 1);
}

void metrics_spool_write(int rc, size_t n)
{
    if (rc < 0)
        M_ADD(metrics.dropped, n);
    M_SET(metrics.spool_errno, rc < 0 ? -rc : 0);
}

void metrics_events_dropped(uint64_t n)
{
    M_ADD(metrics.dropped, n);
}

void metrics_batch_sent(int64_t sent_unix_ms)
{
    metrics.sent_ms = sent_unix_ms;
    metrics.received_ms = 0;
}

void metrics_ack_received(int64_t received_unix_ms)
{
    metrics.received_ms = received_unix_ms;
}

void metrics_batch_shipped(int64_t rtt_us)
{
    M_ADD(metrics.shipped, 1);
    M_SET(metrics.last_ack_us, util_mono_us());
    /* The collector's own estimate, seen from this side: an old collector
     * that leaves received_unix_ms 0 gives no offset rather than a wrong
     * one. */
    if (metrics.sent_ms > 0 && metrics.received_ms > 0)
        M_SET(metrics.offset_ms, metrics.received_ms - metrics.sent_ms -
                                     rtt_us / 2000);
    metrics.sent_ms = metrics.received_ms = 0;
}

void metrics_batch_failed(void)
{
    M_ADD(metrics.ship_failed, 1);
    metrics.sent_ms = metrics.received_ms = 0;
}

void metrics_batch_rejected(int status)
{
    for (size_t i = 0; i < METRICS_N_REJECT; i++)
        if (metrics_reject_status[i] == status)
            M_ADD(metrics.rejected[i], 1);
}

void metrics_collectors_set(const char *const *labels, size_t n)
{
    if (n > METRICS_MAX_COLLECTORS)
        n = METRICS_MAX_COLLECTORS;
    for (size_t i = 0; i < n; i++)
        snprintf(metrics.coll_label[i], sizeof(metrics.coll_label[i]), "%s",
                 labels[i]);
    metrics.n_coll = n;
}

void metrics_collector_shipped(unsigned idx)
{
    if (idx < METRICS_MAX_COLLECTORS)
        M_ADD(metrics.coll[idx].shipped, 1);
}

void metrics_collector_failures(unsigned idx, unsigned in_a_row)
{
    if (idx < METRICS_MAX_COLLECTORS)
        M_SET(metrics.coll[idx].failures, in_a_row);
}

void metrics_loop_turn(struct spool *sp, size_t n_targets, int64_t now_us)
{
    int expect = METRICS_STARTING;
    struct spool_stats st;
    int rc;

    M_SET(metrics.heartbeat_us, now_us);
    M_SET(metrics.targets, n_targets);
    /* Only STARTING moves: a turn while stopping must not undo it. */
    atomic_compare_exchange_strong(&metrics.phase, &expect, METRICS_RUNNING);
    if (metrics.depth_at_us != 0 &&
        now_us - metrics.depth_at_us < METRICS_DEPTH_US)
        return;
    metrics.depth_at_us = now_us;
    rc = spool_stats(sp, &st);
    if (rc < 0) {
        if (!metrics.depth_failing)     /* once, not every second */
            log_msg(LOGL_WARN, "metrics", "cannot read the spool's depth: "
                    "%s (%s)", strerror(-rc), spool_errmsg(sp));
        metrics.depth_failing = 1;
        return;
    }
    metrics.depth_failing = 0;
    M_SET(metrics.spool_events, st.events);
    M_SET(metrics.spool_bytes, st.bytes);
    M_SET(metrics.spool_dropped, st.dropped);
    M_SET(metrics.dead_letter, st.dead_letter);
}

void metrics_loop_stopping(void)
{
    M_SET(metrics.phase, METRICS_STOPPING);
}

void metrics_get_status(struct metrics_status *out)
{
    out->phase = (enum metrics_phase)M_GET(metrics.phase);
    out->heartbeat_us = M_GET(metrics.heartbeat_us);
    out->spool_errno = M_GET(metrics.spool_errno);
}

/* -- rendering -- */

/* A bounded writer: the first overflow sticks, and the page is refused
 * whole rather than cut in the middle of a line. */
struct metrics_out {
    char *buf;
    size_t cap;
    size_t len;
    int full;
};

__attribute__((format(printf, 2, 3)))
static void metrics_put(struct metrics_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = 1;
        return;
    }
    o->len += (size_t)n;
}

static void metrics_family(struct metrics_out *o, const char *name,
                           const char *type, const char *help)
{
    metrics_put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* An unlabelled gauge: its family and its one sample. */
static void metrics_gauge(struct metrics_out *o, const char *name,
                          const char *help, uint64_t v)
{
    metrics_family(o, name, "gauge", help);
    metrics_put(o, "%s %" PRIu64 "\n", name, v);
}

/* A label value as the format wants it: backslash, quote and newline
 * escaped. Ours are probe type names and the version, but the renderer
 * must not depend on that. */
static void metrics_label(struct metrics_out *o, const char *v)
{
    for (; *v && !o->full; v++) {
        if (*v == '\\')
            metrics_put(o, "\\\\");
        else if (*v == '"')
            metrics_put(o, "\\\"");
        else if (*v == '\n')
            metrics_put(o, "\\n");
        else
            metrics_put(o, "%c", *v);
    }
}

/* One scrape's copy of a probe type's counters: each is read once, so the
 * runs (the buckets' sum), the histogram and its count agree within the
 * scrape even while probes finish (separate atomic reads of a runs
 * counter and of the buckets could be one probe apart). */
struct metrics_type_snap {
    uint64_t bucket[METRICS_N_BUCKETS + 1];
    uint64_t runs, failed, sum_us;
};

static void metrics_snap(struct metrics_type_snap *snap)
{
    for (size_t i = 0; i < METRICS_MAX_TYPES; i++) {
        const struct metrics_type *t = &metrics.type[i];
        struct metrics_type_snap *c = &snap[i];

        c->runs = 0;
        for (size_t b = 0; b <= METRICS_N_BUCKETS; b++) {
            c->bucket[b] = M_GET(t->bucket[b]);
            c->runs += c->bucket[b];
        }
        c->failed = M_GET(t->failed);
        c->sum_us = M_GET(t->sum_us);
    }
}

/* "name{type="http"} value" for every probe type built in, zero or not:
 * a series that exists from the start makes rate() work from the start. */
static void metrics_per_type(struct metrics_out *o, const char *name,
                             int failed, const struct metrics_type_snap *snap)
{
    const struct probe_ops *const *all;
    size_t n;

    all = probe_ops_all(&n);
    for (size_t i = 0; i < n; i++) {
        const struct metrics_type_snap *t;

        if ((unsigned)all[i]->type >= METRICS_MAX_TYPES)
            continue;
        t = &snap[all[i]->type];
        metrics_put(o, "%s{type=\"", name);
        metrics_label(o, all[i]->name);
        metrics_put(o, "\"} %" PRIu64 "\n", failed ? t->failed : t->runs);
    }
}

static void metrics_histogram(struct metrics_out *o, const char *name,
                              const struct metrics_type_snap *snap)
{
    const struct probe_ops *const *all;
    size_t n;

    all = probe_ops_all(&n);
    for (size_t i = 0; i < n; i++) {
        const struct metrics_type_snap *t;
        uint64_t cum = 0;

        if ((unsigned)all[i]->type >= METRICS_MAX_TYPES)
            continue;
        t = &snap[all[i]->type];
        for (size_t b = 0; b < METRICS_N_BUCKETS; b++) {
            cum += t->bucket[b];
            metrics_put(o, "%s_bucket{type=\"", name);
            metrics_label(o, all[i]->name);
            metrics_put(o, "\",le=\"%s\"} %" PRIu64 "\n",
                        metrics_buckets[b].le, cum);
        }
        cum += t->bucket[METRICS_N_BUCKETS];
        metrics_put(o, "%s_bucket{type=\"", name);
        metrics_label(o, all[i]->name);
        metrics_put(o, "\",le=\"+Inf\"} %" PRIu64 "\n", cum);
        metrics_put(o, "%s_sum{type=\"", name);
        metrics_label(o, all[i]->name);
        metrics_put(o, "\"} %" PRIu64 ".%06" PRIu64 "\n",
                    t->sum_us / 1000000, t->sum_us % 1000000);
        metrics_put(o, "%s_count{type=\"", name);
        metrics_label(o, all[i]->name);
        metrics_put(o, "\"} %" PRIu64 "\n", cum);
    }
}

/* One line per target whose health is known: 1 healthy, 0 unhealthy.
 * Unknown (new, or reset by a reload) is no line, as "never acked" is for
 * the ack age: absent, not a value that reads as a verdict. */
static void metrics_target_lines(struct metrics_out *o)
{
    static const char name[] = "sextant_agent_target_healthy";

    metrics_family(o, name, "gauge", "Health of each target as the agent "
                   "judges it (healthy_after / unhealthy_after results in "
                   "a row): 1 healthy, 0 unhealthy; absent while unknown.");
    pthread_mutex_lock(&metrics_targets.lock);
    for (size_t i = 0; i < metrics_targets.n; i++) {
        int st = M_GET(metrics_targets.state[i]);
        const struct probe_ops *ops;

        if (!metrics_targets.name[i][0] || st == HEALTH_UNKNOWN)
            continue;
        ops = probe_ops_find((enum probe_type)metrics_targets.type[i]);
        metrics_put(o, "%s{target=\"", name);
        metrics_label(o, metrics_targets.name[i]);
        metrics_put(o, "\",type=\"");
        metrics_label(o, ops ? ops->name : "unknown");
        metrics_put(o, "\"} %d\n", st == HEALTH_HEALTHY);
    }
    pthread_mutex_unlock(&metrics_targets.lock);
}

/* Seconds from a signed count of @unit_per_s units, exactly, as text. */
static void metrics_seconds(struct metrics_out *o, const char *name,
                            int64_t v, int64_t unit_per_s, int digits)
{
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    metrics_put(o, "%s %s%" PRIu64 ".%0*" PRIu64 "\n", name,
                v < 0 ? "-" : "", a / (uint64_t)unit_per_s, digits,
                a % (uint64_t)unit_per_s);
}

int metrics_render(char *buf, size_t cap, int64_t now_us, size_t *len)
{
    struct metrics_out o = { .buf = buf, .cap = cap };
    struct metrics_type_snap snap[METRICS_MAX_TYPES];
    int64_t ack_us = M_GET(metrics.last_ack_us);
    int64_t off_ms = M_GET(metrics.offset_ms);
    uint64_t targets, handed;

    if (cap == 0)
        return -EMSGSIZE;
    buf[0] = '\0';
    metrics_family(&o, "sextant_agent_build_info", "gauge",
                   "Always 1; the agent's version is in the label.");
    metrics_put(&o, "sextant_agent_build_info{version=\"");
    metrics_label(&o, SEXTANT_VERSION);
    metrics_put(&o, "\"} 1\n");

    metrics_gauge(&o, "sextant_agent_targets",
                  "Targets in the configuration in use.",
                  (uint64_t)M_GET(metrics.targets));
    /* probers: N. Two loads: a reload may have cut targets before the
     * loop's next reselect cut handed_off. */
    targets = (uint64_t)M_GET(metrics.targets);
    handed = (uint64_t)M_GET(metrics.handed_off);
    metrics_gauge(&o, "sextant_agent_targets_probed",
                  "Targets this node probes (probers: N hands the others "
                  "to other nodes).",
                  targets > handed ? targets - handed : 0);
    metrics_gauge(&o, "sextant_agent_targets_handed_off",
                  "Targets with probers: N that other nodes of the cluster "
                  "probe, not this one.",
                  handed);
    metrics_gauge(&o, "sextant_agent_live_nodes",
                  "Nodes of the cluster in the live list the collectors "
                  "sent (probers: N); 0 before any list.",
                  (uint64_t)M_GET(metrics.live_nodes));

    metrics_target_lines(&o);

    metrics_family(&o, "sextant_agent_probes_total", "counter",
                   "Probe runs finished, by probe type.");
    metrics_snap(snap);
    metrics_per_type(&o, "sextant_agent_probes_total", 0, snap);
    metrics_family(&o, "sextant_agent_probes_failed_total", "counter",
                   "Probe runs that failed, by probe type.");
    metrics_per_type(&o, "sextant_agent_probes_failed_total", 1, snap);
    metrics_family(&o, "sextant_agent_probe_duration_seconds", "histogram",
                   "Duration of probe runs, by probe type.");
    metrics_histogram(&o, "sextant_agent_probe_duration_seconds", snap);

    metrics_family(&o, "sextant_agent_spool_events", "gauge",
                   "Events in the spool not yet acked by the collector.");
    metrics_put(&o, "sextant_agent_spool_events %" PRIu64 "\n",
                (uint64_t)M_GET(metrics.spool_events));
    metrics_family(&o, "sextant_agent_spool_bytes", "gauge",
                   "Packed bytes of the events in the spool.");
    metrics_put(&o, "sextant_agent_spool_bytes %" PRIu64 "\n",
                (uint64_t)M_GET(metrics.spool_bytes));
    /* Both ways of losing an event in one counter, the one to alert on;
     * the spool's share (persisted, so it survives restarts) is also on
     * its own below. */
    metrics_family(&o, "sextant_agent_events_dropped_total", "counter",
                   "Events lost: refused by the spool (a failed write), or "
                   "dropped from it when full (spool.max_bytes; reported "
                   "to the collectors as drops).");
    metrics_put(&o, "sextant_agent_events_dropped_total %" PRIu64 "\n",
                (uint64_t)M_GET(metrics.dropped) +
                    (uint64_t)M_GET(metrics.spool_dropped));

    metrics_family(&o, "sextant_agent_batches_shipped_total", "counter",
                   "Batches the collector acked.");
    metrics_put(&o, "sextant_agent_batches_shipped_total %" PRIu64 "\n",
                (uint64_t)M_GET(metrics.shipped));
    metrics_family(&o, "sextant_agent_batches_failed_total", "counter",
                   "Batches that failed to ship (to be retried).");
    metrics_put(&o, "sextant_agent_batches_failed_total %" PRIu64 "\n",
                (uint64_t)M_GET(metrics.ship_failed));
    metrics_family(&o, "sextant_agent_batches_rejected_total", "counter",
                   "Batches a collector refused for good (HTTP 400, 413, "
                   "415), set aside as dead letters, by status.");
    for (size_t i = 0; i < METRICS_N_REJECT; i++)
        metrics_put(&o, "sextant_agent_batches_rejected_total{status=\"%d\"} "
                    "%" PRIu64 "\n", metrics_reject_status[i],
                    (uint64_t)M_GET(metrics.rejected[i]));
    metrics_family(&o, "sextant_agent_dead_letter_events", "gauge",
                   "Events in the spool's dead_letter table.");
    metrics_put(&o, "sextant_agent_dead_letter_events %" PRIu64 "\n",
                (uint64_t)M_GET(metrics.dead_letter));
    metrics_family(&o, "sextant_agent_spool_dropped_events_total", "counter",
                   "Events the full spool deleted before every collector "
                   "had them (reported to the collectors as drops); kept "
                   "in the spool file across restarts.");
    metrics_put(&o, "sextant_agent_spool_dropped_events_total %" PRIu64
                "\n", (uint64_t)M_GET(metrics.spool_dropped));
    metrics_family(&o, "sextant_agent_collector_batches_shipped_total",
                   "counter", "Batches acked, by collector.");
    for (size_t i = 0; i < metrics.n_coll; i++) {
        metrics_put(&o, "sextant_agent_collector_batches_shipped_total"
                    "{collector=\"");
        metrics_label(&o, metrics.coll_label[i]);
        metrics_put(&o, "\"} %" PRIu64 "\n",
                    (uint64_t)M_GET(metrics.coll[i].shipped));
    }
    metrics_family(&o, "sextant_agent_collector_failures", "gauge",
                   "Failed shipments in a row, by collector; 0 when the "
                   "last one was delivered.");
    for (size_t i = 0; i < metrics.n_coll; i++) {
        metrics_put(&o, "sextant_agent_collector_failures{collector=\"");
        metrics_label(&o, metrics.coll_label[i]);
        metrics_put(&o, "\"} %" PRIu64 "\n",
                    (uint64_t)M_GET(metrics.coll[i].failures));
    }
    /* Absent, not 0 or NaN, before the first ack: "never" is not "just
     * now", and absent() can alert on it. */
    metrics_family(&o, "sextant_agent_last_ack_age_seconds", "gauge",
                   "Seconds since the collector last acked a batch; absent "
                   "before the first ack.");
    if (ack_us != METRICS_ABSENT)
        metrics_seconds(&o, "sextant_agent_last_ack_age_seconds",
                        now_us > ack_us ? now_us - ack_us : 0, 1000000, 6);
    metrics_family(&o, "sextant_agent_clock_offset_seconds", "gauge",
                   "Collector clock minus agent clock, estimated from the "
                   "last ack (receive - send - RTT/2); absent before it.");
    if (off_ms != METRICS_ABSENT)
        metrics_seconds(&o, "sextant_agent_clock_offset_seconds", off_ms,
                        1000, 3);
    if (o.full)
        return -EMSGSIZE;
    *len = o.len;
    return 0;
}
