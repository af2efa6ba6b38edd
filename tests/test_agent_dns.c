/* test_agent_dns.c -- the DNS answer watch against a real dnsmasq that the
 * test starts on a free loopback port and rewires (hosts file + SIGHUP,
 * or a restart for a new TTL), and against a silent and a closed UDP
 * port: answers, failures, answer changes, and the loop's side (fds,
 * cancel). Hostile replies and configuration errors are in
 * test_agent_dns_input.c; the fixture, which stops every process it
 * started also after a failed test, is tests/dns_test.c. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_dns.h"
#include "util.h"
#include "wire.h"
#include "dns_test.h"

/* ---- answers ---- */

static void test_a_answers_are_sorted_with_their_ttl(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "multi.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n_extra, 0);         /* the first run: baseline */
    assert_true(r.t.dns_us > 0);
    assert_int_equal(r.t.total_us, r.t.dns_us);
    /* Numeric order, whatever order dnsmasq (which rotates) sent. */
    assert_state(st, "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_aaaa_answers_and_nodata(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "v6.global.test", "    record: AAAA\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "AAAA ::1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* The default record is A, which v6 has not: a failure, no baseline. */
    st = NULL;
    load_one(&cfg, "v6.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "no A records (NODATA)");
    assert_state(st, "");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_any_merges_a_and_aaaa(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "dual.global.test", "    record: any\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, AAAA ::1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* An IPv4-only name: the AAAA half is NODATA, which is fine. */
    st = NULL;
    load_one(&cfg, "multi.global.test", "    record: ANY\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_cname_chain_is_part_of_the_answer(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "www.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, CNAME app.global.test ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    st = NULL;
    load_one(&cfg, "www.global.test.", "    record: CNAME\n"
                                       "    expect: App.Global.Test.\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "CNAME app.global.test ttl 30");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* A name with addresses but no CNAME. */
    st = NULL;
    load_one(&cfg, "app.global.test", "    record: CNAME\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "no CNAME records (NODATA)");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

/* ---- failures ---- */

static void test_nxdomain_and_refused_are_failures(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    load_one(&cfg, "missing.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "NXDOMAIN");  /* an answer, no timeout */
    assert_true(r.t.total_us > 0);
    assert_int_equal(r.n_extra, 0);
    assert_state(st, "");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* dnsmasq has no upstream for names outside global.test. */
    st = NULL;
    load_one(&cfg, "elsewhere.example", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "REFUSED");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    /* With ANY the error names the half that failed first. */
    st = NULL;
    load_one(&cfg, "missing.global.test", "    record: ANY\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "A: NXDOMAIN");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_silent_resolver_times_out_within_the_timeout(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    char err[512];
    void *st = NULL;

    (void)state;
    assert_int_equal(load_cfg(&cfg, err, sizeof(err),
                              "  - name: dead\n"
                              "    type: dns\n"
                              "    query: app.global.test\n"
                              "    resolver: 127.0.0.1:%u\n"
                              "    timeout: 300ms\n", silent_port),
                     0);
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "timeout after 300 ms");
    assert_true(r.t.total_us >= 299000);
    /* The error says the probe's own 300 ms timer ended it; this bound,
     * 10x that, only catches a probe that waits on regardless (a second
     * try, a library's 5 s default). A loaded machine may be late. */
    assert_true(r.t.total_us < 10 * 300000);
    assert_int_equal(r.t.dns_us, r.t.total_us);
    assert_state(st, "");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_closed_port_fails_fast_as_refused(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    char err[512];
    void *st = NULL;
    unsigned port = free_port();            /* nobody listens there */

    (void)state;
    assert_true(port > 0);
    assert_int_equal(load_cfg(&cfg, err, sizeof(err),
                              "  - name: closed\n"
                              "    type: dns\n"
                              "    query: app.global.test\n"
                              "    resolver: 127.0.0.1:%u\n"
                              "    timeout: 3s\n", port), 0);
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    /* ICMP, not the timeout: that would read "timeout after 3000 ms". */
    assert_string_equal(r.error, "connection refused");
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

/* ---- answer changes ---- */

/* Asserts @ev is a DnsChange of target "flip" from A @old to A @new with
 * TTL @ttl, and that it survives the wire as the collector decodes it. */
static void assert_change(Sextant__V1__Event *ev, const char *old,
                          const char *new, unsigned ttl)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Batch *got = NULL;
    Sextant__V1__DnsChange *d;
    char cl[] = "c1", rg[] = "eu-west-1", nd[] = "n1", ver[] = "test";
    char err[WIRE_ERR_LEN];
    uint8_t *z = NULL;
    size_t zlen = 0;

    assert_int_equal(ev->kind_case, SEXTANT__V1__EVENT__KIND_DNS);
    assert_int_equal(ev->unix_ms, 0);       /* the loop stamps it */
    for (int pass = 0; pass < 2; pass++) {
        d = pass == 0 ? ev->dns : got->events[0]->dns;
        assert_string_equal(d->name, "flip.global.test");
        assert_string_equal(d->target, "flip");
        assert_int_equal(d->n_old_answers, 1);
        assert_int_equal(d->n_new_answers, 1);
        assert_string_equal(d->old_answers[0]->type, "A");
        assert_string_equal(d->old_answers[0]->value, old);
        assert_int_equal(d->old_answers[0]->ttl, ttl);
        assert_string_equal(d->new_answers[0]->type, "A");
        assert_string_equal(d->new_answers[0]->value, new);
        assert_int_equal(d->new_answers[0]->ttl, ttl);
        if (pass == 1)
            break;
        b.cluster = cl;
        b.region = rg;
        b.node = nd;
        b.agent_version = ver;
        b.epoch = 42;
        b.first_seq = 1;
        b.n_events = 1;
        b.events = &ev;
        ev->seq = 1;
        ev->unix_ms = util_now_ms();
        assert_int_equal(wire_batch_encode(&b, &z, &zlen), 0);
        if (wire_batch_decode(z, zlen, WIRE_MAX_RAW, &got, err,
                              sizeof(err)) != 0)
            fail_msg("collector would refuse the change: %s", err);
    }
    wire_batch_free(got);
    free(z);
}

static void test_change_is_reported_after_the_baseline(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);         /* baseline, not a change */
    run_one(&cfg.targets[0], &st, &r);
    assert_int_equal(r.n_extra, 0);         /* same answer */

    set_flip("127.0.2.1 flip.global.test\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    assert_change(r.extra[0], "127.0.1.1", "127.0.2.1", BASE_TTL);
    probe_result_clear(&r);
    assert_state(st, "A 127.0.2.1 ttl 30");

    run_one(&cfg.targets[0], &st, &r);      /* the new answer is the base */
    assert_int_equal(r.n_extra, 0);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_failure_is_not_a_change_and_keeps_the_baseline(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);

    set_flip("");                           /* NXDOMAIN */
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "NXDOMAIN");
    assert_int_equal(r.n_extra, 0);
    assert_state(st, "A 127.0.1.1 ttl 30");

    set_flip("127.0.1.1 flip.global.test\n");   /* back as it was */
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);

    set_flip("");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    set_flip("127.0.2.1 flip.global.test\n");   /* back, elsewhere */
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    assert_change(r.extra[0], "127.0.1.1", "127.0.2.1", BASE_TTL);
    probe_result_clear(&r);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_ttl_or_order_alone_is_not_a_change(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n127.0.3.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_state(st, "A 127.0.1.1 ttl 30, A 127.0.3.1 ttl 30");

    set_flip("127.0.3.1 flip.global.test\n127.0.1.1 flip.global.test\n");
    for (int i = 0; i < 3; i++) {           /* dnsmasq rotates, too */
        run_one(&cfg.targets[0], &st, &r);
        assert_true(r.ok);
        assert_int_equal(r.n_extra, 0);
    }

    assert_int_equal(start_dnsmasq(7), 0);  /* same answers, new TTL */
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);
    assert_state(st, "A 127.0.1.1 ttl 7, A 127.0.3.1 ttl 7");
    assert_int_equal(start_dnsmasq(BASE_TTL), 0);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

static void test_expect_decides_the_verdict(void **state)
{
    struct agent_config cfg;
    struct probe_result r;
    void *st = NULL;

    (void)state;
    set_flip("127.0.1.1 flip.global.test\n");
    load_one(&cfg, "flip.global.test", "    expect: [127.0.2.1, 127.0.3.1]\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "answer not expected: A 127.0.1.1");
    /* Not ok, but an answer: it is the baseline the failover shows in. */
    assert_state(st, "A 127.0.1.1 ttl 30");

    set_flip("127.0.2.1 flip.global.test\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    assert_int_equal(r.n_extra, 1);
    probe_result_clear(&r);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);

    st = NULL;
    load_one(&cfg, "flip.global.test", "    expect: 127.0.2.1\n");
    run_one(&cfg.targets[0], &st, &r);
    assert_true(r.ok);
    probe_dns_ops.state_free(st);
    agent_config_free(&cfg);
}

/* ---- the loop's side ---- */

static void test_parallel_runs_finish_without_room_for_fds(void **state)
{
    struct agent_config cfg;
    struct outcome o;
    char err[512];
    void *st[MAX_T] = { NULL };
    int rc;

    (void)state;
    rc = load_cfg(&cfg, err, sizeof(err),
                  "  - {name: a, type: dns, query: app.global.test,"
                  " resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: b, type: dns, query: v6.global.test,"
                  " record: AAAA, resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: c, type: dns, query: no.global.test,"
                  " resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: d, type: dns, query: app.global.test,"
                  " resolver: '127.0.0.1:%2$u', timeout: 200ms}\n",
                  dns_port, silent_port);
    assert_int_equal(rc, 0);
    /* No room for our fds in the "loop": hooks still finish every run. */
    run_targets(cfg.targets, 4, st, &o, 0);
    assert_true(o.res[0].ok);
    assert_true(o.res[1].ok);
    assert_string_equal(o.res[2].error, "NXDOMAIN");
    assert_string_equal(o.res[3].error, "timeout after 200 ms");
    for (size_t i = 0; i < MAX_T; i++)
        probe_dns_ops.state_free(st[i]);
    agent_config_free(&cfg);
}

static void fail_on_done(struct probe_run *run, struct probe_result *res,
                         void *arg)
{
    (void)run;
    (void)res;
    (void)arg;
    fail_msg("a cancelled run was delivered");
}

/* Cancelled runs whose queries c-ares still holds: their answers, time-
 * outs and the channels' destruction must not touch them (ASan). */
static void test_cancel_during_a_pending_query_is_safe(void **state)
{
    struct agent_config cfg;
    struct probe_run *run[3];
    struct probe_result r;
    CURLM *multi = curl_multi_init();
    char err[512];
    void *st[3] = { NULL };
    int64_t end;
    int rc;

    (void)state;
    rc = load_cfg(&cfg, err, sizeof(err),
                  "  - {name: a, type: dns, query: dual.global.test,"
                  " record: ANY, resolver: '127.0.0.1:%1$u'}\n"
                  "  - {name: b, type: dns, query: app.global.test,"
                  " record: ANY, resolver: '127.0.0.1:%2$u', timeout: 150ms}\n"
                  "  - {name: c, type: dns, query: app.global.test,"
                  " resolver: '127.0.0.1:%2$u', timeout: 2s}\n",
                  dns_port, silent_port);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(probe_dns_ops.start(&cfg.targets[i], &st[i], multi,
                                             &run[i]), 0);
        run[i]->slot = i;
    }
    usleep(50000);          /* dnsmasq's answers wait in the socket */
    for (size_t i = 0; i < 3; i++)
        probe_dns_ops.cancel(run[i], multi);
    /* Past c-ares's own timeout for b (50 + 100 ms): every callback of
     * a and b comes in with nobody to deliver to. */
    end = util_mono_us() + 400000;
    while (util_mono_us() < end) {
        struct curl_waitfd fds[32];
        size_t n = probe_dns_ops.poll_fds(fds, 32);

        assert_int_equal(curl_multi_poll(multi, fds, (unsigned)n, 20, NULL),
                         CURLM_OK);
        probe_dns_ops.poll_process(fds, n, fail_on_done, NULL);
    }
    /* c's query is still in c-ares: shutting down calls it back. */
    probe_dns_shutdown();
    for (size_t i = 0; i < 3; i++)
        assert_state(st[i], "");            /* nothing was recorded */
    curl_multi_cleanup(multi);

    /* And the module works after that. */
    run_one(&cfg.targets[0], &st[0], &r);
    assert_true(r.ok);
    for (size_t i = 0; i < 3; i++)
        probe_dns_ops.state_free(st[i]);
    agent_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_answers_are_sorted_with_their_ttl),
        cmocka_unit_test(test_aaaa_answers_and_nodata),
        cmocka_unit_test(test_any_merges_a_and_aaaa),
        cmocka_unit_test(test_cname_chain_is_part_of_the_answer),
        cmocka_unit_test(test_nxdomain_and_refused_are_failures),
        cmocka_unit_test(test_silent_resolver_times_out_within_the_timeout),
        cmocka_unit_test(test_closed_port_fails_fast_as_refused),
        cmocka_unit_test(test_change_is_reported_after_the_baseline),
        cmocka_unit_test(test_failure_is_not_a_change_and_keeps_the_baseline),
        cmocka_unit_test(test_ttl_or_order_alone_is_not_a_change),
        cmocka_unit_test(test_expect_decides_the_verdict),
        cmocka_unit_test(test_parallel_runs_finish_without_room_for_fds),
        cmocka_unit_test(test_cancel_during_a_pending_query_is_safe),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
