/* incident_world.c -- the agents' model for the incident engine's tests
 * (see incident_world.h). */
#include "incident_world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const WORLD_REGION[WORLD_REGIONS] = {
    "eu-west-1", "us-east-1", "ap-southeast-1",
};
const char *const WORLD_LAG_METRIC = "replication_lag_seconds";

struct world_service world_stores[2];
struct topo_service world_services[2];
struct topology world_topo;

/* ---- topology ---- */

/* Service @i named @name with @pattern and @region_prefix-ed regions. */
static void svc_make(size_t i, const char *name, enum topo_pattern pattern,
                     const char *region_prefix)
{
    struct world_service *s = &world_stores[i];
    struct topo_service *sv = &world_services[i];

    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->global, sizeof(s->global), "%s.global.test", name);
    snprintf(s->gl_http, sizeof(s->gl_http), "%s-global", name);
    snprintf(s->gl_dns, sizeof(s->gl_dns), "%s-dns", name);
    s->globals[0] = s->gl_http;
    s->globals[1] = s->gl_dns;
    for (size_t r = 0; r < WORLD_REGIONS; r++) {
        struct topo_region *rg = &s->regions[r];

        snprintf(s->region[r], sizeof(s->region[r]), "%s%s", region_prefix,
                 WORLD_REGION[r]);
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
        rg->lag_metric = (char *)WORLD_LAG_METRIC;
        rg->lag_target = s->lag_target[r];
    }
    sv->name = s->name;
    sv->global_name = s->global;
    sv->pattern = pattern;
    sv->regions = s->regions;
    sv->n_regions = WORLD_REGIONS;
    sv->global_targets = s->globals;
    sv->n_global_targets = 2;
}

const struct topology *world_topo_make(enum topo_pattern pattern, size_t n)
{
    svc_make(0, "app", pattern, "");
    if (n > 1)
        svc_make(1, "other", TOPO_ACTIVE_PASSIVE, "o-");
    world_topo.services = world_services;
    world_topo.n_services = n;
    world_topo.opt.quorum = TOPO_QUORUM_DEFAULT;
    world_topo.opt.stale_intervals = TOPO_STALE_INTERVALS_DEFAULT;
    world_topo.opt.stable_ms = TOPO_STABLE_MS_DEFAULT;
    return &world_topo;
}

/* ---- events ---- */

struct gen_ev {
    struct inc_event ev;        /* first: world_answers casts back */
    size_t gen;                 /* the order made: ties within an agent */
    const char *ans[WORLD_REGIONS];
};

static struct gen_ev evs[WORLD_MAX_EVENTS];
size_t world_n_evs;
struct inc_event *world_fed[WORLD_MAX_EVENTS];

struct inc_event *world_ev(int64_t t, int agent, enum inc_ev_kind k,
                           const char *target)
{
    struct gen_ev *g;

    if (world_n_evs >= WORLD_MAX_EVENTS) {
        fprintf(stderr, "incident_world: more than %d events\n",
                WORLD_MAX_EVENTS);
        abort();
    }
    g = &evs[world_n_evs];
    memset(g, 0, sizeof(*g));
    g->gen = world_n_evs++;
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

void world_answers(struct inc_event *ev, size_t svc, uint64_t mask)
{
    struct gen_ev *g = (struct gen_ev *)ev;
    size_t n = 0;

    for (size_t r = 0; r < WORLD_REGIONS; r++)
        if (mask & (1u << r))
            g->ans[n++] = world_stores[svc].answer[r];
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

void world_sort(void)
{
    uint64_t seq[WORLD_AGENTS + 8] = { 0 };

    qsort(evs, world_n_evs, sizeof(evs[0]), gen_cmp);
    for (size_t i = 0; i < world_n_evs; i++) {
        struct gen_ev *g = &evs[i];

        g->ev.answers = g->ans;
        g->ev.seq = ++seq[g->ev.agent_id / 10];
        world_fed[i] = &g->ev;
    }
}

/* ---- the world: what each agent sees, second by second ---- */

static const int64_t REG_PHASE[WORLD_AGENTS] = { 460, 630, 970 };
static const int64_t DNS_PHASE[WORLD_AGENTS] = { 120, 350, 650 };
static const int64_t GL_PHASE[WORLD_AGENTS] = { 200, 400, 700 };

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
    const char *target = world_stores[w->svc].target[r];
    int state = -1, run = 0;

    for (int64_t t = w->start + w->reg_phase[a]; t < w->end; t += 1000) {
        struct inc_event *ev;
        int ok;

        if (!w->alive(a, t))
            continue;
        ok = w->ok(a, r, t);
        ev = world_ev(t, a, INC_EV_PROBE, target);
        ev->ok = ok;
        run = (ok == (state != 0)) ? 0 : run + 1;
        if (state == -1 ? ok : run >= (ok ? w->rise : w->fall)) {
            state = ok;
            run = 0;
            ev = world_ev(t, a, INC_EV_STATE, target);
            ev->healthy = state;
        }
    }
}

static const char *served_name(size_t svc, uint64_t m)
{
    for (size_t r = 0; r < WORLD_REGIONS; r++)
        if (m & (1u << r))
            return world_stores[svc].region[r];
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
    int ap = world_services[svc].pattern == TOPO_ACTIVE_PASSIVE;

    for (int64_t t = w->start + w->dns_phase[a]; t < w->end; t += 1000) {
        uint64_t m = w->view(a, t);
        struct inc_event *ev;

        if (!w->alive(a, t))
            continue;
        ev = world_ev(t, a, INC_EV_PROBE, world_stores[svc].gl_dns);
        ev->ok = 1;
        world_answers(ev, svc, m);
        if (seen && m != seen) {
            ev = world_ev(t, a, INC_EV_DNS, world_stores[svc].gl_dns);
            ev->dns_name = "APP.Global.Test.";
            world_answers(ev, svc, m);
        }
        seen = m;
    }
    for (int64_t t = w->start + w->gl_phase[a]; t < w->end; t += 1000) {
        uint64_t m = w->view(a, t);
        struct inc_event *ev;
        int ok = 1;

        if (!w->alive(a, t))
            continue;
        for (size_t r = 0; r < WORLD_REGIONS; r++)
            if ((m & (1u << r)) && !w->ok(a, r, t))
                ok = 0;
        ev = world_ev(t, a, INC_EV_PROBE, world_stores[svc].gl_http);
        ev->ok = ok;
        ev->served_by = ap ? served_name(svc, m) : "";
    }
}

void world_init(struct world *w, enum topo_pattern pattern,
                int (*ok)(int a, size_t r, int64_t t),
                uint64_t (*view)(int a, int64_t t))
{
    world_topo_make(pattern, 1);
    memset(w, 0, sizeof(*w));
    w->start = WORLD_T - 10000;
    w->end = WORLD_T + 90000;
    w->fall = 3;
    w->rise = 2;
    memcpy(w->reg_phase, REG_PHASE, sizeof(REG_PHASE));
    memcpy(w->dns_phase, DNS_PHASE, sizeof(DNS_PHASE));
    memcpy(w->gl_phase, GL_PHASE, sizeof(GL_PHASE));
    w->ok = ok;
    w->view = view ? view : view_primary;
    w->alive = always_alive;
}

void world_gen(const struct world *w)
{
    for (int a = 0; a < WORLD_AGENTS; a++) {
        for (size_t r = 0; r < WORLD_REGIONS; r++)
            gen_region(w, a, r);
        gen_global(w, a);
    }
}
