/* incident_fill.c -- fills a new collector database for the incident
 * rebuild benchmark (bench/incident_bench.sh): --services active-passive
 * services of 3 regions (eu-west-1 primary, us-east-1 and ap-southeast-1
 * standby), each probed by --agents agents (cluster i % 3) every
 * --interval seconds over --days days: per service and agent, one HTTP
 * probe of each region's endpoint ("svcNNN-eu-west-1" ...), one HTTP
 * probe through the global name ("svcNNN-global", with served_by) and
 * one DNS probe of the global name ("svcNNN-dns", its answers). Each
 * agent's first probes bring a "healthy" state change per target.
 * --failovers times, spread over the span, one service's primary fails
 * for 6 rounds: its probes fail, each agent's state goes unhealthy after
 * 3 and healthy again after 2 successes, the global probe fails 2 rounds,
 * then the global name's answer switches to us-east-1 (a DNS change
 * event from every agent) and stays there. Region r answers 127.0.r.1.
 * With --config FILE it also writes the collector config listing these
 * services.
 *
 * Written like query_fill.c: a database made by the collector's own store
 * code (bench_db_create), rows with the store's own insert and binding
 * (bench_db_insert), one transaction per simulated hour, journal off
 * while filling, WAL at the end. No rollups (the rebuild does not read
 * them), no operator failover events (a failover event without a service
 * matches every service of those regions). Not part of the product.
 *
 * usage: incident_fill NEW_DB [--services N] [--agents N] [--days D]
 *            [--interval S] [--failovers N] [--end-ms MS] [--config FILE]
 * Prints key=value lines: events, rounds, targets, agents, interval_s,
 * failovers, from_ms, to_ms, seconds. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_db.h"
#include "bench_events.h"
#include "util.h"

#define FILL_REGIONS   3u               /* region r = bench_clusters[r] */
#define FILL_PER_SVC   (FILL_REGIONS + 2u)  /* + global HTTP, global DNS */
#define FILL_GLOBAL    FILL_REGIONS     /* target slot of the global probe */
#define FILL_DNS       (FILL_REGIONS + 1u)
#define FILL_FAIL_FOR  6                /* rounds a primary is down */
#define FILL_SWITCH_AT 2                /* round of the DNS switch */
#define FILL_RECV_MS   250
#define FILL_NAME_MAX  40

enum fill_kind { K_PROBE, K_STATE, K_DNS, K_COUNT };
static const char *const fill_kinds[K_COUNT] = { "probe", "state", "dns" };

struct fill_opts {
    const char *path, *config;
    unsigned services, agents, days, failovers;
    int64_t interval_ms, end_ms;
};

struct fill {
    sqlite3 *db;
    sqlite3_stmt *ins;
    const struct fill_opts *o;
    int64_t kind[K_COUNT];
    struct bench_ids ids;               /* only .cluster is used */
    int64_t region[FILL_REGIONS];       /* regions table (served_by) */
    int64_t answers[FILL_REGIONS];      /* texts: a DNS probe's answers */
    int64_t *target;                    /* services x FILL_PER_SVC */
    uint64_t events;
};

/* A region's answer, as a DNS probe stores it (store_answers_json). */
static void fill_answers_json(unsigned r, char *buf, size_t len)
{
    snprintf(buf, len, "[{\"type\":\"A\",\"value\":\"127.0.%u.1\","
             "\"ttl\":60}]", r + 1);
}

static void fill_target_name(unsigned s, unsigned slot, char *buf,
                             size_t len)
{
    if (slot < FILL_REGIONS)
        snprintf(buf, len, "svc%03u-%s", s, bench_clusters[slot]);
    else
        snprintf(buf, len, "svc%03u-%s", s,
                 slot == FILL_GLOBAL ? "global" : "dns");
}

static int fill_dims(struct fill *f)
{
    char name[FILL_NAME_MAX], json[128];

    for (unsigned i = 0; i < K_COUNT; i++)
        if (bench_db_name(f->db, "INSERT INTO kinds (name) VALUES (?1)",
                          fill_kinds[i], &f->kind[i]) < 0)
            return -1;
    for (unsigned r = 0; r < FILL_REGIONS; r++) {
        fill_answers_json(r, json, sizeof(json));
        if (bench_db_name(f->db, "INSERT INTO clusters (name) VALUES (?1)",
                          bench_clusters[r], &f->ids.cluster[r]) < 0 ||
            bench_db_name(f->db, "INSERT INTO regions (name) VALUES (?1)",
                          bench_clusters[r], &f->region[r]) < 0 ||
            bench_db_name(f->db, "INSERT INTO texts (text) VALUES (?1)",
                          json, &f->answers[r]) < 0)
            return -1;
    }
    for (unsigned s = 0; s < f->o->services; s++)
        for (unsigned k = 0; k < FILL_PER_SVC; k++) {
            fill_target_name(s, k, name, sizeof(name));
            if (bench_db_name(f->db, "INSERT INTO targets (name) VALUES (?1)",
                              name, &f->target[s * FILL_PER_SVC + k]) < 0)
                return -1;
        }
    return 0;
}

