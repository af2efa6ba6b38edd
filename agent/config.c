/* config.c -- parse and check agent.yaml into a struct agent_config. Knows
 * the schema and its defaults; the YAML mechanics and the one-line error
 * format are common/yconf.c's. Starts nothing and opens no spool. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "util.h"
#include "wire.h"
#include "yconf.h"

#define CONFIG_MAX_TOKEN_FILE 4096u     /* a token, a newline: far less */
#define CONFIG_DEF_INTERVAL   10000LL          /* ms */
#define CONFIG_DEF_TIMEOUT    5000LL           /* ms */
#define CONFIG_MIN_INTERVAL   100LL            /* tests probe quickly */
#define CONFIG_MAX_INTERVAL   (24LL * 3600 * 1000)
#define CONFIG_MIN_TIMEOUT    10LL
#define CONFIG_MAX_TIMEOUT    (3600LL * 1000)
#define CONFIG_INGEST_PATH    "/v1/ingest"
/* Route 53's defaults: 3 failures to fail, and we ask 2 to recover. */
#define CONFIG_DEF_HEALTHY_AFTER   2u
#define CONFIG_DEF_UNHEALTHY_AFTER 3u
/* HTTP status codes are three digits from 1xx to 5xx; without
 * expect_status, success and redirects (2xx, 3xx) count as up, as with
 * Route 53's HTTP health checks. */
#define CONFIG_STATUS_MIN    100
#define CONFIG_STATUS_MAX    599
#define CONFIG_OK_STATUS_MIN 200
#define CONFIG_OK_STATUS_MAX 399
/* More results in a row than this is hours of a flapping target hidden. */
#define CONFIG_MAX_THRESHOLD       100LL
/* spool.max_bytes: 64 MiB is hours of a busy agent's events; below 64 KiB
 * a single batch would not fit. */
#define CONFIG_DEF_SPOOL_BYTES  (64LL << 20)
#define CONFIG_MIN_SPOOL_BYTES  (64LL << 10)
#define CONFIG_MAX_SPOOL_BYTES  (64LL << 30)
/* shipping.*: a batch must fit the collector's caps (wire.h), whatever
 * the compression ratio, hence at most 4 MiB of packed events. */
#define CONFIG_DEF_BATCH_EVENTS 5000LL
#define CONFIG_DEF_BATCH_BYTES  (1LL << 20)
#define CONFIG_MIN_BATCH_BYTES  (1LL << 10)
#define CONFIG_MAX_BATCH_BYTES  (4LL << 20)
#define CONFIG_DEF_BATCH_AGE    1000LL          /* ms */
#define CONFIG_MAX_BATCH_AGE    60000LL
#define CONFIG_DEF_BACKOFF_INIT 1000LL
#define CONFIG_DEF_BACKOFF_MAX  60000LL
#define CONFIG_MIN_BACKOFF      10LL            /* tests retry quickly */
#define CONFIG_MAX_BACKOFF      (3600LL * 1000)
/* 5 s: Kubernetes gives 30 s between SIGTERM and SIGKILL by default. */
#define CONFIG_DEF_GRACE        5000LL
#define CONFIG_MAX_GRACE        (600LL * 1000)

static const char *const config_top_keys[] = {
    "cluster", "region", "node", "collector", "collectors", "spool",
    "shipping", "interval", "timeout", "healthy_after", "unhealthy_after",
    "probers", "log_level", "admin", "targets", NULL
};
static const char *const config_admin_keys[] = { "enabled", "listen", NULL };
static const char *const config_collector_keys[] = {
    "url", "token", "token_file",
    "ca_file", "tls_verify", "client_cert", "client_key", NULL
};
static const char *const config_spool_keys[] = { "path", "max_bytes", NULL };
static const char *const config_shipping_keys[] = {
    "batch_max_events", "batch_max_bytes", "batch_max_age", "backoff_initial",
    "backoff_max", "shutdown_grace", NULL
};
/* Keys every target takes; its type adds its own (probe_ops->keys). */
static const char *const config_target_keys[] = {
    "name", "type", "interval", "timeout", "healthy_after", "unhealthy_after",
    "probers", NULL
};
#define CONFIG_N_TARGET_KEYS 7u
/* probers: N of the cluster's live agents probe the target (1 <= N); a
 * cluster has at most WIRE_MAX_LIVE listed nodes anyway. */
#define CONFIG_MAX_PROBERS   1024LL
#define CONFIG_MAX_TYPE_KEYS 32u

