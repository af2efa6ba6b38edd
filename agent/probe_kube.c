/* probe_kube.c -- the Kubernetes API probe: one authenticated GET of the
 * node list or of one Deployment, parsed with json-c as it arrives, turned
 * into metric samples. Does not watch, page through lists or read any
 * kubeconfig: it is the in-cluster service account or nothing.
 *
 * A run that cannot even start its request (token or CA file unreadable)
 * still ends as a failed probe result, not as a silent skip: such runs
 * wait in a list that the poll hooks hand back to the loop on its next
 * turn. */
#include "probe_kube.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "probe_curl.h"
#include "util.h"
#include "yconf.h"

enum kube_resource { KUBE_NODES, KUBE_DEPLOYMENT };

struct kube_opts {
    enum kube_resource resource;
    char *token_file;
    char *ca_file;
    char *ns;                       /* deployment only, else NULL */
    char *name;                     /* deployment only, else NULL */
    char *req_url;                  /* the whole GET URL, built at load */
    size_t max_body;                /* by resource: KUBE_MAX_*_BODY */
};

struct kube_run {
    struct probe_curl_run cr;       /* first: target, handle (NULL for an
                                       early failure), errbuf (curl's, or
                                       the early failure's) */
    const struct kube_opts *o;      /* t->opts */
    struct curl_slist *headers;     /* owned; holds the token: wiped */
    struct json_tokener *tok;       /* owned */
    struct json_object *obj;        /* the parsed body, once complete */
    const char *json_err;           /* static text: why the body is bad */
    size_t json_err_at;             /* and at which byte */
    size_t body_len;
    int body_capped;                /* we stopped the transfer ourselves */
    struct kube_run *next;          /* in kube_early */
};

/* Runs that failed before any transfer, newest first; loop thread only
 * (the poll hooks take no argument, so this is the one module state). */
static struct kube_run *kube_early;

static const char *const kube_keys[] = {
    "url", "token_file", "ca_file", "resource", "namespace", "deployment",
    NULL
};

/* -- configuration -- */

/* The strings of struct kube_opts: all it owns (probe_opts_free()). */
static const size_t kube_opts_strs[] = {
    offsetof(struct kube_opts, token_file),
    offsetof(struct kube_opts, ca_file),
    offsetof(struct kube_opts, ns),
    offsetof(struct kube_opts, name),
    offsetof(struct kube_opts, req_url),
};

static void kube_free_opts(void *p)
{
    probe_opts_free(p, kube_opts_strs,
                    sizeof(kube_opts_strs) / sizeof(kube_opts_strs[0]));
}

/* RFC 1123 label (namespace) or subdomain (object name), as the API server
 * itself validates them; checking here also means both go into the URL
 * path without escaping. */
static int kube_dns_name(const char *s, size_t max, int dots)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (!alnum && c != '-' && !(dots && c == '.'))
            return 0;
        if (!alnum && (i == 0 || i == n - 1))
            return 0;
    }
    return 1;
}

/* A path key, absent -> @def. */
static int kube_path_key(struct yconf *yc, yaml_node_t *m, const char *ctx,
                         const char *key, const char *def, char **out)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, key, 0, &s);

    if (rc < 0)
        return rc;
    if (rc == 1) {
        s = strdup(def);
        if (!s)
            return -ENOMEM;
    } else if (s[0] == '\0') {
        free(s);
        return yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                          "must not be empty");
    }
    *out = s;
    return 0;
}

/* The base URL (t->url) with the API path appended to its path, so a
 * server behind a path prefix works too. resourceVersion=0 lets the API
 * server answer from its watch cache instead of a quorum read of etcd:
 * an agent on every node listing nodes must not load etcd. */
