/* test_agent_metric.c -- the metric scrape probe against a real HTTP
 * server in this process (libmicrohttpd on a free loopback port) serving
 * exposition texts: which samples become MetricSample events, with what
 * labels and values, and when a scrape fails. Targets come from agent.yaml
 * text through agent_config_load(), so the config errors of the "metric"
 * type are checked on the same path the agent takes. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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
#include "log.h"
#include "probe.h"
#include "probe_metric.h"
#include "util.h"
#include "wire.h"

static const char fixture[] =
    "# HELP replication_lag_seconds Seconds the replica is behind.\n"
    "# TYPE replication_lag_seconds gauge\n"
    "replication_lag_seconds{db=\"orders\",role=\"replica\"} 2.5\n"
    "replication_lag_seconds{db=\"users\",role=\"replica\"} 0.25\n"
    "replication_lag_seconds{db=\"orders\",role=\"primary\"} 0\n"
    "# TYPE up gauge\n"
    "up 1\n"
    "pg_up{instance=\"a\\\"b\\\\c\"} NaN\n"
    "http_requests_total{code=\"200\"} 1027 1700000000000\n";

/* The fixture with broken lines between the good ones. */
static const char broken[] =
    "replication_lag_seconds{db=\"orders\",role=\"replica\" 9\n"
    "replication_lag_seconds{db=\"orders\",role=\"replica\"} 2.5\n"
    "up one\n"
    "# TYPE up sometimes\n"
    "up 1\n"
    "replication_lag_seconds{db=\"users\",role=\"replica\"} 0.25 garbage\n";

static const char html[] =
    "<html>\n<head><title>502 Bad Gateway</title></head>\n"
    "<body>bad gateway</body>\n</html>\n";

static struct MHD_Daemon *daemon_;
static unsigned port;
static char test_dir[64], cfg_path[128];
static char *big_body;                  /* over the probe's body cap */
static size_t big_len;
static char *many_body;                 /* more matches than the run cap */
static size_t many_len;

/* What the server saw; guarded by mu (MHD runs its own thread). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_accept[128];
static unsigned seen_requests;

/* A body of unknown length (chunked): 8 MiB of comment lines, so only the
 * probe's own count can stop it, not a Content-Length check. */
static ssize_t endless(void *cls, uint64_t pos, char *buf, size_t max)
{
    static const char line[] = "# more and more and more and more and more\n";
    size_t n = sizeof(line) - 1, done = 0;

    (void)cls;
    if (pos >= (8u << 20))
        return MHD_CONTENT_READER_END_OF_STREAM;
    while (max - done >= n) {
        memcpy(buf + done, line, n);
        done += n;
    }
    return done ? (ssize_t)done : MHD_CONTENT_READER_END_WITH_ERROR;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c,
                             const char *url, const char *method,
                             const char *version, const char *data,
                             size_t *data_len, void **con_cls)
{
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Accept");
    const char *body = fixture;
    size_t len = sizeof(fixture) - 1;
    unsigned status = 200;
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls; (void)method; (void)version; (void)data; (void)data_len;
    (void)con_cls;
    pthread_mutex_lock(&mu);
    seen_requests++;
    snprintf(seen_accept, sizeof(seen_accept), "%s", accept ? accept : "");
    pthread_mutex_unlock(&mu);
    if (strcmp(url, "/status/500") == 0) {
        status = 500;
    } else if (strcmp(url, "/status/302") == 0) {
        status = 302;
    } else if (strcmp(url, "/broken") == 0) {
        body = broken;
        len = sizeof(broken) - 1;
    } else if (strcmp(url, "/html") == 0) {
        body = html;
        len = sizeof(html) - 1;
    } else if (strcmp(url, "/empty") == 0) {
        body = "";
        len = 0;
    } else if (strcmp(url, "/big") == 0) {
        body = big_body;
        len = big_len;
    } else if (strcmp(url, "/many") == 0) {
        body = many_body;
        len = many_len;
    }
    if (strcmp(url, "/chunked") == 0)
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                              endless, NULL, NULL);
    else
        r = MHD_create_response_from_buffer(len, (void *)body,
                                            MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    if (MHD_add_response_header(r, "Content-Type",
                                "text/plain; version=0.0.4") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* 5 MiB of valid comment lines, and 150 samples of one series. */
static int make_bodies(void)
{
    static const char line[] = "# padding padding padding padding padding\n";
    size_t n = sizeof(line) - 1;

    big_len = ((5u << 20) / n + 1) * n;
    big_body = malloc(big_len);
    many_body = malloc(150 * 64);
    if (!big_body || !many_body)
        return -1;
    for (size_t off = 0; off < big_len; off += n)
        memcpy(big_body + off, line, n);
    many_len = 0;
    for (unsigned i = 0; i < 150; i++)
        many_len += (size_t)sprintf(many_body + many_len,
                                    "queue_depth{shard=\"%u\"} %u\n", i, i);
    return 0;
}

static int group_setup(void **state)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    const union MHD_DaemonInfo *info;

    (void)state;
    log_set_level(LOGL_ERROR);          /* failures here are on purpose */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    snprintf(test_dir, sizeof(test_dir), "/tmp/test_agent_metric.XXXXXX");
    if (!mkdtemp(test_dir))
        return -1;
    snprintf(cfg_path, sizeof(cfg_path), "%s/agent.yaml", test_dir);
    if (make_bodies() < 0)
        return -1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);     /* port 0: any free */
    /* No MHD_USE_ERROR_LOG: the probe hangs up on big bodies on purpose. */
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                               NULL, serve, NULL,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                               MHD_OPTION_END);
    if (!daemon_)
        return -1;
    info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port = info ? info->port : 0;
    return port ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (daemon_)
        MHD_stop_daemon(daemon_);
    unlink(cfg_path);
    rmdir(test_dir);
    free(big_body);
    free(many_body);
    curl_global_cleanup();
    return 0;
}

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
    "  - name: db-lag\n"                    \
    "    type: metric\n"