static void config_target_free(struct agent_target *t)
{
    const struct probe_ops *ops = probe_ops_find(t->type);

    if (ops && ops->free_opts)
        ops->free_opts(t->opts);
    free(t->name);
    free(t->url);
    free(t->expect_status);
    free(t->fingerprint);
    free(t->identity);
}

static void config_collector_free(struct agent_collector *c)
{
    free(c->url);
    free(c->ingest_url);
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    agent_tls_free(&c->tls);
}

int agent_collector_equal(const struct agent_collector *a,
                          const struct agent_collector *b)
{
    return strcmp(a->ingest_url, b->ingest_url) == 0 &&
           strcmp(a->token, b->token) == 0 &&
           agent_tls_equal(&a->tls, &b->tls);
}

void agent_config_free(struct agent_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_targets; i++)
        config_target_free(&cfg->targets[i]);
    free(cfg->targets);
    free(cfg->cluster);
    free(cfg->region);
    free(cfg->node);
    for (size_t i = 0; i < cfg->n_collectors; i++)
        config_collector_free(&cfg->collectors[i]);
    free(cfg->collectors);
    free(cfg->spool_path);
    free(cfg->admin_listen);
    memset(cfg, 0, sizeof(*cfg));
}

int agent_target_status_ok(const struct agent_target *t, long status)
{
    if (!t->expect_status)
        return status >= CONFIG_OK_STATUS_MIN &&
               status <= CONFIG_OK_STATUS_MAX;
    for (size_t i = 0; i < t->n_expect_status; i++)
        if (t->expect_status[i] == status)
            return 1;
    return 0;
}

/* Reads a required name-like string and bounds its length, since it ends
 * up in every event the collector stores; printable, as the collector
 * wants names (a YAML "\n" escape would forge log lines). */
static int config_name(struct yconf *yc, yaml_node_t *map, const char *ctx,
                       const char *key, int required, char **out)
{
    char *s = NULL;
    int rc = yconf_str(yc, map, ctx, key, required, &s);

    if (rc)
        return rc;
    if (strlen(s) > AGENT_CONFIG_MAX_NAME) {
        free(s);
        return yconf_fail(yc, yconf_find(yc, map, key), ctx, key,
                          "longer than %u bytes", AGENT_CONFIG_MAX_NAME);
    }
    if (wire_name_check(s, strlen(s)) < 0) {
        free(s);
        return yconf_fail(yc, yconf_find(yc, map, key), ctx, key,
                          "holds a control character");
    }
    *out = s;
    return 0;
}

/* Parses @url with libcurl's own parser, so that what we accept is exactly
 * what the transfer will accept later. On success *out is the handle;
 * the caller frees it with curl_url_cleanup(). */
