/* config_topo.c -- the collector config's `services:` list and
 * `incidents:` block, read into a topology (topology.h) and checked as a
 * whole: every rule the incident engine relies on (one primary, a target
 * or an answer in one region only...) is a config error here, with its
 * file and line, never a surprise at run time. */
#include "config_priv.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static const char *const topo_service_keys[] = {
    "name", "global_name", "pattern", "regions", "global_targets", NULL
};
static const char *const topo_region_keys[] = {
    "name", "role", "targets", "answers", "lag", NULL
};
static const char *const topo_lag_keys[] = { "metric", "target", NULL };
static const char *const topo_incident_keys[] = {
    "quorum", "stale_intervals", "stable", "webhooks", NULL
};

/* Region, target and metric names: as the agent bounds them (its
 * AGENT_CONFIG_MAX_NAME), since they are the agents' names. */
#define TOPO_MAX_NAME         256u
/* A service name is a path segment of /api/v1/services/{name} and a
 * metric label: short, and of characters that need no escaping. */
#define TOPO_MAX_SERVICE_NAME 64u
#define TOPO_MAX_URL          2048u
#define TOPO_MAX_STALE        100LL
#define TOPO_MAX_STABLE_MS    (86400LL * 1000)     /* a day */

/* What one string list holds, for the checks its items get. */
enum topo_list_kind {
    TOPO_LIST_TARGETS,          /* a region's targets */
    TOPO_LIST_ANSWERS,          /* a region's answers */
    TOPO_LIST_GLOBAL,           /* a service's global_targets */
    TOPO_LIST_WEBHOOKS,         /* incidents.webhooks */
};

/* The list being filled by topo_str_item(). */
struct topo_list {
    enum topo_list_kind kind;
    char ***items;
    size_t *n;
    const struct topo_service *svc; /* the service (not for webhooks) */
    size_t region;                  /* index of the region being read */
};

static int topo_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* 0 if @s is a DNS name (RFC 1123 host name, a trailing dot allowed, a
 * last label not all digits so that an IPv4 address is not one). */
static int topo_dns_name(const char *s)
{
    size_t n = strlen(s), label = 0;
    int digits = 1;

    if (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return -1;
            label = 0;
            digits = 1;
            continue;
        }
        if (!topo_is_alnum(c) && c != '-')
            return -1;
        if (c == '-' && label == 0)
            return -1;
        if (c < '0' || c > '9')
            digits = 0;
        if (++label > 63)
            return -1;
    }
    return label == 0 || s[n - 1] == '-' || digits ? -1 : 0;
}

/* 0 if @s is a service name: letters, digits, '.', '_' and '-'. */
static int topo_service_name_ok(const char *s)
{
    if (s[0] == '\0' || strlen(s) > TOPO_MAX_SERVICE_NAME)
        return -1;
    for (; *s; s++)
        if (!topo_is_alnum(*s) && *s != '.' && *s != '_' && *s != '-')
            return -1;
    return 0;
}

/* An http(s) URL with a host, by libcurl's parser (the sender's). */
static int topo_url_ok(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (!u)
        return -ENOMEM;
    if (strlen(url) <= TOPO_MAX_URL &&
        curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        host[0] != '\0')
        rc = 0;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* The name-like string @key of @m (required): printable, bounded. */
static int topo_name(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     const char *key, char **out)
{
    int rc = yconf_str(yc, m, ctx, key, 1, out);

    if (rc)
        return rc;
    if (strlen(*out) > TOPO_MAX_NAME)
        return yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                          "longer than %u bytes", TOPO_MAX_NAME);
    if (wire_name_check(*out, strlen(*out)) < 0)
        return yconf_fail(yc, yconf_find(yc, m, key), ctx, key,
                          "holds a control character");
    return 0;
}

/* Checks item @s of a list against its kind and against what was read
 * before it: in this list, in the service's other regions. */
