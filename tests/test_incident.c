/* test_incident.c -- collector/incident.c against ground truth: scenarios
 * of three agents probing three regions once a second, generated with
 * explicit times by the model of incident_world.h (the agents' state
 * machines, DNS views and probes through the global name), fed in the
 * engine's order, and every computed time asserted to the millisecond.
 * The worked example of docs/design.md ("Incidents") is the first
 * scenario; review 1's findings are test_incident_fixes.c. Shared
 * helpers: incident_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "incident_check.h"

/* ---- the worked example (docs/design.md, "Incidents") ---- */

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

/* probers: N. Agent 2 hands eu-west-1's target off at T-5.02 s, just
 * after its last probe there, and is silent from then on: it leaves the
 * region's quorum at once, and is never counted stale there. The
 * remaining two probers decide alone: one failing is not more than half
 * of 2, both are; the incident comes out as in the stale case. */
static void test_handed_off_agent_leaves_the_quorum_without_going_stale(
    void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct world w;
    struct region_states rs;
    const struct inc_record *open;
    struct inc_event *ev;
    size_t i;

    (void)state;
    world_init(&w, TOPO_ACTIVE_PASSIVE, stale_ok, NULL);
    w.end = WORLD_T + 20000;
    w.alive = stale_alive;
    world_n_evs = 0;
    world_gen(&w);
    ev = world_ev(WORLD_T - 5020, 2, INC_EV_STATE,
                  world_stores[0].target[0]);
    ev->healthy = INC_HANDED_OFF;
    world_sort();
    e = inc_engine_new(&world_topo, sink, &rc);
    assert_non_null(e);

    i = feed_until(e, 0, WORLD_T - 5019);  /* the handoff included */
    states(e, &rs, NULL, NULL);
    assert_int_equal(rs.st[0].agents, 2);
    assert_int_equal(rs.st[0].stale, 0);
    /* Where the stale case counts it stale, and long after. */
    i = feed_until(e, i, WORLD_T - 2030);
    inc_engine_advance(e, WORLD_T - 2030);
    states(e, &rs, NULL, NULL);
    assert_int_equal(rs.st[0].stale, 0);
    i = feed_until(e, i, WORLD_T + 3000);
    states(e, &rs, NULL, &open);
    assert_int_equal(rs.st[0].stale, 0);
    assert_int_equal(rs.st[0].agents, 2);
    assert_null(open);
    assert_int_equal(rs.st[0].health, 1);
    assert_int_equal(rs.st[0].unhealthy, 1);

    feed_until(e, i, INC_NONE);
    states(e, &rs, NULL, &open);
    assert_non_null(open);
    assert_int_equal(rs.st[0].health, 0);
    assert_int_equal(rs.st[0].unhealthy, 2);
    assert_int_equal(rs.st[0].stale, 0);
    assert_time(open->detected_ms, WORLD_T + 12630);
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
        cmocka_unit_test(
            test_handed_off_agent_leaves_the_quorum_without_going_stale),
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
