/* test_incident.c -- collector/incident.c against ground truth: scenarios
 * of three agents probing three regions once a second, generated with
 * explicit times (a small model of the agents' state machines, DNS views
 * and probes through the global name), fed in the engine's order, and
 * every computed time asserted to the millisecond. The worked example of
 * docs/design.md ("Incidents") is the first scenario. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"

/* ---- topology ---- */

#define T0 1000000              /* "T": the moment something breaks */
#define N_REG 3
#define N_AGENTS 3

static const char *const REGION[N_REG] = {
    "eu-west-1", "us-east-1", "ap-southeast-1",
};
static const char *const LAG_METRIC = "replication_lag_seconds";

/* One service's strings and arrays; the topology borrows them. */
struct svc_store {
    char name[32], global[64];
    char target[N_REG][48], answer[N_REG][16], region[N_REG][32];
    char lag_target[N_REG][48];
    char gl_http[48], gl_dns[48];
    char *targets[N_REG][1], *answers[N_REG][1], *globals[2];
    struct topo_region regions[N_REG];
};

static struct svc_store stores[2];
static struct topo_service services[2];
static struct topology topo;

/* Service @i named @name with @pattern: regions REGION[] (@prefix-ed),
 * targets NAME-r, answers 127.0.(r+1).1 (.11 for the second service),
 * global targets NAME-global and NAME-dns. */
static void svc_make(size_t i, const char *name, enum topo_pattern pattern,
                     const char *region_prefix)
{
    struct svc_store *s = &stores[i];
    struct topo_service *sv = &services[i];

    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->global, sizeof(s->global), "%s.global.test", name);
    snprintf(s->gl_http, sizeof(s->gl_http), "%s-global", name);
    snprintf(s->gl_dns, sizeof(s->gl_dns), "%s-dns", name);
    s->globals[0] = s->gl_http;
    s->globals[1] = s->gl_dns;
    for (size_t r = 0; r < N_REG; r++) {
        struct topo_region *rg = &s->regions[r];

        snprintf(s->region[r], sizeof(s->region[r]), "%s%s", region_prefix,
                 REGION[r]);
        snprintf(s->target[r], sizeof(s->target[r]), "%s-%zu", name, r);
        snprintf(s->answer[r], sizeof(s->answer[r]), "127.0.%zu.%zu", r + 1,
                 1 + 10 * i);
        snprintf(s->lag_target[r], sizeof(s->lag_target[r]), "%s-db-%zu",
                 name, r);
        s->targets[r][0] = s->target[r];
        s->answers[r][0] = s->answer[r];
        rg->name = s->region[r];
        rg->role = pattern != TOPO_ACTIVE_PASSIVE ? TOPO_ROLE_NONE :
                   r == 0 ? TOPO_ROLE_PRIMARY : TOPO_ROLE_STANDBY;
        rg->targets = s->targets[r];
        rg->n_targets = 1;
        rg->answers = s->answers[r];
        rg->n_answers = 1;
        rg->lag_metric = (char *)LAG_METRIC;
        rg->lag_target = s->lag_target[r];
    }
    sv->name = s->name;
    sv->global_name = s->global;
    sv->pattern = pattern;
    sv->regions = s->regions;
    sv->n_regions = N_REG;
    sv->global_targets = s->globals;
    sv->n_global_targets = 2;
}

/* A topology of @n services: "app" with @pattern, then "other"
 * (active-passive, regions "o-eu-west-1"...). */
static const struct topology *topo_make(enum topo_pattern pattern, size_t n)
{
    svc_make(0, "app", pattern, "");
    if (n > 1)
        svc_make(1, "other", TOPO_ACTIVE_PASSIVE, "o-");
    topo.services = services;
    topo.n_services = n;
    topo.opt.quorum = TOPO_QUORUM_DEFAULT;
    topo.opt.stale_intervals = TOPO_STALE_INTERVALS_DEFAULT;
    topo.opt.stable_ms = TOPO_STABLE_MS_DEFAULT;
    return &topo;
}

/* ---- events ---- */

#define MAX_EV 65536

struct gen_ev {
    struct inc_event ev;
    size_t gen;                 /* generation order: ties within an agent */
    const char *ans[N_REG];
};

static struct gen_ev evs[MAX_EV];
static size_t n_evs;
static struct inc_event *fed[MAX_EV];   /* sorted, seq assigned */