static int kube_build_url(struct yconf *yc, yaml_node_t *m, const char *ctx,
                          const char *base, struct kube_opts *o)
{
    yaml_node_t *at = yconf_find(yc, m, "url");
    char *scheme = NULL, *path = NULL, *extra = NULL, *full = NULL;
    char *joined = NULL;
    CURLU *u = curl_url();
    size_t plen;
    int rc = -ENOMEM, n;

    if (!u)
        goto out;
    rc = -EINVAL;
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        yconf_fail(yc, at ? at : m, ctx, "url", "not a valid URL");
        goto out;
    }
    /* The token is a credential for the whole cluster. */
    if (strcmp(scheme, "https") != 0) {
        yconf_fail(yc, at ? at : m, ctx, "url", "must be https: the service "
                   "account token must not travel in clear text");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
        yconf_fail(yc, at ? at : m, ctx, "url", "must not have a query or a "
                   "fragment");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rc = -ENOMEM;
        goto out;
    }
    plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    if (o->resource == KUBE_NODES)
        n = asprintf(&joined, "%.*s/api/v1/nodes", (int)plen, path);
    else
        n = asprintf(&joined, "%.*s/apis/apps/v1/namespaces/%s/deployments/%s",
                     (int)plen, path, o->ns, o->name);
    if (n < 0) {
        joined = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if (curl_url_set(u, CURLUPART_PATH, joined, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_QUERY, "resourceVersion=0", 0)
            != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        rc = -ENOMEM;
        goto out;
    }
    o->req_url = strdup(full);
    rc = o->req_url ? 0 : -ENOMEM;
out:
    free(joined);
    curl_free(scheme);
    curl_free(path);
    curl_free(extra);
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}

static int kube_parse(struct yconf *yc, yaml_node_t *m, const char *ctx,
                      struct agent_target *t)
{
    struct kube_opts *o;
    char *res = NULL;
    int rc;

    o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    rc = yconf_str(yc, m, ctx, "resource", 1, &res);
    if (rc < 0)
        goto out;
    if (strcmp(res, "nodes") == 0) {
        o->resource = KUBE_NODES;
        o->max_body = KUBE_MAX_NODES_BODY;
    } else if (strcmp(res, "deployment") == 0) {
        o->resource = KUBE_DEPLOYMENT;
        o->max_body = KUBE_MAX_DEPLOYMENT_BODY;
    } else {
        rc = yconf_fail(yc, yconf_find(yc, m, "resource"), ctx, "resource",
                        "must be nodes or deployment, got \"%s\"", res);
        goto out;
    }
    rc = kube_path_key(yc, m, ctx, "token_file", KUBE_DEFAULT_TOKEN_FILE,
                       &o->token_file);
    if (rc == 0)
        rc = kube_path_key(yc, m, ctx, "ca_file", KUBE_DEFAULT_CA_FILE,
                           &o->ca_file);
    if (rc < 0)
        goto out;
    if (o->resource == KUBE_NODES) {
        const char *extra = yconf_find(yc, m, "namespace") ? "namespace"
                            : yconf_find(yc, m, "deployment") ? "deployment"
                            : NULL;
        if (extra) {
            rc = yconf_fail(yc, yconf_find(yc, m, extra), ctx, extra,
                            "only for resource: deployment (nodes are not "
                            "namespaced and are all read)");
            goto out;
        }
    } else {
        rc = yconf_str(yc, m, ctx, "namespace", 1, &o->ns);
        if (rc == 0 && !kube_dns_name(o->ns, KUBE_MAX_NAMESPACE, 0))
            rc = yconf_fail(yc, yconf_find(yc, m, "namespace"), ctx,
                            "namespace", "not a Kubernetes namespace name "
                            "(lower-case letters, digits and '-', at most "
                            "%u)", KUBE_MAX_NAMESPACE);
        if (rc == 0)
            rc = yconf_str(yc, m, ctx, "deployment", 1, &o->name);
        if (rc == 0 && !kube_dns_name(o->name, KUBE_MAX_OBJECT_NAME, 1))
            rc = yconf_fail(yc, yconf_find(yc, m, "deployment"), ctx,
                            "deployment", "not a Kubernetes object name "
                            "(lower-case letters, digits, '-' and '.', at "
                            "most %u)", KUBE_MAX_OBJECT_NAME);
        if (rc < 0)
            goto out;
    }
    if (!t->url) {
        t->url = strdup(KUBE_DEFAULT_URL);  /* config.c frees it */
        if (!t->url) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = kube_build_url(yc, m, ctx, t->url, o);
    if (rc < 0)
        goto out;
    t->opts = o;
    o = NULL;
out:
    free(res);
    kube_free_opts(o);
    return rc < 0 ? rc : 0;
}

/* -- running -- */

/* The current token, checked to be one line of visible ASCII: it goes
 * into a header, and a newline in it would add headers of its own. On
 * failure writes why to @err (never any of the token's bytes). */
static int kube_read_token(const char *path, char **out, char *err,
                           size_t err_len)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = util_read_file(path, KUBE_MAX_TOKEN, &buf, &len);

