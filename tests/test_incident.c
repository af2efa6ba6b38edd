/* test_incident.c -- collector/incident.c against ground truth: scenarios
 * of three agents probing three regions once a second, generated with
 * explicit times by the model of incident_world.h (the agents' state
 * machines, DNS views and probes through the global name), fed in the
 * engine's order, and every computed time asserted to the millisecond.
 * The worked example of docs/design.md ("Incidents") is the first
 * scenario. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "incident_priv.h"      /* n_agents: rows kept (B3) */
#include "incident_world.h"

/* ---- realloc failing on demand (tests/incident.cmake wraps it) ---- */

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int fail_realloc;

void *__wrap_realloc(void *p, size_t n)
{
    return fail_realloc ? NULL : __real_realloc(p, n);
}

/* ---- the engine's output ---- */

struct rec {
    struct inc_record all[16];
    size_t n;
    size_t opened, updated, closed;
};

static void sink(void *ctx, enum inc_change what, const struct inc_record *r)
{
    struct rec *rc = ctx;

    (void)r;
    if (what == INC_OPENED)
        rc->opened++;
    else if (what == INC_UPDATED)
        rc->updated++;
    else
        rc->closed++;
}

static void collect(void *ctx, const struct inc_record *r)
{
    struct rec *rc = ctx;

    assert_true(rc->n < 16);
    rc->all[rc->n++] = *r;
}

static void incidents(const struct inc_engine *e, struct rec *out)
{
    out->n = 0;
    inc_engine_each(e, collect, out);
}

/* Feeds world_fed[from..) (events with t < @until only when until is not
 * INC_NONE) and returns the index reached. */
static size_t feed_until(struct inc_engine *e, size_t from, int64_t until)
{
    size_t i = from;

    for (; i < world_n_evs; i++) {
        if (until != INC_NONE && world_fed[i]->t_ms >= until)
            break;
        assert_int_equal(inc_engine_feed(e, world_fed[i]), 0);
    }
    return i;
}

struct region_states {
    struct inc_region_state st[WORLD_REGIONS];
};

static void region_cb(void *ctx, const struct inc_region_state *st)
{
    struct region_states *rs = ctx;
    size_t r = (size_t)(st->region - world_services[0].regions);

    assert_true(r < WORLD_REGIONS);
    rs->st[r] = *st;
}

static void states(const struct inc_engine *e, struct region_states *rs,
                   size_t *unmapped, const struct inc_record **open)
{
    size_t u;

    memset(rs, 0, sizeof(*rs));
    u = inc_engine_service_state(e, &world_services[0], region_cb, rs, open);
    if (unmapped)
        *unmapped = u;
}

static void assert_time(int64_t got, int64_t want)
{
    assert_int_equal(got, want);
}

static void assert_same_record(const struct inc_record *a,
                               const struct inc_record *b)
{
    assert_ptr_equal(a->service, b->service);
    assert_ptr_equal(a->region, b->region);
    assert_ptr_equal(a->to_region, b->to_region);
    assert_int_equal(a->manual, b->manual);
    assert_time(a->opened_ms, b->opened_ms);
    assert_time(a->first_failure_ms, b->first_failure_ms);
    assert_time(a->detected_ms, b->detected_ms);
    assert_time(a->failover_start_ms, b->failover_start_ms);
    assert_time(a->dns_first_ms, b->dns_first_ms);
    assert_time(a->dns_all_ms, b->dns_all_ms);
    assert_time(a->restored_ms, b->restored_ms);
    assert_time(a->closed_ms, b->closed_ms);
    assert_int_equal(a->has_rpo, b->has_rpo);
    assert_true(a->rpo_ms == b->rpo_ms);
}

/* An incident as a scenario expects it: times in ms after WORLD_T, NEVER for
 * "not (yet)"; regions by index, to -1 for none; rpo_ms < 0 for none. */
#define NEVER INT64_MIN

struct want {
    size_t svc;
    int region, to, manual;
    int64_t opened, first_failure, detected, failover_start, dns_first,
            dns_all, restored, closed;
    double rpo_ms;
    /* inc_durations: time to detect, to fail over, RTO, outage (ms) */
    int64_t ttd, ttf, rto, outage;
};

static int64_t after_t0(int64_t rel)
{
    return rel == NEVER ? INC_NONE : WORLD_T + rel;
}

static void assert_incident(const struct inc_record *r, const struct want *w)
{
    const struct topo_service *sv = &world_services[w->svc];
    struct inc_durations d;

    assert_ptr_equal(r->service, sv);
    assert_ptr_equal(r->region, &sv->regions[w->region]);
    if (w->to < 0)
        assert_null(r->to_region);
    else
        assert_ptr_equal(r->to_region, &sv->regions[w->to]);
    assert_int_equal(r->manual, w->manual);
    assert_time(r->opened_ms, after_t0(w->opened));
    assert_time(r->first_failure_ms, after_t0(w->first_failure));
    assert_time(r->detected_ms, after_t0(w->detected));
    assert_time(r->failover_start_ms, after_t0(w->failover_start));
    assert_time(r->dns_first_ms, after_t0(w->dns_first));
    assert_time(r->dns_all_ms, after_t0(w->dns_all));
    assert_time(r->restored_ms, after_t0(w->restored));
    assert_time(r->closed_ms, after_t0(w->closed));
    assert_int_equal(r->has_rpo, w->rpo_ms >= 0);
    if (w->rpo_ms >= 0)
        assert_true(r->rpo_ms == w->rpo_ms);
    inc_durations(r, &d);
    assert_time(d.time_to_detect, w->ttd == NEVER ? INC_NONE : w->ttd);
    assert_time(d.time_to_failover, w->ttf == NEVER ? INC_NONE : w->ttf);
    assert_time(d.rto, w->rto == NEVER ? INC_NONE : w->rto);
    assert_time(d.outage, w->outage == NEVER ? INC_NONE : w->outage);
}

