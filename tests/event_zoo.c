/* event_zoo.c -- writes an encoded ingest batch (zlib-deflated protobuf,
 * as an agent posts it) holding every kind of event and every probe field
 * with its edge values: set, empty or absent; a timing past INT64_MAX; a
 * served_by with a control character; DNS answers; texts with quotes,
 * backslashes, control characters and non-ASCII. Made for the store's
 * migration test: tests/fixtures/store-v5.sql is a database the schema 5
 * collector filled from these batches (see tests/fixtures/README.md).
 * Not part of the product.
 *
 * usage: event_zoo OUT_FILE NODE FIRST_SEQ T0_MS [OLDEST_SEQ]
 * The events get seqs FIRST_SEQ... and times from T0_MS on; a few share a
 * millisecond on purpose (the timeline's order among them is by arrival).
 * OLDEST_SEQ, when given, is the batch's oldest_seq (a jump below it is
 * declared lost by the collector: a "gap" event). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define ZOO_MAX 32

/* Storage for one batch's events; everything static to the run. */
struct zoo {
    Sextant__V1__Event ev[ZOO_MAX];
    Sextant__V1__Event *evp[ZOO_MAX];
    Sextant__V1__ProbeResult pr[ZOO_MAX];
    Sextant__V1__Timings tm[ZOO_MAX];
    size_t n;
    uint64_t seq;
    int64_t ms;
};

static Sextant__V1__DnsAnswer zoo_a1 = {
    PROTOBUF_C_MESSAGE_INIT(&sextant__v1__dns_answer__descriptor),
    "A", "127.0.1.1", 30 };
static Sextant__V1__DnsAnswer zoo_a2 = {
    PROTOBUF_C_MESSAGE_INIT(&sextant__v1__dns_answer__descriptor),
    "A", "127.0.2.1", 0 };
static Sextant__V1__DnsAnswer zoo_c1 = {
    PROTOBUF_C_MESSAGE_INIT(&sextant__v1__dns_answer__descriptor),
    "CNAME", "app.eu-west-1.test.", 4294967295u };
static Sextant__V1__DnsAnswer *zoo_ans[] = { &zoo_a1, &zoo_a2 };
static Sextant__V1__DnsAnswer *zoo_ans2[] = { &zoo_c1, &zoo_a2 };

/* The next event slot, its seq and time (@dt ms after the last one). */
static Sextant__V1__Event *zoo_next(struct zoo *z, int64_t dt)
{
    Sextant__V1__Event *e = &z->ev[z->n];

    sextant__v1__event__init(e);
    z->ms += dt;
    e->seq = z->seq++;
    e->unix_ms = z->ms;
    z->evp[z->n] = e;
    z->n++;
    return e;
}

/* A probe event with every field given; @tm NULL: no Timings message. */
static void zoo_probe(struct zoo *z, int64_t dt, const char *target,
                      Sextant__V1__ProbeType type, int ok, int32_t status,
                      const char *error, const uint64_t *tm,
                      const char *served_by, int64_t cert,
                      Sextant__V1__DnsAnswer **ans, size_t n_ans)
{
    size_t i = z->n;
    Sextant__V1__Event *e = zoo_next(z, dt);
    Sextant__V1__ProbeResult *p = &z->pr[i];

    sextant__v1__probe_result__init(p);
    p->target = (char *)target;
    p->type = type;
    p->ok = ok;
    p->status = status;
    p->error = (char *)error;
    if (tm) {
        sextant__v1__timings__init(&z->tm[i]);
        z->tm[i].dns_us = tm[0];
        z->tm[i].connect_us = tm[1];
        z->tm[i].tls_us = tm[2];
        z->tm[i].first_byte_us = tm[3];
        z->tm[i].total_us = tm[4];
        p->timings = &z->tm[i];
    }
    p->served_by = (char *)served_by;
    p->cert_not_after_unix_ms = cert;
    p->answers = ans;
    p->n_answers = n_ans;
    e->kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    e->probe = p;
}

static void zoo_probes(struct zoo *z)
{
    static const uint64_t full[5] = { 1200, 15300, 41000, 90250, 131072 };
    static const uint64_t part[5] = { 800, 0, 0, 0, 5000000 };
    static const uint64_t huge[5] = { 1, 2, 3, UINT64_MAX,
                                      (uint64_t)INT64_MAX + 1 };
    static const uint64_t edge[5] = { 0, 127, 128, 32768,
                                      (uint64_t)INT64_MAX };
    const int64_t cert = 1790000000000LL;

    zoo_probe(z, 1, "checkout-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
              1, 200, "", full, "eu-west-1", cert, NULL, 0);
    zoo_probe(z, 0, "checkout-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
              0, 503, "status 503 not expected", full, "", cert, NULL, 0);
    zoo_probe(z, 7, "db-tcp", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP, 1, 0,
              "", NULL, "", 0, NULL, 0);
    zoo_probe(z, 5, "db-tcp", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP, 0, 0,
              "connect: Connection refused", part, "", 0, NULL, 0);
    zoo_probe(z, 3, "app.global.test", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS,
              1, 0, "", part, "", 0, zoo_ans, 2);
    zoo_probe(z, 3, "app.global.test", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS,
              0, 0, "SERVFAIL", part, "", 0, zoo_ans2, 2);
    zoo_probe(z, 2, "queue-depth", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_METRIC,
              1, 200, "", full, "us-east-1", 0, NULL, 0);
    zoo_probe(z, 2, "kube-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE, 1,
              200, "", full, "", -1, NULL, 0);
    /* Values the typed columns cannot hold as they are: the row keeps its
     * JSON. */
    zoo_probe(z, 4, "checkout-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
              1, 200, "", huge, "eu-west-1", cert, NULL, 0);
    zoo_probe(z, 1, "checkout-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
              1, 200, "", full, "eu\rwest\b1", cert, NULL, 0);
    /* Texts that JSON must escape; the largest integers that fit. */
    zoo_probe(z, 1, "checkout-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
              0, -1, "bad \"quote\" \\ tab\there\nnew line \x01 \xc3\xbc",
              edge, "r\xc3\xa9gion \"q\" \\", INT64_MAX, NULL, 0);
    zoo_probe(z, 1, "checkout-api", SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
              0, 2147483647, "status 503 not expected", edge, "", INT64_MIN,
              NULL, 0);
}

