/* gen_seeds.c -- writes the wire seeds of tests/fuzz/corpus: a few valid
 * batches (every event kind, empty, many events, fields from a newer
 * agent), near misses (seq order, a zlib bomb) and acks, each packed into
 * wire_raw/ and deflated into wire_zlib/. Run by hand after sextant.proto
 * changes (the fuzz run itself only reads the committed files):
 *   cmake --build build-fuzz --target fuzz_gen_seeds
 *   build-fuzz/tests/fuzz/fuzz_gen_seeds tests/fuzz/corpus/wire_zlib \
 *       tests/fuzz/corpus/wire_raw */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"

#define T0 1700000000000LL      /* 2023-11-14 */
#define SEED_MAX 4096u          /* keep each committed seed small */

static const char *dir_raw, *dir_zlib;

static int write_file(const char *dir, const char *name, const char *ext,
                      const uint8_t *buf, size_t len)
{
    char path[4096];
    FILE *f;
    int ok;

    if (len > SEED_MAX) {
        log_msg(LOGL_ERROR, "seeds", "%s: %zu bytes, over %u", name, len,
                SEED_MAX);
        return -EMSGSIZE;
    }
    snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
    f = fopen(path, "wb");
    if (f == NULL) {
        log_msg(LOGL_ERROR, "seeds", "%s: %s", path, strerror(errno));
        return -errno;
    }
    ok = fwrite(buf, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        log_msg(LOGL_ERROR, "seeds", "%s: write failed", path);
        return -EIO;
    }
    return 0;
}

/* Writes @raw as wire_raw/NAME.pb and, deflated, wire_zlib/NAME.z. */
static int write_both(const char *name, const uint8_t *raw, size_t len)
{
    uint8_t *z = NULL;
    size_t zlen;
    int rc = write_file(dir_raw, name, "pb", raw, len);

    if (rc == 0)
        rc = wire_deflate(raw, len, &z, &zlen);
    if (rc == 0)
        rc = write_file(dir_zlib, name, "z", z, zlen);
    free(z);
    return rc;
}

/* Packs @b, appends @extra raw bytes (fields this build does not know). */
static int write_batch(const char *name, const Sextant__V1__Batch *b,
                       const uint8_t *extra, size_t extra_len)
{
    size_t n = sextant__v1__batch__get_packed_size(b);
    uint8_t *raw = malloc(n + extra_len + 1);
    int rc;

    if (raw == NULL)
        return -ENOMEM;
    n = sextant__v1__batch__pack(b, raw);
    if (extra_len > 0)
        memcpy(raw + n, extra, extra_len);
    rc = write_both(name, raw, n + extra_len);
    free(raw);
    return rc;
}

static void header(Sextant__V1__Batch *b, uint64_t first_seq)
{
    sextant__v1__batch__init(b);
    b->cluster = "prod-eu";
    b->region = "eu-west-1";
    b->node = "node-7";
    b->agent_version = "0.1.0";
    b->epoch = 0x8badf00ddeadbeefULL;
    b->first_seq = first_seq;
    b->sent_unix_ms = T0 + 1000;
    b->prev_rtt_us = 1234;
}

