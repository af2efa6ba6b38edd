/* probe_http.c -- the HTTP(S) probe: one request per run, as one easy
 * handle in the loop's multi handle. Reads its options at config time
 * (method, headers, body, body match, redirects, TLS, SNI/Host override,
 * served-by header, resolver) and per run records status, verdict,
 * libcurl's timing breakdown, the served-by value and the certificate's
 * not-after. Keeps nothing from run to run, and never reuses a connection.
 *
 * With a resolver, a run first looks the URL's host up through it
 * (http_resolve.c) and its transfer joins the multi handle only then,
 * connecting to that address (CURLOPT_CONNECT_TO) while TLS and Host keep
 * the name; a failed lookup ends the run through the poll hooks. */
#include "probe_http.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http_resolve.h"
#include "probe_curl.h"
#include "util.h"
#include "yconf.h"

#define HTTP_MAX_NAME      128u     /* a header name (headers, served_by) */
#define HTTP_BODY_CHUNK    4096u    /* first allocation of a kept body */
#define HTTP_REGERR_LEN    128u     /* regerror()'s text: a few words */
#define HTTP_CUT_LEN       64u      /* " (in the first N bytes)" */

enum http_method {
    HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE,
    HTTP_OPTIONS,
};

/* Indexed by enum http_method. */
static const char *const http_method_names[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL
};

/* A target's options, built once at config load and only read by runs
 * (several targets' runs may read their own at once, never write). */
struct http_opts {
    char *url;                      /* with sni: the URL with sni as host;
                                       NULL: fetch t->url as written */
    enum http_method method;
    struct curl_slist *headers;     /* headers, Host, "Expect:"; or NULL */
    struct curl_slist *connect_to;  /* sni: where to really connect */
    char *body;                     /* request body, NULL for none */
    size_t body_len;
    char *body_match;               /* NULL for none */
    char *body_regex;               /* source text, for errors; NULL: none */
    regex_t re;                     /* compiled body_regex */
    int follow_redirects;
    int tls_verify;
    char *ca_file;                  /* NULL: libcurl's default bundle */
    char *served_by_header;         /* NULL for none */
    struct http_resolve_opts res;   /* resolver; server NULL: curl's */
};

/* For targets built without config.c (tests): a plain GET. */
static const struct http_opts http_default_opts = {
    .method = HTTP_GET,
    .tls_verify = 1,
};

struct http_run {
    struct probe_curl_run cr;       /* first: target, handle, errbuf */
    const struct http_opts *o;      /* borrowed from t (or the defaults) */
    char *body;                     /* kept response bytes, NUL-terminated,
                                       only when a match needs them */
    size_t body_len;                /* response bytes seen */
    size_t body_cap;                /* bytes allocated at body */
    int body_capped;                /* we stopped the transfer ourselves */
    int body_oom;                   /* ... or could not keep the body */
    char served_by[PROBE_SERVED_BY_LEN];
    /* With a resolver: */
    struct http_resolve *hr;        /* the lookup; NULL once it ended */
    CURLM *multi;                   /* borrowed: where the transfer goes */
    struct curl_slist *connect_to;  /* owned: host:port to the address */
    int64_t start_us;               /* monotonic, at the run's start */
    uint64_t resolve_us;            /* how long the lookup took */
};

/* -- configuration -- */

/* The strings of struct http_opts, for probe_opts_free(). */
static const size_t http_opts_strs[] = {
    offsetof(struct http_opts, url),
    offsetof(struct http_opts, body),
    offsetof(struct http_opts, body_match),
    offsetof(struct http_opts, body_regex),
    offsetof(struct http_opts, ca_file),
    offsetof(struct http_opts, served_by_header),
    offsetof(struct http_opts, res.server),
    offsetof(struct http_opts, res.host),
    offsetof(struct http_opts, res.connect_host),
};

static void http_free_opts(void *opts)
{
    struct http_opts *o = opts;

    if (o) {
        curl_slist_free_all(o->headers);
        curl_slist_free_all(o->connect_to);
        if (o->body_regex)
            regfree(&o->re);
    }
    probe_opts_free(o, http_opts_strs,
                    sizeof(http_opts_strs) / sizeof(http_opts_strs[0]));
}