/* ---- the worked example (docs/design.md, "Incidents") ---- */

static const int64_t AP_SWITCH[WORLD_AGENTS] = { 3120, 3350, 3650 };

static int ap_ok(int a, size_t r, int64_t t)
{
    (void)a;
    return r != 0 || t < WORLD_T;
}

static uint64_t ap_view(int a, int64_t t)
{
    return t >= WORLD_T + AP_SWITCH[a] ? 2 : 1;
}

/* The app in eu-west-1 is killed at T; the operator records a manual
 * failover at T+2.78 and flips DNS to us-east-1 (TTL 1 s); the agents see
 * the new answer at T+3.12, T+3.35, T+3.65. us-east-1's replication lag
 * is sampled each second at .500: 0.25 s at T+2.5, 0.9 s after. */
static void gen_junk(void);

static void gen_worked_example(int junk)
{
    struct world w;
    struct inc_event *ev;

    world_n_evs = 0;
    world_init(&w, TOPO_ACTIVE_PASSIVE, ap_ok, ap_view);
    world_gen(&w);
    for (int64_t t = w.start + 500; t < w.end; t += 1000) {
        ev = world_ev(t, 0, INC_EV_METRIC, world_stores[0].lag_target[1]);
        ev->metric = WORLD_LAG_METRIC;
        ev->value = t < WORLD_T + 2500    ? 0.1
                    : t == WORLD_T + 2500 ? 0.25
                                          : 0.9;
    }
    ev = world_ev(WORLD_T + 2780, 1, INC_EV_FAILOVER, "");
    ev->fo_kind = "manual";
    ev->fo_service = "app";
    ev->from_region = WORLD_REGION[0];
    ev->to_region = WORLD_REGION[1];
    if (junk)
        gen_junk();
    world_sort();
}

static void assert_worked_example(const struct inc_record *r)
{
    static const struct want w = {
        .svc = 0, .region = 0, .to = 1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = 2780, .dns_first = 3120, .dns_all = 3650,
        .restored = 3400, .closed = 3400 + 60000, .rpo_ms = 250,
        .ttd = 2170, .ttf = 1020, .rto = 2940, .outage = NEVER,
    };

    assert_incident(r, &w);
}

static void test_worked_example_comes_out_to_the_millisecond(void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct region_states rs;
    const struct inc_record *open;
    size_t i, unmapped;

    (void)state;
    gen_worked_example(0);
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);

    /* Before the third failure of the second agent: no incident. */
    i = feed_until(e, 0, WORLD_T + 2630);
    states(e, &rs, &unmapped, &open);
    assert_null(open);
    assert_int_equal(rs.st[0].health, 1);
    assert_int_equal(rs.st[0].unhealthy, 1);
    assert_int_equal(rs.st[0].agents, 3);
    assert_int_equal(rs.st[0].serving, 3);

    /* The first agent has switched, the others not yet: a split. */
    i = feed_until(e, i, WORLD_T + 3200);
    states(e, &rs, &unmapped, &open);
    assert_non_null(open);
    assert_int_equal(rs.st[0].health, 0);
    assert_time(rs.st[0].since_ms, WORLD_T + 2630);
    assert_int_equal(rs.st[0].serving, 2);
    assert_int_equal(rs.st[1].serving, 1);
    assert_int_equal(unmapped, 0);
    assert_time(open->closed_ms, INC_NONE);

    feed_until(e, i, INC_NONE);
    incidents(e, &rc);
    assert_int_equal(rc.n, 1);
    assert_worked_example(&rc.all[0]);
    assert_int_equal(rc.opened, 1);
    assert_int_equal(rc.closed, 1);
    /* failover start + to + RPO, DNS first, restored, DNS all */
    assert_int_equal(rc.updated, 4);


    states(e, &rs, &unmapped, &open);
    assert_null(open);
    assert_int_equal(rs.st[1].serving, 3);
    assert_int_equal(rs.st[1].health, 1);
    inc_engine_free(e);
}

/* A clone taken in the middle of the incident, world_fed the rest, ends equal
 * to the original world_fed the same rest. */
static void test_clone_fed_the_rest_equals_the_original(void **state)
{
    struct rec a = { 0 }, b = { 0 };
    struct inc_engine *e, *c;
    size_t i;

    (void)state;
    gen_worked_example(0);
    e = inc_engine_new(&world_topo, sink, &a);
    assert_non_null(e);
    i = feed_until(e, 0, WORLD_T + 3000);
    c = inc_engine_clone(e);
    assert_non_null(c);
    assert_time(inc_engine_horizon(c), inc_engine_horizon(e));
    feed_until(e, i, INC_NONE);
    feed_until(c, i, INC_NONE);
    incidents(e, &a);
    incidents(c, &b);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_same_record(&a.all[0], &b.all[0]);
    assert_worked_example(&b.all[0]);
    /* The original is untouched by the clone's feeding and freeing. */
    inc_engine_free(c);
    incidents(e, &a);
    assert_worked_example(&a.all[0]);
    inc_engine_free(e);
}

