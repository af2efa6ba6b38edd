/* incident_check.c -- the incident tests' shared helpers (see
 * incident_check.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "incident_check.h"

/* ---- the engine's output ---- */

void sink(void *ctx, enum inc_change what, const struct inc_record *r)
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

void collect(void *ctx, const struct inc_record *r)
{
    struct rec *rc = ctx;

    assert_true(rc->n < 16);
    rc->all[rc->n++] = *r;
}

void incidents(const struct inc_engine *e, struct rec *out)
{
    out->n = 0;
    inc_engine_each(e, collect, out);
}

/* Feeds world_fed[from..) (events with t < @until only when until is not
 * INC_NONE) and returns the index reached. */
size_t feed_until(struct inc_engine *e, size_t from, int64_t until)
{
    size_t i = from;

    for (; i < world_n_evs; i++) {
        if (until != INC_NONE && world_fed[i]->t_ms >= until)
            break;
        assert_int_equal(inc_engine_feed(e, world_fed[i]), 0);
    }
    return i;
}

void region_cb(void *ctx, const struct inc_region_state *st)
{
    struct region_states *rs = ctx;
    size_t r = (size_t)(st->region - world_services[0].regions);

    assert_true(r < WORLD_REGIONS);
    rs->st[r] = *st;
}

void states(const struct inc_engine *e, struct region_states *rs,
                   size_t *unmapped, const struct inc_record **open)
{
    size_t u;

    memset(rs, 0, sizeof(*rs));
    u = inc_engine_service_state(e, &world_services[0], region_cb, rs, open);
    if (unmapped)
        *unmapped = u;
}

void assert_time(int64_t got, int64_t want)
{
    assert_int_equal(got, want);
}

void assert_same_record(const struct inc_record *a,
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

int64_t after_t0(int64_t rel)
{
    return rel == NEVER ? INC_NONE : WORLD_T + rel;
}

void assert_incident(const struct inc_record *r, const struct want *w)
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

/* Runs the world @w over a fresh engine and returns its incidents (and
 * the engine, to look at its state; caller frees). */
struct inc_engine *run_world(const struct world *w, struct rec *rc)
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
void expect_one(const struct world *w, const struct want *want)
{
    struct rec rc = { 0 };
    struct inc_engine *e = run_world(w, &rc);

    assert_int_equal(rc.n, 1);
    assert_int_equal(rc.opened, 1);
    assert_int_equal(rc.closed, want->closed != NEVER);
    assert_incident(&rc.all[0], want);
    inc_engine_free(e);
}

void stale_cb(void *ctx, int64_t agent_id, int64_t last_ms)
{
    struct stale_seen *s = ctx;

    s->n++;
    s->id = agent_id;
    s->last = last_ms;
}

void feed_one(struct inc_engine *e, struct inc_event *ev)
{
    static uint64_t seq;

    ev->seq = ++seq;
    assert_int_equal(inc_engine_feed(e, ev), 0);
}

static const int64_t AP_SWITCH[WORLD_AGENTS] = { 3120, 3350, 3650 };

int ap_ok(int a, size_t r, int64_t t)
{
    (void)a;
    return r != 0 || t < WORLD_T;
}

uint64_t ap_view(int a, int64_t t)
{
    return t >= WORLD_T + AP_SWITCH[a] ? 2 : 1;
}

/* The app in eu-west-1 is killed at T; the operator records a manual
 * failover at T+2.78 and flips DNS to us-east-1 (TTL 1 s); the agents see
 * the new answer at T+3.12, T+3.35, T+3.65. us-east-1's replication lag
 * is sampled each second at .500: 0.25 s at T+2.5, 0.9 s after. */
void gen_worked_example(int junk)
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

void assert_worked_example(const struct inc_record *r)
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

/* Events the topology does not know, from a fourth agent and the known
 * ones: probes and states of an unknown target, a DNS change of another
 * name, a metric of an unknown target, an operator event naming no
 * known service or region, and a deploy. */
void gen_junk(void)
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