/* RFC 9110 token: what a header name may be made of. */
static int http_token_ok(const char *s)
{
    if (!s[0] || strlen(s) > HTTP_MAX_NAME)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

/* A header value we send: printable ASCII and tabs, so a config can never
 * smuggle a CR/LF into the request. */
static int http_value_ok(const char *s)
{
    for (; *s; s++)
        if (*s != '\t' && (*s < 0x20 || *s >= 0x7f))
            return 0;
    return 1;
}

/* A host name, or with @port_ok a Host header value ("name:port",
 * "[v6]:port"): nothing that could change what a URL or header means. */
static int http_host_ok(const char *s, int port_ok)
{
    size_t len = strlen(s);

    if (len == 0 || len > PROBE_HTTP_MAX_HOST || s[0] == '-' || s[0] == '.')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-._", *s) &&
            !(port_ok && strchr(":[]", *s)))
            return 0;
    return 1;
}

static const char *http_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE
               ? (const char *)n->data.scalar.value : NULL;
}

static int http_parse_method(struct yconf *yc, yaml_node_t *m,
                             const char *ctx, struct http_opts *o)
{
    char *s = NULL;
    size_t i;
    int rc = yconf_str(yc, m, ctx, "method", 0, &s);

    if (rc)
        return rc;
    for (i = 0; http_method_names[i]; i++)
        if (strcmp(http_method_names[i], s) == 0)
            break;
    if (http_method_names[i])
        o->method = (enum http_method)i;
    else
        rc = yconf_fail(yc, yconf_find(yc, m, "method"), ctx, "method",
                        "unknown method \"%s\"; one of GET, HEAD, POST, "
                        "PUT, PATCH, DELETE, OPTIONS (upper case)", s);
    free(s);
    return rc;
}

/* Appends "name: value" (or "name;", libcurl's way to send it empty). */
static int http_add_header(struct curl_slist **list, const char *name,
                           const char *value)
{
    struct curl_slist *l;
    char *line = NULL;

    if (asprintf(&line, value[0] ? "%s: %s" : "%s;", name, value) < 0)
        return -ENOMEM;
    l = curl_slist_append(*list, line);
    free(line);                     /* libcurl keeps its own copy */
    if (!l)
        return -ENOMEM;
    *list = l;
    return 0;
}

static int http_parse_headers(struct yconf *yc, yaml_node_t *m,
                              const char *ctx, struct http_opts *o)
{
    yaml_node_t *hm;
    yaml_node_pair_t *p, *q;
    size_t n = 0;
    int rc = yconf_map(yc, m, ctx, "headers", 0, &hm);

    if (rc)
        return rc;
    for (p = hm->data.mapping.pairs.start; p < hm->data.mapping.pairs.top;
         p++, n++) {
        yaml_node_t *k = yaml_document_get_node(&yc->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&yc->doc, p->value);
        const char *ks = http_scalar(k), *vs = http_scalar(v);

        if (n == PROBE_HTTP_MAX_HEADERS)
            return yconf_fail(yc, k, ctx, "headers", "at most %u headers",
                              PROBE_HTTP_MAX_HEADERS);
        if (!ks || !http_token_ok(ks))
            return yconf_fail(yc, k, ctx, "headers", "\"%s\" is not a "
                              "header name", ks ? ks : "");
        if (strcasecmp(ks, "Host") == 0)
            return yconf_fail(yc, k, ctx, "headers", "set the Host header "
                              "with the host key");
        for (q = hm->data.mapping.pairs.start; q < p; q++) {
            const char *qs = http_scalar(yaml_document_get_node(&yc->doc,
                                                                q->key));
            if (qs && strcasecmp(qs, ks) == 0)
                return yconf_fail(yc, k, ctx, "headers", "header \"%s\" "
                                  "given twice", ks);
        }
        if (!vs)
            return yconf_fail(yc, v, ctx, "headers", "value of \"%s\" must "
                              "be a string", ks);
        if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (!vs[0] || strcmp(vs, "~") == 0 || strcmp(vs, "null") == 0))
            return yconf_fail(yc, v, ctx, "headers", "value of \"%s\" is "
                              "empty (quote \"\" to send it empty)", ks);
        if (strlen(vs) != v->data.scalar.length || !http_value_ok(vs))
            return yconf_fail(yc, v, ctx, "headers", "value of \"%s\" must "
                              "be printable ASCII", ks);
        if (strlen(ks) + 2 + strlen(vs) > PROBE_HTTP_MAX_HEADER_LINE)
            return yconf_fail(yc, v, ctx, "headers", "\"%s\" is longer than "
                              "%u bytes", ks, PROBE_HTTP_MAX_HEADER_LINE);
        rc = http_add_header(&o->headers, ks, vs);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int http_has_header(const struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);

    for (; l; l = l->next)
        if (strncasecmp(l->data, name, n) == 0 &&
            (l->data[n] == ':' || l->data[n] == ';'))
            return 1;
    return 0;
}

