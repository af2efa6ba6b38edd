/* test_agent_config.c -- agent.yaml parsing: every error path gives one
 * line "FILE:LINE: key: message", and a valid file gives every value with
 * its defaults. YAML goes to a fresh temp folder per run. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* The first 8 lines of most files; a target list follows at line 9. */
#define HEAD                                \
    "cluster: c1\n"                         \
    "region: eu-west-1\n"                   \
    "node: n1\n"                            \
    "collector:\n"                          \
    "  url: http://127.0.0.1:8480\n"        \
    "  token: tok-0123456789abcdef\n"       \
    "spool:\n"                              \
    "  path: /tmp/agent-spool.db\n"
#define TARGETS                             \
    "targets:\n"                            \
    "  - name: web\n"                       \
    "    url: http://127.0.0.1:9/health\n"

static char test_dir[64];
static char test_path[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int load(const char *yaml, struct agent_config *cfg, char *err,
                size_t err_len)
{
    write_file(test_path, yaml);
    return agent_config_load(test_path, cfg, err, err_len);
}

/* Loads @yaml and asserts it fails with exactly "PATH:" + @want. */
static void expect_error(const char *yaml, const char *want)
{
    struct agent_config cfg = { 0 };
    char err[512], full[512];
    int rc;

    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    rc = load(yaml, &cfg, err, sizeof(err));
    snprintf(full, sizeof(full), "%s:%s", test_path, want);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, full);
    assert_null(strchr(err, '\n'));
    assert_null(cfg.cluster);               /* untouched on failure */
    assert_null(cfg.targets);
}

/* Asserts @yaml fails with an error that starts with "PATH:" + @prefix. */
static void expect_error_prefix(const char *yaml, const char *prefix)
{
    struct agent_config cfg = { 0 };
    char err[512], full[512];

    assert_int_equal(load(yaml, &cfg, err, sizeof(err)), -EINVAL);
    snprintf(full, sizeof(full), "%s:%s", test_path, prefix);
    if (strncmp(err, full, strlen(full)) != 0)
        fail_msg("got \"%s\", want prefix \"%s\"", err, full);
    assert_null(strchr(err, '\n'));
}

static int setup(void **state)
{
    (void)state;
    unsetenv("NODE_NAME");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("NODE_NAME");
    unlink(test_path);
    return 0;
}

