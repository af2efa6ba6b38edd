/* test_store_plan.c -- SQLite's query plan, on a new store, for every
 * statement the store's read side runs (store_sql[]) and for the writer's
 * statements on events: each searches the index it is written for (no
 * scan of events, no sort where an index gives the order), and every index
 * on events is used by one of them, so an index nothing needs fails here.
 * SEXTANT_PLAN_PRINT=1 prints each statement's plan. Also: a read
 * connection prepares each statement once and leaves none running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_priv.h"
#include "store_test.h"

#define PLAN_BYTES 8192
#define MAX_INDEXES 32

struct plan_check {
    char used[MAX_INDEXES][64];     /* indexes of events some plan uses */
    size_t n_used;
    int print;
};

/* @sql's plan, one detail line each, into @out. */
static void explain(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    static const char prefix[] = "EXPLAIN QUERY PLAN ";
    size_t n = strlen(sql), len = 0;
    char *q = malloc(sizeof(prefix) + n);
    sqlite3_stmt *s = NULL;
    int rc;

    assert_non_null(q);
    memcpy(q, prefix, sizeof(prefix) - 1);
    memcpy(q + sizeof(prefix) - 1, sql, n + 1);
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s\n  in: %s", sqlite3_errmsg(db), sql);
    out[0] = '\0';
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        size_t dl = strlen(d);

        assert_true(len + dl + 2 < cap);
        memcpy(out + len, d, dl);
        len += dl;
        out[len++] = '\n';
        out[len] = '\0';
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(s);
    free(q);
}

/* Whether a line of @plan starts with @start. */
static int plan_line(const char *plan, const char *start)
{
    size_t n = strlen(start);

    for (const char *l = plan; *l; l = strchr(l, '\n') + 1)
        if (strncmp(l, start, n) == 0)
            return 1;
    return 0;
}

/* Notes every index @plan names (" INDEX name" up to a space or the end
 * of the line). */
static void note_indexes(struct plan_check *pc, const char *plan)
{
    for (const char *p = plan; (p = strstr(p, " INDEX ")) != NULL; ) {
        size_t n;

        p += 7;
        n = strcspn(p, " \n");
        assert_true(n < sizeof(pc->used[0]));
        for (size_t i = 0; i < pc->n_used; i++)
            if (strlen(pc->used[i]) == n && memcmp(pc->used[i], p, n) == 0)
                goto next;
        assert_true(pc->n_used < MAX_INDEXES);
        memcpy(pc->used[pc->n_used], p, n);
        pc->used[pc->n_used++][n] = '\0';
next:
        p += n;
    }
}

/* Plans @sql and checks it: its table @tbl is searched with @index
 * ("SEARCH tbl USING [COVERING ]INDEX index" or "... PRIMARY KEY"), never
 * scanned whole unless @scan_ok, and sorted only when @sort_ok. */
static void check(sqlite3 *db, struct plan_check *pc, const char *what,
                  const char *sql, const char *tbl, const char *index,
                  int scan_ok, int sort_ok)
{
    char plan[PLAN_BYTES], want[128], want_cov[128], scan[64];

    explain(db, sql, plan, sizeof(plan));
    if (pc->print)
        printf("%s: %s\n%s\n", what, index, plan);
    note_indexes(pc, plan);
    if (strcmp(index, "PRIMARY KEY") == 0) {
        snprintf(want, sizeof(want), "SEARCH %s USING PRIMARY KEY", tbl);
        snprintf(want_cov, sizeof(want_cov), "%s", want);
    } else {
        snprintf(want, sizeof(want), "%s %s USING INDEX %s ",
                 scan_ok ? "SCAN" : "SEARCH", tbl, index);
        snprintf(want_cov, sizeof(want_cov),
                 "%s %s USING COVERING INDEX %s", scan_ok ? "SCAN" : "SEARCH",
                 tbl, index);
    }
    if (!plan_line(plan, want) && !plan_line(plan, want_cov))
        fail_msg("%s: wants %s\n%s\n%s", what, want, plan, sql);
    snprintf(scan, sizeof(scan), "SCAN %s\n", tbl);
    if (!scan_ok && (strstr(plan, scan) ||
                     (snprintf(scan, sizeof(scan), "SCAN %s USING", tbl),
                      plan_line(plan, scan))))
        fail_msg("%s: scans %s\n%s", what, tbl, plan);
    if (!sort_ok && strstr(plan, "USE TEMP B-TREE FOR ORDER BY"))
        fail_msg("%s: sorts\n%s", what, plan);
}

