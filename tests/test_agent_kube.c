/* test_agent_kube.c -- the Kubernetes API probe over real HTTPS on
 * loopback: tests/kube_api_server (env KUBE_API_SERVER) serves the
 * recorded responses of tests/fixtures/kube (env KUBE_FIXTURES) with a
 * server certificate signed by a CA that openssl makes in this run's temp
 * folder. Targets come from agent.yaml text through agent_config_load(),
 * so every run also goes through the type's parse(); each run is driven
 * the way loop.c drives it (curl multi handle plus the poll hooks). Also
 * checks the config errors of the type. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_kube.h"
#include "util.h"
#include "wire.h"

extern char **environ;

#define TOKEN "kube-test-token-7f3a9c0e12"

static char dir[64];                    /* this run's temp folder */
static unsigned port;                   /* kube_api_server's */
static pid_t server_pid;
static struct agent_config cfg;         /* the probe tests' targets */

/* Runs @fmt through sh -c; 0 when it exited 0. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    int rc, n;

    va_start(ap, fmt);
    n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* A NodeList of valid JSON over the 8 MiB cap: padding in a field. */
static int write_big_fixture(void)
{
    char path[256], pad[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/fixtures/big_api_v1_nodes.json", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    memset(pad, 'x', sizeof(pad));
    fputs("{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{},"
          "\"items\":[],\"padding\":\"", f);
    for (size_t n = 0; n < KUBE_MAX_NODES_BODY + (1u << 20); n += sizeof(pad))
        fwrite(pad, 1, sizeof(pad), f);
    fputs("\"}\n", f);
    return fclose(f) == 0 ? 0 : -1;
}

/* A CA, a server certificate for 127.0.0.1 and localhost signed by it,
 * and an unrelated CA, all made fresh; the fixtures copied so tests can
 * add their own. */
static int make_material(void)
{
    const char *fixtures = getenv("KUBE_FIXTURES");

    if (!fixtures)
        return -1;
    return sh("set -e; cd '%s'; mkdir fixtures; cp '%s'/*.json fixtures/; "
              "cp fixtures/nodes-zone-lost.json "
              "fixtures/zonelost_api_v1_nodes.json; "
              "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'; "
              "openssl req -x509 $ec -days 1 -subj /CN=test-ca "
              "-keyout ca.key -out ca.crt 2>/dev/null; "
              "openssl req -x509 $ec -days 1 -subj /CN=other-ca "
              "-keyout other.key -out other.crt 2>/dev/null; "
              "openssl req $ec -subj /CN=kube-apiserver -keyout server.key "
              "-out server.csr 2>/dev/null; "
              "echo 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext; "
              "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
              "-CAcreateserial -days 1 -extfile san.ext -out server.crt "
              "2>/dev/null; "
              "cd fixtures; "
              "printf '{\"kind\":\"NodeList\",\"items\":[]}\\n{}\\n' "
              "> trailing_api_v1_nodes.json; "
              "printf '{\"kind\":\"PodList\",\"apiVersion\":\"v1\",'"
              "'\"items\":[]}' > wrongkind_api_v1_nodes.json; "
              "printf '{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",'"
              "'\"metadata\":{\"resourceVersion\":\"9\"},\"items\":[]}' "
              "> empty_api_v1_nodes.json; "
              "{ printf '{\"kind\":\"NodeList\",\"items\":[],\"x\":'; "
              "for i in $(seq 100); do printf '['; done; "
              "for i in $(seq 100); do printf ']'; done; echo '}'; } "
              "> deep_api_v1_nodes.json; "
              "cd ..; "
              "printf '%%s\\n' '%s' > token; "
              "printf '%%s\\n' wrong-token-0000 > wrong-token",
              dir, fixtures, TOKEN);
}

static int start_server(void)
{
    const char *bin = getenv("KUBE_API_SERVER");
    posix_spawn_file_actions_t fa;
    char fixtures[128], cert[128], key[128], log[128];
    char *argv[] = { "kube_api_server", "--dir", fixtures, "--cert", cert,
                     "--key", key, "--token", TOKEN, NULL };
    char line[32] = "";
    FILE *f;
    int fds[2], rc;

    snprintf(fixtures, sizeof(fixtures), "%s/fixtures", dir);
    snprintf(cert, sizeof(cert), "%s/server.crt", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    if (!bin || pipe(fds) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    rc = posix_spawn(&server_pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        server_pid = 0;
        close(fds[0]);
        return -1;
    }
    f = fdopen(fds[0], "r");
    if (!f) {
        close(fds[0]);
        return -1;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';                 /* it died before listening */
    fclose(f);
    port = (unsigned)atoi(line);
    return port ? 0 : -1;
}

#define HEAD                                \
    "cluster: c1\n"                         \
    "region: eu-west-1\n"                   \
    "node: n1\n"                            \
    "collector:\n"                          \
    "  url: http://127.0.0.1:8480\n"        \
    "  token: tok-0123456789abcdef\n"       \
    "spool:\n"                              \
    "  path: /tmp/agent-spool.db\n"

/* The probe tests' targets: one per behaviour, all against the server. */
static int load_targets(void)
{
    char path[128], err[512];
    char *yaml = NULL;
    FILE *f;
    int n;

    n = asprintf(&yaml, HEAD
        "timeout: 5s\n"
        "targets:\n"
        "  - {name: nodes, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: zonelost, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u/zonelost/',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: trailing, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u/trailing',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: wrongkind, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u/wrongkind',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: deep, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u/deep',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: empty, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u/empty',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: big, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u/big',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: web, type: kube, resource: deployment,\n"
        "     namespace: shop, deployment: web,\n"
        "     url: 'https://localhost:%1$u/',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: checkout, type: kube, resource: deployment,\n"
        "     namespace: shop, deployment: checkout,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: coredns, type: kube, resource: deployment,\n"
        "     namespace: kube-system, deployment: coredns,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: gone, type: kube, resource: deployment,\n"
        "     namespace: shop, deployment: gone,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: truncated, type: kube, resource: deployment,\n"
        "     namespace: shop, deployment: truncated,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: garbled, type: kube, resource: deployment,\n"
        "     namespace: shop, deployment: garbled,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n"
        "  - {name: wrong-token, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/wrong-token, ca_file: %2$s/ca.crt}\n"
        "  - {name: rotating, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/rotating-token, ca_file: %2$s/ca.crt}\n"
        "  - {name: wrong-ca, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/other.crt}\n"
        "  - {name: no-ca, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/token, ca_file: %2$s/no-such-ca.crt}\n"
        "  - {name: no-token, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/no-such-token, ca_file: %2$s/ca.crt}\n"
        "  - {name: bad-token, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:%1$u',\n"
        "     token_file: %2$s/bad-token, ca_file: %2$s/ca.crt}\n"
        "  - {name: closed, type: kube, resource: nodes,\n"
        "     url: 'https://127.0.0.1:1',\n"
        "     token_file: %2$s/token, ca_file: %2$s/ca.crt}\n",
        port, dir);
    if (n < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/agent.yaml", dir);
    f = fopen(path, "w");
    n = f ? fputs(yaml, f) : -1;
    if (f && fclose(f) != 0)
        n = -1;
    free(yaml);
    if (n < 0)
        return -1;
    if (agent_config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "agent_config_load: %s\n", err);
        return -1;
    }
    return 0;
}

static int stop_server(void)
{
    if (server_pid <= 0)
        return 0;
    kill(server_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = 0;
            return 0;
        }
        usleep(50000);
    }
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
    return 0;
}

/* Idempotent: also the cleanup of a setup that failed half-way. */
static int group_teardown(void **state)
{
    (void)state;
    stop_server();
    agent_config_free(&cfg);
    if (dir[0])
        sh("rm -rf '%s'", dir);
    dir[0] = '\0';
    return 0;
}

static int group_setup(void **state)
{
    unsetenv("NODE_NAME");
    snprintf(dir, sizeof(dir), "/tmp/sextant-kube-XXXXXX");
    if (!mkdtemp(dir)) {
        dir[0] = '\0';
        return -1;
    }
    if (make_material() < 0 || write_big_fixture() < 0 ||
        start_server() < 0 || load_targets() < 0) {
        fprintf(stderr, "test_agent_kube: setup failed (openssl, "
                "KUBE_API_SERVER or KUBE_FIXTURES)\n");
        group_teardown(state);
        return -1;
    }
    return 0;
}

static const struct agent_target *target(const char *name)
{
    for (size_t i = 0; i < cfg.n_targets; i++)
        if (strcmp(cfg.targets[i].name, name) == 0)
            return &cfg.targets[i];
    fail_msg("no target %s", name);
    return NULL;
}

struct done_ctx {
    struct probe_run *want;
    struct probe_result *res;
    int done;
};

static void on_done(struct probe_run *run, struct probe_result *res,
                    void *arg)
{
    struct done_ctx *d = arg;

    assert_ptr_equal(run, d->want);
    *d->res = *res;                 /* takes its extra events */
    d->done = 1;
}

/* One run of target @name, driven as loop.c drives it; returns the run's
 * start time. */
static int64_t run_target(const char *name, struct probe_result *res)
{
    const struct agent_target *t = target(name);
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    struct done_ctx d = { 0 };
    int64_t deadline = util_mono_us() + 10000000, started;
    void *state = NULL;

    assert_non_null(multi);
    memset(res, 0xa5, sizeof(*res));    /* finish must write all of it */
    assert_int_equal(probe_kube_ops.start(t, &state, multi, &run), 0);
    assert_non_null(run);
    assert_ptr_equal(run->ops, &probe_kube_ops);
    started = run->start_unix_ms;
    assert_true(started > 0);
    d.want = run;
    d.res = res;
    while (!d.done) {
        CURLMsg *m;
        int still, q;

        if (probe_kube_ops.poll_timeout_ms() == 0)
            probe_kube_ops.poll_process(NULL, 0, on_done, &d);
        assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
        while (!d.done && (m = curl_multi_info_read(multi, &q)) != NULL) {
            char *priv = NULL;

            if (m->msg != CURLMSG_DONE)
                continue;
            assert_int_equal(curl_easy_getinfo(m->easy_handle,
                                               CURLINFO_PRIVATE, &priv),
                             CURLE_OK);
            assert_ptr_equal(priv, run);
            run->ops->finish(run, multi, m->easy_handle, m->data.result,
                             res);
            d.done = 1;
        }
        if (!d.done)
            assert_int_equal(curl_multi_poll(multi, NULL, 0, 50, NULL),
                             CURLM_OK);
        assert_true(util_mono_us() < deadline);
    }
    assert_null(state);                 /* the type keeps no state */
    assert_int_equal(probe_kube_ops.poll_timeout_ms(), -1);
    curl_multi_cleanup(multi);
    return started;
}

/* A failed run: not ok, no samples, and an error naming @want. */
static void assert_failed(const struct probe_result *res, int status,
                          const char *want)
{
    print_message("  error: %s\n", res->error);
    assert_false(res->ok);
    assert_int_equal(res->status, status);
    assert_int_equal(res->n_extra, 0);
    assert_null(res->extra);
    if (!strstr(res->error, want))
        fail_msg("error \"%s\" does not name \"%s\"", res->error, want);
    for (const char *p = res->error; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

/* Extra event @i of @res is the sample @name = @value of target @tgt at
 * @unix_ms, with labels namespace=@ns, deployment=@dep (or none if @ns is
 * NULL), and packs as protobuf. */
static void assert_sample(const struct probe_result *res, size_t i,
                          const char *tgt, int64_t unix_ms, const char *name,
                          double value, const char *ns, const char *dep)
{
    const Sextant__V1__Event *ev;
    const Sextant__V1__MetricSample *ms;
    uint8_t *buf = NULL;
    size_t len = 0;

    assert_true(i < res->n_extra);
    ev = res->extra[i];
    assert_int_equal(ev->kind_case, SEXTANT__V1__EVENT__KIND_METRIC);
    assert_int_equal(ev->unix_ms, unix_ms);
    ms = ev->metric;
    assert_string_equal(ms->name, name);
    assert_string_equal(ms->target, tgt);
    if (fabs(ms->value - value) > 1e-9)
        fail_msg("%s = %.17g, want %.17g", name, ms->value, value);
    if (!ns) {
        assert_int_equal(ms->n_labels, 0);
    } else {
        assert_int_equal(ms->n_labels, 2);
        assert_string_equal(ms->labels[0]->name, "namespace");
        assert_string_equal(ms->labels[0]->value, ns);
        assert_string_equal(ms->labels[1]->name, "deployment");
        assert_string_equal(ms->labels[1]->value, dep);
    }
    assert_int_equal(wire_event_pack(ev, &buf, &len), 0);
    assert_true(len > 0);
    free(buf);
}

static int server_log_has(const char *s)
{
    char path[128], *log = NULL;
    size_t len;
    int found;

    snprintf(path, sizeof(path), "%s/server.log", dir);
    if (util_read_file(path, 1u << 20, &log, &len) < 0)
        return 0;
    found = strstr(log, s) != NULL;
    free(log);
    return found;
}

static void test_node_list_gives_the_ready_fraction(void **state)
{
    struct probe_result res;
    int64_t t0;

    (void)state;
    t0 = run_target("nodes", &res);
    assert_true(res.ok);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.error, "");
    assert_true(res.t.tls_us > 0);
    assert_true(res.t.total_us >= res.t.tls_us);
    assert_int_equal(res.n_extra, 3);
    assert_sample(&res, 0, "nodes", t0, "kube_nodes_ready", 2, NULL, NULL);
    assert_sample(&res, 1, "nodes", t0, "kube_nodes_total", 3, NULL, NULL);
    assert_sample(&res, 2, "nodes", t0, "kube_nodes_ready_ratio", 2.0 / 3,
                  NULL, NULL);
    probe_result_clear(&res);
    /* Served from the watch cache, not a quorum read of etcd. */
    assert_true(server_log_has("GET /api/v1/nodes resourceVersion=0 -> 200"));
}

static void test_unknown_ready_counts_as_not_ready(void **state)
{
    struct probe_result res;
    int64_t t0;

    (void)state;
    /* Zone c lost: two nodes Unknown; a cordoned node is still Ready. The
     * base URL has a path prefix, kept in the request. */
    t0 = run_target("zonelost", &res);
    assert_true(res.ok);
    assert_sample(&res, 0, "zonelost", t0, "kube_nodes_ready", 3, NULL,
                  NULL);
    assert_sample(&res, 1, "zonelost", t0, "kube_nodes_total", 5, NULL,
                  NULL);
    assert_sample(&res, 2, "zonelost", t0, "kube_nodes_ready_ratio", 0.6,
                  NULL, NULL);
    probe_result_clear(&res);
    assert_true(server_log_has("GET /zonelost/api/v1/nodes "));
}

static void test_deployment_gives_ready_and_desired_replicas(void **state)
{
    struct probe_result res;
    int64_t t0;

    (void)state;
    t0 = run_target("web", &res);       /* by host name: SAN localhost */
    assert_true(res.ok);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.n_extra, 3);
    assert_sample(&res, 0, "web", t0, "kube_deployment_ready_replicas", 2,
                  "shop", "web");
    assert_sample(&res, 1, "web", t0, "kube_deployment_desired_replicas", 3,
                  "shop", "web");
    assert_sample(&res, 2, "web", t0, "kube_deployment_ready_ratio",
                  2.0 / 3, "shop", "web");
    probe_result_clear(&res);
    assert_true(server_log_has("GET /apis/apps/v1/namespaces/shop/"
                               "deployments/web resourceVersion=0 -> 200"));
}

static void test_omitted_ready_replicas_count_as_zero(void **state)
{
    struct probe_result res;
    int64_t t0;

    (void)state;
    t0 = run_target("checkout", &res);
    assert_true(res.ok);
    assert_sample(&res, 0, "checkout", t0, "kube_deployment_ready_replicas",
                  0, "shop", "checkout");
    assert_sample(&res, 1, "checkout", t0,
                  "kube_deployment_desired_replicas", 2, "shop", "checkout");
    assert_sample(&res, 2, "checkout", t0, "kube_deployment_ready_ratio", 0,
                  "shop", "checkout");
    probe_result_clear(&res);
}

static void test_wrong_token_fails_naming_401(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("wrong-token", &res);
    assert_failed(&res, 401, "status 401 Unauthorized");
    assert_non_null(strstr(res.error, "wrong-token"));  /* the file */
}

static void test_forbidden_fails_with_the_rbac_message(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("coredns", &res);
    assert_failed(&res, 403, "status 403 Forbidden, check the service "
                  "account's RBAC: deployments.apps \"coredns\" is forbidden:"
                  " User \"system:serviceaccount:sextant:sextant-agent\" "
                  "cannot get resource");
}

static void test_missing_deployment_fails_naming_404(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("gone", &res);
    assert_failed(&res, 404, "status 404: the server could not find");
}

static void test_token_is_read_at_every_run(void **state)
{
    struct probe_result res;

    (void)state;
    write_file("rotating-token", "expired-token-1234\n");
    run_target("rotating", &res);
    assert_failed(&res, 401, "401");
    write_file("rotating-token", TOKEN "\n");   /* kubelet rotated it */
    run_target("rotating", &res);
    assert_true(res.ok);
    assert_int_equal(res.n_extra, 3);
    probe_result_clear(&res);
}

static void test_unknown_ca_fails_tls(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("wrong-ca", &res);
    assert_failed(&res, 0, "certificate");
    assert_non_null(strstr(res.error, "other.crt"));
    /* Failed before a request: the server never saw it. */
    assert_int_equal(res.t.first_byte_us, 0);
}

static void test_missing_ca_file_fails_without_a_request(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("no-ca", &res);
    assert_failed(&res, 0, "ca_file ");
    assert_non_null(strstr(res.error, "no-such-ca.crt: No such file or "
                                      "directory"));
    assert_int_equal(res.t.total_us, 0);
}

static void test_missing_token_file_fails_without_a_request(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("no-token", &res);
    assert_failed(&res, 0, "no-such-token: No such file or directory");
    assert_non_null(strstr(res.error, "token_file "));
}

static void test_unusable_token_files_fail(void **state)
{
    char big[KUBE_MAX_TOKEN + 2];
    struct probe_result res;

    (void)state;
    write_file("bad-token", "\n \n");
    run_target("bad-token", &res);
    assert_failed(&res, 0, "bad-token: empty");
    /* A newline inside would smuggle a header into the request. */
    write_file("bad-token", TOKEN "\r\nX-Injected: 1\n");
    run_target("bad-token", &res);
    assert_failed(&res, 0, "not a bearer token");
    assert_null(strstr(res.error, TOKEN));      /* never the secret */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file("bad-token", big);
    run_target("bad-token", &res);
    assert_failed(&res, 0, "over 16384 bytes");
}

static void test_truncated_json_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("truncated", &res);
    assert_failed(&res, 200, "invalid JSON: truncated after ");
}

static void test_invalid_json_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("garbled", &res);        /* a trailing comma: not JSON */
    assert_failed(&res, 200, "invalid JSON at byte 124: unexpected "
                  "character");             /* the '}' after the comma */
}

static void test_data_after_the_json_object_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("trailing", &res);
    assert_failed(&res, 200, "invalid JSON at byte 31: data after the JSON "
                  "value");
}