static int http_parse_body(struct yconf *yc, yaml_node_t *m, const char *ctx,
                           struct http_opts *o)
{
    int rc = yconf_str(yc, m, ctx, "body", 0, &o->body);

    if (rc)
        return rc;
    o->body_len = strlen(o->body);
    if (o->body_len > PROBE_HTTP_MAX_REQ_BODY)
        return yconf_fail(yc, yconf_find(yc, m, "body"), ctx, "body",
                          "longer than %u bytes", PROBE_HTTP_MAX_REQ_BODY);
    if (o->method == HTTP_GET || o->method == HTTP_HEAD)
        return yconf_fail(yc, yconf_find(yc, m, "body"), ctx, "body",
                          "needs method POST, PUT, PATCH, DELETE or "
                          "OPTIONS, not %s", http_method_names[o->method]);
    return 0;
}

/* A pattern key: bounded, non-empty, and pointless with HEAD. */
static int http_parse_pattern(struct yconf *yc, yaml_node_t *m,
                              const char *ctx, const char *key,
                              const struct http_opts *o, char **out)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, key, 0, &s);

    if (rc)
        return rc;
    if (strlen(s) > PROBE_HTTP_MAX_PATTERN)
        rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                        "longer than %u bytes", PROBE_HTTP_MAX_PATTERN);
    else if (!s[0])
        rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                        "must not be empty");
    else if (o->method == HTTP_HEAD)
        rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                        "a HEAD response has no body to match");
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* glibc's regcomp copies a repeated subexpression once per repeat (x{3}
 * becomes xxx, x+ becomes xx*), so stacked or nested repetition grows its
 * tree exponentially: "u++++...+" took gigabytes (found by the config
 * fuzzer). This estimates the expanded size: an atom counts 1, a group
 * its contents, and a repetition multiplies what it follows by its upper
 * bound (at least 2). Malformed patterns are left to regcomp. */
#define HTTP_REGEX_MAX_COST  65536.0
#define HTTP_REGEX_MAX_DEPTH 32

static double http_regex_cost(const char *s)
{
    double sum[HTTP_REGEX_MAX_DEPTH + 1] = { 0 };
    double last = 0;            /* what a repetition here would repeat */
    int d = 0;

    for (const char *p = s; *p; p++) {
        double mult = 0;

        if (*p == '(') {
            if (d == HTTP_REGEX_MAX_DEPTH)
                return INFINITY;
            sum[++d] = 0;
            last = 0;
            continue;
        }
        if (*p == ')' && d > 0) {
            last = sum[d--];
            sum[d] += last;
            continue;
        }
        if (*p == '*' || *p == '+' || *p == '?') {
            mult = 2;
        } else if (*p == '{' && isdigit((unsigned char)p[1])) {
            char *end;
            double lo = (double)strtoul(p + 1, &end, 10), hi = lo;

            if (*end == ',' && end[1] == '}')
                hi = lo + 1;            /* {m,}: m copies and a star */
            else if (*end == ',')
                hi = (double)strtoul(end + 1, &end, 10);
            if (*end == '}') {
                mult = hi > 2 ? hi : 2;
                p = end;
            }
        }
        if (mult > 0) {
            sum[d] += last * (mult - 1);
            last *= mult;
            continue;
        }
        if (*p == '[') {                /* a bracket expression: one atom */
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
        } else if (*p == '\\' && p[1]) {
            p++;
        }
        last = 1;
        sum[d] += 1;
    }
    while (d > 0) {
        sum[d - 1] += sum[d];
        d--;
    }
    return sum[0];
}

