/* config.c -- parse and check collector.yaml. Knows the schema; the YAML
 * mechanics and error lines are common/yconf.c's, the `services:` and
 * `incidents:` keys config_topo.c's. Also the store's share of a loaded
 * config (its store_options, and where it lives in words), for the
 * collector and the commands that open its store. */
#include "config.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_priv.h"
#include "store.h"
#include "util.h"
#include "wire.h"
#include "yconf.h"

#define CONFIG_MAX_TOKEN_FILE 4096u     /* a token, a newline: far less */
#define CONFIG_MIN_TOKEN_LEN  16u      /* short tokens are guessable */
#define CONFIG_MAX_PEM_FILE   (1u << 20) /* a long chain is some 10 KiB */
/* A password file holds one line; anything longer is not one. */
#define CONFIG_MAX_PASSWORD_FILE 4096u

static const char *const config_top_keys[] = {
    "listen", "db", "log_level", "clusters", "api_tokens", "limits",
    "retention", "tls", "services", "incidents", "store", NULL
};
static const char *const config_store_keys[] = {
    "backend", "postgres", NULL
};
static const char *const config_pg_keys[] = {
    "conninfo", "password_file", NULL
};
static const char *const config_tls_keys[] = {
    "cert_file", "key_file", "client_ca_file", NULL
};
static const char *const config_cluster_keys[] = {
    "name", "token", "token_file", "probers_window", NULL
};
static const char *const config_api_token_keys[] = {
    "token", "token_file", "scope", NULL
};
static const char *const config_limit_keys[] = {
    "max_body", "max_inflated", "connections", "connections_per_ip",
    "connection_timeout", "request_timeout", "threads", "queue_batches",
    "queue_bytes", NULL
};
static const char *const config_retention_keys[] = {
    "raw", "minute_rollups", "hour_rollups", "interval", NULL
};

#define CONFIG_DAY_MS        (86400LL * 1000)
/* probers_window: how long after its last batch a node still counts as
 * live for `probers: N` (collector/live.c). Some batch ages, so a node
 * that ships every 1-5 s never drops out between two batches. */
#define CONFIG_DEF_PROBERS_WINDOW_MS (30LL * 1000)
#define CONFIG_MAX_PROBERS_WINDOW_MS (3600LL * 1000)
#define CONFIG_MAX_RETENTION (36500 * CONFIG_DAY_MS)  /* a century */
#define CONFIG_MIN_RETENTION (60LL * 1000)     /* shorter: nothing to roll */

/* limits: defaults, then bounds. */
/* Each agent holds one keep-alive connection: a DaemonSet on 50 clusters
 * of 100 nodes is 5000, and twice that leaves room for API clients and a
 * restart's reconnect while old sockets linger (bench/scale_bench.sh). */
#define CONFIG_DEF_CONNS       10000LL
#define CONFIG_DEF_PER_IP      64LL     /* a NAT'd cluster shares one IP */
/* 30 s: an agent's batch, even a large one over a slow link, is in long
 * before; a stalled client holds its slot no longer. */
#define CONFIG_DEF_TIMEOUT_MS  30000LL
#define CONFIG_DEF_THREADS     4LL      /* queries share them; ingest never
                                         * waits on SQLite (server.c) */
/* Batches: an agent has one in flight, so a queue the size of the default
 * connection limit never turns away a fleet that limit admits (5000
 * agents met 503s at 1024, bench/RESULTS.md); queue_bytes bounds the
 * memory. */
#define CONFIG_DEF_QUEUE       10000LL
#define CONFIG_QUEUE_BYTES     (64LL << 20)  /* raised to max_inflated */
#define CONFIG_MIN_BODY        1024LL   /* one batch's framing and a few
                                         * events */
#define CONFIG_MAX_BODY        (1LL << 30)
#define CONFIG_MAX_INFLATED    (1LL << 31)
#define CONFIG_MAX_CONNS       65536LL  /* a port's worth; fds run out first */
/* Timeouts under a second would cut off honest agents on a busy link;
 * over an hour, a held connection is an attack, not a slow client. */
#define CONFIG_MIN_TIMEOUT_MS  1000LL
#define CONFIG_MAX_TIMEOUT_MS  (3600LL * 1000)
#define CONFIG_MAX_THREADS     256LL    /* each has its own read connection */
#define CONFIG_MAX_QUEUE       (1LL << 20)
#define CONFIG_MIN_QUEUE_BYTES (1LL << 20)
#define CONFIG_MAX_QUEUE_BYTES (1LL << 36)

