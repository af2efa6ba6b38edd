/* spool_collectors.c -- the spool's collectors (spool.h): the list
 * and its changes, each collector's acked seq ranges (in the file's
 * acked table and, mirrored, in a seqset), and deleting the events that
 * every collector is done with. What a collector lost is spool_append.c's
 * (drop records); what it is sent is spool_batch.c's. */
#include "spool_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void spool_coll_free(struct spool_coll *c)
{
    free(c->url);
    seqset_free(&c->acked);
    memset(c, 0, sizeof(*c));
}

int spool_load_ranges(struct spool *sp, struct spool_coll *c, size_t *bad)
{
    sqlite3_stmt *st = sp->st[ST_ACKED_LIST];
    uint64_t f, l;
    int rc;

    if (sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK)
        return -EIO;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        f = (uint64_t)sqlite3_column_int64(st, 0);
        l = (uint64_t)sqlite3_column_int64(st, 1);
        /* Rows are merged when written; adding merges again, so even a
         * file edited by hand cannot break the set's order. A row with
         * its ends swapped was never written by a spool: it says nothing
         * we could trust: left out, and counted for the caller. */
        if (f > l) {
            if (bad)
                (*bad)++;
            continue;
        }
        rc = seqset_add(&c->acked, f, l);
        if (rc < 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
out:
    spool_done(sp, ST_ACKED_LIST);
    return rc;
}

/* Deletes collector @c's @bad acked rows with first > last, which
 * spool_load_ranges left out: deleted, not kept, since left in the file
 * they would warn at every open. Failing to delete them costs nothing but
 * that warning, so it is not an error. */
static void spool_drop_bad_ranges(struct spool *sp,
                                  const struct spool_coll *c, size_t bad)
{
    const int64_t v[] = { c->id };

    log_msg(LOGL_WARN, "spool", "collector %s: %zu acked range(s) with "
            "first > last in the file: ignored and deleted", c->url, bad);
    if (spool_exec(sp, ST_ACKED_DEL_BAD, 1, v) < 0)
        log_msg(LOGL_WARN, "spool", "collector %s: deleting them failed: "
                "%s", c->url, sqlite3_errmsg(sp->db));
}

int spool_load_collectors(struct spool *sp)
{
    sqlite3_stmt *st = sp->st[ST_COLL_LIST];
    int rc;

    for (;;) {
        struct spool_coll *c;
        const char *url;

        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (sp->n_coll == SPOOL_MAX_COLLECTORS) {
            rc = SQLITE_DONE;       /* more were never written by us */
            break;
        }
        c = &sp->coll[sp->n_coll];
        c->id = sqlite3_column_int64(st, 0);
        url = (const char *)sqlite3_column_text(st, 1);
        c->url = strdup(url ? url : "");
        if (!c->url) {
            rc = SQLITE_NOMEM;
            break;
        }
        sp->n_coll++;
    }
    rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
    spool_done(sp, ST_COLL_LIST);
    for (size_t i = 0; i < sp->n_coll && rc == 0; i++) {
        size_t bad = 0;

        rc = spool_load_ranges(sp, &sp->coll[i], &bad);
        if (rc == 0 && bad > 0)
            spool_drop_bad_ranges(sp, &sp->coll[i], bad);
    }
    return rc;
}

/* -- deleting what everyone is done with -- */

/* The events in @r and their packed bytes. */
static int spool_range_sum(struct spool *sp, const struct seqset_range *r,
                           uint64_t *cnt, uint64_t *bytes)
{
    sqlite3_stmt *sum = sp->st[ST_RANGE_SUM];
    const int64_t v[] = { (int64_t)r->first, (int64_t)r->last };
    int rc = spool_row(sp, ST_RANGE_SUM, 2, v);

    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    *cnt = (uint64_t)sqlite3_column_int64(sum, 0);
    *bytes = (uint64_t)sqlite3_column_double(sum, 1);
    spool_done(sp, ST_RANGE_SUM);
    return 0;
}

int spool_delete_ranges(struct spool *sp, struct spool_meta *m,
                        const struct seqset_range *segs, size_t n,
                        uint64_t *deleted)
{
    for (size_t i = 0; i < n; i++) {
        const int64_t v[] = { (int64_t)segs[i].first, (int64_t)segs[i].last };
        uint64_t cnt, bytes;
        int rc = spool_range_sum(sp, &segs[i], &cnt, &bytes);

        if (rc < 0)
            return rc;
        if (cnt == 0)
            continue;
        rc = spool_exec(sp, ST_DEL_RANGE, 2, v);
        if (rc < 0)
            return rc;
        m->n_events = m->n_events > cnt ? m->n_events - cnt : 0;
        m->bytes = m->bytes > bytes ? m->bytes - bytes : 0;
        *deleted += cnt;
    }
    return 0;
}

/* The oldest seq in the spool, or @m's next seq if it is empty. */
static int spool_min_seq(struct spool *sp, const struct spool_meta *m,
                         uint64_t *out)
{
    int rc = spool_row(sp, ST_MIN_SEQ, 0, NULL);

    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    if (sqlite3_column_type(sp->st[ST_MIN_SEQ], 0) == SQLITE_NULL)
        *out = m->next_seq;
    else
        *out = (uint64_t)sqlite3_column_int64(sp->st[ST_MIN_SEQ], 0);
    spool_done(sp, ST_MIN_SEQ);
    return 0;
}

int spool_prune_rows(struct spool *sp, const struct spool_meta *m,
                     uint64_t *min_seq)
{
    int rc = spool_min_seq(sp, m, min_seq);

    for (size_t i = 0; i < sp->n_coll && rc == 0; i++) {
        const int64_t v[] = { sp->coll[i].id, (int64_t)*min_seq };
        const struct seqset *a = &sp->coll[i].acked;

        if (a->n > 0 && a->r[0].last < *min_seq)
            rc = spool_exec(sp, ST_ACKED_PRUNE, 2, v);
    }
    return rc;
}

void spool_prune_mem(struct spool *sp, uint64_t min_seq)
{
    for (size_t i = 0; i < sp->n_coll; i++)
        seqset_prune(&sp->coll[i].acked, min_seq);
}

int spool_commit_pruned(struct spool *sp, const struct spool_meta *m)
{
    uint64_t min_seq = 0;
    int rc = spool_prune_rows(sp, m, &min_seq);

    if (rc == 0)
        rc = spool_commit(sp, m);   /* rolls back on failure */
    else
        spool_rollback(sp);
    if (rc == 0)
        spool_prune_mem(sp, min_seq);
    return rc;
}

int spool_sweep(struct spool *sp, struct spool_meta *m, uint64_t f,
                uint64_t l, uint64_t *deleted)
{
    struct seqset_range *segs;
    size_t n = 1;
    int rc = 0;

    if (sp->n_coll == 0)
        return 0;
    segs = malloc(sizeof(*segs));
    if (!segs)
        return -ENOMEM;
    segs[0] = f ? (struct seqset_range){ f, l }
                : (struct seqset_range){ 1, SPOOL_SEQ_MAX };
    for (size_t i = 0; i < sp->n_coll && rc == 0 && n > 0; i++)
        rc = seqset_intersect(&sp->coll[i].acked, &segs, &n);
    if (rc == 0)
        rc = spool_delete_ranges(sp, m, segs, n, deleted);
    free(segs);
    return rc;
}

int spool_add_range_rows(struct spool *sp, struct spool_coll *c,
                         uint64_t f, uint64_t l, size_t *i, size_t *j,
                         struct seqset_range *mr)
{
    int64_t v[3];
    int rc = seqset_reserve(&c->acked);

    if (rc < 0)
        return rc;
    seqset_plan(&c->acked, f, l, i, j, mr);
    v[0] = c->id;
    v[1] = (int64_t)mr->first;
    v[2] = (int64_t)mr->last;
    rc = spool_exec(sp, ST_ACKED_DEL_BETWEEN, 3, v);
    if (rc == 0)
        rc = spool_exec(sp, ST_ACKED_INSERT, 3, v);
    return rc;
}

/* Several collectors' batches out there with the same events, all
 * abandoned at once, count those events once per collector: a crash with
 * several collectors, an over-count of at most a batch. */
int spool_tent_to_drops(struct spool *sp, struct spool_meta *m, int64_t id)
{
    const int64_t key[] = { id };
    enum spool_st sum = id < 0 ? ST_TENT_SUM_ALL : ST_TENT_SUM;
    int rc = spool_row(sp, sum, id < 0 ? 0 : 1, key);

    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    m->dropped += (uint64_t)sqlite3_column_double(sp->st[sum], 0);
    spool_done(sp, sum);
    return id < 0 ? spool_exec(sp, ST_DROP_KEEP_ALL_TENT, 0, NULL)
                  : spool_exec(sp, ST_DROP_KEEP_TENT, 1, key);
}

/* A copy of @from's identity and ranges, for a collector list being
 * built beside the one in use. */
static int spool_coll_copy(struct spool_coll *to, const struct spool_coll *from)
{
    memset(to, 0, sizeof(*to));
    to->id = from->id;
    to->url = strdup(from->url);
    if (!to->url || seqset_copy(&to->acked, &from->acked) < 0) {
        spool_coll_free(to);
        return -ENOMEM;
    }
    return 0;
}

int spool_set_collectors(struct spool *sp, const char *const *ids, size_t n)
{
    struct spool_coll *nc, *old = sp->coll;
    size_t n_old = sp->n_coll;
    struct spool_meta m;
    uint64_t deleted = 0, min_seq = 0;
    int used[SPOOL_MAX_COLLECTORS] = { 0 };
    int rc, began = 0;

    if (n == 0 || n > SPOOL_MAX_COLLECTORS)
        return -EINVAL;
    nc = calloc(SPOOL_MAX_COLLECTORS, sizeof(*nc));
    if (!nc)
        return -ENOMEM;
    rc = spool_begin(sp, &m);
    began = rc == 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = 0;

        while (k < n_old && strcmp(old[k].url, ids[i]) != 0)
            k++;
        if (k < n_old && !used[k]) {
            used[k] = 1;
            rc = spool_coll_copy(&nc[i], &old[k]);
            continue;
        }
        nc[i].url = strdup(ids[i]);
        if (!nc[i].url) {
            rc = -ENOMEM;
            break;
        }
        if (sqlite3_bind_text(sp->st[ST_COLL_INSERT], 1, ids[i], -1,
                              SQLITE_STATIC) != SQLITE_OK) {
            spool_done(sp, ST_COLL_INSERT);
            rc = -EIO;
            break;
        }
        rc = spool_exec(sp, ST_COLL_INSERT, 0, NULL);
        nc[i].id = sqlite3_last_insert_rowid(sp->db);
    }
    /* Gone from the config: its ranges and drop records go too. */
    for (size_t k = 0; k < n_old && rc == 0; k++) {
        const int64_t v[] = { old[k].id };

        if (used[k])
            continue;
        rc = spool_exec(sp, ST_ACKED_DEL_COLL, 1, v);
        if (rc == 0)
            rc = spool_exec(sp, ST_DROP_DEL_COLL, 1, v);
        if (rc == 0)
            rc = spool_exec(sp, ST_COLL_DELETE, 1, v);
    }
    /* Tentative drops of a batch that was in flight when the last agent
     * died: whether the collector stored it is unknown, so they count as
     * drops -- a drop reported twice beats a loss never reported. */
    if (rc == 0)
        rc = spool_tent_to_drops(sp, &m, -1);
    if (rc == 0)
        rc = spool_exec(sp, ST_FLIGHT_CLEAR_ALL, 0, NULL);
    /* The sweep reads sp->coll: the new list, put back on failure. */
    if (rc == 0) {
        sp->coll = nc;
        sp->n_coll = n;
        rc = spool_sweep(sp, &m, 0, 0, &deleted);
        if (rc == 0)
            rc = spool_prune_rows(sp, &m, &min_seq);
        if (rc == 0) {
            rc = spool_commit(sp, &m);
            began = 0;                  /* committed or rolled back */
        }
        if (rc < 0) {
            sp->coll = old;
            sp->n_coll = n_old;
        }
    }
    if (began)
        spool_rollback(sp);
    if (rc == 0) {
        spool_prune_mem(sp, min_seq);
        nc = old;                       /* the old list is what goes */
    }
    for (size_t i = 0; i < SPOOL_MAX_COLLECTORS; i++)
        spool_coll_free(&nc[i]);
    free(nc);
    return rc;
}