/* An event of kind @k (not a probe) whose message is @msg. */
static void zoo_other(struct zoo *z, int64_t dt,
                      Sextant__V1__Event__KindCase k, void *msg)
{
    Sextant__V1__Event *e = zoo_next(z, dt);

    e->kind_case = k;
    switch (k) {
    case SEXTANT__V1__EVENT__KIND_STATE:     e->state = msg; break;
    case SEXTANT__V1__EVENT__KIND_DNS:       e->dns = msg; break;
    case SEXTANT__V1__EVENT__KIND_METRIC:    e->metric = msg; break;
    case SEXTANT__V1__EVENT__KIND_FAILOVER:  e->failover = msg; break;
    case SEXTANT__V1__EVENT__KIND_LIFECYCLE: e->lifecycle = msg; break;
    default:                                 break;
    }
}

static void zoo_others(struct zoo *z)
{
    static Sextant__V1__StateChange st1 = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__state_change__descriptor),
        "checkout-api", SEXTANT__V1__HEALTH__HEALTH_UNKNOWN,
        SEXTANT__V1__HEALTH__HEALTH_HEALTHY, "" };
    static Sextant__V1__StateChange st2 = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__state_change__descriptor),
        "checkout-api", SEXTANT__V1__HEALTH__HEALTH_HEALTHY,
        SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY,
        "3 failures in a row, last: status 503 not expected" };
    static Sextant__V1__DnsChange dns = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__dns_change__descriptor),
        "app.global.test", 2, zoo_ans, 2, zoo_ans2, "" };
    static Sextant__V1__Label l1 = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__label__descriptor),
        "queue", "orders" };
    static Sextant__V1__Label l2 = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__label__descriptor),
        "le", "+Inf" };
    static Sextant__V1__Label *labels[] = { &l1, &l2 };
    static Sextant__V1__MetricSample m1 = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__metric_sample__descriptor),
        "replication_lag_seconds", 2, labels, 0.25, "queue-depth" };
    static Sextant__V1__MetricSample m2 = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__metric_sample__descriptor),
        "up", 0, NULL, 1e300, "" };
    static Sextant__V1__Failover fo = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__failover__descriptor),
        "manual", "eu-west-1", "us-east-1", "drill \"B\"", "" };
    static Sextant__V1__Lifecycle lc = {
        PROTOBUF_C_MESSAGE_INIT(&sextant__v1__lifecycle__descriptor),
        SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD, "1.2.3",
        "targets: +1" };

    zoo_other(z, 0, SEXTANT__V1__EVENT__KIND_STATE, &st1);  /* same ms */
    zoo_other(z, 2, SEXTANT__V1__EVENT__KIND_STATE, &st2);
    zoo_other(z, 3, SEXTANT__V1__EVENT__KIND_DNS, &dns);
    zoo_other(z, 1, SEXTANT__V1__EVENT__KIND_METRIC, &m1);
    zoo_other(z, 1, SEXTANT__V1__EVENT__KIND_METRIC, &m2);
    zoo_other(z, 1, SEXTANT__V1__EVENT__KIND_FAILOVER, &fo);
    zoo_other(z, 1, SEXTANT__V1__EVENT__KIND_LIFECYCLE, &lc);
}

int main(int argc, char **argv)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    static struct zoo z;
    uint8_t *out = NULL;
    size_t len = 0;
    FILE *f;

    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: event_zoo OUT_FILE NODE FIRST_SEQ T0_MS "
                "[OLDEST_SEQ]\n");
        return 2;
    }
    z.seq = strtoull(argv[3], NULL, 10);
    z.ms = strtoll(argv[4], NULL, 10);
    zoo_probes(&z);
    zoo_others(&z);
    b.cluster = "test";
    b.region = "eu-west-1";
    b.node = argv[2];
    b.agent_version = "zoo";
    b.epoch = 0x0123456789abcdefULL;
    b.first_seq = z.ev[0].seq;
    b.n_events = z.n;
    b.events = z.evp;
    b.sent_unix_ms = z.ms + 20;
    b.prev_rtt_us = 1500;
    if (argc == 6)
        b.oldest_seq = strtoull(argv[5], NULL, 10);
    if (wire_batch_encode(&b, &out, &len) < 0) {
        fprintf(stderr, "event_zoo: encode failed\n");
        return 1;
    }
    f = fopen(argv[1], "wb");
    if (!f || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "event_zoo: cannot write %s\n", argv[1]);
        free(out);
        return 1;
    }
    free(out);
    return 0;
}
