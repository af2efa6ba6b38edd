/* bench_events.h -- the simulated agents and probe events of the
 * collector's benchmarks (ingest_load, raw_ceiling, query_fill). Each
 * agent's events follow from a seed alone, so every program makes the very
 * same events, and the JSON text the store keeps for each (see
 * store_event_fields in collector/store_fields.c). Knows nothing of HTTP,
 * protobuf or SQLite. Not part of the product. */
#ifndef SEXTANT_BENCH_EVENTS_H
#define SEXTANT_BENCH_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_CLUSTERS 3u
#define BENCH_TARGETS  20u
#define BENCH_ERRORS   6u       /* error texts of failed probes */
#define BENCH_TEXTS    (2u * BENCH_ERRORS + 1u)
#define BENCH_JSON_MAX 320u     /* an event's data JSON fits */
/* Every TLS probe's certificate expiry (2027-01-01), also as the decimal
 * text the store interns. */
#define BENCH_CERT_MS   1798761600000LL
#define BENCH_CERT_TEXT "1798761600000"

/* Cluster i is also region i; its agents send with token i. */
extern const char *const bench_clusters[BENCH_CLUSTERS];
extern const char *const bench_targets[BENCH_TARGETS];
/* Interned texts: BENCH_ERRORS error texts of failed probes, then the
 * reasons of state changes as the agent words them: "2 successes in a
 * row", then "3 failures in a row, last: " and each error text. */
extern const char *const bench_texts[BENCH_TEXTS];

enum bench_kind { BENCH_PROBE, BENCH_STATE };

/* What the agent records for a target: a probe result, or (after 3
 * failures in a row, or 2 successes after those) a health change. */
struct bench_event {
    uint64_t seq;
    int64_t unix_ms;            /* agent clock */
    enum bench_kind kind;
    unsigned target;            /* index into bench_targets */
    int text;                   /* index into bench_texts; -1: none */
    /* probe */
    int ok;
    int status;                 /* HTTP status; 0: none */
    uint64_t dns_us, connect_us, tls_us, first_byte_us, total_us;
    int64_t cert_not_after_ms;
    /* state: 1 healthy, 2 unhealthy (sextant.proto's Health) */
    int from, to;
};

/* One simulated agent: a node of one cluster, probing every target in
 * turn, one event per step_ms of its clock. Targets fail in outages (a
 * run of failures with one error text) and one target is flaky. */
struct bench_agent {
    unsigned index;
    unsigned cluster;           /* index into bench_clusters */
    char node[40];
    uint64_t epoch;
    uint64_t next_seq;          /* from 1 */
    int64_t next_ms;
    int64_t step_ms;
    uint64_t rng;
    unsigned next_target;
    int outage[BENCH_TARGETS];      /* text index of an outage, or -1 */
    unsigned fails[BENCH_TARGETS];  /* failures in a row */
    unsigned oks[BENCH_TARGETS];    /* successes in a row */
    int health[BENCH_TARGETS];      /* 0 unknown, 1 healthy, 2 unhealthy */
    struct bench_event pending;     /* a state change due after a probe */
    int has_pending;
};

/* Agent @index of @seed: cluster index % BENCH_CLUSTERS, its first event
 * at @t0_ms plus a phase within @step_ms (agents do not probe in step). */
void bench_agent_init(struct bench_agent *a, unsigned index, uint64_t seed,
                      int64_t t0_ms, int64_t step_ms);
/* The agent's next event (seq next_seq). */
void bench_agent_next(struct bench_agent *a, struct bench_event *ev);

/* The event's "data" column as collector/store_fields.c writes it (the text,
 * when there is one, is interned apart and left out). Returns its length;
 * @buf holds at least BENCH_JSON_MAX bytes. */
size_t bench_event_json(const struct bench_event *ev, char *buf);
/* "probe" or "state", as the store's kinds table names them. */
const char *bench_kind_name(enum bench_kind k);

#endif