static int config_url(struct yconf *yc, yaml_node_t *map, const char *ctx,
                      const char *key, const char *url, CURLU **out)
{
    yaml_node_t *at = yconf_find(yc, map, key);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    CURLUcode uc;
    int rc = -EINVAL;

    if (!u)
        return -ENOMEM;
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        yconf_fail(yc, at, ctx, key, "not a valid URL: %s",
                   curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        yconf_fail(yc, at, ctx, key, "scheme must be http or https, got "
                   "\"%s\"", scheme ? scheme : "");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        host[0] == '\0') {
        yconf_fail(yc, at, ctx, key, "URL has no host");
        goto out;
    }
    *out = u;
    u = NULL;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int agent_config_url(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     const char *key, int required, char **out)
{
    CURLU *u = NULL;
    char *url = NULL;
    int rc = yconf_str(yc, m, ctx, key, required, &url);

    if (rc)
        return rc;
    rc = config_url(yc, m, ctx, key, url, &u);
    curl_url_cleanup(u);
    if (rc < 0) {
        free(url);
        return rc;
    }
    *out = url;
    return 0;
}

/* The collector's ingest URL: its base URL with /v1/ingest appended to the
 * path, so "http://h:8480" and "http://h:8480/sextant/" both work. */
static int config_ingest_url(struct yconf *yc, yaml_node_t *map,
                             const char *ctx, struct agent_collector *c)
{
    CURLU *u = NULL;
    char *path = NULL, *extra = NULL, *full = NULL, *joined = NULL;
    size_t len;
    int rc;

    rc = config_url(yc, map, ctx, "url", c->url, &u);
    if (rc < 0)
        return rc;
    rc = -EINVAL;
    if (curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
        yconf_fail(yc, yconf_find(yc, map, "url"), ctx, "url",
                   "base URL must not have a query or fragment");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rc = -ENOMEM;
        goto out;
    }
    len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    joined = malloc(len + sizeof(CONFIG_INGEST_PATH));
    if (!joined) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(joined, path, len);
    memcpy(joined + len, CONFIG_INGEST_PATH, sizeof(CONFIG_INGEST_PATH));
    if (curl_url_set(u, CURLUPART_PATH, joined, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        rc = -ENOMEM;
        goto out;
    }
    c->ingest_url = strdup(full);
    rc = c->ingest_url ? 0 : -ENOMEM;
out:
    free(joined);
    curl_free(full);
    curl_free(path);
    curl_free(extra);
    curl_url_cleanup(u);
    return rc;
}

/* The bearer token, inline or from a file (a mounted Secret), not both. */
static int config_token(struct yconf *yc, yaml_node_t *m, const char *ctx,
                        struct agent_collector *col)
{
    char *tok = NULL, *file = NULL;
    const char *key;
    size_t len;
    int rc, has_tok, has_file;

    rc = yconf_str(yc, m, ctx, "token", 0, &tok);
    if (rc < 0)
        return rc;
    has_tok = rc == 0;
    rc = yconf_str(yc, m, ctx, "token_file", 0, &file);
    if (rc < 0)
        goto out;
    has_file = rc == 0;
    if (has_tok && has_file) {
        rc = yconf_fail(yc, yconf_find(yc, m, "token_file"), ctx,
                        "token_file", "give exactly one of token and "
                        "token_file, not both");
        goto out;
    }
    if (!has_tok && !has_file) {
        rc = yconf_fail(yc, m, ctx, "token", "required key is "
                        "missing (or give token_file)");
        goto out;
    }
    key = has_file ? "token_file" : "token";
    if (has_file) {
        rc = util_read_file(file, CONFIG_MAX_TOKEN_FILE, &tok, &len);
        if (rc < 0) {
            rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                            "cannot read %s: %s", file, strerror(-rc));
            goto out;
        }
        util_rtrim(tok);
    }
    /* It goes into an HTTP header: no control bytes, no spaces. */
    len = strlen(tok);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tok[i];
        if (c <= ' ' || c == 0x7f) {
            len = 0;
            break;
        }
    }
    if (len == 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                        "token must be non-empty, without spaces or "
                        "control characters");
        goto out;
    }
    col->token = tok;
    tok = NULL;
    rc = 0;
out:
    if (tok) {
        explicit_bzero(tok, strlen(tok));
        free(tok);
    }
    free(file);
    return rc;
}

#define CONFIG_MAX_PEM_FILE (1u << 20)  /* a long chain is some 10 KiB */

void agent_tls_free(struct agent_tls *tls)
{
    free(tls->ca_file);
    free(tls->client_cert);
    free(tls->client_key);
    memset(tls, 0, sizeof(*tls));
}

static int config_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int agent_tls_equal(const struct agent_tls *a, const struct agent_tls *b)
{
    return a->verify == b->verify && config_str_eq(a->ca_file, b->ca_file) &&
           config_str_eq(a->client_cert, b->client_cert) &&
           config_str_eq(a->client_key, b->client_key);
}

/* Reads file key @key of @m into *out (the path, as written) after
 * checking it now, so that a wrong path is a config error with its line
 * rather than a failed handshake later: readable, and PEM. libcurl reads
 * the file itself when it connects. */
static int config_pem_path(struct yconf *yc, yaml_node_t *m, const char *ctx,
                           const char *key, char **out)
{
    char *path = NULL, *text = NULL;
    size_t len;
    int rc;

    rc = yconf_str(yc, m, ctx, key, 0, &path);
    if (rc)
        return rc;
    rc = util_read_file(path, CONFIG_MAX_PEM_FILE, &text, &len);
    if (rc < 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                        "cannot read %s: %s", path,
                        rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
        goto out;
    }
    if (!strstr(text, "-----BEGIN ")) {
        rc = yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                        "%s is not PEM (no -----BEGIN line)", path);
        goto out;
    }
    *out = path;
    path = NULL;
out:
    if (text) {
        explicit_bzero(text, len);  /* may be a private key */
        free(text);
    }
    free(path);
    return rc;
}

int agent_config_tls(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     const char *url, struct agent_tls *out)
{
    static const char *const keys[] = {
        "ca_file", "tls_verify", "client_cert", "client_key"
    };
    struct agent_tls t = { .verify = 1 };
    int rc;

    if (strncasecmp(url, "https://", 8) != 0) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (yconf_find(yc, m, keys[i]))
                return yconf_fail(yc, yconf_find(yc, m, keys[i]), ctx,
                                  keys[i], "TLS options need an https:// "
                                  "url");
    }
    rc = config_pem_path(yc, m, ctx, "ca_file", &t.ca_file);
    if (rc >= 0)
        rc = yconf_bool(yc, m, ctx, "tls_verify", 0, &t.verify);
    if (rc >= 0)
        rc = config_pem_path(yc, m, ctx, "client_cert", &t.client_cert);
    if (rc >= 0)
        rc = config_pem_path(yc, m, ctx, "client_key", &t.client_key);
    if (rc >= 0 && !t.client_cert != !t.client_key)
        rc = yconf_fail(yc, m, ctx, t.client_cert ? "client_key"
                                                  : "client_cert",
                        "give client_cert and client_key together");
    if (rc < 0) {
        agent_tls_free(&t);
        return rc;
    }
    *out = t;
    return 0;
}

