/* query_fill.c -- fills a new collector database for the query benchmark
 * (bench/query_bench.sh): N events (default 50 million) of --agents
 * simulated agents (bench_events.h) over the --days days before --end-ms,
 * with the minute and hour rollups the collector would have built from
 * them (collector/hist.h histograms of the successful probes' total
 * time), and each agent's watermark and clock offset.
 *
 * The fastest honest way: the database is created by the collector's own
 * store code (bench_db_create: its schema and indexes, nothing more, no
 * ANALYZE), then written with plain SQL in large transactions, in the
 * order the collector would have stored the rows (time order, agents
 * interleaved), with journal_mode=OFF and synchronous=OFF while filling:
 * a one-off load whose crash would only mean filling again. The file is
 * put back into WAL mode at the end, as the collector leaves it.
 *
 * usage: query_fill NEW_DB [--events N] [--agents N] [--days D]
 *            [--end-ms MS] [--seed S]
 * Prints key=value lines: events, agents, step_ms, from_ms, to_ms,
 * minute_rows, hour_rows, seconds. Not part of the product. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_db.h"
#include "bench_events.h"
#include "hist.h"
#include "util.h"

#define FILL_MINUTE_MS 60000LL
#define FILL_HOUR_MS   3600000LL
#define FILL_RECV_MS   250          /* agent time to collector receipt */

struct fill_opts {
    const char *path;
    uint64_t events, seed;
    unsigned agents, days;
    int64_t end_ms;
};

/* One rollup row being built: per target and cluster. */
struct fill_acc {
    uint64_t count, failures;
    struct hist h;
};

struct fill {
    sqlite3 *db;
    sqlite3_stmt *ins, *put_minute, *put_hour;
    struct bench_ids ids;
    struct fill_acc minute[BENCH_TARGETS][BENCH_CLUSTERS];
    struct fill_acc hour[BENCH_TARGETS][BENCH_CLUSTERS];
    uint64_t minute_rows, hour_rows;
};

/* Writes every non-empty accumulator of @acc at time @t with @put and
 * empties it; @into (may be NULL) gets them merged in first. */
static int fill_flush(struct fill *f, struct fill_acc (*acc)[BENCH_CLUSTERS],
                      struct fill_acc (*into)[BENCH_CLUSTERS],
                      sqlite3_stmt *put, int64_t t, uint64_t *rows)
{
    for (unsigned tg = 0; tg < BENCH_TARGETS; tg++)
        for (unsigned c = 0; c < BENCH_CLUSTERS; c++) {
            struct fill_acc *a = &acc[tg][c];
            uint8_t *blob = NULL;
            size_t len;
            int ok;

            if (a->count == 0)
                continue;
            if (into) {
                into[tg][c].count += a->count;
                into[tg][c].failures += a->failures;
                if (hist_merge(&into[tg][c].h, &a->h) < 0)
                    return -1;
            }
            if (hist_encode(&a->h, &blob, &len) < 0)
                return -1;
            ok = sqlite3_bind_int64(put, 1, f->ids.target[tg]) == SQLITE_OK &&
                 sqlite3_bind_int64(put, 2, f->ids.cluster[c]) == SQLITE_OK &&
                 sqlite3_bind_int64(put, 3, t) == SQLITE_OK &&
                 sqlite3_bind_int64(put, 4, (int64_t)a->count) == SQLITE_OK &&
                 sqlite3_bind_int64(put, 5, (int64_t)a->failures) ==
                     SQLITE_OK &&
                 sqlite3_bind_blob(put, 6, blob, (int)len, SQLITE_STATIC) ==
                     SQLITE_OK &&
                 sqlite3_step(put) == SQLITE_DONE;
            sqlite3_reset(put);
            sqlite3_clear_bindings(put);
            free(blob);
            if (!ok) {
                fprintf(stderr, "query_fill: rollup: %s\n",
                        sqlite3_errmsg(f->db));
                return -1;
            }
            (*rows)++;
            a->count = a->failures = 0;
            hist_reset(&a->h);
        }
    return 0;
}

