/* incident.c -- the incident engine's rules (see incident.h, and
 * docs/design.md "Incidents" for the definitions implemented here): the
 * derived state (an agent's view of a region, staleness, region health by
 * quorum, the serving region), when incidents open, move and close, the
 * events that drive them, and the queries. Its storage (name indexes,
 * per-agent rows, the timer heap, new/free/clone) is incident_index.c.
 * Does no I/O and reads no clock.
 *
 * Speed: feeding is O(1) per event in the common path (a probe of a known
 * target: one hash lookup, a few stores, no allocation). Work that scans
 * agents or a region's targets happens only when something changes:
 * a health or staleness transition, a new DNS answer set, an incident's
 * open or close. The queries are incident_query.c. */
#include "incident_priv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- incidents -------------------------------------------------------- */

static void emit(struct inc_engine *e, enum inc_change what,
                 const struct inc_record *r)
{
    if (e->sink)
        e->sink(e->ctx, what, r);
}

static size_t region_ix(const struct topo_service *s,
                        const struct topo_region *r)
{
    return (size_t)(r - s->regions);
}

/* The region named @name in @s, -1 none. */
static int region_named(const struct topo_service *s, const char *name)
{
    if (!name || !*name)
        return -1;
    for (size_t r = 0; r < s->n_regions; r++)
        if (strcmp(s->regions[r].name, name) == 0)
            return (int)r;
    return -1;
}

static int region_named_fold(const struct topo_service *s, const char *name)
{
    size_t n = name ? strlen(name) : 0;

    for (size_t r = 0; r < s->n_regions && n; r++)
        if (strlen(s->regions[r].name) == n &&
            inc_name_eq(s->regions[r].name, name, n, 1))
            return (int)r;
    return -1;
}

static void set_time(int64_t *field, int64_t t, int *changed)
{
    if (*field != t) {
        *field = t;
        *changed = 1;
    }
}

static void rpo_update(struct inc_engine *e, size_t svc, int *changed)
{
    struct inc_record *r = inc_open(e, svc);
    const struct slot_rt *rt;

    if (!r || r->failover_start_ms == INC_NONE || !r->to_region)
        return;
    rt = &e->rt[e->svc[svc].base + region_ix(r->service, r->to_region)];
    if (rt->snap_have && (!r->has_rpo || r->rpo_ms != rt->snap_v * 1000.0)) {
        r->has_rpo = 1;
        r->rpo_ms = rt->snap_v * 1000.0;
        *changed = 1;
    }
}

static void failover_start(struct inc_engine *e, size_t svc, int64_t t,
                           int *changed)
{
    struct inc_record *r = inc_open(e, svc);
    const struct topo_service *s = &e->topo->services[svc];

    if (r->failover_start_ms != INC_NONE)
        return;
    r->failover_start_ms = t;
    for (size_t k = 0; k < s->n_regions; k++) {
        struct slot_rt *rt = &e->rt[e->svc[svc].base + k];

        rt->snap_have = rt->lag_have;
        rt->snap_v = rt->lag_v;
    }
    *changed = 1;
}

static void set_to_region(struct inc_engine *e, size_t svc, int to,
                          int *changed)
{
    struct inc_record *r = inc_open(e, svc);

    if (to < 0 || r->to_region ||
        r->service->pattern != TOPO_ACTIVE_PASSIVE ||
        &r->service->regions[to] == r->region)
        return;
    r->to_region = &r->service->regions[to];
    *changed = 1;
}

static int lowest_bit(uint64_t m)
{
    for (int i = 0; i < 64; i++)
        if (m & (1ull << i))
            return i;
    return -1;
}

/* The first failure of @svc's region @r (docs/design.md): per target,
 * L = the latest ok probe by any agent that fails the target now, and
 * the earliest failure run (an agent's first failure since its own last
 * success) that started after L; the earliest over the targets. A run
 * that started before L is an agent that was failing while others still
 * saw the target ok: a long-broken agent must not drag the incident's
 * first failure back (review A1). Agents that still see the target ok
 * are a minority at detection and do not move L. */
static int64_t first_failure(const struct inc_engine *e, size_t svc,
                             size_t r)
{
    const struct topo_region *rg = &e->topo->services[svc].regions[r];
    int64_t best = INC_NONE;

    for (size_t k = 0; k < rg->n_targets; k++) {
        const struct ix_ent *en = inc_ix_find(&e->targets, rg->targets[k]);
        int64_t last_ok = INC_NONE;

        for (size_t a = 0; en && a < e->n_agents; a++) {
            const struct agent_target *at = inc_at(e, a, (size_t)en->id);

            if (at->ffs != INC_NONE && at->last_ok != INC_NONE &&
                at->last_ok > last_ok)
                last_ok = at->last_ok;
        }
        for (size_t a = 0; en && a < e->n_agents; a++) {
            int64_t f = inc_at(e, a, (size_t)en->id)->ffs;

            if (f != INC_NONE && (last_ok == INC_NONE || f > last_ok) &&
                (best == INC_NONE || f < best))
                best = f;
        }
    }
    return best;
}

