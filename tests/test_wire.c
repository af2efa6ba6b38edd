/* test_wire.c -- unit tests of proto/wire.c: zlib with a cap, batch
 * encode/decode, forward compatibility, validation rules, packed events,
 * acks. Every byte string the collector could be sent is built here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wire.h"

#define T0 1700000000000LL      /* 2023-11-14, inside the sane range */

/* A batch holding one event of every kind, all in caller storage. */
struct fixture {
    Sextant__V1__Batch b;
    Sextant__V1__Drops drops;
    Sextant__V1__Event ev[6];
    Sextant__V1__Event *evp[6];
    Sextant__V1__ProbeResult probe;
    Sextant__V1__Timings timings;
    Sextant__V1__StateChange state;
    Sextant__V1__DnsChange dns;
    Sextant__V1__DnsAnswer ans[3];
    Sextant__V1__DnsAnswer *old_ans[1];
    Sextant__V1__DnsAnswer *new_ans[2];
    Sextant__V1__MetricSample metric;
    Sextant__V1__Label label[2];
    Sextant__V1__Label *labelp[2];
    Sextant__V1__Failover failover;
    Sextant__V1__Lifecycle life;
};

enum { EV_PROBE, EV_STATE, EV_DNS, EV_METRIC, EV_FAILOVER, EV_LIFE };

static void fixture_init(struct fixture *f)
{
    size_t i;

    memset(f, 0, sizeof(*f));
    sextant__v1__batch__init(&f->b);
    f->b.cluster = "prod-eu";
    f->b.region = "eu-west-1";
    f->b.node = "node-7";
    f->b.agent_version = "0.1.0";
    f->b.epoch = 0x8badf00ddeadbeefULL;
    f->b.first_seq = 5;
    f->b.sent_unix_ms = T0 + 100;
    f->b.prev_rtt_us = 1234;
    sextant__v1__drops__init(&f->drops);
    f->drops.count = 2;
    f->drops.first_seq = 3;
    f->drops.last_seq = 4;
    f->b.drops = &f->drops;

    for (i = 0; i < 6; i++) {
        sextant__v1__event__init(&f->ev[i]);
        f->ev[i].seq = 5 + i;
        f->ev[i].unix_ms = T0 + (int64_t)i;
        f->evp[i] = &f->ev[i];
    }
    f->b.n_events = 6;
    f->b.events = f->evp;

    sextant__v1__probe_result__init(&f->probe);
    sextant__v1__timings__init(&f->timings);
    f->probe.target = "https://api.eu.example.com/healthz";
    f->probe.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    f->probe.ok = 1;
    f->probe.status = 200;
    f->timings.dns_us = 900;
    f->timings.connect_us = 2100;
    f->timings.tls_us = 7000;
    f->timings.first_byte_us = 9000;
    f->timings.total_us = 9500;
    f->probe.timings = &f->timings;
    f->probe.served_by = "eu-west-1";
    f->probe.cert_not_after_unix_ms = T0 + 86400000LL * 60;
    f->ev[EV_PROBE].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    f->ev[EV_PROBE].probe = &f->probe;

    sextant__v1__state_change__init(&f->state);
    f->state.target = "api-eu";
    f->state.from = SEXTANT__V1__HEALTH__HEALTH_HEALTHY;
    f->state.to = SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY;
    f->state.reason = "3 consecutive failures";
    f->ev[EV_STATE].kind_case = SEXTANT__V1__EVENT__KIND_STATE;
    f->ev[EV_STATE].state = &f->state;

    for (i = 0; i < 3; i++)
        sextant__v1__dns_answer__init(&f->ans[i]);
    f->ans[0].type = "A";
    f->ans[0].value = "192.0.2.10";
    f->ans[0].ttl = 60;
    f->ans[1].type = "CNAME";
    f->ans[1].value = "api.us.example.com";
    f->ans[1].ttl = 60;
    f->ans[2].type = "AAAA";
    f->ans[2].value = "2001:db8::10";
    f->ans[2].ttl = 60;
    f->old_ans[0] = &f->ans[0];
    f->new_ans[0] = &f->ans[1];
    f->new_ans[1] = &f->ans[2];
    sextant__v1__dns_change__init(&f->dns);
    f->dns.name = "api.example.com";
    f->dns.n_old_answers = 1;
    f->dns.old_answers = f->old_ans;
    f->dns.n_new_answers = 2;
    f->dns.new_answers = f->new_ans;
    f->dns.target = "api-global";
    f->ev[EV_DNS].kind_case = SEXTANT__V1__EVENT__KIND_DNS;
    f->ev[EV_DNS].dns = &f->dns;

    for (i = 0; i < 2; i++) {
        sextant__v1__label__init(&f->label[i]);
        f->labelp[i] = &f->label[i];
    }
    f->label[0].name = "db";
    f->label[0].value = "orders";
    f->label[1].name = "role";
    f->label[1].value = "replica";
    sextant__v1__metric_sample__init(&f->metric);
    f->metric.name = "replication_lag_seconds";
    f->metric.n_labels = 2;
    f->metric.labels = f->labelp;
    f->metric.value = 0.25;
    f->metric.target = "pg-eu";
    f->ev[EV_METRIC].kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
    f->ev[EV_METRIC].metric = &f->metric;

    sextant__v1__failover__init(&f->failover);
    f->failover.kind = "failover";
    f->failover.from_region = "eu-west-1";
    f->failover.to_region = "us-east-1";
    f->failover.text = "Route 53 flipped api.example.com";
    f->ev[EV_FAILOVER].kind_case = SEXTANT__V1__EVENT__KIND_FAILOVER;
    f->ev[EV_FAILOVER].failover = &f->failover;

    sextant__v1__lifecycle__init(&f->life);
    f->life.phase = SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_RELOAD;
    f->life.version = "0.1.0";
    f->life.detail = "targets: +1 -0";
    f->ev[EV_LIFE].kind_case = SEXTANT__V1__EVENT__KIND_LIFECYCLE;
    f->ev[EV_LIFE].lifecycle = &f->life;
}