/* A service's timeline: its targets' rows (events_target) or the rows
 * with data (events_kind) found by index, or the window by time; never
 * every event. It may sort: a service's rows are few. */
static void check_service(sqlite3 *db, struct plan_check *pc,
                          const char *what, const char *sql)
{
    char plan[PLAN_BYTES];

    explain(db, sql, plan, sizeof(plan));
    if (pc->print)
        printf("%s\n%s\n", what, plan);
    note_indexes(pc, plan);
    if (!strstr(plan, "SEARCH e USING INDEX events_"))
        fail_msg("%s: no index on events\n%s", what, plan);
    if (strstr(plan, "SCAN e\n") || plan_line(plan, "SCAN e USING"))
        fail_msg("%s: scans e\n%s", what, plan);
}

/* The timeline's variants. The index each is written for: the partial
 * (kind_id, unix_ms) of the rows kept as JSON when the one kind asked for
 * is not probe (those rows are few, fewer than a target's) or a list of
 * kinds without probe and no target; else a target's (target_id,
 * unix_ms) when a target is given (SQLite takes it for a target and a
 * list, as it needs no sort); else the time index (probes are 95% and
 * more of all rows: a kind filter that lets them through is checked row
 * by row). Each gives rows in (unix_ms, id) order, but the corrected
 * order and a list of kinds on the kind index (several ranges) sort. */
static void check_timeline(sqlite3 *db, struct plan_check *pc)
{
    static const char *const kinds[] = {
        [STORE_KIND_ANY] = "", [STORE_KIND_PROBE] = " kind=probe",
        [STORE_KIND_RARE] = " kind=rare", [STORE_KINDS_PROBE] =
        " kinds+probe", [STORE_KINDS_RARE] = " kinds-probe",
    };

    static const char *const targets[] = {
        [STORE_TL_ALL] = "", [STORE_TL_TARGET] = " target",
        [STORE_TL_SERVICE] = " service",
    };

    for (int corr = 0; corr < 2; corr++)
        for (int cl = 0; cl < 4; cl++)
            for (int ts = 0; ts < STORE_TL_TARGETS; ts++)
                for (int k = 0; k < STORE_KIND_FILTERS; k++) {
                    int tg = ts == STORE_TL_TARGET;
                    int rare = k == STORE_KIND_RARE ||
                               (k == STORE_KINDS_RARE && !tg);
                    const char *index = rare ? "events_kind"
                                        : tg ? "events_target"
                                        : "events_time";
                    char what[128];

                    snprintf(what, sizeof(what), "timeline %s%s%s%s%s",
                             corr ? "corrected" : "agent",
                             cl & 1 ? " cluster" : "",
                             cl & 2 ? " region" : "", targets[ts],
                             kinds[k]);
                    const char *sql = store_sql[store_sql_timeline(
                        corr, cl & 1, cl & 2, (enum store_tl_targets)ts,
                        (enum store_kind_filter)k)];

                    if (ts == STORE_TL_SERVICE)
                        check_service(db, pc, what, sql);
                    else
                        check(db, pc, what, sql, "e", index, 0,
                              corr || (k == STORE_KINDS_RARE && !tg));
                }
}