static void contrib(struct inc_engine *e, size_t a, size_t s, int sign);

/* Forgets the good probes through the global name that turned good
 * before @before: they predate the failure (or the switch away from it)
 * and say nothing of the way out. */
static void clear_good(struct inc_engine *e, size_t svc, int64_t before)
{
    size_t g = e->svc[svc].base + e->topo->services[svc].n_regions + 1;

    for (size_t a = 0; a < e->n_agents; a++) {
        struct agent_slot *as = inc_as(e, a, g);

        if (!as->good || as->good_since >= before)
            continue;
        contrib(e, a, g, -1);
        as->good = 0;
        contrib(e, a, g, 1);
    }
}

/* Agents whose answers moved away from failed region @fr before the
 * incident opened (after @since): their switch counts. */
static void dns_before_open(struct inc_engine *e, size_t svc, size_t fr,
                            int64_t since, int *changed)
{
    size_t w = e->svc[svc].base + e->topo->services[svc].n_regions;
    struct inc_record *r = inc_open(e, svc);
    int64_t first = INC_NONE;
    uint64_t first_mask = 0;

    for (size_t a = 0; a < e->n_agents; a++) {
        const struct agent_slot *as = inc_as(e, a, w);

        if (as->part && !as->stale && as->has_set && as->mask &&
            !(as->mask & (1ull << fr)) && as->mask_changed != INC_NONE &&
            as->mask_changed >= since &&
            (first == INC_NONE || as->mask_changed < first)) {
            first = as->mask_changed;
            first_mask = as->mask;
        }
    }
    if (first == INC_NONE)
        return;
    r->dns_first_ms = first;
    failover_start(e, svc, first, changed);
    set_to_region(e, svc, lowest_bit(first_mask & ~(1ull << fr)), changed);
}

static int open_incident(struct inc_engine *e, size_t svc, size_t reg,
                         int64_t t, int manual)
{
    struct svc_rt *sr = &e->svc[svc];
    const struct topo_service *s = &e->topo->services[svc];
    const struct slot_rt *rt = &e->rt[sr->base + reg];
    struct inc_record *r;
    int changed = 0;

    /* The slot was reserved before the step (inc_room): running out
     * here means more opens in one step than INC_ROOM. */
    if (sr->n_inc == sr->cap_inc || inc_test_open_fails())
        return -ENOMEM;
    r = &sr->inc[sr->n_inc];
    *r = (struct inc_record){
        .service = s, .region = &s->regions[reg], .manual = manual,
        .opened_ms = t, .first_failure_ms = first_failure(e, svc, reg),
        .detected_ms = !manual ? t : rt->health == 0 ? rt->since : INC_NONE,
        .failover_start_ms = INC_NONE, .dns_first_ms = INC_NONE,
        .dns_all_ms = INC_NONE, .restored_ms = INC_NONE,
        .closed_ms = INC_NONE,
    };
    sr->open = (int)sr->n_inc++;
    if (s->pattern != TOPO_SHARDED)
        dns_before_open(e, svc, reg,
                        r->first_failure_ms != INC_NONE ?
                        r->first_failure_ms : t, &changed);
    /* Good probes after a switch seen before the open count: the way
     * out was already taken (review A3); without one, only new ones. */
    clear_good(e, svc, r->dns_first_ms != INC_NONE ? r->dns_first_ms : t);
    rpo_update(e, svc, &changed);
    /* Room for the next step: a failure here changes nothing derived;
     * the next feed tries again before it changes anything. */
    if (inc_room(e, svc) < 0)
        e->need_room = 1;
    r = &sr->inc[sr->open];             /* inc_room may have moved it */
    emit(e, INC_OPENED, r);
    return 0;
}

/* ---- derived state ---------------------------------------------------- */

