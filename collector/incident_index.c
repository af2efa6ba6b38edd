/* incident_index.c -- the incident engine's storage (see incident_priv.h):
 * the hash indexes of the topology's names built once by inc_engine_new,
 * per-agent rows added when an agent first appears, the timer heap, and
 * the engine's life cycle (new, free, deep clone), and the test hook
 * that fails incident opens. The rules that use them are in incident.c. */
#include "incident_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int inc_name_eq(const char *a, const char *b, size_t n, int fold)
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
             inc_name_eq(x->t[i].key, s, n, x->fold)))
        i = (i + 1) & (x->cap - 1);
    return &x->t[i];
}

const struct ix_ent *inc_ix_find(const struct ix *x, const char *s)
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
        e->svc[i].closed_region = -1;
        e->svc[i].closed_ms = INC_NONE;
        e->svc[i].promoted = -1;
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
        size_t p;

        if (e->agent_id[a] == INC_AGENT_FREE)
            continue;
        p = agent_hash_pos(e, e->agent_id[a]);

        while (ix[p] >= 0)
            p = (p + 1) & (cap - 1);
        ix[p] = (int32_t)a;
    }
    return 0;
}

/* realloc that leaves @p as it was and sets *@bad on failure, so a run
 * of them needs one check. */
static void *resize(void *p, size_t elem, size_t n, int *bad)
{
    void *q;

    if (*bad)
        return p;
    q = realloc(p, elem * n);
    if (!q) {
        *bad = 1;
        return p;
    }
    return q;
}

/* Room for one more agent: every per-agent array grows together. */
static int agent_reserve(struct inc_engine *e)
{
    size_t cap = e->cap_agents ? 2 * e->cap_agents : 4;
    size_t ids = e->topo->n_services + cap * e->n_slots;
    int bad = 0;

    if (e->n_agents < e->cap_agents)
        return 0;
    e->agent_id = resize(e->agent_id, sizeof(*e->agent_id), cap, &bad);
    e->at = resize(e->at, sizeof(*e->at), cap * e->targets.n + 1, &bad);
    e->as = resize(e->as, sizeof(*e->as), cap * e->n_slots + 1, &bad);
    e->heap = resize(e->heap, sizeof(*e->heap), ids + 1, &bad);
    e->pos = resize(e->pos, sizeof(*e->pos), ids + 1, &bad);
    e->due = resize(e->due, sizeof(*e->due), ids + 1, &bad);
    if (bad)
        return -ENOMEM;
    for (size_t i = e->topo->n_services + e->cap_agents * e->n_slots;
         i < ids; i++)
        e->pos[i] = -1;
    e->cap_agents = cap;
    return 0;
}

static void agent_rows_init(struct inc_engine *e, size_t a)
{
    for (size_t t = 0; t < e->targets.n; t++)
        *inc_at(e, a, t) = (struct agent_target){
            .last_probe = INC_NONE, .last_ok = INC_NONE, .ffs = INC_NONE,
            .state = -1 };
    for (size_t s = 0; s < e->n_slots; s++)
        *inc_as(e, a, s) = (struct agent_slot){
            .last_probe = INC_NONE, .stale_at = INC_NONE,
            .mask_changed = INC_NONE, .good_since = INC_NONE };
}

int inc_agent_get(struct inc_engine *e, int64_t id, size_t *out)
{
    size_t p, a;

    if (e->agent_ix_cap) {
        for (p = agent_hash_pos(e, id); e->agent_ix[p] >= 0;
             p = (p + 1) & (e->agent_ix_cap - 1))
            if (e->agent_id[e->agent_ix[p]] == id) {
                *out = (size_t)e->agent_ix[p];
                return 0;
            }
    }
    if (e->n_free == 0 && agent_reserve(e) < 0)
        return -ENOMEM;
    if (2 * (e->n_agents + 1) > e->agent_ix_cap &&
        agent_rehash(e, e->agent_ix_cap ? 2 * e->agent_ix_cap : 16) < 0)
        return -ENOMEM;
    /* A forgotten row first: rows are few, new agents rare. */
    for (a = 0; e->n_free > 0 && e->agent_id[a] != INC_AGENT_FREE; a++)
        ;
    if (e->n_free > 0)
        e->n_free--;
    else
        a = e->n_agents++;
    e->agent_id[a] = id;
    agent_rows_init(e, a);
    for (p = agent_hash_pos(e, id); e->agent_ix[p] >= 0;
         p = (p + 1) & (e->agent_ix_cap - 1))
        ;
    e->agent_ix[p] = (int32_t)a;
    *out = a;
    return 0;
}

