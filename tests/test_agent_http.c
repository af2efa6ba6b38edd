/* test_agent_http.c -- the HTTP(S) probe's options, end to end from YAML:
 * each target is loaded through agent_config_load() (so probe_http's
 * parse() runs) and probed through its ops in a curl multi handle, the
 * way loop.c drives it. Servers are real and on loopback: tests/http_target
 * (env HTTP_TARGET) plain, and again with TLS and --region, using a CA and
 * a server certificate that openssl makes in a fresh temp folder; and a
 * raw socket server thread in this file that records the exact request
 * bytes it got. Also every config error the new keys can give.
 * Kept as one file at about 1000 lines: one topic (the probe's options)
 * over one group fixture that makes a CA and starts two servers, which a
 * split would make and start twice per run for little gain. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_http.h"
#include "util.h"

extern char **environ;

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
    "  - name: t\n"
/* HEAD is 10 lines: a target's first own key is on line 11. */

#define DAY_MS (24LL * 3600 * 1000)

static char dir[64];            /* temp folder: certificates, YAML */
static char yaml_path[128];
static char ca_path[128];
static pid_t plain_pid, tls_pid;
static unsigned plain_port, tls_port;

/* -- helper processes -- */

/* Starts tests/http_target with @args (NULL-terminated, after argv[0])
 * and reads the port it prints. */
static int spawn_target(char *const *args, pid_t *pid, unsigned *port)
{
    const char *bin = getenv("HTTP_TARGET");
    posix_spawn_file_actions_t fa;
    char *argv[12];
    char arg0[] = "http_target";
    char line[32] = "";
    size_t n = 0;
    FILE *f;
    int fds[2];

    if (!bin || pipe(fds) < 0)
        return -1;
    argv[n++] = arg0;
    for (; args && *args && n < 11; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(pid, bin, &fa, NULL, argv, environ) != 0)
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    f = fdopen(fds[0], "r");
    if (!f)
        return -1;
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    *port = (unsigned)atoi(line);
    return *port ? 0 : -1;
}

static void stop_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int sh(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A CA, and a server certificate it signs for app.test and localhost
 * (not 127.0.0.1: the sni test needs a name the IP does not match),
 * valid for 3 days from now. */
static int make_certs(void)
{
    return sh("cd %s && "
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
              "-nodes -days 7 -subj /CN=test-ca -keyout ca.key -out ca.pem "
              ">/dev/null 2>&1 && "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
              "-nodes -subj /CN=app.test -keyout srv.key -out srv.csr "
              ">/dev/null 2>&1 && "
              "printf 'subjectAltName=DNS:app.test,DNS:localhost\\n' "
              "> ext.cnf && "
              "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
              "-CAcreateserial -days 3 -extfile ext.cnf -out srv.pem "
              ">/dev/null 2>&1", dir);
}

static int group_teardown(void **state);

static int group_setup(void **state)
{
    char cert[128], key[128];
    char a_cert[] = "--tls-cert", a_key[] = "--tls-key";
    char a_region[] = "--region", region[] = "eu-west-1";
    char *plain_args[] = { NULL };
    char *tls_args[] = { a_cert, cert, a_key, key, a_region, region, NULL };

    unsetenv("NODE_NAME");
    snprintf(dir, sizeof(dir), "/tmp/test_agent_http.XXXXXX");
    if (!mkdtemp(dir)) {
        dir[0] = '\0';
        return -1;
    }
    snprintf(yaml_path, sizeof(yaml_path), "%s/agent.yaml", dir);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
    snprintf(key, sizeof(key), "%s/srv.key", dir);
    if (make_certs() != 0) {
        fprintf(stderr, "openssl could not make the test certificates\n");
        goto err;
    }
    if (spawn_target(plain_args, &plain_pid, &plain_port) < 0 ||
        spawn_target(tls_args, &tls_pid, &tls_port) < 0)
        goto err;
    return 0;
err:
    group_teardown(state);          /* cmocka does not call it for us */
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_pid(plain_pid);
    stop_pid(tls_pid);
    if (dir[0])
        sh("rm -rf %s", dir);
    return 0;
}

/* -- a raw server thread: sees the exact request bytes -- */

struct rawsrv {
    int lfd;
    unsigned port;
    const char *reply;          /* sent whole after every request */
    size_t reply_len;
    atomic_int stop;
    pthread_t th;
    unsigned n_requests;        /* read by the test after the join */
    char req[65536];            /* the last request, NUL-terminated */
    size_t req_len;
};

/* Reads one request: headers, then Content-Length bytes of body. */
static void raw_read_request(struct rawsrv *s, int fd)
{
    size_t len = 0, want = 0;
    char *hdr_end = NULL;

    while (len < sizeof(s->req) - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 3000) <= 0)
            break;
        n = read(fd, s->req + len, sizeof(s->req) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        s->req[len] = '\0';
        if (!hdr_end) {
            hdr_end = strstr(s->req, "\r\n\r\n");
            if (hdr_end) {
                const char *cl = strcasestr(s->req, "\r\nContent-Length:");

                want = (size_t)(hdr_end + 4 - s->req);
                if (cl && cl < hdr_end)
                    want += (size_t)strtoul(cl + 17, NULL, 10);
            }
        }
        if (hdr_end && len >= want)
            break;
    }
    s->req_len = len;
}