/* Adds (@sign 1) or removes (-1) agent @a's part in slot @s's counts. */
static void contrib(struct inc_engine *e, size_t a, size_t s, int sign)
{
    const struct agent_slot *as = inc_as(e, a, s);
    struct slot_rt *rt = &e->rt[s];

    if (!as->part)
        return;
    if (as->stale) {
        rt->stale += sign;
        return;
    }
    switch (e->slot_kind[s]) {
    case SLOT_REGION:
        if (as->known) {
            rt->agents += sign;
            rt->unh += as->unh ? sign : 0;
        }
        break;
    case SLOT_WATCH:
        if (!as->has_set)
            break;
        rt->agents += sign;
        if (!as->mask)
            rt->serving += sign;
        for (uint64_t m = as->mask; m; m &= m - 1)
            e->rt[e->svc[e->slot_svc[s]].base + (size_t)lowest_bit(m)]
                .serving += sign;
        break;
    default:
        rt->agents += sign;
        rt->serving += as->good ? sign : 0;
        break;
    }
}

/* The region the global name sends most watching agents to; with no
 * answers mapping anywhere, the region the last failover promoted, else
 * the primary (after a failover the primary is not serving, review A2). */
static size_t serving_region(const struct inc_engine *e, size_t svc)
{
    const struct topo_service *s = &e->topo->services[svc];
    size_t best = 0;
    int64_t most = 0;

    for (size_t r = 0; r < s->n_regions; r++) {
        if (e->rt[e->svc[svc].base + r].serving > most) {
            most = e->rt[e->svc[svc].base + r].serving;
            best = r;
        }
    }
    if (most > 0)
        return best;
    if (e->svc[svc].promoted >= 0)
        return (size_t)e->svc[svc].promoted;
    for (size_t r = 0; r < s->n_regions; r++)
        if (s->regions[r].role == TOPO_ROLE_PRIMARY)
            return r;
    return 0;
}

/* Region @r of @svc is down with a failure that is new: the region of
 * the last closed incident, unhealthy since before that close, is the
 * same failure, and reopening it at every close would loop (review A2). */
static int new_failure(const struct inc_engine *e, size_t svc, size_t r)
{
    const struct svc_rt *sr = &e->svc[svc];
    const struct slot_rt *rt = &e->rt[sr->base + r];

    return rt->health == 0 &&
           !(sr->closed_region == (int)r && rt->since <= sr->closed_ms);
}

/* The region whose failure opens an incident now, -1 none. */
static int region_to_open(const struct inc_engine *e, size_t svc)
{
    const struct topo_service *s = &e->topo->services[svc];
    const struct slot_rt *rt = &e->rt[e->svc[svc].base];
    int64_t watchers = rt[s->n_regions].agents;
    size_t r;

    if (s->pattern == TOPO_ACTIVE_PASSIVE) {
        r = serving_region(e, svc);
        return new_failure(e, svc, r) ? (int)r : -1;
    }
    for (r = 0; r < s->n_regions; r++)
        if (new_failure(e, svc, r) &&
            (s->pattern == TOPO_SHARDED || watchers == 0 ||
             rt[r].serving > 0))
            return (int)r;
    return -1;
}

/* When every non-stale watching agent's answers had moved to a region
 * other than @fr: the last of their DNS changes (INC_NONE: not all
 * have). It is an event time, never the time of the check: switches
 * seen before a manual open keep their own times (review A3), and a
 * watcher that never switched and went stale leaves the set without
 * its staleness becoming the time (review A4). */
static int64_t all_switched(const struct inc_engine *e, size_t svc,
                            size_t fr)
{
    size_t w = e->svc[svc].base + e->topo->services[svc].n_regions;
    int64_t last = INC_NONE;

    for (size_t a = 0; a < e->n_agents; a++) {
        const struct agent_slot *as = inc_as(e, a, w);

        if (!as->part || as->stale || !as->has_set)
            continue;
        if (!as->mask || (as->mask & (1ull << fr)))
            return INC_NONE;
        if (as->mask_changed > last)
            last = as->mask_changed;
    }
    return last;
}

static int restore_cond(const struct inc_engine *e, size_t svc, size_t fr)
{
    const struct topo_service *s = &e->topo->services[svc];
    const struct slot_rt *g = &e->rt[e->svc[svc].base + s->n_regions + 1];

    if (s->pattern == TOPO_SHARDED)
        return e->rt[e->svc[svc].base + fr].health == 1;
    return g->agents > 0 &&
           (double)g->serving > e->topo->opt.quorum * (double)g->agents;
}

/* Restored found true at the open (@t): when a quorum of the good probes
 * kept by clear_good was first reached, the k-th of their good_since. */