    if (rc == -EFBIG) {
        snprintf(err, err_len, "token_file %s: over %u bytes, not a token",
                 path, KUBE_MAX_TOKEN);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, err_len, "token_file %s: %s", path, strerror(-rc));
        return rc;
    }
    util_rtrim(buf);
    len = strlen(buf);
    rc = 0;
    if (len == 0) {
        snprintf(err, err_len, "token_file %s: empty", path);
        rc = -EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < len; i++) {
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            snprintf(err, err_len, "token_file %s: not a bearer token (byte "
                     "%zu is not visible ASCII)", path, i);
            rc = -EINVAL;
        }
    }
    if (rc < 0) {
        explicit_bzero(buf, len);
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

/* Opening it is the only honest check: the loop's user may lack read
 * permission even where the file exists. curl reads it again later. */
static int kube_check_ca(const char *path, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;

        snprintf(err, err_len, "ca_file %s: %s", path, strerror(e));
        return -e;
    }
    close(fd);
    return 0;
}

/* Wipes the Authorization header before the list goes back to malloc. */
static void kube_free_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static void kube_free_run(struct probe_curl_run *cr)
{
    struct kube_run *r = (struct kube_run *)cr;

    kube_free_headers(r->headers);
    if (r->tok)
        json_tokener_free(r->tok);
    if (r->obj)
        json_object_put(r->obj);
}

/* Feeds body bytes to the tokener as they arrive, so no copy of the body
 * is kept beside its tree. 0, or -1 with r->json_err set. */
static int kube_feed(struct kube_run *r, const char *p, size_t n, size_t at)
{
    while (n > 0) {
        enum json_tokener_error je;
        size_t used;
        int chunk;

        if (r->obj) {               /* only whitespace may follow */
            for (; n > 0; p++, n--) {
                if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                    r->json_err = "data after the JSON value";
                    r->json_err_at = at;
                    return -1;
                }
                at++;
            }
            return 0;
        }
        chunk = n > INT_MAX ? INT_MAX : (int)n;
        r->obj = json_tokener_parse_ex(r->tok, p, chunk);
        je = json_tokener_get_error(r->tok);
        if (!r->obj && je != json_tokener_continue) {
            /* A bare "null" parses to NULL with success. */
            r->json_err = je == json_tokener_success
                              ? "not a JSON object"
                              : json_tokener_error_desc(je);
            r->json_err_at = at + json_tokener_get_parse_end(r->tok);
            return -1;
        }
        used = r->obj ? json_tokener_get_parse_end(r->tok) : (size_t)chunk;
        if (used == 0 || used > (size_t)chunk)
            used = (size_t)chunk;
        p += used;
        n -= used;
        at += used;
    }
    return 0;
}

static size_t kube_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct kube_run *r = arg;
    size_t n = size * nmemb, at = r->body_len;

    if (n > r->o->max_body - r->body_len) {
        r->body_capped = 1;
        return 0;                   /* makes curl stop: CURLE_WRITE_ERROR */
    }
    r->body_len += n;
    if (kube_feed(r, data, n, at) < 0)
        return 0;                   /* no point reading the rest */
    return n;
}

