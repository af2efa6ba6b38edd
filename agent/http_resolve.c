/* http_resolve.c -- the HTTP probe's lookups through a configured resolver
 * (http_resolve.h): two queries per lookup (A and AAAA) through
 * dns_chan.c, the replies read by dns_set.c, one list of lookups in
 * flight, and the config key. Does not cache: each run asks again.
 *
 * Lifetimes, as in probe_dns.c: c-ares has no per-query cancel, so a
 * lookup freed before its queries ended abandons them, and dns_chan.c
 * lets them end without calling back into the freed lookup. */
#include "http_resolve.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <curl/curl.h>

#include "dns_chan.h"
#include "dns_set.h"
#include "util.h"
#include "yconf.h"

#define HR_QUERIES   2u             /* A, then AAAA */
#define HR_SETUP_ERR 96u            /* why no query could be sent */

struct http_resolve;

/* What a query's callback gets: its lookup and which query it is. */
struct hr_slot {
    struct http_resolve *hr;
    unsigned idx;
};

struct http_resolve {
    struct http_resolve *prev, *next;   /* hr_list, while listed */
    int listed;
    void *owner;                    /* borrowed: the caller's run */
    char *server, *host;            /* owned copies, for the error text */
    struct dns_chan_query *q[HR_QUERIES];   /* in flight; NULL once back */
    struct hr_slot slot[HR_QUERIES];
    int status[HR_QUERIES];         /* ARES_ status of each answered one */
    struct dns_set got[HR_QUERIES]; /* records of each reply, as sent */
    size_t pending;                 /* queries not called back yet */
    long long timeout_ms;
    int64_t start_us, deadline_us;  /* monotonic */
    int64_t end_us;                 /* last reply; 0 while pending */
    char setup_err[HR_SETUP_ERR];
};

static const int hr_qtypes[HR_QUERIES] = { ns_t_a, ns_t_aaaa };

/* Module state: the loop's thread only. */
static struct http_resolve *hr_list;    /* listed lookups, newest first */

static void hr_unlink(struct http_resolve *hr)
{
    if (!hr->listed)
        return;
    if (hr->prev)
        hr->prev->next = hr->next;
    else
        hr_list = hr->next;
    if (hr->next)
        hr->next->prev = hr->prev;
    hr->prev = hr->next = NULL;
    hr->listed = 0;
}

void http_resolve_free(struct http_resolve *hr)
{
    if (!hr)
        return;
    hr_unlink(hr);
    for (size_t i = 0; i < HR_QUERIES; i++) {
        dns_chan_abandon(hr->q[i]);
        dns_set_free(&hr->got[i]);
    }
    free(hr->server);
    free(hr->host);
    free(hr);
}

/* One query ended (dns_chan_answer_fn): only marks the lookup, which
 * http_resolve_next_done() hands back once none is pending. */
static void hr_on_answer(void *arg, int status, const unsigned char *abuf,
                         int alen)
{
    struct hr_slot *s = arg;
    struct http_resolve *hr = s->hr;

    hr->q[s->idx] = NULL;           /* gone when we return */
    if (status == ARES_SUCCESS)
        status = dns_set_read_reply(&hr->got[s->idx], hr_qtypes[s->idx],
                                    abuf, alen);
    hr->status[s->idx] = status;
    if (--hr->pending == 0)
        hr->end_us = util_mono_us();
}

/* Sends both queries; a set-up failure ends the lookup at once (with
 * setup_err), -ENOMEM ends the start. */
static int hr_send(struct http_resolve *hr)
{
    int rc = 0;

    /* pending first: a query may be called back before dns_chan_query()
     * returns (a send that fails at once). */
    hr->pending = HR_QUERIES;
    for (size_t i = 0; i < HR_QUERIES && rc == 0; i++) {
        hr->slot[i].hr = hr;
        hr->slot[i].idx = (unsigned)i;
        rc = dns_chan_query(hr->server, hr->timeout_ms, hr->host,
                            hr_qtypes[i], hr_on_answer, &hr->slot[i],
                            &hr->q[i], hr->setup_err,
                            sizeof(hr->setup_err));
    }
    if (rc == 0)
        return 0;
    for (size_t i = 0; i < HR_QUERIES; i++) {
        dns_chan_abandon(hr->q[i]);
        hr->q[i] = NULL;
    }
    hr->pending = 0;
    hr->end_us = hr->start_us;
    if (rc == -ENOMEM)
        return rc;
    if (!hr->setup_err[0])
        snprintf(hr->setup_err, sizeof(hr->setup_err), "resolver set-up: "
                 "%s", strerror(-rc));
    return 0;
}

int http_resolve_start(const char *server, const char *host,
                       long long timeout_ms, void *owner,
                       struct http_resolve **out)
{
    struct http_resolve *hr = calloc(1, sizeof(*hr));

    if (!hr)
        return -ENOMEM;
    hr->owner = owner;
    hr->timeout_ms = timeout_ms;
    hr->server = strdup(server);
    hr->host = strdup(host);
    hr->start_us = util_mono_us();
    hr->deadline_us = hr->start_us + timeout_ms * 1000;
    if (!hr->server || !hr->host || hr_send(hr) < 0) {
        http_resolve_free(hr);
        return -ENOMEM;
    }
    hr->next = hr_list;
    if (hr_list)
        hr_list->prev = hr;
    hr_list = hr;
    hr->listed = 1;
    *out = hr;
    return 0;
}