static void test_full_config_loads_every_key(void **state)
{
    static const char yaml[] =
        "cluster: prod-eu\n"
        "region: eu-west-1\n"
        "node: node-a\n"
        "collector:\n"
        "  url: https://collector.example:8480/sextant/\n"
        "  token: tok-0123456789abcdef\n"
        "spool:\n"
        "  path: /var/lib/sextant/spool.db\n"
        "interval: 30s\n"
        "timeout: 2s\n"
        "log_level: debug\n"
        "targets:\n"
        "  - name: api\n"
        "    url: https://api.example/healthz\n"
        "    type: http\n"
        "    interval: 5s\n"
        "    timeout: 1500ms\n"
        "    expect_status: [200, 204]\n"
        "  - name: web\n"
        "    url: http://127.0.0.1:9/\n";
    struct agent_config cfg = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(load(yaml, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.cluster, "prod-eu");
    assert_string_equal(cfg.region, "eu-west-1");
    assert_string_equal(cfg.node, "node-a");
    assert_int_equal(cfg.n_collectors, 1);
    assert_string_equal(cfg.collectors[0].url,
                        "https://collector.example:8480/sextant/");
    assert_string_equal(cfg.collectors[0].ingest_url,
                        "https://collector.example:8480/sextant/v1/ingest");
    assert_string_equal(cfg.collectors[0].token, "tok-0123456789abcdef");
    assert_string_equal(cfg.spool_path, "/var/lib/sextant/spool.db");
    assert_int_equal(cfg.interval_ms, 30000);
    assert_int_equal(cfg.timeout_ms, 2000);
    assert_int_equal(cfg.log_level, LOGL_DEBUG);
    assert_int_equal(cfg.n_targets, 2);
    assert_string_equal(cfg.targets[0].name, "api");
    assert_string_equal(cfg.targets[0].url, "https://api.example/healthz");
    assert_int_equal(cfg.targets[0].type, PROBE_HTTP);
    assert_int_equal(cfg.targets[0].interval_ms, 5000);
    assert_int_equal(cfg.targets[0].timeout_ms, 1500);
    assert_int_equal(cfg.targets[0].n_expect_status, 2);
    assert_int_equal(cfg.targets[0].expect_status[0], 200);
    assert_int_equal(cfg.targets[0].expect_status[1], 204);
    assert_true(agent_target_status_ok(&cfg.targets[0], 204));
    assert_false(agent_target_status_ok(&cfg.targets[0], 301));
    /* The second target inherits the top-level interval and timeout. */
    assert_int_equal(cfg.targets[1].interval_ms, 30000);
    assert_int_equal(cfg.targets[1].timeout_ms, 2000);
    agent_config_free(&cfg);
    assert_null(cfg.cluster);
    agent_config_free(&cfg);                /* a freed config is a no-op */
}

static void test_defaults_are_applied(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512];
    const struct agent_target *t;

    (void)state;
    assert_int_equal(load(HEAD TARGETS, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.collectors[0].ingest_url,
                        "http://127.0.0.1:8480/v1/ingest");
    /* spool.max_bytes and shipping.*, as the README gives them. */
    assert_int_equal(cfg.spool_max_bytes, 64LL << 20);
    assert_int_equal(cfg.batch_max_events, 5000);
    assert_int_equal(cfg.batch_max_bytes, 1LL << 20);
    assert_int_equal(cfg.batch_max_age_ms, 1000);
    assert_int_equal(cfg.backoff_initial_ms, 1000);
    assert_int_equal(cfg.backoff_max_ms, 60000);
    assert_int_equal(cfg.shutdown_grace_ms, 5000);
    assert_int_equal(cfg.interval_ms, 10000);
    assert_int_equal(cfg.timeout_ms, 5000);
    assert_int_equal(cfg.log_level, LOGL_INFO);
    t = &cfg.targets[0];
    assert_int_equal(t->type, PROBE_HTTP);
    assert_int_equal(t->interval_ms, 10000);
    assert_int_equal(t->timeout_ms, 5000);
    assert_null(t->expect_status);
    /* Default verdict: any 2xx or 3xx. */
    assert_false(agent_target_status_ok(t, 199));
    assert_true(agent_target_status_ok(t, 200));
    assert_true(agent_target_status_ok(t, 399));
    assert_false(agent_target_status_ok(t, 404));
    assert_false(agent_target_status_ok(t, 503));
    agent_config_free(&cfg);
}

static void test_inherited_timeout_shrinks_to_short_interval(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(load(HEAD TARGETS "    interval: 1s\n", &cfg, err,
                          sizeof(err)), 0);
    assert_int_equal(cfg.targets[0].interval_ms, 1000);
    assert_int_equal(cfg.targets[0].timeout_ms, 1000);
    agent_config_free(&cfg);
    assert_int_equal(load(HEAD "interval: 2s\n" TARGETS, &cfg, err,
                          sizeof(err)), 0);
    assert_int_equal(cfg.timeout_ms, 2000);
    assert_int_equal(cfg.targets[0].timeout_ms, 2000);
    agent_config_free(&cfg);
}

static void test_unknown_top_level_key_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD "colector: 1\n" TARGETS, "9: colector: unknown key");
}

static void test_unknown_key_in_collector_is_an_error(void **state)
{
    (void)state;
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n"
                 "  tokn: abc\n"
                 "  token: tok-0123456789abcdef\n"
                 "spool:\n"
                 "  path: /tmp/s.db\n" TARGETS,
                 "6: collector.tokn: unknown key");
}

static void test_unknown_key_in_spool_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD "  maxbytes: 1MiB\n" TARGETS,
                 "9: spool.maxbytes: unknown key");
}

