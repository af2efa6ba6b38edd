/* topology.h -- what the collector knows of the services it watches: each
 * service's global name (the DNS name a traffic manager steers), its
 * pattern, its regions with the targets (as agents name them) that probe
 * each region's endpoint, the DNS answers that mean "this region", and
 * the targets that probe the service through its global name. Part of
 * the collector's config (config.h: collector_config.topo), loaded from
 * its `services:` list and `incidents:` block; a value type freed with
 * the config. The incident engine (incident.h) reads it. */
#ifndef SEXTANT_TOPOLOGY_H
#define SEXTANT_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

enum topo_pattern {
    TOPO_ACTIVE_PASSIVE,        /* one primary serves; standbys wait */
    TOPO_ACTIVE_ACTIVE,         /* every region in the answers serves */
    TOPO_SHARDED,               /* each region serves its own users */
};

enum topo_role {
    TOPO_ROLE_NONE,             /* active-active and sharded regions */
    TOPO_ROLE_PRIMARY,
    TOPO_ROLE_STANDBY,
};

/* One region of a service. */
struct topo_region {
    char *name;                 /* as agents' batches name regions */
    enum topo_role role;
    char **targets;             /* targets probing this region's endpoint */
    size_t n_targets;           /* >= 1 */
    /* DNS answers (A/AAAA addresses or CNAME targets, compared as
     * written, case-insensitive for names, trailing dot ignored) that
     * mean "the global name sends traffic here". */
    char **answers;
    size_t n_answers;           /* >= 1 */
    /* The replication-lag metric for the RPO estimate: a metric sample
     * named lag_metric from target lag_target, its value in seconds.
     * Both NULL: no RPO for this region. */
    char *lag_metric;
    char *lag_target;
};

struct topo_service {
    char *name;                 /* unique among services */
    char *global_name;          /* the steered DNS name */
    enum topo_pattern pattern;
    struct topo_region *regions;
    size_t n_regions;           /* >= 1; active-passive: one primary */
    /* Targets that probe through the global name: HTTP(S) targets that
     * resolve it as clients do (their ok and served-by say whether the
     * service is healthy through it), and DNS targets that resolve it
     * (their answers say where it points). */
    char **global_targets;
    size_t n_global_targets;    /* >= 1 */
};

/* The `incidents:` block of the collector's config. */
struct topo_options {
    /* A region is unhealthy when more than this share of the agents
     * probing it (and not stale) see it unhealthy: 0.5, "more than
     * half". (0, 1). */
    double quorum;
    /* An agent is stale for a target when not heard from (no probe of
     * it) for this many of its probe intervals: 3. */
    int stale_intervals;
    /* An incident closes once the service has been healthy through its
     * global name for this long without a new failure: 60 s. */
    int64_t stable_ms;
    /* Webhook URLs POSTed on incident open, update and close. */
    char **webhooks;
    size_t n_webhooks;
};

struct topology {
    struct topo_service *services;
    size_t n_services;
    struct topo_options opt;
};

#define TOPO_QUORUM_DEFAULT          0.5
#define TOPO_STALE_INTERVALS_DEFAULT 3
#define TOPO_STABLE_MS_DEFAULT       60000

/* Names for messages and JSON: "active-passive", "primary", ... */
const char *topo_pattern_name(enum topo_pattern p);
const char *topo_role_name(enum topo_role r);
/* The reverse, as the config writes them: 0 and *out, or -EINVAL. */
int topo_pattern_parse(const char *s, enum topo_pattern *out);
int topo_role_parse(const char *s, enum topo_role *out);

/* Lookups. Every one borrows its arguments and returns a pointer into
 * @t / @svc (NULL: not found); names compare exactly, targets too. */
const struct topo_service *topo_service_by_name(const struct topology *t,
                                                const char *name);
const struct topo_region *topo_region_by_name(const struct topo_service *svc,
                                              const char *name);
/* The region whose `targets` list @target (a target is in at most one
 * region of a service: the config refuses more). */
const struct topo_region *
topo_region_of_target(const struct topo_service *svc, const char *target);
/* The region one of whose `answers` is @answer (see topo_answer_eq). */
const struct topo_region *
topo_region_of_answer(const struct topo_service *svc, const char *answer);
/* The region that all of @answers map to; NULL when none maps, or when
 * they map to more than one region (a split answer) or some map to none
 * (*split, if not NULL, is then 1; else 0). */
const struct topo_region *
topo_region_of_answers(const struct topo_service *svc,
                       const char *const *answers, size_t n, int *split);
/* 1 if @target is one of svc->global_targets. */
int topo_is_global_target(const struct topo_service *svc, const char *target);
/* The active-passive primary (the one region with TOPO_ROLE_PRIMARY);
 * NULL for the other patterns. */
const struct topo_region *topo_primary(const struct topo_service *svc);
/* 1 if two DNS answers are the same: IP addresses of one family by value
 * ("::1" equals "0:0::1"), names case-insensitively with a trailing dot
 * ignored ("App.Example." equals "app.example"). */
int topo_answer_eq(const char *a, const char *b);

/* Frees everything @t holds and zeroes it (options back to zero, not to
 * the defaults). NULL is a no-op. */
void topo_free(struct topology *t);

#endif
