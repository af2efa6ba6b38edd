/* test_webhook.c -- the incident webhook sender against real receivers on
 * loopback (tests/webhook_sink, one process per receiver): the body and
 * its Slack line, retries after 500s, giving up (after the attempts, or
 * at once on a 400), a full queue dropping its oldest, a stop that
 * returns while a receiver hangs, and the /metrics lines. Waits poll a
 * condition with a generous deadline, never a fixed time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonw.h"
#include "util.h"
#include "webhook.h"

extern char **environ;

#define DEADLINE_US (60LL * 1000 * 1000)   /* any wait: generous */
#define MAX_LINES   16

/* A closed active-passive incident as store_incident gives it. */
#define INCIDENT_CLOSED \
    "{\"id\":7,\"service\":\"shop\",\"pattern\":\"active-passive\"," \
    "\"region\":\"eu-west-1\",\"to_region\":\"us-east-1\"," \
    "\"manual\":false,\"open\":false,\"times\":{}," \
    "\"durations_ms\":{\"time_to_detect\":2170,\"time_to_failover\":1020," \
    "\"rto\":3650,\"outage\":null},\"rpo_ms\":120}"
#define INCIDENT_OPENED \
    "{\"id\":8,\"service\":\"shop\",\"pattern\":\"active-passive\"," \
    "\"region\":\"eu-west-1\",\"to_region\":null,\"manual\":false," \
    "\"open\":true,\"times\":{},\"durations_ms\":{\"rto\":null}," \
    "\"rpo_ms\":null}"

static char dir[] = "/tmp/sextant-webhook-XXXXXX";
static pid_t started[4];        /* sinks running, for a failed test's
                                 * teardown */

/* One webhook_sink process. */
struct sink {
    pid_t pid;
    char out[128];              /* its record of requests */
    char url[64];
};

/* Reads the first line of @path into @buf: 0 once there is one. */
static int first_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    int rc = -1;

    if (!f)
        return -1;
    if (fgets(buf, (int)cap, f) && strchr(buf, '\n'))
        rc = 0;
    fclose(f);
    return rc;
}

/* Starts webhook_sink with @args (NULL-terminated) and waits for the
 * port it prints (to a file, polled). */
static void sink_start(struct sink *s, const char *name, char *const *args)
{
    const char *bin = getenv("WEBHOOK_SINK");
    posix_spawn_file_actions_t fa;
    char port_path[128], line[32], *argv[12];
    char arg0[] = "webhook_sink", o[] = "--out";
    int64_t end = util_mono_us() + DEADLINE_US;
    size_t n = 0;

    assert_non_null(bin);
    snprintf(s->out, sizeof(s->out), "%s/%s.out", dir, name);
    snprintf(port_path, sizeof(port_path), "%s/%s.port", dir, name);
    argv[n++] = arg0;
    argv[n++] = o;
    argv[n++] = s->out;
    for (; args && *args && n < 11; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, port_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(posix_spawn(&s->pid, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i] == 0) {
            started[i] = s->pid;
            break;
        }
    while (first_line(port_path, line, sizeof(line)) < 0) {
        assert_true(util_mono_us() < end);
        assert_int_equal(waitpid(s->pid, NULL, WNOHANG), 0);
        usleep(10000);
    }
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d/hook/secret",
             atoi(line));
    unlink(port_path);
}

/* Stops sink @pid (SIGTERM; its output stays). */
static void stop_pid(pid_t pid)
{
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i] == pid)
            started[i] = 0;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static void sink_stop(struct sink *s)
{
    stop_pid(s->pid);
    unlink(s->out);
}

/* After each test, also a failed one: no sink is left running. */
static int sinks_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
        if (started[i])
            stop_pid(started[i]);
    return 0;
}

/* The lines the sink recorded so far, into @lines (caller frees each). */
static size_t sink_lines(const struct sink *s, char **lines)
{
    FILE *f = fopen(s->out, "r");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f)
        return 0;
    while (n < MAX_LINES && getline(&buf, &cap, f) > 0 &&
           strchr(buf, '\n')) {
        buf[strcspn(buf, "\n")] = '\0';
        lines[n++] = strdup(buf);
    }
    free(buf);
    fclose(f);
    return n;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
}

/* Waits until the sink has recorded @want lines, which go to @lines. */
static void sink_wait(const struct sink *s, size_t want, char **lines)
{
    int64_t end = util_mono_us() + DEADLINE_US;
    size_t n;

    while ((n = sink_lines(s, lines)) < want) {
        free_lines(lines, n);
        if (util_mono_us() > end)
            fail_msg("sink %s: %zu of %zu requests by the deadline", s->out,
                     n, want);
        usleep(10000);
    }
    assert_int_equal(n, want);
}