/* Takes row @a out of the open-addressing index: backward-shift
 * deletion, so that no tombstone is left and nothing allocates. */
static void agent_unindex(struct inc_engine *e, size_t a)
{
    size_t mask = e->agent_ix_cap - 1, i, j;

    for (i = agent_hash_pos(e, e->agent_id[a]);
         e->agent_ix[i] != (int32_t)a; i = (i + 1) & mask)
        ;
    for (j = i;;) {
        size_t k;

        j = (j + 1) & mask;
        if (e->agent_ix[j] < 0)
            break;
        k = agent_hash_pos(e, e->agent_id[e->agent_ix[j]]);
        /* Move j's entry into the hole at i unless its home k lies
         * cyclically in (i, j]. */
        if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
            e->agent_ix[i] = e->agent_ix[j];
            i = j;
        }
    }
    e->agent_ix[i] = -1;
}

void inc_agent_forget(struct inc_engine *e, size_t a)
{
    for (size_t s = 0; s < e->n_slots; s++)
        inc_timer_del(e, inc_stale_id(e, a, s));
    agent_unindex(e, a);
    e->agent_id[a] = INC_AGENT_FREE;
    agent_rows_init(e, a);
    e->n_free++;
}

/* ---- incidents ------------------------------------------------------- */

atomic_int inc_test_fail_opens;

int inc_test_open_fails(void)
{
    int n = atomic_load(&inc_test_fail_opens);

    while (n > 0 &&
           !atomic_compare_exchange_weak(&inc_test_fail_opens, &n, n - 1))
        ;
    return n > 0;
}