static void test_out_of_order_event_is_refused_and_changes_nothing(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct inc_event late;
    size_t i;

    (void)state;
    gen_worked_example(0);
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    i = feed_until(e, 0, WORLD_T + 2000);
    /* Earlier time, same key again, and an earlier agent at the same
     * millisecond: all refused. */
    late = *world_fed[i - 1];
    late.t_ms -= 1;
    late.ok = 0;
    assert_int_equal(inc_engine_feed(e, &late), -EINVAL);
    assert_int_equal(inc_engine_feed(e, world_fed[i - 1]), -EINVAL);
    late = *world_fed[i - 1];
    late.agent_id -= 1;
    assert_int_equal(inc_engine_feed(e, &late), -EINVAL);
    assert_int_equal(inc_engine_feed(e, NULL), -EINVAL);
    /* A time no timer could be added to. */
    late = *world_fed[i];
    late.t_ms = INT64_MAX - 5;
    assert_int_equal(inc_engine_feed(e, &late), -EINVAL);
    assert_time(inc_engine_horizon(e), world_fed[i - 1]->t_ms);
    /* After an advance, an event before it is late too. */
    inc_engine_advance(e, world_fed[i]->t_ms - 1);
    late = *world_fed[i];
    late.t_ms -= 2;
    assert_int_equal(inc_engine_feed(e, &late), -EINVAL);
    feed_until(e, i, INC_NONE);
    incidents(e, &rc);
    assert_int_equal(rc.n, 1);
    assert_worked_example(&rc.all[0]);
    inc_engine_free(e);
}

static void test_durations_are_none_when_an_end_is_missing(void **state)
{
    struct inc_record r = {
        .service = &world_services[0], .first_failure_ms = 1000,
        .detected_ms = 3500, .failover_start_ms = INC_NONE,
        .dns_first_ms = INC_NONE, .dns_all_ms = INC_NONE,
        .restored_ms = INC_NONE, .closed_ms = INC_NONE,
    };
    struct inc_durations d;

    (void)state;
    world_topo_make(TOPO_SHARDED, 1);
    inc_durations(&r, &d);
    assert_int_equal(d.time_to_detect, 2500);
    assert_int_equal(d.time_to_failover, INC_NONE);
    assert_int_equal(d.rto, INC_NONE);
    assert_int_equal(d.outage, INC_NONE);
    r.restored_ms = 9000;
    r.first_failure_ms = INC_NONE;
    inc_durations(&r, &d);
    assert_int_equal(d.time_to_detect, INC_NONE);
    assert_int_equal(d.rto, INC_NONE);
    assert_int_equal(d.outage, INC_NONE);
    r.first_failure_ms = 1000;
    inc_durations(&r, &d);
    assert_int_equal(d.rto, 8000);
    assert_int_equal(d.outage, 8000);
}

/* ---- the other patterns and the no-incident cases ---- */

/* Runs the world @w over a fresh engine and returns its incidents (and
 * the engine, to look at its state; caller frees). */
static struct inc_engine *run_world(const struct world *w, struct rec *rc)
{
    struct inc_engine *e;

    world_n_evs = 0;
    world_gen(w);
    world_sort();
    e = inc_engine_new(&world_topo, sink, rc);
    assert_non_null(e);
    feed_until(e, 0, INC_NONE);
    incidents(e, rc);
    return e;
}

/* Runs @w and asserts it gives exactly the incident @want, opened and
 * (if it closes) closed once. */
static void expect_one(const struct world *w, const struct want *want)
{
    struct rec rc = { 0 };
    struct inc_engine *e = run_world(w, &rc);

    assert_int_equal(rc.n, 1);
    assert_int_equal(rc.opened, 1);
    assert_int_equal(rc.closed, want->closed != NEVER);
    assert_incident(&rc.all[0], want);
    inc_engine_free(e);
}

static const int64_t AA_DRAIN[WORLD_AGENTS] = { 5120, 5350, 5650 };

static int aa_ok(int a, size_t r, int64_t t)
{
    (void)a;
    return r != 1 || t < WORLD_T;
}

/* All three regions in the answers until each agent sees us-east-1
 * drained out of them. */
static uint64_t aa_view(int a, int64_t t)
{
    return t >= WORLD_T + AA_DRAIN[a] ? 1 | 4 : 1 | 2 | 4;
}

static void test_active_active_drain_records_the_drain(void **state)
{
    struct world w;
    /* Restored: the second agent's first probe through the global name
     * after its answers lost us-east-1. */
    static const struct want want = {
        .svc = 0, .region = 1, .to = -1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = 5120, .dns_first = 5120, .dns_all = 5650,
        .restored = 5400, .closed = 65400, .rpo_ms = -1,
        .ttd = 2170, .ttf = 3020, .rto = 4940, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_ACTIVE, aa_ok, aa_view);
    expect_one(&w, &want);
}

static int shard_ok(int a, size_t r, int64_t t)
{
    (void)a;
    return r != 1 || t < WORLD_T || t >= WORLD_T + 20000;
}

static void test_sharded_outage_lasts_until_the_region_is_healthy(
    void **state)
{
    struct world w;
    /* Restored: healthy again (rise 2) at the second agent's second ok
     * probe, 1 of 3 still unhealthy being not more than half. */
    static const struct want want = {
        .svc = 0, .region = 1, .to = -1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = NEVER, .dns_first = NEVER, .dns_all = NEVER,
        .restored = 21630, .closed = 81630, .rpo_ms = -1,
        .ttd = 2170, .ttf = NEVER, .rto = 21170, .outage = 21170,
    };

    (void)state;
    world_init(&w, TOPO_SHARDED, shard_ok, NULL);
    expect_one(&w, &want);
}