static int http_parse_regex(struct yconf *yc, yaml_node_t *m,
                            const char *ctx, struct http_opts *o)
{
    char *s = NULL, msg[HTTP_REGERR_LEN];
    int rc = http_parse_pattern(yc, m, ctx, "body_regex", o, &s);
    int erc;

    if (rc)
        return rc;
    if (http_regex_cost(s) > HTTP_REGEX_MAX_COST) {
        free(s);
        return yconf_fail(yc, yconf_find(yc, m, "body_regex"), ctx,
                          "body_regex", "too complex: its stacked or nested "
                          "repetitions expand to over %.0f pieces",
                          HTTP_REGEX_MAX_COST);
    }
    /* REG_NEWLINE: ^ and $ work per line, as with grep -E. */
    erc = regcomp(&o->re, s, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
    if (erc != 0) {
        regerror(erc, &o->re, msg, sizeof(msg));
        free(s);
        return yconf_fail(yc, yconf_find(yc, m, "body_regex"), ctx,
                          "body_regex", "not a valid POSIX extended regular "
                          "expression: %s", msg);
    }
    o->body_regex = s;              /* from now on, re must be freed */
    return 0;
}

/* The CA bundle must be there now: a typo should fail the load, not every
 * probe for ever after. */
static int http_parse_ca_file(struct yconf *yc, yaml_node_t *m,
                              const char *ctx, struct http_opts *o)
{
    struct stat sb;
    int rc = yconf_str(yc, m, ctx, "ca_file", 0, &o->ca_file);
    int fd;

    if (rc)
        return rc;
    fd = open(o->ca_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return yconf_fail(yc, yconf_find(yc, m, "ca_file"), ctx, "ca_file",
                          "cannot read %s: %s", o->ca_file, strerror(errno));
    rc = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? 0 : -1;
    close(fd);
    if (rc < 0)
        return yconf_fail(yc, yconf_find(yc, m, "ca_file"), ctx, "ca_file",
                          "%s is not a regular file", o->ca_file);
    return 0;
}

/* sni: fetch the URL with @sni as its host, so that libcurl uses it for
 * SNI, the certificate check and Host; CONNECT_TO sends the connection to
 * the URL's own host and port. */
static int http_parse_sni(struct yconf *yc, yaml_node_t *m, const char *ctx,
                          const struct agent_target *t, struct http_opts *o)
{
    char *sni = NULL, *scheme = NULL, *host = NULL, *port = NULL;
    char *url = NULL, *map = NULL;
    struct curl_slist *l;
    yaml_node_t *at;
    CURLU *u = NULL;
    int rc = yconf_str(yc, m, ctx, "sni", 0, &sni);

    if (rc)
        return rc;
    at = yconf_find(yc, m, "sni");
    if (!http_host_ok(sni, 0)) {
        rc = yconf_fail(yc, at, ctx, "sni", "expected a host name, got "
                        "\"%s\"", sni);
        goto out;
    }
    u = curl_url();
    if (!u) {
        rc = -ENOMEM;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, t->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
            != CURLUE_OK) {
        rc = yconf_fail(yc, at, ctx, "sni", "cannot take the URL apart");
        goto out;
    }
    if (strcmp(scheme, "https") != 0) {
        rc = yconf_fail(yc, at, ctx, "sni", "needs an https URL (for the "
                        "Host header alone, use host)");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_HOST, sni, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        rc = yconf_fail(yc, at, ctx, "sni", "libcurl does not accept \"%s\" "
                        "as a host", sni);
        goto out;
    }
    /* host comes bracketed if it is IPv6, as CONNECT_TO wants it. */
    if (asprintf(&map, "%s:%s:%s:%s", sni, port, host, port) < 0) {
        map = NULL;
        rc = -ENOMEM;
        goto out;
    }
    l = curl_slist_append(NULL, map);
    o->url = strdup(url);
    if (!l || !o->url) {
        curl_slist_free_all(l);
        rc = -ENOMEM;
        goto out;
    }
    o->connect_to = l;
    rc = 0;
out:
    free(map);
    curl_free(url);
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    free(sni);
    return rc;
}

static int http_parse_host(struct yconf *yc, yaml_node_t *m, const char *ctx,
                           struct http_opts *o)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, "host", 0, &s);

    if (rc)
        return rc;
    if (!http_host_ok(s, 1))
        rc = yconf_fail(yc, yconf_find(yc, m, "host"), ctx, "host",
                        "expected host or host:port, got \"%s\"", s);
    else
        rc = http_add_header(&o->headers, "Host", s);
    free(s);
    return rc;
}

