/* test_agent_probe.c -- the HTTP probe against real local servers: the
 * tests/http_target helper (env HTTP_TARGET) and, for an endless body, a
 * tiny server thread in this file. Drives probe_http_ops through its own
 * curl multi handle, the way loop.c does, and checks verdicts, error text,
 * timings, concurrency and the event a result becomes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_http.h"
#include "util.h"

extern char **environ;

static pid_t target_pid;
static unsigned target_port;

/* Starts tests/http_target and reads the port it prints. */
static int start_target(void **state)
{
    const char *bin = getenv("HTTP_TARGET");
    posix_spawn_file_actions_t fa;
    char arg0[] = "http_target";
    char *argv[] = { arg0, NULL };
    char line[32] = "";
    FILE *f;
    int fds[2];

    (void)state;
    if (!bin || pipe(fds) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&target_pid, bin, &fa, NULL, argv, environ) != 0)
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    f = fdopen(fds[0], "r");
    if (!f || !fgets(line, sizeof(line), f))
        return -1;
    fclose(f);
    target_port = (unsigned)atoi(line);
    return target_port ? 0 : -1;
}

/* SIGTERM, then SIGKILL after 5 s: http_target's handler may run on one
 * of libmicrohttpd's threads and leave its main thread in pause(). */
static int stop_target(void **state)
{
    (void)state;
    if (target_pid <= 0)
        return 0;
    kill(target_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(target_pid, NULL, WNOHANG) == target_pid)
            return 0;
        usleep(50000);
    }
    kill(target_pid, SIGKILL);
    waitpid(target_pid, NULL, 0);
    return 0;
}

struct tgt {
    struct agent_target t;
    char name[32];
    char url[128];
};

static void tgt_init(struct tgt *x, const char *path, long long timeout_ms)
{
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "t%s", path);
    snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%u%s", target_port,
             path);
    x->t.name = x->name;
    x->t.url = x->url;
    x->t.type = PROBE_HTTP;
    x->t.interval_ms = 10000;
    x->t.timeout_ms = timeout_ms;
}

/* Runs one probe of each of @n targets at the same time; fills @res. */
static void run_all(struct tgt *ts, size_t n, struct probe_result *res)
{
    CURLM *multi = curl_multi_init();
    size_t left = n;

    assert_non_null(multi);
    for (size_t i = 0; i < n; i++) {
        struct probe_run *run = NULL;

        assert_int_equal(probe_http_ops.start(&ts[i].t, NULL, multi, &run), 0);
        run->slot = i;
        assert_true(run->start_unix_ms > 0);
    }
    while (left > 0) {
        CURLMsg *m;
        int still, q;

        assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
        for (;;) {
            struct probe_run *run;
            char *priv = NULL;

            m = curl_multi_info_read(multi, &q);
            if (!m)
                break;
            if (m->msg != CURLMSG_DONE)
                continue;
            assert_int_equal(curl_easy_getinfo(m->easy_handle,
                                               CURLINFO_PRIVATE, &priv),
                             CURLE_OK);
            run = (struct probe_run *)(void *)priv;
            assert_ptr_equal(run->ops, &probe_http_ops);
            run->ops->finish(run, multi, m->easy_handle, m->data.result,
                             &res[run->slot]);
            left--;
        }
        if (left > 0)
            assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL),
                             CURLM_OK);
    }
    curl_multi_cleanup(multi);
}

static void run_one(struct tgt *t, struct probe_result *res)
{
    run_all(t, 1, res);
}

static void test_ok_target_records_status_and_timings(void **state)
{
    struct tgt t;
    struct probe_result r;

    (void)state;
    tgt_init(&t, "/", 2000);
    run_one(&t, &r);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "");
    /* Cumulative from the start, so they can only grow. */
    assert_true(r.t.connect_us > 0);
    assert_true(r.t.dns_us <= r.t.connect_us);
    assert_true(r.t.connect_us <= r.t.first_byte_us);
    assert_true(r.t.first_byte_us <= r.t.total_us);
    assert_int_equal(r.t.tls_us, 0);        /* plain HTTP */
    assert_true(r.t.total_us < 2000000);
}

/* A proxy from the environment would be timed instead of the target: the
 * probe goes direct. The proxy here is a closed port, so using it would
 * fail the run. */
static void test_environment_proxy_is_not_used(void **state)
{
    struct tgt t;
    struct probe_result r;

    (void)state;
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    tgt_init(&t, "/", 30000);
    run_one(&t, &r);
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    assert_string_equal(r.error, "");
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
}