/* Stores @ev of agent @a and counts it in the minute's rollups. */
static int fill_event(struct fill *f, const struct bench_agent *a,
                      int64_t agent_id, const struct bench_event *ev)
{
    struct bench_row r;
    struct fill_acc *acc;

    bench_db_row(&r, ev, agent_id, ev->unix_ms + FILL_RECV_MS, &f->ids);
    if (bench_db_insert(f->ins, &r) < 0)
        return -1;
    if (ev->kind != BENCH_PROBE)
        return 0;
    acc = &f->minute[ev->target][a->cluster];
    acc->count++;
    if (!ev->ok) {
        acc->failures++;
        return 0;
    }
    return hist_add(&acc->h, (double)ev->total_us, 1) < 0 ? -1 : 0;
}

/* Every agent's last seq as its watermark, its last sighting, and a
 * clock offset of a few ms, as the collector would have left them. */
static int fill_agents_done(struct fill *f, const struct bench_agent *agents,
                            const int64_t *ids, unsigned n, int64_t end_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(f->db, "UPDATE agents SET acked_seq = ?2,"
                           " last_seen_ms = ?3, clock_offset_ms = ?4"
                           " WHERE id = ?1", -1, &s, NULL) != SQLITE_OK)
        rc = -1;
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        if (sqlite3_bind_int64(s, 1, ids[i]) != SQLITE_OK ||
            sqlite3_bind_int64(s, 2, (int64_t)agents[i].next_seq - 1) !=
                SQLITE_OK ||
            sqlite3_bind_int64(s, 3, end_ms) != SQLITE_OK ||
            sqlite3_bind_double(s, 4, (double)((int)(i % 41) - 20) / 2.0) !=
                SQLITE_OK ||
            sqlite3_step(s) != SQLITE_DONE)
            rc = -1;
        sqlite3_reset(s);
    }
    if (rc < 0)
        fprintf(stderr, "query_fill: agents: %s\n", sqlite3_errmsg(f->db));
    sqlite3_finalize(s);
    return rc;
}

/* The fill proper: minute by minute, each agent's events of that minute,
 * one transaction per hour. */
static int fill_run(struct fill *f, const struct fill_opts *o,
                    int64_t *step_out, int64_t *from_out)
{
    struct bench_agent *agents = calloc(o->agents, sizeof(*agents));
    int64_t *ids = calloc(o->agents, sizeof(*ids));
    int64_t span = (int64_t)o->days * 86400000LL;
    int64_t from = o->end_ms - span, step, m;
    uint64_t per_agent = o->events / o->agents, done = 0, shown = 0;
    double t0 = bench_now_s();
    int rc = -1;

    if (!agents || !ids)
        goto out;
    from -= from % FILL_MINUTE_MS;
    step = span / (int64_t)per_agent;
    if (step < 1) {
        fprintf(stderr, "query_fill: too many events for %u days\n",
                o->days);
        goto out;
    }
    if (bench_db_exec(f->db, "BEGIN") < 0)
        goto out;
    for (unsigned i = 0; i < o->agents; i++) {
        bench_agent_init(&agents[i], i, o->seed, from, step);
        if (bench_db_agent(f->db, &agents[i], &f->ids, from, &ids[i]) < 0)
            goto out;
    }
    for (m = from; done < per_agent * o->agents; m += FILL_MINUTE_MS) {
        for (unsigned i = 0; i < o->agents; i++) {
            struct bench_agent *a = &agents[i];
            struct bench_event ev;

            while (a->next_ms < m + FILL_MINUTE_MS &&
                   a->next_seq <= per_agent) {
                bench_agent_next(a, &ev);
                if (fill_event(f, a, ids[i], &ev) < 0)
                    goto out;
                done++;
            }
        }
        if (fill_flush(f, f->minute, f->hour, f->put_minute, m,
                       &f->minute_rows) < 0)
            goto out;
        if ((m + FILL_MINUTE_MS) % FILL_HOUR_MS == 0) {
            if (fill_flush(f, f->hour, NULL, f->put_hour,
                           m + FILL_MINUTE_MS - FILL_HOUR_MS,
                           &f->hour_rows) < 0 ||
                bench_db_exec(f->db, "COMMIT") < 0 ||
                bench_db_exec(f->db, "BEGIN") < 0)
                goto out;
            if (done - shown >= 5000000) {
                shown = done;
                fprintf(stderr, "query_fill: %" PRIu64 " events, %.0f/s\n",
                        done, (double)done / (bench_now_s() - t0));
            }
        }
    }
    /* The last, partial hour (its start, as the store floors it). */
    if (fill_flush(f, f->hour, NULL, f->put_hour, m - m % FILL_HOUR_MS,
                   &f->hour_rows) < 0 ||
        fill_agents_done(f, agents, ids, o->agents, o->end_ms) < 0 ||
        bench_db_exec(f->db, "COMMIT") < 0)
        goto out;
    *step_out = step;
    *from_out = from;
    rc = 0;
out:
    free(agents);
    free(ids);
    return rc;
}

