/* spool_append.c -- appending to the spool (spool.h): seqs and
 * timestamps for new events, the byte bound (drop the oldest events,
 * acked or not, and record per collector what it lost: drop records),
 * and the events an append failed to store, kept in memory until an
 * append commits and records them as a drop of their own. */
#include "spool_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int spool_set_max_bytes(struct spool *sp, uint64_t max_bytes)
{
    const int64_t v[] = { (int64_t)max_bytes };

    if (max_bytes < SPOOL_MIN_MAX_BYTES || max_bytes > SPOOL_SEQ_MAX)
        return -EINVAL;
    return spool_exec(sp, ST_SET_MAX, 1, v);
}

static void spool_drop_add(struct spool_drop *d, uint64_t seq, int64_t ms)
{
    if (d->count == 0) {
        d->first_seq = seq;
        d->first_unix_ms = ms;
        d->last_unix_ms = ms;
    }
    d->last_seq = seq;
    if (ms < d->first_unix_ms)      /* clocks step: keep the span */
        d->first_unix_ms = ms;
    if (ms > d->last_unix_ms)
        d->last_unix_ms = ms;
    d->count++;
}

/* A new drop row for @c: @d in state @state. */
static int spool_drop_insert(struct spool *sp, const struct spool_coll *c,
                             const struct spool_drop *d, int state)
{
    const int64_t v[] = { c->id, (int64_t)d->first_seq, (int64_t)d->last_seq,
                          (int64_t)d->count, d->first_unix_ms,
                          d->last_unix_ms, state };

    return spool_exec(sp, ST_DROP_INSERT, 7, v);
}

/* Records bound drop @d for collector @c: tentative ones merge into the
 * tentative row of its batch in flight; others into the highest row
 * below @d if that one is still open, else as a new row. Bound drops take
 * the oldest events, so @d lies above every bound row @c has; only
 * refused records (spool_record_refused) can lie above it, and those are
 * never grown. */
static int spool_drop_record(struct spool *sp, const struct spool_coll *c,
                             const struct spool_drop *d, int tentative)
{
    sqlite3_stmt *st = sp->st[ST_DROP_BELOW];
    const int64_t key[] = { c->id, (int64_t)d->first_seq };
    int want = tentative ? SPOOL_DROP_TENTATIVE : SPOOL_DROP_OPEN;
    int rc = spool_row(sp, ST_DROP_BELOW, 2, key);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        struct spool_drop o;
        int state = sqlite3_column_int(st, 5);

        o.first_seq = (uint64_t)sqlite3_column_int64(st, 0);
        o.last_seq = (uint64_t)sqlite3_column_int64(st, 1);
        o.count = (uint64_t)sqlite3_column_int64(st, 2);
        o.first_unix_ms = sqlite3_column_int64(st, 3);
        o.last_unix_ms = sqlite3_column_int64(st, 4);
        spool_done(sp, ST_DROP_BELOW);
        if (state == want && o.last_seq < d->first_seq) {
            const int64_t v[] = {
                (int64_t)d->last_seq, (int64_t)(o.count + d->count),
                o.first_unix_ms < d->first_unix_ms ? o.first_unix_ms
                                                   : d->first_unix_ms,
                o.last_unix_ms > d->last_unix_ms ? o.last_unix_ms
                                                 : d->last_unix_ms,
                c->id, (int64_t)o.first_seq,
            };
            return spool_exec(sp, ST_DROP_UPDATE, 6, v);
        }
    }
    return spool_drop_insert(sp, c, d, want);
}


/* Before @seq joins @c's drop @d: if a refused record lies between them,
 * @d is recorded now and starts afresh, so that no bound drop spans a
 * refused record (the collector would take the wider one and the refused
 * one would come too late, below its drop_last). */
