/* spool_batch.c -- batches out of the spool (spool.h): filling a chunk
 * of events oldest or newest first within a collector's unacked seqs,
 * with its oldest_seq and drop record, and a batch's fate: sent (its
 * range out there, its drop record frozen), acked, refused for good (a
 * dead letter) or abandoned. */
#include "spool_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Batch.events is field 7, wire type 2 (length-delimited): the tag of a
 * dead letter's framing. One byte, since the field number is below 16. */
#define SPOOL_EVENTS_TAG  ((7u << 3) | 2u)
/* 1 tag byte + a length varint of at most 10 bytes (a uint64). */
#define SPOOL_FRAME_MAX   11u
/* A chunk's data starts at one page and doubles: a batch of small probe
 * events fits in a few doublings. */
#define SPOOL_FILL_FIRST_CAP 4096u

void spool_chunk_free(struct spool_chunk *c)
{
    free(c->events);
    free(c->data);
    memset(c, 0, sizeof(*c));
}

/* A chunk being filled: the rows' bytes back to back in data, their
 * lengths and seqs aside until spool_chunk_finish() points events at
 * them. */
struct spool_fill {
    struct spool_chunk c;
    size_t max_events;
    size_t max_bytes;
    size_t cap;                     /* of c.data */
    size_t *lens;                   /* max_events of them */
    uint64_t *seqs;
    int full;                       /* a row did not fit: stop */
};

static int spool_fill_init(struct spool_fill *f, size_t max_events,
                           size_t max_bytes)
{
    memset(f, 0, sizeof(*f));
    f->max_events = max_events ? max_events : 1;
    f->max_bytes = max_bytes;
    f->lens = calloc(f->max_events, sizeof(*f->lens));
    f->seqs = calloc(f->max_events, sizeof(*f->seqs));
    return f->lens && f->seqs ? 0 : -ENOMEM;
}

static void spool_fill_free(struct spool_fill *f)
{
    spool_chunk_free(&f->c);
    free(f->lens);
    free(f->seqs);
}

/* Takes the row @st is on, if it fits; sets f->full when it does not. */
static int spool_fill_row(struct spool_fill *f, sqlite3_stmt *st)
{
    const void *blob = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);

    if (f->c.n == f->max_events ||
        (f->c.n > 0 && f->c.bytes + len > f->max_bytes)) {
        f->full = 1;
        return 0;
    }
    if (f->c.bytes + len > f->cap) {
        size_t ncap = f->cap ? f->cap : SPOOL_FILL_FIRST_CAP;
        uint8_t *nd;

        while (ncap < f->c.bytes + len)
            ncap *= 2;
        nd = realloc(f->c.data, ncap);
        if (!nd)
            return -ENOMEM;
        f->c.data = nd;
        f->cap = ncap;
    }
    if (len)
        memcpy(f->c.data + f->c.bytes, blob, len);
    f->lens[f->c.n] = len;
    f->seqs[f->c.n] = (uint64_t)sqlite3_column_int64(st, 0);
    f->c.n++;
    f->c.bytes += len;
    return 0;
}

/* Steps @which over [@lo, @hi] (bound ?1, ?2, limit ?3) into @f. */
static int spool_fill_range(struct spool *sp, enum spool_st which,
                            uint64_t lo, uint64_t hi, struct spool_fill *f)
{
    sqlite3_stmt *st = sp->st[which];
    /* One more than fits: seeing it is how we know there is more. */
    const int64_t v[] = { (int64_t)lo, (int64_t)hi,
                          (int64_t)(f->max_events - f->c.n + 1) };
    int rc = spool_bind(st, 3, v);

    while (rc == 0 && !f->full) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = 0;
            break;
        }
        rc = rc == SQLITE_ROW ? spool_fill_row(f, st) : spool_errno(rc);
    }
    spool_done(sp, which);
    return rc;
}

/* Points the chunk's events at its data, in ascending seq order: rows
 * filled newest first (@reverse) are turned around. */
static int spool_fill_finish(struct spool_fill *f, int reverse)
{
    struct spool_chunk *c = &f->c;
    size_t off = 0;

    if (c->n == 0)
        return 0;
    c->events = calloc(c->n, sizeof(*c->events));
    if (!c->events)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        size_t slot = reverse ? c->n - 1 - i : i;

        c->events[slot].data = c->data + off;
        c->events[slot].len = f->lens[i];
        off += f->lens[i];
    }
    c->first_seq = reverse ? f->seqs[c->n - 1] : f->seqs[0];
    c->last_seq = reverse ? f->seqs[0] : f->seqs[c->n - 1];
    c->more = f->full;
    return 0;
}