static int64_t restore_time(const struct inc_engine *e, size_t svc,
                            int64_t t)
{
    const struct topo_service *s = &e->topo->services[svc];
    size_t g = e->svc[svc].base + s->n_regions + 1;
    const struct slot_rt *rt = &e->rt[g];
    int64_t best = t;

    if (s->pattern == TOPO_SHARDED)
        return t;
    /* The smallest x with more than quorum * agents good since x: each
     * candidate is one agent's good_since (agents are few per service,
     * and this runs once per incident). */
    for (size_t a = 0; a < e->n_agents; a++) {
        const struct agent_slot *x = inc_as(e, a, g);
        int64_t n = 0;

        if (!x->part || x->stale || !x->good || x->good_since >= best)
            continue;
        for (size_t b = 0; b < e->n_agents; b++) {
            const struct agent_slot *y = inc_as(e, b, g);

            n += y->part && !y->stale && y->good &&
                 y->good_since <= x->good_since;
        }
        if ((double)n > e->topo->opt.quorum * (double)rt->agents)
            best = x->good_since;
    }
    return best;
}

/* Moves the open incident of @svc along after a change at @t. */
static void incident_eval(struct inc_engine *e, size_t svc, int64_t t)
{
    struct inc_record *r = inc_open(e, svc);
    size_t fr = region_ix(r->service, r->region);
    const struct slot_rt *rt = &e->rt[e->svc[svc].base + fr];
    int changed = 0, cond;

    if (r->detected_ms == INC_NONE && rt->health == 0) {
        int64_t f = first_failure(e, svc, fr);

        r->detected_ms = t;
        if (f != INC_NONE &&
            (r->first_failure_ms == INC_NONE || f < r->first_failure_ms))
            r->first_failure_ms = f;
        changed = 1;
    }
    if (r->dns_first_ms != INC_NONE && r->dns_all_ms == INC_NONE) {
        int64_t all = all_switched(e, svc, fr);

        if (all != INC_NONE)
            set_time(&r->dns_all_ms, all, &changed);
    }
    cond = restore_cond(e, svc, fr);
    if (r->restored_ms == INC_NONE && cond) {
        int64_t due;

        r->restored_ms = t == r->opened_ms ? restore_time(e, svc, t) : t;
        due = r->restored_ms + e->topo->opt.stable_ms;
        inc_timer_set(e, (uint32_t)svc, due > t ? due : t);
        changed = 1;
    } else if (r->restored_ms != INC_NONE && !cond) {
        r->restored_ms = INC_NONE;
        inc_timer_del(e, (uint32_t)svc);
        changed = 1;
    }
    if (changed)
        emit(e, INC_UPDATED, r);
}

/* Recomputes @svc's region health from the counts and acts on what
 * changed at @t: opens, moves or (through its timer) closes incidents. */
static void refresh(struct inc_engine *e, size_t svc, int64_t t)
{
    const struct topo_service *s = &e->topo->services[svc];
    struct inc_record *r = inc_open(e, svc);
    int h, reg;

    for (size_t k = 0; k < s->n_regions; k++) {
        struct slot_rt *rt = &e->rt[e->svc[svc].base + k];

        h = rt->agents == 0 ? -1 :
            (double)rt->unh > e->topo->opt.quorum * (double)rt->agents ? 0 : 1;
        if (h == rt->health)
            continue;
        rt->health = h;
        rt->since = t;
        /* The failed region failing again is a new failure: restored
         * waits for fresh good probes through the global name. */
        if (h == 0 && r && &s->regions[k] == r->region) {
            clear_good(e, svc, INT64_MAX);
            if (r->restored_ms != INC_NONE) {
                r->restored_ms = INC_NONE;
                inc_timer_del(e, (uint32_t)svc);
                emit(e, INC_UPDATED, r);
            }
        }
    }
    if (!r) {
        reg = region_to_open(e, svc);
        if (reg < 0)
            return;
        if (open_incident(e, svc, (size_t)reg, t, 0) < 0) {
            e->err = -ENOTRECOVERABLE;
            return;
        }
    }
    incident_eval(e, svc, t);
}

/* Drops @svc's incidents closed before @t - keep_closed (review B4):
 * the driver has written them from the sink. Keeps the order. */
static void drop_closed(struct inc_engine *e, size_t svc, int64_t t)
{
    struct svc_rt *sr = &e->svc[svc];
    size_t n = 0;

    if (e->keep_closed < 0)
        return;
    for (size_t i = 0; i < sr->n_inc; i++) {
        const struct inc_record *r = &sr->inc[i];

        if (r->closed_ms != INC_NONE && r->closed_ms < t - e->keep_closed)
            continue;
        if (sr->open == (int)i)
            sr->open = (int)n;
        sr->inc[n++] = *r;
    }
    sr->n_inc = n;
}