static int http_parse_served_by(struct yconf *yc, yaml_node_t *m,
                                const char *ctx, struct http_opts *o)
{
    int rc = yconf_str(yc, m, ctx, "served_by_header", 0,
                       &o->served_by_header);

    if (rc)
        return rc;
    if (!http_token_ok(o->served_by_header))
        return yconf_fail(yc, yconf_find(yc, m, "served_by_header"), ctx,
                          "served_by_header", "\"%s\" is not a header name",
                          o->served_by_header);
    return 0;
}

static int http_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                      struct agent_target *t)
{
    struct http_opts *o = calloc(1, sizeof(*o));
    int rc;

    if (!o)
        return -ENOMEM;
    o->tls_verify = 1;
    rc = http_parse_method(yc, m, ctx, o);
    if (rc >= 0)
        rc = http_parse_headers(yc, m, ctx, o);
    if (rc >= 0)
        rc = http_parse_body(yc, m, ctx, o);
    if (rc >= 0)
        rc = http_parse_pattern(yc, m, ctx, "body_match", o, &o->body_match);
    if (rc >= 0)
        rc = http_parse_regex(yc, m, ctx, o);
    if (rc >= 0)
        rc = yconf_bool(yc, m, ctx, "follow_redirects", 0,
                        &o->follow_redirects);
    if (rc >= 0)
        rc = yconf_bool(yc, m, ctx, "tls_verify", 0, &o->tls_verify);
    if (rc >= 0)
        rc = http_parse_ca_file(yc, m, ctx, o);
    if (rc >= 0)
        rc = http_parse_sni(yc, m, ctx, t, o);
    if (rc >= 0)
        rc = http_resolve_parse(yc, m, ctx, t->url,
                                o->url ? o->url : t->url, &o->res);
    if (rc >= 0)
        rc = http_parse_host(yc, m, ctx, o);
    if (rc >= 0)
        rc = http_parse_served_by(yc, m, ctx, o);
    /* A body goes out at once: a server that never answers 100 Continue
     * must not cost the probe a second. "Expect:" with nothing after the
     * colon is libcurl's way to leave the header out. */
    if (rc >= 0 && (o->body || o->method == HTTP_POST ||
                    o->method == HTTP_PUT || o->method == HTTP_PATCH) &&
        !http_has_header(o->headers, "Expect")) {
        struct curl_slist *l = curl_slist_append(o->headers, "Expect:");

        if (l)
            o->headers = l;
        else
            rc = -ENOMEM;
    }
    if (rc < 0) {
        http_free_opts(o);
        return rc;
    }
    t->opts = o;
    return 0;
}

/* -- running -- */

static size_t http_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_run *r = arg;
    size_t n = size * nmemb;
    size_t take = PROBE_HTTP_MAX_BODY - r->body_len;

    if (take > n)
        take = n;
    if (take > 0 && (r->o->body_match || r->o->body_regex)) {
        size_t need = r->body_len + take + 1;   /* + NUL */

        if (need > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap * 2 : HTTP_BODY_CHUNK;
            char *b;

            if (cap < need)
                cap = need;
            if (cap > PROBE_HTTP_MAX_BODY + 1)
                cap = PROBE_HTTP_MAX_BODY + 1;
            b = realloc(r->body, cap);
            if (!b) {
                r->body_oom = 1;
                return 0;
            }
            r->body = b;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, take);
        r->body[r->body_len + take] = '\0';
    }
    r->body_len += take;
    if (take < n) {
        r->body_capped = 1;
        return 0;                   /* makes curl stop: CURLE_WRITE_ERROR */
    }
    return n;
}

/* Keeps the value of the served-by header of the last response: a status
 * line starts a new response (after a redirect), so it forgets the old. */
static size_t http_header(char *data, size_t size, size_t nitems, void *arg)
{
    struct http_run *r = arg;
    const char *name = r->o->served_by_header;
    size_t n = size * nitems, nl = strlen(name), len, i;
    const char *v, *end = data + n;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->served_by[0] = '\0';
        return n;
    }
    if (n <= nl || data[nl] != ':' || strncasecmp(data, name, nl) != 0)
        return n;
    v = data + nl + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
                       end[-1] == ' ' || end[-1] == '\t'))
        end--;
    len = (size_t)(end - v);
    if (len >= sizeof(r->served_by))
        len = sizeof(r->served_by) - 1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];

        r->served_by[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    r->served_by[len] = '\0';
    return n;
}

