/* incident_priv.h -- what the files of the incident engine share:
 * incident_index.c (the name index built from the topology, per-agent
 * storage, the timer heap, new/free/clone), incident.c (the derived
 * state, the rules, feeding) and incident_query.c (the queries). Not
 * for anything outside them. See docs/design.md, "Incidents". */
#ifndef SEXTANT_INCIDENT_PRIV_H
#define SEXTANT_INCIDENT_PRIV_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "incident.h"

/* Test hook (0 in production, only tests set it): while above 0, each
 * incident open fails as when a step runs out of its reserved room, and
 * counts it down, so that a test can drive a driver through
 * -ENOTRECOVERABLE. Any thread may set it. */
extern atomic_int inc_test_fail_opens;
int inc_test_open_fails(void);     /* 1: fail this open (counted down) */

/* An agent's probe interval is clamped into this range: a burst of
 * results in one millisecond must not make it stale at once, and a
 * wild gap must not keep it fresh for days. */
#define INC_MIN_INTERVAL_MS 100
#define INC_MAX_INTERVAL_MS (24LL * 3600 * 1000)
#define INC_GAPS 3              /* interval = smallest of the last gaps */
#define INC_MAX_REGIONS 64      /* answer sets are bit masks of regions */
/* Times beyond this are refused: a timer (time + a few days at most)
 * can then never overflow. */
#define INC_MAX_T (INT64_C(1) << 62)
/* Free incident slots each service has when a step starts: a step opens
 * one incident per service (two with a close and a reopen at the same
 * due time), and allocating before the step is what lets -ENOMEM leave
 * the engine unchanged. */
#define INC_ROOM 2
/* An agent all of whose slots have been stale (or silent, without an
 * interval) this long is forgotten and its rows reused: a restarted agent
 * comes back as a new store id (a new spool epoch), so without this the
 * per-agent state grows with every restart (review B3). An hour is far
 * beyond any gap the quorum waits for (3 intervals); an agent back after
 * it starts with unknown target states, as a new one would. */
#define INC_FORGET_MS (3600LL * 1000)
/* agent_id of a forgotten row, free for the next new agent. */
#define INC_AGENT_FREE INT64_MIN

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
    int64_t last_ok;            /* its last ok probe (first_failure) */
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
    int64_t good_since;         /* global: when good last became 1 */
};

struct svc_rt {
    size_t base;                /* first slot */
    struct inc_record *inc;     /* every incident, in opened order */
    size_t n_inc, cap_inc;
    int open;                   /* index in inc, -1 none */
    /* The last closed incident's region, its close, and where it sent
     * traffic (-1 none): a region still down since before that close
     * opens nothing new, and with no answers mapping anywhere the
     * promoted region is the one serving (review A2). */
    int closed_region;
    int64_t closed_ms;
    int promoted;
};

/* inc_engine_clone (incident_index.c) copies every field by name: a new
 * field goes there too. */
struct inc_engine {
    const struct topology *topo;
    inc_sink_fn sink;
    void *ctx;
    int err;                    /* sticky -ENOTRECOVERABLE: memory ran
                                 * out in the middle of a step */
    int64_t keep_closed;        /* <0: keep closed incidents forever;
                                 * else drop those closed longer ago */
    int need_room;              /* a service has fewer than
                                 * INC_ROOM free incident slots */

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
    size_t n_agents, cap_agents;   /* rows, forgotten ones included */
    size_t n_free;                  /* forgotten rows */
    struct agent_target *at;    /* n_agents x targets.n */
    struct agent_slot *as;      /* n_agents x n_slots */

    /* timers: id < n_services: the close of that service; else the
     * staleness of (agent, slot) id - n_services. */
    uint32_t *heap;
    size_t n_heap;
    int32_t *pos;               /* per id: index in heap, -1 */
    int64_t *due;               /* per id */
    /* services whose agents went stale at the due time being fired:
     * refreshed once all of that time's timers have run, so the order of
     * simultaneous timers cannot matter */
    uint8_t *dirty;
    size_t *dirty_list;
    size_t n_dirty;

    int have_last;
    int64_t last_t, last_agent;
    uint64_t last_seq;
    int64_t horizon;
};

/* ---- incident_index.c ---- */

/* The names of @x equal to @s (folded as the index is), NULL none. */
const struct ix_ent *inc_ix_find(const struct ix *x, const char *s);
/* @a and @b equal over @n bytes, case-insensitively when @fold. */
int inc_name_eq(const char *a, const char *b, size_t n, int fold);
/* The dense index of store agent @id, added if new: 0, -ENOMEM (then
 * nothing the engine derives has changed). */
int inc_agent_get(struct inc_engine *e, int64_t id, size_t *out);
/* Gives service @svc INC_ROOM free incident slots: 0, -ENOMEM (nothing
 * changed). */
int inc_room(struct inc_engine *e, size_t svc);
/* Forgets agent @a: its rows are reset and free for reuse, its timers
 * deleted. The caller has taken its part out of the counts. Never
 * allocates. */
void inc_agent_forget(struct inc_engine *e, size_t a);
/* Schedules (or moves) timer @id at @due; never allocates (the heap has
 * room for every id). */
void inc_timer_set(struct inc_engine *e, uint32_t id, int64_t due);
void inc_timer_del(struct inc_engine *e, uint32_t id);

/* The open incident of service @svc, NULL none. */
static inline struct inc_record *inc_open(const struct inc_engine *e,
                                          size_t svc)
{
    const struct svc_rt *sr = &e->svc[svc];

    return sr->open >= 0 ? &sr->inc[sr->open] : NULL;
}

static inline struct agent_target *inc_at(const struct inc_engine *e,
                                          size_t a, size_t tid)
{
    return &e->at[a * e->targets.n + tid];
}

static inline struct agent_slot *inc_as(const struct inc_engine *e,
                                        size_t a, size_t s)
{
    return &e->as[a * e->n_slots + s];
}

/* Timer ids: the close of service i is i; the staleness of (agent a,
 * slot s) follows them. */
static inline uint32_t inc_stale_id(const struct inc_engine *e, size_t a,
                                    size_t s)
{
    return (uint32_t)(e->topo->n_services + a * e->n_slots + s);
}

#endif
