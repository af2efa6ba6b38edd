/* incident.h -- the incident engine: a pure function of the stored
 * events. It knows the topology (topology.h) and is fed events in one
 * total order (corrected time, then agent id, then seq); from them it
 * derives, per service, region health by quorum of non-stale agents,
 * where the global name sends traffic, and incidents with their times.
 * No I/O, no clock, no database: the store's driver (store_incident.c)
 * reads events and writes what comes out, live after each group commit
 * and from scratch for `sextant-collector incidents rebuild`. Fed the
 * same events in the same order, it gives the same incidents, whatever
 * the batches they came in: that is what makes a rebuild equal to the
 * live result.
 *
 * Time: every time here is on the corrected clock (agent time plus the
 * agent's clock offset as recorded at ingest, see store.h). Timers
 * (staleness, an incident's close after its stable time) fire at the
 * exact time they are due, computed from events, never from when the
 * engine happens to be called. */
#ifndef SEXTANT_INCIDENT_H
#define SEXTANT_INCIDENT_H

#include <stddef.h>
#include <stdint.h>

#include "topology.h"

/* "Not (yet)" for a time in struct inc_record. */
#define INC_NONE INT64_MIN

enum inc_ev_kind {
    INC_EV_PROBE,       /* a probe result of a target */
    INC_EV_STATE,       /* a target's health changed in an agent */
    INC_EV_DNS,         /* a DNS answer change (DnsChange) */
    INC_EV_FAILOVER,    /* an operator's failover or manual event */
    INC_EV_METRIC,      /* a metric sample (replication lag) */
};

/* One event as the engine sees it; every pointer borrowed for the call. */
struct inc_event {
    int64_t t_ms;               /* corrected time */
    int64_t agent_id;           /* the store's agent id */
    uint64_t seq;               /* the agent's seq: ties in the order */
    enum inc_ev_kind kind;
    const char *target;         /* probe, state, dns, metric; "" none */
    /* INC_EV_PROBE */
    int ok;
    const char *served_by;      /* "" when the response named none */
    /* INC_EV_PROBE of a DNS target (the answers of that run) and
     * INC_EV_DNS (the new answers): values only (addresses, CNAME
     * targets). has_answers 0: the event carries no answer set (an
     * INC_EV_DNS without one is ignored: set it, even for an empty set). */
    int has_answers;
    const char *const *answers;
    size_t n_answers;
    const char *dns_name;       /* INC_EV_DNS: the name resolved */
    /* INC_EV_STATE: 1 healthy, 0 unhealthy, -1 unknown, INC_HANDED_OFF
     * unknown because the agent handed the target to other probers
     * (sextant.proto StateChange.reason "handoff:") */
    int healthy;
    /* INC_EV_FAILOVER: "failover" or "manual" (other kinds of operator
     * event are markers and never fed), and the regions it names ("" if
     * none) */
    const char *fo_kind;
    const char *from_region;
    const char *to_region;
    const char *fo_service;     /* the service it names (sextant.proto
                                 * Failover.service); "": every service
                                 * with a region it names */
    /* INC_EV_METRIC */
    const char *metric;
    double value;
};

#define INC_HANDED_OFF (-2)

/* One incident. service and region point into the topology; to_region
 * too (or NULL). Times are INC_NONE until they happen. */
struct inc_record {
    const struct topo_service *service;
    const struct topo_region *region;   /* the region that failed (or
                                         * was named by a manual event) */
    const struct topo_region *to_region;    /* where traffic went (active-
                                             * passive: the promoted
                                             * region); NULL if none */
    int manual;                 /* opened by a manual failover event */
    int64_t opened_ms;          /* detection, or the manual event: the
                                 * incident's key with its service */
    int64_t first_failure_ms;
    int64_t detected_ms;
    int64_t failover_start_ms;  /* active-active: the drain's start */
    int64_t dns_first_ms;       /* DNS switched (or drained), first agent */
    int64_t dns_all_ms;         /* ... and the last */
    int64_t restored_ms;        /* healthy through the global name again
                                 * (sharded: the region healthy again) */
    int64_t closed_ms;          /* INC_NONE while open */
    int has_rpo;
    double rpo_ms;              /* last replication lag of the promoted
                                 * region before failover start */
};

/* Durations in ms, INC_NONE when an end is missing. */
struct inc_durations {
    int64_t time_to_detect;     /* detected - first failure */
    int64_t time_to_failover;   /* DNS switched (all) - detected */
    int64_t rto;                /* restored - first failure */
    int64_t outage;             /* sharded: restored - first failure */
};
void inc_durations(const struct inc_record *r, struct inc_durations *out);