static int spool_drop_split(struct spool *sp, const struct spool_coll *c,
                            struct spool_drop *d, uint64_t seq,
                            int tentative)
{
    const int64_t v[] = { c->id, (int64_t)d->last_seq + 1,
                          (int64_t)seq - 1 };
    int rc;

    if (d->count == 0 || seq <= d->last_seq + 1)
        return 0;
    rc = spool_row(sp, ST_REFUSED_IN, 3, v);
    if (rc != 0)
        return rc < 0 ? rc : -EIO;
    rc = sqlite3_column_int64(sp->st[ST_REFUSED_IN], 0) > 0;
    spool_done(sp, ST_REFUSED_IN);
    if (rc) {
        rc = spool_drop_record(sp, c, d, tentative);
        memset(d, 0, sizeof(*d));
    }
    return rc;
}

/* Deletes the oldest events until @need bytes are free (or the spool is
 * empty), and records for each collector the ones it had not acked:
 * those below its batch out there, in it (tentative), and above it. */
static int spool_make_room(struct spool *sp, struct spool_meta *m,
                           uint64_t need)
{
    sqlite3_stmt *st = sp->st[ST_OLDEST_WALK];
    struct spool_drop agg[SPOOL_MAX_COLLECTORS][3];
    struct spool_coll view[SPOOL_MAX_COLLECTORS];
    size_t at[SPOOL_MAX_COLLECTORS] = { 0 };
    uint64_t freed = 0, k = 0, cut = 0, lost = 0;
    int rc, err = 0;

    memset(agg, 0, sizeof(agg));
    memset(view, 0, sizeof(view));
    rc = spool_view(sp, view);
    if (rc < 0)
        goto out;
    rc = SQLITE_DONE;
    for (;;) {
        uint64_t seq;
        int64_t ms;
        int real;

        if (freed >= need)
            break;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        seq = (uint64_t)sqlite3_column_int64(st, 0);
        ms = sqlite3_column_int64(st, 1);
        freed += (uint64_t)sqlite3_column_int64(st, 2);
        cut = seq;
        k++;
        /* Lost when some collector lacks it for good; only tentatively
         * for all: counted if that turns into a loss (abandoned). */
        real = sp->n_coll == 0;
        for (size_t i = 0; i < sp->n_coll; i++) {
            const struct spool_coll *c = &view[i];
            int part = 0;

            /* seqs rise: walk the ranges along instead of searching */
            while (at[i] < c->acked.n && c->acked.r[at[i]].last < seq)
                at[i]++;
            if (at[i] < c->acked.n && c->acked.r[at[i]].first <= seq)
                continue;           /* acked: no loss for this one */
            if (c->fl_first && seq >= c->fl_first && seq <= c->fl_last)
                part = 1;
            else if (c->fl_first && seq > c->fl_last)
                part = 2;
            real |= part != 1;
            err = spool_drop_split(sp, c, &agg[i][part], seq, part == 1);
            if (err < 0)
                break;
            spool_drop_add(&agg[i][part], seq, ms);
        }
        if (err < 0)
            break;
        lost += real ? 1 : 0;
    }
    rc = err < 0 ? err
         : rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : spool_errno(rc);
    spool_done(sp, ST_OLDEST_WALK);
    if (rc < 0 || k == 0)
        goto out;
    {
        const int64_t v[] = { (int64_t)cut };

        rc = spool_exec(sp, ST_DEL_UPTO, 1, v);
    }
    for (size_t i = 0; i < sp->n_coll && rc == 0; i++)
        for (int part = 0; part < 3 && rc == 0; part++)
            if (agg[i][part].count > 0)
                rc = spool_drop_record(sp, &view[i], &agg[i][part],
                                       part == 1);
    if (rc < 0)
        goto out;
    m->n_events = m->n_events > k ? m->n_events - k : 0;
    m->bytes = m->bytes > freed ? m->bytes - freed : 0;
    m->dropped += lost;
out:
    for (size_t i = 0; i < sp->n_coll; i++)
        seqset_free(&view[i].acked);
    return rc;
}

/* Inside an append's transaction: the events earlier appends failed to
 * store become a drop of the next seqs, for every collector, as if they
 * had been spooled and dropped at once. Giving them seqs (above every
 * event spooled so far, below the ones of this append) is what keeps the
 * collector's accounting exact: its drop event covers exactly those seqs,
 * count = width, and no seq is left for a gap. A row of its own that no
 * other drop merges into (SPOOL_DROP_REFUSED), not even a bound drop of
 * the seqs next to it, so its count and time span are the outage's.
 * Not added to dropped_total (the bound's count): the loop counted these
 * in /metrics when the append failed. */