static void test_json_nested_too_deep_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("deep", &res);           /* 100 levels, the cap is 64 */
    assert_failed(&res, 200, ": nesting too deep");
}

static void test_json_of_the_wrong_kind_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("wrongkind", &res);
    assert_failed(&res, 200, "response is not a NodeList (kind \"PodList\")");
}

static void test_empty_node_list_is_no_capacity(void **state)
{
    struct probe_result res;
    int64_t t0;

    (void)state;
    t0 = run_target("empty", &res);
    assert_true(res.ok);
    assert_sample(&res, 0, "empty", t0, "kube_nodes_ready", 0, NULL, NULL);
    assert_sample(&res, 1, "empty", t0, "kube_nodes_total", 0, NULL, NULL);
    assert_sample(&res, 2, "empty", t0, "kube_nodes_ready_ratio", 0, NULL,
                  NULL);
    probe_result_clear(&res);
}

static void test_body_over_the_cap_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("big", &res);
    assert_failed(&res, 200, "response over the 8192 KiB cap");
}

static void test_refused_connection_fails(void **state)
{
    struct probe_result res;

    (void)state;
    run_target("closed", &res);
    assert_failed(&res, 0, "onnect");
}

static void test_cancel_frees_runs_in_either_phase(void **state)
{
    CURLM *multi = curl_multi_init();
    struct probe_run *early = NULL, *live = NULL;
    void *st = NULL;
    int still = 1;

    (void)state;
    assert_non_null(multi);
    assert_int_equal(probe_kube_ops.start(target("no-token"), &st, multi,
                                          &early), 0);
    assert_int_equal(probe_kube_ops.poll_timeout_ms(), 0);
    assert_int_equal(probe_kube_ops.start(target("nodes"), &st, multi,
                                          &live), 0);
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    assert_int_equal(still, 1);
    probe_kube_ops.cancel(early, multi);
    assert_int_equal(probe_kube_ops.poll_timeout_ms(), -1);
    probe_kube_ops.cancel(live, multi);
    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    assert_int_equal(still, 0);         /* nothing left in the multi */
    curl_multi_cleanup(multi);
}

