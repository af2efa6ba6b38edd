/* store_rollup.c -- the minute and hour rollups of probe results: this
 * group's samples, their merge into one delta per rollup row at commit
 * (neutral: either backend writes the deltas), SQLite's read-merge-write
 * of a row, and the backfill of migration 3. */
#include "store_priv.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "hist.h"
#include "log.h"
#include "util.h"

/* Migration 3 rolls up older events this many at a time. */
#define STORE_BACKFILL_CHUNK 100000u

/* Floor of @ms to a multiple of @step (ms are positive here: >= 2000). */
int64_t store_floor(int64_t ms, int64_t step)
{
    return ms - ms % step;
}

/* A new slot at the end of this group's samples; NULL when out of memory. */
static struct store_sample *store_sample_new(struct store *st)
{
    if (st->n_samples == st->cap_samples) {
        size_t cap = st->cap_samples ? st->cap_samples * 2 : 1024;
        struct store_sample *n = realloc(st->samples, cap * sizeof(*n));

        if (!n)
            return NULL;
        st->samples = n;
        st->cap_samples = cap;
    }
    return &st->samples[st->n_samples++];
}

int store_sample(struct store *st, const struct store_agent_row *row,
                 const struct store_event_row *e,
                 const Sextant__V1__ProbeResult *p)
{
    struct store_sample *sm = store_sample_new(st);

    if (!sm)
        return -ENOMEM;
    sm->target_id = e->target_id;
    sm->cluster_id = row->cluster_id;
    sm->minute = store_floor(e->unix_ms, STORE_MINUTE_MS);
    sm->total_us = p->timings ? p->timings->total_us : 0;
    sm->ok = p->ok;
    return 0;
}

static int store_sample_cmp(const void *pa, const void *pb)
{
    const struct store_sample *a = pa, *b = pb;

    if (a->target_id != b->target_id)
        return a->target_id < b->target_id ? -1 : 1;
    if (a->cluster_id != b->cluster_id)
        return a->cluster_id < b->cluster_id ? -1 : 1;
    if (a->minute != b->minute)
        return a->minute < b->minute ? -1 : 1;
    return 0;
}

int store_rollup_fold(const struct store_delta *d, int has_old,
                      uint64_t count, uint64_t failures, const void *blob,
                      size_t len, struct store_rollup_row *out)
{
    struct hist h;
    int rc;

    hist_init(&h);
    out->count = d->count;
    out->failures = d->failures;
    out->blob = NULL;
    if (has_old) {
        out->count += count;
        out->failures += failures;
        /* A corrupt blob loses that row's old latencies, not the batch:
         * the counts stay right and the log says so. */
        if (hist_merge_blob(&h, blob, len) < 0)
            log_msg(LOGL_WARN, "store", "rollup %lld/%lld/%lld: bad "
                    "histogram replaced", (long long)d->target_id,
                    (long long)d->cluster_id, (long long)d->t);
    }
    rc = hist_merge(&h, &d->h);
    if (rc == 0)
        rc = hist_encode(&h, &out->blob, &out->len);
    hist_free(&h);
    return rc;
}

/* Adds @d to its row of @r: read, merge, write back. */
static int store_rollup_add(struct store_rollup *r,
                            const struct store_delta *d)
{
    sqlite3_stmt *g = r->get, *p = r->put;
    struct store_rollup_row row = { 0 };
    int rc = -EIO, step;

    if (sqlite3_bind_int64(g, 1, d->target_id) != SQLITE_OK ||
        sqlite3_bind_int64(g, 2, d->cluster_id) != SQLITE_OK ||
        sqlite3_bind_int64(g, 3, d->t) != SQLITE_OK)
        goto out;
    step = sqlite3_step(g);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        goto out;
    if (step == SQLITE_ROW) {
        p = r->upd;
        rc = store_rollup_fold(d, 1, (uint64_t)sqlite3_column_int64(g, 0),
                               (uint64_t)sqlite3_column_int64(g, 1),
                               sqlite3_column_blob(g, 2),
                               (size_t)sqlite3_column_bytes(g, 2), &row);
    } else {
        rc = store_rollup_fold(d, 0, 0, 0, NULL, 0, &row);
    }
    sqlite3_reset(g);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (sqlite3_bind_int64(p, 1, d->target_id) != SQLITE_OK ||
        sqlite3_bind_int64(p, 2, d->cluster_id) != SQLITE_OK ||
        sqlite3_bind_int64(p, 3, d->t) != SQLITE_OK ||
        sqlite3_bind_int64(p, 4, (int64_t)row.count) != SQLITE_OK ||
        sqlite3_bind_int64(p, 5, (int64_t)row.failures) != SQLITE_OK ||
        sqlite3_bind_blob(p, 6, row.blob, (int)row.len, SQLITE_STATIC) !=
            SQLITE_OK) {
        sqlite3_reset(p);
        sqlite3_clear_bindings(p);
        goto out;
    }
    rc = store_step_done(p);
out:
    sqlite3_reset(g);
    sqlite3_clear_bindings(g);
    free(row.blob);
    return rc;
}

