/* test_agent_metrics.c -- the agent's metrics registry and renderer, the
 * admin verdicts behind /healthz and /readyz, and the spool's cheap depth
 * query that /metrics reports. The format itself is checked by promtool
 * in agent_admin.sh; here the values and the edge cases are. */
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
#include <sqlite3.h>

#include "admin.h"
#include "config.h"
#include "metrics.h"
#include "spool.h"
#include "util.h"

static char page[METRICS_RENDER_MAX];

static int setup(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

/* Renders into page[] at @now_us, asserting success. */
static void render(int64_t now_us)
{
    size_t len = 0;

    assert_int_equal(metrics_render(page, sizeof(page), now_us, &len), 0);
    assert_int_equal(len, strlen(page));
}

/* Whether @line is a whole line of page[]. */
static int has_line(const char *line)
{
    size_t n = strlen(line);

    for (const char *p = page; (p = strstr(p, line)) != NULL; p++)
        if ((p == page || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define assert_line(l) \
    do { \
        if (!has_line(l)) \
            fail_msg("no line \"%s\" in:\n%s", (l), page); \
    } while (0)
#define assert_no_line_with(s) \
    do { \
        if (strstr(page, "\n" s) != NULL) \
            fail_msg("unexpected \"%s\" in:\n%s", (s), page); \
    } while (0)

static void test_every_family_has_help_and_type(void **state)
{
    static const char *const fam[] = {
        "sextant_agent_build_info gauge",
        "sextant_agent_targets gauge",
        "sextant_agent_probes_total counter",
        "sextant_agent_probes_failed_total counter",
        "sextant_agent_probe_duration_seconds histogram",
        "sextant_agent_spool_events gauge",
        "sextant_agent_spool_bytes gauge",
        "sextant_agent_events_dropped_total counter",
        "sextant_agent_batches_shipped_total counter",
        "sextant_agent_batches_failed_total counter",
        "sextant_agent_last_ack_age_seconds gauge",
        "sextant_agent_clock_offset_seconds gauge",
    };
    char line[128];

    (void)state;
    render(1);
    for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s", fam[i]);
        assert_line(line);
        snprintf(line, sizeof(line), "# HELP %.*s ",
                 (int)strcspn(fam[i], " "), fam[i]);
        assert_non_null(strstr(page, line));
    }
    assert_line("sextant_agent_build_info{version=\"" SEXTANT_VERSION
                "\"} 1");
}

static void test_probe_counts_are_by_type_and_zero_from_the_start(void **st)
{
    (void)st;
    metrics_probe_done(PROBE_HTTP, 1, 1000);
    metrics_probe_done(PROBE_HTTP, 0, 2000);
    metrics_probe_done(PROBE_HTTP, 1, 3000);
    render(1);
    assert_line("sextant_agent_probes_total{type=\"http\"} 3");
    assert_line("sextant_agent_probes_failed_total{type=\"http\"} 1");
    /* Another built-in type has its series, at 0. */
    assert_line("sextant_agent_probes_total{type=\"tcp\"} 0");
    assert_line("sextant_agent_probes_failed_total{type=\"tcp\"} 0");
}

static void test_histogram_buckets_are_cumulative_with_exact_sum(void **st)
{
    (void)st;
    metrics_probe_done(PROBE_HTTP, 1, 5000);      /* on the bound: le 0.005 */
    metrics_probe_done(PROBE_HTTP, 1, 5001);      /* just above: le 0.01 */
    metrics_probe_done(PROBE_HTTP, 1, 300000);    /* le 0.5 */
    metrics_probe_done(PROBE_HTTP, 0, 12000000);  /* beyond 10 s: +Inf */
    render(1);
#define B(le, n) "sextant_agent_probe_duration_seconds_bucket{type=\"http\"," \
                 "le=\"" le "\"} " #n
    assert_line(B("0.005", 1));
    assert_line(B("0.01", 2));
    assert_line(B("0.25", 2));
    assert_line(B("0.5", 3));
    assert_line(B("10", 3));
    assert_line(B("+Inf", 4));
#undef B
    assert_line("sextant_agent_probe_duration_seconds_count{type=\"http\"} 4");
    assert_line("sextant_agent_probe_duration_seconds_sum{type=\"http\"} "
                "12.310001");
    assert_line("sextant_agent_probe_duration_seconds_count{type=\"tcp\"} 0");
}

static void test_ack_age_and_offset_absent_before_the_first_ack(void **st)
{
    (void)st;
    metrics_batch_sent(1000);
    metrics_batch_failed();
    render(util_mono_us());
    assert_no_line_with("sextant_agent_last_ack_age_seconds ");
    assert_no_line_with("sextant_agent_clock_offset_seconds ");
    assert_line("sextant_agent_batches_failed_total 1");
    assert_line("sextant_agent_batches_shipped_total 0");
}

static void test_offset_is_receive_minus_send_minus_half_rtt(void **st)
{
    const char *age;
    int64_t t0;
    double v;

    (void)st;
    metrics_batch_sent(1000000);
    metrics_ack_received(1000600);
    t0 = util_mono_us();
    metrics_batch_shipped(200000);                 /* 200 ms: half is 100 */
    render(t0 + 2500000);
    assert_line("sextant_agent_clock_offset_seconds 0.500");
    assert_line("sextant_agent_batches_shipped_total 1");
    /* Age from the ack, at the render's clock: 2.5 s, less the
     * microseconds between util_mono_us() here and in the registry. */
    age = strstr(page, "\nsextant_agent_last_ack_age_seconds ");
    assert_non_null(age);
    v = strtod(age + strlen("\nsextant_agent_last_ack_age_seconds "), NULL);
    assert_true(v > 2.4 && v <= 2.5);

    /* An agent ahead of the collector has a negative offset. */
    metrics_batch_sent(5000000);
    metrics_ack_received(4998999);
    metrics_batch_shipped(0);
    render(util_mono_us());
    assert_line("sextant_agent_clock_offset_seconds -1.001");
}

static void test_ack_without_received_time_keeps_the_old_offset(void **st)
{
    (void)st;
    metrics_batch_sent(1000);
    metrics_ack_received(1250);
    metrics_batch_shipped(0);
    metrics_batch_sent(2000);                      /* an Ack without time */
    metrics_batch_shipped(0);
    render(util_mono_us());
    assert_line("sextant_agent_clock_offset_seconds 0.250");
    assert_line("sextant_agent_batches_shipped_total 2");
}

static void test_refused_writes_count_dropped_and_mark_the_spool(void **st)
{
    struct metrics_status s;

    (void)st;
    metrics_spool_write(-ENOSPC, 7);
    metrics_events_dropped(2);
    metrics_get_status(&s);
    assert_int_equal(s.spool_errno, ENOSPC);
    render(1);
    assert_line("sextant_agent_events_dropped_total 9");
    metrics_spool_write(0, 3);                     /* a good write clears */
    metrics_get_status(&s);
    assert_int_equal(s.spool_errno, 0);
    render(1);
    assert_line("sextant_agent_events_dropped_total 9");
}

static void test_too_small_a_buffer_is_refused_whole(void **st)
{
    char small[256];
    size_t len = 12345;

    (void)st;
    assert_int_equal(metrics_render(small, sizeof(small), 1, &len),
                     -EMSGSIZE);
    assert_int_equal(len, 12345);
}

static void test_health_needs_a_recent_turn_and_a_writable_spool(void **st)
{
    struct metrics_status s = { .phase = METRICS_RUNNING };
    char why[160];

    (void)st;
    assert_int_equal(admin_health(&s, 5000000, why, sizeof(why)), 503);
    assert_non_null(strstr(why, "not turned yet"));
    s.heartbeat_us = 1000000;
    assert_int_equal(admin_health(&s, 1000000 + ADMIN_STALE_US, why,
                                  sizeof(why)), 200);
    assert_string_equal(why, "ok");
    assert_int_equal(admin_health(&s, 12500000, why, sizeof(why)), 503);
    assert_non_null(strstr(why, "11.500 s ago"));
    s.spool_errno = ENOSPC;
    assert_int_equal(admin_health(&s, 1500000, why, sizeof(why)), 503);
    assert_non_null(strstr(why, strerror(ENOSPC)));
}

static void test_ready_only_while_running(void **st)
{
    struct metrics_status s = { .phase = METRICS_STARTING };
    char why[160];

    (void)st;
    assert_int_equal(admin_ready(&s, why, sizeof(why)), 503);
    assert_non_null(strstr(why, "starting"));
    s.phase = METRICS_RUNNING;
    assert_int_equal(admin_ready(&s, why, sizeof(why)), 200);
    s.phase = METRICS_STOPPING;
    assert_int_equal(admin_ready(&s, why, sizeof(why)), 503);
    assert_non_null(strstr(why, "stopping"));
}

static void test_admin_address_forms(void **st)
{
    struct sockaddr_storage ss;

    (void)st;
    assert_int_equal(util_sockaddr("127.0.0.1:9464", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(util_sockaddr("[::1]:0", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(util_sockaddr("localhost:9464", &ss), -EINVAL);
    assert_int_equal(util_sockaddr("127.0.0.1", &ss), -EINVAL);
    assert_int_equal(util_sockaddr("127.0.0.1:99999", &ss), -EINVAL);
}

/* -- the spool's depth -- */

static char test_dir[64];

static int append_probe(struct spool *sp, const char *target)
{
    Sextant__V1__Event ev = SEXTANT__V1__EVENT__INIT;
    Sextant__V1__ProbeResult pr = SEXTANT__V1__PROBE_RESULT__INIT;
    char name[64];

    snprintf(name, sizeof(name), "%s", target);
    pr.target = name;
    pr.type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
    pr.ok = 1;
    ev.kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
    ev.probe = &pr;
    return spool_append(sp, &ev);
}

/* The truth, through a connection of its own. */
static void sql_depth(const char *path, uint64_t *n, uint64_t *bytes)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), "
                                        "total(length(body)) FROM events",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *n = (uint64_t)sqlite3_column_int64(st, 0);
    *bytes = (uint64_t)sqlite3_column_double(st, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void assert_depth(struct spool *sp, const char *path)
{
    uint64_t n = 99, bytes = 99, want_n, want_bytes;

    assert_int_equal(spool_depth(sp, &n, &bytes), 0);
    sql_depth(path, &want_n, &want_bytes);
    assert_int_equal(n, want_n);
    assert_int_equal(bytes, want_bytes);
}

static void test_spool_depth_follows_appends_acks_and_other_writers(void **st)
{
    char path[128], err[SPOOL_ERR_LEN];
    struct spool *sp = NULL, *other = NULL;
    uint64_t n, bytes;

    (void)st;
    snprintf(path, sizeof(path), "%s/depth.db", test_dir);
    assert_int_equal(spool_open(path, &sp, err, sizeof(err)), 0);
    assert_int_equal(spool_depth(sp, &n, &bytes), 0);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(append_probe(sp, i % 2 ? "a" : "a-longer-name"), 0);
    assert_depth(sp, path);
    assert_int_equal(spool_ack(sp, 2, NULL), 0);   /* counted rows go */
    assert_depth(sp, path);
    /* Appended here and not yet seen by spool_depth(), then acked: the
     * ack must take off only what the depth had counted. */
    assert_int_equal(append_probe(sp, "late"), 0);
    assert_int_equal(spool_ack(sp, 6, NULL), 0);
    assert_depth(sp, path);
    assert_int_equal(spool_depth(sp, &n, &bytes), 0);
    assert_int_equal(n, 0);
    assert_int_equal(bytes, 0);
    /* Another process (sextant-agent event) appends to the same file. */
    assert_int_equal(append_probe(sp, "mine"), 0);
    assert_int_equal(spool_depth(sp, &n, &bytes), 0);
    assert_int_equal(spool_open(path, &other, err, sizeof(err)), 0);
    assert_int_equal(append_probe(other, "theirs, with a longer name"), 0);
    assert_int_equal(append_probe(other, "theirs again"), 0);
    spool_close(other);
    assert_depth(sp, path);
    assert_int_equal(spool_depth(sp, &n, &bytes), 0);
    assert_int_equal(n, 3);
    spool_close(sp);
}

static void test_loop_turn_beats_and_reads_depth(void **st)
{
    char path[128], err[SPOOL_ERR_LEN];
    struct metrics_status s;
    struct spool *sp = NULL;

    (void)st;
    snprintf(path, sizeof(path), "%s/turn.db", test_dir);
    assert_int_equal(spool_open(path, &sp, err, sizeof(err)), 0);
    assert_int_equal(append_probe(sp, "x"), 0);
    metrics_get_status(&s);
    assert_int_equal(s.phase, METRICS_STARTING);
    metrics_loop_turn(sp, 4, 7000000);
    metrics_get_status(&s);
    assert_int_equal(s.phase, METRICS_RUNNING);
    assert_int_equal(s.heartbeat_us, 7000000);
    render(7000000);
    assert_line("sextant_agent_targets 4");
    assert_line("sextant_agent_spool_events 1");
    /* Within a second the depth is not read again... */
    assert_int_equal(append_probe(sp, "y"), 0);
    metrics_loop_turn(sp, 4, 7500000);
    render(7500000);
    assert_line("sextant_agent_spool_events 1");
    /* ...after it, it is. */
    metrics_loop_turn(sp, 4, 8000000);
    render(8000000);
    assert_line("sextant_agent_spool_events 2");
    /* Stopping is for good: a later turn does not make it ready again. */
    metrics_loop_stopping();
    metrics_loop_turn(sp, 4, 9000000);
    metrics_get_status(&s);
    assert_int_equal(s.phase, METRICS_STOPPING);
    spool_close(sp);
}

/* -- the admin key of agent.yaml -- */

#define CFG_HEAD                            \
    "cluster: c1\n"                         \
    "region: eu-west-1\n"                   \
    "node: n1\n"                            \
    "collector:\n"                          \
    "  url: http://127.0.0.1:8480\n"        \
    "  token: tok-0123456789abcdef\n"       \
    "spool:\n"                              \
    "  path: /tmp/agent-spool.db\n"         \
    "targets:\n"                            \
    "  - name: web\n"                       \
    "    url: http://127.0.0.1:9/health\n"

/* Loads CFG_HEAD + @admin; returns agent_config_load()'s rc. */
static int load_admin(const char *admin, struct agent_config *cfg, char *err,
                      size_t err_len)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/agent.yaml", test_dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(CFG_HEAD, f) >= 0 && fputs(admin, f) >= 0);
    assert_int_equal(fclose(f), 0);
    return agent_config_load(path, cfg, err, err_len);
}

static void test_admin_config_defaults_and_forms(void **st)
{
    struct agent_config cfg = { 0 };
    char err[512];

    (void)st;
    assert_int_equal(load_admin("", &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.admin_listen, "127.0.0.1:9464");
    assert_int_equal(cfg.admin_listen_set, 0);
    agent_config_free(&cfg);
    assert_int_equal(load_admin("admin:\n  listen: \"[::1]:0\"\n", &cfg,
                                err, sizeof(err)), 0);
    assert_string_equal(cfg.admin_listen, "[::1]:0");
    assert_int_equal(cfg.admin_listen_set, 1);
    agent_config_free(&cfg);
    assert_int_equal(load_admin("admin: {enabled: false, listen: "
                                "127.0.0.1:1}\n", &cfg, err, sizeof(err)),
                     0);
    assert_null(cfg.admin_listen);
    assert_int_equal(cfg.admin_listen_set, 0);
    agent_config_free(&cfg);
    assert_int_equal(load_admin("admin:\n  listen: localhost:9464\n", &cfg,
                                err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "agent.yaml:13: admin.listen: expected "
                                "IP:PORT"));
    assert_int_equal(load_admin("admin:\n  port: 9464\n", &cfg, err,
                                sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "admin.port"));
}

static void test_target_health_gauge_follows_the_state(void **state)
{
    char big[METRICS_MAX_LABEL + 8];

    (void)state;
    metrics_targets_begin(3);
    metrics_target_set(0, "web \"eu\"", PROBE_HTTP, HEALTH_HEALTHY);
    metrics_target_set(1, "db", PROBE_TCP, HEALTH_UNKNOWN);
    metrics_target_set(2, "dns", PROBE_DNS, HEALTH_UNHEALTHY);
    render(1);
    assert_line("sextant_agent_target_healthy{target=\"web \\\"eu\\\"\","
                "type=\"http\"} 1");
    assert_line("sextant_agent_target_healthy{target=\"dns\",type=\"dns\"} 0");
    assert_null(strstr(page, "target=\"db\""));      /* unknown: absent */
    metrics_target_health(0, HEALTH_UNHEALTHY);
    metrics_target_health(1, HEALTH_HEALTHY);
    render(1);
    assert_line("sextant_agent_target_healthy{target=\"web \\\"eu\\\"\","
                "type=\"http\"} 0");
    assert_line("sextant_agent_target_healthy{target=\"db\",type=\"tcp\"} 1");
    /* A reload with fewer targets: the others go. */
    metrics_targets_begin(1);
    metrics_target_set(0, "dns", PROBE_DNS, HEALTH_HEALTHY);
    render(1);
    assert_line("sextant_agent_target_healthy{target=\"dns\",type=\"dns\"} 1");
    assert_null(strstr(page, "target=\"db\""));
    /* The most targets, each with the longest name of quotes, fit. */
    memset(big, '"', METRICS_MAX_LABEL - 1);
    big[METRICS_MAX_LABEL - 1] = '\0';
    metrics_targets_begin(METRICS_MAX_TARGETS + 5);
    for (size_t i = 0; i < METRICS_MAX_TARGETS + 5; i++)
        metrics_target_set(i, big, PROBE_METRIC, HEALTH_HEALTHY);
    render(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_every_family_has_help_and_type, setup),
        cmocka_unit_test_setup(
            test_probe_counts_are_by_type_and_zero_from_the_start, setup),
        cmocka_unit_test_setup(
            test_histogram_buckets_are_cumulative_with_exact_sum, setup),
        cmocka_unit_test_setup(
            test_ack_age_and_offset_absent_before_the_first_ack, setup),
        cmocka_unit_test_setup(
            test_offset_is_receive_minus_send_minus_half_rtt, setup),
        cmocka_unit_test_setup(
            test_ack_without_received_time_keeps_the_old_offset, setup),
        cmocka_unit_test_setup(
            test_refused_writes_count_dropped_and_mark_the_spool, setup),
        cmocka_unit_test_setup(test_too_small_a_buffer_is_refused_whole,
                               setup),
        cmocka_unit_test_setup(
            test_health_needs_a_recent_turn_and_a_writable_spool, setup),
        cmocka_unit_test_setup(test_ready_only_while_running, setup),
        cmocka_unit_test_setup(test_admin_address_forms, setup),
        cmocka_unit_test_setup(
            test_spool_depth_follows_appends_acks_and_other_writers, setup),
        cmocka_unit_test_setup(test_loop_turn_beats_and_reads_depth, setup),
        cmocka_unit_test(test_admin_config_defaults_and_forms),
        cmocka_unit_test_setup(test_target_health_gauge_follows_the_state,
                               setup),
    };
    char cmd[96];
    int rc;

    snprintf(test_dir, sizeof(test_dir), "/tmp/sextant-metrics-XXXXXX");
    if (!mkdtemp(test_dir)) {
        perror("mkdtemp");
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
