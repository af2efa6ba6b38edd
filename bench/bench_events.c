/* bench_events.c -- simulated agents and their probe events, for the
 * collector's benchmarks; see bench_events.h. */
#include "bench_events.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const bench_clusters[BENCH_CLUSTERS] = {
    "eu-west-1", "us-east-1", "ap-southeast-1",
};

const char *const bench_targets[BENCH_TARGETS] = {
    "checkout-api", "payments-api", "search-api", "auth", "cdn-edge",
    "catalog", "inventory", "orders-db-proxy", "graphql-gateway",
    "recommendations", "user-profile", "notifications", "media-upload",
    "legacy-soap", "billing", "shipping-quotes", "fraud-score",
    "feature-flags", "status-page", "global-lb",
};

#define BENCH_ERR_REFUSED \
    "Failed to connect to 10.20.3.17 port 443 after 2 ms: " \
    "Couldn't connect to server"
#define BENCH_ERR_TIMEOUT \
    "Operation timed out after 5000 milliseconds with 0 bytes received"
#define BENCH_ERR_503     "status 503 not expected"
#define BENCH_ERR_500     "status 500 not expected"
#define BENCH_ERR_DNS     "Could not resolve host: api.internal.example"
#define BENCH_ERR_TLS     "SSL certificate problem: certificate has expired"
#define BENCH_FAILS       "3 failures in a row, last: "

const char *const bench_texts[BENCH_TEXTS] = {
    BENCH_ERR_REFUSED, BENCH_ERR_TIMEOUT, BENCH_ERR_503, BENCH_ERR_500,
    BENCH_ERR_DNS, BENCH_ERR_TLS,
    "2 successes in a row",
    BENCH_FAILS BENCH_ERR_REFUSED, BENCH_FAILS BENCH_ERR_TIMEOUT,
    BENCH_FAILS BENCH_ERR_503, BENCH_FAILS BENCH_ERR_500,
    BENCH_FAILS BENCH_ERR_DNS, BENCH_FAILS BENCH_ERR_TLS,
};
enum {
    ERR_REFUSED, ERR_TIMEOUT, ERR_503, ERR_500, ERR_DNS, ERR_TLS,
    TEXT_HEALTHY, TEXT_UNHEALTHY,       /* + the error's index */
};

#define BENCH_FLAKY_TARGET  13u         /* legacy-soap: random 503s */
#define BENCH_FLAKY_P       0.03
#define BENCH_OUTAGE_P      0.0008      /* a target's outage starts */
#define BENCH_OUTAGE_END_P  0.15        /* ... and ends: ~7 probes long */
#define BENCH_TAIL_P        0.01        /* a slow probe: 3x to 10x */
#define BENCH_SIGMA         0.35        /* of log(latency) */
#define BENCH_HEALTHY_AFTER 2u
#define BENCH_UNHEALTHY_AFTER 3u

