/* test_wire_validate.c -- unit tests of wire_batch_validate() in
 * proto/wire.c: every rule a decoded batch must pass (names, seqs,
 * sizes, UTF-8 and control characters, enum values, required fields,
 * time range, drops), with the reason it reports. The batch is the
 * shared one in wire_test.c. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