int spool_peek(struct spool *sp, uint64_t after_seq, size_t max_events,
               size_t max_bytes, struct spool_chunk *out)
{
    struct spool_fill f;
    int rc = spool_fill_init(&f, max_events, max_bytes);

    if (rc == 0 && after_seq < SPOOL_SEQ_MAX)
        rc = spool_fill_range(sp, ST_PEEK_ASC, after_seq + 1, SPOOL_SEQ_MAX,
                              &f);
    if (rc == 0)
        rc = spool_fill_finish(&f, 0);
    if (rc == 0) {
        *out = f.c;
        memset(&f.c, 0, sizeof(f.c));   /* now the caller's */
    }
    spool_fill_free(&f);
    return rc;
}

/* The lowest seq in the spool within @holes (a collector's unacked
 * ranges, ascending); 0 if none. */
static int spool_first_unacked(struct spool *sp,
                               const struct seqset_range *holes, size_t n,
                               uint64_t *out)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t v[] = { (int64_t)holes[i].first,
                              (int64_t)holes[i].last };
        int rc = spool_row(sp, ST_FIRST_IN, 2, v);

        if (rc != 0)
            return rc < 0 ? rc : -EIO;
        if (sqlite3_column_type(sp->st[ST_FIRST_IN], 0) != SQLITE_NULL)
            *out = (uint64_t)sqlite3_column_int64(sp->st[ST_FIRST_IN], 0);
        spool_done(sp, ST_FIRST_IN);
        if (*out)
            break;
    }
    return 0;
}

/* @c's oldest pending drop record into *d, and the first seq of the one
 * after it (0 if none) into *next. */
static int spool_oldest_drop(struct spool *sp, const struct spool_coll *c,
                             struct spool_drop *d, uint64_t *next)
{
    sqlite3_stmt *st = sp->st[ST_DROP_OLDEST];
    int rc;

    memset(d, 0, sizeof(*d));
    *next = 0;
    if (sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK)
        return -EIO;
    for (int row = 0; row < 2; row++) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (row == 1) {
            *next = (uint64_t)sqlite3_column_int64(st, 0);
            break;
        }
        d->first_seq = (uint64_t)sqlite3_column_int64(st, 0);
        d->last_seq = (uint64_t)sqlite3_column_int64(st, 1);
        d->count = (uint64_t)sqlite3_column_int64(st, 2);
        d->first_unix_ms = sqlite3_column_int64(st, 3);
        d->last_unix_ms = sqlite3_column_int64(st, 4);
    }
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : spool_errno(rc);
    spool_done(sp, ST_DROP_OLDEST);
    return rc;
}

int spool_peek_for(struct spool *sp, unsigned coll, int newest,
                   size_t max_events, size_t max_bytes,
                   struct spool_chunk *out)
{
    struct seqset_range *holes = NULL;
    const struct spool_coll *c;
    struct spool_fill f;
    uint64_t lowest = 0, next_drop = 0, withheld = 0;
    size_t n = 0;
    int rc;

    if (coll >= sp->n_coll)
        return -EINVAL;
    c = &sp->coll[coll];
    rc = spool_fill_init(&f, max_events, max_bytes);
    /* Ranges are kept only from the oldest event up, so the holes are
     * few: one per acked range, plus everything above the last. */
    if (rc == 0)
        rc = seqset_holes(&c->acked, 1, SPOOL_SEQ_MAX, &holes, &n);
    for (size_t i = 0; i < n && rc == 0 && !f.full; i++) {
        const struct seqset_range *h = &holes[newest ? n - 1 - i : i];

        rc = spool_fill_range(sp, newest ? ST_PEEK_DESC : ST_PEEK_ASC,
                              h->first, h->last, &f);
    }
    if (rc == 0)
        rc = spool_fill_finish(&f, newest);
    if (rc == 0 && newest && f.c.more)
        rc = spool_first_unacked(sp, holes, n, &lowest);
    else if (rc == 0 && f.c.n > 0)
        lowest = f.c.first_seq;
    if (rc == 0)
        rc = spool_oldest_drop(sp, c, &f.c.drop, &next_drop);
    if (rc < 0)
        goto out;
    /* Drops from the bound take the oldest events, so they lie below the
     * events; but events no append could store are recorded above those
     * spooled before them. The collector takes drops in seq order only
     * (one above its last is new, any other a replay), so such a record
     * waits until no unacked event is left below it: a newest-first batch
     * above it must not carry it while older events may still be
     * dropped by the bound. 'lowest' is that first unacked event. */
    if (f.c.n > 0 && f.c.drop.count > 0 && f.c.drop.last_seq >= lowest) {
        withheld = f.c.drop.first_seq;
        memset(&f.c.drop, 0, sizeof(f.c.drop));
    }
    /* Without events, everything above the record was acked: the
     * record's end is where the collector's losses end. */
    if (f.c.n == 0)
        lowest = f.c.drop.count ? f.c.drop.last_seq + 1 : 0;
    /* What a later (or withheld) drop record will explain is not a gap
     * yet. */
    if (withheld && (!next_drop || withheld < next_drop))
        next_drop = withheld;
    f.c.oldest_seq = next_drop && next_drop < lowest ? next_drop : lowest;
out:
    if (rc == 0) {
        *out = f.c;
        memset(&f.c, 0, sizeof(f.c));   /* now the caller's */
    }
    spool_fill_free(&f);
    free(holes);
    return rc;
}

