/* test_collector_config.c -- collector.yaml parsing: every error path gives
 * one line naming file, line and key; a valid file gives the values (also
 * the services of each pattern, read back field by field, every
 * collector config in examples/ and the README's service examples). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "util.h"

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
    if (collector_config_load(cfg_path, &cfg, err, sizeof(err)) == 0) {
        collector_config_free(&cfg);
        fail_msg("loaded, but want \"%s\"", want);
    }
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
    assert_int_equal(cfg.queue_batches, 10000);
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

/* Lines 1-6 of every services test; the service starts at line 7. */
#define SVC_HEAD "listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS "services:\n"
/* An active-passive service, lines 7-19. */
#define SVC_AP \
    "  - name: shop\n" \
    "    global_name: shop.global.test\n" \
    "    pattern: active-passive\n" \
    "    regions:\n" \
    "      - name: eu-west-1\n" \
    "        role: primary\n" \
    "        targets: [shop-eu]\n" \
    "        answers: [127.0.1.1]\n" \
    "      - name: us-east-1\n" \
    "        role: standby\n" \
    "        targets: [shop-us]\n" \
    "        answers: [127.0.2.1]\n" \
    "    global_targets: [shop-global]\n"

/* Loads @yaml, which must be valid, into @cfg. */
static void load_ok(const char *yaml, struct collector_config *cfg)
{
    char err[600];

    write_file(cfg_path, yaml);
    if (collector_config_load(cfg_path, cfg, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
}

/* Asserts region @r: its name, role, targets and answers (NULL-ended). */
static void expect_region(const struct topo_region *r, const char *name,
                          enum topo_role role, const char *const *targets,
                          const char *const *answers)
{
    size_t n;

    assert_string_equal(r->name, name);
    assert_int_equal(r->role, role);
    for (n = 0; targets[n]; n++)
        assert_string_equal(r->targets[n], targets[n]);
    assert_int_equal(r->n_targets, n);
    for (n = 0; answers[n]; n++)
        assert_string_equal(r->answers[n], answers[n]);
    assert_int_equal(r->n_answers, n);
}

/* Asserts @cfg has one service, @name, of @pattern with @n regions. */
static const struct topo_service *
only_service(const struct collector_config *cfg, const char *name,
             enum topo_pattern pattern, size_t n)
{
    const struct topo_service *s;

    assert_int_equal(cfg->topo.n_services, 1);
    s = &cfg->topo.services[0];
    assert_string_equal(s->name, name);
    assert_int_equal(s->pattern, pattern);
    assert_int_equal(s->n_regions, n);
    return s;
}

#define STRS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_active_passive_service_reads_back(void **state)
{
    struct collector_config cfg;
    const struct topo_service *s;
    const char *split_answers[] = { "127.0.1.1", "127.0.2.1" };
    const char *one_answer[] = { "DB.US.test." };
    int split = -1;

    (void)state;
    load_ok("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
            "api_tokens:\n  - token: readreadreadread\n"
            "  - token: notenotenotenote\n    scope: annotate\n"
            "  - token: explicitreadtoken\n    scope: read\n"
            "services:\n"
            "  - name: db\n    global_name: db.global.test.\n"
            "    pattern: active-passive\n    regions:\n"
            "      - name: eu-west-1\n        role: primary\n"
            "        targets: [db-eu, db-eu-tcp]\n"
            "        answers: [127.0.1.1, '::ffff:7f00:101', lb.eu.test]\n"
            "      - name: us-east-1\n        role: standby\n"
            "        targets: [db-us]\n        answers: [db.us.test]\n"
            "        lag: {metric: pg_replication_lag_seconds, "
            "target: db-us-metrics}\n"
            "      - name: ap-southeast-1\n        role: standby\n"
            "        targets: [db-ap]\n        answers: [127.0.3.1]\n"
            "    global_targets: [db-global-http, db-global-dns]\n"
            "incidents:\n  quorum: 0.66\n  stale_intervals: 5\n"
            "  stable: 2m\n  webhooks:\n    - https://hooks.example/a\n"
            "    - http://127.0.0.1:9/b?x=1\n", &cfg);
    s = only_service(&cfg, "db", TOPO_ACTIVE_PASSIVE, 3);
    assert_string_equal(s->global_name, "db.global.test.");
    expect_region(&s->regions[0], "eu-west-1", TOPO_ROLE_PRIMARY,
                  STRS("db-eu", "db-eu-tcp"),
                  STRS("127.0.1.1", "::ffff:7f00:101", "lb.eu.test"));
    expect_region(&s->regions[1], "us-east-1", TOPO_ROLE_STANDBY,
                  STRS("db-us"), STRS("db.us.test"));
    expect_region(&s->regions[2], "ap-southeast-1", TOPO_ROLE_STANDBY,
                  STRS("db-ap"), STRS("127.0.3.1"));
    assert_null(s->regions[0].lag_metric);
    assert_null(s->regions[0].lag_target);
    assert_string_equal(s->regions[1].lag_metric,
                        "pg_replication_lag_seconds");
    assert_string_equal(s->regions[1].lag_target, "db-us-metrics");
    assert_int_equal(s->n_global_targets, 2);
    assert_string_equal(s->global_targets[0], "db-global-http");
    assert_string_equal(s->global_targets[1], "db-global-dns");
    assert_true(cfg.topo.opt.quorum > 0.6599 && cfg.topo.opt.quorum < 0.6601);
    assert_int_equal(cfg.topo.opt.stale_intervals, 5);
    assert_int_equal(cfg.topo.opt.stable_ms, 120000);
    assert_int_equal(cfg.topo.opt.n_webhooks, 2);
    assert_string_equal(cfg.topo.opt.webhooks[0], "https://hooks.example/a");
    assert_string_equal(cfg.topo.opt.webhooks[1], "http://127.0.0.1:9/b?x=1");
    /* The lookups the engine and the API use. */
    assert_ptr_equal(topo_service_by_name(&cfg.topo, "db"), s);
    assert_null(topo_service_by_name(&cfg.topo, "DB"));
    assert_ptr_equal(topo_region_by_name(s, "us-east-1"), &s->regions[1]);
    assert_null(topo_region_by_name(s, "us-west-2"));
    assert_ptr_equal(topo_region_of_target(s, "db-eu-tcp"), &s->regions[0]);
    assert_ptr_equal(topo_region_of_target(s, "db-ap"), &s->regions[2]);
    assert_null(topo_region_of_target(s, "db-global-http"));
    assert_ptr_equal(topo_primary(s), &s->regions[0]);
    assert_true(topo_is_global_target(s, "db-global-dns"));
    assert_false(topo_is_global_target(s, "db-eu"));
    /* Addresses by value, names without case or trailing dot. */
    assert_ptr_equal(topo_region_of_answer(s, "::ffff:127.0.1.1"),
                     &s->regions[0]);
    assert_ptr_equal(topo_region_of_answer(s, "LB.EU.test."),
                     &s->regions[0]);
    assert_ptr_equal(topo_region_of_answer(s, "db.us.test"), &s->regions[1]);
    assert_null(topo_region_of_answer(s, "127.0.1.2"));
    assert_null(topo_region_of_answer(s, "db.us.test.example"));
    assert_null(topo_region_of_answers(s, split_answers, 2, &split));
    assert_int_equal(split, 1);
    assert_ptr_equal(topo_region_of_answers(s, one_answer, 1, &split),
                     &s->regions[1]);
    assert_int_equal(split, 0);
    assert_string_equal(topo_pattern_name(s->pattern), "active-passive");
    assert_string_equal(topo_role_name(s->regions[1].role), "standby");
    /* Scopes: read unless annotate is written; unknown tokens have none. */
    assert_int_equal(collector_config_api_token_scope(&cfg,
                                                      "readreadreadread"),
                     COLLECTOR_SCOPE_READ);
    assert_int_equal(collector_config_api_token_scope(&cfg,
                                                      "notenotenotenote"),
                     COLLECTOR_SCOPE_ANNOTATE);
    assert_int_equal(collector_config_api_token_scope(&cfg,
                                                      "explicitreadtoken"),
                     COLLECTOR_SCOPE_READ);
    assert_int_equal(collector_config_api_token_scope(&cfg,
                                                      "notenotenotenotf"),
                     COLLECTOR_SCOPE_NONE);
    assert_int_equal(collector_config_api_token_scope(&cfg,
                                                      "aaaaaaaaaaaaaaaa"),
                     COLLECTOR_SCOPE_NONE);
    assert_true(collector_config_api_token_ok(&cfg, "notenotenotenote"));
    assert_false(collector_config_api_token_ok(&cfg, "notenotenotenotf"));
    collector_config_free(&cfg);
}

static void test_active_active_service_reads_back(void **state)
{
    struct collector_config cfg;
    const struct topo_service *s;

    (void)state;
    load_ok(SVC_HEAD
            "  - name: api\n    global_name: api.global.test\n"
            "    pattern: active-active\n    regions:\n"
            "      - name: eu-west-1\n        targets: [api-eu]\n"
            "        answers: [127.0.1.1]\n"
            "      - name: us-east-1\n        targets: [api-us, api-us-b]\n"
            "        answers: ['::1', 127.0.2.1]\n"
            "    global_targets: [api-global]\n", &cfg);
    s = only_service(&cfg, "api", TOPO_ACTIVE_ACTIVE, 2);
    expect_region(&s->regions[0], "eu-west-1", TOPO_ROLE_NONE,
                  STRS("api-eu"), STRS("127.0.1.1"));
    expect_region(&s->regions[1], "us-east-1", TOPO_ROLE_NONE,
                  STRS("api-us", "api-us-b"), STRS("::1", "127.0.2.1"));
    assert_ptr_equal(topo_region_of_answer(s, "0:0::1"), &s->regions[1]);
    assert_null(topo_primary(s));
    assert_string_equal(topo_pattern_name(s->pattern), "active-active");
    assert_string_equal(topo_role_name(s->regions[0].role), "none");
    /* No incidents block: the defaults. */
    assert_true(cfg.topo.opt.quorum == TOPO_QUORUM_DEFAULT);
    assert_int_equal(cfg.topo.opt.stale_intervals,
                     TOPO_STALE_INTERVALS_DEFAULT);
    assert_int_equal(cfg.topo.opt.stable_ms, TOPO_STABLE_MS_DEFAULT);
    assert_int_equal(cfg.topo.opt.n_webhooks, 0);
    collector_config_free(&cfg);
}

/* Two services, one sharded: names may repeat across services. */
static void test_sharded_service_reads_back(void **state)
{
    struct collector_config cfg;
    const struct topo_service *s;

    (void)state;
    load_ok(SVC_HEAD SVC_AP
            "  - name: users\n    global_name: users.global.test\n"
            "    pattern: sharded\n    regions:\n"
            "      - name: eu-west-1\n        targets: [shop-eu]\n"
            "        answers: [users-eu.example]\n"
            "      - name: ap-southeast-1\n        targets: [users-ap]\n"
            "        answers: [127.0.3.1]\n"
            "        lag: {metric: m, target: t}\n"
            "    global_targets: [users-global]\n"
            "incidents:\n  stable: 0\n", &cfg);
    assert_int_equal(cfg.topo.n_services, 2);
    assert_ptr_equal(topo_service_by_name(&cfg.topo, "shop"),
                     &cfg.topo.services[0]);
    s = topo_service_by_name(&cfg.topo, "users");
    assert_ptr_equal(s, &cfg.topo.services[1]);
    assert_string_equal(s->global_name, "users.global.test");
    assert_int_equal(s->pattern, TOPO_SHARDED);
    expect_region(&s->regions[0], "eu-west-1", TOPO_ROLE_NONE,
                  STRS("shop-eu"), STRS("users-eu.example"));
    expect_region(&s->regions[1], "ap-southeast-1", TOPO_ROLE_NONE,
                  STRS("users-ap"), STRS("127.0.3.1"));
    assert_string_equal(s->regions[1].lag_metric, "m");
    assert_string_equal(s->regions[1].lag_target, "t");
    assert_string_equal(s->global_targets[0], "users-global");
    assert_string_equal(topo_pattern_name(s->pattern), "sharded");
    assert_int_equal(cfg.topo.opt.stable_ms, 0);
    collector_config_free(&cfg);
}

/* @svc (from line 7) after SVC_HEAD must fail with "@want". */
static void expect_svc_error(const char *svc, const char *want)
{
    char yaml[2000];

    snprintf(yaml, sizeof(yaml), "%s%s", SVC_HEAD, svc);
    expect_error(yaml, want);
}

/* SVC_AP with @from (which must occur in it) replaced by @to. */
static void expect_ap_error(const char *from, const char *to,
                            const char *want)
{
    char svc[1500];
    const char *at = strstr(SVC_AP, from);

    assert_non_null(at);
    snprintf(svc, sizeof(svc), "%.*s%s%s", (int)(at - SVC_AP), SVC_AP, to,
             at + strlen(from));
    expect_svc_error(svc, want);
}

static void test_bad_services_are_errors(void **state)
{
    (void)state;
    expect_ap_error("    pattern", "    color: red\n    pattern",
                    "9: services[0].color: unknown key");
    expect_ap_error("        role: primary\n",
                    "        role: primary\n        weight: 2\n",
                    "13: services[0].regions[0].weight: unknown key");
    expect_ap_error("name: shop\n    ", "",
                    "7: services[0].name: required key is missing");
    expect_ap_error("    global_targets: [shop-global]\n", "",
                    "7: services[0].global_targets: required key is "
                    "missing");
    expect_ap_error("[shop-global]", "[]",
                    "19: services[0].global_targets: list is empty");
    expect_ap_error("targets: [shop-us]", "targets: []",
                    "17: services[0].regions[1].targets: list is empty");
    expect_ap_error("        answers: [127.0.2.1]\n", "",
                    "15: services[0].regions[1].answers: required key is "
                    "missing");
    expect_svc_error("  - name: a\n    global_name: a.test\n"
                     "    pattern: sharded\n    regions: []\n"
                     "    global_targets: [g]\n",
                     "10: services[0].regions: list is empty");
    expect_ap_error("active-passive", "active-standby",
                    "9: services[0].pattern: expected active-passive, "
                    "active-active or sharded, got \"active-standby\"");
    expect_ap_error("role: standby", "role: leader",
                    "16: services[0].regions[1].role: expected primary or "
                    "standby, got \"leader\"");
    expect_ap_error("active-passive", "active-active",
                    "12: services[0].regions[0].role: only active-passive "
                    "regions have a role; this service is active-active");
    expect_ap_error("        role: standby\n", "",
                    "15: services[0].regions[1].role: required key is "
                    "missing: an active-passive region is primary or "
                    "standby");
    expect_ap_error("role: standby", "role: primary",
                    "16: services[0].regions[1].role: a second primary "
                    "(eu-west-1 is one): an active-passive service has "
                    "exactly one");
    expect_ap_error("role: primary", "role: standby",
                    "11: services[0].regions: an active-passive service "
                    "needs one primary region");
    expect_svc_error(SVC_AP SVC_AP,
                     "20: services[1].name: service \"shop\" is listed "
                     "twice");
    expect_ap_error("name: us-east-1", "name: eu-west-1",
                    "15: services[0].regions[1].name: region \"eu-west-1\" "
                    "is listed twice");
    expect_ap_error("[shop-us]", "[shop-us, shop-eu]",
                    "17: services[0].regions[1].targets[1]: \"shop-eu\" is "
                    "in regions[0] (eu-west-1) too: a target probes one "
                    "region");
    expect_ap_error("[shop-us]", "[shop-us, shop-us]",
                    "17: services[0].regions[1].targets[1]: \"shop-us\" is "
                    "listed twice");
    expect_ap_error("[shop-global]", "[shop-us]",
                    "19: services[0].global_targets[0]: \"shop-us\" is in "
                    "regions[1] (us-east-1) too: a global target probes the "
                    "global name");
    expect_ap_error("[127.0.2.1]", "[127.0.2.1, 127.0.1.1]",
                    "18: services[0].regions[1].answers[1]: \"127.0.1.1\" is "
                    "in regions[0] (eu-west-1) too: an answer means one "
                    "region");
    expect_ap_error("[127.0.1.1]", "['::1', '0:0::1']",
                    "14: services[0].regions[0].answers[1]: \"0:0::1\" is "
                    "listed twice");
    expect_ap_error("[127.0.1.1]", "[lb.shop.test, LB.shop.TEST.]",
                    "14: services[0].regions[0].answers[1]: "
                    "\"LB.shop.TEST.\" is listed twice");
    expect_ap_error("[127.0.1.1]", "['not an answer']",
                    "14: services[0].regions[0].answers[0]: \"not an "
                    "answer\" is neither an IP address nor a DNS name");
    expect_ap_error("name: shop\n", "name: my shop\n",
                    "7: services[0].name: \"my shop\": 1 to 64 letters, "
                    "digits, '.', '_' or '-'");
    expect_ap_error("role: standby\n", "role: standby\n"
                    "        lag: {metric: m}\n",
                    "17: services[0].regions[1].lag.target: required key is "
                    "missing: lag names a metric and the target that "
                    "scrapes it");
    expect_ap_error("role: standby\n", "role: standby\n"
                    "        lag: {metric: m, target: t, unit: s}\n",
                    "17: services[0].regions[1].lag.unit: unknown key");
}

/* A global_name must be a DNS name: not an address, no bad labels. */
static void test_global_name_must_be_a_dns_name(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1", "shop_global.test", "-shop.test", "shop-.test",
        "shop..test", ".shop.test", "shop.test..", "'::1'",
        "a23456789012345678901234567890123456789012345678901234567890"
        "1234.test",
    };
    char from[200], want[300];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(from, sizeof(from), "global_name: %s\n", bad[i]);
        snprintf(want, sizeof(want), "8: services[0].global_name: \"%.*s\" "
                 "is not a DNS name", bad[i][0] == '\''
                 ? (int)strlen(bad[i]) - 2 : (int)strlen(bad[i]),
                 bad[i] + (bad[i][0] == '\''));
        expect_ap_error("global_name: shop.global.test\n", from, want);
    }
}

