/* probe_curl.c -- the options every transfer of the agent sets, TLS
 * verification, and the start, release and first steps of finishing a
 * curl probe's run. Sets no option only one type needs and judges no
 * result: that is each probe_<type>.c's, and shipper.c's. */
#include "probe_curl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

/* Stands in when a transfer has no use for the body (the TCP probe): the
 * default would write it to the agent's stdout. */
static size_t probe_curl_discard(char *data, size_t size, size_t nmemb,
                                 void *arg)
{
    (void)data;
    (void)arg;
    return size * nmemb;
}

/* Where the copies used to differ, this is what holds for all, and why:
 * - NOSIGNAL: the agent has threads (admin, health) and its own signal
 *   handlers; libcurl must not raise SIGALRM for DNS timeouts.
 * - the user agent: every request says who sent it (the TCP probe sends
 *   nothing, so it costs nothing there).
 * - redirects are limited to the same protocols as the request: a type
 *   that follows them (http with follow_redirects) must not be led to
 *   file:// or to plain http from an https-only type.
 * - the environment's proxy (http_proxy, ALL_PROXY) is off for probes:
 *   through it a probe would time the proxy, not the target, and the
 *   kube probe's token would go to it. Only the TCP probe turned it off
 *   before; the shipper keeps it, as an agent may need it to reach a
 *   collector in another region.
 * - fresh: only for types that measure the path (http, tcp). */
int probe_curl_common(CURL *e, const struct probe_curl_common *c)
{
    curl_write_callback wr = c->write ? c->write : probe_curl_discard;
    int bad = 0;

    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, c->priv) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->protocols)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, c->protocols)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, PROBE_CURL_USER_AGENT)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wr) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, c->write_arg) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
    if (!c->env_proxy)
        bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    if (c->fresh) {
        bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L)
               != CURLE_OK;
    }
    return bad ? -EINVAL : 0;
}

/* The HTTP probe used to keep libcurl's CA path beside its ca_file; the
 * kube probe and the shipper dropped it. Dropping it is right: ca_file is
 * documented as "instead of the system one". */
int probe_curl_tls(CURL *e, int verify, const char *ca_file)
{
    int bad = 0;

    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST,
                            verify ? PROBE_CURL_VERIFY_NAME : 0L)
           != CURLE_OK;
    if (ca_file) {
        CURLcode cc;

        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK;
        /* A TLS backend without CA-path support refuses CAPATH: it then
         * has no CA path to turn off, and ca_file alone is trusted. */
        cc = curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        bad |= cc != CURLE_OK && cc != CURLE_NOT_BUILT_IN &&
               cc != CURLE_UNKNOWN_OPTION;
    }
    return bad ? -EINVAL : 0;
}

void probe_curl_release(struct probe_curl_run *cr, CURLM *multi)
{
    if (cr->easy) {
        if (multi)
            curl_multi_remove_handle(multi, cr->easy);
        curl_easy_cleanup(cr->easy);
    }
    if (cr->ty->free_run)
        cr->ty->free_run(cr);
    free(cr);
}

void probe_curl_cancel(struct probe_run *run, CURLM *multi)
{
    probe_curl_release((struct probe_curl_run *)run, multi);
}

int probe_curl_start(const struct probe_curl_type *ty,
                     const struct agent_target *t, CURLM *multi,
                     struct probe_run **out)
{
    struct probe_curl_common c = {
        .protocols = ty->protocols,
        .timeout_ms = (long)t->timeout_ms,
        .write = ty->write,
        .fresh = ty->fresh,
    };
    struct probe_curl_run *cr;
    int rc;

    cr = calloc(1, ty->run_size);
    if (!cr)
        return -ENOMEM;
    cr->base.ops = ty->ops;
    cr->base.start_unix_ms = util_now_ms();
    cr->ty = ty;
    cr->t = t;
    cr->easy = curl_easy_init();
    if (!cr->easy) {
        rc = -ENOMEM;
        goto err;
    }
    c.errbuf = cr->errbuf;
    c.write_arg = cr;
    c.priv = &cr->base;
    rc = probe_curl_common(cr->easy, &c);
    if (rc == 0)
        rc = ty->setup(cr);
    if (rc == PROBE_CURL_EARLY) {
        curl_easy_cleanup(cr->easy);    /* never in @multi */
        cr->easy = NULL;
        *out = &cr->base;
        return rc;
    }
    if (rc == PROBE_CURL_HOLD) {
        *out = &cr->base;
        return rc;
    }
    if (rc < 0)
        goto err;
    if (curl_multi_add_handle(multi, cr->easy) != CURLM_OK) {
        rc = -EIO;
        goto err;
    }
    *out = &cr->base;
    return 0;
err:
    probe_curl_release(cr, NULL);       /* nothing of it is in @multi */
    return rc;
}

long probe_curl_result(const struct probe_curl_run *cr,
                       struct probe_result *res)
{
    long status = 0;

    memset(res, 0, sizeof(*res));
    if (curl_easy_getinfo(cr->easy, CURLINFO_RESPONSE_CODE, &status)
        != CURLE_OK)
        status = 0;
    res->status = (int)status;
    probe_curl_timings(cr->easy, &res->t);
    return status;
}

const char *probe_curl_errtext(const char *errbuf, CURLcode code)
{
    return errbuf[0] ? errbuf : curl_easy_strerror(code);
}

static uint64_t probe_curl_us(CURL *e, CURLINFO what)
{
    curl_off_t v = 0;

    if (curl_easy_getinfo(e, what, &v) != CURLE_OK || v < 0)
        return 0;
    return (uint64_t)v;
}

void probe_curl_timings(CURL *e, struct probe_timings *t)
{
    t->dns_us = probe_curl_us(e, CURLINFO_NAMELOOKUP_TIME_T);
    t->connect_us = probe_curl_us(e, CURLINFO_CONNECT_TIME_T);
    t->tls_us = probe_curl_us(e, CURLINFO_APPCONNECT_TIME_T);
    t->first_byte_us = probe_curl_us(e, CURLINFO_STARTTRANSFER_TIME_T);
    t->total_us = probe_curl_us(e, CURLINFO_TOTAL_TIME_T);
}