static void *raw_serve(void *arg)
{
    struct rawsrv *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd p = { .fd = s->lfd, .events = POLLIN };
        size_t off = 0;
        int fd;

        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        raw_read_request(s, fd);
        s->n_requests++;
        while (off < s->reply_len) {
            ssize_t n = send(fd, s->reply + off, s->reply_len - off,
                             MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(fd);
    }
    return NULL;
}

static void raw_start(struct rawsrv *s, const char *reply, size_t reply_len)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sin);

    memset(s, 0, sizeof(*s));
    s->reply = reply;
    s->reply_len = reply_len;
    atomic_init(&s->stop, 0);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &sl), 0);
    s->port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, raw_serve, s), 0);
}

static void raw_stop(struct rawsrv *s)
{
    atomic_store(&s->stop, 1);
    assert_int_equal(pthread_join(s->th, NULL), 0);
    close(s->lfd);
}

static const char raw_ok[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/* -- loading and probing -- */

static void write_yaml(const char *fmt, va_list ap)
{
    FILE *f = fopen(yaml_path, "w");

    assert_non_null(f);
    fputs(HEAD, f);
    vfprintf(f, fmt, ap);
    assert_int_equal(fclose(f), 0);
}

/* Loads HEAD + the target lines @fmt; asserts it loads. */
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

/* Asserts HEAD + @fmt fails to load with "PATH:" + @want as a prefix. */
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
    if (strncmp(err, full, strlen(full)) != 0)
        fail_msg("got \"%s\", want prefix \"%s\"", err, full);
    assert_null(strchr(err, '\n'));
    assert_null(cfg.targets);
}

/* Probes the first target of @cfg once, as loop.c would. */
static void run_target(const struct agent_target *t, struct probe_result *r)
{
    const struct probe_ops *ops = probe_ops_find(t->type);
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    void *pstate = NULL;
    int done = 0;

    assert_non_null(multi);
    assert_non_null(ops);
    assert_int_equal(ops->start(t, &pstate, multi, &run), 0);
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
    assert_null(pstate);            /* http keeps nothing between runs */
    curl_multi_cleanup(multi);
}