/* The third agent's network breaks at T: it sees everything fail. */
static int broken_ok(int a, size_t r, int64_t t)
{
    (void)r;
    return a != 2 || t < WORLD_T;
}

static void test_one_agent_with_a_broken_network_is_no_incident(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct world w;
    struct region_states rs;
    const struct inc_record *open;

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, broken_ok, NULL);
    e = run_world(&w, &rc);
    assert_int_equal(rc.n, 0);
    assert_int_equal(rc.opened, 0);
    states(e, &rs, NULL, &open);
    assert_null(open);
    for (size_t r = 0; r < WORLD_REGIONS; r++) {
        assert_int_equal(rs.st[r].health, 1);
        assert_int_equal(rs.st[r].agents, 3);
        assert_int_equal(rs.st[r].unhealthy, 1);
        assert_int_equal(rs.st[r].stale, 0);
    }
    inc_engine_free(e);
}

/* eu-west-1 fails for 4 s every 8 s, three times. */
static int flap_ok(int a, size_t r, int64_t t)
{
    int64_t d = t - WORLD_T;

    (void)a;
    return r != 0 || d < 0 || d >= 20000 || d % 8000 >= 4000;
}

static void test_flapping_endpoint_is_one_incident_whose_restore_moves(
    void **state)
{
    struct world w;
    /* Restored: healthy again at T+21630 (rise 2, second agent); then
     * good probes through the global name by the third agent (T+21700)
     * and the first (T+22200): more than half. */
    static const struct want want = {
        .svc = 0, .region = 0, .to = -1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = NEVER, .dns_first = NEVER, .dns_all = NEVER,
        .restored = 22200, .closed = 82200, .rpo_ms = -1,
        .ttd = 2170, .ttf = NEVER, .rto = 21740, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, flap_ok, NULL);
    expect_one(&w, &want);
}

/* The third agent falls silent at T-5 s; the first sees eu-west-1 fail
 * alone during [T, T+5 s); from T+10 s it is down for everyone. */
static int stale_alive(int a, int64_t t)
{
    return a != 2 || t < WORLD_T - 5000;
}

static int stale_ok(int a, size_t r, int64_t t)
{
    int64_t d = t - WORLD_T;

    return r != 0 || d < 0 || (a == 0 ? d >= 5000 && d < 10000 : d < 10000);
}

struct stale_seen {
    size_t n;
    int64_t id, last;
};

static void stale_cb(void *ctx, int64_t agent_id, int64_t last_ms)
{
    struct stale_seen *s = ctx;

    s->n++;
    s->id = agent_id;
    s->last = last_ms;
}

static void test_stale_agent_leaves_the_quorum(void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct world w;
    struct region_states rs;
    struct stale_seen seen = { 0 };
    const struct inc_record *open;
    size_t i;
    static const struct want want = {
        .svc = 0, .region = 0, .to = -1, .manual = 0,
        .opened = 12630, .first_failure = 10460, .detected = 12630,
        .failover_start = NEVER, .dns_first = NEVER, .dns_all = NEVER,
        .restored = NEVER, .closed = NEVER, .rpo_ms = -1,
        .ttd = 2170, .ttf = NEVER, .rto = NEVER, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, stale_ok, NULL);
    w.end = WORLD_T + 20000;
    w.alive = stale_alive;
    world_n_evs = 0;
    world_gen(&w);
    world_sort();
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);

    /* Its last probe of eu-west-1 was at T-5.03 s, its interval 1 s:
     * stale at T-2.03 s exactly, whenever the engine is told the time. */
    i = feed_until(e, 0, WORLD_T - 2031);
    inc_engine_advance(e, WORLD_T - 2031);
    states(e, &rs, NULL, NULL);
    assert_int_equal(rs.st[0].stale, 0);
    assert_int_equal(rs.st[0].agents, 3);
    inc_engine_advance(e, WORLD_T - 2030);
    states(e, &rs, NULL, NULL);
    assert_int_equal(rs.st[0].stale, 1);
    assert_int_equal(rs.st[0].agents, 2);
    inc_engine_stale_agents(e, &world_services[0], stale_cb, &seen);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.id, 30);
    assert_time(seen.last, WORLD_T - 5030);

    /* 1 unhealthy of 2 is not more than half. */
    i = feed_until(e, i, WORLD_T + 3000);
    states(e, &rs, NULL, &open);
    assert_null(open);
    assert_int_equal(rs.st[0].health, 1);
    assert_int_equal(rs.st[0].unhealthy, 1);
    assert_int_equal(rs.st[0].agents, 2);

    /* 2 of 2 is. */
    feed_until(e, i, INC_NONE);
    states(e, &rs, NULL, &open);
    assert_non_null(open);
    assert_int_equal(rs.st[0].health, 0);
    assert_int_equal(rs.st[0].unhealthy, 2);
    assert_incident(open, &want);
    inc_engine_free(e);
}

/* The live driver tells the engine the time between commits; advancing
 * to the next event's time before each one must change nothing. */
static void feed_advancing(struct inc_engine *e)
{
    for (size_t i = 0; i < world_n_evs; i++) {
        if (i > 0 && world_fed[i]->t_ms > world_fed[i - 1]->t_ms)
            inc_engine_advance(e, world_fed[i]->t_ms);
        assert_int_equal(inc_engine_feed(e, world_fed[i]), 0);
        assert_time(inc_engine_horizon(e), world_fed[i]->t_ms);
    }
}

