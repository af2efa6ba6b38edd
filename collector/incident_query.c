/* incident_query.c -- what the incident engine answers about its state
 * (see incident.h): its horizon, the incidents it holds, a service's
 * region states and stale agents, and an incident's durations. Reads
 * only; the rules that make the state are incident.c. */
#include "incident_priv.h"

int64_t inc_engine_horizon(const struct inc_engine *e)
{
    return e->horizon;
}

int inc_engine_error(const struct inc_engine *e)
{
    return e->err;
}

void inc_engine_keep_closed(struct inc_engine *e, int64_t keep_ms)
{
    e->keep_closed = keep_ms < 0 ? -1 : keep_ms;
}

void inc_engine_each(const struct inc_engine *e,
                     void (*fn)(void *ctx, const struct inc_record *r),
                     void *ctx)
{
    for (size_t k = 0; k < e->topo->n_services; k++) {
        const struct svc_rt *sr = &e->svc[e->order[k]];

        for (size_t i = 0; i < sr->n_inc; i++)
            fn(ctx, &sr->inc[i]);
    }
}

static size_t svc_index(const struct inc_engine *e,
                        const struct topo_service *svc)
{
    return (size_t)(svc - e->topo->services);
}

size_t inc_engine_service_state(const struct inc_engine *e,
                                const struct topo_service *svc,
                                void (*fn)(void *ctx,
                                           const struct inc_region_state *),
                                void *ctx,
                                const struct inc_record **open)
{
    size_t i = svc_index(e, svc);
    const struct slot_rt *rt = &e->rt[e->svc[i].base];

    for (size_t r = 0; fn && r < svc->n_regions; r++) {
        struct inc_region_state st = {
            .region = &svc->regions[r], .health = rt[r].health,
            .agents = (size_t)rt[r].agents, .unhealthy = (size_t)rt[r].unh,
            .stale = (size_t)rt[r].stale, .serving = (size_t)rt[r].serving,
            .since_ms = rt[r].since,
        };

        fn(ctx, &st);
    }
    if (open)
        *open = inc_open(e, i);
    return (size_t)rt[svc->n_regions].serving;
}

void inc_engine_stale_agents(const struct inc_engine *e,
                             const struct topo_service *svc,
                             void (*fn)(void *ctx, int64_t agent_id,
                                        int64_t last_ms),
                             void *ctx)
{
    size_t base = e->svc[svc_index(e, svc)].base;

    for (size_t a = 0; a < e->n_agents; a++) {
        int64_t last = INC_NONE;
        int stale = 0;

        for (size_t s = base; s < base + svc->n_regions + 2; s++) {
            const struct agent_slot *as = inc_as(e, a, s);

            stale |= as->part && as->stale;
            if (as->last_probe != INC_NONE && as->last_probe > last)
                last = as->last_probe;
        }
        if (stale)
            fn(ctx, e->agent_id[a], last);
    }
}

void inc_durations(const struct inc_record *r, struct inc_durations *out)
{
    int64_t ff = r->first_failure_ms;

    out->time_to_detect = ff != INC_NONE && r->detected_ms != INC_NONE ?
                          r->detected_ms - ff : INC_NONE;
    out->time_to_failover = r->detected_ms != INC_NONE &&
                            r->dns_all_ms != INC_NONE ?
                            r->dns_all_ms - r->detected_ms : INC_NONE;
    out->rto = ff != INC_NONE && r->restored_ms != INC_NONE ?
               r->restored_ms - ff : INC_NONE;
    out->outage = r->service->pattern == TOPO_SHARDED ? out->rto : INC_NONE;
}
