/* test_rollup.c -- the collector store's rollups, retention, group
 * commits and migration (collector/store_rollup.c, store_retention.c,
 * store_writer.c, store_schema.c), on real SQLite files, each checked
 * against a brute-force recomputation over the same generated data:
 * - minute and hour rollups: count and failures exact, p50/p95/p99 within
 *   2% of the exact nearest-rank percentile, also through store_latency;
 *   replayed batches counted once;
 * - retention: what is older than each retention is gone, everything
 *   newer is there, and the file shrinks;
 * - concurrent submits share group commits;
 * - a version 2 database migrates with its rollups backfilled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hist.h"
#include "store.h"
#include "store_test.h"
#include "util.h"

#define N_CLUSTERS   3
#define N_TARGETS    3
#define PER_BATCH    50
#define MINUTE_MS    60000LL
#define HOUR_MS      3600000LL
#define DAY_MS       86400000LL

static const char *const clusters[N_CLUSTERS] = { "us", "eu", "ap" };
static const char *const targets[N_TARGETS] = { "api-us", "api-eu", "db" };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_unit(void)                /* (0, 1) */
{
    return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

/* One generated event, and where it went. */
struct gen_event {
    int cluster, target;
    int probe;                  /* else a state change (not rolled up) */
    int ok;
    int code;                   /* failures: picks the error text */
    uint64_t total_us;
    int64_t unix_ms;
};

/* A data set: per cluster, events with seq = index + 1. */
struct gen {
    struct gen_event *ev[N_CLUSTERS];
    size_t n[N_CLUSTERS];
    uint64_t epoch;
};

/* The protobuf side, kept alive until the store is done with it. */
struct wire_batch {
    Sextant__V1__Batch b;
    Sextant__V1__Event *evs;
    Sextant__V1__Event **evp;
    Sextant__V1__ProbeResult *probes;
    Sextant__V1__StateChange *states;
    Sextant__V1__Timings *timings;
    char (*errors)[64];
};

static void gen_make(struct gen *g, size_t per_cluster, int64_t from_ms,
                     int64_t span_ms)
{
    g->epoch = 42;
    for (int c = 0; c < N_CLUSTERS; c++) {
        g->n[c] = per_cluster;
        g->ev[c] = calloc(per_cluster, sizeof(*g->ev[c]));
        assert_non_null(g->ev[c]);
        for (size_t i = 0; i < per_cluster; i++) {
            struct gen_event *e = &g->ev[c][i];
            double z = sqrt(-2 * log(rng_unit())) *
                       cos(6.283185307179586 * rng_unit());

            e->cluster = c;
            e->target = (int)(rng() % N_TARGETS);
            e->probe = rng() % 10 != 0;
            e->ok = rng() % 8 != 0;
            e->code = (int)(rng() % 50);
            /* Log-normal around 20 ms; one in 50 a slow outlier. */
            e->total_us = (uint64_t)exp(10 + 0.8 * z) +
                          (rng() % 50 == 0 ? 2000000 : 0);
            e->unix_ms = from_ms + (int64_t)(rng() % (uint64_t)span_ms);
        }
    }
}

static void gen_free(struct gen *g)
{
    for (int c = 0; c < N_CLUSTERS; c++)
        free(g->ev[c]);
}

/* Builds the batch of cluster @c's events [first, first + n). */
static void wire_build(struct wire_batch *wb, const struct gen *g, int c,
                       size_t first, size_t n)
{
    wb->evs = calloc(n, sizeof(*wb->evs));
    wb->evp = calloc(n, sizeof(*wb->evp));
    wb->probes = calloc(n, sizeof(*wb->probes));
    wb->states = calloc(n, sizeof(*wb->states));
    wb->timings = calloc(n, sizeof(*wb->timings));
    wb->errors = calloc(n, sizeof(*wb->errors));
    assert_true(wb->evs && wb->evp && wb->probes && wb->states &&
                wb->timings && wb->errors);
    sextant__v1__batch__init(&wb->b);
    wb->b.cluster = (char *)clusters[c];
    wb->b.region = (char *)clusters[c];
    wb->b.node = "n1";
    wb->b.agent_version = "test";
    wb->b.epoch = g->epoch;
    wb->b.first_seq = first + 1;
    wb->b.oldest_seq = 1;
    wb->b.n_events = n;
    wb->b.events = wb->evp;
    for (size_t i = 0; i < n; i++) {
        const struct gen_event *e = &g->ev[c][first + i];
        Sextant__V1__Event *ev = &wb->evs[i];

        sextant__v1__event__init(ev);
        ev->seq = first + i + 1;
        ev->unix_ms = e->unix_ms;
        if (e->probe) {
            Sextant__V1__ProbeResult *p = &wb->probes[i];

            sextant__v1__probe_result__init(p);
            sextant__v1__timings__init(&wb->timings[i]);
            wb->timings[i].total_us = e->total_us;
            p->target = (char *)targets[e->target];
            p->ok = e->ok;
            /* Error texts repeat within a day, differ across days: they
             * expire with their day's events. */
            snprintf(wb->errors[i], sizeof(wb->errors[i]),
                     "connection refused on day %lld, code %d",
                     (long long)(e->unix_ms / DAY_MS), e->code);
            p->error = e->ok ? "" : wb->errors[i];
            p->timings = &wb->timings[i];
            ev->kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            ev->probe = p;
        } else {
            Sextant__V1__StateChange *s = &wb->states[i];

            sextant__v1__state_change__init(s);
            s->target = (char *)targets[e->target];
            s->reason = "3 failures";
            ev->kind_case = SEXTANT__V1__EVENT__KIND_STATE;
            ev->state = s;
        }
        wb->evp[i] = ev;
    }
}

static void wire_free(struct wire_batch *wb)
{
    free(wb->evs);
    free(wb->evp);
    free(wb->probes);
    free(wb->states);
    free(wb->timings);
    free(wb->errors);
}

/* Async submits: a count of those still out. */
struct pending {
    int out, failed;
};

static void submit_done(void *ctx, int rc, uint64_t acked)
{
    struct pending *p = ctx;

    (void)acked;
    if (rc < 0)
        __atomic_add_fetch(&p->failed, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&p->out, 1, __ATOMIC_SEQ_CST);
}

/* Stores every event of @g in batches of PER_BATCH, in shuffled order,
 * with @replays batches sent twice, all submitted at once so they share
 * group commits. */
static void ingest_all(struct store *st, const struct gen *g, int replays)
{
    struct wire_batch *wbs;
    size_t n_wb = 0, cap = 0, *order, n_order;
    struct pending p = { 0, 0 };
    int64_t now = util_now_ms(), deadline;

    for (int c = 0; c < N_CLUSTERS; c++)
        cap += (g->n[c] + PER_BATCH - 1) / PER_BATCH;
    wbs = calloc(cap, sizeof(*wbs));
    order = calloc(cap + (size_t)replays, sizeof(*order));
    assert_true(wbs && order);
    for (int c = 0; c < N_CLUSTERS; c++)
        for (size_t f = 0; f < g->n[c]; f += PER_BATCH)
            wire_build(&wbs[n_wb++], g, c, f,
                       g->n[c] - f < PER_BATCH ? g->n[c] - f : PER_BATCH);
    for (size_t i = 0; i < n_wb; i++)
        order[i] = i;
    for (int r = 0; r < replays; r++)
        order[n_wb + (size_t)r] = rng() % n_wb;
    n_order = n_wb + (size_t)replays;
    for (size_t i = n_order - 1; i > 0; i--) {
        size_t j = rng() % (i + 1), t = order[i];

        order[i] = order[j];
        order[j] = t;
    }
    assert_int_equal(store_wait_ready(st, STORE_TEST_WAIT_MS), 0);
    for (size_t i = 0; i < n_order; i++) {
        __atomic_add_fetch(&p.out, 1, __ATOMIC_SEQ_CST);
        assert_int_equal(store_submit(st, &wbs[order[i]].b, now, 4096,
                                      submit_done, &p), 0);
    }
    deadline = util_mono_us() + STORE_TEST_WAIT_MS * 1000LL;
    while (__atomic_load_n(&p.out, __ATOMIC_SEQ_CST) > 0) {
        /* Abort, not fail: the writer still holds &p, on our stack. */
        if (util_mono_us() > deadline) {
            fprintf(stderr, "ingest_all: batches unanswered after %d ms\n",
                    STORE_TEST_WAIT_MS);
            abort();
        }
        usleep(1000);
    }
    assert_int_equal(p.failed, 0);
    for (size_t i = 0; i < n_wb; i++)
        wire_free(&wbs[i]);
    free(wbs);
    free(order);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The exact figures of one rollup row, from the generated data. */
struct truth {
    uint64_t count, failures;
    uint64_t *ok_us;            /* sorted */
    size_t n_ok;
};

/* Events of @g matching cluster @c (-1: any), target @t and time
 * [from, to): the truth. Caller frees ok_us. */
static void truth_of(const struct gen *g, int c, int t, int64_t from,
                     int64_t to, struct truth *out)
{
    memset(out, 0, sizeof(*out));
    for (int ci = 0; ci < N_CLUSTERS; ci++) {
        if (c >= 0 && ci != c)
            continue;
        for (size_t i = 0; i < g->n[ci]; i++) {
            const struct gen_event *e = &g->ev[ci][i];

            if (!e->probe || e->target != t || e->unix_ms < from ||
                e->unix_ms >= to)
                continue;
            out->count++;
            if (!e->ok) {
                out->failures++;
                continue;
            }
            out->ok_us = realloc(out->ok_us,
                                 (out->n_ok + 1) * sizeof(*out->ok_us));
            assert_non_null(out->ok_us);
            out->ok_us[out->n_ok++] = e->total_us;
        }
    }
    if (out->n_ok > 1)
        qsort(out->ok_us, out->n_ok, sizeof(*out->ok_us), cmp_u64);
}

static double truth_quantile(const struct truth *t, double q)
{
    size_t rank = (size_t)ceil(q * (double)t->n_ok);

    if (rank < 1)
        rank = 1;
    return (double)t->ok_us[rank - 1];
}

static void assert_close(double got, double want)
{
    if (fabs(got - want) > want * HIST_REL_ERROR * (1 + 1e-9)) {
        print_error("quantile %f, exact %f: off by more than 2%%\n", got,
                    want);
        fail();
    }
}

static void make_path(char *dir, char *path, size_t len)
{
    strcpy(dir, "/tmp/sextant-rollup-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, len, "%s/c.db", dir);
}

static void remove_db(const char *dir, const char *path)
{
    char p[300];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    rmdir(dir);
}

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    return db;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    fail_msg("unknown name %s", s);
    return -1;
}

/* Every row of rollup @table against the truth, and no row missing:
 * returns the number of rows. */
static size_t check_rollup_table(sqlite3 *db, const struct gen *g,
                                 const char *table, int64_t step,
                                 int64_t min_t)
{
    char sql[400];
    sqlite3_stmt *s = NULL;
    size_t rows = 0, want = 0;

    snprintf(sql, sizeof(sql),
             "SELECT c.name, tg.name, r.t, r.count, r.failures, r.hist"
             " FROM %s r JOIN clusters c ON c.id = r.cluster_id"
             " JOIN targets tg ON tg.id = r.target_id WHERE r.t >= %lld",
             table, (long long)min_t);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        int c = name_index(clusters, N_CLUSTERS,
                           (const char *)sqlite3_column_text(s, 0));
        int t = name_index(targets, N_TARGETS,
                           (const char *)sqlite3_column_text(s, 1));
        int64_t from = sqlite3_column_int64(s, 2);
        struct truth tr;
        struct hist h;

        assert_int_equal(from % step, 0);
        truth_of(g, c, t, from, from + step, &tr);
        assert_int_equal(sqlite3_column_int64(s, 3), tr.count);
        assert_int_equal(sqlite3_column_int64(s, 4), tr.failures);
        hist_init(&h);
        assert_int_equal(hist_merge_blob(&h, sqlite3_column_blob(s, 5),
                                         (size_t)sqlite3_column_bytes(s, 5)),
                         0);
        assert_int_equal(hist_count(&h), tr.n_ok);
        if (tr.n_ok > 0) {
            assert_close(hist_quantile(&h, 0.5), truth_quantile(&tr, 0.5));
            assert_close(hist_quantile(&h, 0.95), truth_quantile(&tr, 0.95));
            assert_close(hist_quantile(&h, 0.99), truth_quantile(&tr, 0.99));
        }
        hist_free(&h);
        free(tr.ok_us);
        rows++;
    }
    sqlite3_finalize(s);
    /* Every (cluster, target, step) with a probe has its row. */
    for (int c = 0; c < N_CLUSTERS; c++) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;

        for (size_t i = 0; i < g->n[c]; i++) {
            if (g->ev[c][i].unix_ms < lo)
                lo = g->ev[c][i].unix_ms;
            if (g->ev[c][i].unix_ms > hi)
                hi = g->ev[c][i].unix_ms;
        }
        for (int t = 0; t < N_TARGETS; t++)
            for (int64_t f = lo - lo % step; f <= hi; f += step) {
                struct truth tr;

                if (f < min_t)
                    continue;
                truth_of(g, c, t, f, f + step, &tr);
                want += tr.count > 0;
                free(tr.ok_us);
            }
    }
    assert_int_equal(rows, want);
    return rows;
}