/* Options for one run, after the common ones. The type asks for a fresh
 * connection and no DNS cache on purpose: the probe must measure DNS,
 * connect and TLS every time, and follow the global name as soon as the
 * traffic manager changes its answer. */
static int http_setup(struct probe_curl_run *cr)
{
    struct http_run *r = (struct http_run *)cr;
    const struct http_opts *o;
    CURL *e = cr->easy;
    int bad = 0;

    r->o = cr->t->opts ? cr->t->opts : &http_default_opts;
    o = r->o;
    bad |= curl_easy_setopt(e, CURLOPT_URL, o->url ? o->url : cr->t->url)
           != CURLE_OK;
    switch (o->method) {
    case HTTP_GET:
        break;
    case HTTP_HEAD:
        bad |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK;
        break;
    default:
        /* POSTFIELDS makes libcurl send the body with any method; a
         * custom one only replaces the word on the request line. */
        if (o->method != HTTP_POST)
            bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                                    http_method_names[o->method])
                   != CURLE_OK;
        if (o->body || o->method == HTTP_POST || o->method == HTTP_PUT ||
            o->method == HTTP_PATCH) {
            bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                    (curl_off_t)o->body_len) != CURLE_OK;
            bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                                    o->body ? o->body : "") != CURLE_OK;
        }
        break;
    }
    if (o->headers)
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers)
               != CURLE_OK;
    if (o->connect_to && !o->res.server)     /* else set once resolved */
        bad |= curl_easy_setopt(e, CURLOPT_CONNECT_TO, o->connect_to)
               != CURLE_OK;
    if (o->follow_redirects) {
        bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, PROBE_HTTP_MAX_REDIRS)
               != CURLE_OK;
    }
    bad |= probe_curl_tls(e, o->tls_verify, o->ca_file) < 0;
    /* The chain's details, for the leaf's not-after; no-op for http. */
    bad |= curl_easy_setopt(e, CURLOPT_CERTINFO, 1L) != CURLE_OK;
    if (o->served_by_header) {
        bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header)
               != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r) != CURLE_OK;
    }
    if (bad)
        return -EINVAL;
    if (!o->res.server)
        return 0;
    /* Resolve every run, as a client honouring a short TTL does: the
     * transfer waits outside the multi handle until the answer. */
    r->start_us = util_mono_us();
    if (http_resolve_start(o->res.server, o->res.host, cr->t->timeout_ms, r,
                           &r->hr) < 0)
        return -ENOMEM;
    return PROBE_CURL_HOLD;
}

/* After the easy handle's cleanup (probe_curl_release): it used the
 * CONNECT_TO list until then. */
static void http_free_run(struct probe_curl_run *cr)
{
    struct http_run *r = (struct http_run *)cr;

    http_resolve_free(r->hr);
    curl_slist_free_all(r->connect_to);
    free(r->body);
}

/* Redirects, when followed, stay on http(s): the common options use the
 * type's protocols for them too. */
static const struct probe_curl_type http_curl = {
    .ops = &probe_http_ops,
    .run_size = sizeof(struct http_run),
    .protocols = "http,https",
    .fresh = 1,
    .write = http_write,
    .setup = http_setup,
    .free_run = http_free_run,
};

static int http_start(const struct agent_target *t, void **state,
                      CURLM *multi, struct probe_run **out)
{
    int rc;

    (void)state;                    /* each run stands alone */
    rc = probe_curl_start(&http_curl, t, multi, out);
    if (rc == PROBE_CURL_HOLD) {    /* resolving: joins @multi later */
        ((struct http_run *)*out)->multi = multi;
        rc = 0;
    }
    return rc;
}

static void http_cancel(struct probe_run *run, CURLM *multi)
{
    struct http_run *r = (struct http_run *)run;

    /* Still resolving: the handle is in no multi yet. */
    probe_curl_release(&r->cr, r->hr ? NULL : multi);
}

