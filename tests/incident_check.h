/* incident_check.h -- what the incident engine's test programs share
 * (test_incident.c, test_incident_fixes.c): the sink that counts what the
 * engine hands out, feeding helpers, the expected incident of a scenario
 * and its assertions to the millisecond, and the worked example of
 * docs/design.md. Over incident_world.h's model of the agents. */
#ifndef SEXTANT_INCIDENT_CHECK_H
#define SEXTANT_INCIDENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "incident_world.h"

struct rec {
    struct inc_record all[16];
    size_t n;
    size_t opened, updated, closed;
};

struct region_states {
    struct inc_region_state st[WORLD_REGIONS];
};

/* An incident as a scenario expects it: times in ms after WORLD_T, NEVER for
 * "not (yet)"; regions by index, to -1 for none; rpo_ms < 0 for none. */
#define NEVER INT64_MIN

struct want {
    size_t svc;
    int region, to, manual;
    int64_t opened, first_failure, detected, failover_start, dns_first,
            dns_all, restored, closed;
    double rpo_ms;
    /* inc_durations: time to detect, to fail over, RTO, outage (ms) */
    int64_t ttd, ttf, rto, outage;
};

struct stale_seen {
    size_t n;
    int64_t id, last;
};

/* The engine's sink: counts opened/updated/closed into the struct rec
 * @ctx. */
void sink(void *ctx, enum inc_change what, const struct inc_record *r);
/* inc_engine_each's callback: copies each incident into @ctx's all[]. */
void collect(void *ctx, const struct inc_record *r);
void incidents(const struct inc_engine *e, struct rec *out);
/* Feeds world_fed[from..) (events with t < @until only when until is not
 * INC_NONE) and returns the index reached. */
size_t feed_until(struct inc_engine *e, size_t from, int64_t until);
void region_cb(void *ctx, const struct inc_region_state *st);
/* Service 0's region states, unmapped watchers and open incident. */
void states(const struct inc_engine *e, struct region_states *rs,
            size_t *unmapped, const struct inc_record **open);
void assert_time(int64_t got, int64_t want);
void assert_same_record(const struct inc_record *a,
                        const struct inc_record *b);
int64_t after_t0(int64_t rel);
void assert_incident(const struct inc_record *r, const struct want *w);
/* Runs the world @w over a fresh engine and returns its incidents (and
 * the engine, to look at its state; caller frees). */
struct inc_engine *run_world(const struct world *w, struct rec *rc);
/* Runs @w and asserts it gives exactly the incident @want, opened and
 * (if it closes) closed once. */
void expect_one(const struct world *w, const struct want *want);
/* inc_engine_stale_agents' callback into a struct stale_seen. */
void stale_cb(void *ctx, int64_t agent_id, int64_t last_ms);
/* Feeds @ev with the next seq; asserts it is taken. */
void feed_one(struct inc_engine *e, struct inc_event *ev);
/* The worked example (docs/design.md): eu-west-1 dead from T, answers
 * moving to us-east-1 at T+3.12/3.35/3.65; with @junk, events the
 * topology does not know too (gen_junk). */
int ap_ok(int a, size_t r, int64_t t);
uint64_t ap_view(int a, int64_t t);
void gen_worked_example(int junk);
void assert_worked_example(const struct inc_record *r);
void gen_junk(void);

#endif