/* Deterministic bytes; @text keeps them printable (compressible). */
static uint8_t *make_bytes(size_t n, int text)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = 12345;
    size_t i;

    assert_non_null(p);
    for (i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = text ? (uint8_t)('a' + (x >> 16) % 26) : (uint8_t)(x >> 16);
    }
    return p;
}

/* protobuf-c packs fields in number order, so equal bytes mean equal
 * messages, unknown fields included. */
static void assert_same_batch(const Sextant__V1__Batch *a,
                              const Sextant__V1__Batch *b)
{
    size_t na = sextant__v1__batch__get_packed_size(a);
    size_t nb = sextant__v1__batch__get_packed_size(b);
    uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);

    assert_non_null(pa);
    assert_non_null(pb);
    assert_int_equal(sextant__v1__batch__pack(a, pa), na);
    assert_int_equal(sextant__v1__batch__pack(b, pb), nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);
}

/* Packs @b by hand, appends @tail (extra wire fields), deflates. */
static void pack_with_tail(const Sextant__V1__Batch *b, const uint8_t *tail,
                           size_t tail_len, uint8_t **z, size_t *z_len)
{
    size_t n = sextant__v1__batch__get_packed_size(b);
    uint8_t *raw = malloc(n + tail_len + 1);

    assert_non_null(raw);
    assert_int_equal(sextant__v1__batch__pack(b, raw), n);
    memcpy(raw + n, tail, tail_len);
    assert_int_equal(wire_deflate(raw, n + tail_len, z, z_len), 0);
    free(raw);
}

static void assert_invalid(const Sextant__V1__Batch *b, int want,
                           const char *reason)
{
    char err[WIRE_ERR_LEN] = "";

    assert_int_equal(wire_batch_validate(b, err, sizeof(err)), want);
    assert_string_equal(err, reason);
}

static void assert_valid(const Sextant__V1__Batch *b)
{
    char err[WIRE_ERR_LEN] = "";
    int rc = wire_batch_validate(b, err, sizeof(err));

    if (rc != 0)
        fail_msg("unexpected: %s", err);
}

/* ---- zlib ---- */

static void test_deflate_then_inflate_returns_the_input(void **state)
{
    static const size_t sizes[] = { 0, 1, 100000, 3u << 20 };
    uint8_t *in, *z, *out;
    size_t i, z_len, out_len;

    (void)state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        in = make_bytes(sizes[i], i % 2);
        assert_int_equal(wire_deflate(in, sizes[i], &z, &z_len), 0);
        assert_int_equal(z[0], 0x78);   /* zlib header, not raw or gzip */
        assert_int_equal(wire_inflate(z, z_len, sizes[i], &out, &out_len),
                         0);
        assert_int_equal(out_len, sizes[i]);
        if (sizes[i] > 0)
            assert_memory_equal(out, in, sizes[i]);
        free(in);
        free(z);
        free(out);
    }
}

static void test_inflate_of_empty_input_fails_with_ebadmsg(void **state)
{
    uint8_t *out = NULL;
    size_t out_len = 0;

    (void)state;
    assert_int_equal(wire_inflate((const uint8_t *)"", 0, 1024, &out,
                                  &out_len), -EBADMSG);
    assert_null(out);
}

static void test_inflate_of_truncated_stream_fails_with_ebadmsg(void **state)
{
    uint8_t *in = make_bytes(100000, 1), *z, *out = NULL;
    size_t z_len, out_len, cuts[5], i;

    (void)state;
    assert_int_equal(wire_deflate(in, 100000, &z, &z_len), 0);
    cuts[0] = 1;
    cuts[1] = 2;
    cuts[2] = z_len / 2;
    cuts[3] = z_len - 4;            /* the whole body, no checksum */
    cuts[4] = z_len - 1;
    for (i = 0; i < 5; i++)
        assert_int_equal(wire_inflate(z, cuts[i], 1u << 20, &out, &out_len),
                         -EBADMSG);
    assert_null(out);
    free(in);
    free(z);
}

static void test_inflate_of_corrupt_stream_fails_with_ebadmsg(void **state)
{
    uint8_t *in = make_bytes(100000, 1), *z, *out = NULL;
    size_t z_len, out_len, pos;

    (void)state;
    assert_int_equal(wire_deflate(in, 100000, &z, &z_len), 0);
    for (pos = z_len / 4; pos < z_len - 4; pos += z_len / 4) {
        z[pos] ^= 0xff;
        z[pos + 1] ^= 0x55;
        assert_int_equal(wire_inflate(z, z_len, WIRE_MAX_RAW, &out,
                                      &out_len), -EBADMSG);
        z[pos] ^= 0xff;
        z[pos + 1] ^= 0x55;
    }
    assert_null(out);
    free(in);
    free(z);
}

static void test_inflate_with_bad_zlib_header_fails_with_ebadmsg(void **state)
{
    static const uint8_t gzip[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x03, 0x03, 0x00 };
    uint8_t *in = make_bytes(1000, 1), *z, *out = NULL;
    size_t z_len, out_len;

    (void)state;
    assert_int_equal(wire_deflate(in, 1000, &z, &z_len), 0);
    z[0] ^= 0x01;                   /* header checksum no longer holds */
    assert_int_equal(wire_inflate(z, z_len, 1u << 20, &out, &out_len),
                     -EBADMSG);
    /* A raw deflate body: the stream without its 2-byte header. */
    assert_int_equal(wire_inflate(z + 2, z_len - 2, 1u << 20, &out,
                                  &out_len), -EBADMSG);
    assert_int_equal(wire_inflate(gzip, sizeof(gzip), 1u << 20, &out,
                                  &out_len), -EBADMSG);
    assert_null(out);
    free(in);
    free(z);
}