/* Waits until *field of @wh's stats is @want. */
#define STATS_WAIT(wh, field, want)                                      \
    do {                                                                 \
        struct webhook_stats st_;                                        \
        int64_t end_ = util_mono_us() + DEADLINE_US;                     \
        for (;;) {                                                       \
            webhook_stats((wh), &st_);                                   \
            if (st_.field == (want))                                     \
                break;                                                   \
            if (util_mono_us() > end_)                                   \
                fail_msg(#field " is %" PRIu64 ", want %d", st_.field,   \
                         (int)(want));                                   \
            usleep(10000);                                               \
        }                                                                \
    } while (0)

/* @wh's counters are these now. */
static void expect_stats(struct webhook *wh, uint64_t delivered,
                         uint64_t failed, uint64_t given_up,
                         uint64_t dropped, uint64_t queued)
{
    struct webhook_stats st;

    webhook_stats(wh, &st);
    assert_int_equal(st.delivered, delivered);
    assert_int_equal(st.failed_attempts, failed);
    assert_int_equal(st.given_up, given_up);
    assert_int_equal(st.dropped, dropped);
    assert_int_equal(st.queued, queued);
}

/* json_extract(@json, @path) as text into @out ("" for NULL). */
static void json_get(const char *json, const char *path, char *out,
                     size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    const unsigned char *v;

    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_extract(?1, ?2)",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", v ? (const char *)v : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Line @line is "@status BODY" and BODY's @path is @want. */
static void expect_field(const char *line, const char *status,
                         const char *path, const char *want)
{
    char got[600];

    assert_memory_equal(line, status, 3);
    json_get(line + 4, path, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", path, got, want);
}

/* Starts sink @name with @args and a sender to it alone, with @o. */
static struct webhook *start_one(struct sink *s, const char *name,
                                 char *const *args,
                                 const struct webhook_options *o)
{
    const char *urls[1];
    struct webhook *wh = NULL;

    sink_start(s, name, args);
    urls[0] = s->url;
    assert_int_equal(webhook_start(urls, 1, o, &wh), 0);
    return wh;
}

static void fast_options(struct webhook_options *o)
{
    webhook_options_default(o);
    o->backoff_first_ms = 20;
    o->backoff_max_ms = 40;
}

static void test_incident_is_posted_as_json_with_a_slack_text(void **state)
{
    struct sink s = { 0 };
    struct webhook *wh = start_one(&s, "ok", NULL, NULL);
    char *lines[MAX_LINES];
    struct jsonw w;

    (void)state;
    assert_int_equal(webhook_notify(wh, "closed", INCIDENT_CLOSED, NULL), 0);
    assert_int_equal(webhook_notify(wh, "opened", INCIDENT_OPENED,
                                    "a line of our own"), 0);
    webhook_incident_fn(wh, "updated", INCIDENT_OPENED);
    assert_int_equal(webhook_notify(wh, "exploded", INCIDENT_OPENED, NULL),
                     -EINVAL);
    {
        char big[600];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(webhook_notify(wh, "opened", INCIDENT_OPENED, big),
                         -EMSGSIZE);
    }
    sink_wait(&s, 3, lines);
    /* In order, each whole. */
    expect_field(lines[0], "200", "$.event", "incident.closed");
    expect_field(lines[0], "200", "$.text", "Sextant: shop incident #7 "
                 "closed: eu-west-1 failed, traffic moved to us-east-1, "
                 "RTO 3.650 s");
    expect_field(lines[0], "200", "$.incident.durations_ms.rto", "3650");
    expect_field(lines[0], "200", "$.incident.to_region", "us-east-1");
    expect_field(lines[1], "200", "$.event", "incident.opened");
    expect_field(lines[1], "200", "$.text", "a line of our own");
    expect_field(lines[1], "200", "$.incident.id", "8");
    expect_field(lines[2], "200", "$.event", "incident.updated");
    expect_field(lines[2], "200", "$.text", "Sextant: shop incident #8 "
                 "updated: eu-west-1 unhealthy");
    free_lines(lines, 3);
    STATS_WAIT(wh, delivered, 3);
    /* Not an incident object: never sent, given up at once. */
    assert_int_equal(webhook_notify(wh, "opened", "[1, 2", NULL), 0);
    STATS_WAIT(wh, given_up, 1);
    STATS_WAIT(wh, queued, 0);
    jsonw_init(&w, 1 << 16);
    webhook_metrics(wh, &w);
    assert_non_null(strstr(w.buf, "# TYPE sextant_collector_webhook_"
                           "delivered_total counter\n"
                           "sextant_collector_webhook_delivered_total 3\n"));
    assert_non_null(strstr(w.buf, "\nsextant_collector_webhook_given_up_"
                           "total 1\n"));
    assert_non_null(strstr(w.buf, "# TYPE sextant_collector_webhook_queued "
                           "gauge\nsextant_collector_webhook_queued 0\n"));
    assert_non_null(strstr(w.buf, "\nsextant_collector_webhook_dropped_"
                           "total 1\n"));     /* the text over its cap */
    jsonw_reset(&w);
    webhook_metrics(NULL, &w);      /* no webhooks: zeros */
    assert_non_null(strstr(w.buf, "\nsextant_collector_webhook_dropped_"
                           "total 0\n"));
    jsonw_free(&w);
    webhook_stop(wh);
    assert_int_equal(sink_lines(&s, lines), 3);
    free_lines(lines, 3);
    sink_stop(&s);
}

static void test_failures_are_retried_until_delivered(void **state)
{
    char fail[] = "--fail", two[] = "2", *args[] = { fail, two, NULL };
    char *lines[MAX_LINES];
    struct webhook_options o;
    struct sink s = { 0 };
    struct webhook *wh;

    (void)state;
    fast_options(&o);
    wh = start_one(&s, "flaky", args, &o);
    assert_int_equal(webhook_notify(wh, "opened", INCIDENT_OPENED, NULL), 0);
    STATS_WAIT(wh, delivered, 1);
    expect_stats(wh, 1, 2, 0, 0, 0);
    sink_wait(&s, 3, lines);
    expect_field(lines[0], "500", "$.event", "incident.opened");
    expect_field(lines[1], "500", "$.event", "incident.opened");
    expect_field(lines[2], "200", "$.event", "incident.opened");
    assert_string_equal(lines[0] + 4, lines[2] + 4);   /* the same body */
    free_lines(lines, 3);
    webhook_stop(wh);
    sink_stop(&s);
}

/* A 500 forever is given up after max_attempts; a 400 at once, since
 * sending the same payload again cannot help. Each URL on its own. */
static void test_delivery_is_given_up_and_counted(void **state)
{
    struct webhook_options o;
    struct sink down = { 0 }, refuses = { 0 };
    struct webhook *wh;
    char fail[] = "--fail", many[] = "1000000", one[] = "1";
    char fs[] = "--fail-status", c400[] = "400";
    char *a1[] = { fail, many, NULL }, *a2[] = { fail, one, fs, c400, NULL };
    char *lines[MAX_LINES];
    const char *urls[2];

    (void)state;
    fast_options(&o);
    o.max_attempts = 3;
    sink_start(&down, "down", a1);
    sink_start(&refuses, "refuses", a2);
    urls[0] = down.url;
    urls[1] = refuses.url;
    assert_int_equal(webhook_start(urls, 2, &o, &wh), 0);
    assert_int_equal(webhook_notify(wh, "closed", INCIDENT_CLOSED, NULL), 0);
    STATS_WAIT(wh, given_up, 2);
    expect_stats(wh, 0, 4, 2, 0, 0);
    sink_wait(&down, 3, lines);
    free_lines(lines, 3);
    sink_wait(&refuses, 1, lines);
    expect_field(lines[0], "400", "$.event", "incident.closed");
    free_lines(lines, 1);
    webhook_stop(wh);
    sink_stop(&down);
    sink_stop(&refuses);
}

/* A receiver that accepts and never answers: the queue fills, its oldest
 * waiting deliveries are dropped and counted, and stop still returns
 * well before the request timeout (two minutes here). */
static void test_full_queue_drops_oldest_and_stop_does_not_hang(void **st_)
{
    char hang[] = "--hang", *args[] = { hang, NULL };
    char *lines[MAX_LINES];
    struct webhook_options o;
    struct sink s = { 0 };
    struct webhook *wh;
    int64_t t0;

    (void)st_;
    fast_options(&o);
    o.timeout_ms = 120000;
    o.queue_max = 3;
    o.stop_grace_ms = 200;
    wh = start_one(&s, "hang", args, &o);
    assert_int_equal(webhook_notify(wh, "opened", INCIDENT_OPENED, NULL), 0);
    sink_wait(&s, 1, lines);            /* in flight, unanswered */
    expect_field(lines[0], "000", "$.event", "incident.opened");
    free_lines(lines, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(webhook_notify(wh, "updated", INCIDENT_OPENED,
                                        NULL), 0);
    expect_stats(wh, 0, 0, 0, 2, 3);
    t0 = util_mono_us();
    webhook_stop(wh);
    /* Only catches a hang: 150 times the 0.2 s grace, yet well under the
     * 120 s request timeout, so the stop did abort the transfer. */
    assert_true(util_mono_us() - t0 < 30LL * 1000 * 1000);
    sink_stop(&s);
}

static void test_start_needs_a_url(void **state)
{
    struct webhook *wh = NULL;

    (void)state;
    assert_int_equal(webhook_start(NULL, 0, NULL, &wh), -EINVAL);
    assert_null(wh);
    webhook_stop(NULL);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_incident_is_posted_as_json_with_a_slack_text,
            sinks_teardown),
        cmocka_unit_test_teardown(test_failures_are_retried_until_delivered,
                                  sinks_teardown),
        cmocka_unit_test_teardown(test_delivery_is_given_up_and_counted,
                                  sinks_teardown),
        cmocka_unit_test_teardown(
            test_full_queue_drops_oldest_and_stop_does_not_hang,
            sinks_teardown),
        cmocka_unit_test(test_start_needs_a_url),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