/* The Authorization header with @token (borrowed) and the Accept header,
 * into r->headers (freed, wiped, with the run). 0 or -ENOMEM. */
static int kube_headers(struct kube_run *r, const char *token)
{
    struct curl_slist *h;
    char *auth = NULL;

    if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
        return -ENOMEM;
    r->headers = curl_slist_append(NULL, "Accept: application/json");
    h = r->headers ? curl_slist_append(r->headers, auth) : NULL;
    explicit_bzero(auth, strlen(auth));
    free(auth);
    return h ? 0 : -ENOMEM;
}

/* Options for one run, after the common ones. Unlike the HTTP probe, a
 * run may reuse the previous run's connection: a TLS handshake every
 * interval from every node would only load the API server (curl reuses
 * one only for the same TLS settings). curl's built-in CA path is turned
 * off: only the cluster's CA may vouch for the API server. Redirects are
 * not followed (libcurl's default), so the token goes nowhere else.
 *
 * The token is read every run: projected service account tokens rotate
 * hourly. An unreadable token or CA file ends the run early: it becomes a
 * failed result through the poll hooks, not a silent skip. */
static int kube_setup(struct probe_curl_run *cr)
{
    struct kube_run *r = (struct kube_run *)cr;
    CURL *e = cr->easy;
    char *token = NULL;
    int rc;

    r->o = cr->t->opts;
    if (kube_read_token(r->o->token_file, &token, cr->errbuf,
                        sizeof(cr->errbuf)) < 0 ||
        kube_check_ca(r->o->ca_file, cr->errbuf, sizeof(cr->errbuf)) < 0) {
        rc = PROBE_CURL_EARLY;
        goto out;
    }
    r->tok = json_tokener_new_ex(KUBE_JSON_DEPTH);
    rc = r->tok ? kube_headers(r, token) : -ENOMEM;
    if (rc < 0)
        goto out;
    /* Trailing bytes are checked in kube_feed(), across chunks. */
    json_tokener_set_flags(r->tok, JSON_TOKENER_STRICT |
                                   JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                   JSON_TOKENER_VALIDATE_UTF8);
    if (curl_easy_setopt(e, CURLOPT_URL, r->o->req_url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
        probe_curl_tls(e, 1, r->o->ca_file) < 0)
        rc = -EINVAL;
out:
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return rc;
}

/* https only: the token is a credential for the whole cluster. */
static const struct probe_curl_type kube_curl = {
    .ops = &probe_kube_ops,
    .run_size = sizeof(struct kube_run),
    .protocols = "https",
    .write = kube_write,
    .setup = kube_setup,
    .free_run = kube_free_run,
};

static int kube_start(const struct agent_target *t, void **state,
                      CURLM *multi, struct probe_run **out)
{
    int rc;

    (void)state;                    /* nothing is kept between runs */
    rc = probe_curl_start(&kube_curl, t, multi, out);
    if (rc == PROBE_CURL_EARLY) {
        struct kube_run *r = (struct kube_run *)*out;

        r->next = kube_early;
        kube_early = r;
        rc = 0;
    }
    return rc;
}

/* Error text of a result; cut to fit, which is fine for a message. */
static void kube_err(struct probe_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void kube_err(struct probe_result *res, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
}

/* @obj's member @key if it has JSON type @type, else NULL. */
static struct json_object *kube_get(struct json_object *obj, const char *key,
                                    enum json_type type)
{
    struct json_object *v = NULL;

    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, type))
        return NULL;
    return v;
}

static const char *kube_get_str(struct json_object *obj, const char *key)
{
    struct json_object *v = kube_get(obj, key, json_type_string);

    return v ? json_object_get_string(v) : NULL;
}

/* Whether @kind is what the body says it is; writes why not to @err. */
static int kube_kind_is(struct json_object *obj, const char *kind, char *err,
                        size_t err_len)
{
    const char *k = kube_get_str(obj, "kind");

    if (k && strcmp(k, kind) == 0)
        return 1;
    snprintf(err, err_len, "response is not a %s (kind \"%.64s\")", kind,
             k ? k : "");
    return 0;
}