static struct inc_event *ev_new(int64_t t, int agent, enum inc_ev_kind k,
                                const char *target)
{
    struct gen_ev *g;

    assert_true(n_evs < MAX_EV);
    g = &evs[n_evs];
    memset(g, 0, sizeof(*g));
    g->gen = n_evs++;
    g->ev.t_ms = t;
    g->ev.agent_id = 10 * (agent + 1);
    g->ev.kind = k;
    g->ev.target = target;
    g->ev.served_by = "";
    g->ev.dns_name = "";
    g->ev.fo_kind = g->ev.from_region = g->ev.to_region = "";
    g->ev.fo_service = "";
    g->ev.metric = "";
    g->ev.healthy = -1;
    return &g->ev;
}

static void ev_answers(struct inc_event *ev, size_t svc, uint64_t mask)
{
    struct gen_ev *g = (struct gen_ev *)ev;
    size_t n = 0;

    for (size_t r = 0; r < N_REG; r++)
        if (mask & (1u << r))
            g->ans[n++] = stores[svc].answer[r];
    ev->has_answers = 1;
    ev->answers = g->ans;
    ev->n_answers = n;
}

static int gen_cmp(const void *pa, const void *pb)
{
    const struct gen_ev *a = pa, *b = pb;

    if (a->ev.t_ms != b->ev.t_ms)
        return a->ev.t_ms < b->ev.t_ms ? -1 : 1;
    if (a->ev.agent_id != b->ev.agent_id)
        return a->ev.agent_id < b->ev.agent_id ? -1 : 1;
    return a->gen < b->gen ? -1 : a->gen > b->gen;
}

/* Sorts the events into the engine's order and numbers each agent's. */
static void ev_sort(void)
{
    uint64_t seq[N_AGENTS + 8] = { 0 };

    qsort(evs, n_evs, sizeof(evs[0]), gen_cmp);
    for (size_t i = 0; i < n_evs; i++) {
        struct gen_ev *g = &evs[i];

        g->ev.answers = g->ans;
        g->ev.seq = ++seq[g->ev.agent_id / 10];
        fed[i] = &g->ev;
    }
}

/* ---- the world: what each agent sees, second by second ---- */

struct world {
    int64_t start, end;
    size_t svc;                 /* which service the agents probe */
    int fall, rise;
    /* per agent: the millisecond in each second it probes the regions,
     * resolves the global name, and probes through it */
    int64_t reg_phase[N_AGENTS], dns_phase[N_AGENTS], gl_phase[N_AGENTS];
    /* does agent @a's probe of region @r succeed at @t */
    int (*ok)(int a, size_t r, int64_t t);
    /* the regions agent @a's answers for the global name map to */
    uint64_t (*view)(int a, int64_t t);
    /* does agent @a send anything at @t */
    int (*alive)(int a, int64_t t);
};

static const int64_t REG_PHASE[N_AGENTS] = { 460, 630, 970 };
static const int64_t DNS_PHASE[N_AGENTS] = { 120, 350, 650 };
static const int64_t GL_PHASE[N_AGENTS] = { 200, 400, 700 };

static int always_alive(int a, int64_t t)
{
    (void)a;
    (void)t;
    return 1;
}

static uint64_t view_primary(int a, int64_t t)
{
    (void)a;
    (void)t;
    return 1;
}

/* Probes of region @r by agent @a, with its state machine: healthy at
 * the first ok, unhealthy after w->fall failures in a row, healthy again
 * after w->rise successes. */
static void gen_region(const struct world *w, int a, size_t r)
{
    const char *target = stores[w->svc].target[r];
    int state = -1, run = 0;

    for (int64_t t = w->start + w->reg_phase[a]; t < w->end; t += 1000) {
        struct inc_event *ev;
        int ok;

        if (!w->alive(a, t))
            continue;
        ok = w->ok(a, r, t);
        ev = ev_new(t, a, INC_EV_PROBE, target);
        ev->ok = ok;
        run = (ok == (state != 0)) ? 0 : run + 1;
        if (state == -1 ? ok : run >= (ok ? w->rise : w->fall)) {
            state = ok;
            run = 0;
            ev = ev_new(t, a, INC_EV_STATE, target);
            ev->healthy = state;
        }
    }
}

static const char *served_name(size_t svc, uint64_t m)
{
    for (size_t r = 0; r < N_REG; r++)
        if (m & (1u << r))
            return stores[svc].region[r];
    return "";
}

/* Resolving the global name (a DNS target's probe each second, and a
 * DnsChange when the answers change) and probing through it: ok when
 * every region it is sent to answers ok; served-by names the region
 * for active-passive, nothing otherwise (the answers decide). */
