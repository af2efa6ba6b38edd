/* config.h -- the agent's configuration, read from YAML. A value type:
 * loading builds a new one and touches no running state, so a SIGHUP
 * reload can load, compare and swap it whole (or refuse it). */
#ifndef SEXTANT_AGENT_CONFIG_H
#define SEXTANT_AGENT_CONFIG_H

#include <stddef.h>

#include <yaml.h>

#include "log.h"
#include "probe.h"
#include "yconf.h"

#define AGENT_CONFIG_MAX_NAME    256u   /* cluster, region, node, target */
#define AGENT_CONFIG_MAX_EXPECT  64u    /* codes in one expect_status list */

/* One thing to probe. Every field is filled in: defaults are applied when
 * the file is loaded, so nothing downstream looks at the top level. */
struct agent_target {
    char *name;                 /* unique within the file */
    enum probe_type type;
    char *url;                  /* http(s), checked by libcurl; NULL for
                                   types without "url" in their keys */
    long long interval_ms;
    long long timeout_ms;       /* <= interval_ms */
    int *expect_status;         /* NULL: any 2xx or 3xx is ok */
    size_t n_expect_status;
    unsigned healthy_after;     /* successes in a row to become healthy */
    unsigned unhealthy_after;   /* failures in a row to become unhealthy */
    long long probers;          /* probed by this many of the cluster's
                                   live agents (agent/probers.c); 0: all */
    void *opts;                 /* the type's own options (probe_ops->parse),
                                   owned; freed with probe_ops->free_opts */
    char *fingerprint;          /* canonical text of the target's mapping:
                                   equal means unchanged across a reload */
    char *identity;             /* type, name and url/address/query: equal
                                   means a reload keeps the target's health */
};

/* TLS to one collector (keys of its mapping; only for https:// URLs). */
struct agent_tls {
    char *ca_file;              /* ca_file: PEM CAs to trust; NULL: the
                                   system's */
    int verify;                 /* tls_verify, default 1: check the
                                   collector's certificate and name */
    char *client_cert;          /* client_cert + client_key: PEM, for a */
    char *client_key;           /*   collector that asks (mTLS); NULL: none */
};

/* One collector: the mapping under "collector:" or one item of
 * "collectors:". All of them get every event (fan-out); each is known by
 * its ingest_url, in the spool too (its acked seq ranges). */
struct agent_collector {
    char *url;                  /* base URL as written */
    char *ingest_url;           /* url + "/v1/ingest": the identity */
    char *token;                /* secret: never logged */
    struct agent_tls tls;
};

#define AGENT_CONFIG_MAX_COLLECTORS 8u

struct agent_config {
    char *cluster;
    char *region;
    char *node;                 /* env NODE_NAME wins over the file */
    struct agent_collector *collectors;     /* at least one */
    size_t n_collectors;
    char *spool_path;
    long long spool_max_bytes;  /* spool.max_bytes: drop oldest past it */
    /* shipping.*: a batch closes at whichever limit comes first */
    long long batch_max_events;
    long long batch_max_bytes;  /* packed events */
    long long batch_max_age_ms; /* the oldest unsent event waits this long */
    long long backoff_initial_ms;   /* full jitter: sleep = random(0, */
    long long backoff_max_ms;       /*   min(max, initial * 2^failures)) */
    long long shutdown_grace_ms;    /* SIGTERM: flush for this long */
    long long interval_ms;      /* default for targets */
    long long timeout_ms;       /* default for targets */
    unsigned healthy_after;     /* default for targets */
    unsigned unhealthy_after;   /* default for targets */
    long long probers;          /* default for targets; 0: every agent */
    enum log_level log_level;
    char *admin_listen;         /* "IP:PORT" of /healthz, /readyz, /metrics;
                                   NULL when admin.enabled is false */
    int admin_listen_set;       /* admin.listen was given: not binding it is
                                   fatal (the default only warns) */
    struct agent_target *targets;
    size_t n_targets;
};

/* Loads @path, reading env NODE_NAME too. On error returns -EINVAL (or
 * -ENOENT, -ENOMEM) and writes one line "FILE:LINE: key: message" to @err;
 * @out is then untouched. On success @out owns everything it points to. */
int agent_config_load(const char *path, struct agent_config *out, char *err,
                      size_t err_len);
/* Frees what @cfg owns and zeroes it; a zeroed config is a no-op. */
void agent_config_free(struct agent_config *cfg);

/* Whether a reload may keep the running shipper for @b in place of @a:
 * the same collector, reached the same way. */
int agent_collector_equal(const struct agent_collector *a,
                          const struct agent_collector *b);

/* Reads the TLS keys (ca_file, tls_verify, client_cert, client_key) of
 * the collector mapping @m into @out, checking each file can be read and
 * holds PEM; @url is the collector's, as written: TLS keys on an http://
 * URL are refused. yconf's returns (0, or -EINVAL with yc->err set);
 * fills @out only on success. */
int agent_config_tls(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     const char *url, struct agent_tls *out);
void agent_tls_free(struct agent_tls *tls);    /* zeroes it */
int agent_tls_equal(const struct agent_tls *a, const struct agent_tls *b);

/* Whether @status counts as ok for @t. */
int agent_target_status_ok(const struct agent_target *t, long status);

/* For probe types' parse(): reads @key of @m as an http(s) URL checked by
 * libcurl's parser; *out is a copy the caller frees. yconf's returns: 0,
 * 1 if absent and not @required, -EINVAL with yc->err set. */
int agent_config_url(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     const char *key, int required, char **out);

#endif