/* Loads one target from @fmt and probes it once into @r. */
static void probe(struct probe_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void probe(struct probe_result *r, const char *fmt, ...)
{
    struct agent_config cfg = { 0 };
    char err[512] = "";
    va_list ap;

    va_start(ap, fmt);
    write_yaml(fmt, ap);
    va_end(ap);
    if (agent_config_load(yaml_path, &cfg, err, sizeof(err)) != 0)
        fail_msg("config did not load: %s", err);
    run_target(&cfg.targets[0], r);
    agent_config_free(&cfg);
}

/* Percent-encodes @s for a query value. */
static void qenc(const char *s, char *out, size_t len)
{
    size_t o = 0;

    for (; *s && o + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
    }
    out[o] = '\0';
}

/* -- status, method, headers, body -- */

static void test_expect_status_list_decides(void **state)
{
    struct probe_result r;

    (void)state;
    probe(&r, "    url: http://127.0.0.1:%u/status/503\n"
              "    expect_status: [503, 418]\n", plain_port);
    assert_true(r.ok);
    assert_int_equal(r.status, 503);

    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    expect_status: [503, 418]\n", plain_port);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "status 200 not expected");

    probe(&r, "    url: http://127.0.0.1:%u/status/404\n", plain_port);
    assert_false(r.ok);                     /* default: 2xx and 3xx only */
    assert_string_equal(r.error, "status 404 not expected");
}

static void test_get_is_the_default_and_headers_are_sent(void **state)
{
    struct rawsrv s;
    struct probe_result r;

    (void)state;
    raw_start(&s, raw_ok, sizeof(raw_ok) - 1);
    probe(&r, "    url: http://127.0.0.1:%u/health?x=1\n"
              "    headers:\n"
              "      X-Probe: abc def\n"
              "      Authorization: Bearer t0k\n"
              "      X-Empty: \"\"\n", s.port);
    raw_stop(&s);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(s.n_requests, 1);
    assert_int_equal(strncmp(s.req, "GET /health?x=1 HTTP/1.1\r\n", 26), 0);
    assert_non_null(strstr(s.req, "\r\nX-Probe: abc def\r\n"));
    assert_non_null(strstr(s.req, "\r\nAuthorization: Bearer t0k\r\n"));
    assert_non_null(strstr(s.req, "\r\nX-Empty:\r\n"));
    assert_non_null(strstr(s.req, "\r\nUser-Agent: sextant-agent/"));
    assert_non_null(strstr(s.req, "\r\nHost: 127.0.0.1:"));
    assert_null(strcasestr(s.req, "Content-Length"));
}

static void test_post_sends_method_and_body(void **state)
{
    static const char body[] = "{\"check\": \"deep\"}";
    struct rawsrv s;
    struct probe_result r;
    const char *at;

    (void)state;
    raw_start(&s, raw_ok, sizeof(raw_ok) - 1);
    probe(&r, "    url: http://127.0.0.1:%u/api\n"
              "    method: POST\n"
              "    headers: {Content-Type: application/json}\n"
              "    body: '%s'\n", s.port, body);
    raw_stop(&s);
    assert_true(r.ok);
    assert_int_equal(strncmp(s.req, "POST /api HTTP/1.1\r\n", 20), 0);
    assert_non_null(strstr(s.req, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s.req, "\r\nContent-Length: 17\r\n"));
    assert_null(strcasestr(s.req, "\r\nExpect:"));
    at = strstr(s.req, "\r\n\r\n");
    assert_non_null(at);
    assert_string_equal(at + 4, body);
}

/* Old libcurl asked for 100 Continue above 1 KiB and waited a second for
 * a server that ignores it. */
static void test_large_body_goes_out_without_expect(void **state)
{
    char body[4001];
    struct rawsrv s;
    struct probe_result r;
    const char *at;

    (void)state;
    memset(body, 'b', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    raw_start(&s, raw_ok, sizeof(raw_ok) - 1);
    probe(&r, "    url: http://127.0.0.1:%u/api\n"
              "    method: PUT\n"
              "    body: %s\n", s.port, body);
    raw_stop(&s);
    assert_true(r.ok);
    assert_int_equal(strncmp(s.req, "PUT /api HTTP/1.1\r\n", 19), 0);
    assert_non_null(strstr(s.req, "\r\nContent-Length: 4000\r\n"));
    assert_null(strcasestr(s.req, "\r\nExpect:"));
    at = strstr(s.req, "\r\n\r\n");
    assert_non_null(at);
    /* No Expect header, so no 1 s wait for "100 Continue": asserted on
     * the request above, not on the clock. */
    assert_string_equal(at + 4, body);
}

static void test_other_methods_are_sent_as_written(void **state)
{
    struct rawsrv s;
    struct probe_result r;

    (void)state;
    raw_start(&s, raw_ok, sizeof(raw_ok) - 1);
    probe(&r, "    url: http://127.0.0.1:%u/x\n"
              "    method: PUT\n", s.port);
    assert_true(r.ok);
    assert_int_equal(strncmp(s.req, "PUT /x HTTP/1.1\r\n", 17), 0);
    assert_non_null(strstr(s.req, "\r\nContent-Length: 0\r\n"));

    probe(&r, "    url: http://127.0.0.1:%u/x\n"
              "    method: DELETE\n", s.port);
    assert_true(r.ok);
    assert_int_equal(strncmp(s.req, "DELETE /x HTTP/1.1\r\n", 20), 0);

    probe(&r, "    url: http://127.0.0.1:%u/x\n"
              "    method: PATCH\n"
              "    body: a=1\n", s.port);
    assert_true(r.ok);
    assert_int_equal(strncmp(s.req, "PATCH /x HTTP/1.1\r\n", 19), 0);
    assert_non_null(strstr(s.req, "\r\n\r\na=1"));

    probe(&r, "    url: http://127.0.0.1:%u/x\n"
              "    method: HEAD\n", s.port);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(strncmp(s.req, "HEAD /x HTTP/1.1\r\n", 18), 0);

    probe(&r, "    url: http://127.0.0.1:%u/x\n"
              "    method: OPTIONS\n", s.port);
    assert_true(r.ok);
    assert_int_equal(strncmp(s.req, "OPTIONS /x HTTP/1.1\r\n", 21), 0);
    raw_stop(&s);
    assert_int_equal(s.n_requests, 5);
}

static void test_host_overrides_the_host_header(void **state)
{
    struct rawsrv s;
    struct probe_result r;
    const char *h;

    (void)state;
    raw_start(&s, raw_ok, sizeof(raw_ok) - 1);
    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    host: app.example:8443\n", s.port);
    raw_stop(&s);
    assert_true(r.ok);
    h = strcasestr(s.req, "\r\nHost: ");
    assert_non_null(h);
    assert_int_equal(strncmp(h, "\r\nHost: app.example:8443\r\n", 26), 0);
    assert_null(strcasestr(h + 2, "\r\nHost:"));     /* only one */
}

static void test_body_match_passes_and_fails(void **state)
{
    struct probe_result r;

    (void)state;
    probe(&r, "    url: http://127.0.0.1:%u/body?text=db%%3A%%20green\n"
              "    body_match: 'db: green'\n", plain_port);
    assert_true(r.ok);
    assert_string_equal(r.error, "");

    probe(&r, "    url: http://127.0.0.1:%u/body?text=db%%3A%%20red\n"
              "    body_match: 'db: green'\n", plain_port);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);        /* the status was fine */
    assert_string_equal(r.error,
                        "body does not match body_match \"db: green\"");

    /* The status verdict comes first. */
    probe(&r, "    url: http://127.0.0.1:%u/status/503\n"
              "    body_match: nothing\n", plain_port);
    assert_false(r.ok);
    assert_string_equal(r.error, "status 503 not expected");
}

static void test_body_regex_passes_and_fails(void **state)
{
    char text[256], url[512];
    struct probe_result r;

    (void)state;
    qenc("version=1.24.3\nbuild=ok\n", text, sizeof(text));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/body?text=%s",
             plain_port, text);
    /* ^ and $ per line, like grep -E. */
    probe(&r, "    url: %s\n"
              "    body_regex: '^build=(ok|good)$'\n", url);
    assert_true(r.ok);
    probe(&r, "    url: %s\n"
              "    body_regex: 'version=1\\.[0-9]+\\.[0-9]+'\n", url);
    assert_true(r.ok);

    probe(&r, "    url: %s\n"
              "    body_regex: '^version=2\\.'\n", url);
    assert_false(r.ok);
    assert_string_equal(r.error,
                        "body does not match body_regex \"^version=2\\.\"");

    /* Both given: both must match. */
    probe(&r, "    url: %s\n"
              "    body_match: build=ok\n"
              "    body_regex: 'build=bad'\n", url);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "body_regex"));
}