/* One event of every kind. */
static int seed_all_kinds(void)
{
    Sextant__V1__Batch b;
    Sextant__V1__Drops drops;
    Sextant__V1__Event ev[6], *evp[6];
    Sextant__V1__ProbeResult probe;
    Sextant__V1__Timings tm;
    Sextant__V1__StateChange state;
    Sextant__V1__DnsChange dns;
    Sextant__V1__DnsAnswer ans[3], *old_ans[1], *new_ans[2];
    Sextant__V1__MetricSample metric;
    Sextant__V1__Label label[2], *labelp[2];
    Sextant__V1__Failover fo;
    Sextant__V1__Lifecycle life;
    size_t i;

    header(&b, 5);
    sextant__v1__drops__init(&drops);
    drops.count = 2;
    drops.first_seq = 3;
    drops.last_seq = 4;
    drops.first_unix_ms = T0 - 10;
    drops.last_unix_ms = T0 - 5;
    b.drops = &drops;
    b.oldest_seq = 3;
    for (i = 0; i < 6; i++) {
        sextant__v1__event__init(&ev[i]);
        ev[i].seq = 5 + i;
        ev[i].unix_ms = T0 + (int64_t)i;
        evp[i] = &ev[i];
    }
    b.n_events = 6;
    b.events = evp;

    sextant__v1__probe_result__init(&probe);
    sextant__v1__timings__init(&tm);
    probe.target = "https://api.eu.example.com/healthz";
    probe.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    probe.ok = 1;
    probe.status = 200;
    tm.dns_us = 900;
    tm.connect_us = 2100;
    tm.tls_us = 7000;
    tm.first_byte_us = 9000;
    tm.total_us = 9500;
    probe.timings = &tm;
    probe.served_by = "eu-west-1";
    probe.cert_not_after_unix_ms = T0 + 86400000LL * 60;
    ev[0].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    ev[0].probe = &probe;

    sextant__v1__state_change__init(&state);
    state.target = "api-eu";
    state.from = SEXTANT__V1__HEALTH__HEALTH_HEALTHY;
    state.to = SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY;
    state.reason = "3 consecutive failures";
    ev[1].kind_case = SEXTANT__V1__EVENT__KIND_STATE;
    ev[1].state = &state;

    for (i = 0; i < 3; i++)
        sextant__v1__dns_answer__init(&ans[i]);
    ans[0].type = "A";
    ans[0].value = "192.0.2.10";
    ans[0].ttl = 60;
    ans[1].type = "CNAME";
    ans[1].value = "api.us.example.com";
    ans[1].ttl = 60;
    ans[2].type = "AAAA";
    ans[2].value = "2001:db8::10";
    ans[2].ttl = 60;
    old_ans[0] = &ans[0];
    new_ans[0] = &ans[1];
    new_ans[1] = &ans[2];
    sextant__v1__dns_change__init(&dns);
    dns.name = "api.example.com";
    dns.n_old_answers = 1;
    dns.old_answers = old_ans;
    dns.n_new_answers = 2;
    dns.new_answers = new_ans;
    dns.target = "api-global";
    ev[2].kind_case = SEXTANT__V1__EVENT__KIND_DNS;
    ev[2].dns = &dns;

    for (i = 0; i < 2; i++) {
        sextant__v1__label__init(&label[i]);
        labelp[i] = &label[i];
    }
    label[0].name = "db";
    label[0].value = "orders";
    label[1].name = "role";
    label[1].value = "replica";
    sextant__v1__metric_sample__init(&metric);
    metric.name = "replication_lag_seconds";
    metric.n_labels = 2;
    metric.labels = labelp;
    metric.value = 0.25;
    metric.target = "pg-eu";
    ev[3].kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
    ev[3].metric = &metric;

    sextant__v1__failover__init(&fo);
    fo.kind = "failover";
    fo.from_region = "eu-west-1";
    fo.to_region = "us-east-1";
    fo.text = "Route 53 flipped api.example.com";
    ev[4].kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
    ev[4].failover = &fo;

    sextant__v1__lifecycle__init(&life);
    life.phase = SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD;
    life.version = "0.1.0";
    life.detail = "targets: +api-eu -old";
    ev[5].kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    ev[5].lifecycle = &life;

    return write_batch("batch-all-kinds", &b, NULL, 0);
}

/* A header and no events: what an agent sends to report drops only. */
static int seed_empty(void)
{
    Sextant__V1__Batch b;

    header(&b, 0);
    return write_batch("batch-empty", &b, NULL, 0);
}

/* Probe results of the other types, failed ones with errors and answers;
 * @n events, so one seed is a long run of similar events. */