/* The collector config of these services (README "Services and
 * incidents"), beside a listen address and the database. */
static int fill_config(const struct fill_opts *o)
{
    FILE *fp = fopen(o->config, "w");

    if (!fp) {
        perror(o->config);
        return -1;
    }
    fprintf(fp, "# Written by incident_fill for %s\nlisten: 127.0.0.1:0\n"
            "db: %s\nclusters:\n", o->path,
            o->path);
    for (unsigned r = 0; r < FILL_REGIONS; r++)
        fprintf(fp, "  - name: %s\n    token: bench-token-%s-0123456789\n",
                bench_clusters[r], bench_clusters[r]);
    fprintf(fp, "services:\n");
    for (unsigned s = 0; s < o->services; s++) {
        fprintf(fp, "  - name: svc%03u\n    global_name: svc%03u.test\n"
                "    pattern: active-passive\n    regions:\n", s, s);
        for (unsigned r = 0; r < FILL_REGIONS; r++)
            fprintf(fp, "      - name: %s\n        role: %s\n"
                    "        targets: [svc%03u-%s]\n"
                    "        answers: [127.0.%u.1]\n", bench_clusters[r],
                    r == 0 ? "primary" : "standby", s, bench_clusters[r],
                    r + 1);
        fprintf(fp, "    global_targets: [svc%03u-global, svc%03u-dns]\n",
                s, s);
    }
    if (fclose(fp) != 0) {
        perror(o->config);
        return -1;
    }
    return 0;
}

/* One row: a typed probe (@data NULL) or a JSON event. */
static int fill_put(struct fill *f, int64_t agent_id, uint64_t seq,
                    int64_t t, int kind, int64_t target, const char *data,
                    int http, int ok, int64_t served, int64_t answers)
{
    struct bench_row r;

    memset(&r, 0, sizeof(r));
    sextant__v1__probe_result__init(&r.probe);
    sextant__v1__timings__init(&r.timings);
    r.e.agent_id = agent_id;
    r.e.seq = seq;
    r.e.unix_ms = t;
    r.e.recv_ms = t + FILL_RECV_MS;
    r.ids.kind = f->kind[kind];
    r.ids.target = target;
    if (data) {
        r.e.data = data;
    } else {
        r.probe.type = http ? SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP
                            : SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_DNS;
        r.probe.ok = ok;
        r.probe.status = http ? (ok ? 200 : 503) : 0;
        r.timings.dns_us = 300;
        r.timings.total_us = http ? 12000 : 300;
        r.probe.timings = &r.timings;
        r.ids.region = served;
        r.ids.answers = answers;
        r.e.probe = &r.probe;
    }
    if (bench_db_insert(f->ins, &r) < 0)
        return -1;
    f->events++;
    return 0;
}

/* The round (from 0) in which failover @i starts, and its service. */
static int64_t fill_fail_round(const struct fill_opts *o, int64_t rounds,
                               unsigned i)
{
    return rounds * (int64_t)(i + 1) / (int64_t)(o->failovers + 1);
}