static int fill_parse(int argc, char **argv, struct fill_opts *o)
{
    static const struct option lopts[] = {
        { "events", required_argument, NULL, 'n' },
        { "agents", required_argument, NULL, 'a' },
        { "days", required_argument, NULL, 'd' },
        { "end-ms", required_argument, NULL, 'e' },
        { "seed", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    *o = (struct fill_opts){ .events = 50000000, .seed = 1, .agents = 200,
                             .days = 14 };
    o->end_ms = util_now_ms();
    while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (opt) {
        case 'n': o->events = strtoull(optarg, NULL, 10); break;
        case 'a': o->agents = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': o->days = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'e': o->end_ms = strtoll(optarg, NULL, 10); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        default: return -1;
        }
    }
    if (optind != argc - 1 || o->agents == 0 || o->agents > 100000 ||
        o->events < o->agents || o->days == 0 || o->days > 3650 ||
        o->end_ms < 946684800000LL + (int64_t)o->days * 86400000LL)
        return -1;
    o->path = argv[optind];
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const put_sql[2] = {
        "INSERT INTO rollup_minute (target_id, cluster_id, t, count,"
        " failures, hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        "INSERT INTO rollup_hour (target_id, cluster_id, t, count,"
        " failures, hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    };
    struct fill_opts o;
    struct fill *f;
    int64_t step = 0, from = 0;
    double t0 = bench_now_s();
    int status = 1;

    if (fill_parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: query_fill NEW_DB [--events N] [--agents N]"
                " [--days D] [--end-ms MS] [--seed S]\n");
        return 2;
    }
    f = calloc(1, sizeof(*f));
    if (!f)
        return 1;
    for (unsigned t = 0; t < BENCH_TARGETS; t++)
        for (unsigned c = 0; c < BENCH_CLUSTERS; c++) {
            hist_init(&f->minute[t][c].h);
            hist_init(&f->hour[t][c].h);
        }
    if (bench_db_create(o.path, &f->db) < 0 ||
        bench_db_exec(f->db, "PRAGMA journal_mode=OFF") < 0 ||
        bench_db_exec(f->db, "PRAGMA synchronous=OFF") < 0 ||
        bench_db_exec(f->db, "PRAGMA cache_size=-1048576") < 0 ||
        bench_db_prepare_event(f->db, &f->ins) < 0 ||
        sqlite3_prepare_v2(f->db, put_sql[0], -1, &f->put_minute, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(f->db, put_sql[1], -1, &f->put_hour, NULL) !=
            SQLITE_OK ||
        bench_db_exec(f->db, "BEGIN") < 0 ||
        bench_db_dims(f->db, &f->ids) < 0 ||
        bench_db_exec(f->db, "COMMIT") < 0 ||
        fill_run(f, &o, &step, &from) < 0 ||
        bench_db_exec(f->db, "PRAGMA journal_mode=WAL") < 0)
        goto out;
    printf("events=%" PRIu64 "\nagents=%u\nstep_ms=%" PRId64 "\n"
           "from_ms=%" PRId64 "\nto_ms=%" PRId64 "\nminute_rows=%" PRIu64
           "\nhour_rows=%" PRIu64 "\nseconds=%.1f\n",
           o.events / o.agents * o.agents, o.agents, step, from, o.end_ms,
           f->minute_rows, f->hour_rows, bench_now_s() - t0);
    status = 0;
out:
    sqlite3_finalize(f->ins);
    sqlite3_finalize(f->put_minute);
    sqlite3_finalize(f->put_hour);
    if (f->db && sqlite3_close(f->db) != SQLITE_OK)
        status = 1;
    for (unsigned t = 0; t < BENCH_TARGETS; t++)
        for (unsigned c = 0; c < BENCH_CLUSTERS; c++) {
            hist_free(&f->minute[t][c].h);
            hist_free(&f->hour[t][c].h);
        }
    free(f);
    return status;
}