static void test_body_match_sees_only_the_first_64k(void **state)
{
    static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                              "Connection: close\r\n\r\n";
    size_t body_len = PROBE_HTTP_MAX_BODY + 10000, len;
    char *reply = malloc(body_len + 128);
    struct rawsrv s;
    struct probe_result r;

    (void)state;
    assert_non_null(reply);
    len = (size_t)sprintf(reply, hdr, body_len + 4);
    memcpy(reply + len, "HEAD", 4);         /* first bytes */
    memset(reply + len + 4, 'x', body_len - 4);
    memcpy(reply + len + body_len, "TAIL", 4);      /* past the cap */
    len += body_len + 4;
    raw_start(&s, reply, len);
    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    body_regex: '^HEADx{1000}'\n", s.port);
    assert_true(r.ok);
    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    body_match: TAIL\n", s.port);
    raw_stop(&s);
    free(reply);
    assert_false(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "body does not match body_match \"TAIL\" "
                                 "(in the first 65536 bytes)");
}

/* -- redirects -- */

static void test_redirect_is_reported_unless_followed(void **state)
{
    char to[256], enc[512];
    struct probe_result r;

    (void)state;
    snprintf(to, sizeof(to), "http://127.0.0.1:%u/body?text=landed",
             plain_port);
    qenc(to, enc, sizeof(enc));
    probe(&r, "    url: http://127.0.0.1:%u/redirect?to=%s\n", plain_port,
          enc);
    assert_true(r.ok);                      /* 3xx is ok by default */
    assert_int_equal(r.status, 302);

    probe(&r, "    url: http://127.0.0.1:%u/redirect?to=%s\n"
              "    expect_status: [200]\n", plain_port, enc);
    assert_false(r.ok);
    assert_string_equal(r.error, "status 302 not expected");

    probe(&r, "    url: http://127.0.0.1:%u/redirect?to=%s\n"
              "    follow_redirects: true\n"
              "    expect_status: [200]\n"
              "    body_match: landed\n", plain_port, enc);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
}

