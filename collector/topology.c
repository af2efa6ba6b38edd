/* topology.c -- names, lookups and freeing for the topology (topology.h).
 * Does not parse YAML (config_topo.c does) and derives no state (the
 * incident engine, incident.c, does). */
#include "topology.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const topo_pattern_names[] = {
    [TOPO_ACTIVE_PASSIVE] = "active-passive",
    [TOPO_ACTIVE_ACTIVE] = "active-active",
    [TOPO_SHARDED] = "sharded",
};
static const char *const topo_role_names[] = {
    [TOPO_ROLE_NONE] = "none",
    [TOPO_ROLE_PRIMARY] = "primary",
    [TOPO_ROLE_STANDBY] = "standby",
};

#define TOPO_N_PATTERNS (sizeof(topo_pattern_names) / sizeof(char *))
#define TOPO_N_ROLES    (sizeof(topo_role_names) / sizeof(char *))

const char *topo_pattern_name(enum topo_pattern p)
{
    return (unsigned)p < TOPO_N_PATTERNS ? topo_pattern_names[p] : "unknown";
}

const char *topo_role_name(enum topo_role r)
{
    return (unsigned)r < TOPO_N_ROLES ? topo_role_names[r] : "unknown";
}

int topo_pattern_parse(const char *s, enum topo_pattern *out)
{
    for (size_t i = 0; i < TOPO_N_PATTERNS; i++)
        if (strcmp(s, topo_pattern_names[i]) == 0) {
            *out = (enum topo_pattern)i;
            return 0;
        }
    return -EINVAL;
}

/* "none" is no role a config may write: it is the absence of `role:`. */
int topo_role_parse(const char *s, enum topo_role *out)
{
    if (strcmp(s, "primary") == 0)
        *out = TOPO_ROLE_PRIMARY;
    else if (strcmp(s, "standby") == 0)
        *out = TOPO_ROLE_STANDBY;
    else
        return -EINVAL;
    return 0;
}

const struct topo_service *topo_service_by_name(const struct topology *t,
                                                const char *name)
{
    for (size_t i = 0; i < t->n_services; i++)
        if (strcmp(t->services[i].name, name) == 0)
            return &t->services[i];
    return NULL;
}

const struct topo_region *topo_region_by_name(const struct topo_service *svc,
                                              const char *name)
{
    for (size_t i = 0; i < svc->n_regions; i++)
        if (strcmp(svc->regions[i].name, name) == 0)
            return &svc->regions[i];
    return NULL;
}

/* 1 if @s is one of the @n strings of @list. */
static int topo_in_list(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

const struct topo_region *
topo_region_of_target(const struct topo_service *svc, const char *target)
{
    for (size_t i = 0; i < svc->n_regions; i++)
        if (topo_in_list(svc->regions[i].targets, svc->regions[i].n_targets,
                         target))
            return &svc->regions[i];
    return NULL;
}

int topo_is_global_target(const struct topo_service *svc, const char *target)
{
    return topo_in_list(svc->global_targets, svc->n_global_targets, target);
}

const struct topo_region *topo_primary(const struct topo_service *svc)
{
    for (size_t i = 0; i < svc->n_regions; i++)
        if (svc->regions[i].role == TOPO_ROLE_PRIMARY)
            return &svc->regions[i];
    return NULL;
}

/* @s parsed as an IPv4 or IPv6 address into @buf: its family, or 0. */
static int topo_addr(const char *s, unsigned char buf[16])
{
    if (inet_pton(AF_INET, s, buf) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, s, buf) == 1)
        return AF_INET6;
    return 0;
}

/* Length of name @s without one trailing dot. */
static size_t topo_name_len(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

int topo_answer_eq(const char *a, const char *b)
{
    unsigned char ba[16], bb[16];
    int fa = topo_addr(a, ba), fb = topo_addr(b, bb);
    size_t na, nb;

    if (fa || fb)
        return fa == fb &&
               memcmp(ba, bb, fa == AF_INET ? 4 : 16) == 0;
    na = topo_name_len(a);
    nb = topo_name_len(b);
    return na == nb && strncasecmp(a, b, na) == 0;
}

const struct topo_region *
topo_region_of_answer(const struct topo_service *svc, const char *answer)
{
    for (size_t i = 0; i < svc->n_regions; i++) {
        const struct topo_region *r = &svc->regions[i];

        for (size_t j = 0; j < r->n_answers; j++)
            if (topo_answer_eq(r->answers[j], answer))
                return r;
    }
    return NULL;
}

const struct topo_region *
topo_region_of_answers(const struct topo_service *svc,
                       const char *const *answers, size_t n, int *split)
{
    const struct topo_region *hit = NULL;
    int mixed = 0;

    for (size_t i = 0; i < n && !mixed; i++) {
        const struct topo_region *r = topo_region_of_answer(svc, answers[i]);

        if (!r || (hit && r != hit))
            mixed = 1;
        hit = r;
    }
    if (split)
        *split = mixed;
    return mixed ? NULL : hit;
}

/* Frees the @n strings of @list and the list. */
static void topo_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void topo_free(struct topology *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_services; i++) {
        struct topo_service *s = &t->services[i];

        for (size_t j = 0; j < s->n_regions; j++) {
            struct topo_region *r = &s->regions[j];

            free(r->name);
            topo_free_list(r->targets, r->n_targets);
            topo_free_list(r->answers, r->n_answers);
            free(r->lag_metric);
            free(r->lag_target);
        }
        free(s->regions);
        free(s->name);
        free(s->global_name);
        topo_free_list(s->global_targets, s->n_global_targets);
    }
    free(t->services);
    topo_free_list(t->opt.webhooks, t->opt.n_webhooks);
    memset(t, 0, sizeof(*t));
}