/* One collector mapping, under "collector" or an item of "collectors":
 * every per-collector key is read here (@ctx names where, for errors). */
static int config_collector_entry(struct yconf *yc, yaml_node_t *m,
                                  const char *ctx, struct agent_collector *c)
{
    int rc;

    if (!m || m->type != YAML_MAPPING_NODE)
        return yconf_fail(yc, m, ctx, NULL, "expected a mapping");
    rc = yconf_check_keys(yc, m, ctx, config_collector_keys);
    if (rc == 0)
        rc = yconf_str(yc, m, ctx, "url", 1, &c->url);
    if (rc == 0)
        rc = config_ingest_url(yc, m, ctx, c);
    if (rc == 0)
        rc = config_token(yc, m, ctx, c);
    if (rc == 0)
        rc = agent_config_tls(yc, m, ctx, c->url, &c->tls);
    return rc;
}

/* Reads collector @i (of @n) from @m under @ctx, allocating the array at
 * the first. Each collector gets every event, so two entries for one
 * ingest URL would be one collector twice: refused. */
static int config_collector_at(struct yconf *yc, yaml_node_t *m,
                               const char *ctx, size_t i, size_t n,
                               struct agent_config *cfg)
{
    struct agent_collector *c;
    int rc;

    if (i == 0) {                       /* not yconf_array: "collector" */
        cfg->collectors = calloc(n, sizeof(*cfg->collectors));
        if (!cfg->collectors)
            return -ENOMEM;
    }
    c = &cfg->collectors[i];
    cfg->n_collectors = i + 1;          /* so free() sees this entry */
    rc = config_collector_entry(yc, m, ctx, c);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->collectors[j].ingest_url, c->ingest_url) == 0)
            return yconf_fail(yc, yconf_find(yc, m, "url"), ctx, "url",
                              "same collector as collectors[%zu]", j);
    return 0;
}

/* One item of collectors: [{...}, ...]. */
static int config_collector_item(struct yconf *yc,
                                 const struct yconf_item *it, void *arg)
{
    if (it->i == 0 && it->n > AGENT_CONFIG_MAX_COLLECTORS)
        return yconf_fail(yc, it->list, it->up, it->key, "at most %u "
                          "collectors", AGENT_CONFIG_MAX_COLLECTORS);
    return config_collector_at(yc, it->node, it->ctx, it->i, it->n, arg);
}

/* collector: {...} or collectors: [{...}, ...], exactly one of them. */
static int config_collectors(struct yconf *yc, yaml_node_t *root,
                             struct agent_config *cfg)
{
    yaml_node_t *one = yconf_find(yc, root, "collector");
    int rc;

    if (one && yconf_find(yc, root, "collectors"))
        return yconf_fail(yc, yconf_find(yc, root, "collectors"), "",
                          "collectors", "give exactly one of collector and "
                          "collectors, not both");
    if (one)
        return config_collector_at(yc, one, "collector", 0, 1, cfg);
    rc = yconf_each(yc, root, "", "collectors", 0, YCONF_ITEMS_ANY,
                    config_collector_item, cfg);
    if (rc == 1)
        return yconf_fail(yc, root, "", "collector", "required key is "
                          "missing (or give collectors)");
    return rc;
}

static int config_spool(struct yconf *yc, yaml_node_t *root,
                        struct agent_config *cfg)
{
    yaml_node_t *m;
    int rc;

    rc = yconf_map(yc, root, "", "spool", 1, &m);
    if (rc)
        return rc;
    rc = yconf_check_keys(yc, m, "spool", config_spool_keys);
    if (rc == 0)
        rc = yconf_str(yc, m, "spool", "path", 1, &cfg->spool_path);
    if (rc == 0)
        rc = yconf_size(yc, m, "spool", "max_bytes", 0,
                        CONFIG_MIN_SPOOL_BYTES, CONFIG_MAX_SPOOL_BYTES,
                        &cfg->spool_max_bytes);
    return rc < 0 ? rc : 0;
}

