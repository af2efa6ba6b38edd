/* test_store_now.c -- target_now (collector/store_now.c) on a real SQLite
 * file: each group commit moves an (agent, target)'s row to its latest
 * state and last typed probe, a late batch of older events moves nothing
 * back, and GET /api/v1/status (store_targets_status) says what the
 * status query before schema 8 said from the history (that query is
 * copied here, run by SQLite on the same file). A file whose target_now
 * is empty (as migration 8 leaves one) is filled at open with the same
 * answer, a restart keeps it, and retention deleting every event keeps
 * the rows and the texts they name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_test.h"
#include "util.h"

#define DAY_MS 86400000LL

/* GET /api/v1/status's per-agent rows as the status query before schema
 * 8 computed them from the events (collector/store_status.c at commit
 * 2c2b7b5: the latest state event per (cluster, node, target), then the
 * agent's last typed probe of the target from an hour before it on), one
 * line each: cluster|target|node|health|since|probe ms|ok|status|error. */
static const char old_status_sql[] =
    "WITH s AS (SELECT a.cluster AS cluster, tg.name AS target,"
    "  a.node AS node, e.agent_id AS agent_id, e.target_id AS target_id,"
    "  max(e.unix_ms) AS ms, json_extract(e.data, '$.to') AS health,"
    "  coalesce(CAST(round(a.clock_offset_ms) AS INTEGER), 0) AS off"
    "  FROM events e JOIN agents a ON a.id = e.agent_id"
    "  JOIN targets tg ON tg.id = e.target_id"
    "  WHERE e.kind_id = (SELECT id FROM kinds WHERE name = 'state')"
    "    AND e.data IS NOT NULL"
    "  GROUP BY a.cluster, a.node, e.target_id),"
    " p AS (SELECT s.*, (SELECT e.id FROM events e"
    "  WHERE e.target_id = s.target_id AND e.unix_ms >= s.ms - 3600000"
    "    AND e.agent_id = s.agent_id AND e.probe_type IS NOT NULL"
    "  ORDER BY e.unix_ms DESC LIMIT 1) AS pid FROM s)"
    " SELECT p.cluster || '|' || p.target || '|' || p.node || '|' ||"
    "  coalesce(p.health, 'unknown') || '|' || (p.ms + p.off) || '|' ||"
    "  CASE WHEN e.id IS NULL THEN '-|-|-|-' ELSE"
    "  (e.unix_ms + p.off) || '|' || e.ok || '|' || e.status || '|' ||"
    "  coalesce(x.text, '') END"
    " FROM p LEFT JOIN events e ON e.id = p.pid"
    " LEFT JOIN texts x ON x.id = e.text_id"
    " ORDER BY p.cluster, p.target, p.node";

struct now_ctx {
    char dir[64], path[256];
    struct store_options o;
    struct store *st;
    int64_t t;                  /* the scenario's time 0, agent clocks */
};

/* One event to build: a probe (@state NULL) or a state change. */
struct now_ev {
    int64_t at;                 /* ms after ctx->t */
    const char *target;
    const char *state;          /* "healthy", "unhealthy": a state event */
    int ok, status;
    const char *error;
};

static Sextant__V1__Health now_health(const char *s)
{
    return strcmp(s, "healthy") == 0 ? SEXTANT__V1__HEALTH__HEALTH_HEALTHY
                                     : SEXTANT__V1__HEALTH__HEALTH_UNHEALTHY;
}

/* Stores @n events of node @node (cluster c-@node) as one batch with
 * seqs from @seq on. */