/* retention: defaults. Raw events for two weeks of incident review,
 * minute rollups for a quarter's trends, hour rollups for a year and a
 * month, so this month compares with last year's. */
#define CONFIG_DEF_RAW_DAYS    14
#define CONFIG_DEF_MINUTE_DAYS 90
#define CONFIG_DEF_HOUR_DAYS   400
/* Retention runs each minute, so each run has little to delete. */
#define CONFIG_DEF_RETENTION_INTERVAL_MS (60LL * 1000)

/* Wipes a secret before freeing it. NULL is a no-op. */
static void config_secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

void collector_config_free(struct collector_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        free(cfg->clusters[i].name);
        config_secret_free(cfg->clusters[i].token);
    }
    free(cfg->clusters);
    for (size_t i = 0; i < cfg->n_api_tokens; i++)
        config_secret_free(cfg->api_tokens[i].token);
    free(cfg->api_tokens);
    free(cfg->tls.cert_file);
    free(cfg->tls.key_file);
    free(cfg->tls.client_ca_file);
    free(cfg->tls.cert_pem);
    config_secret_free(cfg->tls.key_pem);
    free(cfg->tls.client_ca_pem);
    free(cfg->listen);
    free(cfg->db_path);
    /* A conninfo may hold password=...: a secret like a token. */
    config_secret_free(cfg->pg_conninfo);
    free(cfg->pg_password_file);
    topo_free(&cfg->topo);
    memset(cfg, 0, sizeof(*cfg));
}

/* SHA-256 of @token into @out. GnuTLS, already linked for TLS (and
 * libmicrohttpd's), so the digest adds no library. */
static int config_token_digest(const char *token,
                               unsigned char out[COLLECTOR_TOKEN_DIGEST])
{
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), out) < 0
               ? -EIO : 0;
}

/* Reads the token of one cluster or api_tokens entry: inline or from a
 * file, not both; *out gets it, @digest its SHA-256. */
static int config_token(struct yconf *yc, yaml_node_t *m, const char *ctx,
                        char **out, unsigned char *digest)
{
    char *tok = NULL, *file = NULL;
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
    if (has_tok == has_file) {
        rc = yconf_fail(yc, m, ctx, "token",
                        "give exactly one of token and token_file");
        goto out;
    }
    if (has_file) {
        rc = util_read_file(file, CONFIG_MAX_TOKEN_FILE, &tok, &len);
        if (rc < 0) {
            rc = yconf_fail(yc, yconf_find(yc, m, "token_file"), ctx,
                            "token_file", "cannot read %s: %s", file,
                            strerror(-rc));
            goto out;
        }
        util_rtrim(tok);
    }
    if (strlen(tok) < CONFIG_MIN_TOKEN_LEN || strpbrk(tok, " \t\r\n")) {
        rc = yconf_fail(yc, yconf_find(yc, m, has_file ? "token_file" : "token"),
                        ctx, has_file ? "token_file" : "token",
                        "token must be at least %u characters, no spaces",
                        CONFIG_MIN_TOKEN_LEN);
        goto out;
    }
    if (config_token_digest(tok, digest) < 0) {
        rc = yconf_fail(yc, m, ctx, "token", "cannot hash the token");
        goto out;
    }
    *out = tok;
    tok = NULL;
    rc = 0;
out:
    config_secret_free(tok);
    free(file);
    return rc;
}

/* One item of clusters: {name, token | token_file}. */
static int config_cluster(struct yconf *yc, const struct yconf_item *it,
                          void *arg)
{
    struct collector_config *cfg = arg;
    struct collector_cluster *c;
    yaml_node_t *m = it->node;
    int rc;

    cfg->clusters = yconf_array(it, cfg->clusters, sizeof(*cfg->clusters));
    if (!cfg->clusters)
        return -ENOMEM;
    c = &cfg->clusters[it->i];
    cfg->n_clusters = it->i + 1;        /* so free() sees this entry */
    rc = yconf_check_keys(yc, m, it->ctx, config_cluster_keys);
    if (rc == 0)
        rc = yconf_str(yc, m, it->ctx, "name", 1, &c->name);
    if (rc == 0 && strlen(c->name) > WIRE_MAX_STR)
        rc = yconf_fail(yc, m, it->ctx, "name", "longer than %u bytes",
                        WIRE_MAX_STR);
    if (rc == 0)
        rc = config_token(yc, m, it->ctx, &c->token, c->token_sha256);
    c->probers_window_ms = CONFIG_DEF_PROBERS_WINDOW_MS;
    if (rc == 0)
        rc = yconf_duration_ms(yc, m, it->ctx, "probers_window", 0, 1000,
                               CONFIG_MAX_PROBERS_WINDOW_MS,
                               &c->probers_window_ms);
    if (rc < 0)
        return rc;
    rc = 0;
    for (size_t j = 0; j < it->i; j++) {
        if (strcmp(cfg->clusters[j].name, c->name) == 0)
            return yconf_fail(yc, yconf_find(yc, m, "name"), it->ctx, "name",
                              "cluster \"%s\" is listed twice", c->name);
        if (strcmp(cfg->clusters[j].token, c->token) == 0)
            return yconf_fail(yc, m, it->ctx, "token",
                              "same token as clusters[%zu]: a token must "
                              "name one cluster", j);
    }
    return 0;
}