/* shipping: {batch_max_events: 5000, ...}, every key optional. */
static int config_shipping(struct yconf *yc, yaml_node_t *root,
                           struct agent_config *cfg)
{
    const char *ctx = "shipping";
    yaml_node_t *m;
    int rc;

    rc = yconf_map(yc, root, "", "shipping", 0, &m);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = yconf_check_keys(yc, m, ctx, config_shipping_keys);
    if (rc >= 0)
        rc = yconf_int(yc, m, ctx, "batch_max_events", 0, 1, WIRE_MAX_EVENTS,
                       &cfg->batch_max_events);
    if (rc >= 0)
        rc = yconf_size(yc, m, ctx, "batch_max_bytes", 0,
                        CONFIG_MIN_BATCH_BYTES, CONFIG_MAX_BATCH_BYTES,
                        &cfg->batch_max_bytes);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, ctx, "batch_max_age", 0, 0,
                               CONFIG_MAX_BATCH_AGE, &cfg->batch_max_age_ms);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, ctx, "backoff_initial", 0,
                               CONFIG_MIN_BACKOFF, CONFIG_MAX_BACKOFF,
                               &cfg->backoff_initial_ms);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, ctx, "backoff_max", 0,
                               CONFIG_MIN_BACKOFF, CONFIG_MAX_BACKOFF,
                               &cfg->backoff_max_ms);
    /* A cap below the start is a mistake when written, and a default cap
     * below a long backoff_initial just follows it. */
    if (rc == 0 && cfg->backoff_max_ms < cfg->backoff_initial_ms)
        rc = yconf_fail(yc, yconf_find(yc, m, "backoff_max"), ctx,
                        "backoff_max", "must not be below backoff_initial "
                        "(%lldms)", cfg->backoff_initial_ms);
    else if (rc == 1 && cfg->backoff_max_ms < cfg->backoff_initial_ms)
        cfg->backoff_max_ms = cfg->backoff_initial_ms;
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, ctx, "shutdown_grace", 0, 0,
                               CONFIG_MAX_GRACE, &cfg->shutdown_grace_ms);
    return rc < 0 ? rc : 0;
}

/* admin: {enabled: true, listen: "127.0.0.1:9464"}, all optional. An IP
 * literal only: the listener starts before anything could resolve. */
static int config_admin(struct yconf *yc, yaml_node_t *root,
                        struct agent_config *cfg)
{
    struct sockaddr_storage ss;
    yaml_node_t *m = NULL;
    char *listen = NULL;
    int enabled = 1, rc;

    rc = yconf_map(yc, root, "", "admin", 0, &m);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        rc = yconf_check_keys(yc, m, "admin", config_admin_keys);
        if (rc == 0)
            rc = yconf_bool(yc, m, "admin", "enabled", 0, &enabled);
        if (rc >= 0)
            rc = yconf_str(yc, m, "admin", "listen", 0, &listen);
        if (rc < 0)
            goto out;
        cfg->admin_listen_set = rc == 0 && enabled;
    }
    rc = 0;
    if (!enabled)
        goto out;
    if (!listen) {
        listen = strdup(ADMIN_DEFAULT_LISTEN);
        if (!listen) {
            rc = -ENOMEM;
            goto out;
        }
    }
    if (util_sockaddr(listen, &ss) < 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, "listen"), "admin", "listen",
                        "expected IP:PORT or [IPv6]:PORT, got \"%s\"",
                        listen);
        goto out;
    }
    cfg->admin_listen = listen;
    listen = NULL;
out:
    free(listen);
    return rc;
}

/* One item of expect_status: an HTTP status code. */
static int config_expect_item(struct yconf *yc, const struct yconf_item *it,
                              void *arg)
{
    struct agent_target *t = arg;
    const char *s = it->node && it->node->type == YAML_SCALAR_NODE
                        ? (const char *)it->node->data.scalar.value : NULL;
    char *end;
    long v;

    if (it->n > AGENT_CONFIG_MAX_EXPECT)
        return yconf_fail(yc, it->list, it->up, it->key, "at most %u codes",
                          AGENT_CONFIG_MAX_EXPECT);
    t->expect_status = yconf_array(it, t->expect_status,
                                   sizeof(*t->expect_status));
    if (!t->expect_status)
        return -ENOMEM;
    if (!s)
        return yconf_fail(yc, it->node, it->ctx, NULL,
                          "expected an HTTP status");
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < CONFIG_STATUS_MIN ||
        v > CONFIG_STATUS_MAX)
        return yconf_fail(yc, it->node, it->ctx, NULL, "expected an HTTP "
                          "status from %d to %d, got \"%s\"",
                          CONFIG_STATUS_MIN, CONFIG_STATUS_MAX, s);
    t->expect_status[it->i] = (int)v;
    t->n_expect_status = it->i + 1;
    return 0;
}

