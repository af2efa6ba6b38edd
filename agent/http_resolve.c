/* http_resolve.c -- the HTTP probe's lookups through a configured resolver
 * (http_resolve.h): one lookup of dns_lookup.c each (A and AAAA, each
 * reply into its own set, so the first A record is the first of its
 * reply), one list of lookups in flight, the address picked and the
 * error's words, and the config key. Does not cache: each run asks
 * again. */
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
#include "dns_lookup.h"
#include "dns_set.h"
#include "util.h"
#include "yconf.h"

static const int hr_qtypes[] = { ns_t_a, ns_t_aaaa };

struct http_resolve {
    struct http_resolve *next;      /* hr_list, while listed */
    void *owner;                    /* borrowed: the caller's run */
    char *server, *host;            /* owned copies, for the error text */
    long long timeout_ms;
    struct dns_lookup lk;           /* A into got[0], AAAA into got[1] */
};

/* Module state: the loop's thread only. */
static struct http_resolve *hr_list;    /* listed lookups, newest first */

/* A walk, not a doubly linked list: a list holds one lookup per HTTP
 * target with a resolver at most, and each is unlinked once. */
static void hr_unlink(struct http_resolve *hr)
{
    for (struct http_resolve **pp = &hr_list; *pp; pp = &(*pp)->next) {
        if (*pp == hr) {
            *pp = hr->next;
            hr->next = NULL;
            return;
        }
    }
}

void http_resolve_free(struct http_resolve *hr)
{
    if (!hr)
        return;
    hr_unlink(hr);
    dns_lookup_release(&hr->lk);
    free(hr->server);
    free(hr->host);
    free(hr);
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
    if (!hr->server || !hr->host ||
        dns_lookup_send(&hr->lk, server, timeout_ms, host, hr_qtypes,
                        sizeof(hr_qtypes) / sizeof(hr_qtypes[0]), 0) < 0) {
        http_resolve_free(hr);
        return -ENOMEM;
    }
    hr->next = hr_list;
    hr_list = hr;
    *out = hr;
    return 0;
}

long http_resolve_wait_ms(int64_t now_us)
{
    long w = -1;

    for (const struct http_resolve *hr = hr_list; hr; hr = hr->next) {
        long ms = dns_lookup_wait_ms(&hr->lk, now_us);

        if (w < 0 || ms < w)
            w = ms;
    }
    return w;
}

struct http_resolve *http_resolve_next_done(int64_t now_us)
{
    for (struct http_resolve *hr = hr_list; hr; hr = hr->next) {
        if (dns_lookup_ended(&hr->lk, now_us)) {
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
    const struct dns_lookup *l = &hr->lk;
    size_t bad = dns_lookup_failed(l);

    if (l->setup_err[0])
        snprintf(why, len, "%s", l->setup_err);
    else if (dns_lookup_late(l) ||
             (bad < l->n && l->status[bad] == ARES_ETIMEOUT))
        /* c-ares's own timeout comes a hair before ours: the same. */
        snprintf(why, len, "timeout after %lld ms", hr->timeout_ms);
    else if (bad < l->n)            /* the A query's word first */
        snprintf(why, len, "%s", dns_chan_status_text(l->status[bad], 1));
    else
        snprintf(why, len, "no A or AAAA record");
}

int http_resolve_result(const struct http_resolve *hr, int64_t now_us,
                        char addr[HTTP_RESOLVE_ADDR_LEN], uint64_t *dns_us,
                        char *err, size_t err_len)
{
    const char *a = NULL, *a6 = NULL;
    char why[DNS_LOOKUP_ERR + 32];

    *dns_us = dns_lookup_us(&hr->lk, now_us);
    if (!dns_lookup_late(&hr->lk)) {
        a = hr_first(&hr->lk.got[0], ns_t_a);
        a6 = a ? NULL : hr_first(&hr->lk.got[1], ns_t_aaaa);
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
