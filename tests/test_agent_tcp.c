/* test_agent_tcp.c -- the TCP connect probe, loaded through the real config
 * parser and run through its ops in a curl multi handle as loop.c does:
 * against a listening socket on loopback (ok, with a connect time), a
 * port that was just closed (refused, with curl's text), and every config
 * error its one key can give. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_tcp.h"

#define HEAD                                \
    "cluster: c1\n"                         \
    "region: eu-west-1\n"                   \
    "node: n1\n"                            \
    "collector:\n"                          \
    "  url: http://127.0.0.1:8480\n"        \
    "  token: tok-0123456789abcdef\n"       \
    "spool:\n"                              \
    "  path: /tmp/agent-spool.db\n"         \
    "targets:\n"                            \
    "  - name: t\n"                         \
    "    type: tcp\n"
/* HEAD is 11 lines: a target's next key is on line 12. */

static char dir[64];
static char yaml_path[128];

static int group_setup(void **state)
{
    (void)state;
    unsetenv("NODE_NAME");
    snprintf(dir, sizeof(dir), "/tmp/test_agent_tcp.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(yaml_path, sizeof(yaml_path), "%s/agent.yaml", dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(yaml_path);
    rmdir(dir);
    return 0;
}

static void write_yaml(const char *fmt, va_list ap)
{
    FILE *f = fopen(yaml_path, "w");

    assert_non_null(f);
    fputs(HEAD, f);
    vfprintf(f, fmt, ap);
    assert_int_equal(fclose(f), 0);
}

static void load_fails(const char *want, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void load_fails(const char *want, const char *fmt, ...)
{
    struct agent_config cfg = { 0 };
    char err[512] = "", full[512];
    va_list ap;

    va_start(ap, fmt);
    write_yaml(fmt, ap);
    va_end(ap);
    assert_int_equal(agent_config_load(yaml_path, &cfg, err, sizeof(err)),
                     -EINVAL);
    snprintf(full, sizeof(full), "%s:%s", yaml_path, want);
    if (strcmp(err, full) != 0)
        fail_msg("got \"%s\", want \"%s\"", err, full);
    assert_null(cfg.targets);
}

static void load_ok(struct agent_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void load_ok(struct agent_config *cfg, const char *fmt, ...)
{
    char err[512] = "";
    va_list ap;

    va_start(ap, fmt);
    write_yaml(fmt, ap);
    va_end(ap);
    memset(cfg, 0, sizeof(*cfg));
    if (agent_config_load(yaml_path, cfg, err, sizeof(err)) != 0)
        fail_msg("config did not load: %s", err);
}

/* Loads one tcp target from @fmt and probes it once, as loop.c would. */
static void probe(struct probe_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void probe(struct probe_result *r, const char *fmt, ...)
{
    struct agent_config cfg = { 0 };
    const struct probe_ops *ops;
    struct probe_run *run = NULL;
    void *pstate = NULL;
    CURLM *multi;
    char err[512] = "";
    va_list ap;
    int done = 0;

    va_start(ap, fmt);
    write_yaml(fmt, ap);
    va_end(ap);
    if (agent_config_load(yaml_path, &cfg, err, sizeof(err)) != 0)
        fail_msg("config did not load: %s", err);
    assert_int_equal(cfg.targets[0].type, PROBE_TCP);
    assert_null(cfg.targets[0].url);
    ops = probe_ops_find(PROBE_TCP);
    assert_ptr_equal(ops, &probe_tcp_ops);
    multi = curl_multi_init();
    assert_non_null(multi);
    assert_int_equal(ops->start(&cfg.targets[0], &pstate, multi, &run), 0);
    assert_ptr_equal(run->ops, &probe_tcp_ops);
    assert_true(run->start_unix_ms > 0);
    while (!done) {
        CURLMsg *m;
        int still, q;

        assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
        while ((m = curl_multi_info_read(multi, &q)) != NULL) {
            char *priv = NULL;

            if (m->msg != CURLMSG_DONE)
                continue;
            assert_int_equal(curl_easy_getinfo(m->easy_handle,
                                               CURLINFO_PRIVATE, &priv),
                             CURLE_OK);
            assert_ptr_equal(priv, (char *)run);
            ops->finish(run, multi, m->easy_handle, m->data.result, r);
            done = 1;
        }
        if (!done)
            assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL),
                             CURLM_OK);
    }
    assert_null(pstate);
    curl_multi_cleanup(multi);
    agent_config_free(&cfg);
}

/* A listening socket on @family's loopback; *port is its port. The kernel
 * completes handshakes into the backlog, so nobody needs to accept. */
static int listen_on(int family, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd = socket(family, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_loopback;
        sl = sizeof(*sin6);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void test_open_port_is_ok_with_a_connect_time(void **state)
{
    struct probe_result r;
    unsigned port;
    int fd = listen_on(AF_INET, &port);

    (void)state;
    assert_true(fd >= 0);
    probe(&r, "    address: 127.0.0.1:%u\n", port);
    assert_true(r.ok);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.error, "");
    assert_true(r.t.connect_us > 0);
    assert_true(r.t.dns_us <= r.t.connect_us);
    assert_true(r.t.connect_us <= r.t.total_us);
    assert_true(r.t.total_us < 2000000);
    assert_int_equal(r.t.tls_us, 0);
    assert_int_equal(r.t.first_byte_us, 0);
    assert_int_equal(r.cert_not_after_ms, 0);
    assert_string_equal(r.served_by, "");
    assert_int_equal(r.n_extra, 0);

    /* A name is resolved on every run. */
    probe(&r, "    address: localhost:%u\n", port);
    assert_true(r.ok);
    assert_true(r.t.connect_us > 0);
    assert_true(r.t.dns_us <= r.t.connect_us);
    close(fd);
}

static void test_proxy_environment_is_ignored(void **state)
{
    struct probe_result r;
    unsigned port, dead;
    int fd = listen_on(AF_INET, &port), gone = listen_on(AF_INET, &dead);
    char proxy[64];

    (void)state;
    assert_true(fd >= 0 && gone >= 0);
    close(gone);                    /* a proxy that refuses everything */
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", dead);
    setenv("http_proxy", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    probe(&r, "    address: 127.0.0.1:%u\n", port);
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    close(fd);
    if (!r.ok)
        fail_msg("went through the proxy: %s", r.error);
}

static void test_ipv6_literal_in_brackets_connects(void **state)
{
    struct probe_result r;
    unsigned port = 0;
    int fd = listen_on(AF_INET6, &port);

    (void)state;
    if (fd < 0)
        skip();                     /* no IPv6 loopback on this machine */
    probe(&r, "    address: '[::1]:%u'\n", port);
    close(fd);
    assert_true(r.ok);
    assert_true(r.t.connect_us > 0);
}

static void test_closed_port_fails_with_curl_text(void **state)
{
    struct probe_result r;
    unsigned port;
    int fd = listen_on(AF_INET, &port);

    (void)state;
    assert_true(fd >= 0);
    close(fd);                      /* free a moment ago, no listener now */
    probe(&r, "    address: 127.0.0.1:%u\n", port);
    assert_false(r.ok);
    assert_int_equal(r.status, 0);
    if (!strstr(r.error, "Failed to connect to 127.0.0.1"))
        fail_msg("error \"%s\"", r.error);
    assert_int_equal(r.t.connect_us, 0);
}

static void test_cancel_releases_a_run(void **state)
{
    struct agent_config cfg;
    struct probe_run *run = NULL;
    void *pstate = NULL;
    CURLM *multi = curl_multi_init();
    unsigned port;
    int fd = listen_on(AF_INET, &port), still;

    (void)state;
    assert_true(fd >= 0);
    load_ok(&cfg, "    address: 127.0.0.1:%u\n", port);
    assert_int_equal(probe_tcp_ops.start(&cfg.targets[0], &pstate, multi,
                                         &run), 0);
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    probe_tcp_ops.cancel(run, multi);       /* ASan: nothing leaks */
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    assert_int_equal(still, 0);
    curl_multi_cleanup(multi);
    agent_config_free(&cfg);
    close(fd);
}

static void test_valid_addresses_load(void **state)
{
    static const char *const ok[] = {
        "127.0.0.1:9", "db.internal:5432", "'[::1]:80'",
        "'[2001:db8::1]:443'", "my_host-1.example.com:65535",
    };
    struct agent_config cfg;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        load_ok(&cfg, "    address: %s\n", ok[i]);
        assert_int_equal(cfg.targets[0].type, PROBE_TCP);
        assert_non_null(cfg.targets[0].opts);
        agent_config_free(&cfg);
    }
}

static void test_config_errors_name_the_key_and_line(void **state)
{
    static const char *const bad[] = {
        "nohost", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:http", "::1:80", "'[::1]80'", "'[nothex]:80'",
        "a/b:80", "user@host:22", ":80", "-x:80",
    };
    char want[256];

    (void)state;
    load_fails("10: targets[0].address: required key is missing", "%s", "");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *v = bad[i];
        char bare[64];
        size_t n = strlen(v);

        if (v[0] == '\'') {             /* YAML quoting, not the value */
            memcpy(bare, v + 1, n - 2);
            bare[n - 2] = '\0';
        } else {
            snprintf(bare, sizeof(bare), "%s", v);
        }
        snprintf(want, sizeof(want), "12: targets[0].address: expected "
                 "host:port (a name, an IPv4 address or [IPv6], port "
                 "1-65535), got \"%s\"", bare);
        load_fails(want, "    address: %s\n", v);
    }
    load_fails("12: targets[0].address: expected a scalar value",
               "    address: [127.0.0.1, 80]\n");
    load_fails("12: targets[0].url: unknown key",
               "    url: http://127.0.0.1:9/\n");
    load_fails("12: targets[0].expect_status: unknown key",
               "    expect_status: [200]\n");
}

static void test_tcp_is_a_known_type(void **state)
{
    enum probe_type t;

    (void)state;
    assert_int_equal(probe_type_parse("tcp", &t), 0);
    assert_int_equal(t, PROBE_TCP);
    assert_ptr_equal(probe_ops_find(PROBE_TCP), &probe_tcp_ops);
    assert_non_null(strstr(probe_type_names(), "tcp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_port_is_ok_with_a_connect_time),
        cmocka_unit_test(test_proxy_environment_is_ignored),
        cmocka_unit_test(test_ipv6_literal_in_brackets_connects),
        cmocka_unit_test(test_closed_port_fails_with_curl_text),
        cmocka_unit_test(test_cancel_releases_a_run),
        cmocka_unit_test(test_valid_addresses_load),
        cmocka_unit_test(test_config_errors_name_the_key_and_line),
        cmocka_unit_test(test_tcp_is_a_known_type),
    };
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