static int load_yaml(const char *yaml, struct agent_config *cfg, char *err,
                     size_t err_len)
{
    FILE *f = fopen(cfg_path, "w");

    assert_non_null(f);
    assert_true(fputs(yaml, f) >= 0);
    assert_int_equal(fclose(f), 0);
    return agent_config_load(cfg_path, cfg, err, err_len);
}

/* Loads HEAD + "url: <server>@path" + @rest (the target's other keys). */
static void load_target(const char *path, const char *rest,
                        struct agent_config *cfg)
{
    char yaml[4096], err[512];

    snprintf(yaml, sizeof(yaml), HEAD "    url: http://127.0.0.1:%u%s\n%s",
             port, path, rest);
    if (load_yaml(yaml, cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    assert_int_equal(cfg->n_targets, 1);
    assert_int_equal(cfg->targets[0].type, PROBE_METRIC);
}

/* Runs one probe of @t through a multi handle of its own, as loop.c does. */
static void run_one(const struct agent_target *t, struct probe_result *res)
{
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    void *state = NULL;
    int done = 0;

    assert_non_null(multi);
    assert_ptr_equal(probe_ops_find(PROBE_METRIC), &probe_metric_ops);
    assert_int_equal(probe_metric_ops.start(t, &state, multi, &run), 0);
    assert_true(run->start_unix_ms > 0);
    while (!done) {
        int still, q;
        CURLMsg *m;

        assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
        while ((m = curl_multi_info_read(multi, &q)) != NULL) {
            char *priv = NULL;

            if (m->msg != CURLMSG_DONE)
                continue;
            assert_int_equal(curl_easy_getinfo(m->easy_handle,
                                               CURLINFO_PRIVATE, &priv),
                             CURLE_OK);
            assert_ptr_equal(priv, run);
            run->ops->finish(run, multi, m->easy_handle, m->data.result,
                             res);
            done = 1;
            break;
        }
        if (!done)
            assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL),
                             CURLM_OK);
    }
    assert_null(state);
    curl_multi_cleanup(multi);
}

static const Sextant__V1__MetricSample *extra(const struct probe_result *r,
                                              size_t i)
{
    const Sextant__V1__Event *ev;

    assert_true(i < r->n_extra);
    ev = r->extra[i];
    assert_int_equal(ev->kind_case, SEXTANT__V1__EVENT__KIND_METRIC);
    assert_non_null(ev->metric);
    return ev->metric;
}