static int topo_str_check(struct yconf *yc, const struct yconf_item *it,
                          const struct topo_list *l, const char *s)
{
    const struct topo_service *svc = l->svc;
    int answer = l->kind == TOPO_LIST_ANSWERS;
    unsigned char addr[16];

    if (answer && topo_dns_name(s) < 0 && inet_pton(AF_INET, s, addr) != 1 &&
        inet_pton(AF_INET6, s, addr) != 1)
        return yconf_fail(yc, it->node, it->ctx, NULL, "\"%s\" is neither an "
                          "IP address nor a DNS name", s);
    if (l->kind == TOPO_LIST_WEBHOOKS && topo_url_ok(s) < 0)
        return yconf_fail(yc, it->node, it->ctx, NULL, "\"%s\" is not an "
                          "http:// or https:// URL with a host", s);
    for (size_t j = 0; j < it->i; j++)
        if (answer ? topo_answer_eq((*l->items)[j], s)
                   : strcmp((*l->items)[j], s) == 0)
            return yconf_fail(yc, it->node, it->ctx, NULL, "\"%s\" is "
                              "listed twice", s);
    if (l->kind == TOPO_LIST_WEBHOOKS)
        return 0;
    /* A probe or an answer tells of one region, or the engine could not
     * say which region failed or serves. */
    for (size_t r = 0; r < l->region; r++) {
        const struct topo_region *o = &svc->regions[r];

        if (answer ? topo_region_of_answer(svc, s) == o
                   : topo_region_of_target(svc, s) == o)
            return yconf_fail(yc, it->node, it->ctx, NULL, "\"%s\" is in "
                              "regions[%zu] (%s) too: %s", s, r, o->name,
                              answer ? "an answer means one region"
                              : l->kind == TOPO_LIST_GLOBAL
                                  ? "a global target probes the global name"
                                  : "a target probes one region");
    }
    return 0;
}

/* One item of a list of strings (yconf_each with YCONF_ITEMS_SCALARS). */
static int topo_str_item(struct yconf *yc, const struct yconf_item *it,
                         void *arg)
{
    struct topo_list *l = arg;
    const char *s = (const char *)it->node->data.scalar.value;
    size_t len = it->node->data.scalar.length;
    size_t max = l->kind == TOPO_LIST_WEBHOOKS ? TOPO_MAX_URL : TOPO_MAX_NAME;
    int rc;

    *l->items = yconf_array(it, *l->items, sizeof(**l->items));
    if (!*l->items)
        return -ENOMEM;
    if (len == 0 || strlen(s) != len ||
        (it->node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (strcmp(s, "~") == 0 || strcmp(s, "null") == 0)))
        return yconf_fail(yc, it->node, it->ctx, NULL, "value is empty or "
                          "holds a NUL byte");
    if (len > max)
        return yconf_fail(yc, it->node, it->ctx, NULL, "longer than %zu "
                          "bytes", max);
    if (wire_name_check(s, len) < 0)
        return yconf_fail(yc, it->node, it->ctx, NULL, "holds a control "
                          "character");
    rc = topo_str_check(yc, it, l, s);
    if (rc < 0)
        return rc;
    (*l->items)[it->i] = strdup(s);
    *l->n = it->i + 1;                  /* so topo_free sees this one */
    return (*l->items)[it->i] ? 0 : -ENOMEM;
}

/* Reads the required list @key of @m into @l. */
static int topo_strs(struct yconf *yc, yaml_node_t *m, const char *ctx,
                     const char *key, int required, struct topo_list *l)
{
    int rc = yconf_each(yc, m, ctx, key, required, YCONF_ITEMS_SCALARS,
                        topo_str_item, l);

    return rc < 0 ? rc : 0;
}

/* lag: {metric, target}, optional, both or neither. */
static int topo_lag(struct yconf *yc, yaml_node_t *m, const char *up,
                    struct topo_region *r)
{
    yaml_node_t *lm;
    char ctx[160];
    int rc, has_metric, has_target;

    rc = yconf_map(yc, m, up, "lag", 0, &lm);
    if (rc)
        return rc < 0 ? rc : 0;
    snprintf(ctx, sizeof(ctx), "%s.lag", up);
    rc = yconf_check_keys(yc, lm, ctx, topo_lag_keys);
    if (rc < 0)
        return rc;
    has_metric = yconf_find(yc, lm, "metric") != NULL;
    has_target = yconf_find(yc, lm, "target") != NULL;
    if (!has_metric || !has_target)
        return yconf_fail(yc, lm, ctx, has_metric ? "target" : "metric",
                          "required key is missing: lag names a metric "
                          "and the target that scrapes it");
    rc = topo_name(yc, lm, ctx, "metric", &r->lag_metric);
    if (rc == 0)
        rc = topo_name(yc, lm, ctx, "target", &r->lag_target);
    return rc;
}

/* role: required on an active-passive service's regions, refused on the
 * others'; a second primary is refused where it is written. */