/* Whether @key is one of the NULL-terminated @keys. */
static int config_has_key(const char *const *keys, const char *key)
{
    for (; keys && *keys; keys++)
        if (strcmp(*keys, key) == 0)
            return 1;
    return 0;
}

/* The target's type, read first: it decides which other keys are valid. */
static int config_target_type(struct yconf *yc, yaml_node_t *m,
                              const char *ctx, struct agent_target *t,
                              const struct probe_ops **ops)
{
    char *type = NULL;
    int rc;

    t->type = PROBE_HTTP;
    rc = yconf_str(yc, m, ctx, "type", 0, &type);
    if (rc == 0 && probe_type_parse(type, &t->type) < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "type"), ctx, "type",
                        "unknown probe type \"%s\"; known: %s", type,
                        probe_type_names());
    free(type);
    if (rc < 0)
        return rc;
    *ops = probe_ops_find(t->type);
    return *ops ? 0 : yconf_fail(yc, m, ctx, "type", "type not built in");
}

/* Common keys plus the type's own, as one NULL-terminated list. */
static int config_target_check_keys(struct yconf *yc, yaml_node_t *m,
                                    const char *ctx,
                                    const struct probe_ops *ops)
{
    const char *keys[CONFIG_N_TARGET_KEYS + CONFIG_MAX_TYPE_KEYS + 1];
    size_t n = 0;

    for (size_t i = 0; config_target_keys[i]; i++)
        keys[n++] = config_target_keys[i];
    for (size_t i = 0; ops->keys && ops->keys[i] &&
                       i < CONFIG_MAX_TYPE_KEYS; i++)
        keys[n++] = ops->keys[i];
    keys[n] = NULL;
    return yconf_check_keys(yc, m, ctx, keys);
}

/* The canonical text of the target's mapping plus the defaults it
 * inherited: equal fingerprints mean a reload left the target alone. */
static int config_fingerprint(struct yconf *yc, yaml_node_t *m,
                              struct agent_target *t)
{
    char *text = NULL, *fp = NULL;
    int rc = yconf_node_text(yc, m, &text);

    if (rc < 0)
        return rc;
    if (asprintf(&fp, "%s|%lld|%lld|%u|%u|%lld", text, t->interval_ms,
                 t->timeout_ms, t->healthy_after, t->unhealthy_after,
                 t->probers) < 0)
        fp = NULL;
    free(text);
    if (!fp)
        return -ENOMEM;
    t->fingerprint = fp;
    return 0;
}

/* What the target is, as opposed to how it is probed: its type, name and
 * where it points (the text of url, address or query, whichever it has).
 * Equal identities mean a reload probes the same thing, so its health
 * stays meaningful whatever else changed (interval, timeout, thresholds,
 * expect_status...). The texts are canonical (quoted), so the separator
 * cannot be faked by a name or URL. */
static int config_identity(struct yconf *yc, yaml_node_t *m,
                           struct agent_target *t)
{
    static const char *const where[] = { "url", "address", "query" };
    char *text[3] = { NULL, NULL, NULL };
    char *id = NULL;
    int rc = 0;

    for (size_t i = 0; i < 3 && rc == 0; i++) {
        yaml_node_t *n = yconf_find(yc, m, where[i]);

        if (n)
            rc = yconf_node_text(yc, n, &text[i]);
    }
    if (rc < 0)
        goto out;
    if (asprintf(&id, "%d|%s|%s|%s|%s", (int)t->type, t->name,
                 text[0] ? text[0] : "", text[1] ? text[1] : "",
                 text[2] ? text[2] : "") < 0) {
        rc = -ENOMEM;
        goto out;
    }
    t->identity = id;
out:
    for (size_t i = 0; i < 3; i++)
        free(text[i]);
    return rc;
}

/* A health threshold: consecutive results to change state. */
static int config_threshold(struct yconf *yc, yaml_node_t *m, const char *ctx,
                            const char *key, unsigned *out)
{
    long long v;
    int rc = yconf_int(yc, m, ctx, key, 0, 1, CONFIG_MAX_THRESHOLD, &v);

    if (rc == 0)
        *out = (unsigned)v;
    return rc;
}

/* Reads one target, inheriting interval, timeout and thresholds from
 * @cfg. */
static int config_target(struct yconf *yc, yaml_node_t *m, const char *ctx,
                         const struct agent_config *cfg,
                         struct agent_target *t)
{
    const struct probe_ops *ops = NULL;
    int rc;