static void test_rollups_match_brute_force(void **state)
{
    char dir[64], path[128];
    struct store *st = NULL;
    struct gen g;
    int64_t hour0 = util_now_ms() / HOUR_MS * HOUR_MS - 3 * HOUR_MS;
    sqlite3 *db;

    (void)state;
    make_path(dir, path, sizeof(path));
    gen_make(&g, 4000, hour0 - 7 * MINUTE_MS, 3 * HOUR_MS);
    assert_int_equal(store_open(path, NULL, &st), 0);
    ingest_all(st, &g, 40);

    db = db_open(path);
    /* Replays stored nothing twice: the events table has one row each. */
    assert_int_equal(db_int(db, "SELECT count(*) FROM events"),
                     N_CLUSTERS * 4000);
    assert_true(check_rollup_table(db, &g, "rollup_minute", MINUTE_MS,
                                   INT64_MIN) > 100);
    assert_true(check_rollup_table(db, &g, "rollup_hour", HOUR_MS,
                                   INT64_MIN) >= N_CLUSTERS * N_TARGETS * 3);
    /* Hours are the merge of their minutes. */
    assert_int_equal(db_int(db, "SELECT count(*) FROM rollup_hour h WHERE"
                            " h.count != (SELECT sum(m.count) FROM"
                            " rollup_minute m WHERE m.target_id ="
                            " h.target_id AND m.cluster_id = h.cluster_id"
                            " AND m.t >= h.t AND m.t < h.t + 3600000)"), 0);
    sqlite3_close(db);

    /* store_latency: every cluster merged, per minute. */
    {
        struct store_latency_query q = {
            .from_ms = hour0 - HOUR_MS, .to_ms = hour0 + 3 * HOUR_MS,
            .target = "api-eu", .step = STORE_STEP_MINUTE,
        };
        struct json_object *root, *points;
        char *json = NULL;
        size_t len, n;

        assert_int_equal(store_latency(st, &q, &json, &len), 0);
        root = json_tokener_parse(json);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "points", &points));
        n = json_object_array_length(points);
        assert_true(n > 150);
        for (size_t i = 0; i < n; i++) {
            struct json_object *pt = json_object_array_get_idx(points, i);
            struct json_object *v;
            struct truth tr;
            int64_t t;

            assert_true(json_object_object_get_ex(pt, "t", &v));
            t = json_object_get_int64(v);
            truth_of(&g, -1, 1, t, t + MINUTE_MS, &tr);
            assert_true(json_object_object_get_ex(pt, "count", &v));
            assert_int_equal(json_object_get_int64(v), tr.count);
            assert_true(json_object_object_get_ex(pt, "failures", &v));
            assert_int_equal(json_object_get_int64(v), tr.failures);
            assert_true(json_object_object_get_ex(pt, "p99_ms", &v));
            if (tr.n_ok == 0)
                assert_true(json_object_is_type(v, json_type_null));
            else
                assert_close(json_object_get_double(v) * 1000.0,
                             truth_quantile(&tr, 0.99));
            free(tr.ok_us);
        }
        json_object_put(root);
        free(json);
        /* Too many points for one reply: refused, not truncated. */
        q.from_ms = 0;
        q.to_ms = 100 * DAY_MS;
        assert_int_equal(store_latency(st, &q, &json, &len), -E2BIG);
    }
    store_close(st);
    gen_free(&g);
    remove_db(dir, path);
}

