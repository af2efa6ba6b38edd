/* test_collector_config.c -- collector.yaml parsing: every error path gives
 * one line naming file, line and key; a valid file gives the values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char cfg_dir[] = "/tmp/sextant-cfg-XXXXXX";
static char cfg_path[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads @yaml and asserts it fails with an error that contains "@want"
 * after the file name. */
static void expect_error(const char *yaml, const char *want)
{
    struct collector_config cfg;
    char err[600], full[700];

    write_file(cfg_path, yaml);
    assert_true(collector_config_load(cfg_path, &cfg, err, sizeof(err)) < 0);
    snprintf(full, sizeof(full), "%s:%s", cfg_path, want);
    if (strcmp(err, full) != 0)
        fail_msg("got  \"%s\"\nwant \"%s\"", err, full);
    assert_null(strchr(err, '\n'));
}

#define OK_CLUSTERS \
    "clusters:\n" \
    "  - name: eu\n" \
    "    token: aaaaaaaaaaaaaaaa\n"

static void test_valid_config_loads_with_defaults(void **state)
{
    struct collector_config cfg;
    char err[600];

    (void)state;
    write_file(cfg_path, "listen: 127.0.0.1:8480\ndb: /tmp/x.db\n" OK_CLUSTERS);
    assert_int_equal(collector_config_load(cfg_path, &cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg.listen, "127.0.0.1:8480");
    assert_string_equal(cfg.db_path, "/tmp/x.db");
    assert_int_equal(cfg.n_clusters, 1);
    assert_string_equal(cfg.clusters[0].name, "eu");
    assert_int_equal(cfg.max_body, 8 << 20);
    assert_int_equal(cfg.max_inflated, 64 << 20);
    assert_int_equal(cfg.per_ip_limit, 64);
    assert_ptr_equal(collector_config_cluster_by_token(&cfg,
                                                       "aaaaaaaaaaaaaaaa"),
                     &cfg.clusters[0]);
    assert_null(collector_config_cluster_by_token(&cfg, "aaaaaaaaaaaaaaab"));
    assert_null(collector_config_cluster_by_token(&cfg, "aaaaaaaaaaaaaaa"));
    assert_null(cfg.tls.cert_pem);          /* no tls: plain HTTP */
    assert_null(cfg.tls.client_ca_pem);
    assert_int_equal(cfg.request_timeout_ms, 30000);
    assert_int_equal(cfg.queue_batches, 1024);
    assert_int_equal(cfg.queue_bytes, 64 << 20);
    assert_int_equal(cfg.raw_retention_ms, 14LL * 86400 * 1000);
    assert_int_equal(cfg.minute_retention_ms, 90LL * 86400 * 1000);
    assert_int_equal(cfg.hour_retention_ms, 400LL * 86400 * 1000);
    assert_int_equal(cfg.retention_interval_ms, 60000);
    assert_int_equal(cfg.n_api_tokens, 0);  /* API open */
    assert_false(collector_config_api_token_ok(&cfg, "aaaaaaaaaaaaaaaa"));
    collector_config_free(&cfg);
}

static void test_store_keys_and_api_tokens_load(void **state)
{
    struct collector_config cfg;
    char err[600], tok[300], yaml[900];

    (void)state;
    snprintf(tok, sizeof(tok), "%s/tok", cfg_dir);
    write_file(tok, "rrrrrrrrrrrrrrrrrrrr\n");
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\ndb: x.db\n"
             "limits:\n  request_timeout: 2s\n  queue_batches: 16\n"
             "  queue_bytes: 128MiB\n"
             "retention:\n  raw: 0\n  minute_rollups: 0\n"
             "  hour_rollups: 0\n  interval: 5s\n"
             OK_CLUSTERS
             "api_tokens:\n  - token: readreadreadread\n"
             "  - token_file: %s\n", tok);
    write_file(cfg_path, yaml);
    assert_int_equal(collector_config_load(cfg_path, &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg.request_timeout_ms, 2000);
    assert_int_equal(cfg.queue_batches, 16);
    assert_int_equal(cfg.queue_bytes, 128 << 20);
    assert_int_equal(cfg.raw_retention_ms, 0);
    assert_int_equal(cfg.minute_retention_ms, 0);
    assert_int_equal(cfg.hour_retention_ms, 0);
    assert_int_equal(cfg.retention_interval_ms, 5000);
    assert_int_equal(cfg.n_api_tokens, 2);
    assert_true(collector_config_api_token_ok(&cfg, "readreadreadread"));
    assert_true(collector_config_api_token_ok(&cfg, "rrrrrrrrrrrrrrrrrrrr"));
    assert_false(collector_config_api_token_ok(&cfg, "readreadreadreae"));
    /* Neither kind of token grants the other. */
    assert_false(collector_config_api_token_ok(&cfg, "aaaaaaaaaaaaaaaa"));
    assert_null(collector_config_cluster_by_token(&cfg, "readreadreadread"));
    collector_config_free(&cfg);
}

/* Tokens match by their SHA-256 digests: only the exact token, not one
 * longer, shorter, off in its last byte, or empty. */
static void test_token_matches_only_itself(void **state)
{
    struct collector_config cfg;
    char err[600];

    (void)state;
    write_file(cfg_path, "listen: 127.0.0.1:1\ndb: x.db\n" OK_CLUSTERS
               "  - name: us\n    token: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
               "api_tokens:\n  - token: readreadreadread\n");
    assert_int_equal(collector_config_load(cfg_path, &cfg, err, sizeof(err)),
                     0);
    assert_ptr_equal(collector_config_cluster_by_token(
                         &cfg, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                     &cfg.clusters[1]);
    assert_ptr_equal(collector_config_cluster_by_token(&cfg,
                                                       "aaaaaaaaaaaaaaaa"),
                     &cfg.clusters[0]);
    assert_null(collector_config_cluster_by_token(&cfg, "aaaaaaaaaaaaaaaaa"));
    assert_null(collector_config_cluster_by_token(&cfg, "aaaaaaaaaaaaaaaa "));
    assert_null(collector_config_cluster_by_token(
                    &cfg, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbc"));
    assert_null(collector_config_cluster_by_token(&cfg, ""));
    assert_true(collector_config_api_token_ok(&cfg, "readreadreadread"));
    assert_false(collector_config_api_token_ok(&cfg, "readreadreadreadr"));
    assert_false(collector_config_api_token_ok(&cfg, "readreadreadrea"));
    assert_false(collector_config_api_token_ok(&cfg, "readreadreadreaD"));
    assert_false(collector_config_api_token_ok(&cfg, ""));
    collector_config_free(&cfg);
}

/* Without queue_bytes, the queue grows to hold one largest batch. */
static void test_queue_bytes_follows_max_inflated(void **state)
{
    struct collector_config cfg;
    char err[600];

    (void)state;
    write_file(cfg_path, "listen: 127.0.0.1:1\ndb: x\nlimits:\n"
               "  max_inflated: 256MiB\n" OK_CLUSTERS);
    assert_int_equal(collector_config_load(cfg_path, &cfg, err, sizeof(err)),
                     0);
    assert_int_equal(cfg.queue_bytes, 256 << 20);
    collector_config_free(&cfg);
}

static void test_bad_store_keys_are_errors(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n  raw: soon\n"
                 OK_CLUSTERS,
                 "4: retention.raw: expected a duration such as 500ms, 10s "
                 "or 2m, got \"soon\"");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n  raw: 30s\n"
                 OK_CLUSTERS,
                 "4: retention.raw: must be 0 (keep forever) or at least 1m");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n  raw: 30d\n"
                 "  minute_rollups: 7d\n" OK_CLUSTERS,
                 "5: retention.minute_rollups: minute_rollups must not be "
                 "shorter than raw (0 keeps forever)");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n  raw: 0\n"
                 OK_CLUSTERS,
                 "4: retention.raw: minute_rollups must not be shorter than "
                 "raw (0 keeps forever)");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n"
                 "  hour_rollups: 30d\n" OK_CLUSTERS,
                 "4: retention.hour_rollups: hour_rollups must not be "
                 "shorter than minute_rollups (0 keeps forever)");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n  interval: 0\n"
                 OK_CLUSTERS,
                 "4: retention.interval: must be between 1000ms and "
                 "86400000ms");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention:\n  daily: 1d\n"
                 OK_CLUSTERS, "4: retention.daily: unknown key");
    expect_error("listen: 127.0.0.1:1\ndb: x\nretention: 14d\n"
                 OK_CLUSTERS, "3: retention: expected a mapping");
    expect_error("listen: 127.0.0.1:1\ndb: x\nlimits:\n  queue_batches: 0\n"
                 OK_CLUSTERS,
                 "4: limits.queue_batches: must be between 1 and 1048576");
    expect_error("listen: 127.0.0.1:1\ndb: x\nlimits:\n  queue_bytes: 1MiB\n"
                 OK_CLUSTERS,
                 "4: limits.queue_bytes: must not be smaller than "
                 "max_inflated: one batch must fit");
    expect_error("listen: 127.0.0.1:1\ndb: x\nlimits:\n"
                 "  request_timeout: 500ms\n" OK_CLUSTERS,
                 "4: limits.request_timeout: must be between 1000ms and "
                 "3600000ms");
}