/* Latency, names and clusters: the statements on the small tables. */
static void check_others(sqlite3 *db, struct plan_check *pc)
{
    static const char *const tables[] = { "clusters", "targets", "kinds" };
    static const char *const rollups[] = { "rollup_minute", "rollup_hour" };
    char what[128], idx[64], plan[PLAN_BYTES];

    for (int h = 0; h < 2; h++)
        for (int cl = 0; cl < 2; cl++)
            for (int ls = 0; ls < 2; ls++) {
                /* One cluster: the primary key (target, cluster, t);
                 * every cluster: (target, t), which keeps one target's
                 * rows in time order; a list of targets sorts. */
                snprintf(what, sizeof(what), "latency %s%s%s",
                         h ? "hour" : "minute", cl ? " cluster" : "",
                         ls ? " targets" : "");
                snprintf(idx, sizeof(idx), "%s_target_t", rollups[h]);
                check(db, pc, what, store_sql[store_sql_latency(h, cl, ls)],
                      rollups[h], cl ? "PRIMARY KEY" : idx, 0, ls);
            }
    for (int i = 0; i < 3; i++) {
        snprintf(idx, sizeof(idx), "sqlite_autoindex_%s_1", tables[i]);
        snprintf(what, sizeof(what), "name known %s", tables[i]);
        check(db, pc, what, store_sql[STORE_SQL_NAME_KNOWN + i], tables[i],
              idx, 0, 0);
        /* Every name, in name order: the unique index walked whole. */
        snprintf(what, sizeof(what), "name list %s", tables[i]);
        check(db, pc, what, store_sql[STORE_SQL_NAME_LIST + i], tables[i],
              idx, 1, 0);
    }
    /* One row per agent: a whole scan and a sort of a small table. */
    explain(db, store_sql[STORE_SQL_CLUSTERS], plan, sizeof(plan));
    if (pc->print)
        printf("clusters: (agents, small)\n%s\n", plan);
}

/* The writer's statements on events, prepared in store_setup (they are
 * the writer's; only their text is read here, after ready). */
static void check_writer(const struct store *st, sqlite3 *db,
                         struct plan_check *pc)
{
    check(db, pc, "delivery seq_scan", sqlite3_sql(st->seq_scan), "events",
          "events_seq", 0, 0);
    check(db, pc, "delivery seq_range", sqlite3_sql(st->seq_range),
          "events", "events_seq", 0, 0);
    check(db, pc, "retention events_expire", sqlite3_sql(st->events_expire),
          "events", "events_time", 0, 0);
    check(db, pc, "retention texts_expire", sqlite3_sql(st->texts_expire),
          "events", "events_text", 0, 0);
}

/* Plans every statement; returns the first index on events none of them
 * uses (caller frees), or NULL. */
static char *unused_index(const struct store *st, sqlite3 *db)
{
    struct plan_check pc = { .print = getenv("SEXTANT_PLAN_PRINT") != NULL };
    sqlite3_stmt *s = NULL;
    char *unused = NULL;
    int rc;

    for (int i = 0; i < STORE_SQL_COUNT; i++)
        assert_non_null(store_sql[i]);          /* none left out */
    check_timeline(db, &pc);
    check_others(db, &pc);
    check_writer(st, db, &pc);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master"
                                        " WHERE type = 'index'"
                                        " AND tbl_name = 'events'", -1, &s,
                                        NULL), SQLITE_OK);
    while (!unused && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        size_t i;

        for (i = 0; i < pc.n_used; i++)
            if (strcmp(pc.used[i], name) == 0)
                break;
        if (i == pc.n_used)
            unused = strdup(name);
    }
    sqlite3_finalize(s);
    return unused;
}

/* A new store at @dir/c.db (@path), ready, and a connection of ours. */
static struct store *plan_store(char *dir, char *path, size_t cap,
                                sqlite3 **db)
{
    struct store *st = NULL;

    assert_non_null(mkdtemp(dir));
    snprintf(path, cap, "%s/c.db", dir);
    assert_int_equal(store_open(path, NULL, &st), 0);
    assert_int_equal(store_wait_ready(st, STORE_TEST_WAIT_MS), 0);
    assert_int_equal(sqlite3_open(path, db), SQLITE_OK);
    sqlite3_busy_timeout(*db, STORE_TEST_WAIT_MS);
    return st;
}

static void test_every_statement_uses_its_index_and_every_index_is_used(
    void **state)
{
    char dir[] = "/tmp/sextant-plan-XXXXXX", path[256];
    sqlite3 *db = NULL;
    struct store *st = plan_store(dir, path, sizeof(path), &db);
    char *unused = unused_index(st, db);

    (void)state;
    if (unused)
        fail_msg("index %s on events: no statement uses it", unused);
    sqlite3_close(db);
    store_close(st);
    store_test_remove(dir, path);
}