int inc_room(struct inc_engine *e, size_t svc)
{
    struct svc_rt *sr = &e->svc[svc];
    size_t cap = sr->cap_inc ? sr->cap_inc : 2;
    struct inc_record *v;

    if (sr->n_inc + INC_ROOM <= sr->cap_inc)
        return 0;
    while (cap < sr->n_inc + INC_ROOM)
        cap *= 2;
    v = realloc(sr->inc, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    sr->inc = v;
    sr->cap_inc = cap;
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

void inc_timer_set(struct inc_engine *e, uint32_t id, int64_t due)
{
    e->due[id] = due;
    if (e->pos[id] < 0) {
        e->pos[id] = (int32_t)e->n_heap;
        e->heap[e->n_heap++] = id;
    }
    heap_fix(e, (size_t)e->pos[id]);
}

void inc_timer_del(struct inc_engine *e, uint32_t id)
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
    e->keep_closed = -1;
    if (build_index(e) < 0)
        goto err;
    /* Close timers exist before any agent does. */
    e->heap = malloc((n_svc + 1) * sizeof(*e->heap));
    e->pos = malloc((n_svc + 1) * sizeof(*e->pos));
    e->due = malloc((n_svc + 1) * sizeof(*e->due));
    e->dirty = calloc(n_svc + 1, 1);
    e->dirty_list = calloc(n_svc + 1, sizeof(*e->dirty_list));
    if (!e->heap || !e->pos || !e->due || !e->dirty || !e->dirty_list)
        goto err;
    for (size_t i = 0; i < n_svc; i++) {
        e->pos[i] = -1;
        if (inc_room(e, i) < 0)
            goto err;
    }
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
    free(e->dirty);
    free(e->dirty_list);
    free(e);
}

/* A malloc'd copy of @n bytes of @p (NULL stays NULL); NULL and *@bad
 * set when out of memory. */
static void *dup_mem(const void *p, size_t n, int *bad)
{
    void *q;

    if (!p)
        return NULL;
    q = malloc(n ? n : 1);
    if (!q) {
        *bad = 1;
        return NULL;
    }
    memcpy(q, p, n);
    return q;
}

struct inc_engine *inc_engine_clone(const struct inc_engine *e)
{
    struct inc_engine *c = calloc(1, sizeof(*c));
    size_t n_svc = e->topo->n_services;
    size_t ids = n_svc + e->cap_agents * e->n_slots + 1;
    int bad = 0;

    if (!c)
        return NULL;
    c->topo = e->topo;          /* inc_engine_free needs it */
    c->svc = dup_mem(e->svc, (n_svc + 1) * sizeof(*e->svc), &bad);
    for (size_t i = 0; c->svc && i < n_svc; i++)
        c->svc[i].inc = NULL;   /* not e's: freed with c on failure */
    if (bad)
        goto err;
    for (size_t i = 0; i < n_svc; i++)
        c->svc[i].inc = dup_mem(e->svc[i].inc,
                                e->svc[i].cap_inc * sizeof(*e->svc[i].inc),
                                &bad);
    c->sink = e->sink;
    c->ctx = e->ctx;
    c->err = e->err;
    c->need_room = e->need_room;
    c->keep_closed = e->keep_closed;
    c->targets = e->targets;
    c->answers = e->answers;
    c->gnames = e->gnames;
    c->targets.t = dup_mem(e->targets.t,
                           e->targets.cap * sizeof(*e->targets.t), &bad);
    c->answers.t = dup_mem(e->answers.t,
                           e->answers.cap * sizeof(*e->answers.t), &bad);
    c->gnames.t = dup_mem(e->gnames.t, e->gnames.cap * sizeof(*e->gnames.t),
                          &bad);
    c->n_refs = e->n_refs;
    c->refs = dup_mem(e->refs, (e->n_refs + 1) * sizeof(*e->refs), &bad);
    c->order = dup_mem(e->order, (n_svc + 1) * sizeof(*e->order), &bad);
    c->n_slots = e->n_slots;
    c->slot_svc = dup_mem(e->slot_svc,
                          (e->n_slots + 1) * sizeof(*e->slot_svc), &bad);
    c->slot_kind = dup_mem(e->slot_kind, e->n_slots + 1, &bad);
    c->rt = dup_mem(e->rt, (e->n_slots + 1) * sizeof(*e->rt), &bad);
    c->agent_id = dup_mem(e->agent_id, e->cap_agents * sizeof(*e->agent_id),
                          &bad);
    c->agent_ix = dup_mem(e->agent_ix,
                          e->agent_ix_cap * sizeof(*e->agent_ix), &bad);
    c->agent_ix_cap = e->agent_ix_cap;
    c->n_agents = e->n_agents;
    c->n_free = e->n_free;
    c->cap_agents = e->cap_agents;
    c->at = dup_mem(e->at, (e->cap_agents * e->targets.n + 1) *
                           sizeof(*e->at), &bad);
    c->as = dup_mem(e->as, (e->cap_agents * e->n_slots + 1) *
                           sizeof(*e->as), &bad);
    c->heap = dup_mem(e->heap, ids * sizeof(*e->heap), &bad);
    c->n_heap = e->n_heap;
    c->pos = dup_mem(e->pos, ids * sizeof(*e->pos), &bad);
    c->due = dup_mem(e->due, ids * sizeof(*e->due), &bad);
    c->dirty = dup_mem(e->dirty, n_svc + 1, &bad);
    c->dirty_list = dup_mem(e->dirty_list,
                            (n_svc + 1) * sizeof(*e->dirty_list), &bad);
    c->have_last = e->have_last;
    c->last_t = e->last_t;
    c->last_agent = e->last_agent;
    c->last_seq = e->last_seq;
    c->horizon = e->horizon;
    if (bad)
        goto err;
    return c;
err:
    inc_engine_free(c);
    return NULL;
}
