/* incident.c -- the incident engine (see incident.h and docs/design.md,
 * "Incidents", for the definitions this file implements). Holds an index
 * of the topology's names built once, the per-agent state the quorum
 * needs, an indexed timer heap (staleness, closes) and every incident
 * since the engine started. Does no I/O and reads no clock.
 *
 * Speed: feeding is O(1) per event in the common path (a probe of a known
 * target: one hash lookup, a few stores, no allocation). Work that scans
 * agents or a region's targets happens only when something changes:
 * a health or staleness transition, a new DNS answer set, an incident's
 * open or close. */
#include "incident.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An agent's probe interval is clamped into this range: a burst of
 * results in one millisecond must not make it stale at once, and a
 * wild gap must not keep it fresh for days. */
#define INC_MIN_INTERVAL_MS 100
#define INC_MAX_INTERVAL_MS (24LL * 3600 * 1000)
#define INC_GAPS 3              /* interval = smallest of the last gaps */
#define INC_MAX_REGIONS 64      /* answer sets are bit masks of regions */

enum ref_kind { REF_REGION, REF_GLOBAL, REF_LAG, REF_ANSWER, REF_NAME };

/* What a name means: a list of these per indexed name, linked by next. */
struct ref {
    int32_t next;               /* -1: end */
    int32_t kind;               /* enum ref_kind */
    int32_t svc;
    int32_t slot;               /* region slot (region, lag, answer) */
};

/* One name of an index. key borrowed from the topology. */
struct ix_ent {
    const char *key;            /* NULL: empty */
    size_t len;
    uint32_t hash;
    int32_t first;              /* first ref */
    int32_t id;                 /* dense id (targets: per-agent rows) */
};

/* Open addressing, linear probing; never resized after inc_engine_new.
 * fold: names compare case-insensitively, one trailing dot ignored. */
struct ix {
    struct ix_ent *t;
    size_t cap;                 /* power of two */
    size_t n;
    int fold;
};

/* Slots: per service, one per region, then WATCH (the agents resolving
 * the global name) and GLOBAL (the agents probing through it). An
 * agent's staleness, participation and counts live per slot. */
enum slot_kind { SLOT_REGION, SLOT_WATCH, SLOT_GLOBAL };

/* The aggregate of one slot over the agents, kept up to date as agents'
 * contributions change (contrib()). */
struct slot_rt {
    int64_t agents;     /* region: non-stale with a known view; watch:
                         * non-stale with an answer set; global: non-
                         * stale probers */
    int64_t unh;        /* region: of those, seeing it unhealthy */
    int64_t stale;      /* participating agents that are stale */
    int64_t serving;    /* region: watchers mapping here; watch: ones
                         * mapping nowhere; global: good probes */
    int health;         /* region: 1, 0, -1 unknown */
    int64_t since;
    int lag_have;       /* region: last replication-lag sample */
    double lag_v;
    int snap_have;      /* ... as it was at the failover start */
    double snap_v;
};

/* One (agent, target). */
struct agent_target {
    int64_t last_probe;
    int64_t ffs;                /* first failure since the last success */
    int state;                  /* 1, 0, -1 unknown */
};

/* One (agent, slot). */
struct agent_slot {
    int64_t last_probe;
    int64_t gaps[INC_GAPS];
    int64_t stale_at;           /* INC_NONE: no interval known yet */
    int64_t mask_changed;       /* watch: when mask last changed */
    uint64_t mask;              /* watch: regions its answers map to */
    uint32_t known, unh;        /* region: targets with a known state,
                                 * and of those unhealthy */
    uint8_t n_gaps, gap_i;
    uint8_t part;               /* takes part in this slot */
    uint8_t stale;
    uint8_t has_set;            /* watch: has an answer set */
    uint8_t good;               /* global: last probe ok, served well */
};

struct svc_rt {
    size_t base;                /* first slot */
    struct inc_record *inc;     /* every incident, in opened order */
    size_t n_inc, cap_inc;
    int open;                   /* index in inc, -1 none */
};

struct inc_engine {
    const struct topology *topo;
    inc_sink_fn sink;
    void *ctx;
    int err;                    /* sticky -ENOMEM from inside a step */

    struct ix targets, answers, gnames;
    struct ref *refs;
    size_t n_refs;
    size_t *order;              /* service indices by name */

    size_t n_slots;
    int32_t *slot_svc;
    uint8_t *slot_kind;
    struct slot_rt *rt;
    struct svc_rt *svc;

    /* agents: store id -> dense index (open addressing, -1 empty) */
    int64_t *agent_id;          /* dense index -> store id */
    int32_t *agent_ix;
    size_t agent_ix_cap;
    size_t n_agents, cap_agents;
    struct agent_target *at;    /* n_agents x targets.n */
    struct agent_slot *as;      /* n_agents x n_slots */