static void test_inflate_over_cap_fails_with_emsgsize(void **state)
{
    size_t n = 10u << 20, z_len, out_len = 7;
    uint8_t *zeros = calloc(n, 1), *z, *out = NULL;

    (void)state;
    assert_non_null(zeros);
    assert_int_equal(wire_deflate(zeros, n, &z, &z_len), 0);
    assert_true(z_len < 64u << 10);     /* a bomb: ~1000:1 */
    assert_int_equal(wire_inflate(z, z_len, 1u << 20, &out, &out_len),
                     -EMSGSIZE);
    assert_null(out);
    assert_int_equal(out_len, 7);       /* out-params untouched */
    free(zeros);
    free(z);
}

static void test_inflate_output_exactly_at_cap_succeeds(void **state)
{
    uint8_t *in = make_bytes(5000, 1), *z, *out = NULL;
    size_t z_len, out_len;

    (void)state;
    assert_int_equal(wire_deflate(in, 5000, &z, &z_len), 0);
    assert_int_equal(wire_inflate(z, z_len, 5000, &out, &out_len), 0);
    assert_int_equal(out_len, 5000);
    free(out);
    out = NULL;
    assert_int_equal(wire_inflate(z, z_len, 4999, &out, &out_len),
                     -EMSGSIZE);
    assert_null(out);
    free(in);
    free(z);
}

static void test_inflate_with_trailing_garbage_fails_with_ebadmsg(void **state)
{
    uint8_t *in = make_bytes(1000, 1), *z, *zz, *out = NULL;
    size_t z_len, out_len;

    (void)state;
    assert_int_equal(wire_deflate(in, 1000, &z, &z_len), 0);
    zz = malloc(2 * z_len);
    assert_non_null(zz);
    memcpy(zz, z, z_len);
    memcpy(zz + z_len, "junk", 4);
    assert_int_equal(wire_inflate(zz, z_len + 4, 1u << 20, &out, &out_len),
                     -EBADMSG);
    /* Two whole streams back to back are not one body either. */
    memcpy(zz + z_len, z, z_len);
    assert_int_equal(wire_inflate(zz, 2 * z_len, 1u << 20, &out, &out_len),
                     -EBADMSG);
    assert_null(out);
    free(in);
    free(z);
    free(zz);
}

/* ---- batch encode / decode ---- */

static void test_batch_with_every_event_kind_roundtrips(void **state)
{
    static const char *kinds[] = { "probe", "state", "dns", "metric",
                                   "failover", "lifecycle" };
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len, i;

    (void)state;
    fixture_init(&f);
    assert_int_equal(wire_batch_encode(&f.b, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    assert_non_null(got);
    assert_string_equal(got->cluster, "prod-eu");
    assert_int_equal(got->epoch, f.b.epoch);
    assert_int_equal(got->n_events, 6);
    for (i = 0; i < 6; i++) {
        assert_int_equal(got->events[i]->seq, 5 + i);
        assert_string_equal(wire_event_kind(got->events[i]), kinds[i]);
    }
    assert_int_equal(got->events[EV_PROBE]->probe->timings->tls_us, 7000);
    assert_string_equal(got->events[EV_DNS]->dns->new_answers[1]->value,
                        "2001:db8::10");
    assert_string_equal(got->events[EV_METRIC]->metric->labels[1]->value,
                        "replica");
    assert_int_equal(got->drops->last_seq, 4);
    assert_same_batch(&f.b, got);
    wire_batch_free(got);
    free(z);
}

static void test_decode_over_raw_cap_fails_with_emsgsize(void **state)
{
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len;

    (void)state;
    fixture_init(&f);
    assert_int_equal(wire_batch_encode(&f.b, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, 100, &got, err,
                                       sizeof(err)), -EMSGSIZE);
    assert_string_equal(err, "inflate: output over 100 bytes");
    assert_null(got);
    free(z);
}

static void test_decode_of_corrupt_zlib_fails_with_ebadmsg(void **state)
{
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";

    (void)state;
    assert_int_equal(wire_batch_decode((const uint8_t *)"not zlib", 8,
                                       WIRE_MAX_RAW, &got, err, sizeof(err)),
                     -EBADMSG);
    assert_string_equal(err, "inflate: not a valid zlib stream");
    assert_null(got);
}

static void test_decode_of_valid_zlib_with_invalid_protobuf_fails(void **state)
{
    static const uint8_t bad[][4] = {
        { 0xff, 0xff, 0xff, 0xff },     /* unterminated varint key */
        { 0x0a, 0x10, 'a', 'b' },       /* cluster longer than the body */
        { 0x0d, 0x00, 0x00, 0x00 },     /* cluster as a 32-bit field */
        { 0x0b, 0x00, 0x00, 0x00 },     /* a group: never in proto3 */
    };
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN];
    uint8_t *z;
    size_t z_len, i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(wire_deflate(bad[i], 4, &z, &z_len), 0);
        err[0] = '\0';
        assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got,
                                           err, sizeof(err)), -EBADMSG);
        assert_string_equal(err, "protobuf: cannot unpack");
        assert_null(got);
        free(z);
    }
}

static void test_decode_reports_the_validation_reason(void **state)
{
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len;

    (void)state;
    fixture_init(&f);
    f.ev[3].seq = 6;
    assert_int_equal(wire_batch_encode(&f.b, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), -EINVAL);
    assert_string_equal(err, "events[3]: seq 6 not after 7");
    assert_null(got);
    free(z);
}

static void test_nul_inside_a_string_fails_decode(void **state)
{
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *raw, *z, *at;
    size_t n, z_len;

    (void)state;
    fixture_init(&f);
    f.probe.target = "api.eu.example.com/hea@lthz";
    n = sextant__v1__batch__get_packed_size(&f.b);
    raw = malloc(n);
    assert_non_null(raw);
    sextant__v1__batch__pack(&f.b, raw);
    at = memmem(raw, n, "hea@", 4);
    assert_non_null(at);
    at[3] = '\0';                   /* unpack would cut it to "...hea" */
    assert_int_equal(wire_deflate(raw, n, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), -EINVAL);
    assert_string_equal(err,
                        "sextant.v1.ProbeResult.target: NUL byte in string");
    assert_null(got);
    free(raw);
    free(z);
}

