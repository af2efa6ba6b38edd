/* store_incrows.c -- the incidents table as the incident driver writes
 * it (store_incident.c runs it): each incident the engine reports is
 * written when its row differs, in a transaction of its own after the
 * group commit (or inside the rebuild's), and only once that committed
 * is it announced to store_options.incident_fn; after a replay or a
 * rebuild, rows the engine no longer derives are deleted, and told
 * "retracted" if their "opened" may have gone out. Writer connection
 * only (or the rebuild's).
 *
 * What a replay or rebuild writes: the engine drops closed incidents
 * (STORE_INC_KEEP_CLOSED_MS), so it alone no longer knows every incident
 * the replayed stretch holds; the sink's changes since the restore do
 * (each incident opened after the restored snapshot is handed out at
 * least once). The sync writes the latest of each from both.
 *
 * Both backends run this code; the database is touched only by the
 * store_inc_db_* functions below, which call pg_incscan.c's instead of
 * their SQLite statements when in->pg is set. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"
#include "jsonw.h"
#include "log.h"
#include "topology.h"

/* ---- the incidents table ---- */

/* What to tell incident_fn once the transaction committed. */
struct store_inc_tell {
    const char *change;
    char *json;
    int64_t id;
};
struct store_inc_tells {
    struct store_inc_tell *v;
    size_t n, cap;
};

static void store_inc_row_of(const struct inc_record *r,
                             struct store_inc_row *row)
{
    memset(row, 0, sizeof(*row));
    row->service = r->service->name;
    row->pattern = topo_pattern_name(r->service->pattern);
    row->region = r->region ? r->region->name : "";
    row->to_region = r->to_region ? r->to_region->name : NULL;
    row->manual = r->manual != 0;
    row->t[STORE_INC_T_FIRST] = r->first_failure_ms;
    row->t[STORE_INC_T_DETECTED] = r->detected_ms;
    row->t[STORE_INC_T_FAILOVER] = r->failover_start_ms;
    row->t[STORE_INC_T_DNS_FIRST] = r->dns_first_ms;
    row->t[STORE_INC_T_DNS_ALL] = r->dns_all_ms;
    row->t[STORE_INC_T_RESTORED] = r->restored_ms;
    row->t[STORE_INC_T_CLOSED] = r->closed_ms;
    row->has_rpo = r->has_rpo;
    row->rpo_ms = r->rpo_ms;
}

static int64_t store_inc_col_time(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL
           ? INC_NONE : sqlite3_column_int64(s, col);
}

static int store_inc_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether the stored row @a holds @row's values. */
static int store_inc_row_same(const struct store_inc_row *a,
                              const struct store_inc_row *row)
{
    if (!store_inc_str_eq(a->region, row->region) ||
        !store_inc_str_eq(a->to_region, row->to_region) ||
        a->manual != row->manual ||
        !store_inc_str_eq(a->pattern, row->pattern) ||
        a->has_rpo != row->has_rpo ||
        (row->has_rpo && a->rpo_ms != row->rpo_ms))
        return 0;
    for (int i = 0; i < STORE_INC_T_COUNT; i++)
        if (a->t[i] != row->t[i])
            return 0;
    return 1;
}

/* ---- the database's side (SQLite here, or pg_incscan.c's) ---- */

/* The INC_Q_ROW_LIST (or _GET) row at @l as a row, strings borrowed from
 * @l. */
static void store_inc_row_listed(sqlite3_stmt *l, struct store_inc_row *row)
{
    memset(row, 0, sizeof(*row));
    row->id = sqlite3_column_int64(l, 0);
    row->service = store_inc_col(l, 1);
    row->region = store_inc_col(l, 3);
    row->to_region = store_inc_col(l, 4);
    row->manual = sqlite3_column_int(l, 5) != 0;
    for (int i = 0; i < STORE_INC_T_COUNT; i++)
        row->t[i] = store_inc_col_time(l, 6 + i);
    row->has_rpo = sqlite3_column_type(l, 13) != SQLITE_NULL;
    row->rpo_ms = sqlite3_column_double(l, 13);
    row->pattern = store_inc_col(l, 14);
}

/* The incidents row of (@service, @opened_ms) to @fn: 1 found, 0 none,
 * @fn's error, or -EIO. */