/* SVC_HEAD SVC_AP, then @incidents from line 20, must fail with @want. */
static void expect_incidents_error(const char *incidents, const char *want)
{
    char yaml[2000];

    snprintf(yaml, sizeof(yaml), "%s%s%s", SVC_HEAD, SVC_AP, incidents);
    expect_error(yaml, want);
}

static void test_bad_incidents_are_errors(void **state)
{
    static const char *const quorums[] = { "0", "1", "1.5", "-0.5", "half",
                                           "nan", "0.5x", "inf" };
    char in[100], want[300];

    (void)state;
    for (size_t i = 0; i < sizeof(quorums) / sizeof(quorums[0]); i++) {
        snprintf(in, sizeof(in), "incidents:\n  quorum: %s\n", quorums[i]);
        snprintf(want, sizeof(want), "21: incidents.quorum: expected a share "
                 "between 0 and 1 (both excluded, 0.5: more than half), "
                 "got \"%s\"", quorums[i]);
        expect_incidents_error(in, want);
    }
    expect_incidents_error("incidents: 5\n",
                           "20: incidents: expected a mapping");
    expect_incidents_error("incidents:\n  retries: 3\n",
                           "21: incidents.retries: unknown key");
    expect_incidents_error("incidents:\n  stale_intervals: 0\n",
                           "21: incidents.stale_intervals: must be between 1 "
                           "and 100");
    expect_incidents_error("incidents:\n  stable: 2d\n",
                           "21: incidents.stable: must be between 0ms and "
                           "86400000ms");
    expect_incidents_error("incidents:\n  webhooks: []\n",
                           "21: incidents.webhooks: list is empty");
    expect_incidents_error("incidents:\n  webhooks: [ftp://h/x]\n",
                           "21: incidents.webhooks[0]: \"ftp://h/x\" is not "
                           "an http:// or https:// URL with a host");
    expect_incidents_error("incidents:\n  webhooks:\n    - http://h/\n"
                           "    - 'hooks.example/x'\n",
                           "23: incidents.webhooks[1]: \"hooks.example/x\" "
                           "is not an http:// or https:// URL with a host");
    expect_incidents_error("incidents:\n  webhooks: [http://h/, "
                           "http://h/]\n",
                           "21: incidents.webhooks[1]: \"http://h/\" is "
                           "listed twice");
}