static void close_incident(struct inc_engine *e, size_t svc, int64_t t)
{
    struct inc_record *r = inc_open(e, svc);

    r->closed_ms = t;
    e->svc[svc].open = -1;
    e->svc[svc].closed_region = (int)region_ix(r->service, r->region);
    e->svc[svc].closed_ms = t;
    if (r->to_region)
        e->svc[svc].promoted = (int)region_ix(r->service, r->to_region);
    emit(e, INC_CLOSED, r);
    drop_closed(e, svc, t);
    refresh(e, svc, t);
}

/* ---- events ----------------------------------------------------------- */

/* Agent @a was heard probing slot @s at @t (@gap since its previous
 * probe of the same target, -1 none): fresh again, and its staleness
 * moves to t + stale_intervals * interval. */
static void slot_heard(struct inc_engine *e, size_t a, size_t s,
                       int64_t gap, int64_t t)
{
    struct agent_slot *as = inc_as(e, a, s);
    int64_t iv = INC_NONE;
    uint32_t id = inc_stale_id(e, a, s);

    if (gap >= 0) {
        as->gaps[as->gap_i] = gap;
        as->gap_i = (uint8_t)((as->gap_i + 1) % INC_GAPS);
        if (as->n_gaps < INC_GAPS)
            as->n_gaps++;
    }
    for (size_t i = 0; i < as->n_gaps; i++)
        if (iv == INC_NONE || as->gaps[i] < iv)
            iv = as->gaps[i];
    as->last_probe = t;
    if (iv != INC_NONE) {
        iv = iv < INC_MIN_INTERVAL_MS ? INC_MIN_INTERVAL_MS :
             iv > INC_MAX_INTERVAL_MS ? INC_MAX_INTERVAL_MS : iv;
        as->stale_at = t + e->topo->opt.stale_intervals * iv;
        /* Lazy: a later staleness leaves the queued timer, which re-arms
         * when it fires; only an earlier one moves it. */
        if (e->pos[id] < 0 || e->due[id] > as->stale_at)
            inc_timer_set(e, id, as->stale_at);
    } else if (e->pos[id] < 0) {
        /* Never stale without an interval, but forgotten if silent. */
        inc_timer_set(e, id, t + INC_FORGET_MS);
    }
    if (as->part && !as->stale)
        return;
    contrib(e, a, s, -1);
    as->part = 1;
    as->stale = 0;
    contrib(e, a, s, 1);
    refresh(e, (size_t)e->slot_svc[s], t);
}

/* The regions of @svc an answer set maps to. */
static uint64_t answers_mask(const struct inc_engine *e, size_t svc,
                             const struct inc_event *ev)
{
    uint64_t m = 0;

    for (size_t i = 0; i < ev->n_answers; i++) {
        const struct ix_ent *en = inc_ix_find(&e->answers, ev->answers[i]);

        for (int32_t k = en ? en->first : -1; k >= 0; k = e->refs[k].next)
            if ((size_t)e->refs[k].svc == svc)
                m |= 1ull << (e->refs[k].slot - (int32_t)e->svc[svc].base);
    }
    return m;
}

/* Agent @a's answers for @svc's global name are now @ev's. */
static void watch_set(struct inc_engine *e, size_t a, size_t svc,
                      const struct inc_event *ev)
{
    size_t w = e->svc[svc].base + e->topo->services[svc].n_regions;
    struct agent_slot *as = inc_as(e, a, w);
    uint64_t m = answers_mask(e, svc, ev), old = as->mask;
    int had = as->has_set, changed = 0;
    struct inc_record *r;

    if (as->part && had && old == m)
        return;
    contrib(e, a, w, -1);
    as->part = 1;
    as->has_set = 1;
    if (!had || old != m) {
        as->mask = m;
        as->mask_changed = ev->t_ms;
    }
    contrib(e, a, w, 1);
    r = inc_open(e, svc);
    if (r && r->service->pattern != TOPO_SHARDED && had && m) {
        uint64_t fb = 1ull << region_ix(r->service, r->region);

        if ((old & fb) && !(m & fb)) {
            if (r->dns_first_ms == INC_NONE)
                set_time(&r->dns_first_ms, ev->t_ms, &changed);
            failover_start(e, svc, ev->t_ms, &changed);
            set_to_region(e, svc, lowest_bit(m), &changed);
            rpo_update(e, svc, &changed);
            if (changed)
                emit(e, INC_UPDATED, r);
        }
    }
    refresh(e, svc, ev->t_ms);
}

/* An ok probe through the global name counts when the region serving it
 * (served-by, else the agent's answers) is healthy; with neither known,
 * ok alone. */