static void test_advancing_between_events_changes_nothing(void **state)
{
    struct rec a = { 0 }, b = { 0 };
    struct inc_engine *e1, *e2;
    struct world w;

    (void)state;
    /* The stale scenario: its timers decide the outcome. */
    world_init(&w, TOPO_ACTIVE_PASSIVE, stale_ok, NULL);
    w.alive = stale_alive;
    world_n_evs = 0;
    world_gen(&w);
    world_sort();
    e1 = inc_engine_new(&world_topo, sink, &a);
    e2 = inc_engine_new(&world_topo, sink, &b);
    assert_non_null(e1);
    assert_non_null(e2);
    feed_until(e1, 0, INC_NONE);
    feed_advancing(e2);
    incidents(e1, &a);
    incidents(e2, &b);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_same_record(&a.all[0], &b.all[0]);
    assert_int_equal(a.updated, b.updated);
    inc_engine_free(e1);
    inc_engine_free(e2);
}

/* Events the topology does not know, from a fourth agent and the known
 * ones: probes and states of an unknown target, a DNS change of another
 * name, a metric of an unknown target, an operator event naming no
 * known service or region, and a deploy. */
static void gen_junk(void)
{
    struct inc_event *ev;

    for (int64_t t = WORLD_T - 5000; t < WORLD_T + 30000; t += 700) {
        int a = (int)((t / 700) % 4);

        ev = world_ev(t, a, INC_EV_PROBE, "nope");
        ev->ok = 0;
        ev = world_ev(t, a, INC_EV_STATE, "nope");
        ev->healthy = 0;
        ev = world_ev(t + 1, a, INC_EV_DNS, "nope-dns");
        ev->dns_name = "elsewhere.test";
        world_answers(ev, 0, 2);
        ev = world_ev(t + 2, a, INC_EV_METRIC, "nope-db");
        ev->metric = WORLD_LAG_METRIC;
        ev->value = 99;
    }
    ev = world_ev(WORLD_T + 100, 3, INC_EV_FAILOVER, "");
    ev->fo_kind = "failover";
    ev->fo_service = "ghost";
    ev->from_region = WORLD_REGION[0];
    ev = world_ev(WORLD_T + 200, 3, INC_EV_FAILOVER, "");
    ev->fo_kind = "failover";
    ev->from_region = "nowhere";
    ev = world_ev(WORLD_T + 300, 3, INC_EV_FAILOVER, "");
    ev->fo_kind = "deploy";
    ev->fo_service = "app";
}

static void test_unknown_targets_and_names_are_ignored(void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct stale_seen seen = { 0 };

    (void)state;
    gen_worked_example(1);
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    feed_until(e, 0, INC_NONE);
    incidents(e, &rc);
    assert_int_equal(rc.n, 1);
    assert_worked_example(&rc.all[0]);
    assert_int_equal(rc.updated, 4);
    inc_engine_stale_agents(e, &world_services[0], stale_cb, &seen);
    assert_int_equal(seen.n, 0);
    inc_engine_free(e);
}

static void feed_one(struct inc_engine *e, struct inc_event *ev)
{
    static uint64_t seq;

    ev->seq = ++seq;
    assert_int_equal(inc_engine_feed(e, ev), 0);
}

static void test_failover_of_another_service_opens_nothing_here(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct inc_event *ev;
    static const struct want want = {
        .svc = 1, .region = 0, .to = 1, .manual = 1,
        .opened = 0, .first_failure = NEVER, .detected = NEVER,
        .failover_start = 0, .dns_first = NEVER, .dns_all = NEVER,
        .restored = NEVER, .closed = NEVER, .rpo_ms = -1,
        .ttd = NEVER, .ttf = NEVER, .rto = NEVER, .outage = NEVER,
    };

    (void)state;
    world_topo_make(TOPO_ACTIVE_PASSIVE, 2);
    world_n_evs = 0;
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    /* By name, then by its regions only: both are "other"'s. */
    ev = world_ev(WORLD_T, 0, INC_EV_FAILOVER, "");
    ev->fo_kind = "manual";
    ev->fo_service = "other";
    ev->from_region = "o-eu-west-1";
    ev->to_region = "o-us-east-1";
    feed_one(e, ev);
    ev = world_ev(WORLD_T + 1000, 0, INC_EV_FAILOVER, "");
    ev->fo_kind = "failover";
    ev->from_region = "o-us-east-1";
    feed_one(e, ev);
    /* A failover naming "other" with app's region names still is
     * other's. */
    ev = world_ev(WORLD_T + 2000, 0, INC_EV_FAILOVER, "");
    ev->fo_kind = "manual";
    ev->fo_service = "other";
    ev->from_region = WORLD_REGION[0];
    feed_one(e, ev);
    incidents(e, &rc);
    assert_int_equal(rc.n, 1);
    assert_incident(&rc.all[0], &want);
    inc_engine_free(e);
}

/* The operator fails over at T+1.5 s, before quorum: the incident is
 * the operator's (opened then, manual), detection comes later, and the
 * RPO is us-east-1's lag sampled at that very millisecond, world_fed after
 * the event. */