/* scope: read (the default) or annotate. */
static int config_scope(struct yconf *yc, yaml_node_t *m, const char *ctx,
                        enum collector_scope *out)
{
    char *s = NULL;
    int rc = yconf_str(yc, m, ctx, "scope", 0, &s);

    *out = COLLECTOR_SCOPE_READ;
    if (rc)
        return rc < 0 ? rc : 0;
    if (strcmp(s, "annotate") == 0)
        *out = COLLECTOR_SCOPE_ANNOTATE;
    else if (strcmp(s, "read") != 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "scope"), ctx, "scope",
                        "expected read or annotate, got \"%s\"", s);
    free(s);
    return rc;
}

/* One item of api_tokens: {token | token_file, scope}. A read token that
 * is also a cluster's ingest token would grant both: refused. */
static int config_api_token(struct yconf *yc, const struct yconf_item *it,
                            void *arg)
{
    struct collector_config *cfg = arg;
    yaml_node_t *m = it->node;
    struct collector_api_token *a;
    int rc;

    cfg->api_tokens = yconf_array(it, cfg->api_tokens,
                                  sizeof(*cfg->api_tokens));
    if (!cfg->api_tokens)
        return -ENOMEM;
    a = &cfg->api_tokens[it->i];
    cfg->n_api_tokens = it->i + 1;      /* so free() sees this entry */
    rc = yconf_check_keys(yc, m, it->ctx, config_api_token_keys);
    if (rc == 0)
        rc = config_token(yc, m, it->ctx, &a->token, a->token_sha256);
    if (rc == 0)
        rc = config_scope(yc, m, it->ctx, &a->scope);
    if (rc)
        return rc;
    for (size_t j = 0; j < it->i; j++)
        if (strcmp(cfg->api_tokens[j].token, a->token) == 0)
            return yconf_fail(yc, m, it->ctx, "token", "same token as "
                              "api_tokens[%zu]", j);
    for (size_t j = 0; j < cfg->n_clusters; j++)
        if (strcmp(cfg->clusters[j].token, a->token) == 0)
            return yconf_fail(yc, m, it->ctx, "token", "same token as "
                              "clusters[%zu]: keep read and ingest "
                              "tokens apart", j);
    return 0;
}

/* The optional mapping @key of the top level, its keys checked: 0 with
 * *out, 1 when absent, or -EINVAL. */
static int config_section(struct yconf *yc, yaml_node_t *root,
                          const char *key, const char *const *allowed,
                          yaml_node_t **out)
{
    int rc = yconf_map(yc, root, "", key, 0, out);

    if (rc)
        return rc;
    return yconf_check_keys(yc, *out, key, allowed);
}

static int config_limits(struct yconf *yc, yaml_node_t *root,
                         struct collector_config *cfg)
{
    yaml_node_t *m;
    int rc;

