/* health.h -- a target's health state machine, as Route 53 runs one:
 * healthy becomes unhealthy after N consecutive failures, unhealthy
 * becomes healthy after M consecutive successes. A new target is unknown
 * until it has seen M successes or N failures in a row. Pure logic: no
 * I/O, no clock, no events (loop.c turns a change into one). */
#ifndef SEXTANT_AGENT_HEALTH_H
#define SEXTANT_AGENT_HEALTH_H

#include "wire.h"

/* The wire's values, so a state goes into a StateChange as it is. */
enum health_state {
    HEALTH_UNKNOWN = SEXTANT__V1__HEALTH__HEALTH_UNKNOWN,
    HEALTH_HEALTHY = SEXTANT__V1__HEALTH__HEALTH_HEALTHY,
    HEALTH_UNHEALTHY = SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY,
};

struct health {
    enum health_state state;
    unsigned ok_streak;         /* consecutive successes, 0 after a failure */
    unsigned fail_streak;       /* consecutive failures, 0 after a success */
};

#define HEALTH_INIT { HEALTH_UNKNOWN, 0, 0 }

/* Feeds one result. Returns 1 if the state changed, with the old state in
 * *from (the new one is h->state); 0 otherwise. */
int health_observe(struct health *h, int ok, unsigned healthy_after,
                   unsigned unhealthy_after, enum health_state *from);

const char *health_name(enum health_state s);

#endif
