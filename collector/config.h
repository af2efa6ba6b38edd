/* config.h -- the collector's configuration, read from YAML. A value type:
 * loading builds a new one, so a later reload can swap it whole. */
#ifndef SEXTANT_COLLECTOR_CONFIG_H
#define SEXTANT_COLLECTOR_CONFIG_H

#include <stddef.h>

#include "log.h"
#include "topology.h"

/* Tokens are compared as SHA-256 digests: a fixed 32 bytes, compared in
 * constant time, so neither a token's bytes nor its length show in how
 * long a refusal takes. */
#define COLLECTOR_TOKEN_DIGEST 32u

/* A cluster allowed to send, and the bearer token its agents present. */
struct collector_cluster {
    char *name;
    char *token;            /* secret: never logged */
    unsigned char token_sha256[COLLECTOR_TOKEN_DIGEST];    /* of token */
    long long probers_window_ms;    /* a node silent longer is not live */
};

/* What an API token may do: read, or also add annotations. */
enum collector_scope {
    COLLECTOR_SCOPE_NONE = -1,          /* not a token of ours */
    COLLECTOR_SCOPE_READ = 0,           /* `scope: read`, the default */
    COLLECTOR_SCOPE_ANNOTATE = 1,       /* `scope: annotate` */
};

/* A bearer token that may read /api/ (and, scope annotate, write
 * annotations). */
struct collector_api_token {
    char *token;            /* secret: never logged */
    enum collector_scope scope;
    unsigned char token_sha256[COLLECTOR_TOKEN_DIGEST];    /* of token */
};

/* HTTPS: the files as written (for messages) and their PEM contents, read
 * and checked when the config is loaded, so a bad file is a config error
 * with its line, not a failure at start. All NULL: plain HTTP. */
struct collector_tls {
    char *cert_file;
    char *key_file;
    char *client_ca_file;               /* NULL: no client certificate */
    char *cert_pem;                     /* server chain, leaf first */
    char *key_pem;                      /* secret: wiped on free */
    char *client_ca_pem;                /* CAs that sign agents' certs */
};

struct collector_config {
    char *listen;                       /* "HOST:PORT"; port 0 = any free */
    char *db_path;                      /* SQLite file (backend sqlite) */
    /* `store:` (see store.h's store_options): backend "sqlite" (default)
     * or "postgres" with `postgres.conninfo` (required then) and
     * `postgres.password_file` (optional, checked readable at load). */
    int store_backend;                  /* enum store_backend */
    char *pg_conninfo;
    char *pg_password_file;
    struct collector_cluster *clusters;
    size_t n_clusters;
    long long max_body;                 /* compressed ingest bytes */
    long long max_inflated;             /* after inflate */
    long long conn_limit;               /* total connections */
    int conn_limit_set;                 /* given in the file, not the
                                         * default: not lowered to fit the
                                         * open-files limit (server.c) */
    long long per_ip_limit;             /* connections per client IP */
    long long conn_timeout_ms;          /* idle/slow connection timeout */
    long long request_timeout_ms;       /* whole request, headers + body */
    long long threads;                  /* HTTP worker threads */
    long long queue_batches;            /* store writer queue high-water */
    long long queue_bytes;              /* and of the memory it holds */
    /* retention: 0 keeps rows forever (see store.h) */
    long long raw_retention_ms;
    long long minute_retention_ms;
    long long hour_retention_ms;
    long long retention_interval_ms;
    /* Bearer tokens that may read /api/ (secrets: never logged). None:
     * the API is open. Disjoint from the clusters' ingest tokens. */
    struct collector_api_token *api_tokens;
    size_t n_api_tokens;
    enum log_level log_level;
    struct collector_tls tls;           /* tls.cert_pem NULL: plain HTTP */
    /* `services:` and `incidents:`: no services, no incident engine */
    struct topology topo;
};

/* Loads @path. On error returns -EINVAL (or -ENOENT) and writes one line
 * "FILE:LINE: key: message" to @err; @out is then untouched. */
int collector_config_load(const char *path, struct collector_config *out,
                          char *err, size_t err_len);
void collector_config_free(struct collector_config *cfg);

struct store_options;
/* The store's share of @cfg into @o (store_options_default first): its
 * backend, connection string, password file, retention, queue limits
 * and services. @o borrows @cfg's strings and topology. */
void collector_config_store(const struct collector_config *cfg,
                            struct store_options *o);
/* The store a command works on: the SQLite file @db when given, else
 * @cfg's store (SQLite at its db, or PostgreSQL), as options for
 * store_open_readonly_with / store_incidents_rebuild_with (borrowing
 * @cfg), and its name for messages into @where (the path, or
 * "postgres host=H port=P dbname=D"): `sextant-collector timeline`'s
 * and `incidents`'. */
void collector_config_store_at(const struct collector_config *cfg,
                               const char *db, struct store_options *o,
                               char *where, size_t len);
/* Where the store lives, for logs and messages: "db PATH" (SQLite), or
 * "postgres host=H port=P dbname=D" with only those keys of the
 * connection string (never its password or other secrets) and those it
 * gives (PG* variables and libpq's defaults fill the rest). */
void collector_config_where(const struct collector_config *cfg, char *buf,
                            size_t len);

/* The cluster whose token is @token, NULL if none. @token's SHA-256 is
 * compared with every cluster's in constant time: the time taken tells
 * nothing of which token matched, nor of any token's length. */
const struct collector_cluster *
collector_config_cluster_by_token(const struct collector_config *cfg,
                                  const char *token);

/* 1 if @token is one of cfg->api_tokens, compared as above. */
int collector_config_api_token_ok(const struct collector_config *cfg,
                                  const char *token);
/* The scope of @token (compared as above): COLLECTOR_SCOPE_NONE when it
 * is none of cfg->api_tokens. */
enum collector_scope
collector_config_api_token_scope(const struct collector_config *cfg,
                                 const char *token);

#endif