/* -- config -- */

static char conf_path[128];

static void conf_setup_path(void)
{
    snprintf(conf_path, sizeof(conf_path), "%s/conf.yaml", dir);
}

static int load_conf(const char *targets, struct agent_config *c,
                     char *err, size_t err_len)
{
    char *yaml = NULL;
    FILE *f;

    conf_setup_path();
    assert_true(asprintf(&yaml, HEAD "targets:\n%s", targets) > 0);
    f = fopen(conf_path, "w");
    assert_non_null(f);
    assert_true(fputs(yaml, f) >= 0);
    assert_int_equal(fclose(f), 0);
    free(yaml);
    return agent_config_load(conf_path, c, err, err_len);
}

/* @targets fails to load with exactly "PATH:" + @want. */
static void expect_error(const char *targets, const char *want)
{
    struct agent_config c = { 0 };
    char err[512], full[512];

    assert_int_equal(load_conf(targets, &c, err, sizeof(err)), -EINVAL);
    snprintf(full, sizeof(full), "%s:%s", conf_path, want);
    assert_string_equal(err, full);
    assert_null(c.targets);
}

static void test_config_needs_a_known_resource(void **state)
{
    (void)state;
    expect_error("  - name: k\n"
                 "    type: kube\n",
                 "10: targets[0].resource: required key is missing");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: pods\n",
                 "12: targets[0].resource: must be nodes or deployment, got "
                 "\"pods\"");
}