static void test_bad_api_tokens_are_errors(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens: []\n", "6: api_tokens: list is empty");
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens:\n  - token: short\n",
                 "7: api_tokens[0].token: token must be at least 16 "
                 "characters, no spaces");
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens:\n  - name: x\n",
                 "7: api_tokens[0].name: unknown key");
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens:\n  - token: readreadreadread\n"
                 "    token_file: /etc/hostname\n",
                 "7: api_tokens[0].token: give exactly one of token and "
                 "token_file");
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens:\n  - token: readreadreadread\n"
                 "  - token: readreadreadread\n",
                 "8: api_tokens[1].token: same token as api_tokens[0]");
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens:\n  - token: aaaaaaaaaaaaaaaa\n",
                 "7: api_tokens[0].token: same token as clusters[0]: keep "
                 "read and ingest tokens apart");
}

static void test_token_file_is_read_and_trimmed(void **state)
{
    struct collector_config cfg;
    char err[600], tok[300], yaml[600];

    (void)state;
    snprintf(tok, sizeof(tok), "%s/tok", cfg_dir);
    write_file(tok, "bbbbbbbbbbbbbbbbbbbb\n");
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\ndb: x.db\nlimits:\n  max_body: 1MiB\n"
             "  connection_timeout: 15s\n"
             "clusters:\n  - name: us\n    token_file: %s\n", tok);
    write_file(cfg_path, yaml);
    assert_int_equal(collector_config_load(cfg_path, &cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg.clusters[0].token, "bbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(cfg.max_body, 1 << 20);
    assert_int_equal(cfg.conn_timeout_ms, 15000);
    collector_config_free(&cfg);
}

static void test_unknown_top_level_key_is_an_error(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\nport: 9\n" OK_CLUSTERS,
                 "3: port: unknown key");
}