    rc = config_section(yc, root, "limits", config_limit_keys, &m);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = yconf_size(yc, m, "limits", "max_body", 0, CONFIG_MIN_BODY,
                    CONFIG_MAX_BODY, &cfg->max_body);
    if (rc >= 0)
        rc = yconf_size(yc, m, "limits", "max_inflated", 0, CONFIG_MIN_BODY,
                        CONFIG_MAX_INFLATED, &cfg->max_inflated);
    if (rc >= 0)
        rc = yconf_int(yc, m, "limits", "connections", 0, 1,
                       CONFIG_MAX_CONNS, &cfg->conn_limit);
    cfg->conn_limit_set = yconf_find(yc, m, "connections") != NULL;
    if (rc >= 0)
        rc = yconf_int(yc, m, "limits", "connections_per_ip", 0, 1,
                       CONFIG_MAX_CONNS, &cfg->per_ip_limit);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, "limits", "connection_timeout", 0,
                               CONFIG_MIN_TIMEOUT_MS, CONFIG_MAX_TIMEOUT_MS,
                               &cfg->conn_timeout_ms);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, "limits", "request_timeout", 0,
                               CONFIG_MIN_TIMEOUT_MS, CONFIG_MAX_TIMEOUT_MS,
                               &cfg->request_timeout_ms);
    if (rc >= 0)
        rc = yconf_int(yc, m, "limits", "threads", 0, 1, CONFIG_MAX_THREADS,
                       &cfg->threads);
    if (rc >= 0)
        rc = yconf_int(yc, m, "limits", "queue_batches", 0, 1,
                       CONFIG_MAX_QUEUE, &cfg->queue_batches);
    if (rc >= 0)
        rc = yconf_size(yc, m, "limits", "queue_bytes", 0,
                        CONFIG_MIN_QUEUE_BYTES, CONFIG_MAX_QUEUE_BYTES,
                        &cfg->queue_bytes);
    if (rc < 0)
        return rc;
    if (cfg->max_inflated < cfg->max_body)
        return yconf_fail(yc, m, "limits", "max_inflated",
                          "must not be smaller than max_body");
    /* A batch costs the writer queue up to its inflated size: one must
     * fit, or the largest batches would be refused as "busy" forever. */
    if (!yconf_find(yc, m, "queue_bytes")) {
        if (cfg->queue_bytes < cfg->max_inflated)
            cfg->queue_bytes = cfg->max_inflated;
    } else if (cfg->queue_bytes < cfg->max_inflated) {
        return yconf_fail(yc, yconf_find(yc, m, "queue_bytes"), "limits",
                          "queue_bytes", "must not be smaller than "
                          "max_inflated: one batch must fit");
    }
    return 0;
}

/* One retention period: 0 keeps forever, else at least a minute. */
static int config_retention_one(struct yconf *yc, yaml_node_t *m,
                                const char *key, long long *out)
{
    int rc = yconf_duration_ms(yc, m, "retention", key, 0, 0,
                               CONFIG_MAX_RETENTION, out);

    if (rc == 0 && *out != 0 && *out < CONFIG_MIN_RETENTION)
        return yconf_fail(yc, yconf_find(yc, m, key), "retention", key,
                          "must be 0 (keep forever) or at least 1m");
    return rc;
}

/* @longer must keep rows at least as long as @shorter (0 = forever): a
 * rollup that expires before the rows it summarizes loses the long view
 * while the detail is still there. */
static int config_retention_order(struct yconf *yc, yaml_node_t *m,
                                  const char *longer, long long l,
                                  const char *shorter, long long s)
{
    yaml_node_t *at;

    if (l == 0 || (s != 0 && l >= s))
        return 0;
    at = yconf_find(yc, m, longer);
    return yconf_fail(yc, at ? at : yconf_find(yc, m, shorter), "retention",
                      at ? longer : shorter, "%s must not be shorter than "
                      "%s (0 keeps forever)", longer, shorter);
}

/* retention: {raw, minute_rollups, hour_rollups, interval}, optional. */
static int config_retention(struct yconf *yc, yaml_node_t *root,
                            struct collector_config *cfg)
{
    yaml_node_t *m;
    int rc;

    rc = config_section(yc, root, "retention", config_retention_keys, &m);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = config_retention_one(yc, m, "raw", &cfg->raw_retention_ms);
    if (rc >= 0)
        rc = config_retention_one(yc, m, "minute_rollups",
                                  &cfg->minute_retention_ms);
    if (rc >= 0)
        rc = config_retention_one(yc, m, "hour_rollups",
                                  &cfg->hour_retention_ms);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, "retention", "interval", 0, 1000,
                               CONFIG_DAY_MS, &cfg->retention_interval_ms);
    if (rc >= 0)
        rc = config_retention_order(yc, m, "minute_rollups",
                                    cfg->minute_retention_ms, "raw",
                                    cfg->raw_retention_ms);
    if (rc >= 0)
        rc = config_retention_order(yc, m, "hour_rollups",
                                    cfg->hour_retention_ms, "minute_rollups",
                                    cfg->minute_retention_ms);
    return rc < 0 ? rc : 0;
}

/* Reads the file named by @key of @m: its name to *path, its contents to
 * *pem. 1 if absent and not @required. */
