/* test_agent_probe_curl.c -- probe_curl_start(), the one way a curl probe
 * starts, through every way out of it: a type whose setup fails after it
 * allocated into the run, a common option libcurl refuses, a multi handle
 * that refuses the transfer, a run the type ends early, and the real tcp
 * and metric types given a target they cannot run. Each failure must come
 * back as an error at once, leave nothing in the multi handle and free
 * the type's part exactly once (ASan checks the rest). A good start runs
 * a real CONNECT_ONLY transfer against a loopback socket, with the
 * environment's proxy pointing nowhere, and the common options in force. */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "probe.h"
#include "probe_curl.h"
#include "probe_metric.h"
#include "probe_tcp.h"

/* How the test type's setup behaves this time. */
enum fake_mode { FAKE_OK, FAKE_FAIL, FAKE_EARLY };

static enum fake_mode fake_mode;
static unsigned fake_setups;        /* setup calls */
static unsigned fake_frees;         /* free_run calls */
static char fake_url[64];

/* A run with a part of its own, so a leak of it shows under ASan. */
struct fake_run {
    struct probe_curl_run cr;
    char *buf;                      /* owned, set by setup */
};

static int fake_setup(struct probe_curl_run *cr)
{
    struct fake_run *r = (struct fake_run *)cr;

    fake_setups++;
    r->buf = strdup("allocated by setup");
    if (!r->buf)
        return -ENOMEM;
    if (fake_mode == FAKE_FAIL)
        return -EPROTO;             /* any -errno: start must return it */
    if (fake_mode == FAKE_EARLY) {
        snprintf(cr->errbuf, sizeof(cr->errbuf), "ended early");
        return PROBE_CURL_EARLY;
    }
    if (curl_easy_setopt(cr->easy, CURLOPT_URL, fake_url) != CURLE_OK ||
        curl_easy_setopt(cr->easy, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK)
        return -EINVAL;
    return 0;
}

static void fake_free_run(struct probe_curl_run *cr)
{
    fake_frees++;
    free(((struct fake_run *)cr)->buf);
}

static const struct probe_ops fake_ops = { .name = "fake" };

static struct probe_curl_type fake_type = {
    .ops = &fake_ops,
    .run_size = sizeof(struct fake_run),
    .protocols = "http",
    .fresh = 1,
    .setup = fake_setup,
    .free_run = fake_free_run,
};

static struct agent_target fake_target = {
    .name = (char *)"fake",
    .timeout_ms = 30000,
};

static int reset(void **state)
{
    (void)state;
    fake_mode = FAKE_OK;
    fake_setups = 0;
    fake_frees = 0;
    fake_type.protocols = "http";
    return 0;
}

/* The proxies a test pointed nowhere go, even when wait_done() failed
 * before the test body could unset them. */
static int unset_proxies(void **state)
{
    (void)state;
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    return 0;
}

/* Nothing is left running in @multi. */
static void assert_multi_empty(CURLM *multi)
{
    int still = -1;

    assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
    assert_int_equal(still, 0);
}

static void test_setup_failure_returns_its_error_and_frees_once(void **state)
{
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;

    (void)state;
    assert_non_null(multi);
    fake_mode = FAKE_FAIL;
    assert_int_equal(probe_curl_start(&fake_type, &fake_target, multi, &run),
                     -EPROTO);
    assert_null(run);
    assert_int_equal(fake_setups, 1);
    assert_int_equal(fake_frees, 1);
    assert_multi_empty(multi);
    curl_multi_cleanup(multi);
}

static void test_refused_common_option_fails_before_setup(void **state)
{
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;

    (void)state;
    assert_non_null(multi);
    fake_type.protocols = "no-such-protocol";   /* libcurl refuses it */
    assert_int_equal(probe_curl_start(&fake_type, &fake_target, multi, &run),
                     -EINVAL);
    assert_null(run);
    assert_int_equal(fake_setups, 0);
    assert_int_equal(fake_frees, 1);
    assert_multi_empty(multi);
    curl_multi_cleanup(multi);
}

static void test_multi_refusing_the_transfer_is_eio(void **state)
{
    struct probe_run *run = NULL;

    (void)state;
    /* No multi handle at all: curl_multi_add_handle() says bad handle. */
    assert_int_equal(probe_curl_start(&fake_type, &fake_target, NULL, &run),
                     -EIO);
    assert_null(run);
    assert_int_equal(fake_setups, 1);
    assert_int_equal(fake_frees, 1);
}

static void test_early_end_gives_a_run_outside_the_multi(void **state)
{
    CURLM *multi = curl_multi_init();
    struct probe_curl_run *cr;
    struct probe_run *run = NULL;

    (void)state;
    assert_non_null(multi);
    fake_mode = FAKE_EARLY;
    assert_int_equal(probe_curl_start(&fake_type, &fake_target, multi, &run),
                     PROBE_CURL_EARLY);
    assert_non_null(run);
    cr = (struct probe_curl_run *)run;
    assert_ptr_equal(run->ops, &fake_ops);
    assert_true(run->start_unix_ms > 0);
    assert_null(cr->easy);
    assert_string_equal(cr->errbuf, "ended early");
    assert_multi_empty(multi);
    assert_int_equal(fake_frees, 0);
    probe_curl_release(cr, NULL);
    assert_int_equal(fake_frees, 1);
    curl_multi_cleanup(multi);
}

/* The real types' setup refuses a target without its options (config.c
 * never makes one): an error at once, nothing left behind. */
static void test_real_types_fail_to_start_without_options(void **state)
{
    const struct probe_ops *types[] = { &probe_tcp_ops, &probe_metric_ops };
    struct agent_target t = {
        .name = (char *)"no-opts",
        .url = (char *)"http://127.0.0.1:1/metrics",
        .timeout_ms = 30000,
    };
    CURLM *multi = curl_multi_init();

    (void)state;
    assert_non_null(multi);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct probe_run *run = NULL;

        t.type = types[i]->type;
        assert_int_equal(types[i]->start(&t, NULL, multi, &run), -EINVAL);
        assert_null(run);
        assert_multi_empty(multi);
    }
    curl_multi_cleanup(multi);
}

