/* incident_bench.c -- how fast the incident engine (collector/incident.c)
 * eats events, alone: no store, no SQLite. 200 active-passive services of
 * 3 regions (600 regional targets) and one target through each global
 * name, probed by 3 agents once a second: 2400 events a simulated second.
 * Every 10 simulated minutes one service's primary fails for 20 s (its
 * agents' state events follow, fall 3 / rise 2), so incidents open,
 * restore and close along the way. The events of one second are made
 * once; each round only stamps their times and seqs, so the figure is
 * the engine's. Not part of the product.
 *
 * usage: incident_bench [EVENTS]   (default 10000000)
 * Prints key=value lines: events, seconds, events_per_s, incidents. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incident.h"

#define N_SVC    200
#define N_REG    3
#define N_AGENTS 3
#define ROUND    (N_AGENTS * N_SVC * (N_REG + 1))
#define FAIL_EVERY 600          /* rounds between two outages */
#define FAIL_FOR   20           /* rounds an outage lasts */

static char names[N_SVC][N_REG + 2][32];    /* targets, then global */
static char answers[N_REG][16];
static char *target_ptr[N_SVC][N_REG];
static char *answer_ptr[N_REG];
static char *global_ptr[N_SVC];
static char svc_names[N_SVC][16], global_names[N_SVC][32];
static struct topo_region regions[N_SVC][N_REG];
static struct topo_service services[N_SVC];
static const char *const REGION[N_REG] = { "r1", "r2", "r3" };

static void topo_build(struct topology *t)
{
    for (int r = 0; r < N_REG; r++) {
        snprintf(answers[r], sizeof(answers[r]), "127.0.%d.1", r + 1);
        answer_ptr[r] = answers[r];
    }
    for (int s = 0; s < N_SVC; s++) {
        snprintf(svc_names[s], sizeof(svc_names[s]), "svc%03d", s);
        snprintf(global_names[s], sizeof(global_names[s]), "svc%03d.test",
                 s);
        for (int r = 0; r < N_REG; r++) {
            snprintf(names[s][r], sizeof(names[s][r]), "svc%03d-%s", s,
                     REGION[r]);
            target_ptr[s][r] = names[s][r];
            regions[s][r] = (struct topo_region){
                .name = (char *)REGION[r],
                .role = r == 0 ? TOPO_ROLE_PRIMARY : TOPO_ROLE_STANDBY,
                .targets = &target_ptr[s][r], .n_targets = 1,
                .answers = &answer_ptr[r], .n_answers = 1,
            };
        }
        snprintf(names[s][N_REG], sizeof(names[s][N_REG]), "svc%03d-global",
                 s);
        global_ptr[s] = names[s][N_REG];
        services[s] = (struct topo_service){
            .name = svc_names[s], .global_name = global_names[s],
            .pattern = TOPO_ACTIVE_PASSIVE, .regions = regions[s],
            .n_regions = N_REG, .global_targets = &global_ptr[s],
            .n_global_targets = 1,
        };
    }
    *t = (struct topology){
        .services = services, .n_services = N_SVC,
        .opt = { .quorum = TOPO_QUORUM_DEFAULT,
                 .stale_intervals = TOPO_STALE_INTERVALS_DEFAULT,
                 .stable_ms = TOPO_STABLE_MS_DEFAULT },
    };
}

static size_t n_changes;

static void sink(void *ctx, enum inc_change what, const struct inc_record *r)
{
    (void)ctx;
    (void)r;
    n_changes += what == INC_CLOSED;
}

/* One second's probes, in (time, agent) order: each agent probes at its
 * own millisecond, every target in turn. */
static void round_build(struct inc_event *ev)
{
    size_t i = 0;

    for (int a = 0; a < N_AGENTS; a++)
        for (int s = 0; s < N_SVC; s++)
            for (int k = 0; k <= N_REG; k++, i++) {
                ev[i] = (struct inc_event){
                    .agent_id = a + 1, .kind = INC_EV_PROBE,
                    .target = names[s][k], .ok = 1,
                    .served_by = k == N_REG ? REGION[0] : "",
                    .dns_name = "", .fo_kind = "", .from_region = "",
                    .to_region = "", .fo_service = "", .metric = "",
                    .healthy = -1,
                };
            }
}

/* Feeds round @k; the service failing in it (if any) sees its primary's
 * probes fail and, after fall/rise, state events. */
static int round_feed(struct inc_engine *e, struct inc_event *ev, int64_t k,
                      uint64_t *seq, size_t *fed)
{
    int64_t phase = k % FAIL_EVERY;
    int fail_svc = (int)((k / FAIL_EVERY) % N_SVC);

    for (size_t i = 0; i < ROUND; i++) {
        struct inc_event *x = &ev[i];
        int a = (int)(i / (N_SVC * (N_REG + 1)));
        int s = (int)(i / (N_REG + 1) % N_SVC);
        int reg = (int)(i % (N_REG + 1));

        x->t_ms = k * 1000 + 100 * a;
        x->seq = ++seq[a];
        x->ok = !(s == fail_svc && (reg == 0 || reg == N_REG) &&
                  phase < FAIL_FOR);
        if (inc_engine_feed(e, x) < 0)
            return -1;
        (*fed)++;
        if (s == fail_svc && reg == 0 &&
            (phase == 2 || phase == FAIL_FOR + 1 || k == 0)) {
            struct inc_event st = *x;

            st.kind = INC_EV_STATE;
            st.healthy = phase != 2;
            st.seq = ++seq[a];
            if (inc_engine_feed(e, &st) < 0)
                return -1;
            (*fed)++;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    size_t want = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    static struct inc_event ev[ROUND];
    uint64_t seq[N_AGENTS] = { 0 };
    struct topology topo;
    struct inc_engine *e;
    struct timespec t0, t1;
    size_t fed = 0;
    double secs;

    topo_build(&topo);
    e = inc_engine_new(&topo, sink, NULL);
    if (!e)
        return 1;
    round_build(ev);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t k = 0; fed < want; k++)
        if (round_feed(e, ev, k, seq, &fed) < 0) {
            fprintf(stderr, "incident_bench: feed failed\n");
            return 1;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) +
           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("events=%zu\nseconds=%.3f\nevents_per_s=%.0f\nincidents=%zu\n",
           fed, secs, (double)fed / secs, n_changes);
    inc_engine_free(e);
    return 0;
}