static void test_bad_scope_is_an_error(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\n" OK_CLUSTERS
                 "api_tokens:\n  - token: readreadreadread\n"
                 "    scope: write\n",
                 "8: api_tokens[0].scope: expected read or annotate, got "
                 "\"write\"");
}

/* Every collector config in examples/ loads; the services example holds
 * the three-region active-passive service the README describes. */
static void test_example_collector_configs_load(void **state)
{
    struct collector_config cfg;
    const struct topo_service *s;
    char path[600], err[600];
    struct dirent *de;
    DIR *d = opendir(SEXTANT_SOURCE_DIR "/examples");
    int n = 0, services = 0;

    (void)state;
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "collector", 9) != 0 ||
            !strstr(de->d_name, ".yaml"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", SEXTANT_SOURCE_DIR "/examples",
                 de->d_name);
        if (collector_config_load(path, &cfg, err, sizeof(err)) != 0)
            fail_msg("%s: %s", de->d_name, err);
        n++;
        s = topo_service_by_name(&cfg.topo, "shop");
        if (strcmp(de->d_name, "collector-services.yaml") == 0) {
            assert_non_null(s);
            assert_int_equal(s->pattern, TOPO_ACTIVE_PASSIVE);
            assert_int_equal(s->n_regions, 3);
            assert_string_equal(topo_primary(s)->name, "eu-west-1");
            assert_int_equal(topo_region_by_name(s, "us-east-1")->role,
                             TOPO_ROLE_STANDBY);
            assert_non_null(topo_region_by_name(s, "ap-southeast-1"));
            services = 1;
        }
        collector_config_free(&cfg);
    }
    closedir(d);
    assert_true(n >= 2);
    assert_true(services);
}