/* A Node is Ready when its Ready condition says "True"; "False" and
 * "Unknown" (the node controller's verdict on a silent kubelet) and a
 * missing condition all count as not ready. */
static int kube_node_ready(struct json_object *node)
{
    struct json_object *conds;
    size_t n;

    conds = kube_get(kube_get(node, "status", json_type_object),
                     "conditions", json_type_array);
    n = conds ? json_object_array_length(conds) : 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *c = json_object_array_get_idx(conds, i);
        const char *type = kube_get_str(c, "type");
        const char *status = kube_get_str(c, "status");

        if (type && strcmp(type, "Ready") == 0)
            return status && strcmp(status, "True") == 0;
    }
    return 0;
}

static int kube_count_nodes(struct json_object *obj, long *ready,
                            long *total, char *err, size_t err_len)
{
    struct json_object *items;
    size_t n;
    long r = 0;

    if (!kube_kind_is(obj, "NodeList", err, err_len))
        return -EINVAL;
    items = kube_get(obj, "items", json_type_array);
    if (!items) {
        snprintf(err, err_len, "NodeList without an items array");
        return -EINVAL;
    }
    n = json_object_array_length(items);
    for (size_t i = 0; i < n; i++)
        r += kube_node_ready(json_object_array_get_idx(items, i));
    *ready = r;
    *total = (long)n;
    return 0;
}

/* An int32 replica count at @key of @obj: @def when absent (the API
 * leaves out status counts that are 0), an error when not a count. */
static int kube_replicas(struct json_object *obj, const char *key,
                         const char *what, long def, long *out, char *err,
                         size_t err_len)
{
    struct json_object *v = NULL;
    int64_t n;

    if (!obj || !json_object_object_get_ex(obj, key, &v) || !v) {
        *out = def;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int)) {
        snprintf(err, err_len, "Deployment %s is not an integer", what);
        return -EINVAL;
    }
    n = json_object_get_int64(v);
    if (n < 0 || n > INT32_MAX) {
        snprintf(err, err_len, "Deployment %s out of range", what);
        return -EINVAL;
    }
    *out = (long)n;
    return 0;
}

/* spec.replicas is what is wanted (1 if unset, as the API defaults it);
 * status.readyReplicas is what serves. */
static int kube_count_replicas(struct json_object *obj, long *ready,
                               long *desired, char *err, size_t err_len)
{
    struct json_object *spec, *status;
    int rc;

    if (!kube_kind_is(obj, "Deployment", err, err_len))
        return -EINVAL;
    spec = kube_get(obj, "spec", json_type_object);
    if (!spec) {
        snprintf(err, err_len, "Deployment without a spec");
        return -EINVAL;
    }
    status = kube_get(obj, "status", json_type_object);
    rc = kube_replicas(spec, "replicas", "spec.replicas", 1, desired, err,
                       err_len);
    if (rc == 0)
        rc = kube_replicas(status, "readyReplicas", "status.readyReplicas",
                           0, ready, err, err_len);
    return rc;
}

/* Copies @s into the string field @f; leaves the field's default (which
 * free_unpacked() skips) when out of memory. */
static int kube_set_str(char **f, const char *s)
{
    char *c = strdup(s);

    if (!c)
        return -1;
    *f = c;
    return 0;
}

/* One metric-sample event as a heap tree (see probe.h), with @n_labels
 * name/value pairs in @labels. NULL when out of memory. */