static int global_good(const struct inc_engine *e, size_t a, size_t svc,
                       const struct inc_event *ev)
{
    const struct topo_service *s = &e->topo->services[svc];
    const struct slot_rt *rt = &e->rt[e->svc[svc].base];
    const struct agent_slot *w = inc_as(e, a, e->svc[svc].base + s->n_regions);
    int r = region_named_fold(s, ev->served_by);

    if (!ev->ok)
        return 0;
    if (r >= 0)
        return rt[r].health == 1;
    if (w->has_set && w->mask) {
        for (uint64_t m = w->mask; m; m &= m - 1)
            if (rt[lowest_bit(m)].health != 1)
                return 0;
        return 1;
    }
    return 1;
}

static void on_global_probe(struct inc_engine *e, size_t a, size_t svc,
                            const struct inc_event *ev, int64_t gap)
{
    size_t base = e->svc[svc].base + e->topo->services[svc].n_regions;
    struct agent_slot *as;
    uint8_t good;

    if (ev->has_answers) {
        /* A failed resolution says nothing of where the name points:
         * the last answers stand. */
        slot_heard(e, a, base, gap, ev->t_ms);
        if (ev->ok)
            watch_set(e, a, svc, ev);
        return;
    }
    slot_heard(e, a, base + 1, gap, ev->t_ms);
    as = inc_as(e, a, base + 1);
    good = (uint8_t)global_good(e, a, svc, ev);
    if (as->good == good)
        return;
    contrib(e, a, base + 1, -1);
    as->good = good;
    as->good_since = ev->t_ms;
    contrib(e, a, base + 1, 1);
    refresh(e, svc, ev->t_ms);
}

static void on_probe(struct inc_engine *e, size_t a,
                     const struct ix_ent *en, const struct inc_event *ev)
{
    struct agent_target *at = inc_at(e, a, (size_t)en->id);
    int64_t gap = at->last_probe != INC_NONE ? ev->t_ms - at->last_probe
                                             : -1;

    at->last_probe = ev->t_ms;
    if (ev->ok) {
        at->ffs = INC_NONE;
        at->last_ok = ev->t_ms;
    }
    else if (at->ffs == INC_NONE)
        at->ffs = ev->t_ms;
    for (int32_t k = en->first; k >= 0; k = e->refs[k].next) {
        const struct ref *r = &e->refs[k];

        if (r->kind == REF_REGION)
            slot_heard(e, a, (size_t)r->slot, gap, ev->t_ms);
        else if (r->kind == REF_GLOBAL)
            on_global_probe(e, a, (size_t)r->svc, ev, gap);
    }
}

static void on_state(struct inc_engine *e, size_t a,
                     const struct ix_ent *en, const struct inc_event *ev)
{
    struct agent_target *at = inc_at(e, a, (size_t)en->id);
    int old = at->state;
    int nw = ev->healthy == 1 ? 1 : ev->healthy == 0 ? 0 : -1;
    int handoff = ev->healthy == INC_HANDED_OFF;

    if (old == nw && !handoff)
        return;
    at->state = nw;
    for (int32_t k = en->first; k >= 0; k = e->refs[k].next) {
        const struct ref *r = &e->refs[k];
        struct agent_slot *as;

        if (r->kind != REF_REGION)
            continue;
        as = inc_as(e, a, (size_t)r->slot);
        contrib(e, a, (size_t)r->slot, -1);
        as->known -= old != -1;
        as->unh -= old == 0;
        as->known += nw != -1;
        as->unh += nw == 0;
        /* Handed off its last target of the region (probers: N): it
         * leaves the region's quorum now, and its silence from here on
         * is not staleness. Its next probe there brings it back. */
        as->part = !(handoff && as->known == 0);
        if (!as->part)
            as->stale = 0;
        contrib(e, a, (size_t)r->slot, 1);
        refresh(e, (size_t)r->svc, ev->t_ms);
    }
}

static void on_metric(struct inc_engine *e, const struct ix_ent *en,
                      const struct inc_event *ev)
{
    for (int32_t k = en->first; k >= 0; k = e->refs[k].next) {
        const struct ref *r = &e->refs[k];
        const struct topo_region *rg;
        struct slot_rt *rt = &e->rt[r->slot];
        struct inc_record *inc;
        int changed = 0;

        if (r->kind != REF_LAG)
            continue;
        rg = &e->topo->services[r->svc]
                 .regions[(size_t)r->slot - e->svc[r->svc].base];
        if (!ev->metric || strcmp(ev->metric, rg->lag_metric) != 0 ||
            !isfinite(ev->value))
            continue;
        rt->lag_have = 1;
        rt->lag_v = ev->value;
        inc = inc_open(e, (size_t)r->svc);
        /* A sample at the failover start's very millisecond, fed after
         * it, is still "at or before" it. */
        if (inc && inc->failover_start_ms == ev->t_ms) {
            rt->snap_have = 1;
            rt->snap_v = ev->value;
            rpo_update(e, (size_t)r->svc, &changed);
            if (changed)
                emit(e, INC_UPDATED, inc);
        }
    }
}