static int hr_done(const struct http_resolve *hr, int64_t now_us)
{
    return hr->pending == 0 || now_us >= hr->deadline_us;
}

long http_resolve_wait_ms(int64_t now_us)
{
    long w = -1;

    for (const struct http_resolve *hr = hr_list; hr; hr = hr->next) {
        int64_t us = hr->deadline_us - now_us;
        long ms = us <= 0 ? 0 : (long)((us + 999) / 1000);

        if (hr->pending == 0)
            return 0;
        if (w < 0 || ms < w)
            w = ms;
    }
    return w;
}

struct http_resolve *http_resolve_next_done(int64_t now_us)
{
    for (struct http_resolve *hr = hr_list; hr; hr = hr->next) {
        if (hr_done(hr, now_us)) {
            hr_unlink(hr);
            return hr;
        }
    }
    return NULL;
}

void *http_resolve_owner(const struct http_resolve *hr)
{
    return hr->owner;
}

/* The first address of type @type in @s, in the order the reply gave
 * them (a client connects to the first); NULL if none. */
static const char *hr_first(const struct dns_set *s, int type)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->a[i].type == type)
            return s->a[i].value;
    return NULL;
}

/* Why an ended lookup found no address, into @why. */
static void hr_why(const struct http_resolve *hr, char *why, size_t len)
{
    if (hr->setup_err[0]) {
        snprintf(why, len, "%s", hr->setup_err);
        return;
    }
    if (hr->pending > 0 || hr->end_us > hr->deadline_us) {
        snprintf(why, len, "timeout after %lld ms", hr->timeout_ms);
        return;
    }
    /* The A query's word first: NXDOMAIN there is the answer. */
    for (size_t i = 0; i < HR_QUERIES; i++) {
        if (hr->status[i] != ARES_SUCCESS && hr->status[i] != ARES_ENODATA) {
            snprintf(why, len, "%s", dns_chan_status_text(hr->status[i], 1));
            return;
        }
    }
    snprintf(why, len, "no A or AAAA record");
}

int http_resolve_result(const struct http_resolve *hr, int64_t now_us,
                        char addr[HTTP_RESOLVE_ADDR_LEN], uint64_t *dns_us,
                        char *err, size_t err_len)
{
    const char *a = NULL, *a6 = NULL;
    int64_t end = hr->pending > 0 ? now_us : hr->end_us;
    char why[HR_SETUP_ERR + 32];

    *dns_us = end > hr->start_us ? (uint64_t)(end - hr->start_us) : 0;
    if (hr->pending == 0 && hr->end_us <= hr->deadline_us) {
        a = hr_first(&hr->got[0], ns_t_a);
        a6 = a ? NULL : hr_first(&hr->got[1], ns_t_aaaa);
    }
    if (a && strlen(a) < HTTP_RESOLVE_ADDR_LEN) {
        snprintf(addr, HTTP_RESOLVE_ADDR_LEN, "%s", a);
        return 0;
    }
    if (a6 && strlen(a6) + 2 < HTTP_RESOLVE_ADDR_LEN) {
        snprintf(addr, HTTP_RESOLVE_ADDR_LEN, "[%s]", a6);
        return 0;
    }
    hr_why(hr, why, sizeof(why));
    snprintf(err, err_len, "resolve %s via %s: %s", hr->host, hr->server,
             why);
    return -1;
}

/* The host and port (the scheme's when not written) of @url; the caller
 * curl_free()s *host. -1 if libcurl cannot take it apart. */
static int hr_url_host_port(const char *url, char **host, long *port)
{
    CURLU *u = curl_url();
    char *p = NULL;
    int rc = -1;

    *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT)
            == CURLUE_OK) {
        *port = strtol(p, NULL, 10);
        rc = 0;
    }
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

/* An address in the URL leaves nothing to look up: refused, so a config
 * that cannot do what it says fails the load. */
int http_resolve_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                       const char *url, const char *req_url,
                       struct http_resolve_opts *o)
{
    unsigned char bin[16];
    char *host = NULL, *chost = NULL;
    long cport;
    int rc = dns_chan_parse_resolver(yc, m, ctx, &o->server);

    if (rc)
        return rc;
    if (hr_url_host_port(url, &host, &o->port) < 0 ||
        hr_url_host_port(req_url, &chost, &cport) < 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, "resolver"), ctx, "resolver",
                        "cannot take the URL apart");
        goto out;
    }
    if (host[0] == '[' || inet_pton(AF_INET, host, bin) == 1) {
        rc = yconf_fail(yc, yconf_find(yc, m, "resolver"), ctx, "resolver",
                        "the URL's host %s is an address: nothing to "
                        "resolve", host);
        goto out;
    }
    o->host = strdup(host);
    o->connect_host = strdup(chost);
    rc = o->host && o->connect_host
             ? 0 : yconf_fail(yc, m, ctx, "resolver", "out of memory");
out:
    curl_free(host);
    curl_free(chost);
    return rc;
}