/* A certificate time as libcurl's certinfo prints it: OpenSSL's
 * "Mar  5 12:00:00 2025 GMT" (seconds may carry a fraction), or GnuTLS's
 * "2025-03-05 12:00:00 UTC". Unix ms, or 0 if it is neither. */
static int64_t http_parse_cert_time(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    char mon[4] = "", zone[4] = "";
    const char *hit;
    int day, hh, mi, ss, year, used = 0;
    time_t when;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, " %d-%d-%d %d:%d:%d %3s", &year, &tm.tm_mon, &day, &hh,
               &mi, &ss, zone) == 7) {
        tm.tm_mon -= 1;
    } else if (sscanf(s, " %3s %d %d:%d:%d%n", mon, &day, &hh, &mi, &ss,
                      &used) == 5) {
        s += used;
        if (*s == '.')
            for (s++; isdigit((unsigned char)*s); s++)
                ;
        if (sscanf(s, " %d %3s", &year, zone) != 2)
            return 0;
        hit = strlen(mon) == 3 ? strstr(months, mon) : NULL;
        if (!hit || (hit - months) % 3 != 0)
            return 0;
        tm.tm_mon = (int)((hit - months) / 3);
    } else {
        return 0;
    }
    if ((strcmp(zone, "GMT") != 0 && strcmp(zone, "UTC") != 0) ||
        tm.tm_mon < 0 || tm.tm_mon > 11 || day < 1 || day > 31 ||
        hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60 ||
        year < 1970 || year > 9999)
        return 0;
    tm.tm_year = year - 1900;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_sec = ss;
    when = timegm(&tm);
    return when == (time_t)-1 ? 0 : (int64_t)when * 1000;
}

/* The leaf (certinfo[0]) certificate's not-after, 0 if unknown. */
static int64_t http_cert_not_after(CURL *e)
{
    static const char key[] = "Expire date:";
    struct curl_certinfo *ci = NULL;
    const struct curl_slist *l;

    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
        ci->num_of_certs < 1)
        return 0;
    for (l = ci->certinfo[0]; l; l = l->next)
        if (strncmp(l->data, key, sizeof(key) - 1) == 0)
            return http_parse_cert_time(l->data + sizeof(key) - 1);
    return 0;
}

/* Whether the kept body satisfies body_match and body_regex; if not,
 * says which one failed in @err. */
static int http_body_ok(const struct http_run *r, char *err, size_t err_len)
{
    const struct http_opts *o = r->o;
    const char *b = r->body ? r->body : "";
    size_t n = r->body ? r->body_len : 0;
    char cut[HTTP_CUT_LEN] = "";

    if (r->body_capped)
        snprintf(cut, sizeof(cut), " (in the first %u bytes)",
                 PROBE_HTTP_MAX_BODY);
    if (o->body_match && !memmem(b, n, o->body_match, strlen(o->body_match))) {
        snprintf(err, err_len, "body does not match body_match \"%s\"%s",
                 o->body_match, cut);
        return 0;
    }
    if (o->body_regex) {
        regmatch_t pm[1];
        int flags = 0;

#ifdef REG_STARTEND
        /* Bounds instead of the NUL: a NUL byte in the body must not hide
         * what follows it. */
        pm[0].rm_so = 0;
        pm[0].rm_eo = (regoff_t)n;
        flags = REG_STARTEND;
#endif
        if (regexec(&o->re, b, 1, pm, flags) != 0) {
            snprintf(err, err_len, "body does not match body_regex \"%s\"%s",
                     o->body_regex, cut);
            return 0;
        }
    }
    return 1;
}

/* curl timed the transfer from when it joined the multi handle, after our
 * lookup: every time it reached moves by the lookup's, and the lookup is
 * the DNS time (curl's own, for an address, is next to nothing). */
static void http_add_resolve_time(struct probe_timings *t, uint64_t us)
{
    uint64_t *const at[] = { &t->connect_us, &t->tls_us, &t->first_byte_us };

    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
        if (*at[i])
            *at[i] += us;
    t->dns_us += us;
    t->total_us += us;
}

