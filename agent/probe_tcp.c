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
#include "probe_curl.h"
#include "util.h"
#include "yconf.h"

/* The options are one string, "http://host:port/", built at load: only
 * its host and port are used, never its scheme. free_opts is free(). */

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
    char *url = NULL, *addr = NULL, host[PROBE_TCP_MAX_HOST + 1];
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
    if (asprintf(&url, "http://%s%s%s:%u/", v6 ? "[" : "", host,
                 v6 ? "]" : "", (unsigned)port) < 0) {
        url = NULL;
        rc = -ENOMEM;
        goto out;
    }
    /* libcurl must agree, or every run would fail the same way. */
    u = curl_url();
    if (!u) {
        rc = -ENOMEM;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rc = yconf_fail(yc, yconf_find(yc, m, "address"), ctx, "address",
                        "libcurl does not accept \"%s\"", addr);
        goto out;
    }
    t->opts = url;
    url = NULL;
    rc = 0;
out:
    curl_url_cleanup(u);
    free(url);
    free(addr);
    return rc;
}

/* CONNECT_ONLY makes curl stop, done, once the connection is up, without
 * sending anything; the common options give it a fresh connection and no
 * DNS cache, as for HTTP, so every run measures the lookup and the
 * handshake. */
static int tcp_setup(struct probe_curl_run *cr)
{
    const char *url = cr->t->opts;
    CURL *e = cr->easy;
    int bad = 0;

    if (!url)
        return -EINVAL;             /* config.c always sets it */
    bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK;
    return bad ? -EINVAL : 0;
}

/* Only http: the URL is a carrier for host and port, never fetched. */
static const struct probe_curl_type tcp_curl = {
    .ops = &probe_tcp_ops,
    .run_size = sizeof(struct probe_curl_run),  /* nothing of its own */
    .protocols = "http",
    .fresh = 1,
    .setup = tcp_setup,
};

static int tcp_start(const struct agent_target *t, void **state,
                     CURLM *multi, struct probe_run **out)
{
    (void)state;                    /* each run stands alone */
    return probe_curl_start(&tcp_curl, t, multi, out);
}

/* Releasing the easy handle closes the connection CONNECT_ONLY kept. */
static void tcp_finish(struct probe_run *run, CURLM *multi, CURL *easy,
                       CURLcode code, struct probe_result *res)
{
    struct probe_curl_run *cr = (struct probe_curl_run *)run;

    (void)easy;                     /* one transfer per run: cr->easy */
    probe_curl_result(cr, res);
    res->status = 0;                /* nothing was asked */
    res->t.tls_us = 0;              /* connect only: nothing after connect */
    res->t.first_byte_us = 0;
    if (code == CURLE_OK) {
        res->ok = 1;
    } else {
        snprintf(res->error, sizeof(res->error), "%s",
                 probe_curl_errtext(cr->errbuf, code));
        probe_printable(res->error);
    }
    probe_curl_release(cr, multi);
}

static const char *const tcp_keys[] = { "address", NULL };

const struct probe_ops probe_tcp_ops = {
    .type = PROBE_TCP,
    .name = "tcp",
    .keys = tcp_keys,
    .parse = tcp_parse,
    .free_opts = free,
    .start = tcp_start,
    .finish = tcp_finish,
    .cancel = probe_curl_cancel,
};