static void test_too_many_events_on_the_wire_fail_before_unpack(void **state)
{
    struct fixture f;
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    struct wire_buf *bufs;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *packed, *z;
    size_t n = WIRE_MAX_EVENTS + 1, len, z_len, i;

    (void)state;
    fixture_init(&f);
    ev.seq = 5;
    ev.unix_ms = T0;
    assert_int_equal(wire_event_pack(&ev, &packed, &len), 0);
    bufs = calloc(n, sizeof(*bufs));
    assert_non_null(bufs);
    for (i = 0; i < n; i++) {
        bufs[i].data = packed;
        bufs[i].len = len;
    }
    assert_int_equal(wire_batch_encode_packed(&f.b, bufs, n, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), -EMSGSIZE);
    assert_string_equal(err, "events: over 10000");
    assert_null(got);
    free(bufs);
    free(packed);
    free(z);
}

/* ---- forward compatibility ---- */

static void test_unknown_field_in_batch_is_accepted(void **state)
{
    static const uint8_t field99[] = { 0x98, 0x06, 0x01 };  /* 99: 1 */
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len;

    (void)state;
    fixture_init(&f);
    pack_with_tail(&f.b, field99, sizeof(field99), &z, &z_len);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    assert_int_equal(got->base.n_unknown_fields, 1);
    assert_int_equal(got->base.unknown_fields[0].tag, 99);
    assert_int_equal(got->n_events, 6);
    wire_batch_free(got);
    free(z);
}

static void test_too_many_unknown_fields_fail_before_unpack(void **state)
{
    uint8_t tail[3 * 65];
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len;

    (void)state;
    for (size_t i = 0; i < 65; i++) {       /* 65 times "99: 1" */
        tail[3 * i] = 0x98;
        tail[3 * i + 1] = 0x06;
        tail[3 * i + 2] = 0x01;
    }
    fixture_init(&f);
    pack_with_tail(&f.b, tail, sizeof(tail), &z, &z_len);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), -EMSGSIZE);
    assert_null(got);
    assert_non_null(strstr(err, "unknown fields"));
    free(z);
    /* 64 of them are still fine. */
    pack_with_tail(&f.b, tail, sizeof(tail) - 3, &z, &z_len);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    wire_batch_free(got);
    free(z);
}

/* An empty DnsAnswer is 2 bytes on the wire and far more in memory: a
 * long list of them must be refused while counting, not after unpack. */
static void test_long_nested_lists_fail_before_unpack(void **state)
{
    Sextant__V1__DnsAnswer empty = SEXTANT__V1__DNS_ANSWER__INIT;
    Sextant__V1__DnsAnswer **many;
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len;

    (void)state;
    many = calloc(100000, sizeof(*many));
    assert_non_null(many);
    for (size_t i = 0; i < 100000; i++)
        many[i] = &empty;
    fixture_init(&f);
    f.ev[EV_PROBE].probe->answers = many;
    f.ev[EV_PROBE].probe->n_answers = 100000;
    assert_int_equal(wire_batch_encode(&f.b, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), -EMSGSIZE);
    assert_null(got);
    assert_non_null(strstr(err, "answers: over 64 entries"));
    free(z);
    free(many);
}

static void test_unknown_field_in_event_is_accepted(void **state)
{
    static const uint8_t field99[] = { 0x98, 0x06, 0x01 };
    struct fixture f;
    struct wire_buf buf;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *packed, *z;
    size_t len, z_len;

    (void)state;
    fixture_init(&f);
    assert_int_equal(wire_event_pack(&f.ev[EV_PROBE], &packed, &len), 0);
    packed = realloc(packed, len + sizeof(field99));
    assert_non_null(packed);
    memcpy(packed + len, field99, sizeof(field99));
    buf.data = packed;
    buf.len = len + sizeof(field99);
    assert_int_equal(wire_batch_encode_packed(&f.b, &buf, 1, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    assert_int_equal(got->n_events, 1);
    assert_string_equal(wire_event_kind(got->events[0]), "probe");
    assert_int_equal(got->events[0]->base.n_unknown_fields, 1);
    wire_batch_free(got);
    free(packed);
    free(z);
}

static void test_event_of_unknown_kind_is_accepted_as_unknown(void **state)
{
    /* Field 40, length-delimited, holding a message { 1: 1 }: a kind a
     * newer agent knows and this build does not. */
    static const uint8_t field40[] = { 0xc2, 0x02, 0x02, 0x08, 0x01 };
    struct fixture f;
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    struct wire_buf buf;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *packed, *z;
    size_t len, z_len;

    (void)state;
    fixture_init(&f);
    ev.seq = 5;
    ev.unix_ms = T0;
    assert_int_equal(wire_event_pack(&ev, &packed, &len), 0);
    packed = realloc(packed, len + sizeof(field40));
    assert_non_null(packed);
    memcpy(packed + len, field40, sizeof(field40));
    buf.data = packed;
    buf.len = len + sizeof(field40);
    assert_int_equal(wire_batch_encode_packed(&f.b, &buf, 1, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    assert_int_equal(got->events[0]->kind_case,
                     SEXTANT__V1__EVENT__KIND__NOT_SET);
    assert_string_equal(wire_event_kind(got->events[0]), "unknown");
    assert_int_equal(got->events[0]->base.n_unknown_fields, 1);
    assert_int_equal(got->events[0]->base.unknown_fields[0].tag, 40);
    wire_batch_free(got);
    free(packed);
    free(z);
}

/* ---- validation ---- */

static void test_fixture_batch_is_valid(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    assert_valid(&f.b);
    f.b.drops = NULL;               /* drops are optional */
    f.state.from = SEXTANT__V1__HEALTH__HEALTH_UNKNOWN;
    assert_valid(&f.b);
    f.b.n_events = 0;               /* an empty batch carries drops/RTT */
    f.b.events = NULL;
    assert_valid(&f.b);
}

static void test_empty_cluster_region_or_node_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.b.cluster = "";
    assert_invalid(&f.b, -EINVAL, "cluster: empty");
    fixture_init(&f);
    f.b.region = NULL;
    assert_invalid(&f.b, -EINVAL, "region: empty");
    fixture_init(&f);
    f.b.node = "";
    assert_invalid(&f.b, -EINVAL, "node: empty");
}

static void test_zero_epoch_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.b.epoch = 0;
    assert_invalid(&f.b, -EINVAL, "epoch: zero");
}

static void test_seq_not_ascending_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.ev[2].seq = 6;                /* a duplicate */
    assert_invalid(&f.b, -EINVAL, "events[2]: seq 6 not after 6");
    fixture_init(&f);
    f.ev[4].seq = 3;                /* going back */
    assert_invalid(&f.b, -EINVAL, "events[4]: seq 3 not after 8");
    fixture_init(&f);
    f.ev[5].seq = 100;              /* a gap is fine: drops explain it */
    assert_valid(&f.b);
}

static void test_zero_seq_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.b.first_seq = 0;
    f.ev[0].seq = 0;
    assert_invalid(&f.b, -EINVAL, "events[0].seq: zero");
}