static int spool_record_refused(struct spool *sp, struct spool_meta *m)
{
    struct spool_drop d = sp->refused;
    int rc = 0;

    if (d.count == 0)
        return 0;
    d.first_seq = m->next_seq;
    d.last_seq = m->next_seq + d.count - 1;
    for (size_t i = 0; i < sp->n_coll && rc == 0; i++)
        rc = spool_drop_insert(sp, &sp->coll[i], &d, SPOOL_DROP_REFUSED);
    if (rc < 0)
        return rc;
    m->next_seq += d.count;
    return 0;
}

/* A failed append: its events join the refused ones. */
static void spool_refuse(struct spool *sp, Sextant__V1__Event *const *evs,
                         size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        int64_t ms = evs[i]->unix_ms ? evs[i]->unix_ms : now;

        spool_drop_add(&sp->refused, 0, ms);    /* seqs: when recorded */
    }
}

void spool_refused(const struct spool *sp, struct spool_drop *out)
{
    *out = sp->refused;
}

int spool_append_many(struct spool *sp, Sextant__V1__Event *const *evs,
                      size_t n)
{
    sqlite3_stmt *st = sp->st[ST_INSERT];
    int64_t now = util_now_ms();
    struct spool_meta m;
    uint8_t **body = NULL;
    size_t *len = NULL;
    uint64_t sum = 0, refused = 0;
    int rc = 0, began = 0;

    if (n == 0)
        return 0;
    body = calloc(n, sizeof(*body));
    len = calloc(n, sizeof(*len));
    if (!body || !len) {
        rc = -ENOMEM;
        goto out;
    }
    rc = spool_begin(sp, &m);
    if (rc < 0)
        goto out;
    began = 1;
    refused = sp->refused.count;
    rc = spool_record_refused(sp, &m);
    if (rc < 0)
        goto out;
    /* Packed first: the bound needs their size before anything goes. */
    for (size_t i = 0; i < n; i++) {
        Sextant__V1__Event ev = *evs[i];    /* shallow: only for packing */

        ev.seq = m.next_seq + i;
        if (ev.unix_ms == 0)
            ev.unix_ms = now;
        rc = wire_event_pack(&ev, &body[i], &len[i]);
        if (rc < 0)
            goto out;
        sum += len[i];
    }
    if (m.bytes + sum > m.max_bytes) {
        rc = spool_make_room(sp, &m, m.bytes + sum - m.max_bytes);
        if (rc < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = -EIO;
        if (sqlite3_bind_int64(st, 1, (sqlite3_int64)(m.next_seq + i))
                != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, evs[i]->unix_ms ? evs[i]->unix_ms
                                                      : now) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, wire_event_kind(evs[i]), -1,
                              SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob64(st, 4, body[i], len[i], SQLITE_STATIC)
                != SQLITE_OK) {
            spool_done(sp, ST_INSERT);
            goto out;
        }
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
        spool_done(sp, ST_INSERT);
        if (rc < 0)
            goto out;
    }
    m.next_seq += n;
    m.n_events += n;
    m.bytes += sum;
    rc = spool_commit(sp, &m);
    began = 0;                          /* committed or rolled back */
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {    /* committed: now tell them */
        evs[i]->seq = m.next_seq - n + i;
        if (evs[i]->unix_ms == 0)
            evs[i]->unix_ms = now;
    }
    if (refused)
        memset(&sp->refused, 0, sizeof(sp->refused));   /* recorded */
out:
    if (began)
        spool_rollback(sp);
    if (rc < 0)
        spool_refuse(sp, evs, n, now);
    for (size_t i = 0; body && i < n; i++)
        free(body[i]);
    free(body);
    free(len);
    return rc;
}

int spool_append(struct spool *sp, Sextant__V1__Event *ev)
{
    return spool_append_many(sp, &ev, 1);
}