/* The first multiple of @step at or after @t (t > 0). */
static int64_t ceil_to(int64_t t, int64_t step)
{
    return (t + step - 1) / step * step;
}

static void test_retention_deletes_old_rows_and_shrinks_the_file(void **st_)
{
    char dir[64], path[128];
    struct store_options opt;
    struct store *st = NULL;
    struct gen g;
    int64_t now = util_now_ms() / MINUTE_MS * MINUTE_MS;
    int64_t cut_now;            /* retention's "now", after every commit */
    int64_t pages_before, kept_raw = 0;
    sqlite3 *db;

    (void)st_;
    store_options_default(&opt);
    opt.raw_retention_ms = 1 * DAY_MS;
    opt.minute_retention_ms = 2 * DAY_MS;
    opt.hour_retention_ms = 3 * DAY_MS;
    opt.retention_interval_ms = 10 * DAY_MS;   /* only when asked to */
    opt.queue_max_batches = 100000;             /* all submitted at once */
    make_path(dir, path, sizeof(path));
    /* 40,000 a cluster: with compact rows (schema 6), enough for a file
     * well past a checkpoint's worth of WAL (checked below). */
    gen_make(&g, 40000, now - 5 * DAY_MS, 5 * DAY_MS);
    assert_int_equal(store_open(path, &opt, &st), 0);
    ingest_all(st, &g, 0);
    /* Each group commit skipped the minutes (hours) past retention by the
     * wall clock at that commit, not by @now: a minute that crossed its
     * cutoff while the batches went in holds only the events of the
     * groups before. Retention at a time read after the last commit is
     * past every such cutoff, so it deletes those rows, and every row it
     * keeps was rolled up whole. */
    cut_now = util_now_ms();
    for (int c = 0; c < N_CLUSTERS; c++)
        for (size_t i = 0; i < g.n[c]; i++)
            kept_raw += g.ev[c][i].unix_ms >= cut_now - DAY_MS;

    /* The writer checkpoints as it goes: the WAL holds about a
     * checkpoint's worth of pages (1000), not everything written. */
    {
        char wal[160];
        struct stat sb;

        snprintf(wal, sizeof(wal), "%s-wal", path);
        assert_int_equal(stat(wal, &sb), 0);
        assert_true(stat(path, &sb) == 0 && sb.st_size > (8 << 20));
        assert_int_equal(stat(wal, &sb), 0);
        assert_true(sb.st_size < (12 << 20));
    }
    db = db_open(path);
    pages_before = db_int(db, "PRAGMA page_count");
    /* Minute rollups for minutes already past their retention were never
     * made; hour ones were. */
    {
        char sql[160];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollup_minute"
                 " WHERE t < %lld", (long long)(now - 2 * DAY_MS));
        assert_int_equal(db_int(db, sql), 0);
    }
    sqlite3_close(db);

    assert_int_equal(store_test_retention_run(st, cut_now), 0);

    db = db_open(path);
    assert_int_equal(db_int(db, "SELECT count(*) FROM events"), kept_raw);
    assert_true(kept_raw > 0);
    {
        char sql[160];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE"
                 " unix_ms < %lld", (long long)(cut_now - DAY_MS));
        assert_int_equal(db_int(db, sql), 0);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollup_minute"
                 " WHERE t < %lld", (long long)(cut_now - 2 * DAY_MS));
        assert_int_equal(db_int(db, sql), 0);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollup_hour WHERE"
                 " t < %lld", (long long)(cut_now - 3 * DAY_MS));
        assert_int_equal(db_int(db, sql), 0);
    }
    /* What is left matches the truth, every row from the first minute
     * (hour) retention keeps on: none is partial, none missing. */
    check_rollup_table(db, &g, "rollup_minute", MINUTE_MS,
                       ceil_to(cut_now - 2 * DAY_MS, MINUTE_MS));
    check_rollup_table(db, &g, "rollup_hour", HOUR_MS,
                       ceil_to(cut_now - 3 * DAY_MS, HOUR_MS));
    /* Error texts went with the last events that used them. */
    assert_true(db_int(db, "SELECT count(*) FROM texts") > 0);
    assert_int_equal(db_int(db, "SELECT count(*) FROM texts WHERE id NOT IN"
                            " (SELECT text_id FROM events"
                            "  WHERE text_id IS NOT NULL)"), 0);
    /* Pages went back to the file system. */
    assert_int_equal(db_int(db, "PRAGMA freelist_count"), 0);
    assert_true(db_int(db, "PRAGMA page_count") < pages_before / 2);
    sqlite3_close(db);

    /* A new agent sends the old days' texts again: interned anew (no
     * stale cached id of a deleted text), every batch stored. */
    {
        struct gen g2;

        gen_make(&g2, 2000, now - 5 * DAY_MS, 5 * DAY_MS);
        g2.epoch = 43;
        ingest_all(st, &g2, 0);
        gen_free(&g2);
    }

    store_close(st);
    gen_free(&g);
    remove_db(dir, path);
}