enum inc_change { INC_OPENED, INC_UPDATED, INC_CLOSED };

/* Called when an incident opens, when one of its times is set or
 * changes, and when it closes; @r is valid for the call only. */
typedef void (*inc_sink_fn)(void *ctx, enum inc_change what,
                            const struct inc_record *r);

struct inc_engine;

/* A new engine over @topo (borrowed; outlives the engine). NULL: out of
 * memory, or a service with more than 64 regions. */
struct inc_engine *inc_engine_new(const struct topology *topo,
                                  inc_sink_fn sink, void *ctx);
void inc_engine_free(struct inc_engine *e);
/* A deep copy whose later feeding is independent of @e (a snapshot the
 * driver restores when an event arrives late), with the same sink. NULL:
 * out of memory. */
struct inc_engine *inc_engine_clone(const struct inc_engine *e);

/* Feeds one event; events must come in ascending (t_ms, agent_id, seq),
 * and timers due at or before ev->t_ms fire first (a timer at X sorts
 * before every event at X, also across inc_engine_advance). Events of
 * targets and names the topology does not know are ignored. Returns:
 * 0; -EINVAL out of order or t_ms beyond +-2^62 ms (the engine is
 * unchanged); -ENOMEM: memory ran out before anything changed (the
 * engine is unchanged and consistent, no timer fired, the sink was not
 * called): feed the same event again later, every later call retries the
 * allocation; -ENOTRECOVERABLE: memory ran out in the middle of a step
 * (more incident opens in one step than were reserved; not seen in
 * practice): the engine may have lost an incident and returns it for
 * every later feed: free it and rebuild (restore a snapshot, replay). */
int inc_engine_feed(struct inc_engine *e, const struct inc_event *ev);
/* Fires the timers due up to @now_ms (staleness, closes); afterwards
 * events before @now_ms are refused, events at it are still taken. Out
 * of memory (or after -ENOTRECOVERABLE) it does nothing and the horizon
 * stays: the next feed reports it. */
void inc_engine_advance(struct inc_engine *e, int64_t now_ms);
/* The time of the last event fed or advanced to (INC_NONE: none). */
int64_t inc_engine_horizon(const struct inc_engine *e);
/* 0, or -ENOTRECOVERABLE once a step ran out of memory halfway (see
 * inc_engine_feed; inc_engine_advance reports it only here): the engine
 * must then be replaced, and what it holds is not to be written. */
int inc_engine_error(const struct inc_engine *e);

/* Calls @fn for every incident the engine holds, ordered by (service,
 * opened_ms): the open ones and the closed ones kept (see
 * inc_engine_keep_closed; by default every one since it started). */
/* Bounds the closed incidents the engine keeps (review B4): from now on,
 * when an incident of a service closes at X, that service's incidents
 * closed before X - @keep_ms are dropped (so each service holds its open
 * incident, the ones closed within @keep_ms of its last close, and that
 * one). For a driver that writes each incident when the sink hands out
 * INC_CLOSED (once per incident), and whose replays restore a clone
 * older than any incident it rewrites: keep_ms beyond the oldest
 * snapshot's age. @keep_ms < 0: keep every one (the default; the driver
 * that rewrites every row from inc_engine_each needs it). Clones copy
 * the setting. */
void inc_engine_keep_closed(struct inc_engine *e, int64_t keep_ms);
void inc_engine_each(const struct inc_engine *e,
                     void (*fn)(void *ctx, const struct inc_record *r),
                     void *ctx);

/* The derived state of one region of a service, now (at the horizon). */
struct inc_region_state {
    const struct topo_region *region;
    int health;                 /* 1 healthy, 0 unhealthy, -1 unknown */
    size_t agents;              /* agents probing it, not stale */
    size_t unhealthy;           /* of those, seeing it unhealthy */
    size_t stale;               /* agents probing it that are stale */
    size_t serving;             /* agents whose latest answers for the
                                 * global name map to this region */
    int64_t since_ms;           /* health unchanged since */
};
/* Calls @fn for every region of @svc; @open the service's open incident
 * (NULL: none). Returns the agents whose answers map to no region. */
size_t inc_engine_service_state(const struct inc_engine *e,
                                const struct topo_service *svc,
                                void (*fn)(void *ctx,
                                           const struct inc_region_state *),
                                void *ctx,
                                const struct inc_record **open);
/* Calls @fn for each stale agent of @svc (its store agent id, and the
 * last time it was heard probing the service). */
void inc_engine_stale_agents(const struct inc_engine *e,
                             const struct topo_service *svc,
                             void (*fn)(void *ctx, int64_t agent_id,
                                        int64_t last_ms),
                             void *ctx);

#endif