static void test_first_seq_mismatch_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.b.first_seq = 4;
    assert_invalid(&f.b, -EINVAL, "events[0]: seq 5 is not first_seq 4");
}

static void test_too_many_events_fails_with_emsgsize(void **state)
{
    struct fixture f;
    size_t n = WIRE_MAX_EVENTS + 1, i;
    Sextant__V1__Event *evs = calloc(n, sizeof(*evs));
    Sextant__V1__Event **evp = calloc(n, sizeof(*evp));

    (void)state;
    assert_non_null(evs);
    assert_non_null(evp);
    fixture_init(&f);
    for (i = 0; i < n; i++) {
        sextant__v1__event__init(&evs[i]);
        evs[i].seq = 5 + i;
        evs[i].unix_ms = T0;
        evp[i] = &evs[i];
    }
    f.b.events = evp;
    f.b.n_events = WIRE_MAX_EVENTS;
    assert_valid(&f.b);
    f.b.n_events = n;
    assert_invalid(&f.b, -EMSGSIZE, "events: 10001 events, over 10000");
    free(evs);
    free(evp);
}

static void test_over_long_string_fails_with_emsgsize(void **state)
{
    struct fixture f;
    char *s = malloc(WIRE_MAX_TEXT + 2);

    (void)state;
    assert_non_null(s);
    memset(s, 'x', WIRE_MAX_TEXT + 1);
    fixture_init(&f);
    s[WIRE_MAX_STR] = '\0';
    f.b.cluster = s;
    assert_valid(&f.b);             /* exactly at the cap */
    s[WIRE_MAX_STR] = 'x';
    s[WIRE_MAX_STR + 1] = '\0';
    assert_invalid(&f.b, -EMSGSIZE, "cluster: over 1024 bytes");
    fixture_init(&f);
    f.dns.new_answers[0]->value = s;
    assert_invalid(&f.b, -EMSGSIZE,
                   "events[2].dns.new_answers[0].value: over 1024 bytes");
    fixture_init(&f);
    f.label[1].value = s;
    assert_invalid(&f.b, -EMSGSIZE,
                   "events[3].metric.labels[1].value: over 1024 bytes");
    free(s);
}

static void test_over_long_free_text_fails_with_emsgsize(void **state)
{
    struct fixture f;
    char *s = malloc(WIRE_MAX_TEXT + 2);

    (void)state;
    assert_non_null(s);
    memset(s, 'x', WIRE_MAX_TEXT + 1);
    s[WIRE_MAX_TEXT] = '\0';
    fixture_init(&f);
    f.probe.error = s;
    f.state.reason = s;
    f.failover.text = s;
    f.life.detail = s;
    assert_valid(&f.b);             /* free text may be 8 KiB */
    s[WIRE_MAX_TEXT] = 'x';
    s[WIRE_MAX_TEXT + 1] = '\0';
    assert_invalid(&f.b, -EMSGSIZE, "events[0].probe.error: over 8192 bytes");
    f.probe.error = "";
    assert_invalid(&f.b, -EMSGSIZE, "events[1].state.reason: over 8192 bytes");
    f.state.reason = "";
    assert_invalid(&f.b, -EMSGSIZE,
                   "events[4].failover.text: over 8192 bytes");
    f.failover.text = "";
    assert_invalid(&f.b, -EMSGSIZE,
                   "events[5].lifecycle.detail: over 8192 bytes");
    free(s);
}

static void test_invalid_utf8_fails_validation(void **state)
{
    static const char *bad[] = {
        "\xff",                     /* never a UTF-8 byte */
        "ok\x80",                   /* lone continuation byte */
        "\xc0\xaf",                 /* overlong '/' */
        "\xe0\x80\xaf",             /* overlong, three bytes */
        "\xed\xa0\x80",             /* UTF-16 surrogate */
        "\xf4\x90\x80\x80",         /* past U+10FFFF */
        "\xe2\x82",                 /* cut short */
        "\xe2\x28\xa1",             /* bad continuation */
    };
    struct fixture f;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture_init(&f);
        f.failover.text = (char *)bad[i];
        assert_invalid(&f.b, -EINVAL,
                       "events[4].failover.text: not valid UTF-8");
        fixture_init(&f);
        f.b.node = (char *)bad[i];
        assert_invalid(&f.b, -EINVAL, "node: not valid UTF-8");
    }
}

static void test_valid_multibyte_utf8_passes_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.b.node = "Zürich-東京-\xf0\x9f\x9a\x80-\xf4\x8f\xbf\xbf";
    f.failover.text = "Ünïcödé – “quoted” \xef\xbf\xbd";
    assert_valid(&f.b);
}

/* Sets identifier @i of @f to @v; returns the field's name as
 * validation words it. */