static void test_unknown_key_in_target_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD TARGETS
                 "  - name: api\n"
                 "    url: http://127.0.0.1:9/\n"
                 "    expect: 200\n",
                 "14: targets[1].expect: unknown key");
}

static void test_key_given_twice_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD "cluster: c2\n" TARGETS,
                 "9: cluster: key given twice");
}

static void test_wrong_types_are_errors(void **state)
{
    (void)state;
    expect_error("cluster: [a, b]\n", "1: cluster: expected a scalar value");
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector: http://127.0.0.1:8480\n",
                 "4: collector: expected a mapping");
    expect_error(HEAD "targets:\n  name: web\n",
                 "10: targets: expected a list");
    expect_error(HEAD "targets:\n  - web\n",
                 "10: targets[0]: expected a mapping");
    expect_error(HEAD TARGETS "    expect_status: 200\n",
                 "12: targets[0].expect_status: expected a list");
    expect_error(HEAD TARGETS "    expect_status: [200, ok]\n",
                 "12: targets[0].expect_status[1]: expected an HTTP status "
                 "from 100 to 599, got \"ok\"");
    expect_error_prefix("- just\n- a list\n", "1: top level must be a "
                        "mapping");
}

static void test_missing_required_keys_are_errors(void **state)
{
    (void)state;
    expect_error("region: r1\n", "1: cluster: required key is missing");
    expect_error("cluster: c1\n", "1: region: required key is missing");
    expect_error("cluster: c1\nregion: r1\nnode: n1\n",
                 "1: collector: required key is missing (or give "
                 "collectors)");
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  token: tok-0123456789abcdef\n",
                 "5: collector.url: required key is missing");
    expect_error(HEAD, "1: targets: required key is missing");
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n"
                 "  token: tok-0123456789abcdef\n" TARGETS,
                 "1: spool: required key is missing");
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n"
                 "  token: tok-0123456789abcdef\n"
                 "spool:\n"
                 "  {}\n" TARGETS,
                 "8: spool.path: required key is missing");
    expect_error(HEAD "targets:\n  - url: http://127.0.0.1:9/\n",
                 "10: targets[0].name: required key is missing");
    expect_error(HEAD "targets:\n  - name: web\n",
                 "10: targets[0].url: required key is missing");
    expect_error(HEAD "targets: []\n", "9: targets: list is empty");
    expect_error("cluster:\nregion: r1\n", "1: cluster: value is empty");
}

/* Names go into every event and every collector log line: a control
 * character in one (YAML escapes make them easy) is refused here, where
 * a person can fix it, not by the collector batch after batch. */
static void test_names_with_control_characters_are_errors(void **state)
{
    (void)state;
    expect_error("cluster: \"c1\\nFAKE\"\nregion: r1\nnode: n1\n",
                 "1: cluster: holds a control character");
    expect_error("cluster: c1\nregion: \"r\\e[31m\"\nnode: n1\n",
                 "2: region: holds a control character");
    expect_error("cluster: c1\nregion: r1\nnode: \"n\\t1\"\n",
                 "3: node: holds a control character");
    expect_error(HEAD "targets:\n  - name: \"web\\x7f\"\n",
                 "10: targets[0].name: holds a control character");
    expect_error(HEAD "targets:\n  - name: \"web\\N\"\n",
                 "10: targets[0].name: holds a control character");
}

static void test_missing_node_needs_node_name(void **state)
{
    (void)state;
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n",
                 "1: node: required key is missing (or set env NODE_NAME)");
}

