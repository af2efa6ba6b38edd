/* test_wire.c -- unit tests of proto/wire.c: zlib with a cap, batch
 * encode/decode, forward compatibility, packed events, acks. Every byte
 * string the collector could be sent is built here; the validation
 * rules are in test_wire_validate.c, the shared batch in wire_test.c. */
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
#include "wire_test.h"

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

/* Encodes an Ack listing @names (@n of them) with @hash, and reads its
 * list back with wire_ack_live(): its rc. */
static int ack_live_of(char **names, size_t n, uint64_t hash, char ***out,
                       size_t *n_out, uint64_t *hash_out)
{
    Sextant__V1__Ack a = SEXTANT__V1__ACK__INIT;
    uint8_t *buf;
    size_t len;
    int rc;

    a.epoch = 1;
    a.live_nodes = names;
    a.n_live_nodes = n;
    a.live_nodes_hash = hash;
    assert_int_equal(wire_ack_encode(&a, &buf, &len), 0);
    rc = wire_ack_live(buf, len, out, n_out, hash_out);
    free(buf);
    return rc;
}

static void test_ack_live_nodes_roundtrip(void **state)
{
    char *names[3] = { "node-a", "node-b", "n\303\266de-c" };
    char **got = NULL;
    size_t n = 99;
    uint64_t h = 0;

    (void)state;
    assert_int_equal(ack_live_of(names, 3, 0x1234, &got, &n, &h), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h, 0x1234);
    assert_string_equal(got[0], "node-a");
    assert_string_equal(got[2], "n\303\266de-c");
    free(got);
    /* An older collector's Ack: no list, no hash. */
    assert_int_equal(ack_live_of(NULL, 0, 0, &got, &n, &h), 0);
    assert_int_equal(n, 0);
    assert_null(got);
    assert_int_equal(h, 0);
}

static void test_ack_live_nodes_bad_lists_are_refused(void **state)
{
    char long_name[WIRE_MAX_NODE + 2];
    char *unsorted[2] = { "b", "a" }, *dup[2] = { "a", "a" };
    char *ctl[1] = { "a\nb" }, *empty[1] = { "" }, *longn[1] = { long_name };
    char *many[WIRE_MAX_LIVE + 1], bufs[WIRE_MAX_LIVE + 1][8];
    char **got = NULL;
    size_t n = 7;
    uint64_t h = 7;

    (void)state;
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    for (size_t i = 0; i <= WIRE_MAX_LIVE; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "%05zu", i);
        many[i] = bufs[i];
    }
    assert_int_equal(ack_live_of(unsorted, 2, 9, &got, &n, &h), -EINVAL);
    assert_int_equal(ack_live_of(dup, 2, 9, &got, &n, &h), -EINVAL);
    assert_int_equal(ack_live_of(ctl, 1, 9, &got, &n, &h), -EINVAL);
    assert_int_equal(ack_live_of(empty, 1, 9, &got, &n, &h), -EINVAL);
    assert_int_equal(ack_live_of(longn, 1, 9, &got, &n, &h), -EMSGSIZE);
    assert_int_equal(ack_live_of(many, WIRE_MAX_LIVE + 1, 9, &got, &n, &h),
                     -EMSGSIZE);
    assert_int_equal(ack_live_of(many, WIRE_MAX_LIVE, 9, &got, &n, &h), 0);
    assert_int_equal(n, WIRE_MAX_LIVE);
    free(got);
    n = 7;
    assert_int_equal(wire_ack_live((const uint8_t *)"\xff\xff", 2, &got,
                                   &n, &h), -EBADMSG);
    assert_int_equal(n, 7);             /* untouched on failure */
}

static void test_batch_live_nodes_hash_roundtrips(void **state)
{
    struct fixture f;
    Sextant__V1__Batch *got = NULL;
    char err[WIRE_ERR_LEN] = "";
    uint8_t *z;
    size_t len;

    (void)state;
    fixture_init(&f);
    f.b.live_nodes_hash = 0xfeedface12345678ull;
    assert_int_equal(wire_batch_encode(&f.b, &z, &len), 0);
    assert_int_equal(wire_batch_decode(z, len, WIRE_MAX_RAW, &got, err,
                                       sizeof(err)), 0);
    assert_true(got->live_nodes_hash == 0xfeedface12345678ull);
    wire_batch_free(got);
    free(z);
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

static void test_operator_events_other_than_failovers_are_markers(void **state)
{
    static const char *const kinds[][2] = {
        { "failover", "failover" }, { "manual", "failover" },
        { "deploy", "marker" }, { "drill", "marker" },
        { "Failover", "marker" }, { "", "marker" },
    };
    struct fixture f;

    (void)state;
    fixture_init(&f);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        f.failover.kind = (char *)kinds[i][0];
        assert_string_equal(wire_event_kind(&f.ev[EV_FAILOVER]),
                            kinds[i][1]);
    }
}

static void test_failover_service_is_validated(void **state)
{
    struct fixture f;
    char err[WIRE_ERR_LEN] = "";

    (void)state;
    fixture_init(&f);
    f.failover.service = "shop";
    assert_int_equal(wire_batch_validate(&f.b, err, sizeof(err)), 0);
    f.failover.service = "shop\nFAKE";
    assert_int_equal(wire_batch_validate(&f.b, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "failover.service"));
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
        cmocka_unit_test(test_encode_packed_decodes_like_normal_encode),
        cmocka_unit_test(test_encode_packed_with_no_events_is_the_header),
        cmocka_unit_test(test_ack_roundtrips),
        cmocka_unit_test(test_garbage_ack_fails_with_ebadmsg),
        cmocka_unit_test(test_ack_live_nodes_roundtrip),
        cmocka_unit_test(test_ack_live_nodes_bad_lists_are_refused),
        cmocka_unit_test(test_batch_live_nodes_hash_roundtrips),
        cmocka_unit_test(test_event_kind_names_every_kind),
        cmocka_unit_test(test_operator_events_other_than_failovers_are_markers),
        cmocka_unit_test(test_failover_service_is_validated),
        cmocka_unit_test(test_batch_free_of_null_is_a_noop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