static void test_config_deployment_needs_namespace_and_name(void **state)
{
    (void)state;
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: deployment\n"
                 "    deployment: web\n",
                 "10: targets[0].namespace: required key is missing");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: deployment\n"
                 "    namespace: shop\n",
                 "10: targets[0].deployment: required key is missing");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: deployment\n"
                 "    namespace: Shop_1\n"
                 "    deployment: web\n",
                 "13: targets[0].namespace: not a Kubernetes namespace name "
                 "(lower-case letters, digits and '-', at most 63)");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: deployment\n"
                 "    namespace: shop\n"
                 "    deployment: ../nodes\n",
                 "14: targets[0].deployment: not a Kubernetes object name "
                 "(lower-case letters, digits, '-' and '.', at most 253)");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: nodes\n"
                 "    namespace: shop\n",
                 "13: targets[0].namespace: only for resource: deployment "
                 "(nodes are not namespaced and are all read)");
}

static void test_config_refuses_plain_http_and_odd_keys(void **state)
{
    (void)state;
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: nodes\n"
                 "    url: http://10.0.0.1:6443\n",
                 "13: targets[0].url: must be https: the service account "
                 "token must not travel in clear text");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: nodes\n"
                 "    url: https://10.0.0.1:6443/?x=1\n",
                 "13: targets[0].url: must not have a query or a fragment");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: nodes\n"
                 "    token_file: ''\n",
                 "13: targets[0].token_file: must not be empty");
    expect_error("  - name: k\n"
                 "    type: kube\n"
                 "    resource: nodes\n"
                 "    expect_status: [200]\n",
                 "13: targets[0].expect_status: unknown key");
}