static int config_pem_file(struct yconf *yc, yaml_node_t *m, const char *key,
                           int required, char **path, char **pem)
{
    size_t len;
    int rc;

    rc = yconf_str(yc, m, "tls", key, required, path);
    if (rc)
        return rc;
    rc = util_read_file(*path, CONFIG_MAX_PEM_FILE, pem, &len);
    if (rc < 0)
        return yconf_fail(yc, yconf_find(yc, m, key), "tls", key,
                          "cannot read %s: %s", *path,
                          rc == -EFBIG ? "larger than 1 MiB"
                                       : strerror(-rc));
    if (strlen(*pem) != len)
        return yconf_fail(yc, yconf_find(yc, m, key), "tls", key,
                          "%s is not PEM text", *path);
    return 0;
}

/* Checks with GnuTLS, as libmicrohttpd will use them, that the certificate
 * parses, the key parses and belongs to it, and the client CA file holds
 * at least one certificate. */
static int config_tls_check(struct yconf *yc, yaml_node_t *m,
                            const struct collector_tls *t)
{
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_x509_crt_t *crts = NULL;
    gnutls_x509_privkey_t key = NULL;
    gnutls_datum_t cert_d, key_d, ca_d;
    unsigned n_crts = 0;
    int g, rc = -ENOMEM;

    cert_d.data = (unsigned char *)t->cert_pem;
    cert_d.size = (unsigned)strlen(t->cert_pem);
    key_d.data = (unsigned char *)t->key_pem;
    key_d.size = (unsigned)strlen(t->key_pem);
    if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_x509_privkey_init(&key) < 0)
        goto out;
    g = gnutls_x509_crt_list_import2(&crts, &n_crts, &cert_d,
                                     GNUTLS_X509_FMT_PEM, 0);
    if (g < 0 || n_crts == 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, "cert_file"), "tls",
                        "cert_file", "%s: no PEM certificate%s%s",
                        t->cert_file, g < 0 ? ": " : "",
                        g < 0 ? gnutls_strerror(g) : "");
        goto out;
    }
    g = gnutls_x509_privkey_import2(key, &key_d, GNUTLS_X509_FMT_PEM, NULL,
                                    0);
    if (g < 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, "key_file"), "tls",
                        "key_file", "%s: no PEM private key (an encrypted "
                        "key is not supported): %s", t->key_file,
                        gnutls_strerror(g));
        goto out;
    }
    g = gnutls_certificate_set_x509_key_mem2(cred, &cert_d, &key_d,
                                             GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0) {
        rc = yconf_fail(yc, yconf_find(yc, m, "key_file"), "tls",
                        "key_file", "%s does not go with cert_file %s: %s",
                        t->key_file, t->cert_file, gnutls_strerror(g));
        goto out;
    }
    if (t->client_ca_pem) {
        ca_d.data = (unsigned char *)t->client_ca_pem;
        ca_d.size = (unsigned)strlen(t->client_ca_pem);
        g = gnutls_certificate_set_x509_trust_mem(cred, &ca_d,
                                                  GNUTLS_X509_FMT_PEM);
        if (g <= 0) {
            rc = yconf_fail(yc, yconf_find(yc, m, "client_ca_file"), "tls",
                            "client_ca_file", "%s: no PEM certificate%s%s",
                            t->client_ca_file, g < 0 ? ": " : "",
                            g < 0 ? gnutls_strerror(g) : "");
            goto out;
        }
    }
    rc = 0;
out:
    for (unsigned i = 0; i < n_crts; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    if (key)
        gnutls_x509_privkey_deinit(key);
    if (cred)
        gnutls_certificate_free_credentials(cred);
    return rc;
}

/* tls: {cert_file, key_file, client_ca_file}, all optional as a block:
 * without it the collector speaks plain HTTP (behind a TLS proxy, or in
 * tests). */
static int config_tls(struct yconf *yc, yaml_node_t *root,
                      struct collector_config *cfg)
{
    struct collector_tls *t = &cfg->tls;
    yaml_node_t *m;
    int rc;

    rc = config_section(yc, root, "tls", config_tls_keys, &m);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = config_pem_file(yc, m, "cert_file", 1, &t->cert_file,
                             &t->cert_pem);
    if (rc == 0)
        rc = config_pem_file(yc, m, "key_file", 1, &t->key_file,
                             &t->key_pem);
    if (rc == 0)
        rc = config_pem_file(yc, m, "client_ca_file", 0, &t->client_ca_file,
                             &t->client_ca_pem);
    if (rc < 0)
        return rc;
    return config_tls_check(yc, m, t);
}

/* The sslmode values libpq 15 knows. */
static const char *const config_sslmodes[] = {
    "disable", "allow", "prefer", "require", "verify-ca", "verify-full",
    NULL
};
/* The conninfo keys that name a file libpq reads when it connects. */
static const char *const config_pg_files[] = {
    "sslrootcert", "sslcert", "sslkey", "sslcrl", NULL
};