static void on_failover(struct inc_engine *e, const struct inc_event *ev)
{
    const struct topology *t = e->topo;

    if (!ev->fo_kind || (strcmp(ev->fo_kind, "manual") != 0 &&
                         strcmp(ev->fo_kind, "failover") != 0))
        return;
    for (size_t i = 0; i < t->n_services; i++) {
        const struct topo_service *s = &t->services[i];
        int from = region_named(s, ev->from_region);
        int to = region_named(s, ev->to_region);
        struct inc_record *r;
        int changed = 0;

        if (ev->fo_service && *ev->fo_service ?
            strcmp(ev->fo_service, s->name) != 0 : from < 0 && to < 0)
            continue;
        if (!inc_open(e, i) &&
            open_incident(e, i, from >= 0 ? (size_t)from
                                          : serving_region(e, i),
                          ev->t_ms, 1) < 0) {
            e->err = -ENOTRECOVERABLE;
            return;
        }
        r = inc_open(e, i);
        failover_start(e, i, ev->t_ms, &changed);
        set_to_region(e, i, to, &changed);
        rpo_update(e, i, &changed);
        if (changed)
            emit(e, INC_UPDATED, r);
        refresh(e, i, ev->t_ms);
    }
}

static void on_dns(struct inc_engine *e, size_t a, const struct inc_event *ev)
{
    const struct ix_ent *en = inc_ix_find(&e->gnames, ev->dns_name);

    for (int32_t k = en ? en->first : -1; k >= 0; k = e->refs[k].next)
        watch_set(e, a, (size_t)e->refs[k].svc, ev);
    en = inc_ix_find(&e->targets, ev->target);
    for (int32_t k = en ? en->first : -1; k >= 0; k = e->refs[k].next)
        if (e->refs[k].kind == REF_GLOBAL)
            watch_set(e, a, (size_t)e->refs[k].svc, ev);
}

static void mark_dirty(struct inc_engine *e, size_t svc)
{
    if (!e->dirty[svc]) {
        e->dirty[svc] = 1;
        e->dirty_list[e->n_dirty++] = svc;
    }
}

/* When slot @as of an agent may be forgotten: INT64_MIN at once (takes
 * no part, or no time to go by), INT64_MAX never (fresh, with an
 * interval: its staleness timer comes first). */
static int64_t forget_at(const struct agent_slot *as)
{
    if (!as->part)
        return INT64_MIN;
    if (as->stale)
        return as->stale_at + INC_FORGET_MS;
    if (as->stale_at != INC_NONE)
        return INT64_MAX;
    return as->last_probe == INC_NONE ? INT64_MIN
                                      : as->last_probe + INC_FORGET_MS;
}

/* The forget timer @id of agent @a's slot @s fires at @due: the agent is
 * forgotten once every slot of it may be (each slot that may not yet has
 * a timer of its own that checks again). */
static void forget_check(struct inc_engine *e, size_t a, size_t s,
                         uint32_t id, int64_t due)
{
    int64_t at = forget_at(inc_as(e, a, s));

    if (at > due) {
        if (at != INT64_MAX)
            inc_timer_set(e, id, at);
        return;
    }
    for (size_t k = 0; k < e->n_slots; k++)
        if (forget_at(inc_as(e, a, k)) > due)
            return;
    for (size_t k = 0; k < e->n_slots; k++) {
        if (!inc_as(e, a, k)->part)
            continue;
        contrib(e, a, k, -1);
        mark_dirty(e, (size_t)e->slot_svc[k]);
    }
    inc_agent_forget(e, a);
}

/* Timer @id fires at @due. A close acts at once; a staleness changes the
 * counts and leaves the service's refresh to fire_until; a slot stale
 * (or silent) for INC_FORGET_MS may forget its agent. */
static void timer_fire(struct inc_engine *e, uint32_t id, int64_t due)
{
    size_t n_svc = e->topo->n_services, a, s, svc;
    struct agent_slot *as;
    struct inc_record *r;

    if (id < n_svc) {
        r = inc_open(e, id);
        /* The timer is deleted whenever restored is unset: one that
         * fires is the current one (due may be later than restored +
         * stable when restored predates the open). */
        if (r && r->restored_ms != INC_NONE &&
            r->restored_ms + e->topo->opt.stable_ms <= due)
            close_incident(e, id, due);
        return;
    }
    a = (id - n_svc) / e->n_slots;
    s = (id - n_svc) % e->n_slots;
    as = inc_as(e, a, s);
    if (!as->part)
        return;
    if (as->stale || as->stale_at == INC_NONE) {
        forget_check(e, a, s, id, due);
        return;
    }
    if (as->stale_at > due) {
        inc_timer_set(e, id, as->stale_at);
        return;
    }
    contrib(e, a, s, -1);
    as->stale = 1;
    contrib(e, a, s, 1);
    inc_timer_set(e, id, due + INC_FORGET_MS);
    svc = (size_t)e->slot_svc[s];
    mark_dirty(e, svc);
}