static void now_batch(struct now_ctx *c, const char *node, uint64_t seq,
                      const struct now_ev *evs, size_t n)
{
    Sextant__V1__Batch b = SEXTANT__V1__BATCH__INIT;
    Sextant__V1__Event ev[16], *evp[16];
    Sextant__V1__ProbeResult pr[16];
    Sextant__V1__Timings tm[16];
    Sextant__V1__StateChange sc[16];
    char cluster[32];
    uint64_t acked = 0;

    assert_true(n <= 16);
    snprintf(cluster, sizeof(cluster), "c-%s", node);
    for (size_t i = 0; i < n; i++) {
        sextant__v1__event__init(&ev[i]);
        ev[i].seq = seq + i;
        ev[i].unix_ms = c->t + evs[i].at;
        if (evs[i].state) {
            sextant__v1__state_change__init(&sc[i]);
            sc[i].target = (char *)evs[i].target;
            sc[i].from = SEXTANT__V1__HEALTH__HEALTH_UNKNOWN;
            sc[i].to = now_health(evs[i].state);
            sc[i].reason = "";
            ev[i].kind_case = SEXTANT__V1__EVENT__KIND_STATE;
            ev[i].state = &sc[i];
        } else {
            sextant__v1__probe_result__init(&pr[i]);
            sextant__v1__timings__init(&tm[i]);
            tm[i].total_us = 1000 + (uint64_t)i * 7;
            pr[i].target = (char *)evs[i].target;
            pr[i].type = SEXTANT__V1__PROBE_TYPE__PROBE_TYPE_HTTP;
            pr[i].ok = evs[i].ok;
            pr[i].status = (uint32_t)evs[i].status;
            pr[i].error = (char *)(evs[i].error ? evs[i].error : "");
            pr[i].timings = &tm[i];
            ev[i].kind_case = SEXTANT__V1__EVENT__KIND_PROBE;
            ev[i].probe = &pr[i];
        }
        evp[i] = &ev[i];
    }
    b.cluster = cluster;
    b.region = "r1";
    b.node = (char *)node;
    b.epoch = 1;
    b.first_seq = seq;
    b.n_events = n;
    b.events = evp;
    assert_int_equal(store_test_ingest(c->st, &b, util_now_ms(), &acked), 0);
    assert_int_equal(acked, seq + n - 1);
}

/* One SQL answer of @c's file: its rows' first column, one line each. */
static char *now_sql(const struct now_ctx *c, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char *out = calloc(1, 1);
    size_t len = 0;

    assert_non_null(out);
    assert_int_equal(sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY,
                                     NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        size_t n = strlen(v ? v : "NULL");

        out = realloc(out, len + n + 2);
        assert_non_null(out);
        memcpy(out + len, v ? v : "NULL", n);
        len += n;
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

/* The target_now row of @node's agent and @target as
 * health|state_ms|probe_ms|ok|status|error, offsets from c->t. */
static char *now_row(const struct now_ctx *c, const char *node,
                     const char *target)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(n.health, '-') || '|' ||"
             " coalesce(n.state_ms - %lld, '-') || '|' ||"
             " coalesce(n.probe_ms - %lld, '-') || '|' ||"
             " coalesce(n.ok, '-') || '|' || coalesce(n.status, '-') || '|'"
             " || coalesce(x.text, '')"
             " FROM target_now n JOIN agents a ON a.id = n.agent_id"
             " JOIN targets t ON t.id = n.target_id"
             " LEFT JOIN texts x ON x.id = n.text_id"
             " WHERE a.node = '%s' AND t.name = '%s'",
             (long long)c->t, (long long)c->t, node, target);
    return now_sql(c, sql);
}

static void now_row_is(const struct now_ctx *c, const char *node,
                       const char *target, const char *want)
{
    char *got = now_row(c, node, target);

    assert_string_equal(got, want);
    free(got);
}

