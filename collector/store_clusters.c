/* store_clusters.c -- GET /api/v1/clusters' query: every cluster that
 * ever sent, its regions, and per agent what the agents table last
 * recorded (version, first and last batch, clock offset, delivery
 * watermark, last drop report and when it came, the spool backlog its
 * latest batch reported) with the highest seq stored from it, rendered
 * as store.h's JSON (the rendering, from plain values, serves the
 * PostgreSQL backend too: store_cl_*). Its SQL is its own, one constant statement prepared
 * once per read connection through store_query.c's hook. Reads only. */
#include "store_priv.h"
#include "store_pg.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"


/* One row per (cluster, node), store_priv.h's STORE_CLUSTERS_SQL: the
 * highest stored seq is one step down the (agent_id, seq) index; the
 * other subqueries read the small agents table through its (cluster,
 * node, epoch) index. SQLite's text order is bytewise already. */
static const char store_clusters_sql[] =
    STORE_CLUSTERS_SQL("format('%016x', a.epoch)",
                       "CAST(round(a.clock_offset_ms) AS INTEGER)", "");

static const char *cl_text(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);

    return t ? t : "";
}

/* The row at @s as plain values (borrowed until the next step). */
static void cl_row_of(sqlite3_stmt *s, struct store_cl_row *r)
{
    r->cluster = cl_text(s, CL_CLUSTER);
    r->region = cl_text(s, CL_REGION);
    r->node = cl_text(s, CL_NODE);
    r->epoch = cl_text(s, CL_EPOCH);
    r->version = cl_text(s, CL_VERSION);
    r->first_ms = sqlite3_column_int64(s, CL_FIRST);
    r->last_ms = sqlite3_column_int64(s, CL_LAST);
    r->has_offset = sqlite3_column_type(s, CL_OFFSET) != SQLITE_NULL;
    r->offset_ms = sqlite3_column_int64(s, CL_OFFSET);
    r->acked = sqlite3_column_int64(s, CL_ACKED);
    r->highest = sqlite3_column_int64(s, CL_HIGHEST);      /* NULL: 0 */
    r->drop_count = sqlite3_column_int64(s, CL_DROP_COUNT);
    r->drop_first = sqlite3_column_int64(s, CL_DROP_FIRST);
    r->drop_last = sqlite3_column_int64(s, CL_DROP_LAST);
    r->drop_ms = sqlite3_column_int64(s, CL_DROP_MS);
    r->has_report = sqlite3_column_type(s, CL_DROP_REPORT) != SQLITE_NULL;
    r->report_ms = sqlite3_column_int64(s, CL_DROP_REPORT);
    r->has_spool = sqlite3_column_type(s, CL_SPOOL_EVENTS) != SQLITE_NULL;
    r->spool_events = sqlite3_column_int64(s, CL_SPOOL_EVENTS);
    r->spool_bytes = sqlite3_column_int64(s, CL_SPOOL_BYTES);
    r->epochs = sqlite3_column_int64(s, CL_EPOCHS);
}

/* @key: the time @ms, as the incidents write times. */
static void cl_time(struct jsonw *w, const char *key, int64_t ms)
{
    jsonw_key(w, key);
    store_inc_time(w, ms);
}

/* Seqs and spool counts as stored: never negative (ingest refuses
 * either over 2^63-1). */
static void cl_seq(struct jsonw *w, const char *key, int64_t v)
{
    jsonw_key(w, key);
    jsonw_int(w, v);
}