/* Another process (sextant-agent event) must not trust what it read at
 * open: the file is the truth. */
int spool_view(struct spool *sp, struct spool_coll *v)
{
    int rc = 0;

    for (size_t i = 0; i < sp->n_coll && rc == 0; i++) {
        const int64_t key[] = { sp->coll[i].id };

        v[i].id = sp->coll[i].id;
        rc = spool_load_ranges(sp, &v[i], NULL);
        if (rc == 0)
            rc = spool_row(sp, ST_FLIGHT_GET, 1, key);
        if (rc == 0) {
            v[i].fl_first = (uint64_t)sqlite3_column_int64(
                sp->st[ST_FLIGHT_GET], 0);
            v[i].fl_last = (uint64_t)sqlite3_column_int64(
                sp->st[ST_FLIGHT_GET], 1);
            spool_done(sp, ST_FLIGHT_GET);
        } else if (rc == 1) {
            rc = 0;                 /* forgotten since we opened */
        }
    }
    return rc;
}

int spool_ack(struct spool *sp, uint64_t upto_seq, uint64_t *deleted)
{
    struct seqset_range all;
    struct spool_meta m;
    uint64_t gone = 0;
    int rc;

    if (upto_seq == 0) {
        if (deleted)
            *deleted = 0;
        return 0;
    }
    all.first = 1;
    all.last = upto_seq < SPOOL_SEQ_MAX ? upto_seq : SPOOL_SEQ_MAX;
    rc = spool_begin(sp, &m);
    if (rc < 0)
        return rc;
    rc = spool_delete_ranges(sp, &m, &all, 1, &gone);
    if (rc == 0)
        rc = spool_commit_pruned(sp, &m);
    else
        spool_rollback(sp);
    if (rc < 0)
        return rc;
    if (deleted)
        *deleted = gone;
    return 0;
}

/* The whole spool less what @coll is done with (acked or dead-lettered;
 * those ranges are only kept from the oldest event up). Events every
 * collector is done with are deleted at once, so with one collector the
 * ranges hold no events and each sum is one index seek; with more, a sum
 * reads the events @coll has and another collector still lacks. */
int spool_held_for(struct spool *sp, unsigned coll, uint64_t *events,
                   uint64_t *bytes)
{
    const struct seqset *acked;
    struct spool_meta m;
    int rc;

    if (coll >= sp->n_coll)
        return -EINVAL;
    acked = &sp->coll[coll].acked;
    rc = spool_read_meta(sp, &m);
    for (size_t i = 0; rc == 0 && i < acked->n; i++) {
        uint64_t cnt, b;

        rc = spool_range_sum(sp, &acked->r[i], &cnt, &b);
        if (rc < 0)
            break;
        /* Another writer's append or drop between the reads: never
         * below zero. */
        m.n_events = m.n_events > cnt ? m.n_events - cnt : 0;
        m.bytes = m.bytes > b ? m.bytes - b : 0;
    }
    if (rc == 0) {
        *events = m.n_events;
        *bytes = m.bytes;
    }
    return rc;
}