static int topo_role(struct yconf *yc, const struct yconf_item *it,
                     const struct topo_service *svc, struct topo_region *r)
{
    yaml_node_t *m = it->node, *at;
    char *role = NULL;
    int rc;

    rc = yconf_str(yc, m, it->ctx, "role", 0, &role);
    if (rc < 0)
        return rc;
    at = yconf_find(yc, m, "role");
    if (svc->pattern != TOPO_ACTIVE_PASSIVE) {
        if (rc == 0)
            rc = yconf_fail(yc, at, it->ctx, "role", "only active-passive "
                            "regions have a role; this service is %s",
                            topo_pattern_name(svc->pattern));
    } else if (rc == 1) {
        rc = yconf_fail(yc, m, it->ctx, "role", "required key is missing: "
                        "an active-passive region is primary or standby");
    } else if (topo_role_parse(role, &r->role) < 0) {
        rc = yconf_fail(yc, at, it->ctx, "role", "expected primary or "
                        "standby, got \"%s\"", role);
    } else if (r->role == TOPO_ROLE_PRIMARY && topo_primary(svc) != r) {
        rc = yconf_fail(yc, at, it->ctx, "role", "a second primary (%s is "
                        "one): an active-passive service has exactly one",
                        topo_primary(svc)->name);
    }
    free(role);
    return rc < 0 ? rc : 0;
}

/* One item of a service's regions. */
static int topo_region(struct yconf *yc, const struct yconf_item *it,
                       void *arg)
{
    struct topo_service *svc = arg;
    struct topo_list l = { .svc = svc, .region = it->i };
    yaml_node_t *m = it->node;
    struct topo_region *r;
    int rc;

    svc->regions = yconf_array(it, svc->regions, sizeof(*svc->regions));
    if (!svc->regions)
        return -ENOMEM;
    r = &svc->regions[it->i];
    svc->n_regions = it->i + 1;         /* so topo_free sees this one */
    rc = yconf_check_keys(yc, m, it->ctx, topo_region_keys);
    if (rc == 0)
        rc = topo_name(yc, m, it->ctx, "name", &r->name);
    for (size_t j = 0; rc == 0 && j < it->i; j++)
        if (strcmp(svc->regions[j].name, r->name) == 0)
            rc = yconf_fail(yc, yconf_find(yc, m, "name"), it->ctx, "name",
                            "region \"%s\" is listed twice", r->name);
    if (rc == 0)
        rc = topo_role(yc, it, svc, r);
    if (rc == 0) {
        l.kind = TOPO_LIST_TARGETS;
        l.items = &r->targets;
        l.n = &r->n_targets;
        rc = topo_strs(yc, m, it->ctx, "targets", 1, &l);
    }
    if (rc == 0) {
        l.kind = TOPO_LIST_ANSWERS;
        l.items = &r->answers;
        l.n = &r->n_answers;
        rc = topo_strs(yc, m, it->ctx, "answers", 1, &l);
    }
    if (rc == 0)
        rc = topo_lag(yc, m, it->ctx, r);
    return rc;
}

/* The service's name and global_name, checked. */
static int topo_service_names(struct yconf *yc, const struct yconf_item *it,
                              const struct topology *t,
                              struct topo_service *s)
{
    yaml_node_t *m = it->node;
    int rc;

    rc = yconf_str(yc, m, it->ctx, "name", 1, &s->name);
    if (rc == 0 && topo_service_name_ok(s->name) < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "name"), it->ctx, "name",
                        "\"%s\": 1 to %u letters, digits, '.', '_' or '-'",
                        s->name, TOPO_MAX_SERVICE_NAME);
    for (size_t j = 0; rc == 0 && j < it->i; j++)
        if (strcmp(t->services[j].name, s->name) == 0)
            rc = yconf_fail(yc, yconf_find(yc, m, "name"), it->ctx, "name",
                            "service \"%s\" is listed twice", s->name);
    if (rc == 0)
        rc = yconf_str(yc, m, it->ctx, "global_name", 1, &s->global_name);
    if (rc == 0 && topo_dns_name(s->global_name) < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "global_name"), it->ctx,
                        "global_name", "\"%s\" is not a DNS name",
                        s->global_name);
    return rc;
}