static void test_an_index_no_statement_uses_is_found(void **state)
{
    char dir[] = "/tmp/sextant-plan-XXXXXX", path[256];
    sqlite3 *db = NULL;
    struct store *st = plan_store(dir, path, sizeof(path), &db);
    char *unused;

    (void)state;
    assert_int_equal(sqlite3_exec(db, "CREATE INDEX events_spare ON events"
                                  " (status)", NULL, NULL, NULL), SQLITE_OK);
    unused = unused_index(st, db);
    assert_non_null(unused);
    assert_string_equal(unused, "events_spare");
    free(unused);
    sqlite3_close(db);
    store_close(st);
    store_test_remove(dir, path);
}

/* Runs @q's timeline on @st and checks it answered. */
static void timeline(struct store *st, const char *kind)
{
    struct store_timeline_query q = {
        .from_ms = 0, .to_ms = INT64_MAX / 2, .kind = kind, .limit = 10,
        .order = STORE_ORDER_AGENT,
    };
    char *json = NULL;
    size_t len = 0;

    assert_int_equal(store_timeline(st, &q, &json, &len), 0);
    assert_non_null(strstr(json, "\"count\":0"));
    free(json);
}

/* Whether any statement of @db is still running (holds a read snapshot
 * that would stop checkpoints while the connection sits idle). */
static int any_busy(sqlite3 *db)
{
    for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s;
         s = sqlite3_next_stmt(db, s))
        if (sqlite3_stmt_busy(s))
            return 1;
    return 0;
}

static void test_a_read_connection_prepares_each_statement_once(
    void **state)
{
    char dir[] = "/tmp/sextant-plan-XXXXXX", path[256];
    struct store_latency_query lq = {
        .from_ms = 0, .to_ms = 3600000, .target = "t",
        .step = STORE_STEP_MINUTE,
    };
    int any = store_sql_timeline(0, 0, 0, STORE_TL_ALL, STORE_KIND_ANY);
    int rare = store_sql_timeline(0, 0, 0, STORE_TL_ALL, STORE_KIND_RARE);
    int probes = store_sql_timeline(0, 0, 0, STORE_TL_ALL, STORE_KINDS_PROBE);
    int lat = store_sql_latency(0, 0, 0);
    struct store *st = NULL;
    struct store_reader *r;
    sqlite3_stmt *first;
    char *json = NULL;
    size_t len = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.db", dir);
    assert_int_equal(store_open(path, NULL, &st), 0);
    assert_int_equal(store_wait_ready(st, STORE_TEST_WAIT_MS), 0);
    timeline(st, NULL);
    /* One query at a time: one connection, back in the pool. */
    assert_int_equal(st->n_readers, 1);
    r = st->readers[0];
    first = r->stmt[any];
    assert_non_null(first);
    assert_null(r->stmt[rare]);
    assert_false(any_busy(r->db));

    timeline(st, NULL);
    timeline(st, "state");
    /* A list holding "probe" must not take the rare kinds' statement
     * (it would leave every probe out); "probes" is another kind. */
    timeline(st, "state,probe");
    timeline(st, "probes,state");
    assert_int_equal(store_name_known(st, STORE_NAMES_KIND, "probe", NULL,
                                      NULL), 0);
    assert_int_equal(store_latency(st, &lq, &json, &len), 0);
    free(json);
    assert_int_equal(st->n_readers, 1);
    assert_ptr_equal(st->readers[0], r);
    assert_ptr_equal(r->stmt[any], first);
    assert_non_null(r->stmt[rare]);
    assert_non_null(r->stmt[probes]);
    assert_non_null(r->stmt[store_sql_timeline(0, 0, 0, STORE_TL_ALL, STORE_KINDS_RARE)]);
    assert_null(r->stmt[store_sql_timeline(0, 0, 0, STORE_TL_ALL, STORE_KIND_PROBE)]);
    assert_non_null(r->stmt[STORE_SQL_NAME_KNOWN + STORE_NAMES_KIND]);
    assert_non_null(r->stmt[lat]);
    assert_false(any_busy(r->db));

    store_close(st);
    store_test_remove(dir, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_every_statement_uses_its_index_and_every_index_is_used),
        cmocka_unit_test(test_an_index_no_statement_uses_is_found),
        cmocka_unit_test(test_a_read_connection_prepares_each_statement_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