static const char *fixture_set_name(struct fixture *f, size_t i,
                                    const char *v)
{
    const struct {
        char **slot;
        const char *field;
    } names[] = {
        { &f->b.cluster, "cluster" },
        { &f->b.region, "region" },
        { &f->b.node, "node" },
        { &f->probe.target, "events[0].probe.target" },
        { &f->state.target, "events[1].state.target" },
        { &f->dns.name, "events[2].dns.name" },
        { &f->dns.target, "events[2].dns.target" },
        { &f->metric.name, "events[3].metric.name" },
        { &f->metric.target, "events[3].metric.target" },
        { &f->label[0].name, "events[3].metric.labels[0].name" },
        { &f->failover.kind, "events[4].failover.kind" },
        { &f->failover.from_region, "events[4].failover.from_region" },
        { &f->failover.to_region, "events[4].failover.to_region" },
    };

    assert_true(i < sizeof(names) / sizeof(names[0]));
    *names[i].slot = (char *)v;
    return names[i].field;
}
#define FIXTURE_NAMES 13

static void test_control_character_in_a_name_fails_validation(void **state)
{
    static const char *bad[] = {
        "web\nadmin",              /* a forged second log line */
        "web\r",
        "\x1b[31mred",              /* a terminal escape */
        "tab\there",
        "del\x7f",
        "nel\xc2\x85",             /* U+0085, a C1 control */
        "csi\xc2\x9b",             /* U+009B, the other terminal escape */
    };
    struct fixture f;
    char want[96];
    const char *field;
    size_t i, j;

    (void)state;
    for (i = 0; i < FIXTURE_NAMES; i++) {
        for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            fixture_init(&f);
            field = fixture_set_name(&f, i, bad[j]);
            snprintf(want, sizeof(want), "%s: holds a control character",
                     field);
            assert_invalid(&f.b, -EINVAL, want);
        }
    }
}

static void test_printable_names_and_free_text_with_breaks_pass(void **state)
{
    struct fixture f;
    size_t i;

    (void)state;
    for (i = 0; i < FIXTURE_NAMES; i++) {
        fixture_init(&f);
        fixture_set_name(&f, i, "Zürich \xc2\xa0nbsp ~!\"#$%&'()*+,-./");
        assert_valid(&f.b);
    }
    /* Free text may hold line breaks and tabs: it is shown, not parsed. */
    fixture_init(&f);
    f.probe.error = "line 1\nline 2\tend\r";
    f.state.reason = "first\nsecond";
    f.failover.text = "step 1\nstep 2";
    f.life.detail = "a\x1b[0mb";
    f.label[0].value = "v\nw";
    assert_valid(&f.b);
}

static void test_name_check_tells_control_from_not_utf8(void **state)
{
    (void)state;
    assert_int_equal(wire_name_check("eu-west-1", 9), 0);
    assert_int_equal(wire_name_check("", 0), 0);
    assert_int_equal(wire_name_check("a\0b", 3), -EINVAL);
    assert_int_equal(wire_name_check("a\nb", 3), -EINVAL);
    assert_int_equal(wire_name_check("\xc2\x9f", 2), -EINVAL);
    assert_int_equal(wire_name_check("\xc2\xa0", 2), 0);
    assert_int_equal(wire_name_check("\xff", 1), -EILSEQ);
    assert_int_equal(wire_name_check("\xc3", 1), -EILSEQ);  /* cut short */
    assert_int_equal(util_utf8_char((const unsigned char *)"\xf0\x9f\x98\x80",
                                    4, NULL), 4);
    assert_int_equal(util_utf8_char((const unsigned char *)"\xf0\x9f\x98\x80",
                                    3, NULL), 0);
    assert_int_equal(util_utf8_char((const unsigned char *)"x", 0, NULL), 0);
}

static void test_unknown_probe_type_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.probe.type = (Sextant__V1__ProbeType)99;
    assert_invalid(&f.b, -EINVAL,
                   "events[0].probe.type: 99 is not a known ProbeType");
    f.probe.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_UNSPECIFIED;
    assert_invalid(&f.b, -EINVAL,
                   "events[0].probe.type: 0 is not a known ProbeType");
    f.probe.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_KUBE;
    assert_valid(&f.b);
}

static void test_unknown_health_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.state.to = (Sextant__V1__Health)7;
    assert_invalid(&f.b, -EINVAL,
                   "events[1].state.to: 7 is not a known Health");
    fixture_init(&f);
    f.state.from = (Sextant__V1__Health)-1;
    assert_invalid(&f.b, -EINVAL,
                   "events[1].state.from: -1 is not a known Health");
}

static void test_unknown_lifecycle_phase_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.life.phase = SEXTANT__V1__LIFECYCLE_PHASE__LIFECYCLE_PHASE_UNSPECIFIED;
    assert_invalid(&f.b, -EINVAL, "events[5].lifecycle.phase: 0 is not a "
                   "known LifecyclePhase");
    f.life.phase = (Sextant__V1__LifecyclePhase)4;
    assert_invalid(&f.b, -EINVAL, "events[5].lifecycle.phase: 4 is not a "
                   "known LifecyclePhase");
}

static void test_bad_dns_answer_type_fails_validation(void **state)
{
    static const char *bad[] = { "MX", "a", "", "AAAA " };
    struct fixture f;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture_init(&f);
        f.ans[2].type = (char *)bad[i];
        assert_invalid(&f.b, -EINVAL, "events[2].dns.new_answers[1].type: "
                       "not A, AAAA or CNAME");
    }
    fixture_init(&f);
    f.ans[0].value = "";
    assert_invalid(&f.b, -EINVAL, "events[2].dns.old_answers[0].value: empty");
}

static void test_too_many_dns_answers_fails_with_emsgsize(void **state)
{
    Sextant__V1__DnsAnswer *many[WIRE_MAX_ANSWERS + 1];
    struct fixture f;
    size_t i;

    (void)state;
    fixture_init(&f);
    for (i = 0; i <= WIRE_MAX_ANSWERS; i++)
        many[i] = &f.ans[0];
    f.dns.old_answers = many;
    f.dns.n_old_answers = WIRE_MAX_ANSWERS;
    assert_valid(&f.b);
    f.dns.n_old_answers = WIRE_MAX_ANSWERS + 1;
    assert_invalid(&f.b, -EMSGSIZE,
                   "events[2].dns.old_answers: 65 answers, over 64");
}

