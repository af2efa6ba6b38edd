/* probe_tcp.c -- the TCP connect probe: libcurl with CURLOPT_CONNECT_ONLY,
 * so that name resolution, happy eyeballs and the timeout work exactly as
 * they do for the HTTP probe, in the same multi handle, with no socket
 * code of our own. Does not send or read a byte, and does not speak TLS. */
#include "probe_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"
#include "yconf.h"

struct tcp_opts {
    char *url;                      /* "http://host:port/": only its host
                                       and port are used, never its scheme */
};

struct tcp_run {
    struct probe_run base;          /* first: the loop only sees this */
    const struct agent_target *t;   /* borrowed; outlives the run */
    CURL *easy;                     /* owned; in the loop's multi */
    char errbuf[CURL_ERROR_SIZE];
};

static void tcp_free_opts(void *opts)
{
    struct tcp_opts *o = opts;

    if (!o)
        return;
    free(o->url);
    free(o);
}

/* A DNS name or an IPv4 address: the characters a resolver accepts, so
 * nothing odd (a '/', a '@') can change the meaning of the URL we build. */
static int tcp_host_ok(const char *h)
{
    size_t len = strlen(h);

    if (len == 0 || len > PROBE_TCP_MAX_HOST || h[0] == '-' || h[0] == '.')
        return 0;
    for (; *h; h++) {
        char c = *h;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

static int tcp_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     struct agent_target *t)
{
    struct tcp_opts *o = NULL;
    char *addr = NULL, host[PROBE_TCP_MAX_HOST + 1];
    struct in6_addr a6;
    uint16_t port;
    CURLU *u = NULL;
    int v6, rc;

    rc = yconf_str(yc, m, ctx, "address", 1, &addr);
    if (rc)
        return rc;
    v6 = addr[0] == '[';
    if (util_parse_hostport(addr, host, sizeof(host), &port) < 0 ||
        port == 0 ||
        (v6 ? inet_pton(AF_INET6, host, &a6) != 1 : !tcp_host_ok(host))) {
        rc = yconf_fail(yc, yconf_find(yc, m, "address"), ctx, "address",
                        "expected host:port (a name, an IPv4 address or "
                        "[IPv6], port 1-65535), got \"%s\"", addr);
        goto out;
    }
    o = calloc(1, sizeof(*o));
    if (!o || asprintf(&o->url, "http://%s%s%s:%u/", v6 ? "[" : "", host,
                       v6 ? "]" : "", (unsigned)port) < 0) {
        if (o)
            o->url = NULL;
        rc = -ENOMEM;
        goto out;
    }
    /* libcurl must agree, or every run would fail the same way. */
    u = curl_url();
    if (!u) {
        rc = -ENOMEM;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, o->url, 0) != CURLUE_OK) {
        rc = yconf_fail(yc, yconf_find(yc, m, "address"), ctx, "address",
                        "libcurl does not accept \"%s\"", addr);
        goto out;
    }
    t->opts = o;
    o = NULL;
    rc = 0;
out:
    curl_url_cleanup(u);
    tcp_free_opts(o);
    free(addr);
    return rc;
}

/* A fresh connection and no DNS cache, as for HTTP: every run measures
 * the lookup and the handshake. CONNECT_ONLY makes curl stop, done, once
 * the connection is up, without sending anything. */
static int tcp_setup(struct tcp_run *r)
{
    const struct tcp_opts *o = r->t->opts;
    CURL *e = r->easy;
    int bad = 0;

    bad |= curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, &r->base) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                            (long)r->t->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK;
    /* Never through a proxy from http_proxy / ALL_PROXY: that would time
     * the proxy, not the target. "" turns the environment off. */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
    return bad ? -EINVAL : 0;
}

static int tcp_start(const struct agent_target *t, void **state,
                     CURLM *multi, struct probe_run **out)
{
    struct tcp_run *r;
    int rc;

    (void)state;                    /* each run stands alone */
    if (!t->opts)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base.ops = &probe_tcp_ops;
    r->base.start_unix_ms = util_now_ms();
    r->t = t;
    r->easy = curl_easy_init();
    if (!r->easy) {
        rc = -ENOMEM;
        goto err;
    }
    rc = tcp_setup(r);
    if (rc < 0)
        goto err;
    if (curl_multi_add_handle(multi, r->easy) != CURLM_OK) {
        rc = -EIO;
        goto err;
    }
    *out = &r->base;
    return 0;
err:
    if (r->easy)
        curl_easy_cleanup(r->easy);
    free(r);
    return rc;
}

/* Cleaning up the easy handle closes the connection CONNECT_ONLY kept. */
static void tcp_release(struct tcp_run *r, CURLM *multi)
{
    curl_multi_remove_handle(multi, r->easy);
    curl_easy_cleanup(r->easy);
    free(r);
}

static void tcp_finish(struct probe_run *run, CURLM *multi, CURL *easy,
                       CURLcode code, struct probe_result *res)
{
    struct tcp_run *r = (struct tcp_run *)run;

    (void)easy;                     /* one transfer per run: r->easy */
    memset(res, 0, sizeof(*res));
    probe_curl_timings(r->easy, &res->t);
    res->t.tls_us = 0;              /* connect only: nothing after connect */
    res->t.first_byte_us = 0;
    if (code == CURLE_OK) {
        res->ok = 1;
    } else {
        snprintf(res->error, sizeof(res->error), "%s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        probe_printable(res->error);
    }
    tcp_release(r, multi);
}

static void tcp_cancel(struct probe_run *run, CURLM *multi)
{
    tcp_release((struct tcp_run *)run, multi);
}

static const char *const tcp_keys[] = { "address", NULL };

const struct probe_ops probe_tcp_ops = {
    .type = PROBE_TCP,
    .name = "tcp",
    .keys = tcp_keys,
    .parse = tcp_parse,
    .free_opts = tcp_free_opts,
    .start = tcp_start,
    .finish = tcp_finish,
    .cancel = tcp_cancel,
};