static void test_config_defaults_to_the_in_cluster_service_account(
    void **state)
{
    struct agent_config c = { 0 };
    struct probe_result res;
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    struct done_ctx d = { 0 };
    char err[512];
    void *st = NULL;

    (void)state;
    assert_int_equal(load_conf("  - name: k\n"
                               "    type: kube\n"
                               "    resource: nodes\n", &c, err,
                               sizeof(err)), 0);
    assert_int_equal(c.targets[0].type, PROBE_KUBE);
    assert_string_equal(c.targets[0].url, "https://kubernetes.default.svc");
    assert_non_null(c.targets[0].opts);
    /* Outside a pod the default token is missing, and the error says
     * which file was tried. */
    if (access(KUBE_DEFAULT_TOKEN_FILE, F_OK) != 0) {
        assert_int_equal(probe_kube_ops.start(&c.targets[0], &st, multi,
                                              &run), 0);
        assert_int_equal(probe_kube_ops.poll_timeout_ms(), 0);
        d.want = run;
        d.res = &res;
        probe_kube_ops.poll_process(NULL, 0, on_done, &d);
        assert_true(d.done);
        assert_failed(&res, 0, "token_file " KUBE_DEFAULT_TOKEN_FILE ": ");
    }
    curl_multi_cleanup(multi);
    agent_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_list_gives_the_ready_fraction),
        cmocka_unit_test(test_unknown_ready_counts_as_not_ready),
        cmocka_unit_test(test_deployment_gives_ready_and_desired_replicas),
        cmocka_unit_test(test_omitted_ready_replicas_count_as_zero),
        cmocka_unit_test(test_wrong_token_fails_naming_401),
        cmocka_unit_test(test_forbidden_fails_with_the_rbac_message),
        cmocka_unit_test(test_missing_deployment_fails_naming_404),
        cmocka_unit_test(test_token_is_read_at_every_run),
        cmocka_unit_test(test_unknown_ca_fails_tls),
        cmocka_unit_test(test_missing_ca_file_fails_without_a_request),
        cmocka_unit_test(test_missing_token_file_fails_without_a_request),
        cmocka_unit_test(test_unusable_token_files_fail),
        cmocka_unit_test(test_truncated_json_fails),
        cmocka_unit_test(test_invalid_json_fails),
        cmocka_unit_test(test_data_after_the_json_object_fails),
        cmocka_unit_test(test_json_nested_too_deep_fails),
        cmocka_unit_test(test_json_of_the_wrong_kind_fails),
        cmocka_unit_test(test_empty_node_list_is_no_capacity),
        cmocka_unit_test(test_body_over_the_cap_fails),
        cmocka_unit_test(test_refused_connection_fails),
        cmocka_unit_test(test_cancel_frees_runs_in_either_phase),
        cmocka_unit_test(test_config_needs_a_known_resource),
        cmocka_unit_test(test_config_deployment_needs_namespace_and_name),
        cmocka_unit_test(test_config_refuses_plain_http_and_odd_keys),
        cmocka_unit_test(
            test_config_defaults_to_the_in_cluster_service_account),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