    rc = config_target_type(yc, m, ctx, t, &ops);
    if (rc == 0)
        rc = config_target_check_keys(yc, m, ctx, ops);
    if (rc == 0)
        rc = config_name(yc, m, ctx, "name", 1, &t->name);
    if (rc == 0 && config_has_key(ops->keys, "url"))
        rc = agent_config_url(yc, m, ctx, "url", ops->url_required, &t->url);
    t->interval_ms = cfg->interval_ms;
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, ctx, "interval", 0, CONFIG_MIN_INTERVAL,
                               CONFIG_MAX_INTERVAL, &t->interval_ms);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, ctx, "timeout", 0, CONFIG_MIN_TIMEOUT,
                               CONFIG_MAX_TIMEOUT, &t->timeout_ms);
    /* A probe still running when the next one is due would skip a beat:
     * an inherited timeout shrinks to the interval, an explicit one must
     * fit in it. */
    if (rc == 1)
        t->timeout_ms = cfg->timeout_ms < t->interval_ms ? cfg->timeout_ms
                                                         : t->interval_ms;
    else if (rc == 0 && t->timeout_ms > t->interval_ms)
        rc = yconf_fail(yc, yconf_find(yc, m, "timeout"), ctx, "timeout",
                        "must not exceed the target's interval (%lldms)",
                        t->interval_ms);
    t->healthy_after = cfg->healthy_after;
    t->unhealthy_after = cfg->unhealthy_after;
    if (rc >= 0)
        rc = config_threshold(yc, m, ctx, "healthy_after", &t->healthy_after);
    if (rc >= 0)
        rc = config_threshold(yc, m, ctx, "unhealthy_after",
                              &t->unhealthy_after);
    t->probers = cfg->probers;
    if (rc >= 0)
        rc = yconf_int(yc, m, ctx, "probers", 0, 1, CONFIG_MAX_PROBERS,
                       &t->probers);
    if (rc >= 0 && config_has_key(ops->keys, "expect_status"))
        rc = yconf_each(yc, m, ctx, "expect_status", 0, YCONF_ITEMS_ANY,
                        config_expect_item, t);
    if (rc >= 0 && ops->parse)
        rc = ops->parse(yc, m, ctx, t);
    if (rc >= 0)
        rc = config_fingerprint(yc, m, t);
    if (rc >= 0)
        rc = config_identity(yc, m, t);
    return rc < 0 ? rc : 0;
}

/* One item of targets, its name unique among them. */
static int config_target_item(struct yconf *yc, const struct yconf_item *it,
                              void *arg)
{
    struct agent_config *cfg = arg;
    struct agent_target *t;
    int rc;

    cfg->targets = yconf_array(it, cfg->targets, sizeof(*cfg->targets));
    if (!cfg->targets)
        return -ENOMEM;
    t = &cfg->targets[it->i];
    cfg->n_targets = it->i + 1;         /* so free() sees this entry */
    rc = config_target(yc, it->node, it->ctx, cfg, t);
    if (rc < 0)
        return rc;
    /* Quadratic, but a config has hundreds of targets, not millions. */
    for (size_t j = 0; j < it->i; j++)
        if (strcmp(cfg->targets[j].name, t->name) == 0)
            return yconf_fail(yc, yconf_find(yc, it->node, "name"), it->ctx,
                              "name", "duplicate target name \"%s\" (first "
                              "used by targets[%zu])", t->name, j);
    return 0;
}

/* Interval, timeout and log level at the top: defaults for the rest. */
static int config_defaults(struct yconf *yc, yaml_node_t *root,
                           struct agent_config *cfg)
{
    char *level = NULL;
    int rc, has_timeout;

    rc = yconf_duration_ms(yc, root, "", "interval", 0, CONFIG_MIN_INTERVAL,
                           CONFIG_MAX_INTERVAL, &cfg->interval_ms);
    if (rc < 0)
        return rc;
    rc = yconf_duration_ms(yc, root, "", "timeout", 0, CONFIG_MIN_TIMEOUT,
                           CONFIG_MAX_TIMEOUT, &cfg->timeout_ms);
    if (rc < 0)
        return rc;
    has_timeout = rc == 0;
    if (!has_timeout && cfg->timeout_ms > cfg->interval_ms)
        cfg->timeout_ms = cfg->interval_ms;
    else if (has_timeout && cfg->timeout_ms > cfg->interval_ms)
        return yconf_fail(yc, yconf_find(yc, root, "timeout"), "", "timeout",
                          "must not exceed interval (%lldms)",
                          cfg->interval_ms);
    rc = config_threshold(yc, root, "", "healthy_after", &cfg->healthy_after);
    if (rc >= 0)
        rc = config_threshold(yc, root, "", "unhealthy_after",
                              &cfg->unhealthy_after);
    if (rc >= 0)
        rc = yconf_int(yc, root, "", "probers", 0, 1, CONFIG_MAX_PROBERS,
                       &cfg->probers);
    if (rc < 0)
        return rc;
    rc = yconf_str(yc, root, "", "log_level", 0, &level);
    if (rc == 0 && log_parse_level(level, &cfg->log_level) < 0)
        rc = yconf_fail(yc, yconf_find(yc, root, "log_level"), "",
                        "log_level", "expected error, warn, info or debug, "
                        "got \"%s\"", level);
    free(level);
    return rc < 0 ? rc : 0;
}