static void gen_global(const struct world *w, int a)
{
    size_t svc = w->svc;
    uint64_t seen = 0;
    int ap = services[svc].pattern == TOPO_ACTIVE_PASSIVE;

    for (int64_t t = w->start + w->dns_phase[a]; t < w->end; t += 1000) {
        uint64_t m = w->view(a, t);
        struct inc_event *ev;

        if (!w->alive(a, t))
            continue;
        ev = ev_new(t, a, INC_EV_PROBE, stores[svc].gl_dns);
        ev->ok = 1;
        ev_answers(ev, svc, m);
        if (seen && m != seen) {
            ev = ev_new(t, a, INC_EV_DNS, stores[svc].gl_dns);
            ev->dns_name = "APP.Global.Test.";
            ev_answers(ev, svc, m);
        }
        seen = m;
    }
    for (int64_t t = w->start + w->gl_phase[a]; t < w->end; t += 1000) {
        uint64_t m = w->view(a, t);
        struct inc_event *ev;
        int ok = 1;

        if (!w->alive(a, t))
            continue;
        for (size_t r = 0; r < N_REG; r++)
            if ((m & (1u << r)) && !w->ok(a, r, t))
                ok = 0;
        ev = ev_new(t, a, INC_EV_PROBE, stores[svc].gl_http);
        ev->ok = ok;
        ev->served_by = ap ? served_name(svc, m) : "";
    }
}

static void world_default(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->start = T0 - 10000;
    w->end = T0 + 90000;
    w->fall = 3;
    w->rise = 2;
    memcpy(w->reg_phase, REG_PHASE, sizeof(REG_PHASE));
    memcpy(w->dns_phase, DNS_PHASE, sizeof(DNS_PHASE));
    memcpy(w->gl_phase, GL_PHASE, sizeof(GL_PHASE));
    w->view = view_primary;
    w->alive = always_alive;
}