/* Fires every timer due at or before @upto, one due time at a time:
 * closes first (their ids are lowest), then every staleness of that time,
 * then one refresh per service touched, so that agents going stale at
 * the same millisecond count as one change whatever their order. */
static void fire_until(struct inc_engine *e, int64_t upto)
{
    while (e->n_heap > 0 && e->due[e->heap[0]] <= upto) {
        int64_t due = e->due[e->heap[0]];

        while (e->n_heap > 0 && e->due[e->heap[0]] == due) {
            uint32_t id = e->heap[0];

            inc_timer_del(e, id);
            timer_fire(e, id, due);
        }
        for (size_t i = 0; i < e->n_dirty; i++) {
            e->dirty[e->dirty_list[i]] = 0;
            refresh(e, e->dirty_list[i], due);
        }
        e->n_dirty = 0;
    }
}

/* ---- public ----------------------------------------------------------- */

static int key_after_last(const struct inc_engine *e,
                          const struct inc_event *ev)
{
    if (!e->have_last)
        return 1;
    if (ev->t_ms != e->last_t)
        return ev->t_ms > e->last_t;
    if (ev->agent_id != e->last_agent)
        return ev->agent_id > e->last_agent;
    return ev->seq > e->last_seq;
}

/* The incident slots a step may use, before it changes anything. */
static int reserve(struct inc_engine *e)
{
    if (!e->need_room)
        return 0;
    for (size_t i = 0; i < e->topo->n_services; i++)
        if (inc_room(e, i) < 0)
            return -ENOMEM;
    e->need_room = 0;
    return 0;
}

int inc_engine_feed(struct inc_engine *e, const struct inc_event *ev)
{
    const struct ix_ent *en = NULL;
    size_t a = 0;
    int need_agent;

    if (!ev || ev->t_ms < -INC_MAX_T || ev->t_ms > INC_MAX_T ||
        !key_after_last(e, ev))
        return -EINVAL;
    if (e->err)
        return e->err;
    if (reserve(e) < 0)
        return -ENOMEM;
    if (ev->kind == INC_EV_PROBE || ev->kind == INC_EV_STATE ||
        ev->kind == INC_EV_METRIC)
        en = inc_ix_find(&e->targets, ev->target);
    need_agent = en != NULL && ev->kind != INC_EV_METRIC;
    if (ev->kind == INC_EV_DNS)
        need_agent = ev->has_answers &&
                     (inc_ix_find(&e->gnames, ev->dns_name) ||
                      inc_ix_find(&e->targets, ev->target));
    /* Allocate before anything changes: -ENOMEM leaves the engine as
     * it was. */
    if (need_agent && inc_agent_get(e, ev->agent_id, &a) < 0)
        return -ENOMEM;
    fire_until(e, ev->t_ms);
    e->have_last = 1;
    e->last_t = ev->t_ms;
    e->last_agent = ev->agent_id;
    e->last_seq = ev->seq;
    e->horizon = ev->t_ms;
    switch (ev->kind) {
    case INC_EV_PROBE:
        if (en)
            on_probe(e, a, en, ev);
        break;
    case INC_EV_STATE:
        if (en)
            on_state(e, a, en, ev);
        break;
    case INC_EV_DNS:
        if (need_agent)
            on_dns(e, a, ev);
        break;
    case INC_EV_FAILOVER:
        on_failover(e, ev);
        break;
    case INC_EV_METRIC:
        if (en)
            on_metric(e, en, ev);
        break;
    }
    return e->err;
}

void inc_engine_advance(struct inc_engine *e, int64_t now_ms)
{
    if (e->horizon != INC_NONE && now_ms <= e->horizon)
        return;
    if (e->err || reserve(e) < 0)
        return;                 /* unchanged: the next call tries again */
    fire_until(e, now_ms);
    /* Events at now_ms itself may still come: they sort after the
     * timers just fired, as they would have in one feed. */
    e->horizon = now_ms;
    e->have_last = 1;
    e->last_t = now_ms;
    e->last_agent = INT64_MIN;
    e->last_seq = 0;
}