static void test_unexpected_status_is_a_failure(void **state)
{
    struct tgt t;
    struct probe_result r;

    (void)state;
    tgt_init(&t, "/status/503", 2000);
    run_one(&t, &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.error, "status 503 not expected");
    assert_true(r.t.first_byte_us > 0);

    tgt_init(&t, "/status/404", 2000);
    run_one(&t, &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 404);

    tgt_init(&t, "/status/302", 2000);     /* 3xx is ok by default */
    run_one(&t, &r);
    assert_true(r.ok);
    assert_int_equal(r.status, 302);
}

static void test_expect_status_list_decides(void **state)
{
    int expect[] = { 503, 418 };
    struct tgt t;
    struct probe_result r;

    (void)state;
    tgt_init(&t, "/status/503", 2000);
    t.t.expect_status = expect;
    t.t.n_expect_status = 2;
    run_one(&t, &r);
    assert_true(r.ok);
    assert_int_equal(r.status, 503);

    tgt_init(&t, "/", 2000);
    t.t.expect_status = expect;
    t.t.n_expect_status = 2;
    run_one(&t, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "status 200 not expected");
}

static void test_timeout_is_a_failure_with_curl_text(void **state)
{
    struct tgt t;
    struct probe_result r;

    (void)state;
    tgt_init(&t, "/sleep/3000", 300);
    run_one(&t, &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "timed out"));
    /* curl's timer has millisecond grain and may fire a little early;
     * "timed out" above says it ended on the timer, not on the body (due
     * after 3 s). No upper bound: a loaded machine may be late. */
    if (r.t.total_us < 290000)
        fail_msg("total_us %llu for a 300 ms timeout",
                 (unsigned long long)r.t.total_us);
}

static void test_refused_connection_is_a_failure(void **state)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sin);
    struct tgt t;
    struct probe_result r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    /* A port that was free a moment ago and has no listener now. */
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    tgt_init(&t, "/", 2000);
    snprintf(t.url, sizeof(t.url), "http://127.0.0.1:%u/",
             ntohs(sin.sin_port));
    run_one(&t, &r);
    assert_false(r.ok);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "onnect"));
}