static void test_node_name_env_overrides_file(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(setenv("NODE_NAME", "worker-7", 1), 0);
    assert_int_equal(load(HEAD TARGETS, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, "worker-7");
    agent_config_free(&cfg);
    /* And it stands in for a node the file does not give. */
    assert_int_equal(load("cluster: c1\n"
                          "region: r1\n"
                          "collector:\n"
                          "  url: http://127.0.0.1:8480\n"
                          "  token: tok-0123456789abcdef\n"
                          "spool:\n"
                          "  path: /tmp/s.db\n" TARGETS,
                          &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, "worker-7");
    agent_config_free(&cfg);
    /* An empty NODE_NAME is no override. */
    assert_int_equal(setenv("NODE_NAME", "", 1), 0);
    assert_int_equal(load(HEAD TARGETS, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.node, "n1");
    agent_config_free(&cfg);
}

static void test_node_name_env_must_be_a_plain_name(void **state)
{
    (void)state;
    assert_int_equal(setenv("NODE_NAME", "node a", 1), 0);
    expect_error(HEAD TARGETS, "1: node: env NODE_NAME must be printable "
                 "ASCII without spaces");
    assert_int_equal(setenv("NODE_NAME", "n\xc3\xb6" "de", 1), 0);
    expect_error(HEAD TARGETS, "1: node: env NODE_NAME must be printable "
                 "ASCII without spaces");
}

static void test_bad_target_url_is_an_error(void **state)
{
    (void)state;
    expect_error_prefix(HEAD "targets:\n"
                        "  - name: web\n"
                        "    url: \"http://exa mple/\"\n",
                        "11: targets[0].url: not a valid URL: ");
    expect_error_prefix(HEAD "targets:\n"
                        "  - name: web\n"
                        "    url: just-a-host\n",
                        "11: targets[0].url: not a valid URL: ");
    expect_error(HEAD "targets:\n"
                 "  - name: web\n"
                 "    url: http://\n",
                 "11: targets[0].url: not a valid URL: No host part in the "
                 "URL");
}

static void test_non_http_scheme_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD "targets:\n"
                 "  - name: files\n"
                 "    url: ftp://127.0.0.1/pub/\n",
                 "11: targets[0].url: scheme must be http or https, got "
                 "\"ftp\"");
    expect_error(HEAD "targets:\n"
                 "  - name: files\n"
                 "    url: file:///etc/passwd\n",
                 "11: targets[0].url: scheme must be http or https, got "
                 "\"file\"");
}

static void test_bad_collector_url_is_an_error(void **state)
{
    (void)state;
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: gopher://127.0.0.1:8480\n",
                 "5: collector.url: scheme must be http or https, got "
                 "\"gopher\"");
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480/?x=1\n",
                 "5: collector.url: base URL must not have a query or "
                 "fragment");
}

static void test_duplicate_target_name_names_the_second(void **state)
{
    (void)state;
    expect_error(HEAD TARGETS
                 "  - name: api\n"
                 "    url: http://127.0.0.1:9/a\n"
                 "  - name: web\n"
                 "    url: http://127.0.0.1:9/b\n",
                 "14: targets[2].name: duplicate target name \"web\" (first "
                 "used by targets[0])");
}

static void test_bad_duration_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD "interval: 10 parsecs\n" TARGETS,
                 "9: interval: expected a duration such as 500ms, 10s or 2m, "
                 "got \"10 parsecs\"");
    expect_error(HEAD TARGETS "    timeout: soon\n",
                 "12: targets[0].timeout: expected a duration such as 500ms, "
                 "10s or 2m, got \"soon\"");
    expect_error(HEAD "interval: 10ms\n" TARGETS,
                 "9: interval: must be between 100ms and 86400000ms");
}

static void test_timeout_longer_than_interval_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD TARGETS "    interval: 2s\n    timeout: 3s\n",
                 "13: targets[0].timeout: must not exceed the target's "
                 "interval (2000ms)");
    expect_error(HEAD "interval: 1s\ntimeout: 2s\n" TARGETS,
                 "10: timeout: must not exceed interval (1000ms)");
}

static void test_token_and_token_file_together_are_an_error(void **state)
{
    (void)state;
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n"
                 "  token: tok-0123456789abcdef\n"
                 "  token_file: /run/secrets/token\n",
                 "7: collector.token_file: give exactly one of token and "
                 "token_file, not both");
}

static void test_no_token_is_an_error(void **state)
{
    (void)state;
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n",
                 "5: collector.token: required key is missing (or give "
                 "token_file)");
    expect_error("cluster: c1\n"
                 "region: r1\n"
                 "node: n1\n"
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n"
                 "  token: \"two words\"\n",
                 "6: collector.token: token must be non-empty, without "
                 "spaces or control characters");
}