/* What libpq's parser leaves to the connect, checked here so that a
 * typo is a config error (exit 2) instead of a collector that starts
 * and stays unready retrying a connection that can never work: the
 * sslmode value, and the TLS files readable ("system", libpq 16's
 * sslrootcert for the system's CAs, is no file). Needs no network.
 * 0, or the yconf_fail error. */
static int config_conninfo_values(struct yconf *yc, yaml_node_t *key,
                                  const PQconninfoOption *o)
{
    for (; o->keyword; o++) {
        size_t i;

        if (!o->val)
            continue;
        if (strcmp(o->keyword, "sslmode") == 0) {
            for (i = 0; config_sslmodes[i]; i++)
                if (strcmp(o->val, config_sslmodes[i]) == 0)
                    break;
            if (!config_sslmodes[i])
                return yconf_fail(yc, key, "store.postgres", "conninfo",
                                  "sslmode: expected disable, allow, "
                                  "prefer, require, verify-ca or "
                                  "verify-full, got \"%s\"", o->val);
            continue;
        }
        for (i = 0; config_pg_files[i]; i++)
            if (strcmp(o->keyword, config_pg_files[i]) == 0)
                break;
        if (!config_pg_files[i] || !o->val[0] ||
            (strcmp(o->keyword, "sslrootcert") == 0 &&
             strcmp(o->val, "system") == 0))
            continue;
        if (access(o->val, R_OK) != 0)
            return yconf_fail(yc, key, "store.postgres", "conninfo",
                              "%s: cannot read %s: %s", o->keyword, o->val,
                              strerror(errno));
    }
    return 0;
}

/* store.postgres.conninfo: checked by libpq's own parser, so a typo in a
 * key fails here (and in --check-config), not at the first connect; and
 * the values it does not check (config_conninfo_values). */
static int config_conninfo(struct yconf *yc, yaml_node_t *pgm,
                           struct collector_config *cfg)
{
    PQconninfoOption *o;
    char *why = NULL;
    int rc;

    rc = yconf_str(yc, pgm, "store.postgres", "conninfo", 1,
                   &cfg->pg_conninfo);
    if (rc)
        return rc < 0 ? rc : -EINVAL;
    if (!cfg->pg_conninfo[0])
        return yconf_fail(yc, yconf_find(yc, pgm, "conninfo"),
                          "store.postgres", "conninfo", "must not be empty "
                          "(at least \"dbname=...\"; PG* variables fill "
                          "the rest)");
    o = PQconninfoParse(cfg->pg_conninfo, &why);
    if (o) {
        rc = config_conninfo_values(yc, yconf_find(yc, pgm, "conninfo"), o);
        PQconninfoFree(o);
        return rc;
    }
    if (why)
        why[strcspn(why, "\n")] = '\0';
    rc = yconf_fail(yc, yconf_find(yc, pgm, "conninfo"), "store.postgres",
                    "conninfo", "not a libpq connection string: %s",
                    why ? why : "out of memory");
    PQfreemem(why);
    return rc;
}

/* store.postgres.password_file: readable now, so that a start does not
 * fail on it later; its contents are read again when the store opens
 * (store_pg_open) and not kept here. */
static int config_password_file(struct yconf *yc, yaml_node_t *pgm,
                                struct collector_config *cfg)
{
    char *pw = NULL;
    size_t len;
    int rc;

    rc = yconf_str(yc, pgm, "store.postgres", "password_file", 0,
                   &cfg->pg_password_file);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = util_read_file(cfg->pg_password_file, CONFIG_MAX_PASSWORD_FILE, &pw,
                        &len);
    if (rc < 0)
        return yconf_fail(yc, yconf_find(yc, pgm, "password_file"),
                          "store.postgres", "password_file",
                          "cannot read %s: %s", cfg->pg_password_file,
                          rc == -EFBIG ? "larger than 4 KiB"
                                       : strerror(-rc));
    explicit_bzero(pw, len);
    free(pw);
    return 0;
}

/* store: {backend: sqlite|postgres, postgres: {conninfo, password_file}},
 * optional: without it, SQLite at `db`. */
static int config_store(struct yconf *yc, yaml_node_t *root,
                        struct collector_config *cfg)
{
    yaml_node_t *m, *pgm = NULL;
    char *backend = NULL;
    int rc;