/* node: the file's value unless env NODE_NAME is set (the downward API). */
static int config_node(struct yconf *yc, yaml_node_t *root,
                       struct agent_config *cfg)
{
    const char *env = getenv("NODE_NAME");
    char *file_node = NULL;
    int rc;

    rc = config_name(yc, root, "", "node", 0, &file_node);
    if (rc < 0)
        return rc;
    if (env && env[0]) {
        free(file_node);
        if (strlen(env) > AGENT_CONFIG_MAX_NAME)
            return yconf_fail(yc, root, "", "node", "env NODE_NAME is "
                              "longer than %u bytes", AGENT_CONFIG_MAX_NAME);
        /* libyaml checked the file's UTF-8, nobody checked the env's; the
         * collector refuses bad UTF-8. Node names are DNS names anyway. */
        for (const char *p = env; *p; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
                return yconf_fail(yc, root, "", "node", "env NODE_NAME must "
                                  "be printable ASCII without spaces");
        cfg->node = strdup(env);
        return cfg->node ? 0 : -ENOMEM;
    }
    if (rc == 1)
        return yconf_fail(yc, root, "", "node", "required key is missing "
                          "(or set env NODE_NAME)");
    cfg->node = file_node;
    return 0;
}

int agent_config_load(const char *path, struct agent_config *out, char *err,
                      size_t err_len)
{
    struct agent_config cfg = {
        .interval_ms = CONFIG_DEF_INTERVAL,
        .timeout_ms = CONFIG_DEF_TIMEOUT,
        .healthy_after = CONFIG_DEF_HEALTHY_AFTER,
        .unhealthy_after = CONFIG_DEF_UNHEALTHY_AFTER,
        .log_level = LOGL_INFO,
        .spool_max_bytes = CONFIG_DEF_SPOOL_BYTES,
        .batch_max_events = CONFIG_DEF_BATCH_EVENTS,
        .batch_max_bytes = CONFIG_DEF_BATCH_BYTES,
        .batch_max_age_ms = CONFIG_DEF_BATCH_AGE,
        .backoff_initial_ms = CONFIG_DEF_BACKOFF_INIT,
        .backoff_max_ms = CONFIG_DEF_BACKOFF_MAX,
        .shutdown_grace_ms = CONFIG_DEF_GRACE,
    };
    struct yconf yc;
    yaml_node_t *root;
    int rc;

    rc = yconf_load(&yc, path);
    if (rc < 0)
        goto out;
    rc = -EINVAL;
    root = yconf_root(&yc);
    if (!root)
        goto out;
    rc = yconf_check_keys(&yc, root, "", config_top_keys);
    if (rc == 0)
        rc = config_name(&yc, root, "", "cluster", 1, &cfg.cluster);
    if (rc == 0)
        rc = config_name(&yc, root, "", "region", 1, &cfg.region);
    if (rc == 0)
        rc = config_node(&yc, root, &cfg);
    if (rc == 0)
        rc = config_collectors(&yc, root, &cfg);
    if (rc == 0)
        rc = config_spool(&yc, root, &cfg);
    if (rc == 0)
        rc = config_shipping(&yc, root, &cfg);
    if (rc == 0)
        rc = config_defaults(&yc, root, &cfg);
    if (rc == 0)
        rc = config_admin(&yc, root, &cfg);
    if (rc == 0)
        rc = yconf_each(&yc, root, "", "targets", 1, YCONF_ITEMS_MAPPINGS,
                        config_target_item, &cfg);
    if (rc == -ENOMEM)
        yconf_fail(&yc, root, "", NULL, "out of memory");
out:
    if (rc < 0) {
        snprintf(err, err_len, "%s", yc.err);
        agent_config_free(&cfg);
    } else {
        *out = cfg;
        rc = 0;
    }
    yconf_free(&yc);
    return rc;
}