static void test_token_file_is_read_and_trimmed(void **state)
{
    struct agent_config cfg = { 0 };
    char tok[160], yaml[1024], err[512];

    (void)state;
    snprintf(tok, sizeof(tok), "%s/token", test_dir);
    write_file(tok, "file-token-0123456789\n\n");
    snprintf(yaml, sizeof(yaml),
             "cluster: c1\n"
             "region: r1\n"
             "node: n1\n"
             "collector:\n"
             "  url: http://127.0.0.1:8480\n"
             "  token_file: %s\n"
             "spool:\n"
             "  path: /tmp/s.db\n" TARGETS, tok);
    assert_int_equal(load(yaml, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.collectors[0].token, "file-token-0123456789");
    agent_config_free(&cfg);
    unlink(tok);
    snprintf(yaml, sizeof(yaml),
             "cluster: c1\n"
             "region: r1\n"
             "node: n1\n"
             "collector:\n"
             "  url: http://127.0.0.1:8480\n"
             "  token_file: %s\n", tok);
    {
        char want[512];

        snprintf(want, sizeof(want), "6: collector.token_file: cannot read "
                 "%s: No such file or directory", tok);
        expect_error(yaml, want);
    }
}

#define COLL_HEAD                           \
    "cluster: c1\n"                         \
    "region: eu-west-1\n"                   \
    "node: n1\n"
#define SPOOL_TARGETS                       \
    "spool:\n"                              \
    "  path: /tmp/agent-spool.db\n" TARGETS

static void test_collectors_list_gives_every_collector(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(load(COLL_HEAD
                          "collectors:\n"
                          "  - url: http://127.0.0.1:8480\n"
                          "    token: tok-aaaaaaaaaaaaaaaa\n"
                          "  - url: http://127.0.0.2:8480/sx/\n"
                          "    token: tok-bbbbbbbbbbbbbbbb\n"
                          SPOOL_TARGETS, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_collectors, 2);
    assert_string_equal(cfg.collectors[0].ingest_url,
                        "http://127.0.0.1:8480/v1/ingest");
    assert_string_equal(cfg.collectors[0].token, "tok-aaaaaaaaaaaaaaaa");
    assert_string_equal(cfg.collectors[1].ingest_url,
                        "http://127.0.0.2:8480/sx/v1/ingest");
    assert_string_equal(cfg.collectors[1].token, "tok-bbbbbbbbbbbbbbbb");
    assert_true(agent_collector_equal(&cfg.collectors[0],
                                      &cfg.collectors[0]));
    assert_false(agent_collector_equal(&cfg.collectors[0],
                                       &cfg.collectors[1]));
    agent_config_free(&cfg);
}

static void test_collector_and_collectors_errors(void **state)
{
    (void)state;
    expect_error(COLL_HEAD
                 "collector:\n"
                 "  url: http://127.0.0.1:8480\n"
                 "  token: tok-0123456789abcdef\n"
                 "collectors:\n"
                 "  - url: http://127.0.0.1:8481\n"
                 "    token: tok-0123456789abcdef\n" SPOOL_TARGETS,
                 "8: collectors: give exactly one of collector and "
                 "collectors, not both");
    expect_error(COLL_HEAD "collectors: []\n" SPOOL_TARGETS,
                 "4: collectors: list is empty");
    expect_error(COLL_HEAD "collectors:\n  - http://127.0.0.1:8480\n"
                 SPOOL_TARGETS, "5: collectors[0]: expected a mapping");
    expect_error(COLL_HEAD
                 "collectors:\n"
                 "  - url: http://127.0.0.1:8480\n"
                 "    token: tok-0123456789abcdef\n"
                 "  - url: http://127.0.0.1:8480/\n"
                 "    tokn: x\n" SPOOL_TARGETS,
                 "8: collectors[1].tokn: unknown key");
    expect_error(COLL_HEAD
                 "collectors:\n"
                 "  - url: http://127.0.0.1:8480\n"
                 "    token: tok-0123456789abcdef\n"
                 "  - url: http://127.0.0.1:8480/\n"
                 "    token: tok-0123456789abcdef\n" SPOOL_TARGETS,
                 "7: collectors[1].url: same collector as collectors[0]");
    expect_error(COLL_HEAD
                 "collectors:\n"
                 "  - url: http://127.0.0.1:8480\n" SPOOL_TARGETS,
                 "5: collectors[0].token: required key is missing (or give "
                 "token_file)");
    expect_error(COLL_HEAD
                 "collectors:\n"
                 "  - {url: \"http://h1\", token: t}\n"
                 "  - {url: \"http://h2\", token: t}\n"
                 "  - {url: \"http://h3\", token: t}\n"
                 "  - {url: \"http://h4\", token: t}\n"
                 "  - {url: \"http://h5\", token: t}\n"
                 "  - {url: \"http://h6\", token: t}\n"
                 "  - {url: \"http://h7\", token: t}\n"
                 "  - {url: \"http://h8\", token: t}\n"
                 "  - {url: \"http://h9\", token: t}\n" SPOOL_TARGETS,
                 "5: collectors: at most 8 collectors");
}

static void test_spool_bound_and_shipping_keys_load(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(load(HEAD "  max_bytes: 2MiB\n"
                          "shipping:\n"
                          "  batch_max_events: 100\n"
                          "  batch_max_bytes: 64KiB\n"
                          "  batch_max_age: 250ms\n"
                          "  backoff_initial: 200ms\n"
                          "  backoff_max: 30s\n"
                          "  shutdown_grace: 20s\n" TARGETS,
                          &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.spool_max_bytes, 2LL << 20);
    assert_int_equal(cfg.batch_max_events, 100);
    assert_int_equal(cfg.batch_max_bytes, 64LL << 10);
    assert_int_equal(cfg.batch_max_age_ms, 250);
    assert_int_equal(cfg.backoff_initial_ms, 200);
    assert_int_equal(cfg.backoff_max_ms, 30000);
    assert_int_equal(cfg.shutdown_grace_ms, 20000);
    agent_config_free(&cfg);
    /* A long backoff_initial lifts the default cap with it. */
    assert_int_equal(load(HEAD "shipping: {backoff_initial: 2m}\n" TARGETS,
                          &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.backoff_max_ms, 120000);
    agent_config_free(&cfg);
}

static void test_bad_spool_bound_and_shipping_keys_are_errors(void **state)
{
    (void)state;
    expect_error(HEAD "  max_bytes: 1KiB\n" TARGETS,
                 "9: spool.max_bytes: must be between 65536 and "
                 "68719476736 bytes");
    expect_error(HEAD "shipping:\n  batch_max_event: 5\n" TARGETS,
                 "10: shipping.batch_max_event: unknown key");
    expect_error(HEAD "shipping:\n  batch_max_events: 0\n" TARGETS,
                 "10: shipping.batch_max_events: must be between 1 and "
                 "10000");
    /* The collector refuses a batch over 10000 events. */
    expect_error(HEAD "shipping:\n  batch_max_events: 10001\n" TARGETS,
                 "10: shipping.batch_max_events: must be between 1 and "
                 "10000");
    expect_error(HEAD "shipping:\n  batch_max_bytes: 8MiB\n" TARGETS,
                 "10: shipping.batch_max_bytes: must be between 1024 and "
                 "4194304 bytes");
    expect_error(HEAD "shipping:\n  backoff_initial: 5s\n"
                 "  backoff_max: 2s\n" TARGETS,
                 "11: shipping.backoff_max: must not be below "
                 "backoff_initial (5000ms)");
    expect_error_prefix(HEAD "shipping:\n  shutdown_grace: soon\n" TARGETS,
                        "10: shipping.shutdown_grace: expected a duration");
}

static void test_bad_expect_status_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD TARGETS "    expect_status: [200, 600]\n",
                 "12: targets[0].expect_status[1]: expected an HTTP status "
                 "from 100 to 599, got \"600\"");
    expect_error(HEAD TARGETS "    expect_status: []\n",
                 "12: targets[0].expect_status: list is empty");
}

static void test_unknown_probe_type_is_an_error(void **state)
{
    char want[256];

    (void)state;
    snprintf(want, sizeof(want), "12: targets[0].type: unknown probe type "
             "\"smtp\"; known: %s", probe_type_names());
    assert_non_null(strstr(probe_type_names(), "http"));
    expect_error(HEAD TARGETS "    type: smtp\n", want);
}

static void test_bad_log_level_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD "log_level: loud\n" TARGETS,
                 "9: log_level: expected error, warn, info or debug, got "
                 "\"loud\"");
}

