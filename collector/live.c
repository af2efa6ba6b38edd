/* live.c -- the nodes of each cluster heard from recently (see live.h).
 * Per cluster: every node seen, sorted by name (a binary search per
 * batch), and the list sent in Acks, rebuilt at most once per
 * LIVE_REFRESH_MS or when a node is new, so a busy fleet costs one
 * lookup per batch and the list rarely changes under the agents. */
#include "live.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hrw.h"

#define LIVE_REFRESH_MS 1000        /* a node gone shows within this too */

struct live_node {
    char *name;
    int64_t last_ms;                /* collector clock of its last batch */
};

struct live_cluster {
    struct live_node *nodes;        /* sorted by name */
    size_t n, cap;
    char **list;                    /* one allocation: pointers + names */
    size_t n_list, list_bytes;
    uint64_t hash;                  /* hrw_list_hash of list */
    int64_t built_ms;               /* INT64_MIN: build before use */
};

struct live {
    pthread_mutex_t mu;             /* guards every cluster */
    const struct collector_config *cfg;
    struct live_cluster *cl;        /* one per cfg->clusters[i] */
};

int live_new(const struct collector_config *cfg, struct live **out)
{
    struct live *lv = calloc(1, sizeof(*lv));

    if (lv == NULL)
        return -ENOMEM;
    lv->cl = calloc(cfg->n_clusters ? cfg->n_clusters : 1,
                    sizeof(*lv->cl));
    if (lv->cl == NULL) {
        free(lv);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_clusters; i++)
        lv->cl[i].built_ms = INT64_MIN;
    lv->cfg = cfg;
    pthread_mutex_init(&lv->mu, NULL);
    *out = lv;
    return 0;
}

void live_free(struct live *lv)
{
    if (lv == NULL)
        return;
    for (size_t i = 0; i < lv->cfg->n_clusters; i++) {
        for (size_t k = 0; k < lv->cl[i].n; k++)
            free(lv->cl[i].nodes[k].name);
        free(lv->cl[i].nodes);
        free(lv->cl[i].list);
    }
    free(lv->cl);
    pthread_mutex_destroy(&lv->mu);
    free(lv);
}

/* Where @name is in @lc's nodes, or where it would go (*found 0). */
static size_t live_find(const struct live_cluster *lc, const char *name,
                        int *found)
{
    size_t lo = 0, hi = lc->n, mid;
    int c;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(lc->nodes[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Notes @node at @now; a new one marks the list for a rebuild. 1 if it
 * is new, 0 known, -ENOMEM. */
static int live_note(struct live_cluster *lc, const char *node,
                     int64_t now)
{
    struct live_node *v;
    int found;
    size_t at = live_find(lc, node, &found);

    if (found) {
        lc->nodes[at].last_ms = now;
        return 0;
    }
    if (lc->n >= LIVE_MAX_NODES)
        return 0;
    if (lc->n == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 16;

        v = realloc(lc->nodes, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        lc->nodes = v;
        lc->cap = cap;
    }
    v = &lc->nodes[at];
    memmove(v + 1, v, (lc->n - at) * sizeof(*v));
    v->name = strdup(node);
    if (v->name == NULL) {
        memmove(v, v + 1, (lc->n - at) * sizeof(*v));
        return -ENOMEM;
    }
    v->last_ms = now;
    lc->n++;
    lc->built_ms = INT64_MIN;       /* listed at the next reply that asks */
    return 1;
}

/* Forgets nodes silent past @window, then makes the list: the live names
 * in order, as many as WIRE_MAX_LIVE and WIRE_MAX_LIVE_BYTES allow (a
 * name too long for the wire is left out: that agent probes everything). */
static int live_build(struct live_cluster *lc, int64_t now,
                      long long window)
{
    size_t j = 0, n = 0, bytes = 0;
    char **list, *p;

    for (size_t i = 0; i < lc->n; i++) {
        if (now - lc->nodes[i].last_ms > window)
            free(lc->nodes[i].name);
        else
            lc->nodes[j++] = lc->nodes[i];
    }
    lc->n = j;
    for (size_t i = 0; i < lc->n && n < WIRE_MAX_LIVE; i++) {
        size_t len = strlen(lc->nodes[i].name);

        if (len > WIRE_MAX_NODE)
            continue;
        if (bytes + len + 1 > WIRE_MAX_LIVE_BYTES)
            break;
        bytes += len + 1;
        n++;
    }
    list = malloc(n * sizeof(*list) + bytes + 1);
    if (list == NULL)
        return -ENOMEM;
    p = (char *)(list + n);
    for (size_t i = 0, k = 0; i < lc->n && k < n; i++) {
        size_t len = strlen(lc->nodes[i].name);

        if (len > WIRE_MAX_NODE)
            continue;
        memcpy(p, lc->nodes[i].name, len + 1);
        list[k++] = p;
        p += len + 1;
    }
    free(lc->list);
    lc->list = list;
    lc->n_list = n;
    lc->list_bytes = bytes;
    lc->hash = hrw_list_hash((const char *const *)list, n);
    lc->built_ms = now;
    return 0;
}

/* A copy of @lc's list, in one allocation like it. */
static char **live_copy(const struct live_cluster *lc)
{
    size_t head = lc->n_list * sizeof(char *);
    char **v = malloc(head + lc->list_bytes + 1);

    if (v == NULL)
        return NULL;
    memcpy((char *)v + head, (const char *)lc->list + head,
           lc->list_bytes);
    for (size_t i = 0; i < lc->n_list; i++)
        v[i] = (char *)v + (lc->list[i] - (char *)lc->list);
    return v;
}

int live_reply(struct live *lv, const struct collector_cluster *c,
               const char *node, uint64_t held, int64_t now_ms,
               Sextant__V1__Ack *ack, char ***names)
{
    size_t i = (size_t)(c - lv->cfg->clusters);
    struct live_cluster *lc;
    int rc;

    *names = NULL;
    if (i >= lv->cfg->n_clusters)
        return -EINVAL;
    lc = &lv->cl[i];
    pthread_mutex_lock(&lv->mu);
    rc = live_note(lc, node, now_ms);
    if (rc >= 0 && held != 0 &&
        (lc->built_ms == INT64_MIN ||
         now_ms - lc->built_ms >= LIVE_REFRESH_MS || now_ms < lc->built_ms))
        rc = live_build(lc, now_ms, c->probers_window_ms);
    if (rc >= 0 && held != 0 && lc->list != NULL) {
        ack->live_nodes_hash = lc->hash;
        if (held != lc->hash && lc->n_list > 0) {
            *names = live_copy(lc);
            if (*names == NULL) {
                ack->live_nodes_hash = 0;   /* "no list", not "same" */
                rc = -ENOMEM;
            } else {
                ack->live_nodes = *names;
                ack->n_live_nodes = lc->n_list;
            }
        }
    }
    pthread_mutex_unlock(&lv->mu);
    return rc < 0 ? rc : 0;
}