static int fill_run(struct fill *f, int64_t from, int64_t rounds,
                    const int64_t *agent_ids, uint64_t *seq)
{
    const struct fill_opts *o = f->o;
    unsigned *serving = calloc(o->services, sizeof(*serving));
    unsigned next_fail = 0;
    int64_t fail_k = o->failovers ? fill_fail_round(o, rounds, 0) : -1;
    unsigned fail_svc = 0;
    int64_t hour_end = from + 3600000;
    char data[256];
    int rc = -1;

    if (!serving || bench_db_exec(f->db, "BEGIN") < 0)
        goto out;
    for (int64_t k = 0; k < rounds; k++) {
        int64_t t0 = from + k * o->interval_ms;
        int64_t ph;             /* round within the current failure */

        if (fail_k >= 0 && k >= fail_k + FILL_FAIL_FOR + 2) {
            next_fail++;
            fail_k = next_fail < o->failovers
                     ? fill_fail_round(o, rounds, next_fail) : -1;
        }
        fail_svc = (next_fail * 37u) % o->services;
        ph = fail_k >= 0 && k >= fail_k ? k - fail_k : -1;
        if (t0 >= hour_end) {
            if (bench_db_exec(f->db, "COMMIT") < 0 ||
                bench_db_exec(f->db, "BEGIN") < 0)
                goto out;
            hour_end += 3600000;
        }
        if (ph == FILL_SWITCH_AT)
            serving[fail_svc] = 1;
        for (unsigned a = 0; a < o->agents; a++)
            for (unsigned s = 0; s < o->services; s++) {
                const int64_t *tg = &f->target[s * FILL_PER_SVC];
                int failing = s == fail_svc && ph >= 0;
                /* Each agent spreads its probes over the interval. */
                int64_t t = t0 + (int64_t)a * 101 +
                            (int64_t)s * (o->interval_ms / 2) /
                            (int64_t)o->services;
                unsigned sv = serving[s];

                for (unsigned r = 0; r < FILL_REGIONS; r++) {
                    int ok = !(failing && r == 0 && ph < FILL_FAIL_FOR);

                    if (fill_put(f, agent_ids[a], ++seq[a], t, K_PROBE,
                                 tg[r], NULL, 1, ok, 0, 0) < 0)
                        goto out;
                    /* fall 3 / rise 2, and "healthy" after the first 2 */
                    if (r == 0 && failing &&
                        (ph == 2 || ph == FILL_FAIL_FOR + 1))
                        snprintf(data, sizeof(data), "{\"from\":\"%s\","
                                 "\"to\":\"%s\",\"reason\":\"\"}",
                                 ph == 2 ? "healthy" : "unhealthy",
                                 ph == 2 ? "unhealthy" : "healthy");
                    else if (k == 1)
                        snprintf(data, sizeof(data), "{\"from\":"
                                 "\"unknown\",\"to\":\"healthy\","
                                 "\"reason\":\"\"}");
                    else
                        continue;
                    if (fill_put(f, agent_ids[a], ++seq[a], t, K_STATE,
                                 tg[r], data, 0, 0, 0, 0) < 0)
                        goto out;
                }
                if (fill_put(f, agent_ids[a], ++seq[a], t + 1, K_PROBE,
                             tg[FILL_GLOBAL], NULL, 1,
                             !(failing && ph < FILL_SWITCH_AT),
                             f->region[sv], 0) < 0 ||
                    fill_put(f, agent_ids[a], ++seq[a], t + 2, K_PROBE,
                             tg[FILL_DNS], NULL, 0, 1, 0,
                             f->answers[sv]) < 0)
                    goto out;
                if (failing && ph == FILL_SWITCH_AT) {
                    snprintf(data, sizeof(data), "{\"name\":\"svc%03u.test\","
                             "\"old\":[{\"type\":\"A\",\"value\":"
                             "\"127.0.1.1\",\"ttl\":60}],\"new\":[{\"type\":"
                             "\"A\",\"value\":\"127.0.2.1\",\"ttl\":60}]}",
                             s);
                    if (fill_put(f, agent_ids[a], ++seq[a], t + 2, K_DNS,
                                 tg[FILL_DNS], data, 0, 0, 0, 0) < 0)
                        goto out;
                }
            }
        if (k % 100 == 99)
            fprintf(stderr, "incident_fill: %" PRIu64 " events\n",
                    f->events);
    }
    rc = bench_db_exec(f->db, "COMMIT");
out:
    free(serving);
    return rc;
}

/* Every agent's last seq as its watermark, seen at the end. */
static int fill_agents_done(struct fill *f, const int64_t *ids,
                            const uint64_t *seq, int64_t end_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(f->db, "UPDATE agents SET acked_seq = ?2,"
                           " last_seen_ms = ?3, clock_offset_ms = 0"
                           " WHERE id = ?1", -1, &s, NULL) != SQLITE_OK)
        rc = -1;
    for (unsigned i = 0; rc == 0 && i < f->o->agents; i++) {
        if (sqlite3_bind_int64(s, 1, ids[i]) != SQLITE_OK ||
            sqlite3_bind_int64(s, 2, (int64_t)seq[i]) != SQLITE_OK ||
            sqlite3_bind_int64(s, 3, end_ms) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_DONE)
            rc = -1;
        sqlite3_reset(s);
    }
    if (rc < 0)
        fprintf(stderr, "incident_fill: agents: %s\n",
                sqlite3_errmsg(f->db));
    sqlite3_finalize(s);
    return rc;
}