static void test_redirect_loop_stops_after_five(void **state)
{
    static const char loop[] = "HTTP/1.1 302 Found\r\nLocation: /again\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n"
                               "\r\n";
    struct rawsrv s;
    struct probe_result r;

    (void)state;
    raw_start(&s, loop, sizeof(loop) - 1);
    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    follow_redirects: true\n", s.port);
    raw_stop(&s);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "Maximum (5) redirects followed"));
    assert_int_equal(s.n_requests, 6);      /* the first and 5 more */
}

/* -- TLS -- */

static void test_https_verifies_with_ca_file_and_records_not_after(void **st)
{
    struct probe_result r;
    int64_t want = util_now_ms() + 3 * DAY_MS, diff;

    (void)st;
    probe(&r, "    url: https://localhost:%u/\n"
              "    ca_file: %s\n", tls_port, ca_path);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_true(r.t.connect_us > 0);
    assert_true(r.t.tls_us > r.t.connect_us);
    assert_true(r.t.first_byte_us >= r.t.tls_us);
    assert_string_equal(r.served_by, "");   /* not configured */
    diff = r.cert_not_after_ms - want;
    if (diff < -DAY_MS || diff > DAY_MS)
        fail_msg("cert_not_after_ms %lld, want about %lld",
                 (long long)r.cert_not_after_ms, (long long)want);
}