static void test_unknown_nested_key_names_its_path(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\nclusters:\n"
                 "  - name: eu\n    token: aaaaaaaaaaaaaaaa\n    color: red\n",
                 "6: clusters[0].color: unknown key");
}

static void test_missing_required_key_is_an_error(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\n" OK_CLUSTERS,
                 "1: db: required key is missing");
    expect_error("listen: 127.0.0.1:1\ndb: x\nclusters:\n"
                 "  - token: aaaaaaaaaaaaaaaa\n",
                 "4: clusters[0].name: required key is missing");
}

static void test_wrong_type_is_an_error(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\nclusters: eu\n",
                 "3: clusters: expected a list");
    expect_error("listen: 127.0.0.1:1\ndb: [a, b]\n" OK_CLUSTERS,
                 "2: db: expected a scalar value");
    expect_error("listen: 127.0.0.1:1\ndb: x\nlimits:\n  max_body: big\n"
                 OK_CLUSTERS,
                 "4: limits.max_body: expected a size such as 512KiB or "
                 "64MiB, got \"big\"");
    expect_error("listen: 127.0.0.1:1\ndb: x\nlimits:\n  threads: 0\n"
                 OK_CLUSTERS,
                 "4: limits.threads: must be between 1 and 256");
}

static void test_bad_listen_address_is_an_error(void **state)
{
    (void)state;
    expect_error("listen: localhost\ndb: x\n" OK_CLUSTERS,
                 "1: listen: expected HOST:PORT, got \"localhost\"");
}

static void test_token_rules_are_enforced(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\nclusters:\n  - name: eu\n",
                 "4: clusters[0].token: give exactly one of token and "
                 "token_file");
    expect_error("listen: 127.0.0.1:1\ndb: x\nclusters:\n  - name: eu\n"
                 "    token: short\n",
                 "5: clusters[0].token: token must be at least 16 "
                 "characters, no spaces");
    expect_error("listen: 127.0.0.1:1\ndb: x\nclusters:\n  - name: eu\n"
                 "    token_file: /nonexistent/tok\n",
                 "5: clusters[0].token_file: cannot read /nonexistent/tok: "
                 "No such file or directory");
}