static void test_yaml_syntax_error_is_one_line(void **state)
{
    (void)state;
    expect_error_prefix(HEAD "targets: [\n", "10: YAML syntax: ");
}

#define RESOLVER_TARGET                     \
    "targets:\n"                            \
    "  - name: shop\n"                      \
    "    url: http://shop.example:8080/health\n"

/* Loads @yaml, which must succeed, and returns the first target's
 * fingerprint (caller frees). */
static char *fingerprint_of(const char *yaml)
{
    struct agent_config cfg = { 0 };
    char err[512], *fp;

    if (load(yaml, &cfg, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    assert_int_equal(cfg.n_targets, 1);
    fp = strdup(cfg.targets[0].fingerprint);
    assert_non_null(fp);
    agent_config_free(&cfg);
    return fp;
}

static void test_http_resolver_loads_and_changes_the_target(void **state)
{
    char *plain, *v4, *v6, *other;

    (void)state;
    plain = fingerprint_of(HEAD RESOLVER_TARGET);
    v4 = fingerprint_of(HEAD RESOLVER_TARGET
                        "    resolver: 127.0.0.53:5353\n");
    v6 = fingerprint_of(HEAD RESOLVER_TARGET "    resolver: \"[::1]:53\"\n");
    other = fingerprint_of(HEAD RESOLVER_TARGET
                           "    resolver: 127.0.0.54:5353\n");
    /* A reload that adds or changes the resolver changes the target. */
    assert_string_not_equal(plain, v4);
    assert_string_not_equal(v4, other);
    assert_string_not_equal(v4, v6);
    free(plain);
    free(v4);
    free(v6);
    free(other);
    /* With sni, on https. */
    free(fingerprint_of(HEAD "targets:\n  - name: shop\n"
                        "    url: https://shop-eu.example/health\n"
                        "    sni: shop.example\n"
                        "    resolver: 127.0.0.1:53\n"));
}

static void test_bad_http_resolver_is_an_error(void **state)
{
    static const char *const bad[] = {
        "dns.example:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "[::1]", "[127.0.0.1]:53", "", "1.2.3.4.5:53", "127.0.0.1:53x",
    };
    char yaml[512], want[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml), HEAD RESOLVER_TARGET
                 "    resolver: \"%s\"\n", bad[i]);
        snprintf(want, sizeof(want), "12: targets[0].resolver: expected an "
                 "IP address and port, as 127.0.0.1:53 or [::1]:53, got "
                 "\"%s\"", bad[i]);
        expect_error(yaml, want);
    }
    expect_error(HEAD RESOLVER_TARGET "    resolver: [127.0.0.1:53]\n",
                 "12: targets[0].resolver: expected a scalar value");
    expect_error(HEAD TARGETS "    resolver: 127.0.0.1:53\n",
                 "12: targets[0].resolver: the URL's host 127.0.0.1 is an "
                 "address: nothing to resolve");
    expect_error(HEAD "targets:\n  - name: v6\n"
                 "    url: http://[::1]:8080/\n"
                 "    resolver: 127.0.0.1:53\n",
                 "12: targets[0].resolver: the URL's host [::1] is an "
                 "address: nothing to resolve");
    /* Only HTTP targets take it this way (the DNS probe has its own). */
    expect_error(HEAD "targets:\n  - name: t\n    type: tcp\n"
                 "    address: shop.example:443\n"
                 "    resolver: 127.0.0.1:53\n",
                 "13: targets[0].resolver: unknown key");
}