static void test_https_without_the_ca_fails_clearly(void **state)
{
    struct probe_result r;

    (void)state;
    probe(&r, "    url: https://localhost:%u/\n", tls_port);
    assert_false(r.ok);
    assert_int_equal(r.status, 0);
    if (!strstr(r.error, "SSL certificate problem"))
        fail_msg("error \"%s\"", r.error);
}

static void test_tls_verify_false_accepts_the_certificate(void **state)
{
    struct probe_result r;
    int64_t want = util_now_ms() + 3 * DAY_MS, diff;

    (void)state;
    probe(&r, "    url: https://127.0.0.1:%u/\n"
              "    tls_verify: false\n", tls_port);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    diff = r.cert_not_after_ms - want;
    assert_true(diff > -DAY_MS && diff < DAY_MS);
}

static void test_sni_names_the_server_and_host_overrides_it(void **state)
{
    struct probe_result r;

    (void)state;
    /* The certificate names app.test and localhost, not the IP. */
    probe(&r, "    url: https://127.0.0.1:%u/echo\n"
              "    ca_file: %s\n", tls_port, ca_path);
    assert_false(r.ok);
    if (!strstr(r.error, "127.0.0.1"))
        fail_msg("error \"%s\"", r.error);

    /* Connects to 127.0.0.1 (app.test does not resolve), verifies
     * app.test, and sends it as Host. */
    probe(&r, "    url: https://127.0.0.1:%u/echo\n"
              "    ca_file: %s\n"
              "    sni: app.test\n"
              "    body_match: 'Host: app.test:%u'\n",
          tls_port, ca_path, tls_port);
    if (!r.ok)
        fail_msg("sni probe failed: %s", r.error);
    assert_int_equal(r.status, 200);
    assert_true(r.cert_not_after_ms > 0);

    probe(&r, "    url: https://127.0.0.1:%u/echo\n"
              "    ca_file: %s\n"
              "    sni: app.test\n"
              "    host: other.example\n"
              "    body_regex: '^Host: other\\.example$'\n",
          tls_port, ca_path);
    if (!r.ok)
        fail_msg("sni + host probe failed: %s", r.error);

    /* sni is only a name: the verification still has to pass. */
    probe(&r, "    url: https://127.0.0.1:%u/echo\n"
              "    ca_file: %s\n"
              "    sni: wrong.test\n", tls_port, ca_path);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "wrong.test"));
}

/* -- served-by -- */

static void test_served_by_is_recorded_from_the_named_header(void **state)
{
    struct probe_result r;

    (void)state;
    probe(&r, "    url: https://localhost:%u/\n"
              "    ca_file: %s\n"
              "    served_by_header: x-served-by\n", tls_port, ca_path);
    assert_true(r.ok);
    assert_string_equal(r.served_by, "eu-west-1");

    /* Recorded on failure too: which region failed matters most. */
    probe(&r, "    url: https://localhost:%u/status/503\n"
              "    ca_file: %s\n"
              "    served_by_header: X-Served-By\n", tls_port, ca_path);
    assert_false(r.ok);
    assert_string_equal(r.served_by, "eu-west-1");

    probe(&r, "    url: https://localhost:%u/\n"
              "    ca_file: %s\n"
              "    served_by_header: X-Region\n", tls_port, ca_path);
    assert_true(r.ok);
    assert_string_equal(r.served_by, "");
}

static void test_served_by_comes_from_the_last_response(void **state)
{
    char to[128], enc[256];
    struct probe_result r;

    (void)state;
    snprintf(to, sizeof(to), "http://127.0.0.1:%u/", plain_port);
    qenc(to, enc, sizeof(enc));
    probe(&r, "    url: https://localhost:%u/redirect?to=%s\n"
              "    ca_file: %s\n"
              "    served_by_header: X-Served-By\n", tls_port, enc, ca_path);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.served_by, "eu-west-1");
    /* Followed to the plain target, which names no region. */
    probe(&r, "    url: https://localhost:%u/redirect?to=%s\n"
              "    ca_file: %s\n"
              "    follow_redirects: true\n"
              "    served_by_header: X-Served-By\n", tls_port, enc, ca_path);
    assert_true(r.ok);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.served_by, "");
}

