/* probe_http.c -- the HTTP(S) probe: a GET with a per-target timeout, run
 * as one easy handle in the loop's multi handle. Records status, verdict
 * and libcurl's timing breakdown. Does not follow redirects, match bodies
 * or read certificates yet (issue 4 adds those behind the same ops). */
#include "probe_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

struct http_run {
    struct probe_run base;          /* first: the loop only sees this */
    const struct agent_target *t;   /* borrowed; outlives the run */
    CURL *easy;                     /* owned; in the loop's multi */
    size_t body_len;                /* response bytes seen, none kept */
    int body_capped;                /* we stopped the transfer ourselves */
    char errbuf[CURL_ERROR_SIZE];
};

static size_t http_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_run *r = arg;
    size_t n = size * nmemb;

    (void)data;
    r->body_len += n;
    if (r->body_len > PROBE_HTTP_MAX_BODY) {
        r->body_capped = 1;
        return 0;                   /* makes curl stop: CURLE_WRITE_ERROR */
    }
    return n;
}

/* Options for one run. A fresh connection and no DNS cache on purpose:
 * the probe must measure DNS, connect and TLS every time, and follow the
 * global name as soon as the traffic manager changes its answer. */
static int http_setup(struct http_run *r)
{
    CURL *e = r->easy;
    int bad = 0;

    bad |= curl_easy_setopt(e, CURLOPT_URL, r->t->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, &r->base) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                            (long)r->t->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT,
                            "sextant-agent/" SEXTANT_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
    return bad ? -EINVAL : 0;
}

static int http_start(const struct agent_target *t, void **state,
                      CURLM *multi, struct probe_run **out)
{
    struct http_run *r;
    int rc;

    (void)state;                    /* each run stands alone */
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base.ops = &probe_http_ops;
    r->base.start_unix_ms = util_now_ms();
    r->t = t;
    r->easy = curl_easy_init();
    if (!r->easy) {
        rc = -ENOMEM;
        goto err;
    }
    rc = http_setup(r);
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

static uint64_t http_time_us(CURL *e, CURLINFO what)
{
    curl_off_t v = 0;

    if (curl_easy_getinfo(e, what, &v) != CURLE_OK || v < 0)
        return 0;
    return (uint64_t)v;
}

/* curl's message may quote what the peer sent; the collector accepts only
 * valid UTF-8, so anything outside printable ASCII becomes '?'. */
static void http_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static void http_release(struct http_run *r, CURLM *multi)
{
    curl_multi_remove_handle(multi, r->easy);
    curl_easy_cleanup(r->easy);
    free(r);
}

static void http_finish(struct probe_run *run, CURLM *multi, CURL *easy,
                        CURLcode code, struct probe_result *res)
{
    struct http_run *r = (struct http_run *)run;
    long status = 0;

    (void)easy;                     /* one transfer per run: r->easy */
    memset(res, 0, sizeof(*res));
    if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status)
        != CURLE_OK)
        status = 0;
    res->status = (int)status;
    res->t.dns_us = http_time_us(r->easy, CURLINFO_NAMELOOKUP_TIME_T);
    res->t.connect_us = http_time_us(r->easy, CURLINFO_CONNECT_TIME_T);
    res->t.tls_us = http_time_us(r->easy, CURLINFO_APPCONNECT_TIME_T);
    res->t.first_byte_us = http_time_us(r->easy,
                                        CURLINFO_STARTTRANSFER_TIME_T);
    res->t.total_us = http_time_us(r->easy, CURLINFO_TOTAL_TIME_T);
    /* Stopping a long body is our choice, not the target's failure. */
    if (code == CURLE_WRITE_ERROR && r->body_capped && status > 0)
        code = CURLE_OK;
    if (code != CURLE_OK) {
        snprintf(res->error, sizeof(res->error), "%s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        http_printable(res->error);
    }
    else if (!agent_target_status_ok(r->t, status))
        snprintf(res->error, sizeof(res->error), "status %ld not expected",
                 status);
    else
        res->ok = 1;
    http_release(r, multi);
}

static void http_cancel(struct probe_run *run, CURLM *multi)
{
    http_release((struct http_run *)run, multi);
}

static const char *const http_keys[] = { "url", "expect_status", NULL };

const struct probe_ops probe_http_ops = {
    .type = PROBE_HTTP,
    .name = "http",
    .keys = http_keys,
    .url_required = 1,
    .start = http_start,
    .finish = http_finish,
    .cancel = http_cancel,
};