static void test_manual_failover_before_quorum_opens_the_incident(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct inc_event *ev;
    struct world w;
    static const struct want want = {
        .svc = 0, .region = 0, .to = 1, .manual = 1,
        .opened = 1500, .first_failure = 460, .detected = 2630,
        .failover_start = 1500, .dns_first = 3120, .dns_all = 3650,
        .restored = 3400, .closed = 63400, .rpo_ms = 500,
        .ttd = 2170, .ttf = 1020, .rto = 2940, .outage = NEVER,
    };

    (void)state;
    world_n_evs = 0;
    world_init(&w, TOPO_ACTIVE_PASSIVE, ap_ok, ap_view);
    world_gen(&w);
    ev = world_ev(WORLD_T + 1500, 0, INC_EV_FAILOVER, "");
    ev->fo_kind = "manual";
    ev->from_region = WORLD_REGION[0];
    ev->to_region = WORLD_REGION[1];
    for (int64_t t = w.start + 500; t < w.end; t += 1000) {
        ev = world_ev(t, 1, INC_EV_METRIC, world_stores[0].lag_target[1]);
        ev->metric = WORLD_LAG_METRIC;
        ev->value = t == WORLD_T + 1500 ? 0.5 : 0.2;
    }
    world_sort();
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    feed_until(e, 0, INC_NONE);
    incidents(e, &rc);
    assert_int_equal(rc.n, 1);
    assert_incident(&rc.all[0], &want);
    inc_engine_free(e);
}

/* After the worked example's failover, eu-west-1 comes back at T+10 s
 * and fails again at T+20 s, before the incident closed: a new failure,
 * so restored waits for new good probes through the global name. */
static int relapse_ok(int a, size_t r, int64_t t)
{
    int64_t d = t - WORLD_T;

    (void)a;
    return r != 0 || d < 0 || (d >= 10000 && d < 20000);
}

static void test_failed_region_failing_again_restarts_the_stable_time(
    void **state)
{
    struct world w;
    /* Restored: unhealthy again at T+22.63 s; good probes through the
     * global name (served by us-east-1) from the third agent at T+22.7 s
     * and the first at T+23.2 s. No manual event: the failover starts
     * with the first agent's new answer. */
    static const struct want want = {
        .svc = 0, .region = 0, .to = 1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = 3120, .dns_first = 3120, .dns_all = 3650,
        .restored = 23200, .closed = 83200, .rpo_ms = -1,
        .ttd = 2170, .ttf = 1020, .rto = 22740, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, relapse_ok, ap_view);
    w.end = WORLD_T + 100000;
    expect_one(&w, &want);
}

/* Four agents: A and B see eu-west-1 healthy, C and D unhealthy (2 of
 * 4: not an outage). A and C fall silent after T+1 s and go stale at
 * the same millisecond: taken one by one, A first would make it 2 of 3
 * for an instant and open an incident; together it is 1 of 2. */
static void test_agents_stale_at_the_same_millisecond_count_as_one_change(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct region_states rs;
    const struct inc_record *open;

    (void)state;
    world_topo_make(TOPO_ACTIVE_PASSIVE, 1);
    world_n_evs = 0;
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    for (int64_t t = WORLD_T; t < WORLD_T + 10000; t += 1000)
        for (int a = 0; a < 4; a++) {
            struct inc_event *ev;

            if ((a == 0 || a == 2) && t > WORLD_T + 1000)
                continue;
            ev = world_ev(t, a, INC_EV_PROBE, world_stores[0].target[0]);
            ev->ok = a < 2;
            feed_one(e, ev);
            if (t == WORLD_T) {
                ev = world_ev(t, a, INC_EV_STATE, world_stores[0].target[0]);
                ev->healthy = a < 2;
                feed_one(e, ev);
            }
        }
    states(e, &rs, NULL, &open);
    assert_null(open);
    assert_int_equal(rc.opened, 0);
    assert_int_equal(rs.st[0].stale, 2);
    assert_int_equal(rs.st[0].agents, 2);
    assert_int_equal(rs.st[0].unhealthy, 1);
    assert_int_equal(rs.st[0].health, 1);
    assert_time(rs.st[0].since_ms, WORLD_T);
    inc_engine_free(e);
}

/* ---- review 1: A1-A4 ---- */

/* The third agent's network has been broken for ten minutes (it fails
 * eu-west-1 from T-600 s, unhealthy in its view from T-597.03 s); the
 * real outage starts at T and DNS moves to us-east-1 at T+3 s for
 * everyone. */
static int longbroken_ok(int a, size_t r, int64_t t)
{
    return r != 0 || (a == 2 ? t < WORLD_T - 600000 : t < WORLD_T);
}

static uint64_t switch3_view(int a, int64_t t)
{
    (void)a;
    return t < WORLD_T + 3000 ? 1 : 2;
}

static void test_long_broken_agent_does_not_drag_the_first_failure_back(
    void **state)
{
    struct world w;
    /* Quorum: the broken agent and the first agent's third failure
     * (T+2.46). First failure: the first agent's T+0.46, not the broken
     * agent's T-599.03. */
    static const struct want want = {
        .svc = 0, .region = 0, .to = 1, .manual = 0,
        .opened = 2460, .first_failure = 460, .detected = 2460,
        .failover_start = 3120, .dns_first = 3120, .dns_all = 3650,
        .restored = 3400, .closed = 63400, .rpo_ms = -1,
        .ttd = 2000, .ttf = 1190, .rto = 2940, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, longbroken_ok, switch3_view);
    w.start = WORLD_T - 610000;
    expect_one(&w, &want);
}

/* The primary dies at T and stays dead; the answers map to no region (a
 * CNAME to a load balancer), and the global name answers ok. */