/* A listening socket on 127.0.0.1; *port is its port. The kernel
 * completes handshakes into the backlog, so nobody needs to accept. */
static int listen_loopback(unsigned *port)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sl) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

/* What curl said of the one transfer that finished. */
struct done_msg {
    CURL *easy;
    CURLcode code;
};

/* wait_done()'s own deadline: past the transfer's timeout (30 s), which
 * should end it first, so that a transfer curl never ends fails the test
 * instead of hanging it. */
#define WAIT_DONE_MS 90000

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drives @multi until a transfer is done, for up to WAIT_DONE_MS. */
static struct done_msg wait_done(CURLM *multi)
{
    struct done_msg d = { NULL, CURLE_OK };
    int64_t deadline = mono_ms() + WAIT_DONE_MS;
    int still, q;

    for (;;) {
        CURLMsg *m;

        if (mono_ms() > deadline)
            fail_msg("no transfer done after %d ms", WAIT_DONE_MS);

        assert_int_equal(curl_multi_perform(multi, &still), CURLM_OK);
        do {
            m = curl_multi_info_read(multi, &q);
        } while (m && m->msg != CURLMSG_DONE);
        if (m) {
            d.easy = m->easy_handle;
            d.code = m->data.result;
            return d;
        }
        assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL),
                         CURLM_OK);
    }
}

/* The proxy in the environment is a closed port: through it the transfer
 * would fail, so success shows the probe went direct. PRIVATE is the run,
 * as the loop needs it. */
static void test_started_run_connects_direct_with_private_set(void **state)
{
    CURLM *multi = curl_multi_init();
    struct probe_run *run = NULL;
    struct probe_curl_run *cr;
    struct probe_result res;
    struct done_msg m;
    unsigned port = 0;
    int fd = listen_loopback(&port);
    char *priv = NULL;

    (void)state;
    assert_non_null(multi);
    assert_true(fd >= 0);
    snprintf(fake_url, sizeof(fake_url), "http://127.0.0.1:%u/", port);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    assert_int_equal(probe_curl_start(&fake_type, &fake_target, multi, &run),
                     0);
    m = wait_done(multi);
    /* Before any assert: a failing one must not leave them set. */
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    cr = (struct probe_curl_run *)run;
    assert_int_equal(curl_easy_getinfo(m.easy, CURLINFO_PRIVATE, &priv),
                     CURLE_OK);
    assert_ptr_equal(priv, (char *)run);
    if (m.code != CURLE_OK)
        fail_msg("transfer failed: %s",
                 probe_curl_errtext(cr->errbuf, m.code));
    probe_curl_result(cr, &res);
    assert_true(res.t.connect_us > 0);
    probe_curl_release(cr, multi);
    assert_int_equal(fake_frees, 1);
    assert_multi_empty(multi);
    curl_multi_cleanup(multi);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(
            test_setup_failure_returns_its_error_and_frees_once, reset),
        cmocka_unit_test_setup(
            test_refused_common_option_fails_before_setup, reset),
        cmocka_unit_test_setup(test_multi_refusing_the_transfer_is_eio,
                               reset),
        cmocka_unit_test_setup(test_early_end_gives_a_run_outside_the_multi,
                               reset),
        cmocka_unit_test_setup(test_real_types_fail_to_start_without_options,
                               reset),
        cmocka_unit_test_setup_teardown(
            test_started_run_connects_direct_with_private_set, reset,
            unset_proxies),
    };

    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