    /* timers: id < n_services: the close of that service; else the
     * staleness of (agent, slot) id - n_services. */
    uint32_t *heap;
    size_t n_heap;
    int32_t *pos;               /* per id: index in heap, -1 */
    int64_t *due;               /* per id */

    int have_last;
    int64_t last_t, last_agent;
    uint64_t last_seq;
    int64_t horizon;
};

/* ---- names ------------------------------------------------------------ */

static size_t name_len(const char *s, int fold)
{
    size_t n = strlen(s);

    if (fold && n > 0 && s[n - 1] == '.')
        n--;
    return n;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static uint32_t name_hash(const char *s, size_t n, int fold)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)(fold ? lower((unsigned char)s[i]) : s[i]);
        h *= 16777619u;
    }
    return h;
}

static int name_eq(const char *a, const char *b, size_t n, int fold)
{
    if (!fold)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int ix_init(struct ix *x, size_t max, int fold)
{
    x->cap = 16;
    while (x->cap < 2 * max + 1)
        x->cap *= 2;
    x->t = calloc(x->cap, sizeof(*x->t));
    x->n = 0;
    x->fold = fold;
    return x->t ? 0 : -ENOMEM;
}

static struct ix_ent *ix_slot(const struct ix *x, const char *s, size_t n,
                              uint32_t h)
{
    size_t i = h & (x->cap - 1);

    while (x->t[i].key &&
           !(x->t[i].hash == h && x->t[i].len == n &&
             name_eq(x->t[i].key, s, n, x->fold)))
        i = (i + 1) & (x->cap - 1);
    return &x->t[i];
}

static const struct ix_ent *ix_find(const struct ix *x, const char *s)
{
    const struct ix_ent *en;
    size_t n;

    if (!s || !*s)
        return NULL;
    n = name_len(s, x->fold);
    en = ix_slot(x, s, n, name_hash(s, n, x->fold));
    return en->key ? en : NULL;
}

/* Adds a ref to @s's list (the index has room: sized at init). */
static void ix_add(struct inc_engine *e, struct ix *x, const char *s,
                   enum ref_kind kind, size_t svc, size_t slot)
{
    size_t n = name_len(s, x->fold);
    uint32_t h = name_hash(s, n, x->fold);
    struct ix_ent *en = ix_slot(x, s, n, h);
    struct ref *r = &e->refs[e->n_refs];

    if (!en->key) {
        en->key = s;
        en->len = n;
        en->hash = h;
        en->first = -1;
        en->id = (int32_t)x->n++;
    }
    r->kind = (int32_t)kind;
    r->svc = (int32_t)svc;
    r->slot = (int32_t)slot;
    r->next = en->first;
    en->first = (int32_t)e->n_refs++;
}

/* Insertion sort of service indices by name: services are few, and
 * qsort has no context argument in C11. */
static void order_services(struct inc_engine *e)
{
    const struct topo_service *sv = e->topo->services;
    size_t n = e->topo->n_services;

    for (size_t i = 0; i < n; i++) {
        size_t j = i, cur = i;

        for (; j > 0 && strcmp(sv[e->order[j - 1]].name, sv[cur].name) > 0;
             j--)
            e->order[j] = e->order[j - 1];
        e->order[j] = cur;
    }
}

/* Counts the names and slots the index needs; -EINVAL past the region
 * cap of a service. */
static int topo_count(const struct topology *t, size_t *names,
                      size_t *answers, size_t *slots)
{
    *names = *answers = *slots = 0;
    for (size_t i = 0; i < t->n_services; i++) {
        const struct topo_service *s = &t->services[i];

        if (s->n_regions > INC_MAX_REGIONS)
            return -EINVAL;
        *names += s->n_global_targets;
        *slots += s->n_regions + 2;
        for (size_t r = 0; r < s->n_regions; r++) {
            *names += s->regions[r].n_targets + 1;
            *answers += s->regions[r].n_answers;
        }
    }
    return 0;
}

static int build_index(struct inc_engine *e)
{
    const struct topology *t = e->topo;
    size_t names, answers, slots, slot = 0;

    if (topo_count(t, &names, &answers, &slots) < 0)
        return -EINVAL;
    e->refs = calloc(names + answers + t->n_services + 1, sizeof(*e->refs));
    e->slot_svc = calloc(slots + 1, sizeof(*e->slot_svc));
    e->slot_kind = calloc(slots + 1, 1);
    e->rt = calloc(slots + 1, sizeof(*e->rt));
    e->svc = calloc(t->n_services + 1, sizeof(*e->svc));
    e->order = calloc(t->n_services + 1, sizeof(*e->order));
    if (!e->refs || !e->slot_svc || !e->slot_kind || !e->rt || !e->svc ||
        !e->order || ix_init(&e->targets, names, 0) < 0 ||
        ix_init(&e->answers, answers, 1) < 0 ||
        ix_init(&e->gnames, t->n_services, 1) < 0)
        return -ENOMEM;
    e->n_slots = slots;
    for (size_t i = 0; i < t->n_services; i++) {
        const struct topo_service *s = &t->services[i];

        e->svc[i].base = slot;
        e->svc[i].open = -1;
        ix_add(e, &e->gnames, s->global_name, REF_NAME, i, 0);
        for (size_t g = 0; g < s->n_global_targets; g++)
            ix_add(e, &e->targets, s->global_targets[g], REF_GLOBAL, i, 0);
        for (size_t r = 0; r < s->n_regions; r++, slot++) {
            const struct topo_region *rg = &s->regions[r];

            e->slot_svc[slot] = (int32_t)i;
            e->slot_kind[slot] = SLOT_REGION;
            e->rt[slot].health = -1;
            e->rt[slot].since = INC_NONE;
            for (size_t k = 0; k < rg->n_targets; k++)
                ix_add(e, &e->targets, rg->targets[k], REF_REGION, i, slot);
            for (size_t k = 0; k < rg->n_answers; k++)
                ix_add(e, &e->answers, rg->answers[k], REF_ANSWER, i, slot);
            if (rg->lag_metric && rg->lag_target)
                ix_add(e, &e->targets, rg->lag_target, REF_LAG, i, slot);
        }
        for (int k = SLOT_WATCH; k <= SLOT_GLOBAL; k++, slot++) {
            e->slot_svc[slot] = (int32_t)i;
            e->slot_kind[slot] = (uint8_t)k;
            e->rt[slot].health = -1;
            e->rt[slot].since = INC_NONE;
        }
    }
    order_services(e);
    return 0;
}

/* ---- agents ----------------------------------------------------------- */

static struct agent_target *AT(const struct inc_engine *e, size_t a,
                               size_t tid)
{
    return &e->at[a * e->targets.n + tid];
}

static struct agent_slot *AS(const struct inc_engine *e, size_t a,
                             size_t s)
{
    return &e->as[a * e->n_slots + s];
}

static size_t agent_hash_pos(const struct inc_engine *e, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;

    return (size_t)(h >> 20) & (e->agent_ix_cap - 1);
}

static int agent_rehash(struct inc_engine *e, size_t cap)
{
    int32_t *ix = malloc(cap * sizeof(*ix));

    if (!ix)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        ix[i] = -1;
    free(e->agent_ix);
    e->agent_ix = ix;
    e->agent_ix_cap = cap;
    for (size_t a = 0; a < e->n_agents; a++) {
        size_t p = agent_hash_pos(e, e->agent_id[a]);

        while (ix[p] >= 0)
            p = (p + 1) & (cap - 1);
        ix[p] = (int32_t)a;
    }
    return 0;
}

static int grow(void **p, size_t elem, size_t n)
{
    void *q = realloc(*p, elem * n);

    if (!q)
        return -ENOMEM;
    *p = q;
    return 0;
}

/* Room for one more agent: every per-agent array grows together. */
static int agent_reserve(struct inc_engine *e)
{
    size_t cap = e->cap_agents ? 2 * e->cap_agents : 4;
    size_t ids = e->topo->n_services + cap * e->n_slots;

    if (e->n_agents < e->cap_agents)
        return 0;
    if (grow((void **)&e->agent_id, sizeof(*e->agent_id), cap) < 0 ||
        grow((void **)&e->at, sizeof(*e->at), cap * e->targets.n + 1) < 0 ||
        grow((void **)&e->as, sizeof(*e->as), cap * e->n_slots + 1) < 0 ||
        grow((void **)&e->heap, sizeof(*e->heap), ids + 1) < 0 ||
        grow((void **)&e->pos, sizeof(*e->pos), ids + 1) < 0 ||
        grow((void **)&e->due, sizeof(*e->due), ids + 1) < 0)
        return -ENOMEM;
    for (size_t i = e->topo->n_services + e->cap_agents * e->n_slots;
         i < ids; i++)
        e->pos[i] = -1;
    e->cap_agents = cap;
    return 0;
}

/* The dense index of store agent @id, added if new; -ENOMEM. */
static int agent_get(struct inc_engine *e, int64_t id, size_t *out)
{
    size_t p;

    if (e->agent_ix_cap) {
        for (p = agent_hash_pos(e, id); e->agent_ix[p] >= 0;
             p = (p + 1) & (e->agent_ix_cap - 1))
            if (e->agent_id[e->agent_ix[p]] == id) {
                *out = (size_t)e->agent_ix[p];
                return 0;
            }
    }
    if (agent_reserve(e) < 0)
        return -ENOMEM;
    if (2 * (e->n_agents + 1) > e->agent_ix_cap &&
        agent_rehash(e, e->agent_ix_cap ? 2 * e->agent_ix_cap : 16) < 0)
        return -ENOMEM;
    e->agent_id[e->n_agents] = id;
    for (size_t t = 0; t < e->targets.n; t++)
        *AT(e, e->n_agents, t) = (struct agent_target){
            .last_probe = INC_NONE, .ffs = INC_NONE, .state = -1 };
    for (size_t s = 0; s < e->n_slots; s++)
        *AS(e, e->n_agents, s) = (struct agent_slot){
            .last_probe = INC_NONE, .stale_at = INC_NONE,
            .mask_changed = INC_NONE };
    for (p = agent_hash_pos(e, id); e->agent_ix[p] >= 0;
         p = (p + 1) & (e->agent_ix_cap - 1))
        ;
    e->agent_ix[p] = (int32_t)e->n_agents;
    *out = e->n_agents++;
    return 0;
}

/* ---- timers: a binary heap of ids ordered by (due, id) ---------------- */

static int timer_less(const struct inc_engine *e, uint32_t a, uint32_t b)
{
    return e->due[a] < e->due[b] || (e->due[a] == e->due[b] && a < b);
}

static void heap_put(struct inc_engine *e, size_t i, uint32_t id)
{
    e->heap[i] = id;
    e->pos[id] = (int32_t)i;
}

static void heap_fix(struct inc_engine *e, size_t i)
{
    uint32_t id = e->heap[i];

    while (i > 0 && timer_less(e, id, e->heap[(i - 1) / 2])) {
        heap_put(e, i, e->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= e->n_heap)
            break;
        if (c + 1 < e->n_heap && timer_less(e, e->heap[c + 1], e->heap[c]))
            c++;
        if (!timer_less(e, e->heap[c], id))
            break;
        heap_put(e, i, e->heap[c]);
        i = c;
    }
    heap_put(e, i, id);
}

/* Schedules (or moves) timer @id at @due. The heap has room for every
 * id (agent_reserve), so this never allocates. */
static void timer_set(struct inc_engine *e, uint32_t id, int64_t due)
{
    e->due[id] = due;
    if (e->pos[id] < 0) {
        e->pos[id] = (int32_t)e->n_heap;
        e->heap[e->n_heap++] = id;
    }
    heap_fix(e, (size_t)e->pos[id]);
}

static void timer_del(struct inc_engine *e, uint32_t id)
{
    size_t i = (size_t)e->pos[id];
    uint32_t last;

    if (e->pos[id] < 0)
        return;
    e->pos[id] = -1;
    last = e->heap[--e->n_heap];
    if (i < e->n_heap) {
        heap_put(e, i, last);
        heap_fix(e, i);
    }
}

static uint32_t stale_id(const struct inc_engine *e, size_t a, size_t s)
{
    return (uint32_t)(e->topo->n_services + a * e->n_slots + s);
}

/* ---- incidents -------------------------------------------------------- */

static void emit(struct inc_engine *e, enum inc_change what,
                 const struct inc_record *r)
{
    if (e->sink)
        e->sink(e->ctx, what, r);
}

static struct inc_record *open_inc(const struct inc_engine *e, size_t svc)
{
    const struct svc_rt *sr = &e->svc[svc];

    return sr->open >= 0 ? &sr->inc[sr->open] : NULL;
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
            name_eq(s->regions[r].name, name, n, 1))
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
    struct inc_record *r = open_inc(e, svc);
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
    struct inc_record *r = open_inc(e, svc);
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
    struct inc_record *r = open_inc(e, svc);

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

/* The earliest first-failure-since-success of any of @svc's region @r's
 * targets by any agent. */
static int64_t first_failure(const struct inc_engine *e, size_t svc,
                             size_t r)
{
    const struct topo_region *rg = &e->topo->services[svc].regions[r];
    int64_t best = INC_NONE;

    for (size_t k = 0; k < rg->n_targets; k++) {
        const struct ix_ent *en = ix_find(&e->targets, rg->targets[k]);

        for (size_t a = 0; en && a < e->n_agents; a++) {
            int64_t f = AT(e, a, (size_t)en->id)->ffs;

            if (f != INC_NONE && (best == INC_NONE || f < best))
                best = f;
        }
    }
    return best;
}

static void clear_good(struct inc_engine *e, size_t svc)
{
    size_t g = e->svc[svc].base + e->topo->services[svc].n_regions + 1;

    for (size_t a = 0; a < e->n_agents; a++)
        AS(e, a, g)->good = 0;
    e->rt[g].serving = 0;
}

/* Agents whose answers moved away from failed region @fr before the
 * incident opened (after @since): their switch counts. */
static void dns_before_open(struct inc_engine *e, size_t svc, size_t fr,
                            int64_t since, int *changed)
{
    size_t w = e->svc[svc].base + e->topo->services[svc].n_regions;
    struct inc_record *r = open_inc(e, svc);
    int64_t first = INC_NONE;
    uint64_t first_mask = 0;

    for (size_t a = 0; a < e->n_agents; a++) {
        const struct agent_slot *as = AS(e, a, w);

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

    if (sr->n_inc == sr->cap_inc) {
        size_t cap = sr->cap_inc ? 2 * sr->cap_inc : 4;

        if (grow((void **)&sr->inc, sizeof(*sr->inc), cap) < 0)
            return -ENOMEM;
        sr->cap_inc = cap;
    }
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
    clear_good(e, svc);
    if (s->pattern != TOPO_SHARDED)
        dns_before_open(e, svc, reg,
                        r->first_failure_ms != INC_NONE ?
                        r->first_failure_ms : t, &changed);
    rpo_update(e, svc, &changed);
    emit(e, INC_OPENED, r);
    return 0;
}

/* ---- derived state ---------------------------------------------------- */

/* Adds (@sign 1) or removes (-1) agent @a's part in slot @s's counts. */
static void contrib(struct inc_engine *e, size_t a, size_t s, int sign)
{
    const struct agent_slot *as = AS(e, a, s);
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

/* The region the global name sends most watching agents to; before any
 * answers, the primary. */
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
    for (size_t r = 0; r < s->n_regions; r++)
        if (s->regions[r].role == TOPO_ROLE_PRIMARY)
            return r;
    return 0;
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
        return rt[r].health == 0 ? (int)r : -1;
    }
    for (r = 0; r < s->n_regions; r++)
        if (rt[r].health == 0 &&
            (s->pattern == TOPO_SHARDED || watchers == 0 ||
             rt[r].serving > 0))
            return (int)r;
    return -1;
}

/* Every non-stale watching agent's answers map to a region other than
 * @fr. */
static int all_switched(const struct inc_engine *e, size_t svc, size_t fr)
{
    size_t w = e->svc[svc].base + e->topo->services[svc].n_regions;

    for (size_t a = 0; a < e->n_agents; a++) {
        const struct agent_slot *as = AS(e, a, w);

        if (as->part && !as->stale && as->has_set &&
            (!as->mask || (as->mask & (1ull << fr))))
            return 0;
    }
    return 1;
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

/* Moves the open incident of @svc along after a change at @t. */
static void incident_eval(struct inc_engine *e, size_t svc, int64_t t)
{
    struct inc_record *r = open_inc(e, svc);
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
    if (r->dns_first_ms != INC_NONE && r->dns_all_ms == INC_NONE &&
        all_switched(e, svc, fr))
        set_time(&r->dns_all_ms, t, &changed);
    cond = restore_cond(e, svc, fr);
    if (r->restored_ms == INC_NONE && cond) {
        r->restored_ms = t;
        timer_set(e, (uint32_t)svc, t + e->topo->opt.stable_ms);
        changed = 1;
    } else if (r->restored_ms != INC_NONE && !cond) {
        r->restored_ms = INC_NONE;
        timer_del(e, (uint32_t)svc);
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
    struct inc_record *r = open_inc(e, svc);
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
            clear_good(e, svc);
            if (r->restored_ms != INC_NONE) {
                r->restored_ms = INC_NONE;
                timer_del(e, (uint32_t)svc);
                emit(e, INC_UPDATED, r);
            }
        }
    }
    if (!r) {
        reg = region_to_open(e, svc);
        if (reg < 0)
            return;
        if (open_incident(e, svc, (size_t)reg, t, 0) < 0) {
            e->err = -ENOMEM;
            return;
        }
    }
    incident_eval(e, svc, t);
}

static void close_incident(struct inc_engine *e, size_t svc, int64_t t)
{
    struct inc_record *r = open_inc(e, svc);

    r->closed_ms = t;
    e->svc[svc].open = -1;
    emit(e, INC_CLOSED, r);
    refresh(e, svc, t);
}

/* ---- events ----------------------------------------------------------- */

/* Agent @a was heard probing slot @s at @t (@gap since its previous
 * probe of the same target, -1 none): fresh again, and its staleness
 * moves to t + stale_intervals * interval. */
static void slot_heard(struct inc_engine *e, size_t a, size_t s,
                       int64_t gap, int64_t t)
{
    struct agent_slot *as = AS(e, a, s);
    int64_t iv = INC_NONE;
    uint32_t id = stale_id(e, a, s);

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
            timer_set(e, id, as->stale_at);
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
        const struct ix_ent *en = ix_find(&e->answers, ev->answers[i]);

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
    struct agent_slot *as = AS(e, a, w);
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
    r = open_inc(e, svc);
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
    const struct agent_slot *w = AS(e, a, e->svc[svc].base + s->n_regions);
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
        slot_heard(e, a, base, gap, ev->t_ms);
        watch_set(e, a, svc, ev);
        return;
    }
    slot_heard(e, a, base + 1, gap, ev->t_ms);
    as = AS(e, a, base + 1);
    good = (uint8_t)global_good(e, a, svc, ev);
    if (as->good == good)
        return;
    contrib(e, a, base + 1, -1);
    as->good = good;
    contrib(e, a, base + 1, 1);
    refresh(e, svc, ev->t_ms);
}