static void world_gen(const struct world *w)
{
    for (int a = 0; a < N_AGENTS; a++) {
        for (size_t r = 0; r < N_REG; r++)
            gen_region(w, a, r);
        gen_global(w, a);
    }
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

/* Feeds fed[from..to) (events with t < @until only when until is not
 * INC_NONE) and returns the index reached. */
static size_t feed_until(struct inc_engine *e, size_t from, int64_t until)
{
    size_t i = from;

    for (; i < n_evs && (until == INC_NONE || fed[i]->t_ms < until); i++)
        assert_int_equal(inc_engine_feed(e, fed[i]), 0);
    return i;
}

struct region_states {
    struct inc_region_state st[N_REG];
};

static void region_cb(void *ctx, const struct inc_region_state *st)
{
    struct region_states *rs = ctx;
    size_t r = (size_t)(st->region - services[0].regions);

    assert_true(r < N_REG);
    rs->st[r] = *st;
}

static void states(const struct inc_engine *e, struct region_states *rs,
                   size_t *unmapped, const struct inc_record **open)
{
    size_t u;

    memset(rs, 0, sizeof(*rs));
    u = inc_engine_service_state(e, &services[0], region_cb, rs, open);
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

/* ---- the worked example (docs/design.md, "Incidents") ---- */

static const int64_t AP_SWITCH[N_AGENTS] = { 3120, 3350, 3650 };

static int ap_ok(int a, size_t r, int64_t t)
{
    (void)a;
    return r != 0 || t < T0;
}

static uint64_t ap_view(int a, int64_t t)
{
    return t >= T0 + AP_SWITCH[a] ? 2 : 1;
}

/* The app in eu-west-1 is killed at T; the operator records a manual
 * failover at T+2.78 and flips DNS to us-east-1 (TTL 1 s); the agents see
 * the new answer at T+3.12, T+3.35, T+3.65. us-east-1's replication lag
 * is sampled each second at .500: 0.25 s at T+2.5, 0.9 s after. */
static void gen_worked_example(size_t n_services)
{
    struct world w;
    struct inc_event *ev;

    topo_make(TOPO_ACTIVE_PASSIVE, n_services);
    n_evs = 0;
    world_default(&w);
    w.ok = ap_ok;
    w.view = ap_view;
    world_gen(&w);
    for (int64_t t = w.start + 500; t < w.end; t += 1000) {
        ev = ev_new(t, 0, INC_EV_METRIC, stores[0].lag_target[1]);
        ev->metric = LAG_METRIC;
        ev->value = t < T0 + 2500 ? 0.1 : t == T0 + 2500 ? 0.25 : 0.9;
    }
    ev = ev_new(T0 + 2780, 1, INC_EV_FAILOVER, "");
    ev->fo_kind = "manual";
    ev->fo_service = "app";
    ev->from_region = REGION[0];
    ev->to_region = REGION[1];
    ev_sort();
}

static void assert_worked_example(const struct inc_record *r)
{
    assert_ptr_equal(r->service, &services[0]);
    assert_ptr_equal(r->region, &services[0].regions[0]);
    assert_ptr_equal(r->to_region, &services[0].regions[1]);
    assert_int_equal(r->manual, 0);
    assert_time(r->opened_ms, T0 + 2630);
    assert_time(r->first_failure_ms, T0 + 460);
    assert_time(r->detected_ms, T0 + 2630);
    assert_time(r->failover_start_ms, T0 + 2780);
    assert_time(r->dns_first_ms, T0 + 3120);
    assert_time(r->dns_all_ms, T0 + 3650);
    assert_time(r->restored_ms, T0 + 3400);
    assert_time(r->closed_ms, T0 + 3400 + 60000);
    assert_int_equal(r->has_rpo, 1);
    assert_true(r->rpo_ms == 250.0);
}

static void test_worked_example_comes_out_to_the_millisecond(void **state)
{
    struct rec rc = { 0 };
    struct inc_engine *e;
    struct inc_durations d;
    struct region_states rs;
    const struct inc_record *open;
    size_t i, unmapped;

    (void)state;
    gen_worked_example(1);
    e = inc_engine_new(&topo, sink, &rc);
    assert_non_null(e);

    /* Before the third failure of the second agent: no incident. */
    i = feed_until(e, 0, T0 + 2630);
    states(e, &rs, &unmapped, &open);
    assert_null(open);
    assert_int_equal(rs.st[0].health, 1);
    assert_int_equal(rs.st[0].unhealthy, 1);
    assert_int_equal(rs.st[0].agents, 3);
    assert_int_equal(rs.st[0].serving, 3);

    /* The first agent has switched, the others not yet: a split. */
    i = feed_until(e, i, T0 + 3200);
    states(e, &rs, &unmapped, &open);
    assert_non_null(open);
    assert_int_equal(rs.st[0].health, 0);
    assert_time(rs.st[0].since_ms, T0 + 2630);
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

    inc_durations(&rc.all[0], &d);
    assert_int_equal(d.time_to_detect, 2170);
    assert_int_equal(d.time_to_failover, 1020);
    assert_int_equal(d.rto, 2940);
    assert_int_equal(d.outage, INC_NONE);

    states(e, &rs, &unmapped, &open);
    assert_null(open);
    assert_int_equal(rs.st[1].serving, 3);
    assert_int_equal(rs.st[1].health, 1);
    inc_engine_free(e);
}

/* A clone taken in the middle of the incident, fed the rest, ends equal
 * to the original fed the same rest. */
static void test_clone_fed_the_rest_equals_the_original(void **state)
{
    struct rec a = { 0 }, b = { 0 };
    struct inc_engine *e, *c;
    size_t i;

    (void)state;
    gen_worked_example(1);
    e = inc_engine_new(&topo, sink, &a);
    assert_non_null(e);
    i = feed_until(e, 0, T0 + 3000);
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
    gen_worked_example(1);
    e = inc_engine_new(&topo, sink, &rc);
    assert_non_null(e);
    i = feed_until(e, 0, T0 + 2000);
    /* Earlier time, same key again, and an earlier agent at the same
     * millisecond: all refused. */
    late = *fed[i - 1];
    late.t_ms -= 1;
    late.ok = 0;
    assert_int_equal(inc_engine_feed(e, &late), -EINVAL);
    assert_int_equal(inc_engine_feed(e, fed[i - 1]), -EINVAL);
    late = *fed[i - 1];
    late.agent_id -= 1;
    assert_int_equal(inc_engine_feed(e, &late), -EINVAL);
    assert_int_equal(inc_engine_feed(e, NULL), -EINVAL);
    assert_time(inc_engine_horizon(e), fed[i - 1]->t_ms);
    /* After an advance, an event before it is late too. */
    inc_engine_advance(e, fed[i]->t_ms - 1);
    late = *fed[i];
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
        .service = &services[0], .first_failure_ms = 1000,
        .detected_ms = 3500, .failover_start_ms = INC_NONE,
        .dns_first_ms = INC_NONE, .dns_all_ms = INC_NONE,
        .restored_ms = INC_NONE, .closed_ms = INC_NONE,
    };
    struct inc_durations d;

    (void)state;
    topo_make(TOPO_SHARDED, 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example_comes_out_to_the_millisecond),
        cmocka_unit_test(test_clone_fed_the_rest_equals_the_original),
        cmocka_unit_test(
            test_out_of_order_event_is_refused_and_changes_nothing),
        cmocka_unit_test(test_durations_are_none_when_an_end_is_missing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