static void http_finish(struct probe_run *run, CURLM *multi, CURL *easy,
                        CURLcode code, struct probe_result *res)
{
    struct http_run *r = (struct http_run *)run;
    long status;

    (void)easy;                     /* one transfer per run: r->cr.easy */
    status = probe_curl_result(&r->cr, res);
    if (r->o->res.server)
        http_add_resolve_time(&res->t, r->resolve_us);
    res->cert_not_after_ms = http_cert_not_after(r->cr.easy);
    memcpy(res->served_by, r->served_by, sizeof(res->served_by));
    /* Stopping a long body is our choice, not the target's failure. */
    if (code == CURLE_WRITE_ERROR && r->body_capped && status > 0)
        code = CURLE_OK;
    if (r->body_oom)
        snprintf(res->error, sizeof(res->error), "out of memory for the "
                 "body");
    else if (code != CURLE_OK)
        snprintf(res->error, sizeof(res->error), "%s",
                 probe_curl_errtext(r->cr.errbuf, code));
    else if (!agent_target_status_ok(r->cr.t, status))
        snprintf(res->error, sizeof(res->error), "status %ld not expected",
                 status);
    else if (http_body_ok(r, res->error, sizeof(res->error)))
        res->ok = 1;
    probe_printable(res->error);
    probe_curl_release(&r->cr, multi);
}

static const char *const http_keys[] = {
    "url", "expect_status", "method", "headers", "body", "body_match",
    "body_regex", "follow_redirects", "tls_verify", "ca_file", "sni", "host",
    "served_by_header", "resolver", NULL
};

/* -- runs with a resolver: the lookup, through the poll hooks -- */

/* The lookup of @r ended with @addr: the transfer connects there, with
 * what is left of the timeout, and joins the multi handle. 0, or -1 with
 * why in @err. */
static int http_go(struct http_run *r, const char *addr, int64_t now_us,
                   char *err, size_t err_len)
{
    const struct http_opts *o = r->o;
    long long left = r->cr.t->timeout_ms - (now_us - r->start_us) / 1000;
    char *map = NULL;

    if (asprintf(&map, "%s:%ld:%s:%ld", o->res.connect_host, o->res.port,
                 addr, o->res.port) < 0)
        map = NULL;
    r->connect_to = map ? curl_slist_append(NULL, map) : NULL;
    free(map);
    if (!r->connect_to) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (curl_easy_setopt(r->cr.easy, CURLOPT_CONNECT_TO, r->connect_to)
            != CURLE_OK ||
        curl_easy_setopt(r->cr.easy, CURLOPT_TIMEOUT_MS,
                         (long)(left > 0 ? left : 1)) != CURLE_OK ||
        curl_multi_add_handle(r->multi, r->cr.easy) != CURLM_OK) {
        snprintf(err, err_len, "cannot start the transfer to %s", addr);
        return -1;
    }
    return 0;
}

static long http_poll_timeout_ms(void)
{
    return http_resolve_wait_ms(util_mono_us());
}

/* Every lookup that ended starts its transfer, or ends its run as a failed
 * probe (that error, the lookup's time). */
static void http_poll_process(const struct curl_waitfd *fds, size_t n,
                              probe_complete_fn done, void *arg)
{
    struct http_resolve *hr;
    int64_t now;

    (void)fds;                      /* no fds of our own (http_resolve.h) */
    (void)n;
    now = util_mono_us();
    while ((hr = http_resolve_next_done(now)) != NULL) {
        struct http_run *r = http_resolve_owner(hr);
        char addr[HTTP_RESOLVE_ADDR_LEN];
        struct probe_result res;

        memset(&res, 0, sizeof(res));
        r->hr = NULL;
        if (http_resolve_result(hr, now, addr, &r->resolve_us, res.error,
                                sizeof(res.error)) == 0 &&
            http_go(r, addr, now, res.error, sizeof(res.error)) == 0) {
            http_resolve_free(hr);
            continue;
        }
        http_resolve_free(hr);
        res.t.dns_us = res.t.total_us = r->resolve_us;
        probe_printable(res.error);
        done(&r->cr.base, &res, arg);
        probe_curl_release(&r->cr, NULL);
    }
}

const struct probe_ops probe_http_ops = {
    .type = PROBE_HTTP,
    .name = "http",
    .keys = http_keys,
    .url_required = 1,
    .parse = http_parse,
    .free_opts = http_free_opts,
    .start = http_start,
    .finish = http_finish,
    .cancel = http_cancel,
    .poll_timeout_ms = http_poll_timeout_ms,
    .poll_process = http_poll_process,
};