static uint64_t nowhere_view(int a, int64_t t)
{
    (void)a;
    (void)t;
    return 0;
}

static void test_region_still_down_at_close_opens_no_new_incident(
    void **state)
{
    struct world w;
    /* Restored: good probes after the open, third agent T+2.7 and first
     * T+3.2; closed a stable minute later, and nothing after. */
    static const struct want want = {
        .svc = 0, .region = 0, .to = -1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = NEVER, .dns_first = NEVER, .dns_all = NEVER,
        .restored = 3200, .closed = 63200, .rpo_ms = -1,
        .ttd = 2170, .ttf = NEVER, .rto = 2740, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, ap_ok, nowhere_view);
    w.end = WORLD_T + 300000;
    expect_one(&w, &want);
}

/* DNS flips to us-east-1 at T+1 s by itself (agents see it T+1.12,
 * T+1.35, T+1.65); the operator records a manual failover at T+5 s. */
static uint64_t switch1_view(int a, int64_t t)
{
    (void)a;
    return t < WORLD_T + 1000 ? 1 : 2;
}

static void test_switch_before_a_manual_open_keeps_its_own_times(
    void **state)
{
    struct world w;
    struct inc_event *ev;
    /* DNS all: the third agent's change (T+1.65), not the open; restored:
     * the second good probe after the switch (T+1.4), before the open. */
    static const struct want want = {
        .svc = 0, .region = 0, .to = 1, .manual = 1,
        .opened = 5000, .first_failure = 460, .detected = 2630,
        .failover_start = 1120, .dns_first = 1120, .dns_all = 1650,
        .restored = 1400, .closed = 61400, .rpo_ms = -1,
        .ttd = 2170, .ttf = -980, .rto = 940, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, ap_ok, switch1_view);
    world_n_evs = 0;
    ev = world_ev(WORLD_T + 5000, 0, INC_EV_FAILOVER, "");
    ev->fo_kind = "manual";
    ev->from_region = WORLD_REGION[0];
    ev->to_region = WORLD_REGION[1];
    {
        struct rec rc = { 0 };
        struct inc_engine *e;

        world_gen(&w);
        world_sort();
        e = inc_engine_new(&world_topo, sink, &rc);
        assert_non_null(e);
        feed_until(e, 0, INC_NONE);
        incidents(e, &rc);
        assert_int_equal(rc.n, 1);
        assert_int_equal(rc.closed, 1);
        assert_incident(&rc.all[0], &want);
        inc_engine_free(e);
    }
}

/* The third agent never sees the switch and falls silent at T+10 s. */
static uint64_t never3_view(int a, int64_t t)
{
    return a == 2 ? 1 : ap_view(a, t);
}

static int silent3_alive(int a, int64_t t)
{
    return a != 2 || t < WORLD_T + 10000;
}

static void test_watcher_going_stale_leaves_dns_all_an_event_time(
    void **state)
{
    struct world w;
    /* Stale at T+12.65 (last DNS probe T+9.65, 3 intervals): DNS all is
     * then the second agent's change at T+3.35, not T+12.65. */
    static const struct want want = {
        .svc = 0, .region = 0, .to = 1, .manual = 0,
        .opened = 2630, .first_failure = 460, .detected = 2630,
        .failover_start = 3120, .dns_first = 3120, .dns_all = 3350,
        .restored = 3400, .closed = 63400, .rpo_ms = -1,
        .ttd = 2170, .ttf = 720, .rto = 2940, .outage = NEVER,
    };

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, ap_ok, never3_view);
    w.alive = silent3_alive;
    expect_one(&w, &want);
}

/* ---- review 1: A7 ---- */

/* Every realloc fails from just before the opening on: each -ENOMEM
 * leaves the engine as it was, and the same event fed again once memory
 * is back goes through; the result is the worked example's. */
static void test_out_of_memory_leaves_the_event_to_be_fed_again(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    size_t i, retried = 0;

    (void)state;
    gen_worked_example(0);
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    i = feed_until(e, 0, WORLD_T + 2630);
    fail_realloc = 1;
    for (; i < world_n_evs; i++) {
        int got = inc_engine_feed(e, world_fed[i]);

        if (got == -ENOMEM) {
            assert_time(inc_engine_horizon(e), world_fed[i - 1]->t_ms);
            fail_realloc = 0;
            got = inc_engine_feed(e, world_fed[i]);
            fail_realloc = 1;
            retried++;
        }
        assert_int_equal(got, 0);
    }
    fail_realloc = 0;
    assert_true(retried > 0);
    incidents(e, &rc);
    assert_int_equal(rc.n, 1);
    assert_int_equal(rc.opened, 1);
    assert_int_equal(rc.closed, 1);
    assert_worked_example(&rc.all[0]);
    inc_engine_free(e);
}

/* ---- review 1: B3 ---- */

/* Twenty restarts of one agent, each a new store id (a new spool epoch)
 * that probes eu-west-1 for 10 s, two hours apart; a steady agent probes
 * all along. Each epoch is stale 3 s after its last probe and forgotten
 * an hour later: its row is reused by the next one. */