static void assert_label(const Sextant__V1__MetricSample *m, size_t i,
                         const char *name, const char *value)
{
    assert_true(i < m->n_labels);
    assert_string_equal(m->labels[i]->name, name);
    assert_string_equal(m->labels[i]->value, value);
}

static void test_matching_samples_become_events(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;
    const Sextant__V1__MetricSample *m;

    (void)state;
    load_target("/metrics",
                "    series:\n"
                "      - name: replication_lag_seconds\n"
                "        labels: {role: replica}\n"
                "      - name: up\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "");
    assert_true(r.t.total_us > 0);
    /* Both replicas and up; not the primary, not the other metrics. */
    assert_int_equal(r.n_extra, 3);
    m = extra(&r, 0);
    assert_string_equal(m->name, "replication_lag_seconds");
    assert_string_equal(m->target, "db-lag");
    assert_true(m->value == 2.5);
    assert_int_equal(m->n_labels, 2);
    assert_label(m, 0, "db", "orders");
    assert_label(m, 1, "role", "replica");
    m = extra(&r, 1);
    assert_true(m->value == 0.25);
    assert_label(m, 0, "db", "users");
    m = extra(&r, 2);
    assert_string_equal(m->name, "up");
    assert_int_equal(m->n_labels, 0);
    assert_true(m->value == 1.0);
    for (size_t i = 0; i < r.n_extra; i++)
        assert_true(r.extra[i]->unix_ms > 1700000000000LL);
    pthread_mutex_lock(&mu);
    assert_non_null(strstr(seen_accept, "text/plain;version=0.0.4"));
    pthread_mutex_unlock(&mu);
    probe_result_clear(&r);
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

static void test_every_listed_label_must_match(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;
    const Sextant__V1__MetricSample *m;

    (void)state;
    load_target("/metrics",
                "    series:\n"
                "      - name: replication_lag_seconds\n"
                "        labels:\n"
                "          db: orders\n"
                "          role: primary\n"
                "      - name: replication_lag_seconds\n"
                "        labels: {db: nosuchdb}\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    m = extra(&r, 0);
    assert_true(m->value == 0.0);
    assert_label(m, 0, "db", "orders");
    assert_label(m, 1, "role", "primary");
    probe_result_clear(&r);
    agent_config_free(&cfg);
}

/* A sample matching two entries is still one event. */
static void test_a_sample_matching_two_series_is_one_event(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/metrics",
                "    series:\n"
                "      - name: replication_lag_seconds\n"
                "      - name: replication_lag_seconds\n"
                "        labels: {db: orders}\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 3);
    probe_result_clear(&r);
    agent_config_free(&cfg);
}

/* An empty filter value matches a sample without that label (as in
 * PromQL), and only such a sample. */
static void test_empty_label_filter_matches_a_missing_label(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/metrics",
                "    series:\n"
                "      - name: up\n"
                "        labels: {job: \"\"}\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    assert_string_equal(extra(&r, 0)->name, "up");
    probe_result_clear(&r);
    agent_config_free(&cfg);

    load_target("/metrics",
                "    series:\n"
                "      - name: replication_lag_seconds\n"
                "        labels: {db: \"\"}\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

static void test_nan_values_and_escaped_labels_are_kept(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;
    const Sextant__V1__MetricSample *m;

    (void)state;
    load_target("/metrics",
                "    series:\n"
                "      - name: pg_up\n"
                "      - name: http_requests_total\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 2);
    m = extra(&r, 0);
    assert_true(isnan(m->value));
    assert_label(m, 0, "instance", "a\"b\\c");
    m = extra(&r, 1);
    assert_true(m->value == 1027.0);
    assert_label(m, 0, "code", "200");
    probe_result_clear(&r);
    agent_config_free(&cfg);
}

/* What the loop will spool must pass the collector's validation. */
static void test_events_pack_and_validate(void **state)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    struct agent_config cfg = { 0 };
    struct probe_result r;
    char err[WIRE_ERR_LEN];
    char cluster[] = "c1", region[] = "eu-west-1", node[] = "n1",
         version[] = "test";
    uint8_t *buf = NULL;
    size_t len = 0;
    Sextant__V1__Event *ev;

    (void)state;
    load_target("/metrics",
                "    series:\n"
                "      - name: replication_lag_seconds\n"
                "      - name: pg_up\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_int_equal(r.n_extra, 4);
    for (size_t i = 0; i < r.n_extra; i++)
        r.extra[i]->seq = i + 1;
    b.cluster = cluster;
    b.region = region;
    b.node = node;
    b.agent_version = version;
    b.epoch = 7;
    b.first_seq = 1;
    b.events = r.extra;
    b.n_events = r.n_extra;
    if (wire_batch_validate(&b, err, sizeof(err)) != 0)
        fail_msg("validate: %s", err);
    assert_int_equal(wire_event_pack(r.extra[3], &buf, &len), 0);
    ev = sextant__v1__event__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(ev);
    assert_string_equal(ev->metric->name, "pg_up");
    assert_string_equal(ev->metric->target, "db-lag");
    assert_string_equal(ev->metric->labels[0]->value, "a\"b\\c");
    sextant__v1__event__free_unpacked(ev, NULL);
    probe_result_clear(&r);
    agent_config_free(&cfg);
}

static void test_server_error_fails_the_probe(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/status/500", "    series: [{name: up}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.error, "status 500 not expected");
    assert_int_equal(r.n_extra, 0);         /* its body is not read as data */
    agent_config_free(&cfg);

    /* No metrics behind a redirect: 3xx fails unless listed. */
    load_target("/status/302", "    series: [{name: up}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "status 302 not expected");
    agent_config_free(&cfg);
}

static void test_expect_status_decides_what_is_scraped(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/status/500", "    series: [{name: up}]\n"
                               "    expect_status: [500]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 1);
    probe_result_clear(&r);
    agent_config_free(&cfg);

    load_target("/metrics", "    series: [{name: up}]\n"
                            "    expect_status: [204]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "status 200 not expected");
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

static void test_malformed_lines_do_not_fail_the_probe(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/broken",
                "    series:\n"
                "      - name: replication_lag_seconds\n"
                "      - name: up\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    assert_int_equal(r.n_extra, 2);
    assert_true(extra(&r, 0)->value == 2.5);
    assert_string_equal(extra(&r, 1)->name, "up");
    probe_result_clear(&r);
    agent_config_free(&cfg);
}

/* An error page served with 200 is not a scrape: every line is bad. */
static void test_a_body_without_any_sample_fails(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/html", "    series: [{name: up}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "not a metrics exposition: 4 malformed "
                        "lines, no sample (line 1: bad metric name)");
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

/* Nothing matched, or nothing there yet: the metric may come later. */
static void test_no_match_and_empty_body_are_ok(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/metrics", "    series: [{name: not_there_yet}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);

    load_target("/empty", "    series: [{name: up}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

static void test_body_over_the_cap_fails(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    assert_true(big_len > PROBE_METRIC_MAX_BODY);
    load_target("/big", "    series: [{name: up}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "body over 4194304 bytes");
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);

    /* Without a Content-Length the probe counts the bytes itself. */
    load_target("/chunked", "    series: [{name: up}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "body over 4194304 bytes");
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

static void test_events_per_run_are_capped(void **state)
{
    struct agent_config cfg = { 0 };
    struct probe_result r;

    (void)state;
    load_target("/many", "    series: [{name: queue_depth}]\n", &cfg);
    run_one(&cfg.targets[0], &r);
    assert_true(r.ok);
    assert_int_equal(r.n_extra, PROBE_METRIC_MAX_SAMPLES);
    /* The first ones in the body are kept. */
    for (size_t i = 0; i < r.n_extra; i++)
        assert_true(extra(&r, i)->value == (double)i);
    probe_result_clear(&r);
    agent_config_free(&cfg);
}

static void test_refused_connection_fails(void **state)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sin);
    struct agent_config cfg = { 0 };
    struct probe_result r;
    char yaml[1024], err[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    /* A port that was free a moment ago and has no listener now. */
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    snprintf(yaml, sizeof(yaml), HEAD "    url: http://127.0.0.1:%u/\n"
             "    series: [{name: up}]\n", ntohs(sin.sin_port));
    assert_int_equal(load_yaml(yaml, &cfg, err, sizeof(err)), 0);
    run_one(&cfg.targets[0], &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "onnect"));
    assert_int_equal(r.n_extra, 0);
    agent_config_free(&cfg);
}

static void test_cancel_releases_a_run(void **state)
{
    struct agent_config cfg = { 0 };
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    void *st = NULL;
    int still;

    (void)state;
    load_target("/big", "    series: [{name: up}]\n", &cfg);
    assert_int_equal(probe_metric_ops.start(&cfg.targets[0], &st, multi,
                                            &run), 0);
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    probe_metric_ops.cancel(run, multi);    /* ASan: nothing leaks */
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    assert_int_equal(still, 0);
    curl_multi_cleanup(multi);
    agent_config_free(&cfg);
}

/* Loads HEAD + @rest and expects exactly "PATH:" + @want. */
static void expect_error(const char *rest, const char *want)
{
    struct agent_config cfg = { 0 };
    char yaml[2048], err[512], full[512];

    snprintf(yaml, sizeof(yaml), HEAD "%s", rest);
    memset(err, 0, sizeof(err));
    assert_int_equal(load_yaml(yaml, &cfg, err, sizeof(err)), -EINVAL);
    snprintf(full, sizeof(full), "%s:%s", cfg_path, want);
    assert_string_equal(err, full);
    assert_null(cfg.targets);
}

/* HEAD ends at line 11; the target's url is line 12. */
static void test_config_errors_name_the_line_and_key(void **state)
{
    (void)state;
    expect_error("    url: http://127.0.0.1:9/metrics\n",
                 "10: targets[0].series: required key is missing");
    expect_error("    series: [{name: up}]\n",
                 "10: targets[0].url: required key is missing");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series: []\n",
                 "13: targets[0].series: list is empty");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series: up\n",
                 "13: targets[0].series: expected a list");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - up\n",
                 "14: targets[0].series[0]: expected a mapping with name "
                 "and labels");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "      - labels: {role: replica}\n",
                 "15: targets[0].series[1].name: required key is missing");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "        labels: replica\n",
                 "15: targets[0].series[0].labels: expected a mapping");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "        labels: [role, replica]\n",
                 "15: targets[0].series[0].labels: expected a mapping");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: replication-lag\n",
                 "14: targets[0].series[0].name: \"replication-lag\" is not "
                 "a metric name");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "        labels:\n"
                 "          db: orders\n"
                 "          db:role: x\n",
                 "17: targets[0].series[0].labels: \"db:role\" is not a "
                 "label name");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "        labels: {role: }\n",
                 "15: targets[0].series[0].labels: role: value is empty; "
                 "write \"\" to match a missing label");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "        labels: {role: [a]}\n",
                 "15: targets[0].series[0].labels: role: expected a string");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series:\n"
                 "      - name: up\n"
                 "        label: {role: replica}\n",
                 "15: targets[0].series[0].label: unknown key");
    expect_error("    url: http://127.0.0.1:9/metrics\n"
                 "    series: [{name: up}]\n"
                 "    method: POST\n",
                 "14: targets[0].method: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching_samples_become_events),
        cmocka_unit_test(test_every_listed_label_must_match),
        cmocka_unit_test(test_a_sample_matching_two_series_is_one_event),
        cmocka_unit_test(test_empty_label_filter_matches_a_missing_label),
        cmocka_unit_test(test_nan_values_and_escaped_labels_are_kept),
        cmocka_unit_test(test_events_pack_and_validate),
        cmocka_unit_test(test_server_error_fails_the_probe),
        cmocka_unit_test(test_expect_status_decides_what_is_scraped),
        cmocka_unit_test(test_malformed_lines_do_not_fail_the_probe),
        cmocka_unit_test(test_a_body_without_any_sample_fails),
        cmocka_unit_test(test_no_match_and_empty_body_are_ok),
        cmocka_unit_test(test_body_over_the_cap_fails),
        cmocka_unit_test(test_events_per_run_are_capped),
        cmocka_unit_test(test_refused_connection_fails),
        cmocka_unit_test(test_cancel_releases_a_run),
        cmocka_unit_test(test_config_errors_name_the_line_and_key),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
