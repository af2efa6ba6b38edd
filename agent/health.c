/* health.c -- consecutive-result thresholds per target; see health.h. */
#include "health.h"

int health_observe(struct health *h, int ok, unsigned healthy_after,
                   unsigned unhealthy_after, enum health_state *from)
{
    enum health_state next = h->state;

    if (ok) {
        h->fail_streak = 0;
        if (h->ok_streak < healthy_after)   /* no overflow on long runs */
            h->ok_streak++;
        if (h->ok_streak >= healthy_after)
            next = HEALTH_HEALTHY;
    } else {
        h->ok_streak = 0;
        if (h->fail_streak < unhealthy_after)
            h->fail_streak++;
        if (h->fail_streak >= unhealthy_after)
            next = HEALTH_UNHEALTHY;
    }
    if (next == h->state)
        return 0;
    *from = h->state;
    h->state = next;
    return 1;
}

const char *health_name(enum health_state s)
{
    switch (s) {
    case HEALTH_HEALTHY:   return "healthy";
    case HEALTH_UNHEALTHY: return "unhealthy";
    default:               return "unknown";
    }
}