static void test_agents_stale_for_an_hour_are_forgotten(void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct region_states rs;
    struct stale_seen seen = { 0 };
    const int64_t gap = 2 * 3600 * 1000;

    (void)state;
    world_topo_make(TOPO_ACTIVE_PASSIVE, 1);
    world_n_evs = 0;
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);
    for (int k = 0; k < 20; k++) {
        int64_t t0 = WORLD_T + k * gap;

        for (int64_t t = t0; t < t0 + gap; t += 1000) {
            struct inc_event *ev;
            int epoch = t < t0 + 10000;

            ev = world_ev(t, 0, INC_EV_PROBE, world_stores[0].target[0]);
            ev->ok = 1;
            feed_one(e, ev);
            if (t == WORLD_T) {
                ev = world_ev(t, 0, INC_EV_STATE, world_stores[0].target[0]);
                ev->healthy = 1;
                feed_one(e, ev);
            }
            /* Stale since +12 s (last probe +9 s), listed until it is
             * forgotten at +12 s + 1 h exactly. */
            if (t == t0 + 3611000 || t == t0 + 3612000) {
                seen.n = 0;
                inc_engine_stale_agents(e, &world_services[0], stale_cb,
                                        &seen);
                assert_int_equal(seen.n, t == t0 + 3611000);
                assert_true(seen.n == 0 || seen.id == 1000 + k);
            }
            if (!epoch)
                continue;
            ev = world_ev(t, 1, INC_EV_PROBE, world_stores[0].target[0]);
            ev->agent_id = 1000 + k;
            ev->ok = 1;
            feed_one(e, ev);
            if (t == t0) {
                ev = world_ev(t, 1, INC_EV_STATE, world_stores[0].target[0]);
                ev->agent_id = 1000 + k;
                ev->healthy = 1;
                feed_one(e, ev);
            }
            world_n_evs = 0;
        }
        world_n_evs = 0;
    }
    states(e, &rs, NULL, NULL);
    assert_int_equal(rs.st[0].stale, 0);
    assert_int_equal(rs.st[0].agents, 1);
    assert_int_equal(rs.st[0].health, 1);
    /* The steady agent and one row reused by every epoch. */
    assert_true(e->n_agents <= 2);
    assert_int_equal(rc.opened, 0);
    inc_engine_free(e);
}

/* ---- review 1: B4 ---- */

/* eu-west-1 fails for 10 s every 100 s, four times: four incidents,
 * each closed a stable minute after it is restored. */
static int periodic_ok(int a, size_t r, int64_t t)
{
    int64_t d = t - WORLD_T;

    (void)a;
    return r != 0 || d < 0 || d >= 400000 || d % 100000 >= 10000;
}

static void test_closed_incidents_are_dropped_once_handed_out(void **state)
{
    struct rec all = { 0 }, kept = { 0 };
    struct inc_engine *e1, *e2;
    struct world w;

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, periodic_ok, NULL);
    w.end = WORLD_T + 500000;
    world_n_evs = 0;
    world_gen(&w);
    world_sort();
    e1 = inc_engine_new(&world_topo, sink, &all);
    e2 = inc_engine_new(&world_topo, sink, &kept);
    assert_non_null(e1);
    assert_non_null(e2);
    inc_engine_keep_closed(e2, 0);
    feed_until(e1, 0, INC_NONE);
    feed_until(e2, 0, INC_NONE);
    incidents(e1, &all);
    incidents(e2, &kept);
    /* The sink hands every one out once either way. */
    assert_int_equal(all.opened, 4);
    assert_int_equal(all.closed, 4);
    assert_int_equal(kept.opened, 4);
    assert_int_equal(kept.closed, 4);
    assert_int_equal(all.n, 4);
    /* Only the last closed stays, equal to the one kept forever. */
    assert_int_equal(kept.n, 1);
    assert_same_record(&kept.all[0], &all.all[3]);
    inc_engine_free(e1);
    inc_engine_free(e2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example_comes_out_to_the_millisecond),
        cmocka_unit_test(test_clone_fed_the_rest_equals_the_original),
        cmocka_unit_test(
            test_out_of_order_event_is_refused_and_changes_nothing),
        cmocka_unit_test(test_durations_are_none_when_an_end_is_missing),
        cmocka_unit_test(test_active_active_drain_records_the_drain),
        cmocka_unit_test(
            test_sharded_outage_lasts_until_the_region_is_healthy),
        cmocka_unit_test(
            test_one_agent_with_a_broken_network_is_no_incident),
        cmocka_unit_test(
            test_flapping_endpoint_is_one_incident_whose_restore_moves),
        cmocka_unit_test(test_stale_agent_leaves_the_quorum),
        cmocka_unit_test(test_advancing_between_events_changes_nothing),
        cmocka_unit_test(
            test_manual_failover_before_quorum_opens_the_incident),
        cmocka_unit_test(
            test_failed_region_failing_again_restarts_the_stable_time),
        cmocka_unit_test(test_unknown_targets_and_names_are_ignored),
        cmocka_unit_test(
            test_agents_stale_at_the_same_millisecond_count_as_one_change),
        cmocka_unit_test(
            test_failover_of_another_service_opens_nothing_here),
        cmocka_unit_test(
            test_long_broken_agent_does_not_drag_the_first_failure_back),
        cmocka_unit_test(
            test_region_still_down_at_close_opens_no_new_incident),
        cmocka_unit_test(
            test_switch_before_a_manual_open_keeps_its_own_times),
        cmocka_unit_test(
            test_watcher_going_stale_leaves_dns_all_an_event_time),
        cmocka_unit_test(
            test_out_of_memory_leaves_the_event_to_be_fed_again),
        cmocka_unit_test(test_agents_stale_for_an_hour_are_forgotten),
        cmocka_unit_test(test_closed_incidents_are_dropped_once_handed_out),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