    cfg->store_backend = STORE_BACKEND_SQLITE;
    rc = config_section(yc, root, "store", config_store_keys, &m);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = yconf_str(yc, m, "store", "backend", 0, &backend);
    if (rc < 0)
        return rc;
    if (rc == 0 && strcmp(backend, "postgres") == 0)
        cfg->store_backend = STORE_BACKEND_POSTGRES;
    else if (rc == 0 && strcmp(backend, "sqlite") != 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "backend"), "store", "backend",
                        "expected sqlite or postgres, got \"%s\"", backend);
    free(backend);
    if (rc < 0)
        return rc;
    rc = yconf_map(yc, m, "store", "postgres", 0, &pgm);
    if (rc < 0)
        return rc;
    if (cfg->store_backend != STORE_BACKEND_POSTGRES) {
        if (rc == 0)
            return yconf_fail(yc, yconf_find(yc, m, "postgres"), "store",
                              "postgres", "given, but backend is not "
                              "postgres (add backend: postgres)");
        return 0;
    }
    if (rc == 1)
        return yconf_fail(yc, m, "store", "postgres", "required with backend "
                          "postgres ({conninfo: ..., password_file: ...})");
    rc = yconf_check_keys(yc, pgm, "store.postgres", config_pg_keys);
    if (rc == 0)
        rc = config_conninfo(yc, pgm, cfg);
    if (rc == 0)
        rc = config_password_file(yc, pgm, cfg);
    return rc;
}

int collector_config_load(const char *path, struct collector_config *out,
                          char *err, size_t err_len)
{
    struct collector_config cfg = {
        .max_body = WIRE_MAX_BODY,
        .max_inflated = WIRE_MAX_RAW,
        .conn_limit = CONFIG_DEF_CONNS,
        .per_ip_limit = CONFIG_DEF_PER_IP,
        .conn_timeout_ms = CONFIG_DEF_TIMEOUT_MS,
        .request_timeout_ms = CONFIG_DEF_TIMEOUT_MS,
        .threads = CONFIG_DEF_THREADS,
        .queue_batches = CONFIG_DEF_QUEUE,
        .queue_bytes = CONFIG_QUEUE_BYTES,
        .raw_retention_ms = CONFIG_DEF_RAW_DAYS * CONFIG_DAY_MS,
        .minute_retention_ms = CONFIG_DEF_MINUTE_DAYS * CONFIG_DAY_MS,
        .hour_retention_ms = CONFIG_DEF_HOUR_DAYS * CONFIG_DAY_MS,
        .retention_interval_ms = CONFIG_DEF_RETENTION_INTERVAL_MS,
        .log_level = LOGL_INFO,
    };
    struct yconf yc;
    yaml_node_t *root;
    char *level = NULL;
    struct sockaddr_storage ss;
    char host[256];
    uint16_t port;
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
        rc = yconf_str(&yc, root, "", "listen", 1, &cfg.listen);
    if (rc == 0 && util_parse_hostport(cfg.listen, host, sizeof(host),
                                       &port) < 0)
        rc = yconf_fail(&yc, yconf_find(&yc, root, "listen"), "", "listen",
                        "expected HOST:PORT, got \"%s\"", cfg.listen);
    /* The server binds an address and resolves no name: a name here would
     * pass the load and fail only at the bind (--check-config too). */
    else if (rc == 0 && util_sockaddr(cfg.listen, &ss) < 0)
        rc = yconf_fail(&yc, yconf_find(&yc, root, "listen"), "", "listen",
                        "\"%s\": HOST must be an IP address, not a name",
                        cfg.listen);
    if (rc == 0)
        rc = config_store(&yc, root, &cfg);
    /* db names the SQLite file; on PostgreSQL it is unused, and allowed
     * (a config moved to postgres may keep it). */
    if (rc == 0)
        rc = yconf_str(&yc, root, "", "db",
                       cfg.store_backend == STORE_BACKEND_SQLITE, &cfg.db_path);
    if (rc == 1)
        rc = 0;
    if (rc == 0)
        rc = yconf_str(&yc, root, "", "log_level", 0, &level);
    if (rc == 0 && log_parse_level(level, &cfg.log_level) < 0)
        rc = yconf_fail(&yc, yconf_find(&yc, root, "log_level"), "",
                        "log_level", "expected error, warn, info or debug");
    if (rc >= 0)
        rc = config_limits(&yc, root, &cfg);
    if (rc >= 0)
        rc = config_retention(&yc, root, &cfg);
    if (rc >= 0)
        rc = yconf_each(&yc, root, "", "clusters", 1, YCONF_ITEMS_MAPPINGS,
                        config_cluster, &cfg);
    if (rc >= 0)
        rc = yconf_each(&yc, root, "", "api_tokens", 0, YCONF_ITEMS_MAPPINGS,
                        config_api_token, &cfg);
    if (rc >= 0)
        rc = config_tls(&yc, root, &cfg);
    if (rc >= 0)
        rc = config_topology(&yc, root, &cfg.topo);
    if (rc == -ENOMEM)
        yconf_fail(&yc, root, "", NULL, "out of memory");
out:
    if (rc < 0) {
        snprintf(err, err_len, "%s", yc.err);
        collector_config_free(&cfg);
    } else {
        *out = cfg;
        rc = 0;
    }
    free(level);
    yconf_free(&yc);
    return rc;
}

