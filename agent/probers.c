/* probers.c -- the live node list from the collectors' Acks, and which
 * targets this node probes (see probers.h). Several collectors (fan-out)
 * each send their list; the latest one received is the one used: an HA
 * pair hears the same agents, so their lists agree but for a moment. */
#include "probers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hrw.h"
#include "log.h"
#include "wire.h"

struct probers {
    const struct agent_config *cfg; /* borrowed */
    char **live;                    /* one allocation (wire_ack_live) */
    size_t n_live;
    uint64_t hash;                  /* hrw_list_hash(live); HRW_NO_LIST */
    uint64_t version;
    int wanted;                     /* some target has probers */
    int warned;                     /* a bad list was logged */
};

void probers_set_config(struct probers *pr, const struct agent_config *cfg)
{
    pr->cfg = cfg;
    pr->wanted = 0;
    for (size_t i = 0; i < cfg->n_targets; i++)
        pr->wanted |= cfg->targets[i].probers > 0;
    pr->version++;
}

int probers_new(const struct agent_config *cfg, struct probers **out)
{
    struct probers *pr = calloc(1, sizeof(*pr));

    if (pr == NULL)
        return -ENOMEM;
    pr->hash = HRW_NO_LIST;
    probers_set_config(pr, cfg);
    *out = pr;
    return 0;
}

void probers_free(struct probers *pr)
{
    if (pr == NULL)
        return;
    free(pr->live);
    free(pr);
}

uint64_t probers_held(const struct probers *pr)
{
    return pr && pr->wanted ? pr->hash : 0;
}

uint64_t probers_version(const struct probers *pr)
{
    return pr->version;
}

size_t probers_n_live(const struct probers *pr)
{
    return pr->n_live;
}

void probers_ack(struct probers *pr, const uint8_t *resp, size_t len)
{
    char **names = NULL;
    size_t n = 0;
    uint64_t hash = 0;
    int rc;

    if (pr == NULL || !pr->wanted)
        return;
    rc = wire_ack_live(resp, len, &names, &n, &hash);
    if (rc < 0) {
        /* Once: a collector that sends a bad list sends it every Ack. */
        if (!pr->warned)
            log_msg(LOGL_WARN, "probers", "a collector's live node list "
                    "is unusable (%s); keeping the list held", strerror(-rc));
        pr->warned = 1;
        return;
    }
    if (n == 0)                 /* unchanged, or a collector without */
        return;
    hash = hrw_list_hash((const char *const *)names, n);
    if (hash == pr->hash) {
        free(names);
        return;
    }
    free(pr->live);
    pr->live = names;
    pr->n_live = n;
    pr->hash = hash;
    pr->version++;
}

static int probers_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether @node is in the (sorted) list. */
static int probers_listed(const struct probers *pr, const char *node)
{
    return pr->n_live > 0 &&
           bsearch(&node, pr->live, pr->n_live, sizeof(*pr->live),
                   probers_name_cmp) != NULL;
}

size_t probers_select(const struct probers *pr, unsigned char *sel,
                      size_t *rank)
{
    const struct agent_config *cfg = pr->cfg;
    int usable = pr->n_live > 0 && probers_listed(pr, cfg->node);
    size_t n = 0, best = (size_t)-1, best_rank = (size_t)-1, r;

    for (size_t i = 0; i < cfg->n_targets; i++) {
        const struct agent_target *t = &cfg->targets[i];

        r = 0;
        if (usable && t->probers > 0)
            r = hrw_rank(t->name, cfg->node,
                         (const char *const *)pr->live, pr->n_live);
        if (rank)
            rank[i] = r;
        sel[i] = !usable || t->probers == 0 || r < (size_t)t->probers;
        n += sel[i];
        if (r < best_rank) {
            best_rank = r;
            best = i;
        }
    }
    if (n == 0 && best != (size_t)-1) {
        sel[best] = 1;
        n = 1;
    }
    return n;
}