/* -- a batch's fate -- */

/* Checks that @c is a batch (events, a drop record, or both) for a
 * known @coll, and begins the transaction of its fate. */
static int spool_batch_begin(struct spool *sp, unsigned coll,
                             const struct spool_chunk *c,
                             struct spool_coll **sc, struct spool_meta *m)
{
    if (coll >= sp->n_coll || (c->n == 0 && c->drop.count == 0))
        return -EINVAL;
    *sc = &sp->coll[coll];
    return spool_begin(sp, m);
}

int spool_batch_sent(struct spool *sp, unsigned coll,
                     const struct spool_chunk *c)
{
    struct spool_coll *sc;
    struct spool_meta m;
    int rc = spool_batch_begin(sp, coll, c, &sc, &m);

    if (rc < 0)
        return rc;
    if (c->drop.count > 0) {
        const int64_t v[] = { sc->id, (int64_t)c->drop.first_seq };

        rc = spool_exec(sp, ST_DROP_FREEZE, 2, v);
    }
    if (rc == 0) {
        const int64_t v[] = { c->n ? (int64_t)c->first_seq : 0,
                              c->n ? (int64_t)c->last_seq : 0, sc->id };

        rc = spool_exec(sp, ST_FLIGHT_SET, 3, v);
    }
    if (rc == 0)
        return spool_commit(sp, &m);
    spool_rollback(sp);
    return rc;
}

int spool_batch_abandoned(struct spool *sp, unsigned coll)
{
    int64_t key[1];
    struct spool_meta m;
    int rc;

    if (coll >= sp->n_coll)
        return -EINVAL;
    key[0] = sp->coll[coll].id;
    rc = spool_begin(sp, &m);
    if (rc < 0)
        return rc;
    rc = spool_tent_to_drops(sp, &m, key[0]);
    if (rc == 0) {
        const int64_t w[] = { 0, 0, key[0] };

        rc = spool_exec(sp, ST_FLIGHT_SET, 3, w);
    }
    if (rc == 0)
        return spool_commit(sp, &m);
    spool_rollback(sp);
    return rc;
}

/* Protobuf framing of one Batch.events entry: its tag, then the length
 * as a varint; at most SPOOL_FRAME_MAX bytes. */
static size_t spool_frame(uint8_t *out, size_t len)
{
    out[0] = SPOOL_EVENTS_TAG;
    return 1 + util_put_varint(out + 1, len);
}