static void test_missing_file_is_an_error(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512], want[512];

    (void)state;
    snprintf(want, sizeof(want), "%s/none.yaml", test_dir);
    assert_int_equal(agent_config_load(want, &cfg, err, sizeof(err)),
                     -ENOENT);
    strcat(want, ":0: cannot open: No such file or directory");
    assert_string_equal(err, want);
}

static void test_probers_loads_per_target_and_as_default(void **state)
{
    struct agent_config cfg = { 0 };
    char err[512];

    (void)state;
    assert_int_equal(load(HEAD TARGETS, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.targets[0].probers, 0);    /* every agent */
    agent_config_free(&cfg);
    assert_int_equal(load(HEAD "probers: 3\n" TARGETS
                          "  - name: dns\n"
                          "    url: http://127.0.0.1:9/\n"
                          "    probers: 1\n", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.targets[0].probers, 3);    /* inherited */
    assert_int_equal(cfg.targets[1].probers, 1);
    agent_config_free(&cfg);
}

static void test_bad_probers_is_an_error(void **state)
{
    (void)state;
    expect_error(HEAD TARGETS "    probers: 0\n",
                 "12: targets[0].probers: must be between 1 and 1024");
    expect_error(HEAD TARGETS "    probers: -2\n",
                 "12: targets[0].probers: must be between 1 and 1024");
    expect_error(HEAD TARGETS "    probers: three\n",
                 "12: targets[0].probers: expected an integer, got "
                 "\"three\"");
    expect_error(HEAD "probers: 5000\n" TARGETS,
                 "9: probers: must be between 1 and 1024");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_full_config_loads_every_key),
        T(test_defaults_are_applied),
        T(test_inherited_timeout_shrinks_to_short_interval),
        T(test_unknown_top_level_key_is_an_error),
        T(test_unknown_key_in_collector_is_an_error),
        T(test_unknown_key_in_spool_is_an_error),
        T(test_unknown_key_in_target_is_an_error),
        T(test_key_given_twice_is_an_error),
        T(test_wrong_types_are_errors),
        T(test_missing_required_keys_are_errors),
        T(test_names_with_control_characters_are_errors),
        T(test_missing_node_needs_node_name),
        T(test_node_name_env_overrides_file),
        T(test_node_name_env_must_be_a_plain_name),
        T(test_bad_target_url_is_an_error),
        T(test_non_http_scheme_is_an_error),
        T(test_bad_collector_url_is_an_error),
        T(test_duplicate_target_name_names_the_second),
        T(test_bad_duration_is_an_error),
        T(test_timeout_longer_than_interval_is_an_error),
        T(test_token_and_token_file_together_are_an_error),
        T(test_no_token_is_an_error),
        T(test_token_file_is_read_and_trimmed),
        T(test_collectors_list_gives_every_collector),
        T(test_collector_and_collectors_errors),
        T(test_spool_bound_and_shipping_keys_load),
        T(test_bad_spool_bound_and_shipping_keys_are_errors),
        T(test_bad_expect_status_is_an_error),
        T(test_unknown_probe_type_is_an_error),
        T(test_bad_log_level_is_an_error),
        T(test_yaml_syntax_error_is_one_line),
        T(test_missing_file_is_an_error),
        T(test_http_resolver_loads_and_changes_the_target),
        T(test_bad_http_resolver_is_an_error),
        T(test_probers_loads_per_target_and_as_default),
        T(test_bad_probers_is_an_error),
#undef T
    };
    int rc;

    snprintf(test_dir, sizeof(test_dir), "/tmp/test_agent_config.XXXXXX");
    if (!mkdtemp(test_dir))
        return 1;
    snprintf(test_path, sizeof(test_path), "%s/agent.yaml", test_dir);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(test_dir);
    return rc;
}