static void on_probe(struct inc_engine *e, size_t a,
                     const struct ix_ent *en, const struct inc_event *ev)
{
    struct agent_target *at = AT(e, a, (size_t)en->id);
    int64_t gap = at->last_probe != INC_NONE ? ev->t_ms - at->last_probe
                                             : -1;

    at->last_probe = ev->t_ms;
    if (ev->ok)
        at->ffs = INC_NONE;
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
    struct agent_target *at = AT(e, a, (size_t)en->id);
    int old = at->state;
    int nw = ev->healthy == 1 ? 1 : ev->healthy == 0 ? 0 : -1;

    if (old == nw)
        return;
    at->state = nw;
    for (int32_t k = en->first; k >= 0; k = e->refs[k].next) {
        const struct ref *r = &e->refs[k];
        struct agent_slot *as;

        if (r->kind != REF_REGION)
            continue;
        as = AS(e, a, (size_t)r->slot);
        contrib(e, a, (size_t)r->slot, -1);
        as->known -= old != -1;
        as->unh -= old == 0;
        as->known += nw != -1;
        as->unh += nw == 0;
        as->part = 1;
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
        if (!ev->metric || strcmp(ev->metric, rg->lag_metric) != 0)
            continue;
        rt->lag_have = 1;
        rt->lag_v = ev->value;
        inc = open_inc(e, (size_t)r->svc);
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
        if (!open_inc(e, i) &&
            open_incident(e, i, from >= 0 ? (size_t)from
                                          : serving_region(e, i),
                          ev->t_ms, 1) < 0) {
            e->err = -ENOMEM;
            return;
        }
        r = open_inc(e, i);
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
    const struct ix_ent *en = ix_find(&e->gnames, ev->dns_name);

    for (int32_t k = en ? en->first : -1; k >= 0; k = e->refs[k].next)
        watch_set(e, a, (size_t)e->refs[k].svc, ev);
    en = ix_find(&e->targets, ev->target);
    for (int32_t k = en ? en->first : -1; k >= 0; k = e->refs[k].next)
        if (e->refs[k].kind == REF_GLOBAL)
            watch_set(e, a, (size_t)e->refs[k].svc, ev);
}

/* Timer @id fires at @due. */
static void timer_fire(struct inc_engine *e, uint32_t id, int64_t due)
{
    size_t n_svc = e->topo->n_services, a, s;
    struct agent_slot *as;
    struct inc_record *r;

    if (id < n_svc) {
        r = open_inc(e, id);
        if (r && r->restored_ms != INC_NONE &&
            r->restored_ms + e->topo->opt.stable_ms == due)
            close_incident(e, id, due);
        return;
    }
    a = (id - n_svc) / e->n_slots;
    s = (id - n_svc) % e->n_slots;
    as = AS(e, a, s);
    if (!as->part || as->stale || as->stale_at == INC_NONE)
        return;
    if (as->stale_at > due) {
        timer_set(e, id, as->stale_at);
        return;
    }
    contrib(e, a, s, -1);
    as->stale = 1;
    contrib(e, a, s, 1);
    refresh(e, (size_t)e->slot_svc[s], due);
}

/* Fires every timer due at or before @upto, in (due, id) order. */
static void fire_until(struct inc_engine *e, int64_t upto)
{
    while (e->n_heap > 0 && e->due[e->heap[0]] <= upto) {
        uint32_t id = e->heap[0];
        int64_t due = e->due[id];

        timer_del(e, id);
        timer_fire(e, id, due);
    }
}

/* ---- public ----------------------------------------------------------- */

struct inc_engine *inc_engine_new(const struct topology *topo,
                                  inc_sink_fn sink, void *ctx)
{
    struct inc_engine *e = calloc(1, sizeof(*e));
    size_t n_svc = topo->n_services;

    if (!e)
        return NULL;
    e->topo = topo;
    e->sink = sink;
    e->ctx = ctx;
    e->horizon = INC_NONE;
    if (build_index(e) < 0)
        goto err;
    /* Close timers exist before any agent does. */
    e->heap = malloc((n_svc + 1) * sizeof(*e->heap));
    e->pos = malloc((n_svc + 1) * sizeof(*e->pos));
    e->due = malloc((n_svc + 1) * sizeof(*e->due));
    if (!e->heap || !e->pos || !e->due)
        goto err;
    for (size_t i = 0; i < n_svc; i++)
        e->pos[i] = -1;
    return e;
err:
    inc_engine_free(e);
    return NULL;
}

void inc_engine_free(struct inc_engine *e)
{
    if (!e)
        return;
    free(e->targets.t);
    free(e->answers.t);
    free(e->gnames.t);
    free(e->refs);
    free(e->order);
    free(e->slot_svc);
    free(e->slot_kind);
    free(e->rt);
    for (size_t i = 0; e->svc && i < e->topo->n_services; i++)
        free(e->svc[i].inc);
    free(e->svc);
    free(e->agent_id);
    free(e->agent_ix);
    free(e->at);
    free(e->as);
    free(e->heap);
    free(e->pos);
    free(e->due);
    free(e);
}

/* A copy of @n bytes of @p into *@out (NULL stays NULL); -1 no memory. */
static int dup_into(void *out, const void *p, size_t n)
{
    void *q = NULL;

    if (p) {
        q = malloc(n ? n : 1);
        if (!q)
            return -1;
        memcpy(q, p, n);
    }
    memcpy(out, &q, sizeof(q));
    return 0;
}

struct inc_engine *inc_engine_clone(const struct inc_engine *e)
{
    struct inc_engine *c = calloc(1, sizeof(*c));
    size_t n_svc = e->topo->n_services;
    size_t ids = n_svc + e->cap_agents * e->n_slots + 1;
    size_t refs = e->n_refs + 1;
    int bad = 0;

    if (!c)
        return NULL;
    *c = *e;
    c->targets.t = c->answers.t = c->gnames.t = NULL;
    c->refs = NULL;
    c->order = NULL;
    c->slot_svc = NULL;
    c->slot_kind = NULL;
    c->rt = NULL;
    c->svc = NULL;
    c->agent_id = NULL;
    c->agent_ix = NULL;
    c->at = NULL;
    c->as = NULL;
    c->heap = NULL;
    c->pos = NULL;
    c->due = NULL;
    bad |= dup_into(&c->targets.t, e->targets.t,
                    e->targets.cap * sizeof(struct ix_ent));
    bad |= dup_into(&c->answers.t, e->answers.t,
                    e->answers.cap * sizeof(struct ix_ent));
    bad |= dup_into(&c->gnames.t, e->gnames.t,
                    e->gnames.cap * sizeof(struct ix_ent));
    bad |= dup_into(&c->refs, e->refs, refs * sizeof(*e->refs));
    bad |= dup_into(&c->order, e->order, (n_svc + 1) * sizeof(*e->order));
    bad |= dup_into(&c->slot_svc, e->slot_svc,
                    (e->n_slots + 1) * sizeof(*e->slot_svc));
    bad |= dup_into(&c->slot_kind, e->slot_kind, e->n_slots + 1);
    bad |= dup_into(&c->rt, e->rt, (e->n_slots + 1) * sizeof(*e->rt));
    bad |= dup_into(&c->svc, e->svc, (n_svc + 1) * sizeof(*e->svc));
    for (size_t i = 0; !bad && i < n_svc; i++) {
        c->svc[i].inc = NULL;
        bad |= dup_into(&c->svc[i].inc, e->svc[i].inc,
                        e->svc[i].cap_inc * sizeof(struct inc_record));
    }
    if (bad)
        goto err;
    bad |= dup_into(&c->agent_id, e->agent_id,
                    e->cap_agents * sizeof(*e->agent_id));
    bad |= dup_into(&c->agent_ix, e->agent_ix,
                    e->agent_ix_cap * sizeof(*e->agent_ix));
    bad |= dup_into(&c->at, e->at,
                    (e->cap_agents * e->targets.n + 1) * sizeof(*e->at));
    bad |= dup_into(&c->as, e->as,
                    (e->cap_agents * e->n_slots + 1) * sizeof(*e->as));
    bad |= dup_into(&c->heap, e->heap, ids * sizeof(*e->heap));
    bad |= dup_into(&c->pos, e->pos, ids * sizeof(*e->pos));
    bad |= dup_into(&c->due, e->due, ids * sizeof(*e->due));
    if (bad)
        goto err;
    return c;
err:
    inc_engine_free(c);
    return NULL;
}

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

int inc_engine_feed(struct inc_engine *e, const struct inc_event *ev)
{
    const struct ix_ent *en = NULL;
    size_t a = 0;
    int need_agent;

    if (!ev || ev->t_ms == INC_NONE || !key_after_last(e, ev))
        return -EINVAL;
    if (e->err)
        return e->err;
    if (ev->kind == INC_EV_PROBE || ev->kind == INC_EV_STATE ||
        ev->kind == INC_EV_METRIC)
        en = ix_find(&e->targets, ev->target);
    need_agent = en != NULL && ev->kind != INC_EV_METRIC;
    if (ev->kind == INC_EV_DNS)
        need_agent = ev->has_answers &&
                     (ix_find(&e->gnames, ev->dns_name) ||
                      ix_find(&e->targets, ev->target));
    /* Allocate before anything changes: -ENOMEM leaves the engine as
     * it was. */
    if (need_agent && agent_get(e, ev->agent_id, &a) < 0)
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
    fire_until(e, now_ms);
    /* Events at now_ms itself may still come: they sort after the
     * timers just fired, as they would have in one feed. */
    e->horizon = now_ms;
    e->have_last = 1;
    e->last_t = now_ms;
    e->last_agent = INT64_MIN;
    e->last_seq = 0;
}

int64_t inc_engine_horizon(const struct inc_engine *e)
{
    return e->horizon;
}

void inc_engine_each(const struct inc_engine *e,
                     void (*fn)(void *ctx, const struct inc_record *r),
                     void *ctx)
{
    for (size_t k = 0; k < e->topo->n_services; k++) {
        const struct svc_rt *sr = &e->svc[e->order[k]];

        for (size_t i = 0; i < sr->n_inc; i++)
            fn(ctx, &sr->inc[i]);
    }
}

static size_t svc_index(const struct inc_engine *e,
                        const struct topo_service *svc)
{
    return (size_t)(svc - e->topo->services);
}

size_t inc_engine_service_state(const struct inc_engine *e,
                                const struct topo_service *svc,
                                void (*fn)(void *ctx,
                                           const struct inc_region_state *),
                                void *ctx,
                                const struct inc_record **open)
{
    size_t i = svc_index(e, svc);
    const struct slot_rt *rt = &e->rt[e->svc[i].base];

    for (size_t r = 0; fn && r < svc->n_regions; r++) {
        struct inc_region_state st = {
            .region = &svc->regions[r], .health = rt[r].health,
            .agents = (size_t)rt[r].agents, .unhealthy = (size_t)rt[r].unh,
            .stale = (size_t)rt[r].stale, .serving = (size_t)rt[r].serving,
            .since_ms = rt[r].since,
        };

        fn(ctx, &st);
    }
    if (open)
        *open = open_inc(e, i);
    return (size_t)rt[svc->n_regions].serving;
}

void inc_engine_stale_agents(const struct inc_engine *e,
                             const struct topo_service *svc,
                             void (*fn)(void *ctx, int64_t agent_id,
                                        int64_t last_ms),
                             void *ctx)
{
    size_t base = e->svc[svc_index(e, svc)].base;

    for (size_t a = 0; a < e->n_agents; a++) {
        int64_t last = INC_NONE;
        int stale = 0;

        for (size_t s = base; s < base + svc->n_regions + 2; s++) {
            const struct agent_slot *as = AS(e, a, s);

            stale |= as->part && as->stale;
            if (as->last_probe != INC_NONE && as->last_probe > last)
                last = as->last_probe;
        }
        if (stale)
            fn(ctx, e->agent_id[a], last);
    }
}

void inc_durations(const struct inc_record *r, struct inc_durations *out)
{
    int64_t ff = r->first_failure_ms;

    out->time_to_detect = ff != INC_NONE && r->detected_ms != INC_NONE ?
                          r->detected_ms - ff : INC_NONE;
    out->time_to_failover = r->detected_ms != INC_NONE &&
                            r->dns_all_ms != INC_NONE ?
                            r->dns_all_ms - r->detected_ms : INC_NONE;
    out->rto = ff != INC_NONE && r->restored_ms != INC_NONE ?
               r->restored_ms - ff : INC_NONE;
    out->outage = r->service->pattern == TOPO_SHARDED ? out->rto : INC_NONE;
}