static Sextant__V1__Event *kube_sample(const char *target, const char *name,
                                       double value,
                                       const char *const *labels,
                                       size_t n_labels)
{
    Sextant__V1__Event *ev = malloc(sizeof(*ev));
    Sextant__V1__MetricSample *ms = malloc(sizeof(*ms));
    int bad = 0;

    if (!ev || !ms) {
        free(ev);
        free(ms);
        return NULL;
    }
    sextant__v1__event__init(ev);
    sextant__v1__metric_sample__init(ms);
    ev->kind_case = SEXTANT__V1__EVENT__KIND_METRIC;
    ev->metric = ms;
    ms->value = value;
    bad |= kube_set_str(&ms->name, name);
    bad |= kube_set_str(&ms->target, target);
    if (n_labels > 0 && !bad) {
        ms->labels = calloc(n_labels, sizeof(*ms->labels));
        bad |= !ms->labels;
    }
    for (size_t i = 0; i < n_labels && !bad; i++) {
        Sextant__V1__Label *l = malloc(sizeof(*l));

        if (!l) {
            bad = 1;
            break;
        }
        sextant__v1__label__init(l);
        ms->labels[ms->n_labels++] = l;
        bad |= kube_set_str(&l->name, labels[2 * i]);
        bad |= kube_set_str(&l->value, labels[2 * i + 1]);
    }
    if (bad) {
        sextant__v1__event__free_unpacked(ev, NULL);
        return NULL;
    }
    return ev;
}