/* Every ```yaml block of README.md that starts with "services:" loads
 * after a minimal head: the README's examples of each pattern work. */
static void test_readme_service_examples_load(void **state)
{
    static const char fence[] = "```yaml\nservices:";
    struct collector_config cfg;
    char *readme = NULL, *p, *end, yaml[8192];
    size_t len;
    int n = 0, head;

    (void)state;
    assert_int_equal(util_read_file(SEXTANT_SOURCE_DIR "/README.md",
                                    1u << 20, &readme, &len), 0);
    for (p = strstr(readme, fence); p; p = strstr(end, fence)) {
        p += strlen("```yaml\n");
        end = strstr(p, "```");
        assert_non_null(end);
        head = snprintf(yaml, sizeof(yaml), "listen: 127.0.0.1:1\ndb: x\n"
                        OK_CLUSTERS);
        assert_true((size_t)head + (size_t)(end - p) < sizeof(yaml));
        memcpy(yaml + head, p, (size_t)(end - p));
        yaml[head + (end - p)] = '\0';
        load_ok(yaml, &cfg);
        assert_true(cfg.topo.n_services >= 1);
        collector_config_free(&cfg);
        n++;
    }
    free(readme);
    assert_int_equal(n, 3);             /* one per pattern */
}

static void test_postgres_store_loads_without_db(void **state)
{
    struct collector_config cfg;
    char pw[300], yaml[1600];

    (void)state;
    snprintf(pw, sizeof(pw), "%s/pw", cfg_dir);
    write_file(pw, "s3cret\n");
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
             "  postgres:\n    conninfo: host=db.example port=5433 "
             "dbname=sextant sslmode=verify-full\n"
             "    password_file: %s\n" OK_CLUSTERS, pw);
    load_ok(yaml, &cfg);
    assert_int_equal(cfg.store_backend, STORE_BACKEND_POSTGRES);
    assert_string_equal(cfg.pg_conninfo, "host=db.example port=5433 "
                        "dbname=sextant sslmode=verify-full");
    assert_string_equal(cfg.pg_password_file, pw);
    assert_null(cfg.db_path);               /* unused on PostgreSQL */
    collector_config_free(&cfg);
    /* TLS files that can be read (their contents are libpq's to judge
     * when it connects). */
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
             "  postgres:\n    conninfo: host=db sslmode=verify-ca "
             "sslrootcert=%s sslcert=%s sslkey=%s\n" OK_CLUSTERS, pw, pw,
             pw);
    load_ok(yaml, &cfg);
    collector_config_free(&cfg);
    /* A URI is a connection string too; db may stay (unused). */
    load_ok("listen: 127.0.0.1:1\ndb: x.db\nstore:\n"
            "  backend: postgres\n  postgres:\n"
            "    conninfo: postgresql://sextant@db/sextant\n" OK_CLUSTERS,
            &cfg);
    assert_int_equal(cfg.store_backend, STORE_BACKEND_POSTGRES);
    assert_null(cfg.pg_password_file);
    collector_config_free(&cfg);
    /* backend: sqlite, said aloud, is the default. */
    load_ok("listen: 127.0.0.1:1\ndb: x.db\nstore:\n  backend: sqlite\n"
            OK_CLUSTERS, &cfg);
    assert_int_equal(cfg.store_backend, STORE_BACKEND_SQLITE);
    assert_null(cfg.pg_conninfo);
    collector_config_free(&cfg);
}