static void test_served_by_is_bounded_and_printable(void **state)
{
    char reply[1024], want[PROBE_SERVED_BY_LEN];
    struct rawsrv s;
    struct probe_result r;
    int n;

    (void)state;
    n = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\n"
                 "X-Served-By:   r\x01gion\xc3\xa9  \r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n");
    raw_start(&s, reply, (size_t)n);
    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    served_by_header: X-Served-By\n", s.port);
    raw_stop(&s);
    assert_true(r.ok);
    assert_string_equal(r.served_by, "r?gion??");

    memset(want, 'z', sizeof(want) - 1);
    want[sizeof(want) - 1] = '\0';
    n = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\n"
                 "X-Served-By: %s%s\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n", want,
                 "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    raw_start(&s, reply, (size_t)n);
    probe(&r, "    url: http://127.0.0.1:%u/\n"
              "    served_by_header: X-Served-By\n", s.port);
    raw_stop(&s);
    assert_string_equal(r.served_by, want);   /* PROBE_SERVED_BY_LEN - 1 */
}

/* -- configuration -- */

static void test_every_key_loads(void **state)
{
    struct agent_config cfg;

    (void)state;
    load_ok(&cfg, "    url: https://127.0.0.1:8443/healthz\n"
                  "    expect_status: [200]\n"
                  "    method: POST\n"
                  "    headers: {X-A: b, Content-Type: text/plain}\n"
                  "    body: ping\n"
                  "    body_match: pong\n"
                  "    body_regex: '^p[a-z]+g$'\n"
                  "    follow_redirects: true\n"
                  "    tls_verify: true\n"
                  "    ca_file: %s\n"
                  "    sni: app.test\n"
                  "    host: app.test\n"
                  "    served_by_header: X-Served-By\n", ca_path);
    assert_int_equal(cfg.n_targets, 1);
    assert_int_equal(cfg.targets[0].type, PROBE_HTTP);
    assert_non_null(cfg.targets[0].opts);
    agent_config_free(&cfg);
}