static int seed_probes(const char *name, size_t n, int ascending)
{
    static const Sextant__V1__ProbeType types[] = {
        SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_TCP,
        SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS,
        SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_METRIC,
        SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE,
        SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP,
    };
    Sextant__V1__Batch b;
    Sextant__V1__Event ev[64], *evp[64];
    Sextant__V1__ProbeResult pr[64];
    Sextant__V1__DnsAnswer ans, *ansp[1] = { &ans };
    size_t i;

    if (n > 64)
        return -EINVAL;
    header(&b, 100);
    sextant__v1__dns_answer__init(&ans);
    ans.type = "A";
    ans.value = "127.0.2.1";
    ans.ttl = 5;
    for (i = 0; i < n; i++) {
        sextant__v1__event__init(&ev[i]);
        sextant__v1__probe_result__init(&pr[i]);
        ev[i].seq = ascending ? 100 + i : 100 + (i == 1 ? 0 : i);
        ev[i].unix_ms = T0 + 1000 * (int64_t)i;
        pr[i].target = i % 2 ? "db-tcp" : "app.global.test";
        pr[i].type = types[i % 5];
        pr[i].ok = i % 3 != 0;
        if (!pr[i].ok)
            pr[i].error = "connect: Connection refused";
        pr[i].status = pr[i].type == SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP
                       ? 503 : 0;
        if (pr[i].type == SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS) {
            pr[i].n_answers = 1;
            pr[i].answers = ansp;
        }
        ev[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
        ev[i].probe = &pr[i];
        evp[i] = &ev[i];
    }
    b.n_events = n;
    b.events = evp;
    return write_batch(name, &b, NULL, 0);
}

/* A newer agent: an event of an unknown kind (field 16) and an unknown
 * Batch field (20), both to be accepted. */
static int seed_future(void)
{
    static const uint8_t batch_extra[] = { 0xa2, 0x01, 0x03, 'n', 'e', 'w' };
    static const uint8_t ev_extra[] = { 0x82, 0x01, 0x02, 0x08, 0x01 };
    Sextant__V1__Batch b;
    Sextant__V1__Event ev;
    uint8_t evbuf[64];
    size_t n;
    struct wire_buf wb;
    uint8_t *z = NULL, *raw = NULL;
    size_t zlen, rawlen;
    int rc;

    header(&b, 7);
    sextant__v1__event__init(&ev);
    ev.seq = 7;
    ev.unix_ms = T0;
    n = sextant__v1__event__pack(&ev, evbuf);
    memcpy(evbuf + n, ev_extra, sizeof(ev_extra));
    wb.data = evbuf;
    wb.len = n + sizeof(ev_extra);
    /* Joined the way the agent joins spooled events, then the unknown
     * Batch field behind it. */
    rc = wire_batch_encode_packed(&b, &wb, 1, &z, &zlen);
    if (rc == 0)
        rc = wire_inflate(z, zlen, SEED_MAX, &raw, &rawlen);
    if (rc == 0 && rawlen + sizeof(batch_extra) > SEED_MAX)
        rc = -EMSGSIZE;
    if (rc == 0) {
        uint8_t all[SEED_MAX];

        memcpy(all, raw, rawlen);
        memcpy(all + rawlen, batch_extra, sizeof(batch_extra));
        rc = write_both("batch-future-fields", all,
                        rawlen + sizeof(batch_extra));
    }
    free(z);
    free(raw);
    return rc;
}

/* 2 MiB of zeros: over FUZZ_RAW_CAP once inflated, 2 KiB deflated. */
static int seed_bomb(void)
{
    size_t len = 2u << 20;
    uint8_t *zeros = calloc(1, len), *z = NULL;
    size_t zlen;
    int rc = zeros ? wire_deflate(zeros, len, &z, &zlen) : -ENOMEM;

    if (rc == 0)
        rc = write_file(dir_zlib, "bomb-2mib-zeros", "z", z, zlen);
    free(zeros);
    free(z);
    return rc;
}

static int seed_ack(const char *name, uint64_t epoch, uint64_t seq)
{
    Sextant__V1__Ack a;
    uint8_t *buf = NULL;
    size_t len;
    int rc;

    sextant__v1__ack__init(&a);
    a.epoch = epoch;
    a.acked_seq = seq;
    a.received_unix_ms = T0 + 2000;
    rc = wire_ack_encode(&a, &buf, &len);
    if (rc == 0)
        rc = write_file(dir_raw, name, "pb", buf, len);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: %s WIRE_ZLIB_DIR WIRE_RAW_DIR\n", argv[0]);
        return 2;
    }
    dir_zlib = argv[1];
    dir_raw = argv[2];
    rc = seed_all_kinds();
    if (rc == 0)
        rc = seed_empty();
    if (rc == 0)
        rc = seed_probes("batch-probes-5", 5, 1);
    if (rc == 0)
        rc = seed_probes("batch-probes-40", 40, 1);
    if (rc == 0)
        rc = seed_probes("batch-seq-out-of-order", 5, 0);
    if (rc == 0)
        rc = seed_future();
    if (rc == 0)
        rc = seed_bomb();
    if (rc == 0)
        rc = seed_ack("ack", 0x8badf00ddeadbeefULL, 42);
    if (rc == 0)
        rc = seed_ack("ack-no-epoch", 0, 7);
    if (rc < 0) {
        fprintf(stderr, "%s: failed: %s\n", argv[0], strerror(-rc));
        return 1;
    }
    return 0;
}