static int store_inc_db_get(struct store_inc *in, const char *service,
                            int64_t opened_ms, store_inc_row_fn fn,
                            void *ctx)
{
    sqlite3_stmt *g = in->stmt[INC_Q_ROW_GET];
    struct store_inc_row row;
    int rc = -EIO, step;

    if (in->pg)
        return pg_inc_row_get(in, service, opened_ms, fn, ctx);
    if (sqlite3_bind_text(g, 1, service, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(g, 2, opened_ms) != SQLITE_OK)
        goto out;
    step = sqlite3_step(g);
    if (step == SQLITE_DONE)
        rc = 0;
    if (step != SQLITE_ROW)
        goto out;
    store_inc_row_listed(g, &row);
    rc = fn(ctx, &row, opened_ms);
    if (rc == 0)
        rc = 1;
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "incidents", "incident row: %s",
                sqlite3_errmsg(in->db));
    store_inc_done(g);
    return rc;
}

static int store_inc_bind_time(sqlite3_stmt *s, int i, int64_t t)
{
    return t == INC_NONE ? sqlite3_bind_null(s, i)
                         : sqlite3_bind_int64(s, i, t);
}

/* Inserts or updates @row (@opened_ms): 0 and *@id, or -EIO. */
static int store_inc_db_put(struct store_inc *in,
                            const struct store_inc_row *row,
                            int64_t opened_ms, int64_t *id)
{
    sqlite3_stmt *p = in->stmt[INC_Q_ROW_PUT];
    int rc = -EIO;

    if (in->pg)
        return pg_inc_row_put(in, row, opened_ms, id);
    if (sqlite3_bind_text(p, 1, row->service, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(p, 2, opened_ms) != SQLITE_OK ||
        sqlite3_bind_text(p, 3, row->region, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        (row->to_region ? sqlite3_bind_text(p, 4, row->to_region, -1,
                                            SQLITE_STATIC)
                        : sqlite3_bind_null(p, 4)) != SQLITE_OK ||
        sqlite3_bind_text(p, 5, row->pattern, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int(p, 6, row->manual) != SQLITE_OK ||
        (row->has_rpo ? sqlite3_bind_double(p, 14, row->rpo_ms)
                      : sqlite3_bind_null(p, 14)) != SQLITE_OK)
        goto out;
    for (int i = 0; i < STORE_INC_T_COUNT; i++)
        if (store_inc_bind_time(p, 7 + i, row->t[i]) != SQLITE_OK)
            goto out;
    if (sqlite3_step(p) != SQLITE_ROW)
        goto out;
    *id = sqlite3_column_int64(p, 0);
    if (sqlite3_step(p) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        log_msg(LOGL_ERROR, "incidents", "incident row: %s",
                sqlite3_errmsg(in->db));
    store_inc_done(p);
    return rc;
}

/* Each row opened after @from to @fn: 0, @fn's error or -EIO. */
static int store_inc_db_list(struct store_inc *in, int64_t from,
                             store_inc_row_fn fn, void *ctx)
{
    sqlite3_stmt *l = in->stmt[INC_Q_ROW_LIST];
    struct store_inc_row row;
    int rc = -EIO, step;

    if (in->pg)
        return pg_inc_row_list(in, from, fn, ctx);
    if (sqlite3_bind_int64(l, 1, from) != SQLITE_OK)
        goto out;
    rc = 0;
    while (rc == 0 && (step = sqlite3_step(l)) == SQLITE_ROW) {
        store_inc_row_listed(l, &row);
        rc = fn(ctx, &row, sqlite3_column_int64(l, 2));
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -EIO;
out:
    store_inc_done(l);
    return rc;
}

static int store_inc_db_del(struct store_inc *in, int64_t id)
{
    sqlite3_stmt *d = in->stmt[INC_Q_ROW_DEL];

    if (in->pg)
        return pg_inc_row_del(in, id);
    if (sqlite3_bind_int64(d, 1, id) != SQLITE_OK) {
        store_inc_done(d);
        return -EIO;
    }
    return store_step_done(d);
}

/* BEGIN (IMMEDIATE on SQLite: the writer's own), COMMIT, ROLLBACK. */
static int store_inc_db_exec(struct store *st, const char *sql)
{
    struct store_inc *in = st->inc;

    if (in->pg)
        return pg_inc_exec(in, strcmp(sql, "BEGIN IMMEDIATE") == 0
                               ? "BEGIN" : sql);
    if (strcmp(sql, "ROLLBACK") == 0 && sqlite3_get_autocommit(st->wdb))
        return 0;
    return store_exec(st->wdb, sql);
}

/* ---- writing the incidents ---- */

static int store_inc_tell_add(struct store_inc_tells *tl, const char *change,
                              const struct store_inc_row *row)
{
    struct jsonw w;

    if (store_inc_grow(&tl->v, &tl->cap, tl->n, sizeof(*tl->v), 8) < 0)
        return -ENOMEM;
    jsonw_init(&w, 1u << 20);
    store_inc_json(&w, row);
    jsonw_obj_end(&w);
    tl->v[tl->n].json = jsonw_take(&w, NULL);
    if (!tl->v[tl->n].json)
        return -ENOMEM;
    tl->v[tl->n].id = row->id;
    tl->v[tl->n++].change = change;
    return 0;
}

/* What store_inc_put learns of the stored row. */
struct store_inc_was {
    const struct store_inc_row *want;
    int same, open;
    int64_t id;
};

static int store_inc_was_fn(void *ctx, const struct store_inc_row *r,
                            int64_t opened_ms)
{
    struct store_inc_was *w = ctx;

    (void)opened_ms;
    w->same = store_inc_row_same(r, w->want);
    w->open = r->t[STORE_INC_T_CLOSED] == INC_NONE;
    w->id = r->id;
    return 0;
}

/* Writes @r unless its row holds it already; notes what to tell. */
static int store_inc_put(struct store *st, const struct inc_record *r,
                         struct store_inc_tells *tl)
{
    struct store_inc *in = st->inc;
    struct store_inc_row row;
    struct store_inc_was was = { 0 };
    const char *change = "opened";
    int found, rc;

    store_inc_row_of(r, &row);
    was.want = &row;
    found = store_inc_db_get(in, row.service, r->opened_ms,
                             store_inc_was_fn, &was);
    if (found < 0)
        return found;
    if (found) {
        if (was.same)
            return 0;
        change = was.open && row.t[STORE_INC_T_CLOSED] != INC_NONE
                 ? "closed" : "updated";
    }
    rc = store_inc_db_put(in, &row, r->opened_ms, &row.id);
    if (rc == 0 && !in->quiet && st->opt.incident_fn)
        rc = store_inc_tell_add(tl, change, &row);
    /* Made closed at once (a replay or late data covered it all): a
     * listener still sees it open, then close. */
    if (rc == 0 && !in->quiet && st->opt.incident_fn && !found &&
        row.t[STORE_INC_T_CLOSED] != INC_NONE)
        rc = store_inc_tell_add(tl, "closed", &row);
    return rc;
}

/* ---- rows whose "opened" went out ---- */

static int store_inc_id_cmp(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

    return a < b ? -1 : a > b;
}

/* The slot of @id in the ascending in->told, or NULL. */
static int64_t *store_inc_told_find(const struct store_inc *in, int64_t id)
{
    return in->n_told ? bsearch(&id, in->told, in->n_told,
                                sizeof(*in->told), store_inc_id_cmp)
                      : NULL;
}

/* Notes (@on) or forgets the row @id as announced. Ids mostly grow, so
 * the place of a new one is found from the end. */
static void store_inc_told_set(struct store_inc *in, int64_t id, int on)
{
    int64_t *at = store_inc_told_find(in, id);
    size_t i;

    if (on == (at != NULL))
        return;
    if (!on) {
        i = (size_t)(at - in->told);
        memmove(at, at + 1, (in->n_told - i - 1) * sizeof(*in->told));
        in->n_told--;
        return;
    }
    if (store_inc_grow(&in->told, &in->cap_told, in->n_told,
                       sizeof(*in->told), 64) < 0) {
        in->told_lost = 1;
        return;
    }
    for (i = in->n_told; i > 0 && in->told[i - 1] > id; i--)
        ;
    memmove(in->told + i + 1, in->told + i,
            (in->n_told - i) * sizeof(*in->told));
    in->told[i] = id;
    in->n_told++;
}

/* Whether a retraction of row @id is worth telling: its "opened" went
 * out in this run, or an earlier run wrote it (and may have told it; a
 * listener can ignore a retraction of an id it never saw, while one
 * that misses it keeps an incident open for ever). Rows this run wrote
 * unannounced (the start's rebuild, which tells nothing) are not. */
static int store_inc_told_has(const struct store_inc *in, int64_t id)
{
    return in->told_lost || id <= in->id_base ||
           store_inc_told_find(in, id) != NULL;
}

/* Reads the highest row id before this run writes any (once). */
static int store_inc_id_base(struct store_inc *in)
{
    sqlite3_stmt *s = NULL;
    int rc = -EIO;

    if (in->id_base >= 0)
        return 0;
    if (in->pg)
        return pg_inc_max_id(in, &in->id_base);
    if (store_prepare(in->db, "SELECT coalesce(max(id), 0) FROM incidents",
                      &s) == 0 && sqlite3_step(s) == SQLITE_ROW) {
        in->id_base = sqlite3_column_int64(s, 0);
        rc = 0;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Calls incident_fn for each of @tl (after the commit) and frees it. */
static void store_inc_tell_all(struct store *st, struct store_inc_tells *tl,
                               int committed)
{
    for (size_t i = 0; i < tl->n; i++) {
        if (committed) {
            const char *c = tl->v[i].change;

            if (strcmp(c, "opened") == 0 || strcmp(c, "retracted") == 0)
                store_inc_told_set(st->inc, tl->v[i].id, c[0] == 'o');
            st->opt.incident_fn(st->opt.incident_ctx, c, tl->v[i].json);
        }
        free(tl->v[i].json);
    }
    free(tl->v);
}

/* Ends the incidents' own transaction (unless @in_tx) and tells. */
static int store_inc_end(struct store *st, int rc, int in_tx,
                         struct store_inc_tells *tl)
{
    if (!in_tx) {
        if (rc == 0 && store_inc_db_exec(st, "COMMIT") < 0)
            rc = -EIO;
        if (rc < 0)
            store_inc_db_exec(st, "ROLLBACK");
    }
    store_inc_tell_all(st, tl, rc == 0);
    st->inc->n_chg = 0;
    return rc;
}

int store_inc_flush(struct store *st)
{
    struct store_inc *in = st->inc;
    struct store_inc_tells tl = { 0 };
    int rc = 0;

    if (inc_engine_error(in->eng))
        return -ENOTRECOVERABLE;        /* nothing of it is written */
    if (in->chg_err) {
        /* A change the sink could not keep: write them all. */
        in->chg_err = 0;
        return store_inc_sync(st, INT64_MAX, 0);
    }
    if (in->n_chg == 0)
        return 0;
    if (store_inc_id_base(in) < 0 ||
        store_inc_db_exec(st, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    for (size_t i = 0; i < in->n_chg && rc == 0; i++)
        rc = store_inc_put(st, &in->chg[i].r, &tl);
    return store_inc_end(st, rc, 0, &tl);
}

/* The incidents a sync writes: the sink's changes and what the engine
 * holds, sorted by (service, opened_ms), the latest of each. */
struct store_inc_all {
    struct store_inc_one {
        struct inc_record r;
        size_t ord;             /* later is newer */
    } *v;
    size_t n, cap;
    int err;
};

static void store_inc_collect(void *ctx, const struct inc_record *r)
{
    struct store_inc_all *a = ctx;

    if (store_inc_grow(&a->v, &a->cap, a->n, sizeof(*a->v), 64) < 0) {
        a->err = -ENOMEM;
        return;
    }
    a->v[a->n].r = *r;
    a->v[a->n].ord = a->n;
    a->n++;
}

/* By service (the topology's order: the pointers are into one array),
 * then opened_ms. */
static int store_inc_key_cmp(const struct inc_record *a,
                             const struct inc_record *b)
{
    if (a->service != b->service)
        return a->service < b->service ? -1 : 1;
    if (a->opened_ms != b->opened_ms)
        return a->opened_ms < b->opened_ms ? -1 : 1;
    return 0;
}

static int store_inc_one_cmp(const void *pa, const void *pb)
{
    const struct store_inc_one *a = pa, *b = pb;
    int c = store_inc_key_cmp(&a->r, &b->r);

    if (c != 0)
        return c;
    return a->ord < b->ord ? -1 : a->ord > b->ord;
}

/* Fills @a with the changes since the last flush, then the engine's
 * incidents; sorts and keeps the latest of each. */
static int store_inc_gather(struct store_inc *in, struct store_inc_all *a)
{
    size_t n = 0;

    for (size_t i = 0; i < in->n_chg; i++)
        store_inc_collect(a, &in->chg[i].r);
    inc_engine_each(in->eng, store_inc_collect, a);
    if (a->err)
        return a->err;
    if (a->n == 0)
        return 0;
    qsort(a->v, a->n, sizeof(*a->v), store_inc_one_cmp);
    for (size_t i = 0; i < a->n; i++) {
        if (i + 1 < a->n && store_inc_key_cmp(&a->v[i].r,
                                              &a->v[i + 1].r) == 0)
            continue;
        a->v[n++] = a->v[i];
    }
    a->n = n;
    return 0;
}

/* Whether @a holds an incident of the service named @svc opened at
 * @opened. */
static int store_inc_all_has(const struct store_inc *in,
                             const struct store_inc_all *a, const char *svc,
                             int64_t opened)
{
    struct inc_record key = { .opened_ms = opened };
    size_t lo = 0, hi = a->n;

    for (size_t i = 0; svc && i < in->topo->n_services; i++)
        if (strcmp(in->topo->services[i].name, svc) == 0)
            key.service = &in->topo->services[i];
    if (!key.service)
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = store_inc_key_cmp(&a->v[mid].r, &key);

        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* What store_inc_delete_gone collects while listing the rows. */
struct store_inc_gone {
    struct store_inc *in;
    const struct store_inc_all *a;
    struct store_inc_tells *tl;
    int64_t *ids;
    size_t n, cap;
};

static int store_inc_gone_fn(void *ctx, const struct store_inc_row *row,
                             int64_t opened_ms)
{
    struct store_inc_gone *g = ctx;

    if (store_inc_all_has(g->in, g->a, row->service, opened_ms))
        return 0;
    if (store_inc_grow(&g->ids, &g->cap, g->n, sizeof(*g->ids), 16) < 0)
        return -ENOMEM;
    g->ids[g->n++] = row->id;
    if (g->tl && store_inc_told_has(g->in, row->id))
        return store_inc_tell_add(g->tl, "retracted", row);
    return 0;
}

/* Deletes the rows opened after @from that are none of @a's, and notes a
 * "retracted" in @tl (NULL: tell nobody) for each whose "opened" may
 * have gone out (store_inc_told_has): a replay found that late data
 * undoes it. Older rows stay: the replay restored a snapshot taken
 * after they opened, and closed ones the engine dropped are final. */
static int store_inc_delete_gone(struct store_inc *in, int64_t from,
                                 const struct store_inc_all *a,
                                 struct store_inc_tells *tl)
{
    struct store_inc_gone g = { .in = in, .a = a, .tl = tl };
    int rc;

    rc = store_inc_db_list(in, from, store_inc_gone_fn, &g);
    for (size_t i = 0; rc == 0 && i < g.n; i++)
        rc = store_inc_db_del(in, g.ids[i]);
    free(g.ids);
    return rc;
}

int store_inc_sync(struct store *st, int64_t from, int in_tx)
{
    struct store_inc *in = st->inc;
    struct store_inc_all a = { 0 };
    struct store_inc_tells tl = { 0 };
    int rc;

    /* A lost change may be an incident the engine dropped since; a
     * broken engine (incident.h) may have lost one itself. */
    rc = inc_engine_error(in->eng) ? -ENOTRECOVERABLE
         : in->chg_err && from != INT64_MAX ? -ENOMEM
         : store_inc_gather(in, &a);
    in->chg_err = 0;
    if (rc == 0 && store_inc_id_base(in) < 0)
        rc = -EIO;
    if (rc == 0 && !in_tx && store_inc_db_exec(st, "BEGIN IMMEDIATE") < 0)
        rc = -EIO;
    if (rc < 0) {
        free(a.v);
        in->n_chg = 0;
        return rc;
    }
    for (size_t i = 0; i < a.n && rc == 0; i++)
        rc = store_inc_put(st, &a.v[i].r, &tl);
    if (rc == 0 && from != INT64_MAX)
        rc = store_inc_delete_gone(in, from, &a,
                                   !in->quiet && st->opt.incident_fn ? &tl
                                                                     : NULL);
    free(a.v);
    return store_inc_end(st, rc, in_tx, &tl);
}

static int store_inc_id_fn(void *ctx, const struct store_inc_row *r,
                           int64_t opened_ms)
{
    (void)opened_ms;
    *(int64_t *)ctx = r->id;
    return 0;
}

int store_inc_row_id(struct store_inc *in, const char *service,
                     int64_t opened_ms, int64_t *id)
{
    int64_t v = 0;
    int rc = store_inc_db_get(in, service, opened_ms, store_inc_id_fn, &v);

    if (rc == 1)
        *id = v;
    return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

void store_inc_agent_name(struct store_inc *in, int64_t agent_id,
                          char *cluster, size_t cluster_len, char *node,
                          size_t node_len)
{
    sqlite3_stmt *s = in->stmt[INC_Q_AGENT];

    if (in->pg) {
        pg_inc_agent(in, agent_id, cluster, cluster_len, node, node_len);
        return;
    }
    if (sqlite3_bind_int64(s, 1, agent_id) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        snprintf(cluster, cluster_len, "%s",
                 store_inc_col(s, 0) ? store_inc_col(s, 0) : "");
        snprintf(node, node_len, "%s",
                 store_inc_col(s, 1) ? store_inc_col(s, 1) : "");
    }
    store_inc_done(s);
}