static void test_too_many_labels_fails_with_emsgsize(void **state)
{
    Sextant__V1__Label *many[WIRE_MAX_LABELS + 1];
    struct fixture f;
    size_t i;

    (void)state;
    fixture_init(&f);
    for (i = 0; i <= WIRE_MAX_LABELS; i++)
        many[i] = &f.label[0];
    f.metric.labels = many;
    f.metric.n_labels = WIRE_MAX_LABELS;
    assert_valid(&f.b);
    f.metric.n_labels = WIRE_MAX_LABELS + 1;
    assert_invalid(&f.b, -EMSGSIZE,
                   "events[3].metric.labels: 33 labels, over 32");
}

static void test_empty_label_name_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.label[1].name = "";
    assert_invalid(&f.b, -EINVAL, "events[3].metric.labels[1].name: empty");
    fixture_init(&f);
    f.label[1].value = "";          /* an empty value is a value */
    assert_valid(&f.b);
}

static void test_empty_required_event_field_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.probe.target = "";
    assert_invalid(&f.b, -EINVAL, "events[0].probe.target: empty");
    fixture_init(&f);
    f.state.target = NULL;
    assert_invalid(&f.b, -EINVAL, "events[1].state.target: empty");
    fixture_init(&f);
    f.dns.name = "";
    assert_invalid(&f.b, -EINVAL, "events[2].dns.name: empty");
    fixture_init(&f);
    f.metric.name = "";
    assert_invalid(&f.b, -EINVAL, "events[3].metric.name: empty");
    fixture_init(&f);
    f.failover.kind = "";
    assert_invalid(&f.b, -EINVAL, "events[4].failover.kind: empty");
    fixture_init(&f);
    f.ev[EV_DNS].dns = NULL;
    assert_invalid(&f.b, -EINVAL, "events[2].dns: missing");
}

static void test_time_out_of_range_fails_validation(void **state)
{
    static const int64_t bad[] = { 0, -1, 946684799999LL, 4102444800001LL,
                                   INT64_MAX };
    struct fixture f;
    size_t i;
    char want[WIRE_ERR_LEN];

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture_init(&f);
        f.ev[1].unix_ms = bad[i];
        snprintf(want, sizeof(want),
                 "events[1].unix_ms: %lld not in years 2000-2100",
                 (long long)bad[i]);
        assert_invalid(&f.b, -EINVAL, want);
    }
    fixture_init(&f);
    f.ev[0].unix_ms = 946684800000LL;
    f.ev[1].unix_ms = 4102444800000LL;  /* both ends are inside */
    assert_valid(&f.b);
}

static void test_drops_with_first_after_last_fails_validation(void **state)
{
    struct fixture f;

    (void)state;
    fixture_init(&f);
    f.drops.first_seq = 9;
    assert_invalid(&f.b, -EINVAL, "drops: first_seq 9 after last_seq 4");
    f.drops.count = 0;              /* nothing dropped: ranges unused */
    assert_valid(&f.b);
}

/* ---- packed events ---- */

static void test_encode_packed_decodes_like_normal_encode(void **state)
{
    struct fixture f;
    struct wire_buf bufs[6];
    uint8_t *packed[6], *z1, *z2;
    Sextant__V1__Batch *a = NULL, *b = NULL;
    char err[WIRE_ERR_LEN] = "";
    size_t i, z1_len, z2_len;

    (void)state;
    fixture_init(&f);
    for (i = 0; i < 6; i++) {
        assert_int_equal(wire_event_pack(&f.ev[i], &packed[i], &bufs[i].len),
                         0);
        bufs[i].data = packed[i];
    }
    assert_int_equal(wire_batch_encode(&f.b, &z1, &z1_len), 0);
    /* hdr still holds its events: they must be ignored, not doubled. */
    assert_int_equal(wire_batch_encode_packed(&f.b, bufs, 6, &z2, &z2_len),
                     0);
    assert_int_equal(wire_batch_decode(z1, z1_len, WIRE_MAX_RAW, &a, err,
                                       sizeof(err)), 0);
    assert_int_equal(wire_batch_decode(z2, z2_len, WIRE_MAX_RAW, &b, err,
                                       sizeof(err)), 0);
    assert_int_equal(b->n_events, 6);
    assert_same_batch(a, b);
    assert_same_batch(&f.b, b);
    wire_batch_free(a);
    wire_batch_free(b);
    for (i = 0; i < 6; i++)
        free(packed[i]);
    free(z1);
    free(z2);
}