/* The status JSON's agents as old_status_sql's lines. */
static char *now_status_lines(const char *json)
{
    struct json_object *root = json_tokener_parse(json);
    char *out = calloc(1, 1);
    size_t len = 0;

    assert_non_null(root);
    assert_non_null(out);
    for (size_t i = 0; i < json_object_array_length(root); i++) {
        struct json_object *g = json_object_array_get_idx(root, i), *ags;

        assert_true(json_object_object_get_ex(g, "agents", &ags));
        for (size_t j = 0; j < json_object_array_length(ags); j++) {
            struct json_object *a = json_object_array_get_idx(ags, j);
            struct json_object *v, *last, *since, *tm;
            char line[1024], probe[512] = "-|-|-|-";

            assert_true(json_object_object_get_ex(a, "last", &last));
            if (last && json_object_get_type(last) != json_type_null) {
                assert_true(json_object_object_get_ex(last, "time", &tm));
                assert_true(json_object_object_get_ex(tm, "ms", &v));
                snprintf(probe, sizeof(probe), "%lld|%d|",
                         (long long)json_object_get_int64(v),
                         json_object_get_boolean(
                             json_object_object_get(last, "ok")));
                snprintf(probe + strlen(probe),
                         sizeof(probe) - strlen(probe), "%lld|%s",
                         (long long)json_object_get_int64(
                             json_object_object_get(last, "status")),
                         json_object_get_string(
                             json_object_object_get(last, "error")));
            }
            assert_true(json_object_object_get_ex(a, "since", &since));
            snprintf(line, sizeof(line), "%s|%s|%s|%s|%lld|%s\n",
                     json_object_get_string(
                         json_object_object_get(g, "cluster")),
                     json_object_get_string(
                         json_object_object_get(g, "target")),
                     json_object_get_string(json_object_object_get(a, "node")),
                     json_object_get_string(
                         json_object_object_get(a, "health")),
                     (long long)json_object_get_int64(
                         json_object_object_get(since, "ms")),
                     probe);
            out = realloc(out, len + strlen(line) + 1);
            assert_non_null(out);
            memcpy(out + len, line, strlen(line) + 1);
            len += strlen(line);
        }
    }
    json_object_put(root);
    return out;
}

static char *now_status(struct now_ctx *c)
{
    char *json = NULL;
    size_t len = 0;

    assert_int_equal(store_targets_status(c->st, &json, &len), 0);
    assert_int_equal(strlen(json), len);
    return json;
}

/* The status the store gives now has @want as its lines (and the old
 * query's lines, when @old). */
static void now_status_is(struct now_ctx *c, const char *want, int old)
{
    char *json = now_status(c), *lines = now_status_lines(json);

    assert_string_equal(lines, want);
    if (old) {
        char *o = now_sql(c, old_status_sql);

        assert_string_equal(lines, o);
        free(o);
    }
    free(lines);
    free(json);
}

static void now_open(struct now_ctx *c)
{
    assert_int_equal(store_open(c->path, &c->o, &c->st), 0);
    assert_int_equal(store_wait_ready(c->st, STORE_TEST_WAIT_MS), 0);
}

static void now_exec(const struct now_ctx *c, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void now_setup(struct now_ctx *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/sextant-now-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->path, sizeof(c->path), "%s/c.db", c->dir);
    store_options_default(&c->o);
    c->t = util_now_ms() - 600000;
    now_open(c);
}

/* Agent n1 sees t1 go healthy then unhealthy (two failed probes, an
 * error), t2 healthy, and probes t3 without a state yet; agent n2 sees
 * t1 healthy. */
static const struct now_ev n1_first[] = {
    { 0, "t1", NULL, 1, 200, NULL },
    { 0, "t1", "healthy", 0, 0, NULL },
    { 500, "t2", NULL, 1, 204, NULL },
    { 500, "t2", "healthy", 0, 0, NULL },
    { 700, "t3", NULL, 1, 200, NULL },
    { 1000, "t1", NULL, 0, 503, "status 503 not expected" },
    { 2000, "t1", NULL, 0, 503, "boom" },
    { 2000, "t1", "unhealthy", 0, 0, NULL },
};
static const struct now_ev n2_first[] = {
    { 100, "t1", NULL, 1, 200, NULL },
    { 100, "t1", "healthy", 0, 0, NULL },
};
/* Then n1 delivers a late batch (its clock stepped back): t1 healthy and
 * a good probe, both older than what target_now holds; and a newer probe
 * of t2 alone. */
static const struct now_ev n1_late[] = {
    { -5000, "t1", NULL, 1, 200, NULL },
    { -5000, "t1", "healthy", 0, 0, NULL },
    { 3000, "t2", NULL, 0, 500, "late but newer" },
};

