/* test_incident_fixes.c -- collector/incident.c against the findings of
 * review 1 (A1-A4, A7, B3, B4): each scenario fails on the engine before
 * its fix, and asserts every time to the millisecond. realloc fails on
 * demand here (tests/incident.cmake wraps it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "incident_priv.h"      /* n_agents: rows kept (B3) */
#include "incident_check.h"

/* ---- realloc failing on demand ---- */

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int fail_realloc;

void *__wrap_realloc(void *p, size_t n)
{
    return fail_realloc ? NULL : __real_realloc(p, n);
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
        cmocka_unit_test(
            test_agents_stale_for_an_hour_are_forgotten),
        cmocka_unit_test(
            test_closed_incidents_are_dropped_once_handed_out),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