static void test_encode_packed_with_no_events_is_the_header(void **state)
{
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t z_len;

    (void)state;
    fixture_init(&f);
    assert_int_equal(wire_batch_encode_packed(&f.b, NULL, 0, &z, &z_len), 0);
    assert_int_equal(wire_batch_decode(z, z_len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    assert_int_equal(got->n_events, 0);
    assert_string_equal(got->node, "node-7");
    assert_int_equal(got->prev_rtt_us, 1234);
    wire_batch_free(got);
    free(z);
}

/* ---- ack, kinds, free ---- */

static void test_ack_roundtrips(void **state)
{
    Sextant__V1__Ack a = SEXTANT__V1__ACK__INIT, got;
    uint8_t *buf;
    size_t len;

    (void)state;
    a.epoch = 0xfedcba9876543210ULL;
    a.acked_seq = 42;
    a.received_unix_ms = T0;
    assert_int_equal(wire_ack_encode(&a, &buf, &len), 0);
    assert_int_equal(wire_ack_decode(buf, len, &got), 0);
    assert_int_equal(got.epoch, a.epoch);
    assert_int_equal(got.acked_seq, 42);
    assert_int_equal(got.received_unix_ms, T0);
    assert_int_equal(got.base.n_unknown_fields, 0);
    free(buf);

    sextant__v1__ack__init(&a);     /* all zero packs to nothing */
    assert_int_equal(wire_ack_encode(&a, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(wire_ack_decode(buf, len, &got), 0);
    assert_int_equal(got.acked_seq, 0);
    free(buf);
}

static void test_garbage_ack_fails_with_ebadmsg(void **state)
{
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff };
    static const uint8_t short64[] = { 0x09, 0x01, 0x02 };   /* epoch cut */
    static const uint8_t wrong_type[] = { 0x0a, 0x00 };      /* as bytes */
    Sextant__V1__Ack got = SEXTANT__V1__ACK__INIT;

    (void)state;
    got.acked_seq = 77;
    assert_int_equal(wire_ack_decode(garbage, sizeof(garbage), &got),
                     -EBADMSG);
    assert_int_equal(wire_ack_decode(short64, sizeof(short64), &got),
                     -EBADMSG);
    assert_int_equal(wire_ack_decode(wrong_type, sizeof(wrong_type), &got),
                     -EBADMSG);
    assert_int_equal(got.acked_seq, 77);    /* untouched on failure */
}

static void test_event_kind_names_every_kind(void **state)
{
    struct fixture f;
    Sextant__V1__Event none = SEXTANT__V1__EVENT__INIT;

    (void)state;
    fixture_init(&f);
    assert_string_equal(wire_event_kind(&f.ev[EV_PROBE]), "probe");
    assert_string_equal(wire_event_kind(&f.ev[EV_STATE]), "state");
    assert_string_equal(wire_event_kind(&f.ev[EV_DNS]), "dns");
    assert_string_equal(wire_event_kind(&f.ev[EV_METRIC]), "metric");
    assert_string_equal(wire_event_kind(&f.ev[EV_FAILOVER]), "failover");
    assert_string_equal(wire_event_kind(&f.ev[EV_LIFE]), "lifecycle");
    assert_string_equal(wire_event_kind(&none), "unknown");
}

static void test_batch_free_of_null_is_a_noop(void **state)
{
    (void)state;
    wire_batch_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deflate_then_inflate_returns_the_input),
        cmocka_unit_test(test_inflate_of_empty_input_fails_with_ebadmsg),
        cmocka_unit_test(test_inflate_of_truncated_stream_fails_with_ebadmsg),
        cmocka_unit_test(test_inflate_of_corrupt_stream_fails_with_ebadmsg),
        cmocka_unit_test(test_inflate_with_bad_zlib_header_fails_with_ebadmsg),
        cmocka_unit_test(test_inflate_over_cap_fails_with_emsgsize),
        cmocka_unit_test(test_inflate_output_exactly_at_cap_succeeds),
        cmocka_unit_test(test_inflate_with_trailing_garbage_fails_with_ebadmsg),
        cmocka_unit_test(test_batch_with_every_event_kind_roundtrips),
        cmocka_unit_test(test_decode_over_raw_cap_fails_with_emsgsize),
        cmocka_unit_test(test_decode_of_corrupt_zlib_fails_with_ebadmsg),
        cmocka_unit_test(test_decode_of_valid_zlib_with_invalid_protobuf_fails),
        cmocka_unit_test(test_decode_reports_the_validation_reason),
        cmocka_unit_test(test_nul_inside_a_string_fails_decode),
        cmocka_unit_test(test_too_many_events_on_the_wire_fail_before_unpack),
        cmocka_unit_test(test_unknown_field_in_batch_is_accepted),
        cmocka_unit_test(test_unknown_field_in_event_is_accepted),
        cmocka_unit_test(test_too_many_unknown_fields_fail_before_unpack),
        cmocka_unit_test(test_long_nested_lists_fail_before_unpack),
        cmocka_unit_test(test_event_of_unknown_kind_is_accepted_as_unknown),
        cmocka_unit_test(test_fixture_batch_is_valid),
        cmocka_unit_test(test_empty_cluster_region_or_node_fails_validation),
        cmocka_unit_test(test_zero_epoch_fails_validation),
        cmocka_unit_test(test_seq_not_ascending_fails_validation),
        cmocka_unit_test(test_zero_seq_fails_validation),
        cmocka_unit_test(test_first_seq_mismatch_fails_validation),
        cmocka_unit_test(test_too_many_events_fails_with_emsgsize),
        cmocka_unit_test(test_over_long_string_fails_with_emsgsize),
        cmocka_unit_test(test_over_long_free_text_fails_with_emsgsize),
        cmocka_unit_test(test_invalid_utf8_fails_validation),
        cmocka_unit_test(test_valid_multibyte_utf8_passes_validation),
        cmocka_unit_test(test_control_character_in_a_name_fails_validation),
        cmocka_unit_test(test_printable_names_and_free_text_with_breaks_pass),
        cmocka_unit_test(test_name_check_tells_control_from_not_utf8),
        cmocka_unit_test(test_unknown_probe_type_fails_validation),
        cmocka_unit_test(test_unknown_health_fails_validation),
        cmocka_unit_test(test_unknown_lifecycle_phase_fails_validation),
        cmocka_unit_test(test_bad_dns_answer_type_fails_validation),
        cmocka_unit_test(test_too_many_dns_answers_fails_with_emsgsize),
        cmocka_unit_test(test_too_many_labels_fails_with_emsgsize),
        cmocka_unit_test(test_empty_label_name_fails_validation),
        cmocka_unit_test(test_empty_required_event_field_fails_validation),
        cmocka_unit_test(test_time_out_of_range_fails_validation),
        cmocka_unit_test(test_drops_with_first_after_last_fails_validation),
        cmocka_unit_test(test_encode_packed_decodes_like_normal_encode),
        cmocka_unit_test(test_encode_packed_with_no_events_is_the_header),
        cmocka_unit_test(test_ack_roundtrips),
        cmocka_unit_test(test_garbage_ack_fails_with_ebadmsg),
        cmocka_unit_test(test_event_kind_names_every_kind),
        cmocka_unit_test(test_batch_free_of_null_is_a_noop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