static void test_config_errors_name_the_key_and_line(void **state)
{
    char many[4096];
    size_t len = 0;

    (void)state;
#define URL "    url: http://127.0.0.1:9/\n"
    load_fails("12: targets[0].method: unknown method \"get\"; one of GET, "
               "HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case)",
               URL "    method: get\n");
    load_fails("12: targets[0].method: expected a scalar value",
               URL "    method: [GET]\n");
    load_fails("12: targets[0].headers: expected a mapping",
               URL "    headers: 'X-A: b'\n");
    load_fails("13: targets[0].headers: \"Bad Name\" is not a header name",
               URL "    headers:\n      Bad Name: x\n");
    load_fails("13: targets[0].headers: value of \"X-A\" must be a string",
               URL "    headers:\n      X-A: [1, 2]\n");
    load_fails("13: targets[0].headers: value of \"X-A\" must be printable "
               "ASCII", URL "    headers:\n      X-A: \"a\\r\\nX-B: c\"\n");
    load_fails("13: targets[0].headers: value of \"X-A\" is empty",
               URL "    headers:\n      X-A:\n");
    load_fails("13: targets[0].headers: set the Host header with the host "
               "key", URL "    headers:\n      host: x\n");
    load_fails("14: targets[0].headers: header \"x-a\" given twice",
               URL "    headers:\n      X-A: 1\n      x-a: 2\n");
    len += (size_t)snprintf(many, sizeof(many), URL "    headers:\n");
    for (unsigned i = 0; i <= PROBE_HTTP_MAX_HEADERS; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len,
                                "      X-H%u: v\n", i);
    load_fails("45: targets[0].headers: at most 32 headers", "%s", many);
    load_fails("12: targets[0].body: needs method POST, PUT, PATCH, DELETE "
               "or OPTIONS, not GET", URL "    body: x\n");
    load_fails("13: targets[0].body: needs method POST, PUT, PATCH, DELETE "
               "or OPTIONS, not HEAD", URL "    method: HEAD\n    body: x\n");
    load_fails("12: targets[0].body_match: must not be empty",
               URL "    body_match: ''\n");
    load_fails("13: targets[0].body_match: a HEAD response has no body to "
               "match", URL "    method: HEAD\n    body_match: ok\n");
    load_fails("12: targets[0].body_regex: not a valid POSIX extended "
               "regular expression: ", URL "    body_regex: 'a(b'\n");
    load_fails("12: targets[0].body_regex: not a valid POSIX extended "
               "regular expression: ", URL "    body_regex: 'x{2,1}'\n");
    load_fails("12: targets[0].body_regex: too complex: its stacked or "
               "nested repetitions expand to over 65536 pieces",
               URL "    body_regex: '^(ok|u++++++++++++++++++++++++p)$'\n");
    load_fails("12: targets[0].body_regex: too complex: its stacked or "
               "nested repetitions expand to over 65536 pieces",
               URL "    body_regex: '((a{50}){50}){50}'\n");
    load_fails("12: targets[0].follow_redirects: expected true or false, "
               "got \"sometimes\"", URL "    follow_redirects: sometimes\n");
    load_fails("12: targets[0].tls_verify: expected true or false, got "
               "\"2\"", URL "    tls_verify: 2\n");
    load_fails("12: targets[0].ca_file: cannot read /nonexistent/ca.pem: No "
               "such file or directory",
               URL "    ca_file: /nonexistent/ca.pem\n");
    load_fails("12: targets[0].ca_file: /tmp is not a regular file",
               URL "    ca_file: /tmp\n");
    load_fails("12: targets[0].sni: needs an https URL (for the Host header "
               "alone, use host)", URL "    sni: app.test\n");
    load_fails("12: targets[0].sni: expected a host name, got \"a/b\"",
               "    url: https://127.0.0.1:9/\n    sni: a/b\n");
    load_fails("12: targets[0].host: expected host or host:port, got "
               "\"a b\"", URL "    host: a b\n");
    load_fails("12: targets[0].served_by_header: \"X Served\" is not a "
               "header name", URL "    served_by_header: X Served\n");
    load_fails("12: targets[0].address: unknown key",
               URL "    address: 127.0.0.1:9\n");
    load_fails("10: targets[0].url: required key is missing",
               "    method: GET\n");
#undef URL
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expect_status_list_decides),
        cmocka_unit_test(test_get_is_the_default_and_headers_are_sent),
        cmocka_unit_test(test_post_sends_method_and_body),
        cmocka_unit_test(test_large_body_goes_out_without_expect),
        cmocka_unit_test(test_other_methods_are_sent_as_written),
        cmocka_unit_test(test_host_overrides_the_host_header),
        cmocka_unit_test(test_body_match_passes_and_fails),
        cmocka_unit_test(test_body_regex_passes_and_fails),
        cmocka_unit_test(test_body_match_sees_only_the_first_64k),
        cmocka_unit_test(test_redirect_is_reported_unless_followed),
        cmocka_unit_test(test_redirect_loop_stops_after_five),
        cmocka_unit_test(
            test_https_verifies_with_ca_file_and_records_not_after),
        cmocka_unit_test(test_https_without_the_ca_fails_clearly),
        cmocka_unit_test(test_tls_verify_false_accepts_the_certificate),
        cmocka_unit_test(test_sni_names_the_server_and_host_overrides_it),
        cmocka_unit_test(test_served_by_is_recorded_from_the_named_header),
        cmocka_unit_test(test_served_by_comes_from_the_last_response),
        cmocka_unit_test(test_served_by_is_bounded_and_printable),
        cmocka_unit_test(test_every_key_loads),
        cmocka_unit_test(test_config_errors_name_the_key_and_line),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