static uint64_t bench_rand(uint64_t *s)            /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double bench_uniform(uint64_t *s)           /* in (0, 1) */
{
    return ((double)(bench_rand(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double bench_normal(uint64_t *s)            /* Box-Muller */
{
    double u = bench_uniform(s), v = bench_uniform(s);

    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

void bench_agent_init(struct bench_agent *a, unsigned index, uint64_t seed,
                      int64_t t0_ms, int64_t step_ms)
{
    memset(a, 0, sizeof(*a));
    a->index = index;
    a->cluster = index % BENCH_CLUSTERS;
    snprintf(a->node, sizeof(a->node), "%s-node-%03u",
             bench_clusters[a->cluster], index / BENCH_CLUSTERS);
    a->rng = seed * 0x2545f4914f6cdd1dull + index + 1;
    a->epoch = bench_rand(&a->rng) | 1;             /* never 0 */
    a->next_seq = 1;
    a->step_ms = step_ms > 0 ? step_ms : 1;
    a->next_ms = t0_ms + (int64_t)(bench_rand(&a->rng) %
                                   (uint64_t)a->step_ms);
    a->next_target = (unsigned)(bench_rand(&a->rng) % BENCH_TARGETS);
    for (unsigned t = 0; t < BENCH_TARGETS; t++)
        a->outage[t] = -1;
}

/* Median latency of @target seen from @cluster, ms: each target is
 * served from one cluster's region; from another, the trip adds up. */
static double bench_median_ms(unsigned target, unsigned cluster)
{
    static const double rtt_ms[BENCH_CLUSTERS][BENCH_CLUSTERS] = {
        { 1, 75, 160 }, { 75, 1, 210 }, { 160, 210, 1 },
    };

    return 4.0 + 3.0 * (double)(target % 7) +
           rtt_ms[cluster][target % BENCH_CLUSTERS];
}

/* Fills the probe fields of @ev: a success with a log-normal latency, or
 * the failure @err with that failure's timings. */
static void bench_probe(struct bench_agent *a, struct bench_event *ev,
                        int err)
{
    double ms = bench_median_ms(ev->target, a->cluster) *
                exp(BENCH_SIGMA * bench_normal(&a->rng));
    uint64_t total;

    if (bench_uniform(&a->rng) < BENCH_TAIL_P)
        ms *= 3.0 + 7.0 * bench_uniform(&a->rng);
    total = (uint64_t)(ms * 1000.0) + 1;
    ev->kind = BENCH_PROBE;
    ev->text = err;
    ev->ok = err < 0;
    ev->status = 200;
    ev->dns_us = 150 + total / 40;
    ev->connect_us = ev->dns_us + total / 6;
    ev->tls_us = ev->connect_us + total / 5;
    ev->first_byte_us = ev->tls_us + total / 2;
    ev->total_us = total;
    ev->cert_not_after_ms = BENCH_CERT_MS;
    switch (err) {
    case ERR_REFUSED:
        ev->status = 0;
        ev->tls_us = ev->first_byte_us = ev->cert_not_after_ms = 0;
        ev->total_us = ev->connect_us;
        break;
    case ERR_TIMEOUT:
        ev->status = 0;
        ev->first_byte_us = 0;
        ev->total_us = 5000000;
        break;
    case ERR_503:
    case ERR_500:
        ev->status = err == ERR_503 ? 503 : 500;
        break;
    case ERR_DNS:
        ev->status = 0;
        ev->connect_us = ev->tls_us = ev->first_byte_us = 0;
        ev->cert_not_after_ms = 0;
        ev->total_us = ev->dns_us;
        break;
    case ERR_TLS:
        ev->status = 0;
        ev->first_byte_us = 0;
        ev->total_us = ev->tls_us;
        break;
    default:
        break;
    }
}

/* Feeds a probe's verdict to the target's health, as the agent does
 * (healthy after 2 successes in a row, unhealthy after 3 failures); a
 * change becomes the pending state event. */
static void bench_health(struct bench_agent *a, const struct bench_event *p)
{
    unsigned t = p->target;
    int to = 0;

    if (p->ok) {
        a->fails[t] = 0;
        if (++a->oks[t] >= BENCH_HEALTHY_AFTER && a->health[t] != 1)
            to = 1;
    } else {
        a->oks[t] = 0;
        if (++a->fails[t] >= BENCH_UNHEALTHY_AFTER && a->health[t] != 2)
            to = 2;
    }
    if (!to)
        return;
    memset(&a->pending, 0, sizeof(a->pending));
    a->pending.kind = BENCH_STATE;
    a->pending.unix_ms = p->unix_ms;
    a->pending.target = t;
    a->pending.from = a->health[t];
    a->pending.to = to;
    a->pending.text = to == 1 ? TEXT_HEALTHY : TEXT_UNHEALTHY + p->text;
    a->health[t] = to;
    a->has_pending = 1;
}

void bench_agent_next(struct bench_agent *a, struct bench_event *ev)
{
    unsigned t;
    int err = -1;

    if (a->has_pending) {
        *ev = a->pending;
        a->has_pending = 0;
        ev->seq = a->next_seq++;
        return;
    }
    memset(ev, 0, sizeof(*ev));
    t = a->next_target;
    a->next_target = (t + 1) % BENCH_TARGETS;
    if (a->outage[t] >= 0) {
        if (bench_uniform(&a->rng) < BENCH_OUTAGE_END_P)
            a->outage[t] = -1;
    } else if (bench_uniform(&a->rng) < BENCH_OUTAGE_P) {
        a->outage[t] = (int)(bench_rand(&a->rng) % BENCH_ERRORS);
    }
    if (a->outage[t] >= 0)
        err = a->outage[t];
    else if (t == BENCH_FLAKY_TARGET && bench_uniform(&a->rng) < BENCH_FLAKY_P)
        err = ERR_503;
    ev->seq = a->next_seq++;
    ev->unix_ms = a->next_ms;
    ev->target = t;
    a->next_ms += a->step_ms;
    bench_probe(a, ev, err);
    bench_health(a, ev);
}

const char *bench_kind_name(enum bench_kind k)
{
    return k == BENCH_STATE ? "state" : "probe";
}

static const char *bench_health_name(int h)
{
    return h == 1 ? "healthy" : h == 2 ? "unhealthy" : "unknown";
}

size_t bench_event_json(const struct bench_event *ev, char *buf)
{
    int n;

    if (ev->kind == BENCH_STATE) {
        n = snprintf(buf, BENCH_JSON_MAX, "{\"from\":\"%s\",\"to\":\"%s\"%s}",
                     bench_health_name(ev->from), bench_health_name(ev->to),
                     ev->text < 0 ? ",\"reason\":\"\"" : "");
        return (size_t)n;
    }
    n = snprintf(buf, BENCH_JSON_MAX,
                 "{\"type\":\"http\",\"ok\":%s,\"status\":%d,%s"
                 "\"dns_us\":%" PRIu64 ",\"connect_us\":%" PRIu64 ","
                 "\"tls_us\":%" PRIu64 ",\"first_byte_us\":%" PRIu64 ","
                 "\"total_us\":%" PRIu64 ",\"served_by\":\"\","
                 "\"cert_not_after_ms\":%" PRId64 "}",
                 ev->ok ? "true" : "false", ev->status,
                 ev->text < 0 ? "\"error\":\"\"," : "", ev->dns_us,
                 ev->connect_us, ev->tls_us, ev->first_byte_us, ev->total_us,
                 ev->cert_not_after_ms);
    return (size_t)n;
}