static void test_duplicate_cluster_or_token_is_an_error(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "  - name: eu\n    token: cccccccccccccccc\n",
                 "6: clusters[1].name: cluster \"eu\" is listed twice");
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "  - name: us\n    token: aaaaaaaaaaaaaaaa\n",
                 "6: clusters[1].token: same token as clusters[0]: a token "
                 "must name one cluster");
}

static void test_duplicate_key_and_bad_yaml_are_errors(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\ndb: y\n" OK_CLUSTERS,
                 "3: db: key given twice");
    expect_error("listen: 127.0.0.1:1\ndb: [x\n",
                 "3: YAML syntax: did not find expected ',' or ']'");
    expect_error("log_level: loud\nlisten: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS,
                 "1: log_level: expected error, warn, info or debug");
}

/* Files that do not exist, cannot be read or hold no PEM are config
 * errors at their key's line (the good case, with certificates made by
 * openssl, is in tests/collector_tls.sh). */
static void test_tls_files_are_checked_when_loading(void **state)
{
    char yaml[1200], txt[300];

    (void)state;
    snprintf(txt, sizeof(txt), "%s/tok", cfg_dir);  /* removed by teardown */
    write_file(txt, "not a certificate\n");
    expect_error("listen: 127.0.0.1:1\ndb: x\ntls: on\n" OK_CLUSTERS,
                 "3: tls: expected a mapping");
    expect_error("listen: 127.0.0.1:1\ndb: x\ntls:\n  key_file: k\n"
                 OK_CLUSTERS,
                 "4: tls.cert_file: required key is missing");
    expect_error("listen: 127.0.0.1:1\ndb: x\ntls:\n"
                 "  cert_file: /nonexistent/c.pem\n  key_file: k\n"
                 OK_CLUSTERS,
                 "4: tls.cert_file: cannot read /nonexistent/c.pem: No such "
                 "file or directory");
    snprintf(yaml, sizeof(yaml), "listen: 127.0.0.1:1\ndb: x\ntls:\n"
             "  cert_file: %s\n  key_file: %s\n" OK_CLUSTERS, txt, txt);
    write_file(cfg_path, yaml);
    {
        struct collector_config cfg;
        char err[600], want[700];

        assert_true(collector_config_load(cfg_path, &cfg, err,
                                          sizeof(err)) < 0);
        snprintf(want, sizeof(want), "%s:4: tls.cert_file: %s: no PEM "
                 "certificate", cfg_path, txt);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("got  \"%s\"\nwant \"%s...\"", err, want);
    }
    expect_error("listen: 127.0.0.1:1\ndb: x\ntls:\n  cert_file: c\n"
                 "  key_file: k\n  cipher: x\n" OK_CLUSTERS,
                 "6: tls.cipher: unknown key");
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(cfg_dir))
        return -1;
    snprintf(cfg_path, sizeof(cfg_path), "%s/collector.yaml", cfg_dir);
    return 0;
}

static int teardown(void **state)
{
    char tok[300];

    (void)state;
    snprintf(tok, sizeof(tok), "%s/tok", cfg_dir);
    unlink(tok);
    unlink(cfg_path);
    rmdir(cfg_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_config_loads_with_defaults),
        cmocka_unit_test(test_token_file_is_read_and_trimmed),
        cmocka_unit_test(test_store_keys_and_api_tokens_load),
        cmocka_unit_test(test_token_matches_only_itself),
        cmocka_unit_test(test_queue_bytes_follows_max_inflated),
        cmocka_unit_test(test_bad_store_keys_are_errors),
        cmocka_unit_test(test_bad_api_tokens_are_errors),
        cmocka_unit_test(test_unknown_top_level_key_is_an_error),
        cmocka_unit_test(test_unknown_nested_key_names_its_path),
        cmocka_unit_test(test_missing_required_key_is_an_error),
        cmocka_unit_test(test_wrong_type_is_an_error),
        cmocka_unit_test(test_bad_listen_address_is_an_error),
        cmocka_unit_test(test_token_rules_are_enforced),
        cmocka_unit_test(test_duplicate_cluster_or_token_is_an_error),
        cmocka_unit_test(test_duplicate_key_and_bad_yaml_are_errors),
        cmocka_unit_test(test_tls_files_are_checked_when_loading),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