/* Inserts the dead letter for @c: its events framed as Batch.events. */
static int spool_dead_insert(struct spool *sp, const struct spool_coll *sc,
                             const struct spool_chunk *c, int status,
                             const char *reason)
{
    sqlite3_stmt *st = sp->st[ST_DL_INSERT];
    uint8_t *body;
    size_t off = 0;
    int rc = -EIO;

    /* + 1: a batch of a drop record alone has no bytes, and malloc(0) may
     * return NULL. */
    body = malloc(c->bytes + c->n * SPOOL_FRAME_MAX + 1);
    if (!body)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        off += spool_frame(body + off, c->events[i].len);
        memcpy(body + off, c->events[i].data, c->events[i].len);
        off += c->events[i].len;
    }
    /* A batch of a drop record alone keeps the record's range. */
    if (sqlite3_bind_text(st, 1, sc->url, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, (int64_t)(c->n ? c->first_seq
                                                 : c->drop.first_seq))
            == SQLITE_OK &&
        sqlite3_bind_int64(st, 3, (int64_t)(c->n ? c->last_seq
                                                 : c->drop.last_seq))
            == SQLITE_OK &&
        sqlite3_bind_int64(st, 4, (int64_t)c->n) == SQLITE_OK &&
        sqlite3_bind_int(st, 5, status) == SQLITE_OK &&
        sqlite3_bind_text(st, 6, reason, (int)strnlen(reason,
                          SPOOL_MAX_REASON), SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_int64(st, 7, util_now_ms()) == SQLITE_OK &&
        sqlite3_bind_blob64(st, 8, body, off, SQLITE_STATIC) == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : spool_errno(rc);
    }
    spool_done(sp, ST_DL_INSERT);
    free(body);
    if (rc == 0) {
        /* A collector that refuses everything must not fill the disk:
         * the oldest dead letters go past the cap, and say so. */
        const int64_t cap[] = { SPOOL_DEAD_MAX_BYTES };

        rc = spool_exec(sp, ST_DL_PRUNE, 1, cap);
        if (rc == 0 && sqlite3_changes(sp->db) > 0)
            log_msg(LOGL_WARN, "spool", "dead letters over %u bytes: the "
                    "%d oldest removed", SPOOL_DEAD_MAX_BYTES,
                    sqlite3_changes(sp->db));
    }
    return rc;
}

/* Acked (@status 0) or dead (@status, @reason): the range is done for
 * @coll, and whatever everyone is done with goes. */
static int spool_batch_end(struct spool *sp, unsigned coll,
                           const struct spool_chunk *c, int status,
                           const char *reason, uint64_t *deleted)
{
    struct spool_coll *sc;
    struct seqset_range mr;
    struct spool_meta m;
    uint64_t gone = 0;
    size_t i = 0, j = 0;
    int rc;

    memset(&mr, 0, sizeof(mr));
    rc = spool_batch_begin(sp, coll, c, &sc, &m);
    if (rc < 0)
        return rc;
    if (status) {
        rc = spool_dead_insert(sp, sc, c, status, reason);
        m.dead_letter += c->n;
    }
    if (rc == 0 && c->n > 0)
        rc = spool_add_range_rows(sp, sc, c->first_seq, c->last_seq, &i, &j,
                                  &mr);
    /* Stored: its drop record is told. Refused with events: it is not,
     * and the next batch carries it again. Refused alone, it would be
     * refused forever: its dead letter keeps it, and it goes. */
    if (rc == 0 && (!status || c->n == 0) && c->drop.count > 0) {
        const int64_t v[] = { sc->id, (int64_t)c->drop.first_seq };

        rc = spool_exec(sp, ST_DROP_DELETE, 2, v);
    }
    /* Events dropped while it was out there: the collector has them
     * (acked), or the dead letter does. Either way they are no loss. */
    if (rc == 0) {
        const int64_t v[] = { sc->id };

        rc = spool_exec(sp, ST_DROP_DEL_TENT, 1, v);
    }
    if (rc == 0) {
        const int64_t v[] = { 0, 0, sc->id };

        rc = spool_exec(sp, ST_FLIGHT_SET, 3, v);
    }
    if (rc < 0) {
        spool_rollback(sp);
        return rc;
    }
    /* The sweep reads the ranges: apply in memory, undo on failure. */
    {
        struct seqset saved;

        if (seqset_copy(&saved, &sc->acked) < 0) {
            spool_rollback(sp);
            return -ENOMEM;
        }
        if (c->n > 0) {
            seqset_apply(&sc->acked, i, j, &mr);
            rc = spool_sweep(sp, &m, c->first_seq, c->last_seq, &gone);
        }
        if (rc == 0)
            rc = spool_commit_pruned(sp, &m);
        else
            spool_rollback(sp);
        if (rc < 0)
            seqset_swap(&sc->acked, &saved);    /* back to the copy */
        seqset_free(&saved);
    }
    if (rc < 0)
        return rc;
    if (deleted)
        *deleted = gone;
    return 0;
}

int spool_batch_acked(struct spool *sp, unsigned coll,
                      const struct spool_chunk *c, uint64_t *deleted)
{
    return spool_batch_end(sp, coll, c, 0, NULL, deleted);
}

int spool_batch_dead(struct spool *sp, unsigned coll,
                     const struct spool_chunk *c, int status,
                     const char *reason, uint64_t *deleted)
{
    if (status <= 0)
        return -EINVAL;
    return spool_batch_end(sp, coll, c, status, reason ? reason : "",
                           deleted);
}