static void test_concurrent_batches_share_commits(void **state)
{
    char dir[64], path[128];
    struct store *st = NULL;
    struct store_stats s;
    struct gen g;

    (void)state;
    make_path(dir, path, sizeof(path));
    gen_make(&g, 3000, util_now_ms() - HOUR_MS, HOUR_MS);
    assert_int_equal(store_open(path, NULL, &st), 0);
    ingest_all(st, &g, 0);          /* 180 batches submitted at once */
    store_stats(st, &s);
    assert_int_equal(s.group_batches_sum, 180);
    assert_true(s.commits < 180);
    assert_int_equal(s.commit_seconds_le[STORE_COMMIT_BUCKETS], s.commits);
    assert_int_equal(s.queue_batches, 0);
    assert_true(s.ready);
    store_close(st);
    gen_free(&g);
    remove_db(dir, path);
}

/* A database as schema version 2 left it, with two probe results. */
static const char v2_db[] =
    "CREATE TABLE agents (id INTEGER PRIMARY KEY, cluster TEXT NOT NULL,"
    " region TEXT NOT NULL, node TEXT NOT NULL, epoch INTEGER NOT NULL,"
    " acked_seq INTEGER NOT NULL DEFAULT 0,"
    " agent_version TEXT NOT NULL DEFAULT '',"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    " clock_offset_ms REAL,"
    " drop_first_seq INTEGER NOT NULL DEFAULT 0,"
    " drop_last_seq INTEGER NOT NULL DEFAULT 0,"
    " drop_count INTEGER NOT NULL DEFAULT 0,"
    " drop_last_ms INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (cluster, node, epoch));"
    "CREATE TABLE events (id INTEGER PRIMARY KEY,"
    " agent_id INTEGER NOT NULL REFERENCES agents(id), seq INTEGER,"
    " unix_ms INTEGER NOT NULL, recv_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL, target TEXT, data TEXT NOT NULL,"
    " UNIQUE (agent_id, seq));"
    "CREATE INDEX events_time ON events (unix_ms);"
    "INSERT INTO agents VALUES (1, 'us', 'us-east', 'n1', 5, 2, 'v', 1, 1,"
    " NULL, 0, 0, 0, 0);"
    "INSERT INTO events VALUES (1, 1, 1, 1764090000000, 1, 'probe', 'api',"
    " '{\"type\":\"http\",\"ok\":true,\"error\":\"\",\"total_us\":20000}');"
    "INSERT INTO events VALUES (2, 1, 2, 1764090001000, 1, 'probe', 'api',"
    " '{\"type\":\"http\",\"ok\":false,\"error\":\"timeout\","
    "\"total_us\":0}');"
    "PRAGMA user_version = 2;";