static int fill_parse(int argc, char **argv, struct fill_opts *o)
{
    static const struct option lopts[] = {
        { "services", required_argument, NULL, 's' },
        { "agents", required_argument, NULL, 'a' },
        { "days", required_argument, NULL, 'd' },
        { "interval", required_argument, NULL, 'i' },
        { "failovers", required_argument, NULL, 'f' },
        { "end-ms", required_argument, NULL, 'e' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    *o = (struct fill_opts){ .services = 200, .agents = 3, .days = 30,
                             .failovers = 10, .interval_ms = 3600000 };
    o->end_ms = util_now_ms();
    while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (opt) {
        case 's': o->services = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'a': o->agents = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': o->days = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'i': o->interval_ms = strtoll(optarg, NULL, 10) * 1000; break;
        case 'f': o->failovers = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'e': o->end_ms = strtoll(optarg, NULL, 10); break;
        case 'c': o->config = optarg; break;
        default: return -1;
        }
    }
    if (optind != argc - 1 || o->services == 0 || o->services > 1000 ||
        o->agents == 0 || o->agents > 1000 || o->days == 0 ||
        o->days > 3650 || o->interval_ms < 1000 ||
        o->interval_ms > 86400000 || o->failovers > 1000 ||
        o->end_ms < 946684800000LL + (int64_t)o->days * 86400000LL)
        return -1;
    o->path = argv[optind];
    return 0;
}

int main(int argc, char **argv)
{
    struct fill_opts o;
    struct fill f = { 0 };
    struct bench_agent ag;
    int64_t *agent_ids = NULL, from, rounds;
    uint64_t *seq = NULL;
    double t0 = bench_now_s();
    int status = 1;

    if (fill_parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: incident_fill NEW_DB [--services N]"
                " [--agents N] [--days D] [--interval S] [--failovers N]"
                " [--end-ms MS] [--config FILE]\n");
        return 2;
    }
    f.o = &o;
    from = o.end_ms - (int64_t)o.days * 86400000LL;
    rounds = (int64_t)o.days * 86400000LL / o.interval_ms;
    f.target = calloc((size_t)o.services * FILL_PER_SVC, sizeof(int64_t));
    agent_ids = calloc(o.agents, sizeof(*agent_ids));
    seq = calloc(o.agents, sizeof(*seq));
    if (!f.target || !agent_ids || !seq)
        goto out;
    if (o.config && fill_config(&o) < 0)
        goto out;
    if (bench_db_create(o.path, &f.db) < 0 ||
        bench_db_exec(f.db, "PRAGMA journal_mode=OFF") < 0 ||
        bench_db_exec(f.db, "PRAGMA synchronous=OFF") < 0 ||
        bench_db_exec(f.db, "PRAGMA cache_size=-262144") < 0 ||
        bench_db_prepare_event(f.db, &f.ins) < 0 ||
        bench_db_exec(f.db, "BEGIN") < 0 || fill_dims(&f) < 0)
        goto out;
    /* The agents' rows: node names and epochs as bench_events.h makes
     * them (cluster i % 3). */
    for (unsigned i = 0; i < o.agents; i++) {
        bench_agent_init(&ag, i, 1, from, o.interval_ms);
        if (bench_db_agent(f.db, &ag, &f.ids, from, &agent_ids[i]) < 0)
            goto out;
    }
    if (bench_db_exec(f.db, "COMMIT") < 0 ||
        fill_run(&f, from, rounds, agent_ids, seq) < 0 ||
        fill_agents_done(&f, agent_ids, seq, o.end_ms) < 0 ||
        bench_db_exec(f.db, "PRAGMA journal_mode=WAL") < 0)
        goto out;
    printf("events=%" PRIu64 "\nrounds=%" PRId64 "\ntargets=%u\nagents=%u\n"
           "interval_s=%" PRId64 "\nfailovers=%u\nfrom_ms=%" PRId64
           "\nto_ms=%" PRId64 "\nseconds=%.1f\n", f.events, rounds,
           o.services * FILL_PER_SVC, o.agents, o.interval_ms / 1000,
           o.failovers, from, from + rounds * o.interval_ms,
           bench_now_s() - t0);
    status = 0;
out:
    sqlite3_finalize(f.ins);
    if (f.db && sqlite3_close(f.db) != SQLITE_OK)
        status = 1;
    free(f.target);
    free(agent_ids);
    free(seq);
    return status;
}