static void test_bad_store_backend_is_an_error(void **state)
{
    char yaml[600];

    (void)state;
    expect_error("listen: 127.0.0.1:1\ndb: x\nstore:\n  backend: mysql\n"
                 OK_CLUSTERS,
                 "4: store.backend: expected sqlite or postgres, got "
                 "\"mysql\"");
    expect_error("listen: 127.0.0.1:1\ndb: x\nstore:\n  engine: pg\n"
                 OK_CLUSTERS, "4: store.engine: unknown key");
    expect_error("listen: 127.0.0.1:1\ndb: x\nstore: postgres\n"
                 OK_CLUSTERS, "3: store: expected a mapping");
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 OK_CLUSTERS,
                 "3: store.postgres: required with backend postgres "
                 "({conninfo: ..., password_file: ...})");
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 "  postgres:\n    password_file: /etc/hostname\n"
                 OK_CLUSTERS,
                 "5: store.postgres.conninfo: required key is missing");
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 "  postgres:\n    conninfo: \"\"\n" OK_CLUSTERS,
                 "5: store.postgres.conninfo: must not be empty (at least "
                 "\"dbname=...\"; PG* variables fill the rest)");
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 "  postgres:\n    conninfo: host=db colour=red\n"
                 OK_CLUSTERS,
                 "5: store.postgres.conninfo: not a libpq connection "
                 "string: invalid connection option \"colour\"");
    /* What libpq checks only when it connects: an sslmode it does not
     * know (also in a URI), a TLS file that is not there. */
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 "  postgres:\n    conninfo: host=db sslmode=bogus\n"
                 OK_CLUSTERS,
                 "5: store.postgres.conninfo: sslmode: expected disable, "
                 "allow, prefer, require, verify-ca or verify-full, got "
                 "\"bogus\"");
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 "  postgres:\n    conninfo: "
                 "postgresql://db/s?sslmode=verify_full\n" OK_CLUSTERS,
                 "5: store.postgres.conninfo: sslmode: expected disable, "
                 "allow, prefer, require, verify-ca or verify-full, got "
                 "\"verify_full\"");
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
             "  postgres:\n    conninfo: host=db sslmode=verify-full "
             "sslrootcert=%s/no-ca.pem\n" OK_CLUSTERS, cfg_dir);
    {
        char want[400];

        snprintf(want, sizeof(want), "5: store.postgres.conninfo: "
                 "sslrootcert: cannot read %s/no-ca.pem: No such file or "
                 "directory", cfg_dir);
        expect_error(yaml, want);
    }
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
                 "  postgres:\n    conninfo: dbname=s\n    user: x\n"
                 OK_CLUSTERS, "6: store.postgres.user: unknown key");
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\nstore:\n  backend: postgres\n"
             "  postgres:\n    conninfo: dbname=s\n"
             "    password_file: %s/missing\n" OK_CLUSTERS, cfg_dir);
    {
        char want[400];

        snprintf(want, sizeof(want), "6: store.postgres.password_file: "
                 "cannot read %s/missing: No such file or directory",
                 cfg_dir);
        expect_error(yaml, want);
    }
    expect_error("listen: 127.0.0.1:1\ndb: x\nstore:\n  postgres:\n"
                 "    conninfo: dbname=s\n" OK_CLUSTERS,
                 "5: store.postgres: given, but backend is not postgres "
                 "(add backend: postgres)");
    /* Without store: or with sqlite, db stays required. */
    expect_error("listen: 127.0.0.1:1\nstore:\n  backend: sqlite\n"
                 OK_CLUSTERS, "1: db: required key is missing");
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
    snprintf(tok, sizeof(tok), "%s/pw", cfg_dir);
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
        cmocka_unit_test(test_active_passive_service_reads_back),
        cmocka_unit_test(test_active_active_service_reads_back),
        cmocka_unit_test(test_sharded_service_reads_back),
        cmocka_unit_test(test_bad_services_are_errors),
        cmocka_unit_test(test_global_name_must_be_a_dns_name),
        cmocka_unit_test(test_bad_incidents_are_errors),
        cmocka_unit_test(test_bad_scope_is_an_error),
        cmocka_unit_test(test_example_collector_configs_load),
        cmocka_unit_test(test_readme_service_examples_load),
        cmocka_unit_test(test_postgres_store_loads_without_db),
        cmocka_unit_test(test_bad_store_backend_is_an_error),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