/* A listening TCP socket on 127.0.0.1 and a free port; sets *port. */
static int listen_local(int backlog, unsigned *port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A server that answers nobody until @want connections are open at once,
 * then answers them all: only probes that run at the same time can all
 * succeed. Without a new connection for 30 s it gives up, closing every
 * connection and the listener unanswered, so probes run one after another
 * fail (the first gets no reply, the rest are refused) instead of hanging. */
struct barrier {
    int lfd;
    int want;
    int got;                    /* connections open at once, at most */
};

static void *barrier_serve(void *arg)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n";
    struct barrier *b = arg;
    struct timeval tv = { .tv_sec = 30 };
    char buf[4096];
    int fds[16];

    setsockopt(b->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (b->got < b->want && b->got < 16) {
        int fd = accept(b->lfd, NULL, NULL);

        if (fd < 0)
            break;
        fds[b->got++] = fd;
    }
    if (b->got == b->want)
        for (int i = 0; i < b->got; i++)
            if (read(fds[i], buf, sizeof(buf)) > 0)
                send(fds[i], ok, sizeof(ok) - 1, MSG_NOSIGNAL);
    for (int i = 0; i < b->got; i++)
        close(fds[i]);
    close(b->lfd);
    return NULL;
}

static void test_probes_run_at_the_same_time(void **state)
{
    struct barrier b = { .want = 6 };
    struct tgt ts[6];
    struct probe_result rs[6];
    pthread_t th;
    unsigned port;

    (void)state;
    b.lfd = listen_local(16, &port);
    assert_int_equal(pthread_create(&th, NULL, barrier_serve, &b), 0);
    for (size_t i = 0; i < 6; i++) {
        /* Longer than the server's 30 s: it, not curl, ends a lone wait. */
        tgt_init(&ts[i], "/", 60000);
        snprintf(ts[i].url, sizeof(ts[i].url), "http://127.0.0.1:%u/", port);
    }
    run_all(ts, 6, rs);
    assert_int_equal(pthread_join(th, NULL), 0);
    /* All six connections were open at once, and all six were answered;
     * one after another, none could have been. */
    assert_int_equal(b.got, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_true(rs[i].ok);
        assert_int_equal(rs[i].status, 200);
    }
}

/* A server that answers 200 and then sends body bytes until the client
 * goes away: the probe must stop reading on its own. */
struct endless {
    int lfd;
    size_t sent;
};

static void *endless_serve(void *arg)
{
    static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain"
                              "\r\n\r\n";
    struct endless *e = arg;
    char buf[16384];
    int fd = accept(e->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    if (read(fd, buf, sizeof(buf)) <= 0 ||
        send(fd, hdr, sizeof(hdr) - 1, MSG_NOSIGNAL) < 0) {
        close(fd);
        return NULL;
    }
    memset(buf, 'x', sizeof(buf));
    while (e->sent < (64u << 20)) {         /* 64 MiB: a stop, not a hang */
        ssize_t n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
        if (n <= 0)
            break;
        e->sent += (size_t)n;
    }
    close(fd);
    return NULL;
}

static void test_endless_body_is_cut_at_the_cap(void **state)
{
    struct endless e = { 0 };
    struct tgt t;
    struct probe_result r;
    pthread_t th;
    unsigned port;

    (void)state;
    e.lfd = listen_local(4, &port);
    assert_int_equal(pthread_create(&th, NULL, endless_serve, &e), 0);
    /* A timeout far beyond the cut: ok below means the cap ended it. */
    tgt_init(&t, "/", 60000);
    snprintf(t.url, sizeof(t.url), "http://127.0.0.1:%u/", port);
    run_one(&t, &r);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(e.lfd);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "");
    /* Socket buffers hold a few MiB at most; the server gave up early. */
    assert_true(e.sent < (64u << 20));
}

static void test_cancel_releases_a_run(void **state)
{
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    struct tgt t;
    int still;

    (void)state;
    tgt_init(&t, "/sleep/2000", 3000);
    assert_int_equal(probe_http_ops.start(&t.t, NULL, multi, &run), 0);
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    probe_http_ops.cancel(run, multi);      /* ASan: nothing leaks */
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    assert_int_equal(still, 0);
    curl_multi_cleanup(multi);
}

static void test_result_becomes_a_probe_event(void **state)
{
    struct probe_result r = { .ok = 0, .status = 503 };
    struct probe_event pe;
    char name[] = "api";
    Sextant__V1__Event *ev;
    uint8_t *buf = NULL;
    size_t len;

    (void)state;
    snprintf(r.error, sizeof(r.error), "status 503 not expected");
    r.t = (struct probe_timings){ 10, 20, 30, 40, 50 };
    probe_event_init(&pe, name, PROBE_HTTP, 1764000000123, &r);
    assert_int_equal(wire_event_pack(&pe.ev, &buf, &len), 0);
    ev = sextant__v1__event__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(ev);
    assert_int_equal(ev->unix_ms, 1764000000123);
    assert_int_equal(ev->kind_case, SEXTANT__V1__EVENT__KIND_PROBE);
    assert_string_equal(ev->probe->target, "api");
    assert_int_equal(ev->probe->type,
                     SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP);
    assert_false(ev->probe->ok);
    assert_int_equal(ev->probe->status, 503);
    assert_string_equal(ev->probe->error, "status 503 not expected");
    assert_int_equal(ev->probe->timings->dns_us, 10);
    assert_int_equal(ev->probe->timings->connect_us, 20);
    assert_int_equal(ev->probe->timings->tls_us, 30);
    assert_int_equal(ev->probe->timings->first_byte_us, 40);
    assert_int_equal(ev->probe->timings->total_us, 50);
    sextant__v1__event__free_unpacked(ev, NULL);
}

static void test_probe_types_are_looked_up_by_name(void **state)
{
    enum probe_type t;

    (void)state;
    assert_int_equal(probe_type_parse("http", &t), 0);
    assert_int_equal(t, PROBE_HTTP);
    assert_ptr_equal(probe_ops_find(PROBE_HTTP), &probe_http_ops);
    assert_int_equal(probe_type_parse("gopher", &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_target_records_status_and_timings),
        cmocka_unit_test(test_environment_proxy_is_not_used),
        cmocka_unit_test(test_unexpected_status_is_a_failure),
        cmocka_unit_test(test_expect_status_list_decides),
        cmocka_unit_test(test_timeout_is_a_failure_with_curl_text),
        cmocka_unit_test(test_refused_connection_is_a_failure),
        cmocka_unit_test(test_probes_run_at_the_same_time),
        cmocka_unit_test(test_endless_body_is_cut_at_the_cap),
        cmocka_unit_test(test_cancel_releases_a_run),
        cmocka_unit_test(test_result_becomes_a_probe_event),
        cmocka_unit_test(test_probe_types_are_looked_up_by_name),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, start_target, stop_target);
    curl_global_cleanup();
    return rc;
}
