/* test_agent_dns_input.c -- what the DNS answer watch is handed: replies
 * of a hostile resolver (malformed, oversized, unprintable), read by the
 * probe as failures or as capped, printable answer sets; and targets
 * YAML with every error naming its key. Runs go through the fixture in
 * tests/dns_test.c, as in test_agent_dns.c. */
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

/* ---- a hostile resolver ---- */

/* One run against the fake resolver in @mode, with extra keys @more. */
static void run_fake(enum fake_mode mode, const char *more, void **st,
                     struct probe_result *r)
{
    struct agent_config cfg;
    char err[512];

    fake_mode = mode;
    assert_int_equal(load_cfg(&cfg, err, sizeof(err),
                              "  - name: fake\n"
                              "    type: dns\n"
                              "    query: app.global.test\n"
                              "    resolver: 127.0.0.1:%u\n"
                              "    timeout: 2s\n%s", fake_port, more), 0);
    run_one(&cfg.targets[0], st, r);
    agent_config_free(&cfg);
}

static void assert_printable(const char *s)
{
    for (; *s; s++)
        assert_true(*s >= 0x20 && *s < 0x7f);
}

static void test_malformed_replies_are_failures(void **state)
{
    static const enum fake_mode modes[] = {
        FAKE_SHORT, FAKE_BAD_RDLEN, FAKE_PAST_END, FAKE_LOOP,
    };
    struct probe_result r;
    void *st = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        run_fake(modes[i], "", &st, &r);
        assert_false(r.ok);
        assert_string_equal(r.error, "malformed reply");
        assert_state(st, "");
    }
    probe_dns_ops.state_free(st);
}

static void test_answer_sets_are_capped_and_printable(void **state)
{
    struct probe_result r;
    char text[4096];
    void *st = NULL;

    (void)state;
    run_fake(FAKE_MANY, "", &st, &r);      /* over TCP: 1.6 KB */
    assert_true(r.ok);
    /* The lowest 64 of 100 addresses, whatever order they came in; the
     * TTL with the high bit set counts as 0 (RFC 2181). */
    assert_int_equal(probe_dns_state_text(st, text, sizeof(text)),
                     PROBE_DNS_MAX_ANSWERS);
    assert_non_null(strstr(text, "A 127.0.5.1 ttl 0, A 127.0.5.2 ttl 30,"));
    assert_non_null(strstr(text, ", A 127.0.5.64 ttl 30"));
    assert_null(strstr(text, "127.0.5.65"));
    /* A short buffer ends in "...". */
    probe_dns_state_text(st, text, 40);
    assert_int_equal(strlen(text), 39);
    assert_string_equal(text + 36, "...");
    probe_dns_ops.state_free(st);

    st = NULL;
    run_fake(FAKE_ODD_NAME, "    expect: 127.0.9.9\n", &st, &r);
    assert_false(r.ok);
    assert_printable(r.error);
    assert_non_null(strstr(r.error, "answer not expected: A 127.0.5.1, "
                                    "CNAME a"));
    probe_dns_state_text(st, text, sizeof(text));
    assert_printable(text);
    /* c-ares escapes what is not printable, and the '.' inside a label. */
    assert_string_equal(text, "A 127.0.5.1 ttl 30, "
                              "CNAME a\\001 \\.\\127.test ttl 30");
    probe_dns_ops.state_free(st);
}

/* ---- configuration ---- */

/* Asserts the targets YAML fails with "PATH:" + @want. */
static void expect_config_error(const char *targets, const char *want)
{
    struct agent_config cfg;
    char err[512], full[512];

    assert_int_equal(load_cfg(&cfg, err, sizeof(err), "%s", targets),
                     -EINVAL);
    snprintf(full, sizeof(full), "%s:%s", yaml_path, want);
    assert_string_equal(err, full);
    assert_null(cfg.targets);
}

static void test_config_errors_name_the_key(void **state)
{
    (void)state;
    expect_config_error("  - name: d\n"
                        "    type: dns\n",
                        "10: targets[0].query: required key is missing");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: bad_name!.example\n",
                        "12: targets[0].query: \"bad_name!.example\" is not "
                        "a DNS name");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    record: MX\n",
                        "13: targets[0].record: expected A, AAAA, CNAME or "
                        "ANY (A and AAAA), got \"MX\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    resolver: dns.example:53\n",
                        "13: targets[0].resolver: expected an IP address "
                        "and port, as 127.0.0.1:53 or [::1]:53, got "
                        "\"dns.example:53\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    resolver: 127.0.0.1:0\n",
                        "13: targets[0].resolver: expected an IP address "
                        "and port, as 127.0.0.1:53 or [::1]:53, got "
                        "\"127.0.0.1:0\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    resolver: '[127.0.0.1]:53'\n",
                        "13: targets[0].resolver: expected an IP address "
                        "and port, as 127.0.0.1:53 or [::1]:53, got "
                        "\"[127.0.0.1]:53\"");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    expect: [127.0.0.1, 'not an answer']\n",
                        "13: targets[0].expect: item 1: \"not an answer\" is "
                        "neither an IP address nor a DNS name");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    expect: []\n",
                        "13: targets[0].expect: empty list");
    expect_config_error("  - name: d\n"
                        "    type: dns\n"
                        "    query: a.example\n"
                        "    url: http://a.example/\n",
                        "13: targets[0].url: unknown key");
}

static void test_config_accepts_every_resolver_form(void **state)
{
    static const char *const forms[] = {
        "127.0.0.1:5353", "'[::1]:53'", "127.0.0.1", "::1",
    };
    struct agent_config cfg;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        if (load_cfg(&cfg, err, sizeof(err),
                     "  - name: d\n"
                     "    type: dns\n"
                     "    query: a.example\n"
                     "    resolver: %s\n", forms[i]) != 0)
            fail_msg("%s: %s", forms[i], err);
        assert_non_null(cfg.targets[0].opts);
        assert_null(cfg.targets[0].url);
        agent_config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_replies_are_failures),
        cmocka_unit_test(test_answer_sets_are_capped_and_printable),
        cmocka_unit_test(test_config_errors_name_the_key),
        cmocka_unit_test(test_config_accepts_every_resolver_form),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