static void store_delta_start(struct store_delta *d,
                              const struct store_sample *s, int64_t t)
{
    d->target_id = s->target_id;
    d->cluster_id = s->cluster_id;
    d->t = t;
    d->count = 0;
    d->failures = 0;
    hist_reset(&d->h);
}

static int store_delta_add(struct store_delta *d, const struct store_sample *s)
{
    d->count++;
    if (!s->ok) {
        d->failures++;
        return 0;
    }
    return hist_add(&d->h, (double)s->total_us, 1);
}

/* SQLite's store_rollup_fn. */
static int store_rollup_sq(struct store *st, int hour,
                           const struct store_delta *d)
{
    return store_rollup_add(hour ? &st->hour : &st->minute, d);
}

int store_rollups_flush(struct store *st, int64_t now_ms)
{
    return store_rollups_merge(st, now_ms, store_rollup_sq);
}

int store_rollups_merge(struct store *st, int64_t now_ms, store_rollup_fn add)
{
    struct store_delta m, h;
    int64_t cutoff = st->opt.minute_retention_ms > 0
                         ? now_ms - st->opt.minute_retention_ms : INT64_MIN;
    int64_t hcutoff = st->opt.hour_retention_ms > 0
                          ? now_ms - st->opt.hour_retention_ms : INT64_MIN;
    int has_m = 0, has_h = 0, rc = 0;

    if (st->n_samples == 0)
        return 0;
    qsort(st->samples, st->n_samples, sizeof(*st->samples),
          store_sample_cmp);
    hist_init(&m.h);
    hist_init(&h.h);
    for (size_t i = 0; i < st->n_samples && rc == 0; i++) {
        const struct store_sample *s = &st->samples[i];
        int64_t hour = store_floor(s->minute, STORE_HOUR_MS);

        if (has_m && (m.target_id != s->target_id ||
                      m.cluster_id != s->cluster_id || m.t != s->minute)) {
            rc = m.t >= cutoff ? add(st, 0, &m) : 0;
            has_m = 0;
        }
        if (rc == 0 && has_h && (h.target_id != s->target_id ||
                                 h.cluster_id != s->cluster_id ||
                                 h.t != hour)) {
            rc = h.t >= hcutoff ? add(st, 1, &h) : 0;
            has_h = 0;
        }
        if (rc < 0)
            break;
        if (!has_m) {
            store_delta_start(&m, s, s->minute);
            has_m = 1;
        }
        if (!has_h) {
            store_delta_start(&h, s, hour);
            has_h = 1;
        }
        rc = store_delta_add(&m, s);
        if (rc == 0)
            rc = store_delta_add(&h, s);
    }
    if (rc == 0 && has_m && m.t >= cutoff)
        rc = add(st, 0, &m);
    if (rc == 0 && has_h && h.t >= hcutoff)
        rc = add(st, 1, &h);
    hist_free(&m.h);
    hist_free(&h.h);
    st->n_samples = 0;
    return rc;
}

/* Rebuilds the rollups from every stored probe result: migration 3, for
 * events stored before rollups existed. Runs inside its transaction. */
int store_backfill_rollups(struct store *st)
{
    static const char sql[] =
        "SELECT e.target_id, a.cluster_id, e.unix_ms,"
        " json_extract(e.data, '$.ok'), json_extract(e.data, '$.total_us')"
        " FROM events e JOIN agents a ON a.id = e.agent_id"
        " JOIN kinds k ON k.id = e.kind_id"
        " WHERE k.name = 'probe' AND e.target_id IS NOT NULL"
        " ORDER BY e.target_id, e.unix_ms";
    sqlite3_stmt *s = NULL;
    int rc = -EIO, step;

    if (sqlite3_prepare_v2(st->wdb, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_sample *sm = store_sample_new(st);

        if (!sm) {
            rc = -ENOMEM;
            goto out;
        }
        sm->target_id = sqlite3_column_int64(s, 0);
        sm->cluster_id = sqlite3_column_int64(s, 1);
        sm->minute = store_floor(sqlite3_column_int64(s, 2), STORE_MINUTE_MS);
        sm->ok = sqlite3_column_int(s, 3);
        sm->total_us = (uint64_t)sqlite3_column_int64(s, 4);
        /* Flushed in chunks: memory stays bounded however many events
         * there are (a row flushed twice is merged, not replaced). */
        if (st->n_samples >= STORE_BACKFILL_CHUNK) {
            rc = store_rollups_flush(st, util_now_ms());
            if (rc < 0)
                goto out;
            rc = -EIO;
        }
    }
    if (step != SQLITE_DONE)
        goto out;
    rc = store_rollups_flush(st, util_now_ms());
out:
    if (rc == -EIO)
        log_msg(LOGL_ERROR, "store", "rollup backfill: %s",
                sqlite3_errmsg(st->wdb));
    sqlite3_finalize(s);
    st->n_samples = 0;
    return rc;
}
