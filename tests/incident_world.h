/* incident_world.h -- a small model of agents watching a service, for the
 * incident engine's tests (tests/test_incident.c): a topology of one or
 * two services of three regions, and the events three agents send while
 * probing them once a second — their state machines, DNS views and probes
 * through the global name — with explicit times, sorted into the order
 * the engine is fed. Everything is static storage, reset by each
 * scenario; nothing here asserts. */
#ifndef SEXTANT_INCIDENT_WORLD_H
#define SEXTANT_INCIDENT_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "incident.h"

#define WORLD_T 1000000         /* "T": the moment something breaks */
#define WORLD_REGIONS 3
#define WORLD_AGENTS 3
#define WORLD_MAX_EVENTS 65536

/* eu-west-1, us-east-1, ap-southeast-1 */
extern const char *const WORLD_REGION[WORLD_REGIONS];
extern const char *const WORLD_LAG_METRIC;

/* One service's strings and arrays; the topology borrows them. Targets
 * are NAME-r, answers 127.0.(r+1).1 (.11 for the second service), global
 * targets NAME-global (HTTP) and NAME-dns (DNS), lag targets NAME-db-r. */
struct world_service {
    char name[32], global[64];
    char target[WORLD_REGIONS][48], answer[WORLD_REGIONS][16];
    char region[WORLD_REGIONS][32], lag_target[WORLD_REGIONS][48];
    char gl_http[48], gl_dns[48];
    char *targets[WORLD_REGIONS][1], *answers[WORLD_REGIONS][1];
    char *globals[2];
    struct topo_region regions[WORLD_REGIONS];
};

extern struct world_service world_stores[2];
extern struct topo_service world_services[2];
extern struct topology world_topo;

/* The events made so far and, after world_sort, in feeding order. */
extern size_t world_n_evs;
extern struct inc_event *world_fed[WORLD_MAX_EVENTS];

/* world_topo with @n services: "app" with @pattern, then "other"
 * (active-passive, regions "o-eu-west-1"...); default options. */
const struct topology *world_topo_make(enum topo_pattern pattern, size_t n);

/* A new event of agent index @agent (store id 10 * (agent + 1)) with
 * every string "" and healthy -1; aborts past WORLD_MAX_EVENTS. */
struct inc_event *world_ev(int64_t t, int agent, enum inc_ev_kind k,
                           const char *target);
/* Gives @ev the answers of service @svc's regions in @mask. */
void world_answers(struct inc_event *ev, size_t svc, uint64_t mask);
/* Sorts the events into the engine's order (time, agent, then the order
 * they were made) into world_fed and numbers each agent's seq. */
void world_sort(void);

struct world {
    int64_t start, end;
    size_t svc;                 /* which service the agents probe */
    int fall, rise;
    /* per agent: the millisecond in each second it probes the regions,
     * resolves the global name, and probes through it */
    int64_t reg_phase[WORLD_AGENTS], dns_phase[WORLD_AGENTS];
    int64_t gl_phase[WORLD_AGENTS];
    /* does agent @a's probe of region @r succeed at @t */
    int (*ok)(int a, size_t r, int64_t t);
    /* the regions agent @a's answers for the global name map to */
    uint64_t (*view)(int a, int64_t t);
    /* does agent @a send anything at @t */
    int (*alive)(int a, int64_t t);
};

/* A one-service topology of @pattern and a world over it: three agents
 * from T-10 s to T+90 s probing at .460/.630/.970 (regions), .120/.350/
 * .650 (DNS) and .200/.400/.700 (through the global name), fall 3, rise
 * 2, probes succeeding as @ok says, answers as @view says (NULL: always
 * the primary), never silent. */
void world_init(struct world *w, enum topo_pattern pattern,
                int (*ok)(int a, size_t r, int64_t t),
                uint64_t (*view)(int a, int64_t t));
/* Appends the events of @w (call world_sort after adding any more). */
void world_gen(const struct world *w);

#endif