/* The agent of row @r. */
static void cl_agent(struct jsonw *w, const struct store_cl_row *r)
{
    int64_t acked = r->acked;
    int64_t highest = r->highest;

    if (highest < acked)            /* events expired by retention */
        highest = acked;
    jsonw_obj_begin(w);
    jsonw_key(w, "node");
    jsonw_str(w, r->node);
    jsonw_key(w, "region");
    jsonw_str(w, r->region);
    jsonw_key(w, "epoch");
    jsonw_str(w, r->epoch);
    jsonw_key(w, "epochs");
    jsonw_int(w, r->epochs);
    jsonw_key(w, "agent_version");
    jsonw_str(w, r->version);
    cl_time(w, "first_seen", r->first_ms);
    cl_time(w, "last_seen", r->last_ms);
    jsonw_key(w, "clock_offset_ms");
    if (!r->has_offset)
        jsonw_null(w);
    else
        jsonw_int(w, r->offset_ms);
    jsonw_key(w, "acked_seq");
    jsonw_int(w, acked);
    jsonw_key(w, "highest_seq");
    jsonw_int(w, highest);
    jsonw_key(w, "waiting");
    jsonw_int(w, highest - acked);
    jsonw_key(w, "last_drop");
    if (r->drop_count <= 0) {
        jsonw_null(w);
    } else {
        jsonw_obj_begin(w);
        cl_seq(w, "count", r->drop_count);
        cl_seq(w, "from_seq", r->drop_first);
        cl_seq(w, "to_seq", r->drop_last);
        if (r->drop_ms != 0) {
            cl_time(w, "last_event", r->drop_ms);       /* agent clock */
        } else {
            jsonw_key(w, "last_event");                 /* not known */
            jsonw_null(w);
        }
        if (r->has_report) {
            cl_time(w, "reported", r->report_ms);       /* our clock */
        } else {
            jsonw_key(w, "reported");   /* before schema 9 */
            jsonw_null(w);
        }
        jsonw_obj_end(w);
    }
    /* As the latest batch said; NULL: no batch since schema 8. */
    jsonw_key(w, "spool");
    if (!r->has_spool) {
        jsonw_null(w);
    } else {
        jsonw_obj_begin(w);
        cl_seq(w, "events", r->spool_events);
        cl_seq(w, "bytes", r->spool_bytes);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}

/* Closes the open region and, with @cluster_too, the open cluster
 * (whose latest batch is known only once its rows are all seen). */
static void cl_close(struct jsonw *w, struct store_cl_state *c,
                     int cluster_too)
{
    if (c->in_region) {
        jsonw_arr_end(w);               /* agents */
        jsonw_obj_end(w);
        c->in_region = 0;
    }
    if (cluster_too && c->in_cluster) {
        jsonw_arr_end(w);               /* regions */
        jsonw_key(w, "last_seen");
        store_inc_time(w, c->last_ms);
        jsonw_obj_end(w);
        c->in_cluster = 0;
    }
}

/* Opens the cluster and the region of row @r, if they are new. */
static void cl_open(struct jsonw *w, struct store_cl_state *c,
                    const struct store_cl_row *r)
{
    if (!c->in_cluster || strcmp(r->cluster, c->cluster) != 0) {
        cl_close(w, c, 1);
        snprintf(c->cluster, sizeof(c->cluster), "%s", r->cluster);
        c->region[0] = '\0';
        c->last_ms = r->last_ms;
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, r->cluster);
        jsonw_key(w, "regions");
        jsonw_arr_begin(w);
        c->in_cluster = 1;
    }
    if (r->last_ms > c->last_ms)
        c->last_ms = r->last_ms;
    if (!c->in_region || strcmp(r->region, c->region) != 0) {
        cl_close(w, c, 0);
        snprintf(c->region, sizeof(c->region), "%s", r->region);
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, r->region);
        jsonw_key(w, "agents");
        jsonw_arr_begin(w);
        c->in_region = 1;
    }
}

void store_cl_begin(struct jsonw *w)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "clusters");
    jsonw_arr_begin(w);
}

void store_cl_add(struct jsonw *w, struct store_cl_state *c,
                  const struct store_cl_row *r)
{
    cl_open(w, c, r);
    cl_agent(w, r);
}

void store_cl_end(struct jsonw *w, struct store_cl_state *c)
{
    cl_close(w, c, 1);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

int store_clusters(struct store *st, char **out, size_t *out_len)
{
    int rc, step;
    struct store_cl_state c = { .in_cluster = 0 };  /* two names: 2 KiB */
    struct store_cl_row row;
    sqlite3_stmt *s = NULL;
    struct store_reader *r;
    int64_t until;
    struct jsonw w;

    if (st->pg)
        return store_pg_clusters(st, out, out_len);

    jsonw_init(&w, CLUSTERS_BYTES);     /* allocates nothing yet */
    r = store_query_begin(st, &until, &rc, 1);
    if (!r)
        return rc;
    rc = store_reader_stmt_sql(r, store_clusters_sql, &s);
    if (rc < 0)
        goto out;
    store_cl_begin(&w);
    while ((step = sqlite3_step(s)) == SQLITE_ROW && !w.err) {
        cl_row_of(s, &row);
        store_cl_add(&w, &c, &row);
    }
    rc = -EIO;
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        goto out;
    store_cl_end(&w, &c);
    rc = store_json_take(&w, out, out_len);
out:
    rc = store_query_end(st, r, s, rc, "clusters");
    jsonw_free(&w);
    return rc;
}