static void test_version_2_database_migrates(void **state)
{
    char dir[64], path[128], *json = NULL;
    struct store_options opt;
    struct store_timeline_query q = {
        .from_ms = 1764090000000, .to_ms = 1764090002000, .limit = 10,
    };
    struct store *st = NULL;
    sqlite3 *db = NULL;
    size_t len;

    (void)state;
    make_path(dir, path, sizeof(path));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v2_db, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store_options_default(&opt);
    opt.raw_retention_ms = 0;           /* the events are from 2025 */
    opt.minute_retention_ms = 0;
    opt.hour_retention_ms = 0;
    assert_int_equal(store_open(path, &opt, &st), 0);
    assert_int_equal(store_wait_ready(st, STORE_TEST_WAIT_MS), 0);
    assert_int_equal(store_timeline(st, &q, &json, &len), 0);
    assert_non_null(strstr(json, "\"error\":\"timeout\""));
    assert_non_null(strstr(json, "\"error\":\"\""));
    assert_non_null(strstr(json, "\"count\":2,"));
    free(json);
    db = db_open(path);
    assert_int_equal(db_int(db, "PRAGMA user_version"), 9);
    assert_int_equal(db_int(db, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(db_int(db, "SELECT count FROM rollup_minute"), 2);
    assert_int_equal(db_int(db, "SELECT failures FROM rollup_minute"), 1);
    assert_int_equal(db_int(db, "SELECT failures FROM rollup_hour"), 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM texts"), 1);
    sqlite3_close(db);
    store_close(st);
    remove_db(dir, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollups_match_brute_force),
        cmocka_unit_test(test_retention_deletes_old_rows_and_shrinks_the_file),
        cmocka_unit_test(test_concurrent_batches_share_commits),
        cmocka_unit_test(test_version_2_database_migrates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
