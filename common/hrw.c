/* hrw.c -- rendezvous hashing for `probers: N` (see hrw.h). The score
 * function is part of the contract between agents: change it and agents
 * of two versions pick different probers (a target then has too many or
 * too few until all are upgraded). */
#include "hrw.h"

#include <string.h>

#include "util.h"

/* murmur3's fmix64: FNV-1a alone moves few high bits for a change in the
 * last byte ("node-1" vs "node-2"), and the rank compares whole words. */
static uint64_t hrw_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t hrw_score(const char *target, const char *node)
{
    uint64_t h = UTIL_FNV1A64_INIT;

    h = util_fnv1a64(h, target, strlen(target) + 1);   /* with its NUL */
    h = util_fnv1a64(h, node, strlen(node));
    return hrw_mix(h);
}

size_t hrw_rank(const char *target, const char *self,
                const char *const *nodes, size_t n)
{
    uint64_t mine = hrw_score(target, self), s;
    size_t above = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(nodes[i], self) == 0)
            continue;
        s = hrw_score(target, nodes[i]);
        if (s > mine || (s == mine && strcmp(nodes[i], self) < 0))
            above++;
    }
    return above;
}

uint64_t hrw_list_hash(const char *const *nodes, size_t n)
{
    uint64_t h = UTIL_FNV1A64_INIT;

    for (size_t i = 0; i < n; i++)
        h = util_fnv1a64(h, nodes[i], strlen(nodes[i]) + 1);
    return h <= HRW_NO_LIST ? HRW_NO_LIST + 1 : h;
}