/* One item of services. */
static int topo_service(struct yconf *yc, const struct yconf_item *it,
                        void *arg)
{
    struct topology *t = arg;
    struct topo_list l = { .kind = TOPO_LIST_GLOBAL };
    yaml_node_t *m = it->node;
    struct topo_service *s;
    char *pattern = NULL;
    int rc;

    t->services = yconf_array(it, t->services, sizeof(*t->services));
    if (!t->services)
        return -ENOMEM;
    s = &t->services[it->i];
    t->n_services = it->i + 1;          /* so topo_free sees this one */
    rc = yconf_check_keys(yc, m, it->ctx, topo_service_keys);
    if (rc == 0)
        rc = topo_service_names(yc, it, t, s);
    if (rc == 0)
        rc = yconf_str(yc, m, it->ctx, "pattern", 1, &pattern);
    if (rc == 0 && topo_pattern_parse(pattern, &s->pattern) < 0)
        rc = yconf_fail(yc, yconf_find(yc, m, "pattern"), it->ctx, "pattern",
                        "expected active-passive, active-active or sharded, "
                        "got \"%s\"", pattern);
    free(pattern);
    if (rc == 0)
        rc = yconf_each(yc, m, it->ctx, "regions", 1, YCONF_ITEMS_MAPPINGS,
                        topo_region, s);
    if (rc == 0 && s->pattern == TOPO_ACTIVE_PASSIVE && !topo_primary(s))
        rc = yconf_fail(yc, yconf_find(yc, m, "regions"), it->ctx, "regions",
                        "an active-passive service needs one primary region");
    if (rc == 0) {
        l.svc = s;
        l.region = s->n_regions;    /* no global target in any region */
        l.items = &s->global_targets;
        l.n = &s->n_global_targets;
        rc = topo_strs(yc, m, it->ctx, "global_targets", 1, &l);
    }
    return rc;
}

/* incidents.quorum: a share strictly between 0 and 1. */
static int topo_quorum(struct yconf *yc, yaml_node_t *m, double *out)
{
    char *s = NULL, *end;
    double q;
    int rc;

    rc = yconf_str(yc, m, "incidents", "quorum", 0, &s);
    if (rc)
        return rc < 0 ? rc : 0;
    q = strtod(s, &end);
    if (end == s || *end || !isfinite(q) || q <= 0 || q >= 1)
        rc = yconf_fail(yc, yconf_find(yc, m, "quorum"), "incidents",
                        "quorum", "expected a share between 0 and 1 (both "
                        "excluded, 0.5: more than half), got \"%s\"", s);
    else
        *out = q;
    free(s);
    return rc;
}

/* incidents: {quorum, stale_intervals, stable, webhooks}, optional. */
static int topo_incidents(struct yconf *yc, yaml_node_t *root,
                          struct topo_options *o)
{
    struct topo_list l = { .kind = TOPO_LIST_WEBHOOKS, .items = &o->webhooks,
                           .n = &o->n_webhooks };
    long long stale = o->stale_intervals, stable = o->stable_ms;
    yaml_node_t *m;
    int rc;

    rc = yconf_map(yc, root, "", "incidents", 0, &m);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = yconf_check_keys(yc, m, "incidents", topo_incident_keys);
    if (rc == 0)
        rc = topo_quorum(yc, m, &o->quorum);
    if (rc == 0)
        rc = yconf_int(yc, m, "incidents", "stale_intervals", 0, 1,
                       TOPO_MAX_STALE, &stale);
    if (rc >= 0)
        rc = yconf_duration_ms(yc, m, "incidents", "stable", 0, 0,
                               TOPO_MAX_STABLE_MS, &stable);
    if (rc >= 0)
        rc = topo_strs(yc, m, "incidents", "webhooks", 0, &l);
    if (rc < 0)
        return rc;
    o->stale_intervals = (int)stale;
    o->stable_ms = stable;
    return 0;
}

int config_topology(struct yconf *yc, yaml_node_t *root, struct topology *t)
{
    int rc;

    t->opt.quorum = TOPO_QUORUM_DEFAULT;
    t->opt.stale_intervals = TOPO_STALE_INTERVALS_DEFAULT;
    t->opt.stable_ms = TOPO_STABLE_MS_DEFAULT;
    rc = yconf_each(yc, root, "", "services", 0, YCONF_ITEMS_MAPPINGS,
                    topo_service, t);
    if (rc >= 0)
        rc = topo_incidents(yc, root, &t->opt);
    return rc < 0 ? rc : 0;
}