/* 1 if the digests are equal. Time depends on neither: every byte is
 * looked at, whatever differs first. */
static int config_digest_eq(const unsigned char *a, const unsigned char *b)
{
    unsigned char diff = 0;

    for (size_t i = 0; i < COLLECTOR_TOKEN_DIGEST; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

const struct collector_cluster *
collector_config_cluster_by_token(const struct collector_config *cfg,
                                  const char *token)
{
    const struct collector_cluster *hit = NULL;
    unsigned char d[COLLECTOR_TOKEN_DIGEST];

    if (config_token_digest(token, d) < 0)
        return NULL;
    /* Compare against every token, so timing tells nothing of which. */
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (config_digest_eq(cfg->clusters[i].token_sha256, d))
            hit = &cfg->clusters[i];
    return hit;
}

enum collector_scope
collector_config_api_token_scope(const struct collector_config *cfg,
                                 const char *token)
{
    unsigned char d[COLLECTOR_TOKEN_DIGEST];
    int scope = COLLECTOR_SCOPE_NONE;

    if (config_token_digest(token, d) < 0)
        return COLLECTOR_SCOPE_NONE;
    /* Every token compared, as for clusters, and the hit's scope taken
     * by a mask, not a branch: timing tells nothing of which matched. */
    for (size_t i = 0; i < cfg->n_api_tokens; i++) {
        int mask = -config_digest_eq(cfg->api_tokens[i].token_sha256, d);

        scope = (scope & ~mask) | ((int)cfg->api_tokens[i].scope & mask);
    }
    return (enum collector_scope)scope;
}

int collector_config_api_token_ok(const struct collector_config *cfg,
                                  const char *token)
{
    return collector_config_api_token_scope(cfg, token) !=
           COLLECTOR_SCOPE_NONE;
}

void collector_config_store(const struct collector_config *cfg,
                            struct store_options *o)
{
    store_options_default(o);
    o->backend = (enum store_backend)cfg->store_backend;
    o->pg_conninfo = cfg->pg_conninfo;
    o->pg_password_file = cfg->pg_password_file;
    o->raw_retention_ms = cfg->raw_retention_ms;
    o->minute_retention_ms = cfg->minute_retention_ms;
    o->hour_retention_ms = cfg->hour_retention_ms;
    o->retention_interval_ms = cfg->retention_interval_ms;
    o->queue_max_batches = (size_t)cfg->queue_batches;
    o->queue_max_bytes = (size_t)cfg->queue_bytes;
    o->topo = &cfg->topo;
}

void collector_config_store_at(const struct collector_config *cfg,
                               const char *db, struct store_options *o,
                               char *where, size_t len)
{
    collector_config_store(cfg, o);
    if (db || o->backend != STORE_BACKEND_POSTGRES) {
        o->backend = STORE_BACKEND_SQLITE;
        snprintf(where, len, "%s", db ? db : cfg->db_path);
        return;
    }
    collector_config_where(cfg, where, len);
}

void collector_config_where(const struct collector_config *cfg, char *buf,
                            size_t len)
{
    static const char *const shown[] = { "host", "hostaddr", "port",
                                         "dbname", NULL };
    PQconninfoOption *opts;
    size_t n;

    if (cfg->store_backend != STORE_BACKEND_POSTGRES) {
        snprintf(buf, len, "db %s", cfg->db_path);
        return;
    }
    snprintf(buf, len, "postgres");
    opts = PQconninfoParse(cfg->pg_conninfo, NULL);  /* checked at load */
    for (size_t i = 0; shown[i]; i++) {
        for (PQconninfoOption *o = opts; o && o->keyword; o++) {
            if (strcmp(o->keyword, shown[i]) != 0 || !o->val || !o->val[0])
                continue;
            n = strlen(buf);
            snprintf(buf + n, len - n, " %s=%s", o->keyword, o->val);
        }
    }
    PQconninfoFree(opts);
}