/* Appends the samples of @n (name, value) pairs to @res; 0 or -ENOMEM. */
static int kube_add_samples(struct probe_result *res, const char *target,
                            const char *const *names, const double *values,
                            size_t n, const char *const *labels,
                            size_t n_labels, int64_t unix_ms)
{
    for (size_t i = 0; i < n; i++) {
        Sextant__V1__Event *ev = kube_sample(target, names[i], values[i],
                                             labels, n_labels);
        if (!ev)
            return -ENOMEM;
        ev->unix_ms = unix_ms;
        if (probe_result_add_extra(res, ev) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* A 200 with a complete JSON object: the samples, or an error. */
static int kube_samples(const struct kube_run *r, struct probe_result *res)
{
    static const char *const node_names[] = {
        "kube_nodes_ready", "kube_nodes_total", "kube_nodes_ready_ratio",
    };
    static const char *const dep_names[] = {
        "kube_deployment_ready_replicas", "kube_deployment_desired_replicas",
        "kube_deployment_ready_ratio",
    };
    const char *labels[4];
    double v[3];
    long a, b;
    int rc;

    if (r->o->resource == KUBE_NODES) {
        rc = kube_count_nodes(r->obj, &a, &b, res->error,
                              sizeof(res->error));
        if (rc < 0)
            return rc;
        /* No nodes at all: none of the capacity is there. */
        v[0] = (double)a;
        v[1] = (double)b;
        v[2] = b > 0 ? (double)a / (double)b : 0.0;
        rc = kube_add_samples(res, r->cr.t->name, node_names, v, 3, NULL,
                              0, r->cr.base.start_unix_ms);
    } else {
        rc = kube_count_replicas(r->obj, &a, &b, res->error,
                                 sizeof(res->error));
        if (rc < 0)
            return rc;
        /* Scaled to zero: everything wanted is there. */
        v[0] = (double)a;
        v[1] = (double)b;
        v[2] = b > 0 ? (double)a / (double)b : 1.0;
        labels[0] = "namespace";
        labels[1] = r->o->ns;
        labels[2] = "deployment";
        labels[3] = r->o->name;
        rc = kube_add_samples(res, r->cr.t->name, dep_names, v, 3, labels,
                              2, r->cr.base.start_unix_ms);
    }
    if (rc < 0)
        kube_err(res, "out of memory for the metric samples");
    return rc;
}

/* A non-200 answer: the API server explains itself in a Status object. */
static void kube_status_error(const struct kube_run *r, long status,
                              struct probe_result *res)
{
    const char *msg = NULL;

    if (r->obj && !r->json_err && kube_get_str(r->obj, "kind") &&
        strcmp(kube_get_str(r->obj, "kind"), "Status") == 0)
        msg = kube_get_str(r->obj, "message");
    if (status == 401)
        kube_err(res, "status 401 Unauthorized: the API server rejected "
                 "the token from %s", r->o->token_file);
    else if (status == 403)
        kube_err(res, "status 403 Forbidden, check the service account's "
                 "RBAC: %s", msg ? msg : "no reason given");
    else
        kube_err(res, "status %ld: %s", status, msg ? msg : "no Status "
                 "message");
}

/* A transfer that failed before a status: curl's words and, for a
 * certificate curl could not verify, the CA file it was checked against. */
static void kube_curl_error(const struct kube_run *r, CURLcode code,
                            struct probe_result *res)
{
    const char *what = probe_curl_errtext(r->cr.errbuf, code);
    int ca = code == CURLE_PEER_FAILED_VERIFICATION ||
             code == CURLE_SSL_CACERT_BADFILE;

    kube_err(res, "%s%s%s%s", what,
             ca ? " (ca_file " : "", ca ? r->o->ca_file : "", ca ? ")" : "");
}

static void kube_finish(struct probe_run *run, CURLM *multi, CURL *easy,
                        CURLcode code, struct probe_result *res)
{
    struct kube_run *r = (struct kube_run *)run;
    long status;
    int stopped;

    (void)easy;                     /* one transfer per run: r->cr.easy */
    status = probe_curl_result(&r->cr, res);
    /* We stopped reading a body too long or not JSON: the status is
     * known, and a proxy's HTML error page must still say 502. */
    stopped = code == CURLE_WRITE_ERROR && status > 0 &&
              (r->body_capped || r->json_err);
    if (code != CURLE_OK && !stopped)
        kube_curl_error(r, code, res);
    else if (status != 200)
        kube_status_error(r, status, res);
    else if (r->body_capped)
        kube_err(res, "response over the %zu KiB cap, not read",
                 r->o->max_body >> 10);
    else if (r->json_err)
        kube_err(res, "invalid JSON at byte %zu: %s", r->json_err_at,
                 r->json_err);
    else if (!r->obj && r->body_len == 0)
        kube_err(res, "empty response body");
    else if (!r->obj)
        kube_err(res, "invalid JSON: truncated after %zu bytes",
                 r->body_len);
    else if (kube_samples(r, res) == 0)
        res->ok = 1;
    if (!res->ok)
        probe_result_clear(res);    /* no samples from a failed run */
    probe_printable(res->error);
    probe_curl_release(&r->cr, multi);
}

static void kube_cancel(struct probe_run *run, CURLM *multi)
{
    struct kube_run *r = (struct kube_run *)run;

    for (struct kube_run **p = &kube_early; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    probe_curl_release(&r->cr, multi);
}

/* -- early failures, through the poll hooks -- */

static size_t kube_poll_fds(struct curl_waitfd *fds, size_t max)
{
    (void)fds;
    (void)max;
    /* No fds: this hook exists because the loop asks poll_timeout_ms()
     * only of types that have it. */
    return 0;
}

static long kube_poll_timeout_ms(void)
{
    return kube_early ? 0 : -1;
}

static void kube_poll_process(const struct curl_waitfd *fds, size_t n,
                              probe_complete_fn done, void *arg)
{
    struct kube_run *list = kube_early;

    (void)fds;
    (void)n;
    kube_early = NULL;              /* detached: runs started meanwhile
                                       wait for the next turn */
    while (list) {
        struct kube_run *r = list;
        struct probe_result res;

        list = r->next;
        memset(&res, 0, sizeof(res));
        kube_err(&res, "%s", r->cr.errbuf);
        probe_printable(res.error);
        done(&r->cr.base, &res, arg);
        probe_curl_release(&r->cr, NULL);
    }
}

const struct probe_ops probe_kube_ops = {
    .type = PROBE_KUBE,
    .name = "kube",
    .keys = kube_keys,
    .url_required = 0,
    .parse = kube_parse,
    .free_opts = kube_free_opts,
    .start = kube_start,
    .finish = kube_finish,
    .cancel = kube_cancel,
    .poll_fds = kube_poll_fds,
    .poll_timeout_ms = kube_poll_timeout_ms,
    .poll_process = kube_poll_process,
};