static void now_feed(struct now_ctx *c)
{
    now_batch(c, "n1", 1, n1_first, sizeof(n1_first) / sizeof(*n1_first));
    now_row_is(c, "n1", "t1", "unhealthy|2000|2000|0|503|boom\n");
    now_row_is(c, "n1", "t2", "healthy|500|500|1|204|\n");
    now_row_is(c, "n1", "t3", "-|-|700|1|200|\n");
    now_batch(c, "n2", 1, n2_first, sizeof(n2_first) / sizeof(*n2_first));
    now_row_is(c, "n2", "t1", "healthy|100|100|1|200|\n");
    now_batch(c, "n1", 9, n1_late, sizeof(n1_late) / sizeof(*n1_late));
}

static char *now_want(const struct now_ctx *c)
{
    char *w = malloc(1024);

    assert_non_null(w);
    /* No clock offset was learnt (no send times): corrected = agent's. */
    snprintf(w, 1024,
             "c-n1|t1|n1|unhealthy|%lld|%lld|0|503|boom\n"
             "c-n1|t2|n1|healthy|%lld|%lld|0|500|late but newer\n"
             "c-n2|t1|n2|healthy|%lld|%lld|1|200|\n",
             (long long)c->t + 2000, (long long)c->t + 2000,
             (long long)c->t + 500, (long long)c->t + 3000,
             (long long)c->t + 100, (long long)c->t + 100);
    return w;
}

static void test_ingest_moves_target_now_forward_never_back(void **state)
{
    struct now_ctx c;
    char *want;

    (void)state;
    now_setup(&c);
    now_feed(&c);
    now_row_is(&c, "n1", "t1", "unhealthy|2000|2000|0|503|boom\n");
    now_row_is(&c, "n1", "t2", "healthy|500|3000|0|500|late but newer\n");
    want = now_want(&c);
    now_status_is(&c, want, 1);
    free(want);
    store_close(c.st);
    store_test_remove(c.dir, c.path);
}

static void test_an_empty_target_now_is_filled_at_open_as_before(
    void **state)
{
    struct now_ctx c;
    char *want, *before, *rows;

    (void)state;
    now_setup(&c);
    now_feed(&c);
    before = now_status(&c);
    store_close(c.st);
    /* What migration 8 leaves on a file with events. */
    now_exec(&c, "DELETE FROM target_now");
    now_open(&c);
    want = now_want(&c);
    /* The fill takes states with their probes, not probes alone (t3),
     * and t2's last probe: after its state, as the old query took it. */
    now_status_is(&c, want, 1);
    {
        char *json = now_status(&c);

        assert_string_equal(json, before);
        free(json);
    }
    rows = now_sql(&c, "SELECT count(*) FROM target_now");
    assert_string_equal(rows, "3\n");
    free(rows);
    /* A restart keeps the rows; nothing fills them again. */
    store_close(c.st);
    now_open(&c);
    now_status_is(&c, want, 1);
    rows = now_sql(&c, "SELECT count(*) FROM target_now");
    assert_string_equal(rows, "3\n");
    free(rows);
    free(want);
    free(before);
    store_close(c.st);
    store_test_remove(c.dir, c.path);
}

static void test_retention_keeps_target_now_and_its_texts(void **state)
{
    struct now_ctx c;
    char *want, *rows;

    (void)state;
    now_setup(&c);
    now_feed(&c);
    want = now_want(&c);
    /* Every event expires; "now" is not limited to a window. */
    assert_int_equal(store_test_retention_run(c.st, c.t + 30 * DAY_MS), 0);
    rows = now_sql(&c, "SELECT count(*) FROM events");
    assert_string_equal(rows, "0\n");
    free(rows);
    now_status_is(&c, want, 0);
    now_row_is(&c, "n1", "t3", "-|-|700|1|200|\n");
    free(want);
    store_close(c.st);
    store_test_remove(c.dir, c.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_moves_target_now_forward_never_back),
        cmocka_unit_test(test_an_empty_target_now_is_filled_at_open_as_before),
        cmocka_unit_test(test_retention_keeps_target_now_and_its_texts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
